//! AVX-512 path (x86_64, AVX-512F with FMA): lanes, blocking, entry point and
//! the hand-scheduled 6 x 64 k loop.
//!
//! AVX-512 intrinsics and `target_feature(enable = "avx512f")` are stable
//! since Rust 1.89, above the crate's declared `rust-version` (1.88): the
//! crate needs 1.89 to build on x86_64.

use core::arch::x86_64::*;

use super::driver::{Arch, Blocking, Plan, Problem, run_task};
use super::simd::Simd;
use crate::kernels::Isa;

/// Capability token: proof that this CPU runs AVX-512F and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The token, if this CPU (and build) supports the path.
    pub(crate) fn new() -> Option<Self> {
        crate::kernels::is_supported(Isa::Avx512).then_some(Avx512(()))
    }
}

/// Micro-tile: `MR` rows by `NV` vectors of 16 columns.
const MR: usize = 6;
const NV: usize = 4;

impl Arch for Avx512 {
    const ISA: Isa = Isa::Avx512;
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV * 16,
        kc: 512,
        mc: 1024,
        nc: 512,
        pack_b_min: 8 * 1024,
        direct_b_max: 256 * 1024,
        fuse_b_max: 64 * 1024,
    };

    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
        // SAFETY: an `Avx512` token exists only when the CPU supports the
        // features `entry` is compiled for.
        unsafe { entry(self, p, plan, task, scratch) }
    }
}

#[target_feature(enable = "avx512f,avx2,fma")]
fn entry(s: Avx512, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
    run_task::<Avx512, MR, NV>(s, p, plan, task, scratch)
}

#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

// SAFETY (every `unsafe` block in this impl that calls an intrinsic): the
// `Avx512` token proves the CPU supports AVX-512F; pointer requirements are
// forwarded from the caller as documented on `Simd`.
impl Simd for Avx512 {
    type V = __m512;
    const W: usize = 16;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn prefetch_l2(self, p: *const f32, n: usize) {
        crate::kernels::x86::prefetch_lines_l2(p, n)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: see the impl comment.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m512 {
        // SAFETY: see the impl comment; masked-off lanes are not accessed.
        unsafe { _mm512_maskz_loadu_ps(mask(n), p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: __m512, n: usize) {
        // SAFETY: see the impl comment; masked-off lanes are not accessed.
        unsafe { _mm512_mask_storeu_ps(p, mask(n), v) }
    }
    #[inline(always)]
    unsafe fn transpose_block(
        self,
        src: *const f32,
        stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        // The four 8 x 8 quarters, each transposed into the mirrored quarter.
        for cb in [0, 8] {
            for tb in [0, 8] {
                // SAFETY: forwarded from the caller (the quarters lie within
                // the block); AVX-512F implies AVX2.
                unsafe {
                    super::avx2::transpose8(
                        src.add(cb * stride + tb),
                        stride,
                        dst.add(tb * dst_stride + cb),
                        dst_stride,
                    )
                }
            }
        }
    }
    #[inline(always)]
    unsafe fn pack_rows<const R: usize>(self, rows: &[*const f32; R], dst: *mut f32) {
        if (4..=8).contains(&R) {
            // Two 8-column halves (AVX-512F implies AVX2).
            let hi: [*const f32; R] = core::array::from_fn(|i| rows[i].wrapping_add(8));
            // SAFETY: forwarded from the caller (each half lies within the
            // readable 16 columns and the 16 * R writable values).
            unsafe {
                super::avx2::pack_rows8(rows, dst);
                super::avx2::pack_rows8(&hi, dst.add(8 * R));
            }
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { super::simd::pack_rows_scalar::<R>(16, rows, dst) }
        }
    }
    accumulate_tuned!(__m512, 24, k_loop_6x64_cs1, k_loop_6x64_cs6, k_loop_6x64);
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn relu(self, v: __m512) -> __m512 {
        // `max` returns its second operand when either is NaN (and for two
        // zeros), so NaN and -0.0 pass through as in the scalar path.
        // SAFETY: see the impl comment.
        unsafe { _mm512_max_ps(_mm512_setzero_ps(), v) }
    }
    #[inline(always)]
    fn hsum(self, v: __m512) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn hsum4(self, v: [__m512; 4]) -> [f32; 4] {
        // As on AVX2 per 128-bit lane, then the four lanes added in pairs.
        // SAFETY: see the impl comment.
        unsafe {
            let ab = _mm512_add_ps(
                _mm512_unpacklo_ps(v[0], v[1]),
                _mm512_unpackhi_ps(v[0], v[1]),
            );
            let cd = _mm512_add_ps(
                _mm512_unpacklo_ps(v[2], v[3]),
                _mm512_unpackhi_ps(v[2], v[3]),
            );
            let (ab, cd) = (_mm512_castps_pd(ab), _mm512_castps_pd(cd));
            let x = _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(ab, cd)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(ab, cd)),
            );
            let y = _mm256_add_ps(
                _mm512_castps512_ps256(x),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x))),
            );
            let s = _mm_add_ps(_mm256_castps256_ps128(y), _mm256_extractf128_ps::<1>(y));
            core::mem::transmute::<__m128, [f32; 4]>(s)
        }
    }
}

/// One step of the 6 x 64 k loop (`step_6x64_at` at the pointers: 4 vectors
/// of B, 6 broadcasts of A, 24 FMAs, row `i`, vector `v` accumulating in
/// `zmm(4 i + v)`), then both panels move one step on (A by `{as}` bytes, B
/// by `{bs}`). The same operations, in the same order per accumulator, as the
/// generic loop in `kernel.rs`.
macro_rules! step_6x64 {
    () => {
        concat!(step_6x64_at!("", "0"), "add {a}, {as}\n", "add {b}, {bs}\n")
    };
}

/// One step of the unrolled 6 x 64 loop: B row at `{b}` plus `$b` (an index
/// register expression), A column at the constant displacement `$d` from
/// `{a}`; otherwise as [`step_6x64`].
macro_rules! step_6x64_at {
    ($b:literal, $d:literal) => {
        concat!(
            "vmovups zmm24, [{b}",
            $b,
            "]\n",
            "vmovups zmm25, [{b}",
            $b,
            " + 64]\n",
            "vmovups zmm26, [{b}",
            $b,
            " + 128]\n",
            "vmovups zmm27, [{b}",
            $b,
            " + 192]\n",
            "vbroadcastss zmm28, [{a} + ",
            $d,
            "]\n",
            "vbroadcastss zmm29, [{a} + {r1} + ",
            $d,
            "]\n",
            "vfmadd231ps zmm0, zmm28, zmm24\n",
            "vfmadd231ps zmm1, zmm28, zmm25\n",
            "vfmadd231ps zmm2, zmm28, zmm26\n",
            "vfmadd231ps zmm3, zmm28, zmm27\n",
            "vbroadcastss zmm30, [{a} + {r1} * 2 + ",
            $d,
            "]\n",
            "vfmadd231ps zmm4, zmm29, zmm24\n",
            "vfmadd231ps zmm5, zmm29, zmm25\n",
            "vfmadd231ps zmm6, zmm29, zmm26\n",
            "vfmadd231ps zmm7, zmm29, zmm27\n",
            "vbroadcastss zmm31, [{a} + {r3} + ",
            $d,
            "]\n",
            "vfmadd231ps zmm8, zmm30, zmm24\n",
            "vfmadd231ps zmm9, zmm30, zmm25\n",
            "vfmadd231ps zmm10, zmm30, zmm26\n",
            "vfmadd231ps zmm11, zmm30, zmm27\n",
            "vbroadcastss zmm28, [{a} + {r1} * 4 + ",
            $d,
            "]\n",
            "vfmadd231ps zmm12, zmm31, zmm24\n",
            "vfmadd231ps zmm13, zmm31, zmm25\n",
            "vfmadd231ps zmm14, zmm31, zmm26\n",
            "vfmadd231ps zmm15, zmm31, zmm27\n",
            "vbroadcastss zmm29, [{a} + {r5} + ",
            $d,
            "]\n",
            "vfmadd231ps zmm16, zmm28, zmm24\n",
            "vfmadd231ps zmm17, zmm28, zmm25\n",
            "vfmadd231ps zmm18, zmm28, zmm26\n",
            "vfmadd231ps zmm19, zmm28, zmm27\n",
            "vfmadd231ps zmm20, zmm29, zmm24\n",
            "vfmadd231ps zmm21, zmm29, zmm25\n",
            "vfmadd231ps zmm22, zmm29, zmm26\n",
            "vfmadd231ps zmm23, zmm29, zmm27\n",
        )
    };
}

// The three k loops, with this path's registers: 24 accumulators,
// four B vectors and four broadcasts.
k_loops!(
    "6 x 64", "avx512f", __m512, 24, step_6x64_at, step_6x64,
    [k_loop_6x64_cs1, k_loop_6x64_cs6, k_loop_6x64],
    [
        [
            "zmm0" => 0, "zmm1" => 1, "zmm2" => 2, "zmm3" => 3, "zmm4" => 4, "zmm5" => 5,
            "zmm6" => 6, "zmm7" => 7, "zmm8" => 8, "zmm9" => 9, "zmm10" => 10, "zmm11" => 11,
            "zmm12" => 12, "zmm13" => 13, "zmm14" => 14, "zmm15" => 15, "zmm16" => 16, "zmm17" => 17,
            "zmm18" => 18, "zmm19" => 19, "zmm20" => 20, "zmm21" => 21, "zmm22" => 22, "zmm23" => 23,
        ],
        ["zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "zmm30", "zmm31"]
    ],
);
