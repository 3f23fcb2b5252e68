//! Where a client is: the small, fixed-size result of a GeoIP lookup.
//!
//! Codes are stored inline (`[u8; N]`) rather than as `String`s so a `Location` is cheap to copy
//! into policy code and compare, and so malformed database strings are rejected at the edge.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::GeoError;

macro_rules! alpha2_code {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 2]);

        impl $name {
            /// Parses two ASCII letters (any case; stored upper-case). Anything else is `None`:
            /// database strings are untrusted and a bad code must not become a key.
            pub fn parse(s: &str) -> Option<Self> {
                match s.as_bytes() {
                    [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                        Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
                    }
                    _ => None,
                }
            }

            /// The code as text, e.g. `"GB"`.
            pub fn as_str(&self) -> &str {
                // Only ASCII letters are ever stored, so this cannot fail.
                std::str::from_utf8(&self.0).unwrap_or("??")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }
    };
}

alpha2_code!(
    /// A continent code as MaxMind uses them: AF, AN, AS, EU, NA, OC, SA.
    ContinentCode
);
alpha2_code!(
    /// An ISO 3166-1 alpha-2 country code, e.g. `GB`.
    CountryCode
);

/// The subdivision part of an ISO 3166-2 code (1–3 ASCII letters or digits), e.g. `CA` for
/// `US-CA`. MaxMind stores only this part; the country lives in [`Location::country`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubdivisionCode {
    bytes: [u8; 3],
    len: u8,
}

impl SubdivisionCode {
    /// Parses `CA` or a full `US-CA` (the country prefix is dropped). Stored upper-case.
    pub fn parse(s: &str) -> Option<Self> {
        let part = match s.split_once('-') {
            Some((country, sub)) if CountryCode::parse(country).is_some() => sub,
            Some(_) => return None,
            None => s,
        };
        let raw = part.as_bytes();
        if raw.is_empty() || raw.len() > 3 || !raw.iter().all(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut bytes = [0u8; 3];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = src.to_ascii_uppercase();
        }
        Some(Self {
            bytes,
            len: raw.len() as u8,
        })
    }

    /// The code as text, e.g. `"CA"`.
    pub fn as_str(&self) -> &str {
        let len = usize::from(self.len).min(3);
        std::str::from_utf8(&self.bytes[..len]).unwrap_or("?")
    }
}

impl fmt::Display for SubdivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SubdivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubdivisionCode({})", self.as_str())
    }
}

/// The result of locating one address. Every field is optional because every database lacks
/// something (an ASN database has no country, many networks have no city).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    /// Continent code.
    pub continent: Option<ContinentCode>,
    /// Country code.
    pub country: Option<CountryCode>,
    /// First (largest) subdivision, e.g. a US state.
    pub subdivision: Option<SubdivisionCode>,
    /// City name (English); shared, since many networks name the same city.
    pub city: Option<Arc<str>>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// (latitude, longitude) in degrees.
    pub coords: Option<(f64, f64)>,
    /// Length of the network the answer came from: the answer is the same for every address
    /// in that network, so it bounds the ECS scope. For several databases, the narrowest one.
    pub prefix_len: u8,
}

impl Location {
    /// `"US-CA"` style ISO 3166-2 code, when both country and subdivision are known.
    pub fn subdivision_iso(&self) -> Option<String> {
        Some(format!("{}-{}", self.country?, self.subdivision?))
    }

    /// True when the database said nothing about this address.
    pub fn is_unknown(&self) -> bool {
        self.continent.is_none()
            && self.country.is_none()
            && self.subdivision.is_none()
            && self.city.is_none()
            && self.asn.is_none()
            && self.coords.is_none()
    }

    /// Fills every field this location lacks from `other` (first database wins per field),
    /// and keeps the narrower network, since the merged answer is only constant over the
    /// intersection of both networks (which, for CIDR blocks containing one address, is the
    /// longer prefix).
    pub fn merge_from(&mut self, other: &Location) {
        self.continent = self.continent.or(other.continent);
        self.country = self.country.or(other.country);
        self.subdivision = self.subdivision.or(other.subdivision);
        if self.city.is_none() {
            self.city.clone_from(&other.city);
        }
        self.asn = self.asn.or(other.asn);
        self.coords = self.coords.or(other.coords);
        self.prefix_len = self.prefix_len.max(other.prefix_len);
    }
}

/// Where each field lives inside a database record, as dotted paths (`"country.iso_code"`,
/// `"subdivisions.0.iso_code"`; a segment of digits indexes an array). An empty string
/// means "this database has no such field". Defaults are MaxMind's GeoIP2/GeoLite2 layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoFieldPaths {
    /// Continent code path.
    pub continent: String,
    /// Country ISO code path.
    pub country: String,
    /// Subdivision ISO code path.
    pub subdivision: String,
    /// City name path.
    pub city: String,
    /// Latitude path.
    pub latitude: String,
    /// Longitude path.
    pub longitude: String,
    /// Autonomous system number path.
    pub asn: String,
}

impl Default for GeoFieldPaths {
    fn default() -> Self {
        Self {
            continent: "continent.code".into(),
            country: "country.iso_code".into(),
            subdivision: "subdivisions.0.iso_code".into(),
            city: "city.names.en".into(),
            latitude: "location.latitude".into(),
            longitude: "location.longitude".into(),
            asn: "autonomous_system_number".into(),
        }
    }
}

impl GeoFieldPaths {
    /// The flat layout of the ip-location-db project's mmdb files (`country_code`, `city`,
    /// `latitude`, ...). Its subdivision field is a name, not a code, so it is left out.
    pub fn ip_location_db() -> Self {
        Self {
            continent: String::new(),
            country: "country_code".into(),
            subdivision: String::new(),
            city: "city".into(),
            latitude: "latitude".into(),
            longitude: "longitude".into(),
            asn: "autonomous_system_number".into(),
        }
    }

    /// Checks and splits every path once, at load time.
    pub(crate) fn compile(&self, db: &std::path::Path) -> Result<CompiledPaths, GeoError> {
        let one = |name: &str, text: &str| {
            FieldPath::parse(text)
                .map_err(|why| GeoError::new(db, format!("field path {name} = {text:?}: {why}")))
        };
        Ok(CompiledPaths {
            continent: one("continent", &self.continent)?,
            country: one("country", &self.country)?,
            subdivision: one("subdivision", &self.subdivision)?,
            city: one("city", &self.city)?,
            latitude: one("latitude", &self.latitude)?,
            longitude: one("longitude", &self.longitude)?,
            asn: one("asn", &self.asn)?,
        })
    }
}

/// One segment of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed field path; empty means "not present in this database".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Segment>);

impl FieldPath {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Self(Vec::new()));
        }
        text.split('.')
            .map(|seg| {
                if seg.is_empty() {
                    Err("empty segment".to_string())
                } else if seg.bytes().all(|b| b.is_ascii_digit()) {
                    seg.parse()
                        .map(Segment::Index)
                        .map_err(|e| format!("index {seg}: {e}"))
                } else {
                    Ok(Segment::Key(seg.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// All field paths of one database, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledPaths {
    pub(crate) continent: FieldPath,
    pub(crate) country: FieldPath,
    pub(crate) subdivision: FieldPath,
    pub(crate) city: FieldPath,
    pub(crate) latitude: FieldPath,
    pub(crate) longitude: FieldPath,
    pub(crate) asn: FieldPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_reject_garbage() {
        assert_eq!(CountryCode::parse("gb").map(|c| c.0), Some(*b"GB"));
        assert_eq!(CountryCode::parse("GBR"), None);
        assert_eq!(CountryCode::parse("G1"), None);
        assert_eq!(CountryCode::parse("é"), None);
        assert_eq!(ContinentCode::parse("EU").unwrap().as_str(), "EU");
        assert_eq!(SubdivisionCode::parse("US-ca").unwrap().as_str(), "CA");
        assert_eq!(SubdivisionCode::parse("ENG").unwrap().as_str(), "ENG");
        assert_eq!(SubdivisionCode::parse("ABCD"), None);
        assert_eq!(SubdivisionCode::parse("1-CA"), None);
        assert_eq!(SubdivisionCode::parse(""), None);
    }

    #[test]
    fn merge_keeps_first_fields_and_narrowest_prefix() {
        let mut city = Location {
            country: CountryCode::parse("US"),
            prefix_len: 20,
            ..Location::default()
        };
        let asn = Location {
            country: CountryCode::parse("CA"),
            asn: Some(64_500),
            prefix_len: 24,
            ..Location::default()
        };
        city.merge_from(&asn);
        assert_eq!(city.country, CountryCode::parse("US"));
        assert_eq!(city.asn, Some(64_500));
        assert_eq!(city.prefix_len, 24);
        assert!(!city.is_unknown());
        assert_eq!(city.subdivision_iso(), None);
    }

    #[test]
    fn field_paths_parse() {
        let p = FieldPath::parse("subdivisions.0.iso_code").unwrap();
        assert_eq!(
            p.0,
            vec![
                Segment::Key("subdivisions".into()),
                Segment::Index(0),
                Segment::Key("iso_code".into())
            ]
        );
        assert!(FieldPath::parse("").unwrap().0.is_empty());
        assert!(FieldPath::parse("a..b").is_err());
        let paths: GeoFieldPaths = toml::from_str("country = \"country_code\"").unwrap();
        assert_eq!(paths.country, "country_code");
        assert_eq!(paths.city, "city.names.en");
        assert!(toml::from_str::<GeoFieldPaths>("bogus = \"x\"").is_err());
    }
}
