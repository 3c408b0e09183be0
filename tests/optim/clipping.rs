//! Gradient clipping (by norm and by value) against PyTorch, and edge cases.

use serde_json::Value;
use train_station::Tensor;
use train_station::optim::*;

use super::{fixture, floats, max_rel, number, shapes};

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
