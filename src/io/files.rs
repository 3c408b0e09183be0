//! File I/O (`std` only): crash-safe saves.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::format;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{TensorFile, from_safetensors, to_safetensors};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

fn io_err(op: &'static str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::NotFound => "entity not found",
        K::PermissionDenied => "permission denied",
        K::AlreadyExists => "entity already exists",
        K::InvalidInput => "invalid input",
        K::InvalidData => "invalid data",
        K::UnexpectedEof => "unexpected end of file",
        K::WriteZero => "write returned zero",
        K::Interrupted => "interrupted",
        K::Unsupported => "unsupported",
        K::OutOfMemory => "out of memory",
        K::StorageFull => "no storage space",
        K::ReadOnlyFilesystem => "read-only filesystem",
        K::IsADirectory => "is a directory",
        K::NotADirectory => "not a directory",
        K::FileTooLarge => "file too large",
        K::QuotaExceeded => "quota exceeded",
        _ => "other",
    };
    Error::Io {
        op,
        kind,
        code: e.raw_os_error().unwrap_or(0),
    }
}

/// Writes a file atomically: `write` fills a temporary file next to `path`,
/// which is flushed to disk and renamed over `path`. If `write` or any step
/// fails, the temporary file is removed and `path` is left as it was.
pub fn write_atomic(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    const OP: &str = "write_atomic";
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or(Error::InvalidArgument {
        op: OP,
        detail: "the path has no file name",
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (best effort: not every platform can
        // open a directory).
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(OP, &e)
    })
}

/// Saves named tensors and metadata to a safetensors file, atomically (see
/// [`write_atomic`]).
pub fn save_safetensors<'a>(
    path: impl AsRef<Path>,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let bytes = to_safetensors(tensors, metadata)?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Loads every tensor of a safetensors file as f32.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<TensorFile> {
    let bytes = fs::read(path).map_err(|e| io_err("load_safetensors", &e))?;
    from_safetensors(&bytes)
}
