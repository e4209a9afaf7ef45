//! Each canonicalizer on captured /proc text (and on synthetic maps of 1000
//! and 5000 mappings, for the scaling curve).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fdir::Subsystem;
use fdir::canon::{Canon, cgroup, maps, status};

fn captured(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/proc/python3-threads/a").join(name)).unwrap()
}

/// A maps text of `n` mappings: a code file's segments, libraries, and
/// anonymous regions, as a large process has them.
fn synthetic_maps(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        let base = 0x7f00_0000_0000u64 + (i as u64) * 0x10000;
        let (perms, path) = match i % 5 {
            0 => ("r--p", format!("/usr/lib/x86_64-linux-gnu/lib{}.so", i / 5)),
            1 => ("r-xp", format!("/usr/lib/x86_64-linux-gnu/lib{}.so", i / 5)),
            2 => ("rw-p", format!("/usr/lib/x86_64-linux-gnu/lib{}.so", i / 5)),
            3 => ("rw-p", String::new()),
            _ => ("---p", String::new()),
        };
        let inode = if path.is_empty() { 0 } else { 1000 + i / 5 };
        s.push_str(&format!("{base:x}-{:x} {perms} {:08x} fe:01 {inode} {path}\n", base + 0x1000, (i % 5) * 0x1000));
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut canon = Canon::new();
    let mut g = c.benchmark_group("canon");
    let inputs = [
        ("maps/captured-118", captured("maps")),
        ("maps/synthetic-30", synthetic_maps(30)),
        ("maps/synthetic-1000", synthetic_maps(1000)),
        ("maps/synthetic-5000", synthetic_maps(5000)),
    ];
    for (name, text) in &inputs {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                maps::canonicalize(black_box(text), &mut canon).unwrap();
                black_box(canon.digest(Subsystem::MemoryMaps))
            })
        });
    }
    let st = captured("status");
    g.throughput(Throughput::Bytes(st.len() as u64));
    for (name, fields, sub) in [
        ("status/seccomp", status::SECCOMP_FIELDS, Subsystem::Seccomp),
        ("status/credentials", status::CREDENTIAL_FIELDS, Subsystem::Credentials),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                canon.clear();
                status::canonicalize_thread(black_box(&st), fields, &mut canon).unwrap();
                black_box(canon.digest(sub))
            })
        });
    }
    let cg = captured("cgroup");
    g.throughput(Throughput::Bytes(cg.len() as u64));
    g.bench_function("cgroup", |b| {
        b.iter(|| {
            canon.clear();
            cgroup::canonicalize_thread(black_box(&cg), &mut canon).unwrap();
            black_box(canon.digest(Subsystem::Cgroups))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
