//! Arguments far out in a function's range, where a result rounds to 0 (or
//! to `x`) and the paths set the lanes aside instead of computing them
//! (computed, they underflow into microcode assists): the results are exact,
//! and each lane's bits do not depend on its neighbours.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::{all, assert_match, scalar};

/// `exp` of arguments whose result rounds to `+0` (below `ln 2^-150`, about
/// -103.97) is `+0` on every path, in every lane position, beside ordinary
/// lanes; just above, the smallest subnormals match the scalar path.
#[test]
fn exp_underflows_to_zero() {
    let low = [
        -103.98,
        -104.0001,
        -110.0,
        -150.0,
        -174.0,
        -1e30,
        f32::NEG_INFINITY,
    ];
    for k in all() {
        // The ordinary lanes' value, computed in a register of its own.
        let mut alone = [0.0f32; 16];
        (k.exp.map)(&[0.5; 16], &mut alone);
        assert!((alone[0] - libm::expf(0.5)).abs() <= 1.2e-7, "{}", k.isa);
        for &v in &low {
            for pos in 0..16 {
                let mut x = vec![0.5f32; 16];
                x[pos] = v;
                let mut out = vec![1.0; 16];
                (k.exp.map)(&x, &mut out);
                let what = format!("{} exp({v}) at lane {pos}", k.isa);
                assert_eq!(out[pos].to_bits(), 0, "{what}: {}", out[pos]);
                assert_eq!(
                    out[(pos + 1) % 16].to_bits(),
                    alone[0].to_bits(),
                    "{what}: its neighbour"
                );
            }
        }
        let x = [-103.9f32, -103.5, -100.0, -95.0];
        let (mut got, mut want) = ([0.0; 4], [0.0; 4]);
        (k.exp.map)(&x, &mut got);
        (scalar().exp.map)(&x, &mut want);
        assert_match(&format!("{} exp subnormal", k.isa), &x, &got, &want, 1);
        assert!(got.iter().all(|&e| e > 0.0), "{}: {got:?}", k.isa);
    }
}

/// Exact GELU and its derivative far out (`|x| >= 15`, where the Gaussian
/// factor is scaled to `±0` without computing it): `x` and `-0` (or `+0`),
/// derivative 1 and 0, on every path, each lane's bits those of the lane
/// alone, beside lanes of moderate size.
#[test]
fn gelu_far_out_is_exact() {
    let far = [
        15.0f32, 20.0, 50.0, 1e4, 1e30, -15.0, -20.0, -50.0, -1e4, -1e30,
    ];
    for k in all() {
        let mut x = Vec::new();
        for &v in &far {
            x.extend([0.5, -3.0, 13.5, v, -13.5, 1.0, 2.0, -0.25]);
        }
        let mut all_y = vec![0.0; x.len()];
        (k.gelu.map)(&x, &mut all_y);
        let mut all_d = vec![0.0; x.len()];
        (k.gelu_backward)(&x, &vec![1.0; x.len()], &mut all_d);
        for (i, &v) in x.iter().enumerate() {
            let mut y = [0.0];
            (k.gelu.map)(&[v], &mut y);
            let mut d = [0.0];
            (k.gelu_backward)(&[v], &[1.0], &mut d);
            if v.abs() >= 15.0 {
                let what = format!("{} gelu({v})", k.isa);
                assert!(y[0] == v.max(0.0), "{what} = {}", y[0]);
                assert!(
                    d[0] == if v > 0.0 { 1.0 } else { 0.0 },
                    "{what}' = {}",
                    d[0]
                );
            }
            let what = format!("{} gelu element {i} ({v}) alone", k.isa);
            assert_match(&what, &[v], &all_y[i..=i], &y, 0);
            assert_match(&format!("{what}, derivative"), &[v], &all_d[i..=i], &d, 0);
        }
    }
}
