//! Class losses: [`cross_entropy`] (fused log-softmax, one backward pass)
//! and [`nll_loss`], over logits `[C]` or `[N, C, d1, ...]` handled as rows
//! of `C` classes.

use alloc::vec;

use super::{Reduction, check_constant, dense, slice};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::ops::{grad_if, kern};
use crate::tensor::{MAX_RANK, Shape, Tensor};

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

    /// Row `r` of `s` (rows of `c` elements).
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
        let mut perm = [0usize; MAX_RANK];
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
        let mut perm = [0usize; MAX_RANK];
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
            lhs: input.shape().into(),
            rhs: target.shape().into(),
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
                lhs: input.shape().into(),
                rhs: w.shape().into(),
                detail: "the weight needs one entry per class: shape [C]",
            }),
            _ => Ok(()),
        }
    }
}

/// Marks an ignored target in the index buffer.
const IGNORED: f32 = -1.0;

/// The class of an entry of [`class_indices`]' buffer, `None` if ignored.
#[inline]
fn class_at(v: f32) -> Option<usize> {
    (v >= 0.0).then_some(v as usize)
}

/// A contiguous pool buffer of `n` floats (the losses' work buffers come
/// from the pool, so memory plans and budgets account for them).
fn work_buf(n: usize) -> Result<Tensor> {
    Tensor::try_zeros([n])
}

/// The class indices of `target` in row order (`IGNORED` for
/// `ignore_index`), each a whole number in `0..c`, as a pool buffer (exact:
/// they are f32 values already).
fn class_indices(
    op: &'static str,
    target: &Tensor,
    c: usize,
    ignore: Option<i64>,
) -> Result<Tensor> {
    // An expanded index can claim more entries than memory holds: the
    // buffer is allocated (fallibly) before anything is read.
    let mut buf = work_buf(target.numel())?;
    let out = buf.try_data_mut()?;
    for (o, v) in out.iter_mut().zip(target.values()) {
        *o = class_index(op, v, c, ignore)?.map_or(IGNORED, |k| k as f32);
    }
    Ok(buf)
}

/// The class a target value names: `None` for `ignore`, else a whole number
/// in `0..c`; `InvalidArgument` for a fraction or a non-finite value,
/// `IndexOutOfRange` outside `0..c`.
pub(crate) fn class_index(
    op: &'static str,
    v: f32,
    c: usize,
    ignore: Option<i64>,
) -> Result<Option<usize>> {
    if !v.is_finite() || libm::truncf(v) != v {
        return Err(Error::InvalidArgument {
            op,
            detail: "class indices must be whole numbers (f32 values without a fraction)",
        });
    }
    if ignore.is_some_and(|i| v as i64 == i) {
        Ok(None)
    } else if v < 0.0 || v >= c as f32 {
        Err(Error::IndexOutOfRange {
            op,
            index: v as isize,
            size: c,
        })
    } else {
        Ok(Some(v as usize))
    }
}

/// The per-sample `losses` (a pool buffer) reduced as asked; `denom`
/// divides the sum for `Mean`.
fn class_output(
    losses: Tensor,
    sample: &Shape,
    reduction: Reduction,
    denom: f32,
) -> Result<Tensor> {
    match reduction {
        Reduction::None => losses.try_reshape(sample),
        Reduction::Sum => Tensor::try_full([], kern::sum(slice(&losses))),
        Reduction::Mean => Tensor::try_full([], kern::sum(slice(&losses)) / denom),
    }
}

/// The factor each row's gradient is scaled by: the output gradient `g`
/// (per sample for `None`), divided by `denom` for `Mean`; contiguous.
fn row_scales(
    op: &'static str,
    g: &Tensor,
    sample: &Shape,
    reduction: Reduction,
    denom: f32,
) -> Result<Tensor> {
    match reduction {
        Reduction::None => dense(op, g, sample),
        Reduction::Sum => Tensor::try_full([sample.numel()], g.try_item()?),
        Reduction::Mean => Tensor::try_full([sample.numel()], g.try_item()? / denom),
    }
}

/// A class weight as a contiguous tensor (itself when it already is).
fn class_weight(weight: Option<&Tensor>) -> Result<Option<Tensor>> {
    weight.map(Tensor::try_contiguous).transpose()
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
/// [module docs](crate::nn::loss)); an empty batch gives NaN for `Mean`, 0 for `Sum`.
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

/// Log-softmax of every row of `x` (row order), by the kernel table:
/// `(x - max) - ln(sum(e^(x - max)))`, PyTorch's order of operations
/// (subtracting the maximum first keeps full precision for large logits). A
/// row with NaN or `+inf`, or all `-inf`, gives NaN.
fn log_softmax_rows(cls: &Classes, x: &[f32]) -> Result<Tensor> {
    let k = crate::kernels::table().log_softmax_rows;
    Tensor::try_from_fill(Shape::try_for("cross_entropy", &[x.len()])?, |o| {
        k(&x[..cls.rows * cls.c], o, cls.c)
    })
}

/// Cross-entropy with class indices. The forward pass computes each row's
/// log-softmax with the kernel table's row kernel and saves `exp` of it (as
/// PyTorch's `nll_loss(log_softmax)` does through its backward). The backward pass
/// writes `(p * sum(q) - q) * scale` per row, where `q` is the row's target
/// distribution: `a w[y]` at the target class `y` plus `b w[j]` everywhere
/// (`a = 1 - smoothing`, `b = smoothing / C`).
fn cross_entropy_indices(
    cls: Classes,
    input: &Tensor,
    ys: Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy";
    let c = cls.c;
    let w = class_weight(weight)?;
    let wt = |w: &Option<Tensor>, k: usize| w.as_ref().map_or(1.0, |w| slice(w)[k]);
    let a = 1.0 - eps;
    let b = eps / c as f32;
    let mut losses = work_buf(cls.rows)?;
    let mut denom = 0.0f64;
    let x = cls.permute_rows(OP, input)?;
    let xs = slice(&x);
    // Scratch row of weighted log-probabilities for the smoothing term.
    let mut scratch = if eps > 0.0 && w.is_some() {
        Some(work_buf(c)?)
    } else {
        None
    };
    let weighted: &mut [f32] = match &mut scratch {
        Some(t) => t.try_data_mut()?,
        None => &mut [],
    };
    let ls = losses.try_data_mut()?;
    // `probs` holds each row's log-probabilities first, then (one `exp` over
    // the whole buffer) the probabilities the backward pass uses, as
    // PyTorch's `exp(log_softmax)`.
    let mut probs = log_softmax_rows(&cls, xs)?;
    drop(x);
    let p = probs.try_data_mut()?;
    for (r, (&y, l)) in slice(&ys).iter().zip(ls.iter_mut()).enumerate() {
        let Some(y) = class_at(y) else {
            continue;
        };
        let logp = cls.row(p, r);
        let wy = wt(&w, y);
        denom += f64::from(wy);
        let mut v = -(a * wy * logp[y]);
        if eps > 0.0 {
            v -= b * if w.is_some() {
                for (j, (o, &q)) in weighted.iter_mut().zip(logp).enumerate() {
                    *o = wt(&w, j) * q;
                }
                kern::sum(weighted)
            } else {
                kern::sum(logp)
            };
        }
        *l = v;
    }
    (crate::kernels::table().exp.map_inplace)(p);
    drop(scratch);
    let denom = denom as f32;
    let out = class_output(losses, &cls.sample, reduction, denom)?;
    if !needs_grad(&[input]) {
        return Ok(out);
    }
    let shape = input.shape().clone();
    Ok(
        out.record("CrossEntropyLossBackward0", &[input], move |g, _| {
            let scale = row_scales(OP, g, &cls.sample, reduction, denom)?;
            let ps = slice(&probs);
            let wsum: f32 = w.as_ref().map_or(c as f32, |w| slice(w).iter().sum());
            let grad = cls.unpermute_rows(&shape, |o| {
                for (r, (&y, &s)) in slice(&ys).iter().zip(slice(&scale)).enumerate() {
                    let out = &mut o[r * c..(r + 1) * c];
                    let Some(y) = class_at(y) else {
                        out.fill(0.0);
                        continue;
                    };
                    let ay = a * wt(&w, y);
                    let total = ay + b * wsum;
                    for (j, (o, &p)) in out.iter_mut().zip(cls.row(ps, r)).enumerate() {
                        *o = p * total - b * wt(&w, j);
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
    let w = class_weight(weight)?;
    let (lp, qs) = (slice(&logp), slice(&q));
    let mut losses = work_buf(cls.rows)?;
    let mut prod_buf = work_buf(c)?;
    let prod = prod_buf.try_data_mut()?;
    for (r, l) in losses.try_data_mut()?.iter_mut().enumerate() {
        let (lr, qr) = (cls.row(lp, r), cls.row(qs, r));
        kern::zip(lr, qr, prod, |l, q| l * q);
        if let Some(w) = &w {
            kern::zip_inplace(prod, slice(w), |p, w| p * w);
        }
        *l = -kern::sum(prod);
    }
    drop(prod_buf);
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
            let wt = |k: usize| w.as_ref().map_or(1.0, |w| slice(w)[k]);
            // d/dx_j = s (p_j sum_c w_c q_c - w_j q_j)
            let gx = grad_if(need[0], || {
                cls.unpermute_rows(&shape, |o| {
                    for (r, &s) in slice(&scale).iter().enumerate() {
                        let (lr, qr) = (cls.row(lp, r), cls.row(qs, r));
                        let out = &mut o[r * c..(r + 1) * c];
                        let total: f32 = match &w {
                            Some(w) => qr.iter().zip(slice(w)).map(|(q, w)| q * w).sum(),
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
                    for (r, &s) in slice(&scale).iter().enumerate() {
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
                    // f64 sums over the rows, one per class (C values on
                    // the heap, fallibly).
                    let mut acc = crate::pool::try_vec(c)?;
                    acc.resize(c, 0.0f64);
                    for (r, &s) in slice(&scale).iter().enumerate() {
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
    let w = class_weight(weight)?;
    let wt = move |k: usize| w.as_ref().map_or(1.0, |w| slice(w)[k]);
    let reduction = options.reduction;
    let x = cls.permute_rows(OP, input)?;
    let xs = slice(&x);
    let mut losses = work_buf(cls.rows)?;
    let mut denom = 0.0f64;
    for (r, (&y, l)) in slice(&ys).iter().zip(losses.try_data_mut()?).enumerate() {
        if let Some(y) = class_at(y) {
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
            for (r, (&y, &s)) in slice(&ys).iter().zip(slice(&scale)).enumerate() {
                if let Some(y) = class_at(y) {
                    o[r * c + y] = -wt(y) * s;
                }
            }
        })?;
        Ok(vec![Some(grad)])
    }))
}
