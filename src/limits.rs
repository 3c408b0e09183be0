//! The crate's size limits. Constants only, importing nothing from the crate,
//! so the bottom layers (`error`) and the layers above (`tensor`, re-exported
//! as `tensor::MAX_RANK` and `tensor::MAX_NUMEL`) share them without an
//! import circle.

/// Highest rank a tensor can have. Shapes and strides live inline in the tensor,
/// so this bounds the metadata size; asking for more is
/// [`Error::RankTooHigh`](crate::error::Error::RankTooHigh).
pub const MAX_RANK: usize = 8;

/// Most elements a shape may hold: `isize::MAX`, as PyTorch bounds `numel`
/// by `int64` (zero dimensions count as 1 here; see
/// [`Shape`](crate::tensor::Shape)). Element counts and contiguous strides of
/// any [`Shape`](crate::tensor::Shape) therefore never overflow `usize` (byte
/// sizes are checked where memory is allocated).
pub const MAX_NUMEL: usize = isize::MAX as usize;
