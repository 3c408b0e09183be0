//! Running out of memory never corrupts a model (issue 13, section 2).
//!
//! For each model and optimizer below, one training step is counted in pool
//! allocations; then, for every N below that count, the N-th allocation of
//! the step and every one after it are made to fail (the pool's test hook).
//! Each time the step must return `Error::OutOfMemory` and leave parameters,
//! gradients, optimizer state, batch-norm running statistics and generator
//! states bit-identical to before; and the next step, with memory back, must
//! give bit-identical results to a run that never failed. The same holds when
//! a smaller byte budget is set mid-training and a bigger batch arrives.
//!
//! The hook and the budget are global, so the tests here take turns.

use std::sync::{Mutex, MutexGuard};

use train_station::nn::loss::{CrossEntropyOptions, try_cross_entropy};
use train_station::nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, ConvOptions, Dropout, Embedding, Flatten,
    Gelu, GroupNorm, LayerNorm, LeakyRelu, Linear, MaxPool2d, Module, MultiheadAttention,
    MultiheadAttentionOptions, Relu, Sequential, Sigmoid, Silu, Softplus, Tanh, Upsample,
};
use train_station::optim::{
    Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
    StepSnapshot, clip_grad_norm, clip_grad_value, try_train_step,
};
use train_station::tensor::pool;
use train_station::{Error, Result, Tensor, manual_seed};

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes this file's turn at the global hook and budget; clears both when
/// dropped (also when an assertion panics).
struct Turn(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Turn {
    fn take() -> Turn {
        Turn(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        pool::fail_allocations_after(None);
        pool::set_budget(None);
    }
}

type Model = Box<dyn Module>;
type Opt = Box<dyn Optimizer>;

// -------------------------------------------------------------- the models

fn mlp() -> Model {
    manual_seed(7);
    Box::new(
        Sequential::new()
            .with(Linear::new(6, 12))
            .with(Relu)
            .with(Dropout::try_new(0.25, Some(3)).unwrap())
            .with(Linear::new(12, 3)),
    )
}

fn cnn() -> Model {
    manual_seed(11);
    let conv = ConvOptions {
        padding: [1, 1],
        ..Default::default()
    };
    Box::new(
        Sequential::new()
            .with(Conv2d::with_options(1, 3, 3, conv))
            .with(BatchNorm2d::new(3))
            .with(Relu)
            .with(MaxPool2d::new(2))
            .with(Flatten::default())
            .with(Linear::new(3 * 3 * 3, 3)),
    )
}

/// Many layer kinds in one model, to find any that panics on a failed
/// allocation instead of returning the error.
fn zoo() -> Model {
    manual_seed(13);
    let conv = ConvOptions {
        padding: [1, 1],
        ..Default::default()
    };
    Box::new(
        Sequential::new()
            .with(Conv2d::with_options(1, 4, 3, conv))
            .with(GroupNorm::new(2, 4))
            .with(Gelu::default())
            .with(Upsample::with_size(8, 8))
            .with(AvgPool2d::new(2))
            .with(AdaptiveAvgPool2d::new(2, 2))
            .with(Flatten::default())
            .with(LayerNorm::new(&[16]))
            .with(Linear::new(16, 8))
            .with(Tanh)
            .with(Silu)
            .with(Softplus::default())
            .with(LeakyRelu::default())
            .with(Sigmoid)
            .with(Linear::new(8, 3)),
    )
}

/// Input `[n, 6]` (MLP) or `[n, 1, 6, 6]` (CNN) and class targets, the same
/// for a given `(n, step)` in every run.
fn batch(image: bool, n: usize, step: usize) -> (Tensor, Tensor) {
    let seed = 1000 + step as u64;
    let x = if image {
        Tensor::randn([n, 1, 6, 6], Some(seed))
    } else {
        Tensor::randn([n, 6], Some(seed))
    };
    let t: Vec<f32> = (0..n).map(|i| ((i + step) % 3) as f32).collect();
    (x, Tensor::from_slice(&t, [n]).unwrap())
}

fn loss(m: &dyn Module, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    try_cross_entropy(&m.try_forward(x)?, t, &CrossEntropyOptions::default())
}

/// The library's step.
fn plain_step(m: &mut Model, opt: &mut Opt, x: &Tensor, t: &Tensor) -> Result<f32> {
    try_train_step(m, &mut **opt, |m| loss(m, x, t))
}

/// A custom step made atomic with a snapshot: both clipping helpers between
/// backward and the update.
fn clipped_step(m: &mut Model, opt: &mut Opt, x: &Tensor, t: &Tensor) -> Result<f32> {
    let snapshot = StepSnapshot::capture(&**m);
    let r = (|| {
        m.zero_grad();
        let l = loss(&**m, x, t)?;
        let v = l.try_item()?;
        l.try_backward()?;
        drop(l);
        clip_grad_value(&m.parameters(), 0.5)?;
        clip_grad_norm(&m.parameters(), 0.1, 2.0)?;
        opt.step(&mut m.parameters_mut())?;
        Ok(v)
    })();
    if r.is_err() {
        snapshot.restore(&mut **m);
    }
    r
}

type StepFn = fn(&mut Model, &mut Opt, &Tensor, &Tensor) -> Result<f32>;

struct Case {
    build: fn() -> (Model, Opt),
    image: bool,
    step: StepFn,
}

// --------------------------------------------------- comparing bit for bit

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// Everything a step may change, as bits (parameter ids left out, so two
/// runs compare).
#[derive(Debug, PartialEq)]
struct State {
    params: Vec<Vec<u32>>,
    grads: Vec<Option<Vec<u32>>>,
    buffers: Vec<(String, Vec<u32>)>,
    rngs: Vec<(String, [u64; 4])>,
    opt: Vec<Vec<(String, Vec<u32>)>>,
    hyper: Vec<Vec<(String, f32)>>,
}

fn state(m: &Model, opt: &Opt) -> State {
    let mut rngs = Vec::new();
    m.visit_rng_states("", &mut |n, s| rngs.push((n.to_string(), s)));
    let mut buffers = Vec::new();
    m.visit_buffers("", &mut |n, b| buffers.push((n.to_string(), bits(b))));
    let st = opt.export_state();
    State {
        params: m.parameters().iter().map(bits).collect(),
        grads: m
            .parameters()
            .iter()
            .map(|p| p.grad().map(|g| bits(&g)))
            .collect(),
        buffers,
        rngs,
        opt: st
            .params
            .iter()
            .map(|(_, ts)| ts.iter().map(|(n, t)| (n.clone(), bits(t))).collect())
            .collect(),
        hyper: st.groups.iter().map(|g| g.hyper.clone()).collect(),
    }
}

// ------------------------------------------------------------- the sweep

/// `warm` steps, then the states after each of two more steps of a run
/// that never fails.
fn reference(case: &Case, warm: usize, n: usize) -> Vec<State> {
    let (mut m, mut opt) = (case.build)();
    let mut out = Vec::new();
    for s in 0..warm + 2 {
        let (x, t) = batch(case.image, n, s);
        (case.step)(&mut m, &mut opt, &x, &t).unwrap();
        if s >= warm {
            out.push(state(&m, &opt));
        }
    }
    out
}

/// A model and optimizer after `warm` steps, and the batch of the next.
fn warmed(case: &Case, warm: usize, n: usize) -> (Model, Opt, Tensor, Tensor) {
    let (mut m, mut opt) = (case.build)();
    for s in 0..warm {
        let (x, t) = batch(case.image, n, s);
        (case.step)(&mut m, &mut opt, &x, &t).unwrap();
    }
    let (x, t) = batch(case.image, n, warm);
    (m, opt, x, t)
}

/// Sweeps the step after `warm` steps, for each `warm` in `warms`: 0 is
/// the first step (optimizer state created lazily), 1 a later one (state,
/// gradients and running statistics from before).
fn sweep(case: &Case, warms: &[usize]) {
    let _turn = Turn::take();
    let n = 4;
    for &warm in warms {
        let expect = reference(case, warm, n);

        let (mut m, mut opt, x, t) = warmed(case, warm, n);
        const LOTS: usize = 1 << 40;
        pool::fail_allocations_after(Some(LOTS));
        (case.step)(&mut m, &mut opt, &x, &t).unwrap();
        let count = LOTS - pool::allocations_left().unwrap();
        pool::fail_allocations_after(None);
        assert_eq!(state(&m, &opt), expect[0], "counting run");
        assert!(count > 10, "a step allocates ({count})");

        for fail_at in 0..count {
            let (mut m, mut opt, x, t) = warmed(case, warm, n);
            let before = state(&m, &opt);
            pool::fail_allocations_after(Some(fail_at));
            let r = (case.step)(&mut m, &mut opt, &x, &t);
            pool::fail_allocations_after(None);
            let ctx = format!("warm {warm}, allocation {fail_at} of {count}");
            assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{ctx}: {r:?}");
            assert_eq!(state(&m, &opt), before, "{ctx}: changed by the failed step");
            (case.step)(&mut m, &mut opt, &x, &t).unwrap();
            assert_eq!(state(&m, &opt), expect[0], "{ctx}: retried step");
            // And the one after (every few N: time under emulation).
            if fail_at % 8 == 0 || fail_at + 1 == count {
                let (x, t) = batch(case.image, n, warm + 1);
                (case.step)(&mut m, &mut opt, &x, &t).unwrap();
                assert_eq!(state(&m, &opt), expect[1], "{ctx}: step after");
            }
        }
    }
}

fn adam_mlp() -> (Model, Opt) {
    let m = mlp();
    let cfg = AdamConfig {
        lr: 0.01,
        amsgrad: true,
        ..Default::default()
    };
    let opt = Adam::new(&m.parameters(), cfg);
    (m, Box::new(opt))
}

fn adamw_mlp() -> (Model, Opt) {
    let m = mlp();
    let opt = AdamW::new(&m.parameters(), AdamWConfig::default());
    (m, Box::new(opt))
}

fn sgd_cnn() -> (Model, Opt) {
    let m = cnn();
    let cfg = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-3,
        ..Default::default()
    };
    let opt = Sgd::new(&m.parameters(), cfg);
    (m, Box::new(opt))
}

fn rmsprop_cnn() -> (Model, Opt) {
    let m = cnn();
    let cfg = RmsPropConfig {
        lr: 0.01,
        momentum: 0.5,
        centered: true,
        ..Default::default()
    };
    let opt = RmsProp::new(&m.parameters(), cfg);
    (m, Box::new(opt))
}

fn adam_zoo() -> (Model, Opt) {
    let m = zoo();
    let opt = Adam::new(&m.parameters(), AdamConfig::default());
    (m, Box::new(opt))
}

/// Fails every allocation of a step in a row on one model (each failure
/// leaves it unchanged, so each starts where the first did; cheaper than a
/// fresh model per failure), then checks one step with memory back. The
/// model has taken one step on `(x, t)` before.
fn chained_sweep(build: fn() -> (Model, Opt), x: &Tensor, t: &Tensor) {
    let warmed = || {
        let (mut m, mut opt) = build();
        plain_step(&mut m, &mut opt, x, t).unwrap();
        (m, opt)
    };
    let (mut m, mut opt) = warmed();
    let before = state(&m, &opt);
    let count = count_allocations(|| {
        plain_step(&mut m, &mut opt, x, t).unwrap();
    });
    let expect = state(&m, &opt);
    let (mut m, mut opt) = warmed();
    for fail_at in 0..count {
        pool::fail_allocations_after(Some(fail_at));
        let r = plain_step(&mut m, &mut opt, x, t);
        pool::fail_allocations_after(None);
        let ctx = format!("allocation {fail_at} of {count}");
        assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{ctx}: {r:?}");
        assert_eq!(state(&m, &opt), before, "{ctx}: changed by the failed step");
    }
    plain_step(&mut m, &mut opt, x, t).unwrap();
    assert_eq!(state(&m, &opt), expect, "step after {count} failures");
}

#[test]
fn many_layers_adam_every_allocation() {
    let _turn = Turn::take();
    let (x, t) = batch(true, 4, 0);
    chained_sweep(adam_zoo, &x, &t);
}

/// Embedding, multi-head self-attention (with dropout) and a linear head,
/// over `[L = 5, N = 4]` token indices; each of the 5 positions is a sample.
#[test]
fn attention_adamw_every_allocation() {
    let _turn = Turn::take();
    fn build() -> (Model, Opt) {
        manual_seed(17);
        let attn = MultiheadAttentionOptions {
            dropout: 0.2,
            seed: Some(4),
            ..Default::default()
        };
        let m: Model = Box::new(
            Sequential::new()
                .with(Embedding::new(10, 8))
                .with(MultiheadAttention::with_options(8, 2, attn))
                .with(Flatten::default())
                .with(Linear::new(4 * 8, 3)),
        );
        let opt = AdamW::new(&m.parameters(), AdamWConfig::default());
        (m, Box::new(opt))
    }
    let idx: Vec<f32> = (0..20).map(|i| ((i * 7) % 10) as f32).collect();
    let x = Tensor::from_slice(&idx, [5, 4]).unwrap();
    let t = Tensor::from_slice(&[0.0, 1.0, 2.0, 1.0, 0.0], [5]).unwrap();
    chained_sweep(build, &x, &t);
}

#[test]
fn mlp_adam_amsgrad_every_allocation() {
    sweep(
        &Case {
            build: adam_mlp,
            image: false,
            step: plain_step,
        },
        &[0, 1],
    );
}

#[test]
fn mlp_adamw_clipped_every_allocation() {
    sweep(
        &Case {
            build: adamw_mlp,
            image: false,
            step: clipped_step,
        },
        &[0, 1],
    );
}

#[test]
fn cnn_batchnorm_sgd_momentum_every_allocation() {
    sweep(
        &Case {
            build: sgd_cnn,
            image: true,
            step: plain_step,
        },
        &[0, 1],
    );
}

/// The first step only (momentum and centered buffers created lazily); the
/// SGD case covers later steps.
#[test]
fn cnn_batchnorm_rmsprop_every_allocation() {
    sweep(
        &Case {
            build: rmsprop_cnn,
            image: true,
            step: plain_step,
        },
        &[0],
    );
}

// ------------------------------------------------------------ the budget

/// Training at batch 4, the budget is lowered to what the pool holds plus a
/// little, and a batch of 256 arrives: the step fails with `OutOfMemory`,
/// changes nothing, and once the budget is lifted training continues exactly
/// as a run that never saw the big batch.
#[test]
fn lowered_budget_mid_training() {
    let _turn = Turn::take();
    for (build, image) in [
        (sgd_cnn as fn() -> (Model, Opt), true),
        (rmsprop_cnn, true),
        (adam_mlp, false),
    ] {
        let case = Case {
            build,
            image,
            step: plain_step,
        };
        let expect = reference(&case, 2, 4);
        let (mut m, mut opt, x, t) = warmed(&case, 2, 4);
        let before = state(&m, &opt);
        let (big_x, big_t) = batch(image, 256, 99);
        pool::trim();
        let held = pool::stats().bytes_reserved;
        pool::set_budget(Some(held + (8 << 10)));
        let r = plain_step(&mut m, &mut opt, &big_x, &big_t);
        assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{r:?}");
        assert_eq!(state(&m, &opt), before, "changed by the failed step");
        // A batch that fits still trains under the budget, and memory comes
        // back for the rest.
        let r = plain_step(&mut m, &mut opt, &x, &t);
        pool::set_budget(None);
        if r.is_err() {
            assert_eq!(state(&m, &opt), before, "changed by the failed small step");
            plain_step(&mut m, &mut opt, &x, &t).unwrap();
        }
        assert_eq!(state(&m, &opt), expect[0]);
        let (x, t) = batch(image, 4, 3);
        plain_step(&mut m, &mut opt, &x, &t).unwrap();
        assert_eq!(state(&m, &opt), expect[1]);
    }
}

// ------------------------------------------- each piece atomic on its own

/// Allocations made by `f`, counted with the pool's hook.
fn count_allocations(f: impl FnOnce()) -> usize {
    const LOTS: usize = 1 << 40;
    pool::fail_allocations_after(Some(LOTS));
    f();
    let left = pool::allocations_left().unwrap();
    pool::fail_allocations_after(None);
    LOTS - left
}

/// Runs `piece` on a fresh warmed model for every allocation it makes,
/// failing that allocation and all after it: each run must return
/// `OutOfMemory` and change nothing.
/// `piece` gets the model and optimizer one step into training (gradients
/// and optimizer state exist) and the next loss, back-propagated already if
/// `backward_first`.
fn sweep_piece(
    case: &Case,
    what: &str,
    backward_first: bool,
    piece: impl Fn(&mut Model, &mut Opt, &Tensor) -> Result<()>,
) {
    let setup = || {
        let (m, opt, x, t) = warmed(case, 1, 4);
        let l = loss(&*m, &x, &t).unwrap();
        if backward_first {
            l.backward();
        }
        (m, opt, l)
    };
    let (mut m, mut opt, l) = setup();
    let count = count_allocations(|| piece(&mut m, &mut opt, &l).unwrap());
    assert!(count > 0, "{what} allocates");
    for fail_at in 0..count {
        let (mut m, mut opt, l) = setup();
        let before = state(&m, &opt);
        pool::fail_allocations_after(Some(fail_at));
        let r = piece(&mut m, &mut opt, &l);
        pool::fail_allocations_after(None);
        let ctx = format!("{what}: allocation {fail_at} of {count}");
        assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{ctx}: {r:?}");
        assert_eq!(state(&m, &opt), before, "{ctx}: changed by the failed call");
    }
}

/// Backward adds into existing gradients all or nothing, and the optimizer
/// step (here copying parameters held elsewhere) updates all or nothing,
/// without a snapshot.
#[test]
fn backward_and_step_are_atomic_alone() {
    let _turn = Turn::take();
    let cases = [
        (adam_mlp as fn() -> (Model, Opt), false),
        (sgd_cnn, true),
        (rmsprop_cnn, true),
    ];
    for (build, image) in cases {
        let case = Case {
            build,
            image,
            step: plain_step,
        };
        // Adds into the gradients of the warm-up step.
        sweep_piece(&case, "backward", false, |_, _, l| l.try_backward());
        sweep_piece(&case, "step", true, |m, opt, _| {
            // Handles held across the step share every parameter's buffer,
            // so the step must copy each one before updating it.
            let _held = m.parameters();
            opt.step(&mut m.parameters_mut())
        });
        sweep_piece(&case, "clip_grad_norm", true, |m, _, _| {
            let _held: Vec<Tensor> = m.parameters().iter().filter_map(Tensor::grad).collect();
            clip_grad_norm(&m.parameters(), 1e-3, 2.0).map(|_| ())
        });
        sweep_piece(&case, "clip_grad_value", true, |m, _, _| {
            let _held: Vec<Tensor> = m.parameters().iter().filter_map(Tensor::grad).collect();
            clip_grad_value(&m.parameters(), 1e-4)
        });
    }
}

/// Saving and loading a checkpoint under memory pressure: an optimizer's
/// export copies its step counters into new scalar tensors, which panicked
/// on a full pool; now both directions return `OutOfMemory` at every
/// allocation, and a failed load changes nothing.
#[test]
fn checkpoints_save_and_load_are_errors_when_memory_runs_out() {
    use train_station::io::{checkpoint_from_bytes, checkpoint_to_bytes};
    let _turn = Turn::take();
    for (build, image) in [
        (adam_mlp as fn() -> (Model, Opt), false),
        (rmsprop_cnn, true),
    ] {
        let case = Case {
            build,
            image,
            step: plain_step,
        };
        sweep_piece(&case, "checkpoint_to_bytes", false, |m, opt, _| {
            checkpoint_to_bytes(&**m, Some(&**opt), None, 1, &[]).map(|_| ())
        });
        // A checkpoint one step further on, loaded into the warmed model.
        let (mut m, mut opt, x, t) = warmed(&case, 2, 4);
        plain_step(&mut m, &mut opt, &x, &t).unwrap();
        let bytes = checkpoint_to_bytes(&*m, Some(&*opt), None, 3, &[]).unwrap();
        sweep_piece(&case, "checkpoint_from_bytes", false, |m, opt, _| {
            checkpoint_from_bytes(&bytes, &mut **m, Some(&mut **opt), None).map(|_| ())
        });
    }
}

/// A layer's forward in training mode changes its buffers and generator
/// only together with producing the output. (Across a model, a later layer
/// can still fail after an earlier one committed; `try_train_step` and
/// `StepSnapshot` undo that.)
#[test]
fn layer_forward_commits_state_with_its_output() {
    let _turn = Turn::take();
    let x = Tensor::randn([4, 3, 5, 5], Some(9));
    let layers: [fn() -> Box<dyn Module>; 2] = [
        || Box::new(BatchNorm2d::new(3)),
        || Box::new(Dropout::try_new(0.5, Some(1)).unwrap()),
    ];
    for make in layers {
        let layer_state = |m: &dyn Module| {
            let mut s = Vec::new();
            m.visit_buffers("", &mut |n, b| s.push((n.to_string(), bits(b), [0; 4])));
            m.visit_rng_states("", &mut |n, r| s.push((n.to_string(), Vec::new(), r)));
            s
        };
        let warm = || {
            let m = make();
            m.forward(&x);
            m
        };
        let m = warm();
        let count = count_allocations(|| drop(m.try_forward(&x).unwrap()));
        assert!(count > 0);
        for fail_at in 0..count {
            let m = warm();
            let before = layer_state(&*m);
            pool::fail_allocations_after(Some(fail_at));
            let r = m.try_forward(&x);
            pool::fail_allocations_after(None);
            assert!(
                matches!(r, Err(Error::OutOfMemory { .. })),
                "{fail_at}: {r:?}"
            );
            assert_eq!(layer_state(&*m), before, "allocation {fail_at} of {count}");
        }
    }
}

/// The hook: `n` allocations succeed, then every one fails with the error a
/// budget overrun gives, until it is disarmed.
#[test]
fn hook_fails_from_the_nth_allocation_on() {
    let _turn = Turn::take();
    assert_eq!(pool::allocations_left(), None);
    pool::fail_allocations_after(Some(2));
    let a = Tensor::try_zeros([3]);
    assert_eq!(pool::allocations_left(), Some(1));
    let b = Tensor::try_ones([5]);
    assert_eq!(pool::allocations_left(), Some(0));
    let c = Tensor::try_zeros([7]);
    let d = Tensor::try_zeros([1]);
    pool::fail_allocations_after(None);
    assert!(a.is_ok() && b.is_ok());
    for r in [c, d] {
        match r {
            Err(Error::OutOfMemory { requested, .. }) => assert!(requested > 0),
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
    }
    assert_eq!(pool::allocations_left(), None);
    assert!(Tensor::try_zeros([7]).is_ok());
}

/// Upsample's index of source positions comes from the pool, so a budget
/// refuses it (found by the `shape_ops` fuzz target: a 2^31-entry index was
/// a heap `Vec`, outside any budget, allocated before the output).
#[test]
fn upsample_index_is_refused_by_the_budget() {
    let _turn = Turn::take();
    let x = Tensor::ones([1, 1, 2, 2]);
    pool::trim();
    let budget = pool::stats().bytes_reserved + (1 << 20);
    pool::set_budget(Some(budget));
    let e = Upsample::with_size(1 << 31, 1).try_forward(&x).unwrap_err();
    match e {
        Error::OutOfMemory {
            requested,
            budget: b,
            ..
        } => {
            assert_eq!(b, budget, "refused by the budget");
            assert_eq!(requested, 4 << 31, "the index tensor");
        }
        e => panic!("{e}"),
    }
    let y = Upsample::with_scale(2.0, 3.0).try_forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 4, 6]);
}
