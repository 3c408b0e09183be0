//! AVX-512F + FMA: [`Lanes`] on 16 × f32 (`__m512`) and this ISA's kernel table.
//!
//! Only AVX-512F instructions are used (float bitwise logic goes through the
//! integer forms, since `vandps zmm` is AVX-512DQ). Tails use masked loads and
//! stores, which never touch the masked-off memory.

use core::arch::x86_64::*;

use crate::kernels::lanes::Lanes;
use crate::kernels::table::Kernels;
use crate::kernels::{Isa, is_supported};

/// Capability token for AVX-512F + FMA: a value exists only on a CPU that has both.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// The token, if this CPU (and build) supports AVX-512F and FMA.
    #[allow(dead_code)]
    pub(crate) fn try_new() -> Option<Avx512> {
        is_supported(Isa::Avx512).then_some(Avx512 { _private: () })
    }

    /// The token without checking.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and FMA.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx512 {
        Avx512 { _private: () }
    }
}

/// Evaluates an AVX-512F intrinsic that takes no pointers.
macro_rules! intr {
    ($e:expr) => {
        // SAFETY: these intrinsics only need the CPU features; a value of type
        // `Avx512` (`self` in every method below) exists only after
        // `is_supported(Isa::Avx512)` confirmed AVX-512F and FMA, or through
        // `new_unchecked`, whose caller promises it.
        unsafe { $e }
    };
}

/// Bitwise operation on the integer view of two float registers.
macro_rules! bitwise {
    ($op:ident, $a:expr, $b:expr) => {
        intr!(_mm512_castsi512_ps($op(
            _mm512_castps_si512($a),
            _mm512_castps_si512($b)
        )))
    };
}

/// `$op` over the lanes in the pairwise tree of [`Lanes::hsum`]: adjacent
/// lanes, then pairs of those, then 128-bit quarters, then halves; lane 0
/// holds the result at each level.
macro_rules! tree512 {
    ($v:expr, $op:ident) => {
        intr!({
            let v = $v;
            let v = $op(v, _mm512_permute_ps::<0b10_11_00_01>(v));
            let v = $op(v, _mm512_permute_ps::<0b01_00_11_10>(v));
            let v = $op(v, _mm512_shuffle_f32x4::<0b10_11_00_01>(v, v));
            let v = $op(v, _mm512_shuffle_f32x4::<0b01_00_11_10>(v, v));
            _mm512_cvtss_f32(v)
        })
    };
}

/// Mask of the low `n` lanes (`n <= 16`).
#[inline(always)]
fn low_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

impl Lanes for Avx512 {
    type V = __m512;
    type M = __mmask16;
    const LANES: usize = 16;
    const REGISTERS: usize = 32;
    const ONE_OP_LDEXP: bool = true;
    const STAGED: bool = false;

    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        intr!(_mm512_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> __m512 {
        // SAFETY: `p .. p + 16` is readable (caller); the load is unaligned;
        // AVX-512F is present (see `intr!`).
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store_at(self, v: __m512, p: *mut f32) {
        // SAFETY: `p .. p + 16` is writable (caller); unaligned store;
        // AVX-512F present.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn prefetch(self, s: &[f32]) {
        super::prefetch_lines(s)
    }
    #[inline(always)]
    fn load_partial(self, s: &[f32], fill: f32) -> __m512 {
        assert!(s.len() <= 16);
        // SAFETY: only the low `s.len()` lanes are read (masked-off lanes are
        // not accessed and cannot fault); AVX-512F present.
        unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), low_mask(s.len()), s.as_ptr()) }
    }
    #[inline(always)]
    fn store_partial(self, v: __m512, s: &mut [f32]) {
        assert!(s.len() <= 16);
        // SAFETY: only the low `s.len()` lanes are written; AVX-512F present.
        unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr(), low_mask(s.len()), v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_mul_ps(a, b))
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_div_ps(a, b))
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        intr!(_mm512_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // vminps returns the second operand on equality and on NaN.
        intr!(_mm512_min_ps(a, b))
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_max_ps(a, b))
    }
    #[inline(always)]
    fn sqrt(self, a: __m512) -> __m512 {
        intr!(_mm512_sqrt_ps(a))
    }
    #[inline(always)]
    fn max_bits(self, a: __m512, b: __m512) -> __m512 {
        bitwise!(_mm512_max_epi32, a, b)
    }
    #[inline(always)]
    fn and(self, a: __m512, b: __m512) -> __m512 {
        bitwise!(_mm512_and_si512, a, b)
    }
    #[inline(always)]
    fn or(self, a: __m512, b: __m512) -> __m512 {
        bitwise!(_mm512_or_si512, a, b)
    }
    #[inline(always)]
    fn xor(self, a: __m512, b: __m512) -> __m512 {
        bitwise!(_mm512_xor_si512, a, b)
    }
    #[inline(always)]
    fn andnot(self, a: __m512, b: __m512) -> __m512 {
        bitwise!(_mm512_andnot_si512, a, b)
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        intr!(_mm512_abs_ps(a))
    }
    // roundscale immediates: bit 3 suppresses exceptions, bits 1:0 pick the mode.
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        intr!(_mm512_roundscale_ps::<0x08>(a))
    }
    #[inline(always)]
    fn floor(self, a: __m512) -> __m512 {
        intr!(_mm512_roundscale_ps::<0x09>(a))
    }
    #[inline(always)]
    fn ceil(self, a: __m512) -> __m512 {
        intr!(_mm512_roundscale_ps::<0x0A>(a))
    }
    #[inline(always)]
    fn trunc(self, a: __m512) -> __m512 {
        intr!(_mm512_roundscale_ps::<0x0B>(a))
    }
    #[inline(always)]
    fn eq(self, a: __m512, b: __m512) -> __mmask16 {
        intr!(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b))
    }
    #[inline(always)]
    fn ne(self, a: __m512, b: __m512) -> __mmask16 {
        intr!(_mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, b))
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        intr!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    fn le(self, a: __m512, b: __m512) -> __mmask16 {
        intr!(_mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b))
    }
    #[inline(always)]
    fn mand(self, m: __mmask16, n: __mmask16) -> __mmask16 {
        m & n
    }
    #[inline(always)]
    fn mor(self, m: __mmask16, n: __mmask16) -> __mmask16 {
        m | n
    }
    #[inline(always)]
    fn mnot(self, m: __mmask16) -> __mmask16 {
        !m
    }
    #[inline(always)]
    fn any(self, m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    fn select(self, m: __mmask16, a: __m512, b: __m512) -> __m512 {
        intr!(_mm512_mask_blend_ps(m, b, a))
    }
    #[inline(always)]
    fn ldexp(self, p: __m512, n: __m512) -> __m512 {
        // vscalefps: p * 2^floor(n), one rounding, full range.
        intr!(_mm512_scalef_ps(p, n))
    }
    #[inline(always)]
    fn pow2_shifted(self, k: __m512) -> __m512 {
        intr!(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(
            _mm512_castps_si512(k)
        )))
    }
    #[inline(always)]
    fn eighth_index(self, k: __m512) -> __m512 {
        // vpermps reads the lowest four bits of each index lane, and `pick`
        // holds its table twice.
        k
    }
    #[inline(always)]
    fn pow2_eighth(self, k: __m512, t: __m512) -> __m512 {
        intr!(_mm512_castsi512_ps(_mm512_add_epi32(
            _mm512_slli_epi32::<20>(_mm512_castps_si512(k)),
            _mm512_castps_si512(t)
        )))
    }
    #[inline(always)]
    fn octave_index(self, x: __m512) -> __m512 {
        // Exponent and first mantissa bit, less those of 1.0.
        intr!(_mm512_castsi512_ps(_mm512_sub_epi32(
            _mm512_srli_epi32::<22>(_mm512_castps_si512(x)),
            _mm512_set1_epi32(254)
        )))
    }
    #[inline(always)]
    fn pick(self, i: __m512, t: &[f32; 8]) -> __m512 {
        // The table twice: an index reads `t[i mod 8]` (see `eighth_index`).
        let [a, b, c, d, e, f, g, h] = *t;
        intr!(_mm512_permutexvar_ps(
            _mm512_castps_si512(i),
            _mm512_setr_ps(a, b, c, d, e, f, g, h, a, b, c, d, e, f, g, h)
        ))
    }
    #[inline(always)]
    fn frexp(self, x: __m512) -> (__m512, __m512) {
        intr!({
            // getmant to [0.5, 1) keeping the sign of x; getexp = floor(log2 x).
            let m = _mm512_getmant_ps::<_MM_MANT_NORM_P5_1, _MM_MANT_SIGN_SRC>(x);
            let e = _mm512_add_ps(_mm512_getexp_ps(x), _mm512_set1_ps(1.0));
            (m, e)
        })
    }
    #[inline(always)]
    fn hsum(self, v: __m512) -> f32 {
        tree512!(v, _mm512_add_ps)
    }
    #[inline(always)]
    fn hmax(self, v: __m512) -> f32 {
        tree512!(v, _mm512_max_ps)
    }
    #[inline(always)]
    fn hmin(self, v: __m512) -> f32 {
        tree512!(v, _mm512_min_ps)
    }
}

/// Wraps a generic kernel body in an AVX-512F + FMA `#[target_feature]`
/// function and a safe entry point for the table.
macro_rules! wrap {
    ($L:ty, ($($a:ident: $t:ty),*) $(-> $r:ty)?, $body:expr, [$($pre:expr),*]) => {{
        #[target_feature(enable = "avx512f,fma")]
        fn imp(l: $L, $($a: $t),*) $(-> $r)? {
            $body(l, $($pre,)* $($a),*)
        }
        fn entry($($a: $t),*) $(-> $r)? {
            // SAFETY: `entry` is reachable only through `TABLE`, which
            // `table_for` hands out only after `is_supported(Isa::Avx512)`
            // confirmed AVX-512F and FMA.
            unsafe { imp(<$L>::new_unchecked(), $($a),*) }
        }
        entry as fn($($t),*) $(-> $r)?
    }};
}

/// The AVX-512 kernel table; obtain it through `table_for(Isa::Avx512)`.
pub(crate) static TABLE: Kernels = crate::kernels::table::simd_table!(Avx512, Isa::Avx512, wrap);
