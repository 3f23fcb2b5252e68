//! A GeoIP database of arbitrary bytes (seeded with the demo database, see
//! `scripts/fuzz.sh`): opening it, building a network table from it (the search tree walked
//! and records read by `geo::mmdb`) and looking addresses up must end in a value or an error
//! naming the file, never in a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meridian::geo::{Fields, GeoDb, GeoFieldPaths, GeoSources, Location, build_table};

fuzz_target!(|data: &[u8]| {
    let Ok(db) = GeoDb::from_bytes("fuzz.mmdb", data.to_vec(), &GeoFieldPaths::default()) else {
        return;
    };
    for addr in ["81.2.69.160", "2001:db8::1", "::ffff:81.2.69.160", "0.0.0.0"] {
        if let Err(e) = db.lookup(addr.parse().expect("address")) {
            assert!(e.to_string().contains("fuzz.mmdb"), "error without the file: {e}");
        }
    }
    let sources = GeoSources::from(db);
    let classify = |l: &Location| l.country.map_or(0, |c| u32::from(c.as_str().as_bytes()[0]));
    match build_table(&sources, &[], Fields::ALL, classify) {
        Ok(table) => {
            let _ = table.lookup("81.2.69.160".parse().expect("address"));
        }
        Err(e) => assert!(!e.to_string().is_empty(), "table error without a reason"),
    }
});
