//! One training step that either completes or changes nothing.
//!
//! A step touches four kinds of state: parameters, their gradients, the
//! optimizer's state and the model's buffers (batch-norm running statistics,
//! which the forward pass updates, and dropout generators). Each piece of the
//! library is all-or-nothing on its own: [`Optimizer::step`] allocates
//! everything before it updates, [`Tensor::try_backward`] commits the
//! gradients only when the whole pass succeeded, batch norm replaces its
//! statistics only once all three are computed. What no single piece can undo
//! is the work of the pieces that ran before it: the forward pass has already
//! moved the running statistics when backward runs out of memory, and
//! backward has already written the gradients when the optimizer does.
//! [`StepSnapshot`] closes that gap, and [`try_train_step`] uses it for the
//! usual step.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::Optimizer;
use crate::error::Result;
use crate::nn::Module;
use crate::tensor::Tensor;

/// What a training step changes in a model besides its parameters, captured
/// so that a failed step can be undone: the gradients, the buffers and the
/// random-generator states.
///
/// Capturing copies handles, not data (O(1) per tensor). Restoring puts the
/// captured handles back and allocates nothing from the tensor pool, so it
/// works when memory has run out. The captured gradients stay alive (they
/// cost their memory) until the snapshot is dropped.
///
/// To make a custom step atomic (gradient clipping, several losses), capture
/// before it, run the step with the optimizer's [`step`](Optimizer::step) as
/// its last call that can fail, and restore on error:
///
/// ```
/// use train_station::nn::{Linear, Module};
/// use train_station::optim::{Optimizer, Sgd, SgdConfig, StepSnapshot, clip_grad_norm};
/// use train_station::{Result, Tensor};
///
/// let mut model = Linear::new(3, 1);
/// let mut opt = Sgd::new(&model.parameters(), SgdConfig { lr: 0.1, ..Default::default() });
/// let x = Tensor::ones([4, 3]);
/// let snapshot = StepSnapshot::capture(&model);
/// let result = (|| -> Result<()> {
///     model.zero_grad();
///     model.try_forward(&x)?.try_sum()?.try_backward()?;
///     clip_grad_norm(&model.parameters(), 1.0, 2.0)?;
///     opt.step_module(&mut model)
/// })();
/// if result.is_err() {
///     snapshot.restore(&mut model);
/// }
/// ```
pub struct StepSnapshot {
    /// Each parameter's gradient, in `visit_params` order.
    grads: Vec<Option<Tensor>>,
    buffers: Vec<(String, Tensor)>,
    rngs: Vec<(String, [u64; 4])>,
}

impl StepSnapshot {
    /// Captures the gradients, buffers and generator states of `model`.
    pub fn capture<M: Module + ?Sized>(model: &M) -> StepSnapshot {
        let mut grads = Vec::new();
        model.visit_params("", &mut |_, p| grads.push(p.grad()));
        let mut buffers = Vec::new();
        model.visit_buffers("", &mut |n, b| buffers.push((n.to_string(), b.clone())));
        let mut rngs = Vec::new();
        model.visit_rng_states("", &mut |n, s| rngs.push((n.to_string(), s)));
        StepSnapshot {
            grads,
            buffers,
            rngs,
        }
    }

    /// Puts the captured gradients, buffers and generator states back into
    /// `model`, which must be the model captured (same structure). The
    /// restored values are bit-identical to the captured ones.
    pub fn restore<M: Module + ?Sized>(self, model: &mut M) {
        let mut grads = self.grads.into_iter();
        model.visit_params("", &mut |_, p| p.put_grad(grads.next().flatten()));
        for (name, b) in &self.buffers {
            // The captured buffer has the shape and contiguity the module
            // gave it, so putting it back neither fails nor allocates.
            let _ = model.set_buffer(name, b);
        }
        for (name, s) in self.rngs {
            model.set_rng_state(&name, s);
        }
    }
}

/// One training step, all or nothing: clears the gradients (as
/// `zero_grad(set_to_none=True)`), computes the loss with `loss_fn(model)`,
/// back-propagates it and updates every parameter of `model` with `opt`
/// ([`Optimizer::step`] on `model.trainable_parameters_mut()`, so frozen
/// parameters are left out). Returns the loss
/// value.
///
/// On any error, from `loss_fn` (a shape error, say) or from running out of
/// memory anywhere in the step ([`Error::OutOfMemory`](crate::Error::OutOfMemory)),
/// the step returns it and leaves the parameters, their gradients, the
/// optimizer's state and the model's buffers (batch-norm running statistics
/// and `num_batches_tracked`) and dropout generators bit-identical to what
/// they were before the call, so training can go on (with a smaller batch,
/// or after freeing memory) as if the step had never been tried. Rolling back
/// allocates nothing.
///
/// The loss must hold one element. Gradients from before the call are kept
/// alive until the step succeeds (they must be restorable); call
/// [`Module::zero_grad`] first if they are not needed, to save their memory.
/// Every parameter of `model` must be registered with `opt` (see
/// [`Optimizer::step`]).
///
/// ```
/// use train_station::nn::{Linear, Module};
/// use train_station::optim::{Adam, AdamConfig, try_train_step};
/// use train_station::Tensor;
///
/// let mut model = Linear::new(2, 1);
/// let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
/// let x = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0], [2, 2]).unwrap();
/// let loss = try_train_step(&mut model, &mut opt, |m| m.try_forward(&x)?.try_mean()).unwrap();
/// assert!(loss.is_finite());
/// ```
pub fn try_train_step<M, O>(
    model: &mut M,
    opt: &mut O,
    loss_fn: impl FnOnce(&M) -> Result<Tensor>,
) -> Result<f32>
where
    M: Module + ?Sized,
    O: Optimizer + ?Sized,
{
    let snapshot = StepSnapshot::capture(model);
    model.zero_grad();
    let result = step(model, opt, loss_fn);
    if result.is_err() {
        snapshot.restore(model);
    }
    result
}

fn step<M, O>(model: &mut M, opt: &mut O, loss_fn: impl FnOnce(&M) -> Result<Tensor>) -> Result<f32>
where
    M: Module + ?Sized,
    O: Optimizer + ?Sized,
{
    let loss = loss_fn(model)?;
    let value = loss.try_item()?;
    loss.try_backward()?;
    // The graph is released; dropping the loss too leaves the parameters'
    // buffers unshared, so the update copies nothing.
    drop(loss);
    opt.step(&mut model.trainable_parameters_mut())?;
    Ok(value)
}
