//! Static answers rendered once, when a snapshot is built: for every name that
//! [`ZoneSet::lookup`] finds with one hash lookup and that is not dynamic, and for each type it
//! holds, the records that follow the question in the response (answer, authority and
//! additional sections), written by the real lookup and writer for that very question.
//!
//! A query for one of them gets the header, its own question and one copy of those bytes:
//! no zone walk, no record writing. The bytes do not depend on the query's case (names
//! compress against the question case-insensitively, and the owner is a pointer to it), nor on
//! anything but the question name's length, which is fixed for a name, so every compression
//! pointer stays valid. A body that does not fit the client's size goes the general way,
//! which truncates.
//!
//! Not rendered (the general path answers): dynamic names and CNAMEs that lead to one, ANY,
//! types a name does not hold (NODATA) other than A/AAAA behind a CNAME, names below a cut
//! or DNAME, wildcards, NXDOMAIN.

use crate::zone::{Dynamic, DynamicOutcome, Sink, Transport, ZoneSet, rtype};

use super::wire::{CLASS_IN, HEADER_LEN, Writer};

/// Upper bound on the bytes kept; names beyond it are answered the general way. Each
/// answer costs about its wire size plus 16 bytes, so this allows several million records.
const MAX_BYTES: usize = 128 << 20;

/// Marks an entry without rendered answers.
const NONE: u32 = u32::MAX;

/// One rendered response body.
#[derive(Debug, Clone, Copy)]
struct Rendered {
    qtype: u16,
    /// Last answer of its name's run.
    last: bool,
    rcode: u8,
    authoritative: bool,
    counts: [u16; 3],
    start: u32,
    len: u32,
}

/// A rendered body, as the answer path uses it.
#[derive(Debug, Clone, Copy)]
pub struct StaticAnswer<'a> {
    pub body: &'a [u8],
    pub counts: [u16; 3],
    pub rcode: u8,
    pub authoritative: bool,
}

/// Every rendered answer of one snapshot.
#[derive(Debug, Default)]
pub struct StaticAnswers {
    /// Per zone, per entry: the index in `answers` of the entry's first answer, or NONE.
    first: Vec<Box<[u32]>>,
    /// Grouped by entry; a run ends with `last`.
    answers: Vec<Rendered>,
    bytes: Vec<u8>,
}

/// Stands in for routing while rendering: a dynamic name anywhere in the answer makes it
/// unfit for rendering.
struct NoRouting {
    touched: bool,
}

impl Dynamic for NoRouting {
    fn answer<S: Sink>(&mut self, _: u32, _: &[u8], _: u16, _: &mut S) -> DynamicOutcome<'_> {
        self.touched = true;
        DynamicOutcome::NoData
    }
}

impl StaticAnswers {
    /// Renders what can be rendered of `zones`.
    pub fn build(zones: &ZoneSet) -> Self {
        let mut out = Self {
            first: zones
                .zones()
                .iter()
                .map(|z| vec![NONE; z.entry_count()].into_boxed_slice())
                .collect(),
            answers: Vec::new(),
            bytes: Vec::new(),
        };
        let mut buf = vec![0u8; super::answer::MAX_MESSAGE];
        let mut question = [0u8; crate::zone::name::MAX_NAME_LEN + 4];
        let mut types: Vec<u16> = Vec::new();
        for (zi, entry, owner, node) in zones.direct_entries() {
            if node.dynamic.is_some() || out.bytes.len() >= MAX_BYTES {
                continue;
            }
            let Some(zone) = zones.zones().get(zi) else {
                continue;
            };
            types.clear();
            if node.get(rtype::CNAME).is_some() {
                types.extend([rtype::CNAME, rtype::A, rtype::AAAA]);
            } else {
                types.extend(node.rrsets.iter().map(|s| s.rtype));
            }
            let run_start = out.answers.len();
            for &qtype in &types {
                if qtype == rtype::ANY || qtype == rtype::DS {
                    continue;
                }
                let qlen = owner.len() + 4;
                question[..owner.len()].copy_from_slice(owner);
                question[owner.len()..owner.len() + 2].copy_from_slice(&qtype.to_be_bytes());
                question[owner.len() + 2..qlen].copy_from_slice(&CLASS_IN.to_be_bytes());
                let question = &question[..qlen];
                let mut w =
                    Writer::new(&mut buf, 0, 0, false, question, super::answer::MAX_MESSAGE);
                let mut routing = NoRouting { touched: false };
                let outcome = zones.resolve(
                    zone,
                    &question[..owner.len()],
                    owner,
                    Some(node),
                    qtype,
                    Transport::Udp,
                    &mut w,
                    &mut routing,
                );
                if routing.touched || w.is_truncated() {
                    continue;
                }
                let len = w.finish(None);
                let count = |i: usize| u16::from_be_bytes([buf[6 + 2 * i], buf[7 + 2 * i]]);
                let counts = [count(0), count(1), count(2)];
                let body = &buf[HEADER_LEN + qlen..len];
                let (Ok(start), Ok(body_len)) =
                    (u32::try_from(out.bytes.len()), u32::try_from(body.len()))
                else {
                    continue;
                };
                out.bytes.extend_from_slice(body);
                out.answers.push(Rendered {
                    qtype,
                    last: false,
                    rcode: outcome.rcode,
                    authoritative: outcome.authoritative,
                    counts,
                    start,
                    len: body_len,
                });
            }
            if out.answers.len() > run_start {
                if let Some(last) = out.answers.last_mut() {
                    last.last = true;
                }
                if let (Some(slot), Ok(first)) = (
                    out.first
                        .get_mut(zi)
                        .and_then(|f| f.get_mut(entry as usize)),
                    u32::try_from(run_start),
                ) {
                    *slot = first;
                }
            }
        }
        out.bytes.shrink_to_fit();
        out.answers.shrink_to_fit();
        out
    }

    /// The rendered answer to `qtype` at entry `entry` of zone `zone`, if there is one.
    pub fn get(&self, zone: usize, entry: u32, qtype: u16) -> Option<StaticAnswer<'_>> {
        let first = *self.first.get(zone)?.get(entry as usize)?;
        if first == NONE {
            return None;
        }
        for r in self.answers.get(first as usize..)? {
            if r.qtype == qtype {
                let body = self
                    .bytes
                    .get(r.start as usize..r.start as usize + r.len as usize)?;
                return Some(StaticAnswer {
                    body,
                    counts: r.counts,
                    rcode: r.rcode,
                    authoritative: r.authoritative,
                });
            }
            if r.last {
                break;
            }
        }
        None
    }

    /// Rendered answers and their bytes, for logs and tests.
    pub fn size(&self) -> (usize, usize) {
        (self.answers.len(), self.bytes.len())
    }
}
