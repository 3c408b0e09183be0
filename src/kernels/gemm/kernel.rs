//! The register micro-kernel, written once over [`Simd`], and the write-back of
//! results into C (`C = alpha * acc + beta * C`, then bias and ReLU).
//!
//! A tile is `MR` rows by `NR = NV * W` columns of C. Its accumulators live in
//! `MR * NV` registers; each step of the k loop loads `NV` vectors of one row of
//! the B panel, broadcasts `MR` values of one column of the A panel and does
//! `MR * NV` fused multiply-adds.
//!
//! Every element of C goes through the same sequence of operations whichever
//! tile, thread or write-back path it lands in, so results do not depend on the
//! thread count: the k loop runs in order, and the write-back computes
//! `r = acc * alpha`, then `r = r + old * beta` (skipped when beta is 0; C is then
//! not read), then `r = r + bias`, then ReLU, with one rounding per step, the
//! same on the vector and the scalar write-back. Multiplications by exactly 1
//! are skipped, which gives the same bits.

use super::simd::{Scalar, Simd};

/// Runs `$body` with `$i` bound to 0, 1, ... `$n - 1` (`$n <= 8`): the
/// loops over a tile's rows and registers, written out in optimised builds
/// (each value behind a constant test the compiler removes). Where the
/// compiler does not unroll loops (`opt-level = "z"`, the boards'
/// firmware), a loop over an array of accumulators keeps the array on the
/// stack, a load and a store around every multiply-add (Cortex-M4: ten
/// instructions a product, QEMU's count); with constant indices the
/// accumulators stay in registers at every level.
///
/// Unoptimised builds (`opt-level = 0`, `cfg(ts_unoptimized)` from
/// `build.rs`) keep the loop: there every written-out copy takes its own
/// stack slots, and the AVX-512 task entry, into which every tile shape is
/// inlined, grew a 2.3 MB frame under AddressSanitizer (past a thread's
/// 2 MiB stack).
macro_rules! unrolled {
    ($i:ident < $n:expr, $body:block) => {{
        #[cfg(ts_unoptimized)]
        for $i in 0..$n $body
        #[cfg(not(ts_unoptimized))]
        unrolled!(@ $i, $n, $body, 0 1 2 3 4 5 6 7);
    }};
    (@ $i:ident, $n:expr, $body:block, $($k:literal)*) => {
        $({
            let $i: usize = $k;
            if $i < $n $body
        })*
    };
}
pub(super) use unrolled;

/// Largest `MR * NR` of any path (sizes the strided write-back buffer).
pub(super) const MAX_TILE: usize = 512;

/// A bias vector, located relative to the block being written.
#[derive(Clone, Copy, Debug)]
pub(super) enum Bias {
    /// No bias.
    None,
    /// `bias[j]` is added to column `j`: points at the bias of column 0.
    Col(*const f32),
    /// `bias[i]` is added to row `i`: points at the bias of row 0.
    Row(*const f32),
}

impl Bias {
    /// The same bias for the block starting at row `i`, column `j`.
    ///
    /// # Safety
    /// The result must stay inside the bias slice the pointer came from (the
    /// caller offsets by a row/column that exists).
    #[inline(always)]
    pub(super) unsafe fn offset(self, i: usize, j: usize) -> Bias {
        match self {
            Bias::None => Bias::None,
            // SAFETY: forwarded from the caller.
            Bias::Col(p) => Bias::Col(unsafe { p.add(j) }),
            // SAFETY: forwarded from the caller.
            Bias::Row(p) => Bias::Row(unsafe { p.add(i) }),
        }
    }
}

/// How a block of accumulators is merged into C.
#[derive(Clone, Copy, Debug)]
pub(super) struct Update {
    /// Multiplies the product.
    pub alpha: f32,
    /// Multiplies the old C (ignored when `beta_zero`).
    pub beta: f32,
    /// C is overwritten without being read.
    pub beta_zero: bool,
    /// Added after the product and the old C.
    pub bias: Bias,
    /// ReLU applied last.
    pub relu: bool,
}

impl Update {
    /// The update for a k block: the first block applies the caller's beta, the
    /// later ones accumulate (beta 1); bias and ReLU come with the last block.
    pub(super) fn for_block(
        alpha: f32,
        beta: f32,
        bias: Bias,
        relu: bool,
        first: bool,
        last: bool,
    ) -> Update {
        Update {
            alpha,
            beta: if first { beta } else { 1.0 },
            beta_zero: first && beta == 0.0,
            bias: if last { bias } else { Bias::None },
            relu: last && relu,
        }
    }
}

/// Where a tile is written: `C[i, j]` at `c + i * rs + j * cs` for `i < m`,
/// `j < n`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Out {
    pub c: *mut f32,
    pub rs: usize,
    pub cs: usize,
    pub m: usize,
    pub n: usize,
}

/// Merges one register of accumulators with the old C values (see the module
/// docs for the exact sequence).
#[inline(always)]
pub(super) fn finish<S: Simd>(
    s: S,
    acc: S::V,
    old: S::V,
    up: &Update,
    alpha: S::V,
    beta: S::V,
    bias: Option<S::V>,
) -> S::V {
    let mut r = if up.alpha == 1.0 {
        acc
    } else {
        s.mul(acc, alpha)
    };
    if !up.beta_zero {
        r = s.add(
            r,
            if up.beta == 1.0 {
                old
            } else {
                s.mul(old, beta)
            },
        );
    }
    if let Some(b) = bias {
        r = s.add(r, b);
    }
    if up.relu { s.relu(r) } else { r }
}

/// Computes one `MR x (NV * W)` tile over `kc` steps and writes it to `out`.
///
/// A panel: `A[i, p]` at `a + i * a_rs + p * a_cs`. B panel: `B[p, j]` at
/// `b + p * b_rs + j`. Unless `packed` is null, each B row the k loop loads
/// is also stored at `packed + p * NV * W`: the first row panel of a block
/// packs B for the others without a separate pass over it.
///
/// # Safety
/// - all `MR` rows and `kc` columns of the A panel and all `kc` rows and
///   `NV * W` columns of the B panel are readable (edge panels are packed with
///   zero padding by the caller);
/// - a non-null `packed .. + kc * NV * W` is writable and overlaps neither
///   the panels nor C;
/// - `out` describes `out.m <= MR` rows and `out.n <= NV * W` columns of
///   writable C memory, not read or written by anyone else meanwhile;
/// - a `Bias` in `up` points at `out.m` (row) or `out.n` (column) readable values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    packed: *mut f32,
    out: Out,
    up: &Update,
) {
    // C's lines are wanted only after the k loop, which streams a B panel
    // through L1: have them in L2 by then (C of a large product comes from
    // L3 or memory, a row stride apart: no prefetcher follows it).
    if out.cs == 1 {
        for i in 0..out.m {
            s.prefetch_l2(out.c.wrapping_add(i * out.rs), out.n);
        }
    }
    let mut acc = [[s.zero(); NV]; MR];
    let pack = !packed.is_null();
    // SAFETY: forwarded from the caller.
    if !pack && unsafe { s.accumulate_tuned::<MR, NV>(&mut acc, kc, a, a_rs, a_cs, b, b_rs) } {
        // Done by the path's hand-scheduled loop.
    } else {
        // The generic loop (also when packing B on the way: it stores each B
        // row it loads). Two copies each: rows of the A panel adjacent
        // (packed, or A column-major) folds the row offsets into the
        // addressing; otherwise they are loop invariants.
        let acc = &mut acc;
        // SAFETY: forwarded from the caller.
        unsafe {
            match (a_rs == 1, pack) {
                (true, false) => {
                    accumulate::<S, MR, NV, true, false>(s, acc, kc, a, 1, a_cs, b, b_rs, packed)
                }
                (true, true) => {
                    accumulate::<S, MR, NV, true, true>(s, acc, kc, a, 1, a_cs, b, b_rs, packed)
                }
                (false, false) => accumulate::<S, MR, NV, false, false>(
                    s, acc, kc, a, a_rs, a_cs, b, b_rs, packed,
                ),
                (false, true) => {
                    accumulate::<S, MR, NV, false, true>(s, acc, kc, a, a_rs, a_cs, b, b_rs, packed)
                }
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { write_tile::<S, MR, NV>(s, &acc, out, up) };
}

/// The k loop of [`tile`].
///
/// # Safety
/// As [`tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub(super) unsafe fn accumulate<
    S: Simd,
    const MR: usize,
    const NV: usize,
    const UNIT_ROWS: bool,
    const PACK: bool,
>(
    s: S,
    acc: &mut [[S::V; NV]; MR],
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    packed: *mut f32,
) {
    const { assert!(MR <= 8 && NV <= 8) };
    // Row start pointers, fixed for the whole loop: each broadcast address is
    // `row + offset`, independent of the other rows' (deriving row i + 1 from
    // row i each step would chain the address arithmetic).
    let mut rows = [a; MR];
    unrolled!(i < MR, {
        rows[i] = a.wrapping_add(i * if UNIT_ROWS { 1 } else { a_rs });
    });
    // The accumulators as a local: with constant indices only (`unrolled!`)
    // they live in registers for the whole loop.
    let mut c = *acc;
    let mut off = 0;
    let mut off_b = 0;
    let mut bp = b;
    for _ in 0..kc {
        let mut bv = [s.zero(); NV];
        unrolled!(v < NV, {
            // SAFETY: row p of the B panel has NV * W readable values.
            bv[v] = unsafe { s.load(bp.add(v * S::W)) };
            if PACK {
                // SAFETY: (`PACK` only) the caller vouches for `packed`.
                unsafe { s.store(packed.add(off_b + v * S::W), bv[v]) };
            }
        });
        if PACK {
            off_b += NV * S::W;
        }
        unrolled!(i < MR, {
            // SAFETY: A[i, p] is inside the readable A panel.
            let av = unsafe { s.bcast(rows[i].add(off)) };
            unrolled!(v < NV, {
                c[i][v] = s.fma(av, bv[v], c[i][v]);
            });
        });
        off += a_cs;
        // The last step moves the pointer one past the panel; it is not
        // dereferenced there. `wrapping_add` keeps that free of UB conditions.
        bp = bp.wrapping_add(b_rs);
    }
    *acc = c;
}

/// Writes a tile of accumulators into C.
///
/// # Safety
/// `out` and the bias in `up` as for [`tile`].
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn write_tile<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    out: Out,
    up: &Update,
) {
    const { assert!(MR * NV * S::W <= MAX_TILE) };
    if out.cs != 1 {
        // Strided C: through a buffer, element by element.
        let nr = NV * S::W;
        let mut buf = [0.0f32; MAX_TILE];
        for i in 0..MR {
            for v in 0..NV {
                // SAFETY: MR * NR <= MAX_TILE (asserted at compile time above).
                unsafe { s.store(buf.as_mut_ptr().add(i * nr + v * S::W), acc[i][v]) };
            }
        }
        // SAFETY: forwarded from the caller; `buf` holds `out.m` rows of `nr`.
        unsafe { write_strided(buf.as_ptr(), nr, out, up) };
        return;
    }
    if out.m == MR
        && out.n == NV * S::W
        && up.alpha == 1.0
        && matches!(up.bias, Bias::None)
        && !up.relu
    {
        // Full tile, plain product: store, or add to C.
        let add = if up.beta_zero {
            false
        } else if up.beta == 1.0 {
            true
        } else {
            // SAFETY: forwarded from the caller.
            return unsafe { write_general::<S, MR, NV>(s, acc, out, up) };
        };
        for i in 0..MR {
            for v in 0..NV {
                // SAFETY: row i < MR = out.m, columns v*W .. (v+1)*W <= out.n.
                unsafe {
                    let p = out.c.add(i * out.rs + v * S::W);
                    let r = if add {
                        s.add(acc[i][v], s.load(p))
                    } else {
                        acc[i][v]
                    };
                    s.store(p, r);
                }
            }
        }
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { write_general::<S, MR, NV>(s, acc, out, up) }
}

/// The general vector write-back of [`write_tile`] (partial tiles, alpha,
/// beta, bias, ReLU), for unit column stride.
///
/// # Safety
/// As [`write_tile`], with `out.cs == 1`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn write_general<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    acc: &[[S::V; NV]; MR],
    out: Out,
    up: &Update,
) {
    let alpha = s.splat(up.alpha);
    let beta = s.splat(up.beta);
    for i in 0..MR {
        if i >= out.m {
            break;
        }
        // SAFETY: row i < out.m of C.
        let row = unsafe { out.c.add(i * out.rs) };
        let row_bias = match up.bias {
            // SAFETY: the row bias has out.m values.
            Bias::Row(p) => Some(unsafe { s.bcast(p.add(i)) }),
            _ => None,
        };
        for v in 0..NV {
            let j = v * S::W;
            if j >= out.n {
                break;
            }
            let w = S::W.min(out.n - j);
            // SAFETY: (all accesses below) columns j .. j + w < out.n of row i,
            // and of the column bias, which has out.n values.
            unsafe {
                let old = if up.beta_zero {
                    s.zero()
                } else if w == S::W {
                    s.load(row.add(j))
                } else {
                    s.load_partial(row.add(j), w)
                };
                let bias = match up.bias {
                    Bias::Col(p) if w == S::W => Some(s.load(p.add(j))),
                    Bias::Col(p) => Some(s.load_partial(p.add(j), w)),
                    _ => row_bias,
                };
                let r = finish(s, acc[i][v], old, up, alpha, beta, bias);
                if w == S::W {
                    s.store(row.add(j), r)
                } else {
                    s.store_partial(row.add(j), r, w)
                }
            }
        }
    }
}

/// Element-by-element write-back of accumulators `acc[i * acc_rs + j]` into
/// `out` (any strides), with the same arithmetic as the vector write-back.
/// `acc_rs` may be 0 (one row of accumulators for every row of `out`).
///
/// # Safety
/// `acc[i * acc_rs + j]` is readable for `i < out.m`, `j < out.n`; `out` and
/// the bias in `up` as for [`tile`].
#[inline(always)]
pub(super) unsafe fn write_strided(acc: *const f32, acc_rs: usize, out: Out, up: &Update) {
    let s = Scalar;
    for i in 0..out.m {
        for j in 0..out.n {
            // SAFETY: i < out.m, j < out.n: inside `acc`, C and the bias.
            unsafe {
                let c = out.c.add(i * out.rs + j * out.cs);
                let old = if up.beta_zero { 0.0 } else { *c };
                let bias = match up.bias {
                    Bias::None => None,
                    Bias::Col(p) => Some(*p.add(j)),
                    Bias::Row(p) => Some(*p.add(i)),
                };
                *c = finish(
                    s,
                    *acc.add(i * acc_rs + j),
                    old,
                    up,
                    up.alpha,
                    up.beta,
                    bias,
                );
            }
        }
    }
}
