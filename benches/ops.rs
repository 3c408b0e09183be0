//! Tensor-API workloads from the kernels issue, measured through the public
//! API (allocation, dispatch and autograd bookkeeping included):
//! - per-op overhead: add of two 1-element tensors;
//! - exp / sigmoid / tanh on 1e6 elements;
//! - softmax over the last dimension of [1024, 1024];
//! - element-wise add and mul at 1e3..1e7 (GB/s, counting 12 bytes/element);
//! - sum of 1e7 elements;
//! - one training step of an MLP 784-256-128-10 (ReLU, cross-entropy, Adam),
//!   batch 64.
//!
//! `cargo bench --bench ops` (set `TRAIN_STATION_NUM_THREADS` to pin threads).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use train_station::Tensor;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer};

fn tiny(c: &mut Criterion) {
    let a = Tensor::scalar(1.5);
    let b = Tensor::scalar(2.5);
    c.bench_function("add 1-element tensors", |bch| {
        bch.iter(|| black_box(&a) + black_box(&b))
    });
}

fn unary(c: &mut Criterion) {
    let x = Tensor::randn([1_000_000], Some(1));
    let mut g = c.benchmark_group("unary 1e6");
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("exp", |b| b.iter(|| black_box(&x).exp()));
    g.bench_function("sigmoid", |b| b.iter(|| black_box(&x).sigmoid()));
    g.bench_function("tanh", |b| b.iter(|| black_box(&x).tanh()));
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let x = Tensor::randn([1024, 1024], Some(2));
    let mut g = c.benchmark_group("softmax");
    g.throughput(Throughput::Elements(1 << 20));
    g.bench_function("last dim [1024, 1024]", |b| {
        b.iter(|| black_box(&x).softmax(-1))
    });
    g.finish();
}

fn binary(c: &mut Criterion) {
    let mut g = c.benchmark_group("binary");
    for n in [1_000usize, 10_000, 100_000, 1_000_000, 10_000_000] {
        let a = Tensor::randn([n], Some(3));
        let b = Tensor::randn([n], Some(4));
        g.throughput(Throughput::Bytes(12 * n as u64));
        g.bench_function(format!("add {n}"), |bch| {
            bch.iter(|| black_box(&a) + black_box(&b))
        });
        g.bench_function(format!("mul {n}"), |bch| {
            bch.iter(|| black_box(&a) * black_box(&b))
        });
    }
    g.finish();
}

fn sum(c: &mut Criterion) {
    let x = Tensor::randn([10_000_000], Some(5));
    let mut g = c.benchmark_group("sum");
    g.throughput(Throughput::Bytes(4 * 10_000_000));
    g.bench_function("sum 1e7", |b| b.iter(|| black_box(&x).sum()));
    g.finish();
}

fn mlp_step(c: &mut Criterion) {
    let mut model = Sequential::new()
        .with(Linear::new(784, 256))
        .with(Relu)
        .with(Linear::new(256, 128))
        .with(Relu)
        .with(Linear::new(128, 10));
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    // 32 batches of random inputs and labels, cycled: the model cannot
    // memorise them, so the loss stays near ln(10) (a memorised single batch
    // drives gradients into subnormal floats, which no real run sees).
    let batches: Vec<(Tensor, Tensor)> = (0..32u64)
        .map(|s| {
            let mut g = train_station::Generator::new(100 + s);
            let x = g.randn([64, 784]);
            let y = Tensor::from_fn([64], |_| g.below(10) as f32);
            (x, y)
        })
        .collect();
    let mut next = 0usize;
    let ce = CrossEntropyOptions::default();
    let mut g = c.benchmark_group("mlp 784-256-128-10 train step");
    // Forward, backward and update: about 90 MFLOP of matrix products.
    g.throughput(Throughput::Elements(1));
    g.bench_function("batch 64, Adam", |b| {
        b.iter(|| {
            let (x, y) = &batches[next % batches.len()];
            next += 1;
            let loss = cross_entropy(&model.forward(x), y, &ce);
            model.zero_grad();
            loss.backward();
            opt.step_module(&mut model).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, tiny, unary, softmax, binary, sum, mlp_step);
criterion_main!(benches);
