//! `fdir bench`: what fdir costs on this hardware, measured before deploying.
//!
//! - one check of one process (the seed subsystems), next to its floor:
//!   reading the same files through kept-open descriptors with one `pread`
//!   each and hashing them, measured in the same run, interleaved;
//! - the same check with the default subsystems;
//! - the CPU share and peak memory of a real `fdir watch` of one process at
//!   a 100 ms and a 1 s interval (its process CPU clock: every thread, exited ones too,
//!   after its start-up), next to its floor measured in the same window: a
//!   thread that wakes at the same interval and reads and hashes the same
//!   files through kept-open descriptors (on a VM, waking up and reading
//!   /proc with cold caches costs far more than the hot loop of a check),
//!   and a thread that only wakes at the interval: what the machine charges
//!   any periodic task, below which no daemon can go;
//! - a whole-node check (`--all`): a watch's cycle, per process; and the
//!   one-shot `fdir check --all`, run as a command, next to `sha256sum`
//!   of the same processes' `maps`, `status` and `cgroup` in one call,
//!   interleaved (the floor of a one-shot whole-node check: the kernel
//!   generating the same text, read and hashed on one core);
//! - code hashing throughput (`code`);
//! - the configuration a user runs (`deploy`): a real `fdir watch --all`
//!   with every default subsystem, and one with the seed's three beside it:
//!   the CPU of one cycle of the whole node next to `sha256sum` of every
//!   process's `maps`, `status` and `cgroup`, the CPU share that makes at
//!   the default interval, the peak resident memory, the baseline file's
//!   size, and `fdir check --all` of each next to the same `sha256sum`;
//! - one process with every default subsystem (`one`): a real `fdir watch
//!   --pid P --interval 100ms` with the default subsystems and one with the
//!   seed's three beside it, of the same process, measured in turns (the
//!   other stopped) so that neither wakes on a CPU the other has just
//!   woken (triggers off in both): the CPU share of each and their ratio.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fdir::baseline::Coverage;
use fdir::{Checker, Digest, Monitor, Procfs, Subsystem, SystemClock, Tracker, snapshot_with};
use serde::Serialize;

use super::args::Format;
use super::watch::{DISK_VOTE_EVERY, DISK_VOTE_GAP};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn idle(exe: &std::path::Path) -> Result<Kill> {
    let c = Command::new(exe)
        .arg("__idle")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start an idle process to measure")?;
    Ok(Kill(c))
}

/// The results, as `--format json` writes them.
#[derive(Debug, Serialize)]
pub struct Results {
    event: &'static str,
    /// The process whose check was measured.
    pid: u32,
    /// Its number of mappings (lines of maps).
    maps_lines: usize,
    /// One check cycle of the seed subsystems, ns.
    check_seed_ns: f64,
    /// The floor: the same files through kept-open fds, one pread each, hashed, ns.
    floor_seed_ns: f64,
    /// check / floor.
    ratio: f64,
    /// One check cycle of the default process subsystems, ns.
    check_default_ns: f64,
    /// `fdir watch` of one process, CPU share of one core, percent, per interval.
    watch: Vec<WatchCost>,
    /// Processes in the whole-node check.
    node_processes: usize,
    /// One whole-node cycle (seed subsystems), ms.
    node_cycle_ms: f64,
    /// Per process, µs.
    node_per_process_us: f64,
    /// One whole-node cycle with the default subsystems (what `fdir watch`
    /// checks when none are named), ms.
    node_default_cycle_ms: f64,
    /// The default deployment (`fdir watch`: every process, the default
    /// subsystems, every 30 s): its CPU share of one core, percent.
    deployment_cpu_percent: f64,
    /// `fdir check --all` as a command (seed subsystems), median wall time, ms.
    check_all_ms: f64,
    /// `sha256sum` of the same processes' maps, status and cgroup in one
    /// call, median wall time in the same rounds, ms (absent without it).
    sha256sum_ms: Option<f64>,
    /// check_all_ms / sha256sum_ms.
    check_all_ratio: Option<f64>,
    /// Code hashed by a baseline of `code`, MB/s (10^6 bytes).
    code_mb_per_s: f64,
    /// Bytes of code hashed.
    code_bytes: u64,
    /// `--only triggers` (docs/triggers.md): from a change to its anomaly,
    /// and the CPU of triggers beside a JIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    triggers: Option<super::bench_triggers::TriggerBench>,
    /// What a user runs (`fdir watch --all`, the default subsystems), and
    /// the seed subsystems beside it.
    deploy: Vec<Deployment>,
    /// `--only one`: a watch of one process with the default subsystems and
    /// one with the seed's beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    one: Option<OneProcess>,
}

/// Two real `fdir watch --pid P` of the same process at the same interval,
/// measured in turns in the same run: one with the default subsystems, one
/// with the seed's three.
#[derive(Debug, Serialize)]
pub struct OneProcess {
    /// The watches' interval, ms.
    interval_ms: u64,
    /// The time each was measured over, in turns with the other, s.
    seconds: f64,
    /// The default subsystems' watch: share of one core, percent.
    default_cpu_percent: f64,
    /// Its CPU time a cycle (every thread), µs.
    default_cycle_us: f64,
    /// The seed subsystems' watch beside it: share of one core, percent.
    seed_cpu_percent: f64,
    /// Its CPU time a cycle, µs.
    seed_cycle_us: f64,
    /// default_cpu_percent / seed_cpu_percent.
    ratio: f64,
    /// The ratio this is measured against (issue 19): at most this.
    target: f64,
    /// ratio <= target.
    met: bool,
    /// The peak resident memory of each (`VmHWM`), KiB: default, seed.
    peak_rss_kib: [u64; 2],
}

/// A real `fdir watch --all` of one set of subsystems, and `fdir check
/// --all` against the baseline it wrote, each next to `sha256sum` of every
/// process's `maps`, `status` and `cgroup`.
#[derive(Debug, Serialize)]
pub struct Deployment {
    /// `default` (what `fdir watch` checks when none are named) or `seed`.
    subsystems: &'static str,
    /// Processes the watch checked (its last `check` event's targets).
    processes: u64,
    /// The watch's interval while measured, ms.
    interval_ms: u64,
    /// Cycles in the window.
    cycles: u64,
    /// The watch's CPU time a cycle (every thread), ms.
    cycle_cpu_ms: f64,
    /// The same at the default interval: a share of one core, percent.
    default_interval_cpu_percent: f64,
    /// The watch's peak resident memory (`VmHWM`), KiB.
    peak_rss_kib: u64,
    /// The baseline file the watch wrote, bytes.
    baseline_bytes: u64,
    /// `fdir check --all` against that file, median wall time, ms.
    check_all_ms: f64,
    /// `sha256sum` of the same processes' maps, status and cgroup, median
    /// wall time in the same rounds, ms (one core: about its CPU time).
    sha256sum_ms: Option<f64>,
    /// Reading those files alone, kept open, in the watch's parts over
    /// one interval (no parsing, no hashing, nothing else): the CPU of one
    /// such pass, ms, the median of three (`reads_floor`). What the
    /// watch's cycle costs above it is fdir's own work.
    reads_floor_ms: Option<f64>,
}

/// The cost of a running `fdir watch`.
#[derive(Debug, Serialize)]
pub struct WatchCost {
    interval_ms: u64,
    cpu_percent: f64,
    /// The floor's CPU share in the same window: wake at the interval, read
    /// and hash the seed files through kept-open fds.
    floor_percent: f64,
    /// cpu_percent / floor_percent.
    ratio: f64,
    /// In the same window, a thread that only wakes at the interval and
    /// does nothing: what this machine charges any periodic task.
    wake_percent: f64,
    peak_rss_kib: u64,
    seconds: f64,
    /// The pages the watch touched over one cycle (and a half; the fewer of
    /// two such windows), from the kernel's referenced bits (absent when
    /// they could not be read).
    pages: Option<Touched>,
    /// In the same window, what the first touch of a page cost a thread
    /// after each idle interval.
    page_tax: PageTax,
}

/// The pages a process touched in a window, by kind, from the referenced
/// bits of its mappings (`/proc/PID/clear_refs`, then `smaps`).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Touched {
    /// Of fdir's own executable (code, read-only data, data).
    binary: u64,
    /// Of the heap.
    heap: u64,
    /// Of the main thread's stack.
    stack: u64,
    /// Of other anonymous mappings (other threads' stacks, malloc arenas).
    anonymous: u64,
    /// Of shared libraries: at most this many. The kernel marks a shared
    /// page referenced whichever process touched it, so this counts other
    /// processes' touches of libc too.
    libraries_at_most: u64,
}

impl Touched {
    /// The pages only this process can have touched.
    fn own(&self) -> u64 {
        self.binary + self.heap + self.stack + self.anonymous
    }
}

/// What this machine charges for the first touch of a page after an idle
/// interval. On a virtual machine whose host lets its mapping of an idle
/// guest's memory go cold, every page a wake-up touches can cost
/// microseconds, far more than a cache miss (and often more than the rest
/// of a check), while pages inside one 2 MiB huge page do not.
#[derive(Debug, Serialize)]
pub struct PageTax {
    /// Pages touched (one byte each) after each sleep.
    pages: usize,
    rounds: u32,
    /// Median cost of the first touch of a 4 KiB page, µs.
    small_us: f64,
    /// The same for pages inside one 2 MiB huge page, µs (absent when the
    /// kernel gave none: transparent huge pages off, or memory fragmented).
    huge_us: Option<f64>,
    /// The same for pages of a file in the page cache (read with `pread`),
    /// µs (absent when no file could be written).
    file_us: Option<f64>,
}

fn time_per<F: FnMut()>(n: u32, mut f: F) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
}

/// On-CPU time of the calling thread up to now, ns (its CPU-time clock,
/// which counts the running slice: `schedstat` of the running thread lags
/// until its next switch or tick).
fn thread_clock_ns() -> Result<u64> {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime(2) writes one timespec to the pointer, a local
    // that outlives the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut t) } != 0 {
        anyhow::bail!("cannot read this thread's CPU clock: {}", std::io::Error::last_os_error());
    }
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// On-CPU time of the process `pid`, ns: every thread it has run, those
/// that have exited included (the process's CPU-time clock). A sum of the
/// live threads' `schedstat` left out a watch's workers, which run a part
/// of a round each and exit: most of a cycle's CPU, uncounted.
pub(super) fn cpu_ns(pid: u32) -> Result<u64> {
    let pid = libc::pid_t::try_from(pid).context("a pid out of range")?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: clock_getcpuclockid(3) writes one clockid_t to the pointer,
    // a local that outlives the call.
    let rc = unsafe { libc::clock_getcpuclockid(pid, &raw mut clock) };
    if rc != 0 {
        anyhow::bail!("cannot read the CPU clock of pid {pid}: {}", std::io::Error::from_raw_os_error(rc));
    }
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime(2) writes one timespec to the pointer, a local
    // that outlives the call.
    if unsafe { libc::clock_gettime(clock, &raw mut t) } != 0 {
        anyhow::bail!("cannot read the CPU clock of pid {pid}: {}", std::io::Error::last_os_error());
    }
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The on-CPU time in a `schedstat` file (its first field), ns.
fn schedstat_ns(path: &std::path::Path) -> Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected {}", path.display()))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmHWM:").and_then(kib)))
        .unwrap_or(0)
}

/// The number of a `/proc` field's value in kB (`"  1808 kB"`).
fn kib(value: &str) -> Option<u64> {
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// One field of every mapping in an `smaps` text: each mapping's first
/// line (range, perms, offset, dev, inode, name) with the value in kB of
/// its `field` (such as `"Referenced:"`).
fn smaps_field<'a>(smaps: &'a str, field: &'a str) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    let mut mapping = "";
    smaps.lines().filter_map(move |line| {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            mapping = line;
            None
        } else {
            line.strip_prefix(field).and_then(kib).map(|v| (mapping, v))
        }
    })
}

fn watch_cost(exe: &std::path::Path, pid: u32, interval: Duration, seconds: f64) -> Result<WatchCost> {
    let dir = tempfile_dir()?;
    let baseline = dir.join("bench-baseline.json");
    let start = |exe: &std::path::Path| {
        Command::new(exe)
            .args([
                "watch",
                "--pid",
                &pid.to_string(),
                "--format",
                "json",
                "--subsystems",
                "memory-maps,seccomp,cgroups",
            ])
            .arg("--interval")
            .arg(format!("{}ms", interval.as_millis()))
            .arg("--baseline")
            .arg(&baseline)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
    };
    // The watch runs a copy of fdir that no other process runs: the kernel
    // marks a page of a file referenced for every process that maps it, and
    // this one runs fdir too, so the pages a cycle touches of its binary are
    // counted exactly only in a file of its own. Where the copy cannot run
    // (a temporary directory mounted noexec), fdir itself does, and its
    // binary's count may include this process's touches.
    let copy = dir.join("fdir");
    let (exe, child) = match std::fs::copy(exe, &copy).and_then(|_| start(&copy)) {
        Ok(child) => (copy.as_path(), child),
        Err(_) => {
            // No partial copy left to fill the directory the watch writes to.
            let _ = std::fs::remove_file(&copy);
            (exe, start(exe).context("cannot start fdir watch")?)
        }
    };
    let mut w = Kill(child);
    let wpid = w.0.id();
    let out = w.0.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    // Past its start-up, into the steady state: the first check has run,
    // and so has the first vote of the baseline file (the one that decodes
    // it in full; later votes of an unchanged file only read and hash it).
    let (checks, steady) = until_steady(&mut lines, interval)?;
    if !steady {
        let status = w.0.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::bail!("fdir watch ended after {checks} checks, before its steady state ({status}): nothing to measure");
    }
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(200));
    let floor = std::thread::spawn(move || floor_watch(pid, interval, seconds));
    let wake = std::thread::spawn(move || bare_wake(interval, seconds));
    let scratch = dir.join("pages");
    let tax = std::thread::spawn(move || page_tax(interval, seconds, &scratch));
    let (c0, t0) = (cpu_ns(wpid)?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (c1, t1) = (cpu_ns(wpid)?, Instant::now());
    let rss = peak_rss_kib(wpid);
    let floor_percent = floor.join().map_err(|_| anyhow::anyhow!("the floor's thread panicked"))??;
    let wake_percent = wake.join().map_err(|_| anyhow::anyhow!("the wake-up thread panicked"))??;
    let page_tax = tax.join().map_err(|_| anyhow::anyhow!("the page-touching thread panicked"))?;
    // Alone with the watch: a page another process reads through the page
    // cache is marked referenced for every process that maps it.
    let pages = pages_touched(wpid, exe, interval + interval / 2);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
    #[allow(clippy::cast_precision_loss)]
    let cpu = (c1 - c0) as f64;
    #[allow(clippy::cast_precision_loss)]
    let cpu_percent = 100.0 * cpu / (t1 - t0).as_nanos() as f64;
    Ok(WatchCost {
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        cpu_percent,
        floor_percent,
        ratio: cpu_percent / floor_percent,
        wake_percent,
        peak_rss_kib: rss,
        seconds: (t1 - t0).as_secs_f64(),
        pages,
        page_tax,
    })
}

/// A real `fdir watch` of `pid` at `interval` whose `check` events are
/// counted as they arrive, once past its start-up.
struct CountedWatch {
    watch: Kill,
    checks: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountedWatch {
    /// Starts `fdir watch --pid PID` (`subsystems`: `None` for the default
    /// ones) with a baseline file of its own in `dir`, and waits until it is
    /// past its start-up and its first full vote of the baseline file.
    fn start(
        exe: &std::path::Path,
        pid: u32,
        subsystems: Option<&str>,
        interval: Duration,
        dir: &std::path::Path,
    ) -> Result<Self> {
        let mut cmd = Command::new(exe);
        // Triggers off in both: what they cost follows the node's rate of
        // process events, not the subsystems, and would be added to both.
        cmd.args(["watch", "--pid", &pid.to_string(), "--format", "json", "--triggers", "off"])
            .arg("--interval")
            .arg(format!("{}ms", interval.as_millis()))
            .arg("--baseline")
            .arg(dir.join(format!("one-{}.json", subsystems.map_or("default", |_| "seed"))));
        if let Some(list) = subsystems {
            cmd.args(["--subsystems", list]);
        }
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
        let mut watch = Kill(child.context("cannot start fdir watch --pid")?);
        let out = watch.0.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let (seen, steady) = until_steady(&mut lines, interval)?;
        if !steady {
            anyhow::bail!(
                "fdir watch --pid {pid} ended after {seen} checks, before its steady state: nothing to measure"
            );
        }
        let checks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&checks);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.contains("\"event\":\"check\"") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        Ok(Self { watch, checks })
    }

    /// Sends `sig` to the watch (`Stop` to set it aside while the other is
    /// measured, `Cont` to resume it).
    fn signal(&self, sig: rustix::process::Signal) -> Result<()> {
        let pid = i32::try_from(self.watch.0.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .context("a pid out of range")?;
        rustix::process::kill_process(pid, sig)
            .with_context(|| format!("cannot signal fdir watch {}", self.watch.0.id()))
    }

    /// Its CPU time so far (every thread), ns, and the checks it reported.
    fn now(&self) -> Result<(u64, u64)> {
        Ok((cpu_ns(self.watch.0.id())?, self.checks.load(std::sync::atomic::Ordering::Relaxed)))
    }
}

/// Windows of [`one_process`]: each watch is measured this many times,
/// in the order default, seed, seed, default, and again.
const ONE_PROCESS_WINDOWS: u32 = 4;

/// One process, every default subsystem (issue 19): a watch of `pid` with
/// the default subsystems and one with the seed's three, both at
/// `interval`, measured in turns over `seconds` each.
///
/// Both run for the whole measurement, but only one at a time: the other
/// is stopped (`SIGSTOP`) while one is measured, in windows ordered
/// default, seed, seed, default so that a drift of the host weighs on both
/// alike. Run at once, their timers fall due at the same phase each
/// interval, and the one that wakes second finds a CPU the first has just
/// woken and caches it has just filled: measured so, the seed's cycle cost
/// 98-235 us where it costs 287-365 us alone (BENCHMARKS.md), and the
/// ratio said more about the two timers' phase than about the subsystems.
fn one_process(exe: &std::path::Path, pid: u32, interval: Duration, seconds: f64) -> Result<OneProcess> {
    let dir = tempfile_dir()?;
    let watches = CountedWatch::start(exe, pid, None, interval, &dir)
        .and_then(|d| Ok((d, CountedWatch::start(exe, pid, Some("memory-maps,seccomp,cgroups"), interval, &dir)?)));
    let (default, seed) = match watches {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let window = Duration::from_secs_f64(seconds / f64::from(ONE_PROCESS_WINDOWS));
    let measured = (|| -> Result<_> {
        let (mut d, mut s) = (Measured::default(), Measured::default());
        for turn in 0..2 * ONE_PROCESS_WINDOWS {
            // default, seed, seed, default, default, seed ...
            let seed_turn = matches!(turn % 4, 1 | 2);
            let (on, off, total) = if seed_turn { (&seed, &default, &mut s) } else { (&default, &seed, &mut d) };
            off.signal(rustix::process::Signal::STOP)?;
            on.signal(rustix::process::Signal::CONT)?;
            // The cycle due on waking, and one more: then its steady state.
            std::thread::sleep(interval * 5 / 2);
            let (a, t0) = (on.now()?, Instant::now());
            std::thread::sleep(window);
            let (b, t1) = (on.now()?, Instant::now());
            total.add(a, b, t1 - t0);
        }
        default.signal(rustix::process::Signal::CONT)?;
        seed.signal(rustix::process::Signal::CONT)?;
        Ok((d, s))
    })();
    let rss = [peak_rss_kib(default.watch.0.id()), peak_rss_kib(seed.watch.0.id())];
    drop((default, seed));
    let _ = std::fs::remove_dir_all(&dir);
    let (d, s) = measured?;
    let ratio = d.cpu_percent() / s.cpu_percent();
    Ok(OneProcess {
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        seconds: d.window.as_secs_f64(),
        default_cpu_percent: d.cpu_percent(),
        default_cycle_us: d.cycle_us(),
        seed_cpu_percent: s.cpu_percent(),
        seed_cycle_us: s.cycle_us(),
        ratio,
        target: ONE_PROCESS_TARGET,
        met: ratio <= ONE_PROCESS_TARGET,
        peak_rss_kib: rss,
    })
}

/// What one watch of [`one_process`] spent over its windows.
#[derive(Debug, Default)]
struct Measured {
    cpu_ns: u64,
    checks: u64,
    window: Duration,
}

impl Measured {
    /// Adds the window from `a` to `b` (CPU ns, checks) that lasted `took`.
    fn add(&mut self, a: (u64, u64), b: (u64, u64), took: Duration) {
        self.cpu_ns += b.0.saturating_sub(a.0);
        self.checks += b.1.saturating_sub(a.1);
        self.window += took;
    }

    /// Share of one core over the windows, percent.
    #[allow(clippy::cast_precision_loss)]
    fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu_ns as f64 / self.window.as_nanos().max(1) as f64
    }

    /// CPU time a check, µs.
    #[allow(clippy::cast_precision_loss)]
    fn cycle_us(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.checks.max(1) as f64
    }
}

/// The pages `pid` touches over `window`: clears its referenced bits, waits,
/// and counts them in `smaps`, by kind; the fewer of two windows, since one
/// may hold the vote of the baseline file (every tenth cycle or so). `None`
/// when the files cannot be used (no permission, no such kernel support).
fn pages_touched(pid: u32, exe: &std::path::Path, window: Duration) -> Option<Touched> {
    let exe = exe.to_string_lossy();
    let once = || -> Option<Touched> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "1").ok()?;
        std::thread::sleep(window);
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
        Some(count_touched(&smaps, &exe))
    };
    [once()?, once()?].into_iter().min_by_key(Touched::own)
}

/// Sums the `Referenced` of each mapping of an `smaps` text by the kind of
/// mapping, in pages.
fn count_touched(smaps: &str, exe: &str) -> Touched {
    let mut t = Touched::default();
    for (mapping, referenced) in smaps_field(smaps, "Referenced:") {
        let slot = match mapping.split_whitespace().nth(5).unwrap_or("") {
            "[heap]" => &mut t.heap,
            "[stack]" => &mut t.stack,
            "" => &mut t.anonymous,
            n if n == exe => &mut t.binary,
            n if n.starts_with('[') => continue,
            _ => &mut t.libraries_at_most,
        };
        *slot += referenced / 4;
    }
    t
}

/// Measures [`PageTax`]: for `seconds`, sleeps `interval` and touches one
/// byte of each of `PAGES` small pages, of `PAGES` pages inside a huge page
/// and of `PAGES` pages of a file, each kind first in turn, every pass
/// timed by [`first_touch`].
fn page_tax(interval: Duration, seconds: f64, scratch: &std::path::Path) -> PageTax {
    const PAGES: usize = 64;
    const PAGE: usize = 4096;
    const HUGE: usize = 2 << 20;
    // Small pages: a buffer of their own (above malloc's mmap threshold, and
    // too small to hold an aligned huge page), every page written once.
    let mut small = vec![1u8; PAGES * PAGE];
    small.iter_mut().step_by(PAGE).for_each(|b| *b = 2);
    // A huge page: the aligned 2 MiB inside 4 MiB, advised, then written.
    let mut room = vec![0u8; 2 * HUGE];
    let offset = room.as_ptr().align_offset(HUGE);
    let backed = room.get_mut(offset..offset + HUGE).is_some_and(|h| {
        advise_huge(h) && {
            h.fill(1);
            is_huge_page(h.as_ptr() as usize)
        }
    });
    let huge = room.get(offset..offset + HUGE).filter(|_| backed);
    // Pages of a file in the page cache, as a program's code is: a file of
    // PAGES pages written for this (not fdir's binary: reading the pages of
    // the watch's code would warm them for it), one byte of each read with
    // pread.
    let file = std::fs::write(scratch, vec![1u8; PAGES * PAGE]).and_then(|()| std::fs::File::open(scratch)).ok();
    let read = |f: &std::fs::File| {
        let mut byte = [0u8; 1];
        first_touch(PAGES, || {
            for i in 0..PAGES as u64 {
                let _ = f.read_at(&mut byte, i * PAGE as u64);
            }
        })
    };
    let pass = |buf: &[u8]| {
        let buf = std::hint::black_box(buf);
        first_touch(PAGES, || {
            let sum = (0..PAGES).fold(0u8, |sum, i| sum.wrapping_add(buf.get(i * PAGE).copied().unwrap_or(0)));
            std::hint::black_box(sum);
        })
    };
    let (mut s, mut h, mut f) = (Vec::new(), Vec::new(), Vec::new());
    let mut rounds = 0u32;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        std::thread::sleep(interval);
        // Each kind first in turn: the first pass after a wake-up also pays
        // for what the three share (the clock, this code).
        for k in 0..3 {
            match (rounds + k) % 3 {
                0 => s.push(pass(&small)),
                1 => h.extend(huge.map(pass)),
                _ => f.extend(file.as_ref().map(read)),
            }
        }
        rounds += 1;
    }
    PageTax {
        pages: PAGES,
        rounds,
        small_us: median(&mut s),
        huge_us: huge.map(|_| median(&mut h)),
        file_us: file.map(|_| median(&mut f)),
    }
}

/// Runs `touch` (a pass over `pages` pages) twice, cold and at once again
/// hot: the difference, per page, is the price of the first touches, µs.
fn first_touch(pages: usize, mut touch: impl FnMut()) -> f64 {
    // The clock's own pages first, so that the passes time only the touches.
    let _ = std::hint::black_box(Instant::now());
    let mut timed = || {
        let t = Instant::now();
        touch();
        t.elapsed().as_secs_f64()
    };
    let cold = timed();
    let hot = timed();
    #[allow(clippy::cast_precision_loss)]
    let per_page = (cold - hot).max(0.0) * 1e6 / pages as f64;
    per_page
}

/// Asks the kernel to back `region` (2 MiB, aligned) with a huge page.
fn advise_huge(region: &[u8]) -> bool {
    // SAFETY: madvise(2) with MADV_HUGEPAGE only changes how the kernel
    // backs the range, never its contents; the range is memory this
    // function's caller owns, borrowed for the call.
    unsafe { rustix::mm::madvise(region.as_ptr().cast_mut().cast(), region.len(), rustix::mm::Advice::LinuxHugepage) }
        .is_ok()
}

/// Whether the mapping at address `at` of this process is backed by huge pages.
fn is_huge_page(at: usize) -> bool {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return false };
    smaps_field(&smaps, "AnonHugePages:").any(|(mapping, huge)| {
        let range = mapping.split_whitespace().next().and_then(|r| r.split_once('-'));
        let inside = range.is_some_and(|(lo, hi)| {
            matches!((usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)), (Ok(lo), Ok(hi)) if lo <= at && at < hi)
        });
        inside && huge >= 2048
    })
}

/// The median of `v` (0 when empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The seed subsystems' files of `pid`, kept open, as the floors read them:
/// the same files a check reads (the main thread's `status` and `cgroup`
/// are the process's own).
fn seed_files(pid: u32) -> Result<Vec<std::fs::File>> {
    ["maps", "status", "cgroup"]
        .iter()
        .map(|f| std::fs::File::open(format!("/proc/{pid}/{f}")))
        .collect::<Result<_, _>>()
        .context("cannot open the floor's files")
}

/// Reads a kept-open file whole into `buf` (growing it) and hashes it: a
/// pread of a /proc seq file returns at most a page or so, so a floor reads
/// on until end of file, as a check must.
fn read_and_hash(f: &std::fs::File, buf: &mut Vec<u8>) {
    let mut len = 0usize;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read_at(buf.get_mut(len..).unwrap_or(&mut []), u64::try_from(len).unwrap_or(0)) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    std::hint::black_box(Digest::of(buf.get(..len).unwrap_or(&[])));
}

/// On-CPU time of the calling thread, ns (schedstat).
fn thread_cpu_ns() -> Result<u64> {
    schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat"))
}

/// The floor of a watch: for `seconds`, wake every `interval` and read and
/// hash the seed files of `pid` through kept-open fds; the calling thread's
/// CPU share of one core, percent.
fn floor_watch(pid: u32, interval: Duration, seconds: f64) -> Result<f64> {
    let files = seed_files(pid)?;
    let mut buf = vec![0u8; 1 << 16];
    periodic_share(interval, seconds, || {
        for f in &files {
            read_and_hash(f, &mut buf);
        }
    })
}

/// For `seconds`, wake every `interval` and do nothing: the calling
/// thread's CPU share of one core, percent. On a VM, waking a halted
/// virtual CPU is charged to the task it wakes, and can cost more than
/// reading three /proc files hot.
fn bare_wake(interval: Duration, seconds: f64) -> Result<f64> {
    periodic_share(interval, seconds, || {})
}

/// For `seconds`, wake every `interval` and run `work`: the calling
/// thread's CPU share of one core, percent.
fn periodic_share(interval: Duration, seconds: f64, mut work: impl FnMut()) -> Result<f64> {
    // The same timer slack as the watch measured next to it: like with like.
    super::watch::set_timer_slack(interval);
    let (c0, t0) = (thread_cpu_ns()?, Instant::now());
    let until = t0 + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        std::thread::sleep(interval);
        work();
    }
    let (c1, t1) = (thread_cpu_ns()?, Instant::now());
    #[allow(clippy::cast_precision_loss)]
    Ok(100.0 * (c1.saturating_sub(c0)) as f64 / (t1 - t0).as_nanos() as f64)
}

/// Median wall times of `fdir check --all` and of `sha256sum` over the
/// `maps`, `status` and `cgroup` of every process with mappings, run in
/// turn `rounds` times (so that both see the same host), ms; the second is
/// `None` when there is no `sha256sum` to run.
fn check_all_against_sha256sum(exe: &std::path::Path, rounds: u32) -> Result<(f64, Option<f64>)> {
    let dir = tempfile_dir()?;
    let baseline = dir.join("node-baseline.json");
    let run = |cmd: &mut Command| -> Result<(Duration, Option<i32>)> {
        let t = Instant::now();
        let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        Ok((t.elapsed(), status.code()))
    };
    let fdir = |args: &[&str]| {
        let mut c = Command::new(exe);
        c.args(args).arg("--baseline").arg(&baseline);
        c
    };
    let taken = run(&mut fdir(&["snapshot", "--all", "--subsystems", "memory-maps,seccomp,cgroups"]));
    if !matches!(taken, Ok((_, Some(0 | 1)))) {
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::bail!("cannot take a baseline of every process for check --all ({taken:?})");
    }
    let files = node_files()?;
    let has_sha256sum = run(Command::new("sha256sum").arg("--version")).is_ok_and(|(_, code)| code == Some(0));
    let (mut fdir_times, mut sha_times) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (t, code) = run(&mut fdir(&["check", "--all"]))?;
        if !matches!(code, Some(0 | 1)) {
            let _ = std::fs::remove_dir_all(&dir);
            anyhow::bail!("fdir check --all could not check (exit {code:?})");
        }
        fdir_times.push(t);
        if has_sha256sum {
            // Processes that exit meanwhile make it fail; it has read the rest.
            sha_times.push(run(Command::new("sha256sum").args(&files))?.0);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let median = |mut v: Vec<Duration>| -> Option<f64> {
        v.sort_unstable();
        v.get(v.len() / 2).map(|d| d.as_secs_f64() * 1e3)
    };
    Ok((median(fdir_times).unwrap_or(0.0), median(sha_times)))
}

/// The `maps`, `status` and `cgroup` of every process with memory maps:
/// what `sha256sum` reads as the floor of a whole-node check.
fn node_files() -> Result<Vec<String>> {
    let mut files = Vec::new();
    for pid in fdir::list_processes(std::path::Path::new("/proc"))? {
        let maps = format!("/proc/{pid}/maps");
        let mut first = [0u8; 1];
        let has_maps = std::fs::File::open(&maps).and_then(|mut f| std::io::Read::read(&mut f, &mut first));
        if matches!(has_maps, Ok(1)) {
            files.extend([maps, format!("/proc/{pid}/status"), format!("/proc/{pid}/cgroup")]);
        }
    }
    Ok(files)
}

/// A real `fdir watch --all` (`subsystems`: `None` for the default ones)
/// at `interval`, measured for `seconds` once past its start-up, then
/// `fdir check --all` against the baseline file it wrote, `rounds` times,
/// interleaved with `sha256sum` of the same files.
fn deployment(
    exe: &std::path::Path,
    subsystems: Option<&str>,
    interval: Duration,
    seconds: f64,
    rounds: u32,
) -> Result<Deployment> {
    let dir = tempfile_dir()?;
    let baseline = dir.join("deploy-baseline.json");
    let mut cmd = Command::new(exe);
    cmd.args(["watch", "--all", "--format", "json"])
        .arg("--interval")
        .arg(format!("{}ms", interval.as_millis()))
        .arg("--baseline")
        .arg(&baseline);
    if let Some(list) = subsystems {
        cmd.args(["--subsystems", list]);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
    let mut w = Kill(child.context("cannot start fdir watch --all")?);
    let wpid = w.0.id();
    let out = w.0.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    // Past its start-up (the baseline of every process, written), and its
    // first full vote of the baseline file, as for one process.
    let (checks, steady) = until_steady(&mut lines, interval)?;
    if !steady {
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::bail!("fdir watch --all ended after {checks} checks, before its steady state: nothing to measure");
    }
    // Cycles counted as their events arrive; the last one's targets.
    let counted = std::sync::Arc::new((std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0)));
    let counter = std::sync::Arc::clone(&counted);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("\"event\":\"check\"") {
                counter.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(n) = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("targets").and_then(serde_json::Value::as_u64))
                {
                    counter.1.store(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    let (c0, n0) = (cpu_ns(wpid)?, counted.0.load(std::sync::atomic::Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (c1, n1) = (cpu_ns(wpid)?, counted.0.load(std::sync::atomic::Ordering::Relaxed));
    let rss = peak_rss_kib(wpid);
    let processes = counted.1.load(std::sync::atomic::Ordering::Relaxed);
    drop(w);
    let baseline_bytes = std::fs::metadata(&baseline).map(|m| m.len()).unwrap_or(0);
    let (check_all_ms, sha256sum_ms) = check_all_against(exe, &baseline, rounds);
    let reads_floor_ms = node_files().and_then(|files| reads_floor(&files, interval)).ok();
    let _ = std::fs::remove_dir_all(&dir);
    let cycles = n1.saturating_sub(n0).max(1);
    #[allow(clippy::cast_precision_loss)]
    let cycle_cpu_ms = c1.saturating_sub(c0) as f64 / 1e6 / cycles as f64;
    let (check_all_ms, sha256sum_ms) = (check_all_ms?, sha256sum_ms);
    Ok(Deployment {
        subsystems: if subsystems.is_some() { "seed" } else { "default" },
        processes,
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        cycles,
        cycle_cpu_ms,
        default_interval_cpu_percent: cycle_cpu_ms / 1e3 / DEPLOYMENT_INTERVAL.as_secs_f64() * 100.0,
        peak_rss_kib: rss,
        baseline_bytes,
        check_all_ms,
        sha256sum_ms,
        reads_floor_ms,
    })
}

/// The floor of a whole-node watch cycle in reads: `files` (every
/// process's `maps`, `status` and `cgroup`, in threes) opened once, then
/// read as the watch reads them (`maps` to its end, the others in one
/// read) in parts of [`fdir::runtime::TARGETS_PER_PART`] processes spread
/// over `interval`, nothing else; the calling thread's CPU of one such
/// pass, ms, the median of three after one to warm up.
fn reads_floor(files: &[String], interval: Duration) -> Result<f64> {
    let open: Vec<std::fs::File> = files.iter().filter_map(|f| std::fs::File::open(f).ok()).collect();
    anyhow::ensure!(!open.is_empty(), "no process's files to read");
    let part = fdir::runtime::TARGETS_PER_PART.saturating_mul(3);
    let parts = u32::try_from(open.len().div_ceil(part)).unwrap_or(u32::MAX).max(1);
    let gap = interval / parts;
    let mut buf = vec![0u8; 1 << 16];
    let mut passes = Vec::new();
    for pass in 0..4 {
        let mut cpu = 0u64;
        for chunk in open.chunks(part) {
            let before = thread_clock_ns()?;
            for (i, f) in chunk.iter().enumerate() {
                let to_end = i % 3 == 0;
                let mut at = 0u64;
                while let Ok(n) = f.read_at(&mut buf, at) {
                    if n == 0 || !to_end {
                        break;
                    }
                    at = at.saturating_add(u64::try_from(n).unwrap_or(0));
                }
            }
            cpu = cpu.saturating_add(thread_clock_ns()?.saturating_sub(before));
            std::thread::sleep(gap);
        }
        if pass > 0 {
            #[allow(clippy::cast_precision_loss)]
            passes.push(cpu as f64 / 1e6);
        }
    }
    Ok(median(&mut passes))
}

/// `fdir check --all --baseline FILE`, `rounds` times, interleaved with
/// `sha256sum` of every process's `maps`, `status` and `cgroup`: the median
/// wall times, ms.
fn check_all_against(exe: &std::path::Path, baseline: &std::path::Path, rounds: u32) -> (Result<f64>, Option<f64>) {
    let run = |cmd: &mut Command| -> Result<(Duration, Option<i32>)> {
        let t = Instant::now();
        let status = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        Ok((t.elapsed(), status.code()))
    };
    let files = match node_files() {
        Ok(f) => f,
        Err(e) => return (Err(e), None),
    };
    let has_sha256sum = run(Command::new("sha256sum").arg("--version")).is_ok_and(|(_, code)| code == Some(0));
    let (mut fdir_times, mut sha_times) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        match run(Command::new(exe).args(["check", "--all", "--baseline"]).arg(baseline)) {
            Ok((t, Some(0 | 1))) => fdir_times.push(t),
            Ok((_, code)) => return (Err(anyhow::anyhow!("fdir check --all could not check (exit {code:?})")), None),
            Err(e) => return (Err(e), None),
        }
        if has_sha256sum && let Ok((t, _)) = run(Command::new("sha256sum").args(&files)) {
            sha_times.push(t);
        }
    }
    let median = |mut v: Vec<Duration>| -> Option<f64> {
        v.sort_unstable();
        v.get(v.len() / 2).map(|d| d.as_secs_f64() * 1e3)
    };
    (Ok(median(fdir_times).unwrap_or(0.0)), median(sha_times))
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("fdir-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// What to measure.
pub struct Options {
    /// Scales every measurement.
    pub seconds: f64,
    /// Extra idle processes started for the whole-node check.
    pub processes: usize,
    /// The process whose check is measured (default: an idle one).
    pub pid: Option<u32>,
    /// Which measurements: check, watch, node, code.
    pub only: String,
    /// Output format.
    pub format: Format,
}

/// The interval of the default deployment.
const DEPLOYMENT_INTERVAL: Duration = Duration::from_secs(30);
/// The CPU share the default deployment may take, percent of one core.
const DEPLOYMENT_CPU_TARGET: f64 = 1.0;
/// A check of one process, at most this many times reading and hashing the same files.
const CHECK_RATIO_TARGET: f64 = 1.2;
/// A watch of one process, at most this share of one core (percent) at 100 ms and at 1 s.
const WATCH_TARGETS: [(u64, f64); 2] = [(100, 0.25), (1000, 0.03)];
/// A watch's peak resident memory, at most this many KiB.
const RSS_TARGET_KIB: u64 = 4096;
/// Code hashing, at least this many MB/s.
const CODE_TARGET_MB_S: f64 = 1000.0;
/// What a user runs (issue 19, set for 500 idle processes in 5 cgroups):
/// `check --all` at most this many times `sha256sum` of the same files.
const DEPLOY_CHECK_ALL_TARGET: f64 = 0.8;
/// A watch cycle's CPU at most this many times that `sha256sum`'s.
const DEPLOY_CYCLE_TARGET: f64 = 1.0;
/// The watch's peak resident memory, at most this many KiB (16 MiB).
const DEPLOY_RSS_TARGET_KIB: u64 = 16 * 1024;
/// The baseline file of every process, at most this many bytes (1 MiB).
const DEPLOY_BASELINE_TARGET: u64 = 1 << 20;
/// The interval the `deploy` watches run at while measured (the default's
/// 30 s would need minutes to count cycles; a cycle costs the same).
const DEPLOY_MEASURED_INTERVAL: Duration = Duration::from_secs(1);
/// One process at 100 ms (issue 19): the default subsystems' watch at most
/// this many times the seed subsystems' measured beside it.
const ONE_PROCESS_TARGET: f64 = 1.5;
/// The interval of that measurement.
const ONE_PROCESS_INTERVAL: Duration = Duration::from_millis(100);

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// The text report: first the answer (what the default deployment costs
/// here, and whether it is within target), then each measurement with its
/// target and a yes or no.
fn print_text(r: &Results, wants: &dyn Fn(&str) -> bool) {
    println!(
        "fdir bench on this machine ({} core(s)); measured process {} with {} mappings",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        r.pid,
        r.maps_lines
    );
    println!();
    print_deployments(&r.deploy);
    if let Some(o) = &r.one {
        print_one(o);
    }
    if wants("node") {
        println!(
            "The default deployment (fdir watch: every process, the default subsystems, a check every {} s):",
            DEPLOYMENT_INTERVAL.as_secs()
        );
        println!(
            "  CPU: {:.3} % of one core ({} processes, {:.1} ms a check)   within {DEPLOYMENT_CPU_TARGET} %? {}",
            r.deployment_cpu_percent,
            r.node_processes,
            r.node_default_cycle_ms,
            yes(r.deployment_cpu_percent <= DEPLOYMENT_CPU_TARGET)
        );
    }
    if let Some(w) = r.watch.iter().max_by_key(|w| w.peak_rss_kib) {
        println!(
            "  memory: {} KiB at most (a watch of one process; each process watched adds its baseline)   within {} KiB? {}",
            w.peak_rss_kib,
            RSS_TARGET_KIB,
            yes(w.peak_rss_kib <= RSS_TARGET_KIB)
        );
    }
    println!();
    println!("Each measurement against its target:");
    if wants("check") {
        println!(
            "  one check of one process: {:.1} us, {:.2} times reading and hashing the same files ({:.1} us)   at most {CHECK_RATIO_TARGET} times? {}",
            r.check_seed_ns / 1e3,
            r.ratio,
            r.floor_seed_ns / 1e3,
            yes(r.ratio <= CHECK_RATIO_TARGET)
        );
        println!(
            "    (memory-maps, seccomp, cgroups; with every default subsystem: {:.1} us; no target)",
            r.check_default_ns / 1e3
        );
    }
    for w in &r.watch {
        let target = WATCH_TARGETS.iter().find(|(ms, _)| *ms == w.interval_ms).map(|(_, t)| *t);
        println!(
            "  fdir watch of one process every {} ms: {:.4} % of one core{}",
            w.interval_ms,
            w.cpu_percent,
            target.map_or_else(String::new, |t| format!("   at most {t} %? {}", yes(w.cpu_percent <= t)))
        );
        println!(
            "    (for comparison, in the same window: a thread that reads and hashes the same files at that interval {:.4} %; one that only wakes up and sleeps again {:.4} %, which no periodic task can go below)",
            w.floor_percent, w.wake_percent
        );
        let t = &w.page_tax;
        let huge =
            t.huge_us.map_or_else(|| "no huge page to compare".to_owned(), |h| format!("{h:.2} us in a 2 MiB page"));
        let file = t.file_us.map_or_else(String::new, |f| format!(", {f:.2} us in a cached file"));
        println!(
            "    (touching a page of memory again after {} ms asleep costs {:.2} us here ({huge}{file}); a check touches few pages, but on a busy virtual machine each can cost this much)",
            w.interval_ms, t.small_us
        );
        if let Some(p) = w.pages {
            println!(
                "    (pages a check touched: {} of its own (fdir {}, heap {}, stack {}, other {}), at most {} of shared libraries)",
                p.own(),
                p.binary,
                p.heap,
                p.stack,
                p.anonymous,
                p.libraries_at_most
            );
        }
        println!(
            "  peak memory of that watch: {} KiB   at most {RSS_TARGET_KIB} KiB? {}",
            w.peak_rss_kib,
            yes(w.peak_rss_kib <= RSS_TARGET_KIB)
        );
    }
    if wants("node") {
        println!(
            "  a check of every process ({}): {:.2} ms, {:.1} us a process (memory-maps, seccomp, cgroups; no target)",
            r.node_processes, r.node_cycle_ms, r.node_per_process_us
        );
        match (r.sha256sum_ms, r.check_all_ratio) {
            (Some(sha), Some(ratio)) => println!(
                "  fdir check --all, run as a command: {:.2} ms, {ratio:.2} times sha256sum of the same files ({sha:.2} ms)   faster than sha256sum? {}{}",
                r.check_all_ms,
                yes(ratio < 1.0),
                if r.node_processes < 500 {
                    " (the target is set for 500 processes and more, where the start of a command weighs less: --processes 500)"
                } else {
                    ""
                }
            ),
            _ => println!(
                "  fdir check --all, run as a command: {:.2} ms (no sha256sum to compare with)",
                r.check_all_ms
            ),
        }
    }
    if let Some(t) = &r.triggers {
        super::bench_triggers::print_text(t);
    }
    if wants("code") {
        println!(
            "  code hashing: {:.0} MB/s ({} MB hashed)   at least {CODE_TARGET_MB_S:.0} MB/s? {}",
            r.code_mb_per_s,
            r.code_bytes / 1_000_000,
            yes(r.code_mb_per_s >= CODE_TARGET_MB_S)
        );
    }
}

/// What a user runs, each figure next to its target with a yes or no; the
/// seed subsystems' figures beside the default's, without targets.
fn print_deployments(deploy: &[Deployment]) {
    let Some(d) = deploy.iter().find(|d| d.subsystems == "default") else { return };
    let seed = deploy.iter().find(|d| d.subsystems == "seed");
    let beside = |f: &dyn Fn(&Deployment) -> String| {
        seed.map_or_else(String::new, |s| format!("   (seed subsystems: {})", f(s)))
    };
    println!(
        "What a user runs (fdir watch --all: every process, every default subsystem, every {} s; {} processes, measured at {} ms):",
        DEPLOYMENT_INTERVAL.as_secs(),
        d.processes,
        d.interval_ms
    );
    let ratio = |a: f64, b: Option<f64>| b.filter(|b| *b > 0.0).map(|b| a / b);
    let show =
        |r: Option<f64>| r.map_or_else(|| "no sha256sum to compare with".to_owned(), |r| format!("{r:.2}x sha256sum"));
    let check_all = ratio(d.check_all_ms, d.sha256sum_ms);
    println!(
        "  fdir check --all: {:.1} ms, {}   at most {DEPLOY_CHECK_ALL_TARGET}x? {}{}",
        d.check_all_ms,
        show(check_all),
        check_all.map_or("unknown", |r| yes(r <= DEPLOY_CHECK_ALL_TARGET)),
        beside(&|s| format!("{:.1} ms, {}", s.check_all_ms, show(ratio(s.check_all_ms, s.sha256sum_ms))))
    );
    let cycle = ratio(d.cycle_cpu_ms, d.sha256sum_ms);
    println!(
        "  one watch cycle of every process: {:.2} ms of CPU, {}   at most {DEPLOY_CYCLE_TARGET}x? {}{}",
        d.cycle_cpu_ms,
        show(cycle),
        cycle.map_or("unknown", |r| yes(r <= DEPLOY_CYCLE_TARGET)),
        beside(&|s| format!("{:.2} ms, {}", s.cycle_cpu_ms, show(ratio(s.cycle_cpu_ms, s.sha256sum_ms))))
    );
    if let Some(floor) = d.reads_floor_ms {
        println!(
            "    (reading those files alone, kept open, as the watch reads them: {floor:.2} ms, {}; the rest of the cycle is fdir's own work)",
            show(ratio(floor, d.sha256sum_ms))
        );
    }
    println!(
        "  at the default interval: {:.3} % of one core   within {DEPLOYMENT_CPU_TARGET} %? {}{}",
        d.default_interval_cpu_percent,
        yes(d.default_interval_cpu_percent <= DEPLOYMENT_CPU_TARGET),
        beside(&|s| format!("{:.3} %", s.default_interval_cpu_percent))
    );
    println!(
        "  peak memory: {} KiB   at most {DEPLOY_RSS_TARGET_KIB} KiB? {}{}",
        d.peak_rss_kib,
        yes(d.peak_rss_kib <= DEPLOY_RSS_TARGET_KIB),
        beside(&|s| format!("{} KiB", s.peak_rss_kib))
    );
    println!(
        "  baseline file: {} bytes   at most {DEPLOY_BASELINE_TARGET} bytes? {}{}",
        d.baseline_bytes,
        yes(d.baseline_bytes <= DEPLOY_BASELINE_TARGET),
        beside(&|s| format!("{} bytes", s.baseline_bytes))
    );
    println!("  (the targets are set for 500 idle processes in 5 cgroups: --processes 500 starts them, in one cgroup)");
    println!();
}

/// One process with every default subsystem, next to the seed's three
/// measured beside it, with the target and a yes or no.
fn print_one(o: &OneProcess) {
    println!(
        "One process, every default subsystem (fdir watch --pid P every {} ms, triggers off; the seed subsystems' watch of the same process in turns with it, {:.0} s each):",
        o.interval_ms, o.seconds
    );
    println!(
        "  {:.3} % of one core ({:.0} us a cycle), {:.2}x the seed subsystems' {:.3} % ({:.0} us a cycle)   at most {}x? {}",
        o.default_cpu_percent,
        o.default_cycle_us,
        o.ratio,
        o.seed_cpu_percent,
        o.seed_cycle_us,
        o.target,
        yes(o.met)
    );
    println!("  peak memory: {} KiB (seed subsystems: {} KiB)", o.peak_rss_kib[0], o.peak_rss_kib[1]);
    println!();
}

/// Runs the benchmark.
pub fn run(o: Options) -> Result<u8> {
    let Options { seconds, processes, pid: given, only, format } = o;
    let wants = |what: &str| only.split(',').any(|w| w.trim() == what);
    for w in only.split(',') {
        if !["check", "watch", "node", "code", "deploy", "one", "triggers"].contains(&w.trim()) {
            anyhow::bail!(
                "--only: unknown measurement {w:?}: expected deploy, one, check, watch, node, code, triggers"
            );
        }
    }
    let exe = std::env::current_exe().context("cannot find fdir's own executable")?;
    let say = |s: &str| {
        if format == Format::Text {
            eprintln!("{s}");
        }
    };
    let child = match given {
        Some(_) => None,
        None => Some(idle(&exe)?),
    };
    let pid = match (&child, given) {
        (Some(c), _) => c.0.id(),
        (None, Some(p)) => p,
        (None, None) => anyhow::bail!("no process to measure"),
    };
    let fs = Procfs::try_pid(pid)?;
    say("waiting for the measured process to settle ...");
    let seed = Subsystem::SEED;
    let baseline = snapshot_with(&SystemClock, &fs, seed)?;
    let maps_lines = {
        let mut b = Vec::new();
        fdir::Source::read(&fs, "maps", &mut b)?;
        b.iter().filter(|&&c| c == b'\n').count()
    };

    // One check (a confirmed cycle, the daemon's path) next to the floor.
    say("one process: a check, next to reading and hashing the same files ...");
    let mut checker = Checker::new();
    let mut tracker = Tracker::new(2);
    let mut cycle = || {
        let _ = tracker.cycle(&mut checker, &baseline, &SystemClock, &fs, seed);
    };
    let files = seed_files(pid)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut floor = || {
        for f in &files {
            read_and_hash(f, &mut buf);
        }
    };
    let (mut check_ns, mut floor_ns, mut check_default_ns) = (0.0, 0.0, 0.0);
    if wants("check") {
        let _ = time_per(200, &mut cycle);
        let _ = time_per(200, &mut floor);
        let mut rounds = 0u32;
        let until = Instant::now() + Duration::from_secs_f64(seconds * 0.4);
        let block = u32::try_from((2_000_000 / maps_lines.max(1)).clamp(20, 500)).unwrap_or(100);
        while Instant::now() < until || rounds < 4 {
            check_ns += time_per(block, &mut cycle);
            floor_ns += time_per(block, &mut floor);
            rounds += 1;
        }
        check_ns /= f64::from(rounds);
        floor_ns /= f64::from(rounds);

        let default = Subsystem::DEFAULT_PROCESS;
        let dbase = snapshot_with(&SystemClock, &fs, default)?;
        let mut dchecker = Checker::new();
        let mut dtracker = Tracker::new(2);
        let _ = time_per(100, || {
            let _ = dtracker.cycle(&mut dchecker, &dbase, &SystemClock, &fs, default);
        });
        check_default_ns = time_per(500, || {
            let _ = dtracker.cycle(&mut dchecker, &dbase, &SystemClock, &fs, default);
        });
    }

    // One process, every default subsystem, and the seed's beside it.
    let one = if wants("one") {
        say(&format!(
            "fdir watch of one process every {} ms, the default subsystems and the seed's side by side ...",
            ONE_PROCESS_INTERVAL.as_millis()
        ));
        Some(one_process(&exe, pid, ONE_PROCESS_INTERVAL, (seconds * 2.0).max(10.0))?)
    } else {
        None
    };

    // A real `fdir watch` of the process.
    let mut watch = Vec::new();
    if wants("watch") {
        for interval in [Duration::from_millis(100), Duration::from_secs(1)] {
            say(&format!(
                "fdir watch of one process every {} ms (measured once past its start-up) ...",
                interval.as_millis()
            ));
            watch.push(watch_cost(&exe, pid, interval, (seconds * 2.0).max(4.0))?);
        }
    }

    // The whole node.
    let (mut n, mut node_ns, mut node_default_ns, mut one_shot) = (0, 0.0, 0.0, None);
    if wants("node") {
        let extra: Vec<Kill> = (0..processes).map(|_| idle(&exe)).collect::<Result<_>>()?;
        if processes > 0 {
            say(&format!("started {processes} extra processes; letting them settle ..."));
            std::thread::sleep(fdir::SETTLE_YOUNGER_THAN + Duration::from_millis(200));
        }
        say("every process, memory-maps, seccomp and cgroups ...");
        let (mut monitor, _) = Monitor::baseline(Coverage::All, seed, 2, &SystemClock)?;
        let _ = monitor.cycle(&SystemClock);
        n = monitor.len().max(1);
        node_ns = time_per(10, || {
            let _ = monitor.cycle(&SystemClock);
        });
        drop(monitor);
        say("every process, the default subsystems ...");
        let (mut monitor, _) = Monitor::baseline(Coverage::All, Subsystem::DEFAULT_PROCESS, 2, &SystemClock)?;
        let _ = monitor.cycle(&SystemClock);
        node_default_ns = time_per(5, || {
            let _ = monitor.cycle(&SystemClock);
        });
        drop(monitor);
        say("fdir check --all against sha256sum ...");
        // Clamped to 10..=60 first: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rounds = (seconds * 2.0).clamp(10.0, 60.0) as u32;
        one_shot = Some(check_all_against_sha256sum(&exe, rounds)?);
        drop(extra);
    }

    // What a user runs: the whole node, every default subsystem; the seed
    // subsystems beside it.
    let mut deploy = Vec::new();
    if wants("deploy") {
        let extra: Vec<Kill> = (0..processes).map(|_| idle(&exe)).collect::<Result<_>>()?;
        if processes > 0 {
            say(&format!("started {processes} extra processes; letting them settle ..."));
            std::thread::sleep(fdir::SETTLE_YOUNGER_THAN + Duration::from_millis(200));
        }
        // `check --all` and `sha256sum` in turns, 30 rounds at the default
        // 5 s (each round is about 50 ms): the median of ten moved by 5%
        // from run to run. Clamped to 15..=120 first: the cast cannot
        // truncate.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rounds = (seconds * 6.0).clamp(15.0, 120.0) as u32;
        for subsystems in [None, Some("memory-maps,seccomp,cgroups")] {
            say(&format!(
                "fdir watch --all, {} subsystems, then check --all against sha256sum ...",
                if subsystems.is_some() { "the seed" } else { "the default" }
            ));
            deploy.push(deployment(&exe, subsystems, DEPLOY_MEASURED_INTERVAL, (seconds * 2.0).max(10.0), rounds)?);
        }
        drop(extra);
    }

    // Code hashing: whole sweeps of the measured process's code, as a check
    // with an unlimited budget reads them.
    let (mut code_bytes, mut code_time) = (0u64, 0.0f64);
    if wants("code") {
        say("hashing program code ...");
        let code = snapshot_with(&SystemClock, &fs, &[Subsystem::Code])?;
        let mut checker = Checker::with_code_budget(fdir::CodeBudget::UNLIMITED);
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < seconds * 0.2 || code_bytes == 0 {
            let v = checker.check(&code, &SystemClock, &fs, &[Subsystem::Code])?;
            code_bytes += v.report().code.map_or(0, |c| c.verified_bytes);
        }
        code_time = t.elapsed().as_secs_f64();
    }
    drop(child);

    // Triggers: only when asked for (it needs root, python3, node).
    let triggers = if wants("triggers") {
        say(&format!(
            "triggers: {} changes of each kind against a watch at 30 s, then its CPU beside a JIT ...",
            super::bench_triggers::REPETITIONS
        ));
        let dir = tempfile_dir()?;
        let r = super::bench_triggers::run(&exe, super::bench_triggers::REPETITIONS, (seconds * 4.0).max(10.0), &dir);
        let _ = std::fs::remove_dir_all(&dir);
        Some(r?)
    } else {
        None
    };

    #[allow(clippy::cast_precision_loss)]
    let results = Results {
        event: "bench",
        pid,
        maps_lines,
        check_seed_ns: check_ns,
        floor_seed_ns: floor_ns,
        ratio: check_ns / floor_ns,
        check_default_ns,
        watch,
        node_processes: n,
        node_cycle_ms: node_ns / 1e6,
        node_per_process_us: node_ns / 1e3 / n.max(1) as f64,
        node_default_cycle_ms: node_default_ns / 1e6,
        deployment_cpu_percent: node_default_ns / 1e9 / DEPLOYMENT_INTERVAL.as_secs_f64() * 100.0,
        check_all_ms: one_shot.map_or(0.0, |(f, _)| f),
        sha256sum_ms: one_shot.and_then(|(_, s)| s),
        check_all_ratio: one_shot.and_then(|(f, s)| s.map(|s| f / s)),
        code_mb_per_s: if code_time > 0.0 { code_bytes as f64 / code_time / 1e6 } else { 0.0 },
        code_bytes,
        triggers,
        deploy,
        one,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string(&results)?),
        Format::Text => print_text(&results, &wants),
    }
    Ok(0)
}

/// Reads a JSON watch's lines until it is past its start-up and its first
/// full vote of the baseline file (more than `DISK_VOTE_EVERY + 1` checks,
/// over `DISK_VOTE_GAP` and an interval since the first): the checks seen,
/// and whether it got there before its output ended.
fn until_steady(lines: &mut impl Iterator<Item = std::io::Result<String>>, interval: Duration) -> Result<(u64, bool)> {
    let (mut checks, mut first) = (0u64, None);
    for line in lines {
        if line?.contains("\"event\":\"check\"") {
            checks += 1;
            let since = *first.get_or_insert_with(Instant::now);
            if checks > DISK_VOTE_EVERY + 1 && since.elapsed() > DISK_VOTE_GAP + interval {
                return Ok((checks, true));
            }
        }
    }
    Ok((checks, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reads_floor_reads_a_child_s_files_and_counts_cpu() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let files: Vec<String> = ["maps", "status", "cgroup"].iter().map(|f| format!("/proc/{pid}/{f}")).collect();
        let floor = reads_floor(&files, Duration::from_millis(30));
        child.kill().unwrap();
        child.wait().unwrap();
        let floor = floor.unwrap();
        assert!(floor.is_finite() && floor > 0.0, "three files read in no time: {floor}");
        assert!(reads_floor(&["/nonexistent/maps".to_owned()], Duration::from_millis(1)).is_err());
    }

    #[test]
    fn touched_pages_are_sorted_by_the_kind_of_mapping() {
        let smaps = "\
55e4ee460000-55e4ee624000 r-xp 0007c000 fe:00 123 /usr/bin/fdir
Size:               1808 kB
Referenced:           72 kB
55e4ee624000-55e4ee62f000 r--p 00240000 fe:00 123 /usr/bin/fdir
Referenced:            8 kB
55e51d6cc000-55e51d70e000 rw-p 00000000 00:00 0 [heap]
Referenced:           92 kB
7fa014da2000-7fa014da5000 rw-p 00000000 00:00 0
Referenced:            8 kB
7fa014dcb000-7fa014f21000 r-xp 00026000 fe:00 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Referenced:          784 kB
7fa014fb8000-7fa014fba000 r-xp 00000000 00:00 0 [vdso]
Referenced:            4 kB
7ffda5102000-7ffda5123000 rw-p 00000000 00:00 0 [stack]
Referenced:           12 kB
VmFlags: rd wr mr mw me gd ac
";
        let t = count_touched(smaps, "/usr/bin/fdir");
        assert_eq!((t.binary, t.heap, t.stack, t.anonymous, t.libraries_at_most), (20, 23, 3, 2, 196));
        assert_eq!(t.own(), 48);
    }

    #[test]
    fn a_median_of_nothing_is_zero() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
