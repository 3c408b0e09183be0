//! Zero-copy views: every method here returns a tensor sharing `self`'s storage
//! (a new id), except `reshape`/`flatten` of a layout that cannot be viewed,
//! which copy as PyTorch does. Views of views compose; bounds are checked
//! against the real storage.

use alloc::vec::Vec;

use super::Tensor;
use super::layout::Layout;
use super::shape::{Dim, MAX_RANK, ReshapeDims, Shape, infer_shape};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};

impl Tensor {
    /// The same elements with a new shape (one dimension may be `-1`): a view
    /// when the strides allow it, else a contiguous copy (as `torch.reshape`).
    ///
    /// # Panics
    /// If the element count differs; see [`try_reshape`](Self::try_reshape).
    #[track_caller]
    pub fn reshape(&self, shape: impl ReshapeDims) -> Tensor {
        unwrap(self.try_reshape(shape))
    }

    /// [`reshape`](Self::reshape), or `InvalidReshape`.
    pub fn try_reshape(&self, shape: impl ReshapeDims) -> Result<Tensor> {
        let target = infer_shape("reshape", self.shape(), &shape.to_signed()?)?;
        match self.layout.view(&target) {
            Some(l) => Ok(self.make_view(l, "ViewBackward0", ViewGrad::Reshape)),
            None => {
                let t = self.try_materialize()?;
                let out = Tensor::from_parts(t.storage, Layout::contiguous(target));
                Ok(self.record_reshape(out, "UnsafeViewBackward0"))
            }
        }
    }

    /// The same elements with a new shape, never copying (as `torch.view`).
    ///
    /// # Panics
    /// If the element count differs or the strides do not allow a view; see
    /// [`try_view`](Self::try_view).
    #[track_caller]
    pub fn view(&self, shape: impl ReshapeDims) -> Tensor {
        unwrap(self.try_view(shape))
    }

    /// [`view`](Self::view), or `InvalidReshape` / `InvalidArgument`.
    pub fn try_view(&self, shape: impl ReshapeDims) -> Result<Tensor> {
        let target = infer_shape("view", self.shape(), &shape.to_signed()?)?;
        match self.layout.view(&target) {
            Some(l) => Ok(self.make_view(l, "ViewBackward0", ViewGrad::Reshape)),
            None => Err(Error::InvalidArgument {
                op: "view",
                detail: "the tensor's strides do not allow this shape without a copy; use reshape",
            }),
        }
    }

    /// Merges dimensions `start..=end` into one (a view when possible, as
    /// `torch.flatten`). A scalar becomes shape `[1]`.
    ///
    /// # Panics
    /// If a dimension is out of range or `start > end`; see
    /// [`try_flatten`](Self::try_flatten).
    #[track_caller]
    pub fn flatten(&self, start: impl Dim, end: impl Dim) -> Tensor {
        unwrap(self.try_flatten(start, end))
    }

    /// [`flatten`](Self::flatten), or an error.
    pub fn try_flatten(&self, start: impl Dim, end: impl Dim) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.try_reshape([1usize]);
        }
        let s = start.resolve("flatten", self.rank())?;
        let e = end.resolve("flatten", self.rank())?;
        if s > e {
            return Err(Error::InvalidArgument {
                op: "flatten",
                detail: "start dimension comes after end dimension",
            });
        }
        let d = self.dims();
        let mut target: heapless::Vec<usize, MAX_RANK> = d[..s].iter().copied().collect();
        let _ = target.push(d[s..=e].iter().product());
        target.extend(d[e + 1..].iter().copied());
        self.try_reshape(&target[..])
    }

    /// Removes every dimension of size 1.
    pub fn squeeze(&self) -> Tensor {
        let mut l = self.layout.clone();
        let mut d = l.rank();
        while d > 0 {
            d -= 1;
            if l.dims()[d] == 1 {
                l = l.squeeze(d);
            }
        }
        self.make_view(l, "SqueezeBackward0", ViewGrad::Reshape)
    }

    /// Removes dimension `dim` if its size is 1 (otherwise returns a view of the
    /// same shape, as PyTorch).
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_squeeze_dim`](Self::try_squeeze_dim).
    #[track_caller]
    pub fn squeeze_dim(&self, dim: impl Dim) -> Tensor {
        unwrap(self.try_squeeze_dim(dim))
    }

    /// [`squeeze_dim`](Self::squeeze_dim), or `DimOutOfRange`.
    pub fn try_squeeze_dim(&self, dim: impl Dim) -> Result<Tensor> {
        let d = dim.resolve("squeeze", self.rank())?;
        Ok(if self.dims()[d] == 1 {
            self.make_view(
                self.layout.squeeze(d),
                "SqueezeBackward1",
                ViewGrad::Reshape,
            )
        } else {
            self.make_view(self.layout.clone(), "SqueezeBackward1", ViewGrad::Reshape)
        })
    }

    /// Inserts a dimension of size 1 at `dim` (`-1` appends).
    ///
    /// # Panics
    /// If `dim` is outside `-(rank+1)..=rank` or the rank would exceed
    /// [`MAX_RANK`]; see [`try_unsqueeze`](Self::try_unsqueeze).
    #[track_caller]
    pub fn unsqueeze(&self, dim: impl Dim) -> Tensor {
        unwrap(self.try_unsqueeze(dim))
    }

    /// [`unsqueeze`](Self::unsqueeze), or an error.
    pub fn try_unsqueeze(&self, dim: impl Dim) -> Result<Tensor> {
        let d = dim.resolve("unsqueeze", self.rank() + 1)?;
        Ok(self.make_view(
            self.layout.unsqueeze("unsqueeze", d)?,
            "UnsqueezeBackward0",
            ViewGrad::Reshape,
        ))
    }

    /// Swaps two dimensions.
    ///
    /// # Panics
    /// If a dimension is out of range; see [`try_transpose`](Self::try_transpose).
    #[track_caller]
    pub fn transpose(&self, dim0: impl Dim, dim1: impl Dim) -> Tensor {
        unwrap(self.try_transpose(dim0, dim1))
    }

    /// [`transpose`](Self::transpose), or `DimOutOfRange`.
    pub fn try_transpose(&self, dim0: impl Dim, dim1: impl Dim) -> Result<Tensor> {
        let a = dim0.resolve("transpose", self.rank())?;
        let b = dim1.resolve("transpose", self.rank())?;
        Ok(self.make_view(
            self.layout.transpose(a, b),
            "TransposeBackward0",
            ViewGrad::Transpose(a, b),
        ))
    }

    /// The transpose of a matrix; a 0-D or 1-D tensor is returned as is (as
    /// `torch.Tensor.t`).
    ///
    /// # Panics
    /// If the rank exceeds 2; see [`try_t`](Self::try_t).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        unwrap(self.try_t())
    }

    /// [`t`](Self::t), or `InvalidArgument`.
    pub fn try_t(&self) -> Result<Tensor> {
        match self.rank() {
            0 | 1 => Ok(self.make_view(self.layout.clone(), "TBackward0", ViewGrad::Reshape)),
            2 => Ok(self.make_view(
                self.layout.transpose(0, 1),
                "TBackward0",
                ViewGrad::Transpose(0, 1),
            )),
            _ => Err(Error::InvalidArgument {
                op: "t",
                detail: "expects a tensor of rank <= 2; use transpose or permute",
            }),
        }
    }

    /// Reorders the dimensions: result dimension `i` is input dimension
    /// `dims[i]`.
    ///
    /// # Panics
    /// If `dims` is not a permutation of the dimensions; see
    /// [`try_permute`](Self::try_permute).
    #[track_caller]
    pub fn permute<D: Dim>(&self, dims: impl AsRef<[D]>) -> Tensor {
        unwrap(self.try_permute(dims))
    }

    /// [`permute`](Self::permute), or an error.
    pub fn try_permute<D: Dim>(&self, dims: impl AsRef<[D]>) -> Result<Tensor> {
        let dims = dims.as_ref();
        let r = self.rank();
        if dims.len() != r {
            return Err(Error::WrongIndexCount {
                op: "permute",
                given: dims.len(),
                rank: r,
            });
        }
        let mut perm = [0usize; MAX_RANK];
        let mut seen = [false; MAX_RANK];
        for (i, &d) in dims.iter().enumerate() {
            let d = d.resolve("permute", r)?;
            if seen[d] {
                return Err(Error::InvalidArgument {
                    op: "permute",
                    detail: "a dimension is repeated",
                });
            }
            seen[d] = true;
            perm[i] = d;
        }
        Ok(self.make_view(
            self.layout.permute(&perm[..r]),
            "PermuteBackward0",
            ViewGrad::Permute(perm),
        ))
    }

    /// Elements `start..start + len` along `dim`.
    ///
    /// # Panics
    /// If the range leaves the dimension; see [`try_narrow`](Self::try_narrow).
    #[track_caller]
    pub fn narrow(&self, dim: impl Dim, start: usize, len: usize) -> Tensor {
        unwrap(self.try_narrow(dim, start, len))
    }

    /// [`narrow`](Self::narrow), or `DimOutOfRange` / `IndexOutOfRange`.
    pub fn try_narrow(&self, dim: impl Dim, start: usize, len: usize) -> Result<Tensor> {
        let d = dim.resolve("narrow", self.rank())?;
        let size = self.dims()[d];
        let end = start.checked_add(len).filter(|&e| e <= size);
        let Some(end) = end else {
            return Err(Error::IndexOutOfRange {
                op: "narrow",
                index: start.saturating_add(len).min(isize::MAX as usize) as isize,
                size,
            });
        };
        Ok(self.make_view(
            self.layout.slice(d, start, end, 1),
            "NarrowBackward0",
            ViewGrad::Slice(d, start, end, 1),
        ))
    }

    /// Elements `start, start + step, ...` before `end` along `dim`, as the
    /// Python slice `x[start:end:step]`: negative bounds count from the end and
    /// out-of-range bounds are clamped.
    ///
    /// # Panics
    /// If `dim` is out of range or `step` is 0; see [`try_slice`](Self::try_slice).
    #[track_caller]
    pub fn slice(&self, dim: impl Dim, start: impl Dim, end: impl Dim, step: usize) -> Tensor {
        unwrap(self.try_slice(dim, start, end, step))
    }

    /// [`slice`](Self::slice), or an error.
    pub fn try_slice(
        &self,
        dim: impl Dim,
        start: impl Dim,
        end: impl Dim,
        step: usize,
    ) -> Result<Tensor> {
        let d = dim.resolve("slice", self.rank())?;
        if step == 0 {
            return Err(Error::InvalidArgument {
                op: "slice",
                detail: "step must be positive",
            });
        }
        let size = self.dims()[d] as isize;
        let clamp = |i: isize| -> usize {
            let i = if i < 0 { i + size } else { i };
            i.clamp(0, size) as usize
        };
        let (s, e) = (clamp(start.as_isize()), clamp(end.as_isize()));
        Ok(self.make_view(
            self.layout.slice(d, s, e.max(s), step),
            "SliceBackward0",
            ViewGrad::Slice(d, s, e.max(s), step),
        ))
    }

    /// The sub-tensor at `index` along `dim`, which is removed (negative
    /// indices count from the end).
    ///
    /// # Panics
    /// If `dim` or `index` is out of range; see [`try_select`](Self::try_select).
    #[track_caller]
    pub fn select(&self, dim: impl Dim, index: impl Dim) -> Tensor {
        unwrap(self.try_select(dim, index))
    }

    /// [`select`](Self::select), or `DimOutOfRange` / `IndexOutOfRange`.
    pub fn try_select(&self, dim: impl Dim, index: impl Dim) -> Result<Tensor> {
        let d = dim.resolve("select", self.rank())?;
        let size = self.dims()[d];
        let i = index.as_isize();
        let at = if i < 0 { i + size as isize } else { i };
        if !(0..size as isize).contains(&at) {
            return Err(Error::IndexOutOfRange {
                op: "select",
                index: i,
                size,
            });
        }
        Ok(self.make_view(
            self.layout.select(d, at as usize),
            "SelectBackward0",
            ViewGrad::Select(d, at as usize),
        ))
    }

    /// A view repeating size-1 dimensions (and prepending new ones) to reach
    /// `shape`; `-1` keeps a dimension's size (as `torch.expand`). No copy:
    /// repeated elements share memory (stride 0).
    ///
    /// # Panics
    /// If the shapes are incompatible; see [`try_expand`](Self::try_expand).
    #[track_caller]
    pub fn expand(&self, shape: impl ReshapeDims) -> Tensor {
        unwrap(self.try_expand(shape))
    }

    /// [`expand`](Self::expand), or `ShapeMismatch`.
    pub fn try_expand(&self, shape: impl ReshapeDims) -> Result<Tensor> {
        let t = shape.to_signed()?;
        let r = self.rank();
        let mut target = Shape::scalar();
        for (i, &s) in t.iter().enumerate() {
            let d = if s == -1 {
                if i + r < t.len() {
                    return Err(Error::InvalidArgument {
                        op: "expand",
                        detail: "-1 is not allowed for a new leading dimension",
                    });
                }
                self.dims()[i + r - t.len()]
            } else if s < 0 {
                return Err(Error::InvalidArgument {
                    op: "expand",
                    detail: "sizes must be non-negative or -1",
                });
            } else {
                s as usize
            };
            target.push(d)?;
        }
        self.try_broadcast_to(target)
    }

    /// A view broadcasting `self` to `shape` by NumPy rules (stride 0 where
    /// repeated).
    ///
    /// # Panics
    /// If `self` does not broadcast to `shape`; see
    /// [`try_broadcast_to`](Self::try_broadcast_to).
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl AsRef<[usize]>) -> Tensor {
        unwrap(self.try_broadcast_to(shape))
    }

    /// [`broadcast_to`](Self::broadcast_to), or `ShapeMismatch`.
    pub fn try_broadcast_to(&self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let target = Shape::try_for("broadcast_to", shape.as_ref())?;
        Ok(self.make_view(
            self.layout.broadcast_to("broadcast_to", &target)?,
            "ExpandBackward0",
            ViewGrad::Expand,
        ))
    }

    /// Splits into pieces of `size` along `dim` (the last may be smaller), as
    /// `torch.split(size, dim)`.
    ///
    /// # Panics
    /// If `dim` is out of range or `size` is 0; see [`try_split`](Self::try_split).
    #[track_caller]
    pub fn split(&self, size: usize, dim: impl Dim) -> Vec<Tensor> {
        unwrap(self.try_split(size, dim))
    }

    /// [`split`](Self::split), or an error.
    pub fn try_split(&self, size: usize, dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim.resolve("split", self.rank())?;
        if size == 0 {
            return Err(Error::InvalidArgument {
                op: "split",
                detail: "split size must be positive",
            });
        }
        let n = self.dims()[d];
        let mut out = crate::pool::try_vec(n.div_ceil(size).max(1))?;
        out.extend((0..n.div_ceil(size).max(1)).map(|i| {
            let s = (i * size).min(n);
            self.make_view(
                self.layout.slice(d, s, (s + size).min(n), 1),
                "SplitBackward0",
                ViewGrad::Slice(d, s, (s + size).min(n), 1),
            )
        }));
        Ok(out)
    }

    /// Splits along `dim` into pieces of the given sizes, which must sum to the
    /// dimension's size (as `torch.split` with a list).
    ///
    /// # Panics
    /// On a bad `dim` or sizes; see [`try_split_sizes`](Self::try_split_sizes).
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: impl Dim) -> Vec<Tensor> {
        unwrap(self.try_split_sizes(sizes, dim))
    }

    /// [`split_sizes`](Self::split_sizes), or an error.
    pub fn try_split_sizes(&self, sizes: &[usize], dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim.resolve("split_sizes", self.rank())?;
        // Checked: a wrapped sum (`[usize::MAX, 5]` is 4 modulo 2^64) would
        // pass and yield a view larger than its storage.
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(self.dims()[d]) {
            return Err(Error::NumelMismatch {
                op: "split_sizes",
                expected: self.dims()[d],
                got: total.unwrap_or(usize::MAX),
            });
        }
        let mut start = 0;
        Ok(sizes
            .iter()
            .map(|&s| {
                let v = self.make_view(
                    self.layout.slice(d, start, start + s, 1),
                    "SplitWithSizesBackward0",
                    ViewGrad::Slice(d, start, start + s, 1),
                );
                start += s;
                v
            })
            .collect())
    }

    /// Splits into `chunks` pieces along `dim` of `ceil(size / chunks)` elements
    /// each (fewer pieces when they run out), as `torch.chunk`.
    ///
    /// # Panics
    /// If `dim` is out of range or `chunks` is 0; see [`try_chunk`](Self::try_chunk).
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: impl Dim) -> Vec<Tensor> {
        unwrap(self.try_chunk(chunks, dim))
    }

    /// [`chunk`](Self::chunk), or an error.
    pub fn try_chunk(&self, chunks: usize, dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim.resolve("chunk", self.rank())?;
        if chunks == 0 {
            return Err(Error::InvalidArgument {
                op: "chunk",
                detail: "number of chunks must be positive",
            });
        }
        let n = self.dims()[d];
        self.try_split(n.div_ceil(chunks).max(1), d)
    }

    /// Every slice along `dim`, with `dim` removed (as `torch.unbind`).
    ///
    /// # Panics
    /// If `dim` is out of range; see [`try_unbind`](Self::try_unbind).
    #[track_caller]
    pub fn unbind(&self, dim: impl Dim) -> Vec<Tensor> {
        unwrap(self.try_unbind(dim))
    }

    /// [`unbind`](Self::unbind), or `DimOutOfRange`.
    pub fn try_unbind(&self, dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = dim.resolve("unbind", self.rank())?;
        let mut out = crate::pool::try_vec(self.dims()[d])?;
        out.extend((0..self.dims()[d]).map(|i| {
            self.make_view(
                self.layout.select(d, i),
                "UnbindBackward0",
                ViewGrad::Select(d, i),
            )
        }));
        Ok(out)
    }

    /// Sliding windows of `size` elements every `step` along `dim`, as a view
    /// with the windows in a new last dimension (as `torch.Tensor.unfold`).
    ///
    /// # Panics
    /// If `size` exceeds the dimension or `step` is 0; see
    /// [`try_unfold`](Self::try_unfold).
    #[track_caller]
    pub fn unfold(&self, dim: impl Dim, size: usize, step: usize) -> Tensor {
        unwrap(self.try_unfold(dim, size, step))
    }

    /// [`unfold`](Self::unfold), or an error.
    pub fn try_unfold(&self, dim: impl Dim, size: usize, step: usize) -> Result<Tensor> {
        let d = dim.resolve("unfold", self.rank())?;
        if size > self.dims()[d] || step == 0 {
            return Err(Error::InvalidArgument {
                op: "unfold",
                detail: "window size must not exceed the dimension and step must be positive",
            });
        }
        let l = self.layout.unfold("unfold", d, size, step)?;
        Ok(self.make_view(l, "UnfoldBackward0", ViewGrad::Unfold(d, size, step)))
    }

    /// A view with explicit `size`, `stride` and storage `offset` (in elements,
    /// counted from the start of the storage, as `torch.as_strided`).
    ///
    /// # Panics
    /// If the view would reach outside the storage or the lengths differ; see
    /// [`try_as_strided`](Self::try_as_strided).
    #[track_caller]
    pub fn as_strided(
        &self,
        size: impl AsRef<[usize]>,
        stride: impl AsRef<[usize]>,
        offset: usize,
    ) -> Tensor {
        unwrap(self.try_as_strided(size, stride, offset))
    }

    /// [`as_strided`](Self::as_strided), or `OutOfBounds` (the view would reach
    /// past the end of the storage) / `WrongIndexCount`.
    pub fn try_as_strided(
        &self,
        size: impl AsRef<[usize]>,
        stride: impl AsRef<[usize]>,
        offset: usize,
    ) -> Result<Tensor> {
        let (size, stride) = (size.as_ref(), stride.as_ref());
        let shape = Shape::try_for("as_strided", size)?;
        if stride.len() != size.len() {
            return Err(Error::WrongIndexCount {
                op: "as_strided",
                given: stride.len(),
                rank: size.len(),
            });
        }
        let available = self.storage.len();
        let mut end = offset.checked_add(1);
        if shape.numel() > 0 {
            for (&n, &s) in size.iter().zip(stride) {
                end = end.and_then(|e| (n - 1).checked_mul(s).and_then(|x| e.checked_add(x)));
            }
        } else {
            end = Some(offset);
        }
        match end {
            Some(e) if e <= available => Ok(self.make_view(
                Layout::from_parts(shape, stride, offset),
                "AsStridedBackward0",
                ViewGrad::AsStrided,
            )),
            _ => Err(Error::OutOfBounds {
                op: "as_strided",
                needed: end.unwrap_or(usize::MAX),
                available,
            }),
        }
    }
}

/// How a view's gradient maps back to its input.
pub(crate) enum ViewGrad {
    /// Same elements, another shape: reshape the gradient back.
    Reshape,
    /// Dimensions swapped: swap them back.
    Transpose(usize, usize),
    /// Dimensions permuted by `perm` (result dim `i` = input dim `perm[i]`).
    Permute([usize; MAX_RANK]),
    /// Broadcast: sum the gradient over the repeated dimensions.
    Expand,
    /// `slice(dim, start, end, step)` of the input.
    Slice(usize, usize, usize, usize),
    /// `select(dim, index)` of the input.
    Select(usize, usize),
    /// `unfold(dim, size, step)` of the input.
    Unfold(usize, usize, usize),
    /// `as_strided`: defined on the storage, not on the input's layout.
    AsStrided,
}

impl ViewGrad {
    /// The view's layout relative to a contiguous layout of the input's
    /// shape, for the kinds defined by the input's logical indices.
    fn relative(&self, input: &Shape) -> Option<Layout> {
        let base = Layout::contiguous(input.clone());
        match *self {
            ViewGrad::Slice(d, s, e, st) => Some(base.slice(d, s, e, st)),
            ViewGrad::Select(d, i) => Some(base.select(d, i)),
            ViewGrad::Unfold(d, n, st) => base.unfold("unfold", d, n, st).ok(),
            _ => None,
        }
    }
}

impl Tensor {
    /// A view of `self` with `layout`, recorded for autograd as `name`.
    pub(crate) fn make_view(&self, layout: Layout, name: &'static str, kind: ViewGrad) -> Tensor {
        let v = self.with_layout(layout);
        if !needs_grad(&[self]) {
            return v;
        }
        match kind {
            ViewGrad::Reshape => self.record_reshape(v, name),
            ViewGrad::Transpose(a, b) => v.record(name, &[self], move |g, _| {
                Ok(alloc::vec![Some(g.try_transpose(a, b)?)])
            }),
            ViewGrad::Permute(perm) => {
                let r = self.rank();
                let mut inv = [0usize; MAX_RANK];
                for (i, &p) in perm[..r].iter().enumerate() {
                    inv[p] = i;
                }
                v.record(name, &[self], move |g, _| {
                    Ok(alloc::vec![Some(g.try_permute(&inv[..r])?)])
                })
            }
            ViewGrad::Expand => {
                let shape = self.shape().clone();
                v.record(name, &[self], move |g, _| {
                    Ok(alloc::vec![Some(crate::ops::sum_to_shape(g, &shape)?)])
                })
            }
            ViewGrad::AsStrided => {
                let (lx, lv) = (self.layout.clone(), v.layout.clone());
                v.record(name, &[self], move |g, _| {
                    Ok(alloc::vec![Some(as_strided_backward(&lx, &lv, g)?)])
                })
            }
            kind => {
                let shape = self.shape().clone();
                let rel = kind
                    .relative(&shape)
                    .expect("index views have a relative layout");
                v.record(name, &[self], move |g, _| {
                    let mut out = Tensor::try_zeros(shape.dims())?;
                    scatter_add(&mut out, &rel, g);
                    Ok(alloc::vec![Some(out)])
                })
            }
        }
    }

    /// Records `out` (same elements as `self`, another shape) for autograd.
    pub(crate) fn record_reshape(&self, out: Tensor, name: &'static str) -> Tensor {
        let shape = self.shape().clone();
        out.record(name, &[self], move |g, _| {
            Ok(alloc::vec![Some(g.try_reshape(&shape)?)])
        })
    }
}

/// `buf[lv] += g` for a fresh contiguous `buf`, visiting `g` in logical order
/// through the view layout `lv` (overlapping views accumulate).
fn scatter_add(buf: &mut Tensor, lv: &Layout, g: &Tensor) {
    let data = buf.storage.get_mut().expect("fresh buffer");
    let src = g.storage.as_slice();
    for run in super::layout::Walker::new([lv, &g.layout]) {
        for i in 0..run.len {
            data[run.offsets[0] + i * run.strides[0]] += src[run.offsets[1] + i * run.strides[1]];
        }
    }
}

/// Gradient of the input of `as_strided`, which is defined on storage
/// positions: scatter-add `g` over the storage span of both layouts through the
/// view's layout, then read each input element's storage position, divided by
/// how many input elements share it (as PyTorch does for overlapping inputs).
fn as_strided_backward(input: &Layout, view: &Layout, g: &Tensor) -> Result<Tensor> {
    let lo = input.offset().min(view.offset());
    let hi = input.end().max(view.end());
    let mut buf = Tensor::try_zeros([hi - lo])?;
    scatter_add(&mut buf, &view.shifted_down(lo), g);
    let lx = input.shifted_down(lo);
    let grad = Tensor::from_parts(buf.storage.clone(), lx.clone()).try_materialize()?;
    if !input.may_overlap() {
        return Ok(grad);
    }
    let mut count = Tensor::try_zeros([hi - lo])?;
    let ones = Tensor::try_full(input.dims(), 1.0)?;
    scatter_add(&mut count, &lx, &ones);
    let count = Tensor::from_parts(count.storage.clone(), lx).try_materialize()?;
    grad.try_div_tensor(&count)
}
