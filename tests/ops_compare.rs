//! Comparison masks, maximum/minimum, pow with a tensor exponent, where_ and
//! masked_fill: PyTorch fixtures (values and gradients, broadcasting, NaN,
//! ties, views), finite differences, views, errors and edge cases.

mod common;

use std::panic::AssertUnwindSafe;

use common::{Tol, check_fixtures, check_views_equal, gradcheck_views, randn, uniform};
use train_station::{Tensor, no_grad};

/// Without `std`, gradient mode is one global flag (not per thread), so a
/// test's `no_grad` (or a backward pass) would switch recording off for tests
/// running in parallel threads; every test here takes this lock first.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Rust call for a fixture op name (see tests/reference/cases_compare.py).
fn op(name: &str, x: &[Tensor]) -> Option<Tensor> {
    let (a, b) = (&x[0], x.get(1)?);
    Some(match name {
        "eq" => a.eq(b),
        "ne" => a.ne(b),
        "lt" => a.lt(b),
        "le" => a.le(b),
        "gt" => a.gt(b),
        "ge" => a.ge(b),
        "maximum" => a.maximum(b),
        "minimum" => a.minimum(b),
        "pow" => a.pow_tensor(b),
        "where" => Tensor::where_(a, b, x.get(2)?),
        "masked_fill" => a.masked_fill(b, -7.5),
        "masked_fill_nan" => a.masked_fill(b, f32::NAN),
        "masked_fill_inf" => a.masked_fill(b, f32::NEG_INFINITY),
        _ => return None,
    })
}

/// The scalar comparisons against `s`.
fn op_scalar(name: &str, a: &Tensor, s: f32) -> Option<Tensor> {
    Some(match name {
        "eq_scalar" => a.eq_scalar(s),
        "ne_scalar" => a.ne_scalar(s),
        "lt_scalar" => a.lt_scalar(s),
        "le_scalar" => a.le_scalar(s),
        "gt_scalar" => a.gt_scalar(s),
        "ge_scalar" => a.ge_scalar(s),
        _ => return None,
    })
}

/// Tolerance per op: masks, selections and extrema are exact element-wise,
/// but gradients of broadcast operands are summed in another order than
/// PyTorch's: 1e-6 absolute + 1e-6 relative. `pow` (libm here, SLEEF in
/// PyTorch): 1e-6 absolute + 1e-5 relative.
fn tol(name: &str) -> Tol {
    if name.starts_with("pow.") {
        Tol::new(1e-6, 1e-5)
    } else {
        Tol::new(1e-6, 1e-6)
    }
}

#[test]
fn compare_matches_pytorch() {
    let _serial = serial();
    check_fixtures("compare", tol, |name, x| {
        let (name, variant) = name.rsplit_once('.')?;
        match variant {
            "basic" | "nan" if name.ends_with("_scalar") => op_scalar(name, &x[0], 1.0),
            "nan_scalar" => op_scalar(name, &x[0], f32::NAN),
            "same" | "row" | "outer" | "nan" | "scalar_tensor" | "random" | "col_base"
            | "special" | "broadcast" | "cond_bigger" | "nonbinary_cond" | "bigger" => op(name, x),
            "transposed" => op(name, &x.iter().map(Tensor::t).collect::<Vec<_>>()),
            "sliced" => op(
                name,
                &[
                    x[0].slice(1, 1, 3, 1).slice(2, 0, 4, 2),
                    x[1].slice(0, 1, 3, 1).slice(1, 1, 3, 1),
                ],
            ),
            _ => None,
        }
    });
}

/// Two tensors whose elements differ by at least `gap` everywhere (no ties
/// within a finite-difference step).
fn apart(shape: &[usize], seed: u64, gap: f32) -> (Tensor, Tensor) {
    let a = randn(shape, seed);
    let d = uniform(shape, seed + 1, gap, 1.0);
    let sign = &randn(shape, seed + 2).gt_scalar(0.0) * 2.0 - 1.0;
    let b = &a + &(&d * &sign);
    (a, b)
}

#[test]
fn compare_gradcheck() {
    let _serial = serial();
    let (a, b) = apart(&[3, 4], 1, 0.1);
    for name in ["maximum", "minimum"] {
        gradcheck_views(name, &[a.clone(), b.clone()], &|x| op(name, x).unwrap());
    }
    // Broadcast: a row against a matrix, values kept apart.
    let m = randn(&[3, 4], 4);
    let row = Tensor::from_slice(&[-3.0, 0.05, 3.0, -0.07], [4]).unwrap();
    let m = &m * 0.5; // |m| < ~1.5, so most comparisons with the row are clear
    let m = Tensor::from_vec(
        m.values()
            .zip(row.broadcast_to([3, 4]).values())
            .map(|(v, r)| if (v - r).abs() < 0.05 { v + 0.1 } else { v })
            .collect(),
        [3, 4],
    )
    .unwrap();
    for name in ["maximum", "minimum"] {
        gradcheck_views(
            &format!("{name} broadcast"),
            &[m.clone(), row.clone()],
            &|x| op(name, x).unwrap(),
        );
    }

    let base = uniform(&[3, 4], 5, 0.5, 2.0);
    let expo = randn(&[3, 4], 6);
    gradcheck_views("pow", &[base.clone(), expo.clone()], &|x| {
        x[0].pow_tensor(&x[1])
    });
    gradcheck_views(
        "pow broadcast exponent",
        &[base.clone(), randn(&[4], 7)],
        &|x| x[0].pow_tensor(&x[1]),
    );
    gradcheck_views(
        "pow broadcast base",
        &[uniform(&[3, 1], 8, 0.5, 2.0), expo.clone()],
        &|x| x[0].pow_tensor(&x[1]),
    );

    let cond = randn(&[3, 1], 9).gt_scalar(0.0);
    gradcheck_views("where", &[randn(&[3, 4], 10), randn(&[4], 11)], &|x| {
        Tensor::where_(&cond, &x[0], &x[1])
    });
    let mask = randn(&[2, 1, 4], 12).gt_scalar(0.0);
    gradcheck_views("masked_fill", &[randn(&[3, 4], 13)], &|x| {
        x[0].masked_fill(&mask, 2.0)
    });
    // Gradients through a chain mixing the families.
    gradcheck_views("chain", &[base.clone(), randn(&[3, 4], 14)], &|x| {
        let p = x[0].pow_tensor(&x[1].tanh());
        let sel = Tensor::where_(&x[1].gt_scalar(0.0), &p, &x[1]);
        sel.maximum(&(&x[1] * 5.0))
            .masked_fill(&x[1].lt_scalar(-1.0), 0.0)
    });
}

#[test]
fn ops_on_views_equal_ops_on_copies() {
    let _serial = serial();
    let x = randn(&[4, 6], 15);
    let two = Tensor::scalar(2.0);
    type Op<'a> = &'a dyn Fn(&Tensor) -> Tensor;
    let pairs: &[(&str, Op)] = &[
        ("eq", &|v| v.eq(&v.round_half())),
        ("ne", &|v| v.ne(&two)),
        ("lt", &|v| v.lt(&v.sin())),
        ("le", &|v| two.le(v)),
        ("gt", &|v| v.gt(v)),
        ("ge", &|v| v.ge(&v.cos())),
        ("eq_scalar", &|v| v.eq_scalar(0.0)),
        ("lt_scalar", &|v| v.lt_scalar(0.1)),
        ("ge_scalar", &|v| v.ge_scalar(-0.1)),
        ("maximum", &|v| v.maximum(&v.sin())),
        ("minimum", &|v| v.cos().minimum(v)),
        ("pow", &|v| v.abs().pow_tensor(v)),
        ("pow base broadcast", &|v| two.pow_tensor(v)),
        ("where all views", &|v| Tensor::where_(v, v, &v.neg())),
        ("where cond view", &|v| {
            Tensor::where_(&v.gt_scalar(0.0), &two, &Tensor::scalar(-1.0))
        }),
        ("where a view", &|v| Tensor::where_(&two, v, &two)),
        ("masked_fill", &|v| v.masked_fill(&v.lt_scalar(0.0), 9.0)),
        ("masked_fill mask view", &|v| {
            Tensor::zeros(v.dims()).masked_fill(&v.gt(&two.neg()), 1.0)
        }),
    ];
    for (name, f) in pairs {
        check_views_equal(name, &x, f);
    }
    // Gradients through views equal gradients through copies.
    for (name, f) in pairs {
        check_views_equal(&format!("{name} grad"), &x, &|v| {
            let leaf = v.detach().with_requires_grad();
            let y = f(&leaf);
            if !y.requires_grad() {
                return Tensor::zeros(v.dims());
            }
            (&y * &v.cos()).sum().backward();
            leaf.grad().unwrap_or_else(|| Tensor::zeros(v.dims()))
        });
    }
}

/// Round to the nearest multiple of 0.5 (so `eq` finds matches).
trait RoundHalf {
    fn round_half(&self) -> Tensor;
}

impl RoundHalf for Tensor {
    fn round_half(&self) -> Tensor {
        let v: Vec<f32> = self.values().map(|x| (x * 2.0).round() / 2.0).collect();
        Tensor::from_vec(v, self.dims()).unwrap()
    }
}

#[test]
fn masks_do_not_require_grad() {
    let _serial = serial();
    let a = randn(&[2, 3], 16).with_requires_grad();
    let b = randn(&[3], 17).with_requires_grad();
    for m in [
        a.eq(&b),
        a.ne(&b),
        a.lt(&b),
        a.le(&b),
        a.gt(&b),
        a.ge(&b),
        a.eq_scalar(0.0),
        a.ge_scalar(0.0),
    ] {
        assert!(!m.requires_grad());
        assert!(m.values().all(|v| v == 0.0 || v == 1.0));
        assert_eq!(m.dims(), a.dims());
    }
    // A mask used as a weight stops the gradient only through itself.
    let y = (&a * &a.gt_scalar(0.0)).sum();
    y.backward();
    assert_eq!(a.grad().unwrap().to_vec(), a.gt_scalar(0.0).to_vec());
    // where_ does not record when only the condition requires grad.
    let c = Tensor::ones([3]).with_requires_grad();
    assert!(!Tensor::where_(&c, &Tensor::ones([3]), &Tensor::zeros([3])).requires_grad());
    assert!(!no_grad(|| a.maximum(&b)).requires_grad());
}

#[test]
fn grad_fn_names_match_pytorch() {
    let _serial = serial();
    let a = Tensor::ones([2]).with_requires_grad();
    let b = Tensor::ones([2]);
    let m = Tensor::ones([2]);
    assert_eq!(a.maximum(&b).grad_fn_name(), Some("MaximumBackward0"));
    assert_eq!(a.minimum(&b).grad_fn_name(), Some("MinimumBackward0"));
    assert_eq!(a.pow_tensor(&b).grad_fn_name(), Some("PowBackward1"));
    assert_eq!(b.pow_tensor(&a).grad_fn_name(), Some("PowBackward1"));
    assert_eq!(
        Tensor::where_(&m, &b, &a).grad_fn_name(),
        Some("WhereBackward0")
    );
    assert_eq!(
        a.masked_fill(&m, 0.0).grad_fn_name(),
        Some("MaskedFillBackward0")
    );
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let _serial = serial();
    let a = Tensor::zeros([2, 3]);
    let b = Tensor::zeros([4]);
    let msg = |op: &str, l: &str, r: &str| {
        format!("{op}: shapes {l} and {r} do not match (the shapes cannot be broadcast together)")
    };
    for (op, r) in [
        ("eq", a.try_eq(&b)),
        ("ne", a.try_ne(&b)),
        ("lt", a.try_lt(&b)),
        ("le", a.try_le(&b)),
        ("gt", a.try_gt(&b)),
        ("ge", a.try_ge(&b)),
        ("maximum", a.try_maximum(&b)),
        ("minimum", a.try_minimum(&b)),
        ("pow", a.try_pow_tensor(&b)),
        ("masked_fill", a.try_masked_fill(&b, 0.0)),
    ] {
        assert_eq!(r.unwrap_err().to_string(), msg(op, "[2, 3]", "[4]"));
    }
    // where_ names the first pair of operands that do not broadcast, checking
    // (cond, a), (cond, b), (a, b).
    let c = Tensor::zeros([3]);
    assert_eq!(
        Tensor::try_where_(&a, &c, &b).unwrap_err().to_string(),
        msg("where", "[2, 3]", "[4]")
    );
    assert_eq!(
        Tensor::try_where_(&b, &a, &c).unwrap_err().to_string(),
        msg("where", "[4]", "[2, 3]")
    );
    assert_eq!(
        Tensor::try_where_(&c, &c, &b).unwrap_err().to_string(),
        msg("where", "[3]", "[4]")
    );
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| Tensor::where_(&a, &b, &c)));
    let e = r.unwrap_err();
    assert_eq!(
        e.downcast_ref::<String>().unwrap(),
        &msg("where", "[2, 3]", "[4]")
    );
    assert_eq!(
        Tensor::try_where_(&c, &b, &c).unwrap_err().to_string(),
        msg("where", "[3]", "[4]")
    );
    assert!(std::panic::catch_unwind(AssertUnwindSafe(|| a.maximum(&b))).is_err());
}

#[test]
fn empty_and_scalar_tensors() {
    let _serial = serial();
    let e = Tensor::zeros([0, 3]).with_requires_grad();
    let row = Tensor::ones([3]).with_requires_grad();
    let y = e.maximum(&row);
    assert_eq!(y.dims(), &[0, 3]);
    (&y.pow_tensor(&row) + &Tensor::where_(&e, &e, &row))
        .sum()
        .backward();
    assert_eq!(e.grad().unwrap().dims(), &[0, 3]);
    assert_eq!(row.grad().unwrap().to_vec(), vec![0.0; 3]);
    assert_eq!(e.lt(&row).dims(), &[0, 3]);
    assert_eq!(e.masked_fill(&Tensor::ones([1, 3]), 1.0).dims(), &[0, 3]);

    let s = Tensor::scalar(3.0).with_requires_grad();
    let t = Tensor::scalar(2.0).with_requires_grad();
    let y = s.pow_tensor(&t);
    assert_eq!((y.dims(), y.item()), (&[][..], 9.0));
    y.backward();
    assert_eq!(s.grad().unwrap().item(), 6.0);
    assert!((t.grad().unwrap().item() - 9.0 * 3f32.ln()).abs() < 1e-5);
    assert_eq!(s.gt(&t).item(), 1.0);
    assert_eq!(Tensor::where_(&Tensor::scalar(0.0), &s, &t).item(), 2.0);
}

#[test]
fn ties_split_the_gradient_and_nan_propagates() {
    let _serial = serial();
    let a = Tensor::from_slice(&[1.0, 2.0, f32::NAN, 5.0], [4])
        .unwrap()
        .with_requires_grad();
    let b = Tensor::from_slice(&[1.0, 3.0, 0.0, f32::NAN], [4])
        .unwrap()
        .with_requires_grad();
    let y = a.maximum(&b);
    let v = y.to_vec();
    assert_eq!(&v[..2], &[1.0, 3.0]);
    assert!(v[2].is_nan() && v[3].is_nan());
    y.sum().backward();
    assert_eq!(a.grad().unwrap().to_vec(), vec![0.5, 0.0, 1.0, 1.0]);
    assert_eq!(b.grad().unwrap().to_vec(), vec![0.5, 1.0, 1.0, 1.0]);
    // Broadcast ties: the row's share is summed over the rows.
    let m = Tensor::from_slice(&[1.0, 0.0, 1.0, 0.0], [2, 2])
        .unwrap()
        .with_requires_grad();
    let r = Tensor::from_slice(&[1.0, 0.0], [2])
        .unwrap()
        .with_requires_grad();
    m.minimum(&r).sum().backward();
    assert_eq!(m.grad().unwrap().to_vec(), vec![0.5; 4]);
    assert_eq!(r.grad().unwrap().to_vec(), vec![1.0, 1.0]);
}
