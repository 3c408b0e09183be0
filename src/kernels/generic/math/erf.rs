//! The error function on fdlibm's `erff` rationals (see the parent module's
//! docs).

use super::{exp_parts, poly, poly_sel};
use crate::kernels::lanes::Lanes;

/// fdlibm `erff` coefficients (see the module docs).
const ERX: f32 = 0.8450629;
/// `erf(x) = x + x * PP(z) / QQ(z)`, `z = x^2`, for `|x| < 0.84375`.
const PP: [f32; 5] = [
    -2.376_301_7e-5,
    -5.770_270_2e-3,
    -2.848_175e-2,
    -0.3250421,
    0.12837917,
];
const QQ: [f32; 6] = [
    -3.960_228_2e-6,
    1.324_947_4e-4,
    5.081_306e-3,
    6.502_225e-2,
    0.3979172,
    1.0,
];
/// `erf(x) = ERX + PA(s) / QA(s)`, `s = |x| - 1`, for `0.84375 <= |x| < 1.25`.
const PA: [f32; 7] = [
    -2.166_375_5e-3,
    3.547_830_5e-2,
    -0.1108947,
    0.31834662,
    -0.37220788,
    0.4148561,
    -2.362_118_6e-3,
];
const QA: [f32; 7] = [
    1.198_450_1e-2,
    1.363_708_4e-2,
    0.12617122,
    7.182_865_6e-2,
    0.54039794,
    0.10642088,
    1.0,
];
/// `erfc(x) = e^(-x^2 - 0.5625 + R(s)/S(s)) / x`, `s = 1/x^2`: `RA`/`SA` for
/// `1.25 <= x < 1/0.35`, `RB`/`SB` above (zero-padded to the same degree).
const RA: [f32; 8] = [
    -9.814329,
    -81.28744,
    -184.60509,
    -162.39667,
    -62.37533,
    -10.558626,
    -0.69385856,
    -9.864_944e-3,
];
const RB: [f32; 8] = [
    0.0,
    -483.5192,
    -1025.0951,
    -637.56647,
    -160.63638,
    -17.757956,
    -0.79928327,
    -9.864_943e-3,
];
const SA: [f32; 9] = [
    -6.042_441_4e-2,
    6.570_249_6,
    108.63501,
    429.00815,
    645.38727,
    434.5659,
    137.65776,
    19.651272,
    1.0,
];
const SB: [f32; 9] = [
    0.0, -22.440952, 474.52853, 2553.0503, 3199.8582, 1536.7296, 325.7925, 30.33806, 1.0,
];
const ERFC_SPLIT: f32 = 1.0 / 0.35;

/// Beyond this the tail is 0 in `f32` (`erfc(10.5)` is about `1e-49`).
const ERFC_T_MAX: f32 = 10.5;

/// `erf(t)` for `|t| < 0.84375` (sign kept).
#[inline(always)]
fn erf_small<L: Lanes>(l: L, t: L::V) -> L::V {
    let z = l.mul(t, t);
    let y = l.div(poly(l, z, &PP), poly(l, z, &QQ));
    l.fma(t, y, t)
}

/// `erfc(t)` for `0.84375 <= t < 1.25`.
#[inline(always)]
fn erfc_mid<L: Lanes>(l: L, t: L::V) -> L::V {
    let s = l.sub(t, l.splat(1.0));
    let pq = l.div(poly(l, s, &PA), poly(l, s, &QA));
    l.sub(l.splat(1.0 - ERX), pq)
}

/// `t * erfc(t)` for `t >= 1.25` as unscaled parts `(y, n)` (see
/// [`exp_parts`]), given `t^2 = t2 + t2l` exactly.
#[inline(always)]
fn erfc_tail_times_t<L: Lanes>(l: L, t: L::V, t2: L::V, t2l: L::V) -> (L::V, L::V) {
    let s = l.div(l.splat(1.0), t2);
    let m = l.lt(t, l.splat(ERFC_SPLIT));
    let rs = l.div(poly_sel(l, s, m, &RA, &RB), poly_sel(l, s, m, &SA, &SB));
    erfc_tail_from(l, rs, t2, t2l)
}

/// [`erfc_tail_times_t`] from its rational `rs = R(s)/S(s)`.
#[inline(always)]
fn erfc_tail_from<L: Lanes>(l: L, rs: L::V, t2: L::V, t2l: L::V) -> (L::V, L::V) {
    // -t^2 - 0.5625 + R/S as hi + lo: |c| < 1 <= t2, so the fast two-sum holds.
    let c = l.sub(rs, l.splat(0.5625));
    let hi = l.sub(c, t2);
    let lo = l.sub(l.add(l.sub(l.neg(t2), hi), c), t2l);
    exp_parts(l, hi, Some(lo))
}

/// Error function.
#[inline(always)]
pub(crate) fn erf<L: Lanes>(l: L, x: L::V) -> L::V {
    let a = l.min(l.splat(ERFC_T_MAX), l.abs(x)); // NaN stays NaN
    let mut r = erf_small(l, x);
    let mid = l.le(l.splat(0.843_75), a);
    if l.any(mid) {
        let tail = l.le(l.splat(1.25), a);
        let mut c = erfc_mid(l, a);
        if l.any(tail) {
            let t2 = l.mul(a, a);
            let t2l = l.fma(a, a, l.neg(t2));
            let (y, n) = erfc_tail_times_t(l, a, t2, t2l);
            c = l.select(tail, l.div(l.ldexp(y, n), a), c);
        }
        let e = l.or(l.sub(l.splat(1.0), c), l.sign_bit(x));
        r = l.select(mid, e, r);
    }
    r
}
