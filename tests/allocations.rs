//! A steady-state check allocates (almost) nothing: counted with a global
//! allocator that counts, around a checker that has warmed up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use fdir::event::EventRecord;
use fdir::{Checker, Coverage, Monitor, Procfs, Subsystem, SystemClock, Tracker, snapshot_with};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a
// counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per confirmed check cycle of one unchanged process, after a warm-up.
fn per_cycle(subsystems: &[Subsystem]) -> f64 {
    let t = common::Testee::spawn();
    let fs = Procfs::try_pid(t.pid).unwrap();
    let baseline = snapshot_with(&SystemClock, &fs, subsystems).unwrap();
    let mut checker = Checker::new();
    let mut tracker = Tracker::new(2);
    for _ in 0..50 {
        assert!(tracker.cycle(&mut checker, &baseline, &SystemClock, &fs, subsystems).unwrap().declared.is_empty());
    }
    let n = 200u32;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        let o = tracker.cycle(&mut checker, &baseline, &SystemClock, &fs, subsystems).unwrap();
        assert!(o.declared.is_empty() && o.transient.is_empty());
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / f64::from(n)
}

/// Allocations per monitor cycle (vote, self-checks, check) of one process,
/// with its `check` event written as a watch writes it (one line buffer).
fn per_monitor_cycle(subsystems: &[Subsystem]) -> f64 {
    let t = common::Testee::spawn();
    let (mut monitor, _) =
        Monitor::baseline(Coverage::Pids { pids: vec![t.pid] }, subsystems, 2, &SystemClock).unwrap();
    let mut line = Vec::new();
    let cycle = |monitor: &mut Monitor, line: &mut Vec<u8>| {
        let (findings, summary) = monitor.cycle(&SystemClock);
        line.clear();
        EventRecord::check(SystemTime::now(), 1, &summary).write_json(line);
        std::hint::black_box(&line);
        findings
    };
    for _ in 0..50 {
        cycle(&mut monitor, &mut line);
    }
    let n = 200u32;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..n {
        assert!(cycle(&mut monitor, &mut line).is_empty());
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / f64::from(n)
}

#[test]
fn a_steady_state_cycle_of_the_seed_subsystems_allocates_nothing() {
    let cycle = per_cycle(Subsystem::SEED);
    let monitor = per_monitor_cycle(Subsystem::SEED);
    let default = per_cycle(Subsystem::DEFAULT_PROCESS);
    let monitor_default = per_monitor_cycle(Subsystem::DEFAULT_PROCESS);
    eprintln!(
        "allocations per steady-state cycle: seed {cycle}, monitor (seed) {monitor}, default set {default}, \
         monitor (default set) {monitor_default}"
    );
    assert_eq!(cycle, 0.0, "a check cycle of an unchanged process allocates");
    assert_eq!(monitor, 0.0, "a monitor cycle of an unchanged process allocates");
}
