//! The routing room as the zone lookup sees it for one query ([`Router`]).

use super::{Basis, Client, Routing};
use crate::dns::{Section, Sink, rtype};
use crate::health::HealthView;
use crate::zone::{Dynamic, DynamicOutcome};

/// The routing room seen from the zone lookup for one query: it remembers the narrowest
/// ECS scope any dynamic decision in the answer needed.
pub struct Router<'a> {
    pub routing: &'a Routing,
    pub health: &'a HealthView,
    pub client: Client,
    /// `None` until a dynamic name answered.
    pub scope: Option<u8>,
    /// Count answers per name and datacenter (not for `explain`).
    pub counted: bool,
    /// What the last dynamic answer depended on, and how many dynamic names answered.
    pub basis: Option<Basis<'a>>,
    pub answered: u8,
    /// The snapshot's serial, when table-driven answers may be kept per thread (see
    /// `memo.rs`).
    kept_under: Option<u64>,
}

impl<'a> Router<'a> {
    pub fn new(
        routing: &'a Routing,
        health: &'a HealthView,
        client: Client,
        counted: bool,
    ) -> Self {
        Self {
            routing,
            health,
            client,
            scope: None,
            counted,
            basis: None,
            answered: 0,
            kept_under: None,
        }
    }

    /// This router, keeping table-driven answers per thread under `serial` (the serial of
    /// the snapshot `routing` belongs to: no two snapshots share one).
    pub fn keeping_answers(self, serial: u64) -> Self {
        Self {
            kept_under: Some(serial),
            ..self
        }
    }
}

impl Dynamic for Router<'_> {
    fn nodata_proof<S: Sink>(
        &mut self,
        index: u32,
        owner: &[u8],
        qtype: u16,
        sink: &mut S,
    ) -> bool {
        let Some(name) = self.routing.names.get(index as usize) else {
            return false;
        };
        let serves = name.serves_cname
            || (qtype == rtype::A && name.serves_a)
            || (qtype == rtype::AAAA && name.serves_aaaa);
        // Its own name only: under a wildcard the name asked for needs proofs of its own.
        let Some(empty) = name
            .empty_nsec
            .as_ref()
            .filter(|_| serves && *owner == *name.owner)
        else {
            return false;
        };
        if sink.record(
            Section::Authority,
            owner,
            rtype::NSEC,
            empty.ttl,
            &empty.rdata,
        ) {
            for sig in &empty.sigs {
                sink.record(Section::Authority, owner, rtype::RRSIG, empty.ttl, sig);
            }
        }
        true
    }

    fn answer<S: Sink>(
        &mut self,
        index: u32,
        owner: &[u8],
        qtype: u16,
        sink: &mut S,
    ) -> DynamicOutcome<'_> {
        let (client, health, counted) = (&self.client, self.health, self.counted);
        let (outcome, basis) = match self.kept_under {
            Some(serial) => self
                .routing
                .answer_kept(serial, index, owner, qtype, client, health, counted, sink),
            None => self
                .routing
                .answer(index, owner, qtype, client, health, counted, sink),
        };
        let scope = basis.scope;
        self.scope = Some(self.scope.map_or(scope, |s| s.max(scope)));
        self.basis = Some(basis);
        self.answered = self.answered.saturating_add(1);
        outcome
    }
}
