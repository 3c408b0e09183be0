//! Normalisation layers: [`BatchNorm1d`], [`BatchNorm2d`], [`LayerNorm`],
//! [`GroupNorm`], as in `torch.nn`.
//!
//! Each normalises with composed tensor ops (mean, biased variance,
//! `rsqrt`), so gradients with respect to the input and the affine
//! parameters come from autograd. Batch norm's running statistics are
//! buffers behind a lock: `forward` takes `&self` and updates them in
//! training mode.

use alloc::vec::Vec;
use core::fmt;

use super::plan::{Binary, PlanTensor, Planner};
use super::{Module, module::join};
use crate::autograd::no_grad;
use crate::error::{Error, Result, unwrap};
use crate::sync::Mutex;
use crate::tensor::{MAX_RANK, Shape, Tensor};

/// `[1, c, 1, ..]` of rank `rank` (the per-channel broadcast shape).
fn channel_shape(c: usize, rank: usize) -> Vec<usize> {
    let mut s = alloc::vec![1; rank];
    s[1] = c;
    s
}

/// `(x - mean) * rsqrt(var + eps)`.
fn normalize(x: &Tensor, mean: &Tensor, var: &Tensor, eps: f32) -> Result<Tensor> {
    x.try_sub_tensor(mean)?
        .try_mul_tensor(&var.try_add_scalar(eps)?.try_rsqrt()?)
}

/// `y * w + b` with each optional parameter reshaped to `shape`.
fn affine(y: Tensor, w: Option<&Tensor>, b: Option<&Tensor>, shape: &[usize]) -> Result<Tensor> {
    let y = match w {
        Some(w) => y.try_mul_tensor(&w.try_reshape(shape)?)?,
        None => y,
    };
    match b {
        Some(b) => y.try_add_tensor(&b.try_reshape(shape)?),
        None => Ok(y),
    }
}

// -------------------------------------------------------------- batch norm

/// Options of the batch-norm layers, with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Added to the variance before the square root (default `1e-5`).
    pub eps: f32,
    /// Weight of the new batch in the running statistics (default
    /// `Some(0.1)`); `None` keeps a cumulative average (weight `1 /
    /// num_batches_tracked`).
    pub momentum: Option<f32>,
    /// Learnable per-channel `weight` (ones) and `bias` (zeros) (default
    /// true).
    pub affine: bool,
    /// Keep running statistics, used in evaluation mode (default true).
    /// Without them batch statistics are used in both modes and the layer
    /// has no buffers.
    pub track_running_stats: bool,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// Running statistics of a batch-norm layer.
#[derive(Clone)]
struct Running {
    mean: Tensor,
    var: Tensor,
    /// 0-D count of training batches (an integer held as f32).
    num_batches_tracked: Tensor,
}

/// The body shared by [`BatchNorm1d`] and [`BatchNorm2d`].
struct BatchNorm {
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    running: Option<Mutex<Running>>,
    opts: BatchNormOptions,
    num_features: usize,
    training: bool,
}

impl Clone for BatchNorm {
    fn clone(&self) -> Self {
        BatchNorm {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            running: self.running.as_ref().map(|r| Mutex::new(r.lock().clone())),
            opts: self.opts,
            num_features: self.num_features,
            training: self.training,
        }
    }
}

const BUFFERS: [&str; 3] = ["running_mean", "running_var", "num_batches_tracked"];

impl BatchNorm {
    fn try_new(op: &'static str, num_features: usize, opts: BatchNormOptions) -> Result<Self> {
        if opts.eps.is_nan() || opts.eps < 0.0 || opts.momentum.is_some_and(|m| !m.is_finite()) {
            return Err(Error::InvalidArgument {
                op,
                detail: "eps must be >= 0 and momentum finite",
            });
        }
        let (weight, bias) = if opts.affine {
            (
                Some(Tensor::try_ones([num_features])?.with_requires_grad()),
                Some(Tensor::try_zeros([num_features])?.with_requires_grad()),
            )
        } else {
            (None, None)
        };
        let running = if opts.track_running_stats {
            Some(Mutex::new(Running {
                mean: Tensor::try_zeros([num_features])?,
                var: Tensor::try_ones([num_features])?,
                num_batches_tracked: Tensor::try_zeros([0usize; 0])?,
            }))
        } else {
            None
        };
        Ok(BatchNorm {
            weight,
            bias,
            running,
            opts,
            num_features,
            training: true,
        })
    }

    fn forward(
        &self,
        op: &'static str,
        x: &Tensor,
        ranks: &[usize],
        expects: &'static str,
    ) -> Result<Tensor> {
        let c = self.num_features;
        if !ranks.contains(&x.rank()) || x.dims()[1] != c {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().into(),
                rhs: (Shape::new(&[c])?).into(),
                detail: expects,
            });
        }
        let rank = x.rank();
        let dims: Vec<usize> = core::iter::once(0).chain(2..rank).collect();
        let shape = channel_shape(c, rank);
        let y = match &self.running {
            Some(r) if !self.training => {
                let (mean, var) = {
                    let r = r.lock();
                    (r.mean.clone(), r.var.clone())
                };
                normalize(
                    x,
                    &mean.try_reshape(&shape)?,
                    &var.try_reshape(&shape)?,
                    self.opts.eps,
                )?
            }
            running => {
                let count = x.numel() / c.max(1);
                if self.training && count <= 1 {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: x.shape().into(),
                        rhs: (Shape::new(&[c])?).into(),
                        detail: "expected more than 1 value per channel when training",
                    });
                }
                let mean = x.try_mean_dims(&dims, true)?;
                let var = x.try_var_dims(&dims, 0, true)?;
                // Locked until the new statistics are committed, which is
                // only once the output exists: a failed forward leaves them
                // as they were.
                let mut stats = running.as_ref().filter(|_| self.training).map(|r| r.lock());
                let new = match &stats {
                    Some(r) => Some(self.update(r, &mean, &var, count)?),
                    None => None,
                };
                let y = normalize(x, &mean, &var, self.opts.eps)?;
                let y = affine(y, self.weight.as_ref(), self.bias.as_ref(), &shape)?;
                if let (Some(r), Some(new)) = (stats.as_mut(), new) {
                    **r = new;
                }
                return Ok(y);
            }
        };
        affine(y, self.weight.as_ref(), self.bias.as_ref(), &shape)
    }

    /// The memory plan of [`forward`](Self::forward) (see
    /// [`crate::nn::plan`]): batch statistics (mean, variance, the new running
    /// statistics) in training, the running ones in evaluation, then
    /// [`Planner::normalize`] and the affine step.
    fn plan(
        &self,
        p: &mut Planner,
        x: &PlanTensor,
        ranks: &[usize],
        expects: &'static str,
    ) -> Result<PlanTensor> {
        let c = self.num_features;
        let rank = x.dims().len();
        if !ranks.contains(&rank) || x.dims()[1] != c {
            return Err(Error::InvalidArgument {
                op: "plan",
                detail: expects,
            });
        }
        let dims: Vec<usize> = core::iter::once(0).chain(2..rank).collect();
        let shape = channel_shape(c, rank);
        let y = match &self.running {
            Some(r) if !self.training => {
                let (mean, var) = {
                    let r = r.lock();
                    (r.mean.clone(), r.var.clone())
                };
                let (m, v) = (p.param(&mean)?, p.param(&var)?);
                let (mr, vr) = (p.reshape(&m, &shape)?, p.reshape(&v, &shape)?);
                let y = p.normalize(x, &mr, &vr)?;
                for t in [m, v, mr, vr] {
                    p.release(t);
                }
                y
            }
            running => {
                let mean = p.reduce(x, &dims, true, true)?;
                let var = p.var(x, &dims)?;
                // The new running statistics, held until the output exists.
                let mut new = Vec::new();
                if running.is_some() && self.training {
                    new.push(p.alloc(&[c])?);
                    new.push(p.alloc(&[c])?);
                    new.push(p.alloc(&[])?);
                }
                let y = p.normalize(x, &mean, &var)?;
                let y = self.plan_affine(p, y, &shape)?;
                for t in new.into_iter().chain([mean, var]) {
                    p.release(t);
                }
                return Ok(y);
            }
        };
        self.plan_affine(p, y, &shape)
    }

    /// The plan of [`affine`]: a broadcast product with the weight and sum
    /// with the bias, each reshaped to `shape`. As in `affine`, every
    /// intermediate result (a shadowed binding there) lives until it returns.
    fn plan_affine(&self, p: &mut Planner, y: PlanTensor, shape: &[usize]) -> Result<PlanTensor> {
        let mut held = Vec::new();
        let mut y = y;
        for (param, op) in [(&self.weight, Binary::Mul), (&self.bias, Binary::Add)] {
            if let Some(t) = param {
                let t = p.param(t)?;
                let r = p.reshape(&t, shape)?;
                let out = p.binary(&y, &r, op)?;
                p.release(t);
                p.release(r);
                held.push(core::mem::replace(&mut y, out));
            }
        }
        for h in held {
            p.release(h);
        }
        Ok(y)
    }

    /// The running statistics after this batch: `running = (1 - f) running
    /// + f batch` with the unbiased batch variance, `f` the momentum or
    /// `1 / num_batches_tracked`.
    fn update(&self, r: &Running, mean: &Tensor, var: &Tensor, count: usize) -> Result<Running> {
        no_grad(|| {
            let c = [self.num_features];
            let mean = mean.detach().try_reshape(c)?;
            let var = var
                .detach()
                .try_reshape(c)?
                .try_mul_scalar(count as f32 / (count - 1) as f32)?;
            let n = r.num_batches_tracked.try_item()? + 1.0;
            let f = self.opts.momentum.unwrap_or(1.0 / n);
            let blend = |old: &Tensor, new: &Tensor| {
                new.try_mul_scalar(f)?
                    .try_add_tensor(&old.try_mul_scalar(1.0 - f)?)
            };
            Ok(Running {
                mean: blend(&r.mean, &mean)?,
                var: blend(&r.var, &var)?,
                num_batches_tracked: Tensor::try_full([0usize; 0], n)?,
            })
        })
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let Some(w) = &self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        if let Some(w) = &mut self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn buffers(&self) -> Option<[Tensor; 3]> {
        let r = self.running.as_ref()?.lock();
        Some([r.mean.clone(), r.var.clone(), r.num_batches_tracked.clone()])
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let Some(bufs) = self.buffers() {
            for (name, t) in BUFFERS.iter().zip(&bufs) {
                f(&join(prefix, name), t);
            }
        }
    }

    fn set_buffer(&mut self, op: &'static str, name: &str, value: &Tensor) -> Result<bool> {
        let Some(r) = &self.running else {
            return Ok(false);
        };
        let Some(i) = BUFFERS.iter().position(|&b| b == name) else {
            return Ok(false);
        };
        let mut r = r.lock();
        let slot = match i {
            0 => &mut r.mean,
            1 => &mut r.var,
            _ => &mut r.num_batches_tracked,
        };
        if value.dims() != slot.dims() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: slot.shape().into(),
                rhs: value.shape().into(),
                detail: "a buffer must keep its shape",
            });
        }
        *slot = value.detach().try_contiguous()?;
        Ok(true)
    }
}

macro_rules! batch_norm {
    ($(#[$doc:meta])* $name:ident, $op:literal, $ranks:expr, $expects:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(BatchNorm);

        impl $name {
            /// A layer over `num_features` channels with PyTorch's defaults
            /// (eps `1e-5`, momentum 0.1, affine, running statistics).
            ///
            /// # Panics
            /// If memory runs out.
            #[track_caller]
            pub fn new(num_features: usize) -> Self {
                unwrap(Self::try_new(num_features, BatchNormOptions::default()))
            }

            /// A layer with the given options.
            ///
            /// # Panics
            /// On invalid options; see [`try_new`](Self::try_new).
            #[track_caller]
            pub fn with_options(num_features: usize, opts: BatchNormOptions) -> Self {
                unwrap(Self::try_new(num_features, opts))
            }

            /// A layer: `weight` ones, `bias` zeros, `running_mean` zeros,
            /// `running_var` ones, `num_batches_tracked` 0; or
            /// `InvalidArgument` for a negative or NaN `eps` or a non-finite
            /// momentum.
            pub fn try_new(num_features: usize, opts: BatchNormOptions) -> Result<Self> {
                BatchNorm::try_new($op, num_features, opts).map($name)
            }

            /// The per-channel scale `[C]`, if affine.
            pub fn weight(&self) -> Option<&Tensor> {
                self.0.weight.as_ref()
            }

            /// The per-channel shift `[C]`, if affine.
            pub fn bias(&self) -> Option<&Tensor> {
                self.0.bias.as_ref()
            }

            /// The running mean `[C]`, if tracked.
            pub fn running_mean(&self) -> Option<Tensor> {
                self.0.buffers().map(|[m, _, _]| m)
            }

            /// The running (unbiased) variance `[C]`, if tracked.
            pub fn running_var(&self) -> Option<Tensor> {
                self.0.buffers().map(|[_, v, _]| v)
            }

            /// The number of training batches seen (0-D), if tracked.
            pub fn num_batches_tracked(&self) -> Option<Tensor> {
                self.0.buffers().map(|[_, _, n]| n)
            }

            /// The options.
            pub fn options(&self) -> BatchNormOptions {
                self.0.opts
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($op, "({}, {:?})"), self.0.num_features, self.0.opts)
            }
        }

        impl Module for $name {
            fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
                self.0.forward($op, x, &$ranks, $expects)
            }
            fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
                self.0.plan(p, x, &$ranks, $expects)
            }
            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                self.0.visit_params(prefix, f)
            }
            fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
                self.0.visit_params_mut(prefix, f)
            }
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                self.0.visit_buffers(prefix, f)
            }
            fn set_buffer(&mut self, name: &str, value: &Tensor) -> Result<bool> {
                self.0.set_buffer($op, name, value)
            }
            fn set_training(&mut self, training: bool) {
                self.0.training = training;
            }
            fn is_training(&self) -> bool {
                self.0.training
            }
        }
    };
}

batch_norm!(
    /// Batch normalisation over `[N, C]` or `[N, C, L]`, as
    /// `torch.nn.BatchNorm1d`: `y = (x - mean) / sqrt(var + eps) * weight +
    /// bias` per channel, output of the input's shape. In training mode the
    /// statistics are the batch's (over N and L, biased variance) and the
    /// running statistics are updated (with the unbiased variance); in
    /// evaluation mode the running statistics are used. Parameters `weight`,
    /// `bias`; buffers `running_mean`, `running_var`, `num_batches_tracked`.
    /// Errors name `BatchNorm1d` and the input's shape and `[C]`.
    BatchNorm1d, "BatchNorm1d", [2, 3], "expects an input [N, C] or [N, C, L] with C = num_features"
);

batch_norm!(
    /// Batch normalisation over `[N, C, H, W]`, as `torch.nn.BatchNorm2d`;
    /// statistics per channel over N, H and W. See [`BatchNorm1d`] for the
    /// training and evaluation behaviour, parameters and buffers. Errors name
    /// `BatchNorm2d` and the input's shape and `[C]`.
    BatchNorm2d, "BatchNorm2d", [4], "expects an input [N, C, H, W] with C = num_features"
);

// -------------------------------------------------------------- layer norm

/// Options of [`LayerNorm`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormOptions {
    /// Added to the variance before the square root (default `1e-5`).
    pub eps: f32,
    /// Learnable `weight` (ones) and, if `bias`, `bias` (zeros) of
    /// `normalized_shape` (default true).
    pub elementwise_affine: bool,
    /// Whether the affine part has a bias (default true).
    pub bias: bool,
}

impl Default for LayerNormOptions {
    fn default() -> Self {
        LayerNormOptions {
            eps: 1e-5,
            elementwise_affine: true,
            bias: true,
        }
    }
}

/// Layer normalisation over the trailing dimensions, as
/// `torch.nn.LayerNorm(normalized_shape)`: input `[.., *normalized_shape]`,
/// output of the same shape, `y = (x - mean) / sqrt(var + eps) * weight +
/// bias` with mean and biased variance over the trailing
/// `normalized_shape.len()` dimensions. Parameters `weight` and `bias` of
/// `normalized_shape`. Errors name `LayerNorm` and the input's shape and
/// `normalized_shape`.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale of `normalized_shape`, if elementwise affine.
    pub weight: Option<Tensor>,
    /// Shift of `normalized_shape`, if elementwise affine with a bias.
    pub bias: Option<Tensor>,
    normalized_shape: Shape,
    eps: f32,
}

impl LayerNorm {
    /// A layer with PyTorch's defaults (eps `1e-5`, affine with bias).
    ///
    /// # Panics
    /// On an invalid shape; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        unwrap(Self::try_new(normalized_shape, LayerNormOptions::default()))
    }

    /// A layer with the given options.
    ///
    /// # Panics
    /// On invalid arguments; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_options(normalized_shape: &[usize], opts: LayerNormOptions) -> LayerNorm {
        unwrap(Self::try_new(normalized_shape, opts))
    }

    /// A layer, or `InvalidArgument` naming `LayerNorm` for an empty
    /// `normalized_shape` or a negative or NaN `eps` (`RankTooHigh` past
    /// [`MAX_RANK`] dimensions).
    pub fn try_new(normalized_shape: &[usize], opts: LayerNormOptions) -> Result<LayerNorm> {
        let op = "LayerNorm";
        if normalized_shape.is_empty() || opts.eps.is_nan() || opts.eps < 0.0 {
            return Err(Error::InvalidArgument {
                op,
                detail: "normalized_shape must have at least one dimension and eps must be >= 0",
            });
        }
        if normalized_shape.len() > MAX_RANK {
            return Err(Error::RankTooHigh {
                op,
                rank: normalized_shape.len(),
            });
        }
        let shape = Shape::new(normalized_shape)?;
        let weight = if opts.elementwise_affine {
            Some(Tensor::try_ones(normalized_shape)?.with_requires_grad())
        } else {
            None
        };
        let bias = if opts.elementwise_affine && opts.bias {
            Some(Tensor::try_zeros(normalized_shape)?.with_requires_grad())
        } else {
            None
        };
        Ok(LayerNorm {
            weight,
            bias,
            normalized_shape: shape,
            eps: opts.eps,
        })
    }

    /// The normalised trailing shape.
    pub fn normalized_shape(&self) -> &[usize] {
        self.normalized_shape.dims()
    }
}

impl Module for LayerNorm {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.normalized_shape.rank();
        let r = x.rank();
        if r < k || x.dims()[r - k..] != *self.normalized_shape.dims() {
            return Err(Error::ShapeMismatch {
                op: "LayerNorm",
                lhs: x.shape().into(),
                rhs: (self.normalized_shape.clone()).into(),
                detail: "the input's trailing dimensions must equal normalized_shape",
            });
        }
        let dims: Vec<usize> = (r - k..r).collect();
        let mean = x.try_mean_dims(&dims, true)?;
        let var = x.try_var_dims(&dims, 0, true)?;
        let y = normalize(x, &mean, &var, self.eps)?;
        affine(
            y,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.normalized_shape.dims(),
        )
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let Some(w) = &self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        if let Some(w) = &mut self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}

// -------------------------------------------------------------- group norm

/// Group normalisation, as `torch.nn.GroupNorm(num_groups, num_channels)`:
/// input `[N, C, ..]`, output of the same shape; the channels are split into
/// `num_groups` groups and each sample's group is normalised over its
/// channels and positions (biased variance), then scaled and shifted per
/// channel. Parameters `weight` (ones) and `bias` (zeros), `[C]`, if affine.
/// The same in training and evaluation. Errors name `GroupNorm`.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    /// Per-channel scale `[C]`, if affine.
    pub weight: Option<Tensor>,
    /// Per-channel shift `[C]`, if affine.
    pub bias: Option<Tensor>,
    num_groups: usize,
    num_channels: usize,
    eps: f32,
}

impl GroupNorm {
    /// A layer with PyTorch's defaults (eps `1e-5`, affine).
    ///
    /// # Panics
    /// On invalid arguments; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(num_groups: usize, num_channels: usize) -> GroupNorm {
        unwrap(Self::try_new(num_groups, num_channels, 1e-5, true))
    }

    /// A layer, or `InvalidArgument` naming `GroupNorm` if `num_groups` is 0
    /// or does not divide `num_channels`, or `eps` is negative or NaN.
    pub fn try_new(
        num_groups: usize,
        num_channels: usize,
        eps: f32,
        affine: bool,
    ) -> Result<GroupNorm> {
        let bad = |detail| {
            Err(Error::InvalidArgument {
                op: "GroupNorm",
                detail,
            })
        };
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return bad("num_channels must be divisible by num_groups (and num_groups positive)");
        }
        if eps.is_nan() || eps < 0.0 {
            return bad("eps must be >= 0");
        }
        let (weight, bias) = if affine {
            (
                Some(Tensor::try_ones([num_channels])?.with_requires_grad()),
                Some(Tensor::try_zeros([num_channels])?.with_requires_grad()),
            )
        } else {
            (None, None)
        };
        Ok(GroupNorm {
            weight,
            bias,
            num_groups,
            num_channels,
            eps,
        })
    }
}

impl Module for GroupNorm {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.num_channels;
        if x.rank() < 2 || x.dims()[1] != c {
            return Err(Error::ShapeMismatch {
                op: "GroupNorm",
                lhs: x.shape().into(),
                rhs: (Shape::new(&[c])?).into(),
                detail: "expects an input [N, C, ..] with C = num_channels",
            });
        }
        let n = x.dims()[0];
        let per_group = x.numel() / n.max(1) / self.num_groups;
        let g = x.try_reshape([n, self.num_groups, per_group])?;
        let mean = g.try_mean_dims([2], true)?;
        let var = g.try_var_dims([2], 0, true)?;
        let y = normalize(&g, &mean, &var, self.eps)?.try_reshape(x.shape())?;
        let shape = channel_shape(c, x.rank());
        affine(y, self.weight.as_ref(), self.bias.as_ref(), &shape)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let Some(w) = &self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), b);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        if let Some(w) = &mut self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}
