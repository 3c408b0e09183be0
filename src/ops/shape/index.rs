//! Indexing: `index_select`, `gather` and `scatter_add`, with index tensors
//! of whole numbers.

use alloc::vec;

use super::{
    add_runs, at_least_1d, copy_runs, corner, indices, mismatch, put_add, take, without_dim,
};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::ops::grad_if;
use crate::tensor::layout::Layout;
use crate::tensor::{Dim, Tensor};

impl Tensor {
    /// The sub-tensors at `index` along `dim`, in that order (as
    /// `torch.index_select`): the result has `self`'s shape with `dim` of size
    /// `index.numel()`. `index` is a 0-D or 1-D f32 tensor of whole numbers in
    /// `0..size(dim)`; indices may repeat (their gradients accumulate). On a
    /// 0-D `self` it takes one index and gives a 0-D result.
    ///
    /// # Panics
    /// On a bad dimension or index; see [`try_index_select`](Self::try_index_select).
    #[track_caller]
    pub fn index_select(&self, dim: impl Dim, index: &Tensor) -> Tensor {
        unwrap(self.try_index_select(dim, index))
    }

    /// [`index_select`](Self::index_select), or an error: `IndexOutOfRange`
    /// naming `index_select`, the index and the size; `InvalidArgument` for a
    /// fractional index or an index tensor of rank > 1; `DimOutOfRange`.
    pub fn try_index_select(&self, dim: impl Dim, index: &Tensor) -> Result<Tensor> {
        let op = "index_select";
        let lx = at_least_1d(op, &self.layout)?;
        let d = dim.resolve(op, lx.rank())?;
        if index.rank() > 1 {
            return Err(Error::InvalidArgument {
                op,
                detail: "the index must be a 0-D or 1-D tensor",
            });
        }
        let idx = indices(op, index, lx.dims()[d])?;
        if self.rank() == 0 && idx.len() != 1 {
            return Err(Error::InvalidArgument {
                op,
                detail: "indexing a 0-D tensor takes exactly one index",
            });
        }
        let mut shape = lx.shape().clone();
        shape.set_dim(op, d, idx.len())?;
        let lo = Layout::contiguous(shape.clone());
        let src = self.storage.as_slice();
        // An empty result (another dimension is 0) copies nothing: no pass
        // over the (already checked) indices.
        let out = Tensor::try_from_fill(shape, |buf| {
            if buf.is_empty() {
                return;
            }
            for (j, &i) in idx.iter().enumerate() {
                copy_runs(buf, &lo.select(d, j), src, &lx.select(d, i));
            }
        })?;
        let out = if self.rank() == 0 {
            out.try_reshape([0usize; 0])?
        } else {
            out
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (in_shape, full) = (self.shape().clone(), lx.shape().clone());
        Ok(out.record("IndexSelectBackward0", &[self], move |g, _| {
            // index_add of g into zeros.
            let lg = at_least_1d(op, &g.layout)?;
            let lz = Layout::contiguous(full.clone());
            let gin = Tensor::try_from_fill(full.clone(), |buf| {
                buf.fill(0.0);
                if g.numel() == 0 {
                    return;
                }
                for (j, &i) in idx.iter().enumerate() {
                    add_runs(
                        buf,
                        &lz.select(d, i),
                        g.storage.as_slice(),
                        &lg.select(d, j),
                    );
                }
            })?;
            Ok(vec![Some(gin.try_reshape(&in_shape)?)])
        }))
    }

    /// Values along `dim` picked by `index` (as `torch.gather`):
    /// `out[i][j][k] = self[index[i][j][k]][j][k]` for `dim = 0`, and so on.
    /// `index` has `self`'s rank and is no larger than `self` in every
    /// dimension except `dim`; the result has `index`'s shape. Indices are
    /// whole numbers in `0..size(dim)`.
    ///
    /// # Panics
    /// On a shape or index error; see [`try_gather`](Self::try_gather).
    #[track_caller]
    pub fn gather(&self, dim: impl Dim, index: &Tensor) -> Tensor {
        unwrap(self.try_gather(dim, index))
    }

    /// [`gather`](Self::gather), or an error: `ShapeMismatch` naming `gather`,
    /// `self`'s and the index's shapes; `IndexOutOfRange` naming the index and
    /// the size; `InvalidArgument` for a fractional index; `DimOutOfRange`.
    pub fn try_gather(&self, dim: impl Dim, index: &Tensor) -> Result<Tensor> {
        let op = "gather";
        if index.rank() != self.rank() {
            return Err(mismatch(
                op,
                self.shape(),
                index.shape(),
                "the index must have as many dimensions as the input",
            ));
        }
        let (lx, li) = (
            at_least_1d(op, &self.layout)?,
            at_least_1d(op, &index.layout)?,
        );
        let d = dim.resolve(op, lx.rank())?;
        if (0..lx.rank()).any(|i| i != d && li.dims()[i] > lx.dims()[i]) {
            return Err(mismatch(
                op,
                self.shape(),
                index.shape(),
                "the index may not be larger than the input in any dimension except dim",
            ));
        }
        let idx = indices(op, index, lx.dims()[d])?;
        let ishape = li.shape().clone();
        let lpos = Layout::contiguous(ishape.clone());
        let base = without_dim(&lx, &ishape, d);
        let sd = lx.strides()[d];
        let out = Tensor::try_from_fill(ishape.clone(), |buf| {
            take(buf, &lpos, self.storage.as_slice(), &base, sd, &idx, &lpos)
        })?
        .try_reshape(index.shape())?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (in_shape, full) = (self.shape().clone(), lx.shape().clone());
        Ok(out.record("GatherBackward0", &[self], move |g, _| {
            // scatter_add of g into zeros.
            let lg = at_least_1d(op, &g.layout)?;
            let lz = Layout::contiguous(full.clone());
            let base = without_dim(&lz, &ishape, d);
            let sd = lz.strides()[d];
            let gin = Tensor::try_from_fill(full.clone(), |buf| {
                buf.fill(0.0);
                put_add(buf, &base, sd, g.storage.as_slice(), &lg, &idx, &lpos);
            })?;
            Ok(vec![Some(gin.try_reshape(&in_shape)?)])
        }))
    }

    /// `self` with `src` added at the positions `index` names along `dim` (as
    /// `torch.Tensor.scatter_add`, out of place): for `dim = 0`,
    /// `out[index[i][j][k]][j][k] += src[i][j][k]` for every position of
    /// `index`. `self`, `index` and `src` have one rank; `index` is no larger
    /// than `src` in any dimension and no larger than `self` except along
    /// `dim`. Repeated indices accumulate.
    ///
    /// Gradients: `g` for `self`; for `src`, `g` gathered at `index` (zeros
    /// where `src` is larger than `index`, where PyTorch raises an error).
    ///
    /// # Panics
    /// On a shape or index error; see [`try_scatter_add`](Self::try_scatter_add).
    #[track_caller]
    pub fn scatter_add(&self, dim: impl Dim, index: &Tensor, src: &Tensor) -> Tensor {
        unwrap(self.try_scatter_add(dim, index, src))
    }

    /// [`scatter_add`](Self::scatter_add), or an error: `ShapeMismatch` naming
    /// `scatter_add` and the two shapes that do not fit; `IndexOutOfRange`
    /// naming the index and the size; `InvalidArgument` for a fractional index;
    /// `DimOutOfRange`.
    pub fn try_scatter_add(&self, dim: impl Dim, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let op = "scatter_add";
        if index.rank() != self.rank() {
            return Err(mismatch(
                op,
                self.shape(),
                index.shape(),
                "the index must have as many dimensions as the input",
            ));
        }
        if src.rank() != index.rank() {
            return Err(mismatch(
                op,
                index.shape(),
                src.shape(),
                "the index must have as many dimensions as the source",
            ));
        }
        let lx = at_least_1d(op, &self.layout)?;
        let li = at_least_1d(op, &index.layout)?;
        let ls = at_least_1d(op, &src.layout)?;
        let d = dim.resolve(op, lx.rank())?;
        if (0..li.rank()).any(|i| li.dims()[i] > ls.dims()[i]) {
            return Err(mismatch(
                op,
                index.shape(),
                src.shape(),
                "the index may not be larger than the source in any dimension",
            ));
        }
        if (0..li.rank()).any(|i| i != d && li.dims()[i] > lx.dims()[i]) {
            return Err(mismatch(
                op,
                self.shape(),
                index.shape(),
                "the index may not be larger than the input in any dimension except dim",
            ));
        }
        let idx = indices(op, index, lx.dims()[d])?;
        let ishape = li.shape().clone();
        let lpos = Layout::contiguous(ishape.clone());
        let lo = Layout::contiguous(lx.shape().clone());
        let out = Tensor::try_from_fill(lx.shape().clone(), |buf| {
            self.gather_into(buf);
            let base = without_dim(&lo, &ishape, d);
            let region = corner(&ls, &ishape);
            let sd = lo.strides()[d];
            put_add(buf, &base, sd, src.storage.as_slice(), &region, &idx, &lpos);
        })?
        .try_reshape(self.shape())?;
        if !needs_grad(&[self, src]) {
            return Ok(out);
        }
        let (src_shape, src_full) = (src.shape().clone(), ls.shape().clone());
        Ok(
            out.record("ScatterAddBackward0", &[self, src], move |g, need| {
                Ok(vec![
                    grad_if(need[0], || Ok(g.clone()))?,
                    grad_if(need[1], || {
                        // g gathered at index, in the corner of src it came from.
                        let lg = at_least_1d(op, &g.layout)?;
                        let base = without_dim(&lg, &ishape, d);
                        let sd = lg.strides()[d];
                        let lz = Layout::contiguous(src_full.clone());
                        let gsrc = Tensor::try_from_fill(src_full.clone(), |buf| {
                            buf.fill(0.0);
                            let region = corner(&lz, &ishape);
                            take(buf, &region, g.storage.as_slice(), &base, sd, &idx, &lpos);
                        })?;
                        gsrc.try_reshape(&src_shape)
                    })?,
                ])
            }),
        )
    }
}
