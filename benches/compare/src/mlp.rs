//! Training steps: the MLP 784-256-128-10 (ReLU, cross-entropy, Adam) on
//! train-station and candle-nn (AdamW with weight decay 0, which is Adam), and
//! the tiny 64-32-10 MLP (SGD) on train-station against the hand-written loop
//! of [`crate::plain`]. Before timing, each library takes one step from the
//! same weights on the same batch; its loss, gradients and the loss after the
//! update are checked against the f64 reference.

use candle_core::{DType, Device, Tensor as CTensor, Var};
use candle_nn::{AdamW, Module as _, Optimizer as _, ParamsAdamW};
use train_station::Tensor;
use train_station::nn::capture::CapturedStep;
use train_station::nn::loss::{CrossEntropyOptions, cross_entropy};
use train_station::nn::plan::PlanLoss;
use train_station::nn::{Linear, Module, Relu, Sequential};
use train_station::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

use crate::Pools;
use crate::plain::{AdamHyper, Mlp, Update};
use crate::report::Record;
use crate::timing::{Budget, Contender, check_close, data, interleaved, labels, time_iters};

/// Layer widths of the training-step workload.
pub const DIMS: [usize; 4] = [784, 256, 128, 10];
/// Layer widths of the tiny-model workload.
pub const TINY: [usize; 3] = [64, 32, 10];

const ADAM: AdamHyper = AdamHyper {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
};
const SGD_LR: f64 = 0.01;

/// FLOPs of one training step of [`DIMS`] at `batch`: forward, weight
/// gradients, and input gradients of layers 2 and 3 (none for layer 1).
pub fn step_flops(batch: usize) -> f64 {
    let b = batch as f64;
    let fwd = 2.0 * b * (784.0 * 256.0 + 256.0 * 128.0 + 128.0 * 10.0);
    fwd * 2.0 + 2.0 * b * (256.0 * 128.0 + 128.0 * 10.0)
}

/// Deterministic weights `[out, in]` and biases, uniform in +-1/sqrt(in).
fn init(dims: &[usize], seed: u64) -> Vec<(Vec<f32>, Vec<f32>)> {
    (0..dims.len() - 1)
        .map(|l| {
            let s = 1.0 / (dims[l] as f32).sqrt();
            let w = data(dims[l + 1] * dims[l], seed + 2 * l as u64);
            let b = data(dims[l + 1], seed + 2 * l as u64 + 1);
            (
                w.iter().map(|x| x * s).collect(),
                b.iter().map(|x| x * s).collect(),
            )
        })
        .collect()
}

/// A batch: inputs `[batch, in]` in [-1, 1) and labels.
struct Batch {
    x: Vec<f32>,
    y: Vec<usize>,
}

fn batches(n: usize, batch: usize, dims: &[usize], seed: u64) -> Vec<Batch> {
    (0..n as u64)
        .map(|i| Batch {
            x: data(batch * dims[0], seed + 100 * i),
            y: labels(batch, *dims.last().expect("dims"), seed + 100 * i + 1),
        })
        .collect()
}

/// train-station's model, optimizer and batches as tensors.
struct Ours {
    model: Sequential,
    opt: Box<dyn Optimizer>,
    data: Vec<(Tensor, Tensor)>,
    ce: CrossEntropyOptions,
}

impl Ours {
    fn new(params: &[(Vec<f32>, Vec<f32>)], rule: Update, data: &[Batch]) -> Ours {
        let mut model = Sequential::new();
        for (l, (w, b)) in params.iter().enumerate() {
            let (fo, fi) = (b.len(), w.len() / b.len());
            let w = Tensor::from_slice(w, [fo, fi])
                .expect("weight")
                .with_requires_grad();
            let b = Tensor::from_slice(b, [fo])
                .expect("bias")
                .with_requires_grad();
            model = model.with(Linear::from_parameters(w, Some(b)).expect("linear"));
            if l + 1 < params.len() {
                model = model.with(Relu);
            }
        }
        let ps = model.parameters();
        let opt: Box<dyn Optimizer> = match rule {
            Update::Sgd(lr) => Box::new(Sgd::new(
                &ps,
                SgdConfig {
                    lr: lr as f32,
                    ..SgdConfig::default()
                },
            )),
            Update::Adam(h) => Box::new(Adam::new(
                &ps,
                AdamConfig {
                    lr: h.lr as f32,
                    betas: (h.beta1 as f32, h.beta2 as f32),
                    eps: h.eps as f32,
                    ..AdamConfig::default()
                },
            )),
        };
        let data = data
            .iter()
            .map(|b| {
                let n = b.y.len();
                let x = Tensor::from_slice(&b.x, [n, b.x.len() / n]).expect("x");
                let y = Tensor::from_fn([n], |i| b.y[i[0]] as f32);
                (x, y)
            })
            .collect();
        Ours {
            model,
            opt,
            data,
            ce: CrossEntropyOptions::default(),
        }
    }

    /// One step on batch `i`; returns the loss tensor (computed before the
    /// update).
    fn step(&mut self, i: usize) -> Tensor {
        let (x, y) = &self.data[i % self.data.len()];
        let loss = cross_entropy(&self.model.forward(x), y, &self.ce);
        self.model.zero_grad();
        loss.backward();
        self.opt
            .step_module(&mut self.model)
            .expect("optimizer step");
        loss
    }

    /// One captured step ([`CapturedStep`]) on batch `i`; returns the loss
    /// (computed before the update).
    fn step_captured(&mut self, cap: &mut CapturedStep, i: usize) -> f32 {
        let (x, y) = &self.data[i % self.data.len()];
        cap.step(&mut self.model, self.opt.as_mut(), x, y)
            .expect("captured step")
    }

    fn loss(&self, i: usize) -> f32 {
        let (x, y) = &self.data[i];
        train_station::no_grad(|| cross_entropy(&self.model.forward(x), y, &self.ce).to_vec()[0])
    }

    /// Gradients as `[w1, b1, w2, b2, ...]`.
    fn grads(&self) -> Vec<Vec<f32>> {
        self.model
            .parameters()
            .iter()
            .map(|p| p.grad().expect("a gradient after backward").to_vec())
            .collect()
    }
}

/// candle-nn's model, optimizer and batches.
struct Theirs {
    layers: Vec<candle_nn::Linear>,
    vars: Vec<Var>,
    opt: AdamW,
    data: Vec<(CTensor, CTensor)>,
}

impl Theirs {
    fn new(params: &[(Vec<f32>, Vec<f32>)], data: &[Batch]) -> Theirs {
        let dev = Device::Cpu;
        let mut vars = Vec::new();
        let mut layers = Vec::new();
        for (w, b) in params {
            let (fo, fi) = (b.len(), w.len() / b.len());
            let w =
                Var::from_tensor(&CTensor::from_slice(w, (fo, fi), &dev).expect("w")).expect("var");
            let b = Var::from_tensor(&CTensor::from_slice(b, fo, &dev).expect("b")).expect("var");
            layers.push(candle_nn::Linear::new(
                w.as_tensor().clone(),
                Some(b.as_tensor().clone()),
            ));
            vars.push(w);
            vars.push(b);
        }
        let opt = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: ADAM.lr,
                beta1: ADAM.beta1,
                beta2: ADAM.beta2,
                eps: ADAM.eps,
                weight_decay: 0.0,
            },
        )
        .expect("AdamW");
        let data = data
            .iter()
            .map(|b| {
                let n = b.y.len();
                let x = CTensor::from_slice(&b.x, (n, b.x.len() / n), &dev).expect("x");
                let y: Vec<u32> = b.y.iter().map(|&c| c as u32).collect();
                let y = CTensor::from_vec(y, n, &dev)
                    .expect("y")
                    .to_dtype(DType::U32)
                    .expect("u32");
                (x, y)
            })
            .collect();
        Theirs {
            layers,
            vars,
            opt,
            data,
        }
    }

    fn loss_tensor(&self, i: usize) -> CTensor {
        let (x, y) = &self.data[i % self.data.len()];
        let mut h = x.clone();
        for (l, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h).expect("linear");
            if l + 1 < self.layers.len() {
                h = h.relu().expect("relu");
            }
        }
        candle_nn::loss::cross_entropy(&h, y).expect("cross_entropy")
    }

    /// One step on batch `i`; returns the loss and the gradients (in the
    /// order of `vars`).
    fn step(&mut self, i: usize, want_grads: bool) -> (f32, Vec<Vec<f32>>) {
        let loss = self.loss_tensor(i);
        let grads = loss.backward().expect("backward");
        let g = if want_grads {
            self.vars
                .iter()
                .map(|v| {
                    grads
                        .get(v.as_tensor())
                        .expect("a gradient")
                        .flatten_all()
                        .and_then(|t| t.to_vec1())
                        .expect("grad")
                })
                .collect()
        } else {
            Vec::new()
        };
        self.opt.step(&grads).expect("AdamW step");
        let l = if want_grads {
            loss.to_scalar::<f32>().expect("loss")
        } else {
            0.0
        };
        (l, g)
    }
}

/// The f64 reference of one step on batch 0: (loss before, gradients, loss
/// after the update).
fn reference(
    params: &[(Vec<f32>, Vec<f32>)],
    dims: &[usize],
    rule: Update,
    b: &Batch,
) -> (f64, Vec<Vec<f64>>, f64) {
    let mut m = Mlp::<f64>::new(params, dims);
    let x: Vec<f64> = b.x.iter().map(|&v| v as f64).collect();
    let loss0 = m.forward_backward(&x, &b.y);
    let grads = m
        .grads
        .iter()
        .flat_map(|g| [g.w.clone(), g.b.clone()])
        .collect();
    m.update(rule);
    let loss1 = m.forward_backward(&x, &b.y);
    (loss0, grads, loss1)
}

/// Checks one library's first step against the reference: loss, gradients
/// (bound relative to each tensor's largest gradient), loss after the update.
fn check_step(
    lib: &str,
    case: &str,
    got: (f32, &[Vec<f32>], f32),
    want: &(f64, Vec<Vec<f64>>, f64),
) {
    check_close(
        &format!("{case} loss ({lib})"),
        &[got.0],
        &[want.0],
        None,
        1e-5,
        1e-6,
    );
    assert_eq!(got.1.len(), want.1.len(), "{case} ({lib}): parameter count");
    for (i, (g, w)) in got.1.iter().zip(&want.1).enumerate() {
        let mx = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = vec![mx; w.len()];
        check_close(
            &format!("{case} gradient {i} ({lib})"),
            g,
            w,
            Some(&scale),
            1e-4,
            1e-9,
        );
    }
    check_close(
        &format!("{case} loss after the update ({lib})"),
        &[got.2],
        &[want.2],
        None,
        1e-4,
        1e-6,
    );
}

/// The 784-256-128-10 Adam step at `batch` on `threads` threads: train-station
/// vs candle-nn.
pub fn train_step(
    batch: usize,
    threads: usize,
    quick: bool,
    pools: &Pools,
    budget: Budget,
    out: &mut Vec<Record>,
) {
    train_station::set_num_threads(threads);
    let case = format!("batch {batch}");
    let params = init(&DIMS, 7);
    let data = batches(
        if quick { 4 } else { 32 },
        batch,
        &DIMS,
        1000 + batch as u64,
    );
    let rule = Update::Adam(ADAM);
    let want = reference(&params, &DIMS, rule, &data[0]);

    let mut ours = Ours::new(&params, rule, &data);
    let l0 = ours.step(0).to_vec()[0];
    let g = ours.grads();
    check_step("train-station", &case, (l0, &g, ours.loss(0)), &want);
    let mut theirs = Theirs::new(&params, &data);
    let (l0, g) = pools.install(threads, || theirs.step(0, true));
    let l1 = pools.install(threads, || {
        theirs.loss_tensor(0).to_scalar::<f32>().expect("loss")
    });
    check_step("candle", &case, (l0, &g, l1), &want);

    let (mut i, mut j) = (0usize, 0usize);
    let mut cs = vec![
        Contender::new("train-station", threads, || {
            i += 1;
            ours.step(i);
        }),
        Contender {
            lib: "candle",
            run: Box::new(|iters| {
                pools.install(threads, || {
                    time_iters(threads, iters, &mut || {
                        j += 1;
                        theirs.step(j, false);
                    })
                })
            }),
        },
    ];
    let t = interleaved(budget, &mut cs);
    for (lib, secs) in [("train-station", t[0]), ("candle", t[1])] {
        out.push(
            Record::new(
                "mlp-train",
                case.clone(),
                threads,
                lib,
                secs,
                1.0 / secs,
                "steps/s",
            )
            .with_flops(step_flops(batch)),
        );
    }
}

/// The tiny 64-32-10 SGD step at `batch`, one thread: train-station vs the
/// hand-written plain-Rust loop (f32).
pub fn tiny_step(batch: usize, budget: Budget, out: &mut Vec<Record>) {
    train_station::set_num_threads(1);
    let case = format!("batch {batch}");
    let params = init(&TINY, 17);
    let data = batches(16, batch, &TINY, 2000 + batch as u64);
    let rule = Update::Sgd(SGD_LR);
    let want = reference(&params, &TINY, rule, &data[0]);

    let mut ours = Ours::new(&params, rule, &data);
    let l0 = ours.step(0).to_vec()[0];
    let g = ours.grads();
    check_step(
        "train-station",
        &format!("tiny {case}"),
        (l0, &g, ours.loss(0)),
        &want,
    );
    // The same step captured once and replayed (`nn::capture`).
    let captured_case = format!("{case}, captured");
    let mut ours_c = Ours::new(&params, rule, &data);
    let mut cap = CapturedStep::new(&ours_c.model, batch, TINY[0], PlanLoss::CrossEntropy)
        .expect("capture the tiny MLP");
    let l0 = ours_c.step_captured(&mut cap, 0);
    let g = ours_c.grads();
    check_step(
        "train-station",
        &format!("tiny {captured_case}"),
        (l0, &g, ours_c.loss(0)),
        &want,
    );
    let mut plain = Mlp::<f32>::new(&params, &TINY);
    let l0 = plain.forward_backward(&data[0].x, &data[0].y) as f32;
    let g: Vec<Vec<f32>> = plain
        .grads
        .iter()
        .flat_map(|g| [g.w.clone(), g.b.clone()])
        .collect();
    plain.update(rule);
    let l1 = Mlp::<f32>::new(
        &plain
            .layers
            .iter()
            .map(|l| (l.w.clone(), l.b.clone()))
            .collect::<Vec<_>>(),
        &TINY,
    )
    .forward_backward(&data[0].x, &data[0].y) as f32;
    check_step("plain-rust", &format!("tiny {case}"), (l0, &g, l1), &want);

    let (mut i, mut j, mut k) = (0usize, 0usize, 0usize);
    let mut cs = vec![
        Contender::new("train-station", 1, || {
            i += 1;
            ours.step(i);
        }),
        Contender::new("train-station (captured)", 1, || {
            k += 1;
            std::hint::black_box(ours_c.step_captured(&mut cap, k));
        }),
        Contender::new("plain-rust", 1, || {
            j += 1;
            let b = &data[j % data.len()];
            std::hint::black_box(plain.forward_backward(&b.x, &b.y));
            plain.update(rule);
        }),
    ];
    let t = interleaved(budget, &mut cs);
    // Each case row compares one train-station form with the same plain
    // loop timing.
    for (case, lib, secs) in [
        (&case, "train-station", t[0]),
        (&case, "plain-rust", t[2]),
        (&captured_case, "train-station", t[1]),
        (&captured_case, "plain-rust", t[2]),
    ] {
        out.push(Record::new(
            "tiny-mlp",
            case.clone(),
            1,
            lib,
            secs,
            1.0 / secs,
            "steps/s",
        ));
    }
}
