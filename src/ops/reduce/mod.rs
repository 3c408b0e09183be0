//! Reductions over all elements or over given dimensions (`keepdim` keeps the
//! reduced dimensions with size 1), and their gradients: `sum`, `mean`,
//! `max`/`min` (all, `*_dims` = amax/amin, `*_dim` with indices),
//! `argmax`/`argmin`, `var`/`std` (with a correction), `norm` (p = 1, 2, inf),
//! `logsumexp` and `prod`. Indices are f32 tensors.
//!
//! A reduction walks the input together with the output broadcast back to the
//! input's shape (stride 0 along reduced dimensions). For `sum`/`mean`, runs
//! along a reduced innermost dimension are summed by a kernel, runs along a
//! kept one are added element-wise into the output, and partial sums are
//! combined with Kahan compensation, so the order is fixed (results are
//! deterministic) and error stays small when many runs land in one output
//! element. The other reductions fold element by element in logical order
//! (see the `Plan` walk in `fold`), which also makes them independent of the
//! input's strides.
//!
//! Files: this one holds the dimension helpers and `sum`/`mean`; `fold` the
//! shared walk of the other reductions; `extremum` max/min and arg-max/min;
//! `stats` var/std, norm, logsumexp and prod.

mod extremum;
mod fold;
mod stats;

use fold::kahan_add;

use alloc::vec;

use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

/// Resolves `dims` into a mask over `rank` dimensions; an empty list means all
/// dimensions (as PyTorch's `dim=None`). Repeats are an error.
pub(crate) fn dim_mask<D: Dim>(
    op: &'static str,
    dims: &[D],
    rank: usize,
) -> Result<[bool; MAX_RANK]> {
    let mut mask = [false; MAX_RANK];
    if dims.is_empty() {
        mask[..rank].fill(true);
        return Ok(mask);
    }
    for &d in dims {
        let Some(d) = resolve_dim(op, d, rank)? else {
            continue;
        };
        if mask[d] {
            return Err(Error::InvalidArgument {
                op,
                detail: "a dimension appears more than once",
            });
        }
        mask[d] = true;
    }
    Ok(mask)
}

/// Resolves one dimension argument. A 0-D tensor accepts `0` and `-1` (as
/// PyTorch does) and has nothing to reduce: `None`.
pub(crate) fn resolve_dim(op: &'static str, dim: impl Dim, rank: usize) -> Result<Option<usize>> {
    if rank == 0 {
        return match dim.resolve(op, 1) {
            Ok(_) => Ok(None),
            Err(_) => Err(Error::DimOutOfRange {
                op,
                dim: dim.as_isize(),
                rank,
            }),
        };
    }
    dim.resolve(op, rank).map(Some)
}

/// The shape after reducing the masked dimensions.
pub(crate) fn reduced_shape(shape: &Shape, mask: &[bool], keepdim: bool) -> Shape {
    let mut out = Shape::scalar();
    for (i, &d) in shape.dims().iter().enumerate() {
        if !mask[i] {
            let _ = out.push(d);
        } else if keepdim {
            let _ = out.push(1);
        }
    }
    out
}

/// What the walk in [`sum_keepdim`] gives for an output fed by one contiguous
/// run: the kernel's sum (`parallel::sum`) added to a zero Kahan accumulator.
fn sum_one_run(src: &[f32]) -> f32 {
    let (mut a, mut c) = (0.0, 0.0);
    kahan_add(&mut a, &mut c, crate::kernels::parallel::sum(src));
    a
}

/// Sum over the masked dimensions; the result has the keepdim shape.
pub(crate) fn sum_keepdim(x: &Tensor, mask: &[bool]) -> Result<Tensor> {
    let keep = reduced_shape(x.shape(), mask, true);
    let mut out = Tensor::try_zeros(keep.dims())?;
    if mask.iter().all(|&m| m)
        && let Some(src) = x.as_slice()
    {
        // A whole contiguous tensor: the walk below would make one run of
        // every element; the same sum without the walk's set-up (half the
        // time of a small sum).
        out.storage.get_mut().expect("fresh buffer")[0] = sum_one_run(src);
        return Ok(out);
    }
    if let Some(len) = contiguous_rows(x, mask) {
        // Each output is the sum of one contiguous row: rows in parallel,
        // each summed exactly as the walk below sums it (one kernel call,
        // added to a zero accumulator), so the bits are the same.
        let (src, k) = (
            x.as_slice().expect("contiguous"),
            crate::kernels::table().sum,
        );
        let acc = out.storage.get_mut().expect("fresh buffer");
        crate::kernels::parallel::row_results(acc, len, |r| {
            let (mut a, mut c) = (0.0, 0.0);
            kahan_add(&mut a, &mut c, k(&src[r * len..(r + 1) * len]));
            a
        });
        return Ok(out);
    }
    if let Some(rows) = leading_rows(x, mask) {
        // A sum over leading dimensions (a batch mean, a bias gradient):
        // column blocks in parallel, the same Kahan sums in the same order
        // as the walk's contiguous-run branch below.
        let acc = out.storage.get_mut().expect("fresh buffer");
        let cols = acc.len();
        sum_rows_into(x.as_slice().expect("contiguous"), rows, cols, acc);
        return Ok(out);
    }
    let mut comp = Tensor::try_zeros(keep.dims())?;
    let lo = out.layout.broadcast_to("sum", x.shape())?;
    let src = x.storage.as_slice();
    let acc = out.storage.get_mut().expect("fresh buffer");
    let c = comp.storage.get_mut().expect("fresh buffer");
    let add = |acc: &mut [f32], c: &mut [f32], j: usize, v: f32| {
        kahan_add(&mut acc[j], &mut c[j], v);
    };
    let k = crate::kernels::table();
    let walker = Walker::new([&lo, &x.layout]);
    // A strided run is gathered whole and summed by the same kernel as a
    // contiguous one, so a view and its contiguous copy sum identically.
    let mut stack = [0.0f32; super::CHUNK];
    let mut scratch: Option<Tensor> = None;
    for run in walker {
        let (oj, so) = (run.offsets[0], run.strides[0]);
        let (ox, sx) = (run.offsets[1], run.strides[1]);
        if so == 0 {
            let s = if sx == 1 {
                crate::kernels::parallel::sum(&src[ox..ox + run.len])
            } else {
                let buf: &mut [f32] = if run.len <= super::CHUNK {
                    &mut stack[..run.len]
                } else {
                    if scratch.is_none() {
                        scratch = Some(Tensor::try_zeros([run.len])?);
                    }
                    let t = scratch.as_mut().expect("set just above");
                    t.storage.get_mut().expect("fresh buffer")
                };
                (k.copy_strided)(&src[ox..], sx, buf);
                crate::kernels::parallel::sum(buf)
            };
            add(acc, c, oj, s);
        } else if so == 1 && sx == 1 {
            // A contiguous row into contiguous accumulators (a sum over a
            // leading dimension of a view): the SIMD Kahan kernel.
            let (a, cc) = (&mut acc[oj..oj + run.len], &mut c[oj..oj + run.len]);
            (k.kahan_rows)(a, cc, &src[ox..ox + run.len], 1, run.len);
        } else {
            for i in 0..run.len {
                add(acc, c, oj + i * so, src[ox + i * sx]);
            }
        }
    }
    Ok(out)
}

/// The row length when `x` is contiguous and `mask` reduces its trailing
/// dimensions only, into at least two outputs, with rows short enough that
/// the general walk sums each with one kernel call (below two parallel
/// grains; longer rows are split over threads by `parallel::sum` itself).
fn contiguous_rows(x: &Tensor, mask: &[bool]) -> Option<usize> {
    let first = mask.iter().position(|&m| m)?;
    if !mask[first..].iter().all(|&m| m) || !x.is_contiguous() {
        return None;
    }
    let len: usize = x.dims()[first..].iter().product();
    let rows: usize = x.dims()[..first].iter().product();
    (len > 0 && rows >= 2 && len < 2 * crate::kernels::parallel::GRAIN).then_some(len)
}

/// The number of rows when `x` is contiguous and `mask` reduces its leading
/// dimensions only (at least one, and not all), so that the sum is
/// [`sum_rows_into`] over `[rows, rest]`.
fn leading_rows(x: &Tensor, mask: &[bool]) -> Option<usize> {
    let kept = mask.iter().position(|&m| !m)?;
    if kept == 0 || mask[kept..].iter().any(|&m| m) || !x.is_contiguous() {
        return None;
    }
    Some(x.dims()[..kept].iter().product())
}

/// The sums over the rows of a 2-D tensor `[rows, cols]` (a bias gradient):
/// `x.sum_dims([0], false)` with the same bits, without the general walk
/// when the columns are contiguous.
pub(crate) fn sum_rows(x: &Tensor) -> Result<Tensor> {
    debug_assert_eq!(x.rank(), 2);
    let (rows, cols) = (x.dims()[0], x.dims()[1]);
    if x.strides()[1] != 1 && cols > 1 {
        return x.try_sum_dims([0], false);
    }
    let mut out = Tensor::try_zeros([cols])?;
    let acc = out.storage.get_mut().expect("fresh buffer");
    sum_rows_into(
        &x.storage.as_slice()[x.offset()..],
        rows,
        x.strides()[0],
        acc,
    );
    Ok(out)
}

/// `out[j] = sum_i src[i * row_stride + j]` for `i < rows`, `j <
/// out.len()`: each column's Kahan sum over the rows in order, as
/// `sum_keepdim` adds a leading dimension (so the same bits as
/// `sum_dims([0])`); `out`'s prior contents are overwritten.
///
/// Column blocks with their compensations on the stack; groups of blocks run
/// in parallel once `rows * out.len()` reaches two grains (each column is
/// summed by one thread in row order, so the bits do not depend on the
/// thread count).
pub(crate) fn sum_rows_into(src: &[f32], rows: usize, row_stride: usize, out: &mut [f32]) {
    const B: usize = super::CHUNK;
    let k = crate::kernels::table().kahan_rows;
    crate::kernels::parallel::blocks_weighted(out, B, rows, |blocks, part| {
        let mut comp = [0.0f32; B];
        for (b, acc) in blocks.zip(part.chunks_mut(B)) {
            acc.fill(0.0);
            let c = &mut comp[..acc.len()];
            c.fill(0.0);
            // (No rows: `src` may be empty; the kernel reads nothing.)
            k(acc, c, src.get(b * B..).unwrap_or(&[]), rows, row_stride);
        }
    });
}

/// Sums `g` down to `shape` (the reverse of broadcasting `shape` to `g`'s
/// shape): leading extra dimensions and dimensions that were 1 are summed.
pub(crate) fn sum_to_shape(g: &Tensor, shape: &Shape) -> Result<Tensor> {
    if g.dims() == shape.dims() {
        return Ok(g.clone());
    }
    let (gr, r) = (g.rank(), shape.rank());
    if gr < r {
        return Err(Error::ShapeMismatch {
            op: "sum_to_shape",
            lhs: g.shape().into(),
            rhs: (shape.clone()).into(),
            detail: "the gradient has fewer dimensions than the operand",
        });
    }
    let mut mask = [false; MAX_RANK];
    for (i, m) in mask.iter_mut().enumerate().take(gr) {
        *m = i < gr - r || (shape[i - (gr - r)] == 1 && g.dims()[i] != 1);
    }
    sum_keepdim(g, &mask[..gr])?.try_reshape(shape)
}

impl Tensor {
    /// Sum of all elements, as a 0-D tensor. Panics if memory runs out.
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        unwrap(self.try_sum())
    }

    /// [`sum`](Self::sum), or `OutOfMemory`.
    pub fn try_sum(&self) -> Result<Tensor> {
        self.try_sum_dims::<usize>(&[], false)
    }

    /// Sum over `dims` (negative counts from the end; empty = all), keeping
    /// them as size 1 if `keepdim`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_sum_dims`](Self::try_sum_dims).
    #[track_caller]
    pub fn sum_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_sum_dims(dims, keepdim))
    }

    /// [`sum_dims`](Self::sum_dims), or an error.
    pub fn try_sum_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("sum", dims.as_ref(), self.rank())?;
        self.reduce_linear("SumBackward1", &mask, keepdim, 1.0)
    }

    /// Mean of all elements, as a 0-D tensor (NaN for an empty tensor). Panics
    /// if memory runs out.
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        unwrap(self.try_mean())
    }

    /// [`mean`](Self::mean), or `OutOfMemory`.
    pub fn try_mean(&self) -> Result<Tensor> {
        self.try_mean_dims::<usize>(&[], false)
    }

    /// Mean over `dims` (empty = all), keeping them as size 1 if `keepdim`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_mean_dims`](Self::try_mean_dims).
    #[track_caller]
    pub fn mean_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_mean_dims(dims, keepdim))
    }

    /// [`mean_dims`](Self::mean_dims), or an error.
    pub fn try_mean_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("mean", dims.as_ref(), self.rank())?;
        let count: usize = (0..self.rank())
            .filter(|&i| mask[i])
            .map(|i| self.dims()[i])
            .product();
        self.reduce_linear("MeanBackward1", &mask, keepdim, 1.0 / count as f32)
    }

    /// `scale * sum` over the masked dims, with its gradient (`scale * g`
    /// broadcast back over the reduced dimensions).
    fn reduce_linear(
        &self,
        name: &'static str,
        mask: &[bool; MAX_RANK],
        keepdim: bool,
        scale: f32,
    ) -> Result<Tensor> {
        if !needs_grad(&[self])
            && mask[..self.rank()].iter().all(|&m| m)
            && let Some(src) = self.as_slice()
        {
            // All of a contiguous tensor, no graph: the value straight into
            // the result, the same bits as below without the intermediate
            // tensor and its reshape (a sum of 1e5 spends ~0.1 us there).
            let v = sum_one_run(src);
            let v = if scale != 1.0 { v * scale } else { v };
            let shape = reduced_shape(self.shape(), mask, keepdim);
            return Tensor::try_from_fill(shape, |b| b[0] = v);
        }
        let mut out = sum_keepdim(self, &mask[..self.rank()])?;
        if scale != 1.0 {
            out.try_write_runs(true, |b, o, n, s| {
                for i in 0..n {
                    b[o + i * s] *= scale;
                }
            })?;
        }
        if !keepdim {
            // `out` is a fresh contiguous tensor: only its shape changes.
            let shape = reduced_shape(self.shape(), mask, false);
            out = Tensor::from_parts(out.storage, Layout::contiguous(shape));
        }
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (in_shape, keep) = (
            self.shape().clone(),
            reduced_shape(self.shape(), mask, true),
        );
        Ok(out.record(name, &[self], move |g, _| {
            let g = g.try_reshape(&keep)?;
            let g = if scale != 1.0 {
                g.try_mul_scalar(scale)?
            } else {
                g
            };
            Ok(vec![Some(g.try_broadcast_to(&in_shape)?)])
        }))
    }
}
