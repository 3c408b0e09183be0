//! Binary arithmetic and sum/mean: PyTorch fixtures, finite differences,
//! views, errors.

mod common;

use common::{FIXTURE, check_fixtures, check_views_equal, gradcheck_views, randn, uniform};
use train_station::Tensor;

fn binary(name: &str, x: &Tensor, y: &Tensor) -> Option<Tensor> {
    Some(match name {
        "add" => x + y,
        "sub" => x - y,
        "mul" => x * y,
        "div" => x / y,
        _ => return None,
    })
}

#[test]
fn binary_matches_pytorch() {
    check_fixtures(
        "binary",
        |_| FIXTURE,
        |name, x| {
            if let Some((op, variant)) = name.split_once('_')
                && x.len() == 2
            {
                let (a, b) = (&x[0], &x[1]);
                return match variant {
                    "same" | "row" | "col" | "scalar_tensor" | "outer" => binary(op, a, b),
                    "transposed" => binary(op, &a.t(), &b.t()),
                    "sliced" => binary(op, &a.slice(2, 1, 3, 1), &b.slice(1, 0, 4, 2)),
                    _ => None,
                };
            }
            let a = &x[0];
            Some(match name {
                "add_scalar" => a + 2.5,
                "sub_scalar" => a - 2.5,
                "rsub_scalar" => 2.5 - a,
                "mul_scalar" => a * -1.5,
                "div_scalar" => a / 4.0,
                "rdiv_scalar" => 3.0 / a,
                "neg" => -a,
                "chain" => &(&(&(a * &x[1]) + &x[2]) / &(&(&x[1] * &x[1]) + 1.0)) - a,
                _ => return None,
            })
        },
    );
}

#[test]
fn reductions_match_pytorch() {
    check_fixtures(
        "reduce_basic",
        |_| FIXTURE,
        |name, x| {
            let t = &x[0];
            Some(match name {
                "sum_all" => t.sum(),
                "sum_dim0" => t.sum_dims([0], false),
                "sum_dims_keep" => t.sum_dims([0, 2], true),
                "sum_neg_dim" => t.sum_dims([-1], false),
                "sum_transposed" => t.transpose(0, 2).sum_dims([1], false),
                "mean_all" => t.mean(),
                "mean_dims" => t.mean_dims([1, 2], false),
                "mean_keep" => t.mean_dims([1], true),
                "mean_sliced" => t.slice(1, 1, 3, 1).slice(2, 0, 4, 2).mean_dims([0], false),
                _ => return None,
            })
        },
    );
}

#[test]
fn binary_gradcheck() {
    let a = randn(&[3, 4], 1);
    let b = uniform(&[3, 4], 2, 0.5, 2.0);
    let row = uniform(&[4], 3, 0.5, 2.0);
    for op in ["add", "sub", "mul", "div"] {
        gradcheck_views(op, &[a.clone(), b.clone()], &|x| {
            binary(op, &x[0], &x[1]).unwrap()
        });
        gradcheck_views(
            &format!("{op} broadcast"),
            &[a.clone(), row.clone()],
            &|x| binary(op, &x[0], &x[1]).unwrap(),
        );
    }
    gradcheck_views("scalars", std::slice::from_ref(&b), &|x| {
        &(&(2.0 - &x[0]) * 3.0) + &(1.5 / &x[0])
    });
    gradcheck_views("sum/mean", &[randn(&[2, 3, 4], 4)], &|x| {
        &x[0].sum_dims([0, 2], true) * &x[0].mean_dims([1], true)
    });
}

#[test]
fn ops_on_views_equal_ops_on_copies() {
    let x = randn(&[4, 6], 5);
    let y = randn(&[4, 6], 6);
    check_views_equal("add", &x, &|v| v + &(&(v * v) - 1.0));
    check_views_equal("mul scalar", &x, &|v| v * 3.0);
    check_views_equal("div", &y, &|v| v / &(v * v + 1.0));
    check_views_equal("sum", &x, &|v| v.sum_dims([0], false));
    check_views_equal("mean", &x, &|v| v.mean_dims([1], true));
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let a = Tensor::zeros([2, 3]);
    let b = Tensor::zeros([4]);
    for (op, r) in [
        ("add", a.try_add_tensor(&b)),
        ("sub", a.try_sub_tensor(&b)),
        ("mul", a.try_mul_tensor(&b)),
        ("div", a.try_div_tensor(&b)),
    ] {
        assert_eq!(
            r.unwrap_err().to_string(),
            format!(
                "{op}: shapes [2, 3] and [4] do not match (the shapes cannot be broadcast together)"
            )
        );
    }
    let mut c = Tensor::zeros([3]);
    assert!(c.try_add_assign(&a).is_err(), "in-place result cannot grow");
    assert!(a.try_sum_dims([2], false).is_err());
    assert!(a.try_sum_dims([0, 0], false).is_err());
    let r = std::panic::catch_unwind(|| &Tensor::zeros([2]) + &Tensor::zeros([3]));
    assert!(r.is_err());
}

#[test]
fn in_place_arithmetic_keeps_identity_and_isolation() {
    let mut a = Tensor::arange(0.0, 4.0, 1.0);
    let snapshot = a.clone();
    let id = a.id();
    a += 1.0;
    a *= &Tensor::full([4], 2.0);
    a -= Tensor::ones([1]);
    a /= 2.0;
    assert_eq!(a.to_vec(), vec![0.5, 1.5, 2.5, 3.5]);
    assert_eq!(a.id(), id);
    assert_eq!(
        snapshot.to_vec(),
        vec![0.0, 1.0, 2.0, 3.0],
        "the shared handle kept its values"
    );
    // Writes through a unique strided view hit only its elements.
    let mut col = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]).select(1, 1);
    col += 10.0;
    assert_eq!(col.to_vec(), vec![11.0, 14.0]);
}

#[test]
fn sum_is_accurate_and_handles_empty() {
    let n = 1_000_000;
    let x = Tensor::full([n], 0.1);
    let s = x.sum().item() as f64;
    assert!((s - 100_000.0).abs() < 0.05, "{s}");
    // Down a column: many runs accumulate into each output.
    let c = Tensor::full([n, 2], 0.1).sum_dims([0], false);
    assert!(
        c.values().all(|v| (v as f64 - 100_000.0).abs() < 0.05),
        "{c}"
    );
    assert_eq!(
        Tensor::zeros([0, 3]).sum_dims([0], false).to_vec(),
        vec![0.0; 3]
    );
    assert!(Tensor::zeros([0]).mean().item().is_nan());
}
