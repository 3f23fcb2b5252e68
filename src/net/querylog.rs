//! The optional query log: one query in `sample` is copied (request and response bytes, a
//! fixed-size record) into a bounded lock-free queue; a thread of its own decodes the
//! records and appends one line each to a file. The query path never formats, allocates,
//! writes or waits: when the queue is full the record is dropped and counted.
//!
//! The file is reopened when it is moved or removed (logrotate without copytruncate). With
//! `format = "dnstap"` the writer sends dnstap frames to the file or a unix socket.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::config::{QueryLogConfig, QueryLogFormat};
use crossbeam_queue::ArrayQueue;

use crate::dns::Transport;

/// Bytes kept of each request and response (our largest UDP answer); longer (TCP) responses
/// are logged from their first part, and left out of dnstap.
const KEEP: usize = 1232;
/// How often the writer drains the queue and checks the file.
const TICK: Duration = Duration::from_millis(200);

/// One sampled query, copied as bytes: decoding waits for the writer thread.
struct Record {
    time: SystemTime,
    source: IpAddr,
    transport: Transport,
    request_len: u16,
    request: [u8; KEEP],
    response_len: u16,
    /// The full response length (more than KEEP when cut).
    response_full: u16,
    response: [u8; KEEP],
}

/// Written and dropped record counts, for /metrics.
#[derive(Debug, Default)]
pub struct QueryLogStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

/// The handle the query path holds (cheap to clone).
#[derive(Clone)]
pub struct QueryLog {
    queue: Arc<ArrayQueue<Box<Record>>>,
    /// Spare records the writer hands back, so the query path does not allocate.
    spare: Arc<ArrayQueue<Box<Record>>>,
    pub stats: Arc<QueryLogStats>,
    sample: u32,
    /// Queries seen by [`QueryLog::offer_shared`] (TCP, where no thread owns a sampler).
    shared_count: Arc<AtomicU64>,
    /// Set when a reload replaced this log: the writer drains the queue and exits.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Per-thread sampling: counts down to the next logged query.
pub struct Sampler {
    log: QueryLog,
    countdown: u32,
}

impl QueryLog {
    /// Opens the file and starts the writer thread.
    pub fn start(config: &QueryLogConfig) -> std::io::Result<Self> {
        let output = Output::open(config)?;
        let queue = Arc::new(ArrayQueue::new(config.queue));
        let spare = Arc::new(ArrayQueue::new(config.queue));
        // Records are allocated up front, so the query path only moves boxes around.
        for _ in 0..config.queue {
            let _ = spare.push(Box::new(Record {
                time: SystemTime::UNIX_EPOCH,
                source: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                transport: Transport::Udp,
                request_len: 0,
                request: [0; KEEP],
                response_len: 0,
                response_full: 0,
                response: [0; KEEP],
            }));
        }
        let log = Self {
            queue,
            spare,
            stats: Arc::new(QueryLogStats::default()),
            sample: config.sample,
            shared_count: Arc::new(AtomicU64::new(0)),
            stop: Default::default(),
        };
        let identity = config
            .identity
            .clone()
            .unwrap_or_else(crate::config::host_name)
            .into_bytes();
        let writer = Writer {
            log: log.clone(),
            format: config.format,
            identity,
            output,
        };
        std::thread::Builder::new()
            .name("meridian-querylog".into())
            .spawn(move || writer.run())?;
        Ok(log)
    }

    /// Tells the writer to finish what is queued and stop (the log was replaced).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn sampler(&self) -> Sampler {
        Sampler {
            log: self.clone(),
            countdown: self.sample,
        }
    }

    /// Sampling for callers without a [`Sampler`] of their own (one atomic add).
    pub fn offer_shared(
        &self,
        source: IpAddr,
        transport: Transport,
        request: &[u8],
        response: &[u8],
    ) {
        let n = self.shared_count.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(u64::from(self.sample)) {
            self.record(source, transport, request, response);
        }
    }

    /// Queues one query; never blocks. Dropped (and counted) when the writer is behind.
    fn record(&self, source: IpAddr, transport: Transport, request: &[u8], response: &[u8]) {
        let Some(mut r) = self.spare.pop() else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        r.time = SystemTime::now();
        r.source = source;
        r.transport = transport;
        let n = request.len().min(KEEP);
        r.request[..n].copy_from_slice(&request[..n]);
        r.request_len = n as u16;
        let m = response.len().min(KEEP);
        r.response[..m].copy_from_slice(&response[..m]);
        r.response_len = m as u16;
        r.response_full = response.len().min(usize::from(u16::MAX)) as u16;
        if let Err(r) = self.queue.push(r) {
            let _ = self.spare.push(r);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Sampler {
    /// Called for every answered query: one decrement unless this one is sampled.
    #[inline]
    pub fn offer(&mut self, source: IpAddr, transport: Transport, request: &[u8], response: &[u8]) {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.log.sample;
            self.log.record(source, transport, request, response);
        }
    }
}

fn open(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("query log {}: {e}", path.display())))
}

/// Where the writer puts its bytes: a file (reopened when moved) or, for dnstap, a Frame
/// Streams socket (reconnected when lost).
enum Output {
    File {
        path: PathBuf,
        out: std::io::BufWriter<std::fs::File>,
        dnstap: bool,
    },
    Socket {
        path: PathBuf,
        stream: Option<std::os::unix::net::UnixStream>,
    },
}

impl Output {
    fn open(config: &QueryLogConfig) -> std::io::Result<Self> {
        let dnstap = config.format == QueryLogFormat::Dnstap;
        match (&config.path, &config.socket) {
            (_, Some(socket)) => {
                let stream = super::dnstap::connect(socket).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("dnstap socket {}: {e}", socket.display()),
                    )
                })?;
                Ok(Output::Socket {
                    path: socket.clone(),
                    stream: Some(stream),
                })
            }
            (Some(path), None) => {
                let mut out = std::io::BufWriter::new(open(path)?);
                if dnstap {
                    let mut start = Vec::new();
                    super::dnstap::start_frame(&mut start);
                    out.write_all(&start)?;
                }
                Ok(Output::File {
                    path: path.clone(),
                    out,
                    dnstap,
                })
            }
            (None, None) => Err(std::io::Error::other("query log: no path")),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::File { out, .. } => out.write_all(bytes),
            Output::Socket { stream, .. } => match stream {
                Some(s) => s.write_all(bytes).inspect_err(|_| *stream = None),
                None => Err(std::io::Error::other("dnstap socket not connected")),
            },
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::File { out, .. } => out.flush(),
            Output::Socket { .. } => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Output::File { path, .. } | Output::Socket { path, .. } => path.display().to_string(),
        }
    }

    /// A moved file is let go for a new one at the path; a lost socket is dialled again.
    fn keep_up(&mut self) {
        match self {
            Output::File { path, out, dnstap } => {
                use std::os::unix::fs::MetadataExt;
                let current = out.get_ref().metadata().ok().map(|m| (m.dev(), m.ino()));
                let at_path = std::fs::metadata(&*path).ok().map(|m| (m.dev(), m.ino()));
                if current.is_some() && current == at_path {
                    return;
                }
                match open(path) {
                    Ok(f) => {
                        let _ = out.flush();
                        *out = std::io::BufWriter::new(f);
                        if *dnstap {
                            let mut start = Vec::new();
                            super::dnstap::start_frame(&mut start);
                            let _ = out.write_all(&start);
                        }
                    }
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            Output::Socket { path, stream } => {
                if stream.is_none() {
                    *stream = super::dnstap::connect(path).ok();
                }
            }
        }
    }

    /// The end: a dnstap file or socket gets its STOP frame.
    fn close(&mut self) {
        match self {
            Output::File { out, dnstap, .. } => {
                if *dnstap {
                    let mut stop = Vec::new();
                    super::dnstap::stop_frame(&mut stop);
                    let _ = out.write_all(&stop);
                }
                let _ = out.flush();
            }
            Output::Socket { stream, .. } => {
                if let Some(s) = stream.as_mut() {
                    super::dnstap::finish(s);
                }
            }
        }
    }
}

struct Writer {
    log: QueryLog,
    format: QueryLogFormat,
    /// dnstap's identity field.
    identity: Vec<u8>,
    output: Output,
}

impl Writer {
    fn run(mut self) {
        let mut line = String::with_capacity(512);
        let mut frames = Vec::with_capacity(4096);
        loop {
            let mut wrote = false;
            while let Some(r) = self.log.queue.pop() {
                frames.clear();
                if self.format == QueryLogFormat::Dnstap {
                    super::dnstap::frames(&exchange(&r), &self.identity, &mut frames);
                } else {
                    line.clear();
                    format_record(&r, self.format, &mut line);
                    line.push('\n');
                    frames.extend_from_slice(line.as_bytes());
                }
                let _ = self.log.spare.push(r);
                if let Err(e) = self.output.write(&frames) {
                    tracing::debug!("query log {}: {e}", self.output.describe());
                    self.log.stats.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.log.stats.written.fetch_add(1, Ordering::Relaxed);
                    wrote = true;
                }
            }
            if wrote && let Err(e) = self.output.flush() {
                tracing::warn!("query log {}: {e}", self.output.describe());
            }
            if self.log.stop.load(Ordering::Relaxed) && self.log.queue.is_empty() {
                self.output.close();
                return;
            }
            self.output.keep_up();
            std::thread::sleep(TICK);
        }
    }
}

/// A record as dnstap sees it: the response only when it was kept whole.
fn exchange(r: &Record) -> super::dnstap::Exchange<'_> {
    let response = &r.response[..usize::from(r.response_len)];
    super::dnstap::Exchange {
        time: r.time,
        client: r.source,
        transport: r.transport,
        query: &r.request[..usize::from(r.request_len)],
        response: (r.response_full == r.response_len).then_some(response),
    }
}

/// What a line says about one query, decoded from the copied bytes.
#[derive(serde::Serialize)]
struct Line {
    time: String,
    client: String,
    transport: &'static str,
    id: u16,
    name: String,
    qtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ecs: Option<String>,
    rcode: String,
    flags: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<u8>,
    answers: Vec<String>,
    size: u16,
}

fn format_record(r: &Record, format: QueryLogFormat, out: &mut String) {
    use std::fmt::Write as _;
    let line = decode(r);
    match format {
        QueryLogFormat::Json => {
            if let Ok(s) = serde_json::to_string(&line) {
                out.push_str(&s);
            }
        }
        // dnstap records are framed by the writer, never formatted as lines.
        QueryLogFormat::Text | QueryLogFormat::Dnstap => {
            let _ = write!(
                out,
                "{} client={} {} id={} {} {}",
                line.time, line.client, line.transport, line.id, line.name, line.qtype
            );
            if let Some(e) = &line.ecs {
                let _ = write!(out, " ecs={e}");
            }
            let _ = write!(out, " {} flags={}", line.rcode, line.flags);
            if let Some(s) = line.scope {
                let _ = write!(out, " scope={s}");
            }
            let _ = write!(
                out,
                " size={} answers=[{}]",
                line.size,
                line.answers.join(", ")
            );
        }
    }
}

fn decode(r: &Record) -> Line {
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};

    let request = &r.request[..usize::from(r.request_len)];
    let response = &r.response[..usize::from(r.response_len)];
    let time = humantime_utc(r.time);
    let transport = match r.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    let mut line = Line {
        time,
        client: r.source.to_string(),
        transport,
        id: request
            .get(..2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
        name: "-".into(),
        qtype: "-".into(),
        ecs: None,
        rcode: "-".into(),
        flags: String::new(),
        scope: None,
        answers: Vec::new(),
        size: r.response_full,
    };
    let ecs_of = |m: &Message| -> Option<ClientSubnet> {
        match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
            EdnsOption::Subnet(s) => Some(*s),
            _ => None,
        }
    };
    if let Ok(q) = Message::from_vec(request) {
        if let Some(question) = q.queries.first() {
            line.name = question.name().to_string();
            line.qtype = question.query_type().to_string();
        }
        line.ecs = ecs_of(&q).map(|s| format!("{}/{}", s.addr(), s.source_prefix()));
    }
    // A response cut at KEEP bytes does not decode; its header still tells the rcode.
    match Message::from_vec(response) {
        Ok(m) => {
            line.rcode = rcode_name(response);
            let mut flags = Vec::new();
            if m.metadata.authoritative {
                flags.push("aa");
            }
            if m.metadata.truncation {
                flags.push("tc");
            }
            line.flags = flags.join(",");
            line.scope = ecs_of(&m).map(|s| s.scope_prefix());
            line.answers = m.answers.iter().map(|rr| rr.to_string()).collect();
        }
        Err(_) => {
            line.rcode = rcode_name(response);
            line.flags = "cut".into();
        }
    }
    line
}

/// The mnemonic of a response's header rcode (as dig prints it).
fn rcode_name(response: &[u8]) -> String {
    match response.get(3).map(|b| u16::from(b & 0x0F)) {
        Some(i) => {
            crate::dns::rcode::mnemonic(i).map_or_else(|| format!("RCODE{i}"), str::to_string)
        }
        None => "-".into(),
    }
}

/// RFC 3339 UTC with milliseconds, without a date crate.
fn humantime_utc(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_315_815_123);
        assert_eq!(humantime_utc(t), "2026-11-22T02:50:15.123Z");
    }
}
