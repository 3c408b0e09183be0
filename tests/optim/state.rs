//! Optimizer state export / import: bit-identical resumption, PyTorch's
//! layout, and refusal of mismatched state.

use train_station::optim::*;
use train_station::{Error, Tensor};

use super::{fresh, grads_at, initial_params, set_grads, step_all};

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
