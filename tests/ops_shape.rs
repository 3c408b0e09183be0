//! cat, stack, index_select, gather, scatter_add, repeat, flip, pad: PyTorch
//! fixtures, finite differences, views, errors and edge cases.

mod common;

use common::{FIXTURE, check_fixtures, check_views_equal, gradcheck_views, randn};
use train_station::Tensor;

fn idx(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape).unwrap()
}

#[test]
fn shape_ops_match_pytorch() {
    check_fixtures(
        "shape",
        |_| FIXTURE,
        |name, x| {
            let p = &x[0];
            Some(match name {
                "cat_dim0" => Tensor::cat(&[&x[0], &x[1]], 0),
                "cat_dim1_three" => Tensor::cat(x, 1),
                "cat_neg_dim" => Tensor::cat(x, -1),
                "cat_views" => Tensor::cat(&[x[0].t(), x[1].slice(1, 0, 6, 2)], 0),
                "cat_legacy_empty" => Tensor::cat(x, 0),
                "cat_single" => Tensor::cat(x, 1),
                "stack_dim0" => Tensor::stack(x, 0),
                "stack_neg_dim" => Tensor::stack(x, -1),
                "stack_middle_views" => Tensor::stack(&[x[0].t(), x[1].slice(1, 1, 4, 2).t()], 1),
                "stack_scalars" => Tensor::stack(x, 0),
                "index_select_dim0" => p.index_select(0, &x[1]),
                "index_select_neg_dim" => p.index_select(-1, &x[1]),
                "index_select_view" => p.t().index_select(1, &x[1]),
                "index_select_3d" => p.index_select(1, &x[1]),
                "index_select_empty" => p.index_select(0, &x[1]),
                "index_select_strided_index" => p.index_select(0, &x[1].slice(0, 0, 6, 2)),
                "gather_dim0" => p.gather(0, &x[1]),
                "gather_dim1_smaller" => p.gather(1, &x[1]),
                "gather_neg_dim_3d" => p.gather(-1, &x[1]),
                "gather_view" => p.t().gather(1, &x[1]),
                "scatter_add_dim0" | "scatter_add_big_src" => p.scatter_add(0, &x[1], &x[2]),
                "scatter_add_dim1" => p.scatter_add(1, &x[1], &x[2]),
                "scatter_add_neg_dim_views" => p.t().scatter_add(-1, &x[1], &x[2].t()),
                "repeat_2d" => p.repeat(&[2, 3]),
                "repeat_more_dims" => p.repeat(&[2, 1, 2]),
                "repeat_ones" => p.repeat(&[1, 1]),
                "repeat_view" => p.t().repeat(&[2, 1]),
                "repeat_3d" => p.repeat(&[1, 3, 2]),
                "repeat_zero" => p.repeat(&[0, 2]),
                "flip_dim0" => p.flip([0]),
                "flip_multi" => p.flip([0, 2]),
                "flip_neg" => p.flip([-1]),
                "flip_all" => p.flip([2, 0, 1]),
                "flip_view" => p.t().flip([0]),
                "pad_last" => p.pad(&[(1, 2)], 0.0),
                "pad_two_dims" => p.pad(&[(1, 0), (2, 1)], 0.5),
                "pad_three_dims" => p.pad(&[(1, 1), (0, 2), (1, 0)], -2.0),
                "pad_negative" => p.pad(&[(-1, 2), (1, -2)], 0.0),
                "pad_view" => p.t().pad(&[(1, 1), (1, 1)], 3.0),
                "pad_none" => p.pad(&[], 0.0),
                _ => return None,
            })
        },
    );
}

#[test]
fn shape_ops_gradcheck() {
    let a = randn(&[3, 4], 1);
    let b = randn(&[3, 2], 2);
    let c = randn(&[3, 4], 3);
    gradcheck_views("cat", &[a.clone(), b.clone()], &|x| Tensor::cat(x, -1));
    gradcheck_views("cat dim0", &[a.clone(), c.clone()], &|x| {
        Tensor::cat(&[&x[0], &x[1], &x[0]], 0)
    });
    gradcheck_views("stack", &[a.clone(), c.clone()], &|x| Tensor::stack(x, 1));
    let rows = idx(&[2.0, 0.0, 2.0, 1.0, 2.0], &[5]);
    gradcheck_views("index_select", std::slice::from_ref(&a), &|x| {
        x[0].index_select(0, &rows)
    });
    gradcheck_views("index_select dim1", std::slice::from_ref(&a), &|x| {
        x[0].index_select(-1, &rows)
    });
    let g = idx(&[0.0, 3.0, 3.0, 1.0, 2.0, 2.0], &[3, 2]);
    gradcheck_views("gather", std::slice::from_ref(&a), &|x| x[0].gather(1, &g));
    let g0 = idx(&[2.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0], &[2, 4]);
    gradcheck_views("gather dim0", std::slice::from_ref(&a), &|x| {
        x[0].gather(0, &g0)
    });
    gradcheck_views("scatter_add", &[a.clone(), randn(&[2, 4], 4)], &|x| {
        x[0].scatter_add(0, &g0, &x[1])
    });
    gradcheck_views(
        "scatter_add big src",
        &[a.clone(), randn(&[3, 3], 5)],
        &|x| x[0].scatter_add(1, &g, &x[1]),
    );
    gradcheck_views("repeat", std::slice::from_ref(&b), &|x| {
        x[0].repeat(&[2, 1, 3])
    });
    gradcheck_views("repeat 1-D", &[randn(&[3], 6)], &|x| x[0].repeat(&[2, 2]));
    gradcheck_views("flip", std::slice::from_ref(&a), &|x| x[0].flip([0, -1]));
    gradcheck_views("pad", std::slice::from_ref(&a), &|x| {
        x[0].pad(&[(1, -1), (-1, 2)], 0.25)
    });
}

#[test]
fn shape_ops_on_views_equal_ops_on_copies() {
    let x = randn(&[4, 6], 7);
    check_views_equal("cat", &x, &|v| Tensor::cat(&[v, &v.flip([0])], 0));
    check_views_equal("cat dim1", &x, &|v| Tensor::cat(&[v, v], 1));
    check_views_equal("stack", &x, &|v| Tensor::stack(&[v, v], 1));
    check_views_equal("index_select", &x, &|v| {
        v.index_select(1, &idx(&[1.0, 0.0, 1.0], &[3]))
    });
    check_views_equal("index_select dim0", &x, &|v| {
        v.index_select(0, &idx(&[1.0, 1.0, 0.0], &[3]))
    });
    check_views_equal("gather", &x, &|v| {
        v.gather(1, &idx(&[0.0, 1.0, 1.0, 0.0], &[2, 2]))
    });
    check_views_equal("scatter_add", &x, &|v| {
        let src = Tensor::ones([2, 2]);
        v.scatter_add(0, &idx(&[1.0, 0.0, 1.0, 1.0], &[2, 2]), &src)
    });
    check_views_equal("scatter_add src view", &x, &|v| {
        let base = Tensor::zeros([2, v.dims()[1]]);
        let index = Tensor::zeros([2, 2]);
        base.scatter_add(0, &index, v)
    });
    check_views_equal("repeat", &x, &|v| v.repeat(&[2, 1, 3]));
    check_views_equal("flip", &x, &|v| v.flip([0, 1]));
    check_views_equal("flip last", &x, &|v| v.flip([-1]));
    check_views_equal("pad", &x, &|v| v.pad(&[(1, 1), (2, -1)], 9.0));
}

#[test]
fn index_views_are_read_in_logical_order() {
    // A transposed index tensor and an index broadcast by expand.
    let x = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 4]);
    let i = idx(&[0.0, 2.0, 1.0, 1.0, 2.0, 0.0], &[2, 3]).t(); // [3, 2]
    assert_eq!(x.gather(1, &i).to_vec(), vec![0.0, 1.0, 6.0, 6.0, 9.0, 8.0]);
    let e = idx(&[3.0], &[1]).expand([4]);
    let mut want = vec![3.0; 4];
    want.extend([7.0; 4]);
    want.extend([11.0; 4]);
    assert_eq!(x.index_select(1, &e).to_vec(), want);
}

#[test]
fn repeated_indices_accumulate() {
    let x = Tensor::arange(0.0, 6.0, 1.0)
        .reshape([3, 2])
        .with_requires_grad();
    let y = x.index_select(0, &idx(&[1.0, 1.0, 1.0, 2.0], &[4]));
    y.sum().backward();
    assert_eq!(
        x.grad().unwrap().to_vec(),
        vec![0.0, 0.0, 3.0, 3.0, 1.0, 1.0]
    );
    let out = Tensor::zeros([3]).scatter_add(
        0,
        &idx(&[2.0, 2.0, 0.0, 2.0], &[4]),
        &Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0], [4]).unwrap(),
    );
    assert_eq!(out.to_vec(), vec![3.0, 0.0, 7.0]);
}

#[test]
fn results_match_naive_definitions() {
    // repeat and flip of a 4-D view against index arithmetic.
    let base = randn(&[3, 2, 4, 5], 8);
    let x = base.permute([2, 0, 3, 1]); // [4, 3, 5, 2], non-contiguous
    let reps = [2usize, 1, 3, 1, 2];
    let r = x.repeat(&reps);
    assert_eq!(r.dims(), &[2, 4, 9, 5, 4]);
    let want = Tensor::from_fn(r.dims(), |i| {
        x.get(&[i[1] % 4, i[2] % 3, i[3] % 5, i[4] % 2])
    });
    assert_eq!(r, want);
    let f = x.flip([1, -1]);
    let want = Tensor::from_fn(x.dims(), |i| x.get(&[i[0], 2 - i[1], i[2], 1 - i[3]]));
    assert_eq!(f, want);
    assert_eq!(f.flip([-1, 1]), x, "flip is its own inverse");
    // pad of a 3-D view.
    let p = x.select(3, 1).pad(&[(2, 1), (0, 1)], 7.0); // [4, 3, 5] -> [4, 4, 8]
    let v = x.select(3, 1);
    let want = Tensor::from_fn([4, 4, 8], |i| {
        if i[1] < 3 && (2..7).contains(&i[2]) {
            v.get(&[i[0], i[1], i[2] - 2])
        } else {
            7.0
        }
    });
    assert_eq!(p, want);
}

#[test]
fn errors_name_the_op_and_shapes_or_index() {
    let msg = |r: train_station::Result<Tensor>| r.unwrap_err().to_string();
    let (a, b) = (Tensor::zeros([2, 3]), Tensor::zeros([2, 4]));
    assert_eq!(
        msg(Tensor::try_cat(&[&a, &b], 0)),
        "cat: shapes [2, 3] and [2, 4] do not match (sizes must match except in the concatenation dimension)"
    );
    assert_eq!(
        msg(Tensor::try_cat(&[&a, &Tensor::zeros([2, 3, 1])], 0)),
        "cat: shapes [2, 3] and [2, 3, 1] do not match (tensors must have the same number of dimensions)"
    );
    assert!(Tensor::try_cat(&[&a, &b], 1).is_ok());
    assert_eq!(
        msg(Tensor::try_cat::<Tensor>(&[], 0)),
        "cat: expects a non-empty list of tensors"
    );
    assert_eq!(
        msg(Tensor::try_cat(&[Tensor::scalar(1.0)], 0)),
        "cat: zero-dimensional tensors cannot be concatenated"
    );
    assert_eq!(
        msg(Tensor::try_cat(&[&a], 2)),
        "cat: dimension 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        msg(Tensor::try_stack(&[&a, &b], 0)),
        "stack: shapes [2, 3] and [2, 4] do not match (all tensors must have the same shape)"
    );
    let x = Tensor::zeros([3, 4]);
    assert_eq!(
        msg(x.try_index_select(0, &idx(&[0.0, 3.0], &[2]))),
        "index_select: index 3 is out of range for a dimension of size 3"
    );
    assert_eq!(
        msg(x.try_index_select(1, &idx(&[-1.0], &[1]))),
        "index_select: index -1 is out of range for a dimension of size 4"
    );
    assert_eq!(
        msg(x.try_index_select(0, &idx(&[0.5], &[1]))),
        "index_select: indices must be whole numbers (f32 values without a fraction)"
    );
    assert!(x.try_index_select(0, &idx(&[f32::NAN], &[1])).is_err());
    assert!(x.try_index_select(0, &Tensor::zeros([1, 1])).is_err());
    assert_eq!(
        msg(x.try_gather(1, &idx(&[4.0], &[1, 1]))),
        "gather: index 4 is out of range for a dimension of size 4"
    );
    assert_eq!(
        msg(x.try_gather(0, &Tensor::zeros([4]))),
        "gather: shapes [3, 4] and [4] do not match (the index must have as many dimensions as the input)"
    );
    assert_eq!(
        msg(x.try_gather(0, &Tensor::zeros([1, 5]))),
        "gather: shapes [3, 4] and [1, 5] do not match (the index may not be larger than the input in any dimension except dim)"
    );
    assert!(x.try_gather(1, &Tensor::zeros([4, 1])).is_err());
    assert!(
        x.try_gather(0, &Tensor::zeros([5, 1])).is_ok(),
        "dim may be larger"
    );
    assert_eq!(
        msg(x.try_scatter_add(0, &idx(&[3.0], &[1, 1]), &Tensor::zeros([1, 1]))),
        "scatter_add: index 3 is out of range for a dimension of size 3"
    );
    assert_eq!(
        msg(x.try_scatter_add(0, &Tensor::zeros([2, 2]), &Tensor::zeros([1, 2]))),
        "scatter_add: shapes [2, 2] and [1, 2] do not match (the index may not be larger than the source in any dimension)"
    );
    assert_eq!(
        msg(x.try_repeat(&[2])),
        "repeat: the number of repeats must be at least the number of dimensions"
    );
    assert_eq!(
        msg(x.try_flip([0, -2])),
        "flip: a dimension appears more than once"
    );
    assert_eq!(
        msg(x.try_pad(&[(1, 1), (1, 1), (1, 1)], 0.0)),
        "pad: the padding lists more dimensions than the tensor has"
    );
    assert_eq!(
        msg(x.try_pad(&[(-3, -2)], 0.0)),
        "pad: negative padding removes more elements than the dimension has"
    );
    // Plain forms panic with the same message.
    let r = std::panic::catch_unwind(|| {
        Tensor::cat(&[Tensor::zeros([2, 3]), Tensor::zeros([2, 4])], 0)
    });
    let text = r
        .unwrap_err()
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.starts_with("cat: shapes [2, 3] and [2, 4] do not match"),
        "{text}"
    );
    let r = std::panic::catch_unwind(|| Tensor::zeros([3]).index_select(0, &idx(&[5.0], &[1])));
    let text = r
        .unwrap_err()
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        text,
        "index_select: index 5 is out of range for a dimension of size 3"
    );
    // A failed op leaves no gradient behind and the inputs usable.
    let w = Tensor::ones([2]).with_requires_grad();
    assert!(w.try_index_select(0, &idx(&[2.0], &[1])).is_err());
    w.index_select(0, &idx(&[1.0], &[1])).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![0.0, 1.0]);
}

#[test]
fn empty_and_scalar_edge_cases() {
    // Empty inputs and empty results.
    let e = Tensor::zeros([0, 3]);
    assert_eq!(Tensor::cat(&[&e, &Tensor::ones([2, 3])], 0).dims(), &[2, 3]);
    assert_eq!(Tensor::cat(&[&e, &e], 1).dims(), &[0, 6]);
    assert_eq!(Tensor::stack(&[&e, &e], 1).dims(), &[0, 2, 3]);
    assert_eq!(e.flip([0, 1]).dims(), &[0, 3]);
    assert_eq!(e.repeat(&[2, 2]).dims(), &[0, 6]);
    assert_eq!(e.pad(&[(1, 1), (1, 0)], 5.0).to_vec(), vec![5.0; 5]);
    assert_eq!(
        Tensor::ones([2, 3])
            .index_select(1, &Tensor::zeros([0]))
            .dims(),
        &[2, 0]
    );
    let g = Tensor::ones([2, 3]).gather(0, &Tensor::zeros([0, 3]));
    assert_eq!(g.dims(), &[0, 3]);
    // Gradient through an empty result is zeros of the input's shape.
    let w = Tensor::ones([2, 3]).with_requires_grad();
    (w.repeat(&[0, 1]).sum() + w.sum()).backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![1.0; 6]);
    // 0-D tensors (PyTorch semantics).
    let s = Tensor::scalar(5.0);
    assert_eq!(
        Tensor::stack(&[&s, &Tensor::scalar(2.0)], 0).to_vec(),
        vec![5.0, 2.0]
    );
    let r = s.index_select(0, &idx(&[0.0], &[1]));
    assert_eq!((r.rank(), r.item()), (0, 5.0));
    assert!(s.try_index_select(0, &idx(&[0.0, 0.0], &[2])).is_err());
    let r = s.gather(0, &Tensor::scalar(0.0));
    assert_eq!((r.rank(), r.item()), (0, 5.0));
    let r = s.scatter_add(0, &Tensor::scalar(0.0), &Tensor::scalar(2.0));
    assert_eq!((r.rank(), r.item()), (0, 7.0));
    assert_eq!(s.flip([0]).item(), 5.0);
    assert_eq!(s.repeat(&[2, 3]).to_vec(), vec![5.0; 6]);
    assert_eq!(s.repeat(&[]).rank(), 0);
    assert_eq!(s.pad(&[], 0.0).item(), 5.0);
    // Copies keep NaN and infinities bit for bit.
    let special = Tensor::from_slice(&[f32::NAN, f32::INFINITY, -0.0, 1.0], [2, 2]).unwrap();
    let c = Tensor::cat(&[&special, &special], 0).flip([0]).to_vec();
    // Rows reversed: [-0, 1], [NaN, inf], ...
    assert_eq!(c[0].to_bits(), (-0.0f32).to_bits());
    assert!(c[2].is_nan() && c[3] == f32::INFINITY);
    // Inputs given as owned tensors or references.
    let owned = vec![Tensor::ones([1]), Tensor::zeros([2])];
    assert_eq!(Tensor::cat(&owned, 0).to_vec(), vec![1.0, 0.0, 0.0]);
    assert_eq!(
        Tensor::cat(&[&owned[1], &owned[0]], 0).to_vec(),
        vec![0.0, 0.0, 1.0]
    );
}

#[test]
fn grad_fns_are_named_as_in_pytorch() {
    let x = randn(&[2, 3], 9).with_requires_grad();
    let i = idx(&[0.0], &[1]);
    let i2 = idx(&[0.0], &[1, 1]);
    for (got, want) in [
        (Tensor::cat(&[&x, &x], 0), "CatBackward0"),
        (Tensor::stack(&[&x, &x], 0), "StackBackward0"),
        (x.index_select(0, &i), "IndexSelectBackward0"),
        (x.gather(0, &i2), "GatherBackward0"),
        (x.scatter_add(0, &i2, &x), "ScatterAddBackward0"),
        (x.repeat(&[2, 1]), "RepeatBackward0"),
        (x.flip([0]), "FlipBackward0"),
        (x.pad(&[(1, 1)], 0.0), "ConstantPadNdBackward0"),
    ] {
        assert_eq!(got.grad_fn_name(), Some(want));
        assert!(got.is_contiguous());
    }
    // Index tensors never receive a gradient.
    let j = idx(&[1.0], &[1]).with_requires_grad();
    x.index_select(0, &j).sum().backward();
    assert!(j.grad().is_none());
}
