//! Building network tables from a City-shaped GeoIP database: the work of a start or of a
//! reload after the database changed (`geo::build_table`), for a geo map (continent,
//! country, subdivision) and for `nearest` (coordinates). Criterion's time per iteration is
//! one table build; the throughput line is database networks per second.
//!
//! The database is synthetic (`geo::writer::synthetic_city_rows`): neighbours rarely share a
//! place, as in the 3,000,000-network file `examples/synth-city.rs` writes for the start
//! measurements in the README, here with 120,000 networks so a run stays short.
//!
//!     cargo bench --bench geo

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use meridian::geo::writer::{city_mmdb, synthetic_city_rows};
use meridian::geo::{Fields, GeoDb, GeoFieldPaths, GeoSources, Location, build_table};

const NETWORKS: usize = 120_000;

fn bench(c: &mut Criterion) {
    let bytes = city_mmdb("Synthetic-City", &synthetic_city_rows(NETWORKS))
        .expect("the synthetic rows make a database");
    let db = GeoDb::from_bytes("synthetic-city.mmdb", bytes, &GeoFieldPaths::default())
        .expect("the synthetic database opens");
    let sources = GeoSources::from(db);
    let mut group = c.benchmark_group("geo table build");
    group.sample_size(10);
    group.throughput(Throughput::Elements(NETWORKS as u64));

    let geo_fields = Fields::CONTINENT | Fields::COUNTRY | Fields::SUBDIVISION;
    group.bench_function("geo map (country)", |b| {
        b.iter(|| {
            let table = build_table(black_box(&sources), &[], geo_fields, |l: &Location| {
                l.country.map_or(0, |c| u32::from(c.as_str().as_bytes()[0]))
            });
            table.expect("the table builds")
        })
    });
    group.bench_function("nearest (coordinates)", |b| {
        b.iter(|| {
            let table = build_table(black_box(&sources), &[], Fields::COORDS, |l: &Location| {
                l.coords
                    .map_or(0, |(lat, lon)| (lat.abs() + lon.abs()) as u32)
            });
            table.expect("the table builds")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
