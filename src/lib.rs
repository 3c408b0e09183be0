//! train-station: PyTorch-inspired f32 tensors, autograd and training, with a
//! `no_std + alloc` core.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
// `Error` carries both offending shapes inline so that reporting an error never
// allocates (a board that ran out of memory can still say why). That makes it
// larger than clippy's default; `Result<Tensor>` is about as large anyway.
#![allow(clippy::result_large_err)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod autograd;
pub mod error;
pub mod kernels;
pub(crate) mod ops;
pub(crate) mod sync;
pub mod tensor;

pub use autograd::{NoGradGuard, is_grad_enabled, no_grad};
pub use error::{Error, Result};
pub use tensor::{
    CollectTensor, Dim, Generator, MAX_RANK, ReshapeDims, Shape, Tensor, manual_seed,
};
