//! Pooling: [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`], as in
//! `torch.nn`.
//!
//! - Max pooling is its own op: one pass finds each window's maximum and
//!   the position it came from (PyTorch's rule: the first maximum in
//!   row-major window order, a NaN wins and a later NaN replaces an earlier
//!   one, padding is never chosen); backward adds each output gradient at
//!   that position.
//! - Average pooling sums a strided window view of the zero-padded input and
//!   divides by each window's divisor (PyTorch's `count_include_pad`,
//!   `ceil_mode` and `divisor_override` rules); autograd gives the gradient.
//! - Adaptive average pooling is `P_h x P_wᵀ` with two small averaging
//!   matrices (row `i` of `P_h` averages input rows `floor(i H / OH)` to
//!   `ceil((i + 1) H / OH)`), so windows of different sizes cost two matrix
//!   products and the gradient comes from them.
//!
//! Inputs are `[N, C, H, W]` or unbatched `[C, H, W]`.

use alloc::vec;

use super::Module;
use super::conv::Spatial;
use super::plan::{PlanTensor, Planner};
use super::window::{window_argmax, window_sums};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
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

/// Options of [`AvgPool2d`], with PyTorch's defaults: stride = kernel size,
/// no padding, floor rounding, padding counted in the divisor, no divisor
/// override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2dOptions {
    /// Step between windows; `None` means the kernel size.
    pub stride: Option<[usize; 2]>,
    /// Implicit zero padding on both sides (at most half the kernel).
    pub padding: [usize; 2],
    /// Round the output size up (see [`MaxPool2dOptions::ceil_mode`]).
    pub ceil_mode: bool,
    /// Whether the zero padding counts in the divisor (default true). The
    /// part of a `ceil_mode` window past the padding never counts.
    pub count_include_pad: bool,
    /// Divide every window by this number instead.
    pub divisor_override: Option<usize>,
}

impl Default for AvgPool2dOptions {
    fn default() -> Self {
        AvgPool2dOptions {
            stride: None,
            padding: [0; 2],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
}

impl AvgPool2dOptions {
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
    /// Sets `ceil_mode`.
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    /// Sets `count_include_pad`.
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
    /// Sets `divisor_override`.
    pub fn divisor_override(mut self, d: Option<usize>) -> Self {
        self.divisor_override = d;
        self
    }
}

/// One spatial dimension of a pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Axis {
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
}

impl Axis {
    /// PyTorch's `pooling_output_shape`, or `None` if it is below 1.
    fn out_size(&self, input: usize, ceil: bool) -> Option<usize> {
        // i128: sums of sizes, paddings and strides cannot overflow it; the
        // product dilation * (kernel - 1) can, and then the window is larger
        // than any input.
        let (i, k, s, p, d) = (
            input as i128,
            self.kernel as i128,
            self.stride as i128,
            self.pad as i128,
            self.dilation as i128,
        );
        let span = d.checked_mul(k - 1)?;
        let numer = i + 2 * p - span - 1 + if ceil { s - 1 } else { 0 };
        let mut out = numer.div_euclid(s) + 1;
        if ceil && (out - 1) * s >= i + p {
            out -= 1;
        }
        usize::try_from(out).ok().filter(|&o| o >= 1)
    }
}

/// Checks a pooling configuration as PyTorch's constructors and
/// `pool2d_shape_check` do.
fn check_axes(op: &'static str, axes: &[Axis; 2]) -> Result<()> {
    let bad = |detail| Err(Error::InvalidArgument { op, detail });
    for a in axes {
        if a.kernel == 0 {
            return bad("kernel size must be positive");
        }
        if a.stride == 0 {
            return bad("stride must be positive");
        }
        if a.dilation == 0 {
            return bad("dilation must be positive");
        }
        if a.pad > a.kernel / 2 {
            return bad("pad should be at most half of the kernel size");
        }
    }
    Ok(())
}

/// The input as `[N, C, H, W]` and whether it was unbatched, or an error
/// naming `op` and the input's shape.
fn batched(op: &'static str, x: &Tensor) -> Result<(Tensor, bool)> {
    match x.rank() {
        4 => Ok((x.clone(), true)),
        3 => Ok((x.try_unsqueeze(0)?, false)),
        _ => Err(Error::ShapeMismatch {
            op,
            lhs: x.shape().into(),
            rhs: crate::error::Dims::default(),
            detail: "expects an input [N, C, H, W] or [C, H, W]",
        }),
    }
}

/// The output size of a pooling plan on `x [N, C, H, W]`, or the plan's
/// error (not batched, or too small for the window).
fn plan_out_sizes(
    layer: &'static str,
    x: &PlanTensor,
    axes: &[Axis; 2],
    ceil: bool,
) -> Result<[usize; 2]> {
    let &[_, _, h, w] = x.dims() else {
        return Err(plan_needs_batch(layer));
    };
    match (axes[0].out_size(h, ceil), axes[1].out_size(w, ceil)) {
        (Some(oh), Some(ow)) => Ok([oh, ow]),
        _ => Err(Error::InvalidArgument {
            op: "plan",
            detail: "pooling plan: the input is too small for the window",
        }),
    }
}

/// The error of a pooling plan on an input that is not `[N, C, H, W]`.
fn plan_needs_batch(layer: &'static str) -> Error {
    Error::InvalidArgument {
        op: "plan",
        detail: match layer {
            "MaxPool2d" => "MaxPool2d plans take a batched input [N, C, H, W]",
            "AvgPool2d" => "AvgPool2d plans take a batched input [N, C, H, W]",
            _ => "AdaptiveAvgPool2d plans take a batched input [N, C, H, W] with H, W > 0",
        },
    }
}

/// The output sizes for input `[.., h, w]`, or an error naming the input.
fn out_sizes(op: &'static str, x: &Tensor, axes: &[Axis; 2], ceil: bool) -> Result<[usize; 2]> {
    let (h, w) = (x.dims()[2], x.dims()[3]);
    match (axes[0].out_size(h, ceil), axes[1].out_size(w, ceil)) {
        (Some(oh), Some(ow)) => Ok([oh, ow]),
        _ => Err(Error::ShapeMismatch {
            op,
            lhs: x.shape().into(),
            rhs: crate::error::Dims::default(),
            detail: "the input is too small for the window: the output size would be 0",
        }),
    }
}

// ------------------------------------------------------------------ max

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
    let mut work = crate::tensor::pool::WorkBuf::try_new(2 * h * ow)?;
    let (rv, rc) = work.as_mut_slice().split_at_mut(h * ow);
    let mut queue = crate::error::try_vec(h.max(w))?;
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

// ------------------------------------------------------------------ average

/// 2-D average pooling, as `torch.nn.AvgPool2d`: input `[N, C, H, W]` (or
/// `[C, H, W]`), output `[N, C, OH, OW]` with `OH = (H + 2 padding - k) /
/// stride + 1` (rounded up with `ceil_mode`). Each output is its window's
/// sum divided by the window size (including zero padding unless
/// `count_include_pad` is off), or by `divisor_override`. The window sums
/// are separable, and long overlapping windows are summed in two levels
/// (about `2 sqrt(k)` additions per output and axis instead of `k`). No
/// parameters. Errors name `AvgPool2d` and the input's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    axes: [Axis; 2],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
}

impl AvgPool2d {
    /// Average pooling with window `kernel_size` and PyTorch's defaults.
    ///
    /// # Panics
    /// If a kernel size is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(kernel_size: impl Spatial<2>) -> AvgPool2d {
        unwrap(Self::try_new(kernel_size, AvgPool2dOptions::default()))
    }

    /// Average pooling with the given options.
    ///
    /// # Panics
    /// On invalid options; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_options(kernel_size: impl Spatial<2>, opts: AvgPool2dOptions) -> AvgPool2d {
        unwrap(Self::try_new(kernel_size, opts))
    }

    /// Average pooling, or `InvalidArgument` naming `AvgPool2d` if a kernel
    /// size, stride or `divisor_override` is 0 or the padding exceeds half
    /// the kernel.
    pub fn try_new(kernel_size: impl Spatial<2>, opts: AvgPool2dOptions) -> Result<AvgPool2d> {
        let k = kernel_size.to_array();
        let s = opts.stride.unwrap_or(k);
        let axis = |i: usize| Axis {
            kernel: k[i],
            stride: s[i],
            pad: opts.padding[i],
            dilation: 1,
        };
        let axes = [axis(0), axis(1)];
        check_axes("AvgPool2d", &axes)?;
        if opts.divisor_override == Some(0) {
            return Err(Error::InvalidArgument {
                op: "AvgPool2d",
                detail: "divisor must not be zero",
            });
        }
        Ok(AvgPool2d {
            axes,
            ceil_mode: opts.ceil_mode,
            count_include_pad: opts.count_include_pad,
            divisor_override: opts.divisor_override,
        })
    }

    /// The divisor of each output position (PyTorch's `avg_pool2d` rules).
    fn divisors(&self, size: [usize; 2], out: [usize; 2]) -> Result<Tensor> {
        // Per axis: (window length within input + padding, within input).
        let extent = |a: Axis, o: usize, n: usize| {
            // i128: a huge kernel or stride cannot overflow it.
            let start = (o as i128) * (a.stride as i128) - a.pad as i128;
            let end = (start + a.kernel as i128).min(n as i128 + a.pad as i128);
            let padded = end - start;
            let inside = end.min(n as i128) - start.max(0);
            (padded, inside.max(0))
        };
        // Straight into a pool tensor: its size is checked and a budget
        // applies (a heap `Vec` here aborted on an absurd output size).
        let shape = crate::tensor::Shape::try_for("AvgPool2d", &out)?;
        Tensor::try_from_fill(shape, |d| {
            for (i, row) in d.chunks_exact_mut(out[1].max(1)).enumerate() {
                let (ph, ih) = extent(self.axes[0], i, size[0]);
                for (j, o) in row.iter_mut().enumerate() {
                    let (pw, iw) = extent(self.axes[1], j, size[1]);
                    let v = match self.divisor_override {
                        Some(v) => v as i128,
                        None if self.count_include_pad => ph * pw,
                        None => ih * iw,
                    };
                    // An empty window sums to 0; PyTorch outputs 0 there.
                    *o = if ih * iw == 0 { 1.0 } else { v as f32 };
                }
            }
        })
    }
}

impl Module for AvgPool2d {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = "AvgPool2d";
        let (xb, was_batched) = batched(op, x)?;
        let out = out_sizes(op, &xb, &self.axes, self.ceil_mode)?;
        let (h, w) = (xb.dims()[2], xb.dims()[3]);
        // Pad by `pad` and, in ceil mode, enough zeros for the last window.
        let after = |a: Axis, o: usize, size: usize| {
            let need = (o - 1).saturating_mul(a.stride).saturating_add(a.kernel);
            need.saturating_sub(size.saturating_add(a.pad))
        };
        let (bh, bw) = (
            after(self.axes[0], out[0], h),
            after(self.axes[1], out[1], w),
        );
        let (ph, pw) = (self.axes[0].pad, self.axes[1].pad);
        let xp = if (ph | pw | bh | bw) != 0 {
            // A padding past isize::MAX cannot be allocated anyway.
            let i = |v: usize| {
                isize::try_from(v).map_err(|_| Error::InvalidArgument {
                    op,
                    detail: "the padding is too large",
                })
            };
            xb.try_pad(&[(i(pw)?, i(bw)?), (i(ph)?, i(bh)?)], 0.0)?
        } else {
            xb
        };
        // The window sums are separable: first the sums over `kernel_h`
        // rows for every padded column, then over `kernel_w` of those (a
        // large kernel over a small, heavily padded input took seconds
        // summed as a whole window), each in at most about `√kernel`
        // additions per position once windows overlap heavily.
        let rows = window_sums(&xp, 2, self.axes[0].kernel, self.axes[0].stride, out[0])?;
        let sum = window_sums(&rows, 3, self.axes[1].kernel, self.axes[1].stride, out[1])?;
        // An empty batch or channel dimension: nothing to divide (the
        // spatial output may still be huge).
        let y = if sum.numel() == 0 {
            sum
        } else {
            sum.try_div_tensor(&self.divisors([h, w], out)?)?
        };
        if was_batched {
            Ok(y)
        } else {
            y.try_squeeze_dim(0)
        }
    }
    /// Batched inputs `[N, C, H, W]` only; see [`Planner::window_average`].
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let [oh, ow] = plan_out_sizes("AvgPool2d", x, &self.axes, self.ceil_mode)?;
        let (h, w) = (x.dims()[2], x.dims()[3]);
        // The padded size as the forward pads: `pad` before, and after it
        // enough for the last window.
        let padded = |a: Axis, o: usize, size: usize| {
            let need = (o - 1).saturating_mul(a.stride).saturating_add(a.kernel);
            let after = need.saturating_sub(size.saturating_add(a.pad));
            size.saturating_add(a.pad).saturating_add(after)
        };
        p.window_average(
            x,
            [padded(self.axes[0], oh, h), padded(self.axes[1], ow, w)],
            [oh, ow],
            [self.axes[0].kernel, self.axes[1].kernel],
        )
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}

// ------------------------------------------------------------------ adaptive

/// Adaptive 2-D average pooling to a fixed output size, as
/// `torch.nn.AdaptiveAvgPool2d((out_h, out_w))`: input `[N, C, H, W]` (or
/// `[C, H, W]`), output `[N, C, out_h, out_w]`; output row `i` averages input
/// rows `floor(i H / out_h)` up to `ceil((i + 1) H / out_h)` (exclusive), and
/// the same for columns. No parameters. Errors name `AdaptiveAvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    out: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pooling to `[out_h, out_w]`.
    ///
    /// # Panics
    /// If a size is 0; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(out_h: usize, out_w: usize) -> AdaptiveAvgPool2d {
        unwrap(Self::try_new(out_h, out_w))
    }

    /// Pooling to `[out_h, out_w]`, or `InvalidArgument` if a size is 0.
    pub fn try_new(out_h: usize, out_w: usize) -> Result<AdaptiveAvgPool2d> {
        if out_h == 0 || out_w == 0 {
            return Err(Error::InvalidArgument {
                op: "AdaptiveAvgPool2d",
                detail: "the output size must be positive",
            });
        }
        Ok(AdaptiveAvgPool2d {
            out: [out_h, out_w],
        })
    }

    /// The output size `[out_h, out_w]`.
    pub fn output_size(&self) -> [usize; 2] {
        self.out
    }
}

/// `[out, n]`: row `i` averages `floor(i n / out) .. ceil((i + 1) n / out)`.
/// The shape check comes first, so `out * n` (and every `(i + 1) * n`) fits.
fn averaging_matrix(out: usize, n: usize) -> Result<Tensor> {
    let shape = Shape::try_for("AdaptiveAvgPool2d", &[out, n])?;
    Tensor::try_from_fill(shape, |m| {
        m.fill(0.0);
        for i in 0..out {
            let start = i * n / out;
            let end = ((i + 1) * n).div_ceil(out);
            let v = 1.0 / (end - start) as f32;
            m[i * n + start..i * n + end].fill(v);
        }
    })
}

impl Module for AdaptiveAvgPool2d {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = "AdaptiveAvgPool2d";
        let (xb, was_batched) = batched(op, x)?;
        let (h, w) = (xb.dims()[2], xb.dims()[3]);
        if h == 0 || w == 0 {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().into(),
                rhs: crate::error::Dims::default(),
                detail: "the input must have non-zero height and width",
            });
        }
        let ph = averaging_matrix(self.out[0], h)?;
        let pw = averaging_matrix(self.out[1], w)?;
        let y = ph.try_matmul(&xb)?.try_matmul(&pw.try_t()?)?;
        if was_batched {
            Ok(y)
        } else {
            y.try_squeeze_dim(0)
        }
    }
    /// Batched inputs `[N, C, H, W]` only; see
    /// [`Planner::separable_average`].
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        if x.dims().len() != 4 || x.dims()[2] == 0 || x.dims()[3] == 0 {
            return Err(plan_needs_batch("AdaptiveAvgPool2d"));
        }
        p.separable_average(x, self.out)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}
