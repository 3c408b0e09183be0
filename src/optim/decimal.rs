//! The shortest decimal reading of an f32 as the nearest f64 (`0.9f32` ->
//! `0.9f64`), in exact integer arithmetic: the same value as formatting with
//! `{:e}` and parsing the text as f64, without core's float formatting and
//! parsing code (about 20 KB, which a microcontroller's flash pays for:
//! boards/cortex-m4).
//!
//! 1. The shortest decimal `c · 10^q` in the interval of reals that round to
//!    `x` (ends included when `x`'s significand is even), the one closest to
//!    `x` if two of that length are in it (ties up), as core's `flt2dec`
//!    chooses it;
//! 2. `c · 10^q` rounded to the nearest f64 (ties to even).
//!
//! All comparisons are between integers of at most 320 bits ([`Big`]).

use core::cmp::Ordering;

/// Unsigned integer of 320 bits, little-endian 32-bit limbs. The callers'
/// values stay below 2^240 (see [`shortest_to_f64`]); overflow is a bug and
/// checked in debug builds.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Big([u32; 10]);

impl Big {
    fn new(v: u64) -> Big {
        let mut b = [0; 10];
        b[0] = v as u32;
        b[1] = (v >> 32) as u32;
        Big(b)
    }

    fn mul_small(mut self, k: u32) -> Big {
        let mut carry = 0u64;
        for l in &mut self.0 {
            let t = u64::from(*l) * u64::from(k) + carry;
            *l = t as u32;
            carry = t >> 32;
        }
        debug_assert_eq!(carry, 0, "Big overflow");
        self
    }

    /// `self · 10^n`.
    fn mul_pow10(mut self, mut n: u32) -> Big {
        while n >= 9 {
            self = self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(n))
    }

    /// `self · 2^n`.
    fn shl(self, n: u32) -> Big {
        let (words, bits) = ((n / 32) as usize, n % 32);
        let mut out = [0u32; 10];
        for i in (words..10).rev() {
            let mut v = self.0[i - words] << bits;
            if bits > 0 && i > words {
                v |= self.0[i - words - 1] >> (32 - bits);
            }
            out[i] = v;
        }
        debug_assert!(self.bits() == 0 || self.bits() + n <= 320, "Big overflow");
        Big(out)
    }

    /// `self - o`, for `self >= o`.
    fn sub(mut self, o: &Big) -> Big {
        let mut borrow = 0i64;
        for (l, r) in self.0.iter_mut().zip(o.0) {
            let t = i64::from(*l) - i64::from(r) - borrow;
            *l = t as u32;
            borrow = i64::from(t < 0);
        }
        debug_assert_eq!(borrow, 0, "Big underflow");
        self
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0.iter().rev().cmp(o.0.iter().rev())
    }

    /// Bit length (0 for zero).
    fn bits(&self) -> u32 {
        match self.0.iter().rposition(|&l| l != 0) {
            Some(i) => 32 * i as u32 + (32 - self.0[i].leading_zeros()),
            None => 0,
        }
    }

    /// `(self / d, self % d)` for a quotient below 2^(top + 1).
    fn div_small_quotient(mut self, d: &Big, top: u32) -> (u64, Big) {
        let mut q = 0u64;
        // No quotient bit above the bit-length difference.
        let top = top.min(self.bits().saturating_sub(d.bits()));
        for bit in (0..=top).rev() {
            let t = d.shl(bit);
            if t.cmp(&self) != Ordering::Greater {
                self = self.sub(&t);
                q |= 1 << bit;
            }
        }
        (q, self)
    }
}

/// `c · 10^q` against `v · 2^b`.
fn cmp_scaled(c: u64, q: i32, v: u64, b: i32) -> Ordering {
    let l = Big::new(c)
        .mul_pow10(q.max(0) as u32)
        .shl((-b).max(0) as u32);
    let r = Big::new(v)
        .mul_pow10((-q).max(0) as u32)
        .shl(b.max(0) as u32);
    l.cmp(&r)
}

/// `floor(v · 2^b / 10^q)`, for a result below 2^40.
fn floor_div(v: u64, b: i32, q: i32) -> u64 {
    let num = Big::new(v)
        .mul_pow10((-q).max(0) as u32)
        .shl(b.max(0) as u32);
    let den = Big::new(1)
        .mul_pow10(q.max(0) as u32)
        .shl((-b).max(0) as u32);
    num.div_small_quotient(&den, 40).0
}

/// The shortest decimal `(c, q)`, `c · 10^q`, that reads back as the
/// positive finite f32 `x`.
fn shortest(x: f32) -> (u64, i32) {
    let bits = x.to_bits();
    let (exp, frac) = ((bits >> 23) & 0xff, u64::from(bits & 0x7f_ffff));
    let (m, e2) = if exp == 0 {
        (frac, -149)
    } else {
        (frac | 1 << 23, exp as i32 - 150)
    };
    // In units of 2^(e2 - 2): x = 4m, the interval [lo, hi] around it
    // (narrower below a power of two, where the spacing halves).
    let b = e2 - 2;
    let (xs, hi) = (4 * m, 4 * m + 2);
    let lo = if frac == 0 && exp > 1 {
        4 * m - 1
    } else {
        4 * m - 2
    };
    let inclusive = m % 2 == 0;
    let inside_lo = |c: u64, q: i32| match cmp_scaled(c, q, lo, b) {
        Ordering::Greater => true,
        Ordering::Equal => inclusive,
        Ordering::Less => false,
    };
    let inside_hi = |c: u64, q: i32| match cmp_scaled(c, q, hi, b) {
        Ordering::Less => true,
        Ordering::Equal => inclusive,
        Ordering::Greater => false,
    };
    // Above x's decimal exponent: log10(x) < (e2 + bits(m)) · log10(2).
    let mut q = (e2 + 64 - m.leading_zeros() as i32) * 1233 / 4096 + 1;
    // An f32 needs at most 9 significant digits; the loop stops well before.
    for _ in 0..64 {
        let c = floor_div(xs, b, q);
        let (down, up) = (c > 0 && inside_lo(c, q), inside_hi(c + 1, q));
        match (down, up) {
            (true, true) => {
                // The closer one; on a tie, up. 2x against (2c + 1) · 10^q.
                return match cmp_scaled(2 * c + 1, q, 2 * xs, b) {
                    Ordering::Greater => (c, q),
                    _ => (c + 1, q),
                };
            }
            (true, false) => return (c, q),
            (false, true) => return (c + 1, q),
            (false, false) => q -= 1,
        }
    }
    unreachable!("every f32 has a decimal of at most 9 digits")
}

/// `c · 10^q` rounded to the nearest f64 (ties to even), for `c < 2^40`
/// and the exponents of f32 values (`-55 <= q <= 39`, the value below 2^128).
fn to_f64(c: u64, q: i32) -> f64 {
    if q >= 0 {
        // Below 2^128: an integer; the conversion rounds to nearest even.
        let v = 10u128
            .checked_pow(q as u32)
            .and_then(|p| p.checked_mul(u128::from(c)));
        debug_assert!(v.is_some(), "{c}e{q} is beyond f32's range");
        return v.map_or(f64::INFINITY, |v| v as f64);
    }
    let den = Big::new(1).mul_pow10((-q) as u32);
    let num = Big::new(c);
    // c · 2^s / 10^-q in [2^53, 2^54): 53 significand bits and a round bit;
    // the remainder is the sticky bit.
    let mut s = 54 + den.bits() as i32 - num.bits() as i32;
    loop {
        let (quot, rem) = num.shl(s as u32).div_small_quotient(&den, 56);
        if quot >= 1 << 54 {
            s -= 1;
        } else if quot < 1 << 53 {
            s += 1;
        } else {
            let mut mant = quot >> 1;
            let sticky = rem.bits() != 0;
            if quot & 1 == 1 && (sticky || mant & 1 == 1) {
                mant += 1;
            }
            // mant · 2^(1 - s), exact: mant <= 2^53 and 2^(1 - s) is a
            // normal f64 for every f32 value.
            let scale = f64::from_bits(((1023 + 1 - s) as u64) << 52);
            return mant as f64 * scale;
        }
    }
}

/// The shortest decimal reading of `x` as f64: the value `{x:e}` parsed as
/// f64 gives (non-finite values and zeros convert directly).
pub(crate) fn shortest_to_f64(x: f32) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x as f64;
    }
    let (c, q) = shortest(x.abs());
    let v = to_f64(c, q);
    if x < 0.0 { -v } else { v }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    /// The definition: format shortest, parse.
    fn reference(x: f32) -> f64 {
        if !x.is_finite() {
            return x as f64;
        }
        std::format!("{x:e}").parse::<f64>().unwrap()
    }

    fn check(x: f32) {
        let got = shortest_to_f64(x);
        let want = reference(x);
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{x:e} ({:#x}): got {got:e}, want {want:e}",
            x.to_bits()
        );
    }

    #[test]
    fn edge_values() {
        for x in [
            0.0,
            -0.0,
            1.0,
            0.1,
            0.9,
            0.999,
            1e-8,
            1e-3,
            -3.25,
            f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            f32::from_bits(0x0080_0000),
            f32::from_bits(0x7f7f_fffe),
            16_777_216.0,
            16_777_217.0,
            1e10,
            3e38,
            1e-45,
            123_456_790.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            check(x);
        }
        for e in -45..=38 {
            let x: f32 = std::format!("1e{e}").parse().unwrap();
            check(x);
            check(f32::from_bits(x.to_bits() + 1));
            check(f32::from_bits(x.to_bits() - 1));
        }
        assert_eq!(shortest_to_f64(0.9), 0.9);
        assert_eq!(shortest_to_f64(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn powers_of_two_and_neighbours() {
        // The interval is asymmetric below a power of two.
        for exp in 1..255u32 {
            let p = exp << 23;
            for bits in [p, p + 1, p - 1] {
                check(f32::from_bits(bits));
            }
        }
    }

    #[test]
    fn random_bit_patterns_match_format_and_parse() {
        // xorshift64*: finite values across every exponent, 20,000 or
        // TS_DEC_SAMPLES for a longer run.
        let count: usize = std::env::var("TS_DEC_SAMPLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut n = 0;
        while n < count {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let x = f32::from_bits((s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32);
            if x.is_finite() {
                check(x);
                n += 1;
            }
        }
    }
}
