//! x86_64 kernel tables: AVX2 + FMA and AVX-512F + FMA, chosen at run time
//! (under `std`) or by `cfg(target_feature)` (without `std`) in `kernels/mod.rs`.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// [`Lanes::prefetch`](crate::kernels::lanes::Lanes::prefetch) on x86_64:
/// one `prefetcht0` per 64-byte line that holds part of `s`, from the line of
/// its first element to the line of its last (so an `s` that does not start
/// on a line, a row strip at a stride that is not a multiple of 16 floats,
/// has all of its lines fetched).
#[inline(always)]
pub(crate) fn prefetch_lines(s: &[f32]) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    for line in lines(s.as_ptr(), s.len()) {
        // SAFETY: a prefetch reads nothing architecturally and never faults,
        // whatever the address (here a line holding part of `s`); SSE is part
        // of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast()) }
    }
}

/// The lines holding `p .. p + n` into L2 (`prefetcht1`), for memory not
/// borrowed as a slice (a GEMM tile's rows of C). Any address is fine.
#[inline(always)]
pub(crate) fn prefetch_lines_l2(p: *const f32, n: usize) {
    use core::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    for line in lines(p, n) {
        // SAFETY: as in `prefetch_lines`: a prefetch never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.cast()) }
    }
}

/// The start of each 64-byte line holding part of the `n` floats from
/// `start`, in order (the first at most 63 bytes before `start`).
#[inline(always)]
fn lines(start: *const f32, n: usize) -> impl Iterator<Item = *const u8> {
    let start = start.cast::<u8>();
    let first = start.wrapping_sub(start.addr() % 64);
    // Lines from `first` through the one holding the last byte.
    let count = match n {
        0 => 0,
        n => (start.addr() % 64 + n * 4).div_ceil(64),
    };
    (0..count).map(move |i| first.wrapping_add(i * 64))
}

#[cfg(test)]
mod tests {
    /// Every line holding part of a slice is listed once, aligned or not.
    #[test]
    fn prefetch_covers_each_line_once() {
        #[repr(align(64))]
        struct Lines([f32; 64]);
        let buf = Lines([0.0; 64]);
        let base = buf.0.as_ptr().cast::<u8>().addr();
        for (from, len, want) in [
            (0, 0, 0),
            (0, 1, 1),
            (0, 16, 1),
            (0, 17, 2),
            (0, 32, 2),
            (3, 32, 3),
            (15, 2, 2),
            (15, 1, 1),
            (16, 48, 3),
        ] {
            let s = &buf.0[from..from + len];
            let got: alloc::vec::Vec<usize> = super::lines(s.as_ptr(), s.len())
                .map(|p| p.addr() - base)
                .collect();
            let first = from * 4 / 64 * 64;
            let expect: alloc::vec::Vec<usize> = (0..want).map(|i| first + 64 * i).collect();
            assert_eq!(got, expect, "floats {from}..{}", from + len);
        }
    }
}
