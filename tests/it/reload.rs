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

/// A zone of 20,000 hosts (an A record each, a TXT for every third), with serial `serial`;
/// host `changed` at another address, host `removed` left out, and a name `early` after
/// host 10 when `early` is set. Far from host 7000 (another chunk), a CNAME and an MX lead
/// to it: their answers change with its address though their own records do not.
fn hosts_zone(serial: u32, changed: Option<u32>, removed: Option<u32>, early: bool) -> String {
    let mut z = format!(
        "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    for i in 0..20_000u32 {
        if Some(i) != removed {
            let last = if Some(i) == changed { 250 } else { i % 200 };
            z.push_str(&format!(
                "h{i} IN A 10.{}.{}.{last}\n",
                i / 40_000,
                i / 200 % 200
            ));
            if i % 3 == 0 {
                z.push_str(&format!("h{i} IN TXT \"host {i}\"\n"));
            }
        }
        if i == 12_000 {
            z.push_str("alias IN CNAME h7000\nmail IN MX 10 h7000\n");
        }
        if early && i == 10 {
            z.push_str("early IN A 192.0.2.99\n");
        }
    }
    z
}

fn host_address(i: u32, changed: bool) -> String {
    let last = if changed { 250 } else { i % 200 };
    format!("10.{}.{}.{last}", i / 40_000, i / 200 % 200)
}

#[test]
fn a_reload_of_a_big_zone_answers_every_edit_and_keeps_what_did_not_change() {
    let s = Server::start(&[("big.test.zone", &hosts_zone(1, None, None, false))], "");
    let api = s.api.expect("api address");
    let path = s.dir.path().join("zones/big.test.zone");
    let a = |name: &str| answers(&s.udp(name, RecordType::A));
    assert_eq!(
        a("h7000.big.test."),
        vec![format!(
            "h7000.big.test. 300 IN A {}",
            host_address(7000, false)
        )]
    );
    // A name added early, one address changed, one name removed, the serial bumped.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, hosts_zone(2, Some(7000), Some(15_000), true)).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    let (code, body) = http_post(api, "/reload", "");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("reload status");
    let count = |key: &str| {
        status[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {body}"))
    };
    // About 20 chunks of names: the edits renew a few, the rest are the serving zone's.
    assert!(count("chunks") >= 10, "{body}");
    assert!(count("chunks_kept") >= count("chunks") - 4, "{body}");
    assert!(count("chunks_kept") < count("chunks"), "{body}");
    assert!(
        count("rendered_blocks_kept") >= count("rendered_blocks") - 4,
        "{body}"
    );
    assert!(
        count("rendered_blocks_kept") < count("rendered_blocks"),
        "{body}"
    );
    // Every edit is answered, over UDP and TCP.
    assert_eq!(
        a("early.big.test."),
        vec!["early.big.test. 300 IN A 192.0.2.99"]
    );
    assert_eq!(
        a("h7000.big.test."),
        vec![format!(
            "h7000.big.test. 300 IN A {}",
            host_address(7000, true)
        )]
    );
    let gone = s.udp("h15000.big.test.", RecordType::A);
    assert_eq!(
        gone.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    // Answers that depend on the changed host from unchanged names (rendered again, not kept).
    let alias = a("alias.big.test.");
    assert_eq!(alias.len(), 2, "{alias:?}");
    assert!(alias[1].ends_with(&host_address(7000, true)), "{alias:?}");
    let mx = s.udp("mail.big.test.", RecordType::MX);
    let glue: Vec<String> = mx.additionals.iter().map(|r| r.to_string()).collect();
    assert!(
        glue.iter().any(|g| g.contains(&host_address(7000, true))),
        "{glue:?}"
    );
    let soa = answers(&s.tcp("big.test.", RecordType::SOA)).join(" ");
    assert!(soa.contains(" 2 3600 600 86400 30"), "{soa}");
    // And the names that did not change answer as before, kept or not.
    for i in (0..20_000u32)
        .step_by(97)
        .filter(|&i| i != 7000 && i != 15_000)
    {
        let name = format!("h{i}.big.test.");
        assert_eq!(
            a(&name),
            vec![format!("{name} 300 IN A {}", host_address(i, false))]
        );
    }
    let txt = answers(&s.udp("h9999.big.test.", RecordType::TXT));
    assert_eq!(txt, vec!["h9999.big.test. 300 IN TXT host 9999"]);
    // Back to the first content: the edits are undone.
    std::fs::write(&tmp, hosts_zone(3, None, None, false)).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    let (code, body) = http_post(api, "/reload", "");
    assert_eq!(code, 200, "{body}");
    let early = s.udp("early.big.test.", RecordType::A);
    assert_eq!(
        early.metadata.response_code,
        hickory_proto::op::ResponseCode::NXDomain
    );
    assert_eq!(
        a("h7000.big.test."),
        vec![format!(
            "h7000.big.test. 300 IN A {}",
            host_address(7000, false)
        )]
    );
    assert_eq!(
        a("h15000.big.test."),
        vec![format!(
            "h15000.big.test. 300 IN A {}",
            host_address(15_000, false)
        )]
    );
}
