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
