//! The error function and the exact GELU (`x Phi(x)`) with its derivative,
//! on fdlibm's `erff` rationals (see the parent module's docs).

use super::{exp_parts, nan_at_inf, nan_at_neg_inf, poly, poly_sel};
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

/// `c` right-aligned in `N` coefficients: Horner's rule over the leading
/// zeros keeps `0` until the first coefficient, which it then takes exactly,
/// so the padded polynomial gives the bits of `c`'s.
const fn right_aligned<const N: usize>(c: &[f32]) -> [f32; N] {
    let mut out = [0.0; N];
    let mut j = 0;
    while j < c.len() {
        out[N - c.len() + j] = c[j];
        j += 1;
    }
    out
}

/// Coefficient `j` of the four rationals of `erf`/`erfc` side by side, in
/// the lane-index order of [`normal_cdf`] (small, mid, tail below and above
/// [`ERFC_SPLIT`]), each [`right_aligned`] in `N`, so every lane gets the
/// bits of its own rational.
const fn side_by_side<const N: usize>(sets: [&[f32]; 4]) -> [[f32; 4]; N] {
    let mut out = [[0.0; 4]; N];
    let mut k = 0;
    while k < 4 {
        let c: [f32; N] = right_aligned(sets[k]);
        let mut j = 0;
        while j < N {
            out[j][k] = c[j];
            j += 1;
        }
        k += 1;
    }
    out
}
/// `PP` and `QQ` right-aligned to `PA`'s and `QA`'s lengths: the small and
/// mid rationals of [`normal_cdf`] blended per lane where no lane is in the
/// tail.
const SMALL_NUM: [f32; 7] = right_aligned(&PP);
const SMALL_DEN: [f32; 7] = right_aligned(&QQ);
/// Numerators `PP`, `PA`, `RA`, `RB` (see [`side_by_side`]).
const ERFC_NUM: [[f32; 4]; 8] = side_by_side([&PP, &PA, &RA, &RB]);
/// Denominators `QQ`, `QA`, `SA`, `SB` (see [`side_by_side`]).
const ERFC_DEN: [[f32; 4]; 9] = side_by_side([&QQ, &QA, &SA, &SB]);

/// Horner evaluation where each lane takes its coefficients from the column
/// its index names ([`Lanes::pick`]).
#[inline(always)]
fn poly_pick<L: Lanes, const N: usize>(l: L, x: L::V, i: L::V, c: &[[f32; 4]; N]) -> L::V {
    let mut y = l.pick(i, &c[0]);
    for cj in &c[1..] {
        y = l.fma(y, x, l.pick(i, cj));
    }
    y
}
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

/// `1/sqrt(2) - f32(1/sqrt(2))`.
const INV_SQRT2_LO: f32 = 1.210_161_7e-8;

/// The standard normal CDF and the by-products the GELU kernels reuse.
struct Cdf<L: Lanes> {
    /// `Phi(x) = q * 2^n`: `n = 0` except in the negative tail, where `q` is
    /// kept unscaled (see [`exp_parts`]).
    q: L::V,
    n: L::V,
    /// In the negative tail (`neg_tail`), `Phi(x) = y 2^n 0.5 / t` with
    /// `x 0.5 / t = -1/sqrt 2` exactly.
    y: L::V,
    neg_tail: L::M,
    /// `x^2 / 2 = t2 + t2l` exactly.
    t2: L::V,
    t2l: L::V,
    /// `x` clamped to `±15`, beyond which `x phi(x)` (and `x Phi(x)` for
    /// negative `x`) is 0 in `f32`.
    xc: L::V,
}

/// The standard normal CDF [`Cdf`].
///
/// `Phi(x) = erfc(-x / sqrt 2) / 2`. With `t = |x| / sqrt 2` carried as
/// `th + tl` (the rounding of `t` would cost up to 2 ulp where `erfc` is
/// steep): for `x >= 0`, `Phi = 1/2 + erf(t)/2`; for `x < 0`, `Phi = erfc(t)/2`
/// with fdlibm's cancellation-free forms of `erfc` on each interval.
#[inline(always)]
fn normal_cdf<L: Lanes>(l: L, x: L::V) -> Cdf<L> {
    const INV_SQRT2: f32 = core::f32::consts::FRAC_1_SQRT_2;
    // Clamp so that x^2 stays finite; NaN stays NaN (first operand wins).
    let a = l.min(l.splat(15.0), l.abs(x));
    let th = l.mul(a, l.splat(INV_SQRT2));
    let tl = l.fma(
        a,
        l.splat(INV_SQRT2_LO),
        l.fma(a, l.splat(INV_SQRT2), l.neg(th)),
    );
    let aa = l.mul(a, a);
    let half = l.splat(0.5);
    let one = l.splat(1.0);
    let (t2, t2l) = (l.mul(aa, half), l.mul(l.fma(a, a, l.neg(aa)), half));
    let below = l.lt(x, l.splat(0.0));

    // Each lane needs one of four rationals (t below 0.84375, below 1.25, and
    // the tail's two). A register evaluates one rational with one division,
    // each lane's coefficients blended (small and mid only) or picked from a
    // table (with tail lanes), where it used to evaluate every rational one
    // of its lanes needed, with a division each. Same bits: a lane's own
    // coefficients in the same order (Zen 4, 1e6 N(0, 1) inputs: AVX-512
    // 1656 -> 1577-1606 us, AVX2 2923 -> 2758-2803 us; uniform in [-4, 4]
    // 1994 -> 1710 and 4022 -> 3142; inputs all below 1.19 in magnitude
    // pay 5-8 % for the two masks tested first).
    let z = l.mul(th, th);
    let mid = l.le(l.splat(0.843_75), th);
    let any_mid = l.any(mid);
    let mut tail = l.lt(half, half);
    let mut any_tail = false;
    let y = if !any_mid {
        l.div(poly(l, z, &PP), poly(l, z, &QQ))
    } else {
        // s = t - 1 (th - 1 is exact here).
        let u = l.select(mid, l.add(l.sub(th, one), tl), z);
        tail = l.le(l.splat(1.25), th);
        any_tail = l.any(tail);
        if !any_tail {
            l.div(
                poly_sel(l, u, mid, &PA, &SMALL_NUM),
                poly_sel(l, u, mid, &QA, &SMALL_DEN),
            )
        } else {
            let zero = l.splat(0.0);
            let u = l.select(tail, l.div(one, t2), u);
            let i = l.add(l.select(mid, one, zero), l.select(tail, one, zero));
            let i = l.add(i, l.select(l.ge(th, l.splat(ERFC_SPLIT)), one, zero));
            let i = l.index(i);
            l.div(poly_pick(l, u, i, &ERFC_NUM), poly_pick(l, u, i, &ERFC_DEN))
        }
    };

    // |t| < 0.84375: erf(t) = t + t y.
    let ty = l.add(tl, l.mul(th, y));
    let erf_t = l.add(th, ty);
    // erfc(t) = 1 - erf(t) below t = 1/4, else 0.5 - ((t - 0.5) + t y).
    let erfc_t = l.select(
        l.lt(th, l.splat(0.25)),
        l.sub(one, erf_t),
        l.sub(half, l.add(l.sub(th, half), ty)),
    );
    let mut q = l.select(below, l.mul(half, erfc_t), l.fma(half, erf_t, half));
    let mut n = l.splat(0.0);
    let mut yt = l.splat(0.0);
    let mut neg_tail = l.lt(half, half);

    if any_mid {
        // erfc(t) = (1 - erx) - P(s)/Q(s), s = t - 1.
        let mut hc = l.mul(half, l.sub(l.splat(1.0 - ERX), y));
        let mut p = l.select(below, hc, l.sub(one, hc));
        if any_tail {
            // erfc(t) / 2 = y 2^e * (0.5 / t)
            let (y, e) = erfc_tail_from(l, y, t2, t2l);
            let f = l.div(half, l.add(th, tl));
            hc = l.mul(l.ldexp(y, e), f);
            let pt = l.select(below, l.mul(y, f), l.sub(one, hc));
            p = l.select(tail, pt, p);
            neg_tail = l.mand(tail, below);
            n = l.select(neg_tail, e, n);
            yt = y;
        }
        q = l.select(mid, p, q);
    }
    Cdf {
        q,
        n,
        y: yt,
        neg_tail,
        t2,
        t2l,
        xc: l.or(a, l.sign_bit(x)),
    }
}

/// Exact GELU `x * Phi(x)`; NaN at `-inf`.
#[inline(always)]
pub(crate) fn gelu<L: Lanes>(l: L, x: L::V) -> L::V {
    let c = normal_cdf(l, x);
    const INV_SQRT2: f32 = core::f32::consts::FRAC_1_SQRT_2;
    // Negative tail: x Phi(x) = -y 2^n / sqrt 2 (one rounding before scaling).
    let m_tail = l.fma(c.y, l.splat(-INV_SQRT2), l.mul(c.y, l.splat(-INV_SQRT2_LO)));
    let m = l.select(c.neg_tail, m_tail, l.mul(x, c.q));
    nan_at_neg_inf(l, x, l.ldexp(m, c.n))
}

/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Exact-GELU derivative `Phi(x) + x phi(x)`; NaN at `±inf`.
#[inline(always)]
pub(crate) fn gelu_grad<L: Lanes>(l: L, x: L::V) -> L::V {
    let c = normal_cdf(l, x);
    let (y, e) = exp_parts(l, l.neg(c.t2), Some(l.neg(c.t2l)));
    let xpdf = l.ldexp(l.mul(l.mul(c.xc, l.splat(INV_SQRT_2PI)), y), e);
    nan_at_inf(l, x, l.add(l.ldexp(c.q, c.n), xpdf))
}
