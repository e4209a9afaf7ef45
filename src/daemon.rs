//! `start_daemon`, the library's front-end of the monitoring runtime: one
//! baseline checked on a thread of its own, on the runtime's schedule
//! (`runtime::next_tick`), each tick the check both front-ends share
//! (`confirm::guarded_check`: voted copies, confirmation, recovery); what
//! it finds becomes [`Event`]s and [`Stats`], a declared drift goes to the
//! handler, and neither a failing check nor a panicking handler ends it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::StopSignal;
use crate::confirm::{Guard, Guarded, Parts, Tracker, guarded_check};
use crate::guard::{Redundant, Vote, sha256_self_test};
use crate::runtime::next_tick;
use crate::snapshot::Checker;
use crate::{Anomaly, Clock, Config, Error, Report, Severity, Snapshot, Source, Subsystem};

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

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// The daemon's one target: its source, its baseline in voted copies, its
/// tracker and checker.
struct One<S> {
    fs: S,
    baseline: Redundant<Snapshot>,
    tracker: Tracker,
    checker: Checker,
}

impl<S: Source> Guarded for One<S> {
    type Source = S;

    fn parts(&mut self) -> Parts<'_, S> {
        Parts { fs: &self.fs, baseline: &mut self.baseline, tracker: &mut self.tracker, checker: &mut self.checker }
    }
}

/// Where the daemon's events go: its queue, and its counters.
struct Says {
    tx: SyncSender<Event>,
    stats: Arc<Stats>,
}

impl Says {
    fn send(&self, event: Event) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(event) {
            self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl<S> Guard<One<S>> for &Says {
    fn voted(&mut self, _: &One<S>, vote: Vote) -> bool {
        if vote.lost {
            self.send(Event::BaselineLost);
            return false;
        }
        if vote.repairs() > 0 {
            Says::count(&self.stats.baseline_repairs, vote.repairs());
            self.send(Event::BaselineRepaired { copies: vote.repairs() });
        }
        true
    }
}

/// One tick of the daemon: the self-test, the faults asked for, the
/// guarded check of its target ([`guarded_check`]), and its outcome as
/// events, the handler called with what is declared.
fn tick<S, C, H>(
    one: &mut One<S>,
    clock: &C,
    subsystems: &[Subsystem],
    says: &Says,
    faults: &Receiver<u64>,
    handler: &mut H,
) where
    S: Source,
    C: Clock + ?Sized,
    H: FnMut(&[Anomaly]) -> Severity,
{
    let stats = &says.stats;
    if let Err(message) = sha256_self_test() {
        stats.selftest_failures.fetch_add(1, Ordering::Relaxed);
        says.send(Event::SelftestFailed { message });
        return;
    }
    for seed in faults.try_iter() {
        let copy = usize::try_from((seed >> 8) % 3).unwrap_or(0);
        let _ = one.baseline.flip_bit(copy, seed, |s, seed| s.flip_bit(seed));
    }
    let Some(outcome) = guarded_check(one, clock, subsystems, &mut &*says) else { return };
    stats.checks.fetch_add(1, Ordering::Relaxed);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            stats.check_failures.fetch_add(1, Ordering::Relaxed);
            says.send(Event::CheckFailed { error: e.to_string() });
            return;
        }
    };
    stats.reads.fetch_add(u64::from(outcome.reads), Ordering::Relaxed);
    if !outcome.transient.is_empty() {
        stats.transients.fetch_add(1, Ordering::Relaxed);
        says.send(Event::Transient { subsystems: outcome.transient });
    }
    if !outcome.declared.is_empty() {
        Says::count(&stats.declared, outcome.declared.len());
        let severity = match catch_unwind(AssertUnwindSafe(|| handler(&outcome.declared))) {
            Ok(s) => Some(s),
            Err(p) => {
                stats.handler_failures.fetch_add(1, Ordering::Relaxed);
                says.send(Event::HandlerFailed { message: panic_message(p.as_ref()) });
                None
            }
        };
        says.send(Event::Declared { anomalies: outcome.declared, severity });
    }
    for (subsystem, drifted_for) in outcome.recovered {
        stats.recovered.fetch_add(1, Ordering::Relaxed);
        says.send(Event::Recovered { subsystem, drifted_for });
    }
    if let Some(report) = one.tracker.last_report() {
        says.send(Event::Checked(report.clone()));
    }
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
    let baseline =
        Redundant::new(baseline).ok_or_else(|| Error::Bug("the baseline cannot be held in redundant copies".into()))?;
    let (stop2, stats2) = (Arc::clone(&stop), Arc::clone(&stats));
    // The first check is one interval after this call, not after the thread
    // happens to be scheduled.
    let mut next = clock.now() + config.interval;
    let thread = std::thread::Builder::new()
        .name("fdir-monitor".into())
        .spawn(move || {
            let mut one = One {
                fs,
                baseline,
                tracker: Tracker::new(config.confirm),
                checker: Checker::with_code_budget(config.code_budget),
            };
            let says = Says { tx, stats: stats2 };
            loop {
                if clock.sleep_until(next, &stop2) {
                    break;
                }
                next = next_tick(next, config.interval, clock.now());
                tick(&mut one, &clock, &config.subsystems, &says, &fault_rx, &mut handler);
            }
        })
        .map_err(Error::Spawn)?;
    Ok(Daemon { faults, stop, thread: Some(thread), events, stats })
}
