//! Signatures of dynamic answer sets, made before the health view that produces them goes
//! live: the query path finds the RRSIGs of the records it just wrote by one hash lookup
//! (no signing, no lock, no allocation per query).

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

/// (dynamic name index, record type, [`set_hash`] of the records) → RRSIG RDATAs.
#[derive(Debug, Default, Clone)]
pub struct SigStore {
    map: FxHashMap<SetKey, Box<[Box<[u8]>]>>,
}

/// (dynamic name index, record type, set hash).
type SetKey = (u32, u16, u64);

/// One well-mixed value per RDATA (SplitMix64's finalizer over FxHash).
fn mix(rdata: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    rdata.hash(&mut h);
    let mut x = h.finish().wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash of a set of RDATAs that does not depend on their order (an RRSIG does not).
pub fn set_hash<'r>(rdatas: impl Iterator<Item = &'r [u8]>) -> u64 {
    rdatas.fold(0u64, |acc, r| acc.wrapping_add(mix(r)))
}

impl SigStore {
    pub fn get(&self, name: u32, rtype: u16, hash: u64) -> Option<&[Box<[u8]>]> {
        self.map.get(&(name, rtype, hash)).map(|v| &v[..])
    }

    pub fn insert(&mut self, name: u32, rtype: u16, hash: u64, sigs: Vec<Box<[u8]>>) {
        self.map
            .insert((name, rtype, hash), sigs.into_boxed_slice());
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_hash_ignores_order_and_tells_sets_apart() {
        let (a, b, c) = (
            &[192u8, 0, 2, 1][..],
            &[192u8, 0, 2, 2][..],
            &[192u8, 0, 2, 3][..],
        );
        assert_eq!(set_hash([a, b].into_iter()), set_hash([b, a].into_iter()));
        assert_ne!(set_hash([a, b].into_iter()), set_hash([a, c].into_iter()));
        assert_ne!(set_hash([a].into_iter()), set_hash([a, b].into_iter()));
    }
}
