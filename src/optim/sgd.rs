//! Stochastic gradient descent (`torch.optim.SGD`).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{
    Core, Hyper, Optimizer, OptimizerState, committed, core_optimizer_methods, dec, hyper_fields,
    named, non_negative, param_group_methods, stage_buffer, stage_params,
};
use crate::autograd::NoGradGuard;
use crate::error::{Error, Result, unwrap};
use crate::tensor::Tensor;

/// Hyper-parameters of [`Sgd`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3). Must be >= 0.
    pub lr: f32,
    /// Momentum factor (default 0: plain SGD). Must be >= 0.
    pub momentum: f32,
    /// Dampening of the momentum (default 0).
    pub dampening: f32,
    /// L2 penalty added to the gradient (default 0). Must be >= 0.
    pub weight_decay: f32,
    /// Nesterov momentum (default false; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// Maximise the objective instead of minimising it (default false).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl Hyper for SgdConfig {
    hyper_fields! {
        "lr" => lr: value,
        "momentum" => momentum: value,
        "dampening" => dampening: value,
        "weight_decay" => weight_decay: value,
        "nesterov" => nesterov: flag,
        "maximize" => maximize: flag,
    }

    fn validate(&self, op: &'static str) -> Result<()> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        if !non_negative(self.lr) {
            return bad("invalid learning rate (must be >= 0)");
        }
        if !non_negative(self.momentum) {
            return bad("invalid momentum (must be >= 0)");
        }
        if !non_negative(self.weight_decay) {
            return bad("invalid weight_decay (must be >= 0)");
        }
        if self.dampening.is_nan() {
            return bad("invalid dampening (NaN)");
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return bad("Nesterov momentum requires a momentum and zero dampening");
        }
        Ok(())
    }
}

/// Per-parameter state: the momentum buffer, created by the first step with
/// momentum (as `buf = grad`).
pub(crate) struct SgdState {
    momentum_buffer: Option<Tensor>,
}

/// The scalars of one SGD update, as PyTorch rounds them to f32.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SgdScalars {
    pub(crate) neg_lr: f32,
    pub(crate) weight_decay: f32,
    pub(crate) momentum: f32,
    pub(crate) one_minus_dampening: f32,
    pub(crate) nesterov: bool,
    pub(crate) maximize: bool,
}

impl SgdScalars {
    fn new(h: &SgdConfig) -> SgdScalars {
        SgdScalars {
            neg_lr: -h.lr,
            weight_decay: h.weight_decay,
            momentum: h.momentum,
            one_minus_dampening: (1.0 - dec(h.dampening)) as f32,
            nesterov: h.nesterov,
            maximize: h.maximize,
        }
    }
}

/// One fused SGD update of a parameter `p` with gradient `g` and, when
/// momentum is on, buffer `buf` (`first`: the buffer is new and takes the
/// gradient). Mirrors `torch.optim.sgd._single_tensor_sgd` element by
/// element:
///
/// ```text
/// g = maximize ? -g : g;   g = g + wd * p            (wd != 0)
/// buf = first ? g : buf * momentum + (1 - dampening) * g
/// d = nesterov ? g + momentum * buf : buf            (momentum != 0; else d = g)
/// p = p + (-lr) * d
/// ```
///
/// # Panics
/// If the slice lengths differ.
pub(crate) fn sgd_update(
    p: &mut [f32],
    g: &[f32],
    buf: Option<&mut [f32]>,
    first: bool,
    s: &SgdScalars,
) {
    let step = crate::kernels::optim::SgdStep {
        neg_lr: s.neg_lr,
        weight_decay: s.weight_decay,
        momentum: s.momentum,
        one_minus_dampening: s.one_minus_dampening,
        nesterov: s.nesterov,
        maximize: s.maximize,
        first,
    };
    crate::kernels::parallel::sgd(p, g, buf, &step)
}

/// Stochastic gradient descent with optional momentum, dampening, Nesterov
/// momentum, L2 weight decay and maximisation, as `torch.optim.SGD` (the
/// first momentum step sets the buffer to the gradient).
///
/// State per parameter: `momentum_buffer` (only with momentum), stored as 0
/// where its magnitude falls below `f32::MIN_POSITIVE` (as Adam's moments:
/// see [`Adam`](crate::optim::Adam)).
pub struct Sgd {
    core: Core<SgdConfig, SgdState>,
}

impl Sgd {
    /// An optimizer over `params` (e.g. `model.parameters()`), registered by
    /// id as one group with `config`.
    ///
    /// # Panics
    /// On an invalid configuration or a repeated parameter; see
    /// [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(params: &[Tensor], config: SgdConfig) -> Sgd {
        unwrap(Self::try_new(params, config))
    }

    /// [`new`](Self::new), or `InvalidArgument` (negative lr, momentum or
    /// weight decay; Nesterov without momentum or with dampening; a parameter
    /// given twice).
    pub fn try_new(params: &[Tensor], config: SgdConfig) -> Result<Sgd> {
        Ok(Sgd {
            core: Core::new("SGD", params, config)?,
        })
    }

    param_group_methods!(SgdConfig);
}

impl Optimizer for Sgd {
    fn state_tensors_per_param(&self) -> usize {
        usize::from(self.core.groups.iter().any(|g| g.momentum != 0.0))
    }

    fn step(&mut self, params: &mut [&mut Tensor]) -> Result<()> {
        let slots = self.core.resolve(params)?;
        let _no_grad = NoGradGuard::new();
        let scalars: Vec<SgdScalars> = self.core.groups.iter().map(SgdScalars::new).collect();
        // Stage (see `optim::stage_params`): all that can fail.
        let staged = stage_params(params, &slots)?;
        let mut new_bufs = Vec::with_capacity(staged.len());
        for st in &staged {
            let slot = &mut self.core.slots[st.slot];
            let existing = slot.state.as_mut().and_then(|s| s.momentum_buffer.as_mut());
            let wanted = scalars[slot.group].momentum != 0.0;
            new_bufs.push(stage_buffer(existing, wanted, &slot.shape)?);
        }
        // Commit: no allocation, no error.
        for (st, new_buf) in staged.iter().zip(new_bufs) {
            let slot = &mut self.core.slots[st.slot];
            let sc = &scalars[slot.group];
            let state = slot.state.get_or_insert(SgdState {
                momentum_buffer: None,
            });
            let first = new_buf.is_some();
            if new_buf.is_some() {
                state.momentum_buffer = new_buf;
            }
            let g = st.grad.try_data()?;
            let p = committed(params[st.param])?;
            match &mut state.momentum_buffer {
                Some(b) if sc.momentum != 0.0 => sgd_update(p, g, Some(committed(b)?), first, sc),
                _ => sgd_update(p, g, None, false, sc),
            }
        }
        Ok(())
    }

    core_optimizer_methods!(core);

    fn try_export_state(&self) -> Result<OptimizerState> {
        self.core.export("SGD", |s| {
            Ok(s.momentum_buffer
                .iter()
                .map(|b| named("momentum_buffer", b))
                .collect::<Vec<(String, Tensor)>>())
        })
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.core.import("SGD", state, |r, _| {
            r.only(&["momentum_buffer"])?;
            Ok(SgdState {
                momentum_buffer: r.buffer("momentum_buffer")?,
            })
        })
    }
}
