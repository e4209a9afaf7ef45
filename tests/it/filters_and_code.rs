//! Live tests of the two intrusive subsystems against a real child
//! (`fdir-testee`): seccomp filter programs read with ptrace
//! (`seccomp-filters`), and code read through /proc/PID/mem and hashed
//! (`code`). Reading filter programs needs CAP_SYS_ADMIN, and flipping a bit
//! in another process's code needs root: without them the cases are skipped
//! and counted.

use crate::common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Testee, is_root, skip};
use fdir::{
    Anomaly, Checker, CodeBudget, Coverage, Finding, Monitor, Observation, Procfs, Status, Subsystem, SystemClock,
    Verdict, check_with, snapshot_with,
};
use serde_json::Value;

const FILTERS: &[Subsystem] = &[Subsystem::SeccompFilters];
const CODE: &[Subsystem] = &[Subsystem::Code];
/// What `ping` answers: `code_marker` returns 0x5eed.
const PONG: &str = "24301";

fn texts(a: &Anomaly) -> Vec<String> {
    a.changes.iter().map(ToString::to_string).collect()
}

/// The `State:` of a process, e.g. `S (sleeping)`.
fn state(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("State:")).unwrap().trim().to_owned()
}

/// The testee is not stopped, not traced, and still runs its code.
fn assert_running(t: &mut Testee) {
    for tid in std::fs::read_dir(format!("/proc/{}/task", t.pid)).unwrap() {
        let tid = tid.unwrap().file_name().into_string().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{}/task/{tid}/status", t.pid)).unwrap_or_default();
        for line in status.lines() {
            if let Some(s) = line.strip_prefix("State:") {
                let s = s.trim();
                assert!(!s.starts_with('t') && !s.starts_with('T'), "thread {tid} left stopped: {s}");
            }
            if let Some(tracer) = line.strip_prefix("TracerPid:") {
                assert_eq!(tracer.trim(), "0", "thread {tid} left traced");
            }
        }
    }
    assert_eq!(t.must("ping"), PONG);
}

fn needs_root(test: &str) -> bool {
    if !is_root() {
        skip(test, "needs root: CAP_SYS_ADMIN to read seccomp programs and to write another process's code");
        return false;
    }
    true
}

/// ptrace through the raw system call (the C libraries' wrappers disagree on
/// the request type).
fn ptrace(request: libc::c_long, pid: u32, data: usize) -> libc::c_long {
    // SAFETY: SEIZE, INTERRUPT and DETACH take integers only (no pointer is
    // passed); the kernel checks the pid.
    unsafe { libc::syscall(libc::SYS_ptrace, request, libc::c_long::from(pid as i32), 0usize, data) }
}

/// The test thread as the tracer of a process's main thread (seized, never
/// stopped by the test); released on drop.
struct Tracer(u32);

impl Tracer {
    fn seize(pid: u32) -> Tracer {
        assert_eq!(ptrace(0x4206, pid, 0), 0, "PTRACE_SEIZE: {}", std::io::Error::last_os_error());
        Tracer(pid)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // A seized tracee can be detached only from a stop: interrupt, wait, detach.
        assert_eq!(ptrace(0x4207, self.0, 0), 0, "PTRACE_INTERRUPT");
        let mut status = 0;
        // SAFETY: `status` is a valid int for waitpid to write.
        let r = unsafe { libc::waitpid(self.0 as i32, &raw mut status, libc::__WALL) };
        assert_eq!(r, self.0 as i32, "waitpid: {}", std::io::Error::last_os_error());
        assert_eq!(ptrace(17, self.0, 0), 0, "PTRACE_DETACH");
    }
}

#[test]
fn a_new_seccomp_filter_is_named_by_its_program() {
    if !needs_root("a_new_seccomp_filter_is_named_by_its_program") {
        return;
    }
    let mut t = Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, FILTERS).unwrap();
    let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
    assert!(v.is_ok() && v.report().stopped.is_none(), "no filters: nothing to stop: {v:#?}");

    t.must(&format!("seccomp-errno {}", libc::SYS_acct));
    let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
    let a = v.anomalies();
    assert_eq!(a.len(), 1, "{a:#?}");
    let t1 = texts(&a[0]);
    assert_eq!(t1.len(), 1, "{t1:#?}");
    assert!(t1[0].starts_with("new seccomp filter #0 4 instructions, returns errno allow, sha256 "), "{t1:#?}");
    let stops = v.report().stopped.expect("the thread with a filter was stopped to read it");
    assert_eq!(stops.threads, 1);
    eprintln!("seccomp-filters: thread stopped for {} µs", stops.longest.as_micros());

    t.must("seccomp");
    let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
    let t2 = texts(&v.anomalies()[0]);
    assert!(t2.iter().any(|t| t.starts_with("new seccomp filter #1 1 instruction, returns allow, sha256 ")), "{t2:#?}");
    assert_running(&mut t);
}

#[test]
fn filters_installed_before_the_baseline_stay_quiet_in_every_thread() {
    if !needs_root("filters_installed_before_the_baseline_stay_quiet_in_every_thread") {
        return;
    }
    let mut t = Testee::spawn();
    t.must("seccomp");
    t.must("threads 4");
    // One thread adds a filter of its own: two chains, [A] and [A, A].
    t.must("seccomp-thread");
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, FILTERS).unwrap();
    let Some(Observation::Observed { records, .. }) = baseline.subsystems.get(&Subsystem::SeccompFilters) else {
        panic!("{baseline:#?}")
    };
    let chains: Vec<&str> = records.iter().filter(|r| r.key == "chain").map(|r| r.value.as_str()).collect();
    assert_eq!(chains.len(), 2, "{records:#?}");
    assert!(
        chains.iter().any(|c| c.starts_with("1 filter, sha256")) && chains.iter().any(|c| c.starts_with("2 filters"))
    );
    let mut longest = Duration::ZERO;
    let mut checker = Checker::new();
    for _ in 0..10 {
        let v = checker.check(&baseline, &SystemClock, &fs, FILTERS).unwrap();
        assert!(v.is_ok(), "{:#?}", v.anomalies());
        assert_eq!(v.report().subsystems[&Subsystem::SeccompFilters], Status::Unchanged);
        let stops = v.report().stopped.unwrap();
        assert_eq!(stops.threads, 6, "main, 4 sleepers and the filtered thread");
        longest = longest.max(stops.longest);
    }
    eprintln!("seccomp-filters: 6 threads, longest stop over 10 checks {} µs", longest.as_micros());
    assert_running(&mut t);
}

#[test]
fn an_already_traced_thread_is_unobservable_and_never_stopped() {
    if !needs_root("an_already_traced_thread_is_unobservable_and_never_stopped") {
        return;
    }
    let mut t = Testee::spawn();
    t.must("seccomp");
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, FILTERS).unwrap();
    {
        let _tracer = Tracer::seize(t.pid);
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() };
        let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
        assert!(v.is_ok());
        let want = format!("thread {} is already traced by pid {me}", t.pid);
        assert_eq!(v.report().subsystems[&Subsystem::SeccompFilters], Status::Unobservable { reason: want });
        assert!(v.report().stopped.is_none());
        let s = state(t.pid);
        assert!(!s.starts_with('t') && !s.starts_with('T'), "left stopped: {s}");
    }
    let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
    assert_eq!(v.report().subsystems[&Subsystem::SeccompFilters], Status::Unchanged);
    assert_running(&mut t);
}

#[test]
fn the_monitor_reports_a_tracer_once_when_it_attaches() {
    if !needs_root("the_monitor_reports_a_tracer_once_when_it_attaches") {
        return;
    }
    let mut t = Testee::spawn();
    t.must("seccomp");
    let pids = Coverage::Pids { pids: vec![t.pid] };
    let (mut m, _) = Monitor::baseline(pids, FILTERS, 2, &SystemClock).unwrap();
    let traced = |f: &[Finding]| {
        f.iter()
            .filter(|f| matches!(f, Finding::Unobservable { reason, .. } if reason.contains("already traced by pid")))
            .count()
    };
    let (f, _) = m.cycle(&SystemClock);
    assert_eq!(traced(&f), 0, "{f:#?}");
    {
        let _tracer = Tracer::seize(t.pid);
        let (f, _) = m.cycle(&SystemClock);
        assert_eq!(traced(&f), 1, "{f:#?}");
        assert!(!f.iter().any(|f| matches!(f, Finding::Drift { .. })));
        let (f, _) = m.cycle(&SystemClock);
        assert_eq!(traced(&f), 0, "said once while it lasts: {f:#?}");
    }
    let (f, _) = m.cycle(&SystemClock);
    assert!(f.is_empty(), "{f:#?}");
    assert_running(&mut t);
}

/// Waits until the process's state starts with one of `states`.
fn wait_state(pid: u32, states: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = state(pid);
        if s.starts_with(|c| states.contains(c)) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_process_stopped_by_a_signal_is_read_and_stays_stopped() {
    if !needs_root("a_process_stopped_by_a_signal_is_read_and_stays_stopped") {
        return;
    }
    let mut t = Testee::spawn();
    t.must("seccomp");
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, FILTERS).unwrap();
    // SAFETY: kill sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(t.pid as i32, libc::SIGSTOP) }, 0);
    assert!(wait_state(t.pid, "T").starts_with('T'));
    let v = check_with(&baseline, &SystemClock, &fs, FILTERS).unwrap();
    assert_eq!(v.report().subsystems[&Subsystem::SeccompFilters], Status::Unchanged);
    assert_eq!(v.report().stopped.map(|s| s.threads), Some(1));
    std::thread::sleep(Duration::from_millis(50));
    let s = state(t.pid);
    assert!(s.starts_with('T'), "fdir resumed a process someone had stopped: {s}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(t.pid as i32, libc::SIGCONT) }, 0);
    assert!(!wait_state(t.pid, "SR").starts_with(['T', 't']));
    assert_running(&mut t);
}

#[test]
fn concurrent_readers_never_see_drift_nor_leave_the_target_stopped() {
    if !needs_root("concurrent_readers_never_see_drift_nor_leave_the_target_stopped") {
        return;
    }
    let mut t = Testee::spawn();
    t.must("seccomp");
    t.must("threads 3");
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, FILTERS).unwrap();
    let (unchanged, busy) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let fs = Procfs::try_pid(t.pid).unwrap();
                    let mut checker = Checker::new();
                    let (mut unchanged, mut busy) = (0, 0);
                    for _ in 0..15 {
                        let v = checker.check(&baseline, &SystemClock, &fs, FILTERS).unwrap();
                        assert!(v.is_ok(), "{:#?}", v.anomalies());
                        match &v.report().subsystems[&Subsystem::SeccompFilters] {
                            Status::Unchanged => unchanged += 1,
                            Status::Unobservable { reason } if reason.contains("already traced") => busy += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    (unchanged, busy)
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    eprintln!("concurrent readers: {unchanged} unchanged, {busy} found another reader attached");
    assert!(unchanged > 0);
    assert_running(&mut t);
}

/// The code mapping that holds `addr`: (path, start, file offset).
fn mapping_of(pid: u32, addr: u64) -> (String, u64, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (lo, hi) = f[0].split_once('-').unwrap();
        let (lo, hi) = (u64::from_str_radix(lo, 16).unwrap(), u64::from_str_radix(hi, 16).unwrap());
        if (lo..hi).contains(&addr) {
            assert!(f[1].contains('x'), "{line}");
            return (f[5].to_owned(), lo, u64::from_str_radix(f[2], 16).unwrap());
        }
    }
    panic!("{addr:#x} is not mapped")
}

/// Flips `mask` in the byte at `addr` of process `pid`, through its mem file.
fn flip(pid: u32, addr: u64, mask: u8) {
    let mem = OpenOptions::new().read(true).write(true).open(format!("/proc/{pid}/mem")).unwrap();
    let mut b = [0u8];
    mem.read_exact_at(&mut b, addr).unwrap();
    b[0] ^= mask;
    mem.write_all_at(&b, addr).unwrap();
}

#[test]
fn a_bit_flipped_in_a_code_page_is_found_by_the_sweep_and_cleared_when_flipped_back() {
    if !needs_root("a_bit_flipped_in_a_code_page_is_found_by_the_sweep_and_cleared_when_flipped_back") {
        return;
    }
    let mut t = Testee::spawn();
    let marker = u64::from_str_radix(t.must("code-marker").trim_start_matches("0x"), 16).unwrap();
    let page = u64::from_str_radix(t.must("code-page").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(marker & !0xfff, page);
    let (path, start, offset) = mapping_of(t.pid, marker);
    let chunk = (marker - start) / 0x10000 * 0x10000;
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, CODE).unwrap();

    let budget = 256 << 10;
    let mut checker = Checker::with_code_budget(CodeBudget::bytes(budget));
    let v = checker.check(&baseline, &SystemClock, &fs, CODE).unwrap();
    assert!(v.is_ok(), "{:#?}", v.anomalies());
    let sweep = v.report().code.unwrap();
    assert!(sweep.verified_bytes >= 0x10000 && sweep.verified_bytes < budget + 0x10000, "{sweep:?}");
    assert!(sweep.total_bytes > 1 << 20 && sweep.checks_per_sweep >= 4, "{sweep:?}");

    // One bit of the first instruction of a function that only `ping` calls.
    flip(t.pid, marker, 0x01);
    let mut found = None;
    for n in 1..=sweep.checks_per_sweep + 1 {
        let v = checker.check(&baseline, &SystemClock, &fs, CODE).unwrap();
        let s = v.report().code.unwrap();
        eprintln!(
            "check {n}: {} bytes verified, {} of {} swept, sweep {}, {} drifted",
            s.verified_bytes, s.swept_bytes, s.total_bytes, s.sweeps, s.drifted_chunks
        );
        assert!(s.verified_bytes < budget + 0x10000, "over budget: {s:?}");
        if let Verdict::Anomaly { anomalies, .. } = v {
            found = Some((n, anomalies));
            break;
        }
    }
    let (n, anomalies) = found.expect("a full sweep reaches the flipped chunk");
    assert!(n <= sweep.checks_per_sweep, "found after {n} checks");
    let a = &anomalies[0];
    assert_eq!(a.subsystem, Subsystem::Code);
    let text = texts(a);
    assert_eq!(text.len(), 1, "{text:#?}");
    let item = format!("code of {path} @{offset:#x}+{chunk:#x} sha256 ");
    assert!(text[0].starts_with(&item) && text[0].contains(" (chunk "), "{text:#?} does not start with {item}");
    eprintln!("found after {n} checks: {}", text[0]);

    // A confirming re-read sees the same drift.
    let again = checker.check(&baseline, &SystemClock, &fs, CODE).unwrap();
    assert_eq!(again.anomalies().first().map(|x| x.actual), Some(a.actual));

    flip(t.pid, marker, 0x01);
    let v = checker.check(&baseline, &SystemClock, &fs, CODE).unwrap();
    assert!(v.is_ok(), "{:#?}", v.anomalies());
    assert_eq!(v.report().code.unwrap().drifted_chunks, 0);
    assert_running(&mut t);
}

#[test]
fn a_busy_process_with_filters_and_a_code_budget_never_raises_an_anomaly() {
    let mut t = Testee::spawn();
    let filtered = t.cmd("seccomp").is_ok();
    t.must("threads 8");
    let fs = Procfs::try_pid(t.pid).unwrap();
    let all = Subsystem::ALL;
    let baseline = snapshot_with(&SystemClock, &fs, all).unwrap();
    t.must("churn 3");
    let mut checker = Checker::with_code_budget(CodeBudget::bytes(512 << 10));
    // Twenty checks spread over the churn, however long they take.
    let (mut checks, mut stopped) = (0, 0);
    while checks < 20 {
        let v = match checker.check(&baseline, &SystemClock, &fs, all) {
            Ok(v) => v,
            Err(e) => {
                panic!("{e} after {checks} checks; {:?}", std::fs::read_to_string(format!("/proc/{}/status", t.pid)))
            }
        };
        assert!(v.is_ok(), "false alarm after {checks} checks: {:#?}", v.anomalies());
        stopped += v.report().stopped.map_or(0, |s| s.threads);
        checks += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("busy, filtered {filtered}: {checks} checks, {stopped} thread stops, 0 anomalies");
    assert_running(&mut t);
}

fn fdir(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fdir")).args(args).current_dir(dir).output().unwrap()
}

#[test]
fn the_command_reports_code_coverage_and_leaves_intrusive_subsystems_out_by_default() {
    let t = Testee::spawn();
    let dir = tempfile::tempdir().unwrap();
    let pid = t.pid.to_string();
    let o = fdir(&["snapshot", "--pid", &pid, "--format", "json"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let baseline: Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "baseline")
        .unwrap();
    let subs = baseline["subsystems"].as_object().unwrap();
    assert!(subs.contains_key("memory-maps") && !subs.contains_key("code") && !subs.contains_key("seccomp-filters"));

    let o = fdir(&["snapshot", "--pid", &pid, "--subsystems", "code,seccomp-filters"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = fdir(&["check", "--format", "json", "--code-budget", "1MiB"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let check: Value = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "check")
        .unwrap();
    let code = &check["code"];
    let verified = code["verified_bytes"].as_u64().unwrap();
    assert!((1 << 20..(1 << 20) + 0x10000).contains(&verified), "{check}");
    assert!(code["total_bytes"].as_u64().unwrap() > verified && code["checks_per_sweep"].as_u64().unwrap() >= 2);
    // Text: one line says how much code was verified.
    let o = fdir(&["check"], dir.path());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(" verified, a full sweep takes 1 check"), "{text}");
    let o = fdir(&["check", "--code-budget", "lots"], dir.path());
    assert_eq!(o.status.code(), Some(2));
}
