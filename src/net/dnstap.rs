//! dnstap (dnstap.info): each sampled query as an AUTH_QUERY and an AUTH_RESPONSE message,
//! protobuf-encoded, in Frame Streams, to a file or a unix socket (the bidirectional
//! handshake: READY, ACCEPT, START ... STOP, FINISH). Encoded by the query log's writer
//! thread, never on the query path.
//!
//! The encoding is written here: the schema is five fields of one message, and a protobuf
//! crate would want a build step (protoc) for it.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::dns::Transport;

pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

const CONTROL_ACCEPT: u32 = 1;
const CONTROL_START: u32 = 2;
const CONTROL_STOP: u32 = 3;
const CONTROL_READY: u32 = 4;
const CONTROL_FINISH: u32 = 5;
const FIELD_CONTENT_TYPE: u32 = 1;

/// A control frame: escape, length, type, and the content type field when given.
pub fn control_frame(kind: u32, content_type: Option<&[u8]>, out: &mut Vec<u8>) {
    let fields = content_type.map_or(0, |c| 8 + c.len());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&((4 + fields) as u32).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    if let Some(c) = content_type {
        out.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
}

/// The frames a file starts and ends with.
pub fn start_frame(out: &mut Vec<u8>) {
    control_frame(CONTROL_START, Some(CONTENT_TYPE), out);
}

pub fn stop_frame(out: &mut Vec<u8>) {
    control_frame(CONTROL_STOP, None, out);
}

/// One sampled query and its response.
pub struct Exchange<'a> {
    pub time: SystemTime,
    pub client: IpAddr,
    pub transport: Transport,
    pub query: &'a [u8],
    /// `None` when the response was too long to keep whole.
    pub response: Option<&'a [u8]>,
}

/// Appends the two data frames (AUTH_QUERY, AUTH_RESPONSE) of `x`, written in one pass
/// (every length is computed first: no scratch buffer, no allocation once `out` is warm).
pub fn frames(x: &Exchange<'_>, identity: &[u8], out: &mut Vec<u8>) {
    let since = x
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let (v4, v6);
    let (family, addr): (u64, &[u8]) = match x.client {
        IpAddr::V4(a) => {
            v4 = a.octets();
            (1, &v4)
        }
        IpAddr::V6(a) => {
            v6 = a.octets();
            (2, &v6)
        }
    };
    let protocol = if x.transport == Transport::Tcp { 2 } else { 1 };
    let secs = since.as_secs();
    for (kind, message) in [(1u64, Some(x.query)), (2, x.response)] {
        // Message: type, family, protocol (1 + 1 octets each), address, seconds, nanos,
        // the DNS message.
        let mut m_len = 2 * 3 + 2 + addr.len() + 1 + varint_len(secs) + 5;
        if let Some(msg) = message {
            m_len += 1 + varint_len(msg.len() as u64) + msg.len();
        }
        let frame_len = 1
            + varint_len(identity.len() as u64)
            + identity.len()
            + 1
            + varint_len(VERSION.len() as u64)
            + VERSION.len()
            + 1
            + varint_len(m_len as u64)
            + m_len
            + 2;
        out.reserve(4 + frame_len);
        out.extend_from_slice(&(frame_len as u32).to_be_bytes());
        bytes_field(1, identity, out);
        bytes_field(2, VERSION, out);
        key(14, 2, out);
        varint(m_len as u64, out);
        let before = out.len();
        varint_field(1, kind, out);
        varint_field(2, family, out);
        varint_field(3, protocol, out);
        bytes_field(4, addr, out);
        let (sec_field, nsec_field, msg_field) = if kind == 1 { (8, 9, 10) } else { (12, 13, 14) };
        varint_field(sec_field, secs, out);
        fixed32_field(nsec_field, since.subsec_nanos(), out);
        if let Some(msg) = message {
            bytes_field(msg_field, msg, out);
        }
        debug_assert_eq!(out.len() - before, m_len);
        varint_field(15, 1, out);
    }
}

const VERSION: &[u8] = concat!("meridian ", env!("CARGO_PKG_VERSION")).as_bytes();

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn key(field: u64, wire_type: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire_type, out);
}

#[inline]
fn bytes_field(field: u64, b: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

#[inline]
fn varint_field(field: u64, v: u64, out: &mut Vec<u8>) {
    key(field, 0, out);
    varint(v, out);
}

#[inline]
fn fixed32_field(field: u64, v: u32, out: &mut Vec<u8>) {
    key(field, 5, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A Frame Streams writer connected to a unix socket: READY sent, ACCEPT read, START sent.
pub fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut hello = Vec::new();
    control_frame(CONTROL_READY, Some(CONTENT_TYPE), &mut hello);
    s.write_all(&hello)?;
    let kind = read_control(&mut s)?;
    if kind != CONTROL_ACCEPT {
        return Err(std::io::Error::other(format!(
            "dnstap collector answered control frame {kind}, not ACCEPT"
        )));
    }
    let mut start = Vec::new();
    start_frame(&mut start);
    s.write_all(&start)?;
    Ok(s)
}

/// Ends a socket session: STOP, then the collector's FINISH (not waited for long).
pub fn finish(s: &mut UnixStream) {
    let mut stop = Vec::new();
    stop_frame(&mut stop);
    if s.write_all(&stop).is_ok() {
        let _ = read_control(s).map(|k| k == CONTROL_FINISH);
    }
}

/// Reads one control frame; its type.
fn read_control(s: &mut UnixStream) -> std::io::Result<u32> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)?;
    if head[..4] != [0; 4] {
        return Err(std::io::Error::other("expected a control frame"));
    }
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if !(4..=512).contains(&len) {
        return Err(std::io::Error::other("control frame of a bad length"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_add_up() {
        let x = Exchange {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            client: "2001:db8::1".parse().expect("addr"),
            transport: Transport::Tcp,
            query: &[7u8; 200],
            response: Some(&[9u8; 300]),
        };
        let mut out = Vec::new();
        frames(&x, b"id", &mut out);
        let first = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
        let second_at = 4 + first;
        let second = u32::from_be_bytes([
            out[second_at],
            out[second_at + 1],
            out[second_at + 2],
            out[second_at + 3],
        ]) as usize;
        assert_eq!(second_at + 4 + second, out.len());
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(0), 1);
    }

    #[test]
    fn varints_and_frames() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
        let mut f = Vec::new();
        start_frame(&mut f);
        assert_eq!(f[..12], [0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 2]);
        assert_eq!(&f[20..], CONTENT_TYPE);
    }
}
