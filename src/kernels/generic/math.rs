//! Vector transcendental functions over [`Lanes`], one register at a time.
//!
//! Sources: the polynomials for `log` and `sin`/`cos` are Cephes'
//! single-precision ones (`logf.c`, `sinf.c`); those of `exp` (by octaves
//! one degree below Cephes' `expf`, by eighths of an octave three degrees
//! shorter again) and small-argument `tanh` are our own minimax fits
//! (`tests/reference/fit_polys.py`), as are the exact GELU's per-interval
//! polynomials (`tests/reference/fit_gelu.py`, see `math/gelu.rs`); the
//! `erf`/`erfc` rationals are fdlibm's `s_erff.c` (as in the `libm` crate).
//! Range reduction and the special-value handling are ours:
//! - `exp` where `|x| <= 87` ([`exp_fast`]) rounds `8x / ln 2` to
//!   `N = 8n + j` with the shifter [`SHIFT_E`] (whose low bits give the table
//!   index `j` and, shifted, `2^n`), reduces with a two-part `ln 2 / 8` and
//!   returns `s + s p` in one rounding, `s = 2^(j/8) 2^n` from an eight-entry
//!   table. Beyond, the octave form ([`exp_core`]): `n = round(x / ln 2)`
//!   with the shifter [`SHIFT_127`], the argument clamped and the lanes
//!   scaled with [`Lanes::ldexp`], so subnormal results are correctly rounded
//!   and overflow gives `inf`. Kernels check blocks of registers and run
//!   `exp_fast` where a whole block is inside (see `generic::map_guarded`);
//!   the two forms agree bit for bit there. [`exp_dd`] takes the argument as
//!   an unevaluated sum `hi + lo`; the GELU family and softmax use it because
//!   their exponent (`-x^2/2`, `-2u`, `x - max`) carries a rounding error that
//!   would otherwise be multiplied into the result.
//! - `sin`/`cos` reduce by `pi/2` with a three-part constant and FMA (exact
//!   first step); lanes with `|x| > SINCOS_MAX` (and `inf`/NaN) are recomputed
//!   with `libm` so the large-argument results equal the scalar path's.
//!
//! The error bounds measured for each function (against `f64`) are in the docs
//! of the [`Kernels`](crate::kernels::Kernels) fields and are asserted by
//! `kernels::kernel_tests::accuracy`.

use crate::kernels::lanes::{Lanes, SHIFT_127, SHIFT_E};

/// Horner evaluation `((c0 x + c1) x + c2) ...` with FMA.
#[inline(always)]
fn poly<L: Lanes>(l: L, x: L::V, c: &[f32]) -> L::V {
    let mut y = l.splat(c[0]);
    for &ci in &c[1..] {
        y = l.fma(y, x, l.splat(ci));
    }
    y
}

/// Horner evaluation where each lane picks its coefficient set: `a` where
/// `m` is set, else `b` (the two arrays have the same length).
#[inline(always)]
fn poly_sel<L: Lanes>(l: L, x: L::V, m: L::M, a: &[f32], b: &[f32]) -> L::V {
    let mut y = l.select(m, l.splat(a[0]), l.splat(b[0]));
    for (&ai, &bi) in a[1..].iter().zip(&b[1..]) {
        y = l.fma(y, x, l.select(m, l.splat(ai), l.splat(bi)));
    }
    y
}

// ------------------------------------------------------------------ exp

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// `ln 2` in two parts; the high part has 9 significant bits, so `n * LN2_HI`
/// is exact for `|n| <= 150`.
const LN2_HI: f32 = 0.6933594;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Inputs are clamped to this range: `e^89` overflows, and `e^-174` times any
/// factor a caller applies (below `2^100`) is far below the smallest subnormal.
const EXP_MAX: f32 = 89.0;
const EXP_MIN: f32 = -174.0;
/// Below this, `e^x < 2^-150.05`: rounds to `+0` (half the smallest
/// subnormal is `2^-150`, at `x = -103.97`).
const EXP_ZERO: f32 = -104.0;
/// `(e^r - 1 - r) / r^2` on `|r| <= ln2 / 2`: a degree-4 minimax fit (so
/// `e^r` to degree 6), relative error of `e^r` 3.8e-9 with these `f32`
/// coefficients (`tests/reference/fit_polys.py`). One degree below Cephes'
/// `expf`, whose extra term is below the rounding error of the result.
const EXP_Q: [f32; 5] = [
    1.381_461_2e-3,
    8.368_71e-3,
    4.166_839e-2,
    0.166_665_21,
    0.499_999_94,
];
/// Inside `|x| <= EXP_FAST_MAX`, `2^n` (`n = round(x / ln 2)`, `|n| <= 126`)
/// is a normal float and nothing overflows, so [`exp_fast`] needs no clamp
/// and no split scaling.
pub(crate) const EXP_FAST_MAX: f32 = 87.0;

/// `e^(hi + lo) = 2^n (1 + p)` with integral `n` and `p` in about
/// `[-0.3, 0.42]`, for `hi` within the clamp range (NaN gives NaN `p`).
/// Returns `(p, n, k)` with `k = SHIFT_127 + n` (see [`Lanes::pow2_shifted`]).
#[inline(always)]
fn exp_core<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> (L::V, L::V, L::V) {
    let k = l.fma(hi, l.splat(LOG2E), l.splat(SHIFT_127));
    let n = l.sub(k, l.splat(SHIFT_127));
    let r = l.fma(n, l.splat(-LN2_HI), hi);
    let r = l.fma(n, l.splat(-LN2_LO), r);
    let r = match lo {
        Some(lo) => l.add(r, lo),
        None => r,
    };
    let r2 = l.mul(r, r);
    // Estrin's scheme, `(c0 r^2 + (c1 r + c2)) r^2 + (c3 r + c4)`, reusing the
    // `r^2` the result needs anyway: the same four FMAs as Horner's, three
    // of them in a chain instead of four (Zen 4, 1e6 elements, same-run
    // pairs: AVX2 exp 241 -> 230 us, sigmoid 306 -> 295 us; AVX-512
    // unchanged).
    let [c0, c1, c2, c3, c4] = EXP_Q;
    let top = l.fma(l.splat(c0), r2, l.fma(l.splat(c1), r, l.splat(c2)));
    let q = l.fma(top, r2, l.fma(l.splat(c3), r, l.splat(c4)));
    (l.fma(q, r2, r), n, k)
}

/// `8 / ln 2` and `ln 2 / 8` in two parts (the high part has 9 significant
/// bits, so `N * LN2_8_HI` is exact for `|N| <= 2^15`): [`exp_fast`]
/// reduces by eighths of an octave.
const LOG2E_8: f32 = 8.0 * LOG2E;
const LN2_8_HI: f32 = LN2_HI / 8.0;
const LN2_8_LO: f32 = LN2_LO / 8.0;
/// `T_j = 2^(j/8)` rounded to `f32`, stored as bit patterns less
/// `127 << 23 | j << 20` (see [`Lanes::pow2_eighth`]).
const EXP_T8: [f32; 8] = {
    const fn adj(bits: u32, j: u32) -> f32 {
        f32::from_bits(bits.wrapping_sub(127 << 23 | j << 20))
    }
    [
        adj(0x3f80_0000, 0),
        adj(0x3f8b_95c2, 1),
        adj(0x3f98_37f0, 2),
        adj(0x3fa5_fed7, 3),
        adj(0x3fb5_04f3, 4),
        adj(0x3fc5_672a, 5),
        adj(0x3fd7_44fd, 6),
        adj(0x3fea_c0c7, 7),
    ]
};
/// `ln(2^(j/8) / T_j)`: added to the reduced argument, it makes up for the
/// rounding of `T_j` (`tests/reference/fit_polys.py` prints `T_j` and these).
const EXP_D8: [f32; 8] = [
    0.0,
    -1.199_215_7e-8,
    3.193_418e-8,
    -3.099_072_3e-8,
    1.711_427_1e-8,
    5.233_334e-9,
    -1.471_960_6e-8,
    -6.128_259_7e-9,
];
/// `(e^r - 1 - r) / r^2` on `|r| <= ln2 / 16`: a degree-1 minimax fit (so
/// `e^r` to degree 3), relative error of `e^r` 2.6e-8 with these `f32`
/// coefficients (`tests/reference/fit_polys.py`).
const EXP_Q8: [f32; 2] = [0.166_668_98, 0.500_064_5];

/// `e^(hi + lo)` for `|hi| <= EXP_FAST_MAX` (NaN gives NaN), by eighths of
/// an octave: `hi = (8n + j) ln2/8 + r` with `|r| <= ln2 / 16`, then one
/// rounding of `s + s p` with `s = T_j 2^n` exact and `p = e^(r + d_j + lo)
/// - 1`. Equal bit for bit to [`exp_dd`] (and [`exp`]) there.
///
/// Against the octave reduction of [`exp_core`] (`|r| <= ln2 / 2`), the
/// polynomial is three degrees shorter: seven multiply-adds a register
/// instead of ten, for two permutes (the table), an add and an integer add,
/// and a chain of dependent steps 8 cycles shorter. Zen 4, builds
/// alternated, best of 0.4 s: AVX2 exp of 1e6 223 -> 201 us, sigmoid 295 ->
/// 268 us, softmax of [1024,1024] 378 -> 336 us; AVX-512 183 -> 154, 236 ->
/// 215 and 281 -> 288 (the one loss). A degree-2 polynomial (error 1.9e-10)
/// measured as slow as the octave form on AVX2 (exp 222 us), a four-entry
/// table with it too (227 us). The cost is accuracy where a result
/// amplifies `exp`'s error: `exp` itself is within 0.967 ulp (was 1.019),
/// but sigmoid's worst case is 2.72 ulp (was 2.48) and softplus's 2.02
/// (was 1.81), over every `f32` of their ranges.
#[inline(always)]
pub(crate) fn exp_fast<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> L::V {
    let k = l.fma(hi, l.splat(LOG2E_8), l.splat(SHIFT_E));
    let nq = l.sub(k, l.splat(SHIFT_E));
    let i = l.eighth_index(k);
    // The small terms gathered apart from the exact `hi - N ln2_hi`.
    let small = l.fma(nq, l.splat(-LN2_8_LO), l.pick(i, &EXP_D8));
    let small = match lo {
        Some(lo) => l.add(small, lo),
        None => small,
    };
    let r = l.add(l.fma(nq, l.splat(-LN2_8_HI), hi), small);
    let [c0, c1] = EXP_Q8;
    let q = l.fma(l.splat(c0), r, l.splat(c1));
    let p = l.fma(q, l.mul(r, r), r);
    let s = l.pow2_eighth(k, l.pick(i, &EXP_T8));
    l.fma(p, s, s)
}

/// `e^(hi + lo)` for any `hi`: [`exp_fast`] where `|hi| <= EXP_FAST_MAX`;
/// elsewhere clamped and scaled with [`Lanes::ldexp`] (overflow to `inf`,
/// subnormal results correctly rounded).
#[inline(always)]
fn exp_any<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> L::V {
    // Lanes whose result rounds to +0 (`-inf` among them: a masked score, a
    // softmax row's padding) are set to 0 before the arithmetic and after:
    // computed, their clamped argument's products and the final scaling
    // underflow, and each such register took a microcode assist (Intel,
    // AVX-512: `exp` of 1e5 x `-inf` 205 us, of 1e5 x 0 6.7 us).
    let zero = l.lt(hi, l.splat(EXP_ZERO));
    if l.any(zero) {
        let e = exp_finite(l, l.select(zero, l.splat(0.0), hi), lo);
        return l.select(zero, l.splat(0.0), e);
    }
    exp_finite(l, hi, lo)
}

/// [`exp_any`] without setting aside the lanes that round to 0.
#[inline(always)]
fn exp_finite<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> L::V {
    let wide = exp_outside(l, hi);
    if !l.any(wide) {
        return exp_fast(l, hi, lo);
    }
    // The wide lanes (and NaN) take the octave reduction with a clamp and a
    // split scaling; the others the fast form on their own argument (the
    // wide lanes' argument set to 0 there, so nothing overflows).
    let fast = exp_fast(l, l.select(wide, l.splat(0.0), hi), lo);
    // min/max return the second operand on NaN, so with `hi` second a NaN
    // passes the clamp and propagates through every step below.
    let xc = l.min(l.splat(EXP_MAX), l.max(l.splat(EXP_MIN), hi));
    let (p, n, _) = exp_core(l, xc, lo);
    l.select(wide, l.ldexp(l.add(p, l.splat(1.0)), n), fast)
}

/// The lanes where [`exp_fast`] does not apply: `|x| > EXP_FAST_MAX` or NaN.
#[inline(always)]
pub(crate) fn exp_outside<L: Lanes>(l: L, x: L::V) -> L::M {
    l.mnot(l.le(l.abs(x), l.splat(EXP_FAST_MAX)))
}

/// `e^x`.
#[inline(always)]
pub(crate) fn exp<L: Lanes>(l: L, x: L::V) -> L::V {
    exp_any(l, x, None)
}

/// `e^(hi + lo)` for `|lo|` at most a few ulp of `hi`.
#[inline(always)]
pub(crate) fn exp_dd<L: Lanes>(l: L, hi: L::V, lo: L::V) -> L::V {
    exp_any(l, hi, Some(lo))
}

/// `e^(hi + lo)` as `y * 2^n` with `y` in `[0.7, 1.42]` and integral `n` in
/// `-251..=128`, unscaled: a caller that multiplies the result by a large
/// factor does so on `y` and scales once at the end, so a subnormal result is
/// rounded once instead of being rounded and then amplified. NaN `hi` gives
/// NaN `y`. (`lo = None` saves an add where there is no low part.)
#[inline(always)]
pub(crate) fn exp_parts<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> (L::V, L::V) {
    let xc = l.min(l.splat(EXP_MAX), l.max(l.splat(EXP_MIN), hi));
    let (p, n, _) = exp_core(l, xc, lo);
    (l.add(p, l.splat(1.0)), n)
}

// ------------------------------------------------------------------ log

const SQRT_HALF: f32 = core::f32::consts::FRAC_1_SQRT_2;
/// Cephes `logf` polynomial on `[sqrt(1/2) - 1, sqrt(2) - 1]`.
const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -0.1151461,
    0.11676999,
    -0.12420141,
    0.14249323,
    -0.16668057,
    0.20000714,
    -0.24999994,
    0.3333333,
];

/// `ln(1 + m)` for `m` in `[sqrt(1/2) - 1, sqrt(2) - 1]`, without the
/// exponent terms (exact for `m = ±0`).
#[inline(always)]
fn log1p_core<L: Lanes>(l: L, m: L::V) -> L::V {
    let z = l.mul(m, m);
    let y = l.mul(l.mul(poly(l, m, &LOG_P), m), z);
    l.add(m, l.fma(z, l.splat(-0.5), y))
}

/// Natural logarithm: `-inf` at `±0`, NaN below 0 and for NaN, `inf` at `inf`.
///
/// The subnormal scaling and the special values are merged in only when a
/// lane needs them (one test each per register): the same bits, and on
/// positive normal inputs four selects and three compares fewer (Zen 4, 1e6
/// elements, same-run pairs: AVX2 897 -> 740 us, AVX-512 447 -> 376 us).
#[inline(always)]
pub(crate) fn log<L: Lanes>(l: L, x: L::V) -> L::V {
    // Scale subnormals (and, harmlessly, zeros and negatives) into the
    // normal range first.
    let tiny = l.lt(x, l.splat(f32::MIN_POSITIVE));
    let (m, e) = if l.any(tiny) {
        let (m, e) = l.frexp(l.select(tiny, l.mul(x, l.splat(8_388_608.0)), x));
        (m, l.sub(e, l.select(tiny, l.splat(23.0), l.splat(0.0))))
    } else {
        l.frexp(x)
    };
    // m in [0.5, 1): move it to [sqrt(1/2), sqrt(2)) and subtract 1.
    let small = l.lt(m, l.splat(SQRT_HALF));
    let e = l.sub(e, l.select(small, l.splat(1.0), l.splat(0.0)));
    let m = l.sub(l.select(small, l.add(m, m), m), l.splat(1.0));
    // Cephes' order: the small terms first, then m, then e * ln2_hi.
    let z = l.mul(m, m);
    let y = l.mul(l.mul(poly(l, m, &LOG_P), m), z);
    let y = l.fma(e, l.splat(LN2_LO), y);
    let y = l.fma(z, l.splat(-0.5), y);
    let r = l.fma(e, l.splat(LN2_HI), l.add(m, y));
    // Zero, negative, NaN and infinite lanes fail `0 < x < inf`.
    let finite_pos = l.mand(l.gt(x, l.splat(0.0)), l.lt(x, l.splat(f32::INFINITY)));
    if !l.any(l.mnot(finite_pos)) {
        return r;
    }
    let r = l.select(l.eq(x, l.splat(0.0)), l.splat(f32::NEG_INFINITY), r);
    let r = l.select(l.mnot(l.ge(x, l.splat(0.0))), l.splat(f32::NAN), r);
    l.select(l.eq(x, l.splat(f32::INFINITY)), x, r)
}

/// `ln(1 + x)`: the log polynomial on `x` itself where `1 + x` is in
/// `[sqrt(1/2), sqrt(2))`, else `log(u) + c / u` with `u = 1 + x` and `c` the
/// rounding error of `u`.
#[inline(always)]
pub(crate) fn log1p<L: Lanes>(l: L, x: L::V) -> L::V {
    let u = l.add(l.splat(1.0), x);
    let c = l.sub(x, l.sub(u, l.splat(1.0)));
    let corr = l.select(l.eq(u, l.splat(0.0)), l.splat(0.0), l.div(c, u));
    let r = l.add(log(l, u), corr);
    let central = l.mnot(l.mor(
        l.lt(x, l.splat(SQRT_HALF - 1.0)),
        l.ge(x, l.splat(core::f32::consts::SQRT_2 - 1.0)),
    ));
    let r = l.select(central, log1p_core(l, x), r);
    l.select(l.eq(x, l.splat(f32::INFINITY)), x, r)
}

// -------------------------------------------------------------- sin/cos

/// Above this `|x|` the lanes are recomputed with `libm`. Below it the
/// three-part reduction keeps the reduced argument within about 1 ulp (checked
/// by the exhaustive sweep in `kernels::kernel_tests::accuracy`).
pub(crate) const SINCOS_MAX: f32 = 65536.0;
const TWO_OVER_PI: f32 = core::f32::consts::FRAC_2_PI;
/// `pi/2` in three parts, each the `f32` nearest to what is left.
const PIO2_1: f32 = f32::from_bits(0x3fc9_0fdb);
const PIO2_2: f32 = f32::from_bits(0xb33b_bd2e);
const PIO2_3: f32 = f32::from_bits(0xa6f7_2ced);
/// Cephes `sinf`/`cosf` polynomials on `|r| <= pi/4`.
const SIN_P: [f32; 3] = [-1.951_529_6e-4, 8.332_161e-3, -0.16666655];
const COS_P: [f32; 3] = [2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2];

/// `|x| = j pi/2 + r`: returns `(r, bit0, bit1)` of the quadrant `j mod 4`
/// as 0.0/1.0 lanes.
#[inline(always)]
fn reduce_pio2<L: Lanes>(l: L, a: L::V) -> (L::V, L::V, L::V) {
    let j = l.round(l.mul(a, l.splat(TWO_OVER_PI)));
    // a - j*PIO2_1 is exact (both are multiples of 2^-23 and the difference
    // is below 2); the next two terms carry the rest of pi/2.
    let r = l.fma(j, l.splat(-PIO2_1), a);
    let r = l.fma(j, l.splat(-PIO2_2), r);
    let r = l.fma(j, l.splat(-PIO2_3), r);
    let h = l.floor(l.mul(j, l.splat(0.5)));
    let bit0 = l.sub(j, l.add(h, h));
    let h2 = l.floor(l.mul(h, l.splat(0.5)));
    let bit1 = l.sub(h, l.add(h2, h2));
    (r, bit0, bit1)
}

/// `(sin r, cos r)` for `|r| <= pi/4` (a little beyond is fine).
#[inline(always)]
fn sincos_poly<L: Lanes>(l: L, r: L::V) -> (L::V, L::V) {
    let z = l.mul(r, r);
    let s = l.fma(l.mul(poly(l, z, &SIN_P), z), r, r);
    let c = l.fma(
        l.mul(poly(l, z, &COS_P), z),
        z,
        l.fma(z, l.splat(-0.5), l.splat(1.0)),
    );
    (s, c)
}

/// Recomputes with `f` the lanes of `v` where `m` is set (input `x`).
#[inline(always)]
fn fixup<L: Lanes>(l: L, m: L::M, x: L::V, v: L::V, f: fn(f32) -> f32) -> L::V {
    if !l.any(m) {
        return v;
    }
    let xs = l.to_array(x);
    let mut vs = l.to_array(v);
    let ms = l.to_array(l.select(m, l.splat(1.0), l.splat(0.0)));
    for i in 0..L::LANES {
        if ms[i] != 0.0 {
            vs[i] = f(xs[i]);
        }
    }
    l.load(&vs[..L::LANES])
}

/// Sine.
#[inline(always)]
pub(crate) fn sin<L: Lanes>(l: L, x: L::V) -> L::V {
    let a = l.abs(x);
    let (r, bit0, bit1) = reduce_pio2(l, a);
    let (s, c) = sincos_poly(l, r);
    let one = l.splat(1.0);
    let v = l.select(l.eq(bit0, one), c, s);
    let v = l.select(l.eq(bit1, one), l.neg(v), v);
    let v = l.xor(v, l.sign_bit(x));
    let big = l.mnot(l.le(a, l.splat(SINCOS_MAX)));
    fixup(l, big, x, v, libm::sinf)
}

/// Cosine.
#[inline(always)]
pub(crate) fn cos<L: Lanes>(l: L, x: L::V) -> L::V {
    let a = l.abs(x);
    let (r, bit0, bit1) = reduce_pio2(l, a);
    let (s, c) = sincos_poly(l, r);
    let one = l.splat(1.0);
    let v = l.select(l.eq(bit0, one), s, c);
    // cos is negative in quadrants 1 and 2: bit0 xor bit1.
    let v = l.select(l.eq(l.add(bit0, bit1), one), l.neg(v), v);
    let big = l.mnot(l.le(a, l.splat(SINCOS_MAX)));
    fixup(l, big, x, v, libm::cosf)
}

// ------------------------------------------------------ tanh and sigmoids

/// `(tanh(x) - x) / x^3` as a polynomial in `x^2` on `|x| <= TANH_SMALL`: a
/// minimax fit (`tests/reference/fit_polys.py`), relative error of `tanh`
/// 2.4e-9 with these `f32` coefficients.
const TANH_P: [f32; 4] = [1.908_983_3e-2, -5.364_936_6e-2, 0.133_318_69, -0.333_333_13];
/// Below this `|x|`, where `e / (e + 2)` (see [`tanh_from`]) rounds three times
/// into a smaller binade than `e`'s (2.6 ulp measured), the polynomial.
const TANH_SMALL: f32 = 0.375;

/// [`EXP_Q`] for half the argument, doubled: coefficient `i` times
/// `2^(5 - i)`. Horner's scheme on `h = r / 2` with these gives `2 q(r)`, each
/// intermediate its counterpart on `r` times a power of two (so the same
/// roundings, the same bits).
const EXP_Q_HALF: [f32; 5] = [
    EXP_Q[0] * 32.0,
    EXP_Q[1] * 16.0,
    EXP_Q[2] * 8.0,
    EXP_Q[3] * 4.0,
    EXP_Q[4] * 2.0,
];

/// First pass of the hyperbolic tangent (see [`tanh_from`]): `e = e^(2a) -
/// 1` for `a = min(|x|, 10)`, as `s p + (s - 1)` from the parts
/// `e^(2a) = s (1 + p)` (`s - 1` is exact up to `s = 2^24`, so nothing
/// cancels).
///
/// The reduction of [`exp_core`] on `2a` with [`EXP_Q`] evaluated by Horner's
/// scheme (not Estrin's: one live register fewer, which this pass needs on
/// AVX2, where Estrin's spilled and ran 3 % slower), bit for bit, without
/// forming `2a`: the reduction runs on `a` with `ln 2 / 2` (`h = r / 2`,
/// exact halvings), the polynomial on `h` with [`EXP_Q_HALF`], and the
/// shifter is one above [`SHIFT_127`] (the shift gives `2s`; `n` is the same,
/// as `2a log2(e)` is never half an integer for `a <= 10`). One operation
/// fewer a register.
#[inline(always)]
pub(crate) fn tanh_expm1<L: Lanes>(l: L, x: L::V) -> L::V {
    const SHIFT_128: f32 = SHIFT_127 + 1.0;
    let a = l.min(l.splat(10.0), l.abs(x));
    let k = l.fma(a, l.splat(2.0 * LOG2E), l.splat(SHIFT_128));
    let n = l.sub(k, l.splat(SHIFT_128));
    let h = l.fma(n, l.splat(-LN2_HI / 2.0), a);
    let h = l.fma(n, l.splat(-LN2_LO / 2.0), h);
    // p / 2 = (q r^2 + r) / 2 = 2q (h^2) + h.
    let half_p = l.fma(poly(l, h, &EXP_Q_HALF), l.mul(h, h), h);
    let s2 = l.pow2_shifted(k);
    // `s - 1` for `s = 2^n`: exact (or, past `n = 24`, rounded once) either
    // way, so the same bits. In one pass (`!STAGED`: AVX-512) it comes from
    // `s` formed apart (`k - 1 = SHIFT_127 + n` exactly), a subtraction and a
    // shift in place of a multiply-add, off the FMA pipes; in the staged
    // first pass (AVX2) the extra operations cost more than the FMA (Zen 4,
    // 1e6 elements, binaries alternated: AVX-512 tanh 358 -> 343 us, AVX2
    // 413 -> 418-421).
    let s_less_1 = if L::STAGED {
        l.fma(s2, l.splat(0.5), l.splat(-1.0))
    } else {
        l.sub(l.pow2_shifted(l.sub(k, l.splat(1.0))), l.splat(1.0))
    };
    l.fma(s2, half_p, s_less_1)
}

/// Hyperbolic tangent from `x` and `e =` [`tanh_expm1`]`(x)`: an odd
/// polynomial below `|x| = 0.375`, above it `e / (e + 2)`; sign restored.
/// `|x|` is clamped to 10 in `e`, where the quotient already rounds to 1;
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh_from<L: Lanes>(l: L, x: L::V, e: L::V) -> L::V {
    // Unclamped: where the clamp would act, the polynomial is not taken.
    let a = l.abs(x);
    let large = l.div(e, l.add(e, l.splat(2.0)));
    let z = l.mul(a, a);
    let small = l.fma(l.mul(a, z), poly(l, z, &TANH_P), a);
    // Written as "the quotient where `a >= 0.375`" (NaN takes the
    // polynomial, which keeps it), AVX-512 folds the choice into a masked
    // division, one operation fewer than a blend after it.
    let t = l.select(l.ge(a, l.splat(TANH_SMALL)), large, small);
    l.or(t, l.sign_bit(x))
}

/// The pieces of `sigmoid(v)` for `v = hi + lo`: `t = e^-|v| = y * 2^n`
/// (also unscaled, see [`exp_parts`]), `d = 1 + t`, and the lanes where `v < 0`.
/// Then `sigmoid(v)` is `t / d` where `v < 0`, else `1 / d`: neither
/// overflows nor cancels.
struct Logistic<L: Lanes> {
    y: L::V,
    n: L::V,
    t: L::V,
    d: L::V,
    neg: L::M,
}

#[inline(always)]
fn logistic<L: Lanes>(l: L, hi: L::V, lo: Option<L::V>) -> Logistic<L> {
    let neg = l.lt(hi, l.splat(0.0));
    // -|v| = v for negative v (low part unchanged), else -v. (A `match`, not
    // `Option::map`: a closure would be compiled without the target features.)
    #[allow(clippy::manual_map)]
    let lo = match lo {
        Some(lo) => Some(l.select(neg, lo, l.neg(lo))),
        None => None,
    };
    let (y, n) = exp_parts(l, l.neg(l.abs(hi)), lo);
    let t = l.ldexp(y, n);
    Logistic {
        y,
        n,
        t,
        d: l.add(l.splat(1.0), t),
        neg,
    }
}

/// `x * sigmoid(v)` from the pieces: for `v < 0` the product is formed on the
/// unscaled `y` and scaled once, so a subnormal result is rounded once. `xc`
/// is `x` clamped to the range where that product can be nonzero (it keeps
/// `|xc * y|` within [`Lanes::ldexp`]'s domain).
#[inline(always)]
fn times_logistic<L: Lanes>(l: L, x: L::V, xc: L::V, g: &Logistic<L>) -> L::V {
    let neg = l.ldexp(l.div(l.mul(xc, g.y), g.d), g.n);
    l.select(g.neg, neg, l.div(x, g.d))
}

/// NaN where `x` is `-inf` (PyTorch's `x * 0` there), else `r`.
#[inline(always)]
fn nan_at_neg_inf<L: Lanes>(l: L, x: L::V, r: L::V) -> L::V {
    l.select(l.eq(x, l.splat(f32::NEG_INFINITY)), l.splat(f32::NAN), r)
}

/// NaN where `x` is infinite, else `r`.
#[inline(always)]
fn nan_at_inf<L: Lanes>(l: L, x: L::V, r: L::V) -> L::V {
    l.select(l.eq(l.abs(x), l.splat(f32::INFINITY)), l.splat(f32::NAN), r)
}

/// Logistic sigmoid: `1 / (1 + e^-x)` where `|x| <= EXP_FAST_MAX` (as
/// [`sigmoid_fast`]); beyond, 1 above and `e^x` below (there `e^x (1 - e^x)`
/// rounds to `e^x`, subnormal results correctly rounded); NaN stays NaN.
#[inline(always)]
pub(crate) fn sigmoid<L: Lanes>(l: L, x: L::V) -> L::V {
    let fast = sigmoid_fast(l, x);
    let out = exp_outside(l, x);
    if !l.any(out) {
        return fast;
    }
    let tail = l.select(l.gt(x, l.splat(0.0)), l.splat(1.0), exp(l, x));
    l.select(out, tail, fast)
}

/// [`sigmoid`] for `|x| <= EXP_FAST_MAX` (bit for bit equal there; other
/// lanes unspecified).
#[inline(always)]
pub(crate) fn sigmoid_fast<L: Lanes>(l: L, x: L::V) -> L::V {
    let one = l.splat(1.0);
    l.div(one, l.add(one, exp_fast(l, l.neg(x), None)))
}

/// `x * sigmoid(x)`; NaN at `-inf`.
#[inline(always)]
pub(crate) fn silu<L: Lanes>(l: L, x: L::V) -> L::V {
    let g = logistic(l, x, None);
    // Below -200, x e^x is far below the smallest subnormal.
    let xc = l.max(l.splat(-200.0), x);
    nan_at_neg_inf(l, x, times_logistic(l, x, xc, &g))
}

/// SiLU derivative `s (1 + x (1 - s))`, `s = sigmoid(x)`: with `t = e^-|x|`
/// and `d = 1 + t`, `(t/d) (1 + x/d)` below 0 (on the unscaled `t`) and
/// `(1/d) (1 + x t/d)` above. NaN at `±inf`.
#[inline(always)]
pub(crate) fn silu_grad<L: Lanes>(l: L, x: L::V) -> L::V {
    let g = logistic(l, x, None);
    let one = l.splat(1.0);
    let xc = l.max(l.splat(-200.0), x);
    let neg = l.ldexp(l.mul(l.div(g.y, g.d), l.add(one, l.div(xc, g.d))), g.n);
    let pos = l.div(l.fma(x, l.div(g.t, g.d), one), g.d);
    nan_at_inf(l, x, l.select(g.neg, neg, pos))
}

/// Softplus with threshold 20: `max(x, 0) + log1p(e^-|x|)`, or `x` above 20.
#[inline(always)]
pub(crate) fn softplus<L: Lanes>(l: L, x: L::V) -> L::V {
    let t = exp(l, l.neg(l.abs(x)));
    let r = l.add(l.max(x, l.splat(0.0)), log1p(l, t));
    l.select(l.gt(x, l.splat(20.0)), x, r)
}

// ------------------------------------------------------------- erf, gelu

mod erf;
mod gelu;
pub(crate) use erf::erf;
pub(crate) use gelu::{gelu, gelu_grad};

/// `2 sqrt(2/pi)` and the tanh-GELU cubic coefficient, each as `hi + lo`.
const GT_A: f32 = 1.595_769_2;
const GT_A_LO: f32 = -4.534_068e-8;
const GT_K: f32 = 0.044_715;
const GT_K_LO: f32 = 1.546_144_4e-9;

/// `v = 2 sqrt(2/pi) (x + 0.044715 x^3)` as `hi + lo`, for `|x| <= 20`.
#[inline(always)]
fn gelu_tanh_arg<L: Lanes>(l: L, x: L::V) -> (L::V, L::V) {
    let x2 = l.mul(x, x);
    let x2l = l.fma(x, x, l.neg(x2));
    // w = K x^2
    let w = l.mul(l.splat(GT_K), x2);
    let wl = l.fma(l.splat(GT_K), x2, l.neg(w));
    let wl = l.fma(l.splat(GT_K), x2l, l.fma(l.splat(GT_K_LO), x2, wl));
    // s = 1 + w (two-sum)
    let one = l.splat(1.0);
    let s = l.add(one, w);
    let bb = l.sub(s, one);
    let sl = l.add(l.sub(one, l.sub(s, bb)), l.sub(w, bb));
    let sl = l.add(sl, wl);
    // q = A x
    let q = l.mul(l.splat(GT_A), x);
    let ql = l.fma(l.splat(GT_A), x, l.neg(q));
    let ql = l.fma(l.splat(GT_A_LO), x, ql);
    // v = q s
    let v = l.mul(q, s);
    let vl = l.fma(q, s, l.neg(v));
    let vl = l.fma(q, sl, l.fma(ql, s, vl));
    (v, vl)
}

/// GELU with the tanh approximation, as `x * sigmoid(v)` (see
/// [`crate::kernels::scalar::gelu_tanh`]); NaN at `-inf`.
#[inline(always)]
pub(crate) fn gelu_tanh<L: Lanes>(l: L, x: L::V) -> L::V {
    // NaN stays NaN through both clamps (the first operand loses on NaN).
    let xc = l.max(l.splat(-20.0), l.min(l.splat(20.0), x));
    let (v, vl) = gelu_tanh_arg(l, xc);
    let g = logistic(l, v, Some(vl));
    nan_at_neg_inf(l, x, times_logistic(l, x, xc, &g))
}

/// Tanh-GELU derivative `s + x v' s (1 - s)`, `s = sigmoid(v)`, where
/// `s (1 - s) = t / (1 + t)^2` with `t = e^-|v|`; NaN at `±inf`.
#[inline(always)]
pub(crate) fn gelu_tanh_grad<L: Lanes>(l: L, x: L::V) -> L::V {
    let xc = l.max(l.splat(-20.0), l.min(l.splat(20.0), x));
    let (v, vl) = gelu_tanh_arg(l, xc);
    let g = logistic(l, v, Some(vl));
    let s = l.select(
        g.neg,
        l.ldexp(l.div(g.y, g.d), g.n),
        l.div(l.splat(1.0), g.d),
    );
    let k3 = l.splat(3.0 * GT_K);
    let dv = l.mul(l.splat(GT_A), l.fma(k3, l.mul(xc, xc), l.splat(1.0)));
    let term = l.ldexp(l.div(l.mul(l.mul(xc, dv), g.y), l.mul(g.d, g.d)), g.n);
    nan_at_inf(l, x, l.add(s, term))
}
