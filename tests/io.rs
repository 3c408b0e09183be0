//! Safetensors I/O: round trips, PyTorch interop, crash-safe saves and
//! hostile input.

use proptest::prelude::*;
use train_station::io::{from_safetensors, to_safetensors};
use train_station::{Error, Tensor};

#[path = "common/safetensors_ref.rs"]
mod reference;

fn sample() -> Vec<(&'static str, Tensor)> {
    vec![
        ("a", Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3])),
        ("b.weight", Tensor::randn([4, 5], Some(3))),
        ("empty", Tensor::zeros([0, 7])),
        ("scalar", Tensor::scalar(-1.5)),
    ]
}

#[test]
fn round_trip_keeps_names_shapes_values_and_metadata() {
    let items = sample();
    let bytes = to_safetensors(
        items.iter().map(|(n, t)| (*n, t)),
        &[("step", "12"), ("kind", "test")],
    )
    .unwrap();
    let file = from_safetensors(&bytes).unwrap();
    assert_eq!(file.tensors.len(), items.len());
    for (name, t) in &items {
        let got = file.get(name).unwrap();
        assert_eq!(got.dims(), t.dims(), "{name}");
        assert_eq!(got.to_vec(), t.to_vec(), "{name}");
    }
    assert_eq!(file.meta("step"), Some("12"));
    assert_eq!(file.meta("kind"), Some("test"));
    assert_eq!(file.meta("missing"), None);
}

#[test]
fn views_are_written_in_logical_order_and_output_is_deterministic() {
    let base = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    let t = base.t();
    let a = to_safetensors([("t", &t), ("base", &base)], &[]).unwrap();
    let b = to_safetensors([("base", &base), ("t", &t.contiguous())], &[]).unwrap();
    assert_eq!(
        a, b,
        "same content, same bytes, whatever the order or layout"
    );
    let f = from_safetensors(&a).unwrap();
    assert_eq!(f.get("t").unwrap().to_vec(), t.to_vec());
    assert!(
        to_safetensors([("x", &base), ("x", &t)], &[]).is_err(),
        "duplicate names"
    );
}

/// A file written by `safetensors.torch.save_file` (tests/reference/gen_io.py)
/// loads here, with every dtype converted to f32.
#[test]
fn loads_files_saved_by_pytorch() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/fixtures/");
    let bytes = std::fs::read(format!("{dir}torch_saved.safetensors")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}torch_saved.json")).unwrap())
            .unwrap();
    let file = from_safetensors(&bytes).unwrap();
    assert_eq!(file.meta("format"), Some("pt"));
    let map = expected.as_object().unwrap();
    assert_eq!(file.tensors.len(), map.len());
    for (name, want) in map {
        let got = file.get(name).unwrap_or_else(|| panic!("missing {name}"));
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let data: Vec<f32> = want["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.dims(), &shape[..], "{name}");
        assert_eq!(got.to_vec(), data, "{name}");
    }
}

/// Writes the file that tests/reference/gen_io.py loads with PyTorch.
#[cfg(feature = "std")]
#[test]
fn writes_a_file_for_pytorch() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/interop");
    std::fs::create_dir_all(dir).unwrap();
    let a = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    let t = a.t();
    let s = Tensor::scalar(-1.5);
    let path = format!("{dir}/rust_saved.safetensors");
    train_station::io::save_safetensors(
        &path,
        [("a", &a), ("transposed", &t), ("scalar", &s)],
        &[],
    )
    .unwrap();
    let back = train_station::io::load_safetensors(&path).unwrap();
    assert_eq!(back.get("transposed").unwrap().to_vec(), t.to_vec());
}

#[cfg(feature = "std")]
#[test]
fn failed_saves_leave_the_previous_file_intact() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("ts-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let first = Tensor::full([3], 1.0);
    train_station::io::save_safetensors(&path, [("w", &first)], &[]).unwrap();
    let before = std::fs::read(&path).unwrap();

    // A write that fails halfway (as a full disk would).
    let r = train_station::io::write_atomic(&path, |f| {
        f.write_all(b"partial garbage")?;
        Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "simulated",
        ))
    });
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: "no storage space",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "old file intact");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temporary file removed: {leftovers:?}");

    // A successful save replaces it.
    let second = Tensor::full([3], 2.0);
    train_station::io::save_safetensors(&path, [("w", &second)], &[]).unwrap();
    let loaded = train_station::io::load_safetensors(&path).unwrap();
    assert_eq!(loaded.get("w").unwrap().to_vec(), vec![2.0; 3]);
    let missing = train_station::io::load_safetensors(dir.join("nope")).unwrap_err();
    assert!(
        missing.to_string().contains("entity not found"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn header(json: &str) -> Vec<u8> {
    let mut b = (json.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(json.as_bytes());
    b
}

#[test]
fn hostile_inputs_are_errors() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", vec![1, 2, 3]),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
        ("header past end", {
            let mut b = 1000u64.to_le_bytes().to_vec();
            b.extend_from_slice(b"{}");
            b
        }),
        ("not json", header("{not json")),
        ("not utf8", {
            let mut b = 2u64.to_le_bytes().to_vec();
            b.extend_from_slice(&[0xff, 0xfe]);
            b
        }),
        ("size overflow", {
            let mut b = header(
                r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
            );
            b.extend_from_slice(&[0; 16]);
            b
        }),
        (
            "data missing",
            header(r#"{"x":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#),
        ),
        ("offsets overlap", {
            let mut b = header(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            );
            b.extend_from_slice(&[0; 12]);
            b
        }),
        (
            "negative dim",
            header(r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#),
        ),
        (
            "unknown dtype",
            header(r#"{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#),
        ),
        ("rank too high", {
            let mut b =
                header(r#"{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#);
            b.extend_from_slice(&[0; 4]);
            b
        }),
    ];
    for (what, bytes) in cases {
        match from_safetensors(&bytes) {
            Err(Error::Format { .. }) => {}
            other => panic!("{what}: expected a format error, got {other:?}"),
        }
        // The `safetensors` crate refuses it too.
        assert_eq!(
            reference::agree(&bytes),
            reference::Agreement::BothErr,
            "{what}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 256 }, .. ProptestConfig::default() })]

    /// Mutated and truncated files never panic; they load or give an error.
    #[test]
    fn mutated_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let items = sample();
        let mut bytes = to_safetensors(items.iter().map(|(n, t)| (*n, t)), &[("k", "v")]).unwrap();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        // Both decoders agree (tests/safetensors_diff.rs has more).
        reference::agree(&bytes);
    }
}

/// A model's state dict saved by PyTorch (`safetensors.torch.save_file(
/// model.state_dict(), ...)`) loads into the same architecture built here and
/// gives PyTorch's output.
#[cfg(feature = "std")]
#[test]
fn loads_a_model_saved_by_pytorch() {
    use train_station::nn::{Linear, Module, Relu, Sequential};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/fixtures/");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}torch_mlp.json")).unwrap())
            .unwrap();
    let floats = |k: &str| -> Vec<f32> {
        expected[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let mut model = Sequential::new()
        .with(Linear::new(4, 8))
        .with(Relu)
        .with(Linear::new(8, 3));
    train_station::io::load_module(format!("{dir}torch_mlp.safetensors"), &mut model).unwrap();
    let keys: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let want_keys: Vec<String> = expected["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, want_keys);
    let x = Tensor::from_slice(&floats("input"), [5, 4]).unwrap();
    let y = model.forward(&x);
    let want = Tensor::from_slice(&floats("output"), [5, 3]).unwrap();
    assert!(y.allclose(&want, 1e-5, 1e-6), "{y}\nvs\n{want}");
}
