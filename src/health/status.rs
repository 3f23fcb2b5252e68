//! What the monitor knows, as data: admin overrides and every endpoint's and datacenter's
//! state with its reason, for the API, `explain` and the CLI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An operator's word on an endpoint or datacenter, above what checks say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Counts as up whatever the checks say.
    Up,
    /// Counts as down.
    Down,
    /// No new answers, but still checked (for maintenance).
    Drain,
}

/// Overrides by key: endpoints as `zone/pool/id`, datacenters as `zone/datacenter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub endpoints: BTreeMap<String, AdminState>,
    #[serde(default)]
    pub datacenters: BTreeMap<String, AdminState>,
}

/// One endpoint's health, for the API and `explain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub key: String,
    pub datacenter: String,
    pub up: bool,
    pub admin: Option<AdminState>,
    pub check: Option<String>,
    pub check_up: Option<bool>,
    pub last_result: Option<String>,
    pub last_latency_ms: Option<f64>,
    pub checks: u64,
    pub failures: u64,
    pub since_secs: Option<u64>,
    /// How `up` was decided before overrides: "no check", "own check" or "votes".
    #[serde(default)]
    pub decided_by: String,
    /// With a cluster: this instance's vote and every other instance's, and whether each
    /// counted (votes on another definition of the check do not).
    #[serde(default)]
    pub votes: Vec<VoteStatus>,
    /// Seconds since `up` last changed (or since the monitor started).
    #[serde(default)]
    pub state_secs: Option<u64>,
}

/// One instance's vote on an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoteStatus {
    pub instance: String,
    pub up: bool,
    pub counted: bool,
    pub reason: String,
    /// The round trip of the probe behind the vote, in milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}

/// The fleet as this instance sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub instance: String,
    /// "shared": deciding by the votes; "local": by this instance's checks alone.
    pub mode: String,
    /// Milliseconds since the store last answered (none: never).
    pub store_answered_ms_ago: Option<u64>,
    pub store_latency_ms: Option<f64>,
    /// How long the store may be silent before this instance decides alone.
    #[serde(default)]
    pub fallback_ms: u64,
    /// Votes this instance wrote since it started.
    pub votes_written: u64,
    /// The other instances with live votes.
    pub instances: Vec<String>,
    /// Votes left out for another definition of their check, over every endpoint.
    pub votes_ignored: u64,
    /// Why the last session with the store failed (a refused login, no endpoint
    /// answering), until the store answers again.
    #[serde(default)]
    pub store_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatacenterStatus {
    pub key: String,
    pub pool: String,
    pub up: bool,
    pub admin: Option<AdminState>,
    pub endpoints_up: usize,
    pub endpoints: usize,
    pub up_share: f64,
    /// Seconds since `up` last changed (or since the monitor started).
    #[serde(default)]
    pub state_secs: Option<u64>,
}

/// A change of an endpoint's or a datacenter's effective state (after votes and overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// "endpoint" or "datacenter".
    pub kind: String,
    pub key: String,
    pub up: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub endpoints: Vec<EndpointStatus>,
    pub datacenters: Vec<DatacenterStatus>,
    #[serde(default)]
    pub cluster: Option<ClusterStatus>,
    /// The last changes of state, oldest first (a bounded number).
    #[serde(default)]
    pub changes: Vec<StateChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideTarget {
    Endpoint,
    Datacenter,
}
