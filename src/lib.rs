//! meridian: an authoritative DNS server for global traffic steering.
//!
//! The rooms (see docs/architecture.md): `config` loads files into an immutable snapshot,
//! `zone` holds authoritative data and answers RFC 1034 lookups, `geo` locates clients,
//! `routing` picks answers for dynamic names, `health` runs checks, `server` speaks the wire
//! protocol, `api` is the HTTP admin surface, `explain` says what one client would be
//! answered and why (for the CLI and the API).

pub mod api;
pub mod cli;
pub mod config;
pub mod explain;
pub mod geo;
pub mod health;
pub mod routing;
pub mod server;
pub mod zone;
