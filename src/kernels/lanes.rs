//! The lane trait: the one seam between the algorithms and the instruction sets.
//!
//! Every vector algorithm in `generic/` is written once over [`Lanes`]; an ISA
//! file (`x86/avx2.rs`, `x86/avx512.rs`, `aarch64/neon.rs`) implements the trait
//! on its capability token and instantiates the algorithms inside
//! `#[target_feature]` wrappers.
//!
//! All methods are `#[inline(always)]` and carry no `#[target_feature]` of their
//! own: they are inlined into the caller's `#[target_feature]` function, where
//! the intrinsics they call can be inlined in turn. A method that was *not*
//! inlined into such a function would call the intrinsics out of line, which is
//! slow but still correct, because the token proves the CPU has the feature.
//!
//! Semantics are pinned down here so that every ISA gives bit-identical results
//! for the same sequence of operations:
//! - `min(a, b)` is `if a < b { a } else { b }` and `max(a, b)` is
//!   `if a > b { a } else { b }` (the second operand wins on equality and on NaN,
//!   as x86 `minps`/`maxps` do). NaN-propagating and sign-of-zero-aware forms
//!   are built on top in `generic`.
//! - `fma(a, b, c)` is `a * b + c` with one rounding.
//! - comparisons are IEEE: every ordered comparison with a NaN is false, `ne`
//!   is true.
//! - `round` rounds half to even.

/// A SIMD register of `f32` lanes plus the operations the kernels need.
///
/// The implementing type is also the capability token of its ISA: a value of
/// it exists only once the CPU is known to support the instructions.
/// `1.5 * 2^23 + 127`: for `|v| < 2^21`, `v + SHIFT_127` rounds `v` to the
/// nearest integer `n` (ties to even) and holds `n + 127` in its low bits, so
/// [`Lanes::pow2_shifted`] turns it into `2^n` with one shift.
pub(crate) const SHIFT_127: f32 = 12_583_039.0;
/// `1.5 * 2^23 + 8 * 127`: for `|v| < 2^21`, `v + SHIFT_E` rounds `v` to the
/// nearest integer `N = 8n + j` (`j` in `0..8`) and holds `N + 1016` in its
/// low bits: `j` in the lowest three (see [`Lanes::eighth_index`]) and
/// `n + 127` above them (see [`Lanes::pow2_eighth`]).
pub(crate) const SHIFT_E: f32 = 12_583_928.0;

pub(crate) trait Lanes: Copy {
    /// A register of `LANES` floats.
    type V: Copy;
    /// The result of a lane-wise comparison.
    type M: Copy;
    /// Floats per register (at most 16).
    const LANES: usize;
    /// Architectural vector registers (a loop keeping more values live than
    /// this spills).
    const REGISTERS: usize;
    /// [`ldexp`](Lanes::ldexp) is one instruction (AVX-512's `vscalefps`):
    /// callers that know `2^n` is usually a normal float test that and
    /// multiply by it only where `ldexp` takes several operations.
    const ONE_OP_LDEXP: bool = false;
    /// [`map_staged`](crate::kernels::generic::map_staged) splits its
    /// function into two passes per chunk (see
    /// [`VStaged`](crate::kernels::generic::VStaged) for the measurements);
    /// `false`: one pass, as `map`.
    const STAGED: bool = true;

    /// Every lane set to `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Loads `LANES` values from `p` (aligned for `f32`, no more).
    ///
    /// # Safety
    /// `p .. p + LANES` must be readable.
    unsafe fn load_at(self, p: *const f32) -> Self::V;
    /// Stores `LANES` values at `p` (aligned for `f32`, no more).
    ///
    /// # Safety
    /// `p .. p + LANES` must be writable.
    unsafe fn store_at(self, v: Self::V, p: *mut f32);
    /// Loads `s[..LANES]`. Panics if `s` is shorter.
    #[inline(always)]
    fn load(self, s: &[f32]) -> Self::V {
        let s = &s[..Self::LANES];
        // SAFETY: `s` holds LANES floats (the slice above panics otherwise).
        unsafe { self.load_at(s.as_ptr()) }
    }
    /// Stores into `s[..LANES]`. Panics if `s` is shorter.
    #[inline(always)]
    fn store(self, v: Self::V, s: &mut [f32]) {
        let s = &mut s[..Self::LANES];
        // SAFETY: `s` holds LANES writable floats.
        unsafe { self.store_at(v, s.as_mut_ptr()) }
    }

    /// Loads `s` (at most `LANES` elements) into the low lanes; the other lanes
    /// are `fill`.
    #[inline(always)]
    fn load_partial(self, s: &[f32], fill: f32) -> Self::V {
        let mut buf = [fill; 16];
        buf[..s.len()].copy_from_slice(s);
        self.load(&buf[..Self::LANES])
    }

    /// Asks the cache to fetch the lines holding `s` ahead of their use (no
    /// effect on results; a no-op where the path has no prefetch).
    #[inline(always)]
    fn prefetch(self, s: &[f32]) {
        let _ = s;
    }

    /// Stores the low `s.len()` lanes (at most `LANES`) into `s`.
    #[inline(always)]
    fn store_partial(self, v: Self::V, s: &mut [f32]) {
        let mut buf = [0.0f32; 16];
        self.store(v, &mut buf[..Self::LANES]);
        let n = s.len();
        s.copy_from_slice(&buf[..n]);
    }

    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, rounded once.
    fn fma(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `if a < b { a } else { b }`.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }`.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Correctly rounded square root.
    fn sqrt(self, a: Self::V) -> Self::V;

    /// Bitwise `a & b`.
    fn and(self, a: Self::V, b: Self::V) -> Self::V;
    /// Bitwise `a | b`.
    fn or(self, a: Self::V, b: Self::V) -> Self::V;
    /// Bitwise `a ^ b`.
    fn xor(self, a: Self::V, b: Self::V) -> Self::V;
    /// Bitwise `!a & b`.
    fn andnot(self, a: Self::V, b: Self::V) -> Self::V;
    /// The larger bit pattern per lane, both read as signed 32-bit integers.
    /// On non-negative floats (sign bit clear) that is the larger value, and
    /// a NaN is larger than infinity: a running `max_bits` of `|x|` over a
    /// block is NaN-sticky, where the float `max` is not.
    fn max_bits(self, a: Self::V, b: Self::V) -> Self::V;

    /// `|a|` (clears the sign bit).
    #[inline(always)]
    fn abs(self, a: Self::V) -> Self::V {
        self.andnot(self.splat(-0.0), a)
    }
    /// `-a` (flips the sign bit).
    #[inline(always)]
    fn neg(self, a: Self::V) -> Self::V {
        self.xor(self.splat(-0.0), a)
    }
    /// The sign bit of `a` alone (`-0.0` or `+0.0` per lane).
    #[inline(always)]
    fn sign_bit(self, a: Self::V) -> Self::V {
        self.and(self.splat(-0.0), a)
    }

    /// Round to nearest, ties to even.
    fn round(self, a: Self::V) -> Self::V;
    /// Round toward minus infinity.
    fn floor(self, a: Self::V) -> Self::V;
    /// Round toward plus infinity.
    fn ceil(self, a: Self::V) -> Self::V;
    /// Round toward zero.
    fn trunc(self, a: Self::V) -> Self::V;

    /// `a == b`.
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a != b` (true when either is NaN).
    fn ne(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a < b`.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a <= b`.
    fn le(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a > b`.
    #[inline(always)]
    fn gt(self, a: Self::V, b: Self::V) -> Self::M {
        self.lt(b, a)
    }
    /// `a >= b`.
    #[inline(always)]
    fn ge(self, a: Self::V, b: Self::V) -> Self::M {
        self.le(b, a)
    }
    /// `a` is NaN.
    #[inline(always)]
    fn is_nan(self, a: Self::V) -> Self::M {
        self.ne(a, a)
    }

    /// Lane-wise `m & n`.
    fn mand(self, m: Self::M, n: Self::M) -> Self::M;
    /// Lane-wise `m | n`.
    fn mor(self, m: Self::M, n: Self::M) -> Self::M;
    /// Lane-wise `!m`.
    fn mnot(self, m: Self::M) -> Self::M;
    /// Whether any lane of `m` is set.
    fn any(self, m: Self::M) -> bool;
    /// Per lane: `if m { a } else { b }`.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;

    /// `p * 2^n` rounded once, for integral `n` in `-252..=252` and `|p|` in
    /// `[2^-20, 2^20]` (or any `p` when `n = 0`; zeros, infinities and NaN pass
    /// through): results in the subnormal range are correctly rounded and
    /// overflow gives infinity.
    fn ldexp(self, p: Self::V, n: Self::V) -> Self::V;
    /// `2^n` from `k = SHIFT_127 + n` (as `exp` rounds to an integer: see
    /// [`SHIFT_127`]) for integral `n` in `-126..=127`: the low bits of `k`
    /// moved into the exponent field. Other `k` give unspecified lanes.
    fn pow2_shifted(self, k: Self::V) -> Self::V;
    /// Table index for [`pick`](Lanes::pick) from the lowest three bits of
    /// `k`'s bit pattern (`j = N mod 8` for `k = SHIFT_E + N`, see
    /// [`SHIFT_E`]). The representation is the ISA's own: use the result only
    /// with `pick`.
    fn eighth_index(self, k: Self::V) -> Self::V;
    /// Per lane, as integers: the bit pattern of `t` plus that of `k`
    /// shifted left by 20 (wrapping). For `k = SHIFT_E + 8n + j` with `n` in
    /// `-127..=128` the shifted bits are `(n + 127) << 23 | j << 20`, so a
    /// `t` that is the bit pattern of `x` less `127 << 23 | j << 20` gives
    /// `x * 2^n` (where that is normal).
    fn pow2_eighth(self, k: Self::V, t: Self::V) -> Self::V;
    /// Table index for [`pick`](Lanes::pick) of the half-octave holding `x`,
    /// for `x` in `[1, 16)`: `2 floor(log2 x)`, plus 1 in the upper half of
    /// the octave (`[1, 1.5)` gives 0, `[1.5, 2)` 1, `[2, 3)` 2, ...,
    /// `[12, 16)` 7), read from the exponent and first mantissa bit. Other `x`
    /// give unspecified indices. The representation is the ISA's own: use
    /// the result only with `pick`.
    fn octave_index(self, x: Self::V) -> Self::V;
    /// Per lane `t[i]`, for indices `i` made by
    /// [`octave_index`](Lanes::octave_index) or
    /// [`eighth_index`](Lanes::eighth_index): one permute per register where
    /// a chain of selects would take seven.
    fn pick(self, i: Self::V, t: &[f32; 8]) -> Self::V;
    /// For positive normal `x`: `(m, e)` with `x = m * 2^e`, `m` in `[0.5, 1)`
    /// and `e` integral. Other inputs give unspecified lanes.
    fn frexp(self, x: Self::V) -> (Self::V, Self::V);

    /// Spills `v` to an array (lanes `LANES..16` are zero).
    #[inline(always)]
    fn to_array(self, v: Self::V) -> [f32; 16] {
        let mut buf = [0.0f32; 16];
        self.store(v, &mut buf[..Self::LANES]);
        buf
    }

    /// Sum of the lanes, in a fixed order: a pairwise tree over lane indices
    /// (`(l0 + l1) + (l2 + l3)` for four lanes, recursively for more).
    #[inline(always)]
    fn hsum(self, v: Self::V) -> f32 {
        let mut b = self.to_array(v);
        let mut n = Self::LANES;
        while n > 1 {
            n /= 2;
            for i in 0..n {
                b[i] = b[2 * i] + b[2 * i + 1];
            }
        }
        b[0]
    }

    /// Largest lane, combined in any order (a NaN lane may or may not make
    /// the result NaN).
    #[inline(always)]
    fn hmax(self, v: Self::V) -> f32 {
        let b = self.to_array(v);
        b[1..Self::LANES]
            .iter()
            .fold(b[0], |m, &x| if x > m { x } else { m })
    }

    /// Smallest lane, as [`hmax`](Lanes::hmax).
    #[inline(always)]
    fn hmin(self, v: Self::V) -> f32 {
        let b = self.to_array(v);
        b[1..Self::LANES]
            .iter()
            .fold(b[0], |m, &x| if x < m { x } else { m })
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::{Lanes, SHIFT_E};

    /// The pairwise tree [`Lanes::hsum`] documents, on a plain array.
    fn tree_sum(v: &[f32]) -> f32 {
        if v.len() == 1 {
            return v[0];
        }
        let (a, b) = v.split_at(v.len() / 2);
        tree_sum(a) + tree_sum(b)
    }

    /// The ISA's horizontal reductions equal the documented tree (`hsum`, bit
    /// for bit: values of mixed magnitude make every other order differ) and
    /// the extremes of the lanes; and its other lane helpers (`max_bits`,
    /// `pick`, partial loads and stores) behave as documented.
    fn check<L: Lanes>(l: L) {
        let mut s = 0x2545_f491_4f6c_dd1d_u64;
        let mut differs = false;
        for _ in 0..2000 {
            let mut a = [0.0f32; 16];
            for x in &mut a[..L::LANES] {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let m = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                *x = m * [1.0, 1e4, 1e8][(s % 3) as usize];
            }
            let a = &a[..L::LANES];
            let v = l.load(a);
            assert_eq!(l.hsum(v).to_bits(), tree_sum(a).to_bits(), "{a:?}");
            let left = a.iter().fold(0.0, |acc, &x| acc + x);
            differs |= left.to_bits() != tree_sum(a).to_bits();
            let max = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let min = a.iter().copied().fold(f32::INFINITY, f32::min);
            assert_eq!(l.hmax(v), max, "{a:?}");
            assert_eq!(l.hmin(v), min, "{a:?}");
        }
        assert!(differs, "the inputs never tell the orders apart");
        check_max_bits(l);
        check_pick(l);
        check_eighths(l);
        check_partial(l);
    }

    /// For every `N = 8n + j` with `2^n` normal (`n` in `-126..=127`), lanes
    /// apart: `eighth_index` of `SHIFT_E + N` picks table entry `j`, and
    /// `pow2_eighth` with entry `j` holding `x` less `127 << 23 | j << 20`
    /// gives `x * 2^n` exactly.
    fn check_eighths<L: Lanes>(l: L) {
        // Entries of several mantissas, and one (2.0) of the next exponent.
        let x: [f32; 8] = core::array::from_fn(|j| 1.0 + j as f32 / 7.0);
        let t: [f32; 8] = core::array::from_fn(|j| {
            f32::from_bits(x[j].to_bits().wrapping_sub(127 << 23 | (j as u32) << 20))
        });
        let mut big = -8 * 126;
        while big <= 8 * 127 + 7 {
            let ns: [i32; 16] = core::array::from_fn(|i| (big + i as i32).min(8 * 127 + 7));
            let k: [f32; 16] = core::array::from_fn(|i| SHIFT_E + ns[i] as f32);
            let kv = l.load(&k[..L::LANES]);
            let i = l.eighth_index(kv);
            let got = l.to_array(l.pow2_eighth(kv, l.pick(i, &t)));
            let entry = l.to_array(l.pick(i, &x));
            for lane in 0..L::LANES {
                let (n, j) = (ns[lane].div_euclid(8), ns[lane].rem_euclid(8) as usize);
                assert_eq!(
                    entry[lane].to_bits(),
                    x[j].to_bits(),
                    "pick, N = {}",
                    ns[lane]
                );
                let want = x[j] * libm::exp2f(n as f32);
                assert_eq!(
                    got[lane].to_bits(),
                    want.to_bits(),
                    "pow2_eighth, N = {}",
                    ns[lane]
                );
            }
            big += L::LANES as i32;
        }
    }

    /// `load_partial` of `n` elements gives them in the low lanes and `fill`
    /// above; `store_partial` writes exactly the low `n` lanes, for every `n`
    /// up to a register.
    fn check_partial<L: Lanes>(l: L) {
        let src: [f32; 16] = core::array::from_fn(|i| i as f32 + 0.5);
        let v = l.load(&src[..L::LANES]);
        for n in 0..=L::LANES {
            let got = l.to_array(l.load_partial(&src[..n], -7.0));
            for (i, g) in got[..L::LANES].iter().enumerate() {
                let want = if i < n { src[i] } else { -7.0 };
                assert_eq!(g.to_bits(), want.to_bits(), "load_partial of {n}: lane {i}");
            }
            let mut buf = [f32::NAN; 17];
            l.store_partial(v, &mut buf[..n]);
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(
                    b.is_nan(),
                    i >= n,
                    "store_partial of {n}: element {i} is {b}"
                );
                if i < n {
                    assert_eq!(*b, src[i], "store_partial of {n}: element {i}");
                }
            }
        }
    }

    /// `pick` returns the table entry of each lane's half-octave, lanes
    /// apart, at both ends of every half-octave.
    fn check_pick<L: Lanes>(l: L) {
        let mut t = [0.0f32; 8];
        for (k, v) in t.iter_mut().enumerate() {
            *v = (k as f32 - 3.5) * 1.25e-3;
        }
        t[3] = f32::NAN;
        t[6] = -3.0e-20;
        let lower =
            |k: usize| (1u32 << (k / 2)) as f32 * if k.is_multiple_of(2) { 1.0 } else { 1.5 };
        for start in 0..8 {
            let mut x = [0.0f32; 16];
            let mut want = [0usize; 16];
            for (j, v) in x.iter_mut().enumerate() {
                let k = (start + j * 3) % 8;
                // The lowest and the highest value of half-octave k.
                let hi = if k == 7 { 16.0 } else { lower(k + 1) };
                *v = if j.is_multiple_of(2) {
                    lower(k)
                } else {
                    f32::from_bits(hi.to_bits() - 1)
                };
                want[j] = k;
            }
            let x = &x[..L::LANES];
            let got = l.to_array(l.pick(l.octave_index(l.load(x)), &t));
            for (j, &k) in want[..L::LANES].iter().enumerate() {
                assert_eq!(got[j].to_bits(), t[k].to_bits(), "lane {j} of {x:?}");
            }
        }
    }

    /// `max_bits` of magnitudes is the larger magnitude lane by lane, with
    /// NaN above infinity whichever side it is on.
    fn check_max_bits<L: Lanes>(l: L) {
        let vals = [
            0.0,
            1e-40,
            0.5,
            87.0,
            87.00001,
            3e38,
            f32::INFINITY,
            f32::NAN,
        ];
        for &x in &vals {
            for &y in &vals {
                let (a, b) = ([x; 16], [-y; 16]);
                let m = l.max_bits(l.abs(l.load(&a)), l.abs(l.load(&b)));
                let want = if x.is_nan() || y.is_nan() {
                    f32::NAN
                } else {
                    x.max(y)
                };
                let got = l.to_array(m);
                for g in &got[..L::LANES] {
                    assert_eq!(g.to_bits(), want.to_bits(), "max_bits(|{x}|, |-{y}|)");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_horizontal_reductions_follow_the_tree() {
        use crate::kernels::x86::{avx2::Avx2, avx512::Avx512};
        if let Some(l) = Avx2::try_new() {
            check(l);
        }
        if let Some(l) = Avx512::try_new() {
            check(l);
        }
    }

    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    #[test]
    fn neon_horizontal_reductions_follow_the_tree() {
        check(crate::kernels::aarch64::neon::Neon::new());
    }
}
