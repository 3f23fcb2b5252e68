//! DNSSEC keys in BIND's file format (`K<zone>.+<alg>+<tag>.key` and `.private`), as
//! `dnssec-keygen`, `ldns-keygen` and `keymgr` write them: parse, make, print. Text in, text
//! out: reading and writing the files is the caller's.
//!
//! Signing is ring's (already here for TSIG). The key tag (RFC 4034 App. B), DNSKEY RDATA
//! and DS digest are a few lines each over our wire bytes, so they are written here rather
//! than through a second set of record types; the tests check them against BIND's tools.

use data_encoding::BASE64;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use crate::dns::name;

/// DNSSEC algorithm numbers (RFC 8624) we sign with.
pub const ECDSAP256SHA256: u8 = 13;
pub const ED25519: u8 = 15;

/// DNSKEY flags: zone key, and secure entry point (a KSK or a CSK).
pub const FLAG_ZONE: u16 = 0x0100;
pub const FLAG_SEP: u16 = 0x0001;

/// When a key is published, signs, stops signing and goes (BIND's timing metadata, Unix
/// seconds; none: not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub created: Option<u64>,
    pub publish: Option<u64>,
    pub activate: Option<u64>,
    pub inactive: Option<u64>,
    pub delete: Option<u64>,
}

impl Timing {
    /// In the DNSKEY RRset at `now`: published (or never told when) and not yet deleted.
    pub fn published(&self, now: u64) -> bool {
        self.publish.or(self.activate).is_none_or(|t| t <= now)
            && self.delete.is_none_or(|t| now < t)
    }

    /// Signs at `now`: active and not yet inactive (nor deleted).
    pub fn active(&self, now: u64) -> bool {
        self.activate.is_none_or(|t| t <= now)
            && self.inactive.is_none_or(|t| now < t)
            && self.published(now)
    }

    /// The first time after `now` at which the key's state changes.
    pub fn next_event(&self, now: u64) -> Option<u64> {
        [self.publish, self.activate, self.inactive, self.delete]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One key of one zone, able to sign.
pub struct SigningKey {
    /// The zone (lowercase wire).
    pub owner: Vec<u8>,
    pub flags: u16,
    pub algorithm: u8,
    /// The public key as DNSKEY carries it (P-256: x || y; Ed25519: the 32 bytes).
    pub public: Vec<u8>,
    pub tag: u16,
    pub timing: Timing,
    pair: Pair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({} flags {} alg {} tag {})",
            name::to_text(&self.owner),
            self.flags,
            self.algorithm,
            self.tag
        )
    }
}

/// Why a key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

/// DNSKEY RDATA: flags, protocol 3, algorithm, public key.
pub fn dnskey_rdata(flags: u16, algorithm: u8, public: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + public.len());
    v.extend_from_slice(&flags.to_be_bytes());
    v.push(3);
    v.push(algorithm);
    v.extend_from_slice(public);
    v
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B, for every algorithm but 1).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        acc += if i & 1 == 0 {
            u32::from(*b) << 8
        } else {
            u32::from(*b)
        };
    }
    acc += (acc >> 16) & 0xFFFF;
    (acc & 0xFFFF) as u16
}

/// DS RDATA with digest type 2 (SHA-256) for a DNSKEY of `owner` (lowercase wire).
pub fn ds_rdata(owner: &[u8], dnskey: &[u8]) -> Vec<u8> {
    let mut input = owner.to_ascii_lowercase();
    input.extend_from_slice(dnskey);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut v = Vec::with_capacity(4 + 32);
    v.extend_from_slice(&key_tag(dnskey).to_be_bytes());
    v.push(dnskey.get(3).copied().unwrap_or(0));
    v.push(2);
    v.extend_from_slice(digest.as_ref());
    v
}

fn algorithm_name(algorithm: u8) -> &'static str {
    match algorithm {
        ECDSAP256SHA256 => "ECDSAP256SHA256",
        ED25519 => "ED25519",
        _ => "?",
    }
}

/// `YYYYMMDDHHMMSS` (UTC) to Unix seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.len() != 14 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, s) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
}

/// Unix seconds to `YYYYMMDDHHMMSS` (UTC).
pub fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The next element of a DER sequence: (tag, contents, rest).
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 2 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The private key inside ring's PKCS#8 document: PrivateKeyInfo { version, algorithm,
/// OCTET STRING { P-256: ECPrivateKey { version, OCTET STRING d, .. }; Ed25519: OCTET
/// STRING seed } }.
fn pkcs8_private(doc: &[u8], algorithm: u8) -> Option<Vec<u8>> {
    let (0x30, info, _) = der_next(doc)? else {
        return None;
    };
    let (_, _, rest) = der_next(info)?; // version
    let (_, _, rest) = der_next(rest)?; // algorithm
    let (0x04, inner, _) = der_next(rest)? else {
        return None;
    };
    let secret = if algorithm == ED25519 {
        let (0x04, seed, _) = der_next(inner)? else {
            return None;
        };
        seed
    } else {
        let (0x30, ec, _) = der_next(inner)? else {
            return None;
        };
        let (_, _, rest) = der_next(ec)?; // version
        let (0x04, d, _) = der_next(rest)? else {
            return None;
        };
        d
    };
    (secret.len() == 32).then(|| secret.to_vec())
}

impl SigningKey {
    fn from_parts(
        owner: &[u8],
        flags: u16,
        algorithm: u8,
        secret: &[u8],
        public: &[u8],
        timing: Timing,
    ) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = match algorithm {
            ECDSAP256SHA256 => {
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(public);
                // BIND writes the scalar as a big number without its leading zero bytes
                // (about one key in 256 has 31 bytes); ring takes exactly 32.
                let mut scalar = [0u8; 32];
                let pad = 32usize.checked_sub(secret.len()).ok_or_else(|| {
                    err(format!(
                        "the private key is {} bytes long (P-256: at most 32)",
                        secret.len()
                    ))
                })?;
                scalar[pad..].copy_from_slice(secret);
                EcdsaKeyPair::from_private_key_and_public_key(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &scalar,
                    &point,
                    &rng,
                )
                .map(Pair::Ecdsa)
                .map_err(|e| {
                    err(format!(
                        "the private key does not match the public key ({e})"
                    ))
                })?
            }
            ED25519 => Ed25519KeyPair::from_seed_and_public_key(secret, public)
                .map(Pair::Ed25519)
                .map_err(|e| {
                    err(format!(
                        "the private key does not match the public key ({e})"
                    ))
                })?,
            other => {
                return Err(err(format!(
                    "algorithm {other} is not supported (use 13, ECDSAP256SHA256, or 15, ED25519)"
                )));
            }
        };
        let tag = key_tag(&dnskey_rdata(flags, algorithm, public));
        Ok(Self {
            owner: owner.to_ascii_lowercase(),
            flags,
            algorithm,
            public: public.to_vec(),
            tag,
            timing,
            pair,
            rng,
        })
    }

    /// A new key for `owner` (lowercase wire): a CSK or KSK with `sep`, else a ZSK.
    pub fn generate(
        owner: &[u8],
        algorithm: u8,
        sep: bool,
        now: u64,
    ) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let (doc, public) = match algorithm {
            ECDSAP256SHA256 => {
                let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
                    .map_err(|_| err("key generation failed"))?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng)
                    .map_err(|_| err("key generation failed"))?;
                let public = pair.public_key().as_ref().get(1..).unwrap_or(&[]).to_vec();
                (doc, public)
            }
            ED25519 => {
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| err("key generation failed"))?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                    .map_err(|_| err("key generation failed"))?;
                (doc, pair.public_key().as_ref().to_vec())
            }
            other => return Err(err(format!("algorithm {other} is not supported"))),
        };
        let secret =
            pkcs8_private(doc.as_ref(), algorithm).ok_or_else(|| err("unexpected PKCS#8 form"))?;
        let flags = FLAG_ZONE | if sep { FLAG_SEP } else { 0 };
        let timing = Timing {
            created: Some(now),
            publish: Some(now),
            activate: Some(now),
            ..Timing::default()
        };
        let key = Self::from_parts(owner, flags, algorithm, &secret, &public, timing)?;
        Ok((key, secret))
    }

    /// Reads a key from the texts of its `.key` and `.private` files. `zone` (lowercase
    /// wire) is the zone it must belong to.
    pub fn from_bind(zone: &[u8], key_file: &str, private_file: &str) -> Result<Self, KeyError> {
        let (flags, algorithm, public) = parse_key_file(zone, key_file)?;
        let mut secret = None;
        let mut file_algorithm = None;
        let mut timing = Timing::default();
        for (n, line) in private_file.lines().enumerate() {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let time = || {
                parse_time(value).ok_or_else(|| {
                    err(format!(
                        ".private line {}: {field}: not a YYYYMMDDHHMMSS time: {value:?}",
                        n + 1
                    ))
                })
            };
            match field.trim() {
                "Algorithm" => {
                    file_algorithm = value
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse::<u8>().ok());
                }
                "PrivateKey" => {
                    secret =
                        Some(BASE64.decode(value.as_bytes()).map_err(|e| {
                            err(format!(".private line {}: PrivateKey: {e}", n + 1))
                        })?);
                }
                "Created" => timing.created = Some(time()?),
                "Publish" => timing.publish = Some(time()?),
                "Activate" => timing.activate = Some(time()?),
                "Inactive" => timing.inactive = Some(time()?),
                "Delete" => timing.delete = Some(time()?),
                _ => {}
            }
        }
        if file_algorithm != Some(algorithm) {
            return Err(err(format!(
                "the .private file's algorithm {file_algorithm:?} is not the .key file's {algorithm}"
            )));
        }
        let secret = secret.ok_or_else(|| err(".private has no PrivateKey line"))?;
        Self::from_parts(zone, flags, algorithm, &secret, &public, timing)
    }

    /// Is this a key-signing key (or a CSK)?
    pub fn sep(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }

    pub fn dnskey(&self) -> Vec<u8> {
        dnskey_rdata(self.flags, self.algorithm, &self.public)
    }

    /// `K<zone>.+<alg>+<tag>`: the files' name without extension.
    pub fn file_stem(&self) -> String {
        format!(
            "K{}+{:03}+{:05}",
            name::to_text(&self.owner),
            self.algorithm,
            self.tag
        )
    }

    /// The `.key` file: the DNSKEY record.
    pub fn key_file(&self) -> String {
        let kind = if self.sep() {
            "key-signing"
        } else {
            "zone-signing"
        };
        format!(
            "; This is a {kind} key, keyid {}, for {}\n{} IN DNSKEY {} 3 {} {}\n",
            self.tag,
            name::to_text(&self.owner),
            name::to_text(&self.owner),
            self.flags,
            self.algorithm,
            BASE64.encode(&self.public)
        )
    }

    /// The `.private` file for `secret` (this key's private bytes).
    pub fn private_file(&self, secret: &[u8]) -> String {
        let mut s = format!(
            "Private-key-format: v1.3\nAlgorithm: {} ({})\nPrivateKey: {}\n",
            self.algorithm,
            algorithm_name(self.algorithm),
            BASE64.encode(secret)
        );
        let t = &self.timing;
        for (field, value) in [
            ("Created", t.created),
            ("Publish", t.publish),
            ("Activate", t.activate),
            ("Inactive", t.inactive),
            ("Delete", t.delete),
        ] {
            if let Some(v) = value {
                s.push_str(&format!("{field}: {}\n", format_time(v)));
            }
        }
        s
    }

    /// Signs `data` into `out` without allocating; the signature's length (64), or `None`
    /// when it fails or does not fit.
    pub fn sign_into(&self, data: &[u8], out: &mut [u8]) -> Option<usize> {
        let copy = |sig: &[u8], out: &mut [u8]| {
            out.get_mut(..sig.len())?.copy_from_slice(sig);
            Some(sig.len())
        };
        match &self.pair {
            Pair::Ecdsa(p) => copy(p.sign(&self.rng, data).ok()?.as_ref(), out),
            Pair::Ed25519(p) => copy(p.sign(data).as_ref(), out),
        }
    }

    /// Signs `data`: 64 bytes for both algorithms (P-256: r || s).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&self.rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| err("signing failed")),
            Pair::Ed25519(p) => Ok(p.sign(data).as_ref().to_vec()),
        }
    }
}

/// The DNSKEY in a `.key` file (comments skipped): flags, algorithm, public key.
fn parse_key_file(zone: &[u8], text: &str) -> Result<(u16, u8, Vec<u8>), KeyError> {
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .ok_or_else(|| err(".key has no DNSKEY record"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| f.eq_ignore_ascii_case("DNSKEY"))
        .ok_or_else(|| err(format!(".key: not a DNSKEY record: {line:?}")))?;
    let owner = fields.first().copied().unwrap_or("");
    let owner_wire = name::to_text(zone);
    if !owner
        .trim_end_matches('.')
        .eq_ignore_ascii_case(owner_wire.trim_end_matches('.'))
    {
        return Err(err(format!(
            ".key: the key is for {owner}, not for {owner_wire}"
        )));
    }
    let field = |i: usize| fields.get(at + i).copied().unwrap_or("");
    let flags: u16 = field(1)
        .parse()
        .map_err(|_| err(format!(".key: bad flags {:?}", field(1))))?;
    if field(2) != "3" {
        return Err(err(format!(".key: protocol {:?} is not 3", field(2))));
    }
    let algorithm: u8 = field(3)
        .parse()
        .map_err(|_| err(format!(".key: bad algorithm {:?}", field(3))))?;
    let b64: String = fields.get(at + 4..).unwrap_or(&[]).concat();
    let public = BASE64
        .decode(b64.as_bytes())
        .map_err(|e| err(format!(".key: public key: {e}")))?;
    if flags & FLAG_ZONE == 0 {
        return Err(err(".key: not a zone key (flags lack 256)"));
    }
    Ok((flags, algorithm, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(parse_time("20261206123456"), Some(1_796_560_496));
        assert_eq!(format_time(1_796_560_496), "20261206123456");
        assert_eq!(parse_time("20261306000000"), None);
        assert_eq!(parse_time("2026"), None);
    }

    #[test]
    fn generated_keys_read_back_and_sign() {
        let zone = b"\x07example\x03com\x00";
        for alg in [ECDSAP256SHA256, ED25519] {
            let (key, secret) = SigningKey::generate(zone, alg, true, 1_800_000_000).unwrap();
            let back =
                SigningKey::from_bind(zone, &key.key_file(), &key.private_file(&secret)).unwrap();
            assert_eq!(back.tag, key.tag);
            assert_eq!(back.dnskey(), key.dnskey());
            assert_eq!(back.timing, key.timing);
            assert_eq!(back.sign(b"x").unwrap().len(), 64);
        }
    }

    /// BIND drops the scalar's leading zero bytes in `.private` (one key in 256): such a
    /// key loads and signs like any other.
    #[test]
    fn a_private_key_without_its_leading_zero_loads() {
        let zone = b"\x07example\x03com\x00";
        let (key, secret) = (0..4096)
            .map(|_| SigningKey::generate(zone, ECDSAP256SHA256, true, 0).unwrap())
            .find(|(_, secret)| secret.first() == Some(&0))
            .expect("a scalar with a leading zero byte in 4096 tries");
        let stripped = key
            .private_file(&secret)
            .replace(&BASE64.encode(&secret), &BASE64.encode(&secret[1..]));
        assert_ne!(stripped, key.private_file(&secret));
        let back = SigningKey::from_bind(zone, &key.key_file(), &stripped).unwrap();
        assert_eq!(back.tag, key.tag);
        assert_eq!(back.sign(b"x").unwrap().len(), 64);
    }

    #[test]
    fn bad_key_files_say_why() {
        let zone = b"\x07example\x03com\x00";
        let (key, secret) = SigningKey::generate(zone, ECDSAP256SHA256, true, 0).unwrap();
        let other = b"\x05other\x03com\x00";
        let e = SigningKey::from_bind(other, &key.key_file(), &key.private_file(&secret));
        assert!(e.unwrap_err().0.contains("not for other.com."));
        let private = key
            .private_file(&secret)
            .replace("PrivateKey: ", "PrivateKey: AAAA");
        assert!(SigningKey::from_bind(zone, &key.key_file(), &private).is_err());
    }
}
