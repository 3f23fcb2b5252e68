//! dnstap out: sampled queries as AUTH_QUERY/AUTH_RESPONSE messages in Frame Streams, to a
//! file and to a unix socket (Debian `fstrm-bin`'s `fstrm_capture` as the collector), read
//! back with BIND's `dnstap-read` and checked field by field: the message types, the
//! client's address and transport, the question, the ECS option, the answer, the identity.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meridian::dns::wire::build_query;

use crate::common::{DaemonGuard, Server, http_post, require_tool, tool_path, udp_raw};

const ZONE: &str = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n";

fn ask(addr: SocketAddr) {
    let www = b"\x03www\x07example\x03com\x00";
    let ecs = build_query(
        1,
        www,
        1,
        true,
        Some(("198.51.100.0".parse().expect("ip"), 24)),
    );
    assert!(udp_raw(addr, &ecs).is_some());
    let missing = build_query(2, b"\x04nope\x07example\x03com\x00", 1, false, None);
    assert!(udp_raw(addr, &missing).is_some());
    let m = crate::common::tcp_query(
        addr,
        &crate::common::query("example.com.", hickory_proto::rr::RecordType::SOA, false),
    );
    assert!(!m.answers.is_empty());
}

/// Removes `[query_log]` by reloading without it: the writer ends the stream (STOP).
fn stop_logging(s: &Server, base: &str) {
    std::fs::write(&s.config, base).expect("config");
    let (code, body) = http_post(s.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
}

/// `dnstap-read -y` of `file` once it holds `want` messages (waits for the writer).
fn read(file: &Path, want: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(tool_path("dnstap-read"))
            .arg("-y")
            .arg(file)
            .output()
            .expect("dnstap-read");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.matches("type: MESSAGE").count() >= want || Instant::now() > deadline {
            assert!(
                out.status.success(),
                "dnstap-read failed: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Field-by-field checks of the three exchanges `ask` made.
fn check(text: &str) {
    let messages: Vec<&str> = text
        .split("---")
        .filter(|m| m.contains("type: MESSAGE"))
        .collect();
    assert_eq!(
        messages.len(),
        6,
        "three queries, two messages each:\n{text}"
    );
    let queries = messages
        .iter()
        .filter(|m| m.contains("type: AUTH_QUERY"))
        .count();
    let responses = messages
        .iter()
        .filter(|m| m.contains("type: AUTH_RESPONSE"))
        .count();
    assert_eq!((queries, responses), (3, 3), "{text}");
    for m in &messages {
        assert!(m.contains("identity: tap-test"), "{m}");
        assert!(m.contains("version: meridian"), "{m}");
        assert!(m.contains("query_address: \"127.0.0.1\""), "{m}");
        assert!(m.contains("socket_family: INET"), "{m}");
    }
    let udp = messages
        .iter()
        .filter(|m| m.contains("socket_protocol: UDP"))
        .count();
    let tcp = messages
        .iter()
        .filter(|m| m.contains("socket_protocol: TCP"))
        .count();
    assert_eq!((udp, tcp), (4, 2), "{text}");
    // The ECS query and its answer, decoded by dnstap-read from the messages we sent.
    let ecs_query = messages
        .iter()
        .find(|m| m.contains("AUTH_QUERY") && m.contains("www.example.com"))
        .expect("the www query");
    assert!(
        ecs_query.contains("CLIENT-SUBNET: 198.51.100.0/24"),
        "{ecs_query}"
    );
    let answer = messages
        .iter()
        .find(|m| m.contains("AUTH_RESPONSE") && m.contains("www.example.com"))
        .expect("the www answer");
    assert!(
        answer.contains("192.0.2.80") && answer.contains("NOERROR"),
        "{answer}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("AUTH_RESPONSE") && m.contains("NXDOMAIN")),
        "{text}"
    );
}

#[test]
fn dnstap_to_a_file_reads_back_with_dnstap_read() {
    if !require_tool("dnstap-read", "bind9-dnsutils") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tap = dir.path().join("queries.dnstap");
    let s = Server::start(&[("example.com.zone", ZONE)], "");
    let base = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &s.config,
        format!(
            "{base}\n[query_log]\nformat = \"dnstap\"\npath = \"{}\"\nsample = 1\nidentity = \"tap-test\"\n",
            tap.display()
        ),
    )
    .expect("config");
    let (code, body) = http_post(s.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
    ask(s.addr);
    let _ = read(&tap, 6);
    stop_logging(&s, &base);
    check(&read(&tap, 6));
}

#[test]
fn dnstap_to_a_unix_socket_collector() {
    if !require_tool("dnstap-read", "bind9-dnsutils") || !require_tool("fstrm_capture", "fstrm-bin")
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("tap.sock");
    let captured = dir.path().join("captured.fstrm");
    let log = dir.path().join("fstrm_capture.log");
    let mut collector = DaemonGuard::spawn(
        Command::new(tool_path("fstrm_capture"))
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(&socket)
            .arg("-w")
            .arg(&captured),
        dir.path(),
        &log,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "fstrm_capture made no socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = Server::start(&[("example.com.zone", ZONE)], "");
    let base = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &s.config,
        format!(
            "{base}\n[query_log]\nformat = \"dnstap\"\nsocket = \"{}\"\nsample = 1\nidentity = \"tap-test\"\n",
            socket.display()
        ),
    )
    .expect("config");
    let (code, body) = http_post(s.api.expect("api"), "/reload", "");
    assert_eq!(code, 200, "{body}");
    ask(s.addr);
    std::thread::sleep(Duration::from_millis(600));
    stop_logging(&s, &base);
    // The collector writes its file as frames arrive; end it to close the file.
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: signalling the collector we started.
    unsafe { libc::kill(collector.id() as i32, libc::SIGINT) };
    let _ = collector.wait();
    check(&read(&captured, 6));
}
