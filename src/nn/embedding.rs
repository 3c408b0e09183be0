//! `Embedding`: a lookup table of vectors, as `torch.nn.Embedding`.

use alloc::vec;
use alloc::vec::Vec;

use super::{Module, init, module::join};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::tensor::{MAX_RANK, Shape, Tensor};

/// A table of `num_embeddings` vectors of size `embedding_dim`, as
/// `torch.nn.Embedding`: input indices of any shape (an f32 tensor of whole
/// numbers in `0..num_embeddings`), output `[*input_shape, embedding_dim]`
/// holding the rows they name. Parameter `weight` `[num_embeddings,
/// embedding_dim]`, initialised from `N(0, 1)`.
///
/// With a `padding_idx`, that row is initialised to zeros and never
/// receives a gradient (lookups of it still return its current value).
/// Repeated indices accumulate their gradients. Errors name `Embedding`: an
/// index out of range gives `IndexOutOfRange` with the index and
/// `num_embeddings`.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    padding_idx: Option<usize>,
}

impl Embedding {
    /// A table without a padding index.
    ///
    /// # Panics
    /// If memory runs out.
    #[track_caller]
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Embedding {
        unwrap(Self::try_new(num_embeddings, embedding_dim, None))
    }

    /// A table whose row `padding_idx` is zero and gets no gradient.
    ///
    /// # Panics
    /// If `padding_idx >= num_embeddings`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_padding_idx(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: usize,
    ) -> Embedding {
        unwrap(Self::try_new(
            num_embeddings,
            embedding_dim,
            Some(padding_idx),
        ))
    }

    /// A table, or `IndexOutOfRange` naming `Embedding` if `padding_idx` is
    /// not below `num_embeddings`.
    pub fn try_new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
    ) -> Result<Embedding> {
        if let Some(p) = padding_idx
            && p >= num_embeddings
        {
            return Err(Error::IndexOutOfRange {
                op: "Embedding",
                index: p.min(isize::MAX as usize) as isize,
                size: num_embeddings,
            });
        }
        let mut weight = Tensor::try_zeros([num_embeddings, embedding_dim])?;
        init::normal_(&mut weight, 0.0, 1.0)?;
        if let Some(p) = padding_idx {
            let row = &mut weight.try_data_mut()?[p * embedding_dim..(p + 1) * embedding_dim];
            row.fill(0.0);
        }
        Ok(Embedding {
            weight: weight.with_requires_grad(),
            padding_idx,
        })
    }

    /// A table holding `weight` `[num_embeddings, embedding_dim]` as it is
    /// (set `requires_grad` on it to train), as `Embedding.from_pretrained`
    /// with `freeze=False` minus the flag. `IndexOutOfRange` for a bad
    /// `padding_idx`; `ShapeMismatch` if `weight` is not 2-D.
    pub fn from_weight(weight: Tensor, padding_idx: Option<usize>) -> Result<Embedding> {
        if weight.rank() != 2 {
            return Err(Error::ShapeMismatch {
                op: "Embedding",
                lhs: weight.shape().into(),
                rhs: crate::error::Dims::default(),
                detail: "the weight must be [num_embeddings, embedding_dim]",
            });
        }
        if let Some(p) = padding_idx
            && p >= weight.dims()[0]
        {
            return Err(Error::IndexOutOfRange {
                op: "Embedding",
                index: p.min(isize::MAX as usize) as isize,
                size: weight.dims()[0],
            });
        }
        Ok(Embedding {
            weight,
            padding_idx,
        })
    }

    /// `num_embeddings`.
    pub fn num_embeddings(&self) -> usize {
        self.weight.dims()[0]
    }

    /// `embedding_dim`.
    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    /// The padding index, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }
}

/// The values of `index` in logical order, each a whole number below `size`.
fn rows(op: &'static str, index: &Tensor, size: usize) -> Result<Vec<usize>> {
    // An expanded index can claim more entries than memory holds.
    let mut out = crate::pool::try_vec(index.numel())?;
    for v in index.values() {
        if !v.is_finite() || libm::truncf(v) != v {
            return Err(Error::InvalidArgument {
                op,
                detail: "indices must be whole numbers (f32 values without a fraction)",
            });
        }
        if v < 0.0 || v >= size as f32 {
            return Err(Error::IndexOutOfRange {
                op,
                index: v as isize,
                size,
            });
        }
        out.push(v as usize);
    }
    Ok(out)
}

impl Module for Embedding {
    fn try_forward(&self, index: &Tensor) -> Result<Tensor> {
        let op = "Embedding";
        let (num, dim) = (self.num_embeddings(), self.embedding_dim());
        if index.rank() >= MAX_RANK {
            return Err(Error::RankTooHigh {
                op,
                rank: index.rank() + 1,
            });
        }
        let idx = rows(op, index, num)?;
        let w = self.weight.try_contiguous()?;
        let table = w.as_slice().expect("contiguous");
        let mut dims: heapless::Vec<usize, MAX_RANK> = index.dims().iter().copied().collect();
        let _ = dims.push(dim);
        let out = Tensor::try_from_fill(Shape::new(&dims)?, |buf| {
            for (k, &i) in idx.iter().enumerate() {
                buf[k * dim..(k + 1) * dim].copy_from_slice(&table[i * dim..(i + 1) * dim]);
            }
        })?;
        if !needs_grad(&[&w]) {
            return Ok(out);
        }
        let padding = self.padding_idx;
        Ok(out.record("EmbeddingBackward0", &[&w], move |g, _| {
            let g = g.try_contiguous()?;
            let gs = g.as_slice().expect("contiguous");
            // Straight into a pool tensor: counted against the budget, and
            // an error (not an abort) when it does not fit.
            let gw = Tensor::try_from_fill(Shape::new(&[num, dim])?, |gw| {
                gw.fill(0.0);
                for (k, &i) in idx.iter().enumerate() {
                    if Some(i) == padding {
                        continue;
                    }
                    for (acc, &v) in gw[i * dim..(i + 1) * dim]
                        .iter_mut()
                        .zip(&gs[k * dim..(k + 1) * dim])
                    {
                        *acc += v;
                    }
                }
            })?;
            Ok(vec![Some(gw)])
        }))
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(&join(prefix, "weight"), &self.weight);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        f(&join(prefix, "weight"), &mut self.weight);
    }
}
