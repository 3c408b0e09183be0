//! Element-wise kernels: every SIMD table against the scalar table.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{
    LENGTHS, OFFSETS, Rng, SPECIALS, all, assert_match, assert_panics, inputs, same_bits, scalar,
    simd,
};
use crate::kernels::{Binary, Kernels, Unary, ZipFn};

/// A unary kernel, the input range to try, and the allowed distance from the
/// scalar path in ulp (0 = bit-identical): the floor of the SIMD kernel's
/// measured maximum error plus the scalar path's (see `accuracy`).
struct UnaryCase {
    name: &'static str,
    get: fn(&Kernels) -> Unary,
    lo: f32,
    hi: f32,
    ulps: u64,
}

macro_rules! case {
    ($name:ident, $lo:expr, $hi:expr, $ulps:expr) => {
        UnaryCase {
            name: stringify!($name),
            get: |k| k.$name,
            lo: $lo,
            hi: $hi,
            ulps: $ulps,
        }
    };
}

const UNARY: &[UnaryCase] = &[
    case!(neg, -10.0, 10.0, 0),
    case!(abs, -10.0, 10.0, 0),
    case!(exp, -110.0, 95.0, 2),
    case!(log, 0.0, 1000.0, 2),
    case!(log1p, -1.0, 100.0, 2),
    case!(sqrt, 0.0, 1000.0, 0),
    case!(rsqrt, 0.0, 1000.0, 0),
    case!(sin, -200.0, 200.0, 2),
    case!(cos, -200.0, 200.0, 2),
    case!(tanh, -12.0, 12.0, 3),
    case!(erf, -7.0, 7.0, 2),
    case!(relu, -10.0, 10.0, 0),
    case!(sigmoid, -110.0, 40.0, 4),
    case!(gelu, -16.0, 12.0, 3),
    case!(gelu_tanh, -14.0, 14.0, 3),
    case!(silu, -110.0, 40.0, 3),
    case!(softplus, -110.0, 40.0, 3),
    case!(recip, -10.0, 10.0, 0),
    case!(square, -1e20, 1e20, 0),
    case!(floor, -1e8, 1e8, 0),
    case!(ceil, -1e8, 1e8, 0),
    case!(round, -1e3, 1e3, 0),
    case!(trunc, -1e8, 1e8, 0),
    case!(sign, -1.0, 1.0, 0),
];

/// Runs `check(k, x, off)` for every SIMD table, length and offset, with an
/// input of `n` elements (plus offset) from `make`.
fn for_each_layout(
    seed: u64,
    make: impl Fn(&mut Rng, usize) -> Vec<f32>,
    mut check: impl FnMut(&'static Kernels, &[f32], usize),
) {
    let mut rng = Rng::new(seed);
    for k in simd() {
        for &n in LENGTHS {
            for &off in OFFSETS {
                let x = make(&mut rng, n + off);
                check(k, &x[off..], off);
            }
        }
    }
}

#[test]
fn unary_matches_scalar() {
    for (c, case) in UNARY.iter().enumerate() {
        for_each_layout(
            c as u64,
            |rng, n| inputs(rng, n, case.lo, case.hi),
            |k, x, off| {
                let what = format!("{} {} n={} off={off}", k.isa, case.name, x.len());
                let mut want = vec![0.0; x.len()];
                ((case.get)(scalar()).map)(x, &mut want);
                // Output also at an odd offset.
                let mut got = vec![0.0; x.len() + off];
                ((case.get)(k).map)(x, &mut got[off..]);
                assert_match(&what, x, &got[off..], &want, case.ulps);
                // In place gives exactly the out-of-place result.
                let mut buf = vec![0.0; off];
                buf.extend_from_slice(x);
                ((case.get)(k).map_inplace)(&mut buf[off..]);
                assert_match(&format!("{what} in place"), x, &buf[off..], &got[off..], 0);
            },
        );
    }
}

#[test]
fn scalar_in_place_equals_out_of_place() {
    let mut rng = Rng::new(99);
    let x = inputs(&mut rng, 257, -30.0, 30.0);
    for case in UNARY {
        let mut out = vec![0.0; x.len()];
        ((case.get)(scalar()).map)(&x, &mut out);
        let mut buf = x.clone();
        ((case.get)(scalar()).map_inplace)(&mut buf);
        assert_match(case.name, &x, &buf, &out, 0);
    }
}

#[test]
fn special_values_match_scalar() {
    // Every special value at every lane position of a register.
    let mut x = Vec::new();
    for s in SPECIALS {
        for pos in 0..16 {
            let mut v = vec![0.25f32; 16];
            v[pos] = *s;
            x.extend(v);
        }
    }
    x.extend([
        88.72, 88.73, -87.33, -103.9, -104.0, 1e-45, 65536.0, 65537.0, 1e30, -1e30,
    ]);
    for k in simd() {
        for case in UNARY {
            let mut want = vec![0.0; x.len()];
            ((case.get)(scalar()).map)(&x, &mut want);
            let mut got = vec![0.0; x.len()];
            ((case.get)(k).map)(&x, &mut got);
            assert_match(
                &format!("{} {} specials", k.isa, case.name),
                &x,
                &got,
                &want,
                case.ulps,
            );
        }
    }
}

/// A binary kernel and how close it must be to scalar (all exact).
struct BinaryCase {
    name: &'static str,
    get: fn(&Kernels) -> Binary,
}

macro_rules! bcase {
    ($name:ident) => {
        BinaryCase {
            name: stringify!($name),
            get: |k| k.$name,
        }
    };
}

const BINARY: &[BinaryCase] = &[
    bcase!(add),
    bcase!(sub),
    bcase!(mul),
    bcase!(div),
    bcase!(maximum),
    bcase!(minimum),
    bcase!(pow),
    bcase!(eq),
    bcase!(ne),
    bcase!(lt),
    bcase!(le),
    bcase!(gt),
    bcase!(ge),
];

/// Operand pairs with many ties, signed zeros, NaNs and infinities.
fn operands(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = inputs(rng, n, -4.0, 4.0);
    let b = a
        .iter()
        .map(|&v| match rng.below(6) {
            0 => v,
            1 => -v,
            2 => SPECIALS[rng.below(SPECIALS.len())],
            3 => (rng.range(-4.0, 4.0) * 2.0).round() * 0.5,
            _ => rng.range(-4.0, 4.0),
        })
        .collect();
    (a, b)
}

#[test]
fn binary_matches_scalar_with_broadcast() {
    let mut rng = Rng::new(7);
    for k in simd() {
        for case in BINARY {
            for &n in LENGTHS {
                for &off in OFFSETS {
                    let (a, b) = operands(&mut rng, n + off);
                    let (a, b) = (&a[off..], &b[off..]);
                    let s = [b.first().copied().unwrap_or(0.0)];
                    let t = [a.first().copied().unwrap_or(-0.0)];
                    // Full/full, full/scalar, scalar/full, scalar/scalar.
                    for (aa, bb) in [(a, b), (a, &s[..]), (&t[..], b), (&t[..], &s[..])] {
                        let what = format!(
                            "{} {} n={n} off={off} a.len={} b.len={}",
                            k.isa,
                            case.name,
                            aa.len(),
                            bb.len()
                        );
                        let mut want = vec![0.0; n];
                        ((case.get)(scalar()).map)(aa, bb, &mut want);
                        let mut got = vec![0.0; n + off];
                        ((case.get)(k).map)(aa, bb, &mut got[off..]);
                        assert_match(&what, aa, &got[off..], &want, 0);
                        if aa.len() == n {
                            let mut acc = aa.to_vec();
                            ((case.get)(k).map_inplace)(&mut acc, bb);
                            assert_match(&format!("{what} in place"), aa, &acc, &want, 0);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn maximum_minimum_semantics() {
    for k in all() {
        let a = [1.0, -0.0, 0.0, f32::NAN, 2.0, -0.0, f32::NEG_INFINITY, 5.0];
        let b = [2.0, 0.0, -0.0, 1.0, f32::NAN, -0.0, -1.0, 5.0];
        let mut out = [0.0; 8];
        (k.maximum.map)(&a, &b, &mut out);
        let want = [2.0, 0.0, 0.0, f32::NAN, f32::NAN, -0.0, -1.0, 5.0];
        assert!(
            out.iter().zip(&want).all(|(&g, &w)| same_bits(g, w)),
            "{}: {out:?}",
            k.isa
        );
        (k.minimum.map)(&a, &b, &mut out);
        let want = [
            1.0,
            -0.0,
            -0.0,
            f32::NAN,
            f32::NAN,
            -0.0,
            f32::NEG_INFINITY,
            5.0,
        ];
        assert!(
            out.iter().zip(&want).all(|(&g, &w)| same_bits(g, w)),
            "{}: {out:?}",
            k.isa
        );
    }
}

#[test]
fn parametric_match_scalar() {
    let s = scalar();
    let slopes = [0.01f32, -0.5, 0.0, f32::NAN];
    let bounds = [
        (-1.0f32, 1.0f32),
        (0.0, f32::INFINITY),
        (f32::NEG_INFINITY, 0.5),
        (2.0, -2.0),
        (f32::NAN, 1.0),
        (-1.0, f32::NAN),
    ];
    let powers = [
        0.0f32,
        -0.0,
        1.0,
        2.0,
        3.0,
        -2.0,
        0.5,
        -0.5,
        -1.0,
        2.5,
        -3.0,
        4.0,
        f32::NAN,
    ];
    let affines = [
        (2.0f32, 1.0f32),
        (-0.5, 0.25),
        (0.0, f32::NAN),
        (1e30, 1e30),
    ];
    for_each_layout(
        11,
        |rng, n| inputs(rng, n, -5.0, 5.0),
        |k, x, off| {
            let n = x.len();
            let what = |op: &str| format!("{} {op} n={n} off={off}", k.isa);
            let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
            let check_inplace = |op: &str, got: &[f32], f: &dyn Fn(&mut [f32])| {
                let mut buf = x.to_vec();
                f(&mut buf);
                assert_match(&format!("{} in place", what(op)), x, &buf, got, 0);
            };
            for &sl in &slopes {
                (s.leaky_relu)(x, sl, &mut want);
                (k.leaky_relu)(x, sl, &mut got);
                assert_match(&what("leaky_relu"), x, &got, &want, 0);
                check_inplace("leaky_relu", &got, &|b| (k.leaky_relu_inplace)(b, sl));
            }
            for &(lo, hi) in &bounds {
                (s.clamp)(x, lo, hi, &mut want);
                (k.clamp)(x, lo, hi, &mut got);
                assert_match(&what("clamp"), x, &got, &want, 0);
                check_inplace("clamp", &got, &|b| (k.clamp_inplace)(b, lo, hi));
            }
            for &p in &powers {
                (s.pow_scalar)(x, p, &mut want);
                (k.pow_scalar)(x, p, &mut got);
                assert_match(&what("pow_scalar"), x, &got, &want, 0);
                check_inplace("pow_scalar", &got, &|b| (k.pow_scalar_inplace)(b, p));
            }
            for &(a, b) in &affines {
                (s.affine)(x, a, b, &mut want);
                (k.affine)(x, a, b, &mut got);
                assert_match(&what("affine"), x, &got, &want, 0);
                check_inplace("affine", &got, &|buf| (k.affine_inplace)(buf, a, b));
            }
        },
    );
}

#[test]
fn pow_scalar_pytorch_semantics() {
    for k in all() {
        let x = [f32::NAN, -2.0, -0.0, 0.0, f32::NEG_INFINITY, 4.0, -8.0];
        let mut out = [0.0; 7];
        (k.pow_scalar)(&x, 0.0, &mut out);
        assert_eq!(out, [1.0; 7], "{}: x^0 = 1 even for NaN", k.isa);
        (k.pow_scalar)(&x, 3.0, &mut out);
        assert_eq!(out[1], -8.0);
        (k.pow_scalar)(&x, 0.5, &mut out);
        // sqrt fast path: sqrt(-0) = -0 and sqrt(-inf) = NaN, as PyTorch.
        assert!(out[2] == 0.0 && out[2].is_sign_negative() && out[4].is_nan());
        (k.pow_scalar)(&x, 5.0, &mut out);
        assert_eq!(
            (out[1], out[6]),
            (-32.0, -32768.0),
            "{}: odd integral power",
            k.isa
        );
        (k.pow_scalar)(&x, 2.5, &mut out);
        assert!(
            out[1].is_nan() && out[5] == 32.0,
            "{}: non-integral power",
            k.isa
        );
    }
}

/// A backward kernel: allowed error relative to `scale(x, g)` in units of
/// `eps = 2^-24` (0 = bit-identical to scalar).
struct BackwardCase {
    name: &'static str,
    get: fn(&Kernels) -> ZipFn,
    lo: f32,
    hi: f32,
    eps: f64,
    scale: fn(f64, f64) -> f64,
}

fn sigm(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

const BACKWARD: &[BackwardCase] = &[
    BackwardCase {
        name: "relu_backward",
        get: |k| k.relu_backward,
        lo: -3.0,
        hi: 3.0,
        eps: 0.0,
        scale: |_, _| 0.0,
    },
    BackwardCase {
        name: "sigmoid_backward",
        get: |k| k.sigmoid_backward,
        lo: 0.0,
        hi: 1.0,
        eps: 0.0,
        scale: |_, _| 0.0,
    },
    BackwardCase {
        name: "tanh_backward",
        get: |k| k.tanh_backward,
        lo: -1.0,
        hi: 1.0,
        eps: 0.0,
        scale: |_, _| 0.0,
    },
    BackwardCase {
        name: "gelu_backward",
        get: |k| k.gelu_backward,
        lo: -12.0,
        hi: 12.0,
        eps: 5.0,
        scale: |x, g| {
            let pdf = (-0.5 * x * x).exp() * 0.398_942_280_401_432_7;
            (0.5 * libm::erfc(-x / core::f64::consts::SQRT_2) + (x * pdf).abs()) * g.abs()
        },
    },
    BackwardCase {
        name: "gelu_tanh_backward",
        get: |k| k.gelu_tanh_backward,
        lo: -12.0,
        hi: 12.0,
        eps: 7.0,
        scale: |x, g| {
            let c = 0.797_884_560_802_865_4;
            let v = 2.0 * c * (x + 0.044715 * x * x * x);
            let dv = 2.0 * c * (1.0 + 3.0 * 0.044715 * x * x);
            let s = sigm(v);
            (s + (x * dv * s * sigm(-v)).abs()) * g.abs()
        },
    },
    BackwardCase {
        name: "silu_backward",
        get: |k| k.silu_backward,
        lo: -100.0,
        hi: 40.0,
        eps: 5.0,
        scale: |x, g| {
            let s = sigm(x);
            (s + (x * s * (1.0 - s)).abs()) * g.abs()
        },
    },
    BackwardCase {
        name: "softplus_backward",
        get: |k| k.softplus_backward,
        lo: -100.0,
        hi: 40.0,
        eps: 4.0,
        scale: |x, g| sigm(x) * g.abs(),
    },
];

#[test]
fn backward_matches_scalar() {
    for (c, case) in BACKWARD.iter().enumerate() {
        for_each_layout(
            100 + c as u64,
            |rng, n| {
                // x in the case's range, then g, interleaved as [x.., g..].
                let mut v = inputs(rng, n, case.lo, case.hi);
                v.extend((0..n).map(|_| rng.range(-2.0, 2.0)));
                v
            },
            |k, xg, off| {
                // `xg` is [x (n + off), g (n + off)] minus the first `off`.
                let n = (xg.len() + off) / 2 - off;
                let (x, g) = (&xg[..n], &xg[n + off..]);
                let what = format!("{} {} n={n} off={off}", k.isa, case.name);
                let mut want = vec![0.0; n];
                ((case.get)(scalar()))(x, g, &mut want);
                let mut got = vec![0.0; n];
                ((case.get)(k))(x, g, &mut got);
                if case.eps == 0.0 {
                    assert_match(&what, x, &got, &want, 0);
                    return;
                }
                for i in 0..n {
                    let (w, gi) = (want[i] as f64, got[i] as f64);
                    if want[i].is_nan() || !want[i].is_finite() {
                        assert!(same_bits(got[i], want[i]), "{what}: x={} {gi} vs {w}", x[i]);
                        continue;
                    }
                    // Relative to the scale, plus the subnormal quantum that
                    // rounding the derivative before multiplying by g costs.
                    let tol = case.eps * 2f64.powi(-24) * (case.scale)(x[i] as f64, g[i] as f64)
                        + 2.0 * (1.0 + (g[i] as f64).abs()) * 2f64.powi(-149);
                    assert!(
                        (gi - w).abs() <= tol,
                        "{what}: x={:e} g={:e}: {gi:e} vs scalar {w:e} (tol {tol:e})",
                        x[i],
                        g[i]
                    );
                }
            },
        );
    }
}

#[test]
fn leaky_relu_backward_and_axpy_exact() {
    let s = scalar();
    for_each_layout(
        21,
        |rng, n| inputs(rng, n, -3.0, 3.0),
        |k, x, off| {
            let n = x.len();
            let g: Vec<f32> = x.iter().rev().copied().collect();
            let what = format!("{} n={n} off={off}", k.isa);
            let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
            for sl in [0.01f32, 0.2, -1.0] {
                (s.leaky_relu_backward)(x, &g, sl, &mut want);
                (k.leaky_relu_backward)(x, &g, sl, &mut got);
                assert_match(&format!("{what} leaky_relu_backward"), x, &got, &want, 0);
            }
            for alpha in [0.5f32, -3.0, 0.0] {
                want.copy_from_slice(&g);
                got.copy_from_slice(&g);
                (s.axpy)(alpha, x, &mut want);
                (k.axpy)(alpha, x, &mut got);
                assert_match(&format!("{what} axpy"), x, &got, &want, 0);
            }
        },
    );
}

/// Kahan steps (`kahan_rows` of one row) match the scalar path bit for bit, sums and compensations,
/// over three steps (so compensations carry over), from sums near 1e7 (where
/// the additions round) and near `f32::MAX` (where they overflow), with the
/// special values of `inputs` among the addends.
#[test]
fn kahan_rows_exact() {
    let s = scalar();
    for_each_layout(
        23,
        |rng, n| inputs(rng, n, -1e3, 1e3),
        |k, x, off| {
            let n = x.len();
            let what = format!("{} n={n} off={off} kahan_rows of one row", k.isa);
            let start: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 13 == 5 {
                        3.0e38
                    } else {
                        1.0e7 + i as f32
                    }
                })
                .collect();
            let (mut wa, mut wc) = (start.clone(), vec![0.0; n]);
            let (mut ga, mut gc) = (start, vec![0.0; n]);
            for step in 0..3 {
                let v: Vec<f32> = x.iter().map(|&xi| xi * (0.37 + step as f32)).collect();
                (s.kahan_rows)(&mut wa, &mut wc, &v, 1, n);
                (k.kahan_rows)(&mut ga, &mut gc, &v, 1, n);
                assert_match(&format!("{what} sum, step {step}"), &v, &ga, &wa, 0);
                assert_match(
                    &format!("{what} compensation, step {step}"),
                    &v,
                    &gc,
                    &wc,
                    0,
                );
            }
        },
    );
    // kahan_rows over row blocks (column counts around the 8-, 4-, 2- and
    // 1-register strips of every ISA, strides past the row) equals the
    // scalar path one row at a time; with `big`, some columns start near
    // `f32::MAX` and overflow in a later row (a strip's first pass then
    // ends non-finite and is redone with the reset).
    let mut rng = Rng::new(24);
    for k in simd() {
        for cols in [
            0, 1, 7, 8, 15, 16, 17, 33, 63, 64, 65, 100, 127, 128, 129, 200, 256,
        ] {
            for (rows, big) in [
                (0, false),
                (1, false),
                (2, false),
                (5, false),
                (5, true),
                (9, true),
            ] {
                let stride = cols + 3;
                let mut src = inputs(&mut rng, rows * stride + cols, -1e3, 1e3);
                let start: Vec<f32> = (0..cols)
                    .map(|i| {
                        if big && i % 37 == 3 {
                            3.3e38
                        } else {
                            1.0e7 + i as f32
                        }
                    })
                    .collect();
                if big {
                    // Row 3 pushes the large columns past f32::MAX.
                    for j in (3..cols).step_by(37) {
                        src[3 * stride + j] = 1.0e38;
                    }
                }
                let (mut wa, mut wc) = (start.clone(), vec![0.0; cols]);
                let (mut ga, mut gc) = (start, vec![0.0; cols]);
                for i in 0..rows {
                    (s.kahan_rows)(&mut wa, &mut wc, &src[i * stride..], 1, cols);
                }
                (k.kahan_rows)(&mut ga, &mut gc, &src, rows, stride);
                let what = format!("{} kahan_rows {rows} x {cols} (big: {big})", k.isa);
                assert_match(&format!("{what} sum"), &wa, &ga, &wa, 0);
                assert_match(&format!("{what} compensation"), &wc, &gc, &wc, 0);
            }
        }
    }
    // The compensation works: 1e8 + 1 rounds back to 1e8 (its ulp is 8), but
    // sixteen compensated steps of 1 reach 1e8 + 16 exactly; an infinite sum
    // stays infinite (the compensation is dropped, not `inf - inf`).
    for k in all() {
        let (mut acc, mut comp) = ([1e8f32, 3.0e38, 0.0], [0.0f32; 3]);
        for _ in 0..16 {
            (k.kahan_rows)(&mut acc, &mut comp, &[1.0, 3.0e38, 1.0], 1, 3);
        }
        assert_eq!(
            acc,
            [1e8 + 16.0, f32::INFINITY, 16.0],
            "{} kahan_rows",
            k.isa
        );
        assert_eq!(comp[1], 0.0, "{} kahan_rows at infinity", k.isa);
    }
}

#[test]
fn length_mismatch_panics_on_every_table() {
    for k in all() {
        let (x, mut out) = ([1.0f32; 5], [0.0f32; 4]);
        assert_panics("kernels::exp", || (k.exp.map)(&x, &mut out));
        assert_panics("kernels::leaky_relu", || (k.leaky_relu)(&x, 0.1, &mut out));
        assert_panics("operand `b`", || {
            (k.add.map)(&[1.0; 4], &[1.0; 3], &mut out)
        });
        assert_panics("operand `a`", || {
            (k.mul.map)(&[1.0; 2], &[1.0; 4], &mut out)
        });
        assert_panics("operand `b`", || (k.sub.map_inplace)(&mut out, &[1.0; 2]));
        assert_panics("kernels::gelu_backward", || {
            (k.gelu_backward)(&x, &x, &mut out)
        });
        assert_panics("kernels::axpy", || (k.axpy)(1.0, &x, &mut out));
        assert_panics("kernels::kahan_rows", || {
            (k.kahan_rows)(&mut out, &mut [0.0; 5], &x, 1, 4)
        });
        assert_panics("kernels::kahan_rows", || {
            (k.kahan_rows)(&mut out, &mut [0.0; 4], &x, 2, 2)
        });
    }
}

/// The SIMD tables compute the same operation sequence, so their element-wise
/// results are bit-identical (an AVX2 and an AVX-512 server agree exactly).
#[test]
fn simd_tables_agree_bitwise() {
    let tables = simd();
    let mut rng = Rng::new(31);
    for case in UNARY {
        let x = inputs(&mut rng, 4099, case.lo, case.hi);
        let mut first = vec![0.0; x.len()];
        let mut other = vec![0.0; x.len()];
        for (i, k) in tables.iter().enumerate() {
            let out = if i == 0 { &mut first } else { &mut other };
            ((case.get)(k).map)(&x, out);
            if i > 0 {
                let what = format!("{} vs {} {}", k.isa, tables[0].isa, case.name);
                assert_match(&what, &x, &other, &first, 0);
            }
        }
    }
}

/// `exp` and `sigmoid` take a cheaper form on blocks whose lanes all satisfy
/// `|x| <= 87`; it must equal the general form bit for bit, so an element's
/// result cannot depend on its neighbours (nor on where threads split a
/// slice). Each element of a slice that mixes both kinds of block is compared
/// with the element computed alone.
#[test]
fn guarded_kernels_do_not_depend_on_neighbours() {
    type Get = fn(&Kernels) -> Unary;
    let cases: [(&str, Get); 2] = [("exp", |k| k.exp), ("sigmoid", |k| k.sigmoid)];
    let mut rng = Rng::new(47);
    for k in simd() {
        for (name, get) in cases {
            let mut x: Vec<f32> = (0..2000).map(|_| rng.range(-87.0, 87.0)).collect();
            // Outside values in some blocks only; the boundary itself inside.
            // And lanes whose `exp` rounds to 0 (set aside before the
            // arithmetic) beside ordinary ones in the same register.
            let low = [(900, -104.5), (901, f32::NEG_INFINITY), (1500, -300.0)];
            for (i, v) in [(5, 87.5), (300, -90.0), (301, f32::NAN), (1200, 1e30)]
                .into_iter()
                .chain(low)
            {
                x[i] = v;
            }
            x[700] = 87.0;
            x[701] = -87.0;
            each_equals_alone(k, name, get(k), &x);
        }
    }
}

/// `f` over all of `x`, out of place and in place, equals `f` of each
/// element alone, bit for bit.
fn each_equals_alone(k: &Kernels, name: &str, f: Unary, x: &[f32]) {
    let mut all = vec![0.0; x.len()];
    (f.map)(x, &mut all);
    let mut buf = x.to_vec();
    (f.map_inplace)(&mut buf);
    for i in 0..x.len() {
        let mut one = [0.0];
        (f.map)(&x[i..=i], &mut one);
        let what = format!("{} {name} element {i} alone", k.isa);
        assert_match(&what, &x[i..=i], &all[i..=i], &one, 0);
        assert_match(
            &format!("{what}, in place"),
            &x[i..=i],
            &buf[i..=i],
            &one,
            0,
        );
    }
}

/// `tanh` runs in two passes over chunks of 512 elements (`map_staged`, on
/// the paths that stage it: AVX2 and NEON) and in one pass on shorter
/// slices; both must give the same bits, out of place and in place, so an
/// element's result cannot depend on the slice's length or its position in
/// it. Each element of a long slice (three chunks and a partial register) is
/// compared with the element computed alone.
#[test]
fn staged_kernels_equal_the_one_pass_form() {
    let mut rng = Rng::new(53);
    for k in simd() {
        let mut x: Vec<f32> = (0..3 * 512 + 13).map(|_| rng.range(-12.0, 12.0)).collect();
        let special = [
            0.0,
            -0.0,
            0.375,
            -0.375,
            10.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e-40,
        ];
        for (i, v) in special.into_iter().enumerate() {
            x[511 + 97 * i] = v;
        }
        each_equals_alone(k, "tanh", k.tanh, &x);
    }
}
