//! The UDP answer cache (server::answer_cache) against the uncached answer path, on the
//! shipped example: for every name it holds (static and dynamic) and a few it does not
//! (NXDOMAIN, wildcard, DNAME, the child zone, not ours), many types, mixed case, with and
//! without EDNS and ECS from several networks of both families, the response must be the same
//! bytes whether it was written for the query or copied from the cache, also after the
//! health view changed. Answers drawn at random must stay random.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use meridian::engine::Snapshot;

use crate::common::{load_snapshot, mixed_case, wire_name as wire};
use meridian::dns::MAX_MESSAGE;
use meridian::dns::wire::build_query;
use meridian::dns::{Transport, rtype};
use meridian::engine::AnswerCache;
use meridian::engine::{self, Request};
use meridian::health::HealthView;
use std::sync::atomic::Ordering;

fn shipped() -> Snapshot {
    load_snapshot(&Path::new(env!("CARGO_MANIFEST_DIR")).join("meridian.toml"))
}

const QTYPES: [u16; 8] = [
    rtype::A,
    rtype::AAAA,
    rtype::CNAME,
    rtype::MX,
    rtype::SOA,
    rtype::TXT,
    rtype::NS,
    rtype::ANY,
];

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// Asks `query` four times, each time with another ID and, from the second on, its name
/// (`name`, lowercase) in another case drawn from `seed` (a miss that may store, maybe a
/// hit from a slot that may keep the response whole, then maybe replays of it): each answer
/// through `cache` must be the same bytes as the uncached answer to the same query.
fn cached_and_not(
    snapshot: &Snapshot,
    health: &HealthView,
    cache: &mut AnswerCache,
    query: &[u8],
    source: IpAddr,
    (name, seed): (&[u8], &mut u64),
) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut run = |cached: Option<&mut AnswerCache>, query: &[u8]| -> Vec<u8> {
        let request = Request::new(query, source, Transport::Udp);
        let n = match cached {
            Some(c) => engine::answer(snapshot, health, Some(c), &request, &mut buf),
            None => engine::answer(snapshot, health, None, &request, &mut buf),
        }
        .expect("an answer");
        buf[..n].to_vec()
    };
    let mut query = query.to_vec();
    for ask in 0..4u16 {
        // Each ask with its own ID, and from the second on with the name in a case of its
        // own (a 0x20 resolver): the fourth is replayed whole from the third's.
        query[..2].copy_from_slice(&(0x1000 + ask).to_be_bytes());
        if ask > 0 {
            query[12..12 + name.len()].copy_from_slice(&mixed_case(name, seed));
        }
        let plain = run(None, &query);
        let answer = run(Some(&mut *cache), &query);
        assert_eq!(answer, plain, "ask {ask} of {query:?} from {source}");
    }
}

#[test]
fn cached_answers_are_byte_identical_to_the_uncached_path() {
    let snapshot = shipped();
    // Names drawn at random answer differently query by query: the cache must not keep
    // them (the other test), and they cannot be compared here.
    let random_name = |node: &meridian::zone::Node| {
        node.dynamic()
            .and_then(|i| snapshot.routing.names.get(i as usize))
            .is_some_and(|n| n.draws_at_random())
    };
    let random = snapshot
        .zones
        .direct_entries()
        .filter(|(_, _, _, node)| random_name(node))
        .count();
    assert!(random > 0, "the example has no random names");
    let mut names: Vec<Vec<u8>> = snapshot
        .zones
        .direct_entries()
        .filter(|(_, _, _, node)| !random_name(node))
        .map(|(_, _, owner, _)| owner.to_vec())
        .collect();
    assert!(names.len() > 10, "too few names: {}", names.len());
    for extra in [
        "nothing.example.com.",
        "foo.apps.example.com.",
        "deep.er.apps.example.com.",
        "x.old.example.com.",
        "www.sub.example.com.",
        "a.b.sub.example.com.",
        "www.example.org.",
    ] {
        names.push(wire(extra));
    }
    let clients: [(IpAddr, Option<(IpAddr, u8)>); 7] = [
        (v4(192, 0, 2, 99), None),
        (v4(81, 2, 69, 7), None),
        (v4(127, 0, 0, 1), Some((v4(81, 2, 69, 0), 24))),
        (v4(127, 0, 0, 1), Some((v4(8, 8, 8, 0), 24))),
        (v4(127, 0, 0, 1), Some((v4(1, 0, 16, 0), 20))),
        (
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            Some((IpAddr::V6("2a00:23c0::".parse().expect("v6")), 32)),
        ),
        (v4(127, 0, 0, 1), Some((v4(0, 0, 0, 0), 0))),
    ];
    let all_up = HealthView::all_up();
    // Every endpoint and group down: fail-open, fallback and NODATA answers instead.
    let down = HealthView::new(vec![false; 64], vec![false; 64], snapshot.generation);
    let mut cache = AnswerCache::new(4096).expect("cache");
    let mut compared = 0usize;
    let mut seed = 11u64;
    for health in [&all_up, &down, &all_up] {
        for name in &names {
            for qtype in QTYPES {
                for &(source, ecs) in &clients {
                    for edns in [false, true] {
                        let ecs = if edns { ecs } else { None };
                        let mut query =
                            build_query(0x4321, &mixed_case(name, &mut seed), qtype, edns, ecs);
                        query[2] |= 0x01; // RD, copied to the response
                        let name = (name.as_slice(), &mut seed);
                        cached_and_not(&snapshot, health, &mut cache, &query, source, name);
                        compared += 1;
                    }
                }
            }
        }
    }
    let stats = cache.stats();
    let (hits, misses, stores, whole) = (
        stats.hits.load(Ordering::Relaxed),
        stats.misses.load(Ordering::Relaxed),
        stats.stores.load(Ordering::Relaxed),
        stats.whole.load(Ordering::Relaxed),
    );
    eprintln!(
        "{compared} compared, {random} random; cache {hits} hits ({whole} whole), {misses} misses, {stores} stored"
    );
    assert!(compared > 2000, "too few compared: {compared}");
    // Most later asks hit; every health view change starts over. A response is kept whole
    // the second time a slot answers its bytes, so the fourth ask replays it.
    assert!(hits > compared as u64 * 2, "too few hits: {hits}");
    assert!(whole > compared as u64 / 2, "too few whole: {whole}");
    assert!(
        stores > 100 && misses > stores,
        "stores {stores}, misses {misses}"
    );
}

/// An address inside one of the demo GeoIP database's networks (or anywhere), drawn from
/// `seed`: networks of every continent, so that the tables map them to many orders.
fn demo_address(seed: &mut u64) -> IpAddr {
    let csv = include_str!("../../geoip/demo-city.csv");
    let nets: Vec<ipnet::IpNet> = csv
        .lines()
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect();
    assert!(
        nets.len() > 30,
        "the demo database lists {} networks",
        nets.len()
    );
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let r = *seed >> 16;
    let Some(net) = nets.get(r as usize % (nets.len() + 8)) else {
        // Anywhere: mostly outside every network (the tables' default order).
        return v4(
            (r >> 8) as u8,
            (r >> 16) as u8,
            (r >> 24) as u8,
            (r >> 32) as u8,
        );
    };
    let host = u128::from(r >> 8) * 0x9E37_79B9_7F4A_7C15;
    match net {
        ipnet::IpNet::V4(n) => {
            let free = 32 - u32::from(n.prefix_len());
            let bits = u32::from(n.network())
                | (host as u32 & u32::MAX.checked_shr(32 - free).unwrap_or(0));
            IpAddr::V4(Ipv4Addr::from(bits))
        }
        ipnet::IpNet::V6(n) => {
            let free = 128 - u32::from(n.prefix_len());
            let mask = u128::MAX.checked_shr(128 - free).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(
                u128::from(n.network()) | (host << 64 | host) & mask,
            ))
        }
    }
}

/// A table-driven name (geo, nearest, latency) is kept by the order its table maps the
/// client's network to: a network never seen before is answered from the cache, with the
/// scope of its own network, the same bytes as the uncached path, whether it is located by
/// its ECS address or by the packet's source (whose whole responses hold for its own
/// network only); with every datacenter up and with some down.
#[test]
fn table_driven_answers_are_kept_by_order_for_networks_never_seen() {
    let snapshot = shipped();
    let mut cache = AnswerCache::new(4096).expect("cache");
    let mut buf = vec![0u8; MAX_MESSAGE];
    let all_up = HealthView::all_up();
    let mut up = vec![true; 64];
    up[..4].fill(false);
    let some_down = HealthView::new(up.clone(), up, snapshot.generation);
    let (mut seed, mut case_seed) = (3u64, 5u64);
    let (mut first_asks, mut first_hits) = (0u64, 0u64);
    for health in [&all_up, &some_down] {
        for i in 0..500u32 {
            let addr = demo_address(&mut seed);
            let by_ecs = i % 3 != 0;
            let (source, ecs) = if by_ecs {
                let bits = if addr.is_ipv4() { 24 } else { 56 };
                let net = ipnet::IpNet::new(addr, bits).expect("a prefix").network();
                (v4(127, 0, 0, 1), Some((net, bits)))
            } else {
                (addr, None)
            };
            for name in ["www.example.com.", "near.example.com.", "fast.example.com."] {
                for qtype in [rtype::A, rtype::AAAA] {
                    let name = wire(name);
                    let query = build_query(0x77, &name, qtype, true, ecs);
                    let request = Request::new(&query, source, Transport::Udp);
                    let n = engine::answer(&snapshot, health, None, &request, &mut buf)
                        .expect("an answer");
                    let plain = buf[..n].to_vec();
                    let hits = cache.stats().hits.load(Ordering::Relaxed);
                    let n = engine::answer(&snapshot, health, Some(&mut cache), &request, &mut buf)
                        .expect("an answer");
                    assert_eq!(buf[..n], plain[..], "{addr} {ecs:?} {qtype}: first ask");
                    first_asks += 1;
                    first_hits += cache.stats().hits.load(Ordering::Relaxed) - hits;
                    if i % 10 == 0 {
                        cached_and_not(
                            &snapshot,
                            health,
                            &mut cache,
                            &query,
                            source,
                            (&name, &mut case_seed),
                        );
                    }
                }
            }
        }
    }
    eprintln!("{first_hits} of {first_asks} first asks of a network answered from the cache");
    // Three names, two types, a few orders each, two health views: the answers decided
    // afresh are a few dozen; by network, nearly every first ask would have missed.
    assert!(
        first_hits > first_asks * 9 / 10,
        "{first_hits} of {first_asks} first asks hit"
    );
}

/// A response kept whole is replayed only to sources in the network its answer was decided
/// for: the same query bytes from London, Tokyo and an IPv6 source, each asked twice in a
/// row (the second ask from the first of them replays), get their own answers.
#[test]
fn whole_responses_hold_for_their_source_network_only() {
    let snapshot = shipped();
    let health = HealthView::all_up();
    let mut cache = AnswerCache::new(1024).expect("cache");
    let query = build_query(5, &wire("www.example.com."), rtype::A, true, None);
    let sources = [
        v4(81, 2, 69, 7),
        v4(1, 0, 16, 1),
        IpAddr::V6("2a00:23c0::1".parse().expect("v6")),
    ];
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut plain = Vec::new();
    for &source in &sources {
        let request = Request::new(&query, source, Transport::Udp);
        let n = engine::answer(&snapshot, &health, None, &request, &mut buf).expect("answer");
        plain.push(buf[..n].to_vec());
    }
    assert_ne!(plain[0], plain[1], "London and Tokyo get the same answer");
    for round in 0..6 {
        for (source, expected) in sources.iter().zip(&plain) {
            for _ in 0..2 {
                let request = Request::new(&query, *source, Transport::Udp);
                let n = engine::answer(&snapshot, &health, Some(&mut cache), &request, &mut buf)
                    .expect("answer");
                assert_eq!(buf[..n], expected[..], "round {round} from {source}");
            }
        }
    }
    let whole = cache.stats().whole.load(Ordering::Relaxed);
    assert!(whole >= 6, "{whole} whole responses replayed");
    // The health changed (every datacenter down): the response kept last (for the last
    // source) is stale.
    let down = HealthView::new(vec![false; 64], vec![false; 64], snapshot.generation);
    let request = Request::new(&query, sources[2], Transport::Udp);
    let n = engine::answer(&snapshot, &down, None, &request, &mut buf).expect("answer");
    let expected = buf[..n].to_vec();
    assert_ne!(expected, plain[2], "the health change changes nothing");
    let n = engine::answer(&snapshot, &down, Some(&mut cache), &request, &mut buf).expect("answer");
    assert_eq!(buf[..n], expected[..], "replayed after the health changed");
}

#[test]
fn random_answers_stay_random_through_the_cache() {
    let snapshot = shipped();
    let health = HealthView::all_up();
    let mut cache = AnswerCache::new(256).expect("cache");
    let query = build_query(7, &wire("spread.example.com."), rtype::A, true, None);
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut seen = std::collections::BTreeSet::new();
    for entropy in 0..200u64 {
        let request = Request::new(&query, v4(10, 0, 0, 1), Transport::Udp)
            .with_entropy(entropy.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = engine::answer(&snapshot, &health, Some(&mut cache), &request, &mut buf)
            .expect("an answer");
        seen.insert(buf[..n].to_vec());
    }
    assert!(
        seen.len() >= 2,
        "a random-weighted name answered the same 200 times"
    );
    assert_eq!(cache.stats().hits.load(Ordering::Relaxed), 0);
}

#[test]
fn hits_count_in_the_zone_and_name_counters() {
    let snapshot = shipped();
    let health = HealthView::all_up();
    let mut cache = AnswerCache::new(256).expect("cache");
    let www = snapshot
        .routing
        .names
        .iter()
        .find(|n| n.owner[..] == wire("www.example.com.")[..])
        .expect("www is dynamic");
    let zone_total = || snapshot.zone_queries.iter().map(|c| c.get()).sum::<u64>();
    let name_total = || www.answers.iter().map(|c| c.get()).sum::<u64>();
    let (zone_before, name_before) = (zone_total(), name_total());
    let london = Some((v4(81, 2, 69, 0), 24));
    let query = build_query(9, &wire("www.example.com."), rtype::A, true, london);
    let mut buf = vec![0u8; MAX_MESSAGE];
    for _ in 0..50 {
        engine::answer(
            &snapshot,
            &health,
            Some(&mut cache),
            &Request::new(&query, v4(127, 0, 0, 1), Transport::Udp),
            &mut buf,
        )
        .expect("an answer");
    }
    assert_eq!(cache.stats().hits.load(Ordering::Relaxed), 49);
    assert_eq!(zone_total() - zone_before, 50);
    assert_eq!(name_total() - name_before, 50);
}

/// Admission: `flood(i)` for 20 values of `i`, names each asked once (answered with
/// `rcode`), stores nothing (they would push the hot entries out); `again`, asked twice, is
/// stored the second time and hit the third. Returns the server and its API address.
fn flood_stores_nothing_and_twice_stores(
    zone: &str,
    flood: &dyn Fn(u16) -> String,
    again: &str,
    rcode: u8,
) -> (crate::common::Server, std::net::SocketAddr) {
    use crate::common::{Server, metric, udp_raw};
    let s = Server::start(&[("example.com.zone", zone)], "");
    let api = s.api.expect("api");
    let cache = |result: &str| {
        metric(
            api,
            &format!("meridian_answer_cache_total{{result=\"{result}\"}}"),
        )
    };
    let before = cache("stored");
    for i in 0..20 {
        let q = build_query(i, &wire(&flood(i)), rtype::A, true, None);
        let r = udp_raw(s.addr, &q).expect("answer");
        assert_eq!(r[3] & 0x0f, rcode, "{}", flood(i));
    }
    assert_eq!(cache("stored"), before, "names asked once were cached");
    // Asked again (from one socket, so one thread sees every ask): stored the second time.
    let q = build_query(98, &wire(again), rtype::A, true, None);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    let hits = cache("hit");
    for _ in 0..3 {
        sock.send_to(&q, s.addr).expect("send");
        let mut buf = [0u8; 512];
        sock.recv_from(&mut buf).expect("answer");
        assert_eq!(buf[3] & 0x0f, rcode, "{again}");
    }
    assert_eq!(cache("stored"), before + 1, "{again} asked twice is stored");
    assert_eq!(
        cache("hit"),
        hits + 1,
        "{again} asked a third time is a hit"
    );
    (s, api)
}

/// A flood of nonexistent names stores nothing; one asked again is stored, as is an
/// existing name.
#[test]
fn nxdomain_answers_are_cached_only_when_asked_again() {
    use crate::common::{metric, udp_raw};
    let zone = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    let flood = |i| format!("x{i}.example.com.");
    let (s, api) = flood_stores_nothing_and_twice_stores(zone, &flood, "again.example.com.", 3);
    let stored = |api| metric(api, "meridian_answer_cache_total{result=\"stored\"}");
    let before = stored(api);
    let q = build_query(99, &wire("ns1.example.com."), rtype::A, true, None);
    for _ in 0..3 {
        assert!(udp_raw(s.addr, &q).is_some());
    }
    assert!(stored(api) > before, "a positive answer is cached");
}

/// The same for random labels under a wildcard, whose answer is the wildcard's rendered
/// one: a flood stores nothing, a name asked again is stored and then hit.
#[test]
fn wildcard_answers_are_cached_only_when_asked_again() {
    let zone = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n*.wild A 192.0.2.9\n";
    let flood = |i| format!("r{i}.wild.example.com.");
    flood_stores_nothing_and_twice_stores(zone, &flood, "again.wild.example.com.", 0);
}

/// Admission for a dynamic name's networks: a flood of ECS networks, each asking once,
/// stores nothing past the first network's slot and leaves the hot answers in place; a
/// network that asks again is stored, and then hits. `api` is kept by network (sticky per
/// /24); `www` (geo) by the order its table maps the network to, so the same flood stores
/// its order's answer once and is answered from it.
#[test]
fn an_ecs_network_flood_does_not_push_out_the_hot_answers() {
    let snapshot = shipped();
    let health = HealthView::all_up();
    let mut cache = AnswerCache::new(1024).expect("cache");
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut ask = |cache: &mut AnswerCache, name: &str, ecs: Option<(IpAddr, u8)>| {
        let query = build_query(9, &wire(name), rtype::A, true, ecs);
        engine::answer(
            &snapshot,
            &health,
            Some(cache),
            &Request::new(&query, v4(127, 0, 0, 1), Transport::Udp),
            &mut buf,
        )
        .expect("an answer");
    };
    let stats = |c: &AnswerCache| {
        let s = c.stats();
        (
            s.hits.load(Ordering::Relaxed),
            s.stores.load(Ordering::Relaxed),
        )
    };
    // The hot answers: a static name and the dynamic names for London.
    let london = Some((v4(81, 2, 69, 0), 24));
    for _ in 0..2 {
        ask(&mut cache, "ns1.example.com.", None);
        ask(&mut cache, "api.example.com.", london);
        ask(&mut cache, "www.example.com.", london);
    }
    let (hits, stores) = stats(&cache);
    assert_eq!((hits, stores), (3, 3), "the hot answers kept");
    // 3,000 networks (three times the slots), each asking once.
    let flood = |i: u32| Some((v4(10, (i >> 8) as u8, i as u8, 0), 24));
    for i in 0..3000u32 {
        ask(&mut cache, "api.example.com.", flood(i));
    }
    // Only the admission filter's false positives get in (one bit per network in 64 Ki:
    // about 2% at this count), not the 3,000 answers that would fill the cache thrice.
    let (flood_hits, flooded) = stats(&cache);
    assert!(
        flooded - stores < 150,
        "{} one-time networks stored",
        flooded - stores
    );
    // The same networks (all in 10.0.0.0/8) map to one order of `www`'s table: stored the
    // second time, then hits.
    for i in 0..3000u32 {
        ask(&mut cache, "www.example.com.", flood(i));
    }
    let (www_hits, www_stores) = stats(&cache);
    assert_eq!(www_stores, flooded + 1, "the flood's order stored once");
    assert_eq!(www_hits, flood_hits + 2998, "and every later network hits");
    let (hits, stores) = (www_hits, www_stores);
    ask(&mut cache, "ns1.example.com.", None);
    ask(&mut cache, "api.example.com.", london);
    ask(&mut cache, "www.example.com.", london);
    assert_eq!(stats(&cache).0, hits + 3, "the hot answers were pushed out");
    // A network that asks again is kept from its second question on.
    let tokyo = Some((v4(1, 0, 16, 0), 24));
    for _ in 0..3 {
        ask(&mut cache, "api.example.com.", tokyo);
    }
    let (after_hits, after_stores) = stats(&cache);
    assert_eq!(
        after_stores,
        stores + 1,
        "a returning network is stored once"
    );
    assert_eq!(after_hits, hits + 4, "and hit on its third question");
}

/// Over real sockets: a query asked four times from one socket gets the same answer with its
/// own ID each time, the fourth a whole response replayed (`result="whole"`); the same name
/// in other cases is replayed whole at once, with its own spelling. With a COOKIE option
/// (see the next test), each replay carries a server cookie made for it.
#[test]
fn a_repeated_query_is_replayed_whole() {
    use crate::common::{Server, metric};
    let zone = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    let s = Server::start(&[("example.com.zone", zone)], "");
    let api = s.api.expect("api");
    let whole = || metric(api, "meridian_answer_cache_total{result=\"whole\"}");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    let ask_four_times = |query: &[u8]| -> Vec<Vec<u8>> {
        let mut query = query.to_vec();
        (0..4u16)
            .map(|i| {
                query[..2].copy_from_slice(&(0x5000 + i).to_be_bytes());
                sock.send_to(&query, s.addr).expect("send");
                let mut buf = [0u8; 1232];
                let (n, _) = sock.recv_from(&mut buf).expect("answer");
                assert_eq!(buf[..2], query[..2], "the ID of ask {i}");
                buf[2..n].to_vec()
            })
            .collect()
    };
    let before = whole();
    let plain = build_query(1, &wire("ns1.example.com."), rtype::A, true, None);
    let first = ask_four_times(&plain);
    assert!(first.iter().all(|a| *a == first[0]), "{first:?}");
    assert_eq!(whole(), before + 1, "the fourth ask replayed whole");
    // The name in other cases (a 0x20 resolver): replayed whole from the first ask on,
    // each with its own spelling in the question and the rest as before.
    for spelling in ["nS1.ExamplE.com.", "NS1.EXAMPLE.COM."] {
        let mixed = build_query(1, &wire(spelling), rtype::A, true, None);
        let answers = ask_four_times(&mixed);
        for a in &answers {
            // After the ID: flags and counts (10 bytes), the 17-byte name, then the rest.
            assert_eq!(a[10..27], mixed[12..29], "the question as asked");
            assert_eq!(a[..10], first[0][..10]);
            assert_eq!(a[27..], first[0][27..]);
        }
    }
    assert_eq!(whole(), before + 9, "asked in other cases, replayed whole");
}

/// The cookie of a response replayed whole is made for its query: a client cookie alone
/// asked four times (the fourth replayed) gets the client cookie back with a server cookie
/// that is valid from that address; the same bytes from another address are replayed with
/// a server cookie of that address's own; and a resolver that echoes each server cookie it
/// got (as BIND does) is replayed whole while every cookie it sends checks as valid.
#[test]
fn whole_responses_carry_a_cookie_made_for_their_query() {
    use crate::common::{Server, metric};
    let zone = "$ORIGIN example.com.\n$TTL 60\n@ SOA ns1 hm 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    // One UDP thread: both client addresses reach the same caches.
    let s = Server::start_files(&[("zones/example.com.zone", zone.as_bytes())], 1, "");
    let api = s.api.expect("api");
    let whole = || metric(api, "meridian_answer_cache_total{result=\"whole\"}");
    let valid = || metric(api, "meridian_cookies_total{outcome=\"valid\"}");
    let client = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
    // The query with a COOKIE option (code 10) of the client cookie and `server`.
    let query = |id: u16, server: &[u8]| {
        let mut q = build_query(id, &wire("ns1.example.com."), rtype::A, true, None);
        let n = q.len();
        let rdlen = 4 + client.len() + server.len();
        q[n - 2..].copy_from_slice(&(rdlen as u16).to_be_bytes());
        q.extend_from_slice(&[0, 10, 0, rdlen as u8 - 4]);
        q.extend_from_slice(&client);
        q.extend_from_slice(server);
        q
    };
    let socket = |ip: &str| {
        let sock = std::net::UdpSocket::bind(format!("{ip}:0")).expect("bind");
        sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        sock
    };
    // The answer to `q` from `sock`, and the server cookie it ends with.
    let ask = |sock: &std::net::UdpSocket, q: &[u8]| -> (Vec<u8>, Vec<u8>) {
        sock.send_to(q, s.addr).expect("send");
        let mut buf = [0u8; 1232];
        let (n, _) = sock.recv_from(&mut buf).expect("answer");
        assert_eq!(buf[..2], q[..2], "the ID");
        assert_eq!(buf[n - 28..n - 16], [&[0, 10, 0, 24][..], &client].concat());
        (buf[..n - 16].to_vec(), buf[n - 16..n].to_vec())
    };
    let (one, two) = (socket("127.0.0.1"), socket("127.0.0.2"));
    let before = whole();
    let mut first = Vec::new();
    for i in 0..4 {
        let (answer, server) = ask(&one, &query(i, &[]));
        if i == 0 {
            first = answer.clone();
        }
        assert_eq!(answer[2..], first[2..], "ask {i}");
        // Sent back from the same address, it checks as valid.
        let checked = valid();
        ask(&one, &query(100 + i, &server));
        assert_eq!(valid(), checked + 1, "the server cookie of ask {i}");
    }
    assert!(
        whole() > before,
        "a query with a client cookie replayed whole"
    );
    // The same bytes from 127.0.0.2: replayed, with a cookie for that address.
    let replayed = whole();
    let (answer, for_two) = ask(&two, &query(3, &[]));
    assert_eq!(answer[2..], first[2..]);
    assert_eq!(whole(), replayed + 1, "replayed to another address");
    let (_, for_one) = ask(&one, &query(3, &[]));
    assert_ne!(
        for_two, for_one,
        "the server cookie does not depend on the address"
    );
    // A resolver that echoes the last server cookie it got: replayed whole, each cookie
    // it sends valid.
    let (checked, replayed) = (valid(), whole());
    let mut server = for_two;
    for i in 0..6 {
        let (answer, next) = ask(&two, &query(200 + i, &server));
        assert_eq!(answer[2..], first[2..], "echoing ask {i}");
        server = next;
    }
    assert_eq!(valid(), checked + 6, "every echoed cookie valid");
    assert!(
        whole() >= replayed + 4,
        "an echoing resolver replayed whole"
    );
}
