//! Adaptive average pooling: [`AdaptiveAvgPool2d`].

use super::{batched, plan_needs_batch};
use crate::error::{Error, Result, unwrap};
use crate::nn::Module;
use crate::nn::plan::{PlanTensor, Planner};
use crate::tensor::{Shape, Tensor};

/// Adaptive 2-D average pooling to a fixed output size, as
/// `torch.nn.AdaptiveAvgPool2d((out_h, out_w))`: input `[N, C, H, W]` (or
/// `[C, H, W]`), output `[N, C, out_h, out_w]`; output row `i` averages input
/// rows `floor(i H / out_h)` up to `ceil((i + 1) H / out_h)` (exclusive), and
/// the same for columns. No parameters. Errors name `AdaptiveAvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    out: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pooling to `[out_h, out_w]`.
    ///
    /// # Panics
    /// If a size is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(out_h: usize, out_w: usize) -> AdaptiveAvgPool2d {
        unwrap(Self::try_new(out_h, out_w))
    }

    /// Pooling to `[out_h, out_w]`, or `InvalidArgument` if a size is 0.
    pub fn try_new(out_h: usize, out_w: usize) -> Result<AdaptiveAvgPool2d> {
        if out_h == 0 || out_w == 0 {
            return Err(Error::InvalidArgument {
                op: "AdaptiveAvgPool2d",
                detail: "the output size must be positive",
            });
        }
        Ok(AdaptiveAvgPool2d {
            out: [out_h, out_w],
        })
    }

    /// The output size `[out_h, out_w]`.
    pub fn output_size(&self) -> [usize; 2] {
        self.out
    }
}

/// `[out, n]`: row `i` averages `floor(i n / out) .. ceil((i + 1) n / out)`.
/// The shape check comes first, so `out * n` (and every `(i + 1) * n`) fits.
fn averaging_matrix(out: usize, n: usize) -> Result<Tensor> {
    let shape = Shape::try_for("AdaptiveAvgPool2d", &[out, n])?;
    Tensor::try_from_fill(shape, |m| {
        m.fill(0.0);
        for i in 0..out {
            let start = i * n / out;
            let end = ((i + 1) * n).div_ceil(out);
            let v = 1.0 / (end - start) as f32;
            m[i * n + start..i * n + end].fill(v);
        }
    })
}

impl Module for AdaptiveAvgPool2d {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = "AdaptiveAvgPool2d";
        let (xb, was_batched) = batched(op, x)?;
        let (h, w) = (xb.dims()[2], xb.dims()[3]);
        if h == 0 || w == 0 {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().into(),
                rhs: crate::error::Dims::default(),
                detail: "the input must have non-zero height and width",
            });
        }
        let ph = averaging_matrix(self.out[0], h)?;
        let pw = averaging_matrix(self.out[1], w)?;
        let y = ph.try_matmul(&xb)?.try_matmul(&pw.try_t()?)?;
        if was_batched {
            Ok(y)
        } else {
            y.try_squeeze_dim(0)
        }
    }
    /// Batched inputs `[N, C, H, W]` only; see
    /// [`Planner::separable_average`].
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        if x.dims().len() != 4 || x.dims()[2] == 0 || x.dims()[3] == 0 {
            return Err(plan_needs_batch("AdaptiveAvgPool2d"));
        }
        p.separable_average(x, self.out)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}
