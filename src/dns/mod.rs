//! L0, the wire vocabulary: IANA codes, names, parsing a query, writing a response with
//! name compression, TSIG. Everything above speaks DNS through this module; nothing here
//! knows about zones, routing or sockets.

pub mod iana;
pub mod name;
pub mod rdata;
mod rrset;
pub mod sigstore;
pub mod tsig;
pub mod wire;

pub use iana::{class, edns_option, opcode, rcode, rtype};
pub use rrset::{RRset, RdataIter, RdataList, RdataTooLarge};

/// The big-endian u16 at `pos`, if the buffer holds it.
#[inline]
pub fn u16_at(buf: &[u8], pos: usize) -> Option<u16> {
    let b = buf.get(pos..pos + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Length of the DNS message header.
pub const HEADER_LEN: usize = 12;

/// Largest DNS message (the TCP length prefix is 16 bits): the response buffer size that
/// fits every answer.
pub const MAX_MESSAGE: usize = 65535;

/// Whether the client asked over a transport where a full ANY answer is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Where a record goes in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// The response writer the lookup reports to. Owner names are wire form; the writer
/// compresses them. A `false` return means the data did not fit in the response.
pub trait Sink {
    /// The answer is for a DO query to a signed zone: signatures and denial proofs go in.
    fn dnssec_ok(&self) -> bool {
        false
    }
    /// Compact denial (RFC 9824): proves `owner` (lowercase) absent by one NSEC made and
    /// signed now (next name `\000.owner`, types RRSIG NSEC NXNAME) in the authority
    /// section. `None`: not done (not configured, or over the signing budget), the caller
    /// proves it with the zone's NSEC chain; `Some(co)`: done, and the query said CO (the
    /// rcode stays NXDOMAIN; without CO it becomes NOERROR).
    fn compact_denial(&mut self, _owner: &[u8], _ttl: u32) -> Option<bool> {
        None
    }
    fn rrset(&mut self, section: Section, owner: &[u8], set: &RRset, ttl: u32) -> bool;
    /// The zone's SOA in the authority section of a negative answer (`origin` its owner).
    /// A writer may take a shorter way (`rendered`: the record as the zone rendered it at
    /// load); the default writes it as any RRset.
    fn negative_soa(
        &mut self,
        origin: &[u8],
        soa: &RRset,
        ttl: u32,
        _rendered: &wire::NegativeSoa,
    ) -> bool {
        self.rrset(Section::Authority, origin, soa, ttl)
    }
    fn record(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool;
    /// Several records of one RRset, written all or none.
    fn records<'r>(
        &mut self,
        section: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdatas: impl Iterator<Item = &'r [u8]>,
    ) -> bool;
    /// Where the answer records written next begin, for [`Sink::answers_since`]. `None`:
    /// this sink does not hand back what it wrote (the default), or `owner` is not the
    /// question's name, or something beyond the answer section was written already.
    fn answer_mark(&self, _owner: &[u8]) -> Option<AnswerMark> {
        None
    }
    /// The answer records written since `mark` and how many, when nothing else was written
    /// and every one of them is owned by the question's name, written as a pointer to it:
    /// bytes [`Sink::replay_answers`] may copy into the answer to the same question.
    fn answers_since(&self, _mark: AnswerMark) -> Option<(&[u8], u16)> {
        None
    }
    /// Appends `count` answer records kept from [`Sink::answers_since`] for `owner`, when
    /// `owner` is the question's name and they fit; `false` changes nothing.
    fn replay_answers(&mut self, _owner: &[u8], _bytes: &[u8], _count: u16) -> bool {
        false
    }
}

/// A position in a message being written, from [`Sink::answer_mark`].
#[derive(Debug, Clone, Copy)]
pub struct AnswerMark {
    pub len: usize,
    pub answers: u16,
}
