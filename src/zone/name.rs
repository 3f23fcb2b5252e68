//! Domain names in uncompressed wire form (length-prefixed labels ending in the root label).
//!
//! The query path works on byte slices in this form: lowercased copies are the lookup keys,
//! so no `Name` values are built per query.

use hickory_proto::rr::Name;

/// Longest name in wire form (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Most labels a name can have, root included.
pub const MAX_LABELS: usize = 128;

/// Wire form of `name`, lowercased (the key form used by the zone tables).
pub fn wire_lower(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Wire form of `name`, case kept (RDATA targets, synthesized names).
pub fn wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Offsets of each label start in a valid wire name, the root label included.
/// Returns how many were written into `offsets`.
pub fn label_offsets(wire: &[u8], offsets: &mut [u8; MAX_LABELS]) -> usize {
    let mut n = 0;
    let mut pos = 0usize;
    while pos < wire.len() && n < MAX_LABELS {
        offsets[n] = pos as u8;
        n += 1;
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        pos += len + 1;
    }
    n
}

/// Number of labels excluding the root.
pub fn label_count(wire: &[u8]) -> usize {
    let mut offsets = [0u8; MAX_LABELS];
    label_offsets(wire, &mut offsets).saturating_sub(1)
}

/// True when `name` equals `zone` or lies below it (both lowercase wire form).
pub fn is_subdomain(name: &[u8], zone: &[u8]) -> bool {
    if zone.len() > name.len() {
        return false;
    }
    let start = name.len() - zone.len();
    if &name[start..] != zone {
        return false;
    }
    // The suffix must begin on a label boundary.
    let mut pos = 0usize;
    while pos < start {
        pos += name[pos] as usize + 1;
    }
    pos == start
}

/// The parent of a wire name (one label removed); `None` for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    let len = *wire.first()? as usize;
    if len == 0 { None } else { wire.get(len + 1..) }
}

/// Presentation form of a wire name, for logs and errors (not the query path).
pub fn to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0usize;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let Some(label) = wire.get(pos + 1..pos + 1 + len as usize) else {
            break;
        };
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
        pos += len as usize + 1;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn w(s: &str) -> Vec<u8> {
        wire_lower(&Name::from_str(s).expect("test name"))
    }

    #[test]
    fn subdomain_respects_label_boundaries() {
        assert!(is_subdomain(&w("a.example.com."), &w("example.com.")));
        assert!(is_subdomain(&w("example.com."), &w("example.com.")));
        assert!(!is_subdomain(&w("badexample.com."), &w("example.com.")));
        assert!(is_subdomain(&w("x.y."), &w(".")));
    }

    #[test]
    fn lowercases_and_round_trips_text() {
        assert_eq!(to_text(&w("WWW.Example.COM.")), "www.example.com.");
        assert_eq!(to_text(&[0]), ".");
        assert_eq!(label_count(&w("a.b.c.")), 3);
        assert_eq!(parent(&w("a.b.")), Some(&w("b.")[..]));
        assert_eq!(parent(&[0]), None);
    }
}
