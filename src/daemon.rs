//! The monitor thread: check on a timer, confirm drift before declaring it,
//! call the handler, report recoveries, never die of a failing check or
//! handler.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::StopSignal;
use crate::guard::{Redundant, sha256_self_test};
use crate::snapshot::{Checker, Reading, Status};
use crate::{Anomaly, Clock, Config, Digest, Error, Report, Severity, Snapshot, Source, Subsystem};

/// Something the daemon did or saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A check cycle ended (after any confirming re-reads).
    Checked(Report),
    /// A drift was seen but not confirmed by the re-reads: a read glitch, or a
    /// change that was reverted at once. Not declared, handler not called.
    Transient {
        /// The subsystems that looked drifted.
        subsystems: Vec<Subsystem>,
    },
    /// A drift confirmed by `confirm` consecutive reads, and the handler's grade.
    Declared {
        /// The newly declared anomalies (a drift that persists is declared once).
        anomalies: Vec<Anomaly>,
        /// What the handler returned; `None` if it panicked.
        severity: Option<Severity>,
    },
    /// A declared drift is back at its baseline.
    Recovered {
        /// The subsystem.
        subsystem: Subsystem,
        /// How long it was drifted, by the daemon's clock.
        drifted_for: Duration,
    },
    /// A check could not be made (target gone, unreadable); the daemon goes on.
    CheckFailed {
        /// What went wrong.
        error: String,
    },
    /// The handler panicked; the daemon goes on.
    HandlerFailed {
        /// The panic message.
        message: String,
    },
    /// Copies of the in-memory baseline failed the vote and were repaired.
    BaselineRepaired {
        /// How many of the three copies.
        copies: usize,
    },
    /// No copy of the in-memory baseline can be trusted: checks stop until
    /// the daemon is restarted with a good baseline.
    BaselineLost,
    /// The SHA-256 known-answer self-test failed: no check can be trusted,
    /// so none is made this cycle.
    SelftestFailed {
        /// Which vector failed.
        message: String,
    },
}

/// Counters of what the daemon has done, readable while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Check cycles completed.
    pub checks: AtomicU64,
    /// Reads made, including confirming re-reads.
    pub reads: AtomicU64,
    /// Anomalies declared.
    pub declared: AtomicU64,
    /// Drifts seen once but not confirmed.
    pub transients: AtomicU64,
    /// Recoveries.
    pub recovered: AtomicU64,
    /// Checks that failed.
    pub check_failures: AtomicU64,
    /// Handler panics.
    pub handler_failures: AtomicU64,
    /// Events dropped because nobody read them (the queue holds 1024).
    pub events_dropped: AtomicU64,
    /// Baseline copies repaired by the vote.
    pub baseline_repairs: AtomicU64,
    /// Failed self-tests.
    pub selftest_failures: AtomicU64,
}

/// The confirmation and recovery state of one target's subsystems.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Reads that must agree before a drift is declared.
    confirm: u32,
    /// Declared drifts still in force: the digest they drifted to and since when.
    drifted: BTreeMap<Subsystem, (Digest, Duration)>,
    /// The last read, its memory reused by the next.
    reading: Option<Reading>,
}

/// A tracker's drift state, saved by [`Tracker::checkpoint`].
#[derive(Debug, Clone)]
pub struct Checkpoint(BTreeMap<Subsystem, (Digest, Duration)>);

/// What one confirmed cycle concluded.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Drifts declared this cycle (new, or drifted further).
    pub declared: Vec<Anomaly>,
    /// Seen in the first read only.
    pub transient: Vec<Subsystem>,
    /// Back at baseline, with how long they were drifted.
    pub recovered: Vec<(Subsystem, Duration)>,
    /// Reads made, including confirming re-reads.
    pub reads: u32,
}

impl Tracker {
    /// An empty tracker (nothing declared) that declares a drift once
    /// `confirm` consecutive reads show it (at least 1).
    pub fn new(confirm: u32) -> Tracker {
        Tracker { confirm: confirm.max(1), drifted: BTreeMap::new(), reading: None }
    }

    /// Whether `subsystem` is in a declared drift.
    pub fn is_drifted(&self, subsystem: Subsystem) -> bool {
        self.drifted.contains_key(&subsystem)
    }

    /// Runs one check cycle: a read, and up to `confirm - 1` immediate
    /// re-reads while something looks drifted. A subsystem is declared only if
    /// every read showed it drifted; it is declared again only if it drifts
    /// further (to another digest).
    pub fn cycle<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        checker: &mut Checker,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
    ) -> Result<Outcome, Error> {
        let mut reading = self.reading.take().unwrap_or_else(|| Reading::new(baseline.target.clone()));
        let result = self.confirmed(checker, baseline, clock, fs, subsystems, &mut reading);
        self.reading = Some(reading);
        result
    }

    /// The drift state, to go back to with [`Tracker::rewind`] (a cycle
    /// that must be done again: a baseline copy was repaired meanwhile).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.drifted.clone())
    }

    /// Goes back to a [`Tracker::checkpoint`].
    pub fn rewind(&mut self, to: Checkpoint) {
        self.drifted = to.0;
    }

    /// Forgets a declared drift of `subsystem` without reporting a recovery:
    /// its baseline was re-taken (the process executed a new program).
    pub fn forget(&mut self, subsystem: Subsystem) {
        self.drifted.remove(&subsystem);
    }

    /// The report of the last read, if a read succeeded.
    pub fn last_report(&self) -> Option<&Report> {
        self.reading.as_ref().map(|r| &r.report)
    }

    fn confirmed<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        checker: &mut Checker,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
        reading: &mut Reading,
    ) -> Result<Outcome, Error> {
        checker.check_into(baseline, clock, fs, subsystems, reading)?;
        let mut reads = 1;
        let first: Vec<Subsystem> = reading.anomalies.iter().map(|a| a.subsystem).collect();
        let mut suspects = first.clone();
        for _ in 1..self.confirm {
            if suspects.is_empty() {
                break;
            }
            checker.check_into(baseline, clock, fs, subsystems, reading)?;
            reads += 1;
            suspects.retain(|s| reading.anomalies.iter().any(|a| a.subsystem == *s));
        }
        let now = clock.now();
        let mut out = Outcome {
            reads,
            transient: first.into_iter().filter(|s| !suspects.contains(s)).collect(),
            ..Outcome::default()
        };
        if !suspects.is_empty() {
            self.declare(&reading.anomalies, &suspects, now, &mut out);
        }
        if !self.drifted.is_empty() {
            self.recover(&reading.report, now, &mut out);
        }
        Ok(out)
    }

    /// Declares the confirmed `suspects` among `anomalies` that are not
    /// already declared at the same digest. Out of line, with
    /// [`Tracker::recover`]: a steady cycle runs neither, and its code is
    /// kept off the pages it does run (BENCHMARKS.md).
    #[cold]
    #[inline(never)]
    fn declare(&mut self, anomalies: &[Anomaly], suspects: &[Subsystem], now: Duration, out: &mut Outcome) {
        for a in anomalies.iter().filter(|a| suspects.contains(&a.subsystem)) {
            match self.drifted.get(&a.subsystem) {
                Some((digest, _)) if *digest == a.actual => {}
                Some(&(_, since)) => {
                    self.drifted.insert(a.subsystem, (a.actual, since));
                    out.declared.push(a.clone());
                }
                None => {
                    self.drifted.insert(a.subsystem, (a.actual, now));
                    out.declared.push(a.clone());
                }
            }
        }
    }

    /// Ends the drift of every subsystem the report found unchanged again.
    #[inline(never)]
    fn recover(&mut self, report: &Report, now: Duration, out: &mut Outcome) {
        self.drifted.retain(|sub, (_, since)| {
            if matches!(report.subsystems.get(sub), Some(Status::Unchanged)) {
                out.recovered.push((*sub, now.saturating_sub(*since)));
                false
            } else {
                true
            }
        });
    }
}

/// The handle of a running daemon. Dropping it stops the daemon.
#[derive(Debug)]
pub struct Daemon {
    /// Fault injection requests (seeds) for the baseline copies.
    faults: SyncSender<u64>,
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
    events: Receiver<Event>,
    stats: Arc<Stats>,
}

impl Daemon {
    /// Stops the daemon: ends its sleep at once, lets a check in progress
    /// finish, and returns once the thread has ended.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.raise();
        if let Some(t) = self.thread.take() {
            // The thread catches handler panics itself; a join error could
            // only come from a bug, and there is nobody left to report it to.
            let _ = t.join();
        }
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The events queued so far, without waiting.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        self.events.try_iter()
    }

    /// What the daemon has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Fault injection (tests, self-tests): before its next check the daemon
    /// flips one bit in one copy of its in-memory baseline, chosen by `seed`.
    /// The vote must repair it (a `BaselineRepaired` event), never alarm.
    pub fn inject_baseline_fault(&self, seed: u64) {
        let _ = self.faults.try_send(seed);
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn send(tx: &SyncSender<Event>, stats: &Stats, event: Event) {
    if let Err(TrySendError::Full(_)) = tx.try_send(event) {
        stats.events_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// Starts the monitor thread: every `config.interval` (by `clock`) it checks
/// `fs` against `baseline`, confirms a drift with `config.confirm`
/// consecutive reads, and calls `handler` with the newly declared anomalies.
///
/// A failing check or a panicking handler is reported as an [`Event`] and the
/// daemon goes on. [`Daemon::stop`] (or dropping the handle) ends it at once.
///
/// The daemon guards itself: the baseline is held in three copies, each with
/// its own digest, voted (and repaired) every cycle and again before a drift
/// is declared; the SHA-256 known-answer test runs every cycle.
///
/// ```no_run
/// use std::time::Duration;
/// use fdir::{default_handler, snapshot, start_daemon, Config, Procfs, SystemClock};
/// let fs = Procfs::live();
/// let baseline = snapshot(&SystemClock, &fs)?;
/// let daemon = start_daemon(Config::default(), baseline, fs, SystemClock, default_handler)?;
/// std::thread::sleep(Duration::from_secs(60));
/// daemon.stop();
/// # Ok::<(), fdir::Error>(())
/// ```
pub fn start_daemon<S, C, H>(
    config: Config,
    baseline: Snapshot,
    fs: S,
    clock: C,
    mut handler: H,
) -> Result<Daemon, Error>
where
    S: Source + Send + 'static,
    C: Clock + 'static,
    H: FnMut(&[Anomaly]) -> Severity + Send + 'static,
{
    config.validate()?;
    crate::guard::sha256_self_test_full().map_err(Error::Bug)?;
    for &sub in &config.subsystems {
        if !baseline.subsystems.contains_key(&sub) {
            return Err(Error::NotInBaseline { subsystem: sub });
        }
    }
    let stop = Arc::new(StopSignal::new());
    let stats = Arc::new(Stats::default());
    let (tx, events) = sync_channel(1024);
    let (faults, fault_rx) = sync_channel::<u64>(64);
    let mut baseline =
        Redundant::new(baseline).ok_or_else(|| Error::Bug("the baseline cannot be held in redundant copies".into()))?;
    let (stop2, stats2) = (Arc::clone(&stop), Arc::clone(&stats));
    // The first check is one interval after this call, not after the thread
    // happens to be scheduled.
    let mut next = clock.now() + config.interval;
    let thread = std::thread::Builder::new()
        .name("fdir-monitor".into())
        .spawn(move || {
            let mut checker = Checker::with_code_budget(config.code_budget);
            let mut tracker = Tracker::new(config.confirm);
            loop {
                if clock.sleep_until(next, &stop2) {
                    break;
                }
                let now = clock.now();
                next += config.interval;
                if next <= now {
                    // Fell behind (a suspended machine, a slow check): skip the
                    // missed ticks rather than run them back to back.
                    next = now + config.interval;
                }
                if let Err(message) = sha256_self_test() {
                    stats2.selftest_failures.fetch_add(1, Ordering::Relaxed);
                    send(&tx, &stats2, Event::SelftestFailed { message });
                    continue;
                }
                for seed in fault_rx.try_iter() {
                    let copy = usize::try_from((seed >> 8) % 3).unwrap_or(0);
                    if let Some(c) = baseline.copy_mut(copy) {
                        c.flip_bit(seed);
                    }
                }
                let vote = baseline.vote();
                if vote.lost {
                    send(&tx, &stats2, Event::BaselineLost);
                    continue;
                }
                if vote.repairs() > 0 {
                    let n = u64::try_from(vote.repairs()).unwrap_or(u64::MAX);
                    stats2.baseline_repairs.fetch_add(n, Ordering::Relaxed);
                    send(&tx, &stats2, Event::BaselineRepaired { copies: vote.repairs() });
                }
                let before = tracker.checkpoint();
                let mut outcome = tracker.cycle(&mut checker, baseline.get(), &clock, &fs, &config.subsystems);
                // A copy corrupted since the vote must not raise a false alarm.
                if outcome.as_ref().is_ok_and(|o| !o.declared.is_empty()) {
                    let again = baseline.vote();
                    if again.lost {
                        send(&tx, &stats2, Event::BaselineLost);
                        continue;
                    }
                    if again.repairs() > 0 {
                        send(&tx, &stats2, Event::BaselineRepaired { copies: again.repairs() });
                        tracker.rewind(before);
                        outcome = tracker.cycle(&mut checker, baseline.get(), &clock, &fs, &config.subsystems);
                    }
                }
                stats2.checks.fetch_add(1, Ordering::Relaxed);
                let outcome = match outcome {
                    Ok(o) => {
                        stats2.reads.fetch_add(u64::from(o.reads), Ordering::Relaxed);
                        o
                    }
                    Err(e) => {
                        stats2.check_failures.fetch_add(1, Ordering::Relaxed);
                        send(&tx, &stats2, Event::CheckFailed { error: e.to_string() });
                        continue;
                    }
                };
                if !outcome.transient.is_empty() {
                    stats2.transients.fetch_add(1, Ordering::Relaxed);
                    send(&tx, &stats2, Event::Transient { subsystems: outcome.transient });
                }
                if !outcome.declared.is_empty() {
                    let n = u64::try_from(outcome.declared.len()).unwrap_or(u64::MAX);
                    stats2.declared.fetch_add(n, Ordering::Relaxed);
                    let severity = match catch_unwind(AssertUnwindSafe(|| handler(&outcome.declared))) {
                        Ok(s) => Some(s),
                        Err(p) => {
                            stats2.handler_failures.fetch_add(1, Ordering::Relaxed);
                            send(&tx, &stats2, Event::HandlerFailed { message: panic_message(p.as_ref()) });
                            None
                        }
                    };
                    send(&tx, &stats2, Event::Declared { anomalies: outcome.declared, severity });
                }
                for (subsystem, drifted_for) in outcome.recovered {
                    stats2.recovered.fetch_add(1, Ordering::Relaxed);
                    send(&tx, &stats2, Event::Recovered { subsystem, drifted_for });
                }
                if let Some(report) = tracker.last_report() {
                    send(&tx, &stats2, Event::Checked(report.clone()));
                }
            }
        })
        .map_err(Error::Spawn)?;
    Ok(Daemon { faults, stop, thread: Some(thread), events, stats })
}
