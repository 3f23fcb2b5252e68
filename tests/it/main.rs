//! Every integration test, in one binary (one link, one copy of `common`): a module per
//! area. They start the real `meridian` binary or use the library's public API; fixtures
//! shared by several modules live in `tests/data/`.

mod common;

mod alltypes;
mod answer_cache;
mod anycast;
mod authoritative;
mod check;
mod cookies;
mod deb;
mod diff;
mod differential;
mod dnssec;
mod dnssec_resolver;
mod dnstap;
mod engine;
mod etcd;
mod etcd_auth;
mod etcd_cluster;
mod explain_api;
mod gdnsd_compare;
mod geo_routing;
mod geo_tables;
mod geode_sim;
mod grafana;
mod health;
mod layers;
mod lookup;
mod probe;
mod query_log;
mod quorum;
mod reload;
mod robustness;
mod rrl;
mod static_answers;
mod status_page;
mod tcp;
#[cfg(target_os = "linux")]
mod tcp_many;
mod xfr;
