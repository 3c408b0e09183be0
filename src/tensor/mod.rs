//! Tensors: storage, memory pool, layout, views, constructors, iterators.

mod shape;

pub use shape::{MAX_RANK, Shape};
