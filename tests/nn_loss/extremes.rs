//! Extreme logits, empty and all-ignored batches, and PyTorch's defaults.

use crate::common::randn;
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, Reduction, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, soft_margin_loss, try_cross_entropy,
};
use train_station::{Error, Tensor};

use super::t;

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
