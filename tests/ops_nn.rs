//! softmax / log_softmax: PyTorch fixtures (every dim, large values, -inf,
//! views), finite differences, view equivalence, errors and edge cases.

mod common;

use common::{
    FIXTURE, Tol, check_fixtures, check_views_equal, gradcheck_views, gradcheck_with, randn,
};
use train_station::Tensor;

fn nn_case(name: &str, x: &[Tensor]) -> Option<Tensor> {
    let t = &x[0];
    let (op, variant) = if let Some(v) = name.strip_prefix("log_softmax_") {
        ("log", v)
    } else {
        ("soft", name.strip_prefix("softmax_")?)
    };
    let f = |v: &Tensor, d: isize| {
        if op == "log" {
            v.log_softmax(d)
        } else {
            v.softmax(d)
        }
    };
    if let Some(d) = variant.strip_prefix('d')
        && let Ok(d) = d.parse::<isize>()
    {
        return Some(f(t, d));
    }
    Some(match variant {
        "large_last" => f(t, -1),
        "large_d0" | "neginf_d0" | "scalar" => f(t, 0),
        "neginf" | "inf_nan" | "single" => f(t, 1),
        "transposed" => f(&t.transpose(0, 2), 1),
        "transposed_last" => f(&t.transpose(1, 2), -1),
        "sliced" => f(&t.slice(1, 1, 3, 1).slice(2, 0, 4, 2), -1),
        "sliced_d1" => f(&t.slice(1, 1, 3, 1).slice(2, 0, 4, 2), 1),
        "expanded" => f(&t.expand([3, 4]), 0),
        "expanded_last" => f(&t.expand([3, 4]), 1),
        _ => return None,
    })
}

#[test]
fn softmax_matches_pytorch() {
    check_fixtures(
        "nn",
        |name| {
            if name.contains("large") {
                // log_softmax of values ~1e3: f32 rounding of the magnitude.
                Tol::new(1e-4, 1e-5)
            } else {
                FIXTURE
            }
        },
        nn_case,
    );
}

#[test]
fn softmax_gradcheck() {
    let x = randn(&[3, 4, 5], 11);
    for d in [0isize, 1, 2, -1] {
        gradcheck_views(&format!("softmax {d}"), std::slice::from_ref(&x), &|v| {
            v[0].softmax(d)
        });
        gradcheck_views(
            &format!("log_softmax {d}"),
            std::slice::from_ref(&x),
            &|v| v[0].log_softmax(d),
        );
    }
    // Large inputs: the shifted form is exact, so finite differences of size
    // 1e-2 still resolve the gradient.
    let big = &randn(&[2, 6], 12) * 30.0;
    gradcheck_with(
        "softmax large",
        std::slice::from_ref(&big),
        &[],
        &|v| v[0].softmax(-1),
        1e-2,
        Tol::new(2e-2, 2e-2),
    );
    gradcheck_with(
        "log_softmax large",
        std::slice::from_ref(&big),
        &[],
        &|v| v[0].log_softmax(0),
        1e-2,
        Tol::new(2e-2, 2e-2),
    );
    // Composition with a reduction: cross-entropy-like loss.
    gradcheck_views("nll", std::slice::from_ref(&x), &|v| {
        v[0].log_softmax(1).max_dims([1], false)
    });
}

#[test]
fn softmax_on_views_equals_softmax_on_copies() {
    let x = randn(&[5, 6], 21);
    for d in [0isize, 1, -1] {
        check_views_equal(&format!("softmax {d}"), &x, &|v| v.softmax(d));
        check_views_equal(&format!("log_softmax {d}"), &x, &|v| v.log_softmax(d));
        let grad_of = |v: &Tensor, log: bool| {
            let leaf = v.detach().with_requires_grad();
            let y = if log {
                leaf.log_softmax(d)
            } else {
                leaf.softmax(d)
            };
            (&y * &randn(y.dims(), 22)).sum().backward();
            leaf.grad().unwrap()
        };
        check_views_equal(&format!("softmax backward {d}"), &x, &|v| grad_of(v, false));
        check_views_equal(&format!("log_softmax backward {d}"), &x, &|v| {
            grad_of(v, true)
        });
    }
}

#[test]
fn softmax_properties_and_edge_cases() {
    // Rows sum to 1 along the chosen dim, for every dim of a 3-D input.
    let x = randn(&[3, 4, 5], 31);
    for d in 0..3 {
        let s = x.softmax(d).sum_dims([d], false);
        assert!(s.values().all(|v| (v - 1.0).abs() < 1e-6), "dim {d}: {s}");
        // exp(log_softmax) == softmax.
        let a = x.log_softmax(d).to_vec();
        let b = x.softmax(d).to_vec();
        for (a, b) in a.iter().zip(&b) {
            assert!((a.exp() - b).abs() < 1e-6);
        }
        assert!(x.softmax(d).is_contiguous());
    }
    // Large values do not overflow; shifting a row changes nothing.
    let big = Tensor::from_slice(&[1000.0, 1001.0, 999.0], [3]).unwrap();
    let small = Tensor::from_slice(&[1.0, 2.0, 0.0], [3]).unwrap();
    assert_eq!(big.softmax(0).to_vec(), small.softmax(0).to_vec());
    assert!(big.log_softmax(0).values().all(f32::is_finite));
    // -inf entries get probability 0; an all -inf row is NaN (as PyTorch).
    let n = f32::NEG_INFINITY;
    let t = Tensor::from_slice(&[n, 0.0, n, n], [2, 2]).unwrap();
    let s = t.softmax(1).to_vec();
    assert_eq!(&s[..2], &[0.0, 1.0]);
    assert!(s[2].is_nan() && s[3].is_nan());
    let l = t.log_softmax(1).to_vec();
    assert_eq!(&l[..2], &[n, 0.0]);
    assert!(l[2].is_nan() && l[3].is_nan());
    // 0-D: one row of one element; empty: empty.
    assert_eq!(Tensor::scalar(3.0).softmax(0).item(), 1.0);
    assert_eq!(Tensor::scalar(3.0).log_softmax(-1).item(), 0.0);
    assert_eq!(Tensor::zeros([2, 0]).softmax(1).dims(), &[2, 0]);
    assert_eq!(Tensor::zeros([0, 3]).log_softmax(1).dims(), &[0, 3]);
    // Names of the graph nodes.
    let leaf = randn(&[2, 3], 32).with_requires_grad();
    assert_eq!(leaf.softmax(1).grad_fn_name(), Some("SoftmaxBackward0"));
    assert_eq!(
        leaf.log_softmax(0).grad_fn_name(),
        Some("LogSoftmaxBackward0")
    );
}

#[test]
fn errors_name_the_op() {
    let a = Tensor::zeros([2, 3]);
    assert_eq!(
        a.try_softmax(2).unwrap_err().to_string(),
        "softmax: dimension 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        a.try_log_softmax(-3).unwrap_err().to_string(),
        "log_softmax: dimension -3 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        Tensor::scalar(1.0).try_softmax(1).unwrap_err().to_string(),
        "softmax: dimension 1 is out of range for a tensor of rank 0"
    );
    assert!(std::panic::catch_unwind(|| Tensor::zeros([3]).softmax(1)).is_err());
}

/// Large logits keep full precision: PyTorch's `(x - max) - log(sum)` order.
#[test]
fn log_softmax_is_exact_for_large_logits() {
    let x = Tensor::from_slice(&[1e4, 1e4 + 1.0, -1e4], [3]).unwrap();
    let y = x.log_softmax(0).to_vec();
    let expect = [-1.313_261_7f32, -0.313_261_7, -20_001.313];
    for (a, e) in y.iter().zip(expect) {
        assert!((a - e).abs() <= 1e-6 * e.abs().max(1.0), "{y:?}");
    }
}
