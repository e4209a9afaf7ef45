//! fdir without privilege, and on kernels without a feature.
//!
//! As root, the binary runs as `nobody` (uid and gid 65534, no supplementary
//! groups) in a directory it may write, on a testee that runs as `nobody`
//! too: snapshot, check and watch work on the user's own process; other
//! users' processes (`--all`, `--pid 1`) are listed as unobservable with the
//! reason, never a panic, never exit 2; root's baseline file cannot be read
//! by it. Not as root, the own-process part runs as the current user and the
//! rest is skipped (and counted).
//!
//! Missing kernel features and privileges degrade with a stated reason:
//! cgroup hierarchies fdir cannot see (no cgroup2 mounted), a sysctl missing
//! from a copy of /proc/sys, securityfs (genuinely absent on this project's
//! VM), seccomp filter programs without CAP_SYS_ADMIN (the count is kept).

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output};

use common::command::{Watch, assert_event_schema, code, fdir, is, json_lines, stderr, stdout};
use common::{NodeCopy, Testee, is_root, skip};
use fdir::canon::cgroup_limits;
use fdir::{CgroupMounts, ManualClock, Observation, Procfs, Subsystem, snapshot_with};

const NOBODY: u32 = 65534;

/// Who the unprivileged runs are: `nobody` when we are root, else ourselves.
fn user() -> Option<(u32, u32)> {
    is_root().then_some((NOBODY, NOBODY))
}

fn as_user(cmd: &mut Command) {
    if let Some((uid, gid)) = user() {
        cmd.uid(uid).gid(gid);
    }
}

/// A directory the user may write (sticky, like /tmp: fdir refuses a
/// baseline in a directory others may write without it).
fn user_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Loads a baseline file the user wrote. fdir (here root) refuses a file
/// another user owns: it is root's while loaded, then the user's again.
fn load_users_file(path: &Path) -> Result<fdir::baseline::BaselineFile, fdir::Error> {
    let Some((uid, gid)) = user() else { return fdir::baseline::load(path, None) };
    std::os::unix::fs::chown(path, Some(0), Some(0)).unwrap();
    let loaded = fdir::baseline::load(path, None);
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    loaded
}

fn run_as_user(args: &[&str], dir: &Path) -> Output {
    let mut cmd = fdir();
    cmd.args(args).current_dir(dir);
    as_user(&mut cmd);
    cmd.output().unwrap()
}

/// Exit 0, 1 or 2 as asked, no panic, no signal.
fn assert_exit(o: &Output, expected: &[i32], what: &str) {
    assert!(o.status.signal().is_none(), "{what}: killed by a signal: {}", stderr(o));
    assert!(!stderr(o).contains("panicked"), "{what}: {}", stderr(o));
    assert!(expected.contains(&code(o)), "{what}: exit {} not {expected:?}: {}{}", code(o), stdout(o), stderr(o));
}

#[test]
fn the_users_own_process_is_snapshotted_checked_and_watched() {
    let dir = user_dir();
    let d = dir.path();
    let mut t = Testee::spawn_with(as_user);
    let pid = t.pid.to_string();
    if let Some((uid, _)) = user() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.lines().any(|l| l.starts_with("Uid:") && l.contains(&uid.to_string())), "{status}");
    }

    // Every process subsystem of its own process is observable without privilege.
    let o = run_as_user(&["snapshot", "--pid", &pid, "--format", "json"], d);
    assert_exit(&o, &[0], "snapshot");
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let unobservable: Vec<_> = events.iter().filter(|v| v["event"] == "unobservable").collect();
    assert!(unobservable.is_empty(), "own process: {unobservable:#?}");
    let file = d.join("fdir-baseline.json");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "the baseline is the user's alone");
    if let Some((uid, _)) = user() {
        assert_eq!(meta.uid(), uid);
    }

    assert_exit(&run_as_user(&["check", "--pid", &pid], d), &[0], "check");
    t.must("nnp");
    let o = run_as_user(&["check", "--format", "json"], d);
    assert_exit(&o, &[1], "check after nnp");
    assert!(json_lines(&o).iter().any(|v| v["event"] == "anomaly" && v["subsystem"] == "seccomp"), "{}", stdout(&o));

    // watch: a fresh baseline, a live change seen, exit 0 on SIGTERM.
    let mut w =
        Watch::start_with(&["--pid", &pid, "--rebaseline", "--interval", "200ms", "--format", "json"], d, as_user);
    w.wait_for("a check", is("check"));
    t.must("seccomp");
    let a = w.wait_for("the anomaly", is("anomaly"));
    assert_eq!(a["subsystem"], "seccomp");
    let seen = w.seen.clone();
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert!(!seen.iter().chain(&rest).any(|v| v["event"] == "error" || v["event"] == "unobservable"), "{seen:#?}");
}

#[test]
fn other_users_processes_are_unobservable_with_a_reason() {
    if !is_root() {
        skip("other_users_processes_are_unobservable_with_a_reason", "not root: cannot run fdir as another user");
        return;
    }
    let dir = user_dir();
    let d = dir.path();

    // --all: root's processes are listed as unobservable, with the reason.
    let o = run_as_user(&["snapshot", "--all", "--format", "json"], d);
    assert_exit(&o, &[0], "snapshot --all as nobody");
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let init: Vec<_> = events.iter().filter(|v| v["event"] == "unobservable" && v["pid"] == 1).collect();
    assert!(!init.is_empty(), "pid 1 is root's: {}", stdout(&o));
    for v in &init {
        assert!(v["reason"].as_str().unwrap().contains("permission denied reading /proc/1/"), "{v}");
    }
    let subsystems: Vec<&str> = init.iter().filter_map(|v| v["subsystem"].as_str()).collect();
    assert!(subsystems.contains(&"memory-maps"), "{subsystems:?}");
    let o = run_as_user(&["check", "--all", "--format", "json"], d);
    assert_exit(&o, &[0, 1], "check --all as nobody");
    let summary = json_lines(&o).into_iter().find(|v| v["event"] == "check").unwrap();
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(summary["unobservable"].as_u64().unwrap() >= 1, "{summary}");

    // --pid 1: what can be read is baselined, the rest is unobservable.
    let o = run_as_user(&["snapshot", "--pid", "1", "--baseline", "init.json"], d);
    assert_exit(&o, &[0], "snapshot --pid 1 as nobody");
    // In text, one line: what, whose, why, and what to do.
    let text = stdout(&o);
    let line = text.lines().find(|l| l.contains(" UNREADABLE ")).unwrap_or_else(|| panic!("{text}"));
    for w in ["cannot read memory-maps", "of 1 process (pid 1", "permission denied", "CAP_SYS_PTRACE", "SECURITY.md"] {
        assert!(line.contains(w), "{w:?} missing: {line}");
    }
    assert_exit(&run_as_user(&["check", "--baseline", "init.json"], d), &[0], "check --pid 1 as nobody");

    // A root-owned testee, the same.
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    let o = run_as_user(&["snapshot", "--pid", &pid, "--baseline", "root-testee.json", "--format", "json"], d);
    assert_exit(&o, &[0], "snapshot of a root process as nobody");
    assert!(
        json_lines(&o).iter().any(|v| v["event"] == "unobservable"
            && v["pid"] == t.pid
            && v["reason"].as_str().unwrap().contains("permission denied")),
        "{}",
        stdout(&o)
    );

    // watch --all as nobody: a few cycles, unobservable processes listed, exit 0.
    let mut w = Watch::start_with(&["--all", "--interval", "200ms", "--format", "json", "--rebaseline"], d, as_user);
    w.wait_for("pid 1 unobservable", |v| v["event"] == "unobservable" && v["pid"] == 1);
    w.wait_for("a few checks", |v| v["event"] == "check" && v["cycle"].as_u64() >= Some(3));
    let seen = w.seen.clone();
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert!(!seen.iter().chain(&rest).any(|v| v["event"] == "error"), "{seen:#?}");

    // The user cannot read root's baseline: refused, exit 2, naming the file.
    let root_file = d.join("root-baseline.json");
    let mut cmd = fdir();
    let o = cmd.args(["snapshot", "--pid", &pid, "--baseline"]).arg(&root_file).current_dir(d).output().unwrap();
    assert_exit(&o, &[0], "snapshot as root");
    let o = run_as_user(&["check", "--baseline", root_file.to_str().unwrap()], d);
    assert_exit(&o, &[2], "nobody checking root's baseline");
    assert!(stderr(&o).contains(&format!("baseline file {} cannot be read", root_file.display())), "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    drop(t);
}

#[test]
fn the_node_is_observable_without_privilege() {
    let dir = user_dir();
    let o = run_as_user(&["snapshot", "--system", "--format", "json"], dir.path());
    assert_exit(&o, &[0], "snapshot --system");
    let o = run_as_user(&["check", "--format", "json"], dir.path());
    assert_exit(&o, &[0, 1], "check --system");
    json_lines(&o).iter().for_each(assert_event_schema);
}

/// The records of `sub` in a snapshot.
fn records(s: &fdir::Snapshot, sub: Subsystem) -> Vec<fdir::canon::Record> {
    match &s.subsystems[&sub] {
        Observation::Observed { records, .. } => records.to_vec(),
        other => panic!("{sub}: {other:?}"),
    }
}

#[test]
fn cgroup_hierarchies_fdir_cannot_see_degrade_with_a_reason() {
    // No hierarchy mounted where fdir looks (a kernel or container without
    // cgroup2, say): cgroup-limits is still observed, each cgroup with the reason.
    let t = Testee::spawn();
    let clock = ManualClock::new();
    let subs = [Subsystem::Cgroups, Subsystem::CgroupLimits];
    let fs = Procfs::try_pid(t.pid).unwrap().with_cgroup_mounts(CgroupMounts::new());
    let s = snapshot_with(&clock, &fs, &subs).unwrap();
    let recs = records(&s, Subsystem::CgroupLimits);
    assert!(!recs.is_empty());
    for r in &recs {
        assert!(r.key.ends_with(cgroup_limits::DIRECTORY), "{r:?}");
        assert_eq!(r.value, "unreadable: the hierarchy is not mounted where fdir can see it", "{r:?}");
    }
    // The memberships themselves are read from /proc, not the cgroup mounts.
    assert!(!records(&s, Subsystem::Cgroups).is_empty());

    // Mounts that point at an empty tree: each cgroup "does not exist".
    let empty = tempfile::tempdir().unwrap();
    let mut mounts = CgroupMounts::new();
    let found = CgroupMounts::discover().unwrap();
    for h in found.hierarchies() {
        mounts.insert(h, empty.path().join(h));
    }
    let fs = Procfs::try_pid(t.pid).unwrap().with_cgroup_mounts(mounts);
    let s = snapshot_with(&clock, &fs, &subs).unwrap();
    for r in records(&s, Subsystem::CgroupLimits) {
        assert_eq!(r.value, "unreadable: the cgroup directory does not exist", "{r:?}");
    }
    // Checked against the same view, nothing drifts.
    assert!(fdir::check_with(&s, &clock, &fs, &subs).unwrap().is_ok());
}

#[test]
fn a_sysctl_and_securityfs_missing_from_the_node_read_as_absent() {
    // A copy of /proc/sys without one key and with no securityfs: the kernel
    // subsystem is observed, the missing ones recorded as absent.
    let node = NodeCopy::new();
    let key = "proc/sys/kernel/kptr_restrict";
    let _ = std::fs::remove_file(node.path(key));
    let _ = std::fs::remove_dir_all(node.path("sys/kernel"));
    let clock = ManualClock::new();
    let s = snapshot_with(&clock, &node.source(), &[Subsystem::Kernel, Subsystem::KernelTaint]).unwrap();
    let recs = records(&s, Subsystem::Kernel);
    let value = |k: &str| recs.iter().find(|r| r.key == k).map(|r| r.value.clone());
    assert_eq!(value("kernel.kptr_restrict").as_deref(), Some("absent"));
    assert_eq!(value("lockdown").as_deref(), Some("absent"));
    assert_eq!(value("lsm").as_deref(), Some("absent"));
}

#[test]
fn securityfs_absent_on_this_machine_is_stated() {
    if Path::new("/sys/kernel/security/lockdown").exists() {
        skip("securityfs_absent_on_this_machine_is_stated", "securityfs is mounted here");
        return;
    }
    let dir = user_dir();
    let o = run_as_user(&["snapshot", "--system", "--baseline", "node.json"], dir.path());
    assert_exit(&o, &[0], "snapshot --system without securityfs");
    let file = load_users_file(&dir.path().join("node.json")).unwrap();
    let recs = records(&file.targets[0], Subsystem::Kernel);
    for k in ["lockdown", "lsm"] {
        assert_eq!(recs.iter().find(|r| r.key == k).map(|r| r.value.as_str()), Some("absent"), "{k}");
    }
    assert_exit(&run_as_user(&["check", "--baseline", "node.json"], dir.path()), &[0], "check --system");
    // Without privilege, a sysctl only root may read is said in its record;
    // the others are still observed.
    if user().is_some() && std::fs::metadata("/proc/sys/vm/mmap_rnd_bits").is_ok_and(|m| m.mode() & 0o004 == 0) {
        let mmap = recs.iter().find(|r| r.key == "vm.mmap_rnd_bits");
        assert_eq!(mmap.map(|r| r.value.as_str()), Some("unreadable: permission denied"), "{recs:?}");
    }
}

#[test]
fn seccomp_filters_without_cap_sys_admin_degrade_to_the_count_with_the_reason() {
    // As root the runs are nobody's; otherwise the current user's, who lacks
    // CAP_SYS_ADMIN as well (the same path).
    let dir = user_dir();
    let d = dir.path();
    let mut t = Testee::spawn_with(as_user);
    let pid = t.pid.to_string();
    t.must("nnp"); // an unprivileged process needs no_new_privs to install a filter
    t.must("seccomp");
    let o = run_as_user(&["snapshot", "--pid", &pid, "--subsystems", "seccomp-filters,code", "--format", "json"], d);
    assert_exit(&o, &[0], "snapshot of seccomp-filters and code without CAP_SYS_ADMIN");
    let file = load_users_file(&d.join("fdir-baseline.json")).unwrap();
    let recs = records(&file.targets[0], Subsystem::SeccompFilters);
    let value = |k: &str| recs.iter().find(|r| r.key == k).map(|r| r.value.clone());
    assert_eq!(value("chain").as_deref(), Some("1 filter"), "{recs:?}");
    let programs = value("programs").unwrap_or_default();
    if user().is_some() {
        assert_eq!(programs, "unreadable: reading seccomp filter programs needs CAP_SYS_ADMIN", "{recs:?}");
    } else {
        assert!(programs.starts_with("unreadable: "), "{recs:?}");
    }
    // Its own code is read without privilege.
    assert!(!records(&file.targets[0], Subsystem::Code).is_empty());
    assert_exit(&run_as_user(&["check"], d), &[0], "check");
    // One more filter: the count catches it, and says why the programs are not named.
    t.must("seccomp");
    let o = run_as_user(&["check", "--format", "json"], d);
    assert_exit(&o, &[1], "check after a second filter");
    let a = json_lines(&o).into_iter().find(|v| v["event"] == "anomaly").unwrap();
    assert_eq!(a["subsystem"], "seccomp-filters");
    let text = a["changes"].to_string();
    assert!(text.contains("seccomp filter count 1 -> 2") && text.contains("programs unreadable"), "{text}");
}
