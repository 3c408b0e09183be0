//! NEON path (aarch64, where Advanced SIMD is part of the baseline): lanes,
//! blocking and entry point.
//!
//! NEON is enabled for the whole crate on these targets (the module only
//! exists under `cfg(target_feature = "neon")`), so no `#[target_feature]`
//! wrapper is needed; the intrinsics still have to be called in `unsafe`.

use core::arch::aarch64::*;

use super::driver::{Arch, Blocking, Plan, Problem, run_task};
use super::kernel::unrolled;
use super::simd::Simd;
use crate::kernels::Isa;
use crate::kernels::aarch64::neon::{ld1q, st1q};

/// Capability token for the NEON path (always available on aarch64 builds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// The token.
    pub(crate) fn new() -> Option<Self> {
        Some(Neon(()))
    }
}

/// Micro-tile: `MR` rows by `NV` vectors of 4 columns (24 accumulators of the
/// 32 registers).
const MR: usize = 8;
const NV: usize = 3;

impl Arch for Neon {
    const ISA: Isa = Isa::Neon;
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV * 4,
        // Smaller blocks without `std` (bare-metal boards: small caches, a
        // fixed heap): scratch per call is then at most
        // (96 + 32 + 12 + 8) * 128 floats = 74 KiB (59 KiB unless A is
        // column-major and packed), against 788 KiB with `std`.
        kc: if cfg!(feature = "std") { 256 } else { 128 },
        mc: if cfg!(feature = "std") { 512 } else { 32 },
        nc: if cfg!(feature = "std") { 256 } else { 96 },
        pack_b_min: 8 * 1024,
        direct_b_max: 64 * 1024,
        fuse_b_max: 64 * 1024,
    };

    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
        run_task::<Neon, MR, NV>(self, p, plan, task, scratch)
    }
}

// SAFETY (every `unsafe` block in this impl that calls an intrinsic): NEON is
// enabled for the whole build (this module is compiled only under
// `cfg(target_feature = "neon")`); pointer requirements are forwarded from the
// caller as documented on `Simd`.
impl Simd for Neon {
    type V = float32x4_t;
    const W: usize = 4;

    #[inline(always)]
    fn zero(self) -> float32x4_t {
        // SAFETY: see the impl comment.
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: see the impl comment.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        // SAFETY: the caller guarantees `p .. p + 4` is readable.
        unsafe { ld1q(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        // SAFETY: the caller guarantees `p .. p + 4` is writable.
        unsafe { st1q(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> float32x4_t {
        let mut t = [0.0f32; 4];
        // SAFETY: the caller guarantees `p .. p + n` is readable, n <= 4.
        unsafe { core::ptr::copy_nonoverlapping(p, t.as_mut_ptr(), n) };
        // SAFETY: `t` has 4 values.
        unsafe { ld1q(t.as_ptr()) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: float32x4_t, n: usize) {
        let mut t = [0.0f32; 4];
        // SAFETY: `t` has room for 4 values.
        unsafe { st1q(t.as_mut_ptr(), v) };
        // SAFETY: the caller guarantees `p .. p + n` is writable, n <= 4.
        unsafe { core::ptr::copy_nonoverlapping(t.as_ptr(), p, n) };
    }
    #[inline(always)]
    unsafe fn transpose_block(
        self,
        src: *const f32,
        stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        // SAFETY: the caller guarantees the four source rows and the four
        // destination rows are readable / writable and disjoint.
        unsafe { transpose4(src, stride, dst, dst_stride) }
    }
    #[inline(always)]
    unsafe fn bcast(self, p: *const f32) -> float32x4_t {
        // SAFETY: the caller guarantees `p` is readable.
        unsafe { vld1q_dup_f32(p) }
    }
    #[inline(always)]
    unsafe fn accumulate_tuned<const R: usize, const N: usize>(
        self,
        acc: &mut [[float32x4_t; N]; R],
        kc: usize,
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        b: *const f32,
        b_rs: usize,
    ) -> bool {
        if R != MR || N != NV || a_rs != 1 {
            return false;
        }
        // SAFETY: R x N == 8 x 3, so the cast is to the same type; the panels
        // are readable as the caller guarantees.
        unsafe {
            k_loop_8x12(
                &mut *acc.as_mut_ptr().cast::<[[float32x4_t; 3]; 8]>(),
                kc,
                a,
                a_cs,
                b,
                b_rs,
            )
        };
        true
    }
    #[inline(always)]
    fn fma(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: see the impl comment.
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see the impl comment.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: see the impl comment.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn relu(self, v: float32x4_t) -> float32x4_t {
        // Keep NaN (unlike `vmaxq_f32`, which would be fine too, this also keeps
        // -0.0 as the scalar path does): select 0 where v < 0.
        // SAFETY: see the impl comment.
        unsafe { vbslq_f32(vcltzq_f32(v), vdupq_n_f32(0.0), v) }
    }
    #[inline(always)]
    fn hsum(self, v: float32x4_t) -> f32 {
        // SAFETY: see the impl comment.
        unsafe { vaddvq_f32(v) }
    }
}

/// `dst[t * dst_stride + c] = src[c * stride + t]` for `c, t < 4`: four
/// loads, two rounds of `trn` (32-bit, then 64-bit halves), four stores (the
/// default loop moves one float at a time: five instructions a value where
/// the boards' firmware does not unroll it).
///
/// # Safety
/// `src + c * stride .. + 4` readable and `dst + t * dst_stride .. + 4`
/// writable for `c, t < 4`, not overlapping.
#[inline(always)]
unsafe fn transpose4(src: *const f32, stride: usize, dst: *mut f32, dst_stride: usize) {
    // SAFETY: the rows are readable / writable (caller); NEON is enabled for
    // the whole build.
    unsafe {
        let r0 = ld1q(src);
        let r1 = ld1q(src.add(stride));
        let r2 = ld1q(src.add(2 * stride));
        let r3 = ld1q(src.add(3 * stride));
        // t0 = [r0[0], r1[0], r0[2], r1[2]], t1 = [r0[1], r1[1], r0[3], r1[3]],
        // t2, t3 likewise of r2 and r3; then row t of the result joins the
        // halves holding lane t of every r.
        let (t0, t1) = (
            vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)),
            vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)),
        );
        let (t2, t3) = (
            vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)),
            vreinterpretq_f64_f32(vtrn2q_f32(r2, r3)),
        );
        st1q(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
        st1q(
            dst.add(dst_stride),
            vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)),
        );
        st1q(
            dst.add(2 * dst_stride),
            vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)),
        );
        st1q(
            dst.add(3 * dst_stride),
            vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)),
        );
    }
}

/// The 8 x 12 k loop for an A panel whose 8 rows are adjacent (packed, or A
/// column-major): per step, the 8 A values are two vector loads and each FMA
/// takes its A value from a lane (`fmla v.4s, v.4s, v.s[l]`), instead of 8
/// broadcast loads. `acc[i][v] = fma(A[i, p], B[p, 4 v ..], acc[i][v])`, the
/// same operations in the same order as the generic loop.
///
/// # Safety
/// `A[i, p]` at `a + i + p * a_cs` for `i < 8`, `p < kc`, and `B[p, j]` at
/// `b + p * b_rs + j` for `j < 12` are readable.
#[inline(always)]
unsafe fn k_loop_8x12(
    acc: &mut [[float32x4_t; 3]; 8],
    kc: usize,
    a: *const f32,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
) {
    // A local with constant indices only (`unrolled!`): in registers for the
    // whole loop at every optimisation level.
    let mut c = *acc;
    macro_rules! row {
        ($i:literal, $src:ident, $lane:literal, $b:ident) => {
            unrolled!(v < 3, {
                c[$i][v] = vfmaq_laneq_f32::<$lane>(c[$i][v], $b[v], $src);
            });
        };
    }
    let (mut ap, mut bp) = (a, b);
    for _ in 0..kc {
        // SAFETY: step p of both panels is readable (caller); NEON is enabled
        // for the whole build.
        unsafe {
            let lo = ld1q(ap);
            let hi = ld1q(ap.add(4));
            let bv = [ld1q(bp), ld1q(bp.add(4)), ld1q(bp.add(8))];
            row!(0, lo, 0, bv);
            row!(1, lo, 1, bv);
            row!(2, lo, 2, bv);
            row!(3, lo, 3, bv);
            row!(4, hi, 0, bv);
            row!(5, hi, 1, bv);
            row!(6, hi, 2, bv);
            row!(7, hi, 3, bv);
        }
        ap = ap.wrapping_add(a_cs);
        bp = bp.wrapping_add(b_rs);
    }
    *acc = c;
}
