//! Element-wise, reduction and softmax kernels, single thread, on every
//! kernel path this CPU can run.
//!
//! `cargo bench --bench vector` (all), or e.g. `cargo bench --bench vector --
//! softmax`. The ids are `<group>/<isa>/<size>`. LibTorch reference figures
//! (single thread, same machine class, from the brief): exp 664 µs, sigmoid
//! 225 µs, tanh 2250 µs on 1e6 elements; softmax over the last dimension of
//! [1024, 1024] 459 µs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use train_station::kernels::{Isa, Kernels, table_for};

/// Every path this CPU can run, best first.
fn tables() -> Vec<&'static Kernels> {
    [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Scalar]
        .into_iter()
        .filter_map(table_for)
        .collect()
}

/// Reproducible values in `[lo, hi)`.
fn data(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

fn config<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// exp, sigmoid, tanh (the LibTorch comparison) and the other activations,
/// out of place, on 1e6 elements (8 MB in and out: bounded by memory on one
/// core) and on 1e5 (in L2: bounded by arithmetic).
fn unary(c: &mut Criterion) {
    const SIZES: [usize; 2] = [100_000, 1_000_000];
    let x = data(SIZES[1], -10.0, 10.0, 1);
    let mut out = vec![0.0f32; SIZES[1]];
    type Get = fn(&Kernels) -> train_station::kernels::Unary;
    let ops: [(&str, Get); 8] = [
        ("exp", |k| k.exp),
        ("sigmoid", |k| k.sigmoid),
        ("tanh", |k| k.tanh),
        ("log", |k| k.log),
        ("gelu", |k| k.gelu),
        ("gelu_tanh", |k| k.gelu_tanh),
        ("silu", |k| k.silu),
        ("sin", |k| k.sin),
    ];
    for (name, get) in ops {
        let mut g = config(c, name);
        for n in SIZES {
            g.throughput(Throughput::Elements(n as u64));
            for k in tables() {
                let f = get(k).map;
                let (x, out) = (&x[..n], &mut out[..n]);
                g.bench_function(BenchmarkId::new(k.isa.name(), n), |b| {
                    b.iter(|| f(black_box(x), black_box(&mut *out)))
                });
            }
        }
        g.finish();
    }
}

/// Softmax over the last dimension of [1024, 1024], row by row.
fn softmax(c: &mut Criterion) {
    const R: usize = 1024;
    let x = data(R * R, -8.0, 8.0, 2);
    let mut out = vec![0.0f32; R * R];
    let mut g = config(c, "softmax_rows");
    g.throughput(Throughput::Elements((R * R) as u64));
    for k in tables() {
        g.bench_function(BenchmarkId::new(k.isa.name(), "1024x1024"), |b| {
            b.iter(|| {
                for (xr, or) in x.chunks_exact(R).zip(out.chunks_exact_mut(R)) {
                    (k.softmax)(black_box(xr), or);
                }
            })
        });
    }
    g.finish();
}

/// add and mul from 1e3 to 1e7 elements (bytes = 3 x 4 x n: two reads, one write).
fn binary(c: &mut Criterion) {
    for (name, get) in [
        (
            "add",
            (|k| k.add.map) as fn(&Kernels) -> train_station::kernels::ZipFn,
        ),
        ("mul", |k| k.mul.map),
    ] {
        let mut g = config(c, name);
        for n in [1_000usize, 10_000, 100_000, 1_000_000, 10_000_000] {
            let (a, b) = (data(n, -1.0, 1.0, 3), data(n, -1.0, 1.0, 4));
            let mut out = vec![0.0f32; n];
            g.throughput(Throughput::Bytes(12 * n as u64));
            for k in tables() {
                let f = get(k);
                g.bench_function(BenchmarkId::new(k.isa.name(), n), |bch| {
                    bch.iter(|| f(black_box(&a), black_box(&b), black_box(&mut out)))
                });
            }
        }
        g.finish();
    }
}

/// Sum of 1e7 elements.
fn sum(c: &mut Criterion) {
    const N: usize = 10_000_000;
    let x = data(N, 0.0, 1.0, 5);
    let mut g = config(c, "sum");
    g.throughput(Throughput::Bytes(4 * N as u64));
    for k in tables() {
        g.bench_function(BenchmarkId::new(k.isa.name(), N), |b| {
            b.iter(|| (k.sum)(black_box(&x)))
        });
    }
    g.finish();
}

criterion_group!(benches, unary, softmax, binary, sum);
criterion_main!(benches);
