//! Reading and writing elements, copy-on-write, contiguous copies and
//! comparison.

use alloc::vec::Vec;

use super::Tensor;
use super::layout::{Layout, Walker};
use super::storage::Storage;
use crate::error::{Error, Result, unwrap};

impl Tensor {
    /// Copies the elements in logical (row-major) order into `out`
    /// (`out.len() == numel`), whatever the view's strides.
    pub(crate) fn gather_into(&self, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.numel());
        if self.gather_transposed(out) {
            return;
        }
        let src = self.storage.as_slice();
        // The kernel alone is captured, not the table: a table reference
        // reaching the closures below keeps every kernel in a bare-metal
        // image (17 KiB on thumbv7em).
        let copy_strided = crate::kernels::table().copy_strided;
        let walker = self.walker();
        let (runs, run_len) = (walker.len(), walker.run_len());
        // Large copies are split between threads: at run boundaries, or a
        // single run in blocks of `BLOCK` elements.
        const BLOCK: usize = 4096;
        let copy = |o: usize, stride: usize, dst: &mut [f32]| match stride {
            1 => dst.copy_from_slice(&src[o..o + dst.len()]),
            s => copy_strided(&src[o..], s, dst),
        };
        if runs == 1 {
            let run = walker.clone().next().expect("one run");
            let s = run.strides[0];
            crate::kernels::parallel::blocks(out, BLOCK, |b, part| {
                copy(run.offsets[0] + b.start * BLOCK * s, s, part)
            });
            return;
        }
        crate::kernels::parallel::blocks(out, run_len.max(1), |b, part| {
            let mut pos = 0;
            for run in walker.clone().runs_from(b.start, b.len()) {
                copy(
                    run.offsets[0],
                    run.strides[0],
                    &mut part[pos..pos + run.len],
                );
                pos += run.len;
            }
        });
    }

    /// The copy of a view whose last two dimensions are a transposed
    /// row-major block (strides `[.., 1, ld]`), done block by block with the
    /// cache-tiled transpose kernel. Returns false for other layouts.
    fn gather_transposed(&self, out: &mut [f32]) -> bool {
        if !self.is_transposed_block() {
            return false;
        }
        let r = self.rank();
        let (a, b) = (self.dims()[r - 2], self.dims()[r - 1]);
        let sb = self.strides()[r - 1];
        // Offsets of the blocks: the outer dimensions with the last two fixed.
        let outer = self.layout.select(r - 1, 0).select(r - 2, 0);
        let src = self.storage.as_slice();
        let transpose = crate::kernels::table().transpose;
        let block = a * b;
        let mut at = 0;
        for run in super::layout::Walker::new([&outer]) {
            for i in 0..run.len {
                let o = run.offsets[0] + i * run.strides[0];
                // Element (p, q) of the block is src[o + p + q * sb]: the
                // transpose of the [b, a] matrix with row stride sb at o.
                // Large blocks are split by rows of the output (columns
                // `p0..p1` of the source) between threads.
                crate::kernels::parallel::blocks(&mut out[at..at + block], b, |p, part| {
                    let end = o + (b - 1) * sb + p.end;
                    transpose(&src[o + p.start..end], b, p.len(), sb, part);
                });
                at += block;
            }
        }
        true
    }

    /// Whether the last two dimensions are a transposed row-major block
    /// (strides `[.., 1, ld]` with `ld` at least the block's height) of at
    /// least 64 elements: a copy then goes through the cache-tiled transpose,
    /// which is many times faster than reading at stride `ld`.
    pub(crate) fn is_transposed_block(&self) -> bool {
        let r = self.rank();
        if r < 2 || self.numel() < 64 {
            return false;
        }
        let (a, b) = (self.dims()[r - 2], self.dims()[r - 1]);
        let (sa, sb) = (self.strides()[r - 2], self.strides()[r - 1]);
        a >= 2 && b >= 2 && sa == 1 && sb >= a
    }

    /// A fresh contiguous copy (new id), even if `self` is contiguous.
    pub(crate) fn try_materialize(&self) -> Result<Tensor> {
        Tensor::try_from_fill(self.shape().clone(), |b| self.gather_into(b))
    }

    /// Refuses unrecorded writes to a tensor that requires grad while
    /// recording: they would silently make its gradients wrong. Under
    /// [`no_grad`](crate::no_grad) they are allowed (e.g. to initialise or
    /// update parameters).
    pub(crate) fn check_raw_write(&self, op: &'static str) -> Result<()> {
        if self.requires_grad() && crate::autograd::is_grad_enabled() {
            return Err(Error::InvalidArgument {
                op,
                detail: "the tensor requires grad; modify it inside no_grad (or detach it first)",
            });
        }
        Ok(())
    }

    /// Makes `self` safe to write through its own layout: its storage unique and
    /// no two elements aliased. Copies (keeping the values when `keep`) only when
    /// needed; the id is kept.
    pub(crate) fn try_make_writable(&mut self, keep: bool) -> Result<()> {
        if keep && !self.writable_in_place() {
            let t = self.try_materialize()?;
            self.storage = t.storage;
            self.layout = t.layout;
            return Ok(());
        }
        if let Some(b) = self.try_write_buffer()? {
            self.use_buffer(b);
        }
        Ok(())
    }

    /// Whether `self` can be written through its own layout as it is: its
    /// storage unique and no two elements aliased.
    fn writable_in_place(&self) -> bool {
        self.storage.is_unique() && !self.layout.may_overlap()
    }

    /// Replaces the storage with `b` (at least `numel` elements, contents to
    /// be overwritten), contiguous; the id is kept.
    fn use_buffer(&mut self, b: Storage) {
        debug_assert!(b.len() >= self.numel());
        self.storage = b;
        self.layout = Layout::contiguous(self.shape().clone());
    }

    /// The fresh buffer an overwrite of `self` needs (its storage is shared
    /// or its layout aliases elements), or `None` if `self` is written in
    /// place. Lets a caller overwriting several tensors allocate everything
    /// before changing anything (see [`copy_from_with`](Self::copy_from_with)).
    pub(crate) fn try_write_buffer(&self) -> Result<Option<Storage>> {
        if self.writable_in_place() {
            return Ok(None);
        }
        Storage::try_for_overwrite(self.numel()).map(Some)
    }

    /// [`try_copy_from`](Self::try_copy_from) into `buffer` (from
    /// [`try_write_buffer`](Self::try_write_buffer), taken just before with no
    /// new handle to `self` since) when one was needed: allocates nothing.
    pub(crate) fn copy_from_with(&mut self, buffer: Option<Storage>, src: &Tensor) -> Result<()> {
        if let Some(b) = buffer {
            self.use_buffer(b);
        }
        self.try_copy_from(src)
    }

    /// Writes through this tensor's layout: `f` sees every run of the storage
    /// (`storage`, offset, len, stride) in logical order. Copies on write first.
    pub(crate) fn try_write_runs(
        &mut self,
        keep: bool,
        mut f: impl FnMut(&mut [f32], usize, usize, usize),
    ) -> Result<()> {
        self.try_make_writable(keep)?;
        let walker = self.walker();
        let buf = self
            .storage
            .get_mut()
            .expect("storage made unique just above");
        for run in walker {
            f(buf, run.offsets[0], run.len, run.strides[0]);
        }
        Ok(())
    }

    /// The elements in logical (row-major) order, for any view.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = alloc::vec![0.0; self.numel()];
        self.gather_into(&mut v);
        v
    }

    fn check_index(&self, op: &'static str, idx: &[usize]) -> Result<usize> {
        if idx.len() != self.rank() {
            return Err(Error::WrongIndexCount {
                op,
                given: idx.len(),
                rank: self.rank(),
            });
        }
        for (&i, &d) in idx.iter().zip(self.dims()) {
            if i >= d {
                return Err(Error::IndexOutOfRange {
                    op,
                    index: i.min(isize::MAX as usize) as isize,
                    size: d,
                });
            }
        }
        Ok(self.layout.index_of(idx))
    }

    /// The element at multi-index `idx` (one entry per dimension).
    ///
    /// # Panics
    /// On a wrong index count or an index out of range; see
    /// [`try_get`](Self::try_get).
    #[track_caller]
    pub fn get(&self, idx: &[usize]) -> f32 {
        unwrap(self.try_get(idx))
    }

    /// The element at `idx`, or `WrongIndexCount` / `IndexOutOfRange`.
    pub fn try_get(&self, idx: &[usize]) -> Result<f32> {
        let at = self.check_index("get", idx)?;
        Ok(self.storage.as_slice()[at])
    }

    /// The value of a one-element tensor (any rank).
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element; see
    /// [`try_item`](Self::try_item).
    #[track_caller]
    pub fn item(&self) -> f32 {
        unwrap(self.try_item())
    }

    /// The value of a one-element tensor, or `NumelMismatch`.
    pub fn try_item(&self) -> Result<f32> {
        if self.numel() != 1 {
            return Err(Error::NumelMismatch {
                op: "item",
                expected: 1,
                got: self.numel(),
            });
        }
        Ok(self.storage.as_slice()[self.offset()])
    }

    /// Sets the element at `idx` (copy on write; keeps the id).
    ///
    /// # Panics
    /// On a bad index or if memory runs out; see [`try_set`](Self::try_set).
    #[track_caller]
    pub fn set(&mut self, idx: &[usize], value: f32) {
        unwrap(self.try_set(idx, value))
    }

    /// Sets the element at `idx`, or returns an error and leaves `self` as it was.
    pub fn try_set(&mut self, idx: &[usize], value: f32) -> Result<()> {
        self.check_index("set", idx)?;
        self.check_raw_write("set")?;
        self.try_make_writable(true)?;
        let at = self.layout.index_of(idx);
        self.storage.get_mut().expect("made writable above")[at] = value;
        Ok(())
    }

    /// Sets every element to `value` (copy on write; keeps the id).
    ///
    /// # Panics
    /// If a copy is needed and memory runs out; see [`try_fill`](Self::try_fill).
    #[track_caller]
    pub fn fill(&mut self, value: f32) {
        unwrap(self.try_fill(value))
    }

    /// Sets every element to `value`, or `OutOfMemory`.
    pub fn try_fill(&mut self, value: f32) -> Result<()> {
        self.check_raw_write("fill")?;
        self.try_write_runs(false, |buf, o, len, s| {
            if s == 1 {
                buf[o..o + len].fill(value);
            } else {
                for i in 0..len {
                    buf[o + i * s] = value;
                }
            }
        })
    }

    /// Copies `src` into `self`, broadcasting `src` to `self`'s shape (copy on
    /// write; keeps the id). `src` may be a view of `self`.
    ///
    /// # Panics
    /// If `src` does not broadcast to `self`'s shape; see
    /// [`try_copy_from`](Self::try_copy_from).
    #[track_caller]
    pub fn copy_from(&mut self, src: &Tensor) {
        unwrap(self.try_copy_from(src))
    }

    /// [`copy_from`](Self::copy_from), or `ShapeMismatch` (naming `copy_from`
    /// and both shapes) with `self` unchanged.
    pub fn try_copy_from(&mut self, src: &Tensor) -> Result<()> {
        let src_layout = src.layout.broadcast_to("copy_from", self.shape())?;
        self.check_raw_write("copy_from")?;
        // `src` holds a handle, so if it shares our storage we copy first and read
        // the old buffer through `src`.
        self.try_make_writable(false)?;
        let walker = Walker::new([&self.layout, &src_layout]);
        let from = src.storage.as_slice();
        let buf = self.storage.get_mut().expect("made writable above");
        for run in walker {
            let (o, so) = (run.offsets[0], run.offsets[1]);
            match run.strides {
                [1, 1] => buf[o..o + run.len].copy_from_slice(&from[so..so + run.len]),
                [d, s] => {
                    for i in 0..run.len {
                        buf[o + i * d] = from[so + i * s];
                    }
                }
            }
        }
        Ok(())
    }

    /// The elements as a slice, if the tensor is contiguous.
    #[inline]
    pub fn as_slice(&self) -> Option<&[f32]> {
        let r = self.layout.contiguous_range()?;
        Some(&self.storage.as_slice()[r])
    }

    /// The elements of a contiguous tensor, in order.
    ///
    /// # Panics
    /// If the tensor is not contiguous (call [`contiguous`](Self::contiguous)
    /// first, or use [`to_vec`](Self::to_vec) / [`values`](Self::values)).
    #[track_caller]
    pub fn data(&self) -> &[f32] {
        unwrap(self.try_data())
    }

    /// The elements of a contiguous tensor, or `InvalidArgument`.
    pub fn try_data(&self) -> Result<&[f32]> {
        self.as_slice().ok_or(Error::InvalidArgument {
            op: "data",
            detail: "the tensor is not contiguous; call contiguous() first",
        })
    }

    /// The elements in row-major order for writing. Copies first if the storage
    /// is shared or the view is not contiguous (the tensor then owns a fresh
    /// contiguous buffer); keeps the id.
    ///
    /// # Panics
    /// If a copy is needed and memory runs out; see
    /// [`try_data_mut`](Self::try_data_mut).
    #[track_caller]
    pub fn data_mut(&mut self) -> &mut [f32] {
        unwrap(self.try_data_mut())
    }

    /// [`data_mut`](Self::data_mut), or `OutOfMemory`.
    pub fn try_data_mut(&mut self) -> Result<&mut [f32]> {
        self.check_raw_write("data_mut")?;
        // A contiguous view aliases no elements, so a contiguous tensor with
        // a unique storage (the common case) is written as it is.
        if !(self.is_contiguous() && self.storage.is_unique()) {
            self.try_make_writable(true)?;
            if !self.is_contiguous() {
                let t = self.try_materialize()?;
                self.storage = t.storage;
                self.layout = t.layout;
            }
        }
        let r = self.layout.offset()..self.layout.offset() + self.numel();
        Ok(&mut self.storage.get_mut().expect("made writable above")[r])
    }

    /// A contiguous tensor with the same elements: `self` (same id, no copy) when
    /// already contiguous, else a copy. Panics if memory runs out.
    #[track_caller]
    pub fn contiguous(&self) -> Tensor {
        unwrap(self.try_contiguous())
    }

    /// [`contiguous`](Self::contiguous), or `OutOfMemory`.
    pub fn try_contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            self.try_deep_clone()
        }
    }

    /// A copy with its own contiguous storage and a new id (what PyTorch calls
    /// `clone()`; here `clone()` is the O(1) handle copy). Panics if memory runs
    /// out.
    #[track_caller]
    pub fn deep_clone(&self) -> Tensor {
        unwrap(self.try_deep_clone())
    }

    /// [`deep_clone`](Self::deep_clone), or `OutOfMemory`.
    pub fn try_deep_clone(&self) -> Result<Tensor> {
        let out = self.try_materialize()?;
        Ok(out.record("CloneBackward0", &[self], |g, _| {
            Ok(alloc::vec![Some(g.clone())])
        }))
    }

    /// Whether both tensors have the same shape and every pair of elements
    /// satisfies `|a - b| <= atol + rtol * |b|` (as `torch.allclose`; equal
    /// infinities match, NaN matches nothing).
    pub fn allclose(&self, other: &Tensor, rtol: f32, atol: f32) -> bool {
        if self.dims() != other.dims() {
            return false;
        }
        let walker = Walker::new([&self.layout, &other.layout]);
        let (a, b) = (self.storage.as_slice(), other.storage.as_slice());
        for run in walker {
            for i in 0..run.len {
                let x = a[run.offsets[0] + i * run.strides[0]];
                let y = b[run.offsets[1] + i * run.strides[1]];
                let close = x == y
                    || (x.is_finite() && y.is_finite() && (x - y).abs() <= atol + rtol * y.abs());
                if !close {
                    return false;
                }
            }
        }
        true
    }
}

/// Exact equality of shapes and elements (NaN is unequal to everything, as in
/// IEEE). Strides and storage do not matter.
impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.allclose(other, 0.0, 0.0)
    }
}
