//! A process that executes a new program is a new program, not drift of the
//! old one: an `exec` event, its memory maps and code baselined again, and
//! every other subsystem still checked against the baseline (an exec must not
//! launder a changed namespace or a lost capability). Real processes, a real
//! `fdir watch`.

use crate::common;

use std::path::{Path, PathBuf};

use common::command::{Watch, is};
use common::{Testee, is_root, skip};
use serde_json::Value;

/// A copy of the testee under another name (another file, so another
/// executable identity), in `dir`.
fn testee_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("fdir-testee-exec");
    std::fs::copy(env!("CARGO_BIN_EXE_fdir-testee"), &copy).unwrap();
    copy
}

fn for_pid(pid: u32) -> impl Fn(&Value) -> bool {
    move |v| v["pid"] == pid
}

fn watch(dir: &Path, pid: u32, extra: &[&str]) -> Watch {
    let pid = pid.to_string();
    let baseline = dir.join("baseline.json");
    let mut args = vec![
        "--pid",
        &pid,
        "--subsystems",
        "all",
        "--interval",
        "200ms",
        "--format",
        "json",
        "--baseline",
        baseline.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Watch::start(&args, dir)
}

/// Waits for `n` more check events.
fn checks(w: &mut Watch, n: usize) {
    for _ in 0..n {
        w.wait_for("a check", is("check"));
    }
}

fn anomalies_of(seen: &[Value], pid: u32) -> Vec<&Value> {
    seen.iter().filter(|v| v["event"] == "anomaly" && v["pid"] == pid).collect()
}

#[test]
fn an_exec_is_an_event_not_drift_and_later_changes_are_still_caught() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = testee_copy(dir.path());
    let mut t = Testee::spawn();
    let mut w = watch(dir.path(), t.pid, &[]);
    checks(&mut w, 2);
    t.exec(copy.to_str().unwrap());
    let e = w.wait_for("the exec event", |v| is("exec")(v) && for_pid(t.pid)(v));
    assert!(e["old"].as_str().unwrap().ends_with("/fdir-testee"), "{e}");
    assert_eq!(e["new"].as_str().unwrap(), copy.to_str().unwrap(), "{e}");
    // The new program is checked against its own memory maps and code.
    checks(&mut w, 5);
    assert!(anomalies_of(&w.seen, t.pid).is_empty(), "an exec raised drift: {:#?}", anomalies_of(&w.seen, t.pid));
    // Quiet is not blind: the new program losing a capability is caught.
    if !is_root() {
        return skip(
            "an_exec_is_an_event_not_drift_and_later_changes_are_still_caught",
            "needs root to drop a capability",
        );
    }
    t.must("drop-bounding 21");
    let a = w.wait_for("the capability drop", |v| is("anomaly")(v) && for_pid(t.pid)(v));
    assert_eq!(a["subsystem"], "credentials", "{a}");
    assert!(a.to_string().contains("cap_sys_admin"), "{a}");
    // And the re-taken baseline goes to the file at the watch's next vote of
    // the file, as a new process's does.
    let deadline = std::time::Instant::now() + common::command::DEADLINE;
    let path = dir.path().join("baseline.json");
    while !std::fs::read_to_string(&path).unwrap_or_default().contains("fdir-testee-exec") {
        assert!(std::time::Instant::now() < deadline, "the baseline file does not name the new program");
        checks(&mut w, 1);
    }
    w.stop_ok();
}

/// A namespace changed just before the exec is still drift: only the memory
/// maps and code are baselined again.
#[test]
fn an_exec_does_not_launder_a_changed_namespace() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = testee_copy(dir.path());
    let mut t = Testee::spawn();
    let mut w = watch(dir.path(), t.pid, &[]);
    checks(&mut w, 2);
    if let Err(e) = t.cmd("unshare-net") {
        return skip(
            "an_exec_does_not_launder_a_changed_namespace",
            &format!("cannot unshare a network namespace: {e}"),
        );
    }
    t.exec(copy.to_str().unwrap());
    let a =
        w.wait_for("the namespace drift", |v| is("anomaly")(v) && for_pid(t.pid)(v) && v["subsystem"] == "namespaces");
    assert!(a.to_string().contains("net"), "{a}");
    if !w.seen.iter().any(|v| is("exec")(v) && for_pid(t.pid)(v)) {
        w.wait_for("the exec event", |v| is("exec")(v) && for_pid(t.pid)(v));
    }
    checks(&mut w, 3);
    assert!(
        !w.seen.iter().any(|v| is("recovered")(v) && for_pid(t.pid)(v) && v["subsystem"] == "namespaces"),
        "the exec laundered the namespace change: {:#?}",
        w.seen
    );
    let maps: Vec<&Value> =
        anomalies_of(&w.seen, t.pid).into_iter().filter(|v| v["subsystem"] == "memory-maps").collect();
    assert!(maps.is_empty(), "the exec was drift of the memory maps: {maps:#?}");
}

/// `exec = "drift"` in the policy: an exec is graded as a drift of
/// memory-maps, with the severity the policy gives memory-maps.
#[test]
fn a_policy_can_grade_an_exec_as_drift() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = testee_copy(dir.path());
    let config = dir.path().join("policy.toml");
    std::fs::write(&config, "exec = \"drift\"\n[severity]\nmemory-maps = \"degrade\"\n[actions]\npassive = true\n")
        .unwrap();
    let mut t = Testee::spawn();
    let mut w = watch(dir.path(), t.pid, &["--config", config.to_str().unwrap()]);
    checks(&mut w, 2);
    t.exec(copy.to_str().unwrap());
    let a = w.wait_for("the exec graded as drift", |v| is("anomaly")(v) && for_pid(t.pid)(v));
    assert_eq!(a["subsystem"], "memory-maps", "{a}");
    assert_eq!(a["severity"], "degrade", "{a}");
    assert!(w.seen.iter().any(|v| is("exec")(v) && for_pid(t.pid)(v)), "no exec event before the anomaly");
}
