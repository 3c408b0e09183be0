//! Optimizer trajectories against PyTorch: every fixture case (optimizer,
//! hyper-parameters, parameter groups) stepped 50 times.

use serde_json::Value;
use train_station::Tensor;
use train_station::optim::*;

use super::{fixture, floats, grads_at, initial_params, max_rel, number, set_grads, step_all};

fn h(hyper: &Value, name: &str) -> Option<f32> {
    hyper.get(name).map(|v| match v {
        Value::Bool(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        v => number(v),
    })
}

fn flag(hyper: &Value, name: &str, default: bool) -> bool {
    hyper.get(name).map_or(default, |v| v.as_bool().unwrap())
}

fn sgd_config(hy: &Value) -> SgdConfig {
    let d = SgdConfig::default();
    SgdConfig {
        lr: h(hy, "lr").unwrap_or(d.lr),
        momentum: h(hy, "momentum").unwrap_or(d.momentum),
        dampening: h(hy, "dampening").unwrap_or(d.dampening),
        weight_decay: h(hy, "weight_decay").unwrap_or(d.weight_decay),
        nesterov: flag(hy, "nesterov", d.nesterov),
        maximize: flag(hy, "maximize", d.maximize),
    }
}

fn adam_config(hy: &Value, d: AdamConfig) -> AdamConfig {
    AdamConfig {
        lr: h(hy, "lr").unwrap_or(d.lr),
        betas: (
            h(hy, "beta1").unwrap_or(d.betas.0),
            h(hy, "beta2").unwrap_or(d.betas.1),
        ),
        eps: h(hy, "eps").unwrap_or(d.eps),
        weight_decay: h(hy, "weight_decay").unwrap_or(d.weight_decay),
        amsgrad: flag(hy, "amsgrad", d.amsgrad),
        maximize: flag(hy, "maximize", d.maximize),
    }
}

fn rmsprop_config(hy: &Value) -> RmsPropConfig {
    let d = RmsPropConfig::default();
    RmsPropConfig {
        lr: h(hy, "lr").unwrap_or(d.lr),
        alpha: h(hy, "alpha").unwrap_or(d.alpha),
        eps: h(hy, "eps").unwrap_or(d.eps),
        weight_decay: h(hy, "weight_decay").unwrap_or(d.weight_decay),
        momentum: h(hy, "momentum").unwrap_or(d.momentum),
        centered: flag(hy, "centered", d.centered),
        maximize: flag(hy, "maximize", d.maximize),
    }
}

/// The optimizer of a fixture case over `params`, one group per fixture
/// group (built with the constructor, then `add_param_group`).
fn build(case: &Value, params: &[Tensor]) -> Box<dyn Optimizer> {
    let groups: Vec<(Vec<Tensor>, &Value)> = case["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let idx: Vec<Tensor> = g["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| params[i.as_u64().unwrap() as usize].clone())
                .collect();
            (idx, &g["hyper"])
        })
        .collect();
    let (first, rest) = groups.split_first().unwrap();
    match case["kind"].as_str().unwrap() {
        "SGD" => {
            let mut o = Sgd::new(&first.0, sgd_config(first.1));
            for (p, hy) in rest {
                o.add_param_group(p, sgd_config(hy)).unwrap();
            }
            Box::new(o)
        }
        "Adam" => {
            let mut o = Adam::new(&first.0, adam_config(first.1, AdamConfig::default()));
            for (p, hy) in rest {
                o.add_param_group(p, adam_config(hy, AdamConfig::default()))
                    .unwrap();
            }
            Box::new(o)
        }
        "AdamW" => {
            let d: AdamConfig = AdamWConfig::default().into();
            let mut o = AdamW::new(&first.0, adam_config(first.1, d).into());
            for (p, hy) in rest {
                o.add_param_group(p, adam_config(hy, d).into()).unwrap();
            }
            Box::new(o)
        }
        "RMSprop" => {
            let mut o = RmsProp::new(&first.0, rmsprop_config(first.1));
            for (p, hy) in rest {
                o.add_param_group(p, rmsprop_config(hy)).unwrap();
            }
            Box::new(o)
        }
        k => panic!("unknown optimizer kind {k}"),
    }
}

fn values(params: &[Tensor]) -> Vec<f32> {
    params.iter().flat_map(|p| p.to_vec()).collect()
}

/// Tolerance of the trajectories: 1e-5 relative, plus 1e-6 absolute for
/// elements near zero (a parameter crossing zero has no meaningful relative
/// error; its absolute error is that of the O(1) terms that cancelled).
const TRAJ_RTOL: f32 = 1e-5;
const TRAJ_ATOL: f32 = 1e-6;

/// Largest `|got - want| / (TRAJ_ATOL + TRAJ_RTOL * |want|)`: at most 1 when
/// every element is within tolerance.
fn traj_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (TRAJ_ATOL + TRAJ_RTOL * b.abs()))
        .fold(
            0.0,
            |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) },
        )
}

#[test]
fn optimizer_trajectories_match_pytorch() {
    let cases = fixture()["optimizers"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut worst = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut params = initial_params();
        let mut opt = build(case, &params);
        let traj = case["trajectory"].as_array().unwrap();
        assert_eq!(traj.len(), 50, "{name}");
        let (mut rel, mut abs) = (0.0f32, 0.0f32);
        for (t, want) in traj.iter().enumerate() {
            set_grads(&params, &grads_at(t));
            step_all(opt.as_mut(), &mut params);
            let (got, want) = (values(&params), floats(want));
            let err = traj_err(&got, &want);
            assert!(
                err <= 1.0,
                "{name}: step {}: error {err} x tolerance\n got {got:?}\nwant {want:?}",
                t + 1,
            );
            rel = rel.max(max_rel(&got, &want, 1e-2));
            abs = abs.max(
                got.iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max),
            );
        }
        worst.push((name, rel, abs));
    }
    for (name, rel, abs) in worst {
        eprintln!("{name:30} max error over 50 steps: relative {rel:.1e}, absolute {abs:.1e}");
    }
}

/// The trajectory test can fail: a slightly different hyper-parameter (lr
/// off by 0.1%) is caught within the tolerance.
#[test]
fn trajectory_check_detects_a_small_deviation() {
    let case = &fixture()["optimizers"][0];
    assert_eq!(case["name"], "sgd_plain");
    let mut params = initial_params();
    let mut opt = Sgd::new(
        &params,
        SgdConfig {
            lr: 0.1 * 1.001,
            ..Default::default()
        },
    );
    let mut worst = 0.0f32;
    for (t, want) in case["trajectory"].as_array().unwrap().iter().enumerate() {
        set_grads(&params, &grads_at(t));
        step_all(&mut opt, &mut params);
        worst = worst.max(traj_err(&values(&params), &floats(want)));
    }
    assert!(worst > 10.0, "{worst}");
}
