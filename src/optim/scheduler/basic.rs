//! Schedules with a closed form: StepLR, MultiStepLR, ConstantLR, LinearLR,
//! ExponentialLR, CosineAnnealingLR.

use alloc::vec::Vec;
use core::f64::consts::PI;

use super::{Base, Rule, invalid, rule_initial_step};
use crate::error::{Result, unwrap};
use crate::optim::{Optimizer, dec};

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
        crate::sort::sort_unstable(&mut milestones);
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
