//! Joining: `cat` along an existing dimension and `stack` along a new one.

use alloc::vec::Vec;
use core::borrow::Borrow;

use super::{borrowed, copy_runs, mismatch};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::ops::grad_if;
use crate::tensor::layout::Layout;
use crate::tensor::{Dim, MAX_RANK, Tensor};

impl Tensor {
    /// Joins tensors along the existing dimension `dim` (negative counts from
    /// the end), as `torch.cat`.
    ///
    /// Takes a slice of tensors or of references to them:
    /// `Tensor::cat(&[&a, &b], 0)`, or `Tensor::cat(&parts, -1)` for
    /// `parts: Vec<Tensor>`. All tensors need the same rank and the same sizes
    /// except along `dim`; 1-D empty tensors (shape `[0]`) are skipped, as in
    /// PyTorch.
    ///
    /// # Panics
    /// If the list is empty, a tensor is 0-D, or the shapes do not fit; see
    /// [`try_cat`](Self::try_cat).
    #[track_caller]
    pub fn cat<T: Borrow<Tensor>>(tensors: &[T], dim: impl Dim) -> Tensor {
        unwrap(Self::try_cat(tensors, dim))
    }

    /// [`cat`](Self::cat), or an error: `ShapeMismatch` naming `cat`, the first
    /// tensor's shape and the first shape that does not fit it;
    /// `InvalidArgument` for an empty list or a 0-D tensor; `DimOutOfRange`.
    pub fn try_cat<T: Borrow<Tensor>>(tensors: &[T], dim: impl Dim) -> Result<Tensor> {
        let op = "cat";
        let ts = borrowed(tensors);
        let skip = |t: &Tensor| t.rank() == 1 && t.dims()[0] == 0;
        let Some(&first) = ts.iter().find(|t| !skip(t)).or(ts.first()) else {
            return Err(Error::InvalidArgument {
                op,
                detail: "expects a non-empty list of tensors",
            });
        };
        if ts.iter().any(|t| t.rank() == 0) {
            return Err(Error::InvalidArgument {
                op,
                detail: "zero-dimensional tensors cannot be concatenated",
            });
        }
        let d = dim.resolve(op, first.rank())?;
        let mut total = 0usize;
        for t in ts.iter().filter(|t| !skip(t)) {
            if t.rank() != first.rank() {
                return Err(mismatch(
                    op,
                    first.shape(),
                    t.shape(),
                    "tensors must have the same number of dimensions",
                ));
            }
            if (0..t.rank()).any(|i| i != d && t.dims()[i] != first.dims()[i]) {
                return Err(mismatch(
                    op,
                    first.shape(),
                    t.shape(),
                    "sizes must match except in the concatenation dimension",
                ));
            }
            total = total
                .checked_add(t.dims()[d])
                .ok_or(Error::InvalidArgument {
                    op,
                    detail: "numel: integer multiplication overflow (the joined size does not fit in usize)",
                })?;
        }
        // Where each input lands along `d` (`None`: a skipped empty tensor).
        // If every tensor is `[0]`, none is skipped (the result is `[0]`).
        let all_empty = skip(first);
        let mut spans: Vec<Option<(usize, usize)>> = Vec::with_capacity(ts.len());
        let mut at = 0;
        for t in &ts {
            spans.push((all_empty || !skip(t)).then(|| {
                let n = t.dims()[d];
                at += n;
                (at - n, n)
            }));
        }
        let mut shape = first.shape().clone();
        shape.set_dim(op, d, total)?;
        let lo = Layout::contiguous(shape.clone());
        let out = Tensor::try_from_fill(shape, |buf| {
            for (t, span) in ts.iter().zip(&spans) {
                if let Some((at, n)) = *span {
                    let region = lo.slice(d, at, at + n, 1);
                    copy_runs(buf, &region, t.storage.as_slice(), &t.layout);
                }
            }
        })?;
        if !needs_grad(&ts) {
            return Ok(out);
        }
        Ok(out.record("CatBackward0", &ts, move |g, need| {
            spans
                .iter()
                .zip(need)
                .map(|(span, &n)| {
                    grad_if(n, || match *span {
                        Some((at, len)) => g.try_narrow(d, at, len),
                        None => Tensor::try_zeros([0]),
                    })
                })
                .collect()
        }))
    }

    /// Joins same-shaped tensors along a new dimension `dim` (in
    /// `-(rank + 1)..=rank`), as `torch.stack`. Takes `&[Tensor]` or
    /// `&[&Tensor]` like [`cat`](Self::cat).
    ///
    /// # Panics
    /// If the list is empty or the shapes differ; see
    /// [`try_stack`](Self::try_stack).
    #[track_caller]
    pub fn stack<T: Borrow<Tensor>>(tensors: &[T], dim: impl Dim) -> Tensor {
        unwrap(Self::try_stack(tensors, dim))
    }

    /// [`stack`](Self::stack), or an error: `ShapeMismatch` naming `stack`, the
    /// first tensor's shape and the first that differs; `InvalidArgument` for
    /// an empty list; `DimOutOfRange`; `RankTooHigh`.
    pub fn try_stack<T: Borrow<Tensor>>(tensors: &[T], dim: impl Dim) -> Result<Tensor> {
        let op = "stack";
        let ts = borrowed(tensors);
        let Some(&first) = ts.first() else {
            return Err(Error::InvalidArgument {
                op,
                detail: "expects a non-empty list of tensors",
            });
        };
        let d = dim.resolve(op, first.rank() + 1)?;
        if let Some(t) = ts.iter().find(|t| t.dims() != first.dims()) {
            return Err(mismatch(
                op,
                first.shape(),
                t.shape(),
                "all tensors must have the same shape",
            ));
        }
        if first.rank() == MAX_RANK {
            return Err(Error::RankTooHigh {
                op,
                rank: MAX_RANK + 1,
            });
        }
        let mut shape = first.shape().clone();
        shape.insert(d, ts.len())?;
        let lo = Layout::contiguous(shape.clone());
        let out = Tensor::try_from_fill(shape, |buf| {
            for (i, t) in ts.iter().enumerate() {
                copy_runs(buf, &lo.select(d, i), t.storage.as_slice(), &t.layout);
            }
        })?;
        if !needs_grad(&ts) {
            return Ok(out);
        }
        Ok(out.record("StackBackward0", &ts, move |g, need| {
            need.iter()
                .enumerate()
                .map(|(i, &n)| grad_if(n, || g.try_select(d, i)))
                .collect()
        }))
    }
}
