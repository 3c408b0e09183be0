//! Learning-rate schedulers against PyTorch, their state round trip,
//! argument errors and long schedules.

use serde_json::Value;
use train_station::Tensor;
use train_station::optim::*;

use super::{fixture, floats, max_rel, number};

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
