//! The authoritative core end to end: the real binary, real zone files, real UDP and TCP.

use crate::common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, RData, RecordType};

const PARENT: &str = r#"
$ORIGIN example.com.
$TTL 300
@       IN SOA ns1 hostmaster ( 7 3600 600 1209600 60 )
        IN NS  ns1
        IN NS  ns2.example.net.
        IN MX  10 mail
ns1     IN A   192.0.2.1
mail    IN A   192.0.2.25
        IN AAAA 2001:db8::25
www     IN A   192.0.2.80
alias   IN CNAME www
chain   IN CNAME alias
loop1   IN CNAME loop2
loop2   IN CNAME loop1
dangling IN CNAME nothere
outside IN CNAME www.example.org.
*.wild  IN A   192.0.2.99
*.wild  IN TXT "wild"
exists.wild IN TXT "real"
deep.ent.wild2 IN A 192.0.2.3
*.wild2 IN A   192.0.2.4
old     IN DNAME new.example.com.
www.new IN A   192.0.2.81
child   IN NS  ns.child
        IN DS  1 13 2 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
ns.child IN A  192.0.2.53
deleg   IN NS  ns.deleg
ns.deleg IN A  192.0.2.54
big     IN TXT "0123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "1123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "2123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "3123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "4123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "5123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "6123456789012345678901234567890123456789012345678901234567890123456789"
        IN TXT "7123456789012345678901234567890123456789012345678901234567890123456789"
unk     IN TYPE65400 \# 4 0a0b0c0d
"#;

const CHILD: &str = r#"
$ORIGIN child.example.com.
$TTL 120
@    IN SOA ns hostmaster.example.com. 1 3600 600 1209600 30
     IN NS  ns
ns   IN A   192.0.2.53
www  IN A   192.0.2.55
"#;

fn server() -> Server {
    Server::start(
        &[
            ("example.com.zone", PARENT),
            ("child.example.com.zone", CHILD),
        ],
        "identity = \"test-site-1\"",
    )
}

fn rcode(m: &hickory_proto::op::Message) -> ResponseCode {
    m.metadata.response_code
}

#[test]
fn exact_answers_are_authoritative_and_keep_query_case() {
    let s = server();
    let mut q = query("WwW.ExAmPlE.cOm.", RecordType::A, true);
    q.metadata.recursion_desired = true;
    let m = udp_query(s.addr, &q);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available);
    assert!(m.metadata.recursion_desired, "RD is copied");
    assert_eq!(answers(&m), vec!["www.example.com. 300 IN A 192.0.2.80"]);
    // The owner name is written as the query wrote it (a pointer to the question).
    let mut bytes = q.to_vec().expect("encode");
    let qlen = "WwW.ExAmPlE.cOm.".len() + 1;
    bytes[12..12 + qlen].copy_from_slice(b"\x03WwW\x07ExAmPlE\x03cOm\x00");
    let raw = udp_raw(s.addr, &bytes).expect("answer");
    assert_eq!(&raw[12..12 + qlen], b"\x03WwW\x07ExAmPlE\x03cOm\x00");
    assert_eq!(&raw[12 + qlen + 4..12 + qlen + 6], &[0xc0, 12]);
    let m = s.udp("www.example.com.", RecordType::A);
    assert!(!m.metadata.recursion_desired, "RD clear stays clear");
}

#[test]
fn nxdomain_and_nodata_carry_soa_with_negative_ttl() {
    let s = server();
    let m = s.udp("nope.example.com.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].ttl, 60, "min(SOA TTL, MINIMUM)");
    let m = s.udp("www.example.com.", RecordType::AAAA);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
}

#[test]
fn cname_chains_are_followed_inside_the_zone_only() {
    let s = server();
    let m = s.udp("chain.example.com.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec![
            "alias.example.com. 300 IN CNAME www.example.com.",
            "chain.example.com. 300 IN CNAME alias.example.com.",
            "www.example.com. 300 IN A 192.0.2.80",
        ]
    );
    let m = s.udp("outside.example.com.", RecordType::A);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(rcode(&m), ResponseCode::NoError);
    let m = s.udp("loop1.example.com.", RecordType::A);
    assert_eq!(m.answers.len(), 2, "a loop stops: {:?}", answers(&m));
    let m = s.udp("dangling.example.com.", RecordType::A);
    assert_eq!(
        rcode(&m),
        ResponseCode::NXDomain,
        "RFC 6604: rcode of the last name"
    );
    assert_eq!(m.answers.len(), 1);
    let m = s.udp("alias.example.com.", RecordType::CNAME);
    assert_eq!(
        answers(&m),
        vec!["alias.example.com. 300 IN CNAME www.example.com."]
    );
}

#[test]
fn wildcards_synthesize_and_are_blocked_by_existing_names() {
    let s = server();
    let m = s.udp("a.b.wild.example.com.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["a.b.wild.example.com. 300 IN A 192.0.2.99"]
    );
    // exists.wild has TXT only: NODATA for A, not the wildcard.
    let m = s.udp("exists.wild.example.com.", RecordType::A);
    assert!(m.answers.is_empty());
    assert_eq!(rcode(&m), ResponseCode::NoError);
    // ent.wild2 is an empty non-terminal: it exists, so the wildcard does not apply.
    let m = s.udp("ent.wild2.example.com.", RecordType::A);
    assert!(m.answers.is_empty());
    assert_eq!(rcode(&m), ResponseCode::NoError);
    let m = s.udp("other.wild2.example.com.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["other.wild2.example.com. 300 IN A 192.0.2.4"]
    );
}

#[test]
fn dname_substitutes_and_synthesizes_a_cname() {
    let s = server();
    let m = s.udp("www.old.example.com.", RecordType::A);
    assert_eq!(m.answers[0].record_type(), RecordType::DNAME);
    assert_eq!(m.answers[0].name.to_string(), "old.example.com.");
    assert_eq!(
        answers(&m)[1..],
        vec![
            "www.new.example.com. 300 IN A 192.0.2.81",
            "www.old.example.com. 300 IN CNAME www.new.example.com.",
        ]
    );
}

#[test]
fn delegations_are_referrals_with_glue_and_child_zone_answers() {
    let s = server();
    let m = s.udp("a.deleg.example.com.", RecordType::A);
    assert!(!m.metadata.authoritative, "referral is not authoritative");
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::NS);
    assert!(
        m.additionals
            .iter()
            .any(|r| r.data == RData::A("192.0.2.54".parse().expect("ip"))),
        "glue: {:?}",
        m.additionals
    );
    // The child zone is ours too: the most specific zone answers.
    let m = s.udp("www.child.example.com.", RecordType::A);
    assert!(m.metadata.authoritative);
    assert_eq!(
        answers(&m),
        vec!["www.child.example.com. 120 IN A 192.0.2.55"]
    );
    // DS is answered from the parent side of the cut.
    let m = s.udp("child.example.com.", RecordType::DS);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::DS);
}

#[test]
fn out_of_zone_is_refused_and_odd_classes_too() {
    let s = server();
    let m = s.udp("www.example.org.", RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert!(m.answers.is_empty());
    let m = udp_query(
        s.addr,
        &query_class("www.example.com.", RecordType::A, DNSClass::HS),
    );
    assert_eq!(rcode(&m), ResponseCode::Refused);
}

#[test]
fn identity_over_chaos_and_nsid() {
    let s = server();
    for name in ["id.server.", "hostname.bind."] {
        let m = udp_query(s.addr, &query_class(name, RecordType::TXT, DNSClass::CH));
        assert_eq!(rcode(&m), ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert!(m.answers[0].data.to_string().contains("test-site-1"));
    }
    let m = udp_query(
        s.addr,
        &query_class("version.bind.", RecordType::TXT, DNSClass::CH),
    );
    assert_eq!(rcode(&m), ResponseCode::Refused);
    // NSID: an empty NSID option in the query gets the identity back.
    let mut q = query("www.example.com.", RecordType::A, true);
    let mut bytes = q.to_vec().expect("encode");
    // Append the NSID option (code 3, length 0) to the OPT RR at the end of the message.
    let n = bytes.len();
    bytes[n - 2..n].copy_from_slice(&4u16.to_be_bytes());
    bytes.extend_from_slice(&[0, 3, 0, 0]);
    let resp = udp_raw(s.addr, &bytes).expect("answer");
    assert!(
        resp.windows(11).any(|w| w == b"test-site-1"),
        "NSID payload in the response"
    );
    q.metadata.id = 0;
}

#[test]
fn edns_is_echoed_and_badvers_for_unknown_versions() {
    let s = server();
    let m = s.udp("www.example.com.", RecordType::A);
    let edns = m.edns.as_ref().expect("OPT in response");
    assert_eq!(edns.max_payload(), 1232);
    let mut q = query("www.example.com.", RecordType::A, true);
    if let Some(e) = q.edns.as_mut() {
        e.set_version(1);
    }
    let m = udp_query(s.addr, &q);
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");
    assert!(m.answers.is_empty());
    let m = udp_query(s.addr, &query("www.example.com.", RecordType::A, false));
    assert!(m.edns.is_none(), "no OPT when the query had none");
}

#[test]
fn large_answers_truncate_over_udp_and_complete_over_tcp() {
    let s = server();
    let m = udp_query(s.addr, &query("big.example.com.", RecordType::TXT, false));
    assert!(m.metadata.truncation, "8 x 80 bytes do not fit in 512");
    let m = s.tcp("big.example.com.", RecordType::TXT);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 8);
    let m = s.udp("big.example.com.", RecordType::TXT);
    assert!(!m.metadata.truncation, "fits in 1232 with EDNS");
}

#[test]
fn tcp_takes_several_pipelined_queries_per_connection() {
    let s = server();
    let mut conn = std::net::TcpStream::connect(s.addr).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let names = ["www.example.com.", "mail.example.com.", "ns1.example.com."];
    let queries: Vec<_> = names
        .iter()
        .map(|n| query(n, RecordType::A, false))
        .collect();
    for q in &queries {
        tcp_send(&mut conn, &q.to_vec().expect("encode"));
    }
    for q in &queries {
        let resp = tcp_read(&mut conn).expect("answer");
        let m = hickory_proto::op::Message::from_vec(&resp).expect("parse");
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.answers.len(), 1);
    }
}

#[test]
fn any_is_minimal_over_udp_and_tcp() {
    let s = server();
    // RFC 8482 §4.1: one RRset, over TCP too (as Knot and NSD answer), with its additional
    // addresses (the apex's NS here).
    for m in [
        s.udp("example.com.", RecordType::ANY),
        s.tcp("example.com.", RecordType::ANY),
    ] {
        let types: std::collections::BTreeSet<_> =
            m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types.len(), 1, "one RRset: {:?}", answers(&m));
    }
}

#[test]
fn axfr_is_refused_and_unknown_opcodes_not_implemented() {
    let s = server();
    let m = s.tcp("example.com.", RecordType::AXFR);
    assert_eq!(rcode(&m), ResponseCode::Refused);
    // Over UDP a transfer is not implemented at all (Knot and NSD say NOTIMP too).
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let m = s.udp("example.com.", t);
        assert_eq!(rcode(&m), ResponseCode::NotImp, "{t} over UDP");
    }
    let mut q = query("example.com.", RecordType::SOA, false);
    q.metadata.op_code = hickory_proto::op::OpCode::Status;
    let m = udp_query(s.addr, &q);
    assert_eq!(rcode(&m), ResponseCode::NotImp);
}

#[test]
fn mx_answers_carry_addresses_in_additional() {
    let s = server();
    let m = s.udp("example.com.", RecordType::MX);
    assert_eq!(m.answers.len(), 1);
    let extra: Vec<_> = m.additionals.iter().map(|r| r.record_type()).collect();
    assert!(extra.contains(&RecordType::A) && extra.contains(&RecordType::AAAA));
}

#[test]
fn unknown_types_in_rfc3597_form() {
    let s = server();
    let m = s.udp("unk.example.com.", RecordType::Unknown(65400));
    assert_eq!(m.answers.len(), 1);
    let bytes = m.to_vec().expect("encode");
    assert!(bytes.windows(4).any(|w| w == [0x0a, 0x0b, 0x0c, 0x0d]));
}

#[test]
fn malformed_queries_get_formerr_or_are_dropped() {
    let s = server();
    // Header only, QDCOUNT 0: FORMERR.
    let resp = udp_raw(s.addr, &[0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).expect("answer");
    assert_eq!(resp[3] & 0x0f, 1);
    assert_eq!(&resp[..2], &[0xab, 0xcd]);
    // A compression pointer in the question: FORMERR.
    let resp = udp_raw(
        s.addr,
        &[1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
    )
    .expect("answer");
    assert_eq!(resp[3] & 0x0f, 1);
    // The server still answers normally afterwards.
    assert_eq!(s.udp("www.example.com.", RecordType::A).answers.len(), 1);
}
