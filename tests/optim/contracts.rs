//! Identity and in-place contracts (a step writes into the parameters'
//! buffers and keeps their ids), registration errors, skipped parameters,
//! invalid configurations and PyTorch's defaults.

use train_station::nn::Module;
use train_station::optim::*;
use train_station::{Error, Tensor, no_grad};

use super::{all_optimizers, loss_of, mlp};

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
