//! The autograd engine: values and gradients of small graphs, views and
//! broadcasting, topological order, graph release, memory, threads, errors.

use train_station::tensor::pool;
use train_station::{Tensor, no_grad};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}

fn leaf(data: &[f32], shape: &[usize]) -> Tensor {
    t(data, shape).with_requires_grad()
}

/// micrograd-style sanity check: the same scalar expression, value and
/// gradients worked out by hand.
#[test]
fn scalar_expression_sanity() {
    let a = leaf(&[-4.0], &[]);
    let b = leaf(&[2.0], &[]);
    // c = a*b + b*b/a - (a - 3)
    let c = &(&(&a * &b) + &(&(&b * &b) / &a)) - &(&a - 3.0);
    // = -8 + 4/-4 - (-7) = -2
    assert_eq!(c.item(), -2.0);
    c.backward();
    // dc/da = b - b^2/a^2 - 1 = 2 - 0.25 - 1 = 0.75
    // dc/db = a + 2b/a = -4 - 1 = -5
    assert_eq!(a.grad().unwrap().item(), 0.75);
    assert_eq!(b.grad().unwrap().item(), -5.0);
    assert!(
        c.grad().is_none(),
        "non-leaf gradients are not kept by default"
    );
}

#[test]
fn broadcast_gradients_are_summed_to_the_operand_shape() {
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = leaf(&[10.0, 20.0, 30.0], &[3]);
    let s = leaf(&[2.0], &[1, 1]);
    let y = (&(&x + &b) * &s).sum();
    assert_eq!(y.item(), 2.0 * (21.0 + 120.0));
    y.backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0; 6]);
    assert_eq!(b.grad().unwrap().to_vec(), vec![4.0, 4.0, 4.0]);
    assert_eq!(b.grad().unwrap().dims(), &[3]);
    assert_eq!(s.grad().unwrap().to_vec(), vec![141.0]);
    assert_eq!(s.grad().unwrap().dims(), &[1, 1]);
}

#[test]
fn gradients_flow_through_every_view() {
    let x = leaf(&(0..24).map(|i| i as f32).collect::<Vec<_>>(), &[2, 3, 4]);
    // Weighted sums so every element's gradient is distinguishable.
    let w = Tensor::from_fn([4, 3], |i| (i[0] * 3 + i[1]) as f32 + 1.0);
    let v = x.permute([2, 1, 0]).select(2, 1); // [4, 3] = x[1, :, :].T
    let y = (&v * &w).sum();
    y.backward();
    let g = x.grad().unwrap();
    for j in 0..3 {
        for k in 0..4 {
            assert_eq!(g.get(&[1, j, k]), w.get(&[k, j]));
            assert_eq!(g.get(&[0, j, k]), 0.0);
        }
    }
    x.zero_grad();
    assert!(x.grad().is_none());

    // narrow + reshape + transpose + expand + slice with a step
    let z = x
        .narrow(1, 1, 2)
        .reshape([2, 8])
        .t()
        .unsqueeze(0)
        .expand([3, 8, 2])
        .slice(1, 0, 8, 3);
    z.sum().backward();
    let g = x.grad().unwrap();
    // Rows 1..3 of dim 1 flattened to 8 per batch; every 3rd kept (0, 3, 6), each x3.
    for b in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                let flat = (j as isize - 1) * 4 + k as isize;
                let expect = if j >= 1 && flat % 3 == 0 { 3.0 } else { 0.0 };
                assert_eq!(g.get(&[b, j, k]), expect, "[{b}, {j}, {k}]");
            }
        }
    }
}

#[test]
fn overlapping_strided_views_accumulate() {
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5]);
    // Windows [0..3], [1..4], [2..5] share elements.
    let w = x.unfold(0, 3, 1);
    w.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, 2.0, 3.0, 2.0, 1.0]);
    x.zero_grad();
    let a = x.as_strided([2, 2], [1, 1], 1); // [[2,3],[3,4]]
    (&a * &a).sum().backward();
    assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 4.0, 12.0, 8.0, 0.0]);
}

#[test]
fn gradients_accumulate_across_backward_calls_and_clones_share_them() {
    let w = leaf(&[1.0, 2.0], &[2]);
    let w2 = w.clone();
    (&w * 3.0).sum().backward();
    (&w2 * 2.0).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![5.0, 5.0]);
    assert_eq!(w2.grad().unwrap().to_vec(), vec![5.0, 5.0]);
    let taken = w.take_grad().unwrap();
    assert_eq!(taken.to_vec(), vec![5.0, 5.0]);
    assert!(w.grad().is_none());
}

#[test]
fn retain_grad_and_retain_graph() {
    let x = leaf(&[1.0, 2.0, 3.0], &[3]);
    let h = &x * &x;
    h.retain_grad();
    let y = h.sum();
    y.backward_with(None, true).unwrap();
    assert_eq!(h.grad().unwrap().to_vec(), vec![1.0, 1.0, 1.0]);
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0, 6.0]);
    y.backward_with(None, false).unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![4.0, 8.0, 12.0]);
    let e = y.try_backward().unwrap_err();
    assert!(e.to_string().contains("second time"), "{e}");
}

#[test]
fn backward_errors() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let y = &x * 2.0;
    assert!(
        y.try_backward()
            .unwrap_err()
            .to_string()
            .contains("one-element")
    );
    y.backward_with(Some(&t(&[1.0, -1.0], &[2])), false)
        .unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, -2.0]);
    let bad = (&x * 2.0).backward_with(Some(&t(&[1.0], &[1])), false);
    assert!(
        bad.unwrap_err()
            .to_string()
            .starts_with("backward: shapes [2] and [1]")
    );
    assert!(t(&[1.0], &[]).try_backward().is_err(), "no grad_fn");
}

#[test]
fn no_grad_and_detach() {
    let x = leaf(&[1.0], &[1]);
    let y = no_grad(|| &x * 2.0);
    assert!(!y.requires_grad());
    let d = (&x * 2.0).detach();
    assert!(!d.requires_grad());
    assert!(x.requires_grad() && x.is_leaf());
    let z = &x * 2.0;
    assert!(!z.is_leaf());
    assert_eq!(z.grad_fn_name(), Some("MulBackward1"));
    assert_eq!(format!("{z}"), "tensor([2.], grad_fn=<MulBackward1>)");
    assert_eq!(format!("{x}"), "tensor([1.], requires_grad=True)");
}

#[test]
fn in_place_rules() {
    let mut w = leaf(&[1.0, 2.0], &[2]);
    let id = w.id();
    assert!(
        w.try_add_assign_scalar(1.0).is_err(),
        "leaf in-place while recording"
    );
    assert!(w.try_fill(0.0).is_err());
    no_grad(|| {
        w -= 0.5;
        w.set(&[0], 9.0);
    });
    assert_eq!(w.to_vec(), vec![9.0, 1.5]);
    assert_eq!(w.id(), id);
    assert!(w.requires_grad(), "still the same parameter");

    // On a non-leaf, += is recorded and keeps the id.
    let mut h = &w * 2.0;
    let hid = h.id();
    h += &w;
    assert_eq!(h.id(), hid);
    assert_eq!(h.to_vec(), vec![27.0, 4.5]);
    h.sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![3.0, 3.0]);
}

/// A residual chain `y = 0.5*y + y` of depth 64: each node runs once, so this
/// finishes at once (the original's worklist took exponential time); the
/// gradient is 1.5^64.
#[test]
fn residual_chains_are_linear_in_depth() {
    let x = leaf(&[1.0], &[]);
    let mut y = x.clone();
    for _ in 0..64 {
        y = &(&y * 0.5) + &y;
    }
    y.backward();
    let expect = 1.5f64.powi(64);
    let got = x.grad().unwrap().item() as f64;
    assert!((got - expect).abs() / expect < 1e-5, "{got} vs {expect}");
}

#[test]
fn deep_graphs_drop_without_recursion() {
    let x = leaf(&[1.0], &[1]);
    // Shallower under miri (each op is ~1000x slower there); same checks.
    let (long, short) = if cfg!(miri) {
        (500, 50)
    } else {
        (200_000, 20_000)
    };
    let mut y = x.clone();
    for _ in 0..long {
        y = &y + 1.0;
    }
    drop(y); // a recursive drop of 200k nodes would overflow the stack
    let mut y = x.clone();
    for _ in 0..short {
        y = &y * 1.0;
    }
    y.sum().backward();
    assert_eq!(x.grad().unwrap().item(), 1.0);
}

/// The graph lives with the tensors: a long loop with no clearing call holds
/// pool memory flat.
#[test]
fn ten_thousand_steps_hold_memory_flat() {
    let mut w = leaf(&[0.5; 64], &[8, 8]);
    // Under miri a batch of 4 and 30 steps, measured from step 10 (each step
    // is ~1000x slower there); natively 16 and 10 000 from step 100.
    let (batch, steps, mark) = if cfg!(miri) {
        (4, 30, 10)
    } else {
        (16, 10_000, 100)
    };
    let x = Tensor::randn([batch, 8], Some(1));
    let mut at_mark = 0;
    for step in 0..steps {
        let h = &(&x.unsqueeze(2) * &w.unsqueeze(0)) + 1.0; // [batch, 8, 8]
        let loss = (&h * &h).mean();
        loss.backward();
        no_grad(|| {
            let g = w.take_grad().unwrap();
            w -= &(&g * 1e-3);
        });
        if step == mark {
            at_mark = pool::stats().bytes_in_use;
        }
    }
    let end = pool::stats().bytes_in_use;
    // Other tests run in parallel threads; allow their transient tensors.
    assert!(
        end <= at_mark + (1 << 20),
        "{at_mark} -> {end} bytes in use"
    );
}

/// After backward, saved tensors are released: the parameter's buffer is
/// uniquely owned again and an update writes it in place.
#[test]
fn optimizer_step_after_backward_does_not_copy_parameters() {
    let mut w = leaf(&[1.0; 12], &[3, 4]);
    let x = Tensor::randn([5, 3], Some(2));
    for _ in 0..5 {
        let before = w.data().as_ptr();
        let y = (&x.unsqueeze(2) * &w.unsqueeze(0)).sum();
        y.backward();
        no_grad(|| {
            let g = w.take_grad().unwrap();
            w -= &(&g * 0.1);
        });
        assert_eq!(w.data().as_ptr(), before, "parameter buffer was copied");
        drop(y);
    }
}

/// Many threads build graphs and run backward on shared parameters at once;
/// the accumulated gradient equals the single-threaded sum. (Without `std`
/// the no-grad switch is global, as on a single-core board, so this needs
/// `std`.)
#[cfg(feature = "std")]
#[test]
fn concurrent_backward_on_shared_parameters() {
    // Fewer threads and steps under miri (each op is ~1000x slower there, and
    // it explores thread interleavings), same checks.
    const THREADS: usize = if cfg!(miri) { 4 } else { 8 };
    const STEPS: usize = if cfg!(miri) { 2 } else { 50 };
    let w = leaf(&[0.5, -1.0, 2.0, 0.25], &[2, 2]);
    let data: Vec<Tensor> = (0..THREADS)
        .map(|k| Tensor::from_fn([3, 2], |i| ((k + i[0] * 2 + i[1]) % 5) as f32 - 2.0))
        .collect();
    let step = |w: &Tensor, x: &Tensor| {
        let y = (&x.unsqueeze(2) * &w.unsqueeze(0)).sum_dims([1], false); // [3, 2]
        (&y * &y).sum().backward();
    };
    std::thread::scope(|s| {
        for x in &data {
            let w = w.clone();
            s.spawn(move || {
                for _ in 0..STEPS {
                    step(&w, x);
                }
            });
        }
    });
    let concurrent = w.take_grad().unwrap();
    for _ in 0..STEPS {
        for x in &data {
            step(&w, x);
        }
    }
    let serial = w.take_grad().unwrap();
    // Values are small integers, so every summation order is exact.
    assert_eq!(concurrent, serial);
    assert!(serial.values().any(|v| v != 0.0));
}
