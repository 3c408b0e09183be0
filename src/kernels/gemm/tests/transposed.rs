//! `x W^T` at a mid-size batch, computed as `C^T = W x^T` into a pool block
//! and transposed into C (`driver::via_transposed`): when it is taken, and
//! that it gives the bits of the direct blocked loop.

use super::layouts::same_bits;
use super::*;

/// The smallest row count above the dot-product path's that is a whole
/// number of tile widths (64 on AVX-512, 32 on AVX2, 24 on NEON, 20 scalar).
fn rows_for(nr: usize) -> usize {
    (super::super::dots::DOTS_MAX_M / nr + 1) * nr
}

/// The transposed form is taken for a row-major A of a whole number of tile
/// widths between 17 and 64 rows against a column-major B at least four
/// times wider, deep enough that the packing saved is at least four times
/// the values moved, on the SIMD paths with `std`, and for nothing else.
#[test]
fn mid_batch_linear_products_run_transposed() {
    use Layout::*;
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        let m = rows_for(bl.nr);
        assert!(m <= 64, "{isa}: no row count qualifies");
        let on = cfg!(feature = "std") && w > 1;
        // (m, n, k, A's layout, B's layout, batch, taken)
        let cases = [
            (m, 4 * m, 784, RowMajor, ColMajor, 1, true),
            // k either side of where the packing saved, (n - m) k, is 4 m n.
            (m, 4 * m, 16 * m / 3 + 1, RowMajor, ColMajor, 1, true),
            (m, 4 * m, 16 * m / 3 - 1, RowMajor, ColMajor, 1, false),
            (m, 4 * m - 1, 784, RowMajor, ColMajor, 1, false),
            (m + 1, 4 * m + 4, 784, RowMajor, ColMajor, 1, false),
            (m, 4 * m, 784, RowMajor, RowMajor, 1, false),
            (m, 4 * m, 784, ColMajor, ColMajor, 1, false),
            (m, 4 * m, 784, RowMajor, ColMajor, 2, false),
            (
                super::super::dots::DOTS_MAX_M,
                256,
                784,
                RowMajor,
                ColMajor,
                1,
                false,
            ),
            (2 * 64, 1024, 784, RowMajor, ColMajor, 1, false),
        ];
        for (m, n, k, la, lb, batch, taken) in cases {
            let mut rng = Rng(31);
            let a = Mat::new(&rng.vec(m * k), m, k, la, 0, 0.0);
            let b = Mat::new(&rng.vec(k * n), k, n, lb, 0, 0.0);
            let mut c = Mat::new(&rng.vec(m * n), m, n, RowMajor, 0, 0.0);
            let mut p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c.w(), Epilogue::NONE);
            // A batch of products (the plan only looks at the count).
            p.batch = batch;
            assert_eq!(
                driver::via_transposed(&p, bl.nr, w),
                taken && on,
                "{isa} {m}x{n}x{k} {la:?} {lb:?} batch {batch}"
            );
        }
    }
}

/// On two threads the transposed product is split over the weight's rows
/// (each task reads its own rows in place and packs all of x^T, a quarter of
/// the weight's size or less), also where its tiles would tie over columns.
#[test]
fn transposed_products_split_over_the_weights_rows() {
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        if !cfg!(feature = "std") || w == 1 {
            continue;
        }
        let m = rows_for(bl.nr);
        let (n, k) = (4 * m, 784);
        let mut rng = Rng(41);
        let a = Mat::new(&rng.vec(m * k), m, k, Layout::RowMajor, 0, 0.0);
        let b = Mat::new(&rng.vec(k * n), k, n, Layout::ColMajor, 0, 0.0);
        let mut c = Mat::new(&rng.vec(m * n), m, n, Layout::RowMajor, 0, 0.0);
        let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c.w(), Epilogue::NONE);
        assert!(driver::via_transposed(&p, bl.nr, w), "{isa}");
        let mut t = vec![0.0f32; m * n];
        let q = super::super::transposed(&p, t.as_mut_ptr());
        let plan = driver::plan(&q, bl, w, 2);
        assert_eq!(
            (plan.kind, plan.threads, plan.tm, plan.tn),
            (driver::Kind::Gemm, 2, 2, 1),
            "{isa} {m}x{n}x{k}"
        );
    }
}

/// The transposed form gives the bits of the same product with B stored
/// row-major (the direct blocked loop): one and two k blocks, edge columns
/// (n not a multiple of any vector width), alpha, beta (C copied into the
/// block first), bias and ReLU, one thread and two; and with C's rows apart,
/// the values between them untouched.
#[test]
fn transposed_products_give_the_bits_of_the_direct_loop() {
    if cfg!(miri) {
        return;
    }
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        if !cfg!(feature = "std") || w == 1 {
            continue;
        }
        let m = rows_for(bl.nr);
        for (n, k) in [(4 * m, 784), (4 * m + 5, 1100), (6 * m + 3, 600)] {
            let mut rng = Rng(37);
            let (av, bv, cv, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n), rng.vec(n));
            let bt = Mat::new(&bv, k, n, Layout::ColMajor, 0, 0.0);
            let a = MatRef::row_major(&av, m, k);
            let (b_row, b_col) = (MatRef::row_major(&bv, k, n), bt.r());
            let mut probe = cv.clone();
            let p = problem(
                Batch::ONE,
                1.0,
                a,
                b_col,
                0.0,
                MatMut::row_major(&mut probe, m, n),
                Epilogue::NONE,
            );
            assert!(driver::via_transposed(&p, bl.nr, w), "{isa} {m}x{n}x{k}");
            same_bits(isa, (m, n, k), &cv, &bias, (a, b_row), (a, b_col));

            // C's rows 7 apart from the end of one to the next.
            let rs = n + 7;
            let ep = Epilogue {
                bias: Some(&bias),
                relu: true,
            };
            let run = |b: MatRef<'_>| {
                let mut out: Vec<f32> = (0..m * rs).map(|i| i as f32).collect();
                for i in 0..m {
                    out[i * rs..i * rs + n].copy_from_slice(&cv[i * n..(i + 1) * n]);
                }
                let c = MatMut::new(&mut out, m, n, rs, 1);
                sgemm_with(cfg(isa, 2), Batch::ONE, 0.5, a, b, 1.0, c, ep);
                out
            };
            let (got, want) = (run(b_col), run(b_row));
            for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "{isa} {m}x{n}x{k}, C rows {rs} apart: [{i}] {x} vs {y}"
                );
                if i % rs >= n {
                    assert_eq!(*x, i as f32, "{isa} {m}x{n}x{k}: gap [{i}] written");
                }
            }
        }
    }
}
