//! Arbitrary bytes into the safetensors decoder: never a panic; what decodes
//! is self-consistent and survives an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use train_station::Tensor;
use train_station::io::{TensorFile, from_safetensors, to_safetensors};

/// The tensors sorted by name (decode order is data order, encode order is
/// name order).
fn by_name(f: &TensorFile) -> Vec<&(String, Tensor)> {
    let mut v: Vec<_> = f.tensors.iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fuzz_target!(|data: &[u8]| {
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
});
