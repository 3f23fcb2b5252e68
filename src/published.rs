//! A value that one writer replaces now and then (a reload's snapshot, the health view)
//! and query threads read once per batch, without touching a reference count.
//!
//! Everyone may [`Published::load`] it as an `arc-swap` guard. The UDP threads instead
//! register a [`Reader`] and [`Reader::pin`] the value for one batch: a store to their own
//! slot and one pointer load, where an `arc-swap` load costs about 150 instructions (a
//! query with one outstanding pays it whole, twice). A replaced value comes back from
//! [`Published::store`] as a [`Retired`], whose drop waits until no reader can still be
//! using it; an idle reader (blocked in its receive, unpinned) holds nothing.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

/// The current value, for guards and for pinning readers.
pub struct Published<T> {
    /// Owns the current value.
    owner: ArcSwap<T>,
    /// The same value, for readers that pin it.
    current: AtomicPtr<T>,
    /// Each registered reader's slot: its pins so far times two, plus one while pinned.
    readers: Mutex<Vec<Arc<AtomicU64>>>,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Self {
        let value = Arc::new(value);
        Self {
            current: AtomicPtr::new(Arc::as_ptr(&value).cast_mut()),
            owner: ArcSwap::new(value),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// The current value as a guard (for everyone but the pinning readers).
    pub fn load(&self) -> arc_swap::Guard<Arc<T>> {
        self.owner.load()
    }

    pub fn load_full(&self) -> Arc<T> {
        self.owner.load_full()
    }

    /// Makes `value` current. The value it replaces is handed back, to be dropped where
    /// waiting is fine: dropping it waits until no reader is pinned on it any more.
    pub fn store(&self, value: Arc<T>) -> Retired<T> {
        let new = Arc::as_ptr(&value).cast_mut();
        let old = self.owner.swap(value);
        self.current.store(new, Ordering::SeqCst);
        // After the pointer moved: a reader unpinned now pins the new value next time; one
        // pinned now is done with the old one when its slot changes.
        let pinned = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|slot| {
                let seen = slot.load(Ordering::SeqCst);
                (seen & 1 == 1).then(|| (slot.clone(), seen))
            })
            .collect();
        Retired {
            value: Some(old),
            pinned,
        }
    }

    /// A reader for one thread.
    pub fn reader(self: &Arc<Self>) -> Reader<T> {
        let slot = Arc::new(AtomicU64::new(0));
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(slot.clone());
        Reader {
            published: self.clone(),
            slot,
            pins: 0,
        }
    }
}

/// One thread's way to pin the current value.
pub struct Reader<T> {
    published: Arc<Published<T>>,
    slot: Arc<AtomicU64>,
    pins: u64,
}

impl<T> Reader<T> {
    /// The current value, usable until the guard drops (keep that short: a replaced
    /// value is not freed while a reader is pinned on it).
    #[inline]
    pub fn pin(&mut self) -> Pinned<'_, T> {
        self.pins += 1;
        // Pinned before the pointer is read (both SeqCst): a store that does not see the
        // pin made its new pointer visible to the load below.
        self.slot.store(self.pins * 2 + 1, Ordering::SeqCst);
        let ptr = self.published.current.load(Ordering::SeqCst);
        // SAFETY: `ptr` is the current value or one replaced after the pin above; a
        // replaced value lives in its `Retired` until this slot moves on (at the guard's
        // drop), and an `Arc` keeps it at a fixed address.
        let value = unsafe { &*ptr };
        Pinned {
            value,
            slot: &self.slot,
            unpinned: self.pins * 2 + 2,
        }
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        self.published
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

/// A pinned value (see [`Reader::pin`]).
pub struct Pinned<'r, T> {
    value: &'r T,
    slot: &'r AtomicU64,
    unpinned: u64,
}

impl<T> std::ops::Deref for Pinned<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> Drop for Pinned<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: every read of the value happens before a writer sees the slot move.
        self.slot.store(self.unpinned, Ordering::Release);
    }
}

/// A replaced value that readers may still be pinned on. Dropping it waits until they
/// are not (a batch's time: microseconds), then lets go of the value.
pub struct Retired<T> {
    value: Option<Arc<T>>,
    /// The readers pinned when the value was replaced, with their slot's value then.
    pinned: Vec<(Arc<AtomicU64>, u64)>,
}

impl<T> Retired<T> {
    /// Waits until no reader is pinned on the value; then the value, to drop or keep.
    pub fn into_value(mut self) -> Option<Arc<T>> {
        self.wait();
        self.value.take()
    }

    fn wait(&mut self) {
        for (slot, seen) in self.pinned.drain(..) {
            let mut spins = 0u32;
            while slot.load(Ordering::Acquire) == seen {
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
    }
}

impl<T> Drop for Retired<T> {
    fn drop(&mut self) {
        self.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Counts its drops; reading it after the drop would see `alive` false.
    struct Tracked {
        alive: AtomicBool,
        drops: Arc<AtomicU64>,
        number: u64,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.alive.store(false, Ordering::SeqCst);
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn tracked(value: u64, drops: &Arc<AtomicU64>) -> Tracked {
        Tracked {
            alive: AtomicBool::new(true),
            drops: drops.clone(),
            number: value,
        }
    }

    #[test]
    fn a_replaced_value_lives_until_its_pinned_reader_lets_go() {
        let drops = Arc::new(AtomicU64::new(0));
        let published = Arc::new(Published::new(tracked(1, &drops)));
        let mut reader = published.reader();
        let pinned = reader.pin();
        assert_eq!(pinned.number, 1);
        let retired = published.store(Arc::new(tracked(2, &drops)));
        let dropper = std::thread::spawn(move || drop(retired));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "freed while pinned");
        assert!(pinned.alive.load(Ordering::SeqCst));
        drop(pinned);
        dropper.join().expect("dropper");
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(reader.pin().number, 2);
        assert_eq!(published.load().number, 2);
    }

    #[test]
    fn an_unpinned_reader_does_not_hold_a_replaced_value() {
        let drops = Arc::new(AtomicU64::new(0));
        let published = Arc::new(Published::new(tracked(1, &drops)));
        let mut reader = published.reader();
        assert_eq!(reader.pin().number, 1);
        drop(published.store(Arc::new(tracked(2, &drops))));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(reader.pin().number, 2);
    }

    #[test]
    fn readers_never_see_a_freed_value_while_a_writer_replaces_it() {
        let drops = Arc::new(AtomicU64::new(0));
        let published = Arc::new(Published::new(tracked(0, &drops)));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let mut reader = published.reader();
                let (stop, started) = (stop.clone(), started.clone());
                std::thread::spawn(move || {
                    let (mut pins, mut last) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) && pins < 5_000_000 {
                        let value = reader.pin();
                        assert!(value.alive.load(Ordering::SeqCst), "a freed value");
                        assert!(value.number >= last, "went back");
                        last = value.number;
                        if pins == 0 {
                            started.fetch_add(1, Ordering::SeqCst);
                        }
                        pins += 1;
                    }
                    pins
                })
            })
            .collect();
        // The replacements start once every reader is reading: on a busy machine a thread
        // may otherwise first run after the writer is done.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while started.load(Ordering::SeqCst) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the readers did not start"
            );
            std::thread::yield_now();
        }
        for i in 1..=2_000u64 {
            drop(published.store(Arc::new(tracked(i, &drops))));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("reader") > 0);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2_000);
    }
}
