//! A fleet that agrees: each instance publishes its own checks' results (after its own
//! rise/fall) to etcd as votes, watches every other instance's votes, and decides each
//! endpoint by its pool's rule (`health::quorum`). When the store is gone it decides from
//! its own checks alone, and rejoins once the store has been healthy for a while: static
//! stability, an instance never stops answering because of the store.
//!
//! Keys, one lease per instance (all of an instance's votes vanish with it):
//! ```text
//! /meridian/<cluster>/v1/vantage/<instance>            {"started": unix ms}
//! /meridian/<cluster>/v1/health/<endpoint key>/<instance> Vote (JSON)
//! ```
//! A vote is written when its state changes, after a new lease, and at start; not every
//! check. The lease is kept alive only while this instance's checker loop runs, so a wedged
//! instance's votes expire. Liveness is key presence; the times in a vote are for people.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::etcd::{Etcd, EtcdError, WatchBatch, WatchEvent, WatchStream};
use super::{Monitor, lock};
use crate::config::{ClusterConfig, ClusterTls, Login};
use crate::health::quorum::Tally;

/// Why a session with the store ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] EtcdError),
    #[error("a vote does not encode: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The reason of a vote cast before the first probe.
pub const NOT_CHECKED: &str = "not checked yet";

/// One instance's word on one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub up: bool,
    /// `CheckSpec::definition` of the check behind it.
    pub def: String,
    /// The last probe's result ("ok", or why it failed).
    pub reason: String,
    /// Unix milliseconds when its state last changed.
    pub since: u64,
    /// The round trip of the probe behind it, in milliseconds (as of the last write).
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

/// What this instance knows of the fleet; read under the monitor's lock when health is
/// decided.
#[derive(Debug)]
pub struct Fleet {
    pub instance: String,
    /// Other instances' votes: endpoint key → instance → vote.
    pub remote: HashMap<String, BTreeMap<String, Vote>>,
    /// When the store last answered (a keepalive or a watch message).
    pub store_ok: Option<Instant>,
    /// Since when it has answered without a gap longer than the fallback time.
    pub healthy_since: Option<Instant>,
    /// Deciding by the votes (true) or from this instance's checks alone.
    pub shared: bool,
    /// How long the store takes to answer a keepalive.
    pub store_latency: Option<Duration>,
    /// Votes written to the store since start.
    pub puts: u64,
    /// When the store counts as gone, and how long it must be back before rejoining.
    pub fallback_after: Duration,
    /// Why the last session with the store ended, until it answers again.
    pub store_error: Option<String>,
}

impl Fleet {
    fn new(instance: String, fallback_after: Duration) -> Self {
        Self {
            instance,
            remote: HashMap::new(),
            store_ok: None,
            healthy_since: None,
            shared: false,
            store_latency: None,
            puts: 0,
            fallback_after,
            store_error: None,
        }
    }

    /// The mode the votes allow now: shared while the store answers, and, after a spell
    /// alone, once it has answered for `fallback_after` without a gap.
    fn mode_now(&self, now: Instant) -> bool {
        let fresh = self
            .store_ok
            .is_some_and(|t| now.duration_since(t) <= self.fallback_after);
        let settled = self
            .healthy_since
            .is_some_and(|t| now.duration_since(t) >= self.fallback_after);
        fresh && (self.shared || settled)
    }

    fn store_answered(&mut self, now: Instant) {
        let gap = self
            .store_ok
            .is_none_or(|t| now.duration_since(t) > self.fallback_after);
        if gap {
            self.healthy_since = Some(now);
        }
        self.store_ok = Some(now);
        self.store_error = None;
    }

    /// The votes on `endpoint`: this instance's own (`own`) and every other live one;
    /// votes on another definition of the check are counted as ignored.
    pub fn tally(&self, endpoint: &str, own: bool, def: &str) -> Tally {
        let mut t = Tally::default();
        t.add(own);
        for v in self
            .remote
            .get(endpoint)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if v.def == def {
                t.add(v.up);
            } else {
                t.ignored += 1;
            }
        }
        t
    }
}

/// The shared state between the monitor and the task that talks to the store.
pub struct Link {
    /// The settings the link was started with: the fleet's and this instance's names hold
    /// for the link's life (a reload that changes them starts a new link); a reload sets the
    /// fallback time and the connection (below).
    pub config: ClusterConfig,
    /// The client sessions talk through and what it was built from (see
    /// [`Link::reconnect_with`]).
    store: std::sync::Mutex<(Connection, Etcd)>,
    /// Bumped when a session should end and a new one start: a new client, a new lease
    /// time.
    generation: AtomicU64,
    reconnect: Notify,
    /// The lease time of the running session (0: none yet).
    lease_ttl: AtomicI64,
    pub fleet: std::sync::Mutex<Fleet>,
    /// Woken when this instance's own votes may have changed.
    pub dirty: Notify,
    /// When the checker loop last recorded a probe (the lease lives only while it runs).
    pub last_probe: std::sync::Mutex<Instant>,
    /// A reload took `[cluster]` away or renamed this instance: the session revokes its
    /// lease and the task ends.
    leaving: std::sync::atomic::AtomicBool,
    /// The task ended after [`Link::leave`] (its lease revoked, or that tried).
    left: std::sync::atomic::AtomicBool,
}

struct Keys {
    health: String,
    vantage: String,
}

impl Keys {
    fn new(cluster: &str, instance: &str) -> Self {
        let root = format!("/meridian/{cluster}/v1/");
        Self {
            health: format!("{root}health/"),
            vantage: format!("{root}vantage/{instance}"),
        }
    }

    /// `(endpoint key, instance)` of a vote's key.
    fn parse<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        key.strip_prefix(&self.health)?.rsplit_once('/')
    }
}

/// Starts the task that publishes and watches votes; returns the link the monitor decides
/// with. Must run inside tokio.
pub fn start(monitor: &Monitor, config: &ClusterConfig) -> Result<Arc<Link>, EtcdError> {
    let connection = Connection::of(config)?;
    let store = connection.client()?;
    let fallback = config.fallback_after(monitor.fastest_interval());
    let link = Arc::new(Link {
        config: config.clone(),
        store: std::sync::Mutex::new((connection, store)),
        generation: AtomicU64::new(0),
        reconnect: Notify::new(),
        lease_ttl: AtomicI64::new(0),
        fleet: std::sync::Mutex::new(Fleet::new(config.instance_name(), fallback)),
        dirty: Notify::new(),
        last_probe: std::sync::Mutex::new(Instant::now()),
        leaving: std::sync::atomic::AtomicBool::new(false),
        left: std::sync::atomic::AtomicBool::new(false),
    });
    let keys = Keys::new(&config.name, &config.instance_name());
    tokio::spawn(run(monitor.clone(), link.clone(), keys));
    Ok(link)
}

/// The etcd client `config` describes (its TLS and password files read again): what the
/// cluster task talks through, and what `meridian check` builds to find an unusable file.
pub fn client(config: &ClusterConfig) -> Result<Etcd, EtcdError> {
    Connection::of(config)?.client()
}

/// What the client to the store is built from, the files' contents included: a reload
/// that changes any of it (a rotated certificate or password, another member list)
/// reconnects with a new client.
#[derive(Clone, PartialEq)]
struct Connection {
    endpoints: Vec<String>,
    timeout_secs: f64,
    tls: ClusterTls,
    login: Option<Login>,
}

impl Connection {
    fn of(config: &ClusterConfig) -> Result<Self, EtcdError> {
        Ok(Self {
            endpoints: config.endpoints.clone(),
            timeout_secs: config.timeout_secs,
            tls: config.tls().map_err(EtcdError::Config)?,
            login: config.login().map_err(EtcdError::Config)?,
        })
    }

    fn client(&self) -> Result<Etcd, EtcdError> {
        Etcd::with_login(
            self.endpoints.clone(),
            Duration::from_secs_f64(self.timeout_secs),
            &self.tls,
            self.login.clone(),
        )
    }
}

impl Link {
    /// A reload's `[cluster]`: when its connection differs from the one in use (files
    /// read again) or the lease time `ttl` from the running session's, the session ends
    /// and a new one starts, with a new client and lease. Its votes are put again on the
    /// new lease, so the fleet keeps seeing them; the old lease expires unused. `Ok(true)`
    /// when it reconnects; an error (a file that does not parse) keeps the client in use.
    pub fn reconnect_with(&self, config: &ClusterConfig, ttl: i64) -> Result<bool, EtcdError> {
        let wanted = Connection::of(config)?;
        let mut store = lock(&self.store);
        let same_client = store.0 == wanted;
        let running_ttl = self.lease_ttl.load(Ordering::Relaxed);
        if same_client && (running_ttl == 0 || running_ttl == ttl) {
            return Ok(false);
        }
        if !same_client {
            let client = wanted.client()?;
            *store = (wanted, client);
        }
        drop(store);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.reconnect.notify_one();
        Ok(true)
    }

    /// Ends the session (revoking its lease, so that the store deletes this instance's
    /// presence and votes at once) and the task that runs it.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.reconnect.notify_one();
    }

    fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Relaxed)
    }

    /// Waits, at most `within`, until the task has ended after [`Link::leave`].
    pub async fn wait_left(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.left.load(Ordering::Acquire) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Lease time: three intervals of the fastest check, and at least 3 s (above etcd's 2 s
/// minimum), whatever fallback is configured: a stopped instance's votes expire as soon.
pub fn lease_ttl(fastest_interval: Duration) -> i64 {
    (3.0 * fastest_interval.as_secs_f64().max(1.0)).ceil() as i64
}

async fn run(monitor: Monitor, link: Arc<Link>, keys: Keys) {
    let mut backoff = Duration::from_millis(100);
    let mut last_warned: Option<Instant> = None;
    loop {
        if link.is_leaving() {
            tracing::info!("cluster store: left");
            link.left.store(true, Ordering::Release);
            return;
        }
        // The client and the lease time as they are now: a reload may have changed them.
        let store = lock(&link.store).1.clone();
        let ttl = lease_ttl(monitor.fastest_interval());
        match session(&monitor, &link, &store, &keys, ttl).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                lock(&link.fleet).store_error = Some(e.to_string());
                // Once, then at most every 30 s while the store stays away.
                if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!("cluster store: {e}");
                    last_warned = Some(Instant::now());
                } else {
                    tracing::debug!("cluster store: {e}");
                }
                // Decide alone as soon as the store is gone for the fallback time.
                monitor.cluster_tick();
                tokio::time::sleep(backoff).await;
                // etcd refusing the request (a wrong password, a missing permission) is
                // not mended by asking every second: every 5 s, each a bcrypt check there.
                let refused = matches!(e, SessionError::Store(EtcdError::Status { .. }));
                let most = Duration::from_secs(if refused { 5 } else { 1 });
                backoff = (backoff * 2).min(most);
            }
        }
    }
}

/// One lease's life: grant, publish, then load and watch the votes, keeping the lease
/// alive; a broken watch (a member died) is loaded and watched again on the same lease,
/// tried at every tick until the store answers. Returns when the lease cannot be granted
/// or is lost, or this instance's presence cannot be written, or when a reload asks for a
/// new one (the caller starts over).
async fn session(
    monitor: &Monitor,
    link: &Link,
    store: &Etcd,
    keys: &Keys,
    ttl: i64,
) -> Result<(), SessionError> {
    let generation = link.generation.load(Ordering::Relaxed);
    let lease = store.grant(ttl).await?;
    link.lease_ttl.store(ttl, Ordering::Relaxed);
    let started = unix_ms();
    store
        .put(
            &keys.vantage,
            format!("{{\"started\":{started}}}").as_bytes(),
            Some(lease),
        )
        .await?;
    let mut published: HashMap<String, Vote> = HashMap::new();
    publish_votes(monitor, link, store, keys, lease, &mut published).await?;
    let period = Duration::from_millis((ttl as u64 * 1000 / 3).max(250));
    let mut ticks = tokio::time::interval(period.min(fallback_tick(link)));
    // Votes that could not be written yet (the store did not answer): tried every tick.
    let mut unpublished = false;
    let mut watch: Option<WatchStream> = None;
    loop {
        if watch.is_none() {
            // At the start, and after the watch broke (its member died): read every vote and
            // watch again, on the same lease. A store that does not answer (an election) is
            // tried again after the next tick, the lease kept alive meanwhile, rather than
            // started over with a new lease once it is back.
            match resync(monitor, link, store, keys).await {
                Ok(w) => watch = Some(w),
                Err(e) => {
                    tracing::debug!("cluster store: reading the votes: {e}; again at the next tick")
                }
            }
        }
        tokio::select! {
            _ = ticks.tick() => {
                // A reload may have changed the fallback time: the refresh follows it.
                let wanted = period.min(fallback_tick(link));
                if wanted != ticks.period() {
                    ticks = tokio::time::interval_at(tokio::time::Instant::now() + wanted, wanted);
                }
                keep_alive(link, store, lease, ttl).await?;
                if unpublished {
                    unpublished = publish_votes(monitor, link, store, keys, lease, &mut published)
                        .await
                        .is_err();
                }
                monitor.cluster_tick();
            }
            batch = next_batch(watch.as_mut()) => match batch {
                Ok(Some(batch)) => {
                    apply_batch(link, keys, batch);
                    monitor.cluster_tick();
                    monitor.publish();
                }
                Ok(None) => watch = None,
                Err(e) => {
                    tracing::debug!("cluster store: watch: {e}; reading the votes again");
                    watch = None;
                }
            },
            _ = link.dirty.notified() => {
                unpublished = publish_votes(monitor, link, store, keys, lease, &mut published)
                    .await
                    .is_err();
            }
            // A wake-up left from before this session began changes nothing.
            _ = link.reconnect.notified() => {
                if link.is_leaving() {
                    // Other instances stop counting this one's votes now, not at expiry.
                    if let Err(e) = store.revoke(lease).await {
                        tracing::warn!("cluster store: revoking the lease on leaving: {e}; its votes expire with it");
                    }
                    return Ok(());
                }
                if link.generation.load(Ordering::Relaxed) != generation {
                    tracing::info!("cluster store: reconnecting with the reloaded settings");
                    return Ok(());
                }
            }
        }
    }
}

/// The watch's next batch; never, while there is no watch.
async fn next_batch(watch: Option<&mut WatchStream>) -> Result<Option<WatchBatch>, EtcdError> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

/// Reads every vote (replacing what was known) and watches from the next revision.
async fn resync(
    monitor: &Monitor,
    link: &Link,
    store: &Etcd,
    keys: &Keys,
) -> Result<WatchStream, SessionError> {
    let (revision, kvs) = store.get_prefix(&keys.health).await?;
    {
        let mut fleet = lock(&link.fleet);
        fleet.remote.clear();
        let me = fleet.instance.clone();
        for (key, value) in kvs {
            apply(&mut fleet, keys, &me, &key, Some(&value));
        }
        fleet.store_answered(Instant::now());
    }
    monitor.cluster_tick();
    monitor.publish();
    Ok(store.watch_prefix(&keys.health, revision + 1).await?)
}

/// Refreshes the lease while the checker runs (a wedged instance's votes must expire); a
/// store that does not answer is only noted (the mode falls back on its own), a lost lease
/// ends the session.
async fn keep_alive(link: &Link, store: &Etcd, lease: i64, ttl: i64) -> Result<(), SessionError> {
    if !checker_alive(link, ttl) {
        return Ok(());
    }
    let asked = Instant::now();
    match store.keep_alive(lease).await {
        Ok(_) => {
            let mut fleet = lock(&link.fleet);
            fleet.store_latency = Some(asked.elapsed());
            fleet.store_answered(Instant::now());
            Ok(())
        }
        Err(e @ EtcdError::LeaseNotFound(_)) => Err(e.into()),
        Err(e) => {
            tracing::debug!("cluster store: keepalive: {e}");
            Ok(())
        }
    }
}

/// An eighth of the fallback time: how often the lease is refreshed and the mode
/// re-evaluated at least. Each refresh that answers proves the store alive, so when it
/// goes away (a leader dies) nearly the whole fallback time is left for it to come back.
fn fallback_tick(link: &Link) -> Duration {
    (lock(&link.fleet).fallback_after / 8).max(Duration::from_millis(100))
}

/// The checker loop recorded a probe recently enough that this instance's votes still
/// mean something.
fn checker_alive(link: &Link, ttl: i64) -> bool {
    lock(&link.last_probe).elapsed() < Duration::from_secs(ttl as u64 * 2)
}

fn apply_batch(link: &Link, keys: &Keys, batch: WatchBatch) {
    let mut fleet = lock(&link.fleet);
    let me = fleet.instance.clone();
    for event in &batch.events {
        match event {
            WatchEvent::Put { key, value } => apply(&mut fleet, keys, &me, key, Some(value)),
            WatchEvent::Delete { key } => apply(&mut fleet, keys, &me, key, None),
        }
    }
    fleet.store_answered(Instant::now());
}

/// One key's new value (`None`: deleted, or its lease expired).
fn apply(fleet: &mut Fleet, keys: &Keys, me: &str, key: &str, value: Option<&[u8]>) {
    let Some((endpoint, instance)) = keys.parse(key) else {
        return;
    };
    if instance == me {
        return;
    }
    let vote = value.and_then(|v| serde_json::from_slice::<Vote>(v).ok());
    match vote {
        Some(v) => {
            fleet
                .remote
                .entry(endpoint.to_string())
                .or_default()
                .insert(instance.to_string(), v);
        }
        None => {
            if let Some(m) = fleet.remote.get_mut(endpoint) {
                m.remove(instance);
                if m.is_empty() {
                    fleet.remote.remove(endpoint);
                }
            }
        }
    }
}

/// Writes this instance's votes that changed since the last write (all after a new
/// lease), and deletes those of endpoints it no longer checks.
async fn publish_votes(
    monitor: &Monitor,
    link: &Link,
    store: &Etcd,
    keys: &Keys,
    lease: i64,
    published: &mut HashMap<String, Vote>,
) -> Result<(), SessionError> {
    let own = monitor.own_votes();
    let me = lock(&link.fleet).instance.clone();
    for (endpoint, vote) in &own {
        // Written when the state (or the check's definition) changes, and once when the
        // first probe has run; a new reason or round trip alone is not worth a write.
        if published.get(endpoint).is_some_and(|p| {
            p.up == vote.up
                && p.def == vote.def
                && (p.reason != NOT_CHECKED || vote.reason == NOT_CHECKED)
        }) {
            continue;
        }
        let value = serde_json::to_vec(vote)?;
        store
            .put(
                &format!("{}{endpoint}/{me}", keys.health),
                &value,
                Some(lease),
            )
            .await?;
        lock(&link.fleet).puts += 1;
        published.insert(endpoint.clone(), vote.clone());
    }
    let gone: Vec<String> = published
        .keys()
        .filter(|k| !own.contains_key(*k))
        .cloned()
        .collect();
    for endpoint in gone {
        store
            .delete(&format!("{}{endpoint}/{me}", keys.health))
            .await?;
        published.remove(&endpoint);
    }
    Ok(())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Fleet {
    /// Re-evaluates the mode; `Some(shared)` when it changed.
    pub(super) fn update_mode(&mut self, now: Instant) -> Option<bool> {
        let shared = self.mode_now(now);
        (shared != self.shared).then(|| {
            self.shared = shared;
            shared
        })
    }
}

/// A vote's `since` from a target state's last change.
pub(super) fn since_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(up: bool, def: &str) -> Vote {
        Vote {
            up,
            def: def.into(),
            reason: String::new(),
            since: 0,
            rtt_ms: None,
        }
    }

    #[test]
    fn keys_split_endpoint_and_instance() {
        let k = Keys::new("prod", "m1");
        assert_eq!(
            k.parse("/meridian/prod/v1/health/example.com/web/fra-1/m2"),
            Some(("example.com/web/fra-1", "m2"))
        );
        assert_eq!(k.parse("/meridian/prod/v1/vantage/m2"), None);
        assert_eq!(k.vantage, "/meridian/prod/v1/vantage/m1");
    }

    #[test]
    fn votes_on_another_definition_are_ignored_and_counted() {
        let mut f = Fleet::new("m1".into(), Duration::from_secs(2));
        let keys = Keys::new("prod", "m1");
        let put = |f: &mut Fleet, i: &str, v: Vote| {
            let key = format!("/meridian/prod/v1/health/z/p/e/{i}");
            let value = serde_json::to_vec(&v).expect("json");
            apply(f, &keys, "m1", &key, Some(&value));
        };
        put(&mut f, "m2", vote(false, "d1"));
        put(&mut f, "m3", vote(false, "other"));
        // Its own key never counts twice.
        put(&mut f, "m1", vote(false, "d1"));
        let t = f.tally("z/p/e", true, "d1");
        assert_eq!((t.up, t.down, t.ignored), (1, 1, 1));
        apply(
            &mut f,
            &keys,
            "m1",
            "/meridian/prod/v1/health/z/p/e/m2",
            None,
        );
        let t = f.tally("z/p/e", true, "d1");
        assert_eq!((t.up, t.down, t.ignored), (1, 0, 1));
    }

    #[test]
    fn the_mode_falls_back_at_once_and_rejoins_after_the_hold() {
        let hold = Duration::from_secs(2);
        let mut f = Fleet::new("m1".into(), hold);
        let t0 = Instant::now();
        assert_eq!(f.update_mode(t0), None, "starts alone");
        f.store_answered(t0);
        assert_eq!(f.update_mode(t0), None, "not before the hold");
        f.store_answered(t0 + Duration::from_millis(1500));
        assert_eq!(f.update_mode(t0 + Duration::from_millis(2100)), Some(true));
        // Silent for longer than the fallback time: alone.
        assert_eq!(f.update_mode(t0 + Duration::from_millis(3600)), Some(false));
        // Back: a fresh answer starts the hold again.
        f.store_answered(t0 + Duration::from_millis(4000));
        assert_eq!(f.update_mode(t0 + Duration::from_millis(4500)), None);
        f.store_answered(t0 + Duration::from_millis(5500));
        assert_eq!(f.update_mode(t0 + Duration::from_millis(6100)), Some(true));
    }
}
