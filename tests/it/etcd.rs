//! The etcd client (`meridian::monitor::etcd`) against real etcd members: keys and values
//! through the JSON gateway, leases that expire or are kept, ordered watches, failover when
//! the leader dies, a member without quorum, a member slower than the timeout, endpoints
//! that do not answer, and TLS with a private CA and a client certificate.

use std::time::{Duration, Instant};

use meridian::config::ClusterTls;
use meridian::monitor::etcd::{Etcd, EtcdError, WatchBatch, WatchEvent, WatchStream};

use crate::common::{require_tool, stable_port};
use crate::etcd_cluster::{EtcdCluster, TlsMember};

fn client(endpoints: Vec<String>, timeout_ms: u64) -> Etcd {
    Etcd::new(endpoints, Duration::from_millis(timeout_ms)).expect("etcd client")
}

fn put_event(key: &str, value: &[u8]) -> WatchEvent {
    WatchEvent::Put {
        key: key.to_string(),
        value: value.to_vec(),
    }
}

fn delete_event(key: &str) -> WatchEvent {
    WatchEvent::Delete {
        key: key.to_string(),
    }
}

/// The keys under `prefix`, sorted.
async fn keys(etcd: &Etcd, prefix: &str) -> Vec<String> {
    let (_, kvs) = etcd.get_prefix(prefix).await.expect("get_prefix");
    kvs.into_iter().map(|(k, _)| k).collect()
}

/// The next batch within `within`; fails the test on a timeout, an error or the end.
async fn next_batch(watch: &mut WatchStream, within: Duration) -> WatchBatch {
    match tokio::time::timeout(within, watch.next()).await {
        Ok(Ok(Some(batch))) => batch,
        Ok(other) => panic!("watch ended: {other:?}"),
        Err(_) => panic!("no watch batch within {within:?}"),
    }
}

/// Events from `watch` until there are `count` (empty batches skipped), within `within`.
/// Checks that revisions only grow.
async fn collect_events(
    watch: &mut WatchStream,
    count: usize,
    within: Duration,
) -> Vec<WatchEvent> {
    let start = Instant::now();
    let mut events = Vec::new();
    let mut revision = 0;
    for _ in 0..1000 {
        if events.len() >= count {
            return events;
        }
        let left = within.saturating_sub(start.elapsed());
        let batch = tokio::time::timeout(left, watch.next()).await;
        let Ok(batch) = batch else {
            panic!(
                "{} of {count} events within {within:?}: {events:?}",
                events.len()
            );
        };
        let batch = batch.expect("watch batch").expect("watch still open");
        assert!(batch.revision >= revision, "revision went back: {batch:?}");
        if !batch.events.is_empty() {
            assert!(batch.revision > revision, "same revision again: {batch:?}");
        }
        revision = batch.revision;
        events.extend(batch.events);
    }
    panic!("too many batches; events so far: {events:?}");
}

/// Retries `put` until it succeeds, for at most `within`: how long that took, and the
/// revision.
async fn put_until_ok(etcd: &Etcd, key: &str, value: &[u8], within: Duration) -> (Duration, i64) {
    let start = Instant::now();
    for _ in 0..200 {
        match etcd.put(key, value, None).await {
            Ok(rev) => return (start.elapsed(), rev),
            Err(e) if start.elapsed() < within => {
                eprintln!("put {key} after {:?}: {e}", start.elapsed());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("put {key} still failing after {within:?}: {e}"),
        }
    }
    panic!("put {key}: too many tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_prefix_round_trip() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let etcd = client(cluster.endpoints(), 2000);

    let binary: Vec<u8> = (0..=255).collect();
    let r1 = etcd.put("/m/t/a", b"hi", None).await.expect("put a");
    let r2 = etcd.put("/m/t/b/ü", &binary, None).await.expect("put b");
    let r3 = etcd.put("/m/t/c", b"", None).await.expect("put c");
    // Neighbours of the prefix, outside it.
    etcd.put("/m/t0", b"x", None).await.expect("put t0");
    let r5 = etcd.put("/m/s", b"y", None).await.expect("put s");
    assert!(r1 < r2 && r2 < r3 && r3 < r5, "{r1} {r2} {r3} {r5}");

    let (rev, kvs) = etcd.get_prefix("/m/t/").await.expect("get_prefix");
    assert_eq!(rev, r5, "the store's revision");
    let want: Vec<(String, Vec<u8>)> = vec![
        ("/m/t/a".into(), b"hi".to_vec()),
        ("/m/t/b/ü".into(), binary.clone()),
        ("/m/t/c".into(), Vec::new()),
    ];
    assert_eq!(kvs, want);

    // On the wire: base64 key and value, int64 as a string.
    let (code, body) = cluster
        .post(0, "/v3/kv/range", r#"{"key":"L20vdC9h"}"#)
        .expect("raw range");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["kvs"][0]["value"], "aGk=", "{body}");
    assert_eq!(v["kvs"][0]["mod_revision"], r1.to_string(), "{body}");

    // An overwrite is a new revision; a delete removes one key; deleting nothing is fine.
    let r6 = etcd
        .put("/m/t/a", b"again", None)
        .await
        .expect("put a again");
    assert_eq!(r6, r5 + 1);
    etcd.delete("/m/t/c").await.expect("delete c");
    etcd.delete("/m/t/none")
        .await
        .expect("delete a missing key");
    let (rev, kvs) = etcd.get_prefix("/m/t/").await.expect("get_prefix");
    assert_eq!(rev, r6 + 1);
    assert_eq!(
        kvs,
        vec![
            ("/m/t/a".into(), b"again".to_vec()),
            ("/m/t/b/ü".into(), binary),
        ]
    );
    assert_eq!(keys(&etcd, "/m/none/").await, Vec::<String>::new());
    assert_eq!(
        keys(&etcd, "").await,
        ["/m/s", "/m/t/a", "/m/t/b/ü", "/m/t0"],
        "the empty prefix is every key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_revoked_expired_and_kept() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let etcd = client(cluster.endpoints(), 2000);

    // Revoked: its keys go at once; the lease is gone for every later call.
    let lease = etcd.grant(2).await.expect("grant");
    etcd.put("/m/l/revoked", b"1", Some(lease))
        .await
        .expect("put with lease");
    assert_eq!(keys(&etcd, "/m/l/").await, ["/m/l/revoked"]);
    etcd.revoke(lease).await.expect("revoke");
    assert_eq!(keys(&etcd, "/m/l/").await, Vec::<String>::new());
    assert!(matches!(etcd.keep_alive(lease).await, Err(EtcdError::LeaseNotFound(l)) if l == lease));
    assert!(
        matches!(etcd.put("/m/l/x", b"1", Some(lease)).await, Err(EtcdError::LeaseNotFound(l)) if l == lease)
    );
    assert!(matches!(etcd.revoke(lease).await, Err(EtcdError::LeaseNotFound(l)) if l == lease));

    // Two leases of 2 s: one left alone expires, one kept alive outlives 2 × TTL.
    let idle = etcd.grant(2).await.expect("grant idle");
    let kept = etcd.grant(2).await.expect("grant kept");
    let start = Instant::now();
    etcd.put("/m/l/idle", b"i", Some(idle))
        .await
        .expect("put idle");
    etcd.put("/m/l/kept", b"k", Some(kept))
        .await
        .expect("put kept");
    let mut idle_gone = None;
    while start.elapsed() < Duration::from_secs(5) {
        let ttl = etcd.keep_alive(kept).await.expect("keep_alive");
        assert!((1..=2).contains(&ttl), "ttl {ttl}");
        let now = keys(&etcd, "/m/l/").await;
        assert!(now.contains(&"/m/l/kept".to_string()), "{now:?}");
        if idle_gone.is_none() && !now.contains(&"/m/l/idle".to_string()) {
            idle_gone = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let idle_gone = idle_gone.expect("the idle lease's key expired within 5 s");
    assert!(
        idle_gone >= Duration::from_millis(1500),
        "expired early: {idle_gone:?}"
    );
    eprintln!("a 2 s lease's key went after {idle_gone:?}");
    assert!(matches!(
        etcd.keep_alive(idle).await,
        Err(EtcdError::LeaseNotFound(_))
    ));

    // Once the keepalives stop, the kept lease expires too.
    let stop = Instant::now();
    while keys(&etcd, "/m/l/")
        .await
        .contains(&"/m/l/kept".to_string())
    {
        assert!(
            stop.elapsed() < Duration::from_secs(6),
            "kept lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_changes_in_order() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let etcd = client(cluster.endpoints(), 2000);

    // History before the watch is created, from its start revision on.
    etcd.put("/m/w/old", b"0", None).await.expect("put old");
    let from = etcd.put("/m/w/a", b"1", None).await.expect("put a");
    etcd.put("/m/x", b"outside", None).await.expect("put x");
    etcd.put("/m/w0", b"outside", None).await.expect("put w0");
    etcd.delete("/m/w/old").await.expect("delete old");

    let mut watch = etcd.watch_prefix("/m/w/", from).await.expect("watch");
    let created = next_batch(&mut watch, Duration::from_secs(2)).await;
    assert_eq!(
        created,
        WatchBatch {
            revision: from - 1,
            events: vec![]
        }
    );

    // After it: puts, a delete, and a lease that expires.
    let lease = etcd.grant(2).await.expect("grant");
    etcd.put("/m/w/leased", b"l", Some(lease))
        .await
        .expect("put leased");
    etcd.put("/m/w/a", b"2", None).await.expect("put a");
    etcd.delete("/m/w/a").await.expect("delete a");
    let want = vec![
        put_event("/m/w/a", b"1"),
        delete_event("/m/w/old"),
        put_event("/m/w/leased", b"l"),
        put_event("/m/w/a", b"2"),
        delete_event("/m/w/a"),
        delete_event("/m/w/leased"),
    ];
    let start = Instant::now();
    let got = collect_events(&mut watch, want.len(), Duration::from_secs(10)).await;
    assert_eq!(got, want);
    eprintln!(
        "the lease expiry's DELETE came {:?} after the last put",
        start.elapsed()
    );
    assert_eq!(keys(&etcd, "/m/w/").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_progress_and_compaction() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let cluster = EtcdCluster::start(1);
    let etcd = client(cluster.endpoints(), 2000);
    etcd.put("/m/p/a", b"1", None).await.expect("put");
    let rev = etcd.put("/m/p/a", b"2", None).await.expect("put");

    // From now: the acknowledgement carries the store's revision; an idle watch gets
    // progress notifications (every second on these members) at that revision.
    let mut watch = etcd.watch_prefix("/m/p/", 0).await.expect("watch");
    assert_eq!(
        next_batch(&mut watch, Duration::from_secs(2))
            .await
            .revision,
        rev
    );
    let progress = next_batch(&mut watch, Duration::from_secs(5)).await;
    assert_eq!(
        progress,
        WatchBatch {
            revision: rev,
            events: vec![]
        }
    );
    let next = etcd.put("/m/p/b", b"3", None).await.expect("put");
    let batch = collect_events(&mut watch, 1, Duration::from_secs(5)).await;
    assert_eq!(batch, vec![put_event("/m/p/b", b"3")]);

    // From a compacted revision: etcd acknowledges, then cancels.
    let (code, body) = cluster
        .post(
            0,
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{next}"}}"#),
        )
        .expect("compaction");
    assert_eq!(code, 200, "{body}");
    let mut old = etcd.watch_prefix("/m/p/", rev).await.expect("watch");
    let mut outcome = None;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(5), old.next()).await {
            Ok(Ok(Some(b))) if b.events.is_empty() => continue,
            other => {
                outcome = Some(other);
                break;
            }
        }
    }
    match outcome {
        Some(Ok(Err(EtcdError::WatchCancelled(reason)))) => {
            assert!(reason.contains("compacted"), "{reason}")
        }
        other => panic!("a watch from a compacted revision: {other:?}"),
    }
    assert!(matches!(old.next().await, Ok(None)), "ended for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_client_fails_over() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let mut cluster = EtcdCluster::start(3);
    let leader = cluster.wait_leader();
    let follower = (leader + 1) % 3;
    // The leader first, so that the client and its watch start there.
    let mut endpoints = cluster.endpoints();
    endpoints.swap(0, leader);
    let etcd = client(endpoints, 1000);
    let on_follower = client(vec![cluster.endpoint(follower)], 1000);

    let lease = etcd.grant(10).await.expect("grant");
    let r1 = etcd
        .put("/m/f/vote", b"up", Some(lease))
        .await
        .expect("put");
    let mut leader_watch = etcd.watch_prefix("/m/f/", r1 + 1).await.expect("watch");
    let mut follower_watch = on_follower
        .watch_prefix("/m/f/", r1 + 1)
        .await
        .expect("watch");
    next_batch(&mut leader_watch, Duration::from_secs(2)).await;
    next_batch(&mut follower_watch, Duration::from_secs(2)).await;

    cluster.kill(leader);
    let killed = Instant::now();
    // The watch on the dead member ends with an error, at once.
    match tokio::time::timeout(Duration::from_secs(5), leader_watch.next()).await {
        Ok(Err(EtcdError::WatchCancelled(reason))) => {
            eprintln!(
                "watch on the killed leader: {reason} after {:?}",
                killed.elapsed()
            )
        }
        other => panic!("watch on the killed leader: {other:?}"),
    }
    // The client moves to another member once a new leader is elected.
    let (took, r2) = put_until_ok(&etcd, "/m/f/after", b"2", Duration::from_secs(10)).await;
    eprintln!("first put after the leader kill succeeded after {took:?}");
    // The watch on a follower lives through the election and sees the put.
    let events = collect_events(&mut follower_watch, 1, Duration::from_secs(5)).await;
    assert_eq!(events, vec![put_event("/m/f/after", b"2")]);
    // The lease outlives the leader: kept alive, its key still there.
    assert!(etcd.keep_alive(lease).await.expect("keep_alive") > 0);
    assert_eq!(keys(&etcd, "/m/f/").await, ["/m/f/after", "/m/f/vote"]);
    // Watching again from where the broken watch was picks up the put.
    let mut rewatch = etcd
        .watch_prefix("/m/f/", r1 + 1)
        .await
        .expect("watch again");
    let events = collect_events(&mut rewatch, 1, Duration::from_secs(5)).await;
    assert_eq!(events, vec![put_event("/m/f/after", b"2")]);

    // The old leader comes back as a member with everything.
    cluster.restart(leader);
    let alone = client(vec![cluster.endpoint(leader)], 2000);
    let (rev, _) = alone
        .get_prefix("/m/f/")
        .await
        .expect("get from the restarted member");
    assert!(rev >= r2);
    assert_eq!(keys(&alone, "/m/f/").await, ["/m/f/after", "/m/f/vote"]);
    cluster.wait_leader();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_without_quorum_cancels_watch_and_fails_fast() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let mut cluster = EtcdCluster::start(3);
    cluster.wait_leader();
    let lone = 0;
    let etcd = client(vec![cluster.endpoint(lone)], 1000);
    let r1 = etcd.put("/m/q/a", b"1", None).await.expect("put");
    let mut watch = etcd.watch_prefix("/m/q/", r1 + 1).await.expect("watch");
    next_batch(&mut watch, Duration::from_secs(2)).await;

    cluster.pause(1);
    cluster.pause(2);
    let paused = Instant::now();
    // The require-leader watch is cancelled once the member has had no leader for a while
    // (etcd: 3 election timeouts).
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Ok(Some(b))) if b.events.is_empty() => continue,
            other => break other,
        }
    };
    match outcome {
        Ok(Err(EtcdError::WatchCancelled(reason))) => {
            assert!(reason.contains("no leader"), "{reason}");
            eprintln!(
                "require-leader watch cancelled {:?} after the pause: {reason}",
                paused.elapsed()
            );
        }
        other => panic!("watch without quorum: {other:?}"),
    }
    // Writes fail within the timeout; a new watch is refused at once.
    let t = Instant::now();
    assert!(matches!(
        etcd.put("/m/q/b", b"2", None).await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "put took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    match etcd.watch_prefix("/m/q/", r1 + 1).await {
        Err(EtcdError::Unreachable(reason)) => assert!(reason.contains("no leader"), "{reason}"),
        other => panic!("watch without quorum: {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "watch took {:?}",
        t.elapsed()
    );

    // Back to a quorum: writes and watches work again.
    cluster.resume(1);
    cluster.resume(2);
    let (took, _) = put_until_ok(&etcd, "/m/q/b", b"2", Duration::from_secs(15)).await;
    eprintln!("writes back {took:?} after the resume");
    let mut watch = etcd
        .watch_prefix("/m/q/", r1 + 1)
        .await
        .expect("watch again");
    let events = collect_events(&mut watch, 1, Duration::from_secs(5)).await;
    assert_eq!(events, vec![put_event("/m/q/b", b"2")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_cluster_fails_within_the_timeout() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let mut cluster = EtcdCluster::start(1);
    let etcd = client(cluster.endpoints(), 500);
    etcd.put("/m/s/a", b"1", None).await.expect("put");

    // A frozen member: every call gives up after the timeout.
    cluster.pause(0);
    let t = Instant::now();
    assert!(matches!(
        etcd.get_prefix("/m/s/").await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.watch_prefix("/m/s/", 0).await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.keep_alive(1).await,
        Err(EtcdError::Unreachable(_))
    ));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(3), "three calls took {took:?}");
    cluster.resume(0);
    assert_eq!(keys(&etcd, "/m/s/").await, ["/m/s/a"]);

    // Stopped, then started again on its data.
    cluster.stop_all();
    let t = Instant::now();
    assert!(matches!(
        etcd.get_prefix("/m/s/").await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "took {:?}",
        t.elapsed()
    );
    cluster.restart(0);
    assert_eq!(keys(&etcd, "/m/s/").await, ["/m/s/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_member_stays_in_flight_beside_the_next() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let mut cluster = EtcdCluster::start(1);
    // The member first, then an endpoint that takes connections but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoints = vec![
        cluster.endpoint(0),
        format!("http://{}", silent.local_addr().expect("addr")),
    ];
    let etcd = client(endpoints, 500);
    etcd.put("/m/slow/a", b"1", None).await.expect("put");

    // The member freezes for 700 ms: longer than the timeout, shorter than the 1000 ms of
    // both endpoints. The second is tried beside it after 500 ms; the first still answers.
    cluster.pause(0);
    let t = Instant::now();
    let read = tokio::spawn({
        let etcd = etcd.clone();
        async move { etcd.get_prefix("/m/slow/").await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.resume(0);
    let result = read.await.expect("read task");
    let took = t.elapsed();
    match result {
        Ok((_, kvs)) => assert_eq!(kvs, vec![("/m/slow/a".to_string(), b"1".to_vec())]),
        Err(e) => panic!("the frozen member's answer was given up: {e} (after {took:?})"),
    }
    assert!(
        took >= Duration::from_millis(700),
        "answered after {took:?}"
    );

    // Frozen for longer than both endpoints' time: the call fails after 2 × timeout.
    cluster.pause(0);
    let t = Instant::now();
    let result = etcd.get_prefix("/m/slow/").await;
    let took = t.elapsed();
    cluster.resume(0);
    match result {
        Err(EtcdError::Unreachable(reason)) => assert!(reason.contains("within"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(2500),
        "failed after {took:?}"
    );
    assert_eq!(keys(&etcd, "/m/slow/").await, ["/m/slow/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let member = TlsMember::start();
    let read = |name: &str| std::fs::read(member.file(name)).expect("PEM file");
    let mut identity = read("client.pem");
    identity.extend(read("client-key.pem"));
    let full = ClusterTls {
        ca_pem: Some(read("ca.pem")),
        identity_pem: Some(identity),
    };
    let etcd = Etcd::with_tls(vec![member.endpoint.clone()], Duration::from_secs(1), &full)
        .expect("TLS client");
    // Started when a put goes through (at most 20 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let revision = loop {
        match etcd.put("/m/tls/a", b"1", None).await {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no put over TLS: {e}\n{}", member.log()),
        }
    };
    assert!(revision > 0);
    assert_eq!(keys(&etcd, "/m/tls/").await, ["/m/tls/a"]);
    let mut watch = etcd
        .watch_prefix("/m/tls/", revision + 1)
        .await
        .expect("watch over TLS");
    etcd.put("/m/tls/b", b"2", None).await.expect("put");
    let events = collect_events(&mut watch, 1, Duration::from_secs(5)).await;
    assert_eq!(events, vec![put_event("/m/tls/b", b"2")]);

    // The system's roots do not know the private CA: refused, and the reason says why.
    let no_ca = ClusterTls {
        ca_pem: None,
        ..full.clone()
    };
    let etcd = Etcd::with_tls(
        vec![member.endpoint.clone()],
        Duration::from_secs(1),
        &no_ca,
    )
    .expect("client");
    match etcd.get_prefix("/m/tls/").await {
        Err(EtcdError::Unreachable(reason)) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("a server certificate from an unknown CA: {other:?}"),
    }
    // Without a client certificate, etcd refuses the connection.
    let no_identity = ClusterTls {
        identity_pem: None,
        ..full.clone()
    };
    let etcd = Etcd::with_tls(
        vec![member.endpoint.clone()],
        Duration::from_secs(1),
        &no_identity,
    )
    .expect("client");
    assert!(matches!(
        etcd.get_prefix("/m/tls/").await,
        Err(EtcdError::Unreachable(_))
    ));
    // PEM that is not a certificate is refused when the client is built.
    let garbage = ClusterTls {
        ca_pem: Some(
            b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        identity_pem: None,
    };
    assert!(matches!(
        Etcd::with_tls(
            vec![member.endpoint.clone()],
            Duration::from_secs(1),
            &garbage
        ),
        Err(EtcdError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_fail_fast() {
    // Nothing listening: refused at once, on every endpoint.
    let dead = vec![
        format!("http://127.0.0.1:{}", stable_port()),
        format!("http://127.0.0.1:{}/", stable_port()),
    ];
    let etcd = client(dead, 1000);
    let t = Instant::now();
    assert!(matches!(
        etcd.get_prefix("/m/").await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.put("/m/a", b"1", None).await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.delete("/m/a").await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.grant(5).await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.keep_alive(1).await,
        Err(EtcdError::Unreachable(_))
    ));
    assert!(matches!(
        etcd.revoke(1).await,
        Err(EtcdError::Unreachable(_))
    ));
    match etcd.watch_prefix("/m/", 0).await {
        Err(EtcdError::Unreachable(reason)) => assert!(reason.contains("127.0.0.1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );

    // Listening but never answering (connections wait in the backlog): each endpoint
    // costs the timeout, no more.
    let silent: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let endpoints = silent
        .iter()
        .map(|l| format!("http://{}", l.local_addr().expect("addr")))
        .collect();
    let etcd = client(endpoints, 300);
    let t = Instant::now();
    match etcd.get_prefix("/m/").await {
        Err(EtcdError::Unreachable(reason)) => assert!(reason.contains("within"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        etcd.watch_prefix("/m/", 0).await,
        Err(EtcdError::Unreachable(_))
    ));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(3),
        "two calls over two silent endpoints took {took:?}"
    );

    // Bad configurations are refused.
    for endpoints in [
        vec![],
        vec!["127.0.0.1:2379".to_string()],
        vec!["ftp://h".into()],
    ] {
        assert!(matches!(
            Etcd::new(endpoints, Duration::from_secs(1)),
            Err(EtcdError::Config(_))
        ));
    }
    let one = vec!["http://127.0.0.1:2379".to_string()];
    assert!(matches!(
        Etcd::new(one, Duration::ZERO),
        Err(EtcdError::Config(_))
    ));
}
