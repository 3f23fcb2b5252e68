//! The answer path without I/O: parse, look up, route, encode, one query per iteration.
//!
//! Loads the shipped example (`meridian.toml`, `zones/`, the demo GeoIP database) and runs
//! `answer_from` on one reused response buffer, as the UDP loop does. Criterion's time per
//! iteration is the time per query (ns/query); the throughput line is queries per second.
//!
//! The `cache` group goes through the answer cache: one repeated question (a whole response
//! replayed), the same question with its name in another case each time (replayed with that
//! spelling), the same question with other bytes each time (a slot hit), and three kinds of
//! questions that all differ (cache misses).
//!
//!     cargo bench --bench answer

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hickory_proto::rr::Name;

use meridian::config;
use meridian::dns::MAX_MESSAGE;
use meridian::dns::name::wire_lower;
use meridian::dns::wire::{build_query, parse_query};
use meridian::dns::{Transport, rtype};
use meridian::engine::Snapshot;
use meridian::engine::{self, Request};
use meridian::health::HealthView;

fn snapshot() -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("meridian.toml");
    match config::load(&path) {
        Ok(loaded) => loaded.snapshot,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            panic!("cannot load {}", path.display());
        }
    }
}

fn wire(name: &str) -> Vec<u8> {
    wire_lower(&Name::from_str(name).expect("benchmark name"))
}

struct Case {
    label: &'static str,
    query: Vec<u8>,
    /// Packet source address.
    source: IpAddr,
}

fn cases() -> Vec<Case> {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let local = v4(127, 0, 0, 1);
    let q = |name: &str, qtype: u16, ecs: Option<(IpAddr, u8)>| {
        build_query(0x4242, &wire(name), qtype, true, ecs)
    };
    vec![
        Case {
            label: "static A",
            query: q("static.example.com.", rtype::A, None),
            source: local,
        },
        Case {
            label: "static A, no EDNS",
            query: build_query(0x4242, &wire("static.example.com."), rtype::A, false, None),
            source: local,
        },
        Case {
            label: "MX with additional",
            query: q("example.com.", rtype::MX, None),
            source: local,
        },
        Case {
            label: "CNAME chain",
            query: q("alias.example.com.", rtype::A, None),
            source: local,
        },
        Case {
            label: "wildcard",
            query: q("anything.apps.example.com.", rtype::A, None),
            source: local,
        },
        Case {
            label: "NXDOMAIN",
            query: q("nonexistent.example.com.", rtype::A, None),
            source: local,
        },
        Case {
            label: "geo A, ECS IPv4",
            query: q("www.example.com.", rtype::A, Some((v4(81, 2, 69, 0), 24))),
            source: local,
        },
        Case {
            label: "geo AAAA, ECS IPv6",
            query: q(
                "www.example.com.",
                rtype::AAAA,
                Some((
                    IpAddr::V6(Ipv6Addr::from_str("2600:6c00:1::").expect("v6")),
                    56,
                )),
            ),
            source: IpAddr::V6(Ipv6Addr::LOCALHOST),
        },
        Case {
            label: "geo A, no ECS",
            query: q("www.example.com.", rtype::A, None),
            source: v4(81, 2, 69, 7),
        },
        Case {
            label: "geo CNAME, ECS IPv4",
            query: q(
                "assets.example.com.",
                rtype::A,
                Some((v4(192, 0, 2, 0), 24)),
            ),
            source: local,
        },
        Case {
            label: "weighted sticky",
            query: q(
                "api.example.com.",
                rtype::A,
                Some((v4(198, 51, 100, 0), 24)),
            ),
            source: local,
        },
    ]
}

fn bench(c: &mut Criterion) {
    let snapshot = snapshot();
    let health = HealthView::all_up();
    let mut response = vec![0u8; MAX_MESSAGE];

    let mut group = c.benchmark_group("answer");
    group.throughput(Throughput::Elements(1));
    for case in cases() {
        // Every case must produce an answer; catch a broken fixture before timing it.
        let n = engine::answer(
            &snapshot,
            &health,
            None,
            &Request::new(&case.query, case.source, Transport::Udp),
            &mut response,
        )
        .unwrap_or_else(|| panic!("{}: no response", case.label));
        assert!(n > 12, "{}: short response", case.label);
        group.bench_function(case.label, |b| {
            b.iter(|| {
                engine::answer(
                    black_box(&snapshot),
                    &health,
                    None,
                    &Request::new(
                        black_box(&case.query),
                        black_box(case.source),
                        Transport::Udp,
                    ),
                    &mut response,
                )
            })
        });
    }
    group.finish();

    // Through the answer cache, as the UDP loop runs: one repeated question (hits), and
    // questions that all differ (misses: what a random-subdomain flood or a resolver fleet
    // behind many networks sends). 4096 prepared queries, used in turn.
    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(1));
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut seed = 0x6d65_7269_6469_616eu64;
    let mut next = || {
        seed = meridian::routing::splitmix(seed);
        seed
    };
    let label = |r: u64| -> String {
        (0..12)
            .map(|i| (b'a' + ((r >> (i * 5)) % 26) as u8) as char)
            .collect()
    };
    let mut workloads: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    let www = wire("www.example.com.");
    let london = Some((IpAddr::V4(Ipv4Addr::new(81, 2, 69, 0)), 24));
    workloads.push((
        "hit: geo A, one ECS /24",
        vec![build_query(7, &www, rtype::A, true, london)],
    ));
    // The name in another case each time (a resolver that randomizes it, 0x20): a whole
    // response replayed with the query's spelling put into its question.
    workloads.push((
        "hit: geo A, one ECS /24, name in another case each time",
        (0..4096u64)
            .map(|i| {
                let name: Vec<u8> = www
                    .iter()
                    .enumerate()
                    .map(|(j, &b)| {
                        if (i >> (j % 12)) & 1 == 1 {
                            b.to_ascii_uppercase()
                        } else {
                            b
                        }
                    })
                    .collect();
                build_query(7, &name, rtype::A, true, london)
            })
            .collect(),
    ));
    // The same question with ever other bytes (here the EDNS payload size): answered from
    // the slot, never from the whole responses kept by the query's bytes.
    workloads.push((
        "hit: geo A, one ECS /24, other bytes each time",
        (0..4096u16)
            .map(|i| {
                let mut q = build_query(7, &www, rtype::A, true, london);
                let size_at = 12 + www.len() + 4 + 3;
                q[size_at..size_at + 2].copy_from_slice(&(1232 + i).to_be_bytes());
                q
            })
            .collect(),
    ));
    workloads.push((
        "miss: geo A, random ECS /24",
        (0..4096)
            .map(|_| {
                let [a, b, c, ..] = next().to_be_bytes();
                build_query(
                    7,
                    &www,
                    rtype::A,
                    true,
                    Some((IpAddr::V4(Ipv4Addr::new(a, b, c, 0)), 24)),
                )
            })
            .collect(),
    ));
    workloads.push((
        "miss: random label under a wildcard",
        (0..4096)
            .map(|_| {
                build_query(
                    7,
                    &wire(&format!("{}.apps.example.com.", label(next()))),
                    rtype::A,
                    true,
                    None,
                )
            })
            .collect(),
    ));
    workloads.push((
        "miss: random NXDOMAIN",
        (0..4096)
            .map(|_| {
                build_query(
                    7,
                    &wire(&format!("{}.example.com.", label(next()))),
                    rtype::A,
                    true,
                    None,
                )
            })
            .collect(),
    ));
    for (name, queries) in &workloads {
        let mut cache = engine::AnswerCache::new(2048).expect("cache");
        let mut i = 0usize;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                engine::answer(
                    black_box(&snapshot),
                    &health,
                    Some(&mut cache),
                    &Request::new(black_box(&queries[i]), local, Transport::Udp),
                    &mut response,
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    let plain = build_query(0x4242, &wire("www.example.com."), rtype::A, true, None);
    let ecs = build_query(
        0x4242,
        &wire("www.example.com."),
        rtype::A,
        true,
        Some((IpAddr::V4(Ipv4Addr::new(81, 2, 69, 0)), 24)),
    );
    group.bench_function("query with OPT", |b| {
        b.iter(|| parse_query(black_box(&plain)).is_ok())
    });
    group.bench_function("query with OPT + ECS", |b| {
        b.iter(|| parse_query(black_box(&ecs)).is_ok())
    });
    group.finish();
}

/// The shipped example signed with a fresh CSK in a temporary key directory (the zone files
/// and GeoIP database are the shipped ones).
fn signed_snapshot(dir: &Path) -> Snapshot {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).expect("key dir");
    let zone = wire("example.com.");
    let (key, secret) = meridian::dnssec::SigningKey::generate(
        &zone,
        meridian::dnssec::key::ECDSAP256SHA256,
        true,
        0,
    )
    .expect("key");
    config::dnssec::write_key(&keys, &key, &secret).expect("key files");
    let config = dir.join("meridian.toml");
    std::fs::write(
        &config,
        format!(
            "zones_dir = \"{}\"\n[geoip]\ndatabases = [\"{}\"]\n\
             [dnssec]\nkey_dir = \"keys\"\nzones = [\"example.com\"]\n",
            root.join("zones").display(),
            root.join("geoip/demo-city.mmdb").display()
        ),
    )
    .expect("config");
    match config::load(&config) {
        Ok(loaded) => loaded.snapshot,
        Err(errors) => panic!("cannot load the signed example: {errors:?}"),
    }
}

/// Signing (signatures per second per core: the throughput line) and DO answers from a
/// signed zone, static, negative and dynamic, without the answer cache.
fn bench_dnssec(c: &mut Criterion) {
    let mut group = c.benchmark_group("dnssec");
    group.throughput(Throughput::Elements(1));
    let zone = wire("example.com.");
    let owner = wire("www.example.com.");
    let rdata: [&[u8]; 2] = [&[192, 0, 2, 10], &[192, 0, 2, 11]];
    let window = meridian::dnssec::Window {
        inception: 1_800_000_000,
        expiration: 1_801_000_000,
    };
    for (label, alg) in [
        (
            "sign an A RRset, ECDSAP256SHA256",
            meridian::dnssec::key::ECDSAP256SHA256,
        ),
        ("sign an A RRset, ED25519", meridian::dnssec::key::ED25519),
    ] {
        let (key, _) = meridian::dnssec::SigningKey::generate(&zone, alg, true, 0).expect("key");
        group.bench_function(label, |b| {
            b.iter(|| {
                meridian::dnssec::sign_rrset(&key, &zone, &owner, (rtype::A, 300, &rdata), window)
            })
        });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = signed_snapshot(dir.path());
    let health = snapshot.initial_health.clone();
    let mut response = vec![0u8; MAX_MESSAGE];
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let with_do = |name: &str, qtype: u16, ecs: Option<(IpAddr, u8)>| {
        let mut q = build_query(0x4242, &wire(name), qtype, true, ecs);
        // DO: the top flag bit in the OPT record's TTL field.
        let at = 12 + wire(name).len() + 4 + 7;
        q[at] |= 0x80;
        q
    };
    let eu = Some((IpAddr::V4(Ipv4Addr::new(81, 2, 69, 0)), 24));
    for (label, query) in [
        (
            "DO static A",
            with_do("static.example.com.", rtype::A, None),
        ),
        ("DO NXDOMAIN", with_do("nope.example.com.", rtype::A, None)),
        ("DO NODATA", with_do("static.example.com.", rtype::MX, None)),
        (
            "DO wildcard",
            with_do("x.apps.example.com.", rtype::A, None),
        ),
        ("DO geo A, ECS", with_do("www.example.com.", rtype::A, eu)),
    ] {
        let n = engine::answer(
            &snapshot,
            &health,
            None,
            &Request::new(&query, local, Transport::Udp),
            &mut response,
        )
        .unwrap_or_else(|| panic!("{label}: no response"));
        // Signed: at least one RRSIG (type 46) in the response.
        assert!(
            response[..n].windows(2).any(|w| w == [0, 46]),
            "{label}: no signature in the answer"
        );
        group.bench_function(label, |b| {
            b.iter(|| {
                engine::answer(
                    black_box(&snapshot),
                    &health,
                    None,
                    &Request::new(black_box(&query), local, Transport::Udp),
                    &mut response,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_dnssec);
criterion_main!(benches);
