//! Parameter initialisers, as `torch.nn.init`. They draw from the global
//! generator ([`crate::manual_seed`]) and write in place under no-grad, keeping
//! the tensor's identity.

use crate::error::{Error, Result};
use crate::tensor::{Tensor, with_global_rng};

/// `(fan_in, fan_out)` of a weight, as PyTorch computes them: dims 1 and 0
/// times the receptive field (the product of dims 2..).
pub fn fan_in_out(t: &Tensor) -> Result<(usize, usize)> {
    if t.rank() < 2 {
        return Err(Error::InvalidArgument {
            op: "fan_in_out",
            detail: "fan in and fan out need a tensor of rank >= 2",
        });
    }
    let receptive: usize = t.dims()[2..].iter().product();
    Ok((t.dims()[1] * receptive, t.dims()[0] * receptive))
}

fn fill_with(t: &mut Tensor, mut f: impl FnMut(&mut crate::Generator) -> f32) -> Result<()> {
    crate::autograd::no_grad(|| {
        let data = t.try_data_mut()?;
        with_global_rng(|g| {
            for v in data.iter_mut() {
                *v = f(g);
            }
        });
        Ok(())
    })
}

/// Fills with samples of `U(low, high)`.
pub fn uniform_(t: &mut Tensor, low: f32, high: f32) -> Result<()> {
    fill_with(t, |g| low + (high - low) * g.uniform())
}

/// Fills with samples of `N(mean, std²)`.
pub fn normal_(t: &mut Tensor, mean: f32, std: f32) -> Result<()> {
    let mut spare: Option<f32> = None;
    fill_with(t, |g| {
        let z = match spare.take() {
            Some(z) => z,
            None => {
                let (a, b) = g.normal_pair();
                spare = Some(b);
                a
            }
        };
        mean + std * z
    })
}

/// Fills with a constant.
pub fn constant_(t: &mut Tensor, value: f32) -> Result<()> {
    crate::autograd::no_grad(|| t.try_fill(value))
}

/// `kaiming_uniform_` with PyTorch's defaults for layers (`a = sqrt(5)`,
/// fan-in, leaky-ReLU gain): `U(-b, b)` with `b = 1 / sqrt(fan_in)`. This is
/// how `nn.Linear` and `nn.Conv*d` initialise their weights.
pub fn kaiming_uniform_default_(t: &mut Tensor) -> Result<()> {
    let (fan_in, _) = fan_in_out(t)?;
    let bound = if fan_in > 0 {
        1.0 / crate::math::sqrtf(fan_in as f32)
    } else {
        0.0
    };
    uniform_(t, -bound, bound)
}

/// `kaiming_uniform_(a, mode='fan_in', nonlinearity='leaky_relu')`:
/// `U(-b, b)`, `b = gain * sqrt(3 / fan_in)`, `gain = sqrt(2 / (1 + a²))`.
pub fn kaiming_uniform_(t: &mut Tensor, a: f32) -> Result<()> {
    let (fan_in, _) = fan_in_out(t)?;
    let gain = crate::math::sqrtf(2.0 / (1.0 + a * a));
    let bound = if fan_in > 0 {
        gain * crate::math::sqrtf(3.0 / fan_in as f32)
    } else {
        0.0
    };
    uniform_(t, -bound, bound)
}

/// `xavier_uniform_(gain)`: `U(-b, b)`, `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform_(t: &mut Tensor, gain: f32) -> Result<()> {
    let (fan_in, fan_out) = fan_in_out(t)?;
    let bound = gain * crate::math::sqrtf(6.0 / (fan_in + fan_out).max(1) as f32);
    uniform_(t, -bound, bound)
}

/// The bias initialiser of `nn.Linear` / `nn.Conv*d`: `U(-b, b)` with
/// `b = 1 / sqrt(fan_in)`.
pub fn bias_uniform_(bias: &mut Tensor, fan_in: usize) -> Result<()> {
    let bound = if fan_in > 0 {
        1.0 / crate::math::sqrtf(fan_in as f32)
    } else {
        0.0
    };
    uniform_(bias, -bound, bound)
}
