//! Reordering: `repeat` (tiling), `flip` and constant `pad`.

use alloc::vec;

use super::copy_runs;
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{Dim, MAX_RANK, Shape, Tensor};

impl Tensor {
    /// Tiles the tensor `repeats[i]` times along dimension `i` (as
    /// `torch.Tensor.repeat`). `repeats` may be longer than the rank: the
    /// tensor is then treated as having leading dimensions of size 1, e.g. a
    /// `[3]` tensor repeated `[2, 2]` is `[2, 6]`. A repeat of 0 gives an
    /// empty dimension.
    ///
    /// # Panics
    /// If `repeats` is shorter than the rank or longer than [`MAX_RANK`]; see
    /// [`try_repeat`](Self::try_repeat).
    #[track_caller]
    pub fn repeat(&self, repeats: &[usize]) -> Tensor {
        unwrap(self.try_repeat(repeats))
    }

    /// [`repeat`](Self::repeat), or `InvalidArgument` / `RankTooHigh`.
    pub fn try_repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        let op = "repeat";
        let (n, r) = (repeats.len(), self.rank());
        if n < r {
            return Err(Error::InvalidArgument {
                op,
                detail: "the number of repeats must be at least the number of dimensions",
            });
        }
        if n > MAX_RANK {
            return Err(Error::RankTooHigh { op, rank: n });
        }
        let mut in_dims = [1usize; MAX_RANK];
        in_dims[n - r..n].copy_from_slice(self.dims());
        let mut out_dims = [0usize; MAX_RANK];
        for i in 0..n {
            out_dims[i] = in_dims[i]
                .checked_mul(repeats[i])
                .ok_or(Error::InvalidArgument {
                    op,
                    detail: "the result would be too large",
                })?;
        }
        let in_shape = Shape::try_for(op, &in_dims[..n])?;
        let out_shape = Shape::try_for(op, &out_dims[..n])?;
        let lo = Layout::contiguous(out_shape.clone());
        // `self` seen as rank n, and the first tile of the output.
        let mut lx = self.layout.clone();
        for _ in r..n {
            lx = lx.unsqueeze(op, 0)?;
        }
        let tile = Layout::from_parts(in_shape.clone(), lo.strides(), 0);
        let out = Tensor::try_from_fill(out_shape, |buf| {
            if buf.is_empty() {
                return;
            }
            copy_runs(buf, &tile, self.storage.as_slice(), &lx);
            // Innermost first: along dimension i, the slab of the first tile
            // (contiguous, since the dimensions inside it are complete) is
            // copied to the other tiles, for every position of the first tile
            // in the dimensions outside it.
            for i in (0..n).rev() {
                if repeats[i] == 1 {
                    continue;
                }
                let block = in_dims[i] * lo.strides()[i];
                let outer = Layout::from_parts(
                    Shape::try_for(op, &in_dims[..i]).expect("rank checked above"),
                    &lo.strides()[..i],
                    0,
                );
                for run in Walker::new([&outer]) {
                    for t in 0..run.len {
                        let at = run.offsets[0] + t * run.strides[0];
                        for k in 1..repeats[i] {
                            buf.copy_within(at..at + block, at + k * block);
                        }
                    }
                }
            }
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        let (shape, reps) = (self.shape().clone(), repeats.to_vec());
        Ok(out.record("RepeatBackward0", &[self], move |g, _| {
            // Sum the tiles one dimension at a time: dimension i of size
            // reps[i] * in_dims[i] splits as [reps[i], in_dims[i]] (tile
            // outermost), viewed as [outer, reps[i], inner] and summed over
            // the middle.
            let mut g = g.clone();
            let mut cur = out_dims;
            for i in 0..n {
                if reps[i] == 1 {
                    continue;
                }
                let outer: usize = cur[..i].iter().product();
                let inner: usize = in_dims[i] * cur[i + 1..n].iter().product::<usize>();
                g = g
                    .try_reshape([outer, reps[i], inner])?
                    .try_sum_dims([1], false)?;
                cur[i] = in_dims[i];
            }
            Ok(vec![Some(g.try_reshape(&shape)?)])
        }))
    }

    /// Reverses the order of elements along each of `dims` (negative counts
    /// from the end; an empty list reverses nothing). A copy, as `torch.flip`.
    ///
    /// # Panics
    /// If a dimension is out of range or repeated; see [`try_flip`](Self::try_flip).
    #[track_caller]
    pub fn flip<D: Dim>(&self, dims: impl AsRef<[D]>) -> Tensor {
        unwrap(self.try_flip(dims))
    }

    /// [`flip`](Self::flip), or `DimOutOfRange` / `InvalidArgument`.
    pub fn try_flip<D: Dim>(&self, dims: impl AsRef<[D]>) -> Result<Tensor> {
        let op = "flip";
        let r = self.rank();
        let mut flipped: heapless::Vec<usize, MAX_RANK> = heapless::Vec::new();
        for &d in dims.as_ref() {
            let d = d.resolve(op, r.max(1))?;
            if flipped.contains(&d) {
                return Err(Error::InvalidArgument {
                    op,
                    detail: "a dimension appears more than once",
                });
            }
            let _ = flipped.push(d);
        }
        let sizes = self.dims();
        // One pass per flipped dimension (of size > 1) over contiguous data:
        // viewed as [outer, n, inner], block i of each outer slab comes from
        // block n - 1 - i.
        // Nothing to move in an empty tensor (whose other sizes may be huge:
        // the loops below would run over them).
        let mut cur: Option<Tensor> = None;
        let empty = self.numel() == 0;
        for &d in flipped.iter().filter(|&&d| r > 0 && sizes[d] > 1 && !empty) {
            let (n, inner) = (sizes[d], sizes[d + 1..].iter().product::<usize>());
            let outer: usize = sizes[..d].iter().product();
            let src_t = match cur.take() {
                Some(t) => t,
                None if self.is_contiguous() => self.detach(),
                None => self.try_materialize()?,
            };
            let src = src_t.as_slice().expect("contiguous");
            cur = Some(Tensor::try_from_fill(self.shape().clone(), |buf| {
                for o in 0..outer {
                    for i in 0..n {
                        let to = (o * n + i) * inner;
                        let from = (o * n + n - 1 - i) * inner;
                        buf[to..to + inner].copy_from_slice(&src[from..from + inner]);
                    }
                }
            })?);
        }
        let out = match cur {
            Some(t) => t,
            None => self.try_materialize()?,
        };
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        Ok(out.record("FlipBackward0", &[self], move |g, _| {
            Ok(vec![Some(g.try_flip(&flipped[..])?)])
        }))
    }

    /// Constant padding, as `torch.nn.functional.pad(x, pad, value=value)`,
    /// with PyTorch's flat list written as pairs in the same order:
    /// `pad[0] = (before, after)` for the LAST dimension, `pad[1]` for the one
    /// before it, and so on; dimensions not listed are not padded. So
    /// `F.pad(x, (1, 2, 3, 4))` is `x.pad(&[(1, 2), (3, 4)], 0.0)`: one column
    /// before and two after, three rows before and four after. Negative
    /// amounts remove elements from that side, as in PyTorch.
    ///
    /// # Panics
    /// If more dimensions are listed than `self` has, or negative padding
    /// removes more than a dimension holds; see [`try_pad`](Self::try_pad).
    #[track_caller]
    pub fn pad(&self, pad: &[(isize, isize)], value: f32) -> Tensor {
        unwrap(self.try_pad(pad, value))
    }

    /// [`pad`](Self::pad), or `InvalidArgument` naming `pad`.
    pub fn try_pad(&self, pad: &[(isize, isize)], value: f32) -> Result<Tensor> {
        let op = "pad";
        let r = self.rank();
        if pad.len() > r {
            return Err(Error::InvalidArgument {
                op,
                detail: "the padding lists more dimensions than the tensor has",
            });
        }
        let mut dims = [0usize; MAX_RANK];
        dims[..r].copy_from_slice(self.dims());
        // The kept part of the input, and where it lands in the output.
        let mut kept = self.layout.clone();
        let mut region = [(0usize, 0usize); MAX_RANK]; // (start, len) per dimension
        for (i, &d) in self.dims().iter().enumerate() {
            region[i] = (0, d);
        }
        for (j, &(before, after)) in pad.iter().enumerate() {
            let d = r - 1 - j;
            // i128: no amount of padding can overflow.
            let (size, b, a) = (self.dims()[d] as i128, before as i128, after as i128);
            let (cut_b, cut_a) = ((-b).max(0), (-a).max(0));
            let len = size - cut_b - cut_a;
            if len < 0 {
                return Err(Error::InvalidArgument {
                    op,
                    detail: "negative padding removes more elements than the dimension has",
                });
            }
            dims[d] = usize::try_from(size + b + a).map_err(|_| Error::InvalidArgument {
                op,
                detail: "the padded size is too large",
            })?;
            let (cut_b, len) = (cut_b as usize, len as usize);
            kept = kept.slice(d, cut_b, cut_b + len, 1);
            region[d] = (b.max(0) as usize, len);
        }
        let shape = Shape::try_for(op, &dims[..r])?;
        let lo = Layout::contiguous(shape.clone());
        let mut target = lo.clone();
        for (d, &(start, len)) in region[..r].iter().enumerate() {
            target = target.slice(d, start, start + len, 1);
        }
        let out = Tensor::try_from_fill(shape, |buf| {
            buf.fill(value);
            copy_runs(buf, &target, self.storage.as_slice(), &kept);
        })?;
        if !needs_grad(&[self]) {
            return Ok(out);
        }
        // The kept part relative to a contiguous input.
        let mut from = Layout::contiguous(self.shape().clone());
        for (j, &(before, _)) in pad.iter().enumerate() {
            let d = r - 1 - j;
            let cut_b = (-(before as i128)).max(0) as usize;
            from = from.slice(d, cut_b, cut_b + region[d].1, 1);
        }
        let in_shape = self.shape().clone();
        Ok(out.record("ConstantPadNdBackward0", &[self], move |g, _| {
            let mut lg = g.layout.clone();
            for (d, &(start, len)) in region[..r].iter().enumerate() {
                lg = lg.slice(d, start, start + len, 1);
            }
            let gin = Tensor::try_from_fill(in_shape.clone(), |buf| {
                buf.fill(0.0);
                copy_runs(buf, &from, g.storage.as_slice(), &lg);
            })?;
            Ok(vec![Some(gin)])
        }))
    }
}
