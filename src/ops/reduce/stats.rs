//! `var`/`std` (with a correction), `norm` (p = 1, 2, inf), `logsumexp` and
//! `prod`, with their gradients.

use alloc::vec;

use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::{Dim, MAX_RANK, Tensor};

use super::dim_mask;
use super::fold::{
    Pick, Plan, all_mask, expand, extremum, finish, fold, fold_sums, per_group, sgn, states, vals,
};

impl Tensor {
    // ------------------------------------------------------------- var / std

    /// Unbiased variance of all elements (correction 1, PyTorch's default), as
    /// a 0-D tensor: NaN for fewer than two elements. Panics if memory runs
    /// out.
    #[track_caller]
    pub fn var(&self) -> Tensor {
        unwrap(self.try_var())
    }

    /// [`var`](Self::var), or `OutOfMemory`.
    pub fn try_var(&self) -> Result<Tensor> {
        self.try_var_dims::<usize>(&[], 1, false)
    }

    /// Variance over `dims` (negative counts from the end; empty = all):
    /// `sum((x - mean)^2) / max(0, n - correction)` with `n` elements per
    /// result (correction 1 = unbiased, 0 = population), keeping the reduced
    /// dimensions as size 1 if `keepdim`. Computed in two passes (mean, then
    /// compensated sums of deviations), so a large mean costs no accuracy.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_var_dims`](Self::try_var_dims).
    #[track_caller]
    pub fn var_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Tensor {
        unwrap(self.try_var_dims(dims, correction, keepdim))
    }

    /// [`var_dims`](Self::var_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_var_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        self.var_std("var", dims.as_ref(), correction, keepdim, false)
    }

    /// Unbiased standard deviation of all elements (correction 1), as a 0-D
    /// tensor. Panics if memory runs out.
    #[track_caller]
    pub fn std(&self) -> Tensor {
        unwrap(self.try_std())
    }

    /// [`std`](Self::std), or `OutOfMemory`.
    pub fn try_std(&self) -> Result<Tensor> {
        self.try_std_dims::<usize>(&[], 1, false)
    }

    /// Standard deviation over `dims`: the square root of
    /// [`var_dims`](Self::var_dims) with the same arguments. Where the result
    /// is 0 its gradient is 0 (as in PyTorch).
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_std_dims`](Self::try_std_dims).
    #[track_caller]
    pub fn std_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Tensor {
        unwrap(self.try_std_dims(dims, correction, keepdim))
    }

    /// [`std_dims`](Self::std_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_std_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        self.var_std("std", dims.as_ref(), correction, keepdim, true)
    }

    fn var_std<D: Dim>(
        &self,
        op: &'static str,
        dims: &[D],
        correction: usize,
        keepdim: bool,
        sqrt: bool,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), dim_mask(op, dims, self.rank())?)?;
        let n = plan.count as f32;
        // Pass 1: the mean.
        let sums = fold_sums(&plan, self, |v, _| [v])?;
        let mean = finish::<1>(&sums, plan.keep.clone(), |s| s[0] / n)?;
        // Pass 2: sums of deviations d and d^2; sum(d)^2 / n removes what the
        // rounding of the mean added.
        let mv = vals(&mean);
        let dev = fold_sums(&plan, self, |v, j| {
            let d = v - mv[j];
            [d, d * d]
        })?;
        let dof = (n - correction as f32).max(0.0);
        let out = finish::<2>(&dev, plan.shape(keepdim), |s| {
            let var = (s[1] - s[0] * s[0] / n) / dof;
            if sqrt { crate::math::sqrtf(var) } else { var }
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        // PyTorch's var_backward: without dims (or for a 0-D input) and dof <= 0
        // the gradient is NaN where x == mean and inf elsewhere; otherwise
        // 2 / (n - correction) * g * (x - mean).
        let whole = dims.is_empty() || self.rank() == 0;
        let dof = n - correction as f32;
        let (x, r) = (self.detach(), out.detach());
        // The mean refined by the deviations' sum: the f32 nearest the true
        // mean, as far as the compensated sums resolve it.
        let dv = states::<2>(&dev);
        let mean = Tensor::try_from_fill(plan.keep.clone(), |o| {
            for ((o, &m), s) in o.iter_mut().zip(mv).zip(dv) {
                *o = m + s[0] / n;
            }
        })?;
        let name = if sqrt { "StdBackward0" } else { "VarBackward0" };
        Ok(out.record(name, &[self], move |g, _| {
            let mut g = per_group(g, &plan)?;
            if sqrt {
                // d std = d var / (2 std), and 0 where std == 0.
                let r = per_group(&r, &plan)?;
                let rv = vals(&r);
                let gv = vals(&g);
                g = Tensor::try_from_fill(plan.keep.clone(), |o| {
                    for ((o, &g), &s) in o.iter_mut().zip(gv).zip(rv) {
                        *o = if s == 0.0 { 0.0 } else { g / (s * 2.0) };
                    }
                })?;
            }
            let (gv, mv) = (vals(&g), vals(&mean));
            let grad = if whole && dof <= 0.0 {
                expand(&plan, &x, |v, _, j| {
                    gv[j] * if v == mv[j] { f32::NAN } else { f32::INFINITY }
                })?
            } else {
                let f = 2.0 / dof;
                expand(&plan, &x, |v, _, j| f * gv[j] * (v - mv[j]))?
            };
            Ok(vec![Some(grad)])
        }))
    }

    // ------------------------------------------------------------------ norm

    /// Euclidean (L2) norm of all elements, as a 0-D tensor. Panics if memory
    /// runs out.
    #[track_caller]
    pub fn norm(&self) -> Tensor {
        unwrap(self.try_norm())
    }

    /// [`norm`](Self::norm), or `OutOfMemory`.
    pub fn try_norm(&self) -> Result<Tensor> {
        self.try_norm_dims::<usize>(2.0, &[], false)
    }

    /// The `p`-norm of all elements (`p` = 1, 2 or `f32::INFINITY`), as a 0-D
    /// tensor.
    ///
    /// # Panics
    /// For another `p`, or an empty tensor with `p = inf`; see
    /// [`try_norm_p`](Self::try_norm_p).
    #[track_caller]
    pub fn norm_p(&self, p: f32) -> Tensor {
        unwrap(self.try_norm_p(p))
    }

    /// [`norm_p`](Self::norm_p), or `InvalidArgument`.
    pub fn try_norm_p(&self, p: f32) -> Result<Tensor> {
        self.try_norm_dims::<usize>(p, &[], false)
    }

    /// The vector `p`-norm over `dims` (empty = all), keeping them as size 1
    /// if `keepdim` (PyTorch's `linalg.vector_norm`): `p = 1` sums `|x|`,
    /// `p = 2` is `sqrt(sum(x^2))`, `p = f32::INFINITY` is `max(|x|)`.
    /// Gradients as PyTorch: `sgn(x) * g` for p = 1; `g * x / norm` for p = 2,
    /// and 0 where the norm is 0; for p = inf `sgn(x) * g` split evenly among
    /// the elements whose `|x|` equals the norm.
    ///
    /// # Panics
    /// If `p` is not 1, 2 or inf, a dimension is out of range or repeated, or
    /// (p = inf) a reduced dimension is empty; see
    /// [`try_norm_dims`](Self::try_norm_dims).
    #[track_caller]
    pub fn norm_dims<D: Dim>(&self, p: f32, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_norm_dims(p, dims, keepdim))
    }

    /// [`norm_dims`](Self::norm_dims), or `InvalidArgument` / `DimOutOfRange`.
    pub fn try_norm_dims<D: Dim>(
        &self,
        p: f32,
        dims: impl AsRef<[D]>,
        keepdim: bool,
    ) -> Result<Tensor> {
        let op = "norm";
        if !(p == 1.0 || p == 2.0 || p == f32::INFINITY) {
            return Err(Error::InvalidArgument {
                op,
                detail: "p must be 1, 2 or infinity",
            });
        }
        let plan = Plan::new(op, self.shape(), dim_mask(op, dims.as_ref(), self.rank())?)?;
        let shape = plan.shape(keepdim);
        let out = if p == f32::INFINITY {
            plan.check_nonempty(op)?;
            let st = extremum(&plan, self, Pick::Max, libm::fabsf)?;
            finish::<2>(&st, shape, |s| s[0])?
        } else {
            let square = p == 2.0;
            let st = fold_sums(&plan, self, |v, _| {
                [if square { v * v } else { libm::fabsf(v) }]
            })?;
            finish::<1>(&st, shape, |s| {
                if square {
                    crate::math::sqrtf(s[0])
                } else {
                    s[0]
                }
            })?
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(
            out.record("LinalgVectorNormBackward0", &[self], move |g, _| {
                let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
                let (rv, gv) = (vals(&r), vals(&g));
                let grad = if p == 1.0 {
                    expand(&plan, &x, |v, _, j| sgn(v) * gv[j])?
                } else if p == 2.0 {
                    expand(&plan, &x, |v, _, j| {
                        if rv[j] == 0.0 {
                            0.0
                        } else {
                            gv[j] * (v / rv[j])
                        }
                    })?
                } else {
                    let hit = |v: f32, j: usize| {
                        let a = libm::fabsf(v);
                        a == rv[j] || a.is_nan()
                    };
                    let count = fold(&plan, &x, [0.0], |s, v, _, j| {
                        if hit(v, j) {
                            s[0] += 1.0;
                        }
                    })?;
                    let cv = states::<1>(&count);
                    expand(&plan, &x, |v, _, j| {
                        let m = if hit(v, j) { 1.0 } else { 0.0 };
                        sgn(v) * ((gv[j] / cv[j][0]) * m)
                    })?
                };
                Ok(vec![Some(grad)])
            }),
        )
    }

    // ------------------------------------------------------------- logsumexp

    /// `log(sum(exp(x)))` over `dims` (empty = all), keeping them as size 1 if
    /// `keepdim`. Stable: each group's maximum is subtracted before `exp` (0
    /// instead when the maximum is infinite), so all `-inf` gives `-inf`, as in
    /// PyTorch. Each group is summed as a row by the kernel table (SIMD `exp`,
    /// the documented summation order; the reduced dimensions are first moved
    /// last, which copies unless they already are). Gradient:
    /// `g * exp(x - result)`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_logsumexp`](Self::try_logsumexp).
    #[track_caller]
    pub fn logsumexp<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_logsumexp(dims, keepdim))
    }

    /// [`logsumexp`](Self::logsumexp), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_logsumexp<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let op = "logsumexp";
        let mask = dim_mask(op, dims.as_ref(), self.rank())?;
        let plan = Plan::new(op, self.shape(), mask)?;
        let out = self.logsumexp_rows(&mask, &plan, keepdim)?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(out.record("LogsumexpBackward0", &[self], move |g, _| {
            let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
            Ok(vec![Some(
                x.try_sub_tensor(&r)?.try_exp()?.try_mul_tensor(&g)?,
            )])
        }))
    }

    /// The forward of [`try_logsumexp`](Self::try_logsumexp): the kept
    /// dimensions first and the reduced ones last (in order), contiguous, so
    /// each group is one row; rows in parallel.
    fn logsumexp_rows(
        &self,
        mask: &[bool; MAX_RANK],
        plan: &Plan,
        keepdim: bool,
    ) -> Result<Tensor> {
        let rank = self.rank();
        let mut perm = [0usize; MAX_RANK];
        let kept = (0..rank).filter(|&d| !mask[d]);
        for (p, d) in perm
            .iter_mut()
            .zip(kept.chain((0..rank).filter(|&d| mask[d])))
        {
            *p = d;
        }
        let moved = self.with_layout(self.layout.permute(&perm[..rank]));
        let rows = if moved.is_contiguous() {
            moved
        } else {
            moved.try_materialize()?
        };
        let x = rows.as_slice().expect("contiguous");
        let (len, k) = (plan.count, crate::kernels::table().logsumexp);
        Tensor::try_from_fill(plan.shape(keepdim), |out| {
            crate::kernels::parallel::row_results(out, len, |r| k(&x[r * len..(r + 1) * len]))
        })
    }
    // ------------------------------------------------------------------ prod

    /// Product of all elements, as a 0-D tensor (1 for an empty tensor).
    /// Panics if memory runs out.
    #[track_caller]
    pub fn prod(&self) -> Tensor {
        unwrap(self.try_prod())
    }

    /// [`prod`](Self::prod), or `OutOfMemory`.
    pub fn try_prod(&self) -> Result<Tensor> {
        self.prod_mask("ProdBackward0", all_mask(self.rank()), false)
    }

    /// Product over `dims` (empty = all), keeping them as size 1 if `keepdim`.
    /// Elements are multiplied in order. The gradient is exact with zeros in
    /// the input: with one zero in a group only the zero gets a gradient (the
    /// product of the others), with two or more the group's gradient is 0.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_prod_dims`](Self::try_prod_dims).
    #[track_caller]
    pub fn prod_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_prod_dims(dims, keepdim))
    }

    /// [`prod_dims`](Self::prod_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_prod_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("prod", dims.as_ref(), self.rank())?;
        self.prod_mask("ProdBackward1", mask, keepdim)
    }

    fn prod_mask(
        &self,
        name: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
    ) -> Result<Tensor> {
        let plan = Plan::new("prod", self.shape(), mask)?;
        let st = fold(&plan, self, [1.0], |s, v, _, _| s[0] *= v)?;
        let out = finish::<1>(&st, plan.shape(keepdim), |s| s[0])?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(out.record(name, &[self], move |g, _| {
            let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
            let (rv, gv) = (vals(&r), vals(&g));
            // Per group: [number of zeros, product of the other elements].
            let zeros = fold(&plan, &x, [0.0, 1.0], |s, v, _, _| {
                if v == 0.0 {
                    s[0] += 1.0;
                } else {
                    s[1] *= v;
                }
            })?;
            let zv = states::<2>(&zeros);
            Ok(vec![Some(expand(&plan, &x, |v, _, j| match zv[j][0] {
                0.0 => gv[j] * (rv[j] / v),
                1.0 if v == 0.0 => gv[j] * zv[j][1],
                _ => 0.0,
            })?)])
        }))
    }
}
