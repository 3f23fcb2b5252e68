//! One request in, one response out: the whole answer path without I/O, shared by UDP, TCP,
//! the benchmarks and the fuzz target.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Snapshot;
use crate::health::HealthView;
use crate::routing::{Client, Router};
use crate::zone::name::MAX_NAME_LEN;
use crate::zone::{Transport, rcode, rtype};

use super::answer_cache::{self, AnswerCache};
use super::stats::{STATS, qtype_index};
use super::wire::{self, CLASS_CH, CLASS_IN, HEADER_LEN, OptOut, ParseError, Writer};

/// Which statistics an answer counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// A query from the network: everything.
    All,
    /// The inner answer of a TSIG-signed query: the outer call counted the transport.
    NotTransport,
    /// Not traffic (`explain`): nothing.
    Nothing,
}

/// Counts a finished response in the server-wide statistics; returns its length.
fn count(
    len: usize,
    response: &[u8],
    query: &wire::Query<'_>,
    ecs_scope: Option<u8>,
    counting: Counting,
) -> usize {
    if counting == Counting::Nothing {
        return len;
    }
    let stats = &*STATS;
    let flags = response
        .get(2..4)
        .map_or(0, |f| u16::from_be_bytes([f[0], f[1]]));
    if let Some(c) = stats.rcode(usize::from(flags & 0xF)) {
        c.inc();
    }
    if let Some(c) = stats.qtype(qtype_index(query.qtype)) {
        c.inc();
    }
    if flags & 0x0200 != 0 {
        stats.truncated().inc();
    }
    if query.edns.is_some_and(|e| e.ecs.is_some()) {
        stats.ecs().inc();
        if let Some(s) = ecs_scope {
            stats.ecs_scope_sum().add(u64::from(s));
        }
    }
    len
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
/// brought one that is in use (RFC 7871 §7.2.1); returns it.
fn ecs_scope(scope: Option<u8>, opt: Option<&mut OptOut<'_>>, subnet_used: bool) -> Option<u8> {
    let (scope, ecs) = (scope?, opt?.ecs.as_mut()?);
    if !subnet_used {
        return None;
    }
    ecs.scope_prefix = scope.min(if ecs.family == 1 { 32 } else { 128 });
    Some(ecs.scope_prefix)
}

/// Smallest buffer `answer` needs for a response (the largest TCP message).
pub const MAX_MESSAGE: usize = 65535;

/// Names that return the server identity in class CH (RFC 4892).
const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";

/// [`answer_from`] for a client with no address and every endpoint up (tests, fuzzing).
pub fn answer(
    snapshot: &Snapshot,
    request: &[u8],
    response: &mut [u8],
    transport: Transport,
) -> Option<usize> {
    answer_from(
        snapshot,
        &HealthView::all_up(),
        request,
        response,
        transport,
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    )
}

/// Builds the response to `request` from `source` in `response`; `None` means send nothing.
pub fn answer_from(
    snapshot: &Snapshot,
    health: &HealthView,
    request: &[u8],
    response: &mut [u8],
    transport: Transport,
    source: IpAddr,
) -> Option<usize> {
    answer_counted(
        snapshot,
        health,
        request,
        response,
        transport,
        source,
        Counting::All,
    )
}

/// [`answer_from`] for UDP with the thread's answer cache: a kept answer is copied, and a
/// fresh one that may be kept is.
pub fn answer_cached(
    snapshot: &Snapshot,
    health: &HealthView,
    cache: &mut AnswerCache,
    request: &[u8],
    response: &mut [u8],
    source: IpAddr,
) -> Option<usize> {
    answer_with(
        snapshot,
        health,
        Some(cache),
        request,
        response,
        Transport::Udp,
        source,
        Counting::All,
    )
}

/// [`answer_from`], counted in the statistics as `counting` says. Inlined, so the query
/// path's copy has the counting decided at compile time.
#[inline(always)]
pub fn answer_counted(
    snapshot: &Snapshot,
    health: &HealthView,
    request: &[u8],
    response: &mut [u8],
    transport: Transport,
    source: IpAddr,
    counting: Counting,
) -> Option<usize> {
    answer_with(
        snapshot, health, None, request, response, transport, source, counting,
    )
}

/// The answer path; `cache`: the UDP thread's answer cache, if any.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn answer_with(
    snapshot: &Snapshot,
    health: &HealthView,
    cache: Option<&mut AnswerCache>,
    request: &[u8],
    response: &mut [u8],
    transport: Transport,
    source: IpAddr,
    counting: Counting,
) -> Option<usize> {
    // Right after a reload the published view may still be the old generation's.
    let health = if health.generation() == snapshot.generation {
        health
    } else {
        &snapshot.initial_health
    };
    if counting == Counting::All {
        match transport {
            Transport::Udp => STATS.udp().inc(),
            Transport::Tcp => STATS.tcp().inc(),
        }
    }
    // Borrowed out of the result rather than moved: the query is ~80 bytes.
    let parsed = wire::parse_query(request);
    let query = match &parsed {
        Ok(q) => q,
        Err(ParseError::Drop) => {
            if counting != Counting::Nothing {
                STATS.dropped().inc();
            }
            return None;
        }
        &Err(ParseError::Reply {
            id,
            opcode,
            recursion_desired,
            rcode,
            question_end,
        }) => {
            let question = request.get(HEADER_LEN..question_end).unwrap_or(&[]);
            let mut w = Writer::new(response, id, opcode, recursion_desired, question, 512);
            w.set_rcode(rcode);
            return Some(w.finish(None));
        }
    };
    if let Some(at) = query.tsig {
        // Signed (TSIG): verified, answered and signed on a path of its own.
        return super::tsig::answer_signed(
            snapshot, health, request, query, at, response, transport, source,
        );
    }

    let max_size = match (transport, &query.edns) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, Some(e)) => e.udp_size.clamp(512, snapshot.max_udp_payload) as usize,
        (Transport::Udp, None) => 512,
    };
    let question = &request[HEADER_LEN..HEADER_LEN + query.qname.len() + 4];
    let mut w = Writer::new(
        response,
        query.id,
        query.opcode,
        query.recursion_desired,
        question,
        max_size,
    );
    w.set_checking_disabled(query.checking_disabled);
    let mut opt = query.edns.map(|e| OptOut {
        udp_size: snapshot.max_udp_payload,
        extended_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        nsid: if e.nsid {
            snapshot.identity.as_deref()
        } else {
            None
        },
        // Static data does not depend on the client: scope 0 (RFC 7871 §7.2.1).
        ecs: e.ecs.map(|mut s| {
            s.scope_prefix = 0;
            s
        }),
    });
    if let Some(opt) = &opt {
        w.reserve_opt(opt);
    }
    if query.edns.is_some_and(|e| e.version > 0) {
        // BADVERS (16) lives in the OPT record's extended rcode bits (RFC 6891 §6.1.3).
        let opt = opt.map(|mut o| {
            o.extended_rcode = (rcode::BADVERS >> 4) as u8;
            o.nsid = None;
            o.ecs = None;
            o
        });
        return Some(w.finish(opt.as_ref()));
    }

    match query.qtype {
        rtype::OPT => {
            w.set_rcode(rcode::FORMERR);
            return Some(w.finish(opt.as_ref()));
        }
        rtype::AXFR | rtype::IXFR => {
            w.set_rcode(rcode::REFUSED);
            return Some(w.finish(opt.as_ref()));
        }
        // Other meta types (MAILA, MAILB, TKEY, TSIG...) are not questions we answer.
        128..=254 => {
            w.set_rcode(rcode::NOTIMP);
            return Some(w.finish(opt.as_ref()));
        }
        _ => {}
    }

    let mut key = [0u8; MAX_NAME_LEN];
    let key = crate::zone::name::lower_into(query.qname, &mut key);

    match query.qclass {
        CLASS_IN => {}
        CLASS_CH => {
            let identity = snapshot.identity.as_deref();
            match identity {
                Some(id)
                    if matches!(query.qtype, rtype::TXT | rtype::ANY)
                        && (key == ID_SERVER || key == HOSTNAME_BIND) =>
                {
                    w.chaos_txt(query.qname, id);
                    w.set_authoritative(true);
                }
                _ => w.set_rcode(rcode::REFUSED),
            }
            return Some(w.finish(opt.as_ref()));
        }
        _ => {
            w.set_rcode(rcode::REFUSED);
            return Some(w.finish(opt.as_ref()));
        }
    }

    let subnet = match query.edns.and_then(|e| e.ecs) {
        Some(ecs) if snapshot.ecs => ecs_address(&ecs),
        _ => None,
    };
    // The cache and this query's key into it (hashed only when there is a cache).
    let mut cache = match cache {
        Some(c) => {
            let ecs = subnet.and_then(|(a, prefix)| (prefix > 0).then_some(a));
            let k = answer_cache::Key::new(key, query.qtype, source, ecs, snapshot.serial, health);
            Some((c, k))
        }
        None => None,
    };
    if let Some((cache, cache_key)) = &mut cache
        && let Some(hit) = cache.get(cache_key)
        && w.append_rendered(hit.body, hit.counts)
    {
        if counting != Counting::Nothing {
            // SAFETY: found under this snapshot's serial, and `snapshot` is borrowed for the
            // whole call.
            unsafe { answer_cache::count_hit(hit.counters) };
        }
        w.set_rcode(hit.rcode);
        w.set_authoritative(hit.authoritative);
        let scope_out = ecs_scope(hit.scope, opt.as_mut(), subnet.is_some());
        return Some(count(
            w.finish(opt.as_ref()),
            response,
            query,
            scope_out,
            counting,
        ));
    }
    let Some((zone_index, node)) = snapshot.zones.lookup(key, query.qtype) else {
        // Not ours, and we never recurse.
        w.set_rcode(rcode::REFUSED);
        return Some(count(
            w.finish(opt.as_ref()),
            response,
            query,
            None,
            counting,
        ));
    };
    let Some(zone) = snapshot.zones.zones().get(zone_index) else {
        w.set_rcode(rcode::SERVFAIL);
        return Some(w.finish(opt.as_ref()));
    };
    if counting != Counting::Nothing
        && let Some(c) = snapshot.zone_queries.get(zone_index)
    {
        c.inc();
    }
    // A static name answered before: header, question, one copy.
    if let Some(d) = node
        && let Some(r) = snapshot
            .static_answers
            .get(zone_index, d.entry, key.len(), query.qtype)
        && w.append_rendered(r.body, r.counts)
    {
        if let Some((cache, cache_key)) = cache {
            cache.put(
                &cache_key,
                &answer_cache::Fill {
                    body: r.body,
                    counts: r.counts,
                    rcode: r.rcode,
                    authoritative: r.authoritative,
                    counters: [
                        snapshot.zone_queries.get(zone_index).map(|c| c.mine()),
                        None,
                    ],
                    scope: None,
                    client: None,
                },
            );
        }
        w.set_rcode(r.rcode);
        w.set_authoritative(r.authoritative);
        return Some(count(
            w.finish(opt.as_ref()),
            response,
            query,
            None,
            counting,
        ));
    }
    let mut router = Router::new(
        &snapshot.routing,
        health,
        Client { source, subnet },
        counting != Counting::Nothing,
    );
    let outcome = snapshot.zones.resolve(
        zone,
        query.qname,
        key,
        node.map(|d| d.node),
        query.qtype,
        transport,
        &mut w,
        &mut router,
    );
    w.set_rcode(outcome.rcode);
    w.set_authoritative(outcome.authoritative);
    if let Some((cache, cache_key)) = cache
        && !outcome.spells_qname
        && router.answered <= 1
        && !router.basis.is_some_and(|b| b.random)
        && let Some((body, counts)) = w.complete_body()
    {
        cache.put(
            &cache_key,
            &answer_cache::Fill {
                body,
                counts,
                rcode: outcome.rcode,
                authoritative: outcome.authoritative,
                counters: [
                    snapshot.zone_queries.get(zone_index).map(|c| c.mine()),
                    router.basis.and_then(|b| b.counter).map(|c| c.mine()),
                ],
                scope: router.scope,
                client: router.basis.map(|b| (b.addr, b.from_ecs, b.scope)),
            },
        );
    }
    let scope_out = ecs_scope(router.scope, opt.as_mut(), subnet.is_some());
    let len = w.finish(opt.as_ref());
    Some(count(len, response, query, scope_out, counting))
}
