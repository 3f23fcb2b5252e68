//! RDATA from its presentation form (zone files) to wire form, for every type in IANA's
//! registry that has one and that Knot or BIND load: a field list per type, as Knot's
//! descriptors do, and a handful of types with their own syntax (`special`). Names are
//! kept as written (case too), uncompressed, as Knot and NSD transfer them.
//!
//! hickory-proto 0.26 knows about half of these types (no LOC, RP, EUI48, APL, HIP, ...) and
//! refuses SVCB parameters out of order and escaped names; NLnet Labs' `domain` lacks many
//! types as well. One table here covers them all and is faster than building hickory's typed
//! values only to encode them again.

mod fields;
mod special;
mod svcb;

use hickory_proto::rr::Name;

use crate::dns::iana::rtype;
use crate::dns::name;
use fields::Out;
pub use fields::{duration, unescape};

/// One word of RDATA as written: quotes (if `quoted`) and escapes still in the text.
#[derive(Debug, Clone, Copy)]
pub struct Word<'a> {
    pub text: &'a str,
    pub quoted: bool,
}

/// How one field is written.
#[derive(Clone, Copy)]
enum Field {
    U8(&'static str),
    U16(&'static str),
    U32(&'static str),
    /// A time value with units allowed (SOA timers).
    Ttl(&'static str),
    Name,
    Ipv4,
    Ipv6,
    Str,
    /// Character-strings to the end, at least one.
    Strs,
    /// A character-string only if one is left (ISDN subaddress).
    StrOpt,
    RawString,
    CaaTag,
    Type,
    Algorithm(&'static str),
    Time(&'static str),
    Salt,
    Base32Hex,
    Ilnp64,
    Eui48,
    Eui64,
    /// The rest of the words as base64 / hex / type bitmap.
    Base64(&'static str),
    Hex(&'static str),
    Bitmap,
}

use Field::*;

/// The fields of each type with a plain field list.
fn layout(code: u16) -> Option<&'static [Field]> {
    Some(match code {
        1 => &[Ipv4],
        // NS MD MF CNAME MB MG MR PTR NSAP-PTR DNAME
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 23 | 39 => &[Name],
        6 => &[
            Name,
            Name,
            U32("serial"),
            Ttl("refresh"),
            Ttl("retry"),
            Ttl("expire"),
            Ttl("minimum"),
        ],
        13 => &[Str, Str],
        14 | 17 => &[Name, Name],
        // MX AFSDB RT KX LP
        15 | 18 | 21 | 36 | 107 => &[U16("preference"), Name],
        // TXT SPF AVC RESINFO
        16 | 99 | 258 | 261 => &[Strs],
        19 => &[Str],
        20 => &[Str, StrOpt],
        // SIG RRSIG
        24 | 46 => &[
            Type,
            Algorithm("algorithm"),
            U8("labels"),
            U32("original TTL"),
            Time("expiration"),
            Time("inception"),
            U16("key tag"),
            Name,
            Base64("signature"),
        ],
        // KEY DNSKEY CDNSKEY
        25 | 48 | 60 => &[
            U16("flags"),
            U8("protocol"),
            Algorithm("algorithm"),
            Base64("public key"),
        ],
        26 => &[U16("preference"), Name, Name],
        27 => &[Str, Str, Str],
        28 => &[Ipv6],
        33 => &[U16("priority"), U16("weight"), U16("port"), Name],
        35 => &[U16("order"), U16("preference"), Str, Str, Str, Name],
        // DS CDS
        43 | 59 => &[
            U16("key tag"),
            Algorithm("algorithm"),
            U8("digest type"),
            Hex("digest"),
        ],
        44 => &[U8("algorithm"), U8("fingerprint type"), Hex("fingerprint")],
        47 => &[Name, Bitmap],
        49 | 61 => &[Base64("data")],
        50 => &[
            U8("hash algorithm"),
            U8("flags"),
            U16("iterations"),
            Salt,
            Base32Hex,
            Bitmap,
        ],
        51 => &[U8("hash algorithm"), U8("flags"), U16("iterations"), Salt],
        // TLSA SMIMEA
        52 | 53 => &[
            U8("usage"),
            U8("selector"),
            U8("matching type"),
            Hex("certificate data"),
        ],
        62 => &[U32("SOA serial"), U16("flags"), Bitmap],
        63 => &[
            U32("serial"),
            U8("scheme"),
            U8("hash algorithm"),
            Hex("digest"),
        ],
        // NID L64
        104 | 106 => &[U16("preference"), Ilnp64],
        105 => &[U16("preference"), Ipv4],
        108 => &[Eui48],
        109 => &[Eui64],
        256 => &[U16("priority"), U16("weight"), RawString],
        257 => &[U8("flags"), CaaTag, RawString],
        _ => return None,
    })
}

/// Whether `code` has a presentation form here (beyond RFC 3597's `\#`).
pub fn known(code: u16) -> bool {
    layout(code).is_some() || special::known(code)
}

/// The wire RDATA of a record of type `code` written as `words`; relative names are
/// completed with `origin`.
pub fn encode(code: u16, words: &[Word], origin: &Name) -> Result<Vec<u8>, String> {
    if words.first().is_some_and(|w| w.text == "\\#" && !w.quoted) {
        return generic(words);
    }
    let type_name = rtype::mnemonic(code).unwrap_or("this type");
    // APL is the one type whose RDATA may be empty (no items).
    if words.is_empty() && code != 42 {
        return Err(format!("{type_name} record has no data"));
    }
    let mut out = Vec::with_capacity(32);
    let invalid = |e: String| format!("invalid {type_name} data: {e}");
    if let Some(special) = special::encode(code, words, origin, &mut out) {
        special.map_err(invalid)?;
    } else {
        let fields = layout(code).ok_or_else(|| {
            format!("{type_name} has no presentation format here; write it as \\# (RFC 3597)")
        })?;
        let used = encode_fields(fields, words, origin, &mut out).map_err(invalid)?;
        if used < words.len() {
            return Err(invalid(format!(
                "{} fields too many, from {:?}",
                words.len() - used,
                words[used].text
            )));
        }
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(format!("{type_name} data is longer than 65535 octets"));
    }
    Ok(out)
}

/// RFC 3597 §5: `\# <length> <hex>...`, for any type.
fn generic(words: &[Word]) -> Result<Vec<u8>, String> {
    let len: usize = words
        .get(1)
        .and_then(|w| w.text.parse().ok())
        .ok_or("\\# must be followed by the RDATA length")?;
    let hex: String = words[2..].iter().map(|w| w.text).collect();
    let bytes = if hex.is_empty() {
        Vec::new()
    } else {
        fields::hex(&hex, "\\# data")?
    };
    if bytes.len() != len {
        return Err(format!(
            "\\# says {len} octets but {} are given",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Writes `fields` from `words`; returns how many words were used.
fn encode_fields(
    fields: &[Field],
    words: &[Word],
    origin: &Name,
    out: &mut Out,
) -> Result<usize, String> {
    let mut i = 0;
    for field in fields {
        let rest = words.get(i..).unwrap_or(&[]);
        match *field {
            Strs => {
                if rest.is_empty() {
                    return Err("a character-string is missing".into());
                }
                for w in rest {
                    fields::string(out, w, "")?;
                }
                return Ok(words.len());
            }
            Base64(what) => {
                fields::base64_rest(out, rest, what)?;
                return Ok(words.len());
            }
            Hex(what) => {
                fields::hex_rest(out, rest, what)?;
                return Ok(words.len());
            }
            Bitmap => {
                fields::bitmap(out, rest, "")?;
                return Ok(words.len());
            }
            StrOpt => {
                if let Some(w) = rest.first() {
                    fields::string(out, w, "")?;
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let w = rest
            .first()
            .ok_or_else(|| format!("{} is missing", describe(*field)))?;
        one(*field, w, origin, out)?;
        i += 1;
    }
    Ok(i)
}

fn one(field: Field, w: &Word, origin: &Name, out: &mut Out) -> Result<(), String> {
    match field {
        U8(what) => fields::u8_field(out, w, what),
        U16(what) => fields::u16_field(out, w, what),
        U32(what) => fields::u32_field(out, w, what),
        Ttl(what) => fields::ttl_field(out, w, what),
        Name => name_field(out, w, origin),
        Ipv4 => fields::ipv4(out, w, ""),
        Ipv6 => fields::ipv6(out, w, ""),
        Str => fields::string(out, w, ""),
        RawString => fields::raw_string(out, w, ""),
        CaaTag => fields::caa_tag(out, w, ""),
        Type => fields::type_field(out, w, ""),
        Algorithm(what) => fields::algorithm(out, w, what),
        Time(what) => fields::time(out, w, what),
        Salt => fields::salt(out, w, ""),
        Base32Hex => fields::base32hex(out, w, ""),
        Ilnp64 => fields::ilnp64(out, w, ""),
        Eui48 => fields::eui(out, w, 6),
        Eui64 => fields::eui(out, w, 8),
        Strs | StrOpt | Base64(_) | Hex(_) | Bitmap => Ok(()),
    }
}

fn describe(field: Field) -> &'static str {
    match field {
        U8(w) | U16(w) | U32(w) | Ttl(w) | Algorithm(w) | Time(w) | Base64(w) | Hex(w) => w,
        Name => "a domain name",
        Ipv4 => "an IPv4 address",
        Ipv6 => "an IPv6 address",
        Str | Strs | StrOpt => "a character-string",
        RawString => "a string",
        CaaTag => "a tag",
        Type => "a record type",
        Salt => "the salt",
        Base32Hex => "the next hashed owner name",
        Ilnp64 => "a 64-bit locator",
        Eui48 | Eui64 => "an EUI address",
        Bitmap => "the type bitmap",
    }
}

/// A domain name field, uncompressed, case as written.
fn name_field(out: &mut Out, w: &Word, origin: &Name) -> Result<(), String> {
    if w.quoted {
        return Err(format!("a domain name cannot be quoted: {}", w.text));
    }
    out.extend_from_slice(&name::wire(&name::from_text(w.text, origin)?));
    Ok(())
}

#[cfg(test)]
mod tests;
