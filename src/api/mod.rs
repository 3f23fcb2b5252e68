//! The HTTP admin surface: health for load balancers and BGP speakers, endpoint and
//! datacenter state as JSON, admin overrides, Prometheus metrics, and `explain`.
//!
//! Bound to localhost by default; anywhere else it requires a bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::health::{AdminState, OverrideTarget};
use crate::monitor::Monitor;
use crate::reload::Reloader;

/// What the API handlers share.
pub struct ApiState {
    pub snapshot: crate::engine::SharedSnapshot,
    pub monitor: Monitor,
    pub reloader: Arc<Reloader>,
    pub token: Option<String>,
    /// Set to make /health report down (anycast withdrawal) while still answering DNS.
    pub draining: AtomicBool,
    /// Written and dropped counts of the query log, when it is on.
    pub query_log: Option<Arc<crate::net::querylog::QueryLogStats>>,
}

pub type SharedApi = Arc<ApiState>;

pub fn router(state: SharedApi) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/overrides", get(overrides).post(set_override))
        .route("/drain", post(drain))
        .route("/reload", get(reload_status).post(reload))
        .route("/explain", get(explain))
        .with_state(state)
}

pub async fn serve(listener: tokio::net::TcpListener, state: SharedApi) {
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!("api: {e}");
    }
}

fn authorized(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(token) = state.token.as_deref().filter(|t| !t.is_empty()) else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response()
}

/// 200 while serving, 503 while drained: what an anycast health check should watch.
async fn health(State(state): State<SharedApi>) -> Response {
    if state.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn status(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    axum::Json(state.monitor.status()).into_response()
}

async fn overrides(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    axum::Json(state.monitor.overrides()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideRequest {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    datacenter: Option<String>,
    /// up | down | drain; absent or null clears the override.
    #[serde(default)]
    state: Option<AdminState>,
}

async fn set_override(
    State(state): State<SharedApi>,
    headers: HeaderMap,
    axum::Json(req): axum::Json<OverrideRequest>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let (kind, key) = match (&req.endpoint, &req.datacenter) {
        (Some(k), None) => (OverrideTarget::Endpoint, k),
        (None, Some(k)) => (OverrideTarget::Datacenter, k),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "give exactly one of endpoint or datacenter\n",
            )
                .into_response();
        }
    };
    match state.monitor.set_override(kind, key, req.state) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// Reloads now; 200 with warnings, or 422 with every error (the old data stays live).
async fn reload(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let result = state.reloader.reload("api").await;
    let last = state.reloader.stats.last();
    let code = if result.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, axum::Json(last)).into_response()
}

async fn reload_status(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    axum::Json(state.reloader.stats.last()).into_response()
}

#[derive(Debug, Deserialize)]
struct DrainRequest {
    /// true to drain (health reports down), false to undrain.
    on: bool,
}

async fn drain(
    State(state): State<SharedApi>,
    headers: HeaderMap,
    Query(q): Query<DrainRequest>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    state.draining.store(q.on, Ordering::Relaxed);
    tracing::warn!(draining = q.on, "server drain");
    (StatusCode::OK, "ok\n").into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    name: Option<String>,
    /// Record type; A when absent.
    #[serde(rename = "type")]
    qtype: Option<String>,
    /// ADDR or ADDR/PREFIX, sent as EDNS Client Subnet.
    client: Option<String>,
}

fn bad_request(error: impl Into<String>) -> Response {
    let error: String = error.into();
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

/// What the server would answer this client now, and why, from the live snapshot and
/// health view (the JSON form of `meridian explain`). 400 with `{"error": ...}` for a
/// question it cannot answer: bad client, unknown type, a name outside our zones.
async fn explain(
    State(state): State<SharedApi>,
    headers: HeaderMap,
    query: Result<Query<ExplainRequest>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return bad_request(e.body_text()),
    };
    let Some(name) = q.name.filter(|n| !n.trim().is_empty()) else {
        return bad_request("missing name (e.g. name=www.example.com)");
    };
    let Some(client) = q.client.filter(|c| !c.trim().is_empty()) else {
        return bad_request("missing client (an address, optionally /prefix: client=81.2.69.0/24)");
    };
    let qtype = q.qtype.unwrap_or_else(|| "A".into());
    let question = match crate::explain::Question::parse(&name, &qtype, &client) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let snapshot = state.snapshot.load_full();
    let view = state.monitor.view();
    let status = state.monitor.status();
    // Explaining reopens the GeoIP files (tens of MB): off the async workers.
    let question_name = question.name.clone();
    let explained = tokio::task::spawn_blocking(move || {
        crate::explain::explain(&snapshot, &view, Some(&status), &question)
    })
    .await
    .unwrap_or_else(|e| Err(format!("explain task failed: {e}")));
    match explained {
        Ok(e) if e.zone.is_none() => {
            bad_request(format!("{question_name} is not in any zone served here"))
        }
        Ok(e) => axum::Json(e).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "error": e })),
        )
            .into_response(),
    }
}

type Labels = Vec<(String, String)>;

/// Counters are exported as gauges of running totals. The per-zone and per-name ones carry
/// over a reload for zones, names and datacenters that still exist.
fn query_metrics(reg: &mut Registry, state: &ApiState) {
    use crate::engine::rrl;
    use crate::stats::{QTYPES, STATS};
    let total = |name: &str, help: &str, reg: &mut Registry, rows: Vec<(Labels, u64)>| {
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
    };
    let l = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    total(
        "queries_total",
        "Queries by transport",
        reg,
        vec![
            (l("transport", "udp"), STATS.udp().get()),
            (l("transport", "tcp"), STATS.tcp().get()),
        ],
    );
    const RCODES: [&str; 16] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "11", "12", "13", "14", "15",
    ];
    total(
        "responses_total",
        "Responses by rcode",
        reg,
        RCODES
            .iter()
            .enumerate()
            .map(|(i, n)| (l("rcode", n), STATS.rcode(i).map_or(0, |c| c.get())))
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
    if let Some(q) = &state.query_log {
        total(
            "query_log_lines_total",
            "Query log lines written",
            reg,
            vec![(Vec::new(), q.written.load(Ordering::Relaxed))],
        );
        total(
            "query_log_dropped_total",
            "Sampled queries not logged (queue full or write error)",
            reg,
            vec![(Vec::new(), q.dropped.load(Ordering::Relaxed))],
        );
    }
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
    let (hits, misses, stores) = crate::engine::cache::totals();
    total(
        "answer_cache_total",
        "UDP answer cache lookups by result (hit, miss), and answers stored",
        reg,
        vec![
            (l("result", "hit"), hits),
            (l("result", "miss"), misses),
            (l("result", "stored"), stores),
        ],
    );
    use std::sync::atomic::Ordering::Relaxed;
    total(
        "rrl_total",
        "Responses rate limited, by action",
        reg,
        vec![
            (l("action", "dropped"), rrl::DROPPED.load(Relaxed)),
            (l("action", "slipped"), rrl::SLIPPED.load(Relaxed)),
        ],
    );
}

async fn metrics(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
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
    let reloads = Family::<Labels, Gauge>::default();
    reg.register("reloads", "Reloads by result since start", reloads.clone());
    let stats = &state.reloader.stats;
    reloads
        .get_or_create(&vec![("result".into(), "ok".into())])
        .set(stats.ok.load(Ordering::Relaxed) as i64);
    reloads
        .get_or_create(&vec![("result".into(), "failed".into())])
        .set(stats.failed.load(Ordering::Relaxed) as i64);
    let last_ok = Gauge::<i64>::default();
    last_ok.set(i64::from(
        stats.last().ok
            || stats.ok.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed) == 0,
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
    draining.set(i64::from(state.draining.load(Ordering::Relaxed)));
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
