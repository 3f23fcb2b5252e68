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
