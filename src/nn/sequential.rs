//! `Sequential`: modules applied in order.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use super::capture::{Act, Capture};
use super::module::child;
use super::plan::{PlanTensor, Planner};
use super::{Linear, Module};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Applies its modules in order (`torch.nn.Sequential`). Parameters are named
/// by position: `"0.weight"`, `"2.bias"`, ...
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    training: bool,
}

impl Sequential {
    /// An empty container (in training mode).
    pub fn new() -> Sequential {
        Sequential {
            layers: Vec::new(),
            training: true,
        }
    }

    /// Appends a module (builder style).
    pub fn with(mut self, m: impl Module + 'static) -> Sequential {
        self.push(m);
        self
    }

    /// Appends a module.
    pub fn push(&mut self, m: impl Module + 'static) {
        self.layers.push(Box::new(m));
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no modules.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The `i`-th module.
    pub fn get(&self, i: usize) -> Option<&dyn Module> {
        self.layers.get(i).map(|b| &**b)
    }

    /// The `i`-th module, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut (dyn Module + 'static)> {
        self.layers.get_mut(i).map(|b| &mut **b)
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl core::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sequential({} modules)", self.layers.len())
    }
}

impl Module for Sequential {
    fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for m in &self.layers {
            h = m.try_forward(&h)?;
        }
        Ok(h)
    }

    fn capture(&self, c: &mut Capture, x: Act) -> Result<Act> {
        let mut h = x;
        for m in &self.layers {
            h = m.capture(c, h)?;
        }
        Ok(h)
    }

    fn plan(&self, p: &mut Planner, x: &PlanTensor) -> Result<PlanTensor> {
        let mut h = p.retain(x);
        for (i, m) in self.layers.iter().enumerate() {
            let next = p.scope(&format!("{i}"), |p| m.plan(p, &h));
            p.release(h);
            h = next?;
        }
        Ok(h)
    }

    fn visit_params(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, m) in self.layers.iter().enumerate() {
            m.visit_params(&child(prefix, i), f);
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, &'a mut Tensor)) {
        for (i, m) in self.layers.iter_mut().enumerate() {
            m.visit_params_mut(&child(prefix, i), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, m) in self.layers.iter().enumerate() {
            m.visit_buffers(&child(prefix, i), f);
        }
    }

    fn visit_state(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        for (i, m) in self.layers.iter().enumerate() {
            m.visit_state(&child(prefix, i), f);
        }
    }

    fn set_buffer(&mut self, name: &str, value: &Tensor) -> Result<bool> {
        let Some((head, rest)) = name.split_once('.') else {
            return Ok(false);
        };
        let i: usize = head.parse().map_err(|_| Error::InvalidArgument {
            op: "Sequential::set_buffer",
            detail: "buffer names start with the module's index",
        })?;
        match self.layers.get_mut(i) {
            Some(m) => m.set_buffer(rest, value),
            None => Ok(false),
        }
    }

    fn visit_rng_states(&self, prefix: &str, f: &mut dyn FnMut(&str, [u64; 4])) {
        for (i, m) in self.layers.iter().enumerate() {
            m.visit_rng_states(&child(prefix, i), f);
        }
    }

    fn set_rng_state(&mut self, name: &str, state: [u64; 4]) -> bool {
        let Some((head, rest)) = name.split_once('.') else {
            return false;
        };
        match head
            .parse::<usize>()
            .ok()
            .and_then(|i| self.layers.get_mut(i))
        {
            Some(m) => m.set_rng_state(rest, state),
            None => false,
        }
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        for m in &mut self.layers {
            m.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn visit_linears(&self, prefix: &str, f: &mut dyn FnMut(&str, &Linear)) {
        for (i, m) in self.layers.iter().enumerate() {
            m.visit_linears(&child(prefix, i), f);
        }
    }

    fn visit_linears_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Linear)) {
        for (i, m) in self.layers.iter_mut().enumerate() {
            m.visit_linears_mut(&child(prefix, i), f);
        }
    }
}
