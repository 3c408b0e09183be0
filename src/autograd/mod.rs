//! GradTrack: reverse-mode automatic differentiation.
//!
//! # How it works
//!
//! A tensor that takes part in differentiation carries a [`Node`]:
//! - a *leaf* node for tensors made with [`Tensor::with_requires_grad`]; their
//!   gradient accumulates in the node's slot of the gradient store;
//! - an *op* node for results of differentiable operations, holding edges to its
//!   inputs' nodes and a backward closure that owns the tensors it saved.
//!
//! The graph lives with the tensors: dropping the last tensor that refers to a
//! node frees it (iteratively, so deep graphs do not overflow the stack). There
//! is no global registry to clear.
//!
//! [`Tensor::backward`] orders the nodes reachable from the output topologically
//! (reverse post-order of one depth-first walk), so every node runs once, after
//! all of its consumers: time is linear in the graph size, even for residual
//! chains. Unless asked to retain the graph, each node's closure is dropped right
//! after it runs, releasing the saved tensors: parameters are then uniquely owned
//! again and an optimizer step updates them in place without a copy.
//!
//! # Threads and the gradient store
//!
//! Graphs are plain `Arc`-linked data, so many threads can build graphs and run
//! `backward` at once, also on shared parameters. Each node's gradient slot is a
//! shard of the store with its own lock (a parking lock under `std`, a spin lock
//! without), so threads contend only when they
//! accumulate into the same parameter at the same moment, and never on a global
//! lock.
//!
//! # Limits
//!
//! Gradients of gradients (double backward) are not supported: backward
//! closures run with gradient recording off. In-place operations on a leaf that
//! requires grad are refused while recording (as in PyTorch); on other tensors
//! they record a new node and keep the tensor's id.

mod mode;

pub use mode::{NoGradGuard, is_grad_enabled, no_grad};

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result, unwrap};
use crate::sync::Mutex;
use crate::tensor::Tensor;

/// Gradients of an op's inputs, in input order (`None`: no gradient flows).
pub(crate) type InputGrads = Vec<Option<Tensor>>;

/// A backward closure: given the gradient of the output and which inputs need a
/// gradient, returns the inputs' gradients.
pub(crate) type BackwardFn = dyn Fn(&Tensor, &[bool]) -> Result<InputGrads> + Send + Sync;

/// A vertex of the autograd graph (see the [module docs](self)).
pub struct Node {
    name: &'static str,
    inputs: Vec<Option<Arc<Node>>>,
    backward: Mutex<Option<Box<BackwardFn>>>,
    /// Accumulated gradient (leaves, and non-leaves asked to retain it).
    grad: Mutex<Option<Tensor>>,
    retain: AtomicBool,
    /// Shape of the tensor the node belongs to (to check gradient shapes).
    dims: crate::tensor::Shape,
}

impl Node {
    fn is_leaf(&self) -> bool {
        self.inputs.is_empty() && self.name == LEAF
    }
}

const LEAF: &str = "Leaf";

impl Drop for Node {
    /// Frees the chain of input nodes iteratively: a recursive drop of a
    /// 100 000-op chain would overflow the stack.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = self.inputs.drain(..).flatten().collect();
        while let Some(n) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(n) {
                stack.extend(inner.inputs.drain(..).flatten());
            }
        }
    }
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Node({})", self.name)
    }
}

// ---------------------------------------------------------------- tensor API

impl Tensor {
    /// This tensor as a leaf that requires grad: gradients of anything computed
    /// from it accumulate into its [`grad`](Self::grad). Keeps the id and the
    /// storage.
    pub fn with_requires_grad(mut self) -> Tensor {
        self.set_requires_grad(true);
        self
    }

    /// Turns gradient tracking on (a fresh leaf) or off (detaches from any
    /// graph) for this handle.
    pub fn set_requires_grad(&mut self, on: bool) {
        self.node = on.then(|| {
            Arc::new(Node {
                name: LEAF,
                inputs: Vec::new(),
                backward: Mutex::new(None),
                grad: Mutex::new(None),
                retain: AtomicBool::new(true),
                dims: self.shape().clone(),
            })
        });
    }

    /// Whether gradients flow to or through this tensor.
    #[inline]
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// Whether this tensor is a leaf: made by the user rather than by a
    /// recorded operation (tensors that do not require grad are leaves too).
    pub fn is_leaf(&self) -> bool {
        self.node.as_ref().is_none_or(|n| n.is_leaf())
    }

    /// The name of the operation that produced this tensor, e.g.
    /// `"MulBackward0"`, if it was recorded.
    pub fn grad_fn_name(&self) -> Option<&'static str> {
        self.node.as_ref().filter(|n| !n.is_leaf()).map(|n| n.name)
    }

    /// The same data without gradient tracking: shares the storage, a new id.
    pub fn detach(&self) -> Tensor {
        let mut t = self.with_layout(self.layout.clone());
        t.node = None;
        t
    }

    /// The gradient accumulated by `backward` calls: for leaves that require
    /// grad, and for other tensors after [`retain_grad`](Self::retain_grad).
    /// `None` before any backward pass reached it, or after
    /// [`zero_grad`](Self::zero_grad).
    pub fn grad(&self) -> Option<Tensor> {
        self.node.as_ref().and_then(|n| n.grad.lock().clone())
    }

    /// Clears the accumulated gradient (PyTorch's `set_to_none=True`).
    pub fn zero_grad(&self) {
        if let Some(n) = &self.node {
            *n.grad.lock() = None;
        }
    }

    /// Takes the accumulated gradient out, leaving none.
    pub fn take_grad(&self) -> Option<Tensor> {
        self.node.as_ref().and_then(|n| n.grad.lock().take())
    }

    /// Replaces the accumulated gradient (e.g. after clipping it). The gradient
    /// must have this tensor's shape; the tensor must require grad.
    pub fn set_grad(&self, grad: Option<Tensor>) -> Result<()> {
        let Some(n) = &self.node else {
            return Err(Error::InvalidArgument {
                op: "set_grad",
                detail: "the tensor does not require grad",
            });
        };
        if let Some(g) = &grad
            && g.dims() != self.dims()
        {
            return Err(Error::ShapeMismatch {
                op: "set_grad",
                lhs: self.shape().into(),
                rhs: g.shape().into(),
                detail: "the gradient must have the tensor's shape",
            });
        }
        *n.grad.lock() = grad.map(|g| g.detach());
        Ok(())
    }

    /// Puts a gradient taken with [`take_grad`](Self::take_grad) (or read
    /// with [`grad`](Self::grad)) back, unchecked: cannot fail.
    pub(crate) fn put_grad(&self, grad: Option<Tensor>) {
        if let Some(n) = &self.node {
            *n.grad.lock() = grad;
        }
    }

    /// Keeps this non-leaf tensor's gradient after backward (leaves always
    /// keep theirs). No effect on tensors that do not require grad.
    pub fn retain_grad(&self) {
        if let Some(n) = &self.node {
            n.retain.store(true, Ordering::Relaxed);
        }
    }

    /// Back-propagates from this one-element tensor (seeded with 1), then
    /// releases the graph's saved tensors.
    ///
    /// Gradients are added into the leaves' [`grad`](Self::grad) all or
    /// nothing: the pass computes every leaf's gradient first and commits
    /// them together at the end, so an error (e.g. [`Error::OutOfMemory`])
    /// leaves every accumulated gradient exactly as before. Adding into
    /// existing gradients holds the old and the new sum at once for a moment;
    /// into cleared ones ([`zero_grad`](Self::zero_grad)) it costs nothing
    /// extra. A failed pass has still used up (part of) the graph: run the
    /// forward pass again before retrying.
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element, does not require grad,
    /// or its graph was already released; see [`try_backward`](Self::try_backward).
    #[track_caller]
    pub fn backward(&self) {
        unwrap(self.try_backward())
    }

    /// [`backward`](Self::backward), or an error.
    pub fn try_backward(&self) -> Result<()> {
        self.backward_with(None, false)
    }

    /// Back-propagates with an explicit gradient of this tensor (`None` means
    /// ones, allowed only for one-element tensors, as in PyTorch). With
    /// `retain_graph` the saved tensors are kept so backward can run again.
    /// All or nothing, as [`backward`](Self::backward).
    pub fn backward_with(&self, grad: Option<&Tensor>, retain_graph: bool) -> Result<()> {
        let Some(root) = &self.node else {
            return Err(Error::InvalidArgument {
                op: "backward",
                detail: "the tensor does not require grad and has no grad_fn",
            });
        };
        let seed = match grad {
            Some(g) => {
                if g.dims() != self.dims() {
                    return Err(Error::ShapeMismatch {
                        op: "backward",
                        lhs: self.shape().into(),
                        rhs: g.shape().into(),
                        detail: "the gradient must have the output's shape",
                    });
                }
                g.detach()
            }
            None => {
                if self.numel() != 1 {
                    return Err(Error::InvalidArgument {
                        op: "backward",
                        detail: "grad can be implicitly created only for one-element outputs; pass a gradient",
                    });
                }
                Tensor::try_full(self.dims(), 1.0)?
            }
        };
        let _no_grad = NoGradGuard::new();
        run_backward(root, seed, retain_graph)
    }

    /// Records `self` (an operation's result) as produced by `name` from
    /// `inputs`, if recording is on and any input requires grad. `backward`
    /// receives the output's gradient and which inputs need one, and returns
    /// one gradient per input, each of that input's shape. It must own only
    /// detached tensors (use [`detach`](Self::detach) on saved values), or the
    /// graph would keep itself alive.
    pub(crate) fn record(
        mut self,
        name: &'static str,
        inputs: &[&Tensor],
        backward: impl Fn(&Tensor, &[bool]) -> Result<InputGrads> + Send + Sync + 'static,
    ) -> Tensor {
        if !needs_grad(inputs) {
            return self;
        }
        self.node = Some(Arc::new(Node {
            name,
            inputs: inputs.iter().map(|t| t.node.clone()).collect(),
            backward: Mutex::new(Some(Box::new(backward))),
            grad: Mutex::new(None),
            retain: AtomicBool::new(false),
            dims: self.shape().clone(),
        }));
        self
    }

    /// Refuses in-place changes of a leaf that requires grad while recording;
    /// called by every in-place operation.
    pub(crate) fn check_inplace(&self, op: &'static str) -> Result<()> {
        if is_grad_enabled() && self.node.as_ref().is_some_and(|n| n.is_leaf()) {
            return Err(Error::InvalidArgument {
                op,
                detail: "a leaf tensor that requires grad is used in an in-place operation; \
                         wrap the update in no_grad",
            });
        }
        Ok(())
    }
}

/// Whether an operation on `inputs` must be recorded.
#[inline]
pub(crate) fn needs_grad(inputs: &[&Tensor]) -> bool {
    inputs.iter().any(|t| t.node.is_some()) && is_grad_enabled()
}

/// Topologically ordered backward pass from `root`.
fn run_backward(root: &Arc<Node>, seed: Tensor, retain_graph: bool) -> Result<()> {
    // Reverse post-order of an iterative DFS: consumers before producers.
    let mut index: BTreeMap<*const Node, usize> = BTreeMap::new();
    let mut order: Vec<&Arc<Node>> = Vec::new();
    let mut stack: Vec<(&Arc<Node>, usize)> = vec![(root, 0)];
    index.insert(Arc::as_ptr(root), usize::MAX);
    while let Some((node, next)) = stack.pop() {
        if let Some(child) = node.inputs.get(next) {
            stack.push((node, next + 1));
            if let Some(c) = child
                && !index.contains_key(&Arc::as_ptr(c))
            {
                index.insert(Arc::as_ptr(c), usize::MAX);
                stack.push((c, 0));
            }
        } else {
            index.insert(Arc::as_ptr(node), order.len());
            order.push(node);
        }
    }
    let n = order.len();
    let mut pending: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
    pending[n - 1] = Some(seed);
    // Gradients for leaves (and retained non-leaves), committed to their slots
    // only once the whole walk has succeeded.
    let mut finished: Vec<(&Arc<Node>, Tensor)> = Vec::new();

    for i in (0..n).rev() {
        let node = order[i];
        let Some(grad) = pending[i].take() else {
            continue; // no gradient reached this node
        };
        if node.is_leaf() {
            finished.push((node, grad));
            continue;
        }
        if node.retain.load(Ordering::Relaxed) {
            finished.push((node, grad.clone()));
        }
        let needs: Vec<bool> = node.inputs.iter().map(Option::is_some).collect();
        let grads = {
            let mut slot = node.backward.lock();
            let Some(f) = slot.as_ref() else {
                return Err(Error::InvalidArgument {
                    op: "backward",
                    detail: "trying to backward through the graph a second time; \
                             pass retain_graph = true the first time",
                });
            };
            let grads = f(&grad, &needs)?;
            if !retain_graph {
                *slot = None;
            }
            grads
        };
        drop(grad);
        for (input, g) in node.inputs.iter().zip(grads) {
            let (Some(input), Some(g)) = (input, g) else {
                continue;
            };
            if g.dims() != input.dims.dims() {
                return Err(Error::ShapeMismatch {
                    op: node.name,
                    lhs: (input.dims.clone()).into(),
                    rhs: g.shape().into(),
                    detail: "internal error: a backward function returned a gradient of the wrong shape",
                });
            }
            let j = index[&Arc::as_ptr(input)];
            pending[j] = Some(match pending[j].take() {
                None => g,
                Some(mut acc) => {
                    acc.try_add_assign_raw(&g)?;
                    acc
                }
            });
        }
    }
    commit(finished)
}

/// Adds each gradient into its node's slot (its shard of the gradient
/// store), all or none: every sum is computed into a new buffer first, with
/// all slots locked (in address order, so concurrent commits cannot
/// deadlock), then the slots are replaced, which cannot fail. On an error
/// every slot keeps its previous gradient.
fn commit(mut finished: Vec<(&Arc<Node>, Tensor)>) -> Result<()> {
    crate::sort::sort_unstable_by(&mut finished, |a, b| {
        Arc::as_ptr(a.0).cmp(&Arc::as_ptr(b.0))
    });
    let mut slots: Vec<_> = finished.iter().map(|(node, _)| node.grad.lock()).collect();
    let mut sums = Vec::with_capacity(finished.len());
    for ((_, grad), slot) in finished.iter().zip(&slots) {
        let mut sum = grad.try_contiguous()?;
        if let Some(acc) = slot.as_ref() {
            // `grad + acc` in `sum`'s buffer (copied first if shared): the
            // same bits as `acc + grad`, while `acc` stays untouched.
            sum.try_add_assign_raw(acc)?;
        }
        sums.push(sum);
    }
    for (slot, sum) in slots.iter_mut().zip(sums) {
        **slot = Some(sum);
    }
    Ok(())
}
