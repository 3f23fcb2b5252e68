//! Writing a dynamic answer's RRsets, with their signatures in a signed zone, and the fixed
//! answer of a name whose candidates are all down.

use super::{DynamicName, Routing};
use crate::dns::{Section, Sink, rtype};
use crate::health::HealthView;
use crate::zone::DynamicOutcome;

impl Routing {
    /// In a signed zone, for a DO query: the signatures of the set just written, made
    /// before this health view went live.
    fn add_sigs<'r, S: Sink>(
        index: u32,
        rtype: u16,
        ttl: u32,
        owner: &[u8],
        rdatas: impl Iterator<Item = &'r [u8]>,
        health: &HealthView,
        sink: &mut S,
    ) {
        if !sink.dnssec_ok() {
            return;
        }
        let hash = crate::dns::sigstore::set_hash(rdatas);
        match health.sigs().get(index, rtype, hash) {
            Some(sigs) => {
                for sig in sigs {
                    sink.record(Section::Answer, owner, rtype::RRSIG, ttl, sig);
                }
            }
            None => {
                crate::stats::DNSSEC_UNSIGNED_ANSWERS
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Writes an RRset of a dynamic answer and, in a signed zone, its signatures.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_signed<'r, S: Sink, I: Iterator<Item = &'r [u8]> + Clone>(
        index: u32,
        rtype: u16,
        ttl: u32,
        owner: &[u8],
        rdatas: I,
        health: &HealthView,
        sink: &mut S,
    ) {
        if sink.records(Section::Answer, owner, rtype, ttl, rdatas.clone()) {
            Self::add_sigs(index, rtype, ttl, owner, rdatas, health, sink);
        }
    }

    pub(super) fn fallback<'a, S: Sink>(
        index: u32,
        name: &DynamicName,
        owner: &[u8],
        qtype: u16,
        fallback: Fallback<'a>,
        health: &HealthView,
        sink: &mut S,
    ) -> DynamicOutcome<'a> {
        let ttl = name.degraded_ttl.unwrap_or(name.ttl);
        if let Some(target) = fallback.cname {
            Self::write_signed(
                index,
                rtype::CNAME,
                ttl,
                owner,
                std::iter::once(target),
                health,
                sink,
            );
            return if qtype == rtype::CNAME {
                DynamicOutcome::Answered
            } else {
                DynamicOutcome::Cname(target)
            };
        }
        match qtype {
            rtype::A if !fallback.a.is_empty() => {
                let rdatas = fallback.a.iter().map(|x| &x[..]);
                Self::write_signed(index, rtype::A, ttl, owner, rdatas, health, sink);
                DynamicOutcome::Answered
            }
            rtype::AAAA if !fallback.aaaa.is_empty() => {
                let rdatas = fallback.aaaa.iter().map(|x| &x[..]);
                Self::write_signed(index, rtype::AAAA, ttl, owner, rdatas, health, sink);
                DynamicOutcome::Answered
            }
            _ => DynamicOutcome::NoData,
        }
    }
}

/// A name's fixed answer when every candidate is down.
pub(super) struct Fallback<'a> {
    pub a: &'a [[u8; 4]],
    pub aaaa: &'a [[u8; 16]],
    pub cname: Option<&'a [u8]>,
}
