//! The machine's limits, measured in the run: FMA peak (a register-only loop
//! for the ISA in force) on one thread and on all threads, and copy bandwidth
//! of a buffer much larger than the last-level cache; plus what the figures
//! depend on (CPU model, ISA, caches, threads, date).

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use train_station::kernels::{Isa, gemm::cache_sizes, isa};

use crate::timing::{Budget, thread_cpu_secs, time_iters};

/// Peak and bandwidth figures from one measurement.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// FMA peak on one thread, GFLOP/s (2 FLOPs per lane per FMA).
    pub peak_1t: f64,
    /// FMA peak on all threads, GFLOP/s.
    pub peak_all: f64,
    /// Copy bandwidth on one thread, GB/s, counting bytes read plus written.
    pub copy_gbs: f64,
}

impl Limits {
    /// The figures as JSON.
    pub fn to_json(self) -> Value {
        json!({"fma_peak_gflops_1t": self.peak_1t, "fma_peak_gflops_all": self.peak_all, "copy_gbs": self.copy_gbs})
    }

    /// The peak for `threads` threads (the all-thread peak for more than one).
    pub fn peak(&self, threads: usize) -> f64 {
        if threads == 1 {
            self.peak_1t
        } else {
            self.peak_all
        }
    }
}

/// FMA iterations per loop call; each iteration issues `ACC` independent FMAs.
const INNER: usize = 1 << 16;

/// Independent accumulators: enough to hide the FMA latency on two ports.
const ACC: usize = 12;

/// FLOPs of one call of [`fma_loop`] for `isa` (lanes x 2 x ACC x INNER).
fn flops_per_call(isa: Isa) -> f64 {
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
        Isa::Neon => 4,
        Isa::Scalar => 1,
    };
    (lanes * 2 * ACC * INNER) as f64
}

/// Runs `INNER` iterations of `ACC` independent FMAs on the path `isa`,
/// touching registers only; returns a value so the work cannot be dropped.
fn fma_loop(isa: Isa, seed: f32) -> f32 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` reports Avx512 only when the CPU has AVX-512F.
        Isa::Avx512 => unsafe { x86::fma512(seed) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa()` reports Avx2 only when the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { x86::fma256(seed) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::fma128(seed),
        _ => scalar_loop(seed),
    }
}

/// The scalar path's limit: independent multiply-adds on single floats.
fn scalar_loop(seed: f32) -> f32 {
    let mut acc = [seed; ACC];
    let (m, a) = (black_box(0.999_999f32), black_box(1e-7f32));
    for _ in 0..INNER {
        for x in acc.iter_mut() {
            *x = *x * m + a;
        }
        black_box(&mut acc);
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ACC, INNER};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma512(seed: f32) -> f32 {
        let m = _mm512_set1_ps(0.999_999);
        let a = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(seed); ACC];
        for _ in 0..INNER {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, a);
            }
        }
        let mut s = acc[0];
        for x in &acc[1..] {
            s = _mm512_add_ps(s, *x);
        }
        _mm512_reduce_add_ps(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma256(seed: f32) -> f32 {
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(seed); ACC];
        for _ in 0..INNER {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        let mut s = acc[0];
        for x in &acc[1..] {
            s = _mm256_add_ps(s, *x);
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` has room for the 8 lanes.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{ACC, INNER};
    use std::arch::aarch64::*;

    pub(super) fn fma128(seed: f32) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let m = vdupq_n_f32(0.999_999);
            let a = vdupq_n_f32(1e-7);
            let mut acc = [vdupq_n_f32(seed); ACC];
            for _ in 0..INNER {
                for x in acc.iter_mut() {
                    *x = vfmaq_f32(a, *x, m);
                }
            }
            let mut s = acc[0];
            for x in &acc[1..] {
                s = vaddq_f32(s, *x);
            }
            vaddvq_f32(s)
        }
    }
}

/// FMA peak in GFLOP/s on `threads` threads: each thread runs the loop
/// `calls` times; one thread is timed by its CPU time, several by the wall
/// time from a common start to the last thread's end. Best of `reps`.
fn fma_peak(isa: Isa, threads: usize, budget: Budget) -> f64 {
    let per_call = flops_per_call(isa);
    // Calibrate on one thread.
    let t = time_iters(1, 4, &mut || {
        black_box(fma_loop(isa, 1.0));
    });
    let calls = ((budget.rep_secs * 2.0 / (t / 4.0)).ceil() as usize).max(4);
    let mut best = 0.0f64;
    for _ in 0..budget.reps {
        let secs = if threads == 1 {
            let t0 = thread_cpu_secs();
            for i in 0..calls {
                black_box(fma_loop(isa, i as f32));
            }
            thread_cpu_secs() - t0
        } else {
            let start = std::sync::Barrier::new(threads + 1);
            let t0 = std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        start.wait();
                        for i in 0..calls {
                            black_box(fma_loop(isa, i as f32));
                        }
                    });
                }
                start.wait();
                Instant::now()
            });
            t0.elapsed().as_secs_f64()
        };
        best = best.max(per_call * calls as f64 * threads as f64 / secs * 1e-9);
    }
    best
}

/// Copy bandwidth (GB/s, bytes read + written) of `copy_from_slice` over a
/// buffer of 8x the last-level cache (at least 64 MiB), on one thread.
fn copy_bandwidth(budget: Budget) -> f64 {
    let l3 = cache_sizes().map_or(0, |c| c.l3_per_core * threads_all());
    let bytes = (8 * l3).clamp(64 << 20, 512 << 20);
    let n = bytes / 4;
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut best = 0.0f64;
    for _ in 0..budget.reps.max(3) {
        let t = time_iters(1, 1, &mut || {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        });
        best = best.max(2.0 * bytes as f64 / t * 1e-9);
    }
    best
}

/// Threads available to the process (at least 1).
pub fn threads_all() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Measures FMA peak (1 and all threads) and copy bandwidth.
pub fn measure(budget: Budget) -> Limits {
    let isa = isa();
    Limits {
        peak_1t: fma_peak(isa, 1, budget),
        peak_all: fma_peak(isa, threads_all(), budget),
        copy_gbs: copy_bandwidth(budget),
    }
}

/// The CPU model from `/proc/cpuinfo` ("model name", or aarch64's "Hardware"
/// / "CPU part"), or "unknown".
pub fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "Hardware", "CPU part"] {
        if let Some(v) = text
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
        {
            return v.1.trim().to_string();
        }
    }
    "unknown".to_string()
}

/// Today's UTC date and time, `YYYY-MM-DD HH:MM UTC`.
pub fn date_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Which code the peers' GEMM runs here: `gemm`, candle's matmul (which runs
/// on `gemm`) and matrixmultiply take AVX-512 when the `avx512-peers` feature
/// is on and the CPU has it, AVX2 otherwise.
fn peer_gemm() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if cfg!(feature = "avx512-peers") && std::is_x86_feature_detected!("avx512f") {
            return "gemm, candle and matrixmultiply on AVX-512";
        }
        if avx2 {
            return "gemm, candle and matrixmultiply on AVX2";
        }
    }
    "each peer's own choice"
}

/// The machine description: CPU, ISA in force, the peers' GEMM code, caches,
/// threads, date.
pub fn machine() -> Value {
    let caches = cache_sizes()
        .map(|c| json!({"l1d_bytes": c.l1d, "l2_bytes": c.l2, "l3_per_core_bytes": c.l3_per_core}));
    json!({
        "cpu": cpu_model(),
        "isa": isa().name(),
        "peer_gemm": peer_gemm(),
        "caches": caches,
        "threads": threads_all(),
        "date": date_utc(),
    })
}
