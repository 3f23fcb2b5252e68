//! The direct table's shortcut against the walk down from the apex: for every name of the
//! differential zones (a parent with a delegation, glue, DNAME, wildcards and empty
//! non-terminals, and its child zone), for names one and two labels below each, and for
//! several types, `ZoneSet::lookup` must settle the same zone, and the answer it leads to
//! must be the same bytes and header as the general search gives. Each name asked in a mixed
//! case must be settled as in lowercase.

use std::path::Path;

use meridian::dns::wire::Writer;
use meridian::dns::{MAX_MESSAGE, rtype};
use meridian::zone::{Found, NoDynamic, ZoneSet};

const QTYPES: [u16; 7] = [
    rtype::A,
    rtype::AAAA,
    rtype::TXT,
    rtype::MX,
    rtype::NS,
    rtype::CNAME,
    rtype::DS,
];

/// The answer to (`name`, `qtype`) from `zone`, started from `found`: (outcome, bytes).
fn answer(
    zones: &ZoneSet,
    zone: usize,
    name: &[u8],
    qtype: u16,
    found: Found<'_>,
) -> (meridian::zone::Outcome, Vec<u8>) {
    let mut question = name.to_vec();
    question.extend_from_slice(&qtype.to_be_bytes());
    question.extend_from_slice(&1u16.to_be_bytes());
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut w = Writer::new(&mut buf, 7, 0, false, &question, MAX_MESSAGE);
    let outcome = zones.resolve(
        &zones.zones()[zone],
        name,
        name,
        found,
        qtype,
        &mut w,
        &mut NoDynamic,
    );
    let len = w.finish(None);
    (outcome, buf[..len].to_vec())
}

#[test]
fn the_direct_table_settles_names_as_the_walk_from_the_apex_does() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/differential");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    for file in [
        "example.com.zone",
        "example.com.inc",
        "child.example.com.zone",
    ] {
        std::fs::copy(data.join(file), dir.path().join("zones").join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("meridian.toml"), "zones_dir = \"zones\"\n").expect("toml");
    let snapshot = crate::common::load_snapshot(&dir.path().join("meridian.toml"));
    let zones = &snapshot.zones;
    assert_eq!(zones.zones().len(), 2, "both zones loaded");

    let mut names: Vec<Vec<u8>> = Vec::new();
    for zone in zones.zones() {
        for (owner, _) in zone.nodes() {
            names.push(owner.to_vec());
            for prefix in [&b"\x02zz"[..], b"\x01a\x01b", b"\x01*"] {
                let mut below = prefix.to_vec();
                below.extend_from_slice(owner);
                if below.len() <= 255 {
                    names.push(below);
                }
            }
        }
    }
    names.push(b"\x03not\x04ours\x00".to_vec());
    // As long as an origin, and below one that is: apexes are found by comparing a
    // suffix with the origins of its length.
    names.push(b"\x07example\x03net\x00".to_vec());
    names.push(b"\x02zz\x07example\x03net\x00".to_vec());
    names.push(b"\x02zz\x05chile\x07example\x03com\x00".to_vec());
    let (mut absent, mut exact, mut search) = (0, 0, 0);
    let mut seed = 11u64;
    for name in &names {
        for qtype in QTYPES {
            let fast = zones.lookup(name, qtype);
            let slow = zones.find_index(name, qtype);
            assert_eq!(
                fast.map(|(z, _)| z),
                slow,
                "zone of {} {qtype}",
                meridian::dns::name::to_text(name)
            );
            // Asked in another case, the lookup settles the same (it compares ignoring case,
            // and the hash is blind to it).
            let asked = crate::common::mixed_case(name, &mut seed);
            assert_eq!(
                format!("{:?}", zones.lookup(&asked, qtype)),
                format!("{fast:?}"),
                "{} {qtype} asked as {}",
                meridian::dns::name::to_text(name),
                meridian::dns::name::to_text(&asked)
            );
            let Some((zone, found)) = fast else { continue };
            match found {
                Found::Absent(_) => absent += 1,
                Found::Exact(_) => exact += 1,
                Found::Search => search += 1,
            }
            assert_eq!(
                answer(zones, zone, name, qtype, found),
                answer(zones, zone, name, qtype, Found::Search),
                "{} {qtype}: {found:?}",
                meridian::dns::name::to_text(name)
            );
        }
    }
    // Each way is taken (the comparison above covers them all).
    assert!(
        absent > 100 && exact > 100 && search > 50,
        "{absent} {exact} {search}"
    );
}
