//! DNS Cookies (RFC 7873, RFC 9018) end to end: `dig +cookie` and `kdig +cookie` learn a
//! server cookie and get it accepted; instances sharing a secret accept each other's cookies
//! (and the previous secret's, during a rotation), others do not; a malformed option is a
//! FORMERR; under rate limiting a verified client is never limited, and a client with only a
//! client cookie gets BADCOOKIE instead of a truncated answer.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use meridian::dns::name;
use meridian::dns::wire::build_query;

use crate::common::{Server, metric, require_tool, tool_path};

const ZONE: &str = "$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 60\n  IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n";
const SECRET_A: &str = "000102030405060708090a0b0c0d0e0f";
const SECRET_B: &str = "f0e0d0c0b0a090807060504030201000";

fn start(cookies: &str, extra: &str) -> Server {
    Server::start(
        &[("example.com.zone", ZONE)],
        &format!("{extra}\n[cookies]\n{cookies}\n"),
    )
}

/// A query for www.example.com A carrying the COOKIE option `cookie`.
fn query_with_cookie(id: u16, cookie: &[u8]) -> Vec<u8> {
    let qname = name::wire(&hickory_proto::rr::Name::from_ascii("www.example.com.").expect("name"));
    let mut q = build_query(id, &qname, 1, true, None);
    // The OPT record ends the query with an empty RDATA: give it the option.
    let n = q.len();
    q[n - 2..].copy_from_slice(&((4 + cookie.len()) as u16).to_be_bytes());
    q.extend_from_slice(&10u16.to_be_bytes());
    q.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    q.extend_from_slice(cookie);
    q
}

/// (rcode with the OPT's extended bits, the COOKIE option echoed if any).
fn ask(server: SocketAddr, sock: &UdpSocket, cookie: &[u8]) -> (u16, Option<Vec<u8>>) {
    let q = query_with_cookie(0x4242, cookie);
    sock.send_to(&q, server).expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer");
    let r = &buf[..n];
    // Our responses end with the OPT record, and its last option is the cookie.
    let echoed = (n > 28 && r[n - 28..n - 24] == [0, 10, 0, 24]).then(|| r[n - 24..].to_vec());
    let opt_ttl_at = if echoed.is_some() {
        n - 28 - 11
    } else {
        n - 11
    };
    let has_opt = u16::from_be_bytes([r[10], r[11]]) > 0;
    let extended = if has_opt {
        u16::from(r[opt_ttl_at + 5])
    } else {
        0
    };
    (extended << 4 | u16::from(r[3] & 0x0f), echoed)
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s
}

#[test]
fn cookies_are_learned_and_shared_across_instances_with_one_secret() {
    let a = start(&format!("secret = \"{SECRET_A}\""), "");
    let b = start(&format!("secret = \"{SECRET_A}\""), "");
    let other = start(&format!("secret = \"{SECRET_B}\""), "");
    let rotated = start(
        &format!("secret = \"{SECRET_B}\"\nprevious_secret = \"{SECRET_A}\""),
        "",
    );
    let sock = socket();
    let client = [0x11u8; 8];
    let (rcode, echoed) = ask(a.addr, &sock, &client);
    assert_eq!(rcode, 0);
    let full = echoed.expect("a cookie in the answer");
    assert_eq!(full[..8], client, "the client cookie echoed");
    assert_eq!(full[8], 1, "an RFC 9018 version 1 server cookie");

    // A sibling with the same secret accepts it; one with another secret does not (and
    // answers normally, with a cookie of its own); after a rotation, the old secret's
    // cookies still pass.
    for (server, outcome) in [(&b, "valid"), (&other, "invalid"), (&rotated, "valid")] {
        let api = server.api.expect("api");
        let before = metric(
            api,
            &format!("meridian_cookies_total{{outcome=\"{outcome}\"}}"),
        );
        let (rcode, echoed) = ask(server.addr, &sock, &full);
        assert_eq!(rcode, 0, "a normal answer");
        assert!(echoed.is_some_and(|c| c[..8] == client));
        let after = metric(
            api,
            &format!("meridian_cookies_total{{outcome=\"{outcome}\"}}"),
        );
        assert_eq!(after, before + 1, "{outcome} at {}", server.addr);
    }

    // RFC 7873 §5.2.2: a cookie option of 9 octets is malformed.
    let (rcode, _) = ask(a.addr, &sock, &[1u8; 9]);
    assert_eq!(rcode, 1, "FORMERR");

    // Turned off: no cookie in answers.
    let off = start("enabled = false", "");
    let (rcode, echoed) = ask(off.addr, &sock, &client);
    assert_eq!((rcode, echoed), (0, None));
}

#[test]
fn dig_and_kdig_see_a_good_cookie() {
    if !require_tool("dig", "bind9-dnsutils") || !require_tool("kdig", "knot-dnsutils") {
        return;
    }
    let s = start(&format!("secret = \"{SECRET_A}\""), "");
    let port = s.addr.port().to_string();
    let dig = |extra: &str| {
        let out = Command::new(tool_path("dig"))
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "+norecurse",
                extra,
                "www.example.com",
                "A",
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = dig("+cookie");
    let line = first
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no cookie in:\n{first}"));
    assert!(line.ends_with("(good)"), "{line}");
    let cookie = line
        .split_whitespace()
        .nth(2)
        .expect("the cookie")
        .to_string();
    assert_eq!(cookie.len(), 48, "client + server cookie: {cookie}");
    // Sent back, it is accepted: dig says good again and the server counts it valid.
    let before = metric(
        s.api.expect("api"),
        "meridian_cookies_total{outcome=\"valid\"}",
    );
    let second = dig(&format!("+cookie={cookie}"));
    assert!(
        second.contains("status: NOERROR") && second.contains("(good)"),
        "{second}"
    );
    let after = metric(
        s.api.expect("api"),
        "meridian_cookies_total{outcome=\"valid\"}",
    );
    assert_eq!(after, before + 1);

    let out = Command::new(tool_path("kdig"))
        .args(["@127.0.0.1", "-p", &port, "+cookie", "www.example.com", "A"])
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("COOKIE:") && text.contains("NOERROR"),
        "{text}"
    );
}

/// Sends `count` queries with `cookie` as fast as possible and tallies what comes back:
/// (answers, BADCOOKIE, truncated).
fn flood(server: SocketAddr, cookie: &[u8], count: usize) -> (usize, usize, usize) {
    let sock = socket();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let q = query_with_cookie(7, cookie);
    for _ in 0..count {
        sock.send_to(&q, server).expect("send");
    }
    let (mut answers, mut bad, mut tc) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        let r = &buf[..n];
        if r[2] & 0x02 != 0 {
            tc += 1;
        } else if r[3] & 0x0f == 7 {
            bad += 1;
        } else if r[3] & 0x0f == 0 && u16::from_be_bytes([r[6], r[7]]) == 1 {
            answers += 1;
        }
    }
    (answers, bad, tc)
}

#[test]
fn a_verified_client_is_not_rate_limited_and_others_get_badcookie() {
    let s = start(
        &format!("secret = \"{SECRET_A}\""),
        "[rrl]\nresponses_per_second = 2\nwindow = 2\nslip = 2\n",
    );
    let sock = socket();
    let (_, echoed) = ask(s.addr, &sock, &[0x22; 8]);
    let full = echoed.expect("a cookie");
    let (answers, bad, tc) = flood(s.addr, &full, 100);
    eprintln!("verified: {answers} answers, {bad} BADCOOKIE, {tc} truncated");
    assert_eq!(
        (answers, bad, tc),
        (100, 0, 0),
        "a verified client is never limited"
    );

    // Client cookie only: limited; where a truncated answer would slip, BADCOOKIE.
    let (answers, bad, tc) = flood(s.addr, &[0x33; 8], 100);
    eprintln!("client cookie only: {answers} answers, {bad} BADCOOKIE, {tc} truncated");
    assert!(answers < 20, "limited: {answers}");
    assert!(bad > 10 && tc == 0, "BADCOOKIE instead of TC: {bad} / {tc}");
    assert!(
        metric(
            s.api.expect("api"),
            "meridian_cookies_total{outcome=\"badcookie_sent\"}"
        ) >= bad as u64
    );
}
