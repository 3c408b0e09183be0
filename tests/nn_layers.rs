//! Layers against PyTorch: Conv1d/2d, pooling, batch/layer/group norm,
//! Embedding, Dropout, MultiheadAttention, scaled_dot_product_attention.
//!
//! The fixtures (tests/reference/cases_nn_layers.py) hold each layer's
//! configuration, PyTorch's initial state dict and one or more runs (train
//! or eval) with outputs, the gradients of `sum(output * weight)` with
//! respect to the inputs and every parameter, and the buffers afterwards.

// As in the library: errors carry both shapes inline.
#![allow(clippy::result_large_err)]

mod common;

use common::{Tol, compare, gradcheck_with, params, randn, with_params};
use serde_json::Value;
use train_station::nn::{
    AdaptiveAvgPool2d, AttnMask, AttnOptions, AvgPool2d, AvgPool2dOptions, BatchNorm1d,
    BatchNorm2d, BatchNormOptions, Conv1d, Conv2d, ConvOptions, Dropout, Embedding, GroupNorm,
    LayerNorm, LayerNormOptions, MaxPool2d, MaxPool2dOptions, Module, MultiheadAttention,
    MultiheadAttentionOptions, Upsample, try_scaled_dot_product_attention,
};
use train_station::{Tensor, manual_seed, no_grad};

// ------------------------------------------------------------ fixtures

fn number(v: &Value) -> f32 {
    match v {
        Value::Number(n) => n.as_f64().unwrap() as f32,
        Value::String(s) => match s.as_str() {
            "nan" => f32::NAN,
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            other => panic!("bad number {other:?}"),
        },
        other => panic!("bad number {other:?}"),
    }
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"].as_array().unwrap().iter().map(number).collect();
    Tensor::from_slice(&data, shape).unwrap()
}

fn opt_tensor(v: &Value) -> Option<Tensor> {
    (!v.is_null()).then(|| tensor(v))
}

fn named(v: &Value) -> Vec<(String, Option<Tensor>)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), opt_tensor(&p[1])))
        .collect()
}

struct Run {
    train: bool,
    inputs: Vec<Tensor>,
    diff: Vec<bool>,
    outputs: Vec<Tensor>,
    weights: Vec<Option<Tensor>>,
    input_grads: Vec<Option<Tensor>>,
    param_grads: Vec<(String, Option<Tensor>)>,
    buffers: Vec<(String, Option<Tensor>)>,
}

struct Case {
    name: String,
    kind: String,
    cfg: Value,
    state: Vec<(String, Tensor)>,
    runs: Vec<Run>,
}

fn load() -> Vec<Case> {
    let path = format!(
        "{}/tests/reference/fixtures/nn_layers.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root: Value = serde_json::from_str(&text).unwrap();
    let list = |v: &Value| -> Vec<Tensor> { v.as_array().unwrap().iter().map(tensor).collect() };
    let opts = |v: &Value| -> Vec<Option<Tensor>> {
        v.as_array().unwrap().iter().map(opt_tensor).collect()
    };
    root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            kind: c["kind"].as_str().unwrap().to_string(),
            cfg: c["cfg"].clone(),
            state: named(&c["state"])
                .into_iter()
                .map(|(n, t)| (n, t.unwrap()))
                .collect(),
            runs: c["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Run {
                    train: r["train"].as_bool().unwrap(),
                    inputs: list(&r["inputs"]),
                    diff: r["diff"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_bool().unwrap())
                        .collect(),
                    outputs: list(&r["outputs"]),
                    weights: opts(&r["weights"]),
                    input_grads: opts(&r["input_grads"]),
                    param_grads: named(&r["param_grads"]),
                    buffers: named(&r["buffers"]),
                })
                .collect(),
        })
        .collect()
}

fn cases(kind_prefix: &str) -> Vec<Case> {
    let all: Vec<Case> = load()
        .into_iter()
        .filter(|c| c.kind.starts_with(kind_prefix))
        .collect();
    assert!(!all.is_empty(), "no fixture cases of kind {kind_prefix}");
    all
}

/// `got` matches `want` within `tol`, the absolute part scaled by the
/// largest magnitude in `want` (at least 1): gradients of tens next to
/// gradients near 0 carry the larger ones' rounding.
#[track_caller]
fn close(got: &Tensor, want: &Tensor, tol: Tol, what: &str) {
    let scale = want
        .values()
        .filter(|v| v.is_finite())
        .fold(1.0f32, |m, v| m.max(v.abs()));
    let tol = Tol::new(tol.atol * scale, tol.rtol);
    if let Err(e) = compare(got, want, tol) {
        panic!("{what}: {e}\n got: {got}\nwant: {want}");
    }
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn pair(v: &Value) -> [usize; 2] {
    let u = usizes(v);
    [u[0], u[1]]
}

fn flag(v: &Value, default: bool) -> bool {
    v.as_bool().unwrap_or(default)
}

/// Runs a fixture case on module `m`: state-dict names and loading, then
/// every run's outputs, gradients and buffers. `fwd` maps the run's inputs
/// to the outputs.
fn check_case<M: Module>(c: &Case, mut m: M, tol: Tol, fwd: impl Fn(&M, &[Tensor]) -> Vec<Tensor>) {
    // The same keys as PyTorch's state dict, in the same order.
    let ours: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
    let theirs: Vec<String> = c.state.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(ours, theirs, "{}: state_dict keys", c.name);
    m.load_state_dict(&c.state)
        .unwrap_or_else(|e| panic!("{}: load_state_dict: {e}", c.name));
    let check_grads = !flag(&c.cfg["no_grad_check"], false);
    for (ri, r) in c.runs.iter().enumerate() {
        let what = |s: &str| format!("{} run {ri}: {s}", c.name);
        if r.train {
            m.train();
        } else {
            m.eval();
        }
        m.zero_grad();
        let leaves: Vec<Tensor> = r
            .inputs
            .iter()
            .zip(&r.diff)
            .map(|(x, &d)| {
                if d {
                    x.clone().with_requires_grad()
                } else {
                    x.clone()
                }
            })
            .collect();
        let outs = fwd(&m, &leaves);
        assert_eq!(outs.len(), r.outputs.len(), "{}", what("number of outputs"));
        for (i, (o, want)) in outs.iter().zip(&r.outputs).enumerate() {
            close(o, want, tol, &what(&format!("output {i}")));
        }
        let mut loss: Option<Tensor> = None;
        for (o, w) in outs.iter().zip(&r.weights) {
            if let Some(w) = w {
                let t = (o * w).sum();
                loss = Some(match loss {
                    Some(l) => &l + &t,
                    None => t,
                });
            }
        }
        if let Some(loss) = loss
            && check_grads
        {
            loss.backward();
            for (i, (leaf, want)) in leaves.iter().zip(&r.input_grads).enumerate() {
                if let Some(want) = want {
                    let got = leaf.grad().unwrap_or_else(|| Tensor::zeros(leaf.dims()));
                    close(&got, want, tol, &what(&format!("grad of input {i}")));
                }
            }
            let params = m.named_parameters();
            assert_eq!(params.len(), r.param_grads.len(), "{}", what("parameters"));
            for ((name, p), (want_name, want)) in params.iter().zip(&r.param_grads) {
                assert_eq!(name, want_name);
                match (p.grad(), want) {
                    (Some(got), Some(want)) => {
                        close(&got, want, tol, &what(&format!("grad of {name}")))
                    }
                    (None, Some(want)) => assert!(
                        want.values().all(|v| v == 0.0),
                        "{}",
                        what(&format!("no gradient reached {name}"))
                    ),
                    (Some(_), None) => {
                        panic!("{}", what(&format!("unexpected gradient for {name}")))
                    }
                    (None, None) => {}
                }
            }
        }
        let state = m.state_dict();
        for (name, want) in &r.buffers {
            let got = &state
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{}", what(&format!("missing buffer {name}"))))
                .1;
            close(
                got,
                want.as_ref().unwrap(),
                tol,
                &what(&format!("buffer {name}")),
            );
        }
    }
}

/// Default fixture tolerance: the layers sum in another order than PyTorch.
const TOL: Tol = Tol::new(2e-5, 2e-5);

fn single(m: &impl Module, xs: &[Tensor]) -> Vec<Tensor> {
    vec![m.forward(&xs[0])]
}

// ------------------------------------------------------------ conv

fn conv_opts<const D: usize>(cfg: &Value) -> ConvOptions<D> {
    let arr = |v: &Value| -> [usize; D] { usizes(v).try_into().unwrap() };
    ConvOptions::default()
        .stride(arr(&cfg["stride"]))
        .padding(arr(&cfg["padding"]))
        .dilation(arr(&cfg["dilation"]))
        .groups(cfg["groups"].as_u64().unwrap() as usize)
        .bias(cfg["bias"].as_bool().unwrap())
}

#[test]
fn conv_fixtures() {
    for c in cases("conv") {
        let (cin, cout) = (
            c.cfg["cin"].as_u64().unwrap() as usize,
            c.cfg["cout"].as_u64().unwrap() as usize,
        );
        let k = usizes(&c.cfg["k"]);
        if c.kind == "conv1d" {
            let m = Conv1d::try_new(cin, cout, [k[0]], conv_opts::<1>(&c.cfg)).unwrap();
            check_case(&c, m, TOL, single);
        } else {
            let m = Conv2d::try_new(cin, cout, [k[0], k[1]], conv_opts::<2>(&c.cfg)).unwrap();
            check_case(&c, m, TOL, single);
        }
    }
}

// ------------------------------------------------------------ pooling

#[test]
fn pool_fixtures() {
    for c in cases("maxpool2d") {
        let cfg = &c.cfg;
        let mut o = MaxPool2dOptions::default()
            .padding(pair(&cfg["padding"]))
            .dilation(pair(&cfg["dilation"]))
            .ceil_mode(cfg["ceil_mode"].as_bool().unwrap());
        if !cfg["stride"].is_null() {
            o = o.stride(pair(&cfg["stride"]));
        }
        let m = MaxPool2d::try_new(pair(&cfg["k"]), o).unwrap();
        if flag(&cfg["return_indices"], false) {
            check_case(&c, m, TOL, |m, xs| {
                let (v, i) = m.forward_with_indices(&xs[0]);
                vec![v, i]
            });
        } else {
            check_case(&c, m, TOL, single);
        }
    }
    for c in cases("avgpool2d") {
        let cfg = &c.cfg;
        let mut o = AvgPool2dOptions::default()
            .padding(pair(&cfg["padding"]))
            .ceil_mode(cfg["ceil_mode"].as_bool().unwrap())
            .count_include_pad(cfg["count_include_pad"].as_bool().unwrap())
            .divisor_override(cfg["divisor_override"].as_u64().map(|d| d as usize));
        if !cfg["stride"].is_null() {
            o = o.stride(pair(&cfg["stride"]));
        }
        let m = AvgPool2d::try_new(pair(&cfg["k"]), o).unwrap();
        check_case(&c, m, TOL, single);
    }
    for c in cases("adaptive_avgpool2d") {
        let [h, w] = pair(&c.cfg["out"]);
        check_case(&c, AdaptiveAvgPool2d::try_new(h, w).unwrap(), TOL, single);
    }
}

// ------------------------------------------------------------ norms

#[test]
fn norm_fixtures() {
    for c in cases("batchnorm") {
        let cfg = &c.cfg;
        let opts = BatchNormOptions {
            eps: cfg["eps"].as_f64().unwrap() as f32,
            momentum: cfg["momentum"].as_f64().map(|m| m as f32),
            affine: cfg["affine"].as_bool().unwrap(),
            track_running_stats: cfg["track_running_stats"].as_bool().unwrap(),
        };
        let ch = cfg["c"].as_u64().unwrap() as usize;
        if c.kind == "batchnorm1d" {
            check_case(&c, BatchNorm1d::try_new(ch, opts).unwrap(), TOL, single);
        } else {
            check_case(&c, BatchNorm2d::try_new(ch, opts).unwrap(), TOL, single);
        }
    }
    for c in cases("layernorm") {
        let cfg = &c.cfg;
        let opts = LayerNormOptions {
            eps: cfg["eps"].as_f64().unwrap() as f32,
            elementwise_affine: cfg["elementwise_affine"].as_bool().unwrap(),
            bias: cfg["bias"].as_bool().unwrap(),
        };
        let m = LayerNorm::try_new(&usizes(&cfg["shape"]), opts).unwrap();
        check_case(&c, m, TOL, single);
    }
    for c in cases("groupnorm") {
        let cfg = &c.cfg;
        let m = GroupNorm::try_new(
            cfg["groups"].as_u64().unwrap() as usize,
            cfg["c"].as_u64().unwrap() as usize,
            cfg["eps"].as_f64().unwrap() as f32,
            cfg["affine"].as_bool().unwrap(),
        )
        .unwrap();
        check_case(&c, m, TOL, single);
    }
}

// ------------------------------------------------------------ embedding

#[test]
fn embedding_fixtures() {
    for c in cases("embedding") {
        let cfg = &c.cfg;
        let m = Embedding::try_new(
            cfg["num"].as_u64().unwrap() as usize,
            cfg["dim"].as_u64().unwrap() as usize,
            cfg["padding_idx"].as_u64().map(|p| p as usize),
        )
        .unwrap();
        check_case(&c, m, TOL, single);
    }
}

// ------------------------------------------------------------ attention

fn mask_of(kind: &Value, t: &Tensor) -> AttnMask {
    match kind.as_str().unwrap() {
        "additive" => AttnMask::Additive(t.clone()),
        "blocked" => AttnMask::Blocked(t.clone()),
        "allowed" => AttnMask::Allowed(t.clone()),
        other => panic!("mask kind {other}"),
    }
}

#[test]
fn attention_fixtures() {
    for c in cases("mha") {
        let cfg = c.cfg.clone();
        let opts = MultiheadAttentionOptions {
            bias: cfg["bias"].as_bool().unwrap(),
            batch_first: cfg["batch_first"].as_bool().unwrap(),
            ..Default::default()
        };
        let m = MultiheadAttention::try_new(
            cfg["e"].as_u64().unwrap() as usize,
            cfg["heads"].as_u64().unwrap() as usize,
            opts,
        )
        .unwrap();
        check_case(&c, m, TOL, move |m, xs| {
            let self_attention = flag(&cfg["self_attention"], false);
            let (q, k, v, mut rest) = if self_attention {
                (&xs[0], &xs[0], &xs[0], 1)
            } else {
                (&xs[0], &xs[1], &xs[2], 3)
            };
            let mut o = AttnOptions::default()
                .causal(flag(&cfg["causal"], false))
                .need_weights(flag(&cfg["need_weights"], true))
                .average_attn_weights(flag(&cfg["average"], true));
            if !cfg["attn_mask"].is_null() {
                o = o.attn_mask(mask_of(&cfg["attn_mask"], &xs[rest]));
                rest += 1;
            }
            if !cfg["key_padding_mask"].is_null() {
                o = o.key_padding_mask(mask_of(&cfg["key_padding_mask"], &xs[rest]));
            }
            let (out, w) = m.forward_attn(q, k, v, &o);
            std::iter::once(out).chain(w).collect()
        });
    }
    for c in cases("sdpa") {
        let cfg = c.cfg.clone();
        let unit = Sdpa;
        check_case(&c, unit, TOL, move |_, xs| {
            let mask = (!cfg["mask"].is_null()).then(|| mask_of(&cfg["mask"], &xs[3]));
            let scale = cfg["scale"].as_f64().map(|s| s as f32);
            vec![
                try_scaled_dot_product_attention(
                    &xs[0],
                    &xs[1],
                    &xs[2],
                    mask.as_ref(),
                    flag(&cfg["causal"], false),
                    scale,
                )
                .unwrap(),
            ]
        });
    }
}

/// A parameter-free stand-in module for the function fixtures.
struct Sdpa;

impl Module for Sdpa {
    fn try_forward(&self, x: &Tensor) -> train_station::Result<Tensor> {
        Ok(x.clone())
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
}

#[test]
fn upsample_fixtures() {
    for c in cases("upsample") {
        let m = if c.cfg["size"].is_null() {
            let s: Vec<f64> = c.cfg["scale"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            Upsample::try_with_scale(s[0], s[1]).unwrap()
        } else {
            let [h, w] = pair(&c.cfg["size"]);
            Upsample::try_with_size(h, w).unwrap()
        };
        check_case(&c, m, TOL, single);
    }
}

// ------------------------------------------------------------ a model

#[test]
fn sequential_cnn_fixture() {
    use train_station::nn::{Flatten, Linear, Relu, Sequential};
    for c in cases("seq_cnn") {
        let m = Sequential::new()
            .with(Conv2d::with_options(
                2,
                4,
                3,
                ConvOptions::default().padding(1),
            ))
            .with(BatchNorm2d::new(4))
            .with(Relu)
            .with(MaxPool2d::new(2))
            .with(Conv2d::with_options(
                4,
                4,
                3,
                ConvOptions::default().padding(1).groups(2).bias(false),
            ))
            .with(GroupNorm::new(2, 4))
            .with(AvgPool2d::with_options(
                2,
                AvgPool2dOptions::default().stride(1),
            ))
            .with(AdaptiveAvgPool2d::new(1, 1))
            .with(Flatten::default())
            .with(Dropout::new(0.0))
            .with(LayerNorm::new(&[4]))
            .with(Linear::new(4, 3));
        check_case(&c, m, TOL, single);
    }
}

// ------------------------------------------------------------ gradcheck

/// Finite differences on small shapes, for the input and every parameter.
fn gc(name: &str, inputs: &[Tensor], nondiff: &[usize], f: &dyn Fn(&[Tensor]) -> Tensor) {
    gradcheck_with(name, inputs, nondiff, f, 1e-2, Tol::new(1e-2, 1e-2));
}

/// Gradcheck of `m.forward(x)` with respect to `x` and every parameter.
fn gc_module<M: Module + Clone>(name: &str, m: &M, x: &Tensor) {
    let mut inputs = vec![x.clone()];
    inputs.extend(params(m));
    gc(name, &inputs, &[], &|xs| {
        with_params(m, &xs[1..]).forward(&xs[0])
    });
}

#[test]
fn gradcheck_conv() {
    manual_seed(7);
    let c1 = Conv1d::with_options(
        4,
        2,
        3,
        ConvOptions::default()
            .stride(2)
            .padding(2)
            .dilation(2)
            .groups(2),
    );
    gc_module("conv1d", &c1, &randn(&[2, 4, 9], 1));
    let c2 = Conv2d::with_options(
        4,
        6,
        [3, 2],
        ConvOptions::default()
            .stride([2, 1])
            .padding([1, 1])
            .dilation([1, 2])
            .groups(2),
    );
    gc_module("conv2d", &c2, &randn(&[2, 4, 5, 6], 2));
    gc_module(
        "conv2d unbatched",
        &Conv2d::new(2, 3, 2),
        &randn(&[2, 4, 3], 3),
    );
}

/// Values `0.1 * permutation` so every window has one clear maximum.
fn separated(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let p = train_station::Generator::new(seed).permutation(n);
    let v: Vec<f32> = p
        .iter()
        .map(|&i| i as f32 * 0.1 - n as f32 * 0.05)
        .collect();
    Tensor::from_slice(&v, shape).unwrap()
}

#[test]
fn gradcheck_pooling() {
    let x = separated(&[2, 2, 7, 6], 4);
    let mp = MaxPool2d::with_options(
        3,
        MaxPool2dOptions::default()
            .stride([2, 1])
            .padding(1)
            .dilation([1, 2])
            .ceil_mode(true),
    );
    gc_module("maxpool2d", &mp, &x);
    let ap = AvgPool2d::with_options(
        [3, 2],
        AvgPool2dOptions::default()
            .stride(2)
            .padding(1)
            .ceil_mode(true)
            .count_include_pad(false),
    );
    gc_module("avgpool2d", &ap, &randn(&[2, 2, 7, 6], 5));
    gc_module(
        "adaptive",
        &AdaptiveAvgPool2d::new(3, 4),
        &randn(&[2, 2, 7, 5], 6),
    );
}

#[test]
fn gradcheck_norms() {
    manual_seed(8);
    let with_random = |m: &mut dyn Module, seed: u64| {
        for (i, p) in m.parameters_mut().into_iter().enumerate() {
            no_grad(|| p.copy_from(&randn(p.dims(), seed + i as u64)));
        }
    };
    let mut bn = BatchNorm1d::new(3);
    with_random(&mut bn, 10);
    gc_module("batchnorm1d train", &bn, &randn(&[4, 3, 2], 11));
    bn.eval();
    gc_module("batchnorm1d eval", &bn, &randn(&[4, 3, 2], 12));
    let mut bn2 = BatchNorm2d::new(2);
    with_random(&mut bn2, 13);
    gc_module("batchnorm2d train", &bn2, &randn(&[2, 2, 3, 2], 14));
    let mut ln = LayerNorm::new(&[3, 4]);
    with_random(&mut ln, 15);
    gc_module("layernorm", &ln, &randn(&[2, 3, 4], 16));
    let mut gn = GroupNorm::new(2, 4);
    with_random(&mut gn, 17);
    gc_module("groupnorm", &gn, &randn(&[2, 4, 3], 18));
}

#[test]
fn gradcheck_embedding_and_attention() {
    manual_seed(9);
    // (Without padding_idx: the padding row's zero gradient is by design;
    // the fixtures check it.)
    let e = Embedding::new(5, 3);
    let idx = Tensor::from_slice(&[0.0, 2.0, 4.0, 0.0, 1.0, 2.0], [2, 3]).unwrap();
    let w = e.weight.detach();
    gc("embedding", &[idx, w], &[0], &|xs| {
        Embedding::from_weight(xs[1].clone(), None)
            .unwrap()
            .forward(&xs[0])
    });

    let m = MultiheadAttention::new(4, 2);
    let (q, k, v) = (
        randn(&[2, 2, 4], 20),
        randn(&[3, 2, 4], 21),
        randn(&[3, 2, 4], 22),
    );
    let kpm = Tensor::from_slice(&[0.0, 0.0, 1.0, 0.0, 1.0, 0.0], [2, 3]).unwrap();
    let am = randn(&[2, 3], 23);
    let r = randn(&[2, 2, 3], 28);
    let mut inputs = vec![q, k, v];
    inputs.extend(params(&m));
    gc("mha", &inputs, &[], &|xs| {
        let o = AttnOptions::default()
            .attn_mask(AttnMask::Additive(am.clone()))
            .key_padding_mask(AttnMask::Blocked(kpm.clone()));
        let (out, w) = with_params(&m, &xs[3..]).forward_attn(&xs[0], &xs[1], &xs[2], &o);
        // Both outputs through one loss (the weights' rows sum to 1, so
        // they are weighted before summing).
        let w = &w.unwrap() * &r;
        &out.sum_dims([2], false) + &w.sum_dims([2], false).transpose(0, 1)
    });
    let x = randn(&[3, 1, 4], 24);
    let mut inputs = vec![x];
    inputs.extend(params(&m));
    gc("mha self causal", &inputs, &[], &|xs| {
        let o = AttnOptions::default().causal(true).need_weights(false);
        with_params(&m, &xs[1..])
            .forward_attn(&xs[0], &xs[0], &xs[0], &o)
            .0
    });
    let (q, k, v) = (
        randn(&[2, 3, 4], 25),
        randn(&[2, 5, 4], 26),
        randn(&[2, 5, 2], 27),
    );
    gc("sdpa", &[q, k, v], &[], &|xs| {
        try_scaled_dot_product_attention(&xs[0], &xs[1], &xs[2], None, true, None).unwrap()
    });
}
