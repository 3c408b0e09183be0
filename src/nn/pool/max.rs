//! Max pooling: [`MaxPool2d`] and its options, the direct and sliding
//! window loops, and the gradient to each window's maximum.

use alloc::vec;

use super::{Axis, batched, check_axes, out_sizes, plan_needs_batch, plan_out_sizes};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::nn::Module;
use crate::nn::conv::Spatial;
use crate::nn::plan::{PlanTensor, Planner};
use crate::nn::window::window_argmax;
use crate::tensor::{Shape, Tensor};

/// Options of [`MaxPool2d`], with PyTorch's defaults: stride = kernel size,
/// no padding, dilation 1, floor rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dOptions {
    /// Step between windows; `None` means the kernel size.
    pub stride: Option<[usize; 2]>,
    /// Implicit `-inf` padding on both sides (at most half the kernel).
    pub padding: [usize; 2],
    /// Spacing between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up, letting the last window start inside the
    /// input or left padding and run past the end.
    pub ceil_mode: bool,
}

impl Default for MaxPool2dOptions {
    fn default() -> Self {
        MaxPool2dOptions {
            stride: None,
            padding: [0; 2],
            dilation: [1; 2],
            ceil_mode: false,
        }
    }
}

impl MaxPool2dOptions {
    /// Sets the stride.
    pub fn stride(mut self, s: impl Spatial<2>) -> Self {
        self.stride = Some(s.to_array());
        self
    }
    /// Sets the padding.
    pub fn padding(mut self, p: impl Spatial<2>) -> Self {
        self.padding = p.to_array();
        self
    }
    /// Sets the dilation.
    pub fn dilation(mut self, d: impl Spatial<2>) -> Self {
        self.dilation = d.to_array();
        self
    }
    /// Sets `ceil_mode`.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

/// The taps of window `o` along axis `a` of an input of `size` that fall
/// inside it: the first one (stepping by the dilation) and the end.
fn window(o: usize, a: Axis, size: usize) -> (usize, usize) {
    // i128: a huge kernel, dilation or stride cannot overflow it.
    let start = (o as i128) * (a.stride as i128) - a.pad as i128;
    let end = (start + (a.kernel as i128 - 1) * a.dilation as i128 + 1).min(size as i128);
    let mut first = start;
    if first < 0 {
        // The first tap at or after 0 (one division, not a loop).
        let d = a.dilation as i128;
        first += (-first + d - 1) / d * d;
    }
    let end = end.max(0);
    (first.min(end) as usize, end as usize)
}

/// Max pooling over `[N, C, H, W]`; returns the result `[N, C, OH, OW]` and,
/// as a pool tensor of the same shape, which tap of its window each output
/// took (`dr * kernel_w + dq` for the tap `dr` rows and `dq` columns into the
/// window's in-input part, exact in an f32 since windows have fewer than
/// 2^24 taps; -1 for a window that covers no input element). The gradient
/// keeps the taps, so their memory is accounted like any saved tensor.
fn max_pool2d(x: &Tensor, axes: &[Axis; 2], out: [usize; 2]) -> Result<(Tensor, Tensor)> {
    let (n, c, h, w) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let [oh, ow] = out;
    let [ah, aw] = *axes;
    if ah.kernel.saturating_mul(aw.kernel) >= 1 << 24 {
        return Err(Error::InvalidArgument {
            op: "MaxPool2d",
            detail: "windows of 2^24 or more taps are not supported",
        });
    }
    let xc = x.try_contiguous()?;
    let src = xc.as_slice().expect("contiguous");
    let planes = n * c;
    // The output shape first: it checks that `planes * oh * ow` fits.
    let shape = Shape::new(&[n, c, oh, ow])?;
    let mut taps = Tensor::try_from_fill(shape.clone(), |t| t.fill(-1.0))?;
    let tap = taps.try_data_mut()?;
    if sliding(axes) {
        let mut y = Tensor::try_from_fill(shape, |buf| buf.fill(0.0))?;
        max_pool_sliding(src, [h, w], axes, out, y.try_data_mut()?, tap)?;
        return record_max_pool(x, y, taps, [h, w], axes, out);
    }
    let y = Tensor::try_from_fill(shape, |buf| {
        for p in 0..planes {
            let plane = &src[p * h * w..(p + 1) * h * w];
            for i in 0..oh {
                let (h0, h1) = window(i, ah, h);
                for j in 0..ow {
                    let (w0, w1) = window(j, aw, w);
                    let mut best = f32::NEG_INFINITY;
                    let mut at = -1.0;
                    if h0 < h1 && w0 < w1 {
                        at = 0.0;
                        for (dr, r) in (h0..h1).step_by(ah.dilation).enumerate() {
                            for (dq, q) in (w0..w1).step_by(aw.dilation).enumerate() {
                                let v = plane[r * w + q];
                                if v > best || v.is_nan() {
                                    best = v;
                                    at = (dr * aw.kernel + dq) as f32;
                                }
                            }
                        }
                    }
                    let o = (p * oh + i) * ow + j;
                    buf[o] = best;
                    tap[o] = at;
                }
            }
        }
    })?;
    record_max_pool(x, y, taps, [h, w], axes, out)
}

/// Records the gradient of max pooling `x` into `y` (to each window's tap).
fn record_max_pool(
    x: &Tensor,
    y: Tensor,
    taps: Tensor,
    [h, w]: [usize; 2],
    &[ah, aw]: &[Axis; 2],
    [oh, ow]: [usize; 2],
) -> Result<(Tensor, Tensor)> {
    if !needs_grad(&[x]) {
        return Ok((y, taps));
    }
    let saved = taps.clone();
    let in_shape = x.shape().clone();
    let y = y.record("MaxPool2DWithIndicesBackward0", &[x], move |g, _| {
        let g = g.try_contiguous()?;
        let gs = g.as_slice().expect("contiguous");
        let ts = saved.as_slice().expect("contiguous");
        let gin = Tensor::try_from_fill(in_shape.clone(), |buf| {
            buf.fill(0.0);
            for (o, (&t, &gv)) in ts.iter().zip(gs).enumerate() {
                if let Some(at) = position(t, o, [oh, ow], [h, w], &[ah, aw]) {
                    buf[o / (oh * ow) * h * w + at] += gv;
                }
            }
        })?;
        Ok(vec![Some(gin)])
    });
    Ok((y, taps))
}

/// Windows of more taps than this take the sliding path.
const DIRECT_TAPS: usize = 64;

/// Whether max pooling with `axes` takes [`max_pool_sliding`] (windows of
/// more than [`DIRECT_TAPS`] taps) rather than reading every tap of every
/// window.
fn sliding(axes: &[Axis; 2]) -> bool {
    axes[0].kernel.saturating_mul(axes[1].kernel) > DIRECT_TAPS
}

/// Max pooling in `O(H * OW + OH * OW)` per plane instead of `O(OH * OW *
/// taps)` (a [3, 8192] window at stride 1 over 65,536 columns took 11 s),
/// with the same results and taps as the direct loop: each input row's
/// window maxima along W (first column on ties, last NaN), then along H over
/// those (first row on ties, last NaN), which is the row-major order. Uses
/// a work buffer of `2 * H * OW` floats (values and column taps) and a
/// queue of `max(H, W)` positions.
fn max_pool_sliding(
    src: &[f32],
    [h, w]: [usize; 2],
    &[ah, aw]: &[Axis; 2],
    [oh, ow]: [usize; 2],
    buf: &mut [f32],
    tap: &mut [f32],
) -> Result<()> {
    if h == 0 || w == 0 {
        // Every window is empty (`tap` holds -1 already).
        buf.fill(f32::NEG_INFINITY);
        return Ok(());
    }
    let mut work = crate::pool::WorkBuf::try_new(2 * h * ow)?;
    let (rv, rc) = work.as_mut_slice().split_at_mut(h * ow);
    let mut queue = crate::pool::try_vec(h.max(w))?;
    for (p, plane) in src.chunks_exact(h * w).enumerate() {
        for (r, row) in plane.chunks_exact(w).enumerate() {
            let (rv, rc) = (&mut rv[r * ow..(r + 1) * ow], &mut rc[r * ow..(r + 1) * ow]);
            let span = |j| window(j, aw, w);
            window_argmax(
                ow,
                aw.stride,
                aw.dilation,
                span,
                |q| row[q],
                &mut queue,
                |j, at| {
                    // An empty window along W is empty for every row.
                    (rv[j], rc[j]) = at.map_or((f32::NEG_INFINITY, -1.0), |q| {
                        (row[q], ((q - span(j).0) / aw.dilation) as f32)
                    });
                },
            );
        }
        let (buf, tap) = (
            &mut buf[p * oh * ow..(p + 1) * oh * ow],
            &mut tap[p * oh * ow..(p + 1) * oh * ow],
        );
        for j in 0..ow {
            let span = |i| window(i, ah, h);
            let val = |r: usize| rv[r * ow + j];
            window_argmax(
                oh,
                ah.stride,
                ah.dilation,
                span,
                val,
                &mut queue,
                |i, at| {
                    let o = i * ow + j;
                    (buf[o], tap[o]) = match at {
                        Some(r) if rc[r * ow + j] >= 0.0 => {
                            let dr = (r - span(i).0) / ah.dilation;
                            (rv[r * ow + j], (dr * aw.kernel) as f32 + rc[r * ow + j])
                        }
                        _ => (f32::NEG_INFINITY, -1.0),
                    };
                },
            );
        }
    }
    Ok(())
}

/// Output `o`'s input position in its plane (`r * w + q`) from the tap it
/// took, or `None` for an empty window.
fn position(
    tap: f32,
    o: usize,
    [oh, ow]: [usize; 2],
    [h, w]: [usize; 2],
    [ah, aw]: &[Axis; 2],
) -> Option<usize> {
    if tap < 0.0 {
        return None;
    }
    let t = tap as usize;
    let (i, j) = (o / ow % oh, o % ow);
    let (h0, _) = window(i, *ah, h);
    let (w0, _) = window(j, *aw, w);
    let r = h0 + t / aw.kernel * ah.dilation;
    let q = w0 + t % aw.kernel * aw.dilation;
    Some(r * w + q)
}

/// 2-D max pooling, as `torch.nn.MaxPool2d`: input `[N, C, H, W]` (or
/// `[C, H, W]`), output `[N, C, OH, OW]` with `OH = (H + 2 padding -
/// dilation (k - 1) - 1) / stride + 1` (rounded up with `ceil_mode`). The
/// gradient goes to the position of each window's maximum (the first one on
/// ties in row-major order; a NaN wins, the last one if several). Windows
/// of more than 64 taps slide, so the cost per output does not grow with the
/// window. No parameters. Errors name `MaxPool2d` and the input's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    axes: [Axis; 2],
    ceil_mode: bool,
}

impl MaxPool2d {
    /// Max pooling with window `kernel_size` and PyTorch's defaults (stride
    /// = kernel size, no padding).
    ///
    /// # Panics
    /// If a kernel size is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(kernel_size: impl Spatial<2>) -> MaxPool2d {
        unwrap(Self::try_new(kernel_size, MaxPool2dOptions::default()))
    }

    /// Max pooling with the given options.
    ///
    /// # Panics
    /// On invalid options; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_options(kernel_size: impl Spatial<2>, opts: MaxPool2dOptions) -> MaxPool2d {
        unwrap(Self::try_new(kernel_size, opts))
    }

    /// Max pooling, or `InvalidArgument` naming `MaxPool2d` if a kernel size,
    /// stride or dilation is 0 or the padding exceeds half the kernel.
    pub fn try_new(kernel_size: impl Spatial<2>, opts: MaxPool2dOptions) -> Result<MaxPool2d> {
        let k = kernel_size.to_array();
        let s = opts.stride.unwrap_or(k);
        let axis = |i: usize| Axis {
            kernel: k[i],
            stride: s[i],
            pad: opts.padding[i],
            dilation: opts.dilation[i],
        };
        let axes = [axis(0), axis(1)];
        check_axes("MaxPool2d", &axes)?;
        Ok(MaxPool2d {
            axes,
            ceil_mode: opts.ceil_mode,
        })
    }

    /// The pooled result and, for each output element, the flat position
    /// `h * W + w` of its maximum within its input plane, as f32 (PyTorch's
    /// `return_indices=True`). Inputs with planes of more than 2^24 elements
    /// are refused (their positions do not fit an f32).
    pub fn try_forward_with_indices(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let op = "MaxPool2d";
        let (xb, was_batched) = batched(op, x)?;
        if xb.dims()[2] * xb.dims()[3] > 1 << 24 {
            return Err(Error::InvalidArgument {
                op,
                detail: "indices of planes larger than 2^24 elements do not fit an f32",
            });
        }
        let out = out_sizes(op, &xb, &self.axes, self.ceil_mode)?;
        let (y, taps) = max_pool2d(&xb, &self.axes, out)?;
        let (h, w) = (xb.dims()[2], xb.dims()[3]);
        let ts = taps.as_slice().expect("contiguous");
        let ind = Tensor::try_from_fill(y.shape().clone(), |dst| {
            for (k, (d, &t)) in dst.iter_mut().zip(ts).enumerate() {
                *d = position(t, k, out, [h, w], &self.axes).map_or(0.0, |p| p as f32);
            }
        })?;
        if was_batched {
            Ok((y, ind))
        } else {
            Ok((y.try_squeeze_dim(0)?, ind.try_squeeze_dim(0)?))
        }
    }

    /// [`try_forward_with_indices`](Self::try_forward_with_indices).
    ///
    /// # Panics
    /// On a bad input shape.
    #[track_caller]
    pub fn forward_with_indices(&self, x: &Tensor) -> (Tensor, Tensor) {
        unwrap(self.try_forward_with_indices(x))
    }
}

impl Module for MaxPool2d {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = "MaxPool2d";
        let (xb, was_batched) = batched(op, x)?;
        let out = out_sizes(op, &xb, &self.axes, self.ceil_mode)?;
        let (y, _) = max_pool2d(&xb, &self.axes, out)?;
        if was_batched {
            Ok(y)
        } else {
            y.try_squeeze_dim(0)
        }
    }
    /// Batched `[N, C, H, W]` inputs only: the result and the taps each
    /// output took (saved for the gradient) are two buffers of the output's
    /// shape, and the gradient is one buffer of the input's shape.
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let &[n, c, ..] = x.dims() else {
            return Err(plan_needs_batch("MaxPool2d"));
        };
        let [oh, ow] = plan_out_sizes("MaxPool2d", x, &self.axes, self.ceil_mode)?;
        let y = p.windowed(x, &[n, c, oh, ow])?;
        // The sliding path's work buffer, taken while both outputs exist.
        let (h, w) = (x.dims()[2], x.dims()[3]);
        if sliding(&self.axes) && h > 0 && w > 0 {
            p.work(2 * h * ow);
        }
        Ok(y)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}
