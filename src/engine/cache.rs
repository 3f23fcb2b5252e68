//! Answers kept per UDP thread: the records after the question of a response, keyed by what
//! they depend on, so that the next query for the same name and type (and, for a dynamic
//! name, from a client in the same decided network) is the header, its own question, one copy
//! and the OPT record: no zone lookup, no routing decision, no record writing.
//!
//! What a body depends on, and how each is held to:
//! - the snapshot and the health view: its serial and [`HealthView::version`] are in every
//!   slot; a reload or any change of health makes every slot stale at once;
//! - the question: the name, kept lowercased and compared in full ignoring case, the type;
//!   class IN only. Names in the body are pointers to the question or zone data, never the
//!   query's own spelling, except for a CNAME synthesized from a DNAME: such answers are not
//!   kept;
//! - room: only complete bodies are kept (nothing truncated, no additional record left out),
//!   and a body that does not fit the next client's size goes the general way;
//! - the client, for a dynamic answer: the network the decision was the same for (the
//!   located address within the ECS scope), whether it was located by its ECS address, and
//!   whether the query carried one. Answers drawn at random, and answers through more than
//!   one dynamic name, are not kept;
//! - except for a table-driven name (geo, nearest, latency) whose answer is a function of
//!   the order its table maps the client's network to ([`Decided`]): that is kept by the
//!   order, and a query from any network is located in the table again (one lookup) and
//!   answered from its order's slot, with the scope of its own network. A flood of ever new
//!   ECS networks is then answered from the cache, not decided afresh.
//!
//! Layout: a slot is 1024 bytes, aligned (a hit reads its header, name and body lines);
//! direct-mapped. A name's client-independent answer, or its first decided network or
//! order, lives in the slot of (name, type); other networks of a dynamic name in the slot of
//! (name, type, client /24 or /48), other orders in the slot of (name, type, order). The
//! table is an anonymous mapping: untouched slots cost nothing.
//!
//! Per query: no allocation, no lock; the counters are the thread's own (atomics written with
//! plain loads and stores, read by /metrics).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::packet::{Counted, PacketCache, SourceNet, Whole, WholeCookie, slot_index};
use crate::dns::name::same_name_as_asked;
use crate::health::HealthView;
use crate::pages::{ZeroValid, ZeroedPages};
use crate::routing::{Decided, Located, Routing};

/// Longest (lowercased, wire-form) question name kept.
pub const NAME_MAX: usize = 96;
/// Largest body kept: room for a signed NXDOMAIN (SOA, two NSEC, three RRSIGs).
pub const BODY_MAX: usize = 856;
/// Slots per thread unless `[server] answer_cache` says otherwise.
pub const DEFAULT_SLOTS: usize = 2048;

/// `Slot::scope`: the answer carries no ECS scope (no dynamic name answered).
const NO_SCOPE: u8 = u8::MAX;
/// `Slot::bits`: valid for every client.
const ANY_CLIENT: u8 = u8::MAX;
/// `Slot::bits`: valid for clients whose network the name's table maps to the order held in
/// `Slot::net` ([`decided_net`]).
const DECIDED: u8 = u8::MAX - 1;

const FLAG_AUTHORITATIVE: u8 = 1;
/// Located by the ECS address (else the source address).
const FLAG_FROM_ECS: u8 = 2;
/// The query that filled the slot carried a usable ECS option.
const FLAG_HAD_ECS: u8 = 4;
const FLAG_V6: u8 = 8;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// Hash of name and type, with the low bit set (0: never filled).
    tag: u64,
    /// [`crate::engine::Snapshot::serial`] of the snapshot the slot was filled from.
    serial: u64,
    health: u64,
    /// The client network (IPv4 in the first 4 bytes), zero past `bits`; with `bits` at
    /// [`DECIDED`], the dynamic name and order instead.
    net: [u8; 16],
    /// This thread's slots of the per-zone and per-name counters a hit counts in
    /// (addresses; 0: none), owned by the snapshot of `serial`.
    counters: [usize; 2],
    counts: [u16; 3],
    body_len: u16,
    qtype: u16,
    name_len: u8,
    scope: u8,
    bits: u8,
    flags: u8,
    rcode: u8,
    name: [u8; NAME_MAX],
    body: [u8; BODY_MAX],
}

// SAFETY: integers and arrays of them only.
unsafe impl ZeroValid for Slot {}

const _: () = assert!(size_of::<Slot>() == 1024);

/// Counts of one thread's cache, for /metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stores: AtomicU64,
    /// Hits answered with the kept response whole (`engine::packet`), also in `hits`.
    pub whole: AtomicU64,
}

/// Every thread's [`CacheStats`], registered once per thread at start.
static REGISTRY: std::sync::Mutex<Vec<Arc<CacheStats>>> = std::sync::Mutex::new(Vec::new());

/// Sums of every thread's cache counts: (hits, misses, stores, whole-response hits).
pub fn totals() -> (u64, u64, u64, u64) {
    let list = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().fold((0, 0, 0, 0), |(h, m, s, w), c| {
        (
            h + c.hits.load(Ordering::Relaxed),
            m + c.misses.load(Ordering::Relaxed),
            s + c.stores.load(Ordering::Relaxed),
            w + c.whole.load(Ordering::Relaxed),
        )
    })
}

/// Bumps a counter only this thread writes: a load and a store, no locked instruction.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// Which of a name's answers a query asks for beyond its type and client: kept apart, as
/// they differ. Where no zone is signed, DO changes nothing and every query is `Plain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Plain = 0,
    /// DO: signatures and denial proofs.
    Dnssec = 1,
    /// DO and CO: as `Dnssec`, and compact denial answers NXDOMAIN (RFC 9824 §4), not
    /// NOERROR.
    DnssecCompact = 2,
}

impl Flavour {
    /// `dnssec`: DO where some zone is signed; `edns`: the query's, for its CO bit
    /// (borrowed: a copy of the record cost its ~36 bytes on every query).
    #[inline]
    pub fn of(dnssec: bool, edns: Option<&crate::dns::wire::Edns>) -> Self {
        match (dnssec, edns.is_some_and(|e| e.compact_ok)) {
            (false, _) => Flavour::Plain,
            (true, false) => Flavour::Dnssec,
            (true, true) => Flavour::DnssecCompact,
        }
    }
}

/// The question, the client and the data answered from, as the cache sees them.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    /// The question name in wire form, as asked (any case): slots hold it lowercased and
    /// compare ignoring case.
    name: &'a [u8],
    qtype: u16,
    source: IpAddr,
    /// The query's usable ECS address (present, enabled, prefix > 0).
    ecs: Option<IpAddr>,
    /// (snapshot serial, health view version).
    now: (u64, u64),
    /// Hash of name and type, low bit set: the slot tag.
    tag: u64,
}

impl<'a> Key<'a> {
    /// `name` as asked and its [`crate::dns::name::name_hash`]; `serial` of the snapshot answered from,
    /// `health` the view used. `flavour`: with DO (and CO) where some zone is signed, so
    /// that such answers are kept apart from the others.
    #[inline]
    pub fn new(
        (name, name_hash): (&'a [u8], u64),
        (qtype, flavour): (u16, Flavour),
        source: IpAddr,
        ecs: Option<IpAddr>,
        serial: u64,
        health: &HealthView,
    ) -> Self {
        Self {
            name,
            qtype,
            source,
            ecs,
            now: (serial ^ ((flavour as u64) << 62), health.version()),
            tag: tag_of(name_hash, qtype, flavour),
        }
    }

    /// The slot of (name, type).
    fn first(&self, mask: usize) -> usize {
        slot_index(self.tag, mask)
    }

    /// The slot of (name, type, client /24 or /48), for other networks of a dynamic name.
    fn second(&self, mask: usize) -> usize {
        self.second_hash() as usize & mask
    }

    /// Hash of (name, type, client /24 or /48): from the tag rather than the name again,
    /// one multiply with the high bits folded down.
    fn second_hash(&self) -> u64 {
        let client = self.ecs.unwrap_or(self.source);
        spread(self.tag ^ bucket(client))
    }

    /// Hash of (name, type, order), for a table-driven name's other orders.
    fn order_hash(&self, order: u32) -> u64 {
        spread(self.tag ^ (u64::from(order) << 1 | 1 << 62))
    }
}

/// One multiply, the high bits folded down.
fn spread(v: u64) -> u64 {
    let v = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    v ^ (v >> 29) ^ (v >> 47)
}

/// How a slot of [`DECIDED`] holds what decided its answer.
fn decided_net(d: Decided) -> [u8; 16] {
    let mut net = [0; 16];
    net[..4].copy_from_slice(&d.name.to_le_bytes());
    net[4..8].copy_from_slice(&d.order.to_le_bytes());
    net
}

/// A kept answer, as the answer path uses it.
pub struct Hit<'a> {
    pub body: &'a [u8],
    pub counts: [u16; 3],
    pub rcode: u8,
    pub authoritative: bool,
    pub scope: Option<u8>,
    /// For [`count_hit`].
    pub counters: [usize; 2],
    /// The network of packet sources the answer holds for, when it was decided by the
    /// packet's source address (`None`: by the ECS address, or for everyone).
    pub source: Option<SourceNet>,
}

/// Counts a hit in the per-zone and per-name counters its slot names.
///
/// # Safety
/// `counters` come from a [`Hit`] found under the serial of a snapshot that is still alive
/// (the caller holds it): the snapshot owns those counters.
pub unsafe fn count_hit(counters: [usize; 2]) {
    for c in counters {
        if c != 0 {
            // SAFETY: per the contract, the address is this thread's slot of a Counter owned
            // by a live snapshot; AtomicU64 is shared-mutable by design.
            unsafe { &*(c as *const AtomicU64) }.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What to keep after a miss.
pub struct Fill<'a> {
    pub body: &'a [u8],
    pub counts: [u16; 3],
    pub rcode: u8,
    pub authoritative: bool,
    /// This thread's slots of the counters the answer counted in (zone, then name and
    /// datacenter), from the snapshot being answered from.
    pub counters: [Option<&'a AtomicU64>; 2],
    /// ECS scope the response carries (None: no dynamic name answered).
    pub scope: Option<u8>,
    /// For a dynamic answer: the address it was located by, from ECS or not, and the
    /// prefix over which the decision holds; its per-name counter.
    pub client: Option<(IpAddr, bool, u8)>,
    /// For a table-driven answer: the order it holds for, whatever the network.
    pub decided: Option<Decided>,
}

/// One UDP thread's cache.
pub struct AnswerCache {
    slots: ZeroedPages<Slot>,
    mask: usize,
    stats: Arc<CacheStats>,
    /// The admission filter for negative and wildcard answers (one bit per (name, type)
    /// hash) and for a dynamic name's further networks (per (name, type, network)): set
    /// the first time; admitted the second time. Cleared when a quarter of the bits are
    /// set, so a long flood does not open it for good.
    seen: Box<[u64; SEEN_WORDS]>,
    seen_set: usize,
    /// Whole responses, in front of the slots.
    packets: PacketCache,
}

/// 64 Ki bits (8 KiB) per thread.
const SEEN_WORDS: usize = 1024;

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnswerCache({} slots)", self.mask + 1)
    }
}

/// The slot tag of a question: (name, type, flavour) from the name's [`name_hash`], low bit
/// set, as a [`Key`] holds it. The query path has it before it builds a key, which the usual
/// miss does not need.
///
/// [`name_hash`]: crate::dns::name::name_hash
#[inline]
pub fn tag_of(name_hash: u64, qtype: u16, flavour: Flavour) -> u64 {
    hash(name_hash, qtype, flavour as u64) | 1
}

/// The tag of (name, type, DO apart or not) from the name's hash: the type goes in at the
/// low end, so the multiply carries it into every higher bit, and the fold brings the high
/// bits down again.
fn hash(name_hash: u64, qtype: u16, extra: u64) -> u64 {
    let v = (name_hash.rotate_left(17) ^ u64::from(qtype) ^ (extra << 16))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    v ^ (v >> 29) ^ (v >> 47)
}

/// The address as 16 bytes (IPv4 in the first 4) masked to `bits`: one 128-bit mask.
pub(super) fn masked(addr: IpAddr, bits: u8) -> [u8; 16] {
    let (value, width) = match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    let bits = u32::from(bits.min(width));
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    (value & mask).to_be_bytes()
}

/// The /24 (IPv4) or /48 (IPv6) a client address lies in, for the second slot.
fn bucket(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => u64::from(u32::from(a) >> 8) | 1 << 40,
        IpAddr::V6(a) => (u128::from(a) >> 80) as u64,
    }
}

impl AnswerCache {
    /// A cache of `slots` slots (rounded up to a power of two); `None` for 0.
    pub fn new(slots: usize) -> Option<Self> {
        if slots == 0 {
            return None;
        }
        let n = slots.next_power_of_two();
        let stats = Arc::new(CacheStats::default());
        REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stats.clone());
        Some(Self {
            slots: ZeroedPages::new(n),
            mask: n - 1,
            stats,
            seen: Box::new([0; SEEN_WORDS]),
            seen_set: 0,
            packets: PacketCache::new(n),
        })
    }

    /// Whether the (name, type) tagged `tag` ([`tag_of`]) was offered before (since the
    /// filter was last cleared); marks it as seen. Inlined: every NXDOMAIN and wildcard
    /// answer not yet kept asks it, and the call cost as much as the test.
    #[inline(always)]
    pub fn seen_before(&mut self, tag: u64) -> bool {
        self.seen(tag)
    }

    /// Whether `hash` was marked before; marks it.
    #[inline(always)]
    fn seen(&mut self, hash: u64) -> bool {
        let bit = (hash >> 20) as usize % (SEEN_WORDS * 64);
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.seen[word] & mask != 0 {
            return true;
        }
        self.seen[word] |= mask;
        self.seen_set += 1;
        if self.seen_set > SEEN_WORDS * 64 / 4 {
            self.clear_seen();
        }
        false
    }

    /// Clears the filter (a quarter of its bits set).
    #[cold]
    #[inline(never)]
    fn clear_seen(&mut self) {
        self.seen.fill(0);
        self.seen_set = 0;
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The client address a slot's answer was decided by, for this query.
    fn client_of(slot: &Slot, key: &Key<'_>) -> Option<IpAddr> {
        if (slot.flags & FLAG_HAD_ECS != 0) != key.ecs.is_some() {
            return None;
        }
        if slot.flags & FLAG_FROM_ECS != 0 {
            key.ecs
        } else {
            Some(key.source)
        }
    }

    /// The slot holds an answer of the data `key` is answered from, for its name and type.
    fn current(slot: &Slot, key: &Key<'_>) -> bool {
        slot.tag == key.tag && (slot.serial, slot.health) == key.now
    }

    fn matches(slot: &Slot, key: &Key<'_>) -> bool {
        if !Self::current(slot, key)
            || slot.bits == DECIDED
            || slot.qtype != key.qtype
            || usize::from(slot.name_len) != key.name.len()
        {
            return false;
        }
        // The network before the name: a dynamic name's slot asked from another network
        // (the usual miss under a flood of ECS networks) is told apart without a memcmp.
        if slot.bits != ANY_CLIENT {
            let Some(addr) = Self::client_of(slot, key) else {
                return false;
            };
            if (slot.flags & FLAG_V6 != 0) != addr.is_ipv6() || masked(addr, slot.bits) != slot.net
            {
                return false;
            }
        }
        slot.name
            .get(..key.name.len())
            .is_some_and(|n| same_name_as_asked(n, key.name))
    }

    /// A slot of [`DECIDED`] for `want`, of `key`'s name and type.
    fn matches_decided(slot: &Slot, key: &Key<'_>, want: Decided) -> bool {
        Self::current(slot, key)
            && slot.bits == DECIDED
            && slot.qtype == key.qtype
            && slot.net == decided_net(want)
            && slot
                .name
                .get(..usize::from(slot.name_len))
                .is_some_and(|n| same_name_as_asked(n, key.name))
    }

    /// For a table-driven name whose first slot (`first`) holds an answer decided by an
    /// order: locates the client in the name's table, and finds the slot of its order.
    fn decided(&self, first: usize, key: &Key<'_>, routing: &Routing) -> Option<(usize, Located)> {
        let held = &self.slots[first].net;
        let name = u32::from_le_bytes([held[0], held[1], held[2], held[3]]);
        let at = routing.order_of(name, key.source, key.ecs)?;
        let want = Decided {
            name,
            order: at.order,
        };
        let index = if *held == decided_net(want) {
            first
        } else {
            key.order_hash(at.order) as usize & self.mask
        };
        Self::matches_decided(&self.slots[index], key, want).then_some((index, at))
    }

    /// `at`: where the client stands, for a slot of [`DECIDED`].
    fn hit(slot: &Slot, at: Option<Located>) -> Hit<'_> {
        let (scope, source) = match at {
            // Decided by the ECS address: that is in the query's bytes.
            Some(at) => (
                Some(at.scope),
                (!at.from_ecs).then(|| SourceNet {
                    net: masked(at.addr, at.scope),
                    bits: at.scope,
                    v6: at.addr.is_ipv6(),
                }),
            ),
            None => (
                (slot.scope != NO_SCOPE).then_some(slot.scope),
                (slot.bits != ANY_CLIENT && slot.flags & FLAG_FROM_ECS == 0).then_some(SourceNet {
                    net: slot.net,
                    bits: slot.bits,
                    v6: slot.flags & FLAG_V6 != 0,
                }),
            ),
        };
        Hit {
            body: &slot.body[..usize::from(slot.body_len).min(BODY_MAX)],
            counts: slot.counts,
            rcode: slot.rcode,
            authoritative: slot.flags & FLAG_AUTHORITATIVE != 0,
            scope,
            counters: slot.counters,
            source,
        }
    }

    /// The response kept whole for the query `query` (tagged `tag`, see
    /// [`PacketCache::tag`]) from `source`, copied into `response` with the query's ID.
    /// `now`: (snapshot serial, health view version).
    #[inline]
    pub fn replay(
        &mut self,
        query: &[u8],
        tag: u64,
        source: IpAddr,
        now: (u64, u64),
        response: &mut [u8],
    ) -> Option<(usize, Counted, WholeCookie)> {
        let r = self.packets.replay(query, tag, source, now, response)?;
        bump(&self.stats.hits);
        bump(&self.stats.whole);
        Some(r)
    }

    /// Whether a response to the query tagged `tag` may be kept whole now: the second time
    /// these bytes are answered from a slot (the admission filter). Asked before the caller
    /// gathers what [`AnswerCache::keep_whole`] needs: most such queries are first asks.
    /// Inlined, as [`AnswerCache::seen_before`]: a geo name asked with ever new ECS networks
    /// asks it on every answer.
    #[inline(always)]
    pub fn admits_whole(&mut self, tag: u64) -> bool {
        self.seen(tag)
    }

    /// Keeps `response`, answered to `query` from a slot, whole (after
    /// [`AnswerCache::admits_whole`]).
    pub fn keep_whole(
        &mut self,
        query: &[u8],
        tag: u64,
        response: &[u8],
        now: (u64, u64),
        whole: &Whole,
    ) {
        self.packets.keep(query, tag, response, now, whole);
    }

    /// The kept answer for the question tagged `tag` ([`tag_of`]), whose key `key` makes,
    /// counted as a hit or miss. `routing`: the snapshot's, in whose tables a table-driven
    /// name's client is located. Another name's slot (the usual miss: a random name, a new
    /// one) is told apart by the tag alone, inline, before the key is built: the call and
    /// the key cost more than the test.
    #[inline(always)]
    pub fn get<'k>(
        &mut self,
        tag: u64,
        key: impl FnOnce() -> Key<'k>,
        routing: &Routing,
    ) -> Option<Hit<'_>> {
        if self.slots[slot_index(tag, self.mask)].tag != tag {
            bump(&self.stats.misses);
            return None;
        }
        self.get_tagged(&key(), routing)
    }

    /// [`AnswerCache::get`] once the (name, type) slot's tag is `key`'s. It finds the slot
    /// and tests the tag again (a shift and a compare) rather than taking them from `get`:
    /// passed in, they cost geo answers 13 instructions more (code placement, measured).
    #[inline(never)]
    fn get_tagged(&mut self, key: &Key<'_>, routing: &Routing) -> Option<Hit<'_>> {
        if key.name.len() > NAME_MAX {
            return None;
        }
        let first = key.first(self.mask);
        let slot = &self.slots[first];
        let found = if slot.tag != key.tag {
            None
        } else if slot.bits == DECIDED {
            Self::current(slot, key)
                .then(|| self.decided(first, key, routing))
                .flatten()
                .map(|(i, at)| (i, Some(at)))
        } else if Self::matches(slot, key) {
            Some((first, None))
        } else if slot.bits != ANY_CLIENT {
            // The name's answer depends on the client: other networks sit in their bucket.
            let second = key.second(self.mask);
            Self::matches(&self.slots[second], key).then_some((second, None))
        } else {
            None
        };
        match found {
            Some((i, at)) => {
                bump(&self.stats.hits);
                Some(Self::hit(&self.slots[i], at))
            }
            None => {
                bump(&self.stats.misses);
                None
            }
        }
    }

    /// Keeps the answer to `key` (after a [`AnswerCache::get`] for it missed).
    pub fn put(&mut self, key: &Key<'_>, fill: &Fill<'_>) {
        if key.name.len() > NAME_MAX || fill.body.len() > BODY_MAX {
            return;
        }
        let first = key.first(self.mask);
        // A dynamic name's first network takes the (name, type) slot, the others their own,
        // each the second time it asks: a flood of queries from (or with ECS options of)
        // ever new networks would otherwise push the hot entries out.
        let index = if fill.client.is_some() && Self::current(&self.slots[first], key) {
            let hash = match fill.decided {
                Some(d) => key.order_hash(d.order),
                None => key.second_hash(),
            };
            if !self.seen(hash) {
                return;
            }
            hash as usize & self.mask
        } else {
            first
        };
        let slot = &mut self.slots[index];
        slot.tag = key.tag;
        (slot.serial, slot.health) = key.now;
        slot.qtype = key.qtype;
        slot.name_len = key.name.len() as u8;
        for (kept, &asked) in slot.name.iter_mut().zip(key.name) {
            *kept = asked.to_ascii_lowercase();
        }
        slot.body[..fill.body.len()].copy_from_slice(fill.body);
        slot.body_len = fill.body.len() as u16;
        slot.counts = fill.counts;
        slot.rcode = fill.rcode;
        slot.counters = fill
            .counters
            .map(|c| c.map_or(0, |c| c as *const AtomicU64 as usize));
        slot.scope = fill.scope.unwrap_or(NO_SCOPE);
        let mut flags = if fill.authoritative {
            FLAG_AUTHORITATIVE
        } else {
            0
        };
        if key.ecs.is_some() {
            flags |= FLAG_HAD_ECS;
        }
        match (fill.decided, fill.client) {
            (Some(d), _) => {
                slot.bits = DECIDED;
                slot.net = decided_net(d);
            }
            (None, None) => {
                slot.bits = ANY_CLIENT;
                slot.net = [0; 16];
            }
            (None, Some((addr, from_ecs, bits))) => {
                if from_ecs {
                    flags |= FLAG_FROM_ECS;
                }
                if addr.is_ipv6() {
                    flags |= FLAG_V6;
                }
                slot.bits = bits.min(if addr.is_ipv6() { 128 } else { 32 });
                slot.net = masked(addr, slot.bits);
            }
        }
        slot.flags = flags;
        bump(&self.stats.stores);
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
