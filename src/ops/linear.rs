//! [`linear`](Tensor::linear) (`F.linear`): the forward product with the bias
//! in its write-back, and a backward that calls the GEMM directly on the
//! saved operands' strides (the same products `matmul` would run, without
//! its broadcasting plan: the per-op cost matters for small layers).

use alloc::vec;
use alloc::vec::Vec;

use super::grad_if;
use super::matmul::sgemm;
use super::saved;
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::kernels::gemm::{MatMut, MatRef};
use crate::tensor::layout::Layout;
use crate::tensor::storage::Storage;
use crate::tensor::{Shape, Tensor};

impl Tensor {
    /// `self @ weight.t() + bias` (PyTorch's `F.linear`): input `[..., in]`,
    /// weight `[out, in]`, bias `[out]`, output `[..., out]`. The bias is added
    /// inside the matrix product's write-back, and the transposed weight is
    /// read in place (no copy).
    ///
    /// # Panics
    /// On mismatched shapes; see [`try_linear`](Self::try_linear).
    #[track_caller]
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        unwrap(self.try_linear(weight, bias))
    }

    /// [`linear`](Self::linear), or `ShapeMismatch` (op `linear`) naming the
    /// input and weight (or weight and bias) shapes.
    pub fn try_linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "linear";
        let mismatch = |l: &Tensor, r: &Tensor, detail| Error::ShapeMismatch {
            op: OP,
            lhs: l.shape().into(),
            rhs: r.shape().into(),
            detail,
        };
        if weight.rank() != 2
            || self.rank() == 0
            || self.dims()[self.rank() - 1] != weight.dims()[1]
        {
            return Err(mismatch(
                self,
                weight,
                "the input's last dimension must equal the weight's [out, in] in",
            ));
        }
        let (out_f, in_f) = (weight.dims()[0], weight.dims()[1]);
        if let Some(b) = bias
            && b.dims() != [out_f]
        {
            return Err(mismatch(weight, b, "the bias must be [out]"));
        }
        let rows: usize = self.dims()[..self.rank() - 1].iter().product();
        let x2 = self.detach().try_reshape([rows, in_f])?;
        let x2 = if x2.strides()[1] == 1 || in_f <= 1 {
            x2
        } else {
            x2.try_contiguous()?
        };
        let bias_c = match bias {
            Some(b) => Some(b.detach().try_contiguous()?),
            None => None,
        };
        let mut shape: Vec<usize> = self.dims()[..self.rank() - 1].to_vec();
        shape.push(out_f);
        let mut c = Storage::try_for_overwrite(rows.saturating_mul(out_f))?;
        linear_into(
            mat(&x2),
            mat(weight),
            bias_c.as_ref().map(|b| b.as_slice().expect("contiguous")),
            c.unique_mut(),
        )?;
        let out = Tensor::from_parts(c, Layout::contiguous(Shape::new(&[rows, out_f])?))
            .try_reshape(&shape[..])?;
        let mut inputs: Vec<&Tensor> = vec![self, weight];
        if let Some(b) = bias {
            inputs.push(b);
        }
        if !needs_grad(&inputs) {
            return Ok(out);
        }
        // Save only what the wanted gradients read: dx = g W needs the
        // weight, dW = g^T x the input, db = sum(g) neither (a frozen weight
        // with a trained bias keeps no activation alive).
        let x_shape = self.shape().clone();
        let w_saved = self.requires_grad().then(|| weight.detach());
        let x_saved = weight.requires_grad().then_some(x2);
        // Both products go straight to sgemm on the tensors' strides (the
        // same calls `matmul` would make, without its broadcasting plan).
        Ok(out.record("LinearBackward0", &inputs, move |g, need| {
            let g2 = g.try_reshape([rows, out_f])?;
            let gm = mat(&g2);
            let mut grads = vec![
                // dx = g W: [rows, out] @ [out, in].
                grad_if(need[0], || {
                    product_into(gm, mat(saved(&w_saved)?), x_shape.clone())
                })?,
                // dW = g^T x: [out, rows] @ [rows, in].
                grad_if(need[1], || {
                    product_into(gm.t(), mat(saved(&x_saved)?), Shape::new(&[out_f, in_f])?)
                })?,
            ];
            if need.len() == 3 {
                grads.push(grad_if(need[2], || crate::ops::reduce::sum_rows(&g2))?);
            }
            Ok(grads)
        }))
    }
}

/// A 2-D tensor as a strided matrix view of its storage.
pub(crate) fn mat(t: &Tensor) -> MatRef<'_> {
    debug_assert_eq!(t.rank(), 2);
    MatRef {
        data: &t.storage.as_slice()[t.offset()..],
        rows: t.dims()[0],
        cols: t.dims()[1],
        row_stride: t.strides()[0],
        col_stride: t.strides()[1],
    }
}

/// `a b` into a new contiguous tensor of `shape` (which holds
/// `a.rows * b.cols` elements, row-major).
fn product_into(a: MatRef, b: MatRef, shape: Shape) -> Result<Tensor> {
    debug_assert_eq!(shape.numel(), a.rows * b.cols);
    let mut c = Storage::try_for_overwrite(a.rows * b.cols)?;
    product_rows(a, b, c.unique_mut())?;
    Ok(Tensor::from_parts(c, Layout::contiguous(shape)))
}

/// `c = a b`, `c` row-major `[a.rows, b.cols]` (its prior contents are
/// never read): the products of [`linear`](Tensor::linear)'s backward,
/// `dx = g W` and `dW = g^T x`.
pub(crate) fn product_rows(a: MatRef, b: MatRef, c: &mut [f32]) -> Result<()> {
    if a.rows > 0 && b.cols > 0 {
        // beta = 0 (k = 0 gives zeros).
        sgemm(1.0, a, b, 0.0, MatMut::row_major(c, a.rows, b.cols))?;
    }
    Ok(())
}

/// `c = x W^T + bias` for `x` `[rows, in]` (unit column stride), `W`
/// `[out, in]` (any strides), `c` `[rows, out]` contiguous (its prior
/// contents are never read).
pub(crate) fn linear_into(
    x: MatRef,
    weight: MatRef,
    bias: Option<&[f32]>,
    c: &mut [f32],
) -> Result<()> {
    let (rows, in_f, out_f) = (x.rows, x.cols, weight.rows);
    if rows == 0 || out_f == 0 {
        return Ok(());
    }
    if in_f == 0 {
        match bias {
            Some(b) => {
                for row in c.chunks_exact_mut(out_f) {
                    row.copy_from_slice(b);
                }
            }
            None => c.fill(0.0),
        }
        return Ok(());
    }
    let cm = MatMut::row_major(c, rows, out_f);
    let epilogue = crate::kernels::gemm::Epilogue { bias, relu: false };
    crate::kernels::gemm::try_sgemm_fused(1.0, x, weight.t(), 0.0, cm, epilogue)
}
