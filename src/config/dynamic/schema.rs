//! The dynamic-names file (`zone.toml`) as serde reads it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DynamicFile {
    #[serde(default)]
    pub(super) datacenters: BTreeMap<String, DatacenterConf>,
    #[serde(default)]
    pub(super) pools: BTreeMap<String, PoolConf>,
    #[serde(default)]
    pub(super) geo_maps: BTreeMap<String, GeoMapConf>,
    #[serde(default)]
    pub(super) names: BTreeMap<String, Spanned<NameConf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DatacenterConf {
    /// [latitude, longitude] in degrees.
    pub(super) coords: Option<[f64; 2]>,
    /// Share of a pool's endpoints here that must be up for the datacenter to be up.
    #[serde(default = "default_up_share")]
    pub(super) up_share: f64,
}

fn default_up_share() -> f64 {
    0.5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoolConf {
    pub(super) endpoints: Vec<Spanned<EndpointConf>>,
    /// How the pool's endpoints are health-checked; none: always up.
    #[serde(default)]
    pub(super) check: Option<Spanned<CheckConf>>,
    /// With a `[cluster]`: how the instances' votes decide an endpoint's health: "quorum"
    /// (default), "all", "one", { at_least = k } or { healthy_fraction = p }.
    #[serde(default)]
    pub(super) votes: Option<Spanned<VotesConf>>,
    /// The fewest live votes that decide (default 2); fewer: each instance decides alone.
    #[serde(default)]
    pub(super) min_votes: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum VotesConf {
    Named(String),
    AtLeast { at_least: u32 },
    HealthyFraction { healthy_fraction: f64 },
}

/// Defaults that bound failover near 30 s: 2 × 4 s + 2 s + TTL 20 s.
pub const DEFAULT_INTERVAL: f64 = 4.0;
pub const DEFAULT_TIMEOUT: f64 = 2.0;
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 2;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckConf {
    /// tcp | http | https | dns | exec | file
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) port: Option<u16>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) host: Option<String>,
    #[serde(default)]
    pub(super) expect_status: Vec<u16>,
    #[serde(default)]
    pub(super) body_contains: Option<String>,
    #[serde(default)]
    pub(super) insecure: bool,
    #[serde(default)]
    pub(super) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) qtype: Option<String>,
    #[serde(default)]
    pub(super) expect_rcode: Option<String>,
    #[serde(default)]
    pub(super) expect_answer: bool,
    /// exec: argv; `{address}`, `{port}` and `{id}` are substituted.
    #[serde(default)]
    pub(super) command: Vec<String>,
    /// file: path; `{id}` is substituted.
    #[serde(default)]
    pub(super) file: Option<String>,
    #[serde(default)]
    pub(super) interval: Option<f64>,
    #[serde(default)]
    pub(super) timeout: Option<f64>,
    #[serde(default)]
    pub(super) rise: Option<u32>,
    #[serde(default)]
    pub(super) fall: Option<u32>,
    /// up | down: the state before the first result (default up).
    #[serde(default)]
    pub(super) initial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndpointConf {
    pub(super) id: String,
    pub(super) datacenter: Spanned<String>,
    #[serde(default)]
    pub(super) address: Option<IpAddr>,
    #[serde(default)]
    pub(super) addresses: Vec<IpAddr>,
    #[serde(default)]
    pub(super) cname: Option<String>,
    #[serde(default = "default_weight")]
    pub(super) weight: u32,
    /// Check this address instead of the answer's (e.g. a management interface).
    #[serde(default)]
    pub(super) check_address: Option<IpAddr>,
    /// Check this port instead of the check's.
    #[serde(default)]
    pub(super) check_port: Option<u16>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GeoMapConf {
    /// Order for clients no key matches.
    #[serde(default)]
    pub(super) default: Vec<Spanned<String>>,
    /// "EU", "EU/DE", "NA/US/CA", "NA/US/CA/San Francisco", "AS64496" → datacenter order.
    #[serde(default)]
    pub(super) map: BTreeMap<String, Spanned<Vec<String>>>,
    /// CIDR → datacenter order; overrides the GeoIP database.
    #[serde(default)]
    pub(super) nets: BTreeMap<String, Spanned<Vec<String>>>,
    /// A file of `CIDR dc1 dc2 ...` lines, relative to this file.
    #[serde(default)]
    pub(super) nets_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NameConf {
    pub(super) pool: Spanned<String>,
    pub(super) policy: Spanned<String>,
    #[serde(default)]
    pub(super) ttl: Option<u32>,
    /// TTL while the first-choice datacenter is down.
    #[serde(default)]
    pub(super) degraded_ttl: Option<u32>,
    /// geo: the map to use.
    #[serde(default)]
    pub(super) map: Option<Spanned<String>>,
    /// nearest: consider only this many closest datacenters.
    #[serde(default)]
    pub(super) limit: Option<usize>,
    /// latency: a CSV of `client,datacenter,rtt_ms`, relative to this file.
    #[serde(default)]
    pub(super) latency_table: Option<PathBuf>,
    /// weighted: hash the client subnet instead of drawing at random.
    #[serde(default)]
    pub(super) sticky: bool,
    /// weighted: datacenter → weight; unlisted datacenters get 0 (all 1 when none listed).
    #[serde(default)]
    pub(super) weights: BTreeMap<String, u32>,
    /// failover: the datacenter order.
    #[serde(default)]
    pub(super) order: Vec<Spanned<String>>,
    /// all | first | weighted
    #[serde(default)]
    pub(super) select: Option<Spanned<String>>,
    /// With select = "first": how many.
    #[serde(default)]
    pub(super) count: Option<u16>,
    /// How many datacenters contribute to one answer.
    #[serde(default)]
    pub(super) datacenters: Option<u8>,
    /// fail-open | nodata | fallback
    #[serde(default)]
    pub(super) all_down: Option<Spanned<String>>,
    /// all_down = "fallback": addresses and/or a CNAME target.
    #[serde(default)]
    pub(super) fallback: Vec<IpAddr>,
    #[serde(default)]
    pub(super) fallback_cname: Option<String>,
    #[serde(default)]
    pub(super) ignore_ecs: bool,
    /// Restrict the record types served: some of "A", "AAAA", "CNAME".
    #[serde(default, rename = "type")]
    pub(super) types: Option<Vec<String>>,
}
