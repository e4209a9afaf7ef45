//! The events fdir writes: one JSON object per line (`--format json`), or one
//! line of text per finding for people. The JSON shape is a contract
//! (docs/cli.md): every object has `event` and `time` (RFC 3339), and `pid`
//! where it concerns one process; an anomaly has `subsystem`, `severity`,
//! `expected`, `actual` and `changes`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::explain::Change;
use crate::finding::{Finding, Summary};
use crate::workload::Workload;
use crate::{Anomaly, Digest, Observation, Severity, Snapshot, Stops, Subsystem, Sweep, Target};

/// Which target an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Who {
    /// The process id, for a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The command name, for a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Start time in clock ticks since boot, for a process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// The host name, for the node (`--system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The workload the process belongs to, from its cgroup path (`unit`,
    /// `container`, `runtime`, `pod`, `qos`), where known: each field only
    /// when the path names it.
    #[serde(flatten)]
    pub workload: Workload,
}

impl From<&Target> for Who {
    fn from(t: &Target) -> Who {
        match t {
            Target::Process { pid, start_time, name } => Who {
                pid: Some(*pid),
                name: (!name.is_empty()).then(|| name.clone()),
                start_time: (*start_time != 0).then_some(*start_time),
                node: None,
                workload: Workload::default(),
            },
            Target::Node { hostname, .. } => Who { node: Some(hostname.clone()), ..Who::default() },
            _ => Who::default(),
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pid, &self.name, &self.node) {
            (Some(pid), Some(name), _) => write!(f, "pid {pid} ({name})")?,
            (Some(pid), None, _) => write!(f, "pid {pid}")?,
            (None, _, Some(host)) => write!(f, "node {host}")?,
            _ => f.write_str("node")?,
        }
        if !self.workload.is_empty() {
            write!(f, " [{}]", self.workload)?;
        }
        Ok(())
    }
}

/// A [`Change`] as written in events: its parts (`kind`, `item`, `before`,
/// `after`, `note`) and the whole sentence (`text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// The whole change as one sentence.
    pub text: String,
}

impl From<&Change> for ChangeRecord {
    fn from(c: &Change) -> ChangeRecord {
        ChangeRecord { change: c.clone(), text: c.to_string() }
    }
}

/// The state of one subsystem in a `baseline` event: its digest, or why it
/// could not be read, or why it does not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SubsystemState {
    /// The digest of its canonical form.
    Digest(Digest),
    /// Why it is unobservable.
    Unobservable {
        /// The reason.
        unobservable: String,
    },
    /// Why it does not apply to this target (no LSM, say).
    NotApplicable {
        /// The reason.
        not_applicable: String,
    },
}

/// The code sweep in a `check` event: the [`Sweep`] of every target
/// together, and, for `watch`, how long a full sweep takes at its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeCoverage {
    /// Bytes verified, comparable and swept, summed over targets; checks per
    /// full sweep of the slowest target; sweeps completed by the least swept.
    #[serde(flatten)]
    pub sweep: Sweep,
    /// How long a full sweep takes: checks per sweep times the interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_ms: Option<f64>,
}

/// Bytes for people: `512 B`, `64.0 KiB`, `4.0 MiB`, `1.5 GiB`.
fn size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..0x10_0000 => format!("{:.1} KiB", b / 1024.0),
        0x10_0000..0x4000_0000 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.1} GiB", b / 1_073_741_824.0),
    }
}

fn one() -> u32 {
    1
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A change accepted into the baseline by a re-baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The target.
    #[serde(flatten)]
    pub who: Who,
    /// The subsystem.
    pub subsystem: Subsystem,
    /// What changed.
    pub changes: Vec<ChangeRecord>,
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EventRecord {
    /// `watch` started.
    Started {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// fdir's version.
        version: String,
        /// What is watched: "every process", "process 42", "the node".
        coverage: String,
        /// The subsystems checked.
        subsystems: Vec<Subsystem>,
        /// Time between checks, ms.
        interval_ms: u64,
        /// The baseline file.
        baseline: String,
        /// Consecutive reads that confirm a drift.
        confirm: u32,
        /// The trigger sources running (docs/triggers.md), by name; absent
        /// when none runs (`--triggers off`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        triggers: Vec<String>,
        /// The trigger sources asked for that cannot run here, by name, with
        /// why; absent when every one asked for runs.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        triggers_unavailable: BTreeMap<String, String>,
    },
    /// A target was baselined (at start, or on first sight).
    Baseline {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// Each subsystem's digest, or why it is unobservable.
        subsystems: BTreeMap<Subsystem, SubsystemState>,
        /// Whether the process appeared after the monitor started.
        first_sight: bool,
        /// How long the baseline waited for a young process to settle, ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settle_ms: Option<u64>,
    },
    /// A process, or a subsystem of one, cannot be read. Not drift.
    Unobservable {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// The subsystem, absent for the whole process.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subsystem: Option<Subsystem>,
        /// Why.
        reason: String,
    },
    /// A confirmed drift of one subsystem.
    Anomaly {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// The subsystem.
        subsystem: Subsystem,
        /// Its grade.
        severity: Severity,
        /// The baseline digest.
        expected: Digest,
        /// The digest now.
        actual: Digest,
        /// What changed.
        changes: Vec<ChangeRecord>,
        /// The shared kernel object that drifted (`cgroup pids:/jail`,
        /// `mount namespace 4026531841`): one anomaly for every process it
        /// affects; `pid` is then the first of them, and `expected` and
        /// `actual` are the digests of that process's subsystem.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object: Option<String>,
        /// With `object`: every process it affects, in the order they were
        /// seen (`pid` first).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pids: Vec<u32>,
        /// With `object`: their command names, in the order of `pids`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    },
    /// A drift seen once and not confirmed by the re-read.
    Transient {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// The subsystems that looked drifted.
        subsystems: Vec<Subsystem>,
    },
    /// A drifted subsystem is back at its baseline.
    Recovered {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// The subsystem.
        subsystem: Subsystem,
        /// How long it was drifted, ms.
        drifted_for_ms: f64,
        /// A shared object back at its baseline for every process it
        /// affected (`pid` the first of them): the object, as in `anomaly`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        object: Option<String>,
        /// With `object`: the processes it affected.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pids: Vec<u32>,
    },
    /// A process executed a new program: not drift of the old one (unless
    /// the policy grades an exec as drift: then an anomaly follows). Its
    /// memory maps and code are baselined again; everything else is still
    /// checked against its baseline.
    Exec {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The process, with its new name.
        #[serde(flatten)]
        who: Who,
        /// The program it ran (`/proc/PID/exe` at its baseline).
        old: String,
        /// The program it runs now.
        new: String,
    },
    /// A baselined process exited. Not drift.
    Exited {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The process.
        #[serde(flatten)]
        who: Who,
    },
    /// The pid of a baselined process belongs to another process now.
    Reused {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The baselined process.
        #[serde(flatten)]
        who: Who,
        /// Start time of the process that has the pid now.
        now_start_time: u64,
    },
    /// A target could not be checked.
    Error {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// What went wrong.
        message: String,
    },
    /// A response to a declared drift: done, failed, suppressed, passive.
    Action {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// The severity that called for it.
        severity: Severity,
        /// `on-anomaly`, `isolate`, `restart`, `degrade`, `safe-mode`.
        action: String,
        /// `done`, `failed`, `suppressed`, `passive`, `not-configured`.
        outcome: crate::respond::Outcome,
        /// What was done, or why not.
        detail: String,
    },
    /// Copies of a target's in-memory baseline were repaired by the vote.
    BaselineRepaired {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// How many copies were repaired.
        copies: usize,
    },
    /// No in-memory copy of a target's baseline could be trusted.
    BaselineLost {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The target.
        #[serde(flatten)]
        who: Who,
        /// Whether it was restored from the baseline file.
        restored: bool,
        /// What happened.
        message: String,
    },
    /// The baseline file voted against the in-memory baselines.
    BaselineFile {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// `agrees`, `rewritten` (the file was wrong or unreadable and was
        /// written again from memory), `restored` (memory was restored from it).
        status: String,
        /// Details: which targets, what was wrong.
        detail: String,
    },
    /// A self-test ran (SHA-256 known answers): at start, and if it fails.
    Selftest {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// Whether it passed.
        ok: bool,
        /// What was tested, or what failed.
        message: String,
    },
    /// The result of a fault-injection campaign (`fdir selftest --campaign`).
    Campaign {
        /// When it ended.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The injector's seed (to repeat the campaign).
        seed: u64,
        /// Faults injected into in-memory baseline copies.
        baseline_faults: u64,
        /// Of those, detected by the vote.
        baseline_detected: u64,
        /// Of those, repaired from the other copies.
        baseline_repaired: u64,
        /// Faults injected into freshly read canonical forms.
        observation_faults: u64,
        /// Of those, dismissed by the confirming re-read (transient).
        observation_dismissed: u64,
        /// Faults that led to a declared drift (a false alarm).
        false_alarms: u64,
        /// Faults neither detected nor dismissed.
        missed: u64,
        /// How long the campaign took, ms.
        duration_ms: f64,
    },
    /// A new baseline was taken on purpose (SIGHUP): what it accepted.
    Rebaseline {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// Why: "SIGHUP".
        reason: String,
        /// Targets in the new baseline.
        targets: usize,
        /// Targets not in the old baseline.
        new: usize,
        /// Targets of the old baseline that are gone.
        gone: usize,
        /// The changes accepted into the baseline, per target and subsystem.
        accepted: Vec<Accepted>,
    },
    /// The summary of one check (of `check`, or one cycle of `watch`).
    Check {
        /// When it ended.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// Cycle number, from 1.
        cycle: u64,
        /// Targets watched.
        targets: usize,
        /// Targets checked.
        checked: usize,
        /// Targets in a declared drift.
        drifted: usize,
        /// Anomalies declared in this check.
        anomalies: usize,
        /// Unobservable processes and subsystems.
        unobservable: usize,
        /// Of those, processes that cannot be read at all (not targets).
        #[serde(default)]
        unreadable: usize,
        /// Targets with at least one subsystem that cannot be read (their
        /// subsystems are the rest of `unobservable`).
        #[serde(default)]
        partly_unobservable: usize,
        /// Processes baselined on first sight.
        new: usize,
        /// Processes that exited.
        exited: usize,
        /// Targets that could not be checked.
        failed: usize,
        /// Baseline copies repaired by the vote.
        #[serde(default)]
        repaired: usize,
        /// How many parts the round was spread over (a large node is
        /// checked in parts across the interval; 1 otherwise).
        #[serde(default = "one")]
        parts: u32,
        /// How long the check took, ms.
        duration_ms: f64,
        /// The code sweep, when `code` is checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<CodeCoverage>,
        /// How long `seccomp-filters` reads kept threads stopped, when they
        /// stopped any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped: Option<Stops>,
    },
    /// A trigger source lost notices (docs/triggers.md), and the full check
    /// made at once to answer them.
    TriggersLost {
        /// When (after the full check).
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// The source: connector, mountinfo, inotify, ebpf.
        source: String,
        /// Notices lost since the last such event (a lower bound: some
        /// sources count a burst of losses as one).
        lost: u64,
        /// Targets the full check checked.
        checked: usize,
    },
    /// `watch` stopped.
    Stopped {
        /// When.
        #[serde(with = "crate::time::rfc3339")]
        time: SystemTime,
        /// Why: "SIGTERM", "SIGINT".
        reason: String,
        /// Checks completed (a round spread over parts counts once whole).
        cycles: u64,
    },
}

/// The line written in place of an event that cannot be serialized.
fn unserializable(e: &serde_json::Error) -> String {
    format!("{{\"event\":\"error\",\"message\":\"{e}\"}}")
}

impl EventRecord {
    /// The `event` name.
    pub fn kind(&self) -> &'static str {
        match self {
            EventRecord::Started { .. } => "started",
            EventRecord::Baseline { .. } => "baseline",
            EventRecord::Unobservable { .. } => "unobservable",
            EventRecord::Anomaly { .. } => "anomaly",
            EventRecord::Transient { .. } => "transient",
            EventRecord::Recovered { .. } => "recovered",
            EventRecord::Exec { .. } => "exec",
            EventRecord::Exited { .. } => "exited",
            EventRecord::Reused { .. } => "reused",
            EventRecord::Error { .. } => "error",
            EventRecord::Action { .. } => "action",
            EventRecord::BaselineRepaired { .. } => "baseline-repaired",
            EventRecord::BaselineLost { .. } => "baseline-lost",
            EventRecord::BaselineFile { .. } => "baseline-file",
            EventRecord::Selftest { .. } => "selftest",
            EventRecord::Rebaseline { .. } => "rebaseline",
            EventRecord::Campaign { .. } => "campaign",
            EventRecord::Check { .. } => "check",
            EventRecord::TriggersLost { .. } => "triggers-lost",
            EventRecord::Stopped { .. } => "stopped",
        }
    }

    /// The process or node the event is about, if it is about one.
    pub fn who_mut(&mut self) -> Option<&mut Who> {
        match self {
            EventRecord::Baseline { who, .. }
            | EventRecord::Unobservable { who, .. }
            | EventRecord::Anomaly { who, .. }
            | EventRecord::Transient { who, .. }
            | EventRecord::Recovered { who, .. }
            | EventRecord::Exited { who, .. }
            | EventRecord::Reused { who, .. }
            | EventRecord::Error { who, .. }
            | EventRecord::Action { who, .. }
            | EventRecord::BaselineRepaired { who, .. }
            | EventRecord::BaselineLost { who, .. } => Some(who),
            _ => None,
        }
    }

    /// One JSON object, without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| unserializable(&e))
    }

    /// Appends [`EventRecord::to_json`] to `out`, without allocating once
    /// `out` has grown to the size of the events it holds (a watch writes a
    /// `check` event every cycle, through one buffer).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let len = out.len();
        if let Err(e) = serde_json::to_writer(&mut *out, self) {
            out.truncate(len);
            out.extend_from_slice(unserializable(&e).as_bytes());
        }
    }

    /// A `baseline` event for a snapshot.
    pub fn baseline(time: SystemTime, s: &Snapshot, first_sight: bool) -> EventRecord {
        EventRecord::Baseline {
            time,
            who: Who::from(&s.target),
            subsystems: s
                .subsystems
                .iter()
                .map(|(&sub, obs)| {
                    let state = match obs {
                        Observation::Observed { digest, .. } => SubsystemState::Digest(*digest),
                        Observation::NotApplicable { reason } => {
                            SubsystemState::NotApplicable { not_applicable: reason.clone() }
                        }
                        Observation::Unobservable { reason } => {
                            SubsystemState::Unobservable { unobservable: reason.clone() }
                        }
                    };
                    (sub, state)
                })
                .collect(),
            first_sight,
            settle_ms: s.settle.map(|st| u64::try_from(st.waited.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    /// An `anomaly` event.
    pub fn anomaly(time: SystemTime, target: &Target, a: &Anomaly, severity: Severity) -> EventRecord {
        EventRecord::Anomaly {
            time,
            who: Who::from(target),
            subsystem: a.subsystem,
            severity,
            expected: a.expected,
            actual: a.actual,
            changes: a.changes.iter().map(ChangeRecord::from).collect(),
            object: None,
            pids: Vec::new(),
            names: Vec::new(),
        }
    }

    /// The `anomaly` event of a shared object's drift: `who` the first of
    /// `targets`, with `object`, `pids` and `names`.
    pub fn object_anomaly(
        time: SystemTime,
        object: &str,
        targets: &[Target],
        a: &Anomaly,
        severity: Severity,
    ) -> EventRecord {
        let first = targets.first().map(Who::from).unwrap_or_default();
        EventRecord::Anomaly {
            time,
            who: first,
            subsystem: a.subsystem,
            severity,
            expected: a.expected,
            actual: a.actual,
            changes: a.changes.iter().map(ChangeRecord::from).collect(),
            object: Some(object.to_owned()),
            pids: targets.iter().filter_map(Target::pid).collect(),
            names: targets.iter().filter(|t| t.pid().is_some()).map(name_of).collect(),
        }
    }

    /// The events of a finding; `severity` grades a drift.
    pub fn from_finding(time: SystemTime, finding: &Finding, severity: Severity) -> Vec<EventRecord> {
        match finding {
            Finding::Baselined { snapshot, first_sight } => vec![EventRecord::baseline(time, snapshot, *first_sight)],
            Finding::Unobservable { target, subsystem, reason } => vec![EventRecord::Unobservable {
                time,
                who: Who::from(target),
                subsystem: *subsystem,
                reason: reason.clone(),
            }],
            Finding::Drift { target, anomalies } => {
                anomalies.iter().map(|a| EventRecord::anomaly(time, target, a, severity)).collect()
            }
            Finding::Transient { target, subsystems } => {
                vec![EventRecord::Transient { time, who: Who::from(target), subsystems: subsystems.clone() }]
            }
            Finding::Recovered { target, subsystem, drifted_for } => vec![EventRecord::Recovered {
                time,
                who: Who::from(target),
                subsystem: *subsystem,
                drifted_for_ms: ms(*drifted_for),
                object: None,
                pids: Vec::new(),
            }],
            Finding::ObjectDrift { object, targets, anomaly } => {
                vec![EventRecord::object_anomaly(time, object, targets, anomaly, severity)]
            }
            Finding::ObjectRecovered { object, targets, subsystem, drifted_for } => vec![EventRecord::Recovered {
                time,
                who: targets.first().map(Who::from).unwrap_or_default(),
                subsystem: *subsystem,
                drifted_for_ms: ms(*drifted_for),
                object: Some(object.clone()),
                pids: targets.iter().filter_map(Target::pid).collect(),
            }],
            Finding::Exec { target, old, new, .. } => {
                vec![EventRecord::Exec { time, who: Who::from(target), old: old.path.clone(), new: new.path.clone() }]
            }
            Finding::Exited { target } => vec![EventRecord::Exited { time, who: Who::from(target) }],
            Finding::Reused { baseline, now } => {
                vec![EventRecord::Reused { time, who: Who::from(baseline), now_start_time: now.pid_start() }]
            }
            Finding::BaselineRepaired { target, copies } => {
                vec![EventRecord::BaselineRepaired { time, who: Who::from(target), copies: *copies }]
            }
            Finding::BaselineLost { target } => vec![EventRecord::BaselineLost {
                time,
                who: Who::from(target),
                restored: false,
                message: "no in-memory copy of its baseline can be trusted; not checked until restored".into(),
            }],
            Finding::Failed { target, error } => {
                vec![EventRecord::Error { time, who: Who::from(target), message: error.clone() }]
            }
        }
    }

    /// A `check` summary event.
    /// The same, for a round spread over `parts` parts.
    pub fn check_in_parts(time: SystemTime, cycle: u64, s: &Summary, parts: u32) -> EventRecord {
        let mut e = EventRecord::check(time, cycle, s);
        if let EventRecord::Check { parts: p, .. } = &mut e {
            *p = parts;
        }
        e
    }

    /// A `check` summary event.
    pub fn check(time: SystemTime, cycle: u64, s: &Summary) -> EventRecord {
        EventRecord::Check {
            time,
            cycle,
            targets: s.targets,
            checked: s.checked,
            drifted: s.drifted,
            anomalies: s.anomalies,
            unobservable: s.unobservable,
            unreadable: s.unreadable,
            partly_unobservable: s.partly,
            new: s.new,
            exited: s.exited,
            failed: s.failed,
            repaired: s.repaired,
            parts: 1,
            duration_ms: ms(s.elapsed),
            code: s.code.map(|sweep| CodeCoverage { sweep, sweep_ms: None }),
            stopped: s.stopped,
        }
    }

    /// Adds to a `check` event how long a full code sweep takes at
    /// `interval` (for `watch`); other events are returned as they are.
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> EventRecord {
        if let EventRecord::Check { code: Some(c), .. } = &mut self {
            #[allow(clippy::cast_precision_loss)]
            let checks = c.sweep.checks_per_sweep as f64;
            c.sweep_ms = Some(checks * ms(interval));
        }
        self
    }
}

fn hms(ms: f64) -> String {
    // Whole seconds are plenty for people; below a second, milliseconds.
    if ms < 1000.0 {
        return format!("{ms:.0} ms");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = (ms / 1000.0).round() as u64;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn time_of(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Text for people: one line per finding (an anomaly is one line per change).
impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventRecord::Started { time, version, coverage, subsystems, interval_ms, baseline, confirm, .. } => {
                let subs: Vec<&str> = subsystems.iter().map(|s| s.name()).collect();
                write!(
                    f,
                    "{} fdir {version} watching {coverage} every {}: {} (baseline {baseline}, confirm {confirm} reads)",
                    time_of(*time),
                    humantime::format_duration(Duration::from_millis(*interval_ms)),
                    subs.join(", ")
                )
            }
            EventRecord::Baseline { time, who, subsystems, first_sight, settle_ms } => {
                let observed = subsystems.values().filter(|s| matches!(s, SubsystemState::Digest(_))).count();
                write!(
                    f,
                    "{} {} {who}: {observed} of {} subsystems",
                    time_of(*time),
                    if *first_sight { "NEW      " } else { "BASELINE " },
                    subsystems.len()
                )?;
                let names = |want: fn(&SubsystemState) -> bool| -> Vec<&str> {
                    subsystems.iter().filter(|(_, st)| want(st)).map(|(s, _)| s.name()).collect()
                };
                let unobservable = names(|st| matches!(st, SubsystemState::Unobservable { .. }));
                let not_applicable = names(|st| matches!(st, SubsystemState::NotApplicable { .. }));
                if !unobservable.is_empty() {
                    write!(f, "; unobservable: {}", unobservable.join(", "))?;
                }
                if !not_applicable.is_empty() {
                    write!(f, "; not applicable: {}", not_applicable.join(", "))?;
                }
                if let Some(ms) = settle_ms {
                    write!(f, " (waited {ms} ms for it to settle)")?;
                }
                Ok(())
            }
            EventRecord::Unobservable { time, who, subsystem, reason } => match subsystem {
                Some(s) => write!(f, "{} UNOBSERVABLE {who} {s}: {reason}", time_of(*time)),
                None => write!(f, "{} UNOBSERVABLE {who}: {reason}", time_of(*time)),
            },
            EventRecord::Anomaly {
                time, who, subsystem, severity, changes, expected, actual, object, pids, ..
            } => {
                let who = match object {
                    Some(object) => format!("{object} ({})", processes(who, pids)),
                    None => who.to_string(),
                };
                if changes.is_empty() {
                    return write!(
                        f,
                        "{} DRIFT    {who} {subsystem} [{severity}]: digest {} -> {}",
                        time_of(*time),
                        expected.short(),
                        actual.short()
                    );
                }
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{} DRIFT    {who} {subsystem} [{severity}]: {}", time_of(*time), c.text)?;
                }
                Ok(())
            }
            EventRecord::Transient { time, who, subsystems } => {
                let subs: Vec<&str> = subsystems.iter().map(|s| s.name()).collect();
                write!(
                    f,
                    "{} TRANSIENT {who} {}: seen once, not confirmed by the re-read",
                    time_of(*time),
                    subs.join(", ")
                )
            }
            EventRecord::Recovered { time, who, subsystem, drifted_for_ms, object, pids } => {
                let who = match object {
                    Some(object) => format!("{object} ({})", processes(who, pids)),
                    None => who.to_string(),
                };
                write!(
                    f,
                    "{} RECOVERED {who} {subsystem}: back at its baseline after {}",
                    time_of(*time),
                    hms(*drifted_for_ms)
                )
            }
            EventRecord::Exec { time, who, old, new } => write!(
                f,
                "{} EXEC     {who}: executed {new} (was {old}); memory maps and code baselined again",
                time_of(*time)
            ),
            EventRecord::Exited { time, who } => write!(f, "{} EXITED   {who}", time_of(*time)),
            EventRecord::Reused { time, who, now_start_time } => write!(
                f,
                "{} REUSED   {who}: the pid now belongs to another process (started at tick {now_start_time})",
                time_of(*time)
            ),
            EventRecord::Error { time, who, message } => write!(f, "{} ERROR    {who}: {message}", time_of(*time)),
            EventRecord::Check {
                time,
                cycle,
                targets,
                drifted,
                anomalies,
                unobservable,
                unreadable,
                partly_unobservable,
                new,
                exited,
                failed,
                duration_ms,
                code,
                stopped,
                ..
            } => {
                write!(
                    f,
                    "{} CHECK    #{cycle}: {targets} targets, {drifted} drifted ({anomalies} new anomal{}), {new} new, {exited} exited, {failed} failed in {duration_ms:.1} ms",
                    time_of(*time),
                    if *anomalies == 1 { "y" } else { "ies" }
                )?;
                let subsystems = unobservable.saturating_sub(*unreadable);
                if *unreadable > 0 || *partly_unobservable > 0 {
                    if *partly_unobservable > 0 {
                        write!(
                            f,
                            "; {subsystems} subsystem{} unreadable in {partly_unobservable} of the targets",
                            if subsystems == 1 { "" } else { "s" }
                        )?;
                    }
                    if *unreadable > 0 {
                        write!(
                            f,
                            "; {unreadable} process{} not readable at all",
                            if *unreadable == 1 { "" } else { "es" }
                        )?;
                    }
                } else if *unobservable > 0 {
                    // An event written before the counts were split.
                    write!(f, "; {unobservable} processes or subsystems unobservable")?;
                }
                if let Some(c) = code {
                    let s = &c.sweep;
                    write!(
                        f,
                        "; code {} of {} verified, a full sweep takes {} check{}",
                        size(s.verified_bytes),
                        size(s.total_bytes),
                        s.checks_per_sweep,
                        if s.checks_per_sweep == 1 { "" } else { "s" }
                    )?;
                    if let Some(ms) = c.sweep_ms {
                        write!(f, " ({})", hms(ms))?;
                    }
                    // Where the verified bytes came from (absent, so 0, in
                    // events written before): docs/code-pages.md.
                    if s.read_bytes > 0 || s.shared_bytes > 0 || s.private_pages > 0 {
                        write!(
                            f,
                            "; code {} read, {} shared, {} private page{}",
                            size(s.read_bytes),
                            size(s.shared_bytes),
                            s.private_pages,
                            if s.private_pages == 1 { "" } else { "s" }
                        )?;
                    }
                }
                if let Some(s) = stopped {
                    write!(
                        f,
                        "; seccomp-filters stopped {} thread{} (longest {} µs)",
                        s.threads,
                        if s.threads == 1 { "" } else { "s" },
                        s.longest.as_micros()
                    )?;
                }
                Ok(())
            }
            EventRecord::Action { time, who, severity, action, outcome, detail } => {
                write!(f, "{} ACTION   {who} {action} [{severity}] {outcome}: {detail}", time_of(*time))
            }
            EventRecord::BaselineRepaired { time, who, copies } => write!(
                f,
                "{} REPAIRED {who}: {copies} in-memory baseline cop{} failed the vote and {} repaired",
                time_of(*time),
                if *copies == 1 { "y" } else { "ies" },
                if *copies == 1 { "was" } else { "were" }
            ),
            EventRecord::BaselineLost { time, who, restored, message } => {
                write!(f, "{} LOST     {who}: {message}{}", time_of(*time), if *restored { " (restored)" } else { "" })
            }
            EventRecord::BaselineFile { time, status, detail } => {
                write!(f, "{} FILE     baseline file {status}: {detail}", time_of(*time))
            }
            EventRecord::Selftest { time, ok, message } => {
                write!(f, "{} SELFTEST {}: {message}", time_of(*time), if *ok { "passed" } else { "FAILED" })
            }
            EventRecord::Rebaseline { time, reason, targets, new, gone, accepted } => {
                write!(
                    f,
                    "{} REBASELINE on {reason}: {targets} targets ({new} new, {gone} gone), {} accepted change{}",
                    time_of(*time),
                    accepted.iter().map(|a| a.changes.len()).sum::<usize>(),
                    if accepted.iter().map(|a| a.changes.len()).sum::<usize>() == 1 { "" } else { "s" }
                )?;
                for a in accepted {
                    for c in &a.changes {
                        write!(f, "\n{} ACCEPTED {} {}: {}", time_of(*time), a.who, a.subsystem, c.text)?;
                    }
                }
                Ok(())
            }
            EventRecord::Campaign {
                time,
                seed,
                baseline_faults,
                baseline_detected,
                baseline_repaired,
                observation_faults,
                observation_dismissed,
                false_alarms,
                missed,
                duration_ms,
            } => write!(
                f,
                "{} CAMPAIGN seed {seed}: {} faults in {:.1} s\n  in-memory baseline copies: {baseline_faults} injected, {baseline_detected} detected, {baseline_repaired} repaired\n  canonical forms as read:   {observation_faults} injected, {observation_dismissed} dismissed by the confirming re-read\n  false alarms: {false_alarms}, missed: {missed}",
                time_of(*time),
                baseline_faults + observation_faults,
                duration_ms / 1000.0
            ),
            EventRecord::TriggersLost { time, source, lost, checked } => write!(
                f,
                "{} TRIGGERS {source} lost {lost} notice{}: full check of {checked} target{} made",
                time_of(*time),
                if *lost == 1 { "" } else { "s" },
                if *checked == 1 { "" } else { "s" }
            ),
            EventRecord::Stopped { time, reason, cycles } => write!(
                f,
                "{} STOPPED  on {reason} after {cycles} check{}",
                time_of(*time),
                if *cycles == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The command name of a process target, empty when unknown.
fn name_of(t: &Target) -> String {
    match t {
        Target::Process { name, .. } => name.clone(),
        _ => String::new(),
    }
}

/// The processes of an object's event for people: how many, the first (with
/// its name and workload) and a few more pids: `100 processes: pid 4242
/// (sleep), 4243, 4244, 4245 and 96 more`.
fn processes(first: &Who, pids: &[u32]) -> String {
    const SHOWN: usize = 4;
    let n = pids.len().max(1);
    let mut s = format!("{n} process{}: {first}", if n == 1 { "" } else { "es" });
    for pid in pids.iter().skip(1).take(SHOWN - 1) {
        s.push_str(&format!(", {pid}"));
    }
    if n > SHOWN {
        s.push_str(&format!(" and {} more", n - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::ChangeKind;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_867_402)
    }

    #[test]
    fn anomaly_json_carries_the_contract_fields() {
        let target = Target::Process { pid: 42, start_time: 7, name: "app".into() };
        let a = Anomaly {
            subsystem: Subsystem::Seccomp,
            expected: Digest::of(b"a"),
            actual: Digest::of(b"b"),
            changes: vec![Change {
                kind: ChangeKind::Changed,
                item: "Seccomp".into(),
                before: Some("0".into()),
                after: Some("2".into()),
                note: Some("filter mode".into()),
            }],
        };
        let e = EventRecord::anomaly(t0(), &target, &a, Severity::Log);
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        for key in ["event", "time", "pid", "subsystem", "severity", "expected", "actual", "changes"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["event"], "anomaly");
        assert_eq!(v["time"], "2026-11-28T12:03:22.000000000Z");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["severity"], "log");
        assert_eq!(v["changes"][0]["text"], "Seccomp 0 -> 2 (filter mode)");
        let back: EventRecord = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            e.to_string(),
            "2026-11-28T12:03:22Z DRIFT    pid 42 (app) seccomp [log]: Seccomp 0 -> 2 (filter mode)"
        );
    }

    #[test]
    fn an_object_anomaly_is_one_event_and_one_line_naming_its_processes() {
        let targets: Vec<Target> =
            (100..200).map(|pid| Target::Process { pid, start_time: 7, name: "sleep".into() }).collect();
        let a = Anomaly {
            subsystem: Subsystem::CgroupLimits,
            expected: Digest::of(b"a"),
            actual: Digest::of(b"b"),
            changes: vec![Change {
                kind: ChangeKind::Changed,
                item: "cgroup pids:/jail pids.max".into(),
                before: Some("1000".into()),
                after: Some("2000".into()),
                note: Some("raised".into()),
            }],
        };
        let e = EventRecord::object_anomaly(t0(), "cgroup pids:/jail", &targets, &a, Severity::Log);
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!((v["pid"].as_u64(), v["object"].as_str()), (Some(100), Some("cgroup pids:/jail")));
        assert_eq!(v["pids"].as_array().map(Vec::len), Some(100));
        assert_eq!(v["names"][99], "sleep");
        let back: EventRecord = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            e.to_string(),
            "2026-11-28T12:03:22Z DRIFT    cgroup pids:/jail (100 processes: pid 100 (sleep), 101, 102, 103 and 96 more) cgroup-limits [log]: cgroup pids:/jail pids.max 1000 -> 2000 (raised)"
        );
        // A process's own anomaly has none of the object's fields.
        let own = EventRecord::anomaly(t0(), &targets[0], &a, Severity::Log).to_json();
        assert!(!own.contains("\"object\"") && !own.contains("\"pids\"") && !own.contains("\"names\""), "{own}");
    }

    #[test]
    fn write_json_appends_the_same_bytes_as_to_json_through_one_buffer() {
        let events = [
            EventRecord::Error { time: t0(), who: Who::default(), message: "a \"quoted\" message".into() },
            EventRecord::check_in_parts(t0(), 7, &crate::Summary::default(), 1),
        ];
        let mut line = b"kept".to_vec();
        for e in &events {
            line.truncate(4);
            e.write_json(&mut line);
            assert_eq!(line.get(4..), Some(e.to_json().as_bytes()));
        }
    }

    #[test]
    fn node_events_have_no_pid() {
        let e = EventRecord::Error { time: t0(), who: Who::default(), message: "x".into() };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert!(v.get("pid").is_none());
        assert_eq!(v["event"], "error");
    }
}
