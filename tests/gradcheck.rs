//! Finite-difference check of every differentiable op, in one table: each row
//! is checked on contiguous inputs and again with every input passed as a
//! non-contiguous view (`common::gradcheck_views`). Losses are accumulated in
//! f64. Inputs keep away from kinks and ties (where finite differences are
//! meaningless); those points are covered by the PyTorch fixtures of each
//! family's test file.

mod common;

use common::{gradcheck_views, randn, uniform};
use train_station::Tensor;

type Op = fn(&[Tensor]) -> Tensor;

/// Distinct values at least 0.05 apart (no ties for max/min/sort-like ops).
fn spread(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let perm = train_station::Generator::new(seed).permutation(n);
    let v: Vec<f32> = perm
        .iter()
        .map(|&i| (i as f32 - n as f32 / 2.0) * 0.05 + 0.013)
        .collect();
    Tensor::from_slice(&v, shape).unwrap()
}

fn index(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape).unwrap()
}

#[test]
fn every_differentiable_op() {
    let a = randn(&[3, 4], 1);
    let b = randn(&[3, 4], 2);
    let row = randn(&[4], 3);
    let pos = uniform(&[3, 4], 4, 0.5, 2.0);
    let away = uniform(&[3, 4], 6, 0.2, 1.5); // away from 0 (relu, abs kinks)
    let signed_away =
        &away * &Tensor::from_fn([3, 4], |i| if (i[0] + i[1]) % 2 == 0 { 1.0 } else { -1.0 });
    let cube = randn(&[2, 3, 4], 7);
    let distinct = spread(&[3, 4], 8);
    // 0.025 above or below `distinct`: never within a finite-difference step.
    let near = &distinct
        + &Tensor::from_fn([3, 4], |i| {
            if (i[0] * 4 + i[1]) % 3 == 0 {
                0.025
            } else {
                -0.025
            }
        });

    let rows: Vec<(&str, Vec<Tensor>, Op)> = vec![
        // binary, broadcasting
        ("add", vec![a.clone(), row.clone()], |x| &x[0] + &x[1]),
        ("sub", vec![a.clone(), b.clone()], |x| &x[0] - &x[1]),
        ("mul", vec![a.clone(), row.clone()], |x| &x[0] * &x[1]),
        ("div", vec![a.clone(), pos.clone()], |x| &x[0] / &x[1]),
        ("pow_tensor", vec![pos.clone(), b.clone()], |x| {
            x[0].pow_tensor(&x[1])
        }),
        ("maximum", vec![distinct.clone(), near.clone()], |x| {
            x[0].maximum(&x[1])
        }),
        ("minimum", vec![distinct.clone(), near.clone()], |x| {
            x[0].minimum(&x[1])
        }),
        ("scalars", vec![pos.clone()], |x| {
            &(&(&(2.0 - &x[0]) * 3.0) + &(1.5 / &x[0])) / 4.0 - 1.0
        }),
        ("neg", vec![a.clone()], |x| -&x[0]),
        // unary and activations
        ("abs", vec![signed_away.clone()], |x| x[0].abs()),
        ("exp", vec![a.clone()], |x| x[0].exp()),
        ("log", vec![pos.clone()], |x| x[0].log()),
        ("sqrt", vec![pos.clone()], |x| x[0].sqrt()),
        ("rsqrt", vec![pos.clone()], |x| x[0].rsqrt()),
        ("sin", vec![a.clone()], |x| x[0].sin()),
        ("cos", vec![a.clone()], |x| x[0].cos()),
        ("clamp", vec![distinct.clone()], |x| {
            x[0].clamp(Some(-0.112), Some(0.138))
        }),
        ("relu", vec![signed_away.clone()], |x| x[0].relu()),
        ("leaky_relu", vec![signed_away.clone()], |x| {
            x[0].leaky_relu(0.1)
        }),
        ("sigmoid", vec![a.clone()], |x| x[0].sigmoid()),
        ("tanh", vec![a.clone()], |x| x[0].tanh()),
        ("gelu", vec![a.clone()], |x| x[0].gelu()),
        ("gelu_tanh", vec![a.clone()], |x| x[0].gelu_tanh()),
        ("silu", vec![a.clone()], |x| x[0].silu()),
        ("softplus", vec![a.clone()], |x| x[0].softplus()),
        ("softplus_with", vec![a.clone()], |x| {
            x[0].softplus_with(2.0, 3.0)
        }),
        ("pow_scalar", vec![pos.clone()], |x| x[0].pow_scalar(1.7)),
        ("square", vec![a.clone()], |x| x[0].square()),
        ("reciprocal", vec![pos.clone()], |x| x[0].reciprocal()),
        // selection
        ("where_", vec![a.clone(), b.clone()], |x| {
            let c = Tensor::from_fn([3, 4], |i| ((i[0] + i[1]) % 2) as f32);
            Tensor::where_(&c, &x[0], &x[1])
        }),
        ("masked_fill", vec![a.clone()], |x| {
            let m = Tensor::from_fn([3, 4], |i| ((i[0] * 4 + i[1]) % 3 == 0) as u8 as f32);
            x[0].masked_fill(&m, 2.5)
        }),
        // reductions
        ("sum", vec![cube.clone()], |x| x[0].sum()),
        ("sum_dims", vec![cube.clone()], |x| {
            x[0].sum_dims([0, 2], true)
        }),
        ("mean", vec![cube.clone()], |x| x[0].mean()),
        ("mean_dims", vec![cube.clone()], |x| {
            x[0].mean_dims([1], false)
        }),
        ("max", vec![distinct.clone()], |x| x[0].max()),
        ("min", vec![distinct.clone()], |x| x[0].min()),
        ("max_dims", vec![distinct.clone()], |x| {
            x[0].max_dims([1], false)
        }),
        ("min_dims", vec![distinct.clone()], |x| {
            x[0].min_dims([0], true)
        }),
        ("max_dim values", vec![distinct.clone()], |x| {
            x[0].max_dim(1, false).0
        }),
        ("min_dim values", vec![distinct.clone()], |x| {
            x[0].min_dim(0, true).0
        }),
        ("var", vec![cube.clone()], |x| x[0].var()),
        ("var_dims", vec![cube.clone()], |x| {
            x[0].var_dims([2], 0, false)
        }),
        ("std", vec![cube.clone()], |x| x[0].std()),
        ("std_dims", vec![cube.clone()], |x| {
            x[0].std_dims([0, 1], 1, true)
        }),
        ("norm", vec![a.clone()], |x| x[0].norm()),
        ("norm_p 1", vec![signed_away.clone()], |x| x[0].norm_p(1.0)),
        ("norm_dims inf", vec![distinct.clone()], |x| {
            x[0].norm_dims(f32::INFINITY, [1], false)
        }),
        ("logsumexp", vec![cube.clone()], |x| {
            x[0].logsumexp([1, 2], false)
        }),
        ("prod", vec![pos.clone()], |x| x[0].prod()),
        ("prod_dims", vec![pos.clone()], |x| {
            x[0].prod_dims([1], true)
        }),
        ("softmax", vec![cube.clone()], |x| x[0].softmax(1)),
        ("log_softmax", vec![cube.clone()], |x| x[0].log_softmax(-1)),
        // products
        ("matmul 2d", vec![a.clone(), randn(&[4, 5], 9)], |x| {
            x[0].matmul(&x[1])
        }),
        (
            "matmul batched",
            vec![cube.clone(), randn(&[4, 2], 10)],
            |x| x[0].matmul(&x[1]),
        ),
        ("matmul 1d", vec![row.clone(), randn(&[4, 3], 11)], |x| {
            x[0].matmul(&x[1])
        }),
        ("bmm", vec![cube.clone(), randn(&[2, 4, 3], 12)], |x| {
            x[0].bmm(&x[1])
        }),
        ("outer", vec![row.clone(), randn(&[3], 13)], |x| {
            x[0].outer(&x[1])
        }),
        (
            "linear",
            vec![cube.clone(), randn(&[5, 4], 15), randn(&[5], 16)],
            |x| x[0].linear(&x[1], Some(&x[2])),
        ),
        // structure
        ("cat", vec![a.clone(), b.clone()], |x| {
            Tensor::cat(&[&x[0], &x[1]], 1)
        }),
        ("stack", vec![a.clone(), b.clone()], |x| {
            Tensor::stack(&[&x[0], &x[1]], 0)
        }),
        ("index_select", vec![a.clone()], |x| {
            x[0].index_select(1, &index(&[3.0, 0.0, 3.0], &[3]))
        }),
        ("gather", vec![a.clone()], |x| {
            x[0].gather(1, &index(&[0.0, 3.0, 1.0, 1.0, 2.0, 0.0], &[3, 2]))
        }),
        ("scatter_add", vec![a.clone(), randn(&[3, 2], 14)], |x| {
            x[0].scatter_add(1, &index(&[0.0, 3.0, 1.0, 1.0, 2.0, 2.0], &[3, 2]), &x[1])
        }),
        ("repeat", vec![a.clone()], |x| x[0].repeat(&[2, 1, 2])),
        ("flip", vec![cube.clone()], |x| x[0].flip([0, 2])),
        ("pad", vec![a.clone()], |x| x[0].pad(&[(1, 2), (0, 1)], 0.5)),
        // views and copies
        ("reshape", vec![cube.clone()], |x| x[0].reshape([4, -1])),
        ("flatten", vec![cube.clone()], |x| x[0].flatten(1, 2)),
        ("squeeze/unsqueeze", vec![a.clone()], |x| {
            x[0].unsqueeze(1).squeeze()
        }),
        ("transpose", vec![cube.clone()], |x| x[0].transpose(0, 2)),
        ("t", vec![a.clone()], |x| x[0].t()),
        ("permute", vec![cube.clone()], |x| x[0].permute([2, 0, 1])),
        ("narrow", vec![a.clone()], |x| x[0].narrow(1, 1, 2)),
        ("slice", vec![a.clone()], |x| x[0].slice(1, 0, 4, 2)),
        ("select", vec![cube.clone()], |x| x[0].select(1, 2)),
        ("expand", vec![row.clone()], |x| x[0].expand([3, 4])),
        ("chunk/split/unbind", vec![cube.clone()], |x| {
            let c = x[0].chunk(2, 2);
            let s = x[0].split(2, 1);
            let u = x[0].unbind(0);
            &(&c[1] * 2.0).sum() + &(&s[0].sum() + &u[1].sum())
        }),
        ("unfold", vec![row.clone()], |x| x[0].unfold(0, 2, 1)),
        ("as_strided", vec![row.clone()], |x| {
            x[0].contiguous().as_strided([2, 2], [1, 1], 1)
        }),
        ("contiguous/deep_clone", vec![a.clone()], |x| {
            x[0].t().contiguous().deep_clone()
        }),
    ];
    for (name, inputs, f) in &rows {
        gradcheck_views(name, inputs, f);
    }
    assert!(rows.len() >= 80, "{} rows", rows.len());
}
