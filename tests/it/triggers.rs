//! Triggers (docs/triggers.md): a watch whose timer is five minutes away
//! sees a real change at once, because the kernel's own notice (the proc
//! connector, a mount table's poll, inotify on a cgroup file) names what to
//! re-check. Each test makes a real change in a real child process and waits
//! for its `anomaly` with a deadline (60 s) far below the 300 s interval:
//! the anomaly arriving proves the trigger; nothing here measures speed.
//!
//! Also: lost notices (a connector socket with a tiny receive buffer and a
//! fork storm) are counted and answered by a full check; `--triggers off`
//! is the timer alone; a JIT-heavy node process beside a watch raises no
//! anomaly.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::command::{Watch, free_port, is, metric, scrape};
use common::{ScratchCgroup, Testee, hierarchy, is_root, skip};
use serde_json::Value;

/// The anomaly must come long before the timer's next round (300 s).
const TRIGGER_DEADLINE: Duration = Duration::from_secs(60);

/// Waits up to [`TRIGGER_DEADLINE`] for an event matching `pred`, keeping
/// every event seen; `None` on timeout.
fn within(w: &mut Watch, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let end = Instant::now() + TRIGGER_DEADLINE;
    while Instant::now() < end {
        let before = w.seen.len();
        w.collect_for(Duration::from_millis(200));
        if let Some(v) = w.seen[before..].iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
    }
    None
}

fn anomaly_of(pid: u32, subsystem: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == "anomaly" && v["pid"] == pid && v["subsystem"] == subsystem
}

/// A python3 child that runs each line it is sent (a statement) and answers
/// `ok`; killed and reaped on drop.
struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
}

impl Py {
    fn spawn() -> Option<Py> {
        let script = "import os, sys, time\nprint('ready', flush=True)\nfor line in sys.stdin:\n    exec(line)\n    print('ok', flush=True)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        let pid = child.id();
        (line.trim() == "ready").then_some(Py { child, stdin, stdout, pid })
    }

    fn run(&mut self, statement: &str) {
        writeln!(self.stdin, "{statement}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok", "python3 ran {statement:?}");
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A watch of `pid` at a 300 s interval, its first check done.
fn watch_of(pid: u32, dir: &std::path::Path, extra: &[&str]) -> Watch {
    watch_with(pid, dir, extra, |_| {})
}

fn watch_with(pid: u32, dir: &std::path::Path, extra: &[&str], f: impl FnOnce(&mut Command)) -> Watch {
    let pid = pid.to_string();
    let mut args = vec!["--pid", &pid, "--interval", "300s", "--format", "json", "--baseline", "b.json"];
    args.extend_from_slice(extra);
    let mut w = Watch::start_with(&args, dir, f);
    w.wait_for("the first check", is("check"));
    w
}

fn started(w: &Watch) -> Value {
    w.seen.iter().find(|v| v["event"] == "started").cloned().unwrap()
}

#[test]
fn a_uid_change_is_seen_at_once_by_the_proc_connector() {
    if !is_root() {
        return skip("triggers_uid", "the proc connector and setresuid need root");
    }
    let Some(mut py) = Py::spawn() else { return skip("triggers_uid", "python3 cannot run") };
    let dir = tempfile::tempdir().unwrap();
    let mut w = watch_of(py.pid, dir.path(), &[]);
    let triggers = started(&w)["triggers"].clone();
    assert!(triggers.as_array().is_some_and(|t| t.iter().any(|s| s == "connector")), "started: {triggers}");
    // The effective uid becomes nobody's (real and saved stay root).
    py.run("os.setresuid(0, 65534, 0)");
    let found = within(&mut w, anomaly_of(py.pid, "credentials"));
    assert!(found.is_some(), "no credentials anomaly within 60 s of a 300 s timer; saw {:#?}", w.seen);
    assert!(!w.seen.iter().any(|v| v["event"] == "check" && v["cycle"] == 2), "the timer ran a second round");
}

/// Whether the watch runs the eBPF source (it needs root, and a kernel that
/// takes its programs); the reason when not.
fn ebpf_running(w: &Watch) -> Result<(), String> {
    let started = started(w);
    if started["triggers"].as_array().is_some_and(|t| t.iter().any(|s| s == "ebpf")) {
        return Ok(());
    }
    let why = started["triggers_unavailable"]["ebpf"].as_str().map_or_else(|| started.to_string(), str::to_owned);
    Err(format!("the eBPF source is not running: {why}"))
}

#[test]
fn a_real_prlimit_and_a_prctl_are_seen_at_once_by_ebpf() {
    if !is_root() {
        return skip("triggers_ebpf", "eBPF needs root (CAP_BPF and CAP_PERFMON)");
    }
    if Command::new("prlimit").arg("--version").output().is_err() {
        return skip("triggers_ebpf", "prlimit (util-linux) is not installed");
    }
    let Some(mut py) = Py::spawn() else { return skip("triggers_ebpf", "python3 cannot run") };
    let dir = tempfile::tempdir().unwrap();
    let mut w = watch_of(py.pid, dir.path(), &[]);
    if let Err(why) = ebpf_running(&w) {
        return skip("triggers_ebpf", &why);
    }
    // A real tool, from outside: no proc connector, mount or cgroup notice
    // follows a prlimit64, only the system call itself.
    let out = Command::new("prlimit").args(["--pid", &py.pid.to_string(), "--nofile=64:64"]).output().unwrap();
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    let found = within(&mut w, anomaly_of(py.pid, "limits"));
    assert!(found.is_some(), "no limits anomaly within 60 s of a 300 s timer; saw {:#?}", w.seen);
    // The process's own prctl: no_new_privs.
    py.run("import ctypes; assert ctypes.CDLL(None).prctl(38, 1, 0, 0, 0) == 0");
    let found = within(&mut w, anomaly_of(py.pid, "seccomp"));
    assert!(found.is_some(), "no seccomp anomaly for no_new_privs within 60 s; saw {:#?}", w.seen);
    assert!(!w.seen.iter().any(|v| v["event"] == "check" && v["cycle"] == 2), "the timer ran a second round");
}

#[test]
fn a_mount_in_the_childs_namespace_is_seen_at_once_by_mountinfo() {
    if !is_root() {
        return skip("triggers_mount", "a mount needs root");
    }
    let mut t = Testee::spawn();
    // Its own mount namespace first: the change is then its own, and the
    // watch follows that namespace.
    if let Err(e) = t.cmd("unshare-mount") {
        return skip("triggers_mount", &format!("cannot unshare a mount namespace: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut w = watch_of(t.pid, dir.path(), &[]);
    let triggers = started(&w)["triggers"].clone();
    assert!(triggers.as_array().is_some_and(|t| t.iter().any(|s| s == "mountinfo")), "started: {triggers}");
    t.must(&format!("mount-tmpfs {}", mnt.display()));
    let found = within(&mut w, anomaly_of(t.pid, "mounts"));
    // The mount is in the testee's namespace only: it goes with the process.
    t.exit();
    assert!(found.is_some(), "no mounts anomaly within 60 s of a 300 s timer; saw {:#?}", w.seen);
}

#[test]
fn a_pids_max_write_is_seen_at_once_by_inotify() {
    if !is_root() {
        return skip("triggers_cgroup", "creating a cgroup needs root");
    }
    let Some(h) = hierarchy(Some("pids")) else { return skip("triggers_cgroup", "no writable cgroup hierarchy") };
    if !h.v2 && h.controller != "pids" {
        return skip("triggers_cgroup", "no pids controller");
    }
    let mut cg = match ScratchCgroup::new(&h, "trig") {
        Ok(cg) => cg,
        Err(e) => return skip("triggers_cgroup", &e),
    };
    let t = Testee::spawn();
    if let Err(e) = cg.write("pids.max", "1000") {
        return skip("triggers_cgroup", &format!("no pids.max: {e}"));
    }
    cg.enter(t.pid).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = watch_of(t.pid, dir.path(), &[]);
    let triggers = started(&w)["triggers"].clone();
    assert!(triggers.as_array().is_some_and(|t| t.iter().any(|s| s == "inotify")), "started: {triggers}");
    cg.write("pids.max", "50").unwrap();
    let found = within(&mut w, anomaly_of(t.pid, "cgroup-limits"));
    let seen = format!("{:#?}", w.seen);
    drop(w);
    cg.leave(t.pid);
    drop(t);
    assert!(found.is_some(), "no cgroup-limits anomaly within 60 s of a 300 s timer; saw {seen}");
}

#[test]
fn lost_notices_are_counted_and_answered_by_a_full_check() {
    if !is_root() {
        return skip("triggers_lost", "the proc connector needs root");
    }
    let t = Testee::spawn();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    // The smallest receive buffer the kernel allows: a fork storm overflows it.
    let mut w = watch_with(t.pid, dir.path(), &["--metrics", &addr], |c| {
        c.env("FDIR_TRIGGER_CONNECTOR_RCVBUF", "1");
    });
    let storm = "for _ in range(4):\n    if os.fork() == 0:\n        for _ in range(3000):\n            p = os.fork()\n            if p == 0: os._exit(0)\n            os.waitpid(p, 0)\n        os._exit(0)\nfor _ in range(4): os.wait()";
    let lost = (0..5).find_map(|_| {
        let status = Command::new("python3").args(["-c", &format!("import os\n{storm}")]).status();
        assert!(status.is_ok_and(|s| s.success()), "the fork storm failed");
        within(&mut w, |v| v["event"] == "triggers-lost")
    });
    let Some(lost) = lost else {
        return skip("triggers_lost", "five fork storms overflowed no socket buffer here");
    };
    assert_eq!(lost["source"], "connector");
    assert!(lost["lost"].as_u64().is_some_and(|n| n > 0), "{lost}");
    // The full check that answered it checked the watched process.
    assert!(lost["checked"].as_u64().is_some_and(|n| n >= 1), "{lost}");
    let text = scrape(port.parse().unwrap());
    let counted = metric(&text, "fdir_trigger_lost_total{source=\"connector\"}");
    assert!(counted.is_some_and(|n| n > 0.0), "{text}");
    assert!(metric(&text, "fdir_triggered_checks_total").is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(metric(&text, "fdir_trigger_source_up{source=\"connector\"}"), Some(1.0), "{text}");
}

#[test]
fn with_triggers_off_the_timer_alone_checks() {
    let dir = tempfile::tempdir().unwrap();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    let mut w = Watch::start(
        &["--pid", &pid, "--interval", "200ms", "--format", "json", "--baseline", "b.json", "--triggers", "off"],
        dir.path(),
    );
    let s = w.wait_for("started", is("started"));
    assert!(s.get("triggers").is_none() && s.get("triggers_unavailable").is_none(), "{s}");
    w.wait_for("the third check", |v| v["event"] == "check" && v["cycle"] == 3);
    let (code, _) = w.terminate();
    assert_eq!(code, 0);
    // Text: one line says so.
    let out = common::command::fdir()
        .args(["watch", "--pid", &pid, "--interval", "1s", "--baseline", "b.json", "--triggers", "off"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line_seen = false;
    let mut child = out;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(20).map_while(Result::ok) {
        if line.starts_with("TRIGGERS off") {
            line_seen = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(line_seen, "no TRIGGERS off line");
    drop(t);
}

#[test]
fn an_unknown_trigger_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = common::command::run(&["watch", "--all", "--triggers", "carrier-pigeon"], dir.path());
    assert_eq!(common::command::code(&o), 2, "{}", common::command::stderr(&o));
    assert!(common::command::stderr(&o).contains("carrier-pigeon"));
}

/// A node process that compiles new functions all the time (a JIT under
/// load); shared by `fdir bench --only triggers` and the trigger tests.
const NODE_SCRIPT: &str = include_str!("../../scripts/jit-churn.js");

#[test]
fn a_jit_heavy_node_beside_the_watch_raises_no_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("jit.js");
    std::fs::write(&script, NODE_SCRIPT).unwrap();
    let Ok(mut node) = Command::new("node").arg(&script).stdout(Stdio::piped()).stderr(Stdio::null()).spawn() else {
        return skip("triggers_node", "node is not installed");
    };
    let mut ready = String::new();
    BufReader::new(node.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let pid = node.id().to_string();
    let mut w =
        Watch::start(&["--pid", &pid, "--interval", "1s", "--format", "json", "--baseline", "b.json"], dir.path());
    w.wait_for("the tenth check", |v| v["event"] == "check" && v["cycle"] == 10);
    let _ = node.kill();
    let _ = node.wait();
    let started = w.seen.iter().find(|v| v["event"] == "started").cloned().unwrap();
    let anomalies: Vec<&Value> = w.seen.iter().filter(|v| v["event"] == "anomaly").collect();
    assert!(anomalies.is_empty(), "the JIT raised anomalies: {anomalies:#?} (triggers {})", started["triggers"]);
}

#[test]
fn under_all_a_new_process_is_baselined_once_settled_and_its_exit_seen_at_once() {
    if !is_root() {
        return skip("triggers_all", "the proc connector needs root");
    }
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watch::start(
        &["--all", "--interval", "300s", "--format", "json", "--subsystems", "memory-maps", "--baseline", "b.json"],
        dir.path(),
    );
    w.wait_for("the first check", is("check"));
    let t = Testee::spawn();
    let pid = t.pid;
    let baselined = within(&mut w, |v| v["event"] == "baseline" && v["pid"] == pid && v["first_sight"] == true);
    assert!(baselined.is_some(), "the new process was not baselined within 60 s of a 300 s timer");
    drop(t);
    let exited = within(&mut w, |v| v["event"] == "exited" && v["pid"] == pid);
    assert!(exited.is_some(), "its exit was not seen within 60 s of a 300 s timer");
}
