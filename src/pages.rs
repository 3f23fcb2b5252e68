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
}
