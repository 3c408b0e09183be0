//! Arbitrary bytes into the safetensors decoder: never a panic; it agrees
//! with the `safetensors` crate (both `Ok` with the same tensors and
//! metadata, or both `Err`, but for the stricter cases documented in
//! src/io/mod.rs); what decodes is self-consistent and survives an
//! encode/decode round trip unchanged, and the crate reads the re-encoded
//! bytes identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::io::{TensorFile, from_safetensors, to_safetensors};
use train_station::{Error, Tensor};

#[path = "../../../tests/common/safetensors_ref.rs"]
mod reference;
use reference::Agreement;

/// The tensors sorted by name (decode order is data order, encode order is
/// name order).
fn by_name(f: &TensorFile) -> Vec<&(String, Tensor)> {
    let mut v: Vec<_> = f.tensors.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fuzz_target!(|data: &[u8]| {
    // The memory pool refusing (a huge valid tensor) says nothing about the
    // format: only then is the comparison skipped.
    if matches!(from_safetensors(data), Err(Error::OutOfMemory { .. })) {
        return;
    }
    reference::agree(data);
    let Ok(file) = from_safetensors(data) else {
        return;
    };
    // Nothing is allocated beyond what the bytes hold: every element came
    // from at least one byte of tensor data.
    let total: usize = file.tensors.iter().map(|(_, t)| t.numel()).sum();
    assert!(total <= data.len());
    for (_, t) in &file.tensors {
        assert_eq!(t.to_vec().len(), t.numel());
    }
    let meta: Vec<(&str, &str)> = file
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bytes = to_safetensors(file.tensors.iter().map(|(n, t)| (n.as_str(), t)), &meta)
        .expect("a decoded file encodes");
    let again = from_safetensors(&bytes).expect("an encoded file decodes");
    assert_eq!(again.metadata, file.metadata);
    assert_eq!(again.tensors.len(), file.tensors.len());
    for ((n, t), (m, u)) in by_name(&again).into_iter().zip(by_name(&file)) {
        assert_eq!(n, m);
        assert_eq!(t.dims(), u.dims());
        let (a, b) = (t.to_vec(), u.to_vec());
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
    // The crate reads the re-encoded file as this library does.
    assert_eq!(reference::agree(&bytes), Agreement::BothOk);
});
