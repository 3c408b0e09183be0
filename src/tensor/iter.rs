//! Iterators: views along a dimension (`iter`, `iter_dim`, `chunks`,
//! `windows`), element values in logical order (`values`), and collecting back
//! into tensors (`collect_shape`, `FromIterator`).

use super::Tensor;
use super::layout::Walker;
use super::shape::{Dim, Shape};
use super::view::ViewGrad;
use crate::error::{Error, Result, unwrap};

impl Tensor {
    /// The elements in logical (row-major) order, for any view. Contiguous runs
    /// are walked as slices, so this costs about what iterating a `Vec<f32>`
    /// does; prefer internal iteration (`sum`, `fold`, `for_each`), which
    /// handles a whole run per step.
    pub fn values(&self) -> Values<'_> {
        Values {
            data: self.storage.as_slice(),
            walker: self.walker(),
            cur: [].iter(),
            pos: 0,
            left: 0,
            stride: 0,
        }
    }

    /// Views of every sub-tensor along dimension 0 (rows of a matrix).
    ///
    /// # Panics
    /// For a 0-D tensor; see [`try_iter_dim`](Self::try_iter_dim).
    #[track_caller]
    pub fn iter(&self) -> DimIter {
        unwrap(self.try_iter_dim(0))
    }

    /// Views of every sub-tensor along `dim`, which is removed from each.
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_iter_dim`](Self::try_iter_dim).
    #[track_caller]
    pub fn iter_dim(&self, dim: impl Dim) -> DimIter {
        unwrap(self.try_iter_dim(dim))
    }

    /// [`iter_dim`](Self::iter_dim), or `DimOutOfRange` (also for a 0-D tensor).
    pub fn try_iter_dim(&self, dim: impl Dim) -> Result<DimIter> {
        let dim = dim.resolve("iter_dim", self.rank())?;
        Ok(DimIter {
            base: self.clone(),
            dim,
            front: 0,
            back: self.dims()[dim],
        })
    }

    /// Views of `size` consecutive elements along dimension 0 (the last may be
    /// shorter).
    ///
    /// # Panics
    /// For a 0-D tensor or `size == 0`; see [`try_chunks_dim`](Self::try_chunks_dim).
    #[track_caller]
    pub fn chunks(&self, size: usize) -> Chunks {
        unwrap(self.try_chunks_dim(0, size))
    }

    /// Views of `size` consecutive elements along `dim` (the last may be
    /// shorter).
    ///
    /// # Panics
    /// If `dim` is out of range or `size == 0`; see
    /// [`try_chunks_dim`](Self::try_chunks_dim).
    #[track_caller]
    pub fn chunks_dim(&self, dim: impl Dim, size: usize) -> Chunks {
        unwrap(self.try_chunks_dim(dim, size))
    }

    /// [`chunks_dim`](Self::chunks_dim), or an error.
    pub fn try_chunks_dim(&self, dim: impl Dim, size: usize) -> Result<Chunks> {
        let dim = dim.resolve("chunks", self.rank())?;
        if size == 0 {
            return Err(Error::InvalidArgument {
                op: "chunks",
                detail: "chunk size must be positive",
            });
        }
        Ok(Chunks {
            base: self.clone(),
            dim,
            size,
            next: 0,
        })
    }

    /// Overlapping windows of `size` elements along dimension 0, starting every
    /// `step` elements (windows that would run past the end are not produced).
    ///
    /// # Panics
    /// For a 0-D tensor or `size == 0` or `step == 0`; see
    /// [`try_windows_dim`](Self::try_windows_dim).
    #[track_caller]
    pub fn windows(&self, size: usize, step: usize) -> Windows {
        unwrap(self.try_windows_dim(0, size, step))
    }

    /// Windows of `size` elements along `dim`, every `step` elements.
    ///
    /// # Panics
    /// On a bad `dim`, `size` or `step`; see [`try_windows_dim`](Self::try_windows_dim).
    #[track_caller]
    pub fn windows_dim(&self, dim: impl Dim, size: usize, step: usize) -> Windows {
        unwrap(self.try_windows_dim(dim, size, step))
    }

    /// [`windows_dim`](Self::windows_dim), or an error.
    pub fn try_windows_dim(&self, dim: impl Dim, size: usize, step: usize) -> Result<Windows> {
        let dim = dim.resolve("windows", self.rank())?;
        if size == 0 || step == 0 {
            return Err(Error::InvalidArgument {
                op: "windows",
                detail: "window size and step must be positive",
            });
        }
        let n = self.dims()[dim];
        let count = if size > n { 0 } else { (n - size) / step + 1 };
        Ok(Windows {
            base: self.clone(),
            dim,
            size,
            step,
            next: 0,
            count,
        })
    }
}

/// Element values of a tensor in logical order; see [`Tensor::values`].
#[derive(Clone)]
pub struct Values<'a> {
    data: &'a [f32],
    walker: Walker<1>,
    /// The current run when it is contiguous.
    cur: core::slice::Iter<'a, f32>,
    /// The current run when it is strided: next index, elements left, stride.
    pos: usize,
    left: usize,
    stride: usize,
}

impl Values<'_> {
    #[cold]
    fn next_slow(&mut self) -> Option<f32> {
        if self.left == 0 {
            let run = self.walker.next()?;
            let o = run.offsets[0];
            if run.strides[0] == 1 {
                self.cur = self.data[o..o + run.len].iter();
                return self.cur.next().copied();
            }
            (self.pos, self.left, self.stride) = (o, run.len, run.strides[0]);
        }
        let v = self.data[self.pos];
        self.pos += self.stride;
        self.left -= 1;
        Some(v)
    }
}

impl Iterator for Values<'_> {
    type Item = f32;

    #[inline]
    fn next(&mut self) -> Option<f32> {
        match self.cur.next() {
            Some(&v) => Some(v),
            None => self.next_slow(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.cur.len() + self.left + self.walker.len() * self.walker.run_len();
        (n, Some(n))
    }

    #[inline]
    fn fold<B, F: FnMut(B, f32) -> B>(self, init: B, mut f: F) -> B {
        let mut acc = self.cur.fold(init, |a, &v| f(a, v));
        for i in 0..self.left {
            acc = f(acc, self.data[self.pos + i * self.stride]);
        }
        for run in self.walker {
            let o = run.offsets[0];
            match run.strides[0] {
                1 => acc = self.data[o..o + run.len].iter().fold(acc, |a, &v| f(a, v)),
                0 => {
                    let v = self.data[o];
                    for _ in 0..run.len {
                        acc = f(acc, v);
                    }
                }
                s => {
                    for i in 0..run.len {
                        acc = f(acc, self.data[o + i * s]);
                    }
                }
            }
        }
        acc
    }
}

impl ExactSizeIterator for Values<'_> {}

/// Views along one dimension; see [`Tensor::iter_dim`].
#[derive(Clone)]
pub struct DimIter {
    base: Tensor,
    dim: usize,
    front: usize,
    back: usize,
}

impl Iterator for DimIter {
    type Item = Tensor;

    fn next(&mut self) -> Option<Tensor> {
        if self.front >= self.back {
            return None;
        }
        let i = self.front;
        self.front += 1;
        Some(self.base.make_view(
            self.base.layout.select(self.dim, i),
            "SelectBackward0",
            ViewGrad::Select(self.dim, i),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }

    fn nth(&mut self, n: usize) -> Option<Tensor> {
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }
}

impl DoubleEndedIterator for DimIter {
    fn next_back(&mut self) -> Option<Tensor> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        Some(self.base.make_view(
            self.base.layout.select(self.dim, self.back),
            "SelectBackward0",
            ViewGrad::Select(self.dim, self.back),
        ))
    }
}

impl ExactSizeIterator for DimIter {}

/// Consecutive pieces along one dimension; see [`Tensor::chunks_dim`].
#[derive(Clone)]
pub struct Chunks {
    base: Tensor,
    dim: usize,
    size: usize,
    next: usize,
}

impl Iterator for Chunks {
    type Item = Tensor;

    fn next(&mut self) -> Option<Tensor> {
        let n = self.base.dims()[self.dim];
        if self.next >= n {
            return None;
        }
        let s = self.next;
        let e = (s + self.size).min(n);
        self.next = e;
        Some(self.base.make_view(
            self.base.layout.slice(self.dim, s, e, 1),
            "SliceBackward0",
            ViewGrad::Slice(self.dim, s, e, 1),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.base.dims()[self.dim].saturating_sub(self.next);
        let c = n.div_ceil(self.size);
        (c, Some(c))
    }
}

impl ExactSizeIterator for Chunks {}

/// Sliding windows along one dimension; see [`Tensor::windows_dim`].
#[derive(Clone)]
pub struct Windows {
    base: Tensor,
    dim: usize,
    size: usize,
    step: usize,
    next: usize,
    count: usize,
}

impl Iterator for Windows {
    type Item = Tensor;

    fn next(&mut self) -> Option<Tensor> {
        if self.next >= self.count {
            return None;
        }
        let s = self.next * self.step;
        self.next += 1;
        Some(self.base.make_view(
            self.base.layout.slice(self.dim, s, s + self.size, 1),
            "SliceBackward0",
            ViewGrad::Slice(self.dim, s, s + self.size, 1),
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Windows {}

/// Collecting an iterator back into a tensor of a given shape:
/// - of `f32`: the values in row-major order;
/// - of `Tensor`: the items (all of one shape) stacked along a new first
///   dimension ([`Tensor::stack`], so gradients flow back to each item), then
///   reshaped to `shape`.
///
/// Errors with `NumelMismatch` if the element count differs from the shape's,
/// and `ShapeMismatch` if stacked tensors differ in shape.
pub trait CollectTensor<T>: Iterator<Item = T> + Sized {
    /// Collects into a tensor of `shape`.
    fn collect_shape(self, shape: impl AsRef<[usize]>) -> Result<Tensor>;
}

impl<I: Iterator<Item = f32>> CollectTensor<f32> for I {
    fn collect_shape(mut self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = Shape::try_for("collect_shape", shape.as_ref())?;
        let n = shape.numel();
        let mut got = 0;
        let t = Tensor::try_from_fill(shape, |b| {
            for (slot, v) in b.iter_mut().zip(&mut self) {
                *slot = v;
                got += 1;
            }
        })?;
        let extra = self.count();
        if got != n || extra != 0 {
            return Err(Error::NumelMismatch {
                op: "collect_shape",
                expected: n,
                got: got + extra,
            });
        }
        Ok(t)
    }
}

impl<I: Iterator<Item = Tensor>> CollectTensor<Tensor> for I {
    fn collect_shape(self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let items: alloc::vec::Vec<Tensor> = self.collect();
        let stacked = Tensor::try_stack(&items, 0)?;
        if stacked.numel() != Shape::try_for("collect_shape", shape.as_ref())?.numel() {
            return Err(Error::NumelMismatch {
                op: "collect_shape",
                expected: shape.as_ref().iter().product(),
                got: stacked.numel(),
            });
        }
        let target: alloc::vec::Vec<usize> = shape.as_ref().to_vec();
        stacked.try_reshape(target)
    }
}

/// Collects values into a 1-D tensor. Panics if memory runs out.
impl FromIterator<f32> for Tensor {
    fn from_iter<I: IntoIterator<Item = f32>>(iter: I) -> Tensor {
        let v: alloc::vec::Vec<f32> = iter.into_iter().collect();
        unwrap(Tensor::from_slice(&v, [v.len()]))
    }
}

/// Stacks same-shaped tensors along a new first dimension.
///
/// # Panics
/// If the iterator is empty or the shapes differ.
impl FromIterator<Tensor> for Tensor {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = Tensor>>(iter: I) -> Tensor {
        let items: alloc::vec::Vec<Tensor> = iter.into_iter().collect();
        unwrap(Tensor::try_stack(&items, 0))
    }
}

impl IntoIterator for &Tensor {
    type Item = Tensor;
    type IntoIter = DimIter;
    /// Iterates along dimension 0; panics for a 0-D tensor.
    fn into_iter(self) -> DimIter {
        self.iter()
    }
}

impl From<f32> for Tensor {
    fn from(v: f32) -> Tensor {
        Tensor::scalar(v)
    }
}

impl From<&[f32]> for Tensor {
    fn from(v: &[f32]) -> Tensor {
        unwrap(Tensor::from_slice(v, [v.len()]))
    }
}

impl From<alloc::vec::Vec<f32>> for Tensor {
    fn from(v: alloc::vec::Vec<f32>) -> Tensor {
        unwrap(Tensor::from_slice(&v, [v.len()]))
    }
}

impl From<&Tensor> for alloc::vec::Vec<f32> {
    fn from(t: &Tensor) -> alloc::vec::Vec<f32> {
        t.to_vec()
    }
}

impl From<Tensor> for alloc::vec::Vec<f32> {
    fn from(t: Tensor) -> alloc::vec::Vec<f32> {
        t.to_vec()
    }
}
