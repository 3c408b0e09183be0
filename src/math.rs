//! Square roots for the whole crate: `libm`'s, except under miri.
//!
//! On x86_64 `libm` computes them with inline assembly (`sqrtss`/`sqrtsd`),
//! which miri cannot run; under `cfg(miri)` (with `std`) they come from `std`,
//! which miri evaluates itself. Both are the correctly rounded IEEE square
//! root, so results are the same bits either way.

/// The square root of `x` (`f32`).
#[inline]
pub(crate) fn sqrtf(x: f32) -> f32 {
    #[cfg(all(miri, feature = "std"))]
    return f32::sqrt(x);
    #[cfg(not(all(miri, feature = "std")))]
    libm::sqrtf(x)
}

/// The square root of `x` (`f64`).
#[inline]
pub(crate) fn sqrt(x: f64) -> f64 {
    #[cfg(all(miri, feature = "std"))]
    return f64::sqrt(x);
    #[cfg(not(all(miri, feature = "std")))]
    libm::sqrt(x)
}

#[cfg(test)]
mod tests {
    /// The correctly rounded roots (natively `libm`'s, under miri `std`'s).
    #[test]
    fn square_roots_are_correctly_rounded() {
        assert_eq!(super::sqrtf(2.0), core::f32::consts::SQRT_2);
        assert_eq!(super::sqrt(2.0), core::f64::consts::SQRT_2);
        assert_eq!(super::sqrtf(0.25), 0.5);
        assert!(super::sqrtf(-1.0).is_nan());
    }
}
