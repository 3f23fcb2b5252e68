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

/// One zone for each origin length from 3 to 44 bytes (one origin alone per length, so
/// each is found by comparing the suffix with it, inline for 8 to 32 bytes): a name below
/// each is settled in its zone, in any case; with any one letter of the origin changed, in
/// no zone (every byte of the origin counts in the comparison).
#[test]
fn apexes_of_every_length_are_found_by_every_byte() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    let mut origins = Vec::new();
    for len in 3..=44usize {
        // Two labels (`q` and `n..` of the rest), wire length `len`: 2 + 1 + (len - 5) + 1 + 1.
        let origin = if len >= 6 {
            format!(
                "q.{}.",
                "n".repeat(len - 5)
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i % 7 == 3 { 'm' } else { c })
                    .collect::<String>()
            )
        } else {
            format!("{}.", "p".repeat(len - 2))
        };
        let text = format!(
            "$ORIGIN {origin}\n$TTL 300\n@ IN SOA ns.{origin} host.{origin} 1 7200 3600 1209600 300\n@ IN NS ns.{origin}\nns IN A 192.0.2.1\n"
        );
        std::fs::write(dir.path().join("zones").join(format!("{origin}zone")), text).expect("zone");
        origins.push(origin);
    }
    std::fs::write(dir.path().join("meridian.toml"), "zones_dir = \"zones\"\n").expect("toml");
    let snapshot = crate::common::load_snapshot(&dir.path().join("meridian.toml"));
    let zones = &snapshot.zones;
    assert_eq!(zones.zones().len(), origins.len(), "every zone loaded");
    let mut seed = 5u64;
    for origin in &origins {
        let wire = crate::common::wire_name(origin);
        let zone = zones
            .zones()
            .iter()
            .position(|z| z.origin() == &wire[..])
            .expect("the zone of the origin");
        let mut below = b"\x06random".to_vec();
        below.extend_from_slice(&wire);
        for asked in [below.clone(), crate::common::mixed_case(&below, &mut seed)] {
            let found = zones.lookup(&asked, rtype::A);
            assert!(
                matches!(found, Some((z, Found::Absent(None))) if z == zone),
                "{} asked as {}: {found:?}",
                origin,
                meridian::dns::name::to_text(&asked)
            );
        }
        for at in 7..below.len() {
            if !below[at].is_ascii_lowercase() {
                continue;
            }
            let mut changed = below.clone();
            changed[at] = if changed[at] == b'z' {
                b'y'
            } else {
                changed[at] + 1
            };
            let found = zones.lookup(&changed, rtype::A);
            assert!(
                found.is_none(),
                "{origin} changed at byte {at} ({}): {found:?}",
                meridian::dns::name::to_text(&changed)
            );
        }
    }
}
