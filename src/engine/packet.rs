//! Whole responses kept per UDP thread, keyed by the query's bytes after its ID: the front of
//! the answer cache. A query whose bytes (flags, counts, question in its own case, OPT with
//! its options) are the same as an earlier one's gets that one's response with its own ID,
//! without being parsed: the same bytes would parse the same way and be answered the same.
//!
//! What else a response depends on is held to as in the answer cache, from whose hits alone
//! it is filled: the snapshot serial and the health view version in every slot; for an
//! answer decided by the packet's source address (not by the ECS address, which is in the
//! bytes), that network. Queries with a COOKIE option (the server cookie is made per query)
//! or TSIG never come here. A response is kept the second time its bytes are answered from
//! the answer cache (the admission filter), so a resolver that randomizes the case of its
//! names (0x20) does not copy every answer in.
//!
//! Layout: 512-byte slots, direct-mapped, in an anonymous mapping: untouched slots cost
//! nothing.

use std::net::IpAddr;

use std::hash::Hasher;

use crate::pages::{ZeroValid, ZeroedPages};

/// Longest query kept, in bytes after the ID: a 60-byte name with an ECS option for IPv6.
pub const QUERY_MAX: usize = 110;
/// Longest response kept.
pub const RESPONSE_MAX: usize = 338;

/// `PacketSlot::bits`: valid for every source.
const ANY_SOURCE: u8 = u8::MAX;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct PacketSlot {
    /// Hash of the query's bytes after the ID, low bit set (0: never filled).
    tag: u64,
    serial: u64,
    health: u64,
    /// The source network (IPv4 in the first 4 bytes), zero past `bits`.
    net: [u8; 16],
    /// As the answer cache's slot: this thread's slots of the counters a hit counts in.
    counters: [usize; 2],
    response_len: u16,
    query_len: u8,
    bits: u8,
    v6: u8,
    /// For the statistics: the qtype's index, and the ECS scope answered
    /// (`ECS_NONE`: no ECS option in the query; `ECS_NO_SCOPE`: one, answered without scope).
    qtype_index: u8,
    ecs: u8,
    _pad: u8,
    query: [u8; QUERY_MAX],
    response: [u8; RESPONSE_MAX],
}

const ECS_NONE: u8 = u8::MAX;
const ECS_NO_SCOPE: u8 = u8::MAX - 1;

// SAFETY: integers and arrays of them only.
unsafe impl ZeroValid for PacketSlot {}

const _: () = assert!(size_of::<PacketSlot>() == 512);

/// The network of packet sources an answer holds for: `net` masked to `bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceNet {
    pub net: [u8; 16],
    pub bits: u8,
    pub v6: bool,
}

impl SourceNet {
    /// Whether `source` lies in this network.
    pub fn holds(&self, source: IpAddr) -> bool {
        self.v6 == source.is_ipv6() && super::cache::masked(source, self.bits) == self.net
    }
}

/// What a response kept whole counts in when it is replayed, as the answer it copies did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// This thread's slots of the zone and name counters (see [`super::cache::count_hit`]).
    pub counters: [usize; 2],
    pub qtype_index: u8,
    /// The ECS statistic: `None` without an ECS option; else the scope answered, if any.
    pub ecs: Option<Option<u8>>,
}

/// A response to keep whole: the source network it holds for (`None`: any source) and
/// what it counts in.
#[derive(Debug, Clone, Copy)]
pub struct Whole {
    pub source: Option<SourceNet>,
    pub counted: Counted,
}

/// One UDP thread's whole responses.
pub struct PacketCache {
    slots: ZeroedPages<PacketSlot>,
    mask: usize,
}

impl PacketCache {
    /// `slots` slots (a power of two).
    pub fn new(slots: usize) -> Self {
        let n = slots.next_power_of_two().max(1);
        Self {
            slots: ZeroedPages::new(n),
            mask: n - 1,
        }
    }

    /// The tag of a query: the hash of its bytes after the ID, low bit set. FxHash's byte
    /// hash takes 16 bytes per multiply: every query pays for it, also the ones that miss.
    #[inline]
    pub fn tag(query: &[u8]) -> Option<u64> {
        let rest = query.get(2..).filter(|r| r.len() <= QUERY_MAX)?;
        let mut h = rustc_hash::FxHasher::default();
        h.write(rest);
        Some(h.finish() | 1)
    }

    /// Copies the response kept for `query` (tagged `tag`) from `source` into `response`,
    /// with the query's ID; returns its length and what it counts in. `now`: (snapshot
    /// serial, health view version).
    #[inline]
    pub fn replay(
        &self,
        query: &[u8],
        tag: u64,
        source: IpAddr,
        now: (u64, u64),
        response: &mut [u8],
    ) -> Option<(usize, Counted)> {
        let slot = &self.slots[tag as usize & self.mask];
        let rest = &query[2..];
        if slot.tag != tag
            || (slot.serial, slot.health) != now
            || usize::from(slot.query_len) != rest.len()
            || slot.query[..rest.len()] != *rest
        {
            return None;
        }
        if slot.bits != ANY_SOURCE {
            let net = SourceNet {
                net: slot.net,
                bits: slot.bits,
                v6: slot.v6 != 0,
            };
            if !net.holds(source) {
                return None;
            }
        }
        let len = usize::from(slot.response_len);
        let out = response.get_mut(..len)?;
        out.copy_from_slice(&slot.response[..len]);
        out[..2].copy_from_slice(&query[..2]);
        let counted = Counted {
            counters: slot.counters,
            qtype_index: slot.qtype_index,
            ecs: match slot.ecs {
                ECS_NONE => None,
                ECS_NO_SCOPE => Some(None),
                s => Some(Some(s)),
            },
        };
        Some((len, counted))
    }

    /// Keeps `response` as the answer to `query` (tagged `tag`) under `now`.
    pub fn keep(
        &mut self,
        query: &[u8],
        tag: u64,
        response: &[u8],
        now: (u64, u64),
        whole: &Whole,
    ) {
        let Some(rest) = query.get(2..).filter(|r| r.len() <= QUERY_MAX) else {
            return;
        };
        if response.len() > RESPONSE_MAX {
            return;
        }
        let slot = &mut self.slots[tag as usize & self.mask];
        slot.tag = tag;
        (slot.serial, slot.health) = now;
        slot.query_len = rest.len() as u8;
        slot.query[..rest.len()].copy_from_slice(rest);
        slot.response_len = response.len() as u16;
        slot.response[..response.len()].copy_from_slice(response);
        slot.counters = whole.counted.counters;
        slot.qtype_index = whole.counted.qtype_index;
        slot.ecs = match whole.counted.ecs {
            None => ECS_NONE,
            Some(None) => ECS_NO_SCOPE,
            // A scope is at most 128, below both markers.
            Some(Some(s)) => s.min(128),
        };
        match whole.source {
            None => {
                slot.bits = ANY_SOURCE;
                slot.net = [0; 16];
                slot.v6 = 0;
            }
            Some(n) => {
                slot.bits = n.bits;
                slot.net = n.net;
                slot.v6 = u8::from(n.v6);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(source: Option<SourceNet>) -> Whole {
        Whole {
            source,
            counted: Counted {
                counters: [0, 0],
                qtype_index: 1,
                ecs: Some(Some(24)),
            },
        }
    }

    #[test]
    fn replays_the_same_bytes_with_the_new_id_only() {
        let mut c = PacketCache::new(64);
        let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
        let tag = PacketCache::tag(query).expect("short enough");
        let from = IpAddr::from([10, 0, 0, 1]);
        let mut out = [0u8; 64];
        assert!(c.replay(query, tag, from, (1, 1), &mut out).is_none());
        c.keep(query, tag, b"\x12\x34\x81\x80rest", (1, 1), &whole(None));
        let mut again = *query;
        again[..2].copy_from_slice(b"\xab\xcd");
        let (len, counted) = c.replay(&again, tag, from, (1, 1), &mut out).expect("kept");
        assert_eq!(&out[..len], b"\xab\xcd\x81\x80rest");
        assert_eq!(counted, whole(None).counted);
        // Other data or health: stale. Other bytes: another tag, or compared apart.
        assert!(c.replay(query, tag, from, (2, 1), &mut out).is_none());
        assert!(c.replay(query, tag, from, (1, 2), &mut out).is_none());
        let mut upper = *query;
        upper[13] = b'W';
        assert!(c.replay(&upper, tag, from, (1, 1), &mut out).is_none());
        let long = [0u8; QUERY_MAX + 3];
        assert!(PacketCache::tag(&long).is_none());
    }

    #[test]
    fn an_answer_by_source_holds_in_its_network_only() {
        let mut c = PacketCache::new(64);
        let query = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03geo\x00\x00\x01\x00\x01";
        let tag = PacketCache::tag(query).expect("short enough");
        let near = IpAddr::from([81, 2, 69, 7]);
        let net = SourceNet {
            net: super::super::cache::masked(near, 16),
            bits: 16,
            v6: false,
        };
        c.keep(query, tag, b"london", (1, 1), &whole(Some(net)));
        let mut out = [0u8; 64];
        assert!(
            c.replay(query, tag, IpAddr::from([81, 2, 1, 1]), (1, 1), &mut out)
                .is_some()
        );
        assert!(
            c.replay(query, tag, IpAddr::from([1, 0, 16, 1]), (1, 1), &mut out)
                .is_none()
        );
        assert!(
            c.replay(query, tag, "::1".parse().expect("v6"), (1, 1), &mut out)
                .is_none()
        );
    }
}
