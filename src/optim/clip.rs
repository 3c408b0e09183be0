//! Gradient clipping (`torch.nn.utils.clip_grad_norm_`, `clip_grad_value_`).
//!
//! Each function takes parameter handles (e.g. `model.parameters()`): clones
//! share the gradient slot, so clipping through them changes the gradients
//! the optimizer will see. Parameters without a gradient are ignored.

use super::non_negative;
use crate::error::{Error, Result};
use alloc::vec::Vec;

use crate::tensor::Tensor;

/// The norm of `values` of order `p` (`f32::INFINITY`: largest magnitude),
/// accumulated in f64, NaN if any value is NaN.
fn norm_of(values: impl Iterator<Item = f32>, p: f32) -> f32 {
    if p == f32::INFINITY {
        let mut m = 0.0f32;
        for v in values {
            let a = v.abs();
            if a.is_nan() {
                return f32::NAN;
            }
            if a > m {
                m = a;
            }
        }
        return m;
    }
    let mut acc = 0.0f64;
    if p == 1.0 {
        for v in values {
            acc += v.abs() as f64;
        }
        acc as f32
    } else if p == 2.0 {
        for v in values {
            acc += (v as f64) * (v as f64);
        }
        crate::math::sqrt(acc) as f32
    } else {
        let p = p as f64;
        for v in values {
            acc += libm::pow((v as f64).abs(), p);
        }
        libm::pow(acc, 1.0 / p) as f32
    }
}

fn check_norm_type(op: &'static str, norm_type: f32) -> Result<()> {
    if norm_type > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            detail: "norm_type must be > 0 (e.g. 1, 2) or f32::INFINITY",
        })
    }
}

/// The total norm of the gradients of `params`, of order `norm_type` (`2.0`,
/// `1.0`, `f32::INFINITY`, or any p > 0): the norm of the per-parameter
/// gradient norms, as PyTorch's `get_total_norm`. 0 when no parameter has a
/// gradient. Errors on a `norm_type` that is not > 0.
pub fn total_grad_norm(params: &[Tensor], norm_type: f32) -> Result<f32> {
    check_norm_type("total_grad_norm", norm_type)?;
    let norms: alloc::vec::Vec<f32> = params
        .iter()
        .filter_map(Tensor::grad)
        .map(|g| norm_of(g.values(), norm_type))
        .collect();
    if norms.is_empty() {
        return Ok(0.0);
    }
    Ok(norm_of(norms.into_iter(), norm_type))
}

/// Scales the gradients of `params` by `min(max_norm / (total_norm + 1e-6),
/// 1)` (computed in f32 as PyTorch: `(1 / (total_norm + 1e-6)) * max_norm`);
/// a NaN coefficient makes the gradients NaN, as in PyTorch.
///
/// All or nothing: if memory runs out (copying a gradient whose buffer is
/// shared), returns [`Error::OutOfMemory`] with every gradient unchanged.
pub fn clip_grads_with_norm(params: &[Tensor], max_norm: f32, total_norm: f32) -> Result<()> {
    let coef = (1.0f32 / (total_norm + 1e-6f32)) * max_norm;
    let coef = if coef > 1.0 { 1.0 } else { coef };
    if coef == 1.0 {
        return Ok(()); // g * 1 == g for every f32
    }
    update_grads(params, |g| {
        for x in g {
            *x *= coef;
        }
    })
}

/// Applies `f` to every gradient of `params`, all or none: first takes each
/// gradient out and makes it writable in place (copying a shared one), and on
/// an error puts them all back unchanged; then runs `f`, which cannot fail.
fn update_grads(params: &[Tensor], mut f: impl FnMut(&mut [f32])) -> Result<()> {
    let _no_grad = crate::autograd::NoGradGuard::new();
    let mut taken: Vec<(&Tensor, Tensor)> = Vec::new();
    for p in params {
        if let Some(mut g) = p.take_grad() {
            let staged = g.try_data_mut().map(|_| ());
            taken.push((p, g));
            if let Err(e) = staged {
                for (p, g) in taken {
                    p.put_grad(Some(g));
                }
                return Err(e);
            }
        }
    }
    for (p, mut g) in taken {
        // Writable since staged above: no copy, no error.
        if let Ok(d) = g.try_data_mut() {
            f(d);
        }
        p.put_grad(Some(g));
    }
    Ok(())
}

/// Clips the gradients of `params` so that their total norm of order
/// `norm_type` is at most `max_norm` (`torch.nn.utils.clip_grad_norm_`):
/// computes [`total_grad_norm`], scales every gradient in place by
/// `min(max_norm / (total + 1e-6), 1)` ([`clip_grads_with_norm`]) and returns
/// the total norm from before clipping. A non-finite norm is returned (and
/// scales the gradients to NaN) rather than reported as an error; check the
/// result, or call the two steps separately, to stop on it.
///
/// Errors on a `norm_type` that is not > 0 (`f32::INFINITY` is allowed),
/// and on running out of memory, in both cases with every gradient
/// unchanged.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f32, norm_type: f32) -> Result<f32> {
    let total = total_grad_norm(params, norm_type)?;
    clip_grads_with_norm(params, max_norm, total)?;
    Ok(total)
}

/// Clamps every gradient element of `params` into `[-clip_value,
/// clip_value]` in place (`torch.nn.utils.clip_grad_value_`; NaN stays NaN).
/// Errors if `clip_value` is negative or NaN, and on running out of memory
/// (copying a shared gradient), in both cases with every gradient unchanged.
pub fn clip_grad_value(params: &[Tensor], clip_value: f32) -> Result<()> {
    if !non_negative(clip_value) {
        return Err(Error::InvalidArgument {
            op: "clip_grad_value",
            detail: "clip_value must be >= 0",
        });
    }
    update_grads(params, |d| {
        for x in d {
            if *x < -clip_value {
                *x = -clip_value;
            } else if *x > clip_value {
                *x = clip_value;
            }
        }
    })
}
