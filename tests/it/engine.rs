//! The engine in memory, as quinn-proto tests its protocol: a snapshot from fixture text,
//! query bytes in, response bytes out, no socket and no binary. These are the zone room's
//! RFC 1034 lookup and the routing room's policies, checked through `engine::answer`.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::dns::wire::build_query;
use meridian::dns::{MAX_MESSAGE, Transport, rtype};
use meridian::engine::{self, Request, Snapshot};
use meridian::health::HealthView;

use crate::common::{load_snapshot, wire_name};

/// A snapshot built from one zone file's text and, optionally, its dynamic names' TOML.
struct Kit {
    snapshot: Snapshot,
    _dir: tempfile::TempDir,
}

const ZONE: &str = "\
$ORIGIN example.test.
$TTL 300
@        SOA  ns1 hostmaster 1 3600 600 86400 60
@        NS   ns1
ns1      A    192.0.2.1
www      A    192.0.2.10
alias    CNAME www
chain    CNAME alias
loop1    CNAME loop2
loop2    CNAME loop1
*.wild   A    192.0.2.20
a.b.deep TXT  \"deep\"
sub      NS   ns.sub
ns.sub   A    192.0.2.53
old      DNAME new.example.test.
www.new  A    192.0.2.30
mail     MX   10 www
";

const DYNAMIC: &str = r#"
[datacenters]
one = {}
two = {}
three = {}

[pools.web]
endpoints = [
  { id = "one-1", datacenter = "one", address = "198.51.100.1" },
  { id = "two-1", datacenter = "two", address = "198.51.100.2" },
  { id = "three-1", datacenter = "three", address = "198.51.100.3" },
]

[geo_maps.nets]
default = ["one"]
nets = { "198.51.100.0/24" = ["two"], "2001:db8:2::/48" = ["three"] }

[names.geo]
pool = "web"
policy = "geo"
map = "nets"
ttl = 20

[names.db]
pool = "web"
policy = "failover"
order = ["one", "two"]
all_down = "nodata"
ttl = 10

[names.spread]
pool = "web"
policy = "weighted"
weights = { one = 1, two = 1, three = 1 }
datacenters = 1
select = "first"
count = 1
ttl = 20

[names.sticky]
pool = "web"
policy = "weighted"
sticky = true
weights = { one = 1, two = 1, three = 1 }
ttl = 20
"#;

impl Kit {
    fn new(zone: &str, dynamic: Option<&str>) -> Kit {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("example.test.zone"), zone).expect("zone");
        if let Some(d) = dynamic {
            std::fs::write(dir.path().join("example.test.toml"), d).expect("dynamic");
        }
        let config = dir.path().join("meridian.toml");
        std::fs::write(
            &config,
            "[[zone]]\norigin = \"example.test.\"\nfile = \"example.test.zone\"\n",
        )
        .expect("config");
        Kit {
            snapshot: load_snapshot(&config),
            _dir: dir,
        }
    }

    /// The response to `name`/`rtype` from `source`, with this health and entropy.
    fn ask_with(&self, name: &str, qtype: u16, health: &HealthView, entropy: u64) -> Message {
        let query = build_query(0x1234, &wire_name(name), qtype, true, None);
        let mut buf = vec![0u8; MAX_MESSAGE];
        let source = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let request = Request::new(&query, source, Transport::Udp).with_entropy(entropy);
        let n =
            engine::answer(&self.snapshot, health, None, &request, &mut buf).expect("a response");
        Message::from_vec(&buf[..n]).expect("a parseable response")
    }

    /// The response to `name` A from `source` with an ECS option (address, source prefix).
    fn ask_ecs(&self, name: &str, source: IpAddr, ecs: (IpAddr, u8)) -> Message {
        let query = build_query(0x4321, &wire_name(name), rtype::A, true, Some(ecs));
        let mut buf = vec![0u8; MAX_MESSAGE];
        let request = Request::new(&query, source, Transport::Udp);
        let n = engine::answer(
            &self.snapshot,
            &HealthView::all_up(),
            None,
            &request,
            &mut buf,
        )
        .expect("a response");
        Message::from_vec(&buf[..n]).expect("a parseable response")
    }

    fn ask(&self, name: &str, qtype: u16) -> Message {
        self.ask_with(name, qtype, &HealthView::all_up(), 0)
    }

    /// A health view with the endpoints named down (every group up unless emptied).
    fn health_without(&self, down: &[&str]) -> HealthView {
        let routing = &self.snapshot.routing;
        let endpoints: Vec<bool> = routing
            .endpoints
            .iter()
            .map(|e| !down.iter().any(|d| e.key.ends_with(&format!("/{d}"))))
            .collect();
        assert!(
            endpoints.iter().filter(|up| !**up).count() == down.len(),
            "every endpoint named is known: {down:?}"
        );
        let groups: Vec<bool> = routing
            .groups
            .iter()
            .map(|g| {
                g.endpoints
                    .clone()
                    .any(|e| endpoints.get(e as usize).copied().unwrap_or(true))
            })
            .collect();
        HealthView::new(endpoints, groups, self.snapshot.generation)
    }
}

fn texts(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

#[test]
fn an_exact_name_is_answered_with_authority() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("www.example.test.", rtype::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(texts(&m), ["192.0.2.10"]);
}

#[test]
fn a_missing_name_is_nxdomain_with_the_soa() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("nothing.example.test.", rtype::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn an_empty_non_terminal_is_nodata_not_nxdomain() {
    let kit = Kit::new(ZONE, None);
    // b.deep has no records, but a.b.deep does (RFC 8020: the name exists).
    let m = kit.ask("b.deep.example.test.", rtype::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn a_cname_chain_is_followed_inside_the_zone() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("chain.example.test.", rtype::A);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [RecordType::CNAME, RecordType::CNAME, RecordType::A],
        "{m}"
    );
    assert_eq!(texts(&m).last().map(String::as_str), Some("192.0.2.10"));
}

#[test]
fn a_cname_loop_ends() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("loop1.example.test.", rtype::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.len() <= 13, "the chain was cut: {m}");
    assert!(
        m.answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME)
    );
}

#[test]
fn a_wildcard_answers_for_any_label_below_it() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("anything.wild.example.test.", rtype::A);
    assert_eq!(texts(&m), ["192.0.2.20"]);
    assert_eq!(m.answers[0].name.to_ascii(), "anything.wild.example.test.");
}

#[test]
fn a_delegation_is_a_referral_with_glue() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("host.sub.example.test.", rtype::A);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::NS);
    assert_eq!(texts_of(&m.additionals), ["192.0.2.53"]);
}

fn texts_of(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| r.data.to_string())
        .collect()
}

#[test]
fn a_dname_synthesizes_a_cname() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("www.old.example.test.", rtype::A);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(
        types,
        [RecordType::DNAME, RecordType::CNAME, RecordType::A],
        "{m}"
    );
    assert_eq!(texts(&m).last().map(String::as_str), Some("192.0.2.30"));
}

#[test]
fn a_name_outside_every_zone_is_refused() {
    let kit = Kit::new(ZONE, None);
    let m = kit.ask("www.example.org.", rtype::A);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn failover_takes_the_first_healthy_datacenter_in_order() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let all_up = HealthView::all_up();
    assert_eq!(
        texts(&kit.ask_with("db.example.test.", rtype::A, &all_up, 0)),
        ["198.51.100.1"]
    );
    let one_down = kit.health_without(&["one-1"]);
    assert_eq!(
        texts(&kit.ask_with("db.example.test.", rtype::A, &one_down, 0)),
        ["198.51.100.2"]
    );
    // Both in the order down: NODATA, as configured (`three` is not in the order).
    let both_down = kit.health_without(&["one-1", "two-1"]);
    let m = kit.ask_with("db.example.test.", rtype::A, &both_down, 0);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "{m}");
}

#[test]
fn weighted_random_picks_follow_the_request_entropy() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let health = HealthView::all_up();
    let pick =
        |entropy: u64| texts(&kit.ask_with("spread.example.test.", rtype::A, &health, entropy));
    // The same inputs give the same answer: the engine has no random source of its own.
    for e in [0u64, 1, 0xDEAD_BEEF] {
        assert_eq!(pick(e), pick(e));
    }
    // Different entropy spreads over all three equal weights.
    let mut seen = std::collections::BTreeMap::new();
    for e in 0..300u64 {
        let answer = pick(e.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert_eq!(answer.len(), 1);
        *seen.entry(answer[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|&n| n > 50), "far from even: {seen:?}");
}

#[test]
fn sticky_weights_ignore_the_entropy() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let health = HealthView::all_up();
    let first = texts(&kit.ask_with("sticky.example.test.", rtype::A, &health, 1));
    for e in 2..50u64 {
        assert_eq!(
            texts(&kit.ask_with("sticky.example.test.", rtype::A, &health, e)),
            first
        );
    }
}

#[test]
fn a_dynamic_name_has_no_data_of_other_types() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let m = kit.ask("db.example.test.", rtype::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
}

/// The ECS option of a response: (family, source prefix, scope prefix, address).
fn client_subnet(m: &Message) -> (u16, u8, u8, IpAddr) {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let edns = m.edns.as_ref().expect("an OPT record");
    let Some(EdnsOption::Subnet(s)) = edns.option(EdnsCode::Subnet) else {
        panic!("no ECS option in {m}");
    };
    let addr = s.addr();
    let family = if addr.is_ipv4() { 1 } else { 2 };
    (family, s.source_prefix(), s.scope_prefix(), addr)
}

#[test]
fn ecs_with_a_source_prefix_locates_by_the_subnet_with_its_scope() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let elsewhere = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let subnet = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0));
    let m = kit.ask_ecs("geo.example.test.", elsewhere, (subnet, 24));
    assert_eq!(texts(&m), ["198.51.100.2"]);
    assert_eq!(client_subnet(&m), (1, 24, 24, subnet));
}

/// RFC 7871 §7.1.2 and §7.2.1: a source prefix of 0 opts out; the answer is located by the
/// packet's source and carries scope 0, the option otherwise echoed as received.
#[test]
fn ecs_source_prefix_zero_locates_by_source_with_scope_zero() {
    let kit = Kit::new(ZONE, Some(DYNAMIC));
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let any6 = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    let inside = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    let outside = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let inside6: IpAddr = "2001:db8:2::53".parse().expect("address");
    for (source, ecs, want) in [
        (inside, any4, "198.51.100.2"),
        (outside, any4, "198.51.100.1"),
        (inside, any6, "198.51.100.2"),
        (inside6, any4, "198.51.100.3"),
        (inside6, any6, "198.51.100.3"),
    ] {
        let m = kit.ask_ecs("geo.example.test.", source, (ecs, 0));
        assert_eq!(texts(&m), [want], "from {source} with {ecs}/0");
        let family = if ecs.is_ipv4() { 1 } else { 2 };
        assert_eq!(
            client_subnet(&m),
            (family, 0, 0, ecs),
            "from {source} with {ecs}/0"
        );
    }
}

/// The raw response to `name`/`qtype` from `source` with an ECS option, under `health`.
fn raw_ecs(kit: &Kit, name: &str, qtype: u16, ecs: (IpAddr, u8), health: &HealthView) -> Vec<u8> {
    let query = build_query(0x5150, &wire_name(name), qtype, true, Some(ecs));
    let mut buf = vec![0u8; MAX_MESSAGE];
    let source = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let request = Request::new(&query, source, Transport::Udp);
    let n = engine::answer(&kit.snapshot, health, None, &request, &mut buf).expect("a response");
    buf.truncate(n);
    buf
}

/// Geo orders of two datacenters, endpoints of both families, a shorter TTL when the first
/// choice is down: answers that change with the health view.
const GEO_TWO_DEEP: &str = r#"
[datacenters]
one = {}
two = {}
three = {}

[pools.web]
endpoints = [
  { id = "one-1", datacenter = "one", address = "198.51.100.1" },
  { id = "one-6", datacenter = "one", address = "2001:db8:f::1" },
  { id = "two-1", datacenter = "two", address = "198.51.100.2" },
  { id = "two-2", datacenter = "two", address = "198.51.100.22" },
  { id = "two-6", datacenter = "two", address = "2001:db8:f::2" },
  { id = "three-1", datacenter = "three", address = "198.51.100.3" },
]

[geo_maps.nets]
default = ["one", "two"]
nets = { "198.51.100.0/24" = ["two", "three"], "2001:db8:2::/48" = ["three", "one"] }

[names.geo]
pool = "web"
policy = "geo"
map = "nets"
ttl = 20
degraded_ttl = 5
"#;

/// Table-driven answers are kept per thread by (name, type, the order the client's network
/// maps to) and copied for other networks of that order. Every answer must be the one a
/// thread that kept nothing gives, byte for byte (records, TTL, ECS scope), also after the
/// health changes and changes back; and the kept answers must be used.
#[test]
fn kept_table_answers_are_the_answers_a_fresh_thread_gives() {
    let kit = Kit::new(ZONE, Some(GEO_TWO_DEEP));
    let v4 = |a, b, c| IpAddr::V4(Ipv4Addr::new(a, b, c, 0));
    let v6 = |s: &str| s.parse::<IpAddr>().expect("an address");
    // Networks of three orders, each order asked from several of them.
    let networks = [
        (v4(198, 51, 100), 24),
        (v4(10, 1, 2), 24),
        (v4(192, 0, 2), 24),
        (v4(198, 51, 100), 25),
        (v6("2001:db8:2::"), 48),
        (v6("2001:db8:2:1::"), 64),
        (v6("2001:db8:9::"), 48),
        (v4(172, 16, 0), 16),
    ];
    let fresh = |qtype: u16, ecs: (IpAddr, u8), health: &HealthView| {
        std::thread::scope(|s| {
            s.spawn(|| raw_ecs(&kit, "geo.example.test.", qtype, ecs, health))
                .join()
                .expect("the fresh thread answers")
        })
    };
    let all_up = HealthView::all_up();
    let two_down = kit.health_without(&["two-1", "two-2", "two-6"]);
    let one_down = kit.health_without(&["one-1", "one-6"]);
    let before = meridian::routing::replayed_on_this_thread();
    let mut asked = 0u64;
    let mut by_health = Vec::new();
    for health in [&all_up, &two_down, &one_down, &all_up] {
        let mut answers = Vec::new();
        for _round in 0..2 {
            for &ecs in &networks {
                for qtype in [rtype::A, rtype::AAAA] {
                    let got = raw_ecs(&kit, "geo.example.test.", qtype, ecs, health);
                    assert_eq!(got, fresh(qtype, ecs, health), "{ecs:?} type {qtype}");
                    answers.push(got);
                    asked += 1;
                }
            }
        }
        by_health.push(answers);
    }
    // Each health change changed answers, and changing back gave the first ones again.
    assert_ne!(by_health[0], by_health[1]);
    assert_ne!(by_health[1], by_health[2]);
    assert_eq!(by_health[0], by_health[3]);
    // Three orders, two types: at most six answers per health view are decided afresh (and
    // fewer answer at all: `three` has no IPv6 endpoint); the rest are copied.
    let replayed = meridian::routing::replayed_on_this_thread() - before;
    assert!(
        replayed >= asked - 4 * 6 - 4 * 8,
        "{replayed} of {asked} answers copied from kept ones"
    );
}
