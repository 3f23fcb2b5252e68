//! Whole responses kept per UDP thread, keyed by the query's bytes after its ID: the front of
//! the answer cache. A query whose bytes (flags, counts, question, OPT with its options) are
//! the same as an earlier one's gets that one's response with its own ID, without being
//! parsed: the same bytes would parse the same way and be answered the same. The name's
//! letters may differ in case (resolvers that randomize it, "0x20", as Google Public DNS
//! does): the response then gets the query's spelling in its question, which is the only
//! place a kept response spells the name (answers point at the question; the answer cache
//! keeps nothing that spells it elsewhere), so it is the response the query would get.
//!
//! What else a response depends on is held to as in the answer cache, from whose hits alone
//! it is filled: the snapshot serial and the health view version in every slot; for an
//! answer decided by the packet's source address (not by the ECS address, which is in the
//! bytes), that network. A query whose COOKIE option ends it (as resolvers send it) is kept
//! with the server cookie, which a client echoes from our last answer, left out of the tag
//! and the comparison; its replay gets a server cookie made for it ([`WholeCookie`],
//! `engine::cookies::refresh_replayed`). A query with its COOKIE elsewhere, or TSIG, never
//! comes here. A response is kept the second time its bytes (in any case) are
//! answered from the answer cache: the admission filter, so that questions asked once do not
//! copy every answer in.
//!
//! Layout: 512-byte slots, direct-mapped, in an anonymous mapping: untouched slots cost
//! nothing.

use std::net::IpAddr;

use crate::dns::HEADER_LEN;
use crate::dns::name::eq_fold;
use crate::pages::{ZeroValid, ZeroedPages};

/// Longest query kept, in bytes after the ID: a 60-byte name with an ECS option for IPv6,
/// or a 60-byte name with a client and a server cookie.
pub const QUERY_MAX: usize = 109;
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
    /// The question name's length (0: compare the query's bytes exactly).
    name_len: u8,
    cookie: WholeCookie,
    query: [u8; QUERY_MAX],
    response: [u8; RESPONSE_MAX],
}

const ECS_NONE: u8 = u8::MAX;
const ECS_NO_SCOPE: u8 = u8::MAX - 1;

// SAFETY: integers and arrays of them, and a `WholeCookie` (a `u8` enum whose zero is
// `WholeCookie::None`).
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

/// A response to keep whole: the source network it holds for (`None`: any source), what
/// it counts in, the length of the question name (in the query and the response alike,
/// right after the header), and the query's cookie.
#[derive(Debug, Clone, Copy)]
pub struct Whole {
    pub source: Option<SourceNet>,
    pub counted: Counted,
    pub name_len: usize,
    pub cookie: WholeCookie,
}

/// The COOKIE option of a query kept whole, which then ends both the query and the response
/// (a client cookie and our server cookie, 24 bytes): the replay's server cookie is made
/// for the query replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WholeCookie {
    /// No cookie in the response: the bytes are replayed as kept.
    None = 0,
    /// The query ends with a client cookie alone (8 bytes).
    ClientOnly = 1,
    /// The query ends with a client cookie and a 16-byte server cookie, which the tag and
    /// the comparison leave out: it changes as our answers give the client new ones.
    WithServer = 2,
}

/// The bytes after the ID that the tag hashes: without the last 16 when the query ends with
/// a client and a server cookie.
#[inline(always)]
fn tagged(rest: &[u8]) -> &[u8] {
    if super::cookies::ends_with_cookie(rest) {
        &rest[..rest.len() - 16]
    } else {
        rest
    }
}

/// The bit that tells an ASCII letter's case, set in every byte hashed: the tag is the same
/// for the name in any case. Other bytes lose that bit for the hash only; the comparison
/// is exact for every byte but the name's letters.
const CASE: u64 = 0x2020_2020_2020_2020;

/// The slot of `tag`, here and in the answer cache: its bits above the lowest, which every
/// tag has set (an empty slot's tag is 0), so that every slot is used.
#[inline]
pub(super) fn slot_index(tag: u64, mask: usize) -> usize {
    (tag >> 1) as usize & mask
}

/// An odd constant with its bits spread (the fractional part of the golden ratio).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// The 128-bit product of `a` and `b`, its halves xored: the high half carries every bit
/// of the inputs into the low one.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// `h` with the sixteen bytes of `bytes` at `at` (under sixteen in all: the first eight and
/// the last eight) mixed in: two words multiplied, the product folded.
#[inline(always)]
fn window(h: u64, bytes: &[u8], at: usize) -> u64 {
    let second = (at + 8).min(bytes.len() - 8);
    // `| CASE` makes each word's low byte differ from MIX's (0x15): never a zero factor.
    folded_multiply(
        h ^ (word(bytes, at) | CASE),
        (word(bytes, second) | CASE) ^ MIX,
    )
}

/// Eight bytes of `bytes` (at least eight) from `at`, little-endian.
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

impl PacketSlot {
    /// What of `rest` (a query's bytes after the ID) must equal the kept query's: all of it,
    /// but the server cookie at its end when the kept one had one.
    #[inline(always)]
    fn compared<'q>(&self, rest: &'q [u8]) -> &'q [u8] {
        if self.cookie == WholeCookie::WithServer {
            &rest[..rest.len().saturating_sub(16)]
        } else {
            rest
        }
    }

    /// Whether `rest` (a query's bytes after the ID, as long as the kept query's) differs
    /// from the kept query only in the case of the name's letters. Off the path of the
    /// same bytes asked again.
    #[cold]
    #[inline(never)]
    fn same_but_for_case(&self, rest: &[u8]) -> bool {
        let rest = self.compared(rest);
        let kept = &self.query[..rest.len().min(QUERY_MAX)];
        let name = HEADER_LEN - 2..HEADER_LEN - 2 + usize::from(self.name_len);
        self.name_len > 0
            && kept.get(..name.start) == rest.get(..name.start)
            && kept.get(name.end..) == rest.get(name.end..)
            && kept
                .get(name.clone())
                .zip(rest.get(name))
                .is_some_and(|(a, b)| eq_fold(a, b))
    }
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

    /// The tag of a query: the hash of its bytes after the ID with the case bit set in
    /// each, low bit set; `None` for a query too long to keep or too short to be one. One
    /// multiply per sixteen bytes (the last sixteen overlapping the ones before), two words
    /// of the query multiplied and the 128-bit product folded in half, so that every byte
    /// reaches every bit: the slot index and the admission filter take different bits of
    /// it. Every query pays for it, also the ones that miss: up to 64 bytes the windows
    /// are fixed (0, 16, len − 32, len − 16), without a loop, ~20 instructions fewer.
    #[inline]
    pub fn tag(query: &[u8]) -> Option<u64> {
        let rest = query
            .get(2..)
            .filter(|r| (HEADER_LEN - 2..=QUERY_MAX).contains(&r.len()))?;
        let len = rest.len();
        let rest = tagged(rest);
        let n = rest.len();
        let mut h = len as u64;
        // Up to 64 bytes (most queries without options) in fixed windows that overlap.
        if n <= 16 {
            h = window(h, rest, 0);
        } else if n <= 32 {
            h = window(window(h, rest, 0), rest, n - 16);
        } else if n <= 64 {
            h = window(window(h, rest, 0), rest, 16);
            h = window(window(h, rest, n - 32), rest, n - 16);
        } else {
            let mut chunks = rest.chunks_exact(16);
            for c in &mut chunks {
                h = window(h, c, 0);
            }
            if !chunks.remainder().is_empty() {
                h = window(h, rest, n - 16);
            }
        }
        Some(h | 1)
    }

    /// Copies the response kept for `query` (tagged `tag`) from `source` into `response`,
    /// with the query's ID; returns its length, what it counts in, and whether its server
    /// cookie is still to be made. `now`: (snapshot serial, health view version).
    #[inline]
    pub fn replay(
        &self,
        query: &[u8],
        tag: u64,
        source: IpAddr,
        now: (u64, u64),
        response: &mut [u8],
    ) -> Option<(usize, Counted, WholeCookie)> {
        let slot = &self.slots[slot_index(tag, self.mask)];
        let rest = query.get(2..)?;
        if slot.tag != tag
            || (slot.serial, slot.health) != now
            || usize::from(slot.query_len) != rest.len()
        {
            return None;
        }
        // The same bytes; else the same but for the case of the name's letters, whose
        // spelling then goes into the response's question.
        let compared = slot.compared(rest);
        let respell = slot.query[..compared.len()] != *compared;
        if respell && !slot.same_but_for_case(rest) {
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
        if respell {
            let name = HEADER_LEN..HEADER_LEN + usize::from(slot.name_len);
            out.get_mut(name.clone())?.copy_from_slice(query.get(name)?);
        }
        let counted = Counted {
            counters: slot.counters,
            qtype_index: slot.qtype_index,
            ecs: match slot.ecs {
                ECS_NONE => None,
                ECS_NO_SCOPE => Some(None),
                s => Some(Some(s)),
            },
        };
        Some((len, counted, slot.cookie))
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
        let slot = &mut self.slots[slot_index(tag, self.mask)];
        slot.tag = tag;
        // A name too long to say in a byte, or longer than what follows the header, is
        // compared exactly (never by the name alone).
        slot.name_len = u8::try_from(whole.name_len)
            .ok()
            .filter(|&n| usize::from(n) + HEADER_LEN <= query.len().min(response.len()))
            .unwrap_or(0);
        (slot.serial, slot.health) = now;
        slot.query_len = rest.len() as u8;
        slot.query[..rest.len()].copy_from_slice(rest);
        slot.response_len = response.len() as u16;
        slot.response[..response.len()].copy_from_slice(response);
        slot.counters = whole.counted.counters;
        slot.cookie = whole.cookie;
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
            cookie: WholeCookie::None,
            name_len: 5,
        }
    }

    const QUERY: &[u8; 21] =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
    const RESPONSE: &[u8; 25] =
        b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01rest";

    /// `bytes` with `at` replaced by `with`.
    fn with<const N: usize>(bytes: &[u8; N], at: usize, with: &[u8]) -> [u8; N] {
        let mut b = *bytes;
        b[at..at + with.len()].copy_from_slice(with);
        b
    }

    #[test]
    fn replays_the_same_bytes_with_the_new_id_only() {
        let mut c = PacketCache::new(64);
        let tag = PacketCache::tag(QUERY).expect("short enough");
        let from = IpAddr::from([10, 0, 0, 1]);
        let mut out = [0u8; 64];
        assert!(c.replay(QUERY, tag, from, (1, 1), &mut out).is_none());
        c.keep(QUERY, tag, RESPONSE, (1, 1), &whole(None));
        let again = with(QUERY, 0, b"\xab\xcd");
        let (len, counted, cookie) = c.replay(&again, tag, from, (1, 1), &mut out).expect("kept");
        assert_eq!(cookie, WholeCookie::None);
        assert_eq!(out[..len], with(RESPONSE, 0, b"\xab\xcd"));
        assert_eq!(counted, whole(None).counted);
        // Other data or health: stale.
        assert!(c.replay(QUERY, tag, from, (2, 1), &mut out).is_none());
        assert!(c.replay(QUERY, tag, from, (1, 2), &mut out).is_none());
        let long = [0u8; QUERY_MAX + 3];
        assert!(PacketCache::tag(&long).is_none());
        assert!(PacketCache::tag(&QUERY[..11]).is_none());
    }

    #[test]
    fn the_name_in_another_case_gets_its_own_spelling_back() {
        let mut c = PacketCache::new(64);
        let tag = PacketCache::tag(QUERY).expect("short enough");
        let from = IpAddr::from([10, 0, 0, 1]);
        let mut out = [0u8; 64];
        c.keep(QUERY, tag, RESPONSE, (1, 1), &whole(None));
        let mixed = with(QUERY, 13, b"wW");
        assert_eq!(PacketCache::tag(&mixed), Some(tag));
        let (len, ..) = c.replay(&mixed, tag, from, (1, 1), &mut out).expect("kept");
        assert_eq!(out[..len], with(RESPONSE, 13, b"wW"));
        // The case bit outside the name (here the class, 0x21): hashed alike, but other
        // bytes, so not replayed.
        let class = with(QUERY, 20, b"\x21");
        assert_eq!(PacketCache::tag(&class), Some(tag));
        assert!(c.replay(&class, tag, from, (1, 1), &mut out).is_none());
        // Another name of the same length: not replayed.
        let other = with(QUERY, 13, b"wwx");
        let other_tag = PacketCache::tag(&other).expect("tag");
        assert!(
            c.replay(&other, other_tag, from, (1, 1), &mut out)
                .is_none()
        );
        assert!(c.replay(&other, tag, from, (1, 1), &mut out).is_none());
        // Kept without the name's length: exact bytes only.
        let exact_only = Whole {
            name_len: 0,
            ..whole(None)
        };
        c.keep(QUERY, tag, RESPONSE, (1, 1), &exact_only);
        assert!(c.replay(&mixed, tag, from, (1, 1), &mut out).is_none());
        assert!(c.replay(QUERY, tag, from, (1, 1), &mut out).is_some());
    }

    /// `QUERY` (or `RESPONSE`) with an OPT record that ends with a COOKIE option of
    /// `client` and `server`.
    fn with_cookie(message: &[u8], client: &[u8; 8], server: &[u8; 16]) -> Vec<u8> {
        let mut m = message.to_vec();
        m[11] = 1; // ARCOUNT
        // Root, type OPT, class (UDP size) 1232, TTL 0, RDLENGTH 28.
        m.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 28]);
        m.extend_from_slice(&[0, 10, 0, 24]); // COOKIE, 24 bytes
        m.extend_from_slice(client);
        m.extend_from_slice(server);
        m
    }

    /// A query that ends with a client and a server cookie: the server cookie (its last 16
    /// bytes) is left out of the tag and the comparison, the client cookie is not, and the
    /// replay says the server cookie is still to be made. A query kept without a cookie
    /// (whose bytes only look like one) is compared in full.
    #[test]
    fn a_server_cookie_at_the_end_is_left_out() {
        let mut c = PacketCache::new(64);
        let from = IpAddr::from([10, 0, 0, 1]);
        let mut out = [0u8; 128];
        let query = with_cookie(QUERY, b"client-1", b"server-cookie-01");
        let echoed_later = with_cookie(QUERY, b"client-1", b"server-cookie-02");
        let other_client = with_cookie(QUERY, b"client-2", b"server-cookie-01");
        let tag = PacketCache::tag(&query).expect("short enough");
        assert_eq!(PacketCache::tag(&echoed_later), Some(tag));
        assert_ne!(PacketCache::tag(&other_client), Some(tag));
        let response = with_cookie(RESPONSE, b"client-1", b"made-for-query-1");
        let kept = Whole {
            cookie: WholeCookie::WithServer,
            ..whole(None)
        };
        c.keep(&query, tag, &response, (1, 1), &kept);
        let (len, _, cookie) = c
            .replay(&echoed_later, tag, from, (1, 1), &mut out)
            .expect("kept");
        assert_eq!(cookie, WholeCookie::WithServer);
        assert_eq!(out[2..len], response[2..]);
        assert!(
            c.replay(&other_client, tag, from, (1, 1), &mut out)
                .is_none()
        );
        // Kept as bytes without a cookie: the last 16 bytes count.
        c.keep(&query, tag, &response, (1, 1), &whole(None));
        assert!(
            c.replay(&echoed_later, tag, from, (1, 1), &mut out)
                .is_none()
        );
        let (.., cookie) = c.replay(&query, tag, from, (1, 1), &mut out).expect("kept");
        assert_eq!(cookie, WholeCookie::None);
    }

    /// Every byte after the ID reaches the tag, at every length a query may have: the
    /// windows over the bytes (fixed up to 64, a loop beyond) leave none out.
    #[test]
    fn every_byte_after_the_id_changes_the_tag() {
        for len in HEADER_LEN..=QUERY_MAX + 2 {
            let query: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let tag = PacketCache::tag(&query).expect("short enough");
            for at in 2..len {
                let mut changed = query.clone();
                changed[at] ^= 0x40;
                assert_ne!(
                    PacketCache::tag(&changed),
                    Some(tag),
                    "length {len}, byte {at}"
                );
            }
        }
    }

    /// Names that differ in a byte or two (host1, host2...) spread over the slots about as
    /// chance would. A word-wise FxHash put 120 such queries in 50 of 2048 slots, and an
    /// index that kept the tag's lowest bit (always set) used only the odd slots.
    #[test]
    fn similar_queries_spread_over_the_slots() {
        let wire = |labels: &[&str]| -> Vec<u8> {
            let mut w = Vec::new();
            for l in labels {
                w.push(l.len() as u8);
                w.extend_from_slice(l.as_bytes());
            }
            w.push(0);
            w
        };
        let mut queries = Vec::new();
        for i in 0..60 {
            for (prefix, qtype) in [("host", 1), ("host", 28), ("geo", 1)] {
                let name = wire(&[&format!("{prefix}{i}"), "bench", "example"]);
                for edns in [false, true] {
                    queries.push(crate::dns::wire::build_query(1, &name, qtype, edns, None));
                }
            }
        }
        let slots: std::collections::HashSet<usize> = queries
            .iter()
            .map(|q| slot_index(PacketCache::tag(q).expect("tag"), 2047))
            .collect();
        // 360 queries at random in 2048 slots: about 331 distinct (sd ~5).
        assert!(
            slots.len() >= 315,
            "{} queries in {} slots",
            queries.len(),
            slots.len()
        );
    }

    #[test]
    fn an_answer_by_source_holds_in_its_network_only() {
        let mut c = PacketCache::new(64);
        let query = &with(QUERY, 13, b"geo");
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
