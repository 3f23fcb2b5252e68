//! The etcd client with a login, against a real etcd with authentication enabled: it
//! authenticates, is held to its role's keys, authenticates again when etcd drops its
//! token or the token expires (JWT), and works before `auth enable` as after.

use std::time::Duration;

use meridian::config::{ClusterTls, Login};
use meridian::monitor::etcd::{Etcd, EtcdError, WatchEvent};

use crate::common::require_tool;
use crate::etcd_cluster::EtcdCluster;

fn client(store: &EtcdCluster, password: Option<&str>) -> Etcd {
    let login = password.map(|p| Login {
        user: "meridian".into(),
        password: p.into(),
    });
    let timeout = Duration::from_secs(1);
    Etcd::with_login(store.endpoints(), timeout, &ClusterTls::default(), login)
        .expect("etcd client")
}

/// etcd's reason for refusing, or the test fails.
fn refusal<T: std::fmt::Debug>(result: Result<T, EtcdError>) -> String {
    match result {
        Err(EtcdError::Status { message, .. }) => message,
        other => panic!("not refused by etcd: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_authenticates_and_again_when_its_token_is_dropped() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let store = EtcdCluster::start(1);
    let etcd = client(&store, Some("s3cret"));
    // Before `auth enable` the login is not needed, and not an error: an operator sets it
    // up before turning authentication on.
    etcd.put("/m/auth/early", b"0", None)
        .await
        .expect("put before auth enable");

    let root = store.enable_auth("meridian", "s3cret", "/m/auth/");
    // The client went without a token: etcd now wants one ("user name is empty"), and
    // the client authenticates by itself.
    let lease = etcd.grant(10).await.expect("grant as the user");
    let revision = etcd
        .put("/m/auth/a", b"1", Some(lease))
        .await
        .expect("put as the user");
    let (_, kvs) = etcd.get_prefix("/m/auth/").await.expect("get as the user");
    let keys: Vec<&str> = kvs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["/m/auth/a", "/m/auth/early"]);
    let mut watch = etcd
        .watch_prefix("/m/auth/", revision + 1)
        .await
        .expect("watch as the user");

    // Held to its role: keys outside its prefix are refused.
    let denied = refusal(etcd.put("/other/x", b"1", None).await);
    assert!(denied.contains("permission denied"), "{denied}");

    // Turning authentication off and on again (as an operator mending roles might) drops
    // every token issued before. A token taken now shows that etcd refuses it afterwards...
    let before = store.token(r#"{"name":"meridian","password":"s3cret"}"#);
    let off = store.post_as(0, "/v3/auth/disable", "{}", Some(&root));
    assert!(matches!(off, Some((200, _))), "{off:?}");
    let on = store.post(0, "/v3/auth/enable", "{}");
    assert!(matches!(on, Some((200, _))), "{on:?}");
    let body = r#"{"key":"L20vYXV0aC9yYXc=","value":"MQ=="}"#;
    let old = store.post_as(0, "/v3/kv/put", body, Some(&before));
    assert!(
        old.as_ref()
            .is_some_and(|(code, body)| *code != 200 && body.contains("invalid auth token")),
        "a token from before: {old:?}"
    );
    // ...and the client, whose token is as old, authenticates again and goes on.
    etcd.put("/m/auth/b", b"2", Some(lease))
        .await
        .expect("put after the change");
    assert!(etcd.keep_alive(lease).await.expect("keepalive") > 0);
    let watch_again = etcd.watch_prefix("/m/auth/", 0).await;
    assert!(watch_again.is_ok(), "a new watch: {:?}", watch_again.err());
    // The watch opened before still delivers (empty batches are progress notes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut events = Vec::new();
    while events.is_empty() {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Ok(Some(b))) => events = b.events,
            other => panic!("no watch event: {other:?}"),
        }
    }
    assert_eq!(
        events,
        [WatchEvent::Put {
            key: "/m/auth/b".into(),
            value: b"2".to_vec()
        }]
    );

    // Without a login, or with a wrong password: refused, and the reason says why.
    let anonymous = refusal(client(&store, None).get_prefix("/m/auth/").await);
    assert!(anonymous.contains("user name is empty"), "{anonymous}");
    let wrong = refusal(client(&store, Some("guess")).get_prefix("/m/auth/").await);
    assert!(wrong.contains("authentication failed"), "{wrong}");
}

/// With JWT tokens, which expire at their time however much they are used, the client
/// authenticates again at each expiry and goes on: writes, lease keepalives, reads and
/// watches across several lifetimes of its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_token_is_taken_again_each_time_it_expires() {
    if !require_tool("etcd", "etcd-server") {
        return;
    }
    let ttl = Duration::from_secs(2);
    let store = EtcdCluster::start_with_jwt(ttl);
    store.enable_auth("meridian", "s3cret", "/m/jwt/");
    let etcd = client(&store, Some("s3cret"));
    let lease = etcd.grant(30).await.expect("grant as the user");
    let revision = etcd
        .put("/m/jwt/start", b"0", Some(lease))
        .await
        .expect("put as the user");
    let mut watch = etcd
        .watch_prefix("/m/jwt/", revision + 1)
        .await
        .expect("watch as the user");
    // A token taken now, as the client's was a moment ago: a JWT (header.claims.signature).
    let token = store.token(r#"{"name":"meridian","password":"s3cret"}"#);
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token}");

    let mut written = vec!["/m/jwt/start".to_string()];
    for round in 0..3 {
        tokio::time::sleep(ttl + Duration::from_millis(700)).await;
        if round == 0 {
            // The token's time is over: etcd refuses it...
            let body = r#"{"key":"L20vand0L3Jhdw==","value":"MQ=="}"#;
            let old = store.post_as(0, "/v3/kv/put", body, Some(&token));
            assert!(
                old.as_ref()
                    .is_some_and(|(code, body)| *code != 200 && body.contains("invalid auth token")),
                "an expired token: {old:?}"
            );
        }
        // ...and the client, whose token expired as well, authenticates again.
        let key = format!("/m/jwt/{round}");
        etcd.put(&key, b"1", Some(lease))
            .await
            .unwrap_or_else(|e| panic!("put after {} expiries: {e}", round + 1));
        written.push(key);
        assert!(etcd.keep_alive(lease).await.expect("keepalive") > 0);
        let (_, kvs) = etcd.get_prefix("/m/jwt/").await.expect("read");
        let mut keys: Vec<&str> = kvs.iter().map(|(k, _)| k.as_str()).collect();
        let mut want: Vec<&str> = written.iter().map(String::as_str).collect();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want, "after {} expiries", round + 1);
    }
    // The watch opened with the first token saw every write (empty batches are progress
    // notes), and a new one opens with the current token.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Ok(Some(b))) => seen.extend(b.events.into_iter().map(|e| match e {
                WatchEvent::Put { key, .. } => key,
                other => panic!("unexpected event {other:?}"),
            })),
            other => panic!("watch after expiries, {seen:?} so far: {other:?}"),
        }
    }
    assert_eq!(seen, ["/m/jwt/0", "/m/jwt/1", "/m/jwt/2"]);
    let again = etcd.watch_prefix("/m/jwt/", 0).await;
    assert!(again.is_ok(), "a new watch: {:?}", again.err());
}
