//! x86_64 kernel tables: AVX2 + FMA and AVX-512F + FMA, chosen at run time
//! (under `std`) or by `cfg(target_feature)` (without `std`) in `kernels/mod.rs`.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// [`Lanes::prefetch`](crate::kernels::lanes::Lanes::prefetch) on x86_64:
/// one `prefetcht0` per 16 floats from the start of `s`. That covers every
/// line of an `s` that starts on a 64-byte line; an unaligned `s` can leave
/// its last line to the hardware.
#[inline(always)]
pub(crate) fn prefetch_lines(s: &[f32]) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    for line in s.chunks(16) {
        // SAFETY: a prefetch reads nothing architecturally and never faults;
        // the address is inside `s` anyway. SSE is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) }
    }
}
