//! What a health check probes, and probing it once. Each distinct [`CheckSpec`] is one
//! target, checked once however many endpoints and names share it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use crate::health::state::ProbeResult;
use crate::health::{CheckKind, CheckSpec};

/// Why a probe's client could not be built (checked at load too, so rare here).
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("ca_file {path}: {1}", path = .0.display())]
    CaFile(PathBuf, String),
    #[error("http client: {0}")]
    Client(reqwest::Error),
}

/// Why one probe failed: the reason logged and shown in `/status`.
#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    #[error("timeout after {0} ms")]
    Timeout(u128),
    #[error("connect: {0}")]
    Connect(String),
    #[error("no http client")]
    NoClient,
    #[error("{0}")]
    Http(String),
    #[error("status {0}")]
    Status(u16),
    #[error("body mismatch: {0:?} not in the first KiB")]
    BodyMismatch(String),
    #[error("{0}")]
    Dns(String),
    #[error("empty command")]
    EmptyCommand,
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("exit status {0}")]
    Exit(i32),
    #[error("{path}: {1}", path = .0.display())]
    File(PathBuf, String),
    #[error("{path} says {1}", path = .0.display())]
    FileSays(PathBuf, String),
    #[error("{path} is empty", path = .0.display())]
    FileEmpty(PathBuf),
}

/// Per-target state a probe keeps between runs (an HTTP client with its TLS settings).
pub struct Prober {
    spec: CheckSpec,
    http: Option<reqwest::Client>,
}

impl Prober {
    pub fn new(spec: CheckSpec) -> Result<Self, ProbeSetupError> {
        let http = match &spec.kind {
            CheckKind::Http {
                addr,
                host,
                insecure,
                ca_file,
                ..
            } => {
                let mut b = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(spec.timing.timeout)
                    .connect_timeout(spec.timing.timeout)
                    .no_proxy()
                    .user_agent(concat!("meridian-health/", env!("CARGO_PKG_VERSION")))
                    .tls_danger_accept_invalid_certs(*insecure)
                    .resolve(host, *addr);
                if let Some(ca) = ca_file {
                    let ca_error = |e: String| ProbeSetupError::CaFile(ca.clone(), e);
                    let pem = std::fs::read(ca).map_err(|e| ca_error(e.to_string()))?;
                    let certs = reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|e| ca_error(e.to_string()))?;
                    for c in certs {
                        b = b.add_root_certificate(c);
                    }
                }
                Some(b.build().map_err(ProbeSetupError::Client)?)
            }
            _ => None,
        };
        Ok(Self { spec, http })
    }

    pub fn spec(&self) -> &CheckSpec {
        &self.spec
    }

    /// Probes once; never takes longer than the timeout (plus scheduling).
    pub async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let timeout = self.spec.timing.timeout;
        let result = match tokio::time::timeout(timeout, self.run()).await {
            Ok(r) => r,
            Err(_) => Err(ProbeFailure::Timeout(timeout.as_millis())),
        };
        let latency = start.elapsed();
        match result {
            Ok(()) => ProbeResult::Ok { latency },
            Err(failure) => ProbeResult::Failed {
                reason: failure.to_string(),
                latency,
            },
        }
    }

    async fn run(&self) -> Result<(), ProbeFailure> {
        match &self.spec.kind {
            CheckKind::Tcp { addr } => {
                let mut s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| ProbeFailure::Connect(short_io(&e)))?;
                let _ = s.shutdown().await;
                Ok(())
            }
            CheckKind::Http {
                addr,
                tls,
                host,
                path,
                expect_status,
                body_contains,
                ..
            } => {
                let client = self.http.as_ref().ok_or(ProbeFailure::NoClient)?;
                // The host names the site (Host header, SNI); `resolve` sends it to `addr`.
                let url = format!(
                    "{}://{host}:{}{path}",
                    if *tls { "https" } else { "http" },
                    addr.port()
                );
                let mut resp = client.get(&url).send().await.map_err(http_error)?;
                let status = resp.status().as_u16();
                let accepted = if expect_status.is_empty() {
                    (200..300).contains(&status)
                } else {
                    expect_status.contains(&status)
                };
                if !accepted {
                    return Err(ProbeFailure::Status(status));
                }
                if let Some(needle) = body_contains {
                    let mut body = Vec::with_capacity(1024);
                    while body.len() < 1024 {
                        match resp.chunk().await.map_err(http_error)? {
                            Some(c) => body.extend_from_slice(&c),
                            None => break,
                        }
                    }
                    body.truncate(1024);
                    if !body
                        .windows(needle.len().max(1))
                        .any(|w| w == needle.as_bytes())
                    {
                        return Err(ProbeFailure::BodyMismatch(needle.clone()));
                    }
                }
                Ok(())
            }
            CheckKind::Dns {
                addr,
                qname,
                qtype,
                rcode,
                need_answer,
            } => dns_probe(*addr, qname, *qtype, *rcode, *need_answer).await,
            CheckKind::Exec { command } => {
                let (prog, args) = command.split_first().ok_or(ProbeFailure::EmptyCommand)?;
                let status = tokio::process::Command::new(prog)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .map_err(|e| ProbeFailure::Spawn(prog.clone(), e))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(ProbeFailure::Exit(status.code().unwrap_or(-1)))
                }
            }
            CheckKind::File { path } => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| ProbeFailure::File(path.clone(), short_io(&e)))?;
                match text.split_whitespace().next().map(str::to_ascii_lowercase) {
                    Some(s) if s == "up" || s == "ok" => Ok(()),
                    Some(s) => Err(ProbeFailure::FileSays(path.clone(), s)),
                    None => Err(ProbeFailure::FileEmpty(path.clone())),
                }
            }
        }
    }
}

fn short_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "refused".into(),
        std::io::ErrorKind::NotFound => "not found".into(),
        _ => e.to_string(),
    }
}

/// reqwest's errors nest; the innermost cause says what happened (refused, bad certificate).
fn http_error(e: reqwest::Error) -> ProbeFailure {
    let mut msg = if e.is_timeout() {
        "timeout".to_string()
    } else if e.is_connect() {
        "connect".to_string()
    } else {
        "request".to_string()
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        msg.push_str(": ");
        msg.push_str(&l);
    }
    ProbeFailure::Http(msg)
}

async fn dns_probe(
    addr: SocketAddr,
    qname: &str,
    qtype: u16,
    rcode: u8,
    need_answer: bool,
) -> Result<(), ProbeFailure> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use std::str::FromStr;

    let name = Name::from_str(qname).map_err(|e| ProbeFailure::Dns(format!("query name: {e}")))?;
    let id: u16 = rand::random();
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name, RecordType::from(qtype)));
    let bytes = m.to_vec().map_err(|e| ProbeFailure::Dns(e.to_string()))?;
    let bind = if addr.is_ipv4() {
        SocketAddr::from(([0u8; 4], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let sock = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| ProbeFailure::Dns(format!("bind: {e}")))?;
    sock.send_to(&bytes, addr)
        .await
        .map_err(|e| ProbeFailure::Dns(format!("send: {e}")))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = sock
            .recv_from(&mut buf)
            .await
            .map_err(|e| ProbeFailure::Dns(format!("receive: {}", short_io(&e))))?;
        if from != addr {
            continue;
        }
        let resp = Message::from_vec(&buf[..n])
            .map_err(|e| ProbeFailure::Dns(format!("bad response: {e}")))?;
        if resp.metadata.id != id {
            continue;
        }
        let got = u16::from(resp.metadata.response_code);
        if got != u16::from(rcode) {
            return Err(ProbeFailure::Dns(format!(
                "rcode {}",
                resp.metadata.response_code
            )));
        }
        if need_answer && resp.answers.is_empty() {
            return Err(ProbeFailure::Dns("no answer".into()));
        }
        return Ok(());
    }
}
