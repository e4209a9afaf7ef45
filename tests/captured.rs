//! Captured /proc text of real processes on a real kernel (tests/data/proc/NAME/{a,b}:
//! two captures of the same process 0.7 s apart): every capture canonicalizes,
//! and the two captures of one process never differ. (`code` needs the
//! process's memory, which a capture does not hold: it is unobservable.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use fdir::{ManualClock, Procfs, Subsystem, check_with, snapshot_with};

fn load(dir: &Path) -> Procfs {
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
    Procfs::mock_files(files)
}

#[test]
fn two_captures_of_one_process_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/proc");
    let mut seen = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let (a, b) = (load(&dir.join("a")), load(&dir.join("b")));
        let clock = ManualClock::new();
        let baseline = snapshot_with(&clock, &a, Subsystem::ALL).unwrap();
        for (&s, obs) in &baseline.subsystems {
            if s == Subsystem::Code {
                // A capture holds /proc text, not the process's memory.
                assert!(matches!(obs, fdir::Observation::Unobservable { .. }), "{}: {obs:?}", dir.display());
                continue;
            }
            assert!(matches!(obs, fdir::Observation::Observed { .. }), "{}: {s}: {obs:?}", dir.display());
        }
        let v = check_with(&baseline, &clock, &b, Subsystem::ALL).unwrap();
        assert!(v.is_ok(), "{}: {:#?}", dir.display(), v.anomalies());
        seen += 1;
    }
    assert!(seen >= 2);
}
