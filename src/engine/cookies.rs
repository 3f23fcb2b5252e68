//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): version 1, a
//! timestamp, and SipHash-2-4 over the client cookie, that header and the client's address,
//! keyed by a secret every instance behind one anycast address shares, so that any of them
//! accepts a cookie another one made. A second secret is accepted during a rotation.
//!
//! A query with a valid server cookie is one whose source address answered us before: rate
//! limiting lets it through, and where it would slip a response, a client that sent a
//! cookie gets BADCOOKIE with a fresh one instead (RFC 7873 §5.2.3), so it can retry
//! verified.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use siphasher::sip::SipHasher24;

use super::Request;
use super::packet::WholeCookie;
use crate::dns::wire::{self, OptOut, Writer};
use crate::dns::{HEADER_LEN, rcode};

/// Accepted server cookies are at most this old (RFC 9018 §4.3: one hour) ...
const MAX_AGE: u64 = 3600;
/// ... and at most this far in the future (clock differences between instances).
const MAX_AHEAD: u64 = 300;

/// The secrets: the current one makes and checks cookies, the previous one only checks.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecrets {
    pub current: [u8; 16],
    pub previous: Option<[u8; 16]>,
}

impl std::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieSecrets(..)")
    }
}

/// What a query's COOKIE option says about its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieState {
    /// No COOKIE option.
    Absent,
    /// A client cookie alone (a first contact).
    ClientOnly,
    /// A server cookie we (or a sibling with the same secret) made for this address.
    Valid,
    /// A server cookie that is not valid (another secret, too old, another address).
    Invalid,
}

/// Cookie outcomes for /metrics: client only, valid, invalid, BADCOOKIE sent.
pub static CLIENT_ONLY: AtomicU64 = AtomicU64::new(0);
pub static VALID: AtomicU64 = AtomicU64::new(0);
pub static INVALID: AtomicU64 = AtomicU64::new(0);
pub static BADCOOKIE_SENT: AtomicU64 = AtomicU64::new(0);

/// The RFC 9018 server cookie for `client` at `source`, made at `time` (Unix seconds).
pub fn server_cookie(secret: &[u8; 16], client: &[u8], source: IpAddr, time: u32) -> [u8; 16] {
    let mut cookie = [0u8; 16];
    cookie[0] = 1;
    cookie[4..8].copy_from_slice(&time.to_be_bytes());
    let hash = cookie_hash(secret, client, &cookie[..8], source);
    cookie[8..].copy_from_slice(&hash);
    cookie
}

/// SipHash-2-4 over the client cookie, the server cookie's first 8 octets (version,
/// reserved, timestamp: as received, RFC 9018 §4.4) and the client's address.
fn cookie_hash(secret: &[u8; 16], client: &[u8], header: &[u8], source: IpAddr) -> [u8; 8] {
    let mut input = [0u8; 8 + 8 + 16];
    input[..8].copy_from_slice(client);
    input[8..16].copy_from_slice(header);
    let n = match source {
        IpAddr::V4(a) => {
            input[16..20].copy_from_slice(&a.octets());
            20
        }
        IpAddr::V6(a) => {
            input[16..32].copy_from_slice(&a.octets());
            32
        }
    };
    let mut h = SipHasher24::new_with_key(secret);
    std::hash::Hasher::write(&mut h, &input[..n]);
    // SipHash's 64-bit result goes out in its own (little-endian) byte order, as the
    // reference implementation and BIND, Knot and Unbound write it.
    std::hash::Hasher::finish(&h).to_le_bytes()
}

/// Checks a query's cookie; `now` in Unix seconds. Counts the outcome when `count`.
pub fn check(
    secrets: &CookieSecrets,
    client: &[u8],
    server: &[u8],
    source: IpAddr,
    now: u64,
) -> CookieState {
    if server.is_empty() {
        return CookieState::ClientOnly;
    }
    if server.len() != 16 || server[0] != 1 {
        return CookieState::Invalid;
    }
    let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    // Serial number arithmetic over 32 bits (RFC 1982), as RFC 9018 §4.3 asks.
    let age = (now as u32).wrapping_sub(stamp);
    let fresh = u64::from(age) <= MAX_AGE || u64::from(age.wrapping_neg()) <= MAX_AHEAD;
    if !fresh {
        return CookieState::Invalid;
    }
    let matches =
        |secret: &[u8; 16]| cookie_hash(secret, client, &server[..8], source) == server[8..];
    if matches(&secrets.current) || secrets.previous.as_ref().is_some_and(matches) {
        CookieState::Valid
    } else {
        CookieState::Invalid
    }
}

/// The state of a request's cookie (none configured or no option: `Absent`).
pub fn state(
    secrets: Option<&CookieSecrets>,
    request: &Request<'_>,
    edns: &wire::Edns,
) -> CookieState {
    match (secrets, edns.cookie(request.bytes)) {
        (Some(s), Some((client, server))) => check(s, client, server, request.source, request.now),
        _ => CookieState::Absent,
    }
}

/// Whether `message` ends with a COOKIE option of a client cookie and a 16-byte server
/// cookie (code 10, length 24): a response that carries one (the writer puts COOKIE last in
/// the OPT record, and OPT last in the message), or a query sent so (as resolvers do).
#[inline(always)]
pub(super) fn ends_with_cookie(message: &[u8]) -> bool {
    let n = message.len();
    n >= 28 && message[n - 28..n - 24] == [0, 10, 0, 24]
}

/// Whether the query behind `response` proved its source with a valid server cookie: for
/// the UDP shell's rate limiting. Only a response that carries a cookie (the writer puts
/// the COOKIE option last in the OPT record, and OPT last in the message) has its query
/// parsed and checked again; every other response costs one comparison.
pub fn verified(secrets: Option<&CookieSecrets>, request: &Request<'_>, response: &[u8]) -> bool {
    if secrets.is_none() || !ends_with_cookie(response) {
        return false;
    }
    wire::parse_query(request.bytes)
        .ok()
        .and_then(|q| q.edns)
        .is_some_and(|e| state(secrets, request, &e) == CookieState::Valid)
}

/// Puts the COOKIE option of the response into `opt`: the client cookie and a fresh server
/// cookie; counts the outcome.
#[inline]
pub(super) fn answer(
    secrets: Option<&CookieSecrets>,
    request: &Request<'_>,
    edns: &wire::Edns,
    opt: &mut OptOut<'_>,
) {
    let (Some(secrets), Some((client, server))) = (secrets, edns.cookie(request.bytes)) else {
        return;
    };
    check_and_count(secrets, client, server, request);
    opt.cookie = Some(response_cookie(secrets, client, request));
}

/// [`check`]s the cookie of `request` (`client`, and `server`, empty when none) and counts
/// the outcome for /metrics.
fn check_and_count(secrets: &CookieSecrets, client: &[u8], server: &[u8], request: &Request<'_>) {
    let counter = match check(secrets, client, server, request.source, request.now) {
        CookieState::Valid => &VALID,
        CookieState::Invalid => &INVALID,
        _ => &CLIENT_ONLY,
    };
    counter.fetch_add(1, Relaxed);
}

/// Makes the server cookie of a response replayed whole (`engine::packet`) for `request`:
/// the response ends with its COOKIE option (the client cookie, which the query's bytes
/// matched, and the server cookie made for the query it was kept from), and the query with
/// its own ([`WholeCookie`]). Checks and counts the query's cookie as [`answer`] does.
/// `false` (nothing written) when cookies are off.
pub(super) fn refresh_replayed(
    secrets: Option<&CookieSecrets>,
    request: &Request<'_>,
    kind: WholeCookie,
    response: &mut [u8],
) -> bool {
    let (Some(secrets), Some(at)) = (secrets, response.len().checked_sub(24)) else {
        return false;
    };
    let (head, server_out) = response.split_at_mut(at + 8);
    let client = &head[at..];
    let q = request.bytes;
    let server_in = match kind {
        WholeCookie::WithServer => q.get(q.len().saturating_sub(16)..).unwrap_or(&[]),
        _ => &[],
    };
    check_and_count(secrets, client, server_in, request);
    let made = server_cookie(&secrets.current, client, request.source, request.now as u32);
    server_out.copy_from_slice(&made);
    true
}

fn response_cookie(secrets: &CookieSecrets, client: &[u8], request: &Request<'_>) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(client);
    out[8..].copy_from_slice(&server_cookie(
        &secrets.current,
        client,
        request.source,
        request.now as u32,
    ));
    out
}

/// A BADCOOKIE response to `request` (question, OPT with a fresh cookie) in `response`,
/// for a client that sent a cookie but no valid server cookie; `None` otherwise.
pub fn bad_cookie(
    secrets: Option<&CookieSecrets>,
    request: &Request<'_>,
    response: &mut [u8],
) -> Option<usize> {
    let secrets = secrets?;
    let query = wire::parse_query(request.bytes).ok()?;
    let edns = query.edns?;
    let (client, _) = edns.cookie(request.bytes)?;
    if state(Some(secrets), request, &edns) == CookieState::Valid {
        return None;
    }
    let question = request
        .bytes
        .get(HEADER_LEN..HEADER_LEN + query.qname.len() + 4)?;
    let mut w = Writer::new(
        response,
        query.id,
        query.opcode,
        query.recursion_desired,
        question,
        512,
    );
    // 23 = extended 1 (in OPT) << 4 | 7 (in the header).
    let code = rcode::BADCOOKIE;
    w.set_rcode((code & 0x0F) as u8);
    let opt = OptOut {
        udp_size: edns.udp_size.max(512),
        extended_rcode: (code >> 4) as u8,
        cookie: Some(response_cookie(secrets, client, request)),
        ..OptOut::default()
    };
    w.reserve_opt(&opt);
    BADCOOKIE_SENT.fetch_add(1, Relaxed);
    Some(w.finish(Some(&opt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 9018 Appendix A: the published server cookies.
    #[test]
    fn rfc_9018_test_vectors() {
        let secret: [u8; 16] = hex("e5e973e5a6b2a43f48e7dc849e37bfcf")
            .try_into()
            .expect("16");
        let client = hex("2464c4abcf10c957");
        let source: IpAddr = "198.51.100.100".parse().expect("addr");
        // A.1 and A.2: made by us.
        assert_eq!(
            server_cookie(&secret, &client, source, 1_559_731_985).to_vec(),
            hex("010000005cf79f111f8130c3eee29480")
        );
        assert_eq!(
            server_cookie(&secret, &client, source, 1_559_734_385).to_vec(),
            hex("010000005cf7a871d4a564a1442aca77")
        );
        // A.3: a cookie with reserved octets set by its maker checks as received.
        let secrets = CookieSecrets {
            current: secret,
            previous: None,
        };
        let cookie = hex("01abcdef5cf78f71a314227b6679ebf5");
        let from: IpAddr = "203.0.113.203".parse().expect("addr");
        let client = hex("fc93fc62807ddb86");
        assert_eq!(
            check(&secrets, &client, &cookie, from, 1_559_727_985),
            CookieState::Valid
        );
        let other: IpAddr = "203.0.113.204".parse().expect("addr");
        assert_eq!(
            check(&secrets, &client, &cookie, other, 1_559_727_985),
            CookieState::Invalid
        );
        // A.4: IPv6, a secret rolled over: the old cookie checks with the previous secret.
        let old: [u8; 16] = hex("dd3bdf9344b678b185a6f5cb60fca715")
            .try_into()
            .expect("16");
        let new: [u8; 16] = hex("445536bcd2513298075a5d379663c962")
            .try_into()
            .expect("16");
        let client = hex("22681ab97d52c298");
        let source: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().expect("addr");
        assert_eq!(
            server_cookie(&new, &client, source, 1_559_741_961).to_vec(),
            hex("010000005cf7c609a6bb79d16625507a")
        );
        let cookie = hex("010000005cf7c57926556bd0934c72f8");
        let rolled = CookieSecrets {
            current: new,
            previous: Some(old),
        };
        assert_eq!(
            check(&rolled, &client, &cookie, source, 1_559_741_961),
            CookieState::Valid
        );
        let only_new = CookieSecrets {
            current: new,
            previous: None,
        };
        assert_eq!(
            check(&only_new, &client, &cookie, source, 1_559_741_961),
            CookieState::Invalid
        );
    }

    #[test]
    fn validity_window_secrets_and_address() {
        let a = CookieSecrets {
            current: [7; 16],
            previous: None,
        };
        let client = [1u8; 8];
        let src: IpAddr = "192.0.2.1".parse().expect("addr");
        let made = server_cookie(&a.current, &client, src, 1_000_000);
        assert_eq!(
            check(&a, &client, &made, src, 1_000_010),
            CookieState::Valid
        );
        assert_eq!(
            check(&a, &client, &made, src, 1_003_601),
            CookieState::Invalid
        );
        assert_eq!(check(&a, &client, &made, src, 999_800), CookieState::Valid);
        assert_eq!(
            check(&a, &client, &made, src, 999_000),
            CookieState::Invalid
        );
        let other: IpAddr = "192.0.2.2".parse().expect("addr");
        assert_eq!(
            check(&a, &client, &made, other, 1_000_010),
            CookieState::Invalid
        );
        // After a rotation the old secret still checks, and only as previous.
        let rotated = CookieSecrets {
            current: [9; 16],
            previous: Some([7; 16]),
        };
        assert_eq!(
            check(&rotated, &client, &made, src, 1_000_010),
            CookieState::Valid
        );
        let fresh = CookieSecrets {
            current: [9; 16],
            previous: None,
        };
        assert_eq!(
            check(&fresh, &client, &made, src, 1_000_010),
            CookieState::Invalid
        );
        assert_eq!(check(&a, &client, &[], src, 1), CookieState::ClientOnly);
    }
}
