//! Fine-tuning the last layer of a trained model on shifted data: the host-side
//! twin of on-board fine-tuning.
//!
//! Loads the MLP checkpoint written by `train_digits`
//! (`target/digits/mlp.safetensors`; if it is missing, trains the base MLP
//! with the same recipe first), builds a shifted domain by rotating every
//! digit 20-30 degrees (nearest-neighbour sampling done with `gather` over the
//! flattened pixels, seeded), freezes every layer but the last, fine-tunes the
//! last layer on the rotated training set with an optimizer that only knows
//! that layer's parameters, and checks that accuracy on the rotated test set
//! improves while the frozen layers stay bit-identical.
//!
//! `cargo run --release --example finetune`
//!
//! With `TRAIN_STATION_CI=1` it fine-tunes for two epochs only.

#[path = "common/digits.rs"]
mod digits;

use std::time::Instant;

use train_station::data::{DataLoader, TensorDataset};
use train_station::io::load_checkpoint;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{Module, Sequential};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::{Generator, Result, Tensor, manual_seed};

use digits::{Split, accuracy, ci, crate_path, mlp, split_digits, train};

/// Index of the layer that is fine-tuned (the last `Linear`).
const HEAD: usize = 4;

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
    let mut model = base_model(&data, ci)?;

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
        "first training digit (label {}), original and rotated:\n{}",
        data.train.tensors()[1].get(&[0]),
        side_by_side(
            &first(&data.raw_train_x),
            &first(&rotate(&data.raw_train_x.narrow(0, 0, 1), lo, hi, 1)?)
        )
    );
    let rot_train = TensorDataset::new(vec![rot_train_x, data.train.tensors()[1].clone()])?;

    let orig_before = accuracy(&model, &data.test_x, &data.test_y)?;
    let rot_before = accuracy(&model, &rot_test_x, &data.test_y)?;
    println!(
        "base model: test accuracy {:.2}% on the original digits, {:.2}% rotated {lo}-{hi} degrees",
        100.0 * orig_before,
        100.0 * rot_before
    );

    // Remember the loaded weights of the layers to freeze, then freeze
    // everything but the head.
    let snapshot = |m: &Sequential| -> Vec<(String, Vec<u32>)> {
        m.named_parameters()
            .into_iter()
            .map(|(n, p)| (n, p.to_vec().iter().map(|v| v.to_bits()).collect()))
            .collect()
    };
    let frozen_before: Vec<_> = snapshot(&model)
        .into_iter()
        .filter(|(n, _)| !n.starts_with(&format!("{HEAD}.")))
        .collect();
    let head_before = model.get(HEAD).expect("head").parameters()[0].to_vec();
    for i in 0..HEAD {
        model.get_mut(i).expect("layer").set_requires_grad(false);
    }
    let trainable: usize = model
        .parameters()
        .iter()
        .filter(|p| p.requires_grad())
        .map(|p| p.numel())
        .sum();
    println!(
        "frozen: layers 0-{} ({} tensors); trainable: layer {HEAD}, {trainable} of {} parameters",
        HEAD - 1,
        frozen_before.len(),
        model.num_parameters()
    );
    assert_eq!(trainable, model.get(HEAD).expect("head").num_parameters());

    // The optimizer knows the head's parameters only.
    let epochs = if ci { 2 } else { 20 };
    let mut opt = Adam::new(
        &model.get(HEAD).expect("head").parameters(),
        AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        },
    );
    let mut schedule = CosineAnnealingLr::new(&mut opt, epochs, 0.0);
    let mut loader = DataLoader::new(&rot_train, 32).shuffle(3);
    let ce = CrossEntropyOptions::default();
    let start = Instant::now();
    let mut rot_after = rot_before;
    for epoch in 1..=epochs {
        let (mut total, mut batches) = (0.0f32, 0usize);
        for batch in loader.epoch() {
            let loss = cross_entropy(&model.try_forward(&batch[0])?, &batch[1], &ce);
            model.zero_grad();
            loss.try_backward()?;
            opt.step_module(model.get_mut(HEAD).expect("head"))?;
            total += loss.item();
            batches += 1;
        }
        schedule.step(&mut opt);
        rot_after = accuracy(&model, &rot_test_x, &data.test_y)?;
        if ci || epoch % 5 == 0 || epoch == 1 {
            println!(
                "fine-tune epoch {epoch:2}/{epochs}: loss {:.4}  rotated test accuracy {:.2}%  ({:.2} s)",
                total / batches as f32,
                100.0 * rot_after,
                start.elapsed().as_secs_f32()
            );
        }
    }
    let orig_after = accuracy(&model, &data.test_x, &data.test_y)?;

    let frozen_after: Vec<_> = snapshot(&model)
        .into_iter()
        .filter(|(n, _)| !n.starts_with(&format!("{HEAD}.")))
        .collect();
    let no_grads = (0..HEAD).all(|i| {
        model
            .get(i)
            .expect("layer")
            .parameters()
            .iter()
            .all(|p| p.grad().is_none())
    });
    let frozen_same = frozen_after == frozen_before;
    let head_changed = model.get(HEAD).expect("head").parameters()[0].to_vec() != head_before;
    println!(
        "rotated test accuracy {:.2}% -> {:.2}%; original test accuracy {:.2}% -> {:.2}%",
        100.0 * rot_before,
        100.0 * rot_after,
        100.0 * orig_before,
        100.0 * orig_after
    );
    println!(
        "frozen layers ({}) bit-identical to the loaded weights: {frozen_same}; \
         no gradient reached them: {no_grads}; head changed: {head_changed}",
        frozen_before
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(frozen_same, "a frozen layer changed");
    assert!(no_grads, "a frozen parameter received a gradient");
    assert!(head_changed, "the head did not change");
    assert!(
        rot_after >= rot_before + 0.1,
        "fine-tuning improved rotated test accuracy by less than 10 points"
    );
    Ok(())
}
