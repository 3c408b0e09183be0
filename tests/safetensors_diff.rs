//! The library's own safetensors codec against the `safetensors` crate:
//! each reads what the other writes, identically; on hand-picked, random,
//! mutated and hostile buffers both decoders agree on `Ok` vs `Err` and on
//! what they read, except in the documented stricter cases (src/io/mod.rs).

use std::collections::HashMap;

use proptest::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use train_station::Tensor;
use train_station::io::{checkpoint_to_bytes, from_safetensors, to_safetensors};
use train_station::nn::{Linear, Module};
use train_station::optim::{Adam, AdamConfig, Optimizer};

#[path = "common/safetensors_ref.rs"]
mod reference;
use reference::{Agreement, agree, file};

const CASES: u32 = if cfg!(miri) { 4 } else { 256 };

/// Names and metadata with the characters JSON must escape, and others.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z._0-9]{0,12}",
        "[\"\\\\/\u{0}-\u{1f}\u{7f} aé😀]{0,6}",
        any::<String>(),
    ]
}

/// 0 to 5 tensors of rank 0 to 3 with arbitrary f32 bits (NaNs included),
/// names unique.
fn tensors() -> impl Strategy<Value = Vec<(String, Vec<usize>, Vec<f32>)>> {
    prop::collection::btree_map(text(), prop::collection::vec(0usize..4, 0..4), 0..5).prop_flat_map(
        |m| {
            m.into_iter()
                .map(|(name, dims)| {
                    let n = dims.iter().product::<usize>();
                    prop::collection::vec(any::<u32>(), n)
                        .prop_map(move |bits| {
                            let v = bits.into_iter().map(f32::from_bits).collect();
                            (name.clone(), dims.clone(), v)
                        })
                        .boxed()
                })
                .collect::<Vec<_>>()
        },
    )
}

fn metadata() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(text(), text(), 0..4).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// The crate reads what this library writes: same tensors (bit for bit)
    /// and metadata; with at most one metadata key (the crate's order is a
    /// HashMap's otherwise) the bytes are the crate's own.
    #[test]
    fn the_crate_reads_what_we_write(ts in tensors(), meta in metadata()) {
        let owned: Vec<(String, Tensor)> = ts
            .iter()
            .map(|(n, d, v)| (n.clone(), Tensor::from_slice(v, d.as_slice()).unwrap()))
            .collect();
        let m: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let bytes = to_safetensors(owned.iter().map(|(n, t)| (n.as_str(), t)), &m).unwrap();
        prop_assert_eq!(agree(&bytes), Agreement::BothOk);

        let st = SafeTensors::deserialize(&bytes).unwrap();
        prop_assert_eq!(st.len(), ts.len());
        for (name, dims, v) in &ts {
            let view = st.tensor(name).unwrap();
            prop_assert_eq!(view.dtype(), Dtype::F32);
            prop_assert_eq!(view.shape(), dims.as_slice());
            let want: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            prop_assert_eq!(view.data(), want.as_slice());
        }
        let (_, info) = SafeTensors::read_metadata(&bytes).unwrap();
        let got: HashMap<String, String> =
            info.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(got, meta.iter().cloned().collect::<HashMap<_, _>>());

        if meta.len() <= 1 {
            let raw: Vec<Vec<u8>> =
                ts.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
            let views: Vec<(&str, TensorView<'_>)> = ts
                .iter()
                .zip(&raw)
                .map(|((n, d, _), r)| (n.as_str(), TensorView::new(Dtype::F32, d.clone(), r).unwrap()))
                .collect();
            let info = (!meta.is_empty()).then(|| meta.iter().cloned().collect());
            prop_assert_eq!(safetensors::serialize(views, info).unwrap(), bytes);
        }
    }

    /// This library reads what the crate writes, for every dtype it
    /// converts, as the reference conversion does.
    #[test]
    fn we_read_what_the_crate_writes(
        entries in prop::collection::btree_map(
            "[a-z]{1,6}",
            (0usize..12, prop::collection::vec(0usize..4, 0..3), any::<u64>()),
            0..5,
        ),
        meta in metadata(),
    ) {
        const DTYPES: [Dtype; 12] = [
            Dtype::BOOL, Dtype::U8, Dtype::I8, Dtype::I16, Dtype::U16, Dtype::F16,
            Dtype::BF16, Dtype::I32, Dtype::U32, Dtype::F32, Dtype::F64, Dtype::I64,
        ];
        let data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = entries
            .into_iter()
            .map(|(name, (d, dims, seed))| {
                let dtype = DTYPES[d];
                let n = dims.iter().product::<usize>() * dtype.bitsize() / 8;
                let bytes = (0..n as u64).map(|i| (seed.rotate_left(i as u32 * 7) ^ i) as u8).collect();
                (name, dtype, dims, bytes)
            })
            .collect();
        let views: Vec<(&str, TensorView<'_>)> = data
            .iter()
            .map(|(n, t, d, b)| (n.as_str(), TensorView::new(*t, d.clone(), b).unwrap()))
            .collect();
        let info = (!meta.is_empty()).then(|| meta.iter().cloned().collect());
        let bytes = safetensors::serialize(views, info).unwrap();
        prop_assert_eq!(agree(&bytes), Agreement::BothOk);
        let ours = from_safetensors(&bytes).unwrap();
        prop_assert_eq!(ours.tensors.len(), data.len());
        prop_assert_eq!(ours.metadata, meta);
    }

    /// Bit flips, byte changes, truncations and insertions of valid files:
    /// both decoders agree (or differ only as documented).
    #[test]
    fn mutated_files_agree(
        ts in tensors(),
        meta in metadata(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let owned: Vec<(String, Tensor)> = ts
            .iter()
            .map(|(n, d, v)| (n.clone(), Tensor::from_slice(v, d.as_slice()).unwrap()))
            .collect();
        let m: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut bytes = to_safetensors(owned.iter().map(|(n, t)| (n.as_str(), t)), &m).unwrap();
        for (at, v, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] ^= 1 << (v % 8),
                1 => bytes[i] = v,
                2 => bytes.truncate(i),
                _ => bytes.insert(i, v),
            }
            if bytes.is_empty() {
                break;
            }
        }
        agree(&bytes);
    }

    /// Headers built from the format's pieces, with random dtypes (unknown
    /// and unsupported ones too), shapes, offsets, field orders, whitespace,
    /// extra fields and duplicates.
    #[test]
    fn generated_headers_agree(
        entries in prop::collection::vec(
            (
                "[ab]{0,2}",
                prop::sample::select(vec!["F32", "F16", "U8", "F64", "BOOL", "C64", "F8_E4M3", "F4", "Q7", "f32"]),
                prop::collection::vec(prop::sample::select(vec![0usize, 1, 2, 3, 1 << 62]), 0..10),
                0u8..6,
                any::<bool>(),
            ),
            0..4,
        ),
        meta in prop::option::of(prop::collection::vec(("[kx]{0,2}", "[v\\\\\"]{0,3}"), 0..3)),
        data_extra in 0usize..3,
        ws in prop::sample::select(vec!["", " ", "\n\t\r "]),
    ) {
        let mut h = String::from("{");
        let mut parts = Vec::new();
        if let Some(meta) = &meta {
            let kv: Vec<String> = meta.iter().map(|(k, v)| format!("\"{k}\":{ws}\"{v}\"")).collect();
            parts.push(format!("\"__metadata__\":{{{}}}", kv.join(",")));
        }
        let mut offset = 0usize;
        for (name, dtype, dims, quirk, fields_reversed) in &entries {
            let width = match *dtype { "F64" => 8, "F32" => 4, "F16" => 2, _ => 1 };
            let bytes = dims.iter().try_fold(width, |a: usize, &d| a.checked_mul(d)).unwrap_or(3);
            let end = offset.saturating_add(bytes);
            let (s, e) = match quirk {
                0 => (offset, end.saturating_add(1)),
                1 => (offset.saturating_add(1), offset.saturating_add(1)),
                _ => (offset, end),
            };
            offset = e;
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            let mut fields = vec![
                format!("\"dtype\":{ws}\"{dtype}\""),
                format!("\"shape\":[{}]", dims.join(&format!(",{ws}"))),
                format!("\"data_offsets\":[{s},{e}]"),
            ];
            if *quirk == 2 { fields.push("\"extra\":[1,{\"x\":null}]".into()); }
            if *quirk == 3 { fields.pop(); }
            if *fields_reversed { fields.reverse(); }
            parts.push(format!("\"{name}\":{ws}{{{}}}", fields.join(",")));
        }
        h.push_str(&parts.join(&format!("{ws},")));
        h.push_str(ws);
        h.push('}');
        agree(&file(&h, &vec![7u8; offset.min(1 << 16) + data_extra % 2]));
    }
}

/// A header with one tensor `a` whose fields are given as JSON text.
fn one(dtype: &str, shape: &str, offsets: &str) -> String {
    format!(r#"{{"a":{{"dtype":{dtype},"shape":{shape},"data_offsets":{offsets}}}}}"#)
}

/// Hand-picked buffers: what each must give, and that both decoders agree.
#[test]
fn hand_picked_cases_agree() {
    use Agreement::*;
    let f32x1 = r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
    let spaced = " \n{\t\"a\" :\r{ \"dtype\" : \"F32\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 4 ] } } ";
    let zero_size = r#"{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let reversed = r#"{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    let extra = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":{"y":[true]}}}"#;
    let twice = r#"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    // (what, header, data bytes, outcome); one case a line.
    #[rustfmt::skip]
    let cases: Vec<(&str, String, usize, Agreement)> = vec![
        ("empty object", "{}".into(), 0, BothOk),
        ("padded", "{}      ".into(), 0, BothOk),
        ("whitespace", spaced.into(), 4, BothOk),
        ("escaped name", format!(r#"{{"\u00e9\ud83d\ude00\n\"\\\/":{f32x1}}}"#), 4, BothOk),
        ("escaped fields", one(r#""F\u0033\u0032""#, "[1]", "[0,4]").replace("\"dtype", "\"\\u0064type"), 4, BothOk),
        ("escaped __metadata__", r#"{"\u005f_metadata__":{"k":"v"}}"#.into(), 0, BothOk),
        ("null metadata", r#"{"__metadata__":null}"#.into(), 0, BothOk),
        ("empty metadata", r#"{"__metadata__":{}}"#.into(), 0, BothOk),
        ("metadata strings", r#"{"__metadata__":{"":"","a\u0000":"\t\ud800\udc00"}}"#.into(), 0, BothOk),
        ("scalar", one(r#""F32""#, "[]", "[0,4]"), 4, BothOk),
        ("zero-size", zero_size.into(), 2, BothOk),
        ("any order", reversed.into(), 2, BothOk),
        // The documented stricter cases: the crate reads them, this library does not.
        ("duplicate name", format!(r#"{{"a":{f32x1},"a":{f32x1}}}"#), 4, Stricter("two tensors have the same name")),
        ("duplicate metadata key", r#"{"__metadata__":{"k":"1","k":"2"}}"#.into(), 0, Stricter("a __metadata__ key appears twice")),
        ("extra field", extra.into(), 4, Stricter("a tensor entry has a field other than dtype, shape and data_offsets")),
        ("array entry", r#"{"a":["F32",[1],[0,4]]}"#.into(), 4, Stricter("a tensor entry is not a JSON object")),
        ("dtype as a map", one(r#"{"F32":null}"#, "[1]", "[0,4]"), 4, Stricter("a tensor's dtype is not a string")),
        // Both refuse.
        ("trailing comma", format!(r#"{{"a":{f32x1},}}"#), 4, BothErr),
        ("trailing data", "{} x".into(), 0, BothErr),
        ("nul padding", "{}\0".into(), 0, BothErr),
        ("lone surrogate", r#"{"__metadata__":{"k":"\ud800"}}"#.into(), 0, BothErr),
        ("low surrogate", r#"{"__metadata__":{"k":"\udc00x"}}"#.into(), 0, BothErr),
        ("raw newline", "{\"__metadata__\":{\"k\":\"a\nb\"}}".into(), 0, BothErr),
        ("bad escape", r#"{"__metadata__":{"k":"\q"}}"#.into(), 0, BothErr),
        ("number metadata", r#"{"__metadata__":{"k":1}}"#.into(), 0, BothErr),
        ("metadata as string", r#"{"__metadata__":"k"}"#.into(), 0, BothErr),
        ("float dim", one(r#""F32""#, "[1.0]", "[0,4]"), 4, BothErr),
        ("exponent dim", one(r#""F32""#, "[1e0]", "[0,4]"), 4, BothErr),
        ("leading zero", one(r#""F32""#, "[01]", "[0,4]"), 4, BothErr),
        ("minus zero", one(r#""F32""#, "[-0]", "[0,0]"), 0, BothErr),
        ("huge dim", one(r#""F32""#, "[18446744073709551616]", "[0,0]"), 0, BothErr),
        ("three offsets", one(r#""F32""#, "[1]", "[0,4,4]"), 4, BothErr),
        ("one offset", one(r#""F32""#, "[1]", "[4]"), 4, BothErr),
        ("missing field", r#"{"a":{"dtype":"F32","shape":[1]}}"#.into(), 4, BothErr),
        ("field twice", twice.into(), 4, BothErr),
        ("unsupported dtype", one(r#""C64""#, "[1]", "[0,8]"), 8, BothErr),
        ("rank 9", one(r#""F32""#, "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4, BothErr),
        ("gap", one(r#""U8""#, "[1]", "[1,2]"), 2, BothErr),
        ("short data", one(r#""F64""#, "[1]", "[0,4]"), 4, BothErr),
        ("top-level array", "[]".into(), 0, BothErr),
        ("deep nesting", format!("{{\"a\":{}", "[".repeat(5000)), 0, BothErr),
        ("empty header", String::new(), 0, BothErr),
    ];
    for (what, header, data, want) in cases {
        assert_eq!(agree(&file(&header, &vec![0; data])), want, "{what}");
    }
    // Framing: the 8-byte length and where it points.
    let mut not_utf8 = file(r#"{"__metadata__":{"k":"xx"}}"#, &[]);
    let at = not_utf8.len() - 4;
    not_utf8[at] = 0xff;
    let framing: [(&str, Vec<u8>); 5] = [
        ("short buffer", vec![2, 0, 0]),
        (
            "header past end",
            [&1000u64.to_le_bytes()[..], b"{}"].concat(),
        ),
        (
            "header over 100 MB",
            [&100_000_001u64.to_le_bytes()[..], b"{}"].concat(),
        ),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
        ("not UTF-8", not_utf8),
    ];
    for (what, bytes) in framing {
        assert_eq!(agree(&bytes), BothErr, "{what}");
    }
}

/// The same model and optimizer state checkpointed twice gives the same
/// bytes (with the crate, metadata went through a HashMap and its order, so
/// the bytes, changed from save to save), and metadata order in the call
/// does not matter.
#[test]
fn saves_of_the_same_state_give_the_same_bytes() {
    let mut model = Linear::new(3, 2);
    let mut opt = Adam::new(&model.parameters(), AdamConfig::default());
    let x = Tensor::randn([4, 3], Some(1));
    model.forward(&x).sum().backward();
    opt.step_module(&mut model).unwrap();
    let extra = [("epoch", "3"), ("run", "a\"b")];
    let a = checkpoint_to_bytes(&model, Some(&opt), None, 7, &extra).unwrap();
    let b = checkpoint_to_bytes(&model, Some(&opt), None, 7, &extra).unwrap();
    assert_eq!(a, b);
    let (_, info) = SafeTensors::read_metadata(&a).unwrap();
    assert!(
        info.metadata().as_ref().unwrap().len() > 3,
        "many metadata keys"
    );
    assert_eq!(agree(&a), Agreement::BothOk);

    let t = Tensor::ones([2]);
    let m1 = to_safetensors([("t", &t)], &[("b", "2"), ("a", "1"), ("c", "3")]).unwrap();
    let m2 = to_safetensors([("t", &t)], &[("c", "3"), ("b", "2"), ("a", "1")]).unwrap();
    assert_eq!(m1, m2);
    let header = std::str::from_utf8(&m1[8..m1.len() - 8]).unwrap();
    assert!(
        header.starts_with(r#"{"__metadata__":{"a":"1","b":"2","c":"3"},"t":"#),
        "{header}"
    );
    assert_eq!((m1.len() - 8) % 8, 0, "header padded to a multiple of 8");
    assert!(
        to_safetensors([("t", &t)], &[("a", "1"), ("a", "2")]).is_err(),
        "duplicate metadata keys are refused"
    );
}
