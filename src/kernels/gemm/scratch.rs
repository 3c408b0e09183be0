//! Scratch memory for packing, reused across calls so the steady state makes no
//! allocator calls.
//!
//! Everything the GEMM code needs goes through [`with_scratch`]; its body is the
//! one place to change to take the memory from the crate's pool instead. Today:
//! a per-thread `Vec` under `std`, one global `Vec` behind
//! [`crate::sync::Mutex`] without it. The buffer is taken out of its slot while
//! in use (the lock is not held meanwhile), so a nested or concurrent call never
//! blocks: it finds the slot empty and allocates its own buffer, which is then
//! kept if it is the larger one.

use alloc::vec::Vec;

/// Runs `f` on a 64-byte-aligned slice of exactly `len` floats.
///
/// The contents are unspecified (left over from earlier calls) but initialised.
/// The buffer grows on demand and is kept for the next call on this thread.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = take();
    // 15 spare floats let the slice start on a 64-byte boundary.
    let need = len + 15;
    if buf.len() < need {
        // Grow geometrically so a sequence of growing calls allocates rarely.
        let new_len = need.max(buf.len() + buf.len() / 2);
        buf.clear();
        buf.resize(new_len, 0.0);
    }
    let off = buf.as_ptr().align_offset(64).min(15);
    let r = f(&mut buf[off..off + len]);
    give_back(buf);
    r
}

#[cfg(feature = "std")]
std::thread_local! {
    static SLOT: core::cell::Cell<Vec<f32>> = const { core::cell::Cell::new(Vec::new()) };
}

#[cfg(feature = "std")]
fn take() -> Vec<f32> {
    // During thread teardown the slot may be gone: fall back to a fresh buffer.
    SLOT.try_with(|s| s.take()).unwrap_or_default()
}

#[cfg(feature = "std")]
fn give_back(buf: Vec<f32>) {
    let _ = SLOT.try_with(|s| {
        let old = s.take();
        s.set(if old.capacity() > buf.capacity() {
            old
        } else {
            buf
        });
    });
}

#[cfg(not(feature = "std"))]
static SLOT: crate::sync::Mutex<Vec<f32>> = crate::sync::Mutex::new(Vec::new());

#[cfg(not(feature = "std"))]
fn take() -> Vec<f32> {
    core::mem::take(&mut *SLOT.lock())
}

#[cfg(not(feature = "std"))]
fn give_back(buf: Vec<f32>) {
    let mut slot = SLOT.lock();
    if slot.capacity() < buf.capacity() {
        *slot = buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_exact_and_reused() {
        let p1 = with_scratch(100, |b| {
            assert_eq!(b.len(), 100);
            assert_eq!(b.as_ptr() as usize % 64, 0);
            b.fill(1.0);
            b.as_ptr() as usize
        });
        let p2 = with_scratch(50, |b| {
            assert_eq!(b.len(), 50);
            assert_eq!(b.as_ptr() as usize % 64, 0);
            b.as_ptr() as usize
        });
        // Single-threaded test: the second call reuses the first buffer
        // (under no_std the global slot could be shared with another test).
        if cfg!(feature = "std") {
            assert_eq!(p1, p2);
        }
    }

    #[test]
    fn nested_calls_get_distinct_buffers() {
        with_scratch(64, |outer| {
            outer.fill(3.0);
            with_scratch(64, |inner| {
                inner.fill(4.0);
                assert_ne!(outer.as_ptr(), inner.as_ptr());
            });
            assert!(outer.iter().all(|&x| x == 3.0));
        });
    }
}
