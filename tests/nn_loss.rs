//! Loss functions: PyTorch fixtures (every loss x reduction x option, values
//! and gradients w.r.t. input, target and weight where PyTorch defines them),
//! finite differences on contiguous inputs and views, view equivalence,
//! extreme values and error messages.

mod common;

use std::collections::HashMap;

use common::{FIXTURE, Tol, check_fixtures, check_views_equal, gradcheck_with, randn, uniform};
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, Reduction, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss,
    nll_loss, smooth_l1_loss, soft_margin_loss, try_binary_cross_entropy,
    try_binary_cross_entropy_with_logits, try_cross_entropy, try_huber_loss, try_kl_div,
    try_l1_loss, try_mse_loss, try_nll_loss, try_smooth_l1_loss, try_soft_margin_loss,
};
use train_station::{Error, Tensor, no_grad};

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}

/// Runs the fixture case `name` (`<loss>:<key=value,...>`, see
/// tests/reference/cases_loss.py).
fn loss_case(name: &str, x: &[Tensor]) -> Option<Tensor> {
    let (loss, rest) = name.split_once(':')?;
    let kv: HashMap<&str, &str> = rest.split(',').filter_map(|p| p.split_once('=')).collect();
    let num = |k: &str| kv.get(k).map(|v| v.parse::<f32>().unwrap());
    let red = match kv["red"] {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        _ => return None,
    };
    let input = if kv.contains_key("xt") {
        x[0].t()
    } else {
        x[0].clone()
    };
    let target = if kv.contains_key("tt") {
        x[1].t()
    } else {
        x[1].clone()
    };
    let mut extra = x[2..].iter().cloned();
    let weight = kv.contains_key("w").then(|| extra.next().unwrap());
    let pos_weight = kv.contains_key("pw").then(|| extra.next().unwrap());
    assert!(extra.next().is_none(), "{name}: unused inputs");
    let ignore_index = match kv.get("ig") {
        None => Some(-100),
        Some(&"none") => None,
        Some(v) => Some(v.parse().unwrap()),
    };
    Some(match loss {
        "mse_loss" => mse_loss(&input, &target, red),
        "l1_loss" => l1_loss(&input, &target, red),
        "smooth_l1_loss" => smooth_l1_loss(&input, &target, red, num("beta")?),
        "huber_loss" => huber_loss(&input, &target, red, num("delta")?),
        "bce" => binary_cross_entropy(&input, &target, weight.as_ref(), red),
        "bce_logits" => binary_cross_entropy_with_logits(
            &input,
            &target,
            &BceWithLogitsOptions {
                weight,
                pos_weight,
                reduction: red,
            },
        ),
        "ce" | "cep" => cross_entropy(
            &input,
            &target,
            &CrossEntropyOptions {
                weight,
                ignore_index,
                reduction: red,
                label_smoothing: num("ls").unwrap_or(0.0),
            },
        ),
        "kl_div" => kl_div(&input, &target, red, kv["logt"] == "1"),
        "soft_margin" => soft_margin_loss(&input, &target, red),
        "nll" => nll_loss(
            &input,
            &target,
            &NllLossOptions {
                weight,
                ignore_index,
                reduction: red,
            },
        ),
        _ => return None,
    })
}

#[test]
fn losses_match_pytorch() {
    // Also the large-value cases (logits of 1e4, regression values of 1e4)
    // agree within the default tolerance.
    check_fixtures("loss", |_| FIXTURE, loss_case);
}

// ------------------------------------------------------------ gradcheck

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

// ------------------------------------------------------------ structure

#[test]
fn cross_entropy_is_one_fused_node() {
    let x = randn(&[4, 6], 31).with_requires_grad();
    let y = t(&[1.0, 0.0, 5.0, 2.0], &[4]);
    let q = randn(&[4, 6], 32).softmax(1);
    for red in REDUCTIONS {
        let o = CrossEntropyOptions::default()
            .reduction(red)
            .label_smoothing(0.1);
        assert_eq!(
            cross_entropy(&x, &y, &o).grad_fn_name(),
            Some("CrossEntropyLossBackward0")
        );
        assert_eq!(
            cross_entropy(&x, &q, &o).grad_fn_name(),
            Some("CrossEntropyLossBackward0")
        );
        let n = NllLossOptions::default().reduction(red);
        assert_eq!(
            nll_loss(&x, &y, &n).grad_fn_name(),
            Some("NllLossBackward0")
        );
    }
}

#[test]
fn cross_entropy_agrees_with_its_definitions() {
    let x = &randn(&[5, 7], 41) * 3.0;
    let y = t(&[6.0, 0.0, 3.0, 3.0, 1.0], &[5]);
    let w = uniform(&[7], 42, 0.2, 2.0);
    let onehot = Tensor::from_fn([5, 7], |i| f32::from(y.get(&[i[0]]) as usize == i[1]));
    for red in REDUCTIONS {
        // Indices == nll_loss(log_softmax).
        let a = cross_entropy(&x, &y, &CrossEntropyOptions::default().reduction(red));
        let b = nll_loss(
            &x.log_softmax(1),
            &y,
            &NllLossOptions::default().reduction(red),
        );
        assert!(a.allclose(&b, 1e-6, 1e-6), "{red:?}: {a} vs {b}");
        // Unweighted indices == one-hot probabilities, also with smoothing.
        for ls in [0.0, 0.3] {
            let o = CrossEntropyOptions::default()
                .reduction(red)
                .label_smoothing(ls);
            let a = cross_entropy(&x, &y, &o);
            let b = cross_entropy(&x, &onehot, &o);
            assert!(a.allclose(&b, 1e-5, 1e-6), "{red:?} ls {ls}: {a} vs {b}");
        }
        // Weighted Sum/None: indices == one-hot probabilities with the weight.
        if red != Reduction::Mean {
            let o = CrossEntropyOptions::default()
                .reduction(red)
                .weight(w.clone());
            let a = cross_entropy(&x, &y, &o);
            let b = cross_entropy(&x, &onehot, &o);
            assert!(a.allclose(&b, 1e-5, 1e-6), "{red:?} weighted: {a} vs {b}");
        }
    }
    // Weighted mean divides by the total weight of the targets.
    let o = CrossEntropyOptions::default().weight(w.clone());
    let s = cross_entropy(&x, &y, &o.clone().reduction(Reduction::Sum)).item();
    let total: f32 = y.values().map(|c| w.get(&[c as usize])).sum();
    assert!((cross_entropy(&x, &y, &o).item() - s / total).abs() < 1e-5);
    // Ignored targets change neither the sum nor the mean's denominator.
    let y_ig = t(&[6.0, -100.0, 3.0, 3.0, -100.0], &[5]);
    let kept = |v: &Tensor| v.index_select(0, &t(&[0.0, 2.0, 3.0], &[3]));
    let a = cross_entropy(&x, &y_ig, &CrossEntropyOptions::default());
    let b = cross_entropy(&kept(&x), &kept(&y_ig), &CrossEntropyOptions::default());
    assert!((a.item() - b.item()).abs() < 1e-6);
}

#[test]
fn loss_results_are_the_same_for_views() {
    let x = randn(&[5, 6], 51);
    let targets = |n: usize, c: usize| Tensor::from_fn([n], |i| ((i[0] * 7 + 3) % c) as f32);
    let ce = CrossEntropyOptions::default()
        .reduction(Reduction::None)
        .label_smoothing(0.1);
    check_views_equal("cross_entropy", &x, &|v| {
        cross_entropy(v, &targets(v.dims()[0], v.dims()[1]), &ce)
    });
    let grad_of = |v: &Tensor| {
        let leaf = v.detach().with_requires_grad();
        cross_entropy(
            &leaf,
            &targets(v.dims()[0], v.dims()[1]),
            &ce.clone().reduction(Reduction::Sum),
        )
        .backward();
        leaf.grad().unwrap()
    };
    check_views_equal("cross_entropy backward", &x, &grad_of);
    check_views_equal("cross_entropy probs", &x, &|v| {
        cross_entropy(
            v,
            &v.softmax(0),
            &CrossEntropyOptions::default().reduction(Reduction::None),
        )
    });
    check_views_equal("nll_loss", &x, &|v| {
        nll_loss(
            v,
            &targets(v.dims()[0], v.dims()[1]),
            &NllLossOptions::default().reduction(Reduction::None),
        )
    });
    let y = randn(&[8, 8], 52);
    check_views_equal("mse_loss", &x, &|v| {
        mse_loss(
            v,
            &y.narrow(0, 0, v.dims()[0]).narrow(1, 0, v.dims()[1]),
            Reduction::None,
        )
    });
    check_views_equal("bce_logits", &x, &|v| {
        binary_cross_entropy_with_logits(
            v,
            &v.sigmoid(),
            &BceWithLogitsOptions::default().reduction(Reduction::None),
        )
    });
}

// ------------------------------------------------------------ extremes

#[test]
fn class_losses_are_stable_for_extreme_logits() {
    let x = t(&[1e30, 0.0, -1e30, 1e4, 1e4 + 1.0, -1e4], &[2, 3]).with_requires_grad();
    let y = t(&[1.0, 0.0], &[2]);
    let l = cross_entropy(
        &x,
        &y,
        &CrossEntropyOptions::default().reduction(Reduction::None),
    );
    // Row 0: -log softmax(x)[1] = 1e30. Row 1: log(1 + e) = 1.3132616
    // (PyTorch's value): subtracting the maximum before the log-sum keeps
    // the digits that `x - (max + log(sum))` would round away at 1e4.
    assert_eq!(l.get(&[0]), 1e30);
    assert!((l.get(&[1]) - 1.313_261_6).abs() < 1e-6, "{l}");
    l.sum().backward();
    let g = x.grad().unwrap();
    assert!(g.values().all(f32::is_finite), "{g}");
    assert_eq!(g.get(&[0, 0]), 1.0);
    assert_eq!(g.get(&[0, 1]), -1.0);
    // -inf logits for other classes are fine; for the target class the loss
    // is inf, as in PyTorch.
    let x = t(&[f32::NEG_INFINITY, 2.0, 1.0], &[1, 3]);
    let fine = cross_entropy(&x, &t(&[1.0], &[1]), &CrossEntropyOptions::default());
    assert!(fine.item().is_finite());
    let inf = cross_entropy(&x, &t(&[0.0], &[1]), &CrossEntropyOptions::default());
    assert_eq!(inf.item(), f32::INFINITY);

    // BCE with logits of any magnitude: finite loss and gradient.
    let x = t(&[1e30, -1e30, 1e4, -1e4, 88.0, -88.0, 104.0, -104.0], &[8]).with_requires_grad();
    let y = t(&[0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0], &[8]);
    let pw = t(&[2.0], &[1]);
    let l = binary_cross_entropy_with_logits(
        &x,
        &y,
        &BceWithLogitsOptions::default()
            .pos_weight(pw)
            .reduction(Reduction::None),
    );
    assert!(l.values().all(f32::is_finite), "{l}");
    assert_eq!(l.get(&[0]), 1e30);
    assert_eq!(l.get(&[2]), 0.0);
    l.sum().backward();
    assert!(x.grad().unwrap().values().all(f32::is_finite));

    // soft_margin_loss: a stable softplus (PyTorch overflows to inf here).
    let x = t(&[100.0, -100.0, 1e30], &[3]).with_requires_grad();
    let l = soft_margin_loss(&x, &t(&[-1.0, 1.0, 1.0], &[3]), Reduction::None);
    assert_eq!(l.to_vec(), vec![100.0, 100.0, 0.0]);
    l.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, -1.0, -0.0]);

    // BCE of probabilities 0 and 1: logs clamped at -100.
    let p = t(&[0.0, 1.0], &[2]);
    let l = binary_cross_entropy(&p, &t(&[1.0, 0.0], &[2]), None, Reduction::None);
    assert_eq!(l.to_vec(), vec![100.0, 100.0]);
}

#[test]
fn empty_and_all_ignored_batches() {
    let x = Tensor::zeros([0, 4]);
    let y = Tensor::zeros([0]);
    assert!(
        cross_entropy(&x, &y, &CrossEntropyOptions::default())
            .item()
            .is_nan()
    );
    let sum = CrossEntropyOptions::default().reduction(Reduction::Sum);
    assert_eq!(cross_entropy(&x, &y, &sum).item(), 0.0);
    let none = CrossEntropyOptions::default().reduction(Reduction::None);
    assert_eq!(cross_entropy(&x, &y, &none).dims(), &[0]);
    assert!(mse_loss(&x, &x, Reduction::Mean).item().is_nan());
    assert_eq!(mse_loss(&x, &x, Reduction::Sum).item(), 0.0);
    // Every target ignored: Mean is 0/0 = NaN (PyTorch), gradients 0.
    let x = randn(&[3, 4], 61).with_requires_grad();
    let y = t(&[-100.0; 3], &[3]);
    let l = cross_entropy(&x, &y, &CrossEntropyOptions::default().label_smoothing(0.1));
    assert!(l.item().is_nan());
    let s = cross_entropy(&x, &y, &sum);
    assert_eq!(s.item(), 0.0);
    s.backward();
    assert!(x.grad().unwrap().values().all(|v| v == 0.0));
}

#[test]
fn defaults_match_pytorch() {
    assert_eq!(Reduction::default(), Reduction::Mean);
    let o = CrossEntropyOptions::default();
    assert_eq!(o.ignore_index, Some(-100));
    assert_eq!(o.label_smoothing, 0.0);
    assert!(o.weight.is_none());
    assert_eq!(o.reduction, Reduction::Mean);
    let n = NllLossOptions::default();
    assert_eq!((n.ignore_index, n.reduction), (Some(-100), Reduction::Mean));
    // ignore_index = None: -100 is then an index out of range.
    let x = randn(&[2, 3], 71);
    let y = t(&[-100.0, 1.0], &[2]);
    let e = try_cross_entropy(&x, &y, &CrossEntropyOptions::default().ignore_index(None));
    assert!(matches!(
        e,
        Err(Error::IndexOutOfRange {
            index: -100,
            size: 3,
            ..
        })
    ));
}

// ------------------------------------------------------------ errors

fn err(r: train_station::Result<Tensor>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn shape_errors_name_the_loss_and_both_shapes() {
    let a = Tensor::zeros([2, 3]);
    let b = Tensor::zeros([3]);
    let r = Reduction::Mean;
    for (name, e) in [
        ("mse_loss", err(try_mse_loss(&a, &b, r))),
        ("l1_loss", err(try_l1_loss(&a, &b, r))),
        ("smooth_l1_loss", err(try_smooth_l1_loss(&a, &b, r, 1.0))),
        ("smooth_l1_loss", err(try_smooth_l1_loss(&a, &b, r, 0.0))),
        ("huber_loss", err(try_huber_loss(&a, &b, r, 1.0))),
        (
            "binary_cross_entropy",
            err(try_binary_cross_entropy(&a, &b, None, r)),
        ),
        (
            "binary_cross_entropy_with_logits",
            err(try_binary_cross_entropy_with_logits(
                &a,
                &b,
                &Default::default(),
            )),
        ),
        ("kl_div", err(try_kl_div(&a, &b, r, false))),
        ("soft_margin_loss", err(try_soft_margin_loss(&a, &b, r))),
    ] {
        assert!(
            e.starts_with(&format!("{name}: shapes [2, 3] and [3] do not match")),
            "{e}"
        );
    }
    // Weights that do not broadcast to the input.
    let w = Tensor::ones([2]);
    let e = err(try_binary_cross_entropy(&a, &a, Some(&w), r));
    assert!(
        e.starts_with("binary_cross_entropy: shapes [2] and [2, 3]"),
        "{e}"
    );
    let e = err(try_binary_cross_entropy_with_logits(
        &a,
        &a,
        &BceWithLogitsOptions::default().pos_weight(Tensor::ones([4])),
    ));
    assert!(
        e.starts_with("binary_cross_entropy_with_logits: shapes [4] and [2, 3]"),
        "{e}"
    );

    // Class losses: targets neither [N] indices nor input-shaped probabilities.
    let x = Tensor::zeros([4, 5]);
    for tgt in [
        Tensor::zeros([4, 6]),
        Tensor::zeros([5]),
        Tensor::zeros([4, 1]),
        Tensor::zeros([]),
    ] {
        let e = err(try_cross_entropy(&x, &tgt, &Default::default()));
        assert!(
            e.starts_with(&format!(
                "cross_entropy: shapes [4, 5] and {} do not match",
                tgt.shape()
            )),
            "{e}"
        );
        let e = err(try_nll_loss(&x, &tgt, &Default::default()));
        assert!(e.starts_with("nll_loss: shapes [4, 5] and"), "{e}");
    }
    let xk = Tensor::zeros([2, 3, 4]);
    let e = err(try_cross_entropy(
        &xk,
        &Tensor::zeros([2, 3]),
        &Default::default(),
    ));
    assert!(
        e.starts_with("cross_entropy: shapes [2, 3, 4] and [2, 3]"),
        "{e}"
    );
    assert!(try_cross_entropy(&xk, &Tensor::zeros([2, 4]), &Default::default()).is_ok());
    // Probabilities for nll_loss are a shape error.
    let e = err(try_nll_loss(&x, &x, &Default::default()));
    assert!(e.starts_with("nll_loss: shapes [4, 5] and [4, 5]"), "{e}");
    // Weight not [C].
    let y = Tensor::zeros([4]);
    let o = CrossEntropyOptions::default().weight(Tensor::ones([4]));
    let e = err(try_cross_entropy(&x, &y, &o));
    assert!(
        e.starts_with("cross_entropy: shapes [4, 5] and [4] do not match"),
        "{e}"
    );
    let e = err(try_nll_loss(
        &x,
        &y,
        &NllLossOptions::default().weight(Tensor::ones([5, 1])),
    ));
    assert!(e.starts_with("nll_loss: shapes [4, 5] and [5, 1]"), "{e}");
    // 0-D logits.
    let e = err(try_cross_entropy(
        &Tensor::zeros([]),
        &Tensor::zeros([]),
        &Default::default(),
    ));
    assert!(e.starts_with("cross_entropy: "), "{e}");
}

#[test]
fn class_index_errors_name_the_index_and_the_class_count() {
    let x = Tensor::zeros([3, 5]);
    let o = CrossEntropyOptions::default();
    let e = err(try_cross_entropy(&x, &t(&[0.0, 5.0, 1.0], &[3]), &o));
    assert_eq!(
        e,
        "cross_entropy: index 5 is out of range for a dimension of size 5"
    );
    let e = err(try_cross_entropy(&x, &t(&[0.0, -1.0, 1.0], &[3]), &o));
    assert_eq!(
        e,
        "cross_entropy: index -1 is out of range for a dimension of size 5"
    );
    let e = err(try_nll_loss(
        &x,
        &t(&[7.0, 1.0, 1.0], &[3]),
        &Default::default(),
    ));
    assert_eq!(
        e,
        "nll_loss: index 7 is out of range for a dimension of size 5"
    );
    for bad in [0.5, f32::NAN, f32::INFINITY] {
        let e = err(try_cross_entropy(&x, &t(&[0.0, bad, 1.0], &[3]), &o));
        assert!(
            e.starts_with("cross_entropy: class indices must be whole numbers"),
            "{e}"
        );
    }
    // 4-D: the index is checked in every position.
    let xk = Tensor::zeros([2, 3, 2, 2]);
    let mut yk = Tensor::zeros([2, 2, 2]);
    yk.set(&[1, 1, 0], 3.0);
    let e = err(try_cross_entropy(&xk, &yk, &o));
    assert_eq!(
        e,
        "cross_entropy: index 3 is out of range for a dimension of size 3"
    );
}

#[test]
fn option_errors() {
    let x = randn(&[3, 4], 81);
    let y = t(&[0.0, 1.0, 2.0], &[3]);
    let q = x.softmax(1);
    for ls in [-0.1, 1.5, f32::NAN] {
        let e = err(try_cross_entropy(
            &x,
            &y,
            &CrossEntropyOptions::default().label_smoothing(ls),
        ));
        assert_eq!(
            e,
            "cross_entropy: label_smoothing must be between 0.0 and 1.0"
        );
    }
    // ignore_index >= 0 with probabilities; negative ones are allowed.
    let e = err(try_cross_entropy(
        &x,
        &q,
        &CrossEntropyOptions::default().ignore_index(Some(1)),
    ));
    assert!(e.contains("ignore_index is not supported"), "{e}");
    assert!(
        try_cross_entropy(
            &x,
            &q,
            &CrossEntropyOptions::default().ignore_index(Some(-1))
        )
        .is_ok()
    );
    // Weights that require grad, where PyTorch does not differentiate them.
    let w = Tensor::ones([4]).with_requires_grad();
    let e = err(try_cross_entropy(
        &x,
        &y,
        &CrossEntropyOptions::default().weight(w.clone()),
    ));
    assert!(
        e.starts_with("cross_entropy: weight must not require grad"),
        "{e}"
    );
    let e = err(try_nll_loss(
        &x,
        &y,
        &NllLossOptions::default().weight(w.clone()),
    ));
    assert!(
        e.starts_with("nll_loss: weight must not require grad"),
        "{e}"
    );
    let p = x.sigmoid();
    let e = err(try_binary_cross_entropy(&p, &p, Some(&w), Reduction::Mean));
    assert!(
        e.starts_with("binary_cross_entropy: weight must not require grad"),
        "{e}"
    );
    let e = err(try_binary_cross_entropy_with_logits(
        &x,
        &p,
        &BceWithLogitsOptions::default().pos_weight(w.clone()),
    ));
    assert!(
        e.starts_with("binary_cross_entropy_with_logits: weight and pos_weight"),
        "{e}"
    );
    let e = err(try_soft_margin_loss(
        &x,
        &Tensor::ones([3, 4]).with_requires_grad(),
        Reduction::Mean,
    ));
    assert!(
        e.starts_with("soft_margin_loss: the target must not require grad"),
        "{e}"
    );
    // ...but under no_grad they are plain constants, and probabilities
    // cross-entropy differentiates its weight.
    no_grad(|| {
        assert!(
            try_cross_entropy(&x, &y, &CrossEntropyOptions::default().weight(w.clone())).is_ok()
        );
    });
    let xl = x.detach().with_requires_grad();
    cross_entropy(&xl, &q, &CrossEntropyOptions::default().weight(w.clone())).backward();
    assert_eq!(w.grad().unwrap().dims(), &[4]);
    // beta, delta, probabilities out of range.
    let e = err(try_smooth_l1_loss(&x, &x, Reduction::Mean, -1.0));
    assert_eq!(e, "smooth_l1_loss: beta must not be negative");
    for d in [0.0, -1.0, f32::NAN] {
        let e = err(try_huber_loss(&x, &x, Reduction::Mean, d));
        assert_eq!(e, "huber_loss: delta must be positive");
    }
    for bad in [1.5, -0.1, f32::NAN] {
        let p = t(&[0.5, bad], &[2]);
        let e = err(try_binary_cross_entropy(&p, &p, None, Reduction::Mean));
        assert_eq!(
            e,
            "binary_cross_entropy: all elements of input should be between 0 and 1"
        );
    }
}

#[test]
#[should_panic(expected = "cross_entropy: index 9 is out of range for a dimension of size 4")]
fn plain_form_panics_with_the_same_message() {
    cross_entropy(
        &Tensor::zeros([2, 4]),
        &t(&[9.0, 0.0], &[2]),
        &CrossEntropyOptions::default(),
    );
}

#[test]
#[should_panic(expected = "mse_loss: shapes [2] and [3] do not match")]
fn plain_mse_panics_with_the_same_message() {
    mse_loss(&Tensor::zeros([2]), &Tensor::zeros([3]), Reduction::Sum);
}
