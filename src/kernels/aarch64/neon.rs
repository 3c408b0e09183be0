//! NEON (Advanced SIMD): [`Lanes`] on 4 × f32 (`float32x4_t`) and this ISA's
//! kernel table.
//!
//! NEON is part of the aarch64 baseline, so this module is compiled only under
//! `cfg(target_feature = "neon")` and needs no run-time detection and no
//! `#[target_feature]` wrappers: the generic bodies are called directly.
//! (The intrinsics are still `unsafe` to call from functions that do not list
//! the feature, hence the `intr!` blocks.)

use core::arch::aarch64::*;

use crate::kernels::Isa;
use crate::kernels::lanes::Lanes;
use crate::kernels::table::Kernels;

/// Capability token for NEON; always available on this target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon {
    _private: (),
}

impl Neon {
    /// The token (NEON is part of this target's baseline).
    #[inline(always)]
    pub(crate) const fn new() -> Neon {
        Neon { _private: () }
    }
}

/// Four floats from `p`, which needs only `f32`'s alignment.
///
/// On bare-metal targets (`target_os = "none"`) aarch64 is built with
/// `+strict-align` (with the MMU off, an unaligned access faults), and
/// `vld1q_f32`, an unaligned read of the vector type, compiles to sixteen
/// byte loads and the shifts that join them (QEMU's instruction count on
/// the boards: about 30 instructions a load). `ld1 {v.4s}` requires only
/// the elements' alignment, so it is emitted directly there. Elsewhere the
/// intrinsic (an `ldr q` the compiler can fold addresses into).
///
/// # Safety
/// `p .. p + 4` must be readable and `p` aligned for `f32`.
#[inline(always)]
pub(crate) unsafe fn ld1q(p: *const f32) -> float32x4_t {
    #[cfg(target_os = "none")]
    {
        let v;
        // SAFETY: reads the 16 bytes at `p` (readable, caller), 4-byte
        // aligned as `ld1` of 32-bit elements requires under strict
        // alignment; touches no other memory, the stack or the flags.
        unsafe {
            core::arch::asm!(
                "ld1 {{ {v:v}.4s }}, [{p}]",
                v = lateout(vreg) v,
                p = in(reg) p,
                options(pure, readonly, nostack, preserves_flags),
            )
        };
        v
    }
    #[cfg(not(target_os = "none"))]
    // SAFETY: `p .. p + 4` is readable (caller); NEON is baseline.
    unsafe {
        vld1q_f32(p)
    }
}

/// Stores four floats at `p` (aligned for `f32`), as [`ld1q`] loads them.
///
/// # Safety
/// `p .. p + 4` must be writable and `p` aligned for `f32`.
#[inline(always)]
pub(crate) unsafe fn st1q(p: *mut f32, v: float32x4_t) {
    #[cfg(target_os = "none")]
    // SAFETY: writes the 16 bytes at `p` (writable, caller), 4-byte aligned
    // as `st1` of 32-bit elements requires; nothing else.
    unsafe {
        core::arch::asm!(
            "st1 {{ {v:v}.4s }}, [{p}]",
            v = in(vreg) v,
            p = in(reg) p,
            options(nostack, preserves_flags),
        )
    };
    #[cfg(not(target_os = "none"))]
    // SAFETY: `p .. p + 4` is writable (caller); NEON is baseline.
    unsafe {
        vst1q_f32(p, v)
    }
}

/// Evaluates a NEON intrinsic that takes no pointers.
macro_rules! intr {
    ($e:expr) => {
        // SAFETY: this module is compiled only when the target enables NEON
        // (`cfg(target_feature = "neon")`), so every aarch64 CPU that runs this
        // binary has it.
        unsafe { $e }
    };
}

impl Lanes for Neon {
    type V = float32x4_t;
    type M = uint32x4_t;
    const LANES: usize = 4;
    const REGISTERS: usize = 32;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        intr!(vdupq_n_f32(x))
    }
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> float32x4_t {
        // SAFETY: `p .. p + 4` is readable (caller), aligned as `f32`.
        unsafe { ld1q(p) }
    }
    #[inline(always)]
    unsafe fn store_at(self, v: float32x4_t, p: *mut f32) {
        // SAFETY: `p .. p + 4` is writable (caller), aligned as `f32`.
        unsafe { st1q(p, v) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vaddq_f32(a, b))
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vsubq_f32(a, b))
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vmulq_f32(a, b))
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vdivq_f32(a, b))
    }
    #[inline(always)]
    fn fma(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        intr!(vfmaq_f32(c, a, b))
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // Not vminq (IEEE minimum): the trait pins `a < b ? a : b`.
        intr!(vbslq_f32(vcltq_f32(a, b), a, b))
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vbslq_f32(vcgtq_f32(a, b), a, b))
    }
    #[inline(always)]
    fn sqrt(self, a: float32x4_t) -> float32x4_t {
        intr!(vsqrtq_f32(a))
    }
    #[inline(always)]
    fn max_bits(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_s32(vmaxq_s32(
            vreinterpretq_s32_f32(a),
            vreinterpretq_s32_f32(b)
        )))
    }
    #[inline(always)]
    fn and(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_u32(vandq_u32(
            vreinterpretq_u32_f32(a),
            vreinterpretq_u32_f32(b)
        )))
    }
    #[inline(always)]
    fn or(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_u32(vorrq_u32(
            vreinterpretq_u32_f32(a),
            vreinterpretq_u32_f32(b)
        )))
    }
    #[inline(always)]
    fn xor(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_u32(veorq_u32(
            vreinterpretq_u32_f32(a),
            vreinterpretq_u32_f32(b)
        )))
    }
    #[inline(always)]
    fn andnot(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // vbic(b, a) = b & !a
        intr!(vreinterpretq_f32_u32(vbicq_u32(
            vreinterpretq_u32_f32(b),
            vreinterpretq_u32_f32(a)
        )))
    }
    #[inline(always)]
    fn abs(self, a: float32x4_t) -> float32x4_t {
        intr!(vabsq_f32(a))
    }
    #[inline(always)]
    fn neg(self, a: float32x4_t) -> float32x4_t {
        intr!(vnegq_f32(a))
    }
    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        intr!(vrndnq_f32(a))
    }
    #[inline(always)]
    fn floor(self, a: float32x4_t) -> float32x4_t {
        intr!(vrndmq_f32(a))
    }
    #[inline(always)]
    fn ceil(self, a: float32x4_t) -> float32x4_t {
        intr!(vrndpq_f32(a))
    }
    #[inline(always)]
    fn trunc(self, a: float32x4_t) -> float32x4_t {
        intr!(vrndq_f32(a))
    }
    #[inline(always)]
    fn eq(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        intr!(vceqq_f32(a, b))
    }
    #[inline(always)]
    fn ne(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        intr!(vmvnq_u32(vceqq_f32(a, b)))
    }
    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        intr!(vcltq_f32(a, b))
    }
    #[inline(always)]
    fn le(self, a: float32x4_t, b: float32x4_t) -> uint32x4_t {
        intr!(vcleq_f32(a, b))
    }
    #[inline(always)]
    fn mand(self, m: uint32x4_t, n: uint32x4_t) -> uint32x4_t {
        intr!(vandq_u32(m, n))
    }
    #[inline(always)]
    fn mor(self, m: uint32x4_t, n: uint32x4_t) -> uint32x4_t {
        intr!(vorrq_u32(m, n))
    }
    #[inline(always)]
    fn mnot(self, m: uint32x4_t) -> uint32x4_t {
        intr!(vmvnq_u32(m))
    }
    #[inline(always)]
    fn any(self, m: uint32x4_t) -> bool {
        intr!(vmaxvq_u32(m)) != 0
    }
    #[inline(always)]
    fn select(self, m: uint32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        intr!(vbslq_f32(m, a, b))
    }
    #[inline(always)]
    fn ldexp(self, p: float32x4_t, n: float32x4_t) -> float32x4_t {
        // Two exact power-of-two factors, each in the normal range, so the only
        // rounding is in the last product.
        let n1 = self.floor(self.mul(n, self.splat(0.5)));
        let n2 = self.sub(n, n1);
        self.mul(self.mul(p, pow2i(n1)), pow2i(n2))
    }
    #[inline(always)]
    fn pow2_shifted(self, k: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_u32(vshlq_n_u32::<23>(
            vreinterpretq_u32_f32(k)
        )))
    }
    #[inline(always)]
    fn eighth_index(self, k: float32x4_t) -> float32x4_t {
        // Byte indices for `vqtbl2q_u8`: entry j = bits & 7 is bytes 4j..4j+3.
        intr!(vreinterpretq_f32_u32(vmlaq_u32(
            vdupq_n_u32(0x0302_0100),
            vandq_u32(vreinterpretq_u32_f32(k), vdupq_n_u32(7)),
            vdupq_n_u32(0x0404_0404)
        )))
    }
    #[inline(always)]
    fn pow2_eighth(self, k: float32x4_t, t: float32x4_t) -> float32x4_t {
        intr!(vreinterpretq_f32_u32(vaddq_u32(
            vshlq_n_u32::<20>(vreinterpretq_u32_f32(k)),
            vreinterpretq_u32_f32(t)
        )))
    }
    #[inline(always)]
    fn octave_index(self, x: float32x4_t) -> float32x4_t {
        // Byte indices for `vqtbl2q_u8`: half-octave k selects bytes
        // 4k..4k+3 of the table, k = (bits >> 22) - 254 (exponent and first
        // mantissa bit, less those of 1.0), in wrapping arithmetic.
        intr!(vreinterpretq_f32_u32(vmlaq_u32(
            vdupq_n_u32(0x0302_0100u32.wrapping_sub(254u32.wrapping_mul(0x0404_0404))),
            vshrq_n_u32::<22>(vreinterpretq_u32_f32(x)),
            vdupq_n_u32(0x0404_0404)
        )))
    }
    #[inline(always)]
    fn pick(self, i: float32x4_t, t: &[f32; 8]) -> float32x4_t {
        // SAFETY: `t` holds 8 floats (32 bytes); NEON is baseline.
        let t = unsafe { vld1q_u8_x2(t.as_ptr().cast::<u8>()) };
        intr!(vreinterpretq_f32_u8(vqtbl2q_u8(t, vreinterpretq_u8_f32(i))))
    }
    #[inline(always)]
    fn frexp(self, x: float32x4_t) -> (float32x4_t, float32x4_t) {
        intr!({
            let bits = vreinterpretq_u32_f32(x);
            let e = vcvtq_f32_u32(vshrq_n_u32::<23>(bits));
            let m = vorrq_u32(
                vandq_u32(bits, vdupq_n_u32(0x807f_ffff)),
                vdupq_n_u32(0x3f00_0000),
            );
            (vreinterpretq_f32_u32(m), vsubq_f32(e, vdupq_n_f32(126.0)))
        })
    }
    #[inline(always)]
    fn hsum(self, v: float32x4_t) -> f32 {
        // [l0 + l1, l2 + l3, ..], then their sum: the tree of `Lanes::hsum`.
        intr!(vpadds_f32(vget_low_f32(vpaddq_f32(v, v))))
    }
    #[inline(always)]
    fn hmax(self, v: float32x4_t) -> f32 {
        intr!(vmaxvq_f32(v))
    }
    #[inline(always)]
    fn hmin(self, v: float32x4_t) -> f32 {
        intr!(vminvq_f32(v))
    }
}

/// `2^n` for integral `n` in `-126..=127`.
#[inline(always)]
fn pow2i(n: float32x4_t) -> float32x4_t {
    intr!(vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(
        vcvtnq_s32_f32(n),
        vdupq_n_s32(127)
    ))))
}

/// Builds a safe table entry that calls the generic body directly (NEON is
/// baseline: no `#[target_feature]` wrapper and no `unsafe` needed).
macro_rules! wrap {
    ($L:ty, ($($a:ident: $t:ty),*) $(-> $r:ty)?, $body:expr, [$($pre:expr),*]) => {{
        fn entry($($a: $t),*) $(-> $r)? {
            $body(<$L>::new(), $($pre,)* $($a),*)
        }
        entry as fn($($t),*) $(-> $r)?
    }};
}

/// The NEON kernel table; obtain it through `table_for(Isa::Neon)`.
pub(crate) static TABLE: Kernels = crate::kernels::table::simd_table!(Neon, Isa::Neon, wrap);
