//! Response rate limiting, as BIND, Knot and NSD do it: each (client network, response)
//! pair has a token balance credited `rate` per second; a response that finds it empty is
//! dropped, except every `slip`-th one, which goes out truncated so a real client behind a
//! spoofed flood retries over TCP. NXDOMAIN answers are accounted by the parent of the name
//! (random-subdomain floods share one account) and errors by client network alone.
//!
//! One limiter per UDP thread, owned by it: SO_REUSEPORT keeps a client on one socket, so
//! no state is shared, no lock is taken, and nothing is allocated per query.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use rustc_hash::FxHasher;
use serde::Deserialize;

use crate::dns::name::{end_uncompressed, lower_into, name_buf};
use crate::dns::{HEADER_LEN, u16_at};
use crate::pages::{ZeroValid, ZeroedPages};

/// `[rrl]` in meridian.toml. A rate of 0 turns that kind of limiting off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// Identical answers per second to one client network.
    #[serde(default)]
    pub responses_per_second: u32,
    /// NXDOMAIN answers per second to one client network, per parent name.
    #[serde(default)]
    pub nxdomains_per_second: Option<u32>,
    /// Error answers (FORMERR, REFUSED, ...) per second to one client network.
    #[serde(default)]
    pub errors_per_second: Option<u32>,
    /// Seconds over which an account remembers excess (its debt is capped at rate × window).
    #[serde(default = "default_window")]
    pub window: u32,
    /// Every slip-th limited answer goes out truncated instead of being dropped; 0: never.
    #[serde(default = "default_slip")]
    pub slip: u32,
    #[serde(default = "default_v4_prefix")]
    pub ipv4_prefix: u8,
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix: u8,
    /// Networks never limited (monitoring, your own resolvers).
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// Accounts per UDP thread (a power of two is used).
    #[serde(default = "default_table")]
    pub table_size: usize,
}

fn default_window() -> u32 {
    15
}
fn default_slip() -> u32 {
    2
}
fn default_v4_prefix() -> u8 {
    24
}
fn default_v6_prefix() -> u8 {
    56
}
fn default_table() -> usize {
    1 << 16
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            responses_per_second: 0,
            nxdomains_per_second: None,
            errors_per_second: None,
            window: default_window(),
            slip: default_slip(),
            ipv4_prefix: default_v4_prefix(),
            ipv6_prefix: default_v6_prefix(),
            allow: Vec::new(),
            table_size: default_table(),
        }
    }
}

impl RrlConfig {
    pub fn enabled(&self) -> bool {
        self.responses_per_second > 0
            || self.nxdomains_per_second.is_some_and(|r| r > 0)
            || self.errors_per_second.is_some_and(|r| r > 0)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.ipv4_prefix > 32 || self.ipv6_prefix > 128 {
            return Err("rrl: ipv4_prefix is at most 32 and ipv6_prefix at most 128".into());
        }
        if self.window == 0 {
            return Err("rrl: window must be at least 1 second".into());
        }
        Ok(())
    }
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    /// Send a truncated (TC=1, empty) response instead.
    Slip,
}

/// Counters of limited responses, process-wide (touched only when limiting happens).
pub static LIMITED: AtomicU64 = AtomicU64::new(0);
pub static DROPPED: AtomicU64 = AtomicU64::new(0);
pub static SLIPPED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    key: u64,
    /// Tokens; negative is debt.
    balance: i64,
    /// Second of the last update.
    last: u32,
}

// SAFETY: integers only; all zero is the empty account (Account::default()).
unsafe impl ZeroValid for Account {}

/// What the response was, for accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Answer,
    NxDomain,
    Error,
}

pub struct RateLimiter {
    cfg: RrlConfig,
    /// Zeroed (an empty account) and mapped lazily: a table is megabytes per UDP thread,
    /// and only the pages that clients hash to become resident.
    accounts: ZeroedPages<Account>,
    mask: usize,
    slip_count: u32,
}

impl RateLimiter {
    pub fn new(cfg: RrlConfig) -> Self {
        let size = cfg.table_size.clamp(1024, 1 << 22).next_power_of_two();
        Self {
            cfg,
            accounts: ZeroedPages::new(size),
            mask: size - 1,
            slip_count: 0,
        }
    }

    fn rate(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Answer => self.cfg.responses_per_second,
            Kind::NxDomain => self
                .cfg
                .nxdomains_per_second
                .unwrap_or(self.cfg.responses_per_second),
            Kind::Error => self
                .cfg
                .errors_per_second
                .unwrap_or(self.cfg.responses_per_second),
        }
    }

    /// Accounts one response to `client`. `qname` is the lowercase wire name asked for.
    pub fn check(
        &mut self,
        now: u32,
        client: IpAddr,
        kind: Kind,
        qname: &[u8],
        qtype: u16,
    ) -> Verdict {
        let rate = self.rate(kind);
        if rate == 0 || self.cfg.allow.iter().any(|n| n.contains(&client)) {
            return Verdict::Send;
        }
        let mut h = FxHasher::default();
        match client {
            IpAddr::V4(a) => {
                let p = u32::from(self.cfg.ipv4_prefix.min(32));
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                (u32::from(a) & mask).hash(&mut h);
            }
            IpAddr::V6(a) => {
                let p = u32::from(self.cfg.ipv6_prefix.min(128));
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                (u128::from(a) & mask).hash(&mut h);
            }
        }
        (kind as u8).hash(&mut h);
        match kind {
            Kind::Answer => {
                qname.hash(&mut h);
                qtype.hash(&mut h);
            }
            // Random-subdomain floods: one account for all names under the same parent.
            Kind::NxDomain => crate::dns::name::parent(qname)
                .unwrap_or(qname)
                .hash(&mut h),
            Kind::Error => {}
        }
        let key = h.finish() | 1;
        let slot = &mut self.accounts[(key as usize) & self.mask];
        let rate = i64::from(rate);
        if slot.key != key {
            // A new account (or a collision evicting an old one) starts full.
            *slot = Account {
                key,
                balance: rate,
                last: now,
            };
        } else if now != slot.last {
            let elapsed = i64::from(now.wrapping_sub(slot.last).min(3600));
            slot.balance = (slot.balance + elapsed * rate).min(rate);
            slot.last = now;
        }
        slot.balance = (slot.balance - 1).max(-rate * i64::from(self.cfg.window));
        if slot.balance >= 0 {
            return Verdict::Send;
        }
        LIMITED.fetch_add(1, Ordering::Relaxed);
        if self.cfg.slip > 0 {
            self.slip_count += 1;
            if self.slip_count >= self.cfg.slip {
                self.slip_count = 0;
                SLIPPED.fetch_add(1, Ordering::Relaxed);
                return Verdict::Slip;
            }
        }
        DROPPED.fetch_add(1, Ordering::Relaxed);
        Verdict::Drop
    }
}

impl RateLimiter {
    /// The verdict for a finished response to `request`: its question (name lowercased,
    /// type) and its rcode decide the bucket.
    pub fn judge(&mut self, now: u32, source: IpAddr, request: &[u8], response: &[u8]) -> Verdict {
        let (qname, qtype) = match end_uncompressed(request, HEADER_LEN) {
            Some(end) => (&request[HEADER_LEN..end], u16_at(request, end).unwrap_or(0)),
            None => (&[][..], 0),
        };
        let mut key = name_buf();
        let key = lower_into(qname, &mut key);
        let rcode = response.get(3).map_or(0, |f| f & 0x0F);
        self.check(now, source, kind_of(rcode), key, qtype)
    }
}

/// The kind of a response from its rcode.
pub fn kind_of(rcode: u8) -> Kind {
    match rcode {
        0 => Kind::Answer,
        3 => Kind::NxDomain,
        _ => Kind::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RrlConfig {
            responses_per_second: rate,
            slip,
            allow: vec!["192.0.2.0/24".parse().expect("net")],
            ..RrlConfig::default()
        })
    }

    const NAME: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn limits_to_the_rate_then_refills() {
        let mut l = limiter(5, 0);
        let c: IpAddr = "198.51.100.7".parse().expect("ip");
        let sent = (0..20)
            .filter(|_| l.check(100, c, Kind::Answer, NAME, 1) == Verdict::Send)
            .count();
        assert_eq!(sent, 5);
        // Debt: one second of credit does not cover 15 excess responses.
        assert_eq!(l.check(101, c, Kind::Answer, NAME, 1), Verdict::Drop);
        // After the window, the account is full again.
        assert_eq!(l.check(200, c, Kind::Answer, NAME, 1), Verdict::Send);
    }

    #[test]
    fn slip_sends_every_nth_limited_response_truncated() {
        let mut l = limiter(1, 3);
        let c: IpAddr = "198.51.100.7".parse().expect("ip");
        let v: Vec<Verdict> = (0..7)
            .map(|_| l.check(5, c, Kind::Answer, NAME, 1))
            .collect();
        assert_eq!(v[0], Verdict::Send);
        assert_eq!(v[1..].iter().filter(|&&x| x == Verdict::Slip).count(), 2);
        assert_eq!(v[1..].iter().filter(|&&x| x == Verdict::Drop).count(), 4);
    }

    #[test]
    fn other_clients_names_and_allowlisted_networks_are_separate() {
        let mut l = limiter(2, 0);
        let a: IpAddr = "198.51.100.7".parse().expect("ip");
        let same_net: IpAddr = "198.51.100.99".parse().expect("ip");
        let b: IpAddr = "203.0.113.1".parse().expect("ip");
        let allowed: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..10 {
            l.check(1, a, Kind::Answer, NAME, 1);
        }
        assert_eq!(l.check(1, same_net, Kind::Answer, NAME, 1), Verdict::Drop);
        assert_eq!(l.check(1, b, Kind::Answer, NAME, 1), Verdict::Send);
        assert_eq!(l.check(1, a, Kind::Answer, NAME, 28), Verdict::Send);
        for _ in 0..100 {
            assert_eq!(l.check(1, allowed, Kind::Answer, NAME, 1), Verdict::Send);
        }
    }

    #[test]
    fn nxdomain_floods_share_the_parent_account() {
        let mut l = limiter(3, 0);
        let c: IpAddr = "198.51.100.7".parse().expect("ip");
        let sent = (0..10u8)
            .filter(|i| {
                let name = [1, b'a' + i, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0];
                l.check(1, c, Kind::NxDomain, &name, 1) == Verdict::Send
            })
            .count();
        assert_eq!(sent, 3);
    }
}
