//! The HTTP admin surface: a live status page, health for load balancers and BGP speakers,
//! endpoint and datacenter state as JSON, admin overrides, Prometheus metrics, and `explain`.
//!
//! Bound to localhost by default; anywhere else it requires a bearer token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

mod metrics;
mod page;

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
    /// `[rrl]` and `[query_log]` as the last reload left them.
    pub settings: crate::net::settings::SharedSettings,
    /// The status page's census of the live snapshot.
    pub census: page::CensusCache,
}

pub type SharedApi = Arc<ApiState>;

pub fn router(state: SharedApi) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/status/map", get(page::map))
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(metrics::metrics))
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
        Err(e) => return bad_request(e.to_string()),
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
    .map_err(|e| format!("explain task failed: {e}"))
    .and_then(|r| r.map_err(|e| e.to_string()));
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
