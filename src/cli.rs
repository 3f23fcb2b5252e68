//! What the subcommands do, kept out of `main.rs` so that it only parses arguments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config;
use crate::zone::name;

pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn serve(config_path: PathBuf, api_listen: Option<std::net::SocketAddr>) -> ExitCode {
    let mut loaded = match config::load(&config_path) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if let Some(addr) = api_listen {
        if let Err(e) = crate::api::validate(addr, loaded.api.token.as_deref()) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        loaded.api.listen = Some(addr);
    }
    match crate::server::run(config_path, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn check(config_path: &Path) -> ExitCode {
    match config::load(config_path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            for z in loaded.snapshot.zones.zones() {
                println!(
                    "zone {}: serial {}, {} records",
                    name::to_text(z.origin()),
                    z.serial(),
                    z.record_count()
                );
            }
            let routing = &loaded.snapshot.routing;
            for dn in &routing.names {
                println!("{}", failover_line(routing, dn));
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            println!("{} error(s)", errors.len());
            ExitCode::FAILURE
        }
    }
}

/// `meridian explain`: what would be answered to this client, and why.
pub fn explain(config_path: &Path, qname: &str, qtype: &str, client: &str) -> ExitCode {
    match explain_text(config_path, qname, qtype, client) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The explanation as text (also used by tests).
pub fn explain_text(
    config_path: &Path,
    qname: &str,
    qtype: &str,
    client: &str,
) -> Result<String, String> {
    use std::fmt::Write;
    use std::net::IpAddr;
    use std::str::FromStr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RecordType};

    use crate::health::HealthView;
    use crate::routing::{Client, Policy};
    use crate::server::answer::{MAX_MESSAGE, answer_from};
    use crate::zone::Transport;

    let loaded = config::load(config_path).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let snap = loaded.snapshot;
    let name = Name::from_str(qname)
        .map(|mut n| {
            n.set_fqdn(true);
            n
        })
        .map_err(|e| format!("{qname}: {e}"))?;
    let rtype = RecordType::from_str(&qtype.to_ascii_uppercase())
        .map_err(|_| format!("unknown type {qtype}"))?;
    let (addr_text, prefix) = match client.split_once('/') {
        Some((a, p)) => (
            a,
            Some(p.parse::<u8>().map_err(|_| format!("bad prefix {p}"))?),
        ),
        None => (client, None),
    };
    let addr = IpAddr::from_str(addr_text).map_err(|_| format!("bad client address {client}"))?;
    let prefix = prefix.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
    let key = name::wire_lower(&name);
    let live = loaded
        .api
        .listen
        .and_then(|api| live_health(api, loaded.api.token.as_deref(), &snap.routing));
    let health_note = if live.is_some() {
        "live health from the running server"
    } else {
        "server not reachable: health assumed up"
    };
    let health = live.unwrap_or_else(HealthView::all_up);

    let mut out = String::new();
    let _ = writeln!(out, "question: {name} {rtype}");
    let _ = writeln!(
        out,
        "client:   {addr}/{prefix} (sent as EDNS Client Subnet)"
    );
    if let Some(geo) = &snap.routing.geo {
        match geo.lookup(addr) {
            Ok(loc) => {
                let _ = writeln!(
                    out,
                    "location: continent {} country {} subdivision {} city {} asn {} coords {} (network /{})",
                    opt(loc.continent.map(|c| c.to_string())),
                    opt(loc.country.map(|c| c.to_string())),
                    opt(loc.subdivision.map(|c| c.to_string())),
                    opt(loc.city.as_ref().map(|c| c.to_string())),
                    opt(loc.asn.map(|a| format!("AS{a}"))),
                    opt(loc.coords.map(|(a, b)| format!("{a:.2},{b:.2}"))),
                    loc.prefix_len
                );
            }
            Err(e) => {
                let _ = writeln!(out, "location: lookup failed: {e}");
            }
        }
    } else {
        let _ = writeln!(out, "location: no GeoIP database configured");
    }

    let zone = snap.zones.find(&key, u16::from(rtype));
    let dynamic = zone.and_then(|z| z.node(&key)).and_then(|n| n.dynamic);
    match (zone, dynamic) {
        (None, _) => {
            let _ = writeln!(out, "zone:     none of ours (REFUSED)");
        }
        (Some(z), None) => {
            let _ = writeln!(out, "zone:     {} (static data)", name::to_text(z.origin()));
        }
        (Some(z), Some(index)) => {
            let routing = &snap.routing;
            let Some(dn) = routing.names.get(index as usize) else {
                return Err("dynamic name index out of range".into());
            };
            let policy = match &dn.policy {
                Policy::Table { kind, .. } => format!("{kind:?}").to_lowercase(),
                Policy::Failover { .. } => "failover".into(),
                Policy::Weighted { sticky: true, .. } => "weighted (sticky)".into(),
                Policy::Weighted { .. } => "weighted (random)".into(),
            };
            let pool = routing
                .pools
                .get(dn.pool as usize)
                .map_or("?", |p| p.name.as_str());
            let _ = writeln!(
                out,
                "zone:     {} (dynamic name: policy {policy}, pool {pool}, ttl {}, select {:?}, datacenters {})",
                name::to_text(z.origin()),
                dn.ttl,
                dn.select,
                dn.datacenters
            );
            let c = Client {
                source: addr,
                subnet: Some((addr, prefix)),
            };
            let serve = match rtype {
                _ if dn.serves_cname => crate::zone::rtype::CNAME,
                RecordType::AAAA => crate::zone::rtype::AAAA,
                _ => crate::zone::rtype::A,
            };
            let d = routing.decide(dn, &c, serve, &health);
            let _ = writeln!(out, "candidates, in policy order ({health_note}):");
            for (i, &g) in d.candidates().iter().enumerate() {
                let Some(group) = routing.groups.get(g as usize) else {
                    continue;
                };
                let dc = &routing.datacenters[group.datacenter as usize];
                let chosen = if d.groups().contains(&g) {
                    "  <- chosen"
                } else {
                    ""
                };
                let eps: Vec<String> = group
                    .endpoints
                    .clone()
                    .filter_map(|e| routing.endpoints.get(e as usize).map(|ep| (e, ep)))
                    .map(|(e, ep)| {
                        let up = if health.endpoint_up(e as usize) {
                            "up"
                        } else {
                            "down"
                        };
                        format!("{} {up}", ep.id)
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "  {}. {} [{}] {}{chosen}",
                    i + 1,
                    dc.name,
                    if health.group_up(g as usize) {
                        "up"
                    } else {
                        "down"
                    },
                    eps.join(", ")
                );
            }
            if d.all_down {
                let _ = writeln!(out, "all candidates down: {:?}", dn.all_down);
            }
            let _ = writeln!(out, "ecs scope: /{}", d.scope);
        }
    }

    let request = crate::server::wire::build_query(
        0x4d45,
        &key,
        u16::from(rtype),
        true,
        Some((addr, prefix)),
    );
    let mut response = vec![0u8; MAX_MESSAGE];
    let n = answer_from(
        &snap,
        &health,
        &request,
        &mut response,
        Transport::Udp,
        addr,
    )
    .ok_or("no response")?;
    let msg = Message::from_vec(&response[..n]).map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "response: {} aa={}",
        msg.metadata.response_code, msg.metadata.authoritative
    );
    for r in &msg.answers {
        let _ = writeln!(out, "  answer     {r}");
    }
    for r in &msg.authorities {
        let _ = writeln!(out, "  authority  {r}");
    }
    for r in &msg.additionals {
        let _ = writeln!(out, "  additional {r}");
    }
    Ok(out)
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// One dynamic name's worst case from a site's failure to the last cached answer that
/// still points at it: fall × interval + timeout (detection) + TTL (caches).
pub fn failover_line(
    routing: &crate::routing::Routing,
    dn: &crate::routing::DynamicName,
) -> String {
    let owner = name::to_text(&dn.owner);
    let worst = routing
        .pools
        .get(dn.pool as usize)
        .into_iter()
        .flat_map(|p| p.groups.clone())
        .filter_map(|g| routing.groups.get(g as usize))
        .flat_map(|g| g.endpoints.clone())
        .filter_map(|e| routing.endpoints.get(e as usize))
        .filter_map(|e| e.check.and_then(|c| routing.checks.get(c as usize)))
        .max_by_key(|c| c.timing.detection_bound());
    match worst {
        Some(c) => {
            let t = &c.timing;
            let total = t.detection_bound().as_secs_f64() + f64::from(dn.ttl);
            format!(
                "name {owner}: worst-case failover {total:.1} s = fall {} x interval {:.1} s + timeout {:.1} s + TTL {} s",
                t.fall,
                t.interval.as_secs_f64(),
                t.timeout.as_secs_f64(),
                dn.ttl
            )
        }
        None => format!(
            "name {owner}: no health check: answers never fail over (TTL {} s)",
            dn.ttl
        ),
    }
}

/// Health as the running server sees it, from its API's /status (None if unreachable).
fn live_health(
    api: std::net::SocketAddr,
    token: Option<&str>,
    routing: &crate::routing::Routing,
) -> Option<crate::health::HealthView> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_millis(500);
    let mut s = std::net::TcpStream::connect_timeout(&api, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: {api}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let up_by_key = |list: &str| -> std::collections::HashMap<String, bool> {
        v[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["key"].as_str()?.to_string() + "|" + e["pool"].as_str().unwrap_or(""),
                    e["up"].as_bool()?,
                ))
            })
            .collect()
    };
    let endpoints = up_by_key("endpoints");
    let groups = up_by_key("datacenters");
    let endpoint_up = routing
        .endpoints
        .iter()
        .map(|e| {
            endpoints
                .get(&format!("{}|", e.key))
                .copied()
                .unwrap_or(true)
        })
        .collect();
    let group_up = routing
        .groups
        .iter()
        .map(|g| {
            let dc = routing
                .datacenters
                .get(g.datacenter as usize)
                .map_or("", |d| d.key.as_str());
            let pool = routing
                .pools
                .get(g.pool as usize)
                .map_or("", |p| p.name.as_str());
            groups.get(&format!("{dc}|{pool}")).copied().unwrap_or(true)
        })
        .collect();
    Some(crate::health::HealthView::new(endpoint_up, group_up, 0))
}
