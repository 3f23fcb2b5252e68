//! Thousands of concurrent TCP connections against the real server, each with pipelined
//! queries, all answered right, without a thread per connection; and the server raises its
//! own open-files soft limit so that it can hold them on a stock machine (soft limit 1024).
//!
//! The client side is one current-thread tokio runtime in this process: one task per
//! connection, no thread each. Every wait is bounded. Linux only: the figures come from /proc.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Connections we aim for, and the fewest that make the test worth running.
const WANT: u64 = 3000;
const AT_LEAST: u64 = 1000;
/// File descriptors each process keeps besides the connections (listeners, UDP sockets,
/// epoll, pipes, the API, the harness).
const MARGIN: u64 = 256;
/// Connections being set up at once (the server's listen backlog is 1024).
const CONNECT_BATCH: usize = 200;

/// The questions every connection sends, pipelined in one write.
const QUESTIONS: [(&str, RecordType); 4] = [
    ("www.example.com.", RecordType::A),
    ("mail.example.com.", RecordType::AAAA),
    ("alias.example.com.", RecordType::A),
    ("nothere.example.com.", RecordType::A),
];

/// What a response says, for comparing a TCP answer with the UDP one.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Said {
    rcode: ResponseCode,
    authoritative: bool,
    question: Vec<String>,
    answers: Vec<String>,
    authority: Vec<String>,
}

fn said(m: &Message) -> Said {
    let sorted = |records: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    Said {
        rcode: m.metadata.response_code,
        authoritative: m.metadata.authoritative,
        question: m.queries.iter().map(|q| q.to_string()).collect(),
        answers: sorted(&m.answers),
        authority: sorted(&m.authorities),
    }
}

fn nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer to our own local.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on 64-bit Linux, not everywhere
    (lim.rlim_cur as u64, lim.rlim_max as u64)
}

fn set_nofile_soft(soft: u64) {
    let (_, hard) = nofile();
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer to our own local.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// Is the open-files hard limit high enough? Under CI=true a low limit fails the test;
/// elsewhere the test is skipped, loudly (like `require_tool`).
fn require_fd_hard_limit(hard: u64, need: u64) -> bool {
    if hard >= need {
        return true;
    }
    let msg = format!(
        "the open-files hard limit (ulimit -Hn) is {hard}; {AT_LEAST} concurrent TCP connections \
         need at least {need}: raise it (`nofile` in /etc/security/limits.conf, LimitNOFILE= \
         for a systemd unit, or `ulimit -Hn` as root)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    // Straight to stderr, not eprintln!: the test harness would swallow it for a passing test.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
    false
}

/// A `Name:\tvalue` field of /proc/<pid>/status, first number only (Threads, VmRSS in kB).
fn status_field(pid: u32, field: &str) -> u64 {
    try_status_field(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn try_status_field(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Soft and hard "Max open files" of a process, from /proc/<pid>/limits.
fn proc_nofile(pid: u32) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().expect("soft").to_string();
    let hard = fields.next().expect("hard").to_string();
    (soft, hard)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// TCP connections (sockets in any state but LISTEN) on the server's own port that the
/// server process holds a descriptor for: /proc/<pid>/net/tcp gives the sockets' inodes,
/// /proc/<pid>/fd which of them the process has open. The client ends (local port
/// ephemeral) do not count, nor connections still waiting in the accept queue.
fn server_connections(pid: u32, port: u16) -> usize {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let inodes: std::collections::HashSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let (state, inode) = (*f.get(3)?, *f.get(9)?);
            (local_port == port && state != "0A").then(|| format!("socket:[{inode}]"))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| inodes.contains(link.to_string_lossy().as_ref()))
        .count()
}

/// Every query of one connection, length-prefixed and concatenated, and their ids.
fn pipelined(connection: usize) -> (Vec<u8>, Vec<u16>) {
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    for (i, (name, rtype)) in QUESTIONS.iter().enumerate() {
        let mut q = query(name, *rtype, true);
        q.metadata.id = (connection * QUESTIONS.len() + i) as u16;
        let wire = q.to_vec().expect("encode");
        bytes.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&wire);
        ids.push(q.metadata.id);
    }
    (bytes, ids)
}

async fn read_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Opens `n` connections, `CONNECT_BATCH` at a time, each within 10 s.
async fn connect_all(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    while streams.len() < n {
        let batch = CONNECT_BATCH.min(n - streams.len());
        let mut set = JoinSet::new();
        for _ in 0..batch {
            set.spawn(tokio::time::timeout(
                Duration::from_secs(10),
                TcpStream::connect(addr),
            ));
        }
        while let Some(joined) = set.join_next().await {
            let stream = joined
                .expect("connect task")
                .unwrap_or_else(|_| panic!("connection {} not set up in 10 s", streams.len()))
                .unwrap_or_else(|e| panic!("connection {}: {e}", streams.len()));
            streams.push(stream);
        }
    }
    streams
}

/// Sends every connection's queries in one write and reads all the answers, all connections
/// at once; each connection gets 60 s. The streams come back open, with the answers.
async fn query_all(streams: Vec<TcpStream>) -> Vec<(TcpStream, Vec<u16>, Vec<Vec<u8>>)> {
    let mut set = JoinSet::new();
    for (k, mut stream) in streams.into_iter().enumerate() {
        set.spawn(async move {
            let (bytes, ids) = pipelined(k);
            let exchange = async {
                stream.write_all(&bytes).await?;
                let mut got = Vec::with_capacity(QUESTIONS.len());
                for _ in 0..QUESTIONS.len() {
                    got.push(read_message(&mut stream).await?);
                }
                Ok::<_, std::io::Error>(got)
            };
            let got = tokio::time::timeout(Duration::from_secs(60), exchange)
                .await
                .unwrap_or_else(|_| panic!("connection {k}: answers not in within 60 s"))
                .unwrap_or_else(|e| panic!("connection {k}: {e}"));
            (stream, ids, got)
        });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        out.push(joined.expect("connection task"));
    }
    out
}

/// Samples the server's thread count every few milliseconds until stopped: (min, max).
struct ThreadSampler {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    handle: std::thread::JoinHandle<()>,
}

impl ThreadSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let max = Arc::new(AtomicUsize::new(0));
        let handle = {
            let (stop, min, max) = (stop.clone(), min.clone(), max.clone());
            std::thread::spawn(move || {
                // A server that is gone ends the sampling; the test fails elsewhere.
                while !stop.load(Ordering::Relaxed) {
                    let Some(t) = try_status_field(pid, "Threads") else {
                        return;
                    };
                    let t = t as usize;
                    min.fetch_min(t, Ordering::Relaxed);
                    max.fetch_max(t, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            min,
            max,
            handle,
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("sampler thread");
        (
            self.min.load(Ordering::Relaxed),
            self.max.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn thousands_of_connections_with_pipelined_queries_and_no_thread_each() {
    let (soft, hard) = nofile();
    if !require_fd_hard_limit(hard, AT_LEAST + MARGIN) {
        return;
    }
    let n = WANT.min(hard - MARGIN) as usize;

    // Start the server with the stock soft limit (1024 or lower), far below what it needs:
    // it must raise its own to the hard limit.
    let stock = soft.min(1024);
    set_nofile_soft(stock);
    let cap = n + 100;
    let mut s = Server::start(
        &[("example.com.zone", zones::TCP)],
        &format!(
            "tcp_idle_timeout_secs = 120\ntcp_query_timeout_secs = 30\n\
             tcp_max_connections = {cap}\ntcp_max_per_client = {cap}"
        ),
    );
    // And this process needs as many for its ends of the connections.
    set_nofile_soft(hard);
    let pid = s.pid();
    let (server_soft, server_hard) = proc_nofile(pid);
    assert_eq!(
        server_soft, server_hard,
        "the server started with soft limit {stock} and did not raise it to the hard limit"
    );
    assert_eq!(server_hard, hard.to_string(), "the server's hard limit");

    // The reference: each question over UDP, checked, then every TCP answer must say the same.
    let expected: Vec<Said> = QUESTIONS
        .iter()
        .map(|(name, rtype)| said(&s.udp(name, *rtype)))
        .collect();
    assert_eq!(
        expected[0].answers,
        ["www.example.com. 300 IN A 192.0.2.80"]
    );
    assert_eq!(
        expected[1].answers,
        ["mail.example.com. 300 IN AAAA 2001:db8::25"]
    );
    assert_eq!(
        expected[2].answers,
        [
            "alias.example.com. 300 IN CNAME www.example.com.",
            "www.example.com. 300 IN A 192.0.2.80"
        ]
    );
    assert_eq!(expected[3].rcode, ResponseCode::NXDomain);
    assert!(
        expected[3].authority[0].contains("SOA"),
        "{:?}",
        expected[3]
    );
    assert!(expected.iter().all(|e| e.authoritative));
    // One TCP query too, so that nothing in the server starts lazily during the count.
    assert_eq!(
        said(&s.tcp(QUESTIONS[0].0, QUESTIONS[0].1)),
        expected[0],
        "a single TCP answer"
    );

    let threads_before = status_field(pid, "Threads");
    let rss_before = status_field(pid, "VmRSS");
    let fds_before = open_fds(pid);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sampler = ThreadSampler::start(pid);
    let started = Instant::now();
    let done = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(180), async {
            let streams = connect_all(s.addr, n).await;
            query_all(streams).await
        })
        .await
        .expect("all connections set up and answered within 180 s")
    });
    let elapsed = started.elapsed();
    let (threads_min, threads_max) = sampler.finish();

    // Every connection is still open here (idle timeout 120 s): the server holds them all.
    let threads_during = status_field(pid, "Threads");
    let rss_during = status_field(pid, "VmRSS");
    let fds_during = open_fds(pid);

    let mut answered = 0usize;
    for (k, (_, ids, got)) in done.iter().enumerate() {
        let by_id: HashMap<u16, Message> = got
            .iter()
            .map(|bytes| {
                let m = Message::from_vec(bytes).expect("response parses");
                (m.metadata.id, m)
            })
            .collect();
        assert_eq!(by_id.len(), QUESTIONS.len(), "connection {k}: distinct ids");
        for (i, id) in ids.iter().enumerate() {
            let m = by_id
                .get(id)
                .unwrap_or_else(|| panic!("connection {k}: no answer with id {id}"));
            assert_eq!(
                said(m),
                expected[i],
                "connection {k}, query {i} ({:?}): TCP and UDP answers differ",
                QUESTIONS[i]
            );
            answered += 1;
        }
    }
    assert_eq!(answered, n * QUESTIONS.len());
    let held = server_connections(pid, s.addr.port());
    assert_eq!(
        held, n,
        "connections the server holds while all {n} are open"
    );
    assert_eq!(
        (threads_min, threads_max, threads_during),
        (
            threads_before as usize,
            threads_before as usize,
            threads_before
        ),
        "server threads (min, max while connecting and querying; with all {n} open) \
         must stay at the {threads_before} it had before"
    );
    // With all of them open, the server still answers a newcomer.
    assert_eq!(said(&s.tcp(QUESTIONS[1].0, QUESTIONS[1].1)), expected[1]);

    // Close every connection: the server lets go of them and keeps serving.
    drop(done);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_connections(pid, s.addr.port()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = server_connections(pid, s.addr.port());
    assert_eq!(
        left, 0,
        "connections the server holds 10 s after the clients closed"
    );
    let fds_after = open_fds(pid);
    let rss_after = status_field(pid, "VmRSS");
    let threads_after = status_field(pid, "Threads");
    assert!(s.is_running(), "server died");
    assert_eq!(said(&s.udp(QUESTIONS[0].0, QUESTIONS[0].1)), expected[0]);

    eprintln!(
        "tcp_many: {n} concurrent connections x {} pipelined queries = {answered} answered in \
         {:.2} s; server fd limit soft {stock} at start -> {server_soft} (hard {server_hard}); \
         server threads {threads_before} before, {threads_min}..{threads_max} while connecting \
         and querying, {threads_during} with all open, {threads_after} after; \
         server VmRSS {rss_before} kB before, {rss_during} kB with all open, {rss_after} kB \
         after close; server fds {fds_before} before, {fds_during} with all open ({held} of them \
         its connections), {fds_after} after",
        QUESTIONS.len(),
        elapsed.as_secs_f64(),
    );
}
