//! `explain`: what would be answered to one client, and why — the location found, the
//! candidates in policy order with their health, the choice, the ECS scope and the exact
//! response. One implementation for `meridian explain` (rendered as text by the CLI) and
//! `GET /explain` (served as JSON by the API). No I/O: it reads a snapshot and a health view
//! and runs the real answer path on a query built for the client.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use crate::dns::{MAX_MESSAGE, Transport, name, rcode, rtype};
use crate::engine::Snapshot;
use crate::engine::{self, Counting, Request};
use crate::health::{AdminState, DatacenterStatus, EndpointStatus, HealthView, Status};
use crate::routing::{AllDown, Client, DynamicName, Policy, Routing, Select, TableKind};

/// The question to explain, validated: a name, a type and a client address with the ECS
/// source prefix to send.
#[derive(Debug, Clone)]
pub struct Question {
    pub name: Name,
    /// The name in wire form, lowercase.
    pub key: Vec<u8>,
    pub rtype: RecordType,
    pub address: IpAddr,
    pub prefix: u8,
}

/// What is wrong with a question to explain, by part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    #[error("empty name")]
    EmptyName,
    #[error("{0}: {1}")]
    Name(String, String),
    #[error("unknown type {0}")]
    Type(String),
    #[error("bad prefix {0}")]
    Prefix(String),
    #[error("bad client address {0}")]
    Address(String),
    #[error("bad prefix /{prefix}: longer than an {family} address")]
    PrefixTooLong { prefix: u8, family: &'static str },
}

/// Why an explanation could not be made (the snapshot disagrees with itself).
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("dynamic name index {0} out of range")]
    NameIndex(u32),
    #[error("no response")]
    NoResponse,
    #[error("the response does not parse: {0}")]
    Response(#[from] hickory_proto::serialize::binary::DecodeError),
}

impl Question {
    /// Parses a name, a type (`A`, `aaaa`, ...) and `ADDR` or `ADDR/PREFIX`; the error says
    /// what is wrong with which part.
    pub fn parse(qname: &str, qtype: &str, client: &str) -> Result<Self, QuestionError> {
        let qname = qname.trim();
        if qname.is_empty() {
            return Err(QuestionError::EmptyName);
        }
        let mut name = Name::from_str(qname)
            .map_err(|e| QuestionError::Name(qname.to_string(), e.to_string()))?;
        name.set_fqdn(true);
        let rtype = RecordType::from_str(&qtype.trim().to_ascii_uppercase())
            .map_err(|_| QuestionError::Type(qtype.to_string()))?;
        let (addr_text, prefix) = match client.trim().split_once('/') {
            Some((a, p)) => (
                a,
                Some(
                    p.parse::<u8>()
                        .map_err(|_| QuestionError::Prefix(p.to_string()))?,
                ),
            ),
            None => (client.trim(), None),
        };
        let address =
            IpAddr::from_str(addr_text).map_err(|_| QuestionError::Address(client.to_string()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(QuestionError::PrefixTooLong {
                prefix,
                family: if address.is_ipv4() { "IPv4" } else { "IPv6" },
            });
        }
        let key = name::wire_lower(&name);
        Ok(Self {
            name,
            key,
            rtype,
            address,
            prefix,
        })
    }
}

/// Where the health in an explanation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthSource {
    /// The running server's view, overrides included.
    Live,
    /// No server to ask: everything counts as up.
    AssumedUp,
}

/// Up, down, or down because an operator drained it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Up,
    Down,
    Drained,
}

impl State {
    fn new(up: bool, admin: Option<AdminState>) -> Self {
        match (up, admin) {
            (true, _) => State::Up,
            (false, Some(AdminState::Drain)) => State::Drained,
            (false, _) => State::Down,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Drained => "drained",
        }
    }
}

/// The whole explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The name asked, fully qualified.
    pub name: String,
    pub qtype: String,
    /// The client address as given, with the effective source prefix.
    pub client: String,
    /// The EDNS Client Subnet option the query carries.
    pub ecs: Ecs,
    /// Where the client was located (the address the server locates it by).
    pub location: Option<ClientLocation>,
    /// Why there is no location, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_note: Option<String>,
    pub health: HealthSource,
    /// The zone that answers; `None`: not one of ours (REFUSED).
    pub zone: Option<String>,
    /// The routing decision, for a dynamic name.
    pub dynamic: Option<DynamicExplanation>,
    /// The response: rcode mnemonic (NOERROR, NXDOMAIN, REFUSED, ...).
    pub rcode: String,
    pub authoritative: bool,
    /// TTL of the first answer record.
    pub ttl: Option<u32>,
    /// The ECS scope prefix of the response, when it carries the option.
    pub ecs_scope: Option<u8>,
    /// Records in presentation form, per section.
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// For a signed zone: the signatures' window and keys (the query is then asked with DO,
    /// so the records above carry their RRSIGs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<String>,
}

/// A record in presentation form; DNSSEC records (which hickory without its DNSSEC feature
/// keeps as opaque data) spelled out.
fn record_text(r: &hickory_proto::rr::Record) -> String {
    if let hickory_proto::rr::RData::Unknown { code, rdata } = &r.data
        && let Some(text) = crate::dnssec::present(u16::from(*code), &rdata.anything)
    {
        return format!("{} {} IN {} {text}", r.name, r.ttl, r.record_type());
    }
    r.to_string()
}

/// What `explain` says of a signed zone's signatures.
fn dnssec_summary(snapshot: &Snapshot, zone: &crate::zone::Zone) -> Option<String> {
    if !zone.is_signed() {
        return None;
    }
    let time = crate::dnssec::key::format_time;
    Some(
        match snapshot
            .signers
            .iter()
            .find(|s| &s.origin[..] == zone.origin())
        {
            Some(s) => format!(
                "signed here: RRSIGs valid {} to {} by key(s) {}; signed again at {}",
                time(s.window.inception),
                time(s.window.expiration),
                s.keys
                    .iter()
                    .map(|k| k.tag.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                time(s.due())
            ),
            None => "signed elsewhere (the zone file's RRSIGs and NSEC chain)".into(),
        },
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Ecs {
    /// The network sent, address bits beyond the prefix cleared.
    pub address: IpAddr,
    pub source_prefix: u8,
    /// Whether the server locates this client by it (`[geoip] ecs`, the name's `ignore_ecs`,
    /// and a prefix of 0 say no: then the packet's source is used).
    pub used: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientLocation {
    /// The address looked up.
    pub address: IpAddr,
    /// The prefix of the database network that matched.
    pub network_prefix: u8,
    pub continent: Option<String>,
    pub country: Option<String>,
    /// The subdivision code without the country (`ENG` for GB-ENG).
    pub subdivision: Option<String>,
    pub city: Option<String>,
    pub asn: Option<u32>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DynamicExplanation {
    /// geo | nearest | latency | failover | weighted
    pub policy: String,
    /// For weighted policies: hashed by client subnet (true) or random.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<bool>,
    pub pool: String,
    pub ttl: u32,
    pub degraded_ttl: Option<u32>,
    /// all | first | weighted
    pub select: String,
    /// For `select = "first"`: how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
    /// How many datacenters contribute to one answer.
    pub datacenters: u8,
    /// fail-open | nodata | fallback
    pub all_down: String,
    pub ignore_ecs: bool,
    /// Whether this name serves the type asked (else NODATA, and nothing is decided).
    pub serves_type: bool,
    /// Candidates in policy order, before health.
    pub candidates: Vec<Candidate>,
    /// The datacenters that answer, in order.
    pub chosen: Vec<String>,
    /// No candidate was up: the answer follows `all_down`.
    pub all_candidates_down: bool,
    /// The prefix over which this decision is the same.
    pub scope: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub datacenter: String,
    /// `zone/datacenter`, as overrides name it.
    pub key: String,
    pub state: State,
    /// Why it is in that state, where known.
    pub reason: Option<String>,
    pub chosen: bool,
    pub endpoints: Vec<EndpointHealth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EndpointHealth {
    pub id: String,
    /// `zone/pool/id`, as overrides name it.
    pub key: String,
    pub state: State,
    pub reason: Option<String>,
    /// With a cluster: every instance's vote behind the state (empty without one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<crate::health::VoteStatus>,
}

/// Explains `q` against `snapshot` with `health` (the live view, or all up) and, when the
/// server's status is known, the reasons behind it.
pub fn explain(
    snapshot: &Snapshot,
    health: &HealthView,
    status: Option<&Status>,
    q: &Question,
) -> Result<Explanation, ExplainError> {
    // The same rule as the answer path: a view of another generation is not used.
    let view = if health.generation() == snapshot.generation {
        health
    } else {
        &snapshot.initial_health
    };
    let qtype = u16::from(q.rtype);
    let network = masked(q.address, q.prefix);
    let zone = snapshot.zones.find(&q.key, qtype);
    let dynamic_name = match zone.and_then(|z| z.node(&q.key)).and_then(|n| n.dynamic()) {
        Some(index) => Some(
            snapshot
                .routing
                .names
                .get(index as usize)
                .ok_or(ExplainError::NameIndex(index))?,
        ),
        None => None,
    };
    let ecs_used = snapshot.ecs && q.prefix > 0 && !dynamic_name.is_some_and(|d| d.ignore_ecs);
    let located = if ecs_used { network } else { q.address };
    let (location, location_note) = match &snapshot.routing.geo {
        Some(recipe) => match recipe
            .open()
            .and_then(|(geo, changed)| Ok((geo.lookup(located)?, changed)))
        {
            Ok((loc, changed)) => (
                Some(ClientLocation {
                    address: located,
                    network_prefix: loc.prefix_len,
                    continent: loc.continent.map(|c| c.to_string()),
                    country: loc.country.map(|c| c.to_string()),
                    subdivision: loc.subdivision.map(|c| c.to_string()),
                    city: loc.city.as_ref().map(|c| c.to_string()),
                    asn: loc.asn,
                    latitude: loc.coords.map(|c| c.0),
                    longitude: loc.coords.map(|c| c.1),
                }),
                changed.then(|| {
                    "a GeoIP database file changed since it was loaded: this location is \
                     from the new file, answers use the loaded one until a reload"
                        .to_string()
                }),
            ),
            Err(e) => (None, Some(format!("lookup failed: {e}"))),
        },
        None => (None, Some("no GeoIP database configured".into())),
    };
    let client = Client {
        source: q.address,
        subnet: snapshot.ecs.then_some((network, q.prefix)),
        entropy: 0,
    };
    let dynamic = dynamic_name
        .map(|dn| explain_dynamic(&snapshot.routing, dn, &client, q.rtype, view, status));

    // The answer itself, from the real answer path.
    let mut request =
        crate::dns::wire::build_query(0x4d45, &q.key, qtype, true, Some((q.address, q.prefix)));
    let dnssec = zone.and_then(|z| dnssec_summary(snapshot, z));
    if dnssec.is_some() {
        // DO: the top flag bit in the OPT record's TTL field, after header and question.
        if let Some(flags) = request.get_mut(12 + q.key.len() + 4 + 7) {
            *flags |= 0x80;
        }
    }
    let mut response = vec![0u8; MAX_MESSAGE];
    // Not traffic: counted nowhere (metrics, per-zone and per-name counters).
    let request = Request::new(&request, q.address, Transport::Udp).counted(Counting::Nothing);
    let n = engine::answer(snapshot, health, None, &request, &mut response)
        .ok_or(ExplainError::NoResponse)?;
    let msg = Message::from_vec(&response[..n])?;
    let ecs_scope = msg
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Subnet))
        .and_then(|o| match o {
            EdnsOption::Subnet(s) => Some(s.scope_prefix()),
            _ => None,
        });
    let text = |records: &[hickory_proto::rr::Record]| -> Vec<String> {
        records.iter().map(record_text).collect()
    };
    Ok(Explanation {
        name: q.name.to_string(),
        qtype: q.rtype.to_string(),
        client: format!("{}/{}", q.address, q.prefix),
        ecs: Ecs {
            address: network,
            source_prefix: q.prefix,
            used: ecs_used,
        },
        location,
        location_note,
        health: if status.is_some() {
            HealthSource::Live
        } else {
            HealthSource::AssumedUp
        },
        zone: zone.map(|z| name::to_text(z.origin())),
        dynamic,
        rcode: rcode_mnemonic(u16::from(msg.metadata.response_code)),
        authoritative: msg.metadata.authoritative,
        ttl: msg.answers.first().map(|r| r.ttl),
        ecs_scope,
        answers: text(&msg.answers),
        authority: text(&msg.authorities),
        additional: text(&msg.additionals),
        dnssec,
    })
}

fn explain_dynamic(
    routing: &Routing,
    dn: &DynamicName,
    client: &Client,
    rtype: RecordType,
    health: &HealthView,
    status: Option<&Status>,
) -> DynamicExplanation {
    let (policy, sticky) = match &dn.policy {
        Policy::Table { kind, .. } => (
            match kind {
                TableKind::Geo => "geo",
                TableKind::Nearest => "nearest",
                TableKind::Latency => "latency",
            },
            None,
        ),
        Policy::Failover { .. } => ("failover", None),
        Policy::Weighted { sticky, .. } => ("weighted", Some(*sticky)),
    };
    let (select, count) = match dn.select {
        Select::All => ("all", None),
        Select::First(n) => ("first", Some(n)),
        Select::Weighted => ("weighted", None),
    };
    let pool = routing
        .pools
        .get(dn.pool as usize)
        .map_or("?", |p| p.name.as_str());
    // The type the name answers with, as the routing room picks it.
    let serve = match rtype {
        _ if dn.serves_cname => Some(rtype::CNAME),
        RecordType::A if dn.serves_a => Some(rtype::A),
        RecordType::AAAA if dn.serves_aaaa => Some(rtype::AAAA),
        _ => None,
    };
    let mut out = DynamicExplanation {
        policy: policy.into(),
        sticky,
        pool: pool.into(),
        ttl: dn.ttl,
        degraded_ttl: dn.degraded_ttl,
        select: select.into(),
        count,
        datacenters: dn.datacenters,
        all_down: match dn.all_down {
            AllDown::FailOpen => "fail-open",
            AllDown::NoData => "nodata",
            AllDown::Fallback { .. } => "fallback",
        }
        .into(),
        ignore_ecs: dn.ignore_ecs,
        serves_type: serve.is_some(),
        candidates: Vec::new(),
        chosen: Vec::new(),
        all_candidates_down: false,
        scope: 0,
    };
    let Some(serve) = serve else {
        return out;
    };
    let d = routing.decide(dn, client, serve, health);
    out.all_candidates_down = d.all_down;
    out.scope = d.scope;
    for &g in d.candidates() {
        let Some(group) = routing.groups.get(g as usize) else {
            continue;
        };
        let Some(dc) = routing.datacenters.get(group.datacenter as usize) else {
            continue;
        };
        let chosen = d.groups().contains(&g);
        if chosen {
            out.chosen.push(dc.name.clone());
        }
        let up = health.group_up(g as usize);
        let dc_status = status.and_then(|s| {
            s.datacenters
                .iter()
                .find(|x| x.key == dc.key && x.pool == pool)
        });
        let admin = dc_status.and_then(|s| s.admin);
        let endpoints = endpoint_health(routing, group, health, status);
        let n_up = endpoints.iter().filter(|e| e.state == State::Up).count();
        let has_type = group.endpoints.clone().any(|e| {
            routing
                .endpoints
                .get(e as usize)
                .is_some_and(|ep| match serve {
                    rtype::A => ep.a.is_some(),
                    rtype::AAAA => ep.aaaa.is_some(),
                    _ => ep.cname.is_some(),
                })
        });
        let reason =
            datacenter_reason(up, admin, n_up, endpoints.len(), dc_status, has_type, rtype);
        out.candidates.push(Candidate {
            datacenter: dc.name.clone(),
            key: dc.key.clone(),
            state: State::new(up, admin),
            reason,
            chosen,
            endpoints,
        });
    }
    out
}

/// Each endpoint of a datacenter group: its state and why.
fn endpoint_health(
    routing: &Routing,
    group: &crate::routing::Group,
    health: &HealthView,
    status: Option<&Status>,
) -> Vec<EndpointHealth> {
    group
        .endpoints
        .clone()
        .filter_map(|e| routing.endpoints.get(e as usize).map(|ep| (e, ep)))
        .map(|(e, ep)| {
            let ep_status = status.and_then(|s| s.endpoints.iter().find(|x| x.key == ep.key));
            let up = health.endpoint_up(e as usize);
            EndpointHealth {
                id: ep.id.clone(),
                key: ep.key.clone(),
                state: State::new(up, ep_status.and_then(|s| s.admin)),
                reason: endpoint_reason(ep.check.is_some(), status.is_some(), ep_status),
                votes: ep_status.map(|s| s.votes.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

fn admin_text(a: AdminState) -> &'static str {
    match a {
        AdminState::Up => "up",
        AdminState::Down => "down",
        AdminState::Drain => "drain",
    }
}

fn datacenter_reason(
    up: bool,
    admin: Option<AdminState>,
    endpoints_up: usize,
    endpoints: usize,
    status: Option<&DatacenterStatus>,
    has_type: bool,
    rtype: RecordType,
) -> Option<String> {
    if let Some(a) = admin {
        return Some(format!("admin override: {}", admin_text(a)));
    }
    if !has_type {
        return Some(format!("no endpoint with {rtype} records"));
    }
    let counts = format!("{endpoints_up} of {endpoints} endpoints up");
    match status {
        Some(s) if !up => Some(format!(
            "{counts}, needs {:.0}%",
            s.up_share.clamp(0.0, 1.0) * 100.0
        )),
        _ => Some(counts),
    }
}

fn endpoint_reason(checked: bool, live: bool, status: Option<&EndpointStatus>) -> Option<String> {
    if let Some(a) = status.and_then(|s| s.admin) {
        return Some(format!("admin override: {}", admin_text(a)));
    }
    if !checked {
        return Some("no health check".into());
    }
    if !live {
        return None;
    }
    let s = status?;
    let check = s.check.as_deref().unwrap_or("check");
    let own = match &s.last_result {
        Some(r) => format!("{check}: {r}"),
        None => format!("{check}: not probed yet"),
    };
    if s.decided_by != "votes" {
        return Some(own);
    }
    let counted: Vec<&crate::health::VoteStatus> = s.votes.iter().filter(|v| v.counted).collect();
    let down = counted.iter().filter(|v| !v.up).count();
    Some(format!(
        "by the fleet's votes: {down} of {} down; this instance's {own}",
        counted.len()
    ))
}

/// The address with the bits beyond `prefix` cleared (what an ECS option carries).
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

fn rcode_mnemonic(code: u16) -> String {
    rcode::mnemonic(code).map_or_else(|| format!("RCODE{code}"), str::to_string)
}

/// The rcode's description (`No Error`), from its mnemonic.
pub fn rcode_description(mnemonic: &str) -> String {
    match (0..=rcode::BADVERS).find(|&c| rcode::mnemonic(c) == Some(mnemonic)) {
        Some(c) => <ResponseCode as From<u16>>::from(c).to_string(),
        None => mnemonic.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_validated() {
        let q = Question::parse("WWW.Example.com", "aaaa", "81.2.69.160/24").expect("valid");
        assert!(q.name.to_string().eq_ignore_ascii_case("www.example.com."));
        assert_eq!(q.rtype, RecordType::AAAA);
        assert_eq!(q.prefix, 24);
        assert_eq!(&q.key[..4], b"\x03www");
        let q = Question::parse("example.com.", "A", "2001:db8::1").expect("valid");
        assert_eq!(q.prefix, 128);
        for (name, t, client, want) in [
            ("", "A", "1.2.3.4", "empty name"),
            ("www.example.com", "BOGUS", "1.2.3.4", "unknown type"),
            ("www.example.com", "A", "1.2.3", "bad client address"),
            ("www.example.com", "A", "1.2.3.4/x", "bad prefix"),
            ("www.example.com", "A", "1.2.3.4/33", "longer than an IPv4"),
            ("www.example.com", "A", "::1/129", "longer than an IPv6"),
            ("a..b", "A", "1.2.3.4", "a..b"),
        ] {
            let e = Question::parse(name, t, client).expect_err(name);
            assert!(e.to_string().contains(want), "{name} {t} {client}: {e}");
        }
    }

    #[test]
    fn masks_and_mnemonics() {
        let a: IpAddr = "81.2.69.160".parse().expect("ip");
        assert_eq!(masked(a, 24).to_string(), "81.2.69.0");
        assert_eq!(masked(a, 0).to_string(), "0.0.0.0");
        assert_eq!(masked(a, 32), a);
        let b: IpAddr = "2a00:23c0::1".parse().expect("ip");
        assert_eq!(masked(b, 32).to_string(), "2a00:23c0::");
        assert_eq!(rcode_mnemonic(5), "REFUSED");
        assert_eq!(rcode_mnemonic(99), "RCODE99");
        assert_eq!(
            rcode_description("NOERROR"),
            ResponseCode::NoError.to_string()
        );
    }
}
