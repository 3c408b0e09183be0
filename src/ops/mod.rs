//! Operations on tensors, one file per family, forward and backward side by
//! side: `unary` (math and activations), `binary` (arithmetic, comparison,
//! selection), `reduce`, `matmul`, `shape` (joining, indexing, reordering), `nn`
//! (softmax family and other fused network ops).
//!
//! This file is the engine they share. Every element-wise operation and
//! reduction walks its operands with the one strided walker
//! ([`crate::tensor::layout::Walker`]) and hands contiguous runs (`&[f32]`) to a
//! kernel; operands that are not unit-stride in a run are gathered into a small
//! stack buffer first. Kernels take slices of equal length, except that an
//! operand of length 1 stands for a broadcast scalar. No op touches raw
//! pointers.

pub(crate) mod binary;
pub(crate) mod linear;
pub(crate) mod matmul;
pub(crate) mod nn;
pub(crate) mod reduce;
pub(crate) mod shape;
pub(crate) mod unary;

pub(crate) use reduce::sum_to_shape;

use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::layout::{Layout, Walker, broadcast_shapes};

/// Elements gathered at a time from a strided run.
const CHUNK: usize = 256;

/// Portable element-wise loops used until (and alongside) the kernel table: a
/// length-1 operand is a broadcast scalar.
pub(crate) mod kern {
    /// `out[i] = f(a[i], b[i])`, where `a` or `b` may have length 1.
    #[inline]
    pub(crate) fn zip(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        match (a.len(), b.len()) {
            (n, m) if n == out.len() && m == out.len() => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            }
            (1, m) if m == out.len() => {
                let x = a[0];
                for (o, &y) in out.iter_mut().zip(b) {
                    *o = f(x, y);
                }
            }
            (n, 1) if n == out.len() => {
                let y = b[0];
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = f(x, y);
                }
            }
            (1, 1) => {
                let v = f(a[0], b[0]);
                out.fill(v);
            }
            (n, m) => panic!(
                "kern::zip: operand lengths {n} and {m} do not fit an output of {}",
                out.len()
            ),
        }
    }

    /// `acc[i] = f(acc[i], b[i])`, where `b` may have length 1.
    #[inline]
    pub(crate) fn zip_inplace(acc: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
        if b.len() == 1 {
            let y = b[0];
            for o in acc.iter_mut() {
                *o = f(*o, y);
            }
        } else {
            assert_eq!(acc.len(), b.len(), "kern::zip_inplace: lengths differ");
            for (o, &y) in acc.iter_mut().zip(b) {
                *o = f(*o, y);
            }
        }
    }

    /// `out[i] = f(x[i])`.
    #[inline]
    pub(crate) fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
        assert_eq!(x.len(), out.len(), "kern::map: lengths differ");
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
    }

    /// Pairwise (cascade) sum: error grows with log2(n), not n.
    pub(crate) fn sum(x: &[f32]) -> f32 {
        const BLOCK: usize = 64;
        if x.len() <= BLOCK {
            let mut acc = [0.0f32; 8];
            let mut chunks = x.chunks_exact(8);
            for c in &mut chunks {
                for (a, v) in acc.iter_mut().zip(c) {
                    *a += v;
                }
            }
            let mut s =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for v in chunks.remainder() {
                s += v;
            }
            s
        } else {
            let mid = (x.len() / 2).next_multiple_of(BLOCK).min(x.len());
            sum(&x[..mid]) + sum(&x[mid..])
        }
    }
}

/// A run of one operand: a slice to use directly (unit stride, or one
/// broadcast element), or a strided run that must be gathered.
enum Operand<'a> {
    Direct(&'a [f32]),
    Strided {
        data: &'a [f32],
        at: usize,
        stride: usize,
    },
}

#[inline]
fn operand(data: &[f32], at: usize, stride: usize, len: usize) -> Operand<'_> {
    match stride {
        1 => Operand::Direct(&data[at..at + len]),
        0 => Operand::Direct(&data[at..at + 1]),
        _ if len == 1 => Operand::Direct(&data[at..at + 1]),
        s => Operand::Strided {
            data,
            at,
            stride: s,
        },
    }
}

impl Operand<'_> {
    /// Elements `start..start + n` of the run, gathered into `buf` if strided.
    #[inline]
    fn piece<'b>(&'b self, start: usize, n: usize, buf: &'b mut [f32; CHUNK]) -> &'b [f32] {
        match *self {
            Operand::Direct(s) if s.len() == 1 => s,
            Operand::Direct(s) => &s[start..start + n],
            Operand::Strided { data, at, stride } => {
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = data[at + (start + i) * stride];
                }
                &buf[..n]
            }
        }
    }
}

/// Writes `k(x)` for any view `x` into `out` (contiguous, `x.numel()` long).
/// Large outputs are split between threads ([`split_walk`]).
pub(crate) fn unary_into(x: &Tensor, out: &mut [f32], k: &(impl Fn(&[f32], &mut [f32]) + Sync)) {
    if let Some(src) = x.as_slice() {
        crate::kernels::parallel::map(src, out, k);
        return;
    }
    if let Some(d) = dense_if_transposed(x) {
        return unary_into(&d, out, k);
    }
    let src = x.storage.as_slice();
    split_walk(Walker::new([&x.layout]), out, |runs, dst, skip| {
        let mut pos = 0;
        let mut buf = [0.0f32; CHUNK];
        for run in runs {
            let n = (run.len - skip).min(dst.len() - pos);
            let d = &mut dst[pos..pos + n];
            match operand(src, run.offsets[0], run.strides[0], run.len) {
                Operand::Direct(s) if s.len() == 1 && run.len > 1 => {
                    k(s, &mut d[..1]);
                    let v = d[0];
                    d[1..].fill(v);
                }
                op => {
                    let mut start = 0;
                    while start < n {
                        let c = CHUNK.min(n - start);
                        k(
                            op.piece(skip + start, c, &mut buf),
                            &mut d[start..start + c],
                        );
                        start += c;
                    }
                }
            }
            pos += n;
        }
    });
}

/// Elements at which a transposed operand is copied first (see
/// [`dense_if_transposed`]).
const TRANSPOSED_COPY_MIN: usize = 1 << 12;

/// A contiguous copy of `x` if it is a large transposed view, which the
/// tiled transpose copies many times faster than the walk reads it at its
/// row stride (about 3x the cost of a contiguous op instead of 20x at a
/// million elements); `None` otherwise, or if memory for the copy runs out
/// (the walk then reads `x` in place).
fn dense_if_transposed(x: &Tensor) -> Option<Tensor> {
    (x.numel() >= TRANSPOSED_COPY_MIN && x.is_transposed_block())
        .then(|| x.try_materialize().ok())
        .flatten()
}

/// Runs a walk that writes `out` (contiguous, one element per element walked)
/// on the worker pool: `f(runs, part, skip)` writes `part` from the runs of
/// `runs`, leaving out the first `skip` elements of the first run (the part
/// may also end inside its last run; `skip` is non-zero only when the walk is
/// one run). Many runs are split at run boundaries (`skip` 0);
/// one long run is cut at multiples of [`CHUNK`], the size at which the
/// walk's kernels are called anyway. Either way every kernel call sees the
/// elements it would see on one thread, so results do not depend on the
/// thread count.
fn split_walk<const N: usize>(
    walker: Walker<N>,
    out: &mut [f32],
    f: impl Fn(Walker<N>, &mut [f32], usize) + Sync,
) {
    let (runs, run_len) = (walker.len(), walker.run_len());
    if runs == 1 {
        return crate::kernels::parallel::blocks(out, CHUNK, |b, part| {
            f(walker.clone(), part, b.start * CHUNK)
        });
    }
    crate::kernels::parallel::blocks(out, run_len.max(1), |b, part| {
        f(walker.clone().runs_from(b.start, b.len()), part, 0)
    });
}

/// A new contiguous tensor `k(x)` of `x`'s shape.
#[inline]
pub(crate) fn map_unary(x: &Tensor, k: impl Fn(&[f32], &mut [f32]) + Sync) -> Result<Tensor> {
    Tensor::try_from_fill(x.shape().clone(), |out| unary_into(x, out, &k))
}

/// A new contiguous tensor `k(a, b)` of the broadcast shape of `a` and `b`
/// (`ShapeMismatch` naming `op` when they do not broadcast).
#[inline]
pub(crate) fn map_binary(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    k: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Result<Tensor> {
    if a.dims() == b.dims()
        && let (Some(x), Some(y)) = (a.as_slice(), b.as_slice())
    {
        return Tensor::try_from_fill(a.shape().clone(), |out| {
            crate::kernels::parallel::zip(x, y, out, &k)
        });
    }
    // One operand a single element: a broadcast scalar over a contiguous other.
    if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice())
        && (x.len() == 1 || y.len() == 1)
        && broadcast_shapes(op, a.shape(), b.shape()).is_ok_and(|s| {
            s.numel() == x.len().max(y.len()) && (s.dims() == a.dims() || s.dims() == b.dims())
        })
    {
        let shape = broadcast_shapes(op, a.shape(), b.shape())?;
        return Tensor::try_from_fill(shape, |out| crate::kernels::parallel::zip(x, y, out, &k));
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    match (dense_if_transposed(a), dense_if_transposed(b)) {
        (None, None) => {}
        (da, db) => {
            return map_binary(op, da.as_ref().unwrap_or(a), db.as_ref().unwrap_or(b), k);
        }
    }
    let la = a.layout.broadcast_to(op, &shape)?;
    let lb = b.layout.broadcast_to(op, &shape)?;
    Tensor::try_from_fill(shape, |out| {
        binary_into(
            &la,
            a.storage.as_slice(),
            &lb,
            b.storage.as_slice(),
            out,
            &k,
        )
    })
}

/// Writes `k(a, b)` for two same-shaped layouts into `out` (contiguous);
/// large outputs are split between threads ([`split_walk`]).
fn binary_into(
    la: &Layout,
    sa: &[f32],
    lb: &Layout,
    sb: &[f32],
    out: &mut [f32],
    k: &(impl Fn(&[f32], &[f32], &mut [f32]) + Sync),
) {
    split_walk(Walker::new([la, lb]), out, |runs, dst, skip| {
        let mut pos = 0;
        let (mut ba, mut bb) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
        for run in runs {
            let n = (run.len - skip).min(dst.len() - pos);
            let d = &mut dst[pos..pos + n];
            let x = operand(sa, run.offsets[0], run.strides[0], run.len);
            let y = operand(sb, run.offsets[1], run.strides[1], run.len);
            match (&x, &y) {
                (Operand::Direct(p), Operand::Direct(q))
                    if p.len() == 1 && q.len() == 1 && run.len > 1 =>
                {
                    k(p, q, &mut d[..1]);
                    let v = d[0];
                    d[1..].fill(v);
                }
                (Operand::Direct(p), Operand::Direct(q)) => {
                    let p = if p.len() == 1 { p } else { &p[skip..skip + n] };
                    let q = if q.len() == 1 { q } else { &q[skip..skip + n] };
                    k(p, q, d)
                }
                _ => {
                    let mut start = 0;
                    while start < n {
                        let c = CHUNK.min(n - start);
                        k(
                            x.piece(skip + start, c, &mut ba),
                            y.piece(skip + start, c, &mut bb),
                            &mut d[start..start + c],
                        );
                        start += c;
                    }
                }
            }
            pos += n;
        }
    });
}

/// `acc = k(acc, b)` in place, `b` broadcast to `acc`'s shape; copies `acc` on
/// write if its storage is shared. Not recorded for autograd.
pub(crate) fn binary_inplace(
    op: &'static str,
    acc: &mut Tensor,
    b: &Tensor,
    k: impl Fn(&mut [f32], &[f32]) + Sync,
) -> Result<()> {
    let lb = b.layout.broadcast_to(op, acc.shape())?;
    // `b` holds a handle, so if it shares `acc`'s storage the write copies first.
    acc.try_make_writable(true)?;
    if let Some(r) = acc.layout.contiguous_range()
        && let Some(rhs) = b.as_slice()
        && (rhs.len() == r.len() && b.dims() == acc.dims() || rhs.len() == 1)
    {
        let dst = &mut acc.storage.get_mut().expect("made writable above")[r];
        crate::kernels::parallel::zip_inplace(dst, rhs, &k);
        return Ok(());
    }
    let la = acc.layout.clone();
    let sb = b.storage.as_slice();
    if let Some(r) = la.contiguous_range() {
        // `acc` is one block of its storage in logical order: the walk's
        // output positions are consecutive, so it splits like an
        // out-of-place op ([`split_walk`]).
        let dst = &mut acc.storage.get_mut().expect("made writable above")[r];
        split_walk(Walker::new([&la, &lb]), dst, |runs, d, skip| {
            let (mut pos, mut bb) = (0, [0.0f32; CHUNK]);
            for run in runs {
                let n = (run.len - skip).min(d.len() - pos);
                let y = operand(sb, run.offsets[1], run.strides[1], run.len);
                let mut start = 0;
                while start < n {
                    let c = CHUNK.min(n - start);
                    k(
                        &mut d[pos + start..pos + start + c],
                        y.piece(skip + start, c, &mut bb),
                    );
                    start += c;
                }
                pos += n;
            }
        });
        return Ok(());
    }
    let dst = acc.storage.get_mut().expect("made writable above");
    let (mut ba, mut bb) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
    for run in Walker::new([&la, &lb]) {
        let y = operand(sb, run.offsets[1], run.strides[1], run.len);
        let (o, s) = (run.offsets[0], run.strides[0]);
        let mut start = 0;
        while start < run.len {
            let n = CHUNK.min(run.len - start);
            let rhs = y.piece(start, n, &mut bb);
            if s == 1 {
                k(&mut dst[o + start..o + start + n], rhs);
            } else {
                for i in 0..n {
                    ba[i] = dst[o + (start + i) * s];
                }
                k(&mut ba[..n], rhs);
                for i in 0..n {
                    dst[o + (start + i) * s] = ba[i];
                }
            }
            start += n;
        }
    }
    Ok(())
}

/// `Option<Result<T>>` → `Result<Option<T>>` for backward closures: computes a
/// gradient only where `need` is set.
#[inline]
pub(crate) fn grad_if(need: bool, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
    if need { f().map(Some) } else { Ok(None) }
}

/// A tensor an op saved for a gradient it was told would be wanted; an
/// internal error if the backward pass asks for another one.
pub(crate) fn saved(t: &Option<Tensor>) -> Result<&Tensor> {
    t.as_ref().ok_or(crate::error::Error::InvalidArgument {
        op: "backward",
        detail: "internal error: a gradient was asked for that the op did not save inputs for",
    })
}
