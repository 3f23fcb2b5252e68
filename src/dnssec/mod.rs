//! DNSSEC: keys in BIND's file format, and signing a zone as it is built (DNSKEY RRset, NSEC
//! chain, RRSIGs). Pure: files are read and the clock is read by the caller.

pub mod key;
pub mod sign;

pub use key::{KeyError, SigningKey, Timing};
pub use sign::{SignPolicy, SignStats, Window, sign_rrset, sign_zone};

/// What signs one zone's dynamic answers as health changes: the keys that sign its data
/// (active; the ZSKs when keys are split) and the window of the signatures made at load.
#[derive(Debug, Clone)]
pub struct ZoneSigner {
    /// Lowercase wire.
    pub origin: Box<[u8]>,
    pub keys: Vec<std::sync::Arc<SigningKey>>,
    pub window: Window,
    /// When the zone is to be signed again (Unix seconds): half its signatures' lifetime.
    pub resign_at: u64,
    /// The next change of any key's state (publish, activate, retire, delete).
    pub next_key_event: Option<u64>,
    /// Signatures made at load (static data, NSEC chain, DNSKEY).
    pub signatures: usize,
}

impl ZoneSigner {
    /// When this zone must be signed again: the re-sign time or a key event.
    pub fn due(&self) -> u64 {
        self.next_key_event
            .map_or(self.resign_at, |e| e.min(self.resign_at))
    }
}

impl ZoneSigner {
    /// The signatures of one RRset by every key.
    pub fn sign(&self, owner: &[u8], set: (u16, u32, &[&[u8]])) -> Result<Vec<Box<[u8]>>, String> {
        self.keys
            .iter()
            .map(|k| {
                sign_rrset(k, &self.origin, owner, set, self.window).map(Vec::into_boxed_slice)
            })
            .collect()
    }
}
