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

/// Appends the two data frames (AUTH_QUERY, AUTH_RESPONSE) of `x`.
pub fn frames(x: &Exchange<'_>, identity: &[u8], out: &mut Vec<u8>) {
    for (kind, message) in [(1u64, Some(x.query)), (2, x.response)] {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        dnstap(x, identity, kind, message, out);
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u64, wire_type: u64, out: &mut Vec<u8>) {
    varint((field << 3) | wire_type, out);
}

fn bytes_field(field: u64, b: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

fn varint_field(field: u64, v: u64, out: &mut Vec<u8>) {
    key(field, 0, out);
    varint(v, out);
}

fn fixed32_field(field: u64, v: u32, out: &mut Vec<u8>) {
    key(field, 5, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// `Dnstap { identity = 1, version = 2, message = 14, type = 15 (MESSAGE) }`.
fn dnstap(x: &Exchange<'_>, identity: &[u8], kind: u64, message: Option<&[u8]>, out: &mut Vec<u8>) {
    bytes_field(1, identity, out);
    bytes_field(
        2,
        concat!("meridian ", env!("CARGO_PKG_VERSION")).as_bytes(),
        out,
    );
    let mut m = Vec::with_capacity(64 + x.query.len() + message.map_or(0, <[u8]>::len));
    encode_message(x, kind, message, &mut m);
    bytes_field(14, &m, out);
    varint_field(15, 1, out);
}

/// `Message`: type (AUTH_QUERY 1, AUTH_RESPONSE 2), socket family and protocol, the
/// client's address, times, and the DNS message.
fn encode_message(x: &Exchange<'_>, kind: u64, message: Option<&[u8]>, m: &mut Vec<u8>) {
    let since = x
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    varint_field(1, kind, m);
    let (family, addr): (u64, Vec<u8>) = match x.client {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    varint_field(2, family, m);
    varint_field(3, if x.transport == Transport::Tcp { 2 } else { 1 }, m);
    bytes_field(4, &addr, m);
    // The query's time on both: the response leaves within the same microseconds.
    let (sec_field, nsec_field, msg_field) = if kind == 1 { (8, 9, 10) } else { (12, 13, 14) };
    varint_field(sec_field, since.as_secs(), m);
    fixed32_field(nsec_field, since.subsec_nanos(), m);
    if let Some(msg) = message {
        bytes_field(msg_field, msg, m);
    }
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
    fn varints_and_frames() {
        let mut v = Vec::new();
        varint(300, &mut v);
        assert_eq!(v, [0xac, 0x02]);
        let mut f = Vec::new();
        start_frame(&mut f);
        assert_eq!(f[..12], [0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 2]);
        assert_eq!(&f[20..], CONTENT_TYPE);
    }
}
