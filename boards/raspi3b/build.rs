//! Passes the linker script to the firmware binary. Doing it here (not in
//! `.cargo/config.toml` rustflags) keeps it scoped to this crate, so building
//! the whole workspace for aarch64-unknown-none from the repository root works
//! and the library is not linked with it.

use std::{env, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    if target != "aarch64-unknown-none" {
        eprintln!(
            "error: raspi3b is bare-metal firmware; build it with \
             `--target aarch64-unknown-none` (not `{target}`)"
        );
        std::process::exit(1);
    }
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rustc-link-search={}", dir.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.ld");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
