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

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use hickory_proto::rr::Name;
use toml::Spanned;

use super::Diagnostic;
use crate::dns::name::wire_lower;
use crate::health::quorum::{QuorumRule, VotePolicy};
use crate::routing::build::TableBuilder;
use crate::routing::{
    AllDown, Datacenter, DynamicName, Endpoint, Group, Policy, Pool, Select, TableKind,
};
use crate::zone::ZoneBuilder;

/// Default TTL of dynamic answers: short, so failover reaches clients quickly.
pub const DEFAULT_TTL: u32 = 20;

mod checks;
mod schema;
mod tables;

use checks::{check_spec, endpoint};
use schema::*;
pub use schema::{DEFAULT_FALL, DEFAULT_INTERVAL, DEFAULT_RISE, DEFAULT_TIMEOUT};

/// A problem at a line of the file (0: none).
type Problem = (usize, String);

/// Line (1-based) of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// One dynamic-names file being read: what its parts are checked against.
struct FileScope<'f> {
    origin: &'f Name,
    /// The file's directory (nets files and latency tables are relative to it).
    base: &'f Path,
    file: &'f DynamicFile,
    /// This file's datacenters: global index and up share.
    dc_index: HashMap<&'f str, (u32, f64)>,
    text: &'f str,
}

/// Where orders are interned and tables shared while one snapshot is built.
pub struct RoutingBuilder<'g> {
    /// The routing tables being built, with their interned orders and checks.
    pub tables: TableBuilder<'g>,
    /// Tables already built, by what they were built from (names share them).
    table_ids: HashMap<String, u32>,
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
    /// See [`TableBuilder::new`].
    pub fn new(
        geo: crate::routing::build::Databases<'g>,
        geo_identity: Option<String>,
        previous: Option<&'g crate::routing::Routing>,
    ) -> Self {
        Self {
            tables: TableBuilder::new(geo, geo_identity, previous),
            table_ids: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Warnings collected so far, with file and line.
    pub fn take_warnings(&mut self) -> Vec<Diagnostic> {
        std::mem::take(&mut self.warnings)
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
            let i = self.tables.routing.datacenters.len() as u32;
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
            self.tables.routing.datacenters.push(Datacenter {
                name: name.clone(),
                key: format!("{}/{name}", zone_key(origin)),
                coords: dc.coords.map(|[a, b]| (a, b)),
            });
            dc_index.insert(name.as_str(), (i, dc.up_share));
        }

        let scope = FileScope {
            origin,
            base: path.parent().unwrap_or_else(|| Path::new(".")),
            file: &file,
            dc_index,
            text: &text,
        };
        // Pools: endpoints grouped by datacenter, groups in first-mention order.
        let mut pool_index: HashMap<&str, u32> = HashMap::new();
        for (pool_name, pool) in &file.pools {
            let mut problems = Vec::new();
            let idx = self.pool(pool_name, pool, &scope, &mut problems);
            errors.extend(problems.into_iter().map(|(l, m)| diag(l, m)));
            pool_index.insert(pool_name.as_str(), idx);
        }

        for (owner_text, spanned) in &file.names {
            let line = at(&spanned.span());
            let conf = spanned.get_ref();
            let result = self.name(owner_text, conf, &scope, &pool_index);
            match result {
                Ok(name) => {
                    let index = self.tables.routing.names.len() as u32;
                    if let Err(m) = zone.add_dynamic(&name.owner, index) {
                        errors.push(diag(line, m.to_string()));
                    }
                    self.tables.routing.names.push(name);
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

    /// Adds one pool: its endpoints grouped by datacenter (groups in first-mention order),
    /// each endpoint with its check; returns the pool's index.
    fn pool(
        &mut self,
        pool_name: &str,
        pool: &PoolConf,
        scope: &FileScope<'_>,
        errors: &mut Vec<Problem>,
    ) -> u32 {
        let FileScope {
            origin,
            base,
            dc_index,
            text,
            ..
        } = scope;
        let at = |s: &std::ops::Range<usize>| line_at(text, s.start);
        let diag = |line: usize, message: String| (line, message);
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
        let pool_idx = self.tables.routing.pools.len() as u32;
        let first_group = self.tables.routing.groups.len() as u32;
        for (dc, share, eps) in by_dc {
            let group_idx = self.tables.routing.groups.len() as u32;
            let first_ep = self.tables.routing.endpoints.len() as u32;
            for ep in eps {
                let conf = ep.get_ref();
                let line = at(&ep.span());
                let key = format!("{}/{pool_name}/{}", zone_key(origin), conf.id);
                let check = match &pool.check {
                    Some(c) => match check_spec(c.get_ref(), conf, base) {
                        Ok(spec) => Some(self.tables.intern_check(spec)),
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
                    Ok(e) => self.tables.routing.endpoints.push(e),
                    Err(m) => errors.push(diag(
                        line,
                        format!("pool {pool_name}, endpoint {}: {m}", conf.id),
                    )),
                }
            }
            self.tables.routing.groups.push(Group {
                pool: pool_idx,
                datacenter: dc,
                endpoints: first_ep..self.tables.routing.endpoints.len() as u32,
                up_share: share,
            });
        }
        let votes = match vote_rule(pool) {
            Ok(rule) => rule,
            Err(m) => {
                let line = pool.votes.as_ref().map_or(0, |v| at(&v.span()));
                errors.push(diag(line, format!("pool {pool_name}: {m}")));
                QuorumRule::default()
            }
        };
        self.tables.routing.pools.push(Pool {
            name: pool_name.to_string(),
            groups: first_group..self.tables.routing.groups.len() as u32,
            votes,
        });
        pool_idx
    }

    /// Group indices of `pool` in datacenter order `dcs`; unknown names are errors.
    fn groups_for(
        &self,
        pool: u32,
        dcs: &[&str],
        dc_index: &HashMap<&str, (u32, f64)>,
    ) -> Result<Vec<u32>, String> {
        let mut out = Vec::new();
        let Some(p) = self.tables.routing.pools.get(pool as usize) else {
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
                .find(|&g| self.tables.routing.groups[g as usize].datacenter == d)
                && !out.contains(&g)
            {
                out.push(g);
            }
        }
        Ok(out)
    }

    fn name(
        &mut self,
        owner_text: &str,
        conf: &NameConf,
        scope: &FileScope<'_>,
        pool_index: &HashMap<&str, u32>,
    ) -> Result<DynamicName, (usize, String)> {
        let (origin, text) = (scope.origin, scope.text);
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
        let pool_groups = self.tables.pool_order(pool);
        if pool_groups.is_empty() {
            return Err((at(conf.pool.span()), "the pool has no endpoints".into()));
        }
        let endpoints: Vec<&Endpoint> = pool_groups
            .iter()
            .flat_map(|&g| self.tables.routing.groups[g as usize].endpoints.clone())
            .filter_map(|e| self.tables.routing.endpoints.get(e as usize))
            .collect();
        let (serves_a, serves_aaaa, serves_cname) = served_types(conf, &endpoints, at)?;

        let policy = self.policy(conf, pool, &pool_groups, scope)?;

        let select = select_of(conf, at)?;
        let all_down = all_down_of(conf, origin)?;
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
            empty_nsec: None,
        })
    }

    /// The name's policy: a table (geo, nearest, latency), weights, or a failover order.
    fn policy(
        &mut self,
        conf: &NameConf,
        pool: u32,
        pool_groups: &[u32],
        scope: &FileScope<'_>,
    ) -> Result<Policy, Problem> {
        let (dc_index, text) = (&scope.dc_index, scope.text);
        let at = |s: std::ops::Range<usize>| line_at(text, s.start);
        let policy_span = conf.policy.span();
        let policy = match conf.policy.get_ref().as_str() {
            kind @ ("geo" | "nearest" | "latency") => self.table_policy(kind, conf, pool, scope)?,
            "weighted" => {
                let mut weights = Vec::new();
                for g in pool_groups {
                    let dc = self.tables.routing.groups[*g as usize].datacenter;
                    let dc_name = &self.tables.routing.datacenters[dc as usize].name;
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
                    order: self.tables.intern(groups),
                }
            }
            other => {
                return Err((
                    at(policy_span),
                    format!("unknown policy {other:?} (geo, nearest, latency, weighted, failover)"),
                ));
            }
        };
        Ok(policy)
    }

    /// A policy answered from a network table, built once per (kind, source, pool).
    fn table_policy(
        &mut self,
        kind: &str,
        conf: &NameConf,
        pool: u32,
        scope: &FileScope<'_>,
    ) -> Result<Policy, Problem> {
        let (base, file, dc_index, text) = (scope.base, scope.file, &scope.dc_index, scope.text);
        let at = |s: std::ops::Range<usize>| line_at(text, s.start);
        let policy_span = conf.policy.span();
        Ok(match kind {
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
                        let t = self
                            .tables
                            .nearest_table(pool, limit)
                            .map_err(|e| (0, e.to_string()))?;
                        self.table_ids.insert(key, t);
                        t
                    }
                };
                Policy::Table {
                    table,
                    kind: TableKind::Nearest,
                }
            }
            _ => {
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
        })
    }
}

fn zone_key(origin: &Name) -> String {
    let s = origin.to_ascii().to_ascii_lowercase();
    s.trim_end_matches('.').to_string()
}

/// Which types a name answers (A, AAAA, CNAME): what its pool's endpoints have, narrowed
/// by `types` when given.
fn served_types(
    conf: &NameConf,
    endpoints: &[&Endpoint],
    at: impl Fn(std::ops::Range<usize>) -> usize,
) -> Result<(bool, bool, bool), Problem> {
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

    Ok((serves_a, serves_aaaa, serves_cname))
}

/// A pool's rule for the cluster's votes.
fn vote_rule(pool: &PoolConf) -> Result<QuorumRule, String> {
    let policy = match pool.votes.as_ref().map(|v| v.get_ref()) {
        None => VotePolicy::Quorum,
        Some(VotesConf::Named(name)) => match name.as_str() {
            "quorum" => VotePolicy::Quorum,
            "all" => VotePolicy::All,
            "one" => VotePolicy::One,
            other => {
                return Err(format!(
                    "votes {other:?} is not quorum, all, one, {{ at_least = k }} or \
                     {{ healthy_fraction = p }}"
                ));
            }
        },
        Some(VotesConf::AtLeast { at_least }) if *at_least >= 1 => VotePolicy::AtLeast(*at_least),
        Some(VotesConf::AtLeast { .. }) => return Err("votes: at_least must be 1 or more".into()),
        Some(VotesConf::HealthyFraction {
            healthy_fraction: p,
        }) if (0.0..1.0).contains(p) => VotePolicy::HealthyFraction(*p),
        Some(VotesConf::HealthyFraction { .. }) => {
            return Err("votes: healthy_fraction must be at least 0 and below 1".into());
        }
    };
    let min_votes = pool.min_votes.unwrap_or(2);
    if min_votes == 0 {
        return Err("min_votes must be 1 or more".into());
    }
    Ok(QuorumRule { policy, min_votes })
}

/// How endpoints are picked inside a datacenter.
fn select_of(
    conf: &NameConf,
    at: impl Fn(std::ops::Range<usize>) -> usize,
) -> Result<Select, Problem> {
    Ok(match conf.select.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("all") => Select::All,
        Some("weighted") => Select::Weighted,
        Some("first") => Select::First(conf.count.unwrap_or(1).max(1)),
        Some(other) => {
            return Err((
                conf.select.as_ref().map(|s| at(s.span())).unwrap_or(0),
                format!("unknown select {other:?} (all, first, weighted)"),
            ));
        }
    })
}

/// What the name answers when every candidate is down.
fn all_down_of(conf: &NameConf, origin: &Name) -> Result<AllDown, Problem> {
    Ok(match conf.all_down.as_ref().map(|s| s.get_ref().as_str()) {
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
                    "all_down = \"fallback\" needs fallback = [addresses] or fallback_cname".into(),
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
    }
}
