//! One anomaly per root cause, live (docs/contracts.md §8): a limit raised on
//! a cgroup of a hundred real processes is one anomaly naming the cgroup and
//! all of them, and recovers once; a process moved to a cgroup with the same
//! limits is one anomaly of that process, graded `log` by the seed grading.
//! Judges only its own processes and cgroups; removes both on every way out.

use crate::common;

use std::process::{Child, Command, Stdio};

use common::command::Watch;
use serde_json::Value;

/// Real children, killed and reaped on every way out.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether an anomaly or recovered event names `pid`, as its process or as
/// one of the processes of an object (`pids`).
fn names(v: &Value, pid: u32) -> bool {
    v["pid"] == pid || v["pids"].as_array().is_some_and(|p| p.iter().any(|p| *p == pid))
}

fn pids_of(v: &Value) -> Vec<u32> {
    let mut p: Vec<u32> = v["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_u64()).filter_map(|p| u32::try_from(p).ok()).collect())
        .unwrap_or_default();
    p.sort_unstable();
    p
}

#[test]
fn a_hundred_processes_one_limit_one_anomaly_and_a_move_to_the_same_limits_is_one_log() {
    const TEST: &str = "a_hundred_processes_one_limit_one_anomaly_and_a_move_to_the_same_limits_is_one_log";
    if !common::is_root() {
        return common::skip(TEST, "making cgroups and moving processes into them needs root");
    }
    let Some(h) = common::hierarchy(Some("pids")).filter(|h| !h.v2) else {
        return common::skip(TEST, "no cgroup v1 pids hierarchy to make cgroups in");
    };
    // Declared before the children: dropped after them.
    let (mut jail, mut twin) = match (common::ScratchCgroup::new(&h, "jail"), common::ScratchCgroup::new(&h, "twin")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return common::skip(TEST, &e),
    };
    for cg in [&jail, &twin] {
        cg.write("pids.max", "1000").unwrap();
    }
    let mut kids = Children(Vec::new());
    for _ in 0..100 {
        let c = Command::new("sleep").arg("100000").stdin(Stdio::null()).spawn().unwrap();
        jail.enter(c.id()).unwrap();
        kids.0.push(c);
    }
    let mut ours: Vec<u32> = kids.0.iter().map(Child::id).collect();
    ours.sort_unstable();
    let mine = |v: &Value| ours.iter().any(|&p| names(v, p));

    // The default subsystems (cgroups and cgroup-limits among them), every
    // child by pid.
    let dir = tempfile::tempdir().unwrap();
    let pid_args: Vec<String> = ours.iter().map(u32::to_string).collect();
    let mut args = vec!["--interval", "200ms", "--format", "json"];
    for p in &pid_args {
        args.extend(["--pid", p.as_str()]);
    }
    let mut w = Watch::start(&args, dir.path());
    w.wait_for("a first check", |v| v["event"] == "check");
    let checks_after = |w: &mut Watch, n: u64| {
        let cycle = w.wait_for("a check", |v| v["event"] == "check")["cycle"].as_u64().unwrap();
        w.wait_for("more checks", |v| v["event"] == "check" && v["cycle"].as_u64() >= Some(cycle + n));
    };
    let anomalies_since = |w: &Watch, mark: usize, f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        w.seen[mark..].iter().filter(|v| v["event"] == "anomaly" && f(v)).cloned().collect()
    };

    // 1. pids.max raised on the cgroup of all hundred: one anomaly.
    let mark = w.seen.len();
    jail.write("pids.max", "2000").unwrap();
    let e = w.wait_for("the cgroup's anomaly", |v| v["event"] == "anomaly" && mine(v));
    checks_after(&mut w, 5);
    let raised = anomalies_since(&w, mark, &mine);
    assert_eq!(raised.len(), 1, "one anomaly for one raised limit: {raised:#?}");
    assert_eq!(e["object"], format!("cgroup pids:{}", jail.cgroup_path()), "{e}");
    assert_eq!(e["subsystem"], "cgroup-limits", "{e}");
    assert_eq!(e["severity"], "log", "{e}");
    assert_eq!(pids_of(&e), ours, "the anomaly names every process of the cgroup");
    assert_eq!(e["names"].as_array().map(Vec::len), Some(100), "{e}");
    assert!(e["changes"].to_string().contains("pids.max 1000 -> 2000"), "{e}");

    // The drift stays: once two fresh reads in a row found it, it settles
    // (the checks read through the memos again), and every check still
    // counts the hundred as drifted, with no anomaly again.
    let mark = w.seen.len();
    checks_after(&mut w, 10);
    let drifted: Vec<u64> =
        w.seen[mark..].iter().filter(|v| v["event"] == "check").filter_map(|v| v["drifted"].as_u64()).collect();
    assert!(drifted.len() >= 10 && drifted.iter().all(|&d| d >= 100), "{drifted:?}");
    assert!(anomalies_since(&w, mark, &mine).is_empty(), "{:#?}", &w.seen[mark..]);

    // 2. One child moved to a cgroup with the same limits: one anomaly of
    // that process, graded log.
    let mover = ours[0];
    let mark = w.seen.len();
    twin.enter(mover).unwrap();
    let e = w.wait_for("the move's anomaly", |v| v["event"] == "anomaly" && names(v, mover));
    checks_after(&mut w, 5);
    let moved = anomalies_since(&w, mark, &|v| names(v, mover));
    assert_eq!(moved.len(), 1, "one anomaly for one move: {moved:#?}");
    assert_eq!((e["pid"].as_u64(), e["subsystem"].as_str()), (Some(u64::from(mover)), Some("cgroups")), "{e}");
    assert_eq!(e["severity"], "log", "a move to the same limits is one root cause: {e}");
    assert!(e["object"].is_null(), "a move is the process's own: {e}");
    assert!(e["changes"].to_string().contains("(same limits)"), "{e}");
    assert!(anomalies_since(&w, mark, &mine).len() == 1, "nothing else: {:#?}", &w.seen[mark..]);

    // 3. The limit back: the cgroup recovers once, for the ninety-nine still
    // in it (the mover left it).
    let mark = w.seen.len();
    jail.write("pids.max", "1000").unwrap();
    let r = w.wait_for("the cgroup's recovery", |v| v["event"] == "recovered" && v["object"].is_string());
    checks_after(&mut w, 5);
    let recovered: Vec<&Value> = w.seen[mark..]
        .iter()
        .filter(|v| v["event"] == "recovered" && mine(v) && v["subsystem"] == "cgroup-limits")
        .collect();
    assert_eq!(recovered.len(), 1, "the object recovers once: {recovered:#?}");
    assert_eq!(r["object"], format!("cgroup pids:{}", jail.cgroup_path()), "{r}");
    assert_eq!(pids_of(&r), ours, "{r}");

    let (status, _) = w.terminate();
    assert_eq!(status, 0);
    drop(kids);
}

/// A one-shot `fdir check` of processes in two cgroups: the `cgroup-limits`
/// form of processes that lead to the same cgroups is made once a check
/// (`shared.rs`), and one that is the baseline's is known by its digest.
/// A limit changed on one cgroup is still seen for each of its processes,
/// through the form they share, and never for the processes of the other
/// cgroup, whose own `cgroup` files are still read (a process moved
/// between the snapshot and the check is its own anomaly).
#[test]
fn a_limit_changed_under_a_shared_form_is_seen_for_its_processes_only() {
    const TEST: &str = "a_limit_changed_under_a_shared_form_is_seen_for_its_processes_only";
    if !common::is_root() {
        return common::skip(TEST, "making cgroups and moving processes into them needs root");
    }
    let Some(h) = common::hierarchy(Some("pids")).filter(|h| !h.v2) else {
        return common::skip(TEST, "no cgroup v1 pids hierarchy to make cgroups in");
    };
    let (mut a, mut b) = match (common::ScratchCgroup::new(&h, "forma"), common::ScratchCgroup::new(&h, "formb")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return common::skip(TEST, &e),
    };
    for cg in [&a, &b] {
        cg.write("pids.max", "1000").unwrap();
    }
    let mut kids = Children(Vec::new());
    for i in 0..6 {
        let c = Command::new("sleep").arg("100000").stdin(Stdio::null()).spawn().unwrap();
        if i < 3 { a.enter(c.id()) } else { b.enter(c.id()) }.unwrap();
        kids.0.push(c);
    }
    let pids: Vec<u32> = kids.0.iter().map(Child::id).collect();
    let (in_a, in_b) = pids.split_at(3);
    let dir = tempfile::tempdir().unwrap();
    let pid_args: Vec<String> = pids.iter().map(u32::to_string).collect();
    let with_pids = |first: &[&'static str]| {
        let mut args: Vec<&str> = first.to_vec();
        for p in &pid_args {
            args.extend(["--pid", p.as_str()]);
        }
        common::command::run(&args, dir.path())
    };
    let o = with_pids(&["snapshot"]);
    assert_eq!(common::command::code(&o), 0, "{}", common::command::stderr(&o));
    let o = with_pids(&["check", "--format", "json"]);
    assert_eq!(common::command::code(&o), 0, "unchanged: {}", common::command::stdout(&o));

    // b's limit raised: one anomaly naming b's three, none of a's.
    b.write("pids.max", "2000").unwrap();
    let o = with_pids(&["check", "--format", "json"]);
    assert_eq!(common::command::code(&o), 1, "{}", common::command::stdout(&o));
    let events = common::command::json_lines(&o);
    let drifted: Vec<&Value> = events.iter().filter(|v| v["event"] == "anomaly").collect();
    for &p in in_b {
        assert!(drifted.iter().any(|v| names(v, p)), "{p} of the changed cgroup: {drifted:#?}");
    }
    for &p in in_a {
        assert!(!drifted.iter().any(|v| names(v, p)), "{p} of the other cgroup: {drifted:#?}");
    }
    assert!(
        drifted.iter().all(|v| v["subsystem"] == "cgroup-limits" && v["changes"].to_string().contains("2000")),
        "{drifted:#?}"
    );

    // Back to the baseline's limit, and one of a's processes moved to b: that
    // process only (its own cgroup file read), the others of both known.
    b.write("pids.max", "1000").unwrap();
    b.enter(in_a[0]).unwrap();
    let o = with_pids(&["check", "--format", "json"]);
    assert_eq!(common::command::code(&o), 1, "{}", common::command::stdout(&o));
    let events = common::command::json_lines(&o);
    let drifted: Vec<&Value> = events.iter().filter(|v| v["event"] == "anomaly").collect();
    assert!(drifted.iter().any(|v| names(v, in_a[0])), "the moved process: {drifted:#?}");
    for &p in in_a[1..].iter().chain(in_b) {
        assert!(!drifted.iter().any(|v| names(v, p)), "{p} did not change: {drifted:#?}");
    }
    drop(kids);
}
