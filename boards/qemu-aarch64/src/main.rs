//! train-station on bare metal: QEMU `virt`, Cortex-A72, no OS, 1 MiB heap.
//!
//! Boots (start-up, heap and exit codes in `aarch64-rt-boards`), runs the
//! library checks of [`run_checks`] (kernel selection, heap, views, pool
//! budget), then the board job of `board_app::run` (the digits MLP
//! fine-tuned on rotated digits, checkpointed to a RAM-backed A/B flash and
//! reloaded), prints through semihosting and exits with the verdict: 0 if
//! everything passed, non-zero otherwise, so CI fails on a wrong result.
//! Run from the repository root:
//!
//! ```text
//! cargo run  -p qemu-aarch64 --target aarch64-unknown-none --release
//! cargo test -p qemu-aarch64 --target aarch64-unknown-none --release   # same program
//! ```
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use aarch64_rt_boards as rt;

use alloc::vec::Vec;

use board_app::{Config, Mode, data};
use rt::{print, println};
use train_station::io::flash::{AbFlash, RamFlash};
use train_station::kernels::{self, Isa};
use train_station::tensor::pool;
use train_station::{Error, Tensor};

/// Pool budget of the fine-tune (half the heap; the rest holds the flash
/// model and checkpoint buffers).
const BUDGET: usize = 512 * 1024;
/// Bytes of each A/B flash slot (the last-layer checkpoint is ~76 KB, the
/// LoRA one ~100 KB).
const SLOT: u32 = 128 * 1024;

/// `r`'s value, or its error printed with `what` and returned as `what`.
fn ok<T>(r: train_station::Result<T>, what: &'static str) -> Result<T, &'static str> {
    r.map_err(|e| {
        println!("{what}: {e}");
        what
    })
}

/// Called by the start-up code once FP/SIMD, the stack and `.bss` are ready.
#[unsafe(no_mangle)]
extern "C" fn rust_main() -> ! {
    let checks = run_checks();
    if let Err(what) = checks {
        println!("qemu-aarch64: FAIL: {what}");
        rt::exit(rt::EXIT_FAILURE)
    }
    println!();
    pool::reset_peak();
    // The last-layer fine-tune, then LoRA adapters on every layer, each
    // with its own flash model; the verdict is the worse of the two.
    let mut code = 0;
    for mode in [Mode::LastLayer, Mode::Lora { rank: 4 }] {
        let mut flash = match AbFlash::new(RamFlash::<16, 4096>::new(2 * SLOT as usize), 0, SLOT) {
            Ok(f) => f,
            Err(e) => {
                println!("qemu-aarch64: flash model: {e}");
                rt::exit(rt::EXIT_FAILURE)
            }
        };
        let mut cfg = Config::new("qemu-aarch64", data::MLP, BUDGET);
        cfg.mode = mode;
        let report = board_app::run(&cfg, &mut flash, &mut rt::Out);
        code = code.max(report.exit_code());
        drop(flash);
        pool::trim();
    }
    let (stack, overflow) = rt::stack_used();
    if overflow {
        println!(
            "FAIL: stack overflow (the stack is {} KiB: raise rt::STACK_SIZE)",
            rt::STACK_SIZE / 1024
        );
        rt::exit(rt::EXIT_STACK_OVERFLOW);
    }
    println!(
        "qemu-aarch64: stack {stack} of {} B, heap {} KiB",
        rt::STACK_SIZE,
        rt::HEAP_SIZE / 1024
    );
    rt::exit(code)
}

/// The checks. A failure is returned as what went wrong; on success the
/// start of the summary line is printed (the caller ends it).
fn run_checks() -> Result<(), &'static str> {
    // Kernel selection without std is fixed at compile time: NEON is part of
    // the aarch64 baseline, x86 paths do not exist here.
    let isa = kernels::isa();
    if isa != Isa::Neon {
        return Err("kernels::isa() is not NEON on aarch64");
    }
    if kernels::force_isa(Isa::Avx2).is_ok() || kernels::force_isa(Isa::Avx512).is_ok() {
        return Err("force_isa accepted an x86 path on aarch64");
    }
    kernels::force_isa(Isa::Scalar).map_err(|_| "force_isa(Scalar) failed")?;
    if kernels::isa() != Isa::Scalar {
        return Err("force_isa(Scalar) did not take effect");
    }
    kernels::force_isa(Isa::Neon).map_err(|_| "force_isa(Neon) failed")?;

    // The fixed heap: a quarter of it in one vector, and refusal past its size.
    let heap_bytes = heap_round_trip()?;

    // The tensor chain, on a 1-D arange seen as m[i][j] = 4i + j, shape [3, 4].
    let a = ok(Tensor::try_arange(0.0, 12.0, 1.0), "arange")?;
    if a.dims() != [12] || a.to_vec() != (0..12u8).map(f32::from).collect::<Vec<_>>() {
        return Err("arange(0, 12, 1) values");
    }
    let m = ok(a.try_reshape([3, 4]), "reshape")?;
    if m.dims() != [3, 4] || m.strides() != [4, 1] || !m.is_contiguous() {
        return Err("reshape [3, 4] layout");
    }
    // t[a][b] = m[b][a] = 4b + a, shape [4, 3], a view.
    let t = ok(m.try_transpose(0, 1), "transpose")?;
    if t.dims() != [4, 3] || t.strides() != [1, 4] || t.is_contiguous() {
        return Err("transpose layout");
    }
    if ok(t.try_get(&[3, 2]), "get")? != 11.0 || ok(t.try_get(&[0, 1]), "get")? != 4.0 {
        return Err("transpose get");
    }
    // Rows 1..3 of t: [[1, 5, 9], [2, 6, 10]].
    let n = ok(t.try_narrow(0, 1, 2), "narrow")?;
    if n.dims() != [2, 3] || n.to_vec() != [1.0, 5.0, 9.0, 2.0, 6.0, 10.0] {
        return Err("narrow(0, 1, 2) values");
    }
    // Column 2 of n: [9, 10].
    let s = ok(n.try_select(1, 2), "select")?;
    if s.dims() != [2] || s.to_vec() != [9.0, 10.0] {
        return Err("select(1, 2) values");
    }
    let c = n.contiguous();
    if !c.is_contiguous() || c.strides() != [3, 1] || c.to_vec() != n.to_vec() {
        return Err("contiguous() of a view");
    }
    let f = ok(
        Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]),
        "from_slice",
    )?;
    if ok(f.try_get(&[1, 2]), "get")? != 6.0 || f.try_get(&[2, 0]).is_ok() {
        return Err("from_slice get");
    }
    // Errors, not panics: on a board a panic is a reset.
    if Tensor::from_slice(&[1.0; 5], [2, 3]).is_ok()
        || t.try_narrow(0, 3, 2).is_ok()
        || n.try_select(1, 3).is_ok()
        || m.try_reshape([5, 2]).is_ok()
    {
        return Err("an invalid argument was accepted");
    }

    // The pool's budget: an allocation past it is an error, and the pool
    // still works once the budget is lifted.
    pool::set_budget(Some(pool::stats().bytes_reserved));
    let over = Tensor::try_zeros([16 * 1024]);
    pool::set_budget(None);
    if !matches!(over, Err(Error::OutOfMemory { .. })) {
        return Err("allocation past the pool budget was not OutOfMemory");
    }
    let big = ok(Tensor::try_full([16 * 1024], 0.5), "full")?;
    if ok(big.try_get(&[16 * 1024 - 1]), "get")? != 0.5 {
        return Err("allocation after lifting the budget");
    }
    drop(big);

    // A loop of fixed shapes reuses freed blocks instead of allocating.
    let before = pool::stats();
    for _ in 0..3 {
        drop(ok(Tensor::try_ones([16, 16]), "ones")?);
    }
    if pool::stats().hits < before.hits + 2 {
        return Err("pool did not reuse a freed block");
    }

    let st = pool::stats();
    if st.peak_bytes_in_use < st.bytes_in_use || st.peak_bytes_in_use < 16 * 1024 * 4 {
        return Err("pool stats: peak below what was allocated");
    }
    print!(
        "qemu-aarch64: isa={isa} select={:?} heap-vec={heap_bytes} B pool: in_use={} peak={} hits={} misses={} ",
        s.to_vec(),
        st.bytes_in_use,
        st.peak_bytes_in_use,
        st.hits,
        st.misses
    );
    Ok(())
}

/// Fills and frees a quarter of the heap, then checks the allocator refuses
/// more than it has (an error, not a crash).
fn heap_round_trip() -> Result<usize, &'static str> {
    let n = rt::HEAP_SIZE / 4 / core::mem::size_of::<f32>();
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| "could not allocate a quarter of the heap")?;
    v.extend((0..n).map(|i| (i % 1000) as f32 * 0.5));
    let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
    // Sum over i < n of (i mod 1000) / 2: `full` whole runs of 0..1000, then
    // 0..rem. Exact in f64 (multiples of 0.5 far below 2^52).
    let (full, rem) = ((n / 1000) as f64, (n % 1000) as f64);
    let want = (full * (999.0 * 1000.0 / 2.0) + rem * (rem - 1.0) / 2.0) / 2.0;
    if sum != want {
        return Err("heap vector sum");
    }
    let bytes = v.len() * core::mem::size_of::<f32>();
    drop(v);
    let mut too_big: Vec<u8> = Vec::new();
    if too_big.try_reserve_exact(rt::HEAP_SIZE + 1).is_ok() {
        return Err("allocator handed out more than the heap");
    }
    Ok(bytes)
}
