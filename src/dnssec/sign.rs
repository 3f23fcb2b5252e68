//! Signing a zone as it is built (off the query path): the DNSKEY RRset at the apex, an NSEC
//! chain over every authoritative name (static owners and dynamic names, whose bitmaps list
//! the types they can answer), and an RRSIG by every active key over every authoritative
//! RRset (RFC 4033-4035, canonical form as RFC 6840 §5.1 corrects it).
//!
//! A zone's name set is known at load, so every denial (NXDOMAIN, NODATA, wildcard, empty
//! non-terminal) is proven by records signed here: none is signed per query.

use super::key::SigningKey;
use crate::dns::name::{self, is_subdomain};
use crate::dns::{RRset, RdataList, rtype};
use crate::zone::ZoneBuilder;

/// DNS class IN.
const CLASS_IN: u16 = 1;

/// How a zone is signed.
#[derive(Debug, Clone, Copy)]
pub struct SignPolicy {
    /// Unix seconds now (the keys' timing is read at this instant).
    pub now: u64,
    /// Signatures start this long before `now` (resolvers with a slow clock).
    pub inception_offset: u64,
    /// And end this long after `now`.
    pub lifetime: u64,
    pub dnskey_ttl: u32,
    /// Publish CDS and CDNSKEY for the key-signing keys.
    pub cds: bool,
}

/// What signing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignStats {
    pub signatures: usize,
    pub nsec: usize,
    pub dnskeys: usize,
}

pub use crate::dns::name::canonical_cmp;

/// Lowercases the uncompressed name at `pos` of `rdata`; the position after it.
fn lower_name_at(rdata: &mut [u8], pos: usize) -> Option<usize> {
    let end = name::end_uncompressed(rdata, pos)?;
    // Length octets are below 64, so lowercasing every byte of the name is safe.
    if let Some(bytes) = rdata.get_mut(pos..end) {
        bytes.make_ascii_lowercase();
    }
    Some(end)
}

/// Skips a <character-string> at `pos`.
fn skip_string(rdata: &[u8], pos: usize) -> Option<usize> {
    Some(pos + 1 + usize::from(*rdata.get(pos)?))
}

/// RDATA in canonical form: the embedded names of the RFC 4034 §6.2 types lowercased (not
/// NSEC's next name, RFC 6840 §5.1; not HINFO, which holds no names).
pub fn canonical_rdata(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut v = rdata.to_vec();
    let _ = (|| -> Option<()> {
        match rtype {
            // NS MD MF CNAME MB MG MR PTR NXT DNAME
            2..=5 | 7..=9 | 12 | 30 | 39 => {
                lower_name_at(&mut v, 0)?;
            }
            // SOA, MINFO, RP: two names
            6 | 14 | 17 => {
                let p = lower_name_at(&mut v, 0)?;
                lower_name_at(&mut v, p)?;
            }
            // MX AFSDB RT KX
            15 | 18 | 21 | 36 => {
                lower_name_at(&mut v, 2)?;
            }
            // PX: preference, two names
            26 => {
                let p = lower_name_at(&mut v, 2)?;
                lower_name_at(&mut v, p)?;
            }
            // SRV
            33 => {
                lower_name_at(&mut v, 6)?;
            }
            // NAPTR: order, preference, flags, services, regexp, replacement
            35 => {
                let mut p = 4;
                for _ in 0..3 {
                    p = skip_string(&v, p)?;
                }
                lower_name_at(&mut v, p)?;
            }
            // SIG, RRSIG: the signer's name
            24 | 46 => {
                lower_name_at(&mut v, 18)?;
            }
            _ => {}
        }
        Some(())
    })();
    v
}

/// An NSEC type bitmap (RFC 4034 §4.1.2) for `types` (any order, duplicates allowed).
pub fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&first) = sorted.get(i) {
        let window = (first >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut last = 0;
        while let Some(&t) = sorted.get(i) {
            if (t >> 8) as u8 != window {
                break;
            }
            let low = (t & 0xFF) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            last = low / 8;
            i += 1;
        }
        out.push(window);
        out.push((last + 1) as u8);
        out.extend_from_slice(&bits[..=last]);
    }
    out
}

/// The RRSIG RDATA fields before the signature.
struct SigHeader<'a> {
    covered: u16,
    algorithm: u8,
    labels: u8,
    original_ttl: u32,
    expiration: u32,
    inception: u32,
    tag: u16,
    signer: &'a [u8],
}

impl<'a> SigHeader<'a> {
    /// The header of `key`'s signature over an RRset of `owner` (type, original TTL) in the
    /// zone `signer`, valid in `window`.
    fn new(
        key: &SigningKey,
        signer: &'a [u8],
        owner: &[u8],
        (rtype, ttl): (u16, u32),
        window: Window,
    ) -> Self {
        Self {
            covered: rtype,
            algorithm: key.algorithm,
            labels: rrsig_labels(owner),
            original_ttl: ttl,
            // Serial-number arithmetic on 32 bits (RFC 4034 §3.1.5).
            expiration: window.expiration as u32,
            inception: window.inception as u32,
            tag: key.tag,
            signer,
        }
    }

    /// Writes the header (the signer's name lowercased) at the start of `out`; its length.
    fn write_into(&self, out: &mut [u8]) -> Option<usize> {
        let len = 18 + self.signer.len();
        let out = out.get_mut(..len)?;
        out[..2].copy_from_slice(&self.covered.to_be_bytes());
        out[2] = self.algorithm;
        out[3] = self.labels;
        out[4..8].copy_from_slice(&self.original_ttl.to_be_bytes());
        out[8..12].copy_from_slice(&self.expiration.to_be_bytes());
        out[12..16].copy_from_slice(&self.inception.to_be_bytes());
        out[16..18].copy_from_slice(&self.tag.to_be_bytes());
        out[18..].copy_from_slice(self.signer);
        out[18..].make_ascii_lowercase();
        Some(len)
    }

    fn write(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + 18 + self.signer.len(), 0);
        let _ = self.write_into(&mut out[at..]);
    }
}

/// The RRSIG labels field: the owner's labels, a leading wildcard label not counted.
pub fn rrsig_labels(owner: &[u8]) -> u8 {
    let n = name::label_count(owner);
    let wildcard = owner.get(..2) == Some(b"\x01*");
    (n - usize::from(wildcard)) as u8
}

/// The data an RRSIG signs (RFC 4034 §3.1.8.1): its RDATA before the signature, then every
/// record of the RRset in canonical form and order, with the original TTL.
pub fn signed_data(
    header_rdata: &[u8],
    owner: &[u8],
    rtype: u16,
    ttl: u32,
    rdata: &[&[u8]],
) -> Vec<u8> {
    let mut records: Vec<Vec<u8>> = rdata.iter().map(|r| canonical_rdata(rtype, r)).collect();
    records.sort();
    records.dedup();
    let owner = owner.to_ascii_lowercase();
    let mut out = header_rdata.to_vec();
    for r in &records {
        out.extend_from_slice(&owner);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Does a delegation (an NS RRset below the apex) or a DNAME above `owner` hide it?
fn occluded(builder: &ZoneBuilder, owner: &[u8]) -> bool {
    let origin = builder.origin();
    let mut cur = name::parent(owner);
    while let Some(p) = cur {
        if p.len() < origin.len() {
            break;
        }
        if let Some(node) = builder.node(p)
            && ((p != origin && node.get(rtype::NS).is_some()) || node.get(rtype::DNAME).is_some())
        {
            return true;
        }
        cur = name::parent(p);
    }
    false
}

/// KSK/ZSK split: both kinds are active at `now`. Otherwise every key signs everything
/// (a CSK, or keys of one kind).
pub fn split_keys(keys: &[SigningKey], now: u64) -> bool {
    let active = || keys.iter().filter(|k| k.timing.active(now));
    active().any(SigningKey::sep) && active().any(|k| !k.sep())
}

/// Does `key` sign RRsets of type `t` at `now` (active, and the right kind when split)?
pub fn key_signs(keys: &[SigningKey], key: &SigningKey, t: u16, now: u64) -> bool {
    key.timing.active(now)
        && (!split_keys(keys, now) || key.sep() == matches!(t, rtype::DNSKEY | 59 | 60))
}

/// One RRSIG to make: who signs what.
struct Job {
    owner: Vec<u8>,
    rtype: u16,
    ttl: u32,
    rdata: RdataList,
    key: usize,
}

/// Signs the zone in `builder` with `keys`: DNSSEC records already there (RRSIG, NSEC,
/// NSEC3, NSEC3PARAM) are replaced. `dynamic_types` gives the types a dynamic name (by
/// index) can answer. Errors are reasons.
pub fn sign_zone(
    builder: &mut ZoneBuilder,
    keys: &[SigningKey],
    policy: &SignPolicy,
    dynamic_types: impl Fn(u32) -> Vec<u16>,
) -> Result<SignStats, String> {
    let now = policy.now;
    let active: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i].timing.active(now))
        .collect();
    if active.is_empty() {
        return Err(format!(
            "no active key for {} (every key is before its Activate time, or inactive)",
            name::to_text(builder.origin())
        ));
    }
    let split = split_keys(keys, now);
    let signs = |key: &SigningKey, t: u16| {
        !split || key.sep() == matches!(t, rtype::DNSKEY | 59 | 60) // DNSKEY, CDS, CDNSKEY
    };

    // Old chains and signatures go; with `cds`, so do CDS/CDNSKEY (made anew from the keys).
    builder.remove_types(&[rtype::RRSIG, rtype::NSEC, rtype::NSEC3, 51]);
    if policy.cds {
        builder.remove_types(&[59, 60]);
    }
    let origin = builder.origin().to_vec();
    let mut stats = SignStats::default();
    for key in keys.iter().filter(|k| k.timing.published(now)) {
        builder
            .add(&origin, rtype::DNSKEY, policy.dnskey_ttl, &key.dnskey())
            .map_err(|e| e.to_string())?;
        stats.dnskeys += 1;
        if policy.cds && key.sep() && key.timing.delete.is_none() {
            let ttl = policy.dnskey_ttl;
            let ds = super::key::ds_rdata(&origin, &key.dnskey());
            builder
                .add(&origin, 59, ttl, &ds)
                .map_err(|e| e.to_string())?;
            builder
                .add(&origin, 60, ttl, &key.dnskey())
                .map_err(|e| e.to_string())?;
        }
    }
    let negative_ttl = builder.negative_ttl().ok_or("the zone has no usable SOA")?;

    // The chain: every name with data or a dynamic answer that no cut or DNAME hides.
    let mut chain: Vec<Vec<u8>> = builder
        .nodes()
        .filter(|(_, n)| !n.rrsets.is_empty() || n.dynamic().is_some())
        .map(|(o, _)| o.to_vec())
        .filter(|o| is_subdomain(o, &origin))
        .collect();
    chain.retain(|o| !occluded(builder, o));
    chain.sort_by(|a, b| canonical_cmp(a, b));

    let mut jobs = Vec::new();
    let mut nsecs = Vec::with_capacity(chain.len());
    for (i, owner) in chain.iter().enumerate() {
        let Some(node) = builder.node(owner) else {
            continue;
        };
        let next = chain.get(i + 1).unwrap_or(&origin);
        let mut types: Vec<u16> = node.rrsets.iter().map(|s| s.rtype).collect();
        if let Some(d) = node.dynamic() {
            types.extend(dynamic_types(d));
        }
        types.extend([rtype::RRSIG, rtype::NSEC]);
        let mut nsec = next.clone();
        nsec.extend_from_slice(&type_bitmap(&types));
        nsecs.push((owner.clone(), nsec.clone()));
        let cut = owner[..] != origin[..] && node.get(rtype::NS).is_some();
        let mut sets: Vec<RRset> = node
            .rrsets
            .iter()
            .filter(|s| !cut || s.rtype == rtype::DS)
            .cloned()
            .collect();
        let nsec_rdata = RdataList::one(&nsec).map_err(|e| e.to_string())?;
        sets.push(RRset::new(rtype::NSEC, negative_ttl, nsec_rdata));
        for set in sets {
            for &k in active.iter().filter(|&&k| signs(&keys[k], set.rtype)) {
                jobs.push(Job {
                    owner: owner.clone(),
                    rtype: set.rtype,
                    ttl: set.ttl,
                    rdata: set.rdata.clone(),
                    key: k,
                });
            }
        }
    }
    for (owner, nsec) in nsecs {
        builder
            .add(&owner, rtype::NSEC, negative_ttl, &nsec)
            .map_err(|e| e.to_string())?;
        stats.nsec += 1;
    }

    let signed = sign_jobs(&jobs, keys, &origin, policy.window());
    for (job, rrsig) in jobs.iter().zip(signed) {
        builder
            .add(&job.owner, rtype::RRSIG, job.ttl, &rrsig?)
            .map_err(|e| e.to_string())?;
        stats.signatures += 1;
    }
    Ok(stats)
}

/// When signatures are valid (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub inception: u64,
    pub expiration: u64,
}

impl SignPolicy {
    pub fn window(&self) -> Window {
        Window {
            inception: self.now.saturating_sub(self.inception_offset),
            expiration: self.now + self.lifetime,
        }
    }
}

/// The RRSIG RDATA of one RRset (type, original TTL, RDATAs) of `owner` by `key` of the
/// zone `signer`.
pub fn sign_rrset(
    key: &SigningKey,
    signer: &[u8],
    owner: &[u8],
    (rtype, ttl, rdata): (u16, u32, &[&[u8]]),
    window: Window,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(18 + signer.len() + 64);
    SigHeader::new(key, signer, owner, (rtype, ttl), window).write(&mut out);
    let data = signed_data(&out, owner, rtype, ttl, rdata);
    out.extend_from_slice(&key.sign(&data).map_err(|e| e.to_string())?);
    Ok(out)
}

/// The RRSIG RDATA over one record (already in canonical form) of `owner` (lowercase) by
/// `key` of the zone `signer`, into `out`, without allocating: for signing on the query
/// path. Its length, or `None` when it does not fit.
pub fn sign_record_into(
    key: &SigningKey,
    signer: &[u8],
    owner: &[u8],
    (rtype, ttl, rdata): (u16, u32, &[u8]),
    window: Window,
    out: &mut [u8],
) -> Option<usize> {
    let header = SigHeader::new(key, signer, owner, (rtype, ttl), window);
    let mut data = [0u8; 1536];
    let mut n = header.write_into(&mut data)?;
    for f in [
        owner,
        &rtype.to_be_bytes(),
        &1u16.to_be_bytes(),
        &ttl.to_be_bytes(),
        &(rdata.len() as u16).to_be_bytes(),
        rdata,
    ] {
        data.get_mut(n..n + f.len())?.copy_from_slice(f);
        n += f.len();
    }
    let len = header.write_into(out)?;
    let sig = key.sign_into(data.get(..n)?, out.get_mut(len..)?)?;
    Some(len + sig)
}

/// Makes the RRSIG RDATA of every job, on every core (a million RRsets take about 30 s of
/// signing on one).
fn sign_jobs(
    jobs: &[Job],
    keys: &[SigningKey],
    origin: &[u8],
    window: Window,
) -> Vec<Result<Vec<u8>, String>> {
    let sign_one = |job: &Job| -> Result<Vec<u8>, String> {
        let rdata: Vec<&[u8]> = job.rdata.iter().collect();
        let set = (job.rtype, job.ttl, &rdata[..]);
        sign_rrset(&keys[job.key], origin, &job.owner, set, window)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(sign_one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("signing thread failed".into())])
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in text
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    #[test]
    fn canonical_order_is_rfc_4034_example() {
        // RFC 4034 §6.1's example, shuffled.
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let mut w: Vec<Vec<u8>> = names
            .iter()
            .map(|n| match *n {
                "\\001.z.example." => [&[1u8, 1][..], &wire("z.example.")].concat(),
                "\\200.z.example." => [&[1u8, 200][..], &wire("z.example.")].concat(),
                other => wire(other),
            })
            .collect();
        let expected = w.clone();
        w.reverse();
        w.sort_by(|a, b| canonical_cmp(a, b));
        assert_eq!(w, expected);
    }

    #[test]
    fn bitmaps_are_rfc_4034_example() {
        // RFC 4034 §4.3: A MX RRSIG NSEC TYPE1234.
        let b = type_bitmap(&[1, 15, 46, 47, 1234]);
        let mut expected = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        expected.extend([0u8; 26]);
        expected.push(0x20);
        assert_eq!(b, expected);
    }

    #[test]
    fn canonical_rdata_lowercases_names_but_not_nsec() {
        let mx = [&[0u8, 10][..], &wire("Mail.Example.")].concat();
        assert_eq!(
            canonical_rdata(15, &mx),
            [&[0u8, 10][..], &wire("mail.example.")].concat()
        );
        let nsec = [&wire("Next.Example.")[..], &[0, 1, 0x40]].concat();
        assert_eq!(canonical_rdata(47, &nsec), nsec);
        assert_eq!(rrsig_labels(&wire("*.a.example.")), 2);
        assert_eq!(rrsig_labels(&wire("a.example.")), 2);
    }
}
