//! GeoIP databases, client locations and network tables.
//!
//! - [`GeoDb`] / [`GeoSources`]: MaxMind DB files (City, Country, ASN, or other layouts via
//!   [`GeoFieldPaths`]) and direct lookups returning a [`Location`].
//! - [`NetTable`]: an immutable longest-prefix-match table, one binary search per query.
//! - [`build_table`]: the gdnsd approach: walk the databases once at load time, classify every
//!   network into a result id, overlay CIDR overrides, and merge neighbours with the same id,
//!   so the prefix length a lookup returns is the fitted ECS scope.
//! - `writer` (feature `test-support`): writes City-shaped databases (the demo database in
//!   `geoip/`, test fixtures); not part of the server.
//! - [`great_circle_km`]: distance for the `nearest` policy.

mod build;
mod cidr;
mod db;
mod distance;
mod error;
mod location;
mod mmdb;
#[cfg(all(test, feature = "test-support"))]
mod mmdb_tests;
mod offsets;
mod table;
#[cfg(feature = "test-support")]
pub mod writer;

pub use build::build_table;
pub use db::{Fields, FileStamp, GeoDb, GeoRecipe, GeoSources};
pub use distance::{EARTH_RADIUS_KM, great_circle_km};
pub use error::GeoError;
pub use location::{ContinentCode, CountryCode, GeoFieldPaths, Location, SubdivisionCode};
pub use table::{NetTable, TableStats, check_table};
