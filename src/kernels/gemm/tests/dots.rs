//! The dot-product path (`dots.rs`): a few rows of A against a column-major
//! B, computed without packing.

use super::*;
use crate::kernels::gemm::dots::DOTS_MAX_M;

/// The shapes and layouts the path takes, on every ISA: plan kind asserted,
/// then checked against the f64 reference with alpha, beta, bias and ReLU.
/// Row tiles of 4 (or 2) with 2- and 1-row rests, groups of 4 columns with
/// single leftover columns, more columns than one chunk, a partial last
/// register of k, k split into blocks; a column-major C (the product transposed, so B's columns
/// become the rows).
#[test]
fn small_row_counts_with_a_transposed_b_match_the_reference() {
    use Layout::*;
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(3, 5, 9)]
    } else {
        &[
            (2, 4, 64),
            (3, 5, 67),
            (5, 17, 100),
            (7, 300, 129),
            (8, 64, 784),
            (13, 9, 70),
            (DOTS_MAX_M, 259, 257),
            // A past 32 KiB: k in blocks, the last one shorter.
            (11, 9, 900),
            (DOTS_MAX_M, 70, 1000),
        ]
    };
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            let k = k.max(4 * w);
            for (layouts, (pm, pn)) in [
                ((RowMajor, ColMajor, RowMajor), (m, n)),
                // C^T = B^T A^T: the rows are B's columns, the columns A's
                // rows, both contiguous as before.
                ((RowMajor, ColMajor, ColMajor), (n, m)),
            ] {
                if pm > DOTS_MAX_M {
                    continue;
                }
                let (a, b) = (vec![0.0; m * k], vec![0.0; k * n]);
                let (a, b) = (
                    Mat::new(&a, m, k, layouts.0, 0, 0.0),
                    Mat::new(&b, k, n, layouts.1, 0, 0.0),
                );
                let mut c = Mat::new(&vec![0.0; m * n], m, n, layouts.2, 0, 0.0);
                let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c.w(), Epilogue::NONE);
                assert_eq!((p.m, p.n), (pm, pn));
                let plan = driver::plan(&p, bl, w, 1);
                assert_eq!(
                    plan.kind,
                    driver::Kind::Dots,
                    "{isa} {m}x{n}x{k} {layouts:?}"
                );
                for (alpha, beta, bias, relu) in [
                    (1.0, 0.0, false, false),
                    (-0.5, 0.75, true, true),
                    (2.0, 1.0, true, false),
                ] {
                    check(isa, (m, n, k), layouts, alpha, beta, bias, relu, s as u64);
                }
            }
        }
    }
}

/// Where the path stops: one row more than `DOTS_MAX_M`, k below four
/// registers, or a row-major B go through the blocked loop.
#[test]
fn the_path_is_taken_only_where_it_pays() {
    use Layout::*;
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for (m, k, lb, want) in [
            (DOTS_MAX_M, 4 * w, ColMajor, driver::Kind::Dots),
            (DOTS_MAX_M + 1, 4 * w, ColMajor, driver::Kind::Gemm),
            (5, 4 * w - 1, ColMajor, driver::Kind::Gemm),
            (5, 4 * w, RowMajor, driver::Kind::Gemm),
        ] {
            let n = 40;
            let (a, b) = (vec![0.0; m * k], vec![0.0; k * n]);
            let a = Mat::new(&a, m, k, RowMajor, 0, 0.0);
            let b = Mat::new(&b, k, n, lb, 0, 0.0);
            let mut c = vec![0.0; m * n];
            let c = MatMut::row_major(&mut c, m, n);
            let p = problem(Batch::ONE, 1.0, a.r(), b.r(), 0.0, c, Epilogue::NONE);
            assert_eq!(
                driver::plan(&p, bl, w, 1).kind,
                want,
                "{isa} {m}x{k} {lb:?}"
            );
        }
    }
}

/// Each element gets the same bits whichever tile computes it: a row in a
/// full row tile or in a rest, a column in a group of four or alone. Rows
/// 3..5 and columns 1..8 of a 7 x 9 product, computed as their own product,
/// equal the full product's elements bit for bit.
#[test]
fn an_element_does_not_depend_on_its_tile() {
    for isa in isas() {
        let (_, w) = blocking_of(isa);
        let (m, n, k) = (7, 9, 4 * w + 3);
        let mut rng = Rng(31);
        let (av, bv) = (rng.vec(m * k), rng.vec(k * n));
        let b = Mat::new(&bv, k, n, Layout::ColMajor, 0, 0.0);
        let mut full = vec![0.0; m * n];
        let a = MatRef::row_major(&av, m, k);
        let c = MatMut::row_major(&mut full, m, n);
        sgemm_with(
            cfg(isa, 1),
            Batch::ONE,
            1.0,
            a,
            b.r(),
            0.0,
            c,
            Epilogue::NONE,
        );
        let (rows, cols) = (3..5, 1..8);
        let a_part = MatRef::row_major(&av[rows.start * k..rows.end * k], rows.len(), k);
        // Columns 1..8 of the column-major B: contiguous columns, k apart.
        let b_part = MatRef {
            data: &b.buf[b.off + cols.start * k..],
            rows: k,
            cols: cols.len(),
            row_stride: 1,
            col_stride: k,
        };
        let mut part = vec![0.0; rows.len() * cols.len()];
        let c = MatMut::row_major(&mut part, rows.len(), cols.len());
        sgemm_with(
            cfg(isa, 1),
            Batch::ONE,
            1.0,
            a_part,
            b_part,
            0.0,
            c,
            Epilogue::NONE,
        );
        for (pi, i) in rows.clone().enumerate() {
            for (pj, j) in cols.clone().enumerate() {
                let (x, y) = (part[pi * cols.len() + pj], full[i * n + j]);
                assert_eq!(x.to_bits(), y.to_bits(), "{isa} C[{i},{j}]: {x} vs {y}");
            }
        }
    }
}

/// Splitting the columns over two threads changes no bit.
#[cfg(feature = "std")]
#[test]
fn thread_count_does_not_change_the_dots() {
    if cfg!(miri) {
        return;
    }
    let (m, n, k) = (DOTS_MAX_M, 1000, 300);
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        let mut rng = Rng(37);
        let (av, bv, cv, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n), rng.vec(n));
        let a = MatRef::row_major(&av, m, k);
        let b = Mat::new(&bv, k, n, Layout::ColMajor, 0, 0.0);
        let ep = Epilogue {
            bias: Some(&bias),
            relu: true,
        };
        let run = |threads: usize| {
            let mut c = cv.clone();
            let cm = MatMut::row_major(&mut c, m, n);
            sgemm_with(cfg(isa, threads), Batch::ONE, 0.5, a, b.r(), 0.25, cm, ep);
            c
        };
        let mut probe = cv.clone();
        let p = problem(
            Batch::ONE,
            1.0,
            a,
            b.r(),
            0.0,
            MatMut::row_major(&mut probe, m, n),
            ep,
        );
        let plan = driver::plan(&p, bl, w, 2);
        assert_eq!(plan.kind, driver::Kind::Dots);
        assert_eq!(plan.tasks, 2, "{isa}: not split");
        for (i, (x, y)) in run(1).iter().zip(&run(2)).enumerate() {
            assert_eq!(x.to_bits(), y.to_bits(), "{isa} C[{i}]: 1 vs 2 threads");
        }
    }
}
