//! `meridian diff`: what a configuration change does to traffic, computed from the two
//! loaded snapshots, not by sampling. For each dynamic name: which share of the IPv4 and
//! IPv6 address space gets a different first datacenter (every endpoint up), from which to
//! which, and in which continents and countries (located with the new configuration's
//! GeoIP databases); for static data: the RRsets added, removed and changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::name::to_text;
use crate::engine::Snapshot;
use crate::geo::GeoSources;
use crate::routing::{Policy, Routing};

/// Address space moving from one datacenter to another for one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub from: String,
    pub to: String,
    /// Share of the IPv4 and of the IPv6 address space.
    pub v4_share: f64,
    pub v6_share: f64,
    /// IPv4 addresses moving, by "continent/country" (as located; "unknown" when not).
    pub places: BTreeMap<String, u64>,
}

/// What happens to one dynamic name.
#[derive(Debug, Clone, PartialEq)]
pub enum NameChange {
    Added,
    Removed,
    /// The address space that moves (empty: nothing moves).
    Moves(Vec<Movement>),
    /// Not a network table on both sides: the first choice for every client, before and after.
    FirstChoice {
        before: String,
        after: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StaticChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (RRset, old records, new records)
    pub changed: Vec<(String, Vec<String>, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficDiff {
    pub names: Vec<(String, NameChange)>,
    pub zones: Vec<(String, StaticChanges)>,
}

/// Compares two snapshots; `geo` locates the moving networks (none: places stay empty).
pub fn diff(old: &Snapshot, new: &Snapshot, geo: Option<&GeoSources>) -> TrafficDiff {
    let mut out = TrafficDiff::default();
    let name_of = |r: &Routing, i: usize| to_text(&r.names[i].owner);
    let old_names: BTreeMap<String, usize> = (0..old.routing.names.len())
        .map(|i| (name_of(&old.routing, i), i))
        .collect();
    let new_names: BTreeMap<String, usize> = (0..new.routing.names.len())
        .map(|i| (name_of(&new.routing, i), i))
        .collect();
    for (name, &i) in &old_names {
        let change = match new_names.get(name) {
            None => NameChange::Removed,
            Some(&j) => compare_name(&old.routing, i, &new.routing, j, geo),
        };
        out.names.push((name.clone(), change));
    }
    for name in new_names.keys().filter(|n| !old_names.contains_key(*n)) {
        out.names.push((name.clone(), NameChange::Added));
    }
    out.names.sort_by(|a, b| a.0.cmp(&b.0));
    out.zones = static_changes(old, new);
    out
}

/// The first datacenter of order `id`, by name ("-" when empty).
fn first_dc(r: &Routing, order: Option<&[u32]>) -> String {
    order
        .and_then(|o| o.first())
        .and_then(|&g| r.groups.get(g as usize))
        .and_then(|g| r.datacenters.get(g.datacenter as usize))
        .map_or_else(|| "-".to_string(), |d| d.name.clone())
}

/// A name's first choice for an address (every endpoint up); `None` for a weighted name.
fn choice(r: &Routing, name: usize, addr: IpAddr) -> Option<String> {
    match &r.names.get(name)?.policy {
        Policy::Table { table, .. } => {
            let (id, _) = r.tables.get(*table as usize)?.lookup(addr);
            Some(first_dc(r, r.orders.get(*id as usize).map(|o| &o[..])))
        }
        Policy::Failover { order } => {
            Some(first_dc(r, r.orders.get(*order as usize).map(|o| &o[..])))
        }
        Policy::Weighted { .. } => None,
    }
}

/// Where blocks start in a name's table (its boundaries), as 128-bit addresses per family.
fn boundaries(r: &Routing, name: usize, v4: &mut Vec<u128>, v6: &mut Vec<u128>) {
    let Some(Policy::Table { table, .. }) = r.names.get(name).map(|n| &n.policy) else {
        return;
    };
    let Some(t) = r.tables.get(*table as usize) else {
        return;
    };
    for (net, _) in t.entries() {
        match net {
            ipnet::IpNet::V4(n) => {
                v4.push(u128::from(u32::from(n.network())));
                v4.push(u128::from(u32::from(n.broadcast())) + 1);
            }
            ipnet::IpNet::V6(n) => {
                v6.push(u128::from(n.network()));
                if let Some(end) = u128::from(n.broadcast()).checked_add(1) {
                    v6.push(end);
                }
            }
        }
    }
}

fn compare_name(
    old: &Routing,
    i: usize,
    new: &Routing,
    j: usize,
    geo: Option<&GeoSources>,
) -> NameChange {
    let table = |r: &Routing, n: usize| matches!(r.names[n].policy, Policy::Table { .. });
    if !table(old, i) || !table(new, j) {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let before = choice(old, i, any).unwrap_or_else(|| "weighted".into());
        let after = choice(new, j, any).unwrap_or_else(|| "weighted".into());
        return if before == after {
            NameChange::Moves(Vec::new())
        } else {
            NameChange::FirstChoice { before, after }
        };
    }
    let mut moves: BTreeMap<(String, String), Movement> = BTreeMap::new();
    for v6 in [false, true] {
        let (mut b4, mut b6) = (vec![0u128], vec![0u128]);
        boundaries(old, i, &mut b4, &mut b6);
        boundaries(new, j, &mut b4, &mut b6);
        let (mut points, space) = if v6 {
            (b6, u128::MAX)
        } else {
            (b4, u128::from(u32::MAX))
        };
        points.retain(|p| *p <= space);
        points.sort_unstable();
        points.dedup();
        for (k, &start) in points.iter().enumerate() {
            let end = points.get(k + 1).map_or(space, |n| n - 1);
            let addr = if v6 {
                IpAddr::V6(Ipv6Addr::from(start))
            } else {
                IpAddr::V4(Ipv4Addr::from(start as u32))
            };
            let (Some(from), Some(to)) = (choice(old, i, addr), choice(new, j, addr)) else {
                continue;
            };
            if from == to {
                continue;
            }
            let m = moves.entry((from.clone(), to.clone())).or_insert(Movement {
                from,
                to,
                v4_share: 0.0,
                v6_share: 0.0,
                places: BTreeMap::new(),
            });
            let size = (end - start) as f64 + 1.0;
            if v6 {
                m.v6_share += size / 2f64.powi(128);
            } else {
                m.v4_share += size / 2f64.powi(32);
                locate(geo, start as u32, end as u32, &mut m.places);
            }
        }
    }
    NameChange::Moves(moves.into_values().collect())
}

/// Adds the IPv4 addresses `start..=end` to `places` by the database networks they fall in
/// (at most a million lookups; the rest counts as "unknown").
fn locate(geo: Option<&GeoSources>, start: u32, end: u32, places: &mut BTreeMap<String, u64>) {
    let mut addr = u64::from(start);
    let end = u64::from(end);
    for _ in 0..1_000_000 {
        if addr > end {
            return;
        }
        let loc = geo.and_then(|g| g.lookup(IpAddr::V4(Ipv4Addr::from(addr as u32))).ok());
        let prefix = loc.as_ref().map_or(0, |l| l.prefix_len.min(32));
        let key = match loc
            .as_ref()
            .and_then(|l| l.country.map(|c| (l.continent, c)))
        {
            Some((continent, country)) => format!(
                "{}/{country}",
                continent.map_or("?".to_string(), |c| c.to_string())
            ),
            None => "unknown".into(),
        };
        let block_end = (addr | ((1u64 << (32 - u32::from(prefix))) - 1)).min(end);
        *places.entry(key).or_default() += block_end - addr + 1;
        addr = block_end + 1;
    }
    *places.entry("unknown".into()).or_default() += end.saturating_sub(addr) + 1;
}

/// Static RRsets per zone: (owner type) → sorted "TTL rdata" lines.
fn rrsets(zone: &crate::zone::Zone) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (owner, node) in zone.nodes().filter(|(_, n)| n.dynamic().is_none()) {
        for set in &node.rrsets {
            let key = format!(
                "{} {}",
                to_text(owner),
                crate::dns::rtype::mnemonic(set.rtype)
                    .map_or(format!("TYPE{}", set.rtype), str::to_string)
            );
            let mut records: Vec<String> = set
                .rdata
                .iter()
                .map(|rd| {
                    let hex: String = rd.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{} \\# {} {hex}", set.ttl, rd.len())
                })
                .collect();
            records.sort();
            out.insert(key, records);
        }
    }
    out
}

fn static_changes(old: &Snapshot, new: &Snapshot) -> Vec<(String, StaticChanges)> {
    let mut out = Vec::new();
    for z in new.zones.zones() {
        let before = old
            .zones
            .by_origin(z.origin())
            .map(rrsets)
            .unwrap_or_default();
        let after = rrsets(z);
        let mut c = StaticChanges::default();
        for (k, v) in &after {
            match before.get(k) {
                None => c.added.push(k.clone()),
                Some(b) if b != v => c.changed.push((k.clone(), b.clone(), v.clone())),
                _ => {}
            }
        }
        c.removed = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect();
        if c != StaticChanges::default() {
            out.push((to_text(z.origin()), c));
        }
    }
    out
}

/// A share as a percentage: four decimals, or two significant digits when smaller (an
/// IPv6 /32 is 2.3e-8 % of the space).
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 || p >= 0.0001 {
        format!("{p:.4} %")
    } else {
        format!("{p:.1e} %")
    }
}

/// The diff as text (`markdown`: as a Markdown section for a pull request).
pub fn render(d: &TrafficDiff, markdown: bool) -> String {
    let mut s = String::new();
    let (h, item) = if markdown { ("### ", "- ") } else { ("", "  ") };
    let _ = writeln!(s, "{h}Dynamic names");
    for (name, change) in &d.names {
        match change {
            NameChange::Added => {
                let _ = writeln!(s, "{item}{name}: added");
            }
            NameChange::Removed => {
                let _ = writeln!(s, "{item}{name}: removed");
            }
            NameChange::FirstChoice { before, after } => {
                let _ = writeln!(
                    s,
                    "{item}{name}: every client's first choice {before} → {after}"
                );
            }
            NameChange::Moves(m) if m.is_empty() => {
                let _ = writeln!(s, "{item}{name}: no change");
            }
            NameChange::Moves(moves) => {
                let _ = writeln!(s, "{item}{name}:");
                for m in moves {
                    let mut places: Vec<(&String, &u64)> = m.places.iter().collect();
                    places.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                    let where_: Vec<String> = places
                        .iter()
                        .take(12)
                        .map(|(p, n)| format!("{p} ({n})"))
                        .collect();
                    let _ = writeln!(
                        s,
                        "{item}  {} → {}: IPv4 {}, IPv6 {}{}",
                        m.from,
                        m.to,
                        percent(m.v4_share),
                        percent(m.v6_share),
                        if where_.is_empty() {
                            String::new()
                        } else {
                            format!("; IPv4 addresses in {}", where_.join(", "))
                        }
                    );
                }
            }
        }
    }
    let _ = writeln!(s, "{h}Static data");
    if d.zones.is_empty() {
        let _ = writeln!(s, "{item}no change");
    }
    for (zone, c) in &d.zones {
        let _ = writeln!(s, "{item}{zone}:");
        for a in &c.added {
            let _ = writeln!(s, "{item}  + {a}");
        }
        for r in &c.removed {
            let _ = writeln!(s, "{item}  - {r}");
        }
        for (k, before, after) in &c.changed {
            let _ = writeln!(
                s,
                "{item}  ~ {k}: {} → {} records",
                before.len(),
                after.len()
            );
        }
    }
    s
}
