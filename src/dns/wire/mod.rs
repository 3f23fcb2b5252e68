//! DNS messages on the wire: parsing a query (parse.rs) and writing a response with name
//! compression into a caller-owned buffer (write.rs), without allocating.

mod parse;
mod write;

pub use parse::*;
pub use write::*;

/// Copies `src` into `dst` (the same length). Up to 64 bytes (a rendered answer, a negative
/// SOA) with moves of fixed size that overlap, no call: a `memcpy` call, and the registers
/// saved around it, cost ~20 instructions for the ~16–60 bytes the writer copies per answer.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() || n > 64 {
        dst.copy_from_slice(src);
    } else if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        // One to three bytes: the first, the middle and the last cover them.
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length to 80, each byte distinct, into a buffer with bytes around it: the same
    /// as a plain copy, and nothing around it touched.
    #[test]
    fn copy_short_copies_every_length_and_nothing_else() {
        let src: Vec<u8> = (1..=80).collect();
        for n in 0..=80 {
            let mut want = vec![0xEEu8; n + 6];
            want[3..3 + n].copy_from_slice(&src[..n]);
            let mut got = vec![0xEEu8; n + 6];
            copy_short(&mut got[3..3 + n], &src[..n]);
            assert_eq!(got, want, "{n} bytes");
        }
    }
    use crate::dns::{RRset, RdataList, Section, Sink};

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        q.extend_from_slice(&arcount.to_be_bytes());
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q.extend_from_slice(extra);
        q
    }

    fn opt_with(option: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41, 0x10, 0x00, 0, 0, 0, 0];
        o.extend_from_slice(&(option.len() as u16).to_be_bytes());
        o.extend_from_slice(option);
        o
    }

    const NAME: &[u8] = b"\x03www\x07example\x03com\x00";

    #[test]
    fn parses_plain_and_edns_queries() {
        let q = query(NAME, 1, &[], 0);
        let p = parse_query(&q).expect("valid query");
        assert_eq!(p.qname, NAME);
        assert_eq!(p.qtype, 1);
        assert!(p.edns.is_none());
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let q = query(NAME, 1, &opt_with(&ecs), 1);
        let p = parse_query(&q).expect("valid query");
        let e = p.edns.expect("edns");
        assert_eq!(e.udp_size, 4096);
        let s = e.ecs.expect("ecs");
        assert_eq!((s.family, s.source_prefix), (1, 24));
        assert_eq!(&s.addr[..3], &[192, 0, 2]);
    }

    /// The lone OPT record (read at once) and the same OPT after another additional record
    /// (the walk over records) give the same EDNS, or both FORMERR: with and without options,
    /// DO and a version, and with its length one short or one long.
    #[test]
    fn a_lone_opt_reads_as_the_walk_reads_it() {
        let a_record = [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
        let ecs = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut opts = vec![
            opt_with(&[]),
            opt_with(&ecs),
            opt_with(&cookie),
            opt_with(&[0, 3, 0, 0]),
        ];
        let mut flagged = opt_with(&ecs);
        flagged[5..9].copy_from_slice(&[0, 1, 0x80, 0]); // version 1, DO
        opts.push(flagged);
        let mut long = opt_with(&ecs);
        long[10] += 1;
        let mut short = opt_with(&ecs);
        short[10] -= 1;
        let mut unknown = opt_with(&[0, 99, 0, 1]); // an option longer than the record
        unknown[10] = 4;
        opts.extend([long, short, unknown]);
        for opt in &opts {
            let alone = query(NAME, 1, opt, 1);
            let walked = query(NAME, 1, &[&a_record[..], opt].concat(), 2);
            let (alone, walked) = (parse_query(&alone), parse_query(&walked));
            match (&alone, &walked) {
                (Ok(a), Ok(w)) => {
                    let (Some(mut a), Some(mut w)) = (a.edns, w.edns) else {
                        panic!("no EDNS read from {opt:?}");
                    };
                    // The cookie's position differs by the record in front of it.
                    assert_eq!(a.cookie_at + (w.cookie_len > 0) as u16 * 16, w.cookie_at);
                    (a.cookie_at, w.cookie_at) = (0, 0);
                    assert_eq!(a, w, "{opt:?}");
                }
                (Err(a), Err(w)) => assert!(
                    matches!(
                        (a, w),
                        (
                            ParseError::Reply { rcode: 1, .. },
                            ParseError::Reply { rcode: 1, .. }
                        )
                    ),
                    "{opt:?}"
                ),
                _ => panic!("{opt:?}: alone {alone:?}, walked {walked:?}"),
            }
        }
        // A record that is not OPT, or an OPT not owned by the root, is not read at once.
        let mut not_root = opt_with(&[]);
        not_root[0] = 1;
        not_root.insert(1, b'x');
        assert!(parse_query(&query(NAME, 1, &not_root, 1)).is_err());
        let plain = query(NAME, 1, &a_record, 1);
        let p = parse_query(&plain).expect("an A record in additional");
        assert!(p.edns.is_none());
    }

    #[test]
    fn rejects_malformed_ecs() {
        for bad in [
            &[0, 8, 0, 7, 0, 1, 33, 0, 192, 0, 2][..], // prefix too long
            &[0, 8, 0, 7, 0, 1, 23, 0, 192, 0, 3][..], // bits beyond prefix
            &[0, 8, 0, 7, 0, 1, 24, 8, 192, 0, 2][..], // scope in a query
            &[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2][..], // unknown family
            &[0, 8, 0, 6, 0, 1, 24, 0, 192, 0][..],    // address too short
        ] {
            let q = query(NAME, 1, &opt_with(bad), 1);
            assert!(
                matches!(parse_query(&q), Err(ParseError::Reply { rcode: 1, .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn drops_short_and_response_messages() {
        assert_eq!(parse_query(&[0; 11]).err(), Some(ParseError::Drop));
        let mut q = query(NAME, 1, &[], 0);
        q[2] |= 0x80;
        assert_eq!(parse_query(&q).err(), Some(ParseError::Drop));
    }

    #[test]
    fn compresses_owner_against_question() {
        let q = query(NAME, 1, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 1, 0, false, &q[12..], 512);
        let set = RRset::new(1, 60, RdataList::one(&[192, 0, 2, 1]).expect("fits"));
        assert!(w.rrset(Section::Answer, b"\x03WWW\x07example\x03com\x00", &set, 60));
        let len = w.finish(None);
        // header + question + pointer(2) + fixed(10) + rdata(4)
        assert_eq!(len, 12 + NAME.len() + 4 + 2 + 10 + 4);
        assert_eq!(&buf[12 + NAME.len() + 4..12 + NAME.len() + 6], &[0xC0, 12]);
    }

    #[test]
    fn truncate_to_question_keeps_header_and_question() {
        let q = query(NAME, 1, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 7, 0, false, &q[12..], 512);
        let set = RRset::new(1, 60, RdataList::one(&[192, 0, 2, 1]).expect("fits"));
        w.rrset(Section::Answer, NAME, &set, 60);
        let len = w.finish(None);
        let cut = truncate_to_question(&mut buf, len);
        assert_eq!(cut, 12 + NAME.len() + 4);
        assert_eq!(buf[2] & 0x02, 0x02, "TC");
        assert_eq!(&buf[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn truncates_whole_rrsets() {
        let q = query(NAME, 16, &[], 0);
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf, 1, 0, false, &q[12..], 100);
        let mut txt = RdataList::default();
        for i in 0..10 {
            txt.push(&[10, b'a' + i, 1, 2, 3, 4, 5, 6, 7, 8, 9])
                .expect("fits");
        }
        let set = RRset::new(16, 60, txt);
        assert!(!w.rrset(Section::Answer, NAME, &set, 60));
        assert!(w.is_truncated());
        assert_eq!(w.answer_count(), 0);
    }
}
