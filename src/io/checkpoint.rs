//! Checkpoints: a model's state dict, an optimizer's state, a scheduler's
//! progress, the step count and the global random generator, in one
//! safetensors file. Resuming from one continues training exactly as if it had
//! never stopped (bit-identical next steps).
//!
//! Layout:
//! - tensors `model.<name>` (the state dict) and `optim.<param>.<state>` (the
//!   optimizer's per-parameter state, keyed by the parameter's name in the
//!   model, so a checkpoint loads into a freshly built model);
//! - metadata `format`, `step`, `rng` (the global generator, four hex words),
//!   `rng.<module>` (random streams modules own, e.g. dropout), `optim.kind`,
//!   `optim.groups`, `optim.group.<g>.params` (comma-separated names),
//!   `optim.group.<g>.<hyper>`, `sched.<key>` and `extra.<key>` (caller data).
//!
//! Float values (`optim.group.<g>.<hyper>`, `sched.<key>`) are written as
//! their exact bit patterns in hex (`0x3c23d70a` for the f32 0.01,
//! `0x3fb999999999999a` for the f64 0.1): exact by construction, and written
//! and read without core's decimal float formatting and parsing, about 30 KB
//! of code a microcontroller's flash would pay for (boards/cortex-m4).
//! Checkpoints of format 1 hold decimal text there (`0.01`); builds with the
//! `std` feature still read it, builds without `std` refuse it with
//! [`Error::Format`].
//!
//! Plain weights that PyTorch loads directly (`model.load_state_dict(
//! safetensors.torch.load_file(path))`) are written by [`module_to_bytes`] /
//! [`save_module`](crate::io::save_module), without the prefix.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::{from_safetensors, to_safetensors};
use crate::error::{Error, Result};
use crate::nn::Module;
use crate::optim::{GroupState, LrScheduler, Optimizer, OptimizerState};
use crate::tensor::{Tensor, global_rng_state, set_global_rng_state};

/// The format written: 2, floats as hex bit patterns.
const FORMAT: &str = "train-station-checkpoint-2";
/// The format read as well: 1, floats as decimal text (needs `std`).
const FORMAT_1: &str = "train-station-checkpoint-1";

/// What a loaded checkpoint carried besides the states it restored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The step count saved with it.
    pub step: u64,
    /// The caller's extra metadata, by key.
    pub extra: Vec<(String, String)>,
}

impl CheckpointInfo {
    /// The extra value under `key`.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(detail: &'static str) -> Error {
    Error::Format {
        op: "load_checkpoint",
        detail,
    }
}

/// The model's state dict as safetensors bytes, with PyTorch's key names.
pub fn module_to_bytes(model: &dyn Module) -> Result<Vec<u8>> {
    let sd = model.state_dict();
    to_safetensors(sd.iter().map(|(n, t)| (n.as_str(), t)), &[("format", "pt")])
}

/// Loads a state dict from safetensors bytes into `model` (strict; see
/// [`Module::load_state_dict`]).
pub fn module_from_bytes(model: &mut dyn Module, bytes: &[u8]) -> Result<()> {
    model.load_state_dict(&from_safetensors(bytes)?.tensors)
}

/// Encodes a checkpoint (see the [module docs](self)).
pub fn checkpoint_to_bytes(
    model: &dyn Module,
    optimizer: Option<&dyn Optimizer>,
    scheduler: Option<&dyn LrScheduler>,
    step: u64,
    extra: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Tensor)> = model
        .state_dict()
        .into_iter()
        .map(|(n, t)| (format!("model.{n}"), t))
        .collect();
    let mut meta: Vec<(String, String)> = vec![
        ("format".into(), FORMAT.into()),
        ("step".into(), step.to_string()),
    ];
    let hex = |r: [u64; 4]| format!("{:x},{:x},{:x},{:x}", r[0], r[1], r[2], r[3]);
    meta.push(("rng".into(), hex(global_rng_state())));
    model.visit_rng_states("", &mut |name, r| {
        meta.push((format!("rng.{name}"), hex(r)))
    });

    if let Some(opt) = optimizer {
        // By insertion rather than `collect`: `BTreeMap::from_iter` sorts with a
        // stable sort instantiated per key and value type, code a small
        // flash pays for (boards/cortex-m4).
        let mut names: BTreeMap<u64, String> = BTreeMap::new();
        for (n, p) in model.named_parameters() {
            names.insert(p.id(), n);
        }
        let name_of = |id: u64| {
            names.get(&id).cloned().ok_or(Error::InvalidArgument {
                op: "save_checkpoint",
                detail: "the optimizer holds a parameter that is not in the model",
            })
        };
        let state = opt.try_export_state()?;
        meta.push(("optim.kind".into(), state.kind.clone()));
        meta.push(("optim.groups".into(), state.groups.len().to_string()));
        for (g, group) in state.groups.iter().enumerate() {
            let params: Result<Vec<String>> = group.params.iter().map(|&id| name_of(id)).collect();
            meta.push((format!("optim.group.{g}.params"), params?.join(",")));
            for (k, v) in &group.hyper {
                meta.push((
                    format!("optim.group.{g}.{k}"),
                    format!("{:#010x}", v.to_bits()),
                ));
            }
        }
        for (id, bufs) in &state.params {
            let pname = name_of(*id)?;
            for (b, t) in bufs {
                tensors.push((format!("optim.{pname}.{b}"), t.clone()));
            }
        }
    }
    if let Some(s) = scheduler {
        for (k, v) in s.export_state() {
            meta.push((format!("sched.{k}"), format!("{:#018x}", v.to_bits())));
        }
    }
    for (k, v) in extra {
        meta.push((format!("extra.{k}"), (*v).to_string()));
    }
    let meta_refs: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    to_safetensors(tensors.iter().map(|(n, t)| (n.as_str(), t)), &meta_refs)
}

/// An f32 of the metadata: `0x` and its bit pattern in hex (format 2), or
/// decimal text (format 1, under `std`).
fn parse_f32(s: &str) -> Result<f32> {
    const BAD: &str = "a number in the metadata does not parse";
    match s.strip_prefix("0x") {
        Some(hex) => parse_hex(hex, 8)
            .map(|b| f32::from_bits(b as u32))
            .ok_or(bad(BAD)),
        None => parse_decimal::<f32>(s, BAD),
    }
}

/// An f64 of the metadata (scheduler state), as [`parse_f32`].
fn parse_f64(s: &str) -> Result<f64> {
    const BAD: &str = "a scheduler value does not parse";
    match s.strip_prefix("0x") {
        Some(hex) => parse_hex(hex, 16).map(f64::from_bits).ok_or(bad(BAD)),
        None => parse_decimal::<f64>(s, BAD),
    }
}

/// 1 to `digits` hex digits (no sign) as a number.
fn parse_hex(hex: &str, digits: usize) -> Option<u64> {
    if hex.is_empty() || hex.len() > digits || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Decimal text of a format-1 checkpoint.
#[cfg(feature = "std")]
fn parse_decimal<T: core::str::FromStr>(s: &str, detail: &'static str) -> Result<T> {
    s.parse::<T>().map_err(|_| bad(detail))
}

/// Decimal text of a format-1 checkpoint: refused without `std`, whose
/// builds leave core's decimal float parser out.
#[cfg(not(feature = "std"))]
fn parse_decimal<T>(_: &str, _: &'static str) -> Result<T> {
    Err(bad(
        "a decimal number in the metadata (format 1) needs the `std` feature",
    ))
}

fn parse_rng(s: &str) -> Result<[u64; 4]> {
    let mut words = [0u64; 4];
    let mut parts = s.split(',');
    for w in &mut words {
        *w = parts
            .next()
            .and_then(|p| u64::from_str_radix(p, 16).ok())
            .ok_or(bad("a random generator state is malformed"))?;
    }
    match parts.next() {
        None => Ok(words),
        Some(_) => Err(bad("a random generator state is malformed")),
    }
}

/// A key of the checkpoint that does not fit the objects it is loaded into,
/// named in the error (`unexpected: optim.fc9.weight.exp_avg`).
fn unexpected(key: &str) -> Error {
    Error::StateDict {
        missing: 0,
        unexpected: 1,
        mismatched: 0,
        keys: format!("unexpected: {key}"),
    }
}

/// Everything a checkpoint holds, decoded and checked against the objects it
/// will be loaded into, before any of them changes.
struct Decoded {
    step: u64,
    rng: [u64; 4],
    module_rngs: Vec<(String, [u64; 4])>,
    model: Vec<(String, Tensor)>,
    optim: Option<OptimizerState>,
    sched: Vec<(String, f64)>,
    extra: Vec<(String, String)>,
}

/// One optimizer group as read from the metadata.
#[derive(Default)]
struct RawGroup {
    params: Option<String>,
    hyper: Vec<(String, f32)>,
}

/// Decodes `bytes` in one pass over the metadata and one over the tensors
/// (linear in the file size), checking names against `model` and, when
/// `with_optim`, the optimizer section's structure. The optimizer's own
/// checks (kind, hyper-parameters, state names and shapes) run in its
/// `import_state`, which changes nothing on error.
fn decode(bytes: &[u8], model: &dyn Module, with_optim: bool) -> Result<Decoded> {
    let file = from_safetensors(bytes)?;
    let mut format = None;
    let mut step = None;
    let mut rng = None;
    let mut module_rngs = Vec::new();
    let mut kind = None;
    let mut n_groups = None;
    let mut groups: BTreeMap<usize, RawGroup> = BTreeMap::new();
    let mut sched = Vec::new();
    let mut extra = Vec::new();
    let mut rng_names = BTreeSet::new();
    model.visit_rng_states("", &mut |name, _| {
        rng_names.insert(name.to_string());
    });
    for (k, v) in &file.metadata {
        if let Some(name) = k.strip_prefix("rng.") {
            if !rng_names.contains(name) {
                return Err(unexpected(k));
            }
            module_rngs.push((name.to_string(), parse_rng(v)?));
        } else if let Some(key) = k.strip_prefix("sched.") {
            sched.push((key.to_string(), parse_f64(v)?));
        } else if let Some(key) = k.strip_prefix("extra.") {
            extra.push((key.to_string(), v.clone()));
        } else if let Some(rest) = k.strip_prefix("optim.group.") {
            if !with_optim {
                continue;
            }
            let (g, name) = rest
                .split_once('.')
                .and_then(|(g, name)| Some((g.parse::<usize>().ok()?, name)))
                .ok_or_else(|| unexpected(k))?;
            let group = groups.entry(g).or_default();
            if name == "params" {
                group.params = Some(v.clone());
            } else {
                group.hyper.push((name.to_string(), parse_f32(v)?));
            }
        } else {
            match k.as_str() {
                "format" => format = Some(v.as_str()),
                "step" => step = Some(v.as_str()),
                "rng" => rng = Some(v.as_str()),
                "optim.kind" => kind = Some(v.as_str()),
                "optim.groups" => n_groups = Some(v.as_str()),
                // Other metadata (e.g. from other tools) is not ours.
                _ => {}
            }
        }
    }
    if format != Some(FORMAT) && format != Some(FORMAT_1) {
        return Err(bad(
            "not a train-station checkpoint (format key missing or unknown)",
        ));
    }
    let step: u64 = step
        .and_then(|s| s.parse().ok())
        .ok_or(bad("the step is missing or malformed"))?;
    let rng = parse_rng(rng.ok_or(bad("the random generator state is missing"))?)?;

    // By insertion rather than `collect`: `BTreeMap::from_iter` sorts with a
    // stable sort instantiated per key and value type, code a small
    // flash pays for (boards/cortex-m4).
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    for (n, p) in model.named_parameters() {
        names.insert(n, p.id());
    }
    let mut state = Vec::new();
    let mut per_param: BTreeMap<u64, Vec<(String, Tensor)>> = BTreeMap::new();
    for (n, t) in &file.tensors {
        if let Some(name) = n.strip_prefix("model.") {
            state.push((name.to_string(), t.clone()));
        } else if let Some(rest) = n.strip_prefix("optim.") {
            if !with_optim {
                continue;
            }
            let id = rest
                .rsplit_once('.')
                .and_then(|(pname, _)| names.get(pname))
                .ok_or_else(|| unexpected(n))?;
            let buf = rest.rsplit_once('.').map_or("", |(_, b)| b);
            per_param
                .entry(*id)
                .or_default()
                .push((buf.to_string(), t.clone()));
        } else {
            return Err(unexpected(n));
        }
    }
    crate::nn::check_state_dict(model, &state, true)?;

    let optim = if with_optim {
        let kind = kind.ok_or(bad("the checkpoint has no optimizer state"))?;
        let n_groups: usize = n_groups
            .and_then(|s| s.parse().ok())
            .ok_or(bad("the optimizer group count is missing"))?;
        // Groups must be exactly 0..n_groups (no loop over a claimed count).
        if groups.len() != n_groups || groups.keys().next_back().is_some_and(|&g| g >= n_groups) {
            return Err(bad(
                "the optimizer groups do not match the declared group count",
            ));
        }
        let mut out = Vec::with_capacity(groups.len());
        for (g, raw) in groups {
            let list = raw
                .params
                .ok_or(bad("an optimizer group has no parameter list"))?;
            let params = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|name| {
                    names
                        .get(name)
                        .copied()
                        .ok_or_else(|| unexpected(&format!("optim.group.{g}.params: {name}")))
                })
                .collect::<Result<Vec<u64>>>()?;
            out.push(GroupState {
                params,
                hyper: raw.hyper,
            });
        }
        Some(OptimizerState {
            kind: kind.to_string(),
            groups: out,
            params: per_param.into_iter().collect(),
        })
    } else {
        None
    };
    Ok(Decoded {
        step,
        rng,
        module_rngs,
        model: state,
        optim,
        sched,
        extra,
    })
}

/// Restores a checkpoint into `model` and, if given, `optimizer` and
/// `scheduler`, and restores the global random generator. The model is
/// loaded strictly (see [`Module::load_state_dict`]).
///
/// Atomic: everything is decoded and checked first (format, step, random
/// streams, every key's name, the model's names and shapes; the optimizer's
/// kind, groups, hyper-parameters and state names and shapes in its
/// [`import_state`](Optimizer::import_state), which changes nothing on error;
/// the scheduler's names in its `import_state`, likewise). If a later part
/// fails, the parts already imported are restored from snapshots taken
/// before, so an `Err` leaves the model, optimizer, scheduler and random
/// generators as they were (short of running out of memory while copying the
/// model's tensors). A key that does not fit is named in the error
/// ([`Error::StateDict`]). Decoding is linear in the file's size.
pub fn checkpoint_from_bytes(
    bytes: &[u8],
    model: &mut dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
    scheduler: Option<&mut dyn LrScheduler>,
) -> Result<CheckpointInfo> {
    let d = decode(bytes, model, optimizer.is_some())?;
    // Commit: optimizer, then scheduler, then model; each import checks
    // before it changes anything, and a failure undoes the ones before.
    let mut optimizer = optimizer;
    let opt_before = optimizer
        .as_ref()
        .map(|o| o.try_export_state())
        .transpose()?;
    if let (Some(opt), Some(s)) = (optimizer.as_deref_mut(), &d.optim) {
        opt.import_state(s)?;
    }
    let undo_opt = |opt: Option<&mut dyn Optimizer>| {
        if let (Some(opt), Some(s)) = (opt, &opt_before) {
            // Its own state: always accepted.
            let _ = opt.import_state(s);
        }
    };
    let mut scheduler = scheduler;
    let sched_before = scheduler.as_ref().map(|s| s.export_state());
    if let Some(s) = scheduler.as_deref_mut()
        && let Err(e) = s.import_state(&d.sched)
    {
        undo_opt(optimizer);
        return Err(e);
    }
    if let Err(e) = model.load_state_dict(&d.model) {
        undo_opt(optimizer);
        if let (Some(s), Some(before)) = (scheduler, &sched_before) {
            let _ = s.import_state(before);
        }
        return Err(e);
    }
    for (name, state) in d.module_rngs {
        // Every name was checked against the model's streams.
        let restored = model.set_rng_state(&name, state);
        debug_assert!(restored);
    }
    set_global_rng_state(d.rng);
    Ok(CheckpointInfo {
        step: d.step,
        extra: d.extra,
    })
}
