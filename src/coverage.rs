//! Where each dynamic name's answers go now, by country and continent: the status page's
//! map. Computed, not sampled, in two steps:
//!
//! - a [`Census`] per snapshot (seconds for a city-sized database, so built once and kept
//!   by the caller): the GeoIP databases walked once into a table of places, crossed with
//!   each name's network table, gives for every country how many IPv4 addresses get which
//!   datacenter order;
//! - [`coverage`] per request (cheap): the live health view picks the first datacenter that
//!   is up in each order, and each country goes to the datacenter most of its addresses get.
//!
//! Countries the databases do not place get nothing (the page leaves them grey).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::dns::name::to_text;
use crate::geo::{GeoError, Location, NetTable, build_table};
use crate::health::HealthView;
use crate::routing::{DynamicName, Policy, Routing, TableKind};

/// A place as the databases name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Place {
    continent: String,
    country: String,
}

/// (place, datacenter order, IPv4 addresses) for one name.
#[derive(Debug, Clone, Copy)]
struct Cell {
    place: u32,
    order: u32,
    addresses: u64,
}

/// One snapshot's places crossed with its names' tables. Order ids refer to that
/// snapshot's `Routing::orders`: use it only with the routing it was built from.
#[derive(Debug, Default)]
pub struct Census {
    places: Vec<Place>,
    /// Per dynamic name (same index as `Routing::names`); empty for names without a table.
    cells: Vec<Vec<Cell>>,
    /// IPv4 addresses the databases place in some country.
    pub located: u64,
}

/// Where one place's answers go.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceAnswer {
    /// The datacenter most of the place's addresses get now (none: every candidate down).
    pub datacenter: Option<String>,
    /// The share of the place's addresses that get it.
    pub share: f64,
}

/// Where one dynamic name's answers go now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameCoverage {
    pub name: String,
    pub policy: &'static str,
    pub ttl: u32,
    /// Worst case from a site's failure to the last cached answer pointing at it, on this
    /// instance: the slowest check's detection bound plus the TTL (none: nothing checked).
    pub failover_bound_secs: Option<f64>,
    /// For a failover name: where every client goes (none: every candidate is down).
    pub everywhere: Option<String>,
    /// For a weighted name: the datacenters that are up and their weights.
    pub weights: Vec<(String, u32)>,
    /// By ISO country code.
    pub countries: BTreeMap<String, PlaceAnswer>,
    /// By continent code.
    pub continents: BTreeMap<String, PlaceAnswer>,
    /// Share of the located IPv4 addresses per datacenter ("" for none up).
    pub datacenter_shares: BTreeMap<String, f64>,
}

/// IPv4 blocks of a table as (start, end exclusive, value), in address order.
fn v4_blocks<T: Copy>(table: &NetTable<T>) -> impl Iterator<Item = (u64, u64, T)> + '_ {
    table.entries().map_while(|(net, v)| match net {
        ipnet::IpNet::V4(n) => {
            let start = u64::from(u32::from(n.network()));
            Some((
                start,
                start + (1u64 << (32 - u32::from(n.prefix_len()))),
                *v,
            ))
        }
        ipnet::IpNet::V6(_) => None,
    })
}

/// Adds up, per (place, order), the addresses where both tables agree on a block. Both
/// cover the IPv4 space in order, so one merge walk does it.
fn cross(places: &NetTable<u32>, orders: &NetTable<u32>, unknown: u32) -> Vec<Cell> {
    let mut sums: HashMap<(u32, u32), u64> = HashMap::new();
    let mut a = v4_blocks(places).peekable();
    let mut b = v4_blocks(orders).peekable();
    while let (Some(&(a_start, a_end, place)), Some(&(b_start, b_end, order))) =
        (a.peek(), b.peek())
    {
        let overlap = a_end.min(b_end).saturating_sub(a_start.max(b_start));
        if place != unknown && overlap > 0 {
            *sums.entry((place, order)).or_default() += overlap;
        }
        if a_end <= b_end {
            a.next();
        } else {
            b.next();
        }
    }
    let mut cells: Vec<Cell> = sums
        .into_iter()
        .map(|((place, order), addresses)| Cell {
            place,
            order,
            addresses,
        })
        .collect();
    cells.sort_by_key(|c| (c.place, c.order));
    cells
}

/// Walks the snapshot's GeoIP databases once and crosses the places with every table-driven
/// name. Without databases, or without such names, the census is empty.
pub fn census(routing: &Routing) -> Result<Census, GeoError> {
    let mut out = Census {
        cells: vec![Vec::new(); routing.names.len()],
        ..Census::default()
    };
    let has_table = routing
        .names
        .iter()
        .any(|n| matches!(n.policy, Policy::Table { .. }));
    let Some(recipe) = routing.geo.as_ref().filter(|r| !r.is_empty() && has_table) else {
        return Ok(out);
    };
    let (sources, _) = recipe.open()?;
    let mut ids: HashMap<Place, u32> = HashMap::new();
    let unknown = u32::MAX;
    let fields = crate::geo::Fields::CONTINENT | crate::geo::Fields::COUNTRY;
    let table = build_table(&sources, &[], fields, |loc: &Location| match loc.country {
        None => unknown,
        Some(country) => {
            let place = Place {
                continent: loc.continent.map(|c| c.to_string()).unwrap_or_default(),
                country: country.to_string(),
            };
            let next = ids.len() as u32;
            *ids.entry(place).or_insert(next)
        }
    })?;
    out.places = vec![
        Place {
            continent: String::new(),
            country: String::new()
        };
        ids.len()
    ];
    for (place, id) in ids {
        if let Some(slot) = out.places.get_mut(id as usize) {
            *slot = place;
        }
    }
    out.located = v4_blocks(&table)
        .filter(|b| b.2 != unknown)
        .map(|b| b.1 - b.0)
        .sum();
    for (i, name) in routing.names.iter().enumerate() {
        if let Policy::Table { table: t, .. } = name.policy
            && let (Some(orders), Some(cells)) =
                (routing.tables.get(t as usize), out.cells.get_mut(i))
        {
            *cells = cross(&table, orders, unknown);
        }
    }
    Ok(out)
}

/// The first datacenter of `order` whose group is up, by name.
fn first_up<'r>(routing: &'r Routing, order: &[u32], health: &HealthView) -> Option<&'r str> {
    order
        .iter()
        .find(|&&g| health.group_up(g as usize))
        .and_then(|&g| routing.groups.get(g as usize))
        .and_then(|g| routing.datacenters.get(g.datacenter as usize))
        .map(|d| d.name.as_str())
}

fn policy_name(policy: &Policy) -> &'static str {
    match policy {
        Policy::Table {
            kind: TableKind::Geo,
            ..
        } => "geo",
        Policy::Table {
            kind: TableKind::Nearest,
            ..
        } => "nearest",
        Policy::Table {
            kind: TableKind::Latency,
            ..
        } => "latency",
        Policy::Failover { .. } => "failover",
        Policy::Weighted { .. } => "weighted",
    }
}

/// Per place, the datacenter most of its addresses get, from (place key, datacenter,
/// addresses) triples.
fn winners(tally: BTreeMap<(String, String), u64>) -> BTreeMap<String, PlaceAnswer> {
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    let mut best: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for ((place, dc), n) in tally {
        *totals.entry(place.clone()).or_default() += n;
        let b = best.entry(place).or_insert((0, String::new()));
        if n > b.0 {
            *b = (n, dc);
        }
    }
    best.into_iter()
        .map(|(place, (n, dc))| {
            let total = totals.get(&place).copied().unwrap_or(1).max(1);
            let answer = PlaceAnswer {
                datacenter: (!dc.is_empty()).then_some(dc),
                share: n as f64 / total as f64,
            };
            (place, answer)
        })
        .collect()
}

fn name_coverage(
    census: &Census,
    routing: &Routing,
    index: usize,
    name: &DynamicName,
    health: &HealthView,
) -> NameCoverage {
    let mut out = NameCoverage {
        name: to_text(&name.owner),
        policy: policy_name(&name.policy),
        ttl: name.ttl,
        failover_bound_secs: routing
            .worst_check(name)
            .map(|c| c.timing.detection_bound().as_secs_f64() + f64::from(name.ttl)),
        everywhere: None,
        weights: Vec::new(),
        countries: BTreeMap::new(),
        continents: BTreeMap::new(),
        datacenter_shares: BTreeMap::new(),
    };
    match &name.policy {
        Policy::Failover { order } => {
            let order = routing.orders.get(*order as usize).map_or(&[][..], |o| o);
            out.everywhere = first_up(routing, order, health).map(str::to_string);
        }
        Policy::Weighted { weights, .. } => {
            let groups = routing
                .pools
                .get(name.pool as usize)
                .map_or(0..0, |p| p.groups.clone());
            for (g, w) in groups.zip(weights.iter()) {
                if *w > 0
                    && health.group_up(g as usize)
                    && let Some(dc) = routing
                        .groups
                        .get(g as usize)
                        .and_then(|g| routing.datacenters.get(g.datacenter as usize))
                {
                    out.weights.push((dc.name.clone(), *w));
                }
            }
        }
        Policy::Table { .. } => {
            let mut by_country: BTreeMap<(String, String), u64> = BTreeMap::new();
            let mut by_continent: BTreeMap<(String, String), u64> = BTreeMap::new();
            let mut by_dc: BTreeMap<String, u64> = BTreeMap::new();
            for cell in census.cells.get(index).map_or(&[][..], |c| c) {
                let (Some(place), Some(order)) = (
                    census.places.get(cell.place as usize),
                    routing.orders.get(cell.order as usize),
                ) else {
                    continue;
                };
                let dc = first_up(routing, order, health).unwrap_or("").to_string();
                *by_country
                    .entry((place.country.clone(), dc.clone()))
                    .or_default() += cell.addresses;
                if !place.continent.is_empty() {
                    *by_continent
                        .entry((place.continent.clone(), dc.clone()))
                        .or_default() += cell.addresses;
                }
                *by_dc.entry(dc).or_default() += cell.addresses;
            }
            let located = census.located.max(1) as f64;
            out.datacenter_shares = by_dc
                .into_iter()
                .map(|(dc, n)| (dc, n as f64 / located))
                .collect();
            out.countries = winners(by_country);
            out.continents = winners(by_continent);
        }
    }
    out
}

/// Where every dynamic name's answers go under `health`; `census` must come from `routing`.
pub fn coverage(census: &Census, routing: &Routing, health: &HealthView) -> Vec<NameCoverage> {
    routing
        .names
        .iter()
        .enumerate()
        .map(|(i, name)| name_coverage(census, routing, i, name, health))
        .collect()
}
