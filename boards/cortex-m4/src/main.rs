//! train-station on an STM32F405 (Cortex-M4F) as QEMU's `netduinoplus2`
//! models it: the board job of `board_app::run` with the 64-32-10 digits MLP
//! (inference and a last-layer fine-tune on rotated digits), checkpointed to a
//! RAM-backed A/B flash model and reloaded, in at most 128 KiB of RAM and
//! 256 KiB of flash (memory.x, issue 12's target).
//! QEMU's flash model of this chip cannot be programmed (no flash
//! controller), so the A/B slots live in RAM.
//!
//! Output is semihosting text, or defmt frames (feature `defmt`) for
//! `defmt-print`. Exit status (semihosting): the job's verdict (0 pass, 1
//! fail), 101 panic (printed without its message: see the panic handler),
//! 102 HardFault, 103 stack overflow (the painted stack's bottom word was
//! overwritten).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use core::fmt::Write;

use board_app::{Config, data};
use cortex_m as _; // the critical-section implementation
use cortex_m_rt::{ExceptionFrame, entry, exception};
use embedded_alloc::LlffHeap;
use train_station::io::flash::{AbFlash, RamFlash};

/// Heap for the pool, the flash model and the checkpoint buffers.
const HEAP_SIZE: usize = 108 * 1024;
/// Pool budget of the fine-tune.
const BUDGET: usize = 40 * 1024;
/// Bytes of each A/B flash slot (2 KiB pages).
const SLOT: u32 = 14 * 1024;
/// What cortex-m-rt's `paint-stack` writes over the stack at reset.
const PAINT: u32 = 0xCCCC_CCCC;

const EXIT_PANIC: i32 = 101;
const EXIT_HARDFAULT: i32 = 102;
const EXIT_STACK_OVERFLOW: i32 = 103;

#[global_allocator]
static HEAP: LlffHeap = LlffHeap::empty();

unsafe extern "C" {
    /// cortex-m-rt: the lowest stack address (end of .bss/.uninit).
    static _stack_end: u32;
    /// cortex-m-rt: the initial stack pointer (top of RAM).
    static _stack_start: u32;
}

/// Bytes of stack used (high-water mark), bytes available, and whether the
/// bottom word's paint is gone (overflow).
fn stack_used() -> (usize, usize, bool) {
    let bottom = (&raw const _stack_end) as usize;
    let top = (&raw const _stack_start) as usize;
    let mut p = bottom;
    // SAFETY: bottom..top is the stack region in RAM, word-aligned; volatile
    // because the compiler cannot know what the stack pointer wrote there.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (top - p, top - bottom, p == bottom)
}

fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// The job's output: semihosting text, or one defmt frame per line.
struct Out {
    #[cfg(feature = "defmt")]
    line: alloc::string::String,
}

impl Write for Out {
    #[cfg(not(feature = "defmt"))]
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        semihosting::print!("{s}");
        Ok(())
    }

    #[cfg(feature = "defmt")]
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for part in s.split_inclusive('\n') {
            match part.strip_suffix('\n') {
                Some(end) => {
                    self.line.push_str(end);
                    defmt::info!("{=str}", self.line.as_str());
                    self.line.clear();
                }
                None => self.line.push_str(part),
            }
        }
        Ok(())
    }
}

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

#[entry]
fn main() -> ! {
    // SAFETY: called once, before any allocation.
    unsafe {
        embedded_alloc::init!(HEAP, HEAP_SIZE);
    }
    let mut out = Out {
        #[cfg(feature = "defmt")]
        line: alloc::string::String::new(),
    };
    let mut flash = match AbFlash::new(RamFlash::<4, 2048>::new(2 * SLOT as usize), 0, SLOT) {
        Ok(f) => f,
        Err(e) => {
            say!(out, "cortex-m4: flash model: {e}");
            exit(1)
        }
    };
    let mut cfg = Config::new("cortex-m4", data::MLP_SMALL, BUDGET);
    cfg.batch = 16;
    let report = board_app::run(&cfg, &mut flash, &mut out);
    let (used, room, overflow) = stack_used();
    say!(
        out,
        "cortex-m4: stack {used} of {room} B, heap {} of {HEAP_SIZE} B in use at exit",
        HEAP.used()
    );
    if overflow {
        say!(out, "cortex-m4: FAIL: stack overflow");
        exit(EXIT_STACK_OVERFLOW);
    }
    exit(report.exit_code())
}

// The panic handlers do not look at the `PanicInfo`: when nothing reads it,
// link-time optimisation drops the message and location every panic site
// builds, about 32 KB of this flash (even reading only the location keeps
// them). To see where a panic comes from, run the same job on the host
// (`cargo test -p board-app`) or on the aarch64 boards, whose handlers print
// the message, or break on `rust_begin_unwind` in gdb (`qemu-system-arm ...
// -s -S`, then `arm-none-eabi-gdb` / `gdb-multiarch` on the ELF).

#[cfg(not(feature = "defmt"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    semihosting::eprintln!("PANIC (the message is not kept on this board)");
    exit(EXIT_PANIC)
}

#[cfg(feature = "defmt")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic (the message is not kept on this board)");
    exit(EXIT_PANIC)
}

#[cfg(feature = "defmt")]
use defmt_semihosting as _;

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    semihosting::eprintln!("HARDFAULT: {ef:?}");
    exit(EXIT_HARDFAULT)
}
