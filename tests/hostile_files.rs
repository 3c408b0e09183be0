//! Hostile safetensors and checkpoint files: each gives `Err` quickly, never
//! a panic, and never an allocation proportional to what the file claims.
//! The global allocator of this test binary refuses any single allocation
//! above 64 MiB (the process aborts, failing the test), so a decoder that
//! trusted a claimed size would be caught.

use std::alloc::{GlobalAlloc, Layout, System};
use std::time::{Duration, Instant};

use train_station::io::{checkpoint_from_bytes, from_safetensors, to_safetensors};
use train_station::nn::{Linear, Module};
use train_station::{Error, Tensor};

#[path = "common/safetensors_ref.rs"]
mod reference;

struct Capped;

const CAP: usize = 64 << 20;

// SAFETY: forwards to the system allocator; refusing (null) is allowed.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: `p` came from this allocator with `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

/// A safetensors buffer with the given JSON header and `data` bytes.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

#[track_caller]
fn rejected(bytes: &[u8]) -> Error {
    let t0 = Instant::now();
    let e = match from_safetensors(bytes) {
        Err(e) => e,
        Ok(f) => panic!("decoded a hostile file: {:?}", f.tensors),
    };
    assert!(matches!(e, Error::Format { .. }), "{e}");
    // The `safetensors` crate refuses it too (or reads it, where this library
    // is stricter on purpose).
    assert_ne!(reference::agree(bytes), reference::Agreement::BothOk);
    // Also as a checkpoint, into a model it cannot change.
    let mut model = Linear::new(2, 2);
    let before = model.state_dict()[0].1.to_vec();
    assert!(checkpoint_from_bytes(bytes, &mut model, None, None).is_err());
    assert_eq!(model.state_dict()[0].1.to_vec(), before);
    // Rejections are immediate (generous bound for a loaded machine).
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    e
}

#[test]
fn a_header_length_of_2_pow_63_is_rejected() {
    let mut v = (1u64 << 63).to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    rejected(&v);
    let mut v = u64::MAX.to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    rejected(&v);
    // Longer than the buffer, within the 100 MB header limit.
    let mut v = (50u64 << 20).to_le_bytes().to_vec();
    v.extend_from_slice(b"{}");
    rejected(&v);
    rejected(&[1, 2, 3]);
}

#[test]
fn shape_products_that_overflow_are_rejected() {
    for shape in [
        "[4294967296,4294967296]",
        "[18446744073709551615,2]",
        "[4611686018427387904,4]",
        "[3074457345618258603,3,2]",
    ] {
        for dtype in ["F32", "F16", "BOOL", "F64"] {
            let h =
                format!(r#"{{"a":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[0,8]}}}}"#);
            rejected(&file(&h, &[0; 8]));
        }
    }
    // A claim too large for the data (but not overflowing).
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,8]}}"#,
        &[0; 8],
    ));
}

#[test]
fn offsets_past_the_end_or_overlapping_are_rejected() {
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[250],"data_offsets":[0,1000]}}"#,
        &[0; 8],
    ));
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,0]}}"#,
        &[0; 8],
    ));
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        &[0; 12],
    ));
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    ));
    // Data left over after the last tensor.
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        &[0; 8],
    ));
}

#[test]
fn unsupported_or_mis_sized_dtypes_are_rejected() {
    for dtype in ["F8_E4M3", "F8_E5M2", "C64", "Q4", "f32", ""] {
        let h = format!(r#"{{"a":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,8]}}}}"#);
        rejected(&file(&h, &[0; 8]));
    }
    // F64 needs 8 bytes per element, F16 2: sizes must agree.
    rejected(&file(
        r#"{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    ));
    rejected(&file(
        r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    ));
    // Supported non-F32 dtypes decode (converted to f32).
    let f = from_safetensors(&file(
        r#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#,
        &2.5f64.to_le_bytes(),
    ))
    .unwrap();
    assert_eq!(f.tensors[0].1.to_vec(), [2.5]);
}

#[test]
fn duplicate_names_are_rejected() {
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &[0; 8],
    ));
    rejected(&file(
        r#"{"__metadata__":{"k":"1"},"__metadata__":{"k":"2"}}"#,
        &[],
    ));
    // The encoder refuses to write them.
    let t = Tensor::zeros([1]);
    assert!(to_safetensors([("a", &t), ("a", &t)], &[]).is_err());
}

#[test]
fn bad_metadata_is_rejected() {
    // Not UTF-8.
    let mut v = file(r#"{"__metadata__":{"k":"xx"}}"#, &[]);
    let at = v.len() - 4;
    v[at] = 0xff;
    v[at + 1] = 0xfe;
    rejected(&v);
    // Not strings, not JSON, not an object.
    rejected(&file(r#"{"__metadata__":{"k":1}}"#, &[]));
    rejected(&file(r#"{"__metadata__":"k"}"#, &[]));
    rejected(&file(r#"{"a":"#, &[]));
    rejected(&file(r#"[1,2]"#, &[]));
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
        &[0; 4],
    ));
    rejected(&file(
        r#"{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}"#,
        &[0; 4],
    ));
}
