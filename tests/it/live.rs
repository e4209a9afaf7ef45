//! Live tests: a real child process (`fdir-testee`) changes its isolation for
//! real, and `check` against `Procfs::pid(child)` must say exactly what
//! changed — and must say nothing while the child merely works hard.

use crate::common;

use std::time::Duration;

use common::{ScratchCgroup, Testee, assert_drift, hierarchy, is_root, skip, texts};
use fdir::{
    Anomaly, Error, Observation, Procfs, Scope, Status, Subsystem, SystemClock, Verdict, check_with, snapshot_with,
};

const ALL: &[Subsystem] = Subsystem::ALL;

/// Baselines a fresh testee, runs `change` on it, and returns the anomalies.
fn detect(change: impl FnOnce(&mut Testee) -> Result<(), String>) -> Result<Vec<Anomaly>, String> {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    let before = check_with(&baseline, &SystemClock, &fs, ALL).unwrap();
    assert!(before.is_ok(), "drift before any change: {:#?}", before.anomalies());
    change(&mut t)?;
    let verdict = check_with(&baseline, &SystemClock, &fs, ALL).unwrap();
    Ok(verdict.anomalies().to_vec())
}

#[test]
fn seccomp_filter_is_detected() {
    match detect(|t| t.cmd("seccomp").map(drop)) {
        Ok(a) => {
            let both = [Subsystem::Seccomp, Subsystem::SeccompFilters];
            assert_drift(&a, &both, Subsystem::Seccomp, "Seccomp 0 -> 2 (filter mode)");
            let t = texts(&a[0]);
            assert!(t.iter().any(|t| t.contains("Seccomp_filters 0 -> 1")), "{t:#?}");
            // With the privilege, the program itself; without, its count.
            let t = texts(&a[1]);
            assert!(
                t.iter().any(|t| t.starts_with("new seccomp filter #0 1 instruction, returns allow")
                    || t.starts_with("seccomp filter count 0 -> 1")),
                "{t:#?}"
            );
        }
        Err(e) => skip("seccomp_filter_is_detected", &format!("cannot install a seccomp filter: {e}")),
    }
}

/// One testee command, one subsystem drifted, and the changes that must be
/// named: no new privileges, an anonymous page made writable and executable,
/// a memfd mapped executable.
#[test]
fn single_changes_are_detected() {
    let cases: [(&str, Subsystem, &[&str]); 3] = [
        ("nnp", Subsystem::Seccomp, &["NoNewPrivs 0 -> 1"]),
        ("rwx", Subsystem::MemoryMaps, &["writable and executable"]),
        ("memfd-exec", Subsystem::MemoryMaps, &["/memfd:fdir-testee-payload", "memfd: code with no file on disk"]),
    ];
    for (command, sub, needles) in cases {
        let a = detect(|t| t.cmd(command).map(drop)).unwrap_or_else(|e| panic!("{command}: {e}"));
        for needle in needles {
            assert_drift(&a, &[sub], sub, needle);
        }
    }
}

#[test]
fn new_library_is_detected() {
    let probe = Testee::spawn();
    let Some(lib) = common::unloaded_library(probe.pid) else {
        skip("new_library_is_detected", "no spare shared library found to load");
        return;
    };
    drop(probe);
    let name = lib.file_name().unwrap().to_string_lossy().into_owned();
    let a = detect(|t| t.cmd(&format!("dlopen {}", lib.display())).map(drop)).unwrap();
    assert_drift(&a, &[Subsystem::MemoryMaps], Subsystem::MemoryMaps, &name);
}

#[test]
fn capability_drop_is_detected() {
    if !is_root() {
        skip("capability_drop_is_detected", "needs root (CAP_SETPCAP) to drop from the bounding set");
        return;
    }
    let a = detect(|t| t.cmd("drop-bounding 0").map(drop)).unwrap();
    assert_drift(&a, &[Subsystem::Credentials], Subsystem::Credentials, "lost cap_chown");
    let a = detect(|t| t.cmd("drop-effective 21").map(drop)).unwrap();
    assert_drift(&a, &[Subsystem::Credentials], Subsystem::Credentials, "CapEff");
    assert!(texts(&a[0]).iter().any(|t| t.contains("lost cap_sys_admin")));
}

#[test]
fn cgroup_move_is_detected() {
    if !is_root() {
        skip("cgroup_move_is_detected", "needs root to create a cgroup");
        return;
    }
    let Some(h) = hierarchy(None) else {
        skip("cgroup_move_is_detected", "no cgroup hierarchy mounted");
        return;
    };
    let mut cg = match ScratchCgroup::new(&h, "move") {
        Ok(cg) => cg,
        Err(e) => return skip("cgroup_move_is_detected", &e),
    };
    let leaf = cg.path.file_name().unwrap().to_string_lossy().into_owned();
    let a = detect(|t| cg.enter(t.pid)).unwrap();
    // The move, and the limits of the cgroup it moved to.
    assert_drift(&a, &[Subsystem::Cgroups, Subsystem::CgroupLimits], Subsystem::Cgroups, &leaf);
    let text = texts(&a[0]).join("\n");
    assert!(text.starts_with("cgroup ") && text.contains(" -> "), "{text}");
    let limits = texts(&a[1]);
    assert!(limits.iter().any(|t| t.starts_with("new cgroup ") && t.contains(&leaf)), "{limits:#?}");
}

#[test]
fn busy_process_never_raises_an_anomaly() {
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    t.must("threads 8");
    t.must("churn 3");
    // Twenty checks spread over the churn, however long they take: the
    // count is what is judged, never the time.
    let checks = 20;
    for done in 0..checks {
        let v = check_with(&baseline, &SystemClock, &fs, ALL).unwrap();
        assert!(v.is_ok(), "false alarm after {done} checks: {:#?}", v.anomalies());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("busy_process_never_raises_an_anomaly: {checks} checks, 0 anomalies");
}

#[test]
fn a_young_process_is_baselined_once_settled() {
    let t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    let settle = baseline.settle.expect("a process started a moment ago is waited for");
    assert!(settle.settled, "{settle:?}");
    assert!(settle.waited >= fdir::SETTLE_QUIET, "{settle:?}");
    assert!(check_with(&baseline, &SystemClock, &fs, ALL).unwrap().is_ok());
}

#[test]
fn a_gone_process_is_an_error_not_drift() {
    let t = Testee::spawn();
    let pid = t.pid;
    let fs = Procfs::try_pid(pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    t.exit();
    match check_with(&baseline, &SystemClock, &fs, ALL) {
        Err(Error::Gone { pid: p }) => assert_eq!(p, pid),
        other => panic!("expected Gone, got {other:?}"),
    }
    // A new source for the pid cannot be the old process either.
    match Procfs::try_pid(pid) {
        Err(Error::Gone { .. }) => {}
        Ok(fs2) => match check_with(&baseline, &SystemClock, &fs2, ALL) {
            Err(Error::Reused { .. } | Error::Gone { .. }) => {}
            other => panic!("a reused pid must never be compared: {other:?}"),
        },
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_baseline_of_one_process_is_not_checked_against_another() {
    let a = Testee::spawn();
    let b = Testee::spawn();
    let fa = Procfs::try_pid(a.pid).unwrap();
    let fb = Procfs::try_pid(b.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fa, Subsystem::SEED).unwrap();
    assert!(matches!(fdir::check(&baseline, &SystemClock, &fb), Err(Error::TargetMismatch { .. })));
}

#[test]
fn every_subsystem_is_observed_for_a_live_process() {
    let t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, ALL).unwrap();
    let no_lsm = std::fs::read("/proc/self/attr/current").is_err();
    for &s in ALL {
        match (s.scope(), baseline.subsystems.get(&s)) {
            (Scope::Process, Some(Observation::Observed { records, .. })) => assert!(!records.is_empty(), "{s}"),
            // Where no security module labels processes (this VM: EINVAL).
            (Scope::Process, Some(Observation::NotApplicable { .. })) if s == Subsystem::Lsm && no_lsm => {}
            // The node's state is not a process's.
            (Scope::Node, Some(Observation::NotApplicable { .. })) => {}
            other => panic!("{s}: {other:?}"),
        }
    }
    baseline.verify().unwrap();
    let v = check_with(&baseline, &SystemClock, &fs, ALL).unwrap();
    assert!(matches!(v, Verdict::Ok(_)));
    assert_eq!(v.report().subsystems.len(), ALL.len());
    assert!(v.report().unobservable().next().is_none(), "{:?}", v.report());
}

/// A [`Procfs`] that counts how often the threads are listed, and how often
/// it is asked whether the process is alive.
struct Listing {
    inner: Procfs,
    listed: std::cell::Cell<usize>,
    alive: std::cell::Cell<usize>,
}

impl Listing {
    fn new(inner: Procfs) -> Listing {
        Listing { inner, listed: std::cell::Cell::new(0), alive: std::cell::Cell::new(0) }
    }
}

impl fdir::Source for Listing {
    fn target(&self) -> Result<fdir::Target, Error> {
        self.inner.target()
    }
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.inner.read(rel, buf)
    }
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        self.listed.set(self.listed.get() + 1);
        self.inner.threads(out)
    }
    fn leader(&self) -> Option<u32> {
        self.inner.leader()
    }
    fn thread_exiting(&self, tid: u32) -> Result<bool, Error> {
        self.inner.thread_exiting(tid)
    }
    fn alive(&self) -> bool {
        self.alive.set(self.alive.get() + 1);
        self.inner.alive()
    }
    fn refused_everywhere(&self, rel: &str) -> Option<std::sync::Arc<str>> {
        self.inner.refused_everywhere(rel)
    }
    fn path_of(&self, rel: &str) -> std::path::PathBuf {
        self.inner.path_of(rel)
    }
    fn begin_observation(&self) {
        self.inner.begin_observation();
    }
    fn end_observation(&self) {
        self.inner.end_observation();
    }
}

/// Where no security module labels processes, every `attr/...` file is
/// refused; whether the process is still alive (a `stat` read: three system
/// calls in a one-shot check) is asked at most once after them all, not once
/// per attribute, by a fresh observation and by a checker's later ones. Where
/// the source knows the kernel refuses the files to every process (`/proc`
/// here), it is not asked at all by an observation that reads other files of
/// the process (a one-shot check of every process of a node asked it once a
/// process), and the reason names no process.
#[test]
fn lsm_asks_once_whether_the_process_is_alive() {
    let t = Testee::spawn();
    if std::fs::read(format!("/proc/{}/attr/current", t.pid)).is_ok() {
        skip("lsm_asks_once_whether_the_process_is_alive", "a security module labels processes here");
        return;
    }
    for fs in [Listing::new(Procfs::try_pid(t.pid).unwrap()), Listing::new(Procfs::try_pid_once(t.pid).unwrap())] {
        let known = fdir::Source::refused_everywhere(&fs, "attr/current").is_some();
        let with_maps: &[Subsystem] = &[Subsystem::MemoryMaps, Subsystem::Lsm];
        for (subsystems, most) in [(&[Subsystem::Lsm][..], 1), (with_maps, usize::from(!known))] {
            fs.alive.set(0);
            let baseline = snapshot_with(&SystemClock, &fs, subsystems).unwrap();
            assert!(matches!(baseline.subsystems.get(&Subsystem::Lsm), Some(Observation::NotApplicable { .. })));
            assert!(fs.alive.get() <= most, "{subsystems:?}: asked {} times in one observation", fs.alive.get());
            let Some(Observation::NotApplicable { reason: then }) = baseline.subsystems.get(&Subsystem::Lsm) else {
                unreachable!()
            };
            let mut checker = fdir::Checker::new();
            for round in 1..=3 {
                fs.alive.set(0);
                let v = checker.check(&baseline, &SystemClock, &fs, subsystems).unwrap();
                assert!(v.is_ok(), "{:#?}", v.anomalies());
                assert!(fs.alive.get() <= most, "{subsystems:?}: asked {} times in check {round}", fs.alive.get());
                // The reason of a later check (remembered, not read again)
                // is the baseline's, word for word.
                match v.report().subsystems.get(&Subsystem::Lsm) {
                    Some(Status::NotApplicable { reason }) => {
                        assert_eq!(reason, then, "check {round}");
                        assert!(!known || !reason.contains("/proc/"), "{reason}");
                    }
                    other => panic!("check {round}: {other:?}"),
                }
            }
        }
    }
}

/// A process with one thread is not listed (its main thread's `status`
/// says `Threads: 1`), and a thread it starts after the baseline is still
/// seen, by a checker that keeps its descriptors (the daemon's) and by a
/// fresh one.
#[test]
fn a_thread_started_after_the_baseline_is_seen_without_listing_a_lone_thread() {
    const PER_THREAD: &[Subsystem] = &[Subsystem::Seccomp, Subsystem::Credentials, Subsystem::Cgroups];
    let mut t = Testee::spawn();
    let fs = Listing::new(Procfs::try_pid(t.pid).unwrap());
    let status = std::fs::read_to_string(format!("/proc/{}/status", t.pid)).unwrap();
    assert!(status.lines().any(|l| l == "Threads:\t1"), "the testee starts with one thread: {status}");
    let baseline = snapshot_with(&SystemClock, &fs, PER_THREAD).unwrap();
    let mut checker = fdir::Checker::new();
    for _ in 0..3 {
        let v = checker.check(&baseline, &SystemClock, &fs, PER_THREAD).unwrap();
        assert!(v.is_ok(), "{:#?}", v.anomalies());
    }
    assert_eq!(fs.listed.get(), 0, "a process with one thread was listed");

    if let Err(e) = t.cmd("seccomp-thread") {
        skip(
            "a_thread_started_after_the_baseline_is_seen_without_listing_a_lone_thread",
            &format!("cannot install a seccomp filter in a thread: {e}"),
        );
        return;
    }
    for v in [
        checker.check(&baseline, &SystemClock, &fs, PER_THREAD).unwrap(),
        check_with(&baseline, &SystemClock, &fs, PER_THREAD).unwrap(),
    ] {
        let drifted: Vec<Subsystem> = v.anomalies().iter().map(|a| a.subsystem).collect();
        assert_eq!(drifted, [Subsystem::Seccomp], "{:#?}", v.anomalies());
        let t = texts(&v.anomalies()[0]);
        assert!(t.iter().any(|t| t.contains("Seccomp") && t.contains('2')), "{t:#?}");
    }
    assert!(fs.listed.get() >= 2, "a process with two threads must be listed");
}

/// Processes pinned while a baseline file is read (a one-shot `check` of
/// many): one that exits after it was pinned is reported exited, one the
/// file does not name is left out, one not pinned ahead is opened by the
/// resume, and a real change of a pinned one is caught, as if each had been
/// opened after the file was read.
#[test]
fn processes_pinned_ahead_are_checked_as_if_opened_after_the_file() {
    use fdir::baseline::{BaselineFile, Coverage};
    use fdir::{Finding, Monitor, PinAhead, Pinned};
    let mut kids: Vec<Testee> = (0..4).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = kids.iter().map(|t| t.pid).collect();
    let seed = Subsystem::SEED;
    let snaps =
        pids.iter().map(|&p| snapshot_with(&SystemClock, &Procfs::try_pid(p).unwrap(), seed).unwrap()).collect();
    let file = BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.clone() }, seed, snaps);
    // Three of the four, and this test process, which the file does not name.
    let ahead = [pids[0], pids[1], pids[2], std::process::id()];
    let (loaded, pinned) = Pinned::while_running(PinAhead::Pids(&ahead), || file.clone());
    assert_eq!(pinned.len(), 4);
    kids[1].must("rwx");
    drop(kids.remove(0));
    let (mut monitor, _) = Monitor::resume_for_one_check_pinned(loaded, 2, pinned).unwrap();
    let (findings, summary) = monitor.cycle(&SystemClock);
    let exited: Vec<u32> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Exited { target } => target.pid(),
            _ => None,
        })
        .collect();
    let drifted: Vec<(u32, Vec<Subsystem>)> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Drift { target, anomalies } => {
                Some((target.pid().unwrap(), anomalies.iter().map(|a| a.subsystem).collect()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(exited, [pids[0]], "{findings:#?}");
    assert_eq!(drifted, [(pids[1], vec![Subsystem::MemoryMaps])], "{findings:#?}");
    assert_eq!((summary.checked, summary.exited, summary.targets), (4, 1, 3), "{summary:?}");
}

/// The digest of the in-memory baselines that lets the watch skip decoding an
/// unchanged baseline file: stable from one vote to the next, the same after
/// a corrupted copy is repaired, and different for different baselines.
#[test]
fn the_digest_of_the_in_memory_baselines_follows_their_voted_value() {
    use fdir::baseline::{BaselineFile, Coverage};
    use fdir::{Finding, Monitor};
    let kids: Vec<Testee> = (0..2).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = kids.iter().map(|t| t.pid).collect();
    let file_of = |subsystems: &[Subsystem]| {
        let snaps = pids
            .iter()
            .map(|&p| snapshot_with(&SystemClock, &Procfs::try_pid(p).unwrap(), subsystems).unwrap())
            .collect();
        BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.clone() }, subsystems, snaps)
    };
    let (mut monitor, _) = Monitor::resume(&file_of(Subsystem::SEED), 2).unwrap();
    let before = monitor.baselines_digest().expect("three voted copies have a digest");
    assert_eq!(monitor.baselines_digest(), Some(before));
    let mut repaired = 0;
    for seed in 1..40u64 {
        monitor.inject_baseline_fault(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap();
        let (findings, _) = monitor.cycle(&SystemClock);
        repaired += findings.iter().filter(|f| matches!(f, Finding::BaselineRepaired { .. })).count();
        assert_eq!(monitor.baselines_digest(), Some(before), "after fault {seed}: {findings:#?}");
    }
    assert!(repaired > 0, "the faults were repaired");
    let (mut other, _) = Monitor::resume(&file_of(&[Subsystem::MemoryMaps]), 2).unwrap();
    assert_ne!(other.baselines_digest(), Some(before));
}

/// The disk vote's judgement by fingerprints (`FilePrints`) gives the
/// answer a decode and a comparison of the file's snapshots gives: agreement
/// with the file the baselines came from, disagreement with another file's
/// (the same processes, fewer subsystems), each target named; a target the
/// file does not hold is not compared.
#[test]
fn the_vote_by_fingerprints_agrees_with_the_vote_by_snapshots() {
    use fdir::Monitor;
    use fdir::baseline::{BaselineFile, Coverage};
    use fdir::runtime::FilePrints;
    let kids: Vec<Testee> = (0..3).map(|_| Testee::spawn()).collect();
    let pids: Vec<u32> = kids.iter().map(|t| t.pid).collect();
    let file_of = |subsystems: &[Subsystem], pids: &[u32]| {
        let snaps = pids
            .iter()
            .map(|&p| snapshot_with(&SystemClock, &Procfs::try_pid(p).unwrap(), subsystems).unwrap())
            .collect();
        BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.to_vec() }, subsystems, snaps)
    };
    let ours = file_of(Subsystem::SEED, &pids);
    let (mut monitor, _) = Monitor::resume(&ours, 2).unwrap();
    let digest = fdir::Digest::of(b"the file's bytes");
    // The file the baselines came from, by its prints and by the monitor's.
    let prints = FilePrints::of(digest, &ours).unwrap();
    assert_eq!(monitor.disagreements_with_prints(&prints.targets), Some(vec![]));
    assert!(monitor.disagreements_with(&ours).is_empty());
    let own = monitor.baseline_prints().unwrap();
    assert_eq!(own, prints.targets, "the baselines' digests are the file's fingerprints");
    // Another file: every target disagrees, by either vote.
    let other = file_of(&[Subsystem::MemoryMaps], &pids);
    let by_snapshots = monitor.disagreements_with(&other);
    assert_eq!(by_snapshots.len(), 3);
    let by_prints = monitor.disagreements_with_prints(&FilePrints::of(digest, &other).unwrap().targets);
    assert_eq!(by_prints, Some(by_snapshots));
    // A file without one of the targets: that one is not compared.
    let partial = file_of(&[Subsystem::MemoryMaps], &pids[1..]);
    let by_snapshots = monitor.disagreements_with(&partial);
    assert_eq!(by_snapshots.len(), 2);
    let by_prints = monitor.disagreements_with_prints(&FilePrints::of(digest, &partial).unwrap().targets);
    assert_eq!(by_prints, Some(by_snapshots));
}

/// A one-shot check keeps no target's files open (each is closed on the
/// core that read it, not all at once in the exit), whether its targets
/// are checked in turn or on every core; a watch keeps them for its next
/// cycle.
#[test]
fn a_one_shot_check_closes_each_targets_files_and_a_watch_keeps_them() {
    use fdir::Monitor;
    use fdir::baseline::{BaselineFile, Coverage};
    // From 16 targets (the monitor's PARALLEL_FROM) a cycle runs on every core.
    for n in [2, 16] {
        let kids: Vec<Testee> = (0..n).map(|_| Testee::spawn()).collect();
        let pids: Vec<u32> = kids.iter().map(|t| t.pid).collect();
        let seed = Subsystem::SEED;
        let snaps =
            pids.iter().map(|&p| snapshot_with(&SystemClock, &Procfs::try_pid(p).unwrap(), seed).unwrap()).collect();
        let file = BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids: pids.clone() }, seed, snaps);

        let (mut watch, _) = Monitor::resume(&file, 2).unwrap();
        let (findings, summary) = watch.cycle(&SystemClock);
        assert_eq!(summary.checked, n, "{findings:#?}");
        assert!(watch.kept_files() >= n, "{n} targets: a watch keeps their files, {} kept", watch.kept_files());

        let (mut once, _) = Monitor::resume_for_one_check(file, 2).unwrap();
        let (findings, summary) = once.cycle(&SystemClock);
        assert_eq!(summary.checked, n, "{findings:#?}");
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(once.kept_files(), 0, "{n} targets: a one-shot check keeps nothing open");
        // Were it asked again, it would open them afresh.
        let (findings, summary) = once.cycle(&SystemClock);
        assert_eq!((summary.checked, findings.len()), (n, 0), "{findings:#?}");
    }
}
