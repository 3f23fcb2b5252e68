//! Building a zone: records are added one by one with the RFC consistency rules checked
//! (CNAME and other data, SOA at the apex, dynamic names), then frozen into a [`Zone`].

use hashbrown::{HashTable, hash_table};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

use super::entries::Entries;
use super::{NegativeSoa, Node, OwnerRef, Owners, Zone, ZoneError, name_hash, soa_field};
use crate::dns::name::{self, is_subdomain};
use crate::dns::{RRset, RdataList, rtype};

/// Collects records for one zone, checks RFC consistency rules, then freezes it.
pub struct ZoneBuilder {
    origin: Box<[u8]>,
    nodes: Nodes,
    warnings: Vec<String>,
}

/// Nodes by owner name: one hash per lookup, and an owner copied (into the zone's owner
/// buffer) only when its node is new (most records add to a name seen on the line before).
/// The entries and the index over them become the zone's own: nothing is copied or hashed
/// again when the zone is frozen.
#[derive(Default)]
struct Nodes {
    /// In the order the names first came (the file's order).
    entries: Entries,
    /// Positions in `entries`, hashed by their owner names.
    index: HashTable<u32>,
}

impl Nodes {
    fn position(&self, owner: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(name_hash(owner), |&i| entries.owner(i as usize) == owner)
            .map(|&i| i as usize)
    }

    fn get(&self, owner: &[u8]) -> Option<&Node> {
        let i = self.position(owner)?;
        self.entries.get(i).map(|(_, node)| node)
    }

    fn get_mut(&mut self, owner: &[u8]) -> Option<&mut Node> {
        let i = self.position(owner)?;
        self.entries.node_mut(i)
    }

    fn contains_key(&self, owner: &[u8]) -> bool {
        self.position(owner).is_some()
    }

    /// The node of `owner`, made when new.
    fn node_mut(&mut self, owner: &[u8]) -> Result<&mut Node, ZoneError> {
        let entries = &mut self.entries;
        let found = self.index.entry(
            name_hash(owner),
            |&i| entries.owner(i as usize) == owner,
            |&i| name_hash(entries.owner(i as usize)),
        );
        let i = match found {
            hash_table::Entry::Occupied(o) => *o.get(),
            hash_table::Entry::Vacant(v) => {
                let i = entries
                    .push(owner, name_hash(owner))
                    .ok_or(ZoneError::TooManyNames)?;
                v.insert(i);
                i
            }
        };
        entries.node_mut(i as usize).ok_or(ZoneError::TooManyNames)
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.entries.iter().map(|(_, owner, node)| (owner, node))
    }

    /// Room for `names` more (growing a big table as it fills rehashes it several times).
    fn reserve(&mut self, names: usize) {
        let entries = &self.entries;
        self.index
            .reserve(names, |&i| name_hash(entries.owner(i as usize)));
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

    /// Builds for a reload of `previous`: the parts of the new zone equal to the old one's
    /// are shared with it, not held twice (see `entries`).
    pub fn share_with(&mut self, previous: &Zone) {
        self.nodes.entries.share_with(&previous.entries);
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
        rdata: &[u8],
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
        let node = self.nodes.node_mut(owner)?;
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
                if !set.rdata.contains(rdata) {
                    set.rdata
                        .push(rdata)
                        .map_err(|_| ZoneError::RRsetTooLarge)?;
                    let mut ttls = set.ttls.take().map_or_else(Vec::new, |t| t.into_vec());
                    if ttls.is_empty() {
                        ttls = vec![set.ttl; set.rdata.len() - 1];
                    }
                    ttls.push(ttl);
                    if ttls.iter().any(|&t| t != set.ttl) {
                        set.ttls = Some(Box::new(ttls.into_boxed_slice()));
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
                if !set.rdata.contains(rdata) {
                    set.rdata
                        .push(rdata)
                        .map_err(|_| ZoneError::RRsetTooLarge)?;
                }
            }
            None => {
                let rdata = RdataList::one(rdata).map_err(|_| ZoneError::RRsetTooLarge)?;
                node.insert_rrset(RRset::new(rtype, ttl, rdata));
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
        let node = self.nodes.node_mut(owner)?;
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
    pub fn add_transfer_default(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), ZoneError> {
        let node = self.nodes.node_mut(owner)?;
        match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => set.rdata.push(rdata),
            None => {
                RdataList::one(rdata).map(|rdata| node.insert_rrset(RRset::new(rtype, ttl, rdata)))
            }
        }
        .map_err(|_| ZoneError::RRsetTooLarge)
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
        let kinds = |node: &Node| {
            node.rrsets
                .iter()
                .fold(0, |k, s| k | Node::kind_of(s.rtype))
        };
        // Only the nodes that change: a chunk shared with the previous zone stays shared.
        self.nodes.entries.change_where(
            |node| {
                node.rrsets.iter().any(|s| types.contains(&s.rtype)) || node.kinds != kinds(node)
            },
            |node| {
                let mut kept = std::mem::take(&mut node.rrsets).into_vec();
                kept.retain(|s| !types.contains(&s.rtype));
                node.rrsets = kept.into_boxed_slice();
                node.kinds = kinds(node);
            },
        );
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
            self.nodes.node_mut(&p)?;
        }
        let origin_labels = name::label_count(&self.origin);
        let apex_dname = self
            .nodes
            .get(&self.origin)
            .is_some_and(|n| n.get(rtype::DNAME).is_some());
        let apex_at = self
            .nodes
            .position(&self.origin)
            .and_then(|p| u32::try_from(p).ok())
            .ok_or(ZoneError::EmptyApex)?;
        let Nodes {
            mut entries,
            mut index,
        } = self.nodes;
        // Sets that grew record by record give back their spare room; chunks equal to the
        // previous zone's are taken from it.
        entries.seal();
        // Names that hold only NSEC3 records leave the index (they stay in `entries`).
        if entries.iter().any(|(_, _, node)| node.nsec3_only()) {
            index.retain(|&mut i| {
                !entries
                    .get(i as usize)
                    .is_some_and(|(_, node)| node.nsec3_only())
            });
        }
        // Each wildcard by the position of its parent (the closest encloser it answers for).
        let mut wildcards = Vec::new();
        for (i, owner, node) in entries.iter() {
            if let Some(encloser) = owner.strip_prefix(b"\x01*")
                && !node.nsec3_only()
                && let Some(&at) = index.find(name_hash(encloser), |&j: &u32| {
                    entries.owner(j as usize) == encloser
                })
            {
                wildcards.push((at, i));
            }
        }
        let wildcards = super::wildcards::Wildcards::new(wildcards);
        let signed = entries
            .iter()
            .any(|(_, owner, node)| owner == &self.origin[..] && node.get(rtype::RRSIG).is_some());
        // The names with an NSEC, in canonical order: sorted by their canonical keys.
        let mut key = [0u8; name::CANONICAL_KEY_MAX];
        let mut unsorted = Owners::default();
        let mut keyed: Vec<(OwnerRef, u32)> = Vec::new();
        for (i, owner, node) in entries.iter() {
            if node.get(rtype::NSEC).is_some() {
                let len = name::canonical_key(owner, &mut key);
                let at = unsorted.push(&key[..len]).ok_or(ZoneError::TooManyNames)?;
                keyed.push((at, i));
            }
        }
        keyed.sort_unstable_by(|a, b| unsorted.get(a.0).cmp(unsorted.get(b.0)));
        // Copied in search order: a binary search's probes stay close together.
        let mut nsec_key_bytes = Owners::default();
        let mut nsec_keys = Vec::with_capacity(keyed.len());
        let mut nsec_order = Vec::with_capacity(keyed.len());
        for (at, i) in keyed {
            let at = nsec_key_bytes
                .push(unsorted.get(at))
                .ok_or(ZoneError::TooManyNames)?;
            nsec_keys.push(at);
            nsec_order.push(i);
        }
        drop(unsorted);
        Ok(Zone {
            origin: self.origin,
            origin_labels,
            entries,
            index,
            apex_at,
            apex_dname,
            negative_ttl,
            negative_soa,
            wildcards,
            fingerprint: std::sync::OnceLock::new(),
            signed,
            nsec_order,
            nsec_keys,
            nsec_key_bytes,
        })
    }
}

/// Order-independent hash of every record, with SOA serials left out.
pub(super) fn fingerprint<'z>(entries: impl Iterator<Item = (&'z [u8], &'z Node)>) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowercase wire form of a dotted name ("www.example.").
    fn wire(text: &str) -> Vec<u8> {
        let name = hickory_proto::rr::Name::from_ascii(text).expect("a valid name");
        name::wire_lower(&name)
    }

    fn soa_rdata() -> Vec<u8> {
        let mut rd = wire("ns.example.");
        rd.extend(wire("host.example."));
        for field in [1u32, 3600, 600, 86400, 300] {
            rd.extend_from_slice(&field.to_be_bytes());
        }
        rd
    }

    #[test]
    fn names_with_only_nsec3_stay_out_of_lookups_and_empty_non_terminals_are_made() {
        let mut b = ZoneBuilder::new(wire("example."));
        b.add(&wire("example."), rtype::SOA, 3600, &soa_rdata())
            .expect("soa");
        b.add(&wire("example."), rtype::NS, 3600, &wire("ns.example."))
            .expect("ns");
        b.add(&wire("ns.example."), rtype::A, 3600, &[192, 0, 2, 1])
            .expect("a");
        b.add(
            &wire("hashed.example."),
            rtype::NSEC3,
            300,
            &[1, 0, 0, 1, 0, 1, 0, 0, 0],
        )
        .expect("nsec3");
        b.add(&wire("a.b.c.example."), rtype::A, 3600, &[192, 0, 2, 2])
            .expect("deep");
        let zone = b.finish().expect("zone");

        assert!(zone.node(&wire("hashed.example.")).is_none());
        assert!(zone.nodes().any(|(o, _)| o == &wire("hashed.example.")[..]));
        let ns = zone.node(&wire("ns.example.")).expect("ns.example.");
        assert_eq!(
            ns.get(rtype::A).and_then(|s| s.rdata.first()),
            Some(&[192, 0, 2, 1][..])
        );
        for ent in ["b.c.example.", "c.example."] {
            let node = zone.node(&wire(ent)).expect(ent);
            assert!(node.rrsets.is_empty(), "{ent} is an empty non-terminal");
        }
        assert_eq!(zone.record_count(), 5);
        assert_eq!(zone.entry_count(), 6);
        // Every position the index gives back names the name asked for.
        for (i, owner, _) in zone.entries() {
            if owner != &wire("hashed.example.")[..] {
                assert_eq!(zone.entry_at(name_hash(owner), owner), Some(i));
            }
        }
    }

    /// A zone of `names` hosts (an A record each), with `changed`'s address different and
    /// a name `new` more after host `added`.
    fn hosts(names: u32, changed: Option<u32>, added: Option<u32>, share: Option<&Zone>) -> Zone {
        let mut b = ZoneBuilder::new(wire("example."));
        if let Some(previous) = share {
            b.share_with(previous);
        }
        b.add(&wire("example."), rtype::SOA, 3600, &soa_rdata())
            .expect("soa");
        b.add(&wire("example."), rtype::NS, 3600, &wire("ns.example."))
            .expect("ns");
        for i in 0..names {
            let last = if Some(i) == changed { 99 } else { 1 };
            b.add(
                &wire(&format!("h{i}.example.")),
                rtype::A,
                300,
                &[10, 0, 0, last],
            )
            .expect("a");
            if Some(i) == added {
                b.add(&wire("new.example."), rtype::A, 300, &[10, 0, 0, 2])
                    .expect("new");
            }
        }
        b.finish().expect("zone")
    }

    fn same_data(a: &Zone, b: &Zone) -> bool {
        a.entry_count() == b.entry_count() && a.nodes().eq(b.nodes())
    }

    #[test]
    fn a_reload_shares_the_unchanged_chunks_and_sees_every_change() {
        let names = 8000;
        let old = hosts(names, None, None, None);
        // Unchanged: every chunk comes from the old zone.
        let again = hosts(names, None, None, Some(&old));
        let (shared, chunks) = again.chunks_shared_with(&old);
        assert!(chunks >= 5, "{chunks} chunks");
        assert_eq!(shared, chunks);
        assert!(same_data(&again, &old));
        // One address changed in the middle: its chunk only is new, and the data is that
        // of a zone built from nothing.
        let changed = hosts(names, Some(2500), None, Some(&old));
        assert_eq!(changed.chunks_shared_with(&old), (chunks - 1, chunks));
        assert!(same_data(&changed, &hosts(names, Some(2500), None, None)));
        // A name added early: its chunk is new, the chunks after it are still the old ones
        // (their boundaries follow the names, not their count).
        let added = hosts(names, None, Some(100), Some(&old));
        assert_eq!(added.chunks_shared_with(&old), (chunks - 1, chunks));
        assert!(same_data(&added, &hosts(names, None, Some(100), None)));
        assert!(added.node(&wire("new.example.")).is_some());
        assert!(old.node(&wire("new.example.")).is_none());
        assert!(!same_data(&changed, &old));
        let node = changed.node(&wire("h2500.example.")).expect("h2500");
        assert_eq!(
            node.get(rtype::A).and_then(|s| s.rdata.first()),
            Some(&[10, 0, 0, 99][..])
        );
        assert_eq!(
            old.node(&wire("h2500.example."))
                .and_then(|n| n.get(rtype::A))
                .and_then(|s| s.rdata.first()),
            Some(&[10, 0, 0, 1][..])
        );
        // A record for a name of an early, already shared chunk, added at the end: that
        // chunk is copied, not changed under the old zone.
        let mut b = ZoneBuilder::new(wire("example."));
        b.share_with(&old);
        b.add(&wire("example."), rtype::SOA, 3600, &soa_rdata())
            .expect("soa");
        b.add(&wire("example."), rtype::NS, 3600, &wire("ns.example."))
            .expect("ns");
        for i in 0..names {
            b.add(
                &wire(&format!("h{i}.example.")),
                rtype::A,
                300,
                &[10, 0, 0, 1],
            )
            .expect("a");
        }
        b.add(
            &wire("h3.example."),
            rtype::AAAA,
            300,
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
        )
        .expect("aaaa");
        let late = b.finish().expect("zone");
        assert!(
            late.node(&wire("h3.example."))
                .and_then(|n| n.get(rtype::AAAA))
                .is_some()
        );
        assert!(
            old.node(&wire("h3.example."))
                .and_then(|n| n.get(rtype::AAAA))
                .is_none()
        );
        assert_eq!(late.chunks_shared_with(&old), (chunks - 1, chunks));
    }
}
