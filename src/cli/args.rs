//! The command line, as clap sees it (docs/cli.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fdir::{CodeBudget, Coverage, Selector, Subsystem};

const AFTER: &str = "\
Exit status of snapshot and check: 0 no drift, 1 drift found, 2 could not check
(bad or missing baseline, target gone or reused, no permission, usage).
Logging: RUST_LOG=debug (diagnostics go to stderr; findings to stdout).";

/// integrity monitor for Linux kernel isolation structures
///
/// Takes a known-good baseline of processes' isolation state (memory maps,
/// seccomp, cgroups, credentials ...), re-checks it, says exactly what
/// drifted and grades it.
#[derive(Debug, Parser)]
#[command(name = "fdir", version, after_help = AFTER, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a baseline of the targets and write it to the baseline file.
    #[command(after_help = "Examples:
  fdir snapshot --pid 1234                     # one process, seed-plus subsystems
  fdir snapshot --all --subsystems all         # every process, every subsystem
  fdir snapshot --unit nginx.service           # every process of a systemd unit
  fdir snapshot --container 3f2a1b9c           # every process of a container
  fdir snapshot --pid 1234 --key /etc/fdir/key --baseline /var/lib/fdir/baseline.json")]
    Snapshot {
        /// Which targets.
        #[command(flatten)]
        target: TargetArgs,
        /// The baseline file and its key.
        #[command(flatten)]
        file: FileArgs,
        /// Comma-separated subsystems, or `all` (default: every process
        /// subsystem but the intrusive seccomp-filters and code).
        #[arg(long, value_name = "LIST", value_parser = parse_subsystems)]
        subsystems: Option<Subsystems>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare the targets with the baseline file once; exit 0, 1 (drift) or 2.
    #[command(after_help = "Examples:
  fdir check                                   # everything the baseline file covers
  fdir check --pid 1234 --format json          # one of its processes, as NDJSON
  fdir check --key /etc/fdir/key --baseline /var/lib/fdir/baseline.json")]
    Check {
        /// Which targets (default: those of the baseline file; a subset of its
        /// processes may be named with --pid).
        #[command(flatten)]
        target: TargetArgs,
        /// The baseline file and its key.
        #[command(flatten)]
        file: FileArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Consecutive reads that must show a drift before it counts.
        #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
        confirm: u32,
        /// Bytes of code to verify per process (the code subsystem): 4MiB,
        /// 512KiB, unlimited (default: unlimited, all of it).
        #[arg(long, value_name = "BYTES", value_parser = parse_code_budget)]
        code_budget: Option<CodeBudget>,
    },
    /// Check on a timer until SIGTERM or SIGINT (exit 0).
    ///
    /// Uses the baseline file if it exists (refusing a corrupt one), otherwise
    /// takes a baseline of TARGET (default: every process) and writes it.
    #[command(after_help = "Examples:
  fdir watch                                   # every process, every 30 s
  fdir watch --pid 1234 --interval 500ms --format json
  fdir watch --all --metrics 127.0.0.1:9477    # Prometheus metrics at /metrics
  fdir watch --unit nginx.service              # a unit's processes, new ones baselined on first sight")]
    Watch(WatchArgs),
    /// Test fdir itself: SHA-256 known answers and, with --campaign N, N
    /// faults injected into its in-memory baselines and canonical forms.
    #[command(after_help = "Examples:
  fdir selftest                                # known-answer tests
  fdir selftest --campaign 10000               # inject 10000 faults, report detected, repaired, missed")]
    Selftest {
        /// Inject this many faults (bit flips) and report what was caught.
        #[arg(long, value_name = "N", default_value_t = 0)]
        campaign: u64,
        /// Seed of the fault injector (default: from the clock).
        #[arg(long, value_name = "SEED")]
        seed: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Measure what fdir costs on this machine, and say whether it is within target.
    ///
    /// Takes about a minute, and about a minute more for what a user runs
    /// (the time scales with --seconds). It answers first what the default
    /// deployment (fdir watch of every process, the default subsystems,
    /// every 30 s) costs here: a real fdir watch --all, its CPU a cycle and
    /// fdir check --all next to sha256sum of the same files, its peak memory
    /// and its baseline file, and the same with memory-maps, seccomp and
    /// cgroups only beside them; then a watch of one process every 100 ms
    /// with every default subsystem, next to one with the seed's three
    /// beside it; then each measurement next to its target
    /// with a yes or no: one check of
    /// one process against simply reading and hashing the same files, a
    /// running fdir watch of one process every 100 ms and every second
    /// (share of one core, peak memory), a check of every process, fdir
    /// check --all against sha256sum of the same files, and how fast
    /// program code is hashed. Run it before deploying: virtual machines
    /// differ more from each other than fdir's versions do.
    #[command(after_help = "Examples:
  fdir bench                                   # about a minute
  fdir bench --processes 500 --format json     # with 500 extra idle processes in the check of every process
  fdir bench --pid 1234 --only check           # the check of process 1234 only")]
    Bench {
        /// Seconds spent on each measurement, about (the whole run takes
        /// about ten times this, plus the start of the processes it measures).
        #[arg(long, value_name = "S", default_value_t = 5.0)]
        seconds: f64,
        /// Extra idle processes to start for the whole-node check.
        #[arg(long, value_name = "N", default_value_t = 0)]
        processes: usize,
        /// Measure the check of this process (instead of an idle one fdir starts).
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
        /// Only these measurements (comma-separated): deploy (what a user
        /// runs: watch --all with every default subsystem), one (a watch of
        /// one process with every default subsystem, the seed's beside it),
        /// check, watch, node, code, and (only when named; root, python3 and
        /// node) triggers.
        #[arg(long, value_name = "LIST", default_value = "deploy,one,check,watch,node,code")]
        only: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the kernel objects the baseline's processes share (cgroups,
    /// namespaces and mount tables, seccomp filter chains, code files), each
    /// once, with the processes that refer to it. Reads only the file.
    #[command(after_help = "Examples:
  fdir objects                                 # every object of fdir-baseline.json
  fdir objects --shared                        # only those two processes or more share
  fdir objects --format json --baseline /var/lib/fdir/baseline.json")]
    Objects {
        /// The baseline file and its key.
        #[command(flatten)]
        file: FileArgs,
        /// Only the objects that at least two processes refer to.
        #[arg(long)]
        shared: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// (internal) Sleep forever: the target of `selftest --campaign`.
    #[command(hide = true, name = "__idle")]
    Idle,
    /// Write a new random key file for --key (mode 0600; refuses to overwrite).
    Keygen {
        /// Where to write the key.
        path: PathBuf,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// The options of `fdir watch`.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// Which targets (default: those of the baseline file, or every process).
    #[command(flatten)]
    pub target: TargetArgs,
    /// The baseline file and its key.
    #[command(flatten)]
    pub file: FileArgs,
    /// Time between checks: 30s, 500ms, 2m ...
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Subsystems for a new baseline: comma-separated, or `all` (default:
    /// every process subsystem but seccomp-filters and code).
    #[arg(long, value_name = "LIST", value_parser = parse_subsystems)]
    pub subsystems: Option<Subsystems>,
    /// Consecutive reads that must show a drift before it is declared.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub confirm: u32,
    /// Take a new baseline even if the baseline file exists (and replace it).
    #[arg(long)]
    pub rebaseline: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9477).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Also serve fdir_workload_anomalies_total{unit,container,pod,subsystem}:
    /// one series per workload that drifted (at most 1000; more are counted
    /// under unit="other"). Off by default: it grows with the workloads.
    #[arg(long, requires = "metrics")]
    pub metrics_workload_labels: bool,
    /// Response policy (TOML): severity per subsystem, actions, cooldown,
    /// limits (see README "Responses").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run CMD with /bin/sh -c for each declared drift, with FDIR_SEVERITY,
    /// FDIR_SUBSYSTEMS, FDIR_PID in its environment and the anomaly events
    /// (NDJSON) on stdin.
    #[arg(long, value_name = "CMD")]
    pub on_anomaly: Option<String>,
    /// Grade and report drifts, but never act.
    #[arg(long)]
    pub passive: bool,
    /// Bytes of code to verify per process per check (the code
    /// subsystem), resuming where the last check stopped: 4MiB, 512KiB,
    /// unlimited (default: 4MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_code_budget)]
    pub code_budget: Option<CodeBudget>,
    /// Re-check at once on the kernel's notices (docs/triggers.md): auto
    /// (every source that can run here), off (the timer alone), or a list of
    /// connector, mountinfo, inotify, ebpf. The timer runs either way.
    #[arg(long, value_name = "SOURCES", default_value = "auto")]
    pub triggers: fdir::trigger::hub::Choice,
}

/// TARGET: --pid PID (repeatable) | --all | --system | --unit NAME | --container ID.
#[derive(Debug, Args, Clone, Default)]
#[group(multiple = false)]
pub struct TargetArgs {
    /// A process to cover (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Every process fdir may read (kernel threads and fdir itself excluded).
    #[arg(long)]
    pub all: bool,
    /// Node-wide state (kernel hardening, taint).
    #[arg(long)]
    pub system: bool,
    /// The processes of a systemd unit, scope or slice (nginx.service;
    /// nginx means nginx.service), found by their cgroup paths; under
    /// watch and check, those that start later too.
    #[arg(long, value_name = "NAME", value_parser = Selector::unit)]
    pub unit: Option<Selector>,
    /// The processes of a container (Docker, containerd, CRI-O, Podman: an
    /// id prefix of at least 4 characters; LXC: its name), found by their
    /// cgroup paths; under watch and check, those that start later too.
    #[arg(long, value_name = "ID", value_parser = Selector::container)]
    pub container: Option<Selector>,
}

impl TargetArgs {
    /// The coverage asked for, if any.
    pub fn coverage(&self) -> Option<Coverage> {
        if !self.pids.is_empty() {
            let mut pids = self.pids.clone();
            pids.sort_unstable();
            pids.dedup();
            Some(Coverage::Pids { pids })
        } else if self.all {
            Some(Coverage::All)
        } else if self.system {
            Some(Coverage::System)
        } else {
            self.unit.clone().or_else(|| self.container.clone()).map(|selector| Coverage::Workload { selector })
        }
    }
}

/// The baseline file options.
#[derive(Debug, Args, Clone)]
pub struct FileArgs {
    /// The baseline file.
    #[arg(long, value_name = "FILE", default_value = "fdir-baseline.json")]
    pub baseline: PathBuf,
    /// A key file: the baseline is signed (HMAC-SHA256) with it, and refused
    /// unless it verifies.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per finding, for people.
    Text,
    /// One JSON object per line (NDJSON).
    Json,
}

/// A parsed `--subsystems` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subsystems(pub Vec<Subsystem>);

fn parse_subsystems(s: &str) -> Result<Subsystems, String> {
    if s.trim() == "all" {
        return Ok(Subsystems(Subsystem::ALL.to_vec()));
    }
    let mut v = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        v.push(name.parse::<Subsystem>().map_err(|e| e.to_string())?);
    }
    if v.is_empty() {
        return Err("no subsystems given".into());
    }
    v.sort_unstable();
    v.dedup();
    Ok(Subsystems(v))
}

fn parse_code_budget(s: &str) -> Result<CodeBudget, String> {
    s.parse().map_err(|e: fdir::Error| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (try 30s, 500ms, 2m)"))?;
    if d < Duration::from_millis(1) {
        return Err(format!("{s:?}: the interval must be at least 1 ms"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn subsystem_lists() {
        assert_eq!(parse_subsystems("all").unwrap().0, Subsystem::ALL);
        assert_eq!(
            parse_subsystems("seccomp, memory-maps,seccomp").unwrap().0,
            [Subsystem::MemoryMaps, Subsystem::Seccomp]
        );
        let e = parse_subsystems("seccomp,bogus").unwrap_err();
        assert!(e.contains("bogus") && e.contains("memory-maps"), "{e}");
        assert!(parse_subsystems(",").is_err());
    }

    #[test]
    fn code_budgets() {
        assert_eq!(parse_code_budget("4MiB").unwrap(), CodeBudget::bytes(4 << 20));
        assert_eq!(parse_code_budget("512k").unwrap(), CodeBudget::bytes(512 << 10));
        assert_eq!(parse_code_budget("65536").unwrap(), CodeBudget::bytes(65536));
        assert_eq!(parse_code_budget("0").unwrap(), CodeBudget::UNLIMITED);
        assert_eq!(parse_code_budget("Unlimited").unwrap(), CodeBudget::UNLIMITED);
        for bad in ["", "MiB", "4 parsecs", "-1", "99999999999999999999G"] {
            assert!(parse_code_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
