//! Constructors and the seeded random number generator.
//!
//! Random numbers come from xoshiro256++ seeded through SplitMix64; normal
//! samples use the Box–Muller transform computed in f64 with `libm`. Everything
//! is integer arithmetic or IEEE-exact/pure-software float math, so the same
//! seed gives the same numbers on x86_64, aarch64 and bare-metal targets (tested
//! under qemu). The streams are not PyTorch's.

use alloc::vec::Vec;

use super::Tensor;
use super::shape::Shape;
use crate::error::{Error, Result, unwrap};
use crate::sync::Mutex;

impl Tensor {
    /// A tensor of `shape` filled with `value`.
    ///
    /// # Panics
    /// If the rank exceeds [`MAX_RANK`](super::MAX_RANK) or memory runs out; see
    /// [`try_full`](Self::try_full).
    #[track_caller]
    pub fn full(shape: impl AsRef<[usize]>, value: f32) -> Tensor {
        unwrap(Self::try_full(shape, value))
    }

    /// A tensor of `shape` filled with `value`, or an error.
    pub fn try_full(shape: impl AsRef<[usize]>, value: f32) -> Result<Tensor> {
        let shape = Shape::try_for("full", shape.as_ref())?;
        Tensor::try_from_fill(shape, |b| b.fill(value))
    }

    /// A tensor of zeros. Panics like [`full`](Self::full).
    #[track_caller]
    pub fn zeros(shape: impl AsRef<[usize]>) -> Tensor {
        unwrap(Self::try_full(shape, 0.0))
    }

    /// A tensor of zeros, or an error.
    pub fn try_zeros(shape: impl AsRef<[usize]>) -> Result<Tensor> {
        Self::try_full(shape, 0.0)
    }

    /// A tensor of ones. Panics like [`full`](Self::full).
    #[track_caller]
    pub fn ones(shape: impl AsRef<[usize]>) -> Tensor {
        unwrap(Self::try_full(shape, 1.0))
    }

    /// A tensor of ones, or an error.
    pub fn try_ones(shape: impl AsRef<[usize]>) -> Result<Tensor> {
        Self::try_full(shape, 1.0)
    }

    /// Zeros with the shape of `other`. Panics if memory runs out.
    #[track_caller]
    pub fn zeros_like(other: &Tensor) -> Tensor {
        Self::full(other.dims(), 0.0)
    }

    /// Ones with the shape of `other`. Panics if memory runs out.
    #[track_caller]
    pub fn ones_like(other: &Tensor) -> Tensor {
        Self::full(other.dims(), 1.0)
    }

    /// `value` with the shape of `other`. Panics if memory runs out.
    #[track_caller]
    pub fn full_like(other: &Tensor, value: f32) -> Tensor {
        Self::full(other.dims(), value)
    }

    /// A rank-0 tensor holding `value`.
    #[track_caller]
    pub fn scalar(value: f32) -> Tensor {
        Self::full([], value)
    }

    /// A tensor of `shape` holding a copy of `data` in row-major order.
    ///
    /// Returns `NumelMismatch` if `data.len()` differs from the shape's element
    /// count, `RankTooHigh` past [`MAX_RANK`](super::MAX_RANK).
    pub fn from_slice(data: &[f32], shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = Shape::try_for("from_slice", shape.as_ref())?;
        if shape.numel() != data.len() {
            return Err(Error::NumelMismatch {
                op: "from_slice",
                expected: shape.numel(),
                got: data.len(),
            });
        }
        Tensor::try_from_fill(shape, |b| b.copy_from_slice(data))
    }

    /// Like [`from_slice`](Self::from_slice), taking a `Vec` (its elements are
    /// copied into pool storage, which is 64-byte aligned).
    pub fn from_vec(data: Vec<f32>, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        Self::from_slice(&data, shape)
    }

    /// A tensor of `shape` whose element at multi-index `idx` is `f(idx)`,
    /// visited in row-major order. Panics like [`full`](Self::full).
    #[track_caller]
    pub fn from_fn(shape: impl AsRef<[usize]>, f: impl FnMut(&[usize]) -> f32) -> Tensor {
        unwrap(Self::try_from_fn(shape, f))
    }

    /// [`from_fn`](Self::from_fn), or an error.
    pub fn try_from_fn(
        shape: impl AsRef<[usize]>,
        mut f: impl FnMut(&[usize]) -> f32,
    ) -> Result<Tensor> {
        let shape = Shape::try_for("from_fn", shape.as_ref())?;
        let dims: heapless::Vec<usize, { super::MAX_RANK }> =
            shape.dims().iter().copied().collect();
        Tensor::try_from_fill(shape, |b| {
            let mut idx = [0usize; super::MAX_RANK];
            let r = dims.len();
            for v in b.iter_mut() {
                *v = f(&idx[..r]);
                for d in (0..r).rev() {
                    idx[d] += 1;
                    if idx[d] < dims[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        })
    }

    /// `[start, start + step, ...]` up to but excluding `end`, as
    /// `torch.arange(start, end, step)`: `ceil((end - start) / step)` elements,
    /// each computed in f64 then rounded.
    ///
    /// # Panics
    /// If `step` is zero, has the wrong sign, or a bound is not finite; see
    /// [`try_arange`](Self::try_arange).
    #[track_caller]
    pub fn arange(start: f32, end: f32, step: f32) -> Tensor {
        unwrap(Self::try_arange(start, end, step))
    }

    /// [`arange`](Self::arange), or `InvalidArgument`.
    pub fn try_arange(start: f32, end: f32, step: f32) -> Result<Tensor> {
        let bad = |detail| Error::InvalidArgument {
            op: "arange",
            detail,
        };
        if !(start.is_finite() && end.is_finite() && step.is_finite()) {
            return Err(bad("start, end and step must be finite"));
        }
        if step == 0.0 {
            return Err(bad("step must be non-zero"));
        }
        if (end > start && step < 0.0) || (end < start && step > 0.0) {
            return Err(bad(
                "the sign of step must match the direction from start to end",
            ));
        }
        let (s, e, st) = (start as f64, end as f64, step as f64);
        let n = libm::ceil((e - s) / st).max(0.0) as usize;
        Tensor::try_from_fill(Shape::try_for("arange", &[n])?, |b| {
            for (i, v) in b.iter_mut().enumerate() {
                *v = (s + i as f64 * st) as f32;
            }
        })
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive, computed as
    /// `torch.linspace` does (the first half counted up from `start`, the second
    /// half down from `end`). Panics if memory runs out.
    #[track_caller]
    pub fn linspace(start: f32, end: f32, steps: usize) -> Tensor {
        unwrap(Self::try_linspace(start, end, steps))
    }

    /// [`linspace`](Self::linspace), or an error.
    pub fn try_linspace(start: f32, end: f32, steps: usize) -> Result<Tensor> {
        Tensor::try_from_fill(Shape::try_for("linspace", &[steps])?, |b| {
            match steps {
                0 => return,
                1 => {
                    b[0] = start;
                    return;
                }
                _ => {}
            }
            let step = (end - start) / (steps - 1) as f32;
            let half = steps / 2;
            for (i, v) in b.iter_mut().enumerate() {
                *v = if i < half {
                    start + step * i as f32
                } else {
                    end - step * (steps - i - 1) as f32
                };
            }
        })
    }

    /// The `n × n` identity matrix. Panics if memory runs out.
    #[track_caller]
    pub fn eye(n: usize) -> Tensor {
        unwrap(Self::try_eye_rect(n, n))
    }

    /// A `rows × cols` matrix with ones on the main diagonal. Panics if memory
    /// runs out.
    #[track_caller]
    pub fn eye_rect(rows: usize, cols: usize) -> Tensor {
        unwrap(Self::try_eye_rect(rows, cols))
    }

    /// [`eye_rect`](Self::eye_rect), or an error.
    pub fn try_eye_rect(rows: usize, cols: usize) -> Result<Tensor> {
        Tensor::try_from_fill(Shape::try_for("eye", &[rows, cols])?, |b| {
            b.fill(0.0);
            for i in 0..rows.min(cols) {
                b[i * cols + i] = 1.0;
            }
        })
    }

    /// Uniform samples in `[0, 1)`. With `Some(seed)` the result depends only on
    /// the seed (and is the same on every target); with `None` it comes from the
    /// global generator (see [`manual_seed`]). Panics like [`full`](Self::full).
    #[track_caller]
    pub fn rand(shape: impl AsRef<[usize]>, seed: Option<u64>) -> Tensor {
        unwrap(Self::try_rand(shape, seed))
    }

    /// [`rand`](Self::rand), or an error.
    pub fn try_rand(shape: impl AsRef<[usize]>, seed: Option<u64>) -> Result<Tensor> {
        with_generator(seed, |g| g.try_rand(shape))
    }

    /// Standard normal samples (mean 0, std 1); seeding as [`rand`](Self::rand).
    #[track_caller]
    pub fn randn(shape: impl AsRef<[usize]>, seed: Option<u64>) -> Tensor {
        unwrap(Self::try_randn(shape, seed))
    }

    /// [`randn`](Self::randn), or an error.
    pub fn try_randn(shape: impl AsRef<[usize]>, seed: Option<u64>) -> Result<Tensor> {
        with_generator(seed, |g| g.try_randn(shape))
    }
}

/// The seed of the global generator at start-up (PyTorch's default seed value).
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

fn with_generator<R>(seed: Option<u64>, f: impl FnOnce(&mut Generator) -> R) -> R {
    match seed {
        Some(s) => f(&mut Generator::new(s)),
        None => {
            let mut g = GLOBAL.lock();
            f(g.get_or_insert_with(|| Generator::new(DEFAULT_SEED)))
        }
    }
}

/// Reseeds the global generator used by `rand(.., None)`, `randn(.., None)` and
/// layer initialisation.
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock() = Some(Generator::new(seed));
}

/// State of the global generator (for checkpoints).
pub fn global_rng_state() -> [u64; 4] {
    with_generator(None, |g| g.state())
}

/// Restores the global generator from [`global_rng_state`].
pub fn set_global_rng_state(state: [u64; 4]) {
    *GLOBAL.lock() = Some(Generator::from_state(state));
}

/// Runs `f` with the global generator (for layer initialisers and dropout).
pub fn with_global_rng<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    with_generator(None, f)
}

/// A seeded pseudo-random generator (xoshiro256++), identical on every target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generator {
    s: [u64; 4],
}

impl Generator {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Generator {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Generator {
            s: [next(), next(), next(), next()],
        }
    }

    /// The full state (to save and restore a stream).
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// A generator continuing from a saved [`state`](Self::state). An all-zero
    /// state (which xoshiro cannot leave) is replaced by `Generator::new(0)`.
    pub fn from_state(s: [u64; 4]) -> Generator {
        if s == [0; 4] {
            Generator::new(0)
        } else {
            Generator { s }
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }

    /// A uniform sample in `[0, 1)` with 24 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Generator::below: n must be positive");
        // Lemire's multiply-shift with rejection.
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }

    /// Two independent standard normal samples (Box–Muller, in f64).
    pub fn normal_pair(&mut self) -> (f32, f32) {
        // u1 in (0, 1] so the log is finite; u2 in [0, 1).
        let u1 = ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let u2 = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let r = crate::math::sqrt(-2.0 * libm::log(u1));
        let theta = 2.0 * core::f64::consts::PI * u2;
        ((r * libm::cos(theta)) as f32, (r * libm::sin(theta)) as f32)
    }

    /// Fills `out` with uniform samples in `[0, 1)`.
    pub fn fill_uniform(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.uniform();
        }
    }

    /// Fills `out` with standard normal samples.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        let mut chunks = out.chunks_exact_mut(2);
        for c in &mut chunks {
            let (a, b) = self.normal_pair();
            c[0] = a;
            c[1] = b;
        }
        if let [last] = chunks.into_remainder() {
            *last = self.normal_pair().0;
        }
    }

    /// A tensor of uniform samples in `[0, 1)`.
    #[track_caller]
    pub fn rand(&mut self, shape: impl AsRef<[usize]>) -> Tensor {
        unwrap(self.try_rand(shape))
    }

    /// [`rand`](Self::rand), or an error.
    pub fn try_rand(&mut self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = Shape::try_for("rand", shape.as_ref())?;
        Tensor::try_from_fill(shape, |b| self.fill_uniform(b))
    }

    /// A tensor of standard normal samples.
    #[track_caller]
    pub fn randn(&mut self, shape: impl AsRef<[usize]>) -> Tensor {
        unwrap(self.try_randn(shape))
    }

    /// [`randn`](Self::randn), or an error.
    pub fn try_randn(&mut self, shape: impl AsRef<[usize]>) -> Result<Tensor> {
        let shape = Shape::try_for("randn", shape.as_ref())?;
        Tensor::try_from_fill(shape, |b| self.fill_normal(b))
    }

    /// Uniform samples in `[low, high)`.
    #[track_caller]
    pub fn uniform_tensor(&mut self, shape: impl AsRef<[usize]>, low: f32, high: f32) -> Tensor {
        let shape = unwrap(Shape::try_for("uniform", shape.as_ref()));
        unwrap(Tensor::try_from_fill(shape, |b| {
            for v in b {
                *v = low + (high - low) * self.uniform();
            }
        }))
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}
