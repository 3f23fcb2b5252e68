//! Authoritative data and the RFC 1034 §4.3.2 lookup.
//!
//! This room does no I/O: a [`ZoneSet`] is built once per load and is immutable afterwards;
//! [`ZoneSet::resolve`] walks it for one question and hands the RRsets to a [`Sink`] (the
//! server's response writer). Names are lowercase wire-form byte slices, so a lookup hashes
//! slices of the query's own name and never allocates.

use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

use crate::dns::name::{MAX_LABELS, MAX_NAME_LEN, is_subdomain, label_offsets};
use crate::dns::{RRset, Section, Sink, Transport, name, rcode, rtype};

/// Longest CNAME/DNAME chain followed inside one zone before giving up.
const MAX_CHAIN: usize = 12;

/// Everything stored at one owner name. An empty node is an empty non-terminal.
#[derive(Debug, Default, Clone)]
pub struct Node {
    /// Sorted by type.
    pub rrsets: Vec<RRset>,
    /// A dynamic name: its answers come from `routing`, by this index.
    pub dynamic: Option<u32>,
}

impl Node {
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

/// What a dynamic name answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicOutcome<'d> {
    /// Records were written to the answer section.
    Answered,
    /// A CNAME was written; the chain goes on at this target.
    Cname(&'d [u8]),
    /// The name has nothing of this type.
    NoData,
}

/// Answers for dynamic names (the routing room implements it; static-only users pass
/// [`NoDynamic`]).
pub trait Dynamic {
    fn answer<S: Sink>(
        &mut self,
        index: u32,
        owner: &[u8],
        qtype: u16,
        sink: &mut S,
    ) -> DynamicOutcome<'_>;
}

/// For zone sets without dynamic names.
pub struct NoDynamic;

impl Dynamic for NoDynamic {
    fn answer<S: Sink>(&mut self, _: u32, _: &[u8], _: u16, _: &mut S) -> DynamicOutcome<'_> {
        DynamicOutcome::NoData
    }
}

/// What the lookup decided about the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub rcode: u8,
    pub authoritative: bool,
    /// The records hold bytes of the question name as the query spelled it (a CNAME
    /// synthesized from a DNAME), not only pointers to it: they depend on its case.
    pub spells_qname: bool,
}

/// One zone: the apex and every owner name below it, empty non-terminals included.
#[derive(Debug)]
pub struct Zone {
    origin: Box<[u8]>,
    origin_labels: usize,
    /// Every owner name (lowercase wire) with its node; `index` finds them by name. The
    /// names are stored once: the table holds positions, hashed by the name at them.
    entries: Vec<(Box<[u8]>, Node)>,
    index: HashTable<u32>,
    /// A DNAME at the apex redirects every name below it (known at load: no lookup per query).
    apex_dname: bool,
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM), RFC 2308 §5.
    negative_ttl: u32,
    /// Hash of all records (SOA serial excluded): tells a reload whether content changed.
    fingerprint: u64,
}

impl Zone {
    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        self.entry(name).map(|(_, node)| node)
    }

    /// The stored owner name and node for `name` (lowercase wire).
    fn entry(&self, name: &[u8]) -> Option<&(Box<[u8]>, Node)> {
        self.entry_at(hash_name(name), name)
            .and_then(|i| self.entries.get(i as usize))
    }

    /// Position of `name` (whose hash is `hash`) in `entries`.
    fn entry_at(&self, hash: u64, name: &[u8]) -> Option<u32> {
        self.index
            .find(hash, |&i| {
                self.entries
                    .get(i as usize)
                    .is_some_and(|(owner, _)| owner[..] == *name)
            })
            .copied()
    }

    pub fn apex(&self) -> &Node {
        // A zone is only built with an SOA at its apex (checked in ZoneBuilder::finish).
        self.node(&self.origin).unwrap_or(&EMPTY_NODE)
    }

    pub fn soa(&self) -> Option<&RRset> {
        self.apex().get(rtype::SOA)
    }

    /// The SOA serial, for logs and reload warnings.
    pub fn serial(&self) -> u32 {
        self.soa()
            .and_then(|s| s.rdata.first())
            .and_then(|rd| soa_field(rd, 0))
            .unwrap_or(0)
    }

    /// Hash of the zone's records other than the SOA serial.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Number of owner names (entries) in the zone; entry indexes are below it.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub fn record_count(&self) -> usize {
        self.entries
            .iter()
            .flat_map(|(_, n)| n.rrsets.iter())
            .map(|s| s.rdata.len())
            .sum()
    }

    /// All owner names with their nodes (order unspecified).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.entries.iter().map(|(k, v)| (&k[..], v))
    }
}

static EMPTY_NODE: Node = Node {
    rrsets: Vec::new(),
    dynamic: None,
};

/// Reads the u32 field `index` after the two names of SOA RDATA (0 = serial, 4 = minimum).
fn soa_field(rdata: &[u8], index: usize) -> Option<u32> {
    let mut pos = 0usize;
    for _ in 0..2 {
        pos = name::end_uncompressed(rdata, pos)?;
    }
    let at = pos + index * 4;
    let b = rdata.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The domain name inside RDATA that additional-section processing and chains follow.
pub fn rdata_target(rtype: u16, rdata: &[u8]) -> Option<&[u8]> {
    let start = match rtype {
        rtype::NS | rtype::CNAME | rtype::DNAME | rtype::PTR => 0,
        rtype::MX => 2,
        rtype::SRV => 6,
        _ => return None,
    };
    let end = name::end_uncompressed(rdata, start)?;
    rdata.get(start..end)
}

/// Collects records for one zone, checks RFC consistency rules, then freezes it.
pub struct ZoneBuilder {
    origin: Box<[u8]>,
    nodes: FxHashMap<Box<[u8]>, Node>,
    warnings: Vec<String>,
}

impl ZoneBuilder {
    pub fn new(origin: Vec<u8>) -> Self {
        Self {
            origin: origin.into_boxed_slice(),
            nodes: FxHashMap::default(),
            warnings: Vec::new(),
        }
    }

    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    /// Adds one record. `owner` is lowercase wire form. Errors are reasons, without location.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: Vec<u8>,
    ) -> Result<(), String> {
        if !is_subdomain(owner, &self.origin) {
            return Err(format!(
                "owner {} is outside the zone {}",
                name::to_text(owner),
                name::to_text(&self.origin)
            ));
        }
        if rtype == rtype::SOA && owner != &self.origin[..] {
            return Err("SOA record is only allowed at the zone apex".into());
        }
        let node = self.nodes.entry(owner.into()).or_default();
        if node.dynamic.is_some() {
            return Err(format!(
                "{} is a dynamic name; it cannot have static records too",
                name::to_text(owner)
            ));
        }
        let has_cname = node.get(rtype::CNAME).is_some();
        if rtype == rtype::CNAME {
            if node.get(rtype::CNAME).is_some() {
                return Err("a name can have only one CNAME record".into());
            }
            if node
                .rrsets
                .iter()
                .any(|s| !matches!(s.rtype, rtype::CNAME | 46 | 47))
            {
                return Err("CNAME and other data at the same name (RFC 1034 §3.6.2)".into());
            }
        } else if has_cname && !matches!(rtype, 46 | 47) {
            return Err("CNAME and other data at the same name (RFC 1034 §3.6.2)".into());
        }
        if rtype == rtype::DNAME && node.get(rtype::DNAME).is_some() {
            return Err("a name can have only one DNAME record (RFC 6672 §2.4)".into());
        }
        if rtype == rtype::SOA && node.get(rtype::SOA).is_some() {
            return Err("a zone can have only one SOA record".into());
        }
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                if set.ttl != ttl {
                    self.warnings.push(format!(
                        "TTL {ttl} differs from {} for the same RRset {} type {rtype}; using {}",
                        set.ttl,
                        name::to_text(owner),
                        set.ttl
                    ));
                }
                // Duplicate records collapse into one (RFC 2181 §5).
                if !set.rdata.iter().any(|r| r[..] == rdata[..]) {
                    set.rdata.push(rdata.into_boxed_slice());
                }
            }
            None => {
                node.rrsets.push(RRset {
                    rtype,
                    ttl,
                    rdata: vec![rdata.into_boxed_slice()],
                });
                node.rrsets.sort_by_key(|s| s.rtype);
            }
        }
        Ok(())
    }

    /// Marks `owner` (lowercase wire) as dynamic name number `index`.
    pub fn add_dynamic(&mut self, owner: &[u8], index: u32) -> Result<(), String> {
        if !is_subdomain(owner, &self.origin) {
            return Err(format!(
                "dynamic name {} is outside the zone {}",
                name::to_text(owner),
                name::to_text(&self.origin)
            ));
        }
        if owner == &self.origin[..] {
            return Err("the zone apex cannot be a dynamic name".into());
        }
        // Below a delegation the data would be occluded.
        let mut cur = name::parent(owner);
        while let Some(p) = cur {
            if p.len() <= self.origin.len() {
                break;
            }
            if self
                .nodes
                .get(p)
                .is_some_and(|n| n.get(rtype::NS).is_some())
            {
                return Err(format!(
                    "dynamic name {} is below the delegation {}",
                    name::to_text(owner),
                    name::to_text(p)
                ));
            }
            cur = name::parent(p);
        }
        let node = self.nodes.entry(owner.into()).or_default();
        if !node.rrsets.is_empty() {
            return Err(format!(
                "{} is defined in the zone file and as a dynamic name; keep one",
                name::to_text(owner)
            ));
        }
        if node.dynamic.is_some() {
            return Err(format!(
                "dynamic name {} is defined twice",
                name::to_text(owner)
            ));
        }
        node.dynamic = Some(index);
        Ok(())
    }

    /// Warnings collected so far (TTL mismatches), without location.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Checks the zone as a whole and freezes it.
    pub fn finish(mut self) -> Result<Zone, String> {
        let apex = self
            .nodes
            .get(&self.origin)
            .ok_or_else(|| "the zone has no records at its apex (SOA missing)".to_string())?;
        let soa = apex
            .get(rtype::SOA)
            .ok_or_else(|| "the zone has no SOA record at its apex".to_string())?;
        let soa_rdata = soa
            .rdata
            .first()
            .ok_or_else(|| "the zone has an empty SOA RRset".to_string())?;
        let minimum = soa_field(soa_rdata, 4).ok_or_else(|| "malformed SOA RDATA".to_string())?;
        let negative_ttl = soa.ttl.min(minimum);
        if apex.get(rtype::NS).is_none() {
            return Err("the zone has no NS records at its apex".into());
        }
        if apex.get(rtype::CNAME).is_some() {
            return Err("a CNAME at the zone apex is not allowed".into());
        }

        // Every ancestor between an owner and the apex exists as an empty non-terminal, so
        // that "the name exists" is a single hash lookup and wildcards are blocked correctly.
        let owners: Vec<Box<[u8]>> = self.nodes.keys().cloned().collect();
        for owner in owners {
            let mut cur: &[u8] = &owner;
            while let Some(p) = name::parent(cur) {
                if p.len() < self.origin.len() {
                    break;
                }
                self.nodes.entry(p.into()).or_default();
                cur = p;
            }
        }
        let origin_labels = name::label_count(&self.origin);
        let fingerprint = fingerprint(&self.nodes);
        let apex_dname = self
            .nodes
            .get(&self.origin)
            .is_some_and(|n| n.get(rtype::DNAME).is_some());
        let entries: Vec<(Box<[u8]>, Node)> = self.nodes.into_iter().collect();
        let mut index = HashTable::with_capacity(entries.len());
        for (i, (owner, _)) in entries.iter().enumerate() {
            index.insert_unique(hash_name(owner), i as u32, |&j: &u32| {
                entries
                    .get(j as usize)
                    .map_or(0, |(owner, _)| hash_name(owner))
            });
        }
        Ok(Zone {
            origin: self.origin,
            origin_labels,
            entries,
            index,
            apex_dname,
            negative_ttl,
            fingerprint,
        })
    }
}

/// Order-independent hash of every record, with SOA serials left out.
fn fingerprint(nodes: &FxHashMap<Box<[u8]>, Node>) -> u64 {
    let mut total = 0u64;
    for (owner, node) in nodes {
        for set in &node.rrsets {
            for rd in &set.rdata {
                let mut h = FxHasher::default();
                owner.hash(&mut h);
                set.rtype.hash(&mut h);
                set.ttl.hash(&mut h);
                if set.rtype == rtype::SOA {
                    // Names, then serial (4 bytes), then the rest.
                    let names_end =
                        name::end_uncompressed(rd, 0).and_then(|p| name::end_uncompressed(rd, p));
                    match names_end {
                        Some(p) if rd.len() >= p + 4 => {
                            rd[..p].hash(&mut h);
                            rd[p + 4..].hash(&mut h);
                        }
                        _ => rd.hash(&mut h),
                    }
                } else {
                    rd.hash(&mut h);
                }
                node.dynamic.hash(&mut h);
                // Sum: the same records in any order give the same value.
                total = total.wrapping_add(h.finish());
            }
        }
    }
    total
}

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
    direct: HashTable<(u32, u32)>,
}

/// A name found by one hash lookup: its node, and its position in the zone (which keys
/// anything precomputed per name, such as the server's pre-rendered answers).
#[derive(Debug, Clone, Copy)]
pub struct Direct<'z> {
    pub entry: u32,
    pub node: &'z Node,
}

impl ZoneSet {
    pub fn new(zones: Vec<Zone>) -> Result<Self, String> {
        let mut by_origin = FxHashMap::default();
        let mut origin_lens = [0u64; 4];
        for (i, z) in zones.iter().enumerate() {
            if by_origin.insert(z.origin.clone(), i).is_some() {
                return Err(format!(
                    "zone {} is defined twice",
                    name::to_text(&z.origin)
                ));
            }
            let len = z.origin.len().min(255);
            origin_lens[len / 64] |= 1 << (len % 64);
        }
        let mut set = Self {
            zones,
            by_origin,
            origin_lens,
            direct: HashTable::new(),
        };
        set.direct = set.direct_names();
        Ok(set)
    }

    /// The table behind [`ZoneSet::lookup`].
    fn direct_names(&self) -> HashTable<(u32, u32)> {
        let mut direct = HashTable::new();
        for (zi, zone) in self.zones.iter().enumerate() {
            for (ei, (owner, node)) in zone.entries.iter().enumerate() {
                let apex = owner[..] == zone.origin[..];
                if !apex && (zone.apex_dname || node.get(rtype::NS).is_some()) {
                    continue;
                }
                if self.find_index(owner, rtype::A) != Some(zi) {
                    continue;
                }
                let mut blocked = false;
                let mut cur = name::parent(owner);
                while let Some(p) = cur {
                    if p.len() <= zone.origin.len() {
                        break;
                    }
                    if zone.node(p).is_some_and(|n| {
                        n.get(rtype::NS).is_some() || n.get(rtype::DNAME).is_some()
                    }) {
                        blocked = true;
                        break;
                    }
                    cur = name::parent(p);
                }
                if !blocked {
                    direct.insert_unique(hash_name(owner), (zi as u32, ei as u32), |&(z, e)| {
                        self.entry_name(z, e).map_or(0, hash_name)
                    });
                }
            }
        }
        direct
    }

    fn entry_name(&self, zone: u32, entry: u32) -> Option<&[u8]> {
        self.zones
            .get(zone as usize)
            .and_then(|z| z.entries.get(entry as usize))
            .map(|(owner, _)| &owner[..])
    }

    /// The zone that answers `key` (lowercase wire), as an index into
    /// [`ZoneSet::zones`], and, when one hash lookup settles it, the node that answers.
    /// Pass both to [`ZoneSet::resolve`].
    pub fn lookup(&self, key: &[u8], qtype: u16) -> Option<(usize, Option<Direct<'_>>)> {
        // DS belongs to the parent side of a cut: the general search knows that.
        if qtype != rtype::DS {
            let hit = self.direct.find(hash_name(key), |&(z, e)| {
                self.entry_name(z, e).is_some_and(|owner| owner == key)
            });
            if let Some(&(z, e)) = hit
                && let Some(zone) = self.zones.get(z as usize)
                && let Some((_, node)) = zone.entries.get(e as usize)
            {
                return Some((z as usize, Some(Direct { entry: e, node })));
            }
        }
        self.find_index(key, qtype).map(|i| (i, None))
    }

    /// Every name [`ZoneSet::lookup`] answers with one hash lookup: (zone index, entry
    /// index, owner, node), in zone and entry order (memory order: a walk over a big zone
    /// stays cache-friendly).
    pub fn direct_entries(&self) -> impl Iterator<Item = (usize, u32, &[u8], &Node)> {
        self.zones.iter().enumerate().flat_map(move |(zi, zone)| {
            zone.entries
                .iter()
                .enumerate()
                .filter_map(move |(ei, (owner, node))| {
                    let (z, e) = (u32::try_from(zi).ok()?, u32::try_from(ei).ok()?);
                    self.direct
                        .find(hash_name(owner), |&hit| hit == (z, e))
                        .map(|_| (zi, e, &owner[..], node))
                })
        })
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
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

    /// Answers one question from `zone`. `qname` is the question name as received (its case
    /// is preserved in answers); it must be a valid uncompressed wire name inside `zone`.
    /// `key` is `qname` lowercased, and `node` what [`ZoneSet::lookup`] found for it.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        qname: &[u8],
        key: &[u8],
        node: Option<&Node>,
        qtype: u16,
        transport: Transport,
        sink: &mut S,
        dynamic: &mut D,
    ) -> Outcome {
        let mut out = Outcome {
            rcode: rcode::NOERROR,
            authoritative: true,
            spells_qname: false,
        };
        // The common case: a node found directly, answered without a chain to follow.
        let first = match node {
            Some(node) => Step::Node(node),
            None => zone.step(key, qtype),
        };
        let mut cur = [0u8; MAX_NAME_LEN];
        let Some(cur_len) = self.step_answer(
            zone, first, qname, key, 0, qtype, transport, sink, dynamic, &mut out, &mut cur,
        ) else {
            return out;
        };
        self.follow_chain(
            zone, key, cur, cur_len, qtype, transport, sink, dynamic, out,
        )
    }

    /// The rest of a CNAME or DNAME chain after the first step wrote its part.
    #[allow(clippy::too_many_arguments)]
    fn follow_chain<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        key: &[u8],
        mut cur: [u8; MAX_NAME_LEN],
        mut cur_len: usize,
        qtype: u16,
        transport: Transport,
        sink: &mut S,
        dynamic: &mut D,
        mut out: Outcome,
    ) -> Outcome {
        let mut visited = [0u64; MAX_CHAIN];
        visited[0] = hash_name(key);
        for hop in 1..MAX_CHAIN {
            // Follow the chain only inside this zone, and never around a loop.
            let mut lower = [0u8; MAX_NAME_LEN];
            let lower = name::lower_into(&cur[..cur_len], &mut lower);
            if !is_subdomain(lower, &zone.origin) || visited[..hop].contains(&hash_name(lower)) {
                return out;
            }
            visited[hop] = hash_name(lower);
            let name = cur;
            let step = zone.step(lower, qtype);
            match self.step_answer(
                zone,
                step,
                &name[..cur_len],
                lower,
                hop,
                qtype,
                transport,
                sink,
                dynamic,
                &mut out,
                &mut cur,
            ) {
                Some(len) => cur_len = len,
                None => return out,
            }
        }
        out
    }

    /// Writes what one step of the lookup found. Returns the length of the next name in the
    /// chain (written to `next`), or `None` when the answer is complete.
    #[allow(clippy::too_many_arguments)]
    fn step_answer<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        step: Step<'_>,
        name: &[u8],
        key: &[u8],
        hop: usize,
        qtype: u16,
        transport: Transport,
        sink: &mut S,
        dynamic: &mut D,
        out: &mut Outcome,
        next: &mut [u8; MAX_NAME_LEN],
    ) -> Option<usize> {
        let cur = next;
        match step {
            Step::Referral { cut, node } => {
                if let Some(ns) = node.get(rtype::NS) {
                    if hop == 0 {
                        out.authoritative = false;
                    }
                    if sink.rrset(Section::Authority, cut, ns, ns.ttl) {
                        zone.add_additional(ns, sink);
                    }
                }
                None
            }
            Step::Dname { owner_off, node } => {
                let dname = node.get(rtype::DNAME)?;
                let target = dname.rdata.first()?;
                sink.rrset(Section::Answer, &key[owner_off..], dname, dname.ttl);
                let new_len = owner_off + target.len();
                if new_len > MAX_NAME_LEN {
                    out.rcode = rcode::YXDOMAIN;
                    return None;
                }
                cur[..owner_off].copy_from_slice(&name[..owner_off]);
                cur[owner_off..new_len].copy_from_slice(target);
                out.spells_qname = true;
                sink.record(
                    Section::Answer,
                    name,
                    rtype::CNAME,
                    dname.ttl,
                    &cur[..new_len],
                );
                // The synthesized CNAME answers a CNAME question (RFC 1034 §4.3.2 step 3a
                // follows a CNAME only when QTYPE is not CNAME).
                (qtype != rtype::CNAME).then_some(new_len)
            }
            Step::Node(node) | Step::Wildcard(node) if node.dynamic.is_some() => {
                let index = node.dynamic.unwrap_or_default();
                match dynamic.answer(index, name, qtype, sink) {
                    DynamicOutcome::Answered => None,
                    DynamicOutcome::NoData => {
                        zone.add_negative_soa(sink);
                        None
                    }
                    DynamicOutcome::Cname(target) => {
                        let len = target.len().min(MAX_NAME_LEN);
                        cur[..len].copy_from_slice(&target[..len]);
                        Some(len)
                    }
                }
            }
            Step::Node(node) | Step::Wildcard(node) => zone
                .answer_node(node, name, qtype, transport, sink)
                .map(|target| {
                    let len = target.len().min(MAX_NAME_LEN);
                    cur[..len].copy_from_slice(&target[..len]);
                    len
                }),
            Step::NxDomain => {
                out.rcode = rcode::NXDOMAIN;
                zone.add_negative_soa(sink);
                None
            }
        }
    }
}

/// Where one name leads inside a zone.
enum Step<'z> {
    Node(&'z Node),
    Wildcard(&'z Node),
    Referral { cut: &'z [u8], node: &'z Node },
    Dname { owner_off: usize, node: &'z Node },
    NxDomain,
}

fn hash_name(name: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    name.hash(&mut h);
    h.finish()
}

impl Zone {
    /// Walks down from the apex to `key` (lowercase wire, inside this zone), stopping at a
    /// delegation or DNAME on the way, then finds the node, a wildcard, or nothing.
    fn step(&self, key: &[u8], qtype: u16) -> Step<'_> {
        let mut offsets = [0u8; MAX_LABELS];
        let n = label_offsets(key, &mut offsets);
        let key_labels = n - 1;
        // DNAME at the apex redirects everything below it.
        if self.apex_dname && key_labels > self.origin_labels {
            let apex_off = offsets[key_labels - self.origin_labels] as usize;
            if let Some(apex) = self.node(&key[apex_off..])
                && apex.get(rtype::DNAME).is_some()
            {
                return Step::Dname {
                    owner_off: apex_off,
                    node: apex,
                };
            }
        }
        // The deepest node found on the way down: at the last depth, the name's own node.
        let mut found = None;
        for depth in self.origin_labels + 1..=key_labels {
            let off = offsets[key_labels - depth] as usize;
            let anc = &key[off..];
            let Some((stored, node)) = self.entry(anc) else {
                // Closest encloser is one level up: try its wildcard.
                let encloser = &key[offsets[key_labels - depth + 1] as usize..];
                return self.wildcard(encloser);
            };
            if node.get(rtype::NS).is_some() {
                // DS lives on the parent side of the cut.
                if !(depth == key_labels && qtype == rtype::DS) {
                    return Step::Referral {
                        cut: &stored[..],
                        node,
                    };
                }
            }
            if depth < key_labels && node.get(rtype::DNAME).is_some() {
                return Step::Dname {
                    owner_off: off,
                    node,
                };
            }
            found = Some(node);
        }
        if let Some(node) = found {
            return Step::Node(node);
        }
        match self.node(key) {
            Some(node) => Step::Node(node),
            None => Step::NxDomain,
        }
    }

    fn wildcard(&self, encloser: &[u8]) -> Step<'_> {
        let mut wild = [0u8; MAX_NAME_LEN];
        let len = encloser.len() + 2;
        if len > MAX_NAME_LEN {
            return Step::NxDomain;
        }
        wild[0] = 1;
        wild[1] = b'*';
        wild[2..len].copy_from_slice(encloser);
        match self.node(&wild[..len]) {
            Some(node) => Step::Wildcard(node),
            None => Step::NxDomain,
        }
    }

    /// Answers from an existing node. Returns the CNAME target when the chain goes on.
    fn answer_node<'z, S: Sink>(
        &'z self,
        node: &'z Node,
        owner: &[u8],
        qtype: u16,
        transport: Transport,
        sink: &mut S,
    ) -> Option<&'z [u8]> {
        if qtype == rtype::ANY {
            if node.rrsets.is_empty() {
                self.add_negative_soa(sink);
            } else if transport == Transport::Udp {
                // RFC 8482 §4.1: one RRset is enough over UDP.
                if let Some(set) = node.get(rtype::CNAME).or(node.rrsets.first()) {
                    sink.rrset(Section::Answer, owner, set, set.ttl);
                }
            } else {
                for set in &node.rrsets {
                    sink.rrset(Section::Answer, owner, set, set.ttl);
                }
            }
            return None;
        }
        if let Some(set) = node.get(qtype) {
            if sink.rrset(Section::Answer, owner, set, set.ttl) {
                self.add_additional(set, sink);
            }
            return None;
        }
        if let Some(cname) = node.get(rtype::CNAME) {
            sink.rrset(Section::Answer, owner, cname, cname.ttl);
            return cname
                .rdata
                .first()
                .and_then(|rd| rdata_target(rtype::CNAME, rd));
        }
        self.add_negative_soa(sink);
        None
    }

    fn add_negative_soa<S: Sink>(&self, sink: &mut S) {
        if let Some(soa) = self.soa() {
            sink.rrset(Section::Authority, &self.origin, soa, self.negative_ttl);
        }
    }

    /// A/AAAA for the targets of NS, MX and SRV records that we hold in this zone,
    /// glue below a cut included.
    fn add_additional<S: Sink>(&self, set: &RRset, sink: &mut S) {
        if !matches!(set.rtype, rtype::NS | rtype::MX | rtype::SRV) {
            return;
        }
        for (i, rd) in set.rdata.iter().enumerate() {
            let Some(target) = rdata_target(set.rtype, rd) else {
                continue;
            };
            let mut key = [0u8; MAX_NAME_LEN];
            let key = name::lower_into(target, &mut key);
            if !is_subdomain(key, &self.origin) {
                continue;
            }
            // Skip targets already handled for an earlier record of this RRset.
            let seen = set.rdata[..i].iter().any(|prev| {
                rdata_target(set.rtype, prev).is_some_and(|t| t.eq_ignore_ascii_case(target))
            });
            if seen {
                continue;
            }
            if let Some(node) = self.node(key) {
                for t in [rtype::A, rtype::AAAA] {
                    if let Some(addr) = node.get(t) {
                        sink.rrset(Section::Additional, key, addr, addr.ttl);
                    }
                }
            }
        }
    }
}
