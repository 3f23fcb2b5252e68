//! The IXFR journal (RFC 1995): for each zone that may be transferred, the differences
//! between its last versions, computed when a reload brings a new serial (not per query),
//! kept in memory with the snapshot, at most `ZoneTransfer::history` of them.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::dns::rtype;
use crate::zone::Zone;

/// One record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub owner: Box<[u8]>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Box<[u8]>,
}

/// From one serial to the next: the old SOA, what went, the new SOA, what came.
#[derive(Debug)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    pub old_soa: Change,
    pub new_soa: Change,
    pub removed: Vec<Change>,
    pub added: Vec<Change>,
}

/// A zone's differences, oldest first, each one's `to` the next one's `from`.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    pub diffs: VecDeque<Arc<Diff>>,
}

impl Journal {
    /// Where the chain from `serial` up to `current` starts, if the journal holds it whole.
    pub fn chain(&self, serial: u32, current: u32) -> Option<usize> {
        let start = self.diffs.iter().position(|d| d.from == serial)?;
        let mut at = serial;
        for d in self.diffs.range(start..) {
            if d.from != at {
                return None;
            }
            at = d.to;
        }
        (at == current).then_some(start)
    }

    /// This journal with `diff` appended, keeping the newest `keep`.
    pub fn with(&self, diff: Diff, keep: usize) -> Journal {
        let mut diffs = self.diffs.clone();
        // A chain must be contiguous: a diff that does not continue it starts a new one.
        if diffs.back().is_some_and(|d| d.to != diff.from) {
            diffs.clear();
        }
        diffs.push_back(Arc::new(diff));
        while diffs.len() > keep {
            diffs.pop_front();
        }
        Journal { diffs }
    }
}

fn soa_change(zone: &Zone) -> Option<Change> {
    let soa = zone.soa()?;
    Some(Change {
        owner: zone.origin().into(),
        rtype: rtype::SOA,
        ttl: soa.ttl,
        rdata: soa.rdata.first()?.into(),
    })
}

/// Every static record of `zone` but its SOA: (owner, type, TTL, RDATA).
fn records(zone: &Zone) -> impl Iterator<Item = (&[u8], u16, u32, &[u8])> {
    zone.nodes()
        .filter(|(_, n)| n.dynamic().is_none())
        .flat_map(move |(owner, node)| {
            node.rrsets
                .iter()
                .filter(move |set| !(set.rtype == rtype::SOA && owner == zone.origin()))
                .flat_map(move |set| {
                    set.rdata
                        .iter()
                        .enumerate()
                        .map(move |(i, rd)| (owner, set.rtype, set.ttl_of(i), rd))
                })
        })
}

/// What changed from `old` to `new` (same origin); `None` without SOAs.
pub fn diff(old: &Zone, new: &Zone) -> Option<Diff> {
    let owned = |(o, t, ttl, rd): (&[u8], u16, u32, &[u8])| Change {
        owner: o.into(),
        rtype: t,
        ttl,
        rdata: rd.into(),
    };
    let before: FxHashSet<_> = records(old).collect();
    let after: FxHashSet<_> = records(new).collect();
    let mut removed: Vec<Change> = before.difference(&after).map(|r| owned(*r)).collect();
    let mut added: Vec<Change> = after.difference(&before).map(|r| owned(*r)).collect();
    // A stable order: the same change always goes out the same way.
    let order = |a: &Change, b: &Change| {
        (&a.owner, a.rtype, &a.rdata, a.ttl).cmp(&(&b.owner, b.rtype, &b.rdata, b.ttl))
    };
    removed.sort_by(order);
    added.sort_by(order);
    Some(Diff {
        from: old.serial(),
        to: new.serial(),
        old_soa: soa_change(old)?,
        new_soa: soa_change(new)?,
        removed,
        added,
    })
}

/// Is `new` a later serial than `old` (RFC 1982)?
pub fn newer(new: u32, old: u32) -> bool {
    new != old && (new.wrapping_sub(old) as i32) > 0
}
