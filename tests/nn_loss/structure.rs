//! The graph cross-entropy records, its agreement with its definitions, and
//! results on views.

use crate::common::{check_views_equal, randn, uniform};
use train_station::Tensor;
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, Reduction,
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss,
};

use super::{REDUCTIONS, t};

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
