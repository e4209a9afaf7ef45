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
use super::output::{BASELINE_LINES_UP_TO, Output, name_list};

/// Exit codes (docs/cli.md).
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

/// Refuses, before any work, a process named with `--pid` that cannot be
/// baselined: one that does not exist, or a kernel thread.
pub fn baselinable(pid: u32) -> Result<()> {
    let fs = match fdir::Procfs::try_pid(pid) {
        Ok(fs) => fs,
        Err(Error::Gone { .. }) => {
            bail!("no process {pid}: nothing runs with that pid now (ps -e lists the processes there are)")
        }
        Err(e) => return Err(e.into()),
    };
    if fs.is_kernel_thread().unwrap_or(false) {
        // The command name, as `stat` (read when the process was pinned) and `comm` give it.
        let name = match fdir::Source::target(&fs) {
            Ok(fdir::Target::Process { name, .. }) => name,
            _ => String::new(),
        };
        bail!(
            "process {pid} ({}) is a kernel thread: it has no user memory or process isolation of its own to baseline; name a user process, or take the node's state with fdir snapshot --system",
            name.trim_end()
        );
    }
    Ok(())
}

/// Refuses, before any work, a baseline file that cannot be written: a
/// destination that is not a regular file, or a directory where no file can
/// be created. Named in the message, with what to do.
pub fn writable(path: &Path) -> Result<()> {
    let hint = "choose another place with --baseline FILE";
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => {
            bail!("cannot write the baseline file {}: it exists and is not a regular file; {hint}", path.display())
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let probe = dir.join(format!(".{name}.fdir-probe.{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => bail!(
            "cannot write the baseline file {}: cannot create a file in {}: {e}; {hint}",
            path.display(),
            dir.display()
        ),
    }
}

/// Loads and checks the baseline file: integrity, key, boot.
pub fn load_baseline(file: &FileArgs, key: Option<&Key>) -> Result<BaselineFile> {
    if file.baseline.symlink_metadata().is_err() {
        bail!(
            "baseline file {} does not exist: take one with fdir snapshot (--pid PID for one process, --all for every process), or start fdir watch, which takes one; name another file with --baseline FILE",
            file.baseline.display()
        );
    }
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
    save_noting(file, key, m, clock).map(|(n, _)| n)
}

/// [`save`], returning also what was written, for the disk vote: the
/// digest of the bytes and each target's fingerprint in them (none when a
/// copy lost its vote).
pub fn save_noting(
    file: &FileArgs,
    key: Option<&Key>,
    m: &mut Monitor,
    clock: &SystemClock,
) -> Result<(usize, Option<FilePrints>)> {
    let snapshots = m.snapshots();
    let n = snapshots.len();
    let mut f = BaselineFile::new(clock.wall(), m.coverage().clone(), m.subsystems(), snapshots);
    f.boot_id = Some(fdir::boot_id()?);
    let written = baseline::save_noting(&file.baseline, &f, key)?;
    // The snapshots written are the voted copies: their fingerprints are
    // the in-memory digests (a target whose copies lost the vote is not
    // written, and then no prints are given).
    let prints = m.baseline_prints().filter(|p| p.len() == f.targets.len());
    drop(f);
    Ok((n, prints.map(|targets| FilePrints { file: written, targets })))
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
    let compact = out.format() == Format::Text && baselined.len() > BASELINE_LINES_UP_TO;
    for f in findings {
        if compact && matches!(f, Finding::Baselined { .. }) {
            continue;
        }
        for mut e in EventRecord::from_finding(now, f, Severity::Log) {
            monitor.label(&mut e);
            out.event(&e)?;
        }
    }
    if compact {
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for t in &baselined {
            if let Target::Process { name, .. } = t {
                *names.entry(name.clone()).or_default() += 1;
            }
        }
        out.say(&format!("baselined {} processes: {}", baselined.len(), name_list(&names)))?;
    }
    out.summarise(now)?;
    Ok(())
}

/// `fdir snapshot`.
pub fn snapshot(target: TargetArgs, file: FileArgs, subsystems: Option<Subsystems>, format: Format) -> Result<u8> {
    let clock = SystemClock;
    let coverage = target.coverage().unwrap_or(Coverage::All);
    let subsystems = chosen_subsystems(&coverage, subsystems)?;
    let key = load_key(&file)?;
    if let Coverage::Pids { pids } = &coverage {
        for &pid in pids {
            baselinable(pid)?;
        }
    }
    writable(&file.baseline)?;
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
    // On a node large enough, the task table's program is loaded meanwhile,
    // if the file's subsystems ask the table (read from its first bytes: a
    // hint, the file is verified as it is loaded).
    let table = fdir::baseline::subsystems_hint(&file.baseline).is_some_and(|s| Pinned::table_ahead_pays(ahead, &s));
    let (loaded, pinned) = if table {
        Pinned::while_running_with_table(ahead, || load_baseline(&file, key.as_ref()))
    } else {
        Pinned::while_running(ahead, || load_baseline(&file, key.as_ref()))
    };
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
    let mut diagnostics = Vec::new();
    for f in findings.iter().chain(cycle.iter()) {
        code = code.max(match f {
            Finding::Drift { .. } | Finding::ObjectDrift { .. } => DRIFT,
            Finding::Exited { .. } | Finding::Reused { .. } if strict => CANNOT_CHECK,
            Finding::Failed { .. } => CANNOT_CHECK,
            _ => NO_DRIFT,
        });
        if let Some(d) = diagnostic(f, strict) {
            diagnostics.push(d);
        }
    }
    let policy = Policy::default();
    let events =
        events_of(&findings, now, &policy, &monitor).into_iter().chain(events_of(&cycle, now, &policy, &monitor));
    for (e, _) in events {
        out.event(&e)?;
    }
    out.summarise(now)?;
    out.emit(&EventRecord::check(now, 1, &summary))?;
    if monitor.is_empty() && strict {
        code = CANNOT_CHECK;
        if !diagnostics.is_empty() {
            diagnostics.push(format!(
                "nothing left to check: {} of {} is gone (exit 2); take a new baseline with fdir snapshot --pid PID",
                if diagnostics.len() == 1 { "the only target" } else { "every target" },
                file.baseline.display()
            ));
        }
    }
    for d in &diagnostics {
        eprintln!("fdir: {d}");
    }
    // The process ends now: closing each target's files and freeing its
    // baseline one by one would only make the exit slower.
    std::mem::forget(monitor);
    Ok(code)
}

/// The diagnostic (stderr) of a finding that makes a check exit 2.
fn diagnostic(f: &Finding, strict: bool) -> Option<String> {
    match f {
        Finding::Exited { target } if strict => Some(format!(
            "{} has exited since its baseline was taken, so it cannot be checked (exit 2); take a new baseline of the process to watch with fdir snapshot --pid PID",
            fdir::event::Who::from(target)
        )),
        Finding::Reused { baseline, .. } if strict => Some(format!(
            "{} has exited since its baseline was taken and its pid now belongs to another process, so it cannot be checked (exit 2); take a new baseline with fdir snapshot --pid PID",
            fdir::event::Who::from(baseline)
        )),
        Finding::Failed { target, error } => {
            Some(format!("could not check {} (exit 2): {error}", fdir::event::Who::from(target)))
        }
        _ => None,
    }
}

use fdir::runtime::FilePrints;
pub use fdir::runtime::{events_of, plural};

/// Whether an error means "could not check" (every error does: exit 2).
pub fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(err) => err.to_string(),
        None => format!("{e:#}"),
    }
}
