//! `meridian check` on health checks: the worst-case failover time, and a CA file that
//! cannot be used.

use crate::common::{check_example_com, zones};

#[test]
fn check_command_prints_worst_case_failover() {
    let (ok, text) = check_example_com(
        zones::HEALTH,
        r#"
[datacenters]
dc = {}

[pools.web]
check = { type = "tcp", port = 80, interval = 0.2, timeout = 0.1, fall = 2 }
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.91" }]

[pools.plain]
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.92" }]

[names.www]
pool = "web"
policy = "failover"
order = ["dc"]
ttl = 20

[names.plain]
pool = "plain"
policy = "failover"
order = ["dc"]
ttl = 30
"#,
    );
    assert!(ok, "{text}");
    println!("{text}");
    let www = text
        .lines()
        .find(|l| l.contains("www.example.com"))
        .unwrap_or_else(|| panic!("no line for www.example.com: {text}"));
    // 2 × 0.2 s + 0.1 s detection, plus 20 s of caching.
    assert!(www.contains("worst-case failover 20.5 s"), "{www}");
    let plain = text
        .lines()
        .find(|l| l.contains("plain.example.com"))
        .unwrap_or_else(|| panic!("no line for plain.example.com: {text}"));
    assert!(plain.contains("no health check"), "{plain}");
}

#[test]
fn unreadable_ca_file_is_a_configuration_error() {
    // Before: the config loaded, the check never started (logged once), and the endpoint
    // stayed up forever with no probe at all.
    let dynamic = r#"
[datacenters]
dc = {}

[pools.web]
check = { type = "https", ca_file = "no-such-ca.pem" }
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.93" }]

[names.www]
pool = "web"
policy = "failover"
order = ["dc"]
"#;
    let (ok, text) = check_example_com(zones::HEALTH, dynamic);
    assert!(!ok, "{text}");
    assert!(text.contains("no-such-ca.pem"), "{text}");
    let not_pem = dynamic.replace("no-such-ca.pem", "example.com.zone");
    let (ok, text) = check_example_com(zones::HEALTH, &not_pem);
    assert!(!ok, "a file without certificates: {text}");
    assert!(text.contains("ca_file"), "{text}");
}
