//! Health checks end to end: real targets on 127.0.0.0/8 (HTTP, HTTPS, TCP, DNS, exec,
//! file), the real server, answers over UDP and state over the admin API.
//!
//! Timing is asserted as logic, never as speed: a target must leave the answer (polled with
//! a generous deadline) and must not leave before the thresholds allow it. Each check's
//! interval carries ±10% jitter, so the lower bounds use 0.9 × interval.
//!
//! `targets` has the test backends; `failover` the timing of fall and rise, flapping and
//! what is answered when everything is down; `check_types` every kind of check; `overrides`
//! the admin API (overrides, state file, metrics, drain, token); `check_command` what
//! `meridian check` says about health checks.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::Value;

mod check_command;
mod check_types;
mod failover;
mod overrides;
mod targets;

/// How long any wait for the health state may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

/// Starts meridian on `example.com` with `dynamic` as its dynamic names, `files` written
/// relative to the config directory, and `extra_config` appended to the config.
fn start(dynamic: &str, files: &[(&str, &str)], extra_config: &str) -> Server {
    let mut all: Vec<(&str, &[u8])> = vec![
        ("zones/example.com.zone", zones::HEALTH.as_bytes()),
        ("zones/example.com.toml", dynamic.as_bytes()),
    ];
    all.extend(files.iter().map(|(file, text)| (*file, text.as_bytes())));
    Server::start_files(&all, 1, extra_config)
}

fn get(s: &Server, path: &str) -> (u16, String) {
    http_get(s.api.expect("server has an API"), path)
}

fn post(s: &Server, path: &str, body: &str) -> (u16, String) {
    http_post(s.api.expect("server has an API"), path, body)
}

fn status(s: &Server) -> Value {
    let (code, body) = get(s, "/status");
    assert_eq!(code, 200, "/status: {body}");
    serde_json::from_str(&body).expect("/status is JSON")
}

/// One endpoint's entry in /status, by key (`example.com/pool/id`).
fn endpoint(status: &Value, key: &str) -> Value {
    status["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["key"] == key)
        .unwrap_or_else(|| panic!("{key} not in /status: {status}"))
        .clone()
}

fn ask(s: &Server, name: &str) -> Message {
    s.udp(name, RecordType::A)
}

/// The answer's record data (addresses or CNAME targets), sorted.
fn values(m: &Message) -> BTreeSet<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

fn addrs(s: &Server, name: &str) -> BTreeSet<String> {
    values(&ask(s, name))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Waits until every key in `keys` has had at least `n` probes.
fn wait_checks(s: &Server, keys: &[&str], n: u64) {
    wait_until(&format!("{n} probes of {keys:?}"), DEADLINE, || {
        let st = status(s);
        keys.iter()
            .all(|k| endpoint(&st, k)["checks"].as_u64().unwrap_or(0) >= n)
    });
}
