//! Builds the demo GeoIP database from its CSV source:
//!
//! ```text
//! cargo run --example build-geoip -- geoip/demo-city.csv geoip/demo-city.mmdb
//! ```
//!
//! The output is a GeoLite2-City-shaped MaxMind DB; see the header of the CSV for the
//! columns. The build is reproducible, so CI can check that the committed file is current.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let csv = args
        .next()
        .map_or_else(|| PathBuf::from("geoip/demo-city.csv"), PathBuf::from);
    let mmdb = args
        .next()
        .map_or_else(|| PathBuf::from("geoip/demo-city.mmdb"), PathBuf::from);
    match meridian::geo::writer::build_demo_db(&csv, &mmdb) {
        Ok(rows) => {
            println!("wrote {} ({rows} networks)", mmdb.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("build-geoip: {e}");
            ExitCode::FAILURE
        }
    }
}
