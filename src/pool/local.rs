//! Thread front caches (`std` only): one free list per class per thread,
//! touched without locks, spilling to the depot.

use super::*;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::sync::atomic::AtomicIsize;

/// Cached bytes one thread may keep per class before overflowing to the depot.
/// (1/128 of that under miri, where the pool test shrinks by the same
/// factor.)
const BIN_BYTES: usize = if cfg!(miri) { 64 << 10 } else { 8 << 20 };
/// Unreported in-use change past which a thread updates the global total.
const FLUSH_BYTES: isize = 256 << 10;

/// One thread's counters, written only by that thread (relaxed load + store)
/// and read by `stats()` on any thread.
#[derive(Default)]
pub(super) struct ThreadStats {
    hits: AtomicUsize,
    misses: AtomicUsize,
    cached: AtomicUsize,
    pending: AtomicIsize,
}

static REGISTRY: Mutex<Vec<Arc<ThreadStats>>> = Mutex::new(Vec::new());

struct Cache {
    bins: [Bin; NUM_CLASSES],
    last_use: [usize; NUM_CLASSES],
    epoch: usize,
    stats: Arc<ThreadStats>,
}

impl Cache {
    fn new() -> Cache {
        let stats = Arc::new(ThreadStats::default());
        REGISTRY.lock().push(stats.clone());
        Cache {
            bins: [const { Bin::EMPTY }; NUM_CLASSES],
            last_use: [0; NUM_CLASSES],
            epoch: trimmer::epoch(),
            stats,
        }
    }

    #[inline]
    fn bump(c: &AtomicUsize, by: usize) {
        c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
    }

    /// Adds `delta` to this thread's unreported change. The change is
    /// never left negative: a free beyond the thread's unreported
    /// allocations is reported at once. So every thread's unreported
    /// change is an allocation not yet counted, and a peak taken as the
    /// total plus one thread's change never counts another thread's
    /// unreported frees as still in use (it could otherwise overstate the
    /// peak by up to `FLUSH_BYTES` per thread, e.g. while a thread that
    /// freed a model is exiting).
    #[inline]
    fn add_pending(&self, delta: isize) {
        let p = self.stats.pending.load(Relaxed) + delta;
        if p < 0 {
            self.stats.pending.store(0, Relaxed);
            IN_USE.fetch_sub(p.unsigned_abs(), Relaxed);
        } else if p >= FLUSH_BYTES {
            self.stats.pending.store(0, Relaxed);
            note_in_use_add(p as usize);
        } else {
            self.stats.pending.store(p, Relaxed);
            if delta > 0 {
                note_peak_with_pending(p);
            }
        }
    }

    /// After a trim tick: hand classes unused for the idle period to the depot.
    #[cold]
    fn on_new_epoch(&mut self, now: usize) {
        self.epoch = now;
        let idle = trimmer::idle_ticks();
        for c in 0..NUM_CLASSES {
            if self.bins[c].count > 0 && now.saturating_sub(self.last_use[c]) >= idle {
                self.move_bin_to_depot(c);
            }
        }
    }

    fn move_bin_to_depot(&mut self, c: usize) {
        while let Some(h) = self.bins[c].pop() {
            Self::bump(&self.stats.cached, class_bytes(c).wrapping_neg());
            // SAFETY: `h` was a free block on our list; now owned by us.
            unsafe { depot_push(c, h) };
        }
    }

    fn flush(&mut self) {
        for c in 0..NUM_CLASSES {
            self.move_bin_to_depot(c);
        }
    }

    #[inline]
    fn check_epoch(&mut self) {
        let now = trimmer::epoch();
        if now != self.epoch {
            self.on_new_epoch(now);
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.flush();
        let s = &self.stats;
        HITS.fetch_add(s.hits.load(Relaxed), Relaxed);
        MISSES.fetch_add(s.misses.load(Relaxed), Relaxed);
        // Reporting a change is not an allocation: the peak is raised
        // only by allocations (each seeing the total plus its own
        // thread's change). Raising it here would count this thread's
        // allocations against another thread's frees not yet reported.
        let p = s.pending.swap(0, Relaxed);
        if p >= 0 {
            IN_USE.fetch_add(p as usize, Relaxed);
        } else {
            IN_USE.fetch_sub(p.unsigned_abs(), Relaxed);
        }
        let mut reg = REGISTRY.lock();
        reg.retain(|r| !Arc::ptr_eq(r, s));
    }
}

std::thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's cache; `None` if the thread is exiting (its
/// cache is gone) or the cache is busy.
#[inline]
fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> Option<R> {
    CACHE
        .try_with(|c| {
            let mut g = c.try_borrow_mut().ok()?;
            let cache = g.get_or_insert_with(Cache::new);
            Some(f(cache))
        })
        .ok()
        .flatten()
}

#[inline]
pub(super) fn pop(class: usize) -> Option<NonNull<Header>> {
    with(|c| {
        c.check_epoch();
        let h = c.bins[class].pop()?;
        c.last_use[class] = c.epoch;
        let bytes = class_bytes(class);
        Cache::bump(&c.stats.cached, bytes.wrapping_neg());
        Cache::bump(&c.stats.hits, 1);
        c.add_pending(bytes as isize);
        Some(h)
    })
    .flatten()
}

/// Counts an allocation served outside the thread cache.
pub(super) fn count(bytes: usize, hit: bool) {
    let done = with(|c| {
        Cache::bump(if hit { &c.stats.hits } else { &c.stats.misses }, 1);
        if hit {
            c.add_pending(bytes as isize);
        } else {
            // A system allocation is the slow path anyway: report at once so
            // the peak sees it.
            let p = c.stats.pending.swap(0, Relaxed) + bytes as isize;
            if p >= 0 {
                note_in_use_add(p as usize);
            } else {
                IN_USE.fetch_sub(p.unsigned_abs(), Relaxed);
            }
        }
    });
    if done.is_none() {
        (if hit { &HITS } else { &MISSES }).fetch_add(1, Relaxed);
        note_in_use_add(bytes);
    }
}

/// Counts a block leaving use without entering the cache.
pub(super) fn uncount(bytes: usize) {
    if with(|c| c.add_pending(-(bytes as isize))).is_none() {
        IN_USE.fetch_sub(bytes, Relaxed);
    }
}

/// # Safety
/// `h` is a free block of `class`, owned by the caller.
#[inline]
pub(super) unsafe fn push(class: usize, h: NonNull<Header>) {
    let bytes = class_bytes(class);
    let placed = with(|c| {
        c.check_epoch();
        c.add_pending(-(bytes as isize));
        c.last_use[class] = c.epoch;
        let bin = &mut c.bins[class];
        if (bin.count + 1) * bytes > BIN_BYTES.max(bytes) {
            return false;
        }
        // SAFETY: the caller gave us `h`, a free block of this class.
        unsafe {
            (*h.as_ptr()).freed_at = c.epoch;
            bin.push(h);
        }
        Cache::bump(&c.stats.cached, bytes);
        true
    });
    match placed {
        Some(true) => return,
        Some(false) => {}
        None => {
            IN_USE.fetch_sub(bytes, Relaxed);
        }
    }
    // SAFETY: not placed in the cache, so still a free block owned by us.
    unsafe {
        (*h.as_ptr()).freed_at = trimmer::epoch();
        depot_push(class, h);
    }
}

/// Moves this thread's whole cache to the depot.
pub(super) fn flush_to_depot() {
    with(|c| c.flush());
}

/// This thread's unreported change to the bytes in use.
pub(super) fn own_pending() -> isize {
    with(|c| c.stats.pending.load(Relaxed)).unwrap_or(0)
}

pub(super) fn add_thread_stats(s: &mut PoolStats) {
    let reg = REGISTRY.lock();
    let mut pending = 0isize;
    for t in reg.iter() {
        s.hits = s.hits.wrapping_add(t.hits.load(Relaxed));
        s.misses = s.misses.wrapping_add(t.misses.load(Relaxed));
        s.bytes_cached = s.bytes_cached.wrapping_add(t.cached.load(Relaxed));
        pending += t.pending.load(Relaxed);
    }
    s.bytes_in_use = (s.bytes_in_use as isize).wrapping_add(pending) as usize;
}
