//! Responses: what a declared drift makes fdir do. The only module that
//! changes anything outside fdir: it freezes cgroups, stops processes and
//! runs the configured commands — each bounded by a timeout, a cooldown and a
//! limit on actions per window, so a fault can never start a response loop,
//! and each failure reported, never fatal.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::policy::{Actions, IsolateMethod};
use crate::source::{cgroupfs, parse_stat, parse_stat_ppid};
use crate::{Anomaly, CgroupMounts, Procfs, Severity, Source, Target, canon};

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Done,
    /// Tried and failed (the detail says why); fdir goes on.
    Failed,
    /// Not done: cooldown or action limit.
    Suppressed,
    /// Not done: passive mode (the detail says what would have been done).
    Passive,
    /// Not done: the policy names no command for this severity.
    NotConfigured,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Suppressed => "suppressed",
            Outcome::Passive => "passive",
            Outcome::NotConfigured => "not configured",
        })
    }
}

/// One action taken (or not) for a declared drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionReport {
    /// `on-anomaly`, `isolate`, `restart`, `degrade`, `safe-mode`.
    pub action: &'static str,
    /// The severity that called for it.
    pub severity: Severity,
    /// How it ended.
    pub outcome: Outcome,
    /// What was done, or why not: "froze cgroup /sys/fs/cgroup/app",
    /// "exit status 3", "timed out after 10s (killed)".
    pub detail: String,
}

/// Runs the responses of a policy.
///
/// Passive mode, the cooldown and the action limit are decided at once, on
/// the caller's thread. With [`Responder::run_beside`], commands then run on
/// a thread of their own (one at a time, in the order asked), so a command
/// that runs up to its timeout never holds up the checks; their reports come
/// back through [`Responder::finished`].
pub struct Responder {
    actions: Actions,
    /// When each (pid, start time, action) last acted.
    last: BTreeMap<(u32, u64, &'static str), Instant>,
    /// When actions ran, within the window.
    recent: VecDeque<Instant>,
    /// The thread commands run on, if started.
    runner: Option<Runner>,
    /// An action was counted since [`Responder::take_changed`] last asked.
    changed: bool,
    /// Where the state is kept, and the boot it is of.
    keep: Option<(String, KeepState)>,
}

/// What keeps a [`ResponseState`] (the watch: beside the baseline).
type KeepState = Box<dyn Fn(&ResponseState) + Send>;

/// An action of a drift, decided before any runs.
enum Plan {
    /// Not run: passive, cooldown, limit, not configured.
    Done(ActionReport),
    /// Isolate the target.
    Isolate,
    /// Run this command.
    Command(&'static str, String),
}

/// What a [`Responder`] remembers of the actions it took, to be kept with
/// the baseline (`baseline::save_state`) so that a restart resumes the
/// cooldowns and the action limit instead of acting again at once. Times are
/// of the monotonic clock (milliseconds since boot, suspend excluded), valid
/// only in the boot `boot_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseState {
    /// The boot the times are of.
    pub boot_id: String,
    /// When each action last ran for a target.
    pub last: Vec<LastAction>,
    /// When actions ran, within the window of the action limit.
    pub recent_ms: Vec<u64>,
}

/// When an action last ran for a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastAction {
    /// The target's pid (0 for the node).
    pub pid: u32,
    /// Its start time (clock ticks since boot).
    pub start_time: u64,
    /// The action: `on-anomaly`, `isolate`, `restart`, `degrade`, `safe-mode`.
    pub action: String,
    /// When, on the monotonic clock (ms).
    pub at_ms: u64,
}

/// The names of actions, as the responder keys them.
const ACTION_NAMES: [&str; 5] = ["on-anomaly", "isolate", "restart", "degrade", "safe-mode"];

/// The monotonic clock now (the clock [`Instant`] reads), in milliseconds.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC
    // always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

/// An action finished on the runner thread, for the target it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The target the action was for.
    pub target: Target,
    /// How it ended.
    pub report: ActionReport,
}

/// A command for the runner thread.
struct Job {
    cmd: String,
    action: &'static str,
    severity: Severity,
    target: Target,
    subsystems: String,
    ndjson: String,
    timeout: Duration,
}

/// The thread that runs commands beside the checks.
struct Runner {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Finished>,
    /// Set when fdir stops: commands queued and not yet started are not run.
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("actions", &self.actions)
            .field("last", &self.last)
            .field("recent", &self.recent)
            .field("runner", &self.runner)
            .field("keeps_state", &self.keep.is_some())
            .finish()
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner").field("running", &self.thread.is_some()).finish_non_exhaustive()
    }
}

/// What the environment of a command says about the drift.
struct Context<'a> {
    target: &'a Target,
    severity: Severity,
    subsystems: String,
    ndjson: &'a str,
}

impl Responder {
    /// A responder for `actions`.
    pub fn new(actions: Actions) -> Responder {
        Responder { actions, last: BTreeMap::new(), recent: VecDeque::new(), runner: None, changed: false, keep: None }
    }

    /// Whether an action was counted (towards a cooldown or the limit) since
    /// the last call: the state to keep has changed.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// What to keep of the actions taken: those still within their cooldown
    /// or the action limit's window.
    pub fn state(&self, boot_id: &str) -> ResponseState {
        let (now, mono) = (Instant::now(), monotonic_ms());
        let at =
            |t: &Instant| mono.saturating_sub(u64::try_from(now.duration_since(*t).as_millis()).unwrap_or(u64::MAX));
        let keep = self.actions.cooldown.max(self.actions.window);
        let last = self
            .last
            .iter()
            .filter(|(_, t)| now.duration_since(**t) < keep)
            .map(|((pid, start_time, action), t)| LastAction {
                pid: *pid,
                start_time: *start_time,
                action: (*action).to_owned(),
                at_ms: at(t),
            })
            .collect();
        let recent_ms = self.recent.iter().filter(|t| now.duration_since(**t) < self.actions.window).map(at).collect();
        ResponseState { boot_id: boot_id.to_owned(), last, recent_ms }
    }

    /// Resumes the cooldowns and the action limit from a kept state, if it is
    /// of this boot (`boot_id`); returns how many actions it remembered.
    pub fn resume(&mut self, state: &ResponseState, boot_id: &str) -> usize {
        if state.boot_id != boot_id {
            return 0;
        }
        let (now, mono) = (Instant::now(), monotonic_ms());
        // A time in the future (never written so) is taken as now.
        let instant = |ms: u64| now.checked_sub(Duration::from_millis(mono.saturating_sub(ms))).unwrap_or(now);
        for a in &state.last {
            if let Some(name) = ACTION_NAMES.iter().copied().find(|n| *n == a.action) {
                let t = instant(a.at_ms);
                let slot = self.last.entry((a.pid, a.start_time, name)).or_insert(t);
                *slot = (*slot).max(t);
            }
        }
        let mut recent: Vec<Instant> =
            state.recent_ms.iter().map(|ms| instant(*ms)).chain(self.recent.drain(..)).collect();
        recent.sort_unstable();
        self.recent = recent.into();
        state.last.len() + state.recent_ms.len()
    }

    /// Runs commands from now on on a thread of their own ("fdir-responder"),
    /// beside the checks; `notify` is called on that thread after each
    /// command has finished (to wake the caller, who then takes the reports
    /// from [`Responder::finished`]). If the thread cannot be started, the
    /// error is returned and commands go on running on the caller's thread.
    pub fn run_beside(&mut self, notify: impl Fn() + Send + 'static) -> std::io::Result<()> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (report, done) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stopping);
        let thread = std::thread::Builder::new().name("fdir-responder".into()).spawn(move || {
            for job in queue {
                let outcome = if stop.load(Ordering::SeqCst) {
                    Err(format!("{:?} not run: fdir stopped first", job.cmd))
                } else {
                    let ctx = Context {
                        target: &job.target,
                        severity: job.severity,
                        subsystems: job.subsystems.clone(),
                        ndjson: &job.ndjson,
                    };
                    run_command(&job.cmd, job.action, &ctx, job.timeout)
                };
                let done = finished(job.action, job.severity, outcome);
                if report.send(Finished { target: job.target, report: done }).is_err() {
                    return;
                }
                notify();
            }
        })?;
        self.runner = Some(Runner { jobs: Some(jobs), done, stopping, thread: Some(thread) });
        Ok(())
    }

    /// The commands that finished on the runner thread since the last call.
    pub fn finished(&mut self) -> Vec<Finished> {
        self.runner.as_ref().map(|r| r.done.try_iter().collect()).unwrap_or_default()
    }

    /// Stops the runner thread: the command running finishes (within its
    /// timeout), those queued are not run and are reported so. Returns every
    /// report not yet taken.
    pub fn stop(&mut self) -> Vec<Finished> {
        let Some(mut runner) = self.runner.take() else { return Vec::new() };
        runner.stopping.store(true, Ordering::SeqCst);
        runner.jobs = None;
        if let Some(thread) = runner.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the responder thread panicked");
        }
        runner.done.try_iter().collect()
    }

    /// The actions it runs.
    pub fn actions(&self) -> &Actions {
        &self.actions
    }

    /// Responds to the drifts declared together for one target: the
    /// `on-anomaly` command (every drift), then the severity's own action.
    /// `ndjson` is the anomaly events, one per line, given to commands on stdin.
    pub fn respond(
        &mut self,
        target: &Target,
        anomalies: &[Anomaly],
        severity: Severity,
        ndjson: &str,
    ) -> Vec<ActionReport> {
        let ctx = Context {
            target,
            severity,
            subsystems: anomalies.iter().map(|a| a.subsystem.name()).collect::<Vec<_>>().join(","),
            ndjson,
        };
        // First what is to be done, each action let through (and counted)
        // or not; then the state kept, before anything acts (a crash between
        // an action and the keeping of its count would act again at restart);
        // then the actions.
        let mut plans = Vec::new();
        if let Some(cmd) = self.actions.on_anomaly.clone() {
            plans.push(self.plan("on-anomaly", Some(cmd), &ctx));
        }
        match severity {
            Severity::Log => {}
            Severity::Isolate => {
                if self.actions.isolate == IsolateMethod::None {
                    plans.push(Plan::Done(report(
                        "isolate",
                        severity,
                        Outcome::NotConfigured,
                        "isolate = \"none\" in the policy",
                    )));
                } else {
                    plans.push(match self.permit("isolate", &ctx) {
                        Some(refused) => Plan::Done(refused),
                        None => Plan::Isolate,
                    });
                }
            }
            Severity::Restart | Severity::Degrade | Severity::SafeMode => {
                let (name, cmd) = match severity {
                    Severity::Restart => ("restart", self.actions.restart.clone()),
                    Severity::Degrade => ("degrade", self.actions.degrade.clone()),
                    _ => ("safe-mode", self.actions.safe_mode.clone()),
                };
                plans.push(self.plan(name, cmd, &ctx));
            }
        }
        if self.keep.is_some()
            && std::mem::take(&mut self.changed)
            && let Some((boot_id, keep)) = &self.keep
        {
            keep(&self.state(boot_id));
        }
        let mut out = Vec::new();
        for plan in plans {
            match plan {
                Plan::Done(r) => out.push(r),
                Plan::Isolate => out.push(finished("isolate", severity, self.isolate(target))),
                Plan::Command(name, cmd) => out.extend(self.command(name, &cmd, &ctx)),
            }
        }
        out
    }

    /// Responds to the drift of a kernel object that `targets` share (one
    /// root cause, docs/responses.md): the commands (`on-anomaly`,
    /// `restart`, `degrade`, `safe-mode`) run once, for the object, as for
    /// its first process (the object's event, with every pid, on their
    /// stdin); `isolate` acts on each of its processes, each with its own
    /// cooldown. Each report comes with the process it was for.
    pub fn respond_object(
        &mut self,
        targets: &[Target],
        anomalies: &[Anomaly],
        severity: Severity,
        ndjson: &str,
    ) -> Vec<(Target, ActionReport)> {
        let Some((first, rest)) = targets.split_first() else {
            return Vec::new();
        };
        let mut out: Vec<(Target, ActionReport)> =
            self.respond(first, anomalies, severity, ndjson).into_iter().map(|r| (first.clone(), r)).collect();
        if severity == Severity::Isolate {
            let on_anomaly = self.actions.on_anomaly.take();
            for t in rest {
                out.extend(self.respond(t, anomalies, severity, ndjson).into_iter().map(|r| (t.clone(), r)));
            }
            self.actions.on_anomaly = on_anomaly;
        }
        out
    }

    /// A command action: let through (counted), or the report why not.
    fn plan(&mut self, name: &'static str, cmd: Option<String>, ctx: &Context<'_>) -> Plan {
        let Some(cmd) = cmd else {
            return Plan::Done(report(
                name,
                ctx.severity,
                Outcome::NotConfigured,
                &format!("no {name} command in the policy"),
            ));
        };
        match self.permit(name, ctx) {
            Some(refused) => Plan::Done(refused),
            None => Plan::Command(name, cmd),
        }
    }

    /// Keeps the state ([`Responder::state`] for boot `boot_id`) with `keep`
    /// each time an action is counted, before the action runs: a restart
    /// that resumes it ([`Responder::resume`]) never runs an action twice
    /// within its cooldown, even if fdir died while it ran.
    pub fn keep_state_with(&mut self, boot_id: String, keep: impl Fn(&ResponseState) + Send + 'static) {
        self.keep = Some((boot_id, Box::new(keep)));
    }

    /// A command let through: on the runner thread if there is one (`None`:
    /// its report comes through [`Responder::finished`]), else here.
    fn command(&mut self, name: &'static str, cmd: &str, ctx: &Context<'_>) -> Option<ActionReport> {
        let timeout = self.actions.timeout;
        if let Some(jobs) = self.runner.as_ref().and_then(|r| r.jobs.as_ref()) {
            let job = Job {
                cmd: cmd.to_owned(),
                action: name,
                severity: ctx.severity,
                target: ctx.target.clone(),
                subsystems: ctx.subsystems.clone(),
                ndjson: ctx.ndjson.to_owned(),
                timeout,
            };
            match jobs.send(job) {
                Ok(()) => return None,
                Err(_) => tracing::warn!("the responder thread is gone: {name} runs on the check thread"),
            }
        }
        Some(finished(name, ctx.severity, run_command(cmd, name, ctx, timeout)))
    }

    /// `None` if passive mode, the cooldown and the action limit let
    /// action `name` run now (it is then counted as run), else the report
    /// that says why not.
    fn permit(&mut self, name: &'static str, ctx: &Context<'_>) -> Option<ActionReport> {
        let sev = ctx.severity;
        if self.actions.passive {
            return Some(report(name, sev, Outcome::Passive, &format!("passive mode: would run {name}")));
        }
        let now = Instant::now();
        let key = (ctx.target.pid().unwrap_or(0), ctx.target.pid_start(), name);
        if let Some(last) = self.last.get(&key)
            && now.duration_since(*last) < self.actions.cooldown
        {
            return Some(report(
                name,
                sev,
                Outcome::Suppressed,
                &format!(
                    "cooldown: the last {name} for this target was {} ago (cooldown {})",
                    humantime::format_duration(Duration::from_secs(now.duration_since(*last).as_secs())),
                    humantime::format_duration(self.actions.cooldown)
                ),
            ));
        }
        while self.recent.front().is_some_and(|t| now.duration_since(*t) >= self.actions.window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= usize::try_from(self.actions.max_actions).unwrap_or(usize::MAX) {
            return Some(report(
                name,
                sev,
                Outcome::Suppressed,
                &format!(
                    "limit: {} actions already in the last {}",
                    self.recent.len(),
                    humantime::format_duration(self.actions.window)
                ),
            ));
        }
        self.last.insert(key, now);
        self.recent.push_back(now);
        self.changed = true;
        None
    }

    fn isolate(&self, target: &Target) -> Result<String, String> {
        let Target::Process { pid, start_time, .. } = target else {
            return Err("only a process can be isolated".into());
        };
        if self.actions.isolate == IsolateMethod::Freeze {
            match own_cgroup(*pid) {
                Ok(Some(cg)) => return cg.freeze(),
                Ok(None) => {}
                Err(e) => tracing::debug!("isolate {pid}: {e}; stopping it instead"),
            }
        }
        stop(*pid, *start_time)
    }
}

/// The report of an action that ran.
fn finished(name: &'static str, severity: Severity, outcome: Result<String, String>) -> ActionReport {
    match outcome {
        Ok(detail) => report(name, severity, Outcome::Done, &detail),
        Err(detail) => report(name, severity, Outcome::Failed, &detail),
    }
}

/// Runs `cmd` with `/bin/sh -c`, the drift in its environment and the
/// anomaly events on stdin; kills it (and its process group) at the timeout.
fn run_command(cmd: &str, action: &str, ctx: &Context<'_>, timeout: Duration) -> Result<String, String> {
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(cmd)
        .env("FDIR_SEVERITY", ctx.severity.name())
        .env("FDIR_SUBSYSTEMS", &ctx.subsystems)
        .env("FDIR_ACTION", action)
        .stdin(Stdio::piped())
        // fdir's stdout carries its events: a command writes to stderr.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .process_group(0);
    if let Target::Process { pid, name, start_time } = ctx.target {
        c.env("FDIR_PID", pid.to_string()).env("FDIR_NAME", name).env("FDIR_START_TIME", start_time.to_string());
    }
    let mut child = c.spawn().map_err(|e| format!("cannot run /bin/sh -c {cmd:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let data = ctx.ndjson.as_bytes().to_vec();
        // A command that does not read its stdin must not block fdir.
        // Without a thread to be had, the command's stdin is closed
        // (it reads no anomalies) rather than fdir failing.
        let fed = std::thread::Builder::new().name("fdir-action-stdin".into()).spawn(move || {
            let _ = stdin.write_all(&data);
        });
        if let Err(e) = fed {
            tracing::warn!("{cmd:?}: no thread to write the anomalies to its stdin ({e}); it reads none");
        }
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                return Ok(format!("{cmd:?} exited 0 after {:.0?}", started.elapsed()));
            }
            Ok(Some(status)) => return Err(format!("{cmd:?} failed: {status}")),
            Ok(None) if started.elapsed() >= timeout => {
                let pgid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
                if let Some(pgid) = pgid {
                    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} timed out after {} (killed)", humantime::format_duration(timeout)));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for {cmd:?}: {e}")),
        }
    }
}

fn report(action: &'static str, severity: Severity, outcome: Outcome, detail: &str) -> ActionReport {
    ActionReport { action, severity, outcome, detail: detail.to_owned() }
}

/// A cgroup that can be frozen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezableCgroup {
    /// Its directory.
    pub dir: PathBuf,
    /// cgroup v2 (`cgroup.freeze`) or the v1 freezer (`freezer.state`).
    pub v2: bool,
}

impl FreezableCgroup {
    // Writes the freezer: the one file fdir changes (reads go through the source).
    #[allow(clippy::disallowed_methods)]
    fn freeze(&self) -> Result<String, String> {
        let (file, value) = if self.v2 { ("cgroup.freeze", "1") } else { ("freezer.state", "FROZEN") };
        let path = self.dir.join(file);
        std::fs::write(&path, value).map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))?;
        Ok(format!("froze cgroup {} ({file} = {value})", self.dir.display()))
    }

    /// Thaws it.
    #[allow(clippy::disallowed_methods)]
    pub fn thaw(&self) -> Result<(), String> {
        let (file, value) = if self.v2 { ("cgroup.freeze", "0") } else { ("freezer.state", "THAWED") };
        std::fs::write(self.dir.join(file), value).map_err(|e| e.to_string())
    }

    /// Whether it is frozen now.
    pub fn is_frozen(&self) -> bool {
        let mut buf = Vec::with_capacity(256);
        if self.v2 {
            cgroupfs::read(&self.dir, "cgroup.events", &mut buf).is_ok()
                && buf.split(|&b| b == b'\n').any(|l| l == b"frozen 1")
        } else {
            cgroupfs::read(&self.dir, "freezer.state", &mut buf).is_ok() && buf.trim_ascii() == b"FROZEN"
        }
    }
}

/// The pid of the parent of `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    let mut stat = Vec::with_capacity(512);
    Procfs::try_pid_once(pid).ok()?.read("stat", &mut stat).ok()?;
    parse_stat_ppid(&stat)
}

/// Whether `pid` is `ancestor` or one of its descendants.
fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..128 {
        if pid == ancestor {
            return true;
        }
        match parent_of(pid) {
            Some(p) if p > 0 && p != pid => pid = p,
            _ => return false,
        }
    }
    false
}

/// Whether every process of the cgroup `dir` and of every cgroup below it
/// is `ancestor` or one of its descendants (freezing a cgroup freezes its
/// whole subtree), and `dir` itself holds at least one. A subtree deeper than
/// [`SUBTREE_DEPTH`] or larger than [`SUBTREE_CGROUPS`] cgroups, or one that
/// cannot be read, is not vouched for.
fn all_descend(dir: &Path, ancestor: u32) -> bool {
    let Ok(pids) = cgroupfs::procs(dir) else { return false };
    let mut budget = SUBTREE_CGROUPS;
    !pids.is_empty()
        && pids.iter().all(|&p| descends_from(p, ancestor))
        && children_descend(dir, ancestor, SUBTREE_DEPTH, &mut budget)
}

/// The deepest subtree below a cgroup that [`all_descend`] looks through.
const SUBTREE_DEPTH: u32 = 32;
/// The most cgroups below a cgroup that [`all_descend`] looks through.
const SUBTREE_CGROUPS: u32 = 4096;

/// Whether every process in every cgroup below `dir` descends from `ancestor`.
fn children_descend(dir: &Path, ancestor: u32, depth: u32, budget: &mut u32) -> bool {
    let Ok(children) = cgroupfs::children(dir) else { return false };
    for child in children {
        if depth == 0 || *budget == 0 {
            return false;
        }
        *budget -= 1;
        let Ok(pids) = cgroupfs::procs(&child) else { return false };
        let outsider = pids.iter().any(|&p| !descends_from(p, ancestor));
        if outsider || !children_descend(&child, ancestor, depth - 1, budget) {
            return false;
        }
    }
    true
}

/// The cgroup of `pid` that holds, with every cgroup below it, only it and
/// its descendants (so freezing it freezes nothing else): its cgroup v2,
/// else its v1 freezer cgroup. The hierarchies are found where fdir sees
/// them mounted ([`CgroupMounts::discover`]); a path that leaves fdir's
/// cgroup namespace is never followed.
/// `Ok(None)` if it has no such cgroup.
pub fn own_cgroup(pid: u32) -> Result<Option<FreezableCgroup>, String> {
    let mut text = Vec::with_capacity(512);
    Procfs::try_pid_once(pid).and_then(|p| p.read("cgroup", &mut text)).map_err(|e| e.to_string())?;
    let memberships = canon::cgroup::parse(&text).map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    let mounts = CgroupMounts::discover().unwrap_or_default();
    let freezer = |name: &[u8]| name.split(|&b| b == b',').any(|c| c == b"freezer");
    // cgroup v2 first, then the v1 freezer.
    let candidates = memberships
        .iter()
        .filter(|(name, _)| *name == b"unified")
        .map(|m| (m, true))
        .chain(memberships.iter().filter(|(name, _)| freezer(name)).map(|m| (m, false)));
    for ((name, path), v2) in candidates {
        if *path == b"/" {
            continue;
        }
        let (Ok(name), Ok(path)) = (std::str::from_utf8(name), std::str::from_utf8(path)) else { continue };
        let Ok(dir) = mounts.dir(name, path) else { continue };
        let control = if v2 { "cgroup.freeze" } else { "freezer.state" };
        if cgroupfs::has_file(&dir, control) && all_descend(&dir, pid) {
            return Ok(Some(FreezableCgroup { dir, v2 }));
        }
    }
    Ok(None)
}

/// SIGSTOPs the process through a pidfd, after checking it is still the
/// process of the baseline (same start time), so a reused pid is never hit.
fn stop(pid: u32, start_time: u64) -> Result<String, String> {
    let raw = i32::try_from(pid).map_err(|e| e.to_string())?;
    let p = rustix::process::Pid::from_raw(raw).ok_or("pid 0")?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("cannot open a pidfd for {pid}: {e}"))?;
    // Pinned: every read below is of this process, or fails once it is gone.
    let proc = Procfs::try_pid_once(pid).map_err(|e| e.to_string())?;
    let mut stat = Vec::with_capacity(512);
    let state = |stat: &mut Vec<u8>| proc.read("stat", stat).ok().and_then(|()| parse_stat(stat));
    match state(&mut stat) {
        Some((_, _, st)) if st == start_time => {}
        _ => return Err(format!("process {pid} is not the baselined process any more; not stopping it")),
    }
    rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::STOP)
        .map_err(|e| format!("cannot stop {pid}: {e}"))?;
    // The signal is delivered when the process next runs: "stopped" is said
    // once its state shows it, within STOP_SEEN_WITHIN.
    let sent = Instant::now();
    loop {
        match state(&mut stat) {
            Some((_, b'T', st)) if st == start_time => {
                return Ok(format!("stopped process {pid} (SIGSTOP; resume it with kill -CONT {pid})"));
            }
            Some((_, _, st)) if st == start_time => {}
            _ => return Err(format!("process {pid} exited or was replaced while being stopped")),
        }
        if sent.elapsed() >= STOP_SEEN_WITHIN {
            return Ok(format!(
                "sent SIGSTOP to process {pid}, not yet seen stopped after {} (it stops when it next runs; \
                 resume it with kill -CONT {pid})",
                humantime::format_duration(STOP_SEEN_WITHIN)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How long [`stop`] waits to see the process stopped before it reports
/// the signal as sent.
const STOP_SEEN_WITHIN: Duration = Duration::from_secs(1);

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests touch files freely
mod tests {
    use super::*;
    use crate::Digest;
    use crate::Subsystem;

    fn me() -> Target {
        crate::Procfs::live().target().unwrap_or(Target::Mock)
    }

    fn anomaly() -> Anomaly {
        Anomaly { subsystem: Subsystem::Seccomp, expected: Digest::of(b"a"), actual: Digest::of(b"b"), changes: vec![] }
    }

    #[test]
    fn commands_get_the_drift_and_failures_are_reports() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let actions = Actions {
            on_anomaly: Some(format!("env | grep ^FDIR_ | sort > {0}; cat >> {0}", out.display())),
            restart: Some("exit 3".into()),
            cooldown: Duration::ZERO,
            ..Actions::default()
        };
        let mut r = Responder::new(actions);
        let reports = r.respond(&me(), &[anomaly()], Severity::Restart, "{\"event\":\"anomaly\"}\n");
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].outcome, Outcome::Done, "{reports:?}");
        assert_eq!(reports[1].outcome, Outcome::Failed);
        assert!(reports[1].detail.contains("exit status: 3"), "{}", reports[1].detail);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("FDIR_SEVERITY=restart"), "{text}");
        assert!(text.contains("FDIR_SUBSYSTEMS=seccomp"), "{text}");
        assert!(text.contains(&format!("FDIR_PID={}", std::process::id())), "{text}");
        assert!(text.ends_with("{\"event\":\"anomaly\"}\n"), "{text}");
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_timeout() {
        let actions = Actions {
            degrade: Some("sleep 30; echo never".into()),
            timeout: Duration::from_millis(200),
            ..Actions::default()
        };
        let mut r = Responder::new(actions);
        let start = Instant::now();
        let reports = r.respond(&me(), &[anomaly()], Severity::Degrade, "");
        assert_eq!(reports[0].outcome, Outcome::Failed);
        assert!(reports[0].detail.contains("timed out"), "{}", reports[0].detail);
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn an_object_runs_its_commands_once_and_isolates_each_process() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let append = |what: &str| format!("echo {what} $FDIR_PID >> {}", log.display());
        let actions = Actions {
            on_anomaly: Some(append("on-anomaly")),
            degrade: Some(append("degrade")),
            cooldown: Duration::ZERO,
            ..Actions::default()
        };
        let targets: Vec<Target> =
            (1..=3).map(|pid| Target::Process { pid: 900_000 + pid, start_time: 1, name: "x".into() }).collect();
        let mut r = Responder::new(actions.clone());
        let reports = r.respond_object(&targets, &[anomaly()], Severity::Degrade, "");
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert!(reports.iter().all(|(t, r)| *t == targets[0] && r.outcome == Outcome::Done), "{reports:?}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "on-anomaly 900001\ndegrade 900001\n");
        // Isolation is of each process (passive here: nothing is stopped);
        // the on-anomaly command still runs once.
        let mut r = Responder::new(Actions { passive: true, ..actions });
        let reports = r.respond_object(&targets, &[anomaly()], Severity::Isolate, "");
        let isolated: Vec<u32> =
            reports.iter().filter(|(_, r)| r.action == "isolate").filter_map(|(t, _)| t.pid()).collect();
        assert_eq!(isolated, [900_001, 900_002, 900_003]);
        assert_eq!(reports.iter().filter(|(_, r)| r.action == "on-anomaly").count(), 1, "{reports:?}");
    }

    #[test]
    fn cooldown_limit_and_passive() {
        let actions = Actions { safe_mode: Some("true".into()), max_actions: 2, ..Actions::default() };
        let mut r = Responder::new(actions.clone());
        let t = me();
        let first = r.respond(&t, &[anomaly()], Severity::SafeMode, "");
        assert_eq!(first[0].outcome, Outcome::Done);
        let again = r.respond(&t, &[anomaly()], Severity::SafeMode, "");
        assert_eq!(again[0].outcome, Outcome::Suppressed);
        assert!(again[0].detail.contains("cooldown"), "{}", again[0].detail);
        // Another target is not in cooldown, but the window limit applies.
        let other = Target::Process { pid: 1, start_time: 1, name: "x".into() };
        assert_eq!(r.respond(&other, &[anomaly()], Severity::SafeMode, "")[0].outcome, Outcome::Done);
        let third = Target::Process { pid: 2, start_time: 1, name: "y".into() };
        let limited = r.respond(&third, &[anomaly()], Severity::SafeMode, "");
        assert_eq!(limited[0].outcome, Outcome::Suppressed);
        assert!(limited[0].detail.contains("limit"), "{}", limited[0].detail);

        let mut passive = Responder::new(Actions { passive: true, ..actions });
        let p = passive.respond(&t, &[anomaly()], Severity::SafeMode, "");
        assert_eq!(p[0].outcome, Outcome::Passive);
        let none = passive.respond(&t, &[anomaly()], Severity::Restart, "");
        assert_eq!(none[0].outcome, Outcome::NotConfigured);
    }
}
