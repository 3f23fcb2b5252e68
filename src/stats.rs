//! Query counters for /metrics, kept off the hot path's toes: a query increments memory no
//! other thread writes, and readers sum the threads' slots. No lock, no allocation per
//! query. The server-wide counters ([`Stats`]) sit in one block per thread, so a query
//! touches three cache lines of its thread's block; a per-zone or per-name [`Counter`] has
//! one slot per thread, each on its own cache line.

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

#[inline]
fn slot() -> usize {
    SLOT.with(Cell::get)
}

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.slots[slot()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// This thread's slot (the answer cache counts its hits there directly).
    #[inline]
    pub fn mine(&self) -> &AtomicU64 {
        &self.slots[slot()].0
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

/// Where each server-wide counter sits in a thread's block. The first cache line holds what
/// most queries count: UDP, ECS, NOERROR or NXDOMAIN, A or AAAA.
const UDP: usize = 0;
const ECS: usize = 1;
const ECS_SCOPE_SUM: usize = 2;
const NOERROR: usize = 3;
const NXDOMAIN: usize = 4;
const QTYPE_A: usize = 5;
const QTYPE_AAAA: usize = 6;
const TCP: usize = 7;
const TRUNCATED: usize = 8;
const DROPPED: usize = 9;
const RCODE: usize = 16;
const QTYPE: usize = RCODE + 16;
const FIELDS: usize = (QTYPE + QTYPES.len() + 1).next_multiple_of(8);
/// Positions of A and AAAA in [`QTYPES`].
const INDEX_A: usize = 0;
const INDEX_AAAA: usize = 7;
const _: () = assert!(QTYPES[INDEX_A].0 == 1 && QTYPES[INDEX_AAAA].0 == 28);

/// One thread's server-wide counters, together: a query touches three lines of one block
/// (transport and ECS, its rcode, its type), not one line per counter on as many pages.
#[repr(C, align(64))]
struct Block([AtomicU64; FIELDS]);

impl Default for Block {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// Server-wide counters: a block per thread slot (see [`SLOTS`]).
pub struct Stats {
    blocks: Box<[Block]>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            blocks: (0..SLOTS).map(|_| Block::default()).collect(),
        }
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stats(udp {}, tcp {})",
            self.udp().get(),
            self.tcp().get()
        )
    }
}

/// One server-wide counter: this thread's slot to count in, the sum of all to read.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    stats: &'a Stats,
    index: usize,
}

impl Field<'_> {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        if let Some(c) = self
            .stats
            .blocks
            .get(slot())
            .and_then(|b| b.0.get(self.index))
        {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> u64 {
        self.stats
            .blocks
            .iter()
            .filter_map(|b| b.0.get(self.index))
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

impl Stats {
    #[inline]
    fn field(&self, index: usize) -> Field<'_> {
        Field { stats: self, index }
    }
    #[inline]
    pub fn udp(&self) -> Field<'_> {
        self.field(UDP)
    }
    #[inline]
    pub fn tcp(&self) -> Field<'_> {
        self.field(TCP)
    }
    #[inline]
    pub fn truncated(&self) -> Field<'_> {
        self.field(TRUNCATED)
    }
    /// Messages dropped without an answer (no usable header, or a response).
    #[inline]
    pub fn dropped(&self) -> Field<'_> {
        self.field(DROPPED)
    }
    #[inline]
    pub fn ecs(&self) -> Field<'_> {
        self.field(ECS)
    }
    /// Sum of ECS scope prefixes returned, for the mean.
    #[inline]
    pub fn ecs_scope_sum(&self) -> Field<'_> {
        self.field(ECS_SCOPE_SUM)
    }
    /// Responses with rcode `rcode` (0-15).
    #[inline]
    pub fn rcode(&self, rcode: usize) -> Option<Field<'_>> {
        rcode_field(rcode).map(|i| self.field(i))
    }
    /// Queries of type [`QTYPES`]`[index]`, or "other" at `QTYPES.len()`.
    #[inline]
    pub fn qtype(&self, index: usize) -> Option<Field<'_>> {
        qtype_field(index).map(|i| self.field(i))
    }

    /// Counts one finished response in this thread's block, which is looked up once: its
    /// rcode (0-15), its type (an index into [`QTYPES`], see [`qtype_index`]), whether it
    /// was truncated, and for a query with ECS the scope answered (`Some(None)`: none).
    #[inline]
    pub fn count_response(
        &self,
        rcode: usize,
        qtype_index: usize,
        truncated: bool,
        ecs: Option<Option<u8>>,
    ) {
        let Some(Block(block)) = self.blocks.get(slot()) else {
            return;
        };
        let inc = |field: Option<usize>, n: u64| {
            if let Some(c) = field.and_then(|i| block.get(i)) {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        inc(rcode_field(rcode), 1);
        inc(qtype_field(qtype_index), 1);
        if truncated {
            inc(Some(TRUNCATED), 1);
        }
        if let Some(scope) = ecs {
            inc(Some(ECS), 1);
            if let Some(s) = scope {
                inc(Some(ECS_SCOPE_SUM), u64::from(s));
            }
        }
    }
}

/// Where the count of responses with rcode `rcode` (0-15) sits in a block.
#[inline]
fn rcode_field(rcode: usize) -> Option<usize> {
    match rcode {
        0 => Some(NOERROR),
        3 => Some(NXDOMAIN),
        1..16 => Some(RCODE + rcode),
        _ => None,
    }
}

/// Where the count of queries of type [`QTYPES`]`[index]` (or "other") sits in a block.
#[inline]
fn qtype_field(index: usize) -> Option<usize> {
    match index {
        INDEX_A => Some(QTYPE_A),
        INDEX_AAAA => Some(QTYPE_AAAA),
        i if i <= QTYPES.len() => Some(QTYPE + i),
        _ => None,
    }
}

// Everything a query counts is `#[inline]`: these are called from other modules (the
// engine, routing), and across codegen units a call would cost more than the count.
/// Dynamic answers of a signed zone sent to a DO query without signatures: their answer set
/// was not signed ahead (more sets than `routing::sets::MAX_SETS`). Rare, so one shared
/// counter is enough.
pub static DNSSEC_UNSIGNED_ANSWERS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(0);

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

#[inline]
pub fn qtype_index(qtype: u16) -> usize {
    QTYPE_INDEX
        .get(usize::from(qtype))
        .map_or(QTYPES.len(), |&i| usize::from(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_counts_in_its_rcode_type_truncation_and_ecs_fields() {
        let stats = Stats::default();
        set_thread_slot(2);
        stats.count_response(3, qtype_index(28), false, None);
        stats.count_response(0, qtype_index(1), true, Some(Some(24)));
        stats.count_response(5, qtype_index(999), false, Some(None));
        stats.count_response(0, qtype_index(15), false, Some(Some(16)));
        let get = |f: Option<Field<'_>>| f.map(|f| f.get());
        assert_eq!(get(stats.rcode(3)), Some(1));
        assert_eq!(get(stats.rcode(0)), Some(2));
        assert_eq!(get(stats.rcode(5)), Some(1));
        assert_eq!(get(stats.rcode(1)), Some(0));
        assert_eq!(get(stats.qtype(qtype_index(28))), Some(1));
        assert_eq!(get(stats.qtype(qtype_index(1))), Some(1));
        assert_eq!(get(stats.qtype(qtype_index(15))), Some(1));
        assert_eq!(get(stats.qtype(QTYPES.len())), Some(1), "other");
        assert_eq!(stats.truncated().get(), 1);
        assert_eq!(stats.ecs().get(), 3);
        assert_eq!(stats.ecs_scope_sum().get(), 40);
        assert_eq!(stats.udp().get(), 0);
    }

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
        let stats = std::sync::Arc::new(Stats::default());
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    set_thread_slot(i);
                    stats.udp().inc();
                    if let Some(f) = stats.rcode(3) {
                        f.add(2);
                    }
                    if let Some(f) = stats.qtype(QTYPES.len()) {
                        f.inc();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(stats.udp().get(), 3);
        assert_eq!(stats.tcp().get(), 0);
        assert_eq!(stats.rcode(3).map(|f| f.get()), Some(6));
        assert_eq!(stats.qtype(QTYPES.len()).map(|f| f.get()), Some(3));
        assert!(stats.rcode(16).is_none() && stats.qtype(QTYPES.len() + 1).is_none());
        // Every rcode and type has a place of its own.
        let mut places: Vec<usize> = (0..16)
            .filter_map(|r| stats.rcode(r).map(|f| f.index))
            .chain((0..=QTYPES.len()).filter_map(|i| stats.qtype(i).map(|f| f.index)))
            .chain([UDP, TCP, TRUNCATED, DROPPED, ECS, ECS_SCOPE_SUM])
            .collect();
        let n = places.len();
        places.sort_unstable();
        places.dedup();
        assert_eq!(places.len(), n);
        assert!(places.iter().all(|&p| p < FIELDS));
        assert_eq!(qtype_index(28), 7);
        assert_eq!(qtype_index(999), QTYPES.len());
    }
}
