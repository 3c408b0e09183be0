//! Partial fine-tuning: LoRA adapters on `Linear` layers (as Hugging Face
//! PEFT's `LoraConfig` / `lora.Linear`), and the helpers behind
//! [`Module::freeze_all_but_last`], [`Module::train_bias_only`] and
//! [`Module::add_lora`].
//!
//! # Where the adapter sits
//!
//! PEFT replaces a targeted `nn.Linear` by a wrapper whose state dict reads
//! `<module>.base_layer.weight`, `<module>.base_layer.bias`,
//! `<module>.lora_A.default.weight` and `<module>.lora_B.default.weight`.
//! Here the adapter lives *inside* the [`Linear`] (an optional [`Lora`]),
//! and a `Linear` that carries one names its parameters exactly that way, so
//! a LoRA model's `state_dict` matches PEFT's (without PEFT's
//! `base_model.model.` prefix). Keeping the adapter inside the layer means no
//! container has to replace its children (a `Sequential` holds `Box<dyn
//! Module>`, which cannot be downcast); containers only pass
//! [`Module::visit_linears`] / [`Module::visit_linears_mut`] on to their
//! children.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[cfg(doc)]
use super::Linear;
use super::{Dropout, Module, init};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// What [`Module::add_lora`] attaches: PEFT's `LoraConfig(r, lora_alpha,
/// target_modules, lora_dropout)` with `bias="none"`,
/// `fan_in_fan_out=False`, `init_lora_weights=True`.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    /// The rank `r` (`lora_A` is `[r, in]`, `lora_B` `[out, r]`); at least 1.
    pub r: usize,
    /// `lora_alpha`: the update `B·A` is scaled by `alpha / r`.
    pub alpha: f32,
    /// Dropout probability on the adapter's input (training mode only), in
    /// `[0, 1)`.
    pub dropout: f32,
    /// Which `Linear` layers get an adapter: a layer called `n` (its dotted
    /// path, e.g. `"0"` or `"encoder.q_proj"`) matches the target `t` if
    /// `n == t` or `n` ends with `"." + t`, as PEFT matches a list of names.
    pub target_modules: Vec<String>,
}

impl LoraConfig {
    /// Rank `r`, `alpha`, no dropout, adapters on `targets`.
    pub fn new(r: usize, alpha: f32, targets: &[&str]) -> LoraConfig {
        LoraConfig {
            r,
            alpha,
            dropout: 0.0,
            target_modules: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The same with dropout probability `p` on the adapter's input.
    pub fn with_dropout(mut self, p: f32) -> LoraConfig {
        self.dropout = p;
        self
    }

    /// `alpha / r`.
    pub fn scaling(&self) -> f32 {
        self.alpha / self.r as f32
    }

    pub(crate) fn check(&self, op: &'static str) -> Result<()> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        if self.r == 0 {
            return bad("the LoRA rank r must be at least 1");
        }
        if !self.alpha.is_finite() {
            return bad("lora_alpha must be finite");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("lora_dropout must be in [0, 1)");
        }
        Ok(())
    }
}

/// A low-rank adapter on a [`Linear`] layer: the layer computes
/// `y = x Wᵀ + b + (alpha / r) · dropout(x) Aᵀ Bᵀ`, as PEFT's `lora.Linear`.
///
/// `a` is `lora_A` `[r, in_features]`, initialised as PEFT does
/// (`kaiming_uniform_(a=sqrt(5))`, i.e. `U(-1/sqrt(in), 1/sqrt(in))`); `b` is
/// `lora_B` `[out_features, r]`, zeros, so a fresh adapter leaves the layer's
/// output unchanged. Both require grad.
///
/// While merged (see [`Module::merge_lora`]), `B·A·scaling` has been added to
/// the layer's weight and the forward pass uses the base path only.
#[derive(Clone, Debug)]
pub struct Lora {
    /// `lora_A.default.weight`, `[r, in_features]`.
    pub a: Tensor,
    /// `lora_B.default.weight`, `[out_features, r]`.
    pub b: Tensor,
    alpha: f32,
    dropout: Option<Dropout>,
    merged: bool,
}

impl Lora {
    /// A fresh adapter for a layer with `in_features` inputs and
    /// `out_features` outputs (A random from the global generator, B zeros;
    /// the dropout stream seeded from the global generator). Returns
    /// `InvalidArgument` for `r = 0`, a non-finite alpha or dropout outside
    /// `[0, 1)`; `OutOfMemory` if allocation fails.
    pub fn new(in_features: usize, out_features: usize, config: &LoraConfig) -> Result<Lora> {
        config.check("Lora::new")?;
        let mut a = Tensor::try_zeros([config.r, in_features])?;
        init::kaiming_uniform_(&mut a, crate::math::sqrtf(5.0))?;
        let b = Tensor::try_zeros([out_features, config.r])?;
        Lora::from_parameters(a, b, config.alpha, config.dropout)
    }

    /// An adapter with the given `a` `[r, in]` and `b` `[out, r]` (set to
    /// require grad). Errors as [`new`](Self::new), or `ShapeMismatch` if the
    /// ranks of `a` and `b` differ.
    pub fn from_parameters(a: Tensor, b: Tensor, alpha: f32, dropout: f32) -> Result<Lora> {
        if a.rank() != 2 || b.rank() != 2 || a.dims()[0] != b.dims()[1] {
            return Err(Error::ShapeMismatch {
                op: "Lora",
                lhs: a.shape().into(),
                rhs: b.shape().into(),
                detail: "expects lora_A [r, in] and lora_B [out, r]",
            });
        }
        let config = LoraConfig {
            r: a.dims()[0],
            alpha,
            dropout,
            target_modules: Vec::new(),
        };
        config.check("Lora")?;
        let dropout = if dropout > 0.0 {
            Some(Dropout::try_new(dropout, None)?)
        } else {
            None
        };
        Ok(Lora {
            a: a.detach().with_requires_grad(),
            b: b.detach().with_requires_grad(),
            alpha,
            dropout,
            merged: false,
        })
    }

    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.a.dims()[0]
    }

    /// `lora_alpha`.
    pub fn alpha(&self) -> f32 {
        self.alpha
    }

    /// `alpha / r`, the factor on `B·A`.
    pub fn scaling(&self) -> f32 {
        self.alpha / self.rank() as f32
    }

    /// The dropout probability on the adapter's input.
    pub fn dropout(&self) -> f32 {
        self.dropout.as_ref().map_or(0.0, |d| d.p())
    }

    /// Whether `B·A·scaling` is currently folded into the layer's weight.
    pub fn is_merged(&self) -> bool {
        self.merged
    }

    /// Checks that the adapter fits a layer with `weight` `[out, in]`.
    pub(crate) fn check_fits(&self, weight: &Tensor) -> Result<()> {
        let w = weight.dims();
        if self.a.dims()[1] != w[1] || self.b.dims()[0] != w[0] {
            return Err(Error::ShapeMismatch {
                op: "Linear::set_lora",
                lhs: self.a.shape().into(),
                rhs: weight.shape().into(),
                detail: "lora_A must be [r, in_features] and lora_B [out_features, r]",
            });
        }
        Ok(())
    }

    /// The adapter's contribution `scaling · dropout(x) Aᵀ Bᵀ` (`x` is
    /// `[..., in]`).
    pub(crate) fn delta(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.dropout {
            Some(d) => d.try_forward(x)?,
            None => x.clone(),
        };
        h.try_linear(&self.a, None)?
            .try_linear(&self.b, None)?
            .try_mul_scalar(self.scaling())
    }

    /// `scaling · B·A`, `[out, in]`, outside the graph.
    fn weight_delta(&self) -> Result<Tensor> {
        crate::autograd::no_grad(|| self.b.try_matmul(&self.a)?.try_mul_scalar(self.scaling()))
    }

    /// Adds (`merge`) or subtracts (`!merge`) `scaling · B·A` to `weight`
    /// in place, unless the adapter is already in that state. On error
    /// (`OutOfMemory`) nothing changed.
    pub(crate) fn set_merged(&mut self, weight: &mut Tensor, merge: bool) -> Result<()> {
        if self.merged == merge {
            return Ok(());
        }
        let delta = self.weight_delta()?;
        crate::autograd::no_grad(|| {
            if merge {
                weight.try_add_assign(&delta)
            } else {
                weight.try_sub_assign(&delta)
            }
        })?;
        self.merged = merge;
        Ok(())
    }

    pub(crate) fn set_training(&mut self, training: bool) {
        if let Some(d) = &mut self.dropout {
            d.set_training(training);
        }
    }

    pub(crate) fn is_training(&self) -> Option<bool> {
        self.dropout.as_ref().map(|d| d.is_training())
    }

    pub(crate) fn dropout_module(&self) -> Option<&Dropout> {
        self.dropout.as_ref()
    }

    pub(crate) fn dropout_module_mut(&mut self) -> Option<&mut Dropout> {
        self.dropout.as_mut()
    }
}

/// Whether the `Linear` called `name` matches PEFT target `target`.
pub(crate) fn target_matches(name: &str, target: &str) -> bool {
    name == target
        || (name.len() > target.len()
            && name.ends_with(target)
            && name.as_bytes()[name.len() - target.len() - 1] == b'.')
}

/// The layer a parameter belongs to: its name without the last component,
/// with a LoRA layer's `base_layer` / `lora_A.default` / `lora_B.default`
/// folded into the layer itself (`"0.lora_A.default.weight"` -> `"0"`).
pub(crate) fn owner_of(param: &str) -> &str {
    let owner = param.rsplit_once('.').map_or("", |(o, _)| o);
    for suffix in ["base_layer", "lora_A.default", "lora_B.default"] {
        if owner == suffix {
            return "";
        }
        if let Some(rest) = owner.strip_suffix(suffix)
            && let Some(rest) = rest.strip_suffix('.')
        {
            return rest;
        }
    }
    owner
}

/// Whether a parameter name is a bias term (BitFit): its last component is
/// `bias` or ends with `_bias` (e.g. attention's `in_proj_bias`).
pub(crate) fn is_bias(param: &str) -> bool {
    let last = param.rsplit_once('.').map_or(param, |(_, l)| l);
    last == "bias" || last.ends_with("_bias")
}

/// [`Module::add_lora`], for any module including `dyn Module` (the trait
/// method is `where Self: Sized`). Builds every adapter first (so an error
/// changes nothing), then freezes the model and attaches them.
pub fn add_lora<M: Module + ?Sized>(model: &mut M, config: &LoraConfig) -> Result<Vec<String>> {
    const OP: &str = "add_lora";
    config.check(OP)?;
    let mut layers: Vec<(String, usize, usize, bool)> = Vec::new();
    model.visit_linears("", &mut |n, l| {
        layers.push((
            n.to_string(),
            l.in_features(),
            l.out_features(),
            l.lora().is_some(),
        ))
    });
    for t in &config.target_modules {
        if !layers.iter().any(|(n, ..)| target_matches(n, t)) {
            return Err(Error::UnknownModule {
                op: OP,
                name: t.clone(),
                detail: "no Linear layer has this name (or ends with `.` and this name)",
            });
        }
    }
    let mut built: Vec<(String, Lora)> = Vec::new();
    for (name, fan_in, fan_out, has) in &layers {
        if !config
            .target_modules
            .iter()
            .any(|t| target_matches(name, t))
        {
            continue;
        }
        if *has {
            return Err(Error::UnknownModule {
                op: OP,
                name: name.clone(),
                detail: "this Linear layer already has a LoRA adapter",
            });
        }
        built.push((name.clone(), Lora::new(*fan_in, *fan_out, config)?));
    }
    let names = built.iter().map(|(n, _)| n.clone()).collect();
    attach_frozen(model, built);
    Ok(names)
}

/// Freezes every parameter of `model`, then gives each named `Linear` its
/// adapter (whose A and B stay trainable). Cannot fail: every name in
/// `adapters` was found by `visit_linears` and every adapter fits.
pub(crate) fn attach_frozen<M: Module + ?Sized>(model: &mut M, mut adapters: Vec<(String, Lora)>) {
    model.set_requires_grad(false);
    let training = model.is_training();
    model.visit_linears_mut("", &mut |n, l| {
        if let Some(i) = adapters.iter().position(|(a, _)| a == n) {
            let (_, mut lora) = adapters.swap_remove(i);
            lora.set_training(training);
            l.lora = Some(alloc::boxed::Box::new(lora));
        }
    });
    debug_assert!(adapters.is_empty(), "an adapter found no layer");
}

/// [`Module::merge_lora`], for any module including `dyn Module`.
pub fn merge_lora<M: Module + ?Sized>(model: &mut M) -> Result<()> {
    set_merged(model, true)
}

/// [`Module::unmerge_lora`], for any module including `dyn Module`.
pub fn unmerge_lora<M: Module + ?Sized>(model: &mut M) -> Result<()> {
    set_merged(model, false)
}

/// [`Module::merge_and_unload_lora`], for any module including `dyn Module`.
pub fn merge_and_unload_lora<M: Module + ?Sized>(model: &mut M) -> Result<()> {
    set_merged(model, true)?;
    model.visit_linears_mut("", &mut |_, l| {
        l.take_lora();
    });
    Ok(())
}

/// Merges (`merge`) or unmerges every adapter of `model`.
fn set_merged<M: Module + ?Sized>(model: &mut M, merge: bool) -> Result<()> {
    let mut result = Ok(());
    model.visit_linears_mut("", &mut |_, l| {
        if result.is_ok()
            && let Some(lora) = &mut l.lora
        {
            result = lora.set_merged(&mut l.weight, merge);
        }
    });
    result
}

/// [`Module::freeze_all_but_last`], for any module including `dyn Module`.
pub fn freeze_all_but_last<M: Module + ?Sized>(model: &mut M, k: usize) -> Vec<String> {
    let mut layers: Vec<String> = Vec::new();
    model.visit_params("", &mut |n, _| {
        let o = owner_of(n);
        if !layers.iter().any(|l| l == o) {
            layers.push(o.to_string());
        }
    });
    let keep = layers.split_off(layers.len().saturating_sub(k));
    model.visit_params_mut("", &mut |n, p| {
        let on = keep.iter().any(|l| l == owner_of(n));
        if p.requires_grad() != on {
            p.set_requires_grad(on);
        }
    });
    keep
}

/// [`Module::train_bias_only`], for any module including `dyn Module`.
pub fn train_bias_only<M: Module + ?Sized>(model: &mut M) -> usize {
    let mut n = 0;
    model.visit_params_mut("", &mut |name, p| {
        let on = is_bias(name);
        n += on as usize;
        if p.requires_grad() != on {
            p.set_requires_grad(on);
        }
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(target_matches("0", "0"));
        assert!(target_matches("enc.q_proj", "q_proj"));
        assert!(!target_matches("enc.xq_proj", "q_proj"));
        assert!(!target_matches("10", "0"));
        assert_eq!(owner_of("0.weight"), "0");
        assert_eq!(owner_of("weight"), "");
        assert_eq!(owner_of("a.2.base_layer.bias"), "a.2");
        assert_eq!(owner_of("2.lora_B.default.weight"), "2");
        assert_eq!(owner_of("lora_A.default.weight"), "");
        assert!(is_bias("0.bias") && is_bias("attn.in_proj_bias") && is_bias("bias"));
        assert!(!is_bias("0.weight") && !is_bias("biased.weight"));
    }
}
