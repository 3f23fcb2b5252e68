//! Reload under load: queries keep flowing while the zone is rewritten and reloaded many
//! times; every query gets an answer, and every answer is the old data or the new, never a mix.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;
use hickory_proto::rr::RecordType;

fn zone(version: u32, a: &str, b: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 hostmaster {version} 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A {a}\n    IN A {b}\n"
    )
}

#[test]
fn reloads_under_a_steady_query_stream_lose_nothing_and_never_mix() {
    let s = Server::start(
        &[("example.com.zone", &zone(1, "192.0.2.11", "192.0.2.12"))],
        "",
    );
    let api = s.api.expect("api address");
    let path = s.dir.path().join("zones/example.com.zone");
    let addr = s.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let client = std::thread::spawn(move || {
        let mut sent = 0u32;
        let mut answered = 0u32;
        let mut versions = [0u32; 2];
        let mut mixed = Vec::new();
        while !stop2.load(Ordering::Relaxed) || sent < 2000 {
            if sent >= 20_000 {
                break;
            }
            sent += 1;
            let m = udp_query(addr, &query("www.example.com.", RecordType::A, true));
            answered += 1;
            let got = answers(&m).join(" ");
            if got.contains("192.0.2.11") && got.contains("192.0.2.12") {
                versions[0] += 1;
            } else if got.contains("198.51.100.21") && got.contains("198.51.100.22") {
                versions[1] += 1;
            } else {
                mixed.push(got);
            }
        }
        (sent, answered, versions, mixed)
    });

    let mut ok = 0;
    for i in 0..40u32 {
        let text = if i % 2 == 0 {
            zone(i + 2, "198.51.100.21", "198.51.100.22")
        } else {
            zone(i + 2, "192.0.2.11", "192.0.2.12")
        };
        // Editors and git replace files by rename: do the same.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        let (code, body) = http_post(api, "/reload", "");
        assert_eq!(code, 200, "{body}");
        ok += 1;
        if i == 20 {
            // A broken zone in the middle: refused, old data keeps serving.
            std::fs::write(&path, "$ORIGIN example.com.\n@ IN SOA broken\n").expect("write");
            let (code, body) = http_post(api, "/reload", "");
            assert_eq!(code, 422, "{body}");
            assert!(body.contains("example.com.zone:2"), "{body}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, answered, versions, mixed) = client.join().expect("client");
    eprintln!(
        "reload under load: {ok} reloads, {sent} queries, {answered} answered, versions {versions:?}"
    );
    assert_eq!(sent, answered, "every query answered");
    assert!(mixed.is_empty(), "mixed answers: {mixed:?}");
    assert!(
        versions[0] > 0 && versions[1] > 0,
        "both versions served: {versions:?}"
    );
    // The last good version is what is served now (i = 39 wrote the 192.0.2.x version).
    let m = s.udp("www.example.com.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec![
            "www.example.com. 60 IN A 192.0.2.11",
            "www.example.com. 60 IN A 192.0.2.12"
        ]
    );
}

#[test]
fn sighup_reload_with_errors_keeps_serving() {
    let mut s = Server::start(
        &[("example.com.zone", &zone(1, "192.0.2.11", "192.0.2.12"))],
        "",
    );
    let path = s.dir.path().join("zones/example.com.zone");
    std::fs::write(&path, "$ORIGIN example.com.\nwww IN A 999.1.1.1\n").expect("write");
    let pid = s.pid();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(s.is_running());
    let m = s.udp("www.example.com.", RecordType::A);
    assert_eq!(m.answers.len(), 2, "old data still served");
}

#[test]
fn sigterm_stops_cleanly_with_exit_code_zero() {
    let mut s = Server::start(
        &[("example.com.zone", &zone(1, "192.0.2.11", "192.0.2.12"))],
        "",
    );
    let pid = s.pid();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = s.wait_exit();
    assert_eq!(code, Some(0));
}

#[test]
fn health_state_and_overrides_survive_a_reload() {
    let dynamic = r#"
[datacenters]
a = { up_share = 0.0 }
[pools.p]
endpoints = [
  { id = "one", datacenter = "a", address = "192.0.2.1" },
  { id = "two", datacenter = "a", address = "192.0.2.2" },
  { id = "three", datacenter = "a", address = "192.0.2.3" },
]
check = { type = "file", file = "state-{id}", interval = 0.1, timeout = 0.05, rise = 1, fall = 1 }
[names.www]
pool = "p"
policy = "failover"
order = ["a"]
"#;
    let zone_text = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.53\n";
    let s = Server::start(
        &[
            ("example.com.zone", zone_text),
            ("example.com.toml", dynamic),
        ],
        "",
    );
    let zones = s.dir.path().join("zones");
    std::fs::write(zones.join("state-one"), "up").expect("state");
    std::fs::write(zones.join("state-two"), "down").expect("state");
    std::fs::write(zones.join("state-three"), "up").expect("state");
    let api = s.api.expect("api");
    let wanted = vec![
        "www.example.com. 20 IN A 192.0.2.1".to_string(),
        "www.example.com. 20 IN A 192.0.2.3".to_string(),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while answers(&s.udp("www.example.com.", RecordType::A)) != wanted {
        assert!(std::time::Instant::now() < deadline, "two never went down");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Drain "three" by override, then reload with the endpoints in another order.
    set_override(
        &s,
        r#"{"endpoint": "example.com/p/three", "state": "drain"}"#,
    );
    let reordered = dynamic
        .replace(
            "  { id = \"one\", datacenter = \"a\", address = \"192.0.2.1\" },\n",
            "",
        )
        .replace(
            "]\ncheck",
            "  { id = \"one\", datacenter = \"a\", address = \"192.0.2.1\" },\n]\ncheck",
        );
    std::fs::write(zones.join("example.com.toml"), reordered).expect("rewrite");
    let (code, body) = http_post(api, "/reload", "");
    assert_eq!(code, 200, "{body}");
    // From the first query after the reload on: two is still down, three still drained.
    for _ in 0..50 {
        assert_eq!(
            answers(&s.udp("www.example.com.", RecordType::A)),
            vec!["www.example.com. 20 IN A 192.0.2.1".to_string()]
        );
    }
}

#[test]
fn per_zone_and_per_name_counters_run_on_across_a_reload() {
    let dynamic = r#"
[datacenters]
a = {}
b = {}
[pools.p]
endpoints = [
  { id = "one", datacenter = "a", address = "192.0.2.1" },
  { id = "two", datacenter = "b", address = "192.0.2.2" },
]
[names.geo]
pool = "p"
policy = "failover"
order = ["a", "b"]
"#;
    let s = Server::start(
        &[
            ("example.com.zone", &zone(1, "192.0.2.11", "192.0.2.12")),
            ("example.com.toml", dynamic),
        ],
        "",
    );
    let api = s.api.expect("api");
    let zone_metric = "meridian_zone_queries_total{zone=\"example.com.\"}";
    let name_metric = "meridian_dynamic_answers_total{name=\"geo.example.com.\",datacenter=\"a\"}";
    let zone_before = metric(api, zone_metric);
    let name_before = metric(api, name_metric);
    for _ in 0..30 {
        assert_eq!(
            answers(&s.udp("geo.example.com.", RecordType::A)),
            vec!["geo.example.com. 20 IN A 192.0.2.1".to_string()]
        );
    }
    for _ in 0..20 {
        s.udp("ns1.example.com.", RecordType::A);
    }
    assert_eq!(metric(api, zone_metric), zone_before + 50);
    assert_eq!(metric(api, name_metric), name_before + 30);

    // New content and serial, the same zone and name: the totals carry on.
    let zones = s.dir.path().join("zones");
    let tmp = zones.join("example.com.zone.tmp");
    std::fs::write(&tmp, zone(2, "192.0.2.21", "192.0.2.22")).expect("write");
    std::fs::rename(&tmp, zones.join("example.com.zone")).expect("rename");
    let (code, body) = http_post(api, "/reload", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(metric(api, zone_metric), zone_before + 50);
    assert_eq!(metric(api, name_metric), name_before + 30);
    for _ in 0..10 {
        s.udp("geo.example.com.", RecordType::A);
    }
    assert_eq!(metric(api, zone_metric), zone_before + 60);
    assert_eq!(metric(api, name_metric), name_before + 40);
}
