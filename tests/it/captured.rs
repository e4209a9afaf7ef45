//! Captured /proc text of real processes and of a real node (tests/data/proc/NAME/{a,b},
//! tests/data/node/NAME/{a,b}: two captures 0.7 s apart, made by tests/data/capture.py):
//! every capture canonicalizes, and the two captures of one target never differ.
//! (`code` needs the process's memory, which a capture does not hold: it is
//! unobservable.)

use std::path::Path;

use fdir::{ManualClock, Observation, Procfs, Scope, Subsystem, check_with, snapshot_with};

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files
}

/// What a capture must show for `sub`: observed, unless the capture holds
/// none of the subsystem's files (the older captures have no `ns` or `attr`;
/// without `cgroupfs`, cgroup-limits records each cgroup as not found), or
/// no LSM labelled the process, or the subsystem needs the live process
/// (`code` reads its memory).
fn acceptable(dir: &Path, sub: Subsystem, obs: &Observation) -> bool {
    let has = |p: &str| dir.join(p).exists();
    match (sub, obs) {
        (_, Observation::Observed { records, .. }) => !records.is_empty(),
        (Subsystem::Lsm, Observation::NotApplicable { .. }) => !has("attr/current"),
        (Subsystem::Namespaces, Observation::Unobservable { .. }) => !has("ns"),
        (Subsystem::Code, Observation::Unobservable { .. }) => true,
        (s, Observation::NotApplicable { .. }) => s.scope() == Scope::Node,
        _ => false,
    }
}

#[test]
fn two_captures_of_one_process_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/proc");
    let mut seen = 0;
    let mut complete = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let a = Procfs::mock_files(files(&dir.join("a")));
        let b = Procfs::mock_files(files(&dir.join("b")));
        let clock = ManualClock::new();
        let baseline = snapshot_with(&clock, &a, Subsystem::ALL).unwrap();
        let mut all_observed = true;
        for (&s, obs) in &baseline.subsystems {
            assert!(acceptable(&dir.join("a"), s, obs), "{}: {s}: {obs:?}", dir.display());
            all_observed &= s.scope() == Scope::Node
                || s == Subsystem::Lsm
                || s == Subsystem::Code
                || matches!(obs, Observation::Observed { .. });
        }
        let v = check_with(&baseline, &clock, &b, Subsystem::ALL).unwrap();
        assert!(v.is_ok(), "{}: {:#?}", dir.display(), v.anomalies());
        assert_eq!(v.report().not_applicable().filter(|(s, _)| s.scope() == Scope::Node).count(), 2);
        seen += 1;
        complete += usize::from(all_observed);
    }
    assert!(seen >= 3);
    assert!(complete >= 1, "at least one capture holds every per-process file");
}

#[test]
fn two_captures_of_one_node_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/node");
    let mut seen = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let a = Procfs::mock_node_files(files(&dir.join("a")));
        let b = Procfs::mock_node_files(files(&dir.join("b")));
        let clock = ManualClock::new();
        let baseline = snapshot_with(&clock, &a, Subsystem::ALL).unwrap();
        for (&s, obs) in &baseline.subsystems {
            match (s.scope(), obs) {
                (Scope::Node, Observation::Observed { records, .. }) => assert!(!records.is_empty(), "{s}"),
                (Scope::Process, Observation::NotApplicable { .. }) => {}
                other => panic!("{}: {s}: {other:?}", dir.display()),
            }
        }
        let v = check_with(&baseline, &clock, &b, Subsystem::ALL).unwrap();
        assert!(v.is_ok(), "{}: {:#?}", dir.display(), v.anomalies());
        seen += 1;
    }
    assert!(seen >= 1);
}
