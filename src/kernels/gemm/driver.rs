//! The loop nest: plans a call (path, blocking, packing, split into tasks) and
//! runs one task, generically over the ISA.
//!
//! Loop order of a GEMM task, BLIS-style with the roles of A and B as seen from
//! a row-major C (the vector dimension is N):
//!
//! ```text
//! for each k block (kc)                 C += A[:, kb] * B[kb, :]
//!   for each M block (mc)               pack A block (L3) or read A in place
//!     for each N block (nc)             pack B block (L2) or read B in place
//!       for each MR rows                A panel, MR x kc (L1)
//!         for each NR columns           B panel streamed from L2
//!           micro-kernel (registers)
//! ```
//!
//! Tasks split C into disjoint blocks of whole tiles (and whole batch items);
//! the k loop is never split, so each element of C sees the same operations in
//! the same order whatever the number of threads. Edge tiles read zero-padded
//! packed panels and write back only their valid part.

use core::marker::PhantomData;

use super::dots;
use super::gemv;
use super::kernel::{Bias, Out, Update, tile, write_strided};
use super::pack::{pack_a, pack_b, transpose};
use super::simd::Simd;
use crate::kernels::Isa;

/// [`tile`] with the smallest tile shape that covers `out`: full tiles use
/// `MR x NV` vectors, edge tiles fewer vectors (1 ..= NV) and, when they
/// have few rows, 2 or 4 rows, so an edge costs about what it computes. An
/// `out` of `2 * NV` vectors (at most 2 rows, `NV` 2 or 3) is one tile over
/// two panels.
///
/// # Safety
/// As [`tile`] for `MR x NV` (a smaller shape reads a subset of that), or
/// for `2 x 2 NV` when `out` spans two panels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_fit<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    out: Out,
    up: &Update,
) {
    let nv = out.n.div_ceil(S::W);
    const NONE: *mut f32 = core::ptr::null_mut();
    if nv > NV {
        // At most 2 rows over two panels of B read in place, on paths whose
        // panels are 2 or 3 vectors wide: 2 rows of one panel give 4 or 6
        // accumulator chains, too few to hide the FMA latency (AVX2 at
        // `[2,784]x[784,256]` ran at a third of AVX-512's speed). The same
        // multiply-adds per element as two tiles.
        debug_assert!(out.m <= 2 && nv == 2 * NV);
        // SAFETY: forwarded from the caller, who makes both panels readable.
        unsafe {
            match NV {
                2 => tile::<S, 2, 4>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up),
                3 => tile::<S, 2, 6>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up),
                _ => unreachable!("two-panel tiles only for panels of 2 or 3 vectors"),
            }
        }
        return;
    }
    macro_rules! with_rows {
        ($r:expr) => {
            // SAFETY: forwarded from the caller; `$r >= out.m`, `nv * W >= out.n`.
            unsafe {
                match nv {
                    1 if NV > 1 => {
                        tile::<S, { $r }, 1>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up)
                    }
                    2 if NV > 2 => {
                        tile::<S, { $r }, 2>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up)
                    }
                    3 if NV > 3 => {
                        tile::<S, { $r }, 3>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up)
                    }
                    _ => tile::<S, { $r }, NV>(s, kc, a, a_rs, a_cs, b, b_rs, NONE, out, up),
                }
            }
        };
    }
    if out.m <= 2 && MR > 2 {
        with_rows!(2)
    } else if out.m <= 4 && MR > 4 {
        with_rows!(4)
    } else {
        with_rows!(MR)
    }
}

/// Cache blocking of one ISA path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Blocking {
    /// Rows of a micro-tile.
    pub mr: usize,
    /// Columns of a micro-tile (`NV * W`).
    pub nr: usize,
    /// Largest k block.
    pub kc: usize,
    /// Largest M block packed at once.
    pub mc: usize,
    /// Largest N block packed at once.
    pub nc: usize,
    /// Row-major B is packed once it has more than this many elements per
    /// task (below, it is read in place: it stays in cache and packing would
    /// cost more than it saves).
    pub pack_b_min: usize,
    /// Up to this many elements, row-major B is read in place when at most
    /// `16 * mr` rows of A use it (it stays in L2; packing would not pay off).
    pub direct_b_max: usize,
    /// A packed row-major B is packed by the tiles of its first row panel as
    /// they read it in place (no separate pass) while `kc` rows of it span at
    /// most this many elements (`kc * row stride`); see `cache.rs`.
    pub fuse_b_max: usize,
}

/// One ISA path: its lanes, its blocking, and its task entry point compiled
/// with its target features.
pub(super) trait Arch: Simd {
    /// Cache blocking for this path where the cache sizes are not detected
    /// (see [`super::cache`]).
    const BLOCKING: Blocking;
    /// Whether `kc`, `nc` and `mc` follow the detected cache sizes.
    const TUNED: bool = true;
    /// The instruction set this path runs (keys its derived blocking).
    const ISA: Isa;
    /// Runs task `task` of `plan` (calls [`run_task`] inside this path's
    /// `#[target_feature]` context).
    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]);
}

/// A validated product `C = alpha * A B + beta * C` (+ bias, ReLU), possibly
/// batched, in element strides.
///
/// Invariants, established by the constructor in `gemm/mod.rs` (which
/// checks the caller's slices; `transposed` there derives a problem that
/// writes a pool block and moves it into the checked C):
/// - for every batch item `t < batch`, `A[i, p]` at `a + t * a_bs + i * a_rs +
///   p * a_cs` is readable for `i < m`, `p < k`; the same for B (`k x n`);
/// - `C[i, j]` at `c + t * c_bs + i * c_rs + j * c_cs` is writable for `i < m`,
///   `j < n`, and distinct `(t, i, j)` are distinct memory; C overlaps neither
///   A, B nor the bias;
/// - `Bias::Col` points at `n` readable values, `Bias::Row` at `m`;
/// - a non-null `c_out` (then `batch == 1`) is writable at `j * c_out_rs + i`
///   for `i < m`, `j < n`, distinct memory for distinct `(i, j)`, and
///   overlaps none of A, B, C or the bias;
/// - all of it stays valid for `'a`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Problem<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const f32,
    pub a_rs: usize,
    pub a_cs: usize,
    pub a_bs: usize,
    pub b: *const f32,
    pub b_rs: usize,
    pub b_cs: usize,
    pub b_bs: usize,
    pub c: *mut f32,
    pub c_rs: usize,
    pub c_cs: usize,
    pub c_bs: usize,
    pub batch: usize,
    pub alpha: f32,
    pub beta: f32,
    pub bias: Bias,
    pub relu: bool,
    /// Null, or the caller's C when this problem computes its transpose
    /// (`via_transposed`): C here is then a row-major scratch `T` (batch 1),
    /// and each task moves its block of `T` to `c_out[j * c_out_rs + i]`
    /// (reading it first when beta is not 0).
    pub c_out: *mut f32,
    pub c_out_rs: usize,
    pub _life: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `Problem` is a set of pointers into slices borrowed for 'a (shared
// for A, B and the bias, exclusive for C and `c_out`). Tasks running on other
// threads read A, B and the bias, and write disjoint parts of C and of
// `c_out` (the plan splits C into disjoint blocks, and a task moves only its
// own block), so sharing it between threads is sound.
unsafe impl Send for Problem<'_> {}
// SAFETY: see `Send`.
unsafe impl Sync for Problem<'_> {}

/// Which body a task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `k == 0` or `alpha == 0`: `C = beta * C` (+ bias, ReLU); A and B unread.
    Scale,
    /// The blocked loop nest.
    Gemm,
    /// `m == 1`, rows of B contiguous: `y += x[p] * B[p, :]`.
    GemvRows,
    /// `m == 1`, columns of B contiguous: `y[j] = dot(x, B[:, j])`.
    GemvDots,
    /// `2 <= m <= DOTS_MAX_M`, rows of A and columns of B contiguous: each
    /// element a dot product, nothing packed (see `dots.rs`).
    Dots,
    /// `k == 1`, B's row and C's rows contiguous: `C[i, :] = A[i, 0] B[0, :]`
    /// row by row (the rank-one products of a batch-1 backward).
    Outer,
}

/// How a call is carried out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub kind: Kind,
    pub blocking: Blocking,
    /// k block actually used (depends on k only).
    pub kc: usize,
    /// Rows per task (a multiple of `mr`) and tasks along M.
    pub step_m: usize,
    pub tm: usize,
    /// Columns per task and tasks along N.
    pub step_n: usize,
    pub tn: usize,
    pub pack_a: bool,
    pub pack_b: bool,
    /// B is packed by the first row panel's tiles (see `Blocking::fuse_b_max`).
    pub fuse_b: bool,
    /// Scratch floats one task needs.
    pub scratch_len: usize,
    /// Number of tasks (`batch * tm * tn`).
    pub tasks: usize,
    /// Threads worth using.
    pub threads: usize,
}

/// Below this many flops, and below [`PAR_MIN_STREAM_BYTES`] of operands, a
/// call stays on the calling thread.
const PAR_MIN_FLOPS: usize = 1 << 21;
/// Bytes of A, B and C (see [`streamed`]) from which a product with few
/// flops is still split: it is bound by reading its large operand or
/// writing C, and two cores each stream their half (a GEMV its matrix, a
/// rank-one product its C, which had this bound first; a `Linear` layer at
/// batch 4: the forward reads all of W, the weight gradient writes all of
/// dW). Intel, warm, 1 vs 2 threads: `[4,784]x[784,256]` (W stored
/// `[256,784]`) 14.6 -> 8.1 us, `[256,4]x[4,784]` (A transposed) 29 -> 16
/// us; over 66 shapes (m and n 2 to 4096, k 2 to 512, below
/// [`PAR_MIN_FLOPS`], at least these bytes, B row- and column-major) two
/// threads ran 1.34-2.21x (AVX-512) and 1.38-2.19x (AVX2) faster; at 128 KiB
/// a 2 us product ran 6 % slower. The MLP's Adam step at batch 4 on two
/// threads: 184 -> 138 us.
const PAR_MIN_STREAM_BYTES: usize = 1 << 18;
/// Columns of a GEMV accumulated per pass (kept in L1).
pub(super) const GEMV_CHUNK: usize = 4096;

/// A column-major A is read in place (not packed) while a k block of one
/// panel spans at most this many values (`kc * column stride`): 64 pages, the
/// reach of the first-level data TLB of the cores the paths target (Zen 3: 64
/// entries, Zen 4: 72, Golden Cove: 96). Each k step of a panel reads a new
/// column; within that reach they cost no page walk, and the panel needs no
/// pack. Intel (AVX-512), one thread, `[m, k] = G^T`, n = 256: in place
/// 8-9 % faster at m = 128 and 256 with k = 256 (16 and 64 pages); at 128
/// pages AVX2 ran 15 % slower in place, AVX-512 8 % faster.
const A_COLUMNS_IN_PLACE_MAX: usize = 64 * 1024;
/// Row-major A is packed for the TLB's sake only when a task has more columns
/// than this (so each packed panel is used by several N blocks).
const A_PAGES_MIN_N: usize = 256;
/// Pages a second-level data TLB maps (Zen 3 and recent Intel cores: 2048;
/// Zen 4: 3072): the floor, as for the caches, of the CPUs the paths target.
const TLB_PAGES: usize = 2048;

/// Whether reading `rows` rows of A and of C in place touches more 4 KiB pages
/// than the TLB maps. Each N block sweeps every row of the task's A (the
/// current k block of it) and its C tile rows; rows at least a page apart take
/// a page each, so past the TLB's reach every panel pays page walks. A packed
/// A block is contiguous (a page per 1024 values). Zen 4, one thread: packed
/// A measured 2-4 % faster at N = 2000 and 2048 on AVX2 (0-2 % on AVX-512),
/// level at 1536, and 1-2 % slower at 512 to 1000, where the TLB covers both.
fn pages_exceed_tlb(rows: usize, a_rs: usize, c_rs: usize) -> bool {
    let pages = |rs: usize| rows.saturating_mul(rs.min(1024)) / 1024;
    pages(a_rs).saturating_add(pages(c_rs)) > TLB_PAGES
}

#[inline]
fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// Scratch regions are 64-byte aligned inside the (64-byte aligned) scratch.
#[inline]
fn region(len: usize) -> usize {
    round_up(len, 16)
}

/// Bytes of A, B and C over the batch (saturating): what a product with
/// few rows, few columns or a short k streams.
fn streamed(p: &Problem<'_>) -> usize {
    let (m, n, k) = (p.m, p.n, p.k);
    let values = m
        .saturating_mul(k)
        .saturating_add(k.saturating_mul(n))
        .saturating_add(m.saturating_mul(n));
    values.saturating_mul(4 * p.batch)
}

/// Whether a product of `flops(p)` and [`streamed`]`(p)` is worth splitting.
fn worth_splitting(p: &Problem<'_>) -> bool {
    flops(p) >= PAR_MIN_FLOPS || streamed(p) >= PAR_MIN_STREAM_BYTES
}

/// `2 m n k` over the batch (saturating).
fn flops(p: &Problem<'_>) -> usize {
    (2 * p.m)
        .saturating_mul(p.n)
        .saturating_mul(p.k)
        .saturating_mul(p.batch)
}

/// Splits each batch item's columns into tasks for `want` threads, in
/// blocks of whole groups of four registers (the GEMV and dot-product
/// kinds: every task takes all rows).
fn split_columns(plan: &mut Plan, p: &Problem<'_>, want: usize, w: usize) {
    let per_batch = want.div_ceil(p.batch).max(1);
    plan.step_n = round_up(p.n.div_ceil(per_batch), 4 * w);
    plan.tn = p.n.div_ceil(plan.step_n);
    plan.tasks = p.batch * plan.tn;
    plan.threads = want.min(plan.tasks);
}

/// Plans `p` for a path with blocking `bl` and `w` lanes, on up to `threads`
/// threads.
pub(super) fn plan(p: &Problem<'_>, bl: Blocking, w: usize, threads: usize) -> Plan {
    let mut plan = Plan {
        kind: Kind::Gemm,
        blocking: bl,
        kc: 0,
        step_m: p.m.max(1),
        tm: 1,
        step_n: p.n.max(1),
        tn: 1,
        pack_a: false,
        pack_b: false,
        fuse_b: false,
        scratch_len: 0,
        tasks: 0,
        threads: 1,
    };
    if p.m == 0 || p.n == 0 || p.batch == 0 {
        return plan;
    }
    if p.k == 0 || p.alpha == 0.0 {
        plan.kind = Kind::Scale;
        plan.scratch_len = region(p.n);
        plan.tasks = p.batch;
        return plan;
    }
    let want = if worth_splitting(p) { threads } else { 1 };
    // A matrix-vector product: stream B in whichever order is contiguous (with
    // one column, the rows path reads it whatever its column stride).
    let gemv = match (p.b_cs == 1 && p.n > 1, p.b_rs == 1 || p.k == 1, p.n == 1) {
        (true, _, _) => Some(Kind::GemvRows),
        (false, true, _) => Some(Kind::GemvDots),
        (false, false, true) => Some(Kind::GemvRows),
        _ => None,
    };
    if let (1, Some(kind)) = (p.m, gemv) {
        plan.kind = kind;
        split_columns(&mut plan, p, want, w);
        plan.scratch_len = region(p.k) + region(GEMV_CHUNK.min(plan.step_n));
        return plan;
    }
    // A few rows of A against a transposed B: dot products, nothing packed.
    if dots::applies(p, w) {
        plan.kind = Kind::Dots;
        split_columns(&mut plan, p, want, w);
        plan.scratch_len = region(p.m * dots::DOTS_CHUNK.min(plan.step_n));
        return plan;
    }
    // A rank-one product (m > 1 here): each row of C is one vector product,
    // written as it is computed; split over rows, no scratch.
    if p.k == 1 && p.b_cs == 1 && p.c_cs == 1 {
        plan.kind = Kind::Outer;
        let per_batch = want.div_ceil(p.batch).max(1);
        plan.step_m = p.m.div_ceil(per_batch);
        plan.tm = p.m.div_ceil(plan.step_m);
        plan.tasks = p.batch * plan.tm;
        plan.threads = want.min(plan.tasks);
        return plan;
    }

    // k blocks of equal size (depends on k only: same for every task).
    let kblocks = p.k.div_ceil(bl.kc);
    plan.kc = round_up(p.k.div_ceil(kblocks), 4).min(p.k);

    let (mt, nt) = (p.m.div_ceil(bl.mr), p.n.div_ceil(bl.nr));
    // Split each matrix into `g` blocks of whole tiles, as even as possible; on
    // a tie split N (each task then packs only its own columns of B, and reads
    // A, which is not packed, in place). Where k is short against m (at most
    // m / 4: B is small, C's writes dominate) split M only, so each task
    // writes whole rows of C: split over N, both threads write every row, a
    // half each, and two threads ran slower than one on such shapes (Intel,
    // AVX-512, warm, `[256,16]x[16,1024]` 55 us on one thread, 65 on two
    // split over N, 29 over M; `[256,4]x[4,512]` with A transposed 19, 41 and
    // 10 us), while the same split at n = 520 or 784 ran at 1.8x: a
    // hardware prefetcher running on from one task's columns into the
    // other's is the likely cause, not measured.
    let g = want.div_ceil(p.batch).max(1);
    let (mut tm, mut tn) = (1, 1);
    if g > 1 {
        let mut best = usize::MAX;
        // A transposed product (`via_transposed`) reads A, the weight, in
        // place and packs B (x^T, at most a quarter of A's size): split over
        // N, every task would read all of A (the batch-64 MLP step on two
        // threads, AVX2: 712 us split over N, 599 over M; AVX-512's 64-wide
        // tiles leave a single column of tasks there anyway).
        let rows_only = (4 * p.k <= p.m || !p.c_out.is_null()) && g <= mt;
        for cm in (1..=g).filter(|cm| g % cm == 0) {
            let cn = g / cm;
            if cm > mt || cn > nt || (rows_only && cn > 1) {
                continue;
            }
            let cost = mt.div_ceil(cm) * nt.div_ceil(cn);
            if cost < best || (cost == best && cm < tm) {
                (best, tm, tn) = (cost, cm, cn);
            }
        }
        if best == usize::MAX {
            tm = g.min(mt);
            tn = (g / tm).clamp(1, nt);
        }
    }
    plan.step_m = mt.div_ceil(tm) * bl.mr;
    plan.tm = p.m.div_ceil(plan.step_m);
    plan.step_n = nt.div_ceil(tn) * bl.nr;
    plan.tn = p.n.div_ceil(plan.step_n);
    plan.tasks = p.batch * plan.tm * plan.tn;
    plan.threads = want.min(plan.tasks);

    let (task_m, task_n) = (plan.step_m.min(p.m), plan.step_n.min(p.n));
    // Pack B when its rows are not contiguous, or when it is too large to be
    // read in place from cache without TLB and set-conflict misses, unless
    // few rows of A reuse it (then packing costs more than it saves) and it
    // fits in L2. A row-major B is never packed for a task of one row panel
    // (nothing would reuse the packed copy; the fused packing would run a
    // full-height tile for a few rows).
    let b_len = p.k * task_n;
    let few_rows = task_m <= 16 * bl.mr && b_len <= bl.direct_b_max;
    let one_panel = task_m <= bl.mr;
    plan.pack_b = p.b_cs != 1 || (b_len > bl.pack_b_min && !few_rows && !one_panel);
    plan.fuse_b = plan.pack_b && p.b_cs == 1 && plan.kc * p.b_rs <= bl.fuse_b_max;
    // Pack A when it is column-major (rows adjacent, columns far apart) and a
    // panel's k block spans more pages than the first-level TLB maps: read in
    // place, every k step would touch a new page. Row-major and
    // general A are read in place (six row streams, no packing cost) unless
    // the task's rows span more pages than the TLB maps.
    plan.pack_a = (p.a_rs == 1
        && p.a_cs > bl.mr
        && task_n > bl.nr
        && plan.kc.saturating_mul(p.a_cs) > A_COLUMNS_IN_PLACE_MAX)
        || (p.a_cs == 1 && task_n > A_PAGES_MIN_N && pages_exceed_tlb(task_m, p.a_rs, p.c_rs));

    let mc = if plan.pack_a { bl.mc.min(task_m) } else { 0 };
    let nc = if plan.pack_b { bl.nc.min(task_n) } else { 0 };
    plan.scratch_len = region(round_up(nc, bl.nr) * plan.kc)
        + region(round_up(mc, bl.mr) * plan.kc)
        + region(bl.nr * plan.kc)
        + region(bl.mr * plan.kc);
    plan
}

/// Whether `p` is computed as `C^T = B^T A^T` into a scratch block, then
/// transposed into C by each task (`execute_transposed` in `mod.rs`): `x W^T`
/// of a linear layer at a batch of 17 to 64, well below its width. Computed
/// directly, the blocked loop transposes all of B (`k x n`, the weight) into
/// packed panels and uses each packed value m times; transposed, B^T is read
/// in place as the left operand, only A^T (`k x m`) is packed, and `m x n`
/// values of C are moved once (twice when beta is not 0).
///
/// Taken when A is row-major with more than [`dots::DOTS_MAX_M`] rows and at
/// most 64, a whole number of tile widths `nr` (C^T's rows are then full
/// tiles: at 24 or 32 rows against AVX-512's 64-wide tiles it ran up to 1.5x
/// slower), B column-major with `n >= 4m`, C's rows contiguous, and the
/// packing saved, `(n - m) * k` values, is at least four times the `m x n`
/// moved. Intel Xeon, one thread, ratio of the times transposed / direct,
/// operands in L3 (warm in parentheses): AVX-512 `[64,784]x[784,n]` n = 256,
/// 512, 1024: 0.80, 0.79, 0.79 (0.88, 0.80, 0.80); AVX2 0.92, 1.03, 0.90
/// (0.94, 0.91, 0.91), `[32,784]x[784,256]` 0.77 (0.82). At 128 rows AVX2
/// gained nothing on one thread and lost 9 % on two (each task packs all of
/// A^T), hence at most 64.
///
/// Only on the SIMD paths (`w > 1`; the scalar loop's packing costs little
/// against its arithmetic) and with `std`: without it (bare-metal boards,
/// a fixed heap) the `m x n` block would add to the packing scratch, which
/// the NEON blocking keeps at 74 KiB there.
///
/// Every element goes through the same operations in the same order either
/// way (the same k blocks, the same update of the old C, the bias added per
/// row of the transposed product), so the result has the bits of the direct
/// loop's, whatever the thread count.
pub(super) fn via_transposed(p: &Problem<'_>, nr: usize, w: usize) -> bool {
    cfg!(feature = "std")
        && w > 1
        && p.batch == 1
        && p.k > 0
        && p.alpha != 0.0
        && p.m > dots::DOTS_MAX_M
        && p.m.is_multiple_of(nr)
        && p.m <= 64
        && p.n >= 4 * p.m
        && p.a_cs == 1
        && p.b_rs == 1
        && p.b_cs != 1
        && p.c_cs == 1
        && (p.n - p.m).saturating_mul(p.k) >= 4 * p.m * p.n
}

/// Runs task `task` of `plan`. Meant to be inlined into each path's
/// `#[target_feature]` entry point, with that path's tile shape `MR x NV * W`.
#[inline(always)]
pub(super) fn run_task<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    p: &Problem<'_>,
    plan: &Plan,
    task: usize,
    scratch: &mut [f32],
) {
    debug_assert!(MR == plan.blocking.mr && NV * S::W == plan.blocking.nr);
    debug_assert!(scratch.len() >= plan.scratch_len);
    debug_assert!(task < plan.tasks);
    debug_assert!(p.c_out.is_null() || (plan.kind == Kind::Gemm && p.batch == 1));
    let per_batch = plan.tm * plan.tn;
    let t = task / per_batch;
    let r = task % per_batch;
    let (ti, tj) = (r / plan.tn, r % plan.tn);
    let i0 = ti * plan.step_m;
    let i1 = p.m.min(i0 + plan.step_m);
    let j0 = tj * plan.step_n;
    let j1 = p.n.min(j0 + plan.step_n);
    match plan.kind {
        Kind::Scale => scale_task(p, t, scratch),
        Kind::Gemm if !p.c_out.is_null() => {
            let (rows, cols) = (i1 - i0, j1 - j0);
            // SAFETY: (both transposes) this task's block of T, rows i0..i1
            // and columns j0..j1, is inside T (m x n at c_rs, batch 1) and is
            // the caller's C rows j0..j1, columns i0..i1 (n x m at
            // c_out_rs); the tasks' blocks are disjoint and T is a separate
            // pool block.
            unsafe {
                let (c, c_out) = (p.c.add(i0 * p.c_rs + j0), p.c_out.add(j0 * p.c_out_rs + i0));
                if p.beta != 0.0 {
                    transpose(s, c_out, p.c_out_rs, c, p.c_rs, cols, rows);
                }
                gemm_block::<S, MR, NV>(s, p, plan, t, i0, i1, j0, j1, scratch);
                transpose(s, c, p.c_rs, c_out, p.c_out_rs, rows, cols);
            }
        }
        Kind::Gemm => gemm_block::<S, MR, NV>(s, p, plan, t, i0, i1, j0, j1, scratch),
        Kind::GemvRows => gemv::rows_task(s, p, t, j0, j1, scratch),
        Kind::GemvDots => gemv::dots_task(s, p, t, j0, j1, scratch),
        Kind::Dots if S::REGS >= 32 => dots::task::<S, 4>(s, p, t, j0, j1, scratch),
        Kind::Dots => dots::task::<S, 2>(s, p, t, j0, j1, scratch),
        Kind::Outer => gemv::outer_task(s, p, t, i0, i1),
    }
}

/// `C = beta * C` (+ bias, ReLU) for batch item `t`.
fn scale_task(p: &Problem<'_>, t: usize, scratch: &mut [f32]) {
    let zeros = &mut scratch[..p.n];
    zeros.fill(0.0);
    let up = Update::for_block(0.0, p.beta, p.bias, p.relu, true, true);
    for i in 0..p.m {
        let out = Out {
            // SAFETY: t < batch and i < m (Problem invariants).
            c: unsafe { p.c.add(t * p.c_bs + i * p.c_rs) },
            rs: 0,
            cs: p.c_cs,
            m: 1,
            n: p.n,
        };
        // SAFETY: row i of C has n writable elements; `zeros` has n values;
        // the bias offset by row i stays inside it.
        unsafe {
            let up = Update {
                bias: up.bias.offset(i, 0),
                ..up
            };
            write_strided(zeros.as_ptr(), 0, out, &up)
        };
    }
}

/// The blocked loop nest over rows `i0..i1`, columns `j0..j1` of batch item `t`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_block<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    p: &Problem<'_>,
    plan: &Plan,
    t: usize,
    i0: usize,
    i1: usize,
    j0: usize,
    j1: usize,
    scratch: &mut [f32],
) {
    let nr = NV * S::W;
    let bl = plan.blocking;
    let kc_max = plan.kc;
    // Scratch regions: B block, A block, B edge panel, A edge panel.
    let nc_cap = if plan.pack_b {
        round_up(bl.nc.min(j1 - j0), nr)
    } else {
        0
    };
    let mc_cap = if plan.pack_a {
        round_up(bl.mc.min(i1 - i0), MR)
    } else {
        0
    };
    let (sb, rest) = scratch.split_at_mut(region(nc_cap * kc_max));
    let (sa, rest) = rest.split_at_mut(region(mc_cap * kc_max));
    let (sb_edge, rest) = rest.split_at_mut(region(nr * kc_max));
    let sa_edge = &mut rest[..MR * kc_max];
    let (sb, sa, sb_edge, sa_edge) = (
        sb.as_mut_ptr(),
        sa.as_mut_ptr(),
        sb_edge.as_mut_ptr(),
        sa_edge.as_mut_ptr(),
    );

    // SAFETY: (pointer arithmetic and every access below) t < batch, and all
    // offsets address rows < m, columns < n, k indices < k (Problem
    // invariants); the scratch regions were sized by `plan` for these blocks.
    unsafe {
        let a = p.a.add(t * p.a_bs);
        let b = p.b.add(t * p.b_bs);
        let c = p.c.add(t * p.c_bs);
        let mut p0 = 0;
        while p0 < p.k {
            let kc = kc_max.min(p.k - p0);
            let up = Update::for_block(p.alpha, p.beta, p.bias, p.relu, p0 == 0, p0 + kc == p.k);
            let mut ic = i0;
            while ic < i1 {
                let mc = if plan.pack_a {
                    bl.mc.min(i1 - ic)
                } else {
                    i1 - ic
                };
                let a_blk = a.add(ic * p.a_rs + p0 * p.a_cs);
                let m_full = mc - mc % MR;
                if plan.pack_a {
                    pack_a::<S, MR>(s, sa, a_blk, p.a_rs, p.a_cs, mc, kc);
                } else if m_full < mc {
                    pack_a::<S, MR>(
                        s,
                        sa_edge,
                        a_blk.add(m_full * p.a_rs),
                        p.a_rs,
                        p.a_cs,
                        mc - m_full,
                        kc,
                    );
                }
                let mut jc = j0;
                while jc < j1 {
                    let nc = if plan.pack_b {
                        bl.nc.min(j1 - jc)
                    } else {
                        j1 - jc
                    };
                    let b_blk = b.add(p0 * p.b_rs + jc * p.b_cs);
                    let n_full = nc - nc % nr;
                    // Row-major B is packed by the first row panel's tiles as
                    // they read it (full panels; the edge panel up front).
                    let fused = plan.fuse_b && mc >= MR;
                    if fused {
                        if n_full < nc {
                            pack_b::<S, NV>(
                                s,
                                sb.add(n_full * kc),
                                b_blk.add(n_full),
                                p.b_rs,
                                1,
                                kc,
                                nc - n_full,
                            );
                        }
                    } else if plan.pack_b {
                        pack_b::<S, NV>(s, sb, b_blk, p.b_rs, p.b_cs, kc, nc);
                    } else if n_full < nc {
                        pack_b::<S, NV>(
                            s,
                            sb_edge,
                            b_blk.add(n_full * p.b_cs),
                            p.b_rs,
                            p.b_cs,
                            kc,
                            nc - n_full,
                        );
                    }
                    let mut ir = 0;
                    while ir < mc {
                        let mr = MR.min(mc - ir);
                        let (ap, a_rs, a_cs) = if plan.pack_a {
                            (sa.add(ir * kc).cast_const(), 1, MR)
                        } else if mr == MR {
                            (a_blk.add(ir * p.a_rs), p.a_rs, p.a_cs)
                        } else {
                            (sa_edge.cast_const(), 1, MR)
                        };
                        let mut jr = 0;
                        while jr < nc {
                            let nrr = nr.min(nc - jr);
                            // See `tile_fit`: few rows over two panels read
                            // in place, on paths with narrow panels.
                            let wide = mr <= 2
                                && matches!(NV, 2 | 3)
                                && !plan.pack_b
                                && jr + 2 * nr <= n_full;
                            let (bp, b_rs) = if plan.pack_b {
                                (sb.add(jr * kc).cast_const(), nr)
                            } else if nrr == nr {
                                (b_blk.add(jr), p.b_rs)
                            } else {
                                (sb_edge.cast_const(), nr)
                            };
                            let out = Out {
                                c: c.add((ic + ir) * p.c_rs + (jc + jr) * p.c_cs),
                                rs: p.c_rs,
                                cs: p.c_cs,
                                m: mr,
                                n: if wide { 2 * nr } else { nrr },
                            };
                            let up = Update {
                                bias: up.bias.offset(ic + ir, jc + jr),
                                ..up
                            };
                            if fused && ir == 0 && jr < n_full {
                                // A full tile reading B in place, packing it.
                                let (b_in, packed) = (b_blk.add(jr), sb.add(jr * kc));
                                tile::<S, MR, NV>(
                                    s, kc, ap, a_rs, a_cs, b_in, p.b_rs, packed, out, &up,
                                );
                            } else {
                                tile_fit::<S, MR, NV>(s, kc, ap, a_rs, a_cs, bp, b_rs, out, &up);
                            }
                            jr += if wide { 2 * nr } else { nr };
                        }
                        ir += MR;
                    }
                    jc += nc;
                }
                ic += mc;
            }
            p0 += kc;
        }
    }
}
