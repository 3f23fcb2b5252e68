//! The sampled query log: the real server writes one line per sampled query (UDP and TCP,
//! with ECS and the geo answer), samples exactly one in N, writes JSON when asked, starts a
//! new file after rotation, and counts its lines in /metrics. (A bad setting: tests/check.rs.)

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::common::*;
use meridian::dns::rtype::A;
use meridian::dns::wire::build_query;

const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\n  IN MX 10 ns1\nns1 IN A 192.0.2.1\nmail IN A 192.0.2.25\n";

const DYNAMIC: &str = r#"
[datacenters]
lon = {}
nyc = {}
[pools.web]
endpoints = [
  { id = "lon-1", datacenter = "lon", address = "192.0.2.21" },
  { id = "nyc-1", datacenter = "nyc", address = "198.51.100.31" },
]
[geo_maps.world]
default = ["nyc", "lon"]
[geo_maps.world.map]
"EU/GB" = ["lon", "nyc"]
[names.www]
pool = "web"
policy = "geo"
map = "world"
"#;

fn start(log: &str) -> Server {
    let db = concat!(env!("CARGO_MANIFEST_DIR"), "/geoip/demo-city.mmdb");
    Server::start(
        &[("example.com.zone", ZONE), ("example.com.toml", DYNAMIC)],
        &format!("\n[geoip]\ndatabases = [\"{db}\"]\necs = true\n\n[query_log]\n{log}\n"),
    )
}

/// Sends `count` queries from one socket (so one server thread sees them all) and waits
/// for each answer.
fn ask_from_one_socket(addr: SocketAddr, name: &str, count: usize) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    for i in 0..count {
        let q = build_query(i as u16, &wire_name(name), A, false, None);
        sock.send_to(&q, addr).expect("send");
        let mut buf = [0u8; 1500];
        sock.recv_from(&mut buf).expect("answer");
    }
}

/// The log's lines once it has at least `want` (waits up to 10 s for the writer).
fn lines(path: &std::path::Path, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_query_logged_with_client_ecs_and_answer() {
    let s = start("path = \"queries.log\"\nsample = 1");
    let log = s.dir.path().join("queries.log");
    // London by ECS: the geo answer is lon's address, scope fitted.
    let london: std::net::IpAddr = "81.2.69.0".parse().expect("ip");
    let q = build_query(
        7,
        &wire_name("www.example.com."),
        A,
        true,
        Some((london, 24)),
    );
    udp_raw(s.addr, &q).expect("answer");
    let nx = build_query(8, &wire_name("nope.example.com."), A, false, None);
    udp_raw(s.addr, &nx).expect("answer");
    let mx = query("example.com.", hickory_proto::rr::RecordType::MX, false);
    tcp_query(s.addr, &mx);

    let got = lines(&log, 3);
    assert_eq!(got.len(), 3, "{got:#?}");
    let www = got
        .iter()
        .find(|l| l.contains(" www.example.com. A"))
        .unwrap_or_else(|| panic!("no www line in {got:#?}"));
    for part in [
        "client=127.0.0.1",
        " udp ",
        "id=7 ",
        "ecs=81.2.69.0/24",
        "NOERROR",
        "flags=aa",
        "scope=",
        "www.example.com. 20 IN A 192.0.2.21",
    ] {
        assert!(www.contains(part), "{part:?} missing from {www}");
    }
    let nope = got
        .iter()
        .find(|l| l.contains("nope.example.com."))
        .unwrap_or_else(|| panic!("no NXDOMAIN line in {got:#?}"));
    assert!(
        nope.contains("NXDOMAIN") && nope.contains("id=8 "),
        "{nope}"
    );
    let tcp = got
        .iter()
        .find(|l| l.contains(" tcp "))
        .unwrap_or_else(|| panic!("no TCP line in {got:#?}"));
    assert!(
        tcp.contains("example.com. MX") && tcp.contains("10 ns1.example.com."),
        "{tcp}"
    );
    // Every line starts with an RFC 3339 UTC time.
    for l in &got {
        let t = l.split(' ').next().unwrap_or("");
        assert!(
            t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{l}"
        );
    }
    let (_, m) = http_get(s.api.expect("api"), "/metrics");
    assert!(m.contains("meridian_query_log_lines_total 3"), "{m}");
    assert!(m.contains("meridian_query_log_dropped_total 0"), "{m}");
}

#[test]
fn one_in_n_as_json_and_a_new_file_after_rotation() {
    let s = start("path = \"q.json\"\nsample = 3\nformat = \"json\"");
    let log = s.dir.path().join("q.json");
    ask_from_one_socket(s.addr, "ns1.example.com.", 30);
    let got = lines(&log, 10);
    // Give a wrong count the chance to show: more lines would come within this wait.
    std::thread::sleep(Duration::from_millis(500));
    let got_after = lines(&log, 10);
    assert_eq!(got.len(), 10, "{got:#?}");
    assert_eq!(got_after.len(), 10, "{got_after:#?}");
    for l in &got {
        let v: serde_json::Value = serde_json::from_str(l).expect("a JSON object per line");
        assert_eq!(v["name"], "ns1.example.com.", "{l}");
        assert_eq!(v["qtype"], "A", "{l}");
        assert_eq!(v["rcode"], "NOERROR", "{l}");
        assert_eq!(v["transport"], "udp", "{l}");
        assert_eq!(
            v["answers"][0], "ns1.example.com. 300 IN A 192.0.2.1",
            "{l}"
        );
        // Every third query of the stream: ids 2, 5, 8, ...
        let id = v["id"].as_u64().expect("id");
        assert_eq!(id % 3, 2, "{l}");
    }

    // logrotate without copytruncate: the file is renamed; the server starts a new one.
    let rotated = s.dir.path().join("q.json.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    std::thread::sleep(Duration::from_millis(600));
    ask_from_one_socket(s.addr, "mail.example.com.", 6);
    let fresh = lines(&log, 2);
    assert_eq!(fresh.len(), 2, "{fresh:#?}");
    assert!(
        fresh.iter().all(|l| l.contains("mail.example.com.")),
        "{fresh:#?}"
    );
    assert_eq!(lines(&rotated, 10).len(), 10);
}
