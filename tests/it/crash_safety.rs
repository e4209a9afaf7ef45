//! Crash safety of the baseline file: `fdir snapshot` is killed with SIGKILL
//! at a seeded random moment (0–50 ms after it starts), hundreds of times,
//! while it replaces an existing good baseline. After every kill the file
//! must exist and be whole — the old baseline or a complete new one, never a
//! torn one — and `fdir check` must be able to use it (exit 0 or 1, never 2).
//! Temporary files that a killed save leaves behind are counted (each one is
//! a kill that landed between creating the temporary file and the rename),
//! and the next save that completes removes them all.
//!
//! The counts are printed (`cargo test --test it crash_safety:: -- --nocapture`).

use crate::common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::command::{code, fdir, run, stderr, stdout};
use common::{Rng, Testee};

const SEED: u64 = 0x0c4a_5ee0_fd12_0001;

/// Every process subsystem but `code` and `seccomp-filters`, whose reads
/// (every code page; ptrace stops) would make a run long and the write a
/// sliver of it.
const SUBSYSTEMS: &str = "memory-maps,seccomp,cgroups,credentials,namespaces,cgroup-limits,mounts,limits,lsm";

/// The temporary files of saves of `fdir-baseline.json` in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".fdir-baseline.json.tmp"))
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    runs: usize,
    killed: usize,
    completed: usize,
    replaced: usize,
    kept_old: usize,
    temp_left: usize,
}

/// Runs `fdir snapshot ARGS` `n` times over the baseline in `dir`, killing
/// each run after a random delay, and checks the file after each.
fn kill_loop(dir: &Path, args: &[&str], n: usize, check_args: &[&str], window: (u64, u64), rng: &mut Rng) -> Tally {
    let path = dir.join("fdir-baseline.json");
    let mut tally = Tally::default();
    let mut before = std::fs::read(&path).unwrap();
    let mut seen_temps: Vec<String> = Vec::new();
    for i in 0..n {
        let delay = Duration::from_micros(window.0 + rng.next() % (window.1 - window.0 + 1));
        let mut child = fdir()
            .arg("snapshot")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; harmless if it has already exited
        let status = child.wait().unwrap();
        tally.runs += 1;
        match status.signal() {
            Some(libc::SIGKILL) => tally.killed += 1,
            Some(sig) => panic!("run {i}: died of signal {sig}"),
            None => {
                assert_eq!(status.code(), Some(0), "run {i}: a snapshot that was not killed must succeed");
                tally.completed += 1;
            }
        }
        // The file is there, and whole.
        let after = std::fs::read(&path).unwrap_or_else(|e| panic!("run {i} (killed after {delay:?}): {e}"));
        if let Err(e) = fdir::baseline::load(&path, None) {
            panic!("run {i} (killed after {delay:?}): the baseline does not load: {e}");
        }
        if after == before {
            tally.kept_old += 1;
        } else {
            tally.replaced += 1;
        }
        before = after;
        // A kill between the temporary file's creation and the rename leaves
        // it behind (new names only: the next completed save removes them).
        for t in temp_files(dir) {
            if !seen_temps.contains(&t) {
                tally.temp_left += 1;
                seen_temps.push(t);
            }
        }
        // fdir itself accepts the file (every 10th run: a check costs as much as a snapshot).
        if i % 10 == 9 {
            let o = run(&[&["check"], check_args].concat(), dir);
            assert!(code(&o) == 0 || code(&o) == 1, "run {i}: check exit {}: {}{}", code(&o), stdout(&o), stderr(&o));
        }
    }
    tally
}

#[test]
fn sigkill_during_saves_never_leaves_a_torn_or_missing_baseline() {
    let _s = common::serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Processes older than the settle time, so that a snapshot never waits
    // for them and its time is the time to read and write.
    let testees: Vec<Testee> = (0..16).map(|_| Testee::spawn()).collect();
    std::thread::sleep(fdir::SETTLE_YOUNGER_THAN + Duration::from_millis(100));
    let pid = testees[0].pid.to_string();
    let pids: Vec<String> = testees.iter().map(|t| t.pid.to_string()).collect();
    let many: Vec<&str> = pids.iter().flat_map(|p| ["--pid", p.as_str()]).chain(["--subsystems", SUBSYSTEMS]).collect();
    let mut rng = Rng(SEED);

    // One process: a small baseline, a short write.
    let o = run(&["snapshot", "--pid", &pid, "--subsystems", SUBSYSTEMS], d);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let one = kill_loop(d, &["--pid", &pid, "--subsystems", SUBSYSTEMS], 300, &[], (0, 50_000), &mut rng);
    println!("--pid, one process: {one:?}");

    // Every process of the machine.
    let o = run(&["snapshot", "--all", "--subsystems", SUBSYSTEMS], d);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let size = std::fs::metadata(d.join("fdir-baseline.json")).unwrap().len();
    let all = kill_loop(d, &["--all", "--subsystems", SUBSYSTEMS], 100, &["--all"], (0, 50_000), &mut rng);
    println!("--all ({size} bytes): {all:?}");

    // Sixteen processes, nine subsystems: a larger file; first at random,
    // then aimed at the write, around the time a whole run takes.
    let o = run(&[&["snapshot"], many.as_slice()].concat(), d);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let size = std::fs::metadata(d.join("fdir-baseline.json")).unwrap().len();
    let sixteen = kill_loop(d, &many, 100, &[], (0, 50_000), &mut rng);
    println!("--pid x16 ({size} bytes): {sixteen:?}");
    let mut took: Vec<u64> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            assert_eq!(code(&run(&[&["snapshot"], many.as_slice()].concat(), d)), 0);
            u64::try_from(t0.elapsed().as_micros()).unwrap()
        })
        .collect();
    took.sort_unstable();
    let whole = took[2];
    let window = (whole / 2, whole * 11 / 10);
    let aimed = kill_loop(d, &many, 100, &[], window, &mut rng);
    println!(
        "--pid x16, killed {}–{} ms after the start (a whole run: {} ms): {aimed:?}",
        window.0 / 1000,
        window.1 / 1000,
        whole / 1000
    );

    let phases = [&one, &all, &sixteen, &aimed];
    let sum = |f: fn(&Tally) -> usize| phases.iter().map(|t| f(t)).sum::<usize>();
    let (runs, killed, completed) = (sum(|t| t.runs), sum(|t| t.killed), sum(|t| t.completed));
    assert!(killed >= 100, "too few runs were killed to mean anything: {phases:?}");
    assert!(completed > 0, "no run completed: the delays are too short to mean anything");

    // Kill aimed runs until one leaves a temporary file behind, then one more
    // save that completes: every temporary file left by a killed save is
    // removed (its writer's pid is gone).
    let mut tries = 0;
    while temp_files(d).is_empty() && tries < 100 {
        kill_loop(d, &many, 1, &[], window, &mut rng);
        tries += 1;
    }
    let left = temp_files(d);
    let o = run(&["snapshot", "--pid", &pid, "--subsystems", SUBSYSTEMS], d);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(temp_files(d), Vec::<String>::new(), "temporary files left after a completed save (before: {left:?})");
    assert_eq!(code(&run(&["check"], d)), 0);
    println!(
        "{runs} runs, {killed} killed, {} kills left a temporary file (landed between its creation and the rename), \
         {} replaced the file; {} temporary files present before the last save ({tries} more aimed kills), none after; {:.1?}",
        sum(|t| t.temp_left),
        sum(|t| t.replaced),
        left.len(),
        started.elapsed()
    );
    drop(testees);
}
