//! Writing small GeoLite2-City-shaped MaxMind databases: the demo database in `geoip/` and
//! the fixtures tests build so that their expectations are visible in the test itself.
//!
//! The file format is done by the `mmdb-writer` crate (re-exported as [`mmdb_writer`] for
//! records of other shapes); this module only knows the City layout and the demo CSV.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;
pub use mmdb_writer;
use mmdb_writer::{Value, Writer};

use super::error::GeoError;
use super::location::{ContinentCode, CountryCode, SubdivisionCode};

/// One network of a City-shaped database. Unset fields are left out of the record, as in
/// MaxMind's own files.
#[derive(Debug, Clone, PartialEq)]
pub struct CityRow {
    /// The network.
    pub network: IpNet,
    /// Continent code, `continent.code`.
    pub continent: Option<String>,
    /// Country code, `country.iso_code`.
    pub country: Option<String>,
    /// Subdivision, `US-CA` or `CA`; written as `subdivisions[0].iso_code = "CA"`.
    pub subdivision: Option<String>,
    /// City name, `city.names.en`.
    pub city: Option<String>,
    /// (latitude, longitude), `location.latitude` / `location.longitude`.
    pub coords: Option<(f64, f64)>,
    /// `autonomous_system_number`.
    pub asn: Option<u32>,
    /// `autonomous_system_organization`.
    pub as_org: Option<String>,
}

impl CityRow {
    /// A row for `network` with no data yet; chain the setters below.
    pub fn new(network: IpNet) -> Self {
        Self {
            network,
            continent: None,
            country: None,
            subdivision: None,
            city: None,
            coords: None,
            asn: None,
            as_org: None,
        }
    }

    /// Sets the continent code.
    pub fn continent(mut self, code: &str) -> Self {
        self.continent = Some(code.into());
        self
    }

    /// Sets the country code.
    pub fn country(mut self, code: &str) -> Self {
        self.country = Some(code.into());
        self
    }

    /// Sets the subdivision (`US-CA` or `CA`).
    pub fn subdivision(mut self, code: &str) -> Self {
        self.subdivision = Some(code.into());
        self
    }

    /// Sets the city name.
    pub fn city(mut self, name: &str) -> Self {
        self.city = Some(name.into());
        self
    }

    /// Sets the coordinates.
    pub fn coords(mut self, lat: f64, lon: f64) -> Self {
        self.coords = Some((lat, lon));
        self
    }

    /// Sets the AS number.
    pub fn asn(mut self, asn: u32) -> Self {
        self.asn = Some(asn);
        self
    }

    /// The record as MaxMind lays it out.
    fn record(&self) -> Value {
        let mut fields: Vec<(&str, Value)> = Vec::new();
        if let Some(c) = &self.continent {
            fields.push(("continent", Value::map([("code", Value::from(c.as_str()))])));
        }
        if let Some(c) = &self.country {
            fields.push((
                "country",
                Value::map([("iso_code", Value::from(c.as_str()))]),
            ));
        }
        if let Some(s) = &self.subdivision {
            let code = s.split_once('-').map_or(s.as_str(), |(_, sub)| sub);
            let sub = Value::map([("iso_code", Value::from(code))]);
            fields.push(("subdivisions", Value::array([sub])));
        }
        if let Some(name) = &self.city {
            let names = Value::map([("en", Value::from(name.as_str()))]);
            fields.push(("city", Value::map([("names", names)])));
        }
        if let Some((lat, lon)) = self.coords {
            fields.push((
                "location",
                Value::map([
                    ("latitude", Value::from(lat)),
                    ("longitude", Value::from(lon)),
                ]),
            ));
        }
        if let Some(asn) = self.asn {
            fields.push(("autonomous_system_number", Value::from(asn)));
        }
        if let Some(org) = &self.as_org {
            fields.push(("autonomous_system_organization", Value::from(org.as_str())));
        }
        Value::map(fields)
    }
}

/// A fixed build time, so the committed demo database is byte-for-byte reproducible.
const BUILD_EPOCH: Duration = Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z

/// Serializes `rows` as an IPv6 MaxMind DB (IPv4 rows land in the IPv4 subtree, reachable
/// from `::ffff:0:0/96`, 6to4 and Teredo as in MaxMind's files) with database type
/// `database_type`. More specific networks win over the networks containing them, whatever
/// the row order; for the same network, the later row wins.
pub fn city_mmdb(database_type: &str, rows: &[CityRow]) -> Result<Vec<u8>, GeoError> {
    let origin = Path::new(database_type);
    let mut writer = Writer::builder(database_type)
        .description(&[("en", "meridian City-shaped database")])
        .build_epoch(UNIX_EPOCH + BUILD_EPOCH)
        .build();
    let mut ordered: Vec<&CityRow> = rows.iter().collect();
    // Stable sort: wide networks first so narrower ones are painted over them.
    ordered.sort_by_key(|r| match r.network {
        IpNet::V4(n) => n.prefix_len() + 96,
        IpNet::V6(n) => n.prefix_len(),
    });
    for row in ordered {
        writer
            .insert_value(row.network.trunc(), row.record())
            .map_err(|e| GeoError::new(origin, format!("{}: {e}", row.network)))?;
    }
    writer
        .to_bytes()
        .map_err(|e| GeoError::new(origin, e.to_string()))
}

/// Parses the demo CSV: `network,continent,country,subdivision,city,latitude,longitude,asn`
/// with an optional ninth column `as_org`. Blank lines, lines starting with `#` and a header
/// line starting with `network` are skipped; empty fields mean "unknown". Fields cannot
/// contain commas (no quoting). Codes are validated so a typo fails the build, not a lookup.
pub fn parse_city_csv(origin: &Path, text: &str) -> Result<Vec<CityRow>, GeoError> {
    let mut rows = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("network,") {
            continue;
        }
        let err = |why: String| GeoError::new(origin, format!("line {}: {why}", n + 1));
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 8 && f.len() != 9 {
            return Err(err(format!("expected 8 or 9 fields, found {}", f.len())));
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let network: IpNet = f[0]
            .parse()
            .map_err(|e| err(format!("network {:?}: {e}", f[0])))?;
        let mut row = CityRow::new(network);
        row.continent = opt(f[1]);
        row.country = opt(f[2]);
        row.subdivision = opt(f[3]);
        row.city = opt(f[4]);
        if let Some(c) = &row.continent {
            ContinentCode::parse(c).ok_or_else(|| err(format!("bad continent {c:?}")))?;
        }
        if let Some(c) = &row.country {
            CountryCode::parse(c).ok_or_else(|| err(format!("bad country {c:?}")))?;
        }
        if let Some(s) = &row.subdivision {
            SubdivisionCode::parse(s).ok_or_else(|| err(format!("bad subdivision {s:?}")))?;
        }
        row.coords = match (f[5], f[6]) {
            ("", "") => None,
            (lat, lon) => {
                let lat: f64 = lat
                    .parse()
                    .map_err(|e| err(format!("latitude {lat:?}: {e}")))?;
                let lon: f64 = lon
                    .parse()
                    .map_err(|e| err(format!("longitude {lon:?}: {e}")))?;
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(err(format!("coordinates out of range: {lat},{lon}")));
                }
                Some((lat, lon))
            }
        };
        row.asn = match f[7] {
            "" => None,
            s => Some(s.parse().map_err(|e| err(format!("asn {s:?}: {e}")))?),
        };
        row.as_org = f.get(8).and_then(|s| opt(s));
        rows.push(row);
    }
    Ok(rows)
}

/// Reads the CSV at `csv` and writes the database to `mmdb`; returns the number of rows.
/// This is what `cargo run --example build-geoip` runs.
pub fn build_demo_db(csv: &Path, mmdb: &Path) -> Result<usize, GeoError> {
    let text = std::fs::read_to_string(csv).map_err(|e| GeoError::new(csv, e.to_string()))?;
    let rows = parse_city_csv(csv, &text)?;
    let bytes = city_mmdb("Meridian-Demo-City", &rows)?;
    std::fs::write(mmdb, bytes).map_err(|e| GeoError::new(mmdb, e.to_string()))?;
    Ok(rows.len())
}

/// Continent, country and subdivision of the synthetic places, with rough coordinates.
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

/// `networks` rows shaped like GeoLite2-City's (for `examples/synth-city.rs` and the table
/// build benchmark): three quarters IPv4 /24s from 1.0.0.0 up (one in 64 left out, as
/// unallocated space), one quarter IPv6 /48s under 2a00::/12, each at one of 240 places on
/// every continent picked at random (fixed seed), with a city name, coordinates and an ASN.
/// Neighbours rarely share a place, so tables built from them are larger than from real
/// data: an upper bound.
pub fn synthetic_city_rows(networks: usize) -> Vec<CityRow> {
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
            let n = (i + i / 63) as u32;
            let addr = std::net::Ipv4Addr::from((1u32 << 24).wrapping_add(n << 8));
            IpNet::V4(ipnet::Ipv4Net::new(addr, 24).unwrap_or_default())
        } else {
            let n = (i - v4) as u128;
            let addr = std::net::Ipv6Addr::from((0x2a00u128 << 112) + (n << 80));
            IpNet::V6(ipnet::Ipv6Net::new(addr, 48).unwrap_or_default())
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
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parses_and_validates() {
        let text = "# comment\nnetwork,continent,country,subdivision,city,latitude,longitude,asn\n\
                    81.2.69.0/24,EU,GB,,London,51.5,-0.12,20712\n\
                    2001:db8::/32,NA,US,US-CA,San Jose,37.3,-121.9,,Example Org\n";
        let rows = parse_city_csv(Path::new("x.csv"), text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].asn, Some(20712));
        assert_eq!(rows[0].subdivision, None);
        assert_eq!(rows[1].as_org.as_deref(), Some("Example Org"));
        assert_eq!(rows[1].coords, Some((37.3, -121.9)));

        let bad = "10.0.0.0/8,EU,GBR,,,,,\n";
        let err = parse_city_csv(Path::new("x.csv"), bad).unwrap_err();
        assert!(
            err.reason.contains("line 1") && err.reason.contains("country"),
            "{err}"
        );
        assert!(parse_city_csv(Path::new("x.csv"), "10.0.0.0/8,EU,GB,,,91,0,\n").is_err());
        assert!(parse_city_csv(Path::new("x.csv"), "10.0.0.0/33,EU,GB,,,,,\n").is_err());
    }

    #[test]
    fn writes_a_readable_database() {
        let rows = vec![CityRow::new("192.0.2.0/24".parse().unwrap()).country("FR")];
        let bytes = city_mmdb("Test", &rows).unwrap();
        let reader = maxminddb::Reader::from_source(bytes).unwrap();
        assert_eq!(reader.metadata().database_type, "Test");
        let r = reader.lookup("192.0.2.9".parse().unwrap()).unwrap();
        let code: Option<&str> = r
            .decode_path(&[
                maxminddb::PathElement::Key("country"),
                maxminddb::PathElement::Key("iso_code"),
            ])
            .unwrap();
        assert_eq!(code, Some("FR"));
    }
}
