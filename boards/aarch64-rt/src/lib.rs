//! Minimal run time shared by the aarch64 bare-metal boards (QEMU `virt`,
//! QEMU `raspi3b`): start-up code, exception vectors, the global allocator,
//! the panic handler, output and exit. A board crate adds its linker script
//! (which places `.text.boot` at the load address and the `.stack` section
//! right below it) and a `rust_main` entry point.
//!
//! Start-up works from EL3 (raspi3b ELF boot), EL2 (a Pi `kernel8.img`) or EL1
//! (`virt`): it drops to EL1, turns FP/SIMD on, installs the vectors, zeroes
//! `.bss`, paints the stack and calls `rust_main` on core 0; other cores park
//! in `wfi`.
//!
//! Exit codes (semihosting `SYS_EXIT_EXTENDED`, which QEMU returns as its own
//! exit status): 0 checks passed, 1 a check failed, 101 panic, 102 CPU
//! exception, 103 stack overflow. `timeout` in the runner catches a hang
//! (exit 124).
//!
//! Not for real boards as is: with the MMU off all memory is Device-type, where
//! the exclusive loads/stores of the allocator's spin lock and unaligned
//! accesses may fault. A board crate sets up an identity map and enables the
//! MMU and caches first (e.g. with the `aarch64-rt` crate).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub use semihosting::{print, println};

use core::panic::PanicInfo;

/// Bytes of RAM given to the global allocator (a static array in `.bss`).
pub const HEAP_SIZE: usize = 1024 * 1024;

/// Bytes of stack (placed below the image by link.ld).
pub const STACK_SIZE: usize = 256 * 1024;

/// Word the start-up code writes over the whole stack; [`stack_used`] looks for
/// the lowest word that no longer holds it.
const STACK_PAINT: u64 = 0x5354_4143_4b5f_5041; // "STACK_PA"

/// A check failed.
pub const EXIT_FAILURE: i32 = 1;
const EXIT_PANIC: i32 = 101;
const EXIT_EXCEPTION: i32 = 102;
/// The stack overflowed.
pub const EXIT_STACK_OVERFLOW: i32 = 103;

// Start-up, in assembly because nothing in Rust may run before FP/SIMD is on
// (the compiler uses NEON registers freely; the first use traps otherwise, and
// with no vector table that is a silent hang).
core::arch::global_asm!(
    ".section .text.boot, \"ax\"",
    ".global _start",
    "_start:",
    // Only core 0 runs; the others (raspi3b starts all 4 on an ELF) sleep.
    // `wfi`, not `wfe`: QEMU runs WFE as a yield, so parked cores would spin.
    "  mrs x1, mpidr_el1",
    "  and x1, x1, #0xff",
    "  cbnz x1, 9f",
    // EL3 (raspi3b ELF boot): no FP traps, lower levels AArch64 and
    // non-secure, then drop to EL2h with DAIF masked.
    "  mrs x0, CurrentEL",
    "  cmp x0, #(3 << 2)",
    "  b.ne 1f",
    "  msr cptr_el3, xzr",
    "  mov x0, #0x5b1",
    "  msr scr_el3, x0",
    "  mov x0, #0x3c9",
    "  msr spsr_el3, x0",
    "  adr x0, 1f",
    "  msr elr_el3, x0",
    "  eret",
    // EL2: no FP traps (TFP = 0), EL1 is AArch64 and may read the counter;
    // drop to EL1h with DAIF masked.
    "1: mrs x0, CurrentEL",
    "  cmp x0, #(2 << 2)",
    "  b.ne 2f",
    "  mov x0, #0x33ff",
    "  msr cptr_el2, x0",
    "  mov x0, #(1 << 31)",
    "  msr hcr_el2, x0",
    "  mov x0, #3",
    "  msr cnthctl_el2, x0",
    "  msr cntvoff_el2, xzr",
    "  mov x0, #0x3c5",
    "  msr spsr_el2, x0",
    "  adr x0, 2f",
    "  msr elr_el2, x0",
    "  eret",
    // EL1: CPACR_EL1.FPEN = 0b11 (no FP/SIMD traps) before any Rust code,
    // which uses NEON registers freely.
    "2: mov x0, #(3 << 20)",
    "  msr cpacr_el1, x0",
    // Exception vectors, so a fault reports and exits instead of hanging.
    "  ldr x0, =__vectors",
    "  msr vbar_el1, x0",
    "  isb",
    "  ldr x0, =__stack_top",
    "  mov sp, x0",
    // Zero .bss (16-byte aligned bounds, see link.ld).
    "  ldr x0, =__bss_start",
    "  ldr x1, =__bss_end",
    "3: cmp x0, x1",
    "  b.hs 4f",
    "  stp xzr, xzr, [x0], #16",
    "  b 3b",
    // Paint the stack (nothing is on it yet) for the high-water mark.
    "4: ldr x0, =__stack_bottom",
    "  ldr x1, =__stack_top",
    "  ldr x2, ={paint}",
    "5: cmp x0, x1",
    "  b.hs 6f",
    "  stp x2, x2, [x0], #16",
    "  b 5b",
    "6: bl rust_main",
    "9: wfi",
    "  b 9b",
    // The stack: reserved here so its size is a Rust constant; link.ld places it.
    ".section .stack, \"aw\", %nobits",
    ".balign 16",
    ".space {stack_size}",
    // 16 entries of 128 bytes, table aligned to 2 KiB: each passes its index
    // (0-3 current EL with SP_EL0, 4-7 current EL with SP_ELx, 8-15 lower EL;
    // within each group: synchronous, IRQ, FIQ, SError).
    ".section .text.vectors, \"ax\"",
    ".balign 2048",
    ".global __vectors",
    "__vectors:",
    ".irp idx, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    "  .balign 128",
    "  mov x0, #\\idx",
    "  b rust_exception",
    ".endr",
    paint = const STACK_PAINT,
    stack_size = const STACK_SIZE,
);

unsafe extern "C" {
    static __stack_bottom: u64;
    static __stack_top: u64;
}

/// Ends the program: QEMU exits with `code`.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Bytes of stack used so far (high-water mark), and whether the paint at the
/// very bottom was overwritten (the stack overflowed, or came within 8 bytes).
pub fn stack_used() -> (usize, bool) {
    let bottom = (&raw const __stack_bottom).cast::<u64>();
    let top = (&raw const __stack_top).cast::<u64>();
    // SAFETY: both are linker symbols delimiting one region (link.ld), top >= bottom.
    let words = unsafe { top.offset_from(bottom) } as usize;
    let mut untouched = 0;
    while untouched < words {
        // SAFETY: `bottom + untouched` lies inside the stack region, which is RAM,
        // 8-byte aligned and always mapped (MMU off). Volatile: the compiler must
        // not assume anything about memory that the stack pointer wrote.
        let w = unsafe { bottom.add(untouched).read_volatile() };
        if w != STACK_PAINT {
            break;
        }
        untouched += 1;
    }
    ((words - untouched) * 8, untouched == 0)
}

static mut HEAP: [u8; HEAP_SIZE] = [0; HEAP_SIZE];

#[global_allocator]
static ALLOCATOR: talc::TalcLock<spin::Mutex<()>, talc::source::Claim> = talc::TalcLock::new(
    // SAFETY: `HEAP` is referenced nowhere else, so the allocator has exclusive
    // use of it for the whole program, as `Talc::claim` requires.
    unsafe { talc::source::Claim::array(&raw mut HEAP) },
);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    semihosting::eprintln!("PANIC: {info}");
    exit(EXIT_PANIC)
}

/// Entered from the vector table with the entry's index. Prints the syndrome
/// and the faulting address, then exits.
#[unsafe(no_mangle)]
extern "C" fn rust_exception(vector: u64) -> ! {
    let (esr, elr, far): (u64, u64, u64);
    // SAFETY: reading EL1 system registers at EL1 has no side effects.
    unsafe {
        core::arch::asm!(
            "mrs {esr}, esr_el1",
            "mrs {elr}, elr_el1",
            "mrs {far}, far_el1",
            esr = out(reg) esr,
            elr = out(reg) elr,
            far = out(reg) far,
            options(nomem, nostack, preserves_flags),
        );
    }
    semihosting::eprintln!(
        "EXCEPTION: vector {vector} esr_el1={esr:#x} (class {:#x}) elr_el1={elr:#x} far_el1={far:#x}",
        esr >> 26
    );
    exit(EXIT_EXCEPTION)
}

/// Semihosting standard output as a [`core::fmt::Write`] (what
/// `board_app::run` prints to).
pub struct Out;

impl core::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        print!("{s}");
        Ok(())
    }
}
