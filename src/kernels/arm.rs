//! 32-bit Arm with a hardware FPU (`eabihf` targets: Cortex-M4F, M7, M33,
//! and the Armv7-A boards): the single-precision square root in one
//! instruction.
//!
//! `libm::sqrtf` computes the root in software on these targets (`libm`
//! maps it to an instruction only on x86 and aarch64): on the Cortex-M4
//! about 117 instructions a call (QEMU's count), most of Adam's update per
//! parameter. Every VFP version has `vsqrt.f32`, correctly rounded as IEEE
//! 754 requires, so the result has the bits of `libm`'s.

/// The correctly rounded square root of `x` (`vsqrt.f32`).
#[inline]
pub(crate) fn sqrtf(x: f32) -> f32 {
    let r: u32;
    // SAFETY: the block moves `x` through `s0` (saved on the stack and
    // restored, since Rust names VFP registers only with the `vfp2` feature,
    // which single-precision FPUs lack) and reads and writes no other memory;
    // `vsqrt.f32` exists on every FPU an `eabihf` target has.
    unsafe {
        core::arch::asm!(
            "vpush {{s0}}",
            "vmov s0, {x}",
            "vsqrt.f32 s0, s0",
            "vmov {r}, s0",
            "vpop {{s0}}",
            x = in(reg) x.to_bits(),
            r = lateout(reg) r,
            options(pure, nomem, preserves_flags),
        )
    };
    f32::from_bits(r)
}
