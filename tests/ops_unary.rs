//! Unary math and activations: PyTorch fixtures (values and gradients, at
//! kinks, special values and large |x|, on views), finite differences, views,
//! in-place forms, errors and edge cases.

mod common;

use common::{Tol, check_fixtures, check_views_equal, gradcheck_views, randn, uniform};
use train_station::{Tensor, no_grad, tensor::pool};

/// Without `std`, gradient mode is one global flag (not per thread), so a
/// test's `no_grad` (or a backward pass) would switch recording off for tests
/// running in parallel threads; every test here takes this lock first.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Rust call for a fixture op name (see tests/reference/cases_unary.py).
fn unary(op: &str, x: &Tensor) -> Option<Tensor> {
    Some(match op {
        "abs" => x.abs(),
        "exp" => x.exp(),
        "log" => x.log(),
        "sqrt" => x.sqrt(),
        "rsqrt" => x.rsqrt(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "relu" => x.relu(),
        "leaky_relu" => x.leaky_relu(0.01),
        "leaky_relu_0.2" => x.leaky_relu(0.2),
        "sigmoid" => x.sigmoid(),
        "tanh" => x.tanh(),
        "gelu" => x.gelu(),
        "gelu_tanh" => x.gelu_tanh(),
        "silu" => x.silu(),
        "softplus" => x.softplus(),
        "softplus_b2_t5" => x.softplus_with(2.0, 5.0),
        "softplus_b0.5_t10" => x.softplus_with(0.5, 10.0),
        "square" => x.square(),
        "reciprocal" => x.reciprocal(),
        "clamp" => x.clamp(Some(-0.5), Some(1.0)),
        "clamp_min" => x.clamp_min(-0.5),
        "clamp_max" => x.clamp_max(1.0),
        "clamp_swapped" => x.clamp(Some(1.0), Some(-0.5)),
        "clamp_nan_min" => x.clamp(Some(f32::NAN), None),
        _ => x.pow_scalar(op.strip_prefix("pow_")?.parse().ok()?),
    })
}

/// Ops whose forward and backward are exact IEEE operations in the same order
/// as PyTorch's (comparisons, selects, products, quotients): compared bit for
/// bit (NaN matches NaN).
const EXACT: &[&str] = &[
    "abs",
    "relu",
    "leaky_relu",
    "leaky_relu_0.2",
    "clamp",
    "clamp_min",
    "clamp_max",
    "clamp_swapped",
    "clamp_nan_min",
    "square",
    "reciprocal",
    "pow_0",
    "pow_1",
    "pow_2",
    "pow_3",
    "pow_-1",
];

/// Ops built on `sqrt`, which is correctly rounded here (libm) but not always
/// in PyTorch's vectorized kernels (1 ulp off seen): a few ulp.
const SQRT: &[&str] = &["sqrt", "rsqrt", "pow_0.5", "pow_-0.5"];

/// Tolerance per op: exact ops bit for bit, `sqrt` family within 5e-7
/// relative (~4 ulp), transcendentals (libm here, SLEEF in PyTorch) within
/// 1e-6 absolute + 1e-5 relative.
fn tol(name: &str) -> Tol {
    let op = name.rsplit_once('.').map_or(name, |(op, _)| op);
    if EXACT.contains(&op) {
        Tol::new(0.0, 0.0)
    } else if SQRT.contains(&op) {
        Tol::new(0.0, 5e-7)
    } else {
        Tol::new(1e-6, 1e-5)
    }
}

#[test]
fn unary_matches_pytorch() {
    let _serial = serial();
    check_fixtures("unary", tol, |name, x| {
        let (op, variant) = name.rsplit_once('.')?;
        let x = &x[0];
        match variant {
            "basic" | "special" | "big" | "negative_base" => unary(op, x),
            "transposed" => unary(op, &x.t()),
            "sliced" => unary(op, &x.slice(1, 1, 3, 1).slice(2, 0, 4, 2)),
            _ => None,
        }
    });
}

/// `n` values with `low <= |v| < high` and mixed signs (away from kinks at 0).
fn signed(shape: &[usize], seed: u64, low: f32, high: f32) -> Tensor {
    let mag = uniform(shape, seed, low, high);
    let sign = randn(shape, seed + 1000).gt_scalar(0.0) * 2.0 - 1.0;
    &mag * &sign
}

/// Values of `x` moved at least `gap` away from each point in `kinks`.
fn avoid(x: &Tensor, kinks: &[f32], gap: f32) -> Tensor {
    let v: Vec<f32> = x
        .values()
        .map(|mut v| {
            for &k in kinks {
                if (v - k).abs() < gap {
                    v = k + if v >= k { gap } else { -gap };
                }
            }
            v
        })
        .collect();
    Tensor::from_vec(v, x.dims()).unwrap()
}

#[test]
fn unary_gradcheck() {
    let _serial = serial();
    let any = randn(&[3, 4], 1);
    let pos = uniform(&[3, 4], 2, 0.5, 2.0);
    let nz = signed(&[3, 4], 3, 0.1, 2.0);
    let all: &[(&str, &Tensor)] = &[
        ("abs", &nz),
        ("exp", &any),
        ("log", &pos),
        ("sqrt", &pos),
        ("rsqrt", &pos),
        ("sin", &any),
        ("cos", &any),
        ("relu", &nz),
        ("leaky_relu", &nz),
        ("leaky_relu_0.2", &nz),
        ("sigmoid", &any),
        ("tanh", &any),
        ("gelu", &any),
        ("gelu_tanh", &any),
        ("silu", &any),
        ("softplus", &any),
        ("square", &any),
        ("reciprocal", &nz),
        ("pow_0", &any),
        ("pow_1", &any),
        ("pow_2", &any),
        ("pow_3", &nz),
        ("pow_-2", &nz),
        ("pow_0.5", &pos),
        ("pow_-0.5", &pos),
        ("pow_1.5", &pos),
        ("pow_-1.7", &pos),
    ];
    for &(op, x) in all {
        gradcheck_views(op, std::slice::from_ref(x), &|t| unary(op, &t[0]).unwrap());
    }
    // Piecewise ops, with inputs away from their switch points.
    let wide = &randn(&[3, 4], 4) * 6.0;
    for (op, kinks) in [
        ("clamp", &[-0.5, 1.0][..]),
        ("clamp_min", &[-0.5]),
        ("clamp_max", &[1.0]),
        ("clamp_swapped", &[-0.5, 1.0]),
        ("softplus_b2_t5", &[2.5]),
        ("softplus_b0.5_t10", &[20.0]),
    ] {
        let x = avoid(&wide, kinks, 0.05);
        gradcheck_views(op, &[x], &|t| unary(op, &t[0]).unwrap());
    }
    // Negative bases with integral exponents.
    let neg = uniform(&[2, 3], 5, -2.0, -0.5);
    for op in ["pow_2", "pow_3", "pow_-1", "pow_-2", "pow_4"] {
        gradcheck_views(op, std::slice::from_ref(&neg), &|t| {
            unary(op, &t[0]).unwrap()
        });
    }
    // A chain of several ops on one input.
    gradcheck_views("chain", std::slice::from_ref(&pos), &|t| {
        let x = &t[0];
        &(&x.sqrt().sigmoid() * &x.log().tanh()) + &x.gelu().softplus()
    });
}

#[test]
fn unary_ops_on_views_equal_ops_on_copies() {
    let _serial = serial();
    let x = randn(&[4, 6], 7);
    let ops = [
        "abs",
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "sin",
        "cos",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "gelu",
        "gelu_tanh",
        "silu",
        "softplus",
        "softplus_b2_t5",
        "square",
        "reciprocal",
        "clamp",
        "clamp_min",
        "clamp_max",
        "pow_3",
        "pow_1.5",
    ];
    for op in ops {
        check_views_equal(op, &x, &|v| unary(op, v).unwrap());
        // The gradient through a view equals the one through a copy.
        check_views_equal(&format!("{op} grad"), &x, &|v| {
            let leaf = v.detach().with_requires_grad();
            (&unary(op, &leaf).unwrap() * &v.cos()).sum().backward();
            leaf.grad().unwrap()
        });
    }
    let mut y = x.clone();
    check_views_equal("relu_", &x, &|v| {
        let mut v = v.clone();
        v.relu_();
        v
    });
    y.clamp_(Some(0.0), None);
    assert_eq!(y.to_vec(), x.relu().to_vec());
}

#[test]
fn grad_fn_names_match_pytorch() {
    let _serial = serial();
    let x = Tensor::ones([2]).with_requires_grad();
    for (op, name) in [
        ("abs", "AbsBackward0"),
        ("exp", "ExpBackward0"),
        ("log", "LogBackward0"),
        ("sqrt", "SqrtBackward0"),
        ("rsqrt", "RsqrtBackward0"),
        ("sin", "SinBackward0"),
        ("cos", "CosBackward0"),
        ("relu", "ReluBackward0"),
        ("leaky_relu", "LeakyReluBackward0"),
        ("sigmoid", "SigmoidBackward0"),
        ("tanh", "TanhBackward0"),
        ("gelu", "GeluBackward0"),
        ("gelu_tanh", "GeluBackward0"),
        ("silu", "SiluBackward0"),
        ("softplus", "SoftplusBackward0"),
        ("square", "PowBackward0"),
        ("pow_1.5", "PowBackward0"),
        ("reciprocal", "ReciprocalBackward0"),
        ("clamp", "ClampBackward1"),
        ("clamp_min", "ClampMinBackward0"),
        ("clamp_max", "ClampMaxBackward0"),
    ] {
        assert_eq!(unary(op, &x).unwrap().grad_fn_name(), Some(name), "{op}");
        assert!(!unary(op, &x.detach()).unwrap().requires_grad());
        assert!(!no_grad(|| unary(op, &x).unwrap()).requires_grad());
    }
}

/// Ops whose backward reads their output save it detached: a graph that is
/// dropped without backward frees everything (a saved output that kept its
/// own node would form a cycle and leak).
#[test]
fn saved_outputs_do_not_keep_their_graph_alive() {
    let _serial = serial();
    let x = Tensor::randn([4096], Some(8)).with_requires_grad();
    let round = || {
        let _ys = [
            x.exp(),
            x.abs().sqrt(),
            x.abs().rsqrt(),
            x.sigmoid(),
            x.tanh(),
            x.relu(),
            x.reciprocal(),
        ];
    };
    round();
    let before = pool::stats().bytes_in_use;
    for _ in 0..200 {
        round();
    }
    let after = pool::stats().bytes_in_use;
    // 200 leaked rounds would hold ~9 * 16 KiB * 200 = 29 MB. Other tests run
    // in parallel threads; allow their transient tensors.
    assert!(
        after <= before + (4 << 20),
        "{before} -> {after} bytes in use"
    );
}

#[test]
fn in_place_activations_keep_identity() {
    let _serial = serial();
    let mut a = Tensor::from_slice(&[-2.0, -0.5, 0.0, 1.5], [4]).unwrap();
    let shared = a.clone();
    let id = a.id();
    a.relu_();
    assert_eq!(a.to_vec(), vec![0.0, 0.0, 0.0, 1.5]);
    assert_eq!(a.id(), id);
    assert_eq!(shared.to_vec(), vec![-2.0, -0.5, 0.0, 1.5], "copy on write");

    let mut b = shared.deep_clone();
    b.leaky_relu_(0.1);
    assert_eq!(b.to_vec(), shared.leaky_relu(0.1).to_vec());
    let mut c = shared.deep_clone();
    c.sigmoid_();
    assert_eq!(c.to_vec(), shared.sigmoid().to_vec());
    let mut d = shared.deep_clone();
    d.tanh_();
    assert_eq!(d.to_vec(), shared.tanh().to_vec());
    let mut e = shared.deep_clone();
    e.clamp_(Some(-1.0), Some(1.0));
    assert_eq!(e.to_vec(), vec![-1.0, -0.5, 0.0, 1.0]);
    assert!(e.try_clamp_(None, None).is_err());

    // A strided view writes only its elements.
    let mut col = Tensor::arange(-3.0, 3.0, 1.0).reshape([3, 2]).select(1, 0);
    col.relu_();
    assert_eq!(col.to_vec(), vec![0.0, 0.0, 1.0]);
}

#[test]
fn in_place_activations_and_autograd() {
    let _serial = serial();
    // A leaf that requires grad is refused while recording and left alone.
    let mut w = Tensor::from_slice(&[-1.0, 2.0], [2])
        .unwrap()
        .with_requires_grad();
    let err = w.try_relu_().unwrap_err().to_string();
    assert!(
        err.starts_with("relu_: a leaf tensor that requires grad"),
        "{err}"
    );
    assert!(w.try_sigmoid_().is_err());
    assert!(w.try_clamp_(Some(0.0), None).is_err());
    assert_eq!(w.to_vec(), vec![-1.0, 2.0]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut w = w;
        w.tanh_();
    }));
    assert!(r.is_err());

    // Allowed under no_grad, keeping the parameter.
    let mut p = Tensor::from_slice(&[-1.0, 2.0], [2])
        .unwrap()
        .with_requires_grad();
    let id = p.id();
    no_grad(|| p.relu_());
    assert_eq!(
        (p.to_vec(), p.id(), p.requires_grad()),
        (vec![0.0, 2.0], id, true)
    );

    // On a non-leaf it is recorded, keeps the id, and gradients flow.
    let x = Tensor::from_slice(&[-1.0, 0.5, 2.0], [3])
        .unwrap()
        .with_requires_grad();
    let mut h = &x * 2.0;
    let hid = h.id();
    h.tanh_();
    h.leaky_relu_(0.5);
    assert_eq!(h.id(), hid);
    assert_eq!(h.grad_fn_name(), Some("LeakyReluBackward0"));
    h.sum().backward();
    let want: Vec<f32> = [-1.0f32, 0.5, 2.0]
        .iter()
        .map(|&v| {
            let t = (2.0 * v).tanh();
            2.0 * (1.0 - t * t) * if t > 0.0 { 1.0 } else { 0.5 }
        })
        .collect();
    let got = x.grad().unwrap().to_vec();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

#[test]
fn clamp_errors_name_the_op() {
    let _serial = serial();
    let x = Tensor::zeros([2, 3]);
    assert_eq!(
        x.try_clamp(None, None).unwrap_err().to_string(),
        "clamp: at least one of min and max must be given"
    );
    let r = std::panic::catch_unwind(|| Tensor::zeros([2]).clamp(None, None));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert_eq!(msg, "clamp: at least one of min and max must be given");
}

#[test]
fn empty_and_scalar_tensors() {
    let _serial = serial();
    let e = Tensor::zeros([0, 3]).with_requires_grad();
    for op in ["exp", "relu", "gelu", "clamp", "pow_1.5", "softplus"] {
        let y = unary(op, &e).unwrap();
        assert_eq!(y.dims(), &[0, 3], "{op}");
        y.sum().backward();
        assert_eq!(e.grad().unwrap().dims(), &[0, 3]);
        e.zero_grad();
    }
    let s = Tensor::scalar(0.25).with_requires_grad();
    let y = s.sqrt();
    assert_eq!((y.dims(), y.item()), (&[][..], 0.5));
    y.backward();
    let g = s.grad().unwrap();
    assert_eq!((g.dims(), g.item()), (&[][..], 1.0));
}

#[test]
fn special_values() {
    let _serial = serial();
    let x = Tensor::from_slice(&[0.0, -0.0, -1.0, f32::INFINITY], [4]).unwrap();
    // sqrt'(0) = inf, sqrt(-1) = NaN, log(0) = -inf.
    let xs = x.detach().with_requires_grad();
    xs.sqrt().sum().backward();
    let g = xs.grad().unwrap().to_vec();
    assert_eq!(g[0], f32::INFINITY);
    assert_eq!(g[1], f32::NEG_INFINITY);
    assert!(g[2].is_nan());
    assert_eq!(g[3], 0.0);
    assert_eq!(x.log().to_vec()[0], f32::NEG_INFINITY);
    assert!(x.log().to_vec()[2].is_nan());
    // 0^0 = 1, NaN^0 = 1, (-8)^(1/3) is NaN, (-2)^3 = -8.
    let p = Tensor::from_slice(&[0.0, f32::NAN, -8.0, -2.0], [4]).unwrap();
    assert_eq!(p.pow_scalar(0.0).to_vec(), vec![1.0; 4]);
    assert!(p.pow_scalar(1.0 / 3.0).to_vec()[2].is_nan());
    assert_eq!(p.pow_scalar(3.0).to_vec()[3], -8.0);
    // Saturating activations stay finite with finite gradients at large |x|.
    let big = Tensor::from_slice(&[-1e4, 1e4], [2])
        .unwrap()
        .with_requires_grad();
    let y = &(&big.sigmoid() + &big.tanh()) + &big.softplus();
    assert_eq!(y.to_vec(), vec![-1.0, 1e4 + 2.0]);
    y.sum().backward();
    assert_eq!(big.grad().unwrap().to_vec(), vec![0.0, 1.0]);
}
