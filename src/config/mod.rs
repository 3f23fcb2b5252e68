//! Loading: `meridian.toml` and the zone files it names, validated, into an immutable
//! [`Snapshot`] that the query path reads through an atomic pointer swap.
//!
//! Every problem is a [`Diagnostic`] with file, line and reason; loading goes on after an
//! error so that `meridian check` can report all of them in one run.

pub mod dynamic;
pub mod transfer;
pub mod zonefile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::Name;
use serde::Deserialize;

pub use zonefile::Diagnostic;

use crate::geo::{FileStamp, GeoDb, GeoFieldPaths, GeoRecipe, GeoSources};
use crate::routing::Routing;
use crate::server::stats::Counter;
use crate::zone::name::wire_lower;
use crate::zone::{Zone, ZoneBuilder, ZoneSet};

/// Largest UDP payload we advertise and send (the DNS flag day 2020 value).
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;

/// `meridian.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerConfig,
    /// A directory whose `*.zone` files are zones named after the file (`example.com.zone`).
    #[serde(default)]
    pub zones_dir: Option<PathBuf>,
    /// Zones listed one by one.
    #[serde(default, rename = "zone")]
    pub zones: Vec<ZoneConfig>,
    /// GeoIP databases for geo, nearest and latency policies.
    #[serde(default)]
    pub geoip: GeoIpConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub health: HealthConfig,
    /// TSIG keys for zone transfers and NOTIFY (`[tsig_keys] name = { algorithm, secret }`).
    #[serde(default)]
    pub tsig_keys: std::collections::BTreeMap<String, toml::Spanned<transfer::TsigKeyConfig>>,
    /// Zone transfer out, per zone (`[transfer."example.com."]`); off by default.
    #[serde(default)]
    pub transfer: std::collections::BTreeMap<String, toml::Spanned<transfer::TransferConfig>>,
    /// Response rate limiting on UDP (off unless a rate is set).
    #[serde(default)]
    pub rrl: crate::server::rrl::RrlConfig,
    /// Sampled query log to a file (off unless given).
    #[serde(default)]
    pub query_log: Option<crate::server::querylog::QueryLogConfig>,
}

/// The HTTP admin API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Where it listens; anything but loopback needs `token`. Absent: no API.
    #[serde(default = "default_api_listen")]
    pub listen: Option<SocketAddr>,
    /// Bearer token required on every call but /health.
    #[serde(default)]
    pub token: Option<String>,
}

fn default_api_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8053)))
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Where admin overrides are kept across restarts (relative to this file).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// MaxMind DB files (City, Country, ASN), merged field by field, first one first.
    #[serde(default)]
    pub databases: Vec<GeoDbConfig>,
    /// Where the fields live in the records, for all databases that don't say otherwise
    /// (defaults: MaxMind's GeoIP2 layout, which DB-IP uses too).
    #[serde(default)]
    pub fields: Option<GeoFieldPaths>,
    /// Honour EDNS Client Subnet (RFC 7871) server-wide; names can opt out too.
    #[serde(default = "yes")]
    pub ecs: bool,
}

fn yes() -> bool {
    true
}

/// A database path, or a path with its own field paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GeoDbConfig {
    Path(PathBuf),
    WithFields {
        path: PathBuf,
        fields: GeoFieldPaths,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to answer on, UDP and TCP both.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// Server identity for NSID (RFC 5001) and `id.server`/`hostname.bind` CH TXT.
    #[serde(default)]
    pub identity: Option<String>,
    /// UDP receive threads per listen address; 0 means one per CPU core.
    #[serde(default)]
    pub udp_threads: usize,
    /// Largest UDP response, also advertised in our OPT record.
    #[serde(default = "default_udp_payload")]
    pub max_udp_payload: u16,
    /// Seconds a TCP connection may stay idle between queries (RFC 7766 §6.2.3).
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout_secs: u64,
    /// Seconds a query (or its answer) may take on the wire once begun: slow clients lose.
    #[serde(default = "default_tcp_query")]
    pub tcp_query_timeout_secs: u64,
    /// Open TCP connections, in total and per client address.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: usize,
    #[serde(default = "default_tcp_per_client")]
    pub tcp_max_per_client: usize,
    /// Seconds to let open TCP connections finish on shutdown.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// Render static names' answers at load (server::prerender): faster answers for
    /// about 50 bytes per record; off answers every query the general way.
    #[serde(default = "default_true")]
    pub prerender: bool,
    /// Answers each UDP thread keeps (server::answer_cache), 0 for none; read at start.
    #[serde(default = "default_answer_cache")]
    pub answer_cache: usize,
}

fn default_answer_cache() -> usize {
    crate::server::answer_cache::DEFAULT_SLOTS
}

fn default_true() -> bool {
    true
}

fn default_tcp_query() -> u64 {
    5
}
fn default_tcp_max() -> usize {
    4096
}
fn default_tcp_per_client() -> usize {
    64
}
fn default_shutdown_grace() -> u64 {
    5
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([127, 0, 0, 1], 5353))]
}
fn default_udp_payload() -> u16 {
    DEFAULT_UDP_PAYLOAD
}
fn default_tcp_idle() -> u64 {
    10
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            identity: None,
            udp_threads: 0,
            max_udp_payload: DEFAULT_UDP_PAYLOAD,
            tcp_idle_timeout_secs: default_tcp_idle(),
            tcp_query_timeout_secs: default_tcp_query(),
            tcp_max_connections: default_tcp_max(),
            tcp_max_per_client: default_tcp_per_client(),
            shutdown_grace_secs: default_shutdown_grace(),
            prerender: true,
            answer_cache: default_answer_cache(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    /// The zone's apex, e.g. `example.com.`
    pub origin: String,
    /// Its RFC 1035 master file, relative to the config file.
    pub file: PathBuf,
    /// Its dynamic names (TOML); default: the master file's name with `.toml`, if present.
    #[serde(default)]
    pub dynamic: Option<PathBuf>,
}

/// The next [`Snapshot::serial`].
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Everything the query path needs, frozen. Swapped whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every reload; health views name the generation they were built for.
    pub generation: u64,
    /// Different for every snapshot loaded in this process (answer caches key on it: two
    /// snapshots may share a generation, never a serial).
    pub serial: u64,
    /// Health as known when this snapshot went live, used until the monitor publishes a
    /// view for this generation.
    pub initial_health: crate::health::HealthView,
    pub zones: ZoneSet,
    /// Responses to static names, rendered from `zones` at load (see server::prerender).
    pub static_answers: crate::server::prerender::StaticAnswers,
    /// Queries per zone, by zone index (they restart with each reload).
    /// Shared with the snapshot before a reload when the zone is still served, so the
    /// totals run on across reloads.
    pub zone_queries: Box<[std::sync::Arc<Counter>]>,
    pub routing: Routing,
    /// Use ECS addresses to locate clients.
    pub ecs: bool,
    /// Identity as TXT RDATA-ready bytes (NSID payload).
    pub identity: Option<Box<[u8]>>,
    pub max_udp_payload: u16,
    /// Who may transfer which zone (AXFR/IXFR), TSIG keys, NOTIFY targets.
    pub transfer: transfer::Transfers,
}

impl Snapshot {
    /// Takes over `old`'s per-zone and per-name counters wherever the zone, or the name and
    /// datacenter, is still there: a reload does not restart them.
    pub fn adopt_counters(&mut self, old: &Snapshot) {
        for (z, slot) in self.zones.zones().iter().zip(self.zone_queries.iter_mut()) {
            let prev = old
                .zones
                .zones()
                .iter()
                .position(|p| p.origin() == z.origin());
            if let Some(c) = prev.and_then(|i| old.zone_queries.get(i)) {
                *slot = c.clone();
            }
        }
        let mut by_name: std::collections::HashMap<(&[u8], &str), &std::sync::Arc<Counter>> =
            std::collections::HashMap::new();
        for n in &old.routing.names {
            for (dc, c) in old.routing.answer_slots(n).zip(n.answers.iter()) {
                by_name.insert((&n.owner[..], dc), c);
            }
        }
        let routing = &self.routing;
        let mut adopted: Vec<(usize, usize, std::sync::Arc<Counter>)> = Vec::new();
        for (ni, n) in routing.names.iter().enumerate() {
            for (si, dc) in routing.answer_slots(n).enumerate() {
                if let Some(c) = by_name.get(&(&n.owner[..], dc)) {
                    adopted.push((ni, si, (*c).clone()));
                }
            }
        }
        for (ni, si, c) in adopted {
            if let Some(slot) = self
                .routing
                .names
                .get_mut(ni)
                .and_then(|n| n.answers.get_mut(si))
            {
                *slot = c;
            }
        }
    }
}

/// A loaded configuration: the listener settings and the first snapshot.
#[derive(Debug)]
pub struct Loaded {
    pub server: ServerConfig,
    pub api: ApiConfig,
    pub rrl: crate::server::rrl::RrlConfig,
    /// The query log, its path resolved against the config file's directory.
    pub query_log: Option<crate::server::querylog::QueryLogConfig>,
    /// Absolute (or config-relative resolved) path of the overrides state file.
    pub state_file: Option<PathBuf>,
    pub snapshot: Snapshot,
    pub warnings: Vec<Diagnostic>,
    /// Files and directories whose change should trigger a reload.
    pub watch: Vec<PathBuf>,
}

/// The 1-based line where a TOML error's span starts (0 when it has none).
fn toml_line(text: &str, span: Option<std::ops::Range<usize>>) -> usize {
    // Counting newlines, not `lines()`: a span at the very start of a line is on that line.
    span.map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    })
    .unwrap_or(0)
}

/// Reads and validates the config file and every zone. Returns all errors found.
pub fn load(config_path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(config_path, true)
}

/// [`load`] for a snapshot that will not serve (`check`, the `explain` command): the same
/// checks and data, without rendering static answers (answers are the same either way).
pub fn load_to_inspect(config_path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(config_path, false)
}

fn load_with(config_path: &Path, serving: bool) -> Result<Loaded, Vec<Diagnostic>> {
    let diag = |line: usize, message: String| Diagnostic {
        file: config_path.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| vec![diag(0, format!("cannot read: {e}"))])?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| {
        let line = toml_line(&text, e.span());
        // toml's messages can span lines ("invalid array\nexpected `]`"): keep one line.
        let message = e.message().trim().replace('\n', ": ");
        vec![diag(line, message)]
    })?;
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    if let Some(listen) = file.api.listen
        && let Err(e) = crate::api::validate(listen, file.api.token.as_deref())
    {
        errors.push(diag(0, e));
    }
    if let Err(e) = file.rrl.validate() {
        errors.push(diag(0, e));
    }
    if let Some(Err(e)) = file.query_log.as_ref().map(|q| q.validate()) {
        errors.push(diag(0, e));
    }
    if file.server.listen.is_empty() {
        errors.push(diag(0, "server.listen names no address".into()));
    }
    if file.server.max_udp_payload < 512 {
        errors.push(diag(
            0,
            "server.max_udp_payload must be at least 512".into(),
        ));
    }

    // GeoIP first: dynamic names compile their tables against it.
    let default_fields = file.geoip.fields.clone().unwrap_or_default();
    let mut dbs = Vec::new();
    let mut recipe = GeoRecipe::default();
    for db in &file.geoip.databases {
        let (path, fields) = match db {
            GeoDbConfig::Path(p) => (p, &default_fields),
            GeoDbConfig::WithFields { path, fields } => (path, fields),
        };
        let path = base.join(path);
        let stamp = FileStamp::of(&path);
        match GeoDb::open(&path, fields) {
            Ok(d) => {
                dbs.push(d);
                recipe.push(path, fields.clone(), stamp);
            }
            Err(e) => errors.push(diag(0, format!("geoip: {e}"))),
        }
    }
    let geo = (!dbs.is_empty()).then(|| GeoSources::new(dbs));
    let mut routing = dynamic::RoutingBuilder::new(geo.as_ref());

    let mut sources: Vec<(Name, PathBuf, Option<PathBuf>)> = Vec::new();
    if let Some(dir) = &file.zones_dir {
        let dir = base.join(dir);
        match std::fs::read_dir(&dir) {
            Ok(rd) => {
                let mut paths: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "zone"))
                    .collect();
                paths.sort();
                for p in paths {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match Name::from_str(&format!("{}.", stem.trim_end_matches('.'))) {
                        Ok(origin) => {
                            let dynamic = p.with_extension("toml");
                            let dynamic = dynamic.is_file().then_some(dynamic);
                            sources.push((origin, p, dynamic))
                        }
                        Err(e) => errors.push(Diagnostic {
                            file: p.clone(),
                            line: 0,
                            message: format!("file name is not a zone name: {e}"),
                        }),
                    }
                }
            }
            Err(e) => errors.push(diag(
                0,
                format!("zones_dir {}: cannot read: {e}", dir.display()),
            )),
        }
    }
    for z in &file.zones {
        match Name::parse(&z.origin, Some(&Name::root())) {
            Ok(origin) => {
                let file = base.join(&z.file);
                let dynamic = match &z.dynamic {
                    Some(d) => Some(base.join(d)),
                    None => {
                        let d = file.with_extension("toml");
                        d.is_file().then_some(d)
                    }
                };
                sources.push((origin, file, dynamic))
            }
            Err(e) => errors.push(diag(0, format!("zone origin {:?}: {e}", z.origin))),
        }
    }

    let mut watch: Vec<PathBuf> = vec![config_path.to_path_buf()];
    if let Some(dir) = &file.zones_dir {
        watch.push(base.join(dir));
    }
    for db in &file.geoip.databases {
        watch.push(base.join(match db {
            GeoDbConfig::Path(p) => p,
            GeoDbConfig::WithFields { path, .. } => path,
        }));
    }
    for (_, path, dynamic) in &sources {
        // The zone's directory also holds its includes, nets files and latency tables.
        for p in std::iter::once(path).chain(dynamic.iter()) {
            let dir = p
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            if !watch.contains(&dir) {
                watch.push(dir);
            }
        }
    }
    if let Some(p) = &file.health.state_file {
        watch.push(base.join(p));
    }
    let mut zones: Vec<Zone> = Vec::new();
    for (origin, path, dynamic) in sources {
        match load_zone(&origin, &path, dynamic.as_deref(), &mut routing) {
            Ok((zone, w)) => {
                warnings.extend(w);
                zones.push(zone);
            }
            Err((e, w)) => {
                errors.extend(e);
                warnings.extend(w);
            }
        }
    }
    let zones = match ZoneSet::new(zones) {
        Ok(z) => z,
        Err(e) => {
            errors.push(diag(0, e));
            ZoneSet::default()
        }
    };
    let transfer = {
        let (mut errs, mut warns) = (Vec::new(), Vec::new());
        let line = |span: std::ops::Range<usize>| toml_line(&text, Some(span));
        let t = transfer::build(
            &file.tsig_keys,
            &file.transfer,
            &zones,
            &line,
            &mut errs,
            &mut warns,
        );
        errors.extend(errs.into_iter().map(|(l, m)| diag(l, m)));
        warnings.extend(warns.into_iter().map(|(l, m)| diag(l, m)));
        t
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let identity = file
        .server
        .identity
        .as_ref()
        .map(|s| s.as_bytes().to_vec().into_boxed_slice());
    Ok(Loaded {
        snapshot: Snapshot {
            generation: 0,
            serial: NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            initial_health: crate::health::HealthView::all_up(),
            zone_queries: (0..zones.zones().len())
                .map(|_| std::sync::Arc::default())
                .collect(),
            static_answers: if serving && file.server.prerender {
                crate::server::prerender::StaticAnswers::build(&zones)
            } else {
                Default::default()
            },
            zones,
            routing: {
                // The databases themselves go when `load` returns: the tables hold what
                // queries need.
                let mut r = routing.routing;
                r.geo = geo.is_some().then_some(recipe);
                r
            },
            ecs: file.geoip.ecs,
            identity,
            max_udp_payload: file.server.max_udp_payload,
            transfer,
        },
        server: file.server,
        api: file.api,
        rrl: file.rrl,
        query_log: file.query_log.map(|mut q| {
            q.path = base.join(&q.path);
            q
        }),
        state_file: file.health.state_file.map(|p| base.join(p)),
        warnings,
        watch,
    })
}

type ZoneResult = Result<(Zone, Vec<Diagnostic>), (Vec<Diagnostic>, Vec<Diagnostic>)>;

/// Loads one master file as the zone `origin`, and its dynamic names when it has them.
pub fn load_zone(
    origin: &Name,
    path: &Path,
    dynamic: Option<&Path>,
    routing: &mut dynamic::RoutingBuilder<'_>,
) -> ZoneResult {
    let mut builder = ZoneBuilder::new(wire_lower(origin));
    let (mut errors, mut warnings) = zonefile::load_zone_file(path, origin, &mut builder);
    if let Some(d) = dynamic
        && let Err(e) = routing.load_file(d, origin, &mut builder)
    {
        errors.extend(e);
    }
    warnings.extend(routing.take_warnings());
    if !errors.is_empty() {
        return Err((errors, warnings));
    }
    match builder.finish() {
        Ok(zone) => Ok((zone, warnings)),
        Err(message) => {
            errors.push(Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                message,
            });
            Err((errors, warnings))
        }
    }
}
