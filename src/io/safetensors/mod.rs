//! The safetensors codec behind [`super::to_safetensors`] and
//! [`super::from_safetensors`]: the library's own, on every target (no serde).
//!
//! A file is an 8-byte little-endian header length `n`, `n` bytes of JSON
//! (UTF-8, an object: `"__metadata__"` maps to string values, every other
//! key is a tensor `{"dtype": "F32", "shape": [2, 3], "data_offsets": [0,
//! 24]}`), then the tensor bytes, offsets relative to the end of the header.
//! See `super`'s module docs for what is accepted and how it differs from the
//! `safetensors` crate.

mod json;

use alloc::string::String;
use alloc::vec::Vec;

use super::TensorFile;
use crate::error::{Error, Result};
use crate::tensor::{MAX_RANK, Shape, Tensor};
use json::{Reader, bad};

/// Largest header accepted or written (the `safetensors` crate's limit).
const MAX_HEADER: usize = 100_000_000;

/// The dtypes this library reads (converted to f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    Bool,
    U8,
    I8,
    I16,
    U16,
    F16,
    Bf16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl Dtype {
    /// The dtype a header names: `Err` for a name the format does not have;
    /// `Ok(Err(detail))` for one it has that this library does not read
    /// (reported after the checks the `safetensors` crate makes, see
    /// [`decode`]).
    fn parse(name: &str) -> Result<core::result::Result<Dtype, &'static str>> {
        Ok(Ok(match name {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::Bf16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            "F4" | "F6_E2M3" | "F6_E3M2" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ"
            | "F8_E5M2FNUZ" | "C64" => {
                return Ok(Err(
                    "unsupported dtype (supported: F32, F64, F16, BF16, BOOL and integers)",
                ));
            }
            _ => return Err(bad("a tensor has an unknown dtype")),
        }))
    }

    /// Bytes per element.
    fn width(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// The f32 of one little-endian element (`c.len() == self.width()`).
    fn to_f32(self, c: &[u8]) -> f32 {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        let h = u16::from_le_bytes([b[0], b[1]]);
        let w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let d = u64::from_le_bytes(b);
        match self {
            Dtype::Bool => (b[0] != 0) as u8 as f32,
            Dtype::U8 => b[0] as f32,
            Dtype::I8 => b[0] as i8 as f32,
            Dtype::I16 => h as i16 as f32,
            Dtype::U16 => h as f32,
            Dtype::F16 => f16_to_f32(h),
            Dtype::Bf16 => f32::from_bits((h as u32) << 16),
            Dtype::I32 => w as i32 as f32,
            Dtype::U32 => w as f32,
            Dtype::F32 => f32::from_bits(w),
            Dtype::F64 => f64::from_bits(d) as f32,
            Dtype::I64 => d as i64 as f32,
            Dtype::U64 => d as f32,
        }
    }
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

/// A value of a header that the format allows but this library cannot
/// read: the error's detail, raised once the checks that the `safetensors`
/// crate also makes have passed.
type Unsupported<T> = core::result::Result<T, &'static str>;

/// One tensor entry of a header.
struct Entry {
    name: String,
    dtype: Unsupported<Dtype>,
    shape: Unsupported<Shape>,
    start: usize,
    end: usize,
}

/// A parsed header: its tensor entries (in header order) and metadata
/// (sorted by key).
struct Header {
    entries: Vec<Entry>,
    metadata: Vec<(String, String)>,
}

/// Parses a header's JSON (no validation of offsets against data yet).
fn parse_header(text: &str) -> Result<Header> {
    let mut r = Reader::new(text);
    r.expect(b'{', "the header is not a JSON object")?;
    let mut entries = Vec::new();
    let mut metadata = Vec::new();
    let mut seen_metadata = false;
    let mut first = true;
    while let Some(key) = r.next_key(&mut first)? {
        if key == "__metadata__" {
            if core::mem::replace(&mut seen_metadata, true) {
                return Err(bad("the header has two __metadata__ entries"));
            }
            if r.null() {
                continue;
            }
            r.expect(b'{', "__metadata__ is not an object of strings")?;
            let mut first = true;
            while let Some(k) = r.next_key(&mut first)? {
                metadata.push((k, r.string()?));
            }
        } else {
            entries.push(parse_entry(&mut r, key)?);
        }
    }
    r.end()?;
    crate::sort::sort_unstable(&mut metadata);
    if metadata.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(bad("a __metadata__ key appears twice"));
    }
    Ok(Header { entries, metadata })
}

/// One tensor entry's object: `dtype`, `shape` and `data_offsets`, each
/// once, nothing else.
fn parse_entry(r: &mut Reader<'_>, name: String) -> Result<Entry> {
    const TWICE: &str = "a tensor entry has a field twice";
    r.expect(b'{', "a tensor entry is not a JSON object")?;
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    let mut first = true;
    while let Some(field) = r.next_key(&mut first)? {
        match field.as_str() {
            "dtype" if dtype.is_none() => {
                if !r.string_next() {
                    return Err(bad("a tensor's dtype is not a string"));
                }
                dtype = Some(Dtype::parse(&r.string()?)?);
            }
            "shape" if shape.is_none() => {
                // Inline (no allocation); past MAX_RANK only counted.
                let (mut dims, mut rank) = (heapless::Vec::<usize, MAX_RANK>::new(), 0usize);
                r.uints(|d| {
                    rank += 1;
                    let _ = dims.push(d);
                    Ok(())
                })?;
                shape = Some(if rank > MAX_RANK {
                    Err("a tensor has more dimensions than this library supports")
                } else {
                    Shape::new(&dims).map_err(
                        |_| "a tensor's shape holds more elements than this library supports",
                    )
                });
            }
            "data_offsets" if offsets.is_none() => {
                let mut pair = heapless::Vec::<usize, 2>::new();
                r.uints(|o| {
                    pair.push(o)
                        .map_err(|_| bad("data_offsets is not two integers"))
                })?;
                match pair[..] {
                    [s, e] => offsets = Some((s, e)),
                    _ => return Err(bad("data_offsets is not two integers")),
                }
            }
            "dtype" | "shape" | "data_offsets" => return Err(bad(TWICE)),
            _ => {
                return Err(bad(
                    "a tensor entry has a field other than dtype, shape and data_offsets",
                ));
            }
        }
    }
    match (dtype, shape, offsets) {
        (Some(dtype), Some(shape), Some((start, end))) => Ok(Entry {
            name,
            dtype,
            shape,
            start,
            end,
        }),
        _ => Err(bad("a tensor entry lacks dtype, shape or data_offsets")),
    }
}

/// Decodes a whole safetensors buffer: tensors in data order (ties by name),
/// metadata sorted by key.
pub(super) fn decode(bytes: &[u8]) -> Result<TensorFile> {
    let len: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(bad("the buffer is shorter than the 8-byte header length"))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER as u64 {
        return Err(bad("the header is larger than 100 MB"));
    }
    // n <= 100 MB: fits usize on every target, and 8 + n does not overflow.
    let header = bytes
        .get(8..8 + n as usize)
        .ok_or(bad("the header length points past the end of the buffer"))?;
    let data = &bytes[8 + header.len()..];
    let text = core::str::from_utf8(header).map_err(|_| bad("the header is not valid UTF-8"))?;
    let Header { entries, metadata } = parse_header(text)?;

    // Duplicate names: the crate keeps the last; here they are an error.
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    crate::sort::sort_unstable(&mut names);
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("two tensors have the same name"));
    }
    drop(names);
    // What the format allows but this library does not read.
    let mut checked = crate::pool::try_vec(entries.len())?;
    for e in entries {
        let (dtype, shape) = (e.dtype.map_err(bad)?, e.shape.map_err(bad)?);
        checked.push((e.start, e.end, e.name, dtype, shape));
    }

    // Data order (ties by name: zero-size tensors share offsets).
    crate::sort::sort_unstable_by(&mut checked, |a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let mut at = 0;
    for (start, end, _, dtype, shape) in &checked {
        if *start != at || end < start {
            return Err(bad("tensor data offsets are not contiguous"));
        }
        at = *end;
        if shape.numel().checked_mul(dtype.width()) != Some(end - start) {
            return Err(bad(
                "a tensor's byte size does not match its dtype and shape",
            ));
        }
    }
    if at != data.len() {
        return Err(bad(
            "the tensor data does not cover exactly the rest of the buffer",
        ));
    }
    let mut tensors = crate::pool::try_vec(checked.len())?;
    for (start, end, name, dtype, shape) in checked {
        let (src, width) = (&data[start..end], dtype.width());
        let t = Tensor::try_from_fill(shape, |out| {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(width)) {
                *o = dtype.to_f32(c);
            }
        })?;
        tensors.push((name, t));
    }
    Ok(TensorFile { tensors, metadata })
}

/// Encodes tensors (any views, written contiguous as little-endian F32,
/// ordered by name) and metadata (ordered by key) as a safetensors buffer.
pub(super) fn encode<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    const OP: &str = "to_safetensors";
    let invalid = |detail| Error::InvalidArgument { op: OP, detail };
    let mut tensors: Vec<(&str, &Tensor)> = tensors.into_iter().collect();
    crate::sort::sort_unstable_by(&mut tensors, |a, b| a.0.cmp(b.0));
    if tensors.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(invalid("two tensors have the same name"));
    }
    let mut meta: Vec<(&str, &str)> = metadata.to_vec();
    crate::sort::sort_unstable(&mut meta);
    if meta.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(invalid("two metadata entries have the same key"));
    }

    // The header, as the crate writes it: metadata first, then the tensors,
    // compact JSON, padded with spaces to a multiple of 8 bytes.
    let mut h = Vec::new();
    h.push(b'{');
    if !meta.is_empty() {
        json::write_string(&mut h, "__metadata__");
        h.extend_from_slice(b":{");
        for (i, (k, v)) in meta.iter().enumerate() {
            if i > 0 {
                h.push(b',');
            }
            json::write_string(&mut h, k);
            h.push(b':');
            json::write_string(&mut h, v);
        }
        h.push(b'}');
    }
    let mut offset: usize = 0;
    for (i, (name, t)) in tensors.iter().enumerate() {
        if i > 0 || !meta.is_empty() {
            h.push(b',');
        }
        json::write_string(&mut h, name);
        h.extend_from_slice(br#":{"dtype":"F32","shape":["#);
        for (j, &d) in t.dims().iter().enumerate() {
            if j > 0 {
                h.push(b',');
            }
            json::write_uint(&mut h, d);
        }
        h.extend_from_slice(br#"],"data_offsets":["#);
        json::write_uint(&mut h, offset);
        h.push(b',');
        offset = t
            .numel()
            .checked_mul(4)
            .and_then(|b| b.checked_add(offset))
            .ok_or(invalid("the tensors hold more bytes than fit in memory"))?;
        json::write_uint(&mut h, offset);
        h.extend_from_slice(b"]}");
    }
    h.push(b'}');
    h.resize(h.len().next_multiple_of(8), b' ');
    if h.len() > MAX_HEADER {
        return Err(Error::Format {
            op: OP,
            detail: "the header is larger than 100 MB",
        });
    }

    let total = (8 + h.len())
        .checked_add(offset)
        .ok_or(invalid("the tensors hold more bytes than fit in memory"))?;
    let mut out = crate::pool::try_vec(total)?;
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    drop(h);
    for (_, t) in &tensors {
        for v in t.values() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

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

    #[test]
    fn every_dtype_converts_its_little_endian_bytes() {
        let cases: [(Dtype, &[u8], f32); 13] = [
            (Dtype::Bool, &[2], 1.0),
            (Dtype::U8, &[200], 200.0),
            (Dtype::I8, &[0xfe], -2.0),
            (Dtype::I16, &[0x00, 0x80], -32768.0),
            (Dtype::U16, &[0x00, 0x80], 32768.0),
            (Dtype::F16, &[0x00, 0x3c], 1.0),
            (Dtype::Bf16, &[0x80, 0x3f], 1.0),
            (Dtype::I32, &(-7i32).to_le_bytes(), -7.0),
            (Dtype::U32, &7u32.to_le_bytes(), 7.0),
            (Dtype::F32, &1.5f32.to_le_bytes(), 1.5),
            (Dtype::F64, &(-0.25f64).to_le_bytes(), -0.25),
            (Dtype::I64, &(-3i64).to_le_bytes(), -3.0),
            (Dtype::U64, &(1u64 << 40).to_le_bytes(), (1u64 << 40) as f32),
        ];
        for (dtype, bytes, want) in cases {
            assert_eq!(bytes.len(), dtype.width(), "{dtype:?}");
            assert_eq!(dtype.to_f32(bytes), want, "{dtype:?}");
        }
    }

    #[test]
    fn headers_nest_no_deeper_than_the_format() {
        // A nested value where a string or integer belongs is an error at
        // once, however deep it goes (no recursion to exhaust).
        let deep = alloc::format!("{{\"a\":{}", "[".repeat(100_000));
        assert!(parse_header(&deep).is_err());
        let deep_meta = alloc::format!("{{\"__metadata__\":{{\"k\":{}", "{".repeat(100_000));
        assert!(parse_header(&deep_meta).is_err());
        let deep_shape = alloc::format!(r#"{{"a":{{"dtype":"F32","shape":{}"#, "[".repeat(100_000));
        assert!(parse_header(&deep_shape).is_err());
    }
}
