//! Live tests of shared code pages (`code` in a monitor): the page cache's
//! copy of a code file is hashed once a round for every process that maps
//! it, and a process is read itself only where its page map shows pages of
//! its own (a write into its code copies the page). Reading another
//! process's page map and memory needs ptrace access: as root here; without
//! it the cases are skipped and counted.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::command::{Watch, code, free_port, json_lines, metric, run, scrape, stderr, stdout};
use common::{Testee, is_root, skip};
use fdir::{CodeBudget, Coverage, Finding, Monitor, Subsystem, Summary, Sweep, SystemClock};

const CODE: &[Subsystem] = &[Subsystem::Code];
/// What `ping` answers: `code_marker` returns 0x5eed.
const PONG: &str = "24301";

fn needs_root(test: &str) -> bool {
    if !is_root() {
        skip(test, "needs root: ptrace access to other processes' page maps and memory");
        return false;
    }
    true
}

/// A monitor of `pids`' code, reading every byte every cycle.
fn monitor(pids: Vec<u32>) -> Monitor {
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids }, CODE, 2, &SystemClock).unwrap();
    m.set_code_budget(CodeBudget::UNLIMITED);
    m
}

fn sweep(s: &Summary) -> Sweep {
    s.code.expect("a code sweep")
}

/// The code anomalies of `pid` among `findings`, as text.
fn drift_of(findings: &[Finding], pid: u32) -> Vec<String> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::Drift { target, anomalies } if target.pid() == Some(pid) => Some(anomalies),
            _ => None,
        })
        .flatten()
        .filter(|a| a.subsystem == Subsystem::Code)
        .flat_map(|a| a.changes.iter().map(ToString::to_string))
        .collect()
}

/// Cycles until `done` says a cycle's findings are what is waited for, for a
/// generous time; returns those findings and the cycle's summary.
fn cycle_until(m: &mut Monitor, done: impl Fn(&[Finding]) -> bool) -> (Vec<Finding>, Summary) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (f, s) = m.cycle(&SystemClock);
        if done(&f) || Instant::now() > deadline {
            return (f, s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_process_whose_code_is_written_is_caught_in_its_own_page_and_the_other_is_not_read() {
    if !needs_root("a_process_whose_code_is_written_is_caught_in_its_own_page_and_the_other_is_not_read") {
        return;
    }
    let (mut poked, mut other) = (Testee::spawn(), Testee::spawn());
    let mut m = monitor(vec![poked.pid, other.pid]);
    let (f, s) = m.cycle(&SystemClock);
    assert!(f.is_empty(), "{f:#?}");
    let steady = sweep(&s);
    eprintln!("steady: {steady:?}");
    assert_eq!(steady.private_pages, 0, "{steady:?}");
    // Two processes of one program: its code and libraries are read once.
    assert!(steady.total_bytes > 0 && steady.read_bytes <= steady.total_bytes / 2, "{steady:?}");
    assert_eq!(steady.read_bytes + steady.shared_bytes, steady.verified_bytes, "{steady:?}");

    // The testee writes one byte of its own code: a private copy of the page.
    poked.must("poke-code 1");
    let (f, s) = cycle_until(&mut m, |f| !drift_of(f, poked.pid).is_empty());
    let text = drift_of(&f, poked.pid);
    eprintln!("{text:#?} {:?}", sweep(&s));
    assert_eq!(text.len(), 1, "{f:#?}");
    assert!(text[0].ends_with("; in 1 page of this process's own)"), "{text:#?}");
    assert!(drift_of(&f, other.pid).is_empty(), "{f:#?}");
    assert!(sweep(&s).private_pages >= 1, "{:?}", sweep(&s));

    // Written back: the same bytes in its own page again, quiet; the page
    // stays its own and is read every cycle.
    poked.must("poke-code 1");
    let (f, s) = cycle_until(&mut m, |f| f.iter().any(|f| matches!(f, Finding::Recovered { .. })));
    assert!(f.iter().any(|f| matches!(f, Finding::Recovered { subsystem: Subsystem::Code, .. })), "{f:#?}");
    let (f, s2) = m.cycle(&SystemClock);
    assert!(f.is_empty(), "{f:#?}");
    eprintln!("after: {:?} {:?}", sweep(&s), sweep(&s2));
    assert!(sweep(&s2).private_pages >= 1);
    assert_eq!(poked.must("ping"), PONG);

    // A write from outside, through /proc/PID/mem (as a debugger's
    // PTRACE_POKETEXT): the page is copied too, and found the same way.
    let marker = u64::from_str_radix(other.must("code-marker").trim_start_matches("0x"), 16).unwrap();
    let flip = || {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{}/mem", other.pid)).unwrap();
        let mut b = [0u8];
        mem.read_exact_at(&mut b, marker).unwrap();
        b[0] ^= 0x01;
        mem.write_all_at(&b, marker).unwrap();
    };
    flip();
    let (f, _) = cycle_until(&mut m, |f| !drift_of(f, other.pid).is_empty());
    let text = drift_of(&f, other.pid);
    assert!(text.len() == 1 && text[0].ends_with("; in 1 page of this process's own)"), "{f:#?}");
    assert!(drift_of(&f, poked.pid).is_empty(), "{f:#?}");
    flip();
    cycle_until(&mut m, |f| f.iter().any(|f| matches!(f, Finding::Recovered { .. })));
    assert_eq!(other.must("ping"), PONG);
}

/// `sleep`s started by the test, killed when dropped.
struct Sleeps(Vec<Child>);

impl Drop for Sleeps {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn fifty_processes_of_one_program_cost_one_read_of_its_code_a_round() {
    if !needs_root("fifty_processes_of_one_program_cost_one_read_of_its_code_a_round") {
        return;
    }
    let sleeps = Sleeps(
        (0..50).map(|_| Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().expect("spawn sleep")).collect(),
    );
    let pids: Vec<u32> = sleeps.0.iter().map(Child::id).collect();
    let mut m = monitor(pids);
    for round in 0..3 {
        let (f, s) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "{f:#?}");
        let s = sweep(&s);
        eprintln!("round {round}: {s:?}");
        assert_eq!(s.verified_bytes, s.total_bytes, "everything, every round");
        // 50 processes with the same code: 50 times one's bytes verified, one
        // process's worth read (the first to need each chunk), the rest shared.
        assert_eq!(s.total_bytes % 50, 0, "{s:?}");
        assert_eq!(s.read_bytes, s.total_bytes / 50, "{s:?}");
        assert_eq!(s.shared_bytes, s.total_bytes - s.read_bytes, "{s:?}");
        assert_eq!(s.private_pages, 0, "{s:?}");
    }
    drop(sleeps);
}

/// The code mapping of `path` in process `pid`: (start, end, file offset).
fn code_mapping(pid: u32, path: &str) -> (u64, u64, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let line = maps.lines().find(|l| l.contains(" r-xp ") && l.ends_with(path)).unwrap_or_else(|| panic!("{maps}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let (lo, hi) = f[0].split_once('-').unwrap();
    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
    (hex(lo), hex(hi), hex(f[2]))
}

#[test]
fn a_bit_flipped_in_the_page_cache_is_the_shared_copy_s_drift_in_every_process_that_maps_it() {
    if !needs_root("a_bit_flipped_in_the_page_cache_is_the_shared_copy_s_drift_in_every_process_that_maps_it") {
        return;
    }
    use std::os::unix::fs::FileExt;
    // A library of the test's own (a copy of libm), preloaded into three
    // sleeps: its code is in their memory, and only in theirs.
    let Some(libm) = ["/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6", "/usr/lib64/libm.so.6"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        skip("a_bit_flipped_in_the_page_cache_is_the_shared_copy_s_drift_in_every_process_that_maps_it", "no libm");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libfdir-pages.so");
    std::fs::copy(libm, &lib).unwrap();
    let lib_path = lib.to_str().unwrap().to_owned();
    let sleeps = Sleeps(
        (0..3)
            .map(|_| {
                Command::new("sleep").arg("600").env("LD_PRELOAD", &lib).stdin(Stdio::null()).spawn().expect("sleep")
            })
            .collect(),
    );
    let pids: Vec<u32> = sleeps.0.iter().map(Child::id).collect();
    // Wait until the library is mapped (ld.so has run).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pids
        .iter()
        .all(|p| std::fs::read_to_string(format!("/proc/{p}/maps")).unwrap_or_default().contains(&lib_path))
    {
        assert!(Instant::now() < deadline, "the library was never mapped");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut m = monitor(pids.clone());
    let (f, _) = m.cycle(&SystemClock);
    assert!(f.is_empty(), "{f:#?}");

    // One bit of the middle of its code, written into the file: the page
    // cache's page, which every process mapping it shares, changes.
    let (start, end, offset) = code_mapping(pids[0], &lib_path);
    let at = offset + (end - start) / 2;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&lib).unwrap();
    let flip = || {
        let mut b = [0u8];
        file.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x20;
        file.write_all_at(&b, at).unwrap();
    };
    flip();
    // One root cause: one anomaly, the file's copy, naming the three.
    let object = format!("code file {lib_path} dev ");
    let of_file = |f: &Finding| match f {
        Finding::ObjectDrift { object: o, targets, anomaly } if o.starts_with(&object) => {
            Some((targets.clone(), anomaly.clone()))
        }
        _ => None,
    };
    let (f, _) = cycle_until(&mut m, |f| f.iter().any(|f| of_file(f).is_some()));
    let drifts: Vec<_> = f.iter().filter_map(of_file).collect();
    assert_eq!(drifts.len(), 1, "{f:#?}");
    let (targets, anomaly) = &drifts[0];
    let mut named: Vec<u32> = targets.iter().filter_map(fdir::Target::pid).collect();
    named.sort_unstable();
    let mut want = pids.clone();
    want.sort_unstable();
    assert_eq!(named, want, "{f:#?}");
    assert_eq!(anomaly.subsystem, Subsystem::Code);
    for &p in &pids {
        assert!(drift_of(&f, p).is_empty(), "pid {p} was reported on its own too: {f:#?}");
    }
    let text = anomaly.changes[0].to_string();
    assert!(text.ends_with(", for every process that maps it)"), "{text}");
    eprintln!("{text}");
    flip();
    let recovered = |f: &Finding| matches!(f, Finding::ObjectRecovered { object: o, subsystem: Subsystem::Code, .. } if o.starts_with(&object));
    let (f, _) = cycle_until(&mut m, |f| f.iter().any(recovered));
    assert_eq!(f.iter().filter(|f| recovered(f)).count(), 1, "{f:#?}");
    drop(sleeps);
}

/// Two processes of one program, baselined with `code` in `dir`.
fn two_testees_baselined(dir: &std::path::Path) -> (Testee, Testee, Vec<String>) {
    let (a, b) = (Testee::spawn(), Testee::spawn());
    let pids = vec![a.pid.to_string(), b.pid.to_string()];
    let o = run(&["snapshot", "--pid", &pids[0], "--pid", &pids[1], "--subsystems", "code"], dir);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (a, b, pids)
}

#[test]
fn the_text_check_line_says_how_much_code_was_read_and_how_much_shared() {
    if !needs_root("the_text_check_line_says_how_much_code_was_read_and_how_much_shared") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = two_testees_baselined(dir.path());
    // JSON: the numbers the text line must show.
    let o = run(&["check", "--format", "json", "--code-budget", "unlimited"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let check = json_lines(&o).into_iter().find(|v| v["event"] == "check").unwrap();
    let c = &check["code"];
    let (read, shared) = (c["read_bytes"].as_u64().unwrap(), c["shared_bytes"].as_u64().unwrap());
    assert!(read > 0 && shared > 0, "two processes of one program share their code: {check}");
    assert_eq!(read + shared, c["verified_bytes"].as_u64().unwrap(), "{check}");
    // Text: the same figures on the CHECK line, after the sweep.
    let o = run(&["check", "--code-budget", "unlimited"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let text = stdout(&o);
    let line = text.lines().find(|l| l.contains(" CHECK ")).unwrap_or_else(|| panic!("no CHECK line: {text}"));
    let (_, tail) = line.split_once(" verified, a full sweep takes 1 check").unwrap_or_else(|| panic!("{line}"));
    let figures = tail.strip_prefix("; code ").unwrap_or_else(|| panic!("no read/shared figures: {line}"));
    let (read_text, rest) = figures.split_once(" read, ").unwrap_or_else(|| panic!("{line}"));
    let (shared_text, rest) = rest.split_once(" shared, ").unwrap_or_else(|| panic!("{line}"));
    assert!(rest.starts_with("0 private pages"), "{line}");
    // Sizes as the line writes them (KiB/MiB, one decimal): the JSON's, within rounding.
    let bytes = |t: &str| -> f64 {
        let (n, unit) = t.split_once(' ').unwrap_or_else(|| panic!("{t}"));
        let scale = match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1_048_576.0,
            "GiB" => 1_073_741_824.0,
            _ => panic!("unit {unit} in {line}"),
        };
        n.parse::<f64>().unwrap() * scale
    };
    for (t, want) in [(read_text, read), (shared_text, shared)] {
        let got = bytes(t);
        #[allow(clippy::cast_precision_loss)]
        let want = want as f64;
        assert!((got - want).abs() <= want * 0.05 + 1024.0, "{t} against {want} bytes: {line}");
    }
    drop((a, b));
}

#[test]
fn the_metrics_count_code_read_and_shared_bytes() {
    if !needs_root("the_metrics_count_code_read_and_shared_bytes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b, pids) = two_testees_baselined(dir.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "--pid",
        &pids[0],
        "--pid",
        &pids[1],
        "--interval",
        "200ms",
        "--code-budget",
        "unlimited",
        "--format",
        "json",
        "--metrics",
        &addr,
    ];
    let mut w = Watch::start(&args, dir.path());
    w.wait_for("the second check", |v| v["event"] == "check" && v["cycle"].as_u64().is_some_and(|c| c >= 2));
    // Whole rounds only: a scrape between the metrics' updates of one round
    // would see verified bytes without their split, so read until they agree.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (text, verified, read, shared) = loop {
        let text = scrape(port);
        let get = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name}: {text}"));
        let (verified, read, shared) = (
            get("fdir_code_verified_bytes_total"),
            get("fdir_code_read_bytes_total"),
            get("fdir_code_shared_bytes_total"),
        );
        if read + shared == verified || Instant::now() > deadline {
            break (text, verified, read, shared);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(read > 0.0 && shared > 0.0, "two processes of one program share their code: {text}");
    assert_eq!(read + shared, verified, "{text}");
    assert_eq!(metric(&text, "fdir_code_private_pages"), Some(0.0), "{text}");
    assert!(text.contains("# TYPE fdir_code_read_bytes_total counter\n"), "{text}");
    assert!(text.contains("# TYPE fdir_code_shared_bytes_total counter\n"), "{text}");
    assert!(text.contains("# TYPE fdir_code_private_pages gauge\n"), "{text}");
    let (exit, _) = w.terminate();
    assert_eq!(exit, 0);
    drop((a, b));
}
