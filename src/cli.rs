//! What the subcommands do, kept out of `main.rs` so that it only parses arguments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config;
use crate::dns::name;

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

/// Serves `config_path`; `listen` (when not empty) replaces `[server] listen`, `api_listen`
/// the API's address.
pub fn serve(
    config_path: PathBuf,
    listen: Vec<std::net::SocketAddr>,
    api_listen: Option<std::net::SocketAddr>,
) -> ExitCode {
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
        if let Err(e) = crate::config::validate_api(addr, loaded.api.token.as_deref()) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        loaded.api.listen = Some(addr);
    }
    if !listen.is_empty() {
        loaded.server.listen = listen;
    }
    match crate::daemon::run(config_path, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn check(config_path: &Path) -> ExitCode {
    match config::load_to_inspect(config_path) {
        Ok(loaded) => {
            if let Some(e) = cluster_client_error(loaded.cluster.as_ref()) {
                println!("error: {}: {e}", config_path.display());
                println!("1 error(s)");
                std::mem::forget(loaded);
                return ExitCode::FAILURE;
            }
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            for z in loaded.snapshot.zones.zones() {
                println!(
                    "zone {}: serial {}, {} records{}",
                    name::to_text(z.origin()),
                    z.serial(),
                    z.record_count(),
                    if z.is_signed() { ", signed" } else { "" }
                );
                for w in config::dnssec::check_warnings(z, unix_now()) {
                    println!("warning: {w}");
                }
            }
            let routing = &loaded.snapshot.routing;
            for dn in &routing.names {
                println!("{}", failover_line(routing, dn));
                if let Some(c) = &loaded.cluster {
                    for line in cluster_failover_lines(routing, dn, c) {
                        println!("  {line}");
                    }
                }
            }
            println!("ok");
            // The process ends here: freeing a big zone name by name would take a third
            // as long as loading it.
            std::mem::forget(loaded);
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

/// Why the etcd client of `[cluster]` cannot be built (its TLS files read, but not usable:
/// a certificate or key that does not parse), as the server would find at start.
fn cluster_client_error(cluster: Option<&crate::config::ClusterConfig>) -> Option<String> {
    let error = crate::monitor::cluster::client(cluster?).err()?;
    Some(format!("cluster: {error}"))
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

/// Why `meridian explain` could not explain.
#[derive(Debug, thiserror::Error)]
pub enum ExplainCommandError {
    /// Every diagnostic of the configuration, one per line.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Question(#[from] crate::explain::QuestionError),
    #[error(transparent)]
    Explain(#[from] crate::explain::ExplainError),
}

/// The explanation as text (also used by tests): the shared [`crate::explain`] against the
/// configuration's files, with the running server's health when its API answers.
pub fn explain_text(
    config_path: &Path,
    qname: &str,
    qtype: &str,
    client: &str,
) -> Result<String, ExplainCommandError> {
    use crate::health::HealthView;

    let loaded = config::load_to_inspect(config_path).map_err(|errors| {
        ExplainCommandError::Config(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let snap = loaded.snapshot;
    let question = crate::explain::Question::parse(qname, qtype, client)?;
    let live = loaded
        .api
        .listen
        .and_then(|api| live_status(api, loaded.api.token.as_deref()));
    let health = match &live {
        Some(status) => health_from_status(&snap, status),
        None => HealthView::all_up(),
    };
    // A signed zone's dynamic answers carry their signatures, as the server's would.
    let health = config::dnssec::signed_view(&snap, health, None);
    let e = crate::explain::explain(&snap, &health, live.as_ref(), &question)?;
    Ok(render_explanation(&e))
}

/// `meridian explain`'s text form of an explanation.
pub fn render_explanation(e: &crate::explain::Explanation) -> String {
    use std::fmt::Write;

    use crate::explain::{HealthSource, State};

    let mut out = String::new();
    let _ = writeln!(out, "question: {} {}", e.name, e.qtype);
    let _ = writeln!(out, "client:   {} (sent as EDNS Client Subnet)", e.client);
    match (&e.location, &e.location_note) {
        (Some(loc), _) => {
            let coords = loc
                .latitude
                .zip(loc.longitude)
                .map(|(a, b)| format!("{a:.2},{b:.2}"));
            let _ = writeln!(
                out,
                "location: continent {} country {} subdivision {} city {} asn {} coords {} (network /{})",
                opt(loc.continent.clone()),
                opt(loc.country.clone()),
                opt(loc.subdivision.clone()),
                opt(loc.city.clone()),
                opt(loc.asn.map(|a| format!("AS{a}"))),
                opt(coords),
                loc.network_prefix
            );
        }
        (None, note) => {
            let _ = writeln!(out, "location: {}", note.as_deref().unwrap_or("unknown"));
        }
    }
    if let Some(d) = &e.dnssec {
        let _ = writeln!(out, "dnssec:   {d}");
    }
    match (&e.zone, &e.dynamic) {
        (None, _) => {
            let _ = writeln!(out, "zone:     none of ours (REFUSED)");
        }
        (Some(z), None) => {
            let _ = writeln!(out, "zone:     {z} (static data)");
        }
        (Some(z), Some(d)) => {
            let policy = match d.sticky {
                Some(true) => format!("{} (sticky)", d.policy),
                Some(false) => format!("{} (random)", d.policy),
                None => d.policy.clone(),
            };
            let select = match (d.select.as_str(), d.count) {
                ("first", Some(n)) => format!("First({n})"),
                ("all", _) => "All".into(),
                ("weighted", _) => "Weighted".into(),
                (other, _) => other.to_string(),
            };
            let _ = writeln!(
                out,
                "zone:     {z} (dynamic name: policy {policy}, pool {}, ttl {}, select {select}, datacenters {})",
                d.pool, d.ttl, d.datacenters
            );
            if !d.serves_type {
                let _ = writeln!(out, "type {} not served by this name: NODATA", e.qtype);
            } else {
                let note = match e.health {
                    HealthSource::Live => "live health from the running server",
                    HealthSource::AssumedUp => "server not reachable: health assumed up",
                };
                let _ = writeln!(out, "candidates, in policy order ({note}):");
                for (i, c) in d.candidates.iter().enumerate() {
                    let eps: Vec<String> = c
                        .endpoints
                        .iter()
                        .map(|ep| match (&ep.reason, ep.state) {
                            (Some(r), State::Down | State::Drained) => {
                                format!("{} {} ({r})", ep.id, ep.state.as_str())
                            }
                            _ => format!("{} {}", ep.id, ep.state.as_str()),
                        })
                        .collect();
                    let why = match (&c.reason, c.state) {
                        (Some(r), State::Down | State::Drained) => format!(" ({r})"),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        out,
                        "  {}. {} [{}]{why} {}{}",
                        i + 1,
                        c.datacenter,
                        c.state.as_str(),
                        eps.join(", "),
                        if c.chosen { "  <- chosen" } else { "" }
                    );
                }
                if d.all_candidates_down {
                    let _ = writeln!(out, "all candidates down: {}", d.all_down);
                }
                let _ = writeln!(out, "ecs scope: /{}", d.scope);
            }
        }
    }
    let _ = writeln!(
        out,
        "response: {} aa={}",
        crate::explain::rcode_description(&e.rcode),
        e.authoritative
    );
    for r in &e.answers {
        let _ = writeln!(out, "  answer     {r}");
    }
    for r in &e.authority {
        let _ = writeln!(out, "  authority  {r}");
    }
    for r in &e.additional {
        let _ = writeln!(out, "  additional {r}");
    }
    out
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
    match routing.worst_check(dn) {
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

/// With a `[cluster]`: the bound when the votes decide (a vote's trip through the store
/// added), and when the store is gone (the instance notices after the fallback time, and
/// decides alone).
pub fn cluster_failover_lines(
    routing: &crate::routing::Routing,
    dn: &crate::routing::DynamicName,
    cluster: &crate::config::ClusterConfig,
) -> Vec<String> {
    let (Some(pool), Some(c)) = (routing.pools.get(dn.pool as usize), routing.worst_check(dn))
    else {
        return Vec::new();
    };
    let detect = c.timing.detection_bound().as_secs_f64();
    let ttl = f64::from(dn.ttl);
    let budget = cluster.store_latency_budget_secs;
    let fallback = cluster
        .fallback_after(routing.fastest_interval())
        .as_secs_f64();
    vec![
        format!(
            "with the store ({}): {:.1} s = detection {detect:.1} s + store {budget:.2} s + TTL {} s",
            pool.votes.describe(),
            detect + budget + ttl,
            dn.ttl
        ),
        format!(
            "store gone: {:.1} s = max(detection {detect:.1} s, fallback {fallback:.1} s) + TTL {} s",
            detect.max(fallback) + ttl,
            dn.ttl
        ),
    ]
}

/// The running server's /status (None if unreachable or not understood), within half a
/// second.
fn live_status(api: std::net::SocketAddr, token: Option<&str>) -> Option<crate::health::Status> {
    let timeout = std::time::Duration::from_millis(500);
    // reqwest's client carries a TLS configuration even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .ok()?;
    let mut request = client.get(format!("http://{api}/status"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let response = request.send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.bytes().await.ok()?;
        serde_json::from_slice(&body).ok()
    })
}

/// The health view for `snap` from a server's status, matched by key (the server's own
/// snapshot may order endpoints differently); what the status does not name counts as up.
fn health_from_status(
    snap: &crate::engine::Snapshot,
    status: &crate::health::Status,
) -> crate::health::HealthView {
    use std::collections::HashMap;
    let routing = &snap.routing;
    let endpoints: HashMap<&str, bool> = status
        .endpoints
        .iter()
        .map(|e| (e.key.as_str(), e.up))
        .collect();
    let groups: HashMap<(&str, &str), bool> = status
        .datacenters
        .iter()
        .map(|d| ((d.key.as_str(), d.pool.as_str()), d.up))
        .collect();
    let endpoint_up = routing
        .endpoints
        .iter()
        .map(|e| endpoints.get(e.key.as_str()).copied().unwrap_or(true))
        .collect();
    let group_up = routing
        .groups
        .iter()
        .map(|g| {
            let key = (routing.datacenter_key(g), routing.pool_name(g));
            groups.get(&key).copied().unwrap_or(true)
        })
        .collect();
    crate::health::HealthView::new(endpoint_up, group_up, snap.generation)
}

/// `meridian diff`: OLD against NEW, or NEW at git revision `rev` against NEW.
pub fn diff(old: Option<&Path>, new: &Path, rev: Option<&str>, markdown: bool) -> ExitCode {
    let checkout;
    let old_path = match (old, rev) {
        (Some(o), None) => o.to_path_buf(),
        (None, Some(rev)) => match git_checkout(new, rev) {
            Ok((dir, path)) => {
                checkout = dir;
                let _ = &checkout;
                path
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("error: give OLD and NEW configurations, or --rev REV and NEW");
            return ExitCode::FAILURE;
        }
    };
    let load = |p: &Path| {
        config::load_to_inspect(p).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("error: {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let (before, after) = match (load(&old_path), load(new)) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let geo = after
        .snapshot
        .routing
        .geo
        .as_ref()
        .and_then(|r| r.open().ok())
        .map(|(g, _)| g);
    let d = crate::diff::diff(&before.snapshot, &after.snapshot, geo.as_ref());
    print!("{}", crate::diff::render(&d, markdown));
    ExitCode::SUCCESS
}

/// A temporary copy of the git repository holding `config` at `rev` (`git archive`), and
/// the config's path inside it. The directory is removed when the guard drops.
fn git_checkout(config: &Path, rev: &str) -> Result<(TempCheckout, PathBuf), String> {
    use std::process::{Command, Stdio};
    let config = std::fs::canonicalize(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let dir = config.parent().unwrap_or_else(|| Path::new("."));
    let top = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !top.status.success() {
        return Err(format!("{} is not in a git repository", config.display()));
    }
    let top = PathBuf::from(String::from_utf8_lossy(&top.stdout).trim());
    let rel = config
        .strip_prefix(&top)
        .map_err(|_| "the config is outside its repository".to_string())?
        .to_path_buf();
    let tmp = std::env::temp_dir().join(format!("meridian-diff-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let guard = TempCheckout(tmp.clone());
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git archive: {e}"))?;
    let stdout = archive.stdout.take().ok_or("git archive: no output")?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&tmp)
        .stdin(stdout)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    let archived = archive
        .wait_with_output()
        .map_err(|e| format!("git archive: {e}"))?;
    if !archived.status.success() || !untar.success() {
        return Err(format!(
            "git archive {rev}: {}",
            String::from_utf8_lossy(&archived.stderr).trim()
        ));
    }
    Ok((guard, tmp.join(rel)))
}

/// Removes a temporary checkout when dropped.
struct TempCheckout(PathBuf);

impl Drop for TempCheckout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `[dnssec]` section of a config (read without loading the zones).
fn dnssec_section(config_path: &Path) -> Result<(config::schema::DnssecConfig, PathBuf), String> {
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let file: config::schema::ConfigFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", config_path.display(), e.message()))?;
    let d = file.dnssec.ok_or_else(|| {
        format!(
            "{}: no [dnssec] section (it names key_dir and the zones to sign)",
            config_path.display()
        )
    })?;
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    let dir = base.join(&d.key_dir);
    Ok((d, dir))
}

fn zone_wire(zone: &str) -> Result<(Vec<u8>, String), String> {
    let text = format!("{}.", zone.trim_end_matches('.').to_ascii_lowercase());
    let n = hickory_proto::rr::Name::from_ascii(&text).map_err(|e| format!("{zone}: {e}"))?;
    Ok((name::wire_lower(&n), text))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `meridian dnssec keygen ZONE`: a new key in the key directory (a CSK unless `zsk`),
/// the private file readable by its owner only.
pub fn dnssec_keygen(
    config_path: &Path,
    zone: &str,
    algorithm: Option<&str>,
    zsk: bool,
) -> ExitCode {
    let run = || -> Result<String, String> {
        let (d, dir) = dnssec_section(config_path)?;
        let (wire, text) = zone_wire(zone)?;
        let alg = config::dnssec::algorithm_number(algorithm.unwrap_or(&d.algorithm))?;
        let (key, secret) = crate::dnssec::SigningKey::generate(&wire, alg, !zsk, unix_now())
            .map_err(|e| e.to_string())?;
        let stem = config::dnssec::write_key(&dir, &key, &secret)?;
        Ok(format!(
            "{} ({} key {} for {text}, algorithm {})",
            stem.display(),
            if key.sep() { "CSK/KSK" } else { "ZSK" },
            key.tag,
            key.algorithm
        ))
    };
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `meridian dnssec ds ZONE`: the DS records (SHA-256) of the zone's published key-signing
/// keys, for the registrar.
pub fn dnssec_ds(config_path: &Path, zone: &str) -> ExitCode {
    let run = || -> Result<Vec<String>, String> {
        let (_, dir) = dnssec_section(config_path)?;
        let (wire, text) = zone_wire(zone)?;
        let keys = config::dnssec::zone_keys(&dir, &wire, &text)?;
        let now = unix_now();
        Ok(keys
            .iter()
            .filter(|k| k.sep() && k.timing.delete.is_none_or(|t| now < t))
            .map(|k| {
                let ds = crate::dnssec::key::ds_rdata(&wire, &k.dnskey());
                let hex = data_encoding::HEXUPPER.encode(ds.get(4..).unwrap_or_default());
                format!("{text} IN DS {} {} 2 {hex}", k.tag, k.algorithm)
            })
            .collect())
    };
    match run() {
        Ok(lines) if !lines.is_empty() => {
            lines.iter().for_each(|l| println!("{l}"));
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("error: {zone} has no key-signing key (flags 257)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn key_state(t: &crate::dnssec::Timing, now: u64) -> &'static str {
    if t.delete.is_some_and(|d| d <= now) {
        "deleted"
    } else if t.active(now) {
        "active"
    } else if t.inactive.is_some_and(|i| i <= now) {
        "retired (published, not signing)"
    } else if t.published(now) {
        "published (not yet signing)"
    } else {
        "created (not yet published)"
    }
}

/// `meridian dnssec status`: every key of every signed zone with its state and next event,
/// and when the signatures made now would expire.
pub fn dnssec_status(config_path: &Path) -> ExitCode {
    let run = || -> Result<(), String> {
        let (d, dir) = dnssec_section(config_path)?;
        let now = unix_now();
        let expiry = now + u64::from(d.signature_lifetime_days.max(1)) * 86_400;
        for zone in &d.zones {
            let (wire, text) = zone_wire(zone)?;
            println!("zone {text}");
            let keys = config::dnssec::zone_keys(&dir, &wire, &text)?;
            for k in &keys {
                let next = k.timing.next_event(now).map_or("none".to_string(), |t| {
                    format!("{} (in {} s)", crate::dnssec::key::format_time(t), t - now)
                });
                println!(
                    "  key {} alg {} flags {} ({}): {}; next event {next}",
                    k.tag,
                    k.algorithm,
                    k.flags,
                    if k.sep() { "KSK/CSK" } else { "ZSK" },
                    key_state(&k.timing, now)
                );
            }
            let active = keys.iter().filter(|k| k.timing.active(now)).count();
            if active == 0 {
                println!("  warning: no active key: the zone cannot be signed");
            }
            println!(
                "  signatures made now expire {} (lifetime {} days; a reload re-signs)",
                crate::dnssec::key::format_time(expiry),
                d.signature_lifetime_days
            );
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
