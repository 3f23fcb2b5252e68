//! Compact denial of existence (RFC 9824) for a signed zone that asks for it: a nonexistent
//! name is answered with one NSEC made for it and signed on the spot, within a per-thread
//! budget of signatures per second; past the budget the zone's NSEC chain answers (signed at
//! load), so a random-subdomain flood cannot take more than the budget of CPU.

use std::cell::Cell;

use crate::dns::{RRset, Section, Sink, rtype};
use crate::dnssec::{COMPACT_RDATA_MAX, ZoneSigner, compact_nsec};

thread_local! {
    /// This thread's (second, signatures made in it).
    static BUDGET: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// Takes `n` signatures from this thread's budget of `per_second` for second `now`.
fn take(now: u64, per_second: u32, n: u32) -> bool {
    BUDGET.with(|b| {
        let (second, used) = b.get();
        let used = if second == now { used } else { 0 };
        if used.saturating_add(n) > per_second {
            b.set((now, used));
            return false;
        }
        b.set((now, used + n));
        true
    })
}

/// The response writer of a DO query to a zone with compact denial: writes as `inner`
/// does, and makes the compact NSEC when asked.
pub(super) struct CompactSink<'s, S: Sink> {
    pub inner: &'s mut S,
    pub signer: &'s ZoneSigner,
    /// The query said CO.
    pub compact_ok: bool,
    /// Unix seconds (the budget's clock).
    pub now: u64,
}

impl<S: Sink> Sink for CompactSink<'_, S> {
    fn dnssec_ok(&self) -> bool {
        self.inner.dnssec_ok()
    }

    fn rrset(&mut self, section: Section, owner: &[u8], set: &RRset, ttl: u32) -> bool {
        self.inner.rrset(section, owner, set, ttl)
    }

    fn negative_soa(
        &mut self,
        origin: &[u8],
        soa: &RRset,
        ttl: u32,
        rendered: &crate::dns::wire::NegativeSoa,
    ) -> bool {
        self.inner.negative_soa(origin, soa, ttl, rendered)
    }

    fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        self.inner.record(section, owner, rtype, ttl, rdata)
    }

    fn records<'r>(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool {
        self.inner.records(section, owner, rtype, ttl, rdatas)
    }

    fn compact_denial(&mut self, owner: &[u8], ttl: u32) -> Option<bool> {
        let budget = self.signer.compact_budget?;
        let keys = u32::try_from(self.signer.keys.len()).ok()?;
        let mut nsec = [0u8; COMPACT_RDATA_MAX];
        let len = compact_nsec(owner, &mut nsec)?;
        if keys == 0 || !take(self.now, budget, keys) {
            return None;
        }
        let nsec = &nsec[..len];
        if !self
            .inner
            .record(Section::Authority, owner, rtype::NSEC, ttl, nsec)
        {
            // Truncated: the writer has set TC; nothing more goes in.
            return Some(self.compact_ok);
        }
        let mut sig = [0u8; COMPACT_RDATA_MAX];
        for key in &self.signer.keys {
            let n = self
                .signer
                .sign_one_into(key, owner, (rtype::NSEC, ttl, nsec), &mut sig)?;
            self.inner
                .record(Section::Authority, owner, rtype::RRSIG, ttl, &sig[..n]);
        }
        Some(self.compact_ok)
    }
}
