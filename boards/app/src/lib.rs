//! The on-board job, the same on every board: a digits MLP trained on the
//! host is loaded, evaluated, fine-tuned on rotated digits inside a RAM budget
//! checked before the first step, checkpointed to flash (A/B slots), reloaded
//! and checked. A board crate supplies only start-up, memory map, allocator,
//! output and a flash device, then calls [`run`] and exits with
//! [`Report::exit_code`]. Adding a board does not touch this crate.
//!
//! The job ([`run`]):
//! 1. builds the MLP from [`Config::weights`] (a safetensors state dict of
//!    `Linear`/`ReLU` layers, e.g. [`data::MLP`]) and evaluates it on the 359
//!    stored test digits, upright and rotated 20-30 degrees;
//! 2. freezes every layer but the last ([`Mode::LastLayer`]) or adds LoRA
//!    adapters to every `Linear` and freezes the rest ([`Mode::Lora`]), plans
//!    the fine-tune's peak pool bytes from shapes alone ([`plan_bytes`], the
//!    library's `nn::plan`) and refuses to start if the plan exceeds
//!    [`Config::budget`]; the pool's budget is then set to it, so the
//!    fine-tune cannot take more;
//! 3. fine-tunes the trainable parameters with Adam on 256 stored training
//!    digits, rotated on the device, for [`Config::epochs`] epochs;
//! 4. saves the base and then the fine-tuned model (with the optimizer) to the
//!    A/B flash store, reloads the newest into a fresh model, and checks its
//!    weights and rotated accuracy equal the fine-tuned ones;
//! 5. returns a [`Report`] whose verdict fails on a wrong result, a plan off
//!    by more than 10 % of the measured peak, or a budget overrun.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod data;

use alloc::string::String;
#[cfg(feature = "lora")]
use alloc::vec::Vec;
use core::fmt::Write;

use embedded_storage::nor_flash::NorFlash;
use train_station::io::flash::AbFlash;
use train_station::io::from_safetensors;
#[cfg(feature = "lora")]
use train_station::nn::LoraConfig;
use train_station::nn::loss::{CrossEntropyOptions, try_cross_entropy};
use train_station::nn::plan::{PlanLoss, plan_step};
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer};
use train_station::tensor::pool;
use train_station::{Error, Result, Tensor, no_grad};

use data::{Norm, RECORD, Turn};

/// Rotation range of the shifted domain, degrees (as `examples/finetune`).
const ANGLES: (f32, f32) = (20.0, 30.0);

/// How the model is fine-tuned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Every layer frozen but the last `Linear`.
    LastLayer,
    /// LoRA adapters of rank `rank` (alpha = 2 · rank) on every `Linear`,
    /// everything else frozen.
    Lora {
        /// Adapter rank.
        rank: usize,
    },
}

/// What a board asks of the job.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Board name for the report.
    pub board: &'static str,
    /// The model: a safetensors state dict of an MLP (`0.weight`, `0.bias`,
    /// `2.weight`, ...: `Linear` layers with a ReLU between), e.g.
    /// [`data::MLP`] or [`data::MLP_SMALL`].
    pub weights: &'static [u8],
    /// Bytes the memory pool may hold during the fine-tune.
    pub budget: usize,
    /// Fine-tuning mode.
    pub mode: Mode,
    /// Passes over the 256 training digits.
    pub epochs: usize,
    /// Samples per step (and per evaluation batch).
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
}

impl Config {
    /// The defaults for `board` with `weights` and a pool `budget`: last
    /// layer, 10 epochs of batches of 32, learning rate 1e-2.
    pub fn new(board: &'static str, weights: &'static [u8], budget: usize) -> Config {
        Config {
            board,
            weights,
            budget,
            mode: Mode::LastLayer,
            epochs: 10,
            batch: 32,
            lr: 1e-2,
        }
    }
}

/// What the job measured, and its verdict.
#[derive(Clone, Debug)]
pub struct Report {
    /// Parameters of the model, and of them trainable.
    pub params: (usize, usize),
    /// Test accuracy (fraction) on upright digits before and after.
    pub upright: (f32, f32),
    /// Test accuracy on rotated digits before and after the fine-tune.
    pub rotated: (f32, f32),
    /// Rotated test accuracy of the model reloaded from flash.
    pub reloaded: f32,
    /// Planned and measured peak pool bytes of the fine-tune.
    pub peak: (usize, usize),
    /// The budget the plan was checked against.
    pub budget: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Bytes of the checkpoint written to flash, and its sequence number.
    pub checkpoint: (usize, u64),
    /// `Err(what failed)` or `Ok(())`.
    pub verdict: core::result::Result<(), &'static str>,
}

impl Report {
    /// 0 when the verdict is a pass, 1 otherwise (the board's exit status).
    pub fn exit_code(&self) -> i32 {
        if self.verdict.is_ok() { 0 } else { 1 }
    }
}

/// The MLP described by a state dict: `Linear` layers at even indices with
/// a ReLU between, shapes from the weights; loaded strictly.
pub fn build_mlp(weights: &[u8]) -> Result<Sequential> {
    let file = from_safetensors(weights)?;
    let mut model = Sequential::new();
    for i in (0..).step_by(2) {
        let Some(w) = file.get(&alloc::format!("{i}.weight")) else {
            break;
        };
        if w.dims().len() != 2 {
            return Err(Error::Format {
                op: "build_mlp",
                detail: "a weight is not a matrix",
            });
        }
        if i > 0 {
            model.push(Relu);
        }
        model.push(Linear::new(w.dims()[1], w.dims()[0]));
    }
    if model.is_empty() {
        return Err(Error::Format {
            op: "build_mlp",
            detail: "no `0.weight` in the state dict",
        });
    }
    model.load_state_dict(&file.tensors)?;
    Ok(model)
}

/// Accuracy of `model` on `records` rotated by `turns` (`None`: upright),
/// evaluated in batches of `batch`.
pub fn accuracy(
    model: &Sequential,
    records: &[u8],
    norm: &Norm,
    turns: Option<&[Turn]>,
    batch: usize,
) -> Result<f32> {
    let n = records.len() / RECORD;
    let mut correct = 0usize;
    for (b, chunk) in records.chunks(batch * RECORD).enumerate() {
        let (x, y) = data::batch(chunk, norm, |i| turns.map(|t| t[b * batch + i]))?;
        let logits = no_grad(|| model.try_forward(&x))?;
        let (_, predicted) = logits.try_max_dim(1, false)?;
        correct += predicted
            .to_vec()
            .iter()
            .zip(y.to_vec())
            .filter(|(p, y)| **p == *y)
            .count();
    }
    Ok(correct as f32 / n as f32)
}

/// Index of the last `Linear` (the head the fine-tune trains).
fn head(model: &Sequential) -> usize {
    model.len() - 1
}

/// The fine-tune's peak pool bytes, predicted before the first step from
/// shapes alone (the library's memory plan, `nn::plan::plan_step`: nothing is
/// allocated for tensor data): parameters, gradients of the trainable ones,
/// `opt`'s state, the batch, saved activations, their gradients and GEMM
/// packing, on the kernel path in force. Errors if a layer has no plan, or
/// with [`Error::PlanExceedsBudget`] if the plan does not fit `budget`.
pub fn plan_bytes(
    model: &Sequential,
    opt: &dyn Optimizer,
    batch: usize,
    budget: usize,
) -> Result<usize> {
    let features = model.parameters()[0].dims()[1];
    let plan = plan_step(model, &[batch, features], PlanLoss::CrossEntropy, opt)?;
    plan.check_against(Some(budget))?;
    Ok(plan.peak_bytes())
}

/// FNV-1a hash of the bit patterns of the parameters `keep` selects (to
/// compare models exactly without a copy of their weights, which a small
/// heap cannot spare).
fn params_hash(model: &Sequential, keep: impl Fn(&Tensor) -> bool) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in model.parameters().iter().filter(|p| keep(p)) {
        for v in p.to_vec() {
            for b in v.to_bits().to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

/// Makes `model` ready for `mode`: freezes all but the head, or adds LoRA
/// adapters to every `Linear` (which freezes everything else).
fn prepare(model: &mut Sequential, mode: Mode) -> Result<()> {
    match mode {
        Mode::LastLayer => {
            let h = head(model);
            for i in 0..h {
                if let Some(layer) = model.get_mut(i) {
                    layer.set_requires_grad(false);
                }
            }
        }
        #[cfg(not(feature = "lora"))]
        Mode::Lora { .. } => {
            return Err(Error::InvalidArgument {
                op: "board_app::run",
                detail: "Mode::Lora needs board-app's `lora` feature",
            });
        }
        #[cfg(feature = "lora")]
        Mode::Lora { rank } => {
            let targets: Vec<String> = (0..model.len())
                .step_by(2)
                .map(|i| alloc::format!("{i}"))
                .collect();
            let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
            model.add_lora(&LoraConfig::new(rank, 2.0 * rank as f32, &targets))?;
        }
    }
    Ok(())
}

/// Runs the job (see the [crate docs](crate)), printing progress to `out`,
/// with checkpoints in `flash`. Errors of the library end the job with a
/// failed verdict naming the stage; the function itself never panics on them.
pub fn run<F: NorFlash>(cfg: &Config, flash: &mut AbFlash<F>, out: &mut dyn Write) -> Report {
    let mut report = Report {
        params: (0, 0),
        upright: (0.0, 0.0),
        rotated: (0.0, 0.0),
        reloaded: 0.0,
        peak: (0, 0),
        budget: cfg.budget,
        steps: 0,
        checkpoint: (0, 0),
        verdict: Err("not run"),
    };
    let mut stage = "start";
    let result = job(cfg, flash, out, &mut report, &mut stage);
    report.verdict = match result {
        Ok(()) => check(&report),
        Err(e) => {
            let _ = writeln!(out, "{}: error during {stage}: {e}", cfg.board);
            Err(stage)
        }
    };
    let _ = writeln!(out, "{}", summary(cfg, &report));
    report
}

/// The verdict on a completed job.
fn check(r: &Report) -> core::result::Result<(), &'static str> {
    let (planned, measured) = (r.peak.0 as f64, r.peak.1 as f64);
    if r.upright.0 < 0.85 {
        return Err("the loaded model scores below 85% on upright digits");
    }
    if r.rotated.1 < r.rotated.0 + 0.05 {
        return Err("fine-tuning improved rotated accuracy by less than 5 points");
    }
    if r.reloaded != r.rotated.1 {
        return Err("the reloaded model scores differently");
    }
    if r.peak.1 > r.budget {
        return Err("the measured peak exceeds the budget");
    }
    if (planned - measured).abs() > 0.10 * measured {
        return Err("the plan is off by more than 10% of the measured peak");
    }
    Ok(())
}

/// The one-line summary CI and the README read.
pub fn summary(cfg: &Config, r: &Report) -> String {
    let mut s = String::new();
    let pct = |v: f32| Fixed(100.0 * v, 2);
    let _ = write!(
        s,
        "{} {}: params {} (trainable {}); upright {}% -> {}%; rotated {}% -> {}% \
         (reloaded {}%); peak planned {} B, measured {} B, budget {} B; steps {}; \
         checkpoint {} B seq {}; verdict {}",
        cfg.board,
        mode_name(cfg.mode),
        r.params.0,
        r.params.1,
        pct(r.upright.0),
        pct(r.upright.1),
        pct(r.rotated.0),
        pct(r.rotated.1),
        pct(r.reloaded),
        r.peak.0,
        r.peak.1,
        r.budget,
        r.steps,
        r.checkpoint.0,
        r.checkpoint.1,
        match r.verdict {
            Ok(()) => "PASS",
            Err(e) => e,
        }
    );
    s
}

fn job<F: NorFlash>(
    cfg: &Config,
    flash: &mut AbFlash<F>,
    out: &mut dyn Write,
    report: &mut Report,
    stage: &mut &'static str,
) -> Result<()> {
    *stage = "load";
    let norm = Norm::from_bytes(data::NORM)?;
    let mut model = build_mlp(cfg.weights)?;
    let (test, train) = (data::TEST, data::TRAIN);
    let n_test = test.len() / RECORD;
    let n_train = train.len() / RECORD;
    let test_turns = data::turns(&data::angles(n_test, ANGLES.0, ANGLES.1, 2));
    let train_turns = data::turns(&data::angles(n_train, ANGLES.0, ANGLES.1, 1));

    *stage = "evaluate";
    report.upright.0 = accuracy(&model, test, &norm, None, cfg.batch)?;
    report.rotated.0 = accuracy(&model, test, &norm, Some(&test_turns), cfg.batch)?;
    let _ = writeln!(
        out,
        "{}: loaded; test accuracy {}% upright, {}% rotated {}-{} degrees ({n_test} digits)",
        cfg.board,
        Fixed(100.0 * report.upright.0, 2),
        Fixed(100.0 * report.rotated.0, 2),
        Fixed(ANGLES.0, 0),
        Fixed(ANGLES.1, 0)
    );

    *stage = "save base checkpoint";
    flash.save_checkpoint(&model, None, None, 0, &[("board", cfg.board)])?;

    *stage = "plan";
    prepare(&mut model, cfg.mode)?;
    let trainable = model.trainable_parameters();
    report.params = (
        model.num_parameters(),
        trainable.iter().map(Tensor::numel).sum(),
    );
    let frozen = params_hash(&model, |p| !p.requires_grad());
    let opt = Adam::try_new(
        &trainable,
        AdamConfig {
            lr: cfg.lr,
            ..AdamConfig::default()
        },
    );
    // The optimizer holds the trainable parameters; another handle would
    // make each in-place update copy the storage (copy-on-write).
    drop(trainable);
    let mut opt = opt?;
    report.peak.0 = match plan_bytes(&model, &opt, cfg.batch, cfg.budget) {
        Ok(bytes) => bytes,
        Err(e) => {
            if let Error::PlanExceedsBudget { planned, .. } = e {
                report.peak.0 = planned;
            }
            *stage = "plan (exceeds the budget, or a layer has no plan)";
            return Err(e);
        }
    };
    let _ = writeln!(
        out,
        "{}: {} fine-tune: plan {} B of budget {} B ({} of {} parameters trainable)",
        cfg.board,
        mode_name(cfg.mode),
        report.peak.0,
        cfg.budget,
        report.params.1,
        report.params.0
    );

    *stage = "fine-tune";
    let ce = CrossEntropyOptions::default();
    let budget_before = pool::budget();
    // Cached free blocks count against the budget: give them back first.
    pool::trim();
    pool::set_budget(Some(cfg.budget));
    pool::reset_peak();
    let trained = (|| -> Result<f32> {
        let mut last = 0.0;
        for epoch in 0..cfg.epochs {
            let mut total = 0.0;
            let mut batches = 0;
            for (b, chunk) in train.chunks(cfg.batch * RECORD).enumerate() {
                insn_mark_step(report.steps);
                // Last step's gradients go before this step's forward, so
                // they never live beside its activations.
                model.zero_grad();
                let (x, y) = data::batch(chunk, &norm, |i| Some(train_turns[b * cfg.batch + i]))?;
                let loss = try_cross_entropy(&model.try_forward(&x)?, &y, &ce)?;
                loss.try_backward()?;
                opt.step_module(&mut model)?;
                total += loss.item();
                batches += 1;
                report.steps += 1;
            }
            last = total / batches as f32;
            if epoch == 0 || epoch + 1 == cfg.epochs {
                let _ = writeln!(
                    out,
                    "{}: epoch {}/{}: loss {}",
                    cfg.board,
                    epoch + 1,
                    cfg.epochs,
                    Fixed(last, 4)
                );
            }
        }
        insn_mark_done(report.steps);
        Ok(last)
    })();
    report.peak.1 = pool::stats().peak_bytes_in_use;
    pool::set_budget(budget_before);
    trained?;
    model.zero_grad();

    *stage = "evaluate fine-tuned";
    report.upright.1 = accuracy(&model, test, &norm, None, cfg.batch)?;
    report.rotated.1 = accuracy(&model, test, &norm, Some(&test_turns), cfg.batch)?;
    let tuned = params_hash(&model, |_| true);
    if params_hash(&model, |p| !p.requires_grad()) != frozen {
        *stage = "frozen layers changed";
        return Err(Error::InvalidArgument {
            op: "fine-tune",
            detail: "a frozen layer changed",
        });
    }

    // Give the pool's cached blocks back: a small heap needs them for the
    // checkpoint buffers.
    pool::trim();
    *stage = "save checkpoint";
    let bytes =
        train_station::io::checkpoint_to_bytes(&model, Some(&opt), None, report.steps as u64, &[])?;
    report.checkpoint = (bytes.len(), flash.save(&bytes)?);
    drop(bytes);

    *stage = "reload checkpoint";
    let mut reloaded = build_mlp(cfg.weights)?;
    prepare(&mut reloaded, cfg.mode)?;
    let mut opt2 = Adam::try_new(&reloaded.trainable_parameters(), AdamConfig::default())?;
    let info = flash
        .load_checkpoint(&mut reloaded, Some(&mut opt2), None)?
        .ok_or(Error::Format {
            op: "reload",
            detail: "no checkpoint in flash",
        })?;
    if info.step != report.steps as u64 || params_hash(&reloaded, |_| true) != tuned {
        *stage = "reloaded weights differ";
        return Err(Error::Format {
            op: "reload",
            detail: "the reloaded weights or step differ from the saved ones",
        });
    }
    report.reloaded = accuracy(&reloaded, test, &norm, Some(&test_turns), cfg.batch)?;
    Ok(())
}

/// Called at the start of every optimizer step of the fine-tune. It does
/// nothing: the instruction-counting QEMU plugin (boards/insn-count) finds it
/// by its symbol and counts the instructions between step marks. A leaf
/// without branches, never inlined, and unlike any other function (so it is
/// not merged with one).
#[inline(never)]
pub fn insn_mark_step(step: usize) -> usize {
    core::hint::black_box(step ^ 0x5354_4550)
}

/// Called once after the last step of the fine-tune; see [`insn_mark_step`].
#[inline(never)]
pub fn insn_mark_done(steps: usize) -> usize {
    core::hint::black_box(steps ^ 0x444f_4e45)
}

/// `self.0` with `self.1` decimals, as `{:.N}` prints it (`79.94`, `0.3121`,
/// `20`), from integers: core's float formatting is about 13 KB that a
/// small flash need not hold (boards/cortex-m4). The value is widened to
/// f64 (exact), multiplied by 10^N (one f64 rounding) and rounded half to
/// even; `{:.N}` rounds the exact value, so the two can differ only for a
/// value within an f64 rounding of a half in the last printed place. For
/// magnitudes below 2^53 / 10^N.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub f32, pub u32);

impl core::fmt::Display for Fixed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Fixed(v, decimals) = *self;
        if !v.is_finite() {
            let s = if v.is_nan() {
                "NaN"
            } else if v > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            return f.write_str(s);
        }
        let scale = 10u64.pow(decimals);
        // f64: the product of an f32 and a power of ten up to 10^9 is exact
        // but for the last bits of values beyond 2^24, which are integers.
        // Half to even, as `{:.N}`.
        let units = libm::rint(f64::from(v).abs() * scale as f64) as u64;
        let sign = if v.is_sign_negative() { "-" } else { "" };
        let (int, frac) = (units / scale, units % scale);
        if decimals == 0 {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{frac:0width$}", width = decimals as usize)
        }
    }
}

/// The mode's name in the report.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::LastLayer => "last-layer",
        Mode::Lora { .. } => "LoRA",
    }
}
