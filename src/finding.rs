//! What a monitor reports: the `Finding`s of a cycle about each target,
//! before they are graded, grouped by root cause (`roots.rs`) and written as
//! events, and the cycle's numbers (`Summary`). Below the monitor, the
//! grouping and the events, which all speak it.

use std::time::Duration;

use crate::{Anomaly, Report, Snapshot, Stops, Subsystem, Sweep, Target};

/// Something the monitor saw, about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A target was baselined: at start, or on first sight (`first_sight`).
    Baselined {
        /// The new baseline.
        snapshot: Box<Snapshot>,
        /// Whether it appeared after the monitor started.
        first_sight: bool,
    },
    /// A process, or one subsystem of it, cannot be read; not drift.
    Unobservable {
        /// The target.
        target: Target,
        /// The subsystem, or `None` for the whole process.
        subsystem: Option<Subsystem>,
        /// Why, naming the file.
        reason: String,
    },
    /// Drift confirmed this cycle (declared once while it persists).
    Drift {
        /// The target.
        target: Target,
        /// One per drifted subsystem.
        anomalies: Vec<Anomaly>,
    },
    /// Drift seen once and not confirmed by an immediate re-read.
    Transient {
        /// The target.
        target: Target,
        /// The subsystems that looked drifted.
        subsystems: Vec<Subsystem>,
    },
    /// A drifted subsystem is back at its baseline.
    Recovered {
        /// The target.
        target: Target,
        /// The subsystem.
        subsystem: Subsystem,
        /// How long it was drifted.
        drifted_for: Duration,
    },
    /// A process executed a new program (its executable is another file):
    /// not drift of the old one. Its memory-maps and code baselines were
    /// re-taken (`snapshot`, the whole new baseline); every other subsystem is
    /// still checked against the old baseline. `anomaly` is the memory maps
    /// of the old program against the new, for a policy that grades an exec
    /// as drift.
    Exec {
        /// The process (with its new name).
        target: Target,
        /// The program it ran.
        old: crate::Executable,
        /// The program it runs now.
        new: crate::Executable,
        /// The baseline it is checked against from now on.
        snapshot: Box<Snapshot>,
        /// What changed in its memory maps, if they are watched.
        anomaly: Option<Anomaly>,
    },
    /// A baselined process has exited; not drift.
    Exited {
        /// The process.
        target: Target,
    },
    /// The pid of a baselined process now belongs to another process.
    Reused {
        /// The baselined process.
        baseline: Target,
        /// The process that has the pid now.
        now: Target,
    },
    /// A copy of a target's in-memory baseline failed its digest or the vote
    /// and was repaired from the others.
    BaselineRepaired {
        /// The target.
        target: Target,
        /// How many of the copies were repaired.
        copies: usize,
    },
    /// No copy of a target's in-memory baseline can be trusted: it is not
    /// checked until restored (from the baseline file).
    BaselineLost {
        /// The target.
        target: Target,
    },
    /// A target could not be checked this cycle.
    Failed {
        /// The target.
        target: Target,
        /// What went wrong.
        error: String,
    },
    /// A kernel object that processes share drifted (a cgroup's limit
    /// files, a mount table): one anomaly for every process it affects, the
    /// root cause counted once (`roots.rs`, docs/contracts.md §8).
    ObjectDrift {
        /// The object, as a person reads it: `cgroup pids:/jail`, `mount
        /// namespace 4026531841`.
        object: String,
        /// The processes it affects, the first first.
        targets: Vec<Target>,
        /// Its changes, with the digests of the first process's subsystem.
        anomaly: Anomaly,
    },
    /// A drifted object is back at its baseline for every process it
    /// affected that is still watched.
    ObjectRecovered {
        /// The object.
        object: String,
        /// The processes it affected.
        targets: Vec<Target>,
        /// The subsystem.
        subsystem: Subsystem,
        /// The longest one of them was drifted.
        drifted_for: Duration,
    },
}

/// The numbers of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Targets watched at the end of the cycle.
    pub targets: usize,
    /// Targets checked this cycle.
    pub checked: usize,
    /// Targets in a declared drift.
    pub drifted: usize,
    /// Anomalies declared this cycle.
    pub anomalies: usize,
    /// Processes, or subsystems of them, that cannot be read.
    pub unobservable: usize,
    /// Of those, processes that cannot be read at all (not targets).
    pub unreadable: usize,
    /// Targets with at least one subsystem that cannot be read.
    pub partly: usize,
    /// Targets baselined on first sight this cycle.
    pub new: usize,
    /// Targets that exited this cycle.
    pub exited: usize,
    /// Targets that could not be checked this cycle.
    pub failed: usize,
    /// Baseline copies repaired this cycle.
    pub repaired: usize,
    /// How long the cycle took.
    pub elapsed: Duration,
    /// The code sweep over every target checked (`code`): bytes verified and
    /// comparable summed, the checks a full sweep takes for the slowest target.
    pub code: Option<Sweep>,
    /// How long `seccomp-filters` kept threads stopped, over every target.
    pub stopped: Option<Stops>,
}

impl Summary {
    /// Adds the counts of another part of a cycle (a part checked on
    /// another thread, or an earlier part of a cycle spread over an interval).
    /// `targets` and `unobservable` are taken from `other` (the latest).
    pub fn merge(&mut self, other: &Summary) {
        self.targets = other.targets;
        self.unobservable = other.unobservable;
        self.unreadable = other.unreadable;
        self.partly = other.partly;
        self.new += other.new;
        self.exited += other.exited;
        self.elapsed += other.elapsed;
        self.add_part(other);
    }

    /// Adds the counts of a part of the cycle (checked on another thread).
    pub(crate) fn add_part(&mut self, other: &Summary) {
        self.checked += other.checked;
        self.drifted += other.drifted;
        self.anomalies += other.anomalies;
        self.failed += other.failed;
        self.repaired += other.repaired;
        self.add_sweeps(other.code.as_ref(), other.stopped.as_ref());
    }

    /// Adds what one target's check reported.
    pub(crate) fn add_report(&mut self, report: &Report) {
        self.add_sweeps(report.code.as_ref(), report.stopped.as_ref());
    }

    /// Adds a code sweep and seccomp-filters stop times to the totals.
    fn add_sweeps(&mut self, code: Option<&Sweep>, stopped: Option<&Stops>) {
        if let Some(s) = code {
            match &mut self.code {
                Some(total) => total.merge(s),
                None => self.code = Some(*s),
            }
        }
        if let Some(s) = stopped {
            self.stopped.get_or_insert_with(Stops::default).merge(s);
        }
    }
}
