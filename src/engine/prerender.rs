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
//! length (the SOA owner and names are pointers into the question), so a zone keeps one per
//! name length, and a name whose NODATA differs from it (its name is the SOA's MNAME, which
//! then compresses whole) keeps its own.
//!
//! A wildcard's own answers are rendered at its position; a name below it uses them when
//! they hold nothing but answer records owned by the name asked (`ANY_NAME`). NXDOMAIN is
//! not rendered here: the zone keeps its SOA rendered (`NegativeSoa`), and the engine copies
//! that.
//!
//! Not rendered (the general path answers): dynamic names and CNAMEs that lead to one, ANY,
//! types other than A/AAAA behind a CNAME, names below a cut or DNAME, and names below a
//! wildcard whose answer is more than that (MX, CNAME, or signed).

use crate::dns::wire::Writer;
use crate::dns::{HEADER_LEN, MAX_MESSAGE, Sink, class, rcode, rtype};
use std::sync::Arc;

use crate::zone::{Dynamic, DynamicOutcome, ZoneSet};

/// Upper bound on the bytes kept; names beyond it are answered the general way. An answer
/// costs its wire size plus 16 bytes, so this allows several million records.
const MAX_BYTES: usize = 128 << 20;

/// `first` of an entry without rendered answers.
const NONE: u32 = u32::MAX;
/// `first` of an entry whose only answer is its zone's NODATA for its name length.
const SHARED_NODATA_ONLY: u32 = u32::MAX - 1;

/// A [`Block`] holds the answers of one chunk of a zone's entries (the unit a reload shares):
/// an entry's position is its chunk's number shifted by this, and its place in the chunk.
const BLOCK_BITS: u32 = crate::zone::CHUNK_BITS;
const IN_BLOCK: usize = (1 << BLOCK_BITS) - 1;

/// Threads that render at most.
const MAX_THREADS: usize = 8;

/// The `qtype` of an entry's own NODATA body: it answers any type its run does not list.
/// (Type 0 is reserved; a name that holds it gets no NODATA body.)
const OTHER_TYPES: u16 = 0;

/// `Rendered::flags`.
const LAST: u8 = 1;
const AUTHORITATIVE: u8 = 2;
/// On the last answer of a run: other types get the zone's NODATA for the name's length.
const THEN_SHARED_NODATA: u8 = 4;
/// Answer records only, each owned by the question's name, nothing compressed against the
/// rest of the name: a wildcard's answer that serves every name the wildcard answers for.
const ANY_NAME: u8 = 8;

/// One rendered response body: 16 bytes besides the body itself.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rendered {
    qtype: u16,
    flags: u8,
    rcode: u8,
    counts: [u16; 3],
    len: u16,
    start: u32,
}

/// A rendered body, as the answer path uses it.
#[derive(Debug, Clone, Copy)]
pub struct StaticAnswer<'a> {
    pub body: &'a [u8],
    pub counts: [u16; 3],
    pub rcode: u8,
    pub authoritative: bool,
    /// The body answers a question of any name (see `ANY_NAME`).
    pub any_name: bool,
}

/// Every rendered answer of one snapshot.
#[derive(Debug, Default)]
pub struct StaticAnswers {
    /// Per zone, per chunk of its entries: their answers. Shared with the snapshot a reload
    /// replaces wherever they came out the same.
    blocks: Vec<Vec<Arc<Block>>>,
    /// Each zone's NODATA answers for names of one length.
    shared: SharedNodata,
    /// How long rendering took, for the logs.
    build_time: std::time::Duration,
}

/// The answers of the entries of one chunk of a zone's entries.
#[derive(Debug, Default, PartialEq)]
struct Block {
    /// Per entry: the index of its first answer in `answers`, NONE or SHARED_NODATA_ONLY.
    first: Box<[u32]>,
    /// Grouped by entry; a run ends with the LAST flag.
    answers: Box<[Rendered]>,
    bytes: Box<[u8]>,
}

/// A block being rendered (its buffers reused from block to block).
#[derive(Debug, Default)]
struct Scratch {
    first: Vec<u32>,
    answers: Vec<Rendered>,
    bytes: Vec<u8>,
}

impl Scratch {
    /// Appends an answer; false when it would not be found again (a block past 4 GiB).
    fn push(&mut self, mut r: Rendered, body: &[u8]) -> bool {
        let Ok(start) = u32::try_from(self.bytes.len()) else {
            return false;
        };
        r.start = start;
        self.bytes.extend_from_slice(body);
        self.answers.push(r);
        true
    }

    /// The block rendered, or `previous` when it is the same: then only one is kept.
    fn finish(&mut self, previous: Option<&Arc<Block>>) -> Arc<Block> {
        let same = previous.filter(|p| {
            *p.first == self.first[..]
                && *p.answers == self.answers[..]
                && *p.bytes == self.bytes[..]
        });
        let block = match same {
            Some(p) => Arc::clone(p),
            None => Arc::new(Block {
                first: self.first[..].into(),
                answers: self.answers[..].into(),
                bytes: self.bytes[..].into(),
            }),
        };
        self.first.clear();
        self.answers.clear();
        self.bytes.clear();
        block
    }
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

/// Renders one question with the real lookup and writer; `None` when the answer involves a
/// dynamic name or does not fit a message.
fn render(
    zones: &ZoneSet,
    zone: &crate::zone::Zone,
    owner: &[u8],
    direct: crate::zone::Direct<'_>,
    qtype: u16,
    buf: &mut [u8],
    dnssec: bool,
) -> Option<(Rendered, std::ops::Range<usize>)> {
    let mut question = [0u8; crate::dns::name::MAX_NAME_LEN + 4];
    let qlen = owner.len() + 4;
    question[..owner.len()].copy_from_slice(owner);
    question[owner.len()..owner.len() + 2].copy_from_slice(&qtype.to_be_bytes());
    question[owner.len() + 2..qlen].copy_from_slice(&class::IN.to_be_bytes());
    let question = &question[..qlen];
    let mut w = Writer::new(buf, 0, 0, false, question, MAX_MESSAGE);
    w.set_dnssec(dnssec);
    let mut routing = NoRouting { touched: false };
    let outcome = zones.resolve(
        zone,
        &question[..owner.len()],
        owner,
        crate::zone::Found::Exact(direct),
        qtype,
        &mut w,
        &mut routing,
    );
    if routing.touched {
        return None;
    }
    let (body, counts) = w.complete_body()?;
    // Not with signatures: a wildcard's signed answer needs the proof that the name asked
    // does not exist.
    let any_name = !dnssec
        && outcome.rcode == rcode::NOERROR
        && counts[0] > 0
        && counts[1..] == [0, 0]
        && crate::dns::wire::owned_by_question(body, counts[0]);
    let body = HEADER_LEN + qlen..HEADER_LEN + qlen + body.len();
    let rendered = Rendered {
        qtype,
        flags: if outcome.authoritative {
            AUTHORITATIVE
        } else {
            0
        } | if any_name { ANY_NAME } else { 0 },
        rcode: outcome.rcode,
        counts,
        len: u16::try_from(body.len()).ok()?,
        start: 0,
    };
    Some((rendered, body))
}

/// Room for a zone's shared NODATA bodies: one per name length in use, each about an SOA
/// record (one that does not fit is not shared: its names keep their own).
const SHARED_NODATA_BYTES: usize = 32 * 1024;

/// Names rendered on more than one thread from this many on (fewer: not worth a thread).
const PARALLEL_FROM: usize = 20_000;

/// Names of a zone tried, per name length, for the zone's shared NODATA.
const SHARED_TRIES: u8 = 8;

impl StaticAnswers {
    /// Renders what can be rendered of `zones`; with `dnssec`, the answers to DO queries of
    /// the signed zones (with their signatures and proofs), nothing of the others.
    ///
    /// The zones' shared NODATA answers are chosen first; then the blocks of names are
    /// shared out over the cores, in runs. `previous` is the serving snapshot's answers and
    /// zones, on a reload: a block whose chunk of the zone is the serving zone's too (see
    /// `zone::entries`) and that renders the same as its block there is taken from it, so
    /// the two snapshots hold it once.
    pub fn build(zones: &ZoneSet, dnssec: bool, previous: Option<(&Self, &ZoneSet)>) -> Self {
        let started = std::time::Instant::now();
        let shared = SharedNodata::choose(zones, dnssec);
        // Every (zone, block) to render, with the previous snapshot's block at its place.
        let mut jobs: Vec<(usize, usize, Option<&Arc<Block>>)> = Vec::new();
        for (zi, zone) in zones.zones().iter().enumerate() {
            if dnssec && !zone.is_signed() {
                continue;
            }
            let old = previous.and_then(|(answers, old_zones)| {
                let at = old_zones.position_of(zone.origin())?;
                let kept = zone.chunks_kept_from(old_zones.zones().get(at)?);
                Some((answers.blocks.get(at)?, kept))
            });
            for k in 0..zone.chunk_count() {
                let block = old.as_ref().and_then(|(blocks, kept)| {
                    let j = (*kept.get(k)?)?;
                    blocks.get(j)
                });
                jobs.push((zi, k, block));
            }
        }
        let total: usize = zones.zones().iter().map(|z| z.entry_count()).sum();
        let threads = if total < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        };
        let rendered: Vec<Vec<Arc<Block>>> = std::thread::scope(|scope| {
            let (shared, jobs) = (&shared, &jobs);
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share = jobs.len() * t / threads..jobs.len() * (t + 1) / threads;
                    let budget = MAX_BYTES / threads;
                    scope.spawn(move || shared.render_share(zones, dnssec, &jobs[share], budget))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut blocks: Vec<Vec<Arc<Block>>> = zones.zones().iter().map(|_| Vec::new()).collect();
        for ((zi, _, _), block) in jobs.iter().zip(rendered.into_iter().flatten()) {
            if let Some(zone) = blocks.get_mut(*zi) {
                zone.push(block);
            }
        }
        Self {
            blocks,
            shared,
            build_time: started.elapsed(),
        }
    }

    /// How many blocks of answers this snapshot shares with `other`, and how many it has.
    pub fn blocks_shared_with(&self, other: &Self) -> (usize, usize) {
        let theirs: rustc_hash::FxHashSet<*const Block> =
            other.blocks.iter().flatten().map(Arc::as_ptr).collect();
        let shared = self
            .blocks
            .iter()
            .flatten()
            .filter(|b| theirs.contains(&Arc::as_ptr(b)))
            .count();
        (shared, self.blocks.iter().map(Vec::len).sum())
    }
}

/// Each zone's NODATA answers shared by the names of one length, chosen before the names
/// are shared out: rendered for the first name of that length whose NODATA does not spell
/// the name out (a few tried per length). Names whose NODATA is byte for byte the same
/// point to it instead of keeping their own.
#[derive(Debug, Default)]
struct SharedNodata {
    answers: Vec<Rendered>,
    bytes: Vec<u8>,
    /// Per zone, per name length: the position in `answers`, or NONE.
    at: Vec<Box<[u32]>>,
}

impl SharedNodata {
    fn choose(zones: &ZoneSet, dnssec: bool) -> Self {
        let mut this = Self {
            answers: Vec::new(),
            bytes: Vec::new(),
            at: zones
                .zones()
                .iter()
                .map(|_| vec![NONE; crate::dns::name::MAX_NAME_LEN + 1].into_boxed_slice())
                .collect(),
        };
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut tries = [0u8; crate::dns::name::MAX_NAME_LEN + 1];
        for (zi, zone) in zones.zones().iter().enumerate() {
            if dnssec && !zone.is_signed() {
                continue;
            }
            tries.fill(0);
            for (entry, owner, node) in zones.direct_entries_of(zi) {
                let Some(tried) = tries.get_mut(owner.len()) else {
                    continue;
                };
                if *tried >= SHARED_TRIES
                    || node.dynamic().is_some()
                    || node.get(rtype::CNAME).is_some()
                {
                    continue;
                }
                *tried += 1;
                let direct = crate::zone::Direct { entry, node };
                let Some(qtype) = (0xFF00..=0xFFFF).find(|&t| node.get(t).is_none()) else {
                    continue;
                };
                let Some((mut r, body)) =
                    render(zones, zone, owner, direct, qtype, &mut buf, dnssec)
                else {
                    continue;
                };
                // A pointer to the whole question name (other than at the apex) means this
                // name's own text is in the SOA: it is not the typical one of its length.
                let typical = owner == zone.origin()
                    || !buf[body.clone()].windows(2).any(|w| w == [0xC0, 0x0C]);
                let (Ok(at), Ok(start)) = (
                    u32::try_from(this.answers.len()),
                    u32::try_from(this.bytes.len()),
                ) else {
                    continue;
                };
                if typical && this.bytes.len() < SHARED_NODATA_BYTES * zones.zones().len() {
                    r.qtype = OTHER_TYPES;
                    r.flags |= LAST;
                    r.start = start;
                    this.bytes.extend_from_slice(&buf[body]);
                    this.answers.push(r);
                    if let Some(slot) = this.at.get_mut(zi).and_then(|n| n.get_mut(owner.len())) {
                        *slot = at;
                    }
                    *tried = SHARED_TRIES;
                }
            }
        }
        this
    }

    /// The zone's shared NODATA for names of `len` bytes, if one was chosen.
    fn get(&self, zone: usize, len: usize) -> Option<StaticAnswer<'_>> {
        let at = *self.at.get(zone)?.get(len)?;
        self.answers.get(at as usize)?.answer(&self.bytes)
    }

    /// Renders the blocks `jobs` (zone, block, the previous snapshot's block there), with
    /// at most `budget` bytes of new answers; the blocks in the same order.
    fn render_share(
        &self,
        zones: &ZoneSet,
        dnssec: bool,
        jobs: &[(usize, usize, Option<&Arc<Block>>)],
        budget: usize,
    ) -> Vec<Arc<Block>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut types: Vec<u16> = Vec::new();
        let mut block = Scratch::default();
        let mut spent = 0usize;
        let mut out = Vec::with_capacity(jobs.len());
        for &(zi, k, previous) in jobs {
            let Some(zone) = zones.zones().get(zi) else {
                continue;
            };
            block.first.resize(zone.chunk_entries(k).count(), NONE);
            for (entry, owner, node) in zones.direct_entries_in_chunk(zi, k) {
                if node.dynamic().is_some() || spent + block.bytes.len() >= budget {
                    continue;
                }
                let first = self.render_entry(
                    zones,
                    (zi, zone),
                    (entry, owner, node),
                    dnssec,
                    (&mut buf, &mut types),
                    &mut block,
                );
                if let Some(slot) = block.first.get_mut(entry as usize & IN_BLOCK) {
                    *slot = first;
                }
            }
            let done = block.finish(previous);
            if !previous.is_some_and(|p| Arc::ptr_eq(p, &done)) {
                spent += done.bytes.len();
            }
            out.push(done);
        }
        out
    }

    /// Renders every answer of one entry into `block`; what its `first` is.
    fn render_entry(
        &self,
        zones: &ZoneSet,
        (zi, zone): (usize, &crate::zone::Zone),
        (entry, owner, node): (u32, &[u8], &crate::zone::Node),
        dnssec: bool,
        (buf, types): (&mut [u8], &mut Vec<u16>),
        block: &mut Scratch,
    ) -> u32 {
        let direct = crate::zone::Direct { entry, node };
        let run_start = block.answers.len();
        let cname = node.get(rtype::CNAME).is_some();
        types.clear();
        if cname {
            types.extend([rtype::CNAME, rtype::A, rtype::AAAA]);
        } else {
            types.extend(node.rrsets.iter().map(|s| s.rtype));
        }
        let mut all_rendered = true;
        for &qtype in types.iter() {
            // Neither ever reaches a rendered answer (ANY is refused by `get`, DS is not
            // looked up directly); a name holding one gets no NODATA either.
            if qtype == rtype::ANY || qtype == rtype::DS || qtype == OTHER_TYPES {
                all_rendered = false;
                continue;
            }
            match render(zones, zone, owner, direct, qtype, buf, dnssec) {
                Some((r, body)) if block.push(r, &buf[body.clone()]) => {}
                _ => all_rendered = false,
            }
        }
        // NODATA, asked as a type the name does not hold: only when every type it holds has
        // its own body, or NODATA would answer for one of them. The zone's shared one when it
        // is the same, else its own (last in its run).
        let mut then_shared = false;
        if !cname
            && all_rendered
            && let Some(qtype) = (0xFF00..=0xFFFF).find(|&t| node.get(t).is_none())
            && let Some((mut r, body)) = render(zones, zone, owner, direct, qtype, buf, dnssec)
        {
            r.qtype = OTHER_TYPES;
            let shared = self.get(zi, owner.len());
            if shared.is_some_and(|s| s.same_as(&r, &buf[body.clone()])) {
                then_shared = true;
            } else {
                block.push(r, &buf[body]);
            }
        }
        if block.answers.len() > run_start {
            if let Some(last) = block.answers.last_mut() {
                last.flags |= LAST | if then_shared { THEN_SHARED_NODATA } else { 0 };
            }
            u32::try_from(run_start).unwrap_or(NONE)
        } else if then_shared {
            SHARED_NODATA_ONLY
        } else {
            NONE
        }
    }
}

impl Rendered {
    fn answer<'a>(&self, bytes: &'a [u8]) -> Option<StaticAnswer<'a>> {
        Some(StaticAnswer {
            body: bytes.get(self.start as usize..self.start as usize + self.len as usize)?,
            counts: self.counts,
            rcode: self.rcode,
            authoritative: self.flags & AUTHORITATIVE != 0,
            any_name: self.flags & ANY_NAME != 0,
        })
    }
}

impl StaticAnswers {
    /// The rendered answer to `qtype` for entry `entry` of zone `zone`, whose name is
    /// `name_len` bytes long, if there is one.
    pub fn get(
        &self,
        zone: usize,
        entry: u32,
        name_len: usize,
        qtype: u16,
    ) -> Option<StaticAnswer<'_>> {
        let entry = entry as usize;
        let block = self.blocks.get(zone)?.get(entry >> BLOCK_BITS)?;
        let first = *block.first.get(entry & IN_BLOCK)?;
        if first == NONE || qtype == rtype::ANY {
            return None;
        }
        if first == SHARED_NODATA_ONLY {
            return self.shared.get(zone, name_len);
        }
        for r in block.answers.get(first as usize..)? {
            // A name's own NODATA comes last in its run: every listed type was passed.
            if r.qtype == qtype || r.qtype == OTHER_TYPES {
                return r.answer(&block.bytes);
            }
            if r.flags & LAST != 0 {
                if r.flags & THEN_SHARED_NODATA != 0 {
                    return self.shared.get(zone, name_len);
                }
                break;
            }
        }
        None
    }

    /// Rendered answers and their bytes, for logs and tests.
    pub fn size(&self) -> (usize, usize) {
        let blocks = self.blocks.iter().flatten();
        let answers =
            blocks.clone().map(|b| b.answers.len()).sum::<usize>() + self.shared.answers.len();
        let bytes = blocks.map(|b| b.bytes.len()).sum::<usize>() + self.shared.bytes.len();
        (answers, bytes)
    }

    /// How long rendering took.
    pub fn build_time(&self) -> std::time::Duration {
        self.build_time
    }
}

impl StaticAnswer<'_> {
    fn same_as(&self, r: &Rendered, body: &[u8]) -> bool {
        self.body == body
            && self.counts == r.counts
            && self.rcode == r.rcode
            && self.authoritative == (r.flags & AUTHORITATIVE != 0)
    }
}
