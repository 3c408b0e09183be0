//! Allocation-failure injection for tests: make the pool refuse allocations
//! from a chosen point on, exactly as an exhausted budget does, to check that
//! every `try_` path returns [`Error::OutOfMemory`](crate::Error::OutOfMemory)
//! and leaves its state as it was.
//!
//! The counter is global (every thread's allocations count, also kernel
//! worker threads'), so tests that use it must not run beside other tests
//! that allocate. Disarmed, the check costs one relaxed load per allocation.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Allocations still allowed before failures start; `usize::MAX` = disarmed.
static LEFT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Arms (`Some(n)`) or disarms (`None`) failure injection: the next `n`
/// allocations succeed, then every allocation fails with
/// [`Error::OutOfMemory`](crate::Error::OutOfMemory) until disarmed (memory
/// that ran out stays out, so code that cleans up after a failure must not
/// need to allocate). `Some(0)` fails the very next allocation.
///
/// To count the allocations of a piece of code, arm with a large `n`, run
/// it, and subtract [`allocations_left`] from `n`.
///
/// A test hook, not a budget: it counts allocations, not bytes. Use
/// [`set_budget`](super::set_budget) to limit memory.
#[doc(hidden)]
pub fn fail_allocations_after(n: Option<usize>) {
    // `usize::MAX` is the disarmed marker; one fewer is as good as unlimited.
    LEFT.store(n.map_or(usize::MAX, |n| n.min(usize::MAX - 1)), Relaxed);
}

/// Allocations left before injected failures start (`Some(0)`: failing
/// now), or `None` when injection is off. See [`fail_allocations_after`].
#[doc(hidden)]
pub fn allocations_left() -> Option<usize> {
    match LEFT.load(Relaxed) {
        usize::MAX => None,
        n => Some(n),
    }
}

/// Whether this allocation must fail; counts it when injection is armed.
#[inline]
pub(super) fn should_fail() -> bool {
    LEFT.load(Relaxed) != usize::MAX && take_one()
}

#[cold]
fn take_one() -> bool {
    let prev = LEFT.fetch_update(Relaxed, Relaxed, |n| match n {
        0 | usize::MAX => None,
        n => Some(n - 1),
    });
    prev == Err(0)
}
