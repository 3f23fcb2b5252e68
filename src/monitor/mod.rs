//! Runs the checks in the background and publishes the health view the query path reads.
//!
//! One tokio task per distinct check target. Results go through the rise/fall state
//! machine; on a change the monitor logs why, rebuilds the [`HealthView`] from the current
//! snapshot, the target states and the admin overrides, and swaps it in atomically.
//! Nothing here is on the query path, so plain mutexes are fine.

pub mod etcd;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;

pub mod cluster;
mod history;
mod probe;

use probe::Prober;

use crate::engine::{SharedHealth, SharedSnapshot};
use crate::health::state::{ProbeResult, TargetState};
use crate::health::{
    AdminState, CheckSpec, ClusterStatus, DatacenterStatus, EndpointStatus, HealthView,
    OverrideTarget, Overrides, Status, VoteStatus,
};

/// Why the overrides' state file could not be read or written, or an override not set.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("overrides: {0}")]
    Serialize(#[from] toml::ser::Error),
    #[error("unknown {kind} {key:?}")]
    UnknownTarget { kind: &'static str, key: String },
}

fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OverrideError + '_ {
    move |source| OverrideError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Overrides {
    /// Reads the state file; a missing file is no overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, OverrideError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| OverrideError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// Writes atomically (temp file and rename), so a crash never leaves half a file.
    pub fn save(&self, path: &std::path::Path) -> Result<(), OverrideError> {
        let text = toml::to_string(self)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(io_error(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_error(path))
    }
}

/// The monitor's shared state.
struct Inner {
    snapshot: SharedSnapshot,
    view: SharedHealth,
    states: Mutex<HashMap<CheckSpec, TargetState>>,
    tasks: Mutex<HashMap<CheckSpec, JoinHandle<()>>>,
    overrides: Mutex<Overrides>,
    state_file: Option<PathBuf>,
    /// The fleet's votes, with a `[cluster]`; replaced or taken away by a reload.
    link: arc_swap::ArcSwapOption<cluster::Link>,
    history: Mutex<history::History>,
}

#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Monitor {
    /// Starts checking everything the current snapshot names. Must run inside tokio.
    pub fn start(
        snapshot: SharedSnapshot,
        view: SharedHealth,
        state_file: Option<PathBuf>,
        cluster: Option<&crate::config::ClusterConfig>,
    ) -> Result<Self, OverrideError> {
        let overrides = match &state_file {
            Some(p) => Overrides::load(p)?,
            None => Overrides::default(),
        };
        let m = Monitor {
            inner: Arc::new(Inner {
                snapshot,
                view,
                states: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                overrides: Mutex::new(overrides),
                state_file,
                link: arc_swap::ArcSwapOption::empty(),
                history: Mutex::new(history::History::new()),
            }),
        };
        if let Some(c) = cluster {
            match cluster::start(&m, c) {
                Ok(link) => m.inner.link.store(Some(link)),
                // The config was validated; a client that cannot be built leaves the
                // instance deciding alone, which is what it would do without the store.
                Err(e) => tracing::error!("cluster: cannot start: {e}; deciding alone"),
            }
        }
        m.reconcile();
        Ok(m)
    }

    /// Starts checks for new targets and stops those no longer used; targets that stay
    /// keep their state (a reload does not reset health).
    pub fn reconcile(&self) {
        let snap = self.inner.snapshot.load();
        let wanted: Vec<CheckSpec> = snap.routing.checks.clone();
        {
            let mut tasks = lock(&self.inner.tasks);
            let mut states = lock(&self.inner.states);
            tasks.retain(|spec, handle| {
                let keep = wanted.contains(spec);
                if !keep {
                    handle.abort();
                }
                keep
            });
            states.retain(|spec, _| wanted.contains(spec));
            for spec in &wanted {
                if tasks.contains_key(spec) {
                    continue;
                }
                states
                    .entry(spec.clone())
                    .or_insert_with(|| TargetState::new(spec.timing.initially_up));
                match Prober::new(spec.clone()) {
                    Ok(prober) => {
                        let handle = tokio::spawn(run(self.clone(), prober));
                        tasks.insert(spec.clone(), handle);
                    }
                    Err(e) => {
                        tracing::error!(check = %spec.describe(), "cannot start check: {e}");
                    }
                }
            }
        }
        if let Some(link) = self.inner.link.load_full() {
            link.dirty.notify_one();
        }
        self.publish();
    }

    /// Rebuilds the view from states, votes and overrides, and swaps it in.
    pub fn publish(&self) {
        let snap = self.inner.snapshot.load();
        // Built and stored under the state lock, so concurrent publishers cannot reorder.
        let states = lock(&self.inner.states);
        let overrides = lock(&self.inner.overrides);
        let link = self.inner.link.load_full();
        let fleet = link.as_deref().map(|l| lock(&l.fleet));
        let view = view_for(&snap, &states, &overrides, fleet.as_deref());
        // A signed zone's dynamic answers under this view are signed before it goes live.
        let view = crate::config::dnssec::signed_view(&snap, view, Some(&self.inner.view.load()));
        lock(&self.inner.history).observe(&history::Inputs {
            snap: &snap,
            view: &view,
            states: &states,
            overrides: &overrides,
            fleet: fleet.as_deref(),
        });
        let replaced = self.inner.view.store(Arc::new(view));
        // Dropping it waits for UDP threads pinned on it (a batch): not under these locks,
        // nor on an async worker.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(replaced))),
            Err(_) => drop(replaced),
        }
    }

    /// The view a new snapshot should start with (what the checks know now), so that a
    /// reload never serves one instant of health computed for the old endpoint positions.
    pub fn view_for(&self, snapshot: &crate::engine::Snapshot) -> HealthView {
        let states = lock(&self.inner.states);
        let overrides = lock(&self.inner.overrides);
        let link = self.inner.link.load_full();
        let fleet = link.as_deref().map(|l| lock(&l.fleet));
        let view = view_for(snapshot, &states, &overrides, fleet.as_deref());
        crate::config::dnssec::signed_view(snapshot, view, None)
    }

    /// After a reload (the new snapshot stored): the fallback time follows the new checks
    /// and `fallback_secs`; a new connection (endpoints, timeout, the TLS and password
    /// files and their contents) or lease time starts a new session with the store
    /// ([`cluster::Link::reconnect_with`]). Without a link (`[cluster]` added, or its client
    /// not buildable at start) one is started now. `[cluster]` taken away leaves the fleet
    /// (the lease revoked: the others stop counting this instance's votes at once), and
    /// another fleet `name` or `instance` leaves as the old one and joins as the new.
    pub fn reload_cluster(&self, config: Option<&crate::config::ClusterConfig>) -> Vec<String> {
        let (link, new) = match (self.inner.link.load_full(), config) {
            (None, None) => return Vec::new(),
            // No link: `[cluster]` was added, or its client could not be built at start (a
            // TLS or password file that did not read). Joining needs nothing from the start.
            (None, Some(new)) => return self.join(new),
            (Some(_), None) => {
                self.leave("[cluster] removed");
                return Vec::new();
            }
            // Another fleet or another name in it: leave as the old one, join as the new.
            (Some(link), Some(new))
                if link.config.name != new.name
                    || link.config.instance_name() != new.instance_name() =>
            {
                self.leave("[cluster] name or instance changed");
                return self.join(new);
            }
            (Some(link), Some(new)) => (link, new),
        };
        let fastest = self.fastest_interval();
        lock(&link.fleet).fallback_after = new.fallback_after(fastest);
        let mut warnings = Vec::new();
        match link.reconnect_with(new, cluster::lease_ttl(fastest)) {
            Ok(true) => tracing::info!("[cluster] reconnecting to the store"),
            Ok(false) => {}
            Err(e) => warnings.push(format!("[cluster] kept the store's client as it was: {e}")),
        }
        warnings
    }

    /// Starts the link to the store `config` names; the reload's warning when it cannot.
    fn join(&self, config: &crate::config::ClusterConfig) -> Vec<String> {
        match cluster::start(self, config) {
            Ok(link) => {
                self.inner.link.store(Some(link));
                tracing::info!(
                    instance = %config.instance_name(),
                    "[cluster] joining the fleet's store"
                );
                Vec::new()
            }
            Err(e) => vec![format!("[cluster] cannot start: {e}; deciding alone")],
        }
    }

    /// Leaves the fleet: the store deletes this instance's votes now, not when its lease
    /// runs out. The view is not republished (at a stop it serves the last answers; a reload
    /// republishes through `leave`). Returns the link, whose task the caller may wait for
    /// ([`cluster::Link::wait_left`]).
    pub fn leave_fleet(&self) -> Option<Arc<cluster::Link>> {
        let link = self.inner.link.swap(None)?;
        link.leave();
        Some(link)
    }

    /// Ends the link: its session revokes its lease (the store deletes this instance's
    /// presence and votes at once, rather than when the lease runs out), and the view is
    /// decided by this instance's own checks from now on.
    fn leave(&self, why: &str) {
        if let Some(link) = self.leave_fleet() {
            tracing::info!(
                instance = %link.config.instance_name(),
                "{why}: leaving the fleet's store; deciding alone"
            );
            self.publish();
        }
    }

    /// The interval of the fastest check (1 s when there is none): the store's fallback
    /// time and the lease's are derived from it.
    pub fn fastest_interval(&self) -> Duration {
        let snap = self.inner.snapshot.load();
        snap.routing.fastest_interval()
    }

    /// This instance's vote on every endpoint it checks, by endpoint key.
    pub fn own_votes(&self) -> HashMap<String, cluster::Vote> {
        let snap = self.inner.snapshot.load();
        let states = lock(&self.inner.states);
        let routing = &snap.routing;
        routing
            .endpoints
            .iter()
            .filter_map(|ep| {
                let spec = routing.checks.get(ep.check? as usize)?;
                let state = states.get(spec)?;
                let vote = cluster::Vote {
                    up: state.up,
                    def: spec.definition(),
                    reason: match &state.last {
                        Some(ProbeResult::Failed { reason, .. }) => reason.clone(),
                        Some(ProbeResult::Ok { .. }) => "ok".into(),
                        None => cluster::NOT_CHECKED.into(),
                    },
                    since: cluster::since_ms(state.last_change),
                    rtt_ms: state
                        .last
                        .as_ref()
                        .map(|r| r.latency().as_secs_f64() * 1000.0),
                };
                Some((ep.key.clone(), vote))
            })
            .collect()
    }

    /// Re-evaluates whether this instance decides by the votes or alone; on a change,
    /// says so and publishes a new view.
    pub fn cluster_tick(&self) {
        let Some(link) = self.inner.link.load_full() else {
            return;
        };
        let changed = lock(&link.fleet).update_mode(std::time::Instant::now());
        match changed {
            Some(true) => tracing::warn!("cluster: the store answers: deciding by the votes"),
            Some(false) => {
                tracing::warn!("cluster: the store is gone: deciding from this instance's checks")
            }
            None => return,
        }
        self.publish();
    }

    /// The health view the query path reads now (checks and overrides applied).
    pub fn view(&self) -> Arc<HealthView> {
        self.inner.view.load_full()
    }

    /// Sets (or with `None` clears) an override; persisted to the state file.
    pub fn set_override(
        &self,
        kind: OverrideTarget,
        key: &str,
        state: Option<AdminState>,
    ) -> Result<(), OverrideError> {
        let snap = self.inner.snapshot.load();
        let known = match kind {
            OverrideTarget::Endpoint => snap.routing.endpoints.iter().any(|e| e.key == key),
            OverrideTarget::Datacenter => snap.routing.datacenters.iter().any(|d| d.key == key),
        };
        if !known && state.is_some() {
            return Err(OverrideError::UnknownTarget {
                kind: match kind {
                    OverrideTarget::Endpoint => "endpoint",
                    OverrideTarget::Datacenter => "datacenter",
                },
                key: key.to_string(),
            });
        }
        {
            let mut current = lock(&self.inner.overrides);
            // Saved first, applied after: an override that cannot be saved changes nothing
            // (it would otherwise take effect at the next publish and be lost on restart).
            let mut o = current.clone();
            let map = match kind {
                OverrideTarget::Endpoint => &mut o.endpoints,
                OverrideTarget::Datacenter => &mut o.datacenters,
            };
            match state {
                Some(s) => map.insert(key.to_string(), s),
                None => map.remove(key),
            };
            if let Some(path) = &self.inner.state_file {
                o.save(path)?;
            }
            *current = o;
        }
        tracing::warn!(target_key = key, state = ?state, "admin override");
        self.publish();
        Ok(())
    }

    /// Re-reads the state file, which an operator may edit by hand; a file that does not
    /// parse changes nothing.
    pub fn reload_overrides(&self) -> Result<(), OverrideError> {
        let Some(path) = &self.inner.state_file else {
            return Ok(());
        };
        let fresh = Overrides::load(path)?;
        *lock(&self.inner.overrides) = fresh;
        Ok(())
    }

    pub fn overrides(&self) -> Overrides {
        lock(&self.inner.overrides).clone()
    }

    /// Every endpoint and datacenter with its state, for the API.
    pub fn status(&self) -> Status {
        let snap = self.inner.snapshot.load();
        let view = self.inner.view.load();
        let routing = &snap.routing;
        let states = lock(&self.inner.states);
        let overrides = lock(&self.inner.overrides);
        let link = self.inner.link.load_full();
        let fleet = link.as_deref().map(|l| lock(&l.fleet));
        let fleet = fleet.as_deref();
        let history = lock(&self.inner.history);
        let now = std::time::SystemTime::now();
        let endpoints = routing
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, ep)| {
                let spec = ep.check.and_then(|c| routing.checks.get(c as usize));
                let state = spec.and_then(|s| states.get(s));
                let dc = routing
                    .groups
                    .get(ep.group as usize)
                    .and_then(|g| routing.datacenters.get(g.datacenter as usize))
                    .map(|d| d.key.clone())
                    .unwrap_or_default();
                EndpointStatus {
                    key: ep.key.clone(),
                    datacenter: dc,
                    up: view.endpoint_up(i),
                    admin: overrides.endpoints.get(&ep.key).copied(),
                    check: spec.map(CheckSpec::describe),
                    check_up: state.map(|s| s.up),
                    last_result: state.and_then(|s| {
                        s.last.as_ref().map(|r| match r {
                            ProbeResult::Ok { .. } => "ok".to_string(),
                            ProbeResult::Failed { reason, .. } => reason.clone(),
                        })
                    }),
                    last_latency_ms: state
                        .and_then(|s| s.last.as_ref())
                        .map(|r| r.latency().as_secs_f64() * 1000.0),
                    checks: state.map_or(0, |s| s.checks),
                    failures: state.map_or(0, |s| s.failures),
                    since_secs: state
                        .and_then(|s| now.duration_since(s.last_change).ok().map(|d| d.as_secs())),
                    decided_by: match decided_up(routing, ep, &states, fleet).1 {
                        DecidedBy::NoCheck => "no check",
                        DecidedBy::OwnCheck => "own check",
                        DecidedBy::Votes => "votes",
                    }
                    .to_string(),
                    votes: match (fleet, spec, state) {
                        (Some(f), Some(spec), Some(state)) => vote_status(f, &ep.key, spec, state),
                        _ => Vec::new(),
                    },
                    state_secs: history.endpoint_secs(&ep.key, now),
                }
            })
            .collect();
        let datacenters = routing
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let key = routing.datacenter_key(g).to_string();
                let pool = routing.pool_name(g).to_string();
                DatacenterStatus {
                    admin: overrides.datacenters.get(&key).copied(),
                    state_secs: history.group_secs(&key, &pool, now),
                    key,
                    pool,
                    up: view.group_up(i),
                    endpoints_up: g
                        .endpoints
                        .clone()
                        .filter(|&e| view.endpoint_up(e as usize))
                        .count(),
                    endpoints: g.endpoints.len(),
                    up_share: g.up_share,
                }
            })
            .collect();
        Status {
            endpoints,
            datacenters,
            cluster: fleet.map(|f| cluster_status(f, &routing.checks, &routing.endpoints)),
            changes: history.changes(),
        }
    }

    /// Check results and states for /metrics: (target, up, latency, checks, failures).
    pub fn target_metrics(&self) -> Vec<(String, bool, f64, u64, u64)> {
        let states = lock(&self.inner.states);
        let mut v: Vec<_> = states
            .iter()
            .map(|(spec, s)| {
                (
                    spec.describe(),
                    s.up,
                    s.last.as_ref().map_or(0.0, |r| r.latency().as_secs_f64()),
                    s.checks,
                    s.failures,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn record(&self, spec: &CheckSpec, result: ProbeResult) {
        if let Some(link) = self.inner.link.load_full() {
            *lock(&link.last_probe) = std::time::Instant::now();
        }
        let (transition, first) = {
            let mut states = lock(&self.inner.states);
            let Some(state) = states.get_mut(spec) else {
                return;
            };
            let first = state.checks == 0;
            (
                state.record(result, spec.timing.rise, spec.timing.fall),
                first,
            )
        };
        if first
            && transition.is_none()
            && let Some(link) = self.inner.link.load_full()
        {
            // The first result is worth a vote's write even without a change of state.
            link.dirty.notify_one();
        }
        if let Some(t) = transition {
            let snap = self.inner.snapshot.load();
            let endpoints: Vec<&str> = snap
                .routing
                .endpoints
                .iter()
                .filter(|e| {
                    e.check
                        .and_then(|c| snap.routing.checks.get(c as usize))
                        .is_some_and(|s| s == spec)
                })
                .map(|e| e.key.as_str())
                .collect();
            if t.up {
                tracing::warn!(check = %spec.describe(), endpoints = ?endpoints, reason = %t.reason, "UP");
            } else {
                tracing::warn!(check = %spec.describe(), endpoints = ?endpoints, reason = %t.reason, "DOWN");
            }
            if let Some(link) = self.inner.link.load_full() {
                link.dirty.notify_one();
            }
            self.publish();
        }
    }
}

/// Health for `snap` from target states, the fleet's votes and overrides: endpoints after
/// overrides, and a datacenter group up when its share of up endpoints reaches `up_share`.
fn view_for(
    snap: &crate::engine::Snapshot,
    states: &HashMap<CheckSpec, TargetState>,
    overrides: &Overrides,
    fleet: Option<&cluster::Fleet>,
) -> HealthView {
    let routing = &snap.routing;
    let endpoint_up: Vec<bool> = routing
        .endpoints
        .iter()
        .map(|ep| match overrides.endpoints.get(&ep.key) {
            Some(AdminState::Up) => true,
            Some(AdminState::Down | AdminState::Drain) => false,
            None => decided_up(routing, ep, states, fleet).0,
        })
        .collect();
    let group_up: Vec<bool> = routing
        .groups
        .iter()
        .map(
            |g| match overrides.datacenters.get(routing.datacenter_key(g)) {
                Some(AdminState::Up) => true,
                Some(AdminState::Down | AdminState::Drain) => false,
                None => {
                    let total = g.endpoints.len();
                    let up = g
                        .endpoints
                        .clone()
                        .filter(|&e| endpoint_up.get(e as usize).copied().unwrap_or(true))
                        .count();
                    up > 0 && up as f64 >= g.up_share * total as f64
                }
            },
        )
        .collect();
    HealthView::new(endpoint_up, group_up, snap.generation)
}

/// Every vote on one endpoint, this instance's first.
fn vote_status(
    fleet: &cluster::Fleet,
    key: &str,
    spec: &CheckSpec,
    state: &TargetState,
) -> Vec<VoteStatus> {
    let def = spec.definition();
    let own = VoteStatus {
        instance: fleet.instance.clone(),
        up: state.up,
        counted: true,
        reason: match &state.last {
            Some(ProbeResult::Failed { reason, .. }) => reason.clone(),
            _ => "ok".into(),
        },
        rtt_ms: state
            .last
            .as_ref()
            .map(|r| r.latency().as_secs_f64() * 1000.0),
    };
    let others = fleet
        .remote
        .get(key)
        .into_iter()
        .flat_map(|m| m.iter())
        .map(|(instance, v)| VoteStatus {
            instance: instance.clone(),
            up: v.up,
            counted: v.def == def,
            reason: v.reason.clone(),
            rtt_ms: v.rtt_ms,
        });
    std::iter::once(own).chain(others).collect()
}

/// The fleet as this instance sees it.
fn cluster_status(
    fleet: &cluster::Fleet,
    checks: &[CheckSpec],
    endpoints: &[crate::routing::Endpoint],
) -> ClusterStatus {
    let mut instances: Vec<String> = fleet
        .remote
        .values()
        .flat_map(|m| m.keys().cloned())
        .collect();
    instances.sort();
    instances.dedup();
    let votes_ignored = endpoints
        .iter()
        .filter_map(|ep| Some((ep, checks.get(ep.check? as usize)?)))
        .map(|(ep, spec)| u64::from(fleet.tally(&ep.key, true, &spec.definition()).ignored))
        .sum();
    ClusterStatus {
        instance: fleet.instance.clone(),
        mode: if fleet.shared { "shared" } else { "local" }.into(),
        store_answered_ms_ago: fleet.store_ok.map(|t| t.elapsed().as_millis() as u64),
        store_latency_ms: fleet.store_latency.map(|d| d.as_secs_f64() * 1000.0),
        fallback_ms: fleet.fallback_after.as_millis() as u64,
        votes_written: fleet.puts,
        instances,
        votes_ignored,
        store_error: fleet.store_error.clone(),
    }
}

/// How an endpoint's health was decided, for `/status` and `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// No check: always up.
    NoCheck,
    /// This instance's check alone (no cluster, the store gone, or too few votes).
    OwnCheck,
    /// The fleet's votes under the pool's rule.
    Votes,
}

/// An endpoint's health before overrides: by the votes when the fleet decides, else by
/// this instance's check; and how.
fn decided_up(
    routing: &crate::routing::Routing,
    ep: &crate::routing::Endpoint,
    states: &HashMap<CheckSpec, TargetState>,
    fleet: Option<&cluster::Fleet>,
) -> (bool, DecidedBy) {
    let Some(spec) = ep.check.and_then(|c| routing.checks.get(c as usize)) else {
        return (true, DecidedBy::NoCheck);
    };
    let own = states.get(spec).is_none_or(|s| s.up);
    let Some(fleet) = fleet.filter(|f| f.shared) else {
        return (own, DecidedBy::OwnCheck);
    };
    let rule = routing
        .groups
        .get(ep.group as usize)
        .and_then(|g| routing.pools.get(g.pool as usize))
        .map(|p| p.votes)
        .unwrap_or_default();
    match rule.decide(&fleet.tally(&ep.key, own, &spec.definition())) {
        Some(up) => (up, DecidedBy::Votes),
        None => (own, DecidedBy::OwnCheck),
    }
}

/// Jitter in [0, max): spreads the checks of many targets over the interval.
fn jitter(max: Duration) -> Duration {
    let ms = max.as_millis().max(1) as u64;
    Duration::from_millis(rand::random::<u64>() % ms)
}

async fn run(monitor: Monitor, prober: Prober) {
    let timing = prober.spec().timing.clone();
    // Start spread over the first interval, but soon: the initial state is a guess.
    tokio::time::sleep(jitter(timing.interval.min(Duration::from_millis(500)))).await;
    loop {
        let result = prober.probe().await;
        monitor.record(prober.spec(), result);
        // ±10% so targets configured alike do not probe in lockstep.
        let tenth = timing.interval / 10;
        let next = timing.interval - tenth + jitter(tenth * 2);
        tokio::time::sleep(next).await;
    }
}
