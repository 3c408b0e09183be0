//! Operand layouts that take their own packing route give the bits of the
//! plain row-major product.

use super::*;

/// A column-major B (a linear layer's `x W^T`, transposed while it is packed)
/// gives the bits of the same product with B stored row-major (read in place
/// or packed as it is read): each element of C sees the same multiply-adds in
/// the same order. Full and partial chunks of k, several k blocks, edge
/// panels, fewer rows than a tile (where k is too short for the dot-product
/// path), alpha, beta, bias and ReLU, one thread and two.
#[test]
fn column_major_b_gives_the_bits_of_row_major_b() {
    let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(5, 9, 7), (9, 6, 21)]
    } else {
        &[
            (6, 64, 16),
            (13, 70, 37),
            (5, 40, 20),
            (64, 256, 784),
            (100, 130, 1100),
            (31, 300, 129),
        ]
    };
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for &(m, n, k) in shapes {
            let mut rng = Rng(21);
            let (av, bv, cv, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n), rng.vec(n));
            let bt = Mat::new(&bv, k, n, Layout::ColMajor, 0, 0.0);
            let a = MatRef::row_major(&av, m, k);
            let (b_row, b_col) = (MatRef::row_major(&bv, k, n), bt.r());
            let mut probe = cv.clone();
            let c = MatMut::row_major(&mut probe, m, n);
            let plan = driver::plan(
                &problem(Batch::ONE, 1.0, a, b_col, 0.0, c, Epilogue::NONE),
                bl,
                w,
                1,
            );
            if plan.kind == driver::Kind::Dots {
                // A few rows with k long enough for this path: dot products,
                // a different order of additions (tests/dots.rs).
                continue;
            }
            assert!(
                plan.kind == driver::Kind::Gemm && plan.pack_b,
                "{isa} {m}x{n}x{k}"
            );
            same_bits(isa, (m, n, k), &cv, &bias, (a, b_row), (a, b_col));
        }
    }
}

/// A column-major A (a weight gradient's `G^T X`) gives the bits of the same
/// product with A stored row-major, whether it is read in place (a panel's k
/// block within the first-level TLB's reach) or packed: the same
/// multiply-adds in the same order. Edge panels of rows, one and several k
/// blocks, alpha, beta, bias and ReLU, one thread and two.
#[test]
fn column_major_a_gives_the_bits_of_row_major_a() {
    // (m, n, k, packed): with every path's kc of 128 to 512, `kc * m` stays
    // within 64 Ki values for the first three and exceeds it for the rest.
    let shapes: &[(usize, usize, usize, bool)] = if cfg!(miri) {
        &[(9, 5, 7, false)]
    } else {
        &[
            (13, 70, 37, false),
            (100, 130, 130, false),
            (40, 90, 1100, false),
            (1030, 130, 70, true),
            (601, 70, 600, true),
        ]
    };
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        for &(m, n, k, packed) in shapes {
            let mut rng = Rng(23);
            let (av, bv, cv, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n), rng.vec(n));
            let at = Mat::new(&av, m, k, Layout::ColMajor, 0, 0.0);
            let b = MatRef::row_major(&bv, k, n);
            let (a_row, a_col) = (MatRef::row_major(&av, m, k), at.r());
            let mut probe = cv.clone();
            let c = MatMut::row_major(&mut probe, m, n);
            let plan = driver::plan(
                &problem(Batch::ONE, 1.0, a_col, b, 0.0, c, Epilogue::NONE),
                bl,
                w,
                1,
            );
            assert!(
                plan.kind == driver::Kind::Gemm && plan.pack_a == packed,
                "{isa} {m}x{n}x{k}: A packed is {}",
                plan.pack_a
            );
            same_bits(isa, (m, n, k), &cv, &bias, (a_row, b), (a_col, b));
        }
    }
}

/// Asserts that `want` and `got`, two layouts of the same `A x B` (`m x k` by
/// `k x n`), give C the same bits: with alpha 1 and beta 0, and with alpha,
/// beta, bias and ReLU; on one thread and two.
pub(super) fn same_bits(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    cv: &[f32],
    bias: &[f32],
    want: (MatRef<'_>, MatRef<'_>),
    got: (MatRef<'_>, MatRef<'_>),
) {
    for (alpha, beta, fused) in [(1.0, 0.0, false), (1.5, 0.5, true)] {
        let ep = Epilogue {
            bias: fused.then_some(bias),
            relu: fused,
        };
        for threads in [1, 2] {
            let run = |(a, b): (MatRef<'_>, MatRef<'_>)| {
                let mut out = cv.to_vec();
                let c = MatMut::row_major(&mut out, m, n);
                sgemm_with(cfg(isa, threads), Batch::ONE, alpha, a, b, beta, c, ep);
                out
            };
            for (i, (x, y)) in run(got).iter().zip(&run(want)).enumerate() {
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "{isa} {m}x{n}x{k} alpha={alpha} beta={beta} bias/relu={fused}, \
                     {threads} thread(s): C[{i}] {x} vs {y}"
                );
            }
        }
    }
}

/// A row-major B read in place by tiles of one or two rows gives the bits of
/// the same product with B packed (a strided B): on paths with panels of 2 or
/// 3 vectors such tiles span two panels at once, and a task of one row panel
/// never packs B. Two rows, an edge of one row after a full panel, several
/// panel pairs with a single panel and a partial panel left, alpha, beta,
/// bias and ReLU, one thread and two.
#[test]
fn few_rows_against_row_major_b_give_the_bits_of_packed_b() {
    for isa in isas() {
        let (bl, w) = blocking_of(isa);
        let nr = bl.nr;
        let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
            &[(2, 2 * nr + 1, 5)]
        } else {
            &[
                (2, 5 * nr + 3, 70),
                (bl.mr + 1, 4 * nr, 33),
                (bl.mr + 2, 2 * nr + 1, 129),
                (2, 256, 784),
            ]
        };
        for &(m, n, k) in shapes {
            let mut rng = Rng(29);
            let (av, bv, cv, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(m * n), rng.vec(n));
            let bs = Mat::new(&bv, k, n, Layout::Strided, 0, 0.0);
            let a = MatRef::row_major(&av, m, k);
            let (b_row, b_str) = (MatRef::row_major(&bv, k, n), bs.r());
            let mut probe = cv.clone();
            let c = MatMut::row_major(&mut probe, m, n);
            let plan = driver::plan(
                &problem(Batch::ONE, 1.0, a, b_row, 0.0, c, Epilogue::NONE),
                bl,
                w,
                1,
            );
            assert!(
                plan.kind == driver::Kind::Gemm && !plan.pack_b,
                "{isa} {m}x{n}x{k}"
            );
            same_bits(isa, (m, n, k), &cv, &bias, (a, b_str), (a, b_row));
        }
    }
}
