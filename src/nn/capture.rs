//! Captured training steps: one step's kernels recorded once, replayed on
//! every batch without the autograd graph.
//!
//! An eager step builds the graph op by op (a tensor, a node and a backward
//! closure per operation), walks it backward and frees it: for a small model
//! that bookkeeping costs more than the arithmetic (a 64-32-10 MLP at batch
//! 1 spends most of its step there). [`CapturedStep::new`] asks the model
//! to describe its forward pass once ([`Module::capture`]), allocates every
//! activation and gradient buffer for a fixed batch, and
//! [`CapturedStep::step`] then runs forward, loss, backward and the
//! optimizer's update with no graph and no tensor allocation of its own:
//! the only pool memory a step takes is each product's GEMM packing
//! scratch, returned when the product ends (as in the eager operations;
//! with `std`, scratch of at most 4 KiB is on the stack instead), and the
//! optimizer's state on its first update.
//!
//! The kernels are those of the eager operations, called on the same
//! operands in the same order, so a captured step computes the same bits as
//! `zero_grad`, forward, loss, `backward` and [`Optimizer::step`]: the loss,
//! every gradient (left in the parameters' `grad`, replacing what was there)
//! and the updated parameters.
//!
//! What can be captured: [`Sequential`](super::Sequential) chains of
//! [`Linear`](super::Linear) (without LoRA), [`Relu`](super::Relu),
//! [`Sigmoid`](super::Sigmoid) and [`Tanh`](super::Tanh), on an input
//! `[batch, features]`, ending in either loss of [`PlanLoss`]: cross-entropy
//! with class indices (mean, `ignore_index = -100`, no weight or smoothing:
//! the default [`CrossEntropyOptions`](super::loss::CrossEntropyOptions)) or
//! the mean squared error; any [`Optimizer`]. A module that cannot be captured makes
//! [`CapturedStep::new`] fail with `InvalidArgument` (op `capture`); a
//! custom module built from these layers captures by implementing
//! [`Module::capture`] with [`Capture::linear`] and [`Capture::activation`].
//!
//! ```
//! use train_station::Tensor;
//! use train_station::nn::capture::CapturedStep;
//! use train_station::nn::plan::PlanLoss;
//! use train_station::nn::{Linear, Module, Relu, Sequential};
//! use train_station::optim::{Sgd, SgdConfig};
//!
//! let mut model = Sequential::new().with(Linear::new(4, 8)).with(Relu).with(Linear::new(8, 3));
//! let mut opt = Sgd::new(&model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
//! let mut step = CapturedStep::new(&model, 2, 4, PlanLoss::CrossEntropy).unwrap();
//! let x = Tensor::ones([2, 4]);
//! let y = Tensor::from_slice(&[0.0, 2.0], [2]).unwrap();
//! let first = step.step(&mut model, &mut opt, &x, &y).unwrap();
//! let second = step.step(&mut model, &mut opt, &x, &y).unwrap();
//! assert!(second < first);
//! ```

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::Module;
use super::loss::class_index;
use super::plan::PlanLoss;
use crate::error::{Error, Result};
use crate::kernels::gemm::MatRef;
use crate::ops::linear::{linear_into, mat, product_rows};
use crate::ops::reduce::sum_rows_into;
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// An element-wise activation a captured step can run: its forward kernel
/// and its backward from the output, as the eager operation saves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

/// An activation of the captured forward pass: `[batch, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Act {
    index: usize,
    width: usize,
}

impl Act {
    /// Features per row.
    pub fn width(&self) -> usize {
        self.width
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// `y = x W^T + b`; parameter indices.
    Linear {
        x: usize,
        y: usize,
        w: usize,
        b: Option<usize>,
    },
    Act {
        x: usize,
        y: usize,
        f: Activation,
    },
}

impl Op {
    /// The activations it reads and writes.
    fn ends(&self) -> (usize, usize) {
        match *self {
            Op::Linear { x, y, .. } | Op::Act { x, y, .. } => (x, y),
        }
    }
}

/// The recorder [`Module::capture`] describes a forward pass to (see the
/// [module docs](self)).
pub struct Capture {
    rows: usize,
    /// Width of each activation; activation 0 is the input.
    widths: Vec<usize>,
    /// Whether a gradient reaches each activation.
    needs: Vec<bool>,
    ops: Vec<Op>,
    /// Tensor id -> parameter index (in `visit_params` order).
    by_id: BTreeMap<u64, usize>,
    /// Whether each parameter requires grad, at capture.
    trained: Vec<bool>,
    /// Whether an operation already uses each parameter.
    used: Vec<bool>,
}

fn unsupported(detail: &'static str) -> Error {
    Error::InvalidArgument {
        op: "capture",
        detail,
    }
}

impl Capture {
    /// The index of parameter `t`, which no other operation uses (a
    /// parameter used twice would need its gradients summed).
    fn param(&mut self, t: &Tensor) -> Result<usize> {
        let i = self.by_id.get(&t.id()).copied().ok_or(unsupported(
            "a module used a tensor that it does not list as a parameter",
        ))?;
        if core::mem::replace(&mut self.used[i], true) {
            return Err(unsupported(
                "a parameter is used twice (shared or tied weights cannot be captured)",
            ));
        }
        Ok(i)
    }

    fn push(&mut self, width: usize, needs: bool) -> Act {
        self.widths.push(width);
        self.needs.push(needs);
        Act {
            index: self.widths.len() - 1,
            width,
        }
    }

    /// `x.linear(weight, bias)` with the module's own parameters: weight
    /// `[out, in]` (any strides), bias `[out]` (contiguous).
    pub fn linear(&mut self, x: Act, weight: &Tensor, bias: Option<&Tensor>) -> Result<Act> {
        let &[out_f, in_f] = weight.dims() else {
            return Err(unsupported("linear: the weight must be [out, in]"));
        };
        if in_f != x.width {
            return Err(Error::ShapeMismatch {
                op: "capture",
                lhs: [self.rows, x.width][..].into(),
                rhs: weight.shape().into(),
                detail: "linear: the input's width must equal the weight's in_features",
            });
        }
        if bias.is_some_and(|b| b.dims() != [out_f] || !b.is_contiguous()) {
            return Err(unsupported("linear: the bias must be a contiguous [out]"));
        }
        let w = self.param(weight)?;
        let b = bias.map(|b| self.param(b)).transpose()?;
        let needs = self.needs[x.index] || self.trained[w] || b.is_some_and(|b| self.trained[b]);
        let y = self.push(out_f, needs);
        self.ops.push(Op::Linear {
            x: x.index,
            y: y.index,
            w,
            b,
        });
        Ok(y)
    }

    /// The element-wise activation `f` of `x`.
    pub fn activation(&mut self, x: Act, f: Activation) -> Result<Act> {
        let y = self.push(x.width, self.needs[x.index]);
        self.ops.push(Op::Act {
            x: x.index,
            y: y.index,
            f,
        });
        Ok(y)
    }
}

/// One training step of a model, captured for a fixed batch shape and
/// replayed (see the [module docs](self)).
pub struct CapturedStep {
    cap: Capture,
    /// Parameter ids in `visit_params` order, to check the model at replay.
    ids: Vec<u64>,
    /// Activation buffers (index 0, the input, is read from the batch).
    acts: Vec<Option<Tensor>>,
    /// Gradient buffers of the activations that need one.
    grads: Vec<Option<Tensor>>,
    /// Gradient buffers of the trained parameters, handed to their `grad`
    /// after each step and taken back at the next.
    param_grads: Vec<Option<Tensor>>,
    loss: PlanLoss,
    /// Per-row (cross-entropy) or per-element (MSE) losses.
    losses: Tensor,
    /// Cross-entropy's class per row.
    classes: Vec<Option<usize>>,
}

/// PyTorch's default `ignore_index` (that of the default
/// [`CrossEntropyOptions`](super::loss::CrossEntropyOptions)).
const IGNORE_INDEX: i64 = -100;

impl CapturedStep {
    /// Captures `model`'s step on batches of `batch` rows of `features`
    /// values, ending with `loss`: records the forward pass and allocates
    /// every buffer (from the tensor pool: `OutOfMemory` here, not later).
    /// Errors with `InvalidArgument` (op `capture`) if a module cannot be
    /// captured.
    pub fn new(
        model: &dyn Module,
        batch: usize,
        features: usize,
        loss: PlanLoss,
    ) -> Result<CapturedStep> {
        let mut ids = Vec::new();
        let mut shapes = Vec::new();
        let mut trained = Vec::new();
        model.visit_params("", &mut |_, t| {
            ids.push(t.id());
            shapes.push(t.shape().clone());
            trained.push(t.requires_grad());
        });
        let mut cap = Capture {
            rows: batch,
            widths: Vec::new(),
            needs: Vec::new(),
            ops: Vec::new(),
            by_id: ids.iter().enumerate().map(|(i, &id)| (id, i)).collect(),
            used: alloc::vec![false; ids.len()],
            trained,
        };
        if cap.by_id.len() != ids.len() {
            return Err(unsupported(
                "the model lists a parameter twice (shared or tied weights cannot be captured)",
            ));
        }
        let x = cap.push(features, false);
        let out = model.capture(&mut cap, x)?;
        if out.index == 0 {
            return Err(unsupported("the model's output is its input"));
        }
        if !cap.needs[out.index] {
            return Err(unsupported(
                "no parameter the output depends on requires grad: nothing to train",
            ));
        }
        let n = cap.widths.len();
        let mut acts = Vec::with_capacity(n);
        let mut grads = Vec::with_capacity(n);
        for i in 0..n {
            let len = batch * cap.widths[i];
            acts.push((i > 0).then(|| Tensor::try_zeros([len])).transpose()?);
            let g = i > 0 && cap.needs[i];
            grads.push(g.then(|| Tensor::try_zeros([len])).transpose()?);
        }
        let mut param_grads = Vec::with_capacity(ids.len());
        for (shape, &t) in shapes.iter().zip(&cap.trained) {
            param_grads.push(t.then(|| Tensor::try_zeros(shape.dims())).transpose()?);
        }
        let per_row = match loss {
            PlanLoss::CrossEntropy => 1,
            PlanLoss::Mse => out.width,
        };
        Ok(CapturedStep {
            cap,
            ids,
            acts,
            grads,
            param_grads,
            loss,
            losses: Tensor::try_zeros([batch * per_row])?,
            classes: alloc::vec![None; batch],
        })
    }

    /// Bytes of tensor memory the captured buffers hold.
    pub fn bytes(&self) -> usize {
        let held = self.acts.iter().chain(&self.grads).chain(&self.param_grads);
        (held.flatten().map(Tensor::numel).sum::<usize>() + self.losses.numel()) * 4
    }

    /// One step on the batch `x` `[batch, features]` against `target`
    /// (cross-entropy: class indices `[batch]`, whole numbers in `0..C` or
    /// -100 to ignore a row; MSE: `[batch, outputs]`): forward, loss,
    /// backward, then `optimizer`'s
    /// [`step`](Optimizer::step) over the trained parameters. Returns the
    /// loss before the update. The parameters' gradients are replaced (as
    /// after `zero_grad` and `backward`).
    ///
    /// A batch or target that is not contiguous is copied first (the only
    /// tensor allocation of a step besides the GEMM's scratch).
    ///
    /// Errors, changing nothing, if `model` is not the captured one (other
    /// parameters, or other parameters requiring grad), the shapes differ
    /// from the capture, a target is not a class index, or copying the batch
    /// runs out of memory. `OutOfMemory` later can only come from the
    /// gradients' buffers when the caller still holds a handle to a
    /// parameter's last gradient (they are then copied on write); it leaves
    /// the gradients cleared. The
    /// optimizer's errors are returned as they are (its update is all or
    /// nothing).
    pub fn step(
        &mut self,
        model: &mut dyn Module,
        optimizer: &mut dyn Optimizer,
        x: &Tensor,
        target: &Tensor,
    ) -> Result<f32> {
        const OP: &str = "captured_step";
        let rows = self.cap.rows;
        let mut params = model.parameters_mut();
        if params.len() != self.ids.len()
            || params
                .iter()
                .zip(&self.ids)
                .zip(&self.cap.trained)
                .any(|((p, &id), &t)| p.id() != id || p.requires_grad() != t)
        {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: "the model's parameters (or which require grad) differ from the capture",
            });
        }
        let mut biases = self.cap.ops.iter().filter_map(|op| match *op {
            Op::Linear { b, .. } => b,
            Op::Act { .. } => None,
        });
        if biases.any(|b| !params[b].is_contiguous()) {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: "a Linear bias is not contiguous",
            });
        }
        let features = self.cap.widths[0];
        if x.dims() != [rows, features] {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: [rows, features][..].into(),
                rhs: x.shape().into(),
                detail: "the batch must be [batch, features], as captured",
            });
        }
        let outputs = *self.cap.widths.last().expect("an output");
        let want: &[usize] = match self.loss {
            PlanLoss::CrossEntropy => &[rows],
            PlanLoss::Mse => &[rows, outputs],
        };
        if target.dims() != want {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: want.into(),
                rhs: target.shape().into(),
                detail: "the target must be [batch] (class indices) or [batch, outputs] (MSE)",
            });
        }
        let (x, target) = (x.try_contiguous()?, target.try_contiguous()?);
        let target = target.as_slice().expect("contiguous");
        if self.loss == PlanLoss::CrossEntropy {
            self.classes_of(target, outputs)?;
        }
        // The gradient buffers come back from the parameters' slots (unique
        // again unless the caller kept a handle: then they are copied).
        for (p, g) in params.iter().zip(&self.param_grads) {
            if g.is_some() {
                drop(p.take_grad());
            }
        }
        self.forward(&params, x.as_slice().expect("contiguous"))?;
        let loss = match self.loss {
            PlanLoss::CrossEntropy => self.cross_entropy()?,
            PlanLoss::Mse => self.mse(target)?,
        };
        self.backward(&params, x.as_slice().expect("contiguous"))?;
        for (p, g) in params.iter().zip(&self.param_grads) {
            if let Some(g) = g {
                p.put_grad(Some(g.clone()));
            }
        }
        params.retain(|p| p.requires_grad());
        optimizer.step(&mut params)?;
        Ok(loss)
    }

    /// Reads cross-entropy's class indices, checked as the eager
    /// `cross_entropy` checks them (before anything changes).
    fn classes_of(&mut self, target: &[f32], classes: usize) -> Result<()> {
        for (c, &v) in self.classes.iter_mut().zip(target) {
            *c = class_index("captured_step", v, classes, Some(IGNORE_INDEX))?;
        }
        Ok(())
    }

    /// The input activation's values (the batch) or a buffer's.
    fn values<'a>(acts: &'a [Option<Tensor>], input: &'a [f32], i: usize) -> &'a [f32] {
        match &acts[i] {
            Some(t) => t.as_slice().expect("contiguous buffer"),
            None => input,
        }
    }

    fn forward(&mut self, params: &[&mut Tensor], input: &[f32]) -> Result<()> {
        let rows = self.cap.rows;
        let k = crate::kernels::table();
        for op in &self.cap.ops {
            let (x, y) = op.ends();
            let (lo, hi) = self.acts.split_at_mut(y);
            let out = hi[0].as_mut().expect("a buffer").try_data_mut()?;
            let xs = Self::values(lo, input, x);
            match *op {
                Op::Linear { w, b, .. } => {
                    let xm = MatRef::row_major(xs, rows, self.cap.widths[x]);
                    let bias = b.map(|b| params[b].as_slice().expect("checked contiguous"));
                    linear_into(xm, mat(params[w]), bias, out)?;
                }
                Op::Act { f, .. } => match f {
                    Activation::Relu => (k.relu.map)(xs, out),
                    Activation::Sigmoid => (k.sigmoid.map)(xs, out),
                    Activation::Tanh => (k.tanh.map)(xs, out),
                },
            }
        }
        Ok(())
    }

    /// Cross-entropy of the last activation (logits) against the classes:
    /// the loss, and the logits' gradient in its buffer (as the eager
    /// `cross_entropy` and its backward compute them).
    fn cross_entropy(&mut self) -> Result<f32> {
        let n = self.acts.len() - 1;
        let c = self.cap.widths[n];
        let k = crate::kernels::table();
        let logits = self.acts[n].as_ref().expect("a buffer").as_slice();
        let logits = logits.expect("contiguous buffer");
        let g = self.grads[n].as_mut().expect("the output needs a gradient");
        let g = g.try_data_mut()?;
        let losses = self.losses.try_data_mut()?;
        let mut denom = 0.0f64;
        // The log-probabilities, then (one exp) the probabilities, in `g`.
        for (r, (l, &y)) in losses.iter_mut().zip(&self.classes).enumerate() {
            let row = &mut g[r * c..(r + 1) * c];
            (k.log_softmax)(&logits[r * c..(r + 1) * c], row);
            *l = match y {
                Some(y) => {
                    denom += 1.0;
                    -row[y]
                }
                None => 0.0,
            };
        }
        let denom = denom as f32;
        let loss = crate::ops::kern::sum(losses) / denom;
        (k.exp.map_inplace)(g);
        let s = 1.0 / denom;
        for (r, &y) in self.classes.iter().enumerate() {
            let row = &mut g[r * c..(r + 1) * c];
            match y {
                Some(y) => {
                    row[y] -= 1.0;
                    row.iter_mut().for_each(|v| *v *= s);
                }
                None => row.fill(0.0),
            }
        }
        Ok(loss)
    }

    /// Mean squared error of the last activation against `target`, and the
    /// output's gradient `(1 / n) (2 (y - t))` in its buffer (as the eager
    /// `mse_loss`, its mean and their backward compute them).
    fn mse(&mut self, target: &[f32]) -> Result<f32> {
        let n = self.acts.len() - 1;
        let y = self.acts[n].as_ref().expect("a buffer").as_slice();
        let y = y.expect("contiguous buffer");
        let g = self.grads[n].as_mut().expect("the output needs a gradient");
        let g = g.try_data_mut()?;
        let losses = self.losses.try_data_mut()?;
        let scale = 1.0 / y.len() as f32;
        for (((l, g), &y), &t) in losses.iter_mut().zip(g.iter_mut()).zip(y).zip(target) {
            *l = (y - t) * (y - t);
            *g = scale * (2.0 * (y - t));
        }
        Ok(crate::kernels::parallel::sum(losses) * scale)
    }

    fn backward(&mut self, params: &[&mut Tensor], input: &[f32]) -> Result<()> {
        let rows = self.cap.rows;
        let k = crate::kernels::table();
        for op in self.cap.ops.iter().rev() {
            let (x, y) = op.ends();
            if !self.cap.needs[y] {
                continue;
            }
            let (glo, ghi) = self.grads.split_at_mut(y);
            let gy = ghi[0].as_ref().expect("a gradient buffer").as_slice();
            let gy = gy.expect("contiguous buffer");
            let gx = match &mut glo[x] {
                Some(t) => Some(t.try_data_mut()?),
                None => None,
            };
            match *op {
                Op::Linear { w, b, .. } => {
                    let (wi, wo) = (self.cap.widths[x], self.cap.widths[y]);
                    let gm = MatRef::row_major(gy, rows, wo);
                    if let Some(gx) = gx {
                        product_rows(gm, mat(params[w]), gx)?;
                    }
                    if let Some(gw) = &mut self.param_grads[w] {
                        let xs = Self::values(&self.acts, input, x);
                        product_rows(gm.t(), MatRef::row_major(xs, rows, wi), gw.try_data_mut()?)?;
                    }
                    if let Some(gb) = b.and_then(|b| self.param_grads[b].as_mut()) {
                        sum_rows_into(gy, rows, wo, gb.try_data_mut()?);
                    }
                }
                Op::Act { f, .. } => {
                    let (Some(gx), Some(out)) = (gx, &self.acts[y]) else {
                        continue;
                    };
                    let out = out.as_slice().expect("contiguous buffer");
                    match f {
                        Activation::Relu => (k.relu_backward)(out, gy, gx),
                        Activation::Sigmoid => (k.sigmoid_backward)(out, gy, gx),
                        Activation::Tanh => (k.tanh_backward)(out, gy, gx),
                    }
                }
            }
        }
        Ok(())
    }
}
