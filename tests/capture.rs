//! Captured training steps (`nn::capture`): the same bits as the eager step
//! (loss, gradients, updated parameters) over several steps, for each
//! supported layer, optimizer and batch shape; frozen layers and ignored
//! targets; and clear errors that change nothing.

mod common;

use common::randn;
use train_station::nn::Reduction;
use train_station::nn::capture::CapturedStep;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy, mse_loss};
use train_station::nn::plan::PlanLoss;
use train_station::nn::{Dropout, Linear, Module, Relu, Sequential, Sigmoid, Silu, Tanh};
use train_station::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use train_station::{Error, Tensor};

/// A fresh copy of `t`'s values (no shared storage), requiring grad.
fn copy(t: &Tensor) -> Tensor {
    Tensor::from_slice(&t.to_vec(), t.dims())
        .unwrap()
        .with_requires_grad()
}

/// `widths[0] -> widths[1] -> ...` with `act` between layers, from seeded
/// weights; two calls give equal, independent models.
fn mlp(widths: &[usize], act: &str, seed: u64) -> Sequential {
    let mut m = Sequential::new();
    for (i, w) in widths.windows(2).enumerate() {
        let s = seed + 10 * i as u64;
        let weight = randn(&[w[1], w[0]], s).mul_scalar(0.3);
        let bias = randn(&[w[1]], s + 1).mul_scalar(0.1);
        m = m.with(Linear::from_parameters(copy(&weight), Some(copy(&bias))).unwrap());
        if i + 2 < widths.len() {
            m = match act {
                "relu" => m.with(Relu),
                "sigmoid" => m.with(Sigmoid),
                _ => m.with(Tanh),
            };
        }
    }
    m
}

fn optimizer(model: &Sequential, kind: &str) -> Box<dyn Optimizer> {
    let ps = model.parameters();
    match kind {
        "sgd" => Box::new(Sgd::new(
            &ps,
            SgdConfig {
                lr: 0.1,
                ..Default::default()
            },
        )),
        "momentum" => Box::new(Sgd::new(
            &ps,
            SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 1e-3,
                ..Default::default()
            },
        )),
        _ => Box::new(Adam::new(
            &ps,
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
        )),
    }
}

/// Panics with the first differing element unless `a` and `b` are equal bit
/// for bit.
fn same_bits(a: &Tensor, b: &Tensor, what: &str) {
    let (a, b) = (a.to_vec(), b.to_vec());
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
        panic!("{what}: element {i} differs: {} vs {}", a[i], b[i]);
    }
}

/// Batches `[batch, features]` with targets for `loss`: class indices in
/// `0..outputs` (row 1 ignored when `ignore`), or values `[batch, outputs]`.
fn batches(
    batch: usize,
    features: usize,
    outputs: usize,
    loss: PlanLoss,
    ignore: bool,
) -> Vec<(Tensor, Tensor)> {
    (0..3)
        .map(|s| {
            let x = randn(&[batch, features], 100 + s);
            let y = match loss {
                PlanLoss::CrossEntropy => Tensor::from_fn([batch], |i| {
                    if ignore && i[0] == 1 {
                        -100.0
                    } else {
                        ((i[0] * 7 + s as usize) % outputs) as f32
                    }
                }),
                PlanLoss::Mse => randn(&[batch, outputs], 200 + s),
            };
            (x, y)
        })
        .collect()
}

fn eager_step(
    model: &mut Sequential,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    y: &Tensor,
    kind: PlanLoss,
) -> f32 {
    let out = model.forward(x);
    let loss = match kind {
        PlanLoss::CrossEntropy => cross_entropy(&out, y, &CrossEntropyOptions::default()),
        PlanLoss::Mse => mse_loss(&out, y, Reduction::Mean),
    };
    model.zero_grad();
    loss.backward();
    opt.step_module(model).unwrap();
    loss.item()
}

/// Runs three steps eagerly and captured from equal models and compares
/// every loss, gradient and parameter bit for bit.
fn check_same_bits(
    widths: &[usize],
    act: &str,
    opt_kind: &str,
    batch: usize,
    freeze_first: bool,
    loss: PlanLoss,
) {
    let what = format!("{widths:?} {act} {opt_kind} batch {batch} freeze {freeze_first} {loss:?}");
    let (mut eager, mut captured) = (mlp(widths, act, 7), mlp(widths, act, 7));
    if freeze_first {
        for m in [&mut eager, &mut captured] {
            m.visit_params_mut("", &mut |n, p| {
                if n.starts_with("0.") {
                    p.set_requires_grad(false);
                }
            });
        }
    }
    let (mut oe, mut oc) = (optimizer(&eager, opt_kind), optimizer(&captured, opt_kind));
    let outputs = *widths.last().unwrap();
    let mut step = CapturedStep::new(&captured, batch, widths[0], loss).unwrap();
    for (i, (x, y)) in batches(batch, widths[0], outputs, loss, batch > 2)
        .iter()
        .enumerate()
    {
        let le = eager_step(&mut eager, oe.as_mut(), x, y, loss);
        let lc = step.step(&mut captured, oc.as_mut(), x, y).unwrap();
        assert_eq!(
            le.to_bits(),
            lc.to_bits(),
            "{what}: loss of step {i}: {le} vs {lc}"
        );
        for ((n, pe), (_, pc)) in eager
            .named_parameters()
            .iter()
            .zip(captured.named_parameters())
        {
            same_bits(pe, &pc, &format!("{what}: {n} after step {i}"));
            match (pe.grad(), pc.grad()) {
                (Some(ge), Some(gc)) => same_bits(&ge, &gc, &format!("{what}: grad of {n}")),
                (None, None) => assert!(freeze_first && n.starts_with("0."), "{what}: {n}"),
                _ => panic!("{what}: {n} has a gradient on one side only"),
            }
        }
    }
}

#[test]
fn captured_steps_equal_eager_steps_bit_for_bit() {
    for (widths, act) in [
        (&[64, 32, 10][..], "relu"),
        (&[5, 7, 6, 3][..], "sigmoid"),
        (&[9, 4, 12][..], "tanh"),
    ] {
        for opt in ["sgd", "momentum", "adam"] {
            for batch in [1, 3, 16] {
                for loss in [PlanLoss::CrossEntropy, PlanLoss::Mse] {
                    check_same_bits(widths, act, opt, batch, false, loss);
                }
            }
        }
    }
    check_same_bits(
        &[64, 32, 10],
        "relu",
        "adam",
        16,
        true,
        PlanLoss::CrossEntropy,
    );
    check_same_bits(&[5, 7, 6, 3], "tanh", "momentum", 4, true, PlanLoss::Mse);
}

#[test]
fn a_step_lowers_the_loss_and_leaves_gradients_in_the_parameters() {
    let mut model = mlp(&[8, 16, 4], "relu", 3);
    let mut opt = optimizer(&model, "sgd");
    let mut step = CapturedStep::new(&model, 8, 8, PlanLoss::CrossEntropy).unwrap();
    let (x, y) = batches(8, 8, 4, PlanLoss::CrossEntropy, false).remove(0);
    let first = step.step(&mut model, opt.as_mut(), &x, &y).unwrap();
    // A caller holding a gradient does not see it overwritten by the next
    // step (the step's buffer is then copied on write).
    let held = model.parameters()[0].grad().unwrap();
    let before = held.to_vec();
    for _ in 0..20 {
        step.step(&mut model, opt.as_mut(), &x, &y).unwrap();
    }
    let last = step.step(&mut model, opt.as_mut(), &x, &y).unwrap();
    assert!(last < first * 0.5, "{first} -> {last}");
    assert_eq!(held.to_vec(), before);
    assert!(step.bytes() >= 4 * (8 * (16 + 16 + 4 + 4) + 16 * 8 + 16 + 4 * 16 + 4));
}

fn err_op(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { op, .. }
        | Error::ShapeMismatch { op, .. }
        | Error::IndexOutOfRange { op, .. } => op,
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn models_that_cannot_be_captured_are_refused() {
    // A layer used twice (its clone shares the parameters): the gradients
    // of both uses would have to be summed.
    let shared = Linear::new(4, 4);
    let mut frozen = mlp(&[4, 3], "relu", 1);
    frozen.set_requires_grad(false);
    for model in [
        Sequential::new().with(Linear::new(4, 4)).with(Silu),
        Sequential::new()
            .with(Linear::new(4, 4))
            .with(Dropout::new(0.5)),
        Sequential::new()
            .with(shared.clone())
            .with(Relu)
            .with(shared),
        frozen,
        // A strided bias (the captured step reads biases as slices).
        Sequential::new().with(
            Linear::from_parameters(
                randn(&[3, 4], 1).with_requires_grad(),
                Some(randn(&[3, 2], 2).select(1, 0).with_requires_grad()),
            )
            .unwrap(),
        ),
    ] {
        let e = CapturedStep::new(&model, 2, 4, PlanLoss::CrossEntropy)
            .err()
            .unwrap();
        assert_eq!(err_op(e), "capture");
    }
    let model = mlp(&[4, 3], "relu", 1);
    let e = CapturedStep::new(&model, 2, 5, PlanLoss::CrossEntropy)
        .err()
        .unwrap();
    assert_eq!(err_op(e), "capture");
}

#[test]
fn bad_batches_targets_and_models_are_errors_that_change_nothing() {
    let mut model = mlp(&[4, 6, 3], "relu", 5);
    let mut opt = optimizer(&model, "adam");
    let mut step = CapturedStep::new(&model, 2, 4, PlanLoss::CrossEntropy).unwrap();
    let x = randn(&[2, 4], 9);
    let before: Vec<Vec<f32>> = model.parameters().iter().map(|p| p.to_vec()).collect();
    let bad: [(Tensor, Tensor); 7] = [
        (randn(&[3, 4], 1), Tensor::zeros([3])),
        (randn(&[2, 5], 1), Tensor::zeros([2])),
        (x.clone(), Tensor::zeros([3])),
        (x.clone(), Tensor::from_slice(&[0.0, 3.0], [2]).unwrap()),
        (x.clone(), Tensor::from_slice(&[0.5, 1.0], [2]).unwrap()),
        (x.clone(), Tensor::from_slice(&[-1.0, 1.0], [2]).unwrap()),
        (x.clone(), Tensor::zeros([2, 3])),
    ];
    for (bx, by) in &bad {
        let e = step.step(&mut model, opt.as_mut(), bx, by).err().unwrap();
        assert_eq!(
            err_op(e),
            "captured_step",
            "{:?} {:?}",
            bx.dims(),
            by.to_vec()
        );
    }
    let mut other = mlp(&[4, 6, 3], "relu", 5);
    let e = step
        .step(&mut other, opt.as_mut(), &x, &Tensor::zeros([2]))
        .err()
        .unwrap();
    assert_eq!(err_op(e), "captured_step");
    let after: Vec<Vec<f32>> = model.parameters().iter().map(|p| p.to_vec()).collect();
    assert_eq!(before, after);
    assert!(model.parameters().iter().all(|p| p.grad().is_none()));
    // Freezing a layer after the capture changes what the step computes.
    model.parameters_mut()[0].set_requires_grad(false);
    let e = step
        .step(&mut model, opt.as_mut(), &x, &Tensor::zeros([2]))
        .err()
        .unwrap();
    assert_eq!(err_op(e), "captured_step");
}
