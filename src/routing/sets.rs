//! Every answer set a dynamic name can give under a health view: what a signed zone must
//! have signed before that view goes live, so that no failover serves an unsigned answer.
//! A superset is fine (a spare signature costs memory, not correctness); a set missing here
//! would be answered without signatures.

use super::{AllDown, DynamicName, Routing, Select};
use crate::dns::rtype;
use crate::health::HealthView;

/// At most this many sets per name and type (k-of-n datacenters with per-endpoint picks
/// can multiply out); beyond it the rest would go unsigned.
pub const MAX_SETS: usize = 256;

impl Routing {
    /// The endpoint lists one group can contribute for `qtype`: its endpoints that are up
    /// and, for failing open, all of them; cut as `select` cuts them.
    fn group_variants(
        &self,
        name: &DynamicName,
        g: u32,
        qtype: u16,
        health: &HealthView,
    ) -> Vec<Vec<u32>> {
        let Some(group) = self.groups.get(g as usize) else {
            return Vec::new();
        };
        let with_type: Vec<u32> = group
            .endpoints
            .clone()
            .filter(|&e| {
                self.endpoints
                    .get(e as usize)
                    .is_some_and(|ep| ep.rdata(qtype).is_some())
            })
            .collect();
        let up: Vec<u32> = with_type
            .iter()
            .copied()
            .filter(|&e| health.endpoint_up(e as usize))
            .collect();
        let mut out: Vec<Vec<u32>> = match name.select {
            Select::All => vec![up, with_type],
            Select::First(k) => vec![
                up.into_iter().take(k as usize).collect(),
                with_type.into_iter().take(k as usize).collect(),
            ],
            Select::Weighted => with_type.into_iter().map(|e| vec![e]).collect(),
        };
        out.retain(|v| !v.is_empty());
        out.sort();
        out.dedup();
        out
    }

    /// The RDATA sets dynamic name `index` can answer with under `health`, by type.
    pub fn answer_sets(&self, index: u32, health: &HealthView) -> Vec<(u16, Vec<&[u8]>)> {
        let Some(name) = self.names.get(index as usize) else {
            return Vec::new();
        };
        let groups: Vec<u32> = self
            .pools
            .get(name.pool as usize)
            .map_or(0..0, |p| p.groups.clone())
            .collect();
        let mut types = Vec::new();
        if name.serves_cname {
            types.push(rtype::CNAME);
        } else {
            if name.serves_a {
                types.push(rtype::A);
            }
            if name.serves_aaaa {
                types.push(rtype::AAAA);
            }
        }
        let mut out: Vec<(u16, Vec<&[u8]>)> = Vec::new();
        for qtype in types {
            let k = if qtype == rtype::CNAME {
                1
            } else {
                usize::from(name.datacenters.max(1)).min(groups.len())
            };
            let variants: Vec<Vec<Vec<u32>>> = groups
                .iter()
                .map(|&g| self.group_variants(name, g, qtype, health))
                .collect();
            let mut sets: Vec<Vec<u32>> = Vec::new();
            combine(&variants, k, 0, &mut Vec::new(), &mut sets);
            for mut set in sets {
                if qtype == rtype::CNAME {
                    // A CNAME RRset is one record: the first pick.
                    set.truncate(1);
                }
                set.sort_unstable();
                set.dedup();
                let rdatas: Vec<&[u8]> = set
                    .iter()
                    .filter_map(|&e| self.endpoints.get(e as usize)?.rdata(qtype))
                    .collect();
                if !rdatas.is_empty() && !out.iter().any(|(t, r)| *t == qtype && *r == rdatas) {
                    out.push((qtype, rdatas));
                }
            }
        }
        if let AllDown::Fallback { a, aaaa, cname } = &name.all_down {
            if !a.is_empty() {
                out.push((rtype::A, a.iter().map(|x| &x[..]).collect()));
            }
            if !aaaa.is_empty() {
                out.push((rtype::AAAA, aaaa.iter().map(|x| &x[..]).collect()));
            }
            if let Some(c) = cname {
                out.push((rtype::CNAME, vec![&c[..]]));
            }
        }
        out
    }
}

/// Every union of one variant from each of `k` distinct groups (taken from `from` on),
/// and of fewer groups when fewer have endpoints: an answer draws from the first `k` groups
/// that are up, which may be fewer. Stops at [`MAX_SETS`].
fn combine(
    variants: &[Vec<Vec<u32>>],
    k: usize,
    from: usize,
    current: &mut Vec<u32>,
    out: &mut Vec<Vec<u32>>,
) {
    if out.len() >= MAX_SETS {
        return;
    }
    if !current.is_empty() && !out.contains(current) {
        out.push(current.clone());
    }
    if k == 0 {
        return;
    }
    for g in from..variants.len() {
        for v in &variants[g] {
            let len = current.len();
            current.extend_from_slice(v);
            combine(variants, k - 1, g + 1, current, out);
            current.truncate(len);
        }
    }
}
