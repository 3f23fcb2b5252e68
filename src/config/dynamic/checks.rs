//! Check definitions and endpoints of the dynamic-names file, validated into `CheckSpec`s
//! and routing `Endpoint`s.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::Name;

use super::schema::*;
use crate::dns::rcode;
use crate::health::{CheckKind, CheckSpec, Timing};
use crate::routing::Endpoint;

fn seconds(v: f64, what: &str) -> Result<std::time::Duration, String> {
    if !(0.01..=86400.0).contains(&v) {
        return Err(format!("{what} must be between 0.01 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

/// The check of one endpoint: the pool's check with the endpoint's address and port.
pub(super) fn check_spec(
    c: &CheckConf,
    ep: &EndpointConf,
    base: &Path,
) -> Result<CheckSpec, String> {
    let timing = timing_of(c)?;
    let answer_addr = ep.address.or_else(|| ep.addresses.first().copied());
    let address = ep.check_address.or(answer_addr);
    let sock = |default_port: u16| -> Result<std::net::SocketAddr, String> {
        let ip = address.ok_or("needs an address to check (check_address for CNAME endpoints)")?;
        Ok(std::net::SocketAddr::new(
            ip,
            ep.check_port.or(c.port).unwrap_or(default_port),
        ))
    };
    let subst = |s: &str| -> Result<String, String> {
        let addr = address.map(|a| a.to_string()).unwrap_or_default();
        let port = ep
            .check_port
            .or(c.port)
            .map(|p| p.to_string())
            .unwrap_or_default();
        Ok(s.replace("{address}", &addr)
            .replace("{port}", &port)
            .replace("{id}", &ep.id))
    };
    let kind = match c.kind.as_str() {
        "tcp" => {
            if c.port.is_none() && ep.check_port.is_none() {
                return Err("a tcp check needs port".into());
            }
            CheckKind::Tcp { addr: sock(0)? }
        }
        "http" | "https" => {
            let tls = c.kind == "https";
            http_kind(c, sock(if tls { 443 } else { 80 })?, tls, base)?
        }
        "dns" => dns_kind(c, sock(53)?)?,
        "exec" => {
            if c.command.is_empty() {
                return Err("an exec check needs command = [\"program\", \"args\"...]".into());
            }
            CheckKind::Exec {
                command: c
                    .command
                    .iter()
                    .map(|a| subst(a))
                    .collect::<Result<_, _>>()?,
            }
        }
        "file" => {
            let f = c
                .file
                .as_ref()
                .ok_or("a file check needs file = \"path\"")?;
            CheckKind::File {
                path: base.join(subst(f)?),
            }
        }
        other => {
            return Err(format!(
                "unknown check type {other:?} (tcp, http, https, dns, exec, file)"
            ));
        }
    };
    Ok(CheckSpec { kind, timing })
}

/// How often and how patiently a check runs, and its thresholds.
fn timing_of(c: &CheckConf) -> Result<Timing, String> {
    let interval = seconds(c.interval.unwrap_or(DEFAULT_INTERVAL), "interval")?;
    let timeout = seconds(
        c.timeout
            .unwrap_or(DEFAULT_TIMEOUT.min(interval.as_secs_f64() / 2.0)),
        "timeout",
    )?;
    if timeout > interval {
        return Err("timeout must not exceed the interval".into());
    }
    let initially_up = match c.initial.as_deref() {
        None | Some("up") => true,
        Some("down") => false,
        Some(other) => return Err(format!("initial must be up or down, not {other:?}")),
    };
    Ok(Timing {
        interval,
        timeout,
        rise: c.rise.unwrap_or(DEFAULT_RISE).max(1),
        fall: c.fall.unwrap_or(DEFAULT_FALL).max(1),
        initially_up,
    })
}

/// An HTTP(S) GET check against `addr`.
fn http_kind(
    c: &CheckConf,
    addr: std::net::SocketAddr,
    tls: bool,
    base: &Path,
) -> Result<CheckKind, String> {
    // Read now, so that `meridian check` and a reload catch it: a check that cannot
    // build its client never runs, and its endpoint would stay up unchecked.
    let ca_file = match &c.ca_file {
        Some(f) => {
            let path = base.join(f);
            let pem =
                std::fs::read(&path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => Some(path),
                Ok(_) => {
                    return Err(format!("ca_file {}: no PEM certificate", path.display()));
                }
                Err(e) => return Err(format!("ca_file {}: {e}", path.display())),
            }
        }
        None => None,
    };
    Ok(CheckKind::Http {
        addr,
        tls,
        host: c.host.clone().unwrap_or_else(|| match addr.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        }),
        path: {
            let p = c.path.clone().unwrap_or_else(|| "/".into());
            if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            }
        },
        expect_status: c.expect_status.clone(),
        body_contains: c.body_contains.clone(),
        insecure: c.insecure,
        ca_file,
    })
}

/// A DNS query check against `addr`.
fn dns_kind(c: &CheckConf, addr: std::net::SocketAddr) -> Result<CheckKind, String> {
    let qname = c
        .query
        .clone()
        .ok_or("a dns check needs query = \"name\"")?;
    let qtype = match &c.qtype {
        Some(t) => u16::from(
            hickory_proto::rr::RecordType::from_str(&t.to_ascii_uppercase())
                .map_err(|_| format!("unknown qtype {t:?}"))?,
        ),
        None => 1,
    };
    let rcode = match c.expect_rcode.as_deref().map(str::to_ascii_uppercase) {
        None => 0,
        Some(name) => (0..16u8)
            .find(|&r| rcode::mnemonic(u16::from(r)) == Some(name.as_str()))
            .ok_or_else(|| format!("unknown expect_rcode {name:?}"))?,
    };
    Ok(CheckKind::Dns {
        addr,
        qname,
        qtype,
        rcode,
        need_answer: c.expect_answer,
    })
}

pub(super) fn endpoint(
    conf: &EndpointConf,
    group: u32,
    origin: &Name,
    key: String,
    check: Option<u32>,
) -> Result<Endpoint, String> {
    let mut addrs = conf.addresses.clone();
    if let Some(a) = conf.address {
        addrs.insert(0, a);
    }
    let a = addrs.iter().find_map(|ip| match ip {
        IpAddr::V4(v4) => Some(v4.octets()),
        _ => None,
    });
    let aaaa = addrs.iter().find_map(|ip| match ip {
        IpAddr::V6(v6) => Some(v6.octets()),
        _ => None,
    });
    if addrs.iter().filter(|ip| ip.is_ipv4()).count() > 1
        || addrs.iter().filter(|ip| ip.is_ipv6()).count() > 1
    {
        return Err("at most one IPv4 and one IPv6 address per endpoint".into());
    }
    let cname = match &conf.cname {
        Some(t) => Some(
            Name::parse(t, Some(origin))
                .map_err(|e| format!("cname {t:?}: {e}"))
                .map(|n| crate::dns::name::wire(&n).into_boxed_slice())?,
        ),
        None => None,
    };
    if cname.is_some() && (a.is_some() || aaaa.is_some()) {
        return Err("an endpoint has addresses or a cname, not both".into());
    }
    if cname.is_none() && a.is_none() && aaaa.is_none() {
        return Err("an endpoint needs address, addresses or cname".into());
    }
    Ok(Endpoint {
        id: conf.id.clone(),
        key,
        check,
        group,
        weight: conf.weight,
        a,
        aaaa,
        cname,
    })
}
