//! A zone's owner names and nodes in file order, in chunks that a reload shares with the
//! zone it replaces.
//!
//! A reload of a big zone whose file changed in a few places builds the new zone beside the
//! old one: with one buffer each, the memory doubled for the time of the reload. Here the
//! entries sit in chunks, each behind an `Arc`; as the builder completes a chunk, it
//! compares it with the previous zone's chunk that began with the same name and, when they
//! are equal, drops its own and takes the old one. Only the chunks that changed cost memory
//! twice. A chunk written to again after that is copied first: the result is the same as
//! without sharing, only bigger.
//!
//! A chunk ends after a name whose hash has its top [`BOUNDARY_BITS`] bits zero (about one
//! in 1024), or when full: the boundaries depend on the names, not on how many came before,
//! so a name added or removed early in the file changes one chunk, not every one after it.
//! A position is the chunk's number and the entry's place in it, so positions have gaps.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Node, OwnerRef, Owners, name_hash};

/// log2 of the most entries a chunk holds (4096: about 160 KB, and their names).
pub const CHUNK_BITS: u32 = 12;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const IN_CHUNK: usize = CHUNK_LEN - 1;
/// A name whose hash has this many top bits zero ends its chunk: 1024 entries on average,
/// few enough that one changed record costs little.
const BOUNDARY_BITS: u32 = 10;

/// Whether the name with this hash ends its chunk.
fn ends_chunk(hash: u64) -> bool {
    hash >> (64 - BOUNDARY_BITS) == 0
}

/// One owner name (where in its chunk's [`Owners`]) and its node.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    node: Node,
    owner: OwnerRef,
}

/// Up to [`CHUNK_LEN`] consecutive entries and their owner names.
#[derive(Debug, Clone, Default, PartialEq)]
struct Chunk {
    entries: Vec<Entry>,
    owners: Owners,
}

impl Chunk {
    /// Gives back the room kept for growth: the chunk is complete.
    fn shrink(&mut self) {
        for entry in &mut self.entries {
            for set in entry.node.rrsets.iter_mut() {
                set.rdata.shrink_to_fit();
            }
        }
        self.owners.0.shrink_to_fit();
        self.entries.shrink_to_fit();
    }
}

/// A chunk the builder is filling (its own: written without a check per record), or a
/// complete one, perhaps shared.
#[derive(Debug)]
enum Slot {
    Own(Box<Chunk>),
    Shared(Arc<Chunk>),
}

impl std::ops::Deref for Slot {
    type Target = Chunk;
    fn deref(&self) -> &Chunk {
        match self {
            Slot::Own(chunk) => chunk,
            Slot::Shared(chunk) => chunk,
        }
    }
}

impl Slot {
    /// The chunk to write to: copied first when it is shared.
    fn make_mut(&mut self) -> &mut Chunk {
        if let Slot::Shared(chunk) = self {
            *self = Slot::Own(Box::new(Chunk::clone(chunk)));
        }
        match self {
            Slot::Own(chunk) => chunk,
            Slot::Shared(chunk) => Arc::make_mut(chunk),
        }
    }

    /// Puts the chunk behind an `Arc`, to be shared.
    fn share(&mut self) {
        if let Slot::Own(chunk) = self {
            let chunk = std::mem::take(&mut **chunk);
            *self = Slot::Shared(Arc::new(chunk));
        }
    }

    fn shared(&self) -> Option<&Arc<Chunk>> {
        match self {
            Slot::Shared(chunk) => Some(chunk),
            Slot::Own(_) => None,
        }
    }
}

/// Every entry of a zone, by position (its chunk, and its place there in the order the
/// names came).
#[derive(Debug, Default)]
pub(super) struct Entries {
    chunks: Vec<Slot>,
    len: usize,
    /// The last chunk takes no more names (its last name ends it, or it is full).
    last_ended: bool,
    /// The previous zone's chunks by the hash of their first name, while building for a
    /// reload: a complete chunk equal to the one with its first name is taken from here.
    previous: FxHashMap<u64, Arc<Chunk>>,
    /// Chunks below this were compared already.
    sealed: usize,
}

impl Entries {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The owner name and node at `position`.
    pub(super) fn get(&self, position: usize) -> Option<(&[u8], &Node)> {
        let chunk = self.chunks.get(position >> CHUNK_BITS)?;
        let entry = chunk.entries.get(position & IN_CHUNK)?;
        Some((chunk.owners.get(entry.owner), &entry.node))
    }

    /// The owner name at `position` (empty when there is none).
    pub(super) fn owner(&self, position: usize) -> &[u8] {
        self.get(position).map_or(&[][..], |(owner, _)| owner)
    }

    /// The node at `position`, to change (its chunk copied first when it is shared).
    pub(super) fn node_mut(&mut self, position: usize) -> Option<&mut Node> {
        let chunk = self.chunks.get_mut(position >> CHUNK_BITS)?.make_mut();
        chunk
            .entries
            .get_mut(position & IN_CHUNK)
            .map(|e| &mut e.node)
    }

    /// Appends `owner` (whose hash is `hash`) with an empty node; its position, or `None`
    /// past 2^31 positions or a chunk's 4 GiB of names.
    pub(super) fn push(&mut self, owner: &[u8], hash: u64) -> Option<u32> {
        if self.chunks.is_empty() || self.last_ended {
            // A new chunk: the one before the last is complete in any file that keeps a
            // name's records together (a later record for it copies it back).
            if let Some(complete) = self.chunks.len().checked_sub(1) {
                self.seal_below(complete);
            }
            self.chunks.push(Slot::Own(Box::new(Chunk {
                entries: Vec::with_capacity(1 << BOUNDARY_BITS),
                owners: Owners::default(),
            })));
            self.last_ended = false;
        }
        let k = self.chunks.len() - 1;
        let chunk = self.chunks.last_mut()?.make_mut();
        let position = k
            .checked_shl(CHUNK_BITS)
            .map(|p| p | chunk.entries.len())
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p < 1 << 31)?;
        let owner = chunk.owners.push(owner)?;
        chunk.entries.push(Entry {
            node: Node::default(),
            owner,
        });
        self.last_ended = ends_chunk(hash) || chunk.entries.len() == CHUNK_LEN;
        self.len += 1;
        Some(position)
    }

    /// Shares the chunks of `previous` that come out equal (see the module's comment).
    pub(super) fn share_with(&mut self, previous: &Entries) {
        // A finished zone's chunks are all shared (`seal`).
        self.previous = previous
            .chunks
            .iter()
            .filter_map(|c| {
                let first = c.entries.first()?;
                Some((name_hash(c.owners.get(first.owner)), c.shared()?.clone()))
            })
            .collect();
    }

    /// Completes every chunk: nothing is added after this, and every chunk can be shared.
    pub(super) fn seal(&mut self) {
        self.sealed = 0;
        self.seal_below(self.chunks.len());
        self.previous = FxHashMap::default();
        for chunk in &mut self.chunks {
            chunk.share();
        }
    }

    /// Shrinks chunks `sealed..end`, and takes the previous zone's chunk where it is equal.
    fn seal_below(&mut self, end: usize) {
        for k in self.sealed..end {
            let Some(chunk) = self.chunks.get_mut(k) else {
                break;
            };
            let first = chunk.entries.first().map(|e| chunk.owners.get(e.owner));
            let old = first.and_then(|f| self.previous.get(&name_hash(f)));
            if old.is_some_and(|old| chunk.shared().is_some_and(|c| Arc::ptr_eq(c, old))) {
                continue;
            }
            chunk.make_mut().shrink();
            if let Some(old) = old.filter(|old| ***old == **chunk) {
                *chunk = Slot::Shared(Arc::clone(old));
            }
        }
        self.sealed = self.sealed.max(end);
    }

    /// For each chunk, the number of the same chunk in `other` (shared with it), if any.
    pub(super) fn shared_with(&self, other: &Entries) -> Vec<Option<usize>> {
        let theirs: FxHashMap<*const Chunk, usize> = other
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(k, c)| Some((Arc::as_ptr(c.shared()?), k)))
            .collect();
        self.chunks
            .iter()
            .map(|c| theirs.get(&Arc::as_ptr(c.shared()?)).copied())
            .collect()
    }

    pub(super) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The entries of chunk `k`: position, owner name and node.
    pub(super) fn chunk(&self, k: usize) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        let base = k << CHUNK_BITS;
        self.chunks.get(k).into_iter().flat_map(move |c| {
            let place = c.entries.iter().enumerate();
            place.map(move |(i, e)| ((base | i) as u32, c.owners.get(e.owner), &e.node))
        })
    }

    /// Every entry: position, owner name and node.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &[u8], &Node)> {
        (0..self.chunks.len()).flat_map(|k| self.chunk(k))
    }

    /// Calls `change` on every node for which `wants` says yes (only those chunks are
    /// copied when shared).
    pub(super) fn change_where(
        &mut self,
        wants: impl Fn(&Node) -> bool,
        mut change: impl FnMut(&mut Node),
    ) {
        for chunk in &mut self.chunks {
            if chunk.entries.iter().any(|e| wants(&e.node)) {
                for e in &mut chunk.make_mut().entries {
                    if wants(&e.node) {
                        change(&mut e.node);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_a_boundary_name_or_when_full() {
        let mut entries = Entries::default();
        let never = u64::MAX;
        let boundary = 1u64 << (64 - BOUNDARY_BITS - 1);
        assert!(ends_chunk(boundary) && !ends_chunk(never));
        let mut positions = Vec::new();
        for i in 0..5000u32 {
            // Name 10 ends the first chunk; no other name does.
            let hash = if i == 10 { boundary } else { never };
            let name = format!("n{i}");
            positions.push(entries.push(name.as_bytes(), hash).expect("room"));
        }
        assert_eq!(entries.len(), 5000);
        // 0..=10 in chunk 0; 11.. fill chunk 1 to 4096 names; the rest start chunk 2.
        assert_eq!(positions[10], 10);
        assert_eq!(positions[11], 1 << CHUNK_BITS);
        assert_eq!(positions[11 + 4095], (1 << CHUNK_BITS) | 4095);
        assert_eq!(positions[11 + 4096], 2 << CHUNK_BITS);
        entries.seal();
        assert_eq!(entries.chunk_count(), 3);
        for (i, &p) in positions.iter().enumerate() {
            assert_eq!(entries.owner(p as usize), format!("n{i}").as_bytes());
        }
        let walked: Vec<u32> = entries.iter().map(|(p, _, _)| p).collect();
        assert_eq!(walked, positions);
        assert!(entries.get(11).is_none(), "a gap after the first chunk");
    }
}
