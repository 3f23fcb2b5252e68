//! Zeroed memory straight from the kernel (an anonymous mapping): a page costs memory only
//! once it is written. For the big per-thread tables and buffers of the UDP path, which are
//! mostly never touched: `vec![0; n]` may be served from a malloc arena that zeroes, and so
//! makes resident, all of it.

use std::ptr::NonNull;

/// Types for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for plain data (integers and arrays or structs of them) whose all-zero
/// bit pattern is a valid value.
pub unsafe trait ZeroValid: Copy {}

// SAFETY: all bit patterns are valid integers.
unsafe impl ZeroValid for u8 {}
// SAFETY: as above.
unsafe impl ZeroValid for u64 {}
// SAFETY: as above.
unsafe impl ZeroValid for u32 {}
// SAFETY: an array of zero-valid items is zero-valid.
unsafe impl<T: ZeroValid, const N: usize> ZeroValid for [T; N] {}

/// A fixed-length slice of zeroed `T` in its own mapping.
pub struct ZeroedPages<T: ZeroValid> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: ZeroedPages owns its mapping exclusively, like a Box<[T]>.
unsafe impl<T: ZeroValid + Send> Send for ZeroedPages<T> {}
// SAFETY: shared access only reads through &self, like a Box<[T]>.
unsafe impl<T: ZeroValid + Sync> Sync for ZeroedPages<T> {}

impl<T: ZeroValid> ZeroedPages<T> {
    pub fn new(len: usize) -> Self {
        let bytes = len.saturating_mul(size_of::<T>()).max(1);
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match NonNull::new(p.cast::<T>()) {
            Some(ptr) if p != libc::MAP_FAILED => Self { ptr, len },
            // Out of address space at start-up: nothing sensible to serve with.
            _ => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(bytes, 4096)
                    .unwrap_or(std::alloc::Layout::new::<u8>()),
            ),
        }
    }
}

impl<T: ZeroValid> std::ops::Deref for ZeroedPages<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds `len` zero-initialized (ZeroValid) or written T, is
        // page-aligned (enough for any T), and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroValid> std::ops::DerefMut for ZeroedPages<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, writable, and borrowed uniquely through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroValid> Drop for ZeroedPages<T> {
    fn drop(&mut self) {
        let bytes = self.len.saturating_mul(size_of::<T>()).max(1);
        // SAFETY: unmaps exactly the mapping made in new().
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), bytes);
        }
    }
}

impl<T: ZeroValid + std::fmt::Debug> std::fmt::Debug for ZeroedPages<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZeroedPages({} items)", self.len)
    }
}

/// A growable run of `T` in a mapping reserved at its largest size up front: only the
/// pages written become resident, it never moves or copies as it grows, and dropping it
/// gives every page back to the kernel (a malloc arena of a thread that has ended may keep
/// freed memory resident).
pub struct PagesVec<T: ZeroValid> {
    pages: ZeroedPages<T>,
    len: usize,
}

impl<T: ZeroValid> PagesVec<T> {
    /// Room for at most `limit` items (address space only, until written).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            pages: ZeroedPages::new(limit),
            len: 0,
        }
    }

    /// Appends `items`; false (and nothing appended) when they do not fit.
    pub fn extend_from_slice(&mut self, items: &[T]) -> bool {
        let end = self.len + items.len();
        let Some(room) = self.pages.get_mut(self.len..end) else {
            return false;
        };
        room.copy_from_slice(items);
        self.len = end;
        true
    }

    pub fn push(&mut self, item: T) -> bool {
        self.extend_from_slice(&[item])
    }
}

impl<T: ZeroValid> std::ops::Deref for PagesVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.pages[..self.len]
    }
}

impl<T: ZeroValid> std::ops::DerefMut for PagesVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.pages[..self.len]
    }
}

impl<T: ZeroValid> std::fmt::Debug for PagesVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PagesVec({} of {} items)", self.len, self.pages.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_zeroed_and_keeps_writes() {
        let mut p: ZeroedPages<u64> = ZeroedPages::new(100_000);
        assert_eq!(p.len(), 100_000);
        assert!(p.iter().all(|&v| v == 0));
        p[99_999] = 7;
        p[0] = 3;
        assert_eq!((p[0], p[99_999], p[50_000]), (3, 7, 0));
    }

    #[test]
    fn a_pages_vec_grows_to_its_limit_and_no_further() {
        let mut v: PagesVec<u8> = PagesVec::with_limit(10_000);
        assert!(v.is_empty());
        for i in 0..1000u32 {
            assert!(v.extend_from_slice(&i.to_be_bytes()[..2]));
        }
        assert_eq!(v.len(), 2000);
        assert_eq!(&v[2..4], &1u32.to_be_bytes()[..2]);
        assert!(v.extend_from_slice(&[9; 8000]));
        assert!(!v.push(1), "full");
        assert!(!v.extend_from_slice(&[1, 2]));
        assert_eq!(v.len(), 10_000);
        if let Some(last) = v.last_mut() {
            *last = 5;
        }
        assert_eq!(v[9_999], 5);
    }
}
