//! Time, as the daemon sees it: a trait with the system clock and a manual
//! clock for tests.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A source of time that the daemon sleeps on.
///
/// `now` is monotonic (a duration since an arbitrary start); `wall` is the
/// calendar time that goes into reports.
pub trait Clock: Send + Sync {
    /// Monotonic time since an arbitrary, fixed start.
    fn now(&self) -> Duration;
    /// Calendar time, for reports and events.
    fn wall(&self) -> SystemTime;
    /// Blocks until `now() >= deadline` or until `stop` is raised, whichever
    /// comes first. Returns `true` when stopped.
    fn sleep_until(&self, deadline: Duration, stop: &StopSignal) -> bool;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn wall(&self) -> SystemTime {
        (**self).wall()
    }
    fn sleep_until(&self, deadline: Duration, stop: &StopSignal) -> bool {
        (**self).sleep_until(deadline, stop)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn wall(&self) -> SystemTime {
        (**self).wall()
    }
    fn sleep_until(&self, deadline: Duration, stop: &StopSignal) -> bool {
        (**self).sleep_until(deadline, stop)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the
    // data (a flag or a time) is still meaningful.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A flag that ends a sleep at once when raised.
#[derive(Debug, Default)]
pub struct StopSignal {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    /// A lowered flag.
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Raises the flag and wakes every sleeper.
    pub fn raise(&self) {
        *lock(&self.raised) = true;
        self.cond.notify_all();
    }

    /// Whether the flag is raised.
    pub fn is_raised(&self) -> bool {
        *lock(&self.raised)
    }

    /// Waits up to `timeout` for the flag; returns whether it is raised.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = lock(&self.raised);
        let (guard, _) =
            self.cond.wait_timeout_while(guard, timeout, |raised| !*raised).unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// The real clock: monotonic time from [`Instant`], calendar time from
/// [`SystemTime`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

fn process_start() -> Instant {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        process_start().elapsed()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Duration, stop: &StopSignal) -> bool {
        loop {
            let now = self.now();
            if now >= deadline {
                return stop.is_raised();
            }
            if stop.wait(deadline - now) {
                return true;
            }
        }
    }
}

#[derive(Debug)]
struct Manual {
    now: Duration,
    wall: SystemTime,
}

/// A clock that moves only when told to, for tests.
///
/// Clones share the same time. A sleeper wakes when [`ManualClock::advance`]
/// moves the time past its deadline, or when it is stopped.
///
/// ```
/// use std::time::Duration;
/// use fdir::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now() - t0, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<(Mutex<Manual>, Condvar)>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl ManualClock {
    /// A clock at monotonic time zero and calendar time 2000-01-01T00:00:00Z.
    pub fn new() -> ManualClock {
        ManualClock::at(SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800))
    }

    /// A clock at monotonic time zero and the given calendar time.
    pub fn at(wall: SystemTime) -> ManualClock {
        ManualClock { inner: Arc::new((Mutex::new(Manual { now: Duration::ZERO, wall }), Condvar::new())) }
    }

    /// Moves time forward and wakes the sleepers whose deadline has come.
    pub fn advance(&self, by: Duration) {
        let (state, cond) = &*self.inner;
        let mut state = lock(state);
        state.now += by;
        state.wall += by;
        cond.notify_all();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        lock(&self.inner.0).now
    }

    fn wall(&self) -> SystemTime {
        lock(&self.inner.0).wall
    }

    fn sleep_until(&self, deadline: Duration, stop: &StopSignal) -> bool {
        let (state, cond) = &*self.inner;
        let mut guard = lock(state);
        loop {
            if stop.is_raised() {
                return true;
            }
            if guard.now >= deadline {
                return false;
            }
            // The stop signal has its own condition variable; poll it at a
            // fine grain so a stop still ends the sleep within a millisecond.
            guard = cond.wait_timeout(guard, Duration::from_millis(1)).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn stop_ends_a_long_system_sleep_at_once() {
        let stop = Arc::new(StopSignal::new());
        let s2 = Arc::clone(&stop);
        let t = thread::spawn(move || {
            let clock = SystemClock;
            let start = Instant::now();
            let stopped = clock.sleep_until(clock.now() + Duration::from_secs(3600), &s2);
            (stopped, start.elapsed())
        });
        thread::sleep(Duration::from_millis(20));
        stop.raise();
        let (stopped, took) = t.join().unwrap();
        assert!(stopped);
        assert!(took < Duration::from_secs(60), "took {took:?}");
    }

    #[test]
    fn manual_clock_wakes_on_advance() {
        let clock = ManualClock::new();
        let stop = Arc::new(StopSignal::new());
        let (c2, s2) = (clock.clone(), Arc::clone(&stop));
        let t = thread::spawn(move || c2.sleep_until(Duration::from_secs(30), &s2));
        clock.advance(Duration::from_secs(10));
        clock.advance(Duration::from_secs(20));
        assert!(!t.join().unwrap());
        assert_eq!(clock.now(), Duration::from_secs(30));
    }

    #[test]
    fn system_clock_sleeps_until_deadline() {
        let clock = SystemClock;
        let stop = StopSignal::new();
        let deadline = clock.now() + Duration::from_millis(5);
        assert!(!clock.sleep_until(deadline, &stop));
        assert!(clock.now() >= deadline);
    }
}
