//! meridian: an authoritative DNS server for global traffic steering.
//!
//! The crate is built in layers: a module uses only the layers below it (and its own
//! room). `tests/it/layers.rs` reads the table below and fails on any `use crate::` that
//! points up, or sideways into another room of the same layer. docs/architecture.md says
//! what each room does and how a query flows through them.
//!
//! | layer | rooms | what they are |
//! |-------|-------|---------------|
//! | L0 | dns, stats, pages, published | the wire vocabulary once (codes, names, parse, write, compress, TSIG); counters; zeroed page mappings; values replaced by one writer and pinned by query threads |
//! | L1 | zone, geo, health | authoritative data and the RFC 1034 lookup; GeoIP and network tables; the health view and check rules (pure) |
//! | L2 | routing, dnssec | policies as functions (client, health view) -> decision; building geo and latency tables; keys (BIND files) and zone signing (DNSKEY, NSEC chain, RRSIGs) |
//! | L3 | engine | one request -> one response: no socket, no clock, no tokio |
//! | L4 | config, explain, diff, coverage | files -> an immutable Snapshot (every problem as file:line: reason); what one client is answered and why; what a config change does to traffic; where each name's answers go by country now |
//! | L5 | net, monitor | the I/O shells: UDP, TCP, transfers, NOTIFY, query log; the health probes and the task that runs them |
//! | L6 | reload | load, swap, reconcile the monitor, notify secondaries |
//! | L7 | api | the HTTP admin API |
//! | L8 | daemon | runtime, binding, signals: wires the shells together |
//! | L9 | cli, probe | the commands: serve, check, explain; probe (a query every interval, each one's fate) |

pub mod dns;
pub mod pages;
pub mod published;
pub mod stats;

pub mod geo;
pub mod health;
pub mod zone;

pub mod dnssec;
pub mod routing;

pub mod engine;

pub mod config;
pub mod coverage;
pub mod diff;
pub mod explain;

pub mod monitor;
pub mod net;

pub mod reload;

pub mod api;

pub mod daemon;

pub mod cli;
pub mod probe;
