//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`).

use alloc::vec;
use alloc::vec::Vec;

use super::{
    Core, Hyper, Optimizer, OptimizerState, commit_state, committed, core_optimizer_methods, dec,
    hyper_fields, named, non_negative, param_group_methods, stage_buffer, stage_params,
};
use crate::autograd::NoGradGuard;
use crate::error::{Error, Result, unwrap};
use crate::tensor::Tensor;

/// Hyper-parameters of [`Adam`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3). Must be >= 0.
    pub lr: f32,
    /// Decay rates of the first and second moment averages (default
    /// (0.9, 0.999)). Each must lie in [0, 1).
    pub betas: (f32, f32),
    /// Added to the denominator (default 1e-8). Must be >= 0.
    pub eps: f32,
    /// L2 penalty added to the gradient (default 0); for [`AdamW`] the
    /// decoupled decay. Must be >= 0.
    pub weight_decay: f32,
    /// AMSGrad: normalise by the running maximum of the second moment
    /// (default false).
    pub amsgrad: bool,
    /// Maximise the objective instead of minimising it (default false).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// Hyper-parameters of [`AdamW`]: as [`AdamConfig`], but `weight_decay`
/// (decoupled) defaults to 1e-2, as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (default 1e-3). Must be >= 0.
    pub lr: f32,
    /// Decay rates of the moment averages (default (0.9, 0.999)).
    pub betas: (f32, f32),
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
    /// Decoupled weight decay: each step multiplies the parameter by
    /// `1 - lr * weight_decay` (default 1e-2). Must be >= 0.
    pub weight_decay: f32,
    /// AMSGrad (default false).
    pub amsgrad: bool,
    /// Maximise the objective (default false).
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl From<AdamWConfig> for AdamConfig {
    fn from(c: AdamWConfig) -> AdamConfig {
        AdamConfig {
            lr: c.lr,
            betas: c.betas,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
        }
    }
}

impl From<AdamConfig> for AdamWConfig {
    fn from(c: AdamConfig) -> AdamWConfig {
        AdamWConfig {
            lr: c.lr,
            betas: c.betas,
            eps: c.eps,
            weight_decay: c.weight_decay,
            amsgrad: c.amsgrad,
            maximize: c.maximize,
        }
    }
}

impl Hyper for AdamConfig {
    hyper_fields! {
        "lr" => lr: value,
        "beta1" => betas.0: value,
        "beta2" => betas.1: value,
        "eps" => eps: value,
        "weight_decay" => weight_decay: value,
        "amsgrad" => amsgrad: flag,
        "maximize" => maximize: flag,
    }

    fn validate(&self, op: &'static str) -> Result<()> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        if !non_negative(self.lr) {
            return bad("invalid learning rate (must be >= 0)");
        }
        if !non_negative(self.eps) {
            return bad("invalid eps (must be >= 0)");
        }
        if !(0.0..1.0).contains(&self.betas.0) {
            return bad("invalid beta1 (must lie in [0, 1))");
        }
        if !(0.0..1.0).contains(&self.betas.1) {
            return bad("invalid beta2 (must lie in [0, 1))");
        }
        if !non_negative(self.weight_decay) {
            return bad("invalid weight_decay (must be >= 0)");
        }
        Ok(())
    }
}

/// Per-parameter state, created by the parameter's first step.
pub(crate) struct AdamState {
    /// Steps taken (PyTorch keeps it as an f32 tensor too).
    step: f32,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Option<Tensor>,
}

/// The scalars of one Adam update, as PyTorch rounds them to f32.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamScalars {
    /// `1 - beta1`, the weight of `exp_avg.lerp_(grad, 1 - beta1)`.
    pub(crate) one_minus_beta1: f32,
    pub(crate) beta2: f32,
    pub(crate) one_minus_beta2: f32,
    /// L2 weight decay added to the gradient (0 when decoupled).
    pub(crate) weight_decay: f32,
    /// Decoupled decay factor `1 - lr * weight_decay`, applied when `Some`.
    pub(crate) decay: Option<f32>,
    /// `-lr / (1 - beta1^step)`.
    pub(crate) neg_step_size: f32,
    /// `1 / sqrt(1 - beta2^step)`.
    pub(crate) inv_bias_correction2_sqrt: f32,
    pub(crate) eps: f32,
    pub(crate) maximize: bool,
}

/// PyTorch's `lerp`: `a + w * (b - a)` for |w| < 0.5, else
/// `b - (b - a) * (1 - w)`.
#[inline(always)]
pub(crate) fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// One fused Adam/AdamW update of a parameter `p` with gradient `g`, first
/// and second moments `m`, `v` and, with AMSGrad, their running maximum
/// `vmax`. Mirrors `torch.optim.adam._single_tensor_adam` element by
/// element:
///
/// ```text
/// g = maximize ? -g : g
/// p = p * decay                 (AdamW)   |   g = g + wd * p   (Adam, wd != 0)
/// m = lerp(m, g, 1 - beta1)          (0 where |m| < f32::MIN_POSITIVE)
/// v = v * beta2;  v = v + ((1 - beta2) * g) * g    (likewise)
/// vmax = maximum(vmax, v)       (AMSGrad: the raw second moment)
/// denom = sqrt(vmax or v) / sqrt(1 - beta2^t) + eps
/// p = p + (-step_size * m) / denom
/// ```
///
/// # Panics
/// If the slice lengths differ.
pub(crate) fn adam_update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: Option<&mut [f32]>,
    s: &AdamScalars,
) {
    let step = crate::kernels::optim::AdamStep {
        one_minus_beta1: s.one_minus_beta1,
        beta2: s.beta2,
        one_minus_beta2: s.one_minus_beta2,
        weight_decay: s.weight_decay,
        decay: s.decay,
        neg_step_size: s.neg_step_size,
        inv_bias_correction2_sqrt: s.inv_bias_correction2_sqrt,
        eps: s.eps,
        maximize: s.maximize,
    };
    crate::kernels::parallel::adam(p, g, m, v, vmax, &step)
}

/// Adam (`torch.optim.Adam`): adaptive moment estimation with optional L2
/// weight decay (added to the gradient), AMSGrad (PyTorch's variant: the
/// maximum of the raw second moment) and maximisation.
///
/// State per parameter: `step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`
/// (AMSGrad). A moment whose magnitude falls below `f32::MIN_POSITIVE` is
/// stored as 0 (PyTorch keeps the subnormal, which, once a gradient stays
/// zero, sticks at `2^-149` and makes every later update of it take
/// microcode assists; the parameter moves the same unless it is itself
/// below about `1e-26`: see `kernels::optim`).
pub struct Adam {
    core: Core<AdamConfig, AdamState>,
    decoupled: bool,
    /// Per group: the f32 bits of (lr, beta1, beta2, weight_decay, eps) and
    /// their `dec` values, recomputed only when a value changes (a
    /// scheduler's new lr), not every step (`dec` is exact integer
    /// arithmetic, tens of thousands of instructions on a Cortex-M4).
    scalars: Vec<([u32; 5], [f64; 5])>,
}

impl Adam {
    /// An optimizer over `params` (e.g. `model.parameters()`), registered by
    /// id as one group with `config`.
    ///
    /// # Panics
    /// On an invalid configuration or a repeated parameter; see
    /// [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(params: &[Tensor], config: AdamConfig) -> Adam {
        unwrap(Self::try_new(params, config))
    }

    /// [`new`](Self::new), or `InvalidArgument` (negative lr, eps or weight
    /// decay; a beta outside [0, 1); a parameter given twice).
    pub fn try_new(params: &[Tensor], config: AdamConfig) -> Result<Adam> {
        Ok(Adam {
            core: Core::new("Adam", params, config)?,
            decoupled: false,
            scalars: Vec::new(),
        })
    }

    param_group_methods!(AdamConfig);

    fn kind(&self) -> &'static str {
        if self.decoupled { "AdamW" } else { "Adam" }
    }
}

impl Optimizer for Adam {
    fn state_tensors_per_param(&self) -> usize {
        2 + usize::from(self.core.groups.iter().any(|h| h.amsgrad))
    }

    fn step(&mut self, params: &mut [&mut Tensor]) -> Result<()> {
        let slots = self.core.resolve(params)?;
        let _no_grad = NoGradGuard::new();
        // Group scalars as PyTorch holds them (Python floats).
        self.scalars.truncate(self.core.groups.len());
        for (g, h) in self.core.groups.iter().enumerate() {
            let raw = [h.lr, h.betas.0, h.betas.1, h.weight_decay, h.eps];
            let bits = raw.map(f32::to_bits);
            if self.scalars.get(g).is_none_or(|(b, _)| *b != bits) {
                let entry = (bits, raw.map(dec));
                match self.scalars.get_mut(g) {
                    Some(e) => *e = entry,
                    None => self.scalars.push(entry),
                }
            }
        }
        let groups: Vec<[f64; 5]> = self.scalars.iter().map(|(_, v)| *v).collect();
        // Stage (see `optim::stage_params`): all that can fail.
        let staged = stage_params(params, &slots)?;
        let mut new_state = Vec::with_capacity(staged.len());
        for st in &staged {
            let slot = &mut self.core.slots[st.slot];
            let amsgrad = self.core.groups[slot.group].amsgrad;
            let shape = &slot.shape;
            new_state.push(match &mut slot.state {
                Some(state) => {
                    stage_buffer(Some(&mut state.exp_avg), true, shape)?;
                    stage_buffer(Some(&mut state.exp_avg_sq), true, shape)?;
                    let vmax = stage_buffer(state.max_exp_avg_sq.as_mut(), amsgrad, shape)?;
                    (None, vmax)
                }
                None => {
                    let fresh = AdamState {
                        step: 0.0,
                        exp_avg: super::zeros(shape)?,
                        exp_avg_sq: super::zeros(shape)?,
                        max_exp_avg_sq: None,
                    };
                    (Some(fresh), stage_buffer(None, amsgrad, shape)?)
                }
            });
        }
        // Commit: no allocation, no error. The bias corrections depend only
        // on the group and the step count, which the parameters of a group
        // usually share: computed once per run of equal (group, step) (in
        // `f64` as PyTorch holds them: software on a single-precision FPU,
        // thousands of instructions a `pow` on a Cortex-M4).
        let mut corrections: Option<(usize, f64, f32, f32)> = None;
        for (st, (fresh, new_vmax)) in staged.iter().zip(new_state) {
            let slot = &mut self.core.slots[st.slot];
            let h = &self.core.groups[slot.group];
            let [lr, beta1, beta2, wd, eps] = groups[slot.group];
            let state = commit_state(&mut slot.state, fresh);
            if new_vmax.is_some() {
                state.max_exp_avg_sq = new_vmax;
            }
            state.step += 1.0;
            let t = state.step as f64;
            let (neg_step_size, inv_bias_correction2_sqrt) = match corrections {
                Some((g, ct, a, b)) if g == slot.group && ct == t => (a, b),
                _ => {
                    let bias_correction1 = 1.0 - libm::pow(beta1, t);
                    let bias_correction2 = 1.0 - libm::pow(beta2, t);
                    let a = (-(lr / bias_correction1)) as f32;
                    let b = (1.0 / crate::math::sqrt(bias_correction2)) as f32;
                    corrections = Some((slot.group, t, a, b));
                    (a, b)
                }
            };
            let sc = AdamScalars {
                one_minus_beta1: (1.0 - beta1) as f32,
                beta2: beta2 as f32,
                one_minus_beta2: (1.0 - beta2) as f32,
                weight_decay: if self.decoupled { 0.0 } else { h.weight_decay },
                decay: (self.decoupled && h.weight_decay != 0.0).then_some((1.0 - lr * wd) as f32),
                neg_step_size,
                inv_bias_correction2_sqrt,
                eps: eps as f32,
                maximize: h.maximize,
            };
            let vmax = match &mut state.max_exp_avg_sq {
                Some(t) if h.amsgrad => Some(committed(t)?),
                _ => None,
            };
            adam_update(
                committed(params[st.param])?,
                st.grad.try_data()?,
                committed(&mut state.exp_avg)?,
                committed(&mut state.exp_avg_sq)?,
                vmax,
                &sc,
            );
        }
        Ok(())
    }

    core_optimizer_methods!(core);

    fn try_export_state(&self) -> Result<OptimizerState> {
        self.core.export(self.kind(), |s| {
            let mut v = vec![
                (
                    alloc::string::String::from("step"),
                    Tensor::try_full([], s.step)?,
                ),
                named("exp_avg", &s.exp_avg),
                named("exp_avg_sq", &s.exp_avg_sq),
            ];
            if let Some(t) = &s.max_exp_avg_sq {
                v.push(named("max_exp_avg_sq", t));
            }
            Ok(v)
        })
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        let kind = self.kind();
        self.core.import(kind, state, |r, h| {
            r.only(&["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"])?;
            let max_exp_avg_sq = if h.amsgrad {
                Some(r.required("max_exp_avg_sq")?)
            } else {
                r.buffer("max_exp_avg_sq")?
            };
            Ok(AdamState {
                step: r.step()?,
                exp_avg: r.required("exp_avg")?,
                exp_avg_sq: r.required("exp_avg_sq")?,
                max_exp_avg_sq,
            })
        })
    }
}

/// AdamW (`torch.optim.AdamW`): Adam with decoupled weight decay (each step
/// first multiplies the parameter by `1 - lr * weight_decay`; default
/// `weight_decay` 1e-2).
///
/// State per parameter: as [`Adam`].
pub struct AdamW(Adam);

impl AdamW {
    /// An optimizer over `params`, registered by id as one group.
    ///
    /// # Panics
    /// On an invalid configuration or a repeated parameter; see
    /// [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(params: &[Tensor], config: AdamWConfig) -> AdamW {
        unwrap(Self::try_new(params, config))
    }

    /// [`new`](Self::new), or `InvalidArgument` as [`Adam::try_new`].
    pub fn try_new(params: &[Tensor], config: AdamWConfig) -> Result<AdamW> {
        Ok(AdamW(Adam {
            core: Core::new("AdamW", params, config.into())?,
            decoupled: true,
            scalars: Vec::new(),
        }))
    }

    /// Adds a parameter group with its own hyper-parameters; see
    /// [`Adam::add_param_group`].
    pub fn add_param_group(&mut self, params: &[Tensor], config: AdamWConfig) -> Result<()> {
        self.0.core.add_group(params, config.into())
    }

    /// The hyper-parameters of group `g`.
    ///
    /// # Panics
    /// If `g` is not a group index.
    pub fn config(&self, g: usize) -> AdamWConfig {
        self.0.core.groups[g].into()
    }

    /// Number of parameter groups.
    pub fn num_groups(&self) -> usize {
        self.0.core.groups.len()
    }
}

impl Optimizer for AdamW {
    fn state_tensors_per_param(&self) -> usize {
        self.0.state_tensors_per_param()
    }

    fn step(&mut self, params: &mut [&mut Tensor]) -> Result<()> {
        self.0.step(params)
    }

    core_optimizer_methods!(0.core);

    fn try_export_state(&self) -> Result<OptimizerState> {
        self.0.try_export_state()
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.0.import_state(state)
    }
}
