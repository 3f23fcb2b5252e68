//! The snapshot: everything the query path reads, frozen and swapped whole on reload, and
//! the two atomic pointers (snapshot, health view) every listener reads through.

use std::sync::Arc;

use super::prerender::StaticAnswers;
use super::transfer::Transfers;
use crate::health::HealthView;
use crate::published::Published;
use crate::routing::Routing;
use crate::stats::Counter;
use crate::zone::ZoneSet;

/// The snapshot every listener reads; replaced whole on reload.
pub type SharedSnapshot = Arc<Published<Snapshot>>;
/// The health view every listener reads; replaced whole when a state changes.
pub type SharedHealth = Arc<Published<HealthView>>;

/// The next [`Snapshot::serial`].
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Everything the query path needs, frozen. Swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every reload; health views name the generation they were built for.
    pub generation: u64,
    /// Different for every snapshot loaded in this process (answer caches key on it: two
    /// snapshots may share a generation, never a serial).
    pub serial: u64,
    /// Health as known when this snapshot went live, used until the monitor publishes a
    /// view for this generation.
    pub initial_health: HealthView,
    pub zones: ZoneSet,
    /// Responses to static names, rendered from `zones` at load (see server::prerender).
    pub static_answers: StaticAnswers,
    /// The same for DO queries to signed zones (with signatures and proofs).
    pub static_answers_dnssec: StaticAnswers,
    /// Queries per zone, by zone index (they restart with each reload).
    /// Shared with the snapshot before a reload when the zone is still served, so the
    /// totals run on across reloads.
    pub zone_queries: Box<[Arc<Counter>]>,
    pub routing: Routing,
    /// Use ECS addresses to locate clients.
    pub ecs: bool,
    /// Identity as TXT RDATA-ready bytes (NSID payload).
    pub identity: Option<Box<[u8]>>,
    pub max_udp_payload: u16,
    /// Who may transfer which zone (AXFR/IXFR), TSIG keys, NOTIFY targets.
    pub transfer: Transfers,
    /// DNS Cookies (RFC 7873): the secrets, or `None` when cookies are off.
    pub cookies: Option<super::cookies::CookieSecrets>,
    /// IXFR differences of the zones that may be transferred, by lowercase wire origin.
    pub journals: rustc_hash::FxHashMap<Box<[u8]>, Arc<super::journal::Journal>>,
    /// Signed zones' keys for the dynamic answers (health views carry the signatures).
    pub signers: Vec<crate::dnssec::ZoneSigner>,
}

impl Snapshot {
    /// Carries `old`'s IXFR journals over, with the difference to this snapshot appended for
    /// every transferable zone whose serial went up (at most the zone's `ixfr_history`).
    pub fn adopt_journals(&mut self, old: &Snapshot) {
        use super::journal::{diff, newer};
        for zone in self.zones.zones() {
            let origin = zone.origin();
            let Some(keep) = self.transfer.zone(origin).map(|p| p.history) else {
                continue;
            };
            let Some(prev) = old.zones.by_origin(origin) else {
                continue;
            };
            let carried = old.journals.get(origin).cloned().unwrap_or_default();
            let journal = if keep == 0 {
                continue;
            } else if prev.serial() == zone.serial() {
                carried
            } else if newer(zone.serial(), prev.serial())
                && let Some(d) = diff(prev, zone)
            {
                Arc::new(carried.with(d, keep))
            } else {
                // The serial went back: the history no longer leads here.
                continue;
            };
            self.journals.insert(origin.into(), journal);
        }
    }

    /// Takes over `old`'s per-zone and per-name counters wherever the zone, or the name and
    /// datacenter, is still there: a reload does not restart them.
    pub fn adopt_counters(&mut self, old: &Snapshot) {
        for (z, slot) in self.zones.zones().iter().zip(self.zone_queries.iter_mut()) {
            let prev = old.zones.position_of(z.origin());
            if let Some(c) = prev.and_then(|i| old.zone_queries.get(i)) {
                *slot = c.clone();
            }
        }
        let mut by_name: std::collections::HashMap<(&[u8], &str), &Arc<Counter>> =
            std::collections::HashMap::new();
        for n in &old.routing.names {
            for (dc, c) in old.routing.answer_slots(n).zip(n.answers.iter()) {
                by_name.insert((&n.owner[..], dc), c);
            }
        }
        let routing = &self.routing;
        let mut adopted: Vec<(usize, usize, Arc<Counter>)> = Vec::new();
        for (ni, n) in routing.names.iter().enumerate() {
            for (si, dc) in routing.answer_slots(n).enumerate() {
                if let Some(c) = by_name.get(&(&n.owner[..], dc)) {
                    adopted.push((ni, si, (*c).clone()));
                }
            }
        }
        for (ni, si, c) in adopted {
            if let Some(slot) = self
                .routing
                .names
                .get_mut(ni)
                .and_then(|n| n.answers.get_mut(si))
            {
                *slot = c;
            }
        }
    }
}

impl Snapshot {
    /// A serial no other snapshot of this process has.
    pub fn next_serial() -> u64 {
        NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
