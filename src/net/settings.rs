//! The traffic settings a reload may change while the sockets stay open: rate limiting
//! (`[rrl]`) and the query log (`[query_log]`). The UDP threads check the version once per
//! batch and rebuild their limiter and sampler when it moved; TCP reads it per query.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::querylog::QueryLog;
use crate::config::QueryLogConfig;
use crate::engine::rrl::RrlConfig;

/// One version of the settings.
pub struct TrafficSettings {
    /// Increases with every change.
    pub version: u64,
    pub rrl: RrlConfig,
    pub query_log: Option<QueryLog>,
    pub query_log_config: Option<QueryLogConfig>,
}

pub type SharedSettings = Arc<ArcSwap<TrafficSettings>>;

/// The newest settings' version, readable with one load: the UDP threads compare it per
/// batch and touch the `ArcSwap` only when it moved (an `ArcSwap` load per batch costs
/// dozens of instructions a query at low batch sizes).
static VERSION: AtomicU64 = AtomicU64::new(0);

/// The version the newest settings carry.
#[inline]
pub fn version() -> u64 {
    VERSION.load(Ordering::Acquire)
}

/// The settings to start with: the query log opened (an error if its file cannot be).
pub fn start(
    rrl: &RrlConfig,
    query_log: Option<&QueryLogConfig>,
) -> std::io::Result<SharedSettings> {
    let log = query_log.map(QueryLog::start).transpose()?;
    Ok(Arc::new(ArcSwap::from_pointee(TrafficSettings {
        version: 0,
        rrl: rrl.clone(),
        query_log: log,
        query_log_config: query_log.cloned(),
    })))
}

/// Puts the reloaded settings in place if they differ: a new query log when its section
/// changed (the old one's writer finishes its queue and stops). `Ok(false)`: nothing
/// changed. On an error (the new log's file) the old settings stay.
pub fn update(
    shared: &SharedSettings,
    rrl: &RrlConfig,
    query_log: Option<&QueryLogConfig>,
) -> std::io::Result<bool> {
    let current = shared.load();
    let log_changed = current.query_log_config.as_ref() != query_log;
    if current.rrl == *rrl && !log_changed {
        return Ok(false);
    }
    let log = if log_changed {
        query_log.map(QueryLog::start).transpose()?
    } else {
        current.query_log.clone()
    };
    let version = current.version + 1;
    shared.store(Arc::new(TrafficSettings {
        version,
        rrl: rrl.clone(),
        query_log: log,
        query_log_config: query_log.cloned(),
    }));
    VERSION.store(version, Ordering::Release);
    if log_changed && let Some(old) = &current.query_log {
        old.stop();
    }
    tracing::info!(
        rrl = rrl.enabled(),
        query_log = query_log.is_some(),
        "traffic settings changed by the reload"
    );
    Ok(true)
}
