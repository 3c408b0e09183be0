//! Host checks of the board job: the embedded data is the main job's split and
//! model, and the whole job passes on the host with a RAM flash.
//!
//! `cargo test -p board-app`

#[path = "../../../examples/common/digits.rs"]
#[allow(unused_imports)]
mod digits;

use board_app::data::{self, RECORD};
use board_app::{Config, Mode, build_mlp, run};
use train_station::io::flash::{AbFlash, RamFlash};
use train_station::io::load_checkpoint;
use train_station::nn::Module;

/// The pool's statistics are process-wide: tests that allocate run one at a
/// time so the job's planned and measured peaks see only its own tensors.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The stored samples are the first rows of `split_digits()`'s test and
/// training sets, pixels 0..=16 and labels exact (regenerate with
/// `cargo run --release --example board_data`).
#[test]
fn stored_samples_are_the_main_jobs_split() {
    let _one = serial();
    let split = digits::split_digits().unwrap();
    let check = |bytes: &[u8], x: &train_station::Tensor, y: &train_station::Tensor| {
        let (x, y) = (x.to_vec(), y.to_vec());
        assert_eq!(bytes.len() % RECORD, 0);
        for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
            let px = data::pixels(rec);
            for p in 0..64 {
                assert_eq!(
                    f32::from(px[p]) / 16.0,
                    x[i * 64 + p],
                    "sample {i} pixel {p}"
                );
            }
            assert_eq!(f32::from(data::label(rec)), y[i], "sample {i} label");
        }
    };
    check(data::TEST, &split.raw_test_x, &split.test_y);
    check(data::TRAIN, &split.raw_train_x, &split.train.tensors()[1]);
    assert_eq!(data::TEST.len() / RECORD, split.test_y.numel());
    assert_eq!(data::TRAIN.len() / RECORD, 256);

    // The standardisation is the split's.
    let norm = train_station::io::from_safetensors(data::NORM).unwrap();
    let (mean, std) = split.standardise.parts();
    assert_eq!(norm.get("mean").unwrap().to_vec(), mean.to_vec());
    assert_eq!(norm.get("std").unwrap().to_vec(), std.to_vec());
}

/// `data/mlp.safetensors` holds the weights `train_digits` saves (checked
/// when its checkpoint exists: it is written by `cargo run --release
/// --example train_digits`, on a machine with the same kernel path as the
/// one that wrote the committed file).
#[test]
fn embedded_mlp_is_train_digits_model() {
    let _one = serial();
    let path = digits::crate_path("target/digits/mlp.safetensors");
    let embedded = build_mlp(data::MLP).unwrap();
    assert_eq!(
        embedded.num_parameters(),
        64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    );
    if !path.exists() {
        eprintln!("{} missing: run train_digits to compare", path.display());
        return;
    }
    let mut main = digits::mlp();
    load_checkpoint(&path, &mut main, None, None).unwrap();
    let split = digits::split_digits().unwrap();
    let a = digits::accuracy(&main, &split.test_x, &split.test_y).unwrap();
    let b = digits::accuracy(&embedded, &split.test_x, &split.test_y).unwrap();
    let same = main
        .state_dict()
        .iter()
        .zip(embedded.state_dict().iter())
        .all(|(p, q)| p.0 == q.0 && p.1.to_vec() == q.1.to_vec());
    if !same {
        // Another kernel path (e.g. no AVX-512) trains slightly different
        // weights; their accuracy agrees closely.
        assert!((a - b).abs() < 0.02, "train_digits {a}, embedded {b}");
    }
}

/// The whole job on the host, both models (the small one with twice the
/// Cortex-M4 budget: the host's GEMM packs larger panels), the
/// large one also with LoRA adapters (as on the aarch64 boards).
#[test]
fn job_passes_on_the_host() {
    let _one = serial();
    for (name, weights, budget, mode) in [
        ("host-mlp", data::MLP, 512 * 1024, Mode::LastLayer),
        ("host-mlp", data::MLP, 512 * 1024, Mode::Lora { rank: 4 }),
        (
            "host-mlp-small",
            data::MLP_SMALL,
            128 * 1024,
            Mode::LastLayer,
        ),
    ] {
        let mut flash = AbFlash::new(RamFlash::<8, 4096>::new(256 * 1024), 0, 128 * 1024).unwrap();
        let mut out = String::new();
        let mut cfg = Config::new(name, weights, budget);
        cfg.mode = mode;
        let report = run(&cfg, &mut flash, &mut out);
        print!("{out}");
        assert_eq!(report.verdict, Ok(()), "{out}");
        assert_eq!(report.checkpoint.1, 2, "base then fine-tuned checkpoint");
        let planned = report.peak.0 as f64;
        let measured = report.peak.1 as f64;
        assert!((planned - measured).abs() <= 0.10 * measured, "{out}");
    }
}

/// The report's fixed-point numbers (`board_app::Fixed`, integer formatting)
/// print as `{:.N}` does: accuracies k/359 and k/256 in percent with 2
/// decimals, losses with 4, whole degrees with none, signs and non-finite
/// values.
#[test]
fn fixed_prints_as_core_formatting() {
    use board_app::Fixed;
    let mut values: Vec<(f32, u32)> = Vec::new();
    for n in [359u32, 256, 160] {
        for k in 0..=n {
            values.push((100.0 * (k as f32 / n as f32), 2));
        }
    }
    for i in 0..5000 {
        let loss = i as f32 * 0.000_731 + (i % 7) as f32 * 1.3e-5;
        values.push((loss, 4));
        values.push((-loss, 4));
    }
    for deg in [0.0f32, 20.0, 30.0, 359.0] {
        values.push((deg, 0));
    }
    for (v, d) in values {
        let want = format!("{v:.prec$}", prec = d as usize);
        assert_eq!(Fixed(v, d).to_string(), want, "{v:e} with {d} decimals");
    }
    assert_eq!(Fixed(f32::NAN, 2).to_string(), "NaN");
    assert_eq!(Fixed(f32::INFINITY, 2).to_string(), "inf");
    assert_eq!(Fixed(f32::NEG_INFINITY, 4).to_string(), "-inf");
    assert_eq!(Fixed(79.944, 2).to_string(), "79.94");
    assert_eq!(
        Fixed(-0.00001, 2).to_string(),
        format!("{:.2}", -0.00001f32)
    );
}

/// `data::round`, the rotation's rounding, is `libm::roundf` (halves away
/// from zero): on every multiple of 2^-12 in [-64, 64] (the rotation meets
/// values in about [-1.5, 8.5]), on the neighbours of each half-integer
/// there (0.49999997 rounds to 0, not 1, as `x + 0.5` truncated would give),
/// and on large and signed-zero values.
#[test]
fn rotation_rounding_is_libm_roundf() {
    let mut values: Vec<f32> = (-(64 << 12)..=(64 << 12))
        .map(|k| k as f32 / 4096.0)
        .collect();
    for h in -128..128 {
        let half = h as f32 + 0.5;
        values.extend([half.next_down(), half, half.next_up()]);
    }
    values.extend([
        0.0,
        -0.0,
        1e9,
        -1e9,
        2.1e9,
        -2.1e9,
        8_388_609.0,
        -8_388_607.5,
    ]);
    for v in values {
        assert_eq!(
            data::round(v).to_bits(),
            libm::roundf(v).to_bits(),
            "round({v:e})"
        );
    }
}

/// A zero turn leaves an image as it is (the upright batches skip the
/// rotation), and a quarter turn moves the top row to the left column.
#[test]
fn rotations_of_zero_and_a_quarter_turn() {
    let img: [u8; 64] = core::array::from_fn(|i| i as u8);
    assert_eq!(data::rotate(&img, data::Turn::degrees(0.0)), img);
    let q = data::rotate(&img, data::Turn::degrees(90.0));
    // Counter-clockwise: output (r, c) takes input (c, 7 - r).
    for r in 0..8 {
        for c in 0..8 {
            assert_eq!(q[r * 8 + c], img[c * 8 + (7 - r)], "({r}, {c})");
        }
    }
}
