//! Portable path: blocking and entry point for the one-lane [`Scalar`] type.

use super::driver::{Arch, Blocking, Plan, Problem, run_task};
use super::simd::Scalar;

/// Micro-tile: 4 x 4.
const MR: usize = 4;
const NV: usize = 4;

impl Arch for Scalar {
    const BLOCKING: Blocking = Blocking {
        mr: MR,
        nr: NV,
        kc: 256,
        mc: 256,
        nc: 256,
    };

    fn run(self, p: &Problem<'_>, plan: &Plan, task: usize, scratch: &mut [f32]) {
        run_task::<Scalar, MR, NV>(self, p, plan, task, scratch)
    }
}
