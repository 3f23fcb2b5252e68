//! The files' schema: `meridian.toml` as serde reads it, with defaults, and the rules a
//! setting must keep on its own (the API token rule, the query log's numbers).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::transfer;
use crate::geo::GeoFieldPaths;

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
    /// A fleet that shares health votes through etcd; absent: every instance decides alone.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// TSIG keys for zone transfers and NOTIFY (`[tsig_keys] name = { algorithm, secret }`).
    #[serde(default)]
    pub tsig_keys: std::collections::BTreeMap<String, toml::Spanned<transfer::TsigKeyConfig>>,
    /// Zone transfer out, per zone (`[transfer."example.com."]`); off by default.
    #[serde(default)]
    pub transfer: std::collections::BTreeMap<String, toml::Spanned<transfer::TransferConfig>>,
    /// Response rate limiting on UDP (off unless a rate is set).
    #[serde(default)]
    pub rrl: crate::engine::rrl::RrlConfig,
    /// Sampled query log to a file (off unless given).
    #[serde(default)]
    pub query_log: Option<QueryLogConfig>,
    /// DNS Cookies (RFC 7873, RFC 9018 server cookies); on by default.
    #[serde(default)]
    pub cookies: CookiesConfig,
    /// DNSSEC signing (off unless given).
    #[serde(default)]
    pub dnssec: Option<DnssecConfig>,
}

/// `[dnssec]`: which zones are signed, with which keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecConfig {
    /// The BIND key files (`K<zone>.+<alg>+<tag>.key` and `.private`), relative to the
    /// config file. Keep it out of git; a `.private` readable by group or others is refused.
    pub key_dir: PathBuf,
    /// The zones to sign (origins). Every key of the zone in `key_dir` is used as its
    /// timing says: published, active, inactive, deleted.
    #[serde(default)]
    pub zones: Vec<String>,
    /// How long a signature is valid from now (days).
    #[serde(default = "default_signature_lifetime_days")]
    pub signature_lifetime_days: u32,
    /// TTL of the DNSKEY RRset.
    #[serde(default = "default_dnskey_ttl")]
    pub dnskey_ttl: u32,
    /// Algorithm of keys `meridian dnssec keygen` makes: ECDSAP256SHA256 or ED25519.
    #[serde(default = "default_dnssec_algorithm")]
    pub algorithm: String,
    /// Publish CDS and CDNSKEY (RFC 7344, RFC 8078) for the key-signing keys, so that a
    /// parent that reads them updates the DS by itself.
    #[serde(default)]
    pub cds: bool,
    /// How a nonexistent name is proven absent: "nsec" (the chain signed at load: no
    /// signing per query) or "compact" (RFC 9824: one NSEC made and signed per answer,
    /// smaller and no zone walking through NXDOMAIN answers, within `compact_budget`).
    #[serde(default = "default_denial")]
    pub denial: String,
    /// Compact-denial signatures per second and thread; beyond it the chain answers.
    #[serde(default = "default_compact_budget")]
    pub compact_budget: u32,
}

fn default_denial() -> String {
    "nsec".into()
}

fn default_compact_budget() -> u32 {
    2000
}

fn default_signature_lifetime_days() -> u32 {
    14
}

fn default_dnskey_ttl() -> u32 {
    3600
}

fn default_dnssec_algorithm() -> String {
    "ECDSAP256SHA256".into()
}

/// `[cookies]`: DNS Cookies. Every instance behind one anycast address needs the same
/// `secret` so that each accepts the others' cookies; without one, each process picks a
/// random secret at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// 32 hex digits (16 octets).
    #[serde(default)]
    pub secret: Option<String>,
    /// The secret before the last rotation: its cookies are still accepted.
    #[serde(default)]
    pub previous_secret: Option<String>,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secret: None,
            previous_secret: None,
        }
    }
}

impl CookiesConfig {
    /// The secrets to use (`random` when none is configured), or what is wrong with them
    /// (never the secret itself).
    pub fn secrets(
        &self,
        random: [u8; 16],
    ) -> Result<Option<crate::engine::cookies::CookieSecrets>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let parse = |what: &str, hex: &str| -> Result<[u8; 16], String> {
            data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.trim().as_bytes())
                .ok()
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
                .ok_or_else(|| format!("cookies.{what} must be 32 hex digits (16 octets)"))
        };
        let current = match &self.secret {
            Some(s) => parse("secret", s)?,
            None => random,
        };
        let previous = match &self.previous_secret {
            Some(s) => Some(parse("previous_secret", s)?),
            None => None,
        };
        Ok(Some(crate::engine::cookies::CookieSecrets {
            current,
            previous,
        }))
    }
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

#[derive(Debug, Clone, Deserialize)]
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

// By hand: a config without a [geoip] section honours ECS too (CIDR-only geo maps use it).
impl Default for GeoIpConfig {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            fields: None,
            ecs: true,
        }
    }
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
    /// Server identity for NSID (RFC 5001) and `id.server`/`hostname.bind` CH TXT; `{host}`
    /// in it is the host name, so that one config tells a fleet's sites apart.
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
    crate::engine::cache::DEFAULT_SLOTS
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

/// `[query_log]` in meridian.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryLogConfig {
    /// File the lines (or dnstap frames) are appended to (created if missing).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// dnstap only: a Frame Streams unix socket to send to (a collector such as
    /// `fstrm_capture` or `dnstap`), instead of a file.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Log one query in this many, per thread (1 logs every query).
    #[serde(default = "default_sample")]
    pub sample: u32,
    /// "text" (one line of key=value fields), "json" (one object per line) or "dnstap"
    /// (AUTH_QUERY and AUTH_RESPONSE messages in Frame Streams).
    #[serde(default)]
    pub format: QueryLogFormat,
    /// dnstap identity (default: the host name).
    #[serde(default)]
    pub identity: Option<String>,
    /// Records waiting for the writer; beyond this they are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueryLogFormat {
    #[default]
    Text,
    Json,
    Dnstap,
}

fn default_sample() -> u32 {
    100
}

fn default_queue() -> usize {
    4096
}

impl QueryLogConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.sample == 0 {
            return Err("query_log.sample must be at least 1 (1 logs every query)".into());
        }
        if self.queue == 0 {
            return Err("query_log.queue must be at least 1".into());
        }
        match (&self.path, &self.socket, self.format) {
            (Some(_), None, _) => Ok(()),
            (None, Some(_), QueryLogFormat::Dnstap) => Ok(()),
            (None, Some(_), _) => Err(
                "query_log.socket is for format = \"dnstap\"; text and json go to a path".into(),
            ),
            (Some(_), Some(_), _) => Err("query_log: give a path or a socket, not both".into()),
            (None, None, _) => Err("query_log needs a path (or, for dnstap, a socket)".into()),
        }
    }
}

/// `[cluster]`: the etcd cluster the instances share their checks' results through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// etcd client URLs, e.g. "http://10.0.0.1:2379"; tried in turn.
    pub endpoints: Vec<String>,
    /// The fleet's name: instances with the same name share votes (key prefix).
    #[serde(default = "default_cluster_name")]
    pub name: String,
    /// This instance's name, unique in the fleet (default: the host name).
    #[serde(default)]
    pub instance: Option<String>,
    /// Seconds a request to etcd may take (default 1).
    #[serde(default = "default_store_timeout")]
    pub timeout_secs: f64,
    /// What a vote's trip through the store may add to a failover (put and watch delivery),
    /// for the bound `meridian check` prints (default 0.25 s).
    #[serde(default = "default_store_budget")]
    pub store_latency_budget_secs: f64,
    /// Seconds the store may be silent before this instance decides alone (and must answer
    /// again before it rejoins); default: see [`ClusterConfig::fallback_after`].
    #[serde(default)]
    pub fallback_secs: Option<f64>,
    /// For https endpoints: the PEM file of the CA that signed the members' certificates,
    /// then the only one trusted (default: the system's roots). Relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This instance's client certificate and its key (PEM), for etcd's
    /// `--client-cert-auth`. Relative to the config file.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// An etcd user (etcd's `auth enable`), with `password_file`: this instance
    /// authenticates as it and sends its token with every request.
    #[serde(default)]
    pub user: Option<String>,
    /// The file holding `user`'s password (trailing newlines dropped), kept out of the
    /// config file. Relative to the config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// An etcd user and its password, from `[cluster]`'s `user` and `password_file`.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    // The password stays out of logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The contents of a `[cluster]`'s TLS files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTls {
    /// The CA certificate(s) to trust alone.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate followed by its key.
    pub identity_pem: Option<Vec<u8>>,
}

/// The shortest default time the store may be silent before an instance decides alone.
const FALLBACK_FLOOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Two intervals of the fastest check, at least [`FALLBACK_FLOOR`]: the fallback time when
/// none is configured.
fn default_fallback(fastest_interval: std::time::Duration) -> std::time::Duration {
    (fastest_interval * 2).max(FALLBACK_FLOOR)
}

fn default_cluster_name() -> String {
    "meridian".into()
}
fn default_store_timeout() -> f64 {
    1.0
}
fn default_store_budget() -> f64 {
    0.25
}

/// A name usable as one segment of an etcd key.
fn key_segment(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cluster.{what} {s:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

impl ClusterConfig {
    /// This instance's name: as configured, else the host name.
    pub fn instance_name(&self) -> String {
        self.instance.clone().unwrap_or_else(host_name)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.endpoints.is_empty() {
            return Err("cluster.endpoints names no etcd endpoint".into());
        }
        for e in &self.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "cluster.endpoints: {e:?} is not a URL (http://host:2379)"
                ));
            }
        }
        key_segment("name", &self.name)?;
        key_segment("instance", &self.instance_name())?;
        if !(0.01..=60.0).contains(&self.timeout_secs) {
            return Err("cluster.timeout_secs must be between 0.01 and 60".into());
        }
        if !(0.0..=60.0).contains(&self.store_latency_budget_secs) {
            return Err("cluster.store_latency_budget_secs must be between 0 and 60".into());
        }
        if self
            .fallback_secs
            .is_some_and(|f| !(0.5..=600.0).contains(&f))
        {
            return Err("cluster.fallback_secs must be between 0.5 and 600".into());
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("cluster.cert_file and cluster.key_file go together".into());
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Err("cluster.user and cluster.password_file go together".into());
        }
        if self.user.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err("cluster.user is empty".into());
        }
        Ok(())
    }

    /// The TLS and password files' paths, relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let files = [
            &mut self.ca_file,
            &mut self.cert_file,
            &mut self.key_file,
            &mut self.password_file,
        ];
        for p in files.into_iter().flatten() {
            *p = base.join(&*p);
        }
    }

    /// Reads the TLS files, each checked to hold what it should (the client parses them
    /// fully when it is built): an error names the setting and the file.
    pub fn tls(&self) -> Result<ClusterTls, String> {
        const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----";
        let read = |what: &str, path: &PathBuf, marker: &[u8], kind: &str| {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cluster.{what} {}: {e}", path.display()))?;
            if bytes.windows(marker.len()).any(|w| w == marker) {
                Ok(bytes)
            } else {
                Err(format!(
                    "cluster.{what} {}: no PEM {kind} in it",
                    path.display()
                ))
            }
        };
        let ca_pem = match &self.ca_file {
            Some(p) => Some(read("ca_file", p, CERT, "certificate")?),
            None => None,
        };
        let identity_pem = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read("cert_file", cert, CERT, "certificate")?;
                pem.push(b'\n');
                pem.extend(read("key_file", key, b"PRIVATE KEY-----", "private key")?);
                Some(pem)
            }
            _ => None,
        };
        Ok(ClusterTls {
            ca_pem,
            identity_pem,
        })
    }

    /// Reads `password_file`: the login to authenticate with, if `user` is set. An error
    /// names the setting and the file.
    pub fn login(&self) -> Result<Option<Login>, String> {
        let (Some(user), Some(path)) = (&self.user, &self.password_file) else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cluster.password_file {}: {e}", path.display()))?;
        let password = text.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(format!(
                "cluster.password_file {}: no password in it",
                path.display()
            ));
        }
        Ok(Some(Login {
            user: user.clone(),
            password: password.to_string(),
        }))
    }

    /// Why `password_file` should not be readable as it is (by its group or by others, as
    /// ssh says of a private key), for the load's warnings; `None` when it is not, or does
    /// not read (the client's start says why).
    pub fn password_file_exposed(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.password_file.as_ref()?;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "cluster.password_file {}: readable by {} (mode {mode:o}); chmod 600 it",
                path.display(),
                if mode & 0o007 != 0 {
                    "every user"
                } else {
                    "its group"
                },
            )
        })
    }

    /// How long the store may be silent before this instance decides alone, and how long
    /// it must answer again before it rejoins: `fallback_secs` if set, else
    /// `default_fallback` (which rides out the elections of an etcd whose election
    /// timeout is 500 ms; etcd's default of 1 s wants about 3 s).
    pub fn fallback_after(&self, fastest_interval: std::time::Duration) -> std::time::Duration {
        match self.fallback_secs {
            Some(secs) => std::time::Duration::from_secs_f64(secs),
            None => default_fallback(fastest_interval),
        }
    }
}

/// The host name (from the kernel), or "meridian" if it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "meridian".into())
}

/// Refuses a non-loopback API listener without a token (an open admin API is a hijack).
pub fn validate_api(listen: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !listen.ip().is_loopback() && token.is_none_or(str::is_empty) {
        return Err(format!(
            "api.listen {listen} is not a loopback address: set api.token to expose it"
        ));
    }
    Ok(())
}
