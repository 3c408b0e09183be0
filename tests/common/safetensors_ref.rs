//! The `safetensors` crate as the reference for the library's own codec:
//! both decoders on the same bytes, compared. Included by path from
//! tests/safetensors_diff.rs, tests/io.rs, tests/hostile_files.rs and the
//! fuzz target fuzz/src/bin/safetensors.rs (a separate workspace).
#![allow(dead_code)]

use safetensors::{Dtype, SafeTensors};
use train_station::io::from_safetensors;
use train_station::{Error, Shape};

/// What a decoder read: tensors sorted by name (shape, f32 bits) and
/// metadata sorted by key.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub tensors: Vec<(String, Vec<usize>, Vec<u32>)>,
    pub metadata: Vec<(String, String)>,
}

impl PartialEq for Decoded {
    /// Equal names, shapes, metadata, and values bit for bit (any NaN equals
    /// any NaN: the reference half conversion does not keep NaN payloads).
    fn eq(&self, o: &Decoded) -> bool {
        let same = |a: &u32, b: &u32| {
            a == b || (f32::from_bits(*a).is_nan() && f32::from_bits(*b).is_nan())
        };
        self.metadata == o.metadata
            && self.tensors.len() == o.tensors.len()
            && self.tensors.iter().zip(&o.tensors).all(|(a, b)| {
                a.0 == b.0
                    && a.1 == b.1
                    && a.2.len() == b.2.len()
                    && a.2.iter().zip(&b.2).all(|(x, y)| same(x, y))
            })
    }
}

/// The error details of the files the crate accepts and this library
/// rejects on purpose (src/io/mod.rs, "Stricter than the `safetensors`
/// crate"). Any other disagreement is a bug.
pub const STRICTER: &[&str] = &[
    "two tensors have the same name",
    "the header has two __metadata__ entries",
    "a __metadata__ key appears twice",
    "a tensor entry has a field other than dtype, shape and data_offsets",
    "a tensor entry is not a JSON object",
    "a tensor's dtype is not a string",
];

/// How the two decoders agreed on one buffer.
#[derive(Debug, PartialEq)]
pub enum Agreement {
    /// Both read it, with the same content.
    BothOk,
    /// Both refused it.
    BothErr,
    /// The crate read it; this library refused it for this documented reason.
    Stricter(&'static str),
}

/// The library's decoder, normalised.
pub fn ours(bytes: &[u8]) -> Result<Decoded, Error> {
    let f = from_safetensors(bytes)?;
    let mut tensors: Vec<_> = f
        .tensors
        .iter()
        .map(|(n, t)| {
            let bits = t.to_vec().iter().map(|v| v.to_bits()).collect();
            (n.clone(), t.dims().to_vec(), bits)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Decoded {
        tensors,
        metadata: f.metadata,
    })
}

/// 2^k as an f64, exactly (k within f64's normal exponents).
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// An IEEE half's value, computed arithmetically (not by bit surgery as the
/// library does).
fn half(h: u16) -> f32 {
    let (e, m) = (((h >> 10) & 31) as i32, (h & 1023) as f64);
    let mag = match e {
        0 => m * pow2(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + m) * pow2(e - 25),
    };
    (if h >> 15 == 1 { -mag } else { mag }) as f32
}

/// The crate's view of one tensor's bytes as f32 values: what the library
/// promises for each dtype it reads, `None` for the others.
fn values(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let w = match dtype {
        Dtype::BOOL | Dtype::U8 | Dtype::I8 => 1,
        Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
        Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
        Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        _ => return None,
    };
    Some(
        data.chunks_exact(w)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..w].copy_from_slice(c);
                let u = u64::from_le_bytes(b);
                match dtype {
                    Dtype::BOOL => f32::from(u8::from(u != 0)),
                    Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => u as f32,
                    Dtype::I8 => f32::from(c[0] as i8),
                    Dtype::I16 => f32::from(u as u16 as i16),
                    Dtype::I32 => u as u32 as i32 as f32,
                    Dtype::I64 => u as i64 as f32,
                    Dtype::F16 => half(u as u16),
                    Dtype::BF16 => f32::from_bits((u as u32) << 16),
                    Dtype::F32 => f32::from_bits(u as u32),
                    _ => f64::from_bits(u) as f32,
                }
            })
            .collect(),
    )
}

/// The crate's decoder plus what the library requires of what it reads
/// (its dtypes, its rank and element-count limits): `None` when either
/// refuses.
pub fn reference(bytes: &[u8]) -> Option<Decoded> {
    let st = SafeTensors::deserialize(bytes).ok()?;
    let (_, meta) = SafeTensors::read_metadata(bytes).ok()?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        Shape::new(view.shape()).ok()?;
        let v = values(view.dtype(), view.data())?;
        let bits = v.iter().map(|x| x.to_bits()).collect();
        tensors.push((name, view.shape().to_vec(), bits));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut metadata: Vec<(String, String)> = meta
        .metadata()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.sort();
    Some(Decoded { tensors, metadata })
}

/// Both decoders on `bytes`: panics if they disagree other than in a
/// documented stricter case.
#[track_caller]
pub fn agree(bytes: &[u8]) -> Agreement {
    match (ours(bytes), reference(bytes)) {
        (Ok(a), Some(b)) => {
            assert_eq!(a, b, "the decoders read different content");
            Agreement::BothOk
        }
        (Err(_), None) => Agreement::BothErr,
        (Ok(a), None) => panic!("this library reads what the crate refuses: {a:?}"),
        (Err(e), Some(b)) => match e {
            Error::Format { detail, .. } if STRICTER.contains(&detail) => {
                Agreement::Stricter(detail)
            }
            e => panic!("this library refuses ({e}) what the crate reads: {b:?}"),
        },
    }
}

/// A safetensors buffer with the given JSON header and data bytes.
pub fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}
