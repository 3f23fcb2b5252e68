//! DNS over TCP against the real server (RFC 7766): idle and stalled connections are closed,
//! odd framing does not hurt the server, and many concurrent connections with pipelined
//! queries are all answered.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// A server that closes idle connections, and drops queries that do not arrive whole, after
/// one second; with room for all the concurrent connections of one test client.
fn server() -> Server {
    Server::start(
        &[("example.com.zone", zones::TCP)],
        "tcp_idle_timeout_secs = 1\ntcp_query_timeout_secs = 1\ntcp_max_per_client = 1000",
    )
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(s.addr).expect("connect");
    // Far longer than the idle timeout: a read that times out means the server kept it open.
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    c
}

/// Waits for the server to end the connection: EOF or a reset, not a read timeout.
fn assert_closed_by_server(c: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 512];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => panic!("{what}: unexpected {n} bytes"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("{what}: connection not closed by the server ({e})"),
        }
    }
}

/// The server still answers an ordinary query over TCP and UDP.
fn assert_healthy(s: &mut Server) {
    assert!(s.is_running(), "server died");
    for m in [
        s.tcp("www.example.com.", RecordType::A),
        s.udp("www.example.com.", RecordType::A),
    ] {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&m), vec!["www.example.com. 300 IN A 192.0.2.80"]);
    }
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let s = server();
    // Never a query.
    let mut c = connect(&s);
    assert_closed_by_server(&mut c, "idle connection");
    // Idle after a query was answered.
    let mut c = connect(&s);
    let q = query("www.example.com.", RecordType::A, false);
    tcp_send(&mut c, &q.to_vec().expect("encode"));
    let r = Message::from_vec(&tcp_read(&mut c).expect("answer")).expect("parse");
    assert_eq!(r.metadata.id, q.metadata.id);
    assert_closed_by_server(&mut c, "idle after a query");
}

#[test]
fn stalled_clients_are_disconnected() {
    let mut s = server();
    let q = query("www.example.com.", RecordType::A, true)
        .to_vec()
        .expect("encode");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);

    // Half a length prefix.
    let mut c = connect(&s);
    c.write_all(&framed[..1]).expect("write");
    assert_closed_by_server(&mut c, "half a length prefix");

    // A length prefix and half the message.
    let mut c = connect(&s);
    c.write_all(&framed[..2 + q.len() / 2]).expect("write");
    assert_closed_by_server(&mut c, "half a message");

    // A length prefix promising far more than is ever sent.
    let mut c = connect(&s);
    c.write_all(&[0xFF, 0xFF, 0, 0, 0]).expect("write");
    assert_closed_by_server(&mut c, "short of a 65535-octet message");

    // A complete query, then half of the next one: the first is answered, then the close.
    let mut c = connect(&s);
    let mut two = framed.clone();
    two.extend_from_slice(&framed[..5]);
    c.write_all(&two).expect("write");
    let r = tcp_read(&mut c).expect("first query answered");
    assert_eq!(r[..2], q[..2]);
    assert_closed_by_server(&mut c, "half of the second message");

    assert_healthy(&mut s);
}

#[test]
fn zero_length_and_garbage_messages_do_not_hurt() {
    let mut s = server();

    // A zero-length message: nothing to answer, the connection may be closed.
    let mut c = connect(&s);
    c.write_all(&[0, 0]).expect("write");
    assert_closed_by_server(&mut c, "zero-length message");

    // Shorter than a header: dropped like on UDP, connection ended.
    let mut c = connect(&s);
    tcp_send(&mut c, &[1, 2, 3]);
    assert_closed_by_server(&mut c, "short message");

    // Garbage with a header: answered (FORMERR or similar), or the connection ends.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..200 {
        let mut c = connect(&s);
        let len = 12 + (round * 7) % 300;
        let mut garbage = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            garbage.push(seed as u8);
        }
        garbage[2] &= 0x7F; // a query, so that there is something to answer
        tcp_send(&mut c, &garbage);
        if let Some(resp) = tcp_read(&mut c) {
            let m = Message::from_vec(&resp).expect("response parses");
            assert_eq!(resp[..2], garbage[..2], "response id");
            assert!(m.metadata.message_type == hickory_proto::op::MessageType::Response);
        }
        let _ = c.shutdown(Shutdown::Both);
    }

    // A connection closed by the client in the middle of a message.
    let mut c = connect(&s);
    c.write_all(&[0, 40, 1, 2, 3]).expect("write");
    drop(c);

    assert_healthy(&mut s);
}

#[test]
fn concurrent_connections_with_pipelined_queries() {
    const CONNECTIONS: usize = 200;
    const PER_CONNECTION: usize = 5;
    let mut s = server();
    let questions: [(&str, RecordType, &str); PER_CONNECTION] = [
        ("www.example.com.", RecordType::A, "192.0.2.80"),
        ("mail.example.com.", RecordType::AAAA, "2001:db8::25"),
        ("alias.example.com.", RecordType::A, "192.0.2.80"),
        ("ns1.example.com.", RecordType::A, "192.0.2.1"),
        ("example.com.", RecordType::SOA, "hostmaster.example.com."),
    ];
    // Everyone connects first, then all send at once.
    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    let addr = s.addr;
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|k| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(addr).expect("connect");
                c.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                barrier.wait();
                let mut ids = Vec::new();
                let mut all = Vec::new();
                for (i, (name, rtype, _)) in questions.into_iter().enumerate() {
                    let mut q = query(name, rtype, true);
                    q.metadata.id = (k * PER_CONNECTION + i) as u16;
                    let bytes = q.to_vec().expect("encode");
                    all.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    all.extend_from_slice(&bytes);
                    ids.push(q.metadata.id);
                }
                // All queries in one write: pipelined.
                c.write_all(&all).expect("write");
                let mut results = Vec::new();
                for _ in 0..PER_CONNECTION {
                    let resp = tcp_read(&mut c).expect("pipelined answer");
                    results.push(Message::from_vec(&resp).expect("parse"));
                }
                (ids, results)
            })
        })
        .collect();
    for t in threads {
        let (ids, results) = t.join().expect("client thread");
        // Matched by ID: RFC 7766 §6.2.1.1 allows answers out of order.
        for (i, (_, _, want)) in questions.iter().enumerate() {
            let m = results
                .iter()
                .find(|m| m.metadata.id == ids[i])
                .unwrap_or_else(|| panic!("no answer for query {i}"));
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(
                answers(m).iter().any(|a| a.contains(want)),
                "{:?}",
                answers(m)
            );
        }
    }
    assert_healthy(&mut s);
}

/// Holds `n` connections from `from`, each proven open by one answered query.
fn hold(s: &Server, from: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = hold_try(s, from);
            assert!(tcp_read(&mut c).is_some(), "held connection answered");
            c
        })
        .collect()
}

#[test]
fn connection_caps_per_client_and_in_total() {
    let s = Server::start(
        &[("example.com.zone", zones::TCP)],
        "tcp_max_per_client = 3\ntcp_max_connections = 5",
    );
    // A client at its cap: the next connection from it is closed unanswered.
    let _held = hold(&s, "127.0.5.1", 3);
    let mut extra = hold_try(&s, "127.0.5.1");
    assert!(
        tcp_read(&mut extra).is_none(),
        "4th connection from one client refused"
    );
    // Another client still gets in, up to the total cap...
    let _more = hold(&s, "127.0.6.1", 2);
    let mut over = hold_try(&s, "127.0.7.1");
    assert!(
        tcp_read(&mut over).is_none(),
        "6th connection in total refused"
    );
    // ...and UDP is unaffected.
    assert_eq!(s.udp("www.example.com.", RecordType::A).answers.len(), 1);
    // Closing one frees a slot.
    drop(_more);
    std::thread::sleep(Duration::from_millis(300));
    let _again = hold(&s, "127.0.7.1", 1);
}

/// Connects from `from` and sends a query; the caller checks whether it is answered.
fn hold_try(s: &Server, from: &str) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let bind: std::net::SocketAddr = format!("{from}:0").parse().expect("addr");
    sock.bind(&bind.into()).expect("bind");
    sock.connect(&s.addr.into()).expect("connect");
    let mut c: TcpStream = sock.into();
    c.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = c.write_all(&{
        let q = query("www.example.com.", RecordType::A, false)
            .to_vec()
            .expect("q");
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        framed
    });
    c
}

#[test]
fn a_large_query_after_small_ones_on_one_connection() {
    let s = server();
    let mut c = connect(&s);
    let small = query("www.example.com.", RecordType::A, true);
    // The same question with a 3000-byte unknown EDNS option (ignored, RFC 6891 §6.1.2):
    // the connection's request buffer must grow for it.
    let mut large =
        meridian::dns::wire::build_query(4242, b"\x03www\x07example\x03com\x00", 1, true, None);
    let option_len = 3000u16;
    let rdlen_at = large.len() - 2;
    large[rdlen_at..].copy_from_slice(&(4 + option_len).to_be_bytes());
    large.extend_from_slice(&65001u16.to_be_bytes());
    large.extend_from_slice(&option_len.to_be_bytes());
    large.extend(std::iter::repeat_n(0xAB, usize::from(option_len)));
    for bytes in [
        small.to_vec().expect("encode"),
        large,
        small.to_vec().expect("encode"),
    ] {
        tcp_send(&mut c, &bytes);
        let reply = Message::from_vec(&tcp_read(&mut c).expect("answer")).expect("parse");
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            answers(&reply),
            vec!["www.example.com. 300 IN A 192.0.2.80"]
        );
    }
}
