//! Live tests of the subsystems beyond the seed: a real child (`fdir-testee`)
//! or a scratch object the test creates and removes (a cgroup, a directory,
//! a copy of the node's /proc/sys) changes for real, and `check` must name
//! exactly the subsystem and the thing that changed — and nothing else.

use crate::common;

use std::time::{Duration, Instant};

use common::{NodeCopy, ScratchCgroup, Testee, assert_drift, getrlimit, hierarchy, is_root, prlimit, skip, texts};
use fdir::{
    Anomaly, MountView, Observation, Procfs, Scope, Snapshot, Status, Subsystem, SystemClock, Verdict, check_with,
    snapshot_with,
};

const ALL: &[Subsystem] = Subsystem::ALL;

/// A baseline of every subsystem of `t`, checked once to be quiet.
fn baseline(fs: &Procfs) -> Snapshot {
    let b = snapshot_with(&SystemClock, fs, ALL).unwrap();
    let v = check_with(&b, &SystemClock, fs, ALL).unwrap();
    assert!(v.is_ok(), "drift before any change: {:#?}", v.anomalies());
    b
}

fn anomalies(b: &Snapshot, fs: &Procfs) -> Vec<Anomaly> {
    check_with(b, &SystemClock, fs, ALL).unwrap().anomalies().to_vec()
}

#[test]
fn capability_drop_is_detected_with_every_subsystem_on() {
    if !is_root() {
        return skip("capability_drop_is_detected_with_every_subsystem_on", "needs root (CAP_SETPCAP)");
    }
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    t.must("drop-bounding 0");
    assert_drift(&anomalies(&b, &fs), &[Subsystem::Credentials], Subsystem::Credentials, "lost cap_chown");
}

/// Run-time churn a service makes for itself or its operator makes for it,
/// and that is not isolation (SUPPORTED.md): CPU affinity set by `taskset`,
/// the umask, transparent huge pages off, the timer slack, the thread's name.
/// Quiet with every subsystem on; and a real change after it is still caught.
#[test]
fn churn_that_is_not_isolation_is_quiet() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    let taskset = std::process::Command::new("taskset").args(["-p", "1", &t.pid.to_string()]).output();
    match taskset {
        Ok(o) if o.status.success() => {}
        Ok(o) => skip("churn_that_is_not_isolation_is_quiet: taskset", &String::from_utf8_lossy(&o.stderr)),
        Err(e) => skip("churn_that_is_not_isolation_is_quiet: taskset", &format!("cannot run taskset: {e}")),
    }
    for cmd in ["umask 077", "thp-disable", "timerslack 200000", "name renamed"] {
        t.must(cmd);
    }
    let got = anomalies(&b, &fs);
    assert!(got.is_empty(), "churn that is not isolation drifted: {got:#?}");
    if is_root() {
        t.must("drop-bounding 0");
        assert_drift(&anomalies(&b, &fs), &[Subsystem::Credentials], Subsystem::Credentials, "lost cap_chown");
    }
}

#[test]
fn unsharing_a_network_namespace_is_detected() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    if let Err(e) = t.cmd("unshare-net") {
        return skip("unsharing_a_network_namespace_is_detected", &format!("cannot unshare the network: {e}"));
    }
    let a = anomalies(&b, &fs);
    assert_drift(&a, &[Subsystem::Namespaces], Subsystem::Namespaces, "namespace net ");
    assert_eq!(a[0].changes.len(), 1, "only net moved: {:#?}", texts(&a[0]));
    let c = &a[0].changes[0];
    assert_ne!(c.before, c.after);
    assert!(c.after.as_deref().unwrap().contains(':'), "dev:inode: {c}");
}

/// A source that keeps descriptors reads the namespace links through
/// `/proc/PID/ns` kept open: a namespace entered after the directory was
/// kept is still seen by the next check (the directory stands for the
/// process; each link is resolved when it is read), and the checks before
/// it are quiet.
#[test]
fn a_namespace_entered_after_the_ns_directory_is_kept_is_seen() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let subs = &[Subsystem::Namespaces];
    let b = snapshot_with(&SystemClock, &fs, subs).unwrap();
    let mut checker = fdir::Checker::new();
    for _ in 0..3 {
        let v = checker.check(&b, &SystemClock, &fs, subs).unwrap();
        assert!(v.is_ok(), "drift before any change: {:#?}", v.anomalies());
    }
    assert!(fs.kept_files() >= 1, "the ns directory is kept open");
    if let Err(e) = t.cmd("unshare-net") {
        return skip(
            "a_namespace_entered_after_the_ns_directory_is_kept_is_seen",
            &format!("cannot unshare the network: {e}"),
        );
    }
    let v = checker.check(&b, &SystemClock, &fs, subs).unwrap();
    assert_drift(v.anomalies(), subs, Subsystem::Namespaces, "namespace net ");
}

#[test]
fn a_pid_namespace_for_children_shows_as_pending() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    if let Err(e) = t.cmd("unshare-pid") {
        return skip("a_pid_namespace_for_children_shows_as_pending", &format!("cannot unshare pid: {e}"));
    }
    let a = anomalies(&b, &fs);
    assert_drift(&a, &[Subsystem::Namespaces], Subsystem::Namespaces, "namespace pid_for_children ");
    assert!(texts(&a[0])[0].contains("-> pending"), "{:#?}", texts(&a[0]));
}

/// Whether the host's (this test's) mount table shows `dir`.
fn host_sees(dir: &std::path::Path) -> bool {
    let me = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let d = dir.to_string_lossy();
    me.lines().any(|l| l.split(' ').nth(4) == Some(&*d))
}

#[test]
fn a_tmpfs_in_a_private_mount_namespace_is_detected() {
    if !is_root() {
        return skip("a_tmpfs_in_a_private_mount_namespace_is_detected", "needs root (CAP_SYS_ADMIN) to unshare");
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);

    // A private mount namespace: the namespace changes, the table does not
    // (ids are renumbered, never compared), except for propagation on hosts
    // whose mounts were shared.
    if let Err(e) = t.cmd("unshare-mount") {
        return skip("a_tmpfs_in_a_private_mount_namespace_is_detected", &format!("cannot unshare: {e}"));
    }
    let a = anomalies(&b, &fs);
    assert_eq!(a[0].subsystem, Subsystem::Namespaces, "{a:#?}");
    assert_eq!(texts(&a[0]).len(), 1);
    assert!(texts(&a[0])[0].starts_with("namespace mnt "), "{:#?}", texts(&a[0]));
    for extra in &a[1..] {
        assert_eq!(extra.subsystem, Subsystem::Mounts, "{a:#?}");
        assert!(texts(extra).iter().all(|t| t.contains(" propagation ")), "{:#?}", texts(extra));
    }

    // A tmpfs on a directory the test made, seen only in the child's namespace.
    t.must(&format!("mount-tmpfs {}", dir_path.display()));
    let a = anomalies(&b, &fs);
    let got: Vec<_> = a.iter().map(|a| a.subsystem).collect();
    assert_eq!(got, [Subsystem::Namespaces, Subsystem::Mounts], "{a:#?}");
    let want = format!("new mount {} tmpfs fdir-test ", dir_path.display());
    assert!(texts(&a[1]).iter().any(|t| t.starts_with(&want)), "{want}: {:#?}", texts(&a[1]));
    assert!(!host_sees(&dir_path), "the tmpfs leaked into the host's mount namespace");

    drop(t);
    assert!(!host_sees(&dir_path));
    dir.close().unwrap();
}

/// The descriptors of this test process open on `/proc/PID/mountinfo`.
fn kept_mount_tables(pid: u32) -> usize {
    let want = std::path::PathBuf::from(format!("/proc/{pid}/mountinfo"));
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| *target == want)
        .count()
}

/// The view of `fs`'s process now: its mount namespace and root.
fn view_of(fs: &Procfs) -> MountView {
    let ns = fdir::Source::stat(fs, "ns/mnt").unwrap();
    let (root, root_mount) = fdir::Source::mount_of(fs, "root").unwrap();
    MountView { namespace: (ns.dev, ns.ino), root: (root.dev, root.ino), root_mount }
}

/// A `mountinfo` descriptor is bound to the namespace and root its
/// process had when it was opened. The source keeps one only under that
/// view, and only once its text shows the view's root mount; a new view
/// opens its own, which shows what the process sees now.
#[test]
fn a_mount_table_is_kept_open_only_for_the_view_it_was_opened_in() {
    const NAME: &str = "a_mount_table_is_kept_open_only_for_the_view_it_was_opened_in";
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let fresh = |pid: u32| std::fs::read(format!("/proc/{pid}/mountinfo")).unwrap();
    let view = view_of(&fs);
    let mut buf = Vec::new();

    // A view whose root mount the table does not show (opened in another
    // view, as far as the source can tell): read, and not kept.
    fdir::Source::read_mounts(&fs, Some(&MountView { root_mount: u64::from(u32::MAX) + 7, ..view }), &mut buf).unwrap();
    assert_eq!(buf, fresh(t.pid));
    assert_eq!(kept_mount_tables(t.pid), 0, "kept for a view its table does not show");
    // No view: read afresh, as always.
    fdir::Source::read_mounts(&fs, None, &mut buf).unwrap();
    assert_eq!(kept_mount_tables(t.pid), 0);

    // The process's own view: kept, and read again through it.
    fdir::Source::read_mounts(&fs, Some(&view), &mut buf).unwrap();
    assert_eq!(buf, fresh(t.pid));
    assert_eq!(kept_mount_tables(t.pid), 1, "not kept for the process's view");
    fdir::Source::read_mounts(&fs, Some(&view), &mut buf).unwrap();
    assert_eq!(buf, fresh(t.pid));
    assert_eq!(kept_mount_tables(t.pid), 1, "a second descriptor for the same view");

    if !is_root() {
        return skip(NAME, "needs root (CAP_SYS_ADMIN) to unshare the mount namespace");
    }
    if let Err(e) = t.cmd("unshare-mount") {
        return skip(NAME, &format!("cannot unshare: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    t.must(&format!("mount-tmpfs {}", dir.path().display()));
    let shows_tmpfs = |text: &[u8]| String::from_utf8_lossy(text).contains(&format!(" {} ", dir.path().display()));
    assert!(shows_tmpfs(&fresh(t.pid)), "the child's tmpfs is not in its table");

    // The descriptor kept for the old view still reads the old namespace:
    // why it is kept under the view, and the view is found each time.
    fdir::Source::read_mounts(&fs, Some(&view), &mut buf).unwrap();
    assert!(!shows_tmpfs(&buf), "the old namespace's descriptor shows the new namespace");
    let now = view_of(&fs);
    assert_ne!(now, view, "unshare left the view as it was");
    fdir::Source::read_mounts(&fs, Some(&now), &mut buf).unwrap();
    assert!(shows_tmpfs(&buf), "the new view's read does not show the child's tmpfs");
    assert_eq!(buf, fresh(t.pid));
    assert_eq!(kept_mount_tables(t.pid), 2, "one descriptor a view");
    // An observation reads the table through the new view's descriptor and
    // closes the old view's, unused, at its end.
    let seen = snapshot_with(&SystemClock, &fs, &[Subsystem::Namespaces, Subsystem::Mounts]).unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    match seen.subsystems.get(&Subsystem::Mounts) {
        Some(Observation::Observed { records, .. }) => {
            assert!(records.iter().any(|r| r.key.contains(&d) || r.value.contains(&d)), "no {d} in {records:#?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kept_mount_tables(t.pid), 1, "the old view's descriptor outlived an observation");
    drop(fs);
    assert_eq!(kept_mount_tables(t.pid), 0, "descriptors left open after the source is dropped");
    drop(t);
    assert!(!host_sees(dir.path()));
    dir.close().unwrap();
}

#[test]
fn an_rlimit_changed_with_prlimit_is_detected() {
    let t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    #[allow(clippy::unnecessary_cast)] // c_int on musl
    let nofile = libc::RLIMIT_NOFILE as u32;
    let (soft, hard) = getrlimit(t.pid, nofile);
    let lower = (soft / 2).max(16);
    prlimit(t.pid, nofile, lower, hard).unwrap();
    let a = anomalies(&b, &fs);
    assert_drift(
        &a,
        &[Subsystem::Limits],
        Subsystem::Limits,
        &format!("Max open files soft {soft} -> {lower} (lowered)"),
    );
    assert_eq!(texts(&a[0]).len(), 1, "{:#?}", texts(&a[0]));
    // Back to where it was: quiet again.
    prlimit(t.pid, nofile, soft, hard).unwrap();
    assert!(anomalies(&b, &fs).is_empty());
}

/// Runs a cgroup-limits case: `t` in a scratch cgroup of `h` (nested one
/// level if `nested`), baseline, `file` := `value` on the scratch cgroup
/// (the parent, if nested), check. `Err` is a reason to skip.
fn cgroup_case(
    name: &str,
    h: Option<common::Hierarchy>,
    nested: bool,
    file: &str,
    value: &str,
) -> Result<(Vec<Anomaly>, String, String), String> {
    if !is_root() {
        return Err("needs root to create a cgroup".into());
    }
    let h = h.ok_or("no such cgroup hierarchy mounted")?;
    let mut outer = ScratchCgroup::new(&h, name)?;
    let mut inner = if nested { Some(outer.nested("leaf")?) } else { None };
    let t = Testee::spawn();
    match &mut inner {
        Some(i) => i.enter(t.pid)?,
        None => outer.enter(t.pid)?,
    }
    let old = outer.read(file).map_err(|e| format!("{file} cannot be read here: {e}"))?.trim().to_owned();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    outer.write(file, value).map_err(|e| format!("cannot write {file}: {e}"))?;
    let a = anomalies(&b, &fs);
    // Put it back: the drift goes away.
    outer.write(file, &old).unwrap();
    assert!(anomalies(&b, &fs).is_empty(), "{name}: still drifted after the limit was restored");
    drop(t);
    drop(inner);
    Ok((a, outer.cgroup_path(), old))
}

fn hierarchy_v1(controller: &str) -> Option<common::Hierarchy> {
    hierarchy(Some(controller)).filter(|h| !h.v2)
}

#[test]
fn cgroup_v2_limit_change_is_detected() {
    let h = hierarchy(None).filter(|h| h.v2);
    let pids = h.as_ref().is_some_and(|h| {
        std::fs::read_to_string(h.mount.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
    });
    // pids.max where the pids controller is enabled for children; otherwise
    // a limit of the cgroup core every v2 cgroup has.
    let (file, value, want) =
        if pids { ("pids.max", "10", "max -> 10") } else { ("cgroup.max.descendants", "5", "max -> 5") };
    match cgroup_case("v2", h, false, file, value) {
        Ok((a, path, _)) => {
            assert_drift(
                &a,
                &[Subsystem::CgroupLimits],
                Subsystem::CgroupLimits,
                &format!("cgroup unified:{path} {file} {want}"),
            );
            assert_eq!(texts(&a[0]).len(), 1, "{:#?}", texts(&a[0]));
        }
        Err(e) => skip("cgroup_v2_limit_change_is_detected", &e),
    }
}

#[test]
fn cgroup_v1_pids_max_is_detected() {
    match cgroup_case("pids", hierarchy_v1("pids"), false, "pids.max", "10") {
        Ok((a, path, _)) => {
            assert_drift(
                &a,
                &[Subsystem::CgroupLimits],
                Subsystem::CgroupLimits,
                &format!("cgroup pids:{path} pids.max max -> 10 (limit set)"),
            );
            assert_eq!(texts(&a[0]).len(), 1);
        }
        Err(e) => skip("cgroup_v1_pids_max_is_detected", &e),
    }
}

#[test]
fn cgroup_v1_memory_limit_is_detected() {
    match cgroup_case("memory", hierarchy_v1("memory"), false, "memory.limit_in_bytes", "104857600") {
        Ok((a, path, old)) => {
            assert_drift(
                &a,
                &[Subsystem::CgroupLimits],
                Subsystem::CgroupLimits,
                &format!("cgroup memory:{path} memory.limit_in_bytes {old} -> 104857600"),
            );
        }
        Err(e) => skip("cgroup_v1_memory_limit_is_detected", &e),
    }
}

#[test]
fn a_limit_raised_on_a_parent_cgroup_is_detected() {
    match cgroup_case("parent", hierarchy_v1("pids"), true, "pids.max", "7") {
        Ok((a, path, _)) => {
            // The process is in PATH/leaf; the limit changed on PATH.
            assert_drift(
                &a,
                &[Subsystem::CgroupLimits],
                Subsystem::CgroupLimits,
                &format!("cgroup pids:{path} pids.max"),
            );
            assert!(!texts(&a[0]).iter().any(|t| t.contains("/leaf")), "{:#?}", texts(&a[0]));
        }
        Err(e) => skip("a_limit_raised_on_a_parent_cgroup_is_detected", &e),
    }
}

/// A chroot into a directory with no mount below it leaves the process a
/// `mountinfo` with no line: its mount table drifted (to "no mount"), which
/// a check reports as drift, not as a failed read.
#[test]
fn a_chroot_where_no_mount_is_reachable_is_drift() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    let jail = tempfile::tempdir().unwrap();
    if let Err(e) = t.cmd(&format!("chroot {}", jail.path().display())) {
        skip("a_chroot_where_no_mount_is_reachable_is_drift", &format!("cannot chroot: {e}"));
        return;
    }
    let v = check_with(&b, &SystemClock, &fs, &[Subsystem::Mounts]).unwrap();
    let a = v.anomalies();
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].subsystem, Subsystem::Mounts);
    assert!(texts(&a[0]).iter().any(|t| t.contains("(none)")), "{:#?}", texts(&a[0]));
}

#[test]
fn lsm_is_not_applicable_where_no_module_labels_processes() {
    let t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    let lsm_here = std::fs::read(format!("/proc/{}/attr/current", t.pid));
    match (b.subsystems.get(&Subsystem::Lsm).unwrap(), lsm_here) {
        (Observation::NotApplicable { reason }, Err(_)) => {
            assert!(reason.contains("no security module"), "{reason}");
            let v = check_with(&b, &SystemClock, &fs, &[Subsystem::Lsm]).unwrap();
            assert!(v.is_ok());
            assert!(matches!(v.report().subsystems.get(&Subsystem::Lsm), Some(Status::NotApplicable { .. })));
            assert_eq!(v.report().unobservable().count(), 0, "not applicable is not unobservable");
            let json = serde_json::to_string(&b.subsystems[&Subsystem::Lsm]).unwrap();
            assert!(json.contains(r#""status":"not-applicable""#), "{json}");
        }
        (Observation::Observed { records, .. }, Ok(label)) => {
            assert!(records.iter().any(|r| r.key == "current"), "{records:?} for {label:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_live_node_is_observed_and_quiet() {
    let node = Procfs::try_system().unwrap();
    assert_eq!(fdir::Source::target(&node).unwrap().scope(), Scope::Node);
    let b = snapshot_with(&SystemClock, &node, ALL).unwrap();
    for (&s, obs) in &b.subsystems {
        match (s.scope(), obs) {
            (Scope::Node, Observation::Observed { records, .. }) => assert!(!records.is_empty(), "{s}"),
            (Scope::Process, Observation::NotApplicable { .. }) => {}
            other => panic!("{s}: {other:?}"),
        }
    }
    let v = check_with(&b, &SystemClock, &node, ALL).unwrap();
    assert!(v.is_ok(), "{:#?}", v.anomalies());
}

#[test]
fn a_sysctl_changed_in_a_copy_of_proc_sys_is_detected() {
    let real = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").ok();
    let copy = NodeCopy::new();
    if !copy.path("proc/sys/kernel/kptr_restrict").exists() {
        return skip("a_sysctl_changed_in_a_copy_of_proc_sys_is_detected", "no kernel.kptr_restrict on this kernel");
    }
    let node = copy.source();
    let b = snapshot_with(&SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    let before = std::fs::read_to_string(copy.path("proc/sys/kernel/kptr_restrict")).unwrap();
    let before = before.trim();
    let after = if before == "2" { "1" } else { "2" };
    copy.write("proc/sys/kernel/kptr_restrict", &format!("{after}\n"));
    let v = check_with(&b, &SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    let note = if after > before { "stricter" } else { "weaker" };
    assert_drift(
        v.anomalies(),
        &[Subsystem::Kernel],
        Subsystem::Kernel,
        &format!("sysctl kernel.kptr_restrict {before} -> {after} ({note})"),
    );
    assert_eq!(texts(&v.anomalies()[0]).len(), 1);
    // The machine's own setting was never touched.
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").ok(), real);
}

#[test]
fn a_taint_in_a_copy_of_proc_sys_is_its_own_anomaly() {
    let copy = NodeCopy::new();
    copy.write("proc/sys/kernel/tainted", "0\n");
    let node = copy.source();
    let b = snapshot_with(&SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    copy.write("proc/sys/kernel/tainted", "4096\n");
    let v = check_with(&b, &SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    assert_drift(
        v.anomalies(),
        &[Subsystem::KernelTaint],
        Subsystem::KernelTaint,
        "tainted 0 -> 4096 (O: out-of-tree module loaded)",
    );
}

#[test]
fn an_absent_key_stays_quiet() {
    let copy = NodeCopy::new();
    // A key that does not exist on this kernel (or is made so in the copy).
    let key = "kernel.yama.ptrace_scope";
    let _ = std::fs::remove_file(copy.path("proc/sys/kernel/yama/ptrace_scope"));
    let node = copy.source();
    let b = snapshot_with(&SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    let Some(Observation::Observed { records, .. }) = b.subsystems.get(&Subsystem::Kernel) else { panic!("{b:?}") };
    let rec = records.iter().find(|r| r.key == key).unwrap();
    assert_eq!(rec.value, "absent");
    for _ in 0..3 {
        let v = check_with(&b, &SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
        assert!(v.is_ok(), "{:#?}", v.anomalies());
    }
    // Once it exists, that is a change, said as such.
    copy.write("proc/sys/kernel/yama/ptrace_scope", "1\n");
    let v = check_with(&b, &SystemClock, &node, Subsystem::DEFAULT_NODE).unwrap();
    assert_drift(v.anomalies(), &[Subsystem::Kernel], Subsystem::Kernel, "sysctl kernel.yama.ptrace_scope absent -> 1");
}

#[test]
fn an_isolated_busy_process_never_raises_an_anomaly() {
    // Its own mount namespace with a tmpfs, a scratch cgroup with a limit:
    // every new subsystem has state of its own to keep still while the
    // process works hard.
    let dir = tempfile::tempdir().unwrap();
    let mut t = Testee::spawn();
    let mut scratch = None;
    if is_root() {
        t.must("unshare-mount");
        t.must(&format!("mount-tmpfs {}", dir.path().display()));
        if let Some(h) = hierarchy_v1("pids")
            && let Ok(mut cg) = ScratchCgroup::new(&h, "busy")
        {
            cg.enter(t.pid).unwrap();
            cg.write("pids.max", "1000").unwrap();
            scratch = Some(cg);
        }
    } else {
        skip("an_isolated_busy_process_never_raises_an_anomaly", "not root: no private mount namespace or cgroup");
    }
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    t.must("threads 8");
    t.must("churn 3");
    // Twenty checks spread over the churn, however long they take.
    for done in 0..20 {
        let v = check_with(&b, &SystemClock, &fs, ALL).unwrap();
        assert!(matches!(v, Verdict::Ok(_)), "false alarm after {done} checks: {:#?}", v.anomalies());
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(t);
    drop(scratch);
}

#[test]
fn a_zombie_is_gone_not_drift() {
    let t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let b = baseline(&fs);
    // SAFETY: kill with a pid of our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(libc::pid_t::try_from(t.pid).unwrap(), libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fdir::Source::alive(&fs) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every subsystem whose files vanish with the process says it is gone:
    // a zombie's namespace links no longer resolve (never "pending"), its
    // mountinfo answers EINVAL, its attr files nothing.
    for s in [Subsystem::Namespaces, Subsystem::Mounts, Subsystem::Lsm, Subsystem::CgroupLimits, Subsystem::Cgroups] {
        match check_with(&b, &SystemClock, &fs, &[s]) {
            Err(fdir::Error::Gone { pid }) => assert_eq!(pid, t.pid),
            other => panic!("{s}: {other:?}"),
        }
    }
    drop(t);
}

/// The limit cases above need real cgroups of a v1 hierarchy, which a host
/// with only cgroup v2 does not have. The same cases through a canned
/// cgroupfs tree (`Procfs::mock_files`: `cgroupfs/HIERARCHY/CGROUP/FILE`)
/// run on every host: a limit changed on the process's own cgroup (v1 and
/// v2), and one raised on a parent cgroup, named by the parent's path.
#[test]
fn cgroup_limit_changes_are_detected_in_a_canned_cgroupfs_on_any_host() {
    const CGROUP: &str = "8:pids:/app/worker\n4:memory:/app/worker\n0::/app.slice/app.service\n";
    const STATUS: &str = "Name:\tapp\nUid:\t0\t0\t0\t0\nSeccomp:\t0\n";
    let tree = |changed: Option<(&'static str, &'static str)>| {
        let mut files: Vec<(&str, &str)> = vec![
            ("maps", "55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep\n"),
            ("status", STATUS),
            ("task/1/status", STATUS),
            ("cgroup", CGROUP),
            ("task/1/cgroup", CGROUP),
            ("cgroupfs/pids/pids.max", "max\n"),
            ("cgroupfs/pids/app/pids.max", "100\n"),
            ("cgroupfs/pids/app/worker/pids.max", "10\n"),
            ("cgroupfs/memory/app/worker/memory.limit_in_bytes", "52428800\n"),
            ("cgroupfs/unified/app.slice/app.service/pids.max", "50\n"),
            ("cgroupfs/unified/app.slice/app.service/memory.max", "max\n"),
        ];
        if let Some((file, value)) = changed {
            files.retain(|(f, _)| *f != file);
            files.push((file, value));
        }
        Procfs::mock_files(files)
    };
    let subs = [Subsystem::CgroupLimits];
    let clock = fdir::ManualClock::new();
    let base = snapshot_with(&clock, &tree(None), &subs).unwrap();
    assert!(check_with(&base, &clock, &tree(None), &subs).unwrap().is_ok());
    let cases: &[(&str, &str, &str)] = &[
        // (file changed, new value, words the change must carry)
        ("cgroupfs/pids/app/worker/pids.max", "7\n", "cgroup pids:/app/worker pids.max 10 -> 7"),
        ("cgroupfs/pids/app/pids.max", "max\n", "cgroup pids:/app pids.max 100 -> max"),
        ("cgroupfs/memory/app/worker/memory.limit_in_bytes", "1048576\n", "memory:/app/worker memory.limit_in_bytes"),
        (
            "cgroupfs/unified/app.slice/app.service/pids.max",
            "max\n",
            "unified:/app.slice/app.service pids.max 50 -> max",
        ),
        ("cgroupfs/unified/app.slice/app.service/memory.max", "1048576\n", "unified:/app.slice/app.service memory.max"),
    ];
    for &(file, value, words) in cases {
        let a = check_with(&base, &clock, &tree(Some((file, value))), &subs).unwrap().anomalies().to_vec();
        assert_drift(&a, &[Subsystem::CgroupLimits], Subsystem::CgroupLimits, words);
    }
}

/// Alone in its monitor, a process's `cgroup-limits` is remembered by the
/// SHA-256 of what its read found (`Shared::solo`: nothing is kept for
/// other targets): `pids.max` changed in one byte, its length the same,
/// with that memo in place, drifts all the same.
#[test]
fn a_one_byte_change_of_pids_max_drifts_through_a_solo_monitors_memo() {
    const TEST: &str = "solo_memo";
    if !is_root() {
        return skip(TEST, "creating a cgroup needs root");
    }
    let Some(h) = hierarchy(Some("pids")) else { return skip(TEST, "no writable cgroup hierarchy") };
    if !h.v2 && h.controller != "pids" {
        return skip(TEST, "no pids controller");
    }
    let mut cg = match ScratchCgroup::new(&h, "solo") {
        Ok(cg) => cg,
        Err(e) => return skip(TEST, &e),
    };
    let t = Testee::spawn();
    if let Err(e) = cg.write("pids.max", "1000") {
        return skip(TEST, &format!("no pids.max: {e}"));
    }
    cg.enter(t.pid).unwrap();
    let subsystems = [fdir::Subsystem::CgroupLimits];
    let coverage = fdir::Coverage::Pids { pids: vec![t.pid] };
    let (mut monitor, _) = fdir::Monitor::baseline(coverage, &subsystems, 2, &SystemClock).unwrap();
    let drifted = |findings: &[fdir::Finding]| {
        findings.iter().any(|f| matches!(f, fdir::Finding::Drift { .. } | fdir::Finding::ObjectDrift { .. }))
    };
    let mut quiet = true;
    for _ in 0..5 {
        quiet &= !drifted(&monitor.cycle(&SystemClock).0);
    }
    cg.write("pids.max", "1001").unwrap();
    let seen = (0..20).any(|_| drifted(&monitor.cycle(&SystemClock).0));
    cg.leave(t.pid);
    assert!(quiet, "an unchanged cgroup drifted");
    assert!(seen, "pids.max 1000 -> 1001 was not drift within 20 cycles");
}
