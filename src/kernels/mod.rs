//! Compute kernels: the only module that picks an instruction set.
//!
//! The CPU is inspected once. Under `std` that happens at run time on first use
//! (`is_x86_feature_detected!` here and nowhere else); without `std` the choice is
//! made at compile time from `cfg(target_feature)`. On aarch64 NEON is part of the
//! baseline and always chosen. A scalar path always exists: it is the reference
//! every SIMD path is tested against, and what miri runs.
//!
//! Forcing a path, for tests and benchmarks:
//! - under `std`, the environment variable `TRAIN_STATION_KERNELS` =
//!   `scalar` | `avx2` | `avx512` | `neon`, read once at first use; asking for a
//!   path this CPU cannot run panics with a clear message rather than silently
//!   testing another path;
//! - on any target, [`force_isa`], which returns an error for an unsupported path.
//!
//! [`isa`] reports the path in force, so a test can assert that the forced path
//! is the one that ran.

use core::sync::atomic::{AtomicU8, Ordering};

pub mod gemm;
#[cfg(feature = "std")]
pub mod threads;

use crate::error::{Error, Result};

/// An instruction-set path of the kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Isa {
    /// Portable Rust, any target.
    Scalar,
    /// x86_64 AVX2 with FMA.
    Avx2,
    /// x86_64 AVX-512 (F, with FMA).
    Avx512,
    /// aarch64 Advanced SIMD.
    Neon,
}

impl Isa {
    /// Lower-case name, as accepted by `TRAIN_STATION_KERNELS`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as accepted by `TRAIN_STATION_KERNELS`.
    pub fn from_name(s: &str) -> Option<Isa> {
        match s.trim() {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" => Some(Isa::Avx512),
            "neon" => Some(Isa::Neon),
            _ => None,
        }
    }

    const fn to_u8(self) -> u8 {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
            Isa::Neon => 4,
        }
    }

    const fn from_u8(v: u8) -> Option<Isa> {
        match v {
            1 => Some(Isa::Scalar),
            2 => Some(Isa::Avx2),
            3 => Some(Isa::Avx512),
            4 => Some(Isa::Neon),
            _ => None,
        }
    }
}

impl core::fmt::Display for Isa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// 0 = not chosen yet; otherwise `Isa::to_u8`.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU (and build) can run `isa`. Under miri only the scalar path
/// is supported (miri cannot run SIMD intrinsics), so detection, the
/// `TRAIN_STATION_KERNELS` override and GEMM all see the scalar path alone.
pub fn is_supported(isa: Isa) -> bool {
    match isa {
        Isa::Scalar => true,
        _ if cfg!(miri) => false,
        Isa::Avx2 => has_avx2(),
        Isa::Avx512 => has_avx512(),
        Isa::Neon => cfg!(all(target_arch = "aarch64", target_feature = "neon")),
    }
}

/// Every path this CPU can run, best first.
pub fn supported() -> heapless::Vec<Isa, 4> {
    let mut v = heapless::Vec::new();
    for isa in [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar] {
        if is_supported(isa) {
            // Capacity 4 holds all four variants.
            let _ = v.push(isa);
        }
    }
    v
}

/// The best path this CPU can run.
pub fn best() -> Isa {
    supported()[0]
}

/// The path in force: chosen on first call (see the module docs) and fixed until
/// [`force_isa`] changes it.
#[inline]
pub fn isa() -> Isa {
    match Isa::from_u8(ACTIVE.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => init(),
    }
}

/// Forces the kernel path, e.g. to compare a SIMD path with the scalar one.
///
/// Takes effect for every thread from the next kernel call on. Returns
/// [`Error::InvalidArgument`] when this CPU cannot run `isa`.
pub fn force_isa(isa: Isa) -> Result<()> {
    if !is_supported(isa) {
        return Err(Error::InvalidArgument {
            op: "force_isa",
            detail: "this CPU (or build) cannot run the requested kernel path",
        });
    }
    ACTIVE.store(isa.to_u8(), Ordering::Relaxed);
    Ok(())
}

#[cold]
fn init() -> Isa {
    let chosen = env_override().unwrap_or_else(best);
    // Another thread may have raced us here; both compute the same answer.
    ACTIVE.store(chosen.to_u8(), Ordering::Relaxed);
    chosen
}

#[cfg(feature = "std")]
fn env_override() -> Option<Isa> {
    let v = std::env::var("TRAIN_STATION_KERNELS").ok()?;
    if v.is_empty() {
        return None;
    }
    let Some(isa) = Isa::from_name(&v) else {
        panic!("TRAIN_STATION_KERNELS={v:?}: expected one of scalar, avx2, avx512, neon");
    };
    assert!(
        is_supported(isa),
        "TRAIN_STATION_KERNELS={v}: this CPU cannot run the {isa} kernel path (supported: {:?})",
        supported()
    );
    Some(isa)
}

#[cfg(not(feature = "std"))]
fn env_override() -> Option<Isa> {
    None
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn has_avx512() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
}

#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn has_avx2() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "fma"))
}

#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn has_avx512() -> bool {
    cfg!(all(target_feature = "avx512f", target_feature = "fma"))
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon] {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
            assert_eq!(Isa::from_u8(isa.to_u8()), Some(isa));
        }
        assert_eq!(Isa::from_name("sse"), None);
    }

    #[test]
    fn scalar_is_always_supported_and_best_is_supported() {
        assert!(is_supported(Isa::Scalar));
        assert!(is_supported(best()));
        assert_eq!(*supported().last().unwrap(), Isa::Scalar);
        if cfg!(miri) {
            assert_eq!(supported().as_slice(), &[Isa::Scalar]);
            assert_eq!(isa(), Isa::Scalar);
        }
    }

    #[test]
    fn forcing_an_unsupported_path_is_an_error() {
        let unsupported = [Isa::Avx2, Isa::Avx512, Isa::Neon]
            .into_iter()
            .find(|&i| !is_supported(i));
        if let Some(isa) = unsupported {
            assert!(force_isa(isa).is_err());
        }
    }

    /// Under `TRAIN_STATION_KERNELS=x`, the path in force is x: CI runs the suite
    /// once per path and this test fails if the requested path was not taken.
    #[cfg(feature = "std")]
    #[test]
    fn requested_path_is_the_active_one() {
        if let Ok(v) = std::env::var("TRAIN_STATION_KERNELS")
            && !v.is_empty()
        {
            assert_eq!(isa().name(), v.trim());
        }
    }
}

// ------------------------------------------------------------ kernel table
//
// Element-wise, reduction, row and copy kernels, one `static` table per ISA
// (see `table.rs`). Layout:
// - `lanes.rs`: the `Lanes` trait, the one seam between algorithms and ISAs;
// - `generic/`: every vector algorithm, written once over `Lanes`;
// - `scalar.rs`: the portable reference (plain loops over `libm`);
// - `x86/avx2.rs`, `x86/avx512.rs`, `aarch64/neon.rs`: `Lanes` impls on the
//   capability tokens plus the `#[target_feature]` wrappers (one macro call).

mod check;
// The vector algorithms exist only for targets with a SIMD path (x86_64;
// aarch64 with NEON); elsewhere (e.g. thumbv7em) every kernel is scalar.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
mod generic;
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
mod lanes;
pub mod optim;
pub mod parallel;
pub mod scalar;
mod table;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
pub(crate) mod arm;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod kernel_tests;

pub use table::{Binary, InplaceFn, Kernels, MapFn, ReduceFn, Unary, ZipFn, ZipInplaceFn};

/// The kernel table of the path in force ([`isa`]): one relaxed load and a
/// match, no detection after the first call. Under miri this is always the
/// scalar table.
#[inline]
pub fn table() -> &'static Kernels {
    if cfg!(miri) {
        return &table::SCALAR;
    }
    match isa() {
        Isa::Scalar => &table::SCALAR,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => &x86::avx2::TABLE,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => &x86::avx512::TABLE,
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => &aarch64::neon::TABLE,
        // `isa()` only returns supported paths, and the others are not
        // supported on this target.
        #[allow(unreachable_patterns)]
        _ => &table::SCALAR,
    }
}

/// The kernel table of `isa`, or `None` if this CPU (or build) cannot run it.
/// Does not change the path in force, so tests can compare every path with
/// `table_for(Isa::Scalar)` side by side. Under miri only the scalar table is
/// available.
pub fn table_for(isa: Isa) -> Option<&'static Kernels> {
    if isa == Isa::Scalar {
        return Some(&table::SCALAR);
    }
    if cfg!(miri) || !is_supported(isa) {
        return None;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Some(&x86::avx2::TABLE),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Some(&x86::avx512::TABLE),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon => Some(&aarch64::neon::TABLE),
        _ => None,
    }
}
