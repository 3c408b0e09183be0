//! The kernel table: one `static` [`Kernels`] per instruction set.
//!
//! The ops layer reaches kernels only through [`table()`](super::table()), which
//! picks the table for the path in force with one relaxed load and a match.
//! Every entry is a safe `fn` pointer on slices; lengths are checked once at
//! entry and misuse panics with a message naming the kernel.
//!
//! Accuracy is stated per field. "Exact" means bit-identical to the scalar
//! path on every ISA. A "SIMD: within N ulp" bound is the error against an
//! `f64` reference of the AVX2, AVX-512 and NEON kernels (which compute the
//! same operation sequence and gave identical maxima); the figure in
//! parentheses is the maximum measured over *every* `f32` of the stated
//! range (`kernels::kernel_tests::accuracy::exhaustive`, run in release mode
//! on AVX2 and AVX-512; the always-run test asserts the bounds on a 65 536-point
//! sweep per ISA, NEON included). The scalar path is `libm` `f32` (within 1 ulp,
//! except `tanhf` 2.1, softplus 1.5 and the sigmoid formula 2.4) or, where its
//! doc says so, `f64` rounded once.

use super::Isa;
use super::scalar;

/// `out[i] = f(x[i])`; panics unless `x.len() == out.len()`.
pub type MapFn = fn(&[f32], &mut [f32]);
/// `buf[i] = f(buf[i])`.
pub type InplaceFn = fn(&mut [f32]);
/// `f(x, out, len)` over consecutive rows of `len` elements.
pub type RowsFn = fn(&[f32], &mut [f32], usize);
/// `out[i] = f(a[i], b[i])`; `a` and `b` each have `out.len()` elements or 1
/// (a length-1 operand is broadcast); panics otherwise.
pub type ZipFn = fn(&[f32], &[f32], &mut [f32]);
/// `acc[i] = f(acc[i], b[i])`; `b` has `acc.len()` elements or 1.
pub type ZipInplaceFn = fn(&mut [f32], &[f32]);
/// A reduction of one slice.
pub type ReduceFn = fn(&[f32]) -> f32;

/// A unary element-wise kernel, out-of-place and in place.
#[derive(Clone, Copy, Debug)]
pub struct Unary {
    /// `out[i] = f(x[i])`; panics unless `x.len() == out.len()`.
    pub map: MapFn,
    /// `buf[i] = f(buf[i])`.
    pub map_inplace: InplaceFn,
}

/// A binary element-wise kernel `a op b`, out-of-place and in place.
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    /// `out[i] = a[i] op b[i]`; each of `a`, `b` has `out.len()` elements or 1
    /// (broadcast). Panics otherwise.
    pub map: ZipFn,
    /// `acc[i] = acc[i] op b[i]`; `b` has `acc.len()` elements or 1.
    pub map_inplace: ZipInplaceFn,
}

/// Every element-wise, reduction, row and copy kernel of one instruction set.
///
/// Obtain it with [`table()`](super::table()) (the path in force) or
/// [`table_for`](super::table_for) (a given path, for tests and benchmarks).
#[derive(Debug)]
pub struct Kernels {
    /// The instruction set these kernels use.
    pub isa: Isa,

    /// `-x`. Exact.
    pub neg: Unary,
    /// `|x|`. Exact.
    pub abs: Unary,
    /// `e^x`; overflows to `inf` above 88.72, subnormal results correctly
    /// rounded down to 0 at -103.97. SIMD: within 1.1 ulp on `[-110, 89.5]`
    /// (0.967); blocks with every `|x| <= 87` take a clampless form that
    /// agrees bit for bit.
    pub exp: Unary,
    /// Natural log: `-inf` at ±0, NaN below 0, subnormal inputs handled.
    /// SIMD: within 1 ulp on all positive `f32` (0.827).
    pub log: Unary,
    /// `ln(1 + x)`. SIMD: within 1.5 ulp on `[-1, 1e30]` (1.233).
    pub log1p: Unary,
    /// Square root. Exact (correctly rounded).
    pub sqrt: Unary,
    /// `1 / sqrt(x)` (two correctly rounded steps, as PyTorch). Exact.
    pub rsqrt: Unary,
    /// Sine. SIMD: within 2 ulp for `|x| <= 65536` (1.577); larger `|x|`,
    /// `inf` and NaN lanes use `libm` (exact).
    pub sin: Unary,
    /// Cosine. SIMD: within 2 ulp for `|x| <= 65536` (1.564); larger `|x|`,
    /// `inf` and NaN lanes use `libm` (exact).
    pub cos: Unary,
    /// Hyperbolic tangent. SIMD: within 1.5 ulp on `[-10, 10]` (1.498);
    /// exactly ±1 beyond.
    pub tanh: Unary,
    /// Error function. SIMD: within 1 ulp on `[-6, 6]` (0.856); exactly ±1
    /// beyond.
    pub erf: Unary,
    /// `max(x, 0)`; NaN stays NaN, `-0` gives `+0`. Exact.
    pub relu: Unary,
    /// Logistic sigmoid, evaluated without overflow or cancellation (see
    /// [`scalar::sigmoid`]). SIMD: `1 / (1 + e^-x)` where `|x| <= 87`, within
    /// 2.75 ulp on `[-110, 30]` (2.720), subnormal results included.
    pub sigmoid: Unary,
    /// Exact GELU `x Phi(x)` (PyTorch `approximate="none"`), accurate in the
    /// negative tail too; `gelu(-inf)` is NaN as in PyTorch. Scalar: `f64`.
    /// SIMD: within 2.5 ulp on `[-15, 12]` (2.414 over every `f32` there),
    /// subnormal results included.
    pub gelu: Unary,
    /// GELU, PyTorch `approximate="tanh"`, evaluated as `x sigmoid(2u)` so the
    /// negative tail keeps full relative accuracy; `-inf` gives NaN. Scalar:
    /// `f64`. SIMD: within 3.5 ulp on `[-14, 14]` (3.207).
    pub gelu_tanh: Unary,
    /// SiLU `x sigmoid(x)`; `silu(-inf)` is NaN as in PyTorch. Scalar: `f64`.
    /// SIMD: within 3.5 ulp on `[-110, 30]` (3.344), subnormal results included.
    pub silu: Unary,
    /// Softplus, PyTorch defaults (`beta = 1`, `threshold = 20`). SIMD: within
    /// 2.25 ulp on `[-110, 30]` (2.022).
    pub softplus: Unary,
    /// `1 / x`. Exact.
    pub recip: Unary,
    /// `x * x`. Exact.
    pub square: Unary,
    /// Round toward minus infinity. Exact.
    pub floor: Unary,
    /// Round toward plus infinity. Exact.
    pub ceil: Unary,
    /// Round half to even (`torch.round`). Exact.
    pub round: Unary,
    /// Round toward zero. Exact.
    pub trunc: Unary,
    /// `(0 < x) - (x < 0)`: ±1, or `+0` for zeros and NaN. Exact.
    pub sign: Unary,

    /// `leaky_relu(x, slope, out)`: `x` if `x > 0`, else `x * slope`. Exact.
    pub leaky_relu: fn(&[f32], f32, &mut [f32]),
    /// In-place [`leaky_relu`](Self::leaky_relu).
    pub leaky_relu_inplace: fn(&mut [f32], f32),
    /// `clamp(x, min, max, out)` as `torch.clamp`: NaN in `x` or in a bound
    /// gives NaN, `min > max` gives `max`. Pass `±inf` for a missing bound. Exact.
    pub clamp: fn(&[f32], f32, f32, &mut [f32]),
    /// In-place [`clamp`](Self::clamp).
    pub clamp_inplace: fn(&mut [f32], f32, f32),
    /// `pow_scalar(x, p, out)`: `x^p` as PyTorch's `pow(tensor, scalar)` (see
    /// [`scalar::pow_scalar`]): `p` in {0, 1, 2, 3, -2, 0.5, -0.5, -1} use
    /// vector fast paths (exact); other `p` call `libm::powf` per element on
    /// every ISA (exact, not vectorised).
    pub pow_scalar: fn(&[f32], f32, &mut [f32]),
    /// In-place [`pow_scalar`](Self::pow_scalar).
    pub pow_scalar_inplace: fn(&mut [f32], f32),
    /// `affine(x, a, b, out)`: `a * x + b` (two roundings). Exact.
    pub affine: fn(&[f32], f32, f32, &mut [f32]),
    /// In-place [`affine`](Self::affine).
    pub affine_inplace: fn(&mut [f32], f32, f32),

    /// `a + b`. Exact.
    pub add: Binary,
    /// `a - b`. Exact.
    pub sub: Binary,
    /// `a * b`. Exact.
    pub mul: Binary,
    /// `a / b`. Exact.
    pub div: Binary,
    /// `torch.maximum`: NaN if either is NaN, `+0 > -0`. Exact.
    pub maximum: Binary,
    /// `torch.minimum`: NaN if either is NaN, `-0 < +0`. Exact.
    pub minimum: Binary,
    /// `a^b` (`libm::powf` per element on every ISA; exact, not vectorised).
    pub pow: Binary,
    /// `a == b` as 1.0 / 0.0. Exact.
    pub eq: Binary,
    /// `a != b` as 1.0 / 0.0 (true for NaN). Exact.
    pub ne: Binary,
    /// `a < b` as 1.0 / 0.0. Exact.
    pub lt: Binary,
    /// `a <= b` as 1.0 / 0.0. Exact.
    pub le: Binary,
    /// `a > b` as 1.0 / 0.0. Exact.
    pub gt: Binary,
    /// `a >= b` as 1.0 / 0.0. Exact.
    pub ge: Binary,

    /// `relu_backward(x, g, out)`: 0 where `x <= 0`, else `g` (`x` may be the
    /// input or the output). Operands as [`ZipFn`]. Exact.
    pub relu_backward: ZipFn,
    /// `leaky_relu_backward(x, g, slope, out)`: `g` where `x > 0`, else
    /// `g * slope`. Exact.
    pub leaky_relu_backward: fn(&[f32], &[f32], f32, &mut [f32]),
    /// `sigmoid_backward(y, g, out)` from the output: `g (1 - y) y`. Exact.
    pub sigmoid_backward: ZipFn,
    /// `tanh_backward(y, g, out)` from the output: `g (1 - y^2)`. Exact.
    pub tanh_backward: ZipFn,
    /// `gelu_backward(x, g, out)`: `g (Phi(x) + x phi(x))`; NaN at `±inf`
    /// (PyTorch's `inf * 0`). Scalar: `f64`. SIMD: error within
    /// `5 eps (Phi + |x| phi) |g|` (3.40 measured on a 2^20-point sweep of
    /// `[-12, 12]`) plus `2 (1 + |g|)` subnormal quanta; the derivative has a
    /// root near -0.75, so no relative bound holds there.
    pub gelu_backward: ZipFn,
    /// `gelu_tanh_backward(x, g, out)`; NaN at `±inf`. Scalar: `f64`. SIMD:
    /// error within `7 eps (s + |x v' s (1 - s)|) |g|` in the notation of
    /// [`scalar::gelu_tanh_backward`] (6.57 measured) plus `2 (1 + |g|)`
    /// subnormal quanta.
    pub gelu_tanh_backward: ZipFn,
    /// `silu_backward(x, g, out)`: `g s (1 + x (1 - s))`, `s = sigmoid(x)`;
    /// NaN at `±inf`. Scalar: `f64`. SIMD: error within
    /// `5 eps (s + |x s (1 - s)|) |g|` (4.19 measured) plus `2 (1 + |g|)`
    /// subnormal quanta.
    pub silu_backward: ZipFn,
    /// `softplus_backward(x, g, out)`: `g sigmoid(x)`, or `g` above 20. SIMD:
    /// error within `4 eps |g sigmoid(x)|` (2.84 measured, the same as the
    /// scalar formula) plus `2 (1 + |g|)` subnormal quanta.
    pub softplus_backward: ZipFn,
    /// `axpy(alpha, x, y)`: `y[i] += alpha * x[i]` (two roundings); panics
    /// unless `x.len() == y.len()`. Exact.
    pub axpy: fn(f32, &[f32], &mut [f32]),
    /// `kahan_rows(acc, comp, src, rows, stride)`: the rows
    /// `src[i * stride..][..acc.len()]`, `i < rows`, added in order into the
    /// columns by Kahan summation (`acc[j] += row[j]` with the running
    /// compensation `comp[j]`, reset to 0 where the sum is not finite): a
    /// column sum, or one compensated step with `rows = 1`. Panics unless
    /// `comp` has `acc`'s length and the rows fit in `src`. Exact.
    pub kahan_rows: fn(&mut [f32], &mut [f32], &[f32], usize, usize),

    /// Sum (0 if empty). Deterministic per ISA; order in
    /// `kernels::generic::reduce` (SIMD) and pairwise (scalar).
    pub sum: ReduceFn,
    /// Sum of squares, same order as [`sum`](Self::sum).
    pub sum_sq: ReduceFn,
    /// Sum of absolute values (L1 norm), same order as [`sum`](Self::sum).
    pub sum_abs: ReduceFn,
    /// `dot(a, b)`, same order as [`sum`](Self::sum); panics unless the lengths
    /// are equal.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Largest element: NaN if any is NaN, `+0 > -0`, `-inf` if empty. Exact.
    pub max: ReduceFn,
    /// Smallest element: NaN if any is NaN, `-0 < +0`, `+inf` if empty. Exact.
    pub min: ReduceFn,
    /// Largest `|x|`: NaN if any is NaN, 0 if empty. Exact.
    pub max_abs: ReduceFn,
    /// Index of the first largest element; a NaN counts as largest (first NaN
    /// wins), as `torch.argmax`. Panics if empty. Exact.
    pub argmax: fn(&[f32]) -> usize,
    /// Index of the first smallest element; the first NaN wins. Panics if empty.
    /// Exact.
    pub argmin: fn(&[f32]) -> usize,

    /// `softmax(x, out)` of one row: `e^(x - max) * (1 / sum)`, the sum in the
    /// order of [`sum`](Self::sum). `e^(x - max)` gets the rounding error of
    /// the subtraction as a low part, so each element is within about 2 ulp
    /// plus the sum's relative error (measured against `f64` on random rows in
    /// `[-20, 20]`: 1.5 ulp at 1024 elements, 2.7 at 1e5; the plain formula,
    /// as in PyTorch, is 30 ulp off there). A row of all `-inf`, or one holding
    /// `+inf` or NaN, gives NaN (as PyTorch).
    pub softmax: MapFn,
    /// `softmax_rows(x, out, len)`: [`softmax`](Self::softmax) of each row of
    /// `len` elements (same bits), for `x.len() == out.len()` a multiple of
    /// `len`; panics if the lengths differ. One row's scaling pass runs after
    /// the next row's range pass, hiding the latency between passes. Present
    /// on the 32-register ISAs (AVX-512, where it measured 11 % faster than
    /// a call per row, and NEON); `None` on AVX2 (4 % slower there) and the
    /// scalar table.
    pub softmax_rows: Option<RowsFn>,
    /// In-place [`softmax`](Self::softmax).
    pub softmax_inplace: InplaceFn,
    /// `log_softmax(x, out)` of one row: `(x - max) - ln(sum(e^(x - max)))`;
    /// error within `2 eps (|x - max| + ln(sum) + 1)` (1.7 measured; the `+ 1`
    /// is the absolute error of `ln(sum)` when `sum` is near 1). Special rows
    /// as [`softmax`](Self::softmax).
    pub log_softmax: MapFn,
    /// `log_softmax_rows(x, out, len)`: [`log_softmax`](Self::log_softmax)
    /// of each row of `len` elements (same bits), for `x.len() == out.len()`
    /// a multiple of `len`; panics if the lengths differ. Short rows (a
    /// classifier's logits) go four at a time with their steps interleaved.
    pub log_softmax_rows: RowsFn,
    /// In-place [`log_softmax`](Self::log_softmax).
    pub log_softmax_inplace: InplaceFn,
    /// `ln(sum(e^x))` of one row as `torch.logsumexp`: all `-inf` (or empty)
    /// gives `-inf`, any `+inf` gives `+inf`, NaN gives NaN.
    pub logsumexp: ReduceFn,
    /// `softmax_backward(y, g, out)` from the output: `y (g - <g, y>)`; panics
    /// unless all three lengths are equal.
    pub softmax_backward: ZipFn,
    /// `log_softmax_backward(y, g, out)` from the output: `g - e^y sum(g)`;
    /// panics unless all three lengths are equal.
    pub log_softmax_backward: ZipFn,

    /// `copy_strided(src, stride, out)`: `out[i] = src[i * stride]` (stride 0
    /// broadcasts `src[0]`); panics if the last index is outside `src`. Exact.
    pub copy_strided: fn(&[f32], usize, &mut [f32]),
    /// `transpose(src, rows, cols, src_row_stride, out)`: writes the `cols x
    /// rows` transpose of the `rows x cols` block at the start of `src`
    /// (`out[j * rows + i] = src[i * src_row_stride + j]`), in cache tiles.
    /// Panics unless `out.len() == rows * cols`, `src_row_stride >= cols` and
    /// the block fits in `src`. Exact.
    pub transpose: fn(&[f32], usize, usize, usize, &mut [f32]),

    /// One fused Adam/AdamW (optionally AMSGrad) update of a parameter:
    /// `adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, step)`. Bit-identical
    /// to [`optim::adam_scalar`](super::optim::adam_scalar) on every ISA;
    /// panics unless all lengths are equal.
    pub adam: AdamFn,
    /// One fused SGD update (momentum, dampening, Nesterov, weight decay,
    /// maximize) of a parameter: `sgd(p, g, momentum_buffer, step)`.
    /// Bit-identical to [`optim::sgd_scalar`](super::optim::sgd_scalar) on
    /// every ISA; panics unless the lengths are equal.
    pub sgd: SgdFn,
}

/// See [`Kernels::sgd`].
pub type SgdFn = fn(&mut [f32], &[f32], Option<&mut [f32]>, &super::optim::SgdStep);

/// See [`Kernels::adam`].
pub type AdamFn =
    fn(&mut [f32], &[f32], &mut [f32], &mut [f32], Option<&mut [f32]>, &super::optim::AdamStep);

/// A scalar [`Unary`] from an element function.
macro_rules! scalar_unary {
    ($name:literal, $f:path) => {
        Unary {
            map: |x: &[f32], out: &mut [f32]| scalar::map($name, x, out, $f),
            map_inplace: |buf: &mut [f32]| scalar::map_inplace(buf, $f),
        }
    };
}

/// A scalar [`Binary`] from an element function.
macro_rules! scalar_binary {
    ($name:literal, $f:expr) => {
        Binary {
            map: |a: &[f32], b: &[f32], out: &mut [f32]| scalar::zip($name, a, b, out, $f),
            map_inplace: |acc: &mut [f32], b: &[f32]| scalar::zip_inplace($name, acc, b, $f),
        }
    };
}

/// A comparison as 1.0 / 0.0.
macro_rules! cmp {
    ($op:tt) => {
        |a: f32, b: f32| if a $op b { 1.0 } else { 0.0 }
    };
}

/// The portable reference table.
pub(crate) static SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    neg: scalar_unary!("neg", scalar::neg),
    abs: scalar_unary!("abs", scalar::abs),
    exp: scalar_unary!("exp", scalar::exp),
    log: scalar_unary!("log", scalar::log),
    log1p: scalar_unary!("log1p", scalar::log1p),
    sqrt: scalar_unary!("sqrt", scalar::sqrt),
    rsqrt: scalar_unary!("rsqrt", scalar::rsqrt),
    sin: scalar_unary!("sin", scalar::sin),
    cos: scalar_unary!("cos", scalar::cos),
    tanh: scalar_unary!("tanh", scalar::tanh),
    erf: scalar_unary!("erf", scalar::erf),
    relu: scalar_unary!("relu", scalar::relu),
    sigmoid: scalar_unary!("sigmoid", scalar::sigmoid),
    gelu: scalar_unary!("gelu", scalar::gelu),
    gelu_tanh: scalar_unary!("gelu_tanh", scalar::gelu_tanh),
    silu: scalar_unary!("silu", scalar::silu),
    softplus: scalar_unary!("softplus", scalar::softplus),
    recip: scalar_unary!("recip", scalar::recip),
    square: scalar_unary!("square", scalar::square),
    floor: scalar_unary!("floor", scalar::floor),
    ceil: scalar_unary!("ceil", scalar::ceil),
    round: scalar_unary!("round", scalar::round),
    trunc: scalar_unary!("trunc", scalar::trunc),
    sign: scalar_unary!("sign", scalar::sign),

    leaky_relu: |x, s, out| scalar::map("leaky_relu", x, out, |v| scalar::leaky_relu(v, s)),
    leaky_relu_inplace: |buf, s| scalar::map_inplace(buf, |v| scalar::leaky_relu(v, s)),
    clamp: |x, lo, hi, out| scalar::map("clamp", x, out, |v| scalar::clamp(v, lo, hi)),
    clamp_inplace: |buf, lo, hi| scalar::map_inplace(buf, |v| scalar::clamp(v, lo, hi)),
    pow_scalar: scalar::pow_scalar_slice,
    pow_scalar_inplace: scalar::pow_scalar_slice_inplace,
    affine: |x, a, b, out| scalar::map("affine", x, out, |v| scalar::affine(v, a, b)),
    affine_inplace: |buf, a, b| scalar::map_inplace(buf, |v| scalar::affine(v, a, b)),

    add: scalar_binary!("add", |a, b| a + b),
    sub: scalar_binary!("sub", |a, b| a - b),
    mul: scalar_binary!("mul", |a, b| a * b),
    div: scalar_binary!("div", |a, b| a / b),
    maximum: scalar_binary!("maximum", scalar::maximum),
    minimum: scalar_binary!("minimum", scalar::minimum),
    pow: Binary {
        map: scalar::pow_slice,
        map_inplace: scalar::pow_slice_inplace,
    },
    eq: scalar_binary!("eq", cmp!(==)),
    ne: scalar_binary!("ne", cmp!(!=)),
    lt: scalar_binary!("lt", cmp!(<)),
    le: scalar_binary!("le", cmp!(<=)),
    gt: scalar_binary!("gt", cmp!(>)),
    ge: scalar_binary!("ge", cmp!(>=)),

    relu_backward: |x, g, out| scalar::zip("relu_backward", x, g, out, scalar::relu_backward),
    leaky_relu_backward: |x, g, s, out| {
        scalar::zip("leaky_relu_backward", x, g, out, |a, b| {
            scalar::leaky_relu_backward(a, b, s)
        })
    },
    sigmoid_backward: |y, g, out| {
        scalar::zip("sigmoid_backward", y, g, out, scalar::sigmoid_backward)
    },
    tanh_backward: |y, g, out| scalar::zip("tanh_backward", y, g, out, scalar::tanh_backward),
    gelu_backward: |x, g, out| scalar::zip("gelu_backward", x, g, out, scalar::gelu_backward),
    gelu_tanh_backward: |x, g, out| {
        scalar::zip("gelu_tanh_backward", x, g, out, scalar::gelu_tanh_backward)
    },
    silu_backward: |x, g, out| scalar::zip("silu_backward", x, g, out, scalar::silu_backward),
    softplus_backward: |x, g, out| {
        scalar::zip("softplus_backward", x, g, out, scalar::softplus_backward)
    },
    axpy: scalar::axpy,
    kahan_rows: scalar::kahan_rows,

    sum: scalar::sum,
    sum_sq: scalar::sum_sq,
    sum_abs: scalar::sum_abs,
    dot: scalar::dot,
    max: scalar::max,
    min: scalar::min,
    max_abs: scalar::max_abs,
    argmax: scalar::argmax,
    argmin: scalar::argmin,

    softmax: scalar::softmax,
    softmax_rows: None,
    softmax_inplace: scalar::softmax_inplace,
    log_softmax: scalar::log_softmax,
    log_softmax_rows: scalar::log_softmax_rows,
    log_softmax_inplace: scalar::log_softmax_inplace,
    logsumexp: scalar::logsumexp,
    softmax_backward: scalar::softmax_backward,
    log_softmax_backward: scalar::log_softmax_backward,

    adam: super::optim::adam_scalar,
    sgd: super::optim::sgd_scalar,
    copy_strided: scalar::copy_strided,
    transpose: scalar::transpose,
};

/// A SIMD [`Unary`] from an op type of `generic::ops`.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
macro_rules! simd_unary {
    ($wrap:ident, $L:ty, $name:literal, $op:ident) => {
        $crate::kernels::table::Unary {
            map: $wrap!(
                $L,
                (x: &[f32], out: &mut [f32]),
                $crate::kernels::generic::map,
                [$name, &$crate::kernels::generic::ops::$op]
            ),
            map_inplace: $wrap!(
                $L,
                (buf: &mut [f32]),
                $crate::kernels::generic::map_inplace,
                [&$crate::kernels::generic::ops::$op]
            ),
        }
    };
}

/// A SIMD [`Unary`] from a guarded op type of `generic::ops` (see
/// `generic::map_guarded`): blocks outside the op's fast domain go through a
/// plain map of the op compiled as a kernel of its own.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
macro_rules! simd_guarded {
    ($wrap:ident, $L:ty, $name:literal, $op:ident) => {
        $crate::kernels::table::Unary {
            map: $wrap!(
                $L,
                (x: &[f32], out: &mut [f32]),
                $crate::kernels::generic::map_guarded,
                [
                    $name,
                    &$crate::kernels::generic::ops::$op,
                    $wrap!(
                        $L,
                        (x: &[f32], out: &mut [f32]),
                        $crate::kernels::generic::map,
                        [$name, &$crate::kernels::generic::ops::$op]
                    )
                ]
            ),
            map_inplace: $wrap!(
                $L,
                (buf: &mut [f32]),
                $crate::kernels::generic::map_inplace_guarded,
                [
                    &$crate::kernels::generic::ops::$op,
                    $wrap!(
                        $L,
                        (buf: &mut [f32]),
                        $crate::kernels::generic::map_inplace,
                        [&$crate::kernels::generic::ops::$op]
                    )
                ]
            ),
        }
    };
}

/// A SIMD [`Binary`] from an op type of `generic::ops`.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
macro_rules! simd_binary {
    ($wrap:ident, $L:ty, $name:literal, $op:ident) => {
        $crate::kernels::table::Binary {
            map: $wrap!(
                $L,
                (a: &[f32], b: &[f32], out: &mut [f32]),
                $crate::kernels::generic::zip,
                [$name, &$crate::kernels::generic::ops::$op]
            ),
            map_inplace: $wrap!(
                $L,
                (acc: &mut [f32], b: &[f32]),
                $crate::kernels::generic::zip_inplace,
                [$name, &$crate::kernels::generic::ops::$op]
            ),
        }
    };
}

/// A SIMD backward kernel (a zip `(x or y, g)`) from an op type.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
macro_rules! simd_backward {
    ($wrap:ident, $L:ty, $name:literal, $op:ident) => {
        $wrap!(
            $L,
            (x: &[f32], g: &[f32], out: &mut [f32]),
            $crate::kernels::generic::zip,
            [$name, &$crate::kernels::generic::ops::$op]
        )
    };
}

/// Builds the [`Kernels`] table of one ISA.
///
/// `$L` is the ISA's capability token (implementing `Lanes`), `$isa` its
/// [`Isa`], and `$wrap` the ISA's wrapper macro, invoked as
/// `$wrap!(L, (arg: Type, ...) -> Ret, body, [leading args])`: it must expand
/// to a safe `fn` pointer whose body calls `body(token, leading..., args...)`
/// with the ISA's target features enabled.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
macro_rules! simd_table {
    ($L:ty, $isa:expr, $wrap:ident) => {{
        use $crate::kernels::generic::{ops, reduce};
        use $crate::kernels::table::{
            Kernels, simd_backward as bwd, simd_binary as bin, simd_guarded as guarded,
            simd_unary as un,
        };
        Kernels {
            isa: $isa,
            neg: un!($wrap, $L, "neg", Neg),
            abs: un!($wrap, $L, "abs", Abs),
            exp: guarded!($wrap, $L, "exp", Exp),
            log: un!($wrap, $L, "log", Log),
            log1p: un!($wrap, $L, "log1p", Log1p),
            sqrt: un!($wrap, $L, "sqrt", Sqrt),
            rsqrt: un!($wrap, $L, "rsqrt", Rsqrt),
            sin: un!($wrap, $L, "sin", Sin),
            cos: un!($wrap, $L, "cos", Cos),
            tanh: $crate::kernels::table::Unary {
                map: $wrap!(
                    $L,
                    (x: &[f32], out: &mut [f32]),
                    $crate::kernels::generic::map_staged,
                    ["tanh", &ops::Tanh]
                ),
                map_inplace: $wrap!(
                    $L,
                    (buf: &mut [f32]),
                    $crate::kernels::generic::map_inplace_staged,
                    ["tanh", &ops::Tanh]
                ),
            },
            erf: un!($wrap, $L, "erf", Erf),
            relu: un!($wrap, $L, "relu", Relu),
            sigmoid: guarded!($wrap, $L, "sigmoid", Sigmoid),
            gelu: un!($wrap, $L, "gelu", Gelu),
            gelu_tanh: un!($wrap, $L, "gelu_tanh", GeluTanh),
            silu: un!($wrap, $L, "silu", Silu),
            softplus: un!($wrap, $L, "softplus", Softplus),
            recip: un!($wrap, $L, "recip", Recip),
            square: un!($wrap, $L, "square", Square),
            floor: un!($wrap, $L, "floor", Floor),
            ceil: un!($wrap, $L, "ceil", Ceil),
            round: un!($wrap, $L, "round", Round),
            trunc: un!($wrap, $L, "trunc", Trunc),
            sign: un!($wrap, $L, "sign", Sign),

            leaky_relu: $wrap!($L, (x: &[f32], s: f32, out: &mut [f32]), ops::leaky_relu, []),
            leaky_relu_inplace: $wrap!($L, (buf: &mut [f32], s: f32), ops::leaky_relu_inplace, []),
            clamp: $wrap!($L, (x: &[f32], lo: f32, hi: f32, out: &mut [f32]), ops::clamp, []),
            clamp_inplace: $wrap!($L, (buf: &mut [f32], lo: f32, hi: f32), ops::clamp_inplace, []),
            pow_scalar: $wrap!($L, (x: &[f32], p: f32, out: &mut [f32]), ops::pow_scalar, []),
            pow_scalar_inplace: $wrap!($L, (buf: &mut [f32], p: f32), ops::pow_scalar_inplace, []),
            affine: $wrap!($L, (x: &[f32], a: f32, b: f32, out: &mut [f32]), ops::affine, []),
            affine_inplace: $wrap!($L, (buf: &mut [f32], a: f32, b: f32), ops::affine_inplace, []),

            add: bin!($wrap, $L, "add", Add),
            sub: bin!($wrap, $L, "sub", Sub),
            mul: bin!($wrap, $L, "mul", Mul),
            div: bin!($wrap, $L, "div", Div),
            maximum: bin!($wrap, $L, "maximum", Maximum),
            minimum: bin!($wrap, $L, "minimum", Minimum),
            pow: $crate::kernels::table::Binary {
                map: $crate::kernels::scalar::pow_slice,
                map_inplace: $crate::kernels::scalar::pow_slice_inplace,
            },
            eq: bin!($wrap, $L, "eq", Eq),
            ne: bin!($wrap, $L, "ne", Ne),
            lt: bin!($wrap, $L, "lt", Lt),
            le: bin!($wrap, $L, "le", Le),
            gt: bin!($wrap, $L, "gt", Gt),
            ge: bin!($wrap, $L, "ge", Ge),

            relu_backward: bwd!($wrap, $L, "relu_backward", ReluBackward),
            leaky_relu_backward: $wrap!(
                $L,
                (x: &[f32], g: &[f32], s: f32, out: &mut [f32]),
                ops::leaky_relu_backward,
                []
            ),
            sigmoid_backward: bwd!($wrap, $L, "sigmoid_backward", SigmoidBackward),
            tanh_backward: bwd!($wrap, $L, "tanh_backward", TanhBackward),
            gelu_backward: bwd!($wrap, $L, "gelu_backward", GeluBackward),
            gelu_tanh_backward: bwd!($wrap, $L, "gelu_tanh_backward", GeluTanhBackward),
            silu_backward: bwd!($wrap, $L, "silu_backward", SiluBackward),
            softplus_backward: bwd!($wrap, $L, "softplus_backward", SoftplusBackward),
            axpy: $wrap!($L, (alpha: f32, x: &[f32], y: &mut [f32]), ops::axpy, []),
            kahan_rows: $wrap!(
                $L,
                (acc: &mut [f32], comp: &mut [f32], src: &[f32], rows: usize, stride: usize),
                ops::kahan_rows,
                []
            ),

            sum: $wrap!($L, (x: &[f32]) -> f32, reduce::sum, []),
            sum_sq: $wrap!($L, (x: &[f32]) -> f32, reduce::sum_sq, []),
            sum_abs: $wrap!($L, (x: &[f32]) -> f32, reduce::sum_abs, []),
            dot: $wrap!($L, (a: &[f32], b: &[f32]) -> f32, reduce::dot, []),
            max: $wrap!($L, (x: &[f32]) -> f32, reduce::max, []),
            min: $wrap!($L, (x: &[f32]) -> f32, reduce::min, []),
            max_abs: $wrap!($L, (x: &[f32]) -> f32, reduce::max_abs, []),
            argmax: $wrap!($L, (x: &[f32]) -> usize, reduce::argmax, []),
            argmin: $wrap!($L, (x: &[f32]) -> usize, reduce::argmin, []),

            softmax: $wrap!(
                $L,
                (x: &[f32], out: &mut [f32]),
                reduce::softmax,
                [$wrap!(
                    $L,
                    (m: f32, x: &[f32], out: &mut [f32]),
                    reduce::exp_shift_apply,
                    []
                )]
            ),
            softmax_rows: if <$L as $crate::kernels::lanes::Lanes>::REGISTERS >= 32 {
                Some($wrap!(
                    $L,
                    (x: &[f32], out: &mut [f32], len: usize),
                    reduce::softmax_rows,
                    [$wrap!(
                        $L,
                        (m: f32, x: &[f32], out: &mut [f32]),
                        reduce::exp_shift_apply,
                        []
                    )]
                ))
            } else {
                None
            },
            softmax_inplace: $wrap!(
                $L,
                (buf: &mut [f32]),
                reduce::softmax_inplace,
                [$wrap!(
                    $L,
                    (m: f32, buf: &mut [f32]),
                    reduce::exp_shift_apply_inplace,
                    []
                )]
            ),
            log_softmax: $wrap!($L, (x: &[f32], out: &mut [f32]), reduce::log_softmax, []),
            log_softmax_rows: $wrap!(
                $L,
                (x: &[f32], out: &mut [f32], len: usize),
                reduce::log_softmax_rows,
                []
            ),
            log_softmax_inplace: $wrap!($L, (buf: &mut [f32]), reduce::log_softmax_inplace, []),
            logsumexp: $wrap!($L, (x: &[f32]) -> f32, reduce::logsumexp, []),
            softmax_backward: $wrap!(
                $L,
                (y: &[f32], g: &[f32], out: &mut [f32]),
                reduce::softmax_backward,
                []
            ),
            log_softmax_backward: $wrap!(
                $L,
                (y: &[f32], g: &[f32], out: &mut [f32]),
                reduce::log_softmax_backward,
                []
            ),

            copy_strided: $crate::kernels::scalar::copy_strided,
            transpose: $crate::kernels::scalar::transpose,
            adam: $wrap!(
                $L,
                (
                    p: &mut [f32],
                    g: &[f32],
                    m: &mut [f32],
                    v: &mut [f32],
                    vmax: Option<&mut [f32]>,
                    s: &$crate::kernels::optim::AdamStep
                ),
                $crate::kernels::optim::adam,
                []
            ),
            sgd: $wrap!(
                $L,
                (
                    p: &mut [f32],
                    g: &[f32],
                    buf: Option<&mut [f32]>,
                    s: &$crate::kernels::optim::SgdStep
                ),
                $crate::kernels::optim::sgd,
                []
            ),
        }
    }};
}

#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
pub(crate) use {simd_backward, simd_binary, simd_guarded, simd_table, simd_unary};
