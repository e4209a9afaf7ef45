//! Soak: `fdir watch --all --interval 1s --format json` while a load generator
//! (`fdir-testee spawn-storm`) starts and ends processes and threads —
//! short-lived ones, ones that live long enough to be baselined and then
//! exit, and long-lived workers whose threads come and go.
//!
//! At the end: fdir is still running and exits 0 on SIGTERM; no `anomaly`
//! event; no `error` event about fdir itself; its open files and resident
//! memory stay bounded; and no process is ever compared with another's
//! baseline — every event about a pid carries the start time of that pid's
//! latest baseline, and a pid is baselined again only after its previous
//! process was seen to exit.
//!
//! 60 seconds with a light load in CI. `scripts/soak.sh` runs the same for
//! 10 minutes (`FDIR_SOAK_SECS=600`) with a heavier load, on a release
//! build, and keeps the events, the samples (CSV) and the summary in
//! `FDIR_SOAK_DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::command::{assert_event_schema, fdir};
use serde_json::Value;

/// Everything learned from the event stream, as it arrives.
#[derive(Default)]
struct Analysis {
    events: BTreeMap<String, u64>,
    /// Anomalies of the load's own processes: false alarms.
    anomalies: Vec<String>,
    /// Anomalies of processes outside the load (on a shared machine, other
    /// people's processes really change: a program exec'd, say).
    foreign: Vec<String>,
    /// The load generator's pid, once it runs.
    storm: u32,
    own_errors: Vec<String>,
    target_errors: Vec<String>,
    transients: Vec<String>,
    /// pid → start time of its latest baseline, while the process is watched.
    current: BTreeMap<u64, u64>,
    /// pid → start times it was baselined with (pid reuse seen by fdir).
    starts: BTreeMap<u64, BTreeSet<u64>>,
    first_sight: u64,
    mismatches: Vec<String>,
    last_targets: u64,
    max_targets: u64,
    cycles: u64,
    stopped: bool,
}

impl Analysis {
    fn take(&mut self, v: &Value) {
        assert_event_schema(v);
        let kind = v["event"].as_str().unwrap().to_owned();
        *self.events.entry(kind.clone()).or_default() += 1;
        let pid = v["pid"].as_u64();
        let start = v["start_time"].as_u64();
        let line = || v.to_string().chars().take(400).collect::<String>();
        match kind.as_str() {
            "baseline" => {
                let (Some(pid), Some(start)) = (pid, start) else {
                    self.mismatches.push(format!("a baseline without pid or start time: {}", line()));
                    return;
                };
                if v["first_sight"] == true {
                    self.first_sight += 1;
                    if let Some(old) = self.current.get(&pid) {
                        self.mismatches.push(format!(
                            "pid {pid} baselined again (start {start}) while its process of start {old} was not seen to exit"
                        ));
                    }
                }
                self.current.insert(pid, start);
                self.starts.entry(pid).or_default().insert(start);
            }
            "anomaly" | "transient" | "recovered" | "exited" | "reused" | "baseline-repaired" | "baseline-lost" => {
                if let Some(pid) = pid {
                    match (self.current.get(&pid), start) {
                        (Some(&cur), Some(s)) if cur == s => {}
                        (cur, s) => self.mismatches.push(format!(
                            "{kind} of pid {pid} with start time {s:?}, its baseline's is {cur:?}: {}",
                            line()
                        )),
                    }
                    if kind == "exited" || kind == "reused" {
                        self.current.remove(&pid);
                    }
                }
                match kind.as_str() {
                    "anomaly" if pid.is_some_and(|p| descends_from(p, self.storm)) => self.anomalies.push(line()),
                    "anomaly" => {
                        let text = v["changes"][0]["text"].as_str().unwrap_or("").chars().take(200).collect::<String>();
                        self.foreign.push(format!("pid {} ({}) {}: {text}", v["pid"], v["name"], v["subsystem"]));
                    }
                    "transient" => self.transients.push(line()),
                    _ => {}
                }
            }
            "error" => {
                if pid.is_some() {
                    self.target_errors.push(line());
                } else {
                    self.own_errors.push(line());
                }
            }
            "check" => {
                self.cycles += 1;
                self.last_targets = v["targets"].as_u64().unwrap_or(0);
                self.max_targets = self.max_targets.max(self.last_targets);
            }
            "stopped" => self.stopped = true,
            _ => {}
        }
    }
}

/// Whether `pid` is `ancestor` or one of its descendants (read while it runs;
/// a process already gone counts as the load's, so as to never excuse one).
fn descends_from(pid: u64, ancestor: u32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        if p == u64::from(ancestor) {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return true };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u64>().ok());
        match ppid {
            Some(0 | 1) | None => return false,
            Some(pp) => p = pp,
        }
    }
    false
}

#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    fds: u64,
    rss_kb: u64,
    threads: u64,
    targets: u64,
}

fn sample(pid: u32, at: f64, targets: u64) -> Option<Sample> {
    let fds = u64::try_from(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count()).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some(Sample { at, fds, rss_kb: field("VmRSS:")?, threads: field("Threads:")?, targets })
}

/// The first and the last quarter's `stat` (a median, or a floor), and
/// whether the last is within 10% (plus `slack`) of the first.
fn bounded(xs: &[u64], slack: f64, stat: fn(&[u64]) -> f64) -> (f64, f64, bool) {
    let q = (xs.len() / 4).max(1);
    let (first, last) = (stat(&xs[..q]), stat(&xs[xs.len() - q..]));
    (first, last, last <= first * 1.10 + slack)
}

/// The least of `xs`: the floor of the open files. A sample taken while a
/// cycle holds its one-shot descriptors (new processes' files being
/// baselined) reads up to 250 more than one taken between cycles, so even
/// a quarter's median moved with where its samples fell: 391 in the first
/// quarter and 451 in the last in one fresh-clone CI of a watch that did
/// not leak (the test passed twice on the same build right after). A leak
/// raises every sample, and so the floor; a cycle's descriptors never
/// lower it.
fn floor(xs: &[u64]) -> f64 {
    xs.iter().min().copied().unwrap_or(0) as f64
}

fn median(xs: &[u64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => f64::midpoint(v[n / 2 - 1] as f64, v[n / 2] as f64),
    }
}

/// Kills a child on drop (the test may fail half-way).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Cycles the soak waits for before it judges (by count, not by time).
const MIN_CYCLES: u64 = 10;

struct Load {
    procs_per_sec: u32,
    threads_per_sec: u32,
    workers: u32,
}

#[test]
fn watch_all_survives_process_and_thread_churn_without_false_alarms_or_growth() {
    let secs: u64 = std::env::var("FDIR_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let load = if secs >= 300 {
        Load { procs_per_sec: 30, threads_per_sec: 150, workers: 4 }
    } else {
        Load { procs_per_sec: 10, threads_per_sec: 40, workers: 2 }
    };
    let every = Duration::from_secs(if secs >= 300 { 5 } else { 2 });
    let keep = std::env::var_os("FDIR_SOAK_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let dir: &Path = keep.as_deref().unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).unwrap();
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().to_owned();
    let started = Instant::now();

    // fdir, its events read as they come and kept in events.ndjson.
    let _ = std::fs::remove_file(dir.join("fdir-baseline.json"));
    let mut child = fdir()
        .args(["watch", "--all", "--interval", "1s", "--format", "json", "--baseline"])
        .arg(dir.join("fdir-baseline.json"))
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("fdir.stderr")).unwrap())
        .spawn()
        .unwrap();
    let fdir_pid = child.id();
    let out = child.stdout.take().unwrap();
    let mut watch = Reaped(child);
    let analysis = Arc::new(Mutex::new(Analysis::default()));
    let reader = {
        let analysis = Arc::clone(&analysis);
        let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("events.ndjson")).unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                writeln!(log, "{line}").unwrap();
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
                analysis.lock().unwrap().take(&v);
            }
            log.flush().unwrap();
        })
    };
    // A deadline that catches a hang, never a measure of speed.
    let deadline = Instant::now() + Duration::from_secs(120);
    while analysis.lock().unwrap().cycles == 0 {
        assert!(Instant::now() < deadline, "fdir did not finish its first check within 120 s");
        assert!(
            watch.0.try_wait().unwrap().is_none(),
            "fdir exited at start: see {}",
            dir.join("fdir.stderr").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let baseline_took = started.elapsed();

    // The storm.
    let storm = Command::new(env!("CARGO_BIN_EXE_fdir-testee"))
        .args([
            "spawn-storm",
            &secs.to_string(),
            &load.procs_per_sec.to_string(),
            &load.threads_per_sec.to_string(),
            &load.workers.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut storm = Reaped(storm);
    analysis.lock().unwrap().storm = storm.0.id();
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut csv = String::from("seconds,fds,rss_kb,threads,targets\n");
    loop {
        let targets = analysis.lock().unwrap().last_targets;
        let s = sample(fdir_pid, t0.elapsed().as_secs_f64(), targets)
            .unwrap_or_else(|| panic!("fdir (pid {fdir_pid}) is gone: see {}", dir.join("fdir.stderr").display()));
        writeln!(csv, "{:.1},{},{},{},{}", s.at, s.fds, s.rss_kb, s.threads, s.targets).unwrap();
        samples.push(s);
        if storm.0.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(every);
    }
    let mut storm_out = String::new();
    std::io::Read::read_to_string(&mut storm.0.stdout.take().unwrap(), &mut storm_out).unwrap();
    let storm_stats: Value = serde_json::from_str(storm_out.trim()).unwrap_or(Value::Null);
    // A few more cycles, for the last exits to be seen: waited for by
    // count (at least MIN_CYCLES in all, and three after the storm), with a
    // generous deadline, however slow a loaded machine is.
    let after_storm = analysis.lock().unwrap().cycles + 3;
    let deadline = Instant::now() + Duration::from_secs(120);
    while analysis.lock().unwrap().cycles < after_storm.max(MIN_CYCLES) {
        assert!(
            Instant::now() < deadline,
            "fdir made no progress for 120 s: see {}",
            dir.join("fdir.stderr").display()
        );
        assert!(watch.0.try_wait().unwrap().is_none(), "fdir died: see {}", dir.join("fdir.stderr").display());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        watch.0.try_wait().unwrap().is_none(),
        "fdir died during the soak: see {}",
        dir.join("fdir.stderr").display()
    );

    // SIGTERM: exit 0 after the current check.
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(i32::try_from(fdir_pid).unwrap(), libc::SIGTERM) };
    let status = watch.0.wait().unwrap();
    reader.join().unwrap();
    std::fs::write(dir.join("samples.csv"), &csv).unwrap();
    let a = analysis.lock().unwrap();

    // Bounded: after a warm-up (the first 10% of the samples, at least one),
    // the last quarter's mean within 10% (plus a small slack) of the first
    // quarter's.
    let warm = (samples.len() / 10).max(1);
    let steady = &samples[warm.min(samples.len() - 1)..];
    let fds: Vec<u64> = steady.iter().map(|s| s.fds).collect();
    let rss: Vec<u64> = steady.iter().map(|s| s.rss_kb).collect();
    let (fd0, fd1, fds_ok) = bounded(&fds, 16.0, floor);
    // Medians, not means, for the resident set: a sample taken in a cycle
    // reads the memory of its one-shot work; a leak moves every sample,
    // and so the median.
    let (rss0, rss1, rss_ok) = bounded(&rss, 4096.0, median);
    let min_max = |xs: &[u64]| (xs.iter().min().copied().unwrap_or(0), xs.iter().max().copied().unwrap_or(0));
    let all_fds: Vec<u64> = samples.iter().map(|s| s.fds).collect();
    let all_rss: Vec<u64> = samples.iter().map(|s| s.rss_kb).collect();
    let reused_pids = a.starts.values().filter(|s| s.len() > 1).count();

    let mut summary = String::new();
    writeln!(
        summary,
        "soak: {secs} s of load, fdir pid {fdir_pid}, pid_max {pid_max}, first baseline in {baseline_took:.1?}"
    )
    .unwrap();
    writeln!(
        summary,
        "load: {} processes/s, {} threads/s over {} workers; storm: {storm_stats}",
        load.procs_per_sec, load.threads_per_sec, load.workers
    )
    .unwrap();
    writeln!(
        summary,
        "cycles: {}; targets: last {}, max {}; events: {:?}",
        a.cycles, a.last_targets, a.max_targets, a.events
    )
    .unwrap();
    writeln!(
        summary,
        "baselined on first sight: {}; pids baselined again with a new start time (reuse): {reused_pids}",
        a.first_sight
    )
    .unwrap();
    writeln!(
        summary,
        "samples: {} every {every:?}; fds min {} max {}, steady first quarter's floor {fd0:.0} last quarter's {fd1:.0}; RSS KiB min {} max {}, steady first quarter's median {rss0:.0} last quarter's {rss1:.0}",
        samples.len(),
        min_max(&all_fds).0,
        min_max(&all_fds).1,
        min_max(&all_rss).0,
        min_max(&all_rss).1
    )
    .unwrap();
    writeln!(
        summary,
        "anomalies of the load {}, of other processes {}, transients {}, errors about fdir {}, errors about a target {}, identity mismatches {}; exit {:?}",
        a.anomalies.len(),
        a.foreign.len(),
        a.transients.len(),
        a.own_errors.len(),
        a.target_errors.len(),
        a.mismatches.len(),
        status.code()
    )
    .unwrap();
    for (what, list) in [
        ("anomaly", &a.anomalies),
        ("anomaly of another process", &a.foreign),
        ("transient", &a.transients),
        ("error", &a.own_errors),
        ("target error", &a.target_errors),
        ("mismatch", &a.mismatches),
    ] {
        for l in list.iter().take(10) {
            writeln!(summary, "  {what}: {l}").unwrap();
        }
    }
    std::fs::write(dir.join("summary.txt"), &summary).unwrap();
    println!("{summary}");

    assert_eq!(status.code(), Some(0), "fdir's exit on SIGTERM\n{summary}");
    assert!(a.stopped, "no stopped event\n{summary}");
    assert!(a.cycles >= MIN_CYCLES, "fewer than {MIN_CYCLES} cycles were waited for\n{summary}");
    assert!(a.anomalies.is_empty(), "false anomalies\n{summary}");
    // Other processes' drift is real drift (on a shared machine: someone's
    // program exec'd); FDIR_SOAK_STRICT=1 fails on it too (an idle machine, CI).
    if std::env::var_os("FDIR_SOAK_STRICT").is_some_and(|v| v == "1") {
        assert!(a.foreign.is_empty(), "anomalies of processes outside the load\n{summary}");
    }
    assert!(a.own_errors.is_empty(), "errors about fdir itself\n{summary}");
    assert!(a.mismatches.is_empty(), "a process compared with another's baseline\n{summary}");
    assert!(a.first_sight > 0 && a.events.get("exited").copied().unwrap_or(0) > 0, "the load was not seen\n{summary}");
    assert!(fds_ok, "open files grew\n{summary}");
    assert!(rss_ok, "resident memory grew\n{summary}");
    assert_eq!(storm_stats["spawn_failures"], 0, "{summary}");
}
