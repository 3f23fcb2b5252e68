//! Reloading: from SIGHUP, the API, or a change in the watched files. A reload builds a
//! whole new snapshot and swaps it in, or, on any error, changes nothing and says why.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config;
use crate::dns::name;
use crate::engine::{SharedSnapshot, Snapshot};
use crate::monitor::Monitor;
use crate::published::Retired;

/// The outcome of reloads so far, for the API and metrics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Unix seconds of the last attempt.
    pub last_at: AtomicU64,
    last: Mutex<LastReload>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LastReload {
    pub ok: bool,
    pub trigger: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Network tables (geo maps, nearest, latency) kept from the data replaced because
    /// nothing they are built from changed, and built anew.
    pub tables_kept: usize,
    pub tables_built: usize,
    /// Chunks of the zones' names (about 1024 names each) taken from the data replaced,
    /// because they came out the same, of all chunks: what the reload did not hold twice.
    pub chunks_kept: usize,
    pub chunks: usize,
    /// The same for the blocks of pre-rendered answers (one per chunk).
    pub rendered_blocks_kept: usize,
    pub rendered_blocks: usize,
}

/// A warning for each zone whose content changed from `old` while its SOA serial did not.
fn unchanged_serials(new: &crate::engine::Snapshot, old: &crate::engine::Snapshot) -> Vec<String> {
    let mut warnings = Vec::new();
    for z in new.zones.zones() {
        let Some(prev) = old.zones.by_origin(z.origin()) else {
            continue;
        };
        if prev.serial() == z.serial() && prev.fingerprint() != z.fingerprint() {
            warnings.push(format!(
                "zone {}: content changed but the SOA serial is still {}; secondaries will not notice",
                name::to_text(z.origin()),
                z.serial()
            ));
        }
    }
    warnings
}

/// How much of `old` a new snapshot shares: its zones' chunks of names, then its blocks of
/// rendered answers, each as (kept, all).
fn shared_with_old(
    new: &crate::engine::Snapshot,
    old: &crate::engine::Snapshot,
) -> [(usize, usize); 2] {
    let mut chunks = (0, 0);
    for zone in new.zones.zones() {
        let (kept, all) = old
            .zones
            .by_origin(zone.origin())
            .map_or((0, zone.chunk_count()), |o| zone.chunks_shared_with(o));
        chunks = (chunks.0 + kept, chunks.1 + all);
    }
    let blocks = new.static_answers.blocks_shared_with(&old.static_answers);
    [chunks, blocks]
}

impl ReloadStats {
    pub fn last(&self) -> LastReload {
        self.last.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

pub struct Reloader {
    config_path: PathBuf,
    snapshot: SharedSnapshot,
    monitor: Monitor,
    /// `[rrl]` and `[query_log]`, which a reload changes in place.
    settings: crate::net::settings::SharedSettings,
    pub stats: ReloadStats,
    /// One reload at a time (the watcher, a signal and the API may race).
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        config_path: PathBuf,
        snapshot: SharedSnapshot,
        monitor: Monitor,
        settings: crate::net::settings::SharedSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            config_path,
            snapshot,
            monitor,
            settings,
            stats: ReloadStats::default(),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads everything again and swaps it in; on error keeps serving the old data.
    pub async fn reload(self: &Arc<Self>, trigger: &str) -> Result<(), Vec<String>> {
        let _one = self.running.lock().await;
        let this = self.clone();
        // Loading reads files and walks GeoIP databases: keep it off the async workers.
        // So is computing the IXFR differences against the data being replaced.
        // And opening a new query log file, when [rrl] or [query_log] changed.
        let loaded = at_low_priority(move || {
            let serving = this.snapshot.load_full();
            let mut loaded = config::reload(&this.config_path, &serving)?;
            crate::net::settings::update(&this.settings, &loaded.rrl, loaded.query_log.as_ref())
                .map_err(|e| {
                    vec![config::Diagnostic {
                        file: this.config_path.clone(),
                        line: 0,
                        message: e.to_string(),
                    }]
                })?;
            loaded.snapshot.adopt_journals(&this.snapshot.load());
            Ok::<_, Vec<config::Diagnostic>>(loaded)
        })
        .await
        .map_err(|e| vec![format!("reload task: {e}")])?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.stats.last_at.store(now, Ordering::Relaxed);
        match loaded {
            Ok(loaded) => {
                let mut warnings: Vec<String> =
                    loaded.warnings.iter().map(ToString::to_string).collect();
                let old = self.snapshot.load_full();
                warnings.extend(unchanged_serials(&loaded.snapshot, &old));
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                let zones = loaded.snapshot.zones.zones().len();
                let (tables_kept, tables_built) = loaded.tables;
                let names = loaded.snapshot.routing.names.len();
                let (rendered, rendered_bytes) = loaded.snapshot.static_answers.size();
                let render_ms = loaded.snapshot.static_answers.build_time().as_millis();
                let [(chunks_kept, chunks), (blocks_kept, blocks)] =
                    shared_with_old(&loaded.snapshot, &old);
                if let Err(e) = self.monitor.reload_overrides() {
                    tracing::warn!("overrides kept as they were: {e}");
                    warnings.push(format!("overrides kept as they were: {e}"));
                }
                let mut snapshot = loaded.snapshot;
                snapshot.generation = old.generation + 1;
                snapshot.adopt_counters(&old);
                snapshot.initial_health = self.monitor.view_for(&snapshot);
                let new = Arc::new(snapshot);
                let pinned = self.snapshot.store(new.clone());
                // Secondaries of zones whose serial changed hear of it (in the background).
                crate::net::notify::send_changed(Some(&old), &new);
                tokio::spawn(retire(old, pinned));
                self.monitor.reconcile();
                for w in self.monitor.reload_cluster(loaded.cluster.as_ref()) {
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
                self.stats.ok.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = self.stats.last.lock() {
                    *l = LastReload {
                        ok: true,
                        trigger: trigger.into(),
                        errors: Vec::new(),
                        warnings,
                        tables_kept,
                        tables_built,
                        chunks_kept,
                        chunks,
                        rendered_blocks_kept: blocks_kept,
                        rendered_blocks: blocks,
                    };
                }
                tracing::info!(
                    tables_kept,
                    tables_built,
                    trigger,
                    zones,
                    dynamic_names = names,
                    rendered,
                    rendered_bytes,
                    render_ms,
                    chunks,
                    chunks_kept,
                    rendered_blocks = blocks,
                    rendered_blocks_kept = blocks_kept,
                    "reloaded"
                );
                Ok(())
            }
            Err(diags) => {
                let errors: Vec<String> = diags.iter().map(ToString::to_string).collect();
                for e in &errors {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    trigger,
                    errors = errors.len(),
                    "reload failed; still serving the previous data"
                );
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = self.stats.last.lock() {
                    *l = LastReload {
                        ok: false,
                        trigger: trigger.into(),
                        errors: errors.clone(),
                        ..LastReload::default()
                    };
                }
                Err(errors)
            }
        }
    }

    /// Polls the watched paths once a second and reloads when any of them changes. Polling
    /// (rather than inotify) sees files replaced by rename, as editors and `git pull` do,
    /// and directories that appear later; a short settle delay lets a burst of writes end.
    /// `last`: the paths' fingerprint as the serving data was loaded (taken by the load, so
    /// that a change made while the server started is not taken for the baseline).
    pub async fn watch(self: Arc<Self>, paths: Vec<PathBuf>, mut last: u64) {
        // A re-sign that failed (a broken key file) is tried again a minute later, not at
        // every tick; the old signatures stay until then. One that worked may find the next
        // key event already due (it fell due while signing): that one goes at the next tick.
        let mut resign_failed: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let retry = resign_failed.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
            if retry && self.resign_due() {
                let result = self.reload("dnssec re-sign or key event").await;
                resign_failed = result.is_err().then(std::time::Instant::now);
                continue;
            }
            let now = config::fingerprint(&paths);
            if now == last {
                continue;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            last = config::fingerprint(&paths);
            let _ = self.reload("file change").await;
        }
    }
}

impl Reloader {
    /// A signed zone's signatures are half way to expiry, or a key changes state now.
    fn resign_due(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.snapshot.load().signers.iter().any(|s| now >= s.due())
    }
}

/// How long a replaced snapshot may stay in use (a long zone transfer holds it) before the
/// retirer lets go of it anyway; the last user then frees it.
const RETIRE_WAIT: Duration = Duration::from_secs(60);

/// Frees a replaced snapshot off the query path. The UDP threads pin it only for the batch
/// they were in when it was replaced (`pinned` waits for them); the TCP and API readers hold
/// guards while they answer. While this task holds a reference, no query thread drops the
/// last one and pays for freeing a large zone. Then the allocator is asked to return the
/// memory to the system, so RSS comes back down after a reload.
async fn retire(old: Arc<Snapshot>, pinned: Retired<Snapshot>) {
    // Waiting for a batch to end may block: not on an async worker.
    let _ = tokio::task::spawn_blocking(move || drop(pinned)).await;
    let deadline = tokio::time::Instant::now() + RETIRE_WAIT;
    while Arc::strong_count(&old) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        drop(old);
        release_free_memory();
    })
    .await;
}

/// The nice value a reload's load runs at (and the threads it starts: they inherit it).
const RELOAD_NICE: libc::c_int = 10;

/// Runs `work` on a thread of its own at a lower CPU priority and waits for it: a big
/// zone's parsing and rendering then give way to the query threads on a busy machine,
/// instead of taking every core from them (a million-record zone reloaded every 0.75 s
/// at 20,000 q/s on 2 cores lost 0.3 % of the queries to receive-buffer drops).
async fn at_low_priority<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("meridian-reload".into())
        .spawn(move || {
            lower_own_priority();
            // The receiver only goes away when the reload was dropped: nothing to tell.
            let _ = done.send(work());
        })
        .map_err(|e| e.to_string())?;
    result
        .await
        .map_err(|_| "the load stopped (panicked)".to_string())
}

/// Lowers the calling thread's priority to at least RELOAD_NICE (Linux: nice is per
/// thread). A failure leaves it as it was.
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority only read and change the calling
    // thread's scheduling.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now < RELOAD_NICE {
            libc::setpriority(libc::PRIO_PROCESS, tid, RELOAD_NICE);
        }
    }
}

/// glibc keeps freed memory in its arenas; `malloc_trim` hands it back.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The nice value of the calling thread.
    fn own_nice() -> libc::c_int {
        // SAFETY: as in lower_own_priority; getpriority only reads.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[tokio::test]
    async fn the_load_runs_at_low_priority_and_its_threads_inherit_it() {
        let before = own_nice();
        let (load, child) = at_low_priority(|| {
            let child = std::thread::spawn(own_nice).join().expect("child thread");
            (own_nice(), child)
        })
        .await
        .expect("load thread");
        assert_eq!(load, before.max(RELOAD_NICE), "the load's thread");
        assert_eq!(child, load, "a thread the load starts");
        assert_eq!(own_nice(), before, "the caller keeps its priority");
    }
}
