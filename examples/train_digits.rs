//! The main job: trains an MLP and a small CNN on the UCI handwritten digits
//! shipped in `examples/data/` (1,797 8×8 images), reports progress and test
//! accuracy, saves a checkpoint, reloads it and checks that the reloaded model
//! scores the same.
//!
//! `cargo run --release --example train_digits`
//!
//! With `TRAIN_STATION_CI=1` it trains for two epochs only (CI smoke run) and
//! does not demand the full accuracy.

#[path = "common/digits.rs"]
mod digits;

use train_station::io::{load_checkpoint, save_checkpoint};
use train_station::nn::{
    Conv2d, ConvOptions, Flatten, Linear, MaxPool2d, Module, Relu, Sequential,
};
use train_station::optim::{Adam, AdamConfig, CosineAnnealingLr};
use train_station::{Result, manual_seed};

use digits::{accuracy, ci, crate_path, mlp, split_digits, train};

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

fn main() -> Result<()> {
    let ci = ci();
    manual_seed(0);
    let data = split_digits()?;

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
    let dir = crate_path("target/digits");
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
