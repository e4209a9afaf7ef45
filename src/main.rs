//! `fdir`: snapshot, check and watch the isolation state of processes and of
//! the node. See `fdir --help` and docs/cli.md.

// The I/O boundary, as in src/lib.rs: file access only in the modules that
// src/cli.rs allows it in (ARCHITECTURE.md, "Modules that touch files").
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
