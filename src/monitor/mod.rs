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

mod probe;

use probe::Prober;

use crate::engine::{SharedHealth, SharedSnapshot};
use crate::health::state::{ProbeResult, TargetState};
use crate::health::{
    AdminState, CheckSpec, DatacenterStatus, EndpointStatus, HealthView, OverrideTarget, Overrides,
    Status,
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
            }),
        };
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
        self.publish();
    }

    /// Rebuilds the view from states and overrides, and swaps it in.
    pub fn publish(&self) {
        let snap = self.inner.snapshot.load();
        // Built and stored under the state lock, so concurrent publishers cannot reorder.
        let states = lock(&self.inner.states);
        let overrides = lock(&self.inner.overrides);
        let view = view_for(&snap, &states, &overrides);
        self.inner.view.store(Arc::new(view));
    }

    /// The view a new snapshot should start with (what the checks know now), so that a
    /// reload never serves one instant of health computed for the old endpoint positions.
    pub fn view_for(&self, snapshot: &crate::engine::Snapshot) -> HealthView {
        let states = lock(&self.inner.states);
        let overrides = lock(&self.inner.overrides);
        view_for(snapshot, &states, &overrides)
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
                }
            })
            .collect();
        let datacenters = routing
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let key = routing.datacenter_key(g).to_string();
                DatacenterStatus {
                    admin: overrides.datacenters.get(&key).copied(),
                    key,
                    pool: routing
                        .pools
                        .get(g.pool as usize)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
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
        let transition = {
            let mut states = lock(&self.inner.states);
            let Some(state) = states.get_mut(spec) else {
                return;
            };
            state.record(result, spec.timing.rise, spec.timing.fall)
        };
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
            self.publish();
        }
    }
}

/// Health for `snap` from target states and overrides: endpoints after overrides, and a
/// datacenter group up when its share of up endpoints reaches `up_share`.
fn view_for(
    snap: &crate::engine::Snapshot,
    states: &HashMap<CheckSpec, TargetState>,
    overrides: &Overrides,
) -> HealthView {
    let routing = &snap.routing;
    let endpoint_up: Vec<bool> = routing
        .endpoints
        .iter()
        .map(|ep| match overrides.endpoints.get(&ep.key) {
            Some(AdminState::Up) => true,
            Some(AdminState::Down | AdminState::Drain) => false,
            None => ep
                .check
                .and_then(|c| routing.checks.get(c as usize))
                .and_then(|spec| states.get(spec))
                .is_none_or(|s| s.up),
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
