//! Tensors: storage, memory pool, layout, views, constructors, iterators.
//!
//! A [`Tensor`] is a handle: a reference-counted storage buffer from the
//! [`pool`] plus a layout (shape, strides, offset) held inline. `clone()` is O(1)
//! and shares the buffer, keeping the tensor's [`id`](Tensor::id): a clone is the
//! same tensor, as a second Python reference would be. Views (`reshape`,
//! `transpose`, `narrow`, ...) share the buffer too but are new tensors with new
//! ids. Mutation through `&mut self` copies on write when the buffer is shared,
//! so no other handle or view ever sees a change it did not make, and an
//! in-place change keeps the id.

mod access;
mod fmt;
mod init;
mod iter;
pub(crate) mod layout;
#[cfg(all(test, loom))]
mod loom_models;
#[doc(inline)]
pub use crate::pool;
mod shape;
pub(crate) mod storage;
mod view;

pub use init::{
    DEFAULT_SEED, Generator, global_rng_state, manual_seed, set_global_rng_state, with_global_rng,
};
pub use iter::{Chunks, CollectTensor, DimIter, Values, Windows};
pub use shape::{Dim, MAX_NUMEL, MAX_RANK, ReshapeDims, Shape};

use layout::{Layout, Walker};
use storage::Storage;

use crate::error::Result;

/// An n-dimensional array of `f32`. See the [module docs](self).
#[derive(Clone)]
pub struct Tensor {
    pub(crate) storage: Storage,
    pub(crate) layout: Layout,
    id: u64,
    /// Autograd node: `None` unless the tensor requires grad.
    pub(crate) node: Option<alloc::sync::Arc<crate::autograd::Node>>,
}

impl Tensor {
    /// A new tensor (new id) over `storage` with `layout`; the caller has checked
    /// that the layout stays inside the storage.
    #[inline]
    pub(crate) fn from_parts(storage: Storage, layout: Layout) -> Tensor {
        debug_assert!(layout.end() <= storage.len() || layout.numel() == 0);
        Tensor {
            storage,
            layout,
            id: crate::sync::next_id(),
            node: None,
        }
    }

    /// A new contiguous tensor of `shape` whose elements `fill` writes in
    /// row-major order. `fill` receives every element and must overwrite all of
    /// them (the buffer holds stale values before).
    #[inline]
    pub(crate) fn try_from_fill(shape: Shape, fill: impl FnOnce(&mut [f32])) -> Result<Tensor> {
        let mut storage = Storage::try_for_overwrite(shape.numel())?;
        fill(storage.unique_mut());
        Ok(Tensor::from_parts(storage, Layout::contiguous(shape)))
    }

    /// A view of the same storage with another layout (a new tensor, not
    /// recorded for autograd; see `view::make_view`).
    #[inline]
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.storage.clone(), layout)
    }

    /// Walks this tensor's elements as runs in logical order.
    #[inline]
    pub(crate) fn walker(&self) -> Walker<1> {
        Walker::new([&self.layout])
    }

    /// The identity of this tensor: kept by `clone()` and by in-place mutation,
    /// new for every operation result and every view. Never reused within a
    /// process.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Dimensions, outermost first (`[]` for a scalar).
    #[inline]
    pub fn dims(&self) -> &[usize] {
        self.layout.dims()
    }

    /// The shape.
    #[inline]
    pub fn shape(&self) -> &Shape {
        self.layout.shape()
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Size of dimension `dim` (negative counts from the end).
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_size`](Self::try_size).
    #[track_caller]
    pub fn size(&self, dim: impl Dim) -> usize {
        crate::error::unwrap(self.try_size(dim))
    }

    /// Size of dimension `dim`, or `DimOutOfRange`.
    pub fn try_size(&self, dim: impl Dim) -> Result<usize> {
        Ok(self.dims()[dim.resolve("size", self.rank())?])
    }

    /// Strides in elements, one per dimension.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// Offset in elements of the first element within the storage.
    #[inline]
    pub fn offset(&self) -> usize {
        self.layout.offset()
    }

    /// Whether the elements lie in row-major order without gaps (strides of
    /// size-1 dimensions are ignored, as in PyTorch).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Whether `self` and `other` are views of one storage buffer.
    #[inline]
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        self.storage.ptr_eq(&other.storage)
    }

    /// Number of elements in the underlying storage buffer (at least
    /// `offset + reach` of every view of it).
    #[inline]
    pub fn storage_len(&self) -> usize {
        self.storage.len()
    }
}
