//! Shared test helpers: PyTorch fixtures, finite-difference gradient checks,
//! and view-equivalence checks. Each `tests/ops_*.rs` file includes this with
//! `mod common;`.
#![allow(dead_code)]

use std::collections::BTreeSet;

use train_station::{Generator, Tensor, no_grad};

/// Absolute and relative tolerance: `|a - e| <= atol + rtol * |e|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub atol: f32,
    pub rtol: f32,
}

impl Tol {
    pub const fn new(atol: f32, rtol: f32) -> Tol {
        Tol { atol, rtol }
    }
}

/// Default for fixtures: f32 results computed in another order than PyTorch.
pub const FIXTURE: Tol = Tol::new(1e-5, 1e-5);

/// One PyTorch golden case (see tests/reference/gen.py).
pub struct Case {
    pub name: String,
    pub inputs: Vec<Tensor>,
    pub output: Tensor,
    pub weight: Tensor,
    pub grads: Vec<Option<Tensor>>,
    pub diff: Vec<bool>,
}

fn number(v: &serde_json::Value) -> f32 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().unwrap() as f32,
        serde_json::Value::String(s) => match s.as_str() {
            "nan" => f32::NAN,
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            other => panic!("bad number {other:?}"),
        },
        other => panic!("bad number {other:?}"),
    }
}

/// A tensor from a fixture's `{"shape": [...], "data": [...]}`.
pub fn tensor(v: &serde_json::Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(number).collect();
    Tensor::from_slice(&data, shape).unwrap()
}

/// Loads `tests/reference/fixtures/<family>.json`.
pub fn load(family: &str) -> Vec<Case> {
    let path = format!(
        "{}/tests/reference/fixtures/{family}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root: serde_json::Value = serde_json::from_str(&text).unwrap();
    root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            inputs: c["inputs"].as_array().unwrap().iter().map(tensor).collect(),
            output: tensor(&c["output"]),
            weight: tensor(&c["weight"]),
            grads: c["grads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (!g.is_null()).then(|| tensor(g)))
                .collect(),
            diff: c["diff"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_bool().unwrap())
                .collect(),
        })
        .collect()
}

/// Whether `got` matches `expected` within `tol` (same shape; NaN matches NaN,
/// infinities must be equal). Returns a description of the first mismatch.
pub fn compare(got: &Tensor, expected: &Tensor, tol: Tol) -> Result<(), String> {
    if got.dims() != expected.dims() {
        return Err(format!(
            "shape {:?} != expected {:?}",
            got.dims(),
            expected.dims()
        ));
    }
    for (i, (a, e)) in got.values().zip(expected.values()).enumerate() {
        let ok = (a.is_nan() && e.is_nan())
            || a == e
            || (a.is_finite() && e.is_finite() && (a - e).abs() <= tol.atol + tol.rtol * e.abs());
        if !ok {
            return Err(format!("element {i}: got {a}, expected {e} (tol {tol:?})"));
        }
    }
    Ok(())
}

#[track_caller]
pub fn assert_close(got: &Tensor, expected: &Tensor, tol: Tol, what: &str) {
    if let Err(e) = compare(got, expected, tol) {
        panic!("{what}: {e}\n got: {got}\nwant: {expected}");
    }
}

/// Runs every case of `family` through `f(name, inputs)`, comparing the output
/// and the gradients of `sum(output * weight)` with PyTorch's. `f` returns
/// `None` for a name it does not know: the test then fails, listing every
/// unhandled case, so no fixture is silently skipped. `tol(name)` gives each
/// case's tolerance.
pub fn check_fixtures(
    family: &str,
    tol: impl Fn(&str) -> Tol,
    f: impl Fn(&str, &[Tensor]) -> Option<Tensor>,
) {
    let cases = load(family);
    assert!(!cases.is_empty(), "{family}: no cases");
    let mut unknown = BTreeSet::new();
    for c in &cases {
        let leaves: Vec<Tensor> = c
            .inputs
            .iter()
            .zip(&c.diff)
            .map(|(x, &d)| {
                if d {
                    x.clone().with_requires_grad()
                } else {
                    x.clone()
                }
            })
            .collect();
        let Some(out) = f(&c.name, &leaves) else {
            unknown.insert(c.name.clone());
            continue;
        };
        let t = tol(&c.name);
        assert_close(&out, &c.output, t, &format!("{family}/{}: output", c.name));
        if c.grads.iter().all(Option::is_none) {
            continue;
        }
        (&out * &c.weight).sum().backward();
        for (i, (leaf, g)) in leaves.iter().zip(&c.grads).enumerate() {
            match (g, leaf.grad()) {
                (Some(want), Some(got)) => assert_close(
                    &got,
                    want,
                    t,
                    &format!("{family}/{}: grad of input {i}", c.name),
                ),
                (Some(want), None) => assert!(
                    want.values().all(|v| v == 0.0),
                    "{family}/{}: no gradient reached input {i}",
                    c.name
                ),
                (None, Some(got)) if c.diff[i] => assert!(
                    got.values().all(|v| v == 0.0),
                    "{family}/{}: unexpected gradient for input {i}",
                    c.name
                ),
                _ => {}
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{family}: cases without an implementation: {unknown:?}"
    );
}

/// Finite-difference check of the gradients of `sum(f(inputs) * w)` for a
/// random `w`: central differences with step `eps`, losses accumulated in f64.
/// Inputs listed in `nondiff` are passed through without a gradient check.
pub fn gradcheck_with(
    name: &str,
    inputs: &[Tensor],
    nondiff: &[usize],
    f: &dyn Fn(&[Tensor]) -> Tensor,
    eps: f32,
    tol: Tol,
) {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let x = x.detach();
            if nondiff.contains(&i) {
                x
            } else {
                x.with_requires_grad()
            }
        })
        .collect();
    let out = f(&leaves);
    let w = Tensor::randn(out.dims(), Some(12345));
    (&out * &w).sum().backward();
    let loss = |xs: &[Tensor]| -> f64 {
        let o = no_grad(|| f(xs));
        o.values()
            .zip(w.values())
            .map(|(a, b)| a as f64 * b as f64)
            .sum()
    };
    for (i, leaf) in leaves.iter().enumerate() {
        if nondiff.contains(&i) {
            continue;
        }
        let analytic = leaf
            .grad()
            .unwrap_or_else(|| Tensor::zeros(leaf.dims()))
            .to_vec();
        let base = leaf.detach().contiguous().to_vec();
        let mut numeric = vec![0.0f32; base.len()];
        for j in 0..base.len() {
            let at = |delta: f32| {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs: Vec<Tensor> = leaves.iter().map(|t| t.detach()).collect();
                xs[i] = Tensor::from_slice(&v, leaf.dims()).unwrap();
                loss(&xs)
            };
            numeric[j] = ((at(eps) - at(-eps)) / (2.0 * eps as f64)) as f32;
        }
        let a = Tensor::from_slice(&analytic, leaf.dims()).unwrap();
        let n = Tensor::from_slice(&numeric, leaf.dims()).unwrap();
        if let Err(e) = compare(&a, &n, tol) {
            panic!("gradcheck {name}, input {i}: {e}\nanalytic: {a}\nnumeric:  {n}");
        }
    }
}

/// [`gradcheck_with`] with the defaults for smooth ops (eps 1e-2, tol 2e-2).
pub fn gradcheck(name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) {
    gradcheck_with(name, inputs, &[], f, 1e-2, Tol::new(2e-2, 2e-2))
}

/// The same values as `x` in a non-contiguous layout (for rank >= 1), built
/// with differentiable ops so gradients flow back to `x`.
pub fn noncontiguous(x: &Tensor) -> Tensor {
    if x.rank() >= 2 {
        x.transpose(-1, -2).contiguous().transpose(-1, -2)
    } else if x.rank() == 1 {
        (&x.unsqueeze(1) * &Tensor::ones([1, 2])).select(1, 0)
    } else {
        x.clone()
    }
}

/// Gradient check of `f` on contiguous inputs and again with every input
/// passed as a non-contiguous view.
pub fn gradcheck_views(name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> Tensor) {
    gradcheck(name, inputs, f);
    let g = |xs: &[Tensor]| {
        let v: Vec<Tensor> = xs.iter().map(noncontiguous).collect();
        f(&v)
    };
    gradcheck(&format!("{name} (views)"), inputs, &g);
}

/// `f` on a transposed, a sliced and a broadcast view of `x` (rank 2) equals
/// `f` on contiguous copies of those views.
pub fn check_views_equal(name: &str, x: &Tensor, f: &dyn Fn(&Tensor) -> Tensor) {
    check_views_close(name, x, f, Tol::new(0.0, 0.0))
}

/// [`check_views_equal`] within `tol`: for ops whose kernels may sum in a
/// different order for different layouts (the packed GEMM).
pub fn check_views_close(name: &str, x: &Tensor, f: &dyn Fn(&Tensor) -> Tensor, tol: Tol) {
    assert_eq!(x.rank(), 2, "check_views_equal takes a matrix");
    let views = [
        ("transposed", x.t()),
        (
            "sliced",
            x.slice(0, 0, x.dims()[0] as isize, 2)
                .narrow(1, 1, x.dims()[1] - 1),
        ),
        (
            "broadcast",
            x.select(0, 0).unsqueeze(0).expand([3, x.dims()[1]]),
        ),
        ("stepped", x.slice(1, 0, x.dims()[1] as isize, 2)),
    ];
    for (what, v) in views {
        let got = f(&v);
        let want = f(&v.contiguous());
        assert!(
            got.dims() == want.dims() && compare(&got, &want, tol).is_ok(),
            "{name} on a {what} view differs from the contiguous copy:\n{got}\nvs\n{want}"
        );
    }
}

/// A deterministic random tensor.
pub fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, Some(seed))
}

/// A deterministic random tensor with values in `[low, high)`.
pub fn uniform(shape: &[usize], seed: u64, low: f32, high: f32) -> Tensor {
    Generator::new(seed).uniform_tensor(shape, low, high)
}

/// Detached handles to `m`'s parameters, in `parameters()` order.
pub fn params(m: &impl train_station::nn::Module) -> Vec<Tensor> {
    m.parameters().iter().map(|p| p.detach()).collect()
}

/// `m` with its parameters replaced by `ps` (in `parameters()` order).
pub fn with_params<M: train_station::nn::Module + Clone>(m: &M, ps: &[Tensor]) -> M {
    let mut m = m.clone();
    for (slot, p) in m.parameters_mut().into_iter().zip(ps) {
        *slot = p.clone();
    }
    m
}

/// The global generator (`manual_seed`, layer initialisation, dropout seeds)
/// is process-wide, as in PyTorch, and the test harness runs a file's tests
/// on several threads. A test that seeds it and expects the same stream again
/// would see another test's draws in between: in files with such tests every
/// test takes this turn first.
pub fn global_rng_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
