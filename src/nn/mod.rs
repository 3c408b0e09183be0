//! Neural-network building blocks: the [`Module`] trait, layers, activation
//! modules, containers and initialisers, named and initialised as in
//! `torch.nn`.

mod activation;
pub mod init;
mod linear;
pub mod loss;
pub(crate) mod module;
mod sequential;

pub use activation::{Flatten, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh};
pub use linear::Linear;
pub use loss::Reduction;
pub use module::{Module, StateDictReport};
pub use sequential::Sequential;
