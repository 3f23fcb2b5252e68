//! Each wildcard (`*.x`) of a zone by the position of its parent `x`: a random label under a
//! wildcard finds it here once the walk up has found its closest encloser.

use rustc_hash::FxHashMap;

/// Most zones have a few wildcards: up to [`Wildcards::FEW`] sit in a short list scanned in
/// order (~10 instructions, where the hash map's probe took ~35); more go in a map, whose
/// probe stays the same for any number.
#[derive(Debug)]
pub(super) enum Wildcards {
    Few(Box<[(u32, u32)]>),
    Many(FxHashMap<u32, u32>),
}

impl Wildcards {
    const FEW: usize = 8;

    /// From (parent's position, wildcard's position) pairs, one per parent.
    pub(super) fn new(pairs: Vec<(u32, u32)>) -> Self {
        if pairs.len() <= Self::FEW {
            Self::Few(pairs.into_boxed_slice())
        } else {
            Self::Many(pairs.into_iter().collect())
        }
    }

    /// The position of the wildcard whose parent is at `parent`.
    #[inline]
    pub(super) fn get(&self, parent: u32) -> Option<u32> {
        match self {
            Self::Few(pairs) => pairs.iter().find(|p| p.0 == parent).map(|p| p.1),
            Self::Many(map) => map.get(&parent).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Wildcards;

    /// Both forms find every wildcard by its parent and nothing else.
    #[test]
    fn finds_each_wildcard_by_its_parent_in_both_forms() {
        for count in [0u32, 1, 3, 8, 9, 40] {
            let pairs: Vec<(u32, u32)> = (0..count).map(|i| (i * 7 + 2, i * 7 + 3)).collect();
            let wildcards = Wildcards::new(pairs.clone());
            assert_eq!(
                matches!(wildcards, Wildcards::Few(_)),
                count as usize <= Wildcards::FEW,
                "{count} wildcards"
            );
            for (parent, wildcard) in pairs {
                assert_eq!(wildcards.get(parent), Some(wildcard), "{count}: {parent}");
                assert_eq!(wildcards.get(parent + 1), None, "{count}: {parent} + 1");
            }
            assert_eq!(wildcards.get(u32::MAX), None);
        }
    }
}
