//! Every path available on the host against an f64 reference, and every SIMD
//! path against the scalar one.
//!
//! Tolerance: for each element, `|got - want| <= (k + 4) * f32::EPSILON * bound`
//! where `bound = |alpha| * sum_p |A[i,p]| |B[p,j]| + |beta * C_old[i,j]| +
//! |bias[j]|`, i.e. the classic error bound of a length-k dot product in f32
//! (`k * u` with `u = EPSILON / 2`) with a factor 2 of slack plus the few
//! roundings of the write-back. Dropping or doubling a single product term
//! exceeds it for the sizes used here.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::kernels::{Isa, supported};

mod arguments;
mod dots;
mod layouts;
mod transposed;
mod tuned;

/// Paths to test: all the host supports (scalar only under miri).
fn isas() -> Vec<Isa> {
    if cfg!(miri) {
        vec![Isa::Scalar]
    } else {
        supported().iter().copied().collect()
    }
}

fn cfg(isa: Isa, threads: usize) -> Config {
    Config { isa, threads }
}

/// Deterministic values in [-1, 1) (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Storage orders a test matrix can be laid out in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Both strides non-unit: row-major with every element 2 apart and padded rows.
    Strided,
    /// Row-major with rows a page and a bit apart (a column block of a wide
    /// matrix; only the `std` tests use it).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    Wide,
}

/// A logical `rows x cols` matrix laid out in `layout`, starting `off` elements
/// into its buffer (to test unaligned starts).
struct Mat {
    buf: Vec<f32>,
    off: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn new(vals: &[f32], rows: usize, cols: usize, layout: Layout, off: usize, fill: f32) -> Mat {
        let (rs, cs) = match layout {
            Layout::RowMajor => (cols.max(1), 1),
            Layout::ColMajor => (1, rows.max(1)),
            Layout::Strided => (2 * cols + 3, 2),
            Layout::Wide => (cols.max(1030), 1),
        };
        let len = off
            + if rows * cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            };
        let mut buf = vec![fill; len];
        for i in 0..rows {
            for j in 0..cols {
                buf[off + i * rs + j * cs] = vals[i * cols + j];
            }
        }
        Mat {
            buf,
            off,
            rows,
            cols,
            rs,
            cs,
        }
    }
    fn r(&self) -> MatRef<'_> {
        MatRef::new(
            &self.buf[self.off..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
    }
    fn w(&mut self) -> MatMut<'_> {
        MatMut::new(
            &mut self.buf[self.off..],
            self.rows,
            self.cols,
            self.rs,
            self.cs,
        )
    }
    fn get(&self, i: usize, j: usize) -> f32 {
        self.buf[self.off + i * self.rs + j * self.cs]
    }
}

/// `(value, bound)` of the reference result, in f64.
#[allow(clippy::too_many_arguments)]
fn reference(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut val = vec![0.0; m * n];
    let mut bound = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut sa) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = a[i * k + p] as f64 * b[p * n + j] as f64;
                s += x;
                sa += x.abs();
            }
            let mut v = alpha as f64 * s;
            let mut bd = (alpha as f64).abs() * sa;
            if beta != 0.0 {
                v += beta as f64 * c[i * n + j] as f64;
                bd += (beta as f64 * c[i * n + j] as f64).abs();
            }
            if let Some(bias) = bias {
                v += bias[j] as f64;
                bd += (bias[j] as f64).abs();
            }
            if relu && v < 0.0 {
                v = 0.0;
            }
            val[i * n + j] = v;
            bound[i * n + j] = bd;
        }
    }
    (val, bound)
}

#[track_caller]
fn assert_close(got: &Mat, want: &[f64], bound: &[f64], k: usize, what: &str) {
    let tol = (k + 4) as f64 * f32::EPSILON as f64;
    for i in 0..got.rows {
        for j in 0..got.cols {
            let g = got.get(i, j) as f64;
            let (w, b) = (want[i * got.cols + j], bound[i * got.cols + j]);
            assert!(
                (g - w).abs() <= tol * b + 1e-30,
                "{what}: C[{i},{j}] = {g}, want {w} (bound {b}, tol {})",
                tol * b
            );
        }
    }
}

/// One product on one path, checked against the reference; returns C.
#[allow(clippy::too_many_arguments)]
fn check(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    alpha: f32,
    beta: f32,
    bias: bool,
    relu: bool,
    seed: u64,
) -> Mat {
    let mut rng = Rng(seed | 1);
    let (av, bv, cv) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
    let biasv = rng.vec(n);
    let a = Mat::new(&av, m, k, layouts.0, (seed % 3) as usize, f32::NAN);
    let b = Mat::new(&bv, k, n, layouts.1, (seed % 5) as usize, f32::NAN);
    // With beta == 0 the old C is NaN: it must not leak into the result.
    let c_init: Vec<f32> = if beta == 0.0 {
        vec![f32::NAN; m * n]
    } else {
        cv.clone()
    };
    let mut c = Mat::new(&c_init, m, n, layouts.2, 1, -7.0);
    let ep = Epilogue {
        bias: bias.then_some(&biasv[..]),
        relu,
    };
    sgemm_with(
        cfg(isa, 1),
        Batch::ONE,
        alpha,
        a.r(),
        b.r(),
        beta,
        c.w(),
        ep,
    );
    let (want, bound) = reference(m, n, k, alpha, &av, &bv, beta, &cv, ep.bias, relu);
    let what = alloc::format!(
        "{isa} {m}x{n}x{k} {layouts:?} alpha={alpha} beta={beta} bias={bias} relu={relu}"
    );
    assert_close(&c, &want, &bound, k, &what);
    // Elements outside the view are untouched.
    let fill = Mat::new(&c_init, m, n, layouts.2, 1, -7.0);
    assert_eq!(c.buf.len(), fill.buf.len());
    let mut inside = vec![false; c.buf.len()];
    for i in 0..m {
        for j in 0..n {
            inside[c.off + i * c.rs + j * c.cs] = true;
        }
    }
    for (idx, (x, y)) in c.buf.iter().zip(&fill.buf).enumerate() {
        if !inside[idx] {
            assert!(
                x.to_bits() == y.to_bits(),
                "{what}: wrote outside C at {idx}"
            );
        }
    }
    c
}

fn shapes() -> Vec<(usize, usize, usize)> {
    if cfg!(miri) {
        return vec![(0, 3, 2), (1, 5, 3), (3, 1, 4), (5, 6, 7), (2, 3, 0)];
    }
    let mut v = vec![
        (0, 0, 0),
        (0, 5, 3),
        (5, 0, 3),
        (5, 3, 0),
        (1, 1, 1),
        (1, 17, 9),
        (17, 1, 9),
        (1, 1, 1000),
        (1, 65, 31),
        (31, 1, 65),
        (13, 17, 19),
        (97, 61, 33),
        (6, 64, 8),
        (7, 65, 17),
        (12, 128, 5),
        (65, 63, 67),
        (20, 70, 300),
        // Many rows of A over a B of 13,000 elements: packed.
        (100, 100, 130),
        // Rank one (the weight gradient of a batch-1 backward).
        (32, 64, 1),
        (10, 33, 1),
        (7, 5, 1),
        (65, 70, 1),
    ];
    for l in [7, 8, 15, 16, 17, 31, 63, 64, 65] {
        v.push((l, l, l));
        v.push((3, l, 5));
        v.push((l, 2, 4));
    }
    v
}

#[test]
fn all_paths_match_the_reference_on_edge_shapes() {
    use Layout::*;
    for isa in isas() {
        for (s, &shape) in shapes().iter().enumerate() {
            check(
                isa,
                shape,
                (RowMajor, RowMajor, RowMajor),
                1.0,
                0.0,
                false,
                false,
                s as u64,
            );
        }
    }
}

#[test]
fn all_transpose_combinations_and_c_layouts() {
    use Layout::*;
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(3, 5, 4)]
    } else {
        &[
            (13, 17, 19),
            (97, 61, 33),
            (1, 40, 33),
            (40, 1, 33),
            (1, 1, 33),
            (64, 65, 70),
        ]
    };
    for isa in isas() {
        for &shape in shapes {
            for la in [RowMajor, ColMajor, Strided] {
                for lb in [RowMajor, ColMajor, Strided] {
                    for lc in [RowMajor, ColMajor, Strided] {
                        check(isa, shape, (la, lb, lc), 1.0, 0.0, false, false, 7);
                    }
                }
            }
        }
    }
}

#[test]
fn alpha_beta_and_nan_in_c() {
    use Layout::*;
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(3, 5, 4), (1, 4, 3)]
    } else {
        &[
            (13, 17, 19),
            (1, 33, 20),
            (33, 1, 20),
            (40, 70, 300),
            (33, 20, 1),
        ]
    };
    for isa in isas() {
        for &shape in shapes {
            for (alpha, beta) in [
                (1.0, 0.0),
                (2.5, 0.0),
                (1.0, 1.0),
                (-0.5, 2.0),
                (0.0, 3.0),
                (0.0, 0.0),
            ] {
                for lc in [RowMajor, ColMajor] {
                    check(
                        isa,
                        shape,
                        (RowMajor, ColMajor, lc),
                        alpha,
                        beta,
                        false,
                        false,
                        3,
                    );
                }
            }
        }
    }
}

#[test]
fn fused_bias_and_relu() {
    use Layout::*;
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(3, 5, 4), (1, 4, 3), (4, 1, 3), (2, 3, 0)]
    } else {
        &[
            (13, 17, 19),
            (1, 33, 20),
            (33, 1, 20),
            (64, 64, 300),
            (7, 9, 0),
            (65, 70, 16),
            (33, 17, 1),
        ]
    };
    for isa in isas() {
        for &shape in shapes {
            for (bias, relu) in [(true, false), (false, true), (true, true)] {
                for lc in [RowMajor, ColMajor, Strided] {
                    for beta in [0.0, 0.5] {
                        check(
                            isa,
                            shape,
                            (RowMajor, ColMajor, lc),
                            1.5,
                            beta,
                            bias,
                            relu,
                            11,
                        );
                    }
                }
            }
        }
    }
}

/// Rank-one products (`k == 1`) take their own path and give the bits of the
/// blocked loop: the same product with a second, zero column of A (`k == 2`,
/// through the tiles) matches bit for bit (no product is zero, so no signed
/// zero differs), with alpha, beta, bias and ReLU, on one thread and two.
#[test]
fn rank_one_products_match_the_blocked_loop() {
    let shapes: &[(usize, usize)] = if cfg!(miri) {
        &[(7, 5)]
    } else {
        &[(7, 5), (32, 64), (10, 33), (65, 70), (300, 400)]
    };
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for &(m, n) in shapes {
            let mut rng = Rng(9);
            let (av, bv, cv, bias) = (rng.vec(m), rng.vec(2 * n), rng.vec(m * n), rng.vec(n));
            let a2: Vec<f32> = av.iter().flat_map(|&x| [x, 0.0]).collect();
            let (a1, b1) = (
                MatRef::row_major(&av, m, 1),
                MatRef::row_major(&bv[..n], 1, n),
            );
            let (a2, b2) = (MatRef::row_major(&a2, m, 2), MatRef::row_major(&bv, 2, n));
            // The plain product (stores only), and the general write-back.
            for (alpha, beta, fused) in [(1.0, 0.0, false), (1.5, 0.5, true)] {
                let ep = Epilogue {
                    bias: fused.then_some(&bias[..]),
                    relu: fused,
                };
                let mut want = cv.clone();
                let c = MatMut::row_major(&mut want, m, n);
                let p = problem(Batch::ONE, alpha, a1, b1, beta, c, ep);
                assert_eq!(driver::plan(&p, bl, w, 1).kind, driver::Kind::Outer);
                let c = MatMut::row_major(&mut want, m, n);
                let p = problem(Batch::ONE, alpha, a2, b2, beta, c, ep);
                assert_eq!(driver::plan(&p, bl, w, 1).kind, driver::Kind::Gemm);
                let c = MatMut::row_major(&mut want, m, n);
                sgemm_with(cfg(isa, 1), Batch::ONE, alpha, a2, b2, beta, c, ep);
                for threads in [1, 2] {
                    let mut got = cv.clone();
                    let c = MatMut::row_major(&mut got, m, n);
                    sgemm_with(cfg(isa, threads), Batch::ONE, alpha, a1, b1, beta, c, ep);
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            x.to_bits(),
                            y.to_bits(),
                            "{isa} {m}x{n}x1 alpha={alpha} beta={beta} bias/relu={fused}, \
                             {threads} thread(s): C[{i}] {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn simd_paths_match_scalar() {
    use Layout::*;
    let shapes: &[(usize, usize, usize)] = &[
        (13, 17, 19),
        (97, 61, 33),
        (1, 100, 65),
        (100, 1, 65),
        (70, 65, 300),
        (64, 64, 64),
    ];
    for isa in isas().into_iter().filter(|&i| i != Isa::Scalar) {
        for &(m, n, k) in shapes {
            for (la, lb) in [
                (RowMajor, RowMajor),
                (ColMajor, ColMajor),
                (RowMajor, ColMajor),
            ] {
                let s = check(
                    Isa::Scalar,
                    (m, n, k),
                    (la, lb, RowMajor),
                    1.0,
                    0.5,
                    true,
                    false,
                    5,
                );
                let v = check(isa, (m, n, k), (la, lb, RowMajor), 1.0, 0.5, true, false, 5);
                let tol = 2.0 * (k + 4) as f32 * f32::EPSILON * (k + 2) as f32;
                for i in 0..m {
                    for j in 0..n {
                        let (x, y) = (s.get(i, j), v.get(i, j));
                        assert!(
                            (x - y).abs() <= tol,
                            "{isa} vs scalar {m}x{n}x{k}: C[{i},{j}] {y} vs {x}"
                        );
                    }
                }
            }
        }
    }
}

/// Batched products with a broadcast operand, against one call per item.
#[test]
fn batched_with_broadcast() {
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(2, 3, 4), (1, 3, 2)]
    } else {
        &[(13, 17, 19), (1, 40, 30), (30, 1, 40), (64, 70, 65)]
    };
    let count = 3;
    for isa in isas() {
        for &(m, n, k) in shapes {
            for (a_bs, b_bs) in [(m * k, k * n), (0, k * n), (m * k, 0)] {
                let mut rng = Rng(99);
                let a = rng.vec(m * k * count);
                let b = rng.vec(k * n * count);
                let bias = rng.vec(n);
                let c0 = rng.vec(m * n * count);
                let mut c = c0.clone();
                let batch = Batch {
                    count,
                    a_stride: a_bs,
                    b_stride: b_bs,
                    c_stride: m * n,
                };
                let ep = Epilogue {
                    bias: Some(&bias),
                    relu: true,
                };
                sgemm_with(
                    cfg(isa, 2),
                    batch,
                    0.75,
                    MatRef::row_major(&a, m, k),
                    MatRef::row_major(&b, k, n),
                    0.5,
                    MatMut::row_major(&mut c, m, n),
                    ep,
                );
                for t in 0..count {
                    let (at, bt) = (&a[t * a_bs..][..m * k], &b[t * b_bs..][..k * n]);
                    let ct = &c0[t * m * n..][..m * n];
                    let (want, bound) =
                        reference(m, n, k, 0.75, at, bt, 0.5, ct, Some(&bias), true);
                    let got = Mat::new(&c[t * m * n..][..m * n], m, n, Layout::RowMajor, 0, 0.0);
                    assert_close(
                        &got,
                        &want,
                        &bound,
                        k,
                        &alloc::format!("{isa} batch item {t} of {m}x{n}x{k}"),
                    );
                }
            }
        }
    }
}

/// Splitting over threads never changes a bit, on every path.
#[cfg(feature = "std")]
#[test]
fn thread_count_does_not_change_results() {
    use Layout::*;
    if cfg!(miri) {
        return;
    }
    // Large enough that the plan splits them (asserted below).
    let shapes = [
        (200, 150, 300),
        (150, 200, 300),
        (1, 600, 300),
        (600, 1, 300),
        (300, 400, 1),
        // Few flops, but 720 KB of B / 540 KB of C streamed (the second
        // split over rows only: k <= m / 4).
        (4, 300, 600),
        (256, 520, 4),
    ];
    for isa in isas() {
        for (m, n, k) in shapes {
            for (la, lb, lc) in [
                (RowMajor, RowMajor, RowMajor),
                (ColMajor, RowMajor, ColMajor),
                (RowMajor, ColMajor, RowMajor),
            ] {
                let mut rng = Rng(5);
                let (av, bv, cv) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n));
                let bias = rng.vec(n);
                let a = Mat::new(&av, m, k, la, 0, 0.0);
                let b = Mat::new(&bv, k, n, lb, 0, 0.0);
                let ep = Epilogue {
                    bias: Some(&bias),
                    relu: false,
                };
                let mut c1 = Mat::new(&cv, m, n, lc, 0, 0.0);
                let mut c2 = Mat::new(&cv, m, n, lc, 0, 0.0);
                // The plan for 2 threads really uses 2.
                if crate::kernels::threads::num_threads() >= 2 {
                    let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.5, c2.w(), ep);
                    let (bl, w) = blocking_of(isa);
                    assert_eq!(
                        driver::plan(&p, bl, w, 2).threads,
                        2,
                        "{isa} {m}x{n}x{k} {la:?} {lb:?} {lc:?} not split"
                    );
                }
                sgemm_with(cfg(isa, 1), Batch::ONE, 1.0, a.r(), b.r(), 0.5, c1.w(), ep);
                sgemm_with(cfg(isa, 2), Batch::ONE, 1.0, a.r(), b.r(), 0.5, c2.w(), ep);
                for (x, y) in c1.buf.iter().zip(&c2.buf) {
                    assert_eq!(
                        x.to_bits(),
                        y.to_bits(),
                        "{isa} {m}x{n}x{k}: 1 vs 2 threads"
                    );
                }
            }
        }
    }
}

/// A product with few flops that streams at least 256 KiB of operands is
/// split over two threads (a `Linear` layer's forward and weight gradient at
/// a small batch); one that streams less stays on one thread; where k is at
/// most m / 4 the split is over rows only, so each task writes whole rows.
#[test]
fn streaming_products_are_split_short_k_over_rows() {
    use Layout::*;
    // (m, n, k, A's layout, B's layout, threads planned, split over rows)
    let cases = [
        // x W^T at batch 4, W [256, 784]: 1.6 MFLOP, 800 KB of W.
        (4, 256, 784, RowMajor, ColMajor, 2, false),
        // G^T X at batch 4: 1.6 MFLOP, 800 KB of C.
        (256, 784, 4, ColMajor, RowMajor, 2, true),
        (256, 1024, 16, RowMajor, RowMajor, 2, true),
        // Either side of 256 KiB (0.5 MFLOP): 270 KB split, 254 KB not.
        (4, 256, 256, RowMajor, ColMajor, 2, false),
        (4, 256, 240, RowMajor, ColMajor, 1, false),
        // 65 and 36 KB of operands: one thread.
        (4, 128, 120, RowMajor, ColMajor, 1, false),
        (64, 128, 4, ColMajor, RowMajor, 1, false),
    ];
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for (m, n, k, la, lb, threads, rows) in cases {
            let mut rng = Rng(9);
            let a = Mat::new(&rng.vec(m * k), m, k, la, 0, 0.0);
            let b = Mat::new(&rng.vec(k * n), k, n, lb, 0, 0.0);
            let mut c = Mat::new(&rng.vec(m * n), m, n, RowMajor, 0, 0.0);
            let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c.w(), Epilogue::NONE);
            let plan = driver::plan(&p, bl, w, 2);
            let what = alloc::format!("{isa} {m}x{n}x{k}");
            assert_eq!(plan.threads, threads, "{what}: threads");
            if rows {
                assert_eq!((plan.tm, plan.tn), (2, 1), "{what}: not split over rows");
            }
        }
    }
}

/// Row-major A whose task rows (with C's) span more pages than the TLB maps is
/// packed, W columns at a time in registers on the SIMD paths, with a tail of
/// `k % W` columns and an edge panel of `m % 6` rows.
#[cfg(feature = "std")]
#[test]
fn row_major_a_past_the_tlb_reach_is_packed() {
    use Layout::*;
    if cfg!(miri) {
        return;
    }
    let (m, n, k) = (1100, 300, 37);
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        let mut rng = Rng(3);
        let av = rng.vec(m * k);
        let a = Mat::new(&av, m, k, Wide, 0, 0.0);
        let b = Mat::new(&rng.vec(k * n), k, n, RowMajor, 0, 0.0);
        let mut c = Mat::new(&rng.vec(m * n), m, n, Wide, 0, 0.0);
        let ep = Epilogue::NONE;
        let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c.w(), ep);
        assert!(driver::plan(&p, bl, w, 1).pack_a, "{isa}: A not packed");
        // Rows closer than a page span fewer pages: read in place.
        let narrow = Mat::new(&av, m, k, RowMajor, 0, 0.0);
        let p = problem(Batch::ONE, 1.0, narrow.r(), b.r(), 0.0, c.w(), ep);
        assert!(!driver::plan(&p, bl, w, 1).pack_a, "{isa}: A packed");
        for seed in [1, 2] {
            check(
                isa,
                (m, n, k),
                (Wide, RowMajor, Wide),
                1.0,
                0.0,
                false,
                false,
                seed,
            );
        }
    }
}

/// The loop nest with the blocking other CPUs would get (several k, M and N
/// blocks at these sizes), on every path, against the reference.
#[cfg(feature = "std")]
#[test]
fn blockings_of_other_cpus_match_the_reference() {
    use Layout::*;
    let kib = |l1d: usize, l2: usize, l3: usize| CacheSizes {
        l1d: l1d << 10,
        l2: l2 << 10,
        l3_per_core: l3 << 10,
    };
    // Zen 3, a recent Intel core, a small core, and no caches at all.
    let cpus = [
        kib(32, 512, 4096),
        kib(48, 2048, 1920),
        kib(16, 128, 0),
        kib(0, 0, 0),
    ];
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(7, 20, 9)]
    } else {
        // k past two k blocks of 512 and n past N blocks of 128 and 512.
        &[(30, 530, 1030)]
    };
    for (i, sizes) in cpus.into_iter().enumerate() {
        cache::test_sizes::with(sizes, || {
            for isa in isas() {
                let (bl, _) = blocking_of(isa);
                if isa != Isa::Scalar {
                    let want = cache::tuned(bl, sizes);
                    assert_eq!(
                        (bl.kc, bl.nc),
                        (want.kc, want.nc),
                        "{isa}: stand-in in force"
                    );
                }
                // Row-major A and B, or column-major (A packed) on alternate CPUs.
                let l = if i % 2 == 0 { RowMajor } else { ColMajor };
                for &shape in shapes {
                    check(isa, shape, (l, l, RowMajor), 1.0, 0.5, true, false, 11);
                }
            }
        });
    }
}

fn blocking_of(isa: Isa) -> (driver::Blocking, usize) {
    match isa {
        Isa::Scalar => (cache::blocking::<simd::Scalar>(), 1),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (cache::blocking::<avx2::Avx2>(), 8),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (cache::blocking::<avx512::Avx512>(), 16),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => (cache::blocking::<neon::Neon>(), 4),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

#[test]
fn the_default_entry_points_agree_with_the_explicit_one() {
    let (m, n, k) = (9, 11, 13);
    let mut rng = Rng(1);
    let (a, b, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(n));
    let mut c1 = vec![0.0; m * n];
    let mut c2 = vec![0.0; m * n];
    let (ar, br) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
    let ep = Epilogue {
        bias: Some(&bias),
        relu: true,
    };
    sgemm_fused(1.0, ar, br, 0.0, MatMut::row_major(&mut c1, m, n), ep);
    sgemm_with(
        Config::current(),
        Batch::ONE,
        1.0,
        ar,
        br,
        0.0,
        MatMut::row_major(&mut c2, m, n),
        ep,
    );
    assert_eq!(c1, c2);
    sgemm(1.0, ar, br, 0.0, MatMut::row_major(&mut c1, m, n));
    sgemm_batched(
        Batch::ONE,
        1.0,
        ar,
        br,
        0.0,
        MatMut::row_major(&mut c2, m, n),
        Epilogue::NONE,
    );
    assert_eq!(c1, c2);
}
