//! Data-parallel training over MPI (feature `mpi`), as PyTorch's
//! `DistributedDataParallel`: every rank (process) holds a copy of the model,
//! trains on its own shard of each global batch
//! ([`DistributedSampler`](crate::data::DistributedSampler)), and after
//! `backward` the gradients are averaged across ranks, so every copy takes the
//! same optimizer step.
//!
//! The transport is the cluster's MPI library (OpenMPI, MPICH, Intel MPI,
//! Cray MPICH) through the [`mpi`] crate; start the program with `mpirun -np N
//! program` (or `srun`). Nothing in the core knows about ranks: this module
//! works on a [`Module`]'s parameters and gradients from the outside, after
//! `backward` returns.
//!
//! ```no_run
//! use train_station::distributed::{Distributed, DistributedDataParallel};
//! # use train_station::nn::{Linear, Module};
//! # fn main() -> Result<(), train_station::distributed::DistError> {
//! let dist = Distributed::init()?; // rank(), world_size(); a panic aborts the job
//! let mut model = Linear::new(4, 2);
//! let mut ddp = DistributedDataParallel::new(&dist, &mut model)?; // rank 0's weights everywhere
//! # let (x, y) = (train_station::Tensor::ones([2, 4]), train_station::Tensor::ones([2, 2]));
//! // per step, on this rank's shard of the global batch:
//! let loss = (&model.forward(&x) - &y).square().mean();
//! model.zero_grad();
//! ddp.backward(&loss, &model)?; // loss.backward(), then the gradient all-reduce
//! // optimizer.step_module(&mut model) as usual; rank 0 alone saves checkpoints
//! # Ok(()) }
//! ```
//!
//! # What the gradient average is
//!
//! Each rank's loss is the mean over its shard, and the ranks' gradients are
//! averaged. With equal shards (the sampler pads so that they are) the average
//! of the per-shard mean gradients is the gradient of the mean over the global
//! batch: N ranks with local batch `B / N` train like one process with batch
//! `B`, up to float rounding of the summation order.
//!
//! # Buckets, determinism and overlap
//!
//! Gradients are packed, in parameter order, into contiguous buckets of at most
//! [`DEFAULT_BUCKET_CAP_BYTES`] (25 MB as PyTorch; a larger parameter gets a
//! bucket of its own), and each bucket is reduced in one operation.
//! [`AllReduce::Deterministic`] (the default) does the all-reduce as an
//! all-to-all (rank `k` receives chunk `k` of every rank's bucket), a sum in
//! rank order `((g0 + g1) + g2) + ...` and an all-gather: the same bytes on the
//! wire as a ring all-reduce, but the summation order is fixed by this code and
//! not by the MPI library's choice of algorithm, so every rank gets the same
//! bits and two runs on the same number of ranks are bit-identical.
//! [`AllReduce::Native`] calls `MPI_Allreduce` instead.
//!
//! The reduction does **not** overlap with backward: it starts after
//! `backward` returns (the autograd engine has no per-parameter hook, by
//! design), and buckets are reduced one after another.
//!
//! # Errors never hang the job
//!
//! Before reducing, the ranks exchange a fingerprint of what they are about to
//! send (step count, number and shapes of the trainable parameters); if ranks
//! disagree every rank returns the same [`DistError`] naming the ranks, and
//! the `sync_grads` form aborts the job with it (`MPI_Abort`). A rank that
//! panics aborts the whole job from the panic hook [`Distributed::init`]
//! installs, instead of leaving the others waiting in a collective. A rank
//! that returns an error from `main` would finalize MPI while the others wait:
//! end such a rank with [`Distributed::abort`].

mod ddp;

pub use ddp::{AllReduce, DEFAULT_BUCKET_CAP_BYTES, DistributedDataParallel, SyncStats};

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use mpi::Threading;
use mpi::collective::CommunicatorCollectives;
use mpi::environment::Universe;
use mpi::topology::{Color, Communicator, SimpleCommunicator};
use mpi::traits::Root;

use crate::nn::Module;
use crate::tensor::Tensor;

/// Largest element count of one MPI message (counts are C `int`s).
const MAX_MESSAGE: usize = 1 << 28;

/// What went wrong in a distributed operation: the operation and a message
/// naming the ranks involved.
#[derive(Clone, Debug, PartialEq)]
pub struct DistError {
    /// The operation.
    pub op: &'static str,
    /// What happened.
    pub message: String,
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for DistError {}

impl From<crate::Error> for DistError {
    fn from(e: crate::Error) -> DistError {
        DistError {
            op: "distributed",
            message: format!("{e}"),
        }
    }
}

/// A process's place in an MPI job: its rank among `world_size` processes
/// and the communicator they share.
pub struct Distributed {
    comm: SimpleCommunicator,
    rank: usize,
    world_size: usize,
    // Declared last so the communicator is dropped first; dropping the
    // universe finalizes MPI.
    _universe: Option<Universe>,
}

impl fmt::Debug for Distributed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distributed")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish()
    }
}

impl Distributed {
    /// Initialises MPI (thread level `Funneled`: MPI is called from the main
    /// thread only, while the kernels may run worker threads) and joins the
    /// world communicator. Started without `mpirun` the process is a job of
    /// one. Installs a panic hook that, after the usual message, aborts the
    /// whole job (`MPI_Abort`), so a failing rank never leaves the others
    /// waiting. Dropping the value finalizes MPI.
    ///
    /// Errors if MPI was already initialised.
    pub fn init() -> Result<Distributed, DistError> {
        let (universe, _) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or(DistError {
                op: "Distributed::init",
                message: "MPI is already initialised in this process".into(),
            })?;
        let comm = universe.world();
        let (rank, world_size) = (comm.rank() as usize, comm.size() as usize);
        let previous = std::panic::take_hook();
        std::panic::set_hook(std::boxed::Box::new(move |info| {
            previous(info);
            if mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
                std::eprintln!(
                    "rank {rank} of {world_size} panicked: aborting the MPI job (MPI_Abort)"
                );
                SimpleCommunicator::world().abort(101);
            }
        }));
        Ok(Distributed {
            comm,
            rank,
            world_size,
            _universe: Some(universe),
        })
    }

    /// The processes of this job with `Some(color)` equal to this one's, as a
    /// job of their own (ranks keep their relative order); `None` on the
    /// processes that pass `None`. Collective: every rank of `self` calls it.
    /// Must be dropped before the [`Distributed`] that [`init`](Self::init)
    /// returned.
    pub fn split(&self, color: Option<u16>) -> Option<Distributed> {
        let c = color.map_or(Color::undefined(), |c| Color::with_value(i32::from(c)));
        let comm = self.comm.split_by_color(c)?;
        let (rank, world_size) = (comm.rank() as usize, comm.size() as usize);
        Some(Distributed {
            comm,
            rank,
            world_size,
            _universe: None,
        })
    }

    /// This process's rank, `0..world_size()`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes in the job.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Whether this is rank 0 (which prints, saves checkpoints).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// The MPI communicator, for operations this module does not wrap.
    pub fn communicator(&self) -> &SimpleCommunicator {
        &self.comm
    }

    /// Waits until every rank has called it.
    pub fn barrier(&self) {
        self.comm.barrier();
    }

    /// Prints `reason` with this rank to stderr and ends the whole job
    /// (`MPI_Abort` on the world communicator, exit code 1 from `mpirun`).
    pub fn abort(&self, reason: &dyn fmt::Display) -> ! {
        // One write, so that the ranks' messages do not interleave.
        let line = format!(
            "rank {} of {}: {reason}: aborting the MPI job\n",
            self.rank, self.world_size
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        SimpleCommunicator::world().abort(1)
    }

    /// Every rank's `values`, rank by rank. Collective; `values` must have
    /// the same length on every rank.
    pub fn all_gather_u64(&self, values: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; values.len() * self.world_size];
        self.comm.all_gather_into(values, &mut out[..]);
        out
    }

    /// Checks that every rank passed the same `fingerprint`; otherwise every
    /// rank gets the same error, `describe(fingerprint)` for each rank that
    /// differs from rank 0.
    pub(crate) fn check_agreement(
        &self,
        op: &'static str,
        fingerprint: &[u64],
        describe: impl Fn(&[u64]) -> String,
    ) -> Result<(), DistError> {
        let all = self.all_gather_u64(fingerprint);
        let n = fingerprint.len();
        let root = &all[..n];
        let mut bad = Vec::new();
        for (r, fp) in all.chunks(n).enumerate().skip(1) {
            if fp != root {
                bad.push(format!("rank {r} has {}", describe(fp)));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        Err(DistError {
            op,
            message: format!(
                "ranks disagree: rank 0 has {}; {}",
                describe(root),
                bad.join("; ")
            ),
        })
    }

    /// Copies rank 0's parameters and buffers (its state dict) into every
    /// rank's `model`, in place: parameters keep their identity, so an
    /// optimizer built before stays linked. Collective.
    ///
    /// Errors on every rank, without changing any model, if the ranks' models
    /// differ in parameter names or shapes.
    pub fn broadcast_module(&self, model: &mut dyn Module) -> Result<(), DistError> {
        let state = model.state_dict();
        let mut h = Fingerprint::new();
        let mut total = 0usize;
        for (name, t) in &state {
            h.bytes(name.as_bytes());
            h.dims(t.dims());
            total += t.numel();
        }
        let fp = [state.len() as u64, total as u64, h.0];
        self.check_agreement("broadcast_module", &fp, |f| {
            format!(
                "{} state tensors, {} elements (names and shapes hash {:016x})",
                f[0], f[1], f[2]
            )
        })?;
        if self.world_size == 1 {
            return Ok(());
        }
        let mut flat = Vec::with_capacity(if self.is_root() { total } else { 0 });
        if self.is_root() {
            for (_, t) in &state {
                match t.as_slice() {
                    Some(s) => flat.extend_from_slice(s),
                    None => flat.extend(t.to_vec()),
                }
            }
        } else {
            flat.resize(total, 0.0);
        }
        let root = self.comm.process_at_rank(0);
        for chunk in flat.chunks_mut(MAX_MESSAGE) {
            root.broadcast_into(chunk);
        }
        if self.is_root() {
            return Ok(());
        }
        let mut at = 0;
        let mut received = Vec::with_capacity(state.len());
        for (name, t) in &state {
            let n = t.numel();
            received.push((
                name.clone(),
                Tensor::from_slice(&flat[at..at + n], t.dims())?,
            ));
            at += n;
        }
        model.load_state_dict(&received)?;
        Ok(())
    }
}

/// FNV-1a over 64-bit words: a cheap, platform-independent fingerprint of
/// names and shapes for the agreement checks.
pub(crate) struct Fingerprint(pub(crate) u64);

impl Fingerprint {
    pub(crate) fn new() -> Fingerprint {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn word(&mut self, w: u64) {
        for b in w.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn bytes(&mut self, s: &[u8]) {
        self.word(s.len() as u64);
        for &b in s {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn dims(&mut self, dims: &[usize]) {
        self.word(dims.len() as u64);
        for &d in dims {
            self.word(d as u64);
        }
    }
}
