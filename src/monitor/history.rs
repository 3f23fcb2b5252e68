//! The last changes of every endpoint's and datacenter's effective state (after votes and
//! overrides), with why: kept in memory and bounded, for the status page and `/status`.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use super::{DecidedBy, cluster, decided_up};
use crate::health::state::{ProbeResult, TargetState};
use crate::health::{AdminState, CheckSpec, HealthView, Overrides, StateChange};

/// Changes kept; older ones are dropped.
pub const KEPT_CHANGES: usize = 200;

pub(super) struct History {
    /// Last seen state and since when, by key (endpoints and datacenters of the snapshot).
    known: HashMap<String, (bool, SystemTime)>,
    changes: VecDeque<StateChange>,
    started: SystemTime,
}

/// What the monitor knows when it publishes a view.
pub(super) struct Inputs<'a> {
    pub snap: &'a crate::engine::Snapshot,
    pub view: &'a HealthView,
    pub states: &'a HashMap<CheckSpec, TargetState>,
    pub overrides: &'a Overrides,
    pub fleet: Option<&'a cluster::Fleet>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn admin_reason(state: AdminState) -> String {
    format!("override: {}", format!("{state:?}").to_lowercase())
}

fn endpoint_reason(input: &Inputs, ep: &crate::routing::Endpoint) -> String {
    if let Some(admin) = input.overrides.endpoints.get(&ep.key) {
        return admin_reason(*admin);
    }
    let routing = &input.snap.routing;
    let own = ep
        .check
        .and_then(|c| routing.checks.get(c as usize))
        .and_then(|spec| input.states.get(spec))
        .and_then(|s| s.last.as_ref())
        .map(|r| match r {
            ProbeResult::Ok { .. } => "check ok".to_string(),
            ProbeResult::Failed { reason, .. } => reason.clone(),
        });
    match decided_up(routing, ep, input.states, input.fleet).1 {
        DecidedBy::NoCheck => "no check".into(),
        DecidedBy::Votes => format!(
            "fleet votes (own check: {})",
            own.as_deref().unwrap_or("none yet")
        ),
        DecidedBy::OwnCheck => own.unwrap_or_else(|| "not checked yet".into()),
    }
}

fn endpoint_id(key: &str) -> String {
    format!("e {key}")
}

fn group_id(key: &str, pool: &str) -> String {
    format!("g {key} {pool}")
}

impl History {
    pub fn new() -> Self {
        Self {
            known: HashMap::new(),
            changes: VecDeque::new(),
            started: SystemTime::now(),
        }
    }

    /// `id` is unique over endpoints and groups; `key` is what the change names.
    #[allow(clippy::too_many_arguments)]
    fn note(
        &mut self,
        now: SystemTime,
        first: bool,
        kind: &str,
        id: String,
        key: &str,
        up: bool,
        why: String,
    ) {
        let since = if first { self.started } else { now };
        match self.known.get_mut(&id) {
            Some((seen, at)) if *seen != up => {
                *seen = up;
                *at = now;
                if self.changes.len() >= KEPT_CHANGES {
                    self.changes.pop_front();
                }
                self.changes.push_back(StateChange {
                    at_ms: unix_ms(now),
                    kind: kind.into(),
                    key: key.into(),
                    up,
                    reason: why,
                });
            }
            Some(_) => {}
            None => {
                self.known.insert(id, (up, since));
            }
        }
    }

    /// Records a change for every endpoint and datacenter whose state in `input.view`
    /// differs from the last one seen; forgets keys the snapshot no longer has.
    pub fn observe(&mut self, input: &Inputs) {
        let now = SystemTime::now();
        let first = self.known.is_empty();
        let routing = &input.snap.routing;
        for (i, ep) in routing.endpoints.iter().enumerate() {
            let up = input.view.endpoint_up(i);
            let id = endpoint_id(&ep.key);
            let changed = self.known.get(&id).is_some_and(|k| k.0 != up);
            let why = if changed {
                endpoint_reason(input, ep)
            } else {
                String::new()
            };
            self.note(now, first, "endpoint", id, &ep.key, up, why);
        }
        for (i, g) in routing.groups.iter().enumerate() {
            let key = routing.datacenter_key(g);
            let pool = routing.pool_name(g);
            let up = input.view.group_up(i);
            let why = match input.overrides.datacenters.get(key) {
                Some(admin) => admin_reason(*admin),
                None => {
                    let endpoints_up = g
                        .endpoints
                        .clone()
                        .filter(|&e| input.view.endpoint_up(e as usize))
                        .count();
                    format!(
                        "{endpoints_up} of {} endpoints up (needs {:.0}%)",
                        g.endpoints.len(),
                        g.up_share * 100.0
                    )
                }
            };
            let shown = format!("{key} ({pool})");
            self.note(
                now,
                first,
                "datacenter",
                group_id(key, pool),
                &shown,
                up,
                why,
            );
        }
        let keep: std::collections::HashSet<String> = routing
            .endpoints
            .iter()
            .map(|e| endpoint_id(&e.key))
            .chain(
                routing
                    .groups
                    .iter()
                    .map(|g| group_id(routing.datacenter_key(g), routing.pool_name(g))),
            )
            .collect();
        self.known.retain(|k, _| keep.contains(k));
    }

    /// Seconds since an endpoint's state last changed.
    pub fn endpoint_secs(&self, key: &str, now: SystemTime) -> Option<u64> {
        self.secs(&endpoint_id(key), now)
    }

    /// Seconds since a datacenter group's state last changed.
    pub fn group_secs(&self, key: &str, pool: &str, now: SystemTime) -> Option<u64> {
        self.secs(&group_id(key, pool), now)
    }

    fn secs(&self, id: &str, now: SystemTime) -> Option<u64> {
        let (_, at) = self.known.get(id)?;
        now.duration_since(*at).ok().map(|d| d.as_secs())
    }

    pub fn changes(&self) -> Vec<StateChange> {
        self.changes.iter().cloned().collect()
    }
}
