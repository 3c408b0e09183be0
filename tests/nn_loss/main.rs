//! Loss functions: PyTorch fixtures (every loss x reduction x option, values
//! and gradients w.r.t. input, target and weight where PyTorch defines them),
//! finite differences on contiguous inputs and views, view equivalence,
//! extreme values and error messages.
//!
//! Modules: `fixtures` (PyTorch's values and gradients), `gradcheck`,
//! `structure` (the recorded graph, definitions, views), `extremes` and
//! `errors`. This file holds the helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod extremes;
mod fixtures;
mod gradcheck;
mod structure;

use train_station::Tensor;
use train_station::nn::loss::Reduction;

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}
