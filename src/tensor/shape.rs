//! `Shape`: the dimensions of a tensor, held inline (no heap).

use core::fmt;

/// Highest rank a tensor can have. Shapes and strides live inline in the tensor,
/// so this bounds the metadata size; asking for more is [`crate::Error::RankTooHigh`].
pub const MAX_RANK: usize = 8;

/// The dimensions of a tensor, outermost first. Held inline (no allocation).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Shape(heapless::Vec<usize, MAX_RANK>);

impl Shape {
    /// Dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Shape {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=[?]}", self.dims())
    }
}
