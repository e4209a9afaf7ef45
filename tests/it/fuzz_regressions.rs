//! Every fuzzing finding, and every seed of the fuzz corpora, through the same
//! harness the fuzz targets run (`fdir::fuzzing`), in the normal test suite.
//!
//! Findings are saved as `tests/data/fuzz/<target>/<name>` (the crashing or
//! property-violating input libFuzzer wrote, renamed for what it found); the
//! seeds are `fuzz/seeds/<target>/*` (real /proc captures, valid baselines and
//! policies). See ROBUSTNESS.md for the runs and what they found.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn run_all(root: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let mut n = 0;
    let mut failures = Vec::new();
    for target in fdir::fuzzing::TARGETS {
        for (name, data) in inputs(&root.join(target)) {
            n += 1;
            if let Err(e) = fdir::fuzzing::run(target, &data) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    n
}

/// Every input file under `root`, in any subdirectory (a target's or not).
fn files_under(root: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(root);
    let Ok(dirs) = std::fs::read_dir(&root) else { return 0 };
    dirs.map(|d| d.unwrap().path()).filter(|d| d.is_dir()).map(|d| inputs(&d).len()).sum()
}

#[test]
fn every_fuzzing_finding_stays_fixed() {
    // No run has found anything yet (ROBUSTNESS.md, "Fuzzing"): the findings
    // directory may hold only its README. So that this replays real inputs
    // whatever that count, every seed goes through the same harnesses too,
    // and every file of both trees must have been replayed: a finding saved
    // under a directory that names no target would otherwise never run.
    let findings = run_all("tests/data/fuzz");
    let seeds = run_all("fuzz/seeds");
    println!("{findings} findings and {seeds} seeds replayed");
    assert_eq!(findings, files_under("tests/data/fuzz"), "a finding outside every target's directory");
    assert_eq!(seeds, files_under("fuzz/seeds"), "a seed outside every target's directory");
    assert!(seeds >= 100, "only {seeds} seeds replayed");
}

#[test]
fn every_seed_passes_its_harness() {
    let n = run_all("fuzz/seeds");
    assert!(n >= 100, "only {n} seeds");
    // Every harness has seeds.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for target in fdir::fuzzing::TARGETS {
        assert!(!inputs(&root.join(target)).is_empty(), "no seeds for {target}");
    }
    assert!(fdir::fuzzing::run("nonsense", b"").is_err());
}

#[test]
fn the_fuzz_targets_match_the_harnesses() {
    // fuzz/Cargo.toml declares one target per harness, and no other.
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let mut declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "fdir-fuzz")
        .collect();
    declared.sort_unstable();
    let mut harnesses = fdir::fuzzing::TARGETS.to_vec();
    harnesses.sort_unstable();
    assert_eq!(declared, harnesses);
}
