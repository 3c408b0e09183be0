//! Soak: 100,000 training steps of the digits MLP (`examples/train_digits`'s
//! model, data and Adam recipe) with the pool's background trimmer on and
//! ticking fast. After warm-up, resident memory (`/proc/self/statm`) and the
//! pool's counters must stay flat: a leak of even one small buffer per step
//! would add megabytes.
//!
//! Ignored by default (about 10 s in release on 2 cores); CI runs it as the `soak`
//! step: `cargo test --release --test soak -- --ignored --nocapture`.
//! `SOAK_STEPS` overrides the step count. Needs `std` (the trimmer thread,
//! `/proc`).
#![cfg(feature = "std")]

#[path = "../examples/common/digits.rs"]
mod digits;

use std::time::{Duration, Instant};

use train_station::data::DataLoader;
use train_station::manual_seed;
use train_station::nn::Module;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::optim::{Adam, AdamConfig, Optimizer};
use train_station::tensor::pool::{self, TrimConfig};

/// Resident set size in bytes, from `/proc/self/statm` (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
#[ignore = "soak: run in release by the CI `soak` step"]
fn training_memory_stays_flat_with_the_trimmer_on() {
    let steps: usize = std::env::var("SOAK_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let warmup = steps / 20;
    let sample_every = steps / 20;
    // Trim anything idle for 20 ms, keeping no headroom.
    pool::set_trim_config(TrimConfig {
        interval: Duration::from_millis(5),
        idle: Duration::from_millis(20),
        keep_bytes: 0,
    });
    manual_seed(0);
    let data = digits::split_digits().unwrap();
    let mut model = digits::mlp();
    let mut opt = Adam::new(
        &model.parameters(),
        AdamConfig {
            lr: 2e-3,
            ..AdamConfig::default()
        },
    );
    let mut loader = DataLoader::new(&data.train, 32).shuffle(7);
    let ce = CrossEntropyOptions::default();

    let start = Instant::now();
    let mut step = 0;
    let mut baseline = None;
    let (mut max_rss, mut max_reserved) = (0usize, 0usize);
    'outer: loop {
        for batch in loader.epoch() {
            let loss = cross_entropy(&model.forward(&batch[0]), &batch[1], &ce);
            model.zero_grad();
            loss.backward();
            drop(loss);
            opt.step_module(&mut model).unwrap();
            step += 1;
            if step % sample_every == 0 || step == warmup {
                let (r, s) = (rss(), pool::stats());
                println!(
                    "step {step:6}: rss {:6} KiB, pool in use {:6} KiB, reserved {:6} KiB, cached {:6} KiB, hits {}, misses {}",
                    r >> 10,
                    s.bytes_in_use >> 10,
                    s.bytes_reserved >> 10,
                    s.bytes_cached >> 10,
                    s.hits,
                    s.misses
                );
                if step == warmup {
                    baseline = Some((r, s));
                } else if let Some((r0, s0)) = baseline {
                    // Between steps the live set is the same every time:
                    // parameters, gradients, Adam state, the data set.
                    assert_eq!(s.bytes_in_use, s0.bytes_in_use, "pool bytes in use grew");
                    max_rss = max_rss.max(r.saturating_sub(r0));
                    max_reserved =
                        max_reserved.max(s.bytes_reserved.saturating_sub(s0.bytes_reserved));
                }
            }
            if step == steps {
                break 'outer;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let acc = digits::accuracy(&model, &data.test_x, &data.test_y).unwrap();
    println!(
        "{steps} steps in {secs:.1} s ({:.0} µs/step); after warm-up: rss grew at most {} KiB, pool reserved grew at most {} KiB; test accuracy {:.1}%",
        secs * 1e6 / steps as f64,
        max_rss >> 10,
        max_reserved >> 10,
        100.0 * acc
    );
    assert!(acc > 0.9, "training did not converge: {acc}");
    // Flat: allocator noise (a page or a few) is allowed, a per-step leak is
    // not (one 64-byte block per step over 95k steps is 6 MiB).
    assert!(
        max_rss <= 2 << 20,
        "resident memory grew by {max_rss} bytes"
    );
    assert!(
        max_reserved <= 1 << 20,
        "pool reservations grew by {max_reserved} bytes"
    );
}
