//! The integration tests, in one test binary (`cargo test --test it`): each
//! former `tests/*.rs` binary is a module here, all sharing `tests/common`.
//! Run one file's tests with a filter on its module path, e.g.
//! `cargo test --test it live::` or `cargo test --test it -- cli:: --nocapture`.
//!
//! The tests of all modules run on threads of this one process: a test must
//! not change the process's own state (environment, working directory, umask,
//! signal dispositions, limits) — it changes a child's. Tests that watch every
//! process of the machine (`--all`) hold `common::serial()`, one at a time.
//!
//! Two test files stay binaries of their own, for a reason that covers the
//! whole process: `tests/allocations.rs` installs a counting global
//! allocator, which would count every other test's allocations; and
//! `tests/soak.rs` judges fdir's open files and resident memory over 60 s of
//! `watch --all`, which grow with every other test's processes running
//! beside it in the same run (measured in one binary: RSS 40 -> 61 MiB and
//! 130 targets at most; alone: 18.4 -> 19.0 MiB, 37 targets).
//!
//! To add a test file: put it here as `tests/it/NAME.rs` (`git mv` an existing
//! `tests/NAME.rs`), drop its `#![allow(...)]` header, replace `mod common;`
//! with `use crate::common;`, and add `mod NAME;` below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../common/mod.rs"]
mod common;

mod boundary;
mod captured;
mod cgvalues;
mod cli;
mod code_pages;
mod corrupt_baselines;
mod crash_safety;
mod cycle_layout;
mod daemon;
mod dist;
mod ebpf;
mod exec;
mod filters_and_code;
mod fuzz_regressions;
mod live;
mod messages;
mod objects;
mod package;
mod prometheus_e2e;
mod prometheus_rules;
mod properties;
mod responses;
mod roots;
mod subsystems;
mod tasks;
mod triggers;
mod trust;
mod unprivileged;
mod workload;
mod workloads;
