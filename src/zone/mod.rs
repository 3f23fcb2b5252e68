//! Authoritative data and the RFC 1034 §4.3.2 lookup.
//!
//! This room does no I/O: a [`ZoneSet`] is built once per load and is immutable afterwards;
//! [`ZoneSet::resolve`] walks it for one question and hands the RRsets to a [`Sink`] (the
//! server's response writer). Names are lowercase wire-form byte slices, so a lookup hashes
//! slices of the query's own name and never allocates.

use hashbrown::HashTable;

use crate::dns::name::{MAX_LABELS, MAX_NAME_LEN, is_subdomain, label_offsets, name_hash};
use crate::dns::wire::NegativeSoa;
use crate::dns::{RRset, Section, Sink, name, rcode, rtype};
use entries::Entries;

/// Longest CNAME/DNAME chain followed inside one zone before giving up.
const MAX_CHAIN: usize = 12;

/// Everything stored at one owner name. An empty node is an empty non-terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Sorted by type. A boxed slice, sized exactly: most names hold one or two RRsets,
    /// where a growing `Vec` would keep room for four.
    pub rrsets: Box<[RRset]>,
    /// A dynamic name: its answers come from `routing`, by this index (NOT_DYNAMIC: none;
    /// not an `Option`, so that the node stays 32 bytes with `kinds` beside it).
    dynamic: u32,
    /// Which of NS, DNAME and NSEC3 it holds, kept by the builder beside the node: the
    /// load-time walks over a million names ask that without reading each node's RRsets
    /// (a cache miss each). NSEC3 may be left set after its RRset went (see `nsec3_only`).
    pub(crate) kinds: u8,
}

const NOT_DYNAMIC: u32 = u32::MAX;

impl Default for Node {
    fn default() -> Self {
        Self {
            rrsets: Box::new([]),
            dynamic: NOT_DYNAMIC,
            kinds: 0,
        }
    }
}

const KIND_NS: u8 = 1;
const KIND_DNAME: u8 = 2;
const KIND_NSEC3: u8 = 4;

impl Node {
    pub fn get(&self, rtype: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    /// Adds an RRset of a type the node does not hold yet, keeping the order by type.
    pub(crate) fn insert_rrset(&mut self, set: RRset) {
        let mut sets = std::mem::take(&mut self.rrsets).into_vec();
        // Exactly one more: the boxed slice below then needs no second copy.
        sets.reserve_exact(1);
        self.kinds |= Node::kind_of(set.rtype);
        let at = sets.partition_point(|s| s.rtype < set.rtype);
        sets.insert(at, set);
        self.rrsets = sets.into_boxed_slice();
    }

    /// A dynamic name's index into `routing`'s names.
    pub fn dynamic(&self) -> Option<u32> {
        (self.dynamic != NOT_DYNAMIC).then_some(self.dynamic)
    }

    pub(crate) fn set_dynamic(&mut self, index: u32) {
        self.dynamic = index;
    }

    /// The `kinds` bit of an RRset type (0 for the types not tracked).
    pub(crate) fn kind_of(rtype: u16) -> u8 {
        match rtype {
            rtype::NS => KIND_NS,
            rtype::DNAME => KIND_DNAME,
            rtype::NSEC3 => KIND_NSEC3,
            _ => 0,
        }
    }

    /// Holds NS records (a delegation, below the apex).
    pub fn has_ns(&self) -> bool {
        self.kinds & KIND_NS != 0
    }

    /// Holds a DNAME.
    pub fn has_dname(&self) -> bool {
        self.kinds & KIND_DNAME != 0
    }

    /// Holds only NSEC3 records (and their signatures): not part of the zone's name space
    /// (RFC 5155 §7.2). Queries do not find it; transfers still carry it, as Knot and NSD do.
    pub fn nsec3_only(&self) -> bool {
        self.kinds & KIND_NSEC3 != 0
            && !self.rrsets.is_empty()
            && self.dynamic().is_none()
            && self
                .rrsets
                .iter()
                .all(|s| s.rtype == rtype::NSEC3 || s.rtype == rtype::RRSIG)
            && self.rrsets.iter().any(|s| s.rtype == rtype::NSEC3)
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

    /// After a NODATA from `answer` in a signed zone, for a DO query: writes the proof that
    /// `qtype` is absent at `owner` when the dynamic side has its own (true), else the
    /// zone's NSEC for the name answers.
    fn nodata_proof<S: Sink>(
        &mut self,
        _index: u32,
        _owner: &[u8],
        _qtype: u16,
        _sink: &mut S,
    ) -> bool {
        false
    }
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
    /// The answer came from a wildcard (RFC 4592): the name itself does not exist, and a
    /// flood of random names under the wildcard gets one such answer each.
    pub wildcard: bool,
    /// The name does not exist (NXDOMAIN, or NOERROR under compact denial).
    pub nonexistent: bool,
    /// A wildcard's CNAME led the chain on: the NSEC proving the name itself absent (its
    /// position in the zone's NSEC order) goes after the chain's last answer.
    pub wildcard_cover: Option<u32>,
    /// The answer ended in a referral (its glue may follow in the additional section).
    pub referral: bool,
}

/// One zone: the apex and every owner name below it, empty non-terminals included.
#[derive(Debug)]
pub struct Zone {
    origin: Box<[u8]>,
    origin_labels: usize,
    /// Every owner name with its node; `index` finds them by name. The names are stored
    /// once, in `entries`: the table holds positions, hashed by the name at them.
    entries: Entries,
    index: HashTable<u32>,
    /// Position of the apex: every negative answer reads its SOA (no hash lookup for it).
    apex_at: u32,
    /// Position of each wildcard (`*.x`) by the position of its parent `x`.
    wildcards: wildcards::Wildcards,
    /// A DNAME at the apex redirects every name below it (known at load: no lookup per query).
    apex_dname: bool,
    /// TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM), RFC 2308 §5.
    negative_ttl: u32,
    /// That SOA record rendered for the wire once (the names left to point into the
    /// question).
    negative_soa: NegativeSoa,
    /// Hash of all records (SOA serial excluded): tells a reload whether content changed.
    /// Taken when first asked (a pass over every record: a start never needs it, a reload
    /// only for a zone whose serial stayed the same).
    fingerprint: std::sync::OnceLock<u64>,
    /// Signed (the apex has signatures): DO queries get RRSIGs and denial proofs.
    signed: bool,
    /// Positions in `entries` of the names with an NSEC record, in canonical order: the
    /// NSEC that covers a name is found by a binary search.
    nsec_order: Vec<u32>,
    /// The canonical keys of those names, in the same order (one `memcmp` per probe), their
    /// bytes one after another in `nsec_key_bytes` (in that order too).
    nsec_keys: Vec<OwnerRef>,
    nsec_key_bytes: Owners,
}

impl Zone {
    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        self.entry_at(name_hash(name), name)
            .and_then(|i| self.entries.get(i as usize))
            .map(|(_, node)| node)
    }

    /// The stored owner name and node for `name` (lowercase wire).
    fn entry(&self, name: &[u8]) -> Option<(&[u8], &Node)> {
        self.entry_at(name_hash(name), name)
            .and_then(|i| self.node_at(i as usize))
    }

    /// Position of `name` (whose hash is `hash`) in `entries`.
    fn entry_at(&self, hash: u64, name: &[u8]) -> Option<u32> {
        self.index
            .find(hash, |&i| self.owner_at(i as usize) == Some(name))
            .copied()
    }

    /// The owner name at position `i` of the entries.
    fn owner_at(&self, i: usize) -> Option<&[u8]> {
        self.entries.get(i).map(|(owner, _)| owner)
    }

    pub fn apex(&self) -> &Node {
        // A zone is only built with an SOA at its apex (checked in ZoneBuilder::finish).
        static EMPTY_NODE: std::sync::LazyLock<Node> = std::sync::LazyLock::new(Node::default);
        self.entries
            .get(self.apex_at as usize)
            .map_or_else(|| &*EMPTY_NODE, |(_, node)| node)
    }

    /// The SOA record of this zone's negative answers, rendered at load.
    pub fn negative_soa(&self) -> &NegativeSoa {
        &self.negative_soa
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
        *self
            .fingerprint
            .get_or_init(|| builder::fingerprint(self.nodes()))
    }

    /// Number of owner names (entries) in the zone. Their positions have gaps: see
    /// [`Zone::entries`].
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    pub fn record_count(&self) -> usize {
        self.entries
            .iter()
            .flat_map(|(_, _, node)| node.rrsets.iter())
            .map(|s| s.rdata.len())
            .sum()
    }

    /// All owner names with their nodes (order unspecified).
    /// Every owner and node, also those queries do not find (NSEC3 owners).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.entries.iter().map(|(_, owner, node)| (owner, node))
    }

    /// [`Zone::nodes`] with each one's position (the number [`Zone::node_at`] takes).
    pub fn entries(&self) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        self.entries.iter()
    }

    /// The owner and node at position `i` (see [`Zone::entries`]).
    pub fn node_at(&self, i: usize) -> Option<(&[u8], &Node)> {
        self.entries.get(i)
    }

    /// The entries are kept in this many chunks (see [`Zone::chunk_entries`]).
    pub fn chunk_count(&self) -> usize {
        self.entries.chunk_count()
    }

    /// The entries of chunk `k`: their positions are `k << CHUNK_BITS` and up.
    pub fn chunk_entries(&self, k: usize) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        self.entries.chunk(k)
    }

    /// For each chunk of entries, the number of the same chunk in `other` (a zone it was
    /// reloaded from, or reloaded into; shared in memory), if it is one of its.
    pub fn chunks_kept_from(&self, other: &Zone) -> Vec<Option<usize>> {
        self.entries.shared_with(&other.entries)
    }

    /// How many of this zone's chunks of entries it shares with `other`, and how many it
    /// has.
    pub fn chunks_shared_with(&self, other: &Zone) -> (usize, usize) {
        let kept = self.chunks_kept_from(other);
        (kept.iter().flatten().count(), kept.len())
    }
}

/// Where an owner name (or a canonical key) is in [`Owners`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct OwnerRef {
    at: u32,
    len: u16,
}

/// A zone's owner names (lowercase wire), one after another in one buffer: a name costs
/// its own bytes, where a box per name cost about 48 more (and an allocation each).
#[derive(Debug, Clone, Default, PartialEq)]
struct Owners(Vec<u8>);

impl Owners {
    /// Appends `name`; `None` when the buffer would pass 4 GiB.
    fn push(&mut self, name: &[u8]) -> Option<OwnerRef> {
        let at = u32::try_from(self.0.len()).ok()?;
        let len = u16::try_from(name.len()).ok()?;
        at.checked_add(u32::from(len))?;
        self.0.extend_from_slice(name);
        Some(OwnerRef { at, len })
    }

    fn get(&self, owner: OwnerRef) -> &[u8] {
        let at = owner.at as usize;
        self.0.get(at..at + usize::from(owner.len)).unwrap_or(&[])
    }
}

/// Reads the u32 field `index` after the two names of SOA RDATA (0 = serial, 4 = minimum).
pub(crate) fn soa_field(rdata: &[u8], index: usize) -> Option<u32> {
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
        rtype::MX | rtype::SVCB | rtype::HTTPS => 2,
        rtype::SRV => 6,
        _ => return None,
    };
    let end = name::end_uncompressed(rdata, start)?;
    rdata.get(start..end)
}

mod builder;
mod denial;
mod entries;
mod error;
mod resolve;
mod set;
mod wildcards;

pub use builder::ZoneBuilder;
pub use entries::CHUNK_BITS;
pub use error::ZoneError;
pub use set::{Direct, Found, Wildcard, ZoneSet};
