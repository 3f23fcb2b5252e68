//! `meridian probe` against a real server and a port nobody answers on: a line per query,
//! in the documented shape, and a summary that counts what happened.

use std::process::Command;

use crate::common::{Server, stable_port};

const ZONE: &str = "\
$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.80
www  A   192.0.2.81
";

fn probe(args: &[&str]) -> (Vec<Vec<String>>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("probe")
        .args(args)
        .output()
        .expect("run meridian probe");
    assert!(out.status.success(), "{out:?}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_line_per_query_and_a_summary() {
    let server = Server::start(&[("example.com.zone", ZONE)], "");
    let addr = server.addr.to_string();
    let (lines, summary) = probe(&[
        &addr,
        "www.example.com",
        "A",
        "--count",
        "5",
        "--interval",
        "0.02",
    ]);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let mut seqs: Vec<&str> = lines.iter().map(|l| l[1].as_str()).collect();
    seqs.sort();
    assert_eq!(seqs, ["0", "1", "2", "3", "4"]);
    for l in &lines {
        assert_eq!(l.len(), 5, "{l:?}");
        assert!(
            l[0].parse::<u128>().is_ok_and(|ms| ms > 1_600_000_000_000),
            "{l:?}"
        );
        assert_eq!(l[2], "NOERROR");
        assert!(l[3].parse::<f64>().is_ok(), "{l:?}");
        let mut answers: Vec<&str> = l[4].split(',').collect();
        answers.sort();
        assert_eq!(answers, ["192.0.2.80", "192.0.2.81"]);
    }
    assert!(
        summary.starts_with("sent 5 answered 5 lost 0 errors 0"),
        "{summary}"
    );

    // A name outside the zones: REFUSED, counted as an error; NXDOMAIN is not one.
    let (lines, summary) = probe(&[&addr, "www.example.org", "--count", "2"]);
    assert!(
        lines.iter().all(|l| l[2] == "REFUSED" && l[4] == "-"),
        "{lines:?}"
    );
    assert!(summary.contains("errors 2"), "{summary}");
    let (lines, summary) = probe(&[
        &addr,
        "nope.example.com",
        "--count",
        "2",
        "--subnet",
        "192.0.2.0/24",
    ]);
    assert!(lines.iter().all(|l| l[2] == "NXDOMAIN"), "{lines:?}");
    assert!(summary.contains("errors 0"), "{summary}");
}

#[test]
fn unanswered_queries_are_lost_after_the_timeout() {
    let port = stable_port().to_string();
    let (lines, summary) = probe(&[
        &format!("127.0.0.1:{port}"),
        "www.example.com",
        "--count",
        "3",
        "--timeout",
        "0.2",
    ]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l[2] == "timeout"), "{lines:?}");
    assert!(summary.starts_with("sent 3 answered 0 lost 3"), "{summary}");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    for args in [
        &["not-an-address", "www.example.com"][..],
        &["127.0.0.1", "www.example.com", "--interval", "0"],
        &["127.0.0.1", "www.example.com", "--subnet", "192.0.2.0/40"],
        &["127.0.0.1", "www.example.com", "BOGUS"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("probe")
            .args(args)
            .output()
            .expect("run meridian probe");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn varied_queries_for_cache_miss_loads() {
    let server = Server::start(&[("example.com.zone", ZONE)], "");
    let addr = server.addr.to_string();
    let api = server.api.expect("api");
    let hits = || crate::common::metric(api, "meridian_answer_cache_total{result=\"hit\"}");
    // A random label under the zone: every query a different nonexistent name, so none comes
    // from the answer cache (an NXDOMAIN is only stored the second time its name is asked).
    let (lines, summary) = probe(&[&addr, "example.com", "--vary", "label", "--count", "10"]);
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|l| l[2] == "NXDOMAIN"), "{lines:?}");
    assert!(summary.starts_with("sent 10 answered 10"), "{summary}");
    assert_eq!(hits(), 0);
    // Quiet: the summary only.
    let (lines, summary) = probe(&[
        &addr,
        "www.example.com",
        "--vary",
        "subnet",
        "--count",
        "10",
        "--quiet",
    ]);
    assert!(lines.is_empty(), "{lines:?}");
    assert!(
        summary.starts_with("sent 10 answered 10 lost 0"),
        "{summary}"
    );
    // The name in a random case each time (a 0x20 resolver): the same answer every time,
    // from the cache after the first, and replayed whole from the fourth on at most.
    let whole = || crate::common::metric(api, "meridian_answer_cache_total{result=\"whole\"}");
    let before = (hits(), whole());
    let (lines, _) = probe(&[&addr, "www.example.com", "--vary", "case", "--count", "10"]);
    assert_eq!(lines.len(), 10);
    assert!(
        lines
            .iter()
            .all(|l| l[2] == "NOERROR" && l[4] == lines[0][4]),
        "{lines:?}"
    );
    assert!(hits() >= before.0 + 9, "hits {} after {}", hits(), before.0);
    assert!(
        whole() >= before.1 + 7,
        "whole {} after {}",
        whole(),
        before.1
    );
}
