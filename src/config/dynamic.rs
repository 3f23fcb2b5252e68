//! Dynamic names: the TOML file beside a zone (`zones/example.com.toml`), validated and
//! compiled into the routing tables of a snapshot.
//!
//! ```toml
//! [datacenters]
//! lon = { coords = [51.51, -0.13] }
//! [pools.web]
//! endpoints = [{ id = "lon-1", datacenter = "lon", addresses = ["192.0.2.10"] }]
//! [geo_maps.world]
//! default = ["lon"]
//! map = { "NA" = ["nyc", "lon"], "EU/GB" = ["lon"] }
//! [names.www]
//! pool = "web"
//! policy = "geo"
//! map = "world"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::Diagnostic;
use crate::dns::name::wire_lower;
use crate::geo::{GeoSources, Location, build_table, great_circle_km};
use crate::health::{CheckKind, CheckSpec, Timing};
use crate::routing::{
    AllDown, Datacenter, DynamicName, Endpoint, Group, Policy, Pool, Routing, Select, TableKind,
};
use crate::zone::ZoneBuilder;

/// Default TTL of dynamic answers: short, so failover reaches clients quickly.
pub const DEFAULT_TTL: u32 = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamicFile {
    #[serde(default)]
    datacenters: BTreeMap<String, DatacenterConf>,
    #[serde(default)]
    pools: BTreeMap<String, PoolConf>,
    #[serde(default)]
    geo_maps: BTreeMap<String, GeoMapConf>,
    #[serde(default)]
    names: BTreeMap<String, Spanned<NameConf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatacenterConf {
    /// [latitude, longitude] in degrees.
    coords: Option<[f64; 2]>,
    /// Share of a pool's endpoints here that must be up for the datacenter to be up.
    #[serde(default = "default_up_share")]
    up_share: f64,
}

fn default_up_share() -> f64 {
    0.5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolConf {
    endpoints: Vec<Spanned<EndpointConf>>,
    /// How the pool's endpoints are health-checked; none: always up.
    #[serde(default)]
    check: Option<Spanned<CheckConf>>,
}

/// Defaults that bound failover near 30 s: 2 × 4 s + 2 s + TTL 20 s.
pub const DEFAULT_INTERVAL: f64 = 4.0;
pub const DEFAULT_TIMEOUT: f64 = 2.0;
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckConf {
    /// tcp | http | https | dns | exec | file
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    expect_status: Vec<u16>,
    #[serde(default)]
    body_contains: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    qtype: Option<String>,
    #[serde(default)]
    expect_rcode: Option<String>,
    #[serde(default)]
    expect_answer: bool,
    /// exec: argv; `{address}`, `{port}` and `{id}` are substituted.
    #[serde(default)]
    command: Vec<String>,
    /// file: path; `{id}` is substituted.
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    interval: Option<f64>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    rise: Option<u32>,
    #[serde(default)]
    fall: Option<u32>,
    /// up | down: the state before the first result (default up).
    #[serde(default)]
    initial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointConf {
    id: String,
    datacenter: Spanned<String>,
    #[serde(default)]
    address: Option<IpAddr>,
    #[serde(default)]
    addresses: Vec<IpAddr>,
    #[serde(default)]
    cname: Option<String>,
    #[serde(default = "default_weight")]
    weight: u32,
    /// Check this address instead of the answer's (e.g. a management interface).
    #[serde(default)]
    check_address: Option<IpAddr>,
    /// Check this port instead of the check's.
    #[serde(default)]
    check_port: Option<u16>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoMapConf {
    /// Order for clients no key matches.
    #[serde(default)]
    default: Vec<Spanned<String>>,
    /// "EU", "EU/DE", "NA/US/CA", "NA/US/CA/San Francisco", "AS64496" → datacenter order.
    #[serde(default)]
    map: BTreeMap<String, Spanned<Vec<String>>>,
    /// CIDR → datacenter order; overrides the GeoIP database.
    #[serde(default)]
    nets: BTreeMap<String, Spanned<Vec<String>>>,
    /// A file of `CIDR dc1 dc2 ...` lines, relative to this file.
    #[serde(default)]
    nets_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameConf {
    pool: Spanned<String>,
    policy: Spanned<String>,
    #[serde(default)]
    ttl: Option<u32>,
    /// TTL while the first-choice datacenter is down.
    #[serde(default)]
    degraded_ttl: Option<u32>,
    /// geo: the map to use.
    #[serde(default)]
    map: Option<Spanned<String>>,
    /// nearest: consider only this many closest datacenters.
    #[serde(default)]
    limit: Option<usize>,
    /// latency: a CSV of `client,datacenter,rtt_ms`, relative to this file.
    #[serde(default)]
    latency_table: Option<PathBuf>,
    /// weighted: hash the client subnet instead of drawing at random.
    #[serde(default)]
    sticky: bool,
    /// weighted: datacenter → weight; unlisted datacenters get 0 (all 1 when none listed).
    #[serde(default)]
    weights: BTreeMap<String, u32>,
    /// failover: the datacenter order.
    #[serde(default)]
    order: Vec<Spanned<String>>,
    /// all | first | weighted
    #[serde(default)]
    select: Option<Spanned<String>>,
    /// With select = "first": how many.
    #[serde(default)]
    count: Option<u16>,
    /// How many datacenters contribute to one answer.
    #[serde(default)]
    datacenters: Option<u8>,
    /// fail-open | nodata | fallback
    #[serde(default)]
    all_down: Option<Spanned<String>>,
    /// all_down = "fallback": addresses and/or a CNAME target.
    #[serde(default)]
    fallback: Vec<IpAddr>,
    #[serde(default)]
    fallback_cname: Option<String>,
    #[serde(default)]
    ignore_ecs: bool,
    /// Restrict the record types served: some of "A", "AAAA", "CNAME".
    #[serde(default, rename = "type")]
    types: Option<Vec<String>>,
}

/// Line (1-based) of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where orders are interned and tables shared while one snapshot is built.
pub struct RoutingBuilder<'g> {
    pub routing: Routing,
    geo: Option<&'g GeoSources>,
    order_ids: HashMap<Vec<u32>, u32>,
    table_ids: HashMap<String, u32>,
    /// Stands in when no database is configured: every client is "unknown".
    no_geo: GeoSources,
    check_ids: HashMap<CheckSpec, u32>,
    /// Things that load but are probably not what was meant (see [`odd_geo_key`]).
    warnings: Vec<Diagnostic>,
}

/// Why a geo map key can never match a database with the standard field paths, if so:
/// continent and country codes have two letters, ISO 3166-2 subdivision codes one to three
/// characters. The usual mistake is a city where the subdivision goes ("NA/US/Dallas").
fn odd_geo_key(key: &str) -> Option<String> {
    if key
        .trim()
        .strip_prefix("AS")
        .is_some_and(|n| n.parse::<u32>().is_ok())
    {
        return None;
    }
    let parts: Vec<&str> = key.split('/').map(str::trim).collect();
    let what = ["continent", "country"];
    for (part, what) in parts.iter().zip(what) {
        if part.chars().count() != 2 {
            return Some(format!(
                "map key {key:?}: {part:?} is not a two-letter {what} code, so with the standard \
                 GeoIP fields it never matches"
            ));
        }
    }
    let sub = parts.get(2)?;
    let country = parts.get(1).map(|c| format!("{}-", c.to_uppercase()));
    let code = country
        .as_deref()
        .and_then(|c| sub.to_uppercase().strip_prefix(c).map(str::to_string))
        .unwrap_or_else(|| sub.to_string());
    (code.chars().count() > 3).then(|| {
        format!(
            "map key {key:?}: {sub:?} is not a subdivision code (ISO 3166-2, one to three \
             characters, e.g. \"TX\"), so with the standard GeoIP fields it never matches; a \
             city goes fourth: continent/country/subdivision/city"
        )
    })
}

impl<'g> RoutingBuilder<'g> {
    pub fn new(geo: Option<&'g GeoSources>) -> Self {
        Self {
            routing: Routing::default(),
            geo,
            order_ids: HashMap::new(),
            table_ids: HashMap::new(),
            no_geo: GeoSources::new(Vec::new()),
            check_ids: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Warnings collected so far, with file and line.
    pub fn take_warnings(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.warnings)
    }

    fn intern_check(&mut self, spec: CheckSpec) -> u32 {
        if let Some(&id) = self.check_ids.get(&spec) {
            return id;
        }
        let id = self.routing.checks.len() as u32;
        self.routing.checks.push(spec.clone());
        self.check_ids.insert(spec, id);
        id
    }

    /// Interns orders a table build met (see [`PendingOrders`]), keeping their ids.
    fn intern_all(&mut self, orders: Vec<Vec<u32>>) {
        for order in orders {
            let id = self.routing.orders.len() as u32;
            self.order_ids.insert(order.clone(), id);
            self.routing.orders.push(order.into_boxed_slice());
        }
    }

    fn intern(&mut self, order: Vec<u32>) -> u32 {
        if let Some(&id) = self.order_ids.get(&order) {
            return id;
        }
        let id = self.routing.orders.len() as u32;
        self.routing.orders.push(order.clone().into_boxed_slice());
        self.order_ids.insert(order, id);
        id
    }

    /// Reads one zone's dynamic file and adds its names to `zone`.
    pub fn load_file(
        &mut self,
        path: &Path,
        origin: &Name,
        zone: &mut ZoneBuilder,
    ) -> Result<(), Vec<Diagnostic>> {
        let diag = |line: usize, message: String| Diagnostic {
            file: path.to_path_buf(),
            line,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![diag(0, format!("cannot read: {e}"))])?;
        let file: DynamicFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_at(&text, s.start)).unwrap_or(0);
            vec![diag(line, e.message().to_string())]
        })?;
        let mut errors = Vec::new();
        let at = |s: &std::ops::Range<usize>| line_at(&text, s.start);
        for (map_name, map) in &file.geo_maps {
            for (key, dcs) in &map.map {
                if let Some(w) = odd_geo_key(key) {
                    self.warnings
                        .push(diag(at(&dcs.span()), format!("geo_maps.{map_name}: {w}")));
                }
            }
        }

        // Datacenters of this file → global indices.
        let mut dc_index: HashMap<&str, (u32, f64)> = HashMap::new();
        for (name, dc) in &file.datacenters {
            let i = self.routing.datacenters.len() as u32;
            if !(0.0..=1.0).contains(&dc.up_share) {
                errors.push(diag(
                    0,
                    format!("datacenter {name}: up_share must be between 0 and 1"),
                ));
            }
            if let Some([lat, lon]) = dc.coords
                && (!(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon))
            {
                errors.push(diag(
                    0,
                    format!("datacenter {name}: coords must be [latitude, longitude]"),
                ));
            }
            self.routing.datacenters.push(Datacenter {
                name: name.clone(),
                key: format!("{}/{name}", zone_key(origin)),
                coords: dc.coords.map(|[a, b]| (a, b)),
            });
            dc_index.insert(name.as_str(), (i, dc.up_share));
        }

        let base = path.parent().unwrap_or_else(|| Path::new("."));
        // Pools: endpoints grouped by datacenter, groups in first-mention order.
        let mut pool_index: HashMap<&str, u32> = HashMap::new();
        for (pool_name, pool) in &file.pools {
            let mut by_dc: Vec<(u32, f64, Vec<&Spanned<EndpointConf>>)> = Vec::new();
            let mut ids = std::collections::HashSet::new();
            for ep in &pool.endpoints {
                let conf = ep.get_ref();
                let line = at(&ep.span());
                if !ids.insert(conf.id.as_str()) {
                    errors.push(diag(
                        line,
                        format!("pool {pool_name}: endpoint id {:?} is used twice", conf.id),
                    ));
                }
                let Some(&(dc, share)) = dc_index.get(conf.datacenter.get_ref().as_str()) else {
                    errors.push(diag(
                        at(&conf.datacenter.span()),
                        format!(
                            "pool {pool_name}: unknown datacenter {:?} (define it under [datacenters])",
                            conf.datacenter.get_ref()
                        ),
                    ));
                    continue;
                };
                match by_dc.iter_mut().find(|(d, _, _)| *d == dc) {
                    Some((_, _, v)) => v.push(ep),
                    None => by_dc.push((dc, share, vec![ep])),
                }
            }
            let pool_idx = self.routing.pools.len() as u32;
            let first_group = self.routing.groups.len() as u32;
            for (dc, share, eps) in by_dc {
                let group_idx = self.routing.groups.len() as u32;
                let first_ep = self.routing.endpoints.len() as u32;
                for ep in eps {
                    let conf = ep.get_ref();
                    let line = at(&ep.span());
                    let key = format!("{}/{pool_name}/{}", zone_key(origin), conf.id);
                    let check = match &pool.check {
                        Some(c) => match check_spec(c.get_ref(), conf, base) {
                            Ok(spec) => Some(self.intern_check(spec)),
                            Err(m) => {
                                errors.push(diag(
                                    at(&c.span()),
                                    format!("pool {pool_name}, check for {}: {m}", conf.id),
                                ));
                                None
                            }
                        },
                        None => None,
                    };
                    match endpoint(conf, group_idx, origin, key, check) {
                        Ok(e) => self.routing.endpoints.push(e),
                        Err(m) => errors.push(diag(
                            line,
                            format!("pool {pool_name}, endpoint {}: {m}", conf.id),
                        )),
                    }
                }
                self.routing.groups.push(Group {
                    pool: pool_idx,
                    datacenter: dc,
                    endpoints: first_ep..self.routing.endpoints.len() as u32,
                    up_share: share,
                });
            }
            self.routing.pools.push(Pool {
                name: pool_name.clone(),
                groups: first_group..self.routing.groups.len() as u32,
            });
            pool_index.insert(pool_name.as_str(), pool_idx);
        }

        for (owner_text, spanned) in &file.names {
            let line = at(&spanned.span());
            let conf = spanned.get_ref();
            let result = self.name(
                owner_text,
                conf,
                origin,
                base,
                &file,
                &dc_index,
                &pool_index,
                &text,
            );
            match result {
                Ok(name) => {
                    let index = self.routing.names.len() as u32;
                    if let Err(m) = zone.add_dynamic(&name.owner, index) {
                        errors.push(diag(line, m));
                    }
                    self.routing.names.push(name);
                }
                Err((l, m)) => errors.push(diag(
                    if l > 0 { l } else { line },
                    format!("names.{owner_text}: {m}"),
                )),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Group indices of `pool` in datacenter order `dcs`; unknown names are errors.
    fn groups_for(
        &self,
        pool: u32,
        dcs: &[&str],
        dc_index: &HashMap<&str, (u32, f64)>,
    ) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let Some(p) = self.routing.pools.get(pool as usize) else {
            return Err("unknown pool".into());
        };
        for dc in dcs {
            let Some(&(d, _)) = dc_index.get(dc) else {
                return Err(format!("unknown datacenter {dc:?}"));
            };
            // A datacenter without endpoints in this pool has nothing to answer with.
            if let Some(g) = p
                .groups
                .clone()
                .find(|&g| self.routing.groups[g as usize].datacenter == d)
                && !out.contains(&g)
            {
                out.push(g);
            }
        }
        Ok(out)
    }

    fn pool_order(&self, pool: u32) -> Vec<u32> {
        self.routing
            .pools
            .get(pool as usize)
            .map(|p| p.groups.clone().collect())
            .unwrap_or_default()
    }

    /// The pool's groups sorted by distance from `coords` (unknown coordinates last).
    fn by_distance(&self, pool: u32, coords: (f64, f64)) -> Vec<u32> {
        let mut groups = self.pool_order(pool);
        let dist = |g: &u32| {
            let dc = self.routing.groups[*g as usize].datacenter;
            self.routing.datacenters[dc as usize]
                .coords
                .map_or(f64::INFINITY, |c| great_circle_km(coords, c))
        };
        groups.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
        groups
    }

    #[allow(clippy::too_many_arguments)]
    fn name(
        &mut self,
        owner_text: &str,
        conf: &NameConf,
        origin: &Name,
        base: &Path,
        file: &DynamicFile,
        dc_index: &HashMap<&str, (u32, f64)>,
        pool_index: &HashMap<&str, u32>,
        text: &str,
    ) -> Result<DynamicName, (usize, String)> {
        let at = |s: std::ops::Range<usize>| line_at(text, s.start);
        let owner =
            Name::parse(owner_text, Some(origin)).map_err(|e| (0, format!("invalid name: {e}")))?;
        if !origin.zone_of(&owner) {
            return Err((0, format!("{owner} is not inside the zone {origin}")));
        }
        let pool = *pool_index
            .get(conf.pool.get_ref().as_str())
            .ok_or_else(|| {
                (
                    at(conf.pool.span()),
                    format!("unknown pool {:?}", conf.pool.get_ref()),
                )
            })?;
        let pool_groups = self.pool_order(pool);
        if pool_groups.is_empty() {
            return Err((at(conf.pool.span()), "the pool has no endpoints".into()));
        }
        let endpoints: Vec<&Endpoint> = pool_groups
            .iter()
            .flat_map(|&g| self.routing.groups[g as usize].endpoints.clone())
            .filter_map(|e| self.routing.endpoints.get(e as usize))
            .collect();
        let has_cname = endpoints.iter().any(|e| e.cname.is_some());
        let has_addr = endpoints.iter().any(|e| e.a.is_some() || e.aaaa.is_some());
        if has_cname && has_addr {
            return Err((
                at(conf.pool.span()),
                "a pool answers either addresses or CNAMEs, not both".into(),
            ));
        }
        let (mut serves_a, mut serves_aaaa, mut serves_cname) = (
            endpoints.iter().any(|e| e.a.is_some()),
            endpoints.iter().any(|e| e.aaaa.is_some()),
            has_cname,
        );
        if let Some(types) = &conf.types {
            let want = |t: &str| types.iter().any(|x| x.eq_ignore_ascii_case(t));
            for t in types {
                if !["A", "AAAA", "CNAME"]
                    .iter()
                    .any(|k| t.eq_ignore_ascii_case(k))
                {
                    return Err((0, format!("type {t:?} is not one of A, AAAA, CNAME")));
                }
            }
            serves_a &= want("A");
            serves_aaaa &= want("AAAA");
            serves_cname &= want("CNAME");
            if !(serves_a || serves_aaaa || serves_cname) {
                return Err((0, "no endpoint of the pool has the requested type".into()));
            }
        }

        let policy_span = conf.policy.span();
        let policy = match conf.policy.get_ref().as_str() {
            "geo" => {
                let map_name = conf.map.as_ref().ok_or((
                    at(policy_span.clone()),
                    "policy \"geo\" needs map = \"...\"".to_string(),
                ))?;
                let map = file.geo_maps.get(map_name.get_ref()).ok_or_else(|| {
                    (
                        at(map_name.span()),
                        format!("unknown geo map {:?}", map_name.get_ref()),
                    )
                })?;
                let key = format!("geo:{}:{}:{pool}", base.display(), map_name.get_ref());
                let table = match self.table_ids.get(&key) {
                    Some(&t) => t,
                    None => {
                        let t = self.geo_table(map, pool, base, dc_index, text)?;
                        self.table_ids.insert(key, t);
                        t
                    }
                };
                Policy::Table {
                    table,
                    kind: TableKind::Geo,
                }
            }
            "nearest" => {
                let limit = conf.limit.unwrap_or(usize::MAX);
                let key = format!("nearest:{pool}:{limit}");
                let table = match self.table_ids.get(&key) {
                    Some(&t) => t,
                    None => {
                        let t = self.nearest_table(pool, limit)?;
                        self.table_ids.insert(key, t);
                        t
                    }
                };
                Policy::Table {
                    table,
                    kind: TableKind::Nearest,
                }
            }
            "latency" => {
                let file_path = conf.latency_table.as_ref().ok_or((
                    at(policy_span.clone()),
                    "policy \"latency\" needs latency_table = \"file.csv\"".to_string(),
                ))?;
                let full = base.join(file_path);
                let key = format!("latency:{}:{pool}", full.display());
                let table = match self.table_ids.get(&key) {
                    Some(&t) => t,
                    None => {
                        let t = self.latency_table(&full, pool, dc_index)?;
                        self.table_ids.insert(key, t);
                        t
                    }
                };
                Policy::Table {
                    table,
                    kind: TableKind::Latency,
                }
            }
            "weighted" => {
                let mut weights = Vec::new();
                for g in &pool_groups {
                    let dc = self.routing.groups[*g as usize].datacenter;
                    let dc_name = &self.routing.datacenters[dc as usize].name;
                    // Listing weights leaves the unlisted datacenters out; none listed: all 1.
                    let unlisted = if conf.weights.is_empty() { 1 } else { 0 };
                    weights.push(conf.weights.get(dc_name).copied().unwrap_or(unlisted));
                }
                for dc in conf.weights.keys() {
                    if !dc_index.contains_key(dc.as_str()) {
                        return Err((0, format!("weights: unknown datacenter {dc:?}")));
                    }
                }
                if weights.iter().all(|&w| w == 0) {
                    return Err((0, "weights: every weight is 0".into()));
                }
                Policy::Weighted {
                    sticky: conf.sticky,
                    weights: weights.into_boxed_slice(),
                }
            }
            "failover" => {
                if conf.order.is_empty() {
                    return Err((
                        at(policy_span.clone()),
                        "policy \"failover\" needs order = [\"dc1\", \"dc2\", ...]".into(),
                    ));
                }
                let names: Vec<&str> = conf.order.iter().map(|s| s.get_ref().as_str()).collect();
                let groups = self
                    .groups_for(pool, &names, dc_index)
                    .map_err(|m| (at(conf.order[0].span()), format!("order: {m}")))?;
                Policy::Failover {
                    order: self.intern(groups),
                }
            }
            other => {
                return Err((
                    at(policy_span),
                    format!("unknown policy {other:?} (geo, nearest, latency, weighted, failover)"),
                ));
            }
        };

        let select = match conf.select.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("all") => Select::All,
            Some("weighted") => Select::Weighted,
            Some("first") => Select::First(conf.count.unwrap_or(1).max(1)),
            Some(other) => {
                return Err((
                    conf.select.as_ref().map(|s| at(s.span())).unwrap_or(0),
                    format!("unknown select {other:?} (all, first, weighted)"),
                ));
            }
        };
        let all_down = match conf.all_down.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("fail-open") => AllDown::FailOpen,
            Some("nodata") => AllDown::NoData,
            Some("fallback") => {
                let mut a = Vec::new();
                let mut aaaa = Vec::new();
                for ip in &conf.fallback {
                    match ip {
                        IpAddr::V4(v4) => a.push(v4.octets()),
                        IpAddr::V6(v6) => aaaa.push(v6.octets()),
                    }
                }
                let cname = match &conf.fallback_cname {
                    Some(t) => Some(
                        Name::parse(t, Some(origin))
                            .map(|n| crate::dns::name::wire(&n))
                            .map_err(|e| (0, format!("fallback_cname: {e}")))?
                            .into_boxed_slice(),
                    ),
                    None => None,
                };
                if a.is_empty() && aaaa.is_empty() && cname.is_none() {
                    return Err((
                        0,
                        "all_down = \"fallback\" needs fallback = [addresses] or fallback_cname"
                            .into(),
                    ));
                }
                AllDown::Fallback { a, aaaa, cname }
            }
            Some(other) => {
                return Err((
                    0,
                    format!("unknown all_down {other:?} (fail-open, nodata, fallback)"),
                ));
            }
        };
        let ttl = conf.ttl.unwrap_or(DEFAULT_TTL);
        if ttl > i32::MAX as u32 {
            return Err((0, "ttl is above 2^31-1".into()));
        }
        Ok(DynamicName {
            owner: wire_lower(&owner).into_boxed_slice(),
            ttl,
            degraded_ttl: conf.degraded_ttl,
            pool,
            policy,
            select,
            datacenters: conf
                .datacenters
                .unwrap_or(1)
                .clamp(1, crate::routing::MAX_DATACENTERS as u8),
            all_down,
            ignore_ecs: conf.ignore_ecs,
            answers: (0..=pool_groups.len())
                .map(|_| std::sync::Arc::default())
                .collect(),
            serves_a,
            serves_aaaa,
            serves_cname,
        })
    }

    fn sources(&self) -> &GeoSources {
        self.geo.unwrap_or(&self.no_geo)
    }

    fn geo_table(
        &mut self,
        map: &GeoMapConf,
        pool: u32,
        base: &Path,
        dc_index: &HashMap<&str, (u32, f64)>,
        text: &str,
    ) -> Result<u32, (usize, String)> {
        let at = |s: std::ops::Range<usize>| line_at(text, s.start);
        let default_names: Vec<&str> = map.default.iter().map(|s| s.get_ref().as_str()).collect();
        let default = if default_names.is_empty() {
            self.pool_order(pool)
        } else {
            self.groups_for(pool, &default_names, dc_index)
                .map_err(|m| {
                    (
                        map.default.first().map(|s| at(s.span())).unwrap_or(0),
                        format!("default: {m}"),
                    )
                })?
        };
        let default_id = self.intern(default);

        let mut by_key: HashMap<GeoKey, u32> = HashMap::new();
        for (key, dcs) in &map.map {
            let k = GeoKey::parse(key)
                .ok_or_else(|| (at(dcs.span()), format!("map key {key:?} is not a location")))?;
            let names: Vec<&str> = dcs.get_ref().iter().map(String::as_str).collect();
            let groups = self
                .groups_for(pool, &names, dc_index)
                .map_err(|m| (at(dcs.span()), format!("map.{key}: {m}")))?;
            let id = self.intern(groups);
            by_key.insert(k, id);
        }

        let mut overrides: Vec<(IpNet, u32)> = Vec::new();
        if let Some(f) = &map.nets_file {
            let full = base.join(f);
            let nets_text = std::fs::read_to_string(&full)
                .map_err(|e| (0, format!("nets_file {}: {e}", full.display())))?;
            for (i, line) in nets_text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let mut parts = line.split(|c: char| c.is_whitespace() || c == ',');
                let net = parts.next().unwrap_or("");
                let net = IpNet::from_str(net).map_err(|_| {
                    (
                        0,
                        format!(
                            "{}:{}: {net:?} is not a CIDR network",
                            full.display(),
                            i + 1
                        ),
                    )
                })?;
                let names: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
                let groups = self
                    .groups_for(pool, &names, dc_index)
                    .map_err(|m| (0, format!("{}:{}: {m}", full.display(), i + 1)))?;
                let id = self.intern(groups);
                overrides.push((net.trunc(), id));
            }
        }
        for (net, dcs) in &map.nets {
            let n = IpNet::from_str(net).map_err(|_| {
                (
                    at(dcs.span()),
                    format!("nets: {net:?} is not a CIDR network"),
                )
            })?;
            let names: Vec<&str> = dcs.get_ref().iter().map(String::as_str).collect();
            let groups = self
                .groups_for(pool, &names, dc_index)
                .map_err(|m| (at(dcs.span()), format!("nets.{net}: {m}")))?;
            let id = self.intern(groups);
            overrides.push((n.trunc(), id));
        }

        let sources = self.sources();
        let table = build_table(sources, &overrides, |loc| {
            classify_geo(loc, &by_key).unwrap_or(default_id)
        })
        .map_err(|e| (0, e.to_string()))?;
        let id = self.routing.tables.len() as u32;
        self.routing.tables.push(table);
        Ok(id)
    }

    fn nearest_table(&mut self, pool: u32, limit: usize) -> Result<u32, (usize, String)> {
        let default = self.pool_order(pool);
        let default_id = self.intern(default);
        let sources = self.sources();
        let mut cache: HashMap<(u64, u64), u32> = HashMap::new();
        let mut pending = PendingOrders::new(&self.order_ids, self.routing.orders.len());
        let table = build_table(sources, &[], |loc| {
            let Some(coords) = loc.coords else {
                return default_id;
            };
            let key = (coords.0.to_bits(), coords.1.to_bits());
            if let Some(&id) = cache.get(&key) {
                return id;
            }
            let mut order = self.by_distance(pool, coords);
            order.truncate(limit.max(1));
            let id = pending.id(order);
            cache.insert(key, id);
            id
        })
        .map_err(|e| (0, e.to_string()))?;
        let new = pending.new;
        self.intern_all(new);
        let id = self.routing.tables.len() as u32;
        self.routing.tables.push(table);
        Ok(id)
    }

    fn latency_table(
        &mut self,
        path: &Path,
        pool: u32,
        dc_index: &HashMap<&str, (u32, f64)>,
    ) -> Result<u32, (usize, String)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| (0, format!("latency_table {}: {e}", path.display())))?;
        let mut rows: BTreeMap<String, Vec<(u32, f64)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with("client,") {
                continue;
            }
            let where_ = || format!("{}:{}", path.display(), i + 1);
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [client, dc, rtt] = cols[..] else {
                return Err((
                    0,
                    format!("{}: expected client,datacenter,rtt_ms", where_()),
                ));
            };
            let rtt: f64 = rtt
                .parse()
                .map_err(|_| (0, format!("{}: rtt {rtt:?} is not a number", where_())))?;
            let groups = self
                .groups_for(pool, &[dc], dc_index)
                .map_err(|m| (0, format!("{}: {m}", where_())))?;
            if let Some(&g) = groups.first() {
                rows.entry(client.to_string()).or_default().push((g, rtt));
            }
        }
        let order_of = |this: &Self, measured: &[(u32, f64)], coords: Option<(f64, f64)>| {
            let mut m = measured.to_vec();
            m.sort_by(|a, b| a.1.total_cmp(&b.1));
            let mut order: Vec<u32> = m.iter().map(|x| x.0).collect();
            // Datacenters without a measurement follow: by distance, else in pool order.
            let rest = match coords {
                Some(c) => this.by_distance(pool, c),
                None => this.pool_order(pool),
            };
            for g in rest {
                if !order.contains(&g) {
                    order.push(g);
                }
            }
            order
        };
        let mut overrides = Vec::new();
        let mut by_key: HashMap<GeoKey, Vec<(u32, f64)>> = HashMap::new();
        for (client, measured) in &rows {
            if let Ok(net) = IpNet::from_str(client) {
                let order = order_of(self, measured, None);
                let id = self.intern(order);
                overrides.push((net.trunc(), id));
            } else {
                let key = GeoKey::parse(client).ok_or_else(|| {
                    (
                        0,
                        format!(
                            "{}: client {client:?} is not a CIDR, ASN or location",
                            path.display()
                        ),
                    )
                })?;
                by_key.insert(key, measured.clone());
            }
        }
        let default_id = {
            let order = self.pool_order(pool);
            self.intern(order)
        };
        let sources = self.sources();
        let mut pending = PendingOrders::new(&self.order_ids, self.routing.orders.len());
        let table = build_table(sources, &overrides, |loc| {
            let measured = best_key(loc, |k| by_key.get(k))
                .map(|v| &v[..])
                .unwrap_or(&[]);
            if measured.is_empty() && loc.coords.is_none() {
                return default_id;
            }
            pending.id(order_of(self, measured, loc.coords))
        })
        .map_err(|e| (0, e.to_string()))?;
        let new = pending.new;
        self.intern_all(new);
        let id = self.routing.tables.len() as u32;
        self.routing.tables.push(table);
        Ok(id)
    }
}

/// Orders met while a table is built: the classifier borrows the builder, so new orders get
/// ids past the existing ones here and are interned afterwards by `intern_all`.
struct PendingOrders<'k> {
    known: &'k HashMap<Vec<u32>, u32>,
    base: u32,
    new: Vec<Vec<u32>>,
}

impl<'k> PendingOrders<'k> {
    fn new(known: &'k HashMap<Vec<u32>, u32>, base: usize) -> Self {
        Self {
            known,
            base: base as u32,
            new: Vec::new(),
        }
    }

    fn id(&mut self, order: Vec<u32>) -> u32 {
        if let Some(&id) = self.known.get(&order) {
            return id;
        }
        match self.new.iter().position(|o| *o == order) {
            Some(i) => self.base + i as u32,
            None => {
                self.new.push(order);
                self.base + self.new.len() as u32 - 1
            }
        }
    }
}

/// A location key of a geo map or latency table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeoKey {
    Asn(u32),
    /// continent[/country[/subdivision[/city]]], lowercase.
    Path(String),
}

impl GeoKey {
    pub fn parse(key: &str) -> Option<Self> {
        let k = key.trim();
        if let Some(n) = k.strip_prefix("AS").or_else(|| k.strip_prefix("as"))
            && let Ok(asn) = n.parse()
        {
            return Some(GeoKey::Asn(asn));
        }
        let parts: Vec<&str> = k.split('/').map(str::trim).collect();
        if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut norm: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
        // "NA/US/US-CA" and "NA/US/CA" mean the same subdivision.
        if norm.len() >= 3 {
            let prefix = format!("{}-", norm[1]);
            if let Some(s) = norm[2].strip_prefix(&prefix) {
                norm[2] = s.to_string();
            }
        }
        Some(GeoKey::Path(norm.join("/")))
    }
}

/// The most specific key present: ASN first, then city, subdivision, country, continent.
fn best_key<'m, T>(loc: &Location, get: impl Fn(&GeoKey) -> Option<&'m T>) -> Option<&'m T> {
    if let Some(asn) = loc.asn
        && let Some(v) = get(&GeoKey::Asn(asn))
    {
        return Some(v);
    }
    let continent = loc.continent.map(|c| c.as_str().to_lowercase())?;
    let mut path = vec![continent];
    if let Some(c) = loc.country {
        path.push(c.as_str().to_lowercase());
        if let Some(s) = loc.subdivision {
            path.push(s.as_str().to_lowercase());
            if let Some(city) = &loc.city {
                path.push(city.to_lowercase());
            }
        }
    }
    while !path.is_empty() {
        if let Some(v) = get(&GeoKey::Path(path.join("/"))) {
            return Some(v);
        }
        path.pop();
    }
    None
}

fn classify_geo(loc: &Location, by_key: &HashMap<GeoKey, u32>) -> Option<u32> {
    best_key(loc, |k| by_key.get(k)).copied()
}

fn zone_key(origin: &Name) -> String {
    let s = origin.to_ascii().to_ascii_lowercase();
    s.trim_end_matches('.').to_string()
}

fn seconds(v: f64, what: &str) -> Result<std::time::Duration, String> {
    if !(0.01..=86400.0).contains(&v) {
        return Err(format!("{what} must be between 0.01 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// The check of one endpoint: the pool's check with the endpoint's address and port.
fn check_spec(c: &CheckConf, ep: &EndpointConf, base: &Path) -> Result<CheckSpec, String> {
    let interval = seconds(c.interval.unwrap_or(DEFAULT_INTERVAL), "interval")?;
    let timeout = seconds(
        c.timeout
            .unwrap_or(DEFAULT_TIMEOUT.min(interval.as_secs_f64() / 2.0)),
        "timeout",
    )?;
    if timeout > interval {
        return Err("timeout must not exceed the interval".into());
    }
    let initially_up = match c.initial.as_deref() {
        None | Some("up") => true,
        Some("down") => false,
        Some(other) => return Err(format!("initial must be up or down, not {other:?}")),
    };
    let timing = Timing {
        interval,
        timeout,
        rise: c.rise.unwrap_or(DEFAULT_RISE).max(1),
        fall: c.fall.unwrap_or(DEFAULT_FALL).max(1),
        initially_up,
    };
    let answer_addr = ep.address.or_else(|| ep.addresses.first().copied());
    let address = ep.check_address.or(answer_addr);
    let sock = |default_port: u16| -> Result<std::net::SocketAddr, String> {
        let ip = address.ok_or("needs an address to check (check_address for CNAME endpoints)")?;
        Ok(std::net::SocketAddr::new(
            ip,
            ep.check_port.or(c.port).unwrap_or(default_port),
        ))
    };
    let subst = |s: &str| -> Result<String, String> {
        let addr = address.map(|a| a.to_string()).unwrap_or_default();
        let port = ep
            .check_port
            .or(c.port)
            .map(|p| p.to_string())
            .unwrap_or_default();
        Ok(s.replace("{address}", &addr)
            .replace("{port}", &port)
            .replace("{id}", &ep.id))
    };
    let kind = match c.kind.as_str() {
        "tcp" => {
            if c.port.is_none() && ep.check_port.is_none() {
                return Err("a tcp check needs port".into());
            }
            CheckKind::Tcp { addr: sock(0)? }
        }
        "http" | "https" => {
            let tls = c.kind == "https";
            let addr = sock(if tls { 443 } else { 80 })?;
            // Read now, so that `meridian check` and a reload catch it: a check that cannot
            // build its client never runs, and its endpoint would stay up unchecked.
            let ca_file = match &c.ca_file {
                Some(f) => {
                    let path = base.join(f);
                    let pem = std::fs::read(&path)
                        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                    match reqwest::Certificate::from_pem_bundle(&pem) {
                        Ok(certs) if !certs.is_empty() => Some(path),
                        Ok(_) => {
                            return Err(format!("ca_file {}: no PEM certificate", path.display()));
                        }
                        Err(e) => return Err(format!("ca_file {}: {e}", path.display())),
                    }
                }
                None => None,
            };
            CheckKind::Http {
                addr,
                tls,
                host: c.host.clone().unwrap_or_else(|| match addr.ip() {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                }),
                path: {
                    let p = c.path.clone().unwrap_or_else(|| "/".into());
                    if p.starts_with('/') {
                        p
                    } else {
                        format!("/{p}")
                    }
                },
                expect_status: c.expect_status.clone(),
                body_contains: c.body_contains.clone(),
                insecure: c.insecure,
                ca_file,
            }
        }
        "dns" => {
            let qname = c
                .query
                .clone()
                .ok_or("a dns check needs query = \"name\"")?;
            let qtype = match &c.qtype {
                Some(t) => u16::from(
                    hickory_proto::rr::RecordType::from_str(&t.to_ascii_uppercase())
                        .map_err(|_| format!("unknown qtype {t:?}"))?,
                ),
                None => 1,
            };
            let rcode = match c
                .expect_rcode
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                None | Some("NOERROR") => 0,
                Some("NXDOMAIN") => 3,
                Some("REFUSED") => 5,
                Some("SERVFAIL") => 2,
                Some(other) => return Err(format!("unknown expect_rcode {other:?}")),
            };
            CheckKind::Dns {
                addr: sock(53)?,
                qname,
                qtype,
                rcode,
                need_answer: c.expect_answer,
            }
        }
        "exec" => {
            if c.command.is_empty() {
                return Err("an exec check needs command = [\"program\", \"args\"...]".into());
            }
            CheckKind::Exec {
                command: c
                    .command
                    .iter()
                    .map(|a| subst(a))
                    .collect::<Result<_, _>>()?,
            }
        }
        "file" => {
            let f = c
                .file
                .as_ref()
                .ok_or("a file check needs file = \"path\"")?;
            CheckKind::File {
                path: base.join(subst(f)?),
            }
        }
        other => {
            return Err(format!(
                "unknown check type {other:?} (tcp, http, https, dns, exec, file)"
            ));
        }
    };
    Ok(CheckSpec { kind, timing })
}

fn endpoint(
    conf: &EndpointConf,
    group: u32,
    origin: &Name,
    key: String,
    check: Option<u32>,
) -> Result<Endpoint, String> {
    let mut addrs = conf.addresses.clone();
    if let Some(a) = conf.address {
        addrs.insert(0, a);
    }
    let a = addrs.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) => Some(v4.octets()),
        _ => None,
    });
    let aaaa = addrs.iter().find_map(|ip| match ip {
        IpAddr::V6(v6) => Some(v6.octets()),
        _ => None,
    });
    if addrs.iter().filter(|ip| ip.is_ipv4()).count() > 1
        || addrs.iter().filter(|ip| ip.is_ipv6()).count() > 1
    {
        return Err("at most one IPv4 and one IPv6 address per endpoint".into());
    }
    let cname = match &conf.cname {
        Some(t) => Some(
            Name::parse(t, Some(origin))
                .map_err(|e| format!("cname {t:?}: {e}"))
                .map(|n| crate::dns::name::wire(&n).into_boxed_slice())?,
        ),
        None => None,
    };
    if cname.is_some() && (a.is_some() || aaaa.is_some()) {
        return Err("an endpoint has addresses or a cname, not both".into());
    }
    if cname.is_none() && a.is_none() && aaaa.is_none() {
        return Err("an endpoint needs address, addresses or cname".into());
    }
    Ok(Endpoint {
        id: conf.id.clone(),
        key,
        check,
        group,
        weight: conf.weight,
        a,
        aaaa,
        cname,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_keys_normalize() {
        for fine in [
            "EU",
            "AS",
            "AS64496",
            "EU/GB",
            "NA/US/CA",
            "NA/US/US-CA",
            "EU/GB/ENG/London",
        ] {
            assert_eq!(odd_geo_key(fine), None, "{fine}");
        }
        for odd in ["NA/US/Dallas", "Europe", "EU/Germany", "NA/US/US-Texas"] {
            assert!(odd_geo_key(odd).is_some(), "{odd}");
        }
        assert_eq!(GeoKey::parse("AS64496"), Some(GeoKey::Asn(64496)));
        assert_eq!(
            GeoKey::parse("NA/US/US-CA"),
            Some(GeoKey::Path("na/us/ca".into()))
        );
        assert_eq!(
            GeoKey::parse("EU/GB/ENG/London"),
            Some(GeoKey::Path("eu/gb/eng/london".into()))
        );
        assert_eq!(GeoKey::parse("EU//X"), None);
        assert_eq!(GeoKey::parse("a/b/c/d/e"), None);
    }
}
