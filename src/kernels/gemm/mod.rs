//! Single-precision matrix multiplication, `C = alpha * A B + beta * C`, with an
//! optional fused bias + ReLU epilogue and a batched form.
//!
//! Operands are described by [`MatRef`] / [`MatMut`]: a slice plus rows,
//! columns and element strides, so transposed and strided views are passed as
//! they are (a transposed operand is just swapped strides; the packing reads it
//! in its storage order). Bounds are checked once per call; a slice too short
//! for its shape and strides panics with a message naming the operand.
//!
//! Paths (the instruction set is read from [`crate::kernels::isa`] once per
//! call, or given explicitly to [`sgemm_with`]):
//! - the blocked GEMM (`driver.rs`): a register micro-kernel per ISA written
//!   once over a lane trait (AVX-512 `6 x 64` and AVX2 `6 x 16` with
//!   hand-scheduled k loops, NEON `8 x 12` with lane-indexed FMAs, portable
//!   `4 x 4`),
//!   cache blocking per ISA, edge tiles sized to what they cover. Row-major A
//!   and small row-major B are read in place; other operands are packed;
//! - matrix-vector products (`m == 1` or `n == 1`, `gemv.rs`): B streamed once
//!   in its storage order, never packed;
//! - 2 to 16 rows of A against a B with contiguous columns, A's rows
//!   contiguous and k at least four registers (`x W^T` of a linear layer at a
//!   small batch, `dots.rs`): each element a dot product, nothing packed
//!   (packing would transpose all of B for a few rows);
//! - 17 to 64 rows of A (a whole number of tile widths) against a transposed
//!   B at least four times wider and deep enough (`x W^T` at a mid-size
//!   batch, `driver::via_transposed`): computed as `C^T = B^T A^T` into a
//!   pool block, W read in place and only `x` packed, then transposed into C
//!   (the same bits as the blocked loop; SIMD paths with `std` only);
//! - rank-one products (`k == 1`, B's row and C's rows contiguous, `gemv.rs`):
//!   each row of C computed and written in one pass, no scratch;
//! - `k == 0` or `alpha == 0`: only `C = beta * C` (+ epilogue); A and B are not
//!   read.
//!
//! A column-major C is handled as the transposed product `C^T = B^T A^T`, so
//! the vector dimension of the kernels is always C's contiguous one.
//!
//! Threads (`std` only): products of at least 2 MFLOP or 256 KiB of operands
//! are split over [`crate::kernels::threads`] in blocks of whole tiles of C.
//! The k dimension is never split, so results are bit-identical whatever the
//! number of threads. Different ISA paths may differ in the last bits (fused
//! vs unfused multiply-add, order of partial sums).
//!
//! Scratch memory for packing is one block of the crate's memory pool per
//! call that needs one (`scratch.rs`), taken on the calling thread and split
//! between the tasks that run at once, so the pool's statistics and budget
//! cover it ([`scratch_bytes`] predicts its size). The pool caches freed
//! blocks, so a warm workload makes no allocator calls. Under `std`, a call
//! on one thread needing at most 4 KiB uses the stack instead.

mod cache;
mod dots;
mod driver;
mod gemv;
mod kernel;
mod pack;
mod scalar;
mod scratch;
mod simd;

#[cfg(target_arch = "x86_64")]
#[macro_use]
mod x86_kloop;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;

#[cfg(test)]
mod tests;

use core::marker::PhantomData;

use crate::error::Result;
use crate::kernels::Isa;
pub use cache::{CacheSizes, cache_sizes};
use driver::{Arch, Problem};
use kernel::Bias;

/// A read-only matrix view: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]` for `i < rows`, `j < cols`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The elements (only those the shape and strides reach are read).
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance in elements between consecutive rows.
    pub row_stride: usize,
    /// Distance in elements between consecutive columns.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A view with explicit strides (in elements).
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A contiguous row-major `rows x cols` view.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transposed view (rows and columns, and their strides, swapped).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// A mutable matrix view: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]` for `i < rows`, `j < cols`.
///
/// Distinct elements must be distinct memory (checked by the functions that
/// write through it).
#[derive(Debug)]
pub struct MatMut<'a> {
    /// The elements (only those the shape and strides reach are touched).
    pub data: &'a mut [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance in elements between consecutive rows.
    pub row_stride: usize,
    /// Distance in elements between consecutive columns.
    pub col_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A view with explicit strides (in elements).
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A contiguous row-major `rows x cols` view.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transposed view (rows and columns, and their strides, swapped).
    pub fn t(self) -> Self {
        MatMut {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// A shorter-lived view of the same matrix.
    pub fn rb(&mut self) -> MatMut<'_> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

/// What is applied to each element of C in the same pass as the final
/// write-back: `C[i, j] += bias[j]`, then `C[i, j] = max(C[i, j], 0)` if `relu`
/// (NaN stays NaN).
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// One value per column of C (length `n`), added to every row.
    pub bias: Option<&'a [f32]>,
    /// Apply ReLU last.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// No bias, no ReLU.
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: None,
        relu: false,
    };
}

/// A batch of independent products: product `t < count` uses the matrices
/// starting `t * a_stride`, `t * b_stride`, `t * c_stride` elements into the
/// slices of A, B and C. A stride of 0 for A or B uses the same matrix for every
/// product (broadcast); the C matrices must not overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Number of products.
    pub count: usize,
    /// Elements between consecutive A matrices.
    pub a_stride: usize,
    /// Elements between consecutive B matrices.
    pub b_stride: usize,
    /// Elements between consecutive C matrices.
    pub c_stride: usize,
}

impl Batch {
    /// A single product.
    pub const ONE: Batch = Batch {
        count: 1,
        a_stride: 0,
        b_stride: 0,
        c_stride: 0,
    };
}

/// Which path runs a product and on how many threads at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The instruction-set path.
    pub isa: Isa,
    /// Upper bound on threads (the pool's size also bounds it; small products
    /// use one). Ignored without `std`.
    pub threads: usize,
}

impl Config {
    /// The path in force ([`crate::kernels::isa`]) and the pool's thread count.
    pub fn current() -> Config {
        #[cfg(feature = "std")]
        let threads = crate::kernels::threads::num_threads();
        #[cfg(not(feature = "std"))]
        let threads = 1;
        Config {
            isa: crate::kernels::isa(),
            threads,
        }
    }
}

/// `C = alpha * A B + beta * C`.
///
/// A is `m x k`, B is `k x n`, C is `m x n`, each with any non-negative strides.
/// When `beta == 0` the old contents of C are not read (NaN there does not
/// propagate); when `alpha == 0` or `k == 0`, A and B are not read.
///
/// # Panics
/// If the shapes do not fit together, a slice is too short for its shape and
/// strides, or C's strides make two elements share memory.
pub fn sgemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    sgemm_with(
        Config::current(),
        Batch::ONE,
        alpha,
        a,
        b,
        beta,
        c,
        Epilogue::NONE,
    )
}

/// [`sgemm`] followed, in the same pass, by `epilogue` (bias per column, ReLU).
///
/// # Panics
/// As [`sgemm`], and if the bias does not have exactly `n` values.
pub fn sgemm_fused(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epilogue: Epilogue<'_>,
) {
    sgemm_with(
        Config::current(),
        Batch::ONE,
        alpha,
        a,
        b,
        beta,
        c,
        epilogue,
    )
}

/// `batch.count` products `C_t = alpha * A_t B_t + beta * C_t` (+ epilogue),
/// where `a`, `b` and `c` describe the shape and strides of one matrix and
/// `batch` where each one starts.
///
/// # Panics
/// As [`sgemm_fused`], and if two C matrices of the batch overlap.
pub fn sgemm_batched(
    batch: Batch,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epilogue: Epilogue<'_>,
) {
    sgemm_with(Config::current(), batch, alpha, a, b, beta, c, epilogue)
}

/// [`sgemm_batched`] on an explicit path and thread bound, for tests and
/// benchmarks that compare paths without changing the global choice.
///
/// # Panics
/// As [`sgemm_batched`], if this CPU cannot run `cfg.isa`, and if the memory
/// pool cannot provide the packing scratch (see [`try_sgemm_with`]).
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn sgemm_with(
    cfg: Config,
    batch: Batch,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epilogue: Epilogue<'_>,
) {
    crate::error::unwrap(try_sgemm_with(cfg, batch, alpha, a, b, beta, c, epilogue))
}

/// [`sgemm_with`], returning `OutOfMemory` (with C untouched) when the memory
/// pool cannot provide the packing scratch ([`scratch_bytes`] tells how much
/// a call takes).
///
/// # Panics
/// On shapes, slices or strides that do not fit (as [`sgemm_batched`]), and
/// if this CPU cannot run `cfg.isa`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn try_sgemm_with(
    cfg: Config,
    batch: Batch,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epilogue: Epilogue<'_>,
) -> Result<()> {
    let p = problem(batch, alpha, a, b, beta, c, epilogue);
    let threads = cfg.threads.max(1);
    match cfg.isa {
        Isa::Scalar => execute(simd::Scalar, &p, threads),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => execute(
            avx2::Avx2::new().unwrap_or_else(|| unsupported(cfg.isa)),
            &p,
            threads,
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => execute(
            avx512::Avx512::new().unwrap_or_else(|| unsupported(cfg.isa)),
            &p,
            threads,
        ),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => execute(
            neon::Neon::new().unwrap_or_else(|| unsupported(cfg.isa)),
            &p,
            threads,
        ),
        #[allow(unreachable_patterns)]
        other => unsupported(other),
    }
}

/// [`sgemm_fused`] on the path in force, returning `OutOfMemory` instead of
/// panicking when the pool cannot provide the scratch (the tensor operations
/// call this).
#[track_caller]
pub(crate) fn try_sgemm_fused(
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
    epilogue: Epilogue<'_>,
) -> Result<()> {
    try_sgemm_with(
        Config::current(),
        Batch::ONE,
        alpha,
        a,
        b,
        beta,
        c,
        epilogue,
    )
}

#[cold]
#[track_caller]
fn unsupported(isa: Isa) -> ! {
    panic!("sgemm: this CPU (or build) cannot run the {isa} kernel path")
}

/// Elements a strided view spans: 0 when empty, else the last offset + 1.
/// `None` on overflow.
fn span(rows: usize, cols: usize, rs: usize, cs: usize, count: usize, bs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 || count == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add((count - 1).checked_mul(bs)?)?
        .checked_add(1)
}

/// Panics unless a slice of `len` elements holds the view
/// `(rows, cols, row stride, col stride)` repeated `count` times `bs` apart.
#[track_caller]
fn check_len(
    name: &str,
    len: usize,
    (rows, cols, rs, cs): (usize, usize, usize, usize),
    count: usize,
    bs: usize,
) {
    match span(rows, cols, rs, cs, count, bs) {
        Some(need) if need <= len => {}
        Some(need) => panic!(
            "sgemm: {name} slice has {len} elements but its shape {rows}x{cols} with strides \
             ({rs}, {cs}) and {count} batch item(s) {bs} apart needs {need}"
        ),
        None => {
            panic!("sgemm: {name}'s shape {rows}x{cols} with strides ({rs}, {cs}) overflows usize")
        }
    }
}

/// Whether a strided layout maps distinct indices to distinct offsets, by the
/// nesting rule: sorted by stride, each stride exceeds the largest offset the
/// smaller dimensions reach. `dims` are `(extent, stride)`.
fn distinct(dims: &mut [(usize, usize)]) -> bool {
    // By stride, insertion sort: three entries, on every call (the shared
    // heapsort's dynamic callback cost more than the small products it
    // guarded).
    for i in 1..dims.len() {
        let mut j = i;
        while j > 0 && dims[j - 1].1 > dims[j].1 {
            dims.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut reach = 0usize;
    for &(e, s) in dims.iter().filter(|&&(e, _)| e > 1) {
        if s <= reach {
            return false;
        }
        reach = match (e - 1).checked_mul(s).and_then(|x| x.checked_add(reach)) {
            Some(r) => r,
            None => return false,
        };
    }
    true
}

/// Validates the call and builds the normalised [`Problem`]: C's contiguous
/// dimension becomes the vector dimension (transposing the product if C is
/// column-major) and a matrix-vector product becomes `m == 1`.
#[track_caller]
#[allow(clippy::too_many_arguments)]
fn problem<'a>(
    batch: Batch,
    alpha: f32,
    a: MatRef<'a>,
    b: MatRef<'a>,
    beta: f32,
    c: MatMut<'a>,
    epilogue: Epilogue<'a>,
) -> Problem<'a> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k,
        "sgemm: inner dimensions differ: A is {m}x{k}, B is {}x{n}",
        b.rows
    );
    assert!(
        c.rows == m && c.cols == n,
        "sgemm: C is {}x{} but A ({m}x{k}) times B ({k}x{n}) is {m}x{n}",
        c.rows,
        c.cols
    );
    let cnt = batch.count;
    check_len(
        "A",
        a.data.len(),
        (m, k, a.row_stride, a.col_stride),
        cnt,
        batch.a_stride,
    );
    check_len(
        "B",
        b.data.len(),
        (k, n, b.row_stride, b.col_stride),
        cnt,
        batch.b_stride,
    );
    check_len(
        "C",
        c.data.len(),
        (m, n, c.row_stride, c.col_stride),
        cnt,
        batch.c_stride,
    );
    assert!(
        distinct(&mut [(m, c.row_stride), (n, c.col_stride), (cnt, batch.c_stride)]),
        "sgemm: C's strides make distinct elements share memory: {m}x{n} with strides \
         ({}, {}), {cnt} batch item(s) {} apart",
        c.row_stride,
        c.col_stride,
        batch.c_stride
    );
    let bias = match epilogue.bias {
        Some(v) => {
            assert!(
                v.len() == n,
                "sgemm: bias has {} values, C has {n} columns",
                v.len()
            );
            Bias::Col(v.as_ptr())
        }
        None => Bias::None,
    };
    let p = Problem {
        m,
        n,
        k,
        a: a.data.as_ptr(),
        a_rs: a.row_stride,
        a_cs: a.col_stride,
        a_bs: batch.a_stride,
        b: b.data.as_ptr(),
        b_rs: b.row_stride,
        b_cs: b.col_stride,
        b_bs: batch.b_stride,
        c: c.data.as_mut_ptr(),
        c_rs: c.row_stride,
        c_cs: c.col_stride,
        c_bs: batch.c_stride,
        batch: cnt,
        alpha,
        beta,
        bias,
        relu: epilogue.relu,
        c_out: core::ptr::null_mut(),
        c_out_rs: 0,
        _life: PhantomData,
    };
    normalize(p)
}

/// Makes C's contiguous dimension the vector dimension (transposing the
/// product if C is column-major or a column) so a matrix-vector product
/// becomes `m == 1`.
fn normalize(mut p: Problem<'_>) -> Problem<'_> {
    let c_col_major = p.c_rs == 1 && p.c_cs != 1;
    if p.m != 1 && (p.n == 1 || c_col_major) {
        p = swapped(&p);
    }
    p
}

/// `C^T = B^T A^T`: the same elements, the roles of A and B swapped and C
/// viewed transposed.
fn swapped<'a>(p: &Problem<'a>) -> Problem<'a> {
    Problem {
        m: p.n,
        n: p.m,
        a: p.b,
        a_rs: p.b_cs,
        a_cs: p.b_rs,
        a_bs: p.b_bs,
        b: p.a,
        b_rs: p.a_cs,
        b_cs: p.a_rs,
        b_bs: p.a_bs,
        c_rs: p.c_cs,
        c_cs: p.c_rs,
        bias: match p.bias {
            Bias::Col(v) => Bias::Row(v),
            other => other,
        },
        ..*p
    }
}

/// Runs `f(task)` for every `task < n`, on up to `threads` threads.
fn for_each_task(threads: usize, n: usize, f: impl Fn(usize) + Sync) {
    #[cfg(feature = "std")]
    crate::kernels::threads::parallel_for_with(threads, n, f);
    #[cfg(not(feature = "std"))]
    {
        let _ = threads;
        (0..n).for_each(f);
    }
}

/// Plans and runs `p` on path `s`, its scratch from the pool (one block on
/// the calling thread, one region per concurrent task).
fn execute<S: Arch>(s: S, p: &Problem<'_>, threads: usize) -> Result<()> {
    if driver::via_transposed(p, S::BLOCKING.nr, S::W) {
        return execute_transposed(s, p, threads);
    }
    execute_direct(s, p, threads)
}

/// The transposed product of `p` (see [`driver::via_transposed`]): `T =
/// alpha B^T A^T + beta C^T` with the bias per row, in a pool block, each
/// task moving its block of `T` into C (and of C into `T` first when beta is
/// not 0).
fn execute_transposed<S: Arch>(s: S, p: &Problem<'_>, threads: usize) -> Result<()> {
    let mut t = crate::pool::WorkBuf::try_new(p.m * p.n)?;
    execute_direct(s, &transposed(p, t.as_mut_slice().as_mut_ptr()), threads)
}

/// `C^T = B^T A^T` for the `p` of [`execute_transposed`], computed into `t`
/// (`n x m`, row-major; null to plan only) and moved into `p`'s C.
fn transposed<'a>(p: &Problem<'a>, t: *mut f32) -> Problem<'a> {
    Problem {
        c: t,
        c_rs: p.m,
        c_cs: 1,
        c_bs: 0,
        c_out: p.c,
        c_out_rs: p.c_rs,
        ..swapped(p)
    }
}

/// [`execute`] without the transposed form: the plan's path.
fn execute_direct<S: Arch>(s: S, p: &Problem<'_>, threads: usize) -> Result<()> {
    let plan = driver::plan(p, cache::blocking::<S>(), S::W, threads);
    if plan.tasks == 0 {
        return Ok(());
    }
    let slots = plan.threads.clamp(1, scratch::MAX_SLOTS);
    if plan.scratch_len == 0 {
        for_each_task(slots, plan.tasks, |t| s.run(p, &plan, t, &mut []));
        return Ok(());
    }
    if scratch::on_stack(plan.scratch_len, slots) {
        scratch::with_stack(plan.scratch_len, |buf| {
            (0..plan.tasks).for_each(|t| s.run(p, &plan, t, buf))
        });
        return Ok(());
    }
    scratch::with_slots(plan.scratch_len, slots, |sl| {
        for_each_task(slots, plan.tasks, |t| {
            sl.with(|buf| s.run(p, &plan, t, buf))
        })
    })
}

/// Pool bytes of the packing scratch one product takes while it runs (0 if
/// it needs none, or takes it from the stack: under `std`, a call on one
/// thread needing at most 4 KiB), on path `cfg.isa` with up to `cfg.threads`
/// threads: what [`try_sgemm_with`] on operands of these shapes and strides allocates. The
/// shapes and strides are given as `(rows, cols, row_stride, col_stride)`;
/// only they matter, not the data. Memory plans use this, since the size
/// differs per path (tile shape and cache blocking).
pub fn scratch_bytes(
    cfg: Config,
    batch: usize,
    a: (usize, usize, usize, usize),
    b: (usize, usize, usize, usize),
    c: (usize, usize, usize, usize),
) -> usize {
    let (blocking, w) = match cfg.isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (
            cache::blocking::<avx2::Avx2>(),
            <avx2::Avx2 as simd::Simd>::W,
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (
            cache::blocking::<avx512::Avx512>(),
            <avx512::Avx512 as simd::Simd>::W,
        ),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => (
            cache::blocking::<neon::Neon>(),
            <neon::Neon as simd::Simd>::W,
        ),
        _ => (
            cache::blocking::<simd::Scalar>(),
            <simd::Scalar as simd::Simd>::W,
        ),
    };
    let p = normalize(Problem {
        m: a.0,
        n: b.1,
        k: a.1,
        a: core::ptr::null(),
        a_rs: a.2,
        a_cs: a.3,
        a_bs: 0,
        b: core::ptr::null(),
        b_rs: b.2,
        b_cs: b.3,
        b_bs: 0,
        c: core::ptr::null_mut(),
        c_rs: c.2,
        c_cs: c.3,
        c_bs: 0,
        batch,
        alpha: 1.0,
        beta: 0.0,
        bias: Bias::None,
        relu: false,
        c_out: core::ptr::null_mut(),
        c_out_rs: 0,
        _life: PhantomData,
    });
    let threads = cfg.threads.max(1);
    if driver::via_transposed(&p, blocking.nr, w) {
        // The transposed product's block beside the plan's scratch.
        let q = transposed(&p, core::ptr::null_mut());
        return crate::pool::block_bytes(p.m * p.n) + plan_bytes(&q, blocking, w, threads);
    }
    plan_bytes(&p, blocking, w, threads)
}

/// Pool bytes of the scratch of `p`'s plan (see [`scratch_bytes`]).
fn plan_bytes(p: &Problem<'_>, blocking: driver::Blocking, w: usize, threads: usize) -> usize {
    let plan = driver::plan(p, blocking, w, threads);
    let slots = plan.threads.clamp(1, scratch::MAX_SLOTS);
    if plan.tasks == 0 || plan.scratch_len == 0 || scratch::on_stack(plan.scratch_len, slots) {
        return 0;
    }
    crate::pool::block_bytes(scratch::block_len(plan.scratch_len, slots))
}
