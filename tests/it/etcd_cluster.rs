//! A real etcd cluster for tests: 1 or 3 members of the `etcd` binary as child processes on
//! free loopback ports, data in a temporary directory (in memory when there is room), fast
//! raft timings (50 ms heartbeat, 500 ms election timeout; or others) and a watch progress
//! notification every second. Members can be killed, restarted, paused and resumed; all are
//! killed when the cluster is dropped (on a panic too).
//!
//! Every test that starts one calls `crate::common::require_tool("etcd", "etcd-server")`
//! first and returns when it says false.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{stable_port, tool_path};

/// How long a start or a restart may take before the test fails.
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    /// `--initial-cluster`: every member's name and peer URL.
    initial_cluster: String,
    /// Raft timings, ms: heartbeat interval and election timeout.
    timings: (u32, u32),
    /// `--auth-token`, when not etcd's default (simple tokens).
    auth_token: Option<String>,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    paused: bool,
}

impl EtcdCluster {
    /// Starts `n` members and waits until each answers a linearizable read (so a leader is
    /// elected). Tries three times with fresh ports (a port can be taken between choosing
    /// and binding it); fails the test, with the members' logs, if none works.
    pub fn start(n: usize) -> EtcdCluster {
        Self::start_tuned(n, 50, 500)
    }

    /// [`Self::start`] with other raft timings: heartbeat interval and election timeout in
    /// ms (etcd's defaults are 100 and 1000).
    pub fn start_tuned(n: usize, heartbeat_ms: u32, election_ms: u32) -> EtcdCluster {
        Self::start_with(n, (heartbeat_ms, election_ms), None)
    }

    /// One member that issues JWT tokens (HS256, with a random key) valid for `ttl`, as
    /// etcd recommends for production: unlike its simple tokens, which live as long as they
    /// are used, each expires at its time.
    pub fn start_with_jwt(ttl: Duration) -> EtcdCluster {
        Self::start_with(1, (50, 500), Some(ttl))
    }

    fn start_with(n: usize, timings: (u32, u32), jwt_ttl: Option<Duration>) -> EtcdCluster {
        assert!(n >= 1, "a cluster has members");
        let mut why = String::new();
        for _ in 0..3 {
            let mut cluster = Self::spawn(n, timings, jwt_ttl);
            match cluster.wait_healthy(START_DEADLINE) {
                Ok(()) => return cluster,
                Err(e) => why = format!("{e}\n{}", cluster.logs()),
            }
        }
        panic!("etcd cluster of {n} did not start:\n{why}");
    }

    fn spawn(n: usize, timings: (u32, u32), jwt_ttl: Option<Duration>) -> EtcdCluster {
        let dir = data_dir();
        let auth_token = jwt_ttl.map(|ttl| {
            let key = dir.path().join("jwt.key");
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut bytes))
                .expect("random bytes for the JWT key");
            std::fs::write(&key, bytes).expect("JWT key file");
            format!(
                "jwt,sign-method=HS256,priv-key={},ttl={}ms",
                key.display(),
                ttl.as_millis()
            )
        });
        let mut ports = Vec::new();
        // Below the ephemeral range: a restarted member binds its ports again.
        while ports.len() < 2 * n {
            let p = stable_port();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                child: None,
                paused: false,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            dir,
            members,
            initial_cluster,
            timings,
            auth_token,
        };
        for i in 0..n {
            cluster.spawn_member(i);
        }
        cluster
    }

    fn spawn_member(&mut self, i: usize) {
        let m = &self.members[i];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let token = self
            .dir
            .path()
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("etcd log file");
        let mut cmd = Command::new(tool_path("etcd"));
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args(["--heartbeat-interval", &self.timings.0.to_string()])
            .args(["--election-timeout", &self.timings.1.to_string()])
            .args(["--experimental-watch-progress-notify-interval", "1s"])
            .args(
                self.auth_token
                    .iter()
                    .flat_map(|t| ["--auth-token", t.as_str()]),
            )
            // Info: elections and leader changes, for a failure message.
            .args(["--logger", "zap", "--log-level", "info"]);
        self.members[i].child = Some(spawn_etcd(cmd, log));
        self.members[i].paused = false;
    }

    /// Waits until every running member answers a linearizable read.
    fn wait_healthy(&mut self, deadline: Duration) -> Result<(), String> {
        let start = Instant::now();
        for i in 0..self.members.len() {
            if self.members[i].child.is_some() {
                self.wait_member(i, deadline.saturating_sub(start.elapsed()))?;
            }
        }
        Ok(())
    }

    fn wait_member(&mut self, i: usize, deadline: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.members[i].child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("etcd member {i} exited: {status}"));
            }
            if let Some((200, _)) = self.post(i, "/v3/kv/range", r#"{"key":"aGVhbHRo"}"#) {
                return Ok(());
            }
            if start.elapsed() > deadline {
                return Err(format!("etcd member {i} not serving after {deadline:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The raft election timeout the members run with.
    pub fn election_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timings.1))
    }

    /// The members' client URLs, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// SIGKILLs member `i` (a no-op if it is not running).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.members[i].paused = false;
    }

    /// Starts member `i` again on its data directory and ports, and waits until it serves
    /// linearizable reads (so it has rejoined a cluster with a leader).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn_member(i);
        if let Err(e) = self.wait_member(i, START_DEADLINE) {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Stops every member (SIGTERM, then SIGKILL after 5 s). They can be restarted.
    pub fn stop_all(&mut self) {
        for m in &mut self.members {
            let Some(mut child) = m.child.take() else {
                continue;
            };
            if m.paused {
                signal(&child, libc::SIGCONT);
            }
            signal(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            m.paused = false;
        }
    }

    /// Freezes member `i` (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn pause(&mut self, i: usize) {
        if let Some(child) = &self.members[i].child {
            signal(child, libc::SIGSTOP);
            // kill(2) returns before every thread has stopped: one that is running may
            // still answer a request sent right after. Wait until all of them are stopped.
            let deadline = Instant::now() + Duration::from_secs(2);
            while !all_threads_stopped(child.id()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            self.members[i].paused = true;
        }
    }

    /// Lets a paused member `i` run again (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        if let Some(child) = &self.members[i].child {
            signal(child, libc::SIGCONT);
            self.members[i].paused = false;
        }
    }

    /// The member that says it is the leader (its /v3/maintenance/status names its own
    /// member id), among the running, unpaused ones.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| {
            let m = &self.members[i];
            if m.child.is_none() || m.paused {
                return false;
            }
            let Some((200, body)) = self.post(i, "/v3/maintenance/status", "{}") else {
                return false;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
                return false;
            };
            let me = v["header"]["member_id"].as_str();
            me.is_some() && me == v["leader"].as_str()
        })
    }

    /// Waits (at most 10 s) for a leader; fails the test if none is elected.
    pub fn wait_leader(&self) -> usize {
        let start = Instant::now();
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("no etcd leader after 10 s\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs the JSON `body` to `path` on member `i` (HTTP/1.0, 2 s to answer): the status
    /// and the body, or None if it could not be reached or did not answer.
    pub fn post(&self, i: usize, path: &str, body: &str) -> Option<(u16, String)> {
        self.post_as(i, path, body, None)
    }

    /// [`Self::post`] with an auth token (from [`Self::enable_auth`] or etcd's
    /// /v3/auth/authenticate) in the header etcd's gateway reads.
    pub fn post_as(
        &self,
        i: usize,
        path: &str,
        body: &str,
        token: Option<&str>,
    ) -> Option<(u16, String)> {
        let auth = token.map_or(String::new(), |t| format!("Authorization: {t}\r\n"));
        let addr = ([127, 0, 0, 1], self.members[i].client_port).into();
        let timeout = Duration::from_secs(2);
        let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.set_write_timeout(Some(timeout)).ok()?;
        let request = format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             {auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_string()))
    }

    /// Turns authentication on (etcd's `auth enable`) through member 0: a root user, and
    /// `user` with `password`, allowed to read and write the keys under `prefix` and
    /// nothing else. Returns a token of root's.
    pub fn enable_auth(&self, user: &str, password: &str, prefix: &str) -> String {
        let b64 = |b: &[u8]| data_encoding::BASE64.encode(b);
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let root = r#"{"name":"root","password":"root-secret"}"#;
        let perm = format!(
            r#"{{"name":"fleet","perm":{{"permType":"READWRITE","key":"{}","range_end":"{}"}}}}"#,
            b64(prefix.as_bytes()),
            b64(&end)
        );
        let steps = [
            ("/v3/auth/user/add", root.to_string()),
            (
                "/v3/auth/user/grant",
                r#"{"user":"root","role":"root"}"#.into(),
            ),
            ("/v3/auth/role/add", r#"{"name":"fleet"}"#.into()),
            ("/v3/auth/role/grant", perm),
            (
                "/v3/auth/user/add",
                format!(r#"{{"name":"{user}","password":"{password}"}}"#),
            ),
            (
                "/v3/auth/user/grant",
                format!(r#"{{"user":"{user}","role":"fleet"}}"#),
            ),
            ("/v3/auth/enable", "{}".into()),
        ];
        for (path, body) in steps {
            match self.post(0, path, &body) {
                Some((200, _)) => {}
                other => panic!("{path} {body}: {other:?}\n{}", self.logs()),
            }
        }
        self.token(root)
    }

    /// A token from /v3/auth/authenticate for the JSON `login` (name, password).
    pub fn token(&self, login: &str) -> String {
        let (code, body) = self
            .post(0, "/v3/auth/authenticate", login)
            .expect("authenticate");
        assert_eq!(code, 200, "authenticate {login}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["token"].as_str().expect("a token").to_string()
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[i].name))
    }

    /// The last lines of every member's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 0..self.members.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- etcd member {i} log (last 20 lines)\n"));
            for line in &lines[lines.len().saturating_sub(20)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Every member's elections, leader changes and slow disk or apply warnings, in
    /// order, for a failure message about an election.
    pub fn raft_events(&self) -> String {
        const MARKS: [&str; 6] = [
            "election",
            "leader",
            "candidate",
            "fdatasync",
            "took too long",
            "peer became",
        ];
        let mut out = String::new();
        for i in 0..self.members.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            out.push_str(&format!("--- etcd member {i}: raft events\n"));
            for line in text.lines().filter(|l| MARKS.iter().any(|m| l.contains(m))) {
                out.push_str(line.get(..300).unwrap_or(line));
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// The members' data directory: in /dev/shm when it has room, so that an fsync (which
/// etcd does for every vote of an election) never waits behind other tests' disk writes;
/// a temporary directory otherwise. The WAL preallocates 64 MB per member.
fn data_dir() -> tempfile::TempDir {
    const ROOM: u64 = 2 << 30;
    let shm = std::path::Path::new("/dev/shm");
    if free_bytes(shm).is_some_and(|free| free >= ROOM)
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("meridian-etcd-")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temp dir")
}

fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(3) fills the zeroed struct; `c` is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Starts `cmd` (etcd with its flags) logging to `log`, flags only: no ETCD_* variable of
/// the caller's environment.
fn spawn_etcd(mut cmd: Command, log: std::fs::File) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("etcd log file"))
        .stderr(log);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ETCD_") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("start etcd")
}

/// Whether every thread of process `pid` is stopped (state T in /proc/PID/task/*/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name's closing parenthesis.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
}

fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(pid, sig) };
    }
}

/// One etcd member that speaks only TLS to its clients and asks each for a certificate
/// signed by its CA (`--client-cert-auth`). The CA, the member's certificate (for
/// 127.0.0.1) and a client's are made fresh, as PEM files in its directory. Killed when
/// dropped.
pub struct TlsMember {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub endpoint: String,
}

impl TlsMember {
    pub fn start() -> TlsMember {
        let dir = data_dir();
        write_certs(dir.path());
        let (client_port, peer_port) = (stable_port(), stable_port());
        let endpoint = format!("https://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let file = |name: &str| dir.path().join(name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(file("etcd.log"))
            .expect("etcd log file");
        let mut cmd = Command::new(tool_path("etcd"));
        cmd.args(["--name", "tls0"])
            .arg("--data-dir")
            .arg(file("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("tls0={peer}")])
            .arg("--cert-file")
            .arg(file("server.pem"))
            .arg("--key-file")
            .arg(file("server-key.pem"))
            .arg("--trusted-ca-file")
            .arg(file("ca.pem"))
            .arg("--client-cert-auth")
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"]);
        TlsMember {
            dir,
            child: Some(spawn_etcd(cmd, log)),
            endpoint,
        }
    }

    /// A PEM file written by [`Self::start`]: ca.pem, client.pem, client-key.pem.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The member's log, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("etcd.log")).unwrap_or_default()
    }
}

impl Drop for TlsMember {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it.
fn write_certs(dir: &std::path::Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "meridian test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>, stem: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = usages;
        params.distinguished_name.push(DnType::CommonName, stem);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).expect("write certificate");
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem())
            .expect("write key");
    };
    // etcd's JSON gateway dials the member's own gRPC with the member's certificate, so
    // with --client-cert-auth that certificate must be good for client auth too.
    leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        "server",
    );
    leaf(vec![], vec![ExtendedKeyUsagePurpose::ClientAuth], "client");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
}
