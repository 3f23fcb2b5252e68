//! A zone's owner names and nodes in file order, in chunks that a reload shares with the
//! zone it replaces.
//!
//! A reload of a big zone whose file changed in a few places builds the new zone beside the
//! old one: with one buffer each, the memory doubled for the time of the reload. Here the
//! entries sit in chunks of [`CHUNK_LEN`], each behind an `Arc`; as the builder fills a
//! chunk and moves on, it compares it with the previous zone's chunk at the same place and,
//! when they are equal, drops its own and takes the old one. Only the chunks that changed
//! cost memory twice. A chunk written to again after that is copied first (`Arc::make_mut`):
//! the result is the same as without sharing, only bigger.

use std::sync::Arc;

use super::{Node, OwnerRef, Owners};

/// log2 of the entries per chunk: 1024 entries (about 40 KB, and their names) are few enough
/// that one changed record costs little, many enough that the chunk table is small.
const CHUNK_BITS: u32 = 10;
pub(super) const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const IN_CHUNK: usize = CHUNK_LEN - 1;

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

    fn ptr_eq(&self, other: &Arc<Chunk>) -> bool {
        matches!(self, Slot::Shared(chunk) if Arc::ptr_eq(chunk, other))
    }
}

/// Every entry of a zone, by position (its place in the order the names came).
#[derive(Debug, Default)]
pub(super) struct Entries {
    chunks: Vec<Slot>,
    len: usize,
    /// The previous zone's chunks, while building for a reload: a complete chunk equal to the
    /// one at its place is taken from here.
    previous: Vec<Option<Arc<Chunk>>>,
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

    /// Appends `owner` with an empty node; its position, or `None` past 4G names or a chunk's
    /// 4 GiB of names.
    pub(super) fn push(&mut self, owner: &[u8]) -> Option<u32> {
        let position = u32::try_from(self.len).ok()?;
        if self.len & IN_CHUNK == 0 {
            // A new chunk: the one before the last is complete in any file that keeps a
            // name's records together (a later record for it copies it back).
            if let Some(complete) = self.chunks.len().checked_sub(1) {
                self.seal_below(complete);
            }
            self.chunks.push(Slot::Own(Box::new(Chunk {
                entries: Vec::with_capacity(CHUNK_LEN),
                owners: Owners::default(),
            })));
        }
        let chunk = self.chunks.last_mut()?.make_mut();
        let owner = chunk.owners.push(owner)?;
        chunk.entries.push(Entry {
            node: Node::default(),
            owner,
        });
        self.len += 1;
        Some(position)
    }

    /// Shares the chunks of `previous` that come out equal (see the module's comment).
    pub(super) fn share_with(&mut self, previous: &Entries) {
        // A finished zone's chunks are all shared (`seal`).
        self.previous = previous
            .chunks
            .iter()
            .map(|c| c.shared().cloned())
            .collect();
    }

    /// Completes every chunk: nothing is added after this, and every chunk can be shared.
    pub(super) fn seal(&mut self) {
        self.sealed = 0;
        self.seal_below(self.chunks.len());
        self.previous = Vec::new();
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
            let old = self.previous.get(k).and_then(Option::as_ref);
            if old.is_some_and(|old| chunk.ptr_eq(old)) {
                continue;
            }
            chunk.make_mut().shrink();
            if let Some(old) = old.filter(|old| ***old == **chunk) {
                *chunk = Slot::Shared(Arc::clone(old));
            }
        }
        self.sealed = self.sealed.max(end);
    }

    /// How many chunks are the same as the previous zone's (for the logs and tests).
    pub(super) fn shared_with(&self, other: &Entries) -> usize {
        self.chunks
            .iter()
            .zip(&other.chunks)
            .filter(|(a, b)| b.shared().is_some_and(|b| a.ptr_eq(b)))
            .count()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.chunks.iter().flat_map(|chunk| {
            chunk
                .entries
                .iter()
                .map(|e| (chunk.owners.get(e.owner), &e.node))
        })
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
