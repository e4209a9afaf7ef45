//! The task table (`source::tasks`) in a monitor of many processes: a round
//! reads every process's namespaces and limits from the kernel's task
//! structures (the eBPF lookup program, or the task iterator's walk)
//! instead of `/proc/PID/ns/*`, `/proc/PID/limits` and a `statx` of
//! `/proc/PID/root`. The table must be as quiet as those files and see what
//! they show: a process that enters a new namespace, a limit changed from
//! outside, a process that changes its root directory.

use crate::common;

use common::{Testee, is_root, skip};
use fdir::{Coverage, Finding, Monitor, Subsystem, SystemClock};

const SUBSYSTEMS: &[Subsystem] = &[Subsystem::Namespaces, Subsystem::Limits, Subsystem::Mounts];

/// The subsystems `pid` drifted in among `findings`: its own drifts, and
/// those of a shared object that name it (a mount table is one object of
/// its mount namespace, `roots.rs`).
fn drifted(findings: &[Finding], pid: u32) -> Vec<Subsystem> {
    findings
        .iter()
        .flat_map(|f| match f {
            Finding::Drift { target, anomalies } if target.pid() == Some(pid) => {
                anomalies.iter().map(|a| a.subsystem).collect()
            }
            Finding::ObjectDrift { targets, anomaly, .. } if targets.iter().any(|t| t.pid() == Some(pid)) => {
                vec![anomaly.subsystem]
            }
            _ => Vec::new(),
        })
        .collect()
}

/// Lowers the open-files limit of process `pid` (a child) from outside,
/// with `prlimit`.
fn lower_open_files(pid: u32, soft: u64, hard: u64) {
    let lower = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: prlimit of another process (the child), with a valid new limit
    // and no old limit asked for.
    let r = unsafe {
        libc::prlimit(i32::try_from(pid).unwrap(), libc::RLIMIT_NOFILE, &raw const lower, std::ptr::null_mut())
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Whether `m` uses the task table; where this kernel refuses it, the
/// case is skipped, with the reason. `tried` fails the test where `m`
/// never tried to load it.
fn table_used(test: &str, m: &Monitor, tried: &str) -> bool {
    match m.task_table() {
        Some(Ok(())) => true,
        Some(Err(why)) => {
            skip(test, &format!("the task table is not used here: {why}"));
            false
        }
        None => panic!("{tried}"),
    }
}

#[test]
fn the_task_table_is_quiet_and_sees_a_new_namespace_a_lowered_limit_and_a_new_root() {
    quiet_and_sees("the_task_table_is_quiet_and_sees_a_new_namespace_a_lowered_limit_and_a_new_root", false);
}

/// The same with the task iterator's walk, the reader of a kernel that
/// refuses the lookup program.
#[test]
fn the_walked_task_table_is_quiet_and_sees_a_new_namespace_a_lowered_limit_and_a_new_root() {
    quiet_and_sees("the_walked_task_table_is_quiet_and_sees_a_new_namespace_a_lowered_limit_and_a_new_root", true);
}

fn quiet_and_sees(test: &str, walk: bool) {
    if !is_root() {
        skip(test, "needs root: the kernel loads the task iterator for CAP_BPF and CAP_PERFMON only");
        return;
    }
    let mut testees: Vec<Testee> = (0..20).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids: pids.clone() }, SUBSYSTEMS, 1, &SystemClock).unwrap();
    // Whatever the node's size (20 targets on a busy test machine are too
    // few for the table to pay by itself: monitor.rs TABLE_SAVES).
    m.set_task_table(Some(true));
    m.set_task_table_walk(walk);
    for round in 0..3 {
        let (f, s) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round}: {f:#?}");
        assert_eq!(s.targets, 20);
    }
    if !table_used(test, &m, "a round asked to read the task table did not try it") {
        return;
    }
    if walk {
        assert_eq!(m.task_table_walks(), Some(true), "asked to walk");
    } else if m.task_table_walks() == Some(true) {
        skip(test, "this kernel refuses the lookup program: the walk stands in (its own test)");
        return;
    }

    // Real changes, made in three of the children.
    let (entered, limited, rooted) = (pids[3], pids[7], pids[11]);
    // A root with mounts below it (a root with none reads an empty
    // mountinfo): the mount table it sees is another.
    if let Err(e) = testees[11].cmd("chroot /sys") {
        skip(test, &format!("cannot chroot: {e}"));
        return;
    }
    if let Err(e) = testees[3].cmd("unshare-net") {
        skip(test, &format!("cannot unshare a network namespace: {e}"));
        return;
    }
    lower_open_files(limited, 64, 128);

    let findings = common::cycle_until_found(&mut m);
    assert_eq!(drifted(&findings, entered), vec![Subsystem::Namespaces], "{findings:#?}");
    assert_eq!(drifted(&findings, limited), vec![Subsystem::Limits], "{findings:#?}");
    assert_eq!(drifted(&findings, rooted), vec![Subsystem::Mounts], "{findings:#?}");
    for &pid in pids.iter().filter(|&&p| p != entered && p != limited && p != rooted) {
        assert!(drifted(&findings, pid).is_empty(), "{pid} did not change: {findings:#?}");
    }
    let text = format!("{findings:?}");
    assert!(text.contains("net"), "the namespace named: {text}");
    assert!(text.contains("64") && text.contains("128"), "the new limits named: {text}");
    assert_eq!(m.task_table(), Some(Ok(())), "still read from the table");

    // Told never to, a monitor reads /proc: the same processes stay quiet.
    let (mut never, _) = Monitor::baseline(Coverage::Pids { pids }, SUBSYSTEMS, 1, &SystemClock).unwrap();
    never.set_task_table(Some(false));
    let (f, _) = never.cycle(&SystemClock);
    assert!(f.is_empty(), "{f:#?}");
    assert_eq!(never.task_table(), None, "not even loaded");
}

/// A one-shot check resumed from processes pinned while the task table's
/// program was loaded ahead (`Pinned::while_running_with_table`: what
/// `fdir check --all` does on a node of 300 processes or more) reads
/// namespaces and limits from the table it was handed: quiet for the
/// processes that did not change, and a lowered limit seen, as a check
/// that reads `/proc` sees it.
#[test]
fn a_one_shot_check_with_the_table_loaded_ahead_is_quiet_and_sees_a_lowered_limit() {
    use fdir::baseline::BaselineFile;
    use fdir::{PinAhead, Pinned, Procfs, snapshot_with};
    let test = "a_one_shot_check_with_the_table_loaded_ahead_is_quiet_and_sees_a_lowered_limit";
    if !is_root() {
        skip(test, "needs root: the kernel loads the task table's program for CAP_BPF and CAP_PERFMON only");
        return;
    }
    let testees: Vec<Testee> = (0..6).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    let snaps =
        pids.iter().map(|&p| snapshot_with(&SystemClock, &Procfs::try_pid(p).unwrap(), SUBSYSTEMS).unwrap()).collect();
    let file =
        BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.clone() }, SUBSYSTEMS, snaps);
    let limited = pids[2];
    lower_open_files(limited, 32, 64);

    // `fdir check` loads it ahead only for every process, and only for a
    // baseline with a subsystem that asks the table.
    assert!(!Pinned::table_ahead_pays(PinAhead::Pids(&pids), SUBSYSTEMS));
    assert!(!Pinned::table_ahead_pays(PinAhead::Every, &[Subsystem::Cgroups, Subsystem::SeccompFilters]));
    let (loaded, pinned) = Pinned::while_running_with_table(PinAhead::Pids(&pids), || file.clone());
    let (mut ahead, _) = Monitor::resume_for_one_check_pinned(loaded, 1, pinned).unwrap();
    if !table_used(test, &ahead, "the table was loaded ahead and handed to the check") {
        return;
    }
    let (findings, summary) = ahead.cycle(&SystemClock);
    assert_eq!(summary.checked, 6, "{summary:?}");
    assert_eq!(drifted(&findings, limited), vec![Subsystem::Limits], "{findings:#?}");
    for &pid in pids.iter().filter(|&&p| p != limited) {
        assert!(drifted(&findings, pid).is_empty(), "{pid} did not change: {findings:#?}");
    }
    assert!(format!("{findings:?}").contains("32"), "the new limit named: {findings:#?}");

    // The same check of six processes without the table ahead reads /proc
    // (a one-shot check loads the program itself only from 2,000), and
    // finds the same.
    let (loaded, pinned) = Pinned::while_running(PinAhead::Pids(&pids), || file.clone());
    let (mut plain, _) = Monitor::resume_for_one_check_pinned(loaded, 1, pinned).unwrap();
    let (again, _) = plain.cycle(&SystemClock);
    assert_eq!(plain.task_table(), None, "not loaded");
    assert_eq!(drifted(&again, limited), vec![Subsystem::Limits], "{again:#?}");
    assert_eq!(again.len(), findings.len(), "{again:#?} against {findings:#?}");
}

/// The task table's status inputs (the kernel state a process's `status`
/// fields are printed from) key the `seccomp` and `credentials` forms of
/// a process with one thread: quiet over more cycles than the text is left
/// unread (`STATUS_TEXT_EVERY`), and each change seen at the first cycle
/// after it, in its own subsystem and process: a seccomp filter, no new
/// privileges, a capability dropped from the bounding set, one dropped from
/// the effective set, new supplementary groups, and more groups than the
/// inputs hold (that process's text is read).
#[test]
fn status_inputs_are_quiet_and_see_seccomp_no_new_privs_capabilities_and_groups() {
    let test = "status_inputs_are_quiet_and_see_seccomp_no_new_privs_capabilities_and_groups";
    if !is_root() {
        skip(test, "needs root: the kernel loads the lookup program for CAP_BPF and CAP_PERFMON only");
        return;
    }
    let subsystems = [Subsystem::Seccomp, Subsystem::Credentials];
    let mut testees: Vec<Testee> = (0..12).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids: pids.clone() }, &subsystems, 1, &SystemClock).unwrap();
    m.set_task_table(Some(true));
    for round in 0..12 {
        let (f, s) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round}: {f:#?}");
        assert_eq!(s.targets, 12);
    }
    if !table_used(test, &m, "a round asked to read the task table did not try it") {
        return;
    }
    if !makes(test, m.status_inputs(), "status inputs", true) {
        return;
    }
    let many_groups = format!("setgroups {}", (5000..5040).map(|g| g.to_string()).collect::<Vec<_>>().join(","));
    let changes = [
        (1, "seccomp", Subsystem::Seccomp),
        (3, "nnp", Subsystem::Seccomp),
        (5, "drop-bounding 21", Subsystem::Credentials),
        (7, "drop-effective 21", Subsystem::Credentials),
        (9, "setgroups 4242,4243", Subsystem::Credentials),
        // More groups than a record holds: no inputs, the text is read.
        (11, &many_groups, Subsystem::Credentials),
    ];
    for &(i, command, _) in &changes {
        if let Err(e) = testees[i].cmd(command) {
            skip(test, &format!("{command}: {e}"));
            return;
        }
    }
    // The first cycle after the changes: the inputs changed, so the texts
    // are read.
    let (findings, _) = m.cycle(&SystemClock);
    for &(i, command, sub) in &changes {
        assert_eq!(drifted(&findings, pids[i]), vec![sub], "{command}: {findings:#?}");
    }
    for (i, &pid) in pids.iter().enumerate() {
        if changes.iter().all(|&(c, ..)| c != i) {
            assert!(drifted(&findings, pid).is_empty(), "{pid} did not change: {findings:#?}");
        }
    }
    let text = format!("{findings:?}");
    assert!(text.contains("4242") && text.contains("5039"), "the new groups named: {text}");
    assert_eq!(m.status_inputs(), Some(Ok(())), "still keyed by the inputs");
    // Re-baselined, the changed processes are quiet again, past a text period.
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids }, &subsystems, 1, &SystemClock).unwrap();
    m.set_task_table(Some(true));
    for round in 0..12 {
        let (f, _) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round} after the changes: {f:#?}");
    }
}

/// Removes a directory and what is in it when dropped (a test's copies of
/// a library), even when the test fails.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the task table makes `what` (`made`: the monitor's answer), a
/// skip said where it does not. Where it was not loaded (`None`): a
/// failure if the test made sure it was (`loaded`), else a skip.
fn makes(test: &str, made: Option<Result<(), &str>>, what: &str, loaded: bool) -> bool {
    match made {
        Some(Ok(())) => true,
        Some(Err(why)) => {
            skip(test, &format!("the task table makes no {what} here: {why}"));
            false
        }
        None => {
            assert!(!loaded, "the task table was loaded");
            skip(test, "the baseline was taken without the task table");
            false
        }
    }
}

/// For a test of the program of mappings: a shared library a testee has
/// not loaded, and a directory of this test's own (`tag` and the pid) to
/// copy it into, removed when dropped; `None` (the skip said) without root
/// or such a library.
fn library_to_map(test: &str, tag: &str) -> Option<(std::path::PathBuf, TempDir)> {
    if !is_root() {
        skip(test, "needs root: the kernel loads the program of mappings for CAP_BPF and CAP_PERFMON only");
        return None;
    }
    let probe = Testee::spawn();
    let Some(lib) = common::unloaded_library(probe.pid) else {
        skip(test, "no spare shared library found to load");
        return None;
    };
    drop(probe);
    let dir = TempDir(std::env::temp_dir().join(format!("{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    Some((lib, dir))
}

/// The maps inputs (the kernel's copy of each process's mappings, made by
/// the task table's program of mappings, `source::vmas`) are quiet over
/// more than a text period of real processes, and each of these is found at
/// the first cycle after it, in that process only: a writable and
/// executable region, a memfd mapped executable, a library loaded, a
/// mapped library renamed, and a mapped library deleted.
#[test]
fn maps_inputs_are_quiet_and_see_new_code_and_renamed_and_deleted_libraries() {
    let test = "maps_inputs_are_quiet_and_see_new_code_and_renamed_and_deleted_libraries";
    let Some((lib, dir)) = library_to_map(test, "fdir-maps-inputs") else { return };
    let (renamed, deleted) = (dir.0.join("libfdir-renamed.so"), dir.0.join("libfdir-deleted.so"));
    for copy in [&renamed, &deleted] {
        std::fs::copy(&lib, copy).unwrap();
    }
    let subsystems = [Subsystem::MemoryMaps];
    let mut testees: Vec<Testee> = (0..10).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    for (i, copy) in [(5, &renamed), (7, &deleted)] {
        if let Err(e) = testees[i].cmd(&format!("dlopen {}", copy.display())) {
            skip(test, &format!("dlopen {}: {e}", copy.display()));
            return;
        }
    }
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids: pids.clone() }, &subsystems, 1, &SystemClock).unwrap();
    m.set_task_table(Some(true));
    for round in 0..12 {
        let (f, s) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round}: {f:#?}");
        assert_eq!(s.targets, 10);
    }
    if !table_used(test, &m, "a round asked to read the task table did not try it") {
        return;
    }
    if !makes(test, m.maps_inputs(), "maps inputs", true) {
        return;
    }
    for (i, command) in [(1, "rwx".to_owned()), (3, "memfd-exec".to_owned()), (9, format!("dlopen {}", lib.display()))]
    {
        if let Err(e) = testees[i].cmd(&command) {
            skip(test, &format!("{command}: {e}"));
            return;
        }
    }
    let moved = dir.0.join("libfdir-moved.so");
    std::fs::rename(&renamed, &moved).unwrap();
    std::fs::remove_file(&deleted).unwrap();
    // The first cycle after the changes: the copies changed, so the texts
    // are read.
    let (findings, _) = m.cycle(&SystemClock);
    for i in [1, 3, 5, 7, 9] {
        assert_eq!(drifted(&findings, pids[i]), vec![Subsystem::MemoryMaps], "testee {i}: {findings:#?}");
    }
    for (i, &pid) in pids.iter().enumerate() {
        if ![1, 3, 5, 7, 9].contains(&i) {
            assert!(drifted(&findings, pid).is_empty(), "{pid} did not change: {findings:#?}");
        }
    }
    let text = format!("{findings:?}");
    assert!(text.contains("libfdir-moved.so"), "the new path named: {text}");
    assert!(text.contains("deleted"), "the deleted library named: {text}");
    assert_eq!(m.maps_inputs(), Some(Ok(())), "still keyed by the inputs");
    // Re-baselined, the changed processes are quiet again, past a text period.
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids }, &subsystems, 1, &SystemClock).unwrap();
    m.set_task_table(Some(true));
    for round in 0..12 {
        let (f, _) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round} after the changes: {f:#?}");
    }
}

/// A `sleep` in a mount namespace of its own (`unshare -m`), with a tmpfs
/// mounted in it at `DIR/a/b`; killed, and its directory removed, when
/// dropped.
struct Unshared {
    child: std::process::Child,
    dir: TempDir,
}

impl Drop for Unshared {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unshared {
    /// `None` (the skip said) where it cannot be made.
    fn start(test: &str) -> Option<Unshared> {
        let dir = TempDir(std::env::temp_dir().join(format!("fdir-unshared-{}", std::process::id())));
        std::fs::create_dir_all(dir.0.join("a/b")).unwrap();
        let Ok(child) =
            std::process::Command::new("unshare").args(["-m", "--propagation", "private", "sleep", "1000"]).spawn()
        else {
            skip(test, "no unshare(1) to make a mount namespace");
            return None;
        };
        let u = Unshared { child, dir };
        let pid = u.child.id();
        let own = std::fs::read_link("/proc/self/ns/mnt").ok();
        for _ in 0..200 {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" && std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() != own {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !u.run(&["mount", "-t", "tmpfs", "fdir-test", &u.path("a/b")]) {
            skip(test, "cannot mount a tmpfs in the child's mount namespace");
            return None;
        }
        Some(u)
    }

    fn path(&self, rel: &str) -> String {
        self.dir.0.join(rel).display().to_string()
    }

    /// Runs `args` in the child's mount namespace.
    fn run(&self, args: &[&str]) -> bool {
        let pid = self.child.id().to_string();
        std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "--"])
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// A watch of one process keys its mount table by the mount inputs (the
/// kernel's copy of its mount namespace, made by the task table's program
/// of mounts, `source::mnts`): quiet over more than a text period of a
/// process in a mount namespace of its own, and each of these is found at
/// the first cycle after it: a remount read-only, and a directory renamed
/// above a mount point (no mount changed: only the path's witness shows
/// it), with the new path named.
#[test]
fn mount_inputs_are_quiet_and_see_remounts_and_directories_renamed_above_a_mount() {
    let test = "mount_inputs_are_quiet_and_see_remounts_and_directories_renamed_above_a_mount";
    if !is_root() {
        skip(test, "needs root: to mount, and to load the program of mounts (CAP_BPF and CAP_PERFMON)");
        return;
    }
    let Some(u) = Unshared::start(test) else { return };
    let pid = u.child.id();
    let subsystems = [Subsystem::Mounts];
    let watch = || {
        let (mut m, _) = Monitor::baseline(Coverage::Pids { pids: vec![pid] }, &subsystems, 1, &SystemClock).unwrap();
        m.set_task_table(Some(true));
        for round in 0..12 {
            let (f, s) = m.cycle(&SystemClock);
            assert!(f.is_empty(), "round {round}: {f:#?}");
            assert_eq!(s.targets, 1);
        }
        m
    };
    let mut m = watch();
    if !table_used(test, &m, "a round asked to read the task table did not try it")
        || !makes(test, m.mount_inputs(), "mount inputs", true)
    {
        return;
    }
    assert!(u.run(&["mount", "-o", "remount,ro", &u.path("a/b")]), "remount");
    let (findings, _) = m.cycle(&SystemClock);
    assert_eq!(drifted(&findings, pid), vec![Subsystem::Mounts], "{findings:#?}");
    assert_eq!(m.mount_inputs(), Some(Ok(())), "still keyed by the inputs");

    let mut m = watch();
    std::fs::rename(u.dir.0.join("a"), u.dir.0.join("c")).unwrap();
    let (findings, _) = m.cycle(&SystemClock);
    assert_eq!(drifted(&findings, pid), vec![Subsystem::Mounts], "{findings:#?}");
    let text = format!("{findings:?}");
    assert!(text.contains(&u.path("c/b")), "the new path named: {text}");
}

/// A baseline taken with the task table keeps each process's status inputs
/// as the source of its `seccomp` and `credentials` forms: the first check
/// of the processes that did not change reads no `status` and is quiet,
/// and it finds the two that changed between the baseline and that check
/// (their inputs differ, so their `status` is read).
#[test]
fn a_first_check_after_the_baseline_finds_changes_made_before_it() {
    let test = "a_first_check_after_the_baseline_finds_changes_made_before_it";
    if !is_root() {
        skip(test, "needs root: the kernel loads the lookup program for CAP_BPF and CAP_PERFMON only");
        return;
    }
    let subsystems = [Subsystem::Seccomp, Subsystem::Credentials];
    let mut testees: Vec<Testee> = (0..6).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    let (mut m, _) =
        Monitor::baseline_with_table(Coverage::Pids { pids: pids.clone() }, &subsystems, 1, &SystemClock, Some(true))
            .unwrap();
    if !makes(test, m.status_inputs(), "status inputs", false) {
        return;
    }
    for (i, command) in [(1, "nnp"), (4, "drop-bounding 21")] {
        if let Err(e) = testees[i].cmd(command) {
            skip(test, &format!("{command}: {e}"));
            return;
        }
    }
    let (findings, _) = m.cycle(&SystemClock);
    assert_eq!(drifted(&findings, pids[1]), vec![Subsystem::Seccomp], "{findings:#?}");
    assert_eq!(drifted(&findings, pids[4]), vec![Subsystem::Credentials], "{findings:#?}");
    for i in [0, 2, 3, 5] {
        assert!(drifted(&findings, pids[i]).is_empty(), "{} did not change: {findings:#?}", pids[i]);
    }
}

/// A baseline taken with the task table keeps each process's maps inputs
/// (the kernel's copy of its mappings, with a witness of each file's path)
/// as the source of its `memory-maps` form. The first check after it finds
/// exactly the processes that changed between the two, each by what
/// changed in its copy: a writable and executable region, a library
/// loaded, and a directory renamed above a mapped library (which only the
/// path's witness shows).
#[test]
fn a_first_check_finds_maps_changes_made_after_the_baseline() {
    let test = "a_first_check_finds_maps_changes_made_after_the_baseline";
    let Some((lib, dir)) = library_to_map(test, "fdir-maps-first") else { return };
    let (sub, loaded_late) = (dir.0.join("sub"), dir.0.join("libfdir-late.so"));
    std::fs::create_dir_all(&sub).unwrap();
    let mapped = sub.join("libfdir-mapped.so");
    std::fs::copy(&lib, &mapped).unwrap();
    std::fs::copy(&lib, &loaded_late).unwrap();
    let subsystems = [Subsystem::MemoryMaps];
    let mut testees: Vec<Testee> = (0..6).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = testees.iter().map(|t| t.pid).collect();
    if let Err(e) = testees[2].cmd(&format!("dlopen {}", mapped.display())) {
        skip(test, &format!("dlopen {}: {e}", mapped.display()));
        return;
    }
    let (mut m, _) =
        Monitor::baseline_with_table(Coverage::Pids { pids: pids.clone() }, &subsystems, 1, &SystemClock, Some(true))
            .unwrap();
    if !makes(test, m.maps_inputs(), "maps inputs", false) {
        return;
    }
    for (i, command) in [(1, "rwx".to_owned()), (4, format!("dlopen {}", loaded_late.display()))] {
        if let Err(e) = testees[i].cmd(&command) {
            skip(test, &format!("{command}: {e}"));
            return;
        }
    }
    std::fs::rename(&sub, dir.0.join("moved")).unwrap();
    let (findings, _) = m.cycle(&SystemClock);
    for i in [1, 2, 4] {
        assert_eq!(drifted(&findings, pids[i]), vec![Subsystem::MemoryMaps], "testee {i}: {findings:#?}");
    }
    for i in [0, 3, 5] {
        assert!(drifted(&findings, pids[i]).is_empty(), "{} did not change: {findings:#?}", pids[i]);
    }
    let text = format!("{findings:?}");
    assert!(text.contains("moved/libfdir-mapped.so"), "the new path named: {text}");
}
