//! A training-style loop over fixed shapes makes no system-allocator calls once
//! the pool is warm: checked with a counting global allocator (this test binary
//! has one test, so nothing else allocates on its thread meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use train_station::Tensor;

struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(|c| c.get()) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// One "step": parameters are updated in place, activations are made, viewed,
/// copied and dropped.
fn step(params: &mut [Tensor], seed: u64) -> f32 {
    let x = Tensor::randn([64, 32], Some(seed));
    let xt = x.t(); // view
    let act = xt.contiguous(); // copy of a transposed view (pooled)
    let h = act.reshape([32, 8, 8]).permute([2, 0, 1]).contiguous();
    let mut acc = Tensor::zeros([8, 32, 8]);
    acc.copy_from(&h);
    let s = acc.select(0, 3).narrow(1, 2, 4).values().sum::<f32>();
    for (i, p) in params.iter_mut().enumerate() {
        let mut keep = p.clone(); // a saved handle, as autograd would hold
        p.set(&[0, i], s); // copy on write: the saved handle stays valid
        p.fill(s * 0.5);
        keep.fill(1.0);
        let _ = keep.values().sum::<f32>();
    }
    s
}

#[test]
fn warm_training_loop_makes_no_system_allocations() {
    let mut params: Vec<Tensor> = (0..4).map(|_| Tensor::zeros([128, 64])).collect();
    for i in 0..5 {
        step(&mut params, i);
    }
    COUNTING.with(|c| c.set(true));
    let mut total = 0.0;
    for i in 0..200 {
        total += step(&mut params, i);
    }
    COUNTING.with(|c| c.set(false));
    assert!(total.is_finite());
    let calls = CALLS.load(Ordering::Relaxed);
    assert_eq!(
        calls, 0,
        "system allocator called {calls} times in the warm loop"
    );
}
