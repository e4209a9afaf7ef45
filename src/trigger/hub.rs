//! The hub: owns the trigger sources, waits on all of them on a thread of
//! its own, and gathers what they ask into one set of re-checks due
//! ([`Due`]) that the watch loop takes when it is woken.
//!
//! - **Coalescing.** Each object (a pid of each kind, a cgroup, the mount
//!   tables, the node) is in the set at most once until the watch takes it:
//!   a thousand `mprotect`s of one process before the watch wakes are one
//!   re-check. A set grown past [`MAX_DUE`] objects becomes one full check.
//! - **Interest.** Notices about processes the watch does not cover are
//!   dropped here (under `--all` every process is of interest), so an
//!   unrelated process's forks never wake the watch.
//! - **The storm bound.** The checks triggers cause may use at most
//!   [`SHARE`] of one core, measured: a token bucket ([`Budget`]) is charged
//!   the time each triggered check took and refills at `SHARE` of the time
//!   that passes, up to [`BURST`]. What exceeds it waits in the set for the
//!   budget (deferred, never dropped); the timer runs unchanged meanwhile.
//! - **Lost notices.** Each source counts what it lost; a loss puts
//!   [`Recheck::All`] in the set, and a full check is taken at once, before
//!   the budget is asked (a dropped notice costs latency, never a miss).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, epoll, eventfd};

use super::{Kind, Recheck, Source, Unavailable};

/// The share of one core that triggered checks may use.
pub const SHARE: f64 = 0.05;
/// The most check time the budget holds when idle.
pub const BURST: Duration = Duration::from_millis(100);
/// A set of re-checks due larger than this becomes one full check.
pub const MAX_DUE: usize = 4096;

/// Which sources to start (`--triggers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The sources asked for.
    pub kinds: [bool; 4],
    /// `auto`: every source that can run here (each one that cannot is
    /// said once, and the others run).
    pub auto: bool,
}

impl Choice {
    /// `off`: no triggers, the timer alone.
    pub const OFF: Choice = Choice { kinds: [false; 4], auto: false };
    /// `auto`: every source that can run here.
    pub const AUTO: Choice = Choice { kinds: [true; 4], auto: true };

    /// Whether `kind` is asked for.
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.get(index(kind)).copied().unwrap_or(false)
    }

    /// Whether no source is asked for.
    pub fn is_off(&self) -> bool {
        !self.kinds.iter().any(|&k| k)
    }
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => return Ok(Choice::AUTO),
            "off" | "none" => return Ok(Choice::OFF),
            _ => {}
        }
        let mut c = Choice::OFF;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let kind = Kind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
                format!("unknown trigger source {name:?} (auto, off, or a list of connector, mountinfo, inotify, ebpf)")
            })?;
            if let Some(k) = c.kinds.get_mut(index(kind)) {
                *k = true;
            }
        }
        if c.is_off() {
            return Err("no trigger source named (auto, off, or a list of connector, mountinfo, inotify, ebpf)".into());
        }
        Ok(c)
    }
}

/// The position of `kind` in [`Kind::ALL`].
fn index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0)
}

/// The re-checks due: each object at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// A full check (a source lost notices, or the set grew too large).
    pub all: bool,
    /// Processes whose isolation a call may have changed.
    pub processes: BTreeSet<u32>,
    /// New processes (under `--all`: to baseline).
    pub new: BTreeSet<u32>,
    /// Processes that ran `execve`.
    pub exec: BTreeSet<u32>,
    /// Processes that exited.
    pub exit: BTreeSet<u32>,
    /// Cgroup directories whose limit files were written.
    pub cgroups: BTreeSet<PathBuf>,
    /// A mount table changed.
    pub mounts: bool,
    /// The node's own state.
    pub node: bool,
}

impl Due {
    /// Adds one re-check; a set grown past [`MAX_DUE`] becomes a full check.
    pub fn add(&mut self, r: Recheck) {
        if self.all {
            return;
        }
        match r {
            Recheck::Process(p) => {
                self.processes.insert(p);
            }
            Recheck::New(p) => {
                self.new.insert(p);
            }
            Recheck::Exec(p) => {
                self.exec.insert(p);
            }
            Recheck::Exit(p) => {
                self.exit.insert(p);
            }
            Recheck::Cgroup(dir) => {
                self.cgroups.insert(dir);
            }
            Recheck::Mounts => self.mounts = true,
            Recheck::Node => self.node = true,
            Recheck::All => self.all = true,
        }
        if self.all || self.len() > MAX_DUE {
            *self = Due { all: true, ..Due::default() };
        }
    }

    /// How many objects are due.
    pub fn len(&self) -> usize {
        usize::from(self.all)
            + self.processes.len()
            + self.new.len()
            + self.exec.len()
            + self.exit.len()
            + self.cgroups.len()
            + usize::from(self.mounts)
            + usize::from(self.node)
    }

    /// Whether nothing is due.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which processes the watch covers: notices about others are dropped.
#[derive(Debug, Clone, Default)]
struct Interest {
    /// `--all` (or a workload selector): every process, new ones included.
    every: bool,
    pids: BTreeSet<u32>,
}

impl Interest {
    fn wants(&self, r: &Recheck) -> bool {
        match r {
            Recheck::New(_) => self.every,
            Recheck::Process(p) | Recheck::Exec(p) | Recheck::Exit(p) => self.every || self.pids.contains(p),
            _ => true,
        }
    }
}

/// The counters of the sources, for the metrics.
#[derive(Debug, Default)]
pub struct Stats {
    up: [AtomicBool; 4],
    events: [AtomicU64; 4],
    lost: [AtomicU64; 4],
    checks: AtomicU64,
}

impl Stats {
    fn add(counters: &[AtomicU64; 4], kind: Kind, n: u64) {
        if let Some(c) = counters.get(index(kind)) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Notices read from `kind`.
    pub fn events(&self, kind: Kind) -> u64 {
        self.events.get(index(kind)).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Notices `kind` lost.
    pub fn lost(&self, kind: Kind) -> u64 {
        self.lost.get(index(kind)).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one check a trigger caused.
    pub fn triggered_check(&self) {
        self.checks.fetch_add(1, Ordering::Relaxed);
    }

    /// The trigger metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let per_source = |out: &mut String, name: &str, kind: &str, help: &str, value: &dyn Fn(usize) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, k) in Kind::ALL.iter().enumerate() {
                let _ = writeln!(out, "{name}{{source=\"{k}\"}} {}", value(i));
            }
        };
        let load = |c: &[AtomicU64; 4], i: usize| c.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
        per_source(
            out,
            "fdir_trigger_source_up",
            "gauge",
            "1 while the trigger source runs, 0 when off or unavailable.",
            &|i| self.up.get(i).map_or(0, |u| u64::from(u.load(Ordering::Relaxed))),
        );
        per_source(out, "fdir_trigger_events_total", "counter", "Notices read from the trigger source.", &|i| {
            load(&self.events, i)
        });
        per_source(
            out,
            "fdir_trigger_lost_total",
            "counter",
            "Notices the trigger source lost (each answered by a full check).",
            &|i| load(&self.lost, i),
        );
        let _ = writeln!(
            out,
            "# HELP fdir_triggered_checks_total Re-checks made at once on a trigger, between the timer's.\n# TYPE fdir_triggered_checks_total counter\nfdir_triggered_checks_total {}",
            self.checks.load(Ordering::Relaxed)
        );
    }
}

/// The token bucket on the time triggered checks take ([`SHARE`], [`BURST`]).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Check time available, seconds (negative: owed).
    tokens: f64,
    last: Instant,
    share: f64,
    burst: f64,
}

impl Budget {
    /// A full bucket at `now`.
    pub fn new(now: Instant, share: f64, burst: Duration) -> Budget {
        Budget { tokens: burst.as_secs_f64(), last: now, share, burst: burst.as_secs_f64() }
    }

    fn refill(&mut self, now: Instant) {
        let passed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + passed * self.share).min(self.burst);
        self.last = now;
    }

    /// `None` when a triggered check may run at `now`; else when it may.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens > 0.0 {
            return None;
        }
        let wait = Duration::try_from_secs_f64(-self.tokens / self.share).unwrap_or(Duration::from_secs(1));
        Some(now + wait.max(Duration::from_millis(1)))
    }

    /// Charges the time a triggered check took.
    pub fn spend(&mut self, now: Instant, took: Duration) {
        self.refill(now);
        self.tokens -= took.as_secs_f64();
    }
}

/// What the watch gets when it asks for the re-checks due.
#[derive(Debug)]
pub enum Take {
    /// Nothing is due.
    Nothing,
    /// Check these now.
    Now(Due),
    /// Something is due, but the budget is spent until then.
    Later(Instant),
}

#[derive(Debug, Default)]
struct Inner {
    due: Due,
    interest: Interest,
    /// Pids to follow, for the thread to hand to the sources.
    follow: Option<Vec<u32>>,
    /// Losses not yet reported, by source.
    losses: BTreeMap<Kind, u64>,
    /// Re-checks to put in the set later (new processes, once settled),
    /// in the order they fall due.
    later: std::collections::VecDeque<(Instant, Recheck)>,
    stop: bool,
}

/// The running hub.
#[derive(Debug)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    stats: Arc<Stats>,
    control: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    running: Vec<Kind>,
    unavailable: Vec<Unavailable>,
    budget: Budget,
}

/// Opens the sources `choice` asks for; each that cannot run says why.
/// eBPF is opened by the caller (it is given to [`Hub::start`] as any
/// other source).
pub fn open(choice: &Choice) -> (Vec<Box<dyn Source>>, Vec<Unavailable>) {
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    let mut unavailable = Vec::new();
    let mut put = |r: Result<Box<dyn Source>, Unavailable>| match r {
        Ok(s) => sources.push(s),
        Err(u) => unavailable.push(u),
    };
    if choice.wants(Kind::Connector) {
        put(super::connector::Connector::open().map(|s| Box::new(s) as Box<dyn Source>));
    }
    if choice.wants(Kind::Mountinfo) {
        put(super::mountinfo::Mountinfo::open().map(|s| Box::new(s) as Box<dyn Source>));
    }
    if choice.wants(Kind::Inotify) {
        put(super::inotify::Inotify::open().map(|s| Box::new(s) as Box<dyn Source>));
    }
    if choice.wants(Kind::Ebpf) {
        put(super::ebpf::Ebpf::open(super::ebpf::DEFAULT_RING_BYTES).map(|s| {
            for skipped in s.skipped() {
                tracing::info!("ebpf: {} not hooked: {}", skipped.hook, skipped.reason);
            }
            Box::new(s) as Box<dyn Source>
        }));
    }
    (sources, unavailable)
}

/// The eventfd value that asks the thread to look at [`Inner`].
const CONTROL: u64 = u64::MAX;

impl Hub {
    /// Starts the thread that waits on `sources`; `wake` is called (from
    /// that thread) whenever re-checks become due. `every`: the watch covers
    /// every process (new ones are of interest); `pids`: the processes
    /// watched now, followed before this returns (later changes are followed
    /// on the hub's thread, [`Hub::follow`]).
    pub fn start(
        mut sources: Vec<Box<dyn Source>>,
        unavailable: Vec<Unavailable>,
        every: bool,
        pids: &[u32],
        wake: impl Fn() + Send + 'static,
    ) -> Result<Hub, crate::Error> {
        for s in &mut sources {
            s.follow(pids);
        }
        let stats = Arc::new(Stats::default());
        let running: Vec<Kind> = sources.iter().map(|s| s.kind()).collect();
        for k in &running {
            if let Some(u) = stats.up.get(index(*k)) {
                u.store(true, Ordering::Relaxed);
            }
        }
        let inner = Arc::new(Mutex::new(Inner {
            interest: Interest { every, pids: pids.iter().copied().collect() },
            ..Inner::default()
        }));
        let control = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| crate::Error::Bug(format!("cannot create the trigger hub's eventfd: {e}")))?,
        );
        let thread = if sources.is_empty() {
            None
        } else {
            let (inner, stats, control) = (Arc::clone(&inner), Arc::clone(&stats), Arc::clone(&control));
            let spawned = std::thread::Builder::new()
                .name("fdir-triggers".into())
                .spawn(move || run(sources, &inner, &stats, &control, &wake));
            match spawned {
                Ok(t) => Some(t),
                Err(e) => return Err(crate::Error::Bug(format!("cannot start the trigger thread: {e}"))),
            }
        };
        Ok(Hub {
            inner,
            stats,
            control,
            thread,
            running,
            unavailable,
            budget: Budget::new(Instant::now(), SHARE, BURST),
        })
    }

    /// The sources running.
    pub fn running(&self) -> &[Kind] {
        &self.running
    }

    /// The sources asked for that cannot run, with why.
    pub fn unavailable(&self) -> &[Unavailable] {
        &self.unavailable
    }

    /// The counters, for the metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    fn poke(&self) {
        let _ = rustix::io::write(&*self.control, &1u64.to_ne_bytes());
    }

    /// The processes the watch covers now: notices about them are kept, and
    /// the sources that follow objects of theirs re-aim (on the hub's
    /// thread).
    pub fn follow(&self, pids: Vec<u32>) {
        if let Ok(mut i) = self.inner.lock() {
            i.interest.pids = pids.iter().copied().collect();
            i.follow = Some(pids);
        }
        self.poke();
    }

    /// Puts `r` in the set at `at` (a new process, once it has settled):
    /// the hub's thread wakes the watch then. At most [`MAX_DUE`] wait; more
    /// are left to the timer's discovery.
    pub fn later(&self, at: Instant, r: Recheck) {
        if let Ok(mut i) = self.inner.lock() {
            if i.later.len() >= MAX_DUE {
                return;
            }
            i.later.push_back((at, r));
        }
        self.poke();
    }

    /// The re-checks due, if the budget allows them now (a full check asked
    /// for by a loss is always allowed), and the losses since the last call,
    /// by source: taken together, so a loss is never reported without the
    /// full check that answers it.
    pub fn take(&mut self, now: Instant) -> (BTreeMap<Kind, u64>, Take) {
        let Ok(mut i) = self.inner.lock() else { return (BTreeMap::new(), Take::Nothing) };
        let losses = std::mem::take(&mut i.losses);
        if i.due.is_empty() {
            return (losses, Take::Nothing);
        }
        if !i.due.all
            && let Some(at) = self.budget.ready_at(now)
        {
            return (losses, Take::Later(at));
        }
        (losses, Take::Now(std::mem::take(&mut i.due)))
    }

    /// Charges a triggered check's time to the budget.
    pub fn spent(&mut self, took: Duration) {
        self.stats.triggered_check();
        self.budget.spend(Instant::now(), took);
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Ok(mut i) = self.inner.lock() {
            i.stop = true;
        }
        self.poke();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The hub's thread: waits on every source and on the control eventfd.
fn run(mut sources: Vec<Box<dyn Source>>, inner: &Mutex<Inner>, stats: &Stats, control: &OwnedFd, wake: &dyn Fn()) {
    let epoll = match epoll::create(epoll::CreateFlags::CLOEXEC) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("triggers off: cannot create an epoll set: {e}");
            return;
        }
    };
    let flags = epoll::EventFlags::IN | epoll::EventFlags::PRI | epoll::EventFlags::ERR;
    for (i, s) in sources.iter().enumerate() {
        let data = epoll::EventData::new_u64(u64::try_from(i).unwrap_or(0));
        if let Err(e) = epoll::add(&epoll, s.as_fd(), data, flags) {
            tracing::warn!("{} triggers off: cannot wait on it: {e}", s.kind());
        }
    }
    if let Err(e) = epoll::add(&epoll, control.as_fd(), epoll::EventData::new_u64(CONTROL), epoll::EventFlags::IN) {
        tracing::warn!("triggers off: cannot wait on the control eventfd: {e}");
        return;
    }
    let mut lost_seen: Vec<u64> = sources.iter().map(|s| s.lost()).collect();
    let mut events: Vec<epoll::Event> = Vec::with_capacity(8);
    let mut asked = Vec::new();
    loop {
        events.clear();
        // Sleep until a notice, or until the first re-check put off falls due.
        let first = inner.lock().ok().and_then(|i| i.later.front().map(|(at, _)| *at));
        let timeout = first.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            rustix::event::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            }
        });
        match epoll::wait(&epoll, rustix::buffer::spare_capacity(&mut events), timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                tracing::warn!("triggers off: cannot wait: {e}");
                return;
            }
        }
        let mut added = false;
        for ev in &events {
            let which = ev.data.u64();
            if which == CONTROL {
                let mut b = [0u8; 8];
                let _ = rustix::io::read(control, &mut b);
                let (stop, follow) = match inner.lock() {
                    Ok(mut i) => (i.stop, i.follow.take()),
                    Err(_) => (true, None),
                };
                if stop {
                    return;
                }
                if let Some(pids) = follow {
                    for s in &mut sources {
                        s.follow(&pids);
                    }
                }
                continue;
            }
            let Some(s) = usize::try_from(which).ok().and_then(|i| sources.get_mut(i)) else { continue };
            asked.clear();
            let n = s.drain(&mut asked);
            let kind = s.kind();
            Stats::add(&stats.events, kind, u64::try_from(n).unwrap_or(0));
            let lost = s.lost();
            let i = usize::try_from(which).unwrap_or(0);
            let new_losses = lost.saturating_sub(lost_seen.get(i).copied().unwrap_or(0));
            if let Some(l) = lost_seen.get_mut(i) {
                *l = lost;
            }
            if new_losses > 0 {
                Stats::add(&stats.lost, kind, new_losses);
            }
            if let Ok(mut g) = inner.lock() {
                if new_losses > 0 {
                    *g.losses.entry(kind).or_default() += new_losses;
                }
                for r in asked.drain(..) {
                    tracing::trace!("{kind}: {r:?}");
                    if g.interest.wants(&r) {
                        g.due.add(r);
                        added = true;
                    }
                }
            }
        }
        // What was put off and has fallen due joins the set.
        if let Ok(mut g) = inner.lock() {
            let now = Instant::now();
            while g.later.front().is_some_and(|(at, _)| *at <= now) {
                if let Some((_, r)) = g.later.pop_front() {
                    g.due.add(r);
                    added = true;
                }
            }
        }
        if added {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse() {
        assert_eq!("auto".parse::<Choice>(), Ok(Choice::AUTO));
        assert!("off".parse::<Choice>().is_ok_and(|c| c.is_off()));
        let c: Result<Choice, _> = "connector,inotify".parse();
        assert!(c.as_ref().is_ok_and(|c| c.wants(Kind::Connector) && c.wants(Kind::Inotify) && !c.wants(Kind::Ebpf)));
        assert!("bogus".parse::<Choice>().is_err());
        assert!(",".parse::<Choice>().is_err());
    }

    #[test]
    fn each_object_is_due_once_and_a_flood_becomes_a_full_check() {
        let mut d = Due::default();
        for _ in 0..1000 {
            d.add(Recheck::Process(7));
            d.add(Recheck::Mounts);
        }
        assert_eq!(d.len(), 2);
        for p in 0..=u32::try_from(MAX_DUE).unwrap_or(0) {
            d.add(Recheck::Process(p + 100));
        }
        assert!(d.all);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn the_budget_defers_and_refills() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0, 0.05, Duration::from_millis(100));
        assert_eq!(b.ready_at(t0), None);
        b.spend(t0, Duration::from_millis(150));
        // 50 ms owed at 5% of a core: a second from now.
        let at = b.ready_at(t0);
        assert!(at.is_some_and(|at| at >= t0 + Duration::from_millis(999)));
        assert_eq!(b.ready_at(t0 + Duration::from_millis(1001)), None);
        // Never more than the burst.
        assert_eq!(b.ready_at(t0 + Duration::from_secs(3600)), None);
        b.spend(t0 + Duration::from_secs(3600), Duration::from_millis(101));
        assert!(b.ready_at(t0 + Duration::from_secs(3600)).is_some());
    }

    #[test]
    fn the_processes_watched_at_start_are_of_interest() {
        let hub = Hub::start(Vec::new(), Vec::new(), false, &[7], || {});
        let hub = hub.ok();
        let wanted = hub.as_ref().and_then(|h| h.inner.lock().ok().map(|i| i.interest.wants(&Recheck::Exit(7))));
        assert_eq!(wanted, Some(true));
    }

    #[test]
    fn notices_about_other_processes_are_dropped() {
        let some = Interest { every: false, pids: [7].into_iter().collect() };
        assert!(some.wants(&Recheck::Process(7)));
        assert!(!some.wants(&Recheck::Process(8)));
        assert!(!some.wants(&Recheck::New(9)));
        assert!(some.wants(&Recheck::Mounts));
        let every = Interest { every: true, pids: BTreeSet::new() };
        assert!(every.wants(&Recheck::New(9)));
    }
}
