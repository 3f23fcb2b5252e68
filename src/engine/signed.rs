//! A TSIG-signed query (RFC 8945): verify, answer the query without its TSIG record through
//! the plain path, sign the answer. Only messages that carry a TSIG record come here.

use super::plain;
use super::{Counting, Request, Snapshot};
use crate::dns::rcode;
use crate::dns::tsig::{Signer, error_len, finish_error, verify};
use crate::dns::wire::{self, Writer};
use crate::health::HealthView;

/// The answer path for a query that carries a TSIG record at `tsig_at`: verify it, answer
/// the query without it, and sign the answer (allocates; signed queries are rare).
pub(super) fn answer(
    snapshot: &Snapshot,
    health: &HealthView,
    request: &Request<'_>,
    query: &wire::Query<'_>,
    tsig_at: usize,
    response: &mut [u8],
) -> Option<usize> {
    let original = request;
    let (now, source, transport) = (request.now, request.source, request.transport);
    let request = request.bytes;
    let Some(verified) = verify(&snapshot.transfer.keys, request, tsig_at, now) else {
        let mut w = Writer::answering(response, query, request, 512);
        w.set_rcode(rcode::FORMERR);
        return Some(w.finish(None));
    };
    if verified.error != 0 {
        tracing::debug!(
            key = %crate::dns::name::to_text(&verified.key_name),
            error = verified.error,
            %source,
            "TSIG verification failed"
        );
        let mut w = Writer::answering(response, query, request, 512);
        let len = w.finish(None);
        if response.len() < len + error_len(&verified) {
            return Some(len);
        }
        return Some(finish_error(
            &snapshot.transfer.keys,
            &verified,
            response,
            len,
            now,
        ));
    }
    let key = snapshot.transfer.keys.get(verified.key?)?;
    let mut signer = Signer::for_response(key, &verified);
    let mut stripped = request[..tsig_at].to_vec();
    let arcount = u16::from_be_bytes([stripped[10], stripped[11]]).saturating_sub(1);
    stripped[10..12].copy_from_slice(&arcount.to_be_bytes());
    let max = query.max_response(transport, snapshot.max_udp_payload);
    let cap = max.min(response.len()).saturating_sub(signer.record_len());
    // The outer call counted the transport already.
    let inner = Request {
        bytes: &stripped,
        counting: Counting::NotTransport,
        ..*original
    };
    let n = match wire::parse_query(&stripped) {
        Ok(q) => plain::answer(
            snapshot,
            health,
            None,
            None,
            &inner,
            &q,
            &mut response[..cap],
        ),
        Err(e) => plain::reply_to_malformed(&e, &inner, &mut response[..cap]),
    }?;
    Some(signer.sign(response, n, now))
}
