//! x86_64 kernel tables: AVX2 + FMA and AVX-512F + FMA, chosen at run time
//! (under `std`) or by `cfg(target_feature)` (without `std`) in `kernels/mod.rs`.

pub(crate) mod avx2;
pub(crate) mod avx512;
