//! Many targets at once: a list of processes, every process (`--all`), or the
//! node. Baselines them, checks them each cycle with confirmation, discovers
//! processes that start and notices those that exit.
//!
//! A process is always (pid, start time): its source is pinned to it, so a
//! reused pid is a new process, baselined on its own, never compared with the
//! old one's baseline.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::baseline::{BaselineFile, Coverage};
use crate::confirm::{Checkpoint, Guard, Guarded, Next, Outcome, Parts, Tracker, guarded_check};
use crate::digest::{Digest, Hasher};
use crate::event::{EventRecord, Who};
use crate::guard::{Redundant, Vote};
use crate::observation::Observation;
use crate::snapshot::{Checker, Status};
use crate::source::{live_processes, node_tasks, proc_links};
use crate::workload::{Selector, Workload};
use crate::{
    Anomaly, Clock, CodeBudget, Error, Procfs, SETTLE_YOUNGER_THAN, Snapshot, Source, Subsystem, Target, snapshot_with,
};

use crate::finding::{Finding, Summary};

struct Watched {
    fs: Procfs,
    /// Three copies, each with its own digest, voted every cycle.
    baseline: Redundant<Snapshot>,
    /// The target, outside the voted copies (for reports).
    target: Target,
    tracker: Tracker,
    checker: Checker,
    /// Subsystems observed at baseline that could not be read at the last
    /// check (a thread traced by a debugger, a target that did not stop),
    /// with the reason: reported when they become so, not every cycle.
    unreadable_now: BTreeMap<Subsystem, String>,
}

/// A process seen but not read: too young to baseline yet, or unreadable.
struct Seen {
    fs: Procfs,
    target: Target,
}

/// The multi-target monitor.
pub struct Monitor {
    coverage: Coverage,
    subsystems: Vec<Subsystem>,
    confirm: u32,
    code_budget: CodeBudget,
    /// Each boxed: a `Watched` is about 2 KiB, and a B-tree keeps its
    /// values inline in nodes of 11, about a third of them empty.
    watched: BTreeMap<u32, Box<Watched>>,
    /// `--all`: young processes, baselined once they have settled.
    pending: BTreeMap<u32, Seen>,
    /// `--all`: kernel threads (no user-space isolation state of their own).
    kthreads: BTreeMap<u32, Procfs>,
    /// `--all`: processes that cannot be read at all; reported once.
    unreadable: BTreeMap<u32, Seen>,
    /// Subsystems of watched processes that were unobservable at baseline.
    partially: usize,
    /// Watched targets with at least one such subsystem.
    partly: usize,
    /// Findings of `resume`, reported by the first cycle.
    carried: Vec<Finding>,
    /// A one-shot check: one copy of each baseline instead of three, and
    /// sources that keep no file open.
    one_shot: bool,
    own_pid: u32,
    /// `--all`, a one-shot check: the listing of `/proc` taken when the
    /// check began, and the processes pinned then that the file did not
    /// name (see [`Pinned`]), for the first scan to take instead of
    /// listing and opening them again.
    listed: Option<Vec<u32>>,
    ahead: BTreeMap<u32, Result<Procfs, Error>>,
    /// `--unit`, `--container`: which processes discovery takes.
    selector: Option<Selector>,
    /// `--unit`, `--container`: processes outside the workload, not looked
    /// at again while they live.
    outside: BTreeMap<u32, Procfs>,
    /// The workloads of processes that exited or were found gone since the
    /// last cycle, for the events that say so (pid, start time, workload).
    /// Those found gone at resume are kept for the first cycle's events.
    gone: BTreeMap<u32, (u64, Workload, bool)>,
    /// The objects the targets share (cgroups), read once a round.
    shared: std::sync::Arc<crate::shared::Shared>,
    /// The drifts of shared objects being gathered or declared, and the
    /// drifts folded into moves: findings by root cause (`roots.rs`).
    roots: crate::roots::Roots,
    /// The cgroup hierarchies, found on the first trigger that names a
    /// cgroup ([`Monitor::recheck`]).
    cgroup_mounts: std::sync::OnceLock<Option<crate::CgroupMounts>>,
    /// Each distinct record set of the watched baselines, held once and
    /// checked every [`HELD_CHECK_EVERY`] rounds (`held.rs`); empty for a
    /// one-shot check.
    held: crate::held::Held,
    /// Rounds begun (part 0 of a cycle).
    rounds: u64,
    /// `--all`: the scan of /proc runs one round in this many (1: every
    /// round). More than 1 only while the proc connector reports every
    /// fork and exit ([`Monitor::set_scan_every`]).
    scan_every: u64,
    /// Rounds since the last scan of /proc.
    since_scan: u64,
    /// The task table's reader (`source::tasks`): loaded the first time a
    /// round has targets (a one-shot check: [`TABLE_FROM_ONE_SHOT`]);
    /// refused once (why), not asked again.
    tasks: Option<Result<crate::source::tasks::Reader, String>>,
    /// `Some(always)`: read the task table in every part (`true`) or never
    /// (`false`), whatever its size ([`Monitor::set_task_table`]).
    table_use: Option<bool>,
    /// The task table walks the task list even where the kernel loads the
    /// lookup program ([`Monitor::set_task_table_walk`]).
    table_walk: bool,
}

/// A one-shot check whose table was not loaded ahead (`TABLE_AHEAD_FROM`)
/// uses the task table from this many targets: it loads
/// the program for one round (about 2.5 ms since the lookup reads the task
/// through a cast, 5 ms before: the kernel's BTF parsed for its offsets,
/// the verifier), on the core that checks next, while the links it
/// saves are read on every core: at 508 processes it saved 2-7 ms of CPU
/// and cost 1-4 ms of elapsed time on two cores (BENCHMARKS.md; measured
/// with the 5 ms load). A watch of
/// namespaces, limits or mounts (the subsystems that ask it) loads it once,
/// and uses it from one target:
/// the lookup program's run (about 0.5-1 µs) saves ten `readlinkat`s, a
/// `pread` and a `statx` (about 17 µs).
const TABLE_FROM_ONE_SHOT: usize = 2000;
/// A one-shot check of every process ([`PinAhead::Every`]) loads the task
/// table's program ahead, on a thread of its own while the baseline file is
/// read and the processes pinned, from this many processes listed in
/// `/proc` ([`Pinned::table_ahead_pays`]): the load then shares the two
/// cores with that work, and the check reads no namespace links, limits or
/// roots. Measured on this
/// project's 2-vCPU machine (`check --all`, median of 30 runs, three rounds
/// in turns; BENCHMARKS.md), with the BTF's names read in place (its pass
/// 0.7 ms): 1.4 ms slower at 71 processes (`/proc`'s link count 81), even
/// at 116 (126), 1.0-1.5 ms faster at 171 (181). (With the pass over the
/// BTF's strings, a load of about 2.5 ms: 1.2 ms slower at 168 processes,
/// 0-1 ms faster at 318, 1.9-3.3 ms faster at 468; with the 5 ms load
/// before, 1.5-2 ms slower at 420.)
const TABLE_AHEAD_FROM: usize = 150;
/// Where the kernel runs only the walk (no lookup program), a part of a
/// round reads the table from this many targets: one read of every
/// process (about 0.2 µs a process) in place of ten links and a file each.
const TABLE_FROM: usize = 16;
/// And only where a part has at least one target for this many tasks of the
/// node: the walk visits every task (about 0.7 µs each, cold, in a watch of
/// 500 processes in 8 parts), a target read from the table saves about 17
/// µs. A workload of 20 processes on a node of 5,000 tasks reads `/proc`.
const TABLE_SAVES: usize = 25;

/// The held record sets are checked against their digests every this many
/// rounds: hashing every distinct set touches all of their memory, which a
/// steady cycle of a few processes otherwise does not (BENCHMARKS.md, the
/// pages a cycle touches). The digests, which decide drift, are voted before
/// every check; the records only explain a drift and are saved, and a save
/// checks them again (`payload::encode`).
pub const HELD_CHECK_EVERY: u64 = 10;

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("coverage", &self.coverage)
            .field("subsystems", &self.subsystems)
            .field("watched", &self.watched.len())
            .field("pending", &self.pending.len())
            .field("unreadable", &self.unreadable.len())
            .finish()
    }
}

fn unobservable_findings(s: &Snapshot, out: &mut Vec<Finding>) -> usize {
    let mut n = 0;
    for (&sub, obs) in &s.subsystems {
        if let Observation::Unobservable { reason } = obs {
            n += 1;
            out.push(Finding::Unobservable { target: s.target.clone(), subsystem: Some(sub), reason: reason.clone() });
        }
    }
    n
}

fn all_unobservable(s: &Snapshot) -> bool {
    !s.subsystems.is_empty() && s.subsystems.values().all(|o| matches!(o, Observation::Unobservable { .. }))
}

/// A workload from a snapshot's `cgroups` records, if it has them and they
/// name one.
fn workload_of_records(s: &Snapshot) -> Option<Workload> {
    match s.subsystems.get(&Subsystem::Cgroups) {
        Some(Observation::Observed { records, .. }) => Workload::from_cgroup_records(records).filter(|w| !w.is_empty()),
        _ => None,
    }
}

/// The workload of a watched process: from its baseline's `cgroups`
/// records, else from its `cgroup` file, read now.
#[cold]
#[inline(never)]
fn workload_of(fs: &Procfs, s: &Snapshot) -> Option<Workload> {
    if let Some(Observation::Observed { .. }) = s.subsystems.get(&Subsystem::Cgroups) {
        return workload_of_records(s);
    }
    let mut cgroup = Vec::new();
    fs.read("cgroup", &mut cgroup).ok()?;
    Some(Workload::from_cgroup(&cgroup)).filter(|w| !w.is_empty())
}

/// Processes looked at together by one discovery, at most: their snapshots
/// are then recorded, and their record sets held once, before the next.
const DISCOVER_BATCH: usize = 128;

/// The most threads a cycle checks on (never more than the machine's cores).
pub const MAX_WORKERS: usize = 8;
/// Fewer targets than this are checked on one thread.
pub const PARALLEL_FROM: usize = 16;

/// A part of a round spread over the interval with at most twice this many
/// targets is checked on one thread (`Monitor::cycle_part`): the targets a
/// runtime puts in one part (`runtime::TARGETS_PER_PART`).
const ONE_THREAD_PART: usize = 128;

fn workers_for(targets: usize) -> usize {
    if targets < PARALLEL_FROM {
        return 1;
    }
    crate::parallel::cores().min(MAX_WORKERS).min(targets.div_ceil(PARALLEL_FROM / 2)).max(1)
}

/// Opens (and pins) each pid, in order; on every core when there are many.
/// `once`: each to be read once (a one-shot check), keeping no file open.
fn open_all(pids: &[u32], once: bool) -> Vec<Result<Procfs, Error>> {
    let workers = workers_for(pids.len());
    if workers > 1 {
        // Their first checks keep the rest of their descriptors open.
        crate::fdcache::reserve(pids.len().saturating_mul(crate::fdcache::PER_TARGET));
    }
    let open = if once { Procfs::try_pid_once } else { Procfs::try_pid };
    crate::parallel::each(pids, workers, |&p| open(p))
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Bug("opening a process panicked".into()))))
        .collect()
}

/// Processes opened and pinned ahead of a resume, by pid (see
/// [`Pinned::while_running`] and [`Monitor::resume_for_one_check_pinned`]).
#[derive(Debug, Default)]
pub struct Pinned {
    opened: BTreeMap<u32, Result<Procfs, Error>>,
    /// The listing of `/proc` they came from ([`PinAhead::Every`]).
    listed: Option<Vec<u32>>,
    /// The task table's reader, loaded ahead on a thread of its own
    /// (`TABLE_AHEAD_FROM`).
    tasks: Option<Result<crate::source::tasks::Reader, String>>,
    /// How many were pinned by the table's records, not their `stat`.
    by_table: usize,
}

/// A process as the pinning threads of [`Pinned::while_running`] leave
/// it: pinned by its `stat`, or opened for the task table's record to pin.
enum Taken {
    Pinned(Result<Procfs, Error>),
    Opened(Result<crate::source::Opened, Error>),
}

/// Which processes [`Pinned::while_running`] opens.
#[derive(Debug, Clone, Copy)]
pub enum PinAhead<'a> {
    /// None: nothing is known of the baseline yet.
    Nothing,
    /// Every process now listed in `/proc`.
    Every,
    /// These.
    Pids(&'a [u32]),
}

impl Pinned {
    /// Runs `f` (reading and decoding a baseline file, which leaves a core
    /// idle while it reads the file and splits it into targets) while a
    /// thread of its own opens and pins the processes `ahead`. A process is
    /// pinned by the start time it has then; a resume compares it with the
    /// baseline's, as it would one opened later. Without a thread to be
    /// had, nothing is pinned ahead.
    pub fn while_running<R>(ahead: PinAhead<'_>, f: impl FnOnce() -> R) -> (R, Pinned) {
        Pinned::run_ahead(ahead, false, f)
    }

    /// [`Pinned::while_running`], and the task table's program loaded on a
    /// thread of its own meanwhile, whatever the number of processes: the
    /// check that resumes from this reads namespaces, limits and roots from
    /// the table (where the kernel loads it) instead of `/proc`.
    pub fn while_running_with_table<R>(ahead: PinAhead<'_>, f: impl FnOnce() -> R) -> (R, Pinned) {
        Pinned::run_ahead(ahead, true, f)
    }

    /// Whether a one-shot check of `ahead` whose baseline has `subsystems`
    /// gains by loading the task table ahead
    /// ([`Pinned::while_running_with_table`]): a check of every process of
    /// a node of 150 processes or more (below that, the load outlasts the
    /// work it shares the cores with), of a subsystem that asks the table
    /// (namespaces, limits, mounts; for any other, the load is wasted), by
    /// a process the kernel lets load it (else the pins would wait for a
    /// table that never comes: see `run_ahead`).
    pub fn table_ahead_pays(ahead: PinAhead<'_>, subsystems: &[Subsystem]) -> bool {
        matches!(ahead, PinAhead::Every)
            && asks_task_table(subsystems, false)
            && proc_links() >= TABLE_AHEAD_FROM
            && crate::source::tasks::may_load()
    }

    /// `table`: load the task table ahead on a thread of its own.
    fn run_ahead<R>(ahead: PinAhead<'_>, table: bool, f: impl FnOnce() -> R) -> (R, Pinned) {
        let expected = match ahead {
            PinAhead::Nothing => return (f(), Pinned::default()),
            PinAhead::Pids(pids) => pids.len(),
            // The link count of /proc is its fixed entries plus one a process.
            PinAhead::Every => proc_links(),
        };
        // Grown while this is the only thread (see `fdcache::reserve`).
        crate::fdcache::reserve(expected.saturating_mul(crate::fdcache::PER_TARGET));
        let next = std::sync::atomic::AtomicUsize::new(0);
        // Takes chunks of `pids` until none is left: the pinning thread from
        // the start, this one once `f` is done. With the table loading, a
        // process's directory is only opened: the table's record of it,
        // read after, pins it (its start time and name) in place of its
        // `stat` (`Opened::pin`).
        // Set once the table is known not to come (its load failed): the
        // pins left read their `stat` on the pinning threads.
        let no_table = std::sync::atomic::AtomicBool::new(!table);
        // Before any directory is opened: a record pins only a process
        // that started before (`Reader::identity`).
        let before_opens = crate::source::tasks::boot_ticks();
        let pin = |pids: &[u32]| {
            let mut out = Vec::new();
            loop {
                let at = next.fetch_add(crate::parallel::CHUNK, std::sync::atomic::Ordering::Relaxed);
                let end = pids.len().min(at.saturating_add(crate::parallel::CHUNK));
                let Some(chunk) = pids.get(at..end).filter(|c| !c.is_empty()) else { break };
                let by_stat = no_table.load(std::sync::atomic::Ordering::Relaxed);
                // For a one-shot check: read once, nothing kept.
                out.extend(chunk.iter().map(|&pid| {
                    let opened = Procfs::open_once(pid);
                    (pid, if by_stat { Taken::Pinned(opened.and_then(|o| o.pin(None))) } else { Taken::Opened(opened) })
                }));
            }
            out
        };
        let listed = std::sync::OnceLock::new();
        let pids = || -> &[u32] {
            match ahead {
                PinAhead::Pids(pids) => pids,
                _ => listed.get_or_init(|| live_processes().unwrap_or_default()),
            }
        };
        // Pins a process the pinning threads opened for the table's record:
        // by that record where it has it (a run of the program), else by its
        // `stat`. Counts the first in `by_table`.
        let finish = |taken: Vec<(u32, Taken)>, reader: Option<&crate::source::tasks::Reader>, by_table: &mut usize| {
            taken
                .into_iter()
                .map(|(pid, taken)| {
                    let pinned = match taken {
                        Taken::Pinned(pinned) => pinned,
                        Taken::Opened(opened) => opened.and_then(|o| {
                            let known = reader.and_then(|r| r.identity(pid, before_opens));
                            *by_table += usize::from(known.is_some());
                            o.pin(known)
                        }),
                    };
                    (pid, pinned)
                })
                .collect::<Vec<_>>()
        };
        // The loaded table, to whichever thread asks first: the pinning
        // thread, else this one (a second asker finds the channel closed
        // once the loading thread is done).
        let (sent, received) = std::sync::mpsc::sync_channel(1);
        let sent = table.then_some(sent);
        let received = std::sync::Mutex::new(received);
        let take_table = || received.lock().ok().and_then(|r| r.recv().ok());
        let (r, opened, tasks, by_table) = std::thread::scope(|scope| {
            // Without a thread for it, the table is loaded by the check, if
            // it asks.
            if let Some(sent) = sent {
                let no_table = &no_table;
                let _ = std::thread::Builder::new().spawn_scoped(scope, move || {
                    let loaded = crate::source::tasks::Reader::load(false, false, true, false);
                    if loaded.is_err() {
                        no_table.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = sent.send(loaded);
                });
            }
            // The pinning thread, its opens done, waits for the table and
            // pins what it opened by the records, while `f` still runs.
            let pinning = std::thread::Builder::new().spawn_scoped(scope, || {
                let taken = pin(pids());
                let tasks = take_table();
                let mut by_table = 0;
                let pinned = finish(taken, tasks.as_ref().and_then(|t| t.as_ref().ok()), &mut by_table);
                (pinned, tasks, by_table)
            });
            let r = f();
            // What the pinning thread has not begun, this one takes. (A
            // thread that panicked leaves its processes to the resume.)
            let Ok(pinning) = pinning else { return (r, None, take_table(), 0) };
            let mine = pin(pids());
            let (theirs, tasks, mut by_table) = pinning.join().unwrap_or_default();
            let tasks = tasks.or_else(take_table);
            let mine = finish(mine, tasks.as_ref().and_then(|t| t.as_ref().ok()), &mut by_table);
            (r, Some(theirs.into_iter().chain(mine).collect()), tasks, by_table)
        });
        match opened {
            Some(opened) => {
                let pinned = Pinned { opened, listed: listed.into_inner(), tasks, by_table };
                if table {
                    tracing::debug!("{} processes pinned by the task table's records", pinned.by_table);
                }
                (r, pinned)
            }
            None => (r, Pinned { tasks, ..Pinned::default() }),
        }
    }

    /// How many processes were pinned ahead (gone and unreadable ones included).
    pub fn len(&self) -> usize {
        self.opened.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
    }
}

/// What a pid not yet known turned out to be ([`look_at_new_pid`]).
enum NewPid {
    /// fdir itself, or gone.
    Nothing,
    /// Its `stat` cannot be read, so it cannot be pinned.
    Unpinned(Error),
    KernelThread(Procfs),
    /// Too young to baseline yet.
    Young(Seen),
    /// Not of the workload watched (`--unit`, `--container`).
    Outside(Procfs),
    /// Its baseline, or why none could be taken.
    Baselined(Procfs, Target, Box<Result<Snapshot, Error>>),
}

/// A process opened ahead of [`Monitor::discover`], for the worker that
/// looks at it to take.
type Opened = std::sync::Mutex<Option<Result<Procfs, Error>>>;

/// Looks at a pid not yet known (see [`Monitor::discover`]); touches no
/// monitor state, so that many can be looked at on every core.
#[allow(clippy::too_many_arguments)]
fn look_at_new_pid<C: Clock + ?Sized>(
    pid: u32,
    opened: Option<Result<Procfs, Error>>,
    own_pid: u32,
    clock: &C,
    subsystems: &[Subsystem],
    wait: bool,
    selector: Option<&Selector>,
    shared: &std::sync::Arc<crate::shared::Shared>,
) -> NewPid {
    if pid == own_pid {
        return NewPid::Nothing;
    }
    let fs = match opened.unwrap_or_else(|| Procfs::try_pid(pid)) {
        Ok(fs) => fs,
        Err(Error::Gone { .. }) => return NewPid::Nothing,
        Err(e) => return NewPid::Unpinned(e),
    };
    let Ok(target) = fs.target() else { return NewPid::Nothing };
    if fs.is_kernel_thread().unwrap_or(false) {
        return NewPid::KernelThread(fs);
    }
    if !wait && fs.age().ok().flatten().is_some_and(|age| age < SETTLE_YOUNGER_THAN) {
        return NewPid::Young(Seen { fs, target });
    }
    if let Some(selector) = selector {
        // Its cgroup once it has settled: where systemd or a runtime put it.
        let mut cgroup = Vec::new();
        match fs.read("cgroup", &mut cgroup) {
            Ok(()) if selector.matches(&cgroup) => {}
            Err(Error::Gone { .. }) => return NewPid::Nothing,
            _ => return NewPid::Outside(fs),
        }
    }
    let taken = crate::snapshot::snapshot_sharing(clock, &fs, subsystems, Some(shared));
    NewPid::Baselined(fs, target, Box::new(taken))
}

/// Whether any of `subsystems` asks the task table: namespaces, limits and
/// mounts (the root) do, and cgroup limits (its program of cgroup values);
/// seccomp, credentials and memory maps too (the status and maps inputs
/// that key a watch's memos, and that a one-shot check compares with the
/// inputs its baseline kept); code only in a watch (`watching`: the maps
/// inputs key its memo, and a one-shot check reads the text).
fn asks_task_table(subsystems: &[Subsystem], watching: bool) -> bool {
    subsystems.iter().any(|s| match s {
        Subsystem::Namespaces | Subsystem::Limits | Subsystem::Mounts | Subsystem::CgroupLimits => true,
        Subsystem::Seccomp | Subsystem::Credentials | Subsystem::MemoryMaps => true,
        Subsystem::Code => watching,
        _ => false,
    })
}

/// Says, once, where namespaces and limits come from now that the task
/// table's reader is loaded (or why it is not).
fn note_task_table(loaded: &Result<crate::source::tasks::Reader, String>) {
    match loaded {
        Ok(r) if r.walks() => {
            tracing::debug!("namespaces and limits come from the task table (an eBPF task iterator)");
        }
        Ok(_) => tracing::debug!("namespaces and limits come from the task table (an eBPF lookup program)"),
        Err(why) => {
            tracing::info!("namespaces and limits are read from /proc: the task table is not used ({why})");
        }
    }
    match loaded.as_ref().map(crate::source::tasks::Reader::cgroup_values) {
        Ok(Ok(())) => tracing::debug!("cgroup control values come from the kernel's structs (an eBPF lookup program)"),
        Ok(Err(why)) => tracing::debug!("cgroup control files are read: their values are not made here ({why})"),
        Err(_) => {}
    }
}

/// Says what a vote of a target's baseline copies found: the copies it
/// repaired, or that none could be trusted. Returns whether the baseline can
/// be used.
fn note_vote(vote: Vote, target: &Target, summary: &mut Summary, findings: &mut Vec<Finding>) -> bool {
    if vote.lost {
        summary.failed += 1;
        findings.push(Finding::BaselineLost { target: target.clone() });
        return false;
    }
    if vote.repairs() > 0 {
        summary.repaired += vote.repairs();
        findings.push(Finding::BaselineRepaired { target: target.clone(), copies: vote.repairs() });
    }
    true
}

impl Guarded for Watched {
    type Source = Procfs;

    fn parts(&mut self) -> Parts<'_, Procfs> {
        Parts { fs: &self.fs, baseline: &mut self.baseline, tracker: &mut self.tracker, checker: &mut self.checker }
    }
}

/// A monitor's side of a target's [`guarded_check`]: the votes said as
/// findings and counted, and a new program re-baselined after the first
/// check.
struct Noted<'a> {
    summary: &'a mut Summary,
    findings: &'a mut Vec<Finding>,
    /// Votes said so far.
    votes: u32,
    /// The target exited.
    exited: bool,
}

impl Guard<Watched> for Noted<'_> {
    fn voted(&mut self, w: &Watched, vote: Vote) -> bool {
        let usable = note_vote(vote, &w.target, self.summary, self.findings);
        if usable && self.votes == 0 {
            self.summary.checked += 1;
        }
        self.votes += 1;
        usable
    }

    /// Memory maps or code that look drifted may be a new program (an
    /// exec): then those are baselined again and the check is done again,
    /// every other subsystem still against the old baseline.
    fn checked<C: Clock + ?Sized>(
        &mut self,
        w: &mut Watched,
        o: &Outcome,
        before: &Checkpoint,
        clock: &C,
        subsystems: &[Subsystem],
    ) -> Next {
        if !(o.declared.iter().any(|a| replaced_by_exec(a.subsystem))
            || o.transient.iter().any(|&s| replaced_by_exec(s)))
        {
            return Next::On;
        }
        let Some(exec) = exec_of(w) else { return Next::On };
        w.tracker.rewind(before.clone());
        match rebaseline_after_exec(w, subsystems, clock, exec) {
            Ok(finding) => {
                self.findings.push(finding);
                Next::Again
            }
            Err(Error::Gone { .. }) => {
                self.findings.push(Finding::Exited { target: w.target.clone() });
                self.exited = true;
                Next::Stop
            }
            Err(e) => {
                self.summary.failed += 1;
                self.findings.push(Finding::Failed {
                    target: w.target.clone(),
                    error: format!("executed a new program, and its new baseline cannot be taken: {e}"),
                });
                Next::Stop
            }
        }
    }
}

/// One target's cycle: its [`guarded_check`], and what it found as
/// findings. Returns whether it has exited.
fn check_one<C: Clock + ?Sized>(
    w: &mut Watched,
    subsystems: &[Subsystem],
    clock: &C,
    summary: &mut Summary,
    findings: &mut Vec<Finding>,
) -> bool {
    let mut noted = Noted { summary, findings, votes: 0, exited: false };
    let result = guarded_check(w, clock, subsystems, &mut noted);
    let Noted { summary, findings, exited, .. } = noted;
    let Some(result) = result else { return exited };
    match result {
        Ok(outcome) => {
            if let Some(report) = w.tracker.last_report() {
                summary.add_report(report);
                let unobservable = |st: &Status| matches!(st, Status::Unobservable { .. });
                if !w.unreadable_now.is_empty() || report.subsystems.values().any(unobservable) {
                    note_unobservable(&w.target, &report.subsystems, &mut w.unreadable_now, findings);
                }
            }
            if !(outcome.transient.is_empty() && outcome.declared.is_empty() && outcome.recovered.is_empty()) {
                note_outcome(&w.target, outcome, summary, findings);
            }
            if subsystems.iter().any(|&s| w.tracker.is_drifted(s)) {
                summary.drifted += 1;
            }
        }
        Err(Error::Gone { .. }) => {
            findings.push(Finding::Exited { target: w.target.clone() });
            return true;
        }
        Err(e) => {
            summary.failed += 1;
            findings.push(Finding::Failed { target: w.target.clone(), error: e.to_string() });
        }
    }
    false
}

/// The subsystems an exec replaces: they are baselined again after one.
fn replaced_by_exec(s: Subsystem) -> bool {
    matches!(s, Subsystem::MemoryMaps | Subsystem::Code)
}

/// The program a process runs now, if it is not the one its baseline
/// names: it executed a new program. The identity of `/proc/PID/exe` (device
/// and inode of the file the kernel recorded at the exec) decides; it is
/// asked only when the memory maps or code already look drifted, so a steady
/// cycle never pays for it. A baseline without an executable (an older
/// file, one that could not be read) never sees an exec.
#[cold]
#[inline(never)]
fn exec_of(w: &Watched) -> Option<(crate::Executable, crate::Executable)> {
    let old = w.baseline.get().exe.clone()?;
    let now = w.fs.stat("exe").ok()?;
    if old.is(now) {
        return None;
    }
    let new = crate::Executable::of(&w.fs).ok()?;
    (!old.is(crate::FileId { dev: new.dev, ino: new.inode })).then_some((old, new))
}

/// After an exec: the memory-maps and code baselines of the new program
/// (waited for until it has settled), put into the target's baseline with
/// its new executable and name; the checker starts afresh (its memos and
/// code sweep were the old program's) and the tracker forgets any drift of
/// those subsystems.
#[cold]
#[inline(never)]
fn rebaseline_after_exec<C: Clock + ?Sized>(
    w: &mut Watched,
    subsystems: &[Subsystem],
    clock: &C,
    (old, _): (crate::Executable, crate::Executable),
) -> Result<Finding, Error> {
    let retake: Vec<Subsystem> = subsystems.iter().copied().filter(|&s| replaced_by_exec(s)).collect();
    let fresh = crate::snapshot::snapshot_after_exec(clock, &w.fs, &retake)?;
    let mut base = w.baseline.get().clone();
    let anomaly = match (base.subsystems.get(&Subsystem::MemoryMaps), fresh.subsystems.get(&Subsystem::MemoryMaps)) {
        (
            Some(Observation::Observed { digest: expected, records: before }),
            Some(Observation::Observed { digest: actual, records: after }),
        ) => Some(Anomaly {
            subsystem: Subsystem::MemoryMaps,
            expected: *expected,
            actual: *actual,
            changes: crate::explain::explain(Subsystem::MemoryMaps, before, after),
        }),
        _ => None,
    };
    for s in &retake {
        if let Some(o) = fresh.subsystems.get(s) {
            base.subsystems.insert(*s, o.clone());
        }
        w.tracker.forget(*s);
    }
    base.sources.clone_from(&fresh.sources);
    base.exe.clone_from(&fresh.exe);
    base.target = fresh.target.clone();
    let new = fresh.exe.clone().ok_or_else(|| Error::Unavailable {
        what: format!("the executable of pid {}", w.target.pid().unwrap_or(0)),
        reason: "it could not be read after the exec".into(),
    })?;
    w.baseline.set(base.clone()).ok_or_else(|| Error::Bug("a re-taken baseline cannot be serialized".into()))?;
    w.target = base.target.clone();
    w.checker = w.checker.anew();
    w.unreadable_now.clear();
    Ok(Finding::Exec { target: w.target.clone(), old, new, snapshot: Box::new(base), anomaly })
}

/// The targets of `mine` checked on `workers` threads (a large node): the
/// findings in pid order, whichever core checked them. Out of line, like
/// [`note_outcome`]: a watch of a few processes never gets here. Returns
/// the pids of the targets that exited.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn check_on_workers<C: Clock + ?Sized>(
    watched: &mut BTreeMap<u32, Box<Watched>>,
    mine: impl Fn(u32) -> bool,
    subsystems: &[Subsystem],
    clock: &C,
    workers: usize,
    table: Option<&std::sync::Arc<crate::source::tasks::Table>>,
    summary: &mut Summary,
    findings: &mut Vec<Finding>,
) -> Vec<u32> {
    let mut exited = Vec::new();
    let mut targets: Vec<(u32, &mut Watched)> =
        watched.iter_mut().filter(|(p, _)| mine(**p)).map(|(&p, w)| (p, &mut **w)).collect();
    crate::fdcache::reserve(targets.len().saturating_mul(crate::fdcache::PER_TARGET));
    // Findings come back in pid order, whichever core checked them.
    let chunks: Vec<&mut [(u32, &mut Watched)]> = targets.chunks_mut(crate::parallel::CHUNK).collect();
    let parts = crate::parallel::on_workers(chunks, workers, |part: &mut [(u32, &mut Watched)]| {
        let (mut sum, mut found, mut gone) = (Summary::default(), Vec::new(), Vec::new());
        crate::source::tasks::install(table, || {
            for (pid, w) in part.iter_mut() {
                if check_one(w, subsystems, clock, &mut sum, &mut found) {
                    gone.push(*pid);
                }
            }
        });
        (sum, found, gone)
    });
    for (i, part) in parts.into_iter().enumerate() {
        match part {
            Some((sum, found, gone)) => {
                summary.add_part(&sum);
                findings.extend(found);
                exited.extend(gone);
            }
            // A bug: said for each of its targets, never silent.
            None => {
                for (_, w) in targets.chunks(crate::parallel::CHUNK).nth(i).unwrap_or(&[]) {
                    summary.failed += 1;
                    findings.push(Finding::Failed {
                        target: w.target.clone(),
                        error: "its check panicked (a bug in fdir): not checked this cycle".into(),
                    });
                }
            }
        }
    }
    exited
}

/// A finding for each subsystem that became unobservable, or unobservable
/// for another reason, since the last cycle; `before` becomes the new set.
/// Out of line, as in [`note_outcome`].
#[cold]
#[inline(never)]
fn note_unobservable(
    target: &Target,
    statuses: &BTreeMap<Subsystem, Status>,
    before: &mut BTreeMap<Subsystem, String>,
    findings: &mut Vec<Finding>,
) {
    let now: BTreeMap<Subsystem, String> = statuses
        .iter()
        .filter_map(|(&s, st)| match st {
            Status::Unobservable { reason } => Some((s, reason.clone())),
            _ => None,
        })
        .collect();
    for (&subsystem, reason) in &now {
        if before.get(&subsystem) != Some(reason) {
            let (target, reason) = (target.clone(), reason.clone());
            findings.push(Finding::Unobservable { target, subsystem: Some(subsystem), reason });
        }
    }
    if now != *before {
        *before = now;
    }
}

/// The findings of a cycle that saw something: transient readings, declared
/// drifts, recoveries. Out of line: a steady cycle has none, and the code it
/// does not run is kept off the pages it does (BENCHMARKS.md).
#[cold]
#[inline(never)]
fn note_outcome(target: &Target, outcome: Outcome, summary: &mut Summary, findings: &mut Vec<Finding>) {
    if !outcome.transient.is_empty() {
        findings.push(Finding::Transient { target: target.clone(), subsystems: outcome.transient });
    }
    if !outcome.declared.is_empty() {
        summary.anomalies += outcome.declared.len();
        findings.push(Finding::Drift { target: target.clone(), anomalies: outcome.declared });
    }
    for (subsystem, drifted_for) in outcome.recovered {
        findings.push(Finding::Recovered { target: target.clone(), subsystem, drifted_for });
    }
}

impl Monitor {
    fn empty(coverage: Coverage, subsystems: &[Subsystem], confirm: u32) -> Monitor {
        let mut subsystems = subsystems.to_vec();
        subsystems.sort_unstable();
        subsystems.dedup();
        Monitor {
            subsystems,
            confirm: confirm.max(1),
            code_budget: CodeBudget::DEFAULT,
            watched: BTreeMap::new(),
            pending: BTreeMap::new(),
            kthreads: BTreeMap::new(),
            unreadable: BTreeMap::new(),
            partially: 0,
            partly: 0,
            carried: Vec::new(),
            one_shot: false,
            own_pid: std::process::id(),
            listed: None,
            ahead: BTreeMap::new(),
            selector: match &coverage {
                Coverage::Workload { selector } => Some(selector.clone()),
                _ => None,
            },
            outside: BTreeMap::new(),
            gone: BTreeMap::new(),
            coverage,
            shared: crate::shared::Shared::new(),
            roots: crate::roots::Roots::default(),
            cgroup_mounts: std::sync::OnceLock::new(),
            held: crate::held::Held::default(),
            rounds: 0,
            scan_every: 1,
            since_scan: 0,
            tasks: None,
            table_use: None,
            table_walk: false,
        }
    }

    /// Whether rounds read namespaces, limits and the root from the task
    /// table (`source::tasks`): `None` (the default) where it pays (a watch
    /// with the lookup program; with the walk, a part large enough for it;
    /// a one-shot check from `TABLE_FROM_ONE_SHOT` targets), `Some(true)`
    /// in every part (where the kernel loads it), `Some(false)` never. For
    /// tests and side-by-side measurements; the verdicts are the same.
    pub fn set_task_table(&mut self, use_it: Option<bool>) {
        self.table_use = use_it;
    }

    /// Makes the task table a walk of the task list (the eBPF task
    /// iterator, read once a part) even where the kernel loads the lookup
    /// program (one run a process): the reader a kernel without it uses.
    /// For tests and side-by-side measurements; the verdicts are the same.
    /// Takes effect if set before the table is first loaded.
    pub fn set_task_table_walk(&mut self, walk: bool) {
        self.table_walk = walk;
    }

    /// Whether the loaded task table walks the task list (`Some(true)`) or
    /// runs the lookup program for each process (`Some(false)`); `None`
    /// before it is loaded or where it was refused.
    pub fn task_table_walks(&self) -> Option<bool> {
        self.tasks.as_ref().and_then(|r| r.as_ref().ok()).map(crate::source::tasks::Reader::walks)
    }

    /// Whether namespaces and limits are read from the task table
    /// (`source::tasks`): `None` before a round had enough targets to load
    /// it, `Some(Err(why))` where the kernel refused it or it failed its
    /// check against `/proc/self`.
    pub fn task_table(&self) -> Option<Result<(), &str>> {
        self.tasks.as_ref().map(|r| r.as_ref().map(|_| ()).map_err(String::as_str))
    }

    /// Whether the task table's records hold each process's status inputs
    /// (the kernel state its `status` fields are printed from), so that a
    /// process whose inputs did not change has its `status` read only every
    /// tenth cycle: `None` before the task table was loaded, `Some(Err(why))`
    /// where not.
    pub fn status_inputs(&self) -> Option<Result<(), &str>> {
        match self.tasks.as_ref()? {
            Ok(r) => Some(r.status_inputs()),
            Err(why) => Some(Err(why.as_str())),
        }
    }

    /// Whether a watch's checks have each process's maps inputs (the
    /// kernel's copy of the memory mappings its `maps` is printed from,
    /// `source::vmas`), so that a process whose mappings did not change
    /// has its `maps` read only every tenth cycle: `None` before the task
    /// table was loaded, `Some(Err(why))` where not.
    pub fn maps_inputs(&self) -> Option<Result<(), &str>> {
        match self.tasks.as_ref()? {
            Ok(r) => Some(r.maps_inputs()),
            Err(why) => Some(Err(why.as_str())),
        }
    }

    /// Whether a watch's checks of one process have its mount inputs (the
    /// kernel's copy of the mount namespace its `mountinfo` is printed
    /// from, `source::mnts`), so that a table that did not change is read
    /// only every tenth cycle: `None` before the task table was loaded,
    /// `Some(Err(why))` where not.
    pub fn mount_inputs(&self) -> Option<Result<(), &str>> {
        match self.tasks.as_ref()? {
            Ok(r) => Some(r.mount_inputs()),
            Err(why) => Some(Err(why.as_str())),
        }
    }

    /// Whether cgroup control values are made from the kernel's structs
    /// (`source::cgvalues`, loaded with the task table): `None` before the
    /// task table was loaded, `Some(Err(why))` where they are read from
    /// their files.
    pub fn cgroup_values(&self) -> Option<Result<(), &str>> {
        match self.tasks.as_ref()? {
            Ok(r) => Some(r.cgroup_values()),
            Err(why) => Some(Err(why.as_str())),
        }
    }

    /// The task table of part `part` of `parts` of this round, where a part
    /// of `targets` targets gains by it and the kernel runs the iterator
    /// (`source::tasks`).
    fn round_table(
        &mut self,
        targets: usize,
        part: u32,
        parts: u32,
    ) -> Option<std::sync::Arc<crate::source::tasks::Table>> {
        let forced = self.table_use;
        // Only namespaces, limits, mounts (the root), cgroup limits and, in
        // a watch, seccomp and credentials ask the table.
        if forced == Some(false)
            || !asks_task_table(&self.subsystems, !self.one_shot)
            || (forced.is_none()
                && (self.watched.is_empty() || self.one_shot && targets < TABLE_FROM_ONE_SHOT && self.tasks.is_none()))
        {
            return None;
        }
        let (walk, maps, mnts) = (self.table_walk, self.loads_maps_program(), self.loads_mounts_program(targets));
        let reader = self.tasks.get_or_insert_with(|| {
            let loaded = crate::source::tasks::Reader::load(walk, !self.one_shot, maps, mnts);
            note_task_table(&loaded);
            loaded
        });
        // The walk visits every task of the node for the part's targets.
        let walk_worth =
            || targets >= TABLE_FROM && node_tasks().is_none_or(|tasks| targets.saturating_mul(TABLE_SAVES) >= tasks);
        if forced.is_none() && reader.as_ref().is_ok_and(|r| r.walks() && !walk_worth()) {
            return None;
        }
        match reader {
            Ok(r) => match r.read(part, parts) {
                Ok(table) => Some(table),
                Err(e) => {
                    tracing::warn!("cannot read the task table this round (read from /proc instead): {e}");
                    None
                }
            },
            Err(_) => None,
        }
    }

    /// Baselines the targets of `coverage` now. Young processes are waited for
    /// until they settle (see [`crate::snapshot`]).
    ///
    /// `--pid` targets must all be readable (a gone pid is an error);
    /// `--all` lists the processes it may not read as unobservable.
    pub fn baseline<C: Clock + ?Sized>(
        coverage: Coverage,
        subsystems: &[Subsystem],
        confirm: u32,
        clock: &C,
    ) -> Result<(Monitor, Vec<Finding>), Error> {
        Monitor::baseline_with_table(coverage, subsystems, confirm, clock, None)
    }

    /// [`Monitor::baseline`] with the task table's use set first
    /// ([`Monitor::set_task_table`]): `Some(true)` takes the baselines with
    /// it whatever their number (a baseline then keeps status inputs as
    /// sources). For tests and side-by-side measurements.
    pub fn baseline_with_table<C: Clock + ?Sized>(
        coverage: Coverage,
        subsystems: &[Subsystem],
        confirm: u32,
        clock: &C,
        table: Option<bool>,
    ) -> Result<(Monitor, Vec<Finding>), Error> {
        let mut m = Monitor::empty(coverage.clone(), subsystems, confirm);
        m.table_use = table;
        let mut findings = Vec::new();
        let targets = match &coverage {
            Coverage::Pids { pids } => pids.len(),
            Coverage::System => 0,
            Coverage::All | Coverage::Workload { .. } => node_tasks().unwrap_or(0),
        };
        let table = m.baseline_table(targets);
        crate::source::tasks::install(table.as_ref(), || -> Result<(), Error> {
            match &coverage {
                Coverage::Workload { selector } => {
                    m.baseline_every(clock, &mut findings)?;
                    if m.watched.is_empty() {
                        return Err(Error::Config(format!("no process of {selector} can be watched now")));
                    }
                }
                Coverage::Pids { pids } => {
                    if pids.is_empty() {
                        return Err(Error::Config("no process ids given".into()));
                    }
                    for &pid in pids {
                        let fs = Procfs::try_pid(pid)?;
                        let snapshot = crate::snapshot::snapshot_sharing(clock, &fs, &m.subsystems, Some(&m.shared))?;
                        m.add(fs, snapshot, false, Some(&mut findings));
                    }
                }
                Coverage::All => m.baseline_every(clock, &mut findings)?,
                Coverage::System => {
                    let fs = Procfs::try_system()?;
                    let snapshot = snapshot_with(clock, &fs, &m.subsystems)?;
                    m.add(fs, snapshot, false, Some(&mut findings));
                }
            }
            Ok(())
        })?;
        Ok((m, findings))
    }

    /// Whether this monitor's task table loads the program of mappings
    /// (`source::vmas`): a watch's, and a baseline's or a one-shot
    /// check's of `memory-maps`.
    fn loads_maps_program(&self) -> bool {
        !self.one_shot || self.subsystems.contains(&Subsystem::MemoryMaps)
    }

    /// Whether this monitor's task table, loaded for `targets` targets,
    /// loads the program of mount namespaces (`source::mnts`): a watch's of
    /// `mounts` and of one target, whose check reads its mount table each
    /// cycle (a monitor of many reads each namespace's table once a round,
    /// shared, and would not use it).
    fn loads_mounts_program(&self, targets: usize) -> bool {
        !self.one_shot && self.subsystems.contains(&Subsystem::Mounts) && targets <= 1 && self.watched.len() <= 1
    }

    /// The task table the baselines of `targets` processes are taken with,
    /// where they observe `seccomp`, `credentials` or `memory-maps` and the
    /// kernel loads the lookup program: each baseline of a process of one
    /// thread then keeps its status inputs, and each its maps inputs, where
    /// they agree with the text its forms were made from, as those forms'
    /// source (`Snapshot::sources`), and a first check that finds the same
    /// inputs reads no `status` (no `maps`).
    /// From [`TABLE_AHEAD_FROM`] processes, where a one-shot check of them
    /// loads the table too (fewer: a load of 10-20 ms that a small check
    /// would not use), or where asked ([`Monitor::set_task_table`]).
    fn baseline_table(&mut self, targets: usize) -> Option<std::sync::Arc<crate::source::tasks::Table>> {
        let asks = self
            .subsystems
            .iter()
            .any(|s| matches!(s, Subsystem::Seccomp | Subsystem::Credentials | Subsystem::MemoryMaps));
        if self.table_use == Some(false) || !asks || (self.table_use.is_none() && targets < TABLE_AHEAD_FROM) {
            return None;
        }
        let walk = self.table_walk;
        let one_shot = self.one_shot;
        let (maps, mnts) = (self.loads_maps_program(), self.loads_mounts_program(targets));
        let reader = self.tasks.get_or_insert_with(|| {
            let loaded = crate::source::tasks::Reader::load(walk, !one_shot, maps, mnts);
            note_task_table(&loaded);
            loaded
        });
        // A walk's records hold no status inputs.
        let reader = reader.as_mut().ok().filter(|r| !r.walks())?;
        reader.read(0, 1).ok()
    }

    /// `--all` (or every process of a workload): young processes are set
    /// aside, then all baselined after one wait for the youngest to settle
    /// (not one wait each).
    fn baseline_every<C: Clock + ?Sized>(&mut self, clock: &C, findings: &mut Vec<Finding>) -> Result<(), Error> {
        let pids = live_processes()?;
        self.discover(&pids, clock, false, false, findings);
        let youngest = self.pending.values().filter_map(|s| s.fs.age().ok().flatten()).min();
        if let Some(age) = youngest {
            std::thread::sleep(SETTLE_YOUNGER_THAN.saturating_sub(age));
        }
        let settled: Vec<u32> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|(pid, seen)| seen.fs.alive().then_some(pid))
            .collect();
        self.discover(&settled, clock, true, false, findings);
        Ok(())
    }

    /// Resumes from a baseline file: each process is re-opened and must be the
    /// one baselined (same start time). A process that is gone is an `Exited`
    /// finding, a pid that is now another process a `Reused` finding; both
    /// are reported by the first [`Monitor::cycle`].
    pub fn resume(file: &BaselineFile, confirm: u32) -> Result<(Monitor, Vec<Finding>), Error> {
        Monitor::resume_with(
            file.coverage.clone(),
            &file.subsystems,
            file.targets.clone(),
            confirm,
            false,
            Pinned::default(),
        )
    }

    /// Resumes for one check (`fdir check`): each baseline is held in one
    /// copy, not three — the file has just passed its own integrity check,
    /// and the copies guard a monitor that runs for a long time.
    /// It takes the file: its snapshots become the monitor's.
    pub fn resume_for_one_check(file: BaselineFile, confirm: u32) -> Result<(Monitor, Vec<Finding>), Error> {
        Monitor::resume_for_one_check_pinned(file, confirm, Pinned::default())
    }

    /// [`Monitor::resume_for_one_check`], taking each process from `pinned`
    /// when it was pinned ahead (see [`Pinned::while_running`]) and opening
    /// the others.
    pub fn resume_for_one_check_pinned(
        file: BaselineFile,
        confirm: u32,
        pinned: Pinned,
    ) -> Result<(Monitor, Vec<Finding>), Error> {
        Monitor::resume_with(file.coverage, &file.subsystems, file.targets, confirm, true, pinned)
    }

    fn resume_with(
        coverage: Coverage,
        subsystems: &[Subsystem],
        targets: Vec<Snapshot>,
        confirm: u32,
        single: bool,
        pinned: Pinned,
    ) -> Result<(Monitor, Vec<Finding>), Error> {
        let mut m = Monitor::empty(coverage, subsystems, confirm);
        m.one_shot = single;
        let mut findings = Vec::new();
        // Each process is opened (and pinned) again, unless it was ahead: on
        // every core when many.
        if let Some(tasks) = pinned.tasks {
            note_task_table(&tasks);
            m.tasks = Some(tasks);
        }
        let mut opened = pinned.opened;
        let pids: Vec<u32> =
            targets.iter().filter_map(|s| s.target.pid()).filter(|pid| !opened.contains_key(pid)).collect();
        opened.extend(pids.iter().copied().zip(open_all(&pids, single)));
        for snapshot in targets {
            match &snapshot.target {
                Target::Process { pid, .. } => match opened
                    .remove(pid)
                    .unwrap_or_else(|| Err(Error::Bug("a process was not opened".into())))
                {
                    Ok(fs) => {
                        let now = fs.target()?;
                        if now.same_as(&snapshot.target) {
                            m.add(fs, snapshot, false, None);
                        } else {
                            m.remember_gone(&snapshot);
                            findings.push(Finding::Reused { baseline: snapshot.target.clone(), now });
                        }
                    }
                    Err(Error::Gone { .. }) => {
                        m.remember_gone(&snapshot);
                        findings.push(Finding::Exited { target: snapshot.target.clone() });
                    }
                    Err(e) => findings.push(Finding::Failed { target: snapshot.target.clone(), error: e.to_string() }),
                },
                Target::Node { .. } => {
                    let fs = Procfs::try_system()?;
                    // A node is identified by its host name; its baseline is
                    // meant to hold across reboots (hardening must come back).
                    let now = fs.target()?;
                    if now.same_as(&snapshot.target) {
                        m.add(fs, snapshot, false, None);
                    } else {
                        return Err(Error::TargetMismatch {
                            baseline: snapshot.target.to_string(),
                            source_target: now.to_string(),
                        });
                    }
                }
                other => {
                    return Err(Error::Config(format!("cannot resume a baseline of {other}")));
                }
            }
        }
        // Reported with the first cycle, so its summary counts them.
        m.carried = findings;
        // The first scan of `--all` starts from the listing the pins came
        // from, and takes the processes the file did not name as opened.
        if m.coverage == Coverage::All && pinned.listed.is_some() {
            m.listed = pinned.listed;
            m.ahead = opened;
        }
        Ok((m, Vec::new()))
    }

    /// Watches a target from its baseline. With `findings`, says so (the
    /// baseline and its unobservable subsystems); a resume, which reports
    /// from the file instead, passes `None` and copies nothing.
    fn add(&mut self, fs: Procfs, mut snapshot: Snapshot, first_sight: bool, mut findings: Option<&mut Vec<Finding>>) {
        // The node is the one target without a pid: key 0, which no process has.
        let pid = snapshot.target.pid().unwrap_or(0);
        if !self.one_shot {
            // Its records become the sets other baselines already hold.
            self.held.intern(&mut snapshot);
        }
        match findings.as_deref_mut() {
            Some(findings) => {
                let n = unobservable_findings(&snapshot, findings);
                self.partially += n;
                self.partly += usize::from(n > 0);
                findings.push(Finding::Baselined { snapshot: Box::new(snapshot.clone()), first_sight });
            }
            None => {
                let n = snapshot.subsystems.values().filter(|o| matches!(o, Observation::Unobservable { .. })).count();
                self.partially += n;
                self.partly += usize::from(n > 0);
            }
        }
        let target = snapshot.target.clone();
        if self.one_shot {
            // Each file closed once read, by the core that read it.
            fs.keep_nothing();
        }
        let baseline = if self.one_shot {
            Redundant::single(snapshot)
        } else {
            let Some(b) = Redundant::new(snapshot) else {
                let failed = Finding::Failed { target, error: "cannot hold the baseline in redundant copies".into() };
                // Said now, or with the next cycle.
                match findings {
                    Some(f) => f.push(failed),
                    None => self.carried.push(failed),
                }
                return;
            };
            b
        };
        self.watched.insert(
            pid,
            Box::new(Watched {
                fs,
                baseline,
                target,
                tracker: Tracker::new(self.confirm),
                checker: Checker::with_code_budget(self.code_budget).sharing(&self.shared),
                unreadable_now: BTreeMap::new(),
            }),
        );
    }

    /// Looks at pids not yet known, in order: ignores kernel threads and
    /// fdir itself, defers young processes (unless `wait`), baselines the
    /// others (as seen on first sight, or as part of the initial baseline).
    /// Many are looked at on every core; what they are is then recorded
    /// here, in pid order.
    fn discover<C: Clock + ?Sized>(
        &mut self,
        pids: &[u32],
        clock: &C,
        wait: bool,
        first_sight: bool,
        findings: &mut Vec<Finding>,
    ) {
        let own_pid = self.own_pid;
        let workers = workers_for(pids.len());
        if workers > 1 {
            // Grown once here, not doubled under the workers (see `fdcache::reserve`).
            crate::fdcache::reserve(pids.len().saturating_mul(crate::fdcache::PER_TARGET));
        }
        // In batches: each batch's snapshots are recorded (their record
        // sets held once, `held.rs`) before the next is taken, so a node's
        // first baseline never holds every process's own copies at once.
        for batch in pids.chunks(DISCOVER_BATCH) {
            let subsystems = &self.subsystems;
            let selector = self.selector.as_ref();
            let shared = &self.shared;
            // A process pinned ahead is looked at as it was opened then.
            let items: Vec<(u32, Opened)> =
                batch.iter().map(|&pid| (pid, std::sync::Mutex::new(self.ahead.remove(&pid)))).collect();
            // The task table a baseline is taken with (`baseline_table`),
            // on every worker.
            let table = crate::source::tasks::installed();
            let looks = crate::parallel::each(&items, workers, |(pid, opened)| {
                let opened = opened.lock().ok().and_then(|mut o| o.take());
                crate::source::tasks::install(table.as_ref(), || {
                    look_at_new_pid(*pid, opened, own_pid, clock, subsystems, wait, selector, shared)
                })
            });
            for (&pid, look) in batch.iter().zip(looks) {
                match look {
                    Some(found) => self.record(pid, found, first_sight, findings),
                    // A bug: said for each pid, never silent.
                    None => findings.push(Finding::Failed {
                        target: Target::Process { pid, start_time: 0, name: String::new() },
                        error: "looking at it panicked (a bug in fdir): not watched".into(),
                    }),
                }
            }
        }
    }

    /// Records what a pid not yet known turned out to be.
    fn record(&mut self, pid: u32, found: NewPid, first_sight: bool, findings: &mut Vec<Finding>) {
        match found {
            NewPid::Nothing => {}
            NewPid::Unpinned(e) => {
                // Not even its stat can be read: another pid namespace's view,
                // or an LSM refusal. Listed once; looked at again if it is replaced.
                let target = Target::Process { pid, start_time: 0, name: String::new() };
                findings.push(Finding::Unobservable { target: target.clone(), subsystem: None, reason: e.to_string() });
                self.unreadable.insert(pid, Seen { fs: Procfs::pid(pid), target });
            }
            NewPid::KernelThread(fs) => {
                self.kthreads.insert(pid, fs);
            }
            NewPid::Outside(fs) => {
                self.outside.insert(pid, fs);
            }
            NewPid::Young(seen) => {
                self.pending.insert(pid, seen);
            }
            NewPid::Baselined(fs, target, taken) => match *taken {
                Ok(s) if all_unobservable(&s) => {
                    unobservable_findings(&s, findings);
                    self.unreadable.insert(pid, Seen { fs, target });
                }
                Ok(s) => self.add(fs, s, first_sight, Some(findings)),
                Err(Error::Gone { .. }) => {}
                Err(e) => {
                    findings.push(Finding::Unobservable {
                        target: target.clone(),
                        subsystem: None,
                        reason: e.to_string(),
                    });
                    self.unreadable.insert(pid, Seen { fs, target });
                }
            },
        }
    }

    /// `--all`: forgets kernel threads and unreadable processes that are gone
    /// (their pid may come back as a new process), baselines the young
    /// processes that have settled, and discovers new ones.
    #[inline(never)]
    fn scan<C: Clock + ?Sized>(&mut self, clock: &C, findings: &mut Vec<Finding>) {
        let started = Instant::now();
        let listed = match self.listed.take() {
            Some(pids) => Ok(pids),
            None => live_processes(),
        };
        let pids = match listed {
            Ok(pids) => pids,
            Err(e) => {
                findings.push(Finding::Failed { target: Target::Mock, error: format!("cannot list processes: {e}") });
                return;
            }
        };
        let listed = |pid: &u32| pids.binary_search(pid).is_ok();
        self.kthreads.retain(|pid, fs| listed(pid) && fs.alive());
        self.outside.retain(|pid, fs| listed(pid) && fs.alive());
        // A process whose stat could not be read cannot be pinned; it is
        // forgotten when its pid leaves the listing.
        self.unreadable.retain(|pid, s| listed(pid) && (s.target.pid_start() == 0 || s.fs.alive()));
        let pending: Vec<u32> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|(pid, seen)| seen.fs.alive().then_some(pid))
            .collect();
        self.discover(&pending, clock, false, true, findings);
        let unknown: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| {
                !(self.watched.contains_key(pid)
                    || self.pending.contains_key(pid)
                    || self.kthreads.contains_key(pid)
                    || self.outside.contains_key(pid)
                    || self.unreadable.contains_key(pid))
            })
            .collect();
        self.discover(&unknown, clock, false, true, findings);
        // What was pinned ahead and not needed (gone since) is let go.
        self.ahead.clear();
        tracing::debug!("scanned /proc in {:?}", started.elapsed());
    }

    /// One cycle: discover processes (for `--all`), check every watched
    /// target with confirmation, and report what was seen.
    pub fn cycle<C: Clock + ?Sized>(&mut self, clock: &C) -> (Vec<Finding>, Summary) {
        self.cycle_part(clock, 0, 1)
    }

    /// Part `part` of `parts` of a cycle: the targets whose pid is `part`
    /// modulo `parts` (the node, pid 0, with part 0), and the discovery of
    /// new processes with part 0. Checking a large node in parts spread over
    /// the interval keeps every cycle short. `cycle` is part 0 of 1.
    pub fn cycle_part<C: Clock + ?Sized>(&mut self, clock: &C, part: u32, parts: u32) -> (Vec<Finding>, Summary) {
        let parts = parts.max(1);
        let part = part % parts;
        let mine = move |pid: u32| pid % parts == part;
        let started = Instant::now();
        // Each round (a cycle, all its parts) reads every shared object
        // afresh, once; a part forgets only the code chunks (`shared.rs`).
        if part == 0 {
            self.shared.begin_round();
        } else {
            self.shared.begin_part();
        }
        self.shared.set_solo(self.watched.len() <= 1);
        let mut findings = std::mem::take(&mut self.carried);
        let mut summary = Summary {
            exited: findings.iter().filter(|f| matches!(f, Finding::Exited { .. } | Finding::Reused { .. })).count(),
            failed: findings.iter().filter(|f| matches!(f, Finding::Failed { .. })).count(),
            ..Summary::default()
        };

        if part == 0 && !self.gone.is_empty() {
            self.forget_gone();
        }
        if (self.coverage == Coverage::All || self.selector.is_some()) && part == 0 {
            self.since_scan += 1;
            if self.since_scan >= self.scan_every {
                self.since_scan = 0;
                self.scan(clock, &mut findings);
                summary.new =
                    findings.iter().filter(|f| matches!(f, Finding::Baselined { first_sight: true, .. })).count();
            }
        }
        if part == 0 && !self.one_shot {
            if self.rounds.is_multiple_of(HELD_CHECK_EVERY) {
                self.check_held(&mut summary, &mut findings);
            }
            self.rounds += 1;
        }

        // Each target is checked on its own: with many, on every core. A
        // round spread over the interval in parts of at most two parts'
        // worth of targets runs each part on this thread: the spreading
        // already keeps each tick short, and worker threads started for
        // every part (they end with it) cost more CPU than they save time.
        let per_part = self.watched.len() / usize::try_from(parts).unwrap_or(1);
        let workers = if parts > 1 && per_part <= 2 * ONE_THREAD_PART { 1 } else { workers_for(per_part) };
        let mut exited = Vec::new();
        let table = self.round_table(per_part, part, parts);
        let subsystems = &self.subsystems;
        if workers <= 1 {
            // No list of targets is built: a steady-state cycle allocates nothing.
            crate::source::tasks::install(table.as_ref(), || {
                for (&pid, w) in self.watched.iter_mut().filter(|(p, _)| mine(**p)) {
                    if check_one(w, subsystems, clock, &mut summary, &mut findings) {
                        exited.push(pid);
                    }
                }
            });
        } else {
            exited = check_on_workers(
                &mut self.watched,
                mine,
                subsystems,
                clock,
                workers,
                table.as_ref(),
                &mut summary,
                &mut findings,
            );
        }
        self.settle(&exited, &findings, &mut summary);
        if !findings.is_empty() || !self.roots.is_idle() {
            findings = self.by_root_cause(findings, parts, &mut summary);
        }
        summary.elapsed = started.elapsed();
        (findings, summary)
    }

    /// A part's findings by root cause (`roots.rs`): the drift of a shared
    /// object once, with every process it affects; a move once. The
    /// anomalies of the summary are counted again, one per root cause.
    #[cold]
    #[inline(never)]
    fn by_root_cause(&mut self, findings: Vec<Finding>, parts: u32, summary: &mut Summary) -> Vec<Finding> {
        let watched = &self.watched;
        let mut namespace = |t: &Target| {
            let w = watched.get(&t.pid()?).filter(|w| w.target == *t)?;
            w.fs.stat("ns/mnt").ok().map(|id| id.ino.to_string())
        };
        let findings = self.roots.group(findings, parts, &mut namespace);
        summary.anomalies = findings
            .iter()
            .map(|f| match f {
                Finding::Drift { anomalies, .. } => anomalies.len(),
                Finding::ObjectDrift { .. } => 1,
                _ => 0,
            })
            .sum();
        findings
    }

    /// Re-checks now what triggers named ([`crate::trigger`]): the same
    /// check, with confirmation and exec handling, as a cycle makes of those
    /// targets; the timer's rounds are untouched. A full check (`all`) is a
    /// whole cycle. New processes (under `--all` or a workload selector) are
    /// looked at as discovery does (a young one waits until it has
    /// settled); a cgroup's or a mount table's change re-checks the targets
    /// that lead to it, reading it afresh (nothing is taken from a round's
    /// shared reads). Targets not watched are ignored.
    pub fn recheck<C: Clock + ?Sized>(&mut self, clock: &C, due: &crate::trigger::hub::Due) -> (Vec<Finding>, Summary) {
        if due.all {
            // A lost notice may have been a fork: this round scans /proc.
            self.since_scan = self.scan_every;
            return self.cycle(clock);
        }
        let started = Instant::now();
        // What targets share is read afresh: the trigger says it changed.
        self.shared.begin_round();
        self.shared.set_solo(self.watched.len() <= 1);
        let mut findings = Vec::new();
        let mut summary = Summary::default();
        if (self.coverage == Coverage::All || self.selector.is_some()) && !due.new.is_empty() {
            // A new process waiting to settle is looked at again (baselined
            // if it has settled by now), as the scan does.
            let mut unknown = Vec::new();
            for &pid in &due.new {
                if let Some(seen) = self.pending.remove(&pid) {
                    if seen.fs.alive() {
                        unknown.push(pid);
                    }
                    continue;
                }
                let known = self.watched.contains_key(&pid)
                    || self.kthreads.contains_key(&pid)
                    || self.outside.contains_key(&pid)
                    || self.unreadable.contains_key(&pid);
                if !known {
                    unknown.push(pid);
                }
            }
            self.discover(&unknown, clock, false, true, &mut findings);
            summary.new = findings.iter().filter(|f| matches!(f, Finding::Baselined { first_sight: true, .. })).count();
        }
        for pid in &due.exit {
            if self.pending.get(pid).is_some_and(|seen| !seen.fs.alive()) {
                self.pending.remove(pid);
            }
        }
        // A process named by a notice is checked whole; a shared object's
        // change is checked, for the targets that lead to it, in its own
        // subsystem only (a host's mount table changing often must not
        // re-read every process's memory maps).
        let mut pids: std::collections::BTreeSet<u32> =
            due.processes.iter().chain(&due.exec).chain(&due.exit).copied().collect();
        if due.node {
            pids.insert(0);
        }
        pids.retain(|pid| self.watched.contains_key(pid));
        let mut partial: BTreeMap<u32, Vec<Subsystem>> = BTreeMap::new();
        if due.mounts && self.subsystems.contains(&Subsystem::Mounts) {
            for &pid in self.watched.keys() {
                partial.entry(pid).or_default().push(Subsystem::Mounts);
            }
        }
        if !due.cgroups.is_empty() && self.subsystems.contains(&Subsystem::CgroupLimits) {
            for dir in &due.cgroups {
                for pid in self.referencing_cgroup(dir) {
                    let subs = partial.entry(pid).or_default();
                    if !subs.contains(&Subsystem::CgroupLimits) {
                        subs.push(Subsystem::CgroupLimits);
                    }
                }
            }
        }
        partial.retain(|pid, _| !pids.contains(pid));
        let subsystems = &self.subsystems;
        let workers = workers_for(pids.len());
        let mut exited = Vec::new();
        if workers <= 1 {
            for (&pid, w) in self.watched.iter_mut().filter(|(p, _)| pids.contains(p)) {
                if check_one(w, subsystems, clock, &mut summary, &mut findings) {
                    exited.push(pid);
                }
            }
        } else {
            let mine = |pid: u32| pids.contains(&pid);
            // A trigger's re-check reads from /proc: no task table.
            exited = check_on_workers(
                &mut self.watched,
                mine,
                subsystems,
                clock,
                workers,
                None,
                &mut summary,
                &mut findings,
            );
        }
        for (pid, mut subs) in partial {
            subs.sort_unstable();
            let Some(w) = self.watched.get_mut(&pid) else { continue };
            // What the other subsystems' last reads found unreadable stays
            // known (a part-check reports only its own).
            let others: BTreeMap<Subsystem, String> =
                w.unreadable_now.iter().filter(|(s, _)| !subs.contains(s)).map(|(s, r)| (*s, r.clone())).collect();
            if check_one(w, &subs, clock, &mut summary, &mut findings) {
                exited.push(pid);
            }
            w.unreadable_now.extend(others);
        }
        self.settle(&exited, &findings, &mut summary);
        // A triggered check is a whole part of its own: a shared object's
        // drift it found (every process that leads to the object was
        // checked) is declared at once, by root cause.
        if !findings.is_empty() || !self.roots.is_idle() {
            findings = self.by_root_cause(findings, 1, &mut summary);
        }
        summary.elapsed = started.elapsed();
        (findings, summary)
    }

    /// The watched targets whose `cgroup-limits` baseline reads the cgroup
    /// directory `dir` (their cgroup or an ancestor). Where none can be
    /// told (the hierarchies cannot be found), every target with
    /// `cgroup-limits`: a re-check too many, never one too few.
    fn referencing_cgroup(&self, dir: &std::path::Path) -> Vec<u32> {
        let mounts = self.cgroup_mounts.get_or_init(|| crate::CgroupMounts::discover().ok());
        let (mut exact, mut every) = (Vec::new(), Vec::new());
        for (&pid, w) in &self.watched {
            let Some(Observation::Observed { records, .. }) = w.baseline.get().subsystems.get(&Subsystem::CgroupLimits)
            else {
                continue;
            };
            every.push(pid);
            let Some(mounts) = mounts else { continue };
            let mut last = None;
            let leads = records.iter().any(|r| {
                let Some((cgroup, _)) = crate::canon::cgroup_limits::split_key(&r.key) else { return false };
                if last == Some(cgroup) {
                    return false;
                }
                last = Some(cgroup);
                cgroup.split_once(':').is_some_and(|(h, c)| mounts.dir(h, c).is_ok_and(|d| d == dir))
            });
            if leads {
                exact.push(pid);
            }
        }
        if exact.is_empty() { every } else { exact }
    }

    /// The new processes waiting to settle before they are baselined
    /// (`--all`, a workload selector).
    pub fn settling(&self) -> Vec<u32> {
        self.pending.keys().copied().collect()
    }

    /// The pids of the watched processes (the node, pid 0, left out).
    pub fn pids(&self) -> Vec<u32> {
        self.watched.keys().copied().filter(|&p| p != 0).collect()
    }

    /// `--all`: scan /proc for new and gone processes one round in `every`
    /// (at least 1), the first round always. For a watch whose proc
    /// connector reports forks and exits as they happen ([`crate::trigger`]):
    /// the new processes are baselined from its notices, and the scan is
    /// the safety net (a notice lost is answered by a full round that
    /// scans).
    pub fn set_scan_every(&mut self, every: u64) {
        self.scan_every = every.max(1);
        self.since_scan = self.since_scan.min(self.scan_every);
    }

    /// One round in how many scans /proc (`--all`).
    pub fn scan_every(&self) -> u64 {
        self.scan_every
    }

    /// Whether new processes are of interest: `--all`, or a workload
    /// selector.
    pub fn discovers(&self) -> bool {
        self.coverage == Coverage::All || self.selector.is_some()
    }

    /// Checks each held record set against its digest (`held.rs`) and makes
    /// every baseline that refers to a repaired set take the repaired one
    /// (in its first copy, the one copy that holds record sets; the images
    /// of the others name them by digest); a set lost in both its copies
    /// loses the baselines that refer to it (restored from the file).
    fn check_held(&mut self, summary: &mut Summary, findings: &mut Vec<Finding>) {
        for (sub, digest, fate) in self.held.check() {
            for w in self.watched.values_mut() {
                // Only the first copy holds record sets: the images of the
                // others name them by digest (`snapshot/image.rs`).
                let snapshot = w.baseline.primary_mut();
                let Some(Observation::Observed { digest: d, records }) = snapshot.subsystems.get_mut(&sub) else {
                    continue;
                };
                if *d != digest {
                    continue;
                }
                match &fate {
                    crate::held::Fate::Repaired(good) => {
                        *records = good.clone();
                        w.baseline.relend();
                        summary.repaired += 1;
                        findings.push(Finding::BaselineRepaired { target: w.target.clone(), copies: 1 });
                    }
                    crate::held::Fate::Lost => {
                        summary.failed += 1;
                        findings.push(Finding::BaselineLost { target: w.target.clone() });
                    }
                }
            }
        }
    }

    /// The end of a part's checks, or of a triggered check's: forgets the
    /// targets that exited, holds the new baselines of those that executed a
    /// program (a watch), and says in `summary` what the monitor holds now.
    fn settle(&mut self, exited: &[u32], findings: &[Finding], summary: &mut Summary) {
        if !exited.is_empty() {
            self.forget(exited);
        }
        if !self.one_shot && findings.iter().any(|f| matches!(f, Finding::Exec { .. })) {
            self.hold_execs(findings);
        }
        summary.exited += exited.len();
        summary.targets = self.watched.len();
        summary.unobservable = self.unobservable_count();
        summary.unreadable = self.unreadable.len();
        summary.partly = self.partly;
    }

    /// Holds the record sets of the baselines re-taken after an exec this
    /// cycle with the others'.
    #[cold]
    #[inline(never)]
    fn hold_execs(&mut self, findings: &[Finding]) {
        for f in findings {
            let Finding::Exec { target, .. } = f else { continue };
            let Some(w) = self.watched.get_mut(&target.pid().unwrap_or(0)) else { continue };
            self.held.intern(w.baseline.primary_mut());
            w.baseline.relend();
        }
    }

    /// Stops watching the targets that exited. Out of line: a watched target
    /// is large, and moving one out of the map takes a frame of several pages
    /// that a steady cycle would otherwise pay for on every call.
    #[cold]
    #[inline(never)]
    fn forget(&mut self, exited: &[u32]) {
        for pid in exited {
            if let Some(w) = self.watched.remove(pid) {
                if let Some(workload) = workload_of(&w.fs, w.baseline.get()) {
                    self.gone.insert(*pid, (w.target.pid_start(), workload, false));
                }
                let n = w
                    .baseline
                    .get()
                    .subsystems
                    .values()
                    .filter(|o| matches!(o, Observation::Unobservable { .. }))
                    .count();
                self.partially = self.partially.saturating_sub(n);
                self.partly = self.partly.saturating_sub(usize::from(n > 0));
            }
        }
    }

    /// Keeps the workload of a process found gone at resume, for the event
    /// that says so.
    #[cold]
    fn remember_gone(&mut self, snapshot: &Snapshot) {
        if let (Some(pid), Some(workload)) = (snapshot.target.pid(), workload_of_records(snapshot)) {
            self.gone.insert(pid, (snapshot.target.pid_start(), workload, true));
        }
    }

    /// Forgets the workloads of processes reported gone in the last cycle
    /// (those found gone at resume are reported by the first, and kept for it).
    #[cold]
    #[inline(never)]
    fn forget_gone(&mut self) {
        self.gone.retain(|_, (_, _, keep)| std::mem::replace(keep, false));
    }

    /// The workload of a watched process, or of one that exited since the
    /// last cycle, from its baseline's `cgroups` records (or, without them,
    /// its `cgroup` file): for the events about it. `None` when its cgroup
    /// path names nothing, or the target is not the process watched.
    pub fn workload(&self, target: &Target) -> Option<Workload> {
        let pid = target.pid()?;
        if let Some(w) = self.watched.get(&pid).filter(|w| w.target.same_as(target)) {
            return workload_of(&w.fs, w.baseline.get());
        }
        let (start, workload, _) = self.gone.get(&pid)?;
        (*start == target.pid_start()).then(|| workload.clone())
    }

    /// Fills in the workload of the process an event is about (`unit`,
    /// `container`, `pod` ...), where known.
    pub fn label(&self, event: &mut EventRecord) {
        if let Some(who) = event.who_mut() {
            self.label_who(who);
        }
    }

    /// [`Monitor::label`] of a [`Who`].
    pub fn label_who(&self, who: &mut Who) {
        let Some(pid) = who.pid else { return };
        let target = Target::Process { pid, start_time: who.start_time.unwrap_or(0), name: String::new() };
        if let Some(workload) = self.workload(&target) {
            who.workload = workload;
        }
    }

    /// Processes that cannot be read at all, plus unobservable subsystems of
    /// watched ones.
    pub fn unobservable_count(&self) -> usize {
        self.unreadable.len() + self.partially
    }

    /// What cannot be read: processes not at all, subsystems of watched
    /// targets, and the targets those subsystems belong to.
    pub fn unobservable_parts(&self) -> (usize, usize, usize) {
        (self.unreadable.len(), self.partially, self.partly)
    }

    /// The baselines of the watched targets (voted first), for saving.
    pub fn snapshots(&mut self) -> Vec<Snapshot> {
        self.watched.values_mut().filter_map(|w| (!w.baseline.vote().lost).then(|| w.baseline.get().clone())).collect()
    }

    /// Restores lost or disagreeing in-memory baselines from a baseline file
    /// (which has passed its own integrity check). Returns the targets whose
    /// memory copies disagreed with the file and were replaced by it.
    pub fn restore_from(&mut self, file: &BaselineFile) -> Vec<Target> {
        let mut restored = Vec::new();
        for s in &file.targets {
            let pid = s.target.pid().unwrap_or(0);
            let Some(w) = self.watched.get_mut(&pid) else { continue };
            if !w.target.same_as(&s.target) {
                continue;
            }
            let vote = w.baseline.vote();
            // A held record set that failed its digest changes every copy
            // alike: the vote cannot see it, the records' own check can.
            let lost = vote.lost || w.baseline.get().verify().is_err();
            if lost || !w.baseline.agrees_with(s) {
                let mut s = s.clone();
                if !self.one_shot {
                    self.held.intern(&mut s);
                }
                if w.baseline.set(s).is_some() {
                    restored.push(w.target.clone());
                }
            }
        }
        restored
    }

    /// The targets whose voted in-memory baseline differs from the file's:
    /// the baseline file voted against memory. Targets the file does not hold
    /// (baselined on first sight since) are not disagreements.
    pub fn disagreements_with(&mut self, file: &BaselineFile) -> Vec<Target> {
        let mut out = Vec::new();
        for w in self.watched.values_mut() {
            if w.baseline.vote().lost {
                out.push(w.target.clone());
                continue;
            }
            let on_disk = file.targets.iter().find(|s| s.target.same_as(&w.target));
            if on_disk.is_some_and(|s| !w.baseline.agrees_with(s)) {
                out.push(w.target.clone());
            }
        }
        out
    }

    /// Each watched target and the digest of its voted baseline (the
    /// fingerprint its file snapshot has when the file holds it unchanged),
    /// in pid order: what a baseline file written from memory now holds.
    /// `None` when a baseline is lost or has no digest (a single copy).
    pub fn baseline_prints(&mut self) -> Option<Vec<(Target, Digest)>> {
        let mut out = Vec::with_capacity(self.watched.len());
        for w in self.watched.values_mut() {
            if w.baseline.vote().lost {
                return None;
            }
            out.push((w.target.clone(), *w.baseline.digest()?));
        }
        Some(out)
    }

    /// [`Monitor::disagreements_with`] a file known by the fingerprint of
    /// each of its targets' snapshots (`prints`, in pid order; see
    /// [`Monitor::baseline_prints`]) instead of by the snapshots: the same
    /// answer while the file is unchanged. `None` when a baseline has no
    /// digest to compare (a single copy): then only the snapshots tell.
    pub fn disagreements_with_prints(&mut self, prints: &[(Target, Digest)]) -> Option<Vec<Target>> {
        let mut out = Vec::new();
        for (&pid, w) in &mut self.watched {
            if w.baseline.vote().lost {
                out.push(w.target.clone());
                continue;
            }
            let at = prints.partition_point(|(t, _)| t.pid().unwrap_or(0) < pid);
            let on_disk = prints
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take_while(|(t, _)| t.pid().unwrap_or(0) == pid)
                .find(|(t, _)| t.same_as(&w.target));
            if let Some((_, print)) = on_disk
                && w.baseline.digest()? != print
            {
                out.push(w.target.clone());
            }
        }
        Some(out)
    }

    /// One digest of every in-memory baseline, after voting each: of each
    /// watched pid and its voted baseline's digest, in pid order (the
    /// digest of [`Monitor::baseline_prints`]). Equal digests mean the same
    /// baselines. `None` when a baseline is lost or has no digest (a single
    /// copy).
    pub fn baselines_digest(&mut self) -> Option<Digest> {
        let mut h = Hasher::new();
        for (target, digest) in self.baseline_prints()? {
            h.update(&target.pid().unwrap_or(0).to_le_bytes());
            h.update(&digest.0);
        }
        Some(h.finish())
    }

    /// Fault injection (`fdir selftest`): flips one bit somewhere in one copy
    /// of one target's in-memory baseline — a record, a digest, the target's
    /// identity, or the copy's stored digest — chosen by `seed`. Returns the
    /// target and what was corrupted.
    pub fn inject_baseline_fault(&mut self, seed: u64) -> Option<(Target, String)> {
        let n = self.watched.len();
        if n == 0 {
            return None;
        }
        let pick = usize::try_from(seed % u64::try_from(n).ok()?).ok()?;
        let w = self.watched.values_mut().nth(pick)?;
        let copy = usize::try_from((seed >> 8) % 3).ok()?;
        let what = if seed.rotate_left(23).is_multiple_of(10) {
            let d = w.baseline.digest_mut(copy)?;
            let byte = usize::try_from((seed >> 16) % 32).ok()?;
            *d.0.get_mut(byte)? ^= 1 << ((seed >> 24) % 8);
            format!("stored digest of copy {copy}, byte {byte}")
        } else {
            let flipped = w.baseline.flip_bit(copy, seed.rotate_left(11), |s, seed| s.flip_bit(seed))?;
            format!("{flipped} in copy {copy}")
        };
        Some((w.target.clone(), what))
    }

    /// Fault injection: the next check of one target (chosen by `seed`) reads
    /// a canonical form with one bit flipped. Returns the target.
    pub fn inject_observation_fault(&mut self, seed: u64) -> Option<Target> {
        let n = u64::try_from(self.watched.len()).ok()?;
        if n == 0 {
            return None;
        }
        let w = self.watched.values_mut().nth(usize::try_from(seed % n).ok()?)?;
        w.checker.inject_observation_fault(seed.rotate_left(29));
        Some(w.target.clone())
    }

    /// What the monitor covers.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// Sets how many bytes of code each check reads per target (default
    /// [`CodeBudget::DEFAULT`]), for the targets watched and those to come.
    pub fn set_code_budget(&mut self, budget: CodeBudget) {
        self.code_budget = budget;
        for w in self.watched.values_mut() {
            w.checker.set_code_budget(budget);
        }
    }

    /// The code budget per target per check.
    pub fn code_budget(&self) -> CodeBudget {
        self.code_budget
    }

    /// The subsystems checked.
    pub fn subsystems(&self) -> &[Subsystem] {
        &self.subsystems
    }

    /// The number of targets watched.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Whether no target is watched.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    /// How many files the watched targets keep open for their next check
    /// (none after the cycle of a one-shot check).
    pub fn kept_files(&self) -> usize {
        self.watched.values().map(|w| w.fs.kept_files()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use crate::canon::Records;
    use crate::source::PF_KTHREAD;

    /// Two watched targets whose baselines share every record set.
    fn two() -> Monitor {
        let fs = || {
            Procfs::mock(
                "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x\n",
                "Name:\tx\nSeccomp:\t0\n",
                "0::/a\n",
            )
        };
        let snap = crate::snapshot(&ManualClock::new(), &fs()).unwrap();
        let mut m = Monitor::empty(Coverage::All, Subsystem::SEED, 1);
        for pid in [10, 11] {
            let mut s = snap.clone();
            s.target = Target::Process { pid, start_time: 1, name: "x".into() };
            // Each baseline as if read on its own: its own records.
            for obs in s.subsystems.values_mut() {
                if let Observation::Observed { records, .. } = obs {
                    *records = Records::from(records.to_vec());
                }
            }
            m.add(fs(), s, false, None);
        }
        m
    }

    /// The memory-maps set of a baseline: its first copy's, the one copy
    /// that holds sets (the images of the others name them by digest).
    fn maps_records(m: &Monitor, pid: u32) -> Records {
        let w = m.watched.get(&pid).unwrap();
        match w.baseline.get().subsystems.get(&Subsystem::MemoryMaps) {
            Some(Observation::Observed { records, .. }) => records.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// A bit flipped in a shared set, in place: every baseline that refers
    /// to it, and the held set, see the same flip.
    fn flip_shared(m: &mut Monitor, spare_too: bool) -> Records {
        let good = maps_records(m, 10);
        let mut bad = good.to_vec();
        bad[0].value.push('!');
        let bad = Records::from(bad);
        let digest = m.watched.get(&10).unwrap().baseline.get().digest(Subsystem::MemoryMaps).unwrap();
        m.held.replace_for_test(Subsystem::MemoryMaps, digest, &bad, spare_too);
        for w in m.watched.values_mut() {
            if let Some(Observation::Observed { records, .. }) =
                w.baseline.primary_mut().subsystems.get_mut(&Subsystem::MemoryMaps)
            {
                *records = bad.clone();
            }
            // In place: the copies refer to the flipped set as they did to
            // the good one.
            w.baseline.relend();
        }
        good
    }

    #[test]
    fn baselines_share_each_distinct_set_and_their_images_hold_none() {
        let mut m = two();
        assert!(maps_records(&m, 10).shares(&maps_records(&m, 11)));
        for w in m.watched.values_mut() {
            // The images read back with the first copy's sets: their own
            // digests hold, and they are small (a digest a subsystem).
            assert_eq!(w.baseline.full_vote(), Vote::default());
            for copy in 1..crate::guard::COPIES {
                assert!(w.baseline.image_mut(copy).unwrap().len() < 400);
            }
        }
    }

    #[test]
    fn a_flipped_shared_set_is_repaired_in_every_baseline_that_holds_it() {
        let mut m = two();
        let good = flip_shared(&mut m, false);
        // The vote of each baseline's copies cannot see it: they agree.
        for w in m.watched.values_mut() {
            assert_eq!(w.baseline.vote(), Vote::default());
        }
        let (mut summary, mut findings) = (Summary::default(), Vec::new());
        m.check_held(&mut summary, &mut findings);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings.iter().all(|f| matches!(f, Finding::BaselineRepaired { copies: 1, .. })), "{findings:?}");
        for pid in [10, 11] {
            assert_eq!(maps_records(&m, pid), good, "pid {pid}");
        }
        for w in m.watched.values_mut() {
            assert!(w.baseline.get().verify().is_ok());
            assert_eq!(w.baseline.full_vote(), Vote::default(), "the copies' own digests hold again");
        }
        let (mut summary, mut findings) = (Summary::default(), Vec::new());
        m.check_held(&mut summary, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
    }

    #[test]
    fn a_shared_set_flipped_in_both_copies_loses_its_baselines_until_restored() {
        let mut m = two();
        let good = flip_shared(&mut m, true);
        let (mut summary, mut findings) = (Summary::default(), Vec::new());
        m.check_held(&mut summary, &mut findings);
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(findings.iter().all(|f| matches!(f, Finding::BaselineLost { .. })), "{findings:?}");
        // Restored from a file that holds the good records.
        let mut file_targets = Vec::new();
        for pid in [10, 11] {
            let mut s = m.watched.get(&pid).unwrap().baseline.get().clone();
            if let Some(Observation::Observed { records, .. }) = s.subsystems.get_mut(&Subsystem::MemoryMaps) {
                *records = Records::from(good.to_vec());
            }
            file_targets.push(s);
        }
        let file = BaselineFile::new(std::time::SystemTime::UNIX_EPOCH, Coverage::All, Subsystem::SEED, file_targets);
        assert_eq!(m.restore_from(&file).len(), 2);
        assert_eq!(maps_records(&m, 10), good);
        assert!(maps_records(&m, 10).shares(&maps_records(&m, 11)), "held once again");
        let (mut summary, mut findings) = (Summary::default(), Vec::new());
        m.check_held(&mut summary, &mut findings);
        assert!(findings.is_empty(), "{findings:?}");
    }

    /// A one-shot check of processes whose namespaces and limits are the
    /// same makes each form once (`Shared::round_form`): one image of
    /// namespace identities, one of limit values (from the table, where it
    /// loads; a limits file is no image). Quiet; and a process whose limit
    /// differs from its baseline's still drifts, alone.
    #[test]
    fn processes_with_the_same_namespaces_and_limits_share_their_forms() {
        /// The children, killed and reaped however the test ends.
        struct Children(Vec<std::process::Child>);
        impl Drop for Children {
            fn drop(&mut self) {
                for c in &mut self.0 {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        let children =
            Children((0..4).filter_map(|_| std::process::Command::new("sleep").arg("30").spawn().ok()).collect());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let pids: Vec<u32> = children.0.iter().map(std::process::Child::id).collect();
        let subsystems = [Subsystem::Namespaces, Subsystem::Limits];
        let snaps: Vec<Snapshot> = pids
            .iter()
            .map(|&p| crate::snapshot_with(&crate::SystemClock, &Procfs::try_pid(p).unwrap(), &subsystems).unwrap())
            .collect();
        let file =
            BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.clone() }, &subsystems, snaps);
        let check = |file: &BaselineFile| {
            let (loaded, pinned) = Pinned::run_ahead(PinAhead::Pids(&pids), true, || file.clone());
            let (mut m, _) = Monitor::resume_for_one_check_pinned(loaded, 1, pinned).unwrap();
            let table = m.task_table().is_some_and(|t| t.is_ok());
            let (findings, _) = m.cycle(&crate::SystemClock);
            (findings, m.shared.round_forms(), table)
        };
        let (findings, forms, table) = check(&file);
        assert!(findings.iter().all(|f| !matches!(f, Finding::Drift { .. })), "{findings:#?}");
        assert_eq!(forms, if table { 2 } else { 1 }, "one form of each image");
        // The third process's open-files limit lowered from outside.
        let lower = libc::rlimit { rlim_cur: 32, rlim_max: 64 };
        let third = pids[2];
        // SAFETY: prlimit of a child, with a valid new limit and no old one asked for.
        let r = unsafe {
            libc::prlimit(i32::try_from(third).unwrap(), libc::RLIMIT_NOFILE, &raw const lower, std::ptr::null_mut())
        };
        assert_eq!(r, 0);
        let (findings, forms, table) = check(&file);
        let drifted: Vec<u32> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::Drift { target, .. } => target.pid(),
                _ => None,
            })
            .collect();
        assert_eq!(drifted, vec![third], "{findings:#?}");
        assert_eq!(forms, if table { 3 } else { 1 }, "the lowered limits are an image of their own");
        drop(children);
        if !table {
            eprintln!(
                "SKIP processes_with_the_same_namespaces_and_limits_share_their_forms (the table part): not loaded"
            );
        }
    }

    /// Processes pinned while the task table loads are pinned by its
    /// records, not their `stat`: each names the process a fresh pin
    /// names (pid, start time, name), a renamed one by its new name, and a
    /// pid that has no process is gone.
    #[test]
    fn pins_made_with_the_table_name_what_stat_names() {
        let children: Vec<std::process::Child> =
            (0..4).filter_map(|_| std::process::Command::new("sleep").arg("30").spawn().ok()).collect();
        // One renames itself after its start (its `comm`, as `stat` shows it).
        let renamed = std::process::Command::new("python3")
            .args(["-c", "import ctypes,time; ctypes.CDLL(None).prctl(15, b'renamed-by-me', 0, 0, 0); time.sleep(30)"])
            .spawn()
            .ok();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut pids: Vec<u32> = children.iter().chain(renamed.iter()).map(std::process::Child::id).collect();
        pids.push(2); // kthreadd, a kernel thread
        pids.push(u32::MAX >> 2); // no such process
        let (_, pinned) = Pinned::run_ahead(PinAhead::Pids(&pids), true, || ());
        let loaded = pinned.tasks.as_ref().is_some_and(Result::is_ok);
        if loaded {
            assert_eq!(pinned.by_table, pids.len() - 1, "every live process pinned by the table");
            // Each keeps its record for its check (`tasks::seed`), which
            // says whether it is a kernel thread, as `stat` does.
            for pid in pids.iter().filter(|&&p| p != u32::MAX >> 2) {
                let fs = pinned.opened.get(pid).and_then(|fs| fs.as_ref().ok());
                assert!(fs.is_some_and(Procfs::holds_record), "{pid}");
                let by_stat = Procfs::try_pid(*pid).and_then(|f| f.stat_flags()).map(|f| f & PF_KTHREAD != 0).ok();
                assert_eq!(fs.map(Procfs::is_kernel_thread).transpose().ok().flatten(), by_stat, "{pid}");
                assert_eq!(by_stat, Some(*pid == 2), "{pid}");
            }
        }
        for &pid in &pids {
            let fresh = Procfs::try_pid(pid).and_then(|fs| fs.target());
            let ahead = pinned
                .opened
                .get(&pid)
                .map(|r| r.as_ref().map_err(ToString::to_string).and_then(|fs| fs.target().map_err(|e| e.to_string())));
            match fresh {
                Ok(t) => assert_eq!(ahead, Some(Ok(t)), "process {pid}"),
                Err(_) => assert!(matches!(ahead, Some(Err(_))), "no process {pid}: {ahead:?}"),
            }
        }
        if let Some(r) = &renamed {
            let name = pinned.opened.get(&r.id()).and_then(|fs| fs.as_ref().ok()?.target().ok());
            assert!(format!("{name:?}").contains("renamed-by-me"), "{name:?}");
        }
        for mut c in children.into_iter().chain(renamed) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !loaded {
            eprintln!(
                "SKIP pins_made_with_the_table_name_what_stat_names (the table part): {:?}",
                pinned.tasks.map(|t| t.map(|_| ()))
            );
        }
    }
}
