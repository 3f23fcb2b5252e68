//! `NetTable`: the immutable longest-prefix-match table used on the query path.
//!
//! The table is a complete partition of each address family into CIDR blocks, stored as a
//! flat sorted array of block starts with parallel arrays of prefix lengths and values. A
//! lookup is one binary search: no allocation, no lock, no pointer chasing through a trie.
//! Blocks with the same value have already been merged into the widest aligned supernet, so
//! the prefix length returned is the widest network over which the answer is the same.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::cidr::{self, Merger};
use super::error::GeoError;

/// One family's blocks. `starts` is sorted; the block for an address is the last start not
/// above it. `buckets` narrows the binary search by the top 16 bits of the address (the
/// search stays within a few cache lines instead of the whole array): for bucket `b`, the
/// answer lies between `buckets[b]` and `buckets[b + 1]`, inclusive.
#[derive(Debug, Clone)]
struct Family<K, T> {
    starts: Vec<K>,
    lens: Vec<u8>,
    values: Vec<T>,
    buckets: Vec<u32>,
}

/// An address as a search key: IPv4 as `u32`, IPv6 as `u128`.
pub(crate) trait Key: Copy + Ord {
    /// From the 128-bit form the builders use (IPv4 in the low 32 bits).
    fn from_u128(v: u128) -> Self;
    /// The top 16 bits.
    fn bucket(self) -> usize;
    /// The first address of a bucket.
    fn bucket_start(bucket: usize) -> Self;
}

impl Key for u32 {
    fn from_u128(v: u128) -> Self {
        v as u32
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
    fn bucket_start(bucket: usize) -> Self {
        (bucket as u32) << 16
    }
}

impl Key for u128 {
    fn from_u128(v: u128) -> Self {
        v
    }
    #[inline]
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
    fn bucket_start(bucket: usize) -> Self {
        (bucket as u128) << 112
    }
}

const BUCKETS: usize = 1 << 16;

impl<K: Key, T> Family<K, T> {
    fn new(mut starts: Vec<K>, mut lens: Vec<u8>, mut values: Vec<T>) -> Self {
        // Built by pushing: up to half of each is spare capacity, kept for the table's life.
        starts.shrink_to_fit();
        lens.shrink_to_fit();
        values.shrink_to_fit();
        let mut buckets = Vec::with_capacity(BUCKETS + 1);
        for b in 0..BUCKETS {
            let first = K::bucket_start(b);
            let i = starts.partition_point(|s| *s <= first).saturating_sub(1);
            buckets.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        buckets.push(u32::try_from(starts.len().saturating_sub(1)).unwrap_or(u32::MAX));
        Self {
            starts,
            lens,
            values,
            buckets,
        }
    }

    #[inline]
    fn find(&self, key: K) -> Option<(&T, u8)> {
        let b = key.bucket();
        let lo = *self.buckets.get(b)? as usize;
        let hi = *self.buckets.get(b + 1)? as usize;
        let within = self.starts.get(lo..=hi)?;
        let i = lo + within.partition_point(|s| *s <= key).checked_sub(1)?;
        Some((self.values.get(i)?, *self.lens.get(i)?))
    }
}

/// An IPv6 range whose answers are those of IPv4 addresses embedded in it, as in MaxMind's
/// IPv6 databases: `::/96` and `::ffff:0:0/96` (IPv4 in the low 32 bits), and, when the
/// database aliases them, 6to4 `2002::/16` and Teredo `2001::/32` (IPv4 just after the
/// prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V4Alias {
    pub(crate) prefix: u128,
    pub(crate) len: u8,
}

impl V4Alias {
    pub(crate) const COMPAT: Self = Self { prefix: 0, len: 96 };
    pub(crate) const MAPPED: Self = Self {
        prefix: 0xffff_0000_0000,
        len: 96,
    };
    pub(crate) const SIX_TO_FOUR: Self = Self {
        prefix: 0x2002 << 112,
        len: 16,
    };
    pub(crate) const TEREDO: Self = Self {
        prefix: 0x2001_0000 << 96,
        len: 32,
    };

    /// The embedded IPv4 address, if `addr` is in this range.
    #[inline]
    pub(crate) fn embedded(&self, addr: u128) -> Option<u32> {
        if addr & !cidr::host_mask(self.len, 128) == self.prefix {
            // The 32 bits right after the prefix; len <= 96 so the shift is in range.
            Some((addr >> (96 - u32::from(self.len))) as u32)
        } else {
            None
        }
    }
}

/// Counts from building a table, for logs and for checking that merging pays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Networks read from the databases (with data or explicitly without).
    pub db_networks: usize,
    /// IPv4 blocks before merging (the intersection of all sources, gaps included).
    pub v4_blocks: usize,
    /// IPv4 entries after merging.
    pub v4_entries: usize,
    /// IPv6 blocks before merging.
    pub v6_blocks: usize,
    /// IPv6 entries after merging.
    pub v6_entries: usize,
}

/// An immutable longest-prefix-match table over IPv4 and IPv6; see the module docs.
#[derive(Debug, Clone)]
pub struct NetTable<T> {
    v4: Family<u32, T>,
    v6: Family<u128, T>,
    v6_aliases: Vec<V4Alias>,
    /// Answer for an address no block covers; unreachable by construction, kept so a lookup
    /// never needs to panic.
    fallback: T,
    stats: TableStats,
}

/// The blocks of one family of a table under construction, kept compact as the merger
/// hands them over (alias blocks are dropped: lookups there go to the IPv4 side).
pub(crate) struct Blocks<K, T> {
    starts: Vec<K>,
    lens: Vec<u8>,
    values: Vec<T>,
    /// Blocks before merging (for the stats).
    pub(crate) pushed: usize,
}

impl<K: Key, T> Blocks<K, T> {
    pub(crate) fn new() -> Self {
        Self {
            starts: Vec::new(),
            lens: Vec::new(),
            values: Vec::new(),
            pushed: 0,
        }
    }

    pub(crate) fn add(&mut self, start: u128, len: u8, slot: Slot<T>) {
        if let Slot::Value(v) = slot {
            self.starts.push(K::from_u128(start));
            self.lens.push(len);
            self.values.push(v);
        }
    }
}

/// What a block of the table under construction holds: a value, or "answer as IPv4".
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot<T> {
    Value(T),
    Alias,
}

impl<T> NetTable<T> {
    /// Every value the table holds, block by block (and the fallback).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        let v4 = self.v4.values.iter();
        v4.chain(&self.v6.values)
            .chain(std::iter::once(&self.fallback))
    }

    /// The same blocks with every value passed through `f` (a table kept from the previous
    /// load, its values renumbered for this one).
    pub fn map_values(&self, mut f: impl FnMut(&T) -> T) -> Self {
        fn family<K: Clone, T>(f: &Family<K, T>, map: &mut impl FnMut(&T) -> T) -> Family<K, T> {
            Family {
                starts: f.starts.clone(),
                lens: f.lens.clone(),
                values: f.values.iter().map(&mut *map).collect(),
                buckets: f.buckets.clone(),
            }
        }
        Self {
            v4: family(&self.v4, &mut f),
            v6: family(&self.v6, &mut f),
            v6_aliases: self.v6_aliases.clone(),
            fallback: f(&self.fallback),
            stats: self.stats,
        }
    }
}

impl<T: Clone + PartialEq> NetTable<T> {
    /// Builds a table from CIDR entries (most specific wins; for the same network, the later
    /// entry wins) over `default`. Useful for maps that are pure CIDR lists.
    pub fn from_nets(default: T, nets: impl IntoIterator<Item = (IpNet, T)>) -> Self {
        let mut values = Vec::new();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (net, value) in nets {
            let idx = values.len();
            values.push(value);
            match normalize_net(net) {
                IpNet::V4(n) => v4.push((u128::from(u32::from(n.network())), n.prefix_len(), idx)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), n.prefix_len(), idx)),
            }
        }
        let aliases = vec![V4Alias::COMPAT, V4Alias::MAPPED];
        let value_of = |p: Option<usize>| p.and_then(|i| values.get(i)).unwrap_or(&default).clone();

        let (mut b4, mut b6) = (Blocks::new(), Blocks::new());
        let mut m4 = Merger::new(32);
        for (start, len, payload) in cidr::partition(32, v4) {
            m4.push(
                start,
                len,
                Slot::Value(value_of(payload)),
                &mut |s, l, v| b4.add(s, l, v),
            );
        }
        b4.pushed = m4.finish(&mut |s, l, v| b4.add(s, l, v));
        let mut m6 = Merger::new(128);
        let alias_parts = alias_partition(&aliases);
        let mut a = alias_parts.into_iter().map(Ok);
        let mut o = cidr::partition(128, v6).into_iter().map(Ok);
        // Both sources are in-memory complete partitions, so the sweep cannot fail.
        let swept = cidr::sweep(128, &mut [&mut a, &mut o], |start, len, p| {
            let slot = match p {
                [Some(_), _] => Slot::Alias,
                [None, payload] => Slot::Value(value_of(*payload)),
                _ => Slot::Alias,
            };
            m6.push(start, len, slot, &mut |s, l, v| b6.add(s, l, v));
            Ok(())
        });
        debug_assert!(swept.is_ok());
        b6.pushed = m6.finish(&mut |s, l, v| b6.add(s, l, v));
        Self::from_merged(b4, b6, aliases, default.clone(), 0)
    }
}

impl<T> NetTable<T> {
    /// Assembles a table from merged blocks.
    pub(crate) fn from_merged(
        m4: Blocks<u32, T>,
        m6: Blocks<u128, T>,
        v6_aliases: Vec<V4Alias>,
        fallback: T,
        db_networks: usize,
    ) -> Self {
        let (v4_blocks, v6_blocks) = (m4.pushed, m6.pushed);
        let v4 = Family::new(m4.starts, m4.lens, m4.values);
        let v6 = Family::new(m6.starts, m6.lens, m6.values);
        let stats = TableStats {
            db_networks,
            v4_blocks,
            v4_entries: v4.starts.len(),
            v6_blocks,
            v6_entries: v6.starts.len(),
        };
        Self {
            v4,
            v6,
            v6_aliases,
            fallback,
            stats,
        }
    }

    /// The value for `ip` and the prefix length of the widest network around `ip` with the
    /// same value. IPv4-mapped (and other IPv4-embedding) IPv6 addresses get the IPv4
    /// answer; their prefix length is then counted in IPv6 bits (96 + the IPv4 prefix for
    /// `::ffff:a.b.c.d`), so it always describes a network containing `ip` as given.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> (&T, u8) {
        match ip {
            IpAddr::V4(v4) => self.lookup_v4(v4),
            IpAddr::V6(v6) => self.lookup_v6(v6),
        }
    }

    /// [`lookup`](Self::lookup) for IPv4.
    #[inline]
    pub fn lookup_v4(&self, ip: Ipv4Addr) -> (&T, u8) {
        self.v4.find(u32::from(ip)).unwrap_or((&self.fallback, 32))
    }

    /// [`lookup`](Self::lookup) for IPv6.
    #[inline]
    pub fn lookup_v6(&self, ip: Ipv6Addr) -> (&T, u8) {
        let addr = u128::from(ip);
        for alias in &self.v6_aliases {
            if let Some(v4) = alias.embedded(addr) {
                let (value, len) = self.lookup_v4(Ipv4Addr::from(v4));
                return (value, alias.len + len);
            }
        }
        self.v6.find(addr).unwrap_or((&self.fallback, 128))
    }

    /// Counts from the build.
    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Number of stored entries (both families).
    pub fn len(&self) -> usize {
        self.v4.starts.len() + self.v6.starts.len()
    }

    /// True if the table has no entries (never the case for a built table).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv6 ranges answered as IPv4 (see [`lookup`](Self::lookup)).
    pub fn ipv4_alias_ranges(&self) -> Vec<Ipv6Net> {
        self.v6_aliases
            .iter()
            .filter_map(|a| Ipv6Net::new(Ipv6Addr::from(a.prefix), a.len).ok())
            .collect()
    }

    /// Every stored block and its value, IPv4 first, in address order.
    pub fn entries(&self) -> impl Iterator<Item = (IpNet, &T)> + '_ {
        let v4 = self
            .v4
            .starts
            .iter()
            .zip(&self.v4.lens)
            .zip(&self.v4.values);
        let v6 = self
            .v6
            .starts
            .iter()
            .zip(&self.v6.lens)
            .zip(&self.v6.values);
        v4.filter_map(|((s, l), v)| {
            Ipv4Net::new(Ipv4Addr::from(*s), *l)
                .ok()
                .map(|n| (IpNet::V4(n), v))
        })
        .chain(v6.filter_map(|((s, l), v)| {
            Ipv6Net::new(Ipv6Addr::from(*s), *l)
                .ok()
                .map(|n| (IpNet::V6(n), v))
        }))
    }
}

/// Rewrites IPv6 networks inside `::ffff:0:0/96` or `::/96` (at least /96 long) as the IPv4
/// networks they stand for, since lookups there are answered from the IPv4 side; masks host
/// bits.
pub(crate) fn normalize_net(net: IpNet) -> IpNet {
    if let IpNet::V6(n) = net {
        let addr = u128::from(n.network());
        if n.prefix_len() >= 96 {
            for alias in [V4Alias::COMPAT, V4Alias::MAPPED] {
                if let Some(v4) = alias.embedded(addr)
                    && let Ok(v4net) = Ipv4Net::new(Ipv4Addr::from(v4), n.prefix_len() - 96)
                {
                    return IpNet::V4(v4net.trunc());
                }
            }
        }
    }
    net.trunc()
}

/// A complete IPv6 partition marking the alias ranges (payload = alias index).
pub(crate) fn alias_partition(aliases: &[V4Alias]) -> Vec<cidr::Item> {
    let nets = aliases
        .iter()
        .enumerate()
        .map(|(i, a)| (a.prefix, a.len, i))
        .collect();
    cidr::partition(128, nets)
}

/// Checks the table's invariants: blocks aligned, in order, not overlapping, and covering
/// the whole space except the IPv6 ranges answered as IPv4. Cheap (linear in the entries);
/// for tests and for callers that want to assert a build.
pub fn check_table<T>(table: &NetTable<T>) -> Result<(), GeoError> {
    let fail = |why: String| Err(GeoError::new("<table>", why));
    let mut aliases: Vec<V4Alias> = table.v6_aliases.clone();
    aliases.sort_by_key(|a| a.prefix);
    // A gap [from, to] is allowed only if it is exactly a run of alias ranges.
    let gap_ok = |width: u8, from: u128, to: u128| {
        let mut cursor = from;
        while cursor <= to {
            let Some(alias) = aliases.iter().find(|a| width == 128 && a.prefix == cursor) else {
                return false;
            };
            let last = cidr::block_last(alias.prefix, alias.len, 128);
            if last >= to {
                return last == to;
            }
            cursor = last + 1;
        }
        true
    };
    let check = |starts: Vec<u128>, lens: &[u8], width: u8, fam: &str| {
        let mut next = Some(0u128);
        for (s, l) in starts.iter().zip(lens) {
            if *l > width || s & cidr::host_mask(*l, width) != 0 {
                return fail(format!("{fam}: misaligned block {s:#x}/{l}"));
            }
            match next {
                None => return fail(format!("{fam}: block {s:#x}/{l} after the end")),
                Some(n) if *s < n => return fail(format!("{fam}: overlap at {s:#x}/{l}")),
                Some(n) if *s > n && !gap_ok(width, n, s - 1) => {
                    return fail(format!("{fam}: gap before {s:#x}/{l}"));
                }
                _ => {}
            }
            let last = cidr::block_last(*s, *l, width);
            next = (last != cidr::space_max(width)).then(|| last + 1);
        }
        match next {
            Some(n) if !gap_ok(width, n, cidr::space_max(width)) => {
                fail(format!("{fam}: space not covered from {n:#x}"))
            }
            _ => Ok(()),
        }
    };
    check(
        table.v4.starts.iter().map(|s| u128::from(*s)).collect(),
        &table.v4.lens,
        32,
        "IPv4",
    )?;
    check(table.v6.starts.clone(), &table.v6.lens, 128, "IPv6")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_scope_is_widest() {
        let t = NetTable::from_nets(
            0u32,
            [
                (net("10.0.0.0/8"), 1),
                (net("10.1.0.0/16"), 2),
                (net("2001:db8::/32"), 3),
                (net("2001:db8:1::/48"), 3), // same as parent: merges away
            ],
        );
        check_table(&t).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.lookup(ip("10.1.2.3")), (&2, 16));
        assert_eq!(t.lookup(ip("10.0.2.3")), (&1, 16));
        assert_eq!(t.lookup(ip("11.0.0.1")), (&0, 8));
        assert_eq!(t.lookup(ip("2001:db8:1::1")), (&3, 32));
        assert_eq!(t.lookup(ip("2001:db9::1")).0, &0);
        // IPv4-mapped behaves as IPv4; the prefix counts IPv6 bits.
        assert_eq!(t.lookup(ip("::ffff:10.1.2.3")), (&2, 112));
        // The unknown block next to ::ffff:0:0/96 must not claim the alias ranges:
        // ::1:0:0:1 is 2^48 + 1, so ::1:0:0:0/80 is the widest block without them.
        let (v, len) = t.lookup(ip("::1:0:0:1"));
        assert_eq!((*v, len), (0, 80));
    }

    #[test]
    fn ten_two_is_a_slash_15() {
        let t = NetTable::from_nets(0u32, [(net("10.0.0.0/8"), 1), (net("10.1.0.0/16"), 2)]);
        // 10.2.0.0 - 10.3.255.255 is 10.2.0.0/15, all value 1.
        assert_eq!(t.lookup("10.2.2.3".parse().unwrap()), (&1, 15));
        assert_eq!(
            t.stats().v4_entries,
            t.entries().filter(|(n, _)| n.addr().is_ipv4()).count()
        );
    }

    #[test]
    fn check_table_catches_holes() {
        let mut t = NetTable::from_nets(0u32, [(net("10.0.0.0/8"), 1)]);
        check_table(&t).unwrap();
        t.v4.starts.remove(1);
        t.v4.lens.remove(1);
        t.v4.values.remove(1);
        let err = check_table(&t).unwrap_err();
        assert!(err.reason.contains("gap"), "{err}");
    }

    #[test]
    fn mapped_override_is_ipv4() {
        assert_eq!(
            normalize_net(net("::ffff:192.0.2.0/120")),
            net("192.0.2.0/24")
        );
        assert_eq!(normalize_net(net("10.1.2.3/8")), net("10.0.0.0/8"));
    }

    #[test]
    fn alias_embedding() {
        let a: u128 = "2002:c000:0201::1".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(V4Alias::SIX_TO_FOUR.embedded(a), Some(0xc000_0201));
        let t: u128 = "2001:0:c000:0201::".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(V4Alias::TEREDO.embedded(t), Some(0xc000_0201));
        assert_eq!(V4Alias::MAPPED.embedded(a), None);
    }
}
