//! Comparisons giving 0/1 masks, with a tensor or a scalar operand; not
//! differentiable.

use crate::error::{Result, unwrap};
use crate::kernels::table as k;
use crate::ops::{map_binary, map_unary};
use crate::tensor::Tensor;

/// Generates a tensor comparison and its scalar form, each with `try_` and
/// plain variants, returning 0/1 masks.
macro_rules! comparison {
    ($name:ident, $try_name:ident, $sname:ident, $try_sname:ident, $op:literal,
     $what:literal, $table:expr) => {
        #[doc = concat!("1 where `self ", $what, " other`, else 0, broadcasting; a mask that does not require grad.")]
        ///
        /// # Panics
        #[doc = concat!("If the shapes do not broadcast or memory runs out; see [`", stringify!($try_name), "`](Self::", stringify!($try_name), ").")]
        #[track_caller]
        pub fn $name(&self, other: &Tensor) -> Tensor {
            unwrap(self.$try_name(other))
        }

        #[doc = concat!("[`", stringify!($name), "`](Self::", stringify!($name), "), or `ShapeMismatch` (op `", $op, "`).")]
        pub fn $try_name(&self, other: &Tensor) -> Result<Tensor> {
            map_binary($op, self, other, $table)
        }

        #[doc = concat!("1 where `self ", $what, " s`, else 0; a mask that does not require grad.")]
        ///
        /// # Panics
        #[doc = concat!("If memory runs out; see [`", stringify!($try_sname), "`](Self::", stringify!($try_sname), ").")]
        #[track_caller]
        pub fn $sname(&self, s: f32) -> Tensor {
            unwrap(self.$try_sname(s))
        }

        #[doc = concat!("[`", stringify!($sname), "`](Self::", stringify!($sname), "), or `OutOfMemory`.")]
        pub fn $try_sname(&self, s: f32) -> Result<Tensor> {
            map_unary(self, |a, o| ($table)(a, &[s], o))
        }
    };
}

/// Comparisons follow IEEE: every comparison with NaN is false except `ne`.
impl Tensor {
    comparison!(eq, try_eq, eq_scalar, try_eq_scalar, "eq", "==", k().eq.map);
    comparison!(ne, try_ne, ne_scalar, try_ne_scalar, "ne", "!=", k().ne.map);
    comparison!(lt, try_lt, lt_scalar, try_lt_scalar, "lt", "<", k().lt.map);
    comparison!(le, try_le, le_scalar, try_le_scalar, "le", "<=", k().le.map);
    comparison!(gt, try_gt, gt_scalar, try_gt_scalar, "gt", ">", k().gt.map);
    comparison!(ge, try_ge, ge_scalar, try_ge_scalar, "ge", ">=", k().ge.map);
}
