//! Admin overrides (persisted in the state file, shown in metrics, refused when they cannot
//! be saved), drain, and the API token.

use super::*;

const OVERRIDE_NAMES: &str = r#"
[datacenters]
one = {}
two = {}

[pools.web]
endpoints = [
  { id = "o1", datacenter = "one", address = "127.0.0.81" },
  { id = "o2", datacenter = "one", address = "127.0.0.82" },
  { id = "o3", datacenter = "two", address = "127.0.0.83" },
]

[names.www]
pool = "web"
policy = "failover"
order = ["one", "two"]
datacenters = 2
all_down = "nodata"
"#;

/// The value of the `meridian_endpoint_up` sample for `key`.
fn endpoint_up_metric(metrics: &str, key: &str) -> Option<i64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("meridian_endpoint_up{"))
        .find(|l| l.contains(&format!("endpoint=\"{key}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn overrides_persist_across_restart_and_show_in_metrics() {
    let mut s = start(
        OVERRIDE_NAMES,
        &[],
        "[health]\nstate_file = \"state.toml\"\n",
    );
    let www = "www.example.com.";
    let all = set(&["127.0.0.81", "127.0.0.82", "127.0.0.83"]);
    assert_eq!(addrs(&s, www), all);
    // The second answer comes from the UDP thread's answer cache: each override below
    // must make it stale at once.
    assert_eq!(addrs(&s, www), all);
    let api = s.api.expect("api");
    let hits = metric(api, "meridian_answer_cache_total{result=\"hit\"}");
    assert!(
        hits >= 1,
        "no answer cache hit after two same queries: {hits}"
    );

    // down removes it.
    set_override(&s, r#"{"endpoint": "example.com/web/o1", "state": "down"}"#);
    assert_eq!(addrs(&s, www), set(&["127.0.0.82", "127.0.0.83"]));
    let e = endpoint(&status(&s), "example.com/web/o1");
    assert_eq!(
        (e["up"].clone(), e["admin"].clone()),
        (Value::Bool(false), Value::from("down"))
    );

    // drain too.
    set_override(
        &s,
        r#"{"endpoint": "example.com/web/o2", "state": "drain"}"#,
    );
    assert_eq!(addrs(&s, www), set(&["127.0.0.83"]));
    assert_eq!(
        endpoint(&status(&s), "example.com/web/o2")["admin"],
        "drain"
    );

    // null clears.
    set_override(&s, r#"{"endpoint": "example.com/web/o2", "state": null}"#);
    assert_eq!(addrs(&s, www), set(&["127.0.0.82", "127.0.0.83"]));
    assert_eq!(
        endpoint(&status(&s), "example.com/web/o2")["admin"],
        Value::Null
    );

    // A datacenter override.
    set_override(&s, r#"{"datacenter": "example.com/two", "state": "down"}"#);
    assert_eq!(addrs(&s, www), set(&["127.0.0.82"]));
    let st = status(&s);
    let two = st["datacenters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "example.com/two")
        .expect("datacenter two")
        .clone();
    assert_eq!(
        (two["up"].clone(), two["admin"].clone()),
        (Value::Bool(false), Value::from("down"))
    );

    // Mistakes are refused and change nothing.
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/nope", "state": "down"}"#,
    );
    assert_eq!(code, 400);
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o3", "state": "sideways"}"#,
    );
    assert!((400..500).contains(&code), "bad state: {code}");
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o3", "datacenter": "example.com/two", "state": "down"}"#,
    );
    assert_eq!(code, 400);
    assert_eq!(addrs(&s, www), set(&["127.0.0.82"]));

    let (code, body) = get(&s, "/overrides");
    assert_eq!(code, 200);
    let o: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(o["endpoints"]["example.com/web/o1"], "down", "{o}");
    assert_eq!(o["datacenters"]["example.com/two"], "down", "{o}");

    // Metrics follow.
    let (code, metrics) = get(&s, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        endpoint_up_metric(&metrics, "example.com/web/o1"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        endpoint_up_metric(&metrics, "example.com/web/o2"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        endpoint_up_metric(&metrics, "example.com/web/o3"),
        Some(1),
        "{metrics}"
    );
    assert!(metrics.contains("meridian_datacenter_up{"), "{metrics}");

    // /health and drain.
    assert_eq!(get(&s, "/health").0, 200);
    assert_eq!(post(&s, "/drain?on=true", "").0, 200);
    assert_eq!(get(&s, "/health").0, 503);
    assert!(get(&s, "/metrics").1.contains("meridian_draining 1"));
    assert_eq!(
        addrs(&s, www),
        set(&["127.0.0.82"]),
        "drained still answers DNS"
    );
    assert_eq!(post(&s, "/drain?on=false", "").0, 200);
    assert_eq!(get(&s, "/health").0, 200);

    // The state file keeps the overrides across a restart.
    let state = std::fs::read_to_string(s.dir.path().join("state.toml")).expect("state file");
    assert!(state.contains("example.com/web/o1"), "{state}");
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().expect("temp dir"));
    let config = s.config.clone();
    drop(s);
    let s2 = Server::start_with_config(dir, config);
    assert_eq!(addrs(&s2, www), set(&["127.0.0.82"]));
    let e = endpoint(&status(&s2), "example.com/web/o1");
    assert_eq!(e["admin"], "down", "{e}");
    // Clearing after the restart works and is saved too.
    set_override(&s2, r#"{"endpoint": "example.com/web/o1", "state": null}"#);
    set_override(&s2, r#"{"datacenter": "example.com/two", "state": null}"#);
    assert_eq!(addrs(&s2, www), all);
    let state = std::fs::read_to_string(s2.dir.path().join("state.toml")).expect("state file");
    assert!(!state.contains("o1") && !state.contains("two"), "{state}");
}

#[test]
fn override_that_cannot_be_saved_changes_nothing() {
    let s = start(
        OVERRIDE_NAMES,
        &[],
        "[health]\nstate_file = \"no/such/dir/state.toml\"\n",
    );
    let all = set(&["127.0.0.81", "127.0.0.82", "127.0.0.83"]);
    let (code, body) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o1", "state": "down"}"#,
    );
    assert_ne!(code, 200, "{body}");
    let (_, body) = get(&s, "/overrides");
    let o: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        o["endpoints"],
        serde_json::json!({}),
        "not kept in memory: {o}"
    );
    assert_eq!(
        endpoint(&status(&s), "example.com/web/o1")["admin"],
        Value::Null
    );
    assert_eq!(addrs(&s, "www.example.com."), all);
}

// ---------------------------------------------------------------------------------------
// API token
// ---------------------------------------------------------------------------------------

#[test]
fn api_token_is_required_when_configured() {
    let s = start(OVERRIDE_NAMES, &[], "[api]\ntoken = \"s3cret\"\n");
    let api = s.api.expect("api");
    let call = |method: &str, path: &str, body: &str, token: Option<&str>| {
        http_request(api, method, path, body, token).0
    };
    assert_eq!(call("GET", "/status", "", None), 401);
    assert_eq!(call("GET", "/status", "", Some("wrong")), 401);
    assert_eq!(call("GET", "/status", "", Some("s3cret")), 200);
    assert_eq!(call("GET", "/metrics", "", None), 401);
    assert_eq!(call("GET", "/metrics", "", Some("s3cret")), 200);
    assert_eq!(call("GET", "/overrides", "", None), 401);
    let body = r#"{"endpoint": "example.com/web/o1", "state": "down"}"#;
    assert_eq!(call("POST", "/overrides", body, None), 401);
    assert_eq!(call("POST", "/drain?on=true", "", None), 401);
    assert_eq!(
        addrs(&s, "www.example.com."),
        set(&["127.0.0.81", "127.0.0.82", "127.0.0.83"]),
        "unauthorized calls change nothing"
    );
    // /health stays open: load balancers poll it without credentials.
    assert_eq!(call("GET", "/health", "", None), 200);
    assert_eq!(call("POST", "/overrides", body, Some("s3cret")), 200);
    assert_eq!(
        addrs(&s, "www.example.com."),
        set(&["127.0.0.82", "127.0.0.83"])
    );
}
