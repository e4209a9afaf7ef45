//! `fdir bench --only triggers`: how soon a watch at the default interval
//! (30 s) reports a real change that a trigger source sees, and what the
//! triggers cost beside a JIT-heavy process (docs/triggers.md).
//!
//! - **Latency.** One `fdir watch --interval 30s` of two processes: a
//!   `python3` in a scratch `pids` cgroup and a `sleep` in a mount namespace
//!   of its own (`unshare --mount --propagation private`). Each fault is
//!   made and undone `REPETITIONS` times by a real tool: the effective uid
//!   changed by `setresuid(2)` in the python process (the proc connector), a
//!   tmpfs mounted by `nsenter -t PID -m mount` (mountinfo), `pids.max`
//!   written (inotify). The time is taken from just before the tool is
//!   started (or the write made) to the moment the watch's `anomaly` line is
//!   read: an upper bound, which includes the tool's own start-up and the
//!   pipe. Each repetition waits for the `recovered` of the undo first, and
//!   half a second more: changes one at a time, as an intruder makes them
//!   (back to back, a hundred changes a second are a storm, and the budget
//!   of triggered checks, 5% of a core, defers them: docs/triggers.md).
//! - **CPU beside a JIT.** A node process compiling new functions all the
//!   time, watched by two `fdir watch --interval 30s` at once, one with
//!   triggers and one with `--triggers off`: their CPU over the same window;
//!   the difference is what the triggers cost.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

/// Changes made and undone per fault.
pub const REPETITIONS: usize = 50;
/// The watch's interval: the default deployment's.
const INTERVAL: &str = "30s";
/// How long one anomaly is waited for before the repetition counts as
/// missed by the triggers (the timer would see it within 30 s).
const WAIT: Duration = Duration::from_secs(10);
/// The pause before each change (and its undo).
const PAUSE: Duration = Duration::from_millis(500);
/// The latency target: p99 at most this, ms.
pub const P99_TARGET_MS: f64 = 20.0;
/// The extra CPU target beside a JIT, percent of one core.
pub const JIT_CPU_TARGET: f64 = 1.0;

/// What `--only triggers` measured.
#[derive(Debug, Serialize)]
pub struct TriggerBench {
    /// The watch's interval, ms.
    pub interval_ms: u64,
    /// One entry per fault.
    pub faults: Vec<FaultLatency>,
    /// Faults that could not be made here, with why.
    pub skipped: Vec<String>,
    /// The CPU of a watch beside a JIT-heavy node process (absent without node).
    pub jit: Option<JitCpu>,
}

/// The time from a change to its `anomaly`, over the repetitions.
#[derive(Debug, Serialize)]
pub struct FaultLatency {
    /// The change, and the tool that made it.
    pub fault: String,
    /// The subsystem that reports it.
    pub subsystem: String,
    /// The trigger source that sees it.
    pub source: String,
    /// Repetitions caught (each within [`WAIT`]).
    pub caught: usize,
    /// Repetitions made.
    pub made: usize,
    /// Median, 99th percentile, and the slowest, ms.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank), ms.
    pub p99_ms: f64,
    /// The slowest, ms.
    pub max_ms: f64,
}

/// The CPU of two watches of a JIT-heavy node process, in the same window.
#[derive(Debug, Serialize)]
pub struct JitCpu {
    /// The window, s.
    pub seconds: f64,
    /// With `--triggers auto`, percent of one core.
    pub with_triggers_percent: f64,
    /// With `--triggers off`.
    pub without_triggers_percent: f64,
    /// The difference.
    pub extra_percent: f64,
    /// The sources that ran.
    pub sources: Vec<String>,
}

/// A child process killed and reaped on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running watch: its lines, each with the moment it was read.
struct Watch {
    _child: Kill,
    pid: u32,
    lines: Receiver<(Instant, Value)>,
    kept: VecDeque<(Instant, Value)>,
    /// Its `started` event.
    started: Option<Value>,
}

impl Watch {
    fn start(exe: &Path, args: &[String]) -> Result<Watch> {
        let mut child = Command::new(exe)
            .arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start fdir watch")?;
        let out = child.stdout.take().context("no stdout")?;
        let pid = child.id();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        });
        let mut w = Watch { _child: Kill(child), pid, lines, kept: VecDeque::new(), started: None };
        w.started = w.wait(Duration::from_secs(120), |v| field(v, "event") == "started").map(|(_, v)| v);
        w.wait(Duration::from_secs(120), |v| field(v, "event") == "check").context("the watch made no first check")?;
        Ok(w)
    }

    /// The first line matching `pred` within `d` (lines before it are
    /// dropped), with when it was read.
    fn wait(&mut self, d: Duration, pred: impl Fn(&Value) -> bool) -> Option<(Instant, Value)> {
        let end = Instant::now() + d;
        loop {
            while let Some((t, v)) = self.kept.pop_front() {
                if pred(&v) {
                    return Some((t, v));
                }
            }
            let left = end.checked_duration_since(Instant::now())?;
            let (t, v) = self.lines.recv_timeout(left).ok()?;
            self.kept.push_back((t, v));
        }
    }

    fn started(&self) -> Option<Value> {
        self.started.clone()
    }
}

/// A python3 process that runs each line it is sent.
struct Py {
    child: Kill,
    stdin: ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}

impl Py {
    fn spawn() -> Result<Py> {
        let script = "import os, sys\nprint('ready', flush=True)\nfor line in sys.stdin:\n    exec(line)\n    print('ok', flush=True)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start python3")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ready", "python3 said {line:?}");
        Ok(Py { child: Kill(child), stdin, out })
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn run(&mut self, statement: &str) -> Result<()> {
        writeln!(self.stdin, "{statement}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        anyhow::ensure!(line.trim() == "ok", "python3 ran {statement:?}: {line:?}");
        Ok(())
    }
}

/// A scratch cgroup of the `pids` controller, removed on drop.
struct Scratch {
    dir: PathBuf,
    root: PathBuf,
}

impl Scratch {
    /// In the v1 `pids` hierarchy, or in cgroup v2 where its root delegates
    /// `pids`.
    fn new() -> Result<Scratch> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")?;
        let mut root = None;
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let point = left.split(' ').nth(4).unwrap_or("");
            let mut r = right.split(' ');
            let (fstype, opts) = (r.next().unwrap_or(""), r.nth(1).unwrap_or(""));
            let v1 = fstype == "cgroup" && opts.split(',').any(|o| o == "pids");
            let v2 = fstype == "cgroup2"
                && std::fs::read_to_string(Path::new(point).join("cgroup.subtree_control"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"));
            if v1 || v2 {
                root = Some(PathBuf::from(point));
                break;
            }
        }
        let root = root.context("no cgroup hierarchy with the pids controller")?;
        let dir = root.join(format!("fdir-bench-triggers-{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch { dir, root })
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        std::fs::write(self.dir.join(file), value).with_context(|| format!("cannot write {file}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A field of an event, `null` when absent.
fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.get(name).unwrap_or(&Value::Null)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).or(sorted.last()).copied().unwrap_or(0.0)
}

fn is(event: &'static str, pid: u32, subsystem: &'static str) -> impl Fn(&Value) -> bool {
    move |v| field(v, "event") == event && field(v, "pid") == pid && field(v, "subsystem") == subsystem
}

/// Makes and undoes one fault `reps` times against the watch.
fn measure(
    w: &mut Watch,
    reps: usize,
    (fault, subsystem, source): (&str, &'static str, &str),
    pid: u32,
    mut make: impl FnMut() -> Result<()>,
    mut undo: impl FnMut() -> Result<()>,
) -> Result<FaultLatency> {
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        // One change at a time, as an intruder makes them: the triggered
        // checks' budget (5% of a core) has refilled between two.
        std::thread::sleep(PAUSE);
        let t0 = Instant::now();
        make()?;
        if let Some((t1, _)) = w.wait(WAIT, is("anomaly", pid, subsystem)) {
            times.push(t1.duration_since(t0).as_secs_f64() * 1e3);
        }
        undo()?;
        w.wait(Duration::from_secs(45), is("recovered", pid, subsystem))
            .with_context(|| format!("{fault}: no recovery after the undo"))?;
    }
    times.sort_by(f64::total_cmp);
    Ok(FaultLatency {
        fault: fault.to_owned(),
        subsystem: subsystem.to_owned(),
        source: source.to_owned(),
        caught: times.len(),
        made: reps,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
        max_ms: times.last().copied().unwrap_or(0.0),
    })
}

/// The soft and hard open-files limit of `pid`, as prlimit takes them back.
fn open_files_limit(pid: u32) -> Result<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = text.lines().find(|l| l.starts_with("Max open files")).context("no open-files limit")?;
    let mut words = line.trim_start_matches("Max open files").split_whitespace();
    let soft = words.next().context("no soft limit")?.to_owned();
    let hard = words.next().context("no hard limit")?.to_owned();
    Ok((soft, hard))
}

fn tool(program: &str, args: &[&str]) -> Result<()> {
    let s = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    anyhow::ensure!(s.success(), "{program} {}: {s}", args.join(" "));
    Ok(())
}

/// Runs the measurement.
pub fn run(exe: &Path, reps: usize, seconds: f64, dir: &Path) -> Result<TriggerBench> {
    let mut skipped = Vec::new();
    let mut py = Py::spawn()?;
    // ctypes loaded before the baseline: its libraries are part of it.
    py.run(
        "import ctypes; libc = ctypes.CDLL(None); libc.mmap.restype = ctypes.c_void_p; \
         libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]; \
         libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]; \
         libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]",
    )?;
    let cgroup = match Scratch::new() {
        Ok(s) => match s.write("pids.max", "1000").and_then(|()| s.write("cgroup.procs", &py.pid().to_string())) {
            Ok(()) => Some(s),
            Err(e) => {
                skipped.push(format!("pids.max write: {e:#}"));
                None
            }
        },
        Err(e) => {
            skipped.push(format!("pids.max write: {e:#}"));
            None
        }
    };
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    let sleeper = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sleep", "3600"])
        .stdin(Stdio::null())
        .spawn()
        .map(Kill);
    // Settled in its own namespace (unshare has exec'd sleep).
    std::thread::sleep(Duration::from_millis(300));
    let mut args: Vec<String> = ["--interval", INTERVAL, "--format", "json", "--pid"].map(String::from).to_vec();
    args.push(py.pid().to_string());
    if let Ok(s) = &sleeper {
        args.extend(["--pid".to_owned(), s.0.id().to_string()]);
    }
    args.extend(["--baseline".to_owned(), dir.join("triggers-baseline.json").display().to_string()]);
    let mut w = Watch::start(exe, &args)?;
    let mut faults = Vec::new();

    let pid = py.pid();
    let py = std::cell::RefCell::new(py);
    faults.push(measure(
        &mut w,
        reps,
        ("effective uid changed (setresuid in python3)", "credentials", "connector"),
        pid,
        || py.borrow_mut().run("os.setresuid(0, 65534, 0)"),
        || py.borrow_mut().run("os.setresuid(0, 0, 0)"),
    )?);

    match &sleeper {
        Ok(s) => {
            let spid = s.0.id().to_string();
            let m = mnt.display().to_string();
            faults.push(measure(
                &mut w,
                reps,
                ("tmpfs mounted in its mount namespace (nsenter -m mount)", "mounts", "mountinfo"),
                s.0.id(),
                || tool("nsenter", &["-t", &spid, "-m", "mount", "-t", "tmpfs", "fdir-bench", &m]),
                || tool("nsenter", &["-t", &spid, "-m", "umount", &m]),
            )?);
        }
        Err(e) => skipped.push(format!("mount: cannot start unshare: {e}")),
    }
    // What only the eBPF source sees: a real prlimit from outside, and the
    // process's own mprotect(PROT_EXEC) of a new anonymous page.
    let ebpf_runs =
        w.started().is_some_and(|v| field(&v, "triggers").as_array().is_some_and(|t| t.iter().any(|s| s == "ebpf")));
    if ebpf_runs {
        let spid = pid.to_string();
        let (soft, hard) = open_files_limit(pid)?;
        // The soft limit only: raising a hard limit back takes
        // CAP_SYS_RESOURCE, which a container's root may lack.
        let lower = format!("--nofile=64:{hard}");
        let back = format!("--nofile={soft}:{hard}");
        faults.push(measure(
            &mut w,
            reps,
            ("open-files soft limit lowered (prlimit --pid)", "limits", "ebpf"),
            pid,
            || tool("prlimit", &["--pid", &spid, &lower]),
            || tool("prlimit", &["--pid", &spid, &back]),
        )?);
        faults.push(measure(
            &mut w,
            reps,
            ("anonymous page made executable (mprotect PROT_EXEC)", "memory-maps", "ebpf"),
            pid,
            || py.borrow_mut().run("a = libc.mmap(None, 4096, 3, 0x22, -1, 0); assert libc.mprotect(a, 4096, 5) == 0"),
            // munmap is no call the eBPF source records (it weakens
            // nothing): a prctl(PR_SET_DUMPABLE, 1) that changes nothing
            // has the watch look again at once, so the next change starts
            // from the baseline without waiting out the 30 s timer.
            || py.borrow_mut().run("assert libc.munmap(a, 4096) == 0; assert libc.prctl(4, 1, 0, 0, 0) == 0"),
        )?);
    } else {
        skipped.push("prlimit and mprotect(PROT_EXEC): the eBPF source is not running".to_owned());
    }
    if let Some(cg) = &cgroup {
        faults.push(measure(
            &mut w,
            reps,
            ("pids.max lowered (a write to cgroupfs)", "cgroup-limits", "inotify"),
            pid,
            || cg.write("pids.max", "50"),
            || cg.write("pids.max", "1000"),
        )?);
    }
    drop(w);
    drop(sleeper);
    drop(cgroup);
    drop(py);

    let jit = match jit_cpu(exe, seconds, dir) {
        Ok(j) => Some(j),
        Err(e) => {
            skipped.push(format!("CPU beside a JIT: {e:#}"));
            None
        }
    };
    Ok(TriggerBench { interval_ms: 30_000, faults, skipped, jit })
}

/// A node process that compiles new functions all the time (a JIT under
/// load); shared by `fdir bench --only triggers` and the trigger tests.
const NODE_SCRIPT: &str = include_str!("../../scripts/jit-churn.js");

/// Two watches of a JIT-heavy node process, with and without triggers.
fn jit_cpu(exe: &Path, seconds: f64, dir: &Path) -> Result<JitCpu> {
    let script = dir.join("jit.js");
    std::fs::write(&script, NODE_SCRIPT)?;
    let mut node = Command::new("node")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Kill)
        .context("cannot start node")?;
    let mut ready = String::new();
    BufReader::new(node.0.stdout.take().context("no stdout")?).read_line(&mut ready)?;
    anyhow::ensure!(ready.trim() == "ready", "node said {ready:?}");
    let pid = node.0.id().to_string();
    let args = |name: &str, more: &[&str]| {
        let mut a: Vec<String> =
            ["--pid", &pid, "--interval", INTERVAL, "--format", "json"].iter().map(|s| (*s).to_owned()).collect();
        a.extend(["--baseline".to_owned(), dir.join(name).display().to_string()]);
        a.extend(more.iter().map(|s| (*s).to_owned()));
        a
    };
    let with = Watch::start(exe, &args("jit-with.json", &[]))?;
    let without = Watch::start(exe, &args("jit-without.json", &["--triggers", "off"]))?;
    let sources: Vec<String> = with
        .started()
        .and_then(|s| {
            field(&s, "triggers").as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        })
        .unwrap_or_default();
    std::thread::sleep(Duration::from_secs(1));
    let (a0, b0, t0) = (super::bench::cpu_ns(with.pid)?, super::bench::cpu_ns(without.pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (a1, b1, t1) = (super::bench::cpu_ns(with.pid)?, super::bench::cpu_ns(without.pid)?, Instant::now());
    #[allow(clippy::cast_precision_loss)]
    let pct = |c: u64| 100.0 * c as f64 / (t1 - t0).as_nanos() as f64;
    let (a, b) = (pct(a1.saturating_sub(a0)), pct(b1.saturating_sub(b0)));
    Ok(JitCpu {
        seconds: (t1 - t0).as_secs_f64(),
        with_triggers_percent: a,
        without_triggers_percent: b,
        extra_percent: a - b,
        sources,
    })
}

/// The text report.
pub fn print_text(r: &TriggerBench) {
    println!(
        "  triggers: from a change to its anomaly, a watch at --interval {} s (upper bounds: from the start of the tool)",
        r.interval_ms / 1000
    );
    for f in &r.faults {
        println!(
            "    {} [{} via {}]: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} caught by the trigger)   p99 at most {P99_TARGET_MS} ms? {}",
            f.fault,
            f.subsystem,
            f.source,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            f.caught,
            f.made,
            if f.p99_ms <= P99_TARGET_MS && f.caught == f.made { "yes" } else { "NO" }
        );
    }
    for s in &r.skipped {
        println!("    not measured: {s}");
    }
    if let Some(j) = &r.jit {
        println!(
            "  triggers beside a JIT-heavy node process ({} s): {:.3} % of one core with triggers ({}), {:.3} % without: {:+.3} %   at most {JIT_CPU_TARGET} %? {}",
            j.seconds.round(),
            j.with_triggers_percent,
            j.sources.join(" "),
            j.without_triggers_percent,
            j.extra_percent,
            if j.extra_percent <= JIT_CPU_TARGET { "yes" } else { "NO" }
        );
    }
}
