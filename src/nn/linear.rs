//! `Linear`: `y = x Wᵀ + b`.

use alloc::boxed::Box;

use super::capture::{Act, Capture};
use super::plan::{PlanTensor, Planner, Saves};
use super::{Lora, Module, init, module::join};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A fully connected layer, `y = x Wᵀ + b`, as `torch.nn.Linear`.
///
/// Input `[..., in_features]`, output `[..., out_features]`. Parameters:
/// `weight` `[out_features, in_features]` and, optionally, `bias`
/// `[out_features]`, both initialised as PyTorch does
/// (`U(-1/sqrt(in), 1/sqrt(in))`).
///
/// A layer may carry a LoRA adapter ([`Lora`], attached by
/// [`Module::add_lora`] or [`set_lora`](Self::set_lora)); it then adds the
/// adapter's low-rank update to its output and names its parameters as
/// PEFT's `lora.Linear` does: `base_layer.weight`, `base_layer.bias`,
/// `lora_A.default.weight`, `lora_B.default.weight`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// The LoRA adapter, if any.
    pub(crate) lora: Option<Box<Lora>>,
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
            lora: None,
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
        Ok(Linear {
            weight,
            bias,
            lora: None,
        })
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The LoRA adapter, if the layer has one.
    pub fn lora(&self) -> Option<&Lora> {
        self.lora.as_deref()
    }

    /// The LoRA adapter, mutably (e.g. to set `a` and `b`).
    pub fn lora_mut(&mut self) -> Option<&mut Lora> {
        self.lora.as_deref_mut()
    }

    /// Attaches `lora` (replacing any adapter), leaving `requires_grad` of
    /// every parameter as it is. Returns `ShapeMismatch` if `lora` does not
    /// fit (`a` `[r, in_features]`, `b` `[out_features, r]`), or
    /// `InvalidArgument` if `lora` is merged or the current adapter is merged
    /// (unmerge first, or the weight would keep the old update).
    pub fn set_lora(&mut self, lora: Lora) -> Result<()> {
        lora.check_fits(&self.weight)?;
        if lora.is_merged() || self.lora.as_ref().is_some_and(|l| l.is_merged()) {
            return Err(Error::InvalidArgument {
                op: "Linear::set_lora",
                detail: "a merged adapter cannot be attached or replaced; unmerge it first",
            });
        }
        self.lora = Some(Box::new(lora));
        Ok(())
    }

    /// Removes the adapter and returns it. A merged adapter's update stays in
    /// the weight (PEFT's `merge_and_unload`); an unmerged one is dropped
    /// from the output.
    pub fn take_lora(&mut self) -> Option<Lora> {
        self.lora.take().map(|l| *l)
    }

    /// The `(weight, bias)` names: PEFT's under `base_layer.` when an adapter
    /// is attached.
    fn base_names(&self) -> (&'static str, &'static str) {
        if self.lora.is_some() {
            ("base_layer.weight", "base_layer.bias")
        } else {
            ("weight", "bias")
        }
    }
}

/// `prefix` without its trailing dot: the module's own name.
fn own_name(prefix: &str) -> &str {
    prefix.strip_suffix('.').unwrap_or(prefix)
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
        let y = x.try_linear(&self.weight, self.bias.as_ref())?;
        match &self.lora {
            Some(lora) if !lora.is_merged() => y.try_add_tensor(&lora.delta(x)?),
            _ => Ok(y),
        }
    }

    fn capture(&self, c: &mut Capture, x: Act) -> Result<Act> {
        if self.lora.as_ref().is_some_and(|l| !l.is_merged()) {
            return Err(Error::InvalidArgument {
                op: "capture",
                detail: "a Linear with an unmerged LoRA adapter cannot be captured",
            });
        }
        c.linear(x, &self.weight, self.bias.as_ref())
    }

    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let w = p.param(&self.weight)?;
        let b = match &self.bias {
            Some(b) => Some(p.param(b)?),
            None => None,
        };
        let y = p.linear(x, &w, b.as_ref())?;
        p.release(w);
        p.release_opt(b);
        let lora = match &self.lora {
            Some(lora) if !lora.is_merged() => lora,
            _ => return Ok(y),
        };
        // The adapter path as `Lora::delta` runs it: dropout (when on and
        // training), x Aᵀ, then Bᵀ, times the scaling, added to `y`.
        let h = if lora.dropout() > 0.0 && self.is_training() {
            p.unary(x, Saves::Output)?
        } else {
            p.retain(x)
        };
        let a = p.param(&lora.a)?;
        let ha = p.linear(&h, &a, None)?;
        p.release(h);
        p.release(a);
        let b = p.param(&lora.b)?;
        let hab = p.linear(&ha, &b, None)?;
        p.release(ha);
        p.release(b);
        let d = p.unary(&hab, Saves::Nothing)?;
        p.release(hab);
        let out = p.add_same(&y, &d)?;
        p.release(y);
        p.release(d);
        Ok(out)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        let (w, b) = self.base_names();
        f(&join(prefix, w), &self.weight);
        if let Some(bias) = &self.bias {
            f(&join(prefix, b), bias);
        }
        if let Some(lora) = &self.lora {
            f(&join(prefix, "lora_A.default.weight"), &lora.a);
            f(&join(prefix, "lora_B.default.weight"), &lora.b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        let (w, b) = self.base_names();
        f(&join(prefix, w), &mut self.weight);
        if let Some(bias) = &mut self.bias {
            f(&join(prefix, b), bias);
        }
        if let Some(lora) = &mut self.lora {
            f(&join(prefix, "lora_A.default.weight"), &mut lora.a);
            f(&join(prefix, "lora_B.default.weight"), &mut lora.b);
        }
    }

    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        if let Some(d) = self.lora.as_ref().and_then(|l| l.dropout_module()) {
            d.visit_rng_states(&join(prefix, "lora_dropout.default."), f);
        }
    }

    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        match (
            name.strip_prefix("lora_dropout.default."),
            self.lora.as_mut().and_then(|l| l.dropout_module_mut()),
        ) {
            (Some(rest), Some(d)) => Module::set_rng_state(d, rest, state),
            _ => false,
        }
    }

    fn set_training(&mut self, training: bool) {
        if let Some(lora) = &mut self.lora {
            lora.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.lora
            .as_ref()
            .and_then(|l| l.is_training())
            .unwrap_or(true)
    }

    fn visit_linears(&self, prefix: &str, f: &mut dyn FnMut(&str, &Linear)) {
        f(own_name(prefix), self);
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        f(own_name(prefix), self);
    }
}
