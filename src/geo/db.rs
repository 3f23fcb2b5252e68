//! Opening MaxMind DB files and looking addresses up in one or several of them.
//!
//! Direct lookups here decode the record on every call; they serve `explain`, tests and table
//! building. The query path uses a prebuilt [`NetTable`](super::NetTable) instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{LookupResult, Reader};

use super::cidr;
use super::error::GeoError;
use super::location::{
    CompiledPaths, ContinentCode, CountryCode, FieldPath, GeoFieldPaths, Location, SubdivisionCode,
};
use super::mmdb::{self, Data, Layout, Scalar};
use super::table::V4Alias;

/// The fields of a [`Location`] a table is built from; the others are not decoded (most of
/// a table build is decoding every distinct record of the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields(u8);

impl Fields {
    pub const CONTINENT: Fields = Fields(1);
    pub const COUNTRY: Fields = Fields(2);
    pub const SUBDIVISION: Fields = Fields(4);
    pub const CITY: Fields = Fields(8);
    /// Latitude and longitude.
    pub const COORDS: Fields = Fields(16);
    pub const ASN: Fields = Fields(32);
    pub const ALL: Fields = Fields(63);

    pub fn has(self, other: Fields) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Fields {
    type Output = Fields;
    fn bitor(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }
}

/// One opened MaxMind DB (City, Country, ASN, or any database with configured field paths).
pub struct GeoDb {
    path: PathBuf,
    reader: Reader<FileBytes>,
    /// The file, shared with the reader: table builds read its tree and data directly.
    bytes: FileBytes,
    /// Where the data section lies in `bytes`.
    data: std::ops::Range<usize>,
    paths: CompiledPaths,
}

/// A database file's bytes, shared between the reader and the direct reads of
/// [`mmdb`](super::mmdb).
#[derive(Clone)]
struct FileBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("database_type", &self.database_type())
            .field("ip_version", &self.ip_version())
            .finish()
    }
}

impl GeoDb {
    /// Reads and opens the database at `path`, reading fields from `fields`.
    pub fn open(path: impl AsRef<Path>, fields: &GeoFieldPaths) -> Result<Self, GeoError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| GeoError::new(path, e.to_string()))?;
        Self::from_bytes(path, bytes, fields)
    }

    /// Opens a database already in memory; `name` is used in errors.
    pub fn from_bytes(
        name: impl AsRef<Path>,
        bytes: Vec<u8>,
        fields: &GeoFieldPaths,
    ) -> Result<Self, GeoError> {
        let path = name.as_ref().to_path_buf();
        let paths = fields.compile(&path)?;
        let bytes = FileBytes(Arc::new(bytes));
        let invalid = |e: &dyn std::fmt::Display| {
            GeoError::new(&path, format!("not a valid MaxMind DB: {e}"))
        };
        let reader = Reader::from_source(bytes.clone()).map_err(|e| invalid(&e))?;
        let meta = reader.metadata();
        let data = mmdb::data_section(bytes.as_ref(), meta.node_count, meta.record_size)
            .map_err(|e| invalid(&e))?;
        let version = meta.ip_version;
        if version != 4 && version != 6 {
            return Err(GeoError::new(
                &path,
                format!("unknown ip_version {version}"),
            ));
        }
        Ok(Self {
            path,
            reader,
            bytes,
            data,
            paths,
        })
    }

    /// The file this database came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `database_type` from the metadata, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// 4 or 6.
    pub fn ip_version(&self) -> u16 {
        self.reader.metadata().ip_version
    }

    /// The search tree and data section, for a walk (the data section as found at open).
    pub(crate) fn layout(&self) -> Layout<'_> {
        let meta = self.reader.metadata();
        Layout::with_data(
            self.bytes.as_ref(),
            self.data.clone(),
            meta.node_count,
            meta.record_size,
            meta.ip_version,
        )
    }

    /// Locates `ip`. `prefix_len` is the length of the database network the answer came
    /// from (for an address with no data, the network with no data). IPv4-mapped and
    /// IPv4-compatible IPv6 addresses are answered as their IPv4 address, with the prefix
    /// counted in IPv6 bits (96 + the IPv4 prefix).
    pub fn lookup(&self, ip: IpAddr) -> Result<Location, GeoError> {
        match ip {
            IpAddr::V4(v4) => self.lookup_v4(v4),
            IpAddr::V6(v6) => {
                let addr = u128::from(v6);
                let embedded = [V4Alias::MAPPED, V4Alias::COMPAT]
                    .iter()
                    .find_map(|a| a.embedded(addr));
                match embedded {
                    Some(v4) => {
                        let mut loc = self.lookup_v4(Ipv4Addr::from(v4))?;
                        loc.prefix_len += 96;
                        Ok(loc)
                    }
                    None if self.ip_version() == 4 => Ok(Location {
                        prefix_len: cidr::widest_outside(
                            addr,
                            128,
                            &[(V4Alias::COMPAT.prefix, 96), (V4Alias::MAPPED.prefix, 96)],
                        ),
                        ..Location::default()
                    }),
                    None => self.lookup_v6(v6),
                }
            }
        }
    }

    fn lookup_v4(&self, ip: Ipv4Addr) -> Result<Location, GeoError> {
        let result = self
            .reader
            .lookup(IpAddr::V4(ip))
            .map_err(|e| self.err(ip, e))?;
        let mut loc = self.decode(&result, Fields::ALL)?;
        // The reader reports IPv4 networks in IPv4 bits; a record found above the IPv4
        // subtree of an IPv6 database comes back as an IPv6 network and covers all of IPv4.
        loc.prefix_len = match result.network() {
            Ok(ipnetwork::IpNetwork::V4(n)) => n.prefix(),
            Ok(ipnetwork::IpNetwork::V6(_)) | Err(_) => 0,
        };
        Ok(loc)
    }

    fn lookup_v6(&self, ip: Ipv6Addr) -> Result<Location, GeoError> {
        let result = self
            .reader
            .lookup(IpAddr::V6(ip))
            .map_err(|e| self.err(ip, e))?;
        let mut loc = self.decode(&result, Fields::ALL)?;
        loc.prefix_len = network_len(&result);
        Ok(loc)
    }

    fn err(&self, ip: impl std::fmt::Display, e: maxminddb::MaxMindDbError) -> GeoError {
        GeoError::new(&self.path, format!("lookup of {ip}: {e}"))
    }

    /// Decodes the configured fields of one lookup's record that `fields` asks for; see
    /// [`GeoDb::decode_at`].
    fn decode(
        &self,
        result: &LookupResult<'_, FileBytes>,
        fields: Fields,
    ) -> Result<Location, GeoError> {
        let Some(offset) = result.offset() else {
            return Ok(Location::default());
        };
        let offset = u32::try_from(offset)
            .map_err(|_| GeoError::new(&self.path, format!("record offset {offset} past 4 GiB")))?;
        self.decode_at(offset, fields).map_err(|e| {
            let at = result
                .network()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            e.at(&self.path, &at)
        })
    }

    /// Decodes the configured fields that `fields` asks for of the record at `offset` in the
    /// data section, the others left `None` (prefix_len left at 0). Malformed or
    /// out-of-range codes and coordinates become `None`. A value of the wrong kind (not a
    /// string for a code or name, not a number for a coordinate, not an integer that fits a
    /// u32 for the ASN) is an error, since it means the field paths do not fit this
    /// database; any stored number type is read as a number.
    pub(crate) fn decode_at(&self, offset: u32, fields: Fields) -> Result<Location, FieldError> {
        let data = Data::new(
            self.bytes
                .as_ref()
                .get(self.data.clone())
                .unwrap_or_default(),
        );
        let p = &self.paths;
        let field = |field: Fields, path: &FieldPath, name: &'static str| {
            self.field(data, offset, fields.has(field).then_some(path))
                .map_err(|reason| FieldError { name, reason })
        };
        let text = |f, path, name| {
            field(f, path, name)?
                .map(|v: Scalar<'_>| v.into_str())
                .transpose()
                .map_err(|reason| FieldError { name, reason })
        };
        let number = |f, path, name| {
            field(f, path, name)?
                .map(Scalar::into_f64)
                .transpose()
                .map_err(|reason| FieldError { name, reason })
        };
        let continent = text(Fields::CONTINENT, &p.continent, "continent")?;
        let country = text(Fields::COUNTRY, &p.country, "country")?;
        let subdivision = text(Fields::SUBDIVISION, &p.subdivision, "subdivision")?;
        let city = text(Fields::CITY, &p.city, "city")?;
        let lat = number(Fields::COORDS, &p.latitude, "latitude")?;
        let lon = number(Fields::COORDS, &p.longitude, "longitude")?;
        let asn = field(Fields::ASN, &p.asn, "asn")?
            .map(Scalar::into_u32)
            .transpose()
            .map_err(|reason| FieldError {
                name: "asn",
                reason,
            })?;
        let coords = match (lat, lon) {
            (Some(lat), Some(lon))
                if lat.is_finite()
                    && lon.is_finite()
                    && (-90.0..=90.0).contains(&lat)
                    && (-180.0..=180.0).contains(&lon) =>
            {
                Some((lat, lon))
            }
            _ => None,
        };
        Ok(Location {
            continent: continent.and_then(ContinentCode::parse),
            country: country.and_then(CountryCode::parse),
            subdivision: subdivision.and_then(SubdivisionCode::parse),
            city: city.filter(|c| !c.is_empty()).map(Arc::from),
            asn,
            coords,
            prefix_len: 0,
        })
    }

    fn field<'a>(
        &self,
        data: Data<'a>,
        offset: u32,
        path: Option<&FieldPath>,
    ) -> Result<Option<Scalar<'a>>, String> {
        // Not asked for, or not in this database.
        match path.filter(|p| !p.0.is_empty()) {
            None => Ok(None),
            Some(path) => data.find(offset, &path.0),
        }
    }

    /// Whether this database answers `alias` from its IPv4 subtree (MaxMind's writers alias
    /// 6to4 and Teredo this way). A walk of an aliased range yields nothing, since the
    /// reader skips aliases; any real range yields at least its containing network.
    pub(crate) fn aliases(&self, alias: V4Alias) -> bool {
        if self.ip_version() != 6 {
            return false;
        }
        let Ok(net) = ipnetwork::Ipv6Network::new(Ipv6Addr::from(alias.prefix), alias.len) else {
            return false;
        };
        let opts = maxminddb::WithinOptions::default().include_networks_without_data();
        match self.reader.within(ipnetwork::IpNetwork::V6(net), opts) {
            Ok(mut it) => it.next().is_none(),
            Err(_) => false,
        }
    }
}

/// The tree depth of a lookup result, without the reader's panicking edge cases.
fn network_len<S: AsRef<[u8]>>(result: &LookupResult<'_, S>) -> u8 {
    result.network().map(|n| n.prefix()).unwrap_or(0)
}

/// A record's field that could not be read: which field, and why.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    name: &'static str,
    reason: String,
}

impl FieldError {
    /// The error for the record of network `at` in database `path`.
    pub(crate) fn at(&self, path: &Path, at: &dyn std::fmt::Display) -> GeoError {
        GeoError::new(
            path,
            format!("record for {at}: field {}: {}", self.name, self.reason),
        )
    }
}

/// Several databases answering together, e.g. City + ASN: each field comes from the first
/// database that has it, and `prefix_len` is the narrowest network involved, since the
/// combined answer is only known to be constant over the intersection.
#[derive(Debug, Default)]
pub struct GeoSources {
    dbs: Vec<GeoDb>,
}

impl GeoSources {
    /// Combines `dbs`, in order of precedence.
    pub fn new(dbs: Vec<GeoDb>) -> Self {
        Self { dbs }
    }

    /// The databases, in order of precedence.
    pub fn dbs(&self) -> &[GeoDb] {
        &self.dbs
    }

    /// Locates `ip` in every database and merges the answers.
    pub fn lookup(&self, ip: IpAddr) -> Result<Location, GeoError> {
        let mut merged: Option<Location> = None;
        for db in &self.dbs {
            let loc = db.lookup(ip)?;
            match merged.as_mut() {
                None => merged = Some(loc),
                Some(m) => m.merge_from(&loc),
            }
        }
        Ok(merged.unwrap_or_default())
    }
}

/// What it takes to open the databases again: paths, field settings, and each file's size
/// and modification time when it was loaded. A snapshot keeps this instead of the
/// databases, whose bytes (GeoLite2-City: about 60 MB) are only needed while the tables are
/// built; `explain` reopens them for its rare lookups.
#[derive(Debug, Clone, Default)]
pub struct GeoRecipe {
    dbs: Vec<(PathBuf, GeoFieldPaths, Option<FileStamp>)>,
}

/// Size and modification time of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<Self> {
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            len: m.len(),
            modified: m.modified().ok(),
        })
    }
}

impl GeoRecipe {
    /// Tells these databases apart from others across loads (paths, fields, sizes,
    /// modification times); `None` when a file's stamp could not be read.
    pub fn identity(&self) -> Option<String> {
        let stamped = self.dbs.iter().all(|(_, _, stamp)| stamp.is_some());
        stamped.then(|| format!("{:?}", self.dbs))
    }

    /// Records a database as loaded, with the stamp its file had before it was read.
    pub fn push(&mut self, path: PathBuf, fields: GeoFieldPaths, stamp: Option<FileStamp>) {
        self.dbs.push((path, fields, stamp));
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Each database's path and fields.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &GeoFieldPaths)> {
        self.dbs
            .iter()
            .map(|(path, fields, _)| (path.as_path(), fields))
    }

    /// Opens the databases again. The flag says some file changed since it was loaded (the
    /// tables in use come from the old one until a reload).
    pub fn open(&self) -> Result<(GeoSources, bool), GeoError> {
        let mut dbs = Vec::with_capacity(self.dbs.len());
        let mut changed = false;
        for (path, fields, stamp) in &self.dbs {
            changed |= FileStamp::of(path) != *stamp;
            dbs.push(GeoDb::open(path, fields)?);
        }
        Ok((GeoSources::new(dbs), changed))
    }
}

impl From<GeoDb> for GeoSources {
    fn from(db: GeoDb) -> Self {
        Self::new(vec![db])
    }
}
