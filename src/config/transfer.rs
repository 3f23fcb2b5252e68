//! Zone transfer out: `[tsig_keys]` and `[transfer."zone."]` in meridian.toml, validated
//! into [`Transfers`], which the snapshot carries for the AXFR/IXFR, TSIG and NOTIFY code.
//!
//! ```toml
//! [tsig_keys]
//! xfr = { algorithm = "hmac-sha256", secret = "base64..." }
//!
//! [transfer."example.com."]
//! allow = ["192.0.2.0/24", "2001:db8::/32"]   # source networks (empty: any, with tsig)
//! tsig = "xfr"                                # requests must be signed with this key
//! notify = ["192.0.2.53", "192.0.2.54:5300"]  # secondaries told of new serials
//! ixfr_history = 10                           # differences kept for IXFR (default 10)
//! ```
//!
//! Transfers are off unless a zone has an entry, and an entry must say `allow`, `tsig` or
//! both (both: the address must match and the request be signed).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Deserialize;
use toml::Spanned;

use crate::dns::name::{to_text, wire_lower};
use crate::dns::tsig::TsigKey;
use crate::engine::transfer::{Transfers, ZoneTransfer};
use crate::zone::ZoneSet;

/// The only TSIG algorithm supported (RFC 8945 §6: mandatory to implement).
pub const HMAC_SHA256: &str = "hmac-sha256";

/// `[tsig_keys] name = { algorithm, secret }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKeyConfig {
    pub algorithm: Spanned<String>,
    /// Base64, as `tsig-keygen` and `keymgr` print it.
    pub secret: Spanned<String>,
}

/// `[transfer."zone."]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// Networks allowed to transfer the zone (CIDR, or a bare address).
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Name of a key in `[tsig_keys]` that requests must be signed with.
    #[serde(default)]
    pub tsig: Option<Spanned<String>>,
    /// Secondaries to NOTIFY (RFC 1996) when the serial changes: `addr` (port 53) or
    /// `addr:port`.
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    /// Versions of the zone whose differences are kept for IXFR (in memory); 0: none.
    #[serde(default = "default_ixfr_history")]
    pub ixfr_history: usize,
}

fn default_ixfr_history() -> usize {
    10
}

/// A problem at a line of the config file (0: no line).
pub type Problem = (usize, String);

/// Validates `[tsig_keys]` into `out`; returns each key's index by its name in the file.
fn tsig_keys<'k>(
    keys: &'k BTreeMap<String, Spanned<TsigKeyConfig>>,
    line: &dyn Fn(std::ops::Range<usize>) -> usize,
    out: &mut Vec<TsigKey>,
    errors: &mut Vec<Problem>,
) -> FxHashMap<&'k str, usize> {
    let mut key_index: FxHashMap<&str, usize> = FxHashMap::default();
    for (name, spanned) in keys {
        let at = line(spanned.span());
        let k = spanned.get_ref();
        let wire = match Name::parse(name, Some(&Name::root())) {
            Ok(n) => wire_lower(&n),
            Err(e) => {
                errors.push((at, format!("tsig_keys: {name:?} is not a domain name: {e}")));
                continue;
            }
        };
        let algorithm = k.algorithm.get_ref().trim_end_matches('.');
        if !algorithm.eq_ignore_ascii_case(HMAC_SHA256) {
            errors.push((
                line(k.algorithm.span()),
                format!(
                    "tsig_keys.{name}: algorithm {:?} is not supported (use \"{HMAC_SHA256}\")",
                    k.algorithm.get_ref()
                ),
            ));
            continue;
        }
        let secret = match data_encoding::BASE64.decode(k.secret.get_ref().trim().as_bytes()) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                errors.push((
                    line(k.secret.span()),
                    format!("tsig_keys.{name}: secret is empty"),
                ));
                continue;
            }
            Err(e) => {
                errors.push((
                    line(k.secret.span()),
                    format!("tsig_keys.{name}: secret is not valid base64: {e}"),
                ));
                continue;
            }
        };
        if out.iter().any(|x| x.name[..] == wire[..]) {
            errors.push((at, format!("tsig_keys: {name:?} is defined twice")));
            continue;
        }
        key_index.insert(name.as_str(), out.len());
        out.push(TsigKey {
            name: wire.into_boxed_slice(),
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
        });
    }

    key_index
}

/// One zone's `[transfer."zone."]`: networks, key and NOTIFY targets.
fn zone_transfer(
    zone_name: &str,
    t: &TransferConfig,
    key_index: &FxHashMap<&str, usize>,
    line: &dyn Fn(std::ops::Range<usize>) -> usize,
    errors: &mut Vec<Problem>,
) -> ZoneTransfer {
    let mut zt = ZoneTransfer {
        history: t.ixfr_history,
        ..ZoneTransfer::default()
    };
    for a in &t.allow {
        let text = a.get_ref().trim();
        let net = IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map(|n| n.trunc());
        match net {
            Ok(n) => zt.allow.push(n),
            Err(_) => errors.push((
                line(a.span()),
                format!(
                    "transfer.\"{zone_name}\": allow: {text:?} is not a network (CIDR) or address"
                ),
            )),
        }
    }
    if let Some(k) = &t.tsig {
        match key_index.get(k.get_ref().as_str()) {
            Some(&i) => zt.tsig = Some(i),
            None => errors.push((
                line(k.span()),
                format!(
                    "transfer.\"{zone_name}\": tsig: no key {:?} in [tsig_keys]",
                    k.get_ref()
                ),
            )),
        }
    }
    for n in &t.notify {
        let text = n.get_ref().trim();
        let addr = SocketAddr::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(|ip| SocketAddr::new(ip, 53)));
        match addr {
            Ok(a) => zt.notify.push(a),
            Err(_) => errors.push((
                line(n.span()),
                format!(
                    "transfer.\"{zone_name}\": notify: {text:?} is not an address or address:port"
                ),
            )),
        }
    }
    zt
}

/// Validates `[tsig_keys]` and `[transfer]` against the zones loaded. `line` turns a span
/// into a line number of the config file.
pub fn build(
    keys: &BTreeMap<String, Spanned<TsigKeyConfig>>,
    transfer: &BTreeMap<String, Spanned<TransferConfig>>,
    zones: &ZoneSet,
    line: &dyn Fn(std::ops::Range<usize>) -> usize,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Transfers {
    let mut out = Transfers::default();
    let key_index = tsig_keys(keys, line, &mut out.keys, errors);
    for (zone_name, spanned) in transfer {
        let at = line(spanned.span());
        let t = spanned.get_ref();
        let origin = match Name::parse(zone_name, Some(&Name::root())) {
            Ok(n) => wire_lower(&n),
            Err(e) => {
                errors.push((
                    at,
                    format!("transfer: {zone_name:?} is not a zone name: {e}"),
                ));
                continue;
            }
        };
        let Some(zone) = zones.by_origin(&origin) else {
            errors.push((
                at,
                format!("transfer: zone {} is not served here", to_text(&origin)),
            ));
            continue;
        };
        let zt = zone_transfer(zone_name, t, &key_index, line, errors);
        if t.allow.is_empty() && t.tsig.is_none() {
            errors.push((
                at,
                format!(
                    "transfer.\"{zone_name}\": set allow (networks), tsig (a key) or both; \
                     to allow anyone say allow = [\"0.0.0.0/0\", \"::/0\"]"
                ),
            ));
        }
        if zone.nodes().any(|(_, n)| n.dynamic().is_some()) {
            let what = if zone.is_signed() {
                "its dynamic names go out as their default answer, signed (a secondary cannot \
                 steer)"
            } else {
                "transfers carry only its static records"
            };
            warnings.push((
                at,
                format!("transfer.\"{zone_name}\": the zone has dynamic names; {what}"),
            ));
        }
        out.insert(origin.into_boxed_slice(), zt);
    }
    out
}
