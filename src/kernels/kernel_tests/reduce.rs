//! Reductions, row kernels and copies on every table.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{
    LENGTHS, OFFSETS, Rng, all, assert_match, assert_panics, inputs, same_bits, scalar, simd,
};
use crate::kernels::{Isa, Kernels};

const EPS: f64 = 1.0 / (1u64 << 24) as f64;

/// Error bound of a sum of `n` terms: `(log2(n) + 12) eps sum|terms|`, which
/// covers both the pairwise scalar order and the blocked SIMD order.
fn sum_tol(n: usize, abs_sum: f64) -> f64 {
    ((n as f64 + 1.0).log2() + 12.0) * EPS * abs_sum + 1e-30
}

#[test]
fn sums_are_accurate_and_deterministic() {
    let mut rng = Rng::new(5);
    for k in all() {
        for &n in LENGTHS.iter().chain(&[4095, 4096, 4097, 20_000]) {
            let n = if cfg!(miri) { n.min(100) } else { n };
            for &off in OFFSETS {
                let a: Vec<f32> = (0..n + off).map(|_| rng.range(-1.0, 1.0)).collect();
                let b: Vec<f32> = (0..n + off).map(|_| rng.range(-3.0, 3.0)).collect();
                let (a, b) = (&a[off..], &b[off..]);
                let what = format!("{} n={n} off={off}", k.isa);
                let cases: [(&str, f32, f64, f64); 4] = [
                    (
                        "sum",
                        (k.sum)(a),
                        a.iter().map(|&v| v as f64).sum(),
                        a.iter().map(|&v| (v as f64).abs()).sum(),
                    ),
                    (
                        "sum_sq",
                        (k.sum_sq)(a),
                        a.iter().map(|&v| (v as f64).powi(2)).sum(),
                        a.iter().map(|&v| (v as f64).powi(2)).sum(),
                    ),
                    (
                        "sum_abs",
                        (k.sum_abs)(a),
                        a.iter().map(|&v| (v as f64).abs()).sum(),
                        a.iter().map(|&v| (v as f64).abs()).sum(),
                    ),
                    (
                        "dot",
                        (k.dot)(a, b),
                        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum(),
                        a.iter()
                            .zip(b)
                            .map(|(&x, &y)| (x as f64 * y as f64).abs())
                            .sum(),
                    ),
                ];
                for (name, got, exact, abs) in cases {
                    let tol = sum_tol(n, abs);
                    assert!(
                        (got as f64 - exact).abs() <= tol,
                        "{what} {name}: {got} vs exact {exact} (tol {tol:e})"
                    );
                }
                // Same input, same answer.
                assert_eq!((k.sum)(a).to_bits(), (k.sum)(a).to_bits(), "{what}");
                assert_eq!((k.dot)(a, b).to_bits(), (k.dot)(a, b).to_bits(), "{what}");
            }
        }
    }
}

/// The PyTorch-cascade-sum comparison: 1e7 uniform values in [0, 1), relative
/// error against `f64` below `2^-20` (a left-to-right `f32` loop is off by
/// about `1e-3` here).
#[test]
fn sum_of_ten_million_is_accurate() {
    let n = if cfg!(miri) { 1000 } else { 10_000_000 };
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
    let exact: f64 = x.iter().map(|&v| v as f64).sum();
    let naive = x.iter().fold(0.0f32, |s, &v| s + v);
    for k in all() {
        let got = (k.sum)(&x) as f64;
        let rel = (got - exact).abs() / exact;
        assert!(rel < 2f64.powi(-20), "{}: relative error {rel:e}", k.isa);
        if n >= 1_000_000 {
            // The bound is tight enough that a naive loop would fail it.
            assert!((naive as f64 - exact).abs() / exact > 2f64.powi(-20));
        }
    }
}

#[test]
fn sums_propagate_specials() {
    for k in all() {
        for (x, nan, inf) in [
            (vec![1.0, f32::NAN, 2.0], true, false),
            (
                vec![1.0; 40]
                    .into_iter()
                    .chain([f32::INFINITY])
                    .collect::<Vec<_>>(),
                false,
                true,
            ),
            (vec![f32::INFINITY, f32::NEG_INFINITY], true, false),
        ] {
            let s = (k.sum)(&x);
            assert_eq!(
                (s.is_nan(), s.is_infinite()),
                (nan, inf),
                "{}: sum {x:?} = {s}",
                k.isa
            );
        }
        assert_eq!((k.sum)(&[]), 0.0);
        assert_eq!((k.dot)(&[], &[]), 0.0);
    }
}

/// Inputs for the extremes: small integers (many ties), signed zeros and
/// infinities; NaNs only when asked.
fn extreme_inputs(rng: &mut Rng, n: usize, with_nan: bool) -> Vec<f32> {
    (0..n)
        .map(|_| match rng.below(12) {
            0 => 0.0,
            1 => -0.0,
            2 if with_nan && rng.below(4) == 0 => f32::NAN,
            3 if rng.below(8) == 0 => f32::INFINITY,
            4 if rng.below(8) == 0 => f32::NEG_INFINITY,
            _ => (rng.below(9) as f32 - 4.0) * 0.5,
        })
        .collect()
}

#[test]
fn extremes_match_scalar_exactly() {
    let mut rng = Rng::new(9);
    let s = scalar();
    for k in all() {
        for &n in LENGTHS {
            for &off in OFFSETS {
                for with_nan in [false, true] {
                    let x = extreme_inputs(&mut rng, n + off, with_nan);
                    let x = &x[off..];
                    let what = format!("{} n={n} off={off} nan={with_nan}", k.isa);
                    for (name, f) in [
                        ("max", k.max as fn(&[f32]) -> f32),
                        ("min", k.min),
                        ("max_abs", k.max_abs),
                    ] {
                        let (got, want) = (
                            f(x),
                            match name {
                                "max" => (s.max)(x),
                                "min" => (s.min)(x),
                                _ => (s.max_abs)(x),
                            },
                        );
                        assert!(same_bits(got, want), "{what} {name}: {got} vs {want}");
                    }
                    if n > 0 {
                        assert_eq!((k.argmax)(x), (s.argmax)(x), "{what} argmax {x:?}");
                        assert_eq!((k.argmin)(x), (s.argmin)(x), "{what} argmin {x:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn extreme_semantics() {
    for k in all() {
        assert!(same_bits((k.max)(&[-0.0, 0.0, -0.0]), 0.0), "{}", k.isa);
        assert!(same_bits((k.min)(&[0.0, -0.0, 0.0]), -0.0), "{}", k.isa);
        assert!((k.max)(&[1.0, f32::NAN, 3.0]).is_nan());
        assert_eq!((k.max)(&[]), f32::NEG_INFINITY);
        assert_eq!((k.min)(&[]), f32::INFINITY);
        assert_eq!((k.max_abs)(&[]), 0.0);
        assert_eq!((k.max_abs)(&[1.0, -7.0, 3.0]), 7.0);
        let mut x = vec![0.0f32; 40];
        x[5] = 3.0;
        x[17] = 3.0;
        x[33] = -3.0;
        assert_eq!((k.argmax)(&x), 5, "{}: first of the maxima", k.isa);
        assert_eq!((k.argmin)(&x), 33);
        x[20] = f32::NAN;
        x[30] = f32::NAN;
        assert_eq!((k.argmax)(&x), 20, "{}: first NaN counts as max", k.isa);
        assert_eq!((k.argmin)(&x), 20);
        assert_eq!((k.argmax)(&[-0.0, 0.0]), 0, "{}: -0 == +0", k.isa);
        assert_panics("kernels::argmax", || {
            (k.argmax)(&[]);
        });
        assert_panics("kernels::dot", || {
            (k.dot)(&[1.0], &[1.0, 2.0]);
        });
    }
}

/// Row-kernel outputs within `ulps` of scalar, scaled for log outputs.
fn rows_close(what: &str, x: &[f32], got: &[f32], want: &[f32], abs_scale: f32) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() || w.is_infinite() {
            assert!(same_bits(g, w), "{what}: element {i}: {g} vs {w}");
            continue;
        }
        let tol = 8.0 * f32::EPSILON * (w.abs() + abs_scale) + 1e-38;
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i} (x={}): {g:e} vs scalar {w:e}",
            x[i]
        );
    }
}

#[test]
fn rows_match_scalar() {
    let mut rng = Rng::new(13);
    let s = scalar();
    for k in all() {
        for &n in LENGTHS.iter().chain(&[1024, 5000]) {
            let n = if cfg!(miri) { n.min(64) } else { n };
            for &off in OFFSETS {
                let x = inputs(&mut rng, n + off, -20.0, 20.0);
                let x: Vec<f32> = x
                    .iter()
                    .map(|v| if v.is_finite() { *v } else { 1.5 })
                    .collect();
                let x = &x[off..];
                let g: Vec<f32> = (0..n).map(|_| rng.range(-1.0, 1.0)).collect();
                let what = format!("{} n={n} off={off}", k.isa);
                let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);

                (s.softmax)(x, &mut want);
                (k.softmax)(x, &mut got);
                rows_close(&format!("{what} softmax"), x, &got, &want, 0.0);
                let mut buf = x.to_vec();
                (k.softmax_inplace)(&mut buf);
                assert_match(&format!("{what} softmax in place"), x, &buf, &got, 0);

                (s.log_softmax)(x, &mut want);
                (k.log_softmax)(x, &mut got);
                let scale = (n.max(1) as f32).ln() + 1.0;
                rows_close(&format!("{what} log_softmax"), x, &got, &want, scale);
                let mut buf = x.to_vec();
                (k.log_softmax_inplace)(&mut buf);
                assert_match(&format!("{what} log_softmax in place"), x, &buf, &got, 0);

                let (lg, lw) = ((k.logsumexp)(x), (s.logsumexp)(x));
                rows_close(&format!("{what} logsumexp"), x, &[lg], &[lw], scale);

                let mut y = vec![0.0; n];
                (s.softmax)(x, &mut y);
                (s.softmax_backward)(&y, &g, &mut want);
                (k.softmax_backward)(&y, &g, &mut got);
                // g - <g, y> may cancel: the error is absolute, about
                // eps |y| (|g| + sum |g y|).
                let gy: f32 = g.iter().zip(&y).map(|(a, b)| (a * b).abs()).sum();
                for i in 0..n {
                    let tol = 8.0 * f32::EPSILON * (want[i].abs() + y[i].abs() * (g[i].abs() + gy));
                    assert!(
                        (got[i] - want[i]).abs() <= tol + 1e-38,
                        "{what} softmax_backward {i}: {} vs {}",
                        got[i],
                        want[i]
                    );
                }
                (s.log_softmax)(x, &mut y);
                (s.log_softmax_backward)(&y, &g, &mut want);
                (k.log_softmax_backward)(&y, &g, &mut got);
                let gs = g.iter().map(|v| v.abs()).sum::<f32>() / 8.0;
                rows_close(&format!("{what} log_softmax_backward"), x, &got, &want, gs);
            }
        }
    }
}

#[test]
fn special_rows_as_pytorch() {
    let ninf = f32::NEG_INFINITY;
    for k in all() {
        let mut out = [0.0f32; 3];
        (k.softmax)(&[ninf, ninf, ninf], &mut out);
        assert!(
            out.iter().all(|v| v.is_nan()),
            "{}: all -inf softmax is NaN",
            k.isa
        );
        (k.log_softmax)(&[ninf, ninf, ninf], &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{}", k.isa);
        (k.softmax)(&[ninf, 0.0, ninf], &mut out);
        assert_eq!(out, [0.0, 1.0, 0.0], "{}: masked row", k.isa);
        (k.log_softmax)(&[ninf, 0.0, ninf], &mut out);
        assert_eq!(out, [ninf, 0.0, ninf], "{}", k.isa);
        (k.softmax)(&[1.0, f32::INFINITY, 2.0], &mut out);
        assert!(out[1].is_nan(), "{}", k.isa);
        assert_eq!((k.logsumexp)(&[ninf, ninf]), ninf);
        assert_eq!((k.logsumexp)(&[]), ninf);
        assert_eq!((k.logsumexp)(&[1.0, f32::INFINITY]), f32::INFINITY);
        assert!((k.logsumexp)(&[1.0, f32::NAN]).is_nan());
        let l = (k.logsumexp)(&[1000.0, 1000.0]);
        assert!(
            (l - (1000.0 + core::f32::consts::LN_2)).abs() < 1e-3,
            "{}: {l}",
            k.isa
        );
        (k.softmax)(&[], &mut []);
        assert_panics("kernels::softmax_backward", || {
            (k.softmax_backward)(&[1.0; 3], &[1.0; 2], &mut [0.0; 3]);
        });
    }
}

fn naive_transpose(src: &[f32], rows: usize, cols: usize, stride: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = src[i * stride + j];
        }
    }
    out
}

#[test]
fn copies_are_exact() {
    let mut rng = Rng::new(17);
    for k in all() {
        let check = |k: &Kernels, rows: usize, cols: usize, stride: usize| {
            let n = if rows == 0 {
                0
            } else {
                (rows - 1) * stride + cols
            };
            let src = inputs(&mut Rng::new((rows * 131 + cols) as u64), n, -1.0, 1.0);
            let mut out = vec![0.0; rows * cols];
            (k.transpose)(&src, rows, cols, stride, &mut out);
            let want = naive_transpose(&src, rows, cols, stride);
            assert_match(
                &format!("{} transpose {rows}x{cols}/{stride}", k.isa),
                &src,
                &out,
                &want,
                0,
            );
        };
        for (r, c, s) in [
            (0, 5, 5),
            (1, 1, 1),
            (3, 7, 9),
            (33, 65, 70),
            (64, 64, 64),
            (100, 37, 37),
            (8, 8, 8),
            (130, 75, 80),
            (9, 200, 201),
            (256, 128, 128),
        ] {
            check(k, r, c, s);
        }
        for stride in [0usize, 1, 3, 17] {
            for &n in LENGTHS {
                let len = if n == 0 { 0 } else { (n - 1) * stride + 1 };
                let src = inputs(&mut rng, len, -1.0, 1.0);
                let mut out = vec![0.0; n];
                (k.copy_strided)(&src, stride, &mut out);
                let want: Vec<f32> = (0..n).map(|i| src[i * stride]).collect();
                assert_match(
                    &format!("{} copy_strided {n}/{stride}", k.isa),
                    &src,
                    &out,
                    &want,
                    0,
                );
            }
        }
        assert_panics("kernels::copy_strided", || {
            (k.copy_strided)(&[1.0; 5], 2, &mut [0.0; 4])
        });
        assert_panics("kernels::transpose", || {
            (k.transpose)(&[1.0; 5], 2, 3, 3, &mut [0.0; 6])
        });
        assert_panics("kernels::transpose", || {
            (k.transpose)(&[1.0; 9], 3, 3, 2, &mut [0.0; 9])
        });
        assert_panics("kernels::transpose", || {
            (k.transpose)(&[1.0; 9], 3, 3, 3, &mut [0.0; 8])
        });
    }
}

/// The softmax family takes a cheaper `exp` where every `|x - max| <= 87`
/// (softmax per block, log-softmax and logsumexp per row); it must equal the
/// general form bit for bit. One element moved from inside (`max - 80`) to
/// outside (`max - 100`) sends its block or row through the general form;
/// its term (below 1e-34) cannot change the sum, so every other output must
/// stay bit for bit the same. Each row is also shifted up by 40: with its
/// maximum at 40 and the moved element at -40 every element is at most the
/// maximum in magnitude, so the cheap form also takes the rounding error of
/// `x - max` by Fast2Sum, and the general form (element at -60) by TwoSum.
#[test]
fn softmax_guarded_blocks_equal_the_general_form() {
    let mut rng = Rng::new(48);
    for k in simd() {
        let lanes = match k.isa {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            _ => 4,
        };
        // Random rows, and one where the order of the sum shows: registers
        // of e^0 = 1, t, ~0, t in turn (t = e^-16.9, under half an ulp of 1,
        // two of them over), so summing in another order than `sum`'s (four
        // accumulators round robin, then (a0 + a1) + (a2 + a3)) changes the
        // sum by an ulp and every output with it.
        let mut rows: Vec<Vec<f32>> = [37, 1000, 4099]
            .into_iter()
            .map(|n| {
                let mut x: Vec<f32> = (0..n).map(|_| rng.range(-20.0, 0.0)).collect();
                x[0] = 0.0;
                x
            })
            .collect();
        rows.push(
            (0..64 * lanes + 5)
                .map(|i| [0.0, -16.9, -80.0, -16.9][(i / lanes) % 4])
                .collect(),
        );
        let shifted: Vec<(f32, Vec<f32>)> = rows
            .iter()
            .map(|x| (40.0, x.iter().map(|v| v + 40.0).collect()))
            .collect();
        for (top, x) in rows.into_iter().map(|x| (0.0, x)).chain(shifted) {
            let n = x.len();
            let j = n - 3;
            let mut inside = x.clone();
            inside[j] = top - 80.0;
            let mut outside = x.clone();
            outside[j] = top - 100.0;
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            (k.softmax)(&inside, &mut a);
            (k.softmax)(&outside, &mut b);
            a[j] = 0.0;
            b[j] = 0.0;
            assert_match(&format!("{} softmax n={n}", k.isa), &x, &b, &a, 0);
            for row in [&inside, &outside] {
                let mut buf = row.clone();
                (k.softmax_inplace)(&mut buf);
                buf[j] = 0.0;
                let what = format!("{} softmax in place n={n}", k.isa);
                assert_match(&what, &x, &buf, &a, 0);
            }
            (k.log_softmax)(&inside, &mut a);
            (k.log_softmax)(&outside, &mut b);
            a[j] = 0.0;
            b[j] = 0.0;
            assert_match(&format!("{} log_softmax n={n}", k.isa), &x, &b, &a, 0);
            for row in [&inside, &outside] {
                let mut buf = row.clone();
                (k.log_softmax_inplace)(&mut buf);
                buf[j] = 0.0;
                let what = format!("{} log_softmax in place n={n}", k.isa);
                assert_match(&what, &x, &buf, &a, 0);
            }
            let (si, so) = ((k.logsumexp)(&inside), (k.logsumexp)(&outside));
            assert_eq!(si.to_bits(), so.to_bits(), "{} logsumexp n={n}", k.isa);
        }
    }
}

/// The softmax shift is the largest magnitude on the maximum's side where
/// that keeps every term within `e^16` of the largest and inside `exp`'s fast
/// domain, else the maximum; rows of each kind (and both sides of the
/// limits) match the scalar path, which shifts by the maximum.
#[test]
fn softmax_shift_and_rows_of_each_kind() {
    use crate::kernels::generic::reduce::softmax_shift;
    assert_eq!(softmax_shift(3.0, -1.0), 3.0, "|lo| <= m: the maximum");
    assert_eq!(softmax_shift(3.0, -5.0), 5.0, "mixed signs: |lo|");
    assert_eq!(softmax_shift(-3.0, -5.0), -5.0, "all negative: lo");
    assert_eq!(softmax_shift(3.0, -19.0), 19.0, "16 above m");
    assert_eq!(softmax_shift(3.0, -19.5), 3.0, "past the slack");
    assert_eq!(softmax_shift(-50.0, -66.0), -66.0, "16 below m");
    assert_eq!(softmax_shift(-50.0, -66.5), -50.0, "past the slack");
    assert_eq!(
        softmax_shift(40.0, -50.0),
        40.0,
        "lo - |lo| outside exp's domain"
    );
    assert!(softmax_shift(f32::NAN, -1.0).is_nan());
    assert_eq!(softmax_shift(f32::INFINITY, -1.0), f32::INFINITY);

    let mut rng = Rng::new(29);
    let s = scalar();
    let n = 1000;
    for (lo, hi) in [
        (-9.0, 4.0),
        (-9.0, -3.0),
        (-30.0, 3.0),
        (1.0, 9.0),
        (-60.0, -50.0),
    ] {
        let x: Vec<f32> = (0..n).map(|_| rng.range(lo, hi)).collect();
        let mut want = vec![0.0; n];
        (s.softmax)(&x, &mut want);
        for k in all() {
            let what = format!("{} row in [{lo}, {hi}]", k.isa);
            let mut got = vec![0.0; n];
            (k.softmax)(&x, &mut got);
            rows_close(&format!("{what} softmax"), &x, &got, &want, 0.0);
            let mut buf = x.clone();
            (k.softmax_inplace)(&mut buf);
            assert_match(&format!("{what} softmax in place"), &x, &buf, &got, 0);
        }
    }
}

/// `softmax_rows` (where a table has it) gives each row the bits of the
/// row kernel, for short and long rows, ragged lengths, and rows taking each
/// path: mixed signs, past the shift's slack, outside exp's fast domain
/// (guarded), and NaN, `inf` and all `-inf` rows.
#[test]
fn softmax_rows_equal_row_by_row() {
    let mut rng = Rng::new(31);
    let mut checked = 0;
    for k in all() {
        let Some(rows_fn) = k.softmax_rows else {
            continue;
        };
        for &len in &[1usize, 3, 16, 17, 100, 1024, 1030] {
            let rows = if cfg!(miri) { 3 } else { 9 };
            let mut x: Vec<f32> = Vec::with_capacity(rows * len);
            for r in 0..rows {
                let (lo, hi) = [(-4.0, 4.0), (-30.0, 3.0), (-200.0, 5.0), (1.0, 9.0)][r % 4];
                x.extend((0..len).map(|_| rng.range(lo, hi)));
            }
            // Special rows: a NaN, a +inf, all -inf.
            x[len] = f32::NAN;
            x[3 * len] = f32::INFINITY;
            if rows > 6 {
                x[6 * len..7 * len].fill(f32::NEG_INFINITY);
            }
            let mut want = vec![0.0; x.len()];
            for (xr, wr) in x.chunks(len).zip(want.chunks_mut(len)) {
                (k.softmax)(xr, wr);
            }
            let mut got = vec![0.0; x.len()];
            rows_fn(&x, &mut got, len);
            let what = format!("{} softmax_rows len={len}", k.isa);
            assert_match(&what, &x, &got, &want, 0);
            checked += 1;
        }
    }
    if simd().iter().any(|k| k.isa == Isa::Avx512) {
        assert!(checked > 0, "the AVX-512 table has softmax_rows");
    }
}

/// `log_softmax_rows` gives each row the bits of the row kernel on every
/// path: short rows (four at a time, and the one to three left over) and long
/// ones, rows wholly inside exp's fast domain and not, NaN, `inf` and all
/// `-inf` rows, and every row count from 0 to 9.
#[test]
fn log_softmax_rows_equal_row_by_row() {
    let mut rng = Rng::new(37);
    let lens: &[usize] = if cfg!(miri) {
        &[3, 10]
    } else {
        &[1, 3, 10, 16, 17, 64, 65, 100, 1030]
    };
    for k in all() {
        for &len in lens {
            for rows in 0..10 {
                let mut x: Vec<f32> = Vec::with_capacity(rows * len);
                for r in 0..rows {
                    let (lo, hi) = [(-4.0, 4.0), (-30.0, 3.0), (-200.0, 5.0), (1.0, 9.0)][r % 4];
                    x.extend((0..len).map(|_| rng.range(lo, hi)));
                }
                if rows > 7 {
                    x[len] = f32::NAN;
                    x[3 * len] = f32::INFINITY;
                    x[6 * len..7 * len].fill(f32::NEG_INFINITY);
                }
                let mut want = vec![0.0; x.len()];
                for (xr, wr) in x.chunks(len).zip(want.chunks_mut(len)) {
                    (k.log_softmax)(xr, wr);
                }
                let mut got = vec![f32::NAN; x.len()];
                (k.log_softmax_rows)(&x, &mut got, len);
                let what = format!("{} log_softmax_rows {rows} x {len}", k.isa);
                assert_match(&what, &x, &got, &want, 0);
            }
        }
    }
}
