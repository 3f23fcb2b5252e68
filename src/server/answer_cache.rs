//! Answers kept per UDP thread: the records after the question of a response, keyed by what
//! they depend on, so that the next query for the same name and type (and, for a dynamic
//! name, from a client in the same decided network) is the header, its own question, one copy
//! and the OPT record: no zone lookup, no routing decision, no record writing.
//!
//! What a body depends on, and how each is held to:
//! - the snapshot and the health view: its serial and [`HealthView::version`] are in every
//!   slot; a reload or any change of health makes every slot stale at once;
//! - the question: the lowercased name (compared in full), the type; class IN only. Names
//!   in the body are pointers to the question or zone data, never the query's own spelling,
//!   except for a CNAME synthesized from a DNAME: such answers are not kept;
//! - room: only complete bodies are kept (nothing truncated, no additional record left out),
//!   and a body that does not fit the next client's size goes the general way;
//! - the client, for a dynamic answer: the network the decision was the same for (the
//!   located address within the ECS scope), whether it was located by its ECS address, and
//!   whether the query carried one. Answers drawn at random, and answers through more than
//!   one dynamic name, are not kept.
//!
//! Layout: a slot is 512 bytes, aligned (a hit reads its header, name and body lines);
//! direct-mapped. A name's client-independent answer, or its first decided network, lives
//! in the slot of (name, type); other networks of a dynamic name in the slot of (name, type,
//! client /24 or /48). The table is an anonymous mapping: untouched slots cost nothing.
//!
//! Per query: no allocation, no lock; the counters are the thread's own (atomics written with
//! plain loads and stores, read by /metrics).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::pages::{ZeroValid, ZeroedPages};
use crate::health::HealthView;

/// Longest (lowercased, wire-form) question name kept.
pub const NAME_MAX: usize = 96;
/// Largest body kept.
pub const BODY_MAX: usize = 344;
/// Slots per thread unless `[server] answer_cache` says otherwise.
pub const DEFAULT_SLOTS: usize = 2048;

/// `Slot::scope`: the answer carries no ECS scope (no dynamic name answered).
const NO_SCOPE: u8 = u8::MAX;
/// `Slot::bits`: valid for every client.
const ANY_CLIENT: u8 = u8::MAX;

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
    /// [`crate::config::Snapshot::serial`] of the snapshot the slot was filled from.
    serial: u64,
    health: u64,
    /// The client network (IPv4 in the first 4 bytes), zero past `bits`.
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

const _: () = assert!(size_of::<Slot>() == 512);

/// Counts of one thread's cache, for /metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stores: AtomicU64,
}

/// Every thread's [`CacheStats`], registered once per thread at start.
static REGISTRY: std::sync::Mutex<Vec<Arc<CacheStats>>> = std::sync::Mutex::new(Vec::new());

/// Sums of every thread's cache counts: (hits, misses, stores).
pub fn totals() -> (u64, u64, u64) {
    let list = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().fold((0, 0, 0), |(h, m, s), c| {
        (
            h + c.hits.load(Ordering::Relaxed),
            m + c.misses.load(Ordering::Relaxed),
            s + c.stores.load(Ordering::Relaxed),
        )
    })
}

/// Bumps a counter only this thread writes: a load and a store, no locked instruction.
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// The question and client as the cache sees them.
#[derive(Clone, Copy)]
pub struct Key<'a> {
    /// Lowercased wire-form question name.
    pub name: &'a [u8],
    pub qtype: u16,
    pub source: IpAddr,
    /// The query's usable ECS address (present, enabled, prefix > 0).
    pub ecs: Option<IpAddr>,
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
}

/// One UDP thread's cache.
pub struct AnswerCache {
    slots: ZeroedPages<Slot>,
    mask: usize,
    stats: Arc<CacheStats>,
    /// The (snapshot serial, health version) the last probe saw.
    current: (u64, u64),
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnswerCache({} slots)", self.mask + 1)
    }
}

fn hash(name: &[u8], qtype: u16, extra: u64) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    h.write_u16(qtype);
    h.write_u64(extra);
    // FxHash's low bits are weak: fold the high ones in.
    let v = h.finish();
    v ^ (v >> 29) ^ (v >> 47)
}

/// The address as 16 bytes (IPv4 in the first 4) masked to `bits`.
fn masked(addr: IpAddr, bits: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    let (bytes, width): (&[u8], u8) = match &addr {
        IpAddr::V4(a) => (&a.octets()[..], 32),
        IpAddr::V6(a) => (&a.octets()[..], 128),
    };
    let mut octets = [0u8; 16];
    octets[..bytes.len()].copy_from_slice(bytes);
    let bits = bits.min(width) as usize;
    out[..bits / 8].copy_from_slice(&octets[..bits / 8]);
    if !bits.is_multiple_of(8) {
        out[bits / 8] = octets[bits / 8] & (0xFFu8 << (8 - bits % 8));
    }
    out
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
            current: (0, 0),
        })
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

    fn matches(slot: &Slot, tag: u64, now: (u64, u64), key: &Key<'_>) -> bool {
        if slot.tag != tag
            || slot.serial != now.0
            || slot.health != now.1
            || slot.qtype != key.qtype
            || usize::from(slot.name_len) != key.name.len()
            || slot.name.get(..key.name.len()) != Some(key.name)
        {
            return false;
        }
        if slot.bits == ANY_CLIENT {
            return true;
        }
        let Some(addr) = Self::client_of(slot, key) else {
            return false;
        };
        (slot.flags & FLAG_V6 != 0) == addr.is_ipv6() && masked(addr, slot.bits) == slot.net
    }

    fn hit(slot: &Slot) -> Hit<'_> {
        Hit {
            body: &slot.body[..usize::from(slot.body_len).min(BODY_MAX)],
            counts: slot.counts,
            rcode: slot.rcode,
            authoritative: slot.flags & FLAG_AUTHORITATIVE != 0,
            scope: (slot.scope != NO_SCOPE).then_some(slot.scope),
            counters: slot.counters,
        }
    }

    /// The kept answer for `key` from the snapshot of `serial` under `health`, counted as a
    /// hit or miss.
    pub fn get(&mut self, serial: u64, health: &HealthView, key: &Key<'_>) -> Option<Hit<'_>> {
        if key.name.len() > NAME_MAX {
            return None;
        }
        let now = (serial, health.version());
        self.current = now;
        let tag = hash(key.name, key.qtype, 0) | 1;
        let first = tag as usize & self.mask;
        let found = if Self::matches(&self.slots[first], tag, now, key) {
            Some(first)
        } else if self.slots[first].tag == tag && self.slots[first].bits != ANY_CLIENT {
            // The name's answer depends on the client: other networks sit in their bucket.
            let client = key.ecs.unwrap_or(key.source);
            let second = hash(key.name, key.qtype, bucket(client)) as usize & self.mask;
            Self::matches(&self.slots[second], tag, now, key).then_some(second)
        } else {
            None
        };
        match found {
            Some(i) => {
                bump(&self.stats.hits);
                Some(Self::hit(&self.slots[i]))
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
        let now = self.current;
        let tag = hash(key.name, key.qtype, 0) | 1;
        let first = tag as usize & self.mask;
        let index = match fill.client {
            None => first,
            Some(_) => {
                let s = &self.slots[first];
                let taken = s.tag == tag && s.serial == now.0 && s.health == now.1;
                if taken {
                    let client = key.ecs.unwrap_or(key.source);
                    hash(key.name, key.qtype, bucket(client)) as usize & self.mask
                } else {
                    first
                }
            }
        };
        let slot = &mut self.slots[index];
        slot.tag = tag;
        slot.serial = now.0;
        slot.health = now.1;
        slot.qtype = key.qtype;
        slot.name_len = key.name.len() as u8;
        slot.name[..key.name.len()].copy_from_slice(key.name);
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
        match fill.client {
            None => {
                slot.bits = ANY_CLIENT;
                slot.net = [0; 16];
            }
            Some((addr, from_ecs, bits)) => {
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
mod tests {
    use super::*;

    fn key<'a>(name: &'a [u8], source: [u8; 4], ecs: Option<[u8; 4]>) -> Key<'a> {
        Key {
            name,
            qtype: 1,
            source: IpAddr::from(source),
            ecs: ecs.map(IpAddr::from),
        }
    }

    fn fill<'a>(body: &'a [u8], client: Option<(IpAddr, bool, u8)>) -> Fill<'a> {
        Fill {
            body,
            counts: [1, 0, 0],
            rcode: 0,
            authoritative: true,
            counters: [None, None],
            scope: client.map(|c| c.2),
            client,
        }
    }

    #[test]
    fn masks_addresses() {
        assert_eq!(
            masked(IpAddr::from([81, 2, 69, 160]), 20)[..4],
            [81, 2, 64, 0]
        );
        assert_eq!(masked(IpAddr::from([81, 2, 69, 160]), 0), [0; 16]);
        assert_eq!(
            masked(IpAddr::from([81, 2, 69, 160]), 40)[..4],
            [81, 2, 69, 160]
        );
    }

    #[test]
    fn keeps_client_independent_answers_for_everyone() {
        let mut c = AnswerCache::new(64).expect("cache");
        let h = HealthView::all_up();
        let k = key(b"\x03www\x07example\x00", [10, 0, 0, 1], None);
        assert!(c.get(1, &h, &k).is_none());
        c.put(&k, &fill(b"body", None));
        let other = key(k.name, [192, 0, 2, 1], Some([81, 2, 69, 0]));
        assert_eq!(
            c.get(1, &h, &other).map(|h| h.body.to_vec()),
            Some(b"body".to_vec())
        );
        // Another type, another name, another generation: misses.
        assert!(c.get(1, &h, &Key { qtype: 28, ..k }).is_none());
        assert!(
            c.get(1, &h, &key(b"\x03wwx\x07example\x00", [10, 0, 0, 1], None))
                .is_none()
        );
        assert!(c.get(2, &h, &k).is_none());
        let (hits, misses, stores) = (
            c.stats().hits.load(Ordering::Relaxed),
            c.stats().misses.load(Ordering::Relaxed),
            c.stats().stores.load(Ordering::Relaxed),
        );
        assert_eq!((hits, misses, stores), (1, 4, 1));
    }

    #[test]
    fn health_change_makes_slots_stale() {
        let mut c = AnswerCache::new(64).expect("cache");
        let before = HealthView::new(vec![true], vec![true], 1);
        let after = HealthView::new(vec![false], vec![true], 1);
        let k = key(b"\x03www\x00", [10, 0, 0, 1], None);
        assert!(c.get(1, &before, &k).is_none());
        c.put(&k, &fill(b"x", None));
        assert!(c.get(1, &before, &k).is_some());
        assert!(c.get(1, &after, &k).is_none());
    }

    #[test]
    fn dynamic_answers_hold_inside_their_network_only() {
        let mut c = AnswerCache::new(1024).expect("cache");
        let h = HealthView::all_up();
        let name = b"\x03geo\x00";
        let london = key(name, [127, 0, 0, 1], Some([81, 2, 69, 0]));
        assert!(c.get(1, &h, &london).is_none());
        c.put(
            &london,
            &fill(b"lon", Some((IpAddr::from([81, 2, 69, 0]), true, 16))),
        );
        // Same /16 by ECS: hit. Another network: miss, then kept beside it.
        let near = key(name, [127, 0, 0, 9], Some([81, 2, 1, 0]));
        assert_eq!(
            c.get(1, &h, &near).map(|h| h.body.to_vec()),
            Some(b"lon".to_vec())
        );
        let tokyo = key(name, [127, 0, 0, 1], Some([1, 0, 16, 0]));
        assert!(c.get(1, &h, &tokyo).is_none());
        c.put(
            &tokyo,
            &fill(b"tyo", Some((IpAddr::from([1, 0, 16, 0]), true, 24))),
        );
        assert_eq!(
            c.get(1, &h, &tokyo).map(|h| h.body.to_vec()),
            Some(b"tyo".to_vec())
        );
        assert_eq!(
            c.get(1, &h, &london).map(|h| h.body.to_vec()),
            Some(b"lon".to_vec())
        );
        // Without ECS the answer was decided by ECS: not valid for a source-located query.
        let plain = key(name, [81, 2, 69, 1], None);
        assert!(c.get(1, &h, &plain).is_none());
    }
}
