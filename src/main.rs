//! `fdir`: snapshot, check and watch the isolation state of processes and of
//! the node. See `fdir --help` and docs/cli.md.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
