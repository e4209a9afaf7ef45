//! The monitoring runtime behind `fdir watch` (docs/responses.md): check on
//! a timer and respond — confirm before acting, graded responses, recovery,
//! re-baselines, and a monitor that guards itself (voted baseline copies,
//! the baseline file voted against memory and restored from, a SHA-256
//! self-test every cycle, the watchdog fed only while all of that is healthy).
//!
//! What it runs on is injected: the [`Clock`], the [`Sink`] its events go to
//! (the command line writes them as text or NDJSON), the [`Store`] that
//! holds the baseline file, the [`Responder`], the [`Metrics`], the trigger
//! [`Hub`], a [`Notifier`] (systemd) and what it [`Wait`]s on between ticks
//! (`fdir watch`'s signals). [`Runtime::run`] is the loop; [`Runtime::finish`]
//! the end.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::baseline::BaselineFile;
use crate::event::{Accepted, ChangeRecord, EventRecord, Who};
use crate::explain::explain;
use crate::guard::sha256_self_test;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::respond::{ActionReport, Finished, Outcome, Responder};
use crate::trigger::hub::{Hub, Take};
use crate::{Clock, CodeBudget, Digest, Finding, Monitor, Observation, Severity, Snapshot};

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
/// spread over the interval, so that no tick of a large node spikes. Each
/// part wakes on cold caches and pays its fixed costs: the whole-node watch
/// of 500 processes at 1 s cost 31-36 ms of CPU a cycle in 8 parts of 64,
/// 29-32 ms in 4 of 128 (BENCHMARKS.md), a part about 8 ms on one core.
pub const TARGETS_PER_PART: usize = 128;
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

/// The tick `step` after `next`; or, when that one is already past at
/// `now` (a suspended machine, a slow check), `step` after `now`: a loop
/// that fell behind skips the missed ticks rather than run them back to
/// back. Both loops keep time with it: [`Runtime::run`] on the monotonic
/// clock, `start_daemon`'s on its [`Clock`].
pub fn next_tick<T>(next: T, step: Duration, now: T) -> T
where
    T: Copy + PartialOrd + std::ops::Add<Duration, Output = T>,
{
    let next = next + step;
    if next <= now { now + step } else { next }
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

/// Where the runtime's events go. The command line writes them to stdout,
/// as text or NDJSON (`cli/output.rs`).
pub trait Sink {
    /// Writes one event at once.
    fn emit(&mut self, e: &EventRecord) -> io::Result<()>;
    /// Writes an event about a target; a sink may hold routine ones back
    /// for [`Sink::summarise`].
    fn event(&mut self, e: &EventRecord) -> io::Result<()> {
        self.emit(e)
    }
    /// The summary of the events held back since the last one, if any.
    /// Returns whether it wrote something.
    fn summarise(&mut self, _time: SystemTime) -> io::Result<bool> {
        Ok(false)
    }
    /// A round's `check` event; `had_findings` says whether the round found
    /// anything (a sink may write quiet rounds' less often).
    fn check_summary(&mut self, e: &EventRecord, _had_findings: bool) -> io::Result<()> {
        self.emit(e)
    }
    /// Whether the `check` event of `cycle` was written.
    fn wrote_check(&self, _cycle: u64) -> bool {
        true
    }
}

/// The baseline file the runtime votes against memory, restores from and
/// writes again. Errors are the messages said in the events.
pub trait Store {
    /// The file's path (named in events).
    fn path(&self) -> &Path;
    /// Loads and checks the file: integrity, key, boot.
    fn load(&self) -> Result<BaselineFile, String>;
    /// The file's bytes.
    fn read(&self) -> Result<Vec<u8>, String>;
    /// The SHA-256 of [`Store::read`]'s bytes; a store that can hash its
    /// file as it reads it holds none of it.
    fn digest(&self) -> Result<Digest, String> {
        self.read().map(|bytes| Digest::of(&bytes))
    }
    /// [`Store::load`] of bytes already read.
    fn decode(&self, bytes: &[u8]) -> Result<BaselineFile, String>;
    /// Writes the monitor's baselines; returns how many targets.
    fn save(&self, monitor: &mut Monitor) -> Result<usize, String>;
    /// What this store last wrote: the digest of the bytes and the
    /// fingerprint of each target's snapshot in them
    /// ([`Monitor::baseline_prints`]). The vote then judges an unchanged
    /// file without reading it whole or decoding it.
    fn written(&self) -> Option<FilePrints> {
        None
    }
}

/// A baseline file as the disk vote remembers it: the SHA-256 of its bytes,
/// and the fingerprint of each target's snapshot in it, in pid order. While
/// the file's bytes have that digest, comparing those fingerprints with the
/// in-memory baselines' digests gives the answer decoding the file and
/// comparing its snapshots would ([`Monitor::disagreements_with_prints`]),
/// for about 100 bytes a target instead of a read and a decode of the whole
/// file each time a process came or went.
#[derive(Debug, Clone)]
pub struct FilePrints {
    /// The SHA-256 of the file's bytes.
    pub file: Digest,
    /// Each target of the file and its snapshot's fingerprint, in pid order.
    pub targets: Vec<(crate::Target, Digest)>,
}

impl FilePrints {
    /// The prints of a decoded file whose bytes have the digest `file`;
    /// `None` if a snapshot cannot be fingerprinted.
    pub fn of(file: Digest, decoded: &BaselineFile) -> Option<FilePrints> {
        let mut targets = decoded
            .targets
            .iter()
            .map(|s| Some((s.target.clone(), crate::guard::fingerprint(s)?)))
            .collect::<Option<Vec<_>>>()?;
        targets.sort_by_key(|(t, _)| t.pid().unwrap_or(0));
        Some(FilePrints { file, targets })
    }
}

/// The vote's finding when the file and memory differ for `targets`.
fn disagreed(targets: &[crate::Target]) -> String {
    let who: Vec<String> = targets.iter().map(|t| Who::from(t).to_string()).collect();
    format!("it disagreed with the in-memory baselines of {}", who.join(", "))
}

/// What wakes the loop of [`Runtime::run`] before its next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Stop, for this signal.
    Stop(&'static str),
    /// Take a new baseline (SIGHUP).
    Rebaseline,
    /// An action command finished: report it.
    ActionDone,
    /// A trigger named something to re-check now.
    Triggered,
}

/// The sleep between ticks ([`Runtime::run`]): the command line's ends on a
/// signal, a finished action or a trigger (`cli/signals.rs`).
pub trait Wait {
    /// Waits up to `timeout`; `None` when it passed with nothing asked.
    fn wait(&self, timeout: Duration) -> io::Result<Option<Asked>>;
}

/// What the loop waits for between checks.
enum Wake {
    Check,
    Stop(&'static str),
    Rebaseline,
}

/// A service manager told of the runtime's health (systemd's notify protocol).
pub trait Notifier {
    /// The watchdog's period, if the manager keeps one: it is fed at least
    /// every half of it while the runtime is healthy.
    fn watchdog(&self) -> Option<Duration>;
    /// Feeds the watchdog.
    fn ping(&self);
    /// A round's status, and whether the watchdog is fed.
    fn round(&self, status: &str, healthy: bool);
    /// The runtime is stopping.
    fn stopping(&self);
}

/// What a [`Runtime`] is made of.
pub struct Setup<C, S, B> {
    /// The targets and their baselines.
    pub monitor: Monitor,
    /// Where events go.
    pub sink: S,
    /// The baseline file.
    pub store: B,
    /// Grades and actions.
    pub policy: Policy,
    /// Runs the actions.
    pub responder: Responder,
    /// The metrics the runtime counts into.
    pub metrics: Arc<Metrics>,
    /// Told of each round's health, when run under a service manager.
    pub notifier: Option<Box<dyn Notifier>>,
    /// Reads a drift must be confirmed by.
    pub confirm: u32,
    /// The code budget of each check (kept over a re-baseline).
    pub code_budget: CodeBudget,
    /// The time between rounds.
    pub interval: Duration,
    /// The clock.
    pub clock: C,
    /// The trigger hub, when any source runs (docs/triggers.md).
    pub hub: Option<Hub>,
}

/// The monitoring runtime: see the module's documentation.
pub struct Runtime<C, S, B> {
    monitor: Monitor,
    out: S,
    store: B,
    policy: Policy,
    responder: Responder,
    metrics: Arc<Metrics>,
    notifier: Option<Box<dyn Notifier>>,
    confirm: u32,
    code_budget: CodeBudget,
    interval: Duration,
    cycle: u64,
    /// The last round completed: its number, summary and parts (the text
    /// output writes it at the end if its heartbeat left it out).
    completed: (u64, crate::Summary, u32),
    /// When the baseline file was last voted (or the watch started), and the
    /// cycle it was.
    last_vote: (Instant, u64),
    /// The baseline file as the last vote that decoded it (or the last
    /// save) left it: while its bytes are unchanged, a vote is a hash of
    /// them and a comparison of digests, not a decode.
    prints: Option<FilePrints>,
    /// The parts of the current round (a large scan spread over the interval).
    parts: u32,
    /// The summary of the round so far, and whether it had findings.
    round: crate::Summary,
    round_findings: bool,
    /// Checks ran and self-tests passed in the last cycle: the watchdog is fed.
    healthy: bool,
    /// Every part of the round so far was healthy.
    healthy_round: bool,
    clock: C,
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

impl<C: Clock, S: Sink, B: Store> Runtime<C, S, B> {
    /// A runtime of `setup`; its first round is whole, at once.
    pub fn new(setup: Setup<C, S, B>) -> Self {
        // The hub followed these at its start.
        let followed = setup.monitor.pids();
        Runtime {
            monitor: setup.monitor,
            out: setup.sink,
            store: setup.store,
            policy: setup.policy,
            responder: setup.responder,
            metrics: setup.metrics,
            notifier: setup.notifier,
            confirm: setup.confirm,
            code_budget: setup.code_budget,
            interval: setup.interval,
            cycle: 0,
            completed: (0, crate::Summary::default(), 1),
            last_vote: (Instant::now(), 0),
            prints: None,
            parts: 1,
            round: crate::Summary::default(),
            round_findings: false,
            healthy: true,
            healthy_round: true,
            clock: setup.clock,
            hub: setup.hub,
            trigger_at: None,
            triggered_findings: false,
            followed,
            followed_at: Instant::now(),
        }
    }

    /// The loop: waits for the next tick, a trigger, a finished action or
    /// a signal (`waiter`), and ticks; the watchdog is fed between ticks
    /// while the last round was healthy. Returns the name of the signal that
    /// stopped it. Out of line, so that the code a steady cycle runs is not
    /// spread through the watch's start-up.
    #[inline(never)]
    pub fn run<W: Wait>(&mut self, waiter: &W) -> io::Result<&'static str> {
        let interval = self.interval;
        let watchdog = self.notifier.as_ref().and_then(|n| n.watchdog());
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
                if let Some(dog) = watchdog {
                    wait = wait.min(dog / 2);
                }
                if let Some(at) = self.trigger_at {
                    if at <= now {
                        self.triggered()?;
                        continue;
                    }
                    wait = wait.min(at - now);
                }
                let asked = waiter
                    .wait(wait)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot wait for the next check: {e}")))?;
                match asked {
                    Some(Asked::Rebaseline) => break Wake::Rebaseline,
                    Some(Asked::Stop(name)) => break Wake::Stop(name),
                    Some(Asked::ActionDone) => {
                        let done = self.responder.finished();
                        self.reap_actions(done)?;
                    }
                    Some(Asked::Triggered) => self.triggered()?,
                    None => {}
                }
                // Between checks the watchdog is fed only if the last cycle was healthy.
                if let Some(dog) = watchdog
                    && self.healthy
                    && last_ping.elapsed() >= dog / 2
                    && let Some(n) = &self.notifier
                {
                    n.ping();
                    last_ping = Instant::now();
                }
            };
            match wake {
                Wake::Stop(why) => return Ok(why),
                Wake::Rebaseline => self.rebaseline()?,
                Wake::Check => {
                    if part == 0 {
                        self.plan_round();
                    }
                    let parts = self.parts;
                    self.tick(part, parts)?;
                    last_ping = Instant::now();
                    part = (part + 1) % parts;
                    // A round's parts are spread evenly over the interval.
                    next = next_tick(next, interval / parts, Instant::now());
                }
            }
        }
    }

    /// At the start of a round: how many parts it is split into (the first
    /// round is whole, at once: a watch says what it found as soon as it
    /// starts; later rounds are spread), with the timer slack set for them.
    fn plan_round(&mut self) -> u32 {
        let parts = if self.cycle == 0 { 1 } else { parts_for(self.monitor.len(), self.interval) };
        if parts != self.parts || self.cycle == 0 {
            set_timer_slack(self.interval / parts);
        }
        self.parts = parts;
        parts
    }

    /// The end: the trigger thread stopped, the actions still running waited
    /// for and reported, the notifier told, the last check written if the
    /// sink left it out, and the `stopped` event with `reason`.
    pub fn finish(mut self, reason: &str) -> io::Result<()> {
        // The trigger thread stops before the last events are written.
        self.hub = None;
        let done = self.responder.stop();
        self.reap_actions(done)?;
        if let Some(n) = &self.notifier {
            n.stopping();
        }
        // Text: the last check is written if the heartbeat left it out, so
        // the count below is one a reader can see.
        let (last, summary, parts) = self.completed;
        let now = self.clock.wall();
        if last > 0 && !self.out.wrote_check(last) {
            self.out.summarise(now)?;
            self.out.emit(&EventRecord::check_in_parts(now, last, &summary, parts).with_interval(self.interval))?;
        }
        self.out.emit(&EventRecord::Stopped { time: now, reason: reason.to_owned(), cycles: last })
    }

    /// One tick: part `part` of `parts` of a check round, and its responses.
    /// The round's summary, metrics, file vote and watchdog come with its
    /// last part.
    /// Every new process waiting to settle (found by a notice, or by a
    /// scan, a full check after a lost notice included) is looked at again
    /// once it has settled: baselined then, not at the timer's next scan.
    fn settle_later(&mut self) {
        let Some(hub) = &mut self.hub else { return };
        if !self.monitor.discovers() {
            return;
        }
        let settled = Instant::now() + crate::SETTLE_YOUNGER_THAN + SETTLE_MARGIN;
        for pid in self.monitor.settling() {
            hub.later(settled, crate::trigger::Recheck::New(pid));
        }
    }

    fn tick(&mut self, part: u32, parts: u32) -> io::Result<()> {
        if part == 0 {
            self.cycle += 1;
            self.round = crate::Summary::default();
            self.round_findings = false;
        }
        if let Err(e) = sha256_self_test() {
            return self.selftest_failed(e);
        }
        let (findings, part_summary) = self.monitor.cycle_part(&self.clock, part, parts);
        if part == 0 {
            self.settle_later();
        }
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
            self.last_vote = (Instant::now(), self.cycle);
            self.disk_vote()?;
        }
        self.metrics.check_done(summary.elapsed, now);
        self.metrics.coverage(
            summary.code.map_or(0, |c| c.verified_bytes),
            summary.code.map_or(0, |c| c.total_bytes),
            summary.stopped.map_or(Duration::ZERO, |s| s.total),
        );
        if let Some(c) = summary.code {
            self.metrics.code_sources(c.read_bytes, c.shared_bytes, c.private_pages);
        }
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
        if self.notifier.is_some() {
            self.notify(&summary);
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
    fn triggered(&mut self) -> io::Result<()> {
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
        }
        self.settle_later();
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
    /// passes. Out of line, as is [`Runtime::respond_to`]: once the cache has
    /// gone cold over the interval, every page of code a cycle runs costs a
    /// miss, and these two are rare (BENCHMARKS.md, "fewer pages a cycle").
    #[cold]
    #[inline(never)]
    fn selftest_failed(&mut self, e: String) -> io::Result<()> {
        // Every digest depends on SHA-256: no check can be trusted now.
        self.healthy = false;
        self.metrics.selftest_failed();
        self.out.emit(&EventRecord::Selftest { time: self.clock.wall(), ok: false, message: e })?;
        Ok(())
    }

    /// The round's status to the notifier, and the watchdog fed if it was
    /// healthy.
    #[inline(never)]
    fn notify(&self, summary: &crate::Summary) {
        let Some(notifier) = &self.notifier else { return };
        let status = format!(
            "check #{}: {} targets, {} drifted, {} unobservable",
            self.cycle, summary.targets, summary.drifted, summary.unobservable
        );
        notifier.round(&status, self.healthy);
    }

    /// The events, metrics and actions of a cycle's findings. Returns
    /// whether the cycle stays healthy (every lost baseline restored).
    #[cold]
    #[inline(never)]
    fn respond_to(&mut self, findings: &[Finding], now: SystemTime) -> io::Result<bool> {
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
    fn action_done(&mut self, target: &crate::Target, r: ActionReport) -> io::Result<()> {
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
    fn reap_actions(&mut self, done: Vec<Finished>) -> io::Result<()> {
        for f in done {
            self.action_done(&f.target, f.report)?;
        }
        Ok(())
    }

    /// Restores baselines whose every in-memory copy failed, from the file.
    /// Returns whether all were restored.
    fn restore_lost(&mut self, findings: &[Finding]) -> io::Result<bool> {
        let lost: Vec<_> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::BaselineLost { target } => Some(target.clone()),
                _ => None,
            })
            .collect();
        let (restored, message) = match self.store.load() {
            Ok(file) => {
                let back = self.monitor.restore_from(&file);
                (back, format!("restored from {}", self.store.path().display()))
            }
            Err(e) => (Vec::new(), format!("cannot restore from the baseline file: {e}")),
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
    fn disk_vote(&mut self) -> io::Result<()> {
        let Some(problem) = self.file_problem() else { return Ok(()) };
        self.prints = None;
        let detail = match self.store.save(&mut self.monitor) {
            Ok(n) => format!("{problem}; written again from memory ({})", plural(n, "target")),
            Err(e) => {
                self.healthy = false;
                format!("{problem}; cannot write it again: {e}")
            }
        };
        self.out.emit(&EventRecord::BaselineFile { time: self.clock.wall(), status: "rewritten".into(), detail })?;
        Ok(())
    }

    /// What is wrong with the baseline file ([`Runtime::disk_vote`]), or
    /// `None` if it agrees with memory.
    fn file_problem(&mut self) -> Option<String> {
        // The common case, a file unchanged since it was last decoded or
        // written, is judged by its digest (hashed as it is read, no copy of
        // it held) and its targets' fingerprints.
        if let Some(prints) = self.prints.take().or_else(|| self.store.written())
            && self.store.digest().is_ok_and(|d| d == prints.file)
            && let Some(differ) = self.monitor.disagreements_with_prints(&prints.targets)
        {
            self.prints = Some(prints);
            if differ.is_empty() {
                tracing::debug!("baseline file unchanged, and agrees with memory");
                return None;
            }
            return Some(disagreed(&differ));
        }
        let bytes = match self.store.read() {
            Ok(bytes) => bytes,
            Err(e) => return Some(format!("it was refused: {e}")),
        };
        let read = Digest::of(&bytes);
        let file = match self.store.decode(&bytes) {
            Ok(file) => file,
            Err(e) => return Some(format!("it was refused: {e}")),
        };
        let differ = self.monitor.disagreements_with(&file);
        if !differ.is_empty() {
            return Some(disagreed(&differ));
        }
        tracing::debug!("baseline file agrees with memory");
        self.prints = FilePrints::of(read, &file);
        None
    }

    /// SIGHUP: a new baseline on purpose, saying what it accepts.
    #[cold]
    #[inline(never)]
    fn rebaseline(&mut self) -> io::Result<()> {
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
        self.prints = None;
        match self.store.save(&mut monitor) {
            Ok(_) => {}
            Err(e) => self.out.emit(&EventRecord::Error {
                time: self.clock.wall(),
                who: Who::default(),
                message: format!("SIGHUP: cannot save the new baseline: {e}"),
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

/// Grades each drift finding with `policy` and turns findings into events,
/// each with the workload of its process where the monitor knows it.
pub fn events_of(
    findings: &[Finding],
    now: SystemTime,
    policy: &Policy,
    monitor: &Monitor,
) -> Vec<(EventRecord, Option<Severity>)> {
    let mut events = Vec::new();
    for f in findings {
        let severity = match f {
            Finding::Drift { anomalies, .. } => policy.grade(anomalies),
            // One root cause, graded once (docs/contracts.md §8).
            Finding::ObjectDrift { anomaly, .. } => policy.grade(std::slice::from_ref(anomaly)),
            _ => Severity::Log,
        };
        for mut e in EventRecord::from_finding(now, f, severity) {
            monitor.label(&mut e);
            let graded = matches!(e, EventRecord::Anomaly { .. }).then_some(severity);
            events.push((e, graded));
        }
    }
    events
}

/// `3 targets`, `1 target`.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
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
    fn a_loop_that_fell_behind_skips_the_missed_ticks() {
        let (s, at) = (Duration::from_secs(1), Duration::from_secs);
        assert_eq!(next_tick(at(10), s, at(10)), at(11));
        assert_eq!(next_tick(at(10), s, Duration::from_millis(10_999)), at(11));
        // Due now or missed: one step from now, not the missed ones back to back.
        assert_eq!(next_tick(at(10), s, at(11)), at(12));
        assert_eq!(next_tick(at(10), s, at(15)), at(16));
    }

    #[test]
    fn large_rounds_are_split_into_parts() {
        assert_eq!(parts_for(10, Duration::from_secs(30)), 1);
        assert_eq!(parts_for(640, Duration::from_secs(30)), 5);
        assert_eq!(parts_for(100_000, Duration::from_secs(30)), MAX_PARTS);
        // Never closer than 50 ms apart.
        assert_eq!(parts_for(640, Duration::from_millis(200)), 4);
        assert_eq!(parts_for(640, Duration::from_millis(10)), 1);
    }
}
