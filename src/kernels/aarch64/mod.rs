//! aarch64 kernel table: NEON, part of the baseline (no run-time detection).

#[cfg(target_feature = "neon")]
pub(crate) mod neon;
