//! Memory plans against the pool's measured peak of a real training step
//! (forward, loss, backward, optimizer update), on whichever kernel path is
//! in force (CI runs this file per path: TRAIN_STATION_KERNELS=scalar,
//! avx2, avx512, and on aarch64 NEON).
//!
//! The pool's counters are process-wide, so the tests take one lock and each
//! drops everything it made before releasing it.

use std::sync::Mutex;

use train_station::Tensor;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy, mse_loss};
use train_station::nn::plan::{Category, MemoryPlan, PlanLoss, plan_step};
use train_station::nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvOptions, Flatten, Linear,
    LoraConfig, MaxPool2d, Module, Reduction, Relu, Sequential,
};
use train_station::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use train_station::tensor::pool;

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn mlp(sizes: &[usize]) -> Sequential {
    let mut m = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            m.push(Relu);
        }
        m.push(Linear::new(w[0], w[1]));
    }
    m
}

/// Which parameters train.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Full,
    LastLayer,
    BiasOnly,
    /// LoRA (r 4, alpha 8) on every `Linear`, everything else frozen.
    Lora,
}

fn freeze(model: &mut Sequential, mode: Mode) {
    if let Mode::Lora = mode {
        let targets: Vec<String> = (0..model.len()).step_by(2).map(|i| i.to_string()).collect();
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        model.add_lora(&LoraConfig::new(4, 8.0, &targets)).unwrap();
        return;
    }
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let last = names.last().unwrap().split('.').next().unwrap().to_string();
    for (name, p) in model.named_parameters_mut() {
        let train = match mode {
            Mode::Full | Mode::Lora => true,
            Mode::LastLayer => name.split('.').next() == Some(last.as_str()),
            Mode::BiasOnly => name.ends_with("bias"),
        };
        p.set_requires_grad(train);
    }
}

fn trainable(model: &Sequential) -> Vec<Tensor> {
    model
        .parameters()
        .into_iter()
        .filter(Tensor::requires_grad)
        .collect()
}

/// One training step as a user writes it; the output and loss stay alive
/// until the update (as the plan assumes).
fn step(model: &mut Sequential, opt: &mut dyn Optimizer, x: &Tensor, y: &Tensor, loss: PlanLoss) {
    model.zero_grad();
    let out = model.forward(x);
    let l = match loss {
        PlanLoss::CrossEntropy => cross_entropy(&out, y, &CrossEntropyOptions::default()),
        PlanLoss::Mse => mse_loss(&out, y, Reduction::Mean),
    };
    l.backward();
    opt.step_module(model).unwrap();
    drop((out, l));
}

/// The pool's peak over one warm step (the optimizer already holds its
/// state), and the bytes in use before it.
fn measure(
    model: &mut Sequential,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    y: &Tensor,
    loss: PlanLoss,
) -> (usize, usize) {
    step(model, opt, x, y, loss); // warm-up: optimizer state, pool caches
    model.zero_grad();
    let before = pool::stats().bytes_in_use;
    pool::reset_peak();
    step(model, opt, x, y, loss);
    (pool::stats().peak_bytes_in_use, before)
}

fn inputs(batch: usize, features: usize, out: &[usize], loss: PlanLoss) -> (Tensor, Tensor) {
    let x = Tensor::randn([batch, features], Some(1));
    let y = match loss {
        PlanLoss::CrossEntropy => {
            let c = out[1];
            Tensor::from_vec((0..batch).map(|i| (i % c) as f32).collect(), [batch]).unwrap()
        }
        PlanLoss::Mse => Tensor::randn(out, Some(2)),
    };
    (x, y)
}

/// Plans and measures one step of an MLP; returns (plan, measured peak).
fn check_mlp(
    sizes: &[usize],
    batch: usize,
    mode: Mode,
    adam: bool,
    loss: PlanLoss,
) -> (MemoryPlan, usize) {
    let mut model = mlp(sizes);
    freeze(&mut model, mode);
    let mut opt: Box<dyn Optimizer> = if adam {
        Box::new(Adam::new(&trainable(&model), AdamConfig::default()))
    } else {
        Box::new(Sgd::new(
            &trainable(&model),
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            },
        ))
    };
    let out = [batch, *sizes.last().unwrap()];
    let (x, y) = inputs(batch, sizes[0], &out, loss);
    let plan = plan_step(&model, &[batch, sizes[0]], loss, &*opt).unwrap();
    let (peak, before) = measure(&mut model, &mut *opt, &x, &y, loss);
    let persistent = plan.at_peak(Category::Parameters) + plan.at_peak(Category::OptimizerState);
    let err = (plan.peak_bytes() as f64 - peak as f64).abs() / peak as f64;
    eprintln!(
        "{sizes:?} batch {batch} {mode:?}: planned {} measured {peak} ({:+.2} %)",
        plan.peak_bytes(),
        (plan.peak_bytes() as f64 / peak as f64 - 1.0) * 100.0
    );
    assert!(
        err <= 0.10,
        "{sizes:?} batch {batch} {mode:?}: planned {} bytes, measured {peak} (in use before \
         {before}, planned parameters + state {persistent}); {:.1} % off\n{plan}",
        plan.peak_bytes(),
        err * 100.0
    );
    (plan, peak)
}

/// Full fine-tune, last layer only and bias-only of one MLP: each plan
/// matches its measured peak, and freezing saves memory in both.
fn check_freezing(sizes: &[usize], batch: usize) {
    let mut peaks = Vec::new();
    for mode in [Mode::Full, Mode::LastLayer, Mode::BiasOnly] {
        let (plan, peak) = check_mlp(sizes, batch, mode, true, PlanLoss::CrossEntropy);
        peaks.push((plan.peak_bytes(), peak));
    }
    assert!(
        peaks[1].0 < peaks[0].0 && peaks[1].1 < peaks[0].1,
        "{peaks:?}"
    );
    assert!(
        peaks[2].0 < peaks[0].0 && peaks[2].1 < peaks[0].1,
        "{peaks:?}"
    );
}

#[test]
fn digits_mlp_plans_match_the_measured_peak() {
    let _g = lock();
    check_freezing(&[64, 128, 64, 10], 32);
}

#[test]
fn large_mlp_plans_match_the_measured_peak() {
    let _g = lock();
    // Batch 16 keeps the debug-build step cheap on the scalar path and
    // under qemu; the README's table (examples/memory_plan) uses batch 64.
    check_freezing(&[784, 1024, 1024, 10], 16);
}

#[test]
fn mse_and_sgd_plans_match_the_measured_peak() {
    let _g = lock();
    check_mlp(&[20, 300, 7], 50, Mode::Full, false, PlanLoss::Mse);
    check_mlp(
        &[20, 300, 300, 7],
        200,
        Mode::LastLayer,
        false,
        PlanLoss::Mse,
    );
}

/// Bytes in use after `f` builds a graph (the graph and its result alive),
/// minus before.
fn held_by(f: impl FnOnce() -> Tensor) -> usize {
    let before = pool::stats().bytes_in_use;
    let y = f();
    let held = pool::stats().bytes_in_use - before;
    drop(y);
    held
}

#[test]
fn ops_save_only_what_wanted_gradients_read() {
    let _g = lock();
    let x = Tensor::randn([256, 512], Some(3));
    let act = pool::block_bytes(256 * 512); // one [256, 512] buffer
    let out = pool::block_bytes(256 * 64);
    for (w_grad, b_grad) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut w = Tensor::randn([64, 512], Some(4));
        w.set_requires_grad(w_grad);
        let mut b = Tensor::randn([64], Some(5));
        b.set_requires_grad(b_grad);
        // The relu output is a temporary: it stays alive only if the linear
        // layer saves it, which it must do exactly when the weight trains.
        let held = held_by(|| x.relu().linear(&w, Some(&b)));
        let expect = out + if w_grad { act } else { 0 };
        assert_eq!(held, expect, "weight grad {w_grad}, bias grad {b_grad}");
        // A frozen layer records nothing: no node, no backward work.
        let y = x.relu().linear(&w, Some(&b));
        assert_eq!(y.requires_grad(), w_grad || b_grad);
        assert_eq!(y.grad_fn_name().is_some(), w_grad || b_grad);
    }
    // matmul and mul: each operand is kept only for the other's gradient.
    let s = Tensor::randn([512, 64], Some(6)).with_requires_grad();
    let held = held_by(|| x.relu().matmul(&s));
    assert_eq!(held, out + act);
    let held = held_by(|| s.t().matmul(&x.relu().t()));
    assert_eq!(held, pool::block_bytes(64 * 256) + act);
    let frozen = Tensor::randn([512, 64], Some(7));
    let held = held_by(|| x.relu().with_requires_grad().matmul(&frozen));
    // Only the input's gradient is wanted, and it reads the frozen operand:
    // the temporary input is not kept.
    assert_eq!(held, out);
    let c = Tensor::full([1], 2.0).with_requires_grad();
    let held = held_by(|| x.relu().mul_tensor(&c));
    assert_eq!(held, act + act, "the product and the saved relu output");
    let held = held_by(|| x.relu().mul_tensor(&Tensor::full([1], 2.0)));
    assert_eq!(held, act, "nothing requires grad: only the product");
    let frozen = x.relu();
    let held = held_by(|| x.relu().with_requires_grad().mul_tensor(&frozen));
    assert_eq!(
        held, act,
        "the trained factor's temporary is not kept, only the product"
    );
    let held = held_by(|| frozen.mul_tensor(&x.relu().with_requires_grad()));
    assert_eq!(held, act, "the same with the operands swapped");
}

#[test]
fn frozen_prefix_does_no_backward_work() {
    let _g = lock();
    let mut model = mlp(&[32, 64, 64, 4]);
    freeze(&mut model, Mode::LastLayer);
    let x = Tensor::randn([8, 32], Some(1));
    let h = model.get(0).unwrap().forward(&x);
    assert!(!h.requires_grad() && h.grad_fn_name().is_none());
    let y = model.forward(&x);
    y.sum().backward();
    for (name, p) in model.named_parameters() {
        assert_eq!(p.grad().is_some(), name.starts_with('4'), "{name}");
    }
}

#[test]
fn a_plan_that_does_not_fit_the_budget_is_refused() {
    let _g = lock();
    let model = mlp(&[64, 128, 10]);
    let opt = Adam::new(&model.parameters(), AdamConfig::default());
    let plan = plan_step(&model, &[32, 64], PlanLoss::CrossEntropy, &opt).unwrap();
    assert!(plan.peak_reserved_bytes() > plan.peak_bytes());
    assert!(plan.check_against(None).is_ok());
    assert!(plan.check_against(Some(plan.peak_reserved_bytes())).is_ok());
    let err = plan
        .check_against(Some(plan.peak_reserved_bytes() - 1))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&plan.peak_reserved_bytes().to_string())
            && msg.contains(&(plan.peak_reserved_bytes() - 1).to_string()),
        "{msg}"
    );
    let names: Vec<&str> = plan.modules().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["0", "1", "2", "loss"], "model order, the loss last");
    // The table names every category and module.
    let table = plan.to_string();
    for needle in [
        "parameters",
        "optimizer state",
        "activations",
        "work buffers",
        "| 0 |",
        "| 2 |",
        "loss",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
}

#[test]
fn pooled_model_plan_matches_the_measured_peak() {
    let _g = lock();
    // Max pooling ahead of an MLP: [N, 4, 16, 16] -> [N, 4, 8, 8] -> 256.
    let mut model = Sequential::new()
        .with(MaxPool2d::new(2))
        .with(Flatten::default())
        .with(Linear::new(256, 96))
        .with(Relu)
        .with(Linear::new(96, 10));
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    let x = Tensor::randn([24, 4, 16, 16], Some(8));
    let y = Tensor::from_vec((0..24).map(|i| (i % 10) as f32).collect(), [24]).unwrap();
    let plan = plan_step(&model, &[24, 4, 16, 16], PlanLoss::CrossEntropy, &opt).unwrap();
    let (peak, _) = measure(&mut model, &mut opt, &x, &y, PlanLoss::CrossEntropy);
    let err = plan.peak_bytes().abs_diff(peak) as f64 / peak as f64;
    assert!(
        err <= 0.10,
        "planned {}, measured {peak}\n{plan}",
        plan.peak_bytes()
    );
    // A model with a layer that has no plan is refused, not planned wrong.
    let rnn = Sequential::new().with(train_station::nn::LayerNorm::new(&[8]));
    let e = plan_step(&rnn, &[2, 8], PlanLoss::Mse, &opt).unwrap_err();
    assert!(e.to_string().contains("plan"), "{e}");
}

/// Plans and measures one step of a CNN on `input`; returns (plan, peak).
fn check_cnn(
    mut model: Sequential,
    input: &[usize],
    classes: usize,
    adam: bool,
    what: &str,
) -> (MemoryPlan, usize) {
    let params = trainable(&model);
    let mut opt: Box<dyn Optimizer> = if adam {
        Box::new(Adam::new(&params, AdamConfig::default()))
    } else {
        Box::new(Sgd::new(
            &params,
            SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            },
        ))
    };
    // Extra handles to the parameters would make the in-place update copy.
    drop(params);
    let n = input[0];
    let x = Tensor::randn(input, Some(9));
    let y = Tensor::from_vec((0..n).map(|i| (i % classes) as f32).collect(), [n]).unwrap();
    let plan = plan_step(&model, input, PlanLoss::CrossEntropy, &*opt).unwrap();
    let (peak, before) = measure(&mut model, &mut *opt, &x, &y, PlanLoss::CrossEntropy);
    let err = plan.peak_bytes().abs_diff(peak) as f64 / peak as f64;
    eprintln!(
        "{what}: planned {} measured {peak} ({:+.2} %)",
        plan.peak_bytes(),
        (plan.peak_bytes() as f64 / peak as f64 - 1.0) * 100.0
    );
    assert!(
        err <= 0.10,
        "{what}: planned {} bytes, measured {peak} (in use before {before}); {:.1} % off\n{plan}",
        plan.peak_bytes(),
        err * 100.0
    );
    (plan, peak)
}

/// Conv2d (padded) + BatchNorm2d + ReLU + max pooling, a second Conv2d +
/// BatchNorm2d + ReLU + average pooling, then a Linear classifier.
fn small_cnn() -> Sequential {
    let pad1 = ConvOptions {
        padding: [1, 1],
        ..Default::default()
    };
    Sequential::new()
        .with(Conv2d::with_options(1, 8, 3, pad1))
        .with(BatchNorm2d::new(8))
        .with(Relu)
        .with(MaxPool2d::new(2))
        .with(Conv2d::new(8, 16, 3))
        .with(BatchNorm2d::new(16))
        .with(Relu)
        .with(AvgPool2d::new(2))
        .with(Flatten::default())
        .with(Linear::new(16 * 3 * 3, 10))
}

#[test]
fn batch_norm_1d_plan_matches_the_measured_peak() {
    let _g = lock();
    let mlp_bn = Sequential::new()
        .with(Linear::new(32, 64))
        .with(BatchNorm1d::new(64))
        .with(Relu)
        .with(Linear::new(64, 10));
    check_cnn(mlp_bn, &[40, 32], 10, true, "MLP + BatchNorm1d");
}

#[test]
fn cnn_plans_match_the_measured_peak() {
    let _g = lock();
    // [16, 1, 16, 16] -> conv 8 (pad 1) -> pool -> [16, 8, 8, 8] -> conv 16
    // -> [16, 16, 6, 6] -> avg pool -> [16, 16, 3, 3] -> 144 -> 10.
    let (full, _) = check_cnn(small_cnn(), &[16, 1, 16, 16], 10, true, "CNN, Adam");
    // Only the classifier trains: no gradient flows into the convolutions,
    // so they save nothing and do no backward work.
    let last_layer = || {
        let mut m = small_cnn();
        for (name, p) in m.named_parameters_mut() {
            p.set_requires_grad(name.starts_with("9."));
        }
        m
    };
    let (last, _) = check_cnn(last_layer(), &[16, 1, 16, 16], 10, true, "CNN, last layer");
    assert!(last.peak_bytes() < full.peak_bytes(), "{last}\n{full}");
    // The same with batch norm in evaluation mode (its running statistics).
    let mut eval = last_layer();
    eval.eval();
    check_cnn(eval, &[16, 1, 16, 16], 10, true, "CNN, last layer, eval");
    // Strided, dilated and grouped convolutions, no bias, global average
    // pooling; SGD with momentum.
    let opts = ConvOptions {
        stride: [2, 2],
        padding: [2, 1],
        dilation: [2, 1],
        groups: 2,
        bias: false,
    };
    let model = Sequential::new()
        .with(Conv2d::with_options(
            2,
            8,
            3,
            ConvOptions { groups: 1, ..opts },
        ))
        .with(BatchNorm2d::new(8))
        .with(Relu)
        .with(Conv2d::with_options(8, 12, [3, 2], opts))
        .with(AdaptiveAvgPool2d::new(2, 1))
        .with(Flatten::default())
        .with(Linear::new(24, 5));
    check_cnn(
        model,
        &[6, 2, 19, 15],
        5,
        false,
        "CNN, strided/grouped, SGD",
    );
}

#[test]
fn lora_plans_match_the_measured_peak() {
    let _g = lock();
    let (lora, _) = check_mlp(
        &[64, 128, 64, 10],
        32,
        Mode::Lora,
        true,
        PlanLoss::CrossEntropy,
    );
    let (full, _) = check_mlp(
        &[64, 128, 64, 10],
        32,
        Mode::Full,
        true,
        PlanLoss::CrossEntropy,
    );
    assert!(lora.peak_bytes() < full.peak_bytes(), "{lora}\n{full}");
    check_mlp(
        &[784, 1024, 1024, 10],
        16,
        Mode::Lora,
        true,
        PlanLoss::CrossEntropy,
    );
}

#[test]
fn cross_entropy_keeps_its_buffers_in_the_pool() {
    let _g = lock();
    let (n, c) = (300, 7);
    let x = Tensor::randn([n, c], Some(1)).with_requires_grad();
    let y = Tensor::from_vec((0..n).map(|i| (i % c) as f32).collect(), [n]).unwrap();
    let opts = CrossEntropyOptions::default();
    let before = pool::stats().bytes_in_use;
    pool::reset_peak();
    let l = cross_entropy(&x, &y, &opts);
    let (held, peak) = (
        pool::stats().bytes_in_use - before,
        pool::stats().peak_bytes_in_use - before,
    );
    let (probs, per_sample, out) = (
        pool::block_bytes(n * c),
        pool::block_bytes(n),
        pool::block_bytes(1),
    );
    // Kept for backward: the probabilities and the class indices.
    assert_eq!(held, probs + per_sample + out);
    // While it ran, the per-sample losses too.
    assert_eq!(peak, probs + 2 * per_sample + out);
    // Backward: the seed (a 0-D one), the per-row scales and the gradient,
    // then both saved buffers go.
    pool::reset_peak();
    let at = pool::stats().bytes_in_use;
    l.backward();
    let grad = pool::block_bytes(n * c);
    assert_eq!(
        pool::stats().peak_bytes_in_use - at,
        out + per_sample + grad
    );
    drop(l);
    assert_eq!(
        pool::stats().bytes_in_use - before,
        grad,
        "only x's gradient is left"
    );
}

/// A captured step holds all of its buffers from the capture on: once the
/// optimizer has its state, a step ends with the pool as it found it, and
/// its peak above that is the largest GEMM packing scratch among its five
/// products (the only pool memory it takes while it runs); the capture's
/// own buffers are what `CapturedStep::bytes` reports.
#[test]
fn a_warm_captured_step_takes_only_gemm_scratch() {
    use train_station::kernels::gemm::{Config, scratch_bytes};
    use train_station::nn::capture::CapturedStep;
    let rm = |r: usize, c: usize| (r, c, c, 1);
    let tr = |r: usize, c: usize| (r, c, 1, r);
    let cfg = Config::current();
    // Forward x W1^T, h W2^T; backward dx2 = g W2, dW2 = g^T h, dW1 = g^T x.
    let scratch = [
        scratch_bytes(cfg, 1, rm(16, 64), tr(64, 32), rm(16, 32)),
        scratch_bytes(cfg, 1, rm(16, 32), tr(32, 10), rm(16, 10)),
        scratch_bytes(cfg, 1, rm(16, 10), rm(10, 32), rm(16, 32)),
        scratch_bytes(cfg, 1, tr(10, 16), rm(16, 32), rm(10, 32)),
        scratch_bytes(cfg, 1, tr(32, 16), rm(16, 64), rm(32, 64)),
    ];
    let _g = lock();
    let mut model = mlp(&[64, 32, 10]);
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    let (x, y) = inputs(16, 64, &[16, 10], PlanLoss::CrossEntropy);
    let before_capture = pool::stats().bytes_in_use;
    let mut step = CapturedStep::new(&model, 16, 64, PlanLoss::CrossEntropy).unwrap();
    let held = pool::stats().bytes_in_use - before_capture;
    assert!(
        held >= step.bytes() && held < step.bytes() + 16 * 1024,
        "{held} vs {}",
        step.bytes()
    );
    step.step(&mut model, &mut opt, &x, &y).unwrap();
    let s0 = pool::stats();
    let before = s0.bytes_in_use;
    pool::reset_peak();
    for _ in 0..3 {
        step.step(&mut model, &mut opt, &x, &y).unwrap();
    }
    let s1 = pool::stats();
    assert_eq!(
        s1.peak_bytes_in_use - before,
        scratch.into_iter().max().unwrap()
    );
    assert_eq!(s1.bytes_in_use, before);
    let takes = scratch.iter().filter(|&&b| b > 0).count();
    assert_eq!(s1.hits + s1.misses - s0.hits - s0.misses, 3 * takes);
}

/// A product's pool traffic is what `scratch_bytes` predicts: none for a
/// rank-one product (no scratch at all) or, with `std`, for a one-thread
/// product needing at most 4 KiB (its scratch is on the stack; without `std`
/// it takes a pool block), one block of the predicted size for a larger
/// one (a column-major A whose k block spans past the first-level TLB's
/// reach: packed in blocks on every path), and two for `x W^T` at a batch of
/// 48 or 64 where it is computed transposed (the transposed result and the
/// packing; one elsewhere).
#[test]
fn gemm_pool_scratch_matches_scratch_bytes() {
    use train_station::kernels::gemm::{
        Batch, Config, Epilogue, MatMut, MatRef, scratch_bytes, sgemm_with,
    };
    let cfg = Config {
        threads: 1,
        ..Config::current()
    };
    // (m, n, k, A column-major, B column-major, pool block expected): rank
    // one, a GEMV (its 96 floats of scratch on the stack with `std`), a
    // 600x96x128 product (A's k block spans 600 x 128 values, past the 64 Ki
    // a column-major A is read in place within; a 96x96x96 one would be read
    // in place, and on the scalar path needs no scratch at all).
    let small_pooled = usize::from(!cfg!(feature = "std"));
    // A batch that is a whole number of the path's tile widths (12 on NEON,
    // 16 or 64 on x86_64), computed transposed on the SIMD paths with `std`.
    let batch = if cfg!(target_arch = "aarch64") {
        48
    } else {
        64
    };
    let transposed = cfg!(feature = "std") && cfg.isa != train_station::kernels::Isa::Scalar;
    for (m, n, k, at, bt, blocks) in [
        (32, 64, 1, false, false, 0),
        (1, 32, 64, false, true, small_pooled),
        (600, 96, 128, true, false, 1),
        (batch, 256, 784, false, true, 1 + usize::from(transposed)),
    ] {
        let layout = |r: usize, c: usize, t: bool| if t { (r, c, 1, r) } else { (r, c, c, 1) };
        let (al, bl, cl) = (layout(m, k, at), layout(k, n, bt), layout(m, n, false));
        let want = scratch_bytes(cfg, 1, al, bl, cl);
        assert_eq!(want > 0, blocks > 0, "{m}x{n}x{k}: scratch_bytes {want}");
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let _g = lock();
        // This thread's cache and the depot go back to the system, so a block
        // the product takes comes from the system and, freed, is cached:
        // the cached bytes then grow by exactly its size. The totals are
        // global, and another thread's late report (a test thread exiting
        // hands its counts over) can land inside the window: once under qemu
        // the peak, once the cached bytes (9,984 bytes more). So up to three
        // tries; a wrong prediction fails all three.
        let mut got = (0, 0, 0);
        for _ in 0..3 {
            pool::trim();
            let s0 = pool::stats();
            sgemm_with(
                cfg,
                Batch::ONE,
                1.0,
                MatRef::new(&a, m, k, al.2, al.3),
                MatRef::new(&b, k, n, bl.2, bl.3),
                0.0,
                MatMut::row_major(&mut c, m, n),
                Epilogue::NONE,
            );
            let s1 = pool::stats();
            got = (
                s1.hits + s1.misses - s0.hits - s0.misses,
                s1.misses - s0.misses,
                s1.bytes_cached.wrapping_sub(s0.bytes_cached),
            );
            if got == (blocks, blocks, want) {
                break;
            }
        }
        assert_eq!(got.0, blocks, "{m}x{n}x{k}: pool blocks taken");
        assert_eq!(got.1, blocks, "{m}x{n}x{k}: misses");
        assert_eq!(got.2, want, "{m}x{n}x{k}: bytes of the blocks taken");
        assert!(
            c.iter().all(|&x| x == 0.125 * k as f32),
            "{m}x{n}x{k}: result"
        );
    }
}
