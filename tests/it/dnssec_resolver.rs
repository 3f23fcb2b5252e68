//! A signed zone with a geo-steered name behind a real validating resolver (Unbound with
//! `subnetcache validator iterator`, the zone's key as trust anchor, 0x20 case randomizing
//! on): static answers of every kind and dynamic answers for clients in two networks (by
//! ECS) come back with AD; a datacenter taken down moves the answer while every answer on
//! the way validates; a wrong anchor and an expired window give SERVFAIL.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meridian::geo::writer::{CityRow, city_mmdb};

use crate::common::{DaemonGuard, Server, require_tool, set_override, stable_port, tool_path};

const ZONE: &str = "\
$ORIGIN geo.test.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 1209600 30
         IN NS  ns1
ns1      IN A   192.0.2.1
static   IN A   192.0.2.5
alias    IN CNAME static
*.wild   IN TXT \"any\"
deep.ent IN A   192.0.2.6
";

const DYNAMIC: &str = r#"
[datacenters]
fra = {}
nyc = {}
[pools.web]
endpoints = [
  { id = "f1", datacenter = "fra", address = "192.0.2.10" },
  { id = "f2", datacenter = "fra", address = "192.0.2.11" },
  { id = "n1", datacenter = "nyc", address = "192.0.2.20" },
]
[geo_maps.world]
default = ["nyc", "fra"]
[geo_maps.world.map]
EU = ["fra", "nyc"]
NA = ["nyc", "fra"]
[names.www]
pool = "web"
policy = "geo"
map = "world"
ttl = 1
"#;

fn fixture_db() -> Vec<u8> {
    let row = |net: &str| CityRow::new(net.parse().expect("network"));
    let rows = [
        row("81.2.69.0/24").continent("EU").country("DE"),
        row("8.8.8.0/24").continent("NA").country("US"),
    ];
    city_mmdb("GeoIP2-City", &rows).expect("fixture db")
}

/// An Unbound on a free port in `dir`, validating `geo.test` against `anchor` (a DNSKEY
/// file), stub to meridian at `upstream`; `extra` lines go in its server section.
fn unbound(
    dir: &Path,
    upstream: std::net::SocketAddr,
    anchor: &Path,
    extra: &str,
) -> (DaemonGuard, u16) {
    let port = stable_port();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  port: {port}\n  do-not-query-localhost: no\n  \
         module-config: \"subnetcache validator iterator\"\n  trust-anchor-file: \"{}\"\n  \
         local-zone: \"test.\" nodefault\n  send-client-subnet: 127.0.0.1\n  \
         client-subnet-always-forward: yes\n  max-client-subnet-ipv4: 24\n  \
         use-caps-for-id: yes\n  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  \
         pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  val-log-level: 2\n  \
         access-control: 127.0.0.0/8 allow\n  auto-trust-anchor-file: \"\"\n{extra}\n\
         stub-zone:\n  name: \"geo.test\"\n  stub-addr: {}@{}\n",
        anchor.display(),
        dir.display(),
        upstream.ip(),
        upstream.port()
    );
    let path = dir.join(format!("unbound-{port}.conf"));
    std::fs::write(&path, conf).expect("unbound.conf");
    let mut guard = DaemonGuard::spawn(
        Command::new(tool_path("unbound"))
            .args(["-d", "-c"])
            .arg(&path),
        dir,
        &dir.join(format!("unbound-{port}.log")),
    );
    // Up when it answers at all (bounded), and still running: an answer from a process
    // that took the port first must not pass for this Unbound's.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && matches!(guard.try_wait(), Ok(None)) {
        if dig(port, "ns1.geo.test", "A", None).0.contains("status:")
            && matches!(guard.try_wait(), Ok(None))
        {
            return (guard, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "unbound did not start: {}",
        std::fs::read_to_string(dir.join(format!("unbound-{port}.log"))).unwrap_or_default()
    );
}

/// Waits (at most 20 s) until the server itself publishes the key `stem` alone and signs
/// with it alone: the roll's last event (the old key's Delete time) has been acted on. A
/// loaded machine may act on it a little late; a server that does not act on it fails,
/// with its DNSKEY answer, its last reload and its DNSSEC metrics.
fn wait_for_signer(server: &Server, stem: &str) {
    let tag: u16 = stem
        .rsplit('+')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("a key file stem ends in its tag");
    let tag = tag.to_string();
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        out = dig(server.addr.port(), "geo.test", "DNSKEY", None).0;
        let records: Vec<Vec<&str>> = out
            .lines()
            .filter(|l| !l.starts_with(';'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        let keys = records
            .iter()
            .filter(|r| r.get(3) == Some(&"DNSKEY"))
            .count();
        let signers: Vec<&str> = records
            .iter()
            .filter(|r| r.get(3) == Some(&"RRSIG"))
            .filter_map(|r| r.get(10).copied())
            .collect();
        if keys == 1 && signers == [tag.as_str()] {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let api = |path: &str| server.api.map(|a| crate::common::http_get(a, path).1);
    let metrics: Vec<String> = api("/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("dnssec") || l.contains("reload"))
        .map(String::from)
        .collect();
    panic!(
        "the server did not finish the roll to key {tag}:\n{out}\nlast reload: {:?}\n{}",
        api("/reload"),
        metrics.join("\n")
    );
}

/// dig through the resolver: (whole output, status, has AD, answer addresses).
fn dig(
    port: u16,
    name: &str,
    rtype: &str,
    subnet: Option<&str>,
) -> (String, String, bool, Vec<String>) {
    let mut cmd = Command::new(tool_path("dig"));
    cmd.args([
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+dnssec",
        "+time=3",
        "+tries=1",
    ]);
    if let Some(s) = subnet {
        cmd.arg(format!("+subnet={s}"));
    }
    let out = cmd.args([name, rtype]).output().expect("dig");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("")
        .to_string();
    let ad = text
        .lines()
        .find(|l| l.starts_with(";; flags:"))
        .is_some_and(|l| {
            l.split(';')
                .nth(2)
                .is_some_and(|f| f.split_whitespace().any(|w| w == "ad"))
        });
    let addrs = text
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains("\tA\t"))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (text, status, ad, addrs)
}

#[test]
fn unbound_validates_static_and_steered_answers_through_a_failover() {
    if !require_tool("unbound", "unbound")
        || !require_tool("dig", "bind9-dnsutils")
        || !require_tool("dnssec-keygen", "bind9-utils")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("zones")).expect("zones");
    std::fs::write(d.join("zones/geo.test.zone"), ZONE).expect("zone");
    std::fs::write(d.join("zones/geo.test.toml"), DYNAMIC).expect("toml");
    std::fs::write(d.join("geo.mmdb"), fixture_db()).expect("db");
    std::fs::write(
        d.join("meridian.toml"),
        "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n[geoip]\n\
         databases = [\"geo.mmdb\"]\n[dnssec]\nkey_dir = \"keys\"\nzones = [\"geo.test\"]\n",
    )
    .expect("config");
    let keygen = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["dnssec", "keygen", "geo.test", "--config"])
        .arg(d.join("meridian.toml"))
        .output()
        .expect("keygen");
    let stem = String::from_utf8_lossy(&keygen.stdout)
        .split_whitespace()
        .next()
        .expect("stem")
        .to_string();
    let anchor = d.join(format!("{stem}.key"));
    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        d.join("meridian.toml"),
    );

    let (_unbound, port) = unbound(d, server.addr, &anchor, "");
    for (name, rtype, status) in [
        ("static.geo.test", "A", "NOERROR"),
        ("STATIC.Geo.Test", "A", "NOERROR"),
        ("alias.geo.test", "A", "NOERROR"),
        ("x.wild.geo.test", "TXT", "NOERROR"),
        ("geo.test", "DNSKEY", "NOERROR"),
        ("static.geo.test", "MX", "NOERROR"),
        ("ent.geo.test", "A", "NOERROR"),
        ("nope.geo.test", "A", "NXDOMAIN"),
        ("www.geo.test", "AAAA", "NOERROR"),
    ] {
        let (out, got, ad, _) = dig(port, name, rtype, None);
        assert_eq!(got, status, "{name} {rtype}:\n{out}");
        assert!(ad, "{name} {rtype}: no AD:\n{out}");
    }
    // Steered by ECS, and validated, in two networks.
    let (out, status, ad, eu) = dig(port, "www.geo.test", "A", Some("81.2.69.0/24"));
    assert!(status == "NOERROR" && ad, "{out}");
    let mut eu_sorted = eu.clone();
    eu_sorted.sort();
    assert_eq!(eu_sorted, ["192.0.2.10", "192.0.2.11"], "{out}");
    let (out, status, ad, na) = dig(port, "www.geo.test", "A", Some("8.8.8.0/24"));
    assert!(status == "NOERROR" && ad, "{out}");
    assert_eq!(na, ["192.0.2.20"], "{out}");

    // fra's first endpoint down, then all of fra: the European answer shrinks, then moves to
    // nyc, and every answer on the way validates (TTL 1 s: Unbound asks again).
    set_override(&server, r#"{"endpoint":"geo.test/web/f1","state":"down"}"#);
    let mut seen_one = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !seen_one {
        let (out, status, ad, eu) = dig(port, "www.geo.test", "A", Some("81.2.69.0/24"));
        assert!(
            status == "NOERROR" && ad,
            "a failover answer did not validate:\n{out}"
        );
        seen_one = eu == ["192.0.2.11"];
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen_one,
        "the answer never lost the endpoint that went down"
    );
    set_override(&server, r#"{"datacenter":"geo.test/fra","state":"down"}"#);
    let mut moved = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !moved {
        let (out, status, ad, eu) = dig(port, "www.geo.test", "A", Some("81.2.69.0/24"));
        assert!(
            status == "NOERROR" && ad,
            "a failover answer did not validate:\n{out}"
        );
        moved = eu == ["192.0.2.20"];
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(moved, "Europe never moved to nyc");

    // A wrong anchor: SERVFAIL.
    let other = tempfile::tempdir().expect("dir");
    let wrong_stem = crate::dnssec::bind_keygen(other.path(), "geo.test", &["-f", "KSK"]);
    let wrong = other.path().join(format!("{wrong_stem}.key"));
    let (_bad, bad_port) = unbound(d, server.addr, &wrong, "");
    let (out, status, _, _) = dig(bad_port, "static.geo.test", "A", None);
    assert_eq!(status, "SERVFAIL", "validated with a wrong anchor:\n{out}");

    // Past the signatures' expiry (14 days): SERVFAIL.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let later = meridian::dnssec::key::format_time(now + 20 * 86_400);
    let (_late, late_port) = unbound(
        d,
        server.addr,
        &anchor,
        &format!("  val-override-date: \"{later}\""),
    );
    let (out, status, _, _) = dig(late_port, "static.geo.test", "A", None);
    assert_eq!(status, "SERVFAIL", "expired signatures validated:\n{out}");
}

/// A CSK roll by double DS (RFC 7583 §3.3.2), driven by BIND key timings that the server
/// acts on by itself, with Unbound anchored on the parent's DS records: the old key signs,
/// the new one is published, takes over at its activation time while the old one retires
/// and then leaves the DNSKEY RRset. Answers validate at every step with the DS set the
/// registrar has at that step, and a resolver that never got the new DS fails once the
/// old key stops signing (the test can fail).
#[test]
fn a_csk_roll_by_key_timings_never_fails_validation() {
    if !require_tool("unbound", "unbound")
        || !require_tool("dig", "bind9-dnsutils")
        || !require_tool("dnssec-keygen", "bind9-utils")
        || !require_tool("dnssec-dsfromkey", "bind9-utils")
        || !require_tool("dnssec-settime", "bind9-utils")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("zones")).expect("zones");
    std::fs::create_dir_all(d.join("keys")).expect("keys");
    std::fs::write(d.join("zones/geo.test.zone"), ZONE).expect("zone");
    std::fs::write(
        d.join("meridian.toml"),
        "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\n[dnssec]\n\
         key_dir = \"keys\"\nzones = [\"geo.test\"]\ndnskey_ttl = 5\n",
    )
    .expect("config");
    let keygen = |args: &[&str]| {
        let mut all = vec!["-f", "KSK"];
        all.extend_from_slice(args);
        crate::dnssec::bind_keygen(&d.join("keys"), "geo.test", &all)
    };
    // The old key signs from the start, with no end yet.
    let old = keygen(&[]);
    let ds = |stem: &str| -> String {
        let out = Command::new(tool_path("dnssec-dsfromkey"))
            .arg("-2")
            .arg(d.join("keys").join(format!("{stem}.key")))
            .output()
            .expect("dnssec-dsfromkey");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let anchors = |name: &str, stems: &[&str]| -> std::path::PathBuf {
        let path = d.join(name);
        let text: Vec<String> = stems.iter().map(|s| ds(s)).collect();
        std::fs::write(&path, text.join("\n") + "\n").expect("anchor");
        path
    };
    let server = Server::start_with_config(
        tempfile::tempdir().expect("unused"),
        d.join("meridian.toml"),
    );
    let unbound_log = |port: u16| {
        std::fs::read_to_string(d.join(format!("unbound-{port}.log"))).unwrap_or_default()
    };
    // Every answer fetched and validated afresh: no cache beyond a second.
    let fresh = "  cache-max-ttl: 1\n  aggressive-nsec: no";
    // The registrar has the old DS only.
    let (_only_old, only_old) = unbound(d, server.addr, &anchors("ds-old", &[&old]), fresh);
    let (out, status, ad, _) = dig(only_old, "static.geo.test", "A", None);
    assert!(
        status == "NOERROR" && ad,
        "{out}\n{}",
        unbound_log(only_old)
    );
    // The roll is set in motion by the key files alone (the server watches key_dir): the new
    // key is published now and signs in 8 s, when the old one retires; the old one leaves
    // the DNSKEY RRset in 16 s. The registrar has both DS records before the new key signs.
    let new = keygen(&["-P", "now", "-A", "now+8"]);
    let (ok, out) = crate::dnssec::run(
        Command::new(tool_path("dnssec-settime"))
            .args(["-I", "now+8", "-D", "now+16", &old])
            .current_dir(d.join("keys")),
    );
    assert!(ok, "dnssec-settime: {out}");
    let start = Instant::now();
    let (_both, both) = unbound(d, server.addr, &anchors("ds-both", &[&old, &new]), fresh);
    let mut checked = 0;
    while start.elapsed() < Duration::from_secs(19) {
        let n = checked;
        for (name, rtype) in [
            (format!("x{n}.wild.geo.test"), "TXT"),
            (format!("nope{n}.geo.test"), "A"),
            ("static.geo.test".to_string(), "A"),
        ] {
            let (out, status, ad, _) = dig(both, &name, rtype, None);
            assert!(
                ad && (status == "NOERROR" || status == "NXDOMAIN"),
                "validation failed {:?} into the roll:\n{out}\n{}",
                start.elapsed(),
                unbound_log(both)
            );
            checked += 1;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(checked > 20, "too few checks: {checked}");
    wait_for_signer(&server, &new);
    // The old key is gone: the registrar keeps the new DS only.
    let (_only_new, only_new) = unbound(d, server.addr, &anchors("ds-new", &[&new]), fresh);
    let (out, status, ad, _) = dig(only_new, "static.geo.test", "A", None);
    assert!(status == "NOERROR" && ad, "{out}");
    let keys = dig(only_new, "geo.test", "DNSKEY", None).0;
    assert_eq!(
        keys.lines().filter(|l| l.contains("\tDNSKEY\t")).count(),
        1,
        "{keys}"
    );
    // A resolver that never got the new DS fails now (its cache expired: TTLs of 5 s).
    let (out, status, _, _) = dig(only_old, "www2.geo.test", "A", None);
    assert_eq!(
        status, "SERVFAIL",
        "the old DS alone still validates:\n{out}"
    );
}
