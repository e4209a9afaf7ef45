//! What a newcomer meets: every refusal and every default output says what
//! happened, why, and what to do next. Each case checks the exit code, the
//! stream, and the words that matter.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::command::{code, run, spawn_watch, stderr, stdout};
use common::{is_root, skip};

/// A process of our own that exits when asked (a `sleep`).
struct Sleeper(Child);

impl Sleeper {
    fn spawn() -> Sleeper {
        Sleeper(Command::new("sleep").arg("300").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn exit(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One refused command: its arguments, and what stderr must and must not say.
struct Case {
    what: &'static str,
    args: Vec<String>,
    says: Vec<String>,
    never: Vec<&'static str>,
    /// Nothing on stdout: the refusal came before any work.
    before_work: bool,
}

fn is_kernel_thread(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a) else { return false };
    // state ppid pgrp session tty_nr tpgid flags: the 7th field after the name.
    after.split_whitespace().nth(6).and_then(|f| f.parse::<u64>().ok()).is_some_and(|f| f & 0x0020_0000 != 0)
}

#[test]
fn refusals_say_what_happened_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A --pid baseline whose process has exited since.
    let gone = Sleeper::spawn();
    let gpid = gone.pid();
    let o = run(&["snapshot", "--pid", &gpid.to_string(), "--baseline", "gone.json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    gone.exit();

    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    let mut cases = vec![
        Case {
            what: "check of a --pid baseline whose process exited",
            args: s(&["check", "--baseline", "gone.json"]),
            says: vec![
                format!("pid {gpid} (sleep)"),
                "has exited".into(),
                "exit 2".into(),
                "only target".into(),
                "fdir snapshot --pid".into(),
            ],
            never: vec![],
            before_work: false,
        },
        Case {
            what: "snapshot of a pid nothing has",
            args: s(&["snapshot", "--pid", "999999", "--baseline", "x.json"]),
            says: s(&["no process 999999"]),
            never: vec!["gone"],
            before_work: true,
        },
        Case {
            what: "watch of a pid nothing has",
            args: s(&["watch", "--pid", "999999", "--baseline", "x.json"]),
            says: s(&["no process 999999"]),
            never: vec!["gone"],
            before_work: true,
        },
        Case {
            what: "watch writing to a file that cannot be written",
            args: s(&["watch", "--baseline", "no/such/dir/w.json"]),
            says: s(&["cannot write the baseline file no/such/dir/w.json", "--baseline FILE"]),
            never: vec![],
            before_work: true,
        },
        Case {
            what: "snapshot to a file that cannot be written",
            args: s(&["snapshot", "--baseline", "/proc/version"]),
            says: s(&["cannot write the baseline file /proc/version", "--baseline FILE"]),
            never: vec![],
            before_work: true,
        },
        Case {
            what: "snapshot into a directory that does not exist",
            args: s(&["snapshot", "--baseline", "no/such/dir/b.json"]),
            says: s(&["no/such/dir/b.json", "no/such/dir"]),
            never: vec![],
            before_work: true,
        },
        Case {
            what: "check without a baseline file",
            args: s(&["check", "--baseline", "missing.json"]),
            says: s(&["missing.json does not exist", "take one with fdir snapshot"]),
            never: vec![],
            before_work: true,
        },
    ];
    if is_kernel_thread(2) {
        cases.push(Case {
            what: "snapshot of a kernel thread",
            args: s(&["snapshot", "--pid", "2", "--baseline", "x.json"]),
            says: s(&["process 2", "is a kernel thread", "no user memory"]),
            never: vec!["maps", "zombie"],
            before_work: true,
        });
    } else {
        skip("refusals_say_what_happened_and_what_to_do", "pid 2 is not a kernel thread here (a pid namespace)");
    }
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let o = run(&args, dir.path());
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{}: exit {}: {err}", c.what, code(&o));
        for w in &c.says {
            assert!(err.contains(w.as_str()), "{}: stderr lacks {w:?}: {err}", c.what);
        }
        for w in &c.never {
            assert!(!err.contains(w), "{}: stderr says {w:?}: {err}", c.what);
        }
        assert!(err.starts_with("fdir: "), "{}: {err}", c.what);
        if c.before_work {
            assert_eq!(stdout(&o), "", "{}: refused only after the work", c.what);
        }
    }
    assert!(!dir.path().join("x.json").exists());
    // No probe left behind where the baseline file was to be written.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().contains("probe")), "{left:?}");
}

#[test]
fn the_man_page_and_the_bench_help_speak_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["man"], dir.path());
    assert_eq!(code(&o), 0);
    let man = stdout(&o);
    let name = man.lines().skip_while(|l| *l != ".SH NAME").nth(1).unwrap_or_default();
    assert_eq!(name, "fdir \\- integrity monitor for Linux kernel isolation structures", "{man}");
    let o = run(&["bench", "--help"], dir.path());
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(help.contains("about a minute"), "{help}");
    assert!(help.contains("default deployment") && help.contains("yes or no"), "{help}");
    for jargon in ["floor", "seed subsystems", "bare wake-up", "first touch"] {
        assert!(!help.contains(jargon), "bench --help says {jargon:?}: {help}");
    }
}

/// A text-mode `fdir watch`, its stdout lines read by a thread.
struct TextWatch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl TextWatch {
    fn start(args: &[&str], dir: &Path, f: impl FnOnce(&mut Command)) -> TextWatch {
        let (child, lines) = spawn_watch(args, dir, f);
        TextWatch { child, lines, seen: Vec::new() }
    }

    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
        }
        panic!("no {what} within 60 s; saw {:#?}", self.seen)
    }

    /// SIGINT, then every line up to the end.
    fn interrupt(mut self) -> (i32, Vec<String>) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let mut all = std::mem::take(&mut self.seen);
        all.extend(self.lines.iter());
        (status.code().unwrap_or(-1), all)
    }
}

impl Drop for TextWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `#` in a CHECK line.
fn check_number(line: &str) -> Option<u64> {
    let rest = line.split(" CHECK    #").nth(1)?;
    rest.split(':').next()?.parse().ok()
}

#[test]
fn watch_text_summarises_routine_events_and_stops_after_the_checks_it_printed() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut w = TextWatch::start(&["--all", "--interval", "300ms"], dir.path(), |_| {});
    w.wait_for("the first check", |l| l.contains(" CHECK    #1:"));
    // Short-lived processes: one that settles and exits, many that do not.
    let p = Sleeper::spawn();
    w.wait_for("its first sight", |l| l.contains(" PROCESSES ") && l.contains("new") && l.contains("sleep"));
    p.exit();
    w.wait_for("its exit", |l| l.contains(" PROCESSES ") && l.contains("exited (") && l.contains("sleep"));
    let (rc, lines) = w.interrupt();
    assert_eq!(rc, 0);
    for l in &lines {
        assert!(!l.contains(" NEW ") && !l.contains(" EXITED "), "a routine event on a line of its own: {l}");
    }
    // STOPPED's count is the last check printed.
    let last = lines.iter().rev().find_map(|l| check_number(l)).unwrap();
    let stopped = lines.last().unwrap();
    assert!(stopped.contains(&format!("STOPPED  on SIGINT after {last} check")), "{lines:#?}");

    // Resumed from that file: no summary of the file's processes, at once the count.
    let mut w = TextWatch::start(&["--interval", "60s"], dir.path(), |_| {});
    let resumed = w.wait_for("the resume", |l| l.starts_with("resumed "));
    assert!(resumed.contains("the first check follows at once"), "{resumed}");
    w.wait_for("the first check", |l| l.contains(" CHECK    #1:"));
    assert!(!w.seen.iter().any(|l| l.starts_with("baselined ") || l.contains(" BASELINE ")), "{:#?}", w.seen);
    let (rc, lines) = w.interrupt();
    assert_eq!(rc, 0);
    assert!(lines.last().unwrap().contains("after 1 check"), "{lines:#?}");
}

#[test]
fn watch_as_nobody_says_once_what_it_cannot_read_and_how_to_fix_it() {
    let _s = common::serial();
    let test = "watch_as_nobody_says_once_what_it_cannot_read_and_how_to_fix_it";
    if !is_root() {
        skip(test, "needs root to run fdir as nobody");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Writable by nobody, and sticky: fdir refuses a baseline in a directory
    // others may write without the sticky bit (trust.rs).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    // A process of root's that nobody cannot read, for certain.
    let root_process = Sleeper::spawn();
    std::thread::sleep(Duration::from_millis(600));
    // std drops the supplementary groups when it sets the uid.
    let nobody = |c: &mut Command| {
        c.uid(65534).gid(65534);
    };
    let mut w = TextWatch::start(&["--all", "--interval", "300ms"], dir.path(), nobody);
    w.wait_for("the first check", |l| l.contains(" CHECK    #1:"));
    // Some more checks (wall time to watch, not a measure of speed): on a
    // quiet machine they print no line until a minute has passed, so none
    // is waited for; the STOPPED line counts them.
    std::thread::sleep(Duration::from_secs(3));
    let (rc, lines) = w.interrupt();
    assert_eq!(rc, 0, "{lines:#?}");
    let unreadable: Vec<&String> = lines.iter().filter(|l| l.contains(" UNREADABLE ")).collect();
    assert_eq!(unreadable.len(), 1, "{lines:#?}");
    let u = unreadable[0];
    for w in
        ["cannot read", "permission denied", "run it as root", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "SECURITY.md"]
    {
        assert!(u.contains(w), "the summary lacks {w:?}: {u}");
    }
    let rpid = format!("pid {} ", root_process.pid());
    assert!(!lines.iter().any(|l| l.contains(" UNOBSERVABLE ") && l.contains(&rpid)), "{lines:#?}");
    // The CHECK line does not count subsystems as targets.
    let check = lines.iter().find(|l| l.contains(" CHECK    #1:")).unwrap();
    assert!(!check.contains(" unobservable"), "{check}");
    assert!(check.contains("unreadable in") || check.contains("not readable at all"), "{check}");
    drop(root_process);
}
