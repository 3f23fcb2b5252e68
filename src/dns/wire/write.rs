//! Writing a response into a caller-owned buffer: header, question, RRsets with name
//! compression (owner names and RFC 1035 RDATA names), whole-RRset rollback and TC when a
//! set does not fit, and the OPT record (NSID, ECS, COOKIE). No allocation.

use super::super::name::{MAX_LABELS, end_uncompressed, eq_fold};
use super::super::{AnswerMark, HEADER_LEN, RRset, Section, Sink, class, rtype};
use super::Query;

// The OPT record of a response and the writer's end: in a file of their own (a child
// module, so that they reach the writer's fields).
#[path = "opt_out.rs"]
mod opt_out;
pub use opt_out::OptOut;

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
    /// Signatures and denial proofs go in (a DO query to a signed zone).
    dnssec: bool,
}

impl<'b> Writer<'b> {
    /// Starts a response: header and, when `question` is non-empty, the question copied
    /// from the request (so the query's case is preserved). `question` is name+type+class.
    /// The writer of the response to `query` (parsed from `request`): its id, opcode, RD
    /// and question, at most `max_size` bytes.
    #[inline]
    pub fn answering(
        buf: &'b mut [u8],
        query: &Query<'_>,
        request: &[u8],
        max_size: usize,
    ) -> Self {
        let question = &request[HEADER_LEN..HEADER_LEN + query.qname.len() + 4];
        Self::new(
            buf,
            query.id,
            query.opcode,
            query.recursion_desired,
            question,
            max_size,
        )
    }

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
            dnssec: false,
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

    /// Answer with signatures and denial proofs (a DO query to a signed zone).
    pub fn set_dnssec(&mut self, on: bool) {
        self.dnssec = on;
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
        super::copy_short(&mut self.buf[self.len..end], body);
        self.len = end;
        self.counts = counts;
        true
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

    /// Whether `name` is the very slice of the request the question name was copied from
    /// (the usual answer owner): the question's name, known without a comparison.
    fn is_question_slice(&self, name: &[u8]) -> bool {
        name.as_ptr() as usize == self.qname_source
            && name.len() == self.qname_len
            && self.qname_len > 1
    }

    /// Whether `name` is the question's name (ignoring case): the same slice, or equal.
    fn is_question_name(&self, name: &[u8]) -> bool {
        let qlen = self.qname_len;
        self.is_question_slice(name)
            || (qlen > 1
                && name.len() == qlen
                && self
                    .buf
                    .get(HEADER_LEN..HEADER_LEN + qlen)
                    .is_some_and(|q| eq_fold(q, name)))
    }

    /// Nothing written yet beyond the answer section, and no record left out.
    fn answers_only(&self) -> bool {
        self.counts[1] == 0
            && self.counts[2] == 0
            && !self.truncated
            && self.section == Section::Answer
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
        let at_question = if self.is_question_slice(name) {
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
        let n = super::super::name::label_offsets(name, &mut offsets);
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
                let Some(first) = end_uncompressed(rdata, 0) else {
                    return self.put(rdata);
                };
                let Some(second) = end_uncompressed(rdata, first).map(|e| e - first) else {
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

    /// One answer record of a zone transfer, written only if the message stays within
    /// `limit` bytes; `false` leaves the message as it was and does not set TC (the record
    /// starts the next message).
    pub fn transfer_record(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        limit: usize,
    ) -> bool {
        let (room, len, names) = (self.limit, self.len, self.names_len);
        self.limit = limit.min(self.limit);
        let written = self.write_record(owner, rtype, class::IN, ttl, rdata);
        self.limit = room;
        if !written {
            (self.len, self.names_len) = (len, names);
            return false;
        }
        self.counts[0] = self.counts[0].saturating_add(1);
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

impl Writer<'_> {
    /// Where the question name's suffix `origin` starts in the message, when the response
    /// holds nothing but the question and that suffix is whole labels.
    fn origin_in_question(&self, origin: &[u8]) -> Option<usize> {
        if self.counts != [0, 0, 0] || self.qname_len < origin.len() {
            return None;
        }
        let qname = &self.buf[HEADER_LEN..HEADER_LEN + self.qname_len];
        let mut at = 0;
        while qname.len() - at > origin.len() {
            at += usize::from(*qname.get(at)?) + 1;
        }
        (qname.len() - at == origin.len() && eq_fold(&qname[at..], origin))
            .then_some(HEADER_LEN + at)
    }

    /// The negative answer's SOA from its rendering at load, without the compression
    /// search: the owner and the RDATA names under the zone point at the question's own
    /// suffix. Declines (false) when the response holds more than the question or the
    /// record does not fit.
    fn fast_negative_soa(&mut self, origin: &[u8], rendered: &NegativeSoa) -> bool {
        self.origin_in_question(origin)
            .is_some_and(|at| self.put_negative_soa(at, rendered))
    }

    /// The negative answer's SOA from its rendering at load, as `Sink::negative_soa` writes
    /// it, when the caller knows that the question name's last `origin_len` bytes are the
    /// zone's origin, whole labels (the zone lookup matched that suffix): no walk, no
    /// comparison. Declines (false) when the response holds more than the question or the
    /// record does not fit.
    pub fn negative_soa_below_question(
        &mut self,
        origin_len: usize,
        rendered: &NegativeSoa,
    ) -> bool {
        if self.counts != [0, 0, 0] || self.qname_len < origin_len {
            return false;
        }
        self.put_negative_soa(HEADER_LEN + self.qname_len - origin_len, rendered)
    }

    /// Writes `rendered` with its owner and RDATA pointers set to `origin_at`. A record of
    /// up to 64 bytes (nearly all) is copied without a call, so that this function saves no
    /// registers (that cost ~15 instructions); a longer one goes to `put_long_negative_soa`.
    fn put_negative_soa(&mut self, origin_at: usize, rendered: &NegativeSoa) -> bool {
        if rendered.bytes.len() > 64 {
            return self.put_long_negative_soa(origin_at, rendered);
        }
        self.put_negative_soa_by(origin_at, rendered, super::copy_short)
    }

    /// [`Writer::put_negative_soa`] for a record of more than 64 bytes.
    #[cold]
    #[inline(never)]
    fn put_long_negative_soa(&mut self, origin_at: usize, rendered: &NegativeSoa) -> bool {
        self.put_negative_soa_by(origin_at, rendered, <[u8]>::copy_from_slice)
    }

    /// [`Writer::put_negative_soa`], its bytes copied by `copy`.
    #[inline(always)]
    fn put_negative_soa_by(
        &mut self,
        origin_at: usize,
        rendered: &NegativeSoa,
        copy: fn(&mut [u8], &[u8]),
    ) -> bool {
        let (start, bytes) = (self.len, &rendered.bytes[..]);
        let end = start + bytes.len();
        let Some(out) = self.buf.get_mut(start..end).filter(|_| end <= self.limit) else {
            return false;
        };
        copy(out, bytes);
        let pointer = (0xC000 | origin_at as u16).to_be_bytes();
        // Owner and RDATA pointers in the record's own slice (no overflow check); a name
        // written whole (position 0) just writes the owner's pointer again.
        for at in [0, rendered.pointers[0], rendered.pointers[1]] {
            if let Some(p) = out.get_mut(usize::from(at)..usize::from(at) + 2) {
                p.copy_from_slice(&pointer);
            }
        }
        self.len = end;
        self.section = Section::Authority;
        self.counts[1] += 1;
        true
    }
}

/// Whether `body` holds exactly `count` records, each owned by a pointer to the question's
/// name (offset 12) and with RDATA written as it is (no name the writer compresses): then
/// the same bytes answer, after the question, any question of any name.
pub fn owned_by_question(body: &[u8], count: u16) -> bool {
    let mut at = 0usize;
    for _ in 0..count {
        let Some(fixed) = body.get(at..at + 12) else {
            return false;
        };
        let rtype = u16::from_be_bytes([fixed[2], fixed[3]]);
        let compressed = matches!(
            rtype,
            rtype::NS | rtype::CNAME | rtype::PTR | rtype::MX | rtype::SOA
        );
        if fixed[..2] != [0xC0, HEADER_LEN as u8] || compressed {
            return false;
        }
        at += 12 + usize::from(u16::from_be_bytes([fixed[10], fixed[11]]));
    }
    at == body.len()
}

/// A zone's SOA record as negative answers carry it, rendered once at load: owner, type,
/// class, TTL, RDLENGTH and RDATA. The owner and each RDATA name under the origin end in a
/// pointer that the writer sets to where the origin sits in the question.
#[derive(Debug, Clone)]
pub struct NegativeSoa {
    bytes: Box<[u8]>,
    /// Positions in `bytes` of the RDATA names' pointers (0: that name is written whole).
    pointers: [u16; 2],
}

impl NegativeSoa {
    /// `origin` in lowercase wire form; `rdata` the SOA's, with uncompressed names;
    /// `ttl` the negative answers' (RFC 2308 §5). `None` when the RDATA is malformed.
    pub fn new(origin: &[u8], rdata: &[u8], ttl: u32) -> Option<Self> {
        let mname_end = end_uncompressed(rdata, 0)?;
        let rname_end = end_uncompressed(rdata, mname_end)?;
        let mut bytes = Vec::with_capacity(12 + rdata.len());
        bytes.extend_from_slice(&[0xC0, 0]);
        bytes.extend_from_slice(&rtype::SOA.to_be_bytes());
        bytes.extend_from_slice(&class::IN.to_be_bytes());
        bytes.extend_from_slice(&ttl.to_be_bytes());
        bytes.extend_from_slice(&[0, 0]);
        let mut pointers = [0u16; 2];
        let names = [&rdata[..mname_end], &rdata[mname_end..rname_end]];
        for (pointer, name) in pointers.iter_mut().zip(names) {
            match labels_before(name, origin) {
                Some(split) => {
                    bytes.extend_from_slice(&name[..split]);
                    *pointer = u16::try_from(bytes.len()).ok()?;
                    bytes.extend_from_slice(&[0xC0, 0]);
                }
                None => bytes.extend_from_slice(name),
            }
        }
        bytes.extend_from_slice(&rdata[rname_end..]);
        let rdlen = u16::try_from(bytes.len() - 12).ok()?;
        bytes[10..12].copy_from_slice(&rdlen.to_be_bytes());
        Some(Self {
            bytes: bytes.into(),
            pointers,
        })
    }
}

/// The length of `name`'s labels before `origin`, when `name` is `origin` or below it.
fn labels_before(name: &[u8], origin: &[u8]) -> Option<usize> {
    let split = name.len().checked_sub(origin.len())?;
    // Whole labels only: walk the name's labels to the split point.
    let mut at = 0;
    while at < split {
        at += usize::from(*name.get(at)?) + 1;
    }
    (at == split && eq_fold(&name[split..], origin)).then_some(split)
}

impl Sink for Writer<'_> {
    fn dnssec_ok(&self) -> bool {
        self.dnssec
    }

    fn negative_soa(
        &mut self,
        origin: &[u8],
        soa: &RRset,
        ttl: u32,
        rendered: &NegativeSoa,
    ) -> bool {
        self.fast_negative_soa(origin, rendered)
            || self.write_set(
                Section::Authority,
                origin,
                soa.rtype,
                class::IN,
                ttl,
                soa.rdata.iter(),
            )
    }

    fn rrset(&mut self, section: Section, owner: &[u8], set: &RRset, ttl: u32) -> bool {
        self.write_set(section, owner, set.rtype, class::IN, ttl, set.rdata.iter())
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

    fn answer_mark(&self, owner: &[u8]) -> Option<AnswerMark> {
        (self.answers_only() && self.is_question_name(owner)).then_some(AnswerMark {
            len: self.len,
            answers: self.counts[0],
        })
    }

    fn answers_since(&self, mark: AnswerMark) -> Option<(&[u8], u16)> {
        if !self.answers_only() {
            return None;
        }
        let bytes = self.buf.get(mark.len..self.len)?;
        let count = self.counts[0].checked_sub(mark.answers)?;
        owned_by_question(bytes, count).then_some((bytes, count))
    }

    fn replay_answers(&mut self, owner: &[u8], bytes: &[u8], count: u16) -> bool {
        if !self.answers_only() || !self.is_question_name(owner) || !self.put(bytes) {
            return false;
        }
        self.counts[0] = self.counts[0].saturating_add(count);
        self.section = Section::Answer;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::read_lower;

    /// The negative SOA from its rendering, of up to 64 bytes (copied inline) and longer (the
    /// other copy), its names under the zone (pointers) or not (whole): read back, the same
    /// owner, names and the rest of the RDATA.
    #[test]
    fn a_rendered_negative_soa_reads_back_as_the_record() {
        let origin = b"\x07example\x03com\x00";
        let long = b"\x1enameservers-of-a-long-provider\x07example\x03net\x00";
        let names: [(&[u8], &[u8]); 3] = [
            (
                b"\x03ns1\x07example\x03com\x00",
                b"\x0ahostmaster\x07example\x03com\x00",
            ),
            (long, b"\x0ahostmaster\x07example\x03net\x00"),
            (b"\x03ns1\x07example\x03com\x00", long),
        ];
        let mut lengths = Vec::new();
        for (mname, rname) in names {
            let tail: Vec<u8> = (1..=20).collect();
            let rdata = [mname, rname, &tail[..]].concat();
            let rendered = NegativeSoa::new(origin, &rdata, 300).expect("renders");
            lengths.push(rendered.bytes.len());
            let question = [&b"\x01x"[..], origin, &[0, 1, 0, 1]].concat();
            let mut buf = [0u8; 512];
            let mut w = Writer::new(&mut buf, 1, 0, false, &question, 512);
            assert!(w.negative_soa_below_question(origin.len(), &rendered));
            let len = w.finish(None);
            let msg = &buf[..len];
            assert_eq!(&msg[6..12], &[0, 0, 0, 1, 0, 0], "one authority record");
            let at = HEADER_LEN + question.len();
            let (owner, at) = read_lower(msg, at).expect("owner");
            assert_eq!(owner, origin);
            assert_eq!(&msg[at..at + 8], &[0, 6, 0, 1, 0, 0, 1, 44], "SOA IN 300");
            let rdlen = usize::from(u16::from_be_bytes([msg[at + 8], msg[at + 9]]));
            assert_eq!(at + 10 + rdlen, len, "the RDATA ends the message");
            let (m, at) = read_lower(msg, at + 10).expect("MNAME");
            let (r, at) = read_lower(msg, at).expect("RNAME");
            assert_eq!((&m[..], &r[..]), (mname, rname));
            assert_eq!(&msg[at..], &tail[..]);
        }
        assert!(
            lengths[0] <= 64 && lengths[1] > 64 && lengths[2] > 64,
            "{lengths:?}"
        );
    }
}
