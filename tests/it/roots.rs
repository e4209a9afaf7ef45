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
