//! The three-site anycast simulation (`scripts/geode-sim.sh`) against this build: sites,
//! router and clients in network namespaces, BIRD, a three-member etcd, web backends, and
//! meridian on every site from one config directory. The script measures each scenario and
//! judges it; this test runs it, then checks its verdicts and the numbers behind them again,
//! and that nothing of it is left behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::require_tool;

/// The script's results: metrics ("M key value") and rows ("S scenario|bound|measured|verdict").
struct Results {
    metrics: BTreeMap<String, i64>,
    rows: Vec<Vec<String>>,
}

fn parse(text: &str) -> Results {
    let mut metrics = BTreeMap::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("M ") {
            let (k, v) = m.split_once(' ').expect("metric line");
            metrics.insert(k.to_string(), v.trim().parse().expect("metric value"));
        } else if let Some(r) = line.strip_prefix("S ") {
            rows.push(r.split('|').map(str::to_string).collect());
        }
    }
    Results { metrics, rows }
}

impl Results {
    fn get(&self, key: &str) -> i64 {
        *self
            .metrics
            .get(key)
            .unwrap_or_else(|| panic!("no metric {key}: {:?}", self.metrics))
    }
}

#[test]
fn three_sites_keep_answering_through_failures() {
    let _heavy = crate::common::heavy();
    for (tool, package) in [
        ("ip", "iproute2"),
        ("bird", "bird2"),
        ("birdc", "bird2"),
        ("etcd", "etcd-server"),
        ("dig", "bind9-dnsutils"),
        ("curl", "curl"),
        ("python3", "python3"),
    ] {
        if !require_tool(tool, package) {
            return;
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let results = dir.path().join("results");
    let tag = (std::process::id() % 90_000 + 10_000).to_string();
    let out = Command::new("bash")
        .arg(root.join("scripts/geode-sim.sh"))
        .env("MERIDIAN", env!("CARGO_BIN_EXE_meridian"))
        .env("RESULTS", &results)
        .env("TAG", &tag)
        .env("NO_COLOR", "1")
        .output()
        .expect("run scripts/geode-sim.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");

    // Nothing left behind, whatever happened.
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("meridian-g{tag}-");
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains(&prefix),
        "namespaces left behind"
    );

    assert!(
        out.status.success(),
        "geode-sim failed:\n{stdout}\n{stderr}"
    );
    let r = parse(&std::fs::read_to_string(&results).expect("results file"));
    for row in &r.rows {
        assert_eq!(row.len(), 4, "{row:?}");
        assert_eq!(row[3], "ok", "{row:?}");
    }
    for scenario in [
        "1 baseline",
        "2 backend",
        "3a",
        "3b",
        "4 site3 cut off",
        "4 healed",
        "5 reload",
    ] {
        assert!(
            r.rows.iter().any(|row| row[0].starts_with(scenario)),
            "no row for {scenario}: {:?}",
            r.rows
        );
    }
    for region in 1..=3 {
        assert_eq!(r.get(&format!("baseline_region{region}_lost")), 0);
    }
    // Every instance (and region 1's clients) moved away from the failed backend within
    // the bound `meridian check` printed.
    let bound = r.get("backend_bound_ms");
    for who in ["s1", "s2", "s3", "c1"] {
        let flip = r.get(&format!("backend_flip_ms_{who}"));
        assert!(
            (0..=bound).contains(&flip),
            "{who}: {flip} ms, bound {bound} ms"
        );
    }
    // A killed site: answers resume from the next site within 3 s; nothing lost elsewhere
    // or when it returns.
    assert!(r.get("stop_gap_ms") <= 3000, "{:?}", r.metrics);
    assert!(r.get("stop_lost") <= 60);
    assert_eq!(r.get("stop_errors"), 0);
    assert_eq!(r.get("stop_return_lost"), 0);
    assert_eq!(r.get("stop_others_lost"), 0);
    // A drained site loses nothing; neither a cut-off site nor a fleet-wide reload.
    assert_eq!(r.get("drain_lost"), 0);
    assert_eq!(r.get("cut_lost"), 0);
    assert!(r.get("cut_local_ms") > 0);
    assert_eq!(r.get("reload_lost"), 0);
}
