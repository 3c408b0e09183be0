//! Packing: copies a block of A or B into the panel layout the micro-kernel
//! reads, with zero padding at the edges. Transposed operands are handled here,
//! by the order of the copy, never by a separate transposition. [`transpose`]
//! moves the result of a product computed transposed (`C^T = B^T A^T`, see
//! `driver::via_transposed`) into C.

use super::simd::Simd;

/// Packs rows `0..mc`, columns `0..kc` of A (`A[i, p]` at `a + i * rs + p * cs`)
/// into panels of `MR` rows: panel `q` starts at `dst + q * MR * kc` and holds
/// `A[q * MR + i, p]` at `p * MR + i`. Rows past `mc` are zero.
///
/// # Safety
/// The A block is readable; `dst` has room for `ceil(mc / MR) * MR * kc` values.
#[inline(always)]
pub(super) unsafe fn pack_a<S: Simd, const MR: usize>(
    s: S,
    dst: *mut f32,
    a: *const f32,
    rs: usize,
    cs: usize,
    mc: usize,
    kc: usize,
) {
    let mut i0 = 0;
    let mut d = dst;
    while i0 < mc {
        let rows = MR.min(mc - i0);
        // Padding rows past the edge re-read the panel's first row (in bounds)
        // and store 0, which keeps the inner loop branch-free.
        let src: [*const f32; MR] =
            core::array::from_fn(|i| a.wrapping_add((i0 + if i < rows { i } else { 0 }) * rs));
        // SAFETY: every source pointer addresses an existing row (i0 + i for
        // i < rows, else i0) and p < kc an existing column; `d` has room for
        // MR * kc values.
        unsafe {
            let mut p0 = 0;
            if rs == 1 && rows == MR {
                // Column-major A, full panel: each k step's MR values are
                // adjacent, one fixed-size copy (a few vector moves).
                for p in 0..kc {
                    core::ptr::copy_nonoverlapping(src[0].add(p * cs), d.add(p * MR), MR);
                }
                p0 = kc;
            } else if cs == 1 && rows == MR {
                // Row-major A, full panel: W columns at a time in registers.
                while p0 + S::W <= kc {
                    let at: [*const f32; MR] = core::array::from_fn(|i| src[i].add(p0));
                    s.pack_rows(&at, d.add(p0 * MR));
                    p0 += S::W;
                }
            }
            for p in p0..kc {
                let out = d.add(p * MR);
                for (i, r) in src.iter().enumerate() {
                    let v = *r.add(p * cs);
                    *out.add(i) = if i < rows { v } else { 0.0 };
                }
            }
            d = d.add(MR * kc);
        }
        i0 += MR;
    }
}

/// Packs rows `0..kc`, columns `0..nc` of B (`B[p, j]` at `b + p * rs + j * cs`)
/// into panels of `NV * W` columns: panel `q` starts at `dst + q * nr * kc` and
/// holds `B[p, q * nr + j]` at `p * nr + j`. Columns past `nc` are zero.
///
/// # Safety
/// The B block is readable; `dst` has room for `ceil(nc / nr) * nr * kc` values.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_b<S: Simd, const NV: usize>(
    s: S,
    dst: *mut f32,
    b: *const f32,
    rs: usize,
    cs: usize,
    kc: usize,
    nc: usize,
) {
    let nr = NV * S::W;
    let mut j0 = 0;
    let mut d = dst;
    while j0 < nc {
        let cols = nr.min(nc - j0);
        // SAFETY: columns j0 .. j0 + cols exist; `d` has room for nr * kc values.
        unsafe {
            let src = b.add(j0 * cs);
            if cs == 1 && cols == nr {
                // Row-major B, full panel: each panel row is a contiguous copy.
                let mut row = src;
                let mut out = d;
                for _ in 0..kc {
                    for v in 0..NV {
                        s.store(out.add(v * S::W), s.load(row.add(v * S::W)));
                    }
                    row = row.wrapping_add(rs);
                    out = out.add(nr);
                }
            } else if cs == 1 {
                // Row-major B, edge panel: partial loads fill the rest with 0.
                // Vectors wholly past the edge are zero without forming their
                // address: `row.add(j)` there can point past the end of B's
                // allocation, which is undefined behaviour even unread (miri
                // found it, tests/unsafe_regressions.rs).
                for p in 0..kc {
                    let row = src.add(p * rs);
                    let out = d.add(p * nr);
                    for v in 0..NV {
                        let j = v * S::W;
                        let w = S::W.min(cols.saturating_sub(j));
                        let x = if w == S::W {
                            s.load(row.add(j))
                        } else if w == 0 {
                            s.zero()
                        } else {
                            s.load_partial(row.add(j), w)
                        };
                        s.store(out.add(j), x);
                    }
                }
            } else {
                if rs == 1 {
                    // Column-major B (e.g. a transposed weight): each column is
                    // contiguous; W columns at a time, W x W blocks transposed
                    // in registers, the last `kc % W` panel rows one by one.
                    let full = cols / S::W * S::W;
                    let pf = kc / S::W * S::W;
                    let mut j = 0;
                    while j < full {
                        let col = src.add(j * cs);
                        let mut p = 0;
                        while p < pf {
                            s.transpose_block(col.add(p), cs, d.add(p * nr + j), nr);
                            p += S::W;
                        }
                        for p in pf..kc {
                            for c in 0..S::W {
                                *d.add(p * nr + j + c) = *col.add(c * cs + p);
                            }
                        }
                        j += S::W;
                    }
                    for p in 0..kc {
                        for j in full..cols {
                            *d.add(p * nr + j) = *src.add(j * cs + p);
                        }
                    }
                } else {
                    for p in 0..kc {
                        let row = src.add(p * rs);
                        for j in 0..cols {
                            *d.add(p * nr + j) = *row.add(j * cs);
                        }
                    }
                }
                if cols < nr {
                    for p in 0..kc {
                        for j in cols..nr {
                            *d.add(p * nr + j) = 0.0;
                        }
                    }
                }
            }
            d = d.add(nr * kc);
        }
        j0 += nr;
    }
}

/// `dst[j * dst_rs + i] = src[i * src_rs + j]` for `i < rows`, `j < cols`:
/// `W x W` blocks through registers, the edges one by one.
///
/// # Safety
/// `src` is readable and `dst` writable at those offsets, and they do not
/// overlap.
#[inline(always)]
pub(super) unsafe fn transpose<S: Simd>(
    s: S,
    src: *const f32,
    src_rs: usize,
    dst: *mut f32,
    dst_rs: usize,
    rows: usize,
    cols: usize,
) {
    let w = S::W;
    let (rf, cf) = (rows / w * w, cols / w * w);
    // SAFETY: every offset below addresses i < rows, j < cols.
    unsafe {
        for i in (0..rf).step_by(w) {
            for j in (0..cf).step_by(w) {
                s.transpose_block(
                    src.add(i * src_rs + j),
                    src_rs,
                    dst.add(j * dst_rs + i),
                    dst_rs,
                );
            }
        }
        for i in 0..rows {
            let j0 = if i < rf { cf } else { 0 };
            for j in j0..cols {
                *dst.add(j * dst_rs + i) = *src.add(i * src_rs + j);
            }
        }
    }
}
