//! The `fdir` command line: argument parsing, the commands, their output.

pub mod args;
// Touches files: its floors read the same files without fdir, to compare.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod bench;
// Touches files: it makes the real changes it times (a test cgroup, a mount).
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod bench_triggers;
pub mod objects;
pub mod output;
// Touches files: whether the baseline file exists and its directory is writable.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod run;
pub mod selftest;
pub mod signals;
// Touches files: whether the baseline file exists.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use args::{Cli, Command};

/// The log level from `RUST_LOG`: a level (`debug`), or directives of which
/// the most verbose level counts (`fdir=debug,warn` → debug); `warn` when
/// unset. (A full directive filter would cost a regex engine in a monitor
/// whose memory is budgeted.)
fn log_level() -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    let Ok(spec) = std::env::var("RUST_LOG") else { return LevelFilter::WARN };
    spec.split(',')
        .filter_map(|d| d.rsplit('=').next())
        .filter_map(|level| level.trim().parse::<LevelFilter>().ok())
        .max()
        .unwrap_or(LevelFilter::WARN)
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(log_level())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Raises the open-file soft limit to the hard limit: every watched process
/// holds a pinned /proc directory.
fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
            tracing::debug!("cannot raise the open-file limit: {e}");
        }
    }
}

/// How far the heap grows at a time in a one-shot `check` or `snapshot`.
#[cfg(target_env = "gnu")]
const ONE_SHOT_HEAP_STEP: libc::c_int = 16 << 20;

/// A one-shot command over many processes allocates a few megabytes on
/// every core: grown a page at a time, each worker's heap costs an
/// `mprotect` per page (about 850 of them in `check --all` of 500
/// processes, each taking the address-space lock its twin's page faults
/// wait on). Grown in large steps instead; pages are still only resident
/// once touched, and the process ends soon after. Not for `watch`, whose
/// heap is trimmed back to what it uses.
fn grow_heap_in_large_steps() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets one of glibc's malloc parameters (how
        // much more than asked the heap grows by, through brk or mprotect);
        // it hands out and takes back no memory.
        if unsafe { libc::mallopt(libc::M_TOP_PAD, ONE_SHOT_HEAP_STEP) } == 0 {
            tracing::debug!("cannot set malloc's top pad");
        }
    }
}

/// The malloc arenas a `watch` allocates from: one, shared by its threads.
#[cfg(target_env = "gnu")]
const WATCH_ARENAS: libc::c_int = 1;

/// A watch holds its targets' state for as long as it runs, allocated on
/// whichever core checked them. With an arena per thread (glibc's default),
/// each arena kept its own free space around what it holds: the two
/// arenas of the check's second core and the trigger thread held 3.3 and
/// 2.0 MB beside the main heap's 6.8 MB, for 9.2 MB of live data (500
/// processes). One arena for all threads: 15.9 MB of peak RSS instead of
/// 17.3 to 18.1 MB (BENCHMARKS.md, *Memory*); the CPU of a cycle moved
/// within the noise of side-by-side runs (a steady cycle of an unchanged
/// process allocates little; glibc's per-thread cache takes most of it
/// without the arena's lock). Called before any thread starts.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only sets one of glibc's malloc parameters (how
        // many arenas threads may allocate from); it hands out and takes
        // back no memory, and no other thread runs yet.
        if unsafe { libc::mallopt(libc::M_ARENA_MAX, WATCH_ARENAS) } == 0 {
            tracing::debug!("cannot set malloc's arena count");
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Snapshot { target, file, subsystems, format } => {
            grow_heap_in_large_steps();
            run::snapshot(target, file, subsystems, format)
        }
        Command::Check { target, file, format, confirm, code_budget } => {
            grow_heap_in_large_steps();
            run::check(target, file, format, confirm, code_budget)
        }
        Command::Watch(options) => {
            one_malloc_arena();
            watch::watch(options)
        }
        Command::Objects { file, shared, format } => objects::run(&file, shared, format),
        Command::Selftest { campaign, seed, format } => selftest::run(campaign, seed, format),
        Command::Bench { seconds, processes, pid, only, format } => {
            bench::run(bench::Options { seconds, processes, pid, only, format })
        }
        Command::Idle => {
            // The campaign's target: a process that does nothing, for as long as asked.
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Command::Keygen { path } => {
            fdir::Key::generate()?.write_new(&path)?;
            println!("wrote a new {}-byte key to {} (mode 0600)", fdir::Key::GENERATED_LEN, path.display());
            Ok(run::NO_DRIFT)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "fdir", &mut std::io::stdout());
            Ok(run::NO_DRIFT)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(run::NO_DRIFT)
        }
    }
}

/// Runs the command line; the exit status follows docs/cli.md.
pub fn main() -> ExitCode {
    init_logging();
    // Usage errors exit 2 through clap; --help and --version exit 0.
    let cli = Cli::parse();
    raise_fd_limit();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fdir: {}", run::describe(&e));
            ExitCode::from(run::CANNOT_CHECK)
        }
    }
}
