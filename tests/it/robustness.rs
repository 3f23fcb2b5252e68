//! The real server under a stream of random, truncated and mutated UDP packets.
//!
//! A seeded RNG drives the run (`MERIDIAN_ROBUST_SEED` overrides the seed, and
//! `MERIDIAN_ROBUST_PACKETS` the number of packets), so a failure reproduces. Afterwards the
//! process must be alive, its resident memory must not have grown much between the first and
//! the last quarter, and ordinary queries must still be answered correctly over UDP and TCP.
//! During the run every response must parse with hickory-proto and carry its query's ID,
//! queries with a malformed OPT or ECS option must get FORMERR, other opcodes NOTIMP, and
//! responses (QR set) must get nothing at all.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::dns::class::IN;
use meridian::dns::edns_option::{ECS, NSID};
use meridian::dns::rtype::{A, AAAA, ANY, MX, OPT, SOA, TXT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster ( 7 3600 600 1209600 60 )
        IN NS  ns1
        IN MX  10 mail
ns1     IN A   192.0.2.1
mail    IN A   192.0.2.25
        IN AAAA 2001:db8::25
www     IN A   192.0.2.80
alias   IN CNAME www
*.wild  IN A   192.0.2.99
old     IN DNAME new.example.com.
www.new IN A   192.0.2.81
child   IN NS  ns.child
ns.child IN A  192.0.2.53
big     IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "1123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "2123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "3123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "4123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "5123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "6123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "7123456789012345678901234567890123456789012345678901234567890123456789"
"#;

/// Questions with what a correct server answers (rcode, text in the answer section).
const QUESTIONS: &[(&str, u16, ResponseCode, Option<&str>)] = &[
    (
        "www.example.com.",
        A,
        ResponseCode::NoError,
        Some("192.0.2.80"),
    ),
    (
        "WwW.ExAmPle.CoM.",
        A,
        ResponseCode::NoError,
        Some("192.0.2.80"),
    ),
    (
        "mail.example.com.",
        AAAA,
        ResponseCode::NoError,
        Some("2001:db8::25"),
    ),
    (
        "alias.example.com.",
        A,
        ResponseCode::NoError,
        Some("192.0.2.80"),
    ),
    (
        "x.wild.example.com.",
        A,
        ResponseCode::NoError,
        Some("192.0.2.99"),
    ),
    (
        "www.old.example.com.",
        A,
        ResponseCode::NoError,
        Some("192.0.2.81"),
    ),
    (
        "example.com.",
        SOA,
        ResponseCode::NoError,
        Some("hostmaster"),
    ),
    (
        "example.com.",
        MX,
        ResponseCode::NoError,
        Some("mail.example.com."),
    ),
    ("big.example.com.", TXT, ResponseCode::NoError, None),
    ("example.com.", ANY, ResponseCode::NoError, None),
    ("a.child.example.com.", A, ResponseCode::NoError, None),
    ("nothere.example.com.", A, ResponseCode::NXDomain, None),
    ("www.example.org.", A, ResponseCode::Refused, None),
];

/// What must (or must not) come back for a packet.
#[derive(Debug, Clone)]
enum Expect {
    /// Anything that parses, or nothing.
    Any,
    /// No response at all.
    Nothing,
    Rcode(ResponseCode),
    /// A malformed ECS option: FORMERR (RFC 7871 §6).
    BadEcs,
    /// A correct answer to `QUESTIONS[i]`.
    Answer(usize),
}

fn header(flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut h = vec![0, 0];
    h.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// An OPT record (owner root) with the given options (code, data).
fn opt(options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut o = vec![0];
    o.extend_from_slice(&OPT.to_be_bytes());
    o.extend_from_slice(&1232u16.to_be_bytes());
    o.extend_from_slice(&[0, 0, 0, 0]);
    o.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    o.extend_from_slice(&rdata);
    o
}

fn ecs(family: u16, source: u8, scope: u8, addr: &[u8]) -> (u16, Vec<u8>) {
    let mut d = family.to_be_bytes().to_vec();
    d.push(source);
    d.push(scope);
    d.extend_from_slice(addr);
    (ECS, d)
}

/// A well-formed query for `QUESTIONS[i]`, with EDNS (and sometimes a valid ECS) or without.
fn valid_query(rng: &mut StdRng, i: usize) -> Vec<u8> {
    let (name, qtype, ..) = QUESTIONS[i];
    let edns = rng.random_bool(0.6);
    let mut q = header(0x0100, [1, 0, 0, edns as u16]);
    q.extend_from_slice(&wire_name(name));
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    if edns {
        let options = match rng.random_range(0..4) {
            0 => vec![],
            1 => vec![ecs(1, 24, 0, &[192, 0, 2])],
            2 => vec![ecs(2, 56, 0, &[0x20, 1, 0x0d, 0xb8, 0, 0, 0])],
            _ => vec![(NSID, vec![]), ecs(1, 0, 0, &[])],
        };
        q.extend_from_slice(&opt(&options));
    }
    q
}

fn question_bytes(name: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = name.to_vec();
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    q
}

/// One generated packet and what must come back for it.
fn packet(rng: &mut StdRng) -> (Vec<u8>, Expect) {
    let formerr = Expect::Rcode(ResponseCode::FormErr);
    let www = wire_name("www.example.com.");
    match rng.random_range(0..100) {
        // Random bytes, mostly short.
        0..=9 => {
            let len = if rng.random_bool(0.7) {
                rng.random_range(0..40)
            } else {
                rng.random_range(0..600)
            };
            let mut p = vec![0u8; len];
            rng.fill(&mut p[..]);
            (p, Expect::Any)
        }
        // Valid queries, answered correctly.
        10..=24 => {
            let i = rng.random_range(0..QUESTIONS.len());
            (valid_query(rng, i), Expect::Answer(i))
        }
        // Bit flips.
        25..=39 => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            for _ in 0..rng.random_range(1..=8) {
                let bit = rng.random_range(0..p.len() * 8);
                p[bit / 8] ^= 1 << (bit % 8);
            }
            (p, Expect::Any)
        }
        // Truncated anywhere.
        40..=47 => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            p.truncate(rng.random_range(0..p.len()));
            (p, Expect::Any)
        }
        // Huge or wrong section counts.
        48..=54 => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            let field = rng.random_range(0..4);
            let value: u16 = match rng.random_range(0..4) {
                0 => 0xFFFF,
                1 => 0,
                2 => 2,
                _ => rng.random(),
            };
            p[4 + 2 * field..6 + 2 * field].copy_from_slice(&value.to_be_bytes());
            (p, Expect::Any)
        }
        // Compression pointers, loops and extended label types in the question: FORMERR.
        55..=60 => {
            let mut p = header(0, [1, 0, 0, 0]);
            let name: Vec<u8> = match rng.random_range(0..5) {
                0 => vec![0xC0, 12],                      // points at itself
                1 => vec![3, b'w', b'w', b'w', 0xC0, 12], // loops back to its start
                2 => vec![0xC0, 0],                       // into the header
                3 => vec![0x40 | rng.random_range(0..0x3F), b'x', 0],
                _ => {
                    let mut n = vec![1, b'a'];
                    n.extend_from_slice(&[0xC0, rng.random()]);
                    n
                }
            };
            p.extend_from_slice(&question_bytes(&name, A));
            (p, formerr)
        }
        // Additional records whose names are pointer loops and chains: parsed, not followed.
        61..=66 => {
            let count = rng.random_range(1..=20u16);
            let mut p = header(0, [1, 0, 0, count]);
            p.extend_from_slice(&question_bytes(&www, A));
            for _ in 0..count {
                let here = p.len() as u16;
                let name: Vec<u8> = match rng.random_range(0..4) {
                    0 => (0xC000 | here).to_be_bytes().to_vec(),
                    1 => (0xC000 | here.saturating_sub(12)).to_be_bytes().to_vec(),
                    2 => vec![1, b'x', 0xC0 | rng.random_range(0..0x3F), rng.random()],
                    _ => vec![0xC0, 12],
                };
                p.extend_from_slice(&name);
                p.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            }
            (p, Expect::Any)
        }
        // Bad ECS options: FORMERR (RFC 7871 §6).
        67..=76 => {
            let bad = match rng.random_range(0..6) {
                0 => ecs(1, 33, 0, &[192, 0, 2, 1, 0]), // prefix longer than IPv4
                1 => ecs(2, 129, 0, &[0; 17]),          // prefix longer than IPv6
                2 => ecs(1, 23, 0, &[192, 0, 3]),       // bits set beyond the prefix
                3 => ecs(1, 24, rng.random_range(1..=32), &[192, 0, 2]), // scope in a query
                4 => ecs(rng.random_range(3..=0xFFFF), 24, 0, &[192, 0, 2]), // unknown family
                _ => ecs(1, 24, 0, &[192, 0]),          // address shorter than prefix
            };
            let mut p = header(0, [1, 0, 0, 1]);
            p.extend_from_slice(&question_bytes(&www, A));
            p.extend_from_slice(&opt(&[bad]));
            (p, Expect::BadEcs)
        }
        // OPT records in the wrong place or malformed: FORMERR (RFC 6891 §6.1.1).
        77..=84 => {
            let mut p;
            match rng.random_range(0..5) {
                0 => {
                    // Two OPT records.
                    p = header(0, [1, 0, 0, 2]);
                    p.extend_from_slice(&question_bytes(&www, A));
                    p.extend_from_slice(&opt(&[]));
                    p.extend_from_slice(&opt(&[]));
                }
                1 | 2 => {
                    // OPT in the answer or authority section.
                    let counts = if rng.random_bool(0.5) {
                        [1, 1, 0, 0]
                    } else {
                        [1, 0, 1, 0]
                    };
                    p = header(0, counts);
                    p.extend_from_slice(&question_bytes(&www, A));
                    p.extend_from_slice(&opt(&[]));
                }
                3 => {
                    // An option whose length runs past the RDATA.
                    p = header(0, [1, 0, 0, 1]);
                    p.extend_from_slice(&question_bytes(&www, A));
                    let mut o = opt(&[(ECS, vec![0, 1, 24, 0, 192, 0, 2])]);
                    let at = o.len() - 7 - 2;
                    let bogus: u16 = rng.random_range(8..=0xFFFF);
                    o[at..at + 2].copy_from_slice(&bogus.to_be_bytes());
                    p.extend_from_slice(&o);
                }
                _ => {
                    // OPT with an owner other than the root.
                    p = header(0, [1, 0, 0, 1]);
                    p.extend_from_slice(&question_bytes(&www, A));
                    let mut o = wire_name("x.");
                    o.extend_from_slice(&opt(&[])[1..]);
                    p.extend_from_slice(&o);
                }
            }
            (p, formerr)
        }
        // Responses (QR set) get nothing back.
        85..=89 => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            p[2] |= 0x80;
            (p, Expect::Nothing)
        }
        // Every opcode: only QUERY is implemented.
        90..=95 => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            let opcode: u8 = rng.random_range(0..16);
            p[2] = (p[2] & 0x87) | (opcode << 3);
            let expect = if opcode == 0 {
                Expect::Answer(i)
            } else {
                Expect::Rcode(ResponseCode::NotImp)
            };
            (p, expect)
        }
        // Valid pieces spliced with random bytes.
        _ => {
            let i = rng.random_range(0..QUESTIONS.len());
            let mut p = valid_query(rng, i);
            let cut = rng.random_range(12..=p.len());
            p.truncate(cut);
            let tail = rng.random_range(0..64);
            for _ in 0..tail {
                p.push(rng.random());
            }
            (p, Expect::Any)
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Checks one response against the packet that carried its ID.
/// Returns true for a FORMERR to a malformed ECS option.
fn judge(resp: &[u8], sent: Option<&(Vec<u8>, Expect)>, failures: &mut Vec<String>) -> bool {
    let id = u16::from_be_bytes([resp[0], resp[1]]);
    let Some((packet, expect)) = sent else {
        failures.push(format!("response with unknown id {id}: {resp:02x?}"));
        return false;
    };
    let m = match Message::from_vec(resp) {
        Ok(m) => m,
        Err(e) => {
            failures.push(format!(
                "response does not parse ({e}): query {packet:02x?} response {resp:02x?}"
            ));
            return false;
        }
    };
    let rcode = m.metadata.response_code;
    let ok = match expect {
        Expect::Any => true,
        Expect::Nothing => false,
        Expect::Rcode(want) => rcode == *want,
        Expect::BadEcs => rcode == ResponseCode::FormErr,
        Expect::Answer(i) => {
            let (_, _, want, text) = QUESTIONS[*i];
            rcode == want && text.is_none_or(|t| answers(&m).iter().any(|a| a.contains(t)))
        }
    };
    if !ok {
        failures.push(format!(
            "expected {expect:?}, got {rcode:?} with {:?}: query {packet:02x?}",
            answers(&m)
        ));
    }
    ok && matches!(expect, Expect::BadEcs)
}

#[test]
fn survives_random_and_mutated_udp_packets() {
    let seed: u64 = std::env::var("MERIDIAN_ROBUST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d65_7269_6469_616e);
    let total: usize = std::env::var("MERIDIAN_ROBUST_PACKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    eprintln!("robustness: seed {seed}, {total} packets (MERIDIAN_ROBUST_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut server = Server::start(&[("example.com.zone", ZONE)], "identity = \"robust-1\"");
    let pid = server.pid();

    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(server.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(2)))
        .expect("timeout");

    // The packets of the last 65536 IDs, so every response can be matched to its query.
    let mut sent: HashMap<u16, (Vec<u8>, Expect)> = HashMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut next_id: u16 = 0;
    let (mut responses, mut formerr_ecs_seen) = (0usize, 0usize);
    let mut rss_first = 0;
    let mut buf = [0u8; 65535];

    // Every truncation of a few full queries first, then the random stream.
    let mut fixed: Vec<(Vec<u8>, Expect)> = Vec::new();
    for i in [0, 6, 8] {
        let mut q = header(0x0100, [1, 0, 0, 1]);
        q.extend_from_slice(&question_bytes(&wire_name(QUESTIONS[i].0), QUESTIONS[i].1));
        q.extend_from_slice(&opt(&[
            (NSID, vec![]),
            ecs(2, 48, 0, &[0x20, 1, 0x0d, 0xb8, 0, 1]),
        ]));
        for len in 0..q.len() {
            fixed.push((q[..len].to_vec(), Expect::Any));
        }
        fixed.push((q, Expect::Answer(i)));
    }

    let batch = 100;
    let mut done = 0usize;
    let mut fixed = fixed.into_iter();
    while done < total {
        for _ in 0..batch.min(total - done) {
            let (mut p, expect) = fixed.next().unwrap_or_else(|| packet(&mut rng));
            if p.len() >= 2 {
                p[..2].copy_from_slice(&next_id.to_be_bytes());
                sent.insert(next_id, (p.clone(), expect));
                next_id = next_id.wrapping_add(1);
            }
            // A full socket buffer is not a failure of the server.
            let _ = sock.send(&p);
            done += 1;
        }
        // Drain what came back until the server has been quiet for a moment.
        while let Ok(n) = sock.recv(&mut buf) {
            responses += 1;
            let resp = &buf[..n];
            if n < 12 {
                failures.push(format!("short response {resp:02x?}"));
                continue;
            }
            let id = u16::from_be_bytes([resp[0], resp[1]]);
            if judge(resp, sent.get(&id), &mut failures) {
                formerr_ecs_seen += 1;
            }
        }
        if rss_first == 0 && done >= total / 4 {
            rss_first = rss_kib(pid);
        }
        assert!(
            server.is_running(),
            "server died after {done} packets (seed {seed})"
        );
        if failures.len() > 50 {
            break;
        }
    }
    let rss_last = rss_kib(pid);
    eprintln!(
        "robustness: {done} packets sent, {responses} responses, VmRSS {rss_first} KiB after \
         the first quarter, {rss_last} KiB at the end"
    );
    assert!(
        failures.is_empty(),
        "{} failures (seed {seed}), first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert!(server.is_running(), "server died (seed {seed})");
    assert!(responses > total / 4, "too few responses: {responses}");
    assert!(
        formerr_ecs_seen > 0,
        "no FORMERR for a malformed ECS option came back"
    );
    // No allocation per query: a leak of even a few bytes per packet would show here.
    assert!(
        rss_last < rss_first + 32 * 1024,
        "resident memory grew from {rss_first} KiB to {rss_last} KiB"
    );

    // Business as usual afterwards.
    for (name, qtype, rcode, text) in QUESTIONS {
        let rtype = RecordType::from(*qtype);
        for m in [server.udp(name, rtype), server.tcp(name, rtype)] {
            assert_eq!(m.metadata.response_code, *rcode, "{name} {rtype}");
            if let Some(t) = text {
                assert!(
                    answers(&m).iter().any(|a| a.contains(t)),
                    "{name} {rtype}: {:?}",
                    answers(&m)
                );
            }
        }
    }
}
