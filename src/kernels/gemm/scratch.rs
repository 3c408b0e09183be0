//! Scratch memory for packing, taken from the crate's memory pool
//! ([`crate::pool`]) so it is accounted (in use, peak, budget) like
//! every other buffer of a training step.
//!
//! A call takes one pool block on the calling thread for all the tasks that
//! may run at once, split into one region per concurrent task, and returns it
//! when the call ends. The pool keeps freed blocks per size class and thread,
//! so a warm training loop makes no system-allocator calls for it. Running
//! out of budget is an [`Error::OutOfMemory`](crate::Error::OutOfMemory)
//! before any task starts.
//!
//! Under `std`, a call on one thread whose scratch fits in [`STACK_LEN`]
//! floats (a small product: its pool round trip cost as much as its
//! arithmetic) uses a buffer on the stack instead, outside the pool's
//! accounting. Without `std` every call uses the pool: a board's stack is
//! small and sized by its firmware.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;
use crate::pool::WorkBuf;

/// Most tasks that share one call's scratch at once (bits of the claim mask;
/// `AtomicUsize` because 32-bit boards have no 64-bit atomics).
pub(super) const MAX_SLOTS: usize = usize::BITS as usize;

/// Floats of one task's region: `len` rounded up to whole 64-byte lines, so
/// every region starts 64-byte aligned.
#[inline]
pub(super) fn region_len(len: usize) -> usize {
    len.div_ceil(16) * 16
}

/// Most scratch floats a call takes from the stack (4 KiB).
pub(super) const STACK_LEN: usize = 1024;

/// Whether a call with `slots` concurrent tasks of `len` scratch floats each
/// uses the stack ([`with_stack`]) rather than the pool.
#[inline]
pub(super) fn on_stack(len: usize, slots: usize) -> bool {
    cfg!(feature = "std") && slots <= 1 && region_len(len) <= STACK_LEN
}

/// A stack buffer of [`STACK_LEN`] floats, 64-byte aligned as pool blocks are.
#[repr(C, align(64))]
struct StackBuf(core::mem::MaybeUninit<[f32; STACK_LEN]>);

/// Runs `f` on one region of `len` scratch floats (zeroed) on the stack.
///
/// # Panics
/// If the region exceeds [`STACK_LEN`] (callers check [`on_stack`]).
pub(super) fn with_stack<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let len = region_len(len);
    assert!(
        len <= STACK_LEN,
        "gemm scratch: {len} floats exceed the stack buffer"
    );
    let mut raw = StackBuf(core::mem::MaybeUninit::uninit());
    let ptr = raw.0.as_mut_ptr().cast::<f32>();
    // SAFETY: `ptr` addresses the STACK_LEN >= len floats of `raw`, which
    // outlives the slice (it ends with this call); the first `len` are
    // initialised (zero bits are 0.0) before the slice over exactly them is
    // made, and nothing else refers to `raw`.
    let buf = unsafe {
        ptr.write_bytes(0, len);
        core::slice::from_raw_parts_mut(ptr, len)
    };
    f(buf)
}

/// Floats of the pool block a call with `slots` concurrent tasks of `len`
/// scratch floats each takes (see [`with_slots`]).
#[inline]
pub(super) fn block_len(len: usize, slots: usize) -> usize {
    region_len(len) * slots.clamp(1, MAX_SLOTS)
}

/// `slots` regions of `len` floats each, handed to concurrently running
/// tasks: a task claims a free region, runs, and releases it.
pub(super) struct Slots<'a> {
    ptr: *mut f32,
    region: usize,
    slots: usize,
    busy: AtomicUsize,
    _life: PhantomData<&'a mut [f32]>,
}

// SAFETY: regions are handed out exclusively through the `busy` mask (a
// claimed region is used by one task until it releases it), so sharing the
// `Slots` between the threads running the tasks is sound.
unsafe impl Sync for Slots<'_> {}

impl Slots<'_> {
    /// Runs `f` on a region no other running task holds.
    ///
    /// # Panics
    /// If more than `slots` tasks run at once (the caller bounds the threads
    /// by `slots`).
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let full = if self.slots >= MAX_SLOTS {
            usize::MAX
        } else {
            (1usize << self.slots) - 1
        };
        let mut cur = self.busy.load(Ordering::Relaxed);
        let i = loop {
            let free = !cur & full;
            assert!(free != 0, "gemm scratch: more concurrent tasks than slots");
            let i = free.trailing_zeros();
            match self.busy.compare_exchange_weak(
                cur,
                cur | (1 << i),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break i as usize,
                Err(now) => cur = now,
            }
        };
        struct Release<'b>(&'b AtomicUsize, usize);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.fetch_and(!self.1, Ordering::Release);
            }
        }
        let _release = Release(&self.busy, 1 << i);
        // SAFETY: region `i` lies inside the block (i < slots, each region
        // `region` floats), and the claim bit makes this task its only user
        // until `_release` drops.
        let buf =
            unsafe { core::slice::from_raw_parts_mut(self.ptr.add(i * self.region), self.region) };
        f(buf)
    }
}

/// Runs `f` with `slots` (at most [`MAX_SLOTS`]) regions of at least `len`
/// floats each, 64-byte aligned, from one pool block; `OutOfMemory` if the
/// pool cannot provide it. Contents are unspecified but initialised.
pub(super) fn with_slots<R>(
    len: usize,
    slots: usize,
    f: impl FnOnce(&Slots<'_>) -> R,
) -> Result<R> {
    let slots = slots.clamp(1, MAX_SLOTS);
    let region = region_len(len);
    let mut buf = WorkBuf::try_new(region * slots)?;
    let data = buf.as_mut_slice();
    let s = Slots {
        ptr: data.as_mut_ptr(),
        region,
        slots,
        busy: AtomicUsize::new(0),
        _life: PhantomData,
    };
    Ok(f(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_aligned_and_distinct() {
        with_slots(100, 3, |s| {
            s.with(|b| {
                assert_eq!(b.len(), 112);
                assert_eq!(b.as_ptr() as usize % 64, 0);
                b.fill(1.0);
                // A nested claim gets another region.
                s.with(|inner| {
                    assert_ne!(inner.as_ptr(), b.as_ptr());
                    assert_eq!(inner.as_ptr() as usize % 64, 0);
                });
            });
        })
        .unwrap();
    }

    /// A stack region is a pool region's size, aligned, zeroed; only small
    /// one-thread calls with `std` take it.
    #[test]
    fn stack_regions_match_pool_regions() {
        for len in [1, 100, STACK_LEN] {
            with_stack(len, |b| {
                assert_eq!(b.len(), region_len(len));
                assert_eq!(b.as_ptr() as usize % 64, 0);
                assert!(b.iter().all(|&x| x.to_bits() == 0));
            });
        }
        assert_eq!(on_stack(STACK_LEN, 1), cfg!(feature = "std"));
        assert!(!on_stack(STACK_LEN + 1, 1));
        assert!(!on_stack(16, 2));
    }
}
