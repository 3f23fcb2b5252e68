//! Writes a synthetic GeoLite2-City-shaped database of about the size of the real one, for
//! measuring memory and load time offline (GeoLite2 itself needs an account to download):
//!
//! ```text
//! cargo run --release --example synth-city -- /tmp/synth-city.mmdb [NETWORKS]
//! ```
//!
//! NETWORKS (default 3,000,000, about GeoLite2-City's count) networks, three quarters IPv4
//! /24s and one quarter IPv6 /48s, each placed at random (fixed seed) in one of 240 places
//! on every continent, with a city name and coordinates (`geo::writer::synthetic_city_rows`).
//! Neighbouring networks rarely share a place, so the tables built from it are larger than
//! from real data: an upper bound.

use std::path::PathBuf;
use std::process::ExitCode;

use meridian::geo::writer::{city_mmdb, synthetic_city_rows};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .map_or_else(|| PathBuf::from("/tmp/synth-city.mmdb"), PathBuf::from);
    let networks: usize = match args.next().map(|n| n.parse()) {
        None => 3_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("synth-city: NETWORKS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = synthetic_city_rows(networks);
    let bytes = match city_mmdb("GeoLite2-City", &rows) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("synth-city: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&out, &bytes) {
        eprintln!("synth-city: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} ({networks} networks, {:.1} MB)",
        out.display(),
        bytes.len() as f64 / 1e6
    );
    ExitCode::SUCCESS
}
