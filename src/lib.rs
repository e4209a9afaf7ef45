//! # fdir — integrity monitor for Linux kernel isolation structures
//!
//! fdir takes a known-good baseline of the isolation state of a process
//! (memory mappings, seccomp, cgroups, credentials, and, when asked for, the
//! seccomp programs and the code in memory), re-checks it on a
//! timer, says exactly what drifted, grades the drift (Log, Isolate, Restart,
//! Degrade, SafeMode) and hands it to a handler that acts.
//!
//! It hashes *canonical forms*, never raw `/proc` text: heap growth, new
//! threads, ASLR, anonymous memory churn never raise an anomaly; a seccomp
//! filter, a capability dropped, a W+X mapping, a memfd mapped executable, a
//! cgroup move always do.
//!
//! ```no_run
//! use std::time::Duration;
//! use fdir::{check, default_handler, snapshot, start_daemon, Config, Procfs,
//!            Subsystem, SystemClock, Verdict};
//!
//! let clock = SystemClock;
//! let fs = Procfs::live();
//! let baseline = snapshot(&clock, &fs)?;
//! match check(&baseline, &clock, &fs)? {
//!     Verdict::Ok(_report) => {}
//!     Verdict::Anomaly { anomalies, .. } => {
//!         for a in &anomalies { eprintln!("drift on {}", a.subsystem) }
//!     }
//! }
//! let config = Config::default()
//!     .interval(Duration::from_secs(30))
//!     .subsystems([Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Cgroups]);
//! let daemon = start_daemon(config, baseline, fs, clock, default_handler)?;
//! daemon.stop();
//! # Ok::<(), fdir::Error>(())
//! ```
//!
//! See ARCHITECTURE.md for the code map and the invariants.

// The I/O boundary (ARCHITECTURE.md, "Modules that touch files"): opening,
// reading, listing or stat'ing a file (clippy.toml's disallowed methods) is
// refused by the build everywhere in the library but in the modules whose
// `mod` line below allows it. `tests/it/boundary.rs` holds that list equal to
// ARCHITECTURE.md's.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

// Touches files: the baseline, key and response-state files.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod baseline;
mod bpf;
pub mod canon;
mod clock;
mod code_pages;
mod config;
mod confirm;
mod daemon;
mod digest;
mod error;
pub mod event;
pub mod explain;
// Touches files: kept-open /proc, /sys and cgroupfs files, for the source.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod fdcache;
mod finding;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod guard;
mod held;
pub mod metrics;
mod monitor;
mod observation;
mod observe;
mod parallel;
// Touches files: the policy file.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod policy;
mod ptrace;
pub mod respond;
pub mod rng;
mod roots;
pub mod runtime;
mod shared;
mod snapshot;
// Touches files: /proc, /sys and cgroupfs: every read of kernel state.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod source;
mod subsystem;
mod time;
// Touches files: netlink, mountinfo, inotify and eBPF sources of events.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod trigger;
// Touches files: the ownership and mode of fdir's own files and their directories.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub mod trust;
pub mod workload;

pub use baseline::{BaselineFile, Coverage, Key};
pub use clock::{Clock, ManualClock, StopSignal, SystemClock};
pub use config::Config;
pub use confirm::{Outcome, Tracker};
pub use daemon::{Daemon, Event, Stats, start_daemon};
pub use digest::Digest;
pub use error::Error;
pub use explain::{Change, ChangeKind};
pub use finding::{Finding, Summary};
pub use monitor::{Monitor, PinAhead, Pinned};
pub use observe::code::{CodeBudget, DEFAULT_CODE_BUDGET, Sweep};
pub use observe::filters::Stops;
pub use policy::default_handler;
pub use snapshot::{
    Anomaly, Checker, Executable, Observation, Report, SETTLE_MAX, SETTLE_QUIET, SETTLE_YOUNGER_THAN, Settle, Snapshot,
    Status, Verdict, check, check_with, snapshot, snapshot_with,
};
#[doc(hidden)]
pub use source::cgvalues::{Compared as CgroupValue, compare_with_files as cgroup_values_against_files};
pub use source::{
    CgroupMounts, FileId, MAX_FILE, MountView, Procfs, STOP_TIMEOUT, Source, Target, boot_id, list_processes,
};
pub use subsystem::{Scope, Severity, Subsystem};
pub use workload::{Selector, Workload};
