//! File I/O (`std` only): crash-safe saves.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::format;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::vec::Vec;

use super::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, CheckpointInfo, TensorFile, adapter_from_bytes,
    adapter_to_bytes, checkpoint_from_bytes, checkpoint_to_bytes, from_safetensors,
    module_from_bytes, module_to_bytes, to_safetensors,
};
use crate::error::{Error, Result};
use crate::nn::LoraConfig;
use crate::nn::Module;
use crate::optim::{LrScheduler, Optimizer};
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
    from_safetensors(&read("load_safetensors", path.as_ref())?)
}

fn read(op: &'static str, path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| io_err(op, &e))
}

/// Saves a model's state dict with PyTorch's key names (PyTorch loads it with
/// `model.load_state_dict(safetensors.torch.load_file(path))`), atomically.
pub fn save_module(path: impl AsRef<Path>, model: &dyn Module) -> Result<()> {
    let bytes = module_to_bytes(model)?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Loads a state dict saved by [`save_module`] or by PyTorch
/// (`safetensors.torch.save_file(model.state_dict(), path)`) into `model`.
pub fn load_module(path: impl AsRef<Path>, model: &mut dyn Module) -> Result<()> {
    module_from_bytes(model, &read("load_module", path.as_ref())?)
}

/// Saves a checkpoint (see [`checkpoint_to_bytes`]) atomically: a crash or
/// error mid-save leaves the previous checkpoint intact.
pub fn save_checkpoint(
    path: impl AsRef<Path>,
    model: &dyn Module,
    optimizer: Option<&dyn Optimizer>,
    scheduler: Option<&dyn LrScheduler>,
    step: u64,
    extra: &[(&str, &str)],
) -> Result<()> {
    let bytes = checkpoint_to_bytes(model, optimizer, scheduler, step, extra)?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Loads a checkpoint saved by [`save_checkpoint`] (see
/// [`checkpoint_from_bytes`]).
pub fn load_checkpoint(
    path: impl AsRef<Path>,
    model: &mut dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
    scheduler: Option<&mut dyn LrScheduler>,
) -> Result<CheckpointInfo> {
    checkpoint_from_bytes(
        &read("load_checkpoint", path.as_ref())?,
        model,
        optimizer,
        scheduler,
    )
}

/// Saves `model`'s LoRA adapters as a PEFT adapter directory (`dir`, created
/// if missing): `adapter_model.safetensors` and `adapter_config.json` (see
/// [`adapter_to_bytes`]), which `PeftModel.from_pretrained(model, dir)`
/// loads. Each file is written atomically ([`write_atomic`]), the weights
/// first; the pair is not replaced as one unit.
pub fn save_adapter(dir: impl AsRef<Path>, model: &dyn Module) -> Result<()> {
    let dir = dir.as_ref();
    let files = adapter_to_bytes(model)?;
    fs::create_dir_all(dir).map_err(|e| io_err("save_adapter", &e))?;
    write_atomic(dir.join(ADAPTER_WEIGHTS), |f| f.write_all(&files.weights))?;
    write_atomic(dir.join(ADAPTER_CONFIG), |f| {
        f.write_all(files.config.as_bytes())
    })
}

/// Loads a PEFT adapter directory (saved by [`save_adapter`] or by PEFT's
/// `save_pretrained`) into `model`; see [`adapter_from_bytes`] for what it
/// does and when it fails (the model is unchanged on error).
pub fn load_adapter(dir: impl AsRef<Path>, model: &mut dyn Module) -> Result<LoraConfig> {
    const OP: &str = "load_adapter";
    let dir = dir.as_ref();
    let weights = read(OP, &dir.join(ADAPTER_WEIGHTS))?;
    let config = read(OP, &dir.join(ADAPTER_CONFIG))?;
    adapter_from_bytes(model, &weights, &config)
}
