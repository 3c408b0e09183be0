//! LoRA adapters in Hugging Face PEFT's layout, as bytes (works without
//! `std`; [`save_adapter`](super::save_adapter) and
//! [`load_adapter`](super::load_adapter) add the directory).
//!
//! A PEFT adapter directory holds two files:
//!
//! - `adapter_model.safetensors`: for every adapted layer `<m>`,
//!   `base_model.model.<m>.lora_A.weight` `[r, in]` and
//!   `base_model.model.<m>.lora_B.weight` `[out, r]` (PEFT drops the adapter
//!   name `default` that the model's own state dict carries);
//! - `adapter_config.json`: `peft_type: "LORA"`, `r`, `lora_alpha`,
//!   `lora_dropout`, `target_modules`, `bias: "none"`,
//!   `fan_in_fan_out: false`, `task_type`, ... The scaling `lora_alpha / r`
//!   is not stored.
//!
//! The JSON is read and written with `serde_json` (`alloc` feature, no
//! `std`): the `safetensors` crate already depends on it for its header, so
//! it adds no crate to the build, and a real parser handles escapes, nesting
//! and numbers that a hand-written subset would get wrong. Its nesting limit
//! (128) keeps hostile input from exhausting the stack.
//!
//! Loading never panics: bad JSON, fields this library cannot honour
//! (`use_dora`, `use_rslora`, `fan_in_fan_out`, `lora_bias`, a `bias` other than
//! `"none"`, `rank_pattern`, `alpha_pattern`, `modules_to_save`), keys that
//! are not LoRA weights, a layer the model lacks, and wrong shapes give an
//! `Err` that names the field or key. Unknown fields are ignored.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use super::{from_safetensors, to_safetensors};
use crate::error::{Error, Result};
use crate::nn::{Lora, LoraConfig, Module};
use crate::tensor::Tensor;

/// File name of the weights inside an adapter directory.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
/// File name of the configuration inside an adapter directory.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

const PREFIX: &str = "base_model.model.";

/// The two files of a PEFT adapter directory, as bytes.
#[derive(Clone, Debug)]
pub struct AdapterFiles {
    /// Contents of `adapter_model.safetensors`.
    pub weights: Vec<u8>,
    /// Contents of `adapter_config.json`.
    pub config: String,
}

/// The file key of an adapted layer's weight (`which` is `"lora_A"` or
/// `"lora_B"`).
fn key(module: &str, which: &str) -> String {
    if module.is_empty() {
        format!("{PREFIX}{which}.weight")
    } else {
        format!("{PREFIX}{module}.{which}.weight")
    }
}

/// A JSON number for `v` with `v`'s shortest decimal form (`0.1f32` is
/// written `0.1`, not `0.10000000149011612`); integral values as integers,
/// as PEFT writes `lora_alpha`.
fn number(v: f32) -> Value {
    if libm::truncf(v) == v && libm::fabsf(v) < 9.0e15 {
        return Value::from(v as i64);
    }
    let shortest: f64 = format!("{v}").parse().unwrap_or(v as f64);
    Value::from(shortest)
}

/// Encodes every LoRA adapter of `model` as PEFT's two adapter files.
///
/// Returns `InvalidArgument` if the model has no adapter, or if its
/// adapters differ in rank, alpha or dropout (PEFT's single config cannot
/// describe that without `rank_pattern`, which this library does not
/// write); `OutOfMemory` if allocation fails.
pub fn adapter_to_bytes(model: &dyn Module) -> Result<AdapterFiles> {
    const OP: &str = "adapter_to_bytes";
    let mut adapters: Vec<(String, Tensor, Tensor, usize, f32, f32)> = Vec::new();
    model.visit_linears("", &mut |n, l| {
        if let Some(lora) = l.lora() {
            adapters.push((
                n.to_string(),
                lora.a.detach(),
                lora.b.detach(),
                lora.rank(),
                lora.alpha(),
                lora.dropout(),
            ));
        }
    });
    let Some(&(_, _, _, r, alpha, dropout)) = adapters.first() else {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "the model has no LoRA adapter",
        });
    };
    if adapters
        .iter()
        .any(|x| (x.3, x.4.to_bits(), x.5.to_bits()) != (r, alpha.to_bits(), dropout.to_bits()))
    {
        return Err(Error::InvalidArgument {
            op: OP,
            detail: "the adapters differ in r, alpha or dropout; one adapter_config.json cannot describe them",
        });
    }
    let keys: Vec<(String, String)> = adapters
        .iter()
        .map(|(n, ..)| (key(n, "lora_A"), key(n, "lora_B")))
        .collect();
    let mut tensors: Vec<(&str, &Tensor)> = Vec::new();
    for ((ka, kb), (_, a, b, ..)) in keys.iter().zip(&adapters) {
        tensors.push((ka, a));
        tensors.push((kb, b));
    }
    let weights = to_safetensors(tensors, &[("format", "pt")])?;

    let targets = adapters.iter().map(|(n, ..)| Value::from(n.as_str()));
    let mut c = Map::new();
    c.insert("peft_type".into(), "LORA".into());
    c.insert("task_type".into(), Value::Null);
    c.insert("base_model_name_or_path".into(), Value::Null);
    c.insert("revision".into(), Value::Null);
    c.insert("r".into(), Value::from(r as u64));
    c.insert("lora_alpha".into(), number(alpha));
    c.insert("lora_dropout".into(), number(dropout));
    c.insert("target_modules".into(), Value::Array(targets.collect()));
    c.insert("bias".into(), "none".into());
    c.insert("fan_in_fan_out".into(), false.into());
    c.insert("inference_mode".into(), true.into());
    c.insert("init_lora_weights".into(), true.into());
    c.insert("use_rslora".into(), false.into());
    c.insert("use_dora".into(), false.into());
    c.insert("modules_to_save".into(), Value::Null);
    c.insert("layers_to_transform".into(), Value::Null);
    c.insert("layers_pattern".into(), Value::Null);
    c.insert("rank_pattern".into(), Value::Object(Map::new()));
    c.insert("alpha_pattern".into(), Value::Object(Map::new()));
    let config = serde_json::to_string_pretty(&Value::Object(c)).map_err(|_| Error::Format {
        op: OP,
        detail: "the adapter config could not be encoded as JSON",
    })?;
    Ok(AdapterFiles { weights, config })
}

fn bad(detail: &'static str) -> Error {
    Error::Format {
        op: "adapter_config",
        detail,
    }
}

/// Reads a PEFT `adapter_config.json`: `r`, `lora_alpha`, `lora_dropout`
/// (0 if absent) and `target_modules` (a list of names; a single string,
/// which PEFT treats as a regular expression, is returned as one entry;
/// `null` as none). Unknown fields are ignored.
///
/// Returns `Format` naming the field if the JSON is invalid, `peft_type` is
/// not `"LORA"`, `r` is not a positive integer, `lora_alpha` is missing or
/// not a number, `lora_dropout` is outside `[0, 1)`, or the config asks for
/// something this library does not implement (`use_dora`, `use_rslora`,
/// `fan_in_fan_out`, `lora_bias`, `bias` other than `"none"`, a non-empty `rank_pattern`,
/// `alpha_pattern` or `modules_to_save`).
pub fn parse_adapter_config(json: &[u8]) -> Result<LoraConfig> {
    let value: Value =
        serde_json::from_slice(json).map_err(|_| bad("adapter_config.json is not valid JSON"))?;
    let Value::Object(c) = value else {
        return Err(bad("adapter_config.json is not a JSON object"));
    };
    let field = |k: &str| c.get(k).filter(|v| !v.is_null());
    if field("peft_type").is_some_and(|v| *v != "LORA") {
        return Err(bad("peft_type is not \"LORA\""));
    }
    let r = field("r")
        .and_then(Value::as_u64)
        .filter(|&r| r >= 1 && r <= u32::MAX as u64)
        .ok_or(bad("r is missing or not a positive integer"))? as usize;
    let alpha = field("lora_alpha")
        .and_then(Value::as_f64)
        .ok_or(bad("lora_alpha is missing or not a number"))? as f32;
    let dropout = match field("lora_dropout") {
        None => 0.0,
        Some(v) => v
            .as_f64()
            .filter(|p| (0.0..1.0).contains(p))
            .ok_or(bad("lora_dropout is not a number in [0, 1)"))? as f32,
    };
    let target_modules = match field("target_modules") {
        None => Vec::new(),
        Some(Value::String(s)) => alloc::vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or(bad("target_modules holds something other than strings"))?,
        Some(_) => return Err(bad("target_modules is not a list of names")),
    };
    let truthy = |k: &str| field(k).is_some_and(|v| *v != false);
    let non_empty = |k: &str| {
        field(k).is_some_and(|v| match v {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        })
    };
    if truthy("use_dora") {
        return Err(bad("use_dora (DoRA) is not supported"));
    }
    if truthy("use_rslora") {
        return Err(bad("use_rslora (scaling alpha/sqrt(r)) is not supported"));
    }
    if truthy("fan_in_fan_out") {
        return Err(bad(
            "fan_in_fan_out (Conv1D-style weights) is not supported",
        ));
    }
    if truthy("lora_bias") {
        return Err(bad("lora_bias (a bias on lora_B) is not supported"));
    }
    if field("bias").is_some_and(|v| *v != "none") {
        return Err(bad("bias other than \"none\" is not supported"));
    }
    if non_empty("rank_pattern") || non_empty("alpha_pattern") {
        return Err(bad(
            "per-layer rank_pattern / alpha_pattern is not supported",
        ));
    }
    if non_empty("modules_to_save") {
        return Err(bad("modules_to_save is not supported"));
    }
    let config = LoraConfig {
        r,
        alpha,
        dropout,
        target_modules,
    };
    config.check("adapter_config")?;
    Ok(config)
}

/// One adapted layer found in an adapter file.
struct Entry {
    module: String,
    a: Option<Tensor>,
    b: Option<Tensor>,
}

/// Loads a PEFT adapter (the bytes of `adapter_model.safetensors` and
/// `adapter_config.json`) into `model`, as `PeftModel.from_pretrained`
/// does with a base model: every layer with weights in the file gets an
/// adapter with those weights and the config's alpha and dropout (replacing
/// an unmerged adapter it already has), every other parameter is frozen
/// (the loaded A and B are trainable). Returns the config, its
/// `target_modules` replaced by the names of the loaded layers.
///
/// All checks come first; on any error the model is unchanged:
/// - `Format`: bad JSON or config fields (see [`parse_adapter_config`]),
///   corrupt safetensors bytes, or a file with no LoRA weights;
/// - [`Error::StateDict`] naming the keys: a key that is not
///   `base_model.model.<m>.lora_A.weight` / `lora_B.weight` (unexpected), an
///   A without its B or the reverse, or an adapter the model already has
///   that the file lacks (missing), and A not `[r, in]` or B not `[out, r]`
///   (mis-shaped);
/// - [`Error::UnknownModule`]: the file has weights for a layer that is not a
///   `Linear` of `model`;
/// - `InvalidArgument`: a layer's current adapter is merged (unmerge first);
/// - `OutOfMemory`.
pub fn adapter_from_bytes(
    model: &mut dyn Module,
    weights: &[u8],
    config_json: &[u8],
) -> Result<LoraConfig> {
    const OP: &str = "adapter_from_bytes";
    let mut config = parse_adapter_config(config_json)?;
    let file = from_safetensors(weights)?;
    let mut entries: Vec<Entry> = Vec::new();
    let (mut missing, mut unexpected, mut mismatched) = (Vec::new(), Vec::new(), Vec::new());
    for (k, t) in file.tensors {
        let parsed = k.strip_prefix(PREFIX).and_then(|rest| {
            let (m, which) = match rest.strip_suffix("lora_A.weight") {
                Some(m) => (m, 0),
                None => (rest.strip_suffix("lora_B.weight")?, 1),
            };
            match m.strip_suffix('.') {
                Some(m) if !m.is_empty() => Some((m, which)),
                None if m.is_empty() => Some(("", which)),
                _ => None,
            }
        });
        let Some((m, which)) = parsed else {
            unexpected.push(k);
            continue;
        };
        let i = match entries.iter().position(|e| e.module == m) {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    module: m.to_string(),
                    a: None,
                    b: None,
                });
                entries.len() - 1
            }
        };
        let slot = if which == 0 {
            &mut entries[i].a
        } else {
            &mut entries[i].b
        };
        *slot = Some(t);
    }
    if entries.is_empty() && unexpected.is_empty() {
        return Err(Error::Format {
            op: OP,
            detail: "the adapter file holds no LoRA weights",
        });
    }
    let mut layers: Vec<(String, [usize; 2], Option<bool>)> = Vec::new();
    model.visit_linears("", &mut |n, l| {
        layers.push((
            n.to_string(),
            [l.out_features(), l.in_features()],
            l.lora().map(Lora::is_merged),
        ))
    });
    for e in &entries {
        let Some((_, [out, inp], merged)) = layers.iter().find(|(n, ..)| *n == e.module) else {
            return Err(Error::UnknownModule {
                op: OP,
                name: e.module.clone(),
                detail: "the adapter has weights for this layer but the model has no Linear layer of that name",
            });
        };
        if *merged == Some(true) {
            return Err(Error::InvalidArgument {
                op: OP,
                detail: "a layer's current LoRA adapter is merged; unmerge it before loading",
            });
        }
        let (ka, kb) = (key(&e.module, "lora_A"), key(&e.module, "lora_B"));
        match &e.a {
            None => missing.push(ka),
            Some(a) if a.dims() != [config.r, *inp] => mismatched.push(ka),
            Some(_) => {}
        }
        match &e.b {
            None => missing.push(kb),
            Some(b) if b.dims() != [*out, config.r] => mismatched.push(kb),
            Some(_) => {}
        }
    }
    for (n, _, merged) in &layers {
        if merged.is_some() && !entries.iter().any(|e| e.module == *n) {
            missing.push(key(n, "lora_A"));
            missing.push(key(n, "lora_B"));
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        let mut parts = Vec::new();
        for (label, names) in [
            ("mis-shaped: ", &mismatched),
            ("missing: ", &missing),
            ("unexpected: ", &unexpected),
        ] {
            if !names.is_empty() {
                parts.push(format!("{label}{}", names.join(", ")));
            }
        }
        return Err(Error::StateDict {
            missing: missing.len(),
            unexpected: unexpected.len(),
            mismatched: mismatched.len(),
            keys: parts.join("; "),
        });
    }
    let mut built = Vec::with_capacity(entries.len());
    for e in entries {
        // Every entry has both weights (checked above).
        if let (Some(a), Some(b)) = (e.a, e.b) {
            let lora = Lora::from_parameters(a, b, config.alpha, config.dropout)?;
            built.push((e.module, lora));
        }
    }
    config.target_modules = built.iter().map(|(n, _)| n.clone()).collect();
    crate::nn::attach_frozen(model, built);
    Ok(config)
}
