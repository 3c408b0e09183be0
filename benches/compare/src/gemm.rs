//! Matrix products: square sgemm N = 64..2048 and the MLP shapes, on
//! train-station, `gemm` 0.19, `matrixmultiply` 0.3 and candle 0.11, each on
//! one thread and on all threads. Every library's output is checked against an
//! f64 reference before it is timed.
//!
//! `matrixmultiply` reads its thread count once per process
//! (`MATMUL_NUM_THREADS`); the main process sets it to all threads, and a child
//! process (`compare --matrixmultiply-child`, `MATMUL_NUM_THREADS=1`) measures
//! its one-thread figures (see `main.rs`).

use candle_core::{Device, Tensor as CTensor};
use train_station::kernels::gemm::{Batch, Config, Epilogue, MatMut, MatRef, sgemm_with};

use crate::report::Record;
use crate::timing::{Budget, Contender, check_close, data, interleaved, time_iters};

/// A product `C[m,n] = A[m,k] B[k,n]`; with `bt` the right operand is stored
/// as `W[n,k]` (row-major) and used transposed, as a Linear layer does.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The group the records go to ("sgemm" or "mlp-shapes").
    pub group: &'static str,
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// The right operand is stored `[n, k]` and transposed.
    pub bt: bool,
}

impl Shape {
    /// A square product of size `n`.
    pub fn square(n: usize) -> Shape {
        Shape {
            group: "sgemm",
            m: n,
            n,
            k: n,
            bt: false,
        }
    }

    /// The case label used in tables.
    pub fn case(&self) -> String {
        match (self.group, self.bt) {
            ("sgemm", _) => format!("N={}", self.n),
            (_, false) => format!("[{},{}]x[{},{}]", self.m, self.k, self.k, self.n),
            (_, true) => format!("[{},{}]x[{},{}]^T", self.m, self.k, self.n, self.k),
        }
    }

    /// FLOPs of one product.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }

    /// Strides of the right operand as (row stride, column stride) of the
    /// logical `[k, n]` matrix.
    fn b_strides(&self) -> (usize, usize) {
        if self.bt { (1, self.k) } else { (self.n, 1) }
    }
}

/// The square sizes of a full run, or of `--quick`.
pub fn sizes(quick: bool) -> Vec<usize> {
    if quick {
        vec![64, 256, 512]
    } else {
        vec![64, 128, 256, 512, 1024, 2048]
    }
}

/// The MLP shapes of issue 9.
pub fn mlp_shapes() -> Vec<Shape> {
    let s = |m, k, n, bt| Shape {
        group: "mlp-shapes",
        m,
        n,
        k,
        bt,
    };
    vec![
        s(64, 784, 256, false),
        s(64, 784, 256, true),
        s(256, 1024, 1024, false),
    ]
}

fn ours(threads: usize, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
    let cfg = Config {
        threads,
        ..Config::current()
    };
    let bm = if s.bt {
        MatRef::row_major(b, s.n, s.k).t()
    } else {
        MatRef::row_major(b, s.k, s.n)
    };
    sgemm_with(
        cfg,
        Batch::ONE,
        1.0,
        MatRef::row_major(a, s.m, s.k),
        bm,
        0.0,
        MatMut::row_major(c, s.m, s.n),
        Epilogue::NONE,
    )
}

fn gemm_crate(threads: usize, s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= s.m * s.k && b.len() >= s.k * s.n && c.len() >= s.m * s.n);
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    let (brs, bcs) = s.b_strides();
    // SAFETY: the slices hold the matrices the dimensions and strides describe
    // (lengths checked above); C overlaps neither A nor B.
    unsafe {
        gemm::gemm(
            s.m,
            s.n,
            s.k,
            c.as_mut_ptr(),
            1,
            s.n as isize,
            false,
            a.as_ptr(),
            1,
            s.k as isize,
            b.as_ptr(),
            bcs as isize,
            brs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

fn mm_crate(s: &Shape, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= s.m * s.k && b.len() >= s.k * s.n && c.len() >= s.m * s.n);
    let (brs, bcs) = s.b_strides();
    // SAFETY: as in `gemm_crate`.
    unsafe {
        matrixmultiply::sgemm(
            s.m,
            s.k,
            s.n,
            1.0,
            a.as_ptr(),
            s.k as isize,
            1,
            b.as_ptr(),
            brs as isize,
            bcs as isize,
            0.0,
            c.as_mut_ptr(),
            s.n as isize,
            1,
        )
    }
}

/// Candle's operands: A `[m,k]` and B as candle sees it (`[k,n]`, or `[n,k]`
/// transposed as a strided view).
fn candle_operands(s: &Shape, a: &[f32], b: &[f32]) -> (CTensor, CTensor) {
    let dev = Device::Cpu;
    let ca = CTensor::from_slice(a, (s.m, s.k), &dev).expect("candle tensor");
    let cb = if s.bt {
        CTensor::from_slice(b, (s.n, s.k), &dev)
            .and_then(|w| w.t())
            .expect("candle tensor")
    } else {
        CTensor::from_slice(b, (s.k, s.n), &dev).expect("candle tensor")
    };
    (ca, cb)
}

fn candle_matmul(a: &CTensor, b: &CTensor) -> CTensor {
    a.matmul(b).expect("candle matmul")
}

/// Checks `c` against the f64 product on a sample of rows (all rows up to 64,
/// else 32 spread over the matrix), with an error bound relative to
/// `sum_k |a_ik| |b_kj|`.
fn check(lib: &str, s: &Shape, a: &[f32], b: &[f32], c: &[f32]) {
    let (brs, bcs) = s.b_strides();
    let rows: Vec<usize> = if s.m <= 64 {
        (0..s.m).collect()
    } else {
        (0..32).map(|i| i * (s.m - 1) / 31).collect()
    };
    let (mut got, mut want, mut scale) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &rows {
        for j in 0..s.n {
            let (mut acc, mut abs) = (0.0f64, 0.0f64);
            for p in 0..s.k {
                let x = a[i * s.k + p] as f64 * b[p * brs + j * bcs] as f64;
                acc += x;
                abs += x.abs();
            }
            got.push(c[i * s.n + j]);
            want.push(acc);
            scale.push(abs);
        }
    }
    let rel = 1e-5 * (1.0 + s.k as f64 / 256.0);
    check_close(
        &format!("{} {} ({lib})", s.group, s.case()),
        &got,
        &want,
        Some(&scale),
        rel,
        1e-30,
    );
}

/// Measures `shape` on `threads` threads for every library available in this
/// process (`mm_threads`: the thread count `matrixmultiply` runs with here;
/// `only_mm`: measure matrixmultiply alone, for the child process).
pub fn run_shape(
    s: &Shape,
    threads: usize,
    mm_threads: usize,
    only_mm: bool,
    pools: &crate::Pools,
    budget: Budget,
    out: &mut Vec<Record>,
) {
    train_station::set_num_threads(threads);
    let a = data(s.m * s.k, 1 + s.n as u64);
    let b = data(s.k * s.n, 2 + s.m as u64);
    let mut c_ours = vec![0.0f32; s.m * s.n];
    let mut c_gemm = c_ours.clone();
    let mut c_mm = c_ours.clone();
    let (ca, cb) = candle_operands(s, &a, &b);
    let with_mm = threads == mm_threads;

    // Correctness first.
    if !only_mm {
        ours(threads, s, &a, &b, &mut c_ours);
        check("train-station", s, &a, &b, &c_ours);
        gemm_crate(threads, s, &a, &b, &mut c_gemm);
        check("gemm", s, &a, &b, &c_gemm);
        let cc = pools.install(threads, || candle_matmul(&ca, &cb));
        let cv: Vec<f32> = cc
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("candle result");
        check("candle", s, &a, &b, &cv);
    }
    if with_mm {
        mm_crate(s, &a, &b, &mut c_mm);
        check("matrixmultiply", s, &a, &b, &c_mm);
    }

    let mut cs: Vec<Contender<'_>> = Vec::new();
    if !only_mm {
        cs.push(Contender::new("train-station", threads, || {
            ours(threads, s, &a, &b, &mut c_ours)
        }));
        cs.push(Contender::new("gemm", threads, || {
            gemm_crate(threads, s, &a, &b, &mut c_gemm)
        }));
    }
    if with_mm {
        cs.push(Contender::new("matrixmultiply", threads, || {
            mm_crate(s, &a, &b, &mut c_mm)
        }));
    }
    if !only_mm {
        let (ca, cb) = (&ca, &cb);
        cs.push(Contender {
            lib: "candle",
            run: Box::new(move |iters| {
                pools.install(threads, || {
                    time_iters(threads, iters, &mut || {
                        std::hint::black_box(candle_matmul(ca, cb));
                    })
                })
            }),
        });
    }
    let libs: Vec<&str> = cs.iter().map(|c| c.lib).collect();
    let secs = interleaved(budget, &mut cs);
    for (lib, t) in libs.into_iter().zip(secs) {
        out.push(
            Record::new(
                s.group,
                s.case(),
                threads,
                lib,
                t,
                s.flops() / t * 1e-9,
                "GFLOP/s",
            )
            .with_flops(s.flops()),
        );
    }
}
