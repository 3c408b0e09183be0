//! Binary element-wise operations with NumPy broadcasting, their gradients,
//! and the arithmetic operators (`+ - * /`, unary `-`, and the in-place
//! `+= -= *= /=`, which keep the tensor's identity); `pow_tensor`, `maximum`,
//! `minimum`; comparisons giving 0/1 masks (`eq`, `ne`, `lt`, `le`, `gt`,
//! `ge` and their `_scalar` forms, not differentiable); selection by mask
//! (`where_`, `masked_fill`).
//!
//! Gradients of broadcast operands are summed back to the operand's shape.
//!
//! Files: this one holds what the others share (the `plain!` macro for the
//! panicking forms, and `map_ternary`); `arith` `+ - * /` with a tensor or a
//! scalar, and `neg`; `assign` the in-place forms; `pow_max_min`
//! `pow_tensor`, `maximum` and `minimum`; `compare` the comparison masks;
//! `select` `where_` and `masked_fill`; `operators` the operator traits.

use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::layout::{Walker, broadcast_shapes};

/// Generates the plain (panicking) form of `try_` methods taking a tensor or a
/// scalar operand.
macro_rules! plain {
    ($(#[$doc:meta])* $name:ident, $try_name:ident, $rhs:ty) => {
        $(#[$doc])*
        ///
        /// # Panics
        #[doc = concat!("If the shapes do not broadcast or memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        #[inline]
        pub fn $name(&self, rhs: $rhs) -> Tensor {
            unwrap(self.$try_name(rhs))
        }
    };
}

mod arith;
mod assign;
mod compare;
mod operators;
mod pow_max_min;
mod select;

/// A new contiguous tensor `k(a, b, c)` over the broadcast shape of three
/// operands, walked together with the strided walker (for `where_` and the
/// gradients of `pow_tensor`, `maximum` and `minimum`). A `ShapeMismatch`
/// names `op` and two operand shapes that do not broadcast.
fn map_ternary(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    k: impl Fn(f32, f32, f32) -> f32,
) -> Result<Tensor> {
    let zip3 = |x: &[f32], y: &[f32], z: &[f32], out: &mut [f32]| {
        for (((o, &x), &y), &z) in out.iter_mut().zip(x).zip(y).zip(z) {
            *o = k(x, y, z);
        }
    };
    if a.dims() == b.dims()
        && a.dims() == c.dims()
        && let (Some(x), Some(y), Some(z)) = (a.as_slice(), b.as_slice(), c.as_slice())
    {
        return Tensor::try_from_fill(a.shape().clone(), |out| zip3(x, y, z, out));
    }
    // Pairwise broadcastable shapes broadcast together.
    let ab = broadcast_shapes(op, a.shape(), b.shape())?;
    broadcast_shapes(op, a.shape(), c.shape())?;
    broadcast_shapes(op, b.shape(), c.shape())?;
    let shape = broadcast_shapes(op, &ab, c.shape())?;
    let la = a.layout.broadcast_to(op, &shape)?;
    let lb = b.layout.broadcast_to(op, &shape)?;
    let lc = c.layout.broadcast_to(op, &shape)?;
    let (sa, sb, sc) = (
        a.storage.as_slice(),
        b.storage.as_slice(),
        c.storage.as_slice(),
    );
    Tensor::try_from_fill(shape, |out| {
        let mut pos = 0;
        for run in Walker::new([&la, &lb, &lc]) {
            let (n, [oa, ob, oc]) = (run.len, run.offsets);
            let dst = &mut out[pos..pos + n];
            match run.strides {
                [1, 1, 1] => zip3(&sa[oa..oa + n], &sb[ob..ob + n], &sc[oc..oc + n], dst),
                [ta, tb, tc] => {
                    for (i, o) in dst.iter_mut().enumerate() {
                        *o = k(sa[oa + i * ta], sb[ob + i * tb], sc[oc + i * tc]);
                    }
                }
            }
            pos += n;
        }
    })
}
