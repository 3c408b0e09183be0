//! Schedulers run one after another (SequentialLR).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{LrScheduler, invalid};
use crate::error::{Result, unwrap};
use crate::optim::Optimizer;

/// Runs schedulers one after another, switching at milestones
/// (`torch.optim.lr_scheduler.SequentialLR`), e.g. a [`LinearLr`](super::LinearLr) warm-up
/// followed by [`CosineAnnealingLr`](super::CosineAnnealingLr):
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

    fn export_state(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        out.push((String::from("last_epoch"), self.last_epoch as f64));
        for (i, c) in self.children.iter().enumerate() {
            for (n, v) in c.export_state() {
                out.push((format!("{i}.{n}"), v));
            }
        }
        for (g, v) in self.last.iter().enumerate() {
            out.push((format!("last_lr.{g}"), f64::from(*v)));
        }
        out
    }

    fn import_state(&mut self, state: &[(String, f64)]) -> Result<()> {
        const OP: &str = "SequentialLR";
        let bad = |detail| Err(invalid(OP, detail));
        let Some(last_epoch) = state.iter().find(|(n, _)| n == "last_epoch").map(|e| e.1) else {
            return bad("import_state: last_epoch is missing");
        };
        if !(last_epoch.is_finite() && libm::trunc(last_epoch) == last_epoch) || last_epoch < 0.0 {
            return bad("import_state: last_epoch is not a valid count");
        }
        let mut last = Vec::new();
        while let Some((_, v)) = state
            .iter()
            .find(|(n, _)| *n == format!("last_lr.{}", last.len()))
        {
            last.push(*v as f32);
        }
        let mut parts: Vec<Vec<(String, f64)>> = self.children.iter().map(|_| Vec::new()).collect();
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
        let backup: Vec<Vec<(String, f64)>> =
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
