//! Partial fine-tuning: freezing all but the last layers, BitFit, LoRA
//! adapters (forward/backward against PEFT fixtures, merge/unmerge, gradcheck)
//! and PEFT adapter files (round trip, interop, errors).
//!
//! Modules: `adapters` (LoRA layers against PEFT, merging, gradients,
//! dropout), `partial` (freezing all but the last layers, BitFit) and `files`
//! (PEFT adapter files). This file holds the model and helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod adapters;
mod files;
mod partial;

use train_station::Tensor;
use train_station::io::{adapter_from_bytes, module_from_bytes};
use train_station::nn::{Linear, Module, Relu, Sequential};

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
