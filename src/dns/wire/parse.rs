//! Parsing a query: header, question, every other record skipped with bounds checks, the
//! OPT record (version, DO, size, NSID, ECS validated per RFC 7871). Never panics.

use super::super::edns_option::{COOKIE as OPT_COOKIE, ECS as OPT_ECS, NSID as OPT_NSID};
use super::super::name::{end_compressed, end_uncompressed};
use super::super::{HEADER_LEN, MAX_MESSAGE, Transport, class, rcode, rtype, u16_at};

/// EDNS Client Subnet (RFC 7871) as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    pub source_prefix: u8,
    /// Address bytes, zero beyond the source prefix.
    pub addr: [u8; 16],
}

/// The OPT record of a query (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    /// CO, "compact answers OK" (RFC 9824 §5): the bit after DO.
    pub compact_ok: bool,
    pub nsid: bool,
    pub ecs: Option<ClientSubnet>,
    /// The COOKIE option (RFC 7873): where its data starts in the message, and its length
    /// (8: a client cookie alone; 16-40: with a server cookie). 0 when absent.
    pub cookie_at: u16,
    pub cookie_len: u8,
}

impl Edns {
    /// The client cookie and the server cookie (empty when none), from the message `msg`.
    pub fn cookie<'m>(&self, msg: &'m [u8]) -> Option<(&'m [u8], &'m [u8])> {
        if self.cookie_len == 0 {
            return None;
        }
        let at = usize::from(self.cookie_at);
        let data = msg.get(at..at + usize::from(self.cookie_len))?;
        Some(data.split_at(8))
    }
}

/// A parsed query; `qname` borrows the request buffer (wire form, case as received).
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub id: u16,
    pub opcode: u8,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// Offset of a TSIG record (RFC 8945), the message's last record, if there is one.
    pub tsig: Option<usize>,
}

/// Why a message could not be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// No usable header, or a response: send nothing.
    Drop,
    /// Answer with this rcode; the question is echoed when it could be read.
    Reply {
        id: u16,
        opcode: u8,
        recursion_desired: bool,
        rcode: u8,
        question_end: usize,
    },
}

impl Query<'_> {
    /// The largest response this query may get: a TCP message, or over UDP its EDNS size
    /// (at least 512, at most `max_udp_payload`), or 512 without EDNS.
    #[inline]
    pub fn max_response(&self, transport: Transport, max_udp_payload: u16) -> usize {
        match (transport, &self.edns) {
            (Transport::Tcp, _) => MAX_MESSAGE,
            (Transport::Udp, Some(e)) => e.udp_size.clamp(512, max_udp_payload) as usize,
            (Transport::Udp, None) => 512,
        }
    }
}

/// Parses a query message. Never panics, whatever the input. Inlined into its one caller
/// on the query path, so that the ~100-byte result is built in place, not copied out.
#[inline(always)]
pub fn parse_query(buf: &[u8]) -> Result<Query<'_>, ParseError> {
    if buf.len() < HEADER_LEN {
        return Err(ParseError::Drop);
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::Drop);
    }
    let opcode = ((flags >> 11) & 0xF) as u8;
    let recursion_desired = flags & 0x0100 != 0;
    let reply = |rcode: u8, question_end: usize| ParseError::Reply {
        id,
        opcode,
        recursion_desired,
        rcode,
        question_end,
    };
    let qdcount = u16::from_be_bytes([buf[4], buf[5]]);
    let ancount = u16::from_be_bytes([buf[6], buf[7]]);
    let nscount = u16::from_be_bytes([buf[8], buf[9]]);
    let arcount = u16::from_be_bytes([buf[10], buf[11]]);
    if qdcount != 1 {
        return Err(reply(rcode::FORMERR, 0));
    }
    let Some(name_end) = end_uncompressed(buf, HEADER_LEN) else {
        return Err(reply(rcode::FORMERR, 0));
    };
    let (Some(qtype), Some(qclass)) = (u16_at(buf, name_end), u16_at(buf, name_end + 2)) else {
        return Err(reply(rcode::FORMERR, 0));
    };
    let question_end = name_end + 4;
    if opcode != 0 {
        return Err(reply(rcode::NOTIMP, question_end));
    }
    let formerr = reply(rcode::FORMERR, question_end);

    let mut pos = question_end;
    let mut edns = None;
    let mut tsig = None;
    // The usual query with EDNS: one record after the question, an OPT owned by the root,
    // read at once, without the walk over records below (its name, position and section
    // tests).
    if (ancount, nscount, arcount) == (0, 0, 1)
        && let Some(fixed) = buf.get(question_end..question_end + 11)
        && fixed[0] == 0
        && u16::from_be_bytes([fixed[1], fixed[2]]) == rtype::OPT
    {
        let field = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
        let rdata_start = question_end + 11;
        let rdata = buf.get(rdata_start..).ok_or(formerr)?;
        if rdata.len() != usize::from(field(9)) {
            return Err(formerr);
        }
        let found = edns.insert(Edns::without_options(field(3), field(5), field(7)));
        if !rdata.is_empty() {
            parse_opt(found, rdata, rdata_start).ok_or(formerr)?;
        }
        pos = buf.len();
    }
    let total = if edns.is_some() {
        0
    } else {
        ancount as usize + nscount as usize + arcount as usize
    };
    for i in 0..total {
        let name_start = pos;
        pos = end_compressed(buf, pos).ok_or(formerr)?;
        // Type, class, TTL and length: one bounds check for the ten bytes.
        let fixed: &[u8; 10] = buf
            .get(pos..pos + 10)
            .and_then(|f| f.try_into().ok())
            .ok_or(formerr)?;
        let field = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
        let (rr_type, class, ttl_hi, ttl_lo) = (field(0), field(2), field(4), field(6));
        let rdlen = field(8) as usize;
        let rdata_start = pos + 10;
        let rdata = buf.get(rdata_start..rdata_start + rdlen).ok_or(formerr)?;
        pos = rdata_start + rdlen;
        if rr_type == rtype::OPT {
            let in_additional = i >= ancount as usize + nscount as usize;
            if !in_additional || edns.is_some() || buf[name_start] != 0 {
                return Err(formerr);
            }
            let found = edns.insert(Edns::without_options(class, ttl_hi, ttl_lo));
            // Most OPT records carry no option: those need no call. The options are
            // written in place: returning the record cost two copies of it.
            if !rdata.is_empty() {
                parse_opt(found, rdata, rdata_start).ok_or(formerr)?;
            }
        } else if rr_type == rtype::TSIG {
            // Only as the very last record (RFC 8945 §5.1).
            if i + 1 != total || i < ancount as usize + nscount as usize {
                return Err(formerr);
            }
            tsig = Some(name_start);
        }
    }
    if pos != buf.len() {
        return Err(formerr);
    }
    Ok(Query {
        id,
        opcode,
        recursion_desired,
        checking_disabled: flags & 0x0010 != 0,
        qname: &buf[HEADER_LEN..name_end],
        qtype,
        qclass,
        edns,
        tsig,
    })
}

impl Edns {
    /// What an OPT record's class and TTL say: size, version, DO and CO.
    #[inline(always)]
    fn without_options(class: u16, ttl_hi: u16, ttl_lo: u16) -> Self {
        Edns {
            udp_size: class,
            version: (ttl_hi & 0xFF) as u8,
            dnssec_ok: ttl_lo & 0x8000 != 0,
            compact_ok: ttl_lo & 0x4000 != 0,
            nsid: false,
            ecs: None,
            cookie_at: 0,
            cookie_len: 0,
        }
    }
}

/// The options of an OPT record (`rdata`, at `rdata_start` in the message) added to `edns`;
/// `None`: FORMERR.
fn parse_opt(edns: &mut Edns, rdata: &[u8], rdata_start: usize) -> Option<()> {
    let mut pos = 0usize;
    while pos < rdata.len() {
        let code = u16_at(rdata, pos)?;
        let len = u16_at(rdata, pos + 2)? as usize;
        let data = rdata.get(pos + 4..pos + 4 + len)?;
        pos += 4 + len;
        match code {
            OPT_NSID => edns.nsid = true,
            OPT_ECS => {
                if edns.ecs.is_some() {
                    return None;
                }
                parse_ecs(data, &mut edns.ecs)?;
            }
            // RFC 7873 §5.2.2: a client cookie of 8 octets, a server cookie of 8 to 32.
            OPT_COOKIE => {
                if edns.cookie_len != 0 || !(len == 8 || (16..=40).contains(&len)) {
                    return None;
                }
                edns.cookie_at = u16::try_from(rdata_start + pos - len).ok()?;
                edns.cookie_len = len as u8;
            }
            // Unknown options are ignored (RFC 6891 §6.1.2).
            _ => {}
        }
    }
    Some(())
}

/// RFC 7871 §6: anything inconsistent is a FORMERR (`None`). Written into `into` in place:
/// built and returned, the option was moved three times on its way into the query.
fn parse_ecs(data: &[u8], into: &mut Option<ClientSubnet>) -> Option<()> {
    let family = u16_at(data, 0)?;
    let source_prefix = *data.get(2)?;
    let scope_prefix = *data.get(3)?;
    let addr_bytes = data.get(4..)?;
    let max_prefix = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source_prefix > max_prefix || scope_prefix != 0 {
        return None;
    }
    let needed = (source_prefix as usize).div_ceil(8);
    if addr_bytes.len() != needed {
        return None;
    }
    // Bits beyond the source prefix must be zero.
    if source_prefix % 8 != 0 {
        let last = addr_bytes[needed - 1];
        let mask = 0xFFu8 >> (source_prefix % 8);
        if last & mask != 0 {
            return None;
        }
    }
    // A query's scope is always 0 (checked above): only the response's is kept (`OptOut`).
    let subnet = into.insert(ClientSubnet {
        family,
        source_prefix,
        addr: [0; 16],
    });
    copy_address(addr_bytes, &mut subnet.addr);
    Some(())
}

/// Copies the (at most 16) bytes of an ECS address to the front of `out`, which is zeroed.
/// With moves of fixed size that overlap, not a `memcpy` call: that, and saving registers
/// around it, cost ~40 instructions for the 3 bytes of a /24.
#[inline(always)]
fn copy_address(src: &[u8], out: &mut [u8; 16]) {
    let n = src.len().min(16);
    super::copy_short(&mut out[..n], &src[..n]);
}

/// Cuts a response down to header and question with TC set: what rate limiting "slips"
/// (the client retries over TCP). Returns the new length.
pub fn truncate_to_question(response: &mut [u8], len: usize) -> usize {
    if len < HEADER_LEN {
        return len;
    }
    let qdcount = u16::from_be_bytes([response[4], response[5]]);
    let end = if qdcount == 1 {
        end_uncompressed(&response[..len], HEADER_LEN).map_or(HEADER_LEN, |p| (p + 4).min(len))
    } else {
        HEADER_LEN
    };
    response[2] |= 0x02;
    response[6..12].fill(0);
    if end == HEADER_LEN {
        response[4..6].fill(0);
    }
    end
}

/// A query message (for `explain` and tools; allocates, not for the query path).
/// `ecs` adds an EDNS Client Subnet option with that address and source prefix.
pub fn build_query(
    id: u16,
    qname: &[u8],
    qtype: u16,
    edns: bool,
    ecs: Option<(std::net::IpAddr, u8)>,
) -> Vec<u8> {
    let mut q = Vec::with_capacity(64 + qname.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns || ecs.is_some())]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&class::IN.to_be_bytes());
    if edns || ecs.is_some() {
        let mut options = Vec::new();
        if let Some((addr, prefix)) = ecs {
            let (family, bytes, max): (u16, Vec<u8>, u8) = match addr {
                std::net::IpAddr::V4(a) => (1, a.octets().to_vec(), 32),
                std::net::IpAddr::V6(a) => (2, a.octets().to_vec(), 128),
            };
            let prefix = prefix.min(max);
            let n = (prefix as usize).div_ceil(8);
            let mut addr_bytes = bytes[..n].to_vec();
            if prefix % 8 != 0
                && let Some(last) = addr_bytes.last_mut()
            {
                *last &= 0xFFu8 << (8 - prefix % 8);
            }
            options.extend_from_slice(&OPT_ECS.to_be_bytes());
            options.extend_from_slice(&((4 + n) as u16).to_be_bytes());
            options.extend_from_slice(&family.to_be_bytes());
            options.push(prefix);
            options.push(0);
            options.extend_from_slice(&addr_bytes);
        }
        q.push(0);
        q.extend_from_slice(&rtype::OPT.to_be_bytes());
        q.extend_from_slice(&1232u16.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0]);
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(&options);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::copy_address;

    /// Every length an ECS address can have, each byte distinct: the same as a plain copy.
    #[test]
    fn copy_address_copies_every_length_and_leaves_the_rest_zero() {
        let src: Vec<u8> = (1..=16).collect();
        for n in 0..=16 {
            let mut want = [0u8; 16];
            want[..n].copy_from_slice(&src[..n]);
            let mut got = [0u8; 16];
            copy_address(&src[..n], &mut got);
            assert_eq!(got, want, "{n} bytes");
        }
    }
}
