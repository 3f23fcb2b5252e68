//! `meridian probe`: one query every interval to one server, each one's fate on a line (sent
//! at, rcode or timeout, round trip, answers), and a summary. `dig` in a loop costs a process
//! per query and waits for each answer; this keeps sending while answers are outstanding, so
//! a failover shows up as the exact run of lost queries and the time until answers resume.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::Message;

use crate::dns::iana::rcode;
use crate::dns::wire::build_query;
use crate::explain::{Question, QuestionError};

/// What to send, how often and for how long.
pub struct ProbePlan {
    pub server: SocketAddr,
    pub name: String,
    pub rtype: String,
    /// `ADDR/PREFIX` sent as EDNS Client Subnet.
    pub subnet: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Queries to send; the run ends after the last one is answered or timed out.
    pub count: u32,
    /// What changes from query to query (load generation for cache-miss benchmarks).
    pub vary: Vary,
    /// No line per query, only the summary.
    pub quiet: bool,
    /// Set the DO bit (DNSSEC OK): signed zones answer with signatures.
    pub dnssec: bool,
}

/// Sets DO in the OPT record of a query built by `build_query` for a name `qname_len` long.
fn set_dnssec_ok(query: &mut [u8], qname_len: usize) {
    // Header, question, then the OPT record: root name, type, class (payload size), and in
    // the TTL field extended rcode, version, then the flags whose top bit is DO.
    if let Some(flags) = query.get_mut(12 + qname_len + 4 + 7) {
        *flags |= 0x80;
    }
}

/// What each query varies, so that no answer cache can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vary {
    #[default]
    Nothing,
    /// A random IPv4 /24 as EDNS Client Subnet in every query.
    Subnet,
    /// A random 12-letter label in front of the name in every query.
    Label,
    /// The name's letters in a random case in every query, as a resolver that randomizes
    /// it (0x20) asks: the same question in other bytes.
    Case,
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Question(#[from] QuestionError),
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("interval and timeout must be above zero, count at least 1")]
    Plan,
}

/// The fate of one query.
enum Fate {
    Answered {
        rcode: u16,
        rtt: Duration,
        answers: String,
    },
    Lost,
}

/// Counts over a run, for the summary.
#[derive(Default)]
pub struct ProbeSummary {
    pub sent: u32,
    pub answered: u32,
    pub lost: u32,
    /// Answered with a code other than NOERROR or NXDOMAIN.
    pub errors: u32,
    rtts_us: Vec<u64>,
}

impl ProbeSummary {
    fn rtt_ms(&self, quantile: f64) -> f64 {
        if self.rtts_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.rtts_us.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() - 1) as f64 * quantile).round() as usize;
        sorted[i] as f64 / 1000.0
    }

    /// One line: sent, answered, lost, errors, round trips.
    pub fn line(&self) -> String {
        format!(
            "sent {} answered {} lost {} errors {} rtt_ms min {:.2} median {:.2} max {:.2}",
            self.sent,
            self.answered,
            self.lost,
            self.errors,
            self.rtt_ms(0.0),
            self.rtt_ms(0.5),
            self.rtt_ms(1.0)
        )
    }
}

/// Query `id` of a run: the question, varied as the plan says with the random bits `rng`.
fn next_query(
    plan: &ProbePlan,
    key: &[u8],
    rtype: u16,
    ecs: Option<(IpAddr, u8)>,
    id: u16,
    rng: u64,
) -> Vec<u8> {
    let mut qname_len = key.len();
    let mut query = match plan.vary {
        Vary::Nothing => build_query(id, key, rtype, true, ecs),
        Vary::Subnet => {
            let [a, b, c, ..] = rng.to_be_bytes();
            let subnet = Some((IpAddr::from([a, b, c, 0]), 24));
            build_query(id, key, rtype, true, subnet)
        }
        Vary::Label => {
            let mut name = Vec::with_capacity(13 + key.len());
            name.push(12);
            name.extend((0..12).map(|i| b'a' + ((rng >> (i * 5)) % 26) as u8));
            name.extend_from_slice(key);
            qname_len = name.len();
            build_query(id, &name, rtype, true, ecs)
        }
        Vary::Case => {
            let name: Vec<u8> = key
                .iter()
                .enumerate()
                .map(|(i, &b)| match (rng >> (i % 64)) & 1 {
                    1 => b.to_ascii_uppercase(),
                    _ => b.to_ascii_lowercase(),
                })
                .collect();
            build_query(id, &name, rtype, true, ecs)
        }
    };
    if plan.dnssec {
        set_dnssec_ok(&mut query, qname_len);
    }
    query
}

/// Runs `plan`, writing one line per query to `out`:
/// `<unix ms sent> <sequence> <rcode|timeout> <rtt ms|-> <answers, comma-separated|->`.
pub fn run(plan: &ProbePlan, out: &mut impl Write) -> Result<ProbeSummary, ProbeError> {
    if plan.interval.is_zero() || plan.timeout.is_zero() || plan.count == 0 {
        return Err(ProbeError::Plan);
    }
    let unspecified = if plan.server.is_ipv4() {
        IpAddr::from([0u8; 4])
    } else {
        IpAddr::from([0u16; 8])
    };
    let client = plan.subnet.as_deref().unwrap_or(match unspecified {
        IpAddr::V4(_) => "0.0.0.0/0",
        IpAddr::V6(_) => "::/0",
    });
    let question = Question::parse(&plan.name, &plan.rtype, client)?;
    let ecs = plan
        .subnet
        .as_ref()
        .map(|_| (question.address, question.prefix));
    let socket = UdpSocket::bind(SocketAddr::new(unspecified, 0))?;
    socket.connect(plan.server)?;
    socket.set_read_timeout(Some(Duration::from_millis(1)))?;

    let start = Instant::now();
    let wall_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Outstanding queries: (sequence, sent at). The id is the sequence's low 16 bits plus a
    // per-run base, so answers to an earlier run on the same port do not match.
    let base = (wall_start.subsec_nanos() & 0xffff) as u16;
    let mut outstanding: Vec<(u32, Instant)> = Vec::new();
    let mut summary = ProbeSummary::default();
    let mut buf = [0u8; 65535];
    let mut next = 0u32;
    // A fixed seed: the same run sends the same queries.
    let mut rng = 0x6d65_7269_6469_616eu64;
    let deadline = plan.interval * plan.count + plan.timeout + Duration::from_secs(1);
    while (next < plan.count || !outstanding.is_empty()) && start.elapsed() < deadline {
        let due = start + plan.interval * next;
        if next < plan.count && Instant::now() >= due {
            let id = base.wrapping_add(next as u16);
            rng = crate::routing::splitmix(rng);
            let query = next_query(plan, &question.key, u16::from(question.rtype), ecs, id, rng);
            // A send error (no route yet) is a lost query, reported like one.
            let _ = socket.send(&query);
            outstanding.push((next, Instant::now()));
            summary.sent += 1;
            next += 1;
        }
        if let Ok(n) = socket.recv(&mut buf)
            && let Ok(msg) = Message::from_vec(&buf[..n])
        {
            let seq = u32::from(msg.metadata.id.wrapping_sub(base));
            if let Some(i) = outstanding.iter().position(|(s, _)| *s & 0xffff == seq) {
                let (seq, sent) = outstanding.swap_remove(i);
                let answers = msg
                    .answers
                    .iter()
                    .map(|r| r.data.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let fate = Fate::Answered {
                    rcode: u16::from(msg.metadata.response_code),
                    rtt: sent.elapsed(),
                    answers,
                };
                report(
                    out,
                    wall_start + (sent - start),
                    seq,
                    fate,
                    &mut summary,
                    plan.quiet,
                )?;
            }
        }
        while let Some(i) = outstanding
            .iter()
            .position(|(_, sent)| sent.elapsed() >= plan.timeout)
        {
            let (seq, sent) = outstanding.swap_remove(i);
            report(
                out,
                wall_start + (sent - start),
                seq,
                Fate::Lost,
                &mut summary,
                plan.quiet,
            )?;
        }
    }
    for (seq, sent) in std::mem::take(&mut outstanding) {
        report(
            out,
            wall_start + (sent - start),
            seq,
            Fate::Lost,
            &mut summary,
            plan.quiet,
        )?;
    }
    Ok(summary)
}

/// Writes one query's line; `sent` is its send time since the Unix epoch.
fn report(
    out: &mut impl Write,
    sent: Duration,
    seq: u32,
    fate: Fate,
    summary: &mut ProbeSummary,
    quiet: bool,
) -> Result<(), ProbeError> {
    let sent_ms = sent.as_millis();
    match fate {
        Fate::Answered {
            rcode: code,
            rtt,
            answers,
        } => {
            summary.answered += 1;
            if code != u16::from(rcode::NOERROR) && code != u16::from(rcode::NXDOMAIN) {
                summary.errors += 1;
            }
            summary.rtts_us.push(rtt.as_micros() as u64);
            let name = rcode::mnemonic(code)
                .map(str::to_string)
                .unwrap_or_else(|| format!("RCODE{code}"));
            if quiet {
                return Ok(());
            }
            let answers = if answers.is_empty() { "-" } else { &answers };
            writeln!(
                out,
                "{sent_ms} {seq} {name} {:.2} {answers}",
                rtt.as_secs_f64() * 1000.0
            )?;
        }
        Fate::Lost => {
            summary.lost += 1;
            if quiet {
                return Ok(());
            }
            writeln!(out, "{sent_ms} {seq} timeout - -")?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_varied_case_spells_the_same_name_otherwise() {
        let plan = ProbePlan {
            server: SocketAddr::from(([127, 0, 0, 1], 53)),
            name: "www.example.com".into(),
            rtype: "A".into(),
            subnet: None,
            interval: Duration::from_millis(1),
            timeout: Duration::from_millis(1),
            count: 1,
            vary: Vary::Case,
            quiet: true,
            dnssec: false,
        };
        let key = b"\x03www\x07example\x03com\x00";
        let one = next_query(&plan, key, 1, None, 7, 0x5555_5555_5555_5555);
        let other = next_query(&plan, key, 1, None, 7, 0x2aaa_aaaa_aaaa_aaaa);
        assert_ne!(one, other);
        assert!(one.eq_ignore_ascii_case(&other));
        assert!(one[12..12 + key.len()].eq_ignore_ascii_case(key));
    }
}
