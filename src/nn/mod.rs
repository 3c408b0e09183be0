//! Neural-network building blocks: the [`Module`] trait, layers, activation
//! modules, containers and initialisers, named and initialised as in
//! `torch.nn`.

mod activation;
mod attention;
pub mod capture;
mod conv;
mod dropout;
mod embedding;
pub mod init;
mod linear;
mod lora;
pub mod loss;
pub(crate) mod module;
mod norm;
pub mod plan;
mod pool;
mod sequential;
mod upsample;
mod window;

pub use activation::{Flatten, Gelu, Identity, LeakyRelu, Relu, Sigmoid, Silu, Softplus, Tanh};
pub use attention::{
    AttnMask, AttnOptions, MultiheadAttention, MultiheadAttentionOptions,
    scaled_dot_product_attention, try_scaled_dot_product_attention,
};
pub use conv::{Conv1d, Conv2d, ConvOptions, Spatial};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub(crate) use lora::attach_frozen;
pub use lora::{
    Lora, LoraConfig, add_lora, freeze_all_but_last, merge_and_unload_lora, merge_lora,
    train_bias_only, unmerge_lora,
};
pub use loss::Reduction;
pub(crate) use module::check_state_dict;
pub use module::{Module, StateDictReport};
pub use norm::{
    BatchNorm1d, BatchNorm2d, BatchNormOptions, GroupNorm, LayerNorm, LayerNormOptions,
};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, AvgPool2dOptions, MaxPool2d, MaxPool2dOptions};
pub use sequential::Sequential;
pub use upsample::Upsample;
