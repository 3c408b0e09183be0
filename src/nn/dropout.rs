//! `Dropout`, as `torch.nn.Dropout`, drawing its masks from its own seeded
//! generator.

use core::fmt;

use super::Module;
use crate::error::{Error, Result, unwrap};
use crate::sync::Mutex;
use crate::tensor::{Generator, Tensor, with_global_rng};

/// Randomly zeroes elements in training mode, as `torch.nn.Dropout(p)`:
/// each element is kept with probability `1 - p` and scaled by `1 / (1 -
/// p)`, so the expected value is unchanged; the gradient passes through the
/// same mask and scale. In evaluation mode, and for `p = 0`, the input is
/// returned as it is; for `p = 1` the output is all zeros. Input and output
/// have any (the same) shape. No parameters.
///
/// The masks come from the layer's own [`Generator`] (behind a lock, so a
/// shared layer can run in several threads): a layer made with a seed
/// repeats the same sequence of masks. The random values differ from
/// PyTorch's.
pub struct Dropout {
    p: f32,
    rng: Mutex<Generator>,
    training: bool,
}

impl Dropout {
    /// Dropout with probability `p`, seeded from the global generator
    /// ([`crate::manual_seed`]).
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn new(p: f32) -> Dropout {
        unwrap(Self::try_new(p, None))
    }

    /// Dropout with probability `p` and its own stream from `seed`.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`; see [`try_new`](Self::try_new).
    #[track_caller]
    pub fn with_seed(p: f32, seed: u64) -> Dropout {
        unwrap(Self::try_new(p, Some(seed)))
    }

    /// Dropout with probability `p`; its generator starts from `seed`, or
    /// (for `None`) from a seed drawn from the global generator. Returns
    /// `InvalidArgument` naming `Dropout` if `p` is not in `[0, 1]`.
    pub fn try_new(p: f32, seed: Option<u64>) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidArgument {
                op: "Dropout",
                detail: "dropout probability has to be between 0 and 1",
            });
        }
        let seed = seed.unwrap_or_else(|| with_global_rng(|g| g.next_u64()));
        Ok(Dropout {
            p,
            rng: Mutex::new(Generator::new(seed)),
            training: true,
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// The generator's state (to save and restore the stream of masks).
    pub fn rng_state(&self) -> [u64; 4] {
        self.rng.lock().state()
    }

    /// Continues the stream of masks from a saved [`rng_state`](Self::rng_state).
    pub fn set_rng_state(&self, state: [u64; 4]) {
        *self.rng.lock() = Generator::from_state(state);
    }
}

impl Clone for Dropout {
    /// A copy continuing from the same generator state.
    fn clone(&self) -> Self {
        Dropout {
            p: self.p,
            rng: Mutex::new(self.rng.lock().clone()),
            training: self.training,
        }
    }
}

impl fmt::Debug for Dropout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dropout(p={})", self.p)
    }
}

/// `x` with each element kept with probability `1 - p` (scaled by
/// `1 / (1 - p)`) or zeroed, the mask drawn from `rng`. `p` must be in
/// `[0, 1]`; `p = 0` returns `x`, `p = 1` zeros.
pub(crate) fn dropout(x: &Tensor, p: f32, rng: &mut Generator) -> Result<Tensor> {
    if p == 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return x.try_mul_scalar(0.0);
    }
    let scale = 1.0 / (1.0 - p);
    let mut mask = Tensor::try_zeros(x.dims())?;
    for v in mask.try_data_mut()? {
        *v = if rng.uniform() < p { 0.0 } else { scale };
    }
    x.try_mul_tensor(&mask)
}

impl Module for Dropout {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training {
            return Ok(x.clone());
        }
        // The generator advances only when the output exists, so a failed
        // forward draws the same mask when it is tried again.
        let mut rng = self.rng.lock();
        let mut next = rng.clone();
        let y = dropout(x, self.p, &mut next)?;
        *rng = next;
        Ok(y)
    }
    fn visit_params(&self, _: &str, _: &mut dyn FnMut(&str, &Tensor)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(&str, &'a mut Tensor)) {}
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        f(&super::module::join(prefix, "rng"), self.rng_state());
    }
    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        if name != "rng" {
            return false;
        }
        Dropout::set_rng_state(self, state);
        true
    }
}
