//! `wire::parse_query` on arbitrary bytes: it must never panic, and what it accepts must be
//! self-consistent (the question name lies inside the buffer, right after the header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::dns::HEADER_LEN;
use meridian::dns::wire::{self, ParseError};

fuzz_target!(|data: &[u8]| {
    match wire::parse_query(data) {
        Ok(q) => {
            assert!(q.qname.len() <= 255, "question name longer than 255 octets");
            assert_eq!(
                q.qname.last(),
                Some(&0),
                "question name ends in the root label"
            );
            assert_eq!(&data[HEADER_LEN..HEADER_LEN + q.qname.len()], q.qname);
            assert_eq!(q.id, u16::from_be_bytes([data[0], data[1]]));
            if let Some(ecs) = q.edns.and_then(|e| e.ecs) {
                assert!(matches!(ecs.family, 1 | 2));
                assert!(ecs.source_prefix <= if ecs.family == 1 { 32 } else { 128 });
                assert_eq!(ecs.scope_prefix, 0);
            }
        }
        Err(ParseError::Drop) => {}
        Err(ParseError::Reply { question_end, .. }) => {
            assert!(question_end == 0 || (question_end > HEADER_LEN && question_end <= data.len()));
        }
    }
});
