//! Parameter-free modules: activations, `Flatten`, `Identity`.

use crate::error::Result;
use crate::tensor::Tensor;

use super::Module;
use super::capture::{Act, Activation, Capture};
use super::plan::{PlanTensor, Planner, Saves};

/// The error of a layer [`Module::capture`] does not support.
fn not_captured() -> crate::error::Error {
    crate::error::Error::InvalidArgument {
        op: "capture",
        detail: "an activation other than Relu, Sigmoid, Tanh (or Identity) cannot be captured",
    }
}

macro_rules! stateless {
    ($(#[$doc:meta])* $name:ident, $saves:expr, $cap:expr, |$self_:ident, $x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn try_forward(&self, $x: &Tensor) -> Result<Tensor> {
                let $self_ = self;
                let _ = $self_;
                $body
            }
            fn capture(&self, c: &mut Capture, x: Act) -> Result<Act> {
                let f: fn(&mut Capture, Act) -> Result<Act> = $cap;
                f(c, x)
            }
            fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
                match $saves {
                    Some(s) => p.unary(x, s),
                    None => Ok(p.retain(x)),
                }
            }
            fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
            fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
        }
    };
}

stateless!(
    /// `max(x, 0)` (`torch.nn.ReLU`).
    Relu, Some(Saves::Output), |c, x| c.activation(x, Activation::Relu), |s, x| x.try_relu()
);
stateless!(
    /// Logistic sigmoid (`torch.nn.Sigmoid`).
    Sigmoid, Some(Saves::Output), |c, x| c.activation(x, Activation::Sigmoid), |s, x| x.try_sigmoid()
);
stateless!(
    /// Hyperbolic tangent (`torch.nn.Tanh`).
    Tanh, Some(Saves::Output), |c, x| c.activation(x, Activation::Tanh), |s, x| x.try_tanh()
);
stateless!(
    /// `x * sigmoid(x)` (`torch.nn.SiLU`).
    Silu, Some(Saves::Input), |_, _| Err(not_captured()), |s, x| x.try_silu()
);
stateless!(
    /// Returns its input (`torch.nn.Identity`).
    Identity, None, |_, x| Ok(x), |s, x| Ok(x.clone())
);

/// GELU (`torch.nn.GELU`): exact (erf) by default, or the tanh approximation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gelu {
    /// Use `approximate="tanh"`.
    pub tanh_approximation: bool,
}

impl Module for Gelu {
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        p.unary(x, Saves::Input)
    }
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.tanh_approximation {
            x.try_gelu_tanh()
        } else {
            x.try_gelu()
        }
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}

/// Leaky ReLU (`torch.nn.LeakyReLU`); the default slope is PyTorch's 0.01.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu {
    /// Slope for negative inputs.
    pub negative_slope: f32,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu {
            negative_slope: 0.01,
        }
    }
}

impl Module for LeakyRelu {
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        p.unary(x, Saves::Input)
    }
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        x.try_leaky_relu(self.negative_slope)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}

/// Softplus (`torch.nn.Softplus`); defaults `beta = 1`, `threshold = 20`.
#[derive(Clone, Copy, Debug)]
pub struct Softplus {
    /// Sharpness.
    pub beta: f32,
    /// Above `beta * x > threshold` the function is linear.
    pub threshold: f32,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl Module for Softplus {
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        p.unary(x, Saves::Input)
    }
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        x.try_softplus_with(self.beta, self.threshold)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}

/// Merges dimensions `start..=end` (`torch.nn.Flatten`; defaults 1 and -1, so
/// a batch `[n, c, h, w]` becomes `[n, c*h*w]`).
#[derive(Clone, Copy, Debug)]
pub struct Flatten {
    /// First dimension merged.
    pub start_dim: isize,
    /// Last dimension merged.
    pub end_dim: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }
}

impl Module for Flatten {
    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let t = crate::tensor::Shape::new(x.dims())?;
        let r = t.rank();
        let res = |d: isize| if d < 0 { d + r as isize } else { d };
        let (s, e) = (res(self.start_dim), res(self.end_dim));
        if r == 0 || s < 0 || e < s || e as usize >= r {
            return Err(crate::error::Error::InvalidArgument {
                op: "plan",
                detail: "Flatten: dimensions out of range",
            });
        }
        let (s, e) = (s as usize, e as usize);
        let mut dims: alloc::vec::Vec<usize> = x.dims()[..s].to_vec();
        dims.push(x.dims()[s..=e].iter().product());
        dims.extend_from_slice(&x.dims()[e + 1..]);
        p.reshape(x, &dims)
    }
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        x.try_flatten(self.start_dim, self.end_dim)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}
