//! The direct reads of [`super::mmdb`] against the `maxminddb` crate, on databases that use
//! every type and size encoding of the format, every record size and both IP versions: the
//! same networks in the same order, the same field values, and errors where it has errors.
//! And a corrupted file gives errors, never a panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use maxminddb::{PathElement, Reader, WithinOptions};
use mmdb_writer::{IpVersion, RecordSize, Value, Writer};

use super::cidr;
use super::location::{FieldPath, Segment};
use super::mmdb::{Layout, Scalar, TreeNet};
use super::table::V4Alias;

/// A string of `len` bytes, some of them multi-byte characters.
fn text(len: usize, seed: u64) -> String {
    let mut s: String = format!("é{seed}");
    while s.len() < len {
        s.push(char::from(b'a' + (s.len() as u8 % 26)));
    }
    while s.len() > len {
        s.pop();
    }
    s
}

/// A record using every type: strings across the size encodings (inline, 29+, 285+,
/// 65,821+), shared values (written as pointers), nested maps and arrays, all the numbers.
/// Without `long`, strings stay under 65,821 bytes (a small file).
fn record(i: u64, long: bool) -> Value {
    const LENGTHS: [usize; 12] = [0, 3, 28, 29, 30, 284, 285, 286, 300, 65_820, 65_821, 70_000];
    let len = LENGTHS[(i % LENGTHS.len() as u64) as usize];
    let len = if long { len } else { len.min(400) };
    Value::map([
        ("s", Value::from(text(len, i))),
        ("shared", Value::from("the same for every record")),
        ("d", Value::Double(i as f64 * 1.25 - 40.0)),
        ("f", Value::Float(i as f32 * 0.5)),
        ("u16", Value::U16((i * 977 % 65_536) as u16)),
        ("u32", Value::U32((i * 2_654_435_761 % (1 << 32)) as u32)),
        ("u64", Value::U64(i << (i % 40))),
        ("u128", Value::U128(u128::from(i) << (i % 100))),
        (
            "i",
            Value::I32(i as i32 * if i.is_multiple_of(2) { -7919 } else { 7919 }),
        ),
        ("b", Value::Bool(i.is_multiple_of(3))),
        ("bytes", Value::Bytes(vec![i as u8; (i % 40) as usize])),
        (
            "arr",
            Value::Array(vec![
                Value::from(format!("first {i}")),
                Value::U32(i as u32),
                Value::map([("code", Value::from(format!("C{}", i % 5)))]),
                Value::Array(vec![Value::Double(i as f64), Value::from("x")]),
            ]),
        ),
        (
            "m",
            Value::map([
                ("code", Value::from(["EU", "NA", "AS"][(i % 3) as usize])),
                (
                    "names",
                    Value::map([("en", Value::from(format!("Place {}", i % 7)))]),
                ),
            ]),
        ),
    ])
}

const PATHS: &[&str] = &[
    "s",
    "shared",
    "d",
    "f",
    "u16",
    "u32",
    "u64",
    "u128",
    "i",
    "b",
    "bytes",
    "arr",
    "arr.0",
    "arr.1",
    "arr.2.code",
    "arr.3.0",
    "arr.3.1",
    "arr.4",
    "arr.99",
    "m",
    "m.code",
    "m.names.en",
    "m.names.de",
    "missing",
    "s.x",
    "m.0",
    "arr.x",
    "arr.2.code.y",
];

/// `count` networks of each family the database holds.
/// The paths of [`PATHS`] that meet the wrong kind of value (an error in any file).
const WRONG_KIND: &[&str] = &["s.x", "m.0", "arr.x", "arr.2.code.y"];

fn database(version: IpVersion, size: RecordSize, count: u64, long: bool) -> Vec<u8> {
    let mut w = Writer::builder("Test-Exotic")
        .ip_version(version)
        .record_size(size)
        .build();
    for i in 0..count {
        let v4: IpNet = format!(
            "{}.{}.{}.0/{}",
            1 + i % 200,
            i % 256,
            (i * 7) % 256,
            16 + i % 9
        )
        .parse()
        .unwrap();
        w.insert_value(v4.trunc(), record(i, long)).unwrap();
        if version == IpVersion::V6 {
            let v6: IpNet = format!("2a{:02x}:{:x}::/{}", i % 256, i * 13, 20 + i % 40)
                .parse()
                .unwrap();
            w.insert_value(v6.trunc(), record(i + 1000, long)).unwrap();
        }
    }
    w.to_bytes().unwrap()
}

/// The networks the crate's iterator gives for a walk, as the table build used to read
/// them: IPv4 from `0.0.0.0/0`, IPv6 as the blocks around `::/96`, a record above a block
/// clipped to the block.
fn crate_walk(reader: &Reader<Vec<u8>>, v6: bool) -> Vec<TreeNet> {
    let roots: Vec<(IpNetwork, u128, u8)> = if !v6 {
        let root = Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).unwrap();
        vec![(IpNetwork::V4(root), 0, 0)]
    } else if reader.metadata().ip_version == 4 {
        Vec::new()
    } else {
        v6_roots()
            .into_iter()
            .map(|(start, len)| {
                let net = Ipv6Network::new(Ipv6Addr::from(start), len).unwrap();
                (IpNetwork::V6(net), start, len)
            })
            .collect()
    };
    let opts = WithinOptions::default().include_networks_without_data();
    let mut out = Vec::new();
    for (root, root_start, root_len) in roots {
        for result in reader.within(root, opts).unwrap() {
            let result = result.unwrap();
            let (start, len) = match result.network().unwrap() {
                IpNetwork::V4(n) => (u128::from(u32::from(n.network())), n.prefix()),
                IpNetwork::V6(n) if v6 => (u128::from(n.network()), n.prefix()),
                IpNetwork::V6(_) => (0, 0),
            };
            let (start, len) = if len < root_len {
                (root_start, root_len)
            } else {
                (start, len)
            };
            let record = result.offset().map(|o| o as u32);
            out.push(TreeNet { start, len, record });
        }
    }
    out
}

/// IPv6 outside `::/96`, as blocks.
fn v6_roots() -> Vec<(u128, u8)> {
    cidr::outside(128, V4Alias::COMPAT.prefix, V4Alias::COMPAT.len)
}

fn our_walk(file: &[u8], reader: &Reader<Vec<u8>>, v6: bool) -> Result<Vec<TreeNet>, String> {
    let meta = reader.metadata();
    let layout = Layout::new(file, meta.node_count, meta.record_size, meta.ip_version)?;
    let roots = if v6 && meta.ip_version == 6 {
        v6_roots()
    } else {
        Vec::new()
    };
    layout.walk(v6, roots)?.collect()
}

fn elements(path: &FieldPath) -> Vec<PathElement<'_>> {
    path.0
        .iter()
        .map(|s| match s {
            Segment::Key(k) => PathElement::Key(k),
            Segment::Index(i) => PathElement::Index(*i),
        })
        .collect()
}

/// Ours and the crate's reading of one field as one type: the same value, both absent, or
/// both an error. Except for numbers: the crate reads a number only as its exact type, we
/// read any integer in range as a u32 and any number as an f64 (an ASN written as uint64, a
/// latitude as float). There, ours must be the number the crate reads as the stored type.
fn same<T: PartialEq + std::fmt::Debug + Copy, E>(
    ours: Result<Option<T>, String>,
    theirs: Result<Option<T>, E>,
    stored: Option<f64>,
    as_f64: fn(T) -> f64,
    what: &str,
) -> usize {
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(_), Err(_)) => {}
        (Ok(Some(a)), Err(_)) if stored.is_some() => {
            assert_eq!(
                Some(as_f64(a)),
                stored,
                "{what}: a number read as another type"
            );
            return 1;
        }
        (a, b) => panic!("{what}: ours {a:?}, the crate's {:?}", b.ok()),
    }
    0
}

/// The number at `el` as the crate reads it with its stored type, if it is a number.
fn stored_number(
    result: &maxminddb::LookupResult<'_, Vec<u8>>,
    el: &[PathElement<'_>],
) -> Option<f64> {
    let n = |v: Result<Option<f64>, _>| v.ok().flatten();
    n(result.decode_path::<u16>(el).map(|v| v.map(f64::from)))
        .or_else(|| n(result.decode_path::<u32>(el).map(|v| v.map(f64::from))))
        .or_else(|| n(result.decode_path::<u64>(el).map(|v| v.map(|x| x as f64))))
        .or_else(|| n(result.decode_path::<u128>(el).map(|v| v.map(|x| x as f64))))
        .or_else(|| n(result.decode_path::<i32>(el).map(|v| v.map(f64::from))))
        .or_else(|| n(result.decode_path::<f32>(el).map(|v| v.map(f64::from))))
        .or_else(|| n(result.decode_path::<f64>(el)))
}

#[test]
fn walks_and_fields_match_the_maxminddb_crate() {
    let mut checked_fields = 0;
    let mut lenient = 0;
    for version in [IpVersion::V4, IpVersion::V6] {
        for size in [RecordSize::Bits24, RecordSize::Bits28, RecordSize::Bits32] {
            let file = database(version, size, 60, true);
            let reader = Reader::from_source(file.clone()).unwrap();
            let meta = reader.metadata();
            for v6 in [false, true] {
                let ours = our_walk(&file, &reader, v6).unwrap();
                let theirs = crate_walk(&reader, v6);
                assert_eq!(ours, theirs, "{version:?} {size:?} v6 {v6}");
                assert!(v6 && version == IpVersion::V4 || ours.len() > 60);
            }
            let layout =
                Layout::new(&file, meta.node_count, meta.record_size, meta.ip_version).unwrap();
            let data = layout.data();
            let opts = WithinOptions::default();
            let all = IpNetwork::V4(Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).unwrap());
            let mut results: Vec<_> = reader.within(all, opts).unwrap().collect();
            if version == IpVersion::V6 {
                let all6 = IpNetwork::V6(Ipv6Network::new(Ipv6Addr::UNSPECIFIED, 0).unwrap());
                results.extend(reader.within(all6, opts).unwrap());
            }
            assert!(results.len() >= 60);
            for result in results {
                let result = result.unwrap();
                let offset = result.offset().unwrap() as u32;
                for text in PATHS {
                    let path = FieldPath::parse(text).unwrap();
                    let el = elements(&path);
                    let found = data.find(offset, &path.0);
                    let what = format!("{version:?} {size:?} {text} at {offset}");
                    let stored = stored_number(&result, &el);
                    let ours = found
                        .clone()
                        .and_then(|v| v.map(Scalar::into_str).transpose());
                    let theirs = result.decode_path::<&str>(&el);
                    same(ours, theirs, None, |_| f64::NAN, &what);
                    let ours = found
                        .clone()
                        .and_then(|v| v.map(Scalar::into_f64).transpose());
                    let theirs = result.decode_path::<f64>(&el);
                    lenient += same(ours, theirs, stored, |v| v, &what);
                    let ours = found.and_then(|v| v.map(Scalar::into_u32).transpose());
                    let theirs = result.decode_path::<u32>(&el);
                    lenient += same(ours, theirs, stored, f64::from, &what);
                    checked_fields += 1;
                }
            }
        }
    }
    assert!(checked_fields > 6 * 60 * PATHS.len());
    // Other integer types as a u32, integers and floats as an f64.
    assert!(lenient > 6 * 60 * 5, "{lenient}");
}

/// Bytes of the tree and data flipped one at a time (every 7th position, several values):
/// walking and reading every field gives values or errors, never a panic.
#[test]
fn corrupted_files_give_errors_not_panics() {
    let good = database(IpVersion::V6, RecordSize::Bits24, 12, false);
    let reader = Reader::from_source(good.clone()).unwrap();
    let meta = reader.metadata();
    let (nodes, bits, version) = (meta.node_count, meta.record_size, meta.ip_version);
    let (mut errors, mut values) = (0, 0);
    for (n, at) in (0..good.len() - 200).step_by(7).enumerate() {
        let mut bad = good.clone();
        bad[at] ^= [0xff, 0x80, 0x1f, 0x20][n % 4];
        let layout = Layout::new(&bad, nodes, bits, version).unwrap();
        let data = layout.data();
        for v6 in [false, true] {
            let roots = if v6 { v6_roots() } else { Vec::new() };
            for net in layout.walk(v6, roots).unwrap() {
                let Ok(net) = net else {
                    errors += 1;
                    continue;
                };
                // The paths that read values from the intact file.
                for text in PATHS.iter().filter(|p| !WRONG_KIND.contains(p)) {
                    let path = FieldPath::parse(text).unwrap();
                    match net.record.map(|offset| data.find(offset, &path.0)) {
                        Some(Err(_)) => errors += 1,
                        Some(Ok(Some(_))) => values += 1,
                        _ => {}
                    }
                }
            }
        }
    }
    // The flips hit structure often enough that some reads fail, and most leave values.
    println!("{errors} errors, {values} values");
    assert!(
        errors > 100 && values > 10 * errors,
        "{errors} errors, {values} values"
    );
}
