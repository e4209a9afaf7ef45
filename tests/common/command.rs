//! Driving the `fdir` binary: one-shot runs and a running `watch` whose
//! NDJSON events are read, schema-checked, and waited for.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for an event or an exit before it calls it a hang:
/// generous, since a loaded machine (another build beside the tests) is slow,
/// not wrong. No test asserts speed.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub fn fdir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fdir"))
}

pub fn run(args: &[&str], dir: &Path) -> Output {
    fdir().args(args).current_dir(dir).output().unwrap()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"))).collect()
}

/// Checks the contract of every event object (docs/contracts.md §4).
pub fn assert_event_schema(v: &Value) {
    let kind = v["event"].as_str().unwrap_or_else(|| panic!("no event: {v}"));
    let time = v["time"].as_str().unwrap_or_else(|| panic!("no time: {v}"));
    humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("time {time:?} is not RFC 3339: {e}"));
    let needs: &[&str] = match kind {
        "started" => &["version", "coverage", "subsystems", "interval_ms", "baseline", "confirm"],
        "baseline" => &["pid", "subsystems", "first_sight"],
        "unobservable" => &["pid", "reason"],
        "anomaly" => &["pid", "subsystem", "severity", "expected", "actual", "changes"],
        "transient" => &["pid", "subsystems"],
        "recovered" => &["pid", "subsystem", "drifted_for_ms"],
        "exited" => &["pid"],
        "exec" => &["pid", "old", "new"],
        "reused" => &["pid", "now_start_time"],
        "error" => &["message"],
        "check" => &[
            "cycle",
            "targets",
            "checked",
            "drifted",
            "anomalies",
            "unobservable",
            "new",
            "exited",
            "failed",
            "duration_ms",
        ],
        "stopped" => &["reason", "cycles"],
        "triggers-lost" => &["source", "lost", "checked"],
        "selftest" => &["ok", "message"],
        "action" => &["pid", "severity", "action", "outcome", "detail"],
        "baseline-repaired" => &["pid", "copies"],
        "baseline-lost" => &["pid", "restored", "message"],
        "baseline-file" => &["status", "detail"],
        "rebaseline" => &["reason", "targets", "new", "gone", "accepted"],
        "campaign" => &[
            "seed",
            "baseline_faults",
            "baseline_detected",
            "baseline_repaired",
            "observation_faults",
            "observation_dismissed",
            "false_alarms",
            "missed",
        ],
        other => panic!("unknown event kind {other:?}: {v}"),
    };
    for k in needs {
        // An event about the node has `node` (its host name) where one about a process has `pid`.
        let present = v.get(*k).is_some() || (*k == "pid" && v.get("node").is_some_and(Value::is_string));
        assert!(present, "{kind} event without {k}: {v}");
    }
    if kind == "anomaly" {
        for d in ["expected", "actual"] {
            let hex = v[d].as_str().unwrap();
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{d}: {hex}");
        }
        let changes = v["changes"].as_array().unwrap();
        assert!(!changes.is_empty());
        for c in changes {
            assert!(c["text"].is_string() && c["kind"].is_string() && c["item"].is_string(), "{c}");
        }
        assert!(["log", "isolate", "restart", "degrade", "safe-mode"].contains(&v["severity"].as_str().unwrap()));
    }
}

/// Starts `fdir watch ARGS` in `dir` (the command adjusted by `f` first),
/// its stdout lines sent by a thread to the receiver as they come.
pub fn spawn_watch(args: &[&str], dir: &Path, f: impl FnOnce(&mut Command)) -> (Child, Receiver<String>) {
    let mut cmd = fdir();
    cmd.arg("watch").args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::inherit());
    f(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// A running `fdir watch`, its stdout lines read by a thread.
pub struct Watch {
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<Value>,
    /// The events after the end ([`Watch::child_wait`]).
    pub rest: Vec<Value>,
}

impl Watch {
    pub fn start(args: &[&str], dir: &Path) -> Watch {
        Watch::start_with(args, dir, |_| {})
    }

    /// Like `start`, with the command adjusted first (another user, say).
    pub fn start_with(args: &[&str], dir: &Path, f: impl FnOnce(&mut Command)) -> Watch {
        let (child, lines) = spawn_watch(args, dir, f);
        Watch { child, lines, seen: Vec::new(), rest: Vec::new() }
    }

    /// Waits for an event matching `pred`, checking the schema of each one
    /// seen. The deadline is generous ([`DEADLINE`]): it catches a hang, and
    /// says nothing about speed (a busy machine is slow, not wrong).
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                assert_event_schema(&v);
                self.seen.push(v.clone());
                if pred(&v) {
                    return v;
                }
            }
        }
        panic!("no {what} within {} s; saw {:#?}", DEADLINE.as_secs(), self.seen)
    }

    /// Reads events for `d` (wall time: how long a workload is watched,
    /// never a measure of speed), checking the schema of each one.
    pub fn collect_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(line) = self.lines.recv_timeout(left.min(Duration::from_millis(100))) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                assert_event_schema(&v);
                self.seen.push(v);
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), sig) };
    }

    /// Waits for the process to end (after a signal sent with
    /// [`Watch::signal`]); its remaining events go to `rest`.
    /// Panics if it has not ended within [`DEADLINE`].
    /// The pid of the `fdir watch` process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn child_wait(&mut self) -> i32 {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "fdir watch did not end within {} s", DEADLINE.as_secs());
            std::thread::sleep(Duration::from_millis(20));
        };
        self.rest = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        for v in &self.rest {
            assert_event_schema(v);
        }
        status.code().unwrap_or(-1)
    }

    /// Sends SIGTERM and asserts a clean exit (0); the remaining events.
    pub fn stop_ok(self) -> Vec<Value> {
        let (code, rest) = self.terminate();
        assert_eq!(code, 0, "fdir watch exited {code} on SIGTERM");
        rest
    }

    /// Sends SIGTERM and returns the exit code and the remaining events.
    pub fn terminate(mut self) -> (i32, Vec<Value>) {
        self.signal(libc::SIGTERM);
        let status = self.child.wait().unwrap();
        let rest: Vec<Value> = self.lines.iter().map(|l| serde_json::from_str(&l).unwrap()).collect();
        for v in &rest {
            assert_event_schema(v);
        }
        (status.code().unwrap_or(-1), rest)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free when asked (bound to port 0, then closed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

/// The answer of `watch --metrics 127.0.0.1:PORT` to `GET /metrics`, headers
/// included.
pub fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// The value of the sample `name` (labels included, as written) in a scrape.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

pub fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["event"] == kind
}
