//! The workloads of `benches/gemm.rs` on this library and on peer crates, side
//! by side in one run (for each size: ours, then the peers, so machine noise
//! hits all alike): `gemm` 0.19 (feature `x86-v4`, i.e. its AVX-512 kernels)
//! and `matrixmultiply` 0.3 (feature `threading`).
//!
//! Run: `cargo bench --features bench-peers --bench peers`.
//!
//! Units as in `benches/gemm.rs`: Throughput::Elements = `2 m n k` flops
//! ("Gelem/s" reads GFLOP/s), Throughput::Bytes = bytes of the matrix read.
//!
//! matrixmultiply reads its thread count once per process from
//! `MATMUL_NUM_THREADS` (default: physical cores, so 2 here); its results are
//! labelled with that count. Run once more with `MATMUL_NUM_THREADS=1` for its
//! one-thread figures. `gemm` takes the thread count per call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use train_station::kernels::gemm::{Batch, Config, Epilogue, MatMut, MatRef, sgemm_with};

const SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed) % 13) as f32 * 0.1 - 0.6)
        .collect()
}

fn mm_threads() -> usize {
    std::env::var("MATMUL_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// `C = A B`, all row-major, `C` is `m x n`, through this library on `threads`
/// threads (the path in force, see `kernels::isa`).
fn ours(threads: usize, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let cfg = Config {
        threads,
        ..Config::current()
    };
    sgemm_with(
        cfg,
        Batch::ONE,
        1.0,
        MatRef::row_major(a, m, k),
        MatRef::row_major(b, k, n),
        0.0,
        MatMut::row_major(c, m, n),
        Epilogue::NONE,
    )
}

/// `C = A B`, all row-major, `C` is `m x n`, through `gemm` on `threads` threads.
fn gemm_crate(threads: usize, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    // SAFETY: the slices hold the row-major matrices the strides describe
    // (checked above); C does not overlap A or B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

/// `C = A B`, all row-major, through `matrixmultiply`.
fn mm_crate(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: as in `gemm_crate`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

fn sgemm(c: &mut Criterion) {
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("sgemm/{threads}t"));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        for n in SIZES {
            let (a, b) = (data(n * n, 1), data(n * n, 2));
            let mut out = vec![0.0f32; n * n];
            g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
            g.bench_with_input(BenchmarkId::new("train-station", n), &n, |bch, &n| {
                bch.iter(|| ours(threads, n, n, n, black_box(&a), black_box(&b), &mut out))
            });
            g.bench_with_input(BenchmarkId::new("gemm", n), &n, |bch, &n| {
                bch.iter(|| gemm_crate(threads, n, n, n, black_box(&a), black_box(&b), &mut out))
            });
            if threads == mm_threads() {
                g.bench_with_input(BenchmarkId::new("matrixmultiply", n), &n, |bch, &n| {
                    bch.iter(|| mm_crate(n, n, n, black_box(&a), black_box(&b), &mut out))
                });
            }
        }
        g.finish();
    }
}

fn sgemv(c: &mut Criterion) {
    let (k, n) = (4096, 4096);
    let (x, b) = (data(k, 3), data(k * n, 4));
    let mut y = vec![0.0f32; n];
    let mut g = c.benchmark_group("sgemv");
    g.throughput(Throughput::Bytes((k * n * 4) as u64));
    g.measurement_time(Duration::from_secs(3));
    for threads in [1, 2] {
        g.bench_function(format!("train-station/1x4096x4096/{threads}t"), |bch| {
            bch.iter(|| ours(threads, 1, n, k, black_box(&x), black_box(&b), &mut y))
        });
        g.bench_function(format!("gemm/1x4096x4096/{threads}t"), |bch| {
            bch.iter(|| gemm_crate(threads, 1, n, k, black_box(&x), black_box(&b), &mut y))
        });
    }
    g.bench_function(
        format!("matrixmultiply/1x4096x4096/{}t", mm_threads()),
        |bch| bch.iter(|| mm_crate(1, n, k, black_box(&x), black_box(&b), &mut y)),
    );
    g.finish();
}

criterion_group!(benches, sgemm, sgemv);
criterion_main!(benches);
