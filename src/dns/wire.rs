//! DNS messages on the wire: parsing a query (header, question, OPT with NSID and ECS) and
//! writing a response into a caller-owned buffer with name compression, without allocating.

use super::edns_option::{ECS as OPT_ECS, NSID as OPT_NSID};
use super::name::{MAX_LABELS, MAX_NAME_LEN};
use super::{HEADER_LEN, RRset, Section, Sink, class, rcode, rtype};

/// EDNS Client Subnet (RFC 7871) as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    pub source_prefix: u8,
    pub scope_prefix: u8,
    /// Address bytes, zero beyond the source prefix.
    pub addr: [u8; 16],
}

/// The OPT record of a query (RFC 6891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub nsid: bool,
    pub ecs: Option<ClientSubnet>,
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

fn u16_at(buf: &[u8], pos: usize) -> Option<u16> {
    let b = buf.get(pos..pos + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads an uncompressed name at `pos`; returns the position after it.
fn read_question_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = *buf.get(pos)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        // Compression pointers and extended label types have no place in a question.
        if len > 63 {
            return None;
        }
        pos += len + 1;
        if pos - start > MAX_NAME_LEN {
            return None;
        }
    }
    if pos - start > MAX_NAME_LEN || pos > buf.len() {
        return None;
    }
    Some(pos)
}

/// Skips a possibly compressed name; returns the position after it in the record.
fn skip_name(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *buf.get(pos)? as usize;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += len + 1,
            0xC0..=0xFF => {
                buf.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// Parses a query message. Never panics, whatever the input.
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
    let Some(name_end) = read_question_name(buf, HEADER_LEN) else {
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
    let total = ancount as usize + nscount as usize + arcount as usize;
    for i in 0..total {
        let name_start = pos;
        pos = skip_name(buf, pos).ok_or(formerr)?;
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
            edns = Some(parse_opt(class, ttl_hi, ttl_lo, rdata).ok_or(formerr)?);
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

fn parse_opt(class: u16, ttl_hi: u16, ttl_lo: u16, rdata: &[u8]) -> Option<Edns> {
    let mut edns = Edns {
        udp_size: class,
        version: (ttl_hi & 0xFF) as u8,
        dnssec_ok: ttl_lo & 0x8000 != 0,
        nsid: false,
        ecs: None,
    };
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
                edns.ecs = Some(parse_ecs(data)?);
            }
            // Unknown options are ignored (RFC 6891 §6.1.2).
            _ => {}
        }
    }
    Some(edns)
}

/// RFC 7871 §6: anything inconsistent is a FORMERR.
fn parse_ecs(data: &[u8]) -> Option<ClientSubnet> {
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
    let mut addr = [0u8; 16];
    addr[..needed].copy_from_slice(addr_bytes);
    // Bits beyond the source prefix must be zero.
    if source_prefix % 8 != 0 {
        let last = addr[needed - 1];
        let mask = 0xFFu8 >> (source_prefix % 8);
        if last & mask != 0 {
            return None;
        }
    }
    Some(ClientSubnet {
        family,
        source_prefix,
        scope_prefix,
        addr,
    })
}

/// Cuts a response down to header and question with TC set: what rate limiting "slips"
/// (the client retries over TCP). Returns the new length.
pub fn truncate_to_question(response: &mut [u8], len: usize) -> usize {
    if len < HEADER_LEN {
        return len;
    }
    let qdcount = u16::from_be_bytes([response[4], response[5]]);
    let end = if qdcount == 1 {
        read_question_name(&response[..len], HEADER_LEN).map_or(HEADER_LEN, |p| (p + 4).min(len))
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

/// What goes into the OPT record of a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptOut<'a> {
    pub udp_size: u16,
    pub extended_rcode: u8,
    pub dnssec_ok: bool,
    pub nsid: Option<&'a [u8]>,
    pub ecs: Option<ClientSubnet>,
}

impl OptOut<'_> {
    fn wire_len(&self) -> usize {
        let mut n = 11;
        if let Some(id) = self.nsid {
            n += 4 + id.len();
        }
        if let Some(ecs) = &self.ecs {
            n += 8 + (ecs.source_prefix as usize).div_ceil(8);
        }
        n
    }
}

/// Most names remembered for compression; later ones are written in full.
const MAX_COMPRESS: usize = 48;

/// Writes one response into a borrowed buffer. Records that do not fit are rolled back
/// whole and the response is marked truncated.
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Room for records, excluding what the OPT record will need.
    limit: usize,
    counts: [u16; 3],
    names: [u16; MAX_COMPRESS],
    names_len: usize,
    /// Length of the question name at offset 12 (0 without a question): most owner names
    /// are that name or a suffix of it, and get their pointer without a scan, so the
    /// question's labels are not in `names`.
    qname_len: usize,
    /// Address of the question name in the request: an owner name passed as that very
    /// slice (the usual answer owner) is the question name, and gets 0xC00C without a
    /// comparison. Only compared, never dereferenced.
    qname_source: usize,
    truncated: bool,
    /// An additional record was left out for want of room (not an error, no TC).
    additional_left_out: bool,
    section: Section,
}

impl<'b> Writer<'b> {
    /// Starts a response: header and, when `question` is non-empty, the question copied
    /// from the request (so the query's case is preserved). `question` is name+type+class.
    pub fn new(
        buf: &'b mut [u8],
        id: u16,
        opcode: u8,
        recursion_desired: bool,
        question: &[u8],
        max_size: usize,
    ) -> Self {
        let max = max_size.min(buf.len());
        let mut w = Self {
            buf,
            len: HEADER_LEN,
            limit: max,
            counts: [0; 3],
            names: [0; MAX_COMPRESS],
            names_len: 0,
            qname_len: 0,
            qname_source: 0,
            truncated: false,
            additional_left_out: false,
            section: Section::Answer,
        };
        w.buf[..HEADER_LEN].fill(0);
        w.buf[0..2].copy_from_slice(&id.to_be_bytes());
        let flags: u16 =
            0x8000 | ((opcode as u16 & 0xF) << 11) | if recursion_desired { 0x0100 } else { 0 };
        w.buf[2..4].copy_from_slice(&flags.to_be_bytes());
        if !question.is_empty() && HEADER_LEN + question.len() <= w.buf.len() {
            w.buf[HEADER_LEN..HEADER_LEN + question.len()].copy_from_slice(question);
            w.len += question.len();
            w.buf[5] = 1;
            w.qname_len = question.len().saturating_sub(4);
            w.qname_source = question.as_ptr() as usize;
        }
        w
    }

    /// Reserves room for the OPT record that `finish` will add.
    pub fn reserve_opt(&mut self, opt: &OptOut<'_>) {
        self.limit = self.limit.saturating_sub(opt.wire_len());
    }

    pub fn set_rcode(&mut self, rcode: u8) {
        self.buf[3] = (self.buf[3] & 0xF0) | (rcode & 0xF);
    }

    pub fn set_authoritative(&mut self, aa: bool) {
        if aa {
            self.buf[2] |= 0x04;
        } else {
            self.buf[2] &= !0x04;
        }
    }

    pub fn set_checking_disabled(&mut self, cd: bool) {
        if cd {
            self.buf[3] |= 0x10;
        }
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub fn answer_count(&self) -> u16 {
        self.counts[0]
    }

    /// The records written after the question, and their count per section, when they are
    /// the whole answer: nothing truncated or left out for want of room.
    pub fn complete_body(&self) -> Option<(&[u8], [u16; 3])> {
        if self.truncated || self.additional_left_out {
            return None;
        }
        // qname_len is 0 only without a question (the root name is one byte).
        let question_len = if self.qname_len > 0 {
            self.qname_len + 4
        } else {
            0
        };
        let body = self.buf.get(HEADER_LEN + question_len..self.len)?;
        Some((body, self.counts))
    }

    /// Appends records rendered earlier for this very question (answer, authority and
    /// additional sections, `counts` records in each), if they fit before the room kept for
    /// OPT. Only on a writer that has written no record yet; `false` changes nothing.
    pub fn append_rendered(&mut self, body: &[u8], counts: [u16; 3]) -> bool {
        let end = self.len + body.len();
        if self.counts != [0; 3] || end > self.limit {
            return false;
        }
        self.buf[self.len..end].copy_from_slice(body);
        self.len = end;
        self.counts = counts;
        true
    }

    /// Writes the counts, TC and the OPT record; returns the message length.
    pub fn finish(mut self, opt: Option<&OptOut<'_>>) -> usize {
        if self.truncated {
            self.buf[2] |= 0x02;
        }
        let mut arcount = self.counts[2];
        if let Some(opt) = opt {
            // Room was reserved by reserve_opt; fall back to dropping it only if the
            // buffer itself is too small (never for our own buffers).
            if self.len + opt.wire_len() <= self.buf.len() {
                self.write_opt(opt);
                arcount += 1;
            }
        }
        self.buf[6..8].copy_from_slice(&self.counts[0].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[1].to_be_bytes());
        self.buf[10..12].copy_from_slice(&arcount.to_be_bytes());
        self.len
    }

    fn write_opt(&mut self, opt: &OptOut<'_>) {
        // Built in registers and stored with one copy per part: fewer bounds checks.
        let rdlen = (opt.wire_len() - 11) as u16;
        let [t0, t1] = rtype::OPT.to_be_bytes();
        let [s0, s1] = opt.udp_size.to_be_bytes();
        let [r0, r1] = rdlen.to_be_bytes();
        let dnssec = if opt.dnssec_ok { 0x80 } else { 0 };
        let fixed = [0, t0, t1, s0, s1, opt.extended_rcode, 0, dnssec, 0, r0, r1];
        let mut p = self.len;
        let b = &mut *self.buf;
        b[p..p + 11].copy_from_slice(&fixed);
        p += 11;
        if let Some(id) = opt.nsid {
            b[p..p + 2].copy_from_slice(&OPT_NSID.to_be_bytes());
            b[p + 2..p + 4].copy_from_slice(&(id.len() as u16).to_be_bytes());
            b[p + 4..p + 4 + id.len()].copy_from_slice(id);
            p += 4 + id.len();
        }
        if let Some(ecs) = &opt.ecs {
            let n = (ecs.source_prefix as usize).div_ceil(8).min(16);
            let [c0, c1] = OPT_ECS.to_be_bytes();
            let [l0, l1] = ((4 + n) as u16).to_be_bytes();
            let [f0, f1] = ecs.family.to_be_bytes();
            let mut option = [0u8; 24];
            option[..8].copy_from_slice(&[
                c0,
                c1,
                l0,
                l1,
                f0,
                f1,
                ecs.source_prefix,
                ecs.scope_prefix,
            ]);
            option[8..].copy_from_slice(&ecs.addr);
            b[p..p + 8 + n].copy_from_slice(&option[..8 + n]);
            p += 8 + n;
        }
        self.len = p;
    }

    /// Remembers every label start of a name written at `at` for later compression.
    fn remember_name(&mut self, at: usize, len: usize) {
        let mut pos = at;
        while pos < at + len && self.names_len < MAX_COMPRESS && pos < 0x3FFF {
            let l = self.buf[pos] as usize;
            if l == 0 || l > 63 {
                break;
            }
            self.names[self.names_len] = pos as u16;
            self.names_len += 1;
            pos += l + 1;
        }
    }

    /// Does the (possibly compressed) name at `at` in the packet equal `name`, ignoring case?
    fn name_matches(&self, mut at: usize, name: &[u8]) -> bool {
        let mut i = 0usize;
        let mut hops = 0;
        loop {
            let Some(&l) = self.buf.get(at) else {
                return false;
            };
            if l >= 0xC0 {
                hops += 1;
                if hops > 16 {
                    return false;
                }
                let Some(&lo) = self.buf.get(at + 1) else {
                    return false;
                };
                at = (((l & 0x3F) as usize) << 8) | lo as usize;
                continue;
            }
            let l = l as usize;
            if name.get(i) != Some(&(l as u8)) {
                return false;
            }
            if l == 0 {
                return true;
            }
            let (Some(a), Some(b)) = (self.buf.get(at + 1..at + 1 + l), name.get(i + 1..i + 1 + l))
            else {
                return false;
            };
            if !eq_fold(a, b) {
                return false;
            }
            at += l + 1;
            i += l + 1;
        }
    }

    /// Where the question name has `name` as its tail on a label boundary (ignoring case).
    fn in_question(&self, name: &[u8]) -> Option<u16> {
        let qlen = self.qname_len;
        if name.len() > qlen || name.len() <= 1 {
            return None;
        }
        let off = qlen - name.len();
        let question = self.buf.get(HEADER_LEN..HEADER_LEN + qlen)?;
        if !eq_fold(&question[off..], name) {
            return None;
        }
        let mut pos = 0usize;
        while pos < off {
            pos += question[pos] as usize + 1;
        }
        (pos == off).then_some((HEADER_LEN + off) as u16)
    }

    /// Writes `name` (uncompressed wire form) compressed against earlier names.
    fn write_name(&mut self, name: &[u8]) -> bool {
        // The common case: the question name or one of its ancestors (the zone apex).
        let same_slice = name.as_ptr() as usize == self.qname_source
            && name.len() == self.qname_len
            && self.qname_len > 1;
        let at_question = if same_slice {
            Some(HEADER_LEN as u16)
        } else {
            self.in_question(name)
        };
        if let Some(p) = at_question {
            if self.len + 2 > self.limit {
                return false;
            }
            self.buf[self.len..self.len + 2].copy_from_slice(&(0xC000 | p).to_be_bytes());
            self.len += 2;
            return true;
        }
        let mut offsets = [0u8; MAX_LABELS];
        let n = super::name::label_offsets(name, &mut offsets);
        let mut split = name.len().saturating_sub(1);
        let mut pointer = None;
        'outer: for &off in &offsets[..n] {
            let suffix = &name[off as usize..];
            if suffix.len() <= 1 {
                break;
            }
            // The question's labels first (in place, no pointer chasing), then the others.
            if let Some(p) = self.in_question(suffix) {
                split = off as usize;
                pointer = Some(p);
                break;
            }
            for k in 0..self.names_len {
                let at = self.names[k] as usize;
                if self.name_matches(at, suffix) {
                    split = off as usize;
                    pointer = Some(at as u16);
                    break 'outer;
                }
            }
        }
        let prefix = &name[..split];
        let need = prefix.len() + if pointer.is_some() { 2 } else { 1 };
        if self.len + need > self.limit {
            return false;
        }
        let at = self.len;
        self.buf[at..at + prefix.len()].copy_from_slice(prefix);
        self.len += prefix.len();
        match pointer {
            Some(p) => {
                self.buf[self.len..self.len + 2].copy_from_slice(&(0xC000 | p).to_be_bytes());
                self.len += 2;
            }
            None => {
                self.buf[self.len] = 0;
                self.len += 1;
            }
        }
        self.remember_name(at, prefix.len());
        true
    }

    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.len + bytes.len() > self.limit {
            return false;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        true
    }

    /// RDATA with the embedded names of the RFC 1035 types compressed (RFC 3597 §4).
    fn write_rdata(&mut self, rtype: u16, rdata: &[u8]) -> bool {
        match rtype {
            rtype::NS | rtype::CNAME | rtype::PTR => self.write_name(rdata),
            rtype::MX if rdata.len() > 2 => self.put(&rdata[..2]) && self.write_name(&rdata[2..]),
            rtype::SOA => {
                let Some(first) = name_len(rdata, 0) else {
                    return self.put(rdata);
                };
                let Some(second) = name_len(rdata, first) else {
                    return self.put(rdata);
                };
                self.write_name(&rdata[..first])
                    && self.write_name(&rdata[first..first + second])
                    && self.put(&rdata[first + second..])
            }
            _ => self.put(rdata),
        }
    }

    fn write_record(
        &mut self,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        if !self.write_name(owner) {
            return false;
        }
        let mut fixed = [0u8; 10];
        fixed[0..2].copy_from_slice(&rtype.to_be_bytes());
        fixed[2..4].copy_from_slice(&class.to_be_bytes());
        fixed[4..8].copy_from_slice(&ttl.to_be_bytes());
        if !self.put(&fixed) {
            return false;
        }
        let rdata_start = self.len;
        if !self.write_rdata(rtype, rdata) {
            return false;
        }
        let rdlen = (self.len - rdata_start) as u16;
        self.buf[rdata_start - 2..rdata_start].copy_from_slice(&rdlen.to_be_bytes());
        true
    }

    fn section_index(section: Section) -> usize {
        match section {
            Section::Answer => 0,
            Section::Authority => 1,
            Section::Additional => 2,
        }
    }

    /// Writes a set of records atomically: all of them, or none and the response truncated
    /// (for the answer and authority sections; a missing additional record is not an error).
    fn write_set<'r>(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        class: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool {
        if self.truncated {
            return false;
        }
        debug_assert!(
            Self::section_index(section) >= Self::section_index(self.section),
            "sections must be written in order"
        );
        self.section = section;
        let start_len = self.len;
        let start_names = self.names_len;
        let mut written = 0u16;
        for rd in rdatas {
            if !self.write_record(owner, rtype, class, ttl, rd) {
                self.len = start_len;
                self.names_len = start_names;
                if section == Section::Additional {
                    self.additional_left_out = true;
                } else {
                    self.truncated = true;
                }
                return false;
            }
            written += 1;
        }
        let i = Self::section_index(section);
        self.counts[i] = self.counts[i].saturating_add(written);
        true
    }

    /// A single record in class CH (server identity).
    pub fn chaos_txt(&mut self, owner: &[u8], text: &[u8]) -> bool {
        let mut rdata = [0u8; 256];
        let n = text.len().min(255);
        rdata[0] = n as u8;
        rdata[1..=n].copy_from_slice(&text[..n]);
        self.write_set(
            Section::Answer,
            owner,
            rtype::TXT,
            class::CH,
            0,
            std::iter::once(&rdata[..=n]),
        )
    }
}

/// ASCII case-insensitive equality, 8 bytes at a time: names are nearly always in the same
/// case on both sides, so the per-byte folding only runs on chunks that differ.
fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if x != y && !x.eq_ignore_ascii_case(y) {
            return false;
        }
    }
    let (x, y) = (ca.remainder(), cb.remainder());
    x == y || x.eq_ignore_ascii_case(y)
}

fn name_len(data: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    loop {
        let l = *data.get(pos)? as usize;
        pos += 1;
        if l == 0 {
            return Some(pos - start);
        }
        if l > 63 {
            return None;
        }
        pos += l;
    }
}

impl Sink for Writer<'_> {
    fn rrset(&mut self, section: Section, owner: &[u8], set: &RRset, ttl: u32) -> bool {
        self.write_set(
            section,
            owner,
            set.rtype,
            class::IN,
            ttl,
            set.rdata.iter().map(|r| &r[..]),
        )
    }

    fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        self.write_set(
            section,
            owner,
            rtype,
            class::IN,
            ttl,
            std::iter::once(rdata),
        )
    }

    fn records<'r>(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool {
        self.write_set(section, owner, rtype, class::IN, ttl, rdatas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        q.extend_from_slice(&arcount.to_be_bytes());
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q.extend_from_slice(extra);
        q
    }

    fn opt_with(option: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x10, 0x00, 0, 0, 0, 0];
        o.extend_from_slice(&(option.len() as u16).to_be_bytes());
        o.extend_from_slice(option);
        o
    }

    const NAME: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn parses_plain_and_edns_queries() {
        let q = query(NAME, 1, &[], 0);
        let p = parse_query(&q).expect("valid query");
        assert_eq!(p.qname, NAME);
        assert_eq!(p.qtype, 1);
        assert!(p.edns.is_none());
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let q = query(NAME, 1, &opt_with(&ecs), 1);
        let p = parse_query(&q).expect("valid query");
        let e = p.edns.expect("edns");
        assert_eq!(e.udp_size, 4096);
        let s = e.ecs.expect("ecs");
        assert_eq!((s.family, s.source_prefix), (1, 24));
        assert_eq!(&s.addr[..3], &[192, 0, 2]);
    }

    #[test]
    fn rejects_malformed_ecs() {
        for bad in [
            &[0, 8, 0, 7, 0, 1, 33, 0, 192, 0, 2][..], // prefix too long
            &[0, 8, 0, 7, 0, 1, 23, 0, 192, 0, 3][..], // bits beyond prefix
            &[0, 8, 0, 7, 0, 1, 24, 8, 192, 0, 2][..], // scope in a query
            &[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2][..], // unknown family
            &[0, 8, 0, 6, 0, 1, 24, 0, 192, 0][..],    // address too short
        ] {
            let q = query(NAME, 1, &opt_with(bad), 1);
            assert!(
                matches!(parse_query(&q), Err(ParseError::Reply { rcode: 1, .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn drops_short_and_response_messages() {
        assert_eq!(parse_query(&[0; 11]).err(), Some(ParseError::Drop));
        let mut q = query(NAME, 1, &[], 0);
        q[2] |= 0x80;
        assert_eq!(parse_query(&q).err(), Some(ParseError::Drop));
    }

    #[test]
    fn compresses_owner_against_question() {
        let q = query(NAME, 1, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 1, 0, false, &q[12..], 512);
        let set = RRset {
            rtype: 1,
            ttl: 60,
            rdata: vec![vec![192, 0, 2, 1].into_boxed_slice()],
        };
        assert!(w.rrset(Section::Answer, b"\x03WWW\x07example\x03com\x00", &set, 60));
        let len = w.finish(None);
        // header + question + pointer(2) + fixed(10) + rdata(4)
        assert_eq!(len, 12 + NAME.len() + 4 + 2 + 10 + 4);
        assert_eq!(&buf[12 + NAME.len() + 4..12 + NAME.len() + 6], &[0xC0, 12]);
    }

    #[test]
    fn truncate_to_question_keeps_header_and_question() {
        let q = query(NAME, 1, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 7, 0, false, &q[12..], 512);
        let set = RRset {
            rtype: 1,
            ttl: 60,
            rdata: vec![vec![192, 0, 2, 1].into_boxed_slice()],
        };
        w.rrset(Section::Answer, NAME, &set, 60);
        let len = w.finish(None);
        let cut = truncate_to_question(&mut buf, len);
        assert_eq!(cut, 12 + NAME.len() + 4);
        assert_eq!(buf[2] & 0x02, 0x02, "TC");
        assert_eq!(&buf[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn truncates_whole_rrsets() {
        let q = query(NAME, 16, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 1, 0, false, &q[12..], 100);
        let set = RRset {
            rtype: 16,
            ttl: 60,
            rdata: (0..10)
                .map(|i| vec![10, b'a' + i, 1, 2, 3, 4, 5, 6, 7, 8, 9].into_boxed_slice())
                .collect(),
        };
        assert!(!w.rrset(Section::Answer, NAME, &set, 60));
        assert!(w.is_truncated());
        assert_eq!(w.answer_count(), 0);
    }
}
