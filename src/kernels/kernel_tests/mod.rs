//! Tests of the kernel tables: every SIMD table this CPU can run is compared
//! with the scalar table (`table_for(Isa::Scalar)`) side by side; nothing here
//! calls `force_isa`, so the tests can run in parallel.
//!
//! - `elementwise`: unary, parametric, binary and backward kernels, every
//!   length in [`LENGTHS`] at offsets [`OFFSETS`], broadcast operands, in place
//!   against out of place, special values;
//! - `far_out`: arguments whose results round to 0 (or to `x`), set aside by
//!   the paths instead of computed: exact, and independent of neighbours;
//! - `reduce`: sums against `f64`, determinism, extremes, arg-extremes, rows,
//!   copies, and the panics on misuse;
//! - `accuracy`: ulp error of each approximated function against `f64` over a
//!   dense sweep, asserting the bounds stated on [`Kernels`].
//!
//! Under miri only the scalar table exists and the sizes shrink.

extern crate std;

mod accuracy;
mod elementwise;
mod far_out;
mod reduce;

use alloc::vec::Vec;

use super::{Isa, Kernels, table_for};

/// Lengths every kernel is tried on.
pub(super) const LENGTHS: &[usize] = if cfg!(miri) {
    &[0, 1, 7, 8, 9, 17]
} else {
    &[0, 1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 1000]
};

/// Start offsets (in elements) of the sub-slices, so loads are unaligned.
pub(super) const OFFSETS: &[usize] = &[0, 1, 3];

/// The scalar reference table.
pub(super) fn scalar() -> &'static Kernels {
    table_for(Isa::Scalar).unwrap()
}

/// Every SIMD table this CPU can run.
pub(super) fn simd() -> Vec<&'static Kernels> {
    [Isa::Avx2, Isa::Avx512, Isa::Neon]
        .into_iter()
        .filter_map(table_for)
        .collect()
}

/// Every table this CPU can run, scalar first.
pub(super) fn all() -> Vec<&'static Kernels> {
    let mut v = alloc::vec![scalar()];
    v.extend(simd());
    v
}

/// xorshift64* generator: reproducible inputs without dependencies.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
    /// Uniform in `[lo, hi)`.
    pub(super) fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Values every element-wise kernel must handle like the scalar path.
pub(super) const SPECIALS: &[f32] = &[
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1.0e-40,
    -1.0e-40,
    f32::MAX,
    f32::MIN,
    0.5,
    -0.5,
    2.0,
    -2.0,
    20.0,
    20.000002,
];

/// `n` values uniform in `[lo, hi)`, with about one in eight replaced by a
/// special value.
pub(super) fn inputs(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if rng.below(8) == 0 {
                SPECIALS[rng.below(SPECIALS.len())]
            } else {
                rng.range(lo, hi)
            }
        })
        .collect()
}

/// Distance in units in the last place between two floats (0 for two NaNs,
/// `u64::MAX` if only one is NaN; `+0` and `-0` are 0 apart).
pub(super) fn ulps(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |x: f32| {
        let bits = x.to_bits() as i64;
        if bits & 0x8000_0000 != 0 {
            -(bits & 0x7fff_ffff)
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

/// Same bits (any NaN equals any NaN).
pub(super) fn same_bits(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Asserts `got` matches `want` element by element: bit for bit if
/// `max_ulps` is 0, else within `max_ulps`.
#[track_caller]
pub(super) fn assert_match(what: &str, x: &[f32], got: &[f32], want: &[f32], max_ulps: u64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if max_ulps == 0 {
            same_bits(g, w)
        } else {
            ulps(g, w) <= max_ulps
        };
        assert!(
            ok,
            "{what}: element {i} of {n}: input {xi:e} ({xb:#010x}) gave {g:e} ({gb:#010x}), scalar {w:e} ({wb:#010x}), {d} ulp apart (allowed {max_ulps})",
            n = got.len(),
            xi = x.get(i).copied().unwrap_or(f32::NAN),
            xb = x.get(i).copied().unwrap_or(f32::NAN).to_bits(),
            gb = g.to_bits(),
            wb = w.to_bits(),
            d = ulps(g, w),
        );
    }
}

/// Runs `f`, which must panic with a message containing `needle`.
#[track_caller]
pub(super) fn assert_panics(needle: &str, f: impl FnOnce()) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let Err(e) = r else {
        panic!("expected a panic mentioning {needle:?}");
    };
    let msg = e
        .downcast_ref::<alloc::string::String>()
        .map(|s| s.as_str())
        .or_else(|| e.downcast_ref::<&str>().copied())
        .unwrap_or("");
    assert!(
        msg.contains(needle),
        "panic message {msg:?} does not mention {needle:?}"
    );
}

#[test]
fn table_for_matches_support_and_isa_field() {
    for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon] {
        match table_for(isa) {
            Some(k) => assert_eq!(k.isa, isa),
            None => assert!(cfg!(miri) || !super::is_supported(isa)),
        }
    }
    // The table in force is the one for the path in force.
    assert_eq!(
        super::table().isa,
        if cfg!(miri) {
            Isa::Scalar
        } else {
            super::isa()
        }
    );
}

/// On the CI jobs that force a path, the SIMD table under test is really there
/// (a job for a path the runner lacks must fail, not skip).
#[cfg(feature = "std")]
#[test]
fn forced_path_has_a_table() {
    if let Ok(v) = std::env::var("TRAIN_STATION_KERNELS")
        && let Some(isa) = Isa::from_name(&v)
    {
        assert!(table_for(isa).is_some(), "no kernel table for {isa}");
    }
}
