//! Loss functions, named and defined as in `torch.nn.functional`.
//!
//! | function | input | target |
//! |---|---|---|
//! | [`mse_loss`], [`l1_loss`], [`smooth_l1_loss`], [`huber_loss`] | any shape | the input's shape |
//! | [`binary_cross_entropy`] | probabilities in `[0, 1]`, any shape | the input's shape |
//! | [`binary_cross_entropy_with_logits`] | logits, any shape | the input's shape |
//! | [`cross_entropy`] | logits `[C]` or `[N, C, d1, ...]` | class indices `[]` / `[N, d1, ...]`, or class probabilities of the input's shape |
//! | [`nll_loss`] | log-probabilities `[C]` or `[N, C, d1, ...]` | class indices `[]` / `[N, d1, ...]` |
//! | [`kl_div`] | log-probabilities, any shape | (log-)probabilities of the input's shape |
//! | [`soft_margin_loss`] | any shape | labels ±1 of the input's shape |
//!
//! Every loss takes a [`Reduction`]: `Mean` (the default) and `Sum` give a
//! 0-D tensor; `None` gives one loss per element (per sample for the class
//! losses: the target's shape). Each has a `try_` form returning an error that
//! names the loss and the shapes involved, and a plain form that panics with
//! the same message. Class indices are f32 tensors holding whole numbers.
//!
//! ```
//! use train_station::Tensor;
//! use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
//!
//! let logits = Tensor::from_slice(&[2.0, 0.5, -1.0, 0.1, 0.2, 3.0], [2, 3])
//!     .unwrap()
//!     .with_requires_grad();
//! let labels = Tensor::from_slice(&[0.0, 2.0], [2]).unwrap();
//! let options = CrossEntropyOptions::default().label_smoothing(0.1);
//! let loss = cross_entropy(&logits, &labels, &options);
//! loss.backward();
//! assert_eq!(loss.dims(), &[] as &[usize]);
//! assert_eq!(logits.grad().unwrap().dims(), &[2, 3]);
//! ```
//!
//! Unlike PyTorch, which broadcasts `mse_loss`/`l1_loss` operands of different
//! shapes with a warning, a target of another shape is an error here. Not
//! provided: PyTorch's `"batchmean"` reduction of `kl_div` (use `Sum` and
//! divide), and the margin/ranking/embedding losses (`margin_ranking_loss`,
//! `hinge_embedding_loss`, `multi_margin_loss`, `triplet_margin_loss`,
//! `cosine_embedding_loss`), `poisson_nll_loss`, `gaussian_nll_loss` and
//! `ctc_loss`.
//!
//! # How they are computed
//!
//! The element-wise losses are one pass each over contiguous operands with a
//! hand-written derivative (`pointwise`), followed by the generic `mean`/`sum`
//! reduction. [`cross_entropy`] is fused: one numerically stable log-softmax
//! per row (the row maximum is subtracted, so logits of 1e4 do not overflow),
//! the smoothing and class weights folded into a per-row target distribution
//! `q`, and a single backward pass writing `(softmax * sum(q) - q) * scale`
//! for each row. Logits `[N, C, d1, ...]` are first gathered with the class
//! dimension last, and the gradient is moved back.
//!
//! Class weights and `pos_weight` are constants: as in PyTorch, passing one
//! that requires grad is an error, except for [`cross_entropy`] with class
//! probabilities, where PyTorch (and this module) differentiate the weight.

use alloc::vec;

use crate::autograd::{is_grad_enabled, needs_grad};
use crate::error::{Error, Result, unwrap};
use crate::ops::grad_if;
use crate::ops::unary::f::sigmoid;
use crate::tensor::{Shape, Tensor};

mod class;
pub(crate) use class::class_index;

pub use class::{
    CrossEntropyOptions, NllLossOptions, cross_entropy, nll_loss, try_cross_entropy, try_nll_loss,
};

/// How a loss combines the per-element (or per-sample) losses, as PyTorch's
/// `reduction` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reduction {
    /// The average (for class losses with weights or ignored targets, the sum
    /// divided by the total weight of the counted targets). The default.
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element (or per sample).
    None,
}

// ------------------------------------------------------------------ helpers

/// `t`'s values as a detached contiguous tensor of `shape`, broadcasting `t`
/// if needed (`ShapeMismatch` naming `op` if it does not broadcast).
fn dense(op: &'static str, t: &Tensor, shape: &Shape) -> Result<Tensor> {
    let v = if t.dims() == shape.dims() {
        t.detach()
    } else {
        t.with_layout(t.layout.broadcast_to(op, shape)?)
    };
    if v.is_contiguous() {
        Ok(v)
    } else {
        v.try_materialize()
    }
}

/// The elements of a tensor made by [`dense`] (or any contiguous tensor).
fn slice(t: &Tensor) -> &[f32] {
    t.as_slice().expect("dense tensors are contiguous")
}

/// `ShapeMismatch` for `op` unless `target` has `input`'s shape.
fn check_same(op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
    if input.dims() == target.dims() {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: input.shape().into(),
        rhs: target.shape().into(),
        detail: "the target must have the input's shape",
    })
}

/// Refuses a weight that requires grad where PyTorch does not differentiate
/// it (it raises "not differentiable with respect to argument 'weight'").
fn check_constant(op: &'static str, w: Option<&Tensor>, detail: &'static str) -> Result<()> {
    if is_grad_enabled() && w.is_some_and(Tensor::requires_grad) {
        return Err(Error::InvalidArgument { op, detail });
    }
    Ok(())
}

/// Applies `reduction` to per-element losses (recorded ops, so gradients flow).
fn reduce(loss: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => loss.try_mean(),
        Reduction::Sum => loss.try_sum(),
        Reduction::None => Ok(loss),
    }
}

/// Element `i` of each operand; an operand of one element is broadcast.
#[inline]
fn at<const K: usize>(s: &[&[f32]; K], i: usize) -> [f32; K] {
    core::array::from_fn(|k| if s[k].len() == 1 { s[k][0] } else { s[k][i] })
}

/// An element-wise loss over dense operands of `input`'s shape (or of one
/// element): `out[i] = value(v)` with `v[k]` element `i` of `vals[k]`, where
/// `vals[0]` holds the input's values, `vals[1]` the target's and the rest are
/// constants. Backward: the input gets `g * grad(v).0`, the target
/// `g * grad(v).1`; recorded as `name`.
fn pointwise<const K: usize>(
    name: &'static str,
    input: &Tensor,
    target: &Tensor,
    vals: [Tensor; K],
    value: impl Fn([f32; K]) -> f32,
    grad: impl Fn([f32; K]) -> (f32, f32) + Send + Sync + 'static,
) -> Result<Tensor> {
    let shape = input.shape().clone();
    let out = {
        let s: [&[f32]; K] = core::array::from_fn(|k| slice(&vals[k]));
        Tensor::try_from_fill(shape.clone(), |o| {
            for (i, o) in o.iter_mut().enumerate() {
                *o = value(at(&s, i));
            }
        })?
    };
    if !needs_grad(&[input, target]) {
        return Ok(out);
    }
    Ok(out.record(name, &[input, target], move |g, need| {
        // After `mean`/`sum`, `g` is one value broadcast (all strides 0): use
        // it as a one-element operand instead of expanding it.
        let g = if g.numel() > 0 && g.strides().iter().all(|&s| s == 0) {
            Tensor::try_full([1], g.values().next().unwrap_or(0.0))?
        } else {
            dense(name, g, &shape)?
        };
        let gs = [slice(&g)];
        let s: [&[f32]; K] = core::array::from_fn(|k| slice(&vals[k]));
        let side = |which: usize| {
            Tensor::try_from_fill(shape.clone(), |o| {
                for (i, o) in o.iter_mut().enumerate() {
                    let d = grad(at(&s, i));
                    *o = at(&gs, i)[0] * if which == 0 { d.0 } else { d.1 };
                }
            })
        };
        Ok(vec![
            grad_if(need[0], || side(0))?,
            grad_if(need[1], || side(1))?,
        ])
    }))
}

/// `sign(d)`, with `sign(0) = 0` and, as PyTorch, `sign(NaN) = 0`.
#[inline]
fn sign(d: f32) -> f32 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// `log(sigmoid(x))`, stable for large `|x|`: `min(x, 0) - log1p(exp(-|x|))`.
#[inline]
fn log_sigmoid(x: f32) -> f32 {
    x.min(0.0) - libm::log1pf(libm::expf(-x.abs()))
}

// ------------------------------------------------------- regression losses

/// Mean squared error, `(input - target)²` per element, reduced, as
/// `torch.nn.functional.mse_loss`. Input and target: any shape, the same for
/// both; both receive gradients.
///
/// # Panics
/// If the shapes differ; see [`try_mse_loss`].
#[track_caller]
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    unwrap(try_mse_loss(input, target, reduction))
}

/// [`mse_loss`], or `ShapeMismatch` (op `mse_loss`) if the shapes differ.
pub fn try_mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    const OP: &str = "mse_loss";
    check_same(OP, input, target)?;
    let s = input.shape();
    let loss = pointwise(
        "MseLossBackward0",
        input,
        target,
        [dense(OP, input, s)?, dense(OP, target, s)?],
        |[x, t]| (x - t) * (x - t),
        |[x, t]| {
            let d = 2.0 * (x - t);
            (d, -d)
        },
    )?;
    reduce(loss, reduction)
}

/// Mean absolute error, `|input - target|` per element, reduced, as
/// `torch.nn.functional.l1_loss` (gradient `sign(input - target)`, 0 where
/// they are equal). Input and target: any shape, the same for both.
///
/// # Panics
/// If the shapes differ; see [`try_l1_loss`].
#[track_caller]
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    unwrap(try_l1_loss(input, target, reduction))
}

/// [`l1_loss`], or `ShapeMismatch` (op `l1_loss`) if the shapes differ.
pub fn try_l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    l1("l1_loss", input, target, reduction)
}

fn l1(op: &'static str, input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check_same(op, input, target)?;
    let s = input.shape();
    let loss = pointwise(
        "L1LossBackward0",
        input,
        target,
        [dense(op, input, s)?, dense(op, target, s)?],
        |[x, t]| (x - t).abs(),
        |[x, t]| {
            let d = sign(x - t);
            (d, -d)
        },
    )?;
    reduce(loss, reduction)
}

/// Smooth L1 loss, as `torch.nn.functional.smooth_l1_loss`: per element,
/// with `d = |input - target|`, `0.5 d² / beta` where `d < beta` and
/// `d - 0.5 beta` elsewhere. `beta = 0` is the L1 loss; PyTorch's default is
/// `beta = 1`. Input and target: any shape, the same for both.
///
/// # Panics
/// If the shapes differ or `beta` is negative or NaN; see
/// [`try_smooth_l1_loss`].
#[track_caller]
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction, beta: f32) -> Tensor {
    unwrap(try_smooth_l1_loss(input, target, reduction, beta))
}

/// [`smooth_l1_loss`], or `ShapeMismatch` / `InvalidArgument` (op
/// `smooth_l1_loss`).
pub fn try_smooth_l1_loss(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    beta: f32,
) -> Result<Tensor> {
    const OP: &str = "smooth_l1_loss";
    if beta.is_nan() || beta < 0.0 {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "beta must not be negative",
        });
    }
    if beta == 0.0 {
        return l1(OP, input, target, reduction);
    }
    check_same(OP, input, target)?;
    let s = input.shape();
    let loss = pointwise(
        "SmoothL1LossBackward0",
        input,
        target,
        [dense(OP, input, s)?, dense(OP, target, s)?],
        move |[x, t]| {
            let z = (x - t).abs();
            if z < beta {
                0.5 * z * z / beta
            } else {
                z - 0.5 * beta
            }
        },
        move |[x, t]| {
            let d = x - t;
            let g = if d < -beta {
                -1.0
            } else if d > beta {
                1.0
            } else {
                d / beta
            };
            (g, -g)
        },
    )?;
    reduce(loss, reduction)
}

/// Huber loss, as `torch.nn.functional.huber_loss`: per element, with
/// `d = |input - target|`, `0.5 d²` where `d < delta` and
/// `delta (d - 0.5 delta)` elsewhere (`smooth_l1_loss` times `delta`, with
/// `beta = delta`). PyTorch's default is `delta = 1`. Input and target: any
/// shape, the same for both.
///
/// # Panics
/// If the shapes differ or `delta` is not positive; see [`try_huber_loss`].
#[track_caller]
pub fn huber_loss(input: &Tensor, target: &Tensor, reduction: Reduction, delta: f32) -> Tensor {
    unwrap(try_huber_loss(input, target, reduction, delta))
}

/// [`huber_loss`], or `ShapeMismatch` / `InvalidArgument` (op `huber_loss`).
pub fn try_huber_loss(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    delta: f32,
) -> Result<Tensor> {
    const OP: &str = "huber_loss";
    if delta.is_nan() || delta <= 0.0 {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "delta must be positive",
        });
    }
    check_same(OP, input, target)?;
    let s = input.shape();
    let loss = pointwise(
        "HuberLossBackward0",
        input,
        target,
        [dense(OP, input, s)?, dense(OP, target, s)?],
        move |[x, t]| {
            let z = (x - t).abs();
            if z < delta {
                0.5 * z * z
            } else {
                delta * (z - 0.5 * delta)
            }
        },
        move |[x, t]| {
            let d = x - t;
            let g = if d < -delta {
                -delta
            } else if d > delta {
                delta
            } else {
                d
            };
            (g, -g)
        },
    )?;
    reduce(loss, reduction)
}

// ------------------------------------------------------- binary losses

/// Binary cross-entropy of probabilities, as
/// `torch.nn.functional.binary_cross_entropy`: per element
/// `-w (t log(x) + (1 - t) log(1 - x))`, each log clamped to at least -100
/// (so `x = 0` or `1` gives a finite loss, as in PyTorch).
///
/// `input` holds probabilities in `[0, 1]` (any shape), `target` has the same
/// shape; `weight`, if given, broadcasts to the input's shape and must not
/// require grad. The input's gradient is
/// `w (x - t) / max(x (1 - x), 1e-12)`, the target's `-w logit(x)`. `Mean`
/// divides by the number of elements.
///
/// # Panics
/// On shape errors or input values outside `[0, 1]`; see
/// [`try_binary_cross_entropy`].
#[track_caller]
pub fn binary_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Tensor {
    unwrap(try_binary_cross_entropy(input, target, weight, reduction))
}

/// [`binary_cross_entropy`], or `ShapeMismatch` (the target's shape differs,
/// or the weight does not broadcast to the input) / `InvalidArgument` (an
/// input value outside `[0, 1]` or NaN; a weight that requires grad), op
/// `binary_cross_entropy`.
pub fn try_binary_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Result<Tensor> {
    const OP: &str = "binary_cross_entropy";
    check_same(OP, input, target)?;
    check_constant(
        OP,
        weight,
        "weight must not require grad (PyTorch does not differentiate it)",
    )?;
    let s = input.shape();
    let x = dense(OP, input, s)?;
    if !slice(&x).iter().all(|v| (0.0..=1.0).contains(v)) {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "all elements of input should be between 0 and 1",
        });
    }
    let w = match weight {
        Some(w) => dense(OP, w, s)?,
        None => Tensor::try_full([1], 1.0)?,
    };
    let loss = pointwise(
        "BinaryCrossEntropyBackward0",
        input,
        target,
        [x, dense(OP, target, s)?, w],
        |[x, t, w]| {
            let log_x = libm::logf(x).max(-100.0);
            let log_1mx = libm::log1pf(-x).max(-100.0);
            w * ((t - 1.0) * log_1mx - t * log_x)
        },
        |[x, t, w]| {
            let gx = w * (x - t) / ((1.0 - x) * x).max(1e-12);
            let gt = -w * libm::logf(x / (1.0 - x));
            (gx, gt)
        },
    )?;
    reduce(loss, reduction)
}

/// Options of [`binary_cross_entropy_with_logits`] (PyTorch's keyword
/// arguments). The default: no weights, `Mean`.
#[derive(Clone, Debug, Default)]
pub struct BceWithLogitsOptions {
    /// Per-element rescaling, broadcast to the input's shape.
    pub weight: Option<Tensor>,
    /// Weight of the positive term, broadcast to the input's shape (a `[C]`
    /// tensor weighs each class of a `[..., C]` input).
    pub pos_weight: Option<Tensor>,
    /// How the per-element losses are combined.
    pub reduction: Reduction,
}

impl BceWithLogitsOptions {
    /// Sets [`weight`](Self::weight).
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets [`pos_weight`](Self::pos_weight).
    pub fn pos_weight(mut self, pos_weight: Tensor) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    /// Sets [`reduction`](Self::reduction).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Binary cross-entropy of logits, as
/// `torch.nn.functional.binary_cross_entropy_with_logits`: per element
/// `w ((1 - t) x - (1 + (p - 1) t) log(sigmoid(x)))` with `w` the weight and
/// `p` the positive weight, computed with a stable `log(sigmoid(x))`, so
/// logits of any magnitude give finite losses and gradients.
///
/// `input` (any shape) holds logits, `target` has the same shape (values
/// usually in `[0, 1]`); both receive gradients. `weight` and `pos_weight`
/// broadcast to the input's shape and must not require grad. `Mean` divides
/// by the number of elements.
///
/// # Panics
/// On shape errors; see [`try_binary_cross_entropy_with_logits`].
#[track_caller]
pub fn binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    options: &BceWithLogitsOptions,
) -> Tensor {
    unwrap(try_binary_cross_entropy_with_logits(input, target, options))
}

/// [`binary_cross_entropy_with_logits`], or `ShapeMismatch` (the target's
/// shape differs, or a weight does not broadcast to the input) /
/// `InvalidArgument` (a weight that requires grad), op
/// `binary_cross_entropy_with_logits`.
pub fn try_binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    options: &BceWithLogitsOptions,
) -> Result<Tensor> {
    const OP: &str = "binary_cross_entropy_with_logits";
    check_same(OP, input, target)?;
    const CONST: &str =
        "weight and pos_weight must not require grad (PyTorch does not differentiate them)";
    check_constant(OP, options.weight.as_ref(), CONST)?;
    check_constant(OP, options.pos_weight.as_ref(), CONST)?;
    let s = input.shape();
    let constant = |w: &Option<Tensor>| match w {
        Some(w) => dense(OP, w, s),
        None => Tensor::try_full([1], 1.0),
    };
    let has_pw = options.pos_weight.is_some();
    let loss = pointwise(
        "BinaryCrossEntropyWithLogitsBackward0",
        input,
        target,
        [
            dense(OP, input, s)?,
            dense(OP, target, s)?,
            constant(&options.weight)?,
            constant(&options.pos_weight)?,
        ],
        move |[x, t, w, p]| {
            let ls = log_sigmoid(x);
            let l = if has_pw {
                (1.0 - t) * x - ((p - 1.0) * t + 1.0) * ls
            } else {
                (1.0 - t) * x - ls
            };
            w * l
        },
        move |[x, t, w, p]| {
            if has_pw {
                let pt = p * t;
                let gx = (pt + 1.0 - t) * sigmoid(x) - pt;
                let gt = log_sigmoid(-x) - p * log_sigmoid(x);
                (w * gx, w * gt)
            } else {
                (w * (sigmoid(x) - t), -w * x)
            }
        },
    )?;
    reduce(loss, options.reduction)
}

// ------------------------------------------------------- other losses

/// Kullback-Leibler divergence loss, as `torch.nn.functional.kl_div`: per
/// element `t (log t - x)` (0 where `t = 0`) for an `input` `x` of
/// log-probabilities and a `target` `t` of probabilities, or
/// `exp(t) (t - x)` with `log_target` (the target given as
/// log-probabilities).
///
/// Input and target: any shape, the same for both; both receive gradients
/// (as in PyTorch, the target's gradient is NaN where a probability target
/// is 0). `Mean` averages over every element, like PyTorch's `"mean"`;
/// PyTorch's `"batchmean"` (the KL divergence per sample) is `Sum` divided
/// by the batch size.
///
/// # Panics
/// If the shapes differ; see [`try_kl_div`].
#[track_caller]
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: Reduction, log_target: bool) -> Tensor {
    unwrap(try_kl_div(input, target, reduction, log_target))
}

/// [`kl_div`], or `ShapeMismatch` (op `kl_div`) if the shapes differ.
pub fn try_kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    log_target: bool,
) -> Result<Tensor> {
    const OP: &str = "kl_div";
    check_same(OP, input, target)?;
    let s = input.shape();
    let vals = [dense(OP, input, s)?, dense(OP, target, s)?];
    let loss = if log_target {
        pointwise(
            "KlDivBackward0",
            input,
            target,
            vals,
            |[x, t]| libm::expf(t) * (t - x),
            |[x, t]| {
                let e = libm::expf(t);
                (-e, e * (t - x + 1.0))
            },
        )?
    } else {
        // xlogy(t, t) - t x, with PyTorch's xlogy gradients: log(t) (0 where
        // t = 0) for the first argument, t / t for the second.
        pointwise(
            "KlDivBackward0",
            input,
            target,
            vals,
            |[x, t]| {
                let tlogt = if t == 0.0 { 0.0 } else { t * libm::logf(t) };
                tlogt - t * x
            },
            |[x, t]| {
                let log_t = if t == 0.0 { 0.0 } else { libm::logf(t) };
                // t / t: NaN for t = 0 (and infinite t), as in PyTorch.
                let t_over_t = if t != 0.0 && t.is_finite() {
                    1.0
                } else {
                    f32::NAN
                };
                (-t, log_t + t_over_t - x)
            },
        )?
    };
    reduce(loss, reduction)
}

/// Two-class logistic loss, as `torch.nn.functional.soft_margin_loss`: per
/// element `log(1 + exp(-y x))` for an `input` `x` and a `target` `y` of
/// labels `1` or `-1`, of the same shape.
///
/// Computed as a stable softplus, so large margins of either sign give the
/// exact limit (PyTorch's `log1p(exp(-y x))` overflows to `inf` past
/// `-y x > 88`). As in PyTorch only the input gets a gradient,
/// `-y sigmoid(-y x)`; a target that requires grad is an error.
///
/// # Panics
/// If the shapes differ or the target requires grad; see
/// [`try_soft_margin_loss`].
#[track_caller]
pub fn soft_margin_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    unwrap(try_soft_margin_loss(input, target, reduction))
}

/// [`soft_margin_loss`], or `ShapeMismatch` / `InvalidArgument` (op
/// `soft_margin_loss`).
pub fn try_soft_margin_loss(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
) -> Result<Tensor> {
    const OP: &str = "soft_margin_loss";
    check_same(OP, input, target)?;
    check_constant(
        OP,
        Some(target),
        "the target must not require grad (PyTorch does not differentiate it)",
    )?;
    let s = input.shape();
    let loss = pointwise(
        "SoftMarginLossBackward0",
        input,
        target,
        [dense(OP, input, s)?, dense(OP, target, s)?],
        |[x, y]| -log_sigmoid(y * x),
        |[x, y]| (-y * sigmoid(-y * x), 0.0),
    )?;
    reduce(loss, reduction)
}
