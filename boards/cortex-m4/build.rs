//! Puts memory.x on the linker's search path and passes cortex-m-rt's
//! `link.x` (and `defmt.x` with the `defmt` feature) to the binary only.

use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    if target != "thumbv7em-none-eabihf" {
        eprintln!(
            "error: cortex-m4 is bare-metal firmware; build it with \
             `--target thumbv7em-none-eabihf` (not `{target}`)"
        );
        std::process::exit(1);
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
}
