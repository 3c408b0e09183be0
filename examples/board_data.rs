//! Writes the data the board program (`boards/app`) embeds, into
//! `boards/app/data/`:
//!
//! - `mlp.safetensors`: the main job's MLP (64-128-64-10), trained exactly as
//!   `train_digits` trains it (same seed, recipe and order of random draws;
//!   the CNN is skipped), as a plain state dict;
//! - `mlp_small.safetensors`: a 64-32-10 MLP for boards with 128 KiB of RAM,
//!   same recipe;
//! - `norm.safetensors`: the standardisation (`mean`, `std`, `[1, 64]`) both
//!   models were trained with;
//! - `test.px5`, `train.px5`: all 359 test samples and the first 256 training samples of
//!   the same 80/20 split, 41 bytes each: the 64 raw pixels 0..=16 packed 5 bits each
//!   (pixel `p` at bits `5p..5p + 5` of a little-endian 320-bit number), then the label.
//!
//! `cargo run --release --example board_data` (about a minute). With
//! `TRAIN_STATION_CI=1` it trains 2 epochs and writes to `target/board-data/`
//! instead (a smoke run that leaves the committed files alone). The weights
//! depend on the kernel path (FMA or not), the data files do not;
//! `boards/app/tests/data.rs` checks the committed files against this split
//! and against `target/digits/mlp.safetensors` when `train_digits` wrote one.

#[path = "common/digits.rs"]
mod digits;

use std::fs;

use train_station::io::{module_to_bytes, to_safetensors};
use train_station::nn::{Linear, Relu, Sequential};
use train_station::{Result, Tensor, manual_seed};

use digits::{ci, crate_path, mlp, split_digits, train};

/// Raw images `[n, 64]` in [0, 1] and labels `[n]` as 41-byte records
/// (`board_app::data::pixels` unpacks them; its host test checks both agree).
fn records(x: &Tensor, y: &Tensor, n: usize) -> Vec<u8> {
    let (x, y) = (x.to_vec(), y.to_vec());
    let mut out = Vec::with_capacity(n * 41);
    for i in 0..n {
        let mut bits = 0u128;
        let mut packed = Vec::with_capacity(40);
        for (p, &v) in x[i * 64..i * 64 + 64].iter().enumerate() {
            let level = (v * 16.0).round() as u128;
            assert!(level <= 16, "a pixel is not in 0..=16");
            // 5 bits a pixel, flushed a byte at a time (little-endian).
            bits |= level << (5 * p - 8 * packed.len());
            while 5 * (p + 1) >= 8 * (packed.len() + 1) {
                packed.push(bits as u8);
                bits >>= 8;
            }
        }
        debug_assert_eq!(packed.len(), 40);
        out.extend(packed);
        out.push(y[i] as u8);
    }
    out
}

fn main() -> Result<()> {
    let epochs = if ci() { 2 } else { 30 };
    // As train_digits: seed, split, model, train (its CNN comes after).
    manual_seed(0);
    let data = split_digits()?;
    let mut big = mlp();
    let (big_acc, _, _) = train("mlp", &mut big, &data, &[64], epochs, 2e-3)?;
    manual_seed(1);
    let mut small = Sequential::new()
        .with(Linear::new(64, 32))
        .with(Relu)
        .with(Linear::new(32, 10));
    let (small_acc, _, _) = train("mlp_small", &mut small, &data, &[64], epochs, 3e-3)?;

    let dir = crate_path(if ci() {
        "target/board-data"
    } else {
        "boards/app/data"
    });
    fs::create_dir_all(&dir).expect("create the board data directory");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write board data");
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    };
    write("mlp.safetensors", &module_to_bytes(&big)?);
    write("mlp_small.safetensors", &module_to_bytes(&small)?);
    let s = &data.standardise;
    let (mean, std) = s.parts();
    write(
        "norm.safetensors",
        &to_safetensors([("mean", mean), ("std", std)], &[])?,
    );
    write(
        "test.px5",
        &records(&data.raw_test_x, &data.test_y, data.test_y.numel()),
    );
    write(
        "train.px5",
        &records(&data.raw_train_x, &data.train.tensors()[1], 256),
    );
    println!(
        "test accuracy: mlp {:.2}%, mlp_small {:.2}%",
        100.0 * big_acc,
        100.0 * small_acc
    );
    Ok(())
}
