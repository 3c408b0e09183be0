//! Gradient averaging across ranks in buckets (see the [module
//! docs](super)).

use alloc::format;
use alloc::vec::Vec;

use mpi::collective::{CommunicatorCollectives, SystemOperation};

use super::{DistError, Distributed, Fingerprint};
use crate::nn::Module;
use crate::tensor::Tensor;

/// The default bucket size cap: 25 MB of `f32` gradients, as PyTorch's DDP.
pub const DEFAULT_BUCKET_CAP_BYTES: usize = 25 * 1024 * 1024;

/// How each bucket is summed across ranks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AllReduce {
    /// All-to-all, a sum in rank order, all-gather: every rank gets the same
    /// bits and runs are reproducible, whatever the MPI library.
    #[default]
    Deterministic,
    /// `MPI_Allreduce` with `MPI_SUM`: the MPI library's algorithm and
    /// summation order.
    Native,
}

/// What one gradient synchronisation did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SyncStats {
    /// Buckets reduced (one collective reduction each).
    pub buckets: usize,
    /// Parameters whose gradients were averaged.
    pub params: usize,
    /// Gradient bytes each rank contributed (4 per element).
    pub bytes: usize,
    /// Wall time of the synchronisation, checks included, in seconds.
    pub seconds: f64,
}

/// Averages a model's gradients across the ranks of a [`Distributed`] job
/// after every backward pass; see the [module docs](super).
///
/// Frozen parameters (not requiring grad) are skipped. A trainable
/// parameter that got no gradient on some ranks (unused by their forward)
/// counts as zero there; one that got none on any rank keeps none.
#[derive(Debug)]
pub struct DistributedDataParallel<'d> {
    dist: &'d Distributed,
    cap: usize,
    reduction: AllReduce,
    syncs: u64,
    bucket: Vec<f32>,
    scratch: Vec<f32>,
}

impl<'d> DistributedDataParallel<'d> {
    /// Broadcasts rank 0's parameters and buffers into `model` on every rank
    /// ([`Distributed::broadcast_module`]) and prepares to average its
    /// gradients. Collective.
    pub fn new(
        dist: &'d Distributed,
        model: &mut dyn Module,
    ) -> Result<DistributedDataParallel<'d>, DistError> {
        dist.broadcast_module(model)?;
        Ok(DistributedDataParallel {
            dist,
            cap: DEFAULT_BUCKET_CAP_BYTES / 4,
            reduction: AllReduce::default(),
            syncs: 0,
            bucket: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Caps buckets at `bytes` of gradients (at least one element; a larger
    /// parameter still gets a bucket of its own). Must be the same on every
    /// rank.
    pub fn bucket_cap_bytes(mut self, bytes: usize) -> Self {
        self.cap = (bytes / 4).max(1);
        self
    }

    /// Chooses how buckets are summed (same on every rank).
    pub fn reduction(mut self, reduction: AllReduce) -> Self {
        self.reduction = reduction;
        self
    }

    /// The job this averages over.
    pub fn dist(&self) -> &'d Distributed {
        self.dist
    }

    /// `loss.backward()`, then [`try_sync_grads`](Self::try_sync_grads).
    pub fn backward(&mut self, loss: &Tensor, model: &dyn Module) -> Result<SyncStats, DistError> {
        loss.try_backward()?;
        self.try_sync_grads(model)
    }

    /// Replaces every trainable parameter's gradient by its average over the
    /// ranks. Collective: every rank calls it once per step.
    ///
    /// Errors, identically on every rank and before any data moves, if the
    /// ranks disagree on the number or shapes of the trainable parameters or
    /// on how many times they have synchronised; the ranks can then go on
    /// together. Any other error (memory running out while unpacking) is this
    /// rank's alone: end the job with [`Distributed::abort`], as
    /// [`sync_grads`](Self::sync_grads) does.
    pub fn try_sync_grads(&mut self, model: &dyn Module) -> Result<SyncStats, DistError> {
        let start = std::time::Instant::now();
        let dist = self.dist;
        let params: Vec<Tensor> = model
            .parameters()
            .into_iter()
            .filter(Tensor::requires_grad)
            .collect();
        let mut h = Fingerprint::new();
        let mut total = 0u64;
        for p in &params {
            h.dims(p.dims());
            total += p.numel() as u64;
        }
        let fp = [self.syncs, params.len() as u64, total, h.0];
        dist.check_agreement("sync_grads", &fp, |f| {
            format!(
                "sync {} with {} trainable parameters, {} elements (shapes hash {:016x})",
                f[0], f[1], f[2], f[3]
            )
        })?;
        self.syncs += 1;

        // Which parameters have a gradient on at least one rank.
        let mut mask = alloc::vec![0u64; params.len().div_ceil(64)];
        for (i, p) in params.iter().enumerate() {
            if p.grad().is_some() {
                mask[i / 64] |= 1 << (i % 64);
            }
        }
        if !mask.is_empty() {
            let all = dist.all_gather_u64(&mask);
            for rank_mask in all.chunks(mask.len()) {
                for (m, r) in mask.iter_mut().zip(rank_mask) {
                    *m |= r;
                }
            }
        }
        let used: Vec<&Tensor> = params
            .iter()
            .enumerate()
            .filter(|(i, _)| mask[i / 64] >> (i % 64) & 1 == 1)
            .map(|(_, p)| p)
            .collect();

        let mut stats = SyncStats {
            params: used.len(),
            ..SyncStats::default()
        };
        let mut first = 0;
        while first < used.len() {
            let mut end = first + 1;
            let mut len = used[first].numel();
            while end < used.len() && len + used[end].numel() <= self.cap {
                len += used[end].numel();
                end += 1;
            }
            self.reduce_bucket(&used[first..end], len)?;
            stats.buckets += 1;
            stats.bytes += 4 * len;
            first = end;
        }
        stats.seconds = start.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// [`try_sync_grads`](Self::try_sync_grads), aborting the job with the
    /// error's message if it fails.
    pub fn sync_grads(&mut self, model: &dyn Module) -> SyncStats {
        match self.try_sync_grads(model) {
            Ok(s) => s,
            Err(e) => self.dist.abort(&e),
        }
    }

    /// Packs the gradients of `params` (`len` elements), averages them across
    /// ranks and writes the averages back as the gradients.
    fn reduce_bucket(&mut self, params: &[&Tensor], len: usize) -> Result<(), DistError> {
        let n = self.dist.world_size;
        let padded = match self.reduction {
            AllReduce::Deterministic => len.div_ceil(n) * n,
            AllReduce::Native => len,
        };
        if padded / n > super::MAX_MESSAGE {
            return Err(DistError {
                op: "sync_grads",
                message: format!("a parameter of {len} elements exceeds one MPI message"),
            });
        }
        self.bucket.clear();
        for p in params {
            match p.grad() {
                Some(g) => match g.as_slice() {
                    Some(s) => self.bucket.extend_from_slice(s),
                    None => self.bucket.extend(g.to_vec()),
                },
                None => self.bucket.resize(self.bucket.len() + p.numel(), 0.0),
            }
        }
        self.bucket.resize(padded, 0.0);
        self.scratch.clear();
        self.scratch.resize(padded, 0.0);
        let comm = &self.dist.comm;
        let scale = n as f32;
        match self.reduction {
            AllReduce::Deterministic => {
                // Rank k receives chunk k of every rank's bucket, in rank order.
                comm.all_to_all_into(&self.bucket[..], &mut self.scratch[..]);
                let c = padded / n;
                let (mine, rest) = self.scratch.split_at_mut(c);
                for chunk in rest.chunks(c) {
                    for (s, v) in mine.iter_mut().zip(chunk) {
                        *s += v;
                    }
                }
                for s in mine.iter_mut() {
                    *s /= scale;
                }
                comm.all_gather_into(&*mine, &mut self.bucket[..]);
            }
            AllReduce::Native => {
                comm.all_reduce_into(
                    &self.bucket[..],
                    &mut self.scratch[..],
                    SystemOperation::sum(),
                );
                for (b, s) in self.bucket.iter_mut().zip(&self.scratch) {
                    *b = s / scale;
                }
            }
        }
        let mut at = 0;
        for p in params {
            let k = p.numel();
            let avg = &self.bucket[at..at + k];
            at += k;
            let grad = match p.take_grad() {
                Some(mut g) => {
                    g.try_data_mut()?.copy_from_slice(avg);
                    g
                }
                None => Tensor::from_slice(avg, p.dims())?,
            };
            p.set_grad(Some(grad))?;
        }
        Ok(())
    }
}
