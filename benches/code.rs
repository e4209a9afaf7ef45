//! The `code` subsystem's throughput: a check that verifies all the code of
//! an idle `fdir` process, next to its floor — the same mappings read through
//! `/proc/PID/mem` in 256 KiB windows and hashed in 64 KiB chunks, nothing
//! else — and a budgeted check (4 MiB). Criterion reports bytes per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::hint::black_box;
use std::os::unix::fs::FileExt;

use common::idle;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fdir::{Checker, CodeBudget, Digest, Procfs, Subsystem, SystemClock, snapshot_with};

/// The code mappings of `pid`: (start, end), as the code subsystem picks them.
fn code_ranges(pid: u32) -> Vec<(u64, u64)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut out = Vec::new();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 5 && f[1].ends_with("xp") && !f[5].starts_with('[') {
            let (a, b) = f[0].split_once('-').unwrap();
            out.push((u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap()));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let child = idle();
    let pid = child.0.id();
    let fs = Procfs::try_pid(pid).unwrap();
    let code = [Subsystem::Code];
    let baseline = snapshot_with(&SystemClock, &fs, &code).unwrap();
    let ranges = code_ranges(pid);
    let total: u64 = ranges.iter().map(|(a, b)| b - a).sum();

    let mut g = c.benchmark_group("code");
    g.throughput(Throughput::Bytes(total));
    let mut all = Checker::with_code_budget(CodeBudget::UNLIMITED);
    g.bench_function("check/unlimited", |b| {
        b.iter(|| black_box(all.check(&baseline, &SystemClock, &fs, &code).unwrap()))
    });
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut win = vec![0u8; 256 << 10];
    g.bench_function("floor/pread+sha256", |b| {
        b.iter(|| {
            for &(start, end) in &ranges {
                let mut at = start;
                while at < end {
                    let n = usize::try_from(end - at).unwrap().min(win.len());
                    let got = mem.read_at(&mut win[..n], at).unwrap();
                    for chunk in win[..got].chunks(64 << 10) {
                        black_box(Digest::of(chunk));
                    }
                    at += n as u64;
                }
            }
        })
    });
    g.throughput(Throughput::Bytes(4 << 20));
    let mut budgeted = Checker::with_code_budget(CodeBudget::DEFAULT);
    g.bench_function("check/4MiB", |b| {
        b.iter(|| black_box(budgeted.check(&baseline, &SystemClock, &fs, &code).unwrap()))
    });
    g.finish();
    drop(child);
}

criterion_group!(benches, bench);
criterion_main!(benches);
