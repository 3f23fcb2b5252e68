//! Why a record, a dynamic name or a zone is refused. Names are in presentation form.

/// A rule of RFC 1034/2181/6672 (or of ours) that a zone's data breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("owner {owner} is outside the zone {zone}")]
    OutsideZone { owner: String, zone: String },
    #[error("SOA record is only allowed at the zone apex")]
    SoaNotAtApex,
    #[error("a zone can have only one SOA record")]
    SecondSoa,
    #[error("{0} is a dynamic name; it cannot have static records too")]
    StaticAtDynamic(String),
    #[error("a name can have only one CNAME record")]
    SecondCname,
    #[error("CNAME and other data at the same name (RFC 1034 §3.6.2)")]
    CnameAndOtherData,
    #[error("a name can have only one DNAME record (RFC 6672 §2.4)")]
    SecondDname,
    #[error("dynamic name {owner} is outside the zone {zone}")]
    DynamicOutsideZone { owner: String, zone: String },
    #[error("the zone apex cannot be a dynamic name")]
    DynamicApex,
    #[error("dynamic name {owner} is below the delegation {cut}")]
    DynamicBelowCut { owner: String, cut: String },
    #[error("{0} is defined in the zone file and as a dynamic name; keep one")]
    DynamicAndStatic(String),
    #[error("dynamic name {0} is defined twice")]
    DynamicTwice(String),
    #[error("the zone has no records at its apex (SOA missing)")]
    EmptyApex,
    #[error("the zone has no SOA record at its apex")]
    NoSoa,
    #[error("the zone has an empty SOA RRset")]
    EmptySoa,
    #[error("malformed SOA RDATA")]
    MalformedSoa,
    #[error("the zone has no NS records at its apex")]
    NoApexNs,
    #[error("a CNAME at the zone apex is not allowed")]
    ApexCname,
    #[error("an RRset cannot hold this record: longer than 65535 octets, or over 65535 records")]
    RRsetTooLarge,
    #[error("the zone's owner names pass 4 GiB")]
    TooManyNames,
    #[error("zone {0} is defined twice")]
    ZoneTwice(String),
}
