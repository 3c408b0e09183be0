//! AVX2 + FMA: [`Lanes`] on 8 × f32 (`__m256`) and this ISA's kernel table.

use core::arch::x86_64::*;

use crate::kernels::lanes::Lanes;
use crate::kernels::table::Kernels;
use crate::kernels::{Isa, is_supported};

/// Capability token for AVX2 + FMA: a value exists only on a CPU that has both.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// The token, if this CPU (and build) supports AVX2 and FMA.
    #[allow(dead_code)]
    pub(crate) fn try_new() -> Option<Avx2> {
        is_supported(Isa::Avx2).then_some(Avx2 { _private: () })
    }

    /// The token without checking.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Avx2 {
        Avx2 { _private: () }
    }
}

/// Evaluates an AVX/AVX2/FMA intrinsic that takes no pointers.
macro_rules! intr {
    ($e:expr) => {
        // SAFETY: these intrinsics only need the CPU features; a value of type
        // `Avx2` (`self` in every method below) exists only after
        // `is_supported(Isa::Avx2)` confirmed AVX2 and FMA, or through
        // `new_unchecked`, whose caller promises it.
        unsafe { $e }
    };
}

/// `$op` over the lanes in the pairwise tree of [`Lanes::hsum`]: adjacent
/// lanes, then pairs of those, then the two halves (`$op1` on lane 0).
macro_rules! tree256 {
    ($v:expr, $op:ident, $op1:ident) => {
        intr!({
            let v = $v;
            let v = $op(v, _mm256_permute_ps::<0b10_11_00_01>(v));
            let v = $op(v, _mm256_permute_ps::<0b01_00_11_10>(v));
            _mm_cvtss_f32($op1(
                _mm256_castps256_ps128(v),
                _mm256_extractf128_ps::<1>(v),
            ))
        })
    };
}

/// Lanes `0..n` of a mask (`n <= 8`): all bits set there, clear elsewhere.
#[inline(always)]
fn low_lanes(_: Avx2, n: usize) -> __m256i {
    // SAFETY: AVX2 is present (an `Avx2` exists; see `intr!`).
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

impl Lanes for Avx2 {
    type V = __m256;
    type M = __m256;
    const LANES: usize = 8;
    const REGISTERS: usize = 16;

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        intr!(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load_at(self, p: *const f32) -> __m256 {
        // SAFETY: `p .. p + 8` is readable (caller); the load is unaligned;
        // AVX is present (see `intr!`).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store_at(self, v: __m256, p: *mut f32) {
        // SAFETY: `p .. p + 8` is writable (caller); unaligned store; AVX
        // present.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    fn load_partial(self, s: &[f32], fill: f32) -> __m256 {
        assert!(s.len() <= 8);
        let m = low_lanes(self, s.len());
        // SAFETY: only the low `s.len()` lanes (mask set) are read: VMASKMOVPS
        // does not access masked-off elements, so they cannot fault; AVX
        // present (see `intr!`).
        let v = unsafe { _mm256_maskload_ps(s.as_ptr(), m) };
        intr!(_mm256_blendv_ps(
            _mm256_set1_ps(fill),
            v,
            _mm256_castsi256_ps(m)
        ))
    }
    #[inline(always)]
    fn store_partial(self, v: __m256, s: &mut [f32]) {
        // Four, two and one lanes by plain stores: a masked store
        // (VMASKMOVPS to memory) is microcoded on AMD cores (over 40 uops on
        // Zen 4).
        let n = s.len();
        assert!(n <= 8);
        let mut p = s.as_mut_ptr();
        let mut x = intr!(_mm256_castps256_ps128(v));
        // SAFETY: each store writes within `s`: 4 at offset 0 when `n >= 4`,
        // then 2 and 1 at the running offset (which stays `<= n` minus their
        // size by the bits of `n`); `x` holds the next lanes; AVX present.
        unsafe {
            if n == 8 {
                return _mm256_storeu_ps(p, v);
            }
            if n & 4 != 0 {
                _mm_storeu_ps(p, x);
                x = _mm256_extractf128_ps::<1>(v);
                p = p.add(4);
            }
            if n & 2 != 0 {
                _mm_storel_epi64(p.cast::<__m128i>(), _mm_castps_si128(x));
                x = _mm_movehl_ps(x, x);
                p = p.add(2);
            }
            if n & 1 != 0 {
                _mm_store_ss(p, x);
            }
        }
    }
    #[inline(always)]
    fn prefetch(self, s: &[f32]) {
        super::prefetch_lines(s)
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_add_ps(a, b))
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_sub_ps(a, b))
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_mul_ps(a, b))
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_div_ps(a, b))
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        intr!(_mm256_fmadd_ps(a, b, c))
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // minps returns the second operand on equality and on NaN.
        intr!(_mm256_min_ps(a, b))
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_max_ps(a, b))
    }
    #[inline(always)]
    fn sqrt(self, a: __m256) -> __m256 {
        intr!(_mm256_sqrt_ps(a))
    }
    #[inline(always)]
    fn max_bits(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_castsi256_ps(_mm256_max_epi32(
            _mm256_castps_si256(a),
            _mm256_castps_si256(b)
        )))
    }
    #[inline(always)]
    fn and(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_and_ps(a, b))
    }
    #[inline(always)]
    fn or(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_or_ps(a, b))
    }
    #[inline(always)]
    fn xor(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_xor_ps(a, b))
    }
    #[inline(always)]
    fn andnot(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_andnot_ps(a, b))
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        intr!(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn floor(self, a: __m256) -> __m256 {
        intr!(_mm256_round_ps::<
            { _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn ceil(self, a: __m256) -> __m256 {
        intr!(_mm256_round_ps::<
            { _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC },
        >(a))
    }
    #[inline(always)]
    fn trunc(self, a: __m256) -> __m256 {
        intr!(_mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(a))
    }
    #[inline(always)]
    fn eq(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, b))
    }
    #[inline(always)]
    fn ne(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_cmp_ps::<_CMP_NEQ_UQ>(a, b))
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
    }
    #[inline(always)]
    fn le(self, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_cmp_ps::<_CMP_LE_OQ>(a, b))
    }
    #[inline(always)]
    fn mand(self, m: __m256, n: __m256) -> __m256 {
        intr!(_mm256_and_ps(m, n))
    }
    #[inline(always)]
    fn mor(self, m: __m256, n: __m256) -> __m256 {
        intr!(_mm256_or_ps(m, n))
    }
    #[inline(always)]
    fn mnot(self, m: __m256) -> __m256 {
        intr!(_mm256_xor_ps(m, _mm256_castsi256_ps(_mm256_set1_epi32(-1))))
    }
    #[inline(always)]
    fn any(self, m: __m256) -> bool {
        intr!(_mm256_movemask_ps(m)) != 0
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        intr!(_mm256_blendv_ps(b, a, m))
    }
    #[inline(always)]
    fn ldexp(self, p: __m256, n: __m256) -> __m256 {
        // When every `2^n` is a normal float (the common case: `exp` of
        // arguments within about +-87), one product of exact operands is
        // the correctly rounded result, subnormal or overflowing included.
        let normal = self.mand(
            self.ge(n, self.splat(-126.0)),
            self.le(n, self.splat(127.0)),
        );
        if intr!(_mm256_movemask_ps(normal)) == 0xff {
            return self.mul(p, pow2i(n));
        }
        // Otherwise two exact power-of-two factors, each in the normal range,
        // so the only rounding is in the last product.
        let n1 = self.floor(self.mul(n, self.splat(0.5)));
        let n2 = self.sub(n, n1);
        self.mul(self.mul(p, pow2i(n1)), pow2i(n2))
    }
    #[inline(always)]
    fn pow2_shifted(self, k: __m256) -> __m256 {
        intr!(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(
            _mm256_castps_si256(k)
        )))
    }
    #[inline(always)]
    fn eighth_index(self, k: __m256) -> __m256 {
        // vpermps reads the lowest three bits of each index lane.
        k
    }
    #[inline(always)]
    fn pow2_eighth(self, k: __m256, t: __m256) -> __m256 {
        intr!(_mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_slli_epi32::<20>(_mm256_castps_si256(k)),
            _mm256_castps_si256(t)
        )))
    }
    #[inline(always)]
    fn octave_index(self, x: __m256) -> __m256 {
        // Exponent and first mantissa bit, less those of 1.0.
        intr!(_mm256_castsi256_ps(_mm256_sub_epi32(
            _mm256_srli_epi32::<22>(_mm256_castps_si256(x)),
            _mm256_set1_epi32(254)
        )))
    }
    #[inline(always)]
    fn pick(self, i: __m256, t: &[f32; 8]) -> __m256 {
        // SAFETY: `t` holds 8 floats; unaligned load; AVX is present.
        let t = unsafe { _mm256_loadu_ps(t.as_ptr()) };
        intr!(_mm256_permutevar8x32_ps(t, _mm256_castps_si256(i)))
    }
    #[inline(always)]
    fn frexp(self, x: __m256) -> (__m256, __m256) {
        intr!({
            let bits = _mm256_castps_si256(x);
            let e = _mm256_cvtepi32_ps(_mm256_srli_epi32::<23>(bits));
            let m = _mm256_or_ps(
                _mm256_and_ps(
                    x,
                    _mm256_castsi256_ps(_mm256_set1_epi32(0x807f_ffff_u32 as i32)),
                ),
                _mm256_set1_ps(0.5),
            );
            (m, _mm256_sub_ps(e, _mm256_set1_ps(126.0)))
        })
    }
    #[inline(always)]
    fn hsum(self, v: __m256) -> f32 {
        tree256!(v, _mm256_add_ps, _mm_add_ss)
    }
    #[inline(always)]
    fn hmax(self, v: __m256) -> f32 {
        tree256!(v, _mm256_max_ps, _mm_max_ss)
    }
    #[inline(always)]
    fn hmin(self, v: __m256) -> f32 {
        tree256!(v, _mm256_min_ps, _mm_min_ss)
    }
}

/// `2^n` for integral `n` in `-126..=127`.
#[inline(always)]
fn pow2i(n: __m256) -> __m256 {
    intr!(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127))
    )))
}

/// Wraps a generic kernel body in an AVX2 + FMA `#[target_feature]` function
/// and a safe entry point for the table.
macro_rules! wrap {
    ($L:ty, ($($a:ident: $t:ty),*) $(-> $r:ty)?, $body:expr, [$($pre:expr),*]) => {{
        #[target_feature(enable = "avx2,fma")]
        fn imp(l: $L, $($a: $t),*) $(-> $r)? {
            $body(l, $($pre,)* $($a),*)
        }
        fn entry($($a: $t),*) $(-> $r)? {
            // SAFETY: `entry` is reachable only through `TABLE`, which
            // `table_for` hands out only after `is_supported(Isa::Avx2)`
            // confirmed AVX2 and FMA.
            unsafe { imp(<$L>::new_unchecked(), $($a),*) }
        }
        entry as fn($($t),*) $(-> $r)?
    }};
}

/// The AVX2 kernel table; obtain it through `table_for(Isa::Avx2)`.
pub(crate) static TABLE: Kernels = crate::kernels::table::simd_table!(Avx2, Isa::Avx2, wrap);
