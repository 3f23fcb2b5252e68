//! Query counters for /metrics, kept off the hot path's toes: every counter has one slot
//! per UDP thread (on its own cache line), so a query increments memory no other thread
//! writes. Readers sum the slots. No lock, no allocation per query.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots per counter; UDP thread i uses slot i % (SLOTS - 1), everything else the last.
pub const SLOTS: usize = 16;

#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter split into per-thread slots.
#[derive(Default)]
pub struct Counter {
    slots: [Slot; SLOTS],
}

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(SLOTS - 1) };
}

/// Called once by each UDP thread with its index.
pub fn set_thread_slot(i: usize) {
    SLOT.with(|s| s.set(i % (SLOTS - 1)));
}

fn slot() -> usize {
    SLOT.with(Cell::get)
}

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.slots[slot()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counter({})", self.get())
    }
}

/// Query types counted by name; the rest are "other".
pub const QTYPES: [(u16, &str); 18] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (35, "NAPTR"),
    (43, "DS"),
    (48, "DNSKEY"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (257, "CAA"),
    (255, "ANY"),
    (252, "AXFR"),
    (251, "IXFR"),
];

/// Server-wide counters.
#[derive(Default, Debug)]
pub struct Stats {
    pub udp: Counter,
    pub tcp: Counter,
    pub rcode: [Counter; 16],
    pub qtype: [Counter; QTYPES.len() + 1],
    pub truncated: Counter,
    /// Messages dropped without an answer (no usable header, or a response).
    pub dropped: Counter,
    pub ecs: Counter,
    /// Sum of ECS scope prefixes returned, for the mean.
    pub ecs_scope_sum: Counter,
}

pub static STATS: std::sync::LazyLock<Stats> = std::sync::LazyLock::new(Stats::default);

/// Index into [`QTYPES`] for every type below 512 (the rest are "other"): one load per
/// query instead of a scan.
static QTYPE_INDEX: [u8; 512] = {
    let mut table = [QTYPES.len() as u8; 512];
    let mut i = 0;
    while i < QTYPES.len() {
        table[QTYPES[i].0 as usize] = i as u8;
        i += 1;
    }
    table
};

pub fn qtype_index(qtype: u16) -> usize {
    QTYPE_INDEX
        .get(usize::from(qtype))
        .map_or(QTYPES.len(), |&i| usize::from(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sum_across_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || {
                    set_thread_slot(i);
                    for _ in 0..1000 {
                        c.inc();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        c.add(5);
        assert_eq!(c.get(), 4005);
        assert_eq!(qtype_index(28), 7);
        assert_eq!(qtype_index(999), QTYPES.len());
    }
}
