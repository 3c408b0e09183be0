//! The `Module` trait: a layer or model with named parameters and buffers.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Linear, LoraConfig, lora};
use crate::error::{Error, Result, unwrap};
use crate::tensor::Tensor;

/// A layer or a model: a forward computation plus named parameters (tensors
/// trained by an optimizer) and buffers (state such as running statistics).
///
/// Names are dotted paths as in PyTorch's `state_dict` (`"0.weight"`,
/// `"encoder.layers.1.norm.bias"`), so checkpoints map one to one onto PyTorch
/// models with the same structure.
///
/// `forward` takes `&self`: a model can be shared by threads that each run a
/// forward and backward pass (gradients accumulate into the same parameters).
/// Layers with state that forward updates (batch-norm statistics, dropout's
/// random stream) keep it behind a lock.
///
/// Implementors write [`try_forward`](Module::try_forward),
/// [`visit_params`](Module::visit_params),
/// [`visit_params_mut`](Module::visit_params_mut) and, when they have any,
/// buffers and train/eval behaviour; everything else is provided.
pub trait Module: Send + Sync {
    /// The forward computation, or an error naming the failing operation.
    fn try_forward(&self, x: &Tensor) -> Result<Tensor>;

    /// The forward computation.
    ///
    /// # Panics
    /// If an operation fails (e.g. the input has the wrong shape); see
    /// [`try_forward`](Module::try_forward).
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        unwrap(self.try_forward(x))
    }

    /// Calls `f(name, parameter)` for every parameter, names prefixed by
    /// `prefix`, in registration order.
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor));

    /// Calls `f(name, parameter)` with mutable access, in the same order as
    /// [`visit_params`](Module::visit_params).
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor));

    /// Calls `f(name, buffer)` for every buffer (non-trained state saved in the
    /// state dict). None by default.
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        let _ = (prefix, f);
    }

    /// Calls `f(name, tensor)` for every parameter and buffer in PyTorch's
    /// `state_dict` order: a module's own parameters, then its own buffers,
    /// then each sub-module's. The default (parameters, then buffers) is right
    /// for layers; containers override it to interleave their children.
    fn visit_state(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.visit_params(prefix, f);
        self.visit_buffers(prefix, f);
    }

    /// Replaces the buffer called `name` (relative to this module) with
    /// `value`; returns false if there is no such buffer.
    fn set_buffer(&mut self, name: &str, value: &Tensor) -> Result<bool> {
        let _ = (name, value);
        Ok(false)
    }

    /// Calls `f(name, state)` for every random stream the module owns (e.g.
    /// dropout masks), so checkpoints can resume them exactly. None by
    /// default.
    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        let _ = (prefix, f);
    }

    /// Restores the random stream called `name` (relative to this module);
    /// returns false if there is no such stream.
    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        let _ = (name, state);
        false
    }

    /// Switches training behaviour (dropout, batch-norm statistics) on or
    /// off, here and in every sub-module.
    fn set_training(&mut self, training: bool) {
        let _ = training;
    }

    /// Whether the module is in training mode (true unless set otherwise).
    fn is_training(&self) -> bool {
        true
    }

    /// Calls `f(name, layer)` for every [`Linear`] layer in this module,
    /// itself included, with its dotted path (`"0"`, `"encoder.q_proj"`; a
    /// `Linear` visited on its own is called `""`). None by default:
    /// containers and modules holding `Linear` layers pass it on, which is
    /// what lets [`add_lora`](Module::add_lora) find its targets.
    fn visit_linears(&self, prefix: &str, f: &mut dyn FnMut(&str, &Linear)) {
        let _ = (prefix, f);
    }

    /// [`visit_linears`](Module::visit_linears) with mutable access.
    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        let _ = (prefix, f);
    }

    /// Describes the forward pass to a memory [`Planner`](crate::nn::plan::Planner)
    /// from shapes alone: the same buffers the real forward allocates, saves
    /// for backward and releases, in the same order (see
    /// [`crate::nn::plan`]). Sub-modules are planned inside
    /// [`Planner::scope`](crate::nn::plan::Planner::scope) with their names.
    ///
    /// The default returns `InvalidArgument` (op `plan`): a module without a
    /// plan cannot be planned, rather than be planned wrong.
    fn plan(
        &self,
        p: &mut crate::nn::plan::Planner,
        x: &crate::nn::plan::PlanTensor,
    ) -> Result<crate::nn::plan::PlanTensor> {
        let _ = (p, x);
        Err(Error::InvalidArgument {
            op: "plan",
            detail: "a module does not implement Module::plan, so its memory cannot be planned",
        })
    }

    /// Describes the forward pass to a captured training step
    /// ([`CapturedStep`](crate::nn::capture::CapturedStep)) with the
    /// [`Capture`](crate::nn::capture::Capture)'s operations, which run the
    /// same kernels as the layer's tensor operations.
    ///
    /// The default returns `InvalidArgument` (op `capture`): a module that
    /// does not describe itself cannot be captured.
    fn capture(
        &self,
        c: &mut crate::nn::capture::Capture,
        x: crate::nn::capture::Act,
    ) -> Result<crate::nn::capture::Act> {
        let _ = (c, x);
        Err(Error::InvalidArgument {
            op: "capture",
            detail: "a module does not implement Module::capture, so its step cannot be captured",
        })
    }

    // ------------------------------------------------------------ provided

    /// Training mode (PyTorch's `model.train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (PyTorch's `model.eval()`).
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Handles to every parameter (O(1) clones sharing storage and gradient).
    fn parameters(&self) -> Vec<Tensor> {
        let mut out = Vec::new();
        self.visit_params("", &mut |_, p| out.push(p.clone()));
        out
    }

    /// Mutable references to the parameters that require grad, in
    /// [`parameters_mut`](Module::parameters_mut) order: what
    /// [`Optimizer::step_module`](crate::optim::Optimizer::step_module) updates.
    fn trainable_parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut out = self.parameters_mut();
        out.retain(|p| p.requires_grad());
        out
    }

    /// Mutable references to every parameter, e.g. for an optimizer step.
    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut out = Vec::new();
        self.visit_params_mut("", &mut |_, p| out.push(p));
        out
    }

    /// `(name, parameter)` pairs with dotted names.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_params("", &mut |n, p| out.push((n.to_string(), p.clone())));
        out
    }

    /// Mutable `(name, parameter)` pairs.
    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = Vec::new();
        self.visit_params_mut("", &mut |n, p| out.push((n.to_string(), p)));
        out
    }

    /// Number of trainable scalars.
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit_params("", &mut |_, p| n += p.numel());
        n
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        self.visit_params("", &mut |_, p| p.zero_grad());
    }

    /// Freezes (`false`) or unfreezes (`true`) every parameter: a frozen
    /// parameter does not require grad, so no gradient reaches it and
    /// optimizers skip it.
    fn set_requires_grad(&mut self, on: bool) {
        self.visit_params_mut("", &mut |_, p| {
            if p.requires_grad() != on {
                p.set_requires_grad(on);
            }
        });
    }

    /// Handles to the parameters that require grad: what an optimizer should
    /// get after [`freeze_all_but_last`](Module::freeze_all_but_last),
    /// [`train_bias_only`](Module::train_bias_only) or
    /// [`add_lora`](Module::add_lora).
    fn trainable_parameters(&self) -> Vec<Tensor> {
        let mut out = Vec::new();
        self.visit_params("", &mut |_, p| {
            if p.requires_grad() {
                out.push(p.clone())
            }
        });
        out
    }

    /// Freezes every parameter except those of the last `k` layers, and
    /// unfreezes those; returns the names of the layers left trainable.
    /// (This and the LoRA methods below are `where Self: Sized`, so a trait
    /// object's vtable does not carry them and firmware that never adapts
    /// a model links no LoRA code; on a `dyn Module` call the functions of
    /// the same names in [`nn`](crate::nn), e.g. [`nn::add_lora`](
    /// crate::nn::add_lora).)
    ///
    /// A layer is a module that owns parameters directly: the parameters
    /// are grouped by their name without its last component (`"2.weight"`
    /// and `"2.bias"` form layer `"2"`; a LoRA layer's `base_layer` and
    /// adapter weights count as one layer), in parameter order. Modules
    /// without parameters (activations, pooling) are not layers. `k = 0`
    /// freezes everything; `k` at least the number of layers trains
    /// everything.
    fn freeze_all_but_last(&mut self, k: usize) -> Vec<String>
    where
        Self: Sized,
    {
        lora::freeze_all_but_last(self, k)
    }

    /// BitFit: only bias terms train. Every parameter whose name's last
    /// component is `bias` or ends with `_bias` (attention's
    /// `in_proj_bias`) requires grad, every other one is frozen. Returns
    /// the number of bias tensors left trainable.
    fn train_bias_only(&mut self) -> usize
    where
        Self: Sized,
    {
        lora::train_bias_only(self)
    }

    /// LoRA (PEFT's `get_peft_model`): attaches a fresh adapter ([`Lora`](
    /// super::Lora)) to every `Linear` layer matched by
    /// `config.target_modules`, freezes every other parameter (base weights
    /// and biases included) and leaves the adapters' A and B trainable.
    /// Returns the names of the adapted layers, in model order.
    ///
    /// Load the base weights first: an adapted layer's parameters are then
    /// named `base_layer.weight`, `base_layer.bias`, `lora_A.default.weight`
    /// and `lora_B.default.weight` (PEFT's names), so a plain checkpoint no
    /// longer matches its state dict. Only `Linear` layers reachable through
    /// [`visit_linears`](Module::visit_linears) can be targets.
    ///
    /// Errors (nothing changed): [`Error::UnknownModule`] naming a target
    /// that matches no `Linear` layer, or a matched layer that already has
    /// an adapter; `InvalidArgument` for `r = 0`, a non-finite alpha or
    /// dropout outside `[0, 1)`; `OutOfMemory`.
    fn add_lora(&mut self, config: &LoraConfig) -> Result<Vec<String>>
    where
        Self: Sized,
    {
        lora::add_lora(self, config)
    }

    /// Folds every LoRA adapter into its layer's weight (`W += (alpha / r)
    /// B·A`) for inference; the forward pass of a merged layer then runs the
    /// base path only. Already merged adapters are skipped. On
    /// `OutOfMemory`, the layers before the failing one are merged and the
    /// rest are not (each adapter knows its state; call again to finish).
    fn merge_lora(&mut self) -> Result<()>
    where
        Self: Sized,
    {
        lora::merge_lora(self)
    }

    /// Undoes [`merge_lora`](Module::merge_lora) (`W -= (alpha / r) B·A`),
    /// giving the original weight up to float rounding. Unmerged adapters
    /// are skipped; errors as `merge_lora`.
    fn unmerge_lora(&mut self) -> Result<()>
    where
        Self: Sized,
    {
        lora::unmerge_lora(self)
    }

    /// PEFT's `merge_and_unload`: merges every LoRA adapter (see
    /// [`merge_lora`](Module::merge_lora)), then removes the adapters, so
    /// the layers are plain `Linear`s again, named `weight` / `bias` (their
    /// `requires_grad` flags stay as they were). Errors as `merge_lora`,
    /// before any adapter is removed.
    fn merge_and_unload_lora(&mut self) -> Result<()>
    where
        Self: Sized,
    {
        lora::merge_and_unload_lora(self)
    }

    /// Parameters and buffers by dotted name (detached handles), in
    /// PyTorch's `state_dict` order (see [`visit_state`](Module::visit_state)).
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_state("", &mut |n, t| out.push((n.to_string(), t.detach())));
        out
    }

    /// Copies values from `state` into the parameters (in place: they keep
    /// their identity, so optimizer state stays linked) and buffers.
    ///
    /// Returns [`Error::StateDict`] listing missing, unexpected and mis-shaped
    /// keys, without changing anything, if the names or shapes do not match
    /// exactly; `OutOfMemory`, also without changing anything, if the fresh
    /// buffers for parameters shared with other handles (an autograd graph,
    /// a clone) do not fit.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.load_state_dict_with(state, true).map(|_| ())
    }

    /// Like [`load_state_dict`](Module::load_state_dict); with `strict =
    /// false`, missing and unexpected keys are allowed (and returned in the
    /// report) and only matching entries are loaded. Mis-shaped keys are always
    /// an error.
    fn load_state_dict_with(
        &mut self,
        state: &[(String, Tensor)],
        strict: bool,
    ) -> Result<StateDictReport> {
        let report = check_state_dict(self, state, strict)?;
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t);
        // Every allocation first, so running out of memory changes nothing:
        // a fresh buffer for each parameter shared with another handle (an
        // autograd graph, a caller's clone), and a contiguous copy of each
        // buffer value that is not contiguous already.
        let mut result = Ok(());
        let mut fresh = Vec::new();
        self.visit_params("", &mut |n, p| {
            if find(n).is_some() && result.is_ok() {
                match p.try_write_buffer() {
                    Ok(b) => fresh.push(b),
                    Err(e) => result = Err(e),
                }
            }
        });
        result?;
        let mut result = Ok(());
        let mut buffers: Vec<(String, Tensor)> = Vec::new();
        self.visit_buffers("", &mut |n, _| {
            if let Some(src) = find(n)
                && result.is_ok()
            {
                match src.detach().try_contiguous() {
                    Ok(t) => buffers.push((n.to_string(), t)),
                    Err(e) => result = Err(e),
                }
            }
        });
        result?;
        // Then the writes, which allocate nothing (shapes were checked).
        let mut fresh = fresh.into_iter();
        let mut result = Ok(());
        crate::autograd::no_grad(|| {
            self.visit_params_mut("", &mut |n, p| {
                if let Some(src) = find(n)
                    && result.is_ok()
                {
                    result = p.copy_from_with(fresh.next().flatten(), src);
                }
            });
        });
        result?;
        for (name, src) in &buffers {
            self.set_buffer(name, src)?;
        }
        Ok(report)
    }
}

/// The checking half of [`Module::load_state_dict_with`]: which of `model`'s
/// keys `state` misses, which it has in excess and which have another shape;
/// [`Error::StateDict`] when loading would be refused. Changes nothing.
pub(crate) fn check_state_dict<M: Module + ?Sized>(
    model: &M,
    state: &[(String, Tensor)],
    strict: bool,
) -> Result<StateDictReport> {
    let mut report = StateDictReport::default();
    // By name, so the check is O(n log n) however many keys there are.
    // (Inserted one by one: `collect` into a BTreeMap instantiates a stable
    // sort, code a small flash pays for.) A repeated key keeps its last value.
    let mut given: alloc::collections::BTreeMap<&str, &Tensor> = Default::default();
    for (n, t) in state {
        given.insert(n.as_str(), t);
    }
    let mut expected: alloc::collections::BTreeSet<String> = Default::default();
    let mut visit = |n: &str, t: &Tensor| {
        match given.get(n) {
            None => report.missing.push(n.to_string()),
            Some(s) if s.dims() != t.dims() => report.mismatched.push(n.to_string()),
            Some(_) => {}
        }
        expected.insert(n.to_string());
    };
    model.visit_params("", &mut visit);
    model.visit_buffers("", &mut visit);
    let mut seen = alloc::collections::BTreeSet::new();
    for (name, _) in state {
        // A repeated key is unexpected too: which copy would load?
        if !expected.contains(name) || !seen.insert(name.as_str()) {
            report.unexpected.push(name.clone());
        }
    }
    if !report.mismatched.is_empty()
        || (strict && (!report.missing.is_empty() || !report.unexpected.is_empty()))
    {
        return Err(Error::StateDict {
            missing: report.missing.len(),
            unexpected: report.unexpected.len(),
            mismatched: report.mismatched.len(),
            keys: report.summary(strict),
        });
    }
    Ok(report)
}

/// What [`Module::load_state_dict_with`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDictReport {
    /// Keys the module has but the state dict lacks.
    pub missing: Vec<String>,
    /// Keys the state dict has but the module lacks.
    pub unexpected: Vec<String>,
    /// Keys present in both with different shapes.
    pub mismatched: Vec<String>,
}

impl StateDictReport {
    /// `mis-shaped: a; missing: b, c; unexpected: d`.
    fn summary(&self, strict: bool) -> String {
        let groups: [(&str, &Vec<String>, bool); 3] = [
            ("mis-shaped: ", &self.mismatched, true),
            ("missing: ", &self.missing, strict),
            ("unexpected: ", &self.unexpected, strict),
        ];
        let mut parts: Vec<String> = Vec::new();
        for (label, names, show) in groups {
            if show && !names.is_empty() {
                parts.push(alloc::format!("{label}{}", names.join(", ")));
            }
        }
        parts.join("; ")
    }
}

impl<M: Module + ?Sized> Module for alloc::boxed::Box<M> {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).try_forward(x)
    }
    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        (**self).visit_params(prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        (**self).visit_params_mut(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        (**self).visit_buffers(prefix, f)
    }
    fn visit_state(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        (**self).visit_state(prefix, f)
    }
    fn set_buffer(&mut self, name: &str, value: &Tensor) -> Result<bool> {
        (**self).set_buffer(name, value)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        (**self).visit_rng_states(prefix, f)
    }
    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        (**self).set_rng_state(name, state)
    }
    fn is_training(&self) -> bool {
        (**self).is_training()
    }
    fn visit_linears(&self, prefix: &str, f: &mut dyn FnMut(&str, &Linear)) {
        (**self).visit_linears(prefix, f)
    }
    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        (**self).visit_linears_mut(prefix, f)
    }
    fn plan(
        &self,
        p: &mut crate::nn::plan::Planner,
        x: &crate::nn::plan::PlanTensor,
    ) -> Result<crate::nn::plan::PlanTensor> {
        (**self).plan(p, x)
    }
    fn capture(
        &self,
        c: &mut crate::nn::capture::Capture,
        x: crate::nn::capture::Act,
    ) -> Result<crate::nn::capture::Act> {
        (**self).capture(c, x)
    }
}

/// Bytes of a [`Name`] kept on the stack.
const NAME_STACK: usize = 96;

/// A dotted parameter or module name, on the stack when it fits (names are
/// built on every visit of the parameters: every `zero_grad` and optimizer
/// step, where allocating and formatting them cost more than a small
/// layer's update), on the heap otherwise. Dereferences to `str`.
pub(crate) enum Name {
    Stack(heapless::String<NAME_STACK>),
    Heap(String),
}

impl core::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Name::Stack(s) => s,
            Name::Heap(s) => s,
        }
    }
}

/// The concatenation of `parts`.
fn concat(parts: &[&str]) -> Name {
    let mut s = heapless::String::new();
    if parts.iter().all(|p| s.push_str(p).is_ok()) {
        return Name::Stack(s);
    }
    Name::Heap(parts.concat())
}

/// `prefix + name`, e.g. `join("layers.0.", "weight")`.
pub(crate) fn join(prefix: &str, name: &str) -> Name {
    concat(&[prefix, name])
}

/// The prefix of child `i` of a container: `prefix + i + "."`.
pub(crate) fn child(prefix: &str, i: usize) -> Name {
    let mut buf = [0u8; 20];
    concat(&[prefix, crate::math::decimal(i, &mut buf), "."])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are the same on the stack and on the heap (past `NAME_STACK`
    /// bytes), and child indices print in decimal.
    #[test]
    fn names_join_on_the_stack_and_past_it() {
        assert_eq!(&*join("layers.0.", "weight"), "layers.0.weight");
        assert!(matches!(join("a.", "b"), Name::Stack(_)));
        for i in [0usize, 7, 10, 123_456, usize::MAX] {
            assert_eq!(&*child("seq.", i), alloc::format!("seq.{i}."));
        }
        let long = "x".repeat(NAME_STACK);
        let name = join(&long, ".weight");
        assert!(matches!(name, Name::Heap(_)));
        assert_eq!(&*name, alloc::format!("{long}.weight"));
        let edge = "y".repeat(NAME_STACK - 1);
        assert!(matches!(join(&edge, "z"), Name::Stack(_)));
        assert_eq!(&*child(&edge, 5), alloc::format!("{edge}5."));
    }
}
