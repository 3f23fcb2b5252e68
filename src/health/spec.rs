//! What a health check probes and how often: the check definition, shared by the routing
//! tables (which endpoint uses which check) and the monitor that runs it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How often, how patiently, and with which thresholds a target is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive successes to come up.
    pub rise: u32,
    /// Consecutive failures to go down.
    pub fall: u32,
    /// State before the first result.
    pub initially_up: bool,
}

impl Timing {
    /// Worst case from a target's failure to the last probe that notices it:
    /// fall × interval + timeout.
    pub fn detection_bound(&self) -> Duration {
        self.interval * self.fall + self.timeout
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// A TCP handshake.
    Tcp { addr: SocketAddr },
    /// An HTTP or HTTPS GET.
    Http {
        addr: SocketAddr,
        tls: bool,
        host: String,
        path: String,
        expect_status: Vec<u16>,
        /// Must occur in the first KiB of the body.
        body_contains: Option<String>,
        /// Skip certificate verification.
        insecure: bool,
        /// Extra trusted CA certificates (PEM).
        ca_file: Option<PathBuf>,
    },
    /// A DNS query over UDP that must get this rcode (and an answer, when asked).
    Dns {
        addr: SocketAddr,
        qname: String,
        qtype: u16,
        rcode: u8,
        need_answer: bool,
    },
    /// A command; exit status 0 is up.
    Exec { command: Vec<String> },
    /// A file whose content says `up` or `down` (missing: down).
    File { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub timing: Timing,
}

impl CheckSpec {
    /// A fingerprint of what the check tests and how often, the address it probes left
    /// out (instances may reach a backend by different addresses): instances whose
    /// fingerprints differ run different checks, and do not count each other's votes.
    /// Stable across processes and hosts (FNV-1a over a canonical text).
    pub fn definition(&self) -> String {
        let kind = match &self.kind {
            CheckKind::Tcp { .. } => "tcp".to_string(),
            CheckKind::Http {
                tls,
                host,
                path,
                expect_status,
                body_contains,
                insecure,
                ..
            } => format!(
                "http tls={tls} host={host} path={path} expect={expect_status:?} body={body_contains:?} insecure={insecure}"
            ),
            CheckKind::Dns {
                qname,
                qtype,
                rcode,
                need_answer,
                ..
            } => format!("dns {qname} {qtype} rcode={rcode} answer={need_answer}"),
            CheckKind::Exec { command } => format!("exec {command:?}"),
            // The file's name only: instances keep their config in different directories.
            CheckKind::File { path } => format!("file {:?}", path.file_name()),
        };
        let t = &self.timing;
        let text = format!(
            "{kind} interval={:?} timeout={:?} rise={} fall={}",
            t.interval, t.timeout, t.rise, t.fall
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// A short human description: `https://192.0.2.10:443/health (Host www.example.com)`.
    pub fn describe(&self) -> String {
        match &self.kind {
            CheckKind::Tcp { addr } => format!("tcp {addr}"),
            CheckKind::Http {
                addr,
                tls,
                host,
                path,
                ..
            } => format!(
                "{}://{addr}{path} (Host {host})",
                if *tls { "https" } else { "http" }
            ),
            CheckKind::Dns {
                addr, qname, qtype, ..
            } => format!("dns {addr} {qname} type {qtype}"),
            CheckKind::Exec { command } => format!("exec {}", command.join(" ")),
            CheckKind::File { path } => format!("file {}", path.display()),
        }
    }
}
