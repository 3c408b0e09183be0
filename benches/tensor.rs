//! Tensor-layer costs: element iteration against a `Vec<f32>`, allocation
//! through the pool, O(1) clones and views, and strided copies.
//!
//! `cargo bench --bench tensor`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use train_station::Tensor;

fn iteration(c: &mut Criterion) {
    let n = 1 << 20;
    let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let t = Tensor::from_slice(&v, [n]).unwrap();
    let tt = t.reshape([1024, 1024]).t();
    let mut g = c.benchmark_group("iterate 1M values");
    g.throughput(Throughput::Bytes(4 * n as u64));
    g.bench_function("Vec<f32> iter().sum()", |b| {
        b.iter(|| black_box(&v).iter().sum::<f32>())
    });
    g.bench_function("Tensor values().sum()", |b| {
        b.iter(|| black_box(&t).values().sum::<f32>())
    });
    g.bench_function("Vec<f32> for loop max", |b| {
        b.iter(|| {
            let mut m = f32::MIN;
            for &x in black_box(&v).iter() {
                m = m.max(x);
            }
            m
        })
    });
    g.bench_function("Tensor values() for loop max", |b| {
        b.iter(|| {
            let mut m = f32::MIN;
            for x in black_box(&t).values() {
                m = m.max(x);
            }
            m
        })
    });
    g.bench_function("transposed view values().sum()", |b| {
        b.iter(|| black_box(&tt).values().sum::<f32>())
    });
    g.finish();
}

fn allocation(c: &mut Criterion) {
    let mut g = c.benchmark_group("allocate and drop");
    for n in [1usize, 1000, 1 << 20] {
        g.bench_function(format!("zeros [{n}]"), |b| {
            b.iter(|| Tensor::zeros([black_box(n)]))
        });
    }
    let t = Tensor::zeros([256, 256]);
    g.bench_function("clone", |b| b.iter(|| black_box(&t).clone()));
    g.bench_function("transpose view", |b| b.iter(|| black_box(&t).t()));
    g.bench_function("narrow+select view", |b| {
        b.iter(|| black_box(&t).narrow(0, 3, 100).select(1, 7))
    });
    g.finish();
}

fn copies(c: &mut Criterion) {
    let t = Tensor::randn([1024, 1024], Some(1));
    let tt = t.t();
    let mut g = c.benchmark_group("copy 1024x1024");
    g.throughput(Throughput::Bytes(4 << 20));
    g.bench_function("contiguous() of a transposed view", |b| {
        b.iter(|| black_box(&tt).contiguous())
    });
    g.bench_function("deep_clone of a contiguous tensor", |b| {
        b.iter(|| black_box(&t).deep_clone())
    });
    g.finish();
}

criterion_group!(benches, iteration, allocation, copies);
criterion_main!(benches);
