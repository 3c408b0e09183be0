//! A short tour: tensors, zero-copy views, copy-on-write, broadcasting,
//! autograd and the memory pool.
//!
//! `cargo run --release --example tour`

use train_station::tensor::pool;
use train_station::{Tensor, no_grad};

fn main() {
    let x = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 4]);
    println!("x = {x}");
    let xt = x.t();
    println!(
        "x.t(): shape {:?}, strides {:?}, contiguous {}, shares storage {}",
        xt.dims(),
        xt.strides(),
        xt.is_contiguous(),
        xt.shares_storage(&x)
    );
    let window = x.narrow(1, 1, 2).select(0, 2);
    println!("x[2, 1:3] = {window}");

    // Copy on write: mutating a handle never changes another.
    let mut y = x.clone();
    y.set(&[0, 0], 100.0);
    assert_eq!(x.get(&[0, 0]), 0.0);
    println!(
        "after y[0,0] = 100: x[0,0] = {}, y[0,0] = {}",
        x.get(&[0, 0]),
        y.get(&[0, 0])
    );

    // Broadcasting and autograd.
    let w = Tensor::from_slice(&[0.5, -1.0, 2.0, 0.25], [4])
        .unwrap()
        .with_requires_grad();
    let b = Tensor::from_slice(&[1.0], [1])
        .unwrap()
        .with_requires_grad();
    let out = (&(&x * &w) + &b).mean();
    out.backward();
    println!("loss = {:.4}", out.item());
    println!("dloss/dw = {}", w.grad().unwrap());
    println!("dloss/db = {}", b.grad().unwrap());

    // A few plain gradient-descent steps on w (updates in place, same id).
    let id = w.id();
    let mut w = w;
    for _ in 0..3 {
        w.zero_grad();
        let loss = (&(&x * &w) - 1.0).mean();
        let loss = &loss * &loss;
        loss.backward();
        no_grad(|| {
            let g = w.take_grad().unwrap();
            w -= &(&g * 0.01);
        });
        println!("step: loss {:.5}", loss.item());
    }
    assert_eq!(w.id(), id);

    let s = pool::stats();
    println!(
        "pool: {} B in use, {} B peak, {} B cached, {} hits, {} misses",
        s.bytes_in_use, s.peak_bytes_in_use, s.bytes_cached, s.hits, s.misses
    );
}
