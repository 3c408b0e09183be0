//! Reductions beyond sum/mean: max/min (all, dims, dim with indices),
//! argmax/argmin, var/std, norm, logsumexp, prod. PyTorch fixtures (values,
//! gradients, ties, NaN, zeros, views), finite differences, view equivalence,
//! errors and edge cases.

mod common;

use common::{
    FIXTURE, Tol, check_fixtures, check_views_equal, gradcheck_views, gradcheck_with, randn,
    uniform,
};
use train_station::{Generator, Tensor};

type UnaryOp = dyn Fn(&Tensor) -> Tensor;

/// Values `0.1 * (k - n/3 + 0.25)` for a random permutation `k` of `0..n`:
/// any two values, and any two absolute values, differ by at least 0.05, and
/// none is within 0.025 of 0, so finite differences with step 1e-2 never
/// cross a tie of max/min/norm-inf or the kink of |x| at 0.
fn separated(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let perm = Generator::new(seed).permutation(n);
    let third = (n / 3) as f32;
    let v: Vec<f32> = perm
        .iter()
        .map(|&k| 0.1 * (k as f32 - third + 0.25))
        .collect();
    Tensor::from_slice(&v, shape).unwrap()
}

/// The op under test for a fixture case name, or `None` if unknown.
fn reduce_case(name: &str, x: &[Tensor]) -> Option<Tensor> {
    let t = &x[0];
    let inf = f32::INFINITY;
    // max/min family: "<op>_<variant>" with op in max, min, amax, amin,
    // maxdim, mindim, argmax, argmin.
    for (op, pick_max) in [("max", true), ("min", false)] {
        let all = |v: &Tensor| if pick_max { v.max() } else { v.min() };
        let dims = |v: &Tensor, d: &[isize], k: bool| {
            if pick_max {
                v.max_dims(d, k)
            } else {
                v.min_dims(d, k)
            }
        };
        let dim = |v: &Tensor, d: isize, k: bool| {
            if pick_max {
                v.max_dim(d, k)
            } else {
                v.min_dim(d, k)
            }
        };
        let arg = |v: &Tensor| if pick_max { v.argmax() } else { v.argmin() };
        let arg_dim = |v: &Tensor, d: isize, k: bool| {
            if pick_max {
                v.argmax_dim(d, k)
            } else {
                v.argmin_dim(d, k)
            }
        };
        if let Some(v) = name.strip_prefix(&format!("{op}_all")) {
            return match v {
                "" | "_ties" | "_nan" | "_scalar" => Some(all(t)),
                "_transposed" => Some(all(&t.transpose(0, 2))),
                _ => None,
            };
        }
        if let Some(v) = name.strip_prefix(&format!("a{op}_")) {
            return Some(match v {
                "dim1" | "ties" | "nan" => dims(t, &[1], false),
                "dims_keep" => dims(t, &[0, 2], true),
                "neg_dim" => dims(t, &[-1], false),
                "all_dims" => dims(t, &[0, 1, 2], false),
                "ties_dim0" => dims(t, &[0], true),
                "transposed" => dims(&t.transpose(0, 2), &[1], false),
                "sliced" => dims(&t.slice(1, 1, 3, 1).slice(2, 0, 4, 2), &[0], false),
                _ => return None,
            });
        }
        if let Some(v) = name.strip_prefix(&format!("{op}dim_")) {
            let (v, idx) = match v.strip_suffix("_idx") {
                Some(v) => (v, true),
                None => (v, false),
            };
            let (vals, ind) = match v {
                "d1" | "ties" | "nan" => dim(t, 1, false),
                "d0" | "ties_d0" | "scalar" => dim(t, 0, false),
                "keep" => dim(t, -1, true),
                "transposed" if idx => dim(&t.t(), 0, false),
                "transposed" => dim(&t.transpose(0, 1), 2, false),
                _ => return None,
            };
            return Some(if idx { ind } else { vals });
        }
        if let Some(v) = name.strip_prefix(&format!("arg{op}_")) {
            return Some(match v {
                "all" | "all_ties" | "all_nan" | "scalar" => arg(t),
                "dim1" | "dim_ties" | "dim_nan" => arg_dim(t, 1, false),
                "dim0" => arg_dim(t, 0, false),
                "dim_keep" => arg_dim(t, -1, true),
                "transposed" => arg_dim(&t.t(), 0, false),
                _ => return None,
            });
        }
    }
    for (op, sqrt) in [("var", false), ("std", true)] {
        let f = |v: &Tensor, d: &[isize], c: usize, k: bool| {
            if sqrt {
                v.std_dims(d, c, k)
            } else {
                v.var_dims(d, c, k)
            }
        };
        if let Some(v) = name.strip_prefix(&format!("{op}_")) {
            return Some(match v {
                "all" | "single" | "scalar" => {
                    if sqrt {
                        t.std()
                    } else {
                        t.var()
                    }
                }
                "dim1" | "const" | "large_mean" | "nan" => f(t, &[1], 1, false),
                "dims_keep" => f(t, &[0, 2], 1, true),
                "neg_dim" => f(t, &[-1], 1, false),
                "pop" => f(t, &[1], 0, false),
                "corr2" => f(t, &[0, 2], 2, false),
                "all_pop" => f(t, &[], 0, false),
                "transposed" => f(&t.transpose(0, 2), &[1], 1, false),
                "sliced" => f(&t.slice(1, 1, 3, 1).slice(2, 0, 4, 2), &[0], 1, false),
                "corr_gt_n" => f(t, &[], 3, false),
                "dims_corr_eq_n" => f(t, &[1], 2, false),
                "dims_corr_gt_n" => f(t, &[1], 3, false),
                "empty" => f(t, &[0], 1, false),
                _ => return None,
            });
        }
    }
    for (tag, p) in [("1", 1.0), ("2", 2.0), ("inf", inf)] {
        if let Some(v) = name.strip_prefix(&format!("norm{tag}_")) {
            return Some(match v {
                "all" | "scalar" | "all_zero" | "empty" if p == 2.0 => t.norm(),
                "all" | "scalar" => t.norm_p(p),
                "dim1" | "signed" => t.norm_dims(p, [1], false),
                "dims_keep" => t.norm_dims(p, [0, 2], true),
                "neg_dim" => t.norm_dims(p, [-1], false),
                "transposed" => t.transpose(0, 2).norm_dims(p, [1], false),
                "sliced" => t
                    .slice(1, 1, 3, 1)
                    .slice(2, 0, 4, 2)
                    .norm_dims(p, [0], false),
                _ => return None,
            });
        }
    }
    if let Some(v) = name.strip_prefix("logsumexp_") {
        return Some(match v {
            "dim1" | "large" | "neginf" | "posinf" | "nan" | "empty" => t.logsumexp([1], false),
            "dims_keep" => t.logsumexp([0, 2], true),
            "neg_dim" => t.logsumexp([-1], false),
            "all" => t.logsumexp([0, 1, 2], false),
            "large_dim0" | "scalar" => t.logsumexp([0], false),
            "transposed" => t.transpose(0, 2).logsumexp([1], false),
            "sliced" => t.slice(1, 1, 3, 1).slice(2, 0, 4, 2).logsumexp([0], false),
            _ => return None,
        });
    }
    if let Some(v) = name.strip_prefix("prod_") {
        return Some(match v {
            "all" | "all_one_zero" | "all_two_zeros" | "scalar" => t.prod(),
            "dim1" | "zeros_dim1" | "nan" => t.prod_dims([1], false),
            "keep" => t.prod_dims([-1], true),
            "dims02" => t.prod_dims([0, 2], true),
            "zeros_dim0" | "empty" => t.prod_dims([0], false),
            "transposed" => t.transpose(0, 2).prod_dims([1], false),
            "sliced" => t.slice(1, 1, 3, 1).slice(2, 0, 4, 2).prod_dims([0], false),
            _ => return None,
        });
    }
    match name {
        "sum_inf_dim0" => Some(t.sum_dims([0], false)),
        _ => None,
    }
}

#[test]
fn reductions_match_pytorch() {
    check_fixtures(
        "reduce",
        |name| {
            if name.contains("large") {
                // Values ~1e3 (logsumexp) or a mean of 1e4 (var/std): f32
                // rounding of the inputs' magnitude.
                Tol::new(1e-4, 1e-4)
            } else {
                FIXTURE
            }
        },
        reduce_case,
    );
}

#[test]
fn reductions_gradcheck() {
    let x = separated(&[3, 4, 5], 41);
    let pos = uniform(&[3, 4, 5], 42, 0.5, 1.5);
    gradcheck_views("max", std::slice::from_ref(&x), &|v| v[0].max());
    gradcheck_views("min", std::slice::from_ref(&x), &|v| v[0].min());
    gradcheck_views("max_dims", std::slice::from_ref(&x), &|v| {
        v[0].max_dims([0, 2], true)
    });
    gradcheck_views("min_dims", std::slice::from_ref(&x), &|v| {
        v[0].min_dims([-1], false)
    });
    gradcheck_views("max_dim", std::slice::from_ref(&x), &|v| {
        v[0].max_dim(1, false).0
    });
    gradcheck_views("min_dim", std::slice::from_ref(&x), &|v| {
        v[0].min_dim(-1, true).0
    });
    gradcheck_views("var", std::slice::from_ref(&x), &|v| v[0].var());
    gradcheck_views("var_dims", std::slice::from_ref(&x), &|v| {
        v[0].var_dims([0, 2], 1, false)
    });
    gradcheck_views("var_dims pop", std::slice::from_ref(&x), &|v| {
        v[0].var_dims([1], 0, true)
    });
    gradcheck_views("std", std::slice::from_ref(&x), &|v| v[0].std());
    gradcheck_views("std_dims", std::slice::from_ref(&x), &|v| {
        v[0].std_dims([-1], 2, false)
    });
    gradcheck_views("norm", std::slice::from_ref(&x), &|v| v[0].norm());
    for p in [1.0, 2.0, f32::INFINITY] {
        gradcheck_views(&format!("norm_p {p}"), std::slice::from_ref(&x), &|v| {
            v[0].norm_p(p)
        });
        gradcheck_views(&format!("norm_dims {p}"), std::slice::from_ref(&x), &|v| {
            v[0].norm_dims(p, [0, 2], false)
        });
    }
    gradcheck_views("logsumexp", std::slice::from_ref(&x), &|v| {
        v[0].logsumexp([1], false)
    });
    gradcheck_views("logsumexp all", std::slice::from_ref(&x), &|v| {
        v[0].logsumexp([0, 1, 2], true)
    });
    gradcheck_views("prod", std::slice::from_ref(&pos), &|v| v[0].prod());
    gradcheck_views("prod_dims", std::slice::from_ref(&pos), &|v| {
        v[0].prod_dims([0, 2], false)
    });
    // prod with a zero: the product is linear in each element, so finite
    // differences are exact even across 0.
    let mut z = uniform(&[3, 4], 43, 0.5, 1.5);
    z.set(&[1, 2], 0.0);
    z.set(&[2, 0], 0.0);
    z.set(&[2, 3], 0.0);
    gradcheck_with(
        "prod zeros",
        std::slice::from_ref(&z),
        &[],
        &|v| v[0].prod_dims([1], false),
        1e-2,
        Tol::new(2e-2, 2e-2),
    );
    gradcheck_with(
        "prod zeros (columns)",
        std::slice::from_ref(&z),
        &[],
        &|v| v[0].prod_dims([0], true),
        1e-2,
        Tol::new(2e-2, 2e-2),
    );
}

#[test]
fn reductions_on_views_equal_reductions_on_copies() {
    let x = randn(&[5, 6], 51);
    let pos = uniform(&[5, 6], 52, 0.5, 1.5);
    for d in [0isize, 1] {
        check_views_equal(&format!("max_dims {d}"), &x, &|v| v.max_dims([d], false));
        check_views_equal(&format!("min_dims {d}"), &x, &|v| v.min_dims([d], true));
        check_views_equal(&format!("max_dim {d}"), &x, &|v| v.max_dim(d, false).0);
        check_views_equal(&format!("min_dim idx {d}"), &x, &|v| v.min_dim(d, false).1);
        check_views_equal(&format!("argmax_dim {d}"), &x, &|v| v.argmax_dim(d, false));
        check_views_equal(&format!("argmin_dim {d}"), &x, &|v| v.argmin_dim(d, true));
        check_views_equal(&format!("var_dims {d}"), &x, &|v| v.var_dims([d], 1, false));
        check_views_equal(&format!("std_dims {d}"), &x, &|v| v.std_dims([d], 0, true));
        for p in [1.0, 2.0, f32::INFINITY] {
            check_views_equal(&format!("norm_dims {p} {d}"), &x, &|v| {
                v.norm_dims(p, [d], false)
            });
        }
        check_views_equal(&format!("logsumexp {d}"), &x, &|v| v.logsumexp([d], false));
        check_views_equal(&format!("prod_dims {d}"), &pos, &|v| {
            v.prod_dims([d], false)
        });
    }
    check_views_equal("max", &x, &|v| v.max());
    check_views_equal("min", &x, &|v| v.min());
    check_views_equal("argmax", &x, &|v| v.argmax());
    check_views_equal("argmin", &x, &|v| v.argmin());
    check_views_equal("var", &x, &|v| v.var());
    check_views_equal("std", &x, &|v| v.std());
    check_views_equal("norm", &x, &|v| v.norm());
    check_views_equal("norm inf", &x, &|v| v.norm_p(f32::INFINITY));
    check_views_equal("logsumexp all", &x, &|v| v.logsumexp([0, 1], false));
    check_views_equal("prod", &pos, &|v| v.prod());
    // Gradients too: the backward walks views like the forward.
    let grad_of = |v: &Tensor, f: &dyn Fn(&Tensor) -> Tensor| {
        let leaf = v.detach().with_requires_grad();
        let w = randn(f(&leaf).dims(), 53);
        (&f(&leaf) * &w).sum().backward();
        leaf.grad().unwrap()
    };
    let ops: [(&str, &UnaryOp); 5] = [
        ("var", &|v| v.var_dims([0], 1, false)),
        ("norm", &|v| v.norm_dims(2.0, [1], true)),
        ("logsumexp", &|v| v.logsumexp([0], false)),
        ("max_dim", &|v| v.max_dim(1, false).0),
        ("prod", &|v| v.prod_dims([0], false)),
    ];
    for (name, f) in ops {
        check_views_equal(&format!("{name} backward"), &x, &|v| grad_of(v, f));
    }
}

#[test]
fn long_groups_on_views_equal_long_groups_on_copies() {
    // Groups of 64+ elements split each compensated sum over several
    // accumulators by position; views must still match copies bit for bit.
    let x = randn(&[70, 72], 54);
    for d in [0isize, 1] {
        check_views_equal(&format!("var_dims {d}"), &x, &|v| v.var_dims([d], 1, false));
        check_views_equal(&format!("norm_dims {d}"), &x, &|v| {
            v.norm_dims(2.0, [d], true)
        });
        check_views_equal(&format!("norm1 {d}"), &x, &|v| v.norm_dims(1.0, [d], false));
        check_views_equal(&format!("logsumexp {d}"), &x, &|v| v.logsumexp([d], false));
    }
    check_views_equal("var", &x, &|v| v.var());
    check_views_equal("std", &x, &|v| v.std());
    check_views_equal("norm", &x, &|v| v.norm());
    check_views_equal("logsumexp all", &x, &|v| v.logsumexp([1, 0], true));
}

#[test]
fn errors_name_the_op() {
    let a = Tensor::zeros([2, 3]);
    let msg = |r: train_station::Result<Tensor>| r.unwrap_err().to_string();
    assert_eq!(
        msg(a.try_max_dims([2], false)),
        "max_dims: dimension 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        msg(a.try_var_dims([-3], 1, false)),
        "var: dimension -3 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        msg(a.try_prod_dims([1, -1], false)),
        "prod: a dimension appears more than once"
    );
    assert_eq!(msg(a.try_norm_p(3.0)), "norm: p must be 1, 2 or infinity");
    assert_eq!(
        a.try_max_dim(5, false).unwrap_err().to_string(),
        "max_dim: dimension 5 is out of range for a tensor of rank 2"
    );
    assert!(a.try_argmin_dim(-3, false).is_err());
    assert!(a.try_logsumexp([0, 0], false).is_err());
    assert!(a.try_std_dims([9], 1, true).is_err());
    // A 0-D tensor takes dim 0 or -1 only, and says it has rank 0.
    assert_eq!(
        msg(Tensor::scalar(1.0).try_argmax_dim(1, false)),
        "argmax_dim: dimension 1 is out of range for a tensor of rank 0"
    );
    // No identity for max/min/arg*: empty reductions are errors, as in PyTorch.
    let empty = Tensor::zeros([0, 3]);
    let no_identity = "cannot reduce over an empty dimension (the reduction has no identity)";
    assert_eq!(msg(empty.try_max()), format!("max: {no_identity}"));
    assert_eq!(msg(empty.try_min()), format!("min: {no_identity}"));
    assert_eq!(msg(empty.try_argmax()), format!("argmax: {no_identity}"));
    assert_eq!(msg(empty.try_argmin()), format!("argmin: {no_identity}"));
    assert_eq!(
        msg(empty.try_max_dims([0], false)),
        format!("max_dims: {no_identity}")
    );
    assert_eq!(
        empty.try_min_dim(0, false).unwrap_err().to_string(),
        format!("min_dim: {no_identity}")
    );
    assert_eq!(
        msg(empty.try_argmax_dim(0, true)),
        format!("argmax_dim: {no_identity}")
    );
    assert_eq!(
        msg(empty.try_norm_p(f32::INFINITY)),
        format!("norm: {no_identity}")
    );
    // ...but reducing a non-empty dimension of an empty tensor is fine.
    let (v, i) = empty.max_dim(1, false);
    assert_eq!((v.dims(), i.dims()), (&[0usize][..], &[0usize][..]));
    // The plain forms panic with the same message.
    let r = std::panic::catch_unwind(|| Tensor::zeros([0]).max());
    let err = r.unwrap_err();
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(text, format!("max: {no_identity}"));
}

#[test]
fn indices_beyond_f32_precision_are_refused() {
    let big = Tensor::zeros([(1 << 24) + 1]);
    assert_eq!(
        big.try_argmax().unwrap_err().to_string(),
        "argmax: the reduced dimensions hold more than 2^24 elements, \
         beyond what f32 indices represent exactly"
    );
    assert!(big.try_max_dim(0, false).is_err());
    // Values alone are fine.
    assert_eq!(big.max().item(), 0.0);
    let at_limit = Tensor::zeros([1 << 24]);
    assert_eq!(at_limit.argmin().item(), 0.0);
}

#[test]
fn max_min_edge_cases() {
    // First occurrence on ties, first NaN when there is one.
    let t = Tensor::from_slice(&[1.0, 3.0, 3.0, f32::NAN, 0.0, f32::NAN], [6]).unwrap();
    assert_eq!(t.argmax().item(), 3.0);
    assert_eq!(t.argmin().item(), 3.0);
    assert!(t.max().item().is_nan() && t.min().item().is_nan());
    let u = Tensor::from_slice(&[1.0, 3.0, 3.0, 0.0, 0.0], [5]).unwrap();
    assert_eq!((u.argmax().item(), u.argmin().item()), (1.0, 3.0));
    // All -inf: the first position and -inf.
    let n = Tensor::full([2, 3], f32::NEG_INFINITY);
    let (v, i) = n.max_dim(1, true);
    assert_eq!(
        (v.to_vec(), i.to_vec()),
        (vec![f32::NEG_INFINITY; 2], vec![0.0; 2])
    );
    assert_eq!(i.dims(), &[2, 1]);
    // A 0-D tensor reduces over "dim 0" to itself.
    let s = Tensor::scalar(4.0);
    let (v, i) = s.max_dim(-1, false);
    assert_eq!((v.item(), i.item(), v.rank()), (4.0, 0.0, 0));
    assert_eq!(s.argmin_dim(0, true).rank(), 0);
    // Indices carry no gradient; values do.
    let x = randn(&[3, 4], 61).with_requires_grad();
    let (v, i) = x.max_dim(1, false);
    assert!(v.requires_grad() && !i.requires_grad());
    assert_eq!(v.grad_fn_name(), Some("MaxBackward0"));
    assert_eq!(x.max().grad_fn_name(), Some("MaxBackward1"));
    assert_eq!(x.max_dims([0], false).grad_fn_name(), Some("AmaxBackward0"));
    assert!(!x.argmax().requires_grad());
    // Indices of a larger random input agree with a plain scan.
    let y = randn(&[7, 33], 62);
    let rows: Vec<Vec<f32>> = (0..7).map(|r| y.select(0, r).to_vec()).collect();
    let want: Vec<f32> = rows
        .iter()
        .map(|r| {
            let mut best = 0;
            for (j, &v) in r.iter().enumerate() {
                if v > r[best] {
                    best = j;
                }
            }
            best as f32
        })
        .collect();
    assert_eq!(y.argmax_dim(1, false).to_vec(), want);
    assert_eq!(y.t().argmax_dim(0, false).to_vec(), want);
}

#[test]
fn var_std_are_accurate_with_a_large_mean() {
    // 1e4 + small noise: E[x^2] - E[x]^2 would lose every digit here.
    let n = 10_000;
    let noise = randn(&[n], 71);
    let data: Vec<f32> = noise.values().map(|v| 1.0e4 + 0.01 * v).collect();
    let x = Tensor::from_slice(&data, [n]).unwrap();
    let mean = data.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let m2: f64 = data.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    let (var, var_pop) = (m2 / (n - 1) as f64, m2 / n as f64);
    let rel = |got: f32, want: f64| ((got as f64 - want) / want).abs();
    assert!(
        rel(x.var().item(), var) < 1e-4,
        "{} vs {var}",
        x.var().item()
    );
    assert!(rel(x.var_dims([0], 0, false).item(), var_pop) < 1e-4);
    assert!(rel(x.std().item(), var.sqrt()) < 1e-4);
    // Down columns (many runs fold into each result) and on a view.
    let m = x.reshape([100, 100]);
    let cols = m.var_dims([0], 1, false).to_vec();
    let rows = m.t().var_dims([1], 1, false).to_vec();
    assert_eq!(cols, rows);
    for (c, col) in cols.iter().enumerate() {
        let v: Vec<f64> = (0..100).map(|r| data[r * 100 + c] as f64).collect();
        let mu = v.iter().sum::<f64>() / 100.0;
        let want = v.iter().map(|a| (a - mu).powi(2)).sum::<f64>() / 99.0;
        assert!(rel(*col, want) < 1e-3, "column {c}: {col} vs {want}");
    }
    // The gradient 2 (x - mean) / (n - 1): x - mean is quantized to
    // ulp(1e4) ~ 1e-3 in f32, so allow 2 ulp over (n - 1).
    let leaf = x.detach().with_requires_grad();
    leaf.var().backward();
    let atol = 2.0 * 2.0 * 9.8e-4 / (n - 1) as f64;
    for (i, g) in leaf.grad().unwrap().values().enumerate() {
        let want = 2.0 * (data[i] as f64 - mean) / (n - 1) as f64;
        assert!(
            (g as f64 - want).abs() <= atol,
            "element {i}: {g} vs {want}"
        );
    }
    // A constant has variance exactly 0 (no cancellation residue).
    assert_eq!(Tensor::full([1000], 12345.678).var().item(), 0.0);
}

#[test]
fn sums_inside_reductions_are_compensated() {
    // One large norm: 1e6 elements of 0.1 -> sqrt(1e4) = 100.
    let x = Tensor::full([1_000_000], 0.1);
    let n = x.norm().item() as f64;
    assert!((n - 100.0).abs() < 1e-4, "{n}");
    let l1 = x.norm_p(1.0).item() as f64;
    assert!((l1 - 100_000.0).abs() < 0.05, "{l1}");
    // logsumexp of 1e6 zeros = ln(1e6).
    let z = Tensor::zeros([1000, 1000]);
    let lse = z.logsumexp([0, 1], false).item() as f64;
    assert!((lse - 1e6f64.ln()).abs() < 1e-5, "{lse}");
    // sum: an infinity accumulated across runs stays infinite.
    let t = Tensor::from_slice(&[f32::INFINITY, 1.0, 1.0, 2.0], [2, 2]).unwrap();
    assert_eq!(t.sum_dims([0], false).to_vec(), vec![f32::INFINITY, 3.0]);
}

#[test]
fn empty_and_scalar_inputs() {
    let e = Tensor::zeros([0, 3]);
    assert_eq!(e.prod().item(), 1.0);
    assert_eq!(e.norm().item(), 0.0);
    assert_eq!(e.norm_p(1.0).item(), 0.0);
    assert!(e.var().item().is_nan());
    assert_eq!(e.logsumexp([0, 1], false).item(), f32::NEG_INFINITY);
    assert_eq!(e.prod_dims([0], true).to_vec(), vec![1.0; 3]);
    assert_eq!(e.prod_dims([0], true).dims(), &[1, 3]);
    assert_eq!(e.var_dims([1], 1, false).dims(), &[0]);
    let s = Tensor::scalar(-2.0);
    assert_eq!(s.prod().item(), -2.0);
    assert_eq!(s.norm_p(f32::INFINITY).item(), 2.0);
    assert!(s.var().item().is_nan()); // one element, correction 1
    assert_eq!(s.var_dims([0], 0, false).item(), 0.0);
    assert_eq!(s.logsumexp([-1], true).item(), -2.0);
    // sum/mean accept dim 0 of a 0-D tensor too, as PyTorch does.
    assert_eq!(s.sum_dims([0], false).item(), -2.0);
    assert_eq!(s.mean_dims([-1], true).rank(), 0);
    // keepdim shapes.
    let x = randn(&[2, 3, 4], 81);
    assert_eq!(x.var_dims([0, -1], 1, true).dims(), &[1, 3, 1]);
    assert_eq!(x.norm_dims(1.0, [1], false).dims(), &[2, 4]);
    assert_eq!(x.logsumexp::<usize>([], false).rank(), 0);
    assert_eq!(x.max_dims::<usize>([], true).dims(), &[1, 1, 1]);
}

#[test]
fn gradients_at_special_points() {
    let g = |t: &Tensor, f: &dyn Fn(&Tensor) -> Tensor| {
        let leaf = t.detach().with_requires_grad();
        f(&leaf).sum().backward();
        leaf.grad().unwrap().to_vec()
    };
    let t = Tensor::from_slice(&[3.0, 1.0, 3.0, 3.0], [4]).unwrap();
    assert_eq!(
        g(&t, &|v| v.max()),
        vec![1.0 / 3.0, 0.0, 1.0 / 3.0, 1.0 / 3.0]
    );
    assert_eq!(g(&t, &|v| v.max_dim(0, false).0), vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(g(&t, &|v| v.min()), vec![0.0, 1.0, 0.0, 0.0]);
    // Zeros for prod: one zero gets the product of the others, two zeros give 0.
    let one = Tensor::from_slice(&[2.0, 0.0, 3.0], [3]).unwrap();
    assert_eq!(g(&one, &|v| v.prod()), vec![0.0, 6.0, 0.0]);
    let two = Tensor::from_slice(&[2.0, 0.0, 0.0], [3]).unwrap();
    assert_eq!(g(&two, &|v| v.prod()), vec![0.0, 0.0, 0.0]);
    // Norms at 0: no NaN.
    let zero = Tensor::zeros([3]);
    assert_eq!(g(&zero, &|v| v.norm()), vec![0.0; 3]);
    assert_eq!(g(&zero, &|v| v.norm_p(1.0)), vec![0.0; 3]);
    assert_eq!(g(&zero, &|v| v.norm_p(f32::INFINITY)), vec![0.0; 3]);
    // std of a constant: gradient 0 (PyTorch masks 1/std there).
    assert_eq!(g(&Tensor::full([4], 2.0), &|v| v.std()), vec![0.0; 4]);
}

#[test]
fn whole_sums_of_contiguous_tensors_take_the_documented_order() {
    // One run of every element through `parallel::sum` (blocks by length,
    // then their sums), whatever the shape.
    for shape in [&[7][..], &[], &[5, 0], &[300, 1000], &[2, 3, 40_000]] {
        let x = uniform(shape, 55, -6.0, 7.0);
        let want = train_station::kernels::parallel::sum(x.as_slice().unwrap());
        let got = x.sum();
        assert_eq!(got.dims(), &[] as &[usize], "{shape:?}");
        assert_eq!(got.to_vec()[0].to_bits(), want.to_bits(), "{shape:?}");
        let kept = x.sum_dims::<usize>(&[], true);
        assert!(kept.dims().iter().all(|&d| d == 1) && kept.dims().len() == shape.len());
        assert_eq!(kept.to_vec()[0].to_bits(), want.to_bits(), "{shape:?}");
        // A graph-free tensor takes a shortcut to the result; one that records
        // a graph takes the general path: the same bits, sum and mean.
        let tracked = x.detach().with_requires_grad();
        assert_eq!(tracked.sum().to_vec()[0].to_bits(), want.to_bits());
        let (mean, tracked_mean) = (x.mean().to_vec()[0], tracked.mean().to_vec()[0]);
        assert_eq!(mean.to_bits(), tracked_mean.to_bits(), "{shape:?}");
        if x.numel() > 0 {
            assert_eq!(mean.to_bits(), (want * (1.0 / x.numel() as f32)).to_bits());
        }
    }
}
