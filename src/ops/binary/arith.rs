//! Arithmetic with a tensor or a scalar operand (`+ - * /`, the reversed
//! scalar forms `s - x` and `s / x`) and negation.

use alloc::vec;

use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::kernels::table as k;
use crate::ops::{grad_if, map_binary, map_unary, saved, sum_to_shape};
use crate::tensor::Tensor;

impl Tensor {
    plain!(
        /// `self + other`, broadcasting.
        add_tensor, try_add_tensor, &Tensor
    );
    plain!(
        /// `self - other`, broadcasting.
        sub_tensor, try_sub_tensor, &Tensor
    );
    plain!(
        /// `self * other` element-wise, broadcasting.
        mul_tensor, try_mul_tensor, &Tensor
    );
    plain!(
        /// `self / other` element-wise, broadcasting (IEEE: `x / 0` is ±inf or NaN).
        div_tensor, try_div_tensor, &Tensor
    );
    plain!(
        /// `self + s`.
        add_scalar, try_add_scalar, f32
    );
    plain!(
        /// `self - s`.
        sub_scalar, try_sub_scalar, f32
    );
    plain!(
        /// `self * s`.
        mul_scalar, try_mul_scalar, f32
    );
    plain!(
        /// `self / s`.
        div_scalar, try_div_scalar, f32
    );
    plain!(
        /// `s - self`.
        rsub_scalar, try_rsub_scalar, f32
    );
    plain!(
        /// `s / self`.
        rdiv_scalar, try_rdiv_scalar, f32
    );

    /// `self + other`, or `ShapeMismatch` (op `add`) if they do not broadcast.
    #[inline]
    pub fn try_add_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("add", self, other, |a, b, o| (k().add.map)(a, b, o))?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        let (sa, sb) = (self.shape().clone(), other.shape().clone());
        Ok(out.record("AddBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || sum_to_shape(g, &sa))?,
                grad_if(need[1], || sum_to_shape(g, &sb))?,
            ])
        }))
    }

    /// `self - other`, or `ShapeMismatch` (op `sub`).
    #[inline]
    pub fn try_sub_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("sub", self, other, |a, b, o| (k().sub.map)(a, b, o))?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        let (sa, sb) = (self.shape().clone(), other.shape().clone());
        Ok(out.record("SubBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || sum_to_shape(g, &sa))?,
                grad_if(need[1], || sum_to_shape(&g.try_neg()?, &sb))?,
            ])
        }))
    }

    /// `self * other`, or `ShapeMismatch` (op `mul`).
    #[inline]
    pub fn try_mul_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("mul", self, other, |a, b, o| (k().mul.map)(a, b, o))?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        // d/da reads b and d/db reads a: save each only if the other's
        // gradient is wanted.
        let (sa, sb) = (self.shape().clone(), other.shape().clone());
        let a = other.requires_grad().then(|| self.detach());
        let b = self.requires_grad().then(|| other.detach());
        Ok(out.record("MulBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || {
                    sum_to_shape(&g.try_mul_tensor(saved(&b)?)?, &sa)
                })?,
                grad_if(need[1], || {
                    sum_to_shape(&g.try_mul_tensor(saved(&a)?)?, &sb)
                })?,
            ])
        }))
    }

    /// `self / other`, or `ShapeMismatch` (op `div`).
    #[inline]
    pub fn try_div_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("div", self, other, |a, b, o| (k().div.map)(a, b, o))?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        // Both gradients read b; only d/db reads the quotient, and neither a.
        let sa = self.shape().clone();
        let b = other.detach();
        let q = other.requires_grad().then(|| out.detach());
        Ok(out.record("DivBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || sum_to_shape(&g.try_div_tensor(&b)?, &sa))?,
                // d(a/b)/db = -(a/b)/b
                grad_if(need[1], || {
                    sum_to_shape(
                        &g.try_mul_tensor(saved(&q)?)?
                            .try_div_tensor(&b)?
                            .try_neg()?,
                        b.shape(),
                    )
                })?,
            ])
        }))
    }

    /// Shared body of the scalar forms: `out = f(x)` with gradient `g * d`,
    /// where `d` is the constant derivative.
    fn scalar_op(
        &self,
        name: &'static str,
        f: impl Fn(&[f32], &mut [f32]) + Sync,
        d: f32,
    ) -> Result<Tensor> {
        let out = map_unary(self, f)?;
        if d == 1.0 {
            return Ok(out.record(name, &[self], |g, _| Ok(vec![Some(g.clone())])));
        }
        Ok(out.record(name, &[self], move |g, _| {
            Ok(vec![Some(g.try_mul_scalar(d)?)])
        }))
    }

    /// `self + s`, or `OutOfMemory`.
    pub fn try_add_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("AddBackward1", move |x, o| (k().add.map)(x, &[s], o), 1.0)
    }

    /// `self - s`, or `OutOfMemory`.
    pub fn try_sub_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("SubBackward1", move |x, o| (k().sub.map)(x, &[s], o), 1.0)
    }

    /// `self * s`, or `OutOfMemory`.
    pub fn try_mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("MulBackward1", move |x, o| (k().mul.map)(x, &[s], o), s)
    }

    /// `self / s`, or `OutOfMemory`.
    pub fn try_div_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op(
            "DivBackward1",
            move |x, o| (k().div.map)(x, &[s], o),
            1.0 / s,
        )
    }

    /// `s - self`, or `OutOfMemory`.
    pub fn try_rsub_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("RsubBackward1", move |x, o| (k().sub.map)(&[s], x, o), -1.0)
    }

    /// `s / self`, or `OutOfMemory`.
    pub fn try_rdiv_scalar(&self, s: f32) -> Result<Tensor> {
        let out = map_unary(self, |x, o| (k().div.map)(&[s], x, o))?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, q) = (self.detach(), out.detach());
        // d(s/x)/dx = -(s/x)/x
        Ok(out.record("RdivBackward1", &[self], move |g, _| {
            Ok(vec![Some(
                g.try_mul_tensor(&q)?.try_div_tensor(&x)?.try_neg()?,
            )])
        }))
    }

    /// `-self`.
    ///
    /// # Panics
    /// If memory runs out; see [`try_neg`](Self::try_neg).
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        unwrap(self.try_neg())
    }

    /// `-self`, or `OutOfMemory`.
    pub fn try_neg(&self) -> Result<Tensor> {
        self.scalar_op("NegBackward0", k().neg.map, -1.0)
    }
}
