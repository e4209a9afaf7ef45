//! Where findings go: stdout, as text for people or as NDJSON.
//!
//! JSON carries every event. Text is for people: findings (drift,
//! recovery, errors) one line each, at once; routine events — a process
//! baselined on first sight, one that exited, a part of another user's
//! process that cannot be read — are held back and summarised: the first
//! two in one line per check, what cannot be read once, grouped, with what
//! to do about it. Each held-back event is still written to the debug log
//! (`RUST_LOG=debug`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use fdir::event::{EventRecord, Who};

use super::args::Format;

/// In text mode, a list of names longer than this is cut short.
pub const TEXT_LIST_LIMIT: usize = 30;
/// In text mode, a baseline of more targets than this is one line of names,
/// not a line each.
pub const BASELINE_LINES_UP_TO: usize = 10;

/// The event writer. Each event is flushed at once (a pipeline sees it).
pub struct Output {
    format: Format,
    last_text_check: Option<Instant>,
    /// The cycle of the last `check` summary written in text.
    last_text_cycle: u64,
    /// The line being written, kept from one event to the next: a watch's
    /// steady cycle writes its `check` event without allocating.
    line: Vec<u8>,
    /// Text mode: the routine events held back since the last summary.
    routine: Routine,
}

/// Routine events held back in text mode (see the module's doc).
#[derive(Default)]
struct Routine {
    /// Processes baselined on first sight, by name.
    new: BTreeMap<String, usize>,
    /// Processes that exited, by name.
    exited: BTreeMap<String, usize>,
    /// Processes that cannot be read for want of permission (wholly or in
    /// part), and what of them.
    denied: BTreeMap<u32, String>,
    denied_what: BTreeSet<String>,
    /// The denied processes were summarised once already.
    denied_told: bool,
    /// Other unobservable parts: (what, reason) -> the processes.
    other: BTreeMap<(String, String), Vec<String>>,
}

/// Whether a reason is a refusal for want of permission.
fn is_denied(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("permission denied") || r.contains("operation not permitted")
}

fn name_of(who: &Who) -> String {
    who.name.clone().unwrap_or_else(|| who.pid.map_or_else(|| "node".to_owned(), |p| format!("pid {p}")))
}

/// `bash x7, java, sort x2`, cut short after [`TEXT_LIST_LIMIT`] names.
pub fn name_list(names: &BTreeMap<String, usize>) -> String {
    let mut list: Vec<String> = names
        .iter()
        .take(TEXT_LIST_LIMIT)
        .map(|(n, c)| if *c == 1 { n.clone() } else { format!("{n} x{c}") })
        .collect();
    if names.len() > TEXT_LIST_LIMIT {
        list.push(format!("and {} more names", names.len() - TEXT_LIST_LIMIT));
    }
    list.join(", ")
}

impl Routine {
    /// Holds `e` back if it is routine; returns whether it did.
    fn hold(&mut self, e: &EventRecord) -> bool {
        match e {
            EventRecord::Baseline { who, first_sight: true, .. } => {
                *self.new.entry(name_of(who)).or_default() += 1;
                true
            }
            EventRecord::Exited { who, .. } => {
                *self.exited.entry(name_of(who)).or_default() += 1;
                true
            }
            EventRecord::Unobservable { who, subsystem, reason, .. } => {
                let what = subsystem.map_or_else(|| "the whole process".to_owned(), |s| s.name().to_owned());
                if is_denied(reason) {
                    self.denied.insert(who.pid.unwrap_or(0), who.to_string());
                    self.denied_what.insert(what);
                } else {
                    // The reason without its pid, so that one cause is one line.
                    let general = match who.pid {
                        Some(pid) => reason.replace(&format!("/proc/{pid}/"), "/proc/PID/"),
                        None => reason.clone(),
                    };
                    self.other.entry((what, general)).or_default().push(who.to_string());
                }
                true
            }
            _ => false,
        }
    }

    /// The summary lines of what was held back, and forgets it (what cannot
    /// be read for want of permission is told once).
    fn lines(&mut self, time: SystemTime) -> Vec<String> {
        let at = humantime::format_rfc3339_seconds(time);
        let mut lines = Vec::new();
        if !self.denied.is_empty() && !self.denied_told {
            self.denied_told = true;
            let what: Vec<&str> = self.denied_what.iter().map(String::as_str).collect();
            let n = self.denied.len();
            // A few are named; many are counted.
            let named = if n <= 3 {
                format!(" ({})", self.denied.values().map(String::as_str).collect::<Vec<_>>().join(", "))
            } else {
                String::new()
            };
            let (whose, fix) = if rustix::process::geteuid().is_root() {
                (
                    "",
                    " although fdir runs as root: a security module, another user namespace or the mount options of /proc refuse it",
                )
            } else {
                (
                    " of other users",
                    "; fdir runs as an ordinary user: run it as root, or grant it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (dist/fdir-least-privilege.conf)",
                )
            };
            lines.push(format!(
                "{at} UNREADABLE cannot read {} of {n} process{}{named}{whose}: permission denied{fix}; those parts are not checked, which is not drift; see SECURITY.md (each process: --format json or RUST_LOG=debug)",
                what.join(", "),
                if n == 1 { "" } else { "es" },
            ));
        }
        for ((what, reason), who) in std::mem::take(&mut self.other) {
            let shown: Vec<&str> = who.iter().take(3).map(String::as_str).collect();
            let more =
                if who.len() > shown.len() { format!(" and {} more", who.len() - shown.len()) } else { String::new() };
            lines.push(format!("{at} UNOBSERVABLE {what} of {}{more}: {reason}", shown.join(", ")));
        }
        if !self.new.is_empty() || !self.exited.is_empty() {
            let mut parts = Vec::new();
            if !self.new.is_empty() {
                let n: usize = self.new.values().sum();
                parts.push(format!("{n} new, baselined ({})", name_list(&self.new)));
            }
            if !self.exited.is_empty() {
                let n: usize = self.exited.values().sum();
                parts.push(format!("{n} exited ({})", name_list(&self.exited)));
            }
            lines.push(format!("{at} PROCESSES {}", parts.join("; ")));
            self.new.clear();
            self.exited.clear();
        }
        self.denied.clear();
        self.denied_what.clear();
        lines
    }
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format, last_text_check: None, last_text_cycle: 0, line: Vec::new(), routine: Routine::default() }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes one event.
    pub fn emit(&mut self, e: &EventRecord) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match self.format {
            Format::Json => {
                self.line.clear();
                e.write_json(&mut self.line);
                self.line.push(b'\n');
                out.write_all(&self.line)?;
            }
            Format::Text => writeln!(out, "{e}")?,
        }
        out.flush()
    }

    /// Writes an event about a target: JSON always; text at once for a
    /// finding, and held back for [`Output::summarise`] when routine (a
    /// process new or exited, a part of one that cannot be read).
    pub fn event(&mut self, e: &EventRecord) -> io::Result<()> {
        if self.format == Format::Text && self.routine.hold(e) {
            tracing::debug!("{e}");
            return Ok(());
        }
        self.emit(e)
    }

    /// Text mode: the summary of the routine events held back since the
    /// last one, if any. Returns whether it wrote something.
    pub fn summarise(&mut self, time: SystemTime) -> io::Result<bool> {
        if self.format != Format::Text {
            return Ok(false);
        }
        let lines = self.routine.lines(time);
        for l in &lines {
            self.say(l)?;
        }
        Ok(!lines.is_empty())
    }

    /// Writes a line for people (text mode only).
    pub fn say(&mut self, line: &str) -> io::Result<()> {
        if self.format == Format::Text {
            let mut out = io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }

    /// Writes a `check` summary: always in JSON; in text when the cycle had
    /// findings, and otherwise at most once a minute, as a heartbeat.
    pub fn check_summary(&mut self, e: &EventRecord, had_findings: bool) -> io::Result<()> {
        if self.format == Format::Json {
            return self.emit(e);
        }
        let due = self.last_text_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if had_findings || due {
            self.last_text_check = Some(Instant::now());
            if let EventRecord::Check { cycle, .. } = e {
                self.last_text_cycle = *cycle;
            }
            self.emit(e)?;
        }
        Ok(())
    }

    /// Text mode: whether the `check` summary of `cycle` was written.
    pub fn wrote_check(&self, cycle: u64) -> bool {
        self.format != Format::Text || self.last_text_cycle == cycle
    }
}

impl fdir::runtime::Sink for Output {
    fn emit(&mut self, e: &EventRecord) -> io::Result<()> {
        Output::emit(self, e)
    }
    fn event(&mut self, e: &EventRecord) -> io::Result<()> {
        Output::event(self, e)
    }
    fn summarise(&mut self, time: SystemTime) -> io::Result<bool> {
        Output::summarise(self, time)
    }
    fn check_summary(&mut self, e: &EventRecord, had_findings: bool) -> io::Result<()> {
        Output::check_summary(self, e, had_findings)
    }
    fn wrote_check(&self, cycle: u64) -> bool {
        Output::wrote_check(self, cycle)
    }
}
