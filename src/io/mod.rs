//! Tensors in [safetensors] format, the weight format PyTorch
//! (`safetensors.torch`) and the Hugging Face ecosystem read and write.
//!
//! Without `std`: to and from byte slices ([`to_safetensors`],
//! [`from_safetensors`]). With `std`: also to and from files
//! ([`save_safetensors`], [`load_safetensors`]); a save writes a temporary file
//! in the same directory, flushes it to disk and renames it over the target, so
//! a crash or error mid-save leaves the previous file intact.
//!
//! The codec is the library's own (`io/safetensors/`, no serde), the same on
//! every target; the `safetensors` crate is a test dependency that the tests
//! and the fuzz target compare it with.
//!
//! # Writing
//!
//! Tensors are written as little-endian `F32`, ordered by name; metadata keys
//! are sorted, so two saves of the same state give the same bytes (with the
//! crate, which kept metadata in a `HashMap`, checkpoint bytes differed from
//! save to save). The header is compact JSON padded with spaces to a multiple
//! of 8 bytes, byte for byte what the crate writes for the same entries when
//! there is at most one metadata key.
//!
//! # Reading
//!
//! Loading converts `F32`, `F64`, `F16`, `BF16`, `BOOL` and the integer dtypes
//! to f32 (integers beyond 2^24 lose precision); other dtypes (`C64`, the
//! FP8/FP6/FP4 kinds) and unknown names are an error. Decoding never panics
//! on bad input: corrupt, truncated or hostile bytes give [`Error::Format`]
//! with a detail saying what is wrong. The rules:
//!
//! - the first 8 bytes are the header length (u64, little-endian); the header
//!   is at most 100 MB, lies inside the buffer and is UTF-8 JSON: one object
//!   (whitespace around tokens allowed), every string escape including
//!   `\uXXXX` surrogate pairs, nothing after the object but whitespace;
//! - `__metadata__`, if present, is `null` or an object whose values are
//!   strings (any keys, each once);
//! - every other key is a tensor name (each once) whose value is an object
//!   with exactly `dtype` (a string), `shape` (an array of unsigned
//!   integers, at most [`MAX_RANK`](crate::MAX_RANK) of them) and
//!   `data_offsets` (an array of two unsigned integers);
//! - the tensors' data offsets, ordered, are contiguous from 0 and end
//!   exactly at the end of the buffer, and each tensor's byte size is its
//!   element count times its dtype's width, every product overflow-checked.
//!
//! Reading is linear in the buffer's size plus a sort of the entries, never
//! recurses (the format nests three deep; the reader asks for the kind of
//! value each place holds, so deeper nesting is an error where it starts),
//! and allocates only in proportion to the input: the header's strings and
//! entries, and the tensors (4 bytes per element, each element backed by at
//! least one byte of data).
//!
//! ## Stricter than the `safetensors` crate
//!
//! These files the crate (0.8) accepts are an error here:
//!
//! - two tensors with the same name (the crate keeps the last one), two
//!   `__metadata__` entries, or a metadata key twice (the crate keeps the
//!   last value);
//! - a tensor entry with fields other than `dtype`, `shape` and
//!   `data_offsets` (the crate ignores them), or written as a JSON array
//!   `["F32", [2], [0, 8]]` instead of an object (serde accepts both);
//! - a dtype written other than as a string (serde also takes `{"F32": null}`);
//! - tensors of a rank above [`MAX_RANK`](crate::MAX_RANK), with more than
//!   [`MAX_NUMEL`](crate::MAX_NUMEL) elements (zero dimensions counted as 1),
//!   or of a dtype this library does not convert, which the crate reads but
//!   which were an error here before too.
//!
//! Everything else agrees: the tests (`tests/safetensors_diff.rs`) and the
//! fuzz target (`fuzz/src/bin/safetensors.rs`) check that on random, mutated
//! and hostile buffers both decoders give `Ok` or both `Err` (but for the
//! cases above) and, on `Ok`, the same tensors and metadata.
//!
//! [safetensors]: https://github.com/huggingface/safetensors
//! [`Error::Format`]: crate::Error::Format

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::Result;
use crate::tensor::Tensor;

mod safetensors;

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

/// Encodes named tensors (any views; written contiguous as little-endian F32)
/// and string metadata as a safetensors buffer.
///
/// The output is deterministic: tensors are ordered by name and metadata by
/// key, so the same tensors and metadata always give the same bytes. The
/// header is compact JSON padded with spaces to a multiple of 8 bytes; it has
/// no `__metadata__` entry when `metadata` is empty.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when two tensors have the same name or two
/// metadata entries the same key (the file could not be read back), or the
/// tensors hold more bytes than a `usize` counts; [`Error::Format`] when the
/// header would exceed 100 MB; [`Error::OutOfMemory`] when the output buffer
/// cannot be allocated.
///
/// [`Error::InvalidArgument`]: crate::Error::InvalidArgument
/// [`Error::Format`]: crate::Error::Format
/// [`Error::OutOfMemory`]: crate::Error::OutOfMemory
pub fn to_safetensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    safetensors::encode(tensors, metadata)
}

/// Decodes a safetensors buffer into f32 tensors (in the order their data is
/// stored) and metadata (sorted by key).
///
/// # Errors
///
/// [`Error::Format`], with a detail saying what is wrong, for any buffer that
/// breaks the rules in the module docs; [`Error::OutOfMemory`] when the
/// tensors cannot be allocated.
///
/// [`Error::Format`]: crate::Error::Format
/// [`Error::OutOfMemory`]: crate::Error::OutOfMemory
pub fn from_safetensors(bytes: &[u8]) -> Result<TensorFile> {
    safetensors::decode(bytes)
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
