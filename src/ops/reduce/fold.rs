//! The walk shared by the reductions other than `sum`/`mean` (max/min,
//! arg-max/min, var/std, norm, logsumexp, prod).

use crate::error::{Error, Result};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

use super::{reduced_shape, resolve_dim};

// ------------------------------------------------------------------------
// The other reductions (max/min, arg-max/min, var/std, norm, logsumexp, prod)
// share one walk: the input is visited in logical order together with the
// keepdim result broadcast back to the input's shape (stride 0 along reduced
// dimensions, as in `sum_keepdim`), an element's position within its reduced
// group, and its position in the input. Every group is folded element by
// element in order of position, so the first occurrence wins ties and the
// result depends only on the values, never on the input's strides (a view and
// its contiguous copy give bit-identical results). Sums are Kahan-compensated.

/// `acc += v` with Kahan compensation `c` (dropped once the sum stops being
/// finite); the element step of the `kahan_rows` kernel, so scalar folds and
/// the kernel give the same bits.
pub(super) use crate::kernels::scalar::kahan_step as kahan_add;

/// Largest reduced-group size whose positions an f32 index holds exactly.
pub(super) const MAX_F32_INDEX: usize = 1 << 24;

/// A reduction of the masked dimensions of a shape: the result's keepdim
/// shape and the layouts walked alongside the input.
#[derive(Clone)]
pub(super) struct Plan {
    mask: [bool; MAX_RANK],
    /// The result's shape with the reduced dimensions kept as size 1.
    pub(super) keep: Shape,
    /// Elements folded into each result element.
    pub(super) count: usize,
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
pub(super) struct Seg {
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
    pub(super) fn new(op: &'static str, shape: &Shape, mask: [bool; MAX_RANK]) -> Result<Plan> {
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
    pub(super) fn groups(&self) -> usize {
        self.keep.numel()
    }

    /// The result's shape.
    pub(super) fn shape(&self, keepdim: bool) -> Shape {
        if keepdim {
            self.keep.clone()
        } else {
            reduced_shape(self.flat.shape(), &self.mask, false)
        }
    }

    /// Visits `x` (a layout of the planned shape) in logical order.
    pub(super) fn walk(&self, x: &Layout, mut f: impl FnMut(Seg)) {
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
    pub(super) fn check_nonempty(&self, op: &'static str) -> Result<()> {
        if self.count == 0 {
            return Err(Error::InvalidArgument {
                op,
                detail: "cannot reduce over an empty dimension (the reduction has no identity)",
            });
        }
        Ok(())
    }

    /// `InvalidArgument` when positions in a group do not fit f32 indices.
    pub(super) fn check_index_range(&self, op: &'static str) -> Result<()> {
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
pub(super) fn fold<const K: usize>(
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
pub(super) const LANES: usize = 8;

/// Compensated sums of `f(value, group)` (`S` sums per element) over each
/// group; returns `S` sums per group, in keepdim order, as a flat tensor.
///
/// Groups of at least `8 * LANES` elements spread each sum over `LANES` Kahan
/// accumulators by position modulo `LANES` (independent dependency chains),
/// combined in lane order at the end. The split depends only on positions, so
/// the result still does not depend on the input's strides.
pub(super) fn fold_sums<const S: usize>(
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
pub(super) fn lane_sums<const S: usize>(
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
pub(super) fn states<const K: usize>(t: &Tensor) -> &[[f32; K]] {
    vals(t).as_chunks::<K>().0
}

/// A tensor of `shape` (holding one element per group) from the fold states.
pub(super) fn finish<const K: usize>(
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
pub(super) fn expand(
    plan: &Plan,
    x: &Tensor,
    mut f: impl FnMut(f32, usize, usize) -> f32,
) -> Result<Tensor> {
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
pub(super) fn scatter(plan: &Plan, mut f: impl FnMut(usize, usize) -> f32) -> Result<Tensor> {
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
pub(super) fn per_group(t: &Tensor, plan: &Plan) -> Result<Tensor> {
    t.try_reshape(&plan.keep)?.try_contiguous()
}

/// The elements of a contiguous tensor.
pub(super) fn vals(t: &Tensor) -> &[f32] {
    t.as_slice().expect("a contiguous tensor")
}

/// Every dimension of a rank-`rank` shape.
pub(super) fn all_mask(rank: usize) -> [bool; MAX_RANK] {
    let mut m = [false; MAX_RANK];
    m[..rank].fill(true);
    m
}

/// One dimension (nothing for a 0-D tensor).
pub(super) fn one_mask(op: &'static str, dim: impl Dim, rank: usize) -> Result<[bool; MAX_RANK]> {
    let mut m = [false; MAX_RANK];
    if let Some(d) = resolve_dim(op, dim, rank)? {
        m[d] = true;
    }
    Ok(m)
}

/// PyTorch's `sgn` for reals: -1, 0 or 1, and 0 for NaN.
#[inline]
pub(super) fn sgn(v: f32) -> f32 {
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
pub(super) enum Pick {
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
pub(super) fn extremum(
    plan: &Plan,
    x: &Tensor,
    pick: Pick,
    key: impl Fn(f32) -> f32,
) -> Result<Tensor> {
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
pub(super) fn ties_backward(
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
