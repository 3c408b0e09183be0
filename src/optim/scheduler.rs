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

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::f64::consts::PI;

use super::{Optimizer, dec, integral, non_negative};
use crate::error::{Error, Result, unwrap};

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
    fn export_state(&self) -> Vec<(String, f32)>;

    /// Restores [`export_state`](LrScheduler::export_state) output. Errors,
    /// changing nothing, on unknown or missing names.
    fn import_state(&mut self, state: &[(String, f32)]) -> Result<()>;

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
struct Base {
    base: Vec<f64>,
    last_epoch: i64,
    step_count: u64,
    /// Inside `initial_step` (PyTorch's `_is_initial`).
    initial: bool,
    /// The learning rates last written, in full precision ...
    cur: Vec<f64>,
    /// ... and as the optimizer holds them.
    written: Vec<f32>,
}

impl Base {
    fn new(base: Vec<f64>) -> Base {
        Base {
            cur: base.clone(),
            written: base.iter().map(|&b| b as f32).collect(),
            base,
            last_epoch: -1,
            step_count: 0,
            initial: false,
        }
    }

    fn from_opt(opt: &dyn Optimizer) -> Base {
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

    fn export(&self) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        out.push((String::from("last_epoch"), self.last_epoch as f32));
        out.push((String::from("step_count"), self.step_count as f32));
        for (g, b) in self.base.iter().enumerate() {
            out.push((format!("base_lr.{g}"), *b as f32));
        }
        for (g, c) in self.cur.iter().enumerate() {
            out.push((format!("last_lr.{g}"), *c as f32));
        }
        out
    }

    fn import(&mut self, op: &'static str, state: &[(String, f32)]) -> Result<()> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        let find = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let (Some(last_epoch), Some(step_count)) = (find("last_epoch"), find("step_count")) else {
            return bad("import_state: last_epoch or step_count is missing");
        };
        if !integral(last_epoch)
            || last_epoch < -1.0
            || !non_negative(step_count)
            || !integral(step_count)
        {
            return bad("import_state: last_epoch or step_count is not a valid count");
        }
        let mut base = Vec::new();
        let mut cur = Vec::new();
        while let (Some(b), Some(c)) = (
            find(&format!("base_lr.{}", base.len())),
            find(&format!("last_lr.{}", base.len())),
        ) {
            base.push(dec(b));
            cur.push(dec(c));
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
trait Rule: Send {
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

fn rule_step<R: Rule>(r: &mut R, opt: &mut dyn Optimizer) {
    let b = r.base_mut();
    b.step_count += 1;
    b.last_epoch += 1;
    let cur = r.base().current(opt);
    let values = r.get_lr(&cur, opt);
    r.base_mut().write(opt, values);
}

fn rule_initial_step<R: Rule>(r: &mut R, opt: &mut dyn Optimizer) {
    r.base_mut().step_count = 0;
    r.base_mut().initial = true;
    rule_step(r, opt);
    r.base_mut().initial = false;
}

fn rule_jump<R: Rule>(r: &mut R, opt: &mut dyn Optimizer, epoch: usize) {
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

fn rule_rebase<R: Rule>(r: &mut R, base_lrs: &[f32]) {
    if r.takes_base() {
        r.base_mut().base = base_lrs.iter().map(|&b| dec(b)).collect();
    }
    r.base_mut().last_epoch = -1;
}

macro_rules! impl_lr_scheduler {
    ($t:ident, $name:literal) => {
        impl LrScheduler for $t {
            fn step(&mut self, opt: &mut dyn Optimizer) {
                rule_step(self, opt)
            }
            fn last_lrs(&self) -> Vec<f32> {
                self.base.written.clone()
            }
            fn export_state(&self) -> Vec<(String, f32)> {
                self.base.export()
            }
            fn import_state(&mut self, state: &[(String, f32)]) -> Result<()> {
                self.base.import($name, state)
            }
            fn base_lrs(&self) -> Vec<f32> {
                self.base.base.iter().map(|&b| b as f32).collect()
            }
            fn rebase(&mut self, base_lrs: &[f32]) {
                rule_rebase(self, base_lrs)
            }
            fn initial_step(&mut self, opt: &mut dyn Optimizer) {
                rule_initial_step(self, opt)
            }
            fn jump_to(&mut self, opt: &mut dyn Optimizer, epoch: usize) {
                rule_jump(self, opt, epoch)
            }
        }
    };
}

fn invalid(op: &'static str, detail: &'static str) -> Error {
    Error::InvalidArgument { op, detail }
}

// ------------------------------------------------------------------ StepLR

/// Multiplies the learning rate by `gamma` every `step_size` steps
/// (`torch.optim.lr_scheduler.StepLR`).
#[derive(Clone, Debug)]
pub struct StepLr {
    base: Base,
    step_size: usize,
    gamma: f64,
}

impl StepLr {
    /// Attaches to `opt` (PyTorch's default `gamma` is 0.1).
    ///
    /// # Panics
    /// If `step_size` is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, step_size: usize, gamma: f32) -> StepLr {
        unwrap(Self::try_new(opt, step_size, gamma))
    }

    /// [`new`](Self::new), or `InvalidArgument` if `step_size` is 0.
    pub fn try_new(opt: &mut dyn Optimizer, step_size: usize, gamma: f32) -> Result<StepLr> {
        if step_size == 0 {
            return Err(invalid("StepLR", "step_size must be at least 1"));
        }
        let mut s = StepLr {
            base: Base::from_opt(opt),
            step_size,
            gamma: dec(gamma),
        };
        rule_initial_step(&mut s, opt);
        Ok(s)
    }
}

impl Rule for StepLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        if e == 0 || e.rem_euclid(self.step_size as i64) != 0 {
            return cur.to_vec();
        }
        cur.iter().map(|lr| lr * self.gamma).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let k = self.base.last_epoch.div_euclid(self.step_size as i64);
        let f = libm::pow(self.gamma, k as f64);
        Some(self.base.base.iter().map(|b| b * f).collect())
    }
}

impl_lr_scheduler!(StepLr, "StepLR");

// ------------------------------------------------------------------ MultiStepLR

/// Multiplies the learning rate by `gamma` at each milestone (a milestone
/// listed twice applies twice) (`torch.optim.lr_scheduler.MultiStepLR`).
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    base: Base,
    /// Sorted, with repetitions.
    milestones: Vec<usize>,
    gamma: f64,
}

impl MultiStepLr {
    /// Attaches to `opt` (PyTorch's default `gamma` is 0.1). Milestones may
    /// be given in any order.
    pub fn new(opt: &mut dyn Optimizer, milestones: &[usize], gamma: f32) -> MultiStepLr {
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        let mut s = MultiStepLr {
            base: Base::from_opt(opt),
            milestones,
            gamma: dec(gamma),
        };
        rule_initial_step(&mut s, opt);
        s
    }
}

impl Rule for MultiStepLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        let count = self.milestones.iter().filter(|&&m| m as i64 == e).count();
        if count == 0 {
            return cur.to_vec();
        }
        let f = libm::pow(self.gamma, count as f64);
        cur.iter().map(|lr| lr * f).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let e = self.base.last_epoch;
        let passed = self.milestones.iter().filter(|&&m| m as i64 <= e).count();
        let f = libm::pow(self.gamma, passed as f64);
        Some(self.base.base.iter().map(|b| b * f).collect())
    }
}

impl_lr_scheduler!(MultiStepLr, "MultiStepLR");

// ------------------------------------------------------------------ ConstantLR

/// Multiplies the learning rate by `factor` until step `total_iters`, then
/// restores it (`torch.optim.lr_scheduler.ConstantLR`).
#[derive(Clone, Debug)]
pub struct ConstantLr {
    base: Base,
    factor: f64,
    total_iters: usize,
}

impl ConstantLr {
    /// Attaches to `opt` (PyTorch's defaults: `factor` 1/3, `total_iters` 5).
    ///
    /// # Panics
    /// If `factor` is outside (0, 1]; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, factor: f32, total_iters: usize) -> ConstantLr {
        unwrap(Self::try_new(opt, factor, total_iters))
    }

    /// [`new`](Self::new), or `InvalidArgument` if `factor` is outside (0, 1]
    /// (PyTorch accepts 0, then divides by it at `total_iters`).
    pub fn try_new(opt: &mut dyn Optimizer, factor: f32, total_iters: usize) -> Result<ConstantLr> {
        if !(factor > 0.0 && factor <= 1.0) {
            return Err(invalid("ConstantLR", "factor must lie in (0, 1]"));
        }
        let mut s = ConstantLr {
            base: Base::from_opt(opt),
            factor: dec(factor),
            total_iters,
        };
        rule_initial_step(&mut s, opt);
        Ok(s)
    }
}

impl Rule for ConstantLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        if e == 0 {
            return cur.iter().map(|lr| lr * self.factor).collect();
        }
        if e != self.total_iters as i64 {
            return cur.to_vec();
        }
        cur.iter().map(|lr| lr * (1.0 / self.factor)).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let done = if self.base.last_epoch >= self.total_iters as i64 {
            1.0
        } else {
            0.0
        };
        let f = self.factor + done * (1.0 - self.factor);
        Some(self.base.base.iter().map(|b| b * f).collect())
    }
}

impl_lr_scheduler!(ConstantLr, "ConstantLR");

// ------------------------------------------------------------------ LinearLR

/// Scales the learning rate linearly from `start_factor` to `end_factor`
/// times its base over `total_iters` steps, then holds it (warm-up or decay;
/// `torch.optim.lr_scheduler.LinearLR`).
#[derive(Clone, Debug)]
pub struct LinearLr {
    base: Base,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLr {
    /// Attaches to `opt` (PyTorch's defaults: 1/3, 1.0, 5).
    ///
    /// # Panics
    /// On factors out of range; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer,
        start_factor: f32,
        end_factor: f32,
        total_iters: usize,
    ) -> LinearLr {
        unwrap(Self::try_new(opt, start_factor, end_factor, total_iters))
    }

    /// [`new`](Self::new), or `InvalidArgument` unless `0 < start_factor <= 1`
    /// and `0 <= end_factor <= 1`.
    pub fn try_new(
        opt: &mut dyn Optimizer,
        start_factor: f32,
        end_factor: f32,
        total_iters: usize,
    ) -> Result<LinearLr> {
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(invalid("LinearLR", "start_factor must lie in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(invalid("LinearLR", "end_factor must lie in [0, 1]"));
        }
        let mut s = LinearLr {
            base: Base::from_opt(opt),
            start_factor: dec(start_factor),
            end_factor: dec(end_factor),
            total_iters,
        };
        rule_initial_step(&mut s, opt);
        Ok(s)
    }
}

impl Rule for LinearLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        let e = self.base.last_epoch;
        let (s, t) = (self.start_factor, self.end_factor);
        if e == 0 {
            return cur.iter().map(|lr| lr * s).collect();
        }
        if self.base.initial || e > self.total_iters as i64 {
            return cur.to_vec();
        }
        let f = 1.0 + (t - s) / (self.total_iters as f64 * s + (e - 1) as f64 * (t - s));
        cur.iter().map(|lr| lr * f).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let (s, t) = (self.start_factor, self.end_factor);
        let total = self.total_iters as f64;
        let done = (self.total_iters as i64).min(self.base.last_epoch) as f64;
        let f = if self.total_iters == 0 {
            t
        } else {
            s + (t - s) * done / total
        };
        Some(self.base.base.iter().map(|b| b * f).collect())
    }
}

impl_lr_scheduler!(LinearLr, "LinearLR");

// ------------------------------------------------------------------ ExponentialLR

/// Multiplies the learning rate by `gamma` every step
/// (`torch.optim.lr_scheduler.ExponentialLR`).
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    base: Base,
    gamma: f64,
}

impl ExponentialLr {
    /// Attaches to `opt`.
    pub fn new(opt: &mut dyn Optimizer, gamma: f32) -> ExponentialLr {
        let mut s = ExponentialLr {
            base: Base::from_opt(opt),
            gamma: dec(gamma),
        };
        rule_initial_step(&mut s, opt);
        s
    }
}

impl Rule for ExponentialLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        if self.base.initial {
            return cur.to_vec();
        }
        cur.iter().map(|lr| lr * self.gamma).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let f = libm::pow(self.gamma, self.base.last_epoch as f64);
        Some(self.base.base.iter().map(|b| b * f).collect())
    }
}

impl_lr_scheduler!(ExponentialLr, "ExponentialLR");

// ------------------------------------------------------------------ CosineAnnealingLR

/// Cosine annealing from the base learning rate to `eta_min` over `t_max`
/// steps (then back up, periodically, as PyTorch's
/// `torch.optim.lr_scheduler.CosineAnnealingLR`).
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    base: Base,
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// Attaches to `opt` (PyTorch's default `eta_min` is 0).
    ///
    /// # Panics
    /// If `t_max` is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(opt: &mut dyn Optimizer, t_max: usize, eta_min: f32) -> CosineAnnealingLr {
        unwrap(Self::try_new(opt, t_max, eta_min))
    }

    /// [`new`](Self::new), or `InvalidArgument` if `t_max` is 0.
    pub fn try_new(
        opt: &mut dyn Optimizer,
        t_max: usize,
        eta_min: f32,
    ) -> Result<CosineAnnealingLr> {
        if t_max == 0 {
            return Err(invalid("CosineAnnealingLR", "T_max must be at least 1"));
        }
        let mut s = CosineAnnealingLr {
            base: Base::from_opt(opt),
            t_max,
            eta_min: dec(eta_min),
        };
        rule_initial_step(&mut s, opt);
        Ok(s)
    }
}

impl Rule for CosineAnnealingLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, cur: &[f64], _: &mut dyn Optimizer) -> Vec<f64> {
        let b = &self.base;
        let (e, t, eta) = (b.last_epoch, self.t_max as i64, self.eta_min);
        let tf = t as f64;
        if b.initial {
            return cur.to_vec();
        }
        if b.step_count == 1 && e > 0 {
            let c = 1.0 + libm::cos(e as f64 * PI / tf);
            return b
                .base
                .iter()
                .map(|base| eta + (base - eta) * c / 2.0)
                .collect();
        }
        if (e - 1 - t).rem_euclid(2 * t) == 0 {
            let c = 1.0 - libm::cos(PI / tf);
            return cur
                .iter()
                .zip(&b.base)
                .map(|(lr, base)| lr + (base - eta) * c / 2.0)
                .collect();
        }
        let ratio =
            (1.0 + libm::cos(PI * e as f64 / tf)) / (1.0 + libm::cos(PI * (e - 1) as f64 / tf));
        cur.iter().map(|lr| ratio * (lr - eta) + eta).collect()
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let (e, eta) = (self.base.last_epoch as f64, self.eta_min);
        let c = 1.0 + libm::cos(PI * e / self.t_max as f64);
        Some(
            self.base
                .base
                .iter()
                .map(|base| eta + (base - eta) * c / 2.0)
                .collect(),
        )
    }
}

impl_lr_scheduler!(CosineAnnealingLr, "CosineAnnealingLR");

// ------------------------------------------------------------------ OneCycleLR

/// How [`OneCycleLr`] interpolates within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// Cosine (PyTorch's `"cos"`, the default).
    Cos,
    /// Linear (`"linear"`).
    Linear,
}

impl Anneal {
    fn apply(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => {
                let c = libm::cos(PI * pct) + 1.0;
                end + (start - end) / 2.0 * c
            }
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// Options of [`OneCycleLr`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleConfig {
    /// Fraction of the steps spent increasing the learning rate (default 0.3).
    pub pct_start: f32,
    /// Interpolation (default [`Anneal::Cos`]).
    pub anneal_strategy: Anneal,
    /// Cycle the momentum (SGD/RMSprop `momentum`, Adam `beta1`) inversely
    /// to the learning rate (default true).
    pub cycle_momentum: bool,
    /// Lowest momentum (default 0.85).
    pub base_momentum: f32,
    /// Highest momentum (default 0.95).
    pub max_momentum: f32,
    /// Initial learning rate = `max_lr / div_factor` (default 25).
    pub div_factor: f32,
    /// Final learning rate = initial / `final_div_factor` (default 1e4).
    pub final_div_factor: f32,
    /// Three phases (up, back down to the initial rate, then annihilate)
    /// instead of two (default false).
    pub three_phase: bool,
}

impl Default for OneCycleConfig {
    fn default() -> Self {
        OneCycleConfig {
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Level {
    Initial,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug)]
struct Phase {
    end_step: f64,
    lr: (Level, Level),
    /// (start, end): false = base momentum, true = max momentum.
    momentum: (bool, bool),
}

/// The 1cycle policy (`torch.optim.lr_scheduler.OneCycleLR`): the learning
/// rate rises from `max_lr / div_factor` to `max_lr`, then falls to
/// `initial / final_div_factor` over `total_steps` steps, with the momentum
/// cycled inversely. Stepping past `total_steps` (where PyTorch raises an
/// error) keeps the learning rate of step `total_steps`.
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    base: Base,
    total_steps: usize,
    max_lrs: Vec<f64>,
    min_lrs: Vec<f64>,
    phases: Vec<Phase>,
    anneal: Anneal,
    /// The optimizer's momentum hyper-parameter when cycling.
    momentum_name: Option<&'static str>,
    base_momentum: f64,
    max_momentum: f64,
}

impl OneCycleLr {
    /// Attaches to `opt`: `max_lr` holds one peak learning rate for all
    /// groups or one per group.
    ///
    /// # Panics
    /// On invalid arguments; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer,
        max_lr: &[f32],
        total_steps: usize,
        config: OneCycleConfig,
    ) -> OneCycleLr {
        unwrap(Self::try_new(opt, max_lr, total_steps, config))
    }

    /// [`new`](Self::new), or `InvalidArgument` if `total_steps` is 0,
    /// `max_lr` has neither 1 nor one entry per group, `pct_start` is outside
    /// [0, 1], a phase would have no steps (PyTorch divides by zero there),
    /// or momentum cycling is asked of an optimizer without `momentum` or
    /// `beta1` (or the optimizer refuses `max_momentum`).
    pub fn try_new(
        opt: &mut dyn Optimizer,
        max_lr: &[f32],
        total_steps: usize,
        config: OneCycleConfig,
    ) -> Result<OneCycleLr> {
        const OP: &str = "OneCycleLR";
        let groups = opt.lrs().len();
        if total_steps == 0 {
            return Err(invalid(OP, "total_steps must be at least 1"));
        }
        let max_lrs: Vec<f64> = match max_lr.len() {
            1 => (0..groups).map(|_| dec(max_lr[0])).collect(),
            n if n == groups => max_lr.iter().map(|&m| dec(m)).collect(),
            _ => {
                return Err(invalid(
                    OP,
                    "max_lr must hold one value or one per parameter group",
                ));
            }
        };
        if !(0.0..=1.0).contains(&config.pct_start) {
            return Err(invalid(OP, "pct_start must lie in [0, 1]"));
        }
        let total = total_steps as f64;
        let pct = dec(config.pct_start);
        use Level::*;
        let phases = if config.three_phase {
            alloc::vec![
                Phase {
                    end_step: pct * total - 1.0,
                    lr: (Initial, Max),
                    momentum: (true, false),
                },
                Phase {
                    end_step: 2.0 * pct * total - 2.0,
                    lr: (Max, Initial),
                    momentum: (false, true),
                },
                Phase {
                    end_step: total - 1.0,
                    lr: (Initial, Min),
                    momentum: (true, true),
                },
            ]
        } else {
            alloc::vec![
                Phase {
                    end_step: pct * total - 1.0,
                    lr: (Initial, Max),
                    momentum: (true, false),
                },
                Phase {
                    end_step: total - 1.0,
                    lr: (Max, Min),
                    momentum: (false, true),
                },
            ]
        };
        let mut start = 0.0;
        for p in &phases {
            if p.end_step == start {
                return Err(invalid(
                    OP,
                    "a phase would have no steps (pct_start * total_steps too small or too large)",
                ));
            }
            start = p.end_step;
        }
        let div = dec(config.div_factor);
        let final_div = dec(config.final_div_factor);
        let initial: Vec<f64> = max_lrs.iter().map(|m| m / div).collect();
        let min_lrs = initial.iter().map(|i| i / final_div).collect();
        let momentum_name = if config.cycle_momentum {
            let name = if opt.hyper(0, "beta1").is_some() {
                "beta1"
            } else if opt.hyper(0, "momentum").is_some() {
                "momentum"
            } else {
                return Err(invalid(
                    OP,
                    "cycle_momentum needs an optimizer with momentum or beta1",
                ));
            };
            for g in 0..groups {
                opt.set_hyper(g, name, config.max_momentum)?;
            }
            Some(name)
        } else {
            None
        };
        let mut s = OneCycleLr {
            base: Base::new(initial),
            total_steps,
            max_lrs,
            min_lrs,
            phases,
            anneal: config.anneal_strategy,
            momentum_name,
            base_momentum: dec(config.base_momentum),
            max_momentum: dec(config.max_momentum),
        };
        rule_initial_step(&mut s, opt);
        Ok(s)
    }
}

impl Rule for OneCycleLr {
    fn base(&self) -> &Base {
        &self.base
    }
    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }
    fn get_lr(&self, _: &[f64], opt: &mut dyn Optimizer) -> Vec<f64> {
        let step = self.base.last_epoch.min(self.total_steps as i64) as f64;
        let mut lrs = Vec::with_capacity(self.max_lrs.len());
        for g in 0..self.max_lrs.len() {
            let level = |l: Level| match l {
                Level::Initial => self.base.base[g],
                Level::Max => self.max_lrs[g],
                Level::Min => self.min_lrs[g],
            };
            let mom = |m: bool| {
                if m {
                    self.max_momentum
                } else {
                    self.base_momentum
                }
            };
            let mut start = 0.0;
            for (i, phase) in self.phases.iter().enumerate() {
                if step <= phase.end_step || i == self.phases.len() - 1 {
                    let pct = (step - start) / (phase.end_step - start);
                    lrs.push(self.anneal.apply(level(phase.lr.0), level(phase.lr.1), pct));
                    if let Some(name) = self.momentum_name {
                        let m =
                            self.anneal
                                .apply(mom(phase.momentum.0), mom(phase.momentum.1), pct);
                        // Refused only for values PyTorch's optimizer would
                        // also reject at its next step; keep the previous one.
                        let _ = opt.set_hyper(g, name, m as f32);
                    }
                    break;
                }
                start = phase.end_step;
            }
        }
        lrs
    }
    fn takes_base(&self) -> bool {
        false
    }
}

impl_lr_scheduler!(OneCycleLr, "OneCycleLR");

// ------------------------------------------------------------------ SequentialLR

/// Runs schedulers one after another, switching at milestones
/// (`torch.optim.lr_scheduler.SequentialLR`), e.g. a [`LinearLr`] warm-up
/// followed by [`CosineAnnealingLr`]:
///
/// ```
/// use train_station::Tensor;
/// use train_station::optim::*;
///
/// let w = Tensor::zeros([3]).with_requires_grad();
/// let mut opt = Sgd::new(&[w], SgdConfig { lr: 0.1, ..Default::default() });
/// let warmup = LinearLr::new(&mut opt, 0.1, 1.0, 5);
/// let cosine = CosineAnnealingLr::new(&mut opt, 95, 0.0);
/// let mut sched = SequentialLr::new(&mut opt, vec![Box::new(warmup), Box::new(cosine)], &[5]);
/// assert!((opt.lrs()[0] - 0.01).abs() < 1e-7);
/// for _ in 0..5 {
///     sched.step(&mut opt);
/// }
/// assert!((opt.lrs()[0] - 0.1).abs() < 1e-7); // the cosine starts at the base rate
/// ```
pub struct SequentialLr {
    children: Vec<Box<dyn LrScheduler>>,
    milestones: Vec<usize>,
    last_epoch: i64,
    last: Vec<f32>,
}

impl SequentialLr {
    /// Chains `schedulers` (all attached to `opt`; the first must have been
    /// created first, on the optimizer's original learning rates, which all
    /// children then share as PyTorch's `initial_lr`). Scheduler `i + 1`
    /// takes over at step `milestones[i]`, restarting from its epoch 0.
    ///
    /// # Panics
    /// On invalid arguments; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(
        opt: &mut dyn Optimizer,
        schedulers: Vec<Box<dyn LrScheduler>>,
        milestones: &[usize],
    ) -> SequentialLr {
        unwrap(Self::try_new(opt, schedulers, milestones))
    }

    /// [`new`](Self::new), or `InvalidArgument` if there is no scheduler, the
    /// number of milestones is not one less than the number of schedulers,
    /// or the milestones decrease.
    pub fn try_new(
        opt: &mut dyn Optimizer,
        schedulers: Vec<Box<dyn LrScheduler>>,
        milestones: &[usize],
    ) -> Result<SequentialLr> {
        const OP: &str = "SequentialLR";
        if schedulers.is_empty() {
            return Err(invalid(OP, "expects at least one scheduler"));
        }
        if milestones.len() + 1 != schedulers.len() {
            return Err(invalid(
                OP,
                "expects one milestone fewer than there are schedulers",
            ));
        }
        if milestones.windows(2).any(|w| w[0] > w[1]) {
            return Err(invalid(OP, "milestones must not decrease"));
        }
        let mut s = SequentialLr {
            children: schedulers,
            milestones: milestones.to_vec(),
            last_epoch: 0,
            last: Vec::new(),
        };
        let base = s.children[0].base_lrs();
        s.rebase(&base);
        s.initial_step(opt);
        Ok(s)
    }
}

impl LrScheduler for SequentialLr {
    fn step(&mut self, opt: &mut dyn Optimizer) {
        self.last_epoch += 1;
        let e = self.last_epoch;
        let idx = self.milestones.iter().filter(|&&m| m as i64 <= e).count();
        let child = &mut self.children[idx];
        if idx > 0 && self.milestones[idx - 1] as i64 == e {
            child.jump_to(opt, 0);
        } else {
            child.step(opt);
        }
        self.last = child.last_lrs();
    }

    fn last_lrs(&self) -> Vec<f32> {
        self.last.clone()
    }

    fn export_state(&self) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        out.push((String::from("last_epoch"), self.last_epoch as f32));
        for (i, c) in self.children.iter().enumerate() {
            for (n, v) in c.export_state() {
                out.push((format!("{i}.{n}"), v));
            }
        }
        for (g, v) in self.last.iter().enumerate() {
            out.push((format!("last_lr.{g}"), *v));
        }
        out
    }

    fn import_state(&mut self, state: &[(String, f32)]) -> Result<()> {
        const OP: &str = "SequentialLR";
        let bad = |detail| Err(invalid(OP, detail));
        let Some(last_epoch) = state.iter().find(|(n, _)| n == "last_epoch").map(|e| e.1) else {
            return bad("import_state: last_epoch is missing");
        };
        if !integral(last_epoch) || last_epoch < 0.0 {
            return bad("import_state: last_epoch is not a valid count");
        }
        let mut last = Vec::new();
        while let Some((_, v)) = state
            .iter()
            .find(|(n, _)| *n == format!("last_lr.{}", last.len()))
        {
            last.push(*v);
        }
        let mut parts: Vec<Vec<(String, f32)>> = self.children.iter().map(|_| Vec::new()).collect();
        let mut used = 1 + last.len();
        for (n, v) in state {
            let Some((i, rest)) = n.split_once('.') else {
                continue;
            };
            if let Ok(i) = i.parse::<usize>()
                && i < parts.len()
            {
                parts[i].push((String::from(rest), *v));
                used += 1;
            }
        }
        if used != state.len() {
            return bad("import_state: unknown entries");
        }
        // Validate every child before changing any: import into clones is not
        // possible for boxed children, so import in order and restore on
        // failure.
        let backup: Vec<Vec<(String, f32)>> =
            self.children.iter().map(|c| c.export_state()).collect();
        for (i, part) in parts.iter().enumerate() {
            if let Err(e) = self.children[i].import_state(part) {
                for (c, b) in self.children.iter_mut().zip(&backup).take(i) {
                    c.import_state(b)?;
                }
                return Err(e);
            }
        }
        self.last_epoch = last_epoch as i64;
        self.last = last;
        Ok(())
    }

    fn base_lrs(&self) -> Vec<f32> {
        self.children[0].base_lrs()
    }

    fn rebase(&mut self, base_lrs: &[f32]) {
        for c in &mut self.children {
            c.rebase(base_lrs);
        }
    }

    fn initial_step(&mut self, opt: &mut dyn Optimizer) {
        let base = self.children[0].base_lrs();
        let n = opt.lrs().len().min(base.len());
        for (g, &b) in base.iter().enumerate().take(n) {
            opt.set_lr(g, b);
        }
        self.last_epoch = 0;
        let idx = self.milestones.iter().filter(|&&m| m == 0).count();
        self.children[idx].initial_step(opt);
        self.last = self.children[idx].last_lrs();
    }

    fn jump_to(&mut self, opt: &mut dyn Optimizer, epoch: usize) {
        let base = self.children[0].base_lrs();
        self.rebase(&base);
        self.initial_step(opt);
        for _ in 0..epoch {
            self.step(opt);
        }
    }
}
