//! Matrix-vector products (`m == 1` after normalisation) and rank-one
//! products (`k == 1`): bandwidth-bound, so B is streamed once in its storage
//! order and never packed.
//!
//! - Rows of B contiguous: `y += x[p] * B[p, :]`, four rows of B per pass over
//!   an L1-resident chunk of accumulators, B read sequentially.
//! - Columns of B contiguous: `y[j] = dot(x, B[:, j])`, several columns at a
//!   time sharing the loads of `x`.
//! - Rank one: `C[i, :] = A[i, 0] B[0, :]`, each row computed and written in
//!   one pass. Each element is the tile kernel's `fma(a, b, 0)` followed by
//!   the same write-back, so the bits are those the blocked loop gives.
//!
//! Each output element is computed by the same operations in the same order
//! whichever task or group it falls in, so results do not depend on the thread
//! count.

use super::driver::{GEMV_CHUNK, Problem};
use super::kernel::{Bias, Out, Update, finish, write_strided};
use super::simd::Simd;

/// `w <= W` values from `p` (a full or a partial load).
///
/// # Safety
/// `p .. p + w` is readable.
#[inline(always)]
unsafe fn load_upto<S: Simd>(s: S, p: *const f32, w: usize) -> S::V {
    // SAFETY: forwarded from the caller.
    unsafe {
        if w == S::W {
            s.load(p)
        } else {
            s.load_partial(p, w)
        }
    }
}

/// Writes accumulators `acc[0..n]` into one row of C (`c`, column stride `cs`).
///
/// # Safety
/// `acc` has `n` values; `c + j * cs` is writable for `j < n`; a bias in `up`
/// has `n` (column) or 1 (row) readable values.
#[inline(always)]
pub(super) unsafe fn write_row<S: Simd>(
    s: S,
    acc: *const f32,
    c: *mut f32,
    cs: usize,
    n: usize,
    up: &Update,
) {
    let out = Out {
        c,
        rs: 0,
        cs,
        m: 1,
        n,
    };
    if cs != 1 {
        // SAFETY: forwarded from the caller.
        unsafe { write_strided(acc, 0, out, up) };
        return;
    }
    let row_bias = match up.bias {
        // SAFETY: a row bias has one value for this row.
        Bias::Row(p) => Some(unsafe { s.bcast(p) }),
        _ => None,
    };
    // SAFETY: forwarded from the caller; columns j .. j + w <= n of `acc`.
    unsafe { write_unit_row(s, c, n, up, row_bias, |j, w| load_upto(s, acc.add(j), w)) }
}

/// The vector write-back of one row of C with unit column stride: `acc(j, w)`
/// gives the accumulators of columns `j .. j + w` (`w <= W`), merged as
/// [`finish`] merges them.
///
/// # Safety
/// `c .. c + n` is writable; a column bias in `up` has `n` readable values.
#[inline(always)]
unsafe fn write_unit_row<S: Simd>(
    s: S,
    c: *mut f32,
    n: usize,
    up: &Update,
    row_bias: Option<S::V>,
    acc: impl Fn(usize, usize) -> S::V,
) {
    let alpha = s.splat(up.alpha);
    let beta = s.splat(up.beta);
    let mut j = 0;
    while j < n {
        let w = S::W.min(n - j);
        // SAFETY: columns j .. j + w < n of C and the column bias.
        unsafe {
            let old = if up.beta_zero {
                s.zero()
            } else {
                load_upto(s, c.add(j), w)
            };
            let bias = match up.bias {
                Bias::Col(p) => Some(load_upto(s, p.add(j), w)),
                _ => row_bias,
            };
            let r = finish(s, acc(j, w), old, up, alpha, beta, bias);
            if w == S::W {
                s.store(c.add(j), r)
            } else {
                s.store_partial(c.add(j), r, w)
            }
        }
        j += S::W;
    }
}

/// `y[j0..j1] = x B[:, j0..j1]` for batch item `t`, rows of B contiguous
/// (`b_cs == 1`, or B has a single column).
#[inline(always)]
pub(super) fn rows_task<S: Simd>(
    s: S,
    p: &Problem<'_>,
    t: usize,
    j0: usize,
    j1: usize,
    scratch: &mut [f32],
) {
    let up = Update::for_block(p.alpha, p.beta, p.bias, p.relu, true, true);
    let acc = scratch[..GEMV_CHUNK.min(j1 - j0)].as_mut_ptr();
    // SAFETY: (all accesses) t < batch; columns < n, rows < k (Problem
    // invariants); `acc` has room for one chunk.
    unsafe {
        let x = p.a.add(t * p.a_bs);
        let b = p.b.add(t * p.b_bs);
        let c = p.c.add(t * p.c_bs);
        let mut jc = j0;
        while jc < j1 {
            let cw = GEMV_CHUNK.min(j1 - jc);
            for j in 0..cw {
                *acc.add(j) = 0.0;
            }
            let bc = b.add(jc);
            let mut q = 0;
            while q + 4 <= p.k {
                let x0 = s.bcast(x.add(q * p.a_cs));
                let x1 = s.bcast(x.add((q + 1) * p.a_cs));
                let x2 = s.bcast(x.add((q + 2) * p.a_cs));
                let x3 = s.bcast(x.add((q + 3) * p.a_cs));
                let r0 = bc.add(q * p.b_rs);
                let r1 = r0.add(p.b_rs);
                let r2 = r1.add(p.b_rs);
                let r3 = r2.add(p.b_rs);
                let mut j = 0;
                while j + S::W <= cw {
                    let mut y = s.load(acc.add(j));
                    y = s.fma(x0, s.load(r0.add(j)), y);
                    y = s.fma(x1, s.load(r1.add(j)), y);
                    y = s.fma(x2, s.load(r2.add(j)), y);
                    y = s.fma(x3, s.load(r3.add(j)), y);
                    s.store(acc.add(j), y);
                    j += S::W;
                }
                if j < cw {
                    let w = cw - j;
                    let mut y = s.load_partial(acc.add(j), w);
                    y = s.fma(x0, s.load_partial(r0.add(j), w), y);
                    y = s.fma(x1, s.load_partial(r1.add(j), w), y);
                    y = s.fma(x2, s.load_partial(r2.add(j), w), y);
                    y = s.fma(x3, s.load_partial(r3.add(j), w), y);
                    s.store_partial(acc.add(j), y, w);
                }
                q += 4;
            }
            while q < p.k {
                let x0 = s.bcast(x.add(q * p.a_cs));
                let r0 = bc.add(q * p.b_rs);
                let mut j = 0;
                while j + S::W <= cw {
                    let y = s.fma(x0, s.load(r0.add(j)), s.load(acc.add(j)));
                    s.store(acc.add(j), y);
                    j += S::W;
                }
                if j < cw {
                    let w = cw - j;
                    let y = s.fma(
                        x0,
                        s.load_partial(r0.add(j), w),
                        s.load_partial(acc.add(j), w),
                    );
                    s.store_partial(acc.add(j), y, w);
                }
                q += 1;
            }
            let up = Update {
                bias: up.bias.offset(0, jc),
                ..up
            };
            write_row(s, acc, c.add(jc * p.c_cs), p.c_cs, cw, &up);
            jc += cw;
        }
    }
}

/// Dot products of the contiguous `x` with `G` contiguous columns, `k` long.
///
/// Each column uses two accumulators: full vector pairs alternate between them,
/// a leftover full vector goes to the first, the partial tail to the second.
///
/// # Safety
/// `x` and every column have `k` readable values.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn dots<S: Simd, const G: usize>(
    s: S,
    k: usize,
    x: *const f32,
    cols: [*const f32; G],
) -> [f32; G] {
    let w = S::W;
    let mut acc0 = [s.zero(); G];
    let mut acc1 = [s.zero(); G];
    let mut q = 0;
    // SAFETY: (all loads) indices q .. q + w <= k, or a partial load of k - q.
    unsafe {
        while q + 2 * w <= k {
            let x0 = s.load(x.add(q));
            let x1 = s.load(x.add(q + w));
            for g in 0..G {
                acc0[g] = s.fma(x0, s.load(cols[g].add(q)), acc0[g]);
                acc1[g] = s.fma(x1, s.load(cols[g].add(q + w)), acc1[g]);
            }
            q += 2 * w;
        }
        if q + w <= k {
            let x0 = s.load(x.add(q));
            for g in 0..G {
                acc0[g] = s.fma(x0, s.load(cols[g].add(q)), acc0[g]);
            }
            q += w;
        }
        if q < k {
            let r = k - q;
            let x1 = s.load_partial(x.add(q), r);
            for g in 0..G {
                acc1[g] = s.fma(x1, s.load_partial(cols[g].add(q), r), acc1[g]);
            }
        }
    }
    let mut out = [0.0; G];
    for g in 0..G {
        out[g] = s.hsum(s.add(acc0[g], acc1[g]));
    }
    out
}

/// `y[j0..j1] = x B[:, j0..j1]` for batch item `t`, columns of B contiguous
/// (`b_rs == 1`).
#[inline(always)]
pub(super) fn dots_task<S: Simd>(
    s: S,
    p: &Problem<'_>,
    t: usize,
    j0: usize,
    j1: usize,
    scratch: &mut [f32],
) {
    const G: usize = 4;
    let up = Update::for_block(p.alpha, p.beta, p.bias, p.relu, true, true);
    let (xbuf, rest) = scratch.split_at_mut(p.k.div_ceil(16) * 16);
    let acc = rest[..GEMV_CHUNK.min(j1 - j0)].as_mut_ptr();
    // SAFETY: (all accesses) t < batch; columns < n, rows < k (Problem
    // invariants); `xbuf` has k values, `acc` one chunk.
    unsafe {
        let mut x = p.a.add(t * p.a_bs);
        if p.a_cs != 1 {
            for (q, v) in xbuf[..p.k].iter_mut().enumerate() {
                *v = *x.add(q * p.a_cs);
            }
            x = xbuf.as_ptr();
        }
        let b = p.b.add(t * p.b_bs);
        let c = p.c.add(t * p.c_bs);
        let mut jc = j0;
        while jc < j1 {
            let cw = GEMV_CHUNK.min(j1 - jc);
            let mut j = 0;
            while j + G <= cw {
                let col = b.add((jc + j) * p.b_cs);
                let cols = core::array::from_fn(|g| col.wrapping_add(g * p.b_cs));
                let y = dots::<S, G>(s, p.k, x, cols);
                for (g, v) in y.into_iter().enumerate() {
                    *acc.add(j + g) = v;
                }
                j += G;
            }
            while j < cw {
                let [y] = dots::<S, 1>(s, p.k, x, [b.add((jc + j) * p.b_cs)]);
                *acc.add(j) = y;
                j += 1;
            }
            let up = Update {
                bias: up.bias.offset(0, jc),
                ..up
            };
            write_row(s, acc, c.add(jc * p.c_cs), p.c_cs, cw, &up);
            jc += cw;
        }
    }
}

/// Rows `i0..i1` of the rank-one product `C = alpha * A B + beta * C` (+ bias,
/// ReLU) for batch item `t`: `k == 1`, B's single row and C's rows
/// contiguous (`b_cs == c_cs == 1`).
#[inline(always)]
pub(super) fn outer_task<S: Simd>(s: S, p: &Problem<'_>, t: usize, i0: usize, i1: usize) {
    debug_assert!(p.k == 1 && p.b_cs == 1 && p.c_cs == 1);
    let up = Update::for_block(p.alpha, p.beta, p.bias, p.relu, true, true);
    // The plain product (C overwritten, nothing else): stores only.
    let plain = up.alpha == 1.0 && up.beta_zero && matches!(up.bias, Bias::None) && !up.relu;
    let full = p.n - p.n % S::W;
    // SAFETY: (all accesses) t < batch; rows i < m of A and C, columns j < n
    // of B, C and a column bias, row i of a row bias (Problem invariants).
    unsafe {
        let a = p.a.add(t * p.a_bs);
        let b = p.b.add(t * p.b_bs);
        let c = p.c.add(t * p.c_bs);
        for i in i0..i1 {
            let av = s.bcast(a.add(i * p.a_rs));
            let row = c.add(i * p.c_rs);
            if plain {
                let mut j = 0;
                while j < full {
                    s.store(row.add(j), s.fma(av, s.load(b.add(j)), s.zero()));
                    j += S::W;
                }
                if j < p.n {
                    let w = p.n - j;
                    let r = s.fma(av, s.load_partial(b.add(j), w), s.zero());
                    s.store_partial(row.add(j), r, w);
                }
                continue;
            }
            let row_bias = match up.bias {
                Bias::Row(q) => Some(s.bcast(q.add(i))),
                _ => None,
            };
            let acc = |j, w| s.fma(av, load_upto(s, b.add(j), w), s.zero());
            write_unit_row(s, row, p.n, &up, row_bias, acc);
        }
    }
}
