//! Zone transfer out: AXFR/IXFR with `dig` (access by address and by TSIG, a zone that
//! needs many messages), config validation, and Knot DNS as a real secondary that follows
//! meridian through NOTIFY.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    DaemonGuard, Server, answers, knot_conf, metric, query, require_tool, stable_port, tcp_query,
    tool_path, udp_query,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const SECRET: &str = "bWVyaWRpYW4tdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";
const WRONG: &str = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=";

/// A zone in the exact presentation `dig` prints (one record a line, absolute names), so
/// the zone file's lines are the expected transfer. `extra` generated A records.
fn zone(serial: u32, www: &str, extra: usize) -> String {
    let mut z = format!(
        "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. {serial} 3600 600 1209600 60\n\
         example.com. 3600 IN NS ns1.example.com.\n\
         example.com. 3600 IN NS ns2.example.com.\n\
         example.com. 300 IN MX 10 mail.example.com.\n\
         example.com. 300 IN TXT \"v=spf1 -all\"\n\
         ns1.example.com. 3600 IN A 127.0.0.1\n\
         ns2.example.com. 3600 IN A 127.0.0.2\n\
         mail.example.com. 300 IN A 192.0.2.25\n\
         www.example.com. 300 IN A {www}\n\
         www.example.com. 300 IN AAAA 2001:db8::80\n\
         alias.example.com. 300 IN CNAME www.example.com.\n\
         _sip._tcp.example.com. 300 IN SRV 10 60 5060 sip.example.com.\n\
         sip.example.com. 300 IN A 192.0.2.60\n"
    );
    for i in 0..extra {
        z.push_str(&format!(
            "host{i}.bulk.example.com. 300 IN A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    z
}

/// Records as normalized lines: fields joined by one space, owner lowercase.
fn records(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.contains(" TSIG "))
        .collect()
}

fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=5", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks a transfer printed by dig against the zone text: SOA first and last, every
/// record of the zone exactly once.
fn assert_whole_zone(out: &str, zone_text: &str) {
    let got = records(out);
    assert!(got.len() >= 2, "no transfer:\n{out}");
    let soa = &records(zone_text)[0];
    assert_eq!(&got[0], soa, "first record is the SOA");
    assert_eq!(got.last(), Some(soa), "last record is the SOA");
    let body: Vec<&String> = got[1..got.len() - 1].iter().collect();
    let set: BTreeSet<&String> = body.iter().copied().collect();
    assert_eq!(set.len(), body.len(), "a record was sent twice");
    let want: BTreeSet<String> = records(zone_text).into_iter().skip(1).collect();
    let got: BTreeSet<String> = set.into_iter().cloned().collect();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
}

/// meridian serving `text` as example.com, with `config` appended to its configuration.
fn serve(text: &str, config: &str) -> Server {
    Server::start(&[("example.com.zone", text)], config)
}

fn transfer_config(allow: &str, tsig: bool, notify: Option<u16>) -> String {
    let mut c = format!(
        "[tsig_keys]\nxfr-key = {{ algorithm = \"hmac-sha256\", secret = \"{SECRET}\" }}\n\
         [transfer.\"example.com.\"]\nallow = [{allow}]\n"
    );
    if tsig {
        c.push_str("tsig = \"xfr-key\"\n");
    }
    if let Some(port) = notify {
        c.push_str(&format!("notify = [\"127.0.0.1:{port}\"]\n"));
    }
    c
}

#[test]
fn axfr_from_an_allowed_address_gets_the_whole_zone() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let text = zone(7, "192.0.2.80", 0);
    let server = serve(
        &text,
        &transfer_config("\"127.0.0.0/8\", \"::1/128\"", false, None),
    );
    let out = dig(server.addr, &["example.com", "AXFR"]);
    assert_whole_zone(&out, &text);

    // IXFR from an older serial: the whole zone, AXFR style (RFC 1995 §4).
    let out = dig(server.addr, &["example.com", "IXFR=5", "+tcp"]);
    assert_whole_zone(&out, &text);
    // IXFR from the current serial: the SOA alone.
    let out = dig(server.addr, &["example.com", "IXFR=7", "+tcp"]);
    assert_eq!(records(&out), vec![records(&text)[0].clone()], "{out}");

    // Normal queries over TCP on the same server still work, and so does a child name.
    let r = server.tcp("www.example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    // AXFR over UDP is not a thing (RFC 5936 §4.2): NOTIMP as Knot and NSD answer, even
    // from an allowed address.
    let r = server.udp("example.com.", RecordType::AXFR);
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert!(r.answers.is_empty());
    // Not a zone apex: refused.
    let r = tcp_query(
        server.addr,
        &query("www.example.com.", RecordType::AXFR, false),
    );
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn axfr_is_refused_unless_configured_and_allowed() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let text = zone(1, "192.0.2.80", 0);
    // No [transfer] at all: off by default.
    let server = serve(&text, "");
    let r = tcp_query(server.addr, &query("example.com.", RecordType::AXFR, false));
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(r.answers.is_empty());
    let out = dig(server.addr, &["example.com", "AXFR"]);
    assert!(out.contains("Transfer failed"), "{out}");
    drop(server);

    // Configured, but for other networks.
    let server = serve(
        &text,
        &transfer_config("\"192.0.2.0/24\", \"2001:db8::/32\"", false, None),
    );
    let r = tcp_query(server.addr, &query("example.com.", RecordType::AXFR, false));
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(r.answers.is_empty());
    let r = tcp_query(server.addr, &query("example.com.", RecordType::IXFR, false));
    assert_ne!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
}

#[test]
fn axfr_with_tsig_works_with_the_key_and_fails_without_it() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let text = zone(3, "192.0.2.80", 0);
    // Any address, but only with the key.
    let server = serve(&text, &transfer_config("", true, None));
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let out = dig(server.addr, &["-y", &key, "example.com", "AXFR"]);
    assert_whole_zone(&out, &text);
    assert!(!out.contains("Transfer failed"), "{out}");
    assert!(out.contains("TSIG"), "responses are signed:\n{out}");

    // The wrong secret: BADSIG, no records.
    let wrong = format!("hmac-sha256:xfr-key:{WRONG}");
    let out = dig(server.addr, &["-y", &wrong, "example.com", "AXFR"]);
    assert!(records(&out).is_empty(), "{out}");
    assert!(
        out.contains("BADSIG") || out.contains("Transfer failed"),
        "{out}"
    );
    // A key we do not know: BADKEY.
    let other = format!("hmac-sha256:other-key:{SECRET}");
    let out = dig(server.addr, &["-y", &other, "example.com", "AXFR"]);
    assert!(records(&out).is_empty(), "{out}");
    assert!(
        out.contains("BADKEY") || out.contains("Transfer failed"),
        "{out}"
    );
    // No key at all: refused.
    let out = dig(server.addr, &["example.com", "AXFR"]);
    assert!(records(&out).is_empty(), "{out}");
    assert!(out.contains("Transfer failed"), "{out}");

    // A signed normal query gets a signed answer (secondaries sign their SOA queries),
    // over UDP and TCP.
    for tcp in ["+notcp", "+tcp"] {
        let out = dig(server.addr, &["-y", &key, tcp, "example.com", "SOA"]);
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(
            out.contains("TSIG") && !out.contains("tsig verify failure"),
            "{out}"
        );
        assert_eq!(records(&out), vec![records(&text)[0].clone()], "{out}");
    }
    let out = dig(server.addr, &["-y", &wrong, "example.com", "SOA"]);
    assert!(out.contains("NOTAUTH") || out.contains("BADSIG"), "{out}");
}

/// A signed query is one query in the metrics (the signed path answers through the same
/// code as an unsigned one, which must not count the transport a second time).
#[test]
fn a_signed_query_counts_once() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let text = zone(3, "192.0.2.80", 0);
    let server = serve(&text, &transfer_config("", true, None));
    let api = server.api.expect("api");
    let udp = "meridian_queries_total{transport=\"udp\"}";
    let noerror = "meridian_responses_total{rcode=\"NOERROR\"}";
    let (udp0, ok0) = (metric(api, udp), metric(api, noerror));
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let out = dig(server.addr, &["-y", &key, "+notcp", "example.com", "SOA"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("TSIG"),
        "{out}"
    );
    assert_eq!(metric(api, udp), udp0 + 1, "one signed query, one query");
    assert_eq!(metric(api, noerror), ok0 + 1);
}

#[test]
fn a_large_zone_goes_out_in_several_messages() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let text = zone(11, "192.0.2.80", 5000);
    let server = serve(&text, &transfer_config("\"127.0.0.1/32\"", true, None));
    let key = format!("hmac-sha256:xfr-key:{SECRET}");
    let out = dig(server.addr, &["-y", &key, "example.com", "AXFR"]);
    assert_whole_zone(&out, &text);
    // ";; XFR size: 5014 records (messages 9, bytes 129000)"
    let size = out
        .lines()
        .find(|l| l.starts_with(";; XFR size"))
        .unwrap_or_else(|| panic!("no XFR size line:\n{out}"));
    let messages: usize = size
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{size}"));
    assert!(messages > 1, "{size}");
    assert!(size.contains(&format!("{} records", 5013 + 1)), "{size}");
    assert!(
        !out.contains("tsig verify failure"),
        "every message verifies"
    );
}

#[test]
fn bad_transfer_config_is_reported_with_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(
        dir.path().join("zones/example.com.zone"),
        zone(1, "192.0.2.80", 0),
    )
    .expect("zone");
    let config = dir.path().join("meridian.toml");
    std::fs::write(
        &config,
        "zones_dir = \"zones\"\n\
         [tsig_keys]\n\
         good = { algorithm = \"hmac-sha256\", secret = \"c2VjcmV0\" }\n\
         bad64 = { algorithm = \"hmac-sha256\", secret = \"not base64!\" }\n\
         md5 = { algorithm = \"hmac-md5\", secret = \"c2VjcmV0\" }\n\
         [transfer.\"example.com.\"]\n\
         allow = [\"127.0.0.1/33\"]\n\
         tsig = \"missing\"\n\
         notify = [\"nowhere\"]\n\
         [transfer.\"example.org.\"]\n\
         allow = [\"127.0.0.1\"]\n\
         [transfer.\"example.com\"]\n",
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    let name = config.display().to_string();
    for (line, what) in [
        (4, "not valid base64"),
        (5, "is not supported"),
        (7, "127.0.0.1/33"),
        (8, "no key \"missing\""),
        (9, "\"nowhere\""),
        (10, "example.org. is not served"),
    ] {
        let want = format!("{name}:{line}:");
        assert!(
            text.lines().any(|l| l.contains(&want) && l.contains(what)),
            "expected {want} ... {what} in:\n{text}"
        );
    }
    assert!(
        text.contains("set allow (networks), tsig (a key) or both"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Knot DNS as a secondary

struct Knot {
    child: DaemonGuard,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Knot as a secondary of example.com with meridian (at `primary`) as its primary, TSIG
/// on transfers and NOTIFY.
fn start_knot(port: u16, primary: SocketAddr) -> Knot {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let conf = format!(
        "{}\
         key:\n  - id: xfr-key\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         remote:\n  - id: meridian\n    address: {ip}@{mport}\n    key: xfr-key\n\
         acl:\n  - id: from_meridian\n    address: 127.0.0.1\n    key: xfr-key\n    action: notify\n\
         template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    \
         zonefile-load: none\n    journal-content: none\n\
         zone:\n  - domain: example.com\n    master: meridian\n    acl: from_meridian\n",
        knot_conf(dir.path(), port, "info"),
        ip = primary.ip(),
        mport = primary.port(),
    );
    let path = dir.path().join("knot.conf");
    std::fs::write(&path, conf).expect("write knot.conf");
    let log = dir.path().join("knot.log");
    let child = DaemonGuard::spawn(
        Command::new(tool_path("knotd")).arg("-c").arg(&path),
        dir.path(),
        &log,
    );
    Knot {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
        _dir: dir,
    }
}

impl Knot {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The serial Knot serves for example.com, if it serves it.
    fn serial(&self) -> Option<u32> {
        let q = query("example.com.", RecordType::SOA, false);
        let bytes = q.to_vec().ok()?;
        let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .ok()?;
        sock.send_to(&bytes, self.addr).ok()?;
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let m = hickory_proto::op::Message::from_vec(&buf[..n]).ok()?;
        if m.metadata.response_code != ResponseCode::NoError || !m.metadata.authoritative {
            return None;
        }
        m.answers.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
    }

    /// Polls until Knot serves `serial`, at most `limit`.
    fn wait_serial(&mut self, serial: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if self.serial() == Some(serial) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn answers(&self, name: &str, rtype: RecordType) -> Vec<String> {
        let r = udp_query(self.addr, &query(name, rtype, false));
        answers(&r)
    }
}

#[test]
fn knot_follows_meridian_as_a_secondary() {
    if !require_tool("knotd", "knot") {
        return;
    }
    let knot_port = stable_port();
    // Enough records for several messages: Knot checks the TSIG chain across them.
    let text = zone(2024010101, "192.0.2.80", 2000);
    let server = serve(
        &text,
        &transfer_config("\"127.0.0.1/32\"", true, Some(knot_port)),
    );
    let mut knot = start_knot(knot_port, server.addr);

    assert!(
        knot.wait_serial(2024010101, Duration::from_secs(30)),
        "Knot did not load the zone from meridian; its log:\n{}",
        knot.log_text()
    );
    let ours = |name: &str, t: RecordType| answers(&server.udp(name, t));
    for (name, t) in [
        ("www.example.com.", RecordType::A),
        ("www.example.com.", RecordType::AAAA),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("host1999.bulk.example.com.", RecordType::A),
        ("_sip._tcp.example.com.", RecordType::SRV),
    ] {
        assert_eq!(knot.answers(name, t), ours(name, t), "{name} {t}");
    }
    assert!(
        knot.answers("www.example.com.", RecordType::A)[0].ends_with("192.0.2.80"),
        "{:?}",
        knot.answers("www.example.com.", RecordType::A)
    );

    // New serial and content; SIGHUP reloads; the NOTIFY makes Knot fetch it at once (the
    // SOA refresh is an hour, so nothing else would).
    let changed = zone(2024010102, "192.0.2.81", 2001);
    std::fs::write(server.dir.path().join("zones/example.com.zone"), &changed).expect("write");
    // SAFETY: kill(2) on the server child we started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
    assert!(
        knot.wait_serial(2024010102, Duration::from_secs(30)),
        "Knot did not pick up the new serial; its log:\n{}",
        knot.log_text()
    );
    let log = knot.log_text();
    assert!(
        log.contains("notify, incoming"),
        "Knot logged no NOTIFY:\n{log}"
    );
    // The change came as differences (RFC 1995), not as the whole zone again.
    let ixfr: Vec<&str> = log.lines().filter(|l| l.contains("IXFR")).collect();
    println!("{}", ixfr.join("\n"));
    assert!(
        ixfr.iter()
            .any(|l| l.contains("IXFR, incoming") && l.contains("finished")),
        "Knot did not take an IXFR:\n{log}"
    );
    // One whole transfer only: the first load.
    let axfrs = log
        .lines()
        .filter(|l| l.contains("AXFR, incoming") && l.contains("started"))
        .count();
    assert!(
        axfrs == 1 && !log.contains("fallback"),
        "Knot fell back to AXFR:\n{log}"
    );
    // Knot signs its answers to our signed NOTIFYs: they verify.
    let api = server.api.expect("api");
    assert!(metric(api, "meridian_notify_total{outcome=\"acknowledged\"}") >= 1);
    assert_eq!(
        metric(api, "meridian_notify_total{outcome=\"untrusted_answer\"}"),
        0
    );
    assert_eq!(
        knot.answers("www.example.com.", RecordType::A),
        ours("www.example.com.", RecordType::A)
    );
    assert!(knot.answers("www.example.com.", RecordType::A)[0].ends_with("192.0.2.81"));
    assert_eq!(
        knot.answers("host2000.bulk.example.com.", RecordType::A),
        ours("host2000.bulk.example.com.", RecordType::A)
    );
}

/// Writes `text` as the zone and reloads through the API; fails the test unless it took.
fn reload_with(server: &Server, text: &str) {
    std::fs::write(server.dir.path().join("zones/example.com.zone"), text).expect("write");
    let (code, body) = crate::common::http_post(server.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
}

#[test]
fn ixfr_sends_the_differences_kept_and_the_whole_zone_beyond_them() {
    if !require_tool("dig", "bind9-dnsutils") {
        return;
    }
    let server = serve(
        &zone(1, "192.0.2.80", 3),
        "[transfer.\"example.com.\"]\nallow = [\"127.0.0.0/8\"]\nixfr_history = 2\n",
    );
    // 1 → 2: www changes address, a bulk host goes. 2 → 3: a bulk host comes back.
    let v2 = zone(2, "192.0.2.81", 2);
    reload_with(&server, &v2);
    let v3 = zone(3, "192.0.2.81", 3);
    reload_with(&server, &v3);

    let soa = |serial: u32| records(&zone(serial, "x", 0))[0].clone();
    let www = |addr: &str| format!("www.example.com. 300 IN A {addr}");
    let host2 = "host2.bulk.example.com. 300 IN A 10.0.0.2".to_string();
    let out = dig(
        server.addr,
        &["+nocmd", "+nostats", "example.com", "IXFR=1"],
    );
    assert_eq!(
        records(&out),
        [
            soa(3),
            soa(1),
            www("192.0.2.80"),
            host2.clone(),
            soa(2),
            www("192.0.2.81"),
            soa(2),
            soa(3),
            host2,
            soa(3)
        ],
        "{out}"
    );
    // From 2: the last difference only.
    let out = dig(
        server.addr,
        &["+nocmd", "+nostats", "example.com", "IXFR=2"],
    );
    assert_eq!(records(&out).len(), 5, "{out}");
    // Current: the SOA alone. Unknown (older than the history): the whole zone.
    let out = dig(
        server.addr,
        &["+nocmd", "+nostats", "example.com", "IXFR=3"],
    );
    assert_eq!(records(&out), [soa(3)], "{out}");
    let v4 = zone(4, "192.0.2.82", 3);
    reload_with(&server, &v4);
    let out = dig(
        server.addr,
        &["+nocmd", "+nostats", "example.com", "IXFR=1"],
    );
    assert_whole_zone(&out, &v4);
}

/// A secondary played by the test: it answers meridian's signed NOTIFY first without a
/// signature (ignored: anyone could have sent it), then signed with the shared key
/// (acknowledged).
#[test]
fn a_signed_notify_needs_a_signed_answer() {
    use meridian::dns::tsig::{self, Signer, TsigKey};
    let secondary = UdpSocket::bind("127.0.0.1:0").expect("bind");
    secondary
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let port = secondary.local_addr().expect("addr").port();
    let server = serve(
        &zone(5, "192.0.2.80", 0),
        &transfer_config("\"127.0.0.1/32\"", true, Some(port)),
    );
    let api = server.api.expect("api");
    let mut buf = [0u8; 4096];
    let (n, from) = secondary.recv_from(&mut buf).expect("a NOTIFY at startup");
    let notify = buf[..n].to_vec();
    assert_eq!((notify[2] >> 3) & 0xF, 4, "opcode NOTIFY");

    // Unsigned: header and question only, QR set.
    let question_end = 12 + 13 + 4; // example.com. SOA IN
    let mut unsigned = notify[..question_end].to_vec();
    unsigned[2] |= 0x80;
    unsigned[6..12].fill(0);
    secondary.send_to(&unsigned, from).expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(api, "meridian_notify_total{outcome=\"untrusted_answer\"}") == 0 {
        assert!(
            Instant::now() < deadline,
            "the unsigned answer was not refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        metric(api, "meridian_notify_total{outcome=\"acknowledged\"}"),
        0
    );

    // Signed with the key, over the NOTIFY's MAC: acknowledged.
    let secret = data_encoding::BASE64
        .decode(SECRET.as_bytes())
        .expect("base64");
    let key = TsigKey {
        name: b"\x07xfr-key\x00".to_vec().into(),
        key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
    };
    let at = tsig::find(&notify).expect("the NOTIFY is signed");
    let verified =
        tsig::verify(std::slice::from_ref(&key), &notify, at, unix_now()).expect("parse");
    assert_eq!(
        verified.error, 0,
        "meridian's NOTIFY verifies with the shared key"
    );
    let mut signed = unsigned.clone();
    let mut signer = Signer::for_response(&key, &verified);
    let len = signed.len();
    signed.resize(len + signer.record_len(), 0);
    let n = signer.sign(&mut signed, len, unix_now());
    signed.truncate(n);
    secondary.send_to(&signed, from).expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(api, "meridian_notify_total{outcome=\"acknowledged\"}") == 0 {
        assert!(
            Instant::now() < deadline,
            "the signed answer was not accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
