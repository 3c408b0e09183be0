//! Data-parallel training over MPI: the digits MLP of the main job
//! (`train_digits`: same model, initial weights, Adam, cosine schedule, 30
//! epochs, global batch 32), with each rank training on its shard of every
//! global batch and the gradients averaged after each backward pass.
//!
//! ```text
//! cargo build --release --features mpi --example ddp_digits
//! mpirun -np 2 target/release/examples/ddp_digits
//! ```
//!
//! Rank 0 prints progress, saves a checkpoint after every epoch
//! (`target/digits/ddp.safetensors`) and prints the final test accuracy.
//! Every rank also trains the main job's MLP alone (one process, whole
//! batches, no printing) and rank 0 checks that the two accuracies agree
//! within 0.5 points.
//!
//! Flags:
//! - `--stop-after E`: stop after epoch `E` (the checkpoint is kept);
//! - `--resume`: continue from the checkpoint, on any number of ranks (the
//!   sampler re-shards the epochs);
//! - `--bench`: instead of training, time steps at global batches 32 and 256
//!   and print one row per batch size: ranks, ms per step, ms spent waiting
//!   for the slowest rank before the gradient average (a barrier), ms in the
//!   average itself and its share of the step, gradient bytes reduced per step.
//!
//! The global batch (32, or 256 with `--bench`) must be a multiple of the
//! number of ranks.

#[path = "common/digits.rs"]
mod digits;

use std::time::Instant;

use mpi::collective::{CommunicatorCollectives, SystemOperation};
use mpi::topology::Communicator;
use train_station::data::{Batches, DistributedSampler};
use train_station::distributed::{DistError, Distributed, DistributedDataParallel, SyncStats};
use train_station::io::{load_checkpoint, save_checkpoint};
use train_station::nn::loss::{CrossEntropyOptions, try_cross_entropy};
use train_station::nn::{Module, Sequential};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::{Generator, Tensor, manual_seed, set_num_threads};

use digits::{Split, accuracy, crate_path, mlp, split_digits, train_with};

const EPOCHS: usize = 30;
const GLOBAL_BATCH: usize = 32;
const LR: f32 = 2e-3;
/// Allowed accuracy difference from the single-process main job, in points.
const TOLERANCE: f32 = 0.5;

fn main() {
    let dist = match Distributed::init() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ddp_digits: {e}");
            std::process::exit(1);
        }
    };
    // Share the cores of a node between the ranks placed on it.
    let local_ranks = dist.communicator().split_shared(0).size() as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    set_num_threads((cores / local_ranks).max(1));

    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.iter().any(|a| a == "--bench") {
        bench(&dist)
    } else {
        let stop_after = args
            .iter()
            .position(|a| a == "--stop-after")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(EPOCHS);
        run(&dist, args.iter().any(|a| a == "--resume"), stop_after)
    };
    // An error on one rank must end the job, not leave the others waiting.
    if let Err(e) = result {
        dist.abort(&e);
    }
}

/// The mean of `value` over the ranks (for printing).
fn mean_over_ranks(dist: &Distributed, value: f64) -> f64 {
    let mut sum = 0.0f64;
    dist.communicator()
        .all_reduce_into(&value, &mut sum, SystemOperation::sum());
    sum / dist.world_size() as f64
}

fn check_batch(dist: &Distributed, global: usize) -> Result<usize, DistError> {
    if !global.is_multiple_of(dist.world_size()) {
        return Err(DistError {
            op: "ddp_digits",
            message: format!(
                "the global batch {global} is not a multiple of {} ranks",
                dist.world_size()
            ),
        });
    }
    Ok(global / dist.world_size())
}

fn adam(model: &Sequential) -> (Adam, CosineAnnealingLr) {
    let mut opt = Adam::new(
        &model.parameters(),
        AdamConfig {
            lr: LR,
            ..AdamConfig::default()
        },
    );
    let schedule = CosineAnnealingLr::new(&mut opt, EPOCHS, 0.0);
    (opt, schedule)
}

/// Forward and backward on this rank's batch (gradients cleared first, not
/// averaged yet); returns the local loss.
fn forward_backward(model: &Sequential, batch: &[Tensor]) -> Result<f32, DistError> {
    let loss = try_cross_entropy(
        &model.try_forward(&batch[0])?,
        &batch[1],
        &CrossEntropyOptions::default(),
    )?;
    model.zero_grad();
    loss.try_backward()?;
    Ok(loss.item())
}

/// One training step on this rank's batch: forward, backward, gradient
/// average, Adam. Returns the local loss and what the average did.
fn step(
    ddp: &mut DistributedDataParallel<'_>,
    model: &mut Sequential,
    opt: &mut Adam,
    batch: &[Tensor],
) -> Result<(f32, SyncStats), DistError> {
    let loss = forward_backward(model, batch)?;
    let stats = ddp.try_sync_grads(model)?;
    opt.step_module(model)?;
    Ok((loss, stats))
}

fn run(dist: &Distributed, resume: bool, stop_after: usize) -> Result<(), DistError> {
    let root = dist.is_root();
    let local_batch = check_batch(dist, GLOBAL_BATCH)?;
    manual_seed(0); // as train_digits: the MLP gets the main job's weights
    let data = split_digits()?;
    let mut model = mlp();
    let mut ddp = DistributedDataParallel::new(dist, &mut model)?;
    let (mut opt, mut schedule) = adam(&model);
    let path = crate_path("target/digits/ddp.safetensors");
    if root {
        std::fs::create_dir_all(path.parent().expect("a directory")).map_err(|e| DistError {
            op: "ddp_digits",
            message: format!("cannot create {}: {e}", path.display()),
        })?;
    }
    let mut first_epoch = 1;
    if resume {
        // Every rank reads the file (on a cluster: a shared file system).
        let info = load_checkpoint(&path, &mut model, Some(&mut opt), Some(&mut schedule))?;
        first_epoch = info.step as usize + 1;
        if root {
            println!(
                "resumed {} at epoch {} (saved by {} ranks), now on {} ranks",
                path.display(),
                info.step,
                info.extra("world_size").unwrap_or("?"),
                dist.world_size()
            );
        }
    }
    // The global batches of the main job: its `DataLoader::shuffle(7)` draws
    // epoch e's order as the e-th permutation of one generator; the sampler
    // pads it and gives this rank every world_size-th sample, so the ranks'
    // t-th batches together are the main job's t-th batch. (A new job would
    // use the sampler's own shuffle, `set_epoch(e)` each epoch.)
    let sampler = DistributedSampler::new(data.train.len(), dist.world_size(), dist.rank())?;
    let mut shuffle = Generator::new(7);
    for _ in 1..first_epoch {
        shuffle.permutation(data.train.len());
    }
    if root {
        println!(
            "ddp mlp: {} ranks x batch {local_batch} = global batch {GLOBAL_BATCH}, {} parameters, \
             {} training / {} test samples ({} per rank and epoch)",
            dist.world_size(),
            model.num_parameters(),
            data.train.len(),
            data.test_y.numel(),
            sampler.num_samples()
        );
    }
    let start = Instant::now();
    let mut test_acc = accuracy(&model, &data.test_x, &data.test_y)?;
    for epoch in first_epoch..=stop_after.min(EPOCHS) {
        let order = sampler.shard(shuffle.permutation(data.train.len()));
        let (mut total, mut steps, mut reduced) = (0.0f64, 0usize, 0usize);
        for batch in Batches::over(&data.train, order, local_batch) {
            let (loss, stats) = step(&mut ddp, &mut model, &mut opt, &batch)?;
            total += f64::from(loss);
            steps += 1;
            reduced = stats.bytes;
        }
        schedule.step(&mut opt);
        let loss = mean_over_ranks(dist, total / steps as f64);
        if root {
            test_acc = accuracy(&model, &data.test_x, &data.test_y)?;
            println!(
                "ddp epoch {epoch:2}/{EPOCHS}: loss {loss:.4}  test accuracy {:.2}%  ({steps} steps, \
                 {:.1} KB reduced per step, {:.2} s)",
                100.0 * test_acc,
                reduced as f64 / 1e3,
                start.elapsed().as_secs_f32()
            );
            let n = dist.world_size().to_string();
            save_checkpoint(
                &path,
                &model,
                Some(&opt),
                Some(&schedule),
                epoch as u64,
                &[("dataset", "uci-digits"), ("world_size", &n)],
            )?;
        }
        // The next epoch (or a resumed run) may read the checkpoint.
        dist.barrier();
    }
    if stop_after < EPOCHS {
        if root {
            println!("stopped after epoch {stop_after}; resume with --resume");
        }
        return Ok(());
    }
    // The main job's MLP, one process on whole batches (every rank computes it
    // at the same time rather than waiting for rank 0).
    let (reference, weights) = single_process()?;
    if root {
        let max_diff = model
            .parameters()
            .iter()
            .flat_map(|p| p.to_vec())
            .zip(weights)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        println!("weights after {EPOCHS} epochs: max |ddp - single process| = {max_diff:.1e}");
        let diff = 100.0 * (test_acc - reference).abs();
        println!(
            "final test accuracy: ddp ({} ranks) {:.2}%, single process (train_digits' mlp) \
             {:.2}%: difference {diff:.2} points (limit {TOLERANCE})",
            dist.world_size(),
            100.0 * test_acc,
            100.0 * reference
        );
        if diff > TOLERANCE {
            return Err(DistError {
                op: "ddp_digits",
                message: format!("accuracy differs by {diff:.2} points from the main job's"),
            });
        }
    }
    Ok(())
}

/// `train_digits`' MLP trained the same way in this process: its test
/// accuracy and final weights.
fn single_process() -> Result<(f32, Vec<f32>), DistError> {
    manual_seed(0);
    let data: Split = split_digits()?;
    let mut model = mlp();
    let (acc, _, _) = train_with("mlp", &mut model, &data, &[64], EPOCHS, LR, false)?;
    let weights = model.parameters().iter().flat_map(|p| p.to_vec()).collect();
    Ok((acc, weights))
}

/// Times training steps on this many ranks (see the module docs).
fn bench(dist: &Distributed) -> Result<(), DistError> {
    let quick = digits::ci();
    let data = split_digits()?;
    if dist.is_root() {
        println!(
            "ranks  global batch  ms/step  ms wait/step  ms reduce/step  reduce share  KB reduced/step"
        );
    }
    for global in [32, 256] {
        let local = check_batch(dist, global)?;
        manual_seed(0);
        let mut model = mlp();
        let mut ddp = DistributedDataParallel::new(dist, &mut model)?;
        let (mut opt, _) = adam(&model);
        let mut sampler =
            DistributedSampler::new(data.train.len(), dist.world_size(), dist.rank())?
                .drop_last(true);
        let (warmup, steps) = if quick { (5, 50) } else { (20, 400) };
        let (mut done, mut sync_s, mut wait_s, mut bytes) = (0usize, 0.0, 0.0, 0usize);
        let mut start = Instant::now();
        'outer: for epoch in 0.. {
            sampler.set_epoch(epoch);
            for batch in sampler.batches(&data.train, local) {
                if batch[0].dims()[0] != local {
                    continue;
                }
                if done == warmup {
                    dist.barrier();
                    start = Instant::now();
                    (sync_s, wait_s) = (0.0, 0.0);
                }
                forward_backward(&model, &batch)?;
                // Wait for the slowest rank first, so that the all-reduce time
                // is the reduction's own.
                let t0 = Instant::now();
                dist.barrier();
                wait_s += t0.elapsed().as_secs_f64();
                let stats = ddp.try_sync_grads(&model)?;
                opt.step_module(&mut model)?;
                sync_s += stats.seconds;
                bytes = stats.bytes;
                done += 1;
                if done == warmup + steps {
                    break 'outer;
                }
            }
        }
        let step_ms = mean_over_ranks(dist, start.elapsed().as_secs_f64()) * 1e3 / steps as f64;
        let sync_ms = mean_over_ranks(dist, sync_s) * 1e3 / steps as f64;
        let wait_ms = mean_over_ranks(dist, wait_s) * 1e3 / steps as f64;
        if dist.is_root() {
            println!(
                "{:5}  {global:12}  {step_ms:7.3}  {wait_ms:12.3}  {sync_ms:14.3}  {:11.0}%  {:15.1}",
                dist.world_size(),
                100.0 * sync_ms / step_ms,
                bytes as f64 / 1e3
            );
        }
    }
    Ok(())
}
