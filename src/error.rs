//! The crate's error type and its one panic helper.
//!
//! Policy (written once, here): every shape-checked operation has a `try_` form
//! returning [`Result`]; the plain form calls it and panics with the same message,
//! reported at the caller's line (`#[track_caller]`). Programs that must not panic (firmware, where a panic is a reset) call
//! the `try_` forms. Decoding files, allocation past a budget and I/O always
//! return `Result`.

use core::fmt;

use crate::limits::MAX_RANK;

/// The dimensions of a shape as an error carries them: inline and compact
/// (sizes above `u32::MAX` are shown as `u32::MAX`), so [`Error`] stays small
/// and reporting never allocates.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dims {
    dims: [u32; MAX_RANK],
    rank: u8,
}

impl Dims {
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// The sizes, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.dims[..self.rank()].iter().map(|&d| d as usize)
    }

    /// The sizes as a `Vec`.
    pub fn to_vec(&self) -> alloc::vec::Vec<usize> {
        self.iter().collect()
    }
}

impl From<&[usize]> for Dims {
    fn from(d: &[usize]) -> Dims {
        let mut out = Dims::default();
        for (o, &v) in out.dims.iter_mut().zip(d) {
            *o = u32::try_from(v).unwrap_or(u32::MAX);
        }
        out.rank = d.len().min(MAX_RANK) as u8;
        out
    }
}

impl PartialEq<[usize]> for Dims {
    fn eq(&self, other: &[usize]) -> bool {
        self.rank() == other.len() && self.iter().zip(other).all(|(a, &b)| a == b)
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Dims {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=[?]}", &self.dims[..self.rank()])
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in this crate. Messages name the operation and
/// the offending shapes or values.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// Two operand shapes do not fit together for `op`.
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Dims,
        /// Shape of the second operand.
        rhs: Dims,
        /// What the operation needed, e.g. "inner dimensions must agree".
        detail: &'static str,
    },
    /// A shape has more dimensions than [`MAX_RANK`].
    RankTooHigh {
        /// The operation.
        op: &'static str,
        /// The rank that was asked for.
        rank: usize,
    },
    /// A dimension argument is outside `-rank..rank`.
    DimOutOfRange {
        /// The operation.
        op: &'static str,
        /// The dimension that was given (negative counts from the end).
        dim: isize,
        /// Rank of the tensor.
        rank: usize,
    },
    /// An index along a dimension is outside `-size..size`.
    IndexOutOfRange {
        /// The operation.
        op: &'static str,
        /// The index that was given.
        index: isize,
        /// Size of the dimension.
        size: usize,
    },
    /// A multi-index has the wrong number of entries.
    WrongIndexCount {
        /// The operation.
        op: &'static str,
        /// Entries given.
        given: usize,
        /// Rank of the tensor.
        rank: usize,
    },
    /// A buffer's length does not match the number of elements of a shape.
    NumelMismatch {
        /// The operation.
        op: &'static str,
        /// Elements the shape holds.
        expected: usize,
        /// Elements that were given.
        got: usize,
    },
    /// A reshape target does not fit the input.
    InvalidReshape {
        /// The operation.
        op: &'static str,
        /// Shape of the input.
        input: Dims,
        /// The requested shape (`-1` marks the inferred dimension).
        target: heapless::Vec<i32, MAX_RANK>,
    },
    /// A strided view would reach memory outside its storage.
    OutOfBounds {
        /// The operation.
        op: &'static str,
        /// One past the highest storage element the view would touch.
        needed: usize,
        /// Elements the storage holds.
        available: usize,
    },
    /// An argument has a value the operation cannot take.
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// Bytes that should encode tensors (a safetensors file, a checkpoint) are
    /// corrupt, truncated or of an unsupported kind.
    Format {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        detail: &'static str,
    },
    /// An I/O operation failed: a file (`std`) or a flash device (`flash`).
    Io {
        /// The operation.
        op: &'static str,
        /// The kind of failure, e.g. "entity not found".
        kind: &'static str,
        /// The OS error code, or 0.
        code: i32,
    },
    /// A state dict does not fit a module: keys are missing, unexpected or of
    /// the wrong shape.
    StateDict {
        /// Keys the module has that the state dict lacks.
        missing: usize,
        /// Keys in the state dict the module does not have.
        unexpected: usize,
        /// Keys whose shapes differ.
        mismatched: usize,
        /// The offending keys (`mis-shaped: a; missing: b, c; ...`).
        #[cfg_attr(feature = "defmt", defmt(Display2Format))]
        keys: alloc::string::String,
    },
    /// A module named in a request (a LoRA target, a module in an adapter
    /// file) does not exist in the model or is not of the kind the request
    /// needs.
    UnknownModule {
        /// The operation.
        op: &'static str,
        /// The name as given (a target pattern or a dotted module path).
        #[cfg_attr(feature = "defmt", defmt(Display2Format))]
        name: alloc::string::String,
        /// What was needed, e.g. "no Linear layer has this name".
        detail: &'static str,
    },
    /// The memory pool's byte budget (or the system allocator) refused an
    /// allocation.
    OutOfMemory {
        /// Bytes asked for.
        requested: usize,
        /// Bytes the pool held from the system at the time.
        reserved: usize,
        /// The budget in force (`usize::MAX` when none).
        budget: usize,
    },
    /// A memory plan does not fit the pool's budget: the training run
    /// should not start (see `nn::plan::MemoryPlan::check_budget`).
    PlanExceedsBudget {
        /// Bytes the plan needs the pool to reserve at its peak.
        planned: usize,
        /// The budget in force.
        budget: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch {
                op,
                lhs,
                rhs,
                detail,
            } => {
                write!(f, "{op}: shapes {lhs} and {rhs} do not match")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            Error::RankTooHigh { op, rank } => write!(
                f,
                "{op}: rank {rank} exceeds the maximum of {MAX_RANK} dimensions"
            ),
            Error::DimOutOfRange { op, dim, rank } => write!(
                f,
                "{op}: dimension {dim} is out of range for a tensor of rank {rank}"
            ),
            Error::IndexOutOfRange { op, index, size } => write!(
                f,
                "{op}: index {index} is out of range for a dimension of size {size}"
            ),
            Error::WrongIndexCount { op, given, rank } => {
                write!(f, "{op}: {given} indices given for a tensor of rank {rank}")
            }
            Error::NumelMismatch { op, expected, got } => {
                write!(
                    f,
                    "{op}: the shape holds {expected} elements but {got} were given"
                )
            }
            Error::InvalidReshape { op, input, target } => {
                write!(
                    f,
                    "{op}: cannot reshape a tensor of shape {input} ({} elements) into [",
                    input.iter().product::<usize>()
                )?;
                for (i, d) in target.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
            Error::OutOfBounds {
                op,
                needed,
                available,
            } => write!(
                f,
                "{op}: the view reaches storage element {} but the storage holds {available}",
                needed.saturating_sub(1)
            ),
            Error::InvalidArgument { op, detail } => write!(f, "{op}: {detail}"),
            Error::StateDict {
                missing,
                unexpected,
                mismatched,
                keys,
            } => write!(
                f,
                "load_state_dict: {missing} missing, {unexpected} unexpected and {mismatched} mis-shaped keys ({keys})"
            ),
            Error::Format { op, detail } => write!(f, "{op}: invalid data: {detail}"),
            Error::UnknownModule { op, name, detail } => write!(f, "{op}: `{name}`: {detail}"),
            Error::Io { op, kind, code } => {
                write!(f, "{op}: I/O error: {kind}")?;
                if *code != 0 {
                    write!(f, " (os error {code})")?;
                }
                Ok(())
            }
            Error::OutOfMemory {
                requested,
                reserved,
                budget,
            } => {
                write!(
                    f,
                    "out of memory: cannot allocate {requested} bytes ({reserved} bytes reserved"
                )?;
                if *budget != usize::MAX {
                    write!(f, ", budget {budget} bytes")?;
                }
                f.write_str(")")
            }
            Error::PlanExceedsBudget { planned, budget } => write!(
                f,
                "memory plan exceeds the budget: one training step needs {planned} bytes \
                 (pool reserve at its peak), the budget is {budget} bytes"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Returns the value or panics with the error's message, reported at the caller.
///
/// The plain (non-`try_`) form of every fallible operation goes through here.
#[track_caller]
#[inline]
pub(crate) fn unwrap<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(&e),
    }
}

#[track_caller]
#[cold]
#[inline(never)]
fn fail(e: &Error) -> ! {
    panic!("{e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small enough that callers' `Result`s stay cheap (clippy's
    /// `result_large_err` threshold is 128 bytes).
    #[test]
    fn error_is_small() {
        assert!(
            core::mem::size_of::<Error>() <= 128,
            "{}",
            core::mem::size_of::<Error>()
        );
    }

    #[test]
    fn dims_print_like_shapes() {
        let d = Dims::from(&[2usize, 3, 4][..]);
        assert_eq!(alloc::format!("{d}"), "[2, 3, 4]");
        assert!(d == [2usize, 3, 4][..]);
        assert_eq!(
            Dims::from(&[usize::MAX][..]).to_vec(),
            alloc::vec![u32::MAX as usize]
        );
    }
}
