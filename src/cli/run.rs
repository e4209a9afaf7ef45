//! The three commands: snapshot, check, watch.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use fdir::baseline::{self, BaselineFile, Coverage, Key};
use fdir::event::EventRecord;
use fdir::metrics::{self, Metrics};
use fdir::{
    Clock, CodeBudget, Error, Finding, Monitor, Scope, Severity, Subsystem, SystemClock, Target, default_handler,
};

use super::args::{FileArgs, Format, Subsystems, TargetArgs};
use super::output::{Output, TEXT_LIST_LIMIT};

/// Exit codes (DESIGN.md §3).
pub const NO_DRIFT: u8 = 0;
/// Drift found.
pub const DRIFT: u8 = 1;
/// Could not check.
pub const CANNOT_CHECK: u8 = 2;

/// The subsystems used when none are given: every default subsystem of the
/// coverage's scope (not the intrusive seccomp-filters and code).
fn default_subsystems(coverage: &Coverage) -> Vec<Subsystem> {
    let scope = if *coverage == Coverage::System { Scope::Node } else { Scope::Process };
    Subsystem::ALL.iter().copied().filter(|s| s.scope() == scope && s.is_default()).collect()
}

fn chosen_subsystems(coverage: &Coverage, given: Option<Subsystems>) -> Result<Vec<Subsystem>> {
    let scope = if *coverage == Coverage::System { Scope::Node } else { Scope::Process };
    match given {
        None => Ok(default_subsystems(coverage)),
        Some(Subsystems(list)) => {
            // `all` means every subsystem of the coverage's scope.
            let list: Vec<Subsystem> =
                if list == Subsystem::ALL { list.into_iter().filter(|s| s.scope() == scope).collect() } else { list };
            if let Some(s) = list.iter().find(|s| s.scope() != scope) {
                bail!("the {s} subsystem does not apply to {coverage}");
            }
            if list.is_empty() {
                bail!("no subsystem applies to {coverage}");
            }
            Ok(list)
        }
    }
}

fn load_key(file: &FileArgs) -> Result<Option<Key>> {
    file.key.as_deref().map(Key::from_file).transpose().map_err(Into::into)
}

/// Loads and checks the baseline file: integrity, key, boot.
fn load_baseline(file: &FileArgs, key: Option<&Key>) -> Result<BaselineFile> {
    let loaded = baseline::load(&file.baseline, key)?;
    if loaded.coverage != Coverage::System
        && let Some(then) = &loaded.boot_id
    {
        let now = fdir::boot_id()?;
        if *then != now {
            bail!(
                "baseline file {} was taken in another boot of this machine (boot id {then}, now {now}): process identities do not survive a reboot; take a new baseline",
                file.baseline.display()
            );
        }
    }
    Ok(loaded)
}

/// Restricts a loaded baseline to the targets asked for on the command line.
fn restrict(mut loaded: BaselineFile, asked: Option<Coverage>, path: &Path) -> Result<BaselineFile> {
    let Some(asked) = asked else { return Ok(loaded) };
    if asked == loaded.coverage {
        return Ok(loaded);
    }
    match &asked {
        Coverage::Pids { pids } => {
            for pid in pids {
                if !loaded.targets.iter().any(|t| t.target.pid() == Some(*pid)) {
                    bail!(
                        "baseline file {} holds no baseline of process {pid}: take one with fdir snapshot --pid {pid}",
                        path.display()
                    );
                }
            }
            loaded.targets.retain(|t| t.target.pid().is_some_and(|p| pids.contains(&p)));
            loaded.coverage = asked;
            Ok(loaded)
        }
        _ => bail!(
            "baseline file {} covers {}, not {asked}: take a new baseline (fdir snapshot, or watch --rebaseline)",
            path.display(),
            loaded.coverage
        ),
    }
}

fn save(file: &FileArgs, key: Option<&Key>, m: &Monitor, clock: &SystemClock) -> Result<usize> {
    let snapshots = m.snapshots();
    let n = snapshots.len();
    let mut f = BaselineFile::new(clock.wall(), m.coverage().clone(), m.subsystems(), snapshots);
    f.boot_id = Some(fdir::boot_id()?);
    baseline::save(&file.baseline, &f, key)?;
    Ok(n)
}

/// Prints the findings of a baseline: each target, or (text, many targets) a summary.
fn report_baseline(out: &mut Output, findings: &[Finding], now: SystemTime) -> Result<()> {
    let baselined: Vec<&Target> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Baselined { snapshot, .. } => Some(&snapshot.target),
            _ => None,
        })
        .collect();
    let compact = out.format() == Format::Text && baselined.len() > TEXT_LIST_LIMIT;
    for f in findings {
        if compact && matches!(f, Finding::Baselined { .. }) {
            continue;
        }
        for e in EventRecord::from_finding(now, f, Severity::Log) {
            out.emit(&e)?;
        }
    }
    if compact {
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for t in &baselined {
            if let Target::Process { name, .. } = t {
                *names.entry(name.clone()).or_default() += 1;
            }
        }
        let list: Vec<String> =
            names.iter().map(|(n, c)| if *c == 1 { n.clone() } else { format!("{n} x{c}") }).collect();
        out.say(&format!("baselined {} processes: {}", baselined.len(), list.join(", ")))?;
    }
    Ok(())
}

/// `fdir snapshot`.
pub fn snapshot(target: TargetArgs, file: FileArgs, subsystems: Option<Subsystems>, format: Format) -> Result<u8> {
    let clock = SystemClock;
    let coverage = target.coverage().unwrap_or(Coverage::All);
    let subsystems = chosen_subsystems(&coverage, subsystems)?;
    let key = load_key(&file)?;
    let mut out = Output::new(format);
    let (monitor, findings) = Monitor::baseline(coverage, &subsystems, 2, &clock)?;
    report_baseline(&mut out, &findings, clock.wall())?;
    let n = save(&file, key.as_ref(), &monitor, &clock)?;
    out.say(&format!(
        "wrote the baseline of {n} target{} ({}) to {}{}",
        if n == 1 { "" } else { "s" },
        names(monitor.subsystems()),
        file.baseline.display(),
        if key.is_some() { ", signed" } else { "" }
    ))?;
    Ok(NO_DRIFT)
}

fn names(subsystems: &[Subsystem]) -> String {
    subsystems.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
}

/// Grades each drift finding and turns findings into events.
fn events_of(findings: &[Finding], now: SystemTime) -> Vec<(EventRecord, Option<Severity>)> {
    let mut events = Vec::new();
    for f in findings {
        let severity = match f {
            Finding::Drift { anomalies, .. } => default_handler(anomalies),
            _ => Severity::Log,
        };
        for e in EventRecord::from_finding(now, f, severity) {
            let graded = matches!(e, EventRecord::Anomaly { .. }).then_some(severity);
            events.push((e, graded));
        }
    }
    events
}

/// `fdir check`. A one-shot check verifies all of the code unless a budget
/// is given.
pub fn check(
    target: TargetArgs,
    file: FileArgs,
    format: Format,
    confirm: u32,
    code_budget: Option<CodeBudget>,
) -> Result<u8> {
    let clock = SystemClock;
    let key = load_key(&file)?;
    let loaded = restrict(load_baseline(&file, key.as_ref())?, target.coverage(), &file.baseline)?;
    let strict = loaded.coverage != Coverage::All;
    let mut out = Output::new(format);
    let mut code = NO_DRIFT;
    let (mut monitor, findings) = Monitor::resume(&loaded, confirm)?;
    monitor.set_code_budget(code_budget.unwrap_or(CodeBudget::UNLIMITED));
    let (cycle, summary) = monitor.cycle(&clock);
    let now = clock.wall();
    for f in findings.iter().chain(cycle.iter()) {
        code = code.max(match f {
            Finding::Drift { .. } => DRIFT,
            Finding::Exited { .. } | Finding::Reused { .. } if strict => CANNOT_CHECK,
            Finding::Failed { .. } => CANNOT_CHECK,
            _ => NO_DRIFT,
        });
    }
    for (e, _) in events_of(&findings, now).into_iter().chain(events_of(&cycle, now)) {
        out.emit(&e)?;
    }
    out.emit(&EventRecord::check(now, 1, &summary))?;
    if monitor.is_empty() && strict {
        code = CANNOT_CHECK;
    }
    Ok(code)
}

/// What the watch loop waits for between checks.
enum Wake {
    Check,
    Stop(&'static str),
    Rebaseline,
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
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

/// `fdir watch`.
#[allow(clippy::too_many_arguments)]
pub fn watch(
    target: TargetArgs,
    file: FileArgs,
    interval: Duration,
    format: Format,
    subsystems: Option<Subsystems>,
    confirm: u32,
    rebaseline: bool,
    metrics_addr: Option<String>,
    code_budget: Option<CodeBudget>,
) -> Result<u8> {
    let code_budget = code_budget.unwrap_or(CodeBudget::DEFAULT);
    let clock = SystemClock;
    let key = load_key(&file)?;
    let mut out = Output::new(format);
    let systemd = Systemd::new();

    // Signals first: a SIGTERM during a long baseline still ends fdir cleanly.
    let (tx, rx) = mpsc::channel::<i32>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let signal_handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("fdir-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signal thread")?;

    let use_file = !rebaseline && file.baseline.exists();
    let (mut monitor, findings) = if use_file {
        let loaded = restrict(load_baseline(&file, key.as_ref())?, target.coverage(), &file.baseline)?;
        let (m, mut findings) = Monitor::resume(&loaded, confirm)?;
        let resumed: Vec<Finding> = loaded
            .targets
            .iter()
            .filter(|s| !findings.iter().any(|f| matches!(f, Finding::Exited { target } | Finding::Reused { baseline: target, .. } if target.same_as(&s.target))))
            .map(|s| Finding::Baselined { snapshot: Box::new(s.clone()), first_sight: false })
            .collect();
        findings.splice(0..0, resumed);
        (m, findings)
    } else {
        let coverage = target.coverage().unwrap_or(Coverage::All);
        let subsystems = chosen_subsystems(&coverage, subsystems)?;
        let (m, findings) = Monitor::baseline(coverage, &subsystems, confirm, &clock)?;
        save(&file, key.as_ref(), &m, &clock)?;
        (m, findings)
    };
    monitor.set_code_budget(code_budget);

    let metrics = Arc::new(Metrics::new());
    let _server = match &metrics_addr {
        Some(addr) => Some(metrics::serve(Arc::clone(&metrics), addr)?),
        None => None,
    };

    out.emit(&EventRecord::Started {
        time: clock.wall(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        coverage: monitor.coverage().to_string(),
        subsystems: monitor.subsystems().to_vec(),
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        baseline: file.baseline.display().to_string(),
        confirm,
    })?;
    report_baseline(&mut out, &findings, clock.wall())?;
    out.say(&format!(
        "{} {} from {} ({}); {} unobservable",
        if use_file { "resumed" } else { "baselined" },
        plural(monitor.len(), "target"),
        file.baseline.display(),
        names(monitor.subsystems()),
        monitor.unobservable_count()
    ))?;
    if let Some(addr) = &metrics_addr {
        out.say(&format!("metrics at http://{addr}/metrics"))?;
    }
    systemd.send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("watching {}", plural(monitor.len(), "target"))),
    ]);

    let mut cycle_no = 0u64;
    let mut next = Instant::now();
    let mut last_ping = Instant::now();
    let mut healthy = true;
    let reason = loop {
        // Sleep until the next check, answering signals and feeding the watchdog.
        let wake = loop {
            let now = Instant::now();
            if now >= next {
                break Wake::Check;
            }
            let mut wait = next - now;
            if let Some(w) = systemd.watchdog {
                wait = wait.min(w / 2);
            }
            match rx.recv_timeout(wait) {
                Ok(sig) if sig == signal_hook::consts::SIGHUP => break Wake::Rebaseline,
                Ok(sig) => break Wake::Stop(signal_name(sig)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break Wake::Stop("the signal thread ending"),
            }
            if let Some(w) = systemd.watchdog
                && healthy
                && last_ping.elapsed() >= w / 2
            {
                systemd.send(&[sd_notify::NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
        };
        match wake {
            Wake::Stop(why) => break why,
            Wake::Rebaseline => {
                let coverage = monitor.coverage().clone();
                let subsystems = monitor.subsystems().to_vec();
                match Monitor::baseline(coverage, &subsystems, confirm, &clock) {
                    Ok((m, findings)) => {
                        monitor = m;
                        monitor.set_code_budget(code_budget);
                        report_baseline(&mut out, &findings, clock.wall())?;
                        match save(&file, key.as_ref(), &monitor, &clock) {
                            Ok(n) => out.say(&format!(
                                "SIGHUP: new baseline of {} written to {}",
                                plural(n, "target"),
                                file.baseline.display()
                            ))?,
                            Err(e) => tracing::error!("SIGHUP: cannot save the new baseline: {e:#}"),
                        }
                    }
                    Err(e) => tracing::error!("SIGHUP: cannot take a new baseline, keeping the old one: {e}"),
                }
                continue;
            }
            Wake::Check => {}
        }

        cycle_no += 1;
        let (findings, summary) = monitor.cycle(&clock);
        let now = clock.wall();
        for (e, severity) in events_of(&findings, now) {
            if let (EventRecord::Anomaly { subsystem, .. }, Some(sev)) = (&e, severity) {
                metrics.anomaly(*subsystem, sev);
            }
            if let EventRecord::Recovered { subsystem, .. } = &e {
                metrics.recovered(*subsystem);
            }
            if matches!(e, EventRecord::Error { .. }) {
                metrics.check_failed();
            }
            out.emit(&e)?;
        }
        metrics.check_done(summary.elapsed, now);
        let unobservable = u64::try_from(summary.unobservable).unwrap_or(u64::MAX);
        metrics.set_targets(u64::try_from(summary.targets).unwrap_or(u64::MAX) + unobservable, unobservable);
        out.check_summary(&EventRecord::check(now, cycle_no, &summary).with_interval(interval), !findings.is_empty())?;
        healthy = true;
        systemd.send(&[
            sd_notify::NotifyState::Watchdog,
            sd_notify::NotifyState::Status(&format!(
                "check #{cycle_no}: {} targets, {} drifted, {} unobservable",
                summary.targets, summary.drifted, summary.unobservable
            )),
        ]);
        last_ping = Instant::now();

        next += interval;
        let now = Instant::now();
        if next <= now {
            next = now + interval;
        }
    };

    systemd.send(&[sd_notify::NotifyState::Stopping]);
    out.emit(&EventRecord::Stopped { time: clock.wall(), reason: reason.to_owned(), cycles: cycle_no })?;
    signal_handle.close();
    let _ = signal_thread.join();
    Ok(NO_DRIFT)
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Whether an error means "could not check" (every error does: exit 2).
pub fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(err) => err.to_string(),
        None => format!("{e:#}"),
    }
}
