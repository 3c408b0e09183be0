//! Loss functions, named and defined as in `torch.nn.functional`.
//!
//! | function | input | target |
//! |---|---|---|
//! | [`mse_loss`], [`l1_loss`], [`smooth_l1_loss`], [`huber_loss`] | any shape | the input's shape |
//! | [`binary_cross_entropy`] | probabilities in `[0, 1]`, any shape | the input's shape |
//! | [`binary_cross_entropy_with_logits`] | logits, any shape | the input's shape |
//! | [`cross_entropy`] | logits `[C]` or `[N, C, d1, ...]` | class indices `[]` / `[N, d1, ...]`, or class probabilities of the input's shape |
//! | [`nll_loss`] | log-probabilities `[C]` or `[N, C, d1, ...]` | class indices `[]` / `[N, d1, ...]` |
//!
//! Every loss takes a [`Reduction`]: `Mean` (the default) and `Sum` give a
//! 0-D tensor; `None` gives one loss per element (per sample for the class
//! losses: the target's shape). Each has a `try_` form returning an error that
//! names the loss and the shapes involved, and a plain form that panics with
//! the same message. Class indices are f32 tensors holding whole numbers.
//!
//! Unlike PyTorch, which broadcasts `mse_loss`/`l1_loss` operands of different
//! shapes with a warning, a target of another shape is an error here.
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
use alloc::vec::Vec;

use crate::autograd::{is_grad_enabled, needs_grad};
use crate::error::{Error, Result, unwrap};
use crate::ops::unary::f::sigmoid;
use crate::ops::{grad_if, kern};
use crate::tensor::{Shape, Tensor};

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
        lhs: input.shape().clone(),
        rhs: target.shape().clone(),
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
        let g = dense(name, g, &shape)?;
        let gs = slice(&g);
        let s: [&[f32]; K] = core::array::from_fn(|k| slice(&vals[k]));
        let side = |which: usize| {
            Tensor::try_from_fill(shape.clone(), |o| {
                for (i, o) in o.iter_mut().enumerate() {
                    let d = grad(at(&s, i));
                    *o = gs[i] * if which == 0 { d.0 } else { d.1 };
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

// ------------------------------------------------------- class losses

/// Options of [`cross_entropy`] (PyTorch's keyword arguments). The default
/// matches PyTorch: no weight, `ignore_index = Some(-100)`, `Mean`, no label
/// smoothing.
#[derive(Clone, Debug)]
pub struct CrossEntropyOptions {
    /// Per-class weight `[C]`.
    pub weight: Option<Tensor>,
    /// Class-index targets equal to this value contribute nothing (neither to
    /// the loss nor to the `Mean` denominator). Only for index targets; with
    /// class probabilities a non-negative value is an error (as in PyTorch).
    pub ignore_index: Option<i64>,
    /// How the per-sample losses are combined.
    pub reduction: Reduction,
    /// In `[0, 1]`: the target becomes `(1 - s) * target + s / C`.
    pub label_smoothing: f32,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            weight: None,
            ignore_index: Some(-100),
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
        }
    }
}

impl CrossEntropyOptions {
    /// Sets [`weight`](Self::weight).
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets [`ignore_index`](Self::ignore_index).
    pub fn ignore_index(mut self, ignore_index: Option<i64>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Sets [`reduction`](Self::reduction).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets [`label_smoothing`](Self::label_smoothing).
    pub fn label_smoothing(mut self, label_smoothing: f32) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }
}

/// Options of [`nll_loss`] (PyTorch's keyword arguments). The default
/// matches PyTorch: no weight, `ignore_index = Some(-100)`, `Mean`.
#[derive(Clone, Debug)]
pub struct NllLossOptions {
    /// Per-class weight `[C]`.
    pub weight: Option<Tensor>,
    /// Targets equal to this value contribute nothing (neither to the loss
    /// nor to the `Mean` denominator).
    pub ignore_index: Option<i64>,
    /// How the per-sample losses are combined.
    pub reduction: Reduction,
}

impl Default for NllLossOptions {
    fn default() -> Self {
        NllLossOptions {
            weight: None,
            ignore_index: Some(-100),
            reduction: Reduction::Mean,
        }
    }
}

impl NllLossOptions {
    /// Sets [`weight`](Self::weight).
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Sets [`ignore_index`](Self::ignore_index).
    pub fn ignore_index(mut self, ignore_index: Option<i64>) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Sets [`reduction`](Self::reduction).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Layout of a class loss's input: `[C]` (one row) or `[N, C, d1, ...]`,
/// handled as `rows` rows of `c` classes with the class dimension last.
struct Classes {
    c: usize,
    rows: usize,
    rank: usize,
    /// The input's shape without the class dimension (per-sample losses).
    sample: Shape,
}

impl Classes {
    fn of(op: &'static str, input: &Tensor) -> Result<Classes> {
        let rank = input.rank();
        if rank == 0 {
            return Err(Error::InvalidArgument {
                op,
                detail: "the input must be [C] or [N, C, d1, ...], not 0-D",
            });
        }
        let cd = usize::from(rank > 1);
        let mut sample = input.shape().clone();
        let c = sample.remove(cd);
        Ok(Classes {
            c,
            rows: sample.numel(),
            rank,
            sample,
        })
    }

    /// Element `c` of row `r` in row order.
    #[inline]
    fn row<'a>(&self, s: &'a [f32], r: usize) -> &'a [f32] {
        &s[r * self.c..(r + 1) * self.c]
    }

    /// An input-shaped `t` as detached contiguous rows (class dimension
    /// moved last).
    fn permute_rows(&self, op: &'static str, t: &Tensor) -> Result<Tensor> {
        if self.rank <= 2 {
            return dense(op, t, t.shape());
        }
        let mut perm = [0usize; crate::tensor::MAX_RANK];
        for (i, p) in perm.iter_mut().enumerate().take(self.rank - 1).skip(1) {
            *p = i + 1;
        }
        perm[self.rank - 1] = 1;
        t.with_layout(t.layout.permute(&perm[..self.rank]))
            .try_materialize()
    }

    /// Rows written by `fill` (row order), returned in the input's layout.
    fn unpermute_rows(&self, input_shape: &Shape, fill: impl FnOnce(&mut [f32])) -> Result<Tensor> {
        if self.rank <= 2 {
            return Tensor::try_from_fill(input_shape.clone(), fill);
        }
        let mut row_shape = self.sample.clone();
        row_shape.push(self.c)?;
        let rows = Tensor::try_from_fill(row_shape, fill)?;
        // [N, d1, ..., C] -> [N, C, d1, ...]
        let mut perm = [0usize; crate::tensor::MAX_RANK];
        perm[1] = self.rank - 1;
        for (i, p) in perm.iter_mut().enumerate().take(self.rank).skip(2) {
            *p = i - 1;
        }
        rows.with_layout(rows.layout.permute(&perm[..self.rank]))
            .try_materialize()
    }

    /// `ShapeMismatch` for an index target of the wrong shape.
    fn check_index_target(&self, op: &'static str, input: &Tensor, target: &Tensor) -> Result<()> {
        if target.dims() == self.sample.dims() {
            return Ok(());
        }
        Err(Error::ShapeMismatch {
            op,
            lhs: input.shape().clone(),
            rhs: target.shape().clone(),
            detail: "class indices need the input's shape without the class dimension \
                     ([N, d1, ...] for an [N, C, d1, ...] input, [] for [C])",
        })
    }

    /// `ShapeMismatch` unless `weight` is `[C]`.
    fn check_weight(
        &self,
        op: &'static str,
        input: &Tensor,
        weight: Option<&Tensor>,
    ) -> Result<()> {
        match weight {
            Some(w) if w.dims() != [self.c] => Err(Error::ShapeMismatch {
                op,
                lhs: input.shape().clone(),
                rhs: w.shape().clone(),
                detail: "the weight needs one entry per class: shape [C]",
            }),
            _ => Ok(()),
        }
    }
}

/// Marks an ignored target in the index list.
const IGNORED: usize = usize::MAX;

/// The class indices of `target` in row order (`IGNORED` for
/// `ignore_index`), each a whole number in `0..c`.
fn class_indices(
    op: &'static str,
    target: &Tensor,
    c: usize,
    ignore: Option<i64>,
) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(target.numel());
    for v in target.values() {
        if !v.is_finite() || libm::truncf(v) != v {
            return Err(Error::InvalidArgument {
                op,
                detail: "class indices must be whole numbers (f32 values without a fraction)",
            });
        }
        if ignore.is_some_and(|i| v as i64 == i) {
            out.push(IGNORED);
        } else if v < 0.0 || v >= c as f32 {
            return Err(Error::IndexOutOfRange {
                op,
                index: v as isize,
                size: c,
            });
        } else {
            out.push(v as usize);
        }
    }
    Ok(out)
}

/// The per-sample `losses` reduced as asked; `denom` divides the sum for
/// `Mean`.
fn class_output(
    losses: Vec<f32>,
    sample: &Shape,
    reduction: Reduction,
    denom: f32,
) -> Result<Tensor> {
    match reduction {
        Reduction::None => Tensor::from_vec(losses, sample),
        Reduction::Sum => Ok(Tensor::scalar(kern::sum(&losses))),
        Reduction::Mean => Ok(Tensor::scalar(kern::sum(&losses) / denom)),
    }
}

/// The factor each row's gradient is scaled by: the output gradient `g`
/// (per sample for `None`), divided by `denom` for `Mean`.
fn row_scales(
    op: &'static str,
    g: &Tensor,
    sample: &Shape,
    reduction: Reduction,
    denom: f32,
) -> Result<Vec<f32>> {
    Ok(match reduction {
        Reduction::None => dense(op, g, sample)?.to_vec(),
        Reduction::Sum => vec![g.try_item()?; sample.numel()],
        Reduction::Mean => vec![g.try_item()? / denom; sample.numel()],
    })
}

/// Cross-entropy between logits and a target, as
/// `torch.nn.functional.cross_entropy`.
///
/// `input` holds unnormalised logits `[N, C]`, `[N, C, d1, ...]` or `[C]`
/// (one sample). The target is either
/// - class indices (f32 whole numbers in `0..C`, or `ignore_index`) of the
///   input's shape without the class dimension: `[N]`, `[N, d1, ...]`, `[]`;
///   per-sample loss `-(1 - s) w[y] log p[y] - (s / C) sum_c w[c] log p[c]`
///   with `p = softmax(input)` over the class dimension and `s` the label
///   smoothing; `Mean` divides by the total weight `w[y]` of the
///   non-ignored samples (their count without weights). Indices get no
///   gradient.
/// - class probabilities of the input's shape (as PyTorch, the target is
///   taken as probabilities exactly when the shapes are equal); per-sample
///   loss `-sum_c w[c] q[c] log p[c]` with `q = (1 - s) target + s / C`;
///   `Mean` divides by the number of samples. The target and the weight get
///   gradients.
///
/// The output is 0-D for `Mean`/`Sum` and of the sample shape (`[N, d1, ...]`,
/// or `[]`) for `None`. Computed fused and numerically stable (see the
/// [module docs](self)); an empty batch gives NaN for `Mean`, 0 for `Sum`.
///
/// # Panics
/// On shape errors, class indices out of range or invalid options; see
/// [`try_cross_entropy`].
#[track_caller]
pub fn cross_entropy(input: &Tensor, target: &Tensor, options: &CrossEntropyOptions) -> Tensor {
    unwrap(try_cross_entropy(input, target, options))
}

/// [`cross_entropy`], or, with op `cross_entropy`: `ShapeMismatch` (target
/// neither `[N, d1, ...]` nor the input's shape; weight not `[C]`),
/// `IndexOutOfRange` (a class index outside `0..C`, naming the index and the
/// number of classes), `InvalidArgument` (0-D input, non-integral indices,
/// label smoothing outside `[0, 1]`, a non-negative `ignore_index` with
/// probabilities, a weight that requires grad with indices).
pub fn try_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    options: &CrossEntropyOptions,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let cls = Classes::of(OP, input)?;
    let eps = options.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "label_smoothing must be between 0.0 and 1.0",
        });
    }
    let weight = options.weight.as_ref();
    cls.check_weight(OP, input, weight)?;
    if target.dims() == input.dims() {
        if options.ignore_index.is_some_and(|i| i >= 0) {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: "ignore_index is not supported for class-probability targets",
            });
        }
        return cross_entropy_probs(cls, input, target, weight, options.reduction, eps);
    }
    cls.check_index_target(OP, input, target)?;
    check_constant(
        OP,
        weight,
        "weight must not require grad with class-index targets (PyTorch does not differentiate it)",
    )?;
    let ys = class_indices(OP, target, cls.c, options.ignore_index)?;
    cross_entropy_indices(cls, input, ys, weight, options.reduction, eps)
}

/// `out = (x - max) - log(sum(exp(x - max)))`, PyTorch's order of
/// operations: subtracting the maximum first keeps full precision for large
/// logits (`x - (max + log(sum))` would round `max + log(sum)` at the
/// magnitude of `max`). A row with NaN gives NaN; an all `-inf` row NaN.
fn log_softmax_row(x: &[f32], out: &mut [f32]) {
    let m = x
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    kern::map(x, out, |v| libm::expf(v - m));
    let log_sum = libm::logf(kern::sum(out));
    kern::map(x, out, |v| (v - m) - log_sum);
}

/// Log-softmax of every row of `x` (row order).
fn log_softmax_rows(cls: &Classes, x: &[f32]) -> Result<Tensor> {
    Tensor::try_from_fill(Shape::try_for("cross_entropy", &[x.len()])?, |o| {
        for r in 0..cls.rows {
            log_softmax_row(cls.row(x, r), &mut o[r * cls.c..(r + 1) * cls.c]);
        }
    })
}

fn cross_entropy_indices(
    cls: Classes,
    input: &Tensor,
    ys: Vec<usize>,
    weight: Option<&Tensor>,
    reduction: Reduction,
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let c = cls.c;
    let x = cls.permute_rows(OP, input)?;
    let logp = log_softmax_rows(&cls, slice(&x))?;
    drop(x);
    let lp = slice(&logp);
    let w: Option<Vec<f32>> = weight.map(Tensor::to_vec);
    let wt = |w: &Option<Vec<f32>>, k: usize| w.as_ref().map_or(1.0, |w| w[k]);
    // Target distribution of a row with class y: a * w[y] at y plus
    // b * w[j] everywhere.
    let a = 1.0 - eps;
    let b = eps / c as f32;
    let mut losses = vec![0.0f32; cls.rows];
    let mut denom = 0.0f64;
    for (r, (&y, l)) in ys.iter().zip(losses.iter_mut()).enumerate() {
        if y == IGNORED {
            continue;
        }
        let row = cls.row(lp, r);
        let wy = wt(&w, y);
        denom += f64::from(wy);
        let mut v = -(a * wy * row[y]);
        if eps > 0.0 {
            let smooth: f32 = match &w {
                Some(w) => row.iter().zip(w).map(|(l, w)| w * l).sum(),
                None => kern::sum(row),
            };
            v -= b * smooth;
        }
        *l = v;
    }
    let denom = denom as f32;
    let out = class_output(losses, &cls.sample, reduction, denom)?;
    if !needs_grad(&[input]) {
        return Ok(out);
    }
    let shape = input.shape().clone();
    let lp = logp; // saved log-softmax (detached)
    Ok(
        out.record("CrossEntropyLossBackward0", &[input], move |g, _| {
            let scale = row_scales(OP, g, &cls.sample, reduction, denom)?;
            let lp = slice(&lp);
            let wsum: f32 = w.as_ref().map_or(c as f32, |w| w.iter().sum());
            let grad = cls.unpermute_rows(&shape, |o| {
                for (r, (&y, &s)) in ys.iter().zip(&scale).enumerate() {
                    let out = &mut o[r * c..(r + 1) * c];
                    if y == IGNORED {
                        out.fill(0.0);
                        continue;
                    }
                    let row = cls.row(lp, r);
                    let ay = a * wt(&w, y);
                    let total = ay + b * wsum;
                    for (j, (o, &l)) in out.iter_mut().zip(row).enumerate() {
                        *o = libm::expf(l) * total - b * wt(&w, j);
                    }
                    out[y] -= ay;
                    for o in out.iter_mut() {
                        *o *= s;
                    }
                }
            })?;
            Ok(vec![Some(grad)])
        }),
    )
}

fn cross_entropy_probs(
    cls: Classes,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let c = cls.c;
    let x = cls.permute_rows(OP, input)?;
    let logp = log_softmax_rows(&cls, slice(&x))?;
    drop(x);
    let a = 1.0 - eps;
    let b = eps / c as f32;
    // The smoothed target q, in row order.
    let q = {
        let t = cls.permute_rows(OP, target)?;
        if eps > 0.0 {
            Tensor::try_from_fill(t.shape().clone(), |o| {
                kern::map(slice(&t), o, |v| v * a + b);
            })?
        } else {
            t
        }
    };
    let w: Option<Vec<f32>> = weight.map(Tensor::to_vec);
    let (lp, qs) = (slice(&logp), slice(&q));
    let mut losses = vec![0.0f32; cls.rows];
    let mut prod = vec![0.0f32; c];
    for (r, l) in losses.iter_mut().enumerate() {
        let (lr, qr) = (cls.row(lp, r), cls.row(qs, r));
        kern::zip(lr, qr, &mut prod, |l, q| l * q);
        if let Some(w) = &w {
            kern::zip_inplace(&mut prod, w, |p, w| p * w);
        }
        *l = -kern::sum(&prod);
    }
    let denom = cls.rows as f32;
    let out = class_output(losses, &cls.sample, reduction, denom)?;
    let mut inputs = vec![input, target];
    inputs.extend(weight);
    let inputs = &inputs[..];
    if !needs_grad(inputs) {
        return Ok(out);
    }
    let shape = input.shape().clone();
    let (wt_shape, has_w) = (Shape::try_for(OP, &[c])?, weight.is_some());
    Ok(
        out.record("CrossEntropyLossBackward0", inputs, move |g, need| {
            let scale = row_scales(OP, g, &cls.sample, reduction, denom)?;
            let (lp, qs) = (slice(&logp), slice(&q));
            let wt = |k: usize| w.as_ref().map_or(1.0, |w| w[k]);
            // d/dx_j = s (p_j sum_c w_c q_c - w_j q_j)
            let gx = grad_if(need[0], || {
                cls.unpermute_rows(&shape, |o| {
                    for (r, &s) in scale.iter().enumerate() {
                        let (lr, qr) = (cls.row(lp, r), cls.row(qs, r));
                        let out = &mut o[r * c..(r + 1) * c];
                        let total: f32 = match &w {
                            Some(w) => qr.iter().zip(w).map(|(q, w)| q * w).sum(),
                            None => kern::sum(qr),
                        };
                        for (j, ((o, &l), &q)) in out.iter_mut().zip(lr).zip(qr).enumerate() {
                            *o = s * (libm::expf(l) * total - wt(j) * q);
                        }
                    }
                })
            })?;
            // d/dtarget_j = -s (1 - eps) w_j log p_j
            let gt = grad_if(need[1], || {
                cls.unpermute_rows(&shape, |o| {
                    for (r, &s) in scale.iter().enumerate() {
                        let out = &mut o[r * c..(r + 1) * c];
                        for (j, (o, &l)) in out.iter_mut().zip(cls.row(lp, r)).enumerate() {
                            *o = -s * a * wt(j) * l;
                        }
                    }
                })
            })?;
            // d/dw_j = -sum_r s_r q_rj log p_rj
            let mut grads = vec![gx, gt];
            if has_w {
                grads.push(grad_if(need[2], || {
                    let mut acc = vec![0.0f64; c];
                    for (r, &s) in scale.iter().enumerate() {
                        for ((a, &l), &q) in acc.iter_mut().zip(cls.row(lp, r)).zip(cls.row(qs, r))
                        {
                            *a -= f64::from(s * q * l);
                        }
                    }
                    Tensor::try_from_fill(wt_shape.clone(), |o| {
                        for (o, a) in o.iter_mut().zip(acc) {
                            *o = a as f32;
                        }
                    })
                })?);
            }
            Ok(grads)
        }),
    )
}

/// Negative log-likelihood of class indices under log-probabilities, as
/// `torch.nn.functional.nll_loss`: per-sample loss `-w[y] input[y]`.
///
/// `input` holds log-probabilities `[N, C]`, `[N, C, d1, ...]` or `[C]`;
/// `target` holds class indices (f32 whole numbers in `0..C`, or
/// `ignore_index`) of the input's shape without the class dimension. `Mean`
/// divides by the total weight of the non-ignored targets. The output is 0-D
/// for `Mean`/`Sum`, of the target's shape for `None`. Only the input gets a
/// gradient.
///
/// # Panics
/// On shape errors or class indices out of range; see [`try_nll_loss`].
#[track_caller]
pub fn nll_loss(input: &Tensor, target: &Tensor, options: &NllLossOptions) -> Tensor {
    unwrap(try_nll_loss(input, target, options))
}

/// [`nll_loss`], or, with op `nll_loss`: `ShapeMismatch` (target or weight
/// of the wrong shape), `IndexOutOfRange` (a class index outside `0..C`),
/// `InvalidArgument` (0-D input, non-integral indices, a weight that
/// requires grad).
pub fn try_nll_loss(input: &Tensor, target: &Tensor, options: &NllLossOptions) -> Result<Tensor> {
    const OP: &str = "nll_loss";
    let cls = Classes::of(OP, input)?;
    let weight = options.weight.as_ref();
    cls.check_weight(OP, input, weight)?;
    cls.check_index_target(OP, input, target)?;
    check_constant(
        OP,
        weight,
        "weight must not require grad (PyTorch does not differentiate it)",
    )?;
    let ys = class_indices(OP, target, cls.c, options.ignore_index)?;
    let c = cls.c;
    let w: Option<Vec<f32>> = weight.map(Tensor::to_vec);
    let wt = move |k: usize| w.as_ref().map_or(1.0, |w| w[k]);
    let reduction = options.reduction;
    let x = cls.permute_rows(OP, input)?;
    let xs = slice(&x);
    let mut losses = vec![0.0f32; cls.rows];
    let mut denom = 0.0f64;
    for (r, (&y, l)) in ys.iter().zip(losses.iter_mut()).enumerate() {
        if y != IGNORED {
            denom += f64::from(wt(y));
            *l = -wt(y) * xs[r * c + y];
        }
    }
    drop(x);
    let denom = denom as f32;
    let out = class_output(losses, &cls.sample, reduction, denom)?;
    if !needs_grad(&[input]) {
        return Ok(out);
    }
    let shape = input.shape().clone();
    Ok(out.record("NllLossBackward0", &[input], move |g, _| {
        let scale = row_scales(OP, g, &cls.sample, reduction, denom)?;
        let grad = cls.unpermute_rows(&shape, |o| {
            o.fill(0.0);
            for (r, (&y, &s)) in ys.iter().zip(&scale).enumerate() {
                if y != IGNORED {
                    o[r * c + y] = -wt(y) * s;
                }
            }
        })?;
        Ok(vec![Some(grad)])
    }))
}
