//! A hand-written MLP in plain Rust (loops over slices, no library): forward
//! with ReLU on hidden layers, mean softmax cross-entropy, backward, and an
//! SGD or Adam update. Generic over the float type: in f32 it is the baseline
//! the tiny-model workload compares against, in f64 the reference every
//! library's training step is checked against.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// The float operations the MLP needs.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
{
    /// Converts from f64 (rounding for f32).
    fn of(x: f64) -> Self;
    /// Converts to f64.
    fn f64(self) -> f64;
    /// e^x.
    fn exp(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn of(x: f64) -> f64 {
        x
    }
    fn f64(self) -> f64 {
        self
    }
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}

/// One dense layer: `w` is `[out, in]` row-major (as Linear stores it), `b`
/// is `[out]`.
#[derive(Clone, Debug)]
pub struct Layer<T> {
    /// Weight `[out, in]`.
    pub w: Vec<T>,
    /// Bias `[out]`.
    pub b: Vec<T>,
    /// Input features.
    pub fan_in: usize,
    /// Output features.
    pub fan_out: usize,
}

/// Adam's hyper-parameters (PyTorch's defaults apart from `lr`).
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator term.
    pub eps: f64,
}

/// The update rule.
#[derive(Clone, Copy, Debug)]
pub enum Update {
    /// `w -= lr * g`.
    Sgd(f64),
    /// Adam (bias-corrected, no weight decay).
    Adam(AdamHyper),
}

/// An MLP with its gradients, optimizer state and preallocated activations.
pub struct Mlp<T> {
    /// The layers, input first.
    pub layers: Vec<Layer<T>>,
    /// Gradients, shaped as `layers`.
    pub grads: Vec<Layer<T>>,
    m: Vec<Layer<T>>,
    v: Vec<Layer<T>>,
    step: i32,
    /// Post-activation outputs per layer (the last holds the logits).
    acts: Vec<Vec<T>>,
    /// Gradient with respect to each layer's pre-activation output.
    deltas: Vec<Vec<T>>,
}

fn zeros_like<T: Real>(l: &Layer<T>) -> Layer<T> {
    Layer {
        w: vec![T::of(0.0); l.w.len()],
        b: vec![T::of(0.0); l.b.len()],
        fan_in: l.fan_in,
        fan_out: l.fan_out,
    }
}

impl<T: Real> Mlp<T> {
    /// An MLP with the given parameters (f32 values, converted to `T`).
    pub fn new(params: &[(Vec<f32>, Vec<f32>)], dims: &[usize]) -> Mlp<T> {
        let layers: Vec<Layer<T>> = params
            .iter()
            .enumerate()
            .map(|(i, (w, b))| Layer {
                w: w.iter().map(|&x| T::of(x as f64)).collect(),
                b: b.iter().map(|&x| T::of(x as f64)).collect(),
                fan_in: dims[i],
                fan_out: dims[i + 1],
            })
            .collect();
        let grads: Vec<Layer<T>> = layers.iter().map(zeros_like).collect();
        Mlp {
            m: grads.clone(),
            v: grads.clone(),
            grads,
            layers,
            step: 0,
            acts: Vec::new(),
            deltas: Vec::new(),
        }
    }

    /// Forward pass of a batch `x` (`[batch, in]`); returns the mean
    /// cross-entropy against `y` and leaves the gradients in `grads`.
    pub fn forward_backward(&mut self, x: &[T], y: &[usize]) -> f64 {
        let batch = y.len();
        let nl = self.layers.len();
        self.acts.resize_with(nl, Vec::new);
        self.deltas.resize_with(nl, Vec::new);
        let zero = T::of(0.0);
        for l in 0..nl {
            let (fi, fo) = (self.layers[l].fan_in, self.layers[l].fan_out);
            let mut out = std::mem::take(&mut self.acts[l]);
            out.clear();
            out.resize(batch * fo, zero);
            let input: &[T] = if l == 0 { x } else { &self.acts[l - 1] };
            let layer = &self.layers[l];
            for bi in 0..batch {
                let xi = &input[bi * fi..(bi + 1) * fi];
                for o in 0..fo {
                    let wo = &layer.w[o * fi..(o + 1) * fi];
                    let mut acc = layer.b[o];
                    for (a, w) in xi.iter().zip(wo) {
                        acc += *a * *w;
                    }
                    out[bi * fo + o] = if l + 1 < nl && acc < zero { zero } else { acc };
                }
            }
            self.acts[l] = out;
        }
        // Softmax cross-entropy (mean): delta = (softmax - onehot) / batch.
        let classes = self.layers[nl - 1].fan_out;
        let mut loss = 0.0f64;
        let mut delta = std::mem::take(&mut self.deltas[nl - 1]);
        delta.clear();
        delta.resize(batch * classes, zero);
        let inv_b = T::of(1.0 / batch as f64);
        for bi in 0..batch {
            let z = &self.acts[nl - 1][bi * classes..(bi + 1) * classes];
            let mut mx = z[0];
            for &v in z {
                if v > mx {
                    mx = v;
                }
            }
            let mut s = zero;
            for (d, &v) in delta[bi * classes..].iter_mut().zip(z) {
                *d = (v - mx).exp();
                s += *d;
            }
            loss += s.f64().ln() - (z[y[bi]] - mx).f64();
            for (c, d) in delta[bi * classes..(bi + 1) * classes]
                .iter_mut()
                .enumerate()
            {
                let onehot = if c == y[bi] { T::of(1.0) } else { zero };
                *d = (*d / s - onehot) * inv_b;
            }
        }
        self.deltas[nl - 1] = delta;
        // Backward.
        for l in (0..nl).rev() {
            let (fi, fo) = (self.layers[l].fan_in, self.layers[l].fan_out);
            let input: &[T] = if l == 0 { x } else { &self.acts[l - 1] };
            let g = &mut self.grads[l];
            g.w.iter_mut().for_each(|v| *v = zero);
            g.b.iter_mut().for_each(|v| *v = zero);
            let d = std::mem::take(&mut self.deltas[l]);
            for bi in 0..batch {
                let xi = &input[bi * fi..(bi + 1) * fi];
                for o in 0..fo {
                    let dv = d[bi * fo + o];
                    g.b[o] += dv;
                    for (gw, a) in g.w[o * fi..(o + 1) * fi].iter_mut().zip(xi) {
                        *gw += dv * *a;
                    }
                }
            }
            if l > 0 {
                let mut prev = std::mem::take(&mut self.deltas[l - 1]);
                prev.clear();
                prev.resize(batch * fi, zero);
                let w = &self.layers[l].w;
                for bi in 0..batch {
                    let p = &mut prev[bi * fi..(bi + 1) * fi];
                    for o in 0..fo {
                        let dv = d[bi * fo + o];
                        for (pv, wv) in p.iter_mut().zip(&w[o * fi..(o + 1) * fi]) {
                            *pv += dv * *wv;
                        }
                    }
                    // ReLU: no gradient where the activation was clamped.
                    for (pv, a) in p.iter_mut().zip(&self.acts[l - 1][bi * fi..]) {
                        if *a <= zero {
                            *pv = zero;
                        }
                    }
                }
                self.deltas[l - 1] = prev;
            }
            self.deltas[l] = d;
        }
        loss / batch as f64
    }

    /// Applies `rule` with the gradients of the last
    /// [`forward_backward`](Self::forward_backward).
    pub fn update(&mut self, rule: Update) {
        self.step += 1;
        for l in 0..self.layers.len() {
            let layer = &mut self.layers[l];
            let g = &self.grads[l];
            let pairs = [(&mut layer.w, &g.w), (&mut layer.b, &g.b)];
            for (k, (p, g)) in pairs.into_iter().enumerate() {
                match rule {
                    Update::Sgd(lr) => {
                        let lr = T::of(lr);
                        for (p, g) in p.iter_mut().zip(g) {
                            *p = *p - lr * *g;
                        }
                    }
                    Update::Adam(h) => {
                        let (m, v) = if k == 0 {
                            (&mut self.m[l].w, &mut self.v[l].w)
                        } else {
                            (&mut self.m[l].b, &mut self.v[l].b)
                        };
                        let bc1 = 1.0 - h.beta1.powi(self.step);
                        let bc2 = 1.0 - h.beta2.powi(self.step);
                        let (b1, b2) = (T::of(h.beta1), T::of(h.beta2));
                        let (one, lr_c) = (T::of(1.0), T::of(h.lr / bc1));
                        let (inv_bc2, eps) = (T::of(1.0 / bc2), T::of(h.eps));
                        for i in 0..p.len() {
                            m[i] = b1 * m[i] + (one - b1) * g[i];
                            v[i] = b2 * v[i] + (one - b2) * g[i] * g[i];
                            p[i] = p[i] - lr_c * m[i] / ((v[i] * inv_bc2).sqrt() + eps);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dims: &[usize]) -> Vec<(Vec<f32>, Vec<f32>)> {
        let v = crate::timing::data(1000, 5);
        let mut k = 0;
        let mut take = |n: usize| {
            k += n;
            v[k - n..k].to_vec()
        };
        (0..dims.len() - 1)
            // Positive biases keep most ReLUs active, so most gradients are
            // non-zero.
            .map(|l| {
                let b = take(dims[l + 1]).iter().map(|v| v.abs() + 0.5).collect();
                (take(dims[l] * dims[l + 1]), b)
            })
            .collect()
    }

    /// The f64 MLP is the judge of every library: its gradients must match
    /// central finite differences of its own loss.
    #[test]
    fn gradients_match_finite_differences() {
        let dims = [5, 4, 3, 3];
        let p = params(&dims);
        let x: Vec<f64> = crate::timing::data(2 * 5, 9)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let y = [2usize, 0];
        let mut m = Mlp::<f64>::new(&p, &dims);
        m.forward_backward(&x, &y);
        let grads = m.grads.clone();
        let h = 1e-6;
        let mut checked = 0;
        for (l, gl) in grads.iter().enumerate() {
            for i in 0..gl.w.len() + gl.b.len() {
                let nw = gl.w.len();
                let eval = |d: f64| {
                    let mut q = Mlp::<f64>::new(&p, &dims);
                    if i < nw {
                        q.layers[l].w[i] += d;
                    } else {
                        q.layers[l].b[i - nw] += d;
                    }
                    q.forward_backward(&x, &y)
                };
                let fd = (eval(h) - eval(-h)) / (2.0 * h);
                let g = if i < nw {
                    grads[l].w[i]
                } else {
                    grads[l].b[i - nw]
                };
                assert!(
                    (fd - g).abs() < 1e-6,
                    "layer {l} parameter {i}: {g} vs {fd}"
                );
                checked += usize::from(g != 0.0);
            }
        }
        assert!(
            checked > 20,
            "too few non-zero gradients checked: {checked}"
        );
    }

    /// One Adam step moves every parameter with a non-zero gradient by about
    /// `lr` against the gradient's sign (bias-corrected first step).
    #[test]
    fn first_adam_step_moves_by_lr() {
        let dims = [5, 4, 3];
        let p = params(&dims);
        let x: Vec<f64> = crate::timing::data(5, 3)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut m = Mlp::<f64>::new(&p, &dims);
        m.forward_backward(&x, &[1]);
        let before = m.layers.clone();
        let grads = m.grads.clone();
        let lr = 1e-3;
        m.update(Update::Adam(AdamHyper {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-12,
        }));
        for ((bl, al), gl) in before.iter().zip(&m.layers).zip(&grads) {
            for ((a, b), g) in bl.w.iter().zip(&al.w).zip(&gl.w) {
                if g.abs() > 1e-9 {
                    assert!(
                        (a - b - lr * g.signum()).abs() < 1e-6,
                        "{a} -> {b} with gradient {g}"
                    );
                }
            }
        }
    }
}
