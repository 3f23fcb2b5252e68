//! Zone transfer out over TCP: AXFR (RFC 5936), and IXFR (RFC 1995) answered with the
//! differences kept in the journal (`journal`) when they reach back to the client's serial,
//! else with the whole zone, or with the SOA alone when the client is current. Off unless `[transfer]` names the
//! zone; allowed by source network and/or TSIG (RFC 8945), every message signed when the
//! request was. Dynamic names are not transferred (their answers depend on the client).
//!
//! Here: the policy (who may transfer, whom to notify) and the messages, produced one at a
//! time by [`Transfer::next_message`]; `net::xfr` writes them to the connection. Messages
//! stay near [`MESSAGE_TARGET`] bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::Snapshot;
use super::journal::{Change, Journal};
use crate::dns::name::{end_compressed, lower_into, name_buf, to_text};
use crate::dns::tsig::{self, Signer, TsigKey};
use crate::dns::wire::{self, OptOut, ParseError, Writer};
use crate::dns::{HEADER_LEN, MAX_MESSAGE, class, rcode, rtype};
use crate::zone::Zone;

/// Who may transfer one zone, and whom to notify.
#[derive(Debug, Clone, Default)]
pub struct ZoneTransfer {
    /// Empty: any address (then `tsig` is set).
    pub allow: Vec<IpNet>,
    /// Index into [`Transfers::keys`].
    pub tsig: Option<usize>,
    pub notify: Vec<SocketAddr>,
    /// Differences kept for IXFR (RFC 1995): how many serials back (0: always AXFR-style).
    pub history: usize,
}

impl ZoneTransfer {
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&addr))
    }
}

/// Every key and every zone's transfer policy. Empty by default: no transfers.
#[derive(Debug, Default)]
pub struct Transfers {
    pub keys: Vec<TsigKey>,
    zones: FxHashMap<Box<[u8]>, ZoneTransfer>,
}

impl Transfers {
    /// The policy of the zone with this lowercase wire origin, if transfers are configured.
    pub fn zone(&self, origin: &[u8]) -> Option<&ZoneTransfer> {
        self.zones.get(origin)
    }

    /// Every configured zone (lowercase wire origin) and its policy.
    pub fn zones(&self) -> impl Iterator<Item = (&[u8], &ZoneTransfer)> {
        self.zones.iter().map(|(k, v)| (&k[..], v))
    }

    /// Sets the policy of the zone with this lowercase wire origin.
    pub fn insert(&mut self, origin: Box<[u8]>, policy: ZoneTransfer) {
        self.zones.insert(origin, policy);
    }
}

/// Size a transfer message is filled to (well under the 64 KiB limit of a TCP message).
pub const MESSAGE_TARGET: usize = 16 * 1024;

/// Is this TCP message an AXFR or IXFR query? Cheap: header and question only.
pub fn is_transfer(msg: &[u8]) -> bool {
    if msg.len() < HEADER_LEN || msg[2] & 0xF8 != 0 || msg[4..6] != [0, 1] {
        return false; // a response, another opcode, or not one question
    }
    let mut pos = HEADER_LEN;
    while let Some(&l) = msg.get(pos) {
        if l == 0 {
            let t = msg
                .get(pos + 1..pos + 3)
                .map(|b| u16::from_be_bytes([b[0], b[1]]));
            return matches!(t, Some(rtype::AXFR | rtype::IXFR));
        }
        if l > 63 {
            return false;
        }
        pos += l as usize + 1;
    }
    false
}

pub enum Start {
    /// Unparseable: say nothing.
    Nothing,
    /// A single message (already length-prefixed): an error, or the SOA alone.
    One(Vec<u8>),
    Zone(Box<Transfer>),
}

/// The parts of the request every response message repeats.
struct Reply<'r> {
    id: u16,
    question: &'r [u8],
    edns: bool,
    udp_size: u16,
}

impl Reply<'_> {
    /// A length-prefixed message: the header (QR, AA when `aa`, `rcode`), the question when
    /// `question`, the records `fill` writes (it gets the byte budget left for them), OPT
    /// when the request had one, signed when `signer` is given.
    fn message(
        &self,
        (rcode, aa, question): (u8, bool, bool),
        signer: Option<&mut Signer>,
        now: u64,
        fill: impl FnOnce(&mut Writer<'_>, usize),
    ) -> Vec<u8> {
        let reserve = signer.as_ref().map_or(0, |s| s.record_len());
        let mut m = vec![0u8; 2 + MAX_MESSAGE];
        let opt = OptOut {
            udp_size: self.udp_size,
            ..OptOut::default()
        };
        let len = {
            let question = if question { self.question } else { &[] };
            let budget = MAX_MESSAGE - reserve;
            let mut w = Writer::new(&mut m[2..], self.id, 0, false, question, budget);
            w.set_rcode(rcode);
            w.set_authoritative(aa);
            if self.edns {
                w.reserve_opt(&opt);
            }
            fill(&mut w, budget);
            w.finish(self.edns.then_some(&opt))
        };
        let len = match signer {
            Some(s) => s.sign(&mut m[2..], len, now),
            None => len,
        };
        m.truncate(2 + len);
        m[..2].copy_from_slice(&(len as u16).to_be_bytes());
        m
    }

    /// A message without records: an error, or a refusal.
    fn empty(&self, rcode: u8, signer: Option<&mut Signer>, now: u64) -> Vec<u8> {
        self.message(
            (rcode, false, !self.question.is_empty()),
            signer,
            now,
            |_, _| {},
        )
    }
}

/// Decides what to answer: a refusal, the SOA alone (IXFR, client current), or the zone.
pub fn start(snapshot: &Snapshot, request: &[u8], peer: IpAddr, now: u64) -> Start {
    let query = match wire::parse_query(request) {
        Ok(q) => q,
        Err(ParseError::Drop) => return Start::Nothing,
        Err(ParseError::Reply {
            id,
            rcode,
            question_end,
            ..
        }) => {
            let question = request.get(HEADER_LEN..question_end).unwrap_or(&[]);
            let r = Reply {
                id,
                question,
                edns: false,
                udp_size: 0,
            };
            return Start::One(r.empty(rcode, None, now));
        }
    };
    let question = &request[HEADER_LEN..HEADER_LEN + query.qname.len() + 4];
    let reply = Reply {
        id: query.id,
        question,
        edns: query.edns.is_some(),
        udp_size: snapshot.max_udp_payload,
    };
    let zone_text = to_text(query.qname);
    let kind = if query.qtype == rtype::AXFR {
        "AXFR"
    } else {
        "IXFR"
    };

    // TSIG first: a bad signature is answered as such whatever else is wrong.
    let (mut signer, signed_with) = match verify_tsig(snapshot, request, &query, &reply, now) {
        Ok(signed) => signed,
        Err(why) => {
            if let Some((key, error)) = why.0 {
                tracing::warn!(zone = %zone_text, %peer, key = %to_text(&key),
                    tsig_error = error, "{kind} refused: TSIG verification failed");
            }
            return why.1;
        }
    };
    let refuse = |why: &str, signer: Option<&mut Signer>| {
        tracing::warn!(zone = %zone_text, %peer, "{kind} refused: {why}");
        Start::One(reply.empty(rcode::REFUSED, signer, now))
    };

    let mut key = name_buf();
    let key = lower_into(query.qname, &mut key);
    let zone_index = snapshot.zones.position_of(key);
    let (Some(zone_index), class::IN) = (zone_index, query.qclass) else {
        return refuse("not a zone served here", signer.as_mut());
    };
    let Some(policy) = snapshot.transfer.zone(key) else {
        return refuse("transfers are not enabled for this zone", signer.as_mut());
    };
    if !policy.allows_address(peer) {
        return refuse("address not allowed", signer.as_mut());
    }
    if let Some(required) = policy.tsig
        && signed_with != Some(required)
    {
        return refuse("the zone requires a TSIG key", signer.as_mut());
    }
    let zone = &snapshot.zones.zones()[zone_index];
    let Some((soa_ttl, soa)) = zone.soa().and_then(|s| Some((s.ttl, s.rdata.first()?))) else {
        return Start::One(reply.empty(rcode::SERVFAIL, signer.as_mut(), now));
    };

    let ixfr = query.qtype == rtype::IXFR;
    let mut incremental = None;
    if ixfr {
        let Some(client) = ixfr_serial(request) else {
            return Start::One(reply.empty(rcode::FORMERR, signer.as_mut(), now));
        };
        let ours = zone.serial();
        // RFC 1995 §2: the client has this version or a newer one: the SOA alone.
        if client == ours || (client.wrapping_sub(ours) as i32) > 0 {
            tracing::info!(zone = %zone_text, %peer, serial = ours, "IXFR: client is current");
            let m = reply.message((0, true, true), signer.as_mut(), now, |w, budget| {
                w.transfer_record(zone.origin(), rtype::SOA, soa_ttl, soa, budget);
            });
            return Start::One(m);
        }
        incremental = journal_chain(snapshot, key, client, ours);
        if incremental.is_none() {
            tracing::info!(zone = %zone_text, %peer, from = client, to = ours,
                "IXFR: no differences kept from that serial, sending the whole zone");
        }
    }

    let owners = if incremental.is_some() {
        Vec::new()
    } else {
        transfer_order(zone)
    };
    Start::Zone(Box::new(Transfer {
        zone: zone_index,
        id: query.id,
        question: question.to_vec(),
        edns: query.edns.is_some(),
        ixfr,
        incremental,
        owners,
        stage: Stage::FirstSoa,
        signer,
        records: 0,
        messages: 0,
    }))
}

/// The differences from the client's serial to ours, if the journal holds them all (else
/// the whole zone goes, RFC 1995 §4): the journal and the first diff to send.
fn journal_chain(
    snapshot: &Snapshot,
    origin: &[u8],
    client: u32,
    ours: u32,
) -> Option<(Arc<Journal>, usize)> {
    let journal = snapshot.journals.get(origin)?;
    Some((journal.clone(), journal.chain(client, ours)?))
}

/// The owners a transfer walks, as positions in [`Zone::entries`]: the apex first, then every
/// other name with records in canonical-ish (byte) order. A dynamic name has records only
/// in a signed zone: its default answer, signed, and its NSEC (what a secondary serves).
fn transfer_order(zone: &Zone) -> Vec<u32> {
    let mut owners: Vec<(&[u8], u32)> = zone
        .entries()
        .filter(|(_, name, n)| !n.rrsets.is_empty() && *name != zone.origin())
        .map(|(i, name, _)| (name, i))
        .collect();
    owners.sort_unstable();
    let apex = zone.entries().find(|(_, name, _)| *name == zone.origin());
    apex.map(|(a, _, _)| a)
        .into_iter()
        .chain(owners.into_iter().map(|(_, i)| i))
        .collect()
}

/// A refused TSIG: the key name and error to log (when verified but wrong), and the reply.
type TsigRefusal = (Option<(Vec<u8>, u16)>, Start);

/// Verifies the request's TSIG record, if it has one: the signer for the response and the
/// index of the key it was signed with; or the reply that refuses it.
fn verify_tsig(
    snapshot: &Snapshot,
    request: &[u8],
    query: &wire::Query<'_>,
    reply: &Reply<'_>,
    now: u64,
) -> Result<(Option<Signer>, Option<usize>), TsigRefusal> {
    let Some(at) = query.tsig else {
        return Ok((None, None));
    };
    let keys = &snapshot.transfer.keys;
    let Some(v) = tsig::verify(keys, request, at, now) else {
        return Err((None, Start::One(reply.empty(rcode::FORMERR, None, now))));
    };
    if v.error != 0 {
        // Header and question, then the TSIG record with the error (no OPT).
        let mut m = vec![0u8; 2 + 512 + tsig::error_len(&v)];
        let len = Writer::new(&mut m[2..], reply.id, 0, false, reply.question, 512).finish(None);
        let n = tsig::finish_error(keys, &v, &mut m[2..], len, now);
        m.truncate(n + 2);
        m[..2].copy_from_slice(&(n as u16).to_be_bytes());
        return Err((Some((v.key_name.clone(), v.error)), Start::One(m)));
    }
    Ok(match v.key.and_then(|k| keys.get(k)) {
        Some(key) => (Some(Signer::for_response(key, &v)), v.key),
        None => (None, None),
    })
}

/// The client's serial: the SOA in the authority section of an IXFR request.
fn ixfr_serial(msg: &[u8]) -> Option<u32> {
    let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]) as usize;
    let (an, ns) = (count(6), count(8));
    let mut pos = HEADER_LEN;
    pos = end_compressed(msg, pos)? + 4;
    for i in 0..an + ns {
        pos = end_compressed(msg, pos)?;
        let t = u16::from_be_bytes(msg.get(pos..pos + 2)?.try_into().ok()?);
        let rdlen = u16::from_be_bytes(msg.get(pos + 8..pos + 10)?.try_into().ok()?) as usize;
        let rdata_start = pos + 10;
        pos = rdata_start + rdlen;
        if i >= an && t == rtype::SOA {
            let rdata = msg.get(rdata_start..pos)?;
            let p = end_compressed(rdata, 0)?;
            let p = end_compressed(rdata, p)?;
            return Some(u32::from_be_bytes(rdata.get(p..p + 4)?.try_into().ok()?));
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    FirstSoa,
    /// Owner index, RRset index, record index, and where that record starts in the
    /// RRset's RDATA list (finding the n-th record from the start would make a big RRset
    /// quadratic).
    Body(usize, usize, usize, usize),
    /// IXFR: diff index, part (0 old SOA, 1 removed, 2 new SOA, 3 added), record index.
    Diff(usize, u8, usize),
    LastSoa,
    Done,
}

/// A zone going out, message by message.
pub struct Transfer {
    /// Index of the zone in the snapshot.
    pub zone: usize,
    id: u16,
    question: Vec<u8>,
    edns: bool,
    /// Asked as IXFR.
    pub ixfr: bool,
    /// Answered with differences: the journal and the first diff to send.
    pub incremental: Option<(Arc<Journal>, usize)>,
    /// Apex first, then every other owner with static records (positions in the zone).
    owners: Vec<u32>,
    stage: Stage,
    signer: Option<Signer>,
    /// Records and messages produced so far.
    pub records: usize,
    pub messages: usize,
}

/// The record at `stage`, skipping empty positions and the apex SOA; advances `stage` to
/// the position after it. `None` at the end of the body.
fn body_record<'a>(
    zone: &'a Zone,
    owners: &[u32],
    stage: &mut Stage,
) -> Option<(&'a [u8], u16, u32, &'a [u8])> {
    let Stage::Body(mut o, mut s, mut r, mut at) = *stage else {
        return None;
    };
    loop {
        let entry = *owners.get(o)?;
        let Some((owner, node)) = zone.node_at(entry as usize) else {
            (o, s, r, at) = (o + 1, 0, 0, 0);
            continue;
        };
        let Some(set) = node.rrsets.get(s) else {
            (o, s, r, at) = (o + 1, 0, 0, 0);
            continue;
        };
        let record = set.rdata.record_at(at);
        let Some((rdata, next)) = record.filter(|_| !(o == 0 && set.rtype == rtype::SOA)) else {
            (s, r, at) = (s + 1, 0, 0);
            continue;
        };
        *stage = Stage::Body(o, s, r + 1, next);
        return Some((owner, set.rtype, set.ttl_of(r), rdata));
    }
}

/// The IXFR record at `stage` (RFC 1995 §4: per diff, old SOA, removed records, new SOA,
/// added records); advances `stage`. `None` after the last diff.
fn diff_record<'a>(
    journal: &'a Journal,
    stage: &mut Stage,
) -> Option<(&'a [u8], u16, u32, &'a [u8])> {
    let rec = |c: &'a Change| (&c.owner[..], c.rtype, c.ttl, &c.rdata[..]);
    loop {
        let Stage::Diff(d, part, i) = *stage else {
            return None;
        };
        let diff = journal.diffs.get(d)?;
        match part {
            0 => {
                *stage = Stage::Diff(d, 1, 0);
                return Some(rec(&diff.old_soa));
            }
            1 => match diff.removed.get(i) {
                Some(c) => {
                    *stage = Stage::Diff(d, 1, i + 1);
                    return Some(rec(c));
                }
                None => *stage = Stage::Diff(d, 2, 0),
            },
            2 => {
                *stage = Stage::Diff(d, 3, 0);
                return Some(rec(&diff.new_soa));
            }
            _ => match diff.added.get(i) {
                Some(c) => {
                    *stage = Stage::Diff(d, 3, i + 1);
                    return Some(rec(c));
                }
                None => *stage = Stage::Diff(d + 1, 0, 0),
            },
        }
    }
}

impl Transfer {
    /// The next message (length-prefixed, signed when the request was), or `None` when
    /// the closing SOA has been sent.
    pub fn next_message(&mut self, snapshot: &Snapshot, now: u64) -> Option<Vec<u8>> {
        if matches!(self.stage, Stage::Done) {
            return None;
        }
        let zone = snapshot.zones.zones().get(self.zone)?;
        let soa = zone.soa()?;
        let soa_rdata = soa.rdata.first()?;
        let reply = Reply {
            id: self.id,
            question: &self.question,
            edns: self.edns,
            udp_size: snapshot.max_udp_payload,
        };
        let first = self.messages == 0;
        let mut count = 0u16;
        let mut too_large = false;
        let (stage, owners, incremental) = (&mut self.stage, &self.owners, &self.incremental);
        let m = reply.message((0, true, first), self.signer.as_mut(), now, |w, budget| {
            // Messages stay near the target; a record larger than that goes alone.
            let target = MESSAGE_TARGET.min(budget);
            loop {
                let before = *stage;
                let (owner, rtype, ttl, rdata) = match *stage {
                    Stage::FirstSoa => {
                        *stage = match incremental {
                            Some((_, first)) => Stage::Diff(*first, 0, 0),
                            None => Stage::Body(0, 0, 0, 0),
                        };
                        (zone.origin(), rtype::SOA, soa.ttl, soa_rdata)
                    }
                    Stage::Diff(..) => {
                        let record = incremental
                            .as_ref()
                            .and_then(|(journal, _)| diff_record(journal, stage));
                        match record {
                            Some(r) => r,
                            None => {
                                *stage = Stage::LastSoa;
                                continue;
                            }
                        }
                    }
                    Stage::Body(..) => match body_record(zone, owners, stage) {
                        Some(r) => r,
                        None => {
                            *stage = Stage::LastSoa;
                            continue;
                        }
                    },
                    Stage::LastSoa => {
                        *stage = Stage::Done;
                        (zone.origin(), rtype::SOA, soa.ttl, soa_rdata)
                    }
                    Stage::Done => break,
                };
                let limit = if count == 0 { budget } else { target };
                if count == u16::MAX || !w.transfer_record(owner, rtype, ttl, rdata, limit) {
                    // Does not fit: this record starts the next message.
                    *stage = before;
                    too_large = count == 0;
                    break;
                }
                count += 1;
            }
        });
        if too_large {
            // A single record larger than any message: cannot be sent.
            tracing::error!(zone = %to_text(zone.origin()), "a record is too large for AXFR");
            self.stage = Stage::Done;
            return Some(reply.message(
                (rcode::SERVFAIL, false, first),
                self.signer.as_mut(),
                now,
                |_, _| {},
            ));
        }
        self.records += count as usize;
        self.messages += 1;
        Some(m)
    }
}
