//! Every record type a zone file can hold: `tests/data/alltypes/types.example.zone` (every
//! type in IANA's registry that Knot and BIND load, in several spellings) is loaded by
//! meridian, Knot DNS and NSD, and the three AXFRs are compared RRset by RRset in wire form
//! (read here, not by dig: dig refuses some of the corpus's legal oddities).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::io::{Read, Write};
use std::net::TcpStream;

use meridian::dns::name;
use meridian::dns::rtype;
use meridian::dns::wire::build_query;

use crate::common::{DaemonGuard, Server, knot_conf, require_tool, stable_port, tool_path};
use crate::differential::wire::{normalize_rdata, read_name};

const ZONE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/alltypes");
const ORIGIN: &str = "types.example.";
const FILE: &str = "types.example.zone";

/// The transfer as `type -> set of "owner ttl class rdata-hex"` (owner lowercased, names in
/// RDATA decompressed where servers may compress them).
type Transfer = BTreeMap<u16, BTreeSet<String>>;

/// One answer-section record: owner (lowercase text), type, class, TTL, RDATA as hex with
/// names decompressed where servers may compress them.
struct Record {
    owner: String,
    rtype: u16,
    class: u16,
    ttl: u32,
    hex: String,
}

/// The header's rcode and AA bit, and the answer section of `msg`.
fn answer_records(msg: &[u8]) -> Option<(u8, bool, Vec<Record>)> {
    let (qd, an) = (u16_at(msg, 4)?, u16_at(msg, 6)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(msg, pos)?.1 + 4;
    }
    let mut out = Vec::with_capacity(usize::from(an));
    for _ in 0..an {
        let (owner, next) = read_name(msg, pos)?;
        let (rtype, class) = (u16_at(msg, next)?, u16_at(msg, next + 2)?);
        let ttl = u32::from(u16_at(msg, next + 4)?) << 16 | u32::from(u16_at(msg, next + 6)?);
        let rdlen = usize::from(u16_at(msg, next + 8)?);
        let rdata = normalize_rdata(msg, next + 10, rdlen, rtype)?;
        pos = next + 10 + rdlen;
        out.push(Record {
            owner: name::to_text(&owner),
            rtype,
            class,
            ttl,
            hex: rdata.iter().map(|b| format!("{b:02x}")).collect(),
        });
    }
    Some((msg.get(3)? & 0x0f, msg.get(2)? & 0x04 != 0, out))
}

/// Sends `query` over TCP; the stream, to read the response message(s) from.
fn send_tcp(addr: SocketAddr, query: &[u8]) -> Option<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).ok()?;
    Some(s)
}

fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).ok()?;
    Some(msg)
}

/// An AXFR over TCP, read message by message until the closing SOA; `None` if it fails.
fn axfr(addr: SocketAddr) -> Option<Transfer> {
    let origin = name::wire(&hickory_proto::rr::Name::from_ascii(ORIGIN).ok()?);
    let mut s = send_tcp(
        addr,
        &build_query(0x5aa5, &origin, rtype::AXFR, false, None),
    )?;
    let mut t = Transfer::new();
    let mut soas = 0;
    for _ in 0..1000 {
        let (rcode, _, records) = answer_records(&read_message(&mut s)?)?;
        if rcode != 0 {
            return None;
        }
        for r in records {
            if r.rtype == rtype::SOA {
                soas += 1;
                if soas == 2 {
                    return Some(t);
                }
            }
            let line = format!("{} {} {} {}", r.owner, r.ttl, r.class, r.hex);
            t.entry(r.rtype).or_default().insert(line);
        }
    }
    None
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

fn wait_axfr(what: &str, addr: SocketAddr, log: &Path) -> Transfer {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(t) = axfr(addr) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} gave no AXFR of {ORIGIN}; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// One question over TCP: "rcode aa | answer records" (records as the AXFR lines, sorted),
/// or why it failed.
fn ask(addr: SocketAddr, owner: &[u8], qtype: u16) -> String {
    let answer = send_tcp(addr, &build_query(0x1234, owner, qtype, true, None))
        .and_then(|mut s| read_message(&mut s))
        .and_then(|msg| answer_records(&msg));
    let Some((rcode, aa, records)) = answer else {
        return "no answer".into();
    };
    let mut lines: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} {} {}", r.owner, r.rtype, r.ttl, r.hex))
        .collect();
    lines.sort();
    format!("rcode {rcode} aa {aa} | {}", lines.join(" "))
}

fn knot(dir: &Path) -> (DaemonGuard, SocketAddr, std::path::PathBuf) {
    let port = stable_port();
    let d = dir.display();
    let conf = format!(
        "{}acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer\n\
         template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    \
         zonefile-load: whole\n    journal-content: none\n    acl: xfr\n\
         zone:\n  - domain: {ORIGIN}\n    file: \"{d}/{FILE}\"\n",
        knot_conf(dir, port, "warning")
    );
    let path = dir.join("knot.conf");
    std::fs::write(&path, conf).expect("knot.conf");
    let log = dir.join("knot.log");
    let child = DaemonGuard::spawn(
        Command::new(tool_path("knotd")).arg("-c").arg(&path),
        dir,
        &log,
    );
    (child, SocketAddr::from(([127, 0, 0, 1], port)), log)
}

fn nsd(dir: &Path) -> (DaemonGuard, SocketAddr, std::path::PathBuf) {
    let port = stable_port();
    let d = dir.display();
    let conf = format!(
        "server:\n    ip-address: 127.0.0.1@{port}\n    port: {port}\n    do-ip6: no\n    \
         username: \"\"\n    chroot: \"\"\n    zonesdir: \"{d}\"\n    database: \"\"\n    \
         pidfile: \"{d}/nsd.pid\"\n    xfrdfile: \"{d}/xfrd.state\"\n    xfrdir: \"{d}\"\n    \
         zonelistfile: \"{d}/zone.list\"\n    cookie-secret-file: \"{d}/cookiesecrets.txt\"\n    \
         server-count: 1\n    verbosity: 1\n\
         remote-control:\n    control-enable: no\n\
         zone:\n    name: \"{ORIGIN}\"\n    zonefile: \"{d}/{FILE}\"\n    provide-xfr: 127.0.0.1 NOKEY\n"
    );
    let path = dir.join("nsd.conf");
    std::fs::write(&path, conf).expect("nsd.conf");
    let log = dir.join("nsd.log");
    let child = DaemonGuard::spawn(
        Command::new(tool_path("nsd"))
            .arg("-d")
            .arg("-c")
            .arg(&path),
        dir,
        &log,
    );
    (child, SocketAddr::from(([127, 0, 0, 1], port)), log)
}

#[test]
fn every_type_transfers_as_knot_and_nsd_load_it() {
    for (tool, package) in [("knotd", "knot"), ("nsd", "nsd")] {
        if !require_tool(tool, package) {
            return;
        }
    }
    let text = std::fs::read_to_string(Path::new(ZONE_DIR).join(FILE)).expect("corpus zone");
    let server = Server::start(
        &[(FILE, text.as_str())],
        &format!("[transfer.\"{ORIGIN}\"]\nallow = [\"127.0.0.0/8\"]\n"),
    );
    let ours = wait_axfr("meridian", server.addr, Path::new("/dev/null"));

    let knot_dir = tempfile::tempdir().expect("temp dir");
    let nsd_dir = tempfile::tempdir().expect("temp dir");
    for d in [&knot_dir, &nsd_dir] {
        std::fs::write(d.path().join(FILE), &text).expect("copy zone");
    }
    let (_knot, knot_addr, knot_log) = knot(knot_dir.path());
    let (_nsd, nsd_addr, nsd_log) = nsd(nsd_dir.path());
    let knot = wait_axfr("knot", knot_addr, &knot_log);
    let nsd = wait_axfr("nsd", nsd_addr, &nsd_log);

    // The corpus must exercise the types it claims to (about 65, checked loosely).
    assert!(
        knot.len() >= 60,
        "only {} types in the corpus: {:?}",
        knot.len(),
        knot.keys()
    );
    let mut differences = Vec::new();
    let types: BTreeSet<u16> = ours
        .keys()
        .chain(knot.keys())
        .chain(nsd.keys())
        .copied()
        .collect();
    for code in types {
        let t = rtype::mnemonic(code).map_or(format!("TYPE{code}"), str::to_string);
        let empty = BTreeSet::new();
        let (m, k, n) = (
            ours.get(&code).unwrap_or(&empty),
            knot.get(&code).unwrap_or(&empty),
            nsd.get(&code).unwrap_or(&empty),
        );
        if k != n {
            println!(
                "Knot and NSD differ on {t}: only Knot {:?}, only NSD {:?}",
                k.difference(n).collect::<Vec<_>>(),
                n.difference(k).collect::<Vec<_>>()
            );
        }
        if m != k && m != n {
            differences.push(format!(
                "{t}: only meridian {:?}\n  only Knot {:?}\n  only NSD {:?}",
                m.difference(k).collect::<Vec<_>>(),
                k.difference(m).collect::<Vec<_>>(),
                n.difference(m).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} types differ from both Knot and NSD:\n{}",
        differences.len(),
        differences.join("\n")
    );

    // Every (owner, type) of the corpus asked of all three: rcode, AA and the answer must be
    // what Knot or NSD say.
    let mut asked = 0;
    let mut mismatches = Vec::new();
    let questions: BTreeSet<(String, u16)> = knot
        .iter()
        .flat_map(|(t, lines)| {
            lines
                .iter()
                .map(move |l| (l.split(' ').next().unwrap_or_default().to_string(), *t))
        })
        .collect();
    for (owner, t) in &questions {
        let root = hickory_proto::rr::Name::root();
        let wire = name::wire(&name::from_text(owner, &root).expect("owner"));
        let (m, k, n) = (
            ask(server.addr, &wire, *t),
            ask(knot_addr, &wire, *t),
            ask(nsd_addr, &wire, *t),
        );
        asked += 1;
        if m != k && m != n {
            mismatches.push(format!(
                "{owner} {t}:\n  meridian {m}\n  knot     {k}\n  nsd      {n}"
            ));
        }
    }
    assert!(asked > 100, "{asked} questions");
    assert!(
        mismatches.is_empty(),
        "{} of {asked} answers differ from both Knot and NSD:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    println!("{asked} questions: every answer identical to Knot's or NSD's");
    println!(
        "{} types, {} records: identical to Knot or NSD",
        ours.len(),
        ours.values().map(BTreeSet::len).sum::<usize>()
    );
}

/// The corpus with every generic record that follows a `; TYPE presentation` comment (the
/// types Knot 3.2 or NSD 4.6 cannot parse by name) replaced by that presentation; and the
/// types so replaced.
fn spelled_out(text: &str) -> (String, BTreeSet<u16>) {
    let mut out = String::new();
    let mut replaced = BTreeSet::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let spelling = line.strip_prefix("; ").and_then(|rest| {
            let (mnemonic, _) = rest.split_once(' ')?;
            Some((rtype::from_mnemonic(mnemonic)?, rest))
        });
        let generic = lines
            .peek()
            .filter(|next| !next.starts_with(';') && next.contains(" \\# "))
            .and_then(|next| next.find("TYPE"));
        let (Some((code, spelled)), Some(at)) = (spelling, generic) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let next = lines.next().unwrap_or_default();
        out.push_str(&format!("{}{spelled}\n", &next[..at]));
        replaced.insert(code);
        if next.contains('(') && !next.contains(')') {
            for rest in lines.by_ref() {
                if rest.contains(')') {
                    break;
                }
            }
        }
    }
    (out, replaced)
}

#[test]
fn presentation_forms_knot_and_nsd_cannot_read_give_the_checked_bytes() {
    let text = std::fs::read_to_string(Path::new(ZONE_DIR).join(FILE)).expect("corpus zone");
    let (spelled, replaced) = spelled_out(&text);
    // MD MF MB MG MR X25 ISDN NSAP NSAP-PTR SIG GPOS PX HIP AVC DOA AMTRELAY RESINFO
    assert!(replaced.len() >= 17, "only {replaced:?} spelled out");
    let config = format!("[transfer.\"{ORIGIN}\"]\nallow = [\"127.0.0.0/8\"]\n");
    let generic = Server::start(&[(FILE, text.as_str())], &config);
    let named = Server::start(&[(FILE, spelled.as_str())], &config);
    let generic = wait_axfr("meridian (generic)", generic.addr, Path::new("/dev/null"));
    let named = wait_axfr("meridian (spelled out)", named.addr, Path::new("/dev/null"));
    for code in &replaced {
        assert_eq!(
            named.get(code),
            generic.get(code),
            "{} spelled out differs from its checked generic form",
            rtype::mnemonic(*code).unwrap_or("?")
        );
    }
    assert_eq!(named, generic);
}
