//! Types whose presentation form is more than a list of fields: LOC, APL, IPSECKEY, HIP,
//! CERT, AMTRELAY, NSAP, DOA (and SVCB/HTTPS, in `svcb`).

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use super::fields::{self, Out, number};
use super::{Word, name_field};

const NSAP: u16 = 22;
const LOC: u16 = 29;
const CERT: u16 = 37;
const APL: u16 = 42;
const IPSECKEY: u16 = 45;
const HIP: u16 = 55;
const DOA: u16 = 259;
const AMTRELAY: u16 = 260;

const SVCB: u16 = 64;
const HTTPS: u16 = 65;

pub(super) fn known(code: u16) -> bool {
    matches!(
        code,
        NSAP | LOC | CERT | APL | IPSECKEY | HIP | DOA | AMTRELAY | SVCB | HTTPS
    )
}

/// `None` when `code` is not one of these types.
pub(super) fn encode(
    code: u16,
    words: &[Word],
    origin: &Name,
    out: &mut Out,
) -> Option<Result<(), String>> {
    Some(match code {
        NSAP => nsap(words, out),
        LOC => loc(words, out),
        CERT => cert(words, out),
        APL => apl(words, out),
        IPSECKEY => ipseckey(words, origin, out),
        HIP => hip(words, origin, out),
        DOA => doa(words, out),
        AMTRELAY => amtrelay(words, origin, out),
        SVCB | HTTPS => super::svcb::encode(words, origin, out),
        _ => return None,
    })
}

fn exactly<'w, 'a>(words: &'w [Word<'a>], n: usize, what: &str) -> Result<&'w [Word<'a>], String> {
    if words.len() == n {
        Ok(words)
    } else {
        Err(format!("{what} takes {n} fields, not {}", words.len()))
    }
}

/// RFC 1706: `0x` and hex digits, dots allowed between them.
fn nsap(words: &[Word], out: &mut Out) -> Result<(), String> {
    let [w] = exactly(words, 1, "NSAP")? else {
        unreachable!()
    };
    let hex = w
        .text
        .strip_prefix("0x")
        .or_else(|| w.text.strip_prefix("0X"))
        .ok_or_else(|| format!("NSAP must start with 0x: {:?}", w.text))?;
    let digits: String = hex.chars().filter(|c| *c != '.').collect();
    if digits.is_empty() {
        return Err("NSAP has no digits".into());
    }
    out.extend_from_slice(&fields::hex(&digits, "NSAP")?);
    Ok(())
}

/// RFC 4398: a certificate type (mnemonic or number), key tag, algorithm, base64.
fn cert(words: &[Word], out: &mut Out) -> Result<(), String> {
    const TYPES: &[(&str, u16)] = &[
        ("PKIX", 1),
        ("SPKI", 2),
        ("PGP", 3),
        ("IPKIX", 4),
        ("ISPKI", 5),
        ("IPGP", 6),
        ("ACPKIX", 7),
        ("IACPKIX", 8),
        ("URI", 253),
        ("OID", 254),
    ];
    if words.len() < 4 {
        return Err("CERT takes type, key tag, algorithm and certificate".into());
    }
    let t = match TYPES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(words[0].text))
    {
        Some((_, c)) => *c,
        None => number::<u16>(&words[0], "certificate type")?,
    };
    out.extend_from_slice(&t.to_be_bytes());
    fields::u16_field(out, &words[1], "key tag")?;
    fields::algorithm(out, &words[2], "algorithm")?;
    fields::base64_rest(out, &words[3..], "certificate")
}

/// RFC 3123: `[!]afi:address/prefix` items; the address without its trailing zero octets.
fn apl(words: &[Word], out: &mut Out) -> Result<(), String> {
    for w in words {
        let bad = || format!("invalid APL item {:?} ([!]afi:address/prefix)", w.text);
        let (negate, item) = match w.text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, w.text),
        };
        let (afi, rest) = item.split_once(':').ok_or_else(bad)?;
        let (addr, prefix) = rest.split_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let (afi, mut bytes) = match afi {
            "1" if prefix <= 32 => (
                1u16,
                addr.parse::<Ipv4Addr>()
                    .map_err(|_| bad())?
                    .octets()
                    .to_vec(),
            ),
            "2" if prefix <= 128 => (
                2u16,
                addr.parse::<Ipv6Addr>()
                    .map_err(|_| bad())?
                    .octets()
                    .to_vec(),
            ),
            _ => return Err(bad()),
        };
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        out.extend_from_slice(&afi.to_be_bytes());
        out.push(prefix);
        out.push((u8::from(negate) << 7) | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    Ok(())
}

/// A gateway or relay of `kind` 0 (none, "."), 1 (IPv4), 2 (IPv6) or 3 (a name).
fn gateway(kind: u8, w: &Word, origin: &Name, out: &mut Out) -> Result<(), String> {
    match kind {
        0 if w.text == "." => Ok(()),
        0 => Err(format!("gateway type 0 takes \".\", not {:?}", w.text)),
        1 => fields::ipv4(out, w, ""),
        2 => fields::ipv6(out, w, ""),
        3 => name_field(out, w, origin),
        k => Err(format!("unknown gateway type {k}")),
    }
}

/// RFC 4025: precedence, gateway type, algorithm, gateway, optional base64 key.
fn ipseckey(words: &[Word], origin: &Name, out: &mut Out) -> Result<(), String> {
    if words.len() < 4 {
        return Err("IPSECKEY takes precedence, gateway type, algorithm, gateway [key]".into());
    }
    fields::u8_field(out, &words[0], "precedence")?;
    let kind: u8 = number(&words[1], "gateway type")?;
    out.push(kind);
    fields::u8_field(out, &words[2], "algorithm")?;
    gateway(kind, &words[3], origin, out)?;
    if words.len() > 4 {
        fields::base64_rest(out, &words[4..], "public key")?;
    }
    Ok(())
}

/// RFC 8777: precedence, discovery optional bit, relay type, relay.
fn amtrelay(words: &[Word], origin: &Name, out: &mut Out) -> Result<(), String> {
    let [p, d, t, relay] = exactly(words, 4, "AMTRELAY")? else {
        unreachable!()
    };
    fields::u8_field(out, p, "precedence")?;
    let d: u8 = number(d, "discovery optional bit")?;
    let t: u8 = number(t, "relay type")?;
    if d > 1 || t > 0x7f {
        return Err("AMTRELAY D-bit is 0 or 1, the type below 128".into());
    }
    out.push((d << 7) | t);
    gateway(t, relay, origin, out)
}

/// RFC 8005: algorithm, HIT (hex), public key (base64), rendezvous servers.
fn hip(words: &[Word], origin: &Name, out: &mut Out) -> Result<(), String> {
    if words.len() < 3 {
        return Err("HIP takes algorithm, HIT, public key [servers]".into());
    }
    let alg: u8 = number(&words[0], "algorithm")?;
    let hit = fields::hex(words[1].text, "HIT")?;
    let mut key = Vec::new();
    fields::base64_rest(&mut key, &words[2..3], "public key")?;
    let hit_len = u8::try_from(hit.len()).map_err(|_| "HIT is longer than 255 octets")?;
    let key_len = u16::try_from(key.len()).map_err(|_| "public key is too long")?;
    out.push(hit_len);
    out.push(alg);
    out.extend_from_slice(&key_len.to_be_bytes());
    out.extend_from_slice(&hit);
    out.extend_from_slice(&key);
    for w in &words[3..] {
        name_field(out, w, origin)?;
    }
    Ok(())
}

/// DOA (draft-durand-doa-over-dns): enterprise, type, location, media type, base64 or `-`.
fn doa(words: &[Word], out: &mut Out) -> Result<(), String> {
    if words.len() < 5 {
        return Err("DOA takes enterprise, type, location, media type and data".into());
    }
    fields::u32_field(out, &words[0], "enterprise")?;
    fields::u32_field(out, &words[1], "type")?;
    fields::u8_field(out, &words[2], "location")?;
    fields::string(out, &words[3], "")?;
    if words.len() == 5 && words[4].text == "-" {
        return Ok(());
    }
    fields::base64_rest(out, &words[4..], "data")
}

/// RFC 1876: latitude, longitude, altitude, then optional size and precisions.
fn loc(words: &[Word], out: &mut Out) -> Result<(), String> {
    let texts: Vec<&str> = words.iter().map(|w| w.text).collect();
    let (lat, rest) = angle(&texts, 'N', 'S', 90)?;
    let (lon, rest) = angle(rest, 'E', 'W', 180)?;
    let (alt, rest) = rest.split_first().ok_or("LOC has no altitude")?;
    let alt = centimetres(alt, true)?;
    if !(-10_000_000..=4_284_967_295).contains(&alt) {
        return Err("LOC altitude is out of range".into());
    }
    if rest.len() > 3 {
        return Err(format!("LOC has {} fields too many", rest.len() - 3));
    }
    // Defaults (RFC 1876 §3): size 1 m, horizontal precision 10 km, vertical 10 m.
    let mut sizes = [100i64, 1_000_000, 1_000];
    for (i, t) in rest.iter().enumerate() {
        sizes[i] = centimetres(t, false)?;
    }
    out.push(0);
    for cm in sizes {
        out.push(precision(cm)?);
    }
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    out.extend_from_slice(&((alt + 10_000_000) as u32).to_be_bytes());
    Ok(())
}

/// `d [m [s.sss]] H`: the angle as 2^31 ± thousandths of a second of arc.
fn angle<'t>(
    texts: &'t [&'t str],
    plus: char,
    minus: char,
    max_degrees: u32,
) -> Result<(u32, &'t [&'t str]), String> {
    let hemisphere = texts
        .iter()
        .take(4)
        .position(|t| {
            t.eq_ignore_ascii_case(&plus.to_string()) || t.eq_ignore_ascii_case(&minus.to_string())
        })
        .filter(|&i| i >= 1)
        .ok_or_else(|| format!("LOC: no {plus}/{minus} after the degrees"))?;
    let parts = &texts[..hemisphere];
    let bad = || format!("LOC: invalid angle {:?}", parts.join(" "));
    let degrees: u32 = parts[0].parse().map_err(|_| bad())?;
    let minutes: u32 = parts
        .get(1)
        .map_or(Ok(0), |m| m.parse().map_err(|_| bad()))?;
    let millis = match parts.get(2) {
        None => 0,
        Some(s) => thousandths(s).ok_or_else(bad)?,
    };
    if degrees > max_degrees || minutes >= 60 || millis >= 60_000 {
        return Err(bad());
    }
    let total = u64::from(degrees) * 3_600_000 + u64::from(minutes) * 60_000 + u64::from(millis);
    if total > u64::from(max_degrees) * 3_600_000 {
        return Err(bad());
    }
    let total = total as u32;
    let negative = texts[hemisphere].eq_ignore_ascii_case(&minus.to_string());
    let value = if negative {
        (1u32 << 31) - total
    } else {
        (1u32 << 31) + total
    };
    Ok((value, &texts[hemisphere + 1..]))
}

/// `12.345` seconds as 12345 thousandths (at most three decimals).
fn thousandths(s: &str) -> Option<u32> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(frac)
}

/// Metres (`-2.5m`, `10`) as centimetres; negative only where `signed`.
fn centimetres(s: &str, signed: bool) -> Result<i64, String> {
    let bad = || format!("LOC: invalid distance {s:?}");
    let t = s.strip_suffix(['m', 'M']).unwrap_or(s);
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        Some(_) => return Err(bad()),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let cm = whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .ok_or_else(bad)?;
    Ok(if negative { -cm } else { cm })
}

/// A size or precision in centimetres as RFC 1876's mantissa and power of ten.
fn precision(cm: i64) -> Result<u8, String> {
    if !(0..=9_000_000_000).contains(&cm) {
        return Err("LOC: size or precision above 90000000 m".into());
    }
    let mut exponent = 0u8;
    let mut value = cm;
    while value >= 10 && exponent < 9 {
        value /= 10;
        exponent += 1;
    }
    Ok(((value.min(9) as u8) << 4) | exponent)
}
