//! Error messages: shapes, class indices and options, in the `try_` and the
//! plain (panicking) forms.

use crate::common::randn;
use train_station::nn::loss::{
    BceWithLogitsOptions, CrossEntropyOptions, NllLossOptions, Reduction, cross_entropy, mse_loss,
    try_binary_cross_entropy, try_binary_cross_entropy_with_logits, try_cross_entropy,
    try_huber_loss, try_kl_div, try_l1_loss, try_mse_loss, try_nll_loss, try_smooth_l1_loss,
    try_soft_margin_loss,
};
use train_station::{Tensor, no_grad};

use super::t;

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
