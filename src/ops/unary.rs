//! Unary element-wise math and activations, with their gradients.
//!
//! Every op is one row: a scalar forward function and a scalar backward
//! function `(grad, saved) -> input grad`, where `saved` is the op's input or
//! (where the derivative is cheaper from it: `exp`, `sqrt`, `rsqrt`, `sigmoid`,
//! `tanh`, `relu`, `reciprocal`) its output, saved detached. The scalar
//! functions live in [`f`]; the kernel table can replace a row's loop without
//! touching the others.
//!
//! Semantics follow PyTorch, including the gradient at kinks (`relu'(0) = 0`,
//! `abs'(0) = 0`, `leaky_relu'(0) = slope`, `clamp` gives 0 at its bounds,
//! `sqrt'(0) = inf`) and NaN handling (NaN inputs give NaN
//! outputs; `relu` passes the gradient of a NaN element, `clamp` and `abs` do
//! not). Where PyTorch computes a gradient with a select (`where`), the
//! unselected gradient is an exact 0 even if the incoming gradient is
//! infinite; where it multiplies, it multiplies here too.
//!
//! Each op has a `try_` form that returns `Err` only when memory runs out
//! (or, for [`clamp`](Tensor::clamp), when no bound is given) and a plain
//! form that panics with the same message.

use alloc::vec;

use super::{kern, map_binary, map_unary};
use crate::kernels::table as k;

/// A slice kernel from a scalar function.
fn each(f: impl Fn(f32) -> f32 + Sync) -> impl Fn(&[f32], &mut [f32]) + Sync {
    move |x, o| kern::map(x, o, &f)
}

/// A gradient kernel `(g, saved) -> input grad` from a scalar function.
fn each2(
    f: impl Fn(f32, f32) -> f32 + Send + Sync,
) -> impl Fn(&[f32], &[f32], &mut [f32]) + Send + Sync {
    move |g, s, o| kern::zip(g, s, o, &f)
}

/// A table gradient kernel taking `(x_or_y, g)`, called with `(g, saved)`.
fn swapped(f: fn(&[f32], &[f32], &mut [f32])) -> impl Fn(&[f32], &[f32], &mut [f32]) + Send + Sync {
    move |g, s, o| f(s, g, o)
}
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::Tensor;

/// Scalar forward and backward functions (libm, so every target computes the
/// same values).
pub(crate) mod f {
    use libm::{expf, log1pf, powf, sqrtf};

    /// `1 / (1 + e^-x)`.
    #[inline]
    pub(crate) fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + expf(-x))
    }

    /// `log(1 + e^(beta x)) / beta`, or `x` where `beta x > threshold`.
    #[inline]
    pub(crate) fn softplus(x: f32, beta: f32, threshold: f32) -> f32 {
        let bx = x * beta;
        if bx > threshold {
            x
        } else {
            log1pf(expf(bx)) / beta
        }
    }

    /// `g * sigmoid(beta x)`, or `g` where `beta x > threshold`.
    #[inline]
    pub(crate) fn softplus_grad(g: f32, x: f32, beta: f32, threshold: f32) -> f32 {
        let bx = x * beta;
        if bx > threshold {
            g
        } else {
            let z = expf(bx);
            g * z / (z + 1.0)
        }
    }

    /// `x^p` as PyTorch computes `pow(tensor, scalar)`: exactly 1 for `p = 0`
    /// (even for NaN), `x` for `p = 1`, and `sqrt`, products or reciprocals for
    /// `p` in {0.5, 2, 3, -0.5, -1, -2} (so `(-inf)^0.5` is NaN, as `sqrt`);
    /// `powf` otherwise (C semantics: a negative base with an integral
    /// exponent is real, with a fractional one NaN; `0^-1 = inf`).
    #[inline]
    pub(crate) fn pow(x: f32, p: f32) -> f32 {
        if p == 0.0 {
            1.0
        } else if p == 1.0 {
            x
        } else if p == 0.5 {
            sqrtf(x)
        } else if p == 2.0 {
            x * x
        } else if p == 3.0 {
            x * x * x
        } else if p == -0.5 {
            1.0 / sqrtf(x)
        } else if p == -1.0 {
            1.0 / x
        } else if p == -2.0 {
            1.0 / (x * x)
        } else {
            powf(x, p)
        }
    }
}

/// Which tensor a backward function reads besides the incoming gradient.
#[derive(Clone, Copy)]
enum Saved {
    Input,
    Output,
}

/// Generates the plain (panicking) form of an argument-less `try_` method.
macro_rules! plain {
    ($(#[$doc:meta])* $name:ident, $try_name:ident) => {
        $(#[$doc])*
        ///
        /// # Panics
        #[doc = concat!("If memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        pub fn $name(&self) -> Tensor {
            unwrap(self.$try_name())
        }
    };
}

impl Tensor {
    /// Shared body of every unary op: `out = fwd(x)` element-wise through the
    /// engine; if recording, `name`'s backward maps `(g, saved)` to the input
    /// gradient with `bwd`, where `saved` is the detached input or output.
    fn unary_op<B>(
        &self,
        name: &'static str,
        fwd: impl Fn(&[f32], &mut [f32]) + Sync,
        saved: Saved,
        bwd: B,
    ) -> Result<Tensor>
    where
        B: Fn(&[f32], &[f32], &mut [f32]) + Send + Sync + 'static,
    {
        let out = map_unary(self, fwd)?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let s = match saved {
            Saved::Input => self.detach(),
            Saved::Output => out.detach(),
        };
        Ok(out.record(name, &[self], move |g, _| {
            Ok(vec![Some(map_binary(name, g, &s, &bwd)?)])
        }))
    }

    plain!(
        /// `|x|`. Gradient `sign(x)` (0 at 0 and for NaN).
        abs, try_abs
    );
    plain!(
        /// `e^x`.
        exp, try_exp
    );
    plain!(
        /// Natural logarithm: `-inf` at 0, NaN below 0.
        log, try_log
    );
    plain!(
        /// Square root: NaN below 0; gradient `1 / (2 sqrt x)`, `inf` at 0.
        sqrt, try_sqrt
    );
    plain!(
        /// `1 / sqrt(x)`: `inf` at 0, NaN below 0.
        rsqrt, try_rsqrt
    );
    plain!(
        /// Sine (radians).
        sin, try_sin
    );
    plain!(
        /// Cosine (radians).
        cos, try_cos
    );
    plain!(
        /// `max(x, 0)`; NaN stays NaN. Gradient 0 at 0 (and 1 for NaN, as
        /// PyTorch).
        relu, try_relu
    );
    plain!(
        /// Logistic sigmoid `1 / (1 + e^-x)`.
        sigmoid, try_sigmoid
    );
    plain!(
        /// Hyperbolic tangent.
        tanh, try_tanh
    );
    plain!(
        /// Exact GELU, `x * Phi(x)` with the normal CDF `Phi` computed with
        /// `erf` (PyTorch's default `approximate='none'`). For `+inf` this gives
        /// `inf` where PyTorch's vectorized CPU kernel gives NaN.
        gelu, try_gelu
    );
    plain!(
        /// GELU with PyTorch's tanh approximation (`approximate='tanh'`):
        /// `x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`.
        gelu_tanh, try_gelu_tanh
    );
    plain!(
        /// SiLU (swish): `x * sigmoid(x)`.
        silu, try_silu
    );
    plain!(
        /// Softplus with PyTorch's defaults `beta = 1`, `threshold = 20`; see
        /// [`softplus_with`](Self::softplus_with).
        softplus, try_softplus
    );
    plain!(
        /// `x * x` (PyTorch's `square`, recorded as `PowBackward0`).
        square, try_square
    );
    plain!(
        /// `1 / x`: `±inf` at `±0`.
        reciprocal, try_reciprocal
    );

    /// [`abs`](Self::abs), or `OutOfMemory`.
    pub fn try_abs(&self) -> Result<Tensor> {
        self.unary_op(
            "AbsBackward0",
            k().abs.map,
            Saved::Input,
            each2(|g, x| {
                g * if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }),
        )
    }

    /// [`exp`](Self::exp), or `OutOfMemory`.
    pub fn try_exp(&self) -> Result<Tensor> {
        self.unary_op("ExpBackward0", k().exp.map, Saved::Output, k().mul.map)
    }

    /// [`log`](Self::log), or `OutOfMemory`.
    pub fn try_log(&self) -> Result<Tensor> {
        self.unary_op("LogBackward0", k().log.map, Saved::Input, k().div.map)
    }

    /// [`sqrt`](Self::sqrt), or `OutOfMemory`.
    pub fn try_sqrt(&self) -> Result<Tensor> {
        self.unary_op(
            "SqrtBackward0",
            k().sqrt.map,
            Saved::Output,
            each2(|g, y| g / (2.0 * y)),
        )
    }

    /// [`rsqrt`](Self::rsqrt), or `OutOfMemory`.
    pub fn try_rsqrt(&self) -> Result<Tensor> {
        self.unary_op(
            "RsqrtBackward0",
            k().rsqrt.map,
            Saved::Output,
            each2(|g, y| -0.5 * g * (y * y * y)),
        )
    }

    /// [`sin`](Self::sin), or `OutOfMemory`.
    pub fn try_sin(&self) -> Result<Tensor> {
        self.unary_op(
            "SinBackward0",
            k().sin.map,
            Saved::Input,
            each2(|g, x| g * libm::cosf(x)),
        )
    }

    /// [`cos`](Self::cos), or `OutOfMemory`.
    pub fn try_cos(&self) -> Result<Tensor> {
        self.unary_op(
            "CosBackward0",
            k().cos.map,
            Saved::Input,
            each2(|g, x| g * -libm::sinf(x)),
        )
    }

    /// [`relu`](Self::relu), or `OutOfMemory`.
    pub fn try_relu(&self) -> Result<Tensor> {
        self.unary_op(
            "ReluBackward0",
            k().relu.map,
            Saved::Output,
            swapped(k().relu_backward),
        )
    }

    /// `x` where `x > 0`, else `negative_slope * x`. PyTorch's default slope
    /// is 0.01: `x.leaky_relu(0.01)`. Gradient `negative_slope` at 0.
    ///
    /// # Panics
    /// If memory runs out; see [`try_leaky_relu`](Self::try_leaky_relu).
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f32) -> Tensor {
        unwrap(self.try_leaky_relu(negative_slope))
    }

    /// [`leaky_relu`](Self::leaky_relu), or `OutOfMemory`.
    pub fn try_leaky_relu(&self, negative_slope: f32) -> Result<Tensor> {
        let s = negative_slope;
        self.unary_op(
            "LeakyReluBackward0",
            move |x, o| (k().leaky_relu)(x, s, o),
            Saved::Input,
            move |g, x, o| (k().leaky_relu_backward)(x, g, s, o),
        )
    }

    /// [`sigmoid`](Self::sigmoid), or `OutOfMemory`.
    pub fn try_sigmoid(&self) -> Result<Tensor> {
        self.unary_op(
            "SigmoidBackward0",
            k().sigmoid.map,
            Saved::Output,
            swapped(k().sigmoid_backward),
        )
    }

    /// [`tanh`](Self::tanh), or `OutOfMemory`.
    pub fn try_tanh(&self) -> Result<Tensor> {
        self.unary_op(
            "TanhBackward0",
            k().tanh.map,
            Saved::Output,
            swapped(k().tanh_backward),
        )
    }

    /// [`gelu`](Self::gelu), or `OutOfMemory`.
    pub fn try_gelu(&self) -> Result<Tensor> {
        self.unary_op(
            "GeluBackward0",
            k().gelu.map,
            Saved::Input,
            swapped(k().gelu_backward),
        )
    }

    /// [`gelu_tanh`](Self::gelu_tanh), or `OutOfMemory`.
    pub fn try_gelu_tanh(&self) -> Result<Tensor> {
        self.unary_op(
            "GeluBackward0",
            k().gelu_tanh.map,
            Saved::Input,
            swapped(k().gelu_tanh_backward),
        )
    }

    /// [`silu`](Self::silu), or `OutOfMemory`.
    pub fn try_silu(&self) -> Result<Tensor> {
        self.unary_op(
            "SiluBackward0",
            k().silu.map,
            Saved::Input,
            swapped(k().silu_backward),
        )
    }

    /// [`softplus`](Self::softplus), or `OutOfMemory`.
    pub fn try_softplus(&self) -> Result<Tensor> {
        self.try_softplus_with(1.0, 20.0)
    }

    /// `log(1 + e^(beta x)) / beta`, reverting to `x` where
    /// `beta x > threshold` (as PyTorch's `softplus(x, beta, threshold)`).
    ///
    /// # Panics
    /// If memory runs out; see [`try_softplus_with`](Self::try_softplus_with).
    #[track_caller]
    pub fn softplus_with(&self, beta: f32, threshold: f32) -> Tensor {
        unwrap(self.try_softplus_with(beta, threshold))
    }

    /// [`softplus_with`](Self::softplus_with), or `OutOfMemory`.
    pub fn try_softplus_with(&self, beta: f32, threshold: f32) -> Result<Tensor> {
        if beta == 1.0 && threshold == 20.0 {
            return self.unary_op(
                "SoftplusBackward0",
                k().softplus.map,
                Saved::Input,
                swapped(k().softplus_backward),
            );
        }
        self.unary_op(
            "SoftplusBackward0",
            each(move |x| f::softplus(x, beta, threshold)),
            Saved::Input,
            each2(move |g, x| f::softplus_grad(g, x, beta, threshold)),
        )
    }

    /// `x^p` with PyTorch's semantics: `x^0 = 1` for every `x` (NaN
    /// included), a negative base with an integral `p` is real and with a
    /// fractional `p` NaN, `0^p` is `inf` for `p < 0`. Gradient `p x^(p-1)`,
    /// and exactly 0 for `p = 0`.
    ///
    /// # Panics
    /// If memory runs out; see [`try_pow_scalar`](Self::try_pow_scalar).
    #[track_caller]
    pub fn pow_scalar(&self, p: f32) -> Tensor {
        unwrap(self.try_pow_scalar(p))
    }

    /// [`pow_scalar`](Self::pow_scalar), or `OutOfMemory`.
    pub fn try_pow_scalar(&self, p: f32) -> Result<Tensor> {
        self.unary_op(
            "PowBackward0",
            move |x, o| (k().pow_scalar)(x, p, o),
            Saved::Input,
            each2(move |g, x| {
                if p == 0.0 {
                    0.0
                } else {
                    g * (p * f::pow(x, p - 1.0))
                }
            }),
        )
    }

    /// [`square`](Self::square), or `OutOfMemory`.
    pub fn try_square(&self) -> Result<Tensor> {
        self.unary_op(
            "PowBackward0",
            k().square.map,
            Saved::Input,
            each2(|g, x| g * (2.0 * x)),
        )
    }

    /// [`reciprocal`](Self::reciprocal), or `OutOfMemory`.
    pub fn try_reciprocal(&self) -> Result<Tensor> {
        self.unary_op(
            "ReciprocalBackward0",
            k().recip.map,
            Saved::Output,
            each2(|g, y| -g * (y * y)),
        )
    }

    /// Limits every element to `[min, max]`; either bound may be `None`
    /// (at least one must be given). As PyTorch: NaN elements stay NaN, a NaN
    /// bound makes every element NaN, and `min > max` gives `max` everywhere.
    /// The gradient passes where `min < x < max` and is 0 elsewhere: at the
    /// bounds (as PyTorch 2.x with scalar bounds) and for NaN.
    ///
    /// # Panics
    /// If both bounds are `None` or memory runs out; see
    /// [`try_clamp`](Self::try_clamp).
    #[track_caller]
    pub fn clamp(&self, min: Option<f32>, max: Option<f32>) -> Tensor {
        unwrap(self.try_clamp(min, max))
    }

    /// [`clamp`](Self::clamp), or `InvalidArgument` if both bounds are `None`,
    /// or `OutOfMemory`.
    pub fn try_clamp(&self, min: Option<f32>, max: Option<f32>) -> Result<Tensor> {
        match (min, max) {
            (None, None) => Err(Error::InvalidArgument {
                op: "clamp",
                detail: "at least one of min and max must be given",
            }),
            (Some(_), None) => self.clamp_op("ClampMinBackward0", min, None),
            (None, Some(_)) => self.clamp_op("ClampMaxBackward0", None, max),
            (Some(_), Some(_)) => self.clamp_op("ClampBackward1", min, max),
        }
    }

    /// `clamp(Some(min), None)`: `max(x, min)` with NaN propagation; the
    /// gradient passes where `x > min`.
    ///
    /// # Panics
    /// If memory runs out; see [`try_clamp_min`](Self::try_clamp_min).
    #[track_caller]
    pub fn clamp_min(&self, min: f32) -> Tensor {
        unwrap(self.try_clamp_min(min))
    }

    /// [`clamp_min`](Self::clamp_min), or `OutOfMemory`.
    pub fn try_clamp_min(&self, min: f32) -> Result<Tensor> {
        self.clamp_op("ClampMinBackward0", Some(min), None)
    }

    /// `clamp(None, Some(max))`: `min(x, max)` with NaN propagation; the
    /// gradient passes where `x < max`.
    ///
    /// # Panics
    /// If memory runs out; see [`try_clamp_max`](Self::try_clamp_max).
    #[track_caller]
    pub fn clamp_max(&self, max: f32) -> Tensor {
        unwrap(self.try_clamp_max(max))
    }

    /// [`clamp_max`](Self::clamp_max), or `OutOfMemory`.
    pub fn try_clamp_max(&self, max: f32) -> Result<Tensor> {
        self.clamp_op("ClampMaxBackward0", None, Some(max))
    }

    /// Clamp to `[lo, hi]` (a missing bound does not limit). The gradient
    /// passes strictly inside the bounds, as PyTorch's (checked against
    /// torch 2.x: 0 at a bound, for NaN and for a NaN bound).
    fn clamp_op(&self, name: &'static str, lo: Option<f32>, hi: Option<f32>) -> Result<Tensor> {
        let (min, max) = (lo.unwrap_or(f32::NEG_INFINITY), hi.unwrap_or(f32::INFINITY));
        self.unary_op(
            name,
            move |x, o| (k().clamp)(x, min, max, o),
            Saved::Input,
            each2(move |g, x| {
                let inside = lo.is_none_or(|lo| x > lo) && hi.is_none_or(|hi| x < hi);
                if inside { g } else { 0.0 }
            }),
        )
    }

    // ------------------------------------------------------------ in place
    //
    // Each applies the forward function in place (keeping the id) when
    // nothing is recorded; otherwise it records the out-of-place op and
    // adopts its result under the same id. A leaf that requires grad is
    // refused while recording, as in PyTorch.

    /// [`relu`](Self::relu) in place, keeping the id.
    ///
    /// # Panics
    /// On a leaf that requires grad while recording, or if memory runs out;
    /// see [`try_relu_`](Self::try_relu_).
    #[track_caller]
    pub fn relu_(&mut self) {
        unwrap(self.try_relu_())
    }

    /// [`relu_`](Self::relu_), or `InvalidArgument` (leaf that requires grad
    /// while recording; `self` is unchanged) or `OutOfMemory`.
    pub fn try_relu_(&mut self) -> Result<()> {
        self.scalar_assign("relu_", k().relu.map_inplace, Tensor::try_relu)
    }

    /// [`leaky_relu`](Self::leaky_relu) in place, keeping the id.
    ///
    /// # Panics
    /// As [`relu_`](Self::relu_); see [`try_leaky_relu_`](Self::try_leaky_relu_).
    #[track_caller]
    pub fn leaky_relu_(&mut self, negative_slope: f32) {
        unwrap(self.try_leaky_relu_(negative_slope))
    }

    /// [`leaky_relu_`](Self::leaky_relu_), or an error as
    /// [`try_relu_`](Self::try_relu_).
    pub fn try_leaky_relu_(&mut self, negative_slope: f32) -> Result<()> {
        let s = negative_slope;
        self.scalar_assign(
            "leaky_relu_",
            move |b| (k().leaky_relu_inplace)(b, s),
            move |t| t.try_leaky_relu(s),
        )
    }

    /// [`sigmoid`](Self::sigmoid) in place, keeping the id.
    ///
    /// # Panics
    /// As [`relu_`](Self::relu_); see [`try_sigmoid_`](Self::try_sigmoid_).
    #[track_caller]
    pub fn sigmoid_(&mut self) {
        unwrap(self.try_sigmoid_())
    }

    /// [`sigmoid_`](Self::sigmoid_), or an error as [`try_relu_`](Self::try_relu_).
    pub fn try_sigmoid_(&mut self) -> Result<()> {
        self.scalar_assign("sigmoid_", k().sigmoid.map_inplace, Tensor::try_sigmoid)
    }

    /// [`tanh`](Self::tanh) in place, keeping the id.
    ///
    /// # Panics
    /// As [`relu_`](Self::relu_); see [`try_tanh_`](Self::try_tanh_).
    #[track_caller]
    pub fn tanh_(&mut self) {
        unwrap(self.try_tanh_())
    }

    /// [`tanh_`](Self::tanh_), or an error as [`try_relu_`](Self::try_relu_).
    pub fn try_tanh_(&mut self) -> Result<()> {
        self.scalar_assign("tanh_", k().tanh.map_inplace, Tensor::try_tanh)
    }

    /// [`clamp`](Self::clamp) in place, keeping the id.
    ///
    /// # Panics
    /// If both bounds are `None`, or as [`relu_`](Self::relu_); see
    /// [`try_clamp_`](Self::try_clamp_).
    #[track_caller]
    pub fn clamp_(&mut self, min: Option<f32>, max: Option<f32>) {
        unwrap(self.try_clamp_(min, max))
    }

    /// [`clamp_`](Self::clamp_), or `InvalidArgument` (no bound; or a leaf
    /// that requires grad while recording), or `OutOfMemory`; `self` is
    /// unchanged on error.
    pub fn try_clamp_(&mut self, min: Option<f32>, max: Option<f32>) -> Result<()> {
        if min.is_none() && max.is_none() {
            return Err(Error::InvalidArgument {
                op: "clamp_",
                detail: "at least one of min and max must be given",
            });
        }
        let (lo, hi) = (
            min.unwrap_or(f32::NEG_INFINITY),
            max.unwrap_or(f32::INFINITY),
        );
        self.scalar_assign(
            "clamp_",
            move |b| (k().clamp_inplace)(b, lo, hi),
            move |t| t.try_clamp(min, max),
        )
    }
}
