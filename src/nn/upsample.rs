//! `Upsample` with `mode='nearest'`, as `torch.nn.Upsample`.

use super::Module;
use crate::error::{Error, Result, unwrap};
use crate::tensor::{Shape, Tensor};

/// How [`Upsample`] chooses the output size.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// Fixed spatial sizes.
    Size([usize; 2]),
    /// Input sizes times these factors (rounded down).
    Scale([f64; 2]),
}

/// Nearest-neighbour resizing, as `torch.nn.Upsample(size=..)` or
/// `torch.nn.Upsample(scale_factor=..)` with `mode='nearest'`: input `[N, C,
/// L]` (one spatial dimension) or `[N, C, H, W]` (two), output `[N, C, ..]`
/// with each spatial size replaced by the target size (or `floor(size *
/// scale)`). Output position `i` takes input position `min(floor(i * s),
/// in - 1)`, `s = 1 / scale_factor` when a scale was given and `in / out`
/// otherwise (in f32, as PyTorch). The gradient adds each output's
/// gradient to the input position it came from. No parameters. Other modes
/// (bilinear, ...) are not implemented.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Upsample {
    target: Target,
}

impl Upsample {
    /// Resizing to `[h, w]` (inputs with one spatial dimension use `w`).
    ///
    /// # Panics
    /// If a size is 0; see [`try_with_size`](Self::try_with_size).
    #[track_caller]
    pub fn with_size(h: usize, w: usize) -> Upsample {
        unwrap(Self::try_with_size(h, w))
    }

    /// Resizing to `[h, w]` (1-D inputs use `w`), or `InvalidArgument`
    /// naming `Upsample` if a size is 0.
    pub fn try_with_size(h: usize, w: usize) -> Result<Upsample> {
        if h == 0 || w == 0 {
            return Err(Error::InvalidArgument {
                op: "Upsample",
                detail: "the output size must be positive",
            });
        }
        Ok(Upsample {
            target: Target::Size([h, w]),
        })
    }

    /// Resizing by `[scale_h, scale_w]` (1-D inputs use `scale_w`).
    ///
    /// # Panics
    /// If a factor is not finite and positive; see
    /// [`try_with_scale`](Self::try_with_scale).
    #[track_caller]
    pub fn with_scale(scale_h: f64, scale_w: f64) -> Upsample {
        unwrap(Self::try_with_scale(scale_h, scale_w))
    }

    /// Resizing by `[scale_h, scale_w]`, or `InvalidArgument` naming
    /// `Upsample` if a factor is not finite and positive.
    pub fn try_with_scale(scale_h: f64, scale_w: f64) -> Result<Upsample> {
        if !(scale_h.is_finite() && scale_h > 0.0 && scale_w.is_finite() && scale_w > 0.0) {
            return Err(Error::InvalidArgument {
                op: "Upsample",
                detail: "scale factors must be finite and positive",
            });
        }
        Ok(Upsample {
            target: Target::Scale([scale_h, scale_w]),
        })
    }
}

/// The source position of every output position (PyTorch's `nearest_idx`),
/// as an index tensor from the pool (so a memory budget applies to it), or
/// `OutOfMemory`.
fn sources(input: usize, output: usize, scale: Option<f64>) -> Result<Tensor> {
    let shape = Shape::try_for("Upsample", &[output])?;
    Tensor::try_from_fill(shape, |v| {
        for (i, o) in v.iter_mut().enumerate() {
            let src = if output == input {
                i
            } else if output == 2 * input {
                i >> 1
            } else {
                let s = match scale {
                    Some(f) => (1.0 / f) as f32,
                    None => input as f32 / output as f32,
                };
                (libm::floorf(i as f32 * s) as usize).min(input - 1)
            };
            *o = src as f32;
        }
    })
}

impl Module for Upsample {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let op = "Upsample";
        let spatial = match x.rank() {
            3 => 1,
            4 => 2,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: x.shape().into(),
                    rhs: crate::error::Dims::default(),
                    detail: "expects an input [N, C, L] or [N, C, H, W]",
                });
            }
        };
        // Every output size first (a float-to-int cast saturates), and the
        // whole output shape checked before anything is allocated.
        let mut sizes = [(0usize, None); 2];
        let mut out_dims = [0usize; 4];
        out_dims[..x.rank()].copy_from_slice(x.dims());
        for i in 0..spatial {
            let (input, j) = (x.dims()[2 + i], 2 - spatial + i);
            sizes[i] = match self.target {
                Target::Size(s) => (s[j], None),
                Target::Scale(f) => (libm::floor(input as f64 * f[j]) as usize, Some(f[j])),
            };
            out_dims[2 + i] = sizes[i].0;
        }
        Shape::try_for(op, &out_dims[..x.rank()])?;
        let mut y = x.clone();
        for (i, &(output, scale)) in sizes[..spatial].iter().enumerate() {
            let d = 2 + i;
            let input = x.dims()[d];
            if output == 0 || input == 0 {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: x.shape().into(),
                    rhs: crate::error::Dims::default(),
                    detail: "input and output sizes must be positive",
                });
            }
            if output == input {
                continue; // PyTorch's nearest_idx: the identity
            }
            let idx = sources(input, output, scale)?;
            y = y.try_index_select(d, &idx)?;
        }
        Ok(y)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}
