//! Baselines and checks: [`snapshot`] takes the known-good state of a target,
//! [`check`] compares the present against it and explains what drifted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::canon::{self, Record};
use crate::explain::{self, Change};
use crate::observe::code::{CodeBudget, CodeSweep, Sweep};
use crate::observe::filters::Stops;
use crate::observe::{Against, Observer, Slot};
use crate::{Clock, Digest, Error, Scope, Source, Subsystem, Target};

/// The state of one subsystem in a snapshot.
///
/// In JSON, `"status"` is `"observed"`, `"unobservable"` or `"not-applicable"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Observation {
    /// Read and canonicalized.
    Observed {
        /// SHA-256 of the canonical records.
        digest: Digest,
        /// The canonical records, kept so drift can be explained later, on
        /// another machine if need be.
        records: Vec<Record>,
    },
    /// Could not be read; not drift, but reported.
    Unobservable {
        /// Why, naming the file.
        reason: String,
    },
    /// The target does not have this structure: no security module labels
    /// processes on this node (`lsm`), or the subsystem is of the other scope
    /// (`kernel` of a process). A state, not a failure: never drift while it
    /// lasts, reported as such.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

/// How long [`snapshot`] waited for a young process to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settle {
    /// How old the process was when the snapshot began.
    #[serde(with = "crate::time::millis")]
    pub age: Duration,
    /// How long the snapshot waited.
    #[serde(with = "crate::time::millis")]
    pub waited: Duration,
    /// Whether its state stopped changing within the wait (otherwise the
    /// baseline is of a process still changing).
    pub settled: bool,
}

/// The known-good state of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What was observed.
    pub target: Target,
    /// When.
    #[serde(with = "crate::time::rfc3339")]
    pub taken_at: SystemTime,
    /// The state of each subsystem observed.
    pub subsystems: BTreeMap<Subsystem, Observation>,
    /// Set when the target was young and the snapshot waited for it to settle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
}

impl Snapshot {
    /// The digest of `subsystem`, if it was observed.
    pub fn digest(&self, subsystem: Subsystem) -> Option<Digest> {
        match self.subsystems.get(&subsystem)? {
            Observation::Observed { digest, .. } => Some(*digest),
            Observation::Unobservable { .. } | Observation::NotApplicable { .. } => None,
        }
    }

    /// Recomputes every digest from its records; an error names the first
    /// subsystem whose records do not match their digest (a corrupted or
    /// edited snapshot).
    pub fn verify(&self) -> Result<(), Error> {
        for (&sub, obs) in &self.subsystems {
            if let Observation::Observed { digest, records } = obs {
                match canon::digest_records(sub, records) {
                    Some(d) if d == *digest => {}
                    Some(_) => {
                        return Err(Error::Corrupt(format!(
                            "the {sub} records do not match their digest {}",
                            digest.short()
                        )));
                    }
                    None => {
                        return Err(Error::Corrupt(format!("the {sub} records are not in canonical form")));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Snapshot {
    /// Fault injection (`fdir selftest` and tests): flips one bit somewhere
    /// in the snapshot — a record's key or value, a subsystem digest, the
    /// target's start time, or an unobservable reason — chosen by `seed`.
    /// Returns what was changed.
    pub fn flip_bit(&mut self, seed: u64) -> String {
        let mut r = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let pick = |n: usize, x: u64| usize::try_from(x % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0);
        if next() % 9 == 0
            && let Target::Process { start_time, .. } = &mut self.target
        {
            *start_time ^= 1 << (next() % 64);
            return "the target's start time".into();
        }
        let subs: Vec<Subsystem> = self.subsystems.keys().copied().collect();
        let Some(&sub) = subs.get(pick(subs.len(), next())) else {
            self.taken_at += Duration::from_nanos(1 << (next() % 30));
            return "the snapshot time".into();
        };
        let roll = next();
        match self.subsystems.get_mut(&sub) {
            Some(Observation::Observed { digest, records }) if roll % 4 == 0 || records.is_empty() => {
                let byte = pick(32, next());
                if let Some(b) = digest.0.get_mut(byte) {
                    *b ^= 1 << (next() % 8);
                }
                format!("the {sub} digest, byte {byte}")
            }
            Some(Observation::Observed { records, .. }) => {
                let i = pick(records.len(), next());
                let Some(rec) = records.get_mut(i) else { return String::new() };
                let field = if next() % 2 == 0 { &mut rec.key } else { &mut rec.value };
                let mut bytes = std::mem::take(field).into_bytes();
                if bytes.is_empty() {
                    bytes.push(b' ');
                } else {
                    let at = pick(bytes.len(), next());
                    if let Some(b) = bytes.get_mut(at) {
                        *b ^= 1 << (next() % 8);
                    }
                }
                *field = String::from_utf8_lossy(&bytes).into_owned();
                format!("{sub} record {i}")
            }
            Some(Observation::Unobservable { reason } | Observation::NotApplicable { reason }) => {
                reason.push('!');
                format!("the {sub} reason")
            }
            None => String::new(),
        }
    }
}

/// One drifted subsystem: what it was, what it is, and what exactly changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The subsystem that drifted.
    pub subsystem: Subsystem,
    /// The baseline digest.
    pub expected: Digest,
    /// The digest now.
    pub actual: Digest,
    /// What differs, in words a person can act on.
    pub changes: Vec<Change>,
}

/// The state of one subsystem in a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Status {
    /// Same as the baseline.
    Unchanged,
    /// Differs from the baseline (an [`Anomaly`] says how).
    Drifted,
    /// Cannot be read now; not drift.
    Unobservable {
        /// Why, naming the file.
        reason: String,
    },
    /// Could not be read when the baseline was taken, so cannot be compared.
    NoBaseline {
        /// Why it could not be read then.
        reason: String,
    },
    /// Not applicable to the target, then and now (see
    /// [`Observation::NotApplicable`]); not drift.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

/// What a check looked at, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The target checked.
    pub target: Target,
    /// When the check started.
    #[serde(with = "crate::time::rfc3339")]
    pub checked_at: SystemTime,
    /// How long it took.
    #[serde(with = "crate::time::micros")]
    pub elapsed: Duration,
    /// Each subsystem checked and its state.
    pub subsystems: BTreeMap<Subsystem, Status>,
    /// How far the code sweep has come, when `code` was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Sweep>,
    /// How long `seccomp-filters` kept the target's threads stopped, when it
    /// stopped any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stops>,
}

impl Report {
    /// The subsystems that could not be compared, with the reason.
    pub fn unobservable(&self) -> impl Iterator<Item = (Subsystem, &str)> + '_ {
        self.subsystems.iter().filter_map(|(&s, st)| match st {
            Status::Unobservable { reason } | Status::NoBaseline { reason } => Some((s, reason.as_str())),
            _ => None,
        })
    }

    /// The subsystems the target does not have, with the reason.
    pub fn not_applicable(&self) -> impl Iterator<Item = (Subsystem, &str)> + '_ {
        self.subsystems.iter().filter_map(|(&s, st)| match st {
            Status::NotApplicable { reason } => Some((s, reason.as_str())),
            _ => None,
        })
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing drifted.
    Ok(Report),
    /// At least one subsystem drifted.
    Anomaly {
        /// One per drifted subsystem.
        anomalies: Vec<Anomaly>,
        /// The whole check.
        report: Report,
    },
}

impl Verdict {
    /// The report of the check.
    pub fn report(&self) -> &Report {
        match self {
            Verdict::Ok(r) | Verdict::Anomaly { report: r, .. } => r,
        }
    }

    /// The anomalies (empty when nothing drifted).
    pub fn anomalies(&self) -> &[Anomaly] {
        match self {
            Verdict::Ok(_) => &[],
            Verdict::Anomaly { anomalies, .. } => anomalies,
        }
    }

    /// Whether nothing drifted.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok(_))
    }
}

/// A process younger than this may still be loading (exec, ld.so, locale
/// files): [`snapshot`] waits for its state to stop changing.
pub const SETTLE_YOUNGER_THAN: Duration = Duration::from_secs(2);
/// The state must stay the same this long to count as settled.
pub const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// The longest [`snapshot`] waits for a young process.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);
const SETTLE_STEP: Duration = Duration::from_millis(50);

/// Takes a baseline of the seed's three subsystems (memory maps, seccomp,
/// cgroups) of `fs`.
///
/// A process younger than [`SETTLE_YOUNGER_THAN`] is re-read until its state
/// has not changed for [`SETTLE_QUIET`] (at most [`SETTLE_MAX`]); the
/// snapshot's `settle` says so.
///
/// ```no_run
/// use fdir::{snapshot, check, Procfs, SystemClock, Verdict};
/// let fs = Procfs::live();
/// let baseline = snapshot(&SystemClock, &fs)?;
/// match check(&baseline, &SystemClock, &fs)? {
///     Verdict::Ok(_) => println!("no drift"),
///     Verdict::Anomaly { anomalies, .. } => {
///         for a in &anomalies {
///             for c in &a.changes {
///                 println!("{}: {c}", a.subsystem);
///             }
///         }
///     }
/// }
/// # Ok::<(), fdir::Error>(())
/// ```
pub fn snapshot<C: Clock + ?Sized, S: Source + ?Sized>(clock: &C, fs: &S) -> Result<Snapshot, Error> {
    snapshot_with(clock, fs, Subsystem::SEED)
}

/// Takes a baseline of the given subsystems of `fs`.
pub fn snapshot_with<C: Clock + ?Sized, S: Source + ?Sized>(
    clock: &C,
    fs: &S,
    subsystems: &[Subsystem],
) -> Result<Snapshot, Error> {
    let target = fs.target()?;
    let scope = target.scope();
    let mut observer = Observer::new();
    let settle = match fs.age()? {
        Some(age) if age < SETTLE_YOUNGER_THAN => {
            // The intrusive subsystems are read once, after the process has
            // settled: a young process is not stopped or read through a
            // hundred times while it loads.
            let light: Vec<Subsystem> = subsystems.iter().copied().filter(|s| !read_once(*s)).collect();
            let settle = wait_to_settle(&mut observer, fs, scope, &light, age)?;
            if light.len() != subsystems.len() {
                observer.observe(fs, scope, subsystems)?;
            }
            Some(settle)
        }
        _ => {
            observer.observe(fs, scope, subsystems)?;
            None
        }
    };
    let taken_at = clock.wall();
    let subsystems = observer
        .slots()
        .iter()
        .map(|(sub, slot)| {
            let obs = match slot {
                Slot::Observed(c) => {
                    let mut c = c.clone();
                    Observation::Observed { digest: c.digest(*sub), records: c.records() }
                }
                Slot::Unobservable(reason) => Observation::Unobservable { reason: reason.clone() },
                Slot::NotApplicable(reason) => Observation::NotApplicable { reason: reason.clone() },
            };
            (*sub, obs)
        })
        .collect();
    Ok(Snapshot { target, taken_at, subsystems, settle })
}

/// Subsystems that stop the target or read all of its code: read once for a
/// baseline, never in the settle loop.
fn read_once(s: Subsystem) -> bool {
    matches!(s, Subsystem::SeccompFilters | Subsystem::Code)
}

fn digests(observer: &Observer) -> Vec<Option<Digest>> {
    observer
        .slots()
        .iter()
        .map(|(sub, slot)| match slot {
            Slot::Observed(c) => Some(c.clone().digest(*sub)),
            Slot::Unobservable(_) | Slot::NotApplicable(_) => None,
        })
        .collect()
}

/// Re-reads a young process until its state has been the same for
/// [`SETTLE_QUIET`]. Real time: this waits on the kernel, not on the
/// daemon's clock.
fn wait_to_settle<S: Source + ?Sized>(
    observer: &mut Observer,
    fs: &S,
    scope: Scope,
    subsystems: &[Subsystem],
    age: Duration,
) -> Result<Settle, Error> {
    let start = Instant::now();
    observer.observe(fs, scope, subsystems)?;
    let mut last = digests(observer);
    let mut quiet_since = Instant::now();
    loop {
        if quiet_since.elapsed() >= SETTLE_QUIET {
            return Ok(Settle { age, waited: start.elapsed(), settled: true });
        }
        if start.elapsed() >= SETTLE_MAX {
            return Ok(Settle { age, waited: start.elapsed(), settled: false });
        }
        std::thread::sleep(SETTLE_STEP);
        observer.observe(fs, scope, subsystems)?;
        let now = digests(observer);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

/// Checks the seed's three subsystems of `fs` against `baseline`.
///
/// Fails if `fs` is not the baselined target ([`Error::Reused`] for a reused
/// pid), if the target is gone, or if the baseline lacks one of the three.
pub fn check<C: Clock + ?Sized, S: Source + ?Sized>(baseline: &Snapshot, clock: &C, fs: &S) -> Result<Verdict, Error> {
    check_with(baseline, clock, fs, Subsystem::SEED)
}

/// Checks the given subsystems of `fs` against `baseline`.
///
/// A one-shot check verifies all of the code (`code`, with an unlimited
/// budget); a [`Checker`] spreads that cost over its checks.
pub fn check_with<C: Clock + ?Sized, S: Source + ?Sized>(
    baseline: &Snapshot,
    clock: &C,
    fs: &S,
    subsystems: &[Subsystem],
) -> Result<Verdict, Error> {
    Checker::with_code_budget(CodeBudget::UNLIMITED).check(baseline, clock, fs, subsystems)
}

/// A reusable checker of one target: keeps its read buffers and canonical
/// forms from one check to the next, so a steady-state check allocates almost
/// nothing, and the progress of the `code` sweep, so each check verifies the
/// next [`CodeBudget`]'s worth of code.
#[derive(Debug, Default)]
pub struct Checker {
    observer: Observer,
    code: CodeSweep,
    /// Whether the last check found drift: the next one then reads
    /// everything afresh (see the observer's memos), so a confirming re-read
    /// never reuses what the drifted read saw.
    drifted_last: bool,
}

impl Checker {
    /// A checker with empty buffers and the default code budget
    /// ([`CodeBudget::DEFAULT`]).
    pub fn new() -> Checker {
        Checker::default()
    }

    /// A checker that reads at most `budget` bytes of code per check.
    pub fn with_code_budget(budget: CodeBudget) -> Checker {
        Checker { observer: Observer::new(), code: CodeSweep::new(budget), drifted_last: false }
    }

    /// Changes the code budget; the sweep goes on where it was.
    pub fn set_code_budget(&mut self, budget: CodeBudget) {
        self.code.set_budget(budget);
    }

    /// The code budget.
    pub fn code_budget(&self) -> CodeBudget {
        self.code.budget()
    }

    /// Flips one bit in a canonical form of the next check's first read (fault
    /// injection for `fdir selftest`): the confirming re-read must dismiss it.
    pub fn inject_observation_fault(&mut self, seed: u64) {
        self.observer.inject(seed);
    }

    /// Checks `subsystems` of `fs` against `baseline`; see [`check_with`].
    pub fn check<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
    ) -> Result<Verdict, Error> {
        let started = Instant::now();
        let checked_at = clock.wall();
        let target = fs.target()?;
        if !target.same_as(&baseline.target) {
            return Err(match (&baseline.target, &target) {
                (
                    Target::Process { pid, start_time: expected, .. },
                    Target::Process { pid: p2, start_time: actual, .. },
                ) if pid == p2 => Error::Reused { pid: *pid, expected: *expected, actual: *actual },
                (b, t) => Error::TargetMismatch { baseline: b.to_string(), source_target: t.to_string() },
            });
        }
        for &sub in subsystems {
            if !baseline.subsystems.contains_key(&sub) {
                return Err(Error::NotInBaseline { subsystem: sub });
            }
        }
        self.observer.set_fresh(self.drifted_last);
        self.drifted_last = true;
        self.observer.observe_against(fs, target.scope(), subsystems, Against { baseline, code: &mut self.code })?;

        let mut anomalies = Vec::new();
        let mut statuses = BTreeMap::new();
        for (sub, slot) in self.observer.slots_mut() {
            let sub = *sub;
            let status = match (baseline.subsystems.get(&sub), slot) {
                (Some(Observation::Unobservable { reason }), _) => Status::NoBaseline { reason: reason.clone() },
                (_, Slot::Unobservable(reason)) => Status::Unobservable { reason: reason.clone() },
                (Some(Observation::NotApplicable { .. }), Slot::NotApplicable(reason)) => {
                    Status::NotApplicable { reason: reason.clone() }
                }
                // The structure appeared or vanished (an LSM label where
                // there was none, or the reverse): drift, said as such.
                (Some(Observation::NotApplicable { reason }), Slot::Observed(canon)) => {
                    let actual = canon.digest(sub);
                    let now = canon.records();
                    anomalies.push(Anomaly {
                        subsystem: sub,
                        expected: canon::digest_not_applicable(sub),
                        actual,
                        changes: explain::now_applicable(sub, reason, &now),
                    });
                    Status::Drifted
                }
                (Some(Observation::Observed { digest, records }), Slot::NotApplicable(reason)) => {
                    anomalies.push(Anomaly {
                        subsystem: sub,
                        expected: *digest,
                        actual: canon::digest_not_applicable(sub),
                        changes: explain::no_longer_applicable(sub, records, reason),
                    });
                    Status::Drifted
                }
                (Some(Observation::Observed { digest, records }), Slot::Observed(canon)) => {
                    let actual = canon.digest(sub);
                    if actual == *digest {
                        Status::Unchanged
                    } else {
                        // Only now are records built: explaining is the rare path.
                        let now = canon.records();
                        anomalies.push(Anomaly {
                            subsystem: sub,
                            expected: *digest,
                            actual,
                            changes: explain::explain(sub, records, &now),
                        });
                        Status::Drifted
                    }
                }
                (None, _) => return Err(Error::NotInBaseline { subsystem: sub }),
            };
            statuses.insert(sub, status);
        }
        let code = match statuses.get(&Subsystem::Code) {
            Some(Status::Unchanged | Status::Drifted) => self.code.last(),
            _ => None,
        };
        let stops = self.observer.stops();
        let stopped = (stops.threads > 0).then_some(stops);
        let report = Report { target, checked_at, elapsed: started.elapsed(), subsystems: statuses, code, stopped };
        self.drifted_last = !anomalies.is_empty();
        Ok(if anomalies.is_empty() { Verdict::Ok(report) } else { Verdict::Anomaly { anomalies, report } })
    }
}
