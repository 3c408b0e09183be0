//! Shape-only models of the operations convolutions, batch norm and average
//! pooling are built from: padding, strided windows and their copies,
//! broadcasting element-wise arithmetic, per-channel reductions and the
//! grouped matrix product of im2col. Each allocates, saves and releases
//! what the tensor operation of the same name does (`ops/`, `tensor/view.rs`);
//! `tests/memory_plan.rs` checks the composed layers against the pool.

use alloc::vec;
use alloc::vec::Vec;

use super::ops::plan_error;
use super::{PlanTensor, Planner, Saves};
use crate::error::Result;
use crate::tensor::Shape;
use crate::tensor::layout::broadcast_shapes;

/// A broadcasting element-wise operation between two tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`: saves nothing.
    Add,
    /// `a - b`: saves nothing; `db` negates the gradient first.
    Sub,
    /// `a * b`: saves each operand only if the other's gradient is wanted.
    Mul,
    /// `a / b`: saves `b`, and the quotient if `b`'s gradient is wanted.
    Div,
}

/// The geometry of a convolution over `D = stride.len()` spatial
/// dimensions, as [`crate::nn::ConvOptions`] holds it.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeometry<'a> {
    /// Step between output positions, per dimension.
    pub stride: &'a [usize],
    /// Zeros added on both sides, per dimension.
    pub padding: &'a [usize],
    /// Step between kernel taps, per dimension.
    pub dilation: &'a [usize],
    /// Channel groups.
    pub groups: usize,
}

/// Row-major strides of `dims`.
fn strides_of(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Whether a view of `size` with `strides` (offset 0) is row-major
/// contiguous (dimensions of size 1 do not count).
fn is_contiguous(size: &[usize], strides: &[usize]) -> bool {
    let mut want = 1;
    for (&n, &s) in size.iter().zip(strides).rev() {
        if n != 1 {
            if s != want {
                return false;
            }
            want *= n;
        }
    }
    true
}

impl Planner {
    /// `x.pad(..)` to `out_dims`: a new buffer; the gradient is one buffer of
    /// `x`'s shape.
    pub fn pad(&mut self, x: &PlanTensor, out_dims: &[usize]) -> Result<PlanTensor> {
        let out = self.alloc(out_dims)?;
        let dims: Vec<usize> = x.dims().to_vec();
        Ok(
            self.record(out, &[x], Vec::new(), move |p, _g, _need, _saved| {
                Ok(vec![Some(p.alloc(&dims)?)])
            }),
        )
    }

    /// `x.as_strided(dims, ..)` over a contiguous `x`: a view; its gradient
    /// scatters into a zeroed buffer of `x`'s extent and copies it out (two
    /// buffers of `x`'s size at once, the first freed on return).
    pub fn strided_view(&mut self, x: &PlanTensor, dims: &[usize]) -> Result<PlanTensor> {
        let mut out = self.view(x, dims)?;
        out.node = None;
        let in_dims: Vec<usize> = x.dims().to_vec();
        let span = x.numel();
        Ok(
            self.record(out, &[x], Vec::new(), move |p, _g, _need, _saved| {
                let scattered = p.alloc(&[span])?;
                let grad = p.alloc(&in_dims)?;
                p.release(scattered);
                Ok(vec![Some(grad)])
            }),
        )
    }

    /// `x.contiguous()`: `x` itself when already contiguous, else a copy
    /// whose gradient passes through unchanged.
    pub fn contiguous(&mut self, x: &PlanTensor, already: bool) -> PlanTensor {
        if already {
            return self.retain(x);
        }
        let out = self
            .alloc(x.dims())
            .expect("the shape of an existing tensor is valid");
        self.record(out, &[x], Vec::new(), move |p, g, _need, _saved| {
            Ok(vec![Some(p.retain(g))])
        })
    }

    /// `x.add_scalar(s)` and the other scalar forms whose derivative is 1:
    /// a new buffer; the gradient passes through.
    pub fn scalar_shift(&mut self, x: &PlanTensor) -> Result<PlanTensor> {
        let out = self.alloc(x.dims())?;
        Ok(
            self.record(out, &[x], Vec::new(), move |p, g, _need, _saved| {
                Ok(vec![Some(p.retain(g))])
            }),
        )
    }

    /// `sum_to_shape(g, dims)` in a backward pass: `g` itself when the shapes
    /// agree, else the keepdim sum and its compensation buffer, viewed as
    /// `dims`.
    fn sum_to(&mut self, g: &PlanTensor, dims: &[usize]) -> Result<PlanTensor> {
        if g.dims() == dims {
            return Ok(self.retain(g));
        }
        let (gr, r) = (g.dims().len(), dims.len());
        let keep: Vec<usize> = (0..gr)
            .map(|i| {
                if i < gr - r || (dims[i - (gr - r)] == 1 && g.dims()[i] != 1) {
                    1
                } else {
                    g.dims()[i]
                }
            })
            .collect();
        let sum = self.alloc(&keep)?;
        self.work(sum.numel());
        let out = self.view(&sum, dims)?;
        self.release(sum);
        Ok(out)
    }

    /// `a op b` with broadcasting: a new buffer of the broadcast shape, what
    /// [`Binary`] says is saved, and per wanted gradient the element-wise
    /// product or quotient (a buffer of the broadcast shape) summed down to
    /// the operand's shape.
    pub fn binary(&mut self, a: &PlanTensor, b: &PlanTensor, op: Binary) -> Result<PlanTensor> {
        let dims = broadcast_shapes("plan", &Shape::new(a.dims())?, &Shape::new(b.dims())?)?;
        let out = self.alloc(dims.dims())?;
        let (sa, sb): (Vec<usize>, Vec<usize>) = (a.dims().to_vec(), b.dims().to_vec());
        // Saved handles, in a fixed order the backward reads by kind.
        let mut saved = Vec::new();
        match op {
            Binary::Add | Binary::Sub => {}
            Binary::Mul => {
                if b.requires_grad() {
                    saved.push(self.retain(a));
                }
                if a.requires_grad() {
                    saved.push(self.retain(b));
                }
            }
            Binary::Div => {
                saved.push(self.retain(b));
                if b.requires_grad() {
                    saved.push(self.retain(&out));
                }
            }
        }
        Ok(self.record(out, &[a, b], saved, move |p, g, need, _saved| {
            let full: Vec<usize> = g.dims().to_vec();
            let mut grads = Vec::with_capacity(2);
            for (i, shape) in [&sa, &sb].into_iter().enumerate() {
                if !need[i] {
                    grads.push(None);
                    continue;
                }
                // The element-wise factor applied to `g` before the sum:
                // how many full-size buffers it takes in a chain.
                let chain = match (op, i) {
                    (Binary::Add, _) | (Binary::Sub, 0) => 0,
                    (Binary::Sub, _) | (Binary::Mul, _) | (Binary::Div, 0) => 1,
                    (Binary::Div, _) => 3, // g * q, / b, neg
                };
                let grad = if chain == 0 {
                    p.sum_to(g, shape)?
                } else {
                    let mut t = p.alloc(&full)?;
                    for _ in 1..chain {
                        let next = p.alloc(&full)?;
                        p.release(t);
                        t = next;
                    }
                    let s = p.sum_to(&t, shape)?;
                    p.release(t);
                    s
                };
                grads.push(Some(grad));
            }
            Ok(grads)
        }))
    }

    /// The keepdim shape of a reduction of `x` over the dimensions in `dims`.
    fn kept(x: &PlanTensor, dims: &[usize]) -> Vec<usize> {
        x.dims()
            .iter()
            .enumerate()
            .map(|(i, &n)| if dims.contains(&i) { 1 } else { n })
            .collect()
    }

    /// `x.sum_dims(dims, keepdim)` (`scale == false`) or `mean_dims`
    /// (`scale == true`): the result and its compensation buffer; the
    /// gradient is a broadcast view, of `g` for a sum and of a scaled copy
    /// for a mean.
    pub fn reduce(
        &mut self,
        x: &PlanTensor,
        dims: &[usize],
        keepdim: bool,
        scale: bool,
    ) -> Result<PlanTensor> {
        let keep = Planner::kept(x, dims);
        let sum = self.alloc(&keep)?;
        self.work(sum.numel());
        let out = if keepdim {
            sum
        } else {
            let d: Vec<usize> = x
                .dims()
                .iter()
                .enumerate()
                .filter(|(i, _)| !dims.contains(i))
                .map(|(_, &n)| n)
                .collect();
            let v = self.view(&sum, &d)?;
            self.release(sum);
            v
        };
        let in_dims: Vec<usize> = x.dims().to_vec();
        Ok(
            self.record(out, &[x], Vec::new(), move |p, g, _need, _saved| {
                let src = if scale { p.alloc(&keep)? } else { p.retain(g) };
                let v = p.view(&src, &in_dims)?;
                p.release(src);
                Ok(vec![Some(v)])
            }),
        )
    }

    /// `x.var_dims(dims, correction, true)`: the result, with `x`, the result
    /// and the refined mean saved; the gradient is one buffer of `x`'s shape.
    pub fn var(&mut self, x: &PlanTensor, dims: &[usize]) -> Result<PlanTensor> {
        let keep = Planner::kept(x, dims);
        let groups: usize = keep.iter().product();
        // The fold states of the two passes (a few floats per group).
        self.work(groups * 16);
        let out = self.alloc(&keep)?;
        let saved = if x.requires_grad() {
            vec![self.retain(x), self.retain(&out), self.alloc(&keep)?]
        } else {
            Vec::new()
        };
        let in_dims: Vec<usize> = x.dims().to_vec();
        Ok(self.record(out, &[x], saved, move |p, _g, _need, _saved| {
            Ok(vec![Some(p.alloc(&in_dims)?)])
        }))
    }

    /// The im2col product of a convolution: `a [groups, m, k]` (the weight)
    /// times `b [n, groups, k, p]` (the column matrix) into `[n, groups, m,
    /// p]`, one GEMM per batch matrix; each operand saved only for the
    /// other's gradient. Backward: `da` (summed over `n`) and `db`, each one
    /// buffer and one GEMM per batch matrix.
    pub fn grouped_matmul(&mut self, a: &PlanTensor, b: &PlanTensor) -> Result<PlanTensor> {
        let (&[g, m, k], &[n, g2, k2, pos]) = (a.dims(), b.dims()) else {
            return Err(plan_error(
                "grouped_matmul: expects [g, m, k] and [n, g, k, p]",
            ));
        };
        if g != g2 || k != k2 {
            return Err(plan_error(
                "grouped_matmul: the groups or inner sizes differ",
            ));
        }
        let out = self.alloc(&[n, g, m, pos])?;
        let calls = n * g > 0 && m > 0 && pos > 0;
        if calls {
            self.gemm((m, k, k, 1), (k, pos, pos, 1), (m, pos, pos, 1));
        }
        let mut saved = Vec::new();
        if b.requires_grad() {
            saved.push(self.retain(a));
        }
        if a.requires_grad() {
            saved.push(self.retain(b));
        }
        Ok(
            self.record(out, &[a, b], saved, move |p, _g, need, _saved| {
                let da = if need[0] {
                    let t = p.alloc(&[g, m, k])?;
                    if calls {
                        p.gemm((m, pos, pos, 1), (pos, k, 1, pos), (m, k, k, 1));
                    }
                    Some(t)
                } else {
                    None
                };
                let db = if need[1] {
                    let t = p.alloc(&[n, g, k, pos])?;
                    if calls {
                        p.gemm((k, m, 1, k), (m, pos, pos, 1), (k, pos, pos, 1));
                    }
                    Some(t)
                } else {
                    None
                };
                Ok(vec![da, db])
            }),
        )
    }

    /// A convolution as [`Conv1d`](crate::nn::Conv1d) and
    /// [`Conv2d`](crate::nn::Conv2d) run it (im2col, see `nn/conv.rs`):
    /// padding, the window view, its contiguous copy, the grouped product
    /// with the weight and the broadcast bias. `x` is `[N, C, in..]`, `w`
    /// `[O, C / groups, k..]`, `b` `[O]`.
    pub fn conv(
        &mut self,
        x: &PlanTensor,
        w: &PlanTensor,
        b: Option<&PlanTensor>,
        geo: ConvGeometry<'_>,
    ) -> Result<PlanTensor> {
        let d = geo.stride.len();
        let bad = || plan_error("conv: the input, kernel and options do not fit");
        if x.dims().len() != d + 2 || w.dims().len() != d + 2 || geo.groups == 0 {
            return Err(bad());
        }
        let (n, c, o) = (x.dims()[0], x.dims()[1], w.dims()[0]);
        let kernel: Vec<usize> = w.dims()[2..].to_vec();
        if c != w.dims()[1] * geo.groups || !o.is_multiple_of(geo.groups) {
            return Err(bad());
        }
        let mut padded: Vec<usize> = x.dims().to_vec();
        let mut out = Vec::with_capacity(d);
        for i in 0..d {
            let pd = geo.padding[i]
                .checked_mul(2)
                .and_then(|p| p.checked_add(x.dims()[2 + i]))
                .ok_or_else(bad)?;
            let span = geo.dilation[i]
                .checked_mul(kernel[i].checked_sub(1).ok_or_else(bad)?)
                .and_then(|s| s.checked_add(1))
                .filter(|&s| s <= pd)
                .ok_or_else(bad)?;
            padded[2 + i] = pd;
            out.push((pd - span) / geo.stride[i].max(1) + 1);
        }
        let xp = if geo.padding.iter().any(|&p| p > 0) {
            self.pad(x, &padded)?
        } else {
            self.retain(x)
        };
        // The windows [N, C, k.., out..] as conv_nd views them.
        let xs = strides_of(&padded);
        let step = |len: usize, by: usize, base: usize| if len > 1 { by * base } else { 0 };
        let mut size = vec![n, c];
        let mut strides = vec![xs[0], xs[1]];
        for i in 0..d {
            size.push(kernel[i]);
            strides.push(step(kernel[i], geo.dilation[i], xs[2 + i]));
        }
        for i in 0..d {
            size.push(out[i]);
            strides.push(step(out[i], geo.stride[i], xs[2 + i]));
        }
        let windows = self.strided_view(&xp, &size)?;
        let copy = self.contiguous(&windows, is_contiguous(&size, &strides));
        let taps = c / geo.groups * kernel.iter().product::<usize>();
        let positions: usize = out.iter().product();
        let cols = self.reshape(&copy, &[n, geo.groups, taps, positions])?;
        self.release(copy);
        let wm = self.reshape(w, &[geo.groups, o / geo.groups, taps])?;
        let y = self.grouped_matmul(&wm, &cols)?;
        let mut shape = vec![n, o];
        shape.extend_from_slice(&out);
        let y4 = self.reshape(&y, &shape)?;
        self.release(y);
        let result = match b {
            Some(b) => {
                let mut bshape = vec![o];
                bshape.extend(core::iter::repeat_n(1, d));
                let bv = self.reshape(b, &bshape)?;
                let r = self.binary(&y4, &bv, Binary::Add)?;
                self.release(bv);
                r
            }
            None => self.retain(&y4),
        };
        for t in [y4, wm, cols, windows, xp] {
            self.release(t);
        }
        Ok(result)
    }

    /// `(x - mean) * rsqrt(var + eps)` as batch norm's `normalize` computes
    /// it, `mean` and `var` broadcast per channel.
    pub fn normalize(
        &mut self,
        x: &PlanTensor,
        mean: &PlanTensor,
        var: &PlanTensor,
    ) -> Result<PlanTensor> {
        let centred = self.binary(x, mean, Binary::Sub)?;
        let shifted = self.scalar_shift(var)?;
        let rstd = self.unary(&shifted, Saves::Output)?;
        let y = self.binary(&centred, &rstd, Binary::Mul)?;
        for t in [centred, shifted, rstd] {
            self.release(t);
        }
        Ok(y)
    }
}

impl Planner {
    /// Average pooling as [`AvgPool2d`](crate::nn::AvgPool2d) runs it on
    /// `x [N, C, H, W]`: zero padding to `padded` (when it differs from the
    /// input), the sums over `kh` rows of the view `[N, C, OH, W', kh]`,
    /// the sums over `kw` of those through the view `[N, C, OH, OW, kw]`,
    /// and the division by a constant `[OH, OW]` of divisors.
    pub fn window_average(
        &mut self,
        x: &PlanTensor,
        padded: [usize; 2],
        out: [usize; 2],
        kernel: [usize; 2],
    ) -> Result<PlanTensor> {
        let &[n, c, h, w] = x.dims() else {
            return Err(plan_error("window_average: expects [N, C, H, W]"));
        };
        let xp = if padded != [h, w] {
            self.pad(x, &[n, c, padded[0], padded[1]])?
        } else {
            self.retain(x)
        };
        // Separable, as the forward sums: rows of the window first, then
        // columns of those sums.
        let win_rows = self.strided_view(&xp, &[n, c, out[0], padded[1], kernel[0]])?;
        let rows = self.reduce(&win_rows, &[4], false, false)?;
        let win = self.strided_view(&rows, &[n, c, out[0], out[1], kernel[1]])?;
        let sum = self.reduce(&win, &[4], false, false)?;
        let divisors = self.alloc(&out)?;
        let y = self.binary(&sum, &divisors, Binary::Div)?;
        for t in [sum, divisors, win, rows, win_rows, xp] {
            self.release(t);
        }
        Ok(y)
    }

    /// Adaptive average pooling as
    /// [`AdaptiveAvgPool2d`](crate::nn::AdaptiveAvgPool2d) runs it on
    /// `x [N, C, H, W]`: two constant averaging matrices `Ph [OH, H]` and
    /// `Pw [OW, W]`, then `Ph x` (one GEMM per `[H, W]` matrix, `Ph` saved)
    /// and `(Ph x) Pwᵀ` (one GEMM over all rows, `Pwᵀ` saved).
    pub fn separable_average(&mut self, x: &PlanTensor, out: [usize; 2]) -> Result<PlanTensor> {
        let &[n, c, h, w] = x.dims() else {
            return Err(plan_error("separable_average: expects [N, C, H, W]"));
        };
        let [oh, ow] = out;
        let ph = self.alloc(&[oh, h])?;
        let pw = self.alloc(&[ow, w])?;
        let batches = n * c;
        let t = self.alloc(&[n, c, oh, w])?;
        if batches > 0 && oh > 0 && w > 0 {
            self.gemm((oh, h, h, 1), (h, w, w, 1), (oh, w, w, 1));
        }
        let saved = if x.requires_grad() {
            vec![self.retain(&ph)]
        } else {
            Vec::new()
        };
        let in_dims: Vec<usize> = x.dims().to_vec();
        let t = self.record(t, &[x], saved, move |p, _g, _need, _saved| {
            let dx = p.alloc(&in_dims)?;
            if batches > 0 && h > 0 && w > 0 {
                p.gemm((h, oh, 1, h), (oh, w, w, 1), (h, w, w, 1));
            }
            Ok(vec![Some(dx)])
        });
        let rows = batches * oh;
        let y = self.alloc(&[n, c, oh, ow])?;
        if rows > 0 && ow > 0 {
            self.gemm((rows, w, w, 1), (w, ow, 1, w), (rows, ow, ow, 1));
        }
        let saved = if t.requires_grad() {
            vec![self.retain(&pw)]
        } else {
            Vec::new()
        };
        let y = self.record(y, &[&t], saved, move |p, _g, _need, _saved| {
            let dt = p.alloc(&[n, c, oh, w])?;
            if rows > 0 && w > 0 {
                p.gemm((rows, ow, ow, 1), (ow, w, w, 1), (rows, w, w, 1));
            }
            Ok(vec![Some(dt)])
        });
        for t in [t, ph, pw] {
            self.release(t);
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity_ignores_unit_dimensions() {
        assert!(is_contiguous(&[2, 1, 3], &[3, 99, 1]));
        assert!(!is_contiguous(&[2, 3], &[1, 2]));
        assert_eq!(strides_of(&[2, 3, 4]), vec![12, 4, 1]);
    }
}
