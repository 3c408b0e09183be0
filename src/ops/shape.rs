//! Joining, indexing and reordering: [`cat`](Tensor::cat),
//! [`stack`](Tensor::stack), [`index_select`](Tensor::index_select),
//! [`gather`](Tensor::gather), [`scatter_add`](Tensor::scatter_add),
//! [`repeat`](Tensor::repeat), [`flip`](Tensor::flip) and
//! [`pad`](Tensor::pad), with their gradients. Every result is a new
//! contiguous tensor; inputs may be any views.
//!
//! Elements move with the strided walker: a region of the output (a slice or
//! a `select` of its contiguous layout) is walked together with the input,
//! copying runs. Index tensors are f32 tensors holding whole numbers (the
//! library is f32-only); they are validated once, in logical order, and never
//! receive a gradient.

use alloc::vec;
use alloc::vec::Vec;
use core::borrow::Borrow;

use super::grad_if;
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

// ------------------------------------------------------------------ helpers

/// `dst[ld] = src[ls]` element by element (same shapes).
fn copy_runs(dst: &mut [f32], ld: &Layout, src: &[f32], ls: &Layout) {
    for run in Walker::new([ld, ls]) {
        let (o, so) = (run.offsets[0], run.offsets[1]);
        match run.strides {
            [1, 1] => dst[o..o + run.len].copy_from_slice(&src[so..so + run.len]),
            [d, s] => {
                for i in 0..run.len {
                    dst[o + i * d] = src[so + i * s];
                }
            }
        }
    }
}

/// `dst[ld] += src[ls]` element by element (same shapes).
fn add_runs(dst: &mut [f32], ld: &Layout, src: &[f32], ls: &Layout) {
    for run in Walker::new([ld, ls]) {
        let (o, so) = (run.offsets[0], run.offsets[1]);
        for i in 0..run.len {
            dst[o + i * run.strides[0]] += src[so + i * run.strides[1]];
        }
    }
}

/// A 0-D layout as `[1]`; others unchanged.
fn at_least_1d(op: &'static str, l: &Layout) -> Result<Layout> {
    if l.rank() == 0 {
        l.unsqueeze(op, 0)
    } else {
        Ok(l.clone())
    }
}

/// Largest index an f32 holds exactly for every smaller integer (2^24).
const INDEX_LIMIT: f32 = 16_777_216.0;

/// The values of `index` in logical order, each a whole number in `0..size`.
fn indices(op: &'static str, index: &Tensor, size: usize) -> Result<Vec<usize>> {
    // An expanded index can claim more entries than memory holds.
    let mut out = crate::error::try_vec(index.numel())?;
    for v in index.values() {
        if !v.is_finite() || libm::truncf(v) != v {
            return Err(Error::InvalidArgument {
                op,
                detail: "indices must be whole numbers (f32 values without a fraction)",
            });
        }
        let oor = Error::IndexOutOfRange {
            op,
            index: v as isize,
            size,
        };
        if v < 0.0 {
            return Err(oor);
        }
        if v >= INDEX_LIMIT {
            if size as f32 <= INDEX_LIMIT {
                return Err(oor);
            }
            return Err(Error::InvalidArgument {
                op,
                detail: "indices must be below 2^24, the range where f32 holds every integer",
            });
        }
        let i = v as usize;
        if i >= size {
            return Err(oor);
        }
        out.push(i);
    }
    Ok(out)
}

/// `l` over `shape` (no larger than `l`'s dims except along `d`) with stride 0
/// along `d`: the position of each element before its index along `d` is added.
fn without_dim(l: &Layout, shape: &Shape, d: usize) -> Layout {
    let mut strides = [0usize; MAX_RANK];
    strides[..l.rank()].copy_from_slice(l.strides());
    strides[d] = 0;
    Layout::from_parts(shape.clone(), &strides[..l.rank()], l.offset())
}

/// `l` restricted to the leading corner `shape` (no larger than `l`'s dims).
fn corner(l: &Layout, shape: &Shape) -> Layout {
    Layout::from_parts(shape.clone(), l.strides(), l.offset())
}

/// `dst[ldst] = src[lbase + idx[pos] * sd]`, where `pos` is the element's
/// position in `lpos` (contiguous over the index's shape).
fn take(
    dst: &mut [f32],
    ldst: &Layout,
    src: &[f32],
    lbase: &Layout,
    sd: usize,
    idx: &[usize],
    lpos: &Layout,
) {
    for run in Walker::new([ldst, lbase, lpos]) {
        for t in 0..run.len {
            let at = |q: usize| run.offsets[q] + t * run.strides[q];
            dst[at(0)] = src[at(1) + idx[at(2)] * sd];
        }
    }
}

/// `dst[lbase + idx[pos] * sd] += src[lsrc]` (repeated indices accumulate).
fn put_add(
    dst: &mut [f32],
    lbase: &Layout,
    sd: usize,
    src: &[f32],
    lsrc: &Layout,
    idx: &[usize],
    lpos: &Layout,
) {
    for run in Walker::new([lbase, lsrc, lpos]) {
        for t in 0..run.len {
            let at = |q: usize| run.offsets[q] + t * run.strides[q];
            dst[at(0) + idx[at(2)] * sd] += src[at(1)];
        }
    }
}

fn mismatch(op: &'static str, lhs: &Shape, rhs: &Shape, detail: &'static str) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: (lhs.clone()).into(),
        rhs: (rhs.clone()).into(),
        detail,
    }
}

/// The tensors of a `&[Tensor]` or `&[&Tensor]` argument.
fn borrowed<T: Borrow<Tensor>>(tensors: &[T]) -> Vec<&Tensor> {
    tensors.iter().map(Borrow::borrow).collect()
}

// ---------------------------------------------------------------- joining

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

// --------------------------------------------------------------- indexing

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

// ------------------------------------------------------------- reordering

impl Tensor {
    /// Tiles the tensor `repeats[i]` times along dimension `i` (as
    /// `torch.Tensor.repeat`). `repeats` may be longer than the rank: the
    /// tensor is then treated as having leading dimensions of size 1, e.g. a
    /// `[3]` tensor repeated `[2, 2]` is `[2, 6]`. A repeat of 0 gives an
    /// empty dimension.
    ///
    /// # Panics
    /// If `repeats` is shorter than the rank or longer than [`MAX_RANK`]; see
    /// [`try_repeat`](Self::try_repeat).
    #[track_caller]
    pub fn repeat(&self, repeats: &[usize]) -> Tensor {
        unwrap(self.try_repeat(repeats))
    }

    /// [`repeat`](Self::repeat), or `InvalidArgument` / `RankTooHigh`.
    pub fn try_repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        let op = "repeat";
        let (n, r) = (repeats.len(), self.rank());
        if n < r {
            return Err(Error::InvalidArgument {
                op,
                detail: "the number of repeats must be at least the number of dimensions",
            });
        }
        if n > MAX_RANK {
            return Err(Error::RankTooHigh { op, rank: n });
        }
        let mut in_dims = [1usize; MAX_RANK];
        in_dims[n - r..n].copy_from_slice(self.dims());
        let mut out_dims = [0usize; MAX_RANK];
        for i in 0..n {
            out_dims[i] = in_dims[i]
                .checked_mul(repeats[i])
                .ok_or(Error::InvalidArgument {
                    op,
                    detail: "the result would be too large",
                })?;
        }
        let in_shape = Shape::try_for(op, &in_dims[..n])?;
        let out_shape = Shape::try_for(op, &out_dims[..n])?;
        let lo = Layout::contiguous(out_shape.clone());
        // `self` seen as rank n, and the first tile of the output.
        let mut lx = self.layout.clone();
        for _ in r..n {
            lx = lx.unsqueeze(op, 0)?;
        }
        let tile = Layout::from_parts(in_shape.clone(), lo.strides(), 0);
        let out = Tensor::try_from_fill(out_shape, |buf| {
            if buf.is_empty() {
                return;
            }
            copy_runs(buf, &tile, self.storage.as_slice(), &lx);
            // Innermost first: along dimension i, the slab of the first tile
            // (contiguous, since the dimensions inside it are complete) is
            // copied to the other tiles, for every position of the first tile
            // in the dimensions outside it.
            for i in (0..n).rev() {
                if repeats[i] == 1 {
                    continue;
                }
                let block = in_dims[i] * lo.strides()[i];
                let outer = Layout::from_parts(
                    Shape::try_for(op, &in_dims[..i]).expect("rank checked above"),
                    &lo.strides()[..i],
                    0,
                );
                for run in Walker::new([&outer]) {
                    for t in 0..run.len {
                        let at = run.offsets[0] + t * run.strides[0];
                        for k in 1..repeats[i] {
                            buf.copy_within(at..at + block, at + k * block);
                        }
                    }
                }
            }
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (shape, reps) = (self.shape().clone(), repeats.to_vec());
        Ok(out.record("RepeatBackward0", &[self], move |g, _| {
            // Sum the tiles one dimension at a time: dimension i of size
            // reps[i] * in_dims[i] splits as [reps[i], in_dims[i]] (tile
            // outermost), viewed as [outer, reps[i], inner] and summed over
            // the middle.
            let mut g = g.clone();
            let mut cur = out_dims;
            for i in 0..n {
                if reps[i] == 1 {
                    continue;
                }
                let outer: usize = cur[..i].iter().product();
                let inner: usize = in_dims[i] * cur[i + 1..n].iter().product::<usize>();
                g = g
                    .try_reshape([outer, reps[i], inner])?
                    .try_sum_dims([1], false)?;
                cur[i] = in_dims[i];
            }
            Ok(vec![Some(g.try_reshape(&shape)?)])
        }))
    }

    /// Reverses the order of elements along each of `dims` (negative counts
    /// from the end; an empty list reverses nothing). A copy, as `torch.flip`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see [`try_flip`](Self::try_flip).
    #[track_caller]
    pub fn flip<D: Dim>(&self, dims: impl AsRef<[D]>) -> Tensor {
        unwrap(self.try_flip(dims))
    }

    /// [`flip`](Self::flip), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_flip<D: Dim>(&self, dims: impl AsRef<[D]>) -> Result<Tensor> {
        let op = "flip";
        let r = self.rank();
        let mut flipped: heapless::Vec<usize, MAX_RANK> = heapless::Vec::new();
        for &d in dims.as_ref() {
            let d = d.resolve(op, r.max(1))?;
            if flipped.contains(&d) {
                return Err(Error::InvalidArgument {
                    op,
                    detail: "a dimension appears more than once",
                });
            }
            let _ = flipped.push(d);
        }
        let sizes = self.dims();
        // One pass per flipped dimension (of size > 1) over contiguous data:
        // viewed as [outer, n, inner], block i of each outer slab comes from
        // block n - 1 - i.
        // Nothing to move in an empty tensor (whose other sizes may be huge:
        // the loops below would run over them).
        let mut cur: Option<Tensor> = None;
        let empty = self.numel() == 0;
        for &d in flipped.iter().filter(|&&d| r > 0 && sizes[d] > 1 && !empty) {
            let (n, inner) = (sizes[d], sizes[d + 1..].iter().product::<usize>());
            let outer: usize = sizes[..d].iter().product();
            let src_t = match cur.take() {
                Some(t) => t,
                None if self.is_contiguous() => self.detach(),
                None => self.try_materialize()?,
            };
            let src = src_t.as_slice().expect("contiguous");
            cur = Some(Tensor::try_from_fill(self.shape().clone(), |buf| {
                for o in 0..outer {
                    for i in 0..n {
                        let to = (o * n + i) * inner;
                        let from = (o * n + n - 1 - i) * inner;
                        buf[to..to + inner].copy_from_slice(&src[from..from + inner]);
                    }
                }
            })?);
        }
        let out = match cur {
            Some(t) => t,
            None => self.try_materialize()?,
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        Ok(out.record("FlipBackward0", &[self], move |g, _| {
            Ok(vec![Some(g.try_flip(&flipped[..])?)])
        }))
    }

    /// Constant padding, as `torch.nn.functional.pad(x, pad, value=value)`,
    /// with PyTorch's flat list written as pairs in the same order:
    /// `pad[0] = (before, after)` for the LAST dimension, `pad[1]` for the one
    /// before it, and so on; dimensions not listed are not padded. So
    /// `F.pad(x, (1, 2, 3, 4))` is `x.pad(&[(1, 2), (3, 4)], 0.0)`: one column
    /// before and two after, three rows before and four after. Negative
    /// amounts remove elements from that side, as in PyTorch.
    ///
    /// # Panics
    /// If more dimensions are listed than `self` has, or negative padding
    /// removes more than a dimension holds; see [`try_pad`](Self::try_pad).
    #[track_caller]
    pub fn pad(&self, pad: &[(isize, isize)], value: f32) -> Tensor {
        unwrap(self.try_pad(pad, value))
    }

    /// [`pad`](Self::pad), or `InvalidArgument` naming `pad`.
    pub fn try_pad(&self, pad: &[(isize, isize)], value: f32) -> Result<Tensor> {
        let op = "pad";
        let r = self.rank();
        if pad.len() > r {
            return Err(Error::InvalidArgument {
                op,
                detail: "the padding lists more dimensions than the tensor has",
            });
        }
        let mut dims = [0usize; MAX_RANK];
        dims[..r].copy_from_slice(self.dims());
        // The kept part of the input, and where it lands in the output.
        let mut kept = self.layout.clone();
        let mut region = [(0usize, 0usize); MAX_RANK]; // (start, len) per dimension
        for (i, &d) in self.dims().iter().enumerate() {
            region[i] = (0, d);
        }
        for (j, &(before, after)) in pad.iter().enumerate() {
            let d = r - 1 - j;
            // i128: no amount of padding can overflow.
            let (size, b, a) = (self.dims()[d] as i128, before as i128, after as i128);
            let (cut_b, cut_a) = ((-b).max(0), (-a).max(0));
            let len = size - cut_b - cut_a;
            if len < 0 {
                return Err(Error::InvalidArgument {
                    op,
                    detail: "negative padding removes more elements than the dimension has",
                });
            }
            dims[d] = usize::try_from(size + b + a).map_err(|_| Error::InvalidArgument {
                op,
                detail: "the padded size is too large",
            })?;
            let (cut_b, len) = (cut_b as usize, len as usize);
            kept = kept.slice(d, cut_b, cut_b + len, 1);
            region[d] = (b.max(0) as usize, len);
        }
        let shape = Shape::try_for(op, &dims[..r])?;
        let lo = Layout::contiguous(shape.clone());
        let mut target = lo.clone();
        for (d, &(start, len)) in region[..r].iter().enumerate() {
            target = target.slice(d, start, start + len, 1);
        }
        let out = Tensor::try_from_fill(shape, |buf| {
            buf.fill(value);
            copy_runs(buf, &target, self.storage.as_slice(), &kept);
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        // The kept part relative to a contiguous input.
        let mut from = Layout::contiguous(self.shape().clone());
        for (j, &(before, _)) in pad.iter().enumerate() {
            let d = r - 1 - j;
            let cut_b = (-(before as i128)).max(0) as usize;
            from = from.slice(d, cut_b, cut_b + region[d].1, 1);
        }
        let in_shape = self.shape().clone();
        Ok(out.record("ConstantPadNdBackward0", &[self], move |g, _| {
            let mut lg = g.layout.clone();
            for (d, &(start, len)) in region[..r].iter().enumerate() {
                lg = lg.slice(d, start, start + len, 1);
            }
            let gin = Tensor::try_from_fill(in_shape.clone(), |buf| {
                buf.fill(0.0);
                copy_runs(buf, &from, g.storage.as_slice(), &lg);
            })?;
            Ok(vec![Some(gin)])
        }))
    }
}
