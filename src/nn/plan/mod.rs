//! Memory plans: the bytes one training step needs, predicted from shapes
//! alone before anything runs.
//!
//! [`plan_step`] traces a step (forward, loss, backward, optimizer update)
//! without allocating any tensor data. Each layer describes its forward pass
//! through [`Module::plan`] with the [`Planner`]'s shape-only operations,
//! which mirror the tensor operations the layer really runs: the same
//! buffers, allocated and released in the same order, saved for backward
//! under the same conditions (only what a wanted gradient reads), and the
//! same GEMM packing scratch for the kernel path in force
//! ([`crate::kernels::gemm::scratch_bytes`]). The planner replays the
//! backward pass in the autograd engine's order and keeps a simulated pool:
//! every buffer counts its pool block size ([`pool::block_bytes`]), so the
//! planned peak is the peak the pool's statistics report for the real step.
//!
//! The model of a step is the usual loop: gradients are cleared (set to
//! `None`) before the forward pass, the optimizer already holds its state
//! (from the second step on; the first step allocates it during the update,
//! when the activations are already released, so its peak is not higher),
//! and the caller keeps the input, the target and the model's output alive
//! until the update.
//!
//! [`MemoryPlan`] holds the result by category and per module and prints as
//! a table; [`MemoryPlan::check_budget`] compares it with the pool's budget,
//! so a training run can refuse to start when it does not fit.

mod compose;
mod ops;
mod report;

pub use compose::{Binary, ConvGeometry};
pub use ops::Saves;
pub use report::{Category, MemoryPlan, ModuleRow};

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::kernels::gemm::Config;
use crate::nn::Module;
use crate::optim::Optimizer;
use crate::pool;
use crate::tensor::{Shape, Tensor};

/// The loss a planned step ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanLoss {
    /// [`cross_entropy`](crate::nn::loss::cross_entropy) of logits `[N, C]`
    /// against class indices `[N]` (mean reduction).
    CrossEntropy,
    /// [`mse_loss`](crate::nn::loss::mse_loss) against a target of the
    /// output's shape (mean reduction).
    Mse,
}

/// A tensor in a traced step: a shape, the simulated buffer it views, and
/// its autograd node if it requires grad. Handles are released explicitly
/// ([`Planner::release`]) where the real tensor would be dropped.
#[derive(Debug)]
pub struct PlanTensor {
    dims: Shape,
    buf: usize,
    node: Option<usize>,
}

impl PlanTensor {
    /// The shape.
    pub fn dims(&self) -> &[usize] {
        self.dims.dims()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.numel()
    }

    /// Whether gradients flow to or through it.
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }
}

struct Buf {
    bytes: usize,
    /// Elements it holds (a broadcast view shows more).
    elems: usize,
    refs: usize,
    cat: Category,
}

/// A backward model: given the planner, the output gradient, which inputs
/// need a gradient and the saved handles, allocates what the real backward
/// closure allocates and returns the input gradients.
type PlanBackward = Box<
    dyn Fn(&mut Planner, &PlanTensor, &[bool], &[PlanTensor]) -> Result<Vec<Option<PlanTensor>>>,
>;

struct Node {
    inputs: Vec<Option<usize>>,
    saved: Vec<PlanTensor>,
    backward: Option<PlanBackward>,
    /// For a leaf: the parameter's index in `Planner::params`.
    leaf: Option<usize>,
    /// Module that recorded it (index into `modules`).
    module: usize,
}

struct Param {
    module: usize,
    buf: usize,
    node: Option<usize>,
}

/// The shape-only tracer behind [`plan_step`]: a simulated pool and a
/// simulated autograd graph. Layers call its operations from
/// [`Module::plan`]; each mirrors the tensor operation of the same name.
pub struct Planner {
    cfg: Config,
    bufs: Vec<Buf>,
    nodes: Vec<Node>,
    params: Vec<Param>,
    by_id: BTreeMap<u64, usize>,
    in_use: usize,
    blocks: usize,
    now: [usize; Category::COUNT],
    peak: usize,
    peak_reserved: usize,
    at_peak: [usize; Category::COUNT],
    cat_max: [usize; Category::COUNT],
    modules: Vec<ModuleRow>,
    path: Vec<usize>,
    backward: bool,
}

impl Planner {
    /// A planner for the kernel path and thread count in force.
    pub fn new() -> Planner {
        Planner::with_config(Config::current())
    }

    /// A planner for an explicit kernel path and thread count (the GEMM
    /// packing scratch depends on both).
    pub fn with_config(cfg: Config) -> Planner {
        Planner {
            cfg,
            bufs: Vec::new(),
            nodes: Vec::new(),
            params: Vec::new(),
            by_id: BTreeMap::new(),
            in_use: 0,
            blocks: 0,
            now: [0; Category::COUNT],
            peak: 0,
            peak_reserved: 0,
            at_peak: [0; Category::COUNT],
            cat_max: [0; Category::COUNT],
            modules: vec![ModuleRow::new(String::new())],
            path: vec![0],
            backward: false,
        }
    }

    // ------------------------------------------------------------ the pool

    fn note(&mut self) {
        let reserved = self.in_use + self.blocks * pool::HEADER_BYTES;
        self.peak_reserved = self.peak_reserved.max(reserved);
        for (m, n) in self.cat_max.iter_mut().zip(&self.now) {
            *m = (*m).max(*n);
        }
        if self.in_use > self.peak {
            self.peak = self.in_use;
            self.at_peak = self.now;
        }
    }

    fn new_buf(&mut self, numel: usize, cat: Category) -> usize {
        let bytes = pool::block_bytes(numel);
        self.in_use += bytes;
        self.blocks += 1;
        self.now[cat as usize] += bytes;
        self.bufs.push(Buf {
            bytes,
            elems: numel,
            refs: 1,
            cat,
        });
        self.note();
        self.bufs.len() - 1
    }

    fn unref(&mut self, buf: usize) {
        let b = &mut self.bufs[buf];
        b.refs -= 1;
        if b.refs == 0 {
            self.in_use -= b.bytes;
            self.blocks -= 1;
            self.now[b.cat as usize] -= b.bytes;
        }
    }

    fn module(&self) -> usize {
        *self
            .path
            .last()
            .expect("the root module is always on the path")
    }

    /// A new contiguous tensor of `dims` (a fresh pool block).
    pub fn alloc(&mut self, dims: &[usize]) -> Result<PlanTensor> {
        let dims = Shape::new(dims)?;
        let cat = if self.backward {
            Category::ActivationGrads
        } else {
            Category::Activations
        };
        let buf = self.new_buf(dims.numel(), cat);
        Ok(PlanTensor {
            dims,
            buf,
            node: None,
        })
    }

    /// A work buffer of `numel` floats taken and returned at once (reduction
    /// scratch, a temporary that is dropped before anything else is
    /// allocated): it only raises the peak.
    pub fn work(&mut self, numel: usize) {
        self.work_bytes(pool::block_bytes(numel));
    }

    fn work_bytes(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let w = Category::Work as usize;
        self.in_use += bytes;
        self.blocks += 1;
        self.now[w] += bytes;
        self.note();
        self.in_use -= bytes;
        self.blocks -= 1;
        self.now[w] -= bytes;
        let m = self.module();
        self.modules[m].work = self.modules[m].work.max(bytes);
    }

    /// The packing scratch of one matrix product on the planner's kernel
    /// path, operands as `(rows, cols, row_stride, col_stride)` (see
    /// [`crate::kernels::gemm::scratch_bytes`]).
    pub fn gemm(
        &mut self,
        a: (usize, usize, usize, usize),
        b: (usize, usize, usize, usize),
        c: (usize, usize, usize, usize),
    ) {
        let bytes = crate::kernels::gemm::scratch_bytes(self.cfg, 1, a, b, c);
        self.work_bytes(bytes);
    }

    /// Another handle to `t`'s buffer with shape `dims` (a view: no
    /// allocation), without autograd.
    pub fn view(&mut self, t: &PlanTensor, dims: &[usize]) -> Result<PlanTensor> {
        self.bufs[t.buf].refs += 1;
        Ok(PlanTensor {
            dims: Shape::new(dims)?,
            buf: t.buf,
            node: None,
        })
    }

    /// Another handle to `t` (a clone: same buffer and node).
    pub fn retain(&mut self, t: &PlanTensor) -> PlanTensor {
        self.bufs[t.buf].refs += 1;
        PlanTensor {
            dims: t.dims.clone(),
            buf: t.buf,
            node: t.node,
        }
    }

    /// Drops a handle; the buffer is freed with its last handle.
    pub fn release(&mut self, t: PlanTensor) {
        self.unref(t.buf);
    }

    /// Releases an optional handle.
    pub fn release_opt(&mut self, t: Option<PlanTensor>) {
        if let Some(t) = t {
            self.release(t);
        }
    }

    // ------------------------------------------------------- the graph

    /// A handle to a parameter or buffer of the model, registered by
    /// [`plan_step`] before the forward pass (its memory is held all along).
    /// Requires grad exactly when the tensor does.
    pub fn param(&mut self, t: &Tensor) -> Result<PlanTensor> {
        let Some(&i) = self.by_id.get(&t.id()) else {
            return Err(Error::InvalidArgument {
                op: "plan",
                detail: "a module used a tensor in its plan that it does not list as a parameter or buffer",
            });
        };
        let (buf, node) = (self.params[i].buf, self.params[i].node);
        self.bufs[buf].refs += 1;
        Ok(PlanTensor {
            dims: t.shape().clone(),
            buf,
            node,
        })
    }

    /// Records `out` as produced from `inputs`, as [`Tensor`] operations do:
    /// only if an input requires grad (otherwise `saved` is released at once
    /// and nothing is recorded: no backward work through frozen parts).
    /// `backward` mirrors the real backward closure; `saved` are the handles
    /// the closure owns, released after it runs.
    pub fn record(
        &mut self,
        mut out: PlanTensor,
        inputs: &[&PlanTensor],
        saved: Vec<PlanTensor>,
        backward: impl Fn(
            &mut Planner,
            &PlanTensor,
            &[bool],
            &[PlanTensor],
        ) -> Result<Vec<Option<PlanTensor>>>
        + 'static,
    ) -> PlanTensor {
        if self.backward || !inputs.iter().any(|t| t.requires_grad()) {
            for s in saved {
                self.release(s);
            }
            return out;
        }
        let m = self.module();
        let mut seen: Vec<usize> = Vec::new();
        for s in &saved {
            let b = &self.bufs[s.buf];
            if b.cat == Category::Activations && !seen.contains(&s.buf) {
                seen.push(s.buf);
                self.modules[m].saved += b.bytes;
            }
        }
        self.nodes.push(Node {
            inputs: inputs.iter().map(|t| t.node).collect(),
            saved,
            backward: Some(Box::new(backward)),
            leaf: None,
            module: m,
        });
        out.node = Some(self.nodes.len() - 1);
        out
    }

    /// Runs `f` with `name` appended to the module path (per-module rows are
    /// keyed by dotted path, as parameter names).
    pub fn scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Planner) -> R) -> R {
        let parent = &self.modules[self.module()].name;
        let full = if parent.is_empty() {
            name.to_string()
        } else {
            alloc::format!("{parent}.{name}")
        };
        let idx = self.module_index(&full);
        self.path.push(idx);
        let r = f(self);
        self.path.pop();
        r
    }

    fn module_index(&mut self, name: &str) -> usize {
        match self.modules.iter().position(|m| m.name == name) {
            Some(i) => i,
            None => {
                self.modules.push(ModuleRow::new(name.to_string()));
                self.modules.len() - 1
            }
        }
    }

    // ------------------------------------------------------- backward

    /// Replays the backward pass from `root` in the engine's order
    /// (reverse post-order of a depth-first walk, as `Tensor::backward`).
    fn run_backward(&mut self, root: &PlanTensor) -> Result<()> {
        let Some(root_node) = root.node else {
            return Ok(());
        };
        self.backward = true;
        let mut index: BTreeMap<usize, usize> = BTreeMap::new();
        let mut order: Vec<usize> = Vec::new();
        let mut stack: Vec<(usize, usize)> = vec![(root_node, 0)];
        index.insert(root_node, usize::MAX);
        while let Some((node, next)) = stack.pop() {
            if let Some(child) = self.nodes[node].inputs.get(next).copied() {
                stack.push((node, next + 1));
                if let Some(c) = child
                    && !index.contains_key(&c)
                {
                    index.insert(c, usize::MAX);
                    stack.push((c, 0));
                }
            } else {
                index.insert(node, order.len());
                order.push(node);
            }
        }
        let n = order.len();
        let mut pending: Vec<Option<PlanTensor>> = (0..n).map(|_| None).collect();
        // The seed: a one-element tensor of ones.
        pending[n - 1] = Some(self.alloc(root.dims())?);
        for i in (0..n).rev() {
            let id = order[i];
            let Some(grad) = pending[i].take() else {
                continue;
            };
            if let Some(p) = self.nodes[id].leaf {
                // The gradient moves into the parameter's slot.
                let b = &mut self.bufs[grad.buf];
                if b.cat != Category::Gradients {
                    let bytes = b.bytes;
                    self.now[b.cat as usize] -= bytes;
                    b.cat = Category::Gradients;
                    self.now[Category::Gradients as usize] += bytes;
                    let m = self.params[p].module;
                    self.modules[m].grads += bytes;
                }
                core::mem::forget(grad);
                continue;
            }
            let needs: Vec<bool> = self.nodes[id].inputs.iter().map(Option::is_some).collect();
            let f = self.nodes[id].backward.take();
            let saved = core::mem::take(&mut self.nodes[id].saved);
            let module = self.nodes[id].module;
            self.path.push(module);
            let grads = match &f {
                Some(f) => f(self, &grad, &needs, &saved)?,
                None => Vec::new(),
            };
            self.path.pop();
            for s in saved {
                self.release(s);
            }
            self.release(grad);
            let inputs = self.nodes[id].inputs.clone();
            for (input, g) in inputs.into_iter().zip(grads) {
                let (Some(input), Some(g)) = (input, g) else {
                    continue;
                };
                let j = index[&input];
                pending[j] = Some(match pending[j].take() {
                    None => g,
                    Some(acc) => {
                        // `acc += g`: in place when `acc` is the only handle
                        // to its buffer and not a broadcast view, else copy
                        // on write.
                        let b = &self.bufs[acc.buf];
                        let acc = if b.refs > 1 || acc.numel() > b.elems {
                            let fresh = self.alloc(acc.dims())?;
                            self.release(acc);
                            fresh
                        } else {
                            acc
                        };
                        self.release(g);
                        acc
                    }
                });
            }
        }
        self.backward = false;
        Ok(())
    }
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new()
    }
}

/// The memory one training step of `model` needs: forward on an input of
/// shape `input` (the batch), `loss` against its target, backward, and an
/// update by `optimizer`, predicted from shapes on the kernel path and
/// thread count in force (see the [module docs](self)). Frozen parameters
/// (not requiring grad) get no gradient and no optimizer state.
///
/// Errors if a module (or one of its children) does not implement
/// [`Module::plan`], or the shapes do not fit.
pub fn plan_step(
    model: &dyn Module,
    input: &[usize],
    loss: PlanLoss,
    optimizer: &dyn Optimizer,
) -> Result<MemoryPlan> {
    plan_step_with(Planner::new(), model, input, loss, optimizer)
}

/// [`plan_step`] with an explicit planner (e.g. for another kernel path or
/// thread count: [`Planner::with_config`]).
pub fn plan_step_with(
    mut p: Planner,
    model: &dyn Module,
    input: &[usize],
    loss: PlanLoss,
    optimizer: &dyn Optimizer,
) -> Result<MemoryPlan> {
    // Parameters and buffers, held throughout; optimizer state for the
    // trained ones.
    let mut params: Vec<(String, Tensor)> = Vec::new();
    model.visit_params("", &mut |n, t| params.push((n.to_string(), t.clone())));
    let mut buffers: Vec<(String, Tensor)> = Vec::new();
    model.visit_buffers("", &mut |n, t| buffers.push((n.to_string(), t.clone())));
    let per_param = optimizer.state_tensors_per_param();
    for (name, t) in params.iter().chain(&buffers) {
        if p.by_id.contains_key(&t.id()) {
            continue; // a shared (tied) parameter
        }
        let owner = name.rsplit_once('.').map_or("", |(m, _)| m);
        let module = p.module_index(owner);
        let buf = p.new_buf(t.numel(), Category::Parameters);
        p.modules[module].params += p.bufs[buf].bytes;
        let node = if t.requires_grad() {
            let state = per_param * pool::block_bytes(t.numel());
            for _ in 0..per_param {
                p.new_buf(t.numel(), Category::OptimizerState);
            }
            p.modules[module].state += state;
            p.nodes.push(Node {
                inputs: Vec::new(),
                saved: Vec::new(),
                backward: None,
                leaf: Some(p.params.len()),
                module,
            });
            Some(p.nodes.len() - 1)
        } else {
            None
        };
        p.by_id.insert(t.id(), p.params.len());
        p.params.push(Param { module, buf, node });
    }
    let x = p.alloc(input)?;
    p.recategorize(&x, Category::Inputs);
    let y = model.plan(&mut p, &x)?;
    let l = p.scope("loss", |p| ops::loss(p, loss, &y))?;
    p.run_backward(&l)?;
    // The optimizer updates in place: nothing is allocated in the steady
    // state. The caller still holds the input, target, output and loss.
    Ok(p.finish())
}

impl Planner {
    fn recategorize(&mut self, t: &PlanTensor, cat: Category) {
        let b = &mut self.bufs[t.buf];
        self.now[b.cat as usize] -= b.bytes;
        b.cat = cat;
        self.now[cat as usize] += b.bytes;
        self.note();
    }

    fn finish(self) -> MemoryPlan {
        let mut modules = self.modules;
        modules.retain(|m| !m.is_empty());
        // Model order: dotted paths compared part by part, numbers as
        // numbers; the loss last.
        crate::sort::sort_stable_by(&mut modules, |a, b| {
            let key = |n: &str| n == "loss";
            key(&a.name).cmp(&key(&b.name)).then_with(|| {
                let (mut x, mut y) = (a.name.split('.'), b.name.split('.'));
                loop {
                    match (x.next(), y.next()) {
                        (None, None) => return core::cmp::Ordering::Equal,
                        (None, Some(_)) => return core::cmp::Ordering::Less,
                        (Some(_), None) => return core::cmp::Ordering::Greater,
                        (Some(p), Some(q)) => {
                            let o = match (p.parse::<usize>(), q.parse::<usize>()) {
                                (Ok(i), Ok(j)) => i.cmp(&j),
                                _ => p.cmp(q),
                            };
                            if o.is_ne() {
                                return o;
                            }
                        }
                    }
                }
            })
        });
        MemoryPlan {
            peak: self.peak,
            peak_reserved: self.peak_reserved,
            at_peak: self.at_peak,
            max: self.cat_max,
            modules,
            isa: self.cfg.isa,
            threads: self.cfg.threads,
        }
    }
}
