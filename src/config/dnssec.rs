//! `[dnssec]`: finding and reading a zone's keys in the key directory, and the signing
//! policy. The signing itself is the `dnssec` room's.

use std::path::{Path, PathBuf};

use super::schema::DnssecConfig;
use crate::dnssec::{SignPolicy, SigningKey, key};

/// A zone's key files: `K<zone>.+<alg>+<tag>` stems that have a `.private` file.
pub fn key_stems(dir: &Path, zone_text: &str) -> Result<Vec<PathBuf>, String> {
    let prefix = format!(
        "k{}.+",
        zone_text.trim_end_matches('.').to_ascii_lowercase()
    );
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut stems: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "private"))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.to_ascii_lowercase().starts_with(&prefix))
        })
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".private")?
                .to_string();
            Some(p.with_file_name(name))
        })
        .collect();
    stems.sort();
    Ok(stems)
}

/// `<stem>.<ext>` (the stem has dots of its own: `Kexample.com.+013+12345`).
pub fn key_file(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Writes `key` (its private bytes `secret`) into `dir` as BIND files, the private one
/// readable by its owner only and never over an existing file; returns the files' stem.
pub fn write_key(dir: &Path, key: &SigningKey, secret: &[u8]) -> Result<PathBuf, String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = dir.join(key.file_stem());
    let private = key_file(&stem, "private");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .map_err(|e| format!("{}: {e}", private.display()))?;
    f.write_all(key.private_file(secret).as_bytes())
        .map_err(|e| format!("{}: {e}", private.display()))?;
    let public = key_file(&stem, "key");
    std::fs::write(&public, key.key_file()).map_err(|e| format!("{}: {e}", public.display()))?;
    Ok(stem)
}

/// Reads one key from `<stem>.key` and `<stem>.private`; refuses a private file that
/// group or others may read.
pub fn read_key(zone: &[u8], stem: &Path) -> Result<SigningKey, String> {
    let private = key_file(stem, "private");
    let public = key_file(stem, "key");
    let meta = std::fs::metadata(&private).map_err(|e| format!("{}: {e}", private.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: readable by group or others (mode {:o}): chmod 600 it",
                private.display(),
                mode & 0o777
            ));
        }
    }
    let private_text =
        std::fs::read_to_string(&private).map_err(|e| format!("{}: {e}", private.display()))?;
    let public_text =
        std::fs::read_to_string(&public).map_err(|e| format!("{}: {e}", public.display()))?;
    let k = SigningKey::from_bind(zone, &public_text, &private_text)
        .map_err(|e| format!("{}: {e}", stem.display()))?;
    // The tag in the file name must be the key's own (a renamed file is a mistake).
    let named_tag = stem
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.rsplit('+').next())
        .and_then(|t| t.parse::<u16>().ok());
    if named_tag != Some(k.tag) {
        return Err(format!(
            "{}: the key's tag is {}, not the one in the file name",
            stem.display(),
            k.tag
        ));
    }
    Ok(k)
}

/// Every key of `zone` (lowercase wire, `zone_text` its name) in the key directory.
pub fn zone_keys(dir: &Path, zone: &[u8], zone_text: &str) -> Result<Vec<SigningKey>, String> {
    let stems = key_stems(dir, zone_text)?;
    if stems.is_empty() {
        return Err(format!(
            "no key for {zone_text} in {} (make one: meridian dnssec keygen {zone_text})",
            dir.display()
        ));
    }
    stems.iter().map(|s| read_key(zone, s)).collect()
}

/// Is `origin` (text, any case, with or without the final dot) to be signed?
pub fn signs_zone(config: &DnssecConfig, origin: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    config.zones.iter().any(|z| norm(z) == norm(origin))
}

/// The signing policy for now: signatures from an hour ago for the configured lifetime.
pub fn policy(config: &DnssecConfig) -> SignPolicy {
    SignPolicy {
        now: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        inception_offset: 3600,
        lifetime: u64::from(config.signature_lifetime_days.max(1)) * 86_400,
        dnskey_ttl: config.dnskey_ttl,
        cds: config.cds,
    }
}

/// The algorithm number for a name in `[dnssec] algorithm` or on the command line.
pub fn algorithm_number(name: &str) -> Result<u8, String> {
    match name.to_ascii_uppercase().as_str() {
        "ECDSAP256SHA256" | "13" => Ok(key::ECDSAP256SHA256),
        "ED25519" | "15" => Ok(key::ED25519),
        other => Err(format!(
            "unsupported algorithm {other:?}: use ECDSAP256SHA256 (13) or ED25519 (15)"
        )),
    }
}

/// A dynamic name's default answer, as its transfer carries it: the endpoints of the first
/// datacenter its policy names for a client it cannot locate (every endpoint up).
pub fn default_answer(
    routing: &crate::routing::Routing,
    name: &crate::routing::DynamicName,
) -> Vec<(u16, u32, Vec<u8>)> {
    use crate::routing::Policy;
    let first = match &name.policy {
        Policy::Failover { order } => routing.orders.get(*order as usize).and_then(|o| o.first()),
        Policy::Table { table, .. } => routing.tables.get(*table as usize).and_then(|t| {
            let (id, _) = t.lookup(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            routing.orders.get(*id as usize).and_then(|o| o.first())
        }),
        Policy::Weighted { .. } => None,
    }
    .copied()
    .or_else(|| {
        routing
            .pools
            .get(name.pool as usize)
            .map(|p| p.groups.start)
    });
    let Some(group) = first.and_then(|g| routing.groups.get(g as usize)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in group.endpoints.clone() {
        let Some(ep) = routing.endpoints.get(e as usize) else {
            continue;
        };
        if let Some(cname) = &ep.cname {
            // A CNAME stands alone: the first endpoint's.
            return vec![(crate::dns::rtype::CNAME, name.ttl, cname.to_vec())];
        }
        if let Some(a) = ep.a {
            out.push((crate::dns::rtype::A, name.ttl, a.to_vec()));
        }
        if let Some(aaaa) = ep.aaaa {
            out.push((crate::dns::rtype::AAAA, name.ttl, aaaa.to_vec()));
        }
    }
    out
}

/// `view` with the signatures of every dynamic answer set it can produce in a signed zone
/// (reused from `previous` where it has them, for the same snapshot generation).
pub fn signed_view(
    snapshot: &crate::engine::Snapshot,
    view: crate::health::HealthView,
    previous: Option<&crate::health::HealthView>,
) -> crate::health::HealthView {
    use crate::dns::sigstore::{SigStore, set_hash};
    if snapshot.signers.is_empty() {
        return view;
    }
    let previous = previous
        .filter(|p| p.generation() == snapshot.generation)
        .map(|p| p.sigs().clone());
    let routing = &snapshot.routing;
    let mut store = SigStore::default();
    for (i, name) in routing.names.iter().enumerate() {
        let Some(signer) = snapshot
            .signers
            .iter()
            .filter(|s| crate::dns::name::is_subdomain(&name.owner, &s.origin))
            .max_by_key(|s| s.origin.len())
        else {
            continue;
        };
        for (rtype, rdatas) in routing.answer_sets(i as u32, &view) {
            let hash = set_hash(rdatas.iter().copied());
            if let Some(sigs) = previous.as_ref().and_then(|p| p.get(i as u32, rtype, hash)) {
                store.insert(i as u32, rtype, hash, sigs.to_vec());
                continue;
            }
            match signer.sign(&name.owner, (rtype, name.ttl, &rdatas)) {
                Ok(sigs) => store.insert(i as u32, rtype, hash, sigs),
                Err(e) => tracing::error!(
                    name = %crate::dns::name::to_text(&name.owner),
                    "dnssec: cannot sign a dynamic answer: {e}"
                ),
            }
        }
    }
    view.with_sigs(std::sync::Arc::new(store))
}

/// What `meridian check` warns about in a signed zone: signatures that have expired or
/// will within three days (a zone signed elsewhere is not re-signed here), more than two
/// active keys, and a DNSKEY answer over 512 bytes (fragmentation, TCP fallback).
pub fn check_warnings(zone: &crate::zone::Zone, now: u64) -> Vec<String> {
    use crate::dns::rtype;
    let mut out = Vec::new();
    if !zone.is_signed() {
        return out;
    }
    let origin = zone.origin();
    let name = crate::dns::name::to_text(origin);
    let field = |rd: &[u8], at: usize| {
        rd.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // Expiry in serial arithmetic: seconds left from `now` (negative: expired).
    let left = |exp: u32| i64::from(exp.wrapping_sub(now as u32) as i32);
    let earliest = zone
        .nodes()
        .filter_map(|(_, n)| n.get(rtype::RRSIG))
        .flat_map(|s| s.rdata.iter())
        .filter_map(|rd| field(rd, 8))
        .map(left)
        .min();
    match earliest {
        Some(s) if s <= 0 => out.push(format!("zone {name}: signatures have expired")),
        Some(s) if s < 3 * 86_400 => out.push(format!(
            "zone {name}: signatures expire in {:.1} h",
            s as f64 / 3600.0
        )),
        _ => {}
    }
    let apex = zone.apex();
    let mut tags: Vec<u16> = apex
        .get(rtype::RRSIG)
        .map(|s| {
            s.rdata
                .iter()
                .filter_map(|rd| rd.get(16..18).map(|b| u16::from_be_bytes([b[0], b[1]])))
                .collect()
        })
        .unwrap_or_default();
    tags.sort_unstable();
    tags.dedup();
    if tags.len() > 2 {
        out.push(format!(
            "zone {name}: {} keys sign (more than two makes every answer larger)",
            tags.len()
        ));
    }
    let record = |rdlen: usize| 2 + 10 + rdlen;
    let dnskeys: usize = apex
        .get(rtype::DNSKEY)
        .map_or(0, |s| s.rdata.iter().map(|r| record(r.len())).sum());
    let sigs: usize = apex.get(rtype::RRSIG).map_or(0, |s| {
        s.rdata
            .iter()
            .filter(|rd| rd.get(..2) == Some(&rtype::DNSKEY.to_be_bytes()[..]))
            .map(|r| record(r.len()))
            .sum()
    });
    // Header, question, the records, an OPT record.
    let size = 12 + origin.len() + 4 + dnskeys + sigs + 11;
    if size > 512 {
        out.push(format!(
            "zone {name}: the signed DNSKEY answer is {size} bytes (over 512: resolvers without EDNS get TC)"
        ));
    }
    out
}
