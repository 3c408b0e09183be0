//! Minimal run time for QEMU `virt` at EL1 (MMU off, one core): start-up code,
//! exception vectors, the global allocator, the panic handler and exit.
//!
//! Exit codes (semihosting `SYS_EXIT_EXTENDED`, which QEMU returns as its own
//! exit status): 0 checks passed, 1 a check failed, 101 panic, 102 CPU
//! exception, 103 stack overflow. `timeout` in the cargo runner catches a hang
//! (exit 124).
//!
//! Not for real boards as is: with the MMU off all memory is Device-type, where
//! the exclusive loads/stores of the allocator's spin lock and unaligned
//! accesses may fault. A board crate sets up an identity map and enables the
//! MMU and caches first (e.g. with the `aarch64-rt` crate).

use core::panic::PanicInfo;

/// Bytes of RAM given to the global allocator (a static array in `.bss`).
pub const HEAP_SIZE: usize = 1024 * 1024;

/// Bytes of stack (placed below the image by link.ld).
pub const STACK_SIZE: usize = 256 * 1024;

/// Word the start-up code writes over the whole stack; [`stack_used`] looks for
/// the lowest word that no longer holds it.
const STACK_PAINT: u64 = 0x5354_4143_4b5f_5041; // "STACK_PA"

pub const EXIT_FAILURE: i32 = 1;
const EXIT_PANIC: i32 = 101;
const EXIT_EXCEPTION: i32 = 102;
pub const EXIT_STACK_OVERFLOW: i32 = 103;

// Start-up, in assembly because nothing in Rust may run before FP/SIMD is on
// (the compiler uses NEON registers freely; the first use traps otherwise, and
// with no vector table that is a silent hang).
core::arch::global_asm!(
    ".section .text.boot, \"ax\"",
    ".global _start",
    "_start:",
    // Only core 0 runs; others (with -smp N) sleep.
    "  mrs x0, mpidr_el1",
    "  and x0, x0, #0xff",
    "  cbnz x0, 9f",
    // CPACR_EL1.FPEN = 0b11: no FP/SIMD traps at EL1/EL0.
    "  mov x0, #(3 << 20)",
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
    "1: cmp x0, x1",
    "  b.hs 2f",
    "  stp xzr, xzr, [x0], #16",
    "  b 1b",
    // Paint the stack (nothing is on it yet) for the high-water mark.
    "2: ldr x0, =__stack_bottom",
    "  ldr x1, =__stack_top",
    "  ldr x2, ={paint}",
    "3: cmp x0, x1",
    "  b.hs 4f",
    "  stp x2, x2, [x0], #16",
    "  b 3b",
    "4: bl rust_main",
    "9: wfe",
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
