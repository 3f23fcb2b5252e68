//! DNSSEC: keys in BIND's file format, and signing a zone as it is built (DNSKEY RRset, NSEC
//! chain, RRSIGs). Pure: files are read and the clock is read by the caller.

pub mod key;
pub mod sign;

pub use key::{KeyError, SigningKey, Timing};
pub use sign::{SignPolicy, SignStats, sign_zone};
