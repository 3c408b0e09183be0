//! Fused optimizer updates: one pass over a parameter, its gradient and its
//! state.
//!
//! The SIMD bodies use exactly the scalar reference's operations (IEEE add,
//! multiply, divide and square root, no fused multiply-add), so every ISA
//! updates parameters bit-identically to [`adam_scalar`].
//!
//! One departure from PyTorch: optimizer state (Adam's moments, SGD's
//! momentum buffer, and through `flushed` RMSprop's averages and buffer)
//! that falls below `f32::MIN_POSITIVE` in magnitude is stored as `+0`. Under zero gradients a moment decays geometrically into
//! the subnormals and then sticks at the smallest one (`0.9 * 2^-149`
//! rounds back to `2^-149`); from there every update of it took microcode
//! assists, permanently (Intel, AVX-512, Adam over 65,536 parameters with
//! zero gradients: 25 us a step, then 360-480 us from about step 700). A
//! subnormal moment moves a parameter by less than `lr * 2^-126 / eps`
//! (about `1e-33` at `lr = 1e-3`, `eps = 1e-8`): nothing, unless the
//! parameter itself is below about `1e-26`.

use crate::kernels::check;
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
use crate::kernels::lanes::Lanes;

/// Per-step constants of one Adam/AdamW update (see
/// `torch.optim.adam._single_tensor_adam`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// `1 - beta1`, the weight of `exp_avg.lerp_(grad, 1 - beta1)`.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
    /// L2 weight decay added to the gradient (Adam); 0 when decoupled.
    pub weight_decay: f32,
    /// Decoupled decay factor `1 - lr * weight_decay` (AdamW), or `None`.
    pub decay: Option<f32>,
    /// `-lr / (1 - beta1^step)`.
    pub neg_step_size: f32,
    /// `1 / sqrt(1 - beta2^step)` (a product instead of a quotient: the
    /// divider is the update's bottleneck, and one division remains).
    pub inv_bias_correction2_sqrt: f32,
    /// `eps`.
    pub eps: f32,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// `torch.maximum` of two values: NaN if either is NaN.
#[inline(always)]
fn maximum(a: f32, b: f32) -> f32 {
    if a >= b {
        a
    } else if b > a {
        b
    } else {
        f32::NAN
    }
}

/// `x`, or `+0` where `|x| < f32::MIN_POSITIVE` (subnormal or zero): see the
/// module docs.
#[inline(always)]
pub(crate) fn flushed(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// [`flushed`] lane by lane.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
#[inline(always)]
fn flushed_v<L: Lanes>(l: L, x: L::V) -> L::V {
    let tiny = l.lt(l.abs(x), l.splat(f32::MIN_POSITIVE));
    l.select(tiny, l.splat(0.0), x)
}

/// One element of the update; returns nothing, writes `p`, `m`, `v`, `vmax`.
#[inline(always)]
fn adam_one(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, vmax: Option<&mut f32>, s: &AdamStep) {
    let mut g = if s.maximize { -g } else { g };
    match s.decay {
        Some(d) => *p *= d,
        None if s.weight_decay != 0.0 => g += s.weight_decay * *p,
        None => {}
    }
    let w = s.one_minus_beta1;
    *m = flushed(if w.abs() < 0.5 {
        *m + w * (g - *m)
    } else {
        g - (g - *m) * (1.0 - w)
    });
    *v = flushed(*v * s.beta2 + (s.one_minus_beta2 * g) * g);
    let second = match vmax {
        Some(vm) => {
            *vm = maximum(*vm, *v);
            *vm
        }
        None => *v,
    };
    let denom = crate::math::sqrtf(second) * s.inv_bias_correction2_sqrt + s.eps;
    *p += (s.neg_step_size * *m) / denom;
}

/// The scalar reference Adam/AdamW update (also the tail of the SIMD ones).
///
/// # Panics
/// If the slice lengths differ.
pub fn adam_scalar(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: Option<&mut [f32]>,
    s: &AdamStep,
) {
    check_lengths(p.len(), g, m, v, vmax.as_deref());
    match vmax {
        None => {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                adam_one(p, g, m, v, None, s);
            }
        }
        Some(vmax) => {
            for ((((p, &g), m), v), vm) in p
                .iter_mut()
                .zip(g)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
                .zip(vmax.iter_mut())
            {
                adam_one(p, g, m, v, Some(vm), s);
            }
        }
    }
}

fn check_lengths(n: usize, g: &[f32], m: &[f32], v: &[f32], vmax: Option<&[f32]>) {
    check::same("adam", n, g.len());
    check::same("adam", n, m.len());
    check::same("adam", n, v.len());
    if let Some(vm) = vmax {
        check::same("adam", n, vm.len());
    }
}

/// The Adam/AdamW update on whole vectors of `L`, the remainder through the
/// scalar reference.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
#[inline(always)]
pub(crate) fn adam<L: Lanes>(
    l: L,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    mut vmax: Option<&mut [f32]>,
    s: &AdamStep,
) {
    let n = p.len();
    check_lengths(n, g, m, v, vmax.as_deref());
    let w = s.one_minus_beta1;
    let (wv, one_minus_w) = (l.splat(w), l.splat(1.0 - w));
    let (beta2, omb2) = (l.splat(s.beta2), l.splat(s.one_minus_beta2));
    let (wd, inv_bc2, eps, step) = (
        l.splat(s.weight_decay),
        l.splat(s.inv_bias_correction2_sqrt),
        l.splat(s.eps),
        l.splat(s.neg_step_size),
    );
    let decay = s.decay.map(|d| l.splat(d));
    let small_w = w.abs() < 0.5;
    let full = n - n % L::LANES;
    let mut i = 0;
    while i < full {
        let r = i..i + L::LANES;
        let mut pv = l.load(&p[r.clone()]);
        let mut gv = l.load(&g[r.clone()]);
        let mut mv = l.load(&m[r.clone()]);
        let vv = l.load(&v[r.clone()]);
        if s.maximize {
            gv = l.neg(gv);
        }
        match decay {
            Some(d) => pv = l.mul(pv, d),
            None if s.weight_decay != 0.0 => gv = l.add(gv, l.mul(wd, pv)),
            None => {}
        }
        mv = flushed_v(
            l,
            if small_w {
                l.add(mv, l.mul(wv, l.sub(gv, mv)))
            } else {
                l.sub(gv, l.mul(l.sub(gv, mv), one_minus_w))
            },
        );
        let vv = flushed_v(l, l.add(l.mul(vv, beta2), l.mul(l.mul(omb2, gv), gv)));
        let second = match vmax.as_deref_mut() {
            Some(vm) => {
                let old = l.load(&vm[r.clone()]);
                // torch.maximum: NaN if either is NaN.
                let nan = l.splat(f32::NAN);
                let mx = l.select(l.ge(old, vv), old, l.select(l.gt(vv, old), vv, nan));
                l.store(mx, &mut vm[r.clone()]);
                mx
            }
            None => vv,
        };
        let denom = l.add(l.mul(l.sqrt(second), inv_bc2), eps);
        pv = l.add(pv, l.div(l.mul(step, mv), denom));
        l.store(pv, &mut p[r.clone()]);
        l.store(mv, &mut m[r.clone()]);
        l.store(vv, &mut v[r]);
        i += L::LANES;
    }
    adam_scalar(
        &mut p[full..],
        &g[full..],
        &mut m[full..],
        &mut v[full..],
        vmax.map(|vm| &mut vm[full..]),
        s,
    );
}

/// Per-step constants of one SGD update (see
/// `torch.optim.sgd._single_tensor_sgd`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// `-lr`.
    pub neg_lr: f32,
    /// L2 weight decay added to the gradient (0: none).
    pub weight_decay: f32,
    /// Momentum (0: no buffer).
    pub momentum: f32,
    /// `1 - dampening`.
    pub one_minus_dampening: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// The momentum buffer is new: it takes the gradient.
    pub first: bool,
}

/// One element of the SGD update; writes `p` and the momentum buffer `b`.
#[inline(always)]
fn sgd_one(p: &mut f32, g: f32, b: Option<&mut f32>, s: &SgdStep) {
    let mut d = if s.maximize { -g } else { g };
    if s.weight_decay != 0.0 {
        d += s.weight_decay * *p;
    }
    if let Some(b) = b {
        *b = flushed(if s.first {
            d
        } else {
            *b * s.momentum + s.one_minus_dampening * d
        });
        d = if s.nesterov { d + s.momentum * *b } else { *b };
    }
    *p += s.neg_lr * d;
}

/// The scalar reference SGD update (also the tail of the SIMD ones):
///
/// ```text
/// g = maximize ? -g : g;   g = g + wd * p            (wd != 0)
/// buf = first ? g : buf * momentum + (1 - dampening) * g
/// d = nesterov ? g + momentum * buf : buf            (with a buffer; else d = g)
/// p = p + (-lr) * d
/// ```
///
/// # Panics
/// If the slice lengths differ.
pub fn sgd_scalar(p: &mut [f32], g: &[f32], buf: Option<&mut [f32]>, s: &SgdStep) {
    check::same("sgd", p.len(), g.len());
    match buf {
        None => {
            for (p, &g) in p.iter_mut().zip(g) {
                sgd_one(p, g, None, s);
            }
        }
        Some(buf) => {
            check::same("sgd", p.len(), buf.len());
            for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
                sgd_one(p, g, Some(b), s);
            }
        }
    }
}

/// The SGD update on whole vectors of `L` (the same operations, no fused
/// multiply-add), the remainder through the scalar reference.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
#[inline(always)]
pub(crate) fn sgd<L: Lanes>(
    l: L,
    p: &mut [f32],
    g: &[f32],
    mut buf: Option<&mut [f32]>,
    s: &SgdStep,
) {
    let n = p.len();
    check::same("sgd", n, g.len());
    if let Some(b) = &buf {
        check::same("sgd", n, b.len());
    }
    let (neg_lr, wd, mom, omd) = (
        l.splat(s.neg_lr),
        l.splat(s.weight_decay),
        l.splat(s.momentum),
        l.splat(s.one_minus_dampening),
    );
    let full = n - n % L::LANES;
    let mut i = 0;
    while i < full {
        let r = i..i + L::LANES;
        let pv = l.load(&p[r.clone()]);
        let mut d = l.load(&g[r.clone()]);
        if s.maximize {
            d = l.neg(d);
        }
        if s.weight_decay != 0.0 {
            d = l.add(d, l.mul(wd, pv));
        }
        if let Some(b) = buf.as_deref_mut() {
            let bv = flushed_v(
                l,
                if s.first {
                    d
                } else {
                    l.add(l.mul(l.load(&b[r.clone()]), mom), l.mul(omd, d))
                },
            );
            l.store(bv, &mut b[r.clone()]);
            d = if s.nesterov {
                l.add(d, l.mul(mom, bv))
            } else {
                bv
            };
        }
        l.store(l.add(pv, l.mul(neg_lr, d)), &mut p[r]);
        i += L::LANES;
    }
    sgd_scalar(&mut p[full..], &g[full..], buf.map(|b| &mut b[full..]), s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{supported, table_for};
    use alloc::format;
    use alloc::vec::Vec;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every ISA's fused update is bit-identical to the scalar reference, for
    /// Adam, AdamW and AMSGrad, on the usual awkward lengths.
    #[test]
    fn simd_adam_matches_scalar_bit_for_bit() {
        let steps = [
            AdamStep {
                one_minus_beta1: 0.1,
                beta2: 0.999,
                one_minus_beta2: 0.001,
                weight_decay: 0.01,
                decay: None,
                neg_step_size: -1e-3 / 0.1,
                inv_bias_correction2_sqrt: 31.6,
                eps: 1e-8,
                maximize: false,
            },
            AdamStep {
                one_minus_beta1: 0.7,
                beta2: 0.9,
                one_minus_beta2: 0.1,
                weight_decay: 0.0,
                decay: Some(0.99),
                neg_step_size: -0.01,
                inv_bias_correction2_sqrt: 2.0,
                eps: 1e-6,
                maximize: true,
            },
        ];
        for isa in supported() {
            let k = table_for(isa).unwrap();
            for s in &steps {
                for n in [0usize, 1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 1000] {
                    for ams in [false, true] {
                        let g = data(n, 1);
                        let (mut p1, mut m1, mut v1, mut x1) = (
                            data(n, 2),
                            data(n, 3),
                            data(n, 4).iter().map(|x| x.abs()).collect::<Vec<_>>(),
                            data(n, 5).iter().map(|x| x.abs()).collect::<Vec<_>>(),
                        );
                        let (mut p2, mut m2, mut v2, mut x2) =
                            (p1.clone(), m1.clone(), v1.clone(), x1.clone());
                        adam_scalar(&mut p1, &g, &mut m1, &mut v1, ams.then_some(&mut x1[..]), s);
                        (k.adam)(&mut p2, &g, &mut m2, &mut v2, ams.then_some(&mut x2[..]), s);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&p1), bits(&p2), "{isa:?} n={n} ams={ams} p");
                        assert_eq!(bits(&m1), bits(&m2), "{isa:?} n={n} m");
                        assert_eq!(bits(&v1), bits(&v2), "{isa:?} n={n} v");
                        assert_eq!(bits(&x1), bits(&x2), "{isa:?} n={n} vmax");
                    }
                }
            }
        }
    }

    /// Every ISA's fused SGD update is bit-identical to the scalar
    /// reference: plain, momentum (first step and later), dampening,
    /// Nesterov, weight decay and maximize, on the usual awkward lengths.
    #[test]
    fn simd_sgd_matches_scalar_bit_for_bit() {
        let base = SgdStep {
            neg_lr: -0.1,
            weight_decay: 0.0,
            momentum: 0.0,
            one_minus_dampening: 1.0,
            nesterov: false,
            maximize: false,
            first: false,
        };
        let steps = [
            (base, false),
            (
                SgdStep {
                    weight_decay: 0.01,
                    maximize: true,
                    ..base
                },
                false,
            ),
            (
                SgdStep {
                    momentum: 0.9,
                    one_minus_dampening: 0.7,
                    first: true,
                    ..base
                },
                true,
            ),
            (
                SgdStep {
                    momentum: 0.9,
                    one_minus_dampening: 0.7,
                    weight_decay: 1e-3,
                    ..base
                },
                true,
            ),
            (
                SgdStep {
                    momentum: 0.8,
                    nesterov: true,
                    ..base
                },
                true,
            ),
        ];
        for isa in supported() {
            let k = table_for(isa).unwrap();
            for (s, with_buf) in &steps {
                for n in [0usize, 1, 7, 8, 15, 16, 17, 31, 63, 64, 65, 1000] {
                    let g = data(n, 1);
                    let (mut p1, mut b1) = (data(n, 2), data(n, 3));
                    let (mut p2, mut b2) = (p1.clone(), b1.clone());
                    sgd_scalar(&mut p1, &g, with_buf.then_some(&mut b1[..]), s);
                    (k.sgd)(&mut p2, &g, with_buf.then_some(&mut b2[..]), s);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&p1), bits(&p2), "{isa:?} n={n} {s:?} p");
                    assert_eq!(bits(&b1), bits(&b2), "{isa:?} n={n} {s:?} buf");
                }
            }
        }
    }
    /// Moments and momentum buffers that would fall below `f32::MIN_POSITIVE`
    /// are stored as `+0` (the assists of the module docs), on every ISA and
    /// at every position of a register; normal ones and the parameter are as
    /// without the flush.
    #[test]
    fn subnormal_state_is_stored_as_zero() {
        let s = AdamStep {
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: 0.001,
            weight_decay: 0.0,
            decay: None,
            neg_step_size: -1e-2,
            inv_bias_correction2_sqrt: 1.0,
            eps: 1e-8,
            maximize: false,
        };
        let sgd = SgdStep {
            neg_lr: -0.1,
            weight_decay: 0.0,
            momentum: 0.9,
            one_minus_dampening: 1.0,
            nesterov: false,
            maximize: false,
            first: false,
        };
        let min = f32::MIN_POSITIVE;
        // 0.9 times these: subnormal, subnormal, normal; then the smallest
        // subnormal (stuck there without the flush) and a normal value.
        let state = [min, 1.1 * min, 1.2 * min, f32::from_bits(1), 1.0];
        let zero_g = [0.0f32; 17];
        for isa in supported() {
            let k = table_for(isa).unwrap();
            for pos in 0..17 - state.len() {
                let mut m = [0.5f32; 17];
                m[pos..pos + state.len()].copy_from_slice(&state);
                let mut v = m;
                let (mut p, mut b) = ([1.0f32; 17], m);
                (k.adam)(&mut p, &zero_g, &mut m, &mut v, None, &s);
                (k.sgd)(&mut [1.0f32; 17], &zero_g, Some(&mut b[..]), &sgd);
                for (i, &x) in state.iter().enumerate() {
                    let (mi, vi, bi) = (m[pos + i], v[pos + i], b[pos + i]);
                    let what = format!("{isa:?} state {x:e} at {}", pos + i);
                    let (want_m, want_v) = (x - 0.1 * x, x * 0.999);
                    let want = |w: f32| if w < min { 0.0 } else { w };
                    assert_eq!(mi.to_bits(), want(want_m).to_bits(), "{what}: m {mi:e}");
                    assert_eq!(vi.to_bits(), want(want_v).to_bits(), "{what}: v {vi:e}");
                    assert_eq!(bi.to_bits(), want(x * 0.9).to_bits(), "{what}: buf {bi:e}");
                }
                assert_eq!(m[pos + 4], 0.9, "{isa:?}: a normal moment");
                assert!(p.iter().all(|&x| x <= 1.0 && x > 0.99), "{isa:?}: {p:?}");
            }
        }
    }
}
