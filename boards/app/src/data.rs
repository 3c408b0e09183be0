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
#[allow(clippy::needless_range_loop)]
pub fn pixels(record: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // An index loop: `iter_mut().enumerate()` is a call a pixel where the
    // firmware (opt-level "z") does not inline it.
    for p in 0..64 {
        let bit = 5 * p;
        let (byte, shift) = (bit / 8, bit % 8);
        let lo = u16::from(record[byte]);
        let hi = record.get(byte + 1).map_or(0, |&b| u16::from(b));
        out[p] = (((hi << 8 | lo) >> shift) & 0x1f) as u8;
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
/// `[n, 64]` and labels `[n]`, each image rotated by the [`Turn`] `turn(i)`
/// returns for record `i` (`None`: upright, as it is stored).
pub fn batch(
    records: &[u8],
    norm: &Norm,
    mut turn: impl FnMut(usize) -> Option<Turn>,
) -> Result<(Tensor, Tensor)> {
    let n = records.len() / RECORD;
    let mut x = Vec::new();
    let mut y = Vec::new();
    x.try_reserve_exact(n * 64).map_err(|_| oom(n * 64 * 4))?;
    y.try_reserve_exact(n).map_err(|_| oom(n * 4))?;
    for (i, rec) in records.chunks_exact(RECORD).enumerate() {
        let px = pixels(rec);
        let img = match turn(i) {
            Some(t) => rotate(&px, t),
            None => px,
        };
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

/// A rotation counter-clockwise about an image's centre, as its sine and
/// cosine: computed once per sample ([`turns`]), not at every epoch (on the
/// Cortex-M4 `libm`'s `sinf` and `cosf` work in software `f64`, about 2,000
/// instructions a call).
#[derive(Clone, Copy, Debug)]
pub struct Turn {
    sin: f32,
    cos: f32,
}

impl Turn {
    /// The rotation by `degrees`.
    pub fn degrees(degrees: f32) -> Turn {
        let theta = degrees * (core::f32::consts::PI / 180.0);
        Turn {
            sin: libm::sinf(theta),
            cos: libm::cosf(theta),
        }
    }
}

/// The [`Turn`] of each angle (degrees).
pub fn turns(angles: &[f32]) -> Vec<Turn> {
    angles.iter().map(|&d| Turn::degrees(d)).collect()
}

/// `libm::roundf(v)` (halves away from zero, the sign of a zero kept) for
/// finite `v` of magnitude below 2^31, in a few instructions instead of a
/// call: `t`, `v` truncated, is exact, and so is `v - t` (Sterbenz: `t`
/// lies between `v / 2` and `v`, or is 0).
#[inline(always)]
pub fn round(v: f32) -> f32 {
    let t = v as i32 as f32;
    let d = v - t;
    if d >= 0.5 {
        t + 1.0
    } else if d <= -0.5 {
        t - 1.0
    } else {
        // `t` has `v`'s sign unless it is 0: give the zero `v`'s sign.
        f32::from_bits(t.to_bits() | (v.to_bits() & 0x8000_0000))
    }
}

/// `img` (8x8, row-major) rotated by `turn` about its centre, as
/// `examples/finetune.rs` does it on the host: nearest-neighbour sampling,
/// pixels from outside the image become background.
pub fn rotate(img: &[u8], turn: Turn) -> [u8; 64] {
    let Turn { sin, cos } = turn;
    let mut out = [0u8; 64];
    for r in 0..8 {
        for c in 0..8 {
            // Centred coordinates, y pointing up; the source of output (x, y)
            // is (x, y) rotated by -theta.
            let (x, y) = (c as f32 - 3.5, 3.5 - r as f32);
            let (xs, ys) = (x * cos + y * sin, -x * sin + y * cos);
            let (sr, sc) = (round(3.5 - ys), round(xs + 3.5));
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
