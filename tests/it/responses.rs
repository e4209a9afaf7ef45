//! FDIR behaviour end to end (docs/contracts.md §6), against real child processes:
//! a change and its reversal give an anomaly then a recovery; actions get the
//! right environment and JSON; passive mode never acts; a failing or hanging
//! action leaves the monitor running; SIGHUP accepts a change; Isolate really
//! freezes a cgroup (or stops the process); the baseline file is voted
//! against memory; the fault-injection campaign misses nothing.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::command::{Watch, assert_event_schema, code, is, json_lines, run, stderr};
use common::{ScratchCgroup, Testee, hierarchy, is_root, skip};
use serde_json::Value;

fn watch_testee(t: &Testee, dir: &Path, extra: &[&str]) -> Watch {
    let pid = t.pid.to_string();
    let mut args = vec!["--pid", &pid, "--interval", "100ms", "--format", "json"];
    args.extend_from_slice(extra);
    let mut w = Watch::start(&args, dir);
    w.wait_for("the first check", is("check"));
    w
}

fn action(w: &mut Watch, name: &'static str) -> Value {
    w.wait_for(name, move |v| v["event"] == "action" && v["action"] == name)
}

#[test]
fn a_change_and_its_reversal_give_an_anomaly_then_a_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &[]);
    t.must("rwx");
    let a = w.wait_for("the anomaly", is("anomaly"));
    assert_eq!(a["subsystem"], "memory-maps");
    assert!(a["changes"][0]["text"].as_str().unwrap().contains("writable and executable"), "{a}");
    t.must("unrwx");
    let r = w.wait_for("the recovery", is("recovered"));
    assert_eq!(r["subsystem"], "memory-maps");
    assert!(r["drifted_for_ms"].as_f64().unwrap() > 0.0);
    // Reported once: no second anomaly for the same drift.
    assert_eq!(w.seen.iter().filter(|v| v["event"] == "anomaly").count(), 1);
    w.stop_ok();
}

#[test]
fn the_on_anomaly_command_gets_the_drift_in_its_environment_and_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook.txt");
    let hook = format!("env | grep ^FDIR_ | sort > {0}; echo --- >> {0}; cat >> {0}", out.display());
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &["--on-anomaly", &hook]);
    t.must("nnp");
    let act = action(&mut w, "on-anomaly");
    assert_eq!(act["outcome"], "done", "{act}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("FDIR_SEVERITY=log\n"), "{text}");
    assert!(text.contains("FDIR_SUBSYSTEMS=seccomp\n"), "{text}");
    assert!(text.contains(&format!("FDIR_PID={}\n", t.pid)), "{text}");
    let (_, stdin) = text.split_once("---\n").unwrap();
    let events: Vec<Value> = stdin.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "{stdin}");
    assert_event_schema(&events[0]);
    assert_eq!(events[0]["event"], "anomaly");
    assert_eq!(events[0]["pid"], t.pid);
    assert_eq!(events[0]["subsystem"], "seccomp");
    // The hook's own output never reaches fdir's event stream.
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert!(rest.iter().all(|v| v.get("event").is_some()));
}

#[test]
fn passive_mode_grades_and_reports_but_never_acts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("acted");
    let config = dir.path().join("fdir.toml");
    std::fs::write(
        &config,
        format!(
            "[severity]\nseccomp = \"safe-mode\"\n[actions]\nsafe-mode = \"touch {0}\"\non-anomaly = \"touch {0}\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &["--config", config.to_str().unwrap(), "--passive"]);
    t.must("nnp");
    let a = w.wait_for("the anomaly", is("anomaly"));
    assert_eq!(a["severity"], "safe-mode", "the policy grades it");
    for name in ["on-anomaly", "safe-mode"] {
        let act = action(&mut w, name);
        assert_eq!(act["outcome"], "passive", "{act}");
    }
    w.wait_for("a later check", |v| v["event"] == "check" && v["cycle"].as_u64() > Some(5));
    assert!(!marker.exists(), "passive mode ran a command");
    w.stop_ok();
}

#[test]
fn a_failing_or_hanging_action_is_reported_and_the_monitor_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fdir.toml");
    std::fs::write(
        &config,
        "[severity]\nseccomp = \"degrade\"\nmemory-maps = \"restart\"\n[actions]\ndegrade = \"sleep 60\"\nrestart = \"exit 7\"\ntimeout = \"300ms\"\ncooldown = \"0s\"\n",
    )
    .unwrap();
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &["--config", config.to_str().unwrap()]);
    t.must("nnp");
    let hung = action(&mut w, "degrade");
    assert_eq!(hung["outcome"], "failed");
    assert!(hung["detail"].as_str().unwrap().contains("timed out after 300ms (killed)"), "{hung}");
    t.must("rwx");
    let failed = action(&mut w, "restart");
    assert_eq!(failed["outcome"], "failed");
    assert!(failed["detail"].as_str().unwrap().contains("exit status: 7"), "{failed}");
    // Still checking.
    let c = w.wait_for("a check after the failures", |v| v["event"] == "check" && v["drifted"] == 1);
    assert_eq!(c["failed"], 0);
    w.stop_ok();
}

#[test]
fn a_running_action_does_not_hold_up_the_checks() {
    // The command runs until the test lets it end (no clock involved): the
    // watch must go on checking meanwhile, then report the action once it
    // has ended.
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let started = dir.path().join("started");
    let config = dir.path().join("fdir.toml");
    std::fs::write(
        &config,
        format!(
            "[actions]\non-anomaly = \"touch {0}; while [ ! -e {1} ]; do sleep 0.05; done\"\ntimeout = \"10min\"\n",
            started.display(),
            release.display()
        ),
    )
    .unwrap();
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &["--config", config.to_str().unwrap()]);
    t.must("nnp");
    w.wait_for("the anomaly", is("anomaly"));
    let at = w.seen.iter().filter_map(|v| v["cycle"].as_u64()).max().unwrap_or(0);
    w.wait_for("five checks while the action runs", |v| v["event"] == "check" && v["cycle"].as_u64() > Some(at + 5));
    assert!(started.exists(), "the action was started");
    assert!(!w.seen.iter().any(|v| v["event"] == "action"), "the action cannot have ended: {:#?}", w.seen);
    std::fs::write(&release, b"").unwrap();
    let act = action(&mut w, "on-anomaly");
    assert_eq!(act["outcome"], "done", "{act}");
    assert_eq!(act["pid"], t.pid);
    w.stop_ok();
}

#[test]
fn cooldowns_survive_a_kill_9_and_restart() {
    // A watch killed with SIGKILL right after an action, restarted on the
    // same files with the drift still there: within the cooldown the action
    // is not run again. The state is what holds it: without the file the
    // action runs again; with one changed byte the watch refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let count = d.join("count");
    let config = d.join("fdir.toml");
    std::fs::write(
        &config,
        format!("[actions]\non-anomaly = \"echo fired >> {}\"\ncooldown = \"1h\"\n", count.display()),
    )
    .unwrap();
    let state = d.join("fdir-baseline.json.responses");
    let fired = || std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    let mut t = Testee::spawn();
    let args = ["--config", config.to_str().unwrap()];
    let mut w = watch_testee(&t, d, &args);
    t.must("nnp");
    let act = action(&mut w, "on-anomaly");
    assert_eq!(act["outcome"], "done", "{act}");
    assert!(state.exists(), "the response state is kept beside the baseline");
    w.signal(libc::SIGKILL);
    w.child_wait();

    // The drift is declared at the first check, maybe before it is reported.
    let seen_or_wait = |w: &mut Watch| {
        let done = |v: &Value| v["event"] == "action" && v["action"] == "on-anomaly";
        match w.seen.iter().find(|v| done(v)) {
            Some(v) => v.clone(),
            None => w.wait_for("the on-anomaly action", done),
        }
    };
    let mut w = watch_testee(&t, d, &args);
    let act = seen_or_wait(&mut w);
    assert_eq!(act["outcome"], "suppressed", "{act}");
    assert!(act["detail"].as_str().unwrap().contains("cooldown"), "{act}");
    assert_eq!(fired(), 1);
    w.signal(libc::SIGKILL);
    w.child_wait();

    // One byte changed: refused, exit 2, naming the file.
    let good = std::fs::read(&state).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&state, &bad).unwrap();
    let o = run(&["watch", "--pid", &t.pid.to_string(), "--config", args[1]], d);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("fdir-baseline.json.responses has been modified or corrupted"), "{}", stderr(&o));

    // Without the state, the action runs again: the file was what held it.
    std::fs::remove_file(&state).unwrap();
    let mut w = watch_testee(&t, d, &args);
    let act = seen_or_wait(&mut w);
    assert_eq!(act["outcome"], "done", "{act}");
    w.stop_ok();
    assert_eq!(fired(), 2);
    drop(t);
}

#[test]
fn fifty_kills_never_lose_the_baseline_nor_repeat_an_action() {
    let _s = common::serial();
    // SIGKILL at a random point of a `watch --all`'s life, 50 times over,
    // with a drift that stays and an action with a cooldown: every restart
    // resumes from its files (the check after each kill reads the drift,
    // exit 1, never "could not check"), and the action ran once in all for
    // the test's own process (the command counts only its pid: other
    // processes of the machine are not the test's to judge).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let count = d.join("count");
    let config = d.join("fdir.toml");
    let mut t = Testee::spawn();
    std::fs::write(
        &config,
        format!(
            // No limit across targets: other processes' drifts must not
            // use up the test's process's action.
            "[actions]\non-anomaly = \"[ \\\"$FDIR_PID\\\" = {} ] && echo fired >> {} || true\"\ncooldown = \"1h\"\nmax-actions = 1000000\n",
            t.pid,
            count.display()
        ),
    )
    .unwrap();
    let fired = || std::fs::read_to_string(&count).unwrap_or_default().lines().count();
    let args = ["--all", "--interval", "100ms", "--format", "json", "--config", config.to_str().unwrap()];
    let mut w = Watch::start(&args, d);
    let pid = t.pid;
    // A young process is baselined once it has settled: then a check.
    w.wait_for("the test's process baselined", move |v| v["event"] == "baseline" && v["pid"] == pid);
    w.wait_for("a check", is("check"));
    t.must("nnp");
    let done = w.wait_for("the action on the test's process", |v| {
        v["event"] == "action" && v["action"] == "on-anomaly" && v["pid"] == pid
    });
    assert_eq!(done["outcome"], "done");
    w.signal(libc::SIGKILL);
    w.child_wait();
    let mut rng = common::Rng(0x2323);
    for i in 0..50 {
        let mut w = Watch::start(&args, d);
        w.wait_for("the start", is("started"));
        // Anywhere from the resume to a few cycles in.
        std::thread::sleep(Duration::from_millis(u64::try_from(rng.below(400)).unwrap()));
        w.signal(libc::SIGKILL);
        w.child_wait();
        // The file loads and shows the test's process's drift (exit 1, or 2
        // when a process of the machine exited mid-check: not the test's).
        let o = run(&["check", "--format", "json"], d);
        let seen = json_lines(&o);
        assert!(
            matches!(code(&o), 1 | 2) && seen.iter().any(|v| v["event"] == "anomaly" && v["pid"] == pid),
            "kill {i}: the baseline must check, and show the drift (exit {}): {}",
            code(&o),
            stderr(&o)
        );
        assert_eq!(fired(), 1, "kill {i}: the action ran again within its cooldown");
    }
    drop(t);
}

#[test]
fn sighup_accepts_a_change_into_a_new_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &[]);
    t.must("nnp");
    w.wait_for("the anomaly", is("anomaly"));
    w.signal(libc::SIGHUP);
    let rb = w.wait_for("the re-baseline", is("rebaseline"));
    assert_eq!(rb["reason"], "SIGHUP");
    let accepted = rb["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 1, "{rb}");
    assert_eq!(accepted[0]["pid"], t.pid);
    assert_eq!(accepted[0]["subsystem"], "seccomp");
    assert_eq!(accepted[0]["changes"][0]["text"], "NoNewPrivs 0 -> 1 (no_new_privs on)");
    // The accepted state is the baseline now: no drift, and the file holds it.
    let c = w.wait_for("a clean check", |v| v["event"] == "check" && v["drifted"] == 0);
    assert_eq!(c["anomalies"], 0);
    let o = run(&["check"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert!(!rest.iter().any(|v| v["event"] == "anomaly"));
}

fn state_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("State:\t")).unwrap().to_owned()
}

/// A scratch cgroup v2 that can be frozen, or why there is none (the test
/// skips).
fn freezable_cgroup(label: &str) -> Result<ScratchCgroup, String> {
    if !is_root() {
        return Err("needs root to create and freeze a cgroup".to_owned());
    }
    let h = hierarchy(None).filter(|h| h.v2).ok_or("no cgroup v2 hierarchy mounted")?;
    let cg = ScratchCgroup::new(&h, label)?;
    if !cg.path.join("cgroup.freeze").exists() {
        return Err("this kernel's cgroup v2 has no cgroup.freeze".to_owned());
    }
    Ok(cg)
}

/// A testee (moved into `cg` first, if given) watched with drift of its
/// memory maps graded `isolate`, made to drift: the testee, the watch and
/// its `isolate` action, done.
fn isolated(dir: &Path, cg: Option<&mut ScratchCgroup>) -> (Testee, Watch, Value) {
    let config = dir.join("fdir.toml");
    std::fs::write(&config, "[severity]\nmemory-maps = \"isolate\"\n").unwrap();
    let mut t = Testee::spawn();
    if let Some(cg) = cg {
        cg.enter(t.pid).unwrap();
    }
    let mut w = watch_testee(&t, dir, &["--config", config.to_str().unwrap()]);
    t.must("rwx");
    let act = action(&mut w, "isolate");
    assert_eq!(act["outcome"], "done", "{act}");
    (t, w, act)
}

#[test]
fn isolate_freezes_the_targets_own_cgroup() {
    let mut cg = match freezable_cgroup("freeze") {
        Ok(cg) => cg,
        Err(e) => return skip("isolate_freezes_the_targets_own_cgroup", &e),
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut t, mut w, act) = isolated(dir.path(), Some(&mut cg));
    assert!(act["detail"].as_str().unwrap().contains("froze cgroup"), "{act}");
    let events = std::fs::read_to_string(cg.path.join("cgroup.events")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut frozen = events.contains("frozen 1");
    while !frozen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        frozen = std::fs::read_to_string(cg.path.join("cgroup.events")).unwrap().contains("frozen 1");
    }
    assert!(frozen, "cgroup.events: {events}");
    // fdir's own action is not a new drift (the freezer state is run state).
    let at = w.seen.iter().filter_map(|v| v["cycle"].as_u64()).max().unwrap_or(0);
    w.wait_for("more checks of the frozen process", |v| v["event"] == "check" && v["cycle"].as_u64() > Some(at + 3));
    assert_eq!(w.seen.iter().filter(|v| v["event"] == "anomaly").count(), 1, "{:#?}", w.seen);
    // The test thaws it, and the child answers again.
    cg.write("cgroup.freeze", "0").unwrap();
    assert_eq!(t.must("ping"), "24301");
    w.stop_ok();
}

#[test]
fn isolate_stops_a_target_without_a_cgroup_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // In the test's own cgroup with other processes: it cannot be frozen alone.
    let (mut t, w, act) = isolated(dir.path(), None);
    assert!(act["detail"].as_str().unwrap().contains("stopped process"), "{act}");
    assert!(state_of(t.pid).starts_with('T'), "state {}", state_of(t.pid));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(i32::try_from(t.pid).unwrap(), libc::SIGCONT) };
    assert_eq!(t.must("ping"), "24301");
    w.stop_ok();
}

#[test]
fn isolate_never_freezes_a_child_cgroup_that_holds_another_process() {
    // Freezing a cgroup freezes every cgroup below it: a cgroup that holds
    // only the target, but has a child cgroup with a process the target did
    // not start, is not the target's own. fdir stops the target alone.
    let mut cg = match freezable_cgroup("subtree") {
        Ok(cg) => cg,
        Err(e) => return skip("isolate_never_freezes_a_child_cgroup_that_holds_another_process", &e),
    };
    let mut below = cg.nested("other").unwrap();
    /// Killed and reaped on every way out, before the cgroups are removed.
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let other = Reaped(std::process::Command::new("sleep").arg("600").spawn().unwrap());
    below.enter(other.0.id()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut t, w, act) = isolated(dir.path(), Some(&mut cg));
    assert!(act["detail"].as_str().unwrap().contains("stopped process"), "{act}");
    assert!(state_of(t.pid).starts_with('T'), "state {}", state_of(t.pid));
    // Neither cgroup was frozen, and the other process runs on.
    assert!(cg.read("cgroup.freeze").unwrap().starts_with('0'));
    assert!(below.read("cgroup.events").unwrap().contains("frozen 0"), "{}", below.read("cgroup.events").unwrap());
    assert!(!state_of(other.0.id()).starts_with('T'), "state {}", state_of(other.0.id()));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(i32::try_from(t.pid).unwrap(), libc::SIGCONT) };
    assert_eq!(t.must("ping"), "24301");
    w.stop_ok();
    drop(other);
    drop(below);
}

/// Flips a bit in the middle of the watch's baseline file; the watch's next
/// vote must refuse it and write it again, and the file must then check.
fn flip_a_byte_and_expect_it_rewritten(w: &mut Watch, dir: &Path) {
    let path = dir.join("fdir-baseline.json");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let e = w.wait_for("the file vote", is("baseline-file"));
    assert_eq!(e["status"], "rewritten");
    assert!(e["detail"].as_str().unwrap().contains("refused"), "{e}");
    let o = run(&["check"], dir);
    assert_eq!(code(&o), 0, "the rewritten file is good: {}{}", common::command::stdout(&o), stderr(&o));
}

/// Waits until `log` (a watch's stderr) has a line containing `what`.
fn wait_for_log(log: &Path, what: &str, after: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(at) = text.get(after..).and_then(|t| t.find(what)) {
            return after + at + what.len();
        }
        assert!(Instant::now() < deadline, "no {what:?} in the log within 30 s:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_baseline_file_corrupted_after_it_was_voted_good_is_voted_down() {
    // A vote of a file unchanged since the watch wrote it (or last decoded
    // it) only hashes it and compares fingerprints: a changed byte must
    // still take it to the full vote and be written again.
    let dir = tempfile::tempdir().unwrap();
    let t = Testee::spawn();
    let log = dir.path().join("watch.log");
    let err = std::fs::File::create(&log).unwrap();
    let pid = t.pid.to_string();
    let mut w = Watch::start_with(&["--pid", &pid, "--interval", "100ms", "--format", "json"], dir.path(), |c| {
        c.env("RUST_LOG", "debug").stderr(err);
    });
    w.wait_for("the first check", is("check"));
    let at = wait_for_log(&log, "baseline file unchanged, and agrees with memory", 0);
    wait_for_log(&log, "baseline file unchanged, and agrees with memory", at);
    flip_a_byte_and_expect_it_rewritten(&mut w, dir.path());
    // The file written again is known by its fingerprints at its next vote.
    let written_again = std::fs::read_to_string(&log).unwrap_or_default().len();
    wait_for_log(&log, "baseline file unchanged, and agrees with memory", written_again);
    w.stop_ok();
}

#[test]
fn a_corrupted_baseline_file_is_voted_down_and_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let t = Testee::spawn();
    let mut w = watch_testee(&t, dir.path(), &[]);
    flip_a_byte_and_expect_it_rewritten(&mut w, dir.path());
    assert!(!w.seen.iter().any(|v| v["event"] == "anomaly"));
    w.stop_ok();
}

#[test]
fn the_fault_injection_campaign_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["selftest", "--campaign", "3000", "--seed", "7", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let c = events.iter().find(|v| v["event"] == "campaign").unwrap();
    assert_eq!(c["missed"], 0, "{c}");
    assert_eq!(c["false_alarms"], 0, "{c}");
    assert_eq!(c["baseline_detected"], c["baseline_faults"], "{c}");
    assert_eq!(c["baseline_repaired"], c["baseline_faults"], "{c}");
    assert_eq!(c["observation_dismissed"], c["observation_faults"], "{c}");
    assert!(c["baseline_faults"].as_u64().unwrap() > 1000, "{c}");
    assert!(events[0]["event"] == "selftest" && events[0]["ok"] == true);
}

#[test]
fn bad_policies_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fdir.toml");
    std::fs::write(&config, "[severity]\nseccomp = \"loud\"\n").unwrap();
    let t = Testee::spawn();
    let o = run(&["watch", "--pid", &t.pid.to_string(), "--config", config.to_str().unwrap()], dir.path());
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("fdir.toml") && err.contains("severity.seccomp"), "{err}");
}
