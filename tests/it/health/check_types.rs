//! Every check type against a target that passes and one that fails, for the right reason.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::targets::{Backend, DnsMode, DnsResponder, TlsServer, closed_port, silent_server};
use super::*;
use hickory_proto::op::ResponseCode;

/// One endpoint of the check-type matrix.
struct Case {
    pool: &'static str,
    id: &'static str,
    ip: &'static str,
    port: u16,
    up: bool,
    /// What `last_result` contains.
    reason: &'static str,
}

#[test]
fn every_check_type_passes_and_fails_for_the_right_reason() {
    const FAST: &str = "interval = 0.2, timeout = 0.2, rise = 1, fall = 2";
    // tcp
    let open = Backend::start("127.0.0.31");
    let closed = closed_port("127.0.0.32");
    let (silent, _silent) = silent_server("127.0.0.33");
    // http
    let ok = Backend::start("127.0.0.34");
    let unavailable = Backend::start("127.0.0.35").with_status(503);
    let matching = Backend::start("127.0.0.36").with_body("all healthy here");
    let mismatching = Backend::start("127.0.0.37").with_body("sick");
    let (hung, _hung) = silent_server("127.0.0.38");
    // https
    let tls = TlsServer::start("127.0.0.39", &["127.0.0.39", "localhost"]);
    // dns
    let dns_ok = DnsResponder::start("127.0.0.40", DnsMode::Answer);
    let dns_empty = DnsResponder::start("127.0.0.41", DnsMode::Empty);
    let dns_refused = DnsResponder::start("127.0.0.42", DnsMode::Refused);

    let cases = [
        Case {
            pool: "tcp",
            id: "open",
            ip: "127.0.0.31",
            port: open.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "tcp",
            id: "closed",
            ip: "127.0.0.32",
            port: closed,
            up: false,
            reason: "refused",
        },
        Case {
            pool: "tcp",
            id: "silent",
            ip: "127.0.0.33",
            port: silent.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "http",
            id: "ok",
            ip: "127.0.0.34",
            port: ok.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "http",
            id: "503",
            ip: "127.0.0.35",
            port: unavailable.port(),
            up: false,
            reason: "status 503",
        },
        Case {
            pool: "http",
            id: "hung",
            ip: "127.0.0.38",
            port: hung.port(),
            up: false,
            reason: "timeout",
        },
        Case {
            pool: "body",
            id: "match",
            ip: "127.0.0.36",
            port: matching.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "body",
            id: "mismatch",
            ip: "127.0.0.37",
            port: mismatching.port(),
            up: false,
            reason: "body mismatch",
        },
        Case {
            pool: "https_verify",
            id: "tls",
            ip: "127.0.0.39",
            port: tls.addr.port(),
            up: false,
            reason: "certificate",
        },
        Case {
            pool: "https_ca",
            id: "tls",
            ip: "127.0.0.39",
            port: tls.addr.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "https_host",
            id: "tls",
            ip: "127.0.0.39",
            port: tls.addr.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "https_insecure",
            id: "tls",
            ip: "127.0.0.39",
            port: tls.addr.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "dns",
            id: "answer",
            ip: "127.0.0.40",
            port: dns_ok.addr.port(),
            up: true,
            reason: "ok",
        },
        Case {
            pool: "dns",
            id: "empty",
            ip: "127.0.0.41",
            port: dns_empty.addr.port(),
            up: false,
            reason: "no answer",
        },
        Case {
            pool: "dns",
            id: "refused",
            ip: "127.0.0.42",
            port: dns_refused.addr.port(),
            up: false,
            reason: "rcode",
        },
        Case {
            pool: "exec_true",
            id: "t",
            ip: "127.0.0.43",
            port: 1,
            up: true,
            reason: "ok",
        },
        Case {
            pool: "exec_false",
            id: "f",
            ip: "127.0.0.44",
            port: 1,
            up: false,
            reason: "exit status 1",
        },
        Case {
            pool: "exec_addr",
            id: "match",
            ip: "127.0.0.45",
            port: 4545,
            up: true,
            reason: "ok",
        },
        Case {
            pool: "exec_addr",
            id: "other",
            ip: "127.0.0.46",
            port: 4545,
            up: false,
            reason: "exit status 1",
        },
        Case {
            pool: "file",
            id: "f-up",
            ip: "127.0.0.47",
            port: 1,
            up: true,
            reason: "ok",
        },
        Case {
            pool: "file",
            id: "f-down",
            ip: "127.0.0.48",
            port: 1,
            up: false,
            reason: "says down",
        },
        Case {
            pool: "file",
            id: "f-missing",
            ip: "127.0.0.49",
            port: 1,
            up: false,
            reason: "not found",
        },
    ];
    let checks = [
        ("tcp", format!("type = \"tcp\", {FAST}")),
        (
            "http",
            format!("type = \"http\", path = \"/health\", {FAST}"),
        ),
        (
            "body",
            format!("type = \"http\", body_contains = \"healthy\", {FAST}"),
        ),
        ("https_verify", format!("type = \"https\", {FAST}")),
        (
            "https_ca",
            format!("type = \"https\", ca_file = \"cert.pem\", {FAST}"),
        ),
        (
            "https_host",
            format!("type = \"https\", host = \"localhost\", ca_file = \"cert.pem\", {FAST}"),
        ),
        (
            "https_insecure",
            format!("type = \"https\", insecure = true, {FAST}"),
        ),
        (
            "dns",
            format!(
                "type = \"dns\", query = \"probe.example.\", qtype = \"A\", expect_answer = true, {FAST}"
            ),
        ),
        (
            "exec_true",
            format!("type = \"exec\", command = [\"/bin/true\"], {FAST}"),
        ),
        (
            "exec_false",
            format!("type = \"exec\", command = [\"/bin/false\"], {FAST}"),
        ),
        (
            "exec_addr",
            format!(
                "type = \"exec\", command = [\"/bin/sh\", \"-c\", \"test {{address}}:{{port}} = 127.0.0.45:4545\"], {FAST}"
            ),
        ),
        (
            "file",
            format!("type = \"file\", file = \"state/{{id}}\", {FAST}"),
        ),
    ];
    let mut dynamic = String::from("[datacenters]\ndc = { up_share = 0.0 }\n");
    for (pool, check) in &checks {
        dynamic.push_str(&format!(
            "\n[pools.{pool}]\ncheck = {{ {check} }}\nendpoints = [\n"
        ));
        for c in cases.iter().filter(|c| c.pool == *pool) {
            dynamic.push_str(&format!(
                "  {{ id = \"{}\", datacenter = \"dc\", address = \"{}\", check_port = {} }},\n",
                c.id, c.ip, c.port
            ));
        }
        dynamic.push_str("]\n");
        let name = pool.replace('_', "-");
        dynamic.push_str(&format!(
            "[names.{name}]\npool = \"{pool}\"\npolicy = \"failover\"\norder = [\"dc\"]\nall_down = \"nodata\"\n"
        ));
    }
    let s = start(
        &dynamic,
        &[
            ("zones/cert.pem", &tls.cert_pem),
            ("zones/state/f-up", "up\n"),
            ("zones/state/f-down", "down\n"),
        ],
        "",
    );
    let keys: Vec<String> = cases
        .iter()
        .map(|c| format!("example.com/{}/{}", c.pool, c.id))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Every target probed often enough for fall = 2 to have taken the failing ones down.
    wait_checks(&s, &key_refs, 3);
    wait_until("every endpoint in its expected state", DEADLINE, || {
        let st = status(&s);
        cases
            .iter()
            .zip(&keys)
            .all(|(c, k)| endpoint(&st, k)["up"] == c.up)
    });
    let st = status(&s);
    for (c, k) in cases.iter().zip(&keys) {
        let e = endpoint(&st, k);
        assert_eq!(e["up"], c.up, "{k}: {e}");
        assert_eq!(e["check_up"], c.up, "{k}: {e}");
        let reason = e["last_result"].as_str().unwrap_or_default();
        assert!(
            reason.to_lowercase().contains(c.reason),
            "{k}: last_result {reason:?} should contain {:?}",
            c.reason
        );
        assert!(e["check"].is_string(), "{k}: {e}");
        println!("{k:32} up={:<5} {reason}", c.up);
    }
    // And through DNS: each name answers exactly its pool's healthy endpoints.
    for (pool, _) in &checks {
        let name = format!("{}.example.com.", pool.replace('_', "-"));
        let want: BTreeSet<String> = cases
            .iter()
            .filter(|c| c.pool == *pool && c.up)
            .map(|c| c.ip.to_string())
            .collect();
        let m = ask(&s, &name);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(values(&m), want, "{name}");
    }
    // A target that recovers comes back: the file now says up.
    std::fs::write(s.dir.path().join("zones/state/f-down"), "up\n").expect("write");
    std::fs::write(s.dir.path().join("zones/state/f-missing"), "OK\n").expect("write");
    wait_until("file endpoints to come back", DEADLINE, || {
        addrs(&s, "file.example.com.") == set(&["127.0.0.47", "127.0.0.48", "127.0.0.49"])
    });
    // And one that fails goes: the 200 backend starts answering 503.
    ok.behaviour.status.store(503, Ordering::SeqCst);
    wait_until("http ok endpoint to leave", DEADLINE, || {
        addrs(&s, "http.example.com.").is_empty()
    });
    let m = ask(&s, "http.example.com.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "nodata: {m:?}");
    let e = endpoint(&status(&s), "example.com/http/ok");
    assert_eq!(e["last_result"], "status 503", "{e}");
}
