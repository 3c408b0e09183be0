//! The tensor memory pool: size-classed, 64-byte aligned blocks reused across
//! allocations, so a training loop of fixed shapes stops calling the system
//! allocator after its first iterations.
//!
//! # Design
//!
//! A *block* is one system allocation: a 64-byte header followed by the data,
//! both 64-byte aligned. Block sizes come in classes: 64, 128, 192, 256 bytes, then
//! four classes per power of two (×1.25, ×1.5, ×1.75, ×2), so rounding wastes at most
//! 25 %. Blocks past [`MAX_POOLED_BYTES`], and every block allocated inside
//! [`with_no_mem_pool`], bypass the classes and go straight back to the system when
//! freed.
//!
//! Free blocks are kept on intrusive lists threaded through their headers, so the
//! pool itself never allocates. Memory handed out is always initialised: a fresh
//! block is zeroed by the system allocator, and a reused block holds the f32 values
//! of its previous owner (any bit pattern is a valid `f32`). Callers overwrite it.
//!
//! With `std`:
//! - each thread has a front cache (one list per class, bounded in bytes), touched
//!   without locks or atomic read-modify-writes;
//! - behind it sits a shared depot (one lock per class). A block freed on another
//!   thread simply joins that thread's cache: blocks are plain system memory, never
//!   owned by the thread that made them, so a tensor outliving its creating thread
//!   is sound (the original read freed memory here). A thread's cache moves to the
//!   depot when the thread exits;
//! - a background trimmer (a thread started on the first depot insertion) ticks
//!   every [`TrimConfig::interval`]. Blocks that sat unused in the depot for
//!   [`TrimConfig::idle`] go back to the system, except that [`TrimConfig::keep_bytes`]
//!   of cached memory is always kept as headroom. Thread caches hand their idle
//!   classes to the depot on their next pool operation after a tick. A training
//!   loop reuses its working set every step, so its blocks never become idle.
//!
//! Without `std` there are no threads to cache for: every operation goes to the
//! depot under a spin lock, and [`trim`] returns cached memory on demand.
//!
//! An optional byte budget ([`set_budget`]) caps the memory the pool holds from the
//! system (in use + cached). An allocation past it first releases cached blocks,
//! then fails with [`Error::OutOfMemory`], which the `try_` constructors return.
//!
//! # Statistics
//!
//! [`stats`] reports bytes in use, peak, cached and reserved, and hits/misses.
//! Under `std` the per-thread counters are kept without atomic read-modify-writes;
//! the in-use total is exact whenever no allocation is in flight, and the peak is
//! raised on every allocation from the global total plus the allocating thread's
//! unreported change: exact when one thread allocates and frees at a time, and
//! otherwise off by at most the other threads' unreported changes (under 256 KiB
//! each).
//! Without `std` every figure is exact.

// Layering: this module (`crate::pool`) imports only `error` and `sync`, so
// `kernels` (GEMM scratch) and `tensor` (storage) both build on it. Its public
// path is `tensor::pool`, a re-export that rustdoc shows inline; the crate-root
// path is `doc(hidden)`.

use core::alloc::Layout as AllocLayout;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::error::{Error, Result};
use crate::sync::Mutex;

mod fault;
#[doc(hidden)]
pub use fault::{allocations_left, fail_allocations_after};

/// Bytes before the data in every block; also the alignment of blocks and data.
pub(crate) const HEADER_BYTES: usize = 64;
const ALIGN: usize = 64;

const MAX_POOLED_LOG2: usize = if usize::BITS >= 64 { 36 } else { 30 };
/// Largest data size served from size classes (64 GiB; 1 GiB on 32-bit
/// targets); larger blocks are allocated and freed directly.
pub const MAX_POOLED_BYTES: usize = 1 << MAX_POOLED_LOG2;
const NUM_CLASSES: usize = 4 + 4 * (MAX_POOLED_LOG2 - 8);
const UNPOOLED: u32 = u32::MAX;

/// Metadata at the start of every block.
#[repr(C, align(64))]
pub(crate) struct Header {
    /// Handles sharing the block (used by `storage`).
    pub(crate) refcount: crate::sync::atomic::AtomicUsize,
    /// Elements in use by the current owner.
    pub(crate) len: usize,
    /// Data bytes of the block (its class size, or the exact size if unpooled).
    bytes: usize,
    /// Size class, or `UNPOOLED`.
    class: u32,
    /// Next free block (only meaningful while the block is free).
    next: *mut Header,
    /// Trim epoch at which the block was last freed.
    freed_at: usize,
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_BYTES);

/// Data bytes of class `c`.
const fn class_bytes(c: usize) -> usize {
    if c < 4 {
        64 * (c + 1)
    } else {
        let g = (c - 4) / 4;
        let i = (c - 4) % 4;
        let base = 256usize << g;
        base + (i + 1) * (base / 4)
    }
}

/// Smallest class holding `bytes`, if `bytes <= MAX_POOLED_BYTES`.
fn class_of(bytes: usize) -> Option<usize> {
    if bytes <= 256 {
        return Some(bytes.saturating_sub(1) / 64);
    }
    if bytes > MAX_POOLED_BYTES {
        return None;
    }
    let p = (usize::BITS - 1 - (bytes - 1).leading_zeros()) as usize; // 2^p < bytes <= 2^(p+1)
    let base = 1usize << p;
    let step = base / 4;
    let i = (bytes - base).div_ceil(step) - 1;
    Some(4 + 4 * (p - 8) + i)
}

// ---------------------------------------------------------------- statistics

/// A snapshot of the pool's counters (see the module docs for their precision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolStats {
    /// Bytes of blocks held by live tensors (block sizes, not requested sizes).
    pub bytes_in_use: usize,
    /// Highest `bytes_in_use` seen since start or [`reset_peak`].
    pub peak_bytes_in_use: usize,
    /// Bytes of free blocks kept for reuse.
    pub bytes_cached: usize,
    /// Bytes held from the system allocator (in use + cached, headers included).
    pub bytes_reserved: usize,
    /// Allocations served from cached blocks.
    pub hits: usize,
    /// Allocations that went to the system allocator.
    pub misses: usize,
}

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static RESERVED: AtomicUsize = AtomicUsize::new(0);
static DEPOT_BYTES: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
// Counters of threads that have exited (std) or of everything (no_std).
static HITS: AtomicUsize = AtomicUsize::new(0);
static MISSES: AtomicUsize = AtomicUsize::new(0);

fn note_in_use_add(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Relaxed).wrapping_add(bytes);
    PEAK.fetch_max(now, Relaxed);
}

/// Raises the peak to the global in-use total plus this thread's unreported
/// change `pending`, if that is higher (two relaxed loads per allocation; the
/// read-modify-write only when the peak rises). Makes the peak exact when one
/// thread allocates, as in a training step whose kernels take their scratch on
/// the calling thread.
#[cfg(feature = "std")]
#[inline]
fn note_peak_with_pending(pending: isize) {
    let now = (IN_USE.load(Relaxed) as isize).wrapping_add(pending) as usize;
    if now > PEAK.load(Relaxed) && now <= isize::MAX as usize {
        PEAK.fetch_max(now, Relaxed);
    }
}

/// Current pool counters.
pub fn stats() -> PoolStats {
    #[allow(unused_mut)]
    let mut s = PoolStats {
        bytes_in_use: IN_USE.load(Relaxed),
        peak_bytes_in_use: PEAK.load(Relaxed),
        bytes_cached: DEPOT_BYTES.load(Relaxed),
        bytes_reserved: RESERVED.load(Relaxed),
        hits: HITS.load(Relaxed),
        misses: MISSES.load(Relaxed),
    };
    #[cfg(feature = "std")]
    local::add_thread_stats(&mut s);
    s.peak_bytes_in_use = s.peak_bytes_in_use.max(s.bytes_in_use);
    s
}

/// Restarts peak tracking from the bytes in use as the calling thread sees
/// them: the global total plus its own unreported change, the same sum the
/// peak is raised to as it allocates. (Counting other threads' unreported
/// changes here, as [`stats`] does, would start the peak low by whatever
/// another thread freed and has not reported yet, and the next allocation on
/// this thread would then jump the peak by that amount.)
pub fn reset_peak() {
    #[cfg(feature = "std")]
    let own = local::own_pending();
    #[cfg(not(feature = "std"))]
    let own = 0isize;
    PEAK.store(
        (IN_USE.load(Relaxed) as isize).wrapping_add(own) as usize,
        Relaxed,
    );
}

/// Caps the bytes the pool may hold from the system (in use + cached, headers
/// included). `None` removes the cap. Allocations past the cap return
/// [`Error::OutOfMemory`] from the `try_` constructors (and panic from the plain
/// ones). Lowering the cap does not free memory in use.
pub fn set_budget(bytes: Option<usize>) {
    BUDGET.store(bytes.unwrap_or(usize::MAX), Relaxed);
}

/// The budget in force, if any.
pub fn budget() -> Option<usize> {
    match BUDGET.load(Relaxed) {
        usize::MAX => None,
        b => Some(b),
    }
}

crate::sync::thread_cell! {
    /// Nesting depth of `with_no_mem_pool` on this thread.
    static NO_POOL: usize = 0;
}

/// Runs `f` with pooling off on this thread: tensors allocated inside come from
/// the system allocator and go straight back to it when dropped (wherever that
/// happens). Nests. Without `std` the switch is global.
pub fn with_no_mem_pool<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_POOL.set(NO_POOL.get() - 1);
        }
    }
    NO_POOL.set(NO_POOL.get() + 1);
    let _restore = Restore;
    f()
}

/// Whether allocations on this thread currently bypass the pool.
pub fn is_pool_enabled() -> bool {
    NO_POOL.get() == 0
}

// ------------------------------------------------------------ system blocks

fn block_layout(bytes: usize) -> Option<AllocLayout> {
    AllocLayout::from_size_align(HEADER_BYTES.checked_add(bytes)?, ALIGN).ok()
}

/// Allocates a zeroed block of `bytes` data bytes from the system, within the
/// budget. Releases cached memory and retries once before failing.
fn system_alloc(bytes: usize, class: u32) -> Result<NonNull<Header>> {
    let oom = |reserved| Error::OutOfMemory {
        requested: bytes,
        reserved,
        budget: BUDGET.load(Relaxed),
    };
    let layout = block_layout(bytes).ok_or_else(|| oom(RESERVED.load(Relaxed)))?;
    let total = layout.size();
    for attempt in 0..2 {
        let prev = RESERVED.fetch_add(total, Relaxed);
        let within = prev
            .checked_add(total)
            .is_some_and(|t| t <= BUDGET.load(Relaxed));
        if within {
            // SAFETY: `layout` has a non-zero size (HEADER_BYTES > 0) and a valid
            // power-of-two alignment.
            let p = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut Header;
            if let Some(h) = NonNull::new(p) {
                // SAFETY: `h` points to a fresh allocation large and aligned enough
                // for a `Header`, which we initialise before any other use.
                unsafe {
                    h.as_ptr().write(Header {
                        refcount: crate::sync::atomic::AtomicUsize::new(1),
                        len: 0,
                        bytes,
                        class,
                        next: ptr::null_mut(),
                        freed_at: 0,
                    });
                }
                return Ok(h);
            }
        }
        RESERVED.fetch_sub(total, Relaxed);
        if attempt == 0 {
            release_cached();
        }
    }
    Err(oom(RESERVED.load(Relaxed)))
}

/// Returns a block to the system.
///
/// # Safety
/// `h` came from `system_alloc`, is not referenced anywhere else, and is not
/// used again.
unsafe fn system_free(h: NonNull<Header>) {
    // SAFETY: the caller guarantees `h` is a live block header we own.
    let bytes = unsafe { (*h.as_ptr()).bytes };
    let layout = block_layout(bytes).expect("a block's layout was valid when allocated");
    RESERVED.fetch_sub(layout.size(), Relaxed);
    // SAFETY: `h` was allocated by `alloc_zeroed` with this same layout.
    unsafe { alloc::alloc::dealloc(h.as_ptr() as *mut u8, layout) }
}

// ------------------------------------------------------------------- lists

/// An intrusive LIFO list of free blocks of one class.
struct Bin {
    head: *mut Header,
    count: usize,
}

// SAFETY: a `Bin` owns the free blocks on its list exclusively; moving that
// ownership to another thread (inside the depot's lock) is sound because blocks
// are plain heap memory with no thread affinity.
unsafe impl Send for Bin {}

impl Bin {
    const EMPTY: Bin = Bin {
        head: ptr::null_mut(),
        count: 0,
    };

    /// # Safety
    /// `h` is a free block of this bin's class, owned by the caller, on no list.
    #[inline]
    unsafe fn push(&mut self, h: NonNull<Header>) {
        // SAFETY: guaranteed by the caller; we only write the link field.
        unsafe { (*h.as_ptr()).next = self.head };
        self.head = h.as_ptr();
        self.count += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<NonNull<Header>> {
        let h = NonNull::new(self.head)?;
        // SAFETY: blocks on the list are valid free blocks owned by the list.
        self.head = unsafe { (*h.as_ptr()).next };
        self.count -= 1;
        Some(h)
    }
}

/// The shared free lists, one lock per class.
static DEPOT: [Mutex<Bin>; NUM_CLASSES] = [const { Mutex::new(Bin::EMPTY) }; NUM_CLASSES];

fn depot_pop(class: usize) -> Option<NonNull<Header>> {
    let h = DEPOT[class].lock().pop()?;
    DEPOT_BYTES.fetch_sub(class_bytes(class), Relaxed);
    Some(h)
}

/// # Safety
/// `h` is a free block of class `class`, owned by the caller.
unsafe fn depot_push(class: usize, h: NonNull<Header>) {
    #[cfg(feature = "std")]
    trimmer::ensure_started();
    DEPOT_BYTES.fetch_add(class_bytes(class), Relaxed);
    // SAFETY: forwarded from the caller.
    unsafe { DEPOT[class].lock().push(h) };
}

/// Frees every block in the depot whose `keep` returns false, without holding
/// a lock while calling the system allocator.
fn depot_release(mut keep: impl FnMut(usize, &Header) -> bool) -> usize {
    let mut released = 0;
    for (class, bin) in DEPOT.iter().enumerate() {
        let mut doomed = Bin::EMPTY;
        {
            let mut g = bin.lock();
            let mut kept = Bin::EMPTY;
            let mut order = Bin::EMPTY; // reverse twice to keep LIFO order
            while let Some(h) = g.pop() {
                // SAFETY: `h` is a valid free block owned by the list we hold.
                if keep(class, unsafe { h.as_ref() }) {
                    // SAFETY: `h` was just unlinked and is owned by us.
                    unsafe { order.push(h) };
                } else {
                    // SAFETY: as above.
                    unsafe { doomed.push(h) };
                }
            }
            while let Some(h) = order.pop() {
                // SAFETY: as above.
                unsafe { kept.push(h) };
            }
            *g = kept;
        }
        while let Some(h) = doomed.pop() {
            DEPOT_BYTES.fetch_sub(class_bytes(class), Relaxed);
            released += class_bytes(class);
            // SAFETY: `h` is unlinked from every list and owned by us.
            unsafe { system_free(h) };
        }
    }
    released
}

/// Returns this thread's cache and the depot to the system.
fn release_cached() {
    #[cfg(feature = "std")]
    local::flush_to_depot();
    depot_release(|_, _| false);
}

/// Returns every cached block (this thread's cache and the shared depot) to the
/// system now. Blocks cached by other threads go when those threads next touch
/// the pool after a trim tick, or exit.
pub fn trim() {
    release_cached();
}

// --------------------------------------------------------- alloc and free

/// A block for `len` f32 elements, with `refcount == 1` and `len` set. Its data
/// is initialised (zeros or a previous owner's values).
pub(crate) fn alloc(len: usize) -> Result<NonNull<Header>> {
    let bytes = len.checked_mul(4).ok_or(Error::OutOfMemory {
        requested: usize::MAX,
        reserved: RESERVED.load(Relaxed),
        budget: BUDGET.load(Relaxed),
    })?;
    if fault::should_fail() {
        return Err(injected_oom(bytes));
    }
    let class = if is_pool_enabled() {
        class_of(bytes)
    } else {
        None
    };
    let h = match class {
        Some(c) => alloc_pooled(c)?,
        None => {
            let h = system_alloc(bytes.max(4), UNPOOLED)?;
            count_miss(bytes.max(4));
            h
        }
    };
    // SAFETY: `h` is a block we exclusively own; no other reference exists.
    unsafe {
        let hdr = h.as_ptr();
        (*hdr).len = len;
        (*hdr).refcount.store(1, Relaxed);
    }
    Ok(h)
}

#[cfg(feature = "std")]
fn alloc_pooled(class: usize) -> Result<NonNull<Header>> {
    if let Some(h) = local::pop(class) {
        return Ok(h);
    }
    if let Some(h) = depot_pop(class) {
        local::count(class_bytes(class), true);
        return Ok(h);
    }
    let h = system_alloc(class_bytes(class), class as u32)?;
    local::count(class_bytes(class), false);
    Ok(h)
}

#[cfg(not(feature = "std"))]
fn alloc_pooled(class: usize) -> Result<NonNull<Header>> {
    let bytes = class_bytes(class);
    if let Some(h) = depot_pop(class) {
        HITS.fetch_add(1, Relaxed);
        note_in_use_add(bytes);
        return Ok(h);
    }
    let h = system_alloc(bytes, class as u32)?;
    count_miss(bytes);
    Ok(h)
}

/// The error of an injected failure: the one a budget overrun gives.
#[cold]
fn injected_oom(bytes: usize) -> Error {
    Error::OutOfMemory {
        requested: bytes,
        reserved: RESERVED.load(Relaxed),
        budget: BUDGET.load(Relaxed),
    }
}

fn count_miss(bytes: usize) {
    #[cfg(feature = "std")]
    local::count(bytes, false);
    #[cfg(not(feature = "std"))]
    {
        MISSES.fetch_add(1, Relaxed);
        note_in_use_add(bytes);
    }
}

/// Returns a block whose last handle was dropped.
///
/// # Safety
/// `h` came from [`alloc`], its refcount reached zero, nothing references it
/// any more, and it is not used again by the caller.
pub(crate) unsafe fn free(h: NonNull<Header>) {
    // SAFETY: the caller hands us exclusive ownership of a valid block.
    let (class, bytes) = unsafe { ((*h.as_ptr()).class, (*h.as_ptr()).bytes) };
    if class == UNPOOLED {
        sub_in_use(bytes);
        // SAFETY: exclusive ownership, as above.
        unsafe { system_free(h) };
        return;
    }
    #[cfg(feature = "std")]
    // SAFETY: exclusive ownership of a free block of `class`.
    unsafe {
        local::push(class as usize, h)
    };
    #[cfg(not(feature = "std"))]
    {
        IN_USE.fetch_sub(bytes, Relaxed);
        // SAFETY: exclusive ownership of a free block of `class`.
        unsafe { depot_push(class as usize, h) };
    }
}

fn sub_in_use(bytes: usize) {
    #[cfg(feature = "std")]
    local::uncount(bytes);
    #[cfg(not(feature = "std"))]
    IN_USE.fetch_sub(bytes, Relaxed);
}

/// Data pointer of a block.
#[inline]
pub(crate) fn data_ptr(h: NonNull<Header>) -> *mut f32 {
    // SAFETY: every block is HEADER_BYTES + data bytes long, so the data start is
    // within (or one past the end of) the allocation.
    unsafe { (h.as_ptr() as *mut u8).add(HEADER_BYTES) as *mut f32 }
}

// ------------------------------------------------- std: thread front caches

#[cfg(feature = "std")]
mod local;

// ------------------------------------------------------- std: the trimmer

/// Settings of the background trimmer (`std` only).
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrimConfig {
    /// Time between trimmer ticks.
    pub interval: core::time::Duration,
    /// How long a cached block must sit unused before it is returned.
    pub idle: core::time::Duration,
    /// Cached bytes always kept as headroom.
    pub keep_bytes: usize,
}

#[cfg(feature = "std")]
impl Default for TrimConfig {
    fn default() -> Self {
        TrimConfig {
            interval: core::time::Duration::from_millis(500),
            idle: core::time::Duration::from_secs(5),
            keep_bytes: 16 << 20,
        }
    }
}

/// Replaces the trimmer's settings; they apply from its next tick.
#[cfg(feature = "std")]
pub fn set_trim_config(cfg: TrimConfig) {
    *trimmer::CONFIG.lock() = cfg;
}

/// The trimmer's settings.
#[cfg(feature = "std")]
pub fn trim_config() -> TrimConfig {
    *trimmer::CONFIG.lock()
}

#[cfg(feature = "std")]
mod trimmer;

// ------------------------------------------------------ work buffers

/// A work buffer from the pool: GEMM packing, reduction scratch and other
/// memory an operation needs only while it runs. It is accounted like a
/// tensor (in use, peak, budget) and returned to the pool when dropped, so
/// the pool's peak covers every buffer of a training step.
///
/// The pool is a bottom-layer module (it depends only on `error` and
/// `sync`), so the kernels, which sit below tensors, take their scratch from
/// here without importing `tensor`.
pub(crate) struct WorkBuf {
    hdr: NonNull<Header>,
}

// SAFETY: a `WorkBuf` owns its block exclusively (it is never shared or
// cloned); blocks are plain heap memory with no thread affinity.
unsafe impl Send for WorkBuf {}
// SAFETY: `&WorkBuf` only permits reads of the owned block.
unsafe impl Sync for WorkBuf {}

impl WorkBuf {
    /// A 64-byte aligned buffer of `len` floats with unspecified (but
    /// initialised) contents, or `OutOfMemory`.
    pub(crate) fn try_new(len: usize) -> Result<WorkBuf> {
        Ok(WorkBuf { hdr: alloc(len)? })
    }

    /// The elements.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: the block holds `len` initialised f32 (the pool never hands
        // out uninitialised memory), and `&mut self` is the only access to it.
        unsafe { core::slice::from_raw_parts_mut(data_ptr(self.hdr), (*self.hdr.as_ptr()).len) }
    }
}

impl Drop for WorkBuf {
    fn drop(&mut self) {
        // SAFETY: we own the block exclusively (refcount 1, never shared) and
        // do not touch it again.
        unsafe { free(self.hdr) }
    }
}

/// An empty `Vec` with room for `n` items, or [`Error::OutOfMemory`]: for
/// lists whose length comes from a caller's size (an upsampling target, the
/// pieces of a split), which a `try_` form must not turn into an abort.
pub(crate) fn try_vec<T>(n: usize) -> Result<alloc::vec::Vec<T>> {
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        requested: n.saturating_mul(core::mem::size_of::<T>()),
        reserved: stats().bytes_reserved,
        budget: usize::MAX,
    })?;
    Ok(v)
}

/// Bytes the pool accounts for a buffer of `len` floats (tensor or work
/// buffer) allocated with pooling on: its size class, or the exact size past
/// [`MAX_POOLED_BYTES`]. This is what [`stats`] adds to `bytes_in_use` for it,
/// so a memory plan built from it predicts the pool's figures.
pub fn block_bytes(len: usize) -> usize {
    let bytes = len.saturating_mul(4);
    match class_of(bytes) {
        Some(c) => class_bytes(c),
        None => bytes.max(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes_with_bounded_waste() {
        let mut prev = 0;
        for c in 0..NUM_CLASSES {
            let b = class_bytes(c);
            assert!(b > prev && b.is_multiple_of(64), "class {c}: {b}");
            assert_eq!(class_of(b), Some(c));
            assert_eq!(class_of(prev + 1), Some(c));
            if prev >= 256 {
                assert!(b * 4 <= (prev + 1) * 5 + 4, "waste too high at {b}");
            }
            prev = b;
        }
        assert_eq!(class_bytes(NUM_CLASSES - 1), MAX_POOLED_BYTES);
        assert_eq!(class_of(MAX_POOLED_BYTES + 1), None);
        assert_eq!(class_of(0), Some(0));
    }
}
