//! The vote of every baseline's copies, as a whole-node watch makes it each
//! cycle, on cold caches (a watch wakes once a second, after the node has
//! run): every process's default-subsystem baseline held as
//! [`fdir::guard::Redundant`] (the first copy and two images), voted; and
//! beside it, the same baselines held as three structures compared with
//! `==`, as the vote was made before images (BENCHMARKS.md, "the vote").
//! Run it on the node to measure: `scripts/idle-node.sh start` first.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fdir::guard::Redundant;
use fdir::{Procfs, Snapshot, Subsystem, SystemClock, list_processes, snapshot_with};

/// Writes 64 MiB, so that what the vote reads next comes from memory.
fn evict(junk: &mut [u8]) {
    for (i, b) in junk.iter_mut().enumerate().step_by(64) {
        *b = b.wrapping_add(u8::try_from(i & 0xff).unwrap());
    }
    black_box(&junk);
}

fn bench(c: &mut Criterion) {
    let me = std::process::id();
    let baselines: Vec<Snapshot> = list_processes(Path::new("/proc"))
        .unwrap()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(|pid| Procfs::try_pid(pid).ok())
        .filter_map(|fs| snapshot_with(&SystemClock, &fs, Subsystem::DEFAULT_PROCESS).ok())
        .collect();
    eprintln!("{} baselines (default subsystems)", baselines.len());
    let mut held: Vec<Redundant<Snapshot>> = baselines.iter().cloned().map(|s| Redundant::new(s).unwrap()).collect();
    let three: Vec<[Snapshot; 3]> = baselines.iter().map(|s| [s.clone(), s.clone(), s.clone()]).collect();
    let mut junk = vec![0u8; 64 << 20];
    let mut g = c.benchmark_group("vote");
    g.sample_size(30);
    g.bench_function("images/cold", |b| {
        b.iter_batched(
            || evict(&mut junk),
            |()| held.iter_mut().map(|r| r.vote().repairs()).sum::<usize>(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("structures/cold", |b| {
        b.iter_batched(
            || evict(&mut junk),
            |()| three.iter().filter(|[a, b, c]| a == b && b == c).count(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
