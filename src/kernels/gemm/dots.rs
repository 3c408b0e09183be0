//! Products with few rows whose A rows and B columns are both contiguous
//! (`X W^T` with the weight stored `[out, in]`, as a `Linear` layer keeps
//! it, at a small batch): every element of C is a dot product of two
//! contiguous vectors, computed in place without packing.
//!
//! The blocked loop would pack B, transposing every `W x W` block, and use
//! each packed value only `m` times: at a batch of 2 to 16 that transpose
//! costs more than the arithmetic (Intel, AVX-512, `[m,784]x[784,256]`:
//! 30 us at m = 2 against 11 for the same product with B row-major).
//! Here a tile of `R` rows of A by `G` columns of B shares its loads along
//! k: `R + G` vector loads feed `R * G` fused multiply-adds, one accumulator
//! each, reduced once at the end. The `G` columns (a few KiB) stay in L1
//! while every row group of A (at most [`DOTS_MAX_M`] rows) passes over
//! them; where A would not fit in L1 beside them, k is split into blocks.
//!
//! Each element's accumulation (lanes along k in order, the same partial
//! tail, the same horizontal sum, k blocks that depend only on m and k)
//! does not depend on the tile it falls in or on the task, so results do
//! not depend on the thread count. It is not the
//! blocked loop's order (one multiply-add per k step, in order), so a product
//! taken here can differ in its last bits from the same product with B
//! stored row-major.

use super::driver::Problem;
use super::kernel::{Update, unrolled};
use super::simd::Simd;

/// Most rows of A a product may have to be computed as dot products; past
/// that the blocked loop's packing of B is shared by enough rows to pay.
/// Intel, one thread, `[m,784]x[784,256]`: at 16 rows level with the blocked
/// loop with W in cache (AVX-512 54.7 against 51.2 us, AVX2 72.0 against
/// 78.0) and 20 % faster with W coming from L3; at 24 and 32 rows slower.
pub(super) const DOTS_MAX_M: usize = 16;

/// Most columns of C accumulated per pass before their write-back (a task
/// with fewer uses its width: the scratch is `m` times the smaller).
pub(super) const DOTS_CHUNK: usize = 256;

/// Values of A (its rows' k values) above which k is split into blocks.
const A_IN_L1: usize = 8 * 1024;

/// Most values of k per block.
const KC_MAX: usize = 256;

/// The k block of an `m`-row product: all of k while A's `m x k` values fit
/// in 32 KiB (L1 with the B group beside them), else about [`KC_MAX`], equal
/// blocks rounded up to a register (`w` lanes). Each element then sums its
/// blocks' dot products in order. Intel, one thread, AVX-512,
/// `[m,784]x[784,256]`, alternated builds: blocks of 256 at m = 12 and 16
/// 34.1 and 43.8 us against 39.3 and 53.5 unblocked; at m = 4 and 8 (A in
/// L1) 13 and 5 % slower, hence the bound.
fn k_block(m: usize, k: usize, w: usize) -> usize {
    if m * k <= A_IN_L1 {
        return k;
    }
    let blocks = k.div_ceil(KC_MAX);
    k.div_ceil(blocks).div_ceil(w) * w
}

/// Columns of B per tile.
const G: usize = 4;

/// Whether `p` is computed by [`task`]: 2 to [`DOTS_MAX_M`] rows, rows of A
/// and columns of B contiguous (B not also row-contiguous), and `k` long
/// enough that the vector loop dominates (at least four registers).
pub(super) fn applies(p: &Problem<'_>, w: usize) -> bool {
    (2..=DOTS_MAX_M).contains(&p.m) && p.a_cs == 1 && p.b_rs == 1 && p.b_cs != 1 && p.k >= 4 * w
}

/// The `R x C` dot products `A[i] . B[:, j]` of the rows `a` and columns `b`
/// (`k` values each), written to `out[r * stride + c]` (`first`) or added
/// to it (a later k block).
///
/// # Safety
/// Each of `a` and `b` has `k` readable values; `out + r * stride + c` is
/// writable for `r < R`, `c < C`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn tile<S: Simd, const R: usize, const C: usize>(
    s: S,
    k: usize,
    a: [*const f32; R],
    b: [*const f32; C],
    out: *mut f32,
    stride: usize,
    first: bool,
) {
    const { assert!(R <= 8 && C <= 8) };
    let w = S::W;
    // Constant indices only (`unrolled!`): the accumulators stay in
    // registers where loops are not unrolled (the boards' firmware).
    let mut acc = [[s.zero(); C]; R];
    let mut bv = [s.zero(); C];
    let mut q = 0;
    // SAFETY: (all loads) indices q .. q + w <= k, or a partial load of the
    // last k - q values; `out` as the caller guarantees.
    unsafe {
        while q + w <= k {
            unrolled!(c < C, {
                bv[c] = s.load(b[c].add(q));
            });
            unrolled!(r < R, {
                let av = s.load(a[r].add(q));
                unrolled!(c < C, {
                    acc[r][c] = s.fma(av, bv[c], acc[r][c]);
                });
            });
            q += w;
        }
        if q < k {
            let rest = k - q;
            unrolled!(c < C, {
                bv[c] = s.load_partial(b[c].add(q), rest);
            });
            unrolled!(r < R, {
                let av = s.load_partial(a[r].add(q), rest);
                unrolled!(c < C, {
                    acc[r][c] = s.fma(av, bv[c], acc[r][c]);
                });
            });
        }
        // Sums four columns at a time; a single column as the first of four
        // (its sum does not depend on the others), so every element gets
        // the same bits whichever tile computes it.
        let z = s.zero();
        for r in 0..R {
            let row = out.add(r * stride);
            let mut c = 0;
            while c + 4 <= C {
                let v = s.hsum4([acc[r][c], acc[r][c + 1], acc[r][c + 2], acc[r][c + 3]]);
                for (e, x) in v.into_iter().enumerate() {
                    let o = row.add(c + e);
                    *o = if first { x } else { *o + x };
                }
                c += 4;
            }
            while c < C {
                let x = s.hsum4([acc[r][c], z, z, z])[0];
                let o = row.add(c);
                *o = if first { x } else { *o + x };
                c += 1;
            }
        }
    }
}

/// The dot products of rows `i .. i + R` of A with `C` columns starting at
/// `b0` (column stride `b_cs`), written to `out` (row stride `stride`) or
/// added to it, as [`tile`].
///
/// # Safety
/// As [`tile`], for rows `i .. i + R` of A (`a`, row stride `a_rs`) and the
/// columns.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn rows<S: Simd, const R: usize, const C: usize>(
    s: S,
    k: usize,
    a: *const f32,
    a_rs: usize,
    i: usize,
    b0: *const f32,
    b_cs: usize,
    out: *mut f32,
    stride: usize,
    first: bool,
) {
    let mut ap = [a; R];
    for (r, p) in ap.iter_mut().enumerate() {
        *p = a.wrapping_add((i + r) * a_rs);
    }
    let mut bp = [b0; C];
    for (c, p) in bp.iter_mut().enumerate() {
        *p = b0.wrapping_add(c * b_cs);
    }
    // SAFETY: forwarded from the caller.
    unsafe { tile::<S, R, C>(s, k, ap, bp, out.add(i * stride), stride, first) }
}

/// Every row of A (`m` of them) against `C` columns starting at `b0`, over
/// `k` values from `a` and `b0` (one k block: `first` writes `out`, later
/// blocks add to it), tiles of `R` rows (then 2, then 1 for the rest).
///
/// # Safety
/// As [`rows`] for every row of A.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn columns<S: Simd, const R: usize, const C: usize>(
    s: S,
    p: &Problem<'_>,
    a: *const f32,
    b0: *const f32,
    out: *mut f32,
    stride: usize,
    k: usize,
    first: bool,
) {
    let m = p.m;
    let mut i = 0;
    // SAFETY: forwarded from the caller; i + rows <= m.
    unsafe {
        while i + R <= m {
            rows::<S, R, C>(s, k, a, p.a_rs, i, b0, p.b_cs, out, stride, first);
            i += R;
        }
        if R > 2 && i + 2 <= m {
            rows::<S, 2, C>(s, k, a, p.a_rs, i, b0, p.b_cs, out, stride, first);
            i += 2;
        }
        if i < m {
            rows::<S, 1, C>(s, k, a, p.a_rs, i, b0, p.b_cs, out, stride, first);
        }
    }
}

/// Columns `j0..j1` of C for batch item `t`: `R` rows of A per tile (4 where
/// the ISA has 32 registers, 2 on AVX2's 16). `scratch` holds `m *
/// min(DOTS_CHUNK, j1 - j0)` values.
#[inline(always)]
pub(super) fn task<S: Simd, const R: usize>(
    s: S,
    p: &Problem<'_>,
    t: usize,
    j0: usize,
    j1: usize,
    scratch: &mut [f32],
) {
    let stride = DOTS_CHUNK.min(j1 - j0);
    let kc = k_block(p.m, p.k, S::W);
    let acc = scratch[..p.m * stride].as_mut_ptr();
    let up = Update::for_block(p.alpha, p.beta, p.bias, p.relu, true, true);
    // SAFETY: (all accesses) t < batch; rows < m of A and C, columns < n of
    // B and C, k values of each row of A and column of B (Problem
    // invariants: `applies` checked the unit strides); `acc` has m rows of
    // `stride` values and column offsets below the chunk width (<= stride).
    unsafe {
        let a = p.a.add(t * p.a_bs);
        let b = p.b.add(t * p.b_bs);
        let c = p.c.add(t * p.c_bs);
        let mut jc = j0;
        while jc < j1 {
            let cw = stride.min(j1 - jc);
            let mut k0 = 0;
            while k0 < p.k {
                let kc = kc.min(p.k - k0);
                let first = k0 == 0;
                let mut j = 0;
                while j + G <= cw {
                    let b0 = b.add((jc + j) * p.b_cs + k0);
                    columns::<S, R, G>(s, p, a.add(k0), b0, acc.add(j), stride, kc, first);
                    j += G;
                }
                while j < cw {
                    let b0 = b.add((jc + j) * p.b_cs + k0);
                    columns::<S, R, 1>(s, p, a.add(k0), b0, acc.add(j), stride, kc, first);
                    j += 1;
                }
                k0 += kc;
            }
            for i in 0..p.m {
                let up = Update {
                    bias: up.bias.offset(i, jc),
                    ..up
                };
                super::gemv::write_row(
                    s,
                    acc.add(i * stride),
                    c.add(i * p.c_rs + jc * p.c_cs),
                    p.c_cs,
                    cw,
                    &up,
                );
            }
            jc += cw;
        }
    }
}
