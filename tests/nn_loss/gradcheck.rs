//! Finite differences of every loss, on contiguous inputs and on views.

use crate::common::{self, Tol, gradcheck_with, randn, uniform};
use train_station::Tensor;
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss,
    nll_loss, smooth_l1_loss, soft_margin_loss,
};

use super::{REDUCTIONS, t};

/// Inputs and targets apart by more than the finite-difference step, so the
/// kinks of l1 / smooth_l1 / huber are not crossed.
fn regression_pair(shape: &[usize], seed: u64) -> (Tensor, Tensor) {
    let x = randn(shape, seed);
    let d = uniform(shape, seed + 1, 0.1, 2.5);
    let sign = uniform(shape, seed + 2, -1.0, 1.0).to_vec();
    let d: Vec<f32> = d
        .to_vec()
        .iter()
        .zip(&sign)
        .map(|(d, s)| d * s.signum())
        .collect();
    let target = &x + &t(&d, shape);
    (x, target)
}

/// Finite differences on contiguous inputs, and again on non-contiguous views
/// of every input.
fn gradcheck_both(
    name: &str,
    inputs: &[Tensor],
    nondiff: &[usize],
    f: &dyn Fn(&[Tensor]) -> Tensor,
) {
    let tol = Tol::new(2e-2, 2e-2);
    gradcheck_with(name, inputs, nondiff, f, 1e-2, tol);
    let views = |xs: &[Tensor]| {
        let v: Vec<Tensor> = xs.iter().map(common::noncontiguous).collect();
        f(&v)
    };
    gradcheck_with(
        &format!("{name} (views)"),
        inputs,
        nondiff,
        &views,
        1e-2,
        tol,
    );
}

#[test]
fn regression_losses_gradcheck() {
    let (x, y) = regression_pair(&[3, 5], 1);
    for red in REDUCTIONS {
        let ins = [x.clone(), y.clone()];
        gradcheck_both(&format!("mse {red:?}"), &ins, &[], &|v| {
            mse_loss(&v[0], &v[1], red)
        });
        gradcheck_both(&format!("l1 {red:?}"), &ins, &[], &|v| {
            l1_loss(&v[0], &v[1], red)
        });
        for beta in [0.0, 0.5, 1.0, 3.0] {
            gradcheck_both(&format!("smooth_l1 {beta} {red:?}"), &ins, &[], &|v| {
                smooth_l1_loss(&v[0], &v[1], red, beta)
            });
        }
        for delta in [0.5, 1.0, 3.0] {
            gradcheck_both(&format!("huber {delta} {red:?}"), &ins, &[], &|v| {
                huber_loss(&v[0], &v[1], red, delta)
            });
        }
    }
}

#[test]
fn binary_losses_gradcheck() {
    let p = uniform(&[3, 4], 11, 0.1, 0.9);
    let y = uniform(&[3, 4], 12, 0.0, 1.0);
    let w = uniform(&[4], 13, 0.5, 2.0);
    let x = &randn(&[3, 4], 14) * 3.0;
    let pw = uniform(&[3, 1], 15, 0.5, 3.0);
    for red in REDUCTIONS {
        gradcheck_both(
            &format!("bce {red:?}"),
            &[p.clone(), y.clone(), w.clone()],
            &[2],
            &|v| binary_cross_entropy(&v[0], &v[1], Some(&v[2]), red),
        );
        let opts = |w: &Tensor, pw: &Tensor| BceWithLogitsOptions {
            weight: Some(w.clone()),
            pos_weight: Some(pw.clone()),
            reduction: red,
        };
        gradcheck_both(
            &format!("bce_logits {red:?}"),
            &[x.clone(), y.clone(), w.clone(), pw.clone()],
            &[2, 3],
            &|v| binary_cross_entropy_with_logits(&v[0], &v[1], &opts(&v[2], &v[3])),
        );
        gradcheck_both(
            &format!("bce_logits plain {red:?}"),
            &[x.clone(), y.clone()],
            &[],
            &|v| {
                binary_cross_entropy_with_logits(
                    &v[0],
                    &v[1],
                    &BceWithLogitsOptions::default().reduction(red),
                )
            },
        );
    }
}

#[test]
fn other_losses_gradcheck() {
    let lp = randn(&[3, 4], 16).log_softmax(1);
    let q = uniform(&[3, 4], 17, 0.05, 1.0);
    let lq = randn(&[3, 4], 18);
    let x = &randn(&[3, 4], 19) * 3.0;
    let y = Tensor::from_fn([3, 4], |i| {
        if (i[0] + 2 * i[1]) % 3 == 0 {
            1.0
        } else {
            -1.0
        }
    });
    for red in REDUCTIONS {
        gradcheck_both(
            &format!("kl_div {red:?}"),
            &[lp.clone(), q.clone()],
            &[],
            &|v| kl_div(&v[0], &v[1], red, false),
        );
        gradcheck_both(
            &format!("kl_div log {red:?}"),
            &[lp.clone(), lq.clone()],
            &[],
            &|v| kl_div(&v[0], &v[1], red, true),
        );
        gradcheck_both(
            &format!("soft_margin {red:?}"),
            &[x.clone(), y.clone()],
            &[1],
            &|v| soft_margin_loss(&v[0], &v[1], red),
        );
    }
}

#[test]
fn class_losses_gradcheck() {
    let x = &randn(&[5, 4], 21) * 2.0;
    let y = t(&[0.0, 3.0, 2.0, 3.0, 1.0], &[5]);
    let w = uniform(&[4], 22, 0.3, 2.0);
    let xk = randn(&[2, 3, 2, 2], 23);
    let yk = t(&[0.0, 2.0, 1.0, 1.0, 2.0, 0.0, 2.0, 1.0], &[2, 2, 2]);
    let wk = uniform(&[3], 24, 0.3, 2.0);
    let q = randn(&[5, 4], 25).softmax(1);
    let qk = randn(&[2, 3, 2, 2], 26).softmax(1);
    for red in REDUCTIONS {
        for (ig, ls) in [(None, 0.0), (Some(3), 0.0), (Some(3), 0.2), (None, 1.0)] {
            let o = CrossEntropyOptions::default()
                .ignore_index(ig)
                .reduction(red)
                .label_smoothing(ls);
            let ow = o.clone().weight(w.clone());
            let name = format!("ce {red:?} ig {ig:?} ls {ls}");
            gradcheck_both(&name, &[x.clone(), y.clone()], &[1], &|v| {
                cross_entropy(&v[0], &v[1], &o)
            });
            gradcheck_both(&format!("{name} w"), &[x.clone(), y.clone()], &[1], &|v| {
                cross_entropy(&v[0], &v[1], &ow)
            });
            let okw = o.clone().weight(wk.clone()).ignore_index(ig.map(|_| 1));
            gradcheck_both(
                &format!("{name} 4-D"),
                &[xk.clone(), yk.clone()],
                &[1],
                &|v| cross_entropy(&v[0], &v[1], &okw),
            );
            // Probabilities: input, target and weight all differentiable.
            let op = o.clone().ignore_index(None);
            gradcheck_both(
                &format!("{name} probs"),
                &[x.clone(), q.clone(), w.clone()],
                &[],
                &|v| cross_entropy(&v[0], &v[1], &op.clone().weight(v[2].clone())),
            );
            gradcheck_both(
                &format!("{name} probs 4-D"),
                &[xk.clone(), qk.clone(), wk.clone()],
                &[],
                &|v| cross_entropy(&v[0], &v[1], &op.clone().weight(v[2].clone())),
            );
        }
        for ig in [None, Some(3)] {
            let o = NllLossOptions::default().ignore_index(ig).reduction(red);
            let ow = o.clone().weight(w.clone());
            gradcheck_both(
                &format!("nll {red:?} {ig:?}"),
                &[x.clone(), y.clone()],
                &[1],
                &|v| nll_loss(&v[0], &v[1], &o),
            );
            gradcheck_both(
                &format!("nll w {red:?} {ig:?}"),
                &[x.clone(), y.clone()],
                &[1],
                &|v| nll_loss(&v[0], &v[1], &ow),
            );
        }
    }
}
