//! The differential test's own DNS client: queries built byte by byte, answers read into
//! records normalized for comparison (owner and embedded names lowercased and decompressed).

use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use meridian::dns::class::IN;
use meridian::dns::rtype::{DNAME, DS, OPT};

use super::{Question, Transport};
use crate::common::{tcp_read, wire_name};

pub(super) fn encode_query(q: &Question, id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[if q.rd { 0x01 } else { 0 }, 0, 0, 1, 0, 0, 0, 0, 0]);
    m.push(u8::from(q.edns));
    m.extend_from_slice(&wire_name(&q.name));
    m.extend_from_slice(&q.qtype.to_be_bytes());
    m.extend_from_slice(&IN.to_be_bytes());
    if q.edns {
        // OPT: root owner, payload 1232, no flags, no options.
        m.push(0);
        m.extend_from_slice(&OPT.to_be_bytes());
        m.extend_from_slice(&1232u16.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    m
}

pub(super) fn udp_exchange(
    addr: SocketAddr,
    msg: &[u8],
    timeout: Duration,
    tries: usize,
) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    for _ in 0..tries {
        sock.send_to(msg, addr).ok()?;
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 65535];
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) if n >= 2 && buf[..2] == msg[..2] => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    None
}

fn tcp_exchange(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).ok()?;
    tcp_read(&mut s)
}

pub(super) fn ask(addr: SocketAddr, q: &Question, id: u16) -> Result<Response, String> {
    let msg = encode_query(q, id);
    let raw = match q.transport {
        Transport::Udp => udp_exchange(addr, &msg, Duration::from_secs(2), 3),
        Transport::Tcp => tcp_exchange(addr, &msg),
    }
    .ok_or_else(|| "no answer".to_string())?;
    let r = parse_response(&raw)?;
    if r.id != id {
        return Err(format!("answer id {} for query id {id}", r.id));
    }
    Ok(r)
}

/// One record, normalized for comparison.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) struct Rr {
    pub(super) owner: String,
    pub(super) rtype: u16,
    pub(super) class: u16,
    pub(super) ttl: u32,
    /// Uncompressed, names in it lowercased.
    pub(super) rdata: Vec<u8>,
}

impl std::fmt::Display for Rr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = match self.class {
            IN => "IN".to_string(),
            c => format!("CLASS{c}"),
        };
        write!(
            f,
            "{} {} {} {} {}",
            self.owner,
            self.ttl,
            class,
            type_name(self.rtype),
            rdata_text(self.rtype, &self.rdata)
        )
    }
}

pub(super) fn type_name(t: u16) -> String {
    match t {
        DNAME => "DNAME".into(),
        DS => "DS".into(),
        _ => match RecordType::from(t) {
            RecordType::Unknown(n) => format!("TYPE{n}"),
            rt => rt.to_string(),
        },
    }
}

fn rdata_text(rtype: u16, rdata: &[u8]) -> String {
    let generic = || {
        let hex: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
        format!("\\# {} {hex}", rdata.len())
    };
    if rtype == DNAME {
        return read_name(rdata, 0).map_or_else(generic, |(n, _)| name_text(&n));
    }
    if matches!(RecordType::from(rtype), RecordType::Unknown(_)) || rdata.is_empty() {
        return generic();
    }
    let mut d = BinDecoder::new(rdata);
    match RData::read(
        &mut d,
        RecordType::from(rtype),
        Restrict::new(rdata.len() as u16),
    ) {
        Ok(rd) if d.is_empty() => rd.to_string(),
        _ => generic(),
    }
}

fn name_text(wire: &[u8]) -> String {
    let mut s = String::new();
    let mut pos = 0;
    while let Some(&l) = wire.get(pos) {
        if l == 0 {
            break;
        }
        for &b in &wire[pos + 1..pos + 1 + l as usize] {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' => {
                    s.push('\\');
                    s.push(b as char);
                }
                0x21..=0x7e => s.push(b as char),
                _ => {
                    let _ = write!(s, "\\{b:03}");
                }
            }
        }
        s.push('.');
        pos += 1 + l as usize;
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// A possibly compressed name at `pos`: (lowercase uncompressed wire, position after it).
pub(crate) fn read_name(msg: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let l = *msg.get(pos)?;
        match l {
            0 => {
                out.push(0);
                return Some((out, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = msg.get(pos + 1..pos + 1 + l as usize)?;
                out.push(l);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                pos += 1 + l as usize;
            }
            0xC0..=0xFF => {
                let lo = *msg.get(pos + 1)?;
                end.get_or_insert(pos + 2);
                pos = (((l & 0x3F) as usize) << 8) | lo as usize;
            }
            _ => return None,
        }
    }
    None
}

/// RDATA with embedded names expanded and lowercased, for the types whose names a server
/// may compress (RFC 1035's, and those RFC 3597 §4 lists for decompression).
pub(crate) fn normalize_rdata(msg: &[u8], start: usize, len: usize, rtype: u16) -> Option<Vec<u8>> {
    let end = start + len;
    let raw = msg.get(start..end)?;
    // (fixed octets before the names, names, character-strings between)
    let (prefix, names, strings) = match rtype {
        // NS MD MF CNAME MB MG MR PTR DNAME
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | 39 => (0, 1, 0),
        // SOA MINFO RP
        6 | 14 | 17 => (0, 2, 0),
        // MX AFSDB RT KX
        15 | 18 | 21 | 36 => (2, 1, 0),
        26 => (2, 2, 0),
        33 => (6, 1, 0),
        35 => (4, 1, 3),
        24 => (18, 1, 0),
        _ => return Some(raw.to_vec()),
    };
    let mut pos = start + prefix;
    for _ in 0..strings {
        pos += 1 + usize::from(*msg.get(pos)?);
    }
    let mut out = msg.get(start..pos)?.to_vec();
    for _ in 0..names {
        let (n, next) = read_name(msg, pos)?;
        out.extend_from_slice(&n);
        pos = next;
    }
    out.extend_from_slice(msg.get(pos..end)?);
    Some(out)
}

#[derive(Clone, Debug)]
pub(super) struct Response {
    pub(super) id: u16,
    pub(super) rcode: u16,
    pub(super) aa: bool,
    pub(super) tc: bool,
    pub(super) rd: bool,
    pub(super) ra: bool,
    pub(super) opt: bool,
    pub(super) answer: Vec<Rr>,
    pub(super) authority: Vec<Rr>,
    pub(super) additional: Vec<Rr>,
}

impl Response {
    pub(super) fn flags(&self) -> String {
        let mut flags = Vec::new();
        for (set, f) in [
            (self.aa, "aa"),
            (self.tc, "tc"),
            (self.rd, "rd"),
            (self.ra, "ra"),
        ] {
            if set {
                flags.push(f);
            }
        }
        format!(
            "[{}]{}",
            flags.join(" "),
            if self.opt { " +OPT" } else { "" }
        )
    }

    pub(super) fn header(&self) -> String {
        format!("{} {}", rcode_name(self.rcode), self.flags())
    }
}

pub(super) fn rcode_name(r: u16) -> String {
    match r {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        n => format!("RCODE{n}"),
    }
}

pub(super) fn parse_response(msg: &[u8]) -> Result<Response, String> {
    let err = |what: &str| format!("malformed response: {what}");
    if msg.len() < 12 {
        return Err(err("short header"));
    }
    let u16_at = |p: usize| msg.get(p..p + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let flags = u16_at(2).ok_or_else(|| err("flags"))?;
    let counts: Vec<u16> = (0..4).map(|i| u16_at(4 + 2 * i).unwrap_or(0)).collect();
    let mut r = Response {
        id: u16_at(0).ok_or_else(|| err("id"))?,
        rcode: flags & 0xF,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        opt: false,
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let mut pos = 12;
    for _ in 0..counts[0] {
        pos = read_name(msg, pos).ok_or_else(|| err("question"))?.1 + 4;
    }
    for (section, &count) in counts[1..].iter().enumerate() {
        for _ in 0..count {
            let (owner, p) = read_name(msg, pos).ok_or_else(|| err("owner"))?;
            let rtype = u16_at(p).ok_or_else(|| err("type"))?;
            let class = u16_at(p + 2).ok_or_else(|| err("class"))?;
            let ttl_hi = u16_at(p + 4).ok_or_else(|| err("ttl"))?;
            let ttl_lo = u16_at(p + 6).ok_or_else(|| err("ttl"))?;
            let rdlen = u16_at(p + 8).ok_or_else(|| err("rdlength"))? as usize;
            let start = p + 10;
            if start + rdlen > msg.len() {
                return Err(err("rdata past the end"));
            }
            pos = start + rdlen;
            if rtype == OPT {
                r.opt = true;
                r.rcode |= (ttl_hi >> 8) << 4;
                continue;
            }
            let rr = Rr {
                owner: name_text(&owner),
                rtype,
                class,
                ttl: (u32::from(ttl_hi) << 16) | u32::from(ttl_lo),
                rdata: normalize_rdata(msg, start, rdlen, rtype).ok_or_else(|| err("rdata"))?,
            };
            match section {
                0 => r.answer.push(rr),
                1 => r.authority.push(rr),
                _ => r.additional.push(rr),
            }
        }
    }
    r.answer.sort();
    r.authority.sort();
    r.additional.sort();
    Ok(r)
}
