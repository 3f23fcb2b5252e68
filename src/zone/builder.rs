//! Building a zone: records are added one by one with the RFC consistency rules checked
//! (CNAME and other data, SOA at the apex, dynamic names), then frozen into a [`Zone`].

use hashbrown::{HashTable, hash_table};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

use super::{NegativeSoa, Node, Zone, ZoneError, hash_name, soa_field};
use crate::dns::name::{self, is_subdomain};
use crate::dns::{RRset, rtype};

/// Collects records for one zone, checks RFC consistency rules, then freezes it.
pub struct ZoneBuilder {
    origin: Box<[u8]>,
    nodes: Nodes,
    warnings: Vec<String>,
}

/// Nodes by owner name: one hash per lookup, and an owner copied only when its node is new
/// (most records add to a name seen on the line before).
#[derive(Default)]
struct Nodes(HashTable<(Box<[u8]>, Node)>);

impl Nodes {
    fn get(&self, owner: &[u8]) -> Option<&Node> {
        self.0
            .find(hash_name(owner), |(k, _)| k[..] == *owner)
            .map(|(_, node)| node)
    }

    fn get_mut(&mut self, owner: &[u8]) -> Option<&mut Node> {
        self.0
            .find_mut(hash_name(owner), |(k, _)| k[..] == *owner)
            .map(|(_, node)| node)
    }

    fn contains_key(&self, owner: &[u8]) -> bool {
        self.get(owner).is_some()
    }

    /// The node of `owner`, made when new.
    fn node_mut(&mut self, owner: &[u8]) -> &mut Node {
        let found = self.0.entry(
            hash_name(owner),
            |(k, _)| k[..] == *owner,
            |(k, _)| hash_name(k),
        );
        match found {
            hash_table::Entry::Occupied(o) => &mut o.into_mut().1,
            hash_table::Entry::Vacant(v) => {
                &mut v.insert((owner.into(), Node::default())).into_mut().1
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.0.iter().map(|(k, node)| (&k[..], node))
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.0.iter_mut().map(|(_, node)| node)
    }

    /// Room for `names` more (growing a big table as it fills rehashes it several times).
    fn reserve(&mut self, names: usize) {
        self.0.reserve(names, |(k, _)| hash_name(k));
    }
}

impl ZoneBuilder {
    pub fn new(origin: Vec<u8>) -> Self {
        Self {
            origin: origin.into_boxed_slice(),
            nodes: Nodes::default(),
            warnings: Vec::new(),
        }
    }

    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    /// Makes room for about `names` more owner names (a hint, from the size of a file).
    pub fn reserve(&mut self, names: usize) {
        self.nodes.reserve(names);
    }

    /// Adds one record. `owner` is lowercase wire form. Errors are reasons, without location.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: Vec<u8>,
    ) -> Result<(), ZoneError> {
        if !is_subdomain(owner, &self.origin) {
            return Err(ZoneError::OutsideZone {
                owner: name::to_text(owner),
                zone: name::to_text(&self.origin),
            });
        }
        if rtype == rtype::SOA && owner != &self.origin[..] {
            return Err(ZoneError::SoaNotAtApex);
        }
        let node = self.nodes.node_mut(owner);
        // A dynamic name holds only its denial proof and signatures (a signed zone's NSEC).
        if node.dynamic().is_some() && !matches!(rtype, rtype::RRSIG | rtype::NSEC) {
            return Err(ZoneError::StaticAtDynamic(name::to_text(owner)));
        }
        let has_cname = node.get(rtype::CNAME).is_some();
        if rtype == rtype::CNAME {
            if node.get(rtype::CNAME).is_some() {
                return Err(ZoneError::SecondCname);
            }
            if node
                .rrsets
                .iter()
                .any(|s| !matches!(s.rtype, rtype::CNAME | 46 | 47))
            {
                return Err(ZoneError::CnameAndOtherData);
            }
        } else if has_cname && !matches!(rtype, 46 | 47) {
            return Err(ZoneError::CnameAndOtherData);
        }
        if rtype == rtype::DNAME && node.get(rtype::DNAME).is_some() {
            return Err(ZoneError::SecondDname);
        }
        if rtype == rtype::SOA && node.get(rtype::SOA).is_some() {
            return Err(ZoneError::SecondSoa);
        }
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            // Signatures keep their own TTLs (each that of the RRset it covers).
            Some(set) if rtype == rtype::RRSIG => {
                if !set.rdata.iter().any(|r| r[..] == rdata[..]) {
                    if set.ttls.is_empty() {
                        set.ttls = vec![set.ttl; set.rdata.len()];
                    }
                    set.ttls.push(ttl);
                    set.rdata.push(rdata.into_boxed_slice());
                    if set.ttls.iter().all(|&t| t == set.ttl) {
                        set.ttls.clear();
                    }
                }
            }
            Some(set) => {
                if set.ttl != ttl {
                    self.warnings.push(format!(
                        "TTL {ttl} differs from {} for the same RRset {} type {rtype}; using {}",
                        set.ttl,
                        name::to_text(owner),
                        set.ttl
                    ));
                }
                // Duplicate records collapse into one (RFC 2181 §5).
                if !set.rdata.iter().any(|r| r[..] == rdata[..]) {
                    set.rdata.push(rdata.into_boxed_slice());
                }
            }
            None => {
                node.rrsets
                    .push(RRset::new(rtype, ttl, vec![rdata.into_boxed_slice()]));
                node.rrsets.sort_by_key(|s| s.rtype);
                node.kinds |= Node::kind_of(rtype);
            }
        }
        Ok(())
    }

    /// Marks `owner` (lowercase wire) as dynamic name number `index`.
    pub fn add_dynamic(&mut self, owner: &[u8], index: u32) -> Result<(), ZoneError> {
        if !is_subdomain(owner, &self.origin) {
            return Err(ZoneError::DynamicOutsideZone {
                owner: name::to_text(owner),
                zone: name::to_text(&self.origin),
            });
        }
        if owner == &self.origin[..] {
            return Err(ZoneError::DynamicApex);
        }
        // Below a delegation the data would be occluded.
        let mut cur = name::parent(owner);
        while let Some(p) = cur {
            if p.len() <= self.origin.len() {
                break;
            }
            if self
                .nodes
                .get(p)
                .is_some_and(|n| n.get(rtype::NS).is_some())
            {
                return Err(ZoneError::DynamicBelowCut {
                    owner: name::to_text(owner),
                    cut: name::to_text(p),
                });
            }
            cur = name::parent(p);
        }
        let node = self.nodes.node_mut(owner);
        if !node.rrsets.is_empty() {
            return Err(ZoneError::DynamicAndStatic(name::to_text(owner)));
        }
        if node.dynamic().is_some() {
            return Err(ZoneError::DynamicTwice(name::to_text(owner)));
        }
        node.set_dynamic(index);
        Ok(())
    }

    /// Puts a dynamic name's default answer at its node, for transfers of a signed zone
    /// (queries still get the live answer: a dynamic node answers from routing).
    pub fn add_transfer_default(&mut self, owner: &[u8], rtype: u16, ttl: u32, rdata: Vec<u8>) {
        let node = self.nodes.node_mut(owner);
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => set.rdata.push(rdata.into_boxed_slice()),
            None => {
                node.rrsets
                    .push(RRset::new(rtype, ttl, vec![rdata.into_boxed_slice()]));
                node.rrsets.sort_by_key(|s| s.rtype);
                node.kinds |= Node::kind_of(rtype);
            }
        }
    }

    /// The node at `owner` (lowercase wire), if anything was added there.
    pub fn node(&self, owner: &[u8]) -> Option<&Node> {
        self.nodes.get(owner)
    }

    /// Every owner added so far with its node (order unspecified).
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter()
    }

    /// Drops every RRset of these types (a signer replacing old signatures and chains).
    pub fn remove_types(&mut self, types: &[u16]) {
        for node in self.nodes.values_mut() {
            node.rrsets.retain(|s| !types.contains(&s.rtype));
            node.kinds = node
                .rrsets
                .iter()
                .fold(0, |k, s| k | Node::kind_of(s.rtype));
        }
    }

    /// Sets the SOA serial to `at_least` when that is newer (RFC 1982 arithmetic).
    pub fn raise_serial(&mut self, at_least: u32) {
        let Some(rd) = self
            .nodes
            .get_mut(&self.origin)
            .and_then(|n| n.rrsets.iter_mut().find(|s| s.rtype == rtype::SOA))
            .and_then(|s| s.rdata.first_mut())
        else {
            return;
        };
        let Some(at) = name::end_uncompressed(rd, 0).and_then(|p| name::end_uncompressed(rd, p))
        else {
            return;
        };
        let Some(b) = rd.get_mut(at..at + 4) else {
            return;
        };
        let current = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if (at_least.wrapping_sub(current) as i32) > 0 {
            b.copy_from_slice(&at_least.to_be_bytes());
        }
    }

    /// TTL of negative answers and NSEC records: min(SOA TTL, SOA MINIMUM) (RFC 9077).
    pub fn negative_ttl(&self) -> Option<u32> {
        let soa = self.nodes.get(&self.origin)?.get(rtype::SOA)?;
        Some(soa.ttl.min(soa_field(soa.rdata.first()?, 4)?))
    }

    /// Warnings collected so far (TTL mismatches), without location.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Checks the zone as a whole and freezes it.
    pub fn finish(mut self) -> Result<Zone, ZoneError> {
        let apex = self.nodes.get(&self.origin).ok_or(ZoneError::EmptyApex)?;
        let soa = apex.get(rtype::SOA).ok_or(ZoneError::NoSoa)?;
        let soa_rdata = soa.rdata.first().ok_or(ZoneError::EmptySoa)?;
        let minimum = soa_field(soa_rdata, 4).ok_or(ZoneError::MalformedSoa)?;
        let negative_ttl = soa.ttl.min(minimum);
        let negative_soa = NegativeSoa::new(&self.origin, soa_rdata, negative_ttl)
            .ok_or(ZoneError::MalformedSoa)?;
        if apex.get(rtype::NS).is_none() {
            return Err(ZoneError::NoApexNs);
        }
        if apex.get(rtype::CNAME).is_some() {
            return Err(ZoneError::ApexCname);
        }

        // Every ancestor between an owner and the apex exists as an empty non-terminal, so
        // that "the name exists" is a single hash lookup and wildcards are blocked correctly.
        // An existing ancestor's own ancestors are seen from it: the walk up stops there.
        let mut missing: Vec<Box<[u8]>> = Vec::new();
        for (owner, _) in self.nodes.iter() {
            let mut cur: &[u8] = owner;
            while let Some(p) = name::parent(cur) {
                if p.len() < self.origin.len() || self.nodes.contains_key(p) {
                    break;
                }
                missing.push(p.into());
                cur = p;
            }
        }
        for p in missing {
            self.nodes.node_mut(&p);
        }
        let origin_labels = name::label_count(&self.origin);
        let apex_dname = self
            .nodes
            .get(&self.origin)
            .is_some_and(|n| n.get(rtype::DNAME).is_some());
        let entries: Vec<(Box<[u8]>, Node)> = self.nodes.0.into_iter().collect();
        let mut index = HashTable::with_capacity(entries.len());
        // Names that hold only NSEC3 records stay out of the index (they stay in `entries`).
        for (i, (owner, _)) in entries
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| !n.nsec3_only())
        {
            index.insert_unique(hash_name(owner), i as u32, |&j: &u32| {
                entries
                    .get(j as usize)
                    .map_or(0, |(owner, _)| hash_name(owner))
            });
        }
        // Each wildcard by the position of its parent (the closest encloser it answers for).
        let mut wildcards = FxHashMap::default();
        for (i, (owner, node)) in entries.iter().enumerate() {
            if let Some(encloser) = owner.strip_prefix(b"\x01*")
                && !node.nsec3_only()
                && let Some(&at) = index.find(hash_name(encloser), |&j: &u32| {
                    entries
                        .get(j as usize)
                        .is_some_and(|(o, _)| o[..] == *encloser)
                })
            {
                wildcards.insert(at, i as u32);
            }
        }
        let signed = entries
            .iter()
            .any(|(o, n)| *o == self.origin && n.get(rtype::RRSIG).is_some());
        // The names with an NSEC, in canonical order: sorted by their canonical keys.
        let mut key = [0u8; name::CANONICAL_KEY_MAX];
        let mut keyed: Vec<(Box<[u8]>, u32)> = entries
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| n.get(rtype::NSEC).is_some())
            .map(|(i, (owner, _))| {
                let len = name::canonical_key(owner, &mut key);
                (key[..len].into(), i as u32)
            })
            .collect();
        keyed.sort_unstable();
        let (nsec_keys, nsec_order) = keyed.into_iter().unzip();
        Ok(Zone {
            origin: self.origin,
            origin_labels,
            entries,
            index,
            apex_dname,
            negative_ttl,
            negative_soa,
            wildcards,
            fingerprint: std::sync::OnceLock::new(),
            signed,
            nsec_order,
            nsec_keys,
        })
    }
}

/// Order-independent hash of every record, with SOA serials left out.
pub(super) fn fingerprint(entries: &[(Box<[u8]>, Node)]) -> u64 {
    let mut total = 0u64;
    for (owner, node) in entries {
        // Signatures are derived data (and ECDSA's differ at every signing).
        for set in node.rrsets.iter().filter(|s| s.rtype != rtype::RRSIG) {
            for rd in &set.rdata {
                let mut h = FxHasher::default();
                owner.hash(&mut h);
                set.rtype.hash(&mut h);
                set.ttl.hash(&mut h);
                if set.rtype == rtype::SOA {
                    // Names, then serial (4 bytes), then the rest.
                    let names_end =
                        name::end_uncompressed(rd, 0).and_then(|p| name::end_uncompressed(rd, p));
                    match names_end {
                        Some(p) if rd.len() >= p + 4 => {
                            rd[..p].hash(&mut h);
                            rd[p + 4..].hash(&mut h);
                        }
                        _ => rd.hash(&mut h),
                    }
                } else {
                    rd.hash(&mut h);
                }
                node.dynamic().hash(&mut h);
                // Sum: the same records in any order give the same value.
                total = total.wrapping_add(h.finish());
            }
        }
    }
    total
}
