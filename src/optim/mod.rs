//! Optimizers, learning-rate schedulers and gradient clipping, as in
//! `torch.optim` and `torch.nn.utils.clip_grad_*`.
//!
//! | item | PyTorch |
//! |---|---|
//! | [`Sgd`] | `torch.optim.SGD` (momentum, dampening, Nesterov, weight decay, maximize) |
//! | [`Adam`], [`AdamW`] | `torch.optim.Adam` / `AdamW` (L2 or decoupled weight decay, AMSGrad, maximize) |
//! | [`RmsProp`] | `torch.optim.RMSprop` (momentum, centered, weight decay, maximize) |
//! | [`clip_grad_norm`], [`clip_grad_value`] | `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` |
//! | [`try_train_step`], [`StepSnapshot`] | one training step that on any error (e.g. out of memory) changes nothing |
//! | [`StepLr`], [`MultiStepLr`], [`ExponentialLr`], [`CosineAnnealingLr`], [`LinearLr`], [`ConstantLr`], [`OneCycleLr`], [`SequentialLr`] | `torch.optim.lr_scheduler.*` |
//!
//! ```
//! use train_station::Tensor;
//! use train_station::optim::{Adam, AdamConfig, Optimizer};
//!
//! let mut w = Tensor::from_slice(&[1.0, -2.0], [2]).unwrap().with_requires_grad();
//! let mut opt = Adam::new(&[w.clone()], AdamConfig { lr: 0.1, ..Default::default() });
//! for _ in 0..3 {
//!     let loss = (&w * &w).sum();
//!     loss.backward();
//!     drop(loss); // releases the graph: the step below updates `w` in place
//!     opt.step(&mut [&mut w]).unwrap();
//!     w.zero_grad();
//! }
//! assert!(w.to_vec()[0] < 1.0 && w.to_vec()[1] > -2.0);
//! ```
//!
//! # Parameters are registered by identity
//!
//! An optimizer remembers the [`id`](Tensor::id) (and shape) of each parameter
//! it was given, never a handle: holding a handle would share the parameter's
//! buffer and force a copy on every update. `clone()`, in-place arithmetic
//! (`+=`), [`Module::load_state_dict`]
//! and the optimizer's own updates keep the id, so the state stays linked.
//! [`Optimizer::step`] takes mutable references to the parameters to update
//! (e.g. `model.parameters_mut()`); passing a parameter the optimizer does not
//! know is an error, never a silent skip. Parameters without a gradient (or
//! that do not require grad) are skipped, and so is their step count, as in
//! PyTorch.
//!
//! The update writes through [`Tensor::data_mut`]: in place when the
//! parameter's buffer is not shared. After `backward` has released the graph
//! (and once the loss tensor is dropped) nothing else holds the buffer, so
//! the step copies nothing. A parameter handle kept alive elsewhere (a
//! `model.parameters()` vector held across the step) shares the buffer, and
//! the step then copies once (copy-on-write; the held handle keeps the old
//! values).
//!
//! # Out of memory
//!
//! [`Optimizer::step`], [`clip_grad_norm`], [`clip_grad_value`] and
//! [`clip_grads_with_norm`] are all or nothing: they allocate whatever they
//! need first (state created on a parameter's first step, copies of shared
//! buffers) and then update with operations that cannot fail, so an
//! [`Error::OutOfMemory`] leaves parameters, gradients and state as they
//! were. [`try_train_step`] extends this to a whole step (forward, backward,
//! update), undoing what the pieces before a failure did.
//!
//! # Numerics
//!
//! Each update is one fused pass over the parameter, its gradient and the
//! state buffers (`sgd_update`, `adam_update`, `rmsprop_update`), in f32 and
//! in the same order of operations as PyTorch's single-tensor
//! (`foreach=False`) implementation. Hyper-parameters are f32 in the API;
//! scalar arithmetic that PyTorch does on Python floats (bias corrections,
//! step sizes, `1 - beta`) is done in f64 on the shortest decimal reading of
//! each f32 (so `0.9f32` is taken as `0.9`, as typed), then rounded to f32
//! where PyTorch rounds it. PyTorch's vectorised CPU kernels use fused
//! multiply-adds in places; the results agree to a few ulps per step.

mod adam;
mod clip;
mod decimal;
mod rmsprop;
mod scheduler;
mod sgd;
mod train_step;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value, clip_grads_with_norm, total_grad_norm};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use scheduler::{
    Anneal, ConstantLr, CosineAnnealingLr, ExponentialLr, LinearLr, LrScheduler, MultiStepLr,
    OneCycleConfig, OneCycleLr, SequentialLr, StepLr,
};
pub use sgd::{Sgd, SgdConfig};
pub use train_step::{StepSnapshot, try_train_step};

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::nn::Module;
use crate::tensor::{Shape, Tensor};

/// One optimizer: parameters registered by identity into parameter groups,
/// each group with its own hyper-parameters. See the [module docs](self).
pub trait Optimizer: Send {
    /// Updates every given parameter that requires grad and has a gradient,
    /// in place (same id; same storage when it is not shared). Runs under
    /// [`no_grad`](crate::no_grad). Parameters without a gradient are
    /// skipped, as in PyTorch.
    ///
    /// All or nothing: errors, leaving every parameter and all optimizer
    /// state exactly as before (same values, same state entries), if a
    /// parameter is not registered with this optimizer, appears twice or no
    /// longer has its registered shape, or if memory runs out
    /// ([`Error::OutOfMemory`]). The step first allocates everything it
    /// needs (state buffers created on a parameter's first step, copies of
    /// buffers that are shared), then updates with operations that cannot
    /// fail. A failed step may still have given a shared parameter or state
    /// buffer its own copy of the same values.
    fn step(&mut self, params: &mut [&mut Tensor]) -> Result<()>;

    /// [`step`](Optimizer::step) on every parameter of `m` that requires
    /// grad ([`Module::trainable_parameters_mut`]); frozen parameters, which
    /// an optimizer built from
    /// [`trainable_parameters`](Module::trainable_parameters) does not know,
    /// are left out.
    fn step_module(&mut self, m: &mut dyn Module) -> Result<()> {
        self.step(&mut m.trainable_parameters_mut())
    }

    /// State tensors the optimizer keeps per trained parameter, each of the
    /// parameter's shape (the most any group needs): 0 for plain SGD, 1 with
    /// momentum, 2 for Adam (3 with AMSGrad), 1 to 3 for RMSprop. Memory plans
    /// ([`crate::nn::plan`]) count them.
    fn state_tensors_per_param(&self) -> usize;

    /// Learning rate of each group, in group order.
    fn lrs(&self) -> Vec<f32>;

    /// Sets the learning rate of group `g` (schedulers call this).
    ///
    /// # Panics
    /// If `g` is not a group index.
    fn set_lr(&mut self, g: usize, lr: f32);

    /// The hyper-parameter `name` of group `g` (names as in
    /// [`GroupState::hyper`]), or `None` if the group or name does not exist.
    fn hyper(&self, g: usize, name: &str) -> Option<f32> {
        let state = self.export_state();
        let group = state.groups.get(g)?;
        group.hyper.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Sets the hyper-parameter `name` of group `g` (e.g. `"momentum"` or
    /// `"beta1"`, which [`OneCycleLr`] cycles). Errors, leaving the group
    /// unchanged, on an unknown group or name or an invalid value.
    fn set_hyper(&mut self, g: usize, name: &str, value: f32) -> Result<()> {
        let _ = (g, name, value);
        Err(Error::InvalidArgument {
            op: "set_hyper",
            detail: "this optimizer does not support setting hyper-parameters",
        })
    }

    /// Everything needed to resume exactly: per-group hyper-parameters and,
    /// per parameter that has state, its named state tensors (handles, O(1);
    /// the optimizer copies on its next write).
    ///
    /// # Panics
    /// On `OutOfMemory` (a step counter is copied into a new scalar tensor);
    /// [`try_export_state`](Optimizer::try_export_state) returns it instead.
    fn export_state(&self) -> OptimizerState;

    /// [`export_state`](Optimizer::export_state), or `OutOfMemory` if the
    /// pool cannot hold the step counters' scalar tensors (a memory budget is
    /// full); checkpoint saving and loading call this. The default wraps
    /// `export_state` for optimizers whose export cannot fail.
    fn try_export_state(&self) -> Result<OptimizerState> {
        Ok(self.export_state())
    }

    /// Restores [`export_state`](Optimizer::export_state) output, whose ids
    /// the caller may have remapped first ([`OptimizerState::remap_ids`]).
    /// Errors, changing nothing, on a kind, group, parameter, name or shape
    /// mismatch.
    fn import_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// A snapshot of an optimizer: what [`Optimizer::export_state`] returns and
/// [`Optimizer::import_state`] takes.
#[derive(Clone, Debug)]
pub struct OptimizerState {
    /// PyTorch's class name: `"SGD"`, `"Adam"`, `"AdamW"`, `"RMSprop"`.
    pub kind: String,
    /// Parameter groups in order.
    pub groups: Vec<GroupState>,
    /// Per parameter id that has state (parameters that never had a
    /// gradient have none, as in PyTorch), its state tensors by name:
    /// SGD `momentum_buffer`; Adam/AdamW `step` (0-D), `exp_avg`,
    /// `exp_avg_sq`, `max_exp_avg_sq` (AMSGrad only); RMSprop `step`,
    /// `square_avg`, `momentum_buffer` (momentum > 0), `grad_avg` (centered).
    pub params: Vec<(u64, Vec<(String, Tensor)>)>,
}

/// One parameter group of an [`OptimizerState`].
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// Ids of the group's parameters, in registration order.
    pub params: Vec<u64>,
    /// Hyper-parameters by PyTorch name (`"lr"`, `"momentum"`, ...; Adam's
    /// `betas` as `"beta1"`, `"beta2"`; flags as 0 or 1).
    pub hyper: Vec<(String, f32)>,
}

impl OptimizerState {
    /// Replaces every parameter id by `f(id)`, e.g. to move a state exported
    /// from one model onto another with the same structure.
    pub fn remap_ids(&mut self, mut f: impl FnMut(u64) -> u64) {
        for g in &mut self.groups {
            for id in &mut g.params {
                *id = f(*id);
            }
        }
        for (id, _) in &mut self.params {
            *id = f(*id);
        }
    }
}

// ------------------------------------------------------------------ shared core

/// The shortest decimal reading of `x` as f64 (`0.9f32` -> `0.9`): the value
/// a PyTorch user typing the same literal would have as a Python float
/// (computed without core's float formatting and parsing: see
/// `optim::decimal`).
pub(crate) fn dec(x: f32) -> f64 {
    decimal::shortest_to_f64(x)
}

/// `x >= 0` (false for NaN).
pub(crate) fn non_negative(x: f32) -> bool {
    x >= 0.0
}

/// Whether `x` is a finite whole number.
pub(crate) fn integral(x: f32) -> bool {
    x.is_finite() && libm::truncf(x) == x
}

/// f32 flag as stored in hyper-parameter pairs.
pub(crate) fn flag(b: bool) -> f32 {
    if b { 1.0 } else { 0.0 }
}

/// Reads a flag back; only 0 and 1 are flags.
pub(crate) fn read_flag(v: f32) -> Option<bool> {
    if v == 0.0 {
        Some(false)
    } else if v == 1.0 {
        Some(true)
    } else {
        None
    }
}

/// The name-to-field part of a [`Hyper`] impl (`pairs`, `set`, `lr`,
/// `set_lr`) from one list of `"name" => field: kind`, where `kind` is
/// `value` (an `f32` field) or `flag` (a `bool` field exported as 0/1). The
/// list's order is the export order; the struct must have an `lr` field.
macro_rules! hyper_fields {
    ($($name:literal => $($field:tt).+ : $kind:ident),+ $(,)?) => {
        fn pairs(&self) -> Vec<(&'static str, f32)> {
            vec![$(($name, hyper_fields!(@get $kind, self.$($field).+))),+]
        }

        fn set(&mut self, name: &str, v: f32) -> bool {
            match name {
                $($name => hyper_fields!(@set $kind, self.$($field).+, v),)+
                _ => return false,
            }
            true
        }

        fn lr(&self) -> f32 {
            self.lr
        }

        fn set_lr(&mut self, lr: f32) {
            self.lr = lr;
        }
    };
    (@get value, $e:expr) => {
        $e
    };
    (@get flag, $e:expr) => {
        $crate::optim::flag($e)
    };
    (@set value, $place:expr, $v:ident) => {
        $place = $v
    };
    (@set flag, $place:expr, $v:ident) => {
        match $crate::optim::read_flag($v) {
            Some(b) => $place = b,
            None => return false,
        }
    };
}
pub(crate) use hyper_fields;

/// The parameter-group methods of an optimizer whose groups live in
/// `self.core` (a [`Core`]) with hyper-parameters of type `$config`:
/// `add_param_group`, `config`, `num_groups`.
macro_rules! param_group_methods {
    ($config:ty) => {
        /// Adds a parameter group with its own hyper-parameters (start from
        /// [`config`](Self::config)`(0)` to override only some). Errors, changing
        /// nothing, on an invalid configuration or a parameter already registered.
        pub fn add_param_group(&mut self, params: &[Tensor], config: $config) -> Result<()> {
            self.core.add_group(params, config)
        }

        /// The hyper-parameters of group `g`.
        ///
        /// # Panics
        /// If `g` is not a group index.
        pub fn config(&self, g: usize) -> $config {
            self.core.groups[g]
        }

        /// Number of parameter groups.
        pub fn num_groups(&self) -> usize {
            self.core.groups.len()
        }
    };
}
pub(crate) use param_group_methods;

/// The [`Optimizer`] methods an optimizer answers from its [`Core`] (at the
/// field path given, e.g. `core` or `0.core`): learning rates, named
/// hyper-parameters, and `export_state` as the unwrapped `try_export_state`.
macro_rules! core_optimizer_methods {
    ($($core:tt).+) => {
        fn lrs(&self) -> Vec<f32> {
            self.$($core).+.lrs()
        }

        #[track_caller]
        fn set_lr(&mut self, g: usize, lr: f32) {
            self.$($core).+.set_lr(g, lr)
        }

        fn hyper(&self, g: usize, name: &str) -> Option<f32> {
            self.$($core).+.hyper(g, name)
        }

        fn set_hyper(&mut self, g: usize, name: &str, value: f32) -> Result<()> {
            self.$($core).+.set_hyper(g, name, value)
        }

        fn export_state(&self) -> OptimizerState {
            unwrap(self.try_export_state())
        }
    };
}
pub(crate) use core_optimizer_methods;

/// The hyper-parameters of one group of one optimizer kind.
pub(crate) trait Hyper: Copy + Send {
    /// `(name, value)` in export order.
    fn pairs(&self) -> Vec<(&'static str, f32)>;
    /// Sets `name`; false if the name is unknown or a flag is not 0/1.
    fn set(&mut self, name: &str, v: f32) -> bool;
    fn lr(&self) -> f32;
    fn set_lr(&mut self, lr: f32);
    /// Checks ranges as PyTorch's constructor does.
    fn validate(&self, op: &'static str) -> Result<()>;
}

/// A registered parameter.
pub(crate) struct Slot<S> {
    pub(crate) id: u64,
    pub(crate) group: usize,
    pub(crate) shape: Shape,
    /// `None` until the first step that had a gradient.
    pub(crate) state: Option<S>,
}

/// What every optimizer shares: groups, registration by id, lookup,
/// export/import of groups. `S` is the per-parameter state.
pub(crate) struct Core<H, S> {
    pub(crate) kind: &'static str,
    pub(crate) groups: Vec<H>,
    pub(crate) slots: Vec<Slot<S>>,
    index: BTreeMap<u64, usize>,
}

impl<H: Hyper, S> Core<H, S> {
    pub(crate) fn new(kind: &'static str, params: &[Tensor], hyper: H) -> Result<Self> {
        let mut core = Core {
            kind,
            groups: Vec::new(),
            slots: Vec::new(),
            index: BTreeMap::new(),
        };
        core.add_group(params, hyper)?;
        Ok(core)
    }

    /// Adds a group; errors (changing nothing) on invalid hyper-parameters or
    /// a parameter that is already registered.
    pub(crate) fn add_group(&mut self, params: &[Tensor], hyper: H) -> Result<()> {
        hyper.validate(self.kind)?;
        let mut ids = BTreeMap::new();
        for p in params {
            if self.index.contains_key(&p.id()) || ids.insert(p.id(), ()).is_some() {
                return Err(Error::InvalidArgument {
                    op: self.kind,
                    detail: "a parameter appears more than once (in one group or in two groups)",
                });
            }
        }
        let g = self.groups.len();
        self.groups.push(hyper);
        for p in params {
            self.index.insert(p.id(), self.slots.len());
            self.slots.push(Slot {
                id: p.id(),
                group: g,
                shape: p.shape().clone(),
                state: None,
            });
        }
        Ok(())
    }

    /// The slot of each parameter, checking registration, duplicates and
    /// shapes before anything is updated.
    pub(crate) fn resolve(&self, params: &[&mut Tensor]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(params.len());
        let mut seen = alloc::vec![false; self.slots.len()];
        for p in params {
            let Some(&s) = self.index.get(&p.id()) else {
                return Err(Error::InvalidArgument {
                    op: self.kind,
                    detail: "step: a parameter is not registered with this optimizer",
                });
            };
            if core::mem::replace(&mut seen[s], true) {
                return Err(Error::InvalidArgument {
                    op: self.kind,
                    detail: "step: a parameter is given twice",
                });
            }
            if p.shape() != &self.slots[s].shape {
                return Err(Error::ShapeMismatch {
                    op: self.kind,
                    lhs: (self.slots[s].shape.clone()).into(),
                    rhs: p.shape().into(),
                    detail: "step: the parameter no longer has its registered shape",
                });
            }
            out.push(s);
        }
        Ok(out)
    }

    pub(crate) fn lrs(&self) -> Vec<f32> {
        self.groups.iter().map(Hyper::lr).collect()
    }

    #[track_caller]
    pub(crate) fn set_lr(&mut self, g: usize, lr: f32) {
        let n = self.groups.len();
        match self.groups.get_mut(g) {
            Some(h) => h.set_lr(lr),
            None => panic!("{}: set_lr: group {g} out of range ({n} groups)", self.kind),
        }
    }

    pub(crate) fn hyper(&self, g: usize, name: &str) -> Option<f32> {
        let h = self.groups.get(g)?;
        h.pairs()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub(crate) fn set_hyper(&mut self, g: usize, name: &str, value: f32) -> Result<()> {
        let Some(h) = self.groups.get(g) else {
            return Err(Error::IndexOutOfRange {
                op: self.kind,
                index: g.min(isize::MAX as usize) as isize,
                size: self.groups.len(),
            });
        };
        let mut h = *h;
        if !h.set(name, value) {
            return Err(Error::InvalidArgument {
                op: self.kind,
                detail: "set_hyper: unknown hyper-parameter name (or a flag that is not 0 or 1)",
            });
        }
        h.validate(self.kind)?;
        self.groups[g] = h;
        Ok(())
    }

    pub(crate) fn export(
        &self,
        kind: &str,
        state: impl Fn(&S) -> Result<Vec<(String, Tensor)>>,
    ) -> Result<OptimizerState> {
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, h)| GroupState {
                params: self
                    .slots
                    .iter()
                    .filter(|s| s.group == g)
                    .map(|s| s.id)
                    .collect(),
                hyper: h
                    .pairs()
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
            })
            .collect();
        let mut params = Vec::new();
        for s in &self.slots {
            if let Some(st) = &s.state {
                let tensors = state(st)?;
                if !tensors.is_empty() {
                    params.push((s.id, tensors));
                }
            }
        }
        Ok(OptimizerState {
            kind: kind.to_string(),
            groups,
            params,
        })
    }

    /// Validates `st` completely, then replaces groups and states.
    /// `import_one(tensors, shape, hyper)` builds one parameter's state.
    pub(crate) fn import(
        &mut self,
        kind: &str,
        st: &OptimizerState,
        import_one: impl Fn(&StateReader<'_>, &H) -> Result<S>,
    ) -> Result<()> {
        let op = self.kind;
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        if st.kind != kind {
            return bad("import_state: the state was exported by another kind of optimizer");
        }
        if st.groups.len() != self.groups.len() {
            return bad("import_state: the state has a different number of parameter groups");
        }
        let mut groups = self.groups.clone();
        for (g, gs) in st.groups.iter().enumerate() {
            let mut mine: Vec<u64> = self
                .slots
                .iter()
                .filter(|s| s.group == g)
                .map(|s| s.id)
                .collect();
            let mut theirs = gs.params.clone();
            crate::sort::sort_unstable(&mut mine);
            crate::sort::sort_unstable(&mut theirs);
            if mine != theirs {
                return bad(
                    "import_state: a parameter group holds other parameters than this optimizer's (remap the ids first)",
                );
            }
            for (name, v) in &gs.hyper {
                if !groups[g].set(name, *v) {
                    return bad(
                        "import_state: unknown hyper-parameter name (or a flag that is not 0 or 1)",
                    );
                }
            }
            groups[g].validate(op)?;
        }
        let mut states: Vec<Option<S>> = (0..self.slots.len()).map(|_| None).collect();
        for (id, tensors) in &st.params {
            let Some(&s) = self.index.get(id) else {
                return bad("import_state: the state holds a parameter that is not registered");
            };
            if states[s].is_some() {
                return bad("import_state: a parameter's state appears twice");
            }
            let slot = &self.slots[s];
            let reader = StateReader {
                op,
                shape: &slot.shape,
                tensors,
            };
            reader.check_names()?;
            states[s] = Some(import_one(&reader, &groups[slot.group])?);
        }
        self.groups = groups;
        for (slot, state) in self.slots.iter_mut().zip(states) {
            slot.state = state;
        }
        Ok(())
    }
}

/// Hands one parameter's imported state tensors to an optimizer, checking
/// names and shapes.
pub(crate) struct StateReader<'a> {
    op: &'static str,
    shape: &'a Shape,
    tensors: &'a [(String, Tensor)],
}

impl StateReader<'_> {
    fn check_names(&self) -> Result<()> {
        for (i, (n, _)) in self.tensors.iter().enumerate() {
            if self.tensors[..i].iter().any(|(m, _)| m == n) {
                return Err(Error::InvalidArgument {
                    op: self.op,
                    detail: "import_state: a state tensor name appears twice",
                });
            }
        }
        Ok(())
    }

    /// Errors unless every tensor name is one of `names`.
    pub(crate) fn only(&self, names: &[&str]) -> Result<()> {
        if self
            .tensors
            .iter()
            .all(|(n, _)| names.contains(&n.as_str()))
        {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                op: self.op,
                detail: "import_state: unknown state tensor name",
            })
        }
    }

    fn find(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The buffer `name` (the parameter's shape), detached and contiguous,
    /// or `None` if absent.
    pub(crate) fn buffer(&self, name: &str) -> Result<Option<Tensor>> {
        let Some(t) = self.find(name) else {
            return Ok(None);
        };
        if t.shape() != self.shape {
            return Err(Error::ShapeMismatch {
                op: self.op,
                lhs: (self.shape.clone()).into(),
                rhs: t.shape().into(),
                detail: "import_state: a state tensor's shape differs from its parameter's",
            });
        }
        Ok(Some(t.detach().try_contiguous()?))
    }

    /// The buffer `name`, which must be present.
    pub(crate) fn required(&self, name: &str) -> Result<Tensor> {
        self.buffer(name)?.ok_or(Error::InvalidArgument {
            op: self.op,
            detail: "import_state: a parameter's state lacks a required tensor",
        })
    }

    /// The one-element tensor `step` as f32.
    pub(crate) fn step(&self) -> Result<f32> {
        let t = self.find("step").ok_or(Error::InvalidArgument {
            op: self.op,
            detail: "import_state: a parameter's state lacks its step count",
        })?;
        let v = t.try_item()?;
        if !(non_negative(v) && integral(v)) {
            return Err(Error::InvalidArgument {
                op: self.op,
                detail: "import_state: the step count is not a non-negative integer",
            });
        }
        Ok(v)
    }
}

/// A buffer of zeros shaped like `shape`.
pub(crate) fn zeros(shape: &Shape) -> Result<Tensor> {
    Tensor::try_zeros(shape.dims())
}

/// `(name, handle)` for export.
pub(crate) fn named(name: &str, t: &Tensor) -> (String, Tensor) {
    (name.to_string(), t.clone())
}

/// The gradient of `p` as a contiguous tensor, if it requires grad and has
/// one.
pub(crate) fn grad_of(p: &Tensor) -> Result<Option<Tensor>> {
    match p.grad() {
        Some(g) if g.is_contiguous() => Ok(Some(g)),
        Some(g) => Ok(Some(g.try_contiguous()?)),
        None => Ok(None),
    }
}

// ------------------------------------------------------------ atomic steps
//
// Every `step` runs in two phases. *Stage* does everything that can fail:
// it reads the gradients, makes each parameter and each existing state
// buffer writable in place (a copy-on-write copy changes no value), and
// allocates the state that is still missing, without inserting it. *Commit*
// then inserts the new state and runs the fused updates; it neither
// allocates nor fails. An error in staging leaves every parameter and every
// state exactly as it was.

/// A parameter that takes part in a step.
pub(crate) struct Staged {
    /// Index into the `params` slice given to `step`.
    pub(crate) param: usize,
    /// The parameter's slot in the optimizer.
    pub(crate) slot: usize,
    /// Its gradient, contiguous.
    pub(crate) grad: Tensor,
}

/// Stage phase, parameter part: every parameter of `params` (with its slot
/// from [`Core::resolve`]) that has a gradient, made writable in place.
pub(crate) fn stage_params(params: &mut [&mut Tensor], slots: &[usize]) -> Result<Vec<Staged>> {
    let mut out = Vec::with_capacity(params.len());
    for (i, (p, &slot)) in params.iter_mut().zip(slots).enumerate() {
        let Some(grad) = grad_of(p)? else {
            continue;
        };
        p.try_data_mut()?;
        out.push(Staged {
            param: i,
            slot,
            grad,
        });
    }
    Ok(out)
}

/// Stage phase, state part: when a buffer is `wanted`, makes the `existing`
/// one writable in place, or returns zeros shaped `shape` for the commit to
/// insert when there is none.
pub(crate) fn stage_buffer(
    existing: Option<&mut Tensor>,
    wanted: bool,
    shape: &Shape,
) -> Result<Option<Tensor>> {
    match existing {
        _ if !wanted => Ok(None),
        Some(b) => {
            b.try_data_mut()?;
            Ok(None)
        }
        None => Ok(Some(zeros(shape)?)),
    }
}

/// Commit phase: puts the `fresh` state staged for a parameter's first step
/// in place, and returns the parameter's state.
pub(crate) fn commit_state<S>(slot: &mut Option<S>, fresh: Option<S>) -> &mut S {
    match fresh {
        Some(f) => slot.insert(f),
        None => slot
            .as_mut()
            .expect("staging creates the state when there is none"),
    }
}

/// Commit phase: the elements of `t`, which staging made writable (unique,
/// contiguous; recording is off during a step), so no copy is made and no
/// error can occur here.
pub(crate) fn committed(t: &mut Tensor) -> Result<&mut [f32]> {
    t.try_data_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exported name reads back what it wrote (so `pairs` and `set`
    /// name the same fields), flags accept only 0 and 1, unknown names fail.
    fn hyper_round_trip<H: Hyper>(mut h: H, flags: &[&str]) {
        let names: Vec<&str> = h.pairs().iter().map(|p| p.0).collect();
        assert_eq!(names[0], "lr");
        for (i, &name) in names.iter().enumerate() {
            let flag = flags.contains(&name);
            let v = if flag { 1.0 } else { 0.25 + i as f32 };
            assert!(h.set(name, v), "{name}");
            let got: Vec<f32> = h.pairs().iter().map(|p| p.1).collect();
            assert_eq!(got[i], v, "{name}");
            assert_eq!(h.set(name, 0.5), !flag, "{name}: 0.5 as a flag");
        }
        h.set_lr(7.0);
        assert_eq!((h.lr(), h.pairs()[0].1), (7.0, 7.0));
        assert!(!h.set("no_such_name", 1.0));
    }

    #[test]
    fn hyper_fields_map_names_to_fields() {
        hyper_round_trip(SgdConfig::default(), &["nesterov", "maximize"]);
        hyper_round_trip(AdamConfig::default(), &["amsgrad", "maximize"]);
        hyper_round_trip(RmsPropConfig::default(), &["centered", "maximize"]);
    }

    #[test]
    fn dec_reads_the_shortest_decimal() {
        assert_eq!(dec(0.9), 0.9);
        assert_eq!(dec(0.999), 0.999);
        assert_eq!(dec(1e-8), 1e-8);
        assert_eq!(dec(1e-3), 1e-3);
        assert_eq!(dec(-3.25), -3.25);
        assert_eq!(dec(f32::MIN_POSITIVE), 1.1754944e-38);
        assert_eq!(dec(f32::INFINITY), f64::INFINITY);
        assert!(dec(f32::NAN).is_nan());
        // Always rounds back to the same f32.
        for x in [0.1f32, 1.0 / 3.0, 7e-45, 3.4028235e38, 123456.79] {
            assert_eq!(dec(x) as f32, x);
        }
    }
}
