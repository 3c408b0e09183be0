//! Reductions over all elements or over given dimensions (`keepdim` keeps the
//! reduced dimensions with size 1), and their gradients: `sum`, `mean`,
//! `max`/`min` (all, `*_dims` = amax/amin, `*_dim` with indices),
//! `argmax`/`argmin`, `var`/`std` (with a correction), `norm` (p = 1, 2, inf),
//! `logsumexp` and `prod`. Indices are f32 tensors.
//!
//! A reduction walks the input together with the output broadcast back to the
//! input's shape (stride 0 along reduced dimensions). For `sum`/`mean`, runs
//! along a reduced innermost dimension are summed by a kernel, runs along a
//! kept one are added element-wise into the output, and partial sums are
//! combined with Kahan compensation, so the order is fixed (results are
//! deterministic) and error stays small when many runs land in one output
//! element. The other reductions fold element by element in logical order
//! (see the `Plan` walk below), which also makes them independent of the
//! input's strides.

use alloc::vec;

use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

/// Resolves `dims` into a mask over `rank` dimensions; an empty list means all
/// dimensions (as PyTorch's `dim=None`). Repeats are an error.
pub(crate) fn dim_mask<D: Dim>(
    op: &'static str,
    dims: &[D],
    rank: usize,
) -> Result<[bool; MAX_RANK]> {
    let mut mask = [false; MAX_RANK];
    if dims.is_empty() {
        mask[..rank].fill(true);
        return Ok(mask);
    }
    for &d in dims {
        let Some(d) = resolve_dim(op, d, rank)? else {
            continue;
        };
        if mask[d] {
            return Err(Error::InvalidArgument {
                op,
                detail: "a dimension appears more than once",
            });
        }
        mask[d] = true;
    }
    Ok(mask)
}

/// Resolves one dimension argument. A 0-D tensor accepts `0` and `-1` (as
/// PyTorch does) and has nothing to reduce: `None`.
pub(crate) fn resolve_dim(op: &'static str, dim: impl Dim, rank: usize) -> Result<Option<usize>> {
    if rank == 0 {
        return match dim.resolve(op, 1) {
            Ok(_) => Ok(None),
            Err(_) => Err(Error::DimOutOfRange {
                op,
                dim: dim.as_isize(),
                rank,
            }),
        };
    }
    dim.resolve(op, rank).map(Some)
}

/// The shape after reducing the masked dimensions.
pub(crate) fn reduced_shape(shape: &Shape, mask: &[bool], keepdim: bool) -> Shape {
    let mut out = Shape::scalar();
    for (i, &d) in shape.dims().iter().enumerate() {
        if !mask[i] {
            let _ = out.push(d);
        } else if keepdim {
            let _ = out.push(1);
        }
    }
    out
}

/// Sum over the masked dimensions; the result has the keepdim shape.
pub(crate) fn sum_keepdim(x: &Tensor, mask: &[bool]) -> Result<Tensor> {
    let keep = reduced_shape(x.shape(), mask, true);
    let mut out = Tensor::try_zeros(keep.dims())?;
    let mut comp = Tensor::try_zeros(keep.dims())?;
    let lo = out.layout.broadcast_to("sum", x.shape())?;
    let src = x.storage.as_slice();
    let acc = out.storage.get_mut().expect("fresh buffer");
    let c = comp.storage.get_mut().expect("fresh buffer");
    let add = |acc: &mut [f32], c: &mut [f32], j: usize, v: f32| {
        kahan_add(&mut acc[j], &mut c[j], v);
    };
    let k = crate::kernels::table();
    let walker = Walker::new([&lo, &x.layout]);
    // A strided run is gathered whole and summed by the same kernel as a
    // contiguous one, so a view and its contiguous copy sum identically.
    let mut stack = [0.0f32; super::CHUNK];
    let mut scratch: Option<Tensor> = None;
    for run in walker {
        let (oj, so) = (run.offsets[0], run.strides[0]);
        let (ox, sx) = (run.offsets[1], run.strides[1]);
        if so == 0 {
            let s = if sx == 1 {
                crate::kernels::parallel::sum(&src[ox..ox + run.len])
            } else {
                let buf: &mut [f32] = if run.len <= super::CHUNK {
                    &mut stack[..run.len]
                } else {
                    if scratch.is_none() {
                        scratch = Some(Tensor::try_zeros([run.len])?);
                    }
                    let t = scratch.as_mut().expect("set just above");
                    t.storage.get_mut().expect("fresh buffer")
                };
                (k.copy_strided)(&src[ox..], sx, buf);
                crate::kernels::parallel::sum(buf)
            };
            add(acc, c, oj, s);
        } else if so == 1 && sx == 1 {
            // A contiguous row into contiguous accumulators (a sum over a
            // leading dimension, e.g. a bias gradient): element-wise over
            // slices, which the compiler vectorizes.
            let (a, cc) = (&mut acc[oj..oj + run.len], &mut c[oj..oj + run.len]);
            for ((a, cc), &v) in a.iter_mut().zip(cc.iter_mut()).zip(&src[ox..ox + run.len]) {
                kahan_add(a, cc, v);
            }
        } else {
            for i in 0..run.len {
                add(acc, c, oj + i * so, src[ox + i * sx]);
            }
        }
    }
    Ok(out)
}

/// Sums `g` down to `shape` (the reverse of broadcasting `shape` to `g`'s
/// shape): leading extra dimensions and dimensions that were 1 are summed.
pub(crate) fn sum_to_shape(g: &Tensor, shape: &Shape) -> Result<Tensor> {
    if g.dims() == shape.dims() {
        return Ok(g.clone());
    }
    let (gr, r) = (g.rank(), shape.rank());
    if gr < r {
        return Err(Error::ShapeMismatch {
            op: "sum_to_shape",
            lhs: g.shape().into(),
            rhs: (shape.clone()).into(),
            detail: "the gradient has fewer dimensions than the operand",
        });
    }
    let mut mask = [false; MAX_RANK];
    for (i, m) in mask.iter_mut().enumerate().take(gr) {
        *m = i < gr - r || (shape[i - (gr - r)] == 1 && g.dims()[i] != 1);
    }
    sum_keepdim(g, &mask[..gr])?.try_reshape(shape)
}

impl Tensor {
    /// Sum of all elements, as a 0-D tensor. Panics if memory runs out.
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        unwrap(self.try_sum())
    }

    /// [`sum`](Self::sum), or `OutOfMemory`.
    pub fn try_sum(&self) -> Result<Tensor> {
        self.try_sum_dims::<usize>(&[], false)
    }

    /// Sum over `dims` (negative counts from the end; empty = all), keeping
    /// them as size 1 if `keepdim`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_sum_dims`](Self::try_sum_dims).
    #[track_caller]
    pub fn sum_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_sum_dims(dims, keepdim))
    }

    /// [`sum_dims`](Self::sum_dims), or an error.
    pub fn try_sum_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("sum", dims.as_ref(), self.rank())?;
        self.reduce_linear("SumBackward1", &mask, keepdim, 1.0)
    }

    /// Mean of all elements, as a 0-D tensor (NaN for an empty tensor). Panics
    /// if memory runs out.
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        unwrap(self.try_mean())
    }

    /// [`mean`](Self::mean), or `OutOfMemory`.
    pub fn try_mean(&self) -> Result<Tensor> {
        self.try_mean_dims::<usize>(&[], false)
    }

    /// Mean over `dims` (empty = all), keeping them as size 1 if `keepdim`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_mean_dims`](Self::try_mean_dims).
    #[track_caller]
    pub fn mean_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_mean_dims(dims, keepdim))
    }

    /// [`mean_dims`](Self::mean_dims), or an error.
    pub fn try_mean_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("mean", dims.as_ref(), self.rank())?;
        let count: usize = (0..self.rank())
            .filter(|&i| mask[i])
            .map(|i| self.dims()[i])
            .product();
        self.reduce_linear("MeanBackward1", &mask, keepdim, 1.0 / count as f32)
    }

    /// `scale * sum` over the masked dims, with its gradient (`scale * g`
    /// broadcast back over the reduced dimensions).
    fn reduce_linear(
        &self,
        name: &'static str,
        mask: &[bool; MAX_RANK],
        keepdim: bool,
        scale: f32,
    ) -> Result<Tensor> {
        let mut out = sum_keepdim(self, &mask[..self.rank()])?;
        if scale != 1.0 {
            out.try_write_runs(true, |b, o, n, s| {
                for i in 0..n {
                    b[o + i * s] *= scale;
                }
            })?;
        }
        if !keepdim {
            let shape = reduced_shape(self.shape(), mask, false);
            out = out.try_reshape(&shape)?;
        }
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (in_shape, keep) = (
            self.shape().clone(),
            reduced_shape(self.shape(), mask, true),
        );
        Ok(out.record(name, &[self], move |g, _| {
            let g = g.try_reshape(&keep)?;
            let g = if scale != 1.0 {
                g.try_mul_scalar(scale)?
            } else {
                g
            };
            Ok(vec![Some(g.try_broadcast_to(&in_shape)?)])
        }))
    }
}

// ------------------------------------------------------------------------
// The other reductions (max/min, arg-max/min, var/std, norm, logsumexp, prod)
// share one walk: the input is visited in logical order together with the
// keepdim result broadcast back to the input's shape (stride 0 along reduced
// dimensions, as in `sum_keepdim`), an element's position within its reduced
// group, and its position in the input. Every group is folded element by
// element in order of position, so the first occurrence wins ties and the
// result depends only on the values, never on the input's strides (a view and
// its contiguous copy give bit-identical results). Sums are Kahan-compensated.

/// `acc += v` with Kahan compensation `c`. Once the sum stops being finite the
/// compensation is dropped, so an infinity stays infinite instead of turning
/// into NaN (`inf - inf`).
#[inline]
pub(crate) fn kahan_add(acc: &mut f32, c: &mut f32, v: f32) {
    let y = v - *c;
    let t = *acc + y;
    *c = if t.is_finite() { (t - *acc) - y } else { 0.0 };
    *acc = t;
}

/// Largest reduced-group size whose positions an f32 index holds exactly.
const MAX_F32_INDEX: usize = 1 << 24;

/// A reduction of the masked dimensions of a shape: the result's keepdim
/// shape and the layouts walked alongside the input.
#[derive(Clone)]
struct Plan {
    mask: [bool; MAX_RANK],
    /// The result's shape with the reduced dimensions kept as size 1.
    keep: Shape,
    /// Elements folded into each result element.
    count: usize,
    /// The contiguous keepdim result broadcast back to the input's shape.
    out: Layout,
    /// Position within the reduced group: row-major strides over the reduced
    /// dimensions, 0 along kept ones (no storage behind it).
    pos: Layout,
    /// Logical position in the input: the contiguous layout of its shape.
    flat: Layout,
}

/// One run of a plan's walk: element `i < len` is `x[x + i * xs]` (a storage
/// index), belongs to result element `o + i * os` (contiguous keepdim order),
/// sits at position `k + i * ks` in its group and at `p + i * ps` in the input.
#[derive(Clone, Copy)]
struct Seg {
    len: usize,
    x: usize,
    xs: usize,
    o: usize,
    os: usize,
    k: usize,
    ks: usize,
    p: usize,
    ps: usize,
}

impl Plan {
    fn new(op: &'static str, shape: &Shape, mask: [bool; MAX_RANK]) -> Result<Plan> {
        let rank = shape.rank();
        let keep = reduced_shape(shape, &mask, true);
        let out = Layout::contiguous(keep.clone()).broadcast_to(op, shape)?;
        let mut strides = [0usize; MAX_RANK];
        let mut count = 1usize;
        for d in (0..rank).rev() {
            if mask[d] {
                strides[d] = count;
                count *= shape[d];
            }
        }
        Ok(Plan {
            mask,
            keep,
            count,
            out,
            pos: Layout::from_parts(shape.clone(), &strides[..rank], 0),
            flat: Layout::contiguous(shape.clone()),
        })
    }

    /// Number of result elements.
    fn groups(&self) -> usize {
        self.keep.numel()
    }

    /// The result's shape.
    fn shape(&self, keepdim: bool) -> Shape {
        if keepdim {
            self.keep.clone()
        } else {
            reduced_shape(self.flat.shape(), &self.mask, false)
        }
    }

    /// Visits `x` (a layout of the planned shape) in logical order.
    fn walk(&self, x: &Layout, mut f: impl FnMut(Seg)) {
        for r in Walker::new([&self.out, x, &self.pos, &self.flat]) {
            f(Seg {
                len: r.len,
                o: r.offsets[0],
                os: r.strides[0],
                x: r.offsets[1],
                xs: r.strides[1],
                k: r.offsets[2],
                ks: r.strides[2],
                p: r.offsets[3],
                ps: r.strides[3],
            });
        }
    }

    /// `InvalidArgument` when the groups are empty: reductions without an
    /// identity (max, min, arg*) are undefined there, as in PyTorch.
    fn check_nonempty(&self, op: &'static str) -> Result<()> {
        if self.count == 0 {
            return Err(Error::InvalidArgument {
                op,
                detail: "cannot reduce over an empty dimension (the reduction has no identity)",
            });
        }
        Ok(())
    }

    /// `InvalidArgument` when positions in a group do not fit f32 indices.
    fn check_index_range(&self, op: &'static str) -> Result<()> {
        if self.count > MAX_F32_INDEX {
            return Err(Error::InvalidArgument {
                op,
                detail: "the reduced dimensions hold more than 2^24 elements, \
                         beyond what f32 indices represent exactly",
            });
        }
        Ok(())
    }
}

/// Folds every element of `x` into the state of its group, groups visited in
/// order of position: `step(state, value, position, group)`. Returns the
/// states, `K` floats per group in keepdim order, as a flat tensor.
fn fold<const K: usize>(
    plan: &Plan,
    x: &Tensor,
    init: [f32; K],
    mut step: impl FnMut(&mut [f32; K], f32, usize, usize),
) -> Result<Tensor> {
    let src = x.storage.as_slice();
    Tensor::try_from_fill(Shape::new(&[plan.groups() * K])?, |buf| {
        let states = buf.as_chunks_mut::<K>().0;
        states.fill(init);
        plan.walk(&x.layout, |s| {
            if s.os == 0 {
                // The whole run belongs to one group: keep its state local.
                let mut st = states[s.o];
                if s.xs == 1 {
                    for (i, &v) in src[s.x..s.x + s.len].iter().enumerate() {
                        step(&mut st, v, s.k + i * s.ks, s.o);
                    }
                } else {
                    for i in 0..s.len {
                        step(&mut st, src[s.x + i * s.xs], s.k + i * s.ks, s.o);
                    }
                }
                states[s.o] = st;
            } else {
                for i in 0..s.len {
                    let j = s.o + i * s.os;
                    step(&mut states[j], src[s.x + i * s.xs], s.k + i * s.ks, j);
                }
            }
        });
    })
}

/// Kahan accumulators per sum in a long group (see [`fold_sums`]).
const LANES: usize = 8;

/// Compensated sums of `f(value, group)` (`S` sums per element) over each
/// group; returns `S` sums per group, in keepdim order, as a flat tensor.
///
/// Groups of at least `8 * LANES` elements spread each sum over `LANES` Kahan
/// accumulators by position modulo `LANES` (independent dependency chains),
/// combined in lane order at the end. The split depends only on positions, so
/// the result still does not depend on the input's strides.
fn fold_sums<const S: usize>(
    plan: &Plan,
    x: &Tensor,
    f: impl Fn(f32, usize) -> [f32; S],
) -> Result<Tensor> {
    let (acc, lanes) = lane_sums(plan, x, f)?;
    let pairs = states::<2>(&acc);
    Tensor::try_from_fill(Shape::new(&[plan.groups() * S])?, |out| {
        for (j, o) in out.chunks_exact_mut(S).enumerate() {
            for (k, o) in o.iter_mut().enumerate() {
                // Each lane's sum is `acc - c`.
                let (mut a, mut c) = (0.0, 0.0);
                for lane in 0..lanes {
                    let [la, lc] = pairs[(j * lanes + lane) * S + k];
                    kahan_add(&mut a, &mut c, la);
                    kahan_add(&mut a, &mut c, -lc);
                }
                *o = a;
            }
        }
    })
}

/// The accumulators of [`fold_sums`] before the lanes are combined: per group
/// `lanes * S` (sum, compensation) pairs, lane-major; and `lanes`.
fn lane_sums<const S: usize>(
    plan: &Plan,
    x: &Tensor,
    f: impl Fn(f32, usize) -> [f32; S],
) -> Result<(Tensor, usize)> {
    let lanes = if plan.count >= 8 * LANES { LANES } else { 1 };
    let width = lanes * S;
    let src = x.storage.as_slice();
    let add = |lane: &mut [[f32; 2]], v: [f32; S]| {
        for ([acc, c], v) in lane.iter_mut().zip(v) {
            kahan_add(acc, c, v);
        }
    };
    let acc = Tensor::try_from_fill(Shape::new(&[plan.groups() * width * 2])?, |buf| {
        buf.fill(0.0);
        let pairs = buf.as_chunks_mut::<2>().0;
        plan.walk(&x.layout, |s| {
            if s.os == 0 {
                // The whole run belongs to one group: keep its lanes local.
                let group = &mut pairs[s.o * width..(s.o + 1) * width];
                let mut local = [[[0.0f32; 2]; S]; LANES];
                for (l, g) in local.iter_mut().zip(group.chunks_exact(S)) {
                    l.copy_from_slice(g);
                }
                for i in 0..s.len {
                    let lane = (s.k + i * s.ks) & (lanes - 1);
                    add(&mut local[lane], f(src[s.x + i * s.xs], s.o));
                }
                for (l, g) in local.iter().zip(group.chunks_exact_mut(S)) {
                    g.copy_from_slice(l);
                }
            } else {
                for i in 0..s.len {
                    let j = s.o + i * s.os;
                    let lane = (s.k + i * s.ks) & (lanes - 1);
                    let at = (j * lanes + lane) * S;
                    add(&mut pairs[at..at + S], f(src[s.x + i * s.xs], j));
                }
            }
        });
    })?;
    Ok((acc, lanes))
}

/// The states of a [`fold`] result.
fn states<const K: usize>(t: &Tensor) -> &[[f32; K]] {
    vals(t).as_chunks::<K>().0
}

/// A tensor of `shape` (holding one element per group) from the fold states.
fn finish<const K: usize>(
    st: &Tensor,
    shape: Shape,
    f: impl Fn(&[f32; K]) -> f32,
) -> Result<Tensor> {
    let st = states::<K>(st);
    Tensor::try_from_fill(shape, |out| {
        for (o, s) in out.iter_mut().zip(st) {
            *o = f(s);
        }
    })
}

/// A new contiguous tensor of `x`'s shape: `f(value, position, group)` for
/// every element of `x`.
fn expand(plan: &Plan, x: &Tensor, mut f: impl FnMut(f32, usize, usize) -> f32) -> Result<Tensor> {
    let src = x.storage.as_slice();
    Tensor::try_from_fill(x.shape().clone(), |out| {
        plan.walk(&x.layout, |s| {
            for i in 0..s.len {
                out[s.p + i * s.ps] = f(src[s.x + i * s.xs], s.k + i * s.ks, s.o + i * s.os);
            }
        });
    })
}

/// A new contiguous tensor of the planned input shape: `f(position, group)`
/// for every element (no input values needed).
fn scatter(plan: &Plan, mut f: impl FnMut(usize, usize) -> f32) -> Result<Tensor> {
    Tensor::try_from_fill(plan.flat.shape().clone(), |out| {
        plan.walk(&plan.flat, |s| {
            for i in 0..s.len {
                out[s.p + i * s.ps] = f(s.k + i * s.ks, s.o + i * s.os);
            }
        });
    })
}

/// One value per group (in the result's shape, keepdim or not) as a
/// contiguous tensor in keepdim order.
fn per_group(t: &Tensor, plan: &Plan) -> Result<Tensor> {
    t.try_reshape(&plan.keep)?.try_contiguous()
}

/// The elements of a contiguous tensor.
fn vals(t: &Tensor) -> &[f32] {
    t.as_slice().expect("a contiguous tensor")
}

/// Every dimension of a rank-`rank` shape.
fn all_mask(rank: usize) -> [bool; MAX_RANK] {
    let mut m = [false; MAX_RANK];
    m[..rank].fill(true);
    m
}

/// One dimension (nothing for a 0-D tensor).
fn one_mask(op: &'static str, dim: impl Dim, rank: usize) -> Result<[bool; MAX_RANK]> {
    let mut m = [false; MAX_RANK];
    if let Some(d) = resolve_dim(op, dim, rank)? {
        m[d] = true;
    }
    Ok(m)
}

/// PyTorch's `sgn` for reals: -1, 0 or 1, and 0 for NaN.
#[inline]
fn sgn(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Which extreme a max/min-family reduction keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    Max,
    Min,
}

impl Pick {
    /// Whether `v` replaces the current `best`: strictly better, or the first
    /// NaN (NaN propagates and counts as the extreme, as in PyTorch).
    #[inline]
    fn beats(self, v: f32, best: f32) -> bool {
        let better = match self {
            Pick::Max => v > best,
            Pick::Min => v < best,
        };
        better || (v.is_nan() && !best.is_nan())
    }

    fn worst(self) -> f32 {
        match self {
            Pick::Max => f32::NEG_INFINITY,
            Pick::Min => f32::INFINITY,
        }
    }
}

/// Per group: `[best key(x), its position]`, the first occurrence on ties.
fn extremum(plan: &Plan, x: &Tensor, pick: Pick, key: impl Fn(f32) -> f32) -> Result<Tensor> {
    fold(plan, x, [pick.worst(), 0.0], |s, v, k, _| {
        let v = key(v);
        if pick.beats(v, s[0]) {
            *s = [v, k as f32];
        }
    })
}

/// Gradient of a max/min value reduction with respect to its input: each
/// group's gradient split evenly among the elements equal to the result.
/// `nan_aware` (PyTorch's `evenly_distribute_backward`, used by `max()`):
/// NaN results match NaN inputs and other elements get 0. Otherwise
/// (`amax`'s `scale_grad_by_count`): `(g / count) * (x == r)`, which is NaN
/// for the whole group when the result is NaN.
fn ties_backward(
    plan: &Plan,
    x: &Tensor,
    r: &Tensor,
    g: &Tensor,
    nan_aware: bool,
) -> Result<Tensor> {
    let (r, g) = (per_group(r, plan)?, per_group(g, plan)?);
    let (rv, gv) = (vals(&r), vals(&g));
    let hit = |v: f32, j: usize| {
        if nan_aware && rv[j].is_nan() {
            v.is_nan()
        } else {
            v == rv[j]
        }
    };
    let count = fold(plan, x, [0.0], |s, v, _, j| {
        if hit(v, j) {
            s[0] += 1.0;
        }
    })?;
    let cv = states::<1>(&count);
    expand(plan, x, |v, _, j| {
        let share = gv[j] / cv[j][0];
        match (nan_aware, hit(v, j)) {
            (_, true) => share,
            (true, false) => 0.0,
            (false, false) => share * 0.0,
        }
    })
}

impl Tensor {
    // ------------------------------------------------------------ max / min

    /// The largest element as a 0-D tensor; NaN if any element is NaN. The
    /// gradient is split evenly among the elements equal to the maximum (as
    /// PyTorch's `max()`).
    ///
    /// # Panics
    /// If the tensor is empty; see [`try_max`](Self::try_max).
    #[track_caller]
    pub fn max(&self) -> Tensor {
        unwrap(self.try_max())
    }

    /// [`max`](Self::max), or `InvalidArgument` for an empty tensor.
    pub fn try_max(&self) -> Result<Tensor> {
        self.extreme_all("max", "MaxBackward1", Pick::Max)
    }

    /// The smallest element as a 0-D tensor; NaN if any element is NaN. The
    /// gradient is split evenly among the elements equal to the minimum.
    ///
    /// # Panics
    /// If the tensor is empty; see [`try_min`](Self::try_min).
    #[track_caller]
    pub fn min(&self) -> Tensor {
        unwrap(self.try_min())
    }

    /// [`min`](Self::min), or `InvalidArgument` for an empty tensor.
    pub fn try_min(&self) -> Result<Tensor> {
        self.extreme_all("min", "MinBackward1", Pick::Min)
    }

    fn extreme_all(&self, op: &'static str, name: &'static str, pick: Pick) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), all_mask(self.rank()))?;
        plan.check_nonempty(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let out = finish::<2>(&st, Shape::scalar(), |s| s[0])?;
        Ok(self.record_ties(out, name, plan, true))
    }

    /// Largest values over `dims` (negative counts from the end; empty = all),
    /// keeping them as size 1 if `keepdim` (PyTorch's `amax`). NaN propagates.
    /// The gradient of each result is split evenly among the elements equal to
    /// it.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated, or a reduced dimension is
    /// empty; see [`try_max_dims`](Self::try_max_dims).
    #[track_caller]
    pub fn max_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_max_dims(dims, keepdim))
    }

    /// [`max_dims`](Self::max_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_max_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("max_dims", dims.as_ref(), self.rank())?;
        self.extreme_dims("max_dims", "AmaxBackward0", mask, keepdim, Pick::Max)
    }

    /// Smallest values over `dims` (empty = all), keeping them as size 1 if
    /// `keepdim` (PyTorch's `amin`); see [`max_dims`](Self::max_dims).
    ///
    /// # Panics
    /// As [`max_dims`](Self::max_dims); see [`try_min_dims`](Self::try_min_dims).
    #[track_caller]
    pub fn min_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_min_dims(dims, keepdim))
    }

    /// [`min_dims`](Self::min_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_min_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("min_dims", dims.as_ref(), self.rank())?;
        self.extreme_dims("min_dims", "AminBackward0", mask, keepdim, Pick::Min)
    }

    fn extreme_dims(
        &self,
        op: &'static str,
        name: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
        pick: Pick,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), mask)?;
        plan.check_nonempty(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let out = finish::<2>(&st, plan.shape(keepdim), |s| s[0])?;
        Ok(self.record_ties(out, name, plan, false))
    }

    /// Records a max/min value reduction; see [`ties_backward`].
    fn record_ties(&self, out: Tensor, name: &'static str, plan: Plan, nan_aware: bool) -> Tensor {
        if !needs_grad(&[self]) {
            return out;
        }
        let (x, r) = (self.detach(), out.detach());
        out.record(name, &[self], move |g, _| {
            Ok(vec![Some(ties_backward(&plan, &x, &r, g, nan_aware)?)])
        })
    }

    /// The largest values along `dim` and their positions (as f32), like
    /// `torch.max(x, dim, keepdim)`: the first occurrence on ties, and a NaN
    /// counts as the largest (its first position is returned). The gradient
    /// of the values goes to the returned positions; the indices have none.
    ///
    /// # Panics
    /// If `dim` is out of range, empty, or longer than 2^24; see
    /// [`try_max_dim`](Self::try_max_dim).
    #[track_caller]
    pub fn max_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        unwrap(self.try_max_dim(dim, keepdim))
    }

    /// [`max_dim`](Self::max_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_max_dim(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("max_dim", "MaxBackward0", dim, keepdim, Pick::Max)
    }

    /// The smallest values along `dim` and their positions (as f32), like
    /// `torch.min(x, dim, keepdim)`; see [`max_dim`](Self::max_dim).
    ///
    /// # Panics
    /// As [`max_dim`](Self::max_dim); see [`try_min_dim`](Self::try_min_dim).
    #[track_caller]
    pub fn min_dim(&self, dim: impl Dim, keepdim: bool) -> (Tensor, Tensor) {
        unwrap(self.try_min_dim(dim, keepdim))
    }

    /// [`min_dim`](Self::min_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_min_dim(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_dim("min_dim", "MinBackward0", dim, keepdim, Pick::Min)
    }

    fn extreme_dim(
        &self,
        op: &'static str,
        name: &'static str,
        dim: impl Dim,
        keepdim: bool,
        pick: Pick,
    ) -> Result<(Tensor, Tensor)> {
        let plan = Plan::new(op, self.shape(), one_mask(op, dim, self.rank())?)?;
        plan.check_nonempty(op)?;
        plan.check_index_range(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        let shape = plan.shape(keepdim);
        let values = finish::<2>(&st, shape.clone(), |s| s[0])?;
        let indices = finish::<2>(&st, shape, |s| s[1])?;
        if !needs_grad(&[self]) {
            return Ok((values, indices));
        }
        let idx = indices.detach();
        let values = values.record(name, &[self], move |g, _| {
            let (idx, g) = (per_group(&idx, &plan)?, per_group(g, &plan)?);
            let (iv, gv) = (vals(&idx), vals(&g));
            Ok(vec![Some(scatter(&plan, |k, j| {
                if k as f32 == iv[j] { gv[j] } else { 0.0 }
            })?)])
        });
        Ok((values, indices))
    }

    // ------------------------------------------------------- argmax / argmin

    /// Position of the largest element in the flattened (row-major) tensor, as
    /// a 0-D f32 tensor: the first on ties, the first NaN if any.
    ///
    /// # Panics
    /// If the tensor is empty or holds more than 2^24 elements; see
    /// [`try_argmax`](Self::try_argmax).
    #[track_caller]
    pub fn argmax(&self) -> Tensor {
        unwrap(self.try_argmax())
    }

    /// [`argmax`](Self::argmax), or `InvalidArgument`.
    pub fn try_argmax(&self) -> Result<Tensor> {
        self.arg_extreme("argmax", all_mask(self.rank()), false, Pick::Max)
    }

    /// Position of the smallest element in the flattened tensor (first on
    /// ties, the first NaN if any), as a 0-D f32 tensor.
    ///
    /// # Panics
    /// As [`argmax`](Self::argmax); see [`try_argmin`](Self::try_argmin).
    #[track_caller]
    pub fn argmin(&self) -> Tensor {
        unwrap(self.try_argmin())
    }

    /// [`argmin`](Self::argmin), or `InvalidArgument`.
    pub fn try_argmin(&self) -> Result<Tensor> {
        self.arg_extreme("argmin", all_mask(self.rank()), false, Pick::Min)
    }

    /// Positions (as f32) of the largest values along `dim`; the indices of
    /// [`max_dim`](Self::max_dim).
    ///
    /// # Panics
    /// If `dim` is out of range, empty, or longer than 2^24; see
    /// [`try_argmax_dim`](Self::try_argmax_dim).
    #[track_caller]
    pub fn argmax_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        unwrap(self.try_argmax_dim(dim, keepdim))
    }

    /// [`argmax_dim`](Self::argmax_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_argmax_dim(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let mask = one_mask("argmax_dim", dim, self.rank())?;
        self.arg_extreme("argmax_dim", mask, keepdim, Pick::Max)
    }

    /// Positions (as f32) of the smallest values along `dim`; the indices of
    /// [`min_dim`](Self::min_dim).
    ///
    /// # Panics
    /// As [`argmax_dim`](Self::argmax_dim); see
    /// [`try_argmin_dim`](Self::try_argmin_dim).
    #[track_caller]
    pub fn argmin_dim(&self, dim: impl Dim, keepdim: bool) -> Tensor {
        unwrap(self.try_argmin_dim(dim, keepdim))
    }

    /// [`argmin_dim`](Self::argmin_dim), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_argmin_dim(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let mask = one_mask("argmin_dim", dim, self.rank())?;
        self.arg_extreme("argmin_dim", mask, keepdim, Pick::Min)
    }

    fn arg_extreme(
        &self,
        op: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
        pick: Pick,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), mask)?;
        plan.check_nonempty(op)?;
        plan.check_index_range(op)?;
        let st = extremum(&plan, self, pick, |v| v)?;
        finish::<2>(&st, plan.shape(keepdim), |s| s[1])
    }

    // ------------------------------------------------------------- var / std

    /// Unbiased variance of all elements (correction 1, PyTorch's default), as
    /// a 0-D tensor: NaN for fewer than two elements. Panics if memory runs
    /// out.
    #[track_caller]
    pub fn var(&self) -> Tensor {
        unwrap(self.try_var())
    }

    /// [`var`](Self::var), or `OutOfMemory`.
    pub fn try_var(&self) -> Result<Tensor> {
        self.try_var_dims::<usize>(&[], 1, false)
    }

    /// Variance over `dims` (negative counts from the end; empty = all):
    /// `sum((x - mean)^2) / max(0, n - correction)` with `n` elements per
    /// result (correction 1 = unbiased, 0 = population), keeping the reduced
    /// dimensions as size 1 if `keepdim`. Computed in two passes (mean, then
    /// compensated sums of deviations), so a large mean costs no accuracy.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_var_dims`](Self::try_var_dims).
    #[track_caller]
    pub fn var_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Tensor {
        unwrap(self.try_var_dims(dims, correction, keepdim))
    }

    /// [`var_dims`](Self::var_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_var_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        self.var_std("var", dims.as_ref(), correction, keepdim, false)
    }

    /// Unbiased standard deviation of all elements (correction 1), as a 0-D
    /// tensor. Panics if memory runs out.
    #[track_caller]
    pub fn std(&self) -> Tensor {
        unwrap(self.try_std())
    }

    /// [`std`](Self::std), or `OutOfMemory`.
    pub fn try_std(&self) -> Result<Tensor> {
        self.try_std_dims::<usize>(&[], 1, false)
    }

    /// Standard deviation over `dims`: the square root of
    /// [`var_dims`](Self::var_dims) with the same arguments. Where the result
    /// is 0 its gradient is 0 (as in PyTorch).
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_std_dims`](Self::try_std_dims).
    #[track_caller]
    pub fn std_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Tensor {
        unwrap(self.try_std_dims(dims, correction, keepdim))
    }

    /// [`std_dims`](Self::std_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_std_dims<D: Dim>(
        &self,
        dims: impl AsRef<[D]>,
        correction: usize,
        keepdim: bool,
    ) -> Result<Tensor> {
        self.var_std("std", dims.as_ref(), correction, keepdim, true)
    }

    fn var_std<D: Dim>(
        &self,
        op: &'static str,
        dims: &[D],
        correction: usize,
        keepdim: bool,
        sqrt: bool,
    ) -> Result<Tensor> {
        let plan = Plan::new(op, self.shape(), dim_mask(op, dims, self.rank())?)?;
        let n = plan.count as f32;
        // Pass 1: the mean.
        let sums = fold_sums(&plan, self, |v, _| [v])?;
        let mean = finish::<1>(&sums, plan.keep.clone(), |s| s[0] / n)?;
        // Pass 2: sums of deviations d and d^2; sum(d)^2 / n removes what the
        // rounding of the mean added.
        let mv = vals(&mean);
        let dev = fold_sums(&plan, self, |v, j| {
            let d = v - mv[j];
            [d, d * d]
        })?;
        let dof = (n - correction as f32).max(0.0);
        let out = finish::<2>(&dev, plan.shape(keepdim), |s| {
            let var = (s[1] - s[0] * s[0] / n) / dof;
            if sqrt { crate::math::sqrtf(var) } else { var }
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        // PyTorch's var_backward: without dims (or for a 0-D input) and dof <= 0
        // the gradient is NaN where x == mean and inf elsewhere; otherwise
        // 2 / (n - correction) * g * (x - mean).
        let whole = dims.is_empty() || self.rank() == 0;
        let dof = n - correction as f32;
        let (x, r) = (self.detach(), out.detach());
        // The mean refined by the deviations' sum: the f32 nearest the true
        // mean, as far as the compensated sums resolve it.
        let dv = states::<2>(&dev);
        let mean = Tensor::try_from_fill(plan.keep.clone(), |o| {
            for ((o, &m), s) in o.iter_mut().zip(mv).zip(dv) {
                *o = m + s[0] / n;
            }
        })?;
        let name = if sqrt { "StdBackward0" } else { "VarBackward0" };
        Ok(out.record(name, &[self], move |g, _| {
            let mut g = per_group(g, &plan)?;
            if sqrt {
                // d std = d var / (2 std), and 0 where std == 0.
                let r = per_group(&r, &plan)?;
                let rv = vals(&r);
                let gv = vals(&g);
                g = Tensor::try_from_fill(plan.keep.clone(), |o| {
                    for ((o, &g), &s) in o.iter_mut().zip(gv).zip(rv) {
                        *o = if s == 0.0 { 0.0 } else { g / (s * 2.0) };
                    }
                })?;
            }
            let (gv, mv) = (vals(&g), vals(&mean));
            let grad = if whole && dof <= 0.0 {
                expand(&plan, &x, |v, _, j| {
                    gv[j] * if v == mv[j] { f32::NAN } else { f32::INFINITY }
                })?
            } else {
                let f = 2.0 / dof;
                expand(&plan, &x, |v, _, j| f * gv[j] * (v - mv[j]))?
            };
            Ok(vec![Some(grad)])
        }))
    }

    // ------------------------------------------------------------------ norm

    /// Euclidean (L2) norm of all elements, as a 0-D tensor. Panics if memory
    /// runs out.
    #[track_caller]
    pub fn norm(&self) -> Tensor {
        unwrap(self.try_norm())
    }

    /// [`norm`](Self::norm), or `OutOfMemory`.
    pub fn try_norm(&self) -> Result<Tensor> {
        self.try_norm_dims::<usize>(2.0, &[], false)
    }

    /// The `p`-norm of all elements (`p` = 1, 2 or `f32::INFINITY`), as a 0-D
    /// tensor.
    ///
    /// # Panics
    /// For another `p`, or an empty tensor with `p = inf`; see
    /// [`try_norm_p`](Self::try_norm_p).
    #[track_caller]
    pub fn norm_p(&self, p: f32) -> Tensor {
        unwrap(self.try_norm_p(p))
    }

    /// [`norm_p`](Self::norm_p), or `InvalidArgument`.
    pub fn try_norm_p(&self, p: f32) -> Result<Tensor> {
        self.try_norm_dims::<usize>(p, &[], false)
    }

    /// The vector `p`-norm over `dims` (empty = all), keeping them as size 1
    /// if `keepdim` (PyTorch's `linalg.vector_norm`): `p = 1` sums `|x|`,
    /// `p = 2` is `sqrt(sum(x^2))`, `p = f32::INFINITY` is `max(|x|)`.
    /// Gradients as PyTorch: `sgn(x) * g` for p = 1; `g * x / norm` for p = 2,
    /// and 0 where the norm is 0; for p = inf `sgn(x) * g` split evenly among
    /// the elements whose `|x|` equals the norm.
    ///
    /// # Panics
    /// If `p` is not 1, 2 or inf, a dimension is out of range or repeated, or
    /// (p = inf) a reduced dimension is empty; see
    /// [`try_norm_dims`](Self::try_norm_dims).
    #[track_caller]
    pub fn norm_dims<D: Dim>(&self, p: f32, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_norm_dims(p, dims, keepdim))
    }

    /// [`norm_dims`](Self::norm_dims), or `InvalidArgument` / `DimOutOfRange`.
    pub fn try_norm_dims<D: Dim>(
        &self,
        p: f32,
        dims: impl AsRef<[D]>,
        keepdim: bool,
    ) -> Result<Tensor> {
        let op = "norm";
        if !(p == 1.0 || p == 2.0 || p == f32::INFINITY) {
            return Err(Error::InvalidArgument {
                op,
                detail: "p must be 1, 2 or infinity",
            });
        }
        let plan = Plan::new(op, self.shape(), dim_mask(op, dims.as_ref(), self.rank())?)?;
        let shape = plan.shape(keepdim);
        let out = if p == f32::INFINITY {
            plan.check_nonempty(op)?;
            let st = extremum(&plan, self, Pick::Max, libm::fabsf)?;
            finish::<2>(&st, shape, |s| s[0])?
        } else {
            let square = p == 2.0;
            let st = fold_sums(&plan, self, |v, _| {
                [if square { v * v } else { libm::fabsf(v) }]
            })?;
            finish::<1>(&st, shape, |s| {
                if square {
                    crate::math::sqrtf(s[0])
                } else {
                    s[0]
                }
            })?
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(
            out.record("LinalgVectorNormBackward0", &[self], move |g, _| {
                let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
                let (rv, gv) = (vals(&r), vals(&g));
                let grad = if p == 1.0 {
                    expand(&plan, &x, |v, _, j| sgn(v) * gv[j])?
                } else if p == 2.0 {
                    expand(&plan, &x, |v, _, j| {
                        if rv[j] == 0.0 {
                            0.0
                        } else {
                            gv[j] * (v / rv[j])
                        }
                    })?
                } else {
                    let hit = |v: f32, j: usize| {
                        let a = libm::fabsf(v);
                        a == rv[j] || a.is_nan()
                    };
                    let count = fold(&plan, &x, [0.0], |s, v, _, j| {
                        if hit(v, j) {
                            s[0] += 1.0;
                        }
                    })?;
                    let cv = states::<1>(&count);
                    expand(&plan, &x, |v, _, j| {
                        let m = if hit(v, j) { 1.0 } else { 0.0 };
                        sgn(v) * ((gv[j] / cv[j][0]) * m)
                    })?
                };
                Ok(vec![Some(grad)])
            }),
        )
    }

    // ------------------------------------------------------------- logsumexp

    /// `log(sum(exp(x)))` over `dims` (empty = all), keeping them as size 1 if
    /// `keepdim`. Stable: each group's maximum is subtracted before `exp` (0
    /// instead when the maximum is infinite), so all `-inf` gives `-inf`, as in
    /// PyTorch. Gradient: `g * exp(x - result)`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_logsumexp`](Self::try_logsumexp).
    #[track_caller]
    pub fn logsumexp<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_logsumexp(dims, keepdim))
    }

    /// [`logsumexp`](Self::logsumexp), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_logsumexp<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let op = "logsumexp";
        let plan = Plan::new(op, self.shape(), dim_mask(op, dims.as_ref(), self.rank())?)?;
        let shift = finish::<2>(
            &extremum(&plan, self, Pick::Max, |v| v)?,
            plan.keep.clone(),
            |s| {
                if s[0].is_infinite() { 0.0 } else { s[0] }
            },
        )?;
        let sv = vals(&shift);
        let sums = fold_sums(&plan, self, |v, j| [libm::expf(v - sv[j])])?;
        let st = states::<1>(&sums);
        let out = Tensor::try_from_fill(plan.shape(keepdim), |o| {
            for ((o, s), &m) in o.iter_mut().zip(st).zip(sv) {
                *o = libm::logf(s[0]) + m;
            }
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(out.record("LogsumexpBackward0", &[self], move |g, _| {
            let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
            let (rv, gv) = (vals(&r), vals(&g));
            Ok(vec![Some(expand(&plan, &x, |v, _, j| {
                gv[j] * libm::expf(v - rv[j])
            })?)])
        }))
    }

    // ------------------------------------------------------------------ prod

    /// Product of all elements, as a 0-D tensor (1 for an empty tensor).
    /// Panics if memory runs out.
    #[track_caller]
    pub fn prod(&self) -> Tensor {
        unwrap(self.try_prod())
    }

    /// [`prod`](Self::prod), or `OutOfMemory`.
    pub fn try_prod(&self) -> Result<Tensor> {
        self.prod_mask("ProdBackward0", all_mask(self.rank()), false)
    }

    /// Product over `dims` (empty = all), keeping them as size 1 if `keepdim`.
    /// Elements are multiplied in order. The gradient is exact with zeros in
    /// the input: with one zero in a group only the zero gets a gradient (the
    /// product of the others), with two or more the group's gradient is 0.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see
    /// [`try_prod_dims`](Self::try_prod_dims).
    #[track_caller]
    pub fn prod_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Tensor {
        unwrap(self.try_prod_dims(dims, keepdim))
    }

    /// [`prod_dims`](Self::prod_dims), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_prod_dims<D: Dim>(&self, dims: impl AsRef<[D]>, keepdim: bool) -> Result<Tensor> {
        let mask = dim_mask("prod", dims.as_ref(), self.rank())?;
        self.prod_mask("ProdBackward1", mask, keepdim)
    }

    fn prod_mask(
        &self,
        name: &'static str,
        mask: [bool; MAX_RANK],
        keepdim: bool,
    ) -> Result<Tensor> {
        let plan = Plan::new("prod", self.shape(), mask)?;
        let st = fold(&plan, self, [1.0], |s, v, _, _| s[0] *= v)?;
        let out = finish::<1>(&st, plan.shape(keepdim), |s| s[0])?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (x, r) = (self.detach(), out.detach());
        Ok(out.record(name, &[self], move |g, _| {
            let (r, g) = (per_group(&r, &plan)?, per_group(g, &plan)?);
            let (rv, gv) = (vals(&r), vals(&g));
            // Per group: [number of zeros, product of the other elements].
            let zeros = fold(&plan, &x, [0.0, 1.0], |s, v, _, _| {
                if v == 0.0 {
                    s[0] += 1.0;
                } else {
                    s[1] *= v;
                }
            })?;
            let zv = states::<2>(&zeros);
            Ok(vec![Some(expand(&plan, &x, |v, _, j| match zv[j][0] {
                0.0 => gv[j] * (rv[j] / v),
                1.0 if v == 0.0 => gv[j] * zv[j][1],
                _ => 0.0,
            })?)])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values spanning many magnitudes and signs, so any change in which
    /// elements share an accumulator changes the accumulator's bits.
    fn spread(rows: usize, cols: usize) -> Tensor {
        let mut g = crate::tensor::Generator::new(7);
        Tensor::from_fn([rows, cols], |_| {
            let m = g.uniform() * 12.0 - 6.0;
            let s = if g.uniform() < 0.5 { -1.0 } else { 1.0 };
            s * libm::powf(10.0, m)
        })
    }

    /// The lane split of compensated sums is by position, so every
    /// accumulator of a view equals the contiguous copy's bit for bit.
    #[test]
    fn lane_accumulators_do_not_depend_on_strides() {
        let x = spread(70, 72);
        let views = [
            x.t(),
            x.slice(0, 0, 70, 2).narrow(1, 1, 71),
            x.slice(1, 0, 72, 3),
            x.select(0, 5).unsqueeze(0).expand([3, 72]),
        ];
        for v in &views {
            let c = v.contiguous();
            for mask in [[true, false], [false, true], [true, true]] {
                let mut m = [false; MAX_RANK];
                m[..2].copy_from_slice(&mask);
                let plan = Plan::new("test", v.shape(), m).unwrap();
                let (a, la) = lane_sums(&plan, v, |v, _| [v, v * v]).unwrap();
                let (b, lb) = lane_sums(&plan, &c, |v, _| [v, v * v]).unwrap();
                assert_eq!(la, lb);
                let bits = |t: &Tensor| {
                    vals(t)
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<alloc::vec::Vec<_>>()
                };
                assert_eq!(bits(&a), bits(&b), "{:?} {mask:?}", v.dims());
                if plan.count >= 64 {
                    assert_eq!(la, LANES);
                }
            }
        }
    }

    #[test]
    fn kahan_keeps_infinities() {
        let (mut a, mut c) = (0.0f32, 0.0f32);
        for v in [1.0, f32::INFINITY, 1.0, 2.0] {
            kahan_add(&mut a, &mut c, v);
        }
        assert_eq!((a, c), (f32::INFINITY, 0.0));
        kahan_add(&mut a, &mut c, f32::NEG_INFINITY);
        assert!(a.is_nan());
    }
}
