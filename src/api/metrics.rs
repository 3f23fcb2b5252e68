//! `/metrics`: Prometheus text, built per scrape from the counters (`stats`), the snapshot's
//! per-zone and per-name counters, the query log, the answer cache, RRL and the monitor.

use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ApiState, SharedApi, authorized, unauthorized};
use crate::engine::{cookies, rrl};
use crate::health::HealthView;
use crate::stats::{QTYPES, STATS};

type Labels = Vec<(String, String)>;

/// Registers a running total, one value per label set.
fn total(name: &str, help: &str, reg: &mut Registry, rows: Vec<(Labels, u64)>) {
    // A single value without labels is a plain metric (no empty `{}` in the output).
    if let [(labels, v)] = &rows[..]
        && labels.is_empty()
    {
        let g = Gauge::<i64>::default();
        g.set(*v as i64);
        reg.register(name, help, g);
        return;
    }
    let fam = Family::<Labels, Gauge>::default();
    for (l, v) in rows {
        fam.get_or_create(&l).set(v as i64);
    }
    reg.register(name, help, fam);
}

/// One label.
fn l(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// Counters are exported as gauges of running totals. The per-zone and per-name ones carry
/// over a reload for zones, names and datacenters that still exist.
fn query_metrics(reg: &mut Registry, state: &ApiState) {
    traffic_metrics(reg);
    data_metrics(reg, state);
    if let Some(q) = state
        .settings
        .load()
        .query_log
        .as_ref()
        .map(|l| l.stats.clone())
    {
        total(
            "query_log_lines_total",
            "Query log lines written",
            reg,
            vec![(Vec::new(), q.written.load(Relaxed))],
        );
        total(
            "query_log_dropped_total",
            "Sampled queries not logged (queue full or write error)",
            reg,
            vec![(Vec::new(), q.dropped.load(Relaxed))],
        );
    }
    let (hits, misses, stores, whole) = crate::engine::cache::totals();
    total(
        "answer_cache_total",
        "UDP answer cache lookups by result (hit, miss), answers stored, and hits answered with \
         the response kept whole for the same query bytes (whole, also counted as hit)",
        reg,
        vec![
            (l("result", "hit"), hits),
            (l("result", "miss"), misses),
            (l("result", "stored"), stores),
            (l("result", "whole"), whole),
        ],
    );
    total(
        "rrl_total",
        "Responses rate limited, by action",
        reg,
        vec![
            (l("action", "dropped"), rrl::DROPPED.load(Relaxed)),
            (l("action", "slipped"), rrl::SLIPPED.load(Relaxed)),
        ],
    );
    total(
        "cookies_total",
        "Queries with a DNS cookie by outcome, and BADCOOKIE responses sent",
        reg,
        vec![
            (
                l("outcome", "client_only"),
                cookies::CLIENT_ONLY.load(Relaxed),
            ),
            (l("outcome", "valid"), cookies::VALID.load(Relaxed)),
            (l("outcome", "invalid"), cookies::INVALID.load(Relaxed)),
            (
                l("outcome", "badcookie_sent"),
                cookies::BADCOOKIE_SENT.load(Relaxed),
            ),
        ],
    );
    {
        use crate::net::notify;
        total(
            "notify_total",
            "NOTIFY messages to secondaries by outcome (answers with a missing or wrong TSIG are ignored)",
            reg,
            vec![
                (
                    l("outcome", "acknowledged"),
                    notify::ACKNOWLEDGED.load(Relaxed),
                ),
                (l("outcome", "error"), notify::REFUSED.load(Relaxed)),
                (
                    l("outcome", "untrusted_answer"),
                    notify::UNTRUSTED.load(Relaxed),
                ),
                (l("outcome", "gave_up"), notify::UNANSWERED.load(Relaxed)),
            ],
        );
    }
}

/// Server-wide counters: transports, rcodes, types, truncation, drops, ECS.
fn traffic_metrics(reg: &mut Registry) {
    total(
        "queries_total",
        "Queries by transport",
        reg,
        vec![
            (l("transport", "udp"), STATS.udp().get()),
            (l("transport", "tcp"), STATS.tcp().get()),
        ],
    );
    total(
        "responses_total",
        "Responses by rcode",
        reg,
        (0..16u16)
            .map(|i| {
                let label =
                    crate::dns::rcode::mnemonic(i).map_or_else(|| i.to_string(), str::to_string);
                (
                    l("rcode", &label),
                    STATS.rcode(usize::from(i)).map_or(0, |c| c.get()),
                )
            })
            .collect(),
    );
    total(
        "queries_by_type_total",
        "Queries by type",
        reg,
        QTYPES
            .iter()
            .map(|(_, n)| *n)
            .chain(std::iter::once("other"))
            .enumerate()
            .map(|(i, n)| (l("qtype", n), STATS.qtype(i).map_or(0, |c| c.get())))
            .collect(),
    );
    total(
        "truncated_total",
        "Responses truncated (TC)",
        reg,
        vec![(Vec::new(), STATS.truncated().get())],
    );
    total(
        "dropped_total",
        "Messages dropped unanswered (no header, or not a query)",
        reg,
        vec![(Vec::new(), STATS.dropped().get())],
    );
    total(
        "ecs_queries_total",
        "Queries with an EDNS Client Subnet option",
        reg,
        vec![(Vec::new(), STATS.ecs().get())],
    );
    total(
        "ecs_scope_sum",
        "Sum of ECS scope prefix lengths returned (divide by ecs_queries_total for the mean)",
        reg,
        vec![(Vec::new(), STATS.ecs_scope_sum().get())],
    );
}

/// Per zone, and per dynamic name and datacenter.
fn data_metrics(reg: &mut Registry, state: &ApiState) {
    let snap = state.snapshot.load();
    total(
        "zone_queries_total",
        "Queries by zone",
        reg,
        snap.zones
            .zones()
            .iter()
            .zip(snap.zone_queries.iter())
            .map(|(z, c)| (l("zone", &crate::dns::name::to_text(z.origin())), c.get()))
            .collect(),
    );
    let mut rows = Vec::new();
    for n in &snap.routing.names {
        let name = crate::dns::name::to_text(&n.owner);
        for (dc, c) in snap.routing.answer_slots(n).zip(n.answers.iter()) {
            rows.push((
                vec![
                    ("name".to_string(), name.clone()),
                    ("datacenter".to_string(), dc.to_string()),
                ],
                c.get(),
            ));
        }
    }
    total(
        "dynamic_answers_total",
        "Dynamic answers by name and the datacenter chosen",
        reg,
        rows,
    );
    dnssec_metrics(reg, &snap, &state.monitor.view());
}

/// Signed zones: signatures made at load and for dynamic answer sets, and the seconds left
/// to the earliest expiry and to the next re-sign or key event.
fn dnssec_metrics(reg: &mut Registry, snap: &crate::engine::Snapshot, view: &HealthView) {
    if snap.signers.is_empty() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let zone = |s: &crate::dnssec::ZoneSigner| l("zone", &crate::dns::name::to_text(&s.origin));
    let secs = |t: u64| t.saturating_sub(now);
    total(
        "dnssec_signatures",
        "Signatures made when the zone was last signed (static data, NSEC chain, DNSKEY)",
        reg,
        snap.signers
            .iter()
            .map(|s| (zone(s), s.signatures as u64))
            .collect(),
    );
    total(
        "dnssec_dynamic_answer_sets",
        "Dynamic answer sets signed for the live health view",
        reg,
        vec![(Vec::new(), view.sigs().len() as u64)],
    );
    total(
        "dnssec_unsigned_answers_total",
        "Dynamic answers sent to DO queries without signatures (their set was not signed ahead)",
        reg,
        vec![(
            Vec::new(),
            crate::stats::DNSSEC_UNSIGNED_ANSWERS.load(std::sync::atomic::Ordering::Relaxed),
        )],
    );
    total(
        "dnssec_expiry_seconds",
        "Seconds until the zone's signatures expire",
        reg,
        snap.signers
            .iter()
            .map(|s| (zone(s), secs(s.window.expiration)))
            .collect(),
    );
    total(
        "dnssec_next_event_seconds",
        "Seconds until the zone is signed again (half the lifetime, or a key event)",
        reg,
        snap.signers
            .iter()
            .map(|s| (zone(s), secs(s.due())))
            .collect(),
    );
}

/// The fleet: the mode, live and ignored votes, the store's latency, votes written.
fn cluster_metrics(
    reg: &mut Registry,
    c: &crate::health::ClusterStatus,
    endpoints: &[crate::health::EndpointStatus],
) {
    total(
        "cluster_mode",
        "1 for the mode this instance decides in: shared (the votes) or local (its own checks)",
        reg,
        vec![
            (l("mode", "shared"), u64::from(c.mode == "shared")),
            (l("mode", "local"), u64::from(c.mode == "local")),
        ],
    );
    let live: usize = endpoints
        .iter()
        .map(|e| e.votes.iter().filter(|v| v.counted).count())
        .sum();
    total(
        "cluster_votes_live",
        "Votes that count, over every endpoint (this instance's own included)",
        reg,
        vec![(Vec::new(), live as u64)],
    );
    total(
        "cluster_votes_ignored",
        "Votes left out for another definition of their check",
        reg,
        vec![(Vec::new(), c.votes_ignored)],
    );
    total(
        "cluster_votes_written_total",
        "Votes this instance wrote to the store",
        reg,
        vec![(Vec::new(), c.votes_written)],
    );
    let latency = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    latency.set(c.store_latency_ms.unwrap_or(0.0) / 1000.0);
    reg.register(
        "cluster_store_latency_seconds",
        "How long the store took to answer the last keepalive",
        latency,
    );
}

pub(super) async fn metrics(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let mut reg = Registry::with_prefix("meridian");
    let endpoint_up = Family::<Labels, Gauge>::default();
    let dc_up = Family::<Labels, Gauge>::default();
    let check_up = Family::<Labels, Gauge>::default();
    let check_latency = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let check_total = Family::<Labels, Gauge>::default();
    let check_failures = Family::<Labels, Gauge>::default();
    reg.register(
        "endpoint_up",
        "1 when the endpoint gets answers (checks and overrides)",
        endpoint_up.clone(),
    );
    reg.register(
        "datacenter_up",
        "1 when the datacenter of a pool gets answers",
        dc_up.clone(),
    );
    reg.register("check_up", "State of each check target", check_up.clone());
    reg.register(
        "check_latency_seconds",
        "Duration of the last probe",
        check_latency.clone(),
    );
    reg.register("check_probes", "Probes run", check_total.clone());
    reg.register(
        "check_failed_probes",
        "Probes failed",
        check_failures.clone(),
    );
    let status = state.monitor.status();
    for e in &status.endpoints {
        endpoint_up
            .get_or_create(&vec![
                ("endpoint".into(), e.key.clone()),
                ("datacenter".into(), e.datacenter.clone()),
            ])
            .set(i64::from(e.up));
    }
    for d in &status.datacenters {
        dc_up
            .get_or_create(&vec![
                ("datacenter".into(), d.key.clone()),
                ("pool".into(), d.pool.clone()),
            ])
            .set(i64::from(d.up));
    }
    for (target, up, latency, checks, failures) in state.monitor.target_metrics() {
        let l = vec![("target".to_string(), target)];
        check_up.get_or_create(&l).set(i64::from(up));
        check_latency.get_or_create(&l).set(latency);
        check_total.get_or_create(&l).set(checks as i64);
        check_failures.get_or_create(&l).set(failures as i64);
    }
    if let Some(c) = &status.cluster {
        cluster_metrics(&mut reg, c, &status.endpoints);
    }
    let reloads = Family::<Labels, Gauge>::default();
    reg.register("reloads", "Reloads by result since start", reloads.clone());
    let stats = &state.reloader.stats;
    reloads
        .get_or_create(&vec![("result".into(), "ok".into())])
        .set(stats.ok.load(Relaxed) as i64);
    reloads
        .get_or_create(&vec![("result".into(), "failed".into())])
        .set(stats.failed.load(Relaxed) as i64);
    let last_ok = Gauge::<i64>::default();
    last_ok.set(i64::from(
        stats.last().ok || stats.ok.load(Relaxed) + stats.failed.load(Relaxed) == 0,
    ));
    reg.register(
        "last_reload_ok",
        "1 when the last reload succeeded (or none ran)",
        last_ok,
    );
    let build = Family::<Labels, Gauge>::default();
    reg.register("build_info", "Version of this build", build.clone());
    build
        .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
        .set(1);
    query_metrics(&mut reg, &state);
    let draining = Gauge::<i64>::default();
    draining.set(i64::from(state.draining.load(Relaxed)));
    reg.register("draining", "1 while the server is drained", draining);
    let mut body = String::new();
    if encode(&mut body, &reg).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
