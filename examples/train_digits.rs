//! The main job: trains an MLP and a small CNN on the UCI handwritten digits
//! shipped in `examples/data/` (1,797 8×8 images), reports progress and test
//! accuracy, saves a checkpoint, reloads it and checks that the reloaded model
//! scores the same.
//!
//! `cargo run --release --example train_digits`
//!
//! With `TRAIN_STATION_CI=1` it trains for two epochs only (CI smoke run) and
//! does not demand the full accuracy.

use std::path::PathBuf;
use std::time::Instant;

use train_station::data::{DataLoader, TensorDataset, train_test_split};
use train_station::io::{load_checkpoint, load_safetensors, save_checkpoint};
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::{
    Conv2d, ConvOptions, Flatten, Linear, MaxPool2d, Module, Relu, Sequential,
};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr, LrScheduler, Optimizer};
use train_station::{Result, Tensor, manual_seed, no_grad};

/// Images `[1797, 64]` scaled to [0, 1] and labels `[1797]`.
pub fn load_digits() -> Result<(Tensor, Tensor)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.safetensors");
    let file = load_safetensors(path)?;
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

fn mlp() -> Sequential {
    Sequential::new()
        .with(Linear::new(64, 128))
        .with(Relu)
        .with(Linear::new(128, 64))
        .with(Relu)
        .with(Linear::new(64, 10))
}

fn cnn() -> Sequential {
    let pad1 = ConvOptions {
        padding: [1, 1],
        ..ConvOptions::default()
    };
    Sequential::new()
        .with(Conv2d::with_options(1, 16, 3, pad1)) // [N, 16, 8, 8]
        .with(Relu)
        .with(MaxPool2d::new(2)) // [N, 16, 4, 4]
        .with(Conv2d::with_options(16, 32, 3, pad1)) // [N, 32, 4, 4]
        .with(Relu)
        .with(MaxPool2d::new(2)) // [N, 32, 2, 2]
        .with(Flatten::default())
        .with(Linear::new(32 * 2 * 2, 10))
}

struct Split {
    train: TensorDataset,
    test_x: Tensor,
    test_y: Tensor,
}

/// Trains `model` and returns the final test accuracy.
fn train(
    name: &str,
    model: &mut Sequential,
    data: &Split,
    image_shape: &[usize],
    epochs: usize,
    lr: f32,
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
    println!(
        "{name}: {} parameters, {} training / {} test samples",
        model.num_parameters(),
        data.train.len(),
        data.test_y.numel()
    );
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
        println!(
            "{name} epoch {epoch:2}/{epochs}: loss {:.4}  test accuracy {:.2}%  ({:.2} s)",
            total / batches as f32,
            100.0 * test_acc,
            start.elapsed().as_secs_f32()
        );
    }
    Ok((test_acc, opt, schedule))
}

fn main() -> Result<()> {
    let ci = std::env::var("TRAIN_STATION_CI").is_ok_and(|v| v == "1");
    manual_seed(0);
    let (images, labels) = load_digits()?;
    // Standardise each pixel with the training set's statistics.
    let (train_set, test_set) = train_test_split(vec![images, labels], 0.2, 42)?;
    let mean = train_set.tensors()[0].try_mean_dims([0], true)?;
    let std = train_set.tensors()[0]
        .try_std_dims([0], 1, true)?
        .try_add_scalar(0.1)?;
    let standardise = |t: &Tensor| t.try_sub_tensor(&mean)?.try_div_tensor(&std);
    let train_set = TensorDataset::new(vec![
        standardise(&train_set.tensors()[0])?,
        train_set.tensors()[1].clone(),
    ])?;
    let test_set = TensorDataset::new(vec![
        standardise(&test_set.tensors()[0])?,
        test_set.tensors()[1].clone(),
    ])?;
    let data = Split {
        train: train_set,
        test_x: test_set.tensors()[0].clone(),
        test_y: test_set.tensors()[1].clone(),
    };

    let epochs = if ci { 2 } else { 30 };
    let mut model = mlp();
    let (mlp_acc, opt, schedule) = train("mlp", &mut model, &data, &[64], epochs, 2e-3)?;

    let mut conv = cnn();
    let (cnn_acc, _, _) = train(
        "cnn",
        &mut conv,
        &data,
        &[1, 8, 8],
        if ci { 2 } else { 20 },
        3e-3,
    )?;

    // Save the MLP with its optimizer, reload into fresh objects, re-check.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/digits");
    std::fs::create_dir_all(&dir).map_err(|_| train_station::Error::InvalidArgument {
        op: "train_digits",
        detail: "cannot create target/digits",
    })?;
    let path = dir.join("mlp.safetensors");
    save_checkpoint(
        &path,
        &model,
        Some(&opt),
        Some(&schedule),
        epochs as u64,
        &[("dataset", "uci-digits")],
    )?;
    let mut reloaded = mlp();
    let mut opt2 = Adam::new(
        &reloaded.parameters(),
        AdamConfig {
            lr: 2e-3,
            ..AdamConfig::default()
        },
    );
    let mut schedule2 = CosineAnnealingLr::new(&mut opt2, epochs, 0.0);
    let info = load_checkpoint(&path, &mut reloaded, Some(&mut opt2), Some(&mut schedule2))?;
    let reloaded_acc = accuracy(&reloaded, &data.test_x, &data.test_y)?;
    println!(
        "saved {} (step {}), reloaded: test accuracy {:.2}% (before saving {:.2}%)",
        path.display(),
        info.step,
        100.0 * reloaded_acc,
        100.0 * mlp_acc
    );
    assert_eq!(
        reloaded_acc, mlp_acc,
        "the reloaded model must score the same"
    );
    println!(
        "final test accuracy: mlp {:.2}%, cnn {:.2}%",
        100.0 * mlp_acc,
        100.0 * cnn_acc
    );
    if !ci {
        assert!(mlp_acc >= 0.97, "MLP below 97% test accuracy");
        assert!(cnn_acc >= 0.97, "CNN below 97% test accuracy");
    }
    Ok(())
}
