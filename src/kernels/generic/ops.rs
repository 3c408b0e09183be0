//! The element-wise operations as [`VMap`]/[`VZip`] types, and the entry points
//! of the kernels that take scalar parameters.
//!
//! Each operation computes exactly the formula of its element function in
//! [`crate::kernels::scalar`], step for step, so the exact ones (arithmetic,
//! comparisons, `relu`, `maximum`, ...) are bit-identical to the scalar path;
//! the transcendental ones differ by the error of `generic::math`.

use super::{VMap, VStaged, VZip, map, map_inplace, math, zip, zip_inplace};
use crate::kernels::{check, lanes::Lanes, scalar};

/// Declares zero-sized [`VMap`] types: `Name => |l, v| body;`.
macro_rules! unary_ops {
    ($($(#[$m:meta])* $name:ident => |$l:ident, $v:ident| $body:expr;)*) => {$(
        $(#[$m])*
        pub(crate) struct $name;
        impl<L: Lanes> VMap<L> for $name {
            #[inline(always)]
            fn apply(&self, $l: L, $v: L::V) -> L::V {
                $body
            }
        }
    )*};
}

/// `tanh x`, staged: `e^(2|x|) - 1` first, the quotient (or the small-`x`
/// polynomial) second.
pub(crate) struct Tanh;
impl<L: Lanes> VMap<L> for Tanh {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        self.second(l, v, self.first(l, v))
    }
}
impl<L: Lanes> VStaged<L> for Tanh {
    #[inline(always)]
    fn first(&self, l: L, x: L::V) -> L::V {
        math::tanh_expm1(l, x)
    }
    #[inline(always)]
    fn second(&self, l: L, x: L::V, e: L::V) -> L::V {
        math::tanh_from(l, x, e)
    }
}

/// Declares zero-sized [`VZip`] types: `Name => |l, a, b| body;`.
macro_rules! binary_ops {
    ($($(#[$m:meta])* $name:ident => |$l:ident, $a:ident, $b:ident| $body:expr;)*) => {$(
        $(#[$m])*
        pub(crate) struct $name;
        impl<L: Lanes> VZip<L> for $name {
            #[inline(always)]
            fn apply(&self, $l: L, $a: L::V, $b: L::V) -> L::V {
                $body
            }
        }
    )*};
}

/// 1.0 where `m` is set, else 0.0.
#[inline(always)]
fn one_if<L: Lanes>(l: L, m: L::M) -> L::V {
    l.select(m, l.splat(1.0), l.splat(0.0))
}

unary_ops! {
    /// `-x`
    Neg => |l, v| l.neg(v);
    /// `|x|`
    Abs => |l, v| l.abs(v);
    /// `ln x`
    Log => |l, v| math::log(l, v);
    /// `ln(1 + x)`
    Log1p => |l, v| math::log1p(l, v);
    /// `sqrt x`
    Sqrt => |l, v| l.sqrt(v);
    /// `1 / sqrt x`
    Rsqrt => |l, v| l.div(l.splat(1.0), l.sqrt(v));
    /// `sin x`
    Sin => |l, v| math::sin(l, v);
    /// `cos x`
    Cos => |l, v| math::cos(l, v);
    /// `erf x`
    Erf => |l, v| math::erf(l, v);
    /// `max(x, 0)`, NaN kept
    Relu => |l, v| l.select(l.le(v, l.splat(0.0)), l.splat(0.0), v);
    /// exact GELU
    Gelu => |l, v| math::gelu(l, v);
    /// tanh GELU
    GeluTanh => |l, v| math::gelu_tanh(l, v);
    /// `x sigmoid(x)`
    Silu => |l, v| math::silu(l, v);
    /// softplus, threshold 20
    Softplus => |l, v| math::softplus(l, v);
    /// `1 / x`
    Recip => |l, v| l.div(l.splat(1.0), v);
    /// `x * x`
    Square => |l, v| l.mul(v, v);
    /// `x * x * x`
    Cube => |l, v| l.mul(l.mul(v, v), v);
    /// `1 / (x * x)`
    InvSquare => |l, v| l.div(l.splat(1.0), l.mul(v, v));
    /// 1 everywhere (`x^0`)
    One => |l, _v| l.splat(1.0);
    /// `x`
    Identity => |_l, v| v;
    /// round down
    Floor => |l, v| l.floor(v);
    /// round up
    Ceil => |l, v| l.ceil(v);
    /// round half to even
    Round => |l, v| l.round(v);
    /// round toward zero
    Trunc => |l, v| l.trunc(v);
    /// `(0 < x) - (x < 0)`
    Sign => |l, v| l.sub(one_if(l, l.lt(l.splat(0.0), v)), one_if(l, l.lt(v, l.splat(0.0))));
}

/// Declares zero-sized [`VMap`] types guarded on `exp`'s fast domain
/// (`|x| <= 87`, see `math::exp_outside`): `Name => |l, v| apply, fast;`.
macro_rules! exp_guarded_ops {
    ($($(#[$m:meta])* $name:ident => |$l:ident, $v:ident| $apply:expr, $fast:expr;)*) => {$(
        $(#[$m])*
        pub(crate) struct $name;
        impl<L: Lanes> VMap<L> for $name {
            #[inline(always)]
            fn apply(&self, $l: L, $v: L::V) -> L::V {
                $apply
            }
            const FAST_BOUND: f32 = math::EXP_FAST_MAX;
            #[inline(always)]
            fn guard(&self, _l: L, v: L::V) -> L::V {
                v
            }
            #[inline(always)]
            fn fast(&self, $l: L, $v: L::V) -> L::V {
                $fast
            }
        }
    )*};
}

exp_guarded_ops! {
    /// `e^x`; blocks with every `|x| <= 87` skip the clamp and the split
    /// scaling.
    Exp => |l, v| math::exp(l, v), math::exp_fast(l, v, None);
    /// Logistic sigmoid; blocks with every `|x| <= 87` take `1 / (1 + e^-x)`
    /// alone.
    Sigmoid => |l, v| math::sigmoid(l, v), math::sigmoid_fast(l, v);
}

binary_ops! {
    /// `a + b`
    Add => |l, a, b| l.add(a, b);
    /// `a - b`
    Sub => |l, a, b| l.sub(a, b);
    /// `a * b`
    Mul => |l, a, b| l.mul(a, b);
    /// `a / b`
    Div => |l, a, b| l.div(a, b);
    /// `torch.maximum`
    Maximum => |l, a, b| {
        let r = l.select(l.eq(a, b), l.and(a, b), l.max(a, b));
        l.select(l.mor(l.is_nan(a), l.is_nan(b)), l.add(a, b), r)
    };
    /// `torch.minimum`
    Minimum => |l, a, b| {
        let r = l.select(l.eq(a, b), l.or(a, b), l.min(a, b));
        l.select(l.mor(l.is_nan(a), l.is_nan(b)), l.add(a, b), r)
    };
    /// `a == b` as 1.0/0.0
    Eq => |l, a, b| one_if(l, l.eq(a, b));
    /// `a != b` as 1.0/0.0
    Ne => |l, a, b| one_if(l, l.ne(a, b));
    /// `a < b` as 1.0/0.0
    Lt => |l, a, b| one_if(l, l.lt(a, b));
    /// `a <= b` as 1.0/0.0
    Le => |l, a, b| one_if(l, l.le(a, b));
    /// `a > b` as 1.0/0.0
    Gt => |l, a, b| one_if(l, l.gt(a, b));
    /// `a >= b` as 1.0/0.0
    Ge => |l, a, b| one_if(l, l.ge(a, b));
    /// ReLU gradient `(x, g)`
    ReluBackward => |l, x, g| l.select(l.le(x, l.splat(0.0)), l.splat(0.0), g);
    /// sigmoid gradient `(y, g)`
    SigmoidBackward => |l, y, g| l.mul(l.mul(g, l.sub(l.splat(1.0), y)), y);
    /// tanh gradient `(y, g)`
    TanhBackward => |l, y, g| l.mul(g, l.sub(l.splat(1.0), l.mul(y, y)));
    /// exact-GELU gradient `(x, g)`
    GeluBackward => |l, x, g| l.mul(g, math::gelu_grad(l, x));
    /// tanh-GELU gradient `(x, g)`
    GeluTanhBackward => |l, x, g| l.mul(g, math::gelu_tanh_grad(l, x));
    /// SiLU gradient `(x, g)`
    SiluBackward => |l, x, g| l.mul(g, math::silu_grad(l, x));
    /// softplus gradient `(x, g)`
    SoftplusBackward => |l, x, g| {
        l.select(l.gt(x, l.splat(20.0)), g, l.mul(g, math::sigmoid(l, x)))
    };
}

/// `x` if `x > 0`, else `x * slope`.
struct LeakyRelu<V> {
    slope: V,
}
impl<L: Lanes> VMap<L> for LeakyRelu<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        l.select(l.gt(v, l.splat(0.0)), v, l.mul(v, self.slope))
    }
}

/// Leaky-ReLU gradient `(x, g)`.
struct LeakyReluBackward<V> {
    slope: V,
}
impl<L: Lanes> VZip<L> for LeakyReluBackward<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, x: L::V, g: L::V) -> L::V {
        l.select(l.gt(x, l.splat(0.0)), g, l.mul(g, self.slope))
    }
}

/// `torch.clamp` with non-NaN bounds.
struct Clamp<V> {
    lo: V,
    hi: V,
}
impl<L: Lanes> VMap<L> for Clamp<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        let r = l.select(l.lt(v, self.lo), self.lo, v);
        l.select(l.gt(r, self.hi), self.hi, r)
    }
}

/// `a * x + b`.
struct Affine<V> {
    a: V,
    b: V,
}
impl<L: Lanes> VMap<L> for Affine<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, v: L::V) -> L::V {
        l.add(l.mul(self.a, v), self.b)
    }
}

/// `y + alpha * x` as a zip `(y, x)`.
struct Axpy<V> {
    alpha: V,
}
impl<L: Lanes> VZip<L> for Axpy<L::V> {
    #[inline(always)]
    fn apply(&self, l: L, y: L::V, x: L::V) -> L::V {
        l.add(y, l.mul(self.alpha, x))
    }
}

/// Leaky ReLU.
#[inline(always)]
pub(crate) fn leaky_relu<L: Lanes>(l: L, x: &[f32], slope: f32, out: &mut [f32]) {
    map(
        l,
        "leaky_relu",
        &LeakyRelu {
            slope: l.splat(slope),
        },
        x,
        out,
    );
}
/// In-place leaky ReLU.
#[inline(always)]
pub(crate) fn leaky_relu_inplace<L: Lanes>(l: L, buf: &mut [f32], slope: f32) {
    map_inplace(
        l,
        &LeakyRelu {
            slope: l.splat(slope),
        },
        buf,
    );
}
/// Leaky-ReLU gradient.
#[inline(always)]
pub(crate) fn leaky_relu_backward<L: Lanes>(
    l: L,
    x: &[f32],
    g: &[f32],
    slope: f32,
    out: &mut [f32],
) {
    let f = LeakyReluBackward {
        slope: l.splat(slope),
    };
    zip(l, "leaky_relu_backward", &f, x, g, out);
}

/// `torch.clamp`.
#[inline(always)]
pub(crate) fn clamp<L: Lanes>(l: L, x: &[f32], lo: f32, hi: f32, out: &mut [f32]) {
    if lo.is_nan() || hi.is_nan() {
        check::same("clamp", x.len(), out.len());
        out.fill(f32::NAN);
        return;
    }
    map(
        l,
        "clamp",
        &Clamp {
            lo: l.splat(lo),
            hi: l.splat(hi),
        },
        x,
        out,
    );
}
/// In-place `torch.clamp`.
#[inline(always)]
pub(crate) fn clamp_inplace<L: Lanes>(l: L, buf: &mut [f32], lo: f32, hi: f32) {
    if lo.is_nan() || hi.is_nan() {
        buf.fill(f32::NAN);
        return;
    }
    map_inplace(
        l,
        &Clamp {
            lo: l.splat(lo),
            hi: l.splat(hi),
        },
        buf,
    );
}

/// `a * x + b`.
#[inline(always)]
pub(crate) fn affine<L: Lanes>(l: L, x: &[f32], a: f32, b: f32, out: &mut [f32]) {
    map(
        l,
        "affine",
        &Affine {
            a: l.splat(a),
            b: l.splat(b),
        },
        x,
        out,
    );
}
/// In-place `a * x + b`.
#[inline(always)]
pub(crate) fn affine_inplace<L: Lanes>(l: L, buf: &mut [f32], a: f32, b: f32) {
    map_inplace(
        l,
        &Affine {
            a: l.splat(a),
            b: l.splat(b),
        },
        buf,
    );
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy<L: Lanes>(l: L, alpha: f32, x: &[f32], y: &mut [f32]) {
    check::same("axpy", x.len(), y.len());
    zip_inplace(
        l,
        "axpy",
        &Axpy {
            alpha: l.splat(alpha),
        },
        y,
        x,
    );
}

/// Bytes of a column strip [`kahan_rows`] prefetches ahead of the row it
/// adds (8 rows of AVX2's 256-byte strips, 4 of AVX-512's 512). Its rows are
/// a row stride apart, often a page or more, where hardware stride
/// prefetchers stop (Intel's follow strides below 2 KiB). Chosen by a sweep
/// of the distance in one run on an Intel Xeon (Emerald Rapids class),
/// column sums of `[1024, 1024]`, one thread, with strips of 4 registers
/// (half today's width, so twice the rows for the same bytes): AVX2 446 us
/// without, 295 / 234 / 215 us at 4 / 8 / 16 rows ahead; AVX-512 211 us
/// without, 159 / 156 / 236 at 4 / 8 / 16. With 8-register strips on Zen 4
/// 4096 bytes measured the same as 2048 (AVX2 110 us, AVX-512 75).
const PREFETCH_BYTES: usize = 2048;

/// [`scalar::kahan_rows`]: strips of columns keep their sums and
/// compensations in registers over every row, each lane taking the same
/// steps as [`scalar::kahan_step`] row by row, so the same bits.
///
/// A strip is 8 registers wide (then 4, 2 and 1 for the columns left,
/// then the partial tail): each register's compensation is a chain of four
/// dependent additions a row, so a strip needs many registers in flight to
/// keep the adders busy (with AVX2's 16 registers the compiler keeps some
/// compensations on the stack, at 6 registers as at 8; 8 measured faster).
/// The rows are first added without the step's reset of a non-finite sum's
/// compensation ([`kahan_reg_finite`]); a sum that leaves the finite range
/// stays non-finite to the end, so where any lane of the strip ends
/// non-finite the strip is added again from its saved sums with the reset
/// ([`kahan_reg`]). Strips of later rows are prefetched
/// ([`PREFETCH_BYTES`] ahead).
#[inline(always)]
pub(crate) fn kahan_rows<L: Lanes>(
    l: L,
    acc: &mut [f32],
    comp: &mut [f32],
    src: &[f32],
    rows: usize,
    stride: usize,
) {
    check::kahan_rows(acc.len(), comp.len(), src.len(), rows, stride);
    let (n, cols) = (L::LANES, acc.len());
    let x = RowBlock { src, rows, stride };
    let mut j = kahan_strips::<L, 8>(l, acc, comp, x, 0);
    j = kahan_strips::<L, 4>(l, acc, comp, x, j);
    j = kahan_strips::<L, 2>(l, acc, comp, x, j);
    j = kahan_strips::<L, 1>(l, acc, comp, x, j);
    if j < cols {
        let (mut a, mut c) = (
            l.load_partial(&acc[j..], 0.0),
            l.load_partial(&comp[j..], 0.0),
        );
        for i in 0..rows {
            let v = l.load_partial(&src[i * stride + j..][..cols - j], 0.0);
            (a, c) = kahan_reg(l, a, c, v);
        }
        l.store_partial(a, &mut acc[j..]);
        l.store_partial(c, &mut comp[j..]);
    }
    debug_assert!(j + n > cols);
}

/// `rows` rows of a matrix, row `i` starting at `src[i * stride]`.
#[derive(Clone, Copy)]
struct RowBlock<'a> {
    src: &'a [f32],
    rows: usize,
    stride: usize,
}

/// The strips of `R` registers of [`kahan_rows`] from column `j` while one
/// fits; returns the first column left.
#[inline(always)]
fn kahan_strips<L: Lanes, const R: usize>(
    l: L,
    acc: &mut [f32],
    comp: &mut [f32],
    x: RowBlock<'_>,
    mut j: usize,
) -> usize {
    let RowBlock { src, rows, stride } = x;
    let n = L::LANES;
    let ahead = (PREFETCH_BYTES / (4 * R * n)).max(1);
    while j + R * n <= acc.len() {
        // (Loops over `u < R`, not `array::from_fn`: a closure would be
        // compiled without the target features.)
        let mut a = [l.splat(0.0); R];
        let mut c = [l.splat(0.0); R];
        for careful in [false, true] {
            for u in 0..R {
                a[u] = l.load(&acc[j + u * n..]);
                c[u] = l.load(&comp[j + u * n..]);
            }
            for i in 0..rows {
                let row = &src[i * stride + j..][..R * n];
                if i + ahead < rows {
                    l.prefetch(&src[(i + ahead) * stride + j..][..R * n]);
                }
                for u in 0..R {
                    let v = l.load(&row[u * n..]);
                    (a[u], c[u]) = if careful {
                        kahan_reg(l, a[u], c[u], v)
                    } else {
                        kahan_reg_finite(l, a[u], c[u], v)
                    };
                }
            }
            if careful {
                break;
            }
            let mut ok = finite(l, a[0]);
            for &au in &a[1..] {
                ok = l.mand(ok, finite(l, au));
            }
            if !l.any(l.mnot(ok)) {
                break;
            }
        }
        for u in 0..R {
            l.store(a[u], &mut acc[j + u * n..]);
            l.store(c[u], &mut comp[j + u * n..]);
        }
        j += R * n;
    }
    j
}

/// [`kahan_reg`] without resetting the compensation of a non-finite sum:
/// the same bits wherever every sum stays finite. Once a sum is infinite or
/// NaN, every later sum of that lane is too (a non-finite value plus
/// anything is non-finite), which [`kahan_strips`] checks at the end.
#[inline(always)]
fn kahan_reg_finite<L: Lanes>(l: L, a: L::V, c: L::V, v: L::V) -> (L::V, L::V) {
    let y = l.sub(v, c);
    let t = l.add(a, y);
    (t, l.sub(l.sub(t, a), y))
}

/// [`scalar::kahan_step`] on every lane: `(acc, c)` after adding `v`.
#[inline(always)]
fn kahan_reg<L: Lanes>(l: L, a: L::V, c: L::V, v: L::V) -> (L::V, L::V) {
    let (t, c) = kahan_reg_finite(l, a, c, v);
    (t, l.select(finite(l, t), c, l.splat(0.0)))
}

/// The lanes of `v` that are finite (`|v| < inf`: false for infinities and
/// NaN, as `is_finite`).
#[inline(always)]
fn finite<L: Lanes>(l: L, v: L::V) -> L::M {
    l.lt(l.abs(v), l.splat(f32::INFINITY))
}

/// `x^p` with the fast paths of [`scalar::pow_scalar`]; other `p` use the
/// scalar `powf` loop.
#[inline(always)]
pub(crate) fn pow_scalar<L: Lanes>(l: L, x: &[f32], p: f32, out: &mut [f32]) {
    const OP: &str = "pow_scalar";
    match p {
        0.0 => map(l, OP, &One, x, out),
        1.0 => map(l, OP, &Identity, x, out),
        2.0 => map(l, OP, &Square, x, out),
        3.0 => map(l, OP, &Cube, x, out),
        -2.0 => map(l, OP, &InvSquare, x, out),
        0.5 => map(l, OP, &Sqrt, x, out),
        -0.5 => map(l, OP, &Rsqrt, x, out),
        -1.0 => map(l, OP, &Recip, x, out),
        _ => scalar::pow_scalar_slice(x, p, out),
    }
}
/// In-place `x^p`.
#[inline(always)]
pub(crate) fn pow_scalar_inplace<L: Lanes>(l: L, buf: &mut [f32], p: f32) {
    match p {
        0.0 => buf.fill(1.0),
        1.0 => {}
        2.0 => map_inplace(l, &Square, buf),
        3.0 => map_inplace(l, &Cube, buf),
        -2.0 => map_inplace(l, &InvSquare, buf),
        0.5 => map_inplace(l, &Sqrt, buf),
        -0.5 => map_inplace(l, &Rsqrt, buf),
        -1.0 => map_inplace(l, &Recip, buf),
        _ => scalar::pow_scalar_slice_inplace(buf, p),
    }
}
