//! matmul, bmm, outer: PyTorch fixtures, an f64 reference on random shapes,
//! finite differences, views, errors and edge cases.

mod common;

use common::{FIXTURE, Tol, check_fixtures, check_views_close, gradcheck, gradcheck_views, randn};
use train_station::{Error, Tensor};

#[test]
fn matmul_matches_pytorch() {
    check_fixtures(
        "matmul",
        |_| FIXTURE,
        |name, x| {
            let (a, b) = (&x[0], &x[1]);
            Some(match name {
                "dot" | "mv" | "vm" | "mm" | "mm_1x1" | "mm_row_col" | "mm_col_row" | "batched"
                | "batched_4d" | "vec_batched" | "batched_vec" | "vec_batched_4d"
                | "batched_mat" | "mat_batched" | "broadcast_ones" | "broadcast_both"
                | "k_zero" | "m_zero" | "n_zero" | "batch_zero" | "dot_empty" => a.matmul(b),
                "mm_tn" => a.t().matmul(b),
                "mm_nt" | "linear_3d" => a.matmul(&b.t()),
                "mm_tt" => a.t().matmul(&b.t()),
                "batched_transposed" => a.transpose(1, 2).matmul(&b.transpose(-1, -2)),
                "sliced" => a
                    .slice(0, 1, 4, 1)
                    .slice(1, 0, 10, 2)
                    .matmul(&b.slice(0, 1, 6, 1).slice(1, 2, 6, 1)),
                "expanded" => a.expand([3, 5]).matmul(b),
                "batch_expanded" => a
                    .unsqueeze(0)
                    .expand([2, 3, 5])
                    .matmul(&b.unsqueeze(0).expand([2, 5, 4])),
                "permuted_batch" => a.permute([1, 0, 2]).matmul(b),
                "bmm" => a.bmm(b),
                "bmm_transposed" => a.transpose(1, 2).bmm(&b.transpose(1, 2)),
                "outer" => a.outer(b),
                "outer_strided" => a.slice(0, 0, 6, 2).outer(&b.slice(0, 1, 8, 2)),
                "chain" => a.matmul(b).matmul(&x[2]),
                _ => return None,
            })
        },
    );
}

/// `a @ b` for 2-D row-major data, accumulated in f64.
fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    c
}

/// The f64 reference of `a @ b` and the bound on f32 rounding of each
/// element: a k-term sum of products, relative to the sum of absolute products.
struct Reference {
    want: Vec<f64>,
    tol: Vec<f64>,
    shape: [usize; 3],
}

impl Reference {
    fn new(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Reference {
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let scale = naive(&abs(a), &abs(b), m, k, n);
        let eps = 2.0 * (k as f64 + 1.0) * f32::EPSILON as f64;
        Reference {
            want: naive(a, b, m, k, n),
            tol: scale.iter().map(|s| eps * s + 1e-30).collect(),
            shape: [m, k, n],
        }
    }

    #[track_caller]
    fn check(&self, got: &Tensor, what: &str) {
        let [m, k, n] = self.shape;
        let got = got.to_vec();
        assert_eq!(got.len(), m * n, "{what}");
        for (i, g) in got.iter().enumerate() {
            assert!(
                (*g as f64 - self.want[i]).abs() <= self.tol[i],
                "{what} ({m}x{k} @ {k}x{n}) element {i}: {g} vs {}",
                self.want[i]
            );
        }
    }
}

#[test]
fn matmul_matches_f64_reference_on_random_shapes() {
    let sizes = [1usize, 2, 3, 7, 13, 31, 64, 67, 131, 257];
    let mut seed = 100;
    for &m in &sizes {
        for &k in &[1usize, 2, 5, 17, 64, 129] {
            for &n in &sizes {
                if m * k * n > 300_000 {
                    continue;
                }
                seed += 3;
                let a = randn(&[m, k], seed);
                let b = randn(&[k, n], seed + 1);
                let r = Reference::new(&a.to_vec(), &b.to_vec(), m, k, n);
                r.check(&a.matmul(&b), "row-major");
                // The same products from transposed storage.
                let at = a.t().contiguous().t();
                let bt = b.t().contiguous().t();
                r.check(&at.matmul(&bt), "transposed");
                r.check(&a.matmul(&bt), "b transposed");
            }
        }
    }
}

#[test]
fn batched_matmul_matches_reference_per_batch() {
    // [2, 3, m, k] @ [3, k, n] (broadcast), one batch a transposed view.
    let (m, k, n) = (5, 7, 11);
    let a = randn(&[2, 3, k, m], 7).transpose(-1, -2);
    let b = randn(&[3, k, n], 8);
    let c = a.matmul(&b);
    assert_eq!(c.dims(), &[2, 3, m, n]);
    for i in 0..2 {
        for j in 0..3 {
            let ai = a.select(0, i).select(0, j).contiguous().to_vec();
            let bj = b.select(0, j).to_vec();
            let ci = c.select(0, i).select(0, j);
            Reference::new(&ai, &bj, m, k, n).check(&ci, &format!("batch ({i}, {j})"));
        }
    }
    // The folded [b, t, k] @ [k, n] path equals the per-batch products.
    let x = randn(&[4, 3, k], 9);
    let w = randn(&[n, k], 10);
    let y = x.matmul(&w.t());
    for i in 0..4 {
        assert_eq!(
            y.select(0, i).to_vec(),
            x.select(0, i).matmul(&w.t()).to_vec()
        );
    }
}

#[test]
fn matmul_gradcheck() {
    let cases: Vec<(&str, Vec<usize>, Vec<usize>)> = vec![
        ("dot", vec![4], vec![4]),
        ("mv", vec![3, 4], vec![4]),
        ("vm", vec![4], vec![4, 3]),
        ("mm", vec![3, 4], vec![4, 2]),
        ("batched", vec![2, 3, 4], vec![2, 4, 2]),
        ("batched @ mat", vec![2, 3, 4], vec![4, 2]),
        ("mat @ batched", vec![3, 4], vec![2, 4, 2]),
        ("broadcast ones", vec![2, 1, 3, 4], vec![3, 4, 2]),
        ("vec @ batched", vec![4], vec![2, 4, 3]),
        ("batched @ vec", vec![2, 3, 4], vec![4]),
        ("4-D @ mat", vec![2, 3, 2, 4], vec![4, 2]),
        ("mat @ 4-D", vec![2, 4], vec![3, 2, 4, 2]),
    ];
    for (i, (name, sa, sb)) in cases.iter().enumerate() {
        let a = randn(sa, 200 + i as u64);
        let b = randn(sb, 300 + i as u64);
        gradcheck_views(name, &[a, b], &|x| x[0].matmul(&x[1]));
    }
    let (a, b) = (randn(&[2, 3, 4], 1), randn(&[2, 4, 5], 2));
    gradcheck_views("bmm", &[a, b], &|x| x[0].bmm(&x[1]));
    let (a, b) = (randn(&[3], 3), randn(&[4], 4));
    gradcheck_views("outer", &[a, b], &|x| x[0].outer(&x[1]));
    // The Linear case and an operand used twice.
    let (x, w) = (randn(&[2, 3, 4], 5), randn(&[5, 4], 6));
    gradcheck("x @ w.t()", &[x, w], &|x| x[0].matmul(&x[1].t()));
    gradcheck("a @ a", &[randn(&[3, 3], 7)], &|x| x[0].matmul(&x[0]));
    gradcheck("a.t() @ a", &[randn(&[4, 3], 8)], &|x| {
        x[0].t().matmul(&x[0])
    });
}

/// The packed GEMM may sum a view and its contiguous copy in a different
/// order (packing, GEMV paths), so they agree to rounding, not bit for bit.
const CLOSE: Tol = Tol::new(1e-6, 1e-6);

#[test]
fn matmul_on_views_equals_matmul_on_copies() {
    let x = randn(&[4, 6], 11);
    let right = |v: &Tensor| randn(&[v.dims()[1], 5], 12);
    let left = |v: &Tensor| randn(&[3, v.dims()[0]], 13);
    check_views_close("v @ m", &x, &|v| v.matmul(&right(v)), CLOSE);
    check_views_close("m @ v", &x, &|v| left(v).matmul(v), CLOSE);
    check_views_close("v @ v.t()", &x, &|v| v.matmul(&v.t()), CLOSE);
    check_views_close("v.t() @ v", &x, &|v| v.t().matmul(v), CLOSE);
    check_views_close(
        "v @ vec",
        &x,
        &|v| v.matmul(&randn(&[v.dims()[1]], 14)),
        CLOSE,
    );
    check_views_close(
        "vec @ v",
        &x,
        &|v| randn(&[v.dims()[0]], 15).matmul(v),
        CLOSE,
    );
    check_views_close(
        "batched v",
        &x,
        &|v| {
            v.unsqueeze(0)
                .expand([2, v.dims()[0], v.dims()[1]])
                .matmul(&right(v))
        },
        CLOSE,
    );
    check_views_close(
        "bmm",
        &x,
        &|v| v.unsqueeze(0).bmm(&right(v).unsqueeze(0)),
        CLOSE,
    );
    check_views_close(
        "outer",
        &x,
        &|v| v.select(0, 0).outer(&v.select(1, 0)),
        CLOSE,
    );
}

#[test]
fn view_gradients_equal_copy_gradients() {
    // The gradient of a column-major operand is written column-major; its
    // values must not depend on that.
    let w = randn(&[5, 4], 20).with_requires_grad();
    let x = randn(&[3, 4], 21);
    let g = randn(&[3, 5], 22);
    (&x.matmul(&w.t()) * &g).sum().backward();
    let w2 = w.detach().t().contiguous().with_requires_grad();
    (&x.matmul(&w2) * &g).sum().backward();
    let (gw, gw2) = (w.grad().unwrap(), w2.grad().unwrap());
    assert!(gw.is_contiguous(), "the weight's gradient needs no copy");
    assert_eq!(gw.to_vec(), gw2.t().to_vec());
}

#[test]
fn errors_name_the_op_and_both_shapes() {
    let msg = |r: Result<Tensor, Error>| r.unwrap_err().to_string();
    let m = msg(Tensor::zeros([2, 3]).try_matmul(&Tensor::zeros([4, 5])));
    assert!(
        m.starts_with("matmul: shapes [2, 3] and [4, 5] do not match (inner dimensions must agree"),
        "{m}"
    );
    let m = msg(Tensor::zeros([3]).try_matmul(&Tensor::zeros([4])));
    assert!(
        m.starts_with("matmul: shapes [3] and [4] do not match (inner"),
        "{m}"
    );
    let m = msg(Tensor::zeros([2, 3, 4]).try_matmul(&Tensor::zeros([5, 4, 6])));
    assert_eq!(
        m,
        "matmul: shapes [2, 3, 4] and [5, 4, 6] do not match (the batch dimensions cannot be broadcast together)"
    );
    let m = msg(Tensor::scalar(1.0).try_matmul(&Tensor::zeros([3])));
    assert_eq!(
        m,
        "matmul: shapes [] and [3] do not match (both arguments need at least one dimension)"
    );
    let m = msg(Tensor::zeros([2, 3]).try_bmm(&Tensor::zeros([2, 3, 4])));
    assert_eq!(
        m,
        "bmm: shapes [2, 3] and [2, 3, 4] do not match (both arguments must be 3-D)"
    );
    let m = msg(Tensor::zeros([2, 3, 4]).try_bmm(&Tensor::zeros([3, 4, 5])));
    assert_eq!(
        m,
        "bmm: shapes [2, 3, 4] and [3, 4, 5] do not match (the batch sizes must be equal)"
    );
    let m = msg(Tensor::zeros([2, 3, 4]).try_bmm(&Tensor::zeros([2, 3, 5])));
    assert!(m.starts_with("bmm: shapes [2, 3, 4] and [2, 3, 5] do not match (inner"));
    let m = msg(Tensor::zeros([2, 3]).try_outer(&Tensor::zeros([3])));
    assert_eq!(
        m,
        "outer: shapes [2, 3] and [3] do not match (both arguments must be 1-D)"
    );
    // The plain form panics with the same message.
    let r = std::panic::catch_unwind(|| Tensor::zeros([2, 3]).matmul(&Tensor::zeros([4, 5])));
    let payload = r.unwrap_err();
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.starts_with("matmul: shapes [2, 3] and [4, 5] do not match"),
        "{text}"
    );
}

#[test]
fn empty_and_special_values() {
    // k = 0 gives zeros of the right shape; m or n = 0 gives empty results.
    let c = Tensor::zeros([3, 0]).matmul(&Tensor::zeros([0, 4]));
    assert_eq!(c.dims(), &[3, 4]);
    assert!(c.values().all(|v| v == 0.0));
    assert_eq!(Tensor::zeros([0]).matmul(&Tensor::zeros([0])).item(), 0.0);
    assert_eq!(
        Tensor::zeros([2, 0, 3])
            .matmul(&Tensor::zeros([3, 4]))
            .dims(),
        &[2, 0, 4]
    );
    assert_eq!(
        Tensor::zeros([0, 2, 3])
            .matmul(&Tensor::zeros([3, 4]))
            .dims(),
        &[0, 2, 4]
    );
    // Gradient of a broadcast operand over an empty batch is zeros.
    let w = Tensor::ones([3, 4]).with_requires_grad();
    Tensor::zeros([0, 2, 3]).matmul(&w).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![0.0; 12]);
    // NaN and inf propagate as in IEEE (inf * 0 = NaN).
    let a = Tensor::from_slice(&[1.0, f32::NAN, 2.0, 3.0], [2, 2]).unwrap();
    let c = a.matmul(&Tensor::eye(2));
    assert!(c.get(&[0, 0]).is_nan() && c.get(&[0, 1]).is_nan());
    assert_eq!(c.get(&[1, 0]), 2.0);
    let inf = Tensor::from_slice(&[f32::INFINITY, 0.0], [1, 2]).unwrap();
    let c = inf.matmul(&Tensor::from_slice(&[0.0, 1.0], [2, 1]).unwrap());
    assert!(c.item().is_nan());
    // Identity is exact; 0-D result of a dot product.
    let x = randn(&[5, 7], 30);
    assert_eq!(x.matmul(&Tensor::eye(7)), x);
    let d = Tensor::arange(1.0, 4.0, 1.0).matmul(&Tensor::arange(1.0, 4.0, 1.0));
    assert_eq!((d.rank(), d.item()), (0, 14.0));
}

#[test]
fn results_are_contiguous_and_grad_fns_named() {
    let a = randn(&[3, 4], 40).with_requires_grad();
    let b = randn(&[4, 2], 41);
    let v = randn(&[4], 42);
    assert_eq!(a.matmul(&b).grad_fn_name(), Some("MmBackward0"));
    assert_eq!(a.matmul(&v).grad_fn_name(), Some("MvBackward0"));
    assert_eq!(
        a.select(0, 0).matmul(&v).grad_fn_name(),
        Some("DotBackward0")
    );
    assert!(a.t().matmul(&a).is_contiguous());
    assert!(b.matmul(&Tensor::zeros([2, 3])).grad_fn_name().is_none());
}

#[test]
fn linear_layer_tolerance_sanity() {
    // A mid-size product against the f64 reference with the fixture tolerance
    // scaled by sqrt(k): guards against gross accumulation-order errors.
    let (m, k, n) = (16, 300, 9);
    let a = randn(&[m, k], 50);
    let w = randn(&[n, k], 51);
    let got = a.matmul(&w.t());
    let want = naive(&a.to_vec(), &w.t().contiguous().to_vec(), m, k, n);
    let want =
        Tensor::from_slice(&want.iter().map(|&v| v as f32).collect::<Vec<_>>(), [m, n]).unwrap();
    common::assert_close(&got, &want, Tol::new(1e-4, 1e-4), "linear");
}

/// `x.linear(w, b)` computes its gradients with direct products; they equal,
/// bit for bit, the gradients of `x.matmul(w.t()) + b` (the general matmul
/// and broadcast-add backward) for plain, batched, strided, empty and
/// inner-dimension-0 operands. One exception, checked against the dot-product
/// error bound instead: the gradient of a column-major `x` with few rows
/// ("wide", strided), which matmul writes column-major (a product of 700
/// rows, the blocked loop) and linear row-major (9 rows against a
/// column-major weight: the GEMM's dot-product path, another order of
/// additions).
#[test]
fn linear_gradients_equal_the_matmul_forms_bit_for_bit() {
    type Case = (&'static str, Vec<usize>, usize, usize);
    let cases: [Case; 6] = [
        ("row", vec![1, 64], 64, 32),
        ("batch", vec![37, 19], 19, 23),
        ("3-d", vec![2, 5, 300], 300, 9),
        ("no rows", vec![0, 6], 6, 4),
        ("in 0", vec![3, 0], 0, 5),
        ("wide", vec![9, 700], 700, 300),
    ];
    for (name, xd, inf, outf) in cases {
        for strided in [false, true] {
            // Strided: x is the transpose of a contiguous buffer (copied by
            // linear) and w a transposed view (read where it lies).
            let x = if strided && xd.len() == 2 {
                randn(&[xd[1], xd[0]], 60).t()
            } else {
                randn(&xd, 60)
            };
            let w = if strided {
                randn(&[inf, outf], 61).t()
            } else {
                randn(&[outf, inf], 61)
            };
            let b = randn(&[outf], 62);
            let mut gd = xd.clone();
            *gd.last_mut().unwrap() = outf;
            let g = randn(&gd, 63);
            let grads = |use_linear: bool| {
                let (x, w, b) = (
                    x.detach().with_requires_grad(),
                    w.detach().with_requires_grad(),
                    b.detach().with_requires_grad(),
                );
                let y = if use_linear {
                    x.linear(&w, Some(&b))
                } else {
                    x.matmul(&w.t()).add_tensor(&b)
                };
                y.backward_with(Some(&g), false).unwrap();
                [x, w, b].map(|t| t.grad().unwrap())
            };
            let (got, want) = (grads(true), grads(false));
            for (what, (a, e)) in ["x", "weight", "bias"].iter().zip(got.iter().zip(&want)) {
                assert_eq!(
                    a.dims(),
                    e.dims(),
                    "{name} strided={strided}: d{what} shape"
                );
                if name == "wide" && strided && *what == "x" {
                    // dx = g w: |error| <= (k + 4) eps sum |g| |w| (k = outf).
                    let bound = g.abs().matmul(&w.abs()).to_vec();
                    let tol = (outf + 4) as f32 * f32::EPSILON;
                    for ((x, y), b) in a.to_vec().iter().zip(e.to_vec()).zip(bound) {
                        assert!((x - y).abs() <= tol * b, "{name}: dx {x} vs {y}");
                    }
                    continue;
                }
                let bits = |t: &Tensor| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(e), "{name} strided={strided}: d{what}");
            }
        }
    }
}
