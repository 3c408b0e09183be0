//! The portable reference path: plain loops over `libm`, any target.
//!
//! Every SIMD path is tested against the kernels built from these functions.
//! The element functions are public so that other layers (and users) can apply
//! exactly the formula the kernels use to a single value.
//!
//! Formulas: where the plain `f32` formula loses accuracy in a tail that the
//! SIMD path gets right (the GELU family, whose argument to `erfc`/`exp` grows
//! like `x^2`), the element function evaluates in `f64` with `libm`'s `f64`
//! functions and rounds once, so it stays a trustworthy reference.
//! Everything else is `f32` `libm` (same results on server and board).

use super::check;

// ---------------------------------------------------------------- unary

/// `-x`.
#[inline]
pub fn neg(x: f32) -> f32 {
    -x
}
/// `|x|`.
#[inline]
pub fn abs(x: f32) -> f32 {
    libm::fabsf(x)
}
/// `e^x` (`libm::expf`).
#[inline]
pub fn exp(x: f32) -> f32 {
    libm::expf(x)
}
/// Natural logarithm (`libm::logf`): `-inf` at 0, NaN below 0.
#[inline]
pub fn log(x: f32) -> f32 {
    libm::logf(x)
}
/// `ln(1 + x)` (`libm::log1pf`).
#[inline]
pub fn log1p(x: f32) -> f32 {
    libm::log1pf(x)
}
/// Square root (correctly rounded).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    crate::math::sqrtf(x)
}
/// `1 / sqrt(x)`, two correctly rounded steps (as PyTorch's CPU kernel).
#[inline]
pub fn rsqrt(x: f32) -> f32 {
    1.0 / crate::math::sqrtf(x)
}
/// Sine (`libm::sinf`).
#[inline]
pub fn sin(x: f32) -> f32 {
    libm::sinf(x)
}
/// Cosine (`libm::cosf`).
#[inline]
pub fn cos(x: f32) -> f32 {
    libm::cosf(x)
}
/// Hyperbolic tangent (`libm::tanhf`).
#[inline]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}
/// Error function (`libm::erff`).
#[inline]
pub fn erf(x: f32) -> f32 {
    libm::erff(x)
}
/// `max(x, 0)`; NaN stays NaN, `-0` gives `+0`.
#[inline]
pub fn relu(x: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { x }
}
/// Logistic sigmoid `1 / (1 + e^-x)`, evaluated as `t / (1 + t)` with
/// `t = e^-|x|` for negative `x` so that it neither overflows nor cancels.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    let t = libm::expf(-libm::fabsf(x));
    let num = if x < 0.0 { t } else { 1.0 };
    num / (1.0 + t)
}
/// SiLU / swish `x * sigmoid(x)`, evaluated in `f64` (in `f32`, `e^x` goes
/// subnormal below -87 and its rounding error is then multiplied by `x`).
/// Like PyTorch, `silu(-inf)` is NaN.
#[inline]
pub fn silu(x: f32) -> f32 {
    let x = x as f64;
    (x / (1.0 + libm::exp(-x))) as f32
}
/// Softplus with PyTorch's defaults (`beta = 1`, `threshold = 20`):
/// `x` above 20, else `ln(1 + e^x)`.
#[inline]
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        libm::log1pf(libm::expf(x))
    }
}
/// Exact GELU `x * Phi(x) = 0.5 x erfc(-x / sqrt 2)`, evaluated in `f64`.
/// Like PyTorch, `gelu(-inf)` is NaN.
#[inline]
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2)) as f32
}
/// `sqrt(2 / pi)`, the tanh-GELU scale.
const GELU_TANH_C: f64 = 0.797_884_560_802_865_4;
/// The tanh-GELU cubic coefficient.
const GELU_TANH_K: f64 = 0.044_715;
/// GELU, PyTorch's `approximate = "tanh"`:
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, evaluated in `f64` as the
/// equal `x * sigmoid(2u)` (no cancellation for negative `x`). `-inf` gives NaN.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    let x = x as f64;
    let v = 2.0 * GELU_TANH_C * (x + GELU_TANH_K * x * x * x);
    (x / (1.0 + libm::exp(-v))) as f32
}
/// `1 / x`.
#[inline]
pub fn recip(x: f32) -> f32 {
    1.0 / x
}
/// `x * x`.
#[inline]
pub fn square(x: f32) -> f32 {
    x * x
}
/// Round toward minus infinity.
#[inline]
pub fn floor(x: f32) -> f32 {
    libm::floorf(x)
}
/// Round toward plus infinity.
#[inline]
pub fn ceil(x: f32) -> f32 {
    libm::ceilf(x)
}
/// Round to nearest, ties to even (`torch.round`).
#[inline]
pub fn round(x: f32) -> f32 {
    libm::roundevenf(x)
}
/// Round toward zero.
#[inline]
pub fn trunc(x: f32) -> f32 {
    libm::truncf(x)
}
/// `(0 < x) - (x < 0)`: 1, -1, or +0 for zeros and NaN (PyTorch's CPU formula).
#[inline]
pub fn sign(x: f32) -> f32 {
    ((0.0 < x) as u8 as f32) - ((x < 0.0) as u8 as f32)
}

// ----------------------------------------------------------- parametric

/// `x` if `x > 0`, else `x * slope`.
#[inline]
pub fn leaky_relu(x: f32, slope: f32) -> f32 {
    if x > 0.0 { x } else { x * slope }
}
/// `torch.clamp`: `min(max(x, lo), hi)`; NaN in `x`, `lo` or `hi` gives NaN,
/// and `lo > hi` gives `hi`.
#[inline]
pub fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    if lo.is_nan() || hi.is_nan() {
        return f32::NAN;
    }
    let r = if x < lo { lo } else { x };
    if r > hi { hi } else { r }
}
/// `a * x + b`, two roundings.
#[inline]
pub fn affine(x: f32, a: f32, b: f32) -> f32 {
    a * x + b
}
/// `x^p` with PyTorch's `pow(tensor, scalar)` semantics: `p = 0` gives 1 (even
/// for NaN), `p = 1` gives `x`; `2`, `3` and `-2` multiply; `0.5`, `-0.5` and
/// `-1` are `sqrt`, `rsqrt` and `recip`; any other `p` is `libm::powf` (C99
/// `pow`: negative `x` with integral `p` works, with non-integral `p` is NaN).
#[inline]
pub fn pow_scalar(x: f32, p: f32) -> f32 {
    match p {
        0.0 => 1.0,
        1.0 => x,
        2.0 => x * x,
        3.0 => x * x * x,
        -2.0 => 1.0 / (x * x),
        0.5 => crate::math::sqrtf(x),
        -0.5 => 1.0 / crate::math::sqrtf(x),
        -1.0 => 1.0 / x,
        _ => libm::powf(x, p),
    }
}

// --------------------------------------------------------------- binary

/// `torch.maximum`: NaN if either is NaN; `+0` is larger than `-0`.
#[inline]
pub fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        a + b
    } else if a == b {
        f32::from_bits(a.to_bits() & b.to_bits())
    } else if a > b {
        a
    } else {
        b
    }
}
/// `torch.minimum`: NaN if either is NaN; `-0` is smaller than `+0`.
#[inline]
pub fn minimum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        a + b
    } else if a == b {
        f32::from_bits(a.to_bits() | b.to_bits())
    } else if a < b {
        a
    } else {
        b
    }
}
/// `a^b` (`libm::powf`, C99 special cases: `pow(x, 0) = 1`, `pow(1, y) = 1`).
#[inline]
pub fn pow(a: f32, b: f32) -> f32 {
    libm::powf(a, b)
}

// ------------------------------------------------------------- backward

/// ReLU gradient from the input (or the output) `x`: `0` where `x <= 0`, else
/// `g` (so a NaN `x` passes `g`, as PyTorch's `threshold_backward`).
#[inline]
pub fn relu_backward(x: f32, g: f32) -> f32 {
    if x <= 0.0 { 0.0 } else { g }
}
/// Leaky-ReLU gradient: `g` where `x > 0`, else `g * slope`.
#[inline]
pub fn leaky_relu_backward(x: f32, g: f32, slope: f32) -> f32 {
    if x > 0.0 { g } else { g * slope }
}
/// Sigmoid gradient from the output `y`: `g * (1 - y) * y`.
#[inline]
pub fn sigmoid_backward(y: f32, g: f32) -> f32 {
    g * (1.0 - y) * y
}
/// Tanh gradient from the output `y`: `g * (1 - y * y)`.
#[inline]
pub fn tanh_backward(y: f32, g: f32) -> f32 {
    g * (1.0 - y * y)
}
/// Exact-GELU gradient from the input: `g * (Phi(x) + x phi(x))`, in `f64`.
#[inline]
pub fn gelu_backward(x: f32, g: f32) -> f32 {
    let x = x as f64;
    let cdf = 0.5 * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2);
    let pdf = libm::exp(-0.5 * x * x) * 0.398_942_280_401_432_7; // 1/sqrt(2 pi)
    (g as f64 * (cdf + x * pdf)) as f32
}
/// Tanh-GELU gradient from the input, in `f64`: with `v = 2u` and
/// `s = sigmoid(v)`, `g * (s + x v' s (1 - s))`.
#[inline]
pub fn gelu_tanh_backward(x: f32, g: f32) -> f32 {
    let x = x as f64;
    let v = 2.0 * GELU_TANH_C * (x + GELU_TANH_K * x * x * x);
    let dv = 2.0 * GELU_TANH_C * (1.0 + 3.0 * GELU_TANH_K * x * x);
    let s = 1.0 / (1.0 + libm::exp(-v));
    let sm = 1.0 / (1.0 + libm::exp(v));
    (g as f64 * (s + x * dv * s * sm)) as f32
}
/// SiLU gradient from the input: `g * s * (1 + x (1 - s))`, `s = sigmoid(x)`,
/// evaluated in `f64` (see [`silu`]). NaN at `±inf`, as PyTorch.
#[inline]
pub fn silu_backward(x: f32, g: f32) -> f32 {
    let x = x as f64;
    let s = 1.0 / (1.0 + libm::exp(-x));
    (g as f64 * s * (1.0 + x * (1.0 - s))) as f32
}
/// Softplus gradient from the input: `g` above the threshold 20, else
/// `g * sigmoid(x)`.
#[inline]
pub fn softplus_backward(x: f32, g: f32) -> f32 {
    if x > 20.0 { g } else { g * sigmoid(x) }
}

// --------------------------------------------------------- slice drivers

/// `out[i] = f(x[i])`.
#[inline]
pub(crate) fn map(op: &str, x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    check::same(op, x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `buf[i] = f(buf[i])`.
#[inline]
pub(crate) fn map_inplace(buf: &mut [f32], f: impl Fn(f32) -> f32) {
    for v in buf.iter_mut() {
        *v = f(*v);
    }
}

/// `out[i] = f(a[i], b[i])`, where a length-1 operand is broadcast.
#[inline]
pub(crate) fn zip(op: &str, a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    let n = out.len();
    check::operand(op, "a", a.len(), n);
    check::operand(op, "b", b.len(), n);
    let (sa, sb) = (usize::from(a.len() == n), usize::from(b.len() == n));
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(a[i * sa], b[i * sb]);
    }
}

/// `acc[i] = f(acc[i], b[i])`, where a length-1 `b` is broadcast.
#[inline]
pub(crate) fn zip_inplace(op: &str, acc: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    let n = acc.len();
    check::operand(op, "b", b.len(), n);
    let sb = usize::from(b.len() == n);
    for (i, a) in acc.iter_mut().enumerate() {
        *a = f(*a, b[i * sb]);
    }
}

/// `pow_scalar` over a slice (also the general-`p` path of every SIMD table).
pub(crate) fn pow_scalar_slice(x: &[f32], p: f32, out: &mut [f32]) {
    map("pow_scalar", x, out, |v| pow_scalar(v, p));
}

/// In-place `pow_scalar` over a slice.
pub(crate) fn pow_scalar_slice_inplace(buf: &mut [f32], p: f32) {
    map_inplace(buf, |v| pow_scalar(v, p));
}

/// Elementwise `pow` over slices (used by every table: no SIMD `pow`).
pub(crate) fn pow_slice(a: &[f32], b: &[f32], out: &mut [f32]) {
    zip("pow", a, b, out, pow);
}

/// In-place elementwise `pow` (used by every table).
pub(crate) fn pow_slice_inplace(acc: &mut [f32], b: &[f32]) {
    zip_inplace("pow", acc, b, pow);
}

// ------------------------------------------------------------ reductions

/// Below this many elements a sum is a plain left-to-right loop.
const PAIRWISE_BASE: usize = 32;

/// Pairwise sum of `f(x[i])`: halves are summed recursively, runs of at most
/// [`PAIRWISE_BASE`] left to right. Error grows like `log2(n)`.
pub(crate) fn pairwise(x: &[f32], f: &impl Fn(f32) -> f32) -> f32 {
    if x.len() <= PAIRWISE_BASE {
        x.iter().fold(0.0, |s, &v| s + f(v))
    } else {
        let (lo, hi) = x.split_at(x.len() / 2);
        pairwise(lo, f) + pairwise(hi, f)
    }
}

/// Pairwise sum of `a[i] * b[i]` (same tree as [`pairwise`]).
pub(crate) fn pairwise_dot(a: &[f32], b: &[f32]) -> f32 {
    if a.len() <= PAIRWISE_BASE {
        a.iter().zip(b).fold(0.0, |s, (&x, &y)| s + x * y)
    } else {
        let m = a.len() / 2;
        pairwise_dot(&a[..m], &b[..m]) + pairwise_dot(&a[m..], &b[m..])
    }
}

/// Sum.
pub(crate) fn sum(x: &[f32]) -> f32 {
    pairwise(x, &|v| v)
}
/// Sum of squares.
pub(crate) fn sum_sq(x: &[f32]) -> f32 {
    pairwise(x, &|v| v * v)
}
/// Sum of absolute values.
pub(crate) fn sum_abs(x: &[f32]) -> f32 {
    pairwise(x, &libm::fabsf)
}
/// Dot product.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    check::pair("dot", a.len(), b.len());
    pairwise_dot(a, b)
}
/// Largest element (NaN if any; `-inf` if empty).
pub(crate) fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| maximum(m, v))
}
/// Smallest element (NaN if any; `+inf` if empty).
pub(crate) fn min(x: &[f32]) -> f32 {
    x.iter().fold(f32::INFINITY, |m, &v| minimum(m, v))
}
/// Largest absolute value (NaN if any; 0 if empty).
pub(crate) fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, &v| maximum(m, libm::fabsf(v)))
}
/// Index of the first largest element (the first NaN, if any).
pub(crate) fn argmax(x: &[f32]) -> usize {
    check::nonempty("argmax", x.len());
    if let Some(i) = x.iter().position(|v| v.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}
/// Index of the first smallest element (the first NaN, if any).
pub(crate) fn argmin(x: &[f32]) -> usize {
    check::nonempty("argmin", x.len());
    if let Some(i) = x.iter().position(|v| v.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v < x[best] {
            best = i;
        }
    }
    best
}

// ------------------------------------------------------------------ rows

/// `e^(x - m)` with the rounding error of `x - m` (TwoSum, exact) applied as
/// `e^s (1 + err)`: without it, the subtraction's error (up to half an ulp of
/// `|x - m|`) becomes a relative error of the result (30 ulp near -40).
#[inline]
pub(crate) fn exp_shift(x: f32, m: f32) -> f32 {
    let s = x - m;
    let bb = s - x;
    let err = (x - (s - bb)) + (-m - bb);
    let e = libm::expf(s);
    // Infinite x or m make the error NaN; there is nothing to correct.
    if err.is_nan() { e } else { e + e * err }
}

/// Softmax of one row.
pub(crate) fn softmax(x: &[f32], out: &mut [f32]) {
    check::same("softmax", x.len(), out.len());
    let m = max(x);
    map("softmax", x, out, |v| exp_shift(v, m));
    let r = 1.0 / sum(out);
    map_inplace(out, |v| v * r);
}
/// In-place softmax of one row.
pub(crate) fn softmax_inplace(buf: &mut [f32]) {
    let m = max(buf);
    map_inplace(buf, |v| exp_shift(v, m));
    let r = 1.0 / sum(buf);
    map_inplace(buf, |v| v * r);
}
/// Log-softmax of one row.
pub(crate) fn log_softmax(x: &[f32], out: &mut [f32]) {
    check::same("log_softmax", x.len(), out.len());
    let m = max(x);
    let ls = libm::logf(pairwise(x, &|v| exp_shift(v, m)));
    map("log_softmax", x, out, |v| (v - m) - ls);
}
/// Log-softmax of each row of `len` elements.
pub(crate) fn log_softmax_rows(x: &[f32], out: &mut [f32], len: usize) {
    check::same("log_softmax", x.len(), out.len());
    if len == 0 {
        return;
    }
    for (xr, or) in x.chunks(len).zip(out.chunks_mut(len)) {
        log_softmax(xr, or);
    }
}
/// In-place log-softmax of one row.
pub(crate) fn log_softmax_inplace(buf: &mut [f32]) {
    let m = max(buf);
    let ls = libm::logf(pairwise(buf, &|v| exp_shift(v, m)));
    map_inplace(buf, |v| (v - m) - ls);
}
/// `ln(sum(e^x))` of one row, PyTorch's way: an infinite maximum is replaced
/// by 0 before subtracting, so all `-inf` gives `-inf` and any `+inf` gives `+inf`.
pub(crate) fn logsumexp(x: &[f32]) -> f32 {
    let m = max(x);
    let m = if m.is_infinite() { 0.0 } else { m };
    libm::logf(pairwise(x, &|v| exp_shift(v, m))) + m
}
/// Softmax gradient from the output: `out = y * (g - <g, y>)`.
pub(crate) fn softmax_backward(y: &[f32], g: &[f32], out: &mut [f32]) {
    check::pair("softmax_backward", y.len(), g.len());
    check::same("softmax_backward", y.len(), out.len());
    let d = pairwise_dot(g, y);
    for ((o, &yv), &gv) in out.iter_mut().zip(y).zip(g) {
        *o = yv * (gv - d);
    }
}
/// Log-softmax gradient from the output: `out = g - e^y * sum(g)`.
pub(crate) fn log_softmax_backward(y: &[f32], g: &[f32], out: &mut [f32]) {
    check::pair("log_softmax_backward", y.len(), g.len());
    check::same("log_softmax_backward", y.len(), out.len());
    let s = sum(g);
    for ((o, &yv), &gv) in out.iter_mut().zip(y).zip(g) {
        *o = gv - libm::expf(yv) * s;
    }
}

/// `y[i] += alpha * x[i]` (two roundings).
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    check::same("axpy", x.len(), y.len());
    for (o, &v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// One step of Kahan summation: `acc += v` with the running compensation
/// `c`, reset to 0 where the sum is not finite (so an infinite sum stays
/// infinite instead of turning NaN).
#[inline]
pub(crate) fn kahan_step(acc: &mut f32, c: &mut f32, v: f32) {
    let y = v - *c;
    let t = *acc + y;
    *c = if t.is_finite() { (t - *acc) - y } else { 0.0 };
    *acc = t;
}

/// [`kahan_step`] of each of `rows` rows of `x` in turn into the columns
/// (row `i` is `x[i * stride..][..acc.len()]`), with compensations `c`.
pub(crate) fn kahan_rows(acc: &mut [f32], c: &mut [f32], x: &[f32], rows: usize, stride: usize) {
    check::kahan_rows(acc.len(), c.len(), x.len(), rows, stride);
    for i in 0..rows {
        let row = &x[i * stride..][..acc.len()];
        for ((a, c), &v) in acc.iter_mut().zip(c.iter_mut()).zip(row) {
            kahan_step(a, c, v);
        }
    }
}

// ------------------------------------------------------------------ copy

/// `out[i] = src[i * stride]`.
pub(crate) fn copy_strided(src: &[f32], stride: usize, out: &mut [f32]) {
    check::strided(src.len(), stride, out.len());
    for (i, o) in out.iter_mut().enumerate() {
        *o = src[i * stride];
    }
}

/// Tile edge of the blocked transpose, in elements: a 64 x 64 tile of the
/// source and of the output (32 KiB in all) stays in L1 or L2 while it is
/// transposed.
const TILE: usize = 64;

/// Edge of the register blocks within a tile.
const BLK: usize = 8;

/// `out[j * rows + i] = src[i * src_row_stride + j]` for a `rows x cols`
/// source, in `TILE x TILE` tiles made of `8 x 8` blocks: each block is read
/// as eight short rows and written as eight short rows, so no access strides
/// through memory one element at a time (a power-of-two row stride made that
/// 4x slower through cache-set conflicts).
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize, stride: usize, out: &mut [f32]) {
    check::transpose(src.len(), rows, cols, stride, out.len());
    let (rf, cf) = (rows / BLK * BLK, cols / BLK * BLK);
    for i0 in (0..rf).step_by(TILE) {
        let i1 = (i0 + TILE).min(rf);
        for j0 in (0..cf).step_by(TILE) {
            let j1 = (j0 + TILE).min(cf);
            for i in (i0..i1).step_by(BLK) {
                for j in (j0..j1).step_by(BLK) {
                    let mut blk = [[0.0f32; BLK]; BLK];
                    for (r, b) in blk.iter_mut().enumerate() {
                        let at = (i + r) * stride + j;
                        b.copy_from_slice(&src[at..at + BLK]);
                    }
                    for c in 0..BLK {
                        let at = (j + c) * rows + i;
                        for (o, b) in out[at..at + BLK].iter_mut().zip(&blk) {
                            *o = b[c];
                        }
                    }
                }
            }
        }
    }
    // The edges that do not fill a block: the last columns of every row,
    // then the last rows of the other columns.
    for i in 0..rows {
        for j in cf..cols {
            out[j * rows + i] = src[i * stride + j];
        }
    }
    for i in rf..rows {
        for j in 0..cf {
            out[j * rows + i] = src[i * stride + j];
        }
    }
}
