//! Loom models of the storage and pool protocols (`cfg(loom)` only; see
//! `src/sync.rs`). Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_models`.
//!
//! The reference count is the real code: [`add_handle`] and [`drop_handle`],
//! which `Storage::clone` and `Storage::drop` call, run on loom's atomics. A
//! block's data is a loom `UnsafeCell`, so loom reports any read or write of
//! it that is not ordered after the previous owner's accesses. The pool's
//! thread caches and depot are reproduced with the same structure (a cache is
//! a thread's own list, the depot a locked list, the trimmer pops, frees or
//! keeps under that lock): the real ones sit in statics and `thread_local!`,
//! which loom cannot drive (see `src/sync.rs`). Likewise a node's gradient
//! slot is a locked `Option` of a block, accumulated as `autograd::accumulate`
//! does: the first gradient is kept by handle, later ones are added in place
//! only if the accumulator is unique, otherwise into a copy.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::storage::{add_handle, drop_handle};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::model::{Arc, Mutex, UnsafeCell, model, thread};

/// A pool block: reference count and two f32 of data.
struct Block {
    rc: AtomicUsize,
    data: UnsafeCell<[f32; 2]>,
}

/// One handle to a block, like `Storage`.
struct Handle(*const Block);

// SAFETY: as for `Storage`: the data is written only through a unique handle.
unsafe impl Send for Handle {}

/// A free block (reference count zero), owned by a cache or the depot.
struct Free(*const Block);

// SAFETY: a free block is owned by exactly one list at a time.
unsafe impl Send for Free {}

impl Handle {
    fn new(v: [f32; 2]) -> Handle {
        Handle(Box::into_raw(Box::new(Block {
            rc: AtomicUsize::new(1),
            data: UnsafeCell::new(v),
        })))
    }

    fn block(&self) -> &Block {
        // SAFETY: a handle keeps its block alive.
        unsafe { &*self.0 }
    }

    fn share(&self) -> Handle {
        add_handle(&self.block().rc);
        Handle(self.0)
    }

    fn read(&self) -> [f32; 2] {
        // SAFETY: shared handles only read.
        self.block().data.with(|p| unsafe { *p })
    }

    /// `Storage::get_mut`: the data, if this is the only handle.
    fn write_if_unique(&mut self, f: impl FnOnce(&mut [f32; 2])) -> bool {
        if self.block().rc.load(Ordering::Acquire) != 1 {
            return false;
        }
        // SAFETY: the only handle, held mutably.
        self.block().data.with_mut(|p| f(unsafe { &mut *p }));
        true
    }

    /// `Storage::drop`: the block if this was the last handle.
    fn release(self) -> Option<Free> {
        let p = self.0;
        core::mem::forget(self);
        // SAFETY: our handle kept the block alive until here.
        drop_handle(unsafe { &(*p).rc }).then_some(Free(p))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("models release handles explicitly");
        }
    }
}

impl Free {
    /// Reuses the block for a new owner: overwrites its data.
    fn reuse(self, v: [f32; 2]) -> Handle {
        // SAFETY: a free block is owned exclusively by whoever popped it.
        let b = unsafe { &*self.0 };
        b.data.with_mut(|p| {
            // SAFETY: as above.
            unsafe { *p = v }
        });
        b.rc.store(1, Ordering::Relaxed);
        Handle(self.0)
    }

    /// Returns the block to the system (writes it, then frees it).
    fn system_free(self, freed: &AtomicUsize) {
        // SAFETY: owned exclusively, as above; the allocator writes freed memory.
        unsafe {
            (*self.0).data.with_mut(|p| *p = [f32::NAN; 2]);
            drop(Box::from_raw(self.0.cast_mut()));
        }
        freed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A tensor made on one thread is read and dropped on another, which caches
/// the freed block and hands it to the depot when it exits, while the trimmer
/// releases depot blocks and the first thread reuses one: every access to the
/// block is ordered after its previous owner's, and each block is freed once.
#[test]
fn cross_thread_free_depot_and_trimmer() {
    model(|| {
        let depot: Arc<Mutex<Vec<Free>>> = Arc::new(Mutex::new(Vec::new()));
        let freed = Arc::new(AtomicUsize::new(0));
        let mut mine = Handle::new([1.0, 2.0]);
        // Written while unique, before it is shared.
        assert!(mine.write_if_unique(|d| d[0] = 3.0));
        let theirs = mine.share();

        let reader = {
            let depot = depot.clone();
            thread::spawn(move || {
                assert_eq!(theirs.read(), [3.0, 2.0]);
                // The thread's cache: what it frees stays local ...
                let cache: Vec<Free> = theirs.release().into_iter().collect();
                // ... until the thread exits and flushes it to the depot.
                depot.lock().extend(cache);
            })
        };
        let trimmer = {
            let (depot, freed) = (depot.clone(), freed.clone());
            thread::spawn(move || {
                let idle: Vec<Free> = depot.lock().drain(..).collect();
                for b in idle {
                    b.system_free(&freed);
                }
            })
        };
        // Copy-on-write: never written while the reader may hold its handle.
        let wrote = mine.write_if_unique(|d| d[1] = 5.0);
        if let Some(free) = mine.release() {
            depot.lock().push(free);
        }
        // Reuse a cached block if one is there (ours or the reader's).
        let reused = depot.lock().pop().map(|b| b.reuse([7.0, 8.0]));
        reader.join().unwrap();
        trimmer.join().unwrap();
        if let Some(h) = reused {
            assert_eq!(h.read(), [7.0, 8.0]);
            h.release().unwrap().system_free(&freed);
        }
        for b in depot.lock().drain(..) {
            b.system_free(&freed);
        }
        assert_eq!(freed.load(Ordering::Relaxed), 1, "freed exactly once");
        let _ = wrote;
    });
}

/// Two threads accumulate into one gradient slot while the first still reads
/// the gradient it handed over (the slot keeps it by handle): the second
/// thread's addition copies instead of writing into the shared block, and the
/// sum is exact in every interleaving.
#[test]
fn gradient_slot_accumulation() {
    model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let slot: Arc<Mutex<Option<Handle>>> = Arc::new(Mutex::new(None));

        let accumulate = |slot: &Mutex<Option<Handle>>, g: &Handle, freed: &Arc<AtomicUsize>| {
            let mut s = slot.lock();
            match s.as_mut() {
                None => *s = Some(g.share()),
                Some(acc) => {
                    let add = g.read();
                    let in_place = acc.write_if_unique(|d| {
                        d[0] += add[0];
                        d[1] += add[1];
                    });
                    if !in_place {
                        let old = acc.read();
                        let sum = Handle::new([old[0] + add[0], old[1] + add[1]]);
                        let prev = core::mem::replace(acc, sum);
                        if let Some(f) = prev.release() {
                            f.system_free(freed);
                        }
                    }
                }
            }
        };

        let other = {
            let (slot, freed) = (slot.clone(), freed.clone());
            thread::spawn(move || {
                let g = Handle::new([1.0, 2.0]);
                accumulate(&slot, &g, &freed);
                // Still reading its gradient after handing it over.
                assert_eq!(g.read(), [1.0, 2.0]);
                if let Some(f) = g.release() {
                    f.system_free(&freed);
                }
            })
        };
        let g = Handle::new([10.0, 20.0]);
        accumulate(&slot, &g, &freed);
        assert_eq!(g.read(), [10.0, 20.0]);
        if let Some(f) = g.release() {
            f.system_free(&freed);
        }
        other.join().unwrap();

        let total = slot.lock().take().unwrap();
        assert_eq!(total.read(), [11.0, 22.0]);
        if let Some(f) = total.release() {
            f.system_free(&freed);
        }
        // Two gradients plus at most one copy, each freed once.
        let n = freed.load(Ordering::Relaxed);
        assert!(n == 2 || n == 3, "{n} blocks freed");
    });
}
