//! Datasets of tensors and a mini-batch loader (seeded shuffling, `batch_size`,
//! `drop_last`), plus a train/test split helper, as `torch.utils.data`'s
//! `TensorDataset`, `DataLoader` and `random_split`.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::tensor::{Generator, Tensor};

/// Samples stored as tensors that share their first dimension (e.g. features
/// `[n, ...]` and targets `[n]`); sample `i` is row `i` of each.
#[derive(Clone, Debug)]
pub struct TensorDataset {
    tensors: Vec<Tensor>,
}

impl TensorDataset {
    /// A dataset over `tensors`, which must all have the same size `n >= 0` in
    /// dimension 0 (a `ShapeMismatch` error otherwise).
    pub fn new(tensors: Vec<Tensor>) -> Result<TensorDataset> {
        let Some(first) = tensors.first() else {
            return Err(Error::InvalidArgument {
                op: "TensorDataset",
                detail: "expects at least one tensor",
            });
        };
        for t in &tensors {
            if t.rank() == 0 || first.rank() == 0 || t.dims()[0] != first.dims()[0] {
                return Err(Error::ShapeMismatch {
                    op: "TensorDataset",
                    lhs: first.shape().into(),
                    rhs: t.shape().into(),
                    detail: "every tensor must have the same size in dimension 0",
                });
            }
        }
        Ok(TensorDataset { tensors })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.tensors[0].dims()[0]
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored tensors.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Sample `i`: row `i` of each tensor (views, no copy).
    ///
    /// # Panics
    /// If `i >= len()`.
    #[track_caller]
    pub fn get(&self, i: usize) -> Vec<Tensor> {
        self.tensors.iter().map(|t| t.select(0, i)).collect()
    }

    /// The samples at `indices`, in that order, as new tensors.
    pub fn select(&self, indices: &[usize]) -> Result<Vec<Tensor>> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::IndexOutOfRange {
                op: "TensorDataset::select",
                index: bad.min(isize::MAX as usize) as isize,
                size: n,
            });
        }
        let idx = Tensor::try_from_fill(crate::tensor::Shape::new(&[indices.len()])?, |b| {
            for (o, &i) in b.iter_mut().zip(indices) {
                *o = i as f32;
            }
        })?;
        self.tensors
            .iter()
            .map(|t| t.try_index_select(0, &idx))
            .collect()
    }

    /// The dataset restricted to `indices` (copied).
    pub fn subset(&self, indices: &[usize]) -> Result<TensorDataset> {
        Ok(TensorDataset {
            tensors: self.select(indices)?,
        })
    }

    /// Splits the samples into two datasets after a seeded shuffle: the first
    /// gets `round(len * first_fraction)` samples.
    pub fn split(&self, first_fraction: f32, seed: u64) -> Result<(TensorDataset, TensorDataset)> {
        if !(0.0..=1.0).contains(&first_fraction) {
            return Err(Error::InvalidArgument {
                op: "TensorDataset::split",
                detail: "the fraction must be within [0, 1]",
            });
        }
        let perm = Generator::new(seed).permutation(self.len());
        let k = libm::roundf(self.len() as f32 * first_fraction) as usize;
        Ok((self.subset(&perm[..k])?, self.subset(&perm[k..])?))
    }
}

/// Splits tensors that share their first dimension into train and test sets
/// after a seeded shuffle; the test set gets `round(n * test_fraction)`
/// samples.
pub fn train_test_split(
    tensors: Vec<Tensor>,
    test_fraction: f32,
    seed: u64,
) -> Result<(TensorDataset, TensorDataset)> {
    let (test, train) = TensorDataset::new(tensors)?.split(test_fraction, seed)?;
    Ok((train, test))
}

/// Yields mini-batches of a dataset; see [`DataLoader::epoch`].
#[derive(Clone, Debug)]
pub struct DataLoader<'a> {
    dataset: &'a TensorDataset,
    batch_size: usize,
    shuffle: Option<Generator>,
    drop_last: bool,
}

impl<'a> DataLoader<'a> {
    /// Batches of `batch_size` samples in dataset order (no shuffling, last
    /// batch kept even if smaller).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn new(dataset: &'a TensorDataset, batch_size: usize) -> DataLoader<'a> {
        assert!(batch_size > 0, "DataLoader: batch_size must be positive");
        DataLoader {
            dataset,
            batch_size,
            shuffle: None,
            drop_last: false,
        }
    }

    /// Reshuffles every epoch from a generator seeded with `seed`: the
    /// sequence of epochs is the same on every run and target.
    pub fn shuffle(mut self, seed: u64) -> DataLoader<'a> {
        self.shuffle = Some(Generator::new(seed));
        self
    }

    /// Drops the last batch if it is smaller than `batch_size`.
    pub fn drop_last(mut self, drop: bool) -> DataLoader<'a> {
        self.drop_last = drop;
        self
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The shuffling generator's state (to checkpoint a run mid-training).
    pub fn rng_state(&self) -> Option<[u64; 4]> {
        self.shuffle.as_ref().map(Generator::state)
    }

    /// Restores a state from [`rng_state`](Self::rng_state).
    pub fn set_rng_state(&mut self, state: [u64; 4]) {
        self.shuffle = Some(Generator::from_state(state));
    }

    /// One pass over the data: each item is one batch (one tensor per dataset
    /// tensor, batch dimension first). Consumes one permutation from the
    /// shuffling generator, so successive epochs differ.
    pub fn epoch(&mut self) -> Batches<'a> {
        let n = self.dataset.len();
        let order = match &mut self.shuffle {
            Some(g) => g.permutation(n),
            None => (0..n).collect(),
        };
        Batches {
            dataset: self.dataset,
            order,
            batch_size: self.batch_size,
            next: 0,
            drop_last: self.drop_last,
        }
    }
}

/// The batches of one epoch; see [`DataLoader::epoch`].
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    dataset: &'a TensorDataset,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    drop_last: bool,
}

impl<'a> Batches<'a> {
    /// The samples of `dataset` at `order`, in batches of `batch_size` (the
    /// last one smaller if need be), e.g. a [`DistributedSampler::shard`].
    /// An index out of range panics when its batch is gathered.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn over(dataset: &'a TensorDataset, order: Vec<usize>, batch_size: usize) -> Batches<'a> {
        assert!(batch_size > 0, "Batches::over: batch_size must be positive");
        Batches {
            dataset,
            order,
            batch_size,
            next: 0,
            drop_last: false,
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Vec<Tensor>;

    /// # Panics
    /// If memory runs out while gathering a batch.
    fn next(&mut self) -> Option<Vec<Tensor>> {
        let n = self.order.len();
        if self.next >= n {
            return None;
        }
        let e = (self.next + self.batch_size).min(n);
        if self.drop_last && e - self.next < self.batch_size {
            return None;
        }
        let batch = crate::error::unwrap(self.dataset.select(&self.order[self.next..e]));
        self.next = e;
        Some(batch)
    }
}

/// Splits each epoch's samples between the ranks of a data-parallel job, as
/// PyTorch's `DistributedSampler`: every rank builds the same seeded
/// permutation of `0..len` for the epoch, and rank `r` of `world_size` takes
/// positions `r, r + world_size, r + 2 world_size, ...` of it.
///
/// So that every rank takes the same number of steps, the permutation is
/// first padded by wrapping around to its start (a few samples are seen twice
/// in an epoch) up to a multiple of `world_size`, or, with
/// [`drop_last`](Self::drop_last), cut down to one (a few are skipped).
///
/// The shard is pure arithmetic: no communication. Because rank `r` takes
/// every `world_size`-th index, the ranks' `t`-th local batches of size `b`
/// together hold positions `t b world_size .. (t + 1) b world_size` of the
/// permutation: the global batches do not depend on the number of ranks
/// (except for the padded tail), which is what lets a run resume on a
/// different number of ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributedSampler {
    len: usize,
    world_size: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    drop_last: bool,
}

impl DistributedSampler {
    /// The shard of rank `rank` out of `world_size` over `len` samples;
    /// shuffled with seed 0, epoch 0, padded (no `drop_last`).
    ///
    /// Errors if `world_size` is 0 or `rank >= world_size`.
    pub fn new(len: usize, world_size: usize, rank: usize) -> Result<DistributedSampler> {
        if world_size == 0 || rank >= world_size {
            return Err(Error::InvalidArgument {
                op: "DistributedSampler::new",
                detail: "need world_size > 0 and rank < world_size",
            });
        }
        Ok(DistributedSampler {
            len,
            world_size,
            rank,
            shuffle: true,
            seed: 0,
            epoch: 0,
            drop_last: false,
        })
    }

    /// Whether to shuffle (default true); without, the epoch order is
    /// `0..len`.
    pub fn shuffle(mut self, on: bool) -> DistributedSampler {
        self.shuffle = on;
        self
    }

    /// The seed: epoch `e`'s permutation comes from a generator seeded with
    /// `seed + e` (as PyTorch), the same on every rank and every run.
    pub fn seed(mut self, seed: u64) -> DistributedSampler {
        self.seed = seed;
        self
    }

    /// Cut the epoch down to a multiple of `world_size` instead of padding it.
    pub fn drop_last(mut self, drop: bool) -> DistributedSampler {
        self.drop_last = drop;
        self
    }

    /// Selects the epoch whose permutation [`indices`](Self::indices)
    /// returns. Call it at the start of every epoch (with the same value on
    /// every rank), otherwise every epoch has the same order.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Samples this rank takes per epoch (the same on every rank):
    /// `ceil(len / world_size)`, or `floor(len / world_size)` with
    /// `drop_last`.
    pub fn num_samples(&self) -> usize {
        if self.drop_last {
            self.len / self.world_size
        } else {
            self.len.div_ceil(self.world_size)
        }
    }

    /// Samples all ranks take per epoch: `num_samples() * world_size`.
    pub fn total_size(&self) -> usize {
        self.num_samples() * self.world_size
    }

    /// This rank's sample indices for the current epoch, in order.
    pub fn indices(&self) -> Vec<usize> {
        let order: Vec<usize> = if self.shuffle {
            Generator::new(self.seed.wrapping_add(self.epoch)).permutation(self.len)
        } else {
            (0..self.len).collect()
        };
        self.shard(order)
    }

    /// This rank's share of an epoch order the caller chose instead of the
    /// sampler's permutation (e.g. to replay a [`DataLoader`]'s shuffle):
    /// padded or cut to [`total_size`](Self::total_size) and strided as in
    /// [`indices`](Self::indices). `order` normally holds `len` indices.
    pub fn shard(&self, mut order: Vec<usize>) -> Vec<usize> {
        let total = self.total_size();
        if order.len() > total {
            order.truncate(total);
        }
        // Pad by wrapping around (repeatedly if the padding exceeds `len`).
        let mut i = 0;
        while order.len() < total && !order.is_empty() {
            order.push(order[i]);
            i += 1;
        }
        order
            .into_iter()
            .skip(self.rank)
            .step_by(self.world_size)
            .collect()
    }

    /// This rank's samples of the current epoch in batches of `batch_size`
    /// (the last batch smaller unless `batch_size` divides
    /// [`num_samples`](Self::num_samples)).
    ///
    /// # Panics
    /// If `batch_size` is 0, or an index is out of range for `dataset`
    /// (when it has fewer samples than the sampler's `len`).
    #[track_caller]
    pub fn batches<'a>(&self, dataset: &'a TensorDataset, batch_size: usize) -> Batches<'a> {
        assert!(
            batch_size > 0,
            "DistributedSampler::batches: batch_size must be positive"
        );
        assert!(
            dataset.len() >= self.len,
            "DistributedSampler::batches: the dataset has fewer samples than the sampler"
        );
        Batches::over(dataset, self.indices(), batch_size)
    }
}
