//! Shared by the digits examples (`train_digits`, `finetune`,
//! `data_parallel`): loading the UCI digits, the train/test split with
//! per-pixel standardisation, the MLP, its training recipe and accuracy.
//!
//! Included with `#[path = "common/digits.rs"] mod digits;`; each example uses
//! part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Instant;

use train_station::data::{DataLoader, TensorDataset, train_test_split};
use train_station::io::load_safetensors;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::plan::{PlanLoss, plan_step};
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::{Result, Tensor, no_grad};

/// Whether `TRAIN_STATION_CI=1` (CI smoke run: few steps).
pub fn ci() -> bool {
    std::env::var("TRAIN_STATION_CI").is_ok_and(|v| v == "1")
}

/// `path` relative to the repository root: the nearest directory at or above
/// the including crate's (train-station, or a board crate's tests) that holds
/// `examples/data`.
pub fn crate_path(path: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = dir
        .ancestors()
        .find(|d| d.join("examples/data").is_dir())
        .unwrap_or(&dir);
    root.join(path)
}

/// Images `[1797, 64]` scaled to [0, 1] and labels `[1797]`.
pub fn load_digits() -> Result<(Tensor, Tensor)> {
    let file = load_safetensors(crate_path("examples/data/digits.safetensors"))?;
    let images = file
        .get("images")
        .expect("images in digits.safetensors")
        .try_div_scalar(16.0)?;
    let labels = file
        .get("labels")
        .expect("labels in digits.safetensors")
        .clone();
    Ok((images, labels))
}

/// Fraction of samples whose highest logit is the label.
pub fn accuracy(model: &dyn Module, x: &Tensor, y: &Tensor) -> Result<f32> {
    let logits = no_grad(|| model.try_forward(x))?;
    let (_, predicted) = logits.try_max_dim(1, false)?;
    Ok(predicted.try_eq(y)?.try_mean()?.item())
}

/// The MLP of `train_digits`: 64 -> 128 -> 64 -> 10 with ReLUs (modules 0,
/// 2 and 4 are the `Linear` layers).
pub fn mlp() -> Sequential {
    Sequential::new()
        .with(Linear::new(64, 128))
        .with(Relu)
        .with(Linear::new(128, 64))
        .with(Relu)
        .with(Linear::new(64, 10))
}

/// Per-pixel standardisation with the training set's statistics:
/// `(x - mean) / (std + 0.1)`.
pub struct Standardise {
    mean: Tensor,
    std: Tensor,
}

impl Standardise {
    /// Statistics of `train_images` `[n, 64]`.
    pub fn fit(train_images: &Tensor) -> Result<Standardise> {
        Ok(Standardise {
            mean: train_images.try_mean_dims([0], true)?,
            std: train_images
                .try_std_dims([0], 1, true)?
                .try_add_scalar(0.1)?,
        })
    }

    /// The per-pixel mean and the divisor (`std + 0.1`), each `[1, 64]`.
    pub fn parts(&self) -> (&Tensor, &Tensor) {
        (&self.mean, &self.std)
    }

    /// `images` `[n, 64]` (raw, in [0, 1]) standardised.
    pub fn apply(&self, images: &Tensor) -> Result<Tensor> {
        images.try_sub_tensor(&self.mean)?.try_div_tensor(&self.std)
    }
}

/// The digits split 80/20 (seed 42), images standardised with the training
/// set's statistics.
pub struct Split {
    pub train: TensorDataset,
    pub test_x: Tensor,
    pub test_y: Tensor,
    /// The raw training images `[n, 64]` in [0, 1], rows as in `train`.
    pub raw_train_x: Tensor,
    /// The raw test images, rows as in `test_x`.
    pub raw_test_x: Tensor,
    /// The standardisation applied to the images.
    pub standardise: Standardise,
}

/// Loads the digits and splits them as `train_digits` does.
pub fn split_digits() -> Result<Split> {
    let (images, labels) = load_digits()?;
    let (train_set, test_set) = train_test_split(vec![images, labels], 0.2, 42)?;
    let standardise = Standardise::fit(&train_set.tensors()[0])?;
    let train = TensorDataset::new(vec![
        standardise.apply(&train_set.tensors()[0])?,
        train_set.tensors()[1].clone(),
    ])?;
    Ok(Split {
        train,
        test_x: standardise.apply(&test_set.tensors()[0])?,
        test_y: test_set.tensors()[1].clone(),
        raw_train_x: train_set.tensors()[0].clone(),
        raw_test_x: test_set.tensors()[0].clone(),
        standardise,
    })
}

/// Trains `model` with Adam (learning rate `lr`, cosine-annealed to 0 over
/// `epochs`), batches of 32 shuffled with seed 7, printing the loss and test
/// accuracy each epoch. Inputs are reshaped to `[n, *image_shape]`. Returns
/// the final test accuracy, the optimizer and the schedule.
pub fn train(
    name: &str,
    model: &mut Sequential,
    data: &Split,
    image_shape: &[usize],
    epochs: usize,
    lr: f32,
) -> Result<(f32, Adam, CosineAnnealingLr)> {
    train_with(name, model, data, image_shape, epochs, lr, true)
}

/// [`train`], printing nothing unless `verbose`.
pub fn train_with(
    name: &str,
    model: &mut Sequential,
    data: &Split,
    image_shape: &[usize],
    epochs: usize,
    lr: f32,
    verbose: bool,
) -> Result<(f32, Adam, CosineAnnealingLr)> {
    let as_input = |x: &Tensor| {
        let mut shape = vec![x.dims()[0]];
        shape.extend_from_slice(image_shape);
        x.try_reshape(shape)
    };
    let test_x = as_input(&data.test_x)?;
    let mut opt = Adam::new(
        &model.parameters(),
        AdamConfig {
            lr,
            ..AdamConfig::default()
        },
    );
    // The learning rate follows a cosine from `lr` down to 0 over the run.
    let mut schedule = CosineAnnealingLr::new(&mut opt, epochs, 0.0);
    let mut loader = DataLoader::new(&data.train, 32).shuffle(7);
    let ce = CrossEntropyOptions::default();
    if verbose {
        println!(
            "{name}: {} parameters, {} training / {} test samples",
            model.num_parameters(),
            data.train.len(),
            data.test_y.numel()
        );
    }
    // The memory one step needs, before the first one; a run whose plan does
    // not fit the pool's budget does not start.
    let mut batch_shape = vec![32];
    batch_shape.extend_from_slice(image_shape);
    let plan = plan_step(&*model, &batch_shape, PlanLoss::CrossEntropy, &opt)?;
    plan.check_budget()?;
    if verbose {
        println!(
            "{name}: planned peak of one training step {} bytes (pool reserve {} bytes)",
            plan.peak_bytes(),
            plan.peak_reserved_bytes()
        );
    }
    let start = Instant::now();
    let mut test_acc = 0.0;
    for epoch in 1..=epochs {
        let (mut total, mut batches) = (0.0f32, 0usize);
        for batch in loader.epoch() {
            let x = as_input(&batch[0])?;
            let loss = cross_entropy(&model.try_forward(&x)?, &batch[1], &ce);
            model.zero_grad();
            loss.try_backward()?;
            opt.step_module(model)?;
            total += loss.item();
            batches += 1;
        }
        schedule.step(&mut opt);
        test_acc = accuracy(model, &test_x, &data.test_y)?;
        if !verbose {
            continue;
        }
        println!(
            "{name} epoch {epoch:2}/{epochs}: loss {:.4}  test accuracy {:.2}%  ({:.2} s)",
            total / batches as f32,
            100.0 * test_acc,
            start.elapsed().as_secs_f32()
        );
    }
    Ok((test_acc, opt, schedule))
}
