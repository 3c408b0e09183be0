//! Average pooling: [`AvgPool2d`] and its options.

#[cfg(doc)]
use super::MaxPool2dOptions;
use super::{Axis, batched, check_axes, out_sizes, plan_out_sizes};
use crate::error::{Error, Result, unwrap};
use crate::nn::Module;
use crate::nn::conv::Spatial;
use crate::nn::plan::{PlanTensor, Planner};
use crate::nn::window::window_sums;
use crate::tensor::Tensor;

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
