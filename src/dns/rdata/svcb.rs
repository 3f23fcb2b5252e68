//! SVCB and HTTPS (RFC 9460 §2.1 and Appendix A): priority, target, then `key=value`
//! parameters in any order, written sorted by key.

use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::BASE64;
use hickory_proto::rr::Name;

use super::fields::{self, Out};
use super::{Word, name_field};

const KEYS: [&str; 9] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
    "ohttp",
];

fn key_code(name: &str) -> Result<u16, String> {
    if let Some(i) = KEYS.iter().position(|k| k.eq_ignore_ascii_case(name)) {
        return Ok(i as u16);
    }
    name.strip_prefix("key")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u16>().ok())
        .ok_or_else(|| format!("unknown SvcParam key {name:?}"))
}

pub(super) fn encode(words: &[Word], origin: &Name, out: &mut Out) -> Result<(), String> {
    let [priority, target, params @ ..] = words else {
        return Err("takes a priority and a target name".into());
    };
    fields::u16_field(out, priority, "priority")?;
    name_field(out, target, origin)?;
    let mut encoded: Vec<(u16, Vec<u8>)> = Vec::with_capacity(params.len());
    for w in params {
        let (key, value) = match w.text.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w.text, None),
        };
        let code = key_code(key)?;
        if encoded.iter().any(|(c, _)| *c == code) {
            return Err(format!("SvcParam {key} appears twice"));
        }
        let value = value
            .map(|v| {
                fields::unescape(&Word {
                    text: v,
                    quoted: v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                })
            })
            .transpose()?;
        encoded.push((code, param(code, key, value)?));
    }
    encoded.sort_by_key(|(c, _)| *c);
    for (code, value) in encoded {
        let len = u16::try_from(value.len()).map_err(|_| "a SvcParam value is too long")?;
        out.extend_from_slice(&code.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

/// The wire value of one parameter from its (already unescaped) presentation value.
fn param(code: u16, key: &str, value: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
    let needs = |v: Option<Vec<u8>>| v.ok_or_else(|| format!("SvcParam {key} needs a value"));
    let text = |v: Vec<u8>| String::from_utf8(v).map_err(|_| format!("SvcParam {key}: not text"));
    let mut out = Vec::new();
    match code {
        0 => {
            let mut keys = value_list(&needs(value)?)
                .iter()
                .map(|k| key_code(&String::from_utf8_lossy(k)))
                .collect::<Result<Vec<u16>, String>>()?;
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                out.extend_from_slice(&k.to_be_bytes());
            }
        }
        1 => {
            for id in value_list(&needs(value)?) {
                let len = u8::try_from(id.len())
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or("alpn ids are 1-255 octets")?;
                out.push(len);
                out.extend_from_slice(&id);
            }
        }
        2 | 8 if value.is_none() => {}
        2 | 8 => return Err(format!("SvcParam {key} takes no value")),
        3 => {
            let port: u16 = text(needs(value)?)?
                .parse()
                .map_err(|_| "invalid port".to_string())?;
            out.extend_from_slice(&port.to_be_bytes());
        }
        4 => {
            for a in text(needs(value)?)?.split(',') {
                let a: Ipv4Addr = a.parse().map_err(|_| format!("invalid ipv4hint {a:?}"))?;
                out.extend_from_slice(&a.octets());
            }
        }
        6 => {
            for a in text(needs(value)?)?.split(',') {
                let a: Ipv6Addr = a.parse().map_err(|_| format!("invalid ipv6hint {a:?}"))?;
                out.extend_from_slice(&a.octets());
            }
        }
        5 => {
            out = BASE64
                .decode(&needs(value)?)
                .map_err(|_| "ech is not base64".to_string())?;
        }
        _ => out = value.unwrap_or_default(),
    }
    Ok(out)
}

/// A comma-separated list in which `\,` is a comma and `\\` a backslash (RFC 9460 A.1).
fn value_list(v: &[u8]) -> Vec<Vec<u8>> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < v.len() {
        match (v[i], v.get(i + 1)) {
            (b'\\', Some(&next)) => {
                if let Some(last) = items.last_mut() {
                    last.push(next);
                }
                i += 2;
                continue;
            }
            (b',', _) => items.push(Vec::new()),
            (b, _) => {
                if let Some(last) = items.last_mut() {
                    last.push(b);
                }
            }
        }
        i += 1;
    }
    items
}
