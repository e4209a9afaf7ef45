//! The eBPF trigger source's cost (docs/ebpf.md records a run):
//!
//! 1. the system call overhead the programs add: an `mprotect` loop
//!    (half the calls with `PROT_EXEC`, the JIT's pattern) and a `getppid`
//!    loop (a call the programs let through at once), each without and with
//!    the programs attached (rate limit on, and off), interleaved rounds,
//!    median ns per call;
//! 2. a JIT workload: `node -e` creating functions in a hot loop for a few
//!    seconds, without and with the programs, its throughput; with them, the
//!    records per second from node and the CPU of the thread that drains
//!    them (the watch side).
//!
//! `cargo bench --bench ebpf` (root; prints a skip otherwise).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fdir::trigger::ebpf::{DEFAULT_RING_BYTES, Ebpf, RATE_LIMIT_NS};

/// What a drainer saw: records of the watched pid, all records, its CPU
/// time, records lost.
type Drained = (u64, u64, Duration, u64);

/// A thread draining `e` until stopped: (records by pid filter, all records,
/// its CPU time).
struct Drainer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Drained>,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    Duration::from_nanos(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

impl Drainer {
    fn start(mut e: Ebpf, pid: Arc<std::sync::atomic::AtomicU32>) -> Drainer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let cpu0 = thread_cpu();
            let (mut mine, mut all) = (0u64, 0u64);
            let mut recs = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd { fd: e.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&raw mut pfd, 1, 100) };
                recs.clear();
                all += e.drain_records(&mut recs) as u64;
                let p = pid.load(Ordering::Relaxed);
                mine += recs.iter().filter(|r| r.tgid == p).count() as u64;
            }
            (mine, all, thread_cpu() - cpu0, e.lost())
        });
        Drainer { stop, handle }
    }
    fn stop(self) -> Drained {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn mprotect_loop(n: usize) -> f64 {
    // SAFETY: our own anonymous page, its protection flipped.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        let t = Instant::now();
        for i in 0..n {
            libc::mprotect(p, 4096, if i % 2 == 0 { libc::PROT_READ | libc::PROT_EXEC } else { libc::PROT_READ });
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        libc::munmap(p, 4096);
        ns
    }
}

fn getppid_loop(n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: no arguments. The raw call: glibc does not cache getppid.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn syscall_overhead() {
    let n = 200_000;
    let rounds = 9;
    let pid = Arc::new(std::sync::atomic::AtomicU32::new(std::process::id()));
    let mut rows: Vec<(&str, Vec<f64>, Vec<f64>)> =
        vec![("none", vec![], vec![]), ("rate limit on", vec![], vec![]), ("rate limit off", vec![], vec![])];
    let mut records = [0u64; 3];
    for _ in 0..rounds {
        for (i, row) in rows.iter_mut().enumerate() {
            let drainer = match i {
                0 => None,
                1 => Some(Drainer::start(Ebpf::open(DEFAULT_RING_BYTES).unwrap(), pid.clone())),
                _ => Some(Drainer::start(Ebpf::open_with(DEFAULT_RING_BYTES, 0).unwrap(), pid.clone())),
            };
            row.1.push(mprotect_loop(n));
            row.2.push(getppid_loop(n));
            if let Some(d) = drainer {
                records[i] += d.stop().0;
            }
        }
    }
    println!("system call overhead ({rounds} interleaved rounds of {n} calls, median ns per call)");
    println!("{:<16} {:>22} {:>10} {:>16}", "programs", "mprotect (½ PROT_EXEC)", "getppid", "records/round");
    for (i, (name, m, g)) in rows.into_iter().enumerate() {
        println!("{name:<16} {:>22.0} {:>10.0} {:>16}", median(m), median(g), records[i] / rounds as u64);
    }
}

const NODE_JIT: &str = "let n=0; const end=Date.now()+Number(process.argv[1]); \
     while(Date.now()<end){ const f=new Function('a','return a*'+(n%100000)+'+'+n); f(n); n++; } \
     console.log(n)";

fn node_jit(seconds: u64, programs: Option<u64>) -> Option<(u64, Option<Drained>)> {
    let pid = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let drainer = programs.map(|rate| Drainer::start(Ebpf::open_with(DEFAULT_RING_BYTES, rate).unwrap(), pid.clone()));
    let child = Command::new("node")
        .args(["-e", NODE_JIT, &(seconds * 1000).to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    pid.store(child.id(), Ordering::Relaxed);
    let out = child.wait_with_output().ok()?;
    let iterations = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((iterations, drainer.map(Drainer::stop)))
}

fn jit_workload() {
    let seconds = 5;
    println!();
    println!("node JIT workload: `node -e` creating functions for {seconds} s (new Function per iteration)");
    println!(
        "{:<16} {:>14} {:>12} {:>12} {:>16} {:>8}",
        "programs", "iterations/s", "records/s", "all rec/s", "drain CPU %core", "lost"
    );
    for round in 0..2 {
        for (name, programs) in [("none", None), ("rate limit on", Some(RATE_LIMIT_NS)), ("rate limit off", Some(0))] {
            let Some((it, d)) = node_jit(seconds, programs) else {
                println!("node is not installed: skipped");
                return;
            };
            let s = seconds as f64;
            match d {
                None => println!("{name:<16} {:>14.0} {:>12} {:>12} {:>16} {:>8}", it as f64 / s, "-", "-", "-", "-"),
                Some((mine, all, cpu, lost)) => println!(
                    "{name:<16} {:>14.0} {:>12.0} {:>12.0} {:>16.3} {:>8}",
                    it as f64 / s,
                    mine as f64 / s,
                    all as f64 / s,
                    cpu.as_secs_f64() / s * 100.0,
                    lost
                ),
            }
        }
        let _ = round;
    }
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root (the programs need CAP_BPF and CAP_PERFMON)");
        return;
    }
    if let Err(e) = Ebpf::open(DEFAULT_RING_BYTES) {
        println!("skipped: {e}");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    syscall_overhead();
    jit_workload();
}
