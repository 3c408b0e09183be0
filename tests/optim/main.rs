//! Optimizers, schedulers and gradient clipping against PyTorch
//! (tests/reference/gen_optim.py -> fixtures/optim.json), plus the identity,
//! in-place and state round-trip contracts.
//!
//! Modules: `trajectories` (optimizer steps against PyTorch), `schedulers`,
//! `clipping`, `contracts` (identity, in-place updates, registration and
//! configuration), `state` (export / import) and `training` (an end-to-end
//! run). This file holds the fixture readers and the optimizers and model the
//! modules share.

mod clipping;
mod contracts;
mod schedulers;
mod state;
mod training;
mod trajectories;

use serde_json::Value;
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::*;
use train_station::{Tensor, manual_seed};

// ------------------------------------------------------------------ fixtures

fn fixture() -> &'static Value {
    static CELL: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let path = format!(
            "{}/tests/reference/fixtures/optim.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    })
}

fn number(v: &Value) -> f32 {
    match v {
        Value::Number(n) => n.as_f64().unwrap() as f32,
        Value::String(s) => match s.as_str() {
            "nan" => f32::NAN,
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            o => panic!("bad number {o}"),
        },
        o => panic!("bad number {o}"),
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(number).collect()
}

fn shapes() -> Vec<Vec<usize>> {
    fixture()["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect()
        })
        .collect()
}

fn initial_params() -> Vec<Tensor> {
    let shapes = shapes();
    fixture()["initial"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&shapes)
        .map(|(d, s)| {
            Tensor::from_slice(&floats(d), s)
                .unwrap()
                .with_requires_grad()
        })
        .collect()
}

/// The gradients of step `t` (None: no gradient that step).
fn grads_at(t: usize) -> Vec<Option<Tensor>> {
    let shapes = shapes();
    fixture()["grads"][t]
        .as_array()
        .unwrap()
        .iter()
        .zip(&shapes)
        .map(|(g, s)| (!g.is_null()).then(|| Tensor::from_slice(&floats(g), s).unwrap()))
        .collect()
}

fn set_grads(params: &[Tensor], grads: &[Option<Tensor>]) {
    for (p, g) in params.iter().zip(grads) {
        p.set_grad(g.clone()).unwrap();
    }
}

fn step_all(opt: &mut dyn Optimizer, params: &mut [Tensor]) {
    let mut refs: Vec<&mut Tensor> = params.iter_mut().collect();
    opt.step(&mut refs).unwrap();
}

/// Largest `|got - want| / max(|want|, floor)` over all elements.
fn max_rel(got: &[f32], want: &[f32], floor: f32) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| {
            assert!(a.is_finite() == b.is_finite(), "{a} vs {b}");
            (a - b).abs() / b.abs().max(floor)
        })
        .fold(0.0, f32::max)
}

// ------------------------------------------------------------------ optimizers and a model

fn all_optimizers(params: &[Tensor]) -> Vec<(&'static str, Box<dyn Optimizer>)> {
    vec![
        (
            "SGD",
            Box::new(Sgd::new(
                params,
                SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 0.01,
                    ..Default::default()
                },
            )) as Box<dyn Optimizer>,
        ),
        (
            "Adam",
            Box::new(Adam::new(
                params,
                AdamConfig {
                    lr: 0.01,
                    amsgrad: true,
                    weight_decay: 0.1,
                    ..Default::default()
                },
            )),
        ),
        (
            "AdamW",
            Box::new(AdamW::new(
                params,
                AdamWConfig {
                    lr: 0.01,
                    ..Default::default()
                },
            )),
        ),
        (
            "RMSprop",
            Box::new(RmsProp::new(
                params,
                RmsPropConfig {
                    momentum: 0.5,
                    centered: true,
                    ..Default::default()
                },
            )),
        ),
    ]
}

fn mlp() -> Sequential {
    manual_seed(3);
    Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(Linear::new(8, 2))
}

fn loss_of(model: &Sequential) -> Tensor {
    let x = Tensor::from_fn([5, 4], |i| ((i[0] * 4 + i[1]) as f32 * 0.37).sin());
    let y = model.forward(&x);
    (&y * &y).mean()
}

fn fresh(kind: &str, params: &[Tensor]) -> Box<dyn Optimizer> {
    all_optimizers(params)
        .into_iter()
        .find(|(n, _)| *n == kind)
        .unwrap()
        .1
}
