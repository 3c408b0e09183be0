//! Partial fine-tuning: freezing all but the last layers, BitFit, LoRA
//! adapters (forward/backward against PEFT fixtures, merge/unmerge, gradcheck)
//! and PEFT adapter files (round trip, interop, errors).

mod common;

use common::{Tol, assert_close, gradcheck_with, randn};
#[cfg(feature = "std")]
use train_station::io::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapter, save_adapter};
use train_station::io::{
    adapter_from_bytes, adapter_to_bytes, module_from_bytes, parse_adapter_config,
};
use train_station::nn::{Conv2d, LayerNorm, Linear, Lora, LoraConfig, Module, Relu, Sequential};
use train_station::{Error, Tensor, manual_seed, no_grad};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/fixtures/");

fn mlp() -> Sequential {
    Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(Linear::new(8, 3))
}

fn flags(m: &dyn Module) -> Vec<(String, bool)> {
    m.named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.requires_grad()))
        .collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

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

/// The fixture's base model with PEFT's adapter loaded (through the byte
/// functions, so this runs without the library's `std` feature too).
fn peft_model() -> Sequential {
    let read = |f: &str| std::fs::read(format!("{FIX}{f}")).unwrap();
    let mut model = mlp();
    module_from_bytes(&mut model, &read("lora_base.safetensors")).unwrap();
    let config = adapter_from_bytes(
        &mut model,
        &read("lora_adapter/adapter_model.safetensors"),
        &read("lora_adapter/adapter_config.json"),
    )
    .unwrap();
    assert_eq!((config.r, config.alpha, config.dropout), (2, 6.0, 0.0));
    assert_eq!(config.target_modules, ["0", "2"]);
    model
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

#[test]
fn freeze_all_but_last_sets_exactly_the_last_layers() {
    let _rng = common::global_rng_turn();
    let mut model = Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(LayerNorm::new(&[8]))
        .with(Linear::new_no_bias(8, 8))
        .with(Relu)
        .with(Linear::new(8, 2));
    let kept = model.freeze_all_but_last(2);
    assert_eq!(kept, ["3", "5"]);
    let want = [
        ("0.weight", false),
        ("0.bias", false),
        ("2.weight", false),
        ("2.bias", false),
        ("3.weight", true),
        ("5.weight", true),
        ("5.bias", true),
    ];
    let got = flags(&model);
    assert_eq!(got.len(), want.len());
    for ((n, on), (wn, won)) in got.iter().zip(want) {
        assert_eq!((n.as_str(), *on), (wn, won));
    }
    assert_eq!(model.freeze_all_but_last(0), Vec::<String>::new());
    assert!(flags(&model).iter().all(|(_, on)| !on));
    assert_eq!(model.freeze_all_but_last(10).len(), 4);
    assert!(flags(&model).iter().all(|(_, on)| *on));
    // A LoRA layer counts as one layer.
    let mut lm = mlp();
    lm.add_lora(&LoraConfig::new(1, 1.0, &["2"])).unwrap();
    assert_eq!(lm.freeze_all_but_last(1), ["2"]);
    let on: Vec<bool> = flags(&lm).iter().map(|(_, on)| *on).collect();
    assert_eq!(on, [false, false, true, true, true, true]);
}

#[test]
fn bitfit_trains_biases_only() {
    let _rng = common::global_rng_turn();
    let mut model = Sequential::new()
        .with(Conv2d::new(1, 2, 3))
        .with(Linear::new_no_bias(4, 4))
        .with(LayerNorm::new(&[4]))
        .with(Linear::new(4, 2));
    assert_eq!(model.train_bias_only(), 3);
    let trainable: Vec<String> = flags(&model)
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect();
    assert_eq!(trainable, ["0.bias", "2.bias", "3.bias"]);
    assert_eq!(model.trainable_parameters().len(), 3);
    // Training updates only the biases.
    let x = randn(&[2, 4], 1);
    let head = Sequential::new()
        .with(Linear::new(4, 3))
        .with(Linear::new(3, 2));
    let mut head = head;
    head.train_bias_only();
    head.forward(&x).sum().backward();
    for (n, p) in head.named_parameters() {
        assert_eq!(p.grad().is_some(), n.ends_with("bias"), "{n}");
    }
}

fn lora_model(seed: u64) -> Sequential {
    manual_seed(seed);
    let mut model = mlp();
    model
        .add_lora(&LoraConfig::new(3, 6.0, &["0", "2"]))
        .unwrap();
    no_grad(|| {
        for (n, p) in model.named_parameters_mut() {
            if n.contains("lora_B") {
                p.copy_from(&randn(p.dims(), seed + 100));
            }
        }
    });
    model
}

#[test]
fn adapter_round_trips_through_bytes_and_directories() {
    let _rng = common::global_rng_turn();
    let model = lora_model(1);
    let files = adapter_to_bytes(&model).unwrap();
    let config: serde_json::Value = serde_json::from_str(&files.config).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 3);
    assert_eq!(config["lora_alpha"], 6);
    assert_eq!(config["lora_dropout"], 0);
    assert_eq!(config["target_modules"], serde_json::json!(["0", "2"]));
    assert_eq!(config["bias"], "none");
    assert_eq!(config["fan_in_fan_out"], false);
    assert!(config.get("scaling").is_none());
    let st = train_station::io::from_safetensors(&files.weights).unwrap();
    let keys: Vec<&str> = st.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        keys,
        [
            "base_model.model.0.lora_A.weight",
            "base_model.model.0.lora_B.weight",
            "base_model.model.2.lora_A.weight",
            "base_model.model.2.lora_B.weight"
        ]
    );
    assert_eq!(
        st.get("base_model.model.2.lora_B.weight").unwrap().dims(),
        [3, 3]
    );

    // Into a plain model with the same base weights (bytes, no std needed).
    let mut fresh = mlp();
    let mut base = mlp();
    let base_state: Vec<(String, Tensor)> = model
        .state_dict()
        .into_iter()
        .filter(|(n, _)| !n.contains("lora_"))
        .map(|(n, t)| (n.replace("base_layer.", ""), t))
        .collect();
    fresh.load_state_dict(&base_state).unwrap();
    base.load_state_dict(&base_state).unwrap();
    let loaded = adapter_from_bytes(&mut fresh, &files.weights, files.config.as_bytes()).unwrap();
    assert_eq!(loaded.target_modules, ["0", "2"]);
    let x = randn(&[4, 4], 5);
    assert_eq!(bits(&fresh.forward(&x)), bits(&model.forward(&x)));
    for ((n, a), (_, b)) in fresh.state_dict().iter().zip(model.state_dict()) {
        assert_eq!(bits(a), bits(&b), "{n}");
    }
    assert_eq!(flags(&fresh), flags(&model));

    // Loading again replaces the (unmerged) adapters.
    let other = lora_model(2);
    let f2 = adapter_to_bytes(&other).unwrap();
    adapter_from_bytes(&mut fresh, &f2.weights, f2.config.as_bytes()).unwrap();
    assert_ne!(bits(&fresh.forward(&x)), bits(&model.forward(&x)));

    #[cfg(feature = "std")]
    directory_round_trip(&model, &mut base, &x);
}

/// The directory form, saved atomically (no temporary files left behind).
#[cfg(feature = "std")]
fn directory_round_trip(model: &Sequential, base: &mut Sequential, x: &Tensor) {
    let dir = std::env::temp_dir().join(format!("ts-lora-{}", std::process::id()));
    save_adapter(&dir, model).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [ADAPTER_CONFIG, ADAPTER_WEIGHTS]);
    load_adapter(&dir, base).unwrap();
    assert_eq!(bits(&base.forward(x)), bits(&model.forward(x)));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes target/interop/lora_rust/ (an adapter saved here, an input and
/// this library's output) for `python tests/reference/gen_lora.py verify`,
/// which loads it with `PeftModel.from_pretrained` on the fixture's base
/// model.
#[cfg(feature = "std")]
#[test]
fn writes_an_adapter_for_peft() {
    let _rng = common::global_rng_turn();
    let mut model = peft_model();
    no_grad(|| {
        for (n, p) in model.named_parameters_mut() {
            if n.contains("lora_") {
                let v = randn(p.dims(), 77);
                p.copy_from(&v);
            }
        }
    });
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/interop/lora_rust");
    save_adapter(dir, &model).unwrap();
    let x = randn(&[3, 4], 78);
    let y = model.forward(&x);
    let expected = serde_json::json!({
        "input": x.to_vec(),
        "input_shape": x.dims(),
        "output": y.to_vec(),
    });
    std::fs::write(format!("{dir}/expected.json"), expected.to_string()).unwrap();
}

/// Named tensors, as a safetensors file holds them.
type Named = Vec<(String, Tensor)>;

fn expect_state_dict_err(r: train_station::Result<LoraConfig>, key: &str) {
    let err = r.unwrap_err();
    assert!(
        matches!(err, Error::StateDict { .. }) && err.to_string().contains(key),
        "expected an error naming {key}, got {err}"
    );
}

#[test]
fn bad_adapters_are_refused_with_the_key_and_change_nothing() {
    let _rng = common::global_rng_turn();
    let model = lora_model(1);
    let good = adapter_to_bytes(&model).unwrap();
    let st = train_station::io::from_safetensors(&good.weights).unwrap();
    let with = |edit: &dyn Fn(&mut Named)| -> Vec<u8> {
        let mut t = st.tensors.clone();
        edit(&mut t);
        train_station::io::to_safetensors(t.iter().map(|(n, t)| (n.as_str(), t)), &[]).unwrap()
    };
    let mut target = mlp();
    let cfg = good.config.as_bytes();
    let mut load = |w: &[u8], c: &[u8]| adapter_from_bytes(&mut target, w, c);

    // Wrong shape.
    let w = with(&|t| t[1].1 = Tensor::zeros([8, 2]));
    expect_state_dict_err(
        load(&w, cfg),
        "mis-shaped: base_model.model.0.lora_B.weight",
    );
    // Missing partner.
    let w = with(&|t| {
        t.remove(3);
    });
    expect_state_dict_err(load(&w, cfg), "missing: base_model.model.2.lora_B.weight");
    // Not a LoRA key.
    let w = with(&|t| t.push(("base_model.model.0.lora_B.bias".into(), Tensor::zeros([8]))));
    expect_state_dict_err(load(&w, cfg), "unexpected: base_model.model.0.lora_B.bias");
    // A layer the model lacks, or that is not a Linear.
    for m in ["7", "1"] {
        let w = with(&|t| {
            t.push((
                format!("base_model.model.{m}.lora_A.weight"),
                Tensor::zeros([3, 4]),
            ));
            t.push((
                format!("base_model.model.{m}.lora_B.weight"),
                Tensor::zeros([8, 3]),
            ));
        });
        let err = load(&w, cfg).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownModule { name, .. } if name == m),
            "{err}"
        );
    }
    // r in the config disagrees with the tensors.
    let c = good.config.replace("\"r\": 3", "\"r\": 2");
    expect_state_dict_err(
        load(&good.weights, c.as_bytes()),
        "base_model.model.0.lora_A.weight",
    );
    // Config fields this library cannot honour, or bad values: named.
    for (from, to, field) in [
        ("\"use_dora\": false", "\"use_dora\": true", "use_dora"),
        (
            "\"use_rslora\": false",
            "\"use_rslora\": true",
            "use_rslora",
        ),
        (
            "\"fan_in_fan_out\": false",
            "\"fan_in_fan_out\": true",
            "fan_in_fan_out",
        ),
        ("\"bias\": \"none\"", "\"bias\": \"all\"", "bias"),
        ("\"use_dora\": false", "\"lora_bias\": true", "lora_bias"),
        (
            "\"rank_pattern\": {}",
            "\"rank_pattern\": {\"0\": 4}",
            "rank_pattern",
        ),
        (
            "\"peft_type\": \"LORA\"",
            "\"peft_type\": \"IA3\"",
            "peft_type",
        ),
        ("\"r\": 3", "\"r\": 0", "r is"),
        ("\"r\": 3", "\"r\": -3", "r is"),
        ("\"lora_alpha\": 6", "\"lora_alpha\": \"6\"", "lora_alpha"),
        (
            "\"lora_dropout\": 0",
            "\"lora_dropout\": 1.5",
            "lora_dropout",
        ),
        (
            "\"target_modules\": [",
            "\"target_modules\": [1, ",
            "target_modules",
        ),
    ] {
        let c = good.config.replace(from, to);
        assert_ne!(c, good.config, "{from}");
        let err = load(&good.weights, c.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // Unknown fields are ignored.
    let c = good
        .config
        .replacen('{', "{\"future_field\": [1, {\"x\": null}],", 1);
    assert!(load(&good.weights, c.as_bytes()).is_ok());
    let mut target = mlp();
    let before: Vec<(String, Vec<u32>)> = target
        .state_dict()
        .iter()
        .map(|(n, t)| (n.clone(), bits(t)))
        .collect();
    let mut load = |w: &[u8], c: &[u8]| adapter_from_bytes(&mut target, w, c);
    // Corrupt or hostile bytes: Err, never a panic.
    for cut in 0..good.weights.len() {
        assert!(load(&good.weights[..cut], cfg).is_err());
    }
    for cut in 0..cfg.len() {
        assert!(load(&good.weights, &cfg[..cut]).is_err());
    }
    let deep = "[".repeat(100_000);
    assert!(load(&good.weights, deep.as_bytes()).is_err());
    assert!(load(&good.weights, b"\xff\xfe").is_err());
    assert!(load(&good.weights, b"[]").is_err());
    let empty = train_station::io::to_safetensors([], &[]).unwrap();
    assert!(matches!(load(&empty, cfg), Err(Error::Format { .. })));
    // Nothing changed by any failed load.
    let after: Vec<(String, Vec<u32>)> = target
        .state_dict()
        .iter()
        .map(|(n, t)| (n.clone(), bits(t)))
        .collect();
    assert_eq!(after, before);
    // Flipped bytes: an error, or (a flip inside the tensor data) a load.
    for i in (0..good.weights.len()).step_by(3) {
        let mut w = good.weights.clone();
        w[i] ^= 0x5a;
        let _ = adapter_from_bytes(&mut mlp(), &w, cfg);
    }
}

#[test]
fn a_failed_load_leaves_the_model_unchanged() {
    let _rng = common::global_rng_turn();
    let model = lora_model(1);
    let good = adapter_to_bytes(&model).unwrap();
    let mut target = lora_model(4);
    let before: Vec<(String, Vec<u32>, bool)> = target
        .named_parameters()
        .iter()
        .map(|(n, t)| (n.clone(), bits(t), t.requires_grad()))
        .collect();
    let bad = good.config.replace("\"r\": 3", "\"r\": 2");
    assert!(adapter_from_bytes(&mut target, &good.weights, bad.as_bytes()).is_err());
    assert!(adapter_from_bytes(&mut target, &good.weights[..50], good.config.as_bytes()).is_err());
    let after: Vec<(String, Vec<u32>, bool)> = target
        .named_parameters()
        .iter()
        .map(|(n, t)| (n.clone(), bits(t), t.requires_grad()))
        .collect();
    assert_eq!(before, after);
    // A merged adapter must be unmerged before another is loaded over it.
    target.merge_lora().unwrap();
    let err = adapter_from_bytes(&mut target, &good.weights, good.config.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("unmerge"), "{err}");
    // An adapter the model has but the file lacks is reported missing.
    target.unmerge_lora().unwrap();
    let mut one = mlp();
    one.add_lora(&LoraConfig::new(3, 6.0, &["0"])).unwrap();
    let f = adapter_to_bytes(&one).unwrap();
    expect_state_dict_err(
        adapter_from_bytes(&mut target, &f.weights, f.config.as_bytes()),
        "missing: base_model.model.2.lora_A.weight",
    );
    assert!(matches!(
        adapter_to_bytes(&mlp()),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn peft_config_parses() {
    let _rng = common::global_rng_turn();
    let text = std::fs::read(format!("{FIX}lora_adapter/adapter_config.json")).unwrap();
    let c = parse_adapter_config(&text).unwrap();
    assert_eq!(c, LoraConfig::new(2, 6.0, &["0", "2"]));
    let c =
        parse_adapter_config(br#"{"r": 4, "lora_alpha": 1.5, "target_modules": "q|v"}"#).unwrap();
    assert_eq!(
        (c.r, c.alpha, c.dropout, c.target_modules),
        (4, 1.5, 0.0, vec!["q|v".into()])
    );
    let cfg = LoraConfig::new(2, 1.0, &["0"]).with_dropout(0.1);
    let mut m = mlp();
    m.add_lora(&cfg).unwrap();
    let files = adapter_to_bytes(&m).unwrap();
    assert!(
        files.config.contains("\"lora_dropout\": 0.1"),
        "{}",
        files.config
    );
    assert_eq!(parse_adapter_config(files.config.as_bytes()).unwrap(), cfg);
}
