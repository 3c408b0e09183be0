//! train-station: PyTorch-inspired f32 tensors, autograd and training, with a
//! `no_std + alloc` core.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod error;
pub mod kernels;
pub(crate) mod sync;
pub mod tensor;

pub use error::{Error, Result};
pub use kernels::gemm::{Batch, Epilogue, MatMut, MatRef, sgemm, sgemm_batched, sgemm_fused};
#[cfg(feature = "std")]
pub use kernels::threads::{num_threads, set_num_threads};
pub use tensor::{MAX_RANK, Shape};
