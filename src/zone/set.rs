//! Every zone served: finding the zone of a name (longest origin, DS on the parent side),
//! and the direct table that answers most names with one hash.

use hashbrown::HashTable;
use rustc_hash::FxHashMap;

use super::{Node, Zone, ZoneError, name_hash};
use crate::dns::name::{self, MAX_LABELS, label_offsets};
use crate::dns::rtype;

/// All zones served, found by the longest matching origin.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: Vec<Zone>,
    by_origin: FxHashMap<Box<[u8]>, usize>,
    /// Bit n set: some origin is n bytes long in wire form. A suffix of another length is
    /// no origin, and is not hashed.
    origin_lens: [u64; 4],
    /// (zone, entry) of every name one hash lookup answers: a node of the most specific
    /// zone containing it, with no delegation or DNAME above it, and not itself a cut.
    /// Most questions hit here and skip the zone search and the walk down from the apex.
    /// Every other existing name is here too, marked [`SEARCH`], so that the walk up from
    /// an absent name stops at its closest encloser.
    direct: HashTable<(u32, u32)>,
    /// The zones' apexes with their entries in `direct`, by origin length: the closest
    /// encloser of a random-subdomain flood's names is an apex, found by comparing the
    /// suffix with the one origin of its length instead of hashing it and probing.
    apexes: Apexes,
    /// Some zone is signed: DO queries cannot share answers with the others.
    any_signed: bool,
}

/// Marks an entry of the direct table that only the general search answers for: an
/// existing name at or below a cut or DNAME, or one not in its most specific zone. Being
/// in the table, it stops the walk up from a name that does not exist.
const SEARCH: u32 = 1 << 31;

/// Flags kept beside the zone index of a direct entry (zone indexes stay far below 2^29),
/// so that an absent name below the entry is settled without reading its node: a wildcard
/// is directly below the entry (`*.entry`) ...
const WILDCARD_BELOW: u32 = 1 << 29;
/// ... or the entry owns a DNAME (names below it are redirected, the search answers).
const DNAME_HERE: u32 = 1 << 30;
const ZONE_FLAGS: u32 = WILDCARD_BELOW | DNAME_HERE;

/// Zone apexes by origin length, where one origin alone has that length.
#[derive(Debug)]
struct Apexes {
    by_len: Box<[Option<Apex>]>,
}

impl Default for Apexes {
    fn default() -> Self {
        Self {
            by_len: (0..256).map(|_| None).collect(),
        }
    }
}

/// A zone's origin and its apex's entry in the direct table.
#[derive(Debug)]
struct Apex {
    origin: Box<[u8]>,
    entry: (u32, u32),
    /// [`words`] of the origin, when 8 to 32 bytes long.
    words: [u64; 4],
}

impl Apexes {
    /// The apex entry of `suffix` when it is an origin of 8 to 32 bytes spelled as stored:
    /// four words compared inline. The call that compares any name cost ~50 instructions
    /// on every name of a random-subdomain flood; it remains for other lengths and cases.
    #[inline(always)]
    fn exact(&self, suffix: &[u8]) -> Option<(u32, u32)> {
        let apex = self.by_len.get(suffix.len())?.as_ref()?;
        (8..=32)
            .contains(&suffix.len())
            .then(|| words(suffix))
            .filter(|w| *w == apex.words)
            .map(|_| apex.entry)
    }
}

/// A name of 8 to 32 bytes as four words (at 0, 8, 16 and its last 8, those beyond the end
/// moved back to it): two names of one length are the same bytes when these are.
#[inline(always)]
fn words(name: &[u8]) -> [u64; 4] {
    let last = name.len() - 8;
    let at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&name[i..i + 8]);
        u64::from_le_bytes(w)
    };
    [at(0), at(last.min(8)), at(last.min(16)), at(last)]
}

/// A name found by one hash lookup: its node, and its position in the zone (which keys
/// anything precomputed per name, such as the server's pre-rendered answers).
#[derive(Debug, Clone, Copy)]
pub struct Direct<'z> {
    pub entry: u32,
    pub node: &'z Node,
}

/// The wildcard that answers for a name that does not exist: its position in the zone
/// (which keys its pre-rendered answers, the same bytes for any name it answers when they
/// hold nothing but the name). Its owner and node are read only when the answer is not
/// pre-rendered ([`super::Zone::node_at`]).
#[derive(Debug, Clone, Copy)]
pub struct Wildcard {
    pub entry: u32,
}

/// What [`ZoneSet::lookup`] settled about a name, to be passed on to [`ZoneSet::resolve`].
#[derive(Debug, Clone, Copy)]
pub enum Found<'z> {
    /// The name's own node.
    Exact(Direct<'z>),
    /// The name does not exist, and neither a cut nor a DNAME is above it: the wildcard
    /// at its closest encloser answers, or none does (NXDOMAIN).
    Absent(Option<Wildcard>),
    /// Only the walk down from the apex settles it.
    Search,
}

impl<'z> Found<'z> {
    /// The name's own node, when it was found directly.
    pub fn exact(self) -> Option<Direct<'z>> {
        match self {
            Found::Exact(d) => Some(d),
            _ => None,
        }
    }
}

impl ZoneSet {
    pub fn new(zones: Vec<Zone>) -> Result<Self, ZoneError> {
        let mut by_origin = FxHashMap::default();
        let mut origin_lens = [0u64; 4];
        for (i, z) in zones.iter().enumerate() {
            if by_origin.insert(z.origin.clone(), i).is_some() {
                return Err(ZoneError::ZoneTwice(name::to_text(&z.origin)));
            }
            let len = z.origin.len().min(255);
            origin_lens[len / 64] |= 1 << (len % 64);
        }
        let any_signed = zones.iter().any(Zone::is_signed);
        let mut set = Self {
            zones,
            by_origin,
            origin_lens,
            direct: HashTable::new(),
            apexes: Apexes::default(),
            any_signed,
        };
        set.direct = set.direct_names();
        set.apexes = set.apexes();
        Ok(set)
    }

    /// Some zone is signed.
    pub fn any_signed(&self) -> bool {
        self.any_signed
    }

    /// Every zone's apex with its entry in the direct table (as a probe for the origin
    /// finds it), for the lengths that only one origin has.
    fn apexes(&self) -> Apexes {
        let mut count = [0u32; 256];
        for zone in &self.zones {
            count[zone.origin().len().min(255)] += 1;
        }
        let mut apexes = Apexes::default();
        for zone in &self.zones {
            let origin = zone.origin();
            let len = origin.len().min(255);
            let Some(&(z, e)) = self.direct.find(name_hash(origin), |&(z, e)| {
                self.entry_name(z, e) == Some(origin)
            }) else {
                continue;
            };
            if count[len] == 1 {
                apexes.by_len[len] = Some(Apex {
                    origin: origin.into(),
                    entry: (z, e),
                    words: if (8..=32).contains(&len) {
                        words(origin)
                    } else {
                        [0; 4]
                    },
                });
            }
        }
        apexes
    }

    /// The direct entry of `suffix` when it is a zone's apex, found without hashing when no
    /// other origin has its length (else `None`, and the probe decides), in any case and
    /// length ([`Apexes::exact`] takes the usual ones first). Not inlined:
    /// inlined, it made the walk's probes spill registers, +35 instructions on a wildcard's
    /// walk where it is never called (+18 as a call).
    #[inline(never)]
    fn apex_entry(&self, suffix: &[u8]) -> Option<(u32, u32)> {
        let apex = self.apexes.by_len.get(suffix.len())?.as_ref()?;
        name::same_name_as_asked(&apex.origin, suffix).then_some(apex.entry)
    }

    /// The table behind [`ZoneSet::lookup`].
    fn direct_names(&self) -> HashTable<(u32, u32)> {
        let entries: usize = self.zones.iter().map(Zone::entry_count).sum();
        let mut direct = HashTable::with_capacity(entries);
        // The names left out here go in marked afterwards.
        let mut others: Vec<(u32, u32)> = Vec::new();
        for (zi, zone) in self.zones.iter().enumerate() {
            let Some(z) = u32::try_from(zi).ok().filter(|&z| z < WILDCARD_BELOW) else {
                break;
            };
            for (ei, owner, node) in zone.entries() {
                let at = (z, ei);
                if self.answers_directly(zi, zone, owner, node) {
                    let mut flags = 0;
                    if zone.wildcards.get(ei).is_some() {
                        flags |= WILDCARD_BELOW;
                    }
                    if node.has_dname() {
                        flags |= DNAME_HERE;
                    }
                    direct.insert_unique(name_hash(owner), (z | flags, ei), |&(z, e)| {
                        self.entry_name(z, e).map_or(0, name_hash)
                    });
                } else {
                    others.push(at);
                }
            }
        }
        // Every other existing name goes in marked (once per name), so that the walk up
        // from an absent name stops at its closest encloser whatever that is.
        for (zi, ei) in others {
            let Some(owner) = self.entry_name(zi, ei).filter(|_| ei < SEARCH) else {
                continue;
            };
            let hash = name_hash(owner);
            let known = direct
                .find(hash, |&(z, e)| self.entry_name(z, e) == Some(owner))
                .is_some();
            if !known {
                direct.insert_unique(hash, (zi, ei | SEARCH), |&(z, e)| {
                    self.entry_name(z, e).map_or(0, name_hash)
                });
            }
        }
        direct
    }

    /// Whether one hash lookup may answer for `owner` (in `zone`, at index `zi`): a node
    /// queries find, of the most specific zone containing it, not a cut itself and with no
    /// delegation or DNAME above it.
    fn answers_directly(&self, zi: usize, zone: &Zone, owner: &[u8], node: &Node) -> bool {
        let apex = owner[..] == zone.origin[..];
        if !apex && (zone.apex_dname || node.has_ns()) {
            return false;
        }
        // Names queries must not find (NSEC3 owners) stay out too.
        if node.nsec3_only() || self.find_index(owner, rtype::A) != Some(zi) {
            return false;
        }
        let mut cur = name::parent(owner);
        while let Some(p) = cur {
            if p.len() <= zone.origin.len() {
                break;
            }
            if zone.node(p).is_some_and(|n| n.has_ns() || n.has_dname()) {
                return false;
            }
            cur = name::parent(p);
        }
        true
    }

    fn entry_name(&self, zone: u32, entry: u32) -> Option<&[u8]> {
        self.zones
            .get((zone & !ZONE_FLAGS) as usize)
            .and_then(|z| z.owner_at((entry & !SEARCH) as usize))
    }

    /// The zone that answers `key` (wire form, in any case), as an index into
    /// [`ZoneSet::zones`], and what the direct table settles about the name: its node, or
    /// that it does not exist (with the wildcard that answers instead). Pass both to
    /// [`ZoneSet::resolve`] (with the name lowercased). An absent name costs one hash lookup
    /// per label up to its closest encloser, and one for the wildcard there.
    pub fn lookup(&self, key: &[u8], qtype: u16) -> Option<(usize, Found<'_>)> {
        self.lookup_hashed(key, name_hash(key), qtype)
    }

    /// [`ZoneSet::lookup`] with `key`'s [`name_hash`] known already. `key` may be in any
    /// case: the hash is blind to it and the names found are compared ignoring it, so the
    /// query path looks its question up as it came, without lowercasing it first.
    #[inline]
    pub fn lookup_hashed(
        &self,
        key: &[u8],
        key_hash: u64,
        qtype: u16,
    ) -> Option<(usize, Found<'_>)> {
        // DS belongs to the parent side of a cut: the general search knows that.
        if qtype == rtype::DS {
            return self.search(key, qtype);
        }
        let mut at = 0usize;
        while at < key.len() {
            let suffix = &key[at..];
            // Below the name itself (which the probe finds at once), the one length test
            // leaves most suffixes that are no origin to the probe; an apex is compared.
            let len = suffix.len().min(255);
            if at > 0
                && self.origin_lens[len / 64] & (1 << (len % 64)) != 0
                && let Some((z, e)) = self
                    .apexes
                    .exact(suffix)
                    .or_else(|| self.apex_entry(suffix))
            {
                return self.found(key, at, z, e);
            }
            let hash = if at == 0 { key_hash } else { name_hash(suffix) };
            let hit = self.direct.find(hash, |&(z, e)| {
                self.entry_name(z, e)
                    .is_some_and(|owner| name::same_name_as_asked(owner, suffix))
            });
            if let Some(&(z, e)) = hit {
                return self.found(key, at, z, e);
            }
            at += usize::from(key[at]) + 1;
        }
        // No name of any zone is a suffix, so no origin is.
        None
    }

    /// The zone of `key` (any case) by its origin, for the general search.
    #[cold]
    #[inline(never)]
    fn search(&self, key: &[u8], qtype: u16) -> Option<(usize, Found<'_>)> {
        let mut lower = name::name_buf();
        let lower = name::lower_into(key, &mut lower);
        self.find_index(lower, qtype).map(|i| (i, Found::Search))
    }

    /// What the direct table's entry (zone `z`, entry `e`) for `key[at..]`, the longest
    /// suffix of `key` in it, tells about `key`.
    fn found(&self, key: &[u8], at: usize, z: u32, e: u32) -> Option<(usize, Found<'_>)> {
        let search = || self.search(key, rtype::A);
        let zi = (z & !ZONE_FLAGS) as usize;
        let Some(zone) = self.zones.get(zi).filter(|_| e & SEARCH == 0) else {
            return search();
        };
        if at == 0 {
            return match zone.node_at(e as usize) {
                Some((_, node)) => Some((zi, Found::Exact(Direct { entry: e, node }))),
                None => search(),
            };
        }
        // Below a DNAME (at the apex too) the name is redirected, not absent.
        if z & DNAME_HERE != 0 {
            return search();
        }
        let wildcard = if z & WILDCARD_BELOW != 0 {
            zone.wildcard_at(e)
        } else {
            None
        };
        Some((zi, Found::Absent(wildcard)))
    }

    /// Every name [`ZoneSet::lookup`] answers with one hash lookup: (zone index, entry
    /// index, owner, node), in zone and entry order (memory order: a walk over a big zone
    /// stays cache-friendly).
    pub fn direct_entries(&self) -> impl Iterator<Item = (usize, u32, &[u8], &Node)> {
        (0..self.zones.len()).flat_map(move |zi| {
            self.direct_entries_of(zi)
                .map(move |(e, owner, node)| (zi, e, owner, node))
        })
    }

    /// [`ZoneSet::direct_entries`] of zone `zi`.
    pub fn direct_entries_of(&self, zi: usize) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        let chunks = self.zones.get(zi).map_or(0, Zone::chunk_count);
        (0..chunks).flat_map(move |k| self.direct_entries_in_chunk(zi, k))
    }

    /// [`ZoneSet::direct_entries`] of zone `zi` in its chunk `k` (see
    /// [`Zone::chunk_entries`]: several threads share a zone's chunks out).
    pub fn direct_entries_in_chunk(
        &self,
        zi: usize,
        k: usize,
    ) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        self.zones
            .get(zi)
            .into_iter()
            .flat_map(move |zone| zone.chunk_entries(k))
            .filter(move |&(e, owner, _)| self.is_direct(zi, e, owner))
    }

    /// Whether entry `entry` (named `owner`) of zone `zi` is found with one hash lookup.
    pub fn is_direct(&self, zi: usize, entry: u32, owner: &[u8]) -> bool {
        let Ok(z) = u32::try_from(zi) else {
            return false;
        };
        self.direct
            .find(name_hash(owner), |&(hz, he)| {
                (hz & !ZONE_FLAGS, he) == (z, entry)
            })
            .is_some()
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The index of the zone whose origin is `origin` (lowercase wire), if served here.
    pub fn position_of(&self, origin: &[u8]) -> Option<usize> {
        self.zones.iter().position(|z| z.origin() == origin)
    }

    /// The zone whose origin is `origin` (lowercase wire), if served here.
    pub fn by_origin(&self, origin: &[u8]) -> Option<&Zone> {
        self.zones.get(self.position_of(origin)?)
    }

    /// The most specific zone containing `qname` (lowercase wire). A DS question at a zone
    /// apex belongs to the parent side of the cut (RFC 4035 §3.1.4.1) when we serve the parent.
    pub fn find(&self, qname: &[u8], qtype: u16) -> Option<&Zone> {
        self.find_index(qname, qtype)
            .and_then(|i| self.zones.get(i))
    }

    /// Like [`ZoneSet::find`], as an index into [`ZoneSet::zones`] (for per-zone counters).
    pub fn find_index(&self, qname: &[u8], qtype: u16) -> Option<usize> {
        let mut offsets = [0u8; MAX_LABELS];
        let n = label_offsets(qname, &mut offsets);
        let mut skip_exact = qtype == rtype::DS;
        for &off in &offsets[..n] {
            let suffix = &qname[off as usize..];
            let len = suffix.len().min(255);
            if self.origin_lens[len / 64] & (1 << (len % 64)) == 0 {
                skip_exact = false;
                continue;
            }
            if let Some(&i) = self.by_origin.get(suffix) {
                if skip_exact && suffix.len() == qname.len() && suffix.len() > 1 {
                    skip_exact = false;
                    continue;
                }
                return Some(i);
            }
            skip_exact = false;
        }
        // Only the apex itself was found (no parent zone): answer DS from it after all.
        if qtype == rtype::DS {
            return self.by_origin.get(qname).copied();
        }
        None
    }
}
