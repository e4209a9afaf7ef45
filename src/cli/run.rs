//! The three commands: snapshot, check, watch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Result, bail};
use fdir::baseline::{self, BaselineFile, Coverage, Key};
use fdir::event::EventRecord;
use fdir::policy::Policy;
use fdir::{
    Clock, CodeBudget, Error, Finding, Monitor, PinAhead, Pinned, Scope, Severity, Subsystem, SystemClock, Target,
};

use super::args::{FileArgs, Format, Subsystems, TargetArgs};
use super::output::{Output, TEXT_LIST_LIMIT};

/// Exit codes (DESIGN.md §3).
pub const NO_DRIFT: u8 = 0;
/// Drift found.
pub const DRIFT: u8 = 1;
/// Could not check.
pub const CANNOT_CHECK: u8 = 2;

/// The subsystems used when none are given: the cheap, non-intrusive ones of
/// the coverage's scope (`--subsystems all` adds the costly or intrusive ones).
fn default_subsystems(coverage: &Coverage) -> Vec<Subsystem> {
    if *coverage == Coverage::System { Subsystem::DEFAULT_NODE.to_vec() } else { Subsystem::DEFAULT_PROCESS.to_vec() }
}

pub fn chosen_subsystems(coverage: &Coverage, given: Option<Subsystems>) -> Result<Vec<Subsystem>> {
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

pub fn load_key(file: &FileArgs) -> Result<Option<Key>> {
    file.key.as_deref().map(Key::from_file).transpose().map_err(Into::into)
}

/// Loads and checks the baseline file: integrity, key, boot.
pub fn load_baseline(file: &FileArgs, key: Option<&Key>) -> Result<BaselineFile> {
    decode_baseline(file, &baseline::read(&file.baseline)?, key)
}

/// [`load_baseline`] of bytes already read from the file.
pub fn decode_baseline(file: &FileArgs, bytes: &[u8], key: Option<&Key>) -> Result<BaselineFile> {
    let loaded = baseline::decode(&file.baseline, bytes, key)?;
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
pub fn restrict(mut loaded: BaselineFile, asked: Option<Coverage>, path: &Path) -> Result<BaselineFile> {
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
        Coverage::Workload { selector } if loaded.coverage != Coverage::System => {
            // The processes of the workload among those of the file, by the
            // cgroup paths of their baselines.
            loaded.targets.retain(|t| match t.subsystems.get(&Subsystem::Cgroups) {
                Some(fdir::Observation::Observed { records, .. }) => selector.matches_records(records),
                _ => false,
            });
            if loaded.targets.is_empty() {
                bail!(
                    "baseline file {} holds no baseline of a process of {selector} (with its cgroups): take one with fdir snapshot --{selector}",
                    path.display()
                );
            }
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

pub fn save(file: &FileArgs, key: Option<&Key>, m: &mut Monitor, clock: &SystemClock) -> Result<usize> {
    let snapshots = m.snapshots();
    let n = snapshots.len();
    let mut f = BaselineFile::new(clock.wall(), m.coverage().clone(), m.subsystems(), snapshots);
    f.boot_id = Some(fdir::boot_id()?);
    baseline::save(&file.baseline, &f, key)?;
    Ok(n)
}

/// Prints the findings of a baseline: each target, or (text, many targets) a summary.
pub fn report_baseline(out: &mut Output, findings: &[Finding], now: SystemTime, monitor: &Monitor) -> Result<()> {
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
        for mut e in EventRecord::from_finding(now, f, Severity::Log) {
            monitor.label(&mut e);
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
    let (mut monitor, findings) = Monitor::baseline(coverage, &subsystems, 2, &clock)?;
    report_baseline(&mut out, &findings, clock.wall(), &monitor)?;
    let n = save(&file, key.as_ref(), &mut monitor, &clock)?;
    out.say(&format!(
        "wrote the baseline of {n} target{} ({}) to {}{}",
        if n == 1 { "" } else { "s" },
        names(monitor.subsystems()),
        file.baseline.display(),
        if key.is_some() { ", signed" } else { "" }
    ))?;
    Ok(NO_DRIFT)
}

pub fn names(subsystems: &[Subsystem]) -> String {
    subsystems.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
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

/// From this many processes named on the command line, they are pinned
/// while the baseline file is read (a thread costs more than a few opens).
const PIN_AHEAD_FROM: usize = 16;

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
    let started = std::time::Instant::now();
    let key = load_key(&file)?;
    let asked = target.coverage();
    // The processes asked for are pinned on another core while the file is
    // read and decoded (a one-shot check of many processes).
    let ahead = match &asked {
        Some(Coverage::All) => PinAhead::Every,
        Some(Coverage::Pids { pids }) if pids.len() >= PIN_AHEAD_FROM => PinAhead::Pids(pids),
        _ => PinAhead::Nothing,
    };
    let (loaded, pinned) = Pinned::while_running(ahead, || load_baseline(&file, key.as_ref()));
    let loaded = restrict(loaded?, asked, &file.baseline)?;
    tracing::debug!(
        "loaded {} targets in {:?} ({} pinned ahead)",
        loaded.targets.len(),
        started.elapsed(),
        pinned.len()
    );
    // A process of every process or of a workload may exit: not an error.
    let strict = !matches!(loaded.coverage, Coverage::All | Coverage::Workload { .. });
    let mut out = Output::new(format);
    let mut code = NO_DRIFT;
    let (mut monitor, findings) = Monitor::resume_for_one_check_pinned(loaded, confirm, pinned)?;
    monitor.set_code_budget(code_budget.unwrap_or(CodeBudget::UNLIMITED));
    tracing::debug!("resumed at {:?}", started.elapsed());
    let (cycle, summary) = monitor.cycle(&clock);
    tracing::debug!("checked at {:?}", started.elapsed());
    let now = clock.wall();
    for f in findings.iter().chain(cycle.iter()) {
        code = code.max(match f {
            Finding::Drift { .. } => DRIFT,
            Finding::Exited { .. } | Finding::Reused { .. } if strict => CANNOT_CHECK,
            Finding::Failed { .. } => CANNOT_CHECK,
            _ => NO_DRIFT,
        });
    }
    let policy = Policy::default();
    let events =
        events_of(&findings, now, &policy, &monitor).into_iter().chain(events_of(&cycle, now, &policy, &monitor));
    for (e, _) in events {
        out.emit(&e)?;
    }
    out.emit(&EventRecord::check(now, 1, &summary))?;
    if monitor.is_empty() && strict {
        code = CANNOT_CHECK;
    }
    // The process ends now: closing each target's files and freeing its
    // baseline one by one would only make the exit slower.
    std::mem::forget(monitor);
    Ok(code)
}

pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Whether an error means "could not check" (every error does: exit 2).
pub fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(err) => err.to_string(),
        None => format!("{e:#}"),
    }
}
