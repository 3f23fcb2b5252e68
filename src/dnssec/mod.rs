//! DNSSEC: keys in BIND's file format, and signing a zone as it is built (DNSKEY RRset, NSEC
//! chain, RRSIGs). Pure: files are read and the clock is read by the caller.

pub mod key;
pub mod sign;

pub use key::{KeyError, SigningKey, Timing};
pub use sign::{SignPolicy, SignStats, Window, sign_rrset, sign_zone};

/// What signs one zone's dynamic answers as health changes: the keys that sign its data
/// (active; the ZSKs when keys are split) and the window of the signatures made at load.
#[derive(Debug, Clone)]
pub struct ZoneSigner {
    /// Lowercase wire.
    pub origin: Box<[u8]>,
    pub keys: Vec<std::sync::Arc<SigningKey>>,
    pub window: Window,
    /// When the zone is to be signed again (Unix seconds): half its signatures' lifetime.
    pub resign_at: u64,
    /// The next change of any key's state (publish, activate, retire, delete).
    pub next_key_event: Option<u64>,
    /// Signatures made at load (static data, NSEC chain, DNSKEY).
    pub signatures: usize,
    /// Compact denial (RFC 9824) for nonexistent names, with at most this many signatures
    /// per second per thread (beyond it the NSEC chain proves them); `None`: NSEC chain only.
    pub compact_budget: Option<u32>,
}

/// Longest RDATA of a compact-denial NSEC (`\000.` and a name, the bitmap) or its RRSIG.
pub const COMPACT_RDATA_MAX: usize = 512;

/// The NSEC of compact denial for `owner` (lowercase wire) into `out`: next name
/// `\000.owner`, types RRSIG NSEC NXNAME (RFC 9824 §3). Its length, or `None` when the
/// next name would be too long.
pub fn compact_nsec(owner: &[u8], out: &mut [u8; COMPACT_RDATA_MAX]) -> Option<usize> {
    let next_len = owner.len() + 2;
    if next_len > crate::dns::name::MAX_NAME_LEN {
        return None;
    }
    out[0] = 1;
    out[1] = 0;
    out[2..next_len].copy_from_slice(owner);
    // Window 0, 17 bytes: RRSIG (46) and NSEC (47) in byte 5, NXNAME (128) in byte 16.
    let bitmap: [u8; 19] = [
        0, 17, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
    ];
    out[next_len..next_len + bitmap.len()].copy_from_slice(&bitmap);
    Some(next_len + bitmap.len())
}

impl ZoneSigner {
    /// The RRSIG RDATA over one record (already canonical) of `owner` by `key`, into
    /// `out`, without allocating: for signing on the query path.
    pub fn sign_one_into(
        &self,
        key: &SigningKey,
        owner: &[u8],
        set: (u16, u32, &[u8]),
        out: &mut [u8; COMPACT_RDATA_MAX],
    ) -> Option<usize> {
        sign::sign_record_into(key, &self.origin, owner, set, self.window, out)
    }
}

impl ZoneSigner {
    /// When this zone must be signed again: the re-sign time or a key event.
    pub fn due(&self) -> u64 {
        self.next_key_event
            .map_or(self.resign_at, |e| e.min(self.resign_at))
    }
}

impl ZoneSigner {
    /// The signatures of one RRset by every key.
    pub fn sign(&self, owner: &[u8], set: (u16, u32, &[&[u8]])) -> Result<Vec<Box<[u8]>>, String> {
        self.keys
            .iter()
            .map(|k| {
                sign_rrset(k, &self.origin, owner, set, self.window).map(Vec::into_boxed_slice)
            })
            .collect()
    }
}

fn type_text(t: u16) -> String {
    crate::dns::rtype::mnemonic(t).map_or_else(|| format!("TYPE{t}"), str::to_string)
}

/// RRSIG, NSEC, DNSKEY and DS RDATA in presentation form (for `explain`; `None` for other
/// types or RDATA that does not parse).
pub fn present(rtype: u16, rdata: &[u8]) -> Option<String> {
    use crate::dns::name::{end_uncompressed, to_text};
    use data_encoding::{BASE64, HEXUPPER};
    let u16_at = |i: usize| {
        rdata
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let u32_at = |i: usize| {
        rdata
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match rtype {
        46 => {
            let end = end_uncompressed(rdata, 18)?;
            Some(format!(
                "{} {} {} {} {} {} {} {} {}",
                type_text(u16_at(0)?),
                rdata.get(2)?,
                rdata.get(3)?,
                u32_at(4)?,
                key::format_time(u64::from(u32_at(8)?)),
                key::format_time(u64::from(u32_at(12)?)),
                u16_at(16)?,
                to_text(rdata.get(18..end)?),
                BASE64.encode(rdata.get(end..)?)
            ))
        }
        47 => {
            let end = end_uncompressed(rdata, 0)?;
            let mut types = Vec::new();
            let mut bitmap = rdata.get(end..)?;
            while let [window, len, rest @ ..] = bitmap {
                let bits = rest.get(..usize::from(*len))?;
                for (i, byte) in bits.iter().enumerate() {
                    for bit in 0..8 {
                        if byte & (0x80 >> bit) != 0 {
                            let t = u16::from(*window) << 8 | (i * 8 + bit) as u16;
                            types.push(type_text(t));
                        }
                    }
                }
                bitmap = rest.get(usize::from(*len)..)?;
            }
            Some(format!(
                "{} {}",
                to_text(rdata.get(..end)?),
                types.join(" ")
            ))
        }
        48 | 60 => Some(format!(
            "{} {} {} {}",
            u16_at(0)?,
            rdata.get(2)?,
            rdata.get(3)?,
            BASE64.encode(rdata.get(4..)?)
        )),
        43 | 59 => Some(format!(
            "{} {} {} {}",
            u16_at(0)?,
            rdata.get(2)?,
            rdata.get(3)?,
            HEXUPPER.encode(rdata.get(4..)?)
        )),
        _ => None,
    }
}
