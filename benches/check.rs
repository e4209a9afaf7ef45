//! A full check of one process next to its floor — reading the same files
//! through kept-open descriptors with one `pread` each and hashing them — in
//! the same run, and a whole-node cycle.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::hint::black_box;
use std::os::unix::fs::FileExt;

use common::idle;
use criterion::{Criterion, criterion_group, criterion_main};
use fdir::{Checker, Coverage, Digest, Monitor, Procfs, Subsystem, SystemClock, snapshot_with};

fn bench(c: &mut Criterion) {
    let child = idle();
    let pid = child.0.id();
    let fs = Procfs::try_pid(pid).unwrap();
    let mut g = c.benchmark_group("one-process");
    for (name, subs) in [("seed", Subsystem::SEED), ("default", Subsystem::DEFAULT_PROCESS)] {
        let baseline = snapshot_with(&SystemClock, &fs, subs).unwrap();
        let mut checker = Checker::new();
        g.bench_function(format!("check/{name}"), |b| {
            b.iter(|| black_box(checker.check(&baseline, &SystemClock, &fs, subs).unwrap()))
        });
    }
    // The floor of the seed check: the files it reads (a single-threaded
    // process: task/PID/status and task/PID/cgroup), kept open, one pread each.
    let files: Vec<std::fs::File> = ["maps", &format!("task/{pid}/status"), &format!("task/{pid}/cgroup")]
        .iter()
        .map(|f| std::fs::File::open(format!("/proc/{pid}/{f}")).unwrap())
        .collect();
    let mut buf = vec![0u8; 1 << 20];
    // Whole files: one pread of a /proc seq file returns about a page.
    g.bench_function("floor/seed", |b| {
        b.iter(|| {
            for f in &files {
                let mut len = 0;
                loop {
                    let n = f.read_at(&mut buf[len..], len as u64).unwrap();
                    if n == 0 {
                        break;
                    }
                    len += n;
                }
                black_box(Digest::of(&buf[..len]));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("node");
    g.sample_size(10);
    let (mut monitor, _) = Monitor::baseline(Coverage::All, Subsystem::SEED, 2, &SystemClock).unwrap();
    g.bench_function(format!("cycle/all-{}-processes/seed", monitor.len()), |b| {
        b.iter(|| black_box(monitor.cycle(&SystemClock)))
    });
    g.finish();
    drop(child);
}

criterion_group!(benches, bench);
criterion_main!(benches);
