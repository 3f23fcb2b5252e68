//! The time the engine is handed: Unix seconds, read from the system clock by the shells
//! (the engine never reads a clock itself).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds as last stored by [`tick`]; 0 until it first runs.
static COARSE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stores the current time for [`coarse_now`]; the daemon calls it a few times a second.
pub fn tick() {
    COARSE.store(unix_now(), std::sync::atomic::Ordering::Relaxed);
}

/// The time at most a tick old, for the query path: one load instead of a clock read per
/// batch. Before the first tick it reads the clock.
#[inline]
pub fn coarse_now() -> u64 {
    match COARSE.load(std::sync::atomic::Ordering::Relaxed) {
        0 => unix_now(),
        t => t,
    }
}

/// Random bits to seed a thread's or connection's entropy; each request adds
/// [`ENTROPY_STEP`], and routing mixes the result (`routing::splitmix`).
pub fn entropy_seed() -> u64 {
    rand::random()
}

/// What each request adds to its shell's entropy (SplitMix64's increment).
pub const ENTROPY_STEP: u64 = 0x9E37_79B9_7F4A_7C15;
