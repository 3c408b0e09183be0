//! `Linear`: `y = x Wᵀ + b`.

use super::plan::{PlanTensor, Planner};
use super::{Module, init, module::join};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A fully connected layer, `y = x Wᵀ + b`, as `torch.nn.Linear`.
///
/// Input `[..., in_features]`, output `[..., out_features]`. Parameters:
/// `weight` `[out_features, in_features]` and, optionally, `bias`
/// `[out_features]`, both initialised as PyTorch does
/// (`U(-1/sqrt(in), 1/sqrt(in))`).
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with a bias.
    ///
    /// # Panics
    /// If memory runs out.
    #[track_caller]
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        crate::error::unwrap(Self::try_new(in_features, out_features, true))
    }

    /// A layer without a bias.
    #[track_caller]
    pub fn new_no_bias(in_features: usize, out_features: usize) -> Linear {
        crate::error::unwrap(Self::try_new(in_features, out_features, false))
    }

    /// A layer, with or without a bias, or `OutOfMemory`.
    pub fn try_new(in_features: usize, out_features: usize, bias: bool) -> Result<Linear> {
        let mut weight = Tensor::try_zeros([out_features, in_features])?;
        init::kaiming_uniform_default_(&mut weight)?;
        let bias = if bias {
            let mut b = Tensor::try_zeros([out_features])?;
            init::bias_uniform_(&mut b, in_features)?;
            Some(b.with_requires_grad())
        } else {
            None
        };
        Ok(Linear {
            weight: weight.with_requires_grad(),
            bias,
        })
    }

    /// A layer with the given parameters (weight `[out, in]`, bias `[out]`),
    /// which are used as they are (set `requires_grad` on them to train).
    pub fn from_parameters(weight: Tensor, bias: Option<Tensor>) -> Result<Linear> {
        if weight.rank() != 2
            || bias
                .as_ref()
                .is_some_and(|b| b.dims() != [weight.dims()[0]])
        {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                lhs: weight.shape().into(),
                rhs: (bias.map(|b| b.shape().clone()).unwrap_or_default()).into(),
                detail: "expects weight [out, in] and bias [out]",
            });
        }
        Ok(Linear { weight, bias })
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() == 0 || x.dims()[x.rank() - 1] != self.in_features() {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                lhs: x.shape().into(),
                rhs: self.weight.shape().into(),
                detail: "the input's last dimension must equal in_features (weight is [out, in])",
            });
        }
        x.try_linear(&self.weight, self.bias.as_ref())
    }

    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let w = p.param(&self.weight)?;
        let b = match &self.bias {
            Some(b) => Some(p.param(b)?),
            None => None,
        };
        let y = p.linear(x, &w, b.as_ref());
        p.release(w);
        p.release_opt(b);
        y
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}
