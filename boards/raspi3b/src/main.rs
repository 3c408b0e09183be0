//! train-station on a Raspberry Pi 3B as QEMU models it (`-M raspi3b`, four
//! Cortex-A53, 1 GiB), bare metal: the board job of `board_app::run` (the
//! digits MLP fine-tuned on rotated digits inside a 512 KiB pool budget,
//! checkpointed to a RAM-backed A/B flash and reloaded). Exits with the
//! verdict through semihosting. Everything but the linker script and this
//! file is shared: start-up (EL3 -> EL1, cores 1-3 parked), vectors, the 1 MiB
//! heap and exit codes are in `aarch64-rt-boards`.
//!
//! ```text
//! cargo run -p raspi3b --target aarch64-unknown-none --release
//! ```
#![no_std]
#![no_main]

use aarch64_rt_boards as rt;

use board_app::{Config, data};
use rt::println;
use train_station::io::flash::{AbFlash, RamFlash};

/// Pool budget of the fine-tune.
const BUDGET: usize = 512 * 1024;
/// Bytes of each A/B flash slot (the checkpoint is ~76 KB).
const SLOT: u32 = 96 * 1024;

/// Called by the start-up code on core 0, at EL1, once FP/SIMD, the stack and
/// `.bss` are ready.
#[unsafe(no_mangle)]
extern "C" fn rust_main() -> ! {
    let mut flash = match AbFlash::new(RamFlash::<16, 4096>::new(2 * SLOT as usize), 0, SLOT) {
        Ok(f) => f,
        Err(e) => {
            println!("raspi3b: flash model: {e}");
            rt::exit(rt::EXIT_FAILURE)
        }
    };
    let report = board_app::run(
        &Config::new("raspi3b", data::MLP, BUDGET),
        &mut flash,
        &mut rt::Out,
    );
    let (stack, overflow) = rt::stack_used();
    if overflow {
        println!("raspi3b: FAIL: stack overflow");
        rt::exit(rt::EXIT_STACK_OVERFLOW);
    }
    println!(
        "raspi3b: stack {stack} of {} B, heap {} KiB",
        rt::STACK_SIZE,
        rt::HEAP_SIZE / 1024
    );
    rt::exit(report.exit_code())
}
