//! The presentation forms RDATA fields share (RFC 1035 §5.1 and the RFCs of each type):
//! each one reads its words and appends the wire form.

use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXLOWER_PERMISSIVE};

use super::Word;
use crate::dns::iana::rtype;

pub(super) type Out = Vec<u8>;

pub(super) fn number<T: TryFrom<u64>>(w: &Word, what: &str) -> Result<T, String> {
    w.text
        .parse::<u64>()
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("invalid {what} {:?}", w.text))
}

pub(super) fn u8_field(out: &mut Out, w: &Word, what: &str) -> Result<(), String> {
    out.push(number::<u8>(w, what)?);
    Ok(())
}

pub(super) fn u16_field(out: &mut Out, w: &Word, what: &str) -> Result<(), String> {
    out.extend_from_slice(&number::<u16>(w, what)?.to_be_bytes());
    Ok(())
}

pub(super) fn u32_field(out: &mut Out, w: &Word, what: &str) -> Result<(), String> {
    out.extend_from_slice(&number::<u32>(w, what)?.to_be_bytes());
    Ok(())
}

/// A TTL-like duration: seconds, or units as BIND writes them (`1h30m`, `2w`).
pub fn duration(text: &str) -> Result<u32, String> {
    let bad = || format!("invalid time value {text:?}");
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let (mut total, mut value, mut digits) = (0u64, 0u64, 0);
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            value = value * 10 + u64::from(d);
            digits += 1;
            if value > u64::from(u32::MAX) {
                return Err(bad());
            }
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        if digits == 0 {
            return Err(bad());
        }
        total += value * unit;
        (value, digits) = (0, 0);
    }
    if digits > 0 {
        return Err(bad());
    }
    u32::try_from(total).map_err(|_| bad())
}

pub(super) fn ttl_field(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    out.extend_from_slice(&duration(w.text)?.to_be_bytes());
    Ok(())
}

pub(super) fn ipv4(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let a: Ipv4Addr = w
        .text
        .parse()
        .map_err(|_| format!("invalid IPv4 address {:?}", w.text))?;
    out.extend_from_slice(&a.octets());
    Ok(())
}

pub(super) fn ipv6(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let a: Ipv6Addr = w
        .text
        .parse()
        .map_err(|_| format!("invalid IPv6 address {:?}", w.text))?;
    out.extend_from_slice(&a.octets());
    Ok(())
}

/// The bytes of a `<character-string>` as written: quotes removed, `\X` and `\DDD` decoded.
pub fn unescape(w: &Word) -> Result<Vec<u8>, String> {
    let text = if w.quoted {
        w.text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(w.text)
    } else {
        w.text
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1..i + 4) {
            Some(d) if d.iter().all(u8::is_ascii_digit) => {
                let v = d.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
                let v = u8::try_from(v)
                    .map_err(|_| format!("escape \\{} is above 255", &text[i + 1..i + 4]))?;
                out.push(v);
                i += 4;
            }
            _ => {
                let e = bytes.get(i + 1).ok_or("a backslash ends the string")?;
                out.push(*e);
                i += 2;
            }
        }
    }
    Ok(out)
}

/// One `<character-string>`: a length octet, then at most 255 octets.
pub(super) fn string(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let bytes = unescape(w)?;
    let len = u8::try_from(bytes.len()).map_err(|_| {
        format!(
            "character-string of {} octets is longer than 255",
            bytes.len()
        )
    })?;
    out.push(len);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// A string that fills the rest of the RDATA, without a length (CAA value, URI target).
pub(super) fn raw_string(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    out.extend_from_slice(&unescape(w)?);
    Ok(())
}

/// A CAA tag: 1-15 letters and digits, with its length.
pub(super) fn caa_tag(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let ok = (1..=15).contains(&w.text.len()) && w.text.bytes().all(|b| b.is_ascii_alphanumeric());
    if !ok || w.quoted {
        return Err(format!(
            "invalid CAA tag {:?} (1-15 letters and digits)",
            w.text
        ));
    }
    out.push(w.text.len() as u8);
    out.extend_from_slice(w.text.as_bytes());
    Ok(())
}

fn joined(words: &[Word]) -> String {
    words.iter().map(|w| w.text).collect()
}

/// Base64 over the remaining words (spaces allowed inside, as in DNSKEY).
pub(super) fn base64_rest(out: &mut Out, words: &[Word], what: &str) -> Result<(), String> {
    if words.is_empty() {
        return Err(format!("{what} is missing"));
    }
    let text = joined(words);
    let bytes = BASE64
        .decode(text.as_bytes())
        .map_err(|e| format!("invalid base64 in {what}: {e}"))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Hex over the remaining words; at least one word.
pub(super) fn hex_rest(out: &mut Out, words: &[Word], what: &str) -> Result<(), String> {
    if words.is_empty() {
        return Err(format!("{what} is missing"));
    }
    out.extend_from_slice(&hex(&joined(words), what)?);
    Ok(())
}

pub(super) fn hex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .map_err(|_| format!("invalid hex in {what}: {text:?}"))
}

/// NSEC3 salt: `-` for none, else hex; with its length octet.
pub(super) fn salt(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let bytes = if w.text == "-" {
        Vec::new()
    } else {
        hex(w.text, "salt")?
    };
    let len = u8::try_from(bytes.len()).map_err(|_| "salt is longer than 255 octets")?;
    out.push(len);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// NSEC3 next hashed owner name: base32hex without padding, with its length octet.
pub(super) fn base32hex(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let bytes = BASE32HEX_NOPAD
        .decode(w.text.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid base32hex {:?}", w.text))?;
    let len = u8::try_from(bytes.len()).map_err(|_| "hashed name is longer than 255 octets")?;
    out.push(len);
    out.extend_from_slice(&bytes);
    Ok(())
}

pub(super) fn type_code(w: &Word) -> Result<u16, String> {
    rtype::from_mnemonic(w.text).ok_or_else(|| format!("unknown record type {:?}", w.text))
}

/// A type covered (RRSIG, SIG).
pub(super) fn type_field(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    out.extend_from_slice(&type_code(w)?.to_be_bytes());
    Ok(())
}

/// RFC 4034 §4.1.2 type bitmap over the remaining words (may be empty).
pub(super) fn bitmap(out: &mut Out, words: &[Word], _what: &str) -> Result<(), String> {
    let mut types: Vec<u16> = words.iter().map(type_code).collect::<Result<_, _>>()?;
    types.sort_unstable();
    types.dedup();
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            used = low / 8 + 1;
            i += 1;
        }
        out.push(window);
        out.push(used as u8);
        out.extend_from_slice(&bits[..used]);
    }
    Ok(())
}

/// An algorithm number or its mnemonic (RFC 4034 Appendix A.1, and later ones).
pub(super) fn algorithm(out: &mut Out, w: &Word, what: &str) -> Result<(), String> {
    const NAMES: &[(&str, u8)] = &[
        ("RSAMD5", 1),
        ("DH", 2),
        ("DSA", 3),
        ("RSASHA1", 5),
        ("DSA-NSEC3-SHA1", 6),
        ("RSASHA1-NSEC3-SHA1", 7),
        ("RSASHA256", 8),
        ("RSASHA512", 10),
        ("ECC-GOST", 12),
        ("ECDSAP256SHA256", 13),
        ("ECDSAP384SHA384", 14),
        ("ED25519", 15),
        ("ED448", 16),
        ("INDIRECT", 252),
        ("PRIVATEDNS", 253),
        ("PRIVATEOID", 254),
    ];
    let code = match NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(w.text)) {
        Some((_, c)) => *c,
        None => number::<u8>(w, what)?,
    };
    out.push(code);
    Ok(())
}

/// RRSIG/SIG time: `YYYYMMDDHHmmSS` (UTC) or seconds since the epoch.
pub(super) fn time(out: &mut Out, w: &Word, what: &str) -> Result<(), String> {
    let t = w.text;
    let secs: u32 = if t.len() == 14 && t.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap_or(0);
        let (y, mo, d, h, mi, s) = (n(0..4), n(4..6), n(6..8), n(8..10), n(10..12), n(12..14));
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return Err(format!("invalid {what} {t:?}"));
        }
        let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
        // Serial number arithmetic (RFC 4034 §3.1.5): the time modulo 2^32.
        secs.rem_euclid(1 << 32) as u32
    } else {
        number::<u32>(w, what)?
    };
    out.extend_from_slice(&secs.to_be_bytes());
    Ok(())
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `count` hex pairs separated by `-` (EUI48: 6, EUI64: 8; RFC 7043).
pub(super) fn eui(out: &mut Out, w: &Word, count: usize) -> Result<(), String> {
    let parts: Vec<&str> = w.text.split('-').collect();
    if parts.len() != count || parts.iter().any(|p| p.len() != 2) {
        return Err(format!(
            "invalid EUI{} {:?} ({count} hex pairs joined by -)",
            count * 8,
            w.text
        ));
    }
    out.extend_from_slice(&hex(&parts.concat(), "EUI")?);
    Ok(())
}

/// An ILNP 64-bit locator or node id: four groups of 1-4 hex digits joined by `:` (RFC 6742).
pub(super) fn ilnp64(out: &mut Out, w: &Word, _what: &str) -> Result<(), String> {
    let parts: Vec<&str> = w.text.split(':').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
        return Err(format!("invalid 64-bit locator {:?}", w.text));
    }
    for p in parts {
        let v = u16::from_str_radix(p, 16).map_err(|_| format!("invalid hex {p:?}"))?;
        out.extend_from_slice(&v.to_be_bytes());
    }
    Ok(())
}
