//! NOTIFY (RFC 1996): tell a zone's secondaries that its serial changed, at startup and
//! after each reload that changes it. One background task per secondary sends the NOTIFY
//! over UDP (signed with the zone's TSIG key, if it has one) and retries with a growing
//! timeout until a response arrives; the outcome is logged. Nothing here blocks a query or
//! a reload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustc_hash::FxHashMap;
use std::sync::Mutex;

use crate::dns::name::to_text;
use crate::dns::rtype;
use crate::dns::tsig::{self, Signer, TsigKey};
use std::sync::atomic::Ordering::Relaxed;

/// NOTIFY outcomes for /metrics: acknowledged, answered with an error, answers ignored for a
/// missing or wrong signature, and NOTIFYs given up.
pub static ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);
pub static REFUSED: AtomicU64 = AtomicU64::new(0);
pub static UNTRUSTED: AtomicU64 = AtomicU64::new(0);
pub static UNANSWERED: AtomicU64 = AtomicU64::new(0);
use crate::engine::Snapshot;
use crate::net::clock::unix_now;

const OPCODE_NOTIFY: u8 = 4;
/// Waits for a response before sending again: 1, 2, 4, 8, 8 seconds (RFC 1996 §3.6 leaves
/// the schedule to us; about 23 s in all).
const TIMEOUTS_SECS: [u64; 5] = [1, 2, 4, 8, 8];

/// Generation per (zone, secondary): a newer NOTIFY makes older retries stop.
type Generations = Mutex<FxHashMap<(Vec<u8>, SocketAddr), u64>>;

fn generations() -> &'static Generations {
    static G: std::sync::OnceLock<Generations> = std::sync::OnceLock::new();
    G.get_or_init(|| Mutex::new(FxHashMap::default()))
}
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn current(key: &(Vec<u8>, SocketAddr)) -> u64 {
    generations()
        .lock()
        .map(|g| g.get(key).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// Sends NOTIFY for every zone of `new` that has secondaries and whose serial differs from
/// `old` (all of them when `old` is `None`: startup). Must run inside the tokio runtime.
pub fn send_changed(old: Option<&Snapshot>, new: &Arc<Snapshot>) {
    for (origin, policy) in new.transfer.zones() {
        if policy.notify.is_empty() {
            continue;
        }
        let Some(zone) = new.zones.by_origin(origin) else {
            continue;
        };
        let serial = zone.serial();
        let unchanged = old
            .and_then(|o| o.zones.by_origin(origin))
            .is_some_and(|z| z.serial() == serial);
        if unchanged {
            continue;
        }
        let Some(soa) = zone.soa().filter(|s| !s.rdata.is_empty()) else {
            continue;
        };
        let key = policy.tsig.and_then(|i| new.transfer.keys.get(i)).cloned();
        for &target in &policy.notify {
            let job = Notify {
                origin: origin.to_vec(),
                soa_ttl: soa.ttl,
                soa: soa.rdata.first().unwrap_or_default().to_vec(),
                serial,
                key: key.clone(),
                target,
            };
            let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut g) = generations().lock() {
                g.insert((job.origin.clone(), target), generation);
            }
            tokio::spawn(job.run(generation));
        }
    }
}

struct Notify {
    origin: Vec<u8>,
    soa_ttl: u32,
    soa: Vec<u8>,
    serial: u32,
    key: Option<TsigKey>,
    target: SocketAddr,
}

impl Notify {
    /// The NOTIFY message: the zone's SOA as the question, the new SOA as the answer
    /// (RFC 1996 §3.7), AA set, TSIG-signed when the zone has a key.
    fn message(&self, id: u16) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut m = Vec::with_capacity(512);
        m.extend_from_slice(&id.to_be_bytes());
        m.push((OPCODE_NOTIFY << 3) | 0x04);
        m.push(0);
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0]);
        m.extend_from_slice(&self.origin);
        m.extend_from_slice(&rtype::SOA.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&rtype::SOA.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&self.soa_ttl.to_be_bytes());
        m.extend_from_slice(&(self.soa.len() as u16).to_be_bytes());
        m.extend_from_slice(&self.soa);
        let mut mac = None;
        if let Some(key) = &self.key {
            let mut s = Signer::for_request(key, id);
            let len = m.len();
            m.resize(len + s.record_len(), 0);
            let n = s.sign(&mut m, len, unix_now());
            m.truncate(n);
            mac = Some(s.last_mac().to_vec());
        }
        (m, mac)
    }

    /// Whether the answer `r` to our NOTIFY (signed with `mac`, if signed) may be believed:
    /// a signed NOTIFY needs a response signed with the same key (RFC 8945 §5.3).
    fn trusted(&self, r: &[u8], mac: Option<&[u8]>) -> Result<(), &'static str> {
        let (Some(key), Some(mac)) = (&self.key, mac) else {
            return Ok(());
        };
        let at = tsig::find(r).ok_or("the answer is not signed")?;
        let keys = std::slice::from_ref(key);
        match tsig::verify_response(keys, r, at, unix_now(), mac) {
            Some(v) if v.error == 0 => Ok(()),
            _ => Err("the answer's signature does not verify"),
        }
    }

    async fn run(self, generation: u64) {
        let zone = to_text(&self.origin);
        let target = self.target;
        let bind: SocketAddr = if target.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = match tokio::net::UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(zone, %target, "NOTIFY: cannot open a UDP socket: {e}");
                return;
            }
        };
        if let Err(e) = socket.connect(target).await {
            tracing::warn!(zone, %target, "NOTIFY: {e}");
            return;
        }
        let key = (self.origin.clone(), target);
        let mut buf = vec![0u8; 4096];
        for (attempt, secs) in TIMEOUTS_SECS.iter().enumerate() {
            if current(&key) != generation {
                return; // a newer serial is being announced
            }
            let id: u16 = rand::random();
            let (msg, mac) = self.message(id);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(*secs);
            if let Err(e) = socket.send(&msg).await {
                tracing::debug!(zone, %target, attempt, "NOTIFY send: {e}");
            }
            loop {
                let got = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
                match got {
                    Err(_) => break, // timed out: send again
                    Ok(Err(e)) => {
                        // ICMP port unreachable and the like: wait out this attempt.
                        tracing::debug!(zone, %target, attempt, "NOTIFY: {e}");
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(n)) => {
                        let r = &buf[..n];
                        if n < 12
                            || r[..2] != id.to_be_bytes()
                            || r[2] & 0x80 == 0
                            || (r[2] >> 3) & 0xF != OPCODE_NOTIFY
                        {
                            continue; // not the answer to this NOTIFY
                        }
                        if let Err(why) = self.trusted(r, mac.as_deref()) {
                            // Not from the secondary we share the key with: keep waiting.
                            UNTRUSTED.fetch_add(1, Relaxed);
                            tracing::warn!(zone, %target, "NOTIFY answer ignored: {why}");
                            continue;
                        }
                        let rcode = r[3] & 0xF;
                        if rcode == 0 {
                            ACKNOWLEDGED.fetch_add(1, Relaxed);
                            tracing::info!(zone, %target, serial = self.serial, "NOTIFY acknowledged");
                        } else {
                            REFUSED.fetch_add(1, Relaxed);
                            tracing::warn!(zone, %target, serial = self.serial, rcode,
                                "NOTIFY answered with an error");
                        }
                        return;
                    }
                }
            }
        }
        UNANSWERED.fetch_add(1, Relaxed);
        tracing::warn!(
            zone,
            %target,
            serial = self.serial,
            tries = TIMEOUTS_SECS.len(),
            "NOTIFY not acknowledged; giving up"
        );
    }
}
