//! Convolutions: [`Conv1d`] and [`Conv2d`], as `torch.nn.Conv1d/2d`.
//!
//! Both run through the matrix product (im2col): the zero-padded input is
//! viewed, without copying, as `[N, C, k.., out..]` windows (one strided
//! view: the kernel offsets step by the dilation, the output positions by
//! the stride), copied once into a contiguous column matrix, and multiplied
//! by the weight seen as `[groups, out/groups, C/groups * prod(k)]`. Every
//! step is a recorded op, so the gradients with respect to the input, the
//! weight and the bias come from autograd: the column copy's gradient is
//! scattered back through the window view (summing overlapping windows), and
//! the padding's gradient is cut off.

use alloc::vec::Vec;

use super::plan::{ConvGeometry, PlanTensor, Planner};
use super::{Module, init, module::join};
use crate::error::{Error, Result, unwrap};
use crate::tensor::Tensor;

/// A per-dimension size argument: one number for every spatial dimension,
/// or one number per dimension (`[h, w]` or `(h, w)` for 2-D layers).
pub trait Spatial<const D: usize> {
    /// The size for each of the `D` spatial dimensions.
    fn to_array(self) -> [usize; D];
}

impl<const D: usize> Spatial<D> for usize {
    fn to_array(self) -> [usize; D] {
        [self; D]
    }
}

impl<const D: usize> Spatial<D> for [usize; D] {
    fn to_array(self) -> [usize; D] {
        self
    }
}

impl Spatial<2> for (usize, usize) {
    fn to_array(self) -> [usize; 2] {
        [self.0, self.1]
    }
}

/// Options of [`Conv1d`] (`D = 1`) and [`Conv2d`] (`D = 2`), with PyTorch's
/// defaults: stride 1, zero padding 0, dilation 1, one group, with a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions<const D: usize> {
    /// Step between output positions, per spatial dimension.
    pub stride: [usize; D],
    /// Zeros added on both sides of each spatial dimension.
    pub padding: [usize; D],
    /// Spacing between kernel taps.
    pub dilation: [usize; D],
    /// Channel groups: input and output channels are split into `groups`
    /// blocks, block `g` of the output seeing only block `g` of the input.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl<const D: usize> Default for ConvOptions<D> {
    fn default() -> Self {
        ConvOptions {
            stride: [1; D],
            padding: [0; D],
            dilation: [1; D],
            groups: 1,
            bias: true,
        }
    }
}

impl<const D: usize> ConvOptions<D> {
    /// Sets the stride.
    pub fn stride(mut self, s: impl Spatial<D>) -> Self {
        self.stride = s.to_array();
        self
    }
    /// Sets the zero padding.
    pub fn padding(mut self, p: impl Spatial<D>) -> Self {
        self.padding = p.to_array();
        self
    }
    /// Sets the dilation.
    pub fn dilation(mut self, d: impl Spatial<D>) -> Self {
        self.dilation = d.to_array();
        self
    }
    /// Sets the number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// With (`true`) or without a bias.
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
}

/// The layer shared by [`Conv1d`] and [`Conv2d`].
#[derive(Clone, Debug)]
struct ConvNd<const D: usize> {
    weight: Tensor,
    bias: Option<Tensor>,
    opts: ConvOptions<D>,
}

impl<const D: usize> ConvNd<D> {
    fn try_new(
        op: &'static str,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; D],
        opts: ConvOptions<D>,
    ) -> Result<Self> {
        let bad = |detail| Err(Error::InvalidArgument { op, detail });
        if opts.groups == 0 {
            return bad("groups must be a positive integer");
        }
        if !in_channels.is_multiple_of(opts.groups) {
            return bad("in_channels must be divisible by groups");
        }
        if !out_channels.is_multiple_of(opts.groups) {
            return bad("out_channels must be divisible by groups");
        }
        if kernel.contains(&0) {
            return bad("kernel_size must be positive");
        }
        if opts.stride.contains(&0) {
            return bad("stride must be positive");
        }
        if opts.dilation.contains(&0) {
            return bad("dilation must be positive");
        }
        let mut dims: Vec<usize> = Vec::with_capacity(D + 2);
        dims.push(out_channels);
        dims.push(in_channels / opts.groups);
        dims.extend_from_slice(&kernel);
        let mut weight = Tensor::try_zeros(&dims)?;
        init::kaiming_uniform_default_(&mut weight)?;
        let bias = if opts.bias {
            let mut b = Tensor::try_zeros([out_channels])?;
            let fan_in = in_channels / opts.groups * kernel.iter().product::<usize>();
            init::bias_uniform_(&mut b, fan_in)?;
            Some(b.with_requires_grad())
        } else {
            None
        };
        Ok(ConvNd {
            weight: weight.with_requires_grad(),
            bias,
            opts,
        })
    }

    fn forward(&self, op: &'static str, x: &Tensor) -> Result<Tensor> {
        let batched = x.rank() == D + 2;
        if !batched && x.rank() != D + 1 {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().into(),
                rhs: self.weight.shape().into(),
                detail: if D == 1 {
                    "expects an input [N, C, L] or [C, L] (weight [out, in/groups, k])"
                } else {
                    "expects an input [N, C, H, W] or [C, H, W] (weight [out, in/groups, kh, kw])"
                },
            });
        }
        let x = if batched {
            x.clone()
        } else {
            x.try_unsqueeze(0)?
        };
        let y = conv_nd(
            op,
            &x,
            &self.weight,
            self.bias.as_ref(),
            &self.opts.stride,
            &self.opts.padding,
            &self.opts.dilation,
            self.opts.groups,
        )?;
        if batched { Ok(y) } else { y.try_squeeze_dim(0) }
    }
}

/// `x [N, C, in..]` convolved with `w [O, C/groups, k..]` (+ `b [O]`); the
/// shared body of every convolution (see the module docs).
#[allow(clippy::too_many_arguments)]
fn conv_nd(
    op: &'static str,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Result<Tensor> {
    let d = stride.len();
    let mismatch = |detail| Error::ShapeMismatch {
        op,
        lhs: x.shape().into(),
        rhs: w.shape().into(),
        detail,
    };
    let (n, c) = (x.dims()[0], x.dims()[1]);
    let out_ch = w.dims()[0];
    if w.rank() != d + 2 || !out_ch.is_multiple_of(groups) {
        return Err(mismatch("the weight must be [out, in/groups, k..]"));
    }
    if c != w.dims()[1] * groups {
        return Err(mismatch(
            "the input's channel dimension must equal the weight's dimension 1 times groups",
        ));
    }
    if let Some(b) = b
        && b.dims() != [out_ch]
    {
        return Err(Error::ShapeMismatch {
            op,
            lhs: w.shape().into(),
            rhs: b.shape().into(),
            detail: "the bias must be [out_channels]",
        });
    }
    let kernel = &w.dims()[2..];
    // Output sizes; the dilated kernel must fit the padded input.
    let mut out = [0usize; 2];
    for i in 0..d {
        if kernel[i] == 0 {
            return Err(mismatch("the kernel has a zero-sized dimension"));
        }
        // Checked: a huge padding or dilation must not wrap into a small size.
        let padded = padding[i]
            .checked_mul(2)
            .and_then(|p| p.checked_add(x.dims()[2 + i]))
            .filter(|&p| p <= isize::MAX as usize)
            .ok_or(Error::InvalidArgument {
                op,
                detail: "the padded input size overflows",
            })?;
        let span = dilation[i]
            .checked_mul(kernel[i] - 1)
            .and_then(|s| s.checked_add(1));
        if span.is_none_or(|s| s > padded) {
            return Err(mismatch(
                "the (dilated) kernel is larger than the padded input",
            ));
        }
        out[i] = (padded - span.unwrap_or(padded)) / stride[i] + 1;
    }
    let out = &out[..d];
    let xp = if padding.iter().any(|&p| p > 0) {
        let pads: Vec<(isize, isize)> = padding
            .iter()
            .rev()
            .map(|&p| (p as isize, p as isize))
            .collect();
        x.try_pad(&pads, 0.0)?
    } else {
        x.clone()
    };
    // The windows as one view [N, C, k.., out..] of the padded input.
    let xs = xp.strides();
    let mut size: Vec<usize> = Vec::with_capacity(2 + 2 * d);
    let mut strides: Vec<usize> = Vec::with_capacity(2 + 2 * d);
    size.extend_from_slice(&[n, c]);
    strides.extend_from_slice(&[xs[0], xs[1]]);
    // A step is only used when its dimension has two or more entries; then
    // it stays inside the padded input, so the products cannot overflow.
    let step = |n: usize, by: usize, base: usize| if n > 1 { by * base } else { 0 };
    for i in 0..d {
        size.push(kernel[i]);
        strides.push(step(kernel[i], dilation[i], xs[2 + i]));
    }
    for i in 0..d {
        size.push(out[i]);
        strides.push(step(out[i], stride[i], xs[2 + i]));
    }
    let windows = xp.try_as_strided(&size, &strides, xp.offset())?;
    let taps = c / groups * kernel.iter().product::<usize>();
    let positions: usize = out.iter().product();
    let cols = windows
        .try_contiguous()?
        .try_reshape([n, groups, taps, positions])?;
    let wm = w.try_reshape([groups, out_ch / groups, taps])?;
    let y = wm.try_matmul(&cols)?; // [N, groups, O/groups, positions]
    let mut shape: Vec<usize> = Vec::with_capacity(2 + d);
    shape.extend_from_slice(&[n, out_ch]);
    shape.extend_from_slice(out);
    let y = y.try_reshape(&shape)?;
    match b {
        Some(b) => {
            let mut bshape: Vec<usize> = Vec::with_capacity(1 + d);
            bshape.push(out_ch);
            bshape.extend(core::iter::repeat_n(1, d));
            y.try_add_tensor(&b.try_reshape(&bshape)?)
        }
        None => Ok(y),
    }
}

macro_rules! conv_layer {
    ($(#[$doc:meta])* $name:ident, $d:literal, $op:literal, $kdoc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            /// The kernel,
            #[doc = $kdoc]
            pub weight: Tensor,
            /// `[out_channels]`, if the layer has a bias.
            pub bias: Option<Tensor>,
            opts: ConvOptions<$d>,
        }

        impl $name {
            /// A layer with PyTorch's default options (stride 1, no padding,
            /// dilation 1, one group, a bias).
            ///
            /// # Panics
            /// If a size is 0; see [`try_new`](Self::try_new).
            #[track_caller]
            pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Spatial<$d>) -> Self {
                unwrap(Self::try_new(in_channels, out_channels, kernel_size, ConvOptions::default()))
            }

            /// A layer with the given options.
            ///
            /// # Panics
            /// On invalid arguments; see [`try_new`](Self::try_new).
            #[track_caller]
            pub fn with_options(
                in_channels: usize,
                out_channels: usize,
                kernel_size: impl Spatial<$d>,
                opts: ConvOptions<$d>,
            ) -> Self {
                unwrap(Self::try_new(in_channels, out_channels, kernel_size, opts))
            }

            /// A layer initialised as PyTorch does (weight and bias from
            /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = in/groups *
            /// prod(kernel)`), or `InvalidArgument` naming the layer if the
            /// channels are not divisible by `groups` or a kernel size,
            /// stride, dilation or `groups` is 0.
            pub fn try_new(
                in_channels: usize,
                out_channels: usize,
                kernel_size: impl Spatial<$d>,
                opts: ConvOptions<$d>,
            ) -> Result<Self> {
                let c = ConvNd::try_new($op, in_channels, out_channels, kernel_size.to_array(), opts)?;
                Ok($name { weight: c.weight, bias: c.bias, opts })
            }

            /// The options (stride, padding, dilation, groups, bias).
            pub fn options(&self) -> ConvOptions<$d> {
                self.opts
            }

            /// Input channels (`weight.dims()[1] * groups`).
            pub fn in_channels(&self) -> usize {
                self.weight.dims()[1] * self.opts.groups
            }

            /// Output channels.
            pub fn out_channels(&self) -> usize {
                self.weight.dims()[0]
            }

            fn as_nd(&self) -> ConvNd<$d> {
                ConvNd { weight: self.weight.clone(), bias: self.bias.clone(), opts: self.opts }
            }
        }

        impl Module for $name {
            fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
                self.as_nd().forward($op, x)
            }

            /// Batched inputs only (`[N, C, ..]`); see [`Planner::conv`].
            fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
                let w = p.param(&self.weight)?;
                let b = match &self.bias {
                    Some(b) => Some(p.param(b)?),
                    None => None,
                };
                let geo = ConvGeometry {
                    stride: &self.opts.stride,
                    padding: &self.opts.padding,
                    dilation: &self.opts.dilation,
                    groups: self.opts.groups,
                };
                let y = p.conv(x, &w, b.as_ref(), geo);
                p.release(w);
                p.release_opt(b);
                y
            }

            fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                f(&join(prefix, "weight"), &self.weight);
                if let Some(b) = &self.bias {
                    f(&join(prefix, "bias"), b);
                }
            }

            fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
                f(&join(prefix, "weight"), &mut self.weight);
                if let Some(b) = &mut self.bias {
                    f(&join(prefix, "bias"), b);
                }
            }
        }
    };
}

conv_layer!(
    /// 1-D convolution over `[N, C, L]` (or unbatched `[C, L]`), as
    /// `torch.nn.Conv1d`: output `[N, out_channels, L_out]` with `L_out =
    /// (L + 2 padding - dilation (k - 1) - 1) / stride + 1`. Parameters
    /// `weight` and `bias` (see [`ConvOptions`] for stride, zero padding,
    /// dilation and groups). Errors name `Conv1d` and the input and weight
    /// shapes.
    Conv1d, 1, "Conv1d", "`[out_channels, in_channels / groups, k]`."
);

conv_layer!(
    /// 2-D convolution over `[N, C, H, W]` (or unbatched `[C, H, W]`), as
    /// `torch.nn.Conv2d`: output `[N, out_channels, H_out, W_out]` with
    /// `H_out = (H + 2 padding_h - dilation_h (kh - 1) - 1) / stride_h + 1`
    /// (and the same for W). Parameters `weight` and `bias` (see
    /// [`ConvOptions`] for stride, zero padding, dilation and groups). Errors
    /// name `Conv2d` and the input and weight shapes.
    Conv2d, 2, "Conv2d", "`[out_channels, in_channels / groups, kh, kw]`."
);
