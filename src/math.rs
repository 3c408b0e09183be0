//! Small numeric helpers for the whole crate: square roots (`libm`'s, except
//! under miri and on 32-bit Arm with an FPU) and the decimal digits of an
//! integer.
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
    // `vsqrt.f32` (libm's is software there; see `kernels::arm`).
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    return crate::kernels::arm::sqrtf(x);
    #[cfg(not(any(
        all(miri, feature = "std"),
        all(target_arch = "arm", target_abi = "eabihf")
    )))]
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

/// `v` in decimal, written at the end of `buf` (no formatting machinery:
/// parameter names and file headers are built often, and on boards the
/// formatter costs flash).
pub(crate) fn decimal(mut v: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    /// Every digit count up to `usize::MAX`, against `format!`.
    #[test]
    fn decimals_match_the_formatter() {
        extern crate std;
        let mut buf = [0u8; 20];
        for v in [0usize, 9, 10, 99, 100, 123_456_789, usize::MAX] {
            assert_eq!(super::decimal(v, &mut buf), std::format!("{v}"));
        }
    }

    /// The correctly rounded roots (natively `libm`'s, under miri `std`'s).
    #[test]
    fn square_roots_are_correctly_rounded() {
        assert_eq!(super::sqrtf(2.0), core::f32::consts::SQRT_2);
        assert_eq!(super::sqrt(2.0), core::f64::consts::SQRT_2);
        assert_eq!(super::sqrtf(0.25), 0.5);
        assert!(super::sqrtf(-1.0).is_nan());
    }
}
