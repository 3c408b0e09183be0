//! Shape-only models of the tensor operations layers use: each allocates,
//! saves and releases what the real operation does (see `ops/` for the
//! operations themselves; a change there must be mirrored here, and
//! `tests/memory_plan.rs` compares the two through the pool's peak).

use alloc::vec;
use alloc::vec::Vec;

use super::{Category, PlanLoss, PlanTensor, Planner};
use crate::error::{Error, Result};

/// What a unary operation saves for its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saves {
    /// Its input (e.g. `gelu`, `silu`, `leaky_relu`, `softplus`).
    Input,
    /// Its output (e.g. `relu`, `sigmoid`, `tanh`, `exp`).
    Output,
    /// Nothing (e.g. `neg`, `add_scalar`).
    Nothing,
}

/// A row-major contiguous `[rows, cols]` operand for the GEMM scratch model.
fn rm(rows: usize, cols: usize) -> (usize, usize, usize, usize) {
    (rows, cols, cols, 1)
}

impl Planner {
    /// `x.linear(weight, bias)` ([`Tensor::linear`](crate::Tensor::linear))
    /// for a contiguous `x [..., in]`: one output buffer and the GEMM
    /// scratch; saves the weight only if `x` requires grad and `x` only if
    /// the weight does. Backward: `dx = g W`, `dW = g^T x` and `db = sum(g)`
    /// for the inputs that need them.
    pub fn linear(
        &mut self,
        x: &PlanTensor,
        weight: &PlanTensor,
        bias: Option<&PlanTensor>,
    ) -> Result<PlanTensor> {
        let (out_f, in_f) = match weight.dims() {
            &[o, i] => (o, i),
            _ => return Err(plan_error("linear: the weight must be [out, in]")),
        };
        if x.dims().last() != Some(&in_f) {
            return Err(plan_error(
                "linear: the input's last dimension must equal in_features",
            ));
        }
        let rows = x.numel() / in_f.max(1);
        let mut dims: Vec<usize> = x.dims()[..x.dims().len() - 1].to_vec();
        dims.push(out_f);
        let out = self.alloc(&dims)?;
        if rows > 0 && out_f > 0 && in_f > 0 {
            self.gemm(rm(rows, in_f), (in_f, out_f, 1, in_f), rm(rows, out_f));
        }
        let mut saved = Vec::new();
        let (save_w, save_x) = (x.requires_grad(), weight.requires_grad());
        if save_w {
            saved.push(self.retain(weight));
        }
        if save_x {
            saved.push(self.retain(x));
        }
        let x_dims: Vec<usize> = x.dims().to_vec();
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        Ok(
            self.record(out, &inputs, saved, move |p, _g, need, _saved| {
                let mut grads = vec![
                    if need[0] {
                        let dx = p.alloc(&x_dims)?;
                        p.gemm(rm(rows, out_f), rm(out_f, in_f), rm(rows, in_f));
                        Some(dx)
                    } else {
                        None
                    },
                    if need[1] {
                        let dw = p.alloc(&[out_f, in_f])?;
                        p.gemm((out_f, rows, 1, out_f), rm(rows, in_f), rm(out_f, in_f));
                        Some(dw)
                    } else {
                        None
                    },
                ];
                if need.len() == 3 {
                    grads.push(if need[2] {
                        Some(p.sum_rows(rows, out_f)?)
                    } else {
                        None
                    });
                }
                Ok(grads)
            }),
        )
    }

    /// `sum` over the rows of a contiguous `[rows, cols]` tensor into
    /// `[cols]` (the bias gradient): the result only (the compensations live
    /// on the stack).
    fn sum_rows(&mut self, _rows: usize, cols: usize) -> Result<PlanTensor> {
        self.alloc(&[cols])
    }

    /// An element-wise unary operation (an activation, `exp`, `mul_scalar`,
    /// ...): a new buffer of `x`'s shape; its backward allocates one buffer
    /// of the same shape from the gradient and what it saved.
    pub fn unary(&mut self, x: &PlanTensor, saves: Saves) -> Result<PlanTensor> {
        let out = self.alloc(x.dims())?;
        let saved = match saves {
            Saves::Input if x.requires_grad() => vec![self.retain(x)],
            Saves::Output if x.requires_grad() => vec![self.retain(&out)],
            _ => Vec::new(),
        };
        let dims: Vec<usize> = x.dims().to_vec();
        Ok(self.record(out, &[x], saved, move |p, _g, _need, _saved| {
            Ok(vec![Some(p.alloc(&dims)?)])
        }))
    }

    /// A window operation (max pooling) from a contiguous `x` to a new
    /// buffer of `out_dims`, with a second buffer of `out_dims` (the tap
    /// each output took) saved for the gradient, which is one buffer of
    /// `x`'s shape.
    pub fn windowed(&mut self, x: &PlanTensor, out_dims: &[usize]) -> Result<PlanTensor> {
        let taps = self.alloc(out_dims)?;
        let out = self.alloc(out_dims)?;
        let dims: Vec<usize> = x.dims().to_vec();
        Ok(
            self.record(out, &[x], vec![taps], move |p, _g, _need, _saved| {
                Ok(vec![Some(p.alloc(&dims)?)])
            }),
        )
    }

    /// `x.reshape(dims)` of a contiguous tensor: a view, recorded so the
    /// gradient is reshaped back (also a view).
    pub fn reshape(&mut self, x: &PlanTensor, dims: &[usize]) -> Result<PlanTensor> {
        let mut out = self.view(x, dims)?;
        out.node = None;
        let in_dims: Vec<usize> = x.dims().to_vec();
        Ok(
            self.record(out, &[x], Vec::new(), move |p, g, _need, _saved| {
                Ok(vec![Some(p.view(g, &in_dims)?)])
            }),
        )
    }

    /// `a + b` for tensors of one shape: a new buffer; the gradient passes
    /// to both unchanged (no allocation).
    pub fn add_same(&mut self, a: &PlanTensor, b: &PlanTensor) -> Result<PlanTensor> {
        if a.dims() != b.dims() {
            return Err(plan_error("add_same: the shapes differ"));
        }
        let out = self.alloc(a.dims())?;
        Ok(
            self.record(out, &[a, b], Vec::new(), move |p, g, need, _saved| {
                Ok(need.iter().map(|&n| n.then(|| p.retain(g))).collect())
            }),
        )
    }
}

/// The loss of a planned step on the model's output `y`, with its target
/// (allocated as an input).
pub(super) fn loss(p: &mut Planner, loss: PlanLoss, y: &PlanTensor) -> Result<PlanTensor> {
    match loss {
        PlanLoss::CrossEntropy => {
            let &[n, c] = y.dims() else {
                return Err(plan_error(
                    "cross-entropy plans take logits [N, C] (class-index targets [N])",
                ));
            };
            let target = p.alloc(&[n])?;
            p.recategorize(&target, Category::Inputs);
            core::mem::forget(target); // held by the caller through the step
            // The class indices and per-sample losses (pool buffers), the
            // probabilities, the result; the losses go once summed.
            let indices = p.alloc(&[n])?;
            let losses = p.alloc(&[n])?;
            let probs = p.alloc(&[n * c])?;
            let out = p.alloc(&[])?;
            p.release(losses);
            let dims = [n, c];
            // Backward: the per-row scales, then the gradient.
            Ok(p.record(
                out,
                &[y],
                vec![probs, indices],
                move |p, _g, _need, _saved| {
                    let scales = p.alloc(&[n])?;
                    let grad = p.alloc(&dims)?;
                    p.release(scales);
                    Ok(vec![Some(grad)])
                },
            ))
        }
        PlanLoss::Mse => {
            let target = p.alloc(y.dims())?;
            p.recategorize(&target, Category::Inputs);
            // Per-element losses, saving views of the input and target.
            let per = p.alloc(y.dims())?;
            let saved = if y.requires_grad() {
                vec![p.retain(y), p.retain(&target)]
            } else {
                Vec::new()
            };
            core::mem::forget(target);
            let dims: Vec<usize> = y.dims().to_vec();
            let per = p.record(per, &[y], saved, move |p, _g, _need, _saved| {
                p.work(1); // the broadcast gradient as one element
                Ok(vec![Some(p.alloc(&dims)?)])
            });
            // The mean: the result and its compensation buffer.
            let out = p.alloc(&[])?;
            p.work(1);
            let out = p.record(out, &[&per], Vec::new(), move |p, _g, _need, _saved| {
                Ok(vec![Some(p.alloc(&[])?)])
            });
            p.release(per);
            Ok(out)
        }
    }
}

pub(super) fn plan_error(detail: &'static str) -> Error {
    Error::InvalidArgument { op: "plan", detail }
}
