//! RMSprop (`torch.optim.RMSprop`).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::adam::lerp;
use super::{
    Core, Hyper, Optimizer, OptimizerState, commit_state, committed, core_optimizer_methods, dec,
    hyper_fields, named, non_negative, param_group_methods, stage_buffer, stage_params,
};
use crate::autograd::NoGradGuard;
use crate::error::{Error, Result, unwrap};
use crate::kernels::optim::flushed;
use crate::tensor::Tensor;

/// Hyper-parameters of [`RmsProp`], with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default 1e-2). Must be >= 0.
    pub lr: f32,
    /// Smoothing constant of the squared-gradient average (default 0.99).
    /// Must be >= 0.
    pub alpha: f32,
    /// Added to the denominator (default 1e-8). Must be >= 0.
    pub eps: f32,
    /// L2 penalty added to the gradient (default 0). Must be >= 0.
    pub weight_decay: f32,
    /// Momentum factor (default 0). Must be >= 0.
    pub momentum: f32,
    /// Normalise by the estimated variance of the gradient instead of its
    /// second moment (default false).
    pub centered: bool,
    /// Maximise the objective instead of minimising it (default false).
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl Hyper for RmsPropConfig {
    hyper_fields! {
        "lr" => lr: value,
        "alpha" => alpha: value,
        "eps" => eps: value,
        "weight_decay" => weight_decay: value,
        "momentum" => momentum: value,
        "centered" => centered: flag,
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
        if !non_negative(self.momentum) {
            return bad("invalid momentum (must be >= 0)");
        }
        if !non_negative(self.weight_decay) {
            return bad("invalid weight_decay (must be >= 0)");
        }
        if !non_negative(self.alpha) {
            return bad("invalid alpha (must be >= 0)");
        }
        Ok(())
    }
}

/// Per-parameter state, created by the parameter's first step.
pub(crate) struct RmsPropState {
    step: f32,
    square_avg: Tensor,
    /// Created (zeros) by the first step with momentum > 0.
    momentum_buffer: Option<Tensor>,
    /// Created (zeros) by the first centered step.
    grad_avg: Option<Tensor>,
}

/// The scalars of one RMSprop update, as PyTorch rounds them to f32.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RmsPropScalars {
    pub(crate) alpha: f32,
    /// `1 - alpha`: weight of the squared gradient and of `grad_avg.lerp_`.
    pub(crate) one_minus_alpha: f32,
    pub(crate) eps: f32,
    pub(crate) weight_decay: f32,
    pub(crate) momentum: f32,
    pub(crate) neg_lr: f32,
    pub(crate) maximize: bool,
}

/// One fused RMSprop update of a parameter `p` with gradient `g`, squared
/// average `sq`, and optionally the gradient average `ga` (centered) and the
/// momentum buffer `buf` (momentum > 0). Mirrors
/// `torch.optim.rmsprop._single_tensor_rmsprop` element by element:
///
/// ```text
/// g = maximize ? -g : g;   g = g + wd * p            (wd != 0)
/// sq = sq * alpha;  sq = sq + ((1 - alpha) * g) * g
/// avg = centered ? sqrt(sq - ga * ga) with ga = lerp(ga, g, 1 - alpha) : sqrt(sq)
/// avg = avg + eps
/// momentum: buf = buf * momentum + g / avg;  p = p + (-lr) * buf
/// else:     p = p + (-lr * g) / avg
/// ```
///
/// `sq`, `ga` and `buf` are stored as 0 where their magnitude falls below
/// `f32::MIN_POSITIVE` (see `kernels::optim`: a decaying average sticks at
/// the smallest subnormal, and its updates take microcode assists).
///
/// # Panics
/// If the slice lengths differ.
pub(crate) fn rmsprop_update(
    p: &mut [f32],
    g: &[f32],
    sq: &mut [f32],
    mut ga: Option<&mut [f32]>,
    mut buf: Option<&mut [f32]>,
    s: &RmsPropScalars,
) {
    let n = p.len();
    assert!(
        g.len() == n
            && sq.len() == n
            && ga.as_ref().is_none_or(|a| a.len() == n)
            && buf.as_ref().is_none_or(|b| b.len() == n),
        "rmsprop_update: slice lengths differ"
    );
    for i in 0..n {
        let pv = p[i];
        let gv = if s.maximize { -g[i] } else { g[i] };
        let gv = if s.weight_decay != 0.0 {
            gv + s.weight_decay * pv
        } else {
            gv
        };
        let sa = sq[i] * s.alpha;
        let sa = flushed(sa + (s.one_minus_alpha * gv) * gv);
        sq[i] = sa;
        let avg = match ga.as_deref_mut() {
            Some(ga) => {
                let a = flushed(lerp(ga[i], gv, s.one_minus_alpha));
                ga[i] = a;
                crate::math::sqrtf(sa + (-a) * a)
            }
            None => crate::math::sqrtf(sa),
        };
        let avg = avg + s.eps;
        p[i] = match buf.as_deref_mut() {
            Some(b) => {
                let bv = flushed(b[i] * s.momentum + gv / avg);
                b[i] = bv;
                pv + s.neg_lr * bv
            }
            None => pv + (s.neg_lr * gv) / avg,
        };
    }
}

/// RMSprop (`torch.optim.RMSprop`) with optional momentum, centering, L2
/// weight decay and maximisation.
///
/// State per parameter: `step`, `square_avg`, `momentum_buffer` (momentum >
/// 0), `grad_avg` (centered); each stored as 0 where it falls below
/// `f32::MIN_POSITIVE` (as [`Adam`](crate::optim::Adam)'s moments).
pub struct RmsProp {
    core: Core<RmsPropConfig, RmsPropState>,
}

impl RmsProp {
    /// An optimizer over `params` (e.g. `model.parameters()`), registered by
    /// id as one group with `config`.
    ///
    /// # Panics
    /// On an invalid configuration or a repeated parameter; see
    /// [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(params: &[Tensor], config: RmsPropConfig) -> RmsProp {
        unwrap(Self::try_new(params, config))
    }

    /// [`new`](Self::new), or `InvalidArgument` (negative lr, eps, momentum,
    /// weight decay or alpha; a parameter given twice).
    pub fn try_new(params: &[Tensor], config: RmsPropConfig) -> Result<RmsProp> {
        Ok(RmsProp {
            core: Core::new("RMSprop", params, config)?,
        })
    }

    param_group_methods!(RmsPropConfig);
}

impl Optimizer for RmsProp {
    fn state_tensors_per_param(&self) -> usize {
        let g = &self.core.groups;
        1 + usize::from(g.iter().any(|h| h.momentum > 0.0))
            + usize::from(g.iter().any(|h| h.centered))
    }

    fn step(&mut self, params: &mut [&mut Tensor]) -> Result<()> {
        let slots = self.core.resolve(params)?;
        let _no_grad = NoGradGuard::new();
        let scalars: Vec<RmsPropScalars> = self
            .core
            .groups
            .iter()
            .map(|h| RmsPropScalars {
                alpha: h.alpha,
                one_minus_alpha: (1.0 - dec(h.alpha)) as f32,
                eps: h.eps,
                weight_decay: h.weight_decay,
                momentum: h.momentum,
                neg_lr: -h.lr,
                maximize: h.maximize,
            })
            .collect();
        // Stage (see `optim::stage_params`): all that can fail.
        let staged = stage_params(params, &slots)?;
        let mut new_state = Vec::with_capacity(staged.len());
        for st in &staged {
            let slot = &mut self.core.slots[st.slot];
            let h = &self.core.groups[slot.group];
            let shape = &slot.shape;
            let (wants_ga, wants_buf) = (h.centered, h.momentum > 0.0);
            new_state.push(match &mut slot.state {
                Some(state) => {
                    stage_buffer(Some(&mut state.square_avg), true, shape)?;
                    let ga = stage_buffer(state.grad_avg.as_mut(), wants_ga, shape)?;
                    let buf = stage_buffer(state.momentum_buffer.as_mut(), wants_buf, shape)?;
                    (None, ga, buf)
                }
                None => {
                    let fresh = RmsPropState {
                        step: 0.0,
                        square_avg: super::zeros(shape)?,
                        momentum_buffer: None,
                        grad_avg: None,
                    };
                    let ga = stage_buffer(None, wants_ga, shape)?;
                    let buf = stage_buffer(None, wants_buf, shape)?;
                    (Some(fresh), ga, buf)
                }
            });
        }
        // Commit: no allocation, no error.
        for (st, (fresh, new_ga, new_buf)) in staged.iter().zip(new_state) {
            let slot = &mut self.core.slots[st.slot];
            let h = &self.core.groups[slot.group];
            let state = commit_state(&mut slot.state, fresh);
            if new_ga.is_some() {
                state.grad_avg = new_ga;
            }
            if new_buf.is_some() {
                state.momentum_buffer = new_buf;
            }
            state.step += 1.0;
            let ga = match &mut state.grad_avg {
                Some(t) if h.centered => Some(committed(t)?),
                _ => None,
            };
            let buf = match &mut state.momentum_buffer {
                Some(t) if h.momentum > 0.0 => Some(committed(t)?),
                _ => None,
            };
            rmsprop_update(
                committed(params[st.param])?,
                st.grad.try_data()?,
                committed(&mut state.square_avg)?,
                ga,
                buf,
                &scalars[slot.group],
            );
        }
        Ok(())
    }

    core_optimizer_methods!(core);

    fn try_export_state(&self) -> Result<OptimizerState> {
        self.core.export("RMSprop", |s| {
            let mut v = vec![
                (String::from("step"), Tensor::try_full([], s.step)?),
                named("square_avg", &s.square_avg),
            ];
            if let Some(t) = &s.momentum_buffer {
                v.push(named("momentum_buffer", t));
            }
            if let Some(t) = &s.grad_avg {
                v.push(named("grad_avg", t));
            }
            Ok(v)
        })
    }

    fn import_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.core.import("RMSprop", state, |r, h| {
            r.only(&["step", "square_avg", "momentum_buffer", "grad_avg"])?;
            let momentum_buffer = if h.momentum > 0.0 {
                Some(r.required("momentum_buffer")?)
            } else {
                r.buffer("momentum_buffer")?
            };
            let grad_avg = if h.centered {
                Some(r.required("grad_avg")?)
            } else {
                r.buffer("grad_avg")?
            };
            Ok(RmsPropState {
                step: r.step()?,
                square_avg: r.required("square_avg")?,
                momentum_buffer,
                grad_avg,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The squared average, the gradient average and the momentum buffer are
    /// stored as 0 once they would fall below `f32::MIN_POSITIVE`; just above
    /// they decay as in PyTorch.
    #[test]
    fn subnormal_state_is_stored_as_zero() {
        let s = RmsPropScalars {
            alpha: 0.99,
            one_minus_alpha: 0.01,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.9,
            neg_lr: -1e-2,
            maximize: false,
        };
        let min = f32::MIN_POSITIVE;
        let state = [min, 1.2 * min, f32::from_bits(1), 1.0];
        let mut p = [1.0f32; 4];
        let (mut sq, mut ga, mut buf) = (state, state, state);
        rmsprop_update(
            &mut p,
            &[0.0; 4],
            &mut sq,
            Some(&mut ga),
            Some(&mut buf),
            &s,
        );
        let want = |w: f32| if w < min { 0.0 } else { w };
        for (i, &x) in state.iter().enumerate() {
            let sq_want = want(x * 0.99 + 0.0);
            assert_eq!(
                sq[i].to_bits(),
                sq_want.to_bits(),
                "sq from {x:e}: {:e}",
                sq[i]
            );
            let ga_want = want(lerp(x, 0.0, 0.01));
            assert_eq!(
                ga[i].to_bits(),
                ga_want.to_bits(),
                "ga from {x:e}: {:e}",
                ga[i]
            );
            assert_eq!(
                buf[i].to_bits(),
                want(x * 0.9).to_bits(),
                "buf from {x:e}: {:e}",
                buf[i]
            );
        }
        assert!(sq[1] > 0.0 && ga[1] > 0.0 && buf[1] > 0.0);
    }
}
