//! Portable path: blocking and entry point for the one-lane [`Scalar`] type.
//!
//! Scratch per call is at most `(64 + 4 + 4) * 128` floats (36 KiB, when B
//! or A must be packed), usually `8 * 128` (edge panels only).

use super::driver::{Arch, Blocking, Plan, Problem, run_task};
use super::simd::Scalar;
use crate::kernels::Isa;

/// Micro-tile: 4 x 4.
const MR: usize = 4;
const NV: usize = 4;

impl Arch for Scalar {
    const ISA: Isa = Isa::Scalar;
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV,
        kc: 128,
        mc: 64,
        nc: 64,
        // No vector loads to align: row-major B is always read in place,
        // which also keeps the scratch small on boards.
        pack_b_min: usize::MAX,
        direct_b_max: usize::MAX,
        fuse_b_max: 0,
    };
    // Small fixed blocks: the reference path, and the one boards fall back to.
    const TUNED: bool = false;

    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
        run_task::<Scalar, MR, NV>(self, p, plan, task, scratch)
    }
}
