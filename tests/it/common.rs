//! Shared test harness: start the real `meridian` binary on 127.0.0.1:0 with zone files in a
//! temporary directory, and query it over real UDP and TCP sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// Zone texts that several tests serve, from tests/data/zones/.
pub mod zones {
    /// example.com with its SOA, NS and ns1 only: the health checks' dynamic names go there.
    pub const HEALTH: &str = include_str!("../data/zones/health/example.com.zone");
    /// example.com with a static name beside the dynamic ones: geo routing and explain.
    pub const ROUTING: &str = include_str!("../data/zones/routing/example.com.zone");
    /// example.com with an address of each family and a CNAME: the TCP tests.
    pub const TCP: &str = include_str!("../data/zones/tcp/example.com.zone");
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The admin API (always on a free loopback port in tests).
    pub api: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Server {
    /// Writes `zones` (file name, content) into `zones/` and starts the server with two UDP
    /// threads and `extra_config` (see [`Server::start_files`]).
    pub fn start(zones: &[(&str, &str)], extra_config: &str) -> Server {
        let files: Vec<(String, &[u8])> = zones
            .iter()
            .map(|(file, text)| (format!("zones/{file}"), text.as_bytes()))
            .collect();
        let files: Vec<(&str, &[u8])> = files.iter().map(|(f, c)| (f.as_str(), *c)).collect();
        Self::start_files(&files, 2, extra_config)
    }

    /// Writes `files` (path relative to a new temporary directory, content) and starts the
    /// server there on a config that takes its zones from `zones/`, listens on 127.0.0.1:0
    /// with `udp_threads` UDP threads and ends with `extra_config` (keys there belong to
    /// `[server]`; tables start sections of their own).
    pub fn start_files(files: &[(&str, &[u8])], udp_threads: usize, extra_config: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write file");
        }
        let config = dir.path().join("meridian.toml");
        let body = format!(
            "zones_dir = \"zones\"\n[server]\nlisten = [\"127.0.0.1:0\"]\nudp_threads = {udp_threads}\n{extra_config}\n"
        );
        std::fs::write(&config, body).expect("write config");
        Self::start_with_config(dir, config)
    }

    /// Starts the server on an existing config file inside `dir`.
    pub fn start_with_config(dir: tempfile::TempDir, config: PathBuf) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["serve", "--api-listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env("MERIDIAN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start meridian");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("meridian: listening on ") {
                        let addr = rest.split_whitespace().next().expect("address");
                        break SocketAddr::from_str(addr).expect("socket address");
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("meridian exited before listening: {status}");
                }
            }
        };
        let mut api = None;
        if let Some(Ok(line)) = lines.next()
            && let Some(rest) = line.strip_prefix("meridian: api on http://")
        {
            api = SocketAddr::from_str(rest.trim()).ok();
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            addr,
            api,
            dir,
            config,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most 10 s) for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        for _ in 0..500 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// True while the process is alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn udp(&self, name: &str, rtype: RecordType) -> Message {
        udp_query(self.addr, &query(name, rtype, true))
    }

    pub fn tcp(&self, name: &str, rtype: RecordType) -> Message {
        tcp_query(self.addr, &query(name, rtype, true))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A query message with a random id; with EDNS (payload 1232) when `edns` is set.
pub fn query(name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_str(name).expect("name"), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

pub fn query_class(name: &str, rtype: RecordType, class: DNSClass) -> Message {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    let mut q = Query::query(Name::from_str(name).expect("name"), rtype);
    q.set_query_class(class);
    m.add_query(q);
    m
}

pub fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    for _ in 0..3 {
        sock.send_to(bytes, addr).expect("send");
        let mut buf = [0u8; 65535];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

pub fn udp_query(addr: SocketAddr, m: &Message) -> Message {
    let bytes = m.to_vec().expect("encode");
    let resp = udp_raw(addr, &bytes).expect("no UDP answer");
    let resp = Message::from_vec(&resp).expect("parse response");
    assert_eq!(resp.metadata.id, m.metadata.id, "response id");
    resp
}

pub fn tcp_query(addr: SocketAddr, m: &Message) -> Message {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let bytes = m.to_vec().expect("encode");
    tcp_send(&mut s, &bytes);
    let resp = tcp_read(&mut s).expect("no TCP answer");
    Message::from_vec(&resp).expect("parse response")
}

pub fn tcp_send(s: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).expect("write");
}

pub fn tcp_read(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Polls `f` every 10 ms until it holds and says how long that took; fails the test,
/// naming `what`, once `deadline` has passed.
pub fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = std::time::Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Is an external tool present? Under CI=true a missing tool fails the test, naming the
/// Debian package; elsewhere the test is skipped, loudly.
pub fn require_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is missing: install the Debian package `{package}` (scripts/test.sh does)");
    }
    // Straight to stderr, not eprintln!: the harness would swallow it for a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {tool} not found; install the Debian package `{package}` to run this test"
    );
    false
}

/// The answer section as sorted presentation strings, for readable assertions.
pub fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

/// A reference daemon (Knot, NSD, gdnsd) started by a test: SIGTERM when dropped (so NSD
/// stops its children too), SIGKILL if it has not exited within 5 s. Derefs to the child.
pub struct DaemonGuard(pub Child);

impl DaemonGuard {
    /// Runs `cmd` in `dir` with no input and its stdout and stderr in the file `log`.
    pub fn spawn(cmd: &mut Command, dir: &Path, log: &Path) -> DaemonGuard {
        let program = Path::new(cmd.get_program()).display().to_string();
        let file = std::fs::File::create(log).expect("log file");
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        DaemonGuard(child)
    }
}

impl std::ops::Deref for DaemonGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for DaemonGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 for TCP and UDP, below the kernel's ephemeral range and handed
/// out once per test process: for every daemon a test starts on a port of its choosing
/// (Unbound, Knot, etcd, ...). A port from the ephemeral range, probed and released, can be
/// taken before the daemon binds it: by a socket bound to port 0 (a meridian under test), as
/// the automatic source port of any connection, or by another test's probe of the same port;
/// the daemon then fails to bind, and another process answers in its place.
pub fn stable_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let low: u64 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(32768);
    let span = low.saturating_sub(20000).max(1000);
    // Each call takes the next slot of a walk that starts at a place of this process's own.
    let start = u64::from(std::process::id()).wrapping_mul(7919);
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let Ok(port) = u16::try_from(20000 + (start + step * 7) % span) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port below the ephemeral range on 127.0.0.1");
}

/// The first sections of a Knot DNS configuration (server, control, log to stderr at
/// `log_level`, database) for a knotd in `dir` on 127.0.0.1:`port`, run as the current user
/// so that this works as root and as anyone else.
pub fn knot_conf(dir: &Path, port: u16, log_level: &str) -> String {
    let d = dir.display();
    let user = format!("{}:{}", user_id("-un"), user_id("-gn"));
    format!(
        "server:\n    rundir: \"{d}\"\n    pidfile: \"{d}/knot.pid\"\n    user: {user}\n    \
         listen: 127.0.0.1@{port}\n\
         control:\n    listen: \"{d}/knot.sock\"\n\
         log:\n  - target: stderr\n    any: {log_level}\n\
         database:\n    storage: \"{d}/db\"\n"
    )
}

/// `id -un` / `id -gn`...: who the test runs as (daemons are told to run as that).
fn user_id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Where a tool lives: on PATH, else /usr/sbin (daemons live there on Debian).
pub fn tool_path(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| Path::new("/usr/sbin").join(tool))
}

/// One HTTP/1.1 request to the admin API, on a connection of its own (5 s to answer): a
/// non-empty `body` is sent as JSON, a `token` as `Authorization: Bearer`. The status code
/// and the body, a chunked one put back together.
pub fn http_request(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(api).expect("connect to the api");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(head.as_bytes()).expect("write to the api");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read from the api");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    let body = &raw[split + 4..];
    let body = if head.contains("\r\ntransfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// A chunked HTTP/1.1 body (RFC 9112 §7.1) as the bytes it carries.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&rest[..eol]);
        let size = line.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).expect("chunk size");
        let data = &rest[eol + 2..];
        if n == 0 || data.len() < n {
            out.extend_from_slice(&data[..n.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..n]);
        rest = data.get(n + 2..).unwrap_or_default();
    }
    out
}

/// GET `path` from the admin API: (status, body).
pub fn http_get(api: SocketAddr, path: &str) -> (u16, String) {
    http_request(api, "GET", path, "", None)
}

/// POST `body` (JSON, or nothing when empty) to `path` on the admin API: (status, body).
pub fn http_post(api: SocketAddr, path: &str, body: &str) -> (u16, String) {
    http_request(api, "POST", path, body, None)
}

/// POSTs an admin override (the JSON body /overrides takes) to the server's API; fails the
/// test unless it is accepted.
pub fn set_override(s: &Server, body: &str) {
    let (code, text) = http_post(s.api.expect("server has an API"), "/overrides", body);
    assert_eq!(code, 200, "override {body}: {text}");
}

/// The value of the first /metrics line starting with `prefix` (name and labels).
pub fn metric(api: SocketAddr, prefix: &str) -> u64 {
    let (_, body) = http_get(api, "/metrics");
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{body}"))
}

/// Runs `meridian check` on `config`: whether it passed, and what it printed.
pub fn check_config(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("run meridian check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// [`check_config`] on example.com alone: `zone` as its zone file and `dynamic` as its
/// dynamic names, in a temporary directory.
pub fn check_example_com(zone: &str, dynamic: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(dir.path().join("zones/example.com.zone"), zone).expect("zone");
    std::fs::write(dir.path().join("zones/example.com.toml"), dynamic).expect("dynamic");
    let config = dir.path().join("meridian.toml");
    std::fs::write(&config, "zones_dir = \"zones\"\n").expect("config");
    check_config(&config)
}

/// Loads a configuration into a snapshot, or fails the test with every diagnostic.
pub fn load_snapshot(path: &Path) -> meridian::engine::Snapshot {
    match meridian::config::load(path) {
        Ok(loaded) => loaded.snapshot,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            panic!("cannot load {}", path.display());
        }
    }
}

/// Flips the case of some letters of a wire-form name, deterministically per seed: the
/// answer path must not care (except where a response spells the query's case).
pub fn mixed_case(name: &[u8], seed: &mut u64) -> Vec<u8> {
    name.iter()
        .map(|&b| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if b.is_ascii_lowercase() && (*seed >> 33) & 1 == 1 {
                b.to_ascii_uppercase()
            } else {
                b
            }
        })
        .collect()
}

/// A dotted ASCII name in wire form, letters as given, no escapes. With or without the
/// trailing dot (empty labels are skipped), so "." is the root.
pub fn wire_name(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in text.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Held by the tests that run many processes with timing assertions (etcd fleets, the
/// anycast simulation, Prometheus): one at a time, so that on 2 cores they do not starve
/// each other into missed deadlines.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}
