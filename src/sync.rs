//! The one seam between `std` and `no_std` for locks, once-cells and
//! per-thread state.
//!
//! Everything else in the crate takes its synchronisation primitives from here, so
//! the choice of implementation is made once:
//!
//! | primitive | with `std` | without `std` |
//! |---|---|---|
//! | [`Mutex`] | `std::sync::Mutex` (parks; poisoning ignored) | `spin::Mutex` |
//! | [`OnceCell`] | `std::sync::OnceLock` | `spin::Once` |
//! | [`thread_cell!`] | `thread_local!` `Cell` | one global atomic (a board has one thread of Rust code) |
//!
//! Atomics of shared state made at run time (a block's reference count, the
//! worker pool's job slots and task counter) come from [`atomic`]: `core`'s,
//! or loom's under `cfg(loom)`, so the loom model tests (`loom_models`, run by
//! `RUSTFLAGS="--cfg loom" cargo test --lib loom_models`) drive the real
//! protocol functions through every interleaving. Statics, `thread_local!` and
//! the `Mutex` above stay on `std`/`spin` under loom: loom's types cannot be
//! built in a `const` context and loom threads share one OS thread, so the
//! models reproduce the lock-protected parts (depot, gradient slot) with
//! loom's `Mutex` from [`model`].
//!
//! Poisoning is ignored on purpose: a panic in one training thread must not make
//! every later lock of a shared gradient shard panic too (a defect of the
//! original, see DESIGN.md). The data behind our locks is always left in a
//! consistent state between statements, so a recovered guard is safe to use.

#[cfg(feature = "std")]
#[allow(dead_code)]
mod imp {
    /// A mutual-exclusion lock that does not poison.
    pub struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

    /// Guard returned by [`Mutex::lock`].
    pub type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Locks, recovering the guard if a previous holder panicked.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Locks only if nobody holds the lock.
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// A cell written once, then read without locking.
    pub struct OnceCell<T>(std::sync::OnceLock<T>);

    impl<T> OnceCell<T> {
        /// An empty cell.
        pub const fn new() -> Self {
            OnceCell(std::sync::OnceLock::new())
        }
        /// The value, initialising it with `f` on first use.
        #[inline]
        pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            self.0.get_or_init(f)
        }
        /// The value if it was initialised.
        #[inline]
        pub fn get(&self) -> Option<&T> {
            self.0.get()
        }
    }
}

#[cfg(not(feature = "std"))]
#[allow(dead_code)]
mod imp {
    /// A mutual-exclusion lock (a spin lock without `std`).
    pub struct Mutex<T: ?Sized>(spin::Mutex<T>);

    /// Guard returned by [`Mutex::lock`].
    pub type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(value: T) -> Self {
            Mutex(spin::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Locks, spinning until the lock is free.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        /// Locks only if nobody holds the lock.
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
    }

    /// A cell written once, then read without locking.
    pub struct OnceCell<T>(spin::Once<T>);

    impl<T> OnceCell<T> {
        /// An empty cell.
        pub const fn new() -> Self {
            OnceCell(spin::Once::new())
        }
        /// The value, initialising it with `f` on first use.
        #[inline]
        pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            self.0.call_once(f)
        }
        /// The value if it was initialised.
        #[inline]
        pub fn get(&self) -> Option<&T> {
            self.0.get()
        }
    }
}

#[allow(unused_imports)]
pub(crate) use imp::{Mutex, MutexGuard, OnceCell};

/// Atomics for shared state created at run time: `core::sync::atomic`, or
/// loom's (which record every access for the model checker) under `cfg(loom)`.
#[cfg(not(loom))]
pub(crate) mod atomic {
    #[allow(unused_imports)]
    pub(crate) use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering, fence};
}

/// Atomics for shared state created at run time: `core::sync::atomic`, or
/// loom's (which record every access for the model checker) under `cfg(loom)`.
#[cfg(loom)]
pub(crate) mod atomic {
    #[allow(unused_imports)]
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering, fence};
}

/// Loom's threads, `Arc`, cells and a `Mutex` with this module's
/// non-poisoning `lock` (models of the lock-protected protocols).
#[cfg(loom)]
pub(crate) mod model {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::{model, thread};

    /// [`super::Mutex`]'s API over loom's mutex.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        /// Locks, recovering the guard if a previous holder panicked.
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// Declares a per-thread `usize` cell: a `thread_local!` `Cell` under `std`, a
/// global atomic without it. The generated item is a unit struct with `get()`,
/// `set(v)` and `replace(v)`.
macro_rules! thread_cell {
    ($(#[$m:meta])* $vis:vis static $name:ident: usize = $init:expr;) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        #[allow(non_camel_case_types)]
        $vis struct $name;

        #[allow(dead_code)]
        impl $name {
            #[cfg(feature = "std")]
            #[inline]
            fn cell<R>(f: impl FnOnce(&core::cell::Cell<usize>) -> R) -> R {
                std::thread_local! {
                    static CELL: core::cell::Cell<usize> = const { core::cell::Cell::new($init) };
                }
                CELL.with(f)
            }

            /// The current value.
            #[cfg(feature = "std")]
            #[inline]
            pub fn get(self) -> usize {
                Self::cell(|c| c.get())
            }

            /// Sets the value.
            #[cfg(feature = "std")]
            #[inline]
            pub fn set(self, v: usize) {
                Self::cell(|c| c.set(v))
            }

            /// Sets the value and returns the old one.
            #[cfg(feature = "std")]
            #[inline]
            pub fn replace(self, v: usize) -> usize {
                Self::cell(|c| c.replace(v))
            }

            #[cfg(not(feature = "std"))]
            #[inline]
            fn atom() -> &'static core::sync::atomic::AtomicUsize {
                static ATOM: core::sync::atomic::AtomicUsize =
                    core::sync::atomic::AtomicUsize::new($init);
                &ATOM
            }

            /// The current value.
            #[cfg(not(feature = "std"))]
            #[inline]
            pub fn get(self) -> usize {
                Self::atom().load(core::sync::atomic::Ordering::Relaxed)
            }

            /// Sets the value.
            #[cfg(not(feature = "std"))]
            #[inline]
            pub fn set(self, v: usize) {
                Self::atom().store(v, core::sync::atomic::Ordering::Relaxed)
            }

            /// Sets the value and returns the old one.
            #[cfg(not(feature = "std"))]
            #[inline]
            pub fn replace(self, v: usize) -> usize {
                Self::atom().swap(v, core::sync::atomic::Ordering::Relaxed)
            }
        }
    };
}
pub(crate) use thread_cell;

/// A process-unique, never-reused 64-bit counter value (tensor ids, node ids).
///
/// Under `std` each thread reserves ids in blocks of 1024 from one global atomic,
/// so the hot path is a thread-local increment. Without `std` it is one global
/// atomic (or a spin lock on targets without 64-bit atomics, such as Cortex-M).
#[inline]
pub(crate) fn next_id() -> u64 {
    #[cfg(feature = "std")]
    {
        use core::cell::Cell;
        use core::sync::atomic::{AtomicU64, Ordering};
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        std::thread_local! {
            // (next, end) of this thread's reserved range.
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        RANGE.with(|r| {
            let (next, end) = r.get();
            if next < end {
                r.set((next + 1, end));
                next
            } else {
                let start = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * BLOCK;
                r.set((start + 1, start + BLOCK));
                start
            }
        })
    }
    #[cfg(all(not(feature = "std"), target_has_atomic = "64"))]
    {
        use core::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
    #[cfg(all(not(feature = "std"), not(target_has_atomic = "64")))]
    {
        static NEXT: Mutex<u64> = Mutex::new(1);
        let mut g = NEXT.lock();
        let id = *g;
        *g += 1;
        id
    }
}
