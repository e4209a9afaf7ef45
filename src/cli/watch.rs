//! `fdir watch`: check on a timer and respond (docs/responses.md) — confirm before
//! acting, graded responses, recovery, SIGHUP re-baselines, and a monitor
//! that guards itself (voted baseline copies, the baseline file voted against
//! memory, a SHA-256 self-test every cycle, the watchdog fed only while all
//! of that is healthy).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use fdir::Digest;
use fdir::baseline::{self, Coverage, Key};
use fdir::event::{Accepted, ChangeRecord, EventRecord, Who};
use fdir::explain::explain;
use fdir::guard::sha256_self_test;
use fdir::metrics::{self, Metrics};
use fdir::policy::Policy;
use fdir::respond::{ActionReport, Finished, Outcome, Responder, ResponseState};
use fdir::trigger::hub::{self, Hub, Take};
use fdir::trigger::{Kind, Unavailable};
use fdir::{Clock, CodeBudget, Finding, Monitor, Observation, Snapshot, SystemClock};

use super::args::{FileArgs, WatchArgs};
use super::output::Output;
use super::run::{
    NO_DRIFT, baselinable, chosen_subsystems, decode_baseline, events_of, load_baseline, load_key, names, plural,
    report_baseline, restrict, save, writable,
};
use super::signals::{Asked, Signals};

/// The baseline file is re-read and voted against memory every this many
/// cycles, and never sooner than [`DISK_VOTE_GAP`] after the last vote: a vote
/// reads and verifies the whole file (about a millisecond for one process),
/// which at a 100 ms interval would be most of the daemon's cost.
pub const DISK_VOTE_EVERY: u64 = 10;
/// The trigger sources are aimed again at the same processes (their cgroups
/// and mount namespaces asked again) at most this often.
pub const FOLLOW_AGAIN: Duration = Duration::from_secs(10);
/// A new process named by a trigger is looked at again this long after it
/// should have settled (`SETTLE_YOUNGER_THAN`).
pub const SETTLE_MARGIN: Duration = Duration::from_millis(100);
/// The least time between two votes of the baseline file.
pub const DISK_VOTE_GAP: Duration = Duration::from_secs(5);

/// A round of checks is split into parts of about this many targets,
/// spread over the interval, so that no tick of a large node spikes.
pub const TARGETS_PER_PART: usize = 64;
/// Parts are at least this far apart.
pub const MIN_PART_SPACING: Duration = Duration::from_millis(50);
/// And at most this many.
pub const MAX_PARTS: u32 = 32;

/// How many parts a round of `targets` checks every `interval` is split into.
pub fn parts_for(targets: usize, interval: Duration) -> u32 {
    let by_size = u32::try_from(targets.div_ceil(TARGETS_PER_PART)).unwrap_or(MAX_PARTS);
    let by_time = u32::try_from(interval.as_millis() / MIN_PART_SPACING.as_millis().max(1)).unwrap_or(MAX_PARTS);
    by_size.min(by_time).clamp(1, MAX_PARTS)
}

/// The timer slack a watch asks for, as a fraction of the time between its
/// wake-ups: the kernel may end a wait up to this much late, to wake the
/// CPU once for this timer and another that falls due in the same window.
/// On a VM a wake-up of an idle virtual CPU is most of a quiet cycle's cost
/// (BENCHMARKS.md); 1% of the spacing is a jitter no check notices.
pub const SLACK_DIVISOR: u32 = 100;
/// The slack is never more than this (a long interval keeps its precision).
pub const MAX_SLACK: Duration = Duration::from_millis(10);

/// The timer slack for wake-ups `spacing` apart (see [`SLACK_DIVISOR`]).
pub fn timer_slack(spacing: Duration) -> Duration {
    (spacing / SLACK_DIVISOR).min(MAX_SLACK)
}

/// Sets the calling thread's timer slack ([`timer_slack`]). The kernel's
/// default (50 µs) stays where it cannot be set; only speed depends on it.
pub fn set_timer_slack(spacing: Duration) {
    let ns = u64::try_from(timer_slack(spacing).as_nanos()).unwrap_or(u64::MAX);
    if let Some(ns) = std::num::NonZeroU64::new(ns)
        && let Err(e) = rustix::thread::set_current_timer_slack(Some(ns))
    {
        tracing::debug!("cannot set the timer slack: {e}");
    }
}

/// What the loop waits for between checks.
enum Wake {
    Check,
    Stop(&'static str),
    Rebaseline,
}

/// systemd's notify protocol, when run under systemd (NOTIFY_SOCKET set).
struct Systemd {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Systemd {
    fn new() -> Systemd {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Systemd { enabled, watchdog: if enabled { sd_notify::watchdog_enabled() } else { None } }
    }
    fn send(&self, states: &[sd_notify::NotifyState<'_>]) {
        if self.enabled
            && let Err(e) = sd_notify::notify(states)
        {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }
}

struct Watcher {
    monitor: Monitor,
    out: Output,
    file: FileArgs,
    key: Option<Key>,
    policy: Policy,
    responder: Responder,
    metrics: Arc<Metrics>,
    systemd: Systemd,
    confirm: u32,
    code_budget: CodeBudget,
    interval: Duration,
    cycle: u64,
    /// The last round completed: its number, summary and parts (the text
    /// output writes it at the end if its heartbeat left it out).
    completed: (u64, fdir::Summary, u32),
    /// When the baseline file was last voted (or the watch started), and the
    /// cycle it was.
    last_vote: (std::time::Instant, u64),
    /// What the last full vote of the baseline file found in agreement: the
    /// digest of the file's bytes and of the in-memory baselines
    /// ([`Monitor::baselines_digest`]). While both are unchanged the file
    /// still agrees, and a vote is a read and a hash, not a decode.
    agreed: Option<(Digest, Digest)>,
    /// The parts of the current round (a large scan spread over the interval).
    parts: u32,
    /// The summary of the round so far, and whether it had findings.
    round: fdir::Summary,
    round_findings: bool,
    /// Checks ran and self-tests passed in the last cycle: the watchdog is fed.
    healthy: bool,
    /// Every part of the round so far was healthy.
    healthy_round: bool,
    clock: SystemClock,
    /// The trigger hub, when any source runs (docs/triggers.md).
    hub: Option<Hub>,
    /// When re-checks a trigger asked for may run (the budget was spent).
    trigger_at: Option<Instant>,
    /// A triggered check had findings since the last round ended.
    triggered_findings: bool,
    /// The pids the hub last followed, and when.
    followed: Vec<u32>,
    followed_at: Instant,
}

impl Watcher {
    /// One tick: part `part` of `parts` of a check round, and its responses.
    /// The round's summary, metrics, file vote and watchdog come with its
    /// last part.
    fn tick(&mut self, part: u32, parts: u32) -> Result<()> {
        if part == 0 {
            self.cycle += 1;
            self.round = fdir::Summary::default();
            self.round_findings = false;
        }
        if let Err(e) = sha256_self_test() {
            return self.selftest_failed(e);
        }
        let (findings, part_summary) = self.monitor.cycle_part(&self.clock, part, parts);
        let findings = self.policy.grade_execs(findings);
        self.round.merge(&part_summary);
        let now = self.clock.wall();
        let mut healthy = true;
        if !findings.is_empty() {
            self.round_findings = true;
            healthy = self.respond_to(&findings, now)?;
        }
        if part + 1 < parts {
            self.healthy_round &= healthy;
            return Ok(());
        }
        let summary = self.round;
        if self.cycle - self.last_vote.1 >= DISK_VOTE_EVERY && self.last_vote.0.elapsed() >= DISK_VOTE_GAP {
            self.last_vote = (std::time::Instant::now(), self.cycle);
            self.disk_vote()?;
        }
        self.metrics.check_done(summary.elapsed, now);
        self.metrics.coverage(
            summary.code.map_or(0, |c| c.verified_bytes),
            summary.code.map_or(0, |c| c.total_bytes),
            summary.stopped.map_or(Duration::ZERO, |s| s.total),
        );
        let unobservable = u64::try_from(summary.unobservable).unwrap_or(u64::MAX);
        self.metrics.set_targets(u64::try_from(summary.targets).unwrap_or(u64::MAX) + unobservable, unobservable);
        self.completed = (self.cycle, summary, parts);
        // Triggered checks' routine events (new and exited processes) are
        // summarised with the round, as the round's own are.
        self.round_findings |= std::mem::take(&mut self.triggered_findings);
        if self.round_findings {
            self.out.summarise(now)?;
        }
        let check = EventRecord::check_in_parts(now, self.cycle, &summary, parts).with_interval(self.interval);
        self.out.check_summary(&check, self.round_findings)?;
        self.healthy = healthy && self.healthy_round;
        self.healthy_round = true;
        if self.systemd.enabled {
            self.notify_systemd(&summary);
        }
        self.follow();
        Ok(())
    }

    /// Aims the trigger sources at the processes watched now (a process may
    /// have entered another cgroup or mount namespace since).
    /// The same processes are followed again at most every
    /// [`FOLLOW_AGAIN`].
    fn follow(&mut self) {
        let Some(hub) = &self.hub else { return };
        let pids = self.monitor.pids();
        if pids != self.followed || self.followed_at.elapsed() >= FOLLOW_AGAIN {
            hub.follow(pids.clone());
            self.followed = pids;
            self.followed_at = Instant::now();
        }
    }

    /// Re-checks what triggers named, if the budget allows it now; reports
    /// lost notices first (a full check answers them).
    #[cold]
    #[inline(never)]
    fn triggered(&mut self) -> Result<()> {
        self.trigger_at = None;
        let Some(hub) = &mut self.hub else { return Ok(()) };
        let (losses, taken) = hub.take(Instant::now());
        tracing::trace!("triggers: {taken:?}");
        let due = match taken {
            Take::Nothing => return Ok(()),
            Take::Later(at) => {
                self.trigger_at = Some(at);
                return Ok(());
            }
            Take::Now(due) => due,
        };
        if let Err(e) = sha256_self_test() {
            return self.selftest_failed(e);
        }
        let started = Instant::now();
        let (findings, summary) = self.monitor.recheck(&self.clock, &due);
        if let Some(hub) = &mut self.hub {
            hub.spent(started.elapsed());
            // A new process is looked at again once it has settled: baselined
            // then, not at the timer's next scan.
            if self.monitor.discovers() {
                let settled = Instant::now() + fdir::SETTLE_YOUNGER_THAN + SETTLE_MARGIN;
                for pid in due.new.iter().copied().filter(|&pid| self.monitor.is_settling(pid)) {
                    hub.later(settled, fdir::trigger::Recheck::New(pid));
                }
            }
        }
        tracing::debug!(
            "triggered re-check of {} object(s): {} checked in {:?}",
            due.len(),
            summary.checked,
            summary.elapsed
        );
        // A loss always comes with the full check that answers it: said
        // once that check is made.
        for (kind, lost) in losses {
            self.out.emit(&EventRecord::TriggersLost {
                time: self.clock.wall(),
                source: kind.name().to_owned(),
                lost,
                checked: summary.checked,
            })?;
        }
        let findings = self.policy.grade_execs(findings);
        if !findings.is_empty() {
            self.triggered_findings = true;
            let now = self.clock.wall();
            self.respond_to(&findings, now)?;
            let moved = |f: &Finding| {
                matches!(
                    f,
                    Finding::Baselined { .. } | Finding::Exited { .. } | Finding::Reused { .. } | Finding::Exec { .. }
                )
            };
            if findings.iter().any(moved) {
                self.follow();
            }
        }
        Ok(())
    }

    /// A failed self-test: reported, and the watch unhealthy until one
    /// passes. Out of line, as is [`Watcher::respond_to`]: once the cache has
    /// gone cold over the interval, every page of code a cycle runs costs a
    /// miss, and these two are rare (BENCHMARKS.md, "fewer pages a cycle").
    #[cold]
    #[inline(never)]
    fn selftest_failed(&mut self, e: String) -> Result<()> {
        // Every digest depends on SHA-256: no check can be trusted now.
        self.healthy = false;
        self.metrics.selftest_failed();
        self.out.emit(&EventRecord::Selftest { time: self.clock.wall(), ok: false, message: e })?;
        Ok(())
    }

    /// The round's status to systemd, and the watchdog fed if it was healthy.
    #[inline(never)]
    fn notify_systemd(&self, summary: &fdir::Summary) {
        let status = format!(
            "check #{}: {} targets, {} drifted, {} unobservable",
            self.cycle, summary.targets, summary.drifted, summary.unobservable
        );
        if self.healthy {
            self.systemd.send(&[sd_notify::NotifyState::Watchdog, sd_notify::NotifyState::Status(&status)]);
        } else {
            self.systemd.send(&[sd_notify::NotifyState::Status(&format!("{status}; UNHEALTHY"))]);
        }
    }

    /// The events, metrics and actions of a cycle's findings. Returns
    /// whether the cycle stays healthy (every lost baseline restored).
    #[cold]
    #[inline(never)]
    fn respond_to(&mut self, findings: &[Finding], now: SystemTime) -> Result<bool> {
        let mut healthy = true;
        if findings.iter().any(|f| matches!(f, Finding::BaselineLost { .. })) {
            healthy &= self.restore_lost(findings)?;
        }
        for f in findings {
            if let Finding::BaselineRepaired { copies, .. } = f {
                for _ in 0..*copies {
                    self.metrics.baseline_repaired();
                }
            }
        }
        for (e, severity) in events_of(findings, now, &self.policy, &self.monitor) {
            match (&e, severity) {
                (EventRecord::Anomaly { subsystem, who, .. }, Some(sev)) => {
                    self.metrics.anomaly(*subsystem, sev);
                    self.metrics.workload_anomaly(&who.workload, *subsystem);
                }
                (EventRecord::Recovered { subsystem, .. }, _) => self.metrics.recovered(*subsystem),
                (EventRecord::Error { .. }, _) => self.metrics.check_failed(),
                _ => {}
            }
            if !matches!(e, EventRecord::BaselineLost { .. }) {
                self.out.event(&e)?;
            }
        }
        for f in findings {
            if let Finding::Drift { target, anomalies } = f {
                let severity = self.policy.grade(anomalies);
                let labelled = |a| {
                    let mut e = EventRecord::anomaly(now, target, a, severity);
                    self.monitor.label(&mut e);
                    e.to_json() + "\n"
                };
                let ndjson: String = anomalies.iter().map(labelled).collect();
                for r in self.responder.respond(target, anomalies, severity, &ndjson) {
                    self.action_done(target, r)?;
                }
            }
            // A shared object's drift: graded once; commands run once for it,
            // isolation acts on each process it affects.
            if let Finding::ObjectDrift { object, targets, anomaly } = f {
                let anomalies = std::slice::from_ref(anomaly);
                let severity = self.policy.grade(anomalies);
                let mut e = EventRecord::object_anomaly(now, object, targets, anomaly, severity);
                self.monitor.label(&mut e);
                let ndjson = e.to_json() + "\n";
                for (target, r) in self.responder.respond_object(targets, anomalies, severity, &ndjson) {
                    self.action_done(&target, r)?;
                }
            }
        }
        Ok(healthy)
    }

    /// An action's event and metrics.
    fn action_done(&mut self, target: &fdir::Target, r: ActionReport) -> Result<()> {
        if matches!(r.outcome, Outcome::Done | Outcome::Failed) {
            self.metrics.action(r.severity, r.action, r.outcome == Outcome::Done);
        }
        let mut who = Who::from(target);
        self.monitor.label_who(&mut who);
        self.out.emit(&EventRecord::Action {
            time: self.clock.wall(),
            who,
            severity: r.severity,
            action: r.action.to_owned(),
            outcome: r.outcome,
            detail: r.detail,
        })?;
        Ok(())
    }

    /// The commands that finished beside the checks, reported.
    #[cold]
    #[inline(never)]
    fn reap_actions(&mut self, done: Vec<Finished>) -> Result<()> {
        for f in done {
            self.action_done(&f.target, f.report)?;
        }
        Ok(())
    }

    /// Restores baselines whose every in-memory copy failed, from the file.
    /// Returns whether all were restored.
    fn restore_lost(&mut self, findings: &[Finding]) -> Result<bool> {
        let lost: Vec<_> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::BaselineLost { target } => Some(target.clone()),
                _ => None,
            })
            .collect();
        let (restored, message) = match load_baseline(&self.file, self.key.as_ref()) {
            Ok(file) => {
                let back = self.monitor.restore_from(&file);
                (back, format!("restored from {}", self.file.baseline.display()))
            }
            Err(e) => (Vec::new(), format!("cannot restore from the baseline file: {e:#}")),
        };
        for t in &lost {
            let ok = restored.iter().any(|r| r.same_as(t));
            self.out.emit(&EventRecord::BaselineLost {
                time: self.clock.wall(),
                who: Who::from(t),
                restored: ok,
                message: if ok {
                    format!("every in-memory copy of its baseline failed its digest; {message}")
                } else {
                    format!("every in-memory copy of its baseline failed its digest; not checked: {message}")
                },
            })?;
        }
        Ok(lost.iter().all(|t| restored.iter().any(|r| r.same_as(t))))
    }

    /// Re-reads the baseline file and votes it against memory: a file that is
    /// refused, or that disagrees with the in-memory majority, is written again.
    ///
    /// The bytes are always read and hashed: a file that is byte for byte the
    /// one the last full vote found in agreement with the same in-memory
    /// baselines agrees again (its verification and decoding would give the
    /// same result), and is not decoded. Any other file is voted in full.
    /// Out of line: it runs one cycle in ten.
    #[inline(never)]
    fn disk_vote(&mut self) -> Result<()> {
        let Some(problem) = self.file_problem() else { return Ok(()) };
        let detail = match save(&self.file, self.key.as_ref(), &mut self.monitor, &self.clock) {
            Ok(n) => format!("{problem}; written again from memory ({})", plural(n, "target")),
            Err(e) => {
                self.healthy = false;
                format!("{problem}; cannot write it again: {e:#}")
            }
        };
        self.out.emit(&EventRecord::BaselineFile { time: self.clock.wall(), status: "rewritten".into(), detail })?;
        Ok(())
    }

    /// What is wrong with the baseline file ([`Watcher::disk_vote`]), or
    /// `None` if it agrees with memory.
    fn file_problem(&mut self) -> Option<String> {
        let bytes = match baseline::read(&self.file.baseline) {
            Ok(bytes) => bytes,
            Err(e) => return Some(format!("it was refused: {:#}", anyhow::Error::from(e))),
        };
        let read = Digest::of(&bytes);
        let memory = self.monitor.baselines_digest();
        if memory.is_some_and(|m| self.agreed == Some((read, m))) {
            tracing::debug!("baseline file unchanged since it agreed with memory");
            return None;
        }
        self.agreed = None;
        let file = match decode_baseline(&self.file, &bytes, self.key.as_ref()) {
            Ok(file) => file,
            Err(e) => return Some(format!("it was refused: {e:#}")),
        };
        let differ = self.monitor.disagreements_with(&file);
        if !differ.is_empty() {
            let who: Vec<String> = differ.iter().map(|t| Who::from(t).to_string()).collect();
            return Some(format!("it disagreed with the in-memory baselines of {}", who.join(", ")));
        }
        tracing::debug!("baseline file agrees with memory");
        self.agreed = memory.map(|m| (read, m));
        None
    }

    /// SIGHUP: a new baseline on purpose, saying what it accepts.
    #[cold]
    #[inline(never)]
    fn rebaseline(&mut self) -> Result<()> {
        let old = self.monitor.snapshots();
        let coverage = self.monitor.coverage().clone();
        let subsystems = self.monitor.subsystems().to_vec();
        let (mut monitor, findings) = match Monitor::baseline(coverage, &subsystems, self.confirm, &self.clock) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("SIGHUP: cannot take a new baseline, keeping the old one: {e}");
                self.out.emit(&EventRecord::Error {
                    time: self.clock.wall(),
                    who: Who::default(),
                    message: format!("SIGHUP: cannot take a new baseline, keeping the old one: {e}"),
                })?;
                return Ok(());
            }
        };
        let new = monitor.snapshots();
        let accepted = accepted_changes(&old, &new);
        let added = new.iter().filter(|n| !old.iter().any(|o| o.target.same_as(&n.target))).count();
        let gone = old.iter().filter(|o| !new.iter().any(|n| n.target.same_as(&o.target))).count();
        let _ = findings;
        self.out.emit(&EventRecord::Rebaseline {
            time: self.clock.wall(),
            reason: "SIGHUP".into(),
            targets: new.len(),
            new: added,
            gone,
            accepted,
        })?;
        match save(&self.file, self.key.as_ref(), &mut monitor, &self.clock) {
            Ok(_) => {}
            Err(e) => self.out.emit(&EventRecord::Error {
                time: self.clock.wall(),
                who: Who::default(),
                message: format!("SIGHUP: cannot save the new baseline: {e:#}"),
            })?,
        }
        monitor.set_code_budget(self.code_budget);
        monitor.set_scan_every(self.monitor.scan_every());
        self.monitor = monitor;
        Ok(())
    }
}

/// What a new baseline accepts over an old one: per target present in both,
/// the explained differences of each subsystem.
fn accepted_changes(old: &[Snapshot], new: &[Snapshot]) -> Vec<Accepted> {
    let mut out = Vec::new();
    for n in new {
        let Some(o) = old.iter().find(|o| o.target.same_as(&n.target)) else { continue };
        for (sub, now) in &n.subsystems {
            let (
                Some(Observation::Observed { digest: d0, records: r0 }),
                Observation::Observed { digest: d1, records: r1 },
            ) = (o.subsystems.get(sub), now)
            else {
                continue;
            };
            if d0 != d1 {
                out.push(Accepted {
                    who: Who::from(&n.target),
                    subsystem: *sub,
                    changes: explain(*sub, r0, r1).iter().map(ChangeRecord::from).collect(),
                });
            }
        }
    }
    out
}

/// With the proc connector running, `--all` scans /proc one round in this
/// many: forks and exits come from its notices.
const SCAN_EVERY_WITH_CONNECTOR: u64 = 10;

/// Starts the trigger sources `choice` asks for (none for `off`); each that
/// cannot run is said once, in the `started` event and the line below it.
fn start_triggers(choice: &hub::Choice, monitor: &Monitor, signals: &Signals) -> Option<Hub> {
    if choice.is_off() {
        return None;
    }
    let (sources, unavailable) = hub::open(choice);
    let wake = match signals.trigger_waker() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("triggers off: cannot make their waker: {e}");
            return None;
        }
    };
    match Hub::start(sources, unavailable, monitor.discovers(), &monitor.pids(), wake) {
        Ok(hub) => Some(hub),
        Err(e) => {
            tracing::warn!("triggers off: {e}");
            None
        }
    }
}

/// The text line that names the trigger sources at start:
/// `TRIGGERS connector mountinfo inotify; ebpf unavailable: REASON`.
fn triggers_line(off: bool, running: &[Kind], unavailable: &[Unavailable]) -> String {
    let mut line = String::from("TRIGGERS ");
    if off {
        line.push_str("off: the timer alone");
    } else if running.is_empty() {
        line.push_str("none: the timer alone");
    } else {
        line.push_str(&running.iter().map(|k| k.name()).collect::<Vec<_>>().join(" "));
    }
    for u in unavailable {
        line.push_str(&format!("; {} unavailable: {}", u.kind, u.reason));
    }
    line
}

/// `fdir watch`.
pub fn watch(o: WatchArgs) -> Result<u8> {
    let clock = SystemClock;
    let key = load_key(&o.file)?;
    let mut out = Output::new(o.format);
    let systemd = Systemd::new();

    let mut policy = match &o.config {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    if let Some(cmd) = &o.on_anomaly {
        policy.actions.on_anomaly = Some(cmd.clone());
    }
    policy.actions.passive |= o.passive;

    // The self-test comes first: nothing is trusted if SHA-256 is wrong.
    if let Err(e) = fdir::guard::sha256_self_test_full() {
        out.emit(&EventRecord::Selftest { time: clock.wall(), ok: false, message: e.clone() })?;
        anyhow::bail!("self-test failed, not starting: {e}");
    }

    // Signals next: a SIGTERM during a long baseline still ends fdir cleanly.
    let signals = Signals::install().context("cannot install signal handlers")?;

    // A link (even a dangling one) is a file there: loaded, and so refused.
    let use_file = !o.rebaseline && o.file.baseline.symlink_metadata().is_ok();
    if !use_file {
        if let Some(Coverage::Pids { pids }) = o.target.coverage() {
            for pid in pids {
                baselinable(pid)?;
            }
        }
        writable(&o.file.baseline)?;
    }
    let (mut monitor, findings) = if use_file {
        let loaded = restrict(load_baseline(&o.file, key.as_ref())?, o.target.coverage(), &o.file.baseline)?;
        let (m, _) = Monitor::resume(&loaded, o.confirm)?;
        let resumed: Vec<Finding> = loaded
            .targets
            .iter()
            .map(|s| Finding::Baselined { snapshot: Box::new(s.clone()), first_sight: false })
            .collect();
        (m, resumed)
    } else {
        let coverage = o.target.coverage().unwrap_or(Coverage::All);
        let subsystems = chosen_subsystems(&coverage, o.subsystems.clone())?;
        Monitor::baseline(coverage, &subsystems, o.confirm, &clock)?
    };
    if !use_file {
        save(&o.file, key.as_ref(), &mut monitor, &clock)?;
    }
    let code_budget = o.code_budget.unwrap_or(CodeBudget::DEFAULT);
    monitor.set_code_budget(code_budget);

    let metrics = Arc::new(Metrics::new());
    if o.metrics_workload_labels {
        metrics.enable_workload_labels();
    }
    for (sev, name) in [
        (fdir::Severity::Isolate, "isolate"),
        (fdir::Severity::Restart, "restart"),
        (fdir::Severity::Degrade, "degrade"),
        (fdir::Severity::SafeMode, "safe-mode"),
    ] {
        metrics.declare_action(sev, name);
    }
    let _server = match &o.metrics {
        Some(addr) => {
            let server = metrics::serve(Arc::clone(&metrics), addr)?;
            if !server.local_addr().ip().is_loopback() {
                // Unauthenticated, and it names processes and subsystems.
                tracing::warn!(
                    "--metrics {addr} is not a loopback address: anyone who can reach it reads fdir's metrics without authentication; bind 127.0.0.1 and put it behind the node agent or a TLS proxy (docs/metrics.md)"
                );
            }
            Some(server)
        }
        None => None,
    };

    let hub = start_triggers(&o.triggers, &monitor, &signals);
    if let Some(hub) = &hub {
        metrics.set_triggers(hub.stats());
    }
    let (running, unavailable) = match &hub {
        Some(hub) => (hub.running().to_vec(), hub.unavailable().to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    // The connector reports every fork and exit: under --all, new processes
    // are baselined from its notices, and /proc is scanned only as a safety
    // net (a lost notice is answered by a full round that scans).
    if running.contains(&Kind::Connector) {
        monitor.set_scan_every(SCAN_EVERY_WITH_CONNECTOR);
    }
    out.emit(&EventRecord::Started {
        time: clock.wall(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        coverage: monitor.coverage().to_string(),
        subsystems: monitor.subsystems().to_vec(),
        interval_ms: u64::try_from(o.interval.as_millis()).unwrap_or(u64::MAX),
        baseline: o.file.baseline.display().to_string(),
        confirm: o.confirm,
        triggers: running.iter().map(|k| k.name().to_owned()).collect(),
        triggers_unavailable: unavailable.iter().map(|u| (u.kind.name().to_owned(), u.reason.clone())).collect(),
    })?;
    out.say(&triggers_line(o.triggers.is_off(), &running, &unavailable))?;
    out.emit(&EventRecord::Selftest {
        time: clock.wall(),
        ok: true,
        message: "SHA-256 known answers; runs again every cycle".into(),
    })?;
    // A resume's baselines are the file's: in text, the line below says how
    // many; the processes gone since are reported by the first check.
    if !(use_file && out.format() == super::args::Format::Text) {
        report_baseline(&mut out, &findings, clock.wall(), &monitor)?;
    }
    let (unreadable, subsystems, partly) = monitor.unobservable_parts();
    out.say(&format!(
        "{} {} {} {} ({}){}{}; the first check follows at once, then one every {}",
        if use_file { "resumed" } else { "baselined" },
        plural(monitor.len(), "target"),
        if use_file { "from" } else { "into" },
        o.file.baseline.display(),
        names(monitor.subsystems()),
        if partly > 0 {
            format!("; {} unreadable in {partly} of them", plural(subsystems, "subsystem"))
        } else {
            String::new()
        },
        if unreadable > 0 { format!("; {} not readable at all", plural(unreadable, "process")) } else { String::new() },
        humantime::format_duration(o.interval)
    ))?;
    if policy.actions.passive {
        out.say("passive mode: drifts are graded and reported, no action is taken")?;
    }
    if let Some(addr) = &o.metrics {
        out.say(&format!("metrics at http://{addr}/metrics"))?;
    }
    systemd.send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("watching {}", plural(monitor.len(), "target"))),
    ]);

    let mut responder = Responder::new(policy.actions.clone());
    // Cooldowns and the action limit survive a restart: kept beside the
    // baseline, sealed as it is (a state that fails its check is refused).
    let boot = fdir::boot_id()?;
    let state_file = baseline::state_path(&o.file.baseline);
    if let Some(payload) = baseline::load_state(&state_file, key.as_ref())? {
        let state: ResponseState = serde_json::from_slice(&payload)
            .with_context(|| format!("response state {} is not valid", state_file.display()))?;
        let n = responder.resume(&state, &boot);
        tracing::info!("resumed {n} cooldowns and limits from {}", state_file.display());
    }
    // Kept each time an action is counted, before it runs. A failure is
    // said, not fatal: the action still runs, and the next one tries again.
    let state_key = key.clone();
    responder.keep_state_with(boot, move |state| {
        let saved = serde_json::to_vec(state)
            .map_err(|e| fdir::Error::Bug(format!("cannot encode the response state: {e}")))
            .and_then(|payload| baseline::save_state(&state_file, &payload, state_key.as_ref()));
        if let Err(e) = saved {
            tracing::warn!("cooldowns and limits not kept, a restart would act again: {e}");
        }
    });
    if !policy.actions.passive {
        // Commands run beside the checks: one that runs up to its timeout
        // neither delays a check nor starves the systemd watchdog.
        let beside =
            signals.waker().map_err(|e| e.to_string()).and_then(|w| responder.run_beside(w).map_err(|e| e.to_string()));
        if let Err(e) = beside {
            tracing::warn!("cannot start the responder thread ({e}): actions run on the check thread");
        }
    }
    // The hub followed these at its start.
    let w_pids = monitor.pids();
    let mut w = Watcher {
        monitor,
        out,
        file: o.file,
        key,
        policy,
        responder,
        metrics,
        systemd,
        confirm: o.confirm,
        code_budget,
        interval: o.interval,
        cycle: 0,
        completed: (0, fdir::Summary::default(), 1),
        last_vote: (std::time::Instant::now(), 0),
        agreed: None,
        parts: 1,
        round: fdir::Summary::default(),
        round_findings: false,
        healthy: true,
        healthy_round: true,
        clock,
        hub,
        trigger_at: None,
        triggered_findings: false,
        followed: w_pids,
        followed_at: Instant::now(),
    };
    let reason = run(&mut w, &signals, o.interval)?;
    // The trigger thread stops before the last events are written.
    w.hub = None;
    let done = w.responder.stop();
    w.reap_actions(done)?;

    w.systemd.send(&[sd_notify::NotifyState::Stopping]);
    // Text: the last check is written if the heartbeat left it out, so the
    // count below is one a reader can see.
    let (last, summary, parts) = w.completed;
    let now = w.clock.wall();
    if last > 0 && !w.out.wrote_check(last) {
        w.out.summarise(now)?;
        w.out.emit(&EventRecord::check_in_parts(now, last, &summary, parts).with_interval(w.interval))?;
    }
    w.out.emit(&EventRecord::Stopped { time: now, reason: reason.to_owned(), cycles: last })?;
    Ok(NO_DRIFT)
}

/// The watch's loop: waits for the next check or a signal, and ticks.
/// Returns the name of the signal that stopped it. Out of line, so that the
/// code a steady cycle runs is not spread through the watch's start-up.
#[inline(never)]
fn run(w: &mut Watcher, signals: &Signals, interval: Duration) -> Result<&'static str> {
    let mut next = Instant::now();
    let mut part = 0u32;
    let mut last_ping = Instant::now();
    loop {
        let wake = loop {
            let now = Instant::now();
            if now >= next {
                break Wake::Check;
            }
            let mut wait = next - now;
            if let Some(dog) = w.systemd.watchdog {
                wait = wait.min(dog / 2);
            }
            if let Some(at) = w.trigger_at {
                if at <= now {
                    w.triggered()?;
                    continue;
                }
                wait = wait.min(at - now);
            }
            match signals.wait(wait).context("cannot wait for the next check")? {
                Some(Asked::Rebaseline) => break Wake::Rebaseline,
                Some(Asked::Stop(name)) => break Wake::Stop(name),
                Some(Asked::ActionDone) => {
                    let done = w.responder.finished();
                    w.reap_actions(done)?;
                }
                Some(Asked::Triggered) => w.triggered()?,
                None => {}
            }
            // Between checks the watchdog is fed only if the last cycle was healthy.
            if let Some(dog) = w.systemd.watchdog
                && w.healthy
                && last_ping.elapsed() >= dog / 2
            {
                w.systemd.send(&[sd_notify::NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
        };
        match wake {
            Wake::Stop(why) => return Ok(why),
            Wake::Rebaseline => w.rebaseline()?,
            Wake::Check => {
                if part == 0 {
                    // The first round is whole, at once: a watch says what
                    // it found as soon as it starts; later rounds are spread.
                    let parts = if w.cycle == 0 { 1 } else { parts_for(w.monitor.len(), interval) };
                    if parts != w.parts || w.cycle == 0 {
                        set_timer_slack(interval / parts);
                    }
                    w.parts = parts;
                }
                let parts = w.parts;
                w.tick(part, parts)?;
                last_ping = Instant::now();
                part = (part + 1) % parts;
                // A round's parts are spread evenly over the interval.
                next += interval / parts;
                let now = Instant::now();
                if next <= now {
                    next = now + interval / parts;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_slack_is_a_hundredth_of_the_spacing_up_to_10_ms() {
        assert_eq!(timer_slack(Duration::from_secs(1)), Duration::from_millis(10));
        assert_eq!(timer_slack(Duration::from_millis(100)), Duration::from_millis(1));
        assert_eq!(timer_slack(Duration::from_secs(3600)), MAX_SLACK);
        assert_eq!(timer_slack(Duration::from_millis(50) / 2), Duration::from_micros(250));
    }

    #[test]
    fn large_rounds_are_split_into_parts() {
        assert_eq!(parts_for(10, Duration::from_secs(30)), 1);
        assert_eq!(parts_for(640, Duration::from_secs(30)), 10);
        assert_eq!(parts_for(100_000, Duration::from_secs(30)), MAX_PARTS);
        // Never closer than 50 ms apart.
        assert_eq!(parts_for(640, Duration::from_millis(200)), 4);
        assert_eq!(parts_for(640, Duration::from_millis(10)), 1);
    }
}
