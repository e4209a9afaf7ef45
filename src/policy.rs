//! The response policy: which severity each drift gets, and what each
//! severity does. Read from a TOML file (`fdir watch --config FILE`):
//!
//! ```toml
//! [severity]                 # per subsystem; the others get `default`
//! default = "seed"           # the seed's grading (1 drift log, 2 degrade, 3+ safe-mode), or a severity
//! memory-maps = "isolate"
//! seccomp = "safe-mode"
//!
//! [actions]
//! isolate = "freeze"         # freeze the target's own cgroup, else SIGSTOP it; or "stop", or "none"
//! restart = "systemctl restart app"
//! degrade = "/usr/local/bin/shed-load"
//! safe-mode = "/usr/local/bin/enter-safe-mode"
//! on-anomaly = "logger -t fdir"   # every declared drift, like --on-anomaly
//! timeout = "10s"            # a command still running then is killed and reported
//! cooldown = "5m"            # per target and action
//! max-actions = 10           # across all targets, per window
//! window = "1h"
//! passive = false            # evaluate and report, never act
//! ```
//!
//! A top-level `exec = "drift"` (before any table) grades a process that
//! executes a new program as a drift of its `memory-maps` (an `anomaly`,
//! graded and acted on like any other, after the `exec` event); the default,
//! `exec = "log"`, reports the `exec` event only (a new program is not drift
//! of the old one: shells, `env`, `nice`, `tini` exec all the time).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::{Anomaly, Error, Severity, Subsystem};

/// How drifts with no severity of their own are graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultGrade {
    /// The seed's `default_handler`: by the number of drifted subsystems.
    Seed,
    /// Always this severity.
    Fixed(Severity),
}

/// How the Isolate response isolates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolateMethod {
    /// Freeze the target's cgroup if the target has one of its own (every
    /// process in it is the target or its descendant), otherwise SIGSTOP it.
    Freeze,
    /// SIGSTOP the target.
    Stop,
    /// Do nothing (report only).
    None,
}

/// What each severity does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    /// How Isolate isolates.
    pub isolate: IsolateMethod,
    /// Command for Restart (`/bin/sh -c`).
    pub restart: Option<String>,
    /// Command for Degrade.
    pub degrade: Option<String>,
    /// Command for SafeMode.
    pub safe_mode: Option<String>,
    /// Command for every declared drift.
    pub on_anomaly: Option<String>,
    /// A command still running after this is killed.
    pub timeout: Duration,
    /// The least time between two actions of one kind on one target.
    pub cooldown: Duration,
    /// The most actions across all targets within `window`.
    pub max_actions: u32,
    /// The window of `max_actions`.
    pub window: Duration,
    /// Evaluate and report, never act.
    pub passive: bool,
}

impl Default for Actions {
    fn default() -> Actions {
        Actions {
            isolate: IsolateMethod::Freeze,
            restart: None,
            degrade: None,
            safe_mode: None,
            on_anomaly: None,
            timeout: Duration::from_secs(10),
            cooldown: Duration::from_secs(300),
            max_actions: 10,
            window: Duration::from_secs(3600),
            passive: false,
        }
    }
}

/// What a process executing a new program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecGrade {
    /// An `exec` event only (the default).
    #[default]
    Log,
    /// Also a drift of `memory-maps`, graded and acted on.
    Drift,
}

/// Severities and actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Per-subsystem severities.
    pub severities: BTreeMap<Subsystem, Severity>,
    /// For subsystems without one.
    pub default: DefaultGrade,
    /// What severities do.
    pub actions: Actions,
    /// What an exec is.
    pub exec: ExecGrade,
}

impl Default for Policy {
    /// The seed's grading, default actions (Isolate freezes or stops; no
    /// commands configured).
    fn default() -> Policy {
        Policy {
            severities: BTreeMap::new(),
            default: DefaultGrade::Seed,
            actions: Actions::default(),
            exec: ExecGrade::Log,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    exec: Option<String>,
    #[serde(default)]
    severity: BTreeMap<String, String>,
    #[serde(default)]
    actions: ActionsFile,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ActionsFile {
    isolate: Option<String>,
    restart: Option<String>,
    degrade: Option<String>,
    safe_mode: Option<String>,
    on_anomaly: Option<String>,
    timeout: Option<String>,
    cooldown: Option<String>,
    max_actions: Option<u32>,
    window: Option<String>,
    passive: Option<bool>,
}

/// Config files larger than this are refused.
pub const MAX_CONFIG: u64 = 1 << 20;

impl Policy {
    /// Reads a policy file; errors name the file and the key.
    ///
    /// The file holds commands fdir runs (as root, usually): it is refused if
    /// another user than root or fdir's own owns it, or if its group or others
    /// may write it ([`crate::trust`]).
    pub fn load(path: &Path) -> Result<Policy, Error> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
        crate::trust::check_file(path, &meta, crate::trust::Kind::Public)
            .map_err(|u| Error::Config(format!("policy file {} {u}", path.display())))?;
        if meta.len() > MAX_CONFIG {
            return Err(Error::Config(format!("{} is larger than 1 MiB", path.display())));
        }
        let mut text = String::new();
        file.take(MAX_CONFIG + 1).read_to_string(&mut text).map_err(|e| Error::io("read", path, e))?;
        Policy::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses a policy from TOML text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut p = Policy::default();
        for (name, value) in file.severity {
            if name == "default" {
                p.default = if value == "seed" {
                    DefaultGrade::Seed
                } else {
                    DefaultGrade::Fixed(value.parse().map_err(|e: Error| format!("severity.default: {e}"))?)
                };
                continue;
            }
            let sub: Subsystem = name.parse().map_err(|e: Error| format!("[severity]: {e}"))?;
            let sev: Severity = value.parse().map_err(|e: Error| format!("severity.{name}: {e}"))?;
            p.severities.insert(sub, sev);
        }
        let a = file.actions;
        let duration = |key: &str, v: Option<String>, d: Duration| -> Result<Duration, String> {
            match v {
                None => Ok(d),
                Some(s) => humantime::parse_duration(&s).map_err(|e| format!("actions.{key}: {s:?}: {e}")),
            }
        };
        let nonempty = |key: &str, v: Option<String>| -> Result<Option<String>, String> {
            match v {
                Some(s) if s.trim().is_empty() => Err(format!("actions.{key} is empty")),
                v => Ok(v),
            }
        };
        p.actions = Actions {
            isolate: match a.isolate.as_deref() {
                None | Some("freeze") => IsolateMethod::Freeze,
                Some("stop") => IsolateMethod::Stop,
                Some("none") => IsolateMethod::None,
                Some(other) => {
                    return Err(format!("actions.isolate: {other:?}: expected \"freeze\", \"stop\" or \"none\""));
                }
            },
            restart: nonempty("restart", a.restart)?,
            degrade: nonempty("degrade", a.degrade)?,
            safe_mode: nonempty("safe-mode", a.safe_mode)?,
            on_anomaly: nonempty("on-anomaly", a.on_anomaly)?,
            timeout: duration("timeout", a.timeout, Duration::from_secs(10))?,
            cooldown: duration("cooldown", a.cooldown, Duration::from_secs(300))?,
            max_actions: a.max_actions.unwrap_or(10),
            window: duration("window", a.window, Duration::from_secs(3600))?,
            passive: a.passive.unwrap_or(false),
        };
        if p.actions.timeout.is_zero() {
            return Err("actions.timeout must be longer than zero".into());
        }
        p.exec = match file.exec.as_deref() {
            None | Some("log") => ExecGrade::Log,
            Some("drift") => ExecGrade::Drift,
            Some(other) => return Err(format!("exec: {other:?}: expected \"log\" or \"drift\"")),
        };
        Ok(p)
    }

    /// The findings with, after each exec, the drift it is when the policy
    /// grades an exec as drift (`exec = "drift"`): the old program's memory
    /// maps against the new one's.
    pub fn grade_execs(&self, findings: Vec<crate::Finding>) -> Vec<crate::Finding> {
        if self.exec == ExecGrade::Log || !findings.iter().any(|f| matches!(f, crate::Finding::Exec { .. })) {
            return findings;
        }
        let mut out = Vec::with_capacity(findings.len() + 1);
        for f in findings {
            let drift = match &f {
                crate::Finding::Exec { target, anomaly: Some(a), .. } => {
                    Some(crate::Finding::Drift { target: target.clone(), anomalies: vec![a.clone()] })
                }
                _ => None,
            };
            out.push(f);
            out.extend(drift);
        }
        out
    }

    /// The severity of one target's drifts declared together: the highest of
    /// their subsystems' severities, where the policy names them; the rest are
    /// graded by the default (the seed's count-based grading by default).
    pub fn grade(&self, anomalies: &[Anomaly]) -> Severity {
        let mut graded: Option<Severity> = None;
        let mut rest: Vec<Anomaly> = Vec::new();
        for a in anomalies {
            match self.severities.get(&a.subsystem) {
                Some(s) => graded = Some(graded.map_or(*s, |g| g.max(*s))),
                None => rest.push(a.clone()),
            }
        }
        if !rest.is_empty() {
            let d = match self.default {
                DefaultGrade::Seed => default_handler(&rest),
                DefaultGrade::Fixed(s) => s,
            };
            graded = Some(graded.map_or(d, |g| g.max(d)));
        }
        graded.unwrap_or(Severity::Log)
    }
}

/// The seed's grading: one drifted subsystem is `Log`, two `Degrade`, three or
/// more `SafeMode`.
///
/// ```
/// use fdir::{default_handler, Severity};
/// assert_eq!(default_handler(&[]), Severity::Log);
/// ```
pub fn default_handler(anomalies: &[Anomaly]) -> Severity {
    match anomalies.len() {
        0 | 1 => Severity::Log,
        2 => Severity::Degrade,
        _ => Severity::SafeMode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    fn a(s: Subsystem) -> Anomaly {
        Anomaly { subsystem: s, expected: Digest::of(b"a"), actual: Digest::of(b"b"), changes: vec![] }
    }

    #[test]
    fn the_default_policy_is_the_seed() {
        let p = Policy::default();
        assert_eq!(p.grade(&[a(Subsystem::Seccomp)]), Severity::Log);
        assert_eq!(p.grade(&[a(Subsystem::Seccomp), a(Subsystem::Cgroups)]), Severity::Degrade);
        assert_eq!(
            p.grade(&[a(Subsystem::Seccomp), a(Subsystem::Cgroups), a(Subsystem::MemoryMaps)]),
            Severity::SafeMode
        );
    }

    #[test]
    fn per_subsystem_severities_and_the_highest_wins() {
        let p = Policy::parse(
            "[severity]\nmemory-maps = \"isolate\"\nseccomp = \"safe-mode\"\ndefault = \"restart\"\n[actions]\nrestart = \"true\"\ntimeout = \"2s\"\ncooldown = \"1m\"\nmax-actions = 3\nwindow = \"10m\"\npassive = true\nisolate = \"stop\"\n",
        )
        .unwrap();
        assert_eq!(p.grade(&[a(Subsystem::MemoryMaps)]), Severity::Isolate);
        assert_eq!(p.grade(&[a(Subsystem::MemoryMaps), a(Subsystem::Seccomp)]), Severity::SafeMode);
        assert_eq!(p.grade(&[a(Subsystem::Cgroups)]), Severity::Restart);
        assert_eq!(p.actions.timeout, Duration::from_secs(2));
        assert_eq!(p.actions.max_actions, 3);
        assert!(p.actions.passive);
        assert_eq!(p.actions.isolate, IsolateMethod::Stop);
        assert_eq!(p.actions.restart.as_deref(), Some("true"));
        // The seed's grading for subsystems without a severity.
        let p = Policy::parse("[severity]\nseccomp = \"isolate\"\n").unwrap();
        assert_eq!(p.grade(&[a(Subsystem::Cgroups), a(Subsystem::MemoryMaps)]), Severity::Degrade);
        assert_eq!(p.grade(&[a(Subsystem::Seccomp), a(Subsystem::MemoryMaps)]), Severity::Isolate);
    }

    #[test]
    fn an_exec_is_logged_unless_the_policy_says_drift() {
        assert_eq!(Policy::default().exec, ExecGrade::Log);
        assert_eq!(Policy::parse("exec = \"log\"\n").unwrap().exec, ExecGrade::Log);
        let p = Policy::parse("exec = \"drift\"\n[severity]\nmemory-maps = \"isolate\"\n").unwrap();
        assert_eq!(p.exec, ExecGrade::Drift);
        let target = crate::Target::Process { pid: 7, start_time: 1, name: "sh".into() };
        let exe = |path: &str| crate::Executable { path: path.into(), dev: 1, inode: 2 };
        let snapshot = Box::new(crate::Snapshot {
            target: target.clone(),
            taken_at: std::time::SystemTime::UNIX_EPOCH,
            subsystems: BTreeMap::new(),
            settle: None,
            sources: BTreeMap::new(),
            exe: None,
        });
        let exec = crate::Finding::Exec {
            target,
            old: exe("/usr/bin/bash"),
            new: exe("/usr/bin/apt-get"),
            snapshot,
            anomaly: Some(a(Subsystem::MemoryMaps)),
        };
        let graded = p.grade_execs(vec![exec.clone()]);
        assert_eq!(graded.len(), 2);
        assert!(
            matches!(&graded[1], crate::Finding::Drift { anomalies, .. } if p.grade(anomalies) == Severity::Isolate)
        );
        assert_eq!(Policy::default().grade_execs(vec![exec]).len(), 1);
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        for (text, needle) in [
            ("[severity]\nbogus = \"log\"\n", "bogus"),
            ("[severity]\nseccomp = \"loud\"\n", "severity.seccomp"),
            ("[actions]\ntimeout = \"soon\"\n", "actions.timeout"),
            ("[actions]\nisolate = \"nuke\"\n", "actions.isolate"),
            ("[actions]\nrestart = \"\"\n", "actions.restart is empty"),
            ("[actions]\nunknown = 1\n", "unknown"),
            ("[severity\n", "TOML"),
            ("[actions]\ntimeout = \"0s\"\n", "timeout"),
            ("exec = \"loud\"\n", "exec"),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.contains(needle) || needle == "TOML", "{text:?}: {e}");
        }
    }
}
