//! AVX-512 path (x86_64, AVX-512F with FMA): lanes, blocking and entry point.

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
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV * 16,
        kc: 256,
        mc: 1024,
        nc: 1024,
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
}
