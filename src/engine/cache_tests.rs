//! Tests of the answer cache (a child module of `cache.rs`, so they reach its private
//! helpers; kept apart to keep that file under the layers test's 800 lines).

use super::*;

/// The kept answer for `k`, with no dynamic names (the slots here are not table-driven).
fn get<'c>(c: &'c mut AnswerCache, k: &Key<'_>) -> Option<Hit<'c>> {
    c.get(k.tag, || *k, &Routing::default())
}

fn key<'a>(
    name: &'a [u8],
    qtype: u16,
    source: [u8; 4],
    ecs: Option<[u8; 4]>,
    serial: u64,
    health: &HealthView,
) -> Key<'a> {
    Key::new(
        (name, crate::dns::name::name_hash(name)),
        (qtype, Flavour::Plain),
        IpAddr::from(source),
        ecs.map(IpAddr::from),
        serial,
        health,
    )
}

/// Every slot can be a name's first: the tag's lowest bit, always set, is not part of
/// the index (it was, and only the odd slots were ever first).
#[test]
fn first_slots_cover_the_even_ones_too() {
    let health = HealthView::all_up();
    let firsts: std::collections::HashSet<usize> = (0..400u32)
        .map(|i| {
            let name = format!("\x04h{i:03}\x00");
            key(name.as_bytes(), 1, [10, 0, 0, 1], None, 1, &health).first(255)
        })
        .collect();
    assert!(firsts.iter().any(|f| f % 2 == 0), "{firsts:?}");
    // 400 names in 256 slots: about 203 used at random.
    assert!(firsts.len() > 180, "{} slots", firsts.len());
}

fn fill<'a>(body: &'a [u8], client: Option<(IpAddr, bool, u8)>) -> Fill<'a> {
    Fill {
        body,
        counts: [1, 0, 0],
        rcode: 0,
        authoritative: true,
        counters: [None, None],
        scope: client.map(|c| c.2),
        client,
        decided: None,
    }
}

#[test]
fn masks_addresses() {
    assert_eq!(
        masked(IpAddr::from([81, 2, 69, 160]), 20)[..4],
        [81, 2, 64, 0]
    );
    assert_eq!(masked(IpAddr::from([81, 2, 69, 160]), 0), [0; 16]);
    assert_eq!(
        masked(IpAddr::from([81, 2, 69, 160]), 40)[..4],
        [81, 2, 69, 160]
    );
}

#[test]
fn keeps_client_independent_answers_for_everyone() {
    let mut c = AnswerCache::new(64).expect("cache");
    let h = HealthView::all_up();
    let www = b"\x03www\x07example\x00";
    let k = key(www, 1, [10, 0, 0, 1], None, 1, &h);
    assert!(get(&mut c, &k).is_none());
    c.put(&k, &fill(b"body", None));
    let other = key(www, 1, [192, 0, 2, 1], Some([81, 2, 69, 0]), 1, &h);
    assert_eq!(
        get(&mut c, &other).map(|h| h.body.to_vec()),
        Some(b"body".to_vec())
    );
    // Another type, another name, another snapshot: misses.
    assert!(get(&mut c, &key(www, 28, [10, 0, 0, 1], None, 1, &h)).is_none());
    let wwx = b"\x03wwx\x07example\x00";
    assert!(get(&mut c, &key(wwx, 1, [10, 0, 0, 1], None, 1, &h)).is_none());
    assert!(get(&mut c, &key(www, 1, [10, 0, 0, 1], None, 2, &h)).is_none());
    let (hits, misses, stores) = (
        c.stats().hits.load(Ordering::Relaxed),
        c.stats().misses.load(Ordering::Relaxed),
        c.stats().stores.load(Ordering::Relaxed),
    );
    assert_eq!((hits, misses, stores), (1, 4, 1));
}

#[test]
fn health_change_makes_slots_stale() {
    let mut c = AnswerCache::new(64).expect("cache");
    let before = HealthView::new(vec![true], vec![true], 1);
    let after = HealthView::new(vec![false], vec![true], 1);
    let name = b"\x03www\x00";
    let k = key(name, 1, [10, 0, 0, 1], None, 1, &before);
    assert!(get(&mut c, &k).is_none());
    c.put(&k, &fill(b"x", None));
    assert!(get(&mut c, &k).is_some());
    assert!(get(&mut c, &key(name, 1, [10, 0, 0, 1], None, 1, &after)).is_none());
}

#[test]
fn dynamic_answers_hold_inside_their_network_only() {
    let mut c = AnswerCache::new(1024).expect("cache");
    let h = HealthView::all_up();
    let name = b"\x03geo\x00";
    let at = |source: [u8; 4], ecs: Option<[u8; 4]>| key(name, 1, source, ecs, 1, &h);
    let london = at([127, 0, 0, 1], Some([81, 2, 69, 0]));
    assert!(get(&mut c, &london).is_none());
    c.put(
        &london,
        &fill(b"lon", Some((IpAddr::from([81, 2, 69, 0]), true, 16))),
    );
    // Same /16 by ECS: hit. Another network: miss, then kept beside it the second time
    // it asks (admission).
    let near = at([127, 0, 0, 9], Some([81, 2, 1, 0]));
    assert_eq!(
        get(&mut c, &near).map(|h| h.body.to_vec()),
        Some(b"lon".to_vec())
    );
    let tokyo = at([127, 0, 0, 1], Some([1, 0, 16, 0]));
    let tokyo_fill = fill(b"tyo", Some((IpAddr::from([1, 0, 16, 0]), true, 24)));
    assert!(get(&mut c, &tokyo).is_none());
    c.put(&tokyo, &tokyo_fill);
    assert!(get(&mut c, &tokyo).is_none(), "kept the first time");
    c.put(&tokyo, &tokyo_fill);
    assert_eq!(
        get(&mut c, &tokyo).map(|h| h.body.to_vec()),
        Some(b"tyo".to_vec())
    );
    assert_eq!(
        get(&mut c, &london).map(|h| h.body.to_vec()),
        Some(b"lon".to_vec())
    );
    // Without ECS the answer was decided by ECS: not valid for a source-located query.
    assert!(get(&mut c, &at([81, 2, 69, 1], None)).is_none());
}
