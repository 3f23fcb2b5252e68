//! Loading: `meridian.toml` and the zone files it names, validated, into an immutable
//! [`Snapshot`] that the query path reads through an atomic pointer swap.
//!
//! Every problem is a [`Diagnostic`] with file, line and reason; loading goes on after an
//! error so that `meridian check` can report all of them in one run.

pub mod dnssec;
pub mod dynamic;
pub mod schema;
pub mod transfer;
pub mod zonefile;

pub use schema::*;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::Name;

pub use zonefile::Diagnostic;

use crate::routing::build::Databases;

use crate::dns::name::{is_subdomain, wire_lower};
use crate::dns::rtype;
use crate::engine::Snapshot;
use crate::geo::{FileStamp, GeoDb, GeoRecipe, GeoSources};
use crate::zone::{Zone, ZoneBuilder, ZoneSet};

/// A loaded configuration: the listener settings and the first snapshot.
#[derive(Debug)]
pub struct Loaded {
    pub server: ServerConfig,
    pub api: ApiConfig,
    pub rrl: crate::engine::rrl::RrlConfig,
    /// The query log, its path resolved against the config file's directory.
    pub query_log: Option<QueryLogConfig>,
    /// Absolute (or config-relative resolved) path of the overrides state file.
    pub state_file: Option<PathBuf>,
    /// The fleet's shared votes, when configured.
    pub cluster: Option<ClusterConfig>,
    pub snapshot: Snapshot,
    pub warnings: Vec<Diagnostic>,
    /// Files and directories whose change should trigger a reload.
    pub watch: Vec<PathBuf>,
    /// Their [`fingerprint`] taken before the zones were read.
    pub watched: u64,
    /// Network tables taken from the serving snapshot (their recipe unchanged), and built.
    pub tables: (usize, usize),
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
    load_with(config_path, true, None)
}

/// [`load`] on a reload: a routing table whose recipe (databases, map, orders) did not
/// change is taken from `serving` instead of walking the GeoIP databases again, and each
/// zone shares with its serving version the parts that did not change.
pub fn reload(config_path: &Path, serving: &Snapshot) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(config_path, true, Some(serving))
}

/// [`load`] for a snapshot that will not serve (`check`, the `explain` command): the same
/// checks and data, without rendering static answers (answers are the same either way).
pub fn load_to_inspect(config_path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(config_path, false, None)
}

/// A zone to load: its origin, master file and dynamic-names file.
type ZoneSource = (Name, PathBuf, Option<PathBuf>);

fn load_with(
    config_path: &Path,
    serving: bool,
    serving_snapshot: Option<&Snapshot>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let previous = serving_snapshot.map(|s| &s.routing);
    let previous_zones = serving_snapshot.map(|s| &s.zones);
    let diag = |line: usize, message: String| Diagnostic {
        file: config_path.to_path_buf(),
        line,
        message,
    };
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| vec![diag(0, format!("cannot read: {e}"))])?;
    let mut file: ConfigFile = toml::from_str(&text).map_err(|e| {
        let line = toml_line(&text, e.span());
        // toml's messages can span lines ("invalid array\nexpected `]`"): keep one line.
        let message = e.message().trim().replace('\n', ": ");
        vec![diag(line, message)]
    })?;
    let base = config_path.parent().unwrap_or_else(|| Path::new("."));
    if let Some(c) = file.cluster.as_mut() {
        c.resolve_paths(base);
    }
    let [mut errors, mut warnings] = settings_diagnostics(&file).map(|list| {
        let diagnostics = list.into_iter().map(|m| diag(0, m));
        diagnostics.collect::<Vec<Diagnostic>>()
    });

    // GeoIP first: dynamic names compile their tables against it.
    let recipe = geo_recipe(&file.geoip, base);
    let geo = open_geoip(&recipe, previous, &mut |m| errors.push(diag(0, m)));
    let databases = match &geo {
        Ok(opened) => Databases::Opened(opened.as_ref()),
        Err(Unchanged) => Databases::Unchanged(recipe.clone()),
    };
    let mut routing = dynamic::RoutingBuilder::new(databases, recipe.identity(), previous);
    let sources = zone_sources(&file, base, &mut errors, &diag);
    let watch = watch_list(config_path, &file, base, &sources);
    // Before the zones are read: a change from here on is seen by the watcher.
    let watched = fingerprint(&watch);
    let signing = file.dnssec.as_ref().map(|d| (d, base.join(&d.key_dir)));
    if let Some((d, _)) = &signing {
        errors.extend(dnssec_errors(d, &sources).map(|m| diag(0, m)));
    }
    let (zones, signers) = load_zones(
        sources,
        previous_zones,
        &mut routing,
        signing.as_ref().map(|(d, dir)| (*d, dir.as_path())),
        &mut errors,
        &mut warnings,
    );
    let zones = ZoneSet::new(zones).unwrap_or_else(|e| {
        errors.push(diag(0, e.to_string()));
        ZoneSet::default()
    });
    let transfer = transfer_settings(&file, &text, &zones, &mut errors, &mut warnings, &diag);
    if !errors.is_empty() {
        return Err(errors);
    }
    let kept = routing.tables.kept;
    let tables = (kept, routing.tables.routing.tables.len() - kept);
    let mut routing = routing.tables.routing;
    // The databases themselves go when `load` returns: the tables hold what queries need.
    routing.geo = (!recipe.is_empty()).then_some(recipe);
    // Answers to plain queries, and to DO queries when some zone is signed.
    let render = |dnssec: bool| {
        let wanted = serving && file.server.prerender && (!dnssec || zones.any_signed());
        render_static(wanted.then_some(&zones), dnssec, serving_snapshot)
    };
    let mut snapshot = Snapshot {
        generation: 0,
        serial: Snapshot::next_serial(),
        initial_health: crate::health::HealthView::all_up(),
        zone_queries: (0..zones.zones().len())
            .map(|_| std::sync::Arc::default())
            .collect(),
        static_answers: render(false),
        static_answers_dnssec: render(true),
        zones,
        routing,
        ecs: file.geoip.ecs,
        identity: file.server.identity.as_ref().map(|s| {
            s.replace("{host}", &schema::host_name())
                .into_bytes()
                .into_boxed_slice()
        }),
        max_udp_payload: file.server.max_udp_payload,
        transfer,
        cookies: file
            .cookies
            .secrets(process_cookie_secret())
            .unwrap_or(None),
        journals: Default::default(),
        signers,
    };
    let all_up = crate::health::HealthView::all_up();
    snapshot.initial_health = dnssec::signed_view(&snapshot, all_up, None);
    Ok(Loaded {
        snapshot,
        server: file.server,
        api: file.api,
        rrl: file.rrl,
        query_log: file.query_log.map(|mut q| {
            q.path = q.path.map(|p| base.join(p));
            q.socket = q.socket.map(|p| base.join(p));
            q
        }),
        state_file: file.health.state_file.map(|p| base.join(p)),
        cluster: file.cluster,
        warnings,
        watch,
        watched,
        tables,
    })
}

/// The static answers of `zones` (none when not wanted), sharing what renders the same with
/// the serving snapshot's on a reload.
fn render_static(
    zones: Option<&ZoneSet>,
    dnssec: bool,
    serving: Option<&Snapshot>,
) -> crate::engine::prerender::StaticAnswers {
    let Some(zones) = zones else {
        return Default::default();
    };
    let previous = serving.map(|s| {
        let answers = match dnssec {
            true => &s.static_answers_dnssec,
            false => &s.static_answers,
        };
        (answers, &s.zones)
    });
    crate::engine::prerender::StaticAnswers::build(zones, dnssec, previous)
}

/// The zone transfer settings (TSIG keys, who may transfer and be notified), their
/// problems added to `errors` and `warnings` with their lines.
fn transfer_settings(
    file: &ConfigFile,
    text: &str,
    zones: &ZoneSet,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
    diag: &dyn Fn(usize, String) -> Diagnostic,
) -> crate::engine::transfer::Transfers {
    let (mut errs, mut warns) = (Vec::new(), Vec::new());
    let line = |span: std::ops::Range<usize>| toml_line(text, Some(span));
    let t = transfer::build(
        &file.tsig_keys,
        &file.transfer,
        zones,
        &line,
        &mut errs,
        &mut warns,
    );
    errors.extend(errs.into_iter().map(|(l, m)| diag(l, m)));
    warnings.extend(warns.into_iter().map(|(l, m)| diag(l, m)));
    t
}

/// The cookie secret of a process without a configured one: random, drawn once, so that
/// a reload keeps the cookies clients hold.
fn process_cookie_secret() -> [u8; 16] {
    static SECRET: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *SECRET.get_or_init(rand::random)
}

/// What the settings alone say, whatever the zones say: errors, then warnings (a password
/// file others may read is said, not refused).
fn settings_diagnostics(file: &ConfigFile) -> [Vec<String>; 2] {
    let exposed = file
        .cluster
        .as_ref()
        .and_then(ClusterConfig::password_file_exposed);
    [settings_errors(file), exposed.into_iter().collect()]
}

/// Settings that are wrong on their own, whatever the zones say.
fn settings_errors(file: &ConfigFile) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(listen) = file.api.listen
        && let Err(e) = validate_api(listen, file.api.token.as_deref())
    {
        errors.push(e);
    }
    if let Err(e) = file.rrl.validate() {
        errors.push(e);
    }
    if let Err(e) = file.cookies.secrets([0; 16]) {
        errors.push(e);
    }
    if let Some(Err(e)) = file.cluster.as_ref().map(ClusterConfig::validate) {
        errors.push(e);
    } else if let Some(Err(e)) = file.cluster.as_ref().map(ClusterConfig::tls) {
        errors.push(e);
    }
    if let Some(Err(e)) = file.query_log.as_ref().map(|q| q.validate()) {
        errors.push(e);
    }
    if file.server.listen.is_empty() {
        errors.push("server.listen names no address".into());
    }
    if file.server.max_udp_payload < 512 {
        errors.push("server.max_udp_payload must be at least 512".into());
    }
    errors
}

/// The GeoIP databases are the files the serving snapshot was built from, unchanged.
struct Unchanged;

/// The configured GeoIP databases, with the stamps their files have before they are read.
fn geo_recipe(config: &GeoIpConfig, base: &Path) -> GeoRecipe {
    let default_fields = config.fields.clone().unwrap_or_default();
    let mut recipe = GeoRecipe::default();
    for db in &config.databases {
        let (path, fields) = match db {
            GeoDbConfig::Path(p) => (p, &default_fields),
            GeoDbConfig::WithFields { path, fields } => (path, fields),
        };
        let path = base.join(path);
        let stamp = FileStamp::of(&path);
        recipe.push(path, fields.clone(), stamp);
    }
    recipe
}

/// Opens the databases of `recipe` (`None` when there is none), unless they are the
/// unchanged files `previous` was built from (`Err`): a reload that keeps every table then
/// reads none of them.
fn open_geoip(
    recipe: &GeoRecipe,
    previous: Option<&crate::routing::Routing>,
    error: &mut dyn FnMut(String),
) -> Result<Option<GeoSources>, Unchanged> {
    let identity = recipe.identity();
    if identity.is_some() && previous.and_then(|p| p.geo.as_ref()?.identity()) == identity {
        return Err(Unchanged);
    }
    let mut dbs = Vec::new();
    for (path, fields) in recipe.files() {
        match GeoDb::open(path, fields) {
            Ok(d) => dbs.push(d),
            Err(e) => error(format!("geoip: {e}")),
        }
    }
    Ok((!dbs.is_empty()).then(|| GeoSources::new(dbs)))
}

/// The zones to load: every `*.zone` in `zones_dir` (named after the file), then the
/// `[[zone]]` entries; each with its `.toml` of dynamic names when there is one.
fn zone_sources(
    file: &ConfigFile,
    base: &Path,
    errors: &mut Vec<Diagnostic>,
    diag: &dyn Fn(usize, String) -> Diagnostic,
) -> Vec<ZoneSource> {
    let mut sources = Vec::new();
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
    sources
}

/// Files and directories whose change should trigger a reload.
fn watch_list(
    config_path: &Path,
    file: &ConfigFile,
    base: &Path,
    sources: &[ZoneSource],
) -> Vec<PathBuf> {
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
    for (_, path, dynamic) in sources {
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
    // A key made, or its timing changed (dnssec-settime), re-signs.
    if let Some(d) = &file.dnssec {
        watch.push(base.join(&d.key_dir));
    }
    watch
}

type ZoneResult = Result<(Zone, Vec<Diagnostic>), (Vec<Diagnostic>, Vec<Diagnostic>)>;

/// Loads (and, where `[dnssec]` says so, signs) every zone; the signers of the signed ones.
fn load_zones(
    sources: Vec<ZoneSource>,
    previous: Option<&ZoneSet>,
    routing: &mut dynamic::RoutingBuilder<'_>,
    signing: Option<(&schema::DnssecConfig, &Path)>,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> (Vec<Zone>, Vec<crate::dnssec::ZoneSigner>) {
    let mut zones = Vec::new();
    let mut signers = Vec::new();
    for (origin, path, dynamic) in sources {
        let sign = signing.filter(|(d, _)| dnssec::signs_zone(d, &origin.to_string()));
        let wire = wire_lower(&origin);
        let serving = previous.and_then(|p| p.by_origin(&wire));
        match load_zone(
            (&origin, serving),
            &path,
            dynamic.as_deref(),
            routing,
            sign,
            &mut signers,
        ) {
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
    (zones, signers)
}

/// `[dnssec] zones` that name no zone served here, and a `denial` we do not know.
fn dnssec_errors<'a>(
    d: &'a schema::DnssecConfig,
    sources: &'a [ZoneSource],
) -> impl Iterator<Item = String> + 'a {
    let denial = (!matches!(d.denial.as_str(), "nsec" | "compact")).then(|| {
        format!(
            "[dnssec] denial = {:?}: use \"nsec\" or \"compact\"",
            d.denial
        )
    });
    d.zones
        .iter()
        .filter(|z| !sources.iter().any(|(o, _, _)| same_zone(o, z)))
        .map(|z| format!("[dnssec] zones: {z} is not a zone served here"))
        .chain(denial)
}

fn same_zone(a: &Name, b: &str) -> bool {
    a.to_string()
        .trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Signs the zone in `builder` with its keys from `key_dir`.
fn sign(
    builder: &mut ZoneBuilder,
    origin: &Name,
    config: &schema::DnssecConfig,
    key_dir: &Path,
    routing: &mut dynamic::RoutingBuilder<'_>,
) -> Result<(crate::dnssec::SignStats, crate::dnssec::ZoneSigner), String> {
    let zone = wire_lower(origin);
    let keys = dnssec::zone_keys(key_dir, &zone, &origin.to_string())?;
    let r = &routing.tables.routing;
    let names = &r.names;
    for dn in names.iter().filter(|n| is_subdomain(&n.owner, &zone)) {
        for (rtype, ttl, rdata) in dnssec::default_answer(r, dn) {
            builder
                .add_transfer_default(&dn.owner, rtype, ttl, &rdata)
                .map_err(|e| format!("{}: {e}", crate::dns::name::to_text(&dn.owner)))?;
        }
    }
    let dynamic_types = |i: u32| {
        let Some(n) = names.get(i as usize) else {
            return Vec::new();
        };
        let mut t = Vec::new();
        for (on, ty) in [
            (n.serves_a, rtype::A),
            (n.serves_aaaa, rtype::AAAA),
            (n.serves_cname, rtype::CNAME),
        ] {
            if on {
                t.push(ty);
            }
        }
        t
    };
    let policy = dnssec::policy(config);
    // Every signing is a new version for secondaries: serial = max(file, Unix time).
    builder.raise_serial(policy.now as u32);
    let stats = crate::dnssec::sign_zone(builder, &keys, &policy, dynamic_types)?;
    let next_key_event = keys
        .iter()
        .filter_map(|k| k.timing.next_event(policy.now))
        .min();
    // The keys that sign data (not only the DNSKEY RRset) sign the dynamic answers too.
    let signs_data: Vec<bool> = keys
        .iter()
        .map(|k| crate::dnssec::sign::key_signs(&keys, k, rtype::A, policy.now))
        .collect();
    let data_keys: Vec<std::sync::Arc<crate::dnssec::SigningKey>> = keys
        .into_iter()
        .zip(signs_data)
        .filter_map(|(k, yes)| yes.then(|| std::sync::Arc::new(k)))
        .collect();
    let negative_ttl = builder.negative_ttl().unwrap_or(0);
    let signer = crate::dnssec::ZoneSigner {
        origin: zone.into_boxed_slice(),
        keys: data_keys,
        window: policy.window(),
        // Well before expiry: at half the lifetime.
        resign_at: policy.now + policy.lifetime / 2,
        next_key_event,
        signatures: stats.signatures,
        compact_budget: (config.denial == "compact").then_some(config.compact_budget),
    };
    for dn in routing.tables.routing.names.iter_mut() {
        // Names of this zone only (another zone's below it are not in this builder).
        if is_subdomain(&dn.owner, &signer.origin)
            && let Some(empty) = empty_nsec(builder, &signer, &dn.owner, negative_ttl)
        {
            dn.empty_nsec = Some(empty);
        }
    }
    Ok((stats, signer))
}

/// A dynamic name's NSEC with no type but RRSIG and NSEC (the chain's next name), signed.
fn empty_nsec(
    builder: &ZoneBuilder,
    signer: &crate::dnssec::ZoneSigner,
    owner: &[u8],
    ttl: u32,
) -> Option<crate::routing::EmptyNsec> {
    let chain = builder.node(owner)?.get(rtype::NSEC)?.rdata.first()?;
    let next_end = crate::dns::name::end_uncompressed(chain, 0)?;
    let mut rdata = chain.get(..next_end)?.to_vec();
    rdata.extend(crate::dnssec::sign::type_bitmap(&[
        rtype::RRSIG,
        rtype::NSEC,
    ]));
    let sigs = signer.sign(owner, (rtype::NSEC, ttl, &[&rdata])).ok()?;
    Some(crate::routing::EmptyNsec {
        rdata: rdata.into_boxed_slice(),
        ttl,
        sigs,
    })
}

/// Loads one master file as the zone `origin`, and its dynamic names when it has them;
/// signs it when `signing` gives the `[dnssec]` section and the key directory.
/// `origin` with the zone it replaces on a reload, if any.
pub fn load_zone(
    (origin, serving): (&Name, Option<&Zone>),
    path: &Path,
    dynamic: Option<&Path>,
    routing: &mut dynamic::RoutingBuilder<'_>,
    signing: Option<(&schema::DnssecConfig, &Path)>,
    signers: &mut Vec<crate::dnssec::ZoneSigner>,
) -> ZoneResult {
    let mut builder = ZoneBuilder::new(wire_lower(origin));
    if let Some(serving) = serving {
        builder.share_with(serving);
    }
    let (mut errors, mut warnings) = zonefile::load_zone_file(path, origin, &mut builder);
    if let Some(d) = dynamic
        && let Err(e) = routing.load_file(d, origin, &mut builder)
    {
        errors.extend(e);
    }
    warnings.extend(routing.take_warnings());
    if errors.is_empty()
        && let Some((config, key_dir)) = signing
    {
        match sign(&mut builder, origin, config, key_dir, routing) {
            Ok((stats, signer)) => {
                signers.push(signer);
                tracing::info!(
                zone = %origin,
                signatures = stats.signatures,
                nsec = stats.nsec,
                dnskeys = stats.dnskeys,
                "signed"
                );
            }
            Err(e) => errors.push(Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                message: format!("dnssec: {e}"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err((errors, warnings));
    }
    match builder.finish() {
        Ok(zone) => Ok((zone, warnings)),
        Err(e) => {
            errors.push(Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                message: e.to_string(),
            });
            Err((errors, warnings))
        }
    }
}

/// Names, sizes and modification times of the watched files, and of the files directly
/// inside watched directories (hidden, backup and temporary files ignored).
pub fn fingerprint(paths: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let stamp = |p: &Path, h: &mut std::collections::hash_map::DefaultHasher| {
        p.hash(h);
        if let Ok(m) = std::fs::metadata(p) {
            m.len().hash(h);
            m.modified().ok().hash(h);
        }
    };
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| e.is_file())
                .filter(|e| {
                    let n = e
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    !(n.starts_with('.')
                        || n.ends_with('~')
                        || n.ends_with(".swp")
                        || n.ends_with(".tmp"))
                })
                .collect();
            entries.sort();
            for e in entries {
                stamp(&e, &mut h);
            }
        } else {
            stamp(p, &mut h);
        }
    }
    h.finish()
}
