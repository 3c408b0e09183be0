//! Learning-rate schedulers (`torch.optim.lr_scheduler`).
//!
//! Each scheduler follows PyTorch's step-by-step ("chainable") formulas in
//! f64 and writes the result into the optimizer as f32. Creating a scheduler
//! applies its epoch-0 learning rate at once, as PyTorch's constructor does;
//! then call [`LrScheduler::step`] after each optimizer step.
//!
//! A scheduler keeps the full-precision learning rate it last wrote; when it
//! finds the optimizer still holding that value (as f32) it continues from
//! the f64 value, so long schedules do not accumulate f32 rounding. If
//! something else changed the learning rate in between, it continues from
//! the optimizer's value, as PyTorch's chainable form does.
//!
//! `base_lrs` are the optimizer's learning rates when the scheduler is
//! created (PyTorch reads them from the groups' `initial_lr`, i.e. the rates
//! before the first scheduler was attached; [`SequentialLr`] restores that
//! for its children).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Optimizer, dec};
use crate::error::{Error, Result};

/// A learning-rate schedule driving an [`Optimizer`]'s group learning rates.
pub trait LrScheduler: Send {
    /// Advances one step (call it after [`Optimizer::step`]) and writes the
    /// new learning rates into `opt`.
    fn step(&mut self, opt: &mut dyn Optimizer);

    /// The learning rates the last step (or the constructor) wrote, one per
    /// group.
    fn last_lrs(&self) -> Vec<f32>;

    /// The schedule's progress as `(name, value)` pairs (`last_epoch`,
    /// `step_count`, `base_lr.{g}`, `last_lr.{g}`; children of a
    /// [`SequentialLr`] prefixed `{i}.`). The configuration is not included:
    /// import into a scheduler built with the same arguments.
    fn export_state(&self) -> Vec<(String, f64)>;

    /// Restores [`export_state`](LrScheduler::export_state) output. Errors,
    /// changing nothing, on unknown or missing names.
    fn import_state(&mut self, state: &[(String, f64)]) -> Result<()>;

    /// The learning rates the schedule is relative to (PyTorch's
    /// `base_lrs`). Default: [`last_lrs`](LrScheduler::last_lrs).
    fn base_lrs(&self) -> Vec<f32> {
        self.last_lrs()
    }

    /// Composition hook (used by [`SequentialLr`]): makes the schedule
    /// relative to `base_lrs` and rewinds it to before its first step
    /// (PyTorch: the shared `initial_lr` and `last_epoch = -1`). Does not
    /// touch the optimizer. Default: nothing.
    fn rebase(&mut self, base_lrs: &[f32]) {
        let _ = base_lrs;
    }

    /// Composition hook: starts the schedule as its constructor does
    /// (PyTorch's `_initial_step`: writes the epoch-0 learning rates).
    /// Default: nothing.
    fn initial_step(&mut self, opt: &mut dyn Optimizer) {
        let _ = opt;
    }

    /// Composition hook: jumps to `epoch` and writes its learning rates,
    /// from the closed form where the schedule has one (PyTorch's
    /// `_update_lr(epoch)`). Default: nothing.
    fn jump_to(&mut self, opt: &mut dyn Optimizer, epoch: usize) {
        let _ = (opt, epoch);
    }
}

/// What every built-in schedule shares (PyTorch's `LRScheduler` fields).
#[derive(Clone, Debug)]
pub(super) struct Base {
    pub(super) base: Vec<f64>,
    pub(super) last_epoch: i64,
    pub(super) step_count: u64,
    /// Inside `initial_step` (PyTorch's `_is_initial`).
    pub(super) initial: bool,
    /// The learning rates last written, in full precision ...
    pub(super) cur: Vec<f64>,
    /// ... and as the optimizer holds them.
    pub(super) written: Vec<f32>,
}

impl Base {
    pub(super) fn new(base: Vec<f64>) -> Base {
        Base {
            cur: base.clone(),
            written: base.iter().map(|&b| b as f32).collect(),
            base,
            last_epoch: -1,
            step_count: 0,
            initial: false,
        }
    }

    pub(super) fn from_opt(opt: &dyn Optimizer) -> Base {
        Base::new(opt.lrs().into_iter().map(dec).collect())
    }

    /// The groups' current learning rates (PyTorch's `group["lr"]`): ours in
    /// f64 while the optimizer still holds what we wrote, else the
    /// optimizer's.
    fn current(&self, opt: &dyn Optimizer) -> Vec<f64> {
        opt.lrs()
            .into_iter()
            .enumerate()
            .map(|(g, lr)| match (self.written.get(g), self.cur.get(g)) {
                (Some(&w), Some(&c)) if w == lr => c,
                _ => dec(lr),
            })
            .collect()
    }

    /// Writes `values` (one per group the schedule knows) into `opt`.
    fn write(&mut self, opt: &mut dyn Optimizer, values: Vec<f64>) {
        let n = opt.lrs().len().min(values.len());
        for (g, v) in values.iter().enumerate().take(n) {
            opt.set_lr(g, *v as f32);
        }
        self.written = values.iter().map(|&v| v as f32).collect();
        self.cur = values;
    }

    fn export(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        out.push((String::from("last_epoch"), self.last_epoch as f64));
        out.push((String::from("step_count"), self.step_count as f64));
        for (g, b) in self.base.iter().enumerate() {
            out.push((format!("base_lr.{g}"), *b));
        }
        for (g, c) in self.cur.iter().enumerate() {
            out.push((format!("last_lr.{g}"), *c));
        }
        out
    }

    fn import(&mut self, op: &'static str, state: &[(String, f64)]) -> Result<()> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let (Some(last_epoch), Some(step_count)) = (find("last_epoch"), find("step_count")) else {
            return bad("import_state: last_epoch or step_count is missing");
        };
        let whole = |x: f64| x.is_finite() && libm::trunc(x) == x;
        if !whole(last_epoch) || last_epoch < -1.0 || step_count < 0.0 || !whole(step_count) {
            return bad("import_state: last_epoch or step_count is not a valid count");
        }
        let mut base = Vec::new();
        let mut cur = Vec::new();
        while let (Some(b), Some(c)) = (
            find(&format!("base_lr.{}", base.len())),
            find(&format!("last_lr.{}", base.len())),
        ) {
            base.push(b);
            cur.push(c);
        }
        if 2 + 2 * base.len() != state.len() {
            return bad("import_state: unknown or incomplete entries");
        }
        self.last_epoch = last_epoch as i64;
        self.step_count = step_count as u64;
        self.written = cur.iter().map(|&c| c as f32).collect();
        self.base = base;
        self.cur = cur;
        self.initial = false;
        Ok(())
    }
}

/// A built-in schedule: PyTorch's `get_lr` and `_get_closed_form_lr`.
pub(super) trait Rule: Send {
    fn base(&self) -> &Base;
    fn base_mut(&mut self) -> &mut Base;
    /// PyTorch's `get_lr` for `self.base().last_epoch`, from the groups'
    /// current learning rates `cur`.
    fn get_lr(&self, cur: &[f64], opt: &mut dyn Optimizer) -> Vec<f64>;
    /// PyTorch's `_get_closed_form_lr`, if the schedule has one.
    fn closed_form(&self) -> Option<Vec<f64>> {
        None
    }
    /// Whether `rebase` takes the given base rates (OneCycleLR keeps its own).
    fn takes_base(&self) -> bool {
        true
    }
}

pub(super) fn rule_step<R: Rule>(r: &mut R, opt: &mut dyn Optimizer) {
    let b = r.base_mut();
    b.step_count += 1;
    b.last_epoch += 1;
    let cur = r.base().current(opt);
    let values = r.get_lr(&cur, opt);
    r.base_mut().write(opt, values);
}

pub(super) fn rule_initial_step<R: Rule>(r: &mut R, opt: &mut dyn Optimizer) {
    r.base_mut().step_count = 0;
    r.base_mut().initial = true;
    rule_step(r, opt);
    r.base_mut().initial = false;
}

pub(super) fn rule_jump<R: Rule>(r: &mut R, opt: &mut dyn Optimizer, epoch: usize) {
    r.base_mut().last_epoch = epoch as i64;
    let values = match r.closed_form() {
        Some(v) => v,
        None => {
            let cur = r.base().current(opt);
            r.get_lr(&cur, opt)
        }
    };
    r.base_mut().write(opt, values);
}

pub(super) fn rule_rebase<R: Rule>(r: &mut R, base_lrs: &[f32]) {
    if r.takes_base() {
        r.base_mut().base = base_lrs.iter().map(|&b| dec(b)).collect();
    }
    r.base_mut().last_epoch = -1;
}

macro_rules! impl_lr_scheduler {
    ($t:ident, $name:literal) => {
        impl $crate::optim::LrScheduler for $t {
            fn step(&mut self, opt: &mut dyn $crate::optim::Optimizer) {
                super::rule_step(self, opt)
            }
            fn last_lrs(&self) -> alloc::vec::Vec<f32> {
                self.base.written.clone()
            }
            fn export_state(&self) -> alloc::vec::Vec<(alloc::string::String, f64)> {
                self.base.export()
            }
            fn import_state(
                &mut self,
                state: &[(alloc::string::String, f64)],
            ) -> crate::error::Result<()> {
                self.base.import($name, state)
            }
            fn base_lrs(&self) -> alloc::vec::Vec<f32> {
                self.base.base.iter().map(|&b| b as f32).collect()
            }
            fn rebase(&mut self, base_lrs: &[f32]) {
                super::rule_rebase(self, base_lrs)
            }
            fn initial_step(&mut self, opt: &mut dyn $crate::optim::Optimizer) {
                super::rule_initial_step(self, opt)
            }
            fn jump_to(&mut self, opt: &mut dyn $crate::optim::Optimizer, epoch: usize) {
                super::rule_jump(self, opt, epoch)
            }
        }
    };
}

pub(super) fn invalid(op: &'static str, detail: &'static str) -> Error {
    Error::InvalidArgument { op, detail }
}

mod basic;
mod one_cycle;
mod sequential;

pub use basic::{ConstantLr, CosineAnnealingLr, ExponentialLr, LinearLr, MultiStepLr, StepLr};
pub use one_cycle::{Anneal, OneCycleConfig, OneCycleLr};
pub use sequential::SequentialLr;
