//! Ulp error of the approximated functions against an `f64` reference.
//!
//! Each function is swept over its relevant range twice: evenly in the bit
//! patterns (dense near zero and across every binade, subnormals included)
//! and evenly in value. `accuracy_bounds_hold` asserts the bound stated on
//! `Kernels` for every SIMD table, and the scalar path's own error;
//! `accuracy_report` (ignored; run with `--ignored --nocapture`) prints the
//! measured maxima with a denser sweep, and `sincos_exhaustive` checks every
//! `f32` in `[0, SINCOS_MAX]`.

use alloc::vec::Vec;

use super::{all, simd};
use crate::kernels::{Kernels, Unary};

/// A function under test: its kernel, the `f64` reference, the sweep range,
/// and the SIMD bound in ulp as documented on `Kernels`.
pub(super) struct Func {
    pub name: &'static str,
    pub get: fn(&Kernels) -> Unary,
    pub reference: fn(f64) -> f64,
    pub lo: f32,
    pub hi: f32,
    pub bound: f64,
    /// The scalar path's own measured bound (libm `f32`, or `f64` rounded once).
    pub scalar_bound: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

macro_rules! func {
    ($name:ident, $reference:expr, [$lo:expr, $hi:expr], $bound:expr, $scalar_bound:expr) => {
        Func {
            name: stringify!($name),
            get: |k| k.$name,
            reference: $reference,
            lo: $lo,
            hi: $hi,
            bound: $bound,
            scalar_bound: $scalar_bound,
        }
    };
}

fn gelu(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2)
}

fn gelu_tanh(x: f64) -> f64 {
    x * sigmoid(2.0 * 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x))
}

fn softplus(x: f64) -> f64 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// The swept functions: reference, range, SIMD bound, scalar bound (ulp).
pub(super) const FUNCS: &[Func] = &[
    func!(exp, f64::exp, [-110.0, 89.5], 1.1, 1.0),
    func!(log, f64::ln, [0.0, f32::MAX], 1.0, 1.0),
    func!(log1p, f64::ln_1p, [-1.0, 1e30], 1.5, 1.0),
    func!(sin, f64::sin, [-65536.0, 65536.0], 2.0, 1.0),
    func!(cos, f64::cos, [-65536.0, 65536.0], 2.0, 1.0),
    func!(tanh, f64::tanh, [-10.0, 10.0], 1.5, 2.5),
    func!(erf, libm::erf, [-6.0, 6.0], 1.0, 1.0),
    func!(sigmoid, sigmoid, [-110.0, 30.0], 2.75, 2.5),
    func!(silu, |x| x * sigmoid(x), [-110.0, 30.0], 3.5, 1.0),
    func!(softplus, softplus, [-110.0, 30.0], 2.25, 2.0),
    func!(gelu, gelu, [-15.0, 12.0], 2.5, 1.0),
    func!(gelu_tanh, gelu_tanh, [-14.0, 14.0], 3.5, 1.0),
];

/// Error of `got` against the exact `r`, in ulp of `r` as an `f32` (the ulp of
/// the smallest normal for subnormal results).
pub(super) fn ulp_error(got: f32, r: f64) -> f64 {
    let r32 = r as f32;
    if r.is_nan() || got.is_nan() {
        return if r.is_nan() && got.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if r32.is_infinite() || got.is_infinite() {
        return if got == r32 { 0.0 } else { f64::INFINITY };
    }
    let e = if r == 0.0 {
        -126
    } else {
        (libm::ilogb(r)).max(-126)
    };
    let ulp = libm::ldexp(1.0, e - 23);
    (got as f64 - r).abs() / ulp
}

/// `n` points evenly spaced in the bit patterns of `[lo, hi]` (each sign side
/// separately), then `n` evenly spaced in value.
pub(super) fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(2 * n + 8);
    let mut side = |a: f32, b: f32, sign: f32, count: usize| {
        // a <= b, both >= 0
        let (ba, bb) = (a.to_bits() as u64, b.to_bits() as u64);
        let step = ((bb - ba) / count.max(1) as u64).max(1);
        let mut bits = ba;
        while bits <= bb {
            v.push(sign * f32::from_bits(bits as u32));
            bits += step;
        }
    };
    if lo < 0.0 && hi > 0.0 {
        let neg_share = (-lo).log2().max(1.0) / ((-lo).log2().max(1.0) + hi.log2().max(1.0));
        let nn = (n as f32 * neg_share) as usize;
        side(0.0, -lo, -1.0, nn);
        side(0.0, hi, 1.0, n - nn);
    } else if lo >= 0.0 {
        side(lo.max(f32::from_bits(1)), hi, 1.0, n);
    } else {
        side(-hi, -lo, -1.0, n);
    }
    let step = (hi as f64 - lo as f64) / n as f64;
    v.extend((0..=n).map(|i| (lo as f64 + step * i as f64) as f32));
    v
}

/// Largest ulp error of `f` on `k` over the sweep, with the worst input.
pub(super) fn measure(k: &Kernels, f: &Func, x: &[f32]) -> (f64, f32) {
    let mut out = alloc::vec![0.0f32; x.len()];
    ((f.get)(k).map)(x, &mut out);
    let mut worst = (0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(&out) {
        let e = ulp_error(yi, (f.reference)(xi as f64));
        if e > worst.0 {
            worst = (e, xi);
        }
    }
    worst
}

/// Points per sweep side; smaller under miri.
const POINTS: usize = if cfg!(miri) { 64 } else { 1 << 15 };

#[test]
fn accuracy_bounds_hold() {
    for f in FUNCS {
        let x = sweep(f.lo, f.hi, POINTS);
        for k in simd() {
            let (e, at) = measure(k, f, &x);
            assert!(
                e <= f.bound,
                "{} {}: {e:.3} ulp at x = {at:e} (bound {})",
                k.isa,
                f.name,
                f.bound
            );
        }
        // The scalar path is the reference the SIMD tests compare with.
        let (e, at) = measure(super::scalar(), f, &x);
        assert!(
            e <= f.scalar_bound,
            "scalar {}: {e:.3} ulp at x = {at:e}",
            f.name
        );
    }
}

/// Prints the measured maxima: `cargo test --release kernels::kernel_tests::accuracy
/// -- --ignored --nocapture`.
#[test]
#[ignore = "report: prints measured ulp errors with a denser sweep"]
fn accuracy_report() {
    extern crate std;
    for f in FUNCS {
        let x = sweep(f.lo, f.hi, 1 << 22);
        for k in all() {
            let (e, at) = measure(k, f, &x);
            std::println!(
                "{:>10} {:>7}: max {e:.3} ulp at x = {at:e} over [{:e}, {:e}] ({} points)",
                f.name,
                k.isa.name(),
                f.lo,
                f.hi,
                x.len()
            );
        }
    }
    backward_report();
    softmax_report();
}

/// Gradient kernels: largest `|got - exact| / (eps * scale)` where `scale` is
/// the sum of the magnitudes of the derivative's terms (times `|g|`), over a
/// sweep of `x` with `g = 1` (so no subnormal-quantum term is needed above the
/// subnormal range).
fn backward_report() {
    extern crate std;
    use crate::kernels::ZipFn;
    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }
    type Scale = fn(f64) -> (f64, f64);
    /// (name, kernel, exact derivative and scale, range)
    type Case = (&'static str, fn(&Kernels) -> ZipFn, Scale, f32, f32);
    let cases: [Case; 4] = [
        (
            "gelu_backward",
            |k| k.gelu_backward,
            |x| {
                let cdf = 0.5 * libm::erfc(-x * core::f64::consts::FRAC_1_SQRT_2);
                let xpdf = x * (-0.5 * x * x).exp() * 0.398_942_280_401_432_7;
                (cdf + xpdf, cdf + xpdf.abs())
            },
            -12.0,
            12.0,
        ),
        (
            "gelu_tanh_backward",
            |k| k.gelu_tanh_backward,
            |x| {
                let c = 0.797_884_560_802_865_4;
                let v = 2.0 * c * (x + 0.044715 * x * x * x);
                let dv = 2.0 * c * (1.0 + 3.0 * 0.044715 * x * x);
                let (s, t) = (sig(v), x * dv * sig(v) * sig(-v));
                (s + t, s + t.abs())
            },
            -12.0,
            12.0,
        ),
        (
            "silu_backward",
            |k| k.silu_backward,
            |x| {
                let s = sig(x);
                (s * (1.0 + x * (1.0 - s)), s + (x * s * (1.0 - s)).abs())
            },
            -90.0,
            40.0,
        ),
        (
            "softplus_backward",
            |k| k.softplus_backward,
            |x| {
                let s = if x > 20.0 { 1.0 } else { sig(x) };
                (s, s)
            },
            -90.0,
            40.0,
        ),
    ];
    for (name, get, exact, lo, hi) in cases {
        let x = sweep(lo, hi, 1 << 20);
        let g = alloc::vec![1.0f32; x.len()];
        let mut out = alloc::vec![0.0f32; x.len()];
        for k in all() {
            get(k)(&x, &g, &mut out);
            let mut worst = (0.0f64, 0.0f32);
            for (&xi, &o) in x.iter().zip(&out) {
                let (d, scale) = exact(xi as f64);
                if (d as f32).abs() < f32::MIN_POSITIVE {
                    continue;
                }
                let e = (o as f64 - d).abs() / (scale * 2f64.powi(-24));
                if e > worst.0 {
                    worst = (e, xi);
                }
            }
            std::println!(
                "{name:>18} {:>7}: max {:.3} eps x scale at x = {:e} over [{lo:e}, {hi:e}]",
                k.isa.name(),
                worst.0,
                worst.1
            );
        }
    }
}

/// Softmax of random rows against `f64`: largest error in ulp of each output;
/// log-softmax error relative to `|x - max| + ln(sum)` (its outputs near 0
/// carry the absolute error of `ln(sum)`).
fn softmax_report() {
    extern crate std;
    let mut rng = super::Rng::new(3);
    for n in [7usize, 1024, 100_000] {
        let x: Vec<f32> = (0..n).map(|_| rng.range(-20.0, 20.0)).collect();
        let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let s: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
        let mut out = alloc::vec![0.0f32; n];
        for k in all() {
            (k.softmax)(&x, &mut out);
            let sm = out
                .iter()
                .zip(&x)
                .map(|(&o, &v)| ulp_error(o, (v as f64 - m).exp() / s))
                .fold(0.0, f64::max);
            (k.log_softmax)(&x, &mut out);
            let ls = out
                .iter()
                .zip(&x)
                .map(|(&o, &v)| {
                    let exact = v as f64 - m - s.ln();
                    (o as f64 - exact).abs()
                        / (2f64.powi(-24) * ((v as f64 - m).abs() + s.ln() + 1.0))
                })
                .fold(0.0, f64::max);
            std::println!(
                "  softmax n={n:>6} {:>7}: max {:.3} ulp; log_softmax max {:.3} eps x (|x - max| + ln sum + 1)",
                k.isa.name(),
                sm,
                ls
            );
        }
    }
}

/// Largest ulp error of `f` on `k` over every `f32` whose bit pattern is in
/// `lo_bits..=hi_bits` (all of one sign), with the worst input.
fn exhaustive_range(k: &Kernels, f: &Func, lo_bits: u32, hi_bits: u32) -> (f64, f32) {
    const CHUNK: u32 = 1 << 16;
    let mut x = alloc::vec![0.0f32; CHUNK as usize];
    let mut y = alloc::vec![0.0f32; CHUNK as usize];
    let mut worst = (0.0f64, 0.0f32);
    let mut bits = lo_bits as u64;
    while bits <= hi_bits as u64 {
        let n = (CHUNK as u64).min(hi_bits as u64 - bits + 1) as usize;
        for (i, v) in x[..n].iter_mut().enumerate() {
            *v = f32::from_bits(bits as u32 + i as u32);
        }
        ((f.get)(k).map)(&x[..n], &mut y[..n]);
        for i in 0..n {
            let e = ulp_error(y[i], (f.reference)(x[i] as f64));
            if e > worst.0 {
                worst = (e, x[i]);
            }
        }
        bits += n as u64;
    }
    worst
}

/// Every `f32` in each function's sweep range (all sign/binade patterns,
/// subnormals included) through every SIMD table, split over two threads:
/// `cargo test --release kernels::kernel_tests::accuracy::exhaustive --
/// --ignored --nocapture` (minutes). `TS_EXHAUSTIVE=name` restricts it to one
/// function.
#[test]
#[ignore = "exhaustive: run in release mode"]
fn exhaustive() {
    extern crate std;
    let only = std::env::var("TS_EXHAUSTIVE").ok();
    let mut failed = Vec::new();
    for f in FUNCS
        .iter()
        .filter(|f| only.as_deref().is_none_or(|o| o == f.name))
    {
        for k in simd() {
            // Bit ranges of the negative and positive parts of [lo, hi].
            let mut parts = Vec::new();
            if f.lo < 0.0 {
                parts.push((0x8000_0000, (f.lo).to_bits()));
            }
            if f.hi >= 0.0 {
                parts.push((f.lo.max(0.0).to_bits(), f.hi.to_bits()));
            }
            let mut halves = Vec::new();
            for (a, b) in parts {
                let m = a + (b - a) / 2;
                halves.push((a, m));
                halves.push((m + 1, b));
            }
            let results: Vec<(f64, f32)> = std::thread::scope(|sc| {
                let hs: Vec<_> = halves
                    .chunks(halves.len().div_ceil(2))
                    .map(|hs| {
                        sc.spawn(move || {
                            hs.iter()
                                .map(|&(a, b)| exhaustive_range(k, f, a, b))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            let worst = results
                .into_iter()
                .fold((0.0, 0.0), |w, r| if r.0 > w.0 { r } else { w });
            std::println!(
                "{:>10} {:>7}: max {:.3} ulp at x = {:e} over every f32 in [{:e}, {:e}]",
                f.name,
                k.isa.name(),
                worst.0,
                worst.1,
                f.lo,
                f.hi
            );
            if worst.0 > f.bound {
                failed.push((k.isa, f.name, worst.0, f.bound));
            }
        }
    }
    assert!(failed.is_empty(), "above the stated bound: {failed:?}");
}
