//! Writes a synthetic GeoLite2-City-shaped database of about the size of the real one, for
//! measuring memory and load time offline (GeoLite2 itself needs an account to download):
//!
//! ```text
//! cargo run --release --example synth-city -- /tmp/synth-city.mmdb [NETWORKS]
//! ```
//!
//! NETWORKS (default 3,000,000, about GeoLite2-City's count) networks, three quarters IPv4
//! /24s and one quarter IPv6 /48s, each placed at random (fixed seed) in one of 240 places
//! on every continent, with a city name and coordinates. Neighbouring networks rarely share
//! a place, so the tables built from it are larger than from real data: an upper bound.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use meridian::geo::writer::{CityRow, city_mmdb};

/// Continent, country and subdivision of the places, with rough coordinates.
const REGIONS: [(&str, &str, &str, f64, f64); 12] = [
    ("EU", "GB", "ENG", 51.5, -0.1),
    ("EU", "DE", "HE", 50.1, 8.7),
    ("EU", "FR", "IDF", 48.9, 2.4),
    ("NA", "US", "CA", 37.4, -121.9),
    ("NA", "US", "NY", 40.7, -74.0),
    ("NA", "US", "TX", 32.8, -96.8),
    ("NA", "CA", "ON", 43.7, -79.4),
    ("AS", "SG", "01", 1.35, 103.8),
    ("AS", "JP", "13", 35.7, 139.7),
    ("OC", "AU", "NSW", -33.9, 151.2),
    ("SA", "BR", "SP", -23.5, -46.6),
    ("AF", "ZA", "GT", -26.2, 28.0),
];
const PLACES_PER_REGION: usize = 20;

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
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let v4 = networks * 3 / 4;
    let mut rows = Vec::with_capacity(networks);
    for i in 0..networks {
        let network = if i < v4 {
            // /24s from 1.0.0.0 up, skipping one in 64 (unallocated space).
            let n = (i + i / 63) as u32;
            let addr = Ipv4Addr::from((1u32 << 24) + (n << 8));
            IpNet::V4(Ipv4Net::new(addr, 24).unwrap_or_default())
        } else {
            // /48s under 2a00::/12.
            let n = (i - v4) as u128;
            let addr = Ipv6Addr::from((0x2a00u128 << 112) + (n << 80));
            IpNet::V6(Ipv6Net::new(addr, 48).unwrap_or_default())
        };
        let region = next() % REGIONS.len();
        let place = next() % PLACES_PER_REGION;
        let (continent, country, subdivision, lat, lon) = REGIONS[region];
        rows.push(
            CityRow::new(network)
                .continent(continent)
                .country(country)
                .subdivision(subdivision)
                .city(&format!("{country} City {place}"))
                .coords(lat + place as f64 * 0.05, lon + place as f64 * 0.05)
                .asn(64_512 + (next() % 1000) as u32),
        );
    }
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
