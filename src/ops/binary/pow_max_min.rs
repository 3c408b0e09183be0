//! `pow_tensor`, `maximum` and `minimum`, whose gradients read both
//! operands (through `map_ternary`).

use alloc::vec;

use super::map_ternary;
use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::kernels::table as k;
use crate::ops::{grad_if, kern, map_binary, sum_to_shape};
use crate::tensor::Tensor;

impl Tensor {
    plain!(
        /// `self ^ exponent` element-wise, broadcasting (C `pow` semantics:
        /// `x^0 = 1` even for NaN, a negative base with a fractional
        /// exponent is NaN). Gradients as PyTorch: `b a^(b-1)` for the base
        /// (exactly 0 where `b = 0`) and `a^b ln a` for the exponent (exactly
        /// 0 where `a = 0` and `b >= 0`; NaN for a negative base).
        pow_tensor, try_pow_tensor, &Tensor
    );
    plain!(
        /// Element-wise maximum, broadcasting; NaN if either element is NaN.
        /// On ties the gradient is split, half to each operand (as PyTorch);
        /// where an element is NaN both operands receive the full gradient.
        maximum, try_maximum, &Tensor
    );
    plain!(
        /// Element-wise minimum, broadcasting; NaN if either element is NaN.
        /// Gradients as [`maximum`](Self::maximum).
        minimum, try_minimum, &Tensor
    );

    /// [`pow_tensor`](Self::pow_tensor), or `ShapeMismatch` (op `pow`).
    pub fn try_pow_tensor(&self, exponent: &Tensor) -> Result<Tensor> {
        let out = map_binary("pow", self, exponent, |a, b, o| (k().pow.map)(a, b, o))?;
        if !needs_grad(&[self, exponent]) {
            return Ok(out);
        }
        let (a, b) = (self.detach(), exponent.detach());
        Ok(
            out.record("PowBackward1", &[self, exponent], move |g, need| {
                Ok(vec![
                    grad_if(need[0], || {
                        sum_to_shape(&map_ternary("pow", g, &a, &b, pow_grad_base)?, a.shape())
                    })?,
                    grad_if(need[1], || {
                        sum_to_shape(&map_ternary("pow", g, &a, &b, pow_grad_exp)?, b.shape())
                    })?,
                ])
            }),
        )
    }

    /// [`maximum`](Self::maximum), or `ShapeMismatch` (op `maximum`).
    pub fn try_maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.extremum("maximum", "MaximumBackward0", other, true)
    }

    /// [`minimum`](Self::minimum), or `ShapeMismatch` (op `minimum`).
    pub fn try_minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.extremum("minimum", "MinimumBackward0", other, false)
    }

    /// `maximum` (`max`) or `minimum`, and the tie-splitting gradient.
    fn extremum(
        &self,
        op: &'static str,
        name: &'static str,
        other: &Tensor,
        max: bool,
    ) -> Result<Tensor> {
        let out = map_binary(op, self, other, |a, b, o| {
            kern::zip(a, b, o, |x, y| {
                let take_y = if max { x < y } else { y < x };
                if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else if take_y {
                    y
                } else {
                    x
                }
            })
        })?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        let (a, b) = (self.detach(), other.detach());
        Ok(out.record(name, &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || {
                    let k = |g, x, y| extremum_share(g, x, y, max);
                    sum_to_shape(&map_ternary(op, g, &a, &b, k)?, a.shape())
                })?,
                grad_if(need[1], || {
                    let k = |g, x, y| extremum_share(g, y, x, max);
                    sum_to_shape(&map_ternary(op, g, &a, &b, k)?, b.shape())
                })?,
            ])
        }))
    }
}

/// The gradient share of operand `me` of `maximum` (`max`) or `minimum`
/// against `them`, as PyTorch: half on a tie, none if `me` lost, all
/// otherwise (also when either is NaN).
fn extremum_share(g: f32, me: f32, them: f32, max: bool) -> f32 {
    if me == them {
        g / 2.0
    } else if (max && me < them) || (!max && me > them) {
        0.0
    } else {
        g
    }
}

/// `g * d(a^b)/da` as PyTorch: exactly 0 where `b = 0`.
fn pow_grad_base(g: f32, a: f32, b: f32) -> f32 {
    if b == 0.0 {
        0.0
    } else {
        g * (b * libm::powf(a, b - 1.0))
    }
}

/// `g * d(a^b)/db = g * a^b ln a` as PyTorch: the factor is 0 where `a = 0`
/// and `b >= 0`.
fn pow_grad_exp(g: f32, a: f32, b: f32) -> f32 {
    g * if a == 0.0 && b >= 0.0 {
        0.0
    } else {
        libm::powf(a, b) * libm::logf(a)
    }
}
