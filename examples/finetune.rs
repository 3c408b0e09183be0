//! Partial fine-tuning of a trained model on shifted data: the host-side twin
//! of on-board fine-tuning.
//!
//! Loads the MLP checkpoint written by `train_digits`
//! (`target/digits/mlp.safetensors`; if it is missing, trains the base MLP
//! with the same recipe first), builds a shifted domain by rotating every
//! digit 20-30 degrees (nearest-neighbour sampling done with `gather` over the
//! flattened pixels, seeded), and fine-tunes on the rotated training set in
//! one of three modes, each set up by one call on the model:
//!
//! - default: the last layer only (`freeze_all_but_last(1)`);
//! - `--bitfit`: the biases only (`train_bias_only()`);
//! - `--lora`: LoRA adapters (r = 4, alpha = 8) on every `Linear` layer
//!   (`add_lora`), saved afterwards in PEFT's adapter layout to
//!   `target/digits/lora_adapter/` and merged into the weights to check that
//!   merging leaves the predictions unchanged.
//!
//! The optimizer gets `trainable_parameters()` only. The run checks that
//! accuracy on the rotated test set improves, that every frozen parameter
//! stays bit-identical and gets no gradient, and prints the pool's measured
//! peak of one training step.
//!
//! `cargo run --release --example finetune [-- --lora | -- --bitfit]`
//!
//! With `TRAIN_STATION_CI=1` it fine-tunes for two epochs only.

#[path = "common/digits.rs"]
mod digits;

use std::time::Instant;

use train_station::data::{DataLoader, TensorDataset};
use train_station::io::{load_checkpoint, save_adapter};
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::plan::{Category, PlanLoss, plan_step};
use train_station::nn::{LoraConfig, Module, Sequential};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::tensor::pool;
use train_station::{Generator, Result, Tensor, manual_seed, no_grad};

use digits::{Split, accuracy, ci, crate_path, mlp, split_digits, train};

/// LoRA rank and alpha of `--lora`.
const LORA_R: usize = 4;
const LORA_ALPHA: f32 = 8.0;

/// What trains.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The last `Linear` layer (default).
    LastLayer,
    /// Every bias, nothing else (`--bitfit`).
    BitFit,
    /// LoRA adapters on every `Linear` layer (`--lora`).
    Lora,
}

impl Mode {
    /// The mode asked for; with no flag, the last layer, or under
    /// `TRAIN_STATION_CI=1` all three in turn (CI runs examples without
    /// arguments).
    fn from_args(ci: bool) -> Vec<Mode> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] if ci => vec![Mode::LastLayer, Mode::BitFit, Mode::Lora],
            [] => vec![Mode::LastLayer],
            ["--bitfit"] => vec![Mode::BitFit],
            ["--lora"] => vec![Mode::Lora],
            _ => {
                eprintln!("usage: finetune [--lora | --bitfit]");
                std::process::exit(2);
            }
        }
    }

    /// The rotated-test-accuracy gain the run must reach (BitFit's 202
    /// parameters move it least: about 10 points after two epochs).
    fn min_gain(self) -> f32 {
        match self {
            Mode::BitFit => 0.05,
            Mode::LastLayer | Mode::Lora => 0.1,
        }
    }
}

/// After a LoRA fine-tune: saves the adapter in PEFT's layout, then merges
/// it into the weights for inference and checks that nothing changed.
fn lora_epilogue(model: &mut Sequential, x: &Tensor, y: &Tensor, acc: f32) -> Result<()> {
    let dir = crate_path("target/digits/lora_adapter");
    save_adapter(&dir, model)?;
    let bytes: u64 = std::fs::read_dir(&dir)
        .map_err(|_| train_station::Error::InvalidArgument {
            op: "finetune",
            detail: "cannot list the adapter directory",
        })?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "saved the adapter in PEFT's layout to {} ({bytes} bytes; PeftModel.from_pretrained loads it)",
        dir.display()
    );
    let logits = no_grad(|| model.try_forward(x))?;
    model.merge_lora()?;
    let merged = no_grad(|| model.try_forward(x))?;
    let merged_acc = accuracy(model, x, y)?;
    let diff = logits
        .to_vec()
        .iter()
        .zip(merged.to_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "merged the adapter into the weights: rotated test accuracy {:.2}% (unmerged {:.2}%), \
         max logit difference {diff:.2e}",
        100.0 * merged_acc,
        100.0 * acc
    );
    assert!(diff < 1e-3, "merging changed the logits by {diff}");
    model.unmerge_lora()
}

/// `images` `[n, 64]` (8x8, raw, background 0), each rotated
/// counter-clockwise about its centre by its own angle drawn uniformly from
/// `[lo, hi]` degrees, with nearest-neighbour sampling; pixels whose source
/// falls outside the image become background.
///
/// The resampling is one `gather` along the pixels: the images get a 65th,
/// always-zero column, and row `i` of the index says for each output pixel
/// which input pixel (or the zero column) it takes.
fn rotate(images: &Tensor, lo: f32, hi: f32, seed: u64) -> Result<Tensor> {
    let n = images.dims()[0];
    let mut rng = Generator::new(seed);
    let mut index = Vec::with_capacity(n * 64);
    for _ in 0..n {
        let theta = (lo + (hi - lo) * rng.uniform()).to_radians();
        let (sin, cos) = theta.sin_cos();
        for r in 0..8 {
            for c in 0..8 {
                // Centred coordinates, y pointing up.
                let (x, y) = (c as f32 - 3.5, 3.5 - r as f32);
                // The source of output (x, y) is (x, y) rotated by -theta.
                let (xs, ys) = (x * cos + y * sin, -x * sin + y * cos);
                let (sr, sc) = ((3.5 - ys).round(), (xs + 3.5).round());
                let inside = (0.0..=7.0).contains(&sr) && (0.0..=7.0).contains(&sc);
                index.push(if inside { sr * 8.0 + sc } else { 64.0 });
            }
        }
    }
    let index = Tensor::from_vec(index, [n, 64])?;
    let padded = Tensor::try_cat(&[images, &Tensor::try_zeros([n, 1])?], 1)?;
    padded.try_gather(1, &index)
}

/// Rows of `a` and `b` (8x8 images in [0, 1]) side by side as text.
fn side_by_side(a: &[f32], b: &[f32]) -> String {
    let shade = |v: f32| [' ', '.', ':', '#'][((v * 3.0).round() as usize).min(3)];
    let mut out = String::new();
    for r in 0..8 {
        let row = |img: &[f32]| {
            img[r * 8..r * 8 + 8]
                .iter()
                .map(|&v| shade(v))
                .collect::<String>()
        };
        out += &format!("  |{}|   |{}|\n", row(a), row(b));
    }
    out
}

/// The base MLP: loaded from `train_digits`' checkpoint, or trained here with
/// the same recipe if there is none.
fn base_model(data: &Split, ci: bool) -> Result<Sequential> {
    let path = crate_path("target/digits/mlp.safetensors");
    let mut model = mlp();
    if path.exists() {
        let info = load_checkpoint(&path, &mut model, None, None)?;
        println!(
            "loaded {} (trained {} epochs by train_digits)",
            path.display(),
            info.step
        );
    } else {
        let epochs = if ci { 2 } else { 30 };
        println!(
            "{} not found (run train_digits first to use its model): \
             training the base MLP here with the same recipe, {epochs} epochs",
            path.display()
        );
        manual_seed(0);
        model = mlp();
        train("mlp", &mut model, data, &[64], epochs, 2e-3)?;
    }
    Ok(model)
}

fn main() -> Result<()> {
    let ci = ci();
    let data = split_digits()?;

    // The shifted domain: rotated digits, standardised as the base model's
    // inputs were (with the original training set's statistics).
    let (lo, hi) = (20.0, 30.0);
    let rot_train_x = data
        .standardise
        .apply(&rotate(&data.raw_train_x, lo, hi, 1)?)?;
    let rot_test_x = data
        .standardise
        .apply(&rotate(&data.raw_test_x, lo, hi, 2)?)?;
    let first = |t: &Tensor| t.select(0, 0).to_vec();
    print!(
        "first training digit (label {}), original and rotated {lo}-{hi} degrees:\n{}",
        data.train.tensors()[1].get(&[0]),
        side_by_side(
            &first(&data.raw_train_x),
            &first(&rotate(&data.raw_train_x.narrow(0, 0, 1), lo, hi, 1)?)
        )
    );
    let rot_train = TensorDataset::new(vec![rot_train_x, data.train.tensors()[1].clone()])?;
    for mode in Mode::from_args(ci) {
        let model = base_model(&data, ci)?;
        finetune(mode, model, &data, &rot_train, &rot_test_x, ci)?;
    }
    Ok(())
}

/// Fine-tunes `model` on `rot_train` in `mode`, reports and checks the
/// result (see the module docs).
fn finetune(
    mode: Mode,
    mut model: Sequential,
    data: &Split,
    rot_train: &TensorDataset,
    rot_test_x: &Tensor,
    ci: bool,
) -> Result<()> {
    let orig_before = accuracy(&model, &data.test_x, &data.test_y)?;
    let rot_before = accuracy(&model, rot_test_x, &data.test_y)?;
    println!(
        "base model: test accuracy {:.2}% on the original digits, {:.2}% rotated",
        100.0 * orig_before,
        100.0 * rot_before
    );

    // One call sets up the mode: what trains, what is frozen.
    let setup = match mode {
        Mode::LastLayer => {
            let kept = model.freeze_all_but_last(1);
            format!(
                "last layer only (freeze_all_but_last(1) keeps layer {})",
                kept.join(", ")
            )
        }
        Mode::BitFit => {
            let n = model.train_bias_only();
            format!("BitFit (train_bias_only: {n} bias tensors train)")
        }
        Mode::Lora => {
            let config = LoraConfig::new(LORA_R, LORA_ALPHA, &["0", "2", "4"]);
            let layers = model.add_lora(&config)?;
            format!(
                "LoRA r={LORA_R} alpha={LORA_ALPHA} on layers {} (base weights frozen)",
                layers.join(", ")
            )
        }
    };
    let snapshot = |m: &Sequential| -> Vec<(String, Vec<u32>)> {
        m.named_parameters()
            .into_iter()
            .filter(|(_, p)| !p.requires_grad())
            .map(|(n, p)| (n, p.to_vec().iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    let frozen_before = snapshot(&model);
    let trainable = model.trainable_parameters();
    let trainable_before: Vec<Vec<f32>> = trainable.iter().map(|p| p.to_vec()).collect();
    let count = trainable.iter().map(|p| p.numel()).sum::<usize>();
    println!(
        "mode: {setup}\ntrainable: {count} of {} parameters ({} tensors); frozen: {} tensors",
        model.num_parameters(),
        trainable.len(),
        frozen_before.len()
    );

    // The optimizer knows the trainable parameters only.
    let epochs = if ci { 2 } else { 20 };
    let mut opt = Adam::new(
        &trainable,
        AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
    );
    let mut schedule = CosineAnnealingLr::new(&mut opt, epochs, 0.0);
    let mut loader = DataLoader::new(rot_train, 32).shuffle(3);
    let ce = CrossEntropyOptions::default();
    // The memory one step needs, planned from shapes before the first step
    // (and checked against the pool's budget), then compared with the pool's
    // measured peak below. Parameters, optimizer state and the batch are in
    // use before a step starts; the step adds the rest.
    let plan = plan_step(&model, &[32, 64], PlanLoss::CrossEntropy, &opt)?;
    plan.check_budget()?;
    println!("{plan}");
    let planned_step = plan.peak_bytes()
        - plan.at_peak(Category::Parameters)
        - plan.at_peak(Category::OptimizerState)
        - plan.at_peak(Category::Inputs);
    let start = Instant::now();
    let mut rot_after = rot_before;
    let mut step_peak = 0usize;
    let mut steps = 0usize;
    for epoch in 1..=epochs {
        let (mut total, mut batches) = (0.0f32, 0usize);
        for batch in loader.epoch() {
            model.zero_grad();
            pool::reset_peak();
            let before_step = pool::stats().bytes_in_use;
            let loss = cross_entropy(&model.try_forward(&batch[0])?, &batch[1], &ce);
            loss.try_backward()?;
            opt.step_module(&mut model)?;
            // The first step also allocates the optimizer's state.
            if steps > 0 {
                step_peak = step_peak.max(pool::stats().peak_bytes_in_use - before_step);
            }
            steps += 1;
            total += loss.item();
            batches += 1;
        }
        schedule.step(&mut opt);
        rot_after = accuracy(&model, rot_test_x, &data.test_y)?;
        if ci || epoch % 5 == 0 || epoch == 1 {
            println!(
                "fine-tune epoch {epoch:2}/{epochs}: loss {:.4}  rotated test accuracy {:.2}%  ({:.2} s)",
                total / batches as f32,
                100.0 * rot_after,
                start.elapsed().as_secs_f32()
            );
        }
    }
    let off = 100.0 * (step_peak as f64 / planned_step as f64 - 1.0);
    println!(
        "one training step (batch 32) above parameters, optimizer state and batch: planned {planned_step} B, \
         measured {step_peak} B ({off:+.1} %)"
    );
    assert!(
        off.abs() <= 10.0,
        "the measured step peak is {off:+.1} % off the plan"
    );
    let orig_after = accuracy(&model, &data.test_x, &data.test_y)?;

    let frozen_same = snapshot(&model) == frozen_before;
    let no_grads = model
        .parameters()
        .iter()
        .all(|p| p.requires_grad() || p.grad().is_none());
    let all_changed = model
        .trainable_parameters()
        .iter()
        .zip(&trainable_before)
        .all(|(p, b)| p.to_vec() != *b);
    println!(
        "rotated test accuracy {:.2}% -> {:.2}%; original test accuracy {:.2}% -> {:.2}%",
        100.0 * rot_before,
        100.0 * rot_after,
        100.0 * orig_before,
        100.0 * orig_after
    );
    println!(
        "frozen tensors bit-identical to the loaded weights: {frozen_same}; \
         no gradient reached them: {no_grads}; every trainable tensor changed: {all_changed}"
    );
    assert!(frozen_same, "a frozen parameter changed");
    assert!(no_grads, "a frozen parameter received a gradient");
    assert!(all_changed, "a trainable parameter did not change");
    if mode == Mode::Lora {
        lora_epilogue(&mut model, rot_test_x, &data.test_y, rot_after)?;
    }
    assert!(
        rot_after >= rot_before + mode.min_gain(),
        "fine-tuning improved rotated test accuracy by less than {} points",
        100.0 * mode.min_gain()
    );
    Ok(())
}
