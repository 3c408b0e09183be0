//! The in-place forms (`+= -= *= /=` with a tensor or a scalar), which keep
//! the tensor's identity, and the in-place element-wise update the unary
//! in-place ops share.

use crate::autograd::needs_grad;
use crate::error::Result;
use crate::kernels::table as k;
use crate::ops::binary_inplace;
use crate::tensor::Tensor;

impl Tensor {
    /// Applies `op` in place (keeping the id) when nothing needs recording;
    /// otherwise computes `fallback` out of place and adopts its result (and
    /// graph node) under the same id. The result must keep `self`'s shape.
    fn assign_with(
        &mut self,
        op: &'static str,
        rhs: Option<&Tensor>,
        inplace: impl FnOnce(&mut Tensor) -> Result<()>,
        fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        let recording = match rhs {
            Some(r) => needs_grad(&[self, r]),
            None => needs_grad(&[self]),
        };
        if !recording {
            return inplace(self);
        }
        self.check_inplace(op)?;
        let out = fallback(self)?;
        if out.dims() != self.dims() {
            return Err(crate::Error::ShapeMismatch {
                op,
                lhs: self.shape().into(),
                rhs: out.shape().into(),
                detail: "an in-place result must keep the shape of the tensor it updates",
            });
        }
        self.adopt(out);
        Ok(())
    }

    /// Takes over `out`'s storage, layout and graph node, keeping our id.
    pub(crate) fn adopt(&mut self, out: Tensor) {
        self.storage = out.storage;
        self.layout = out.layout;
        self.node = out.node;
    }

    /// `self += other` (broadcasting `other` to `self`'s shape), in place and
    /// keeping the id; or an error with `self` unchanged.
    pub fn try_add_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "add_",
            Some(other),
            |s| binary_inplace("add_", s, other, |a, b| (k().add.map_inplace)(a, b)),
            |s| s.try_add_tensor(other),
        )
    }

    /// `self -= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_sub_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "sub_",
            Some(other),
            |s| binary_inplace("sub_", s, other, |a, b| (k().sub.map_inplace)(a, b)),
            |s| s.try_sub_tensor(other),
        )
    }

    /// `self *= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_mul_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "mul_",
            Some(other),
            |s| binary_inplace("mul_", s, other, |a, b| (k().mul.map_inplace)(a, b)),
            |s| s.try_mul_tensor(other),
        )
    }

    /// `self /= other`; see [`try_add_assign`](Self::try_add_assign).
    pub fn try_div_assign(&mut self, other: &Tensor) -> Result<()> {
        self.assign_with(
            "div_",
            Some(other),
            |s| binary_inplace("div_", s, other, |a, b| (k().div.map_inplace)(a, b)),
            |s| s.try_div_tensor(other),
        )
    }

    /// Applies `f` to every element in place (keeping the id), or records
    /// `fallback` when a graph is being built.
    pub(in crate::ops) fn scalar_assign(
        &mut self,
        op: &'static str,
        f: impl Fn(&mut [f32]),
        fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        self.assign_with(
            op,
            None,
            |s| {
                s.try_write_runs(true, |buf, o, len, st| {
                    if st == 1 {
                        f(&mut buf[o..o + len]);
                        return;
                    }
                    let mut tmp = [0.0f32; crate::ops::CHUNK];
                    let mut start = 0;
                    while start < len {
                        let n = crate::ops::CHUNK.min(len - start);
                        for (i, t) in tmp[..n].iter_mut().enumerate() {
                            *t = buf[o + (start + i) * st];
                        }
                        f(&mut tmp[..n]);
                        for (i, t) in tmp[..n].iter().enumerate() {
                            buf[o + (start + i) * st] = *t;
                        }
                        start += n;
                    }
                })
            },
            fallback,
        )
    }

    /// `self += s` in place (keeping the id).
    pub fn try_add_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "add_",
            |b| (k().add.map_inplace)(b, &[s]),
            |t| t.try_add_scalar(s),
        )
    }

    /// `self -= s` in place (keeping the id).
    pub fn try_sub_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "sub_",
            |b| (k().sub.map_inplace)(b, &[s]),
            |t| t.try_sub_scalar(s),
        )
    }

    /// `self *= s` in place (keeping the id).
    pub fn try_mul_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "mul_",
            |b| (k().mul.map_inplace)(b, &[s]),
            |t| t.try_mul_scalar(s),
        )
    }

    /// `self /= s` in place (keeping the id).
    pub fn try_div_assign_scalar(&mut self, s: f32) -> Result<()> {
        self.scalar_assign(
            "div_",
            |b| (k().div.map_inplace)(b, &[s]),
            |t| t.try_div_scalar(s),
        )
    }

    /// `self += other` without autograd (gradient accumulation).
    pub(crate) fn try_add_assign_raw(&mut self, other: &Tensor) -> Result<()> {
        binary_inplace("add_", self, other, |a, b| (k().add.map_inplace)(a, b))
    }
}
