//! Matrix products — [`matmul`](Tensor::matmul) with PyTorch's rank rules and
//! batch broadcasting, [`bmm`](Tensor::bmm), [`outer`](Tensor::outer) — and
//! their gradients.
//!
//! Every product, forward and backward, is computed by the one function
//! [`sgemm`] (`C = alpha A B + beta C` over strided matrices). Operands reach it
//! without copies: a 1-D operand is promoted to a matrix and batch dimensions
//! are broadcast by changing the layout only (stride 0 where an operand is
//! repeated), and each batch matrix of any view is a strided matrix (its
//! offset, row stride and column stride), so a transposed or sliced operand is
//! passed with its own strides. `x.matmul(&w.t())` reads `w` where it lies.
//! Two batch layouts become a single product:
//! - when B is the same matrix for every batch (`[.., m, k] @ [k, n]`) and A's
//!   batch dimensions continue its rows in memory, the batch is folded into the
//!   rows of A and C;
//! - when C is one matrix summed over the batch (the gradient of an operand
//!   that was broadcast, e.g. the weight of `[b, t, k] @ [k, n]`), the batch is
//!   folded into the inner dimension, which sums it in the same pass.
//!
//! Otherwise there is one `sgemm` call per batch matrix; gradients of
//! broadcast operands accumulate into their matrix with `beta = 1` (the same
//! sum as `sum_to_shape` of the full gradient, without materialising it).
//! Gradients of operands whose last two dimensions are column-major (such as
//! `w.t()`) are written column-major, so the gradient of `w` itself comes out
//! contiguous.

use alloc::vec;

use super::{grad_if, saved};
use crate::autograd::needs_grad;
use crate::error::{Error, Result, unwrap};
use crate::kernels::gemm::{MatMut, MatRef};
use crate::tensor::layout::{Layout, Walker};
use crate::tensor::storage::Storage;
use crate::tensor::{Shape, Tensor};

/// C = alpha * A B + beta * C through the packed SIMD GEMM
/// ([`crate::kernels::gemm::sgemm`]); beta == 0 ignores C's prior contents.
/// Every product of this module goes through here.
pub(super) fn sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: MatMut) -> Result<()> {
    #[cfg(all(test, feature = "std"))]
    trace::record(&a, &b);
    crate::kernels::gemm::try_sgemm_fused(alpha, a, b, beta, c, Default::default())
}

/// Test-only record of the operands `sgemm` was called with, to check that
/// views reach it without copies.
#[cfg(all(test, feature = "std"))]
mod trace {
    extern crate std;
    use std::cell::RefCell;
    use std::vec::Vec;

    /// Start address, rows, cols, row stride, col stride of A and B.
    pub(super) type Call = [(usize, usize, usize, usize, usize); 2];

    std::thread_local! {
        static CALLS: RefCell<Option<Vec<Call>>> = const { RefCell::new(None) };
    }

    pub(super) fn record(a: &super::MatRef, b: &super::MatRef) {
        let d = |m: &super::MatRef| {
            (
                m.data.as_ptr() as usize,
                m.rows,
                m.cols,
                m.row_stride,
                m.col_stride,
            )
        };
        CALLS.with(|c| {
            if let Some(v) = c.borrow_mut().as_mut() {
                v.push([d(a), d(b)]);
            }
        });
    }

    /// Runs `f`, returning the sgemm calls it made on this thread.
    pub(super) fn calls(f: impl FnOnce()) -> Vec<Call> {
        CALLS.with(|c| *c.borrow_mut() = Some(Vec::new()));
        f();
        CALLS.with(|c| c.borrow_mut().take().unwrap_or_default())
    }
}

// ------------------------------------------------------------ batched driver

/// An operand of a batched product: its storage and a layout of rank
/// `batch + 2` spanning the full batch shape (stride 0 where repeated).
struct Operand<'a> {
    data: &'a [f32],
    layout: Layout,
}

impl<'a> Operand<'a> {
    fn new(t: &'a Tensor, layout: Layout) -> Self {
        Operand {
            data: t.storage.as_slice(),
            layout,
        }
    }

    fn rows(&self) -> usize {
        self.layout.dims()[self.layout.rank() - 2]
    }

    fn cols(&self) -> usize {
        self.layout.dims()[self.layout.rank() - 1]
    }

    /// The matrix starting at storage offset `at` (its batch position).
    fn mat(&self, at: usize) -> MatRef<'a> {
        let (r, s) = (self.layout.rank(), self.layout.strides());
        MatRef {
            data: tail(self.data, at),
            rows: self.rows(),
            cols: self.cols(),
            row_stride: s[r - 2],
            col_stride: s[r - 1],
        }
    }
}

/// C's matrix starting at `at`.
fn mat_mut(
    c: &mut [f32],
    at: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> MatMut<'_> {
    MatMut {
        data: &mut c[at..],
        rows,
        cols,
        row_stride,
        col_stride,
    }
}

/// `data[at..]`, or an empty slice when `at` is past the end (empty views).
fn tail(data: &[f32], at: usize) -> &[f32] {
    &data[at.min(data.len())..]
}

/// The layout's first `nb` (batch) dimensions as a layout of their own.
fn batch_layout(l: &Layout, nb: usize) -> Layout {
    let shape = Shape::new(&l.dims()[..nb]).expect("a prefix of a valid shape");
    Layout::from_parts(shape, &l.strides()[..nb], l.offset())
}

/// Whether every batch dimension that is not of size 1 has stride 0 (the
/// operand is the same matrix for every batch).
fn batch_repeats(l: &Layout, nb: usize) -> bool {
    (0..nb).all(|i| l.dims()[i] == 1 || l.strides()[i] == 0)
}

/// The stride of the batch dimensions and dimension `d` taken together as one
/// dimension (batch outermost), when the strides allow it: each dimension's
/// stride is the next inner one's size times its stride (size-1 dimensions do
/// not count).
fn fold(l: &Layout, nb: usize, d: usize) -> Option<usize> {
    let (dims, st) = (l.dims(), l.strides());
    let mut inner: Option<(usize, usize)> = None; // (stride, span = size * stride)
    for i in core::iter::once(d).chain((0..nb).rev()) {
        if dims[i] == 1 {
            continue;
        }
        inner = match inner {
            None => Some((st[i], st[i] * dims[i])),
            Some((base, span)) if st[i] == span => Some((base, span * dims[i])),
            Some(_) => return None,
        };
    }
    Some(inner.map_or(0, |(base, _)| base))
}

/// `C = A B` for every batch matrix. `a` is `batch + [m, k]`, `b` is
/// `batch + [k, n]`, and `lc` (`batch + [m, n]`) lays C out in `c`, a fresh
/// buffer holding exactly C's elements. Where `lc` has stride 0 along a batch
/// dimension, C is the sum of the products over it.
fn batched(a: &Operand, b: &Operand, c: &mut [f32], lc: &Layout) -> Result<()> {
    let r = lc.rank();
    let nb = r - 2;
    let (m, n, k) = (a.rows(), b.cols(), a.cols());
    let batch = &lc.dims()[..nb];
    let count: usize = batch.iter().product();
    let sc = lc.strides();
    if m == 0 || n == 0 {
        return Ok(());
    }
    if count == 0 {
        c.fill(0.0); // a sum over an empty batch
        return Ok(());
    }
    let ccs = sc[r - 1];
    let reduced = (0..nb).any(|i| batch[i] != 1 && sc[i] == 0);
    if count > 1 && !reduced && batch_repeats(&b.layout, nb) {
        // [.., m, k] @ [k, n]: the batch continues the rows of A and C.
        if let (Some(ars), Some(crs)) = (fold(&a.layout, nb, r - 2), fold(lc, nb, r - 2)) {
            let mut am = a.mat(a.layout.offset());
            am.rows = count * m;
            am.row_stride = ars;
            let bm = b.mat(b.layout.offset());
            sgemm(
                1.0,
                am,
                bm,
                0.0,
                mat_mut(c, lc.offset(), count * m, n, crs, ccs),
            )?;
            return Ok(());
        }
    }
    if count > 1 && batch_repeats(lc, nb) {
        // One C for the whole batch: the batch continues the inner dimension.
        if let (Some(acs), Some(brs)) = (fold(&a.layout, nb, r - 1), fold(&b.layout, nb, r - 2)) {
            let mut am = a.mat(a.layout.offset());
            am.cols = count * k;
            am.col_stride = acs;
            let mut bm = b.mat(b.layout.offset());
            bm.rows = count * k;
            bm.row_stride = brs;
            sgemm(
                1.0,
                am,
                bm,
                0.0,
                mat_mut(c, lc.offset(), m, n, sc[r - 2], ccs),
            )?;
            return Ok(());
        }
    }
    let beta = if reduced {
        c.fill(0.0);
        1.0
    } else {
        0.0
    };
    let (ba, bb, bc) = (
        batch_layout(&a.layout, nb),
        batch_layout(&b.layout, nb),
        batch_layout(lc, nb),
    );
    for run in Walker::new([&ba, &bb, &bc]) {
        for t in 0..run.len {
            let at = |q: usize| run.offsets[q] + t * run.strides[q];
            sgemm(
                1.0,
                a.mat(at(0)),
                b.mat(at(1)),
                beta,
                mat_mut(c, at(2), m, n, sc[r - 2], ccs),
            )?;
        }
    }
    Ok(())
}

/// Whether a matrix layout (last two dimensions) is column-major, so a
/// gradient written the same way comes out contiguous after the transposes
/// that made it.
fn column_major(l: &Layout) -> bool {
    let r = l.rank();
    r >= 2 && {
        let (d, s) = (l.dims(), l.strides());
        d[r - 2] > 1 && d[r - 1] > 1 && s[r - 2] == 1 && s[r - 1] != 1
    }
}

/// `a @ b` over the batch into a new tensor of shape `c_shape` (the full
/// `batch + [m, n]`, or a shape broadcast to it, which sums the products over
/// the broadcast dimensions). Column-major in its last two dimensions if
/// `col_major`, else contiguous.
fn product(a: &Operand, b: &Operand, c_shape: &Shape, col_major: bool) -> Result<Tensor> {
    let r = a.layout.rank();
    let mut full = a.layout.shape().clone();
    full.set_dim("matmul", r - 1, b.cols())?;
    let cr = c_shape.rank();
    let own = if col_major {
        let mut s = c_shape.clone();
        s.swap(cr - 2, cr - 1);
        Layout::contiguous(s).transpose(cr - 2, cr - 1)
    } else {
        Layout::contiguous(c_shape.clone())
    };
    let lc = own.broadcast_to("matmul", &full)?;
    // A fresh buffer of C's size, written through `lc` (and so laid out as `own`).
    let mut buf = Storage::try_for_overwrite(own.shape().numel())?;
    batched(a, b, buf.unique_mut(), &lc)?;
    Ok(Tensor::from_parts(buf, own))
}

// ------------------------------------------------------------------ plans

/// How two tensors multiply: promoted and broadcast layouts, and shapes.
#[derive(Clone)]
struct Plan {
    /// A as `batch + [m, k]` (1-D promoted, batch broadcast).
    la: Layout,
    /// B as `batch + [k, n]`.
    lb: Layout,
    /// A promoted to a matrix, before broadcasting (its gradient's shape
    /// before the promotion is undone).
    a_mat: Shape,
    /// B promoted to a matrix.
    b_mat: Shape,
    /// `batch + [m, n]`.
    full: Shape,
    /// The result's shape: `full` without the promoted dimensions.
    out: Shape,
    /// Whether the result drops `m` (A was 1-D) and `n` (B was 1-D).
    drop_m: bool,
    drop_n: bool,
}

fn mismatch(op: &'static str, a: &Tensor, b: &Tensor, detail: &'static str) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: a.shape().into(),
        rhs: b.shape().into(),
        detail,
    }
}

/// PyTorch's `matmul` rules: a 1-D A is a row `[1, k]` and a 1-D B a column
/// `[k, 1]` (the added dimension is removed from the result), leading
/// dimensions are batch dimensions and broadcast.
fn plan(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Plan> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(mismatch(
            op,
            a,
            b,
            "both arguments need at least one dimension",
        ));
    }
    let (drop_m, drop_n) = (a.rank() == 1, b.rank() == 1);
    let la = if drop_m {
        a.layout.unsqueeze(op, 0)?
    } else {
        a.layout.clone()
    };
    let lb = if drop_n {
        b.layout.unsqueeze(op, 1)?
    } else {
        b.layout.clone()
    };
    let (ra, rb) = (la.rank(), lb.rank());
    let (m, k) = (la.dims()[ra - 2], la.dims()[ra - 1]);
    let (k2, n) = (lb.dims()[rb - 2], lb.dims()[rb - 1]);
    if k != k2 {
        return Err(mismatch(
            op,
            a,
            b,
            "inner dimensions must agree: the first's last dimension and the second's \
             second-to-last (or only) dimension",
        ));
    }
    let (abatch, bbatch) = (&la.dims()[..ra - 2], &lb.dims()[..rb - 2]);
    let nb = abatch.len().max(bbatch.len());
    let mut full = Shape::scalar();
    for i in 0..nb {
        let da = (i + abatch.len() >= nb).then(|| abatch[i + abatch.len() - nb]);
        let db = (i + bbatch.len() >= nb).then(|| bbatch[i + bbatch.len() - nb]);
        let d = match (da.unwrap_or(1), db.unwrap_or(1)) {
            (x, y) if x == y || y == 1 => x,
            (1, y) => y,
            _ => {
                return Err(mismatch(
                    op,
                    a,
                    b,
                    "the batch dimensions cannot be broadcast together",
                ));
            }
        };
        full.push(d)?;
    }
    let (mut fa, mut fb) = (full.clone(), full.clone());
    fa.push(m)?;
    fa.push(k)?;
    fb.push(k)?;
    fb.push(n)?;
    full.push(m)?;
    full.push(n)?;
    let mut out = full.clone();
    if drop_n {
        out.remove(nb + 1);
    }
    if drop_m {
        out.remove(nb);
    }
    Ok(Plan {
        a_mat: la.shape().clone(),
        b_mat: lb.shape().clone(),
        la: la.broadcast_to(op, &fa)?,
        lb: lb.broadcast_to(op, &fb)?,
        full,
        out,
        drop_m,
        drop_n,
    })
}

/// A gradient computed for an operand's promoted matrix, in the operand's own
/// shape.
fn undo_promotion(g: Tensor, shape: &Shape) -> Result<Tensor> {
    if g.dims() == shape.dims() {
        Ok(g)
    } else {
        g.try_reshape(shape)
    }
}

/// Runs a planned product and records its gradient as `name`. Each operand
/// is saved only if the other one's gradient is wanted (dA reads B, dB reads
/// A).
fn run(name: &'static str, p: Plan, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let c = product(
        &Operand::new(a, p.la.clone()),
        &Operand::new(b, p.lb.clone()),
        &p.full,
        false,
    )?;
    let out = Tensor::from_parts(c.storage, Layout::contiguous(p.out.clone()));
    if !needs_grad(&[a, b]) {
        return Ok(out);
    }
    let (la_own, lb_own) = (a.layout.clone(), b.layout.clone());
    let sa = b.requires_grad().then(|| a.detach());
    let sb = a.requires_grad().then(|| b.detach());
    Ok(out.record(name, &[a, b], move |g, need| {
        let nb = p.full.rank() - 2;
        // The gradient as `batch + [m, n]`, the promoted dimensions put back.
        let mut lg = g.layout.clone();
        if p.drop_m {
            lg = lg.unsqueeze(name, nb)?;
        }
        if p.drop_n {
            lg = lg.unsqueeze(name, nb + 1)?;
        }
        let go = Operand::new(g, lg);
        Ok(vec![
            // dA = g B^T, summed over A's broadcast batch dimensions.
            grad_if(need[0], || {
                let bt = Operand::new(saved(&sb)?, p.lb.transpose(nb, nb + 1));
                let col = !p.drop_m && column_major(&la_own);
                undo_promotion(product(&go, &bt, &p.a_mat, col)?, la_own.shape())
            })?,
            // dB = A^T g, summed over B's broadcast batch dimensions.
            grad_if(need[1], || {
                let at = Operand::new(saved(&sa)?, p.la.transpose(nb, nb + 1));
                let col = !p.drop_n && column_major(&lb_own);
                undo_promotion(product(&at, &go, &p.b_mat, col)?, lb_own.shape())
            })?,
        ])
    }))
}

impl Tensor {
    /// Matrix product with PyTorch's rules (`torch.matmul`):
    /// - 1-D · 1-D: dot product, a 0-D tensor;
    /// - 2-D · 2-D: `[m, k] @ [k, n] -> [m, n]`;
    /// - 1-D · 2-D: `[k] @ [k, n] -> [n]` (the vector is a row, then dropped);
    /// - 2-D · 1-D: `[m, k] @ [k] -> [m]`;
    /// - N-D: the last two dimensions multiply as matrices and the leading
    ///   (batch) dimensions broadcast, e.g. `[j, 1, m, k] @ [l, k, n] ->
    ///   [j, l, m, n]`; a 1-D operand is promoted as above and the added
    ///   dimension removed from the result.
    ///
    /// Any views are accepted without copying: transposed, sliced and
    /// broadcast operands are read through their strides. An inner dimension
    /// of 0 gives zeros. The result is contiguous.
    ///
    /// # Panics
    /// If an operand is 0-D, the inner dimensions differ or the batch
    /// dimensions do not broadcast; see [`try_matmul`](Self::try_matmul).
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        unwrap(self.try_matmul(other))
    }

    /// [`matmul`](Self::matmul), or `ShapeMismatch` naming `matmul` and both
    /// shapes.
    pub fn try_matmul(&self, other: &Tensor) -> Result<Tensor> {
        let p = plan("matmul", self, other)?;
        let name = match (self.rank(), other.rank()) {
            (1, 1) => "DotBackward0",
            (2, 1) => "MvBackward0",
            (2, 2) => "MmBackward0",
            _ => "MatmulBackward0",
        };
        run(name, p, self, other)
    }

    /// Batched matrix product of two 3-D tensors with the same batch size:
    /// `[b, m, k] @ [b, k, n] -> [b, m, n]` (as `torch.bmm`, no broadcasting).
    ///
    /// # Panics
    /// If an operand is not 3-D or the batch or inner sizes differ; see
    /// [`try_bmm`](Self::try_bmm).
    #[track_caller]
    pub fn bmm(&self, other: &Tensor) -> Tensor {
        unwrap(self.try_bmm(other))
    }

    /// [`bmm`](Self::bmm), or `ShapeMismatch` naming `bmm` and both shapes.
    pub fn try_bmm(&self, other: &Tensor) -> Result<Tensor> {
        if self.rank() != 3 || other.rank() != 3 {
            return Err(mismatch("bmm", self, other, "both arguments must be 3-D"));
        }
        if self.dims()[0] != other.dims()[0] {
            return Err(mismatch(
                "bmm",
                self,
                other,
                "the batch sizes must be equal",
            ));
        }
        let p = plan("bmm", self, other)?;
        run("BmmBackward0", p, self, other)
    }

    /// Outer product of two vectors: `[n] x [m] -> [n, m]` with element
    /// `(i, j) = self[i] * other[j]` (as `torch.outer`).
    ///
    /// # Panics
    /// If an operand is not 1-D; see [`try_outer`](Self::try_outer).
    #[track_caller]
    pub fn outer(&self, other: &Tensor) -> Tensor {
        unwrap(self.try_outer(other))
    }

    /// [`outer`](Self::outer), or `ShapeMismatch` naming `outer` and both shapes.
    pub fn try_outer(&self, other: &Tensor) -> Result<Tensor> {
        if self.rank() != 1 || other.rank() != 1 {
            return Err(mismatch("outer", self, other, "both arguments must be 1-D"));
        }
        // [n, 1] @ [1, m]: nothing is dropped from the result.
        let la = self.layout.unsqueeze("outer", 1)?;
        let lb = other.layout.unsqueeze("outer", 0)?;
        let full = Shape::new(&[self.dims()[0], other.dims()[0]])?;
        let p = Plan {
            a_mat: la.shape().clone(),
            b_mat: lb.shape().clone(),
            la,
            lb,
            out: full.clone(),
            full,
            drop_m: false,
            drop_n: false,
        };
        run("OuterBackward0", p, self, other)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn addr(t: &Tensor) -> usize {
        t.storage.as_slice()[t.offset()..].as_ptr() as usize
    }

    #[test]
    fn transposed_weight_reaches_sgemm_in_place() {
        // The Linear case: x [4, 8] @ w.t() with w [16, 8].
        let x = Tensor::randn([4, 8], Some(1));
        let w = Tensor::randn([16, 8], Some(2));
        let calls = trace::calls(|| {
            x.matmul(&w.t());
        });
        assert_eq!(calls.len(), 1);
        let [a, b] = calls[0];
        assert_eq!(a, (addr(&x), 4, 8, 8, 1));
        assert_eq!(b, (addr(&w), 8, 16, 1, 8), "w is read with swapped strides");
    }

    #[test]
    fn broadcast_weight_folds_batch_into_rows_and_inner_dim() {
        let x = Tensor::randn([3, 5, 8], Some(3)).with_requires_grad();
        let w = Tensor::randn([16, 8], Some(4)).with_requires_grad();
        let mut y = None;
        let fwd = trace::calls(|| y = Some(x.matmul(&w.t())));
        assert_eq!(fwd.len(), 1, "one product for the whole batch");
        assert_eq!(fwd[0][0], (addr(&x), 15, 8, 8, 1));
        let y = y.unwrap();
        let bwd = trace::calls(|| y.sum().backward());
        // dx = g w (one folded product), dw^T = x^T g (one product, the batch
        // folded into the inner dimension).
        assert_eq!(bwd.len(), 2, "{bwd:?}");
        assert!(bwd.iter().any(|c| c[0].1 == 8 && c[0].2 == 15));
        let gw = w.grad().unwrap();
        assert!(gw.is_contiguous(), "the weight's gradient needs no copy");
    }

    #[test]
    fn batched_operands_use_strides_per_batch() {
        // A batch of transposed matrices and a broadcast batch dimension.
        let a = Tensor::randn([2, 3, 4, 5], Some(5)).transpose(-1, -2); // [2, 3, 5, 4]
        let b = Tensor::randn([3, 4, 6], Some(6)); // broadcast over the first dim
        let calls = trace::calls(|| {
            a.matmul(&b);
        });
        assert_eq!(calls.len(), 6);
        let starts: Vec<usize> = calls.iter().map(|c| c[1].0).collect();
        assert_eq!(starts[0], starts[3], "b is shared across the broadcast dim");
        assert!(calls.iter().all(|c| c[0].3 == 1 && c[0].4 == 5));
    }

    #[test]
    fn fold_rules() {
        let l = Layout::contiguous(Shape::new(&[2, 3, 4]).unwrap());
        assert_eq!(fold(&l, 1, 1), Some(4)); // rows continue across the batch
        assert_eq!(fold(&l, 1, 2), None); // columns do not
        let t = l.transpose(1, 2); // [2, 4, 3], strides [12, 1, 4]
        assert_eq!(fold(&t, 1, 2), Some(4));
        let one = Layout::contiguous(Shape::new(&[1, 1, 4]).unwrap());
        assert_eq!(fold(&one, 1, 1), Some(0));
    }
}
