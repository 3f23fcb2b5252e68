//! Pre-rendered static answers (server::prerender) against the general answer path: for every
//! name the direct table holds and many query types, in mixed case, with and without EDNS,
//! NSID and ECS, over UDP and TCP sizes, the response must be the same bytes whether it was
//! rendered at load or written per query.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use meridian::dns::MAX_MESSAGE;
use meridian::dns::wire::build_query;
use meridian::dns::{Transport, rtype};
use meridian::engine::Snapshot;
use meridian::engine::prerender::StaticAnswers;
use meridian::engine::{self, Request};
use meridian::health::HealthView;

/// Extra zone: what the shipped example lacks (a large RRset, chains that end in NXDOMAIN,
/// in a dynamic name, in a loop, out of the zone; glue for MX and SRV).
const EXTRA_ZONE: &str = "\
$ORIGIN render.test.
$TTL 60
@        IN SOA ns1 hostmaster 7 3600 600 86400 30
         IN NS  ns1
         IN MX  10 mx1
         IN MX  20 mx2
ns1      IN A   192.0.2.1
mx1      IN A   192.0.2.2
         IN AAAA 2001:db8::2
mx2      IN A   192.0.2.3
big      IN TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"1123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"2123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"3123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"4123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"5123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"6123456789012345678901234567890123456789012345678901234567890123456789\"
         IN TXT \"7123456789012345678901234567890123456789012345678901234567890123456789\"
to-nothing IN CNAME nothing
to-geo   IN CNAME geo
loop1    IN CNAME loop2
loop2    IN CNAME loop1
chain    IN CNAME alias2
alias2   IN CNAME mx1
away     IN CNAME elsewhere.example.org.
_x._tcp  IN SRV 0 5 443 mx1
";

const EXTRA_CONFIG: &str = r#"
zones_dir = "zones"
[geoip]
databases = ["GEOIP"]
"#;

const EXTRA_DYNAMIC: &str = r#"
[datacenters]
fra = {}
nyc = {}
[pools.web]
endpoints = [
  { id = "fra-1", datacenter = "fra", address = "192.0.2.80" },
  { id = "nyc-1", datacenter = "nyc", address = "198.51.100.80" },
]
[geo_maps.world]
default = ["fra", "nyc"]
[geo_maps.world.map]
"NA" = ["nyc", "fra"]
[names.geo]
pool = "web"
policy = "geo"
map = "world"
ttl = 30
"#;

use crate::common::{load_snapshot as load, mixed_case};

/// The shipped example and the extra zone, each as a snapshot.
fn snapshots() -> (Vec<Snapshot>, tempfile::TempDir) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    std::fs::write(dir.path().join("zones/render.test.zone"), EXTRA_ZONE).expect("zone");
    std::fs::write(dir.path().join("zones/render.test.toml"), EXTRA_DYNAMIC).expect("names");
    let geoip = root.join("geoip/demo-city.mmdb");
    let text = EXTRA_CONFIG.replace("GEOIP", &geoip.display().to_string());
    std::fs::write(dir.path().join("meridian.toml"), text).expect("config");
    let shipped = load(&root.join("meridian.toml"));
    let extra = load(&dir.path().join("meridian.toml"));
    (vec![shipped, extra], dir)
}

/// The same snapshot with nothing rendered: every query takes the general path.
fn without_rendering(path: &Path) -> Snapshot {
    let mut s = load(path);
    s.static_answers = StaticAnswers::default();
    s
}

const QTYPES: [u16; 17] = [
    rtype::A,
    rtype::AAAA,
    rtype::NS,
    rtype::CNAME,
    rtype::SOA,
    rtype::MX,
    rtype::TXT,
    rtype::SRV,
    257, // CAA
    rtype::PTR,
    rtype::DNAME,
    rtype::DS,
    rtype::ANY,
    13, // HINFO
    44, // SSHFP
    52, // TLSA
    65, // HTTPS
];

#[test]
fn rendered_answers_are_byte_identical_to_the_general_path() {
    let (rendered, dir) = snapshots();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plain = [
        without_rendering(&root.join("meridian.toml")),
        without_rendering(&dir.path().join("meridian.toml")),
    ];
    let (mut compared, mut from_rendered) = (0usize, 0usize);
    for (with, without) in rendered.iter().zip(plain.iter()) {
        let (c, r) = compare_with_general_path(with, without, &QTYPES);
        compared += c;
        from_rendered += r;
    }
    eprintln!("{compared} responses compared, {from_rendered} name/type pairs rendered");
    assert!(from_rendered > 20, "too few rendered: {from_rendered}");
}

/// Asks `with` and `without` (the same data, without rendered answers) every direct name
/// with each of `qtypes`, several ways: the responses must be the same bytes. Returns the
/// responses compared and the name/type pairs that had a rendered answer.
fn compare_with_general_path(
    with: &Snapshot,
    without: &Snapshot,
    qtypes: &[u16],
) -> (usize, usize) {
    let health = HealthView::all_up();
    let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let london = Some((IpAddr::V4(Ipv4Addr::new(81, 2, 69, 0)), 24));
    let mut seed = 7u64;
    let (mut compared, mut from_rendered) = (0usize, 0usize);
    let mut a = vec![0u8; MAX_MESSAGE];
    let mut b = vec![0u8; MAX_MESSAGE];
    {
        let (answers, bytes) = with.static_answers.size();
        assert!(answers > 0 && bytes > 0, "nothing was rendered");
        let names: Vec<Vec<u8>> = with
            .zones
            .direct_entries()
            // Dynamic names may draw at random (weighted policies): two snapshots need
            // not agree on them, and they are never rendered.
            .filter(|(_, _, _, node)| node.dynamic().is_none())
            .map(|(_, _, owner, _)| owner.to_vec())
            .collect();
        assert!(names.len() > 5, "too few direct names: {}", names.len());
        for name in &names {
            for &qtype in qtypes {
                if let Some((zone, meridian::zone::Found::Exact(d))) =
                    with.zones.lookup(name, qtype)
                    && with
                        .static_answers
                        .get(zone, d.entry, name.len(), qtype)
                        .is_some()
                {
                    from_rendered += 1;
                }
                for (edns, ecs, transport) in [
                    (false, None, Transport::Udp),
                    (true, None, Transport::Udp),
                    (true, london, Transport::Udp),
                    (false, None, Transport::Tcp),
                ] {
                    let qname = mixed_case(name, &mut seed);
                    let mut query = build_query(0x1234, &qname, qtype, edns, ecs);
                    if !edns && ecs.is_none() {
                        // No EDNS: the 512-byte limit applies.
                        assert_eq!(query.len(), 12 + qname.len() + 4);
                    }
                    query[3] |= 0x10; // CD, copied to the response
                    let la = engine::answer(
                        with,
                        &health,
                        None,
                        &Request::new(&query, source, transport),
                        &mut a,
                    );
                    let lb = engine::answer(
                        without,
                        &health,
                        None,
                        &Request::new(&query, source, transport),
                        &mut b,
                    );
                    let (Some(la), Some(lb)) = (la, lb) else {
                        panic!("no answer for {qname:?} type {qtype}");
                    };
                    assert_eq!(
                        a[..la],
                        b[..lb],
                        "{qname:?} type {qtype} edns {edns} ecs {ecs:?} {transport:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    (compared, from_rendered)
}

#[test]
fn what_is_rendered_and_what_is_not() {
    let (snapshots, _dir) = snapshots();
    let extra = &snapshots[1];
    let wire = crate::common::wire_name;
    let rendered = |name: &str, qtype: u16| {
        let key = wire(name);
        match extra.zones.lookup(&key, qtype) {
            Some((zone, meridian::zone::Found::Exact(d))) => {
                extra.static_answers.get(zone, d.entry, key.len(), qtype)
            }
            _ => None,
        }
    };
    // Static data, chains that stay static (even to NXDOMAIN), glue.
    let mx = rendered("render.test", rtype::MX).expect("apex MX rendered");
    assert_eq!(
        mx.counts,
        [2, 0, 3],
        "two MX, glue A+AAAA for mx1 and A for mx2"
    );
    let chain = rendered("chain.render.test", rtype::A).expect("static chain rendered");
    assert_eq!(chain.counts[0], 3, "two CNAMEs and the A");
    let nothing = rendered("to-nothing.render.test", rtype::A).expect("chain to NXDOMAIN");
    assert_eq!(nothing.rcode, 3);
    assert!(rendered("loop1.render.test", rtype::A).is_some());
    assert!(rendered("big.render.test", rtype::TXT).is_some());
    // Not rendered: dynamic names and chains into them, types a name lacks, ANY.
    assert!(rendered("geo.render.test", rtype::A).is_none());
    assert!(rendered("to-geo.render.test", rtype::A).is_none());
    // NODATA for a type the name lacks: the SOA in authority, one copy for equal lengths.
    let nodata = rendered("mx2.render.test", rtype::AAAA).expect("NODATA rendered");
    assert_eq!((nodata.counts, nodata.rcode), ([0, 1, 0], 0));
    let other = rendered("mx1.render.test", rtype::TXT).expect("NODATA rendered");
    assert_eq!(
        nodata.body.as_ptr(),
        other.body.as_ptr(),
        "shared NODATA body"
    );
    let apex = rendered("render.test", rtype::TXT).expect("NODATA at the apex");
    assert_ne!(
        nodata.body, apex.body,
        "the SOA pointers differ with the name's length"
    );
    // A CNAME answers for CNAME, A and AAAA only: other types follow the chain per query.
    assert!(rendered("chain.render.test", rtype::TXT).is_none());
    assert!(rendered("render.test", rtype::ANY).is_none());
}

#[test]
fn a_rendered_body_too_large_for_the_client_falls_back_to_truncation() {
    let (snapshots, _dir) = snapshots();
    let extra = &snapshots[1];
    let health = HealthView::all_up();
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let query = build_query(1, b"\x03big\x06render\x04test\x00", rtype::TXT, false, None);
    let mut buf = vec![0u8; MAX_MESSAGE];
    let len = engine::answer(
        extra,
        &health,
        None,
        &Request::new(&query, source, Transport::Udp),
        &mut buf,
    )
    .expect("an answer");
    assert!(len <= 512, "{len} bytes over UDP without EDNS");
    assert_ne!(buf[2] & 0x02, 0, "TC set");
    let len = engine::answer(
        extra,
        &health,
        None,
        &Request::new(&query, source, Transport::Tcp),
        &mut buf,
    )
    .expect("an answer");
    assert!(len > 512);
    assert_eq!(
        u16::from_be_bytes([buf[6], buf[7]]),
        8,
        "all eight TXT over TCP"
    );
    assert_eq!(buf[2] & 0x02, 0, "no TC over TCP");
}

#[test]
fn prerender_off_renders_nothing_and_answers_the_same() {
    let (snapshots, dir) = snapshots();
    let on = &snapshots[1];
    let path = dir.path().join("meridian.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, format!("{text}\n[server]\nprerender = false\n")).expect("config");
    let off = load(&path);
    assert_eq!(off.static_answers.size(), (0, 0));
    assert!(on.static_answers.size().0 > 0);
    let health = HealthView::all_up();
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let query = build_query(9, b"\x03mx1\x06render\x04test\x00", rtype::AAAA, true, None);
    let (mut a, mut b) = (vec![0u8; MAX_MESSAGE], vec![0u8; MAX_MESSAGE]);
    let la = engine::answer(
        on,
        &health,
        None,
        &Request::new(&query, source, Transport::Udp),
        &mut a,
    )
    .expect("answer");
    let lb = engine::answer(
        &off,
        &health,
        None,
        &Request::new(&query, source, Transport::Udp),
        &mut b,
    )
    .expect("answer");
    assert_eq!(a[..la], b[..lb]);
}

/// Signed: the answers rendered for DO queries (signatures and proofs included) are the
/// bytes the general path writes, for every direct name and many types.
#[test]
fn rendered_dnssec_answers_are_byte_identical_to_the_general_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("zones")).expect("zones dir");
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys dir");
    std::fs::write(dir.path().join("zones/render.test.zone"), EXTRA_ZONE).expect("zone");
    std::fs::write(dir.path().join("zones/render.test.toml"), EXTRA_DYNAMIC).expect("names");
    let zone = b"\x06render\x04test\x00";
    let (key, secret) = meridian::dnssec::SigningKey::generate(
        zone,
        meridian::dnssec::key::ECDSAP256SHA256,
        true,
        0,
    )
    .expect("key");
    meridian::config::dnssec::write_key(&dir.path().join("keys"), &key, &secret)
        .expect("key files");
    let geoip = root.join("geoip/demo-city.mmdb");
    let text = format!(
        "{}\n[dnssec]\nkey_dir = \"keys\"\nzones = [\"render.test\"]\n",
        EXTRA_CONFIG.replace("GEOIP", &geoip.display().to_string())
    );
    std::fs::write(dir.path().join("meridian.toml"), text).expect("config");
    let mut snap = load(&dir.path().join("meridian.toml"));
    let (answers, _) = snap.static_answers_dnssec.size();
    assert!(answers > 10, "too few DO answers rendered: {answers}");
    let health = snap.initial_health.clone();
    let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let names: Vec<Vec<u8>> = snap
        .zones
        .direct_entries()
        .filter(|(_, _, _, node)| node.dynamic().is_none())
        .map(|(_, _, owner, _)| owner.to_vec())
        .collect();
    let mut seed = 11u64;
    let mut queries = Vec::new();
    for name in &names {
        for qtype in QTYPES {
            for transport in [Transport::Udp, Transport::Tcp] {
                let qname = mixed_case(name, &mut seed);
                let mut query = build_query(0x1234, &qname, qtype, true, None);
                // DO: the top flag bit in the OPT record's TTL field.
                query[12 + qname.len() + 4 + 7] |= 0x80;
                queries.push((qname, qtype, transport, query));
            }
        }
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut answer_all = |snap: &Snapshot| -> Vec<Vec<u8>> {
        queries
            .iter()
            .map(|(_, _, transport, q)| {
                let n = engine::answer(
                    snap,
                    &health,
                    None,
                    &Request::new(q, source, *transport),
                    &mut buf,
                )
                .expect("an answer");
                buf[..n].to_vec()
            })
            .collect()
    };
    let rendered = answer_all(&snap);
    snap.static_answers = StaticAnswers::default();
    snap.static_answers_dnssec = StaticAnswers::default();
    let general = answer_all(&snap);
    let mut signed = 0;
    for ((qname, qtype, transport, _), (a, b)) in queries.iter().zip(rendered.iter().zip(&general))
    {
        assert_eq!(a, b, "{qname:?} type {qtype} {transport:?}");
        if a.windows(2).any(|w| w == [0, 46]) {
            signed += 1;
        }
    }
    assert!(
        signed > queries.len() / 2,
        "only {signed} of {} carry RRSIGs",
        queries.len()
    );
}

/// Zones big enough to be rendered on several threads (shares that cross from one zone into
/// the next, names of five lengths per digit count, CNAMEs, the SOA's MNAME): every name
/// answers the same bytes rendered or written per query, NODATA included.
#[test]
fn zones_rendered_on_several_threads_answer_like_the_general_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    let name = |i: usize| format!("n{i}{}", "x".repeat(i % 5));
    let mut names = Vec::new();
    for z in 0..2 {
        let origin = format!("big{z}.test.");
        let mut text = format!(
            "$ORIGIN {origin}\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 30\n  IN NS ns1\n\
             ns1 IN A 192.0.2.1\n"
        );
        for i in 0..12_500 {
            let n = name(i);
            if i % 11 == 0 {
                text.push_str(&format!("{n} IN CNAME {}\n", name(i + 1)));
            } else {
                text.push_str(&format!(
                    "{n} IN A 10.{}.{}.{}\n",
                    z,
                    i / 256 % 256,
                    i % 256
                ));
                if i % 3 == 0 {
                    text.push_str(&format!("{n} IN AAAA 2001:db8::{i:x}\n"));
                }
                if i % 5 == 0 {
                    text.push_str(&format!("{n} IN TXT \"t{i}\"\n"));
                }
                if i % 13 == 0 {
                    text.push_str(&format!("{n} IN MX 10 ns1\n"));
                }
            }
            names.push(format!("{n}.{origin}"));
        }
        names.push(format!("ns1.{origin}"));
        let file = dir.path().join(format!("zones/big{z}.test.zone"));
        std::fs::write(file, text).expect("zone");
    }
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "zones_dir = \"zones\"\n").expect("config");
    let with = load(&config);
    let without = without_rendering(&config);
    let mut from_rendered = 0;
    for text in &names {
        let wire = crate::common::wire_name(text);
        for qtype in [
            rtype::A,
            rtype::AAAA,
            rtype::TXT,
            rtype::MX,
            rtype::CNAME,
            rtype::NS,
            13,
        ] {
            if let Some((zone, meridian::zone::Found::Exact(d))) = with.zones.lookup(&wire, qtype)
                && with
                    .static_answers
                    .get(zone, d.entry, wire.len(), qtype)
                    .is_some()
            {
                from_rendered += 1;
            }
            let query = build_query(0x4242, &wire, qtype, true, None);
            assert_same_answer(&with, &without, &query, &format!("{text} type {qtype}"));
        }
    }
    // Every name's own types and its NODATA (CNAMEs: their three) came from the rendering.
    assert!(from_rendered >= names.len() * 3, "rendered {from_rendered}");
}

/// A zone of 6000 hosts with serial `serial`; host `changed` has another address.
fn hosts_zone(serial: u32, changed: u32) -> String {
    let mut z = format!(
        "$ORIGIN hosts.test.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} 3600 600 86400 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    );
    for i in 0..6000u32 {
        let last = if i == changed { 200 } else { i % 200 };
        z.push_str(&format!("h{i} IN A 10.0.{}.{last}\n", i / 200));
        if i % 3 == 0 {
            z.push_str(&format!("h{i} IN TXT \"host {i}\"\n"));
        }
    }
    z
}

#[test]
fn a_reload_keeps_the_blocks_that_render_the_same_and_renders_what_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "zones_dir = \"zones\"\n").expect("config");
    let zone = dir.path().join("zones/hosts.test.zone");
    std::fs::write(&zone, hosts_zone(1, u32::MAX)).expect("zone");
    let first = load(&config);
    // The serial bumped (the apex's block renders anew) and one host changed (its block).
    std::fs::write(&zone, hosts_zone(2, 1500)).expect("zone");
    let second = match meridian::config::reload(&config, &first) {
        Ok(loaded) => loaded.snapshot,
        Err(e) => panic!("reload: {e:?}"),
    };
    let (kept, blocks) = second
        .static_answers
        .blocks_shared_with(&first.static_answers);
    assert!(blocks >= 6, "{blocks} blocks");
    assert_eq!(
        kept,
        blocks - 2,
        "all but the apex's and h1500's block kept"
    );
    let (zones_kept, chunks) = second.zones.zones()[0].chunks_shared_with(&first.zones.zones()[0]);
    assert_eq!(
        zones_kept,
        chunks - 2,
        "all but the apex's and h1500's chunk kept"
    );
    // The answers, kept or rendered anew, are those of the new data.
    let mut without = load(&config);
    without.static_answers = StaticAnswers::default();
    let (compared, from_rendered) = compare_with_general_path(
        &second,
        &without,
        &[rtype::A, rtype::TXT, rtype::SOA, rtype::MX],
    );
    assert!(
        from_rendered > 20_000,
        "{from_rendered} rendered of {compared}"
    );
    let name = crate::common::wire_name("h1500.hosts.test");
    let rendered_a = |snapshot: &Snapshot| {
        let Some((zi, meridian::zone::Found::Exact(d))) = snapshot.zones.lookup(&name, rtype::A)
        else {
            panic!("h1500 not found");
        };
        let a = snapshot
            .static_answers
            .get(zi, d.entry, name.len(), rtype::A);
        a.expect("rendered").body.to_vec()
    };
    let new = rendered_a(&second);
    assert!(new.ends_with(&[10, 0, 7, 200]), "the new address: {new:?}");
    // The old snapshot still answers with the old data.
    let old = rendered_a(&first);
    assert!(old.ends_with(&[10, 0, 7, 100]), "the old address: {old:?}");
}

/// Wildcards of every kind: address records only (answered from the wildcard's rendered
/// answer, whatever the name), and ones whose answers hold other names or a chain (answered
/// per query).
const WILDCARD_ZONE: &str = "\
$ORIGIN wild.test.
$TTL 60
@        IN SOA ns1 hostmaster 3 3600 600 86400 30
         IN NS  ns1
ns1      IN A   192.0.2.1
www      IN A   192.0.2.10
*        IN A   192.0.2.50
*.web    IN A   192.0.2.11
         IN A   192.0.2.12
         IN AAAA 2001:db8::11
         IN TXT \"web wildcard\"
*.mail   IN MX  10 mx.mail
mx.mail  IN A   192.0.2.25
*.alias  IN CNAME www
*.away   IN CNAME elsewhere.example.org.
*.deep.a.b IN TXT \"deep\"
";

/// A name that does not exist, under a wildcard: the response is the same bytes whether it
/// came from the wildcard's rendered answer or was written per query, for labels of every
/// length, in mixed case, below the wildcard by one label or several, with and without EDNS.
#[test]
fn wildcard_answers_from_the_rendered_ones_are_byte_identical_to_the_general_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("wild.test.zone"), WILDCARD_ZONE).expect("zone");
    let config = dir.path().join("meridian.toml");
    std::fs::write(
        &config,
        "[[zone]]\norigin = \"wild.test.\"\nfile = \"wild.test.zone\"\n",
    )
    .expect("config");
    let (with, without) = (load(&config), without_rendering(&config));
    let mut seed = 11u64;
    let (mut compared, mut any_name) = (0usize, 0usize);
    let labels = ["x", "host-17", &"l".repeat(63), "a.b.c", "Mixed.Case"];
    for parent in ["", "web.", "mail.", "alias.", "away.", "deep.a.b."] {
        for label in labels {
            let text = format!("{label}.{parent}wild.test.");
            let name = crate::common::wire_name(&text);
            for &qtype in &QTYPES {
                if let Some((zone, meridian::zone::Found::Absent(Some(w)))) =
                    with.zones.lookup(&name.to_ascii_lowercase(), qtype)
                    && with
                        .static_answers
                        .get(zone, w.entry, name.len(), qtype)
                        .is_some_and(|r| r.any_name)
                {
                    any_name += 1;
                }
                for edns in [false, true] {
                    let qname = mixed_case(&name, &mut seed);
                    let query = build_query(0x2b2b, &qname, qtype, edns, None);
                    let what = format!("{text} type {qtype} edns {edns}");
                    assert_same_answer(&with, &without, &query, &what);
                    compared += 1;
                }
            }
        }
    }
    eprintln!("{compared} responses compared, {any_name} from a wildcard's rendered answer");
    // A, AAAA and TXT under `*.web`, A under `*`, TXT under `*.deep.a.b`, for each label.
    assert!(
        any_name >= labels.len() * 5,
        "{any_name} answered from a wildcard's rendered answer"
    );
}

/// Asks `with` and `without` (the same data, rendered and not) `query`, all up, over UDP:
/// the responses must be the same bytes. `what` names the question when they are not.
fn assert_same_answer(with: &Snapshot, without: &Snapshot, query: &[u8], what: &str) {
    let health = HealthView::all_up();
    let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let (mut a, mut b) = (vec![0u8; MAX_MESSAGE], vec![0u8; MAX_MESSAGE]);
    let request = Request::new(query, source, Transport::Udp);
    let la = engine::answer(with, &health, None, &request, &mut a);
    let lb = engine::answer(without, &health, None, &request, &mut b);
    let (Some(la), Some(lb)) = (la, lb) else {
        panic!("no answer for {what}");
    };
    assert_eq!(a[..la], b[..lb], "{what}");
}
