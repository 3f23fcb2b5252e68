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
//! Not rendered (the general path answers): dynamic names and CNAMEs that lead to one, ANY,
//! types other than A/AAAA behind a CNAME, names below a cut or DNAME, wildcards, NXDOMAIN.

use crate::dns::wire::Writer;
use crate::dns::{HEADER_LEN, MAX_MESSAGE, Sink, class, rtype};
use crate::pages::{PagesVec, ZeroValid};
use crate::zone::{Dynamic, DynamicOutcome, ZoneSet};

/// Upper bound on the bytes kept; names beyond it are answered the general way. An answer
/// costs its wire size plus 16 bytes, so this allows several million records.
const MAX_BYTES: usize = 128 << 20;

/// `first` of an entry without rendered answers.
const NONE: u32 = u32::MAX;
/// `first` of an entry whose only answer is its zone's NODATA for its name length.
const SHARED_NODATA_ONLY: u32 = u32::MAX - 1;

/// A position in the answers: the part in the top bits, the index in its part below.
const PART_SHIFT: u32 = 28;
const INDEX_MASK: u32 = (1 << PART_SHIFT) - 1;
/// Threads that render (the shared NODATA answers are one part more; NONE and
/// SHARED_NODATA_ONLY lie in the unused top part).
const MAX_THREADS: usize = 8;

/// The position of answer `index` of part `part`, if it can be told apart from NONE and
/// SHARED_NODATA_ONLY.
fn position(part: usize, index: usize) -> Option<u32> {
    let part = u32::try_from(part)
        .ok()
        .filter(|&p| p <= MAX_THREADS as u32)?;
    let index = u32::try_from(index).ok().filter(|&i| i <= INDEX_MASK)?;
    Some(part << PART_SHIFT | index)
}

/// The `qtype` of an entry's own NODATA body: it answers any type its run does not list.
/// (Type 0 is reserved; a name that holds it gets no NODATA body.)
const OTHER_TYPES: u16 = 0;

/// `Rendered::flags`.
const LAST: u8 = 1;
const AUTHORITATIVE: u8 = 2;
/// On the last answer of a run: other types get the zone's NODATA for the name's length.
const THEN_SHARED_NODATA: u8 = 4;

/// One rendered response body: 16 bytes besides the body itself.
#[derive(Debug, Clone, Copy)]
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
}

/// Every rendered answer of one snapshot.
#[derive(Debug, Default)]
pub struct StaticAnswers {
    /// Per zone, per entry: the [`position`] of the entry's first answer, NONE or
    /// SHARED_NODATA_ONLY.
    first: Vec<Box<[u32]>>,
    /// Per zone, per name length: the [`position`] of the shared NODATA, or NONE.
    nodata: Vec<Box<[u32]>>,
    /// As the threads rendered them, and the shared NODATA answers last: kept apart, not
    /// copied into one buffer (which cost the whole size again while it was made).
    parts: Vec<Part>,
    /// How long rendering took, for the logs.
    build_time: std::time::Duration,
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
    let body = HEADER_LEN + qlen..HEADER_LEN + qlen + body.len();
    let rendered = Rendered {
        qtype,
        flags: if outcome.authoritative {
            AUTHORITATIVE
        } else {
            0
        },
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

/// Answers rendered apart (a share of the names, on a thread of its own; or the shared
/// NODATA answers), kept as it is: a [`position`] names the part.
#[derive(Debug)]
struct Part {
    /// Grouped by entry; a run ends with the LAST flag.
    answers: PagesVec<Rendered>,
    bytes: PagesVec<u8>,
    /// [zone, entry, first answer of the entry's run or SHARED_NODATA_ONLY]; dropped when
    /// `StaticAnswers::first` is filled in. In pages too: freed in the malloc arena of the
    /// thread that rendered it, it stayed resident.
    firsts: Option<PagesVec<[u32; 3]>>,
}

// SAFETY: Rendered is integers only; all zeros is a valid value.
unsafe impl ZeroValid for Rendered {}

impl Part {
    /// Room for `bytes` of bodies (and as many answers as bodies that small could make)
    /// of at most `names` names.
    fn with_limit(bytes: usize, names: usize) -> Self {
        Self {
            // A body holds at least one record: 12 bytes or more.
            answers: PagesVec::with_limit(bytes / 12 + 1),
            bytes: PagesVec::with_limit(bytes),
            firsts: Some(PagesVec::with_limit(names)),
        }
    }

    /// Notes where entry `entry` of zone `zone` starts its answers (one call per entry).
    fn record_first(&mut self, zone: u32, entry: u32, first: u32) {
        if let Some(firsts) = &mut self.firsts {
            firsts.push([zone, entry, first]);
        }
    }

    /// Appends an answer; false when the part is full.
    fn push(&mut self, mut r: Rendered, body: &[u8]) -> bool {
        let Ok(start) = u32::try_from(self.bytes.len()) else {
            return false;
        };
        r.start = start;
        self.bytes.extend_from_slice(body) && self.answers.push(r)
    }
}

impl StaticAnswers {
    /// Renders what can be rendered of `zones`; with `dnssec`, the answers to DO queries of
    /// the signed zones (with their signatures and proofs), nothing of the others.
    ///
    /// The zones' shared NODATA answers are chosen first; then the names are shared out
    /// over the cores in runs of positions, each run rendered on a thread of its own, and
    /// the threads' parts kept as they are.
    pub fn build(zones: &ZoneSet, dnssec: bool) -> Self {
        let started = std::time::Instant::now();
        let shared = SharedNodata::choose(zones, dnssec);
        let total: usize = zones.zones().iter().map(|z| z.entry_count()).sum();
        let threads = if total < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        };
        let mut parts: Vec<Part> = std::thread::scope(|scope| {
            let shared = &shared;
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share = total * t / threads..total * (t + 1) / threads;
                    scope.spawn(move || shared.render_share(zones, dnssec, share, threads))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut out = Self {
            first: zones
                .zones()
                .iter()
                .map(|z| vec![NONE; z.entry_count()].into_boxed_slice())
                .collect(),
            nodata: Vec::new(),
            parts: Vec::new(),
            build_time: std::time::Duration::ZERO,
        };
        // The shared NODATA answers are the last part.
        let shared_part = parts.len();
        out.nodata = shared.at;
        for slot in out.nodata.iter_mut().flat_map(|n| n.iter_mut()) {
            if *slot != NONE {
                *slot = position(shared_part, *slot as usize).unwrap_or(NONE);
            }
        }
        parts.push(shared.part);
        for (p, part) in parts.iter_mut().enumerate() {
            for &[zi, entry, first] in part.firsts.take().as_deref().unwrap_or_default() {
                let first = match first {
                    SHARED_NODATA_ONLY => first,
                    _ => position(p, first as usize).unwrap_or(NONE),
                };
                if let Some(slot) = out
                    .first
                    .get_mut(zi as usize)
                    .and_then(|f| f.get_mut(entry as usize))
                {
                    *slot = first;
                }
            }
        }
        out.parts = parts;
        out.build_time = started.elapsed();
        out
    }

    /// The answer at `position`.
    fn at(&self, position: u32) -> Option<(&Part, &[Rendered])> {
        let part = self.parts.get((position >> PART_SHIFT) as usize)?;
        let answers = part.answers.get((position & INDEX_MASK) as usize..)?;
        Some((part, answers))
    }
}

/// Each zone's NODATA answers shared by the names of one length, chosen before the names
/// are shared out: rendered for the first name of that length whose NODATA does not spell
/// the name out (a few tried per length). Names whose NODATA is byte for byte the same
/// point to it instead of keeping their own.
struct SharedNodata {
    part: Part,
    /// Per zone, per name length: the position in `part.answers`, or NONE.
    at: Vec<Box<[u32]>>,
}

impl SharedNodata {
    fn choose(zones: &ZoneSet, dnssec: bool) -> Self {
        let mut this = Self {
            // Per zone, one body per name length at most.
            part: Part::with_limit(zones.zones().len() * SHARED_NODATA_BYTES, 0),
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
            for (entry, owner, node) in zones.direct_entries_in(zi, 0..zone.entry_count()) {
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
                if typical {
                    r.qtype = OTHER_TYPES;
                    r.flags |= LAST;
                    let at = u32::try_from(this.part.answers.len()).unwrap_or(NONE);
                    if !this.part.push(r, &buf[body]) {
                        continue;
                    }
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
        self.part.answers.get(at as usize)?.answer(&self.part.bytes)
    }

    /// Renders the names at positions `share` (counted over all zones' entries in order);
    /// `threads` shares in all (each keeps within its part of the byte budget).
    fn render_share(
        &self,
        zones: &ZoneSet,
        dnssec: bool,
        share: std::ops::Range<usize>,
        threads: usize,
    ) -> Part {
        let budget = MAX_BYTES / threads.max(1);
        // Reserved, not resident: only what is written costs memory.
        let mut part = Part::with_limit(budget + MAX_MESSAGE, share.len());
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut types: Vec<u16> = Vec::new();
        let mut base = 0;
        for (zi, zone) in zones.zones().iter().enumerate() {
            let count = zone.entry_count();
            let range = share.start.saturating_sub(base)..share.end.saturating_sub(base).min(count);
            base += count;
            if range.is_empty() || (dnssec && !zone.is_signed()) {
                continue;
            }
            for (entry, owner, node) in zones.direct_entries_in(zi, range) {
                if node.dynamic().is_some() || part.bytes.len() >= budget {
                    continue;
                }
                let direct = crate::zone::Direct { entry, node };
                let run_start = part.answers.len();
                let cname = node.get(rtype::CNAME).is_some();
                types.clear();
                if cname {
                    types.extend([rtype::CNAME, rtype::A, rtype::AAAA]);
                } else {
                    types.extend(node.rrsets.iter().map(|s| s.rtype));
                }
                let mut all_rendered = true;
                for &qtype in &types {
                    // Neither ever reaches a rendered answer (ANY is refused by `get`, DS is
                    // not looked up directly); a name holding one gets no NODATA either.
                    if qtype == rtype::ANY || qtype == rtype::DS || qtype == OTHER_TYPES {
                        all_rendered = false;
                        continue;
                    }
                    match render(zones, zone, owner, direct, qtype, &mut buf, dnssec) {
                        Some((r, body)) if part.push(r, &buf[body.clone()]) => {}
                        _ => all_rendered = false,
                    }
                }
                // NODATA, asked as a type the name does not hold: only when every type it
                // holds has its own body, or NODATA would answer for one of them. The zone's
                // shared one when it is the same, else its own (last in its run).
                let mut then_shared = false;
                if !cname
                    && all_rendered
                    && let Some(qtype) = (0xFF00..=0xFFFF).find(|&t| node.get(t).is_none())
                    && let Some((mut r, body)) =
                        render(zones, zone, owner, direct, qtype, &mut buf, dnssec)
                {
                    r.qtype = OTHER_TYPES;
                    let shared = self.get(zi, owner.len());
                    if shared.is_some_and(|s| s.same_as(&r, &buf[body.clone()])) {
                        then_shared = true;
                    } else if !part.push(r, &buf[body]) {
                        then_shared = false;
                    }
                }
                if part.answers.len() > run_start {
                    if let Some(last) = part.answers.last_mut() {
                        last.flags |= LAST | if then_shared { THEN_SHARED_NODATA } else { 0 };
                    }
                    if let (Ok(zi), Ok(first)) = (u32::try_from(zi), u32::try_from(run_start)) {
                        part.record_first(zi, entry, first);
                    }
                } else if then_shared && let Ok(zi) = u32::try_from(zi) {
                    part.record_first(zi, entry, SHARED_NODATA_ONLY);
                }
            }
        }
        part
    }
}

impl Rendered {
    fn answer<'a>(&self, bytes: &'a [u8]) -> Option<StaticAnswer<'a>> {
        Some(StaticAnswer {
            body: bytes.get(self.start as usize..self.start as usize + self.len as usize)?,
            counts: self.counts,
            rcode: self.rcode,
            authoritative: self.flags & AUTHORITATIVE != 0,
        })
    }
}

impl StaticAnswers {
    /// The zone's NODATA answer for names of `len` bytes, if one was rendered.
    fn shared_nodata(&self, zone: usize, len: usize) -> Option<StaticAnswer<'_>> {
        let (part, answers) = self.at(*self.nodata.get(zone)?.get(len)?)?;
        answers.first()?.answer(&part.bytes)
    }

    /// The rendered answer to `qtype` for entry `entry` of zone `zone`, whose name is
    /// `name_len` bytes long, if there is one.
    pub fn get(
        &self,
        zone: usize,
        entry: u32,
        name_len: usize,
        qtype: u16,
    ) -> Option<StaticAnswer<'_>> {
        let first = *self.first.get(zone)?.get(entry as usize)?;
        if first == NONE || qtype == rtype::ANY {
            return None;
        }
        if first == SHARED_NODATA_ONLY {
            return self.shared_nodata(zone, name_len);
        }
        let (part, answers) = self.at(first)?;
        for r in answers {
            // A name's own NODATA comes last in its run: every listed type was passed.
            if r.qtype == qtype || r.qtype == OTHER_TYPES {
                return r.answer(&part.bytes);
            }
            if r.flags & LAST != 0 {
                if r.flags & THEN_SHARED_NODATA != 0 {
                    return self.shared_nodata(zone, name_len);
                }
                break;
            }
        }
        None
    }

    /// Rendered answers and their bytes, for logs and tests.
    pub fn size(&self) -> (usize, usize) {
        let answers = self.parts.iter().map(|p| p.answers.len()).sum();
        (answers, self.parts.iter().map(|p| p.bytes.len()).sum())
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
