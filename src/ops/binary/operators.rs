//! The operator traits: `+ - * /` between tensors (owned or borrowed) and
//! with `f32` on either side, `+= -= *= /=`, and unary `-`.

use crate::error::unwrap;
use crate::tensor::Tensor;

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident, $rscalar:expr) => {
        impl core::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            #[inline]
            fn $method(self, rhs: &Tensor) -> Tensor {
                self.$tensor_fn(rhs)
            }
        }
        impl core::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                self.$tensor_fn(&rhs)
            }
        }
        impl core::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                (&self).$tensor_fn(rhs)
            }
        }
        impl core::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                (&self).$tensor_fn(&rhs)
            }
        }
        impl core::ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: f32) -> Tensor {
                self.$scalar_fn(rhs)
            }
        }
        impl core::ops::$trait<f32> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: f32) -> Tensor {
                (&self).$scalar_fn(rhs)
            }
        }
        impl core::ops::$trait<&Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                let f: fn(f32, &Tensor) -> Tensor = $rscalar;
                f(self, rhs)
            }
        }
        impl core::ops::$trait<Tensor> for f32 {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                let f: fn(f32, &Tensor) -> Tensor = $rscalar;
                f(self, &rhs)
            }
        }
    };
}

binary_operator!(Add, add, add_tensor, add_scalar, |s, t| t.add_scalar(s));
binary_operator!(Sub, sub, sub_tensor, sub_scalar, |s, t| t.rsub_scalar(s));
binary_operator!(Mul, mul, mul_tensor, mul_scalar, |s, t| t.mul_scalar(s));
binary_operator!(Div, div, div_tensor, div_scalar, |s, t| t.rdiv_scalar(s));

macro_rules! assign_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident) => {
        impl core::ops::$trait<&Tensor> for Tensor {
            /// In place, keeping the tensor's identity; panics on a shape error.
            #[track_caller]
            fn $method(&mut self, rhs: &Tensor) {
                unwrap(self.$tensor_fn(rhs))
            }
        }
        impl core::ops::$trait<Tensor> for Tensor {
            /// In place, keeping the tensor's identity; panics on a shape error.
            #[track_caller]
            fn $method(&mut self, rhs: Tensor) {
                unwrap(self.$tensor_fn(&rhs))
            }
        }
        impl core::ops::$trait<f32> for Tensor {
            /// In place, keeping the tensor's identity.
            #[track_caller]
            fn $method(&mut self, rhs: f32) {
                unwrap(self.$scalar_fn(rhs))
            }
        }
    };
}

assign_operator!(AddAssign, add_assign, try_add_assign, try_add_assign_scalar);
assign_operator!(SubAssign, sub_assign, try_sub_assign, try_sub_assign_scalar);
assign_operator!(MulAssign, mul_assign, try_mul_assign, try_mul_assign_scalar);
assign_operator!(DivAssign, div_assign, try_div_assign, try_div_assign_scalar);

impl core::ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl core::ops::Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
