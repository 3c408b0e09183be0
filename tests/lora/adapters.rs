//! LoRA adapters: PEFT's adapter against PyTorch's outputs and gradients,
//! `add_lora` and its targets, merge / unmerge, the `dyn Module` functions,
//! finite differences and dropout.

use crate::common::{self, Tol, assert_close, gradcheck_with, randn};
use train_station::nn::{Linear, Lora, LoraConfig, Module, Relu, Sequential};
use train_station::{Error, Tensor, manual_seed, no_grad};

use super::{FIX, bits, flags, mlp, peft_model};

struct Fixture {
    json: serde_json::Value,
}

impl Fixture {
    fn load() -> Fixture {
        let text = std::fs::read_to_string(format!("{FIX}lora.json")).unwrap();
        Fixture {
            json: serde_json::from_str(&text).unwrap(),
        }
    }
    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }
    fn tensor(&self, key: &str, shape: &[usize]) -> Tensor {
        Tensor::from_slice(&Self::floats(&self.json[key]), shape).unwrap()
    }
    fn grad(&self, key: &str) -> Tensor {
        common::tensor(&self.json["grads"][key])
    }
}

#[test]
fn peft_adapter_gives_pytorch_outputs_and_gradients() {
    let _rng = common::global_rng_turn();
    let fx = Fixture::load();
    let model = peft_model();
    // The model's state dict has PEFT's names and the same trainable set.
    let keys: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = fx.json["state_dict_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, want);
    for (n, on) in flags(&model) {
        let frozen = fx.json["frozen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap() == format!("base_model.model.{n}"));
        assert_eq!(on, !frozen, "{n}");
    }

    let x = fx.tensor("input", &[5, 4]).with_requires_grad();
    let y = model.forward(&x);
    assert_close(
        &y,
        &fx.tensor("output", &[5, 3]),
        Tol::new(1e-5, 1e-5),
        "output",
    );
    let w = fx.tensor("loss_weight", &[5, 3]);
    (&y * &w).sum().backward();
    assert_close(
        &x.grad().unwrap(),
        &fx.tensor("input_grad", &[5, 4]),
        Tol::new(1e-5, 1e-5),
        "input grad",
    );
    let named = model.named_parameters();
    for (n, p) in &named {
        let key = format!("base_model.model.{}", n.replace(".default", ""));
        if n.contains("lora_") {
            assert_close(&p.grad().unwrap(), &fx.grad(&key), Tol::new(1e-5, 1e-5), n);
        } else {
            assert!(p.grad().is_none(), "frozen {n} got a gradient");
        }
    }
}

#[test]
fn add_lora_follows_peft() {
    let _rng = common::global_rng_turn();
    manual_seed(5);
    let mut model = mlp();
    let x = randn(&[3, 4], 1);
    let before = model.forward(&x);
    let adapted = model
        .add_lora(&LoraConfig::new(4, 8.0, &["2"]).with_dropout(0.1))
        .unwrap();
    assert_eq!(adapted, ["2"]);
    assert_eq!(
        flags(&model),
        [
            ("0.weight".to_string(), false),
            ("0.bias".to_string(), false),
            ("2.base_layer.weight".to_string(), false),
            ("2.base_layer.bias".to_string(), false),
            ("2.lora_A.default.weight".to_string(), true),
            ("2.lora_B.default.weight".to_string(), true),
        ]
    );
    let lora = |m: &Sequential| -> Lora {
        let mut out = None;
        m.visit_linears("", &mut |n, l| {
            if n == "2" {
                out = l.lora().cloned();
            }
        });
        out.unwrap()
    };
    let l = lora(&model);
    assert_eq!(
        (l.rank(), l.alpha(), l.scaling(), l.dropout()),
        (4, 8.0, 2.0, 0.1)
    );
    assert_eq!(
        (l.a.dims(), l.b.dims()),
        (&[4usize, 8][..], &[3usize, 4][..])
    );
    // A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform, a = sqrt(5)), B = 0:
    // a fresh adapter leaves the output unchanged.
    let bound = 1.0 / 8f32.sqrt();
    assert!(l.a.to_vec().iter().all(|v| v.abs() <= bound));
    assert!(l.a.to_vec().iter().any(|v| v.abs() > bound / 2.0));
    assert!(l.b.to_vec().iter().all(|&v| v == 0.0));
    model.eval();
    assert_eq!(bits(&model.forward(&x)), bits(&before));
    // The dropout stream is saved and restored with the model's others.
    let mut streams = Vec::new();
    model.visit_rng_states("", &mut |n, _| streams.push(n.to_string()));
    assert_eq!(streams, ["2.lora_dropout.default.rng"]);
    // The trainable parameters are exactly A and B.
    let t = model.trainable_parameters();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].id(), l.a.id());
    // A second adapter on the same layer, or an unknown target, is refused
    // and names the layer; nothing changes.
    let state = flags(&model);
    let err = model
        .add_lora(&LoraConfig::new(2, 2.0, &["2"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownModule { name, .. } if name == "2"),
        "{err}"
    );
    let err = model
        .add_lora(&LoraConfig::new(2, 2.0, &["0", "5"]))
        .unwrap_err();
    assert!(err.to_string().contains("`5`"), "{err}");
    let err = model
        .add_lora(&LoraConfig::new(2, 2.0, &["1"]))
        .unwrap_err();
    assert!(err.to_string().contains("`1`"), "{err}");
    assert_eq!(flags(&model), state);
    let err = mlp()
        .add_lora(&LoraConfig::new(0, 2.0, &["0"]))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn targets_match_by_name_suffix_as_in_peft() {
    let _rng = common::global_rng_turn();
    let mut outer = Sequential::new().with(mlp()).with(Relu).with(mlp());
    let names = outer.add_lora(&LoraConfig::new(1, 1.0, &["2"])).unwrap();
    // "2" matches "0.2" and "2.2"; the outer module "2" is not a Linear.
    assert_eq!(names, ["0.2", "2.2"]);
    let names = Sequential::new()
        .with(mlp())
        .add_lora(&LoraConfig::new(1, 1.0, &["0.0"]))
        .unwrap();
    assert_eq!(names, ["0.0"]);
}

#[test]
fn merge_and_unmerge_are_exact_to_rounding() {
    let _rng = common::global_rng_turn();
    manual_seed(9);
    let mut model = mlp();
    model
        .add_lora(&LoraConfig::new(2, 5.0, &["0", "2"]))
        .unwrap();
    no_grad(|| {
        for (n, p) in model.named_parameters_mut() {
            if n.contains("lora_B") {
                p.copy_from(&randn(p.dims(), 3));
            }
        }
    });
    let x = randn(&[6, 4], 4);
    let unmerged = model.forward(&x);
    let weights: Vec<Tensor> = model
        .named_parameters()
        .into_iter()
        .filter(|(n, _)| n.ends_with("base_layer.weight"))
        .map(|(_, p)| p.detach().contiguous())
        .collect();
    model.merge_lora().unwrap();
    model.merge_lora().unwrap(); // no-op when merged
    let merged = model.forward(&x);
    assert_close(&merged, &unmerged, Tol::new(1e-5, 1e-5), "merged output");
    // A merged layer runs the base path only: exactly a plain Linear with
    // the merged weight.
    let mut plain = Sequential::new();
    let mut i = 0;
    model.visit_linears("", &mut |_, l| {
        assert!(l.lora().unwrap().is_merged());
        let w = l.weight.detach().contiguous();
        let want = &weights[i] + &(&l.lora().unwrap().b.matmul(&l.lora().unwrap().a) * 2.5);
        assert_close(&w, &want, Tol::new(1e-6, 1e-6), "merged weight");
        i += 1;
        plain.push(Linear::from_parameters(w, l.bias.clone()).unwrap());
        if i == 1 {
            plain.push(Relu);
        }
    });
    assert_eq!(bits(&plain.forward(&x)), bits(&merged));
    model.unmerge_lora().unwrap();
    let back: Vec<Tensor> = model
        .named_parameters()
        .into_iter()
        .filter(|(n, _)| n.ends_with("base_layer.weight"))
        .map(|(_, p)| p.detach().contiguous())
        .collect();
    for (b, w) in back.iter().zip(&weights) {
        // W + d - d differs from W by at most one rounding of |W + d|.
        for (x, y) in b.to_vec().iter().zip(w.to_vec()) {
            assert!(
                (x - y).abs() <= 4.0 * f32::EPSILON * (1.0 + y.abs() * 4.0),
                "{x} vs {y}"
            );
        }
    }
    assert_close(
        &model.forward(&x),
        &unmerged,
        Tol::new(1e-5, 1e-5),
        "unmerged output",
    );
    assert_eq!(unmerged_count(&model), 2);
    // merge_and_unload: plain layers with plain names and the merged output.
    model.merge_and_unload_lora().unwrap();
    let names: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_close(
        &model.forward(&x),
        &merged,
        Tol::new(1e-5, 1e-5),
        "unloaded output",
    );
}

/// Trait objects get the fine-tuning methods (`where Self: Sized` in the
/// trait) as functions of `nn`; they give the same models as the trait
/// methods on the concrete type.
#[test]
fn dyn_module_fine_tuning_functions_match_the_trait_methods() {
    let _rng = common::global_rng_turn();
    use train_station::nn;
    let cfg = LoraConfig::new(2, 5.0, &["0", "2"]);
    let x = randn(&[6, 4], 4);
    manual_seed(9);
    let mut boxed: Box<dyn Module> = Box::new(mlp());
    let m = boxed.as_mut();
    nn::add_lora(m, &cfg).unwrap();
    let names: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
    no_grad(|| {
        for (n, p) in m.named_parameters_mut() {
            if n.contains("lora_B") {
                p.copy_from(&randn(p.dims(), 3));
            }
        }
    });
    let unmerged = bits(&m.forward(&x));
    nn::merge_lora(m).unwrap();
    let merged = bits(&m.forward(&x));
    nn::unmerge_lora(m).unwrap();
    nn::merge_and_unload_lora(m).unwrap();
    let unloaded: Vec<String> = m.state_dict().into_iter().map(|(n, _)| n).collect();
    let via_dyn = (
        names,
        unmerged,
        merged,
        unloaded,
        nn::freeze_all_but_last(m, 1),
        nn::train_bias_only(m),
    );
    assert!(
        via_dyn.0.iter().any(|n| n.contains("lora_A")),
        "{:?}",
        via_dyn.0
    );
    assert_eq!(via_dyn.3, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(via_dyn.4, ["2"]);
    assert_eq!(via_dyn.5, 2);
    // The concrete type through the trait's methods.
    manual_seed(9);
    let mut model = mlp();
    model.add_lora(&cfg).unwrap();
    no_grad(|| {
        for (n, p) in model.named_parameters_mut() {
            if n.contains("lora_B") {
                p.copy_from(&randn(p.dims(), 3));
            }
        }
    });
    assert_eq!(bits(&model.forward(&x)), via_dyn.1);
    model.merge_lora().unwrap();
    assert_eq!(bits(&model.forward(&x)), via_dyn.2);
}

/// Number of layers whose adapter is not merged.
fn unmerged_count(m: &Sequential) -> usize {
    let mut n = 0;
    m.visit_linears("", &mut |_, l| {
        n += l.lora().is_some_and(|a| !a.is_merged()) as usize
    });
    n
}

#[test]
fn lora_gradients_match_finite_differences() {
    let _rng = common::global_rng_turn();
    manual_seed(2);
    let mut layer = Linear::new(5, 3);
    layer.weight.set_requires_grad(false);
    let a = randn(&[2, 5], 7);
    let b = randn(&[3, 2], 8);
    layer
        .set_lora(Lora::from_parameters(a.clone(), b.clone(), 3.0, 0.0).unwrap())
        .unwrap();
    let f = |xs: &[Tensor]| {
        let mut l = layer.clone();
        let lora = l.lora_mut().unwrap();
        lora.a = xs[1].clone();
        lora.b = xs[2].clone();
        l.forward(&xs[0])
    };
    gradcheck_with(
        "lora",
        &[randn(&[4, 5], 9), a, b],
        &[],
        &f,
        1e-2,
        Tol::new(2e-2, 2e-2),
    );
}

#[test]
fn dropout_applies_in_training_only() {
    let _rng = common::global_rng_turn();
    manual_seed(3);
    let mut layer = Linear::new(16, 4);
    layer
        .add_lora(&LoraConfig::new(2, 2.0, &[""]).with_dropout(0.5))
        .unwrap();
    no_grad(|| layer.lora_mut().unwrap().b.copy_from(&randn(&[4, 2], 1)));
    let x = randn(&[8, 16], 2);
    let t1 = layer.forward(&x);
    let t2 = layer.forward(&x);
    assert_ne!(
        bits(&t1),
        bits(&t2),
        "two training passes drew the same mask"
    );
    layer.eval();
    let e = layer.forward(&x);
    let l = layer.lora().unwrap();
    let want = &x.linear(&layer.weight, layer.bias.as_ref())
        + &(&x.matmul(&l.a.t()).matmul(&l.b.t()) * l.scaling());
    assert_close(&e, &want, Tol::new(1e-5, 1e-5), "eval output");
}
