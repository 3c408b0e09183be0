//! Reference-counted f32 storage over a pool block.
//!
//! A [`Storage`] is one pointer to a pool block whose header holds the reference
//! count, so cloning a tensor never allocates and the training loop's metadata
//! costs no system allocation. Shared storage is read-only: writers must hold the
//! only handle ([`Storage::get_mut`]); the tensor layer copies on write otherwise.
//! That rule is what makes `Tensor: Send + Sync` sound.

use core::ptr::NonNull;

use crate::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::error::Result;
use crate::pool::{self, Header};

/// A shared, immutable-while-shared buffer of f32 from the pool.
pub(crate) struct Storage {
    hdr: NonNull<Header>,
}

// SAFETY: the buffer is only written through `get_mut`, which requires `&mut self`
// and a reference count of one (no other handle on any thread). Shared access is
// read-only, and the reference count is atomic.
unsafe impl Send for Storage {}
// SAFETY: as above: `&Storage` only permits reads.
unsafe impl Sync for Storage {}

impl Storage {
    /// A buffer of `len` elements whose contents are unspecified (but
    /// initialised): the caller overwrites them.
    #[inline]
    pub(crate) fn try_for_overwrite(len: usize) -> Result<Storage> {
        Ok(Storage {
            hdr: pool::alloc(len)?,
        })
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: `hdr` is a live block for as long as this handle exists.
        unsafe { self.hdr.as_ref() }
    }

    /// Number of elements.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.header().len
    }

    /// The elements.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: the block holds `len` initialised f32 (the pool never hands out
        // uninitialised memory), 64-byte aligned, and nobody writes them while a
        // shared reference exists (writes need the only handle and `&mut self`).
        unsafe { core::slice::from_raw_parts(pool::data_ptr(self.hdr), self.len()) }
    }

    /// Whether this is the only handle to the buffer.
    #[inline]
    pub(crate) fn is_unique(&self) -> bool {
        // Acquire: pairs with the Release decrement of handles dropped on other
        // threads, so their reads happen before our subsequent writes.
        self.header().refcount.load(Ordering::Acquire) == 1
    }

    /// The elements for writing, if this is the only handle.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> Option<&mut [f32]> {
        if self.is_unique() {
            // SAFETY: we hold the only handle (refcount 1, and making another
            // needs `&self`, which our `&mut self` excludes), so no other
            // reference to the data exists; contents are initialised.
            Some(unsafe { core::slice::from_raw_parts_mut(pool::data_ptr(self.hdr), self.len()) })
        } else {
            None
        }
    }

    /// The elements of a buffer known to be unique (freshly allocated).
    #[inline]
    pub(crate) fn unique_mut(&mut self) -> &mut [f32] {
        self.get_mut()
            .expect("freshly allocated storage has a single handle")
    }

    /// Whether two handles share one buffer.
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Storage) -> bool {
        self.hdr == other.hdr
    }
}

impl Clone for Storage {
    #[inline]
    fn clone(&self) -> Storage {
        add_handle(&self.header().refcount);
        Storage { hdr: self.hdr }
    }
}

impl Drop for Storage {
    #[inline]
    fn drop(&mut self) {
        if !drop_handle(&self.header().refcount) {
            return;
        }
        // SAFETY: the count reached zero, so this was the last handle: nothing
        // references the block and it is never used again through `self`.
        unsafe { pool::free(self.hdr) }
    }
}

/// Counts one more handle on a block (the reference-count half of
/// `Storage::clone`; the loom models run this same function).
#[inline]
pub(crate) fn add_handle(rc: &AtomicUsize) {
    // Relaxed, as in `Arc`: a new handle can only come from an existing one.
    let old = rc.fetch_add(1, Ordering::Relaxed);
    if old > isize::MAX as usize {
        // Unreachable without leaking handles on purpose; mirrors `Arc`.
        panic!("storage reference count overflow");
    }
}

/// Drops one handle; true if it was the last one, in which case every access
/// made through the other handles (on any thread) happens before the return,
/// and the caller owns the block exclusively.
#[inline]
pub(crate) fn drop_handle(rc: &AtomicUsize) -> bool {
    // A count of one cannot rise while we hold that one handle, so the common
    // case of a never-shared buffer needs no read-modify-write.
    if rc.load(Ordering::Acquire) != 1 {
        if rc.fetch_sub(1, Ordering::Release) != 1 {
            return false;
        }
        fence(Ordering::Acquire);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(len: usize, v: f32) -> Storage {
        let mut s = Storage::try_for_overwrite(len).unwrap();
        s.unique_mut().fill(v);
        s
    }

    #[test]
    fn clone_shares_and_get_mut_requires_uniqueness() {
        let mut a = full(10, 1.5);
        assert!(a.get_mut().is_some());
        let b = a.clone();
        assert!(a.ptr_eq(&b));
        assert!(a.get_mut().is_none());
        drop(b);
        a.get_mut().unwrap()[3] = 2.0;
        assert_eq!(a.as_slice()[3], 2.0);
        assert_eq!(a.as_slice().len(), 10);
    }

    #[test]
    fn data_is_64_byte_aligned() {
        let big = if cfg!(miri) { 4096 } else { 100_000 };
        for n in [0, 1, 3, 17, 1000, big] {
            let s = full(n, 0.0);
            assert_eq!(s.as_slice().as_ptr() as usize % 64, 0, "len {n}");
        }
    }
}
