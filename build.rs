//! Tells the library whether it is built without optimisation: under
//! `opt-level = 0` it sets `cfg(ts_unoptimized)`, which keeps the GEMM tile
//! loops as loops (see `unrolled!` in `src/kernels/gemm/kernel.rs`). Keyed on
//! the optimisation level, not on debug assertions, so that an optimised
//! build with assertions (CI's `test-opt` profile) runs the same code as a
//! release build.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(ts_unoptimized)");
    println!("cargo::rerun-if-changed=build.rs");
    // Cargo sets OPT_LEVEL to the profile's level for this package: "0".."3",
    // "s" or "z".
    if std::env::var("OPT_LEVEL").is_ok_and(|level| level == "0") {
        println!("cargo::rustc-cfg=ts_unoptimized");
    }
}
