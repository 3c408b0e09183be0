//! Binary element-wise operations with NumPy broadcasting, their gradients,
//! and the arithmetic operators (`+ - * /`, unary `-`, and the in-place
//! `+= -= *= /=`, which keep the tensor's identity); `pow_tensor`, `maximum`,
//! `minimum`; comparisons giving 0/1 masks (`eq`, `ne`, `lt`, `le`, `gt`,
//! `ge` and their `_scalar` forms, not differentiable); selection by mask
//! (`where_`, `masked_fill`).
//!
//! Gradients of broadcast operands are summed back to the operand's shape.

use alloc::vec;

use super::saved;
use super::{binary_inplace, grad_if, kern, map_binary, map_unary, sum_to_shape};
use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::kernels::table as k;
use crate::tensor::Tensor;
use crate::tensor::layout::{Walker, broadcast_shapes};

/// Generates the plain (panicking) form of `try_` methods taking a tensor or a
/// scalar operand.
macro_rules! plain {
    ($(#[$doc:meta])* $name:ident, $try_name:ident, $rhs:ty) => {
        $(#[$doc])*
        ///
        /// # Panics
        #[doc = concat!("If the shapes do not broadcast or memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        #[inline]
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
                lhs: self.shape().into(),
                rhs: out.shape().into(),
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
            |s| binary_inplace("add_", s, other, |a, b| (k().add.map_inplace)(a, b)),
            |s| s.try_add_tensor(other),
        )
    }

    /// `self -= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_sub_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "sub_",
            Some(other),
            |s| binary_inplace("sub_", s, other, |a, b| (k().sub.map_inplace)(a, b)),
            |s| s.try_sub_tensor(other),
        )
    }

    /// `self *= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_mul_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "mul_",
            Some(other),
            |s| binary_inplace("mul_", s, other, |a, b| (k().mul.map_inplace)(a, b)),
            |s| s.try_mul_tensor(other),
        )
    }

    /// `self /= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_div_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "div_",
            Some(other),
            |s| binary_inplace("div_", s, other, |a, b| (k().div.map_inplace)(a, b)),
            |s| s.try_div_tensor(other),
        )
    }

    /// Applies `f` to every element in place (keeping the id), or records
    /// `fallback` when a graph is being built.
    pub(super) fn scalar_assign(
        &mut self,
        op: &'static str,
        f: impl Fn(&mut [f32]),
        fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        self.assign_with(
            op,
            None,
            |s| {
                s.try_write_runs(true, |buf, o, len, st| {
                    if st == 1 {
                        f(&mut buf[o..o + len]);
                        return;
                    }
                    let mut tmp = [0.0f32; super::CHUNK];
                    let mut start = 0;
                    while start < len {
                        let n = super::CHUNK.min(len - start);
                        for (i, t) in tmp[..n].iter_mut().enumerate() {
                            *t = buf[o + (start + i) * st];
                        }
                        f(&mut tmp[..n]);
                        for (i, t) in tmp[..n].iter().enumerate() {
                            buf[o + (start + i) * st] = *t;
                        }
                        start += n;
                    }
                })
            },
            fallback,
        )
    }

    /// `self += s` in place (keeping the id).
    pub fn try_add_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "add_",
            |b| (k().add.map_inplace)(b, &[s]),
            |t| t.try_add_scalar(s),
        )
    }

    /// `self -= s` in place (keeping the id).
    pub fn try_sub_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "sub_",
            |b| (k().sub.map_inplace)(b, &[s]),
            |t| t.try_sub_scalar(s),
        )
    }

    /// `self *= s` in place (keeping the id).
    pub fn try_mul_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "mul_",
            |b| (k().mul.map_inplace)(b, &[s]),
            |t| t.try_mul_scalar(s),
        )
    }

    /// `self /= s` in place (keeping the id).
    pub fn try_div_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "div_",
            |b| (k().div.map_inplace)(b, &[s]),
            |t| t.try_div_scalar(s),
        )
    }

    /// `self += other` without autograd (gradient accumulation).
    pub(crate) fn try_add_assign_raw(&mut self, other: &Tensor) -> Result<()> {
        binary_inplace("add_", self, other, |a, b| (k().add.map_inplace)(a, b))
    }
}

// ------------------------------------------- power, maximum and minimum

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

// ---------------------------------------------------- comparison masks

/// Generates a tensor comparison and its scalar form, each with `try_` and
/// plain variants, returning 0/1 masks.
macro_rules! comparison {
    ($name:ident, $try_name:ident, $sname:ident, $try_sname:ident, $op:literal,
     $what:literal, $table:expr) => {
        #[doc = concat!("1 where `self ", $what, " other`, else 0, broadcasting; a mask that does not require grad.")]
        ///
        /// # Panics
        #[doc = concat!("If the shapes do not broadcast or memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        pub fn $name(&self, other: &Tensor) -> Tensor {
            unwrap(self.$try_name(other))
        }

        #[doc = concat!("[`", stringify!($name), "`](Self::", stringify!($name), "), or `ShapeMismatch` (op `", $op, "`).")]
        pub fn $try_name(&self, other: &Tensor) -> Result<Tensor> {
            map_binary($op, self, other, $table)
        }

        #[doc = concat!("1 where `self ", $what, " s`, else 0; a mask that does not require grad.")]
        ///
        /// # Panics
        #[doc = concat!("If memory runs out; see [`", stringify!($try_sname), "`](Self::", stringify!($try_sname), ").")]
        #[track_caller]
        pub fn $sname(&self, s: f32) -> Tensor {
            unwrap(self.$try_sname(s))
        }

        #[doc = concat!("[`", stringify!($sname), "`](Self::", stringify!($sname), "), or `OutOfMemory`.")]
        pub fn $try_sname(&self, s: f32) -> Result<Tensor> {
            map_unary(self, |a, o| ($table)(a, &[s], o))
        }
    };
}

/// Comparisons follow IEEE: every comparison with NaN is false except `ne`.
impl Tensor {
    comparison!(eq, try_eq, eq_scalar, try_eq_scalar, "eq", "==", k().eq.map);
    comparison!(ne, try_ne, ne_scalar, try_ne_scalar, "ne", "!=", k().ne.map);
    comparison!(lt, try_lt, lt_scalar, try_lt_scalar, "lt", "<", k().lt.map);
    comparison!(le, try_le, le_scalar, try_le_scalar, "le", "<=", k().le.map);
    comparison!(gt, try_gt, gt_scalar, try_gt_scalar, "gt", ">", k().gt.map);
    comparison!(ge, try_ge, ge_scalar, try_ge_scalar, "ge", ">=", k().ge.map);
}

// ------------------------------------------------------------ selection

impl Tensor {
    /// `a` where `cond` is nonzero, else `b` (PyTorch's `torch.where(cond,
    /// a, b)`; named `where_` because `where` is a Rust keyword; it is not
    /// in place). `cond` is a mask such as [`gt`](Self::gt) returns; the
    /// three broadcast together. Gradients flow to `a` and `b`, each only
    /// where it was chosen; `cond` gets none.
    ///
    /// # Panics
    /// If the shapes do not broadcast or memory runs out; see
    /// [`try_where_`](Self::try_where_).
    #[track_caller]
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        unwrap(Tensor::try_where_(cond, a, b))
    }

    /// [`where_`](Self::where_), or `ShapeMismatch` (op `where`, naming two
    /// shapes that do not broadcast).
    pub fn try_where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let out = map_ternary("where", cond, a, b, |c, x, y| if c != 0.0 { x } else { y })?;
        if !needs_grad(&[a, b]) {
            return Ok(out);
        }
        let c = cond.detach();
        let (sa, sb) = (a.shape().clone(), b.shape().clone());
        Ok(out.record("WhereBackward0", &[a, b], move |g, need| {
            let pick = |chosen: bool| {
                map_binary("where", &c, g, |c, g, o| {
                    kern::zip(c, g, o, |c, g| if (c != 0.0) == chosen { g } else { 0.0 })
                })
            };
            Ok(vec![
                grad_if(need[0], || sum_to_shape(&pick(true)?, &sa))?,
                grad_if(need[1], || sum_to_shape(&pick(false)?, &sb))?,
            ])
        }))
    }

    /// `value` where `mask` is nonzero, else `self`; `mask` broadcasts with
    /// `self` (the result has the broadcast shape, as PyTorch's out-of-place
    /// `masked_fill`). The gradient is 0 at filled elements.
    ///
    /// # Panics
    /// If the shapes do not broadcast or memory runs out; see
    /// [`try_masked_fill`](Self::try_masked_fill).
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Tensor {
        unwrap(self.try_masked_fill(mask, value))
    }

    /// [`masked_fill`](Self::masked_fill), or `ShapeMismatch` (op
    /// `masked_fill`).
    pub fn try_masked_fill(&self, mask: &Tensor, value: f32) -> Result<Tensor> {
        let out = map_binary("masked_fill", self, mask, |x, m, o| {
            kern::zip(x, m, o, |x, m| if m != 0.0 { value } else { x })
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (m, shape) = (mask.detach(), self.shape().clone());
        Ok(out.record("MaskedFillBackward0", &[self], move |g, _| {
            let g = map_binary("masked_fill", g, &m, |g, m, o| {
                kern::zip(g, m, o, |g, m| if m != 0.0 { 0.0 } else { g })
            })?;
            Ok(vec![Some(sum_to_shape(&g, &shape)?)])
        }))
    }
}

/// A new contiguous tensor `k(a, b, c)` over the broadcast shape of three
/// operands, walked together with the strided walker (for `where_` and the
/// gradients of `pow_tensor`, `maximum` and `minimum`). A `ShapeMismatch`
/// names `op` and two operand shapes that do not broadcast.
fn map_ternary(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    k: impl Fn(f32, f32, f32) -> f32,
) -> Result<Tensor> {
    let zip3 = |x: &[f32], y: &[f32], z: &[f32], out: &mut [f32]| {
        for (((o, &x), &y), &z) in out.iter_mut().zip(x).zip(y).zip(z) {
            *o = k(x, y, z);
        }
    };
    if a.dims() == b.dims()
        && a.dims() == c.dims()
        && let (Some(x), Some(y), Some(z)) = (a.as_slice(), b.as_slice(), c.as_slice())
    {
        return Tensor::try_from_fill(a.shape().clone(), |out| zip3(x, y, z, out));
    }
    // Pairwise broadcastable shapes broadcast together.
    let ab = broadcast_shapes(op, a.shape(), b.shape())?;
    broadcast_shapes(op, a.shape(), c.shape())?;
    broadcast_shapes(op, b.shape(), c.shape())?;
    let shape = broadcast_shapes(op, &ab, c.shape())?;
    let la = a.layout.broadcast_to(op, &shape)?;
    let lb = b.layout.broadcast_to(op, &shape)?;
    let lc = c.layout.broadcast_to(op, &shape)?;
    let (sa, sb, sc) = (
        a.storage.as_slice(),
        b.storage.as_slice(),
        c.storage.as_slice(),
    );
    Tensor::try_from_fill(shape, |out| {
        let mut pos = 0;
        for run in Walker::new([&la, &lb, &lc]) {
            let (n, [oa, ob, oc]) = (run.len, run.offsets);
            let dst = &mut out[pos..pos + n];
            match run.strides {
                [1, 1, 1] => zip3(&sa[oa..oa + n], &sb[ob..ob + n], &sc[oc..oc + n], dst),
                [ta, tb, tc] => {
                    for (i, o) in dst.iter_mut().enumerate() {
                        *o = k(sa[oa + i * ta], sb[ob + i * tb], sc[oc + i * tc]);
                    }
                }
            }
            pos += n;
        }
    })
}

// ------------------------------------------------------------- operators

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident, $rscalar:expr) => {
        impl core::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            #[inline]
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
