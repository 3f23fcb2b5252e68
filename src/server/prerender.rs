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
//! A name that holds no CNAME gets one more body: the NODATA answer (the zone's SOA in the
//! authority section) for every type it does not hold. Its bytes depend only on the name's
//! length, so names of equal length share one copy.
//!
//! Not rendered (the general path answers): dynamic names and CNAMEs that lead to one, ANY,
//! types other than A/AAAA behind a CNAME, names below a cut or DNAME, wildcards, NXDOMAIN.

use crate::zone::{Dynamic, DynamicOutcome, Sink, Transport, ZoneSet, rtype};

use super::wire::{CLASS_IN, HEADER_LEN, Writer};

/// Upper bound on the bytes kept; names beyond it are answered the general way. Each
/// answer costs about its wire size plus 16 bytes, so this allows several million records.
const MAX_BYTES: usize = 128 << 20;

/// Marks an entry without rendered answers.
const NONE: u32 = u32::MAX;

/// The `qtype` of a NODATA body: it answers any type the name's run does not list.
/// (Type 0 is reserved and never stored; a question for it is answered NODATA too.)
const OTHER_TYPES: u16 = 0;

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
        // NODATA bodies already kept, by content: (zone, bytes) → start.
        let mut shared: std::collections::HashMap<(usize, Vec<u8>), u32> =
            std::collections::HashMap::new();
        for (zi, entry, owner, node) in zones.direct_entries() {
            if node.dynamic.is_some() || out.bytes.len() >= MAX_BYTES {
                continue;
            }
            let Some(zone) = zones.zones().get(zi) else {
                continue;
            };
            types.clear();
            let cname = node.get(rtype::CNAME).is_some();
            if cname {
                types.extend([rtype::CNAME, rtype::A, rtype::AAAA]);
            } else {
                types.extend(node.rrsets.iter().map(|s| s.rtype));
                // Then NODATA, asked as a type the name does not hold.
                if node.get(OTHER_TYPES).is_none() {
                    types.push(OTHER_TYPES);
                }
            }
            let run_start = out.answers.len();
            let mut all_rendered = true;
            for &listed in &types {
                if listed == OTHER_TYPES && !all_rendered {
                    // A type this name holds has no body: NODATA must not answer for it.
                    break;
                }
                let qtype = if listed == OTHER_TYPES {
                    (0xFF00..=0xFFFF)
                        .find(|&t| node.get(t).is_none())
                        .unwrap_or(0xFF00)
                } else {
                    listed
                };
                if qtype == rtype::ANY || qtype == rtype::DS {
                    all_rendered = false;
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
                    all_rendered = false;
                    continue;
                }
                let len = w.finish(None);
                let count = |i: usize| u16::from_be_bytes([buf[6 + 2 * i], buf[7 + 2 * i]]);
                let counts = [count(0), count(1), count(2)];
                let body = &buf[HEADER_LEN + qlen..len];
                let (Ok(new_start), Ok(body_len)) =
                    (u32::try_from(out.bytes.len()), u32::try_from(body.len()))
                else {
                    all_rendered = false;
                    continue;
                };
                let start = if listed == OTHER_TYPES {
                    *shared.entry((zi, body.to_vec())).or_insert_with(|| {
                        out.bytes.extend_from_slice(body);
                        new_start
                    })
                } else {
                    out.bytes.extend_from_slice(body);
                    new_start
                };
                out.answers.push(Rendered {
                    qtype: listed,
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
        if first == NONE || qtype == rtype::ANY {
            return None;
        }
        for r in self.answers.get(first as usize..)? {
            // The NODATA body comes last in its run: every listed type was passed.
            if r.qtype == qtype || r.qtype == OTHER_TYPES {
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
