//! The embedded digits data (see `examples/board_data.rs`, which writes
//! `data/`): weights, standardisation, and samples packed 5 bits a pixel;
//! rotation on the device.

use alloc::vec::Vec;

use train_station::io::from_safetensors;
use train_station::{Error, Generator, Result, Tensor};

/// The main job's MLP (64-128-64-10) as a safetensors state dict.
pub const MLP: &[u8] = include_bytes!("../data/mlp.safetensors");
/// A 64-32-10 MLP trained with the same recipe, for boards with 128 KiB RAM.
pub const MLP_SMALL: &[u8] = include_bytes!("../data/mlp_small.safetensors");
/// The standardisation both were trained with: `mean` and `std` (the divisor,
/// std + 0.1), `[1, 64]` each.
pub const NORM: &[u8] = include_bytes!("../data/norm.safetensors");
/// The 359 test samples (all of the split), [`RECORD`] bytes each: the 64
/// pixels (0..=16, row-major 8x8) 5 bits each (see [`pixels`]), then the
/// label byte.
pub const TEST: &[u8] = include_bytes!("../data/test.px5");
/// 256 training samples, same layout.
pub const TRAIN: &[u8] = include_bytes!("../data/train.px5");

/// Bytes per sample record: 40 bytes of pixels, 1 of label (65 as one byte
/// a pixel; the packing saves 14.8 KB of a small board's flash).
pub const RECORD: usize = 41;

/// The 64 pixels of a record: pixel `p` is bits `5p..5p + 5` of the record's
/// first 40 bytes read as one little-endian 320-bit number.
pub fn pixels(record: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (p, px) in out.iter_mut().enumerate() {
        let bit = 5 * p;
        let (byte, shift) = (bit / 8, bit % 8);
        let lo = u16::from(record[byte]);
        let hi = record.get(byte + 1).map_or(0, |&b| u16::from(b));
        *px = (((hi << 8 | lo) >> shift) & 0x1f) as u8;
    }
    out
}

/// A record's label.
pub fn label(record: &[u8]) -> u8 {
    record[RECORD - 1]
}

/// Per-pixel standardisation: `(pixel / 16 - mean) / std`.
pub struct Norm {
    mean: [f32; 64],
    std: [f32; 64],
}

impl Norm {
    /// Decodes [`NORM`]-style bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Norm> {
        let file = from_safetensors(bytes)?;
        let get = |name| -> Result<[f32; 64]> {
            let v = file
                .get(name)
                .ok_or(Error::Format {
                    op: "Norm::from_bytes",
                    detail: "mean or std missing",
                })?
                .to_vec();
            v.try_into().map_err(|_| Error::Format {
                op: "Norm::from_bytes",
                detail: "mean and std must have 64 values",
            })
        };
        Ok(Norm {
            mean: get("mean")?,
            std: get("std")?,
        })
    }
}

/// Samples `records` ([`RECORD`]-byte records) as a batch: standardised images
/// `[n, 64]` and labels `[n]`, each image rotated counter-clockwise about its
/// centre by the angle (degrees) `angle(i)` returns for record `i`, with
/// nearest-neighbour sampling (pixels from outside become background).
pub fn batch(
    records: &[u8],
    norm: &Norm,
    mut angle: impl FnMut(usize) -> f32,
) -> Result<(Tensor, Tensor)> {
    let n = records.len() / RECORD;
    let mut x = Vec::new();
    let mut y = Vec::new();
    x.try_reserve_exact(n * 64).map_err(|_| oom(n * 64 * 4))?;
    y.try_reserve_exact(n).map_err(|_| oom(n * 4))?;
    for (i, rec) in records.chunks_exact(RECORD).enumerate() {
        let img = rotate(&pixels(rec), angle(i));
        x.extend(
            img.iter()
                .enumerate()
                .map(|(p, &v)| (f32::from(v) / 16.0 - norm.mean[p]) / norm.std[p]),
        );
        y.push(f32::from(label(rec)));
    }
    Ok((Tensor::from_vec(x, [n, 64])?, Tensor::from_vec(y, [n])?))
}

fn oom(bytes: usize) -> Error {
    Error::OutOfMemory {
        requested: bytes,
        reserved: 0,
        budget: usize::MAX,
    }
}

/// `img` (8x8, row-major) rotated by `degrees` counter-clockwise, as
/// `examples/finetune.rs` does it on the host.
pub fn rotate(img: &[u8], degrees: f32) -> [u8; 64] {
    let theta = degrees * (core::f32::consts::PI / 180.0);
    let (sin, cos) = (libm::sinf(theta), libm::cosf(theta));
    let mut out = [0u8; 64];
    for r in 0..8 {
        for c in 0..8 {
            // Centred coordinates, y pointing up; the source of output (x, y)
            // is (x, y) rotated by -theta.
            let (x, y) = (c as f32 - 3.5, 3.5 - r as f32);
            let (xs, ys) = (x * cos + y * sin, -x * sin + y * cos);
            let (sr, sc) = (libm::roundf(3.5 - ys), libm::roundf(xs + 3.5));
            if (0.0..=7.0).contains(&sr) && (0.0..=7.0).contains(&sc) {
                out[r * 8 + c] = img[sr as usize * 8 + sc as usize];
            }
        }
    }
    out
}

/// One angle per sample, uniform in `[lo, hi]` degrees, from a seeded stream
/// (the same on every target).
pub fn angles(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = Generator::new(seed);
    (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect()
}
