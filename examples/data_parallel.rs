//! Data-parallel training on one shared model: several threads each take a
//! slice of a batch and run forward and backward on the same `&Sequential`;
//! their gradients accumulate into the same parameters (each parameter's
//! gradient slot has its own lock), each loss scaled by its share of the
//! batch so that the sum is the full-batch mean. Then one optimizer step.
//!
//! Checks that this gives the gradients and the updated parameters of the
//! single-threaded step on the whole batch (up to float summation order, with
//! the measured difference printed), times both, and trains both copies in
//! lockstep to show they stay together.
//!
//! `cargo run --release --example data_parallel`
//!
//! With `TRAIN_STATION_CI=1` it uses a smaller batch, fewer timing runs and
//! a few training steps.

#[path = "common/digits.rs"]
mod digits;

use std::time::{Duration, Instant};

use train_station::data::DataLoader;
use train_station::nn::loss::{CrossEntropyOptions, try_cross_entropy};
use train_station::nn::{Module, Sequential};
use train_station::optim::{Optimizer, Sgd, SgdConfig};
use train_station::{Result, Tensor, manual_seed};

use digits::{accuracy, ci, mlp, split_digits};

/// Allowed max abs difference between the data-parallel and the
/// single-threaded gradients and post-step parameters after one step.
const TOL: f32 = 1e-6;

/// Forward and backward of the mean cross-entropy of `model` on `x`, `y`,
/// split over `threads` threads that share `model`: thread `k` takes rows
/// `k n / threads .. (k + 1) n / threads` and scales its loss by its share of
/// the rows. Returns the summed loss (the full batch's mean). With one thread
/// it runs on the calling thread.
fn forward_backward(model: &Sequential, x: &Tensor, y: &Tensor, threads: usize) -> Result<f32> {
    let n = x.dims()[0];
    let ce = CrossEntropyOptions::default();
    let part = |k: usize| -> Result<f32> {
        let (lo, hi) = (k * n / threads, (k + 1) * n / threads);
        let xs = x.try_narrow(0, lo, hi - lo)?;
        let ys = y.try_narrow(0, lo, hi - lo)?;
        let loss = try_cross_entropy(&model.try_forward(&xs)?, &ys, &ce)?
            .try_mul_scalar((hi - lo) as f32 / n as f32)?;
        loss.try_backward()?;
        Ok(loss.item())
    };
    if threads == 1 {
        return part(0);
    }
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|k| s.spawn(move || part(k))).collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker thread panicked"))
            .sum()
    })
}

/// Every parameter's gradient, in order.
fn grads(model: &Sequential) -> Vec<Vec<f32>> {
    model
        .parameters()
        .iter()
        .map(|p| p.grad().expect("a gradient").to_vec())
        .collect()
}

/// Every parameter's values, in order.
fn values(model: &Sequential) -> Vec<Vec<f32>> {
    model.parameters().iter().map(|p| p.to_vec()).collect()
}

/// Max abs elementwise difference and max abs value of `a`.
fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f32) {
    let (mut diff, mut size) = (0.0f32, 0.0f32);
    for (u, v) in a.iter().zip(b) {
        assert_eq!(u.len(), v.len());
        for (p, q) in u.iter().zip(v) {
            diff = diff.max((p - q).abs());
            size = size.max(p.abs());
        }
    }
    (diff, size)
}

fn sgd(model: &Sequential) -> Sgd {
    Sgd::new(
        &model.parameters(),
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..SgdConfig::default()
        },
    )
}

/// Best and median of `runs` timings of `f`.
fn time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<(Duration, Duration)> {
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed());
    }
    t.sort();
    Ok((t[0], t[runs / 2]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let ci = ci();
    let threads = 4;
    let data = split_digits()?;
    let batch = if ci { 256 } else { 1024 };
    let x = data.train.tensors()[0].narrow(0, 0, batch);
    let y = data.train.tensors()[1].narrow(0, 0, batch);

    // Two copies of the same model: `shared` is trained by threads, `single`
    // on one thread.
    manual_seed(0);
    let mut shared = mlp();
    let mut single = mlp();
    single.load_state_dict(&shared.state_dict())?;
    let mut opt_shared = sgd(&shared);
    let mut opt_single = sgd(&single);
    println!(
        "mlp ({} parameters), one batch of {batch} digits: {threads} threads on the shared \
         model vs one thread; {} cores available",
        shared.num_parameters(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // One step each.
    let loss_single = forward_backward(&single, &x, &y, 1)?;
    let loss_shared = forward_backward(&shared, &x, &y, threads)?;
    let (grad_diff, grad_size) = max_diff(&grads(&single), &grads(&shared));
    opt_single.step_module(&mut single)?;
    opt_shared.step_module(&mut shared)?;
    let (param_diff, param_size) = max_diff(&values(&single), &values(&shared));
    println!("loss: one thread {loss_single:.7}, sum over {threads} threads {loss_shared:.7}");
    println!(
        "gradients: max abs difference {grad_diff:.2e} (largest gradient {grad_size:.2e}); \
         after one SGD step, parameters: max abs difference {param_diff:.2e} (largest {param_size:.2e}); \
         tolerance {TOL:.0e}"
    );
    assert!(
        grad_diff <= TOL && param_diff <= TOL,
        "data-parallel and single-threaded steps differ beyond {TOL:.0e}"
    );

    // Timing of forward + backward on the batch.
    let runs = if ci { 3 } else { 30 };
    let mut line = format!("forward + backward of {batch} samples, best / median of {runs}:");
    for t in [1, 2, threads] {
        let (best, median) = time(runs, || {
            shared.zero_grad();
            forward_backward(&shared, &x, &y, t).map(|_| ())
        })?;
        line += &format!(
            "  {t} thread{} {:.2} / {:.2} ms",
            if t == 1 { "" } else { "s" },
            ms(best),
            ms(median)
        );
    }
    println!("{line}");

    // Training both copies in lockstep on the same batches.
    let epochs = if ci { 1 } else { 10 };
    let max_steps = if ci { 3 } else { usize::MAX };
    let mut loader = DataLoader::new(&data.train, 128).shuffle(5);
    let mut steps = 1;
    let (mut t_single, mut t_shared) = (Duration::ZERO, Duration::ZERO);
    'train: for _ in 0..epochs {
        for b in loader.epoch() {
            if steps >= max_steps {
                break 'train;
            }
            let start = Instant::now();
            single.zero_grad();
            forward_backward(&single, &b[0], &b[1], 1)?;
            opt_single.step_module(&mut single)?;
            t_single += start.elapsed();
            let start = Instant::now();
            shared.zero_grad();
            forward_backward(&shared, &b[0], &b[1], threads)?;
            opt_shared.step_module(&mut shared)?;
            t_shared += start.elapsed();
            steps += 1;
        }
    }
    let (diff, size) = max_diff(&values(&single), &values(&shared));
    let (acc_single, acc_shared) = (
        accuracy(&single, &data.test_x, &data.test_y)?,
        accuracy(&shared, &data.test_x, &data.test_y)?,
    );
    println!(
        "after {steps} SGD steps (batches of 128): test accuracy one thread {:.2}%, \
         {threads} threads {:.2}%; parameters max abs difference {diff:.2e} (largest {size:.2e}); \
         training time {:.1} ms vs {:.1} ms",
        100.0 * acc_single,
        100.0 * acc_shared,
        ms(t_single),
        ms(t_shared)
    );
    assert!(diff <= 1e-4, "the two copies drifted apart by {diff:.2e}");
    assert!(
        (acc_single - acc_shared).abs() <= 1.0 / data.test_y.numel() as f32 + 1e-6,
        "the two copies disagree on more than one test sample"
    );
    if !ci {
        assert!(acc_shared >= 0.95, "data-parallel training below 95%");
    }
    Ok(())
}
