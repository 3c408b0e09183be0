//! The exact GELU `x Phi(x)` and its derivative, from the smooth factor
//! `H(a) = a Q(a) e^(a^2/2)` of the normal tail `Q(a) = Phi(-a)`, `a = |x|`:
//!
//! - `x Phi(x) = -H(a) e^(-a^2/2)` for `x < 0` (`x Q(a)`, no cancellation),
//! - `x Phi(x) = x - H(a) e^(-a^2/2)` for `x >= 0` (`x (1 - Q(a))`, with
//!   `Q <= 1/2`).
//!
//! `H` rises from 0 to `1/sqrt(2 pi)`; one degree-7 polynomial per
//! half-octave of `a + 1` (`a` in [0, 0.5), [0.5, 1), [1, 2), [2, 3), [3, 5),
//! [5, 7), [7, 11), [11, 15)), its coefficients picked per lane
//! ([`Lanes::pick`], one permute), gives it within 0.50-0.71 ulp past
//! `a = 0.5` and 1.23 below (`tests/reference/fit_gelu.py` fits them and
//! prints the tables).
//! `e^(-a^2/2)` is `exp`'s core with `a^2/2` split exactly into two parts,
//! its last rounding merged into the product with `H`. GELU takes no
//! division (its derivative one, `H / a`) and no branch but the scaling's
//! (see [`scaled`]): the fdlibm `erfc` form this replaces evaluated a
//! rational with a division per register, a second division and `1/t^2` in
//! the tail, and an exponential.

use super::exp_core;
use crate::kernels::lanes::Lanes;

const GELU_CENTRE: [f32; 8] = [0.0, 0.75, 1.5, 2.5, 4.0, 6.0, 9.0, 13.0];
const GELU_H: [[f32; 8]; 8] = [
    [
        0.005630244,
        0.0013618133,
        0.00022828906,
        2.7077142e-05,
        2.0650343e-06,
        1.2350803e-07,
        5.692479e-09,
        2.5023397e-10,
    ],
    [
        -0.023657437,
        -0.0039277854,
        -0.00074513804,
        -0.00010482368,
        -9.92053e-06,
        -7.7373363e-07,
        -4.829495e-08,
        -2.9564327e-09,
    ],
    [
        0.061546154,
        0.010470572,
        0.0022077346,
        0.0003738051,
        4.2424566e-05,
        4.4827243e-06,
        3.629232e-07,
        3.251563e-08,
    ],
    [
        -0.13281721,
        -0.025912212,
        -0.0063264887,
        -0.0012866163,
        -0.00018720585,
        -2.6104879e-05,
        -2.9445926e-06,
        -3.6643848e-07,
    ],
    [
        0.24998641,
        0.05744007,
        0.016441684,
        0.004070423,
        0.00077107525,
        0.00014337247,
        2.2754613e-05,
        3.945519e-06,
    ],
    [
        -0.39894184,
        -0.11005302,
        -0.03749122,
        -0.011493413,
        -0.0028762538,
        -0.0007235564,
        -0.0001624535,
        -3.956895e-05,
    ],
    [
        0.5,
        0.16990651,
        0.07037374,
        0.027296452,
        0.009211775,
        0.0031809474,
        0.0010201626,
        0.00035081894,
    ],
    [
        0.0, 0.22517435, 0.308671, 0.35332832, 0.37764257, 0.3886759, 0.3941891, 0.3966224,
    ],
];
const GELU_H_LO: [f32; 8] = [
    0.0,
    -5.719899e-09,
    4.8129576e-09,
    1.1248884e-08,
    -3.5815657e-09,
    -1.221956e-08,
    1.156524e-08,
    -1.0757526e-09,
];

/// `|x|` is clamped here (below 15): `x Phi(x)` is 0 in `f32` below about
/// -14.2 and `x` above 6, and `a + 1` stays below 16 for the index.
const A_MAX: f32 = 14.999_999;

/// `H(a)`, and `p` and `2^n` with `e^(-a^2/2) = (1 + p) 2^n`, for `a = |x|`
/// clamped to [`A_MAX`] (NaN stays NaN).
#[inline(always)]
fn h_and_gauss<L: Lanes>(l: L, x: L::V) -> (L::V, L::V, L::V, Scale<L>) {
    // min returns the second operand on NaN.
    let a = l.min(l.splat(A_MAX), l.abs(x));
    // Where a + 1 rounds up to the next half-octave, its polynomial (fitted
    // a little past its ends) takes a.
    let i = l.octave_index(l.add(a, l.splat(1.0)));
    // Exact: a and its interval's centre are within a factor of 2.
    let u = l.sub(a, l.pick(i, &GELU_CENTRE));
    let mut y = l.pick(i, &GELU_H[0]);
    for c in &GELU_H[1..GELU_H.len() - 1] {
        y = l.fma(y, u, l.pick(i, c));
    }
    let y = l.fma(y, u, l.pick(i, &GELU_H_LO));
    let h = l.add(y, l.pick(i, &GELU_H[GELU_H.len() - 1]));
    // -a^2 / 2 = hi + lo exactly (b = -a/2 is exact), within exp_core's
    // domain (n >= -163) without a clamp.
    let b = l.mul(a, l.splat(-0.5));
    let hi = l.mul(b, a);
    let lo = l.fma(b, a, l.neg(hi));
    let (p, n, k) = exp_core(l, hi, Some(lo));
    (a, h, p, Scale { n, k })
}

/// `2^n` with `k = SHIFT_127 + n` (see [`Lanes::pow2_shifted`]), `n <= 0`.
struct Scale<L: Lanes> {
    n: L::V,
    k: L::V,
}

/// `m * 2^n` rounded once, for `|m| < 16`: where `ldexp` takes several
/// operations and every `2^n` is normal (`|x|` up to about 13), one product
/// by `2^n` (the same bits). Lanes with `n` below [`ZERO_N`] round to `±0`
/// (the sign of `m`) and are scaled as `±0 * 2^0`: scaled as they are, they
/// underflow and each register took a microcode assist (Intel, AVX-512:
/// GELU of 1e5 x 50.0 197 us, of 1e5 x 0 20 us).
#[inline(always)]
fn scaled<L: Lanes>(l: L, m: L::V, s: &Scale<L>) -> L::V {
    if !l.any(l.lt(s.n, l.splat(-126.0))) {
        if L::ONE_OP_LDEXP {
            return l.ldexp(m, s.n);
        }
        return l.mul(m, l.pow2_shifted(s.k));
    }
    let zero = l.lt(s.n, l.splat(ZERO_N));
    if l.any(zero) {
        let m0 = l.select(zero, l.mul(m, l.splat(0.0)), m);
        return l.ldexp(m0, l.select(zero, l.splat(0.0), s.n));
    }
    l.ldexp(m, s.n)
}

/// Below this `n`, `|m| 2^n < 2^-150` for every `|m| < 16`: rounds to `±0`.
const ZERO_N: f32 = -155.0;

/// Exact GELU `x * Phi(x)`; NaN at `-inf`.
#[inline(always)]
pub(crate) fn gelu<L: Lanes>(l: L, x: L::V) -> L::V {
    let (_, h, p, s) = h_and_gauss(l, x);
    // x Q(a) = -H (1 + p) 2^n, rounded once before the scaling (subnormal
    // results are rounded once).
    let m = scaled(l, l.fma(h, p, h), &s);
    // max(-0, x) - m: -m below 0 (with its sign at m = 0), x - m from +0 up;
    // max returns its second operand for equal operands and NaN.
    let r = l.sub(l.max(l.splat(-0.0), x), m);
    super::nan_at_neg_inf(l, x, r)
}

/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Exact-GELU derivative `Phi(x) + x phi(x)`; NaN at `±inf`.
///
/// With `E = e^(-a^2/2)`, `Q = H E / a` and `x phi(x) = x E / sqrt(2 pi)`:
/// `Q - a E / sqrt(2 pi)` for `x < 0`, `1 - (Q - a E / sqrt(2 pi))` above.
#[inline(always)]
pub(crate) fn gelu_grad<L: Lanes>(l: L, x: L::V) -> L::V {
    let (a, h, p, s) = h_and_gauss(l, x);
    // H / a -> 1/2 at 0 (where H = a * y exactly as computed: 0 / 0).
    let f = l.select(l.eq(a, l.splat(0.0)), l.splat(0.5), l.div(h, a));
    let g = l.fma(a, l.splat(-INV_SQRT_2PI), f);
    let d = scaled(l, l.fma(g, p, g), &s);
    let r = l.select(l.lt(x, l.splat(0.0)), d, l.sub(l.splat(1.0), d));
    super::nan_at_inf(l, x, r)
}
