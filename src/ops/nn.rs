//! Network ops built from several primitive steps: `softmax` and
//! `log_softmax` (numerically stable: each row's maximum is subtracted before
//! `exp`), with their gradients.
//!
//! The math works on contiguous rows along the chosen dimension (the
//! `*_row` functions, the place for a SIMD kernel). When the dimension is the
//! last one of a contiguous input the rows are slices of its storage; any
//! other dimension or view is first gathered with the dimension moved last,
//! and the result moved back. A row's result depends only on its values, so a
//! view and its contiguous copy give identical results.

use alloc::vec;

use super::reduce::resolve_dim;
use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::kernels::table as k;
use crate::tensor::{Dim, Tensor};

/// Softmax gradient from the output `y` and the incoming gradient `g`:
/// `out = y * (g - sum(g * y))`.
pub(crate) fn softmax_backward_row(y: &[f32], g: &[f32], out: &mut [f32]) {
    (k().softmax_backward)(y, g, out)
}

/// Log-softmax gradient from the output `y` and the incoming gradient `g`:
/// `out = g - exp(y) * sum(g)`.
pub(crate) fn log_softmax_backward_row(y: &[f32], g: &[f32], out: &mut [f32]) {
    (k().log_softmax_backward)(y, g, out)
}

/// Applies `f` to every row along `dim` of the same-shaped `inputs`, giving a
/// new contiguous tensor of their shape. `f(rows, out)` gets one contiguous row
/// per input and writes the output row.
fn map_rows<const K: usize>(
    inputs: [&Tensor; K],
    dim: Option<usize>,
    f: impl Fn([&[f32]; K], &mut [f32]) + Sync,
) -> Result<Tensor> {
    map_row_blocks(inputs, dim, |x, out, len| {
        for (i, o) in out.chunks_exact_mut(len).enumerate() {
            f(core::array::from_fn(|k| &x[k][i * len..(i + 1) * len]), o);
        }
    })
}

/// [`map_rows`] with `f(rows, out, len)` given consecutive whole rows of
/// `len` elements at a time (as many as a thread takes).
fn map_row_blocks<const K: usize>(
    inputs: [&Tensor; K],
    dim: Option<usize>,
    f: impl Fn([&[f32]; K], &mut [f32], usize) + Sync,
) -> Result<Tensor> {
    let x = inputs[0];
    let rank = x.rank();
    // 0-D: one row of one element.
    let (dim, last) = match dim {
        Some(d) => (d, rank - 1),
        None => (0, 0),
    };
    let len = if rank == 0 { 1 } else { x.dims()[dim] };
    if x.numel() == 0 {
        return Tensor::try_zeros(x.dims());
    }
    // Each input with `dim` moved last, as contiguous rows.
    let moved = |t: &Tensor| -> Result<Tensor> {
        let t = if dim == last {
            t.clone()
        } else {
            t.with_layout(t.layout.transpose(dim, last))
        };
        if t.is_contiguous() {
            Ok(t)
        } else {
            t.try_materialize()
        }
    };
    let rows = inputs.map(moved);
    if let Some(Err(e)) = rows.iter().find(|r| r.is_err()) {
        return Err(e.clone());
    }
    let rows = rows.map(|r| r.expect("checked above"));
    let slices: [&[f32]; K] = core::array::from_fn(|i| rows[i].as_slice().expect("contiguous"));
    let out = Tensor::try_from_fill(rows[0].shape().clone(), |out| {
        crate::kernels::parallel::blocks(out, len, |b, o| {
            let span = b.start * len..b.start * len + o.len();
            f(core::array::from_fn(|i| &slices[i][span.clone()]), o, len)
        });
    })?;
    if dim == last {
        Ok(out)
    } else {
        out.with_layout(out.layout.transpose(dim, last))
            .try_materialize()
    }
}

impl Tensor {
    /// Softmax along `dim` (negative counts from the end): `exp(x) / sum(exp(x))`
    /// over each row along `dim`, computed with the row maximum subtracted so
    /// large values do not overflow. A row that is all `-inf` gives NaN (as in
    /// PyTorch). Gradient: `y * (g - sum(g * y))`.
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_softmax`](Self::try_softmax).
    #[track_caller]
    pub fn softmax(&self, dim: impl Dim) -> Tensor {
        unwrap(self.try_softmax(dim))
    }

    /// [`softmax`](Self::softmax), or `DimOutOfRange`.
    pub fn try_softmax(&self, dim: impl Dim) -> Result<Tensor> {
        let dim = resolve_dim("softmax", dim, self.rank())?;
        let out = match k().softmax_rows {
            Some(rows) => map_row_blocks([self], dim, |[x], o, len| rows(x, o, len))?,
            None => map_rows([self], dim, |[x], o| (k().softmax)(x, o))?,
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let y = out.detach();
        Ok(out.record("SoftmaxBackward0", &[self], move |g, _| {
            Ok(vec![Some(map_rows([&y, g], dim, |[y, g], o| {
                softmax_backward_row(y, g, o)
            })?)])
        }))
    }

    /// Log-softmax along `dim`: `x - log(sum(exp(x)))` over each row along
    /// `dim`, computed stably (row maximum subtracted first). A row that is all
    /// `-inf` gives NaN. Gradient: `g - exp(y) * sum(g)`.
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_log_softmax`](Self::try_log_softmax).
    #[track_caller]
    pub fn log_softmax(&self, dim: impl Dim) -> Tensor {
        unwrap(self.try_log_softmax(dim))
    }

    /// [`log_softmax`](Self::log_softmax), or `DimOutOfRange`.
    pub fn try_log_softmax(&self, dim: impl Dim) -> Result<Tensor> {
        let dim = resolve_dim("log_softmax", dim, self.rank())?;
        let out = map_row_blocks([self], dim, |[x], o, len| (k().log_softmax_rows)(x, o, len))?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let y = out.detach();
        Ok(out.record("LogSoftmaxBackward0", &[self], move |g, _| {
            Ok(vec![Some(map_rows([&y, g], dim, |[y, g], o| {
                log_softmax_backward_row(y, g, o)
            })?)])
        }))
    }
}
