//! The result of a plan: bytes by category and per module, a table, and the
//! budget check.

use alloc::string::String;
use core::fmt;

use crate::error::{Error, Result};
use crate::kernels::Isa;
use crate::pool;

/// What a buffer of a training step holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Parameters and buffers (e.g. batch-norm running statistics).
    Parameters = 0,
    /// Gradients of the trained parameters.
    Gradients = 1,
    /// Optimizer state (momentum, moment estimates).
    OptimizerState = 2,
    /// The input batch and the target.
    Inputs = 3,
    /// Forward results: those saved for backward and those in flight.
    Activations = 4,
    /// Gradients of activations during backward.
    ActivationGrads = 5,
    /// Work buffers: GEMM packing, reduction scratch.
    Work = 6,
}

impl Category {
    pub(crate) const COUNT: usize = 7;

    /// Every category, in table order.
    pub const ALL: [Category; 7] = [
        Category::Parameters,
        Category::Gradients,
        Category::OptimizerState,
        Category::Inputs,
        Category::Activations,
        Category::ActivationGrads,
        Category::Work,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Category::Parameters => "parameters",
            Category::Gradients => "gradients",
            Category::OptimizerState => "optimizer state",
            Category::Inputs => "inputs",
            Category::Activations => "activations",
            Category::ActivationGrads => "activation grads",
            Category::Work => "work buffers",
        }
    }
}

/// One module's share of a plan (dotted path as in parameter names; the
/// empty name is the model itself, `loss` the loss).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleRow {
    /// Dotted module path.
    pub name: String,
    /// Bytes of its own parameters and buffers.
    pub params: usize,
    /// Bytes of its parameters' gradients.
    pub grads: usize,
    /// Bytes of optimizer state for its parameters.
    pub state: usize,
    /// Bytes of activations its operations save for backward (each buffer
    /// counted once, by the module that first saves it).
    pub saved: usize,
    /// Largest work buffer (GEMM packing, reduction scratch) it takes.
    pub work: usize,
}

impl ModuleRow {
    pub(crate) fn new(name: String) -> ModuleRow {
        ModuleRow {
            name,
            ..ModuleRow::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.params == 0 && self.grads == 0 && self.state == 0 && self.saved == 0 && self.work == 0
    }
}

/// The memory of one planned training step (see [`plan_step`](super::plan_step)).
/// All figures are pool bytes (block sizes, as [`pool::stats`] counts them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    pub(crate) peak: usize,
    pub(crate) peak_reserved: usize,
    pub(crate) at_peak: [usize; Category::COUNT],
    pub(crate) max: [usize; Category::COUNT],
    pub(crate) modules: alloc::vec::Vec<ModuleRow>,
    pub(crate) isa: Isa,
    pub(crate) threads: usize,
}

impl MemoryPlan {
    /// Peak bytes in use during the step: what
    /// [`PoolStats::peak_bytes_in_use`](pool::PoolStats::peak_bytes_in_use)
    /// reports for it (everything alive at the peak, the model included).
    pub fn peak_bytes(&self) -> usize {
        self.peak
    }

    /// Peak bytes the pool must hold from the system: the peak plus the
    /// 64-byte header of every block alive then. This is what a budget
    /// ([`pool::set_budget`]) must allow.
    pub fn peak_reserved_bytes(&self) -> usize {
        self.peak_reserved
    }

    /// Bytes of `cat` alive at the moment of the peak (these sum to
    /// [`peak_bytes`](Self::peak_bytes)).
    pub fn at_peak(&self, cat: Category) -> usize {
        self.at_peak[cat as usize]
    }

    /// The most bytes of `cat` alive at any moment of the step.
    pub fn max(&self, cat: Category) -> usize {
        self.max[cat as usize]
    }

    /// Per-module rows in model order (dotted paths part by part, numbers
    /// as numbers), the loss last.
    pub fn modules(&self) -> &[ModuleRow] {
        &self.modules
    }

    /// `Ok` if the plan fits the pool's budget ([`pool::budget`]; no
    /// budget always fits), else [`Error::PlanExceedsBudget`] naming both.
    pub fn check_budget(&self) -> Result<()> {
        self.check_against(pool::budget())
    }

    /// `Ok` if the plan fits `budget` bytes (`None`: unlimited), else
    /// [`Error::PlanExceedsBudget`].
    pub fn check_against(&self, budget: Option<usize>) -> Result<()> {
        match budget {
            Some(b) if self.peak_reserved > b => Err(Error::PlanExceedsBudget {
                planned: self.peak_reserved,
                budget: b,
            }),
            _ => Ok(()),
        }
    }
}

/// Bytes with a binary unit (`1.5 KiB`), exact below 1 KiB.
pub(crate) struct Bytes(pub usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        let s = if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        } else if b < 1024.0 * 1024.0 {
            (b / 1024.0, "KiB")
        } else if b < 1024.0 * 1024.0 * 1024.0 {
            (b / (1024.0 * 1024.0), "MiB")
        } else {
            (b / (1024.0 * 1024.0 * 1024.0), "GiB")
        };
        write!(f, "{:.1} {}", s.0, s.1)
    }
}

impl fmt::Display for MemoryPlan {
    /// Two tables: the categories (at the peak and their own maximum) and
    /// the modules.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "memory plan of one training step ({} kernels, {} thread(s))",
            self.isa, self.threads
        )?;
        writeln!(f, "| category | at peak | max |")?;
        writeln!(f, "|---|---:|---:|")?;
        for c in Category::ALL {
            writeln!(
                f,
                "| {} | {} | {} |",
                c.name(),
                Bytes(self.at_peak(c)),
                Bytes(self.max(c))
            )?;
        }
        writeln!(f, "| **total peak** | **{}** | |", Bytes(self.peak))?;
        writeln!(
            f,
            "| pool reserve needed (with block headers) | {} | |",
            Bytes(self.peak_reserved)
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| module | parameters | gradients | optimizer state | saved activations | largest work buffer |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for m in &self.modules {
            let name = if m.name.is_empty() {
                "(model)"
            } else {
                &m.name
            };
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} |",
                Bytes(m.params),
                Bytes(m.grads),
                Bytes(m.state),
                Bytes(m.saved),
                Bytes(m.work)
            )?;
        }
        Ok(())
    }
}
