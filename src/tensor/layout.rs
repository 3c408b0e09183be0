//! Layout: how a tensor's logical elements map onto its storage (shape,
//! strides, offset), the pure view transforms on it, and the one strided walker
//! every operation uses to visit a view as contiguous runs.
//!
//! Strides are in elements and never negative (as in PyTorch; `flip` copies).
//! A stride of 0 repeats an element (broadcasting).

use core::ops::Range;

use super::shape::{MAX_RANK, Shape};
use crate::error::{Error, Result};

/// Shape, strides and offset of a view into a storage buffer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Layout {
    shape: Shape,
    strides: [usize; MAX_RANK],
    offset: usize,
}

/// Row-major strides for `dims`.
#[inline]
pub(crate) fn contiguous_strides(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut s = [0; MAX_RANK];
    let mut acc = 1usize;
    for i in (0..dims.len()).rev() {
        s[i] = acc;
        acc = acc.saturating_mul(dims[i].max(1));
    }
    s
}

impl Layout {
    /// A row-major layout starting at offset 0.
    #[inline]
    pub(crate) fn contiguous(shape: Shape) -> Layout {
        let strides = contiguous_strides(shape.dims());
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    /// A layout from explicit parts; the caller has checked the bounds.
    pub(crate) fn from_parts(shape: Shape, strides: &[usize], offset: usize) -> Layout {
        debug_assert_eq!(shape.rank(), strides.len());
        let mut s = [0; MAX_RANK];
        s[..strides.len()].copy_from_slice(strides);
        Layout {
            shape,
            strides: s,
            offset,
        }
    }

    #[inline]
    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    #[inline]
    pub(crate) fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    #[inline]
    pub(crate) fn strides(&self) -> &[usize] {
        &self.strides[..self.shape.rank()]
    }

    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    #[inline]
    pub(crate) fn rank(&self) -> usize {
        self.shape.rank()
    }

    #[inline]
    pub(crate) fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// Row-major, ignoring the strides of size-1 dimensions (PyTorch's rule).
    pub(crate) fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for i in (0..self.rank()).rev() {
            let d = self.shape[i];
            if d == 0 {
                return true;
            }
            if d != 1 {
                if self.strides[i] != expected {
                    return false;
                }
                expected *= d;
            }
        }
        true
    }

    /// The storage range holding the elements, when the layout is contiguous.
    #[inline]
    pub(crate) fn contiguous_range(&self) -> Option<Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// One past the highest storage index the view touches (its `offset` when
    /// empty).
    pub(crate) fn end(&self) -> usize {
        if self.numel() == 0 {
            return self.offset;
        }
        self.offset
            + 1
            + (0..self.rank())
                .map(|i| (self.shape[i] - 1) * self.strides[i])
                .sum::<usize>()
    }

    /// Whether two logical elements may share one storage element (a stride-0 or
    /// otherwise overlapping view). Conservative: `false` is exact.
    pub(crate) fn may_overlap(&self) -> bool {
        if self.is_contiguous() {
            return false; // the common case, without the sort below
        }
        let mut dims: heapless::Vec<(usize, usize), MAX_RANK> = (0..self.rank())
            .filter(|&i| self.shape[i] > 1)
            .map(|i| (self.strides[i], self.shape[i]))
            .collect();
        crate::sort::sort_unstable(&mut dims);
        let mut span = 1usize;
        for (stride, size) in dims {
            if stride < span {
                return true;
            }
            span = stride * (size - 1) + 1;
        }
        false
    }

    /// Storage index of a logical multi-index; the caller checked its bounds.
    #[inline]
    pub(crate) fn index_of(&self, idx: &[usize]) -> usize {
        self.offset
            + idx
                .iter()
                .zip(self.strides())
                .map(|(i, s)| i * s)
                .sum::<usize>()
    }

    /// The same layout over a buffer that starts `by` elements later.
    pub(crate) fn shifted_down(&self, by: usize) -> Layout {
        let mut out = self.clone();
        out.offset -= by;
        out
    }

    // ---- view transforms (dimensions already resolved by the caller) ----

    pub(crate) fn permute(&self, perm: &[usize]) -> Layout {
        let shape = self.shape.permuted(perm);
        let mut strides = [0; MAX_RANK];
        for (i, &p) in perm.iter().enumerate() {
            strides[i] = self.strides[p];
        }
        Layout {
            shape,
            strides,
            offset: self.offset,
        }
    }

    pub(crate) fn transpose(&self, d0: usize, d1: usize) -> Layout {
        let mut out = self.clone();
        out.shape.swap(d0, d1);
        out.strides.swap(d0, d1);
        out
    }

    /// Elements `start, start + step, ...` below `end` along `dim`
    /// (`start <= end <= size`, `step >= 1`).
    pub(crate) fn slice(&self, dim: usize, start: usize, end: usize, step: usize) -> Layout {
        let mut out = self.clone();
        let len = if end > start {
            (end - start).div_ceil(step)
        } else {
            0
        };
        // An empty view's offset and strides address nothing and may be
        // anything (`as_strided` takes any for zero elements), so they are
        // left alone there; with elements, `start * stride` lies inside the
        // input's span and cannot overflow.
        let empty = self.numel() == 0;
        if len > 0 && !empty {
            out.offset += start * self.strides[dim];
        }
        // No larger than the input's dimension: the element count only shrinks.
        let shrunk = out.shape.set_dim("slice", dim, len);
        debug_assert!(shrunk.is_ok());
        // With one element or none the stride is never used, and `step` may be
        // anything (`stride * step` could overflow); otherwise
        // `stride * step <= stride * (size - 1)`, inside the input's span.
        if len > 1 && !empty {
            out.strides[dim] = self.strides[dim] * step;
        }
        out
    }

    /// Drops `dim`, fixing it at `index` (in range).
    pub(crate) fn select(&self, dim: usize, index: usize) -> Layout {
        let mut out = self.clone();
        // Empty: the offset is left alone (see `slice`).
        if self.numel() != 0 {
            out.offset += index * self.strides[dim];
        }
        out.shape.remove(dim);
        let r = self.rank();
        out.strides.copy_within(dim + 1..r, dim);
        out.strides[r - 1] = 0;
        out
    }

    /// Removes a size-1 dimension.
    pub(crate) fn squeeze(&self, dim: usize) -> Layout {
        debug_assert_eq!(self.shape[dim], 1);
        let mut out = self.clone();
        out.shape.remove(dim);
        let r = self.rank();
        out.strides.copy_within(dim + 1..r, dim);
        out.strides[r - 1] = 0;
        out
    }

    /// Inserts a size-1 dimension at `dim` (`0..=rank`).
    pub(crate) fn unsqueeze(&self, op: &'static str, dim: usize) -> Result<Layout> {
        let r = self.rank();
        if r == MAX_RANK {
            return Err(Error::RankTooHigh { op, rank: r + 1 });
        }
        let mut out = self.clone();
        out.shape.insert(dim, 1)?;
        // Any stride is valid for a size-1 dimension; PyTorch uses the one that
        // keeps a contiguous tensor contiguous.
        let s = if dim < r {
            // Wraps only for an empty view, whose strides address nothing.
            self.strides[dim].wrapping_mul(self.shape[dim])
        } else {
            1
        };
        out.strides.copy_within(dim..r, dim + 1);
        out.strides[dim] = s;
        Ok(out)
    }

    /// Windows of `size` every `step` along `dim` (size <= dim size, step > 0),
    /// as a new last dimension.
    pub(crate) fn unfold(
        &self,
        op: &'static str,
        dim: usize,
        size: usize,
        step: usize,
    ) -> Result<Layout> {
        let r = self.rank();
        if r == MAX_RANK {
            return Err(Error::RankTooHigh { op, rank: r + 1 });
        }
        let mut out = self.clone();
        let windows = (self.shape[dim] - size) / step + 1;
        out.shape.set_dim(op, dim, windows)?;
        // One window: the stride is unused and `stride * step` may overflow;
        // so may it in an empty view, whose strides address nothing.
        if windows > 1 && self.numel() != 0 {
            out.strides[dim] = self.strides[dim] * step;
        }
        out.shape.push(size)?;
        out.strides[r] = self.strides[dim];
        Ok(out)
    }

    /// Broadcasts to `target` (NumPy rules: align right, size-1 or missing
    /// dimensions repeat with stride 0).
    pub(crate) fn broadcast_to(&self, op: &'static str, target: &Shape) -> Result<Layout> {
        let r = self.rank();
        let tr = target.rank();
        let mismatch = || Error::ShapeMismatch {
            op,
            lhs: (self.shape.clone()).into(),
            rhs: (target.clone()).into(),
            detail: "cannot broadcast the first shape to the second",
        };
        if r > tr {
            return Err(mismatch());
        }
        let mut strides = [0; MAX_RANK];
        for i in 0..tr {
            let t = target[i];
            if i + r >= tr {
                let j = i + r - tr;
                let s = self.shape[j];
                if s == t {
                    strides[i] = self.strides[j];
                } else if s == 1 {
                    strides[i] = 0;
                } else {
                    return Err(mismatch());
                }
            }
        }
        Ok(Layout {
            shape: target.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// The same elements with a new shape, without copying, when the strides
    /// allow it (PyTorch's `view` rule); `None` when a copy is needed.
    pub(crate) fn view(&self, new: &Shape) -> Option<Layout> {
        debug_assert_eq!(new.numel(), self.numel());
        if self.numel() == 0 || self.rank() == 0 || self.is_contiguous() {
            let mut out = Layout::contiguous(new.clone());
            out.offset = self.offset;
            return Some(out);
        }
        let old = self.dims();
        let old_s = self.strides();
        let mut strides = [0usize; MAX_RANK];
        let mut view_d = new.rank() as isize - 1;
        let mut chunk_base = *old_s.last()?;
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for td in (0..old.len()).rev() {
            tensor_numel *= old[td];
            let boundary =
                td == 0 || (old[td - 1] != 1 && old_s[td - 1] != tensor_numel * chunk_base);
            if boundary {
                while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                    strides[view_d as usize] = view_numel * chunk_base;
                    view_numel *= new[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if td > 0 {
                    chunk_base = old_s[td - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout {
            shape: new.clone(),
            strides,
            offset: self.offset,
        })
    }
}

/// The broadcast of two shapes (NumPy rules), or a `ShapeMismatch` naming `op`.
pub(crate) fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
    let r = a.rank().max(b.rank());
    let mut out = Shape::scalar();
    for i in 0..r {
        let da = if i + a.rank() >= r {
            a[i + a.rank() - r]
        } else {
            1
        };
        let db = if i + b.rank() >= r {
            b[i + b.rank() - r]
        } else {
            1
        };
        let d = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::ShapeMismatch {
                op,
                lhs: (a.clone()).into(),
                rhs: (b.clone()).into(),
                detail: "the shapes cannot be broadcast together",
            });
        };
        out.push(d)?;
    }
    Ok(out)
}

/// One contiguous-in-logical-order run of a walk over `N` operands of the same
/// shape: `len` elements, operand `k`'s first element at `offsets[k]`, then every
/// `strides[k]` elements (1 = contiguous, 0 = one repeated element).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run<const N: usize> {
    pub offsets: [usize; N],
    pub len: usize,
    pub strides: [usize; N],
}

/// Walks `N` same-shaped layouts in logical (row-major) order as runs along the
/// innermost dimension, after merging dimensions that are contiguous for every
/// operand and dropping size-1 dimensions. This is the one strided-iteration
/// helper: every element-wise operation, copy and value iterator is built on it.
#[derive(Clone, Debug)]
pub(crate) struct Walker<const N: usize> {
    sizes: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; N],
    outer: usize,
    idx: [usize; MAX_RANK],
    offsets: [usize; N],
    inner_len: usize,
    inner_strides: [usize; N],
    remaining: usize,
}

impl<const N: usize> Walker<N> {
    /// Walks `layouts`, which must all have the same shape.
    pub(crate) fn new(layouts: [&Layout; N]) -> Walker<N> {
        let shape = layouts[0].dims();
        debug_assert!(layouts.iter().all(|l| l.dims() == shape));
        let offsets = core::array::from_fn(|k| layouts[k].offset);
        // Dims of size > 1, outer to inner, merged from the inside out.
        let mut sizes = [0usize; MAX_RANK];
        let mut strides = [[0usize; MAX_RANK]; N];
        let mut n = 0usize; // merged dims, stored innermost-first during the pass
        for d in (0..shape.len()).rev() {
            let size = shape[d];
            if size == 1 {
                continue;
            }
            if size == 0 {
                return Walker::empty(offsets);
            }
            if n > 0 {
                let i = n - 1;
                let mergeable = (0..N)
                    .all(|k| strides[k][i].checked_mul(sizes[i]) == Some(layouts[k].strides[d]));
                if mergeable {
                    sizes[i] *= size;
                    continue;
                }
            }
            sizes[n] = size;
            for k in 0..N {
                strides[k][n] = layouts[k].strides[d];
            }
            n += 1;
        }
        if n == 0 {
            // A scalar, or all dimensions of size 1: one element.
            return Walker {
                sizes,
                strides,
                outer: 0,
                idx: [0; MAX_RANK],
                offsets,
                inner_len: 1,
                inner_strides: [1; N],
                remaining: 1,
            };
        }
        // Innermost-first -> outer-first.
        sizes[..n].reverse();
        for s in strides.iter_mut() {
            s[..n].reverse();
        }
        let inner_len = sizes[n - 1];
        let inner_strides = core::array::from_fn(|k| strides[k][n - 1]);
        let outer = n - 1;
        let remaining = sizes[..outer].iter().product();
        Walker {
            sizes,
            strides,
            outer,
            idx: [0; MAX_RANK],
            offsets,
            inner_len,
            inner_strides,
            remaining,
        }
    }

    fn empty(offsets: [usize; N]) -> Walker<N> {
        Walker {
            sizes: [0; MAX_RANK],
            strides: [[0; MAX_RANK]; N],
            outer: 0,
            idx: [0; MAX_RANK],
            offsets,
            inner_len: 0,
            inner_strides: [1; N],
            remaining: 0,
        }
    }

    /// Length of every run.
    #[inline]
    pub(crate) fn run_len(&self) -> usize {
        self.inner_len
    }

    /// The walk of `count` runs from run `first` on (runs numbered from 0 in
    /// walking order), so that a walk can be split between threads. Called
    /// on a walker that has not started.
    ///
    /// # Panics
    /// If the walker has started or `first + count` exceeds its runs.
    pub(crate) fn runs_from(mut self, first: usize, count: usize) -> Walker<N> {
        assert!(
            self.idx.iter().all(|&i| i == 0)
                && first
                    .checked_add(count)
                    .is_some_and(|e| e <= self.remaining),
            "Walker::runs_from: runs {first}+{count} of {} (or walker started)",
            self.remaining
        );
        let mut rem = first;
        for d in (0..self.outer).rev() {
            let i = rem % self.sizes[d];
            rem /= self.sizes[d];
            self.idx[d] = i;
            for k in 0..N {
                self.offsets[k] += i * self.strides[k][d];
            }
        }
        self.remaining = count;
        self
    }
}

impl<const N: usize> Iterator for Walker<N> {
    type Item = Run<N>;

    #[inline]
    fn next(&mut self) -> Option<Run<N>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let run = Run {
            offsets: self.offsets,
            len: self.inner_len,
            strides: self.inner_strides,
        };
        if self.remaining > 0 {
            let mut d = self.outer;
            while d > 0 {
                d -= 1;
                self.idx[d] += 1;
                for k in 0..N {
                    self.offsets[k] += self.strides[k][d];
                }
                if self.idx[d] < self.sizes[d] {
                    break;
                }
                for k in 0..N {
                    self.offsets[k] -= self.strides[k][d] * self.sizes[d];
                }
                self.idx[d] = 0;
            }
        }
        Some(run)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<const N: usize> ExactSizeIterator for Walker<N> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn shape(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    /// Storage indices in logical order, by brute force.
    fn naive_indices(l: &Layout) -> Vec<usize> {
        let mut out = Vec::new();
        let n = l.numel();
        let dims = l.dims();
        for flat in 0..n {
            let mut rem = flat;
            let mut idx = [0usize; MAX_RANK];
            for d in (0..dims.len()).rev() {
                idx[d] = rem % dims[d];
                rem /= dims[d];
            }
            out.push(l.index_of(&idx[..dims.len()]));
        }
        out
    }

    fn walked_indices(l: &Layout) -> Vec<usize> {
        let mut out = Vec::new();
        for run in Walker::new([l]) {
            for i in 0..run.len {
                out.push(run.offsets[0] + i * run.strides[0]);
            }
        }
        out
    }

    #[test]
    fn walker_matches_naive_order() {
        let base = Layout::contiguous(shape(&[2, 3, 4, 5]));
        let cases = [
            base.clone(),
            base.permute(&[3, 1, 0, 2]),
            base.transpose(0, 3),
            base.slice(2, 1, 4, 2),
            base.select(1, 2),
            base.slice(3, 0, 5, 3).transpose(1, 2),
            Layout::contiguous(shape(&[3, 1, 4]))
                .broadcast_to("t", &shape(&[2, 3, 5, 4]))
                .unwrap(),
            Layout::contiguous(shape(&[])),
            Layout::contiguous(shape(&[0, 3])),
            Layout::contiguous(shape(&[1, 1, 7])),
        ];
        for l in &cases {
            assert_eq!(walked_indices(l), naive_indices(l), "{l:?}");
        }
    }

    /// Every split of a walk into consecutive run ranges walks the same
    /// runs as the whole walk.
    #[test]
    fn runs_from_resumes_the_walk_anywhere() {
        let base = Layout::contiguous(shape(&[3, 4, 5, 2]));
        let cases = [
            base.permute(&[2, 0, 3, 1]),
            base.slice(2, 1, 5, 2).transpose(0, 3),
            Layout::contiguous(shape(&[4, 1]))
                .broadcast_to("t", &shape(&[3, 4, 6]))
                .unwrap(),
            Layout::contiguous(shape(&[])),
            Layout::contiguous(shape(&[0, 3])),
        ];
        for l in &cases {
            let all: Vec<_> = Walker::new([l, l]).collect();
            for first in 0..=all.len() {
                for count in 0..=all.len() - first {
                    let part: Vec<_> = Walker::new([l, l]).runs_from(first, count).collect();
                    assert_eq!(part, all[first..first + count], "{l:?} {first}+{count}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "Walker::runs_from")]
    fn runs_from_refuses_runs_past_the_end() {
        let l = Layout::contiguous(shape(&[2, 3])).transpose(0, 1);
        let _ = Walker::new([&l]).runs_from(2, 2);
    }

    #[test]
    fn walker_merges_contiguous_dims() {
        let l = Layout::contiguous(shape(&[4, 5, 6]));
        let w = Walker::new([&l]);
        assert_eq!((w.len(), w.run_len()), (1, 120));
        let t = l.slice(2, 0, 3, 1); // rows of 3 out of 6
        let w = Walker::new([&t]);
        assert_eq!((w.len(), w.run_len()), (20, 3));
    }

    #[test]
    fn two_operand_walk_keeps_operands_in_step() {
        let a = Layout::contiguous(shape(&[3, 4])).transpose(0, 1);
        let b = Layout::contiguous(shape(&[4, 3]));
        let mut pairs = Vec::new();
        for run in Walker::new([&a, &b]) {
            for i in 0..run.len {
                pairs.push((
                    run.offsets[0] + i * run.strides[0],
                    run.offsets[1] + i * run.strides[1],
                ));
            }
        }
        let na = naive_indices(&a);
        let nb = naive_indices(&b);
        assert_eq!(pairs, na.into_iter().zip(nb).collect::<Vec<_>>());
    }

    #[test]
    fn contiguity_and_overlap() {
        let l = Layout::contiguous(shape(&[2, 3]));
        assert!(l.is_contiguous() && !l.may_overlap());
        assert!(!l.transpose(0, 1).is_contiguous());
        assert!(!l.transpose(0, 1).may_overlap());
        let b = Layout::contiguous(shape(&[3]))
            .broadcast_to("t", &shape(&[2, 3]))
            .unwrap();
        assert!(b.may_overlap());
        assert!(l.unsqueeze("t", 1).unwrap().is_contiguous());
    }

    #[test]
    fn view_follows_pytorch_rules() {
        let l = Layout::contiguous(shape(&[4, 6]));
        // Splitting and merging contiguous dims is always a view.
        assert!(l.view(&shape(&[2, 2, 3, 2])).is_some());
        // A transposed matrix cannot be flattened without a copy...
        assert!(l.transpose(0, 1).view(&shape(&[24])).is_none());
        // ...but its dims can be split.
        let v = l.transpose(0, 1).view(&shape(&[3, 2, 4])).unwrap();
        assert_eq!(naive_indices(&v), naive_indices(&l.transpose(0, 1)));
        // Narrowed rows keep their row stride.
        let n = l.slice(1, 0, 4, 1);
        let v = n.view(&shape(&[4, 2, 2])).unwrap();
        assert_eq!(naive_indices(&v), naive_indices(&n));
        assert!(n.view(&shape(&[16])).is_none());
    }

    #[test]
    fn broadcast_shapes_rules() {
        let s = broadcast_shapes("add", &shape(&[3, 1, 5]), &shape(&[4, 1])).unwrap();
        assert_eq!(s.dims(), &[3, 4, 5]);
        assert!(broadcast_shapes("add", &shape(&[3]), &shape(&[4])).is_err());
        assert_eq!(
            broadcast_shapes("add", &shape(&[]), &shape(&[2]))
                .unwrap()
                .dims(),
            &[2]
        );
    }
}
