//! TSIG (RFC 8945) with HMAC-SHA256: verifying a request's signature, signing responses
//! (one message, or a chain of messages for zone transfers, §5.3.1), and signing the
//! requests we send (NOTIFY). Only messages that carry a TSIG record come here; the plain
//! query path never does.

use ring::hmac;

use super::name::{read_lower, to_text};
use super::{HEADER_LEN, class, rcode, rtype, u16_at};

/// `hmac-sha256.` in wire form.
pub const ALGORITHM: &[u8] = b"\x0bhmac-sha256\x00";
/// Seconds of clock skew allowed (RFC 8945 §10 recommends 300).
pub const FUDGE: u16 = 300;
const MAC_LEN: usize = 32;
/// Shortest truncated MAC accepted (RFC 8945 §5.2.2.1: at least half the output, and 10).
const MIN_MAC_LEN: usize = 16;

use rcode::{BADKEY, BADSIG, BADTIME};

/// A TSIG key ready for signing and verifying.
#[derive(Clone)]
pub struct TsigKey {
    /// Lowercase wire form of the key name (the TSIG record's owner).
    pub name: Box<[u8]>,
    pub key: ring::hmac::Key,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("TsigKey")
            .field("name", &to_text(&self.name))
            .finish_non_exhaustive()
    }
}

fn u48_at(b: &[u8], p: usize) -> Option<u64> {
    let s = b.get(p..p + 6)?;
    Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64))
}

/// The TSIG record of a request, as verified.
#[derive(Debug, Clone)]
pub struct RequestTsig {
    /// Index of the key in the key list [`verify`] was given, when the name and algorithm are known.
    pub key: Option<usize>,
    pub key_name: Vec<u8>,
    pub algorithm: Vec<u8>,
    pub mac: Vec<u8>,
    pub time_signed: u64,
    pub original_id: u16,
    /// 0, or BADKEY, BADSIG, BADTIME: what the response must say.
    pub error: u16,
}

/// Parses the TSIG record at `at` (the last record of `msg`) and checks it: key, MAC, time
/// (in that order, RFC 8945 §5.2). `None`: the record itself is malformed (FORMERR).
pub fn verify(keys: &[TsigKey], msg: &[u8], at: usize, now: u64) -> Option<RequestTsig> {
    verify_with(keys, msg, at, now, None)
}

/// [`verify`] for a response to a signed request of ours: its MAC covers our request's MAC
/// first (RFC 8945 §4.3.1).
pub fn verify_response(
    keys: &[TsigKey],
    msg: &[u8],
    at: usize,
    now: u64,
    request_mac: &[u8],
) -> Option<RequestTsig> {
    verify_with(keys, msg, at, now, Some(request_mac))
}

/// Where the TSIG record of `msg` starts, if its last record is one.
pub fn find(msg: &[u8]) -> Option<usize> {
    let count = |i: usize| u16_at(msg, 4 + 2 * i).map(usize::from);
    let mut pos = HEADER_LEN;
    for _ in 0..count(0)? {
        pos = super::name::end_compressed(msg, pos)? + 4;
    }
    let records = count(1)? + count(2)? + count(3)?;
    let mut last = None;
    for _ in 0..records {
        last = Some(pos);
        let end = super::name::end_compressed(msg, pos)?;
        pos = end + 10 + usize::from(u16_at(msg, end + 8)?);
    }
    let last = last?;
    let end = super::name::end_compressed(msg, last)?;
    (pos == msg.len() && u16_at(msg, end)? == rtype::TSIG).then_some(last)
}

fn verify_with(
    keys: &[TsigKey],
    msg: &[u8],
    at: usize,
    now: u64,
    prior_mac: Option<&[u8]>,
) -> Option<RequestTsig> {
    let (key_name, pos) = read_lower(msg, at)?;
    if u16_at(msg, pos)? != rtype::TSIG || u16_at(msg, pos + 2)? != class::ANY {
        return None;
    }
    let rdlen = u16_at(msg, pos + 8)? as usize;
    let rdata_start = pos + 10;
    if rdata_start + rdlen != msg.len() {
        return None;
    }
    let (algorithm, p) = read_lower(msg, rdata_start)?;
    let time_signed = u48_at(msg, p)?;
    let fudge = u16_at(msg, p + 6)?;
    let mac_len = u16_at(msg, p + 8)? as usize;
    let mac = msg.get(p + 10..p + 10 + mac_len)?.to_vec();
    let q = p + 10 + mac_len;
    let original_id = u16_at(msg, q)?;
    let error = u16_at(msg, q + 2)?;
    let other_len = u16_at(msg, q + 4)? as usize;
    let other = msg.get(q + 6..q + 6 + other_len)?;
    if q + 6 + other_len != msg.len() {
        return None;
    }
    let mut out = RequestTsig {
        key: None,
        key_name,
        algorithm,
        mac,
        time_signed,
        original_id,
        error: 0,
    };
    let key = match keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.name[..] == out.key_name[..])
    {
        Some((i, k)) if out.algorithm == ALGORITHM => {
            out.key = Some(i);
            k
        }
        _ => {
            out.error = BADKEY;
            return Some(out);
        }
    };
    if out.mac.len() < MIN_MAC_LEN || out.mac.len() > MAC_LEN {
        out.error = BADSIG;
        return Some(out);
    }
    let arcount = u16_at(msg, 10)?.checked_sub(1)?;
    let mut ctx = hmac::Context::with_key(&key.key);
    if let Some(prior) = prior_mac {
        ctx.update(&(prior.len() as u16).to_be_bytes());
        ctx.update(prior);
    }
    ctx.update(&original_id.to_be_bytes());
    ctx.update(&msg[2..10]);
    ctx.update(&arcount.to_be_bytes());
    ctx.update(&msg[HEADER_LEN..at]);
    variables(&mut ctx, &out.key_name, time_signed, fudge, error, other);
    let tag = ctx.sign();
    if !constant_time_eq(&tag.as_ref()[..out.mac.len()], &out.mac) {
        out.error = BADSIG;
        return Some(out);
    }
    if now.abs_diff(time_signed) > fudge as u64 {
        out.error = BADTIME;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The TSIG variables of RFC 8945 §4.3.3 (key name and algorithm in canonical form).
fn variables(
    ctx: &mut hmac::Context,
    key_name: &[u8],
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) {
    ctx.update(key_name);
    ctx.update(&class::ANY.to_be_bytes());
    ctx.update(&0u32.to_be_bytes());
    ctx.update(ALGORITHM);
    timers(ctx, time, fudge);
    ctx.update(&error.to_be_bytes());
    ctx.update(&(other.len() as u16).to_be_bytes());
    ctx.update(other);
}

fn timers(ctx: &mut hmac::Context, time: u64, fudge: u16) {
    ctx.update(&time.to_be_bytes()[2..]);
    ctx.update(&fudge.to_be_bytes());
}

/// Signs a sequence of messages with one key: a request, a response, or every message of a
/// multi-message response (each after the first chains the previous MAC and covers only
/// the timers, RFC 8945 §5.3.1).
#[derive(Debug, Clone)]
pub struct Signer {
    key: TsigKey,
    /// The request's MAC for the first response message; then our previous MAC.
    prev_mac: Vec<u8>,
    original_id: u16,
    first: bool,
    error: u16,
    /// BADTIME answers carry the request's time and our clock in "other data".
    request_time: Option<u64>,
}

impl Signer {
    /// For the response(s) to a verified request.
    pub fn for_response(key: &TsigKey, request: &RequestTsig) -> Self {
        Self {
            key: key.clone(),
            prev_mac: request.mac.clone(),
            original_id: request.original_id,
            first: true,
            error: request.error,
            request_time: (request.error == BADTIME).then_some(request.time_signed),
        }
    }

    /// For a request we send (NOTIFY) with this message id.
    pub fn for_request(key: &TsigKey, id: u16) -> Self {
        Self {
            key: key.clone(),
            prev_mac: Vec::new(),
            original_id: id,
            first: true,
            error: 0,
            request_time: None,
        }
    }

    /// The MAC of the last message signed (a request's, to check its response with).
    pub fn last_mac(&self) -> &[u8] {
        &self.prev_mac
    }

    /// Bytes the TSIG record adds to a message.
    pub fn record_len(&self) -> usize {
        let other = if self.request_time.is_some() { 6 } else { 0 };
        self.key.name.len() + 10 + ALGORITHM.len() + 16 + MAC_LEN + other
    }

    /// Signs the complete message `buf[..len]` (counts final) and appends the TSIG record,
    /// which needs [`Self::record_len`] bytes of room after `len`. Returns the new length.
    pub fn sign(&mut self, buf: &mut [u8], len: usize, now: u64) -> usize {
        let (time, other) = match self.request_time {
            Some(t) => (t, &now.to_be_bytes()[2..]),
            None => (now, &[][..]),
        };
        let mut ctx = hmac::Context::with_key(&self.key.key);
        if !self.prev_mac.is_empty() {
            ctx.update(&(self.prev_mac.len() as u16).to_be_bytes());
            ctx.update(&self.prev_mac);
        }
        ctx.update(&buf[..len]);
        if self.first {
            variables(&mut ctx, &self.key.name, time, FUDGE, self.error, other);
        } else {
            timers(&mut ctx, time, FUDGE);
        }
        let tag = ctx.sign();
        let mac = tag.as_ref();
        let end = write_record(
            buf,
            len,
            &self.key.name,
            time,
            mac,
            self.original_id,
            self.error,
            other,
        );
        self.prev_mac = mac.to_vec();
        self.first = false;
        end
    }
}

/// Appends a TSIG record at `len` and counts it in ARCOUNT; returns the new length.
#[allow(clippy::too_many_arguments)]
fn write_record(
    buf: &mut [u8],
    len: usize,
    key_name: &[u8],
    time: u64,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) -> usize {
    let mut p = len;
    let mut put = |bytes: &[u8]| {
        buf[p..p + bytes.len()].copy_from_slice(bytes);
        p += bytes.len();
    };
    put(key_name);
    put(&rtype::TSIG.to_be_bytes());
    put(&class::ANY.to_be_bytes());
    put(&0u32.to_be_bytes());
    let rdlen = ALGORITHM.len() + 16 + mac.len() + other.len();
    put(&(rdlen as u16).to_be_bytes());
    put(ALGORITHM);
    put(&time.to_be_bytes()[2..]);
    put(&FUDGE.to_be_bytes());
    put(&(mac.len() as u16).to_be_bytes());
    put(mac);
    put(&original_id.to_be_bytes());
    put(&error.to_be_bytes());
    put(&(other.len() as u16).to_be_bytes());
    put(other);
    let arcount = u16::from_be_bytes([buf[10], buf[11]]).saturating_add(1);
    buf[10..12].copy_from_slice(&arcount.to_be_bytes());
    p
}

/// Room an unsigned error TSIG (BADKEY, BADSIG) needs.
fn unsigned_len(request: &RequestTsig) -> usize {
    request.key_name.len() + 10 + ALGORITHM.len() + 16
}

/// Ends an error response to a request whose TSIG failed: rcode::NOTAUTH with the TSIG error,
/// unsigned for BADKEY and BADSIG, signed for BADTIME (RFC 8945 §5.2). `buf[..len]` holds
/// the response so far (header and question). Returns the new length.
pub fn finish_error(
    keys: &[TsigKey],
    request: &RequestTsig,
    buf: &mut [u8],
    len: usize,
    now: u64,
) -> usize {
    buf[3] = (buf[3] & 0xF0) | rcode::NOTAUTH;
    match request.key.and_then(|k| keys.get(k)) {
        Some(key) if request.error == BADTIME => {
            let mut s = Signer::for_response(key, request);
            s.sign(buf, len, now)
        }
        _ => write_record(
            buf,
            len,
            &request.key_name,
            now,
            &[],
            request.original_id,
            request.error,
            &[],
        ),
    }
}

/// Room [`finish_error`] may need.
pub fn error_len(request: &RequestTsig) -> usize {
    unsigned_len(request) + MAC_LEN + 6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TsigKey {
        TsigKey {
            name: b"\x03xfr\x00".to_vec().into_boxed_slice(),
            key: hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef"),
        }
    }

    fn keys() -> Vec<TsigKey> {
        vec![key()]
    }

    fn query() -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\xfc\x00\x01");
        q
    }

    #[test]
    fn a_signed_request_verifies_and_tampering_fails() {
        let now = 1_700_000_000;
        let mut q = query();
        let len = q.len();
        let mut s = Signer::for_request(&key(), 0xABCD);
        q.resize(len + s.record_len(), 0);
        let n = s.sign(&mut q, len, now);
        q.truncate(n);
        let v = verify(&keys(), &q, len, now + 10).expect("well formed");
        assert_eq!((v.error, v.key), (0, Some(0)));
        // Clock skew beyond the fudge.
        let v = verify(&keys(), &q, len, now + 301).expect("well formed");
        assert_eq!(v.error, BADTIME);
        // One bit of the question changed.
        let mut bad = q.clone();
        bad[14] ^= 0x20;
        assert_eq!(
            verify(&keys(), &bad, len, now).map(|v| v.error),
            Some(BADSIG)
        );
        // Unknown key.
        assert_eq!(verify(&[], &q, len, now).map(|v| v.error), Some(BADKEY));
        // The id may change in transit (original id is what was signed).
        let mut moved = q.clone();
        moved[0] = 0;
        assert_eq!(verify(&keys(), &moved, len, now).map(|v| v.error), Some(0));
    }
}
