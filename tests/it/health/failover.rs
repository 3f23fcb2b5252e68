//! Failover and recovery follow fall and rise, an alternating backend does not flap the
//! answer, and what is answered (and with which TTL) when the first choice or everything is
//! down.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::targets::Backend;
use super::*;
use hickory_proto::op::ResponseCode;

// ---------------------------------------------------------------------------------------
// Failover and recovery timing
// ---------------------------------------------------------------------------------------

const INTERVAL: f64 = 0.2;
const TIMEOUT: f64 = 0.1;
const RISE: u32 = 2;
const FALL: u32 = 2;

#[test]
fn failover_and_recovery_follow_fall_and_rise() {
    let mut backends: Vec<Backend> = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
        .into_iter()
        .map(Backend::start)
        .collect();
    let eps: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "  {{ id = \"b{}\", datacenter = \"dc\", address = \"{}\", check_port = {} }},",
                i + 1,
                b.ip(),
                b.port()
            )
        })
        .collect();
    let dynamic = format!(
        r#"
[datacenters]
dc = {{}}

[pools.web]
check = {{ type = "http", path = "/health", interval = {INTERVAL}, timeout = {TIMEOUT}, rise = {RISE}, fall = {FALL} }}
endpoints = [
{}
]

[names.www]
pool = "web"
policy = "failover"
order = ["dc"]
select = "all"
ttl = 5
"#,
        eps.join("\n")
    );
    let s = start(&dynamic, &[], "");
    let all = set(&["127.0.0.21", "127.0.0.22", "127.0.0.23"]);
    let keys = [
        "example.com/web/b1",
        "example.com/web/b2",
        "example.com/web/b3",
    ];
    wait_checks(&s, &keys, 2);

    let bound = Duration::from_secs_f64(f64::from(FALL) * INTERVAL + TIMEOUT);
    let min_leave = Duration::from_secs_f64(f64::from(FALL - 1) * INTERVAL * 0.9);
    let min_back = Duration::from_secs_f64(f64::from(RISE - 1) * INTERVAL * 0.9);
    let mut failovers = Vec::new();
    let mut recoveries = Vec::new();
    // Every backend in turn: three measurements of each.
    for (i, ip) in ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
        .iter()
        .enumerate()
    {
        let key = keys[i];
        // A steady start: all three answered, and the last probe of this one succeeded, so
        // its failure streak is 0 (a loaded machine can make a 100 ms probe time out).
        let mut failures_before = 0;
        wait_until("all up, last probe ok", DEADLINE, || {
            let st = status(&s);
            let e = endpoint(&st, key);
            failures_before = e["failures"].as_u64().unwrap_or(0);
            e["last_result"] == "ok" && addrs(&s, "www.example.com.") == all
        });
        backends[i].stop();
        // Measured from the listener's close: no probe can fail before it.
        let left = wait_until(&format!("{ip} to leave the answer"), bound * 20, || {
            !addrs(&s, "www.example.com.").contains(*ip)
        });
        assert!(
            left >= min_leave,
            "{ip} left after {left:?}, before (fall-1) x interval = {min_leave:?}"
        );
        let e = endpoint(&status(&s), key);
        assert_eq!(e["up"], false, "{e}");
        assert_eq!(e["check_up"], false, "{e}");
        let failed = e["failures"].as_u64().unwrap_or(0) - failures_before;
        assert!(
            failed >= u64::from(FALL),
            "{ip} left after {failed} failed probe(s), fall is {FALL}: {e}"
        );
        let reason = e["last_result"].as_str().unwrap_or_default().to_lowercase();
        assert!(reason.contains("refused"), "reason: {e}");
        let mut rest = all.clone();
        rest.remove(*ip);
        wait_until("the others to stay", DEADLINE, || {
            addrs(&s, "www.example.com.") == rest
        });
        println!(
            "failover of {ip}: {:.0} ms (bound fall x interval + timeout = {:.0} ms, floor (fall-1) x 0.9 x interval = {:.0} ms)",
            left.as_secs_f64() * 1000.0,
            bound.as_secs_f64() * 1000.0,
            min_leave.as_secs_f64() * 1000.0
        );
        failovers.push(left);

        backends[i].restart();
        let back = wait_until(&format!("{ip} to come back"), bound * 20, || {
            addrs(&s, "www.example.com.").contains(*ip)
        });
        let probes = backends[i].served();
        assert!(
            probes >= u64::from(RISE),
            "{ip} came back after {probes} successful probe(s), rise is {RISE}"
        );
        assert!(
            back >= min_back,
            "{ip} came back after {back:?}, before (rise-1) x interval = {min_back:?}"
        );
        println!(
            "recovery of {ip}: {:.0} ms after {probes} successful probes (rise x interval = {:.0} ms)",
            back.as_secs_f64() * 1000.0,
            f64::from(RISE) * INTERVAL * 1000.0
        );
        recoveries.push(back);
    }
    let ms = |v: &[Duration]| {
        let min = v.iter().min().unwrap().as_secs_f64() * 1000.0;
        let max = v.iter().max().unwrap().as_secs_f64() * 1000.0;
        format!("{min:.0}..{max:.0} ms")
    };
    println!(
        "SUMMARY interval {INTERVAL} s, timeout {TIMEOUT} s, rise {RISE}, fall {FALL}: failover {} (bound {:.0} ms), recovery {}",
        ms(&failovers),
        bound.as_secs_f64() * 1000.0,
        ms(&recoveries)
    );
}

// ---------------------------------------------------------------------------------------
// Flapping
// ---------------------------------------------------------------------------------------

#[test]
fn alternating_backend_does_not_flap_the_answer() {
    let up_first = Backend::start("127.0.0.61").alternating();
    let down_first = Backend::start("127.0.0.62").alternating();
    // A generous timeout: a probe that times out on a loaded machine is a real failure, and
    // one next to a 503 would be two in a row.
    let check = "type = \"http\", interval = 0.2, timeout = 0.2, rise = 2, fall = 2";
    let dynamic = format!(
        r#"
[datacenters]
dc = {{}}

[pools.up]
check = {{ {check}, initial = "up" }}
endpoints = [{{ id = "a", datacenter = "dc", address = "127.0.0.61", check_port = {} }}]

[pools.down]
check = {{ {check}, initial = "down" }}
endpoints = [{{ id = "b", datacenter = "dc", address = "127.0.0.62", check_port = {} }}]

[names.stays-in]
pool = "up"
policy = "failover"
order = ["dc"]
all_down = "nodata"

[names.stays-out]
pool = "down"
policy = "failover"
order = ["dc"]
all_down = "nodata"
"#,
        up_first.port(),
        down_first.port()
    );
    let s = start(&dynamic, &[], "");
    let started = Instant::now();
    let mut samples = 0;
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            addrs(&s, "stays-in.example.com."),
            set(&["127.0.0.61"]),
            "flapped out after {:?}",
            started.elapsed()
        );
        assert!(
            addrs(&s, "stays-out.example.com.").is_empty(),
            "flapped in after {:?}",
            started.elapsed()
        );
        samples += 1;
        std::thread::sleep(Duration::from_millis(15));
    }
    let st = status(&s);
    for (key, up) in [("example.com/up/a", true), ("example.com/down/b", false)] {
        let e = endpoint(&st, key);
        let checks = e["checks"].as_u64().unwrap();
        let failures = e["failures"].as_u64().unwrap();
        println!("flapping {key}: {samples} samples, {checks} checks, {failures} failures");
        assert_eq!(e["up"], up, "{e}");
        assert!(checks >= 10, "too few probes in 3 s: {e}");
        assert!(
            checks.abs_diff(2 * failures) <= 2 + checks / 10,
            "failures should be about half the checks: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// all_down: fail-open, nodata, fallback; degraded_ttl
// ---------------------------------------------------------------------------------------

#[test]
fn all_down_behaviours_and_degraded_ttl() {
    let mut a = Backend::start("127.0.0.71");
    let mut b = Backend::start("127.0.0.72");
    let dynamic = format!(
        r#"
[datacenters]
one = {{}}
two = {{}}

[pools.web]
check = {{ type = "http", interval = 0.2, timeout = 0.2, rise = 1, fall = 2 }}
endpoints = [
  {{ id = "a", datacenter = "one", addresses = ["127.0.0.71", "2001:db8::71"], check_port = {} }},
  {{ id = "b", datacenter = "two", address = "127.0.0.72", check_port = {} }},
]

[names.primary]
pool = "web"
policy = "failover"
order = ["one", "two"]
ttl = 60
degraded_ttl = 5

[names.open]
pool = "web"
policy = "failover"
order = ["one", "two"]
datacenters = 2
ttl = 60
degraded_ttl = 7

[names.nodata]
pool = "web"
policy = "failover"
order = ["one", "two"]
datacenters = 2
all_down = "nodata"

[names.fallback]
pool = "web"
policy = "failover"
order = ["one", "two"]
all_down = "fallback"
fallback = ["192.0.2.99", "2001:db8::99"]
ttl = 60
degraded_ttl = 9

[names.sorry]
pool = "web"
policy = "failover"
order = ["one", "two"]
all_down = "fallback"
fallback_cname = "sorry.example.net."
"#,
        a.port(),
        b.port()
    );
    let s = start(&dynamic, &[], "");
    let ttls = |m: &Message| -> BTreeSet<u32> { m.answers.iter().map(|r| r.ttl).collect() };
    wait_checks(&s, &["example.com/web/a", "example.com/web/b"], 1);

    // Everything up: first choice, full TTL.
    wait_until("both up", DEADLINE, || {
        addrs(&s, "open.example.com.") == set(&["127.0.0.71", "127.0.0.72"])
    });
    let m = ask(&s, "primary.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.71"]));
    assert_eq!(ttls(&m), BTreeSet::from([60]));
    assert_eq!(
        addrs(&s, "open.example.com."),
        set(&["127.0.0.71", "127.0.0.72"])
    );

    // First choice down: the second answers, with the degraded TTL.
    a.stop();
    wait_until("primary to fail over", DEADLINE, || {
        addrs(&s, "primary.example.com.") == set(&["127.0.0.72"])
    });
    let m = ask(&s, "primary.example.com.");
    assert_eq!(ttls(&m), BTreeSet::from([5]), "degraded_ttl: {m:?}");
    let m = ask(&s, "open.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.72"]));
    assert_eq!(ttls(&m), BTreeSet::from([7]));

    // Everything down.
    b.stop();
    wait_until("both endpoints down", DEADLINE, || {
        let st = status(&s);
        endpoint(&st, "example.com/web/a")["up"] == false
            && endpoint(&st, "example.com/web/b")["up"] == false
    });
    // fail-open (the default): answer as if all were up.
    let m = ask(&s, "open.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.71", "127.0.0.72"]), "fail-open");
    assert_eq!(ttls(&m), BTreeSet::from([7]), "fail-open uses degraded_ttl");
    assert_eq!(
        addrs(&s, "primary.example.com."),
        set(&["127.0.0.71"]),
        "fail-open with one datacenter: the first choice"
    );
    // nodata: NOERROR, no answer, the SOA for negative caching.
    let m = ask(&s, "nodata.example.com.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty(), "{m:?}");
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        "nodata carries the SOA: {m:?}"
    );
    // fallback addresses, per type, with the degraded TTL.
    let m = ask(&s, "fallback.example.com.");
    assert_eq!(values(&m), set(&["192.0.2.99"]));
    assert_eq!(ttls(&m), BTreeSet::from([9]));
    let m = s.udp("fallback.example.com.", RecordType::AAAA);
    assert_eq!(values(&m), set(&["2001:db8::99"]));
    // fallback CNAME.
    let m = ask(&s, "sorry.example.com.");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(values(&m), set(&["sorry.example.net."]), "{m:?}");
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);

    // Back up: normal answers and TTLs again.
    a.restart();
    b.restart();
    // (Fail-open answers look the same as all up: watch the state, not the answer.)
    wait_until("both back up", DEADLINE, || {
        let st = status(&s);
        endpoint(&st, "example.com/web/a")["up"] == true
            && endpoint(&st, "example.com/web/b")["up"] == true
    });
    assert_eq!(addrs(&s, "primary.example.com."), set(&["127.0.0.71"]));
    assert_eq!(
        addrs(&s, "open.example.com."),
        set(&["127.0.0.71", "127.0.0.72"])
    );
    assert_eq!(ttls(&ask(&s, "primary.example.com.")), BTreeSet::from([60]));
    assert_eq!(addrs(&s, "fallback.example.com."), set(&["127.0.0.71"]));
}

#[test]
fn degraded_ttl_only_when_the_first_choice_is_down() {
    // Datacenter one has no IPv6 endpoint: for AAAA the first choice is two, and a healthy
    // answer from it is not degraded.
    let dynamic = r#"
[datacenters]
one = {}
two = {}

[pools.mixed]
endpoints = [
  { id = "x", datacenter = "one", address = "127.0.0.73" },
  { id = "y", datacenter = "two", addresses = ["127.0.0.74", "2001:db8::74"] },
]

[names.mixed]
pool = "mixed"
policy = "failover"
order = ["one", "two"]
ttl = 60
degraded_ttl = 5
"#;
    let s = start(dynamic, &[], "");
    let ttls = |m: &Message| -> Vec<u32> { m.answers.iter().map(|r| r.ttl).collect() };
    let m = ask(&s, "mixed.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.73"]));
    assert_eq!(ttls(&m), [60]);
    let m = s.udp("mixed.example.com.", RecordType::AAAA);
    assert_eq!(values(&m), set(&["2001:db8::74"]));
    assert_eq!(ttls(&m), [60], "AAAA from the only datacenter that has it");
    // The first choice for A goes down: A is degraded, AAAA is not.
    set_override(
        &s,
        r#"{"endpoint": "example.com/mixed/x", "state": "down"}"#,
    );
    let m = ask(&s, "mixed.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.74"]));
    assert_eq!(ttls(&m), [5]);
    let m = s.udp("mixed.example.com.", RecordType::AAAA);
    assert_eq!(ttls(&m), [60]);
}
