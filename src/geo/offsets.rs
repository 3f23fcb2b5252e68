//! A value (a record's id in a table build) by data-section offset: looked up once per
//! network, so it must be cheap when it is larger than the CPU caches (a City database has
//! hundreds of thousands of records, and neighbouring networks rarely share one).
//!
//! hashbrown's map missed the cache on nearly every probe, one probe at a time (a third of a
//! City database's load on one core). Here a slot is 8 bytes (the offset + 1, 0 when empty,
//! and the value), found by linear probing from a multiplicative hash, and
//! [`OffsetMap::prefetch`] asks for a slot ahead of its lookup: the table builder warms the
//! slot of the network a few ahead of the one it looks up, so the misses overlap.

/// Slots free at least this share of the time (1/2): probes stay short.
const MAX_LOAD_SHIFT: u32 = 1;

#[derive(Debug)]
pub(super) struct OffsetMap {
    /// [offset + 1, value]; [0, _] is empty.
    slots: Vec<[u32; 2]>,
    /// log2 of `slots.len()`.
    bits: u32,
    len: usize,
}

impl Default for OffsetMap {
    fn default() -> Self {
        Self {
            slots: vec![[0, 0]; 1 << 10],
            bits: 10,
            len: 0,
        }
    }
}

impl OffsetMap {
    fn home(&self, key: u32) -> usize {
        // Fibonacci hashing: the top bits of the product.
        (u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize
    }

    /// Asks the CPU to bring `offset`'s slot into the cache (it does not wait for it).
    pub(super) fn prefetch(&self, offset: u32) {
        let Some(slot) = self.slots.get(self.home(offset.wrapping_add(1))) else {
            return;
        };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch only hints the cache; it reads nothing and cannot fault, and
        // SSE is part of x86_64.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(slot).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    pub(super) fn get(&self, offset: u32) -> Option<u32> {
        let key = offset.checked_add(1)?;
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let [k, v] = *self.slots.get(i)?;
            if k == key {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Sets `offset`'s value (an offset of u32::MAX is not kept).
    pub(super) fn insert(&mut self, offset: u32, value: u32) {
        let Some(key) = offset.checked_add(1) else {
            return;
        };
        if (self.len + 1) << MAX_LOAD_SHIFT > self.slots.len() {
            self.grow();
        }
        if self.put(key, value) {
            self.len += 1;
        }
    }

    /// Puts `key` in its slot; true when it was not there.
    fn put(&mut self, key: u32, value: u32) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while let Some(slot) = self.slots.get_mut(i) {
            if slot[0] == key || slot[0] == 0 {
                let new = slot[0] == 0;
                *slot = [key, value];
                return new;
            }
            i = (i + 1) & mask;
        }
        false
    }

    fn grow(&mut self) {
        self.bits += 1;
        let old = std::mem::replace(&mut self.slots, vec![[0, 0]; 1 << self.bits]);
        for [key, value] in old.into_iter().filter(|s| s[0] != 0) {
            self.put(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_through_growth_and_nothing_else() {
        let mut map = OffsetMap::default();
        // Offsets as records lie: increasing, of varying sizes, 0 included.
        let offsets: Vec<u32> = (0..50_000u32).map(|i| i * 37 + (i % 7) * 3).collect();
        for (i, &o) in offsets.iter().enumerate() {
            map.prefetch(o);
            map.insert(o, i as u32);
        }
        map.insert(offsets[5], 5);
        assert_eq!(map.len, offsets.len());
        for (i, &o) in offsets.iter().enumerate() {
            assert_eq!(map.get(o), Some(i as u32), "offset {o}");
        }
        assert_eq!(map.get(1), None);
        assert_eq!(map.get(u32::MAX), None);
        map.insert(u32::MAX, 1);
        assert_eq!(map.get(u32::MAX), None);
    }
}
