//! `GET /explain` end to end: the real server on a real zone and the demo GeoIP database
//! (geoip/demo-city.mmdb), asked over HTTP. The explanation must agree with what the same
//! server answers over UDP for the same ECS client, follow admin overrides and health checks
//! live, and refuse bad questions with 400 and a JSON reason.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::Message;
use meridian::dns::rtype::{A, AAAA};
use meridian::dns::wire::build_query;
use serde_json::Value;

/// London, Frankfurt, New York (two endpoints) and San Jose (two endpoints, one of them
/// failing its file check). The geo map follows the demo database's places.
const DYNAMIC: &str = r#"
[datacenters]
lon = { coords = [51.51, -0.13] }
fra = { coords = [50.11, 8.68] }
nyc = { coords = [40.71, -74.01] }
sjc = { coords = [37.34, -121.89] }

[pools.web]
endpoints = [
  { id = "lon-1", datacenter = "lon", addresses = ["192.0.2.21", "2001:db8:1::21"] },
  { id = "fra-1", datacenter = "fra", addresses = ["192.0.2.11", "2001:db8:f::11"] },
  { id = "nyc-1", datacenter = "nyc", addresses = ["198.51.100.31", "2001:db8:3::31"] },
  { id = "nyc-2", datacenter = "nyc", addresses = ["198.51.100.32", "2001:db8:3::32"] },
  { id = "sjc-1", datacenter = "sjc", addresses = ["198.51.100.41", "2001:db8:4::41"] },
  { id = "sjc-2", datacenter = "sjc", addresses = ["198.51.100.42", "2001:db8:4::42"] },
]
check = { type = "file", file = "health/{id}", interval = 0.2, timeout = 0.1, rise = 1, fall = 1 }

[geo_maps.world]
default = ["fra"]
[geo_maps.world.map]
"EU/GB" = ["lon", "fra"]
"NA/US" = ["nyc", "sjc", "fra"]
"NA/US/CA" = ["sjc", "nyc", "fra"]

[names.www]
pool = "web"
policy = "geo"
map = "world"
ttl = 20
degraded_ttl = 10
"#;

const LONDON: &str = "81.2.69.0/24"; // EU/GB/ENG/London, AS20712 in the demo database
const NEW_YORK: &str = "24.0.0.0/16"; // NA/US/NY/New York
const MOUNTAIN_VIEW: &str = "8.8.8.0/24"; // NA/US/CA/Mountain View
const LONDON_V6: &str = "2a00:23c0::/32"; // EU/GB/ENG/London

const DEADLINE: Duration = Duration::from_secs(10);

/// The zone, the dynamic names, the demo database and one health file per endpoint
/// (`up` except sjc-2), with an optional `[api]` section.
fn start(api: &str) -> Server {
    start_with_db(api, false)
}

/// As [`start`]; with `copy_db` the demo database is copied into the server's directory
/// first (for tests that change the file).
fn start_with_db(api: &str, copy_db: bool) -> Server {
    let health: Vec<(String, &[u8])> = ["lon-1", "fra-1", "nyc-1", "nyc-2", "sjc-1", "sjc-2"]
        .iter()
        .map(|id| {
            let state: &[u8] = if *id == "sjc-2" { b"down" } else { b"up" };
            (format!("zones/health/{id}"), state)
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = vec![
        ("zones/example.com.zone", zones::ROUTING.as_bytes()),
        ("zones/example.com.toml", DYNAMIC.as_bytes()),
    ];
    files.extend(health.iter().map(|(path, state)| (path.as_str(), *state)));
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/demo-city.mmdb");
    let copy;
    let db = if copy_db {
        copy = std::fs::read(shipped).expect("read the demo database");
        files.push(("city.mmdb", &copy));
        "city.mmdb"
    } else {
        shipped
    };
    Server::start_files(
        &files,
        1,
        &format!("[geoip]\ndatabases = [\"{db}\"]\n{api}"),
    )
}

/// GET /explain with these query parameters (already URL-safe): (status, JSON body).
fn explain_raw(s: &Server, query: &str) -> (u16, Value) {
    let (code, body) = http_get(s.api.expect("api"), &format!("/explain?{query}"));
    let v = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/explain?{query} is not JSON ({e}): {body}"));
    (code, v)
}

/// A successful explanation of `name` `qtype` for `client`.
fn explain(s: &Server, name: &str, qtype: &str, client: &str) -> Value {
    let (code, v) = explain_raw(s, &format!("name={name}&type={qtype}&client={client}"));
    assert_eq!(code, 200, "explain {name} {qtype} {client}: {v}");
    v
}

/// A real UDP query carrying `client` as ECS: (answer records as text, ECS scope, TTL).
fn udp_answer(s: &Server, name: &str, qtype: u16, client: &str) -> (BTreeSet<String>, u8, u32) {
    let (addr, prefix) = client.split_once('/').expect("client with prefix");
    let addr = IpAddr::from_str(addr).expect("client address");
    let prefix: u8 = prefix.parse().expect("prefix");
    let q = build_query(
        rand::random(),
        &wire_name(name),
        qtype,
        true,
        Some((addr, prefix)),
    );
    let raw = udp_raw(s.addr, &q).expect("UDP answer");
    let msg = Message::from_vec(&raw).expect("parse response");
    // The ECS option is the last thing in the message: family, source, scope, address.
    let scope = raw[raw.len() - (prefix as usize).div_ceil(8) - 1];
    let ttl = msg.answers.first().map_or(0, |r| r.ttl);
    (
        msg.answers.iter().map(|r| r.to_string()).collect(),
        scope,
        ttl,
    )
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn chosen(v: &Value) -> Vec<String> {
    v["dynamic"]["chosen"]
        .as_array()
        .unwrap_or_else(|| panic!("no dynamic.chosen: {v}"))
        .iter()
        .map(|s| s.as_str().expect("datacenter").to_string())
        .collect()
}

fn candidate<'a>(v: &'a Value, dc: &str) -> &'a Value {
    v["dynamic"]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .find(|c| c["datacenter"] == dc)
        .unwrap_or_else(|| panic!("{dc} not a candidate: {v}"))
}

fn endpoint<'a>(v: &'a Value, dc: &str, id: &str) -> &'a Value {
    candidate(v, dc)["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {dc}: {v}"))
}

/// The explanation and a real UDP query from the same client agree on records, scope, TTL.
fn assert_matches_udp(s: &Server, v: &Value, name: &str, qtype: u16, client: &str) {
    let (records, scope, ttl) = udp_answer(s, name, qtype, client);
    assert!(!records.is_empty(), "no UDP answer for {client}");
    assert_eq!(strings(&v["answers"]), records, "records for {client}: {v}");
    assert_eq!(v["ecs_scope"], u64::from(scope), "scope for {client}: {v}");
    assert_eq!(v["ttl"], u64::from(ttl), "ttl for {client}: {v}");
    assert_eq!(v["rcode"], "NOERROR", "{v}");
}

#[test]
fn explain_follows_geo_live_health_and_overrides() {
    let s = start("");
    let www = "www.example.com";

    // sjc-2's file says down: wait for the check to take it out (fall = 1).
    wait_until("sjc-2 to fail its check", DEADLINE, || {
        let v = explain(&s, www, "A", MOUNTAIN_VIEW);
        endpoint(&v, "sjc", "sjc-2")["state"] == "down"
    });

    // London: located by the ECS network, lon first and chosen.
    let lon = explain(&s, www, "A", LONDON);
    assert_eq!(lon["name"], "www.example.com.", "{lon}");
    assert_eq!(lon["qtype"], "A");
    assert_eq!(lon["client"], LONDON);
    assert_eq!(lon["ecs"]["source_prefix"], 24);
    assert_eq!(lon["ecs"]["used"], true);
    assert_eq!(lon["health"], "live");
    assert_eq!(lon["zone"], "example.com.");
    let loc = &lon["location"];
    assert_eq!(
        (
            &loc["continent"],
            &loc["country"],
            &loc["city"],
            &loc["asn"]
        ),
        (
            &Value::from("EU"),
            &Value::from("GB"),
            &Value::from("London"),
            &Value::from(20712)
        ),
        "{lon}"
    );
    assert!(
        loc["latitude"]
            .as_f64()
            .is_some_and(|l| (l - 51.51).abs() < 0.1)
    );
    assert_eq!(lon["dynamic"]["policy"], "geo");
    assert_eq!(lon["dynamic"]["pool"], "web");
    assert_eq!(lon["dynamic"]["candidates"][0]["datacenter"], "lon");
    assert_eq!(lon["dynamic"]["candidates"][1]["datacenter"], "fra");
    assert_eq!(candidate(&lon, "lon")["state"], "up");
    assert_eq!(candidate(&lon, "lon")["chosen"], true);
    assert_eq!(chosen(&lon), ["lon"]);
    assert_eq!(
        strings(&lon["answers"]),
        BTreeSet::from(["www.example.com. 20 IN A 192.0.2.21".to_string()])
    );
    assert_matches_udp(&s, &lon, www, A, LONDON);

    // New York and Mountain View: other datacenters, as the map says.
    let ny = explain(&s, www, "A", NEW_YORK);
    assert_eq!(ny["location"]["country"], "US", "{ny}");
    assert_eq!(ny["location"]["subdivision"], "NY", "{ny}");
    assert_eq!(chosen(&ny), ["nyc"]);
    assert_ne!(chosen(&ny), chosen(&lon));
    assert_matches_udp(&s, &ny, www, A, NEW_YORK);
    assert_eq!(strings(&ny["answers"]).len(), 2, "{ny}");

    let mv = explain(&s, www, "A", MOUNTAIN_VIEW);
    assert_eq!(mv["location"]["subdivision"], "CA", "{mv}");
    assert_eq!(chosen(&mv), ["sjc"]);
    assert_matches_udp(&s, &mv, www, A, MOUNTAIN_VIEW);
    // The failing check says why sjc-2 is out; the answer has sjc-1 only.
    let sjc2 = endpoint(&mv, "sjc", "sjc-2");
    assert!(
        sjc2["reason"]
            .as_str()
            .is_some_and(|r| r.contains("says down")),
        "{mv}"
    );
    assert_eq!(endpoint(&mv, "sjc", "sjc-1")["state"], "up");
    assert_eq!(
        strings(&mv["answers"]),
        BTreeSet::from(["www.example.com. 20 IN A 198.51.100.41".to_string()])
    );

    // IPv6 and AAAA.
    let v6 = explain(&s, www, "AAAA", LONDON_V6);
    assert_eq!(v6["qtype"], "AAAA");
    assert_eq!(chosen(&v6), ["lon"]);
    assert_matches_udp(&s, &v6, www, AAAA, LONDON_V6);

    // Drain London: the explanation says so, fra answers with the degraded TTL, and UDP
    // agrees.
    set_override(&s, r#"{"datacenter": "example.com/lon", "state": "drain"}"#);
    let drained = explain(&s, www, "A", LONDON);
    let c = candidate(&drained, "lon");
    assert_eq!(c["state"], "drained", "{drained}");
    assert_eq!(c["chosen"], false);
    assert!(
        c["reason"]
            .as_str()
            .is_some_and(|r| r.contains("admin override: drain")),
        "{drained}"
    );
    assert_eq!(chosen(&drained), ["fra"]);
    assert_eq!(drained["ttl"], 10, "degraded TTL: {drained}");
    assert_ne!(drained["answers"], lon["answers"]);
    assert_matches_udp(&s, &drained, www, A, LONDON);

    // An endpoint forced down: its datacenter still answers with the rest.
    set_override(
        &s,
        r#"{"endpoint": "example.com/web/nyc-1", "state": "down"}"#,
    );
    let ny_down = explain(&s, www, "A", NEW_YORK);
    let nyc1 = endpoint(&ny_down, "nyc", "nyc-1");
    assert_eq!(nyc1["state"], "down", "{ny_down}");
    assert_eq!(nyc1["reason"], "admin override: down");
    assert_eq!(chosen(&ny_down), ["nyc"]);
    assert_eq!(
        strings(&ny_down["answers"]),
        BTreeSet::from(["www.example.com. 20 IN A 198.51.100.32".to_string()])
    );
    assert_matches_udp(&s, &ny_down, www, A, NEW_YORK);

    // Cleared: back to London.
    set_override(&s, r#"{"datacenter": "example.com/lon", "state": null}"#);
    let back = explain(&s, www, "A", LONDON);
    assert_eq!(chosen(&back), ["lon"]);
    assert_eq!(back["answers"], lon["answers"]);

    // Static data is explained too: no routing, the zone's answer.
    let st = explain(&s, "static.example.com", "A", LONDON);
    assert_eq!(st["dynamic"], Value::Null, "{st}");
    assert_eq!(
        strings(&st["answers"]),
        BTreeSet::from(["static.example.com. 300 IN A 192.0.2.250".to_string()])
    );
    assert_eq!(st["ecs_scope"], 0);
    // The type defaults to A.
    let (code, dflt) = explain_raw(&s, &format!("name={www}&client={LONDON}"));
    assert_eq!(code, 200, "{dflt}");
    assert_eq!(dflt["qtype"], "A");
    // A name of ours that does not exist.
    let nx = explain(&s, "nope.example.com", "A", LONDON);
    assert_eq!(nx["rcode"], "NXDOMAIN", "{nx}");
}

#[test]
fn bad_questions_get_400_with_a_reason() {
    let s = start("");
    for (query, want) in [
        (
            "name=www.example.com&client=not-an-address",
            "bad client address",
        ),
        ("name=www.example.com&client=81.2.69.0/33", "bad prefix"),
        ("name=www.example.com&client=81.2.69.0/x", "bad prefix"),
        ("name=www.example.com&client=::1/200", "bad prefix"),
        (
            "name=www.example.com&type=BOGUS&client=81.2.69.0/24",
            "unknown type",
        ),
        (
            "name=www.example.org&client=81.2.69.0/24",
            "not in any zone",
        ),
        ("name=a..b&client=81.2.69.0/24", "a..b"),
        ("name=www.example.com", "missing client"),
        ("name=www.example.com&client=", "missing client"),
        ("client=81.2.69.0/24", "missing name"),
        ("name=www.example.com&client=1.2.3.4&typo=1", "typo"),
        ("", "missing name"),
    ] {
        let (code, v) = explain_raw(&s, query);
        assert_eq!(code, 400, "{query}: {v}");
        let error = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{query}: {v}"));
        assert!(error.contains(want), "{query}: {error}");
    }
    // The server is still fine.
    let v = explain(&s, "www.example.com", "A", LONDON);
    assert_eq!(chosen(&v), ["lon"]);
}

#[test]
fn explain_needs_the_token_like_status() {
    let s = start("[api]\ntoken = \"sesame\"\n");
    let api = s.api.expect("api");
    let path = format!("/explain?name=www.example.com&client={LONDON}");
    let (code, _) = http_get(api, &path);
    assert_eq!(code, 401);
    let (code, _) = http_request(api, "GET", &path, "", Some("wrong"));
    assert_eq!(code, 401);
    let (code, body) = http_request(api, "GET", &path, "", Some("sesame"));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(chosen(&v), ["lon"]);
}

/// The snapshot keeps no GeoIP database bytes: explain reopens the files, and says so when a
/// file changed after it was loaded (answers keep the loaded tables until a reload).
/// Called on a loaded snapshot, not a server: a server's file watcher would reload at once.
#[test]
fn explain_reopens_the_database_and_notes_a_changed_file() {
    let s = start_with_db("", true);
    let snapshot = match meridian::config::load(&s.config) {
        Ok(l) => l.snapshot,
        Err(e) => panic!("load: {e:?}"),
    };
    let view = meridian::health::HealthView::all_up();
    let question =
        meridian::explain::Question::parse("www.example.com", "A", LONDON).expect("question");
    let before = meridian::explain::explain(&snapshot, &view, None, &question).expect("explain");
    let before = serde_json::to_value(&before).expect("json");
    assert!(!chosen(&before).is_empty(), "{before}");
    assert_eq!(before["location"]["country"], "GB", "{before}");
    assert!(before["location_note"].is_null(), "{before}");

    // Same bytes, another modification time: a file that changed on disk.
    let db = s.dir.path().join("city.mmdb");
    let file = std::fs::File::options()
        .write(true)
        .open(&db)
        .expect("open db");
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    file.set_modified(hour_ago).expect("set mtime");
    drop(file);
    let after = meridian::explain::explain(&snapshot, &view, None, &question).expect("explain");
    let after = serde_json::to_value(&after).expect("json");
    assert_eq!(after["location"]["country"], "GB", "{after}");
    let note = after["location_note"].as_str().unwrap_or_default();
    assert!(note.contains("changed since it was loaded"), "{after}");
    assert_eq!(chosen(&after), chosen(&before));

    // Gone: explain says why, and the answer still comes from the loaded tables.
    std::fs::remove_file(&db).expect("remove db");
    let gone = meridian::explain::explain(&snapshot, &view, None, &question).expect("explain");
    let gone = serde_json::to_value(&gone).expect("json");
    assert!(gone["location"].is_null(), "{gone}");
    assert!(
        gone["location_note"]
            .as_str()
            .unwrap_or_default()
            .contains("lookup failed")
    );
    assert_eq!(chosen(&gone), chosen(&before));
}

/// Explaining runs the real answer path but is not traffic: queries, responses, per-zone and
/// per-name counters stay as they were; a real query still counts.
#[test]
fn explain_is_not_counted_as_traffic() {
    let s = start("");
    let counted = |body: &str| -> BTreeSet<String> {
        body.lines()
            .filter(|l| {
                [
                    "queries_total",
                    "responses_total",
                    "zone_queries_total",
                    "dynamic_answers_total",
                ]
                .iter()
                .any(|m| l.starts_with(&format!("meridian_{m}")))
            })
            .map(str::to_string)
            .collect::<BTreeSet<String>>()
    };
    let api = s.api.expect("api");
    let (code, before) = http_get(api, "/metrics");
    assert_eq!(code, 200);
    let before = counted(&before);
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("meridian_queries_total")),
        "{before:?}"
    );
    for client in [LONDON, NEW_YORK, MOUNTAIN_VIEW] {
        let v = explain(&s, "www.example.com", "A", client);
        assert!(!chosen(&v).is_empty(), "{v}");
    }
    let after = counted(&http_get(api, "/metrics").1);
    assert_eq!(before, after, "explain changed the traffic counters");

    udp_answer(&s, "www.example.com", A, LONDON);
    let later = counted(&http_get(api, "/metrics").1);
    assert_ne!(after, later, "a real query must count");
}

/// A client that opts out of ECS (source prefix 0, RFC 7871 §7.1.2): the explanation and a
/// real query agree, both with scope 0, located by the source address, not 0.0.0.0/8.
#[test]
fn explain_and_answers_for_source_prefix_zero_have_scope_zero() {
    let s = start("");
    for client in ["0.0.0.0/0", "::/0"] {
        let v = explain(&s, "www.example.com", "A", client);
        assert_eq!(v["ecs"]["source_prefix"], 0, "{v}");
        assert_eq!(v["ecs"]["used"], false, "{client}: {v}");
        assert_eq!(v["ecs_scope"], 0, "{client}: {v}");
        assert_matches_udp(&s, &v, "www.example.com", A, client);
    }
}
