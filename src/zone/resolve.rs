//! The RFC 1034 §4.3.2 lookup: from the apex down to the question name, a referral at a
//! delegation, a DNAME, the exact node, a wildcard at the closest encloser, or NXDOMAIN;
//! CNAME and DNAME chains inside the zone with a bound on their length.

use super::*;

impl ZoneSet {
    /// Answers one question from `zone`. `qname` is the question name as received (its case
    /// is preserved in answers); it must be a valid uncompressed wire name inside `zone`.
    /// `key` is `qname` lowercased, and `found` what [`ZoneSet::lookup`] found for it.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        qname: &[u8],
        key: &[u8],
        found: Found<'_>,
        qtype: u16,
        sink: &mut S,
        dynamic: &mut D,
    ) -> Outcome {
        let mut out = Outcome {
            rcode: rcode::NOERROR,
            authoritative: true,
            spells_qname: false,
            wildcard: false,
            nonexistent: false,
            wildcard_cover: None,
            referral: false,
        };
        // The common cases: a node found directly, or a name known absent with the wildcard
        // that answers for it; the walk down from the apex otherwise.
        let first = match found {
            Found::Exact(direct) => Step::Node(direct.node),
            Found::Absent(wildcard) => {
                match wildcard.and_then(|w| zone.node_at(w.entry as usize)) {
                    Some((owner, node)) => Step::Wildcard(node, owner),
                    // Settled here: no chain to follow (a random-name flood comes this way).
                    None => {
                        zone.nxdomain(key, sink, &mut out);
                        return out;
                    }
                }
            }
            Found::Search => zone.step(key, qtype),
        };
        let mut cur = [0u8; MAX_NAME_LEN];
        let Some(cur_len) = self.step_answer(
            zone, first, qname, key, 0, qtype, sink, dynamic, &mut out, &mut cur,
        ) else {
            return out;
        };
        let out = self.follow_chain(zone, key, cur, cur_len, qtype, sink, dynamic, out);
        // After the whole chain, in the authority section (unless a referral's glue is
        // already in the additional one).
        if let Some(at) = out.wildcard_cover
            && !out.referral
        {
            zone.add_nsec_position(at as usize, sink);
        }
        out
    }

    /// The rest of a CNAME or DNAME chain after the first step wrote its part.
    #[allow(clippy::too_many_arguments)]
    fn follow_chain<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        key: &[u8],
        mut cur: [u8; MAX_NAME_LEN],
        mut cur_len: usize,
        qtype: u16,
        sink: &mut S,
        dynamic: &mut D,
        mut out: Outcome,
    ) -> Outcome {
        let mut visited = [0u64; MAX_CHAIN];
        visited[0] = name_hash(key);
        for hop in 1..MAX_CHAIN {
            // Follow the chain only inside this zone, and never around a loop.
            let mut lower = name::name_buf();
            let (lower, hash) = name::lower_hash_into(&cur[..cur_len], &mut lower);
            if !is_subdomain(lower, &zone.origin) || visited[..hop].contains(&hash) {
                return out;
            }
            visited[hop] = hash;
            let name = cur;
            let step = zone.step(lower, qtype);
            match self.step_answer(
                zone,
                step,
                &name[..cur_len],
                lower,
                hop,
                qtype,
                sink,
                dynamic,
                &mut out,
                &mut cur,
            ) {
                Some(len) => cur_len = len,
                None => return out,
            }
        }
        out
    }

    /// Writes what one step of the lookup found. Returns the length of the next name in the
    /// chain (written to `next`), or `None` when the answer is complete.
    #[allow(clippy::too_many_arguments)]
    fn step_answer<S: Sink, D: Dynamic>(
        &self,
        zone: &Zone,
        step: Step<'_>,
        name: &[u8],
        key: &[u8],
        hop: usize,
        qtype: u16,
        sink: &mut S,
        dynamic: &mut D,
        out: &mut Outcome,
        next: &mut [u8; MAX_NAME_LEN],
    ) -> Option<usize> {
        let cur = next;
        if matches!(step, Step::Wildcard(..)) {
            out.wildcard = true;
        }
        let dnssec = sink.dnssec_ok() && zone.signed;
        match step {
            Step::Referral { cut, node } => {
                out.referral = true;
                if let Some(ns) = node.get(rtype::NS) {
                    if hop == 0 {
                        out.authoritative = false;
                    }
                    if sink.rrset(Section::Authority, cut, ns, ns.ttl) {
                        if dnssec {
                            zone.add_referral_proof(node, cut, sink);
                        }
                        zone.add_additional(ns, sink);
                    }
                }
                None
            }
            Step::Dname { owner_off, node } => {
                let dname = node.get(rtype::DNAME)?;
                let target = dname.rdata.first()?;
                if sink.rrset(Section::Answer, &key[owner_off..], dname, dname.ttl) && dnssec {
                    zone.add_sigs(
                        node,
                        &key[owner_off..],
                        rtype::DNAME,
                        Section::Answer,
                        dname.ttl,
                        sink,
                    );
                }
                let new_len = owner_off + target.len();
                if new_len > MAX_NAME_LEN {
                    out.rcode = rcode::YXDOMAIN;
                    return None;
                }
                cur[..owner_off].copy_from_slice(&name[..owner_off]);
                cur[owner_off..new_len].copy_from_slice(target);
                out.spells_qname = true;
                sink.record(
                    Section::Answer,
                    name,
                    rtype::CNAME,
                    dname.ttl,
                    &cur[..new_len],
                );
                // The synthesized CNAME answers a CNAME question (RFC 1034 §4.3.2 step 3a
                // follows a CNAME only when QTYPE is not CNAME).
                (qtype != rtype::CNAME).then_some(new_len)
            }
            Step::Node(node) | Step::Wildcard(node, _) if node.dynamic().is_some() => {
                let index = node.dynamic().unwrap_or_default();
                match dynamic.answer(index, name, qtype, sink) {
                    DynamicOutcome::Answered => None,
                    DynamicOutcome::NoData => {
                        zone.add_negative_soa(sink);
                        if dnssec && !dynamic.nodata_proof(index, key, qtype, sink) {
                            zone.add_nodata_proof(node, key, sink);
                        }
                        None
                    }
                    DynamicOutcome::Cname(target) => {
                        let len = target.len().min(MAX_NAME_LEN);
                        cur[..len].copy_from_slice(&target[..len]);
                        Some(len)
                    }
                }
            }
            Step::Node(node) => zone
                .answer_node(node, name, key, qtype, sink)
                .map(|target| {
                    let len = target.len().min(MAX_NAME_LEN);
                    cur[..len].copy_from_slice(&target[..len]);
                    len
                }),
            Step::Wildcard(node, owner) => {
                let next = zone.answer_node(node, name, owner, qtype, sink);
                // The name itself does not exist. (When the chain goes on from here the
                // proof would have to follow later answers: not given, a known gap.)
                if dnssec && next.is_none() {
                    zone.add_wildcard_proof(node, owner, key, qtype, sink);
                } else if dnssec && hop == 0 {
                    out.wildcard_cover = zone.covering(key).and_then(|p| u32::try_from(p).ok());
                }
                next.map(|target| {
                    let len = target.len().min(MAX_NAME_LEN);
                    cur[..len].copy_from_slice(&target[..len]);
                    len
                })
            }
            Step::NxDomain => {
                zone.nxdomain(key, sink, out);
                None
            }
        }
    }
}

impl Zone {
    /// The answer for `key`, which does not exist and has no wildcard: the SOA, and the
    /// proof that the name is absent for a DO query to a signed zone.
    fn nxdomain<S: Sink>(&self, key: &[u8], sink: &mut S, out: &mut Outcome) {
        out.rcode = rcode::NXDOMAIN;
        out.nonexistent = true;
        self.add_negative_soa(sink);
        if sink.dnssec_ok() && self.signed {
            match sink.compact_denial(key, self.negative_ttl) {
                Some(co) => out.rcode = if co { rcode::NXDOMAIN } else { rcode::NOERROR },
                None => self.add_nxdomain_proof(key, sink),
            }
        }
    }
}

/// Where one name leads inside a zone.
enum Step<'z> {
    Node(&'z Node),
    /// The wildcard's node and its owner name.
    Wildcard(&'z Node, &'z [u8]),
    Referral {
        cut: &'z [u8],
        node: &'z Node,
    },
    Dname {
        owner_off: usize,
        node: &'z Node,
    },
    NxDomain,
}

impl Zone {
    /// Walks down from the apex to `key` (lowercase wire, inside this zone), stopping at a
    /// delegation or DNAME on the way, then finds the node, a wildcard, or nothing.
    fn step(&self, key: &[u8], qtype: u16) -> Step<'_> {
        let mut offsets = [0u8; MAX_LABELS];
        let n = label_offsets(key, &mut offsets);
        let key_labels = n - 1;
        // DNAME at the apex redirects everything below it.
        if self.apex_dname && key_labels > self.origin_labels {
            let apex_off = offsets[key_labels - self.origin_labels] as usize;
            if let Some(apex) = self.node(&key[apex_off..])
                && apex.get(rtype::DNAME).is_some()
            {
                return Step::Dname {
                    owner_off: apex_off,
                    node: apex,
                };
            }
        }
        // The deepest node found on the way down: at the last depth, the name's own node.
        let mut found = None;
        for depth in self.origin_labels + 1..=key_labels {
            let off = offsets[key_labels - depth] as usize;
            let anc = &key[off..];
            let Some((stored, node)) = self.entry(anc) else {
                // Closest encloser is one level up: try its wildcard.
                let encloser = &key[offsets[key_labels - depth + 1] as usize..];
                return self.wildcard(encloser);
            };
            if node.get(rtype::NS).is_some() {
                // DS lives on the parent side of the cut.
                if !(depth == key_labels && qtype == rtype::DS) {
                    return Step::Referral { cut: stored, node };
                }
            }
            if depth < key_labels && node.get(rtype::DNAME).is_some() {
                return Step::Dname {
                    owner_off: off,
                    node,
                };
            }
            found = Some(node);
        }
        if let Some(node) = found {
            return Step::Node(node);
        }
        match self.node(key) {
            Some(node) => Step::Node(node),
            None => Step::NxDomain,
        }
    }

    fn wildcard(&self, encloser: &[u8]) -> Step<'_> {
        match self.wildcard_below(encloser) {
            Some((owner, node)) => Step::Wildcard(node, owner),
            None => Step::NxDomain,
        }
    }

    /// The wildcard directly below the name at position `encloser` of the entries: its
    /// position.
    pub(super) fn wildcard_at(&self, encloser: u32) -> Option<super::Wildcard> {
        let entry = self.wildcards.get(encloser)?;
        Some(super::Wildcard { entry })
    }

    /// The wildcard directly below `encloser` (`*.encloser`): its owner and node.
    pub(super) fn wildcard_below(&self, encloser: &[u8]) -> Option<(&[u8], &Node)> {
        let len = encloser.len() + 2;
        if len > MAX_NAME_LEN {
            return None;
        }
        let mut wild = [0u8; MAX_NAME_LEN];
        wild[0] = 1;
        wild[1] = b'*';
        wild[2..len].copy_from_slice(encloser);
        self.entry(&wild[..len])
    }

    /// Answers from an existing node (written under `owner`; `stored` is the node's own
    /// name, lowercase). Returns the CNAME target when the chain goes on.
    fn answer_node<'z, S: Sink>(
        &'z self,
        node: &'z Node,
        owner: &[u8],
        stored: &[u8],
        qtype: u16,
        sink: &mut S,
    ) -> Option<&'z [u8]> {
        let dnssec = sink.dnssec_ok() && self.signed;
        // With signatures, minimal responses: proofs may still follow in the authority
        // section, which must come before any additional record.
        let answer = |set: &RRset, sink: &mut S| {
            if sink.rrset(Section::Answer, owner, set, set.ttl) {
                if dnssec {
                    self.add_sigs(node, owner, set.rtype, Section::Answer, set.ttl, sink);
                } else {
                    self.add_additional(set, sink);
                }
            }
        };
        if qtype == rtype::ANY {
            // RFC 8482 §4.1: one RRset, over UDP and TCP alike (as Knot and NSD do).
            match node.get(rtype::CNAME).or(node.rrsets.first()) {
                Some(set) => answer(set, sink),
                None => self.add_nodata(node, stored, sink),
            }
            return None;
        }
        if let Some(set) = node.get(qtype) {
            answer(set, sink);
            return None;
        }
        if let Some(cname) = node.get(rtype::CNAME) {
            answer(cname, sink);
            return cname
                .rdata
                .first()
                .and_then(|rd| rdata_target(rtype::CNAME, rd));
        }
        self.add_nodata(node, stored, sink);
        None
    }

    /// The negative SOA of a NODATA answer at `node` (named `stored`), and with
    /// signatures its proof.
    fn add_nodata<S: Sink>(&self, node: &Node, stored: &[u8], sink: &mut S) {
        self.add_negative_soa(sink);
        if sink.dnssec_ok() && self.signed {
            self.add_nodata_proof(node, stored, sink);
        }
    }

    fn add_negative_soa<S: Sink>(&self, sink: &mut S) {
        if let Some(soa) = self.soa()
            && sink.negative_soa(&self.origin, soa, self.negative_ttl, &self.negative_soa)
            && sink.dnssec_ok()
            && self.signed
        {
            let apex = self.apex();
            self.add_sigs(
                apex,
                &self.origin,
                rtype::SOA,
                Section::Authority,
                self.negative_ttl,
                sink,
            );
        }
    }

    /// A/AAAA for the targets of NS, MX and SRV records that we hold in this zone,
    /// glue below a cut included.
    fn add_additional<S: Sink>(&self, set: &RRset, sink: &mut S) {
        // RFC 1034 §3.6.2 / RFC 2782 / RFC 9460 §4.1: the targets' addresses, where held.
        if !matches!(
            set.rtype,
            rtype::NS | rtype::MX | rtype::SRV | rtype::SVCB | rtype::HTTPS
        ) {
            return;
        }
        for (i, rd) in set.rdata.iter().enumerate() {
            let Some(target) = rdata_target(set.rtype, rd) else {
                continue;
            };
            let mut key = name::name_buf();
            let key = name::lower_into(target, &mut key);
            if !is_subdomain(key, &self.origin) {
                continue;
            }
            // Skip targets already handled for an earlier record of this RRset.
            let seen = set.rdata.iter().take(i).any(|prev| {
                rdata_target(set.rtype, prev).is_some_and(|t| t.eq_ignore_ascii_case(target))
            });
            if seen {
                continue;
            }
            if let Some(node) = self.node(key) {
                for t in [rtype::A, rtype::AAAA] {
                    if let Some(addr) = node.get(t) {
                        sink.rrset(Section::Additional, key, addr, addr.ttl);
                    }
                }
            }
        }
    }
}
