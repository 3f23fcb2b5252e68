//! DNSSEC in answers from a signed zone (RFC 4035 §3.1): the RRSIGs that cover each RRset
//! written, and the NSEC records that prove a name or a type absent. Only for a DO query to
//! a signed zone ([`Sink::dnssec_ok`]); everything here is read from records signed at load
//! (or in the zone file), nothing is signed per query.

use super::*;

impl Zone {
    /// Signed: DO queries get signatures and proofs.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    /// After an RRset of type `covered` from `node` was written under `owner`: its
    /// signatures, with a TTL no higher than the RRset's `ttl`.
    pub(super) fn add_sigs<S: Sink>(
        &self,
        node: &Node,
        owner: &[u8],
        covered: u16,
        section: Section,
        ttl: u32,
        sink: &mut S,
    ) {
        let Some(sigs) = node.get(rtype::RRSIG) else {
            return;
        };
        for (i, rd) in sigs.rdata.iter().enumerate() {
            if rd.get(..2) == Some(&covered.to_be_bytes()[..]) {
                sink.record(section, owner, rtype::RRSIG, sigs.ttl_of(i).min(ttl), rd);
            }
        }
    }

    /// The NSEC at entry `i` and its signatures, in the authority section.
    fn add_nsec_at<S: Sink>(&self, i: u32, sink: &mut S) {
        let Some((owner, node)) = self.node_at(i as usize) else {
            return;
        };
        if let Some(nsec) = node.get(rtype::NSEC)
            && sink.rrset(Section::Authority, owner, nsec, nsec.ttl)
        {
            self.add_sigs(node, owner, rtype::NSEC, Section::Authority, nsec.ttl, sink);
        }
    }

    /// The position (in `nsec_order`) of the NSEC whose owner is `name` or precedes it
    /// most closely in canonical order: the one that matches or covers `name`.
    pub(super) fn covering(&self, name: &[u8]) -> Option<usize> {
        if self.nsec_order.is_empty() {
            return None;
        }
        let mut key = [0u8; name::CANONICAL_KEY_MAX];
        let len = name::canonical_key(name, &mut key);
        let key = &key[..len];
        let after = self
            .nsec_keys
            .partition_point(|&k| self.nsec_key_bytes.get(k) <= key);
        // Before the first (the apex, the smallest name): the last NSEC wraps around.
        Some(after.checked_sub(1).unwrap_or(self.nsec_order.len() - 1))
    }

    /// Writes the NSEC at `position` in `nsec_order`, with its signatures.
    pub(super) fn add_nsec_position<S: Sink>(&self, position: usize, sink: &mut S) {
        if let Some(&i) = self.nsec_order.get(position) {
            self.add_nsec_at(i, sink);
        }
    }

    /// The position in `nsec_order` of the NSEC at `stored` (an owner with data).
    fn nsec_position(&self, stored: &[u8]) -> Option<usize> {
        self.node(stored)
            .and_then(|n| n.get(rtype::NSEC))
            .and_then(|_| self.covering(stored))
    }

    /// Proves `name` (lowercase wire) absent: the NSEC that covers it. Returns which one
    /// was written, so that a second proof does not repeat it.
    pub(super) fn add_cover<S: Sink>(
        &self,
        name: &[u8],
        skip: Option<usize>,
        sink: &mut S,
    ) -> Option<usize> {
        let at = self.covering(name)?;
        if Some(at) != skip
            && let Some(&i) = self.nsec_order.get(at)
        {
            self.add_nsec_at(i, sink);
        }
        Some(at)
    }

    /// Below a delegation: its signed DS, or the cut's NSEC proving it has none.
    pub(super) fn add_referral_proof<S: Sink>(&self, node: &Node, cut: &[u8], sink: &mut S) {
        match node.get(rtype::DS) {
            Some(ds) => {
                if sink.rrset(Section::Authority, cut, ds, ds.ttl) {
                    self.add_sigs(node, cut, rtype::DS, Section::Authority, ds.ttl, sink);
                }
            }
            None => self.add_nodata_proof(node, cut, sink),
        }
    }

    /// After an answer from the wildcard `node` (named `owner`) for `key`: the NSEC
    /// proving `key` itself absent, unless it is the wildcard's own, already written
    /// for a NODATA.
    pub(super) fn add_wildcard_proof<S: Sink>(
        &self,
        node: &Node,
        owner: &[u8],
        key: &[u8],
        qtype: u16,
        sink: &mut S,
    ) {
        let nodata = qtype != rtype::ANY && node.get(qtype).is_none();
        let written = if nodata {
            self.nsec_position(owner)
        } else {
            None
        };
        self.add_cover(key, written, sink);
    }

    /// NODATA at an existing name: its own NSEC, or for an empty non-terminal (no NSEC of
    /// its own) the NSEC that covers it.
    pub(super) fn add_nodata_proof<S: Sink>(&self, node: &Node, key: &[u8], sink: &mut S) {
        if node.get(rtype::NSEC).is_some()
            && let Some(i) = self.entry_at(name_hash(key), key)
        {
            self.add_nsec_at(i, sink);
        } else {
            self.add_cover(key, None, sink);
        }
    }

    /// NXDOMAIN: the NSEC covering `key`, and the one covering the wildcard at its closest
    /// encloser (the deepest existing ancestor).
    pub(super) fn add_nxdomain_proof<S: Sink>(&self, key: &[u8], sink: &mut S) {
        let first = self.add_cover(key, None, sink);
        let mut encloser = name::parent(key);
        while let Some(e) = encloser {
            if self.node(e).is_some() || e.len() <= self.origin.len() {
                break;
            }
            encloser = name::parent(e);
        }
        let Some(e) = encloser else {
            return;
        };
        let mut wild = [0u8; MAX_NAME_LEN];
        let len = e.len() + 2;
        if len > MAX_NAME_LEN {
            return;
        }
        wild[0] = 1;
        wild[1] = b'*';
        wild[2..len].copy_from_slice(e);
        self.add_cover(&wild[..len], first, sink);
    }
}
