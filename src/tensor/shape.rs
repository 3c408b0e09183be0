//! `Shape` (the dimensions of a tensor, inline, no heap) and the argument traits
//! that let shape, dimension and reshape arguments be written naturally:
//! `[2, 3]`, `&[2, 3]`, `vec![2, 3]`, `-1` for the last dimension.

use core::fmt;

use crate::error::{Dims, Error, Result};

pub use crate::limits::{MAX_NUMEL, MAX_RANK};

/// The element count of `dims`, or `InvalidArgument` naming `op` when the
/// product of the dimensions, zeros counted as 1, exceeds [`MAX_NUMEL`]
/// (PyTorch: "numel: integer multiplication overflow"). Counting zeros as 1
/// (stricter than PyTorch for empty tensors) makes the product of *any*
/// subset of a shape's dimensions fit too, so code computing inner and outer
/// extents never overflows.
pub(crate) fn checked_numel(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
        .filter(|&n| n <= MAX_NUMEL)
        .map(|n| if dims.contains(&0) { 0 } else { n })
        .ok_or(Error::InvalidArgument {
            op,
            detail: "numel: integer multiplication overflow (the shape holds more than isize::MAX elements)",
        })
}

/// The dimensions of a tensor, outermost first. Held inline (no allocation).
/// The product of its dimensions, zeros counted as 1, never exceeds
/// [`MAX_NUMEL`]: every constructor checks (PyTorch's "numel: integer
/// multiplication overflow").
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Shape(heapless::Vec<usize, MAX_RANK>);

impl Shape {
    /// The shape of a scalar (rank 0, one element).
    pub const fn scalar() -> Shape {
        Shape(heapless::Vec::new())
    }

    /// A shape from its dimensions; [`Error::RankTooHigh`] past [`MAX_RANK`].
    pub fn new(dims: &[usize]) -> Result<Shape> {
        Self::try_for("shape", dims)
    }

    /// A shape for `op`: [`Error::RankTooHigh`] past [`MAX_RANK`], and
    /// [`Error::InvalidArgument`] ("numel: integer multiplication overflow")
    /// when the element count exceeds [`MAX_NUMEL`].
    pub(crate) fn try_for(op: &'static str, dims: &[usize]) -> Result<Shape> {
        let s = heapless::Vec::from_slice(dims)
            .map(Shape)
            .map_err(|_| Error::RankTooHigh {
                op,
                rank: dims.len(),
            })?;
        checked_numel(op, dims)?;
        Ok(s)
    }

    /// Dimensions, outermost first.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0). Never
    /// overflows: every `Shape` holds at most [`MAX_NUMEL`] elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Sets dimension `i` to `d`, checking the new element count.
    pub(crate) fn set_dim(&mut self, op: &'static str, i: usize, d: usize) -> Result<()> {
        let old = core::mem::replace(&mut self.0[i], d);
        checked_numel(op, &self.0).inspect_err(|_| self.0[i] = old)?;
        Ok(())
    }

    /// Swaps two dimensions (the element count is unchanged).
    pub(crate) fn swap(&mut self, a: usize, b: usize) {
        self.0.swap(a, b);
    }

    /// The dimensions reordered: result dimension `i` is `self[perm[i]]`
    /// (`perm` a permutation of `0..rank`, so the element count is unchanged).
    pub(crate) fn permuted(&self, perm: &[usize]) -> Shape {
        debug_assert_eq!(perm.len(), self.rank());
        Shape(perm.iter().map(|&p| self.0[p]).collect())
    }

    /// Appends a dimension: `RankTooHigh` past [`MAX_RANK`], `InvalidArgument`
    /// if the element count would exceed [`MAX_NUMEL`].
    pub(crate) fn push(&mut self, d: usize) -> Result<()> {
        let rank = self.rank() + 1;
        self.0
            .push(d)
            .map_err(|_| Error::RankTooHigh { op: "shape", rank })?;
        checked_numel("shape", &self.0).inspect_err(|_| {
            self.0.pop();
        })?;
        Ok(())
    }

    /// Inserts a dimension at `at`; errors as [`push`](Self::push).
    pub(crate) fn insert(&mut self, at: usize, d: usize) -> Result<()> {
        let rank = self.rank() + 1;
        self.0
            .insert(at, d)
            .map_err(|_| Error::RankTooHigh { op: "shape", rank })?;
        checked_numel("shape", &self.0).inspect_err(|_| {
            self.0.remove(at);
        })?;
        Ok(())
    }

    pub(crate) fn remove(&mut self, at: usize) -> usize {
        self.0.remove(at)
    }
}

impl AsRef<[usize]> for Shape {
    fn as_ref(&self) -> &[usize] {
        &self.0
    }
}

impl core::ops::Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl From<&Shape> for Dims {
    fn from(s: &Shape) -> Dims {
        Dims::from(s.dims())
    }
}

impl From<Shape> for Dims {
    fn from(s: Shape) -> Dims {
        Dims::from(s.dims())
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Shape {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=[?]}", self.dims())
    }
}

/// A dimension argument: `usize`, or a signed integer where `-1` is the last
/// dimension (as in PyTorch).
pub trait Dim: Copy {
    /// The dimension as a signed number, for error messages.
    fn as_isize(self) -> isize;

    /// Resolves against a tensor of rank `rank`; `DimOutOfRange` outside
    /// `-rank..rank`.
    #[inline]
    fn resolve(self, op: &'static str, rank: usize) -> Result<usize> {
        let d = self.as_isize();
        let r = rank as isize;
        let idx = if d < 0 { d + r } else { d };
        if (0..r).contains(&idx) {
            Ok(idx as usize)
        } else {
            Err(Error::DimOutOfRange { op, dim: d, rank })
        }
    }
}

impl Dim for usize {
    #[inline]
    fn as_isize(self) -> isize {
        self.min(isize::MAX as usize) as isize
    }
}

macro_rules! signed_dim {
    ($($t:ty),*) => {$(
        impl Dim for $t {
            #[inline]
            fn as_isize(self) -> isize {
                self as isize
            }
        }
    )*};
}
signed_dim!(isize, i32, i64);

/// A reshape target: dimensions where at most one is `-1` (inferred). Accepts
/// arrays, slices and `Vec`s of `usize`, `isize`, `i32` or `i64`, and [`Shape`].
pub trait ReshapeDims {
    /// The dimensions as signed values.
    fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>>;
}

/// The sizes as `isize`; a size that does not fit (e.g. `usize::MAX`, which a
/// plain cast would turn into `-1`) is `InvalidArgument`.
fn signed_from<T: Copy + TryInto<isize>>(v: &[T]) -> Result<heapless::Vec<isize, MAX_RANK>> {
    if v.len() > MAX_RANK {
        return Err(Error::RankTooHigh {
            op: "reshape",
            rank: v.len(),
        });
    }
    v.iter()
        .map(|&x| {
            x.try_into().map_err(|_| Error::InvalidArgument {
                op: "reshape",
                detail: "a target size does not fit in isize",
            })
        })
        .collect()
}

macro_rules! reshape_dims {
    ($($t:ty),*) => {$(
        impl<const N: usize> ReshapeDims for [$t; N] {
            fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
                signed_from(self)
            }
        }
        impl<const N: usize> ReshapeDims for &[$t; N] {
            fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
                signed_from(*self)
            }
        }
        impl ReshapeDims for &[$t] {
            fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
                signed_from(self)
            }
        }
        impl ReshapeDims for alloc::vec::Vec<$t> {
            fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
                signed_from(self)
            }
        }
        impl ReshapeDims for &alloc::vec::Vec<$t> {
            fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
                signed_from(self)
            }
        }
    )*};
}
reshape_dims!(usize, isize, i32, i64);

impl ReshapeDims for Shape {
    fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
        signed_from(self.dims())
    }
}

impl ReshapeDims for &Shape {
    fn to_signed(&self) -> Result<heapless::Vec<isize, MAX_RANK>> {
        signed_from(self.dims())
    }
}

/// Resolves a reshape target against `numel` elements: fills in the one `-1`
/// and checks the element count.
pub(crate) fn infer_shape(
    op: &'static str,
    input: &Shape,
    target: &heapless::Vec<isize, MAX_RANK>,
) -> Result<Shape> {
    let bad = || Error::InvalidReshape {
        op,
        input: input.into(),
        target: target
            .iter()
            .map(|&d| d.clamp(i32::MIN as isize, i32::MAX as isize) as i32)
            .collect(),
    };
    let mut infer_at = None;
    let mut known: usize = 1;
    let mut out = Shape::scalar();
    for (i, &d) in target.iter().enumerate() {
        if d == -1 {
            if infer_at.replace(i).is_some() {
                return Err(bad());
            }
            out.push(0)?;
        } else if d < 0 {
            return Err(bad());
        } else {
            known = known.checked_mul(d as usize).ok_or_else(bad)?;
            out.push(d as usize)?;
        }
    }
    let numel = input.numel();
    match infer_at {
        Some(i) => {
            if known == 0 || !numel.is_multiple_of(known) {
                return Err(bad());
            }
            out.set_dim(op, i, numel / known)?;
        }
        None if known != numel => return Err(bad()),
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn dims_resolve_negative_and_reject_out_of_range() {
        assert_eq!((-1i32).resolve("t", 3).unwrap(), 2);
        assert_eq!(2usize.resolve("t", 3).unwrap(), 2);
        assert_eq!(
            3usize.resolve("t", 3),
            Err(Error::DimOutOfRange {
                op: "t",
                dim: 3,
                rank: 3
            })
        );
        assert!((-4i64).resolve("t", 3).is_err());
        assert!(0usize.resolve("t", 0).is_err());
    }

    #[test]
    fn reshape_inference() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        let t = [4, -1].to_signed().unwrap();
        assert_eq!(infer_shape("reshape", &s, &t).unwrap().dims(), &[4, 6]);
        assert!(infer_shape("reshape", &s, &[-1, -1].to_signed().unwrap()).is_err());
        assert!(infer_shape("reshape", &s, &[5, -1].to_signed().unwrap()).is_err());
        assert!(infer_shape("reshape", &s, &vec![7usize].to_signed().unwrap()).is_err());
        let e = Shape::new(&[0, 3]).unwrap();
        assert_eq!(
            infer_shape("reshape", &e, &[3, 0].to_signed().unwrap())
                .unwrap()
                .dims(),
            &[3, 0]
        );
        assert!(infer_shape("reshape", &e, &[-1, 0].to_signed().unwrap()).is_err());
    }

    #[test]
    fn rank_limit() {
        assert!(Shape::new(&[1; MAX_RANK]).is_ok());
        assert_eq!(
            Shape::new(&[1; MAX_RANK + 1]),
            Err(Error::RankTooHigh {
                op: "shape",
                rank: MAX_RANK + 1
            })
        );
    }
}
