//! One thread against two, in one run: matrix products and element-wise ops
//! through the public API (allocation and dispatch included).
//!
//! Run: `cargo bench --bench threads` (`TRAIN_STATION_KERNELS=avx2` forces a
//! path). Each figure is the best of many back-to-back calls (wall clock), so
//! the workers are awake, as in a training loop; on a shared machine run it
//! while nothing else does. Prints GFLOP/s for products (`2 m n k` each) and
//! microseconds for element-wise ops, with the two-thread speed-up.

use std::hint::black_box;
use std::time::Instant;

use train_station::{Tensor, set_num_threads};

/// Best wall time of `reps` calls of `f` after three warm-up calls.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Seconds per call on 1 and 2 threads.
fn one_and_two(reps: usize, mut f: impl FnMut()) -> [f64; 2] {
    [1, 2].map(|threads| {
        set_num_threads(threads);
        best(reps, &mut f)
    })
}

fn main() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(String::from)
        })
        .unwrap_or_default();
    println!(
        "{cpu}; kernel path {:?}",
        train_station::kernels::table().isa
    );
    for (m, k, n) in [
        (64, 64, 64),
        (128, 128, 128),
        (256, 256, 256),
        (512, 512, 512),
        (1024, 1024, 1024),
        (2048, 2048, 2048),
        (64, 784, 256),
        (256, 1024, 1024),
    ] {
        let a = Tensor::from_fn([m, k], |i| ((i[0] * 7 + i[1]) % 13) as f32 * 0.1);
        let b = Tensor::from_fn([k, n], |i| ((i[0] * 3 + i[1]) % 11) as f32 * 0.1);
        let flops = 2.0 * (m * n * k) as f64;
        let reps = (2e10 / flops).clamp(10.0, 200.0) as usize;
        let t = one_and_two(reps, || {
            black_box(a.matmul(&b));
        });
        println!(
            "matmul {m}x{k} @ {k}x{n}: {:.1} / {:.1} GFLOP/s (1 / 2 threads), x{:.2}",
            flops / t[0] / 1e9,
            flops / t[1] / 1e9,
            t[0] / t[1]
        );
    }
    for n in [10_000usize, 32_768, 50_000, 100_000, 1_000_000] {
        let a = Tensor::from_fn([n], |i| (i[0] % 97) as f32 * 0.01);
        let b = Tensor::from_fn([n], |i| (i[0] % 89) as f32 * 0.02);
        let ops: [(&str, &dyn Fn() -> Tensor); 5] = [
            ("add", &|| &a + &b),
            ("mul", &|| &a * &b),
            ("exp", &|| a.exp()),
            ("tanh", &|| a.tanh()),
            ("sum", &|| a.sum()),
        ];
        let mut row = format!("{n:>9} elements:");
        for (name, op) in ops {
            let t = one_and_two(300, || {
                black_box(op());
            });
            row += &format!(
                "  {name} {:.1} / {:.1} us x{:.2}",
                t[0] * 1e6,
                t[1] * 1e6,
                t[0] / t[1]
            );
        }
        println!("{row}");
    }
    // Broadcast and strided operands (the walker's split) and row-wise ops.
    let big = Tensor::from_fn([1024, 1024], |i| ((i[0] * 5 + i[1]) % 97) as f32 * 0.01);
    let row = Tensor::from_fn([1024], |i| (i[0] % 89) as f32 * 0.02);
    let col = Tensor::from_fn([1024, 1], |i| (i[0] % 83) as f32 * 0.02);
    let bt = big.t();
    let ops: [(&str, &dyn Fn() -> Tensor); 5] = [
        ("[1024,1024]+[1024]", &|| &big + &row),
        ("[1024,1024]*[1024,1]", &|| &big * &col),
        ("[1024,1024].t()+[1024,1024]", &|| &bt + &big),
        ("exp([1024,1024].t())", &|| bt.exp()),
        ("softmax([1024,1024], -1)", &|| big.softmax(-1)),
    ];
    for (name, op) in ops {
        let t = one_and_two(300, || {
            black_box(op());
        });
        println!(
            "{name}: {:.1} / {:.1} us (1 / 2 threads), x{:.2}",
            t[0] * 1e6,
            t[1] * 1e6,
            t[0] / t[1]
        );
    }
    set_num_threads(0);
}
