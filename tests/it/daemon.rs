//! The daemon: driven by the manual clock over a source the test swaps, and by
//! the system clock against a real child moved to another cgroup.

use crate::common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fdir::{
    Config, Error, Event, ManualClock, Procfs, Severity, Source, Subsystem, SystemClock, Target, default_handler,
    snapshot, start_daemon,
};

const MAPS: &str = "55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/app\n7ffc9e9d1000-7ffc9e9f2000 rw-p 00000000 00:00 0 [stack]\n";
const STATUS: &str = "Name:\tapp\nUid:\t0\t0\t0\t0\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";
const CGROUP: &str = "0::/app\n";

/// A source whose contents the test replaces while the daemon runs; a queue of
/// one-shot contents simulates read glitches.
#[derive(Clone)]
struct Swappable {
    now: Arc<Mutex<Procfs>>,
    glitches: Arc<Mutex<Vec<Procfs>>>,
}

impl Swappable {
    fn new(fs: Procfs) -> Swappable {
        Swappable { now: Arc::new(Mutex::new(fs)), glitches: Arc::new(Mutex::new(Vec::new())) }
    }
    fn set(&self, fs: Procfs) {
        *self.now.lock().unwrap() = fs;
    }
    /// The next whole observation (a maps read) sees `fs`, once.
    fn glitch_once(&self, fs: Procfs) {
        self.glitches.lock().unwrap().push(fs);
    }
}

impl Source for Swappable {
    fn target(&self) -> Result<Target, Error> {
        self.now.lock().unwrap().target()
    }
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        if rel == "maps" {
            let mut g = self.glitches.lock().unwrap();
            if !g.is_empty() {
                let fs = g.remove(0);
                return fs.read(rel, buf);
            }
        }
        self.now.lock().unwrap().read(rel, buf)
    }
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        self.now.lock().unwrap().threads(out)
    }
    fn alive(&self) -> bool {
        true
    }
    fn path_of(&self, rel: &str) -> PathBuf {
        self.now.lock().unwrap().path_of(rel)
    }
}

const INTERVAL: Duration = Duration::from_secs(30);

/// A daemon on the manual clock over a [`Swappable`] source that starts as
/// the baseline (`MAPS`, `STATUS`, `CGROUP`): the clock, the source (to
/// change) and the daemon.
fn manual_daemon<H>(config: Config, handler: H) -> (ManualClock, Swappable, fdir::Daemon)
where
    H: FnMut(&[fdir::Anomaly]) -> Severity + Send + 'static,
{
    let clock = ManualClock::new();
    let src = Swappable::new(Procfs::mock(MAPS, STATUS, CGROUP));
    let baseline = snapshot(&clock, &src).unwrap();
    let daemon = start_daemon(config, baseline, src.clone(), clock.clone(), handler).unwrap();
    (clock, src, daemon)
}

/// How long a test waits for an event before it calls it a hang: generous,
/// since a loaded machine is slow, not wrong. No test asserts speed.
const DEADLINE: Duration = Duration::from_secs(120);

/// Advances the clock by one interval and collects events until the cycle's
/// `Checked` (or a failure) arrives.
fn tick(clock: &ManualClock, daemon: &fdir::Daemon) -> Vec<Event> {
    clock.advance(INTERVAL);
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if let Some(e) = daemon.next_event(Duration::from_millis(50)) {
            let end = matches!(e, Event::Checked(_) | Event::CheckFailed { .. });
            events.push(e);
            if end {
                return events;
            }
        }
    }
    panic!("no check within {DEADLINE:?} of a tick; got {events:?}")
}

fn declared(events: &[Event]) -> Vec<(Vec<Subsystem>, Option<Severity>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Declared { anomalies, severity } => {
                Some((anomalies.iter().map(|a| a.subsystem).collect(), *severity))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn manual_clock_drift_declared_once_then_recovered() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls2 = Arc::clone(&calls);
    let (clock, src, daemon) = manual_daemon(Config::default().interval(INTERVAL), move |a: &[fdir::Anomaly]| {
        calls2.lock().unwrap().push(a.len());
        default_handler(a)
    });

    // Nothing happens before the interval has passed.
    assert!(daemon.next_event(Duration::from_millis(100)).is_none());
    assert_eq!(declared(&tick(&clock, &daemon)), []);

    // Seccomp drifts: declared once, graded Log.
    src.set(Procfs::mock(MAPS, &STATUS.replace("Seccomp:\t0", "Seccomp:\t2"), CGROUP));
    let ev = tick(&clock, &daemon);
    assert_eq!(declared(&ev), [(vec![Subsystem::Seccomp], Some(Severity::Log))]);
    let Event::Declared { anomalies, .. } = ev.iter().find(|e| matches!(e, Event::Declared { .. })).unwrap() else {
        unreachable!()
    };
    assert_eq!(anomalies[0].changes[0].to_string(), "Seccomp 0 -> 2 (filter mode)");
    // Persisting: not declared again.
    assert_eq!(declared(&tick(&clock, &daemon)), []);
    // Two more drift: declared together, graded Degrade... only the new ones are
    // passed, so the seed handler sees 2 anomalies.
    src.set(Procfs::mock(
        &MAPS.replace("r-xp", "rwxp"),
        &STATUS.replace("Seccomp:\t0", "Seccomp:\t2"),
        "0::/elsewhere\n",
    ));
    assert_eq!(
        declared(&tick(&clock, &daemon)),
        [(vec![Subsystem::MemoryMaps, Subsystem::Cgroups], Some(Severity::Degrade))]
    );
    // Back to baseline: three recoveries with the time they were drifted.
    src.set(Procfs::mock(MAPS, STATUS, CGROUP));
    let ev = tick(&clock, &daemon);
    let mut recovered: Vec<(Subsystem, Duration)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Recovered { subsystem, drifted_for } => Some((*subsystem, *drifted_for)),
            _ => None,
        })
        .collect();
    recovered.sort();
    assert_eq!(
        recovered,
        [(Subsystem::MemoryMaps, INTERVAL), (Subsystem::Seccomp, 3 * INTERVAL), (Subsystem::Cgroups, INTERVAL)]
    );
    assert_eq!(*calls.lock().unwrap(), [1, 2]);
    let stats = daemon.stats();
    assert_eq!(stats.checks.load(std::sync::atomic::Ordering::Relaxed), 5);
    daemon.stop();
}

#[test]
fn a_read_glitch_is_transient_never_declared() {
    let (clock, src, daemon) = manual_daemon(Config::default().interval(INTERVAL), |_: &[fdir::Anomaly]| -> Severity {
        panic!("the handler must not be called for a glitch")
    });
    src.glitch_once(Procfs::mock(&MAPS.replace("r-xp", "rwxp"), STATUS, CGROUP));
    let ev = tick(&clock, &daemon);
    assert!(ev.contains(&Event::Transient { subsystems: vec![Subsystem::MemoryMaps] }), "{ev:?}");
    assert_eq!(declared(&ev), []);
    // With confirm 1 the same glitch would have been declared.
    let (clock1, src, d1) = manual_daemon(Config::default().interval(INTERVAL).confirm(1), default_handler);
    src.glitch_once(Procfs::mock(&MAPS.replace("r-xp", "rwxp"), STATUS, CGROUP));
    assert_eq!(declared(&tick(&clock1, &d1)), [(vec![Subsystem::MemoryMaps], Some(Severity::Log))]);
    d1.stop();
    daemon.stop();
}

#[test]
fn a_panicking_handler_is_reported_and_the_daemon_goes_on() {
    let (clock, src, daemon) = manual_daemon(Config::default().interval(INTERVAL), |_: &[fdir::Anomaly]| -> Severity {
        panic!("handler bug")
    });
    src.set(Procfs::mock(MAPS, &STATUS.replace("NoNewPrivs:\t0", "NoNewPrivs:\t1"), CGROUP));
    let ev = tick(&clock, &daemon);
    assert!(ev.contains(&Event::HandlerFailed { message: "handler bug".into() }), "{ev:?}");
    assert_eq!(declared(&ev), [(vec![Subsystem::Seccomp], None)]);
    // Still running: the next cycle happens, and a recovery is seen.
    src.set(Procfs::mock(MAPS, STATUS, CGROUP));
    let ev = tick(&clock, &daemon);
    assert!(ev.iter().any(|e| matches!(e, Event::Recovered { subsystem: Subsystem::Seccomp, .. })), "{ev:?}");
    assert!(daemon.is_running());
    daemon.stop();
}

#[test]
fn a_failing_check_is_reported_and_the_daemon_goes_on() {
    let (clock, src, daemon) = manual_daemon(Config::default().interval(INTERVAL), default_handler);
    src.set(Procfs::mock("not a maps line", STATUS, CGROUP));
    let ev = tick(&clock, &daemon);
    assert!(matches!(ev.last(), Some(Event::CheckFailed { error }) if error.contains("mock/maps")), "{ev:?}");
    src.set(Procfs::mock(MAPS, STATUS, CGROUP));
    assert!(matches!(tick(&clock, &daemon).last(), Some(Event::Checked(_))));
    daemon.stop();
}

/// Runs `f` on a thread; whether it returned before [`DEADLINE`].
fn returns(f: impl FnOnce() + Send + 'static) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(DEADLINE).is_ok()
}

#[test]
fn stop_ends_a_long_sleep_at_once() {
    // Functional, not a benchmark: the daemon sleeps for a day between
    // checks, so a stop that waited for the interval would never return
    // within the (generous) deadline, however busy the machine.
    let day = Config::default().interval(Duration::from_secs(86_400));
    let src = Procfs::mock(MAPS, STATUS, CGROUP);
    let baseline = snapshot(&SystemClock, &src).unwrap();
    let daemon = start_daemon(day.clone(), baseline, src, SystemClock, default_handler).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(returns(move || daemon.stop()), "stop waited for the interval");

    // Dropping the handle stops it too.
    let src = Procfs::mock(MAPS, STATUS, CGROUP);
    let baseline = snapshot(&SystemClock, &src).unwrap();
    let daemon = start_daemon(day, baseline, src, SystemClock, default_handler).unwrap();
    assert!(returns(move || drop(daemon)), "dropping the handle waited for the interval");
}

#[test]
fn invalid_configs_are_refused() {
    let src = Procfs::mock(MAPS, STATUS, CGROUP);
    let baseline = snapshot(&SystemClock, &src).unwrap();
    for (config, what) in [
        (Config::default().interval(Duration::ZERO), "interval"),
        (Config::default().confirm(0), "confirm"),
        (Config::default().subsystems([]), "no subsystems"),
        (Config::default().subsystems([Subsystem::Credentials]), "credentials"),
    ] {
        let src = Procfs::mock(MAPS, STATUS, CGROUP);
        let err = start_daemon(config, baseline.clone(), src, SystemClock, default_handler).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn system_clock_daemon_detects_a_live_cgroup_move() {
    if !common::is_root() {
        common::skip("system_clock_daemon_detects_a_live_cgroup_move", "needs root to create a cgroup");
        return;
    }
    let Some(h) = common::hierarchy(None) else {
        common::skip("system_clock_daemon_detects_a_live_cgroup_move", "no cgroup hierarchy mounted");
        return;
    };
    let mut cg = match common::ScratchCgroup::new(&h, "daemon") {
        Ok(cg) => cg,
        Err(e) => return common::skip("system_clock_daemon_detects_a_live_cgroup_move", &e),
    };
    let t = common::Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot(&SystemClock, &fs).unwrap();
    let config = Config::default().interval(Duration::from_millis(50));
    let daemon = start_daemon(config, baseline, fs, SystemClock, default_handler).unwrap();
    cg.enter(t.pid).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut seen = None;
    while Instant::now() < deadline && seen.is_none() {
        if let Some(Event::Declared { anomalies, severity }) = daemon.next_event(Duration::from_millis(100)) {
            seen = Some((anomalies, severity));
        }
    }
    let (anomalies, severity) = seen.expect("the move was declared");
    assert_eq!(severity, Some(Severity::Log));
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0].subsystem, Subsystem::Cgroups);
    cg.leave(t.pid);
    // And back: recovered.
    let deadline = Instant::now() + DEADLINE;
    let mut recovered = false;
    while Instant::now() < deadline && !recovered {
        recovered = matches!(
            daemon.next_event(Duration::from_millis(100)),
            Some(Event::Recovered { subsystem: Subsystem::Cgroups, .. })
        );
    }
    assert!(recovered, "moving back is a recovery");
    daemon.stop();
}

#[test]
fn corrupted_baseline_copies_are_repaired_never_alarmed() {
    let (clock, src, daemon) = manual_daemon(Config::default().interval(INTERVAL), |_: &[fdir::Anomaly]| -> Severity {
        panic!("a corrupted baseline copy must not reach the handler")
    });
    let mut repaired = 0;
    for seed in 0..200u64 {
        daemon.inject_baseline_fault(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let ev = tick(&clock, &daemon);
        assert_eq!(declared(&ev), [], "seed {seed}: {ev:?}");
        assert!(!ev.contains(&Event::BaselineLost), "seed {seed}");
        repaired += ev.iter().filter(|e| matches!(e, Event::BaselineRepaired { copies: 1 })).count();
    }
    assert_eq!(repaired, 200, "every fault repaired");
    assert_eq!(daemon.stats().baseline_repairs.load(std::sync::atomic::Ordering::Relaxed), 200);
    // A real drift is still declared afterwards (the handler here panics on
    // purpose: that is reported, and the severity is None).
    src.set(Procfs::mock(MAPS, &STATUS.replace("Seccomp:\t0", "Seccomp:\t2"), CGROUP));
    assert_eq!(declared(&tick(&clock, &daemon)), [(vec![Subsystem::Seccomp], None)]);
    daemon.stop();
}
