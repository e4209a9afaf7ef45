//! The opt-in *flight build*: lays out the code and read-only data of a
//! watch cycle together in the release `fdir` binary.
//!
//! A watch at a 1 s interval wakes on cold caches and TLBs, and each page of
//! its own that a cycle touches costs a miss. `link/cycle.ld` (written by
//! `scripts/cycle-layout.py` from two profiles) lists the functions and the
//! read-only sections of a steady cycle, then the rest of the code a watch
//! runs; passed to the linker, it puts them together, so that a cycle
//! touches few pages and a watch maps little of the code it never runs.
//!
//! The default build does not use it: its CPU gain is below the noise of a
//! shared host, it saves about 1 MiB of resident memory, and its lists go
//! stale as the code changes. `scripts/flight-build.py` builds with it
//! (`FDIR_CYCLE_LAYOUT=1` and rustc's v0 symbol names, which the lists use)
//! and says how many of the lists' patterns still name a function of the
//! binary. A pattern that matches nothing is ignored by the linker: a stale
//! list costs speed, never a build. It is left off with gold or mold, which
//! cannot read it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link/cycle.ld");
    println!("cargo:rerun-if-env-changed=FDIR_CYCLE_LAYOUT");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let wanted = env::var("FDIR_CYCLE_LAYOUT").is_ok_and(|v| v == "1");
    if !linux || !release || !wanted {
        return;
    }
    // gold has no INSERT and mold no SECTIONS: a build that names either
    // (in its flags or as the target's linker) goes without the layout.
    let names_one = |var: &str| env::var(var).is_ok_and(|v| v.contains("gold") || v.contains("mold"));
    if names_one("CARGO_ENCODED_RUSTFLAGS") || names_one("RUSTC_LINKER") {
        println!(
            "cargo:warning=link/cycle.ld is not used with gold or mold (code layout off; see BENCHMARKS.md, the flight build)"
        );
        return;
    }
    let Some(dir) = env::var_os("CARGO_MANIFEST_DIR") else { return };
    let script = PathBuf::from(dir).join("link").join("cycle.ld");
    if script.is_file() {
        println!("cargo:rustc-link-arg-bin=fdir=-T");
        println!("cargo:rustc-link-arg-bin=fdir={}", script.display());
    }
}
