//! GEMM/GEMV throughput of the library, plus the two ceilings they are judged
//! against: the FMA peak of this CPU and its memory read bandwidth.
//!
//! Run: `cargo bench --bench gemm` (filter e.g. `-- sgemm/1t`).
//!
//! Units: `sgemm/*` and `fma_peak/*` report Throughput::Elements = floating-point
//! operations (`2 m n k` for a product; 2 per lane per FMA), so criterion's
//! "Gelem/s" reads as GFLOP/s. `sgemv/*` and `read_bw/*` report
//! Throughput::Bytes = bytes of the matrix (or buffer) read once per iteration,
//! so "GiB/s" is read bandwidth (divide by 0.931 for GB/s).
//!
//! The thread count is passed per call (`Config::threads`), so one run covers
//! 1 and 2 threads; the pool itself has `num_threads()` threads (all cores by
//! default).
//!
//! The AVX-512 intrinsics used for the ceilings are stable since Rust 1.89
//! (see `src/kernels/gemm/avx512.rs`).

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

fn sgemm(c: &mut Criterion) {
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("sgemm/{threads}t"));
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(2));
        for n in SIZES {
            let (a, b) = (data(n * n, 1), data(n * n, 2));
            let mut out = vec![0.0f32; n * n];
            let cfg = Config {
                threads,
                ..Config::current()
            };
            g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, &n| {
                bch.iter(|| {
                    sgemm_with(
                        cfg,
                        Batch::ONE,
                        1.0,
                        MatRef::row_major(black_box(&a), n, n),
                        MatRef::row_major(black_box(&b), n, n),
                        0.0,
                        MatMut::row_major(&mut out, n, n),
                        Epilogue::NONE,
                    )
                })
            });
        }
        g.finish();
    }
}

/// A linear layer's forward at small batches, `[m, 784] x W^T` with `W`
/// stored `[256, 784]` (the dot-product path up to 16 rows), beside the same
/// product with the weight stored `[784, 256]` (row-major B, read in place).
fn linear_small_batch(c: &mut Criterion) {
    let (k, n) = (784, 256);
    let w = data(n * k, 5);
    let mut g = c.benchmark_group("linear_small_batch");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    let cfg = Config {
        threads: 1,
        ..Config::current()
    };
    for m in [2, 4, 8, 16, 32] {
        let x = data(m * k, 6);
        let mut out = vec![0.0f32; m * n];
        g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        for (name, b) in [
            ("w_t", MatRef::row_major(&w, n, k).t()),
            ("row_major", MatRef::row_major(&w, k, n)),
        ] {
            g.bench_with_input(BenchmarkId::new(name, m), &m, |bch, &m| {
                bch.iter(|| {
                    sgemm_with(
                        cfg,
                        Batch::ONE,
                        1.0,
                        MatRef::row_major(black_box(&x), m, k),
                        black_box(b),
                        0.0,
                        MatMut::row_major(&mut out, m, n),
                        Epilogue::NONE,
                    )
                })
            });
        }
    }
    g.finish();
}

/// `[1, 4096] x [4096, 4096]`: streams the 64 MiB matrix once per call.
fn sgemv(c: &mut Criterion) {
    let (k, n) = (4096, 4096);
    let (x, b) = (data(k, 3), data(k * n, 4));
    let mut y = vec![0.0f32; n];
    let mut g = c.benchmark_group("sgemv");
    g.throughput(Throughput::Bytes((k * n * 4) as u64));
    g.measurement_time(Duration::from_secs(3));
    for threads in [1, 2] {
        let cfg = Config {
            threads,
            ..Config::current()
        };
        g.bench_function(format!("1x4096x4096/{threads}t"), |bch| {
            bch.iter(|| {
                sgemm_with(
                    cfg,
                    Batch::ONE,
                    1.0,
                    MatRef::row_major(black_box(&x), 1, k),
                    MatRef::row_major(black_box(&b), k, n),
                    0.0,
                    MatMut::row_major(&mut y, 1, n),
                    Epilogue::NONE,
                )
            })
        });
    }
    g.finish();
}

/// The FMA ceiling: 12 independent accumulator chains of `vfmadd231ps`, the
/// widest vectors this CPU has, operands in registers.
#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    pub const ITERS: u64 = 1 << 20;
    pub const CHAINS: u64 = 12;

    /// Returns the lanes per FMA of the path it ran (16 or 8).
    pub fn run() -> u64 {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            unsafe { fma512() };
            16
        } else if is_x86_feature_detected!("fma") {
            // SAFETY: FMA (and AVX) were detected just above.
            unsafe { fma256() };
            8
        } else {
            0
        }
    }

    macro_rules! fma_loop {
        ($set1:ident, $fma:ident, $add:ident) => {{
            let x = $set1(1.0000001);
            let y = $set1(0.9999999);
            let mut acc = [$set1(0.0); CHAINS as usize];
            for _ in 0..ITERS {
                for a in acc.iter_mut() {
                    *a = $fma(*a, x, y);
                }
            }
            let mut s = acc[0];
            for a in &acc[1..] {
                s = $add(s, *a);
            }
            std::hint::black_box(s);
        }};
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn fma512() {
        fma_loop!(_mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
    }

    #[target_feature(enable = "avx,fma")]
    unsafe fn fma256() {
        fma_loop!(_mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
    }
}

#[cfg(target_arch = "x86_64")]
fn fma_peak(c: &mut Criterion) {
    let lanes = peak::run();
    if lanes == 0 {
        return;
    }
    let mut g = c.benchmark_group("fma_peak");
    for threads in [1u64, 2] {
        g.throughput(Throughput::Elements(
            2 * lanes * peak::CHAINS * peak::ITERS * threads,
        ));
        g.bench_function(format!("{}bit/{threads}t", lanes * 32), |bch| {
            bch.iter(|| {
                std::thread::scope(|s| {
                    for _ in 1..threads {
                        s.spawn(peak::run);
                    }
                    peak::run();
                })
            })
        });
    }
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(_: &mut Criterion) {}

/// Read bandwidth: sum of a buffer read as four interleaved streams (the
/// GEMV reads four rows at a time), over the GEMV's 64 MiB and over 1 GiB. Two
/// threads each read one half, through the library's pool (no thread spawn in
/// the timed loop).
fn read_bw(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_bw");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    for mib in [64usize, 1024] {
        let buf = data(mib << 18, 5);
        g.throughput(Throughput::Bytes((mib << 20) as u64));
        for threads in [1usize, 2] {
            g.bench_function(format!("{mib}MiB/{threads}t"), |bch| {
                bch.iter(|| {
                    let part = buf.len() / threads;
                    train_station::kernels::threads::parallel_for_with(threads, threads, |t| {
                        black_box(sum(&buf[t * part..(t + 1) * part]));
                    })
                })
            });
        }
    }
    g.finish();
}

fn sum(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected just above.
        return unsafe { sum_avx512(x) };
    }
    x.iter().sum()
}

/// Four streams (the quarters of `x`), two accumulators each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sum_avx512(x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let q = x.len() / 128 * 32;
    let mut acc = [_mm512_setzero_ps(); 8];
    let mut i = 0;
    while i < q {
        for s in 0..4 {
            let lo = &x[s * q + i..s * q + i + 16];
            let hi = &x[s * q + i + 16..s * q + i + 32];
            // SAFETY: `lo` and `hi` are 16 readable values each.
            unsafe {
                acc[2 * s] = _mm512_add_ps(acc[2 * s], _mm512_loadu_ps(lo.as_ptr()));
                acc[2 * s + 1] = _mm512_add_ps(acc[2 * s + 1], _mm512_loadu_ps(hi.as_ptr()));
            }
        }
        i += 32;
    }
    let t = acc
        .iter()
        .fold(_mm512_setzero_ps(), |t, v| _mm512_add_ps(t, *v));
    _mm512_reduce_add_ps(t) + x[4 * q..].iter().sum::<f32>()
}

criterion_group!(benches, sgemm, linear_small_batch, sgemv, fma_peak, read_bw);
criterion_main!(benches);
