//! Observing `seccomp-filters`: which threads have filters (their status),
//! their programs (through the source, which stops each such thread for a
//! moment with ptrace), and the degraded form when programs cannot be read.
//!
//! Thread policy: every thread that has filters is read, one at a time, so
//! each is stopped only for its own read; threads without filters
//! (`Seccomp_filters: 0`, most processes) and zombie threads are never
//! stopped. A filter installed without `TSYNC` lives in one thread only, so
//! reading the main thread alone would miss it; threads that share a chain
//! (TSYNC, or inherited at clone) are one class in the canonical form.
//!
//! A thread traced by someone else (`TracerPid` not 0) is never touched: the
//! subsystem is unobservable for that check, with the tracer named.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::canon::filters::{self as form, Program};
use crate::canon::{Canon, Record, status};
use crate::{Error, Source};

/// How long seccomp-filters reads kept a target's threads stopped in one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stops {
    /// Threads stopped.
    pub threads: u64,
    /// The longest single stop (from the interrupt to the end of the detach).
    #[serde(rename = "longest_us", with = "crate::time::micros")]
    pub longest: Duration,
    /// All stops together.
    #[serde(rename = "total_us", with = "crate::time::micros")]
    pub total: Duration,
}

impl Stops {
    fn add(&mut self, stopped: Duration) {
        self.threads = self.threads.saturating_add(1);
        self.longest = self.longest.max(stopped);
        self.total = self.total.saturating_add(stopped);
    }

    /// Adds another target's stops (the longest is the longest of all).
    pub fn merge(&mut self, other: &Stops) {
        self.threads = self.threads.saturating_add(other.threads);
        self.longest = self.longest.max(other.longest);
        self.total = self.total.saturating_add(other.total);
    }
}

/// What a thread's status says about its filters.
struct ThreadState {
    dead: bool,
    tracer: u32,
    /// `Seccomp_filters`, or `None` on a kernel without that line.
    count: Option<usize>,
    filter_mode: bool,
}

fn number<T: std::str::FromStr>(status_text: &[u8], name: &str) -> Option<T> {
    std::str::from_utf8(status::field(status_text, name)?).ok()?.parse().ok()
}

fn thread_state(text: &[u8]) -> Option<ThreadState> {
    status::field(text, "Name").or_else(|| status::field(text, "Pid"))?;
    let state = status::field(text, "State").and_then(|s| s.first().copied());
    Some(ThreadState {
        dead: matches!(state, Some(b'Z' | b'X')),
        tracer: number(text, "TracerPid").unwrap_or(0),
        count: number(text, "Seccomp_filters"),
        filter_mode: status::field(text, "Seccomp") == Some(b"2"),
    })
}

/// Reads the filters of every thread in `tids` into `canon`; `stops`
/// accumulates how long threads were stopped.
#[inline(never)]
pub(crate) fn observe<S: Source + ?Sized>(
    src: &S,
    tids: &[u32],
    buf: &mut Vec<u8>,
    rel: &mut String,
    canon: &mut Canon,
    stops: &mut Stops,
) -> Result<(), Error> {
    let mut chains: Vec<Vec<Program>> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    let mut degraded: Option<String> = None;
    let mut programs = Vec::new();
    let mut read = 0usize;
    let mut absent: Option<Error> = None;
    for &tid in tids {
        if !super::read_thread_file(src, tid, "status", rel, buf, &mut absent)? {
            continue;
        }
        let st = thread_state(buf).ok_or_else(|| Error::Parse {
            path: src.path_of(rel),
            message: "not a status file (no Name: or Pid: line)".into(),
        })?;
        read += 1;
        if st.dead {
            continue;
        }
        let known = st.count.or((!st.filter_mode).then_some(0));
        if known == Some(0) {
            if !chains.contains(&Vec::new()) {
                chains.push(Vec::new());
            }
            counts.push(0);
            continue;
        }
        if let (Some(_), Some(k)) = (&degraded, known) {
            counts.push(k);
            continue;
        }
        if st.tracer != 0 {
            return Err(Error::Traced { tid, tracer: Some(st.tracer) });
        }
        match src.seccomp_programs(tid, &mut programs) {
            Ok(stopped) => {
                stops.add(stopped);
                let chain: Vec<Program> = programs.iter().map(|p| Program::of(p)).collect();
                counts.push(chain.len());
                if !chains.contains(&chain) {
                    chains.push(chain);
                }
            }
            Err(e @ (Error::NeedsPrivilege { .. } | Error::Unavailable { .. })) => {
                let k = known.ok_or_else(|| Error::Unavailable {
                    what: format!("the seccomp filter count of thread {tid}"),
                    reason: format!("{e}, and its status has no Seccomp_filters line (a kernel older than 5.9)"),
                })?;
                degraded = Some(e.to_string());
                counts.push(k);
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if read == 0 {
        if !src.alive() {
            return Err(super::gone(src));
        }
        return Err(
            absent.unwrap_or_else(|| Error::Parse { path: src.path_of("task"), message: "no threads listed".into() })
        );
    }
    match degraded {
        None => form::canonicalize_programs(&chains, canon),
        Some(reason) => {
            counts.sort_unstable();
            counts.dedup();
            form::canonicalize_counts(&counts, &reason, canon);
        }
    }
    Ok(())
}

/// Makes a check's form comparable with its baseline's when one of them is
/// degraded, so that the comparison is on what both hold (the counts) and
/// never flip-flops between the two forms:
///
/// - a degraded baseline is compared on counts, whatever is readable now
///   (the form now becomes the counts plus the baseline's own `programs`
///   record);
/// - a full baseline checked without the programs: a different count is
///   drift; the same count is *unobservable* (returned as the reason), since
///   the programs could not be compared.
pub(crate) fn reconcile(baseline: &[Record], canon: &mut Canon) -> Option<String> {
    let now = canon.records();
    match (form::is_degraded(baseline), form::is_degraded(&now)) {
        (false, false) => None,
        (true, _) => {
            canon.clear();
            for r in form::project(&now).iter().chain(baseline.iter().filter(|r| r.key == form::PROGRAMS)) {
                canon.push_clean(&r.key, &r.value);
            }
            canon.finish();
            None
        }
        (false, true) => (form::project(baseline) == form::project(&now)).then(|| {
            format!(
                "seccomp filter programs unreadable now ({}); the filter count is unchanged",
                form::degraded_reason(&now).unwrap_or("no reason given")
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Checker, ManualClock, Observation, Procfs, Snapshot, Status, Subsystem, Verdict, snapshot_with};

    const ALLOW: [u8; 8] = [0x06, 0, 0, 0, 0, 0, 0xff, 0x7f];
    const ERRNO: [u8; 8] = [0x06, 0, 0, 0, 1, 0, 0x05, 0x00];

    fn status(filters: usize, tracer: u32, state: &str) -> String {
        let mode = if filters > 0 { 2 } else { 0 };
        format!("Name:\tapp\nState:\t{state}\nTracerPid:\t{tracer}\nSeccomp:\t{mode}\nSeccomp_filters:\t{filters}\n")
    }

    /// Threads: (tid, programs, tracer, state); `denied` makes programs need a privilege.
    fn process(threads: &[(u32, &[&[u8]], u32, &str)], denied: bool) -> Procfs {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for &(tid, programs, tracer, state) in threads {
            files.push((format!("task/{tid}/status"), status(programs.len(), tracer, state).into_bytes()));
            for (i, p) in programs.iter().enumerate() {
                files.push((format!("task/{tid}/seccomp/{i}"), p.to_vec()));
            }
            if denied {
                files.push((format!("task/{tid}/seccomp/denied"), Vec::new()));
            }
        }
        Procfs::mock_files(files)
    }

    fn baseline(fs: &Procfs) -> Snapshot {
        snapshot_with(&ManualClock::new(), fs, &[Subsystem::SeccompFilters]).unwrap()
    }

    fn check(base: &Snapshot, fs: &Procfs) -> Verdict {
        Checker::new().check(base, &ManualClock::new(), fs, &[Subsystem::SeccompFilters]).unwrap()
    }

    fn texts(v: &Verdict) -> Vec<String> {
        v.anomalies().iter().flat_map(|a| a.changes.iter().map(ToString::to_string)).collect()
    }

    fn records(s: &Snapshot) -> Vec<(String, String)> {
        match s.subsystems.get(&Subsystem::SeccompFilters) {
            Some(Observation::Observed { records, .. }) => {
                records.iter().map(|r| (r.key.clone(), crate::canon::filters::short(&r.value))).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn programs_are_read_per_thread_and_a_new_filter_is_named() {
        let one = process(&[(1, &[&ALLOW], 0, "S"), (2, &[&ALLOW], 0, "S")], false);
        let base = baseline(&one);
        let r = records(&base);
        assert_eq!(r.len(), 2, "{r:#?}");
        assert!(r[0].0 == "chain" && r[0].1.starts_with("1 filter, sha256 "), "{r:#?}");
        assert!(r[1].0 == "filter #0" && r[1].1.starts_with("1 instruction, returns allow, sha256 "), "{r:#?}");
        assert!(check(&base, &one).is_ok());
        let two = process(&[(1, &[&ALLOW, &ERRNO], 0, "S"), (2, &[&ALLOW, &ERRNO], 0, "S")], false);
        let t = texts(&check(&base, &two));
        assert_eq!(t.len(), 1, "{t:#?}");
        assert!(t[0].starts_with("new seccomp filter #1 1 instruction, returns errno, sha256 "), "{t:#?}");
        // The same count, another program: the count would never show it.
        let other = process(&[(1, &[&ERRNO], 0, "S"), (2, &[&ERRNO], 0, "S")], false);
        let t = texts(&check(&base, &other));
        assert!(t[0].starts_with("seccomp filter #0 1 instruction, returns allow, sha256 "), "{t:#?}");
        assert!(t[0].contains(" -> 1 instruction, returns errno, sha256 "), "{t:#?}");
    }

    #[test]
    fn a_filter_in_one_thread_alone_is_seen_and_zombies_are_skipped() {
        let base = baseline(&process(&[(1, &[], 0, "S"), (2, &[], 0, "S"), (3, &[&ALLOW], 0, "Z")], false));
        assert_eq!(records(&base), [("chain".to_owned(), "0 filters".to_owned())]);
        let t = texts(&check(&base, &process(&[(1, &[], 0, "S"), (2, &[&ALLOW], 0, "S")], false)));
        assert!(t.iter().all(|t| t.ends_with("(threads differ)")), "{t:#?}");
        assert!(t.iter().any(|t| t.starts_with("new seccomp filter #0 1 instruction")), "{t:#?}");
    }

    #[test]
    fn a_traced_thread_is_never_touched() {
        let base = baseline(&process(&[(1, &[&ALLOW], 0, "S")], false));
        let v = check(&base, &process(&[(1, &[&ALLOW], 4242, "S")], false));
        assert!(v.is_ok());
        assert_eq!(
            v.report().subsystems[&Subsystem::SeccompFilters],
            Status::Unobservable { reason: "thread 1 is already traced by pid 4242".into() }
        );
        // A traced thread without filters needs no ptrace: observed as usual.
        let base = baseline(&process(&[(1, &[], 0, "S")], false));
        assert!(check(&base, &process(&[(1, &[], 99, "t")], false)).report().unobservable().next().is_none());
    }

    #[test]
    fn without_the_privilege_it_degrades_to_the_count_and_never_flip_flops() {
        let full = process(&[(1, &[&ALLOW], 0, "S")], false);
        let degraded = process(&[(1, &[&ALLOW], 0, "S")], true);
        let more = process(&[(1, &[&ALLOW, &ALLOW], 0, "S")], true);
        let d = baseline(&degraded);
        assert_eq!(
            records(&d),
            [
                ("chain".to_owned(), "1 filter".to_owned()),
                ("programs".to_owned(), "unreadable: reading seccomp filter programs needs CAP_SYS_ADMIN".to_owned())
            ]
        );
        let f = baseline(&full);
        for _ in 0..3 {
            // A degraded baseline is compared on counts, readable or not now.
            assert!(check(&d, &full).is_ok());
            assert!(check(&d, &degraded).is_ok());
            // A full baseline without the programs now: unobservable, not drift.
            let v = check(&f, &degraded);
            assert!(v.is_ok());
            let reason = v.report().unobservable().next().map(|(_, r)| r.to_owned()).unwrap();
            assert!(reason.contains("needs CAP_SYS_ADMIN") && reason.contains("count is unchanged"), "{reason}");
            assert!(check(&f, &full).is_ok());
        }
        // But a count that differs is drift, either way.
        let t = texts(&check(&f, &more));
        assert_eq!(
            t,
            ["seccomp filter count 1 -> 2 (programs unreadable: reading seccomp filter programs needs CAP_SYS_ADMIN)"]
        );
        let t = texts(&check(&d, &process(&[(1, &[&ALLOW, &ALLOW], 0, "S")], false)));
        assert_eq!(t.len(), 1, "{t:#?}");
        assert!(t[0].starts_with("seccomp filter count 1 -> 2"), "{t:#?}");
    }
}
