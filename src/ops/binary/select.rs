//! Selection by mask: `where_` and `masked_fill`.

use alloc::vec;

use super::map_ternary;
use crate::autograd::needs_grad;
use crate::error::{Result, unwrap};
use crate::ops::{grad_if, kern, map_binary, sum_to_shape};
use crate::tensor::Tensor;

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
