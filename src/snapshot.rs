//! Baselines and checks: [`snapshot`] takes the known-good state of a target,
//! [`check`] compares the present against it and explains what drifted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::canon;
use crate::explain::{self, Change};
use crate::observe::code::{CodeBudget, CodeSweep, Sweep};
use crate::observe::filters::Stops;
use crate::observe::{Against, Observer, Slot};
use crate::{Clock, Digest, Error, Scope, Source, Subsystem, Target};

pub use crate::observation::Observation;

mod image;

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
    /// For a subsystem whose form is made from one file's text alone
    /// (`memory-maps`, from `maps`), the digest of the text this form was
    /// made from ([`canon::source_digest`]). A check that reads that same
    /// text again knows the form is the baseline's without canonicalizing
    /// it; any other text is canonicalized and compared as always. Covered,
    /// like everything else, by the file's digest (and HMAC). Files written
    /// before it existed have none, and are checked the long way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<Subsystem, Digest>,
    /// For a process whose memory maps or code are watched, the program it
    /// was running (`/proc/PID/exe`): when its memory maps or code look
    /// drifted and this file is not the one it runs now, it executed a new
    /// program — an exec, reported as such, not drift. Files written before
    /// it existed have none (an exec then is drift, as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<Executable>,
}

/// The program a process runs: `/proc/PID/exe`, by path and identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executable {
    /// The path, as the kernel prints it (` (deleted)` for a file deleted since).
    pub path: String,
    /// The file's device.
    pub dev: u64,
    /// The file's inode.
    pub inode: u64,
}

impl Executable {
    /// The program `fs` runs now, if it can be read.
    pub fn of<S: Source + ?Sized>(fs: &S) -> Result<Executable, Error> {
        let id = fs.stat("exe")?;
        let path = fs.read_link("exe")?;
        Ok(Executable { path, dev: id.dev, inode: id.ino })
    }

    /// Whether `id` is this file.
    pub fn is(&self, id: crate::FileId) -> bool {
        self.dev == id.dev && self.inode == id.ino
    }
}

impl Snapshot {
    /// The digest of `subsystem`, if it was observed.
    pub fn digest(&self, subsystem: Subsystem) -> Option<Digest> {
        self.subsystems.get(&subsystem)?.digest()
    }

    /// Brings a snapshot read from an older baseline file to the current
    /// forms: a `seccomp` tuple that still holds fields fdir no longer reads
    /// ([`canon::status::NOT_ISOLATION`]) loses them, and its digest is
    /// recomputed. Call it after [`Snapshot::verify`]: the file's own
    /// records were checked as written. Returns whether anything changed.
    pub fn upgrade(&mut self) -> bool {
        let Some(Observation::Observed { digest, records }) = self.subsystems.get_mut(&Subsystem::Seccomp) else {
            return false;
        };
        let mut changed = false;
        for r in records.iter_mut() {
            if let Some(v) = canon::status::drop_not_isolation(&r.value) {
                r.value = v;
                changed = true;
            }
        }
        if !changed {
            return false;
        }
        records.sort_by_cached_key(|r| format!("{}\t{}", r.key, r.value));
        records.dedup();
        match canon::digest_records(Subsystem::Seccomp, records) {
            Some(d) => *digest = d,
            None => return false,
        }
        true
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

/// A check's report and anomalies, kept from one check to the next so that
/// a steady-state check reuses their memory ([`Checker::check_into`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The report of the last check.
    pub report: Report,
    /// The anomalies of the last check (empty when nothing drifted).
    pub anomalies: Vec<Anomaly>,
}

impl Reading {
    /// An empty reading for checks of `target`.
    pub fn new(target: Target) -> Reading {
        Reading {
            report: Report {
                target,
                checked_at: SystemTime::UNIX_EPOCH,
                elapsed: Duration::ZERO,
                subsystems: BTreeMap::new(),
                code: None,
                stopped: None,
            },
            anomalies: Vec::new(),
        }
    }

    /// The reading as a [`Verdict`].
    pub fn into_verdict(self) -> Verdict {
        if self.anomalies.is_empty() {
            Verdict::Ok(self.report)
        } else {
            Verdict::Anomaly { anomalies: self.anomalies, report: self.report }
        }
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
    snapshot_sharing(clock, fs, subsystems, None)
}

/// [`snapshot_with`] in a monitor: the code chunks of its round are taken
/// (`code_pages.rs`), nothing else of what its targets share.
pub(crate) fn snapshot_sharing<C: Clock + ?Sized, S: Source + ?Sized>(
    clock: &C,
    fs: &S,
    subsystems: &[Subsystem],
    shared: Option<&std::sync::Arc<crate::shared::Shared>>,
) -> Result<Snapshot, Error> {
    let target = fs.target()?;
    let scope = target.scope();
    let mut observer = Observer::new();
    if let Some(shared) = shared {
        observer.share_code(std::sync::Arc::clone(shared));
    }
    observer.keep_sources();
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
    let sources = observer.sources();
    let subsystems = observed(&observer);
    let exe = match target.scope() {
        Scope::Process if wanted_for_exec(&observer) => Executable::of(fs).ok(),
        _ => None,
    };
    Ok(Snapshot { target, taken_at, subsystems, settle, sources, exe })
}

/// Whether the observer read a process's memory maps or code, the forms an
/// exec replaces (and so the ones that need the executable to tell an exec).
fn wanted_for_exec(observer: &Observer) -> bool {
    observer.slots().iter().any(|(s, _)| matches!(s, Subsystem::MemoryMaps | Subsystem::Code))
}

/// After an exec: a baseline of `subsystems` (the memory maps and code) of
/// the new program, waited for until its state has stopped changing as for a
/// young process (ld.so may still be loading libraries), however old the
/// process is.
pub(crate) fn snapshot_after_exec<C: Clock + ?Sized, S: Source + ?Sized>(
    clock: &C,
    fs: &S,
    subsystems: &[Subsystem],
) -> Result<Snapshot, Error> {
    let target = fs.target()?;
    let scope = target.scope();
    let mut observer = Observer::new();
    observer.keep_sources();
    let light: Vec<Subsystem> = subsystems.iter().copied().filter(|s| !read_once(*s)).collect();
    let age = fs.age()?.unwrap_or_default();
    let settle = Some(wait_to_settle(&mut observer, fs, scope, &light, age)?);
    if light.len() != subsystems.len() {
        observer.observe(fs, scope, subsystems)?;
    }
    let taken_at = clock.wall();
    let sources = observer.sources();
    let subsystems = observed(&observer);
    let exe = Executable::of(fs).ok();
    Ok(Snapshot { target, taken_at, subsystems, settle, sources, exe })
}

fn observed(observer: &Observer) -> BTreeMap<Subsystem, Observation> {
    observer
        .slots()
        .iter()
        .map(|(sub, slot)| {
            let obs = match slot {
                Slot::Observed(c) => {
                    let mut c = c.clone();
                    Observation::Observed { digest: c.digest(*sub), records: c.records().into() }
                }
                Slot::Unobservable(reason) => Observation::Unobservable { reason: reason.to_string() },
                Slot::NotApplicable(reason) => Observation::NotApplicable { reason: reason.to_string() },
            };
            (*sub, obs)
        })
        .collect()
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
    /// never reuses what the drifted read saw, until the drift settles.
    drifted_last: bool,
    /// The drift of the last check that found one (each drifted subsystem
    /// and the digest it drifted to), and how many fresh reads in a row
    /// found exactly it. From [`SETTLED_AFTER`] on, the drift is settled:
    /// the checks after it use the memos and the task table again (a drift
    /// that stays until the baseline is taken again costs what a clean
    /// check costs), until one finds another drift, or none.
    drift: Vec<(Subsystem, Digest)>,
    fresh_agreeing: u32,
    /// The last check's anomalies while a check runs (empty between):
    /// where a subsystem drifted to the same digest again, its explanation.
    explained: Vec<Anomaly>,
}

/// Fresh reads in a row that must find the same drift before the reads
/// after them use the memos again ([`Checker`]'s `drift`).
pub(crate) const SETTLED_AFTER: u32 = 2;

impl Checker {
    /// A checker with empty buffers and the default code budget
    /// ([`CodeBudget::DEFAULT`]).
    pub fn new() -> Checker {
        Checker::default()
    }

    /// A checker that reads at most `budget` bytes of code per check.
    pub fn with_code_budget(budget: CodeBudget) -> Checker {
        Checker {
            observer: Observer::new(),
            code: CodeSweep::new(budget),
            drifted_last: false,
            drift: Vec::new(),
            fresh_agreeing: 0,
            explained: Vec::new(),
        }
    }

    /// This checker, taking what other targets of the same monitor read of
    /// the objects they share this round (`shared.rs`).
    pub(crate) fn sharing(mut self, shared: &std::sync::Arc<crate::shared::Shared>) -> Checker {
        self.observer.share(std::sync::Arc::clone(shared));
        self
    }

    /// A new checker with this one's code budget and shared objects: for a
    /// target whose baseline was taken again (an exec).
    pub(crate) fn anew(&self) -> Checker {
        let fresh = Checker::with_code_budget(self.code_budget());
        match self.observer.shared() {
            Some(shared) => fresh.sharing(shared),
            None => fresh,
        }
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
    /// injection for `fdir selftest`; a careful re-read within the check gets
    /// it again): the confirming re-read must dismiss it.
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
        let mut reading = Reading::new(baseline.target.clone());
        self.check_into(baseline, clock, fs, subsystems, &mut reading)?;
        Ok(reading.into_verdict())
    }

    /// Whether a form built from every thread's files differs from the
    /// baseline's, and is not the form of a settled drift (found by careful
    /// reads already).
    fn per_thread_drift(&mut self, baseline: &Snapshot) -> bool {
        // A settled drift's form, found again, is not read again.
        let settled: &[(Subsystem, Digest)] = if self.fresh_agreeing >= SETTLED_AFTER { &self.drift } else { &[] };
        self.observer.slots_mut().iter_mut().any(|(sub, slot)| {
            let per_thread = matches!(
                sub,
                Subsystem::Seccomp | Subsystem::Credentials | Subsystem::Cgroups | Subsystem::CgroupLimits
            );
            match slot {
                Slot::Observed(canon) if per_thread => {
                    let now = canon.digest(*sub);
                    baseline.digest(*sub) != Some(now) && !settled.contains(&(*sub, now))
                }
                _ => false,
            }
        })
    }

    /// Checks `subsystems` of `fs` against `baseline` into `out`, reusing its
    /// memory: a steady-state check of an unchanged process allocates nothing.
    pub fn check_into<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
        out: &mut Reading,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let checked_at = clock.wall();
        if !fs.same_target(&baseline.target)? {
            let target = fs.target()?;
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
        // A read after a drift is fresh: no memo, and no task table (its
        // namespaces, limits and root from `/proc`, a second source), until
        // fresh reads have found the same drift SETTLED_AFTER times.
        let mut fresh = self.drifted_last && self.fresh_agreeing < SETTLED_AFTER;
        self.observer.set_fresh(fresh);
        self.drifted_last = true;
        // Quickly first: a thread unlike the one before it is not asked
        // whether it is exiting. Only if that shows a per-thread form other
        // than the baseline's, carefully, afresh (see `Observer::set_quick`).
        self.observer.set_quick(true);
        let fault = self.observer.pending_fault();
        let read = |observer: &mut Observer, code: &mut CodeSweep| {
            let against = Against { subsystems: &baseline.subsystems, sources: &baseline.sources, code };
            observer.observe_against(fs, baseline.target.scope(), subsystems, against)
        };
        read(&mut self.observer, &mut self.code)?;
        if self.observer.unasked() > 0 && self.per_thread_drift(baseline) {
            fresh = true;
            self.observer.set_fresh(true);
            // An injected fault belongs to the read the check reports.
            if let Some(seed) = fault {
                self.observer.inject(seed);
            }
            read(&mut self.observer, &mut self.code)?;
        }

        // The last check's anomalies: a drift to the same digest from the
        // same baseline digest has the same explanation, taken from there
        // (a drift that stays is explained once).
        let last = &mut self.explained;
        std::mem::swap(last, &mut out.anomalies);
        let anomalies = &mut out.anomalies;
        anomalies.clear();
        let statuses = &mut out.report.subsystems;
        statuses.retain(|s, _| subsystems.contains(s));
        let (slots, changing) = self.observer.slots_and_changing();
        for (sub, slot) in slots {
            let sub = *sub;
            let status = match (baseline.subsystems.get(&sub), slot) {
                // A reason's status is made again only when it differs
                // from the one there (a steady cycle allocates nothing).
                (Some(Observation::Unobservable { reason }), _) => {
                    set_reason(statuses, sub, |reason| Status::NoBaseline { reason }, reason);
                    continue;
                }
                (_, Slot::Unobservable(reason)) => {
                    set_reason(statuses, sub, |reason| Status::Unobservable { reason }, reason);
                    continue;
                }
                (Some(Observation::NotApplicable { .. }), Slot::NotApplicable(reason)) => {
                    set_reason(statuses, sub, |reason| Status::NotApplicable { reason }, reason);
                    continue;
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
                        if !Subsystem::SEED.contains(&sub) || !changing.contains(&sub) {
                            // Not kept once they matched: the next check
                            // builds them again (for cgroup-limits and mounts
                            // from what the round read once for every process
                            // that shares them), or takes them from a memo by
                            // their digest. A seed subsystem whose text
                            // changes every cycle (a busy process's
                            // `status`) keeps its buffers: its steady cycle
                            // allocates nothing (`tests/allocations.rs`).
                            *canon = canon::Canon::known(sub, actual);
                        }
                        Status::Unchanged
                    } else if let Some(at) =
                        last.iter().position(|a| a.subsystem == sub && a.expected == *digest && a.actual == actual)
                    {
                        anomalies.push(last.swap_remove(at));
                        Status::Drifted
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
        let report = &mut out.report;
        if report.target != baseline.target {
            report.target.clone_from(&baseline.target);
        }
        report.checked_at = checked_at;
        report.elapsed = started.elapsed();
        report.code = code;
        report.stopped = (stops.threads > 0).then_some(stops);
        self.drifted_last = !anomalies.is_empty();
        self.explained.clear();
        self.settle(fresh, &out.anomalies);
        Ok(())
    }

    /// Counts the fresh reads in a row that found `anomalies` (see
    /// `drift`): none found resets it, another drift starts it again.
    fn settle(&mut self, fresh: bool, anomalies: &[Anomaly]) {
        let same = self.drift.len() == anomalies.len()
            && self.drift.iter().zip(anomalies).all(|(&(sub, actual), a)| sub == a.subsystem && actual == a.actual);
        if same {
            self.fresh_agreeing = self.fresh_agreeing.saturating_add(u32::from(fresh));
        } else {
            self.drift.clear();
            self.drift.extend(anomalies.iter().map(|a| (a.subsystem, a.actual)));
            self.fresh_agreeing = u32::from(fresh && !anomalies.is_empty());
        }
    }
}

/// Sets `sub`'s status to the one `make` makes of `reason`, unless it is
/// that already: made again only when it differs (no allocation for a
/// status that stays).
fn set_reason(statuses: &mut BTreeMap<Subsystem, Status>, sub: Subsystem, make: fn(String) -> Status, reason: &str) {
    let same = statuses.get(&sub).is_some_and(|old| {
        let now = match old {
            Status::Unobservable { reason: r }
            | Status::NoBaseline { reason: r }
            | Status::NotApplicable { reason: r } => r.as_str(),
            _ => return false,
        };
        now == reason && std::mem::discriminant(old) == std::mem::discriminant(&make(String::new()))
    });
    if !same {
        statuses.insert(sub, make(reason.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Source` methods of a mock process of one live thread, tid 1.
    macro_rules! one_live_thread {
        () => {
            fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
                out.clear();
                out.push(1);
                Ok(())
            }
            fn leader(&self) -> Option<u32> {
                Some(1)
            }
            fn alive(&self) -> bool {
                true
            }
        };
    }
    use crate::canon::Record;

    /// The derived form the hand-written one replaces.
    #[derive(Debug, Deserialize)]
    #[serde(tag = "status", rename_all = "kebab-case")]
    enum Derived {
        Observed { digest: Digest, records: Vec<Record> },
        Unobservable { reason: String },
        NotApplicable { reason: String },
    }

    impl From<Derived> for Observation {
        fn from(d: Derived) -> Observation {
            match d {
                Derived::Observed { digest, records } => Observation::Observed { digest, records: records.into() },
                Derived::Unobservable { reason } => Observation::Unobservable { reason },
                Derived::NotApplicable { reason } => Observation::NotApplicable { reason },
            }
        }
    }

    #[test]
    fn observation_decodes_as_the_derived_form_did() {
        let d = format!("\"{}\"", Digest::of(b"x"));
        let r = r#"[{"key":"k","value":"v"}]"#;
        let same = [
            format!(r#"{{"status":"observed","digest":{d},"records":{r}}}"#),
            format!(r#"{{"records":{r},"digest":{d},"status":"observed"}}"#),
            format!(r#"{{"digest":{d},"extra":[1,{{"a":2}}],"status":"observed","records":[]}}"#),
            r#"{"status":"unobservable","reason":"gone"}"#.to_owned(),
            r#"{"reason":"no lsm","status":"not-applicable","more":null}"#.to_owned(),
            format!(r#"{{"status":"unobservable","reason":"r","digest":{d}}}"#),
            // Rejected by both.
            format!(r#"{{"digest":{d},"records":{r}}}"#),
            format!(r#"{{"status":"observed","records":{r}}}"#),
            format!(r#"{{"status":"observd","digest":{d},"records":{r}}}"#),
            format!(r#"{{"status":"observed","digest":"abc","records":{r}}}"#),
            format!(r#"{{"status":"observed","digest":{d},"records":{{}}}}"#),
            format!(r#"{{"status":"observed","status":"observed","digest":{d},"records":{r}}}"#),
            format!(r#"{{"status":"observed","digest":{d},"digest":{d},"records":{r}}}"#),
            r#"{"status":"unobservable"}"#.to_owned(),
            r#"{"status":"unobservable","reason":7}"#.to_owned(),
            r#"{"status":7,"reason":"r"}"#.to_owned(),
            r#"["observed"]"#.to_owned(),
            r#""observed""#.to_owned(),
            "null".to_owned(),
            "{".to_owned(),
        ];
        for text in &same {
            let ours = serde_json::from_str::<Observation>(text).ok();
            let derived = serde_json::from_str::<Derived>(text).ok().map(Observation::from);
            assert_eq!(ours, derived, "{text}");
        }
        // Stricter on purpose: a known field is checked wherever it stands.
        let text = r#"{"status":"unobservable","reason":"r","records":7}"#;
        assert!(serde_json::from_str::<Derived>(text).is_ok());
        assert!(serde_json::from_str::<Observation>(text).is_err());
        // Looser on purpose, for version 2 of the baseline file, which names
        // an observed subsystem's records by digest: an observed status
        // without records, and a digest alone, decode with no records (the
        // file's record table supplies them; version 1 checks them against
        // the digest).
        for text in [format!(r#"{{"status":"observed","digest":{d}}}"#), d.clone()] {
            assert!(serde_json::from_str::<Derived>(&text).is_err(), "{text}");
            let ours = serde_json::from_str::<Observation>(&text).unwrap();
            assert_eq!(ours, Observation::Observed { digest: Digest::of(b"x"), records: Vec::new().into() }, "{text}");
        }
        // A snapshot round-trips through it.
        let obs = Observation::Observed {
            digest: Digest::of(b"y"),
            records: vec![Record { key: "a".into(), value: "b".into() }].into(),
        };
        let back: Observation = serde_json::from_str(&serde_json::to_string(&obs).unwrap()).unwrap();
        assert_eq!(back, obs);
    }

    /// A source that counts how often it is asked whether a thread exits.
    struct Counting {
        inner: crate::Procfs,
        asked: std::cell::Cell<usize>,
    }

    impl Source for Counting {
        fn target(&self) -> Result<Target, Error> {
            self.inner.target()
        }
        fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            self.inner.read(rel, buf)
        }
        fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
            self.inner.threads(out)
        }
        fn thread_exiting(&self, tid: u32) -> Result<bool, Error> {
            self.asked.set(self.asked.get() + 1);
            self.inner.thread_exiting(tid)
        }
        fn alive(&self) -> bool {
            true
        }
        fn path_of(&self, rel: &str) -> std::path::PathBuf {
            self.inner.path_of(rel)
        }
    }

    const STATUS: &str = "Name:\tt\nUmask:\t0022\nPid:\t1\nSeccomp:\t2\nNoNewPrivs:\t1\n";
    const CGROUP: &str = "1:cpu:/app\n0::/app\n";
    /// A thread in `do_exit`: no Umask, the v1 hierarchy's root.
    const PARTIAL_STATUS: &str = "Name:\tt\nPid:\t2\nSeccomp:\t2\nNoNewPrivs:\t1\n";
    const PARTIAL_CGROUP: &str = "1:cpu:/\n0::/app\n";

    fn source(second: Option<(&str, &str, u64)>) -> Counting {
        let mut files = vec![
            ("maps".to_owned(), String::new()),
            ("task/1/status".to_owned(), STATUS.to_owned()),
            ("task/1/cgroup".to_owned(), CGROUP.to_owned()),
            ("task/1/stat".to_owned(), "1 (t) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 2 0 100".to_owned()),
        ];
        if let Some((status, cgroup, flags)) = second {
            files.push(("task/2/status".to_owned(), status.to_owned()));
            files.push(("task/2/cgroup".to_owned(), cgroup.to_owned()));
            files.push(("task/2/stat".to_owned(), format!("2 (t) R 0 1 1 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 2 0 100")));
        }
        Counting { inner: crate::Procfs::mock_files(files), asked: std::cell::Cell::new(0) }
    }

    /// Quick first, careful only when it matters: an unchanged process is
    /// never asked about its threads, an exiting thread's partial state is
    /// never drift (checked again and again through the memos), and a live
    /// thread unlike the baseline's always is.
    #[test]
    fn an_exiting_threads_partial_state_is_asked_about_only_when_it_would_be_drift() {
        let subs = [Subsystem::Seccomp, Subsystem::Cgroups];
        let clock = crate::ManualClock::new();
        let base = snapshot_with(&clock, &source(None), &subs).unwrap();
        assert!(base.digest(Subsystem::Seccomp).is_some() && base.digest(Subsystem::Cgroups).is_some());

        let unchanged = source(Some((STATUS, CGROUP, 0x40_0100)));
        let mut checker = Checker::new();
        for _ in 0..4 {
            assert!(checker.check(&base, &clock, &unchanged, &subs).unwrap().anomalies().is_empty());
        }
        assert_eq!(unchanged.asked.get(), 0, "threads like the baseline's are not asked about");

        let exiting = source(Some((PARTIAL_STATUS, PARTIAL_CGROUP, 0x40_0104)));
        let mut checker = Checker::new();
        for round in 0..4 {
            let v = checker.check(&base, &clock, &exiting, &subs).unwrap();
            assert!(v.anomalies().is_empty(), "round {round}: {:?}", v.anomalies());
        }
        assert!(exiting.asked.get() > 0, "the checks asked carefully: {}", exiting.asked.get());

        let living = source(Some((PARTIAL_STATUS, PARTIAL_CGROUP, 0x40_0100)));
        let mut checker = Checker::new();
        for round in 0..4 {
            let v = checker.check(&base, &clock, &living, &subs).unwrap();
            let drifted: Vec<Subsystem> = v.anomalies().iter().map(|a| a.subsystem).collect();
            // A missing Umask is no drift of seccomp (the umask is not read:
            // not isolation); the cgroup move is.
            assert_eq!(drifted, [Subsystem::Cgroups], "round {round}");
        }
    }

    /// A process of one thread whose source has status inputs (as the task
    /// table gives them): counts the reads of `status`.
    struct Keyed {
        inner: std::cell::RefCell<crate::Procfs>,
        inputs: std::cell::Cell<Option<(Digest, u32)>>,
        agree: std::cell::Cell<bool>,
        /// Reads of `status`, and of `cgroup`.
        reads: std::cell::Cell<usize>,
        cgroup_reads: std::cell::Cell<usize>,
        /// Its cgroup set, each time it is asked: the first answer, then the
        /// next, the last for good.
        sets: std::cell::RefCell<Vec<u64>>,
    }

    impl Keyed {
        fn new(status: &str) -> Keyed {
            Keyed {
                inner: std::cell::RefCell::new(Keyed::files(status)),
                inputs: std::cell::Cell::new(Some((Digest::of(b"inputs 1"), 1))),
                agree: std::cell::Cell::new(true),
                reads: std::cell::Cell::new(0),
                cgroup_reads: std::cell::Cell::new(0),
                sets: std::cell::RefCell::new(Vec::new()),
            }
        }

        /// In the cgroups `cgroup` says, of cgroup set `set`.
        fn in_set(cgroup: &str, set: u64) -> Keyed {
            let k = Keyed::new(STATUS);
            k.moved(cgroup, set);
            k
        }

        fn moved(&self, cgroup: &str, set: u64) {
            *self.inner.borrow_mut() = Keyed::files_in(STATUS, cgroup);
            *self.sets.borrow_mut() = vec![set];
        }

        fn files(status: &str) -> crate::Procfs {
            Keyed::files_in(status, CGROUP)
        }

        fn files_in(status: &str, cgroup: &str) -> crate::Procfs {
            crate::Procfs::mock_files([("maps", ""), ("status", status), ("cgroup", cgroup)])
        }
    }

    impl Source for Keyed {
        fn target(&self) -> Result<Target, Error> {
            self.inner.borrow().target()
        }
        fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            if rel == "status" {
                self.reads.set(self.reads.get() + 1);
            }
            if rel == "cgroup" {
                self.cgroup_reads.set(self.cgroup_reads.get() + 1);
            }
            self.inner.borrow().read(rel, buf)
        }
        one_live_thread!();
        fn path_of(&self, rel: &str) -> std::path::PathBuf {
            self.inner.borrow().path_of(rel)
        }
        fn cgroup_set(&self, _again: bool) -> Option<u64> {
            let mut sets = self.sets.borrow_mut();
            if sets.len() > 1 { Some(sets.remove(0)) } else { sets.first().copied() }
        }
        fn status_inputs(&self) -> Option<(Digest, u32)> {
            self.inputs.get()
        }
        fn status_inputs_agree(&self, inputs: Digest, _text: &[u8]) -> bool {
            self.agree.get() && self.inputs.get().map(|(d, _)| d) == Some(inputs)
        }
    }

    /// The status memo keyed by the inputs: `status` is read at the first
    /// checks and every `STATUS_TEXT_EVERY`-th after; inputs that do not
    /// agree with the text key nothing (read every check); a change the
    /// inputs show is read and found at once; one they do not show is found
    /// at the next pass that reads the text, within `STATUS_TEXT_EVERY`.
    #[test]
    fn status_inputs_key_the_status_memo_and_a_text_is_read_every_tenth_pass() {
        let subs = [Subsystem::Seccomp, Subsystem::Credentials];
        let clock = crate::ManualClock::new();
        let every = usize::try_from(crate::observe::STATUS_TEXT_EVERY).unwrap();
        let src = Keyed::new(STATUS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..3 * every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        // The first check (no memo yet), the first keyed pass, then one
        // text a period.
        let reads = src.reads.get();
        assert!((3..=5).contains(&reads), "{reads} reads of status in {} checks", 3 * every);

        // Inputs that do not agree with the text key nothing.
        src.agree.set(false);
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        // Every check but the first, which takes the baseline's forms (the
        // inputs are the source it keeps).
        assert_eq!(src.reads.get(), every - 1, "read every check after the first");
        src.agree.set(true);

        // A change the inputs show: found at the first check after.
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("Seccomp:\t2", "Seccomp:\t0"));
        src.inputs.set(Some((Digest::of(b"inputs 2"), 1)));
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::Seccomp]);

        // A change they do not show (a field printed from state the record
        // lacks): found within a period, at the pass that reads the text.
        let src = Keyed::new(STATUS);
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("NoNewPrivs:\t1", "NoNewPrivs:\t0"));
        let found = (1..=every).find(|_| !checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert!(found.is_some(), "found within {every} checks");
    }

    /// Processes of one cgroup set share a round's `cgroup` text: the first
    /// reads it, the others of the same set take it, and each is still
    /// checked against its own baseline (a process whose set is another's
    /// takes that one's text, and drifts). A set that is not the same when
    /// asked again after the read keeps nothing; a new round, a fresh read
    /// (after a drift) and a monitor of one target read their own.
    #[test]
    fn processes_of_one_cgroup_set_share_a_rounds_cgroup_text() {
        const OTHER: &str = "1:cpu:/other\n0::/other\n";
        let subs = [Subsystem::Cgroups];
        let clock = crate::ManualClock::new();
        let (a, b, c) = (Keyed::in_set(CGROUP, 7), Keyed::in_set(CGROUP, 7), Keyed::in_set(OTHER, 8));
        let bases: Vec<Snapshot> = [&a, &b, &c].iter().map(|s| snapshot_with(&clock, *s, &subs).unwrap()).collect();
        let shared = crate::shared::Shared::new();
        let mut checkers: Vec<Checker> = (0..3).map(|_| Checker::new().sharing(&shared)).collect();
        // Reads of each process's `cgroup`; `None`: not counted (a drifted
        // read is read again, carefully).
        let mut round = |expect: [Option<usize>; 3]| -> Vec<Vec<Subsystem>> {
            shared.begin_round();
            let mut drifted = Vec::new();
            for (i, ((src, base), (checker, want))) in
                [&a, &b, &c].iter().zip(&bases).zip(checkers.iter_mut().zip(expect)).enumerate()
            {
                src.cgroup_reads.set(0);
                let v = checker.check(base, &clock, *src, &subs).unwrap();
                assert!(want.is_none_or(|w| w == src.cgroup_reads.get()), "reads of cgroup by process {i}, {expect:?}");
                drifted.push(v.anomalies().iter().map(|a| a.subsystem).collect());
            }
            drifted
        };
        let quiet: Vec<Vec<Subsystem>> = vec![vec![]; 3];
        // The first reads, the second of its set takes it, the third reads its own.
        assert_eq!(round([Some(1), Some(0), Some(1)]), quiet);
        assert_eq!(round([Some(1), Some(0), Some(1)]), quiet, "read again each round");
        // A set that changed around the read: nothing kept.
        *a.sets.borrow_mut() = vec![7, 9, 7];
        assert_eq!(round([Some(1), Some(1), Some(1)]), quiet);
        // b moved into c's cgroups: it drifts, and c (checked after it)
        // takes the text it read.
        b.moved(OTHER, 8);
        assert_eq!(round([Some(1), None, Some(0)]), vec![vec![], vec![Subsystem::Cgroups], vec![]]);
        // The read after it is fresh: its own file, kept for no other.
        assert_eq!(round([Some(1), None, Some(1)]), vec![vec![], vec![Subsystem::Cgroups], vec![]]);
        b.moved(CGROUP, 7);
        // Back in its cgroups: the drift had settled (two careful reads
        // found it), so the text of its set, and quiet.
        assert_eq!(round([Some(1), Some(0), Some(1)]), quiet, "back");
        assert_eq!(round([Some(1), Some(0), Some(1)]), quiet);
        // A monitor of one target keeps nothing for others.
        shared.set_solo(true);
        assert_eq!(round([Some(1), Some(1), Some(1)]), quiet);
    }

    /// A drift that stays (until the baseline is taken again) costs what a
    /// clean check costs once fresh reads have found it SETTLED_AFTER times
    /// in a row: the checks after use the memos again (here: no `status`
    /// read for the same status inputs), and each still finds it. Another
    /// drift is read afresh again, and a return to the baseline is found at
    /// once. A tracker does not re-read a drift it declared at the same
    /// digest. Without the settling, every check reads `status`.
    #[test]
    fn a_drift_that_stays_settles_and_costs_what_a_clean_check_costs() {
        let subs = [Subsystem::Seccomp, Subsystem::Credentials, Subsystem::Cgroups];
        let clock = crate::ManualClock::new();
        let every = usize::try_from(crate::observe::STATUS_TEXT_EVERY).unwrap();
        let src = Keyed::new(STATUS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let drifted = |checker: &mut Checker| -> Vec<Subsystem> {
            checker.check(&base, &clock, &src, &subs).unwrap().anomalies().iter().map(|a| a.subsystem).collect()
        };
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("Seccomp:\t2", "Seccomp:\t0"));
        src.inputs.set(Some((Digest::of(b"inputs 2"), 1)));
        // The read that finds it, then SETTLED_AFTER fresh reads: each reads.
        let settling = 1 + usize::try_from(SETTLED_AFTER).unwrap();
        src.reads.set(0);
        for _ in 0..settling {
            assert_eq!(drifted(&mut checker), [Subsystem::Seccomp]);
        }
        assert!(src.reads.get() >= settling, "each read before it settles reads status");
        let explained = checker.check(&base, &clock, &src, &subs).unwrap().anomalies().to_vec();
        src.reads.set(0);
        for _ in 0..3 * every {
            assert_eq!(drifted(&mut checker), [Subsystem::Seccomp], "found at every check");
        }
        // Explained as a fresh checker explains it.
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies(), explained.as_slice());
        assert_eq!(Checker::new().check(&base, &clock, &src, &subs).unwrap().anomalies(), explained.as_slice());
        // The first pass keyed by the inputs, then a text a period; a pass
        // that reads the text reads it twice (quickly, then carefully: the
        // drifted form is a thread's). Unsettled, every check reads it.
        let reads = src.reads.get();
        assert!((1..=10).contains(&reads), "{reads} reads of status in {} checks of a settled drift", 3 * every);

        // Drifted further: found at once, and read afresh again.
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("Seccomp:\t2", "Seccomp:\t1"));
        src.inputs.set(Some((Digest::of(b"inputs 3"), 1)));
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::Seccomp]);
        assert!(v.anomalies().iter().any(|a| a.changes.iter().any(|c| format!("{c:?}").contains('1'))));
        src.reads.set(0);
        assert_eq!(drifted(&mut checker), [Subsystem::Seccomp]);
        assert!(src.reads.get() >= 1, "the read after another drift is fresh");

        // Back at the baseline: found at the next check.
        *src.inner.borrow_mut() = Keyed::files(STATUS);
        src.inputs.set(Some((Digest::of(b"inputs 1"), 1)));
        assert!(drifted(&mut checker).is_empty());

        // A tracker confirming by two reads re-reads a new drift, and not
        // one it declared at the same digest.
        let mut tracker = crate::confirm::Tracker::new(2);
        let mut checker = Checker::new();
        let cycle = |tracker: &mut crate::confirm::Tracker, checker: &mut Checker| {
            tracker.cycle(checker, &base, &clock, &src, &subs).unwrap()
        };
        assert_eq!(cycle(&mut tracker, &mut checker).reads, 1);
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("Seccomp:\t2", "Seccomp:\t0"));
        src.inputs.set(Some((Digest::of(b"inputs 2"), 1)));
        let first = cycle(&mut tracker, &mut checker);
        assert_eq!((first.reads, first.declared.len()), (2, 1), "{first:?}");
        for _ in 0..every {
            let o = cycle(&mut tracker, &mut checker);
            assert_eq!((o.reads, o.declared.len(), o.transient.len()), (1, 0, 0), "{o:?}");
        }
        assert!(tracker.is_drifted(Subsystem::Seccomp));
    }

    /// A baseline of a process of one thread whose status inputs agree with
    /// its `status` keeps them as the source of its `seccomp` and
    /// `credentials` forms; a first check that finds the same inputs takes
    /// the baseline's forms and reads no `status`, one that finds others
    /// reads it and compares; inputs that disagree with the text, or a
    /// process of more threads, keep no source.
    #[test]
    fn a_baseline_keeps_status_inputs_that_agree_and_a_first_check_of_the_same_reads_no_status() {
        let subs = [Subsystem::Seccomp, Subsystem::Credentials, Subsystem::Cgroups];
        let clock = crate::ManualClock::new();
        let src = Keyed::new(STATUS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        assert_eq!(
            base.sources.keys().copied().collect::<Vec<_>>(),
            [Subsystem::Seccomp, Subsystem::Credentials],
            "{:?}",
            base.sources
        );
        src.reads.set(0);
        assert!(Checker::new().check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert_eq!(src.reads.get(), 0, "the same inputs: no status read");

        // Other inputs: the text is read and compared.
        *src.inner.borrow_mut() = Keyed::files(&STATUS.replace("Seccomp:\t2", "Seccomp:\t0"));
        src.inputs.set(Some((Digest::of(b"inputs 2"), 1)));
        let v = Checker::new().check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::Seccomp]);
        assert!(src.reads.get() > 0, "other inputs: status read");

        // No source where the inputs disagree, or for more threads.
        let src = Keyed::new(STATUS);
        src.agree.set(false);
        assert!(snapshot_with(&clock, &src, &subs).unwrap().sources.is_empty());
        let src = Keyed::new(STATUS);
        src.inputs.set(Some((Digest::of(b"inputs 1"), 2)));
        assert!(snapshot_with(&clock, &src, &subs).unwrap().sources.is_empty());
        // A baseline with no source (an older file): read and compared.
        let src = Keyed::new(STATUS);
        let mut old = snapshot_with(&clock, &src, &subs).unwrap();
        old.sources.clear();
        src.reads.set(0);
        assert!(Checker::new().check(&old, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert!(src.reads.get() > 0);
    }

    /// A process whose source has maps inputs (as the task table's
    /// program of mappings gives them): counts the reads of `maps`.
    struct MapsKeyed {
        maps: std::cell::RefCell<String>,
        copy: std::cell::RefCell<Vec<u8>>,
        reads: std::cell::Cell<usize>,
        /// Copies asked for, and whether the source makes none (a process
        /// of more mappings than a copy holds).
        asked: std::cell::Cell<usize>,
        none: std::cell::Cell<bool>,
    }

    impl MapsKeyed {
        fn new(maps: &str) -> MapsKeyed {
            MapsKeyed {
                maps: std::cell::RefCell::new(maps.to_owned()),
                copy: std::cell::RefCell::new(crate::source::vmas::copy_from_text(maps, 1)),
                reads: std::cell::Cell::new(0),
                asked: std::cell::Cell::new(0),
                none: std::cell::Cell::new(false),
            }
        }
    }

    impl Source for MapsKeyed {
        fn target(&self) -> Result<Target, Error> {
            crate::Procfs::mock("", STATUS, CGROUP).target()
        }
        fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            if rel == "maps" {
                self.reads.set(self.reads.get() + 1);
            }
            crate::Procfs::mock(&self.maps.borrow(), STATUS, CGROUP).read(rel, buf)
        }
        one_live_thread!();
        fn path_of(&self, rel: &str) -> std::path::PathBuf {
            std::path::PathBuf::from("/proc/1").join(rel)
        }
        fn maps_inputs(&self, out: &mut Vec<u8>) -> bool {
            self.asked.set(self.asked.get() + 1);
            out.clone_from(&self.copy.borrow());
            !self.none.get()
        }
    }

    /// The maps memo keyed by the maps inputs: `maps` is read at the first
    /// checks and every `MAPS_TEXT_EVERY`-th after; inputs that do not agree
    /// with the text key nothing (read every check); a change the inputs
    /// show is read and found at once; one they do not show (here a
    /// directory renamed with the copy left as it was, as a rename to a
    /// name of the same salted hash would) is found at the next pass that reads the
    /// text, within `MAPS_TEXT_EVERY`.
    #[test]
    fn maps_inputs_key_the_maps_memo_and_a_text_is_read_every_tenth_pass() {
        let subs = [Subsystem::MemoryMaps];
        let clock = crate::ManualClock::new();
        let every = usize::try_from(crate::observe::MAPS_TEXT_EVERY).unwrap();
        let src = MapsKeyed::new(MAPS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..3 * every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let reads = src.reads.get();
        assert!((3..=5).contains(&reads), "{reads} reads of maps in {} checks", 3 * every);

        // Inputs that do not agree with the text (another start) key nothing.
        *src.copy.borrow_mut() =
            crate::source::vmas::copy_from_text(&MAPS.replace("55d0c0a02000-", "55d0c0a01000-"), 1);
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        assert_eq!(src.reads.get(), every, "read every check");

        // A change the inputs show (text made writable): found at the first
        // check after.
        let src = MapsKeyed::new(MAPS);
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let writable = MAPS.replace("r-xp 00028000", "rwxp 00028000");
        *src.maps.borrow_mut() = writable.clone();
        *src.copy.borrow_mut() = crate::source::vmas::copy_from_text(&writable, 1);
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::MemoryMaps]);

        // A change they do not show (the library's directory renamed, the
        // copy kept: a name of the same hash, length and address): found
        // within a period, at the pass that reads the text.
        let src = MapsKeyed::new(MAPS);
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        *src.maps.borrow_mut() = MAPS.replace("/usr/lib/x86_64-linux-gnu/", "/usr/lib/elsewhere/");
        let found = (1..=every).find(|_| !checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert!(found.is_some(), "found within {every} checks");

        // A source that makes no copy: the text is read every check, and a
        // copy asked for once a period, not every check.
        let src = MapsKeyed::new(MAPS);
        src.none.set(true);
        let mut checker = Checker::new();
        for _ in 0..3 * every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        assert_eq!(src.reads.get(), 3 * every, "read every check");
        assert!((2..=4).contains(&src.asked.get()), "{} copies asked for", src.asked.get());
    }

    /// A process whose source has mount inputs (as the task table's
    /// program of mounts gives them): counts the reads of `mountinfo`.
    struct MountsKeyed {
        table: std::cell::RefCell<String>,
        copy: std::cell::RefCell<Vec<u8>>,
        reads: std::cell::Cell<usize>,
    }

    impl MountsKeyed {
        fn new(table: &str) -> MountsKeyed {
            MountsKeyed {
                table: std::cell::RefCell::new(table.to_owned()),
                copy: std::cell::RefCell::new(crate::source::mnts::copy_from_text(table, 1)),
                reads: std::cell::Cell::new(0),
            }
        }
    }

    impl Source for MountsKeyed {
        fn target(&self) -> Result<Target, Error> {
            crate::Procfs::mock("", STATUS, CGROUP).target()
        }
        fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            if rel == "mountinfo" {
                self.reads.set(self.reads.get() + 1);
            }
            crate::Procfs::mock_files([("mountinfo", self.table.borrow().as_str())]).read(rel, buf)
        }
        one_live_thread!();
        fn path_of(&self, rel: &str) -> std::path::PathBuf {
            std::path::PathBuf::from("/proc/1").join(rel)
        }
        fn mount_inputs(&self, out: &mut Vec<u8>) -> bool {
            out.clone_from(&self.copy.borrow());
            true
        }
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
46 27 254:0 /run/app /run/app rw,nosuid,nodev,noexec,relatime - ext4 /dev/vda rw,discard
50 27 0:30 / /tmp rw,relatime - tmpfs tmpfs rw,size=1024k
";

    /// The mounts memo keyed by the mount inputs: `mountinfo` is read at the
    /// first checks and every `MOUNTS_TEXT_EVERY`-th after; inputs that do
    /// not agree with the text key nothing (read every check); a change the
    /// inputs show (a remount read-only) is read and found at once; one
    /// they do not show (a filesystem's own option changed in place) is
    /// found at the next pass that reads the text, within
    /// `MOUNTS_TEXT_EVERY`.
    #[test]
    fn mount_inputs_key_the_mounts_memo_and_a_text_is_read_every_tenth_pass() {
        let subs = [Subsystem::Mounts];
        let clock = crate::ManualClock::new();
        let every = usize::try_from(crate::observe::MOUNTS_TEXT_EVERY).unwrap();
        let src = MountsKeyed::new(MOUNTINFO);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..3 * every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let reads = src.reads.get();
        assert!((3..=5).contains(&reads), "{reads} reads of mountinfo in {} checks", 3 * every);

        // Inputs that do not agree with the text (another parent) key
        // nothing.
        *src.copy.borrow_mut() = crate::source::mnts::copy_from_text(&MOUNTINFO.replace("50 27", "50 22"), 1);
        let mut checker = Checker::new();
        src.reads.set(0);
        for _ in 0..every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        assert_eq!(src.reads.get(), every, "read every check");

        // A change the inputs show: found at the first check after.
        let src = MountsKeyed::new(MOUNTINFO);
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let ro = MOUNTINFO.replace("/tmp rw,relatime", "/tmp ro,relatime");
        *src.table.borrow_mut() = ro.clone();
        *src.copy.borrow_mut() = crate::source::mnts::copy_from_text(&ro, 1);
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::Mounts]);

        // A change they do not show (tmpfs's size, the copy kept: the
        // superblock's private data): found within a period.
        let src = MountsKeyed::new(MOUNTINFO);
        let mut checker = Checker::new();
        for _ in 0..3 {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        *src.table.borrow_mut() = MOUNTINFO.replace("size=1024k", "size=2048k");
        let found = (1..=every).find(|_| !checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert!(found.is_some(), "found within {every} checks");
    }

    /// A process whose source makes some cgroup control files from a record
    /// of values (as the task table's program of cgroup values does): the
    /// record is a number; `pids.max` and `memory.limit_in_bytes` are
    /// "made", `memory.swappiness` read. Counts the reads of made files.
    struct LimitsMade {
        files: std::cell::RefCell<Vec<(String, String)>>,
        record: std::cell::Cell<u64>,
        made_reads: std::cell::Cell<usize>,
        last_made: std::cell::Cell<bool>,
    }

    const LIMITS_CGROUP: &str = "8:pids:/app\n4:memory:/app\n";

    impl LimitsMade {
        fn new() -> LimitsMade {
            let files = [
                ("cgroup", LIMITS_CGROUP),
                ("task/1/cgroup", LIMITS_CGROUP),
                ("status", STATUS),
                ("task/1/status", STATUS),
                ("cgroupfs/pids/pids.max", "max\n"),
                ("cgroupfs/pids/app/pids.max", "10\n"),
                ("cgroupfs/memory/memory.limit_in_bytes", "9223372036854771712\n"),
                ("cgroupfs/memory/memory.swappiness", "60\n"),
                ("cgroupfs/memory/app/memory.limit_in_bytes", "1073741824\n"),
                ("cgroupfs/memory/app/memory.swappiness", "60\n"),
            ];
            LimitsMade {
                files: std::cell::RefCell::new(files.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
                record: std::cell::Cell::new(1),
                made_reads: std::cell::Cell::new(0),
                last_made: std::cell::Cell::new(false),
            }
        }

        fn mock(&self) -> crate::Procfs {
            crate::Procfs::mock_files(self.files.borrow().clone())
        }

        fn set(&self, file: &str, text: &str) {
            for (k, v) in self.files.borrow_mut().iter_mut() {
                if k == file {
                    *v = text.to_owned();
                }
            }
        }
    }

    impl Source for LimitsMade {
        fn target(&self) -> Result<Target, Error> {
            self.mock().target()
        }
        fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            self.mock().read(rel, buf)
        }
        fn cgroup_list(&self, hierarchy: &str, cgroup: &str, out: &mut Vec<String>) -> Result<(), Error> {
            self.mock().cgroup_list(hierarchy, cgroup, out)
        }
        fn cgroup_read(&self, hierarchy: &str, cgroup: &str, file: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
            let made = file == "pids.max" || file == "memory.limit_in_bytes";
            self.last_made.set(made);
            if made {
                self.made_reads.set(self.made_reads.get() + 1);
            }
            self.mock().cgroup_read(hierarchy, cgroup, file, buf)
        }
        one_live_thread!();
        fn path_of(&self, rel: &str) -> std::path::PathBuf {
            std::path::PathBuf::from("/proc/1").join(rel)
        }
        fn cgroup_values_digest(&self) -> Option<crate::Digest> {
            Some(crate::Digest::of(&self.record.get().to_ne_bytes()))
        }
        fn cgroup_read_made(&self) -> bool {
            self.last_made.get()
        }
    }

    /// Alone in a watch, a `cgroup-limits` pass that finds the same record
    /// of values, cgroups and texts read from files as the last whole read
    /// takes its form without making a text from the record; every
    /// `LIMITS_LISTED_EVERY`-th pass reads them all. A change of a made
    /// file (its record changed) or of a read file is found at the first
    /// check after it; another record that makes the same texts is quiet.
    #[test]
    fn cgroup_limits_made_of_the_same_record_and_texts_take_the_last_form() {
        let subs = [Subsystem::CgroupLimits];
        let clock = crate::ManualClock::new();
        let every = usize::try_from(crate::observe::LIMITS_LISTED_EVERY).unwrap();
        let src = LimitsMade::new();
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        assert_eq!(base.subsystems.len(), 1);
        let mut checker = Checker::new();
        src.made_reads.set(0);
        assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        let per_pass = src.made_reads.get();
        assert!(per_pass >= 3, "{per_pass} made files a whole read");
        for _ in 0..3 * every {
            assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        }
        let whole = src.made_reads.get() / per_pass;
        assert!((2..=5).contains(&whole), "{whole} whole reads in {} checks", 3 * every + 1);
        // A new source, checked quietly three times.
        let warmed = || {
            let src = LimitsMade::new();
            let mut checker = Checker::new();
            for _ in 0..3 {
                assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
            }
            (src, checker)
        };

        // A made file changed: its record changed, found at once.
        src.set("cgroupfs/pids/app/pids.max", "20\n");
        src.record.set(2);
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::CgroupLimits]);

        // A read file changed (the record the same): found at once.
        let (src, mut checker) = warmed();
        src.set("cgroupfs/memory/app/memory.swappiness", "10\n");
        let v = checker.check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::CgroupLimits]);

        // Another record that makes the same texts: read whole, quiet.
        let (src, mut checker) = warmed();
        src.record.set(3);
        src.made_reads.set(0);
        assert!(checker.check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert_eq!(src.made_reads.get(), per_pass, "read whole");
    }

    /// A baseline keeps a process's maps inputs, where they agree with the
    /// `maps` text and every file's path was walked, as the source of its
    /// `memory-maps` form; a first check that finds the same inputs reads
    /// no `maps`. Other inputs: the text is read and compared. Inputs that
    /// disagree, or a path deeper than the walk, keep the text's digest.
    #[test]
    fn a_baseline_keeps_maps_inputs_that_agree_and_a_first_check_of_the_same_reads_no_maps() {
        let subs = [Subsystem::MemoryMaps];
        let clock = crate::ManualClock::new();
        let text_source = canon::source_digest(Subsystem::MemoryMaps, MAPS.as_bytes());
        let src = MapsKeyed::new(MAPS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let source = base.sources.get(&Subsystem::MemoryMaps).copied();
        assert!(source.is_some_and(|s| s != text_source), "the inputs' source: {source:?}");
        src.reads.set(0);
        assert!(Checker::new().check(&base, &clock, &src, &subs).unwrap().anomalies().is_empty());
        assert_eq!(src.reads.get(), 0, "the same inputs: no maps read");

        // Other inputs (text made writable): the text is read and compared.
        let writable = MAPS.replace("r-xp 00028000", "rwxp 00028000");
        *src.maps.borrow_mut() = writable.clone();
        *src.copy.borrow_mut() = crate::source::vmas::copy_from_text(&writable, 1);
        let v = Checker::new().check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::MemoryMaps]);
        assert!(src.reads.get() > 0, "other inputs: maps read");

        // The same copy with another path's witness (a directory renamed
        // above the library): read, and found.
        let src = MapsKeyed::new(MAPS);
        let base = snapshot_with(&clock, &src, &subs).unwrap();
        let renamed = MAPS.replace("/usr/lib/x86_64-linux-gnu/", "/usr/lib/elsewhere/");
        *src.maps.borrow_mut() = renamed.clone();
        *src.copy.borrow_mut() = crate::source::vmas::copy_from_text(&renamed, 1);
        let libc = crate::source::vmas::HEAD - 8 + 2 * crate::source::vmas::VMA + 11 * 8;
        src.copy.borrow_mut()[libc..libc + 8].copy_from_slice(&4u64.to_ne_bytes());
        let v = Checker::new().check(&base, &clock, &src, &subs).unwrap();
        assert_eq!(v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>(), [Subsystem::MemoryMaps]);

        // No inputs' source where they disagree with the text, or where a
        // path was too deep to walk: the text's.
        let src = MapsKeyed::new(MAPS);
        *src.copy.borrow_mut() =
            crate::source::vmas::copy_from_text(&MAPS.replace("55d0c0a02000-", "55d0c0a01000-"), 1);
        assert_eq!(snapshot_with(&clock, &src, &subs).unwrap().sources.get(&Subsystem::MemoryMaps), Some(&text_source));
        let src = MapsKeyed::new(MAPS);
        let sleep = crate::source::vmas::HEAD - 8 + 11 * 8;
        src.copy.borrow_mut()[sleep..sleep + 8].copy_from_slice(&crate::source::vmas::PATH_DEEP.to_ne_bytes());
        assert_eq!(snapshot_with(&clock, &src, &subs).unwrap().sources.get(&Subsystem::MemoryMaps), Some(&text_source));
    }

    const MAPS: &str = "\
55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep
55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]
7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffc9e9fa000-7ffc9e9fc000 r-xp 00000000 00:00 0 [vdso]
";

    /// A baseline keeps the digest of the `maps` text its form was made
    /// from. A check that reads that very text takes the baseline's form
    /// without canonicalizing it; any other text is canonicalized and
    /// compared, and a baseline without that digest (a file from before
    /// it), or with a wrong one, gives the same verdicts the long way.
    #[test]
    fn a_check_of_the_text_a_baseline_was_made_from_takes_its_form() {
        let clock = crate::ManualClock::new();
        let subs = [Subsystem::MemoryMaps];
        let process = |maps: &str| crate::Procfs::mock(maps, STATUS, CGROUP);
        let base = snapshot_with(&clock, &process(MAPS), &subs).unwrap();
        assert_eq!(
            base.sources.get(&Subsystem::MemoryMaps),
            Some(&canon::source_digest(Subsystem::MemoryMaps, MAPS.as_bytes()))
        );
        // Moved (another address space layout, the heap grown): another
        // text, the same form. A new executable mapping: drift.
        let moved = MAPS.replace("55d0c", "56e1d").replace("1b6f000", "1c00000");
        let grown = format!("{MAPS}7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n");
        let anomalies = |b: &Snapshot, maps: &str| {
            Checker::new().check(b, &clock, &process(maps), &subs).unwrap().anomalies().len()
        };
        assert_eq!([anomalies(&base, MAPS), anomalies(&base, &moved), anomalies(&base, &grown)], [0, 0, 1]);

        // The digest decides for its own text only: a baseline whose form is
        // `grown`'s and whose source is `MAPS` takes that form for `MAPS`
        // (it is not canonicalized, or it would drift), and canonicalizes
        // and compares any other text.
        let mut forged = snapshot_with(&clock, &process(&grown), &subs).unwrap();
        forged.sources.clone_from(&base.sources);
        assert_eq!(anomalies(&forged, MAPS), 0, "the text the source names is not canonicalized");
        let other = format!("{moved}7f0000002000-7f0000003000 r-xp 00000000 00:00 0 \n");
        assert_eq!(anomalies(&forged, &other), 1, "any other text is");
        // A kind of executable anonymous memory the baseline has and the
        // process has not at the moment is not drift (`maps::project`).
        assert_eq!(anomalies(&forged, &moved), 0, "a kind absent for now");
        assert_eq!(anomalies(&forged, &grown), 0);

        for sources in [BTreeMap::new(), BTreeMap::from([(Subsystem::MemoryMaps, Digest::of(MAPS.as_bytes()))])] {
            let mut b = base.clone();
            b.sources = sources;
            assert_eq!([anomalies(&b, MAPS), anomalies(&b, &moved), anomalies(&b, &grown)], [0, 0, 1]);
        }
        // Nothing but a process's own memory maps has a source digest.
        let all = snapshot_with(&clock, &process(MAPS), &[Subsystem::Seccomp, Subsystem::Cgroups]).unwrap();
        assert!(all.sources.is_empty());
    }
}
