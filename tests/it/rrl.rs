//! Response rate limiting end to end: a flood of one query from one address is held to the
//! rate, with every slip-th limited answer sent truncated; other clients and allowlisted
//! networks are not affected.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const ZONE: &str = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n";

/// Sends `count` copies of one query from `from` as fast as possible, then collects
/// answers for a while: (full answers, truncated answers).
fn flood(server: std::net::SocketAddr, from: &str, count: usize, name: &str) -> (usize, usize) {
    let sock = UdpSocket::bind((from, 0)).expect("bind client address");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let q = query(name, RecordType::A, false).to_vec().expect("encode");
    for _ in 0..count {
        sock.send_to(&q, server).expect("send");
    }
    let (mut full, mut truncated) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let m = Message::from_vec(&buf[..n]).expect("parse");
        if m.metadata.truncation {
            assert!(m.answers.is_empty(), "a slipped answer is empty");
            truncated += 1;
        } else {
            assert_eq!(m.answers.len(), 1);
            full += 1;
        }
    }
    (full, truncated)
}

#[test]
fn a_flood_is_limited_with_slip_and_others_are_not() {
    let s = Server::start(
        &[("example.com.zone", ZONE)],
        "[rrl]\nresponses_per_second = 5\nwindow = 5\nslip = 2\nallow = [\"127.0.3.0/24\"]\n",
    );
    let (full, truncated) = flood(s.addr, "127.0.1.1", 200, "www.example.com.");
    eprintln!("rrl flood: 200 sent, {full} answered, {truncated} truncated");
    // 5 per second, the flood lasting about a second: a handful, far from 200.
    assert!((5..=15).contains(&full), "full answers: {full}");
    // Every second limited response slips.
    let limited = 200 - full;
    assert!(
        truncated >= limited / 2 - 5 && truncated <= limited / 2 + 5,
        "truncated {truncated} of {limited} limited"
    );
    // Another client network is not affected...
    let (full, truncated) = flood(s.addr, "127.0.2.1", 5, "www.example.com.");
    assert_eq!((full, truncated), (5, 0));
    // ...nor is another name for the flooded network...
    let (full, _) = flood(s.addr, "127.0.1.1", 3, "ns1.example.com.");
    assert_eq!(full, 3);
    // ...and allowlisted networks never are.
    let (full, truncated) = flood(s.addr, "127.0.3.1", 100, "www.example.com.");
    assert_eq!((full, truncated), (100, 0));
    // TCP is never rate limited: the slipped client's retry works.
    let m = s.tcp("www.example.com.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn without_rrl_nothing_is_limited() {
    let s = Server::start(&[("example.com.zone", ZONE)], "");
    let (full, truncated) = flood(s.addr, "127.0.4.1", 100, "www.example.com.");
    assert_eq!((full, truncated), (100, 0));
}

/// Appends `extra` to the server's configuration (as it was at start) and reloads through
/// the API: (status, body).
fn reconfigure(s: &Server, base: &str, extra: &str) -> (u16, String) {
    std::fs::write(&s.config, format!("{base}{extra}")).expect("write config");
    http_post(s.api.expect("api"), "/reload", "")
}

#[test]
fn rrl_and_the_query_log_follow_a_reload() {
    let s = Server::start(&[("example.com.zone", ZONE)], "");
    let base = std::fs::read_to_string(&s.config).expect("config");
    let (full, _) = flood(s.addr, "127.0.5.1", 100, "www.example.com.");
    assert_eq!(full, 100, "no limit at start");

    // [rrl] and [query_log] added: both take effect without a restart.
    let log = s.dir.path().join("queries.log");
    let extra = format!(
        "\n[rrl]\nresponses_per_second = 5\nwindow = 5\nslip = 2\n\n[query_log]\npath = \"{}\"\nsample = 1\n",
        log.display()
    );
    let (code, body) = reconfigure(&s, &base, &extra);
    assert_eq!(code, 200, "{body}");
    let (full, truncated) = flood(s.addr, "127.0.5.1", 100, "www.example.com.");
    assert!(
        full <= 15 && truncated > 20,
        "limited after the reload: {full} / {truncated}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 10 {
        assert!(Instant::now() < deadline, "nothing logged after the reload");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A query log that cannot be opened fails the reload, and the old settings stay.
    let bad =
        "\n[rrl]\nresponses_per_second = 5\n\n[query_log]\npath = \"/nonexistent-dir/q.log\"\n";
    let (code, body) = reconfigure(&s, &base, bad);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("nonexistent-dir"), "{body}");
    let (full, _) = flood(s.addr, "127.0.6.1", 100, "www.example.com.");
    assert!(full <= 15, "still limited: {full}");

    // Removed again: unlimited, and the old log's writer has stopped.
    let (code, body) = reconfigure(&s, &base, "");
    assert_eq!(code, 200, "{body}");
    let (full, _) = flood(s.addr, "127.0.7.1", 100, "www.example.com.");
    assert_eq!(full, 100, "no limit after the section went");
    std::thread::sleep(Duration::from_millis(300));
    let lines = std::fs::read_to_string(&log).expect("log").lines().count();
    let _ = flood(s.addr, "127.0.8.1", 20, "www.example.com.");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log").lines().count(),
        lines,
        "nothing logged once [query_log] is gone"
    );
}
