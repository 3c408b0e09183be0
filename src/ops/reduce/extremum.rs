//! `max`/`min` (all, over dims, along one dim with indices) and
//! `argmax`/`argmin`, with their gradients.

use alloc::vec;

use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

use super::dim_mask;
use super::fold::{
    Pick, Plan, all_mask, extremum, finish, one_mask, per_group, scatter, ties_backward, vals,
};

impl Tensor {
    // ------------------------------------------------------------ max / min

    /// The largest element as a 0-D tensor; NaN if any element is NaN. The
    /// gradient is split evenly among the elements equal to the maximum (as
    /// PyTorch's `max()`).
    ///
    /// # Panics
    /// If the tensor is empty; see [`try_max`](Self::try_max).
    #[track_caller]
    pub fn max(&self) -> Tensor {
        unwrap(self.try_max())
    }

    /// [`max`](Self::max), or `InvalidArgument` for an empty tensor.
    pub fn try_max(&self) -> Result<Tensor> {
        self.extreme_all("max", "MaxBackward1", Pick::Max)
    }

    /// The smallest element as a 0-D tensor; NaN if any element is NaN. The
    /// gradient is split evenly among the elements equal to the minimum.
    ///
    /// # Panics
    /// If the tensor is empty; see [`try_min`](Self::try_min).
    #[track_caller]
    pub fn min(&self) -> Tensor {
        unwrap(self.try_min())
    }

    /// [`min`](Self::min), or `InvalidArgument` for an empty tensor.
    pub fn try_min(&self) -> Result<Tensor> {
        self.extreme_all("min", "MinBackward1", Pick::Min)
    }

    fn extreme_all(&self, op: &'static str, name: &'static str, pick: Pick) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), all_mask(self.rank()))?;
        plan.check_nonempty(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let out = finish::<2>(&st, Shape::scalar(), |s| s[0])?;
        Ok(self.record_ties(out, name, plan, true))
    }

    /// Largest values over `dims` (negative counts from the end; empty = all),
    /// keeping them as size 1 if `keepdim` (PyTorch's `amax`). NaN propagates.
    /// The gradient of each result is split evenly among the elements equal to
    /// it.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated, or a reduced dimension is
    /// empty; see [`try_max_dims`](Self::try_max_dims).
    #[track_caller]
    pub fn max_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_max_dims(dims, keepdim))
    }

    /// [`max_dims`](Self::max_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_max_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("max_dims", dims.as_ref(), self.rank())?;
        self.extreme_dims("max_dims", "AmaxBackward0", mask, keepdim, Pick::Max)
    }

    /// Smallest values over `dims` (empty = all), keeping them as size 1 if
    /// `keepdim` (PyTorch's `amin`); see [`max_dims`](Self::max_dims).
    ///
    /// # Panics
    /// As [`max_dims`](Self::max_dims); see [`try_min_dims`](Self::try_min_dims).
    #[track_caller]
    pub fn min_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_min_dims(dims, keepdim))
    }

    /// [`min_dims`](Self::min_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_min_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("min_dims", dims.as_ref(), self.rank())?;
        self.extreme_dims("min_dims", "AminBackward0", mask, keepdim, Pick::Min)
    }

    fn extreme_dims(
        &self,
        op: &'static str,
        name: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
        pick: Pick,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), mask)?;
        plan.check_nonempty(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let out = finish::<2>(&st, plan.shape(keepdim), |s| s[0])?;
        Ok(self.record_ties(out, name, plan, false))
    }

    /// Records a max/min value reduction; see [`ties_backward`].
    fn record_ties(&self, out: Tensor, name: &'static str, plan: Plan, nan_aware: bool) -> Tensor {
        if !needs_grad(&[self]) {
            return out;
        }
        let (x, r) = (self.detach(), out.detach());
        out.record(name, &[self], move |g, _| {
            Ok(vec![Some(ties_backward(&plan, &x, &r, g, nan_aware)?)])
        })
    }

    /// The largest values along `dim` and their positions (as f32), like
    /// `torch.max(x, dim, keepdim)`: the first occurrence on ties, and a NaN
    /// counts as the largest (its first position is returned). The gradient
    /// of the values goes to the returned positions; the indices have none.
    ///
    /// # Panics
    /// If `dim` is out of range, empty, or longer than 2^24; see
    /// [`try_max_dim`](Self::try_max_dim).
    #[track_caller]
    pub fn max_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        unwrap(self.try_max_dim(dim, keepdim))
    }

    /// [`max_dim`](Self::max_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_max_dim(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("max_dim", "MaxBackward0", dim, keepdim, Pick::Max)
    }

    /// The smallest values along `dim` and their positions (as f32), like
    /// `torch.min(x, dim, keepdim)`; see [`max_dim`](Self::max_dim).
    ///
    /// # Panics
    /// As [`max_dim`](Self::max_dim); see [`try_min_dim`](Self::try_min_dim).
    #[track_caller]
    pub fn min_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        unwrap(self.try_min_dim(dim, keepdim))
    }

    /// [`min_dim`](Self::min_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_min_dim(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("min_dim", "MinBackward0", dim, keepdim, Pick::Min)
    }

    fn extreme_dim(
        &self,
        op: &'static str,
        name: &'static str,
        dim: impl Dim,
        keepdim: bool,
        pick: Pick,
    ) -> Result<(Tensor, Tensor)> {
        let plan = Plan::new(op, self.shape(), one_mask(op, dim, self.rank())?)?;
        plan.check_nonempty(op)?;
        plan.check_index_range(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let shape = plan.shape(keepdim);
        let values = finish::<2>(&st, shape.clone(), |s| s[0])?;
        let indices = finish::<2>(&st, shape, |s| s[1])?;
        if !needs_grad(&[self]) {
            return Ok((values, indices));
        }
        let idx = indices.detach();
        let values = values.record(name, &[self], move |g, _| {
            let (idx, g) = (per_group(&idx, &plan)?, per_group(g, &plan)?);
            let (iv, gv) = (vals(&idx), vals(&g));
            Ok(vec![Some(scatter(&plan, |k, j| {
                if k as f32 == iv[j] { gv[j] } else { 0.0 }
            })?)])
        });
        Ok((values, indices))
    }

    // ------------------------------------------------------- argmax / argmin

    /// Position of the largest element in the flattened (row-major) tensor, as
    /// a 0-D f32 tensor: the first on ties, the first NaN if any.
    ///
    /// # Panics
    /// If the tensor is empty or holds more than 2^24 elements; see
    /// [`try_argmax`](Self::try_argmax).
    #[track_caller]
    pub fn argmax(&self) -> Tensor {
        unwrap(self.try_argmax())
    }

    /// [`argmax`](Self::argmax), or `InvalidArgument`.
    pub fn try_argmax(&self) -> Result<Tensor> {
        self.arg_extreme("argmax", all_mask(self.rank()), false, Pick::Max)
    }

    /// Position of the smallest element in the flattened tensor (first on
    /// ties, the first NaN if any), as a 0-D f32 tensor.
    ///
    /// # Panics
    /// As [`argmax`](Self::argmax); see [`try_argmin`](Self::try_argmin).
    #[track_caller]
    pub fn argmin(&self) -> Tensor {
        unwrap(self.try_argmin())
    }

    /// [`argmin`](Self::argmin), or `InvalidArgument`.
    pub fn try_argmin(&self) -> Result<Tensor> {
        self.arg_extreme("argmin", all_mask(self.rank()), false, Pick::Min)
    }

    /// Positions (as f32) of the largest values along `dim`; the indices of
    /// [`max_dim`](Self::max_dim).
    ///
    /// # Panics
    /// If `dim` is out of range, empty, or longer than 2^24; see
    /// [`try_argmax_dim`](Self::try_argmax_dim).
    #[track_caller]
    pub fn argmax_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        unwrap(self.try_argmax_dim(dim, keepdim))
    }

    /// [`argmax_dim`](Self::argmax_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_argmax_dim(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let mask = one_mask("argmax_dim", dim, self.rank())?;
        self.arg_extreme("argmax_dim", mask, keepdim, Pick::Max)
    }

    /// Positions (as f32) of the smallest values along `dim`; the indices of
    /// [`min_dim`](Self::min_dim).
    ///
    /// # Panics
    /// As [`argmax_dim`](Self::argmax_dim); see
    /// [`try_argmin_dim`](Self::try_argmin_dim).
    #[track_caller]
    pub fn argmin_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        unwrap(self.try_argmin_dim(dim, keepdim))
    }

    /// [`argmin_dim`](Self::argmin_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_argmin_dim(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let mask = one_mask("argmin_dim", dim, self.rank())?;
        self.arg_extreme("argmin_dim", mask, keepdim, Pick::Min)
    }

    fn arg_extreme(
        &self,
        op: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
        pick: Pick,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), mask)?;
        plan.check_nonempty(op)?;
        plan.check_index_range(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        finish::<2>(&st, plan.shape(keepdim), |s| s[1])
    }
}
