//! An unsigned query, parsed: screening (class, type, EDNS version), then the answer cache,
//! the pre-rendered static answers, and the zone lookup with routing for dynamic names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cache::{self, AnswerCache};
use super::packet::{Counted, SourceNet, Whole, WholeCookie};
use super::{Counting, Request, Snapshot};
use crate::dns::name::{eq_fold, lower_into, name_buf, name_hash};
use crate::dns::wire::{self, OptOut, ParseError, Writer};
use crate::dns::{HEADER_LEN, Transport, class, rcode, rtype};
use crate::health::HealthView;
use crate::routing::{Client, Router};
use crate::stats::{STATS, qtype_index};

/// Counts a finished response in the server-wide statistics; returns its length. `ecs`:
/// `None` without an ECS option in the query, else the scope answered (if any). Inlined:
/// the whole-response path is little more than this, and a call costs it ~30 instructions.
#[inline(always)]
fn count(
    len: usize,
    response: &[u8],
    qtype_index: usize,
    ecs: Option<Option<u8>>,
    counting: Counting,
) -> usize {
    if counting == Counting::Nothing {
        return len;
    }
    let flags = response
        .get(2..4)
        .map_or(0, |f| u16::from_be_bytes([f[0], f[1]]));
    STATS.count_response(
        usize::from(flags & 0xF),
        qtype_index,
        flags & 0x0200 != 0,
        ecs,
    );
    len
}

/// Counts a response the packet cache copied whole, as [`count`] and a cache hit do;
/// returns its length.
#[inline(always)]
pub(super) fn count_replayed(
    (len, counted): (usize, Counted),
    response: &[u8],
    counting: Counting,
) -> usize {
    if counting != Counting::Nothing {
        // SAFETY: found under the serial of the snapshot the caller answers from and holds.
        unsafe { cache::count_hit(counted.counters) };
    }
    let qtype_index = usize::from(counted.qtype_index);
    count(len, response, qtype_index, counted.ecs, counting)
}

/// The address and source prefix of an ECS option.
fn ecs_address(ecs: &wire::ClientSubnet) -> Option<(IpAddr, u8)> {
    let addr = match ecs.family {
        1 => IpAddr::V4(Ipv4Addr::new(
            ecs.addr[0],
            ecs.addr[1],
            ecs.addr[2],
            ecs.addr[3],
        )),
        2 => IpAddr::V6(Ipv6Addr::from(ecs.addr)),
        _ => return None,
    };
    Some((addr, ecs.source_prefix))
}

/// Puts the scope of a client-dependent answer in the response's ECS option, when the query
/// brought one that is in use (RFC 7871 §7.2.1); returns it. `subnet`: the ECS address and
/// source prefix, when ECS is on. A source prefix of 0 (the client opts out, §7.1.2) locates
/// by the packet's source and is answered with scope 0, as the option stays echoed.
fn ecs_scope(
    scope: Option<u8>,
    opt: Option<&mut OptOut<'_>>,
    subnet: Option<(IpAddr, u8)>,
) -> Option<u8> {
    let (scope, opt) = (scope?, opt?);
    let ecs = opt.ecs?;
    match subnet {
        Some((_, source_prefix)) if source_prefix > 0 => {
            opt.ecs_scope = scope.min(if ecs.family == 1 { 32 } else { 128 });
            Some(opt.ecs_scope)
        }
        _ => None,
    }
}

/// Names that return the server identity in class CH (RFC 4892).
const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";

/// The reply to a message the parser refused: nothing (`None`, counted as dropped), or a
/// header-and-question reply with the parser's rcode (FORMERR, NOTIMP).
pub(super) fn reply_to_malformed(
    error: &ParseError,
    request: &Request<'_>,
    response: &mut [u8],
) -> Option<usize> {
    match *error {
        ParseError::Drop => {
            if request.counting != Counting::Nothing {
                STATS.dropped().inc();
            }
            None
        }
        ParseError::Reply {
            id,
            opcode,
            recursion_desired,
            rcode,
            question_end,
        } => {
            let question = request.bytes.get(HEADER_LEN..question_end).unwrap_or(&[]);
            let mut w = Writer::new(response, id, opcode, recursion_desired, question, 512);
            w.set_rcode(rcode);
            Some(w.finish(None))
        }
    }
}

/// The answer to a parsed query without TSIG.
#[inline(always)]
pub(super) fn answer(
    snapshot: &Snapshot,
    health: &HealthView,
    mut cache: Option<&mut AnswerCache>,
    packet_tag: Option<u64>,
    request: &Request<'_>,
    query: &wire::Query<'_>,
    response: &mut [u8],
) -> Option<usize> {
    let max_size = query.max_response(request.transport, snapshot.max_udp_payload);
    let mut w = Writer::answering(response, query, request.bytes, max_size);
    w.set_checking_disabled(query.checking_disabled);
    let mut opt = query.edns.as_ref().map(|e| OptOut {
        udp_size: snapshot.max_udp_payload,
        extended_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        nsid: if e.nsid {
            snapshot.identity.as_deref()
        } else {
            None
        },
        // Static data does not depend on the client: scope 0 (RFC 7871 §7.2.1).
        ecs: e.ecs.as_ref(),
        ecs_scope: 0,
        cookie: None,
    });
    if let (Some(opt), Some(edns)) = (opt.as_mut(), query.edns.as_ref())
        && edns.cookie_len != 0
    {
        super::cookies::answer(snapshot.cookies.as_ref(), request, edns, opt);
    }
    if let Some(opt) = &opt {
        w.reserve_opt(opt);
    }
    // The question as it came: the hash is blind to case and the caches and the zone lookup
    // compare ignoring it; only the general resolve gets a lowercase copy.
    let (key, key_hash) = (query.qname, name_hash(query.qname));
    if !screen(snapshot, query, request.transport, key, &mut w, &mut opt) {
        return Some(w.finish(opt.as_ref()));
    }
    let subnet = match query.edns.and_then(|e| e.ecs) {
        Some(ecs) if snapshot.ecs => ecs_address(&ecs),
        _ => None,
    };
    // The writer is lent, not moved: moving it (about 170 bytes) costs a memcpy per query.
    let (scope, from_cache) = lookup(
        snapshot,
        health,
        cache.as_deref_mut(),
        request,
        query,
        (key, key_hash),
        subnet,
        &mut w,
        opt.as_mut(),
    );
    let len = w.finish(opt.as_ref());
    let qtype_index = qtype_index(query.qtype);
    let ecs = query.edns.is_some_and(|e| e.ecs.is_some()).then_some(scope);
    let len = count(len, response, qtype_index, ecs, request.counting);
    // Answered from a slot: the response may be kept whole for the same bytes (with a
    // COOKIE option, one that ends the query and the response).
    if let (Some(cache), Some(tag), Some((source, counters))) = (cache, packet_tag, from_cache)
        && let Some(cookie) = whole_cookie(
            snapshot.cookies.is_some(),
            request.bytes,
            query,
            &response[..len],
        )
        && cache.admits_whole(tag)
    {
        let whole = Whole {
            source,
            counted: Counted {
                counters,
                qtype_index: qtype_index as u8,
                ecs,
            },
            name_len: query.qname.len(),
            cookie,
        };
        let now = (snapshot.serial, health.version());
        cache.keep_whole(request.bytes, tag, &response[..len], now, &whole);
    }
    Some(len)
}

/// How a response to `query` (whose bytes are `bytes`) may be kept whole as far as cookies
/// go: without a COOKIE option in the response, as it is; with one, when the query's option
/// ends the query (a client cookie alone, or with a 16-byte server cookie) and the response's
/// ends the response, so that the replay can make the server cookie; else not at all.
/// `cookies_on`: the server answers cookies.
#[inline(always)]
fn whole_cookie(
    cookies_on: bool,
    bytes: &[u8],
    query: &wire::Query<'_>,
    response: &[u8],
) -> Option<WholeCookie> {
    let Some(edns) = query.edns.filter(|e| e.cookie_len != 0) else {
        return Some(WholeCookie::None);
    };
    if !super::cookies::ends_with_cookie(response) {
        // Cookies off: the response does not depend on the option.
        return (!cookies_on).then_some(WholeCookie::None);
    }
    let ends_query = usize::from(edns.cookie_at) + usize::from(edns.cookie_len) == bytes.len();
    match edns.cookie_len {
        8 if ends_query => Some(WholeCookie::ClientOnly),
        24 if ends_query => Some(WholeCookie::WithServer),
        _ => None,
    }
}

/// Screening before any lookup: the EDNS version, meta types and classes. `false`: the
/// response is decided (rcode set; CH identity written) and only needs finishing.
#[inline(always)]
fn screen(
    snapshot: &Snapshot,
    query: &wire::Query<'_>,
    transport: Transport,
    key: &[u8],
    w: &mut Writer<'_>,
    opt: &mut Option<OptOut<'_>>,
) -> bool {
    // Nearly every query: class IN, a data type below the meta range, EDNS version 0 or none.
    if query.qclass == class::IN
        && query.qtype < 128
        && query.qtype != rtype::OPT
        && query.edns.is_none_or(|e| e.version == 0)
    {
        return true;
    }
    if query.edns.is_some_and(|e| e.version > 0) {
        // BADVERS (16) lives in the OPT record's extended rcode bits (RFC 6891 §6.1.3).
        if let Some(o) = opt {
            o.extended_rcode = (rcode::BADVERS >> 4) as u8;
            o.nsid = None;
            o.ecs = None;
        }
        return false;
    }
    match query.qtype {
        rtype::OPT => {
            w.set_rcode(rcode::FORMERR);
            return false;
        }
        // A transfer cannot go over UDP: NOTIMP, as Knot and NSD answer. Over TCP the
        // transfer path took it already, unless transfers are off for the zone: REFUSED.
        rtype::AXFR | rtype::IXFR => {
            w.set_rcode(match transport {
                Transport::Udp => rcode::NOTIMP,
                Transport::Tcp => rcode::REFUSED,
            });
            return false;
        }
        // NXNAME only marks compact denial's NSEC; asking for it is an error (RFC 9824 §3.5).
        128 => {
            w.set_rcode(rcode::FORMERR);
            return false;
        }
        // Other meta types (MAILA, MAILB, TKEY, TSIG...) are not questions we answer.
        129..=254 => {
            w.set_rcode(rcode::NOTIMP);
            return false;
        }
        _ => {}
    }
    match query.qclass {
        class::IN => true,
        class::CH => {
            match snapshot.identity.as_deref() {
                Some(id)
                    if matches!(query.qtype, rtype::TXT | rtype::ANY)
                        && (eq_fold(key, ID_SERVER) || eq_fold(key, HOSTNAME_BIND)) =>
                {
                    w.chaos_txt(query.qname, id);
                    w.set_authoritative(true);
                }
                _ => w.set_rcode(rcode::REFUSED),
            }
            false
        }
        _ => {
            w.set_rcode(rcode::REFUSED);
            false
        }
    }
}

/// An answer copied from the answer cache: the source network it holds for (`None`: any)
/// and the counters it counts in.
type FromCache = (Option<SourceNet>, [usize; 2]);

/// The answer cache, then the pre-rendered answers, then the zone lookup (with routing);
/// fills the cache. Returns the ECS scope answered (set in `opt`), and for an answer copied
/// from the cache the source network it holds for and its counters; the caller finishes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lookup(
    snapshot: &Snapshot,
    health: &HealthView,
    cache: Option<&mut AnswerCache>,
    request: &Request<'_>,
    query: &wire::Query<'_>,
    (key, key_hash): (&[u8], u64),
    subnet: Option<(IpAddr, u8)>,
    w: &mut Writer<'_>,
    opt: Option<&mut OptOut<'_>>,
) -> (Option<u8>, Option<FromCache>) {
    let counting = request.counting;
    // A DO query where some zone is signed: its answers (with signatures) are cached apart,
    // and the pre-rendered answers (without) are not for it.
    let dnssec = query.edns.is_some_and(|e| e.dnssec_ok) && snapshot.zones.any_signed();
    // The cache and this query's tag in it (hashed only when there is a cache); its key is
    // built only when a slot holds the tag or an answer goes in: the usual miss (a name
    // asked for the first time) needs the tag alone.
    let flavour = cache::Flavour::of(dnssec, query.edns.as_ref());
    let cache_key = || {
        cache::Key::new(
            (key, key_hash),
            (query.qtype, flavour),
            request.source,
            subnet.and_then(|(a, prefix)| (prefix > 0).then_some(a)),
            snapshot.serial,
            health,
        )
    };
    let mut cache = cache.map(|c| (c, cache::tag_of(key_hash, query.qtype, flavour)));
    if let Some((cache, tag)) = &mut cache
        && let Some(hit) = cache.get(*tag, cache_key, &snapshot.routing)
        && w.append_rendered(hit.body, hit.counts)
    {
        if counting != Counting::Nothing {
            // SAFETY: found under this snapshot's serial, and `snapshot` is borrowed for the
            // whole call.
            unsafe { cache::count_hit(hit.counters) };
        }
        w.set_rcode(hit.rcode);
        w.set_authoritative(hit.authoritative);
        let from_cache = (hit.source, hit.counters);
        return (ecs_scope(hit.scope, opt, subnet), Some(from_cache));
    }
    let Some((zone_index, found)) = snapshot.zones.lookup_hashed(key, key_hash, query.qtype) else {
        // Not ours, and we never recurse.
        w.set_rcode(rcode::REFUSED);
        return (None, None);
    };
    let Some(zone) = snapshot.zones.zones().get(zone_index) else {
        w.set_rcode(rcode::SERVFAIL);
        return (None, None);
    };
    let zone_counter = snapshot.zone_queries.get(zone_index);
    if counting != Counting::Nothing
        && let Some(c) = zone_counter
    {
        c.inc();
    }
    // Signatures go in for DO queries to a signed zone (elsewhere DO changes nothing).
    let signed = dnssec && zone.is_signed();
    w.set_dnssec(signed);
    if let Some((rcode, authoritative, own)) = answer_at_once(
        snapshot,
        (zone_index, zone),
        found,
        (key.len(), query.qtype),
        signed,
        w,
    ) {
        w.set_rcode(rcode);
        w.set_authoritative(authoritative);
        // An NXDOMAIN or a wildcard's answer goes in the second time its name is asked, as
        // on the general path: a flood of random names does not push the hot entries out.
        if let Some((cache, tag)) = &mut cache
            && (own || cache.seen_before(*tag))
            && let Some((body, counts)) = w.complete_body()
        {
            let fill = cache::Fill {
                body,
                counts,
                rcode,
                authoritative,
                counters: [zone_counter.map(|c| c.mine()), None],
                scope: None,
                client: None,
                decided: None,
            };
            cache.put(&cache_key(), &fill);
        }
        return (None, None);
    }
    let mut router = Router::new(
        &snapshot.routing,
        health,
        Client {
            source: request.source,
            subnet,
            entropy: request.entropy,
        },
        counting != Counting::Nothing,
    )
    .keeping_answers(snapshot.serial);
    let outcome = resolve(
        snapshot,
        zone,
        (query, key, found),
        signed,
        request,
        w,
        &mut router,
    );
    w.set_rcode(outcome.rcode);
    w.set_authoritative(outcome.authoritative);
    if let Some((cache, tag)) = &mut cache {
        keep(cache, (*tag, cache_key), w, &outcome, &router, zone_counter);
    }
    (ecs_scope(router.scope, opt, subnet), None)
}

/// The answers that need neither routing nor the general resolve, written into `w`: a
/// static name's pre-rendered one (with signatures when `signed`), a wildcard's that
/// holds nothing but the name asked, and NXDOMAIN without a wildcard. Returns the rcode,
/// whether authoritative, and whether the answer is the name's own (not the wildcard's or
/// the zone's for any absent name).
#[inline(always)]
fn answer_at_once(
    snapshot: &Snapshot,
    (zone_index, zone): (usize, &crate::zone::Zone),
    found: crate::zone::Found<'_>,
    (key_len, qtype): (usize, u16),
    signed: bool,
    w: &mut Writer<'_>,
) -> Option<(u8, bool, bool)> {
    // A name that does not exist, no wildcard: the zone's SOA, whose origin the lookup
    // found at the end of the name (a random-subdomain flood comes this way).
    if matches!(found, crate::zone::Found::Absent(None))
        && !signed
        && w.negative_soa_below_question(zone.origin().len(), zone.negative_soa())
    {
        return Some((rcode::NXDOMAIN, true, false));
    }
    // A static name answered before: header, question, one copy (with signatures for DO);
    // or, for a name that does not exist, its wildcard's when that holds nothing but the
    // name asked (the same bytes answer every such name).
    let rendered = if signed {
        &snapshot.static_answers_dnssec
    } else {
        &snapshot.static_answers
    };
    let (entry, own) = match found {
        crate::zone::Found::Exact(d) => (d.entry, true),
        crate::zone::Found::Absent(Some(wild)) => (wild.entry, false),
        _ => return None,
    };
    let r = rendered.get(zone_index, entry, key_len, qtype)?;
    ((own || r.any_name) && w.append_rendered(r.body, r.counts)).then_some((
        r.rcode,
        r.authoritative,
        own,
    ))
}

/// The zone lookup; through compact denial's writer for a DO query (`signed`) to a zone
/// that has it.
#[inline(always)]
fn resolve(
    snapshot: &Snapshot,
    zone: &crate::zone::Zone,
    (query, key, found): (&wire::Query<'_>, &[u8], crate::zone::Found<'_>),
    signed: bool,
    request: &Request<'_>,
    w: &mut Writer<'_>,
    router: &mut Router<'_>,
) -> crate::zone::Outcome {
    let compact = if signed {
        snapshot
            .signers
            .iter()
            .find(|s| s.compact_budget.is_some() && &s.origin[..] == zone.origin())
    } else {
        None
    };
    let (qname, qtype) = (query.qname, query.qtype);
    // The general resolve compares names as they are stored: lowercase.
    let mut lower = name_buf();
    let key = lower_into(key, &mut lower);
    match compact {
        Some(signer) => {
            let mut sink = super::compact::CompactSink {
                inner: w,
                signer,
                compact_ok: query.edns.is_some_and(|e| e.compact_ok),
                now: request.now,
            };
            snapshot
                .zones
                .resolve(zone, qname, key, found, qtype, &mut sink, router)
        }
        None => snapshot
            .zones
            .resolve(zone, qname, key, found, qtype, w, router),
    }
}

/// Keeps a fresh answer in the cache when another client in its network would get the same
/// bytes: complete, not drawn at random, through at most one dynamic name, and not
/// spelling the query's case (a DNAME synthesis).
#[inline(always)]
fn keep<'k>(
    cache: &mut AnswerCache,
    (tag, key): (u64, impl FnOnce() -> cache::Key<'k>),
    w: &Writer<'_>,
    outcome: &crate::zone::Outcome,
    router: &Router<'_>,
    zone_counter: Option<&std::sync::Arc<crate::stats::Counter>>,
) {
    if outcome.spells_qname || router.answered > 1 || router.basis.is_some_and(|b| b.random) {
        return;
    }
    // Admission: an NXDOMAIN or a wildcard answer goes in the second time its name is asked.
    // A random-subdomain flood asks each name once, and would push the hot entries out.
    if (outcome.nonexistent || outcome.wildcard) && !cache.seen_before(tag) {
        return;
    }
    let Some((body, counts)) = w.complete_body() else {
        return;
    };
    cache.put(
        &key(),
        &cache::Fill {
            body,
            counts,
            rcode: outcome.rcode,
            authoritative: outcome.authoritative,
            counters: [
                zone_counter.map(|c| c.mine()),
                router.basis.and_then(|b| b.counter).map(|c| c.mine()),
            ],
            scope: router.scope,
            client: router.basis.map(|b| (b.addr, b.from_ecs, b.scope)),
            decided: router.basis.and_then(|b| b.decided),
        },
    );
}
