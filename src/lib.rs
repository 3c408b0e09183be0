//! train-station: PyTorch-inspired f32 tensors, autograd and training, with a
//! `no_std + alloc` core.
//!
//! The same API trains models on x86_64 servers and runs inference and
//! fine-tuning on ARM64 boards, down to bare metal with a fixed heap.
//!
//! ```
//! use train_station::Tensor;
//!
//! let x = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
//! let w = Tensor::ones([3]).with_requires_grad();
//! let y = (&x.t().contiguous().t() * &w).sum(); // views, broadcasting, autograd
//! y.backward();
//! assert_eq!(w.grad().unwrap().to_vec(), vec![3.0, 5.0, 7.0]);
//! println!("{x}"); // tensor([[0., 1., 2.],
//!                  //         [3., 4., 5.]])
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | thread-local memory pools with a background trimmer, per-thread no-grad state, runtime CPU detection, multi-threaded kernels, file I/O |
//! | `mpi` | no | `distributed`: data-parallel training over MPI (`DistributedDataParallel`), through the `mpi` crate; needs an MPI library and libclang to build |
//! | `flash` | no | power-loss-safe A/B checkpoints on NOR flash through `embedded-storage` (`io::flash`) |
//! | `defmt` | no | `defmt::Format` for [`Error`], [`Shape`], [`Tensor`] and the pool statistics, for embedded logging |
//!
//! Without `std` the crate needs only `alloc` and a global allocator; locks are
//! spin locks, kernels are chosen at compile time from `target_feature`, and the
//! memory pool can be given a fixed byte budget
//! ([`tensor::pool::set_budget`]).
//!
//! # Targets
//!
//! Tested on `x86_64-unknown-linux-gnu` (AVX-512, AVX2 and scalar kernel paths)
//! and `aarch64-unknown-linux-gnu` (NEON, under qemu); built for
//! `aarch64-unknown-none` and `thumbv7em-none-eabihf`, and run as bare-metal
//! firmware under `qemu-system-aarch64` (see `boards/`). Minimum Rust: 1.89.
//!
//! # Errors and panics
//!
//! Every operation that checks shapes or indices has a `try_` form returning
//! [`Result`]; the plain form panics with the same message (naming the
//! operation and the shapes). On a board, where a panic is a reset, call the
//! `try_` forms.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod autograd;
pub mod data;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod error;
pub mod io;
pub mod kernels;
pub(crate) mod limits;
pub(crate) mod math;
pub mod nn;
pub(crate) mod ops;
pub mod optim;
#[doc(hidden)] // documented where it is public: `tensor::pool`
pub mod pool;
pub(crate) mod sort;
pub(crate) mod sync;
pub mod tensor;

pub use autograd::{NoGradGuard, is_grad_enabled, no_grad};

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
pub use error::{Dims, Error, Result};
pub use kernels::gemm::{Batch, Epilogue, MatMut, MatRef, sgemm, sgemm_batched, sgemm_fused};
#[cfg(feature = "std")]
pub use kernels::threads::{num_threads, set_num_threads};
pub use tensor::{
    CollectTensor, Dim, Generator, MAX_NUMEL, MAX_RANK, ReshapeDims, Shape, Tensor, manual_seed,
};
