//! Joining, indexing and reordering: [`cat`](Tensor::cat),
//! [`stack`](Tensor::stack), [`index_select`](Tensor::index_select),
//! [`gather`](Tensor::gather), [`scatter_add`](Tensor::scatter_add),
//! [`repeat`](Tensor::repeat), [`flip`](Tensor::flip) and
//! [`pad`](Tensor::pad), with their gradients. Every result is a new
//! contiguous tensor; inputs may be any views.
//!
//! Elements move with the strided walker: a region of the output (a slice or
//! a `select` of its contiguous layout) is walked together with the input,
//! copying runs. Index tensors are f32 tensors holding whole numbers (the
//! library is f32-only); they are validated once, in logical order, and never
//! receive a gradient.
//!
//! Files: this one holds the helpers the others share (copying and adding
//! runs, index validation, the layouts of an index's positions); `join`
//! `cat` and `stack`; `index` `index_select`, `gather` and `scatter_add`;
//! `reorder` `repeat`, `flip` and `pad`.

mod index;
mod join;
mod reorder;

use alloc::vec::Vec;
use core::borrow::Borrow;

use crate::error::{Error, Result};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::{MAX_RANK, Shape, Tensor};

/// `dst[ld] = src[ls]` element by element (same shapes).
fn copy_runs(dst: &mut [f32], ld: &Layout, src: &[f32], ls: &Layout) {
    for run in Walker::new([ld, ls]) {
        let (o, so) = (run.offsets[0], run.offsets[1]);
        match run.strides {
            [1, 1] => dst[o..o + run.len].copy_from_slice(&src[so..so + run.len]),
            [d, s] => {
                for i in 0..run.len {
                    dst[o + i * d] = src[so + i * s];
                }
            }
        }
    }
}

/// `dst[ld] += src[ls]` element by element (same shapes).
fn add_runs(dst: &mut [f32], ld: &Layout, src: &[f32], ls: &Layout) {
    for run in Walker::new([ld, ls]) {
        let (o, so) = (run.offsets[0], run.offsets[1]);
        for i in 0..run.len {
            dst[o + i * run.strides[0]] += src[so + i * run.strides[1]];
        }
    }
}

/// A 0-D layout as `[1]`; others unchanged.
fn at_least_1d(op: &'static str, l: &Layout) -> Result<Layout> {
    if l.rank() == 0 {
        l.unsqueeze(op, 0)
    } else {
        Ok(l.clone())
    }
}

/// Largest index an f32 holds exactly for every smaller integer (2^24).
const INDEX_LIMIT: f32 = 16_777_216.0;

/// The values of `index` in logical order, each a whole number in `0..size`.
fn indices(op: &'static str, index: &Tensor, size: usize) -> Result<Vec<usize>> {
    // An expanded index can claim more entries than memory holds.
    let mut out = crate::pool::try_vec(index.numel())?;
    for v in index.values() {
        if !v.is_finite() || libm::truncf(v) != v {
            return Err(Error::InvalidArgument {
                op,
                detail: "indices must be whole numbers (f32 values without a fraction)",
            });
        }
        let oor = Error::IndexOutOfRange {
            op,
            index: v as isize,
            size,
        };
        if v < 0.0 {
            return Err(oor);
        }
        if v >= INDEX_LIMIT {
            if size as f32 <= INDEX_LIMIT {
                return Err(oor);
            }
            return Err(Error::InvalidArgument {
                op,
                detail: "indices must be below 2^24, the range where f32 holds every integer",
            });
        }
        let i = v as usize;
        if i >= size {
            return Err(oor);
        }
        out.push(i);
    }
    Ok(out)
}

/// `l` over `shape` (no larger than `l`'s dims except along `d`) with stride 0
/// along `d`: the position of each element before its index along `d` is added.
fn without_dim(l: &Layout, shape: &Shape, d: usize) -> Layout {
    let mut strides = [0usize; MAX_RANK];
    strides[..l.rank()].copy_from_slice(l.strides());
    strides[d] = 0;
    Layout::from_parts(shape.clone(), &strides[..l.rank()], l.offset())
}

/// `l` restricted to the leading corner `shape` (no larger than `l`'s dims).
fn corner(l: &Layout, shape: &Shape) -> Layout {
    Layout::from_parts(shape.clone(), l.strides(), l.offset())
}

/// `dst[ldst] = src[lbase + idx[pos] * sd]`, where `pos` is the element's
/// position in `lpos` (contiguous over the index's shape).
fn take(
    dst: &mut [f32],
    ldst: &Layout,
    src: &[f32],
    lbase: &Layout,
    sd: usize,
    idx: &[usize],
    lpos: &Layout,
) {
    for run in Walker::new([ldst, lbase, lpos]) {
        for t in 0..run.len {
            let at = |q: usize| run.offsets[q] + t * run.strides[q];
            dst[at(0)] = src[at(1) + idx[at(2)] * sd];
        }
    }
}

/// `dst[lbase + idx[pos] * sd] += src[lsrc]` (repeated indices accumulate).
fn put_add(
    dst: &mut [f32],
    lbase: &Layout,
    sd: usize,
    src: &[f32],
    lsrc: &Layout,
    idx: &[usize],
    lpos: &Layout,
) {
    for run in Walker::new([lbase, lsrc, lpos]) {
        for t in 0..run.len {
            let at = |q: usize| run.offsets[q] + t * run.strides[q];
            dst[at(0) + idx[at(2)] * sd] += src[at(1)];
        }
    }
}

fn mismatch(op: &'static str, lhs: &Shape, rhs: &Shape, detail: &'static str) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: (lhs.clone()).into(),
        rhs: (rhs.clone()).into(),
        detail,
    }
}

/// The tensors of a `&[Tensor]` or `&[&Tensor]` argument.
fn borrowed<T: Borrow<Tensor>>(tensors: &[T]) -> Vec<&Tensor> {
    tensors.iter().map(Borrow::borrow).collect()
}
