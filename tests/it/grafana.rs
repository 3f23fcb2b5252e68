//! The shipped Grafana dashboard (`dist/grafana-meridian.json`) against a real Prometheus
//! (Debian `prometheus`) scraping a real meridian: every expression of every panel, with the
//! dashboard's variables filled in as Grafana would, returns data through Prometheus's query
//! API. meridian runs with a health check, a dynamic name, a query log and a fleet section
//! (a one-member etcd), so that every metric family the dashboard draws exists.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::common::{DaemonGuard, Server, query, require_tool, stable_port, tool_path, udp_raw};
use crate::etcd_cluster::EtcdCluster;

const ZONE: &str = "\
$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   192.0.2.1
";

const DYNAMIC: &str = r#"
[datacenters]
one = {}
two = {}
[pools.web]
endpoints = [
  { id = "w1", datacenter = "one", address = "198.51.100.1" },
  { id = "w2", datacenter = "two", address = "198.51.100.2" },
]
check = { type = "file", file = "health/{id}", interval = 0.5, timeout = 0.25 }
[geo_maps.nets]
default = ["one", "two"]
nets = { "127.0.0.0/8" = ["two", "one"] }
[names.www]
pool = "web"
policy = "geo"
map = "nets"
ttl = 5
"#;

/// Prometheus's answer to one instant query: how many series it returned.
fn series(prometheus: SocketAddr, expr: &str) -> Result<usize, String> {
    let out = Command::new(tool_path("curl"))
        .args(["-s", "--max-time", "5", "--get", "--data-urlencode"])
        .arg(format!("query={expr}"))
        .arg(format!("http://{prometheus}/api/v1/query"))
        .output()
        .map_err(|e| e.to_string())?;
    let body = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("query failed: {body}"));
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

/// Every expression in the dashboard, with `$instance` and `$__rate_interval` as Grafana
/// fills them in (all instances, a window of four scrapes).
fn expressions(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let filled = expr
                .replace("$instance", ".*")
                .replace("$__rate_interval", "4s");
            out.push((panel["title"].as_str().unwrap_or("?").to_string(), filled));
        }
    }
    out
}

#[test]
fn every_dashboard_expression_returns_data_from_prometheus() {
    let _heavy = crate::common::heavy();
    if !require_tool("prometheus", "prometheus")
        || !require_tool("etcd", "etcd-server")
        || !require_tool("curl", "curl")
    {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("dist/grafana-meridian.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 20, "{} expressions", exprs.len());

    let store = EtcdCluster::start(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("queries.log");
    let server = Server::start_files(
        &[
            ("zones/example.com.zone", ZONE.as_bytes()),
            ("zones/example.com.toml", DYNAMIC.as_bytes()),
            ("zones/health/w1", b"up\n"),
            ("zones/health/w2", b"up\n"),
        ],
        2,
        &format!(
            "[query_log]\npath = \"{}\"\nsample = 1\n[cluster]\nname = \"dash\"\ninstance = \"m1\"\nendpoints = [\"{}\"]\n",
            log.display(),
            store.endpoint(0)
        ),
    );
    let api = server.api.expect("api");

    // Prometheus scraping meridian every second.
    let port = stable_port();
    let prom_dir = tempfile::tempdir().expect("temp dir");
    let conf = prom_dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: meridian\n    static_configs:\n      - targets: [\"{api}\"]\n"
        ),
    )
    .expect("prometheus.yml");
    let prom_log = prom_dir.path().join("prometheus.log");
    let _prometheus = DaemonGuard::spawn(
        Command::new(tool_path("prometheus"))
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        prom_dir.path(),
        &prom_log,
    );
    let prometheus = SocketAddr::from(([127, 0, 0, 1], port));

    // Traffic for the rates: UDP and TCP, with ECS, a cookie, an NXDOMAIN; a reload.
    let running = Arc::new(AtomicBool::new(true));
    let traffic = {
        let running = running.clone();
        let addr = server.addr;
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            while running.load(Ordering::Relaxed) && Instant::now() < deadline {
                let ecs = meridian::dns::wire::build_query(
                    1,
                    b"\x03www\x07example\x03com\x00",
                    1,
                    true,
                    Some(("192.0.2.0".parse().expect("addr"), 24)),
                );
                let _ = udp_raw(addr, &ecs);
                let plain = query("www.example.com.", RecordType::A, false);
                let _ = udp_raw(addr, &plain.to_vec().expect("encode"));
                let missing = query("nope.example.com.", RecordType::A, false);
                let _ = udp_raw(addr, &missing.to_vec().expect("encode"));
                let _ = std::panic::catch_unwind(|| {
                    crate::common::tcp_query(addr, &query("example.com.", RecordType::SOA, false))
                });
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let _ = crate::common::http_post(api, "/reload", "");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing: Vec<(String, String)> = exprs.clone();
    while !missing.is_empty() && Instant::now() < deadline {
        missing.retain(|(_, e)| series(prometheus, e).map_or(true, |n| n == 0));
        if !missing.is_empty() {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    running.store(false, Ordering::Relaxed);
    let _ = traffic.join();
    let report: Vec<String> = missing
        .iter()
        .map(|(title, e)| format!("{title}: {e} -> {:?}", series(prometheus, e)))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboard expressions without data:\n{}\nprometheus log:\n{}",
        report.join("\n"),
        std::fs::read_to_string(&prom_log).unwrap_or_default()
    );
    println!("{} dashboard expressions all return data", exprs.len());
}
