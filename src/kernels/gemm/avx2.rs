//! AVX2 + FMA path (x86_64): lanes, blocking, entry point and the
//! hand-scheduled 6 x 16 k loop.
//!
//! The k loop of a full tile is written in assembly, as on AVX-512: unrolled
//! by four, with A's offsets as displacements where its column stride is a
//! constant (row-major A read in place, a packed panel; a column-major A
//! read in place moves its pointer every step), 20.75 instructions a step
//! against 27 for the compiler's loop over the generic kernel (which
//! recomputed three of the six row addresses every step). Same
//! multiply-adds in the same order, so the same bits (`tests/tuned.rs`).
//! Intel Xeon (Emerald Rapids class, KVM), one thread, the two loops
//! alternated call by call in one process: 1.03-1.28x (best of each) on
//! square products of 128 to 2048 and the MLP's shapes while the host was
//! busy, where the compiler's loop and the `gemm` crate's both fell to
//! about 57 GFLOP/s. A column-major A read in place (a weight gradient,
//! `[256,64]^T x [64,784]`) timed level with the compiler's loop.

use core::arch::x86_64::*;

use super::driver::{Arch, Blocking, Plan, Problem, run_task};
use super::simd::Simd;
use crate::kernels::Isa;

/// Capability token: proof that this CPU runs AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, if this CPU (and build) supports the path.
    pub(crate) fn new() -> Option<Self> {
        crate::kernels::is_supported(Isa::Avx2).then_some(Avx2(()))
    }
}

/// Micro-tile: `MR` rows by `NV` vectors of 8 columns (12 accumulators of the
/// 16 registers).
const MR: usize = 6;
const NV: usize = 2;

impl Arch for Avx2 {
    const ISA: Isa = Isa::Avx2;
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV * 8,
        kc: 256,
        mc: 512,
        nc: 256,
        pack_b_min: 8 * 1024,
        direct_b_max: 32 * 1024,
        fuse_b_max: 64 * 1024,
    };

    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
        // SAFETY: an `Avx2` token exists only when the CPU supports the features
        // `entry` is compiled for.
        unsafe { entry(self, p, plan, task, scratch) }
    }
}

#[target_feature(enable = "avx2,fma")]
fn entry(s: Avx2, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
    run_task::<Avx2, MR, NV>(s, p, plan, task, scratch)
}

/// The 8 x 8 transpose `dst[t * dst_stride + c] = src[c * stride + t]` in
/// registers: eight loads, 24 shuffles, eight stores (the AVX-512 path uses
/// it on the four quarters of its 16 x 16 blocks).
///
/// # Safety
/// The CPU supports AVX2; `src + c * stride .. + 8` is readable and `dst + t *
/// dst_stride .. + 8` writable for `c, t < 8`, not overlapping.
#[inline(always)]
pub(super) unsafe fn transpose8(src: *const f32, stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: the caller's promises cover every load, store and intrinsic.
    unsafe {
        let r: [__m256; 8] = core::array::from_fn(|c| _mm256_loadu_ps(src.add(c * stride)));
        for (t, v) in transpose8_regs(r).into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(t * dst_stride), v);
        }
    }
}

/// Lane `c` of output `t` is lane `t` of input `c`.
///
/// # Safety
/// The CPU supports AVX2.
#[inline(always)]
unsafe fn transpose8_regs(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: register-only intrinsics; the caller guarantees AVX2.
    unsafe {
        // Pairs of rows interleaved, then groups of four, then the 128-bit
        // halves exchanged.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }
}

/// `dst[t * R + i] = rows[i][t]` for `i < R`, `t < 8`: eight columns of `R`
/// rows (4 to 8) interleaved as in a packed A panel, by one 8 x 8 transpose.
/// Output row `t` is stored whole (its lanes past `R` land where row `t + 1`
/// then goes, and are overwritten by it), the last one masked, so exactly
/// `8 * R` values are written.
///
/// # Safety
/// The CPU supports AVX2; `4 <= R <= 8`; `rows[i] .. + 8` is readable for `i < R` and
/// `dst .. + 8 * R` writable, not overlapping them.
#[inline(always)]
pub(super) unsafe fn pack_rows8<const R: usize>(rows: &[*const f32; R], dst: *mut f32) {
    debug_assert!((4..=8).contains(&R));
    // SAFETY: the caller's promises cover every load, store and intrinsic; the
    // stores go in increasing order, so each overwrites the previous one's
    // spill (`R >= 4`: a spill of `8 - R` lanes is within the next `R`).
    unsafe {
        let r: [__m256; 8] = core::array::from_fn(|i| {
            if i < R {
                _mm256_loadu_ps(rows[i])
            } else {
                _mm256_setzero_ps()
            }
        });
        let out = transpose8_regs(r);
        for (t, v) in out.iter().enumerate().take(7) {
            _mm256_storeu_ps(dst.add(t * R), *v);
        }
        _mm256_maskstore_ps(dst.add(7 * R), mask(R), out[7]);
    }
}

/// Lanes `< n` all ones, the others zero.
#[inline(always)]
fn mask(n: usize) -> __m256i {
    // SAFETY: the `Avx2` token held by every caller proves AVX2.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

// SAFETY (every `unsafe` block in this impl that calls an intrinsic): the
// `Avx2` token proves the CPU supports AVX2 and FMA; pointer requirements are
// forwarded from the caller as documented on `Simd`.
impl Simd for Avx2 {
    type V = __m256;
    const W: usize = 8;
    const REGS: usize = 16;

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn prefetch_l2(self, p: *const f32, n: usize) {
        crate::kernels::x86::prefetch_lines_l2(p, n)
    }
    accumulate_tuned!(__m256, 12, k_loop_6x16_cs1, k_loop_6x16_cs6, k_loop_6x16);
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: see the impl comment.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m256 {
        // SAFETY: see the impl comment; masked-off lanes are not accessed.
        unsafe { _mm256_maskload_ps(p, mask(n)) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: __m256, n: usize) {
        // SAFETY: see the impl comment; masked-off lanes are not accessed.
        unsafe { _mm256_maskstore_ps(p, mask(n), v) }
    }
    #[inline(always)]
    unsafe fn transpose_block(
        self,
        src: *const f32,
        stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        // SAFETY: forwarded from the caller; this token proves AVX2.
        unsafe { transpose8(src, stride, dst, dst_stride) }
    }
    #[inline(always)]
    unsafe fn pack_rows<const R: usize>(self, rows: &[*const f32; R], dst: *mut f32) {
        if (4..=8).contains(&R) {
            // SAFETY: forwarded from the caller; this token proves AVX2.
            unsafe { pack_rows8(rows, dst) }
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { super::simd::pack_rows_scalar::<R>(8, rows, dst) }
        }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn relu(self, v: __m256) -> __m256 {
        // `max` returns its second operand when either is NaN (and for two
        // zeros), so NaN and -0.0 pass through as in the scalar path.
        // SAFETY: see the impl comment.
        unsafe { _mm256_max_ps(_mm256_setzero_ps(), v) }
    }
    #[inline(always)]
    fn hsum(self, v: __m256) -> f32 {
        // SAFETY: see the impl comment.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn hsum4(self, v: [__m256; 4]) -> [f32; 4] {
        // SAFETY: see the impl comment.
        // Per 128-bit lane, interleaving: `ab` holds (a0 + a2, b0 + b2, a1 +
        // a3, b1 + b3), `cd` the same for c, d; then x = lane sums of a, b,
        // c, d per half, and the two halves added.
        unsafe {
            let ab = _mm256_add_ps(
                _mm256_unpacklo_ps(v[0], v[1]),
                _mm256_unpackhi_ps(v[0], v[1]),
            );
            let cd = _mm256_add_ps(
                _mm256_unpacklo_ps(v[2], v[3]),
                _mm256_unpackhi_ps(v[2], v[3]),
            );
            let (ab, cd) = (_mm256_castps_pd(ab), _mm256_castps_pd(cd));
            let x = _mm256_add_ps(
                _mm256_castpd_ps(_mm256_unpacklo_pd(ab, cd)),
                _mm256_castpd_ps(_mm256_unpackhi_pd(ab, cd)),
            );
            let s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
            core::mem::transmute::<__m128, [f32; 4]>(s)
        }
    }
}

/// One step of the 6 x 16 k loop: B row at `{b}` plus `$b` (an index
/// register expression), A column at the constant displacement `$d` from
/// `{a}`; `acc[2 i + v] += A[i, p] * B[p, 8 v ..]`. The twelve accumulators,
/// two B vectors and two broadcasts fill the 16 registers.
macro_rules! step_6x16_at {
    ($b:literal, $d:literal) => {
        concat!(
            "vmovups ymm12, [{b}",
            $b,
            "]\n",
            "vmovups ymm13, [{b}",
            $b,
            " + 32]\n",
            "vbroadcastss ymm14, [{a} + ",
            $d,
            "]\n",
            "vbroadcastss ymm15, [{a} + {r1} + ",
            $d,
            "]\n",
            "vfmadd231ps ymm0, ymm14, ymm12\n",
            "vfmadd231ps ymm1, ymm14, ymm13\n",
            "vbroadcastss ymm14, [{a} + {r1} * 2 + ",
            $d,
            "]\n",
            "vfmadd231ps ymm2, ymm15, ymm12\n",
            "vfmadd231ps ymm3, ymm15, ymm13\n",
            "vbroadcastss ymm15, [{a} + {r3} + ",
            $d,
            "]\n",
            "vfmadd231ps ymm4, ymm14, ymm12\n",
            "vfmadd231ps ymm5, ymm14, ymm13\n",
            "vbroadcastss ymm14, [{a} + {r1} * 4 + ",
            $d,
            "]\n",
            "vfmadd231ps ymm6, ymm15, ymm12\n",
            "vfmadd231ps ymm7, ymm15, ymm13\n",
            "vbroadcastss ymm15, [{a} + {r5} + ",
            $d,
            "]\n",
            "vfmadd231ps ymm8, ymm14, ymm12\n",
            "vfmadd231ps ymm9, ymm14, ymm13\n",
            "vfmadd231ps ymm10, ymm15, ymm12\n",
            "vfmadd231ps ymm11, ymm15, ymm13\n",
        )
    };
}

/// [`step_6x16_at`] at the pointers, then both panels move one step on
/// (A by `{as}` bytes, B by `{bs}`).
macro_rules! step_6x16 {
    () => {
        concat!(step_6x16_at!("", "0"), "add {a}, {as}\n", "add {b}, {bs}\n")
    };
}

// The three k loops, with this path's registers: 12 accumulators,
// two B vectors and two broadcasts.
k_loops!(
    "6 x 16", "avx2,fma", __m256, 12, step_6x16_at, step_6x16,
    [k_loop_6x16_cs1, k_loop_6x16_cs6, k_loop_6x16],
    [
        [
            "ymm0" => 0, "ymm1" => 1, "ymm2" => 2, "ymm3" => 3, "ymm4" => 4, "ymm5" => 5,
            "ymm6" => 6, "ymm7" => 7, "ymm8" => 8, "ymm9" => 9, "ymm10" => 10, "ymm11" => 11,
        ],
        ["ymm12", "ymm13", "ymm14", "ymm15"]
    ],
);
