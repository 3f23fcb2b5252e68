//! The live status page at `/` and the data it polls at `/status/map`: every datacenter and
//! endpoint with its state, the last changes, and per dynamic name where answers go now on
//! a world map. Everything is embedded in the binary; nothing is fetched from elsewhere.
//!
//! A browser cannot send a bearer header when it opens a page, so where the API wants a
//! token the page also takes it as `?token=` and sends it on as a header from then on.

use std::sync::{Arc, LazyLock, Weak};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{SharedApi, authorized, constant_time_eq, unauthorized};
use crate::coverage::{Census, NameCoverage};
use crate::engine::Snapshot;

const PAGE_HTML: &str = include_str!("page.html");
const WORLD_SVG: &str = include_str!("world.svg");

/// The page with the map inlined, made once.
static PAGE: LazyLock<String> = LazyLock::new(|| PAGE_HTML.replace("<!--WORLD-->", WORLD_SVG));

/// The census of the live snapshot, kept until the snapshot changes. The `Weak` keeps the
/// old snapshot's address from being reused while it is compared.
#[derive(Default)]
pub struct CensusCache {
    slot: tokio::sync::Mutex<Option<(Weak<Snapshot>, SharedCensus)>>,
}

/// A census, or why the databases could not be read.
type SharedCensus = Arc<Result<Census, String>>;

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    token: Option<String>,
}

fn query_token_ok(state: &super::ApiState, given: Option<&str>) -> bool {
    match (state.token.as_deref().filter(|t| !t.is_empty()), given) {
        (None, _) => true,
        (Some(token), Some(given)) => constant_time_eq(given.as_bytes(), token.as_bytes()),
        (Some(_), None) => false,
    }
}

pub(super) async fn page(
    State(state): State<SharedApi>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    if !authorized(&state, &headers) && !query_token_ok(&state, q.token.as_deref()) {
        return unauthorized();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Everything is inline; nothing may load from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:",
            ),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct MapData {
    identity: Option<String>,
    draining: bool,
    generation: u64,
    /// Unix milliseconds when this was computed.
    now_ms: u64,
    names: Vec<NameCoverage>,
    /// IPv4 addresses the GeoIP databases place in a country.
    located_v4: u64,
    /// Why the map is empty, when the databases could not be read.
    census_error: Option<String>,
}

async fn census_for(state: &super::ApiState, snap: &Arc<Snapshot>) -> SharedCensus {
    let mut slot = state.census.slot.lock().await;
    if let Some((weak, census)) = slot.as_ref()
        && std::ptr::eq(weak.as_ptr(), Arc::as_ptr(snap))
    {
        return census.clone();
    }
    let for_task = snap.clone();
    // A city-sized database takes seconds to walk: off the async workers.
    let built = tokio::task::spawn_blocking(move || {
        let census = crate::coverage::census(&for_task.routing).map_err(|e| e.to_string());
        // The walk's scratch (a country table of the whole database) goes back to the system.
        crate::reload::release_free_memory();
        census
    })
    .await
    .unwrap_or_else(|e| Err(format!("census task failed: {e}")));
    let census = Arc::new(built);
    *slot = Some((Arc::downgrade(snap), census.clone()));
    census
}

pub(super) async fn map(State(state): State<SharedApi>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let snap = state.snapshot.load_full();
    let census = census_for(&state, &snap).await;
    let view = state.monitor.view();
    let empty = Census::default();
    let (c, census_error) = match census.as_ref() {
        Ok(c) => (c, None),
        Err(e) => (&empty, Some(e.clone())),
    };
    let data = MapData {
        identity: snap
            .identity
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        draining: state.draining.load(std::sync::atomic::Ordering::Relaxed),
        generation: snap.generation,
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        names: crate::coverage::coverage(c, &snap.routing, &view),
        located_v4: c.located,
        census_error,
    };
    axum::Json(data).into_response()
}
