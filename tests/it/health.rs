//! Health checks end to end: real targets on 127.0.0.0/8 (HTTP, HTTPS, TCP, DNS, exec,
//! file), the real server, answers over UDP and state over the admin API.
//!
//! Timing is asserted as logic, never as speed: a target must leave the answer (polled with
//! a generous deadline) and must not leave before the thresholds allow it. Each check's
//! interval carries ±10% jitter, so the lower bounds below use 0.9 × interval.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;

/// How long any wait for the health state may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// Test targets
// ---------------------------------------------------------------------------------------

/// A stoppable accept loop on a std listener; each connection goes to `handle`.
struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn spawn(listener: TcpListener, handle: Arc<dyn Fn(TcpStream) + Send + Sync>) -> Self {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let h = handle.clone();
                        std::thread::spawn(move || h(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener drops here: new connections are refused.
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads an HTTP/1.1 request head (the probes never send a body).
fn read_head<R: Read>(r: &mut R) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match r.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
        if buf.len() > 16384 {
            return false;
        }
    }
    true
}

fn http_response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// What a test backend answers.
struct Behaviour {
    status: AtomicU16,
    body: Mutex<String>,
    /// Alternate 200 and 503 on every request, starting with 200.
    alternate: AtomicBool,
    /// Requests answered since the last (re)start.
    served: AtomicU64,
}

/// A tiny thread-per-connection HTTP/1.1 server with a controllable status and body, that
/// can be stopped (connections refused) and restarted on the same address and port.
struct Backend {
    addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    acceptor: Option<Acceptor>,
}

impl Backend {
    fn start(ip: &str) -> Backend {
        let listener = TcpListener::bind((ip, 0)).expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let behaviour = Arc::new(Behaviour {
            status: AtomicU16::new(200),
            body: Mutex::new("ok".into()),
            alternate: AtomicBool::new(false),
            served: AtomicU64::new(0),
        });
        let mut b = Backend {
            addr,
            behaviour,
            acceptor: None,
        };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: TcpListener) {
        let behaviour = self.behaviour.clone();
        self.acceptor = Some(Acceptor::spawn(
            listener,
            Arc::new(move |mut s: TcpStream| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if !read_head(&mut s) {
                    return;
                }
                let n = behaviour.served.fetch_add(1, Ordering::SeqCst);
                let status = if behaviour.alternate.load(Ordering::SeqCst) {
                    if n.is_multiple_of(2) { 200 } else { 503 }
                } else {
                    behaviour.status.load(Ordering::SeqCst)
                };
                let body = behaviour.body.lock().unwrap().clone();
                let _ = s.write_all(http_response(status, &body).as_bytes());
            }),
        ));
    }

    fn with_status(self, status: u16) -> Self {
        self.behaviour.status.store(status, Ordering::SeqCst);
        self
    }

    fn with_body(self, body: &str) -> Self {
        *self.behaviour.body.lock().unwrap() = body.into();
        self
    }

    fn alternating(self) -> Self {
        self.behaviour.alternate.store(true, Ordering::SeqCst);
        self
    }

    fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn served(&self) -> u64 {
        self.behaviour.served.load(Ordering::SeqCst)
    }

    /// Closes the listener: connections are refused from now on.
    fn stop(&mut self) {
        if let Some(mut a) = self.acceptor.take() {
            a.stop();
        }
    }

    /// Listens again on the same address and port; the served count starts over.
    fn restart(&mut self) {
        assert!(self.acceptor.is_none(), "backend still running");
        self.behaviour.served.store(0, Ordering::SeqCst);
        let listener = TcpListener::bind(self.addr).expect("rebind backend on the same port");
        self.serve(listener);
    }
}

/// An HTTPS server with a self-signed certificate (rcgen) for `names`.
struct TlsServer {
    addr: SocketAddr,
    cert_pem: String,
    _acceptor: Acceptor,
}

impl TlsServer {
    fn start(ip: &str, names: &[&str]) -> TlsServer {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("self-signed certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der())),
            )
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind((ip, 0)).expect("bind tls");
        let addr = listener.local_addr().expect("addr");
        let acceptor = Acceptor::spawn(
            listener,
            Arc::new(move |s: TcpStream| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                if read_head(&mut tls) {
                    let _ = tls.write_all(http_response(200, "secure ok").as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }),
        );
        TlsServer {
            addr,
            cert_pem: cert.pem(),
            _acceptor: acceptor,
        }
    }
}

/// Accepts connections and never answers: what a hung backend looks like.
fn silent_server(ip: &str) -> (SocketAddr, Acceptor) {
    let listener = TcpListener::bind((ip, 0)).expect("bind silent");
    let addr = listener.local_addr().expect("addr");
    let acceptor = Acceptor::spawn(
        listener,
        Arc::new(|s: TcpStream| {
            // Hold the connection open, silently, longer than any probe's timeout.
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        }),
    );
    (addr, acceptor)
}

/// A port nothing listens on (bound, then closed).
fn closed_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

#[derive(Clone, Copy)]
enum DnsMode {
    /// NOERROR with one A record.
    Answer,
    /// NOERROR, empty answer.
    Empty,
    Refused,
}

/// A UDP DNS responder that answers every query the same way; stops on drop.
struct DnsResponder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsResponder {
    fn start(ip: &str, mode: DnsMode) -> DnsResponder {
        let sock = UdpSocket::bind((ip, 0)).expect("bind dns");
        let addr = sock.local_addr().expect("addr");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 12 {
                    continue;
                }
                let mut resp = buf[..n].to_vec();
                resp[2] = 0x84 | (buf[2] & 0x01); // QR, AA, RD copied
                resp[3] = match mode {
                    DnsMode::Refused => 5,
                    _ => 0,
                };
                // Drop anything after the question (e.g. an OPT record).
                let mut end = 12;
                while end < n && buf[end] != 0 {
                    end += 1 + buf[end] as usize;
                }
                end += 5;
                resp.truncate(end.min(n));
                resp[6..12].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
                if let DnsMode::Answer = mode {
                    resp[7] = 1;
                    resp.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    resp.extend_from_slice(&[192, 0, 2, 53]);
                }
                let _ = sock.send_to(&resp, from);
            }
        });
        DnsResponder {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Server, API and DNS helpers
// ---------------------------------------------------------------------------------------

/// Starts meridian on `example.com` with `dynamic` as its dynamic names, `files` written
/// relative to the config directory, and `extra_config` appended to the config.
fn start(dynamic: &str, files: &[(&str, &str)], extra_config: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(dir.path().join("zones/example.com.zone"), zones::HEALTH).expect("zone");
    std::fs::write(dir.path().join("zones/example.com.toml"), dynamic).expect("dynamic");
    for (file, text) in files {
        let p = dir.path().join(file);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("extra file");
    }
    let config = dir.path().join("meridian.toml");
    std::fs::write(
        &config,
        format!(
            "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\nudp_threads = 1\n{extra_config}\n"
        ),
    )
    .expect("config");
    Server::start_with_config(dir, config)
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
// Every check type against a target that passes and one that fails
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Admin overrides, state file, metrics, drain
// ---------------------------------------------------------------------------------------

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
    let (code, body) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o1", "state": "down"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(addrs(&s, www), set(&["127.0.0.82", "127.0.0.83"]));
    let e = endpoint(&status(&s), "example.com/web/o1");
    assert_eq!(
        (e["up"].clone(), e["admin"].clone()),
        (Value::Bool(false), Value::from("down"))
    );

    // drain too.
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o2", "state": "drain"}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(addrs(&s, www), set(&["127.0.0.83"]));
    assert_eq!(
        endpoint(&status(&s), "example.com/web/o2")["admin"],
        "drain"
    );

    // null clears.
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/web/o2", "state": null}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(addrs(&s, www), set(&["127.0.0.82", "127.0.0.83"]));
    assert_eq!(
        endpoint(&status(&s), "example.com/web/o2")["admin"],
        Value::Null
    );

    // A datacenter override.
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"datacenter": "example.com/two", "state": "down"}"#,
    );
    assert_eq!(code, 200);
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
    post(
        &s2,
        "/overrides",
        r#"{"endpoint": "example.com/web/o1", "state": null}"#,
    );
    post(
        &s2,
        "/overrides",
        r#"{"datacenter": "example.com/two", "state": null}"#,
    );
    assert_eq!(addrs(&s2, www), all);
    let state = std::fs::read_to_string(s2.dir.path().join("state.toml")).expect("state file");
    assert!(!state.contains("o1") && !state.contains("two"), "{state}");
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

// ---------------------------------------------------------------------------------------
// meridian check
// ---------------------------------------------------------------------------------------

#[test]
fn check_command_prints_worst_case_failover() {
    let (ok, text) = check_example_com(
        zones::HEALTH,
        r#"
[datacenters]
dc = {}

[pools.web]
check = { type = "tcp", port = 80, interval = 0.2, timeout = 0.1, fall = 2 }
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.91" }]

[pools.plain]
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.92" }]

[names.www]
pool = "web"
policy = "failover"
order = ["dc"]
ttl = 20

[names.plain]
pool = "plain"
policy = "failover"
order = ["dc"]
ttl = 30
"#,
    );
    assert!(ok, "{text}");
    println!("{text}");
    let www = text
        .lines()
        .find(|l| l.contains("www.example.com"))
        .unwrap_or_else(|| panic!("no line for www.example.com: {text}"));
    // 2 × 0.2 s + 0.1 s detection, plus 20 s of caching.
    assert!(www.contains("worst-case failover 20.5 s"), "{www}");
    let plain = text
        .lines()
        .find(|l| l.contains("plain.example.com"))
        .unwrap_or_else(|| panic!("no line for plain.example.com: {text}"));
    assert!(plain.contains("no health check"), "{plain}");
}

// ---------------------------------------------------------------------------------------
// Edge cases found while writing the above
// ---------------------------------------------------------------------------------------

#[test]
fn unreadable_ca_file_is_a_configuration_error() {
    // Before: the config loaded, the check never started (logged once), and the endpoint
    // stayed up forever with no probe at all.
    let dynamic = r#"
[datacenters]
dc = {}

[pools.web]
check = { type = "https", ca_file = "no-such-ca.pem" }
endpoints = [{ id = "a", datacenter = "dc", address = "127.0.0.93" }]

[names.www]
pool = "web"
policy = "failover"
order = ["dc"]
"#;
    let (ok, text) = check_example_com(zones::HEALTH, dynamic);
    assert!(!ok, "{text}");
    assert!(text.contains("no-such-ca.pem"), "{text}");
    let not_pem = dynamic.replace("no-such-ca.pem", "example.com.zone");
    let (ok, text) = check_example_com(zones::HEALTH, &not_pem);
    assert!(!ok, "a file without certificates: {text}");
    assert!(text.contains("ca_file"), "{text}");
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
    let (code, _) = post(
        &s,
        "/overrides",
        r#"{"endpoint": "example.com/mixed/x", "state": "down"}"#,
    );
    assert_eq!(code, 200);
    let m = ask(&s, "mixed.example.com.");
    assert_eq!(values(&m), set(&["127.0.0.74"]));
    assert_eq!(ttls(&m), [5]);
    let m = s.udp("mixed.example.com.", RecordType::AAAA);
    assert_eq!(ttls(&m), [60]);
}
