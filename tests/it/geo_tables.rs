//! GeoIP databases and tables, end to end: fixtures are written with the library's own MMDB
//! writer into a temp dir, opened with `GeoDb`, and turned into `NetTable`s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use meridian::geo::writer::{CityRow, city_mmdb, mmdb_writer};
use meridian::geo::{
    CountryCode, Fields, GeoDb, GeoFieldPaths, GeoSources, Location, NetTable, build_table,
    check_table,
};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

thread_local! {
    /// One temp dir per test thread, removed when the test's thread ends.
    static TEMP_DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
}

/// A file in this test's temp dir, so parallel tests and runs do not collide.
fn temp_file(name: &str) -> PathBuf {
    TEMP_DIR.with(|d| d.path().join(name))
}

fn write_db(name: &str, bytes: Vec<u8>) -> GeoDb {
    let path = temp_file(name);
    std::fs::write(&path, bytes).unwrap();
    GeoDb::open(&path, &GeoFieldPaths::default()).unwrap()
}

/// The City fixture every table test uses.
fn city_rows() -> Vec<CityRow> {
    vec![
        // Two sibling /25s in the same city but different ASNs (the writer would store
        // identical siblings as one /24): a country map merges them into the /24.
        CityRow::new(net("81.2.69.0/25"))
            .continent("EU")
            .country("GB")
            .subdivision("GB-ENG")
            .city("London")
            .coords(51.5142, -0.0931)
            .asn(20712),
        CityRow::new(net("81.2.69.128/25"))
            .continent("EU")
            .country("GB")
            .subdivision("GB-ENG")
            .city("London")
            .coords(51.5142, -0.0931)
            .asn(20713),
        // Same country, different states: merge for a country map, not a subdivision map.
        CityRow::new(net("198.51.100.0/25"))
            .continent("NA")
            .country("US")
            .subdivision("US-NY")
            .city("New York"),
        CityRow::new(net("198.51.100.128/25"))
            .continent("NA")
            .country("US")
            .subdivision("US-CA")
            .city("San Jose"),
        // Different countries: never merge.
        CityRow::new(net("203.0.113.0/25"))
            .continent("OC")
            .country("AU"),
        CityRow::new(net("203.0.113.128/25"))
            .continent("OC")
            .country("NZ"),
        // A more specific network inside a wider one.
        CityRow::new(net("10.0.0.0/8"))
            .continent("EU")
            .country("DE"),
        CityRow::new(net("10.20.0.0/16"))
            .continent("EU")
            .country("FR"),
        CityRow::new(net("127.0.0.0/8"))
            .continent("EU")
            .country("DE"),
        CityRow::new(net("2001:db8::/48"))
            .continent("EU")
            .country("DE"),
        CityRow::new(net("2001:db8:1::/48"))
            .continent("NA")
            .country("US")
            .subdivision("US-CA")
            .coords(37.3382, -121.8863),
    ]
}

fn city_db(name: &str) -> GeoDb {
    write_db(name, city_mmdb("Test-City", &city_rows()).unwrap())
}

fn country_id(loc: &Location) -> u32 {
    match loc.country.as_ref().map(CountryCode::as_str) {
        None => 0,
        Some("GB") => 1,
        Some("US") => 2,
        Some("AU") => 3,
        Some("NZ") => 4,
        Some("DE") => 5,
        Some("FR") => 6,
        Some(_) => 9,
    }
}

/// Every (continent, country, subdivision) combination gets its own id.
fn subdivision_classifier() -> impl FnMut(&Location) -> u32 {
    let mut ids: HashMap<String, u32> = HashMap::new();
    move |loc| {
        let key = format!(
            "{:?}/{:?}/{:?}",
            loc.continent, loc.country, loc.subdivision
        );
        let next = ids.len() as u32;
        *ids.entry(key).or_insert(next)
    }
}

/// The block of the table that contains `addr`, found by a linear scan of its entries: an
/// independent check of the binary search.
fn scan<T: Copy>(table: &NetTable<T>, addr: IpAddr) -> Option<(IpNet, T)> {
    let canonical = addr.to_canonical();
    table
        .entries()
        .find(|(n, _)| n.contains(&canonical))
        .map(|(n, v)| (n, *v))
}

#[test]
fn lookups_ipv4_ipv6_and_mapped() {
    let db = city_db("lookups.mmdb");
    assert_eq!(db.ip_version(), 6);
    assert_eq!(db.database_type(), "Test-City");

    let loc = db.lookup(ip("81.2.69.160")).unwrap();
    assert_eq!(loc.country, CountryCode::parse("GB"));
    assert_eq!(loc.continent.map(|c| c.to_string()).as_deref(), Some("EU"));
    assert_eq!(loc.subdivision_iso().as_deref(), Some("GB-ENG"));
    assert_eq!(loc.city.as_deref(), Some("London"));
    assert_eq!(loc.asn, Some(20713));
    assert_eq!(loc.coords, Some((51.5142, -0.0931)));
    assert_eq!(loc.prefix_len, 25);

    let loc = db.lookup(ip("2001:db8:1::5")).unwrap();
    assert_eq!(loc.country, CountryCode::parse("US"));
    assert_eq!(
        loc.subdivision.map(|s| s.to_string()).as_deref(),
        Some("CA")
    );
    assert_eq!(loc.prefix_len, 48);

    // IPv4-mapped: the IPv4 answer, prefix counted in IPv6 bits.
    let loc = db.lookup(ip("::ffff:81.2.69.160")).unwrap();
    assert_eq!(loc.city.as_deref(), Some("London"));
    assert_eq!(loc.prefix_len, 96 + 25);

    // More specific network wins.
    assert_eq!(
        db.lookup(ip("10.20.1.1")).unwrap().country,
        CountryCode::parse("FR")
    );
    assert_eq!(
        db.lookup(ip("10.21.1.1")).unwrap().country,
        CountryCode::parse("DE")
    );

    // Not in the database: unknown, from a network that still contains the address.
    let loc = db.lookup(ip("100.64.0.1")).unwrap();
    assert!(loc.is_unknown());
    let block = IpNet::new(ip("100.64.0.1"), loc.prefix_len)
        .unwrap()
        .trunc();
    assert!(!block.contains(&ip("81.2.69.1")));
    assert!(loc.prefix_len > 0);
}

#[test]
fn sibling_networks_merge_only_when_the_answer_is_the_same() {
    let sources = GeoSources::from(city_db("merge.mmdb"));
    let countries = build_table(&sources, &[], Fields::ALL, country_id).unwrap();
    check_table(&countries).unwrap();

    // Two /25s, both GB: one /24.
    assert_eq!(countries.lookup(ip("81.2.69.1")), (&1, 24));
    assert_eq!(countries.lookup(ip("81.2.69.200")), (&1, 24));
    // Both US: one /24 for a country map...
    assert_eq!(countries.lookup(ip("198.51.100.1")), (&2, 24));
    // ...but not for a subdivision map.
    let subdivisions = build_table(&sources, &[], Fields::ALL, subdivision_classifier()).unwrap();
    let (ny, ny_len) = subdivisions.lookup(ip("198.51.100.1"));
    let (ca, ca_len) = subdivisions.lookup(ip("198.51.100.200"));
    assert_ne!(ny, ca);
    assert_eq!((ny_len, ca_len), (25, 25));
    // AU and NZ siblings: no merge.
    assert_eq!(countries.lookup(ip("203.0.113.1")), (&3, 25));
    assert_eq!(countries.lookup(ip("203.0.113.129")), (&4, 25));
    // The /8 around a /16 splits into the widest blocks that avoid it.
    assert_eq!(countries.lookup(ip("10.20.3.4")), (&6, 16));
    assert_eq!(countries.lookup(ip("10.0.0.1")), (&5, 12));
    assert_eq!(countries.lookup(ip("10.128.0.1")), (&5, 9));

    let stats = countries.stats();
    println!("fixture country table: {stats:?}");
    assert!(stats.v4_entries < stats.v4_blocks, "{stats:?}");
    assert_eq!(stats.v4_entries + stats.v6_entries, countries.len());
}

#[test]
fn ipv6_mapped_and_6to4_lookups_in_the_table() {
    let sources = GeoSources::from(city_db("v6.mmdb"));
    let t = build_table(&sources, &[], Fields::ALL, country_id).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1::1")), (&2, 48));
    assert_eq!(t.lookup(ip("2001:db8::1")), (&5, 48));
    assert_eq!(*t.lookup(ip("2001:db9::1")).0, 0);
    // IPv4-mapped behaves as IPv4.
    assert_eq!(t.lookup(ip("::ffff:81.2.69.1")), (&1, 96 + 24));
    assert_eq!(t.lookup(ip("::ffff:203.0.113.129")), (&4, 96 + 25));
    // The writer aliases 6to4 to the IPv4 data, as MaxMind's files do: 2002:5102:4501::
    // embeds 81.2.69.1.
    assert!(
        t.ipv4_alias_ranges()
            .contains(&"2002::/16".parse().unwrap()),
        "{:?}",
        t.ipv4_alias_ranges()
    );
    assert_eq!(t.lookup(ip("2002:5102:4501::1")), (&1, 16 + 24));
    // The direct lookup agrees.
    let loc = sources.lookup(ip("2002:5102:4501::1")).unwrap();
    assert_eq!(loc.country, CountryCode::parse("GB"));
}

#[test]
fn cidr_overrides_take_precedence_most_specific_wins() {
    let sources = GeoSources::from(city_db("overrides.mmdb"));
    let overrides = [
        (net("81.2.69.128/26"), 99),
        (net("81.2.69.128/27"), 98),
        (net("100.64.0.0/10"), 50),
        (net("100.64.1.0/24"), 51),
        // Written as IPv4-mapped IPv6: applies to the IPv4 network.
        (net("::ffff:203.0.113.0/120"), 77),
        (net("2001:db8:1:2::/64"), 66),
    ];
    let t = build_table(&sources, &overrides, Fields::ALL, country_id).unwrap();
    check_table(&t).unwrap();
    assert_eq!(t.lookup(ip("81.2.69.130")), (&98, 27));
    assert_eq!(t.lookup(ip("81.2.69.170")), (&99, 27));
    // The rest of the GB /24 is still GB, now in narrower blocks.
    assert_eq!(t.lookup(ip("81.2.69.1")), (&1, 25));
    assert_eq!(t.lookup(ip("81.2.69.200")), (&1, 26));
    assert_eq!(t.lookup(ip("100.64.1.1")), (&51, 24));
    assert_eq!(t.lookup(ip("100.64.2.1")), (&50, 23));
    assert_eq!(t.lookup(ip("203.0.113.200")), (&77, 24));
    assert_eq!(t.lookup(ip("::ffff:203.0.113.200")), (&77, 96 + 24));
    assert_eq!(t.lookup(ip("2001:db8:1:2::1")), (&66, 64));
    assert_eq!(t.lookup(ip("2001:db8:1:3::1")), (&2, 64));
    // The same network twice: the later entry wins.
    let t = build_table(
        &sources,
        &[(net("8.8.8.0/24"), 1), (net("8.8.8.0/24"), 2)],
        Fields::ALL,
        country_id,
    )
    .unwrap();
    assert_eq!(t.lookup(ip("8.8.8.8")), (&2, 24));
}

/// A deterministic spread of addresses: fixture networks, their edges, and pseudo-random
/// addresses over both families.
fn probe_addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = [
        "0.0.0.0",
        "255.255.255.255",
        "81.2.69.0",
        "81.2.69.127",
        "81.2.69.128",
        "81.2.69.255",
        "198.51.100.127",
        "198.51.100.128",
        "10.19.255.255",
        "10.20.0.0",
        "127.0.0.1",
        "::",
        "::1",
        "::ffff:10.20.0.1",
        "2001:db8::",
        "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
        "2002:0a14:0001::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    .iter()
    .map(|s| ip(s))
    .collect();
    let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
    for i in 0..2000 {
        x = x
            .wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645)
            .wrapping_add(0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f);
        let bits = x ^ (x >> 61);
        out.push(if i % 2 == 0 {
            IpAddr::V4(std::net::Ipv4Addr::from((bits >> 96) as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        });
    }
    out
}

#[test]
fn every_lookup_is_a_containing_block_consistent_with_the_database() {
    let sources = GeoSources::from(city_db("property.mmdb"));
    let t = build_table(&sources, &[], Fields::ALL, country_id).unwrap();
    for addr in probe_addresses() {
        let (&id, len) = t.lookup(addr);
        // The answer is what classifying the database's answer gives...
        let loc = sources.lookup(addr).unwrap();
        assert_eq!(id, country_id(&loc), "{addr}");
        // ...over a block at least as wide as the database network it came from.
        assert!(
            len <= loc.prefix_len,
            "{addr}: table /{len}, db /{}",
            loc.prefix_len
        );
        // The block is an entry of the table containing the address (or, for addresses
        // answered as IPv4, the IPv4 entry shifted into IPv6 bits).
        let block = IpNet::new(addr, len).unwrap().trunc();
        assert!(block.contains(&addr), "{addr} /{len}");
        match scan(&t, addr) {
            Some((entry, value)) => {
                assert_eq!(value, id, "{addr}");
                if entry.addr().is_ipv4() == addr.is_ipv4() {
                    assert_eq!(entry.prefix_len(), len, "{addr}: {entry}");
                } else {
                    // IPv4-mapped: the IPv4 entry, counted in IPv6 bits.
                    assert_eq!(96 + entry.prefix_len(), len, "{addr}: {entry}");
                }
            }
            None => {
                // Only addresses in IPv4-alias ranges other than ::ffff:0:0/96 (::/96,
                // 6to4, Teredo) are answered through an entry not found by their
                // canonical form.
                assert!(
                    t.ipv4_alias_ranges().iter().any(|r| match addr {
                        IpAddr::V6(a) => r.contains(&a),
                        IpAddr::V4(_) => false,
                    }),
                    "{addr}: no entry"
                );
            }
        }
        // Both ends of the block get the same answer with the same scope.
        let (first, last) = (block.network(), block.broadcast());
        assert_eq!(t.lookup(first), (&id, len), "{addr}: first of {block}");
        assert_eq!(t.lookup(last), (&id, len), "{addr}: last of {block}");
    }
}

#[test]
fn several_databases_merge_with_the_narrowest_prefix() {
    let mut asn = mmdb_writer::Writer::new("Test-ASN");
    for (n, number) in [("81.2.69.0/24", 20712u32), ("81.2.69.0/26", 64500)] {
        asn.insert_value(
            net(n),
            mmdb_writer::Value::map([(
                "autonomous_system_number",
                mmdb_writer::Value::from(number),
            )]),
        )
        .unwrap();
    }
    let asn_db = write_db("asn.mmdb", asn.to_bytes().unwrap());
    // The City rows carry ASNs too; put the ASN database first so its numbers win.
    let sources = GeoSources::new(vec![asn_db, city_db("multi-city.mmdb")]);
    let loc = sources.lookup(ip("81.2.69.5")).unwrap();
    assert_eq!(loc.asn, Some(64500));
    assert_eq!(loc.country, CountryCode::parse("GB"));
    assert_eq!(loc.city.as_deref(), Some("London"));
    assert_eq!(loc.prefix_len, 26); // ASN /26 inside the City /25
    let loc = sources.lookup(ip("81.2.69.200")).unwrap();
    assert_eq!((loc.asn, loc.prefix_len), (Some(20712), 25));
    assert_eq!(sources.lookup(ip("81.2.69.100")).unwrap().prefix_len, 26);

    let by_asn = build_table(&sources, &[], Fields::ALL, |l| l.asn.unwrap_or(0)).unwrap();
    assert_eq!(by_asn.lookup(ip("81.2.69.5")), (&64500, 26));
    // 81.2.69.64/26 and .128/25 have the same ASN but are not siblings: no merge.
    assert_eq!(by_asn.lookup(ip("81.2.69.100")), (&20712, 26));
    assert_eq!(by_asn.lookup(ip("81.2.69.200")), (&20712, 25));
    // A combined key (country + ASN) splits where either database does.
    let combined = build_table(&sources, &[], Fields::ALL, |l| {
        country_id(l) * 100_000 + l.asn.unwrap_or(0) % 100_000
    })
    .unwrap();
    assert_eq!(combined.lookup(ip("81.2.69.70")), (&(100_000 + 20712), 26));
}

#[test]
fn ipv4_only_database_and_custom_field_paths() {
    // ip-location-db style: flat records, IPv4-only tree.
    let mut w = mmdb_writer::Writer::builder("Test-Flat")
        .ip_version(mmdb_writer::IpVersion::V4)
        .build();
    w.insert_value(
        net("192.0.2.0/24"),
        mmdb_writer::Value::map([
            ("country_code", mmdb_writer::Value::from("jp")),
            ("city", mmdb_writer::Value::from("Tokyo")),
            ("latitude", mmdb_writer::Value::from(35.6895)),
            ("longitude", mmdb_writer::Value::from(139.6917)),
        ]),
    )
    .unwrap();
    let path = temp_file("flat.mmdb");
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    let db = GeoDb::open(&path, &GeoFieldPaths::ip_location_db()).unwrap();
    assert_eq!(db.ip_version(), 4);
    let loc = db.lookup(ip("192.0.2.1")).unwrap();
    assert_eq!(loc.country, CountryCode::parse("JP"));
    assert_eq!(loc.city.as_deref(), Some("Tokyo"));
    assert_eq!(loc.coords, Some((35.6895, 139.6917)));
    assert_eq!(loc.prefix_len, 24);
    // Mapped addresses reach the IPv4 data; other IPv6 addresses are unknown.
    assert_eq!(
        db.lookup(ip("::ffff:192.0.2.1")).unwrap().prefix_len,
        96 + 24
    );
    let loc = db.lookup(ip("2001:db8::1")).unwrap();
    assert!(loc.is_unknown());
    // 2000::/3 is the widest block around it without ::/96 and ::ffff:0:0/96, which are
    // answered from the IPv4 data.
    assert_eq!(loc.prefix_len, 3);

    let sources = GeoSources::from(db);
    let t = build_table(&sources, &[], Fields::ALL, |l| {
        u32::from(l.country.is_some())
    })
    .unwrap();
    assert_eq!(t.lookup(ip("192.0.2.1")), (&1, 24));
    assert_eq!(t.lookup(ip("::ffff:192.0.2.1")), (&1, 120));
    assert_eq!(t.lookup(ip("2001:db8::1")), (&0, 3));

    // With MaxMind paths the file does not fit: `city` is a string, not a map with names.
    let db = GeoDb::open(&path, &GeoFieldPaths::default()).unwrap();
    let err = db.lookup(ip("192.0.2.1")).unwrap_err();
    assert!(err.reason.contains("field city"), "{err}");
}

#[test]
fn errors_name_the_file_and_the_reason() {
    let missing = temp_file("does-not-exist.mmdb");
    let err = GeoDb::open(&missing, &GeoFieldPaths::default()).unwrap_err();
    assert_eq!(err.path, missing);

    let garbage = temp_file("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a maxmind database").unwrap();
    let err = GeoDb::open(&garbage, &GeoFieldPaths::default()).unwrap_err();
    assert_eq!(err.path, garbage);
    assert!(err.to_string().contains("garbage.mmdb"), "{err}");

    // A truncated database: either rejected at open or at lookup/build, never a panic.
    let bytes = city_mmdb("Test-City", &city_rows()).unwrap();
    for cut in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 20] {
        let path = temp_file(&format!("truncated-{cut}.mmdb"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        if let Ok(db) = GeoDb::open(&path, &GeoFieldPaths::default()) {
            let _ = db.lookup(ip("81.2.69.1"));
            let _ = build_table(&GeoSources::from(db), &[], Fields::ALL, country_id);
        }
    }

    // A field path pointing at a value of the wrong type is an error naming the field.
    let fields = GeoFieldPaths {
        country: "location.latitude".into(),
        ..GeoFieldPaths::default()
    };
    let path = temp_file("wrongtype.mmdb");
    std::fs::write(&path, &bytes).unwrap();
    let db = GeoDb::open(&path, &fields).unwrap();
    let err = db.lookup(ip("2001:db8:1::1")).unwrap_err();
    assert!(err.reason.contains("country"), "{err}");
    let err = build_table(&GeoSources::from(db), &[], Fields::ALL, country_id).unwrap_err();
    assert_eq!(err.path, path);

    // A bad field path is rejected at open.
    let fields = GeoFieldPaths {
        city: "city..en".into(),
        ..GeoFieldPaths::default()
    };
    let err = GeoDb::open(&path, &fields).unwrap_err();
    assert!(err.reason.contains("city"), "{err}");
}

#[test]
fn demo_database_is_current_and_locates_the_demo_addresses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("geoip/demo-city.csv");
    let committed = root.join("geoip/demo-city.mmdb");
    let rebuilt = temp_file("demo-city.mmdb");
    meridian::geo::writer::build_demo_db(&csv, &rebuilt).unwrap();
    assert_eq!(
        std::fs::read(&rebuilt).unwrap(),
        std::fs::read(&committed).unwrap(),
        "geoip/demo-city.mmdb is stale: cargo run --example build-geoip -- geoip/demo-city.csv geoip/demo-city.mmdb"
    );

    let db = GeoDb::open(&committed, &GeoFieldPaths::default()).unwrap();
    let london = db.lookup(ip("81.2.69.160")).unwrap();
    assert_eq!(london.city.as_deref(), Some("London"));
    for local in ["127.0.0.1", "::1"] {
        let loc = db.lookup(ip(local)).unwrap();
        assert_eq!(loc.country, CountryCode::parse("DE"), "{local}");
    }
    let sources = GeoSources::from(db);
    let continents = build_table(&sources, &[], Fields::ALL, |l| {
        l.continent
            .map_or(0, |c| u32::from(c.0[0]) << 8 | u32::from(c.0[1]))
    })
    .unwrap();
    let countries = build_table(&sources, &[], Fields::ALL, |l| {
        l.country
            .map_or(0, |c| u32::from(c.0[0]) << 8 | u32::from(c.0[1]))
    })
    .unwrap();
    let s = countries.stats();
    let c = continents.stats();
    println!(
        "demo db: {} networks read; country map v4 {} -> {}, v6 {} -> {}; continent map v4 {} -> {}, v6 {} -> {}",
        s.db_networks,
        s.v4_blocks,
        s.v4_entries,
        s.v6_blocks,
        s.v6_entries,
        c.v4_blocks,
        c.v4_entries,
        c.v6_blocks,
        c.v6_entries
    );
    assert!(s.v4_entries < s.v4_blocks);
    assert!(c.v4_entries <= s.v4_entries);
    // Sydney's two sibling /25s are one /24 in the country map.
    assert_eq!(countries.lookup(ip("203.0.113.1")).1, 24);
    assert_eq!(
        countries.lookup(ip("::1")).0,
        &(u32::from(b'D') << 8 | u32::from(b'E'))
    );
}
