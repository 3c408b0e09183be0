//! Binary element-wise operations with NumPy broadcasting, their gradients,
//! and the arithmetic operators (`+ - * /`, unary `-`, and the in-place
//! `+= -= *= /=`, which keep the tensor's identity).
//!
//! Gradients of broadcast operands are summed back to the operand's shape.

use alloc::vec;

use super::{binary_inplace, grad_if, kern, map_binary, map_unary, sum_to_shape};
use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::tensor::Tensor;

/// Generates the plain (panicking) form of `try_` methods taking a tensor or a
/// scalar operand.
macro_rules! plain {
    ($(#[$doc:meta])* $name:ident, $try_name:ident, $rhs:ty) => {
        $(#[$doc])*
        ///
        /// # Panics
        #[doc = concat!("If the shapes do not broadcast or memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        pub fn $name(&self, rhs: $rhs) -> Tensor {
            unwrap(self.$try_name(rhs))
        }
    };
}

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
    pub fn try_add_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("add", self, other, |a, b, o| {
            kern::zip(a, b, o, |x, y| x + y)
        })?;
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
    pub fn try_sub_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("sub", self, other, |a, b, o| {
            kern::zip(a, b, o, |x, y| x - y)
        })?;
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
    pub fn try_mul_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("mul", self, other, |a, b, o| {
            kern::zip(a, b, o, |x, y| x * y)
        })?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        let (a, b) = (self.detach(), other.detach());
        Ok(out.record("MulBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || sum_to_shape(&g.try_mul_tensor(&b)?, a.shape()))?,
                grad_if(need[1], || sum_to_shape(&g.try_mul_tensor(&a)?, b.shape()))?,
            ])
        }))
    }

    /// `self / other`, or `ShapeMismatch` (op `div`).
    pub fn try_div_tensor(&self, other: &Tensor) -> Result<Tensor> {
        let out = map_binary("div", self, other, |a, b, o| {
            kern::zip(a, b, o, |x, y| x / y)
        })?;
        if !needs_grad(&[self, other]) {
            return Ok(out);
        }
        let (a, b, q) = (self.detach(), other.detach(), out.detach());
        Ok(out.record("DivBackward0", &[self, other], move |g, need| {
            Ok(vec![
                grad_if(need[0], || sum_to_shape(&g.try_div_tensor(&b)?, a.shape()))?,
                // d(a/b)/db = -(a/b)/b
                grad_if(need[1], || {
                    sum_to_shape(
                        &g.try_mul_tensor(&q)?.try_div_tensor(&b)?.try_neg()?,
                        b.shape(),
                    )
                })?,
            ])
        }))
    }

    /// Shared body of the scalar forms: `out = f(x)` with gradient `g * d`,
    /// where `d` is the constant derivative.
    fn scalar_op(&self, name: &'static str, f: impl Fn(f32) -> f32, d: f32) -> Result<Tensor> {
        let out = map_unary(self, |x, o| kern::map(x, o, &f))?;
        if d == 1.0 {
            return Ok(out.record(name, &[self], |g, _| Ok(vec![Some(g.clone())])));
        }
        Ok(out.record(name, &[self], move |g, _| {
            Ok(vec![Some(g.try_mul_scalar(d)?)])
        }))
    }

    /// `self + s`, or `OutOfMemory`.
    pub fn try_add_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("AddBackward1", move |x| x + s, 1.0)
    }

    /// `self - s`, or `OutOfMemory`.
    pub fn try_sub_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("SubBackward1", move |x| x - s, 1.0)
    }

    /// `self * s`, or `OutOfMemory`.
    pub fn try_mul_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("MulBackward1", move |x| x * s, s)
    }

    /// `self / s`, or `OutOfMemory`.
    pub fn try_div_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("DivBackward1", move |x| x / s, 1.0 / s)
    }

    /// `s - self`, or `OutOfMemory`.
    pub fn try_rsub_scalar(&self, s: f32) -> Result<Tensor> {
        self.scalar_op("RsubBackward1", move |x| s - x, -1.0)
    }

    /// `s / self`, or `OutOfMemory`.
    pub fn try_rdiv_scalar(&self, s: f32) -> Result<Tensor> {
        let out = map_unary(self, |x, o| kern::map(x, o, |v| s / v))?;
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
        self.scalar_op("NegBackward0", |x| -x, -1.0)
    }

    // ------------------------------------------------------------ in place

    /// Applies `op` in place (keeping the id) when nothing needs recording;
    /// otherwise computes `fallback` out of place and adopts its result (and
    /// graph node) under the same id. The result must keep `self`'s shape.
    fn assign_with(
        &mut self,
        op: &'static str,
        rhs: Option<&Tensor>,
        inplace: impl FnOnce(&mut Tensor) -> Result<()>,
        fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        let recording = match rhs {
            Some(r) => needs_grad(&[self, r]),
            None => needs_grad(&[self]),
        };
        if !recording {
            return inplace(self);
        }
        self.check_inplace(op)?;
        let out = fallback(self)?;
        if out.dims() != self.dims() {
            return Err(crate::Error::ShapeMismatch {
                op,
                lhs: self.shape().clone(),
                rhs: out.shape().clone(),
                detail: "an in-place result must keep the shape of the tensor it updates",
            });
        }
        self.adopt(out);
        Ok(())
    }

    /// Takes over `out`'s storage, layout and graph node, keeping our id.
    pub(crate) fn adopt(&mut self, out: Tensor) {
        self.storage = out.storage;
        self.layout = out.layout;
        self.node = out.node;
    }

    /// `self += other` (broadcasting `other` to `self`'s shape), in place and
    /// keeping the id; or an error with `self` unchanged.
    pub fn try_add_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "add_",
            Some(other),
            |s| {
                binary_inplace("add_", s, other, |a, b| {
                    kern::zip_inplace(a, b, |x, y| x + y)
                })
            },
            |s| s.try_add_tensor(other),
        )
    }

    /// `self -= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_sub_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "sub_",
            Some(other),
            |s| {
                binary_inplace("sub_", s, other, |a, b| {
                    kern::zip_inplace(a, b, |x, y| x - y)
                })
            },
            |s| s.try_sub_tensor(other),
        )
    }

    /// `self *= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_mul_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "mul_",
            Some(other),
            |s| {
                binary_inplace("mul_", s, other, |a, b| {
                    kern::zip_inplace(a, b, |x, y| x * y)
                })
            },
            |s| s.try_mul_tensor(other),
        )
    }

    /// `self /= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_div_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "div_",
            Some(other),
            |s| {
                binary_inplace("div_", s, other, |a, b| {
                    kern::zip_inplace(a, b, |x, y| x / y)
                })
            },
            |s| s.try_div_tensor(other),
        )
    }

    /// Applies `f` to every element in place (keeping the id), or records
    /// `fallback` when a graph is being built.
    fn scalar_assign(
        &mut self,
        op: &'static str,
        f: impl Fn(f32) -> f32,
        fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        self.assign_with(
            op,
            None,
            |s| {
                s.try_write_runs(true, |buf, o, len, st| {
                    for i in 0..len {
                        let v = &mut buf[o + i * st];
                        *v = f(*v);
                    }
                })
            },
            fallback,
        )
    }

    /// `self += s` in place (keeping the id).
    pub fn try_add_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign("add_", |x| x + s, |t| t.try_add_scalar(s))
    }

    /// `self -= s` in place (keeping the id).
    pub fn try_sub_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign("sub_", |x| x - s, |t| t.try_sub_scalar(s))
    }

    /// `self *= s` in place (keeping the id).
    pub fn try_mul_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign("mul_", |x| x * s, |t| t.try_mul_scalar(s))
    }

    /// `self /= s` in place (keeping the id).
    pub fn try_div_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign("div_", |x| x / s, |t| t.try_div_scalar(s))
    }

    /// `self += other` without autograd (gradient accumulation).
    pub(crate) fn try_add_assign_raw(&mut self, other: &Tensor) -> Result<()> {
        binary_inplace("add_", self, other, |a, b| {
            kern::zip_inplace(a, b, |x, y| x + y)
        })
    }
}

// ------------------------------------------------------------- operators

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident, $rscalar:expr) => {
        impl core::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.$tensor_fn(rhs)
            }
        }
        impl core::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                self.$tensor_fn(&rhs)
            }
        }
        impl core::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                (&self).$tensor_fn(rhs)
            }
        }
        impl core::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                (&self).$tensor_fn(&rhs)
            }
        }
        impl core::ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: f32) -> Tensor {
                self.$scalar_fn(rhs)
            }
        }
        impl core::ops::$trait<f32> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: f32) -> Tensor {
                (&self).$scalar_fn(rhs)
            }
        }
        impl core::ops::$trait<&Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                let f: fn(f32, &Tensor) -> Tensor = $rscalar;
                f(self, rhs)
            }
        }
        impl core::ops::$trait<Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                let f: fn(f32, &Tensor) -> Tensor = $rscalar;
                f(self, &rhs)
            }
        }
    };
}

binary_operator!(Add, add, add_tensor, add_scalar, |s, t| t.add_scalar(s));
binary_operator!(Sub, sub, sub_tensor, sub_scalar, |s, t| t.rsub_scalar(s));
binary_operator!(Mul, mul, mul_tensor, mul_scalar, |s, t| t.mul_scalar(s));
binary_operator!(Div, div, div_tensor, div_scalar, |s, t| t.rdiv_scalar(s));

macro_rules! assign_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident) => {
        impl core::ops::$trait<&Tensor> for Tensor {
            /// In place, keeping the tensor's identity; panics on a shape error.
            #[track_caller]
            fn $method(&mut self, rhs: &Tensor) {
                unwrap(self.$tensor_fn(rhs))
            }
        }
        impl core::ops::$trait<Tensor> for Tensor {
            /// In place, keeping the tensor's identity; panics on a shape error.
            #[track_caller]
            fn $method(&mut self, rhs: Tensor) {
                unwrap(self.$tensor_fn(&rhs))
            }
        }
        impl core::ops::$trait<f32> for Tensor {
            /// In place, keeping the tensor's identity.
            #[track_caller]
            fn $method(&mut self, rhs: f32) {
                unwrap(self.$scalar_fn(rhs))
            }
        }
    };
}

assign_operator!(AddAssign, add_assign, try_add_assign, try_add_assign_scalar);
assign_operator!(SubAssign, sub_assign, try_sub_assign, try_sub_assign_scalar);
assign_operator!(MulAssign, mul_assign, try_mul_assign, try_mul_assign_scalar);
assign_operator!(DivAssign, div_assign, try_div_assign, try_div_assign_scalar);

impl core::ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl core::ops::Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
