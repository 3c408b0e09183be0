//! PEFT adapter files: round trips through bytes and directories, a file for
//! PEFT to load, refusal of bad adapters, and config parsing.

use crate::common::{self, randn};
#[cfg(feature = "std")]
use train_station::io::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_adapter, save_adapter};
use train_station::io::{adapter_from_bytes, adapter_to_bytes, parse_adapter_config};
use train_station::nn::{LoraConfig, Module, Sequential};
use train_station::{Error, Tensor, manual_seed, no_grad};

#[cfg(feature = "std")]
use super::peft_model;
use super::{FIX, bits, flags, mlp};

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
