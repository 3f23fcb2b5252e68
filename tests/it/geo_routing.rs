//! Every routing policy end to end: a GeoIP fixture built here (so each expectation is
//! visible), real zone and dynamic-name files, the real server, queries over UDP with ECS,
//! IPv4 and IPv6 clients.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use meridian::dns::rtype::{A, AAAA, CNAME};
use meridian::dns::wire::build_query;
use meridian::geo::writer::{CityRow, city_mmdb};

const DATACENTERS: &str = r#"
[datacenters]
lon = { coords = [51.5, -0.1] }
fra = { coords = [50.1, 8.7] }
nyc = { coords = [40.7, -74.0] }
sjc = { coords = [37.3, -121.9] }
sin = { coords = [1.35, 103.8] }

[pools.web]
endpoints = [
  { id = "lon-1", datacenter = "lon", addresses = ["192.0.2.11", "2001:db8:a::11"] },
  { id = "lon-2", datacenter = "lon", addresses = ["192.0.2.12", "2001:db8:a::12"], weight = 3 },
  { id = "fra-1", datacenter = "fra", addresses = ["192.0.2.21", "2001:db8:a::21"] },
  { id = "nyc-1", datacenter = "nyc", addresses = ["192.0.2.31", "2001:db8:a::31"] },
  { id = "sjc-1", datacenter = "sjc", addresses = ["192.0.2.41", "2001:db8:a::41"] },
  { id = "sin-1", datacenter = "sin", addresses = ["192.0.2.51", "2001:db8:a::51"] },
]

[pools.v4only]
endpoints = [{ id = "only", datacenter = "fra", address = "192.0.2.99" }]

[pools.cdn]
endpoints = [
  { id = "eu", datacenter = "fra", cname = "static" },
  { id = "us", datacenter = "nyc", cname = "us.cdn.example.net." },
]
"#;

/// Which datacenter an address of the `web` pool belongs to.
fn dc_of(addr: &str) -> &'static str {
    match addr {
        "192.0.2.11" | "192.0.2.12" | "2001:db8:a::11" | "2001:db8:a::12" => "lon",
        "192.0.2.21" | "2001:db8:a::21" => "fra",
        "192.0.2.31" | "2001:db8:a::31" => "nyc",
        "192.0.2.41" | "2001:db8:a::41" => "sjc",
        "192.0.2.51" | "2001:db8:a::51" => "sin",
        other => panic!("unexpected address {other}"),
    }
}

fn fixture_db() -> Vec<u8> {
    let row = |net: &str| CityRow::new(net.parse().expect("net"));
    let rows = vec![
        row("10.1.0.0/16")
            .continent("EU")
            .country("GB")
            .subdivision("ENG")
            .city("London")
            .coords(51.5, -0.1)
            .asn(100),
        row("10.2.0.0/16")
            .continent("EU")
            .country("DE")
            .subdivision("BE")
            .city("Berlin")
            .coords(52.5, 13.4)
            .asn(200),
        row("10.3.0.0/16")
            .continent("NA")
            .country("US")
            .subdivision("CA")
            .city("San Jose")
            .coords(37.3, -121.9)
            .asn(300),
        row("10.4.0.0/16")
            .continent("NA")
            .country("US")
            .subdivision("NY")
            .city("New York")
            .coords(40.7, -74.0)
            .asn(400),
        row("10.5.0.0/16")
            .continent("AS")
            .country("SG")
            .city("Singapore")
            .coords(1.35, 103.8)
            .asn(500),
        row("10.6.0.0/16")
            .continent("OC")
            .country("AU")
            .subdivision("NSW")
            .city("Sydney")
            .coords(-33.9, 151.2)
            .asn(64500),
        // Two sibling /24s in the same country: a country-level map merges them to a /23.
        row("10.7.0.0/24")
            .continent("EU")
            .country("FR")
            .coords(48.9, 2.35),
        row("10.7.1.0/24")
            .continent("EU")
            .country("FR")
            .coords(43.3, 5.4),
        row("2001:db8:1::/48")
            .continent("EU")
            .country("GB")
            .subdivision("ENG")
            .city("London")
            .coords(51.5, -0.1),
        row("2001:db8:3::/48")
            .continent("NA")
            .country("US")
            .subdivision("CA")
            .coords(37.3, -121.9),
    ];
    city_mmdb("GeoIP2-City", &rows).expect("fixture db")
}

/// Starts the server with the fixture database, `names` appended to the datacenters and
/// `extra_files` (path relative to the config, content).
fn geo_server(names: &str, extra_files: &[(&str, &str)]) -> Server {
    let dynamic = format!("{DATACENTERS}\n{names}");
    let db = fixture_db();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("zones/example.com.zone", zones::ROUTING.as_bytes()),
        ("zones/example.com.toml", dynamic.as_bytes()),
        ("geo.mmdb", &db),
    ];
    files.extend(
        extra_files
            .iter()
            .map(|(file, text)| (*file, text.as_bytes())),
    );
    Server::start_files(&files, 1, "[geoip]\ndatabases = [\"geo.mmdb\"]")
}

/// One answer: the addresses (or CNAME targets), and the ECS scope echoed.
struct Reply {
    msg: Message,
    values: Vec<String>,
    scope: Option<u8>,
}

fn ask(s: &Server, name: &str, qtype: u16, client: Option<(&str, u8)>) -> Reply {
    let ecs = client.map(|(a, p)| (IpAddr::from_str(a).expect("client"), p));
    let q = build_query(rand::random(), &wire_name(name), qtype, true, ecs);
    let raw = udp_raw(s.addr, &q).expect("answer");
    let msg = Message::from_vec(&raw).expect("parse");
    let scope = ecs.map(|(_, prefix)| {
        // The ECS option is the last thing in the message: family, source, scope, address.
        let n = (prefix as usize).div_ceil(8);
        raw[raw.len() - n - 1]
    });
    let mut values: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
    values.sort();
    Reply { msg, values, scope }
}

/// A geo map by continent, country, state and ASN with a CIDR override, and `www` on it.
const WORLD_AND_WWW: &str = r#"
[geo_maps.world]
default = ["fra"]
nets = { "10.4.128.0/17" = ["lon"] }
[geo_maps.world.map]
"EU" = ["fra", "lon"]
"EU/GB" = ["lon", "fra"]
"NA" = ["nyc", "sjc"]
"NA/US/CA" = ["sjc", "nyc"]
"AS64500" = ["sin"]

[names.www]
pool = "web"
policy = "geo"
map = "world"
ttl = 30
"#;

fn dcs(r: &Reply) -> BTreeSet<&'static str> {
    r.values.iter().map(|v| dc_of(v)).collect()
}

#[test]
fn geo_map_most_specific_key_wins_with_fitted_scopes() {
    let s = geo_server(
        &format!(
            r#"{WORLD_AND_WWW}
[names.local]
pool = "web"
policy = "geo"
map = "world"
ignore_ecs = true
"#
        ),
        &[],
    );
    let cases: &[(&str, u8, &str, u8)] = &[
        ("10.1.2.0", 24, "lon", 16),     // EU/GB
        ("10.2.9.0", 24, "fra", 16),     // EU (DE has no key of its own)
        ("10.3.1.0", 24, "sjc", 16),     // NA/US/CA
        ("10.4.1.0", 24, "nyc", 17),     // NA; the override takes the upper /17
        ("10.4.200.0", 24, "lon", 17),   // CIDR override beats GeoIP
        ("10.6.0.0", 24, "sin", 16),     // ASN beats the location
        ("10.7.1.0", 24, "fra", 23),     // sibling /24s merged
        ("172.16.5.0", 24, "fra", 1),    // unknown: default over all of 128.0.0.0/1
        ("2001:db8:3::", 48, "sjc", 48), // IPv6 client
        ("2001:db8:1:8000::", 56, "lon", 48),
    ];
    for &(client, prefix, dc, scope) in cases {
        let qtype = if client.contains(':') { AAAA } else { A };
        let r = ask(&s, "www.example.com", qtype, Some((client, prefix)));
        assert_eq!(r.msg.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            dcs(&r),
            BTreeSet::from([dc]),
            "{client}/{prefix}: {:?}",
            r.values
        );
        assert_eq!(r.scope, Some(scope), "scope for {client}/{prefix}");
        assert_eq!(r.msg.answers[0].ttl, 30);
    }
    // Every healthy endpoint of the chosen datacenter is in the answer.
    let r = ask(&s, "www.example.com", A, Some(("10.1.0.0", 16)));
    assert_eq!(r.values, vec!["192.0.2.11", "192.0.2.12"]);
    // The same subnet from anywhere inside the scope gets the same answer.
    let r2 = ask(&s, "www.example.com", A, Some(("10.1.255.0", 24)));
    assert_eq!(r.values, r2.values);
    // Without ECS the source address (127.0.0.1: unknown here) decides: default, no option.
    let r = ask(&s, "www.example.com", A, None);
    assert_eq!(dcs(&r), BTreeSet::from(["fra"]));
    // ignore_ecs: the ECS address is not used, and the scope says the answer is for anyone.
    let r = ask(&s, "local.example.com", A, Some(("10.1.2.0", 24)));
    assert_eq!(dcs(&r), BTreeSet::from(["fra"]));
}

/// The answer cache keeps a geo name's answer by the order its map gives the client's
/// network: networks never asked before (each /24 or /56 below once) are answered from it,
/// each with the datacenter and the fitted scope of its own network, as the first asks were.
#[test]
fn networks_never_seen_get_their_own_scope_from_the_cache() {
    let s = geo_server(WORLD_AND_WWW, &[]);
    let api = s.api.expect("api");
    let hits = || metric(api, "meridian_answer_cache_total{result=\"hit\"}");
    // (networks, datacenter, scope): each network asked once, rows interleaved.
    let rows: &[(&[&str], &str, u8)] = &[
        (
            &["10.1.2.0", "10.1.3.0", "10.1.99.0", "10.1.250.0"],
            "lon",
            16,
        ),
        (
            &["10.2.9.0", "10.2.10.0", "10.2.200.0", "10.2.0.0"],
            "fra",
            16,
        ),
        (&["10.3.1.0", "10.3.2.0", "10.3.3.0", "10.3.4.0"], "sjc", 16),
        (
            &["10.4.1.0", "10.4.2.0", "10.4.127.0", "10.4.64.0"],
            "nyc",
            17,
        ),
        (
            &["10.4.200.0", "10.4.129.0", "10.4.255.0", "10.4.128.0"],
            "lon",
            17,
        ),
        (&["10.6.0.0", "10.6.1.0", "10.6.2.0", "10.6.3.0"], "sin", 16),
        (
            &["172.16.5.0", "200.1.2.0", "150.0.0.0", "130.9.9.0"],
            "fra",
            1,
        ),
        (
            &[
                "2001:db8:3::",
                "2001:db8:3:100::",
                "2001:db8:3:200::",
                "2001:db8:3:ff00::",
            ],
            "sjc",
            48,
        ),
    ];
    let before = hits();
    let mut asked = 0u64;
    for round in 0..4 {
        for &(networks, dc, scope) in rows {
            let client = networks[round];
            let (qtype, prefix) = if client.contains(':') {
                (AAAA, 56)
            } else {
                (A, 24)
            };
            let r = ask(&s, "www.example.com", qtype, Some((client, prefix)));
            assert_eq!(dcs(&r), BTreeSet::from([dc]), "{client}: {:?}", r.values);
            assert_eq!(r.scope, Some(scope), "scope for {client}/{prefix}");
            asked += 1;
        }
    }
    // Each order is stored the second time it is offered and hit from the third on.
    let hit = hits() - before;
    eprintln!("{hit} of {asked} answered from the cache");
    assert!(
        hit >= asked - 2 * rows.len() as u64,
        "{hit} of {asked} answered from the cache"
    );
}

#[test]
fn nearest_picks_the_closest_datacenter() {
    let s = geo_server(
        r#"
[names.near]
pool = "web"
policy = "nearest"
limit = 2
"#,
        &[],
    );
    for (client, dc) in [
        ("10.1.0.0", "lon"),
        ("10.2.0.0", "fra"),
        ("10.3.0.0", "sjc"),
        ("10.4.0.0", "nyc"),
        ("10.5.0.0", "sin"),
        ("10.6.0.0", "sin"), // Sydney: Singapore is the closest datacenter
    ] {
        let r = ask(&s, "near.example.com", A, Some((client, 24)));
        assert_eq!(dcs(&r), BTreeSet::from([dc]), "{client}");
        assert_eq!(r.scope, Some(16), "{client}");
    }
    let r = ask(&s, "near.example.com", AAAA, Some(("2001:db8:1::", 48)));
    assert_eq!(dcs(&r), BTreeSet::from(["lon"]));
}

#[test]
fn latency_table_lowest_rtt_then_distance() {
    let table = "client,datacenter,rtt_ms\nEU,lon,10\nEU,fra,20\nEU/DE,fra,5\nAS300,nyc,3\n10.4.0.0/16,sjc,1\n";
    let s = geo_server(
        r#"
[names.fast]
pool = "web"
policy = "latency"
latency_table = "rtt.csv"
"#,
        &[("zones/rtt.csv", table)],
    );
    for (client, dc) in [
        ("10.1.0.0", "lon"), // EU row
        ("10.2.0.0", "fra"), // EU/DE row is more specific
        ("10.3.0.0", "nyc"), // ASN row beats location
        ("10.4.0.0", "sjc"), // CIDR row
        ("10.6.0.0", "sin"), // no row: nearest by distance
        ("10.7.0.0", "lon"), // EU row
    ] {
        let r = ask(&s, "fast.example.com", A, Some((client, 24)));
        assert_eq!(dcs(&r), BTreeSet::from([dc]), "{client}");
    }
}

#[test]
fn weighted_random_spreads_and_sticky_keeps_subnets() {
    let s = geo_server(
        r#"
[names.random]
pool = "web"
policy = "weighted"
weights = { lon = 1, fra = 1 }
select = "first"

[names.sticky]
pool = "web"
policy = "weighted"
sticky = true
weights = { lon = 1, fra = 1, nyc = 1, sjc = 1 }
select = "weighted"
"#,
        &[],
    );
    let mut seen = BTreeMap::new();
    for _ in 0..200 {
        let r = ask(&s, "random.example.com", A, Some(("10.1.0.0", 24)));
        assert_eq!(r.values.len(), 1);
        assert_eq!(
            r.scope,
            Some(0),
            "a random answer does not depend on the client"
        );
        *seen.entry(dc_of(&r.values[0])).or_insert(0) += 1;
    }
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec!["fra", "lon"]);
    assert!(seen.values().all(|&n| n > 40), "both drawn often: {seen:?}");

    let mut spread = BTreeSet::new();
    for i in 0..64u8 {
        let client = format!("10.9.{i}.0");
        let first = ask(&s, "sticky.example.com", A, Some((&client, 24)));
        assert_eq!(first.scope, Some(24));
        for _ in 0..5 {
            let again = ask(&s, "sticky.example.com", A, Some((&client, 24)));
            assert_eq!(first.values, again.values, "sticky for {client}");
        }
        spread.insert(dc_of(&first.values[0]));
    }
    assert!(
        spread.len() >= 3,
        "subnets spread over datacenters: {spread:?}"
    );
    let r = ask(&s, "sticky.example.com", AAAA, Some(("2001:db8:77::", 48)));
    assert_eq!(r.scope, Some(56));
}

#[test]
fn failover_selection_and_types() {
    let s = geo_server(
        r#"
[names.db]
pool = "web"
policy = "failover"
order = ["lon", "fra"]
select = "first"
count = 1

[names.two]
pool = "web"
policy = "failover"
order = ["nyc", "lon", "fra"]
datacenters = 2

[names.weighted-pick]
pool = "web"
policy = "failover"
order = ["lon"]
select = "weighted"

[names.v4]
pool = "v4only"
policy = "failover"
order = ["fra"]

[names.cdn]
pool = "cdn"
policy = "geo"
map = "m"

[geo_maps.m]
default = ["fra"]
map = { "NA" = ["nyc"] }
"#,
        &[],
    );
    let r = ask(&s, "db.example.com", A, Some(("10.3.0.0", 24)));
    assert_eq!(r.values, vec!["192.0.2.11"]);
    assert_eq!(r.scope, Some(0), "failover does not depend on the client");
    let r = ask(&s, "two.example.com", A, None);
    assert_eq!(dcs(&r), BTreeSet::from(["nyc", "lon"]));
    assert_eq!(r.values.len(), 3);
    // Weighted pick inside lon: lon-2 has weight 3, lon-1 weight 1.
    let mut counts = BTreeMap::new();
    for _ in 0..200 {
        let r = ask(&s, "weighted-pick.example.com", A, None);
        assert_eq!(r.values.len(), 1);
        *counts.entry(r.values[0].clone()).or_insert(0) += 1;
    }
    assert!(counts["192.0.2.12"] > counts["192.0.2.11"], "{counts:?}");
    // An IPv4-only pool has no AAAA: NODATA with the SOA.
    let r = ask(&s, "v4.example.com", AAAA, None);
    assert!(r.msg.answers.is_empty());
    assert_eq!(r.msg.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.msg.authorities.len(), 1);
    // CNAME pools: a CNAME into our zone is followed, one outside is not.
    let r = ask(&s, "cdn.example.com", A, Some(("10.1.0.0", 24)));
    assert_eq!(r.values, vec!["192.0.2.250", "static.example.com."]);
    let r = ask(&s, "cdn.example.com", A, Some(("10.4.0.0", 24)));
    assert_eq!(r.values, vec!["us.cdn.example.net."]);
    let r = ask(&s, "cdn.example.com", CNAME, Some(("10.4.0.0", 24)));
    assert_eq!(r.values, vec!["us.cdn.example.net."]);
}

#[test]
fn explain_tells_location_candidates_and_scope() {
    let s = geo_server(
        r#"
[geo_maps.world]
default = ["fra"]
map = { "EU/GB" = ["lon", "fra"] }
[names.www]
pool = "web"
policy = "geo"
map = "world"
"#,
        &[],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args([
            "explain",
            "www.example.com",
            "A",
            "--client",
            "10.1.2.3/24",
            "--config",
        ])
        .arg(&s.config)
        .output()
        .expect("run explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("country GB"), "{text}");
    assert!(
        text.contains("1. lon [up]") && text.contains("<- chosen"),
        "{text}"
    );
    assert!(text.contains("2. fra"), "{text}");
    assert!(text.contains("ecs scope: /16"), "{text}");
    assert!(text.contains("IN A 192.0.2.11"), "{text}");
}

#[test]
fn check_rejects_a_name_both_static_and_dynamic() {
    let (ok, text) = check_example_com(
        zones::ROUTING,
        &format!(
            "{DATACENTERS}\n[names.static]\npool = \"web\"\npolicy = \"failover\"\norder = [\"lon\"]\n[names.bad]\npool = \"nope\"\npolicy = \"geo\"\n"
        ),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("example.com.toml:")
            && text
                .contains("static.example.com. is defined in the zone file and as a dynamic name"),
        "{text}"
    );
    assert!(text.contains("unknown pool \"nope\""), "{text}");
}

/// A reload keeps a network table when nothing it is built from changed (here the zone
/// changed, not the map nor the database), and builds it anew when the map or the database
/// changed: the answers follow each change, and the reload status tells kept from built.
#[test]
fn a_reload_keeps_unchanged_tables_and_rebuilds_changed_ones() {
    let map = |eu: &str| {
        format!(
            "[geo_maps.world]\ndefault = [\"fra\"]\n[geo_maps.world.map]\n\"EU\" = [\"{eu}\"]\n\
             \"NA\" = [\"nyc\"]\n\n[names.www]\npool = \"web\"\npolicy = \"geo\"\nmap = \"world\"\n"
        )
    };
    let s = geo_server(&map("lon"), &[]);
    let api = s.api.expect("api");
    let dir = s.dir.path();
    let london = || dcs(&ask(&s, "www.example.com", A, Some(("10.1.2.0", 24))));
    let status = || -> serde_json::Value {
        serde_json::from_str(&http_get(api, "/reload").1).expect("reload status")
    };
    assert_eq!(london(), BTreeSet::from(["lon"]));

    // The zone changes: the table is kept.
    let zone = format!("{}\nmarker IN TXT \"after\"\n", zones::ROUTING);
    std::fs::write(dir.join("zones/example.com.zone"), zone).expect("zone");
    wait_until("the zone change served", Duration::from_secs(15), || {
        !ask(&s, "marker.example.com", meridian::dns::rtype::TXT, None)
            .msg
            .answers
            .is_empty()
    });
    let last = status();
    assert_eq!(
        (last["tables_kept"].as_u64(), last["tables_built"].as_u64()),
        (Some(1), Some(0)),
        "{last}"
    );
    // The serial stayed: the reload says secondaries will not see the change.
    assert!(
        last["warnings"].to_string().contains("serial is still 1"),
        "{last}"
    );
    assert_eq!(london(), BTreeSet::from(["lon"]));

    // The map changes: built anew.
    let dynamic = format!("{DATACENTERS}\n{}", map("fra"));
    std::fs::write(dir.join("zones/example.com.toml"), dynamic).expect("names");
    wait_until("the map change served", Duration::from_secs(15), || {
        london() == BTreeSet::from(["fra"])
    });

    // The database changes (London moves to North America): built anew.
    let row = |net: &str| CityRow::new(net.parse().expect("net"));
    let moved = city_mmdb(
        "GeoIP2-City",
        &[row("10.1.0.0/16").continent("NA").country("US")],
    )
    .expect("db");
    std::fs::write(dir.join("geo.mmdb"), moved).expect("db");
    wait_until(
        "the database change served",
        Duration::from_secs(15),
        || london() == BTreeSet::from(["nyc"]),
    );
    // Kept from then on: the table kept is the new one.
    let (code, body) = http_post(api, "/reload", "");
    assert_eq!(code, 200, "{body}");
    let last: serde_json::Value = serde_json::from_str(&body).expect("reload");
    assert_eq!(last["tables_kept"].as_u64(), Some(1), "{last}");
    assert_eq!(london(), BTreeSet::from(["nyc"]));

    // A name read before the map's takes the first order ids: the kept table's values are
    // renumbered, and every answer stays right.
    let first = "[names.aaa]\npool = \"web\"\npolicy = \"failover\"\norder = [\"sin\", \"lon\"]\n";
    let dynamic = format!("{DATACENTERS}\n{first}\n{}", map("fra"));
    std::fs::write(dir.join("zones/example.com.toml"), dynamic).expect("names");
    wait_until("the new name served", Duration::from_secs(15), || {
        !ask(&s, "aaa.example.com", A, None).values.is_empty()
    });
    let last = status();
    assert_eq!(last["tables_kept"].as_u64(), Some(1), "{last}");
    assert_eq!(
        dcs(&ask(&s, "aaa.example.com", A, None)),
        BTreeSet::from(["sin"])
    );
    assert_eq!(london(), BTreeSet::from(["nyc"]));
    let berlin = dcs(&ask(&s, "www.example.com", A, Some(("10.2.0.0", 24))));
    assert_eq!(
        berlin,
        BTreeSet::from(["fra"]),
        "unknown to the new database: default"
    );
}
