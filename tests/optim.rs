//! Optimizers, schedulers and gradient clipping against PyTorch
//! (tests/reference/gen_optim.py -> fixtures/optim.json), plus the identity,
//! in-place and state round-trip contracts.

use serde_json::Value;
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::*;
use train_station::{Error, Tensor, manual_seed, no_grad};

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

// ------------------------------------------------------------------ building optimizers

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

fn step_all(opt: &mut dyn Optimizer, params: &mut [Tensor]) {
    let mut refs: Vec<&mut Tensor> = params.iter_mut().collect();
    opt.step(&mut refs).unwrap();
}

fn values(params: &[Tensor]) -> Vec<f32> {
    params.iter().flat_map(|p| p.to_vec()).collect()
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

// ------------------------------------------------------------------ schedulers

fn build_scheduler(opt: &mut dyn Optimizer, spec: &Value) -> Box<dyn LrScheduler> {
    let args = &spec["args"];
    let f = |n: &str| args.get(n).map(number);
    let u = |n: &str| args.get(n).map(|v| v.as_u64().unwrap() as usize);
    match spec["type"].as_str().unwrap() {
        "StepLR" => Box::new(StepLr::new(
            opt,
            u("step_size").unwrap(),
            f("gamma").unwrap_or(0.1),
        )),
        "MultiStepLR" => {
            let m: Vec<usize> = args["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            Box::new(MultiStepLr::new(opt, &m, f("gamma").unwrap_or(0.1)))
        }
        "ExponentialLR" => Box::new(ExponentialLr::new(opt, f("gamma").unwrap())),
        "CosineAnnealingLR" => Box::new(CosineAnnealingLr::new(
            opt,
            u("T_max").unwrap(),
            f("eta_min").unwrap_or(0.0),
        )),
        "LinearLR" => Box::new(LinearLr::new(
            opt,
            f("start_factor").unwrap_or(1.0 / 3.0),
            f("end_factor").unwrap_or(1.0),
            u("total_iters").unwrap_or(5),
        )),
        "ConstantLR" => Box::new(ConstantLr::new(
            opt,
            f("factor").unwrap_or(1.0 / 3.0),
            u("total_iters").unwrap_or(5),
        )),
        "OneCycleLR" => {
            let d = OneCycleConfig::default();
            let cfg = OneCycleConfig {
                pct_start: f("pct_start").unwrap_or(d.pct_start),
                anneal_strategy: match args.get("anneal_strategy").and_then(Value::as_str) {
                    Some("linear") => Anneal::Linear,
                    _ => Anneal::Cos,
                },
                cycle_momentum: args
                    .get("cycle_momentum")
                    .is_none_or(|v| v.as_bool().unwrap()),
                base_momentum: f("base_momentum").unwrap_or(d.base_momentum),
                max_momentum: f("max_momentum").unwrap_or(d.max_momentum),
                div_factor: f("div_factor").unwrap_or(d.div_factor),
                final_div_factor: f("final_div_factor").unwrap_or(d.final_div_factor),
                three_phase: args
                    .get("three_phase")
                    .is_some_and(|v| v.as_bool().unwrap()),
            };
            let max_lr = floats(&args["max_lr"]);
            Box::new(OneCycleLr::new(
                opt,
                &max_lr,
                u("total_steps").unwrap(),
                cfg,
            ))
        }
        "SequentialLR" => {
            let children: Vec<Box<dyn LrScheduler>> = spec["children"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| build_scheduler(opt, c))
                .collect();
            let m: Vec<usize> = spec["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            Box::new(SequentialLr::new(opt, children, &m))
        }
        t => panic!("unknown scheduler {t}"),
    }
}

fn scheduler_optimizer(case: &Value) -> (Box<dyn Optimizer>, Vec<Tensor>) {
    let lrs = floats(&case["lrs"]);
    let p = vec![
        Tensor::zeros([2]).with_requires_grad(),
        Tensor::zeros([3]).with_requires_grad(),
    ];
    let opt: Box<dyn Optimizer> = match case["optimizer"].as_str().unwrap() {
        "SGD" => {
            let c = SgdConfig {
                lr: lrs[0],
                momentum: 0.9,
                ..Default::default()
            };
            let mut o = Sgd::new(&p[..1], c);
            o.add_param_group(&p[1..], SgdConfig { lr: lrs[1], ..c })
                .unwrap();
            Box::new(o)
        }
        "Adam" => {
            let c = AdamConfig {
                lr: lrs[0],
                ..Default::default()
            };
            let mut o = Adam::new(&p[..1], c);
            o.add_param_group(&p[1..], AdamConfig { lr: lrs[1], ..c })
                .unwrap();
            Box::new(o)
        }
        k => panic!("{k}"),
    };
    (opt, p)
}

fn momenta(opt: &dyn Optimizer, kind: &str) -> Vec<f32> {
    let name = if kind == "SGD" { "momentum" } else { "beta1" };
    (0..opt.lrs().len())
        .map(|g| opt.hyper(g, name).unwrap())
        .collect()
}

/// Relative tolerance of scheduled learning rates: they are computed in f64
/// as PyTorch does and rounded once to f32.
const LR_RTOL: f32 = 1e-6;

#[test]
fn scheduler_sequences_match_pytorch() {
    let cases = fixture()["schedulers"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["optimizer"].as_str().unwrap();
        let (mut opt, _p) = scheduler_optimizer(case);
        let mut sched = build_scheduler(opt.as_mut(), &case["scheduler"]);
        let lr = case["lr"].as_array().unwrap();
        let mom = case["momentum"].as_array().unwrap();
        assert_eq!(lr.len(), case["steps"].as_u64().unwrap() as usize + 1);
        for (t, (want_lr, want_m)) in lr.iter().zip(mom).enumerate() {
            if t > 0 {
                sched.step(opt.as_mut());
            }
            let (got, want) = (opt.lrs(), floats(want_lr));
            assert_eq!(sched.last_lrs(), got, "{name}: last_lrs at {t}");
            let err = max_rel(&got, &want, 1e-12);
            assert!(
                err <= LR_RTOL,
                "{name}: epoch {t}: lrs {got:?}, PyTorch {want:?}"
            );
            let (got, want) = (momenta(opt.as_ref(), kind), floats(want_m));
            let err = max_rel(&got, &want, 1e-12);
            assert!(
                err <= LR_RTOL,
                "{name}: epoch {t}: momentum {got:?}, PyTorch {want:?}"
            );
        }
    }
}

#[test]
fn scheduler_state_round_trip_continues_identically() {
    for case in fixture()["schedulers"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let (mut opt_a, _pa) = scheduler_optimizer(case);
        let mut a = build_scheduler(opt_a.as_mut(), &case["scheduler"]);
        for _ in 0..steps / 2 {
            a.step(opt_a.as_mut());
        }
        // A fresh optimizer + scheduler, then both states restored.
        let (mut opt_b, pb) = scheduler_optimizer(case);
        let mut b = build_scheduler(opt_b.as_mut(), &case["scheduler"]);
        let mut st = opt_a.export_state();
        let ids_a: Vec<u64> = st.groups.iter().flat_map(|g| g.params.clone()).collect();
        st.remap_ids(|id| pb[ids_a.iter().position(|&x| x == id).unwrap()].id());
        opt_b.import_state(&st).unwrap();
        b.import_state(&a.export_state()).unwrap();
        assert_eq!(b.last_lrs(), a.last_lrs(), "{name}");
        for t in steps / 2..steps {
            a.step(opt_a.as_mut());
            b.step(opt_b.as_mut());
            let (la, lb) = (opt_a.lrs(), opt_b.lrs());
            let err = max_rel(&lb, &la, 1e-12);
            assert!(err <= 1e-6, "{name}: step {t}: {lb:?} vs {la:?}");
        }
    }
}

#[test]
fn scheduler_import_rejects_bad_state() {
    let p = Tensor::zeros([1]).with_requires_grad();
    let mut opt = Sgd::new(&[p], SgdConfig::default());
    let mut s = StepLr::new(&mut opt, 2, 0.5);
    let mut st = s.export_state();
    st.push(("bogus".into(), 1.0));
    assert!(s.import_state(&st).is_err());
    let st: Vec<_> = s
        .export_state()
        .into_iter()
        .filter(|(n, _)| n != "last_epoch")
        .collect();
    assert!(s.import_state(&st).is_err());
    let warm = LinearLr::new(&mut opt, 0.5, 1.0, 2);
    let cos = CosineAnnealingLr::new(&mut opt, 4, 0.0);
    let mut seq = SequentialLr::new(&mut opt, vec![Box::new(warm), Box::new(cos)], &[2]);
    seq.step(&mut opt);
    let mut st = seq.export_state();
    st.push(("7.last_epoch".into(), 1.0));
    assert!(seq.import_state(&st).is_err());
    let good = seq.export_state();
    seq.import_state(&good).unwrap();
    assert_eq!(seq.export_state(), good);
}

#[test]
fn scheduler_argument_errors() {
    let p = Tensor::zeros([1]).with_requires_grad();
    let mut opt = Sgd::new(&[p], SgdConfig::default());
    assert!(StepLr::try_new(&mut opt, 0, 0.1).is_err());
    assert!(CosineAnnealingLr::try_new(&mut opt, 0, 0.0).is_err());
    assert!(LinearLr::try_new(&mut opt, 0.0, 1.0, 5).is_err());
    assert!(LinearLr::try_new(&mut opt, 0.5, 1.5, 5).is_err());
    assert!(ConstantLr::try_new(&mut opt, 0.0, 5).is_err());
    assert!(OneCycleLr::try_new(&mut opt, &[1.0, 2.0], 10, OneCycleConfig::default()).is_err());
    assert!(OneCycleLr::try_new(&mut opt, &[1.0], 0, OneCycleConfig::default()).is_err());
    let cfg = OneCycleConfig {
        pct_start: 0.1,
        ..Default::default()
    };
    // pct_start * total_steps - 1 == 0: the first phase has no steps.
    assert!(OneCycleLr::try_new(&mut opt, &[1.0], 10, cfg).is_err());
    assert!(SequentialLr::try_new(&mut opt, vec![], &[]).is_err());
    let a = ExponentialLr::new(&mut opt, 0.9);
    assert!(SequentialLr::try_new(&mut opt, vec![Box::new(a)], &[3]).is_err());
    // RMSprop has momentum, so cycling works there too; a one-group max_lr
    // list broadcasts.
    let q = Tensor::zeros([1]).with_requires_grad();
    let mut rms = RmsProp::new(&[q], RmsPropConfig::default());
    let s = OneCycleLr::new(&mut rms, &[0.5], 10, OneCycleConfig::default());
    assert_eq!(rms.hyper(0, "momentum"), Some(0.95));
    assert!((s.last_lrs()[0] - 0.02).abs() < 1e-8);
}

/// A learning rate changed by hand between steps is taken up (PyTorch's
/// chainable behaviour), not overwritten from the scheduler's memory.
#[test]
fn scheduler_continues_from_a_manually_changed_lr() {
    let p = Tensor::zeros([1]).with_requires_grad();
    let mut opt = Sgd::new(
        &[p],
        SgdConfig {
            lr: 1.0,
            ..Default::default()
        },
    );
    let mut s = ExponentialLr::new(&mut opt, 0.5);
    s.step(&mut opt);
    assert_eq!(opt.lrs(), vec![0.5]);
    opt.set_lr(0, 8.0);
    s.step(&mut opt);
    assert_eq!(opt.lrs(), vec![4.0]);
}

/// 10 000 exponential steps stay within f64 rounding of the closed form:
/// the scheduler does not re-read its own f32 output.
#[test]
fn long_schedules_do_not_accumulate_f32_rounding() {
    let p = Tensor::zeros([1]).with_requires_grad();
    let mut opt = Sgd::new(
        &[p],
        SgdConfig {
            lr: 1.0,
            ..Default::default()
        },
    );
    let mut s = ExponentialLr::new(&mut opt, 0.9999);
    for _ in 0..10_000 {
        s.step(&mut opt);
    }
    let want = 0.9999f64.powi(10_000) as f32;
    assert!(
        (opt.lrs()[0] - want).abs() <= want * 2e-7,
        "{:?}",
        opt.lrs()
    );
}

// ------------------------------------------------------------------ clipping

fn clip_params(case: &Value) -> Vec<Tensor> {
    let mut shapes = shapes();
    shapes.push(vec![2]);
    case["grads"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&shapes)
        .map(|(g, s)| {
            let p = Tensor::zeros(s).with_requires_grad();
            if !g.is_null() {
                p.set_grad(Some(Tensor::from_slice(&floats(g), s).unwrap()))
                    .unwrap();
            }
            p
        })
        .collect()
}

fn check_clipped(name: &str, params: &[Tensor], case: &Value) {
    for (i, (p, want)) in params
        .iter()
        .zip(case["clipped"].as_array().unwrap())
        .enumerate()
    {
        match p.grad() {
            None => assert!(want.is_null(), "{name}: grad {i} missing"),
            Some(g) => {
                let err = max_rel(&g.to_vec(), &floats(want), 1e-6);
                assert!(err <= 1e-6, "{name}: grad {i}: {:?} vs {want}", g.to_vec());
            }
        }
    }
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    let cases = fixture()["clip"]["norm"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let params = clip_params(case);
        let norm_type = number(&case["norm_type"]);
        let total = clip_grad_norm(&params, number(&case["max_norm"]), norm_type).unwrap();
        let want = number(&case["total_norm"]);
        assert!(
            (total - want).abs() <= 1e-6 * want,
            "{name}: total norm {total} vs {want}"
        );
        check_clipped(name, &params, case);
    }
}

#[test]
fn clip_grad_value_matches_pytorch() {
    for case in fixture()["clip"]["value"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let params = clip_params(case);
        clip_grad_value(&params, number(&case["clip_value"])).unwrap();
        check_clipped(name, &params, case);
    }
}

#[test]
fn clipping_edge_cases() {
    // No gradients at all: total norm 0, nothing changes.
    let p = Tensor::zeros([3]).with_requires_grad();
    assert_eq!(
        clip_grad_norm(std::slice::from_ref(&p), 1.0, 2.0).unwrap(),
        0.0
    );
    assert!(p.grad().is_none());
    // Invalid arguments.
    assert!(clip_grad_norm(std::slice::from_ref(&p), 1.0, 0.0).is_err());
    assert!(clip_grad_norm(std::slice::from_ref(&p), 1.0, f32::NAN).is_err());
    assert!(clip_grad_value(std::slice::from_ref(&p), -1.0).is_err());
    // NaN in a gradient: the norm is NaN and every gradient becomes NaN, as
    // in PyTorch (error_if_nonfinite=False).
    let q = Tensor::zeros([2]).with_requires_grad();
    p.set_grad(Some(
        Tensor::from_slice(&[1.0, f32::NAN, 2.0], [3]).unwrap(),
    ))
    .unwrap();
    q.set_grad(Some(Tensor::from_slice(&[3.0, 4.0], [2]).unwrap()))
        .unwrap();
    let n = clip_grad_norm(&[p.clone(), q.clone()], 1.0, 2.0).unwrap();
    assert!(n.is_nan());
    assert!(q.grad().unwrap().to_vec().iter().all(|v| v.is_nan()));
    // A clone of the gradient taken before clipping keeps its values.
    q.set_grad(Some(Tensor::from_slice(&[3.0, 4.0], [2]).unwrap()))
        .unwrap();
    let before = q.grad().unwrap();
    let n = clip_grad_norm(std::slice::from_ref(&q), 1.0, f32::INFINITY).unwrap();
    assert_eq!(n, 4.0);
    assert_eq!(before.to_vec(), vec![3.0, 4.0]);
    let after = q.grad().unwrap().to_vec();
    assert!((after[1] - 1.0).abs() < 1e-6, "{after:?}");
    // NaN passes through clip_grad_value.
    p.set_grad(Some(
        Tensor::from_slice(&[-5.0, f32::NAN, 0.25], [3]).unwrap(),
    ))
    .unwrap();
    clip_grad_value(std::slice::from_ref(&p), 0.5).unwrap();
    let v = p.grad().unwrap().to_vec();
    assert_eq!(v[0], -0.5);
    assert!(v[1].is_nan());
    assert_eq!(v[2], 0.25);
}

// ------------------------------------------------------------------ identity and in-place

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

/// After backward released the graph, a step writes into the existing
/// buffers: same data pointer, same id, for every optimizer.
#[test]
fn step_after_backward_updates_in_place() {
    for kind in 0..4 {
        let mut model = mlp();
        let params = model.parameters();
        let mut opt = all_optimizers(&params).swap_remove(kind).1;
        drop(params); // held handles would share the buffers (copy on write)
        for _ in 0..3 {
            let loss = loss_of(&model);
            loss.backward();
            drop(loss);
            let before: Vec<(u64, *const f32, Vec<f32>)> = model
                .parameters()
                .iter()
                .map(|p| (p.id(), p.data().as_ptr(), p.to_vec()))
                .collect();
            opt.step_module(&mut model).unwrap();
            for (p, (id, ptr, old)) in model.parameters().iter().zip(&before) {
                assert_eq!(p.id(), *id);
                assert_eq!(
                    p.data().as_ptr(),
                    *ptr,
                    "optimizer {kind} copied a parameter"
                );
                assert_ne!(&p.to_vec(), old, "optimizer {kind} did not update");
                assert!(p.requires_grad() && p.is_leaf());
            }
            model.zero_grad();
        }
    }
}

/// `+=` on a parameter (under no_grad) keeps its id, so the optimizer still
/// knows it; a replaced tensor (new id) is refused.
#[test]
fn add_assign_keeps_the_parameter_linked() {
    let mut w = Tensor::from_slice(&[1.0, 2.0], [2])
        .unwrap()
        .with_requires_grad();
    let mut opt = Adam::new(std::slice::from_ref(&w), AdamConfig::default());
    let id = w.id();
    no_grad(|| w += &Tensor::ones([2]));
    assert_eq!(w.id(), id);
    w.set_grad(Some(Tensor::ones([2]))).unwrap();
    opt.step(&mut [&mut w]).unwrap();
    let v = w.to_vec();
    assert!((v[0] - (2.0 - 1e-3)).abs() < 1e-6, "{v:?}");
    assert_eq!(opt.export_state().params.len(), 1);
    // A new tensor with the same values is another parameter.
    let mut other = no_grad(|| &w + 0.0).with_requires_grad();
    other.set_grad(Some(Tensor::ones([2]))).unwrap();
    let e = opt.step(&mut [&mut other]).unwrap_err();
    assert!(e.to_string().contains("not registered"), "{e}");
}

#[test]
fn unregistered_repeated_or_reshaped_parameters_are_errors() {
    let a = Tensor::zeros([2]).with_requires_grad();
    let b = Tensor::zeros([3]).with_requires_grad();
    for (name, mut opt) in all_optimizers(std::slice::from_ref(&a)) {
        let (mut a1, mut b1) = (a.clone(), b.clone());
        a1.set_grad(Some(Tensor::ones([2]))).unwrap();
        b1.set_grad(Some(Tensor::ones([3]))).unwrap();
        let before = a1.to_vec();
        // The registered one is not updated either: checks come first.
        let e = opt.step(&mut [&mut a1, &mut b1]).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("not registered"),
            "{name}: {e}"
        );
        assert_eq!(a1.to_vec(), before, "{name}");
        let mut a2 = a.clone();
        let e = opt.step(&mut [&mut a1, &mut a2]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{name}: {e}");
        // Registering a parameter twice.
        let e = match name {
            "SGD" => Sgd::try_new(&[a.clone(), a.clone()], SgdConfig::default()).err(),
            "Adam" => Adam::try_new(&[a.clone(), a.clone()], AdamConfig::default()).err(),
            "AdamW" => AdamW::try_new(&[a.clone(), a.clone()], AdamWConfig::default()).err(),
            _ => RmsProp::try_new(&[a.clone(), a.clone()], RmsPropConfig::default()).err(),
        };
        assert!(e.is_some(), "{name}");
    }
    let mut sgd = Sgd::new(std::slice::from_ref(&a), SgdConfig::default());
    assert!(
        sgd.add_param_group(&[b.clone(), a.clone()], SgdConfig::default())
            .is_err()
    );
    assert_eq!(
        sgd.num_groups(),
        1,
        "a failed add_param_group changes nothing"
    );
}

/// Parameters without a gradient, or frozen, are skipped (state and step
/// count untouched), as in PyTorch.
#[test]
fn parameters_without_gradients_are_skipped() {
    let mut a = Tensor::from_slice(&[1.0, 2.0], [2])
        .unwrap()
        .with_requires_grad();
    let mut b = Tensor::from_slice(&[3.0], [1]).unwrap();
    let mut opt = Adam::new(&[a.clone(), b.clone()], AdamConfig::default());
    opt.step(&mut [&mut a, &mut b]).unwrap();
    assert_eq!(a.to_vec(), vec![1.0, 2.0]);
    assert!(opt.export_state().params.is_empty());
    a.set_grad(Some(Tensor::ones([2]))).unwrap();
    opt.step(&mut [&mut a, &mut b]).unwrap();
    let st = opt.export_state();
    assert_eq!(st.params.len(), 1);
    assert_eq!(st.params[0].0, a.id());
    assert_eq!(b.to_vec(), vec![3.0]);
    // Freezing a module skips all of its parameters.
    let mut model = mlp();
    let mut sgd = Sgd::new(
        &model.parameters(),
        SgdConfig {
            lr: 1.0,
            ..Default::default()
        },
    );
    loss_of(&model).backward();
    let before = model.state_dict();
    model.set_requires_grad(false);
    sgd.step_module(&mut model).unwrap();
    for ((_, p), (_, q)) in model.state_dict().iter().zip(&before) {
        assert_eq!(p.to_vec(), q.to_vec());
    }
}

#[test]
fn invalid_configurations_are_errors() {
    let p = [Tensor::zeros([1]).with_requires_grad()];
    let e = Sgd::try_new(
        &p,
        SgdConfig {
            lr: -1.0,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        e.to_string().starts_with("SGD: invalid learning rate"),
        "{e}"
    );
    let nesterov = SgdConfig {
        nesterov: true,
        ..Default::default()
    };
    assert!(Sgd::try_new(&p, nesterov).is_err());
    let bad_beta = AdamConfig {
        betas: (1.0, 0.999),
        ..Default::default()
    };
    assert!(Adam::try_new(&p, bad_beta).is_err());
    let nan_lr = AdamWConfig {
        lr: f32::NAN,
        ..Default::default()
    };
    assert!(AdamW::try_new(&p, nan_lr).is_err());
    let bad_eps = RmsPropConfig {
        eps: -1.0,
        ..Default::default()
    };
    assert!(RmsProp::try_new(&p, bad_eps).is_err());
    let mut sgd = Sgd::new(&p, SgdConfig::default());
    assert!(sgd.set_hyper(0, "momentum", -0.5).is_err());
    assert!(sgd.set_hyper(0, "betas", 0.5).is_err());
    assert!(sgd.set_hyper(0, "nesterov", 0.5).is_err());
    assert!(sgd.set_hyper(3, "lr", 0.5).is_err());
    sgd.set_hyper(0, "momentum", 0.5).unwrap();
    assert_eq!(sgd.config(0).momentum, 0.5);
    assert_eq!(sgd.hyper(0, "momentum"), Some(0.5));
    assert_eq!(sgd.hyper(1, "momentum"), None);
}

#[test]
fn defaults_are_pytorchs() {
    let s = SgdConfig::default();
    assert_eq!(
        (s.lr, s.momentum, s.dampening, s.weight_decay),
        (1e-3, 0.0, 0.0, 0.0)
    );
    let a = AdamConfig::default();
    assert_eq!(
        (a.lr, a.betas, a.eps, a.weight_decay),
        (1e-3, (0.9, 0.999), 1e-8, 0.0)
    );
    assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
    let r = RmsPropConfig::default();
    assert_eq!((r.lr, r.alpha, r.eps, r.momentum), (1e-2, 0.99, 1e-8, 0.0));
    let o = OneCycleConfig::default();
    assert_eq!(
        (
            o.pct_start,
            o.div_factor,
            o.final_div_factor,
            o.cycle_momentum
        ),
        (0.3, 25.0, 1e4, true)
    );
}

// ------------------------------------------------------------------ state export / import

fn fresh(kind: &str, params: &[Tensor]) -> Box<dyn Optimizer> {
    all_optimizers(params)
        .into_iter()
        .find(|(n, _)| *n == kind)
        .unwrap()
        .1
}

/// Export, import into a fresh optimizer over other tensors (ids remapped),
/// then continue both: the next steps are bit-identical.
#[test]
fn exported_state_resumes_bit_identically() {
    for kind in ["SGD", "Adam", "AdamW", "RMSprop"] {
        let mut p = initial_params();
        let mut opt: Box<dyn Optimizer> = match kind {
            // Two groups with their own learning rates and momenta.
            "SGD" => {
                let mut o = Sgd::new(
                    &p[..2],
                    SgdConfig {
                        lr: 0.1,
                        momentum: 0.9,
                        ..Default::default()
                    },
                );
                o.add_param_group(
                    &p[2..],
                    SgdConfig {
                        lr: 0.01,
                        momentum: 0.5,
                        dampening: 0.1,
                        ..Default::default()
                    },
                )
                .unwrap();
                Box::new(o)
            }
            _ => fresh(kind, &p),
        };
        for t in 0..10 {
            set_grads(&p, &grads_at(t));
            step_all(opt.as_mut(), &mut p);
        }
        // A copy of the parameters (new ids), a fresh optimizer, the state.
        let mut q: Vec<Tensor> = p
            .iter()
            .map(|x| x.detach().deep_clone().with_requires_grad())
            .collect();
        let mut opt2: Box<dyn Optimizer> = match kind {
            "SGD" => {
                let mut o = Sgd::new(&q[..2], SgdConfig::default());
                o.add_param_group(&q[2..], SgdConfig::default()).unwrap();
                Box::new(o)
            }
            _ => fresh(kind, &q),
        };
        let mut st = opt.export_state();
        assert_eq!(st.kind, kind);
        let map: Vec<(u64, u64)> = p.iter().zip(&q).map(|(a, b)| (a.id(), b.id())).collect();
        st.remap_ids(|id| map.iter().find(|(a, _)| *a == id).unwrap().1);
        opt2.import_state(&st).unwrap();
        assert_eq!(opt2.lrs(), opt.lrs());
        for t in 10..30 {
            set_grads(&p, &grads_at(t));
            set_grads(&q, &grads_at(t));
            step_all(opt.as_mut(), &mut p);
            step_all(opt2.as_mut(), &mut q);
            for (a, b) in p.iter().zip(&q) {
                let (va, vb) = (a.to_vec(), b.to_vec());
                assert!(
                    va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{kind}: step {t}: {va:?} vs {vb:?}"
                );
            }
        }
    }
}

/// The exported state holds PyTorch's names, shapes and step counts.
#[test]
fn exported_state_layout() {
    let mut p = initial_params();
    let mut adam = Adam::new(
        &p,
        AdamConfig {
            amsgrad: true,
            ..Default::default()
        },
    );
    for t in 0..5 {
        set_grads(&p, &grads_at(t));
        step_all(&mut adam, &mut p);
    }
    let st = adam.export_state();
    assert_eq!(st.kind, "Adam");
    let names: Vec<&str> = st.groups[0].hyper.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "lr",
            "beta1",
            "beta2",
            "eps",
            "weight_decay",
            "amsgrad",
            "maximize"
        ]
    );
    assert_eq!(
        st.groups[0].params,
        p.iter().map(Tensor::id).collect::<Vec<_>>()
    );
    for (i, (id, tensors)) in st.params.iter().enumerate() {
        assert_eq!(*id, p[i].id());
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]);
        assert_eq!(tensors[0].1.dims(), &[] as &[usize]);
        // Parameter 1 had no gradient at step 3 (t % 7 == 3).
        assert_eq!(tensors[0].1.item(), if i == 1 { 4.0 } else { 5.0 });
        for (_, t) in &tensors[1..] {
            assert_eq!(t.dims(), p[i].dims());
        }
    }
    // Exported tensors are snapshots: the next step does not change them.
    let snapshot = st.params[0].1[1].1.to_vec();
    set_grads(&p, &grads_at(5));
    step_all(&mut adam, &mut p);
    assert_eq!(st.params[0].1[1].1.to_vec(), snapshot);
    assert_ne!(adam.export_state().params[0].1[1].1.to_vec(), snapshot);

    let mut r = RmsProp::new(
        &p,
        RmsPropConfig {
            momentum: 0.9,
            centered: true,
            ..Default::default()
        },
    );
    set_grads(&p, &grads_at(0));
    step_all(&mut r, &mut p);
    let rst = r.export_state();
    let names: Vec<&str> = rst.params[0].1.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["step", "square_avg", "momentum_buffer", "grad_avg"]);
    // SGD without momentum keeps no state, as PyTorch.
    let mut s = Sgd::new(&p, SgdConfig::default());
    step_all(&mut s, &mut p);
    assert!(s.export_state().params.is_empty());
}

#[test]
fn import_rejects_mismatched_state() {
    let mut p = initial_params();
    let mut adam = Adam::new(&p, AdamConfig::default());
    set_grads(&p, &grads_at(0));
    step_all(&mut adam, &mut p);
    let good = adam.export_state();
    let fresh_adam = || Adam::new(&p, AdamConfig::default());

    // Another kind.
    let mut sgd = Sgd::new(&p, SgdConfig::default());
    assert!(sgd.import_state(&good).is_err());
    let mut adamw = AdamW::new(&p, AdamWConfig::default());
    assert!(adamw.import_state(&good).is_err());
    // Another group structure.
    let mut two = Adam::new(&p[..1], AdamConfig::default());
    two.add_param_group(&p[1..], AdamConfig::default()).unwrap();
    assert!(two.import_state(&good).is_err());
    // Ids not remapped.
    let q: Vec<Tensor> = p.iter().map(|x| x.deep_clone()).collect();
    assert!(
        Adam::new(&q, AdamConfig::default())
            .import_state(&good)
            .is_err()
    );
    // Wrong shape, missing tensor, unknown tensor, unknown hyper-parameter.
    let mut st = good.clone();
    st.params[0].1[1].1 = Tensor::zeros([7]);
    let e = fresh_adam().import_state(&st).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    let mut st = good.clone();
    st.params[0].1.remove(2);
    assert!(fresh_adam().import_state(&st).is_err());
    let mut st = good.clone();
    st.params[0]
        .1
        .push(("momentum_buffer".into(), Tensor::zeros([2, 3])));
    assert!(fresh_adam().import_state(&st).is_err());
    let mut st = good.clone();
    st.groups[0].hyper.push(("momentum".into(), 0.9));
    assert!(fresh_adam().import_state(&st).is_err());
    let mut st = good.clone();
    st.groups[0].hyper[0].1 = -1.0;
    assert!(fresh_adam().import_state(&st).is_err());
    // AMSGrad switched on by the state needs max_exp_avg_sq.
    let mut st = good.clone();
    st.groups[0].hyper[5].1 = 1.0;
    assert!(fresh_adam().import_state(&st).is_err());
    // A failed import changes nothing.
    let mut target = fresh_adam();
    let mut st = good.clone();
    st.groups[0].hyper[0].1 = 0.5;
    st.params[2].1[1].1 = Tensor::zeros([1]);
    assert!(target.import_state(&st).is_err());
    assert_eq!(target.lrs(), vec![1e-3]);
    assert!(target.export_state().params.is_empty());
    // The good state loads.
    let mut target = fresh_adam();
    target.import_state(&good).unwrap();
    assert_eq!(target.export_state().params.len(), 3);
}

// ------------------------------------------------------------------ training

/// A small end-to-end run: each optimizer with a warm-up + cosine schedule
/// and clipping lowers the loss of an MLP.
#[test]
fn optimizers_train_a_small_model() {
    for kind in ["SGD", "Adam", "AdamW", "RMSprop"] {
        let mut model = mlp();
        let mut opt = fresh(kind, &model.parameters());
        let warm = LinearLr::new(opt.as_mut(), 0.2, 1.0, 3);
        let cos = CosineAnnealingLr::new(opt.as_mut(), 27, 0.0);
        let mut sched = SequentialLr::new(opt.as_mut(), vec![Box::new(warm), Box::new(cos)], &[3]);
        let first = loss_of(&model).item();
        for _ in 0..30 {
            let loss = loss_of(&model);
            loss.backward();
            drop(loss);
            clip_grad_norm(&model.parameters(), 1.0, 2.0).unwrap();
            opt.step_module(&mut model).unwrap();
            model.zero_grad();
            sched.step(opt.as_mut());
        }
        let last = loss_of(&model).item();
        assert!(last < 0.5 * first, "{kind}: {first} -> {last}");
    }
}
