//! The whole answer path (`server::answer::answer`) on arbitrary request bytes, over both
//! transports, against a snapshot loaded from the fixed configuration in `fuzz/fixture/`.
//!
//! Every response must be a DNS message that hickory-proto parses, with QR set and the
//! request's ID, and a UDP response must fit the size the client may receive.
#![no_main]

use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use meridian::config;
use meridian::engine::Snapshot;
use meridian::dns::MAX_MESSAGE;
use meridian::engine::{self, Request};
use meridian::health::HealthView;
use meridian::dns::wire;
use meridian::dns::Transport;

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixture/meridian.toml");
        match config::load(&path) {
            Ok(loaded) => loaded.snapshot,
            Err(errors) => panic!("fixture does not load: {errors:?}"),
        }
    })
}

thread_local! {
    static RESPONSE: RefCell<Vec<u8>> = RefCell::new(vec![0u8; MAX_MESSAGE]);
}

fuzz_target!(|data: &[u8]| {
    let snapshot = snapshot();
    RESPONSE.with_borrow_mut(|response| {
        for transport in [Transport::Udp, Transport::Tcp] {
            let request = Request::new(data, std::net::Ipv4Addr::UNSPECIFIED.into(), transport);
            let Some(n) = engine::answer(snapshot, &HealthView::all_up(), None, &request, response) else {
                continue;
            };
            assert!(n >= 12 && n <= response.len(), "response length {n}");
            let out = &response[..n];
            assert_eq!(out[..2], data[..2], "response ID");
            assert_ne!(out[2] & 0x80, 0, "QR set");
            if transport == Transport::Udp {
                // What the client said it can receive (RFC 6891 §6.2.5), never below 512.
                let limit = match wire::parse_query(data) {
                    Ok(q) => q.edns.map_or(512, |e| {
                        e.udp_size.clamp(512, snapshot.max_udp_payload) as usize
                    }),
                    Err(_) => 512,
                };
                assert!(
                    n <= limit,
                    "UDP response of {n} octets over the limit {limit}"
                );
            }
            let parsed = match Message::from_vec(out) {
                Ok(m) => m,
                Err(e) => {
                    panic!("response does not parse: {e}\nrequest {data:02x?}\nresponse {out:02x?}")
                }
            };
            assert_eq!(parsed.metadata.message_type, MessageType::Response);
            assert_eq!(parsed.metadata.id, u16::from_be_bytes([data[0], data[1]]));
        }
    });
});
