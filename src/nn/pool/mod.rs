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

mod adaptive;
mod avg;
mod max;

pub use adaptive::AdaptiveAvgPool2d;
pub use avg::{AvgPool2d, AvgPool2dOptions};
pub use max::{MaxPool2d, MaxPool2dOptions};

use super::plan::PlanTensor;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

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
