//! Tensors in [safetensors] format, the weight format PyTorch
//! (`safetensors.torch`) and the Hugging Face ecosystem read and write.
//!
//! Without `std`: to and from byte slices ([`to_safetensors`],
//! [`from_safetensors`]). With `std`: also to and from files
//! ([`save_safetensors`], [`load_safetensors`]); a save writes a temporary file
//! in the same directory, flushes it to disk and renames it over the target, so
//! a crash or error mid-save leaves the previous file intact.
//!
//! Decoding never panics on bad input: corrupt, truncated or hostile bytes give
//! [`Error::Format`]. The `safetensors` crate validates the header (at most
//! 100 MB, inside the buffer) and that every tensor's offsets and size agree
//! with its dtype and shape and lie inside the buffer, so nothing is allocated
//! beyond a small multiple of the input's size.
//!
//! Tensors are written as little-endian `F32`. Loading converts `F32`, `F64`,
//! `F16`, `BF16`, `BOOL` and the integer dtypes to f32 (integers beyond 2^24
//! lose precision).
//!
//! [safetensors]: https://github.com/huggingface/safetensors

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Tensors and string metadata read from a safetensors buffer.
#[derive(Clone, Debug, Default)]
pub struct TensorFile {
    /// The tensors, by name, in the order they are stored.
    pub tensors: Vec<(String, Tensor)>,
    /// The header's `__metadata__` entries, sorted by key.
    pub metadata: Vec<(String, String)>,
}

impl TensorFile {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The metadata value under `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One tensor prepared for writing: its shape and little-endian bytes.
struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for F32View {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn format_err(op: &'static str, e: &SafeTensorError) -> Error {
    let detail = match e {
        SafeTensorError::HeaderTooSmall => "the buffer is shorter than the 8-byte header length",
        SafeTensorError::HeaderTooLarge => "the header is larger than 100 MB",
        SafeTensorError::InvalidHeaderLength => {
            "the header length points past the end of the buffer"
        }
        SafeTensorError::InvalidHeader(_) => "the header is not valid UTF-8",
        SafeTensorError::InvalidHeaderDeserialization(_) | SafeTensorError::JsonError(_) => {
            "the header is not valid safetensors JSON"
        }
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's byte size does not match its dtype and shape"
        }
        SafeTensorError::InvalidOffset(_) => "tensor data offsets are not contiguous",
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensor data does not cover exactly the rest of the buffer"
        }
        SafeTensorError::ValidationOverflow => "a tensor's size overflows",
        SafeTensorError::MisalignedSlice => "a tensor's size is not a whole number of bytes",
        SafeTensorError::TensorNotFound(_) => "a tensor is missing",
        SafeTensorError::InvalidTensorView(..) => "a tensor view does not match its buffer",
        // Reachable when another crate in the build enables `safetensors/std`,
        // which adds an I/O variant.
        #[allow(unreachable_patterns)]
        _ => "unreadable safetensors data",
    };
    Error::Format { op, detail }
}

/// Encodes named tensors (any views; written contiguous as F32) and string
/// metadata as a safetensors buffer. Names must be unique. The output is
/// deterministic: tensors are ordered by name.
pub fn to_safetensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let mut views: Vec<(String, F32View)> = Vec::new();
    for (name, t) in tensors {
        let mut bytes = Vec::with_capacity(4 * t.numel());
        for v in t.values() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        views.push((
            name.to_string(),
            F32View {
                shape: t.dims().to_vec(),
                bytes,
            },
        ));
    }
    // Unstable sorts (equal names are an error below, equal pairs identical)
    // through the library's one shared sort (crate::sort: code size).
    crate::sort::sort_unstable_by(&mut views, |a, b| a.0.cmp(&b.0));
    if views.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Error::InvalidArgument {
            op: "to_safetensors",
            detail: "two tensors have the same name",
        });
    }
    let info = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    safetensors::serialize(views, info).map_err(|e| format_err("to_safetensors", &e))
}

/// Decodes a safetensors buffer into f32 tensors and metadata.
pub fn from_safetensors(bytes: &[u8]) -> Result<TensorFile> {
    const OP: &str = "from_safetensors";
    let st = SafeTensors::deserialize(bytes).map_err(|e| format_err(OP, &e))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format_err(OP, &e))?;
    let mut names: Vec<(usize, String)> = st
        .names()
        .into_iter()
        .map(|n| {
            let start = meta.info(n).map_or(0, |i| i.data_offsets.0);
            (start, n.to_string())
        })
        .collect();
    crate::sort::sort_unstable(&mut names);
    let mut tensors = Vec::with_capacity(names.len());
    for (_, name) in names {
        let view = st.tensor(&name).map_err(|e| format_err(OP, &e))?;
        let t = decode(view.dtype(), view.shape(), view.data())?;
        tensors.push((name, t));
    }
    let mut metadata: Vec<(String, String)> = meta
        .metadata()
        .iter()
        .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    crate::sort::sort_unstable(&mut metadata);
    Ok(TensorFile { tensors, metadata })
}

/// f32 from the bits of an IEEE half.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * (1.0 / (1u32 << 24) as f32);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

fn decode(dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor> {
    const OP: &str = "from_safetensors";
    let shape = crate::tensor::Shape::new(shape).map_err(|_| Error::Format {
        op: OP,
        detail: "a tensor has more dimensions than this library supports",
    })?;
    let n = shape.numel();
    let width = match dtype {
        Dtype::BOOL | Dtype::U8 | Dtype::I8 => 1,
        Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
        Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
        Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        _ => {
            return Err(Error::Format {
                op: OP,
                detail: "unsupported dtype (supported: F32, F64, F16, BF16, BOOL and integers)",
            });
        }
    };
    if n.checked_mul(width) != Some(data.len()) {
        return Err(Error::Format {
            op: OP,
            detail: "a tensor's byte size does not match its dtype and shape",
        });
    }
    let conv = |c: &[u8]| -> f32 {
        match dtype {
            Dtype::BOOL => (c[0] != 0) as u8 as f32,
            Dtype::U8 => c[0] as f32,
            Dtype::I8 => c[0] as i8 as f32,
            Dtype::F16 => f16_to_f32(u16::from_le_bytes([c[0], c[1]])),
            Dtype::BF16 => f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16),
            Dtype::I16 => i16::from_le_bytes([c[0], c[1]]) as f32,
            Dtype::U16 => u16::from_le_bytes([c[0], c[1]]) as f32,
            Dtype::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            Dtype::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
            Dtype::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
            Dtype::F64 => f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32,
            Dtype::I64 => i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32,
            _ => u64::from_le_bytes(c.try_into().expect("8 bytes")) as f32,
        }
    };
    Tensor::try_from_fill(shape, |out| {
        for (o, c) in out.iter_mut().zip(data.chunks_exact(width)) {
            *o = conv(c);
        }
    })
}

mod adapter;
pub use adapter::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterFiles, adapter_from_bytes, adapter_to_bytes,
    parse_adapter_config,
};

pub mod checkpoint;
pub use checkpoint::{
    CheckpointInfo, checkpoint_from_bytes, checkpoint_to_bytes, module_from_bytes, module_to_bytes,
};

#[cfg(feature = "flash")]
pub mod flash;

#[cfg(feature = "std")]
mod files;
#[cfg(feature = "std")]
pub use files::{
    load_adapter, load_checkpoint, load_module, load_safetensors, save_adapter, save_checkpoint,
    save_module, save_safetensors, write_atomic,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        // 2^-24 exactly (`powi` has unspecified precision; miri perturbs it).
        assert_eq!(f16_to_f32(0x0001), f32::from_bits((127 - 24) << 23));
        assert_eq!(
            f16_to_f32(0x03ff),
            f32::from_bits((127 - 24) << 23) * 1023.0
        );
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}
