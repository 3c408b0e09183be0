//! The 1cycle policy (OneCycleLR).

use alloc::vec::Vec;
use core::f64::consts::PI;

use super::{Base, Rule, invalid, rule_initial_step};
use crate::error::{Result, unwrap};
use crate::optim::{Optimizer, dec};

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
