//! L3, the engine: one request in, one response out. Screening, the lookup, the answer
//! cache, pre-rendered answers, TSIG-signed answers, RRL decisions and the zone-transfer
//! message iterator, shared by UDP, TCP, `explain`, the benchmarks and the fuzz targets.
//!
//! Its contract, as quinn-proto states its own: no sockets, no clock, no tokio, no random
//! source. Everything that varies comes in as an argument — the request bytes and source,
//! the time (`Request::now`, for TSIG), random bits (`Request::entropy`, for weighted
//! random picks), the snapshot and the health view — so an answer is a function of its
//! inputs and the engine is tested in memory (`tests/it/engine.rs`).
//!
//! ```text
//!  bytes ─► packet cache (UDP: the same bytes answered before) ─► response, unparsed
//!             │ miss
//!             ▼
//!           dns::wire::parse_query ─► screening (class, type, EDNS version)
//!                │ TSIG?                    │
//!                ▼                          ▼
//!           signed.rs ──► plain.rs ─► answer cache ─► pre-rendered ─► zone::resolve
//!                                                                      │ dynamic name
//!                                                                      ▼
//!                                                            routing::Router (geo, health)
//!  response ◄─ dns::wire::Writer (compression, truncation, OPT) ◄──────┘
//! ```

pub mod cache;
mod compact;
pub mod cookies;
pub mod journal;
pub mod packet;
mod plain;
pub mod prerender;
pub mod rrl;
mod signed;
pub mod snapshot;
pub mod transfer;

use std::net::IpAddr;

pub use cache::AnswerCache;
pub use snapshot::{SharedHealth, SharedSnapshot, Snapshot};

use crate::dns::Transport;
use crate::dns::wire::parse_query;
use crate::health::HealthView;
use crate::stats::STATS;

/// Which statistics an answer counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// A query from the network: everything.
    All,
    /// The inner answer of a TSIG-signed query: the outer call counted the transport.
    NotTransport,
    /// Not traffic (`explain`): nothing.
    Nothing,
}

/// One query as it arrived, with everything the answer may depend on besides the data.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The DNS message.
    pub bytes: &'a [u8],
    /// The packet's source address (the client, or its resolver).
    pub source: IpAddr,
    pub transport: Transport,
    /// Seconds since the Unix epoch (TSIG time checks and signatures).
    pub now: u64,
    /// Random bits for weighted random picks; draw new ones per query.
    pub entropy: u64,
    pub counting: Counting,
}

impl<'a> Request<'a> {
    /// A query from the network over `transport`, counted in every statistic.
    pub fn new(bytes: &'a [u8], source: IpAddr, transport: Transport) -> Self {
        Self {
            bytes,
            source,
            transport,
            now: 0,
            entropy: 0,
            counting: Counting::All,
        }
    }

    /// This request at time `now` (Unix seconds).
    pub fn at(self, now: u64) -> Self {
        Self { now, ..self }
    }

    /// This request with `entropy` for its random picks.
    pub fn with_entropy(self, entropy: u64) -> Self {
        Self { entropy, ..self }
    }

    /// This request counted as `counting` says.
    pub fn counted(self, counting: Counting) -> Self {
        Self { counting, ..self }
    }
}

/// Builds the response to `request` in `response` (at least [`crate::dns::MAX_MESSAGE`]
/// bytes for TCP); `None` means send nothing. `cache`: the UDP thread's answer cache, if
/// it has one: a kept answer is copied, a fresh one that may be kept is. Inlined, so each
/// caller's copy has the counting and the cache decided at compile time.
#[inline(always)]
pub fn answer(
    snapshot: &Snapshot,
    health: &HealthView,
    mut cache: Option<&mut AnswerCache>,
    request: &Request<'_>,
    response: &mut [u8],
) -> Option<usize> {
    // Right after a reload the published view may still be the old generation's.
    let health = if health.generation() == snapshot.generation {
        health
    } else {
        &snapshot.initial_health
    };
    if request.counting == Counting::All {
        match request.transport {
            Transport::Udp => STATS.udp().inc(),
            Transport::Tcp => STATS.tcp().inc(),
        }
    }
    // The same bytes as a query answered before from the cache: its response, unparsed.
    let packet_tag = match cache.as_deref_mut() {
        Some(c) if request.transport == Transport::Udp => {
            let tag = packet::PacketCache::tag(request.bytes);
            let now = (snapshot.serial, health.version());
            if let Some(tag) = tag
                && let Some((len, counted, cookie)) =
                    c.replay(request.bytes, tag, request.source, now, response)
                && (cookie == packet::WholeCookie::None
                    || cookies::refresh_replayed(
                        snapshot.cookies.as_ref(),
                        request,
                        cookie,
                        &mut response[..len],
                    ))
            {
                return Some(plain::count_replayed(
                    (len, counted),
                    response,
                    request.counting,
                ));
            }
            tag
        }
        _ => None,
    };
    // Borrowed out of the result rather than moved: the query is ~80 bytes.
    let parsed = parse_query(request.bytes);
    let query = match &parsed {
        Ok(q) => q,
        Err(e) => return plain::reply_to_malformed(e, request, response),
    };
    match query.tsig {
        // Signed (TSIG): verified, answered and signed on a path of its own.
        Some(at) => signed::answer(snapshot, health, request, query, at, response),
        None => plain::answer(
            snapshot, health, cache, packet_tag, request, query, response,
        ),
    }
}
