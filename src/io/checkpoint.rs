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
//! Plain weights that PyTorch loads directly (`model.load_state_dict(
//! safetensors.torch.load_file(path))`) are written by [`module_to_bytes`] /
//! [`save_module`](crate::io::save_module), without the prefix.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::{from_safetensors, to_safetensors};
use crate::error::{Error, Result};
use crate::nn::Module;
use crate::optim::{GroupState, LrScheduler, Optimizer, OptimizerState};
use crate::tensor::{Tensor, global_rng_state, set_global_rng_state};

const FORMAT: &str = "train-station-checkpoint-1";

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
        let names: BTreeMap<u64, String> = model
            .named_parameters()
            .into_iter()
            .map(|(n, p)| (p.id(), n))
            .collect();
        let name_of = |id: u64| {
            names.get(&id).cloned().ok_or(Error::InvalidArgument {
                op: "save_checkpoint",
                detail: "the optimizer holds a parameter that is not in the model",
            })
        };
        let state = opt.export_state();
        meta.push(("optim.kind".into(), state.kind.clone()));
        meta.push(("optim.groups".into(), state.groups.len().to_string()));
        for (g, group) in state.groups.iter().enumerate() {
            let params: Result<Vec<String>> = group.params.iter().map(|&id| name_of(id)).collect();
            meta.push((format!("optim.group.{g}.params"), params?.join(",")));
            for (k, v) in &group.hyper {
                meta.push((format!("optim.group.{g}.{k}"), format!("{v:?}")));
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
            meta.push((format!("sched.{k}"), format!("{v:?}")));
        }
    }
    for (k, v) in extra {
        meta.push((format!("extra.{k}"), (*v).to_string()));
    }
    let meta_refs: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    to_safetensors(tensors.iter().map(|(n, t)| (n.as_str(), t)), &meta_refs)
}

fn parse_f32(s: &str) -> Result<f32> {
    s.parse::<f32>()
        .map_err(|_| bad("a number in the metadata does not parse"))
}

/// Restores a checkpoint into `model` and, if given, `optimizer` and
/// `scheduler`, and restores the global random generator. Everything is
/// decoded and checked before the model is changed; the model is loaded
/// strictly (see [`Module::load_state_dict`]).
pub fn checkpoint_from_bytes(
    bytes: &[u8],
    model: &mut dyn Module,
    optimizer: Option<&mut dyn Optimizer>,
    scheduler: Option<&mut dyn LrScheduler>,
) -> Result<CheckpointInfo> {
    let file = from_safetensors(bytes)?;
    if file.meta("format") != Some(FORMAT) {
        return Err(bad(
            "not a train-station checkpoint (format key missing or unknown)",
        ));
    }
    let step: u64 = file
        .meta("step")
        .and_then(|s| s.parse().ok())
        .ok_or(bad("the step is missing or malformed"))?;
    let parse_rng = |s: &str| -> Result<[u64; 4]> {
        let words: Vec<u64> = s
            .split(',')
            .map(|w| u64::from_str_radix(w, 16))
            .collect::<core::result::Result<_, _>>()
            .map_err(|_| bad("a random generator state is malformed"))?;
        words
            .try_into()
            .map_err(|_| bad("a random generator state is malformed"))
    };
    let rng = parse_rng(
        file.meta("rng")
            .ok_or(bad("the random generator state is missing"))?,
    )?;
    let module_rngs: Vec<(String, [u64; 4])> = file
        .metadata
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("rng.").map(|k| (k, v)))
        .map(|(k, v)| Ok((k.to_string(), parse_rng(v)?)))
        .collect::<Result<_>>()?;

    let state: Vec<(String, Tensor)> = file
        .tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix("model.").map(|n| (n.to_string(), t.clone())))
        .collect();

    // Optimizer state by parameter name, decoded before anything changes.
    let names: BTreeMap<String, u64> = model
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.id()))
        .collect();
    let opt_state = match &optimizer {
        None => None,
        Some(_) => {
            let kind = file
                .meta("optim.kind")
                .ok_or(bad("the checkpoint has no optimizer state"))?;
            let n_groups: usize = file
                .meta("optim.groups")
                .and_then(|s| s.parse().ok())
                .ok_or(bad("the optimizer group count is missing"))?;
            let id_of = |name: &str| {
                names
                    .get(name)
                    .copied()
                    .ok_or(bad("an optimizer parameter is not in the model"))
            };
            let mut groups = Vec::new();
            for g in 0..n_groups {
                let list = file
                    .meta(&format!("optim.group.{g}.params"))
                    .ok_or(bad("an optimizer group has no parameter list"))?;
                let params: Result<Vec<u64>> = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(id_of)
                    .collect();
                let prefix = format!("optim.group.{g}.");
                let mut hyper = Vec::new();
                for (k, v) in &file.metadata {
                    if let Some(h) = k.strip_prefix(&prefix)
                        && h != "params"
                    {
                        hyper.push((h.to_string(), parse_f32(v)?));
                    }
                }
                groups.push(GroupState {
                    params: params?,
                    hyper,
                });
            }
            let mut per_param: BTreeMap<u64, Vec<(String, Tensor)>> = BTreeMap::new();
            for (n, t) in &file.tensors {
                let Some(rest) = n.strip_prefix("optim.") else {
                    continue;
                };
                let (pname, buf) = rest
                    .rsplit_once('.')
                    .ok_or(bad("an optimizer tensor name is malformed"))?;
                per_param
                    .entry(id_of(pname)?)
                    .or_default()
                    .push((buf.to_string(), t.clone()));
            }
            Some(OptimizerState {
                kind: kind.to_string(),
                groups,
                params: per_param.into_iter().collect(),
            })
        }
    };
    let sched_state: Vec<(String, f64)> = file
        .metadata
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("sched.").map(|k| (k.to_string(), v)))
        .map(|(k, v)| {
            Ok((
                k,
                v.parse::<f64>()
                    .map_err(|_| bad("a scheduler value does not parse"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let extra = file
        .metadata
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("extra.").map(|k| (k.to_string(), v.clone())))
        .collect();

    model.load_state_dict(&state)?;
    if let (Some(opt), Some(s)) = (optimizer, &opt_state) {
        opt.import_state(s)?;
    }
    if let Some(s) = scheduler {
        s.import_state(&sched_state)?;
    }
    for (name, state) in module_rngs {
        if !model.set_rng_state(&name, state) {
            return Err(bad("a saved random stream has no matching module"));
        }
    }
    set_global_rng_state(rng);
    Ok(CheckpointInfo { step, extra })
}
