//! One anomaly per root cause: a cycle's findings, as the monitor's
//! trackers declared them one process at a time, turned into findings about
//! what changed.
//!
//! - **A shared object that drifted** is one [`Finding::ObjectDrift`]
//!   naming the object and every process it affects:
//!   - a cgroup's limit files (`cgroup-limits`): a process's anomaly whose
//!     every change is a file of a cgroup it was and still is in (`cgroup
//!     pids:/app pids.max`) is split by cgroup, one object per cgroup
//!     (`cgroup pids:/app`);
//!   - a mount table (`mounts`): a process's anomaly, when the process is
//!     still in the mount namespace the table belongs to, is the drift of
//!     `mount namespace INODE`.
//!
//!   Processes join one object's drift when the same object shows the same
//!   changes (and, for a mount table, the same digests before and after). The
//!   processes of a node are checked in parts spread over the interval, so a
//!   drift seen by the first process is held until every process has been
//!   checked once more (`parts` parts, this one included): every process
//!   that shares the object has seen it by then, and the object is reported
//!   once, with all of them. With one part (a one-shot check, a small watch)
//!   nothing waits.
//!
//!   The object's anomaly carries the changes about the object and the
//!   digests of the first process's subsystem (the process the event's `pid`
//!   names). It recovers once: a [`Finding::ObjectRecovered`] when the last
//!   of its processes still drifted recovers (those that exited meanwhile
//!   are left out); the processes' own recoveries of that subsystem are not
//!   reported on their own.
//!
//!   - a seccomp filter chain (`seccomp-filters`): a process's anomaly whose
//!     every change is a program that changed where it stands in a chain
//!     (none added or removed, which a process does itself) is the drift of
//!     the chain the processes inherited, `seccomp filter chain
//!     sha256:HEX` (the digest of the baseline's form), when the same
//!     digests before and after are seen.
//!
//! - **A process that moved** to another object is one anomaly of that
//!   process: a `cgroups` anomaly (a move) takes the process's
//!   `cgroup-limits` changes, which compare the cgroup left with the cgroup
//!   entered (`explain.rs`), and a `namespaces` anomaly that names the mount
//!   namespace takes the `mounts` changes. The seed's grading counts it once:
//!   a move to a cgroup with the same limits is one anomaly, graded `log`.
//!   The recovery of the subsystem folded in is not reported on its own (the
//!   move's recovery says it).
//!
//! Everything else passes through unchanged, in order; the objects' findings
//! come after the rest of the part's.
//!
//! Pure: no I/O. The identity of a process's mount namespace is asked of the
//! caller.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::canon::cgroup_limits::split_key;
use crate::explain::{Change, ChangeKind};
use crate::finding::Finding;
use crate::{Anomaly, Subsystem, Target};

/// The item of a `seccomp-filters` change about one program of a chain
/// (`seccomp filter #0`).
const FILTER_ITEM: &str = "seccomp filter #";

/// What [`Roots`] folds into the anomaly of a process's move: the subsystem
/// that says the process moved, and the subsystem whose changes follow.
const MOVES: &[(Subsystem, Subsystem, &str)] = &[
    (Subsystem::Cgroups, Subsystem::CgroupLimits, "cgroup"),
    (Subsystem::Namespaces, Subsystem::Mounts, "namespace mnt"),
];

/// The drift of one shared object, gathered from its processes, then
/// declared.
#[derive(Debug)]
struct Group {
    /// What tells two processes' drifts of the object apart: the subsystem,
    /// the object, the changes (and digests, for a mount table).
    signature: (Subsystem, String, Vec<String>),
    /// The first process's anomaly, its changes those about the object.
    anomaly: Anomaly,
    /// Every process it affects, in the order they were seen.
    targets: Vec<Target>,
    /// The pids of those still drifted.
    drifted: BTreeSet<u32>,
    /// Parts left before it is declared (0: declared).
    parts_left: u32,
    /// The longest a process of it was drifted, from their recoveries.
    drifted_for: Duration,
    /// Whether a process of it recovered (not only exited).
    recovered: bool,
}

/// The root-cause state of a monitor: object drifts being gathered or
/// declared and not yet recovered, and the subsystems folded into moves.
#[derive(Debug, Default)]
pub(crate) struct Roots {
    groups: Vec<Group>,
    /// (pid, subsystem) folded into a move of that process: its recovery is
    /// not reported on its own.
    folded: BTreeSet<(u32, Subsystem)>,
}

impl Roots {
    /// Whether there is nothing gathered, declared or folded (a steady
    /// cycle's test: no work to do).
    pub(crate) fn is_idle(&self) -> bool {
        self.groups.is_empty() && self.folded.is_empty()
    }

    /// The findings of one part of a round of `parts`, by root cause.
    /// `mount_namespace` names the mount namespace a process is in now
    /// (`4026531841`), where it can be told.
    pub(crate) fn group(
        &mut self,
        findings: Vec<Finding>,
        parts: u32,
        mount_namespace: &mut dyn FnMut(&Target) -> Option<String>,
    ) -> Vec<Finding> {
        let mut out = Vec::with_capacity(findings.len());
        for f in findings {
            match f {
                Finding::Drift { target, anomalies } => {
                    // A new drift of a subsystem supersedes what the process
                    // was drifted in before: it leaves those objects.
                    let pid = target.pid().unwrap_or(0);
                    for a in &anomalies {
                        self.leave(pid, a.subsystem, &mut out);
                    }
                    let mut own = Vec::with_capacity(anomalies.len());
                    for a in self.fold_moves(&target, anomalies) {
                        match objects_of(&target, &a, mount_namespace) {
                            Some(objects) => {
                                for (object, anomaly, changes) in objects {
                                    self.add(&target, object, anomaly, changes, parts);
                                }
                            }
                            None => own.push(a),
                        }
                    }
                    if !own.is_empty() {
                        out.push(Finding::Drift { target, anomalies: own });
                    }
                }
                Finding::Recovered { target, subsystem, drifted_for } => {
                    let pid = target.pid().unwrap_or(0);
                    if self.folded.remove(&(pid, subsystem)) {
                        continue;
                    }
                    if !self.recover(pid, subsystem, drifted_for, &mut out) {
                        out.push(Finding::Recovered { target, subsystem, drifted_for });
                    }
                }
                Finding::Exited { target } => {
                    self.gone(target.pid().unwrap_or(0), &mut out);
                    out.push(Finding::Exited { target });
                }
                Finding::Reused { baseline, now } => {
                    self.gone(baseline.pid().unwrap_or(0), &mut out);
                    out.push(Finding::Reused { baseline, now });
                }
                other => out.push(other),
            }
        }
        self.declare_due(&mut out);
        out
    }

    /// A process's anomalies with those that follow from a move folded into
    /// the move's.
    fn fold_moves(&mut self, target: &Target, mut anomalies: Vec<Anomaly>) -> Vec<Anomaly> {
        for &(mover, follower, item) in MOVES {
            let moved = anomalies.iter().position(|a| a.subsystem == mover && a.changes.iter().any(|c| c.item == item));
            let follows = anomalies.iter().position(|a| a.subsystem == follower);
            if let (Some(m), Some(f)) = (moved, follows) {
                let follows = anomalies.remove(f);
                let m = if f < m { m - 1 } else { m };
                if let Some(a) = anomalies.get_mut(m) {
                    a.changes.extend(follows.changes);
                }
                self.folded.insert((target.pid().unwrap_or(0), follower));
            }
        }
        anomalies
    }

    /// `target`'s drift of `object` joins the group with the same changes
    /// not yet declared, or starts one.
    fn add(&mut self, target: &Target, object: String, anomaly: Anomaly, changes: Vec<String>, parts: u32) {
        let signature = (anomaly.subsystem, object, changes);
        let pid = target.pid().unwrap_or(0);
        if let Some(g) = self.groups.iter_mut().find(|g| g.parts_left > 0 && g.signature == signature) {
            if !g.targets.contains(target) {
                g.targets.push(target.clone());
            }
            g.drifted.insert(pid);
            return;
        }
        self.groups.push(Group {
            signature,
            anomaly,
            targets: vec![target.clone()],
            drifted: BTreeSet::from([pid]),
            parts_left: parts.max(1),
            drifted_for: Duration::ZERO,
            recovered: false,
        });
    }

    /// A process's recovery of `subsystem`, taken by the groups it is in;
    /// whether any was.
    fn recover(&mut self, pid: u32, subsystem: Subsystem, drifted_for: Duration, out: &mut Vec<Finding>) -> bool {
        let mut taken = false;
        for g in self.groups.iter_mut().filter(|g| g.signature.0 == subsystem) {
            if g.drifted.remove(&pid) {
                taken = true;
                g.recovered = true;
                g.drifted_for = g.drifted_for.max(drifted_for);
            }
        }
        self.finish(out);
        taken
    }

    /// A process drifted anew in `subsystem` (another change, a move): no
    /// longer waited for by the groups of that subsystem it is in.
    fn leave(&mut self, pid: u32, subsystem: Subsystem, out: &mut Vec<Finding>) {
        let mut left = false;
        for g in self.groups.iter_mut().filter(|g| g.signature.0 == subsystem) {
            left |= g.drifted.remove(&pid);
        }
        if left {
            self.finish(out);
        }
    }

    /// A process gone: no longer waited for by the groups it is in.
    fn gone(&mut self, pid: u32, out: &mut Vec<Finding>) {
        for g in &mut self.groups {
            g.drifted.remove(&pid);
        }
        self.folded.retain(|(p, _)| *p != pid);
        self.finish(out);
    }

    /// The declared groups none of whose processes is drifted any more:
    /// recovered (if one of them recovered), and forgotten.
    fn finish(&mut self, out: &mut Vec<Finding>) {
        self.groups.retain(|g| {
            if g.parts_left > 0 || !g.drifted.is_empty() {
                return true;
            }
            if g.recovered {
                out.push(recovered(g));
            }
            false
        });
    }

    /// The groups whose processes have all been checked since the first saw
    /// the drift: declared.
    fn declare_due(&mut self, out: &mut Vec<Finding>) {
        for g in &mut self.groups {
            if g.parts_left == 0 {
                continue;
            }
            g.parts_left -= 1;
            if g.parts_left == 0 {
                out.push(Finding::ObjectDrift {
                    object: g.signature.1.clone(),
                    targets: g.targets.clone(),
                    anomaly: g.anomaly.clone(),
                });
            }
        }
        self.finish(out);
    }
}

fn recovered(g: &Group) -> Finding {
    Finding::ObjectRecovered {
        object: g.signature.1.clone(),
        targets: g.targets.clone(),
        subsystem: g.signature.0,
        drifted_for: g.drifted_for,
    }
}

/// The shared objects an anomaly is the drift of, each with its part of
/// the anomaly and the texts of its changes; `None` when the anomaly is the
/// process's own (another subsystem, a move, a mount namespace that cannot
/// be told).
fn objects_of(
    target: &Target,
    a: &Anomaly,
    mount_namespace: &mut dyn FnMut(&Target) -> Option<String>,
) -> Option<Vec<(String, Anomaly, Vec<String>)>> {
    let part =
        |changes: Vec<Change>| Anomaly { subsystem: a.subsystem, expected: a.expected, actual: a.actual, changes };
    match a.subsystem {
        Subsystem::CgroupLimits if !a.changes.is_empty() => {
            let mut by_cgroup: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
            for c in &a.changes {
                by_cgroup.entry(cgroup_of(c)?).or_default().push(c.clone());
            }
            Some(
                by_cgroup
                    .into_iter()
                    .map(|(cgroup, changes)| {
                        let texts = changes.iter().map(Change::to_string).collect();
                        (format!("cgroup {cgroup}"), part(changes), texts)
                    })
                    .collect(),
            )
        }
        Subsystem::Mounts => {
            let ns = mount_namespace(target)?;
            let mut texts = vec![a.expected.to_string(), a.actual.to_string()];
            texts.extend(a.changes.iter().map(Change::to_string));
            Some(vec![(crate::graph::namespace("mnt", &ns), part(a.changes.clone()), texts)])
        }
        // A program of a filter chain whose bytes changed where it stands (no
        // filter added or removed: a process cannot change an installed
        // filter, so that is the kernel's shared copy of a chain inherited
        // across fork): the drift of that chain, for every process that
        // holds it. Named by the digest of the baseline's form (its chains).
        Subsystem::SeccompFilters
            if !a.changes.is_empty()
                && a.changes.iter().all(|c| c.kind == ChangeKind::Changed && c.item.starts_with(FILTER_ITEM)) =>
        {
            let mut texts = vec![a.expected.to_string(), a.actual.to_string()];
            texts.extend(a.changes.iter().map(Change::to_string));
            Some(vec![(crate::graph::filter_chain(&a.expected), part(a.changes.clone()), texts)])
        }
        // A code chunk read from the page cache's shared copy of a file: the
        // drift of that file's copy, for every process that maps it.
        Subsystem::Code if !a.changes.is_empty() => {
            let mut by_file: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
            for c in &a.changes {
                by_file.entry(code_file_of(c)?).or_default().push(c.clone());
            }
            Some(
                by_file
                    .into_iter()
                    .map(|(file, changes)| {
                        let texts = changes.iter().map(Change::to_string).collect();
                        (file.to_owned(), part(changes), texts)
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The code file (`code file /usr/lib/libc.so.6 dev fe:01 inode 12`) whose
/// page-cache copy a `code` change was read from; `None` for a change read
/// from a process's own pages, or with no origin.
fn code_file_of(c: &Change) -> Option<&str> {
    let note = c.note.as_deref()?;
    let (_, rest) = note.split_once("in the page cache: the shared copy of ")?;
    rest.strip_suffix(", for every process that maps it")
}

/// The cgroup (`pids:/app`) a `cgroup-limits` change is about, when it is a
/// change of a file of a cgroup the process was and still is in (`cgroup
/// pids:/app pids.max`); `None` for a cgroup entered or left whole and for
/// the comparisons of a move.
fn cgroup_of(c: &Change) -> Option<&str> {
    let key = c.item.strip_prefix("cgroup ")?;
    let (cgroup, _file) = split_key(key)?;
    (cgroup.contains(":/") && !cgroup.contains(" -> ")).then_some(cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeKind, Digest};

    fn proc(pid: u32) -> Target {
        Target::Process { pid, start_time: u64::from(pid) * 10, name: "sleep".into() }
    }

    fn change(item: &str, before: &str, after: &str) -> Change {
        Change {
            kind: ChangeKind::Changed,
            item: item.into(),
            before: Some(before.into()),
            after: Some(after.into()),
            note: None,
        }
    }

    fn anomaly(subsystem: Subsystem, changes: Vec<Change>) -> Anomaly {
        Anomaly { subsystem, expected: Digest::of(b"before"), actual: Digest::of(b"after"), changes }
    }

    fn raised() -> Anomaly {
        anomaly(Subsystem::CgroupLimits, vec![change("cgroup pids:/jail pids.max", "100", "200")])
    }

    fn drift(pid: u32, anomalies: Vec<Anomaly>) -> Finding {
        Finding::Drift { target: proc(pid), anomalies }
    }

    fn ns(_: &Target) -> Option<String> {
        Some("4026531841".into())
    }

    fn objects(out: &[Finding]) -> Vec<(String, Vec<u32>)> {
        out.iter()
            .filter_map(|f| match f {
                Finding::ObjectDrift { object, targets, .. } => {
                    Some((object.clone(), targets.iter().filter_map(Target::pid).collect()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_limit_raised_on_a_cgroup_of_a_hundred_processes_is_one_finding() {
        let mut r = Roots::default();
        let out = r.group((1..=100).map(|p| drift(p, vec![raised()])).collect(), 1, &mut ns);
        assert_eq!(objects(&out), [("cgroup pids:/jail".to_owned(), (1..=100).collect::<Vec<u32>>())]);
        assert_eq!(out.len(), 1, "{out:#?}");
        let Some(Finding::ObjectDrift { anomaly, .. }) = out.first() else { panic!("{out:#?}") };
        assert_eq!(anomaly.changes, raised().changes);
        assert_eq!(crate::policy::Policy::default().grade(std::slice::from_ref(anomaly)), crate::Severity::Log);
        // The object recovers once, when its last process does.
        let back = |p: u32| Finding::Recovered {
            target: proc(p),
            subsystem: Subsystem::CgroupLimits,
            drifted_for: Duration::from_secs(u64::from(p)),
        };
        let out = r.group((1..=99).map(back).collect(), 1, &mut ns);
        assert!(out.is_empty(), "{out:#?}");
        let out = r.group(vec![Finding::Exited { target: proc(100) }], 1, &mut ns);
        assert!(matches!(
            out.as_slice(),
            [Finding::ObjectRecovered { object, targets, drifted_for, .. }, Finding::Exited { .. }]
                if object == "cgroup pids:/jail" && targets.len() == 100 && *drifted_for == Duration::from_secs(99)
        ));
        assert!(r.is_idle());
    }

    #[test]
    fn a_drift_seen_in_one_part_waits_for_the_others() {
        let mut r = Roots::default();
        let evens: Vec<Finding> = (0..10).filter(|p| p % 2 == 0).map(|p| drift(p, vec![raised()])).collect();
        let odds: Vec<Finding> = (0..10).filter(|p| p % 2 == 1).map(|p| drift(p, vec![raised()])).collect();
        assert!(r.group(evens, 2, &mut ns).is_empty(), "held until every part was checked");
        let out = r.group(odds, 2, &mut ns);
        assert_eq!(objects(&out), [("cgroup pids:/jail".to_owned(), vec![0, 2, 4, 6, 8, 1, 3, 5, 7, 9])]);
        // Seen in the last part of a round: declared after the next round's first.
        assert!(r.group(vec![drift(11, vec![raised()])], 2, &mut ns).is_empty());
        assert_eq!(objects(&r.group(vec![], 2, &mut ns)).len(), 1);
    }

    #[test]
    fn different_changes_and_different_cgroups_are_different_objects() {
        let mut r = Roots::default();
        let other = anomaly(Subsystem::CgroupLimits, vec![change("cgroup pids:/jail pids.max", "100", "300")]);
        let two = anomaly(
            Subsystem::CgroupLimits,
            vec![change("cgroup pids:/ pids.max", "max", "5"), change("cgroup pids:/jail pids.max", "100", "200")],
        );
        let out = r.group(vec![drift(1, vec![raised()]), drift(2, vec![other]), drift(3, vec![two])], 1, &mut ns);
        assert_eq!(
            objects(&out),
            [
                ("cgroup pids:/jail".to_owned(), vec![1, 3]),
                ("cgroup pids:/jail".to_owned(), vec![2]),
                ("cgroup pids:/".to_owned(), vec![3]),
            ]
        );
    }

    #[test]
    fn a_move_is_one_anomaly_of_the_process_graded_once() {
        let mut r = Roots::default();
        let moved = anomaly(Subsystem::Cgroups, vec![change("cgroup", "pids:/a", "pids:/b")]);
        let same = anomaly(
            Subsystem::CgroupLimits,
            vec![Change { note: Some("same limits".into()), ..change("cgroup limits", "pids:/a", "pids:/b") }],
        );
        let out = r.group(vec![drift(7, vec![moved, same])], 4, &mut ns);
        let [Finding::Drift { target, anomalies }] = out.as_slice() else { panic!("{out:#?}") };
        assert_eq!(target.pid(), Some(7));
        assert_eq!(anomalies.len(), 1);
        assert_eq!(anomalies[0].subsystem, Subsystem::Cgroups);
        let texts: Vec<String> = anomalies[0].changes.iter().map(Change::to_string).collect();
        assert_eq!(texts, ["cgroup pids:/a -> pids:/b", "cgroup limits pids:/a -> pids:/b (same limits)"]);
        assert_eq!(crate::policy::Policy::default().grade(anomalies), crate::Severity::Log);
        // Moved back: the move recovers; the folded subsystem says nothing.
        let back = |s| Finding::Recovered { target: proc(7), subsystem: s, drifted_for: Duration::from_secs(1) };
        let out = r.group(vec![back(Subsystem::Cgroups), back(Subsystem::CgroupLimits)], 4, &mut ns);
        assert!(matches!(out.as_slice(), [Finding::Recovered { subsystem: Subsystem::Cgroups, .. }]), "{out:#?}");
        assert!(r.is_idle());
    }

    #[test]
    fn a_process_that_moves_out_of_a_drifted_cgroup_no_longer_holds_its_recovery() {
        let mut r = Roots::default();
        assert_eq!(objects(&r.group(vec![drift(1, vec![raised()]), drift(2, vec![raised()])], 1, &mut ns)).len(), 1);
        let moved = anomaly(Subsystem::Cgroups, vec![change("cgroup", "pids:/jail", "pids:/b")]);
        let limits = anomaly(Subsystem::CgroupLimits, vec![change("cgroup limits", "pids:/jail", "pids:/b")]);
        let out = r.group(vec![drift(2, vec![moved, limits])], 1, &mut ns);
        assert!(matches!(out.as_slice(), [Finding::Drift { anomalies, .. }] if anomalies.len() == 1), "{out:#?}");
        let back =
            Finding::Recovered { target: proc(1), subsystem: Subsystem::CgroupLimits, drifted_for: Duration::ZERO };
        let out = r.group(vec![back], 1, &mut ns);
        assert!(matches!(out.as_slice(), [Finding::ObjectRecovered { targets, .. }] if targets.len() == 2), "{out:#?}");
    }

    #[test]
    fn a_move_without_the_cgroups_subsystem_stays_the_process_own() {
        let mut r = Roots::default();
        let moved = anomaly(Subsystem::CgroupLimits, vec![change("cgroup pids:/a -> pids:/b pids.max", "100", "max")]);
        let out = r.group(vec![drift(3, vec![moved.clone()])], 1, &mut ns);
        assert_eq!(out, [drift(3, vec![moved])]);
    }

    #[test]
    fn a_mount_table_is_one_object_per_namespace_and_a_private_drift_stays() {
        let mut r = Roots::default();
        let mounted = anomaly(Subsystem::Mounts, vec![change("mount /mnt options", "rw", "ro")]);
        let maps = anomaly(Subsystem::MemoryMaps, vec![change("mapping /x", "r-xp", "rwxp")]);
        let mut namespace = |t: &Target| match t.pid() {
            Some(9) => None,
            Some(p) if p < 5 => Some("4026532001".to_owned()),
            _ => Some("4026532002".to_owned()),
        };
        let out = r.group(
            vec![
                drift(1, vec![maps.clone(), mounted.clone()]),
                drift(2, vec![mounted.clone()]),
                drift(6, vec![mounted.clone()]),
                drift(9, vec![mounted.clone()]),
            ],
            1,
            &mut namespace,
        );
        assert_eq!(out.first(), Some(&drift(1, vec![maps])));
        assert_eq!(out.get(1), Some(&drift(9, vec![mounted])), "a namespace that cannot be told: the process's own");
        assert_eq!(
            objects(&out),
            [("mount namespace 4026532001".to_owned(), vec![1, 2]), ("mount namespace 4026532002".to_owned(), vec![6])]
        );
    }

    #[test]
    fn a_filter_changed_where_it_stands_is_the_shared_chain_and_a_new_filter_is_the_process_own() {
        let mut r = Roots::default();
        let flipped = anomaly(
            Subsystem::SeccompFilters,
            vec![change("seccomp filter #0", "4 instructions, sha256 aaa", "4 instructions, sha256 bbb")],
        );
        let added = anomaly(
            Subsystem::SeccompFilters,
            vec![Change { kind: ChangeKind::Added, before: None, ..change("seccomp filter #1", "", "1 instruction") }],
        );
        let out = r.group(
            vec![drift(1, vec![flipped.clone()]), drift(2, vec![flipped.clone()]), drift(3, vec![added.clone()])],
            1,
            &mut ns,
        );
        let hex = Digest::of(b"before").to_string();
        assert_eq!(out.first(), Some(&drift(3, vec![added])), "a filter installed is the process's own");
        assert_eq!(objects(&out), [(format!("seccomp filter chain sha256:{}", &hex[..12]), vec![1, 2])]);
        // Another chain that drifted otherwise is another object.
        let other = Anomaly { expected: Digest::of(b"other"), ..flipped };
        let out = r.group(vec![drift(4, vec![other])], 1, &mut ns);
        assert_eq!(objects(&out).len(), 1);
        assert_ne!(objects(&out)[0].0, format!("seccomp filter chain sha256:{}", &hex[..12]));
    }

    #[test]
    fn other_findings_pass_through_in_order() {
        let mut r = Roots::default();
        let findings = vec![
            Finding::Exited { target: proc(1) },
            drift(2, vec![anomaly(Subsystem::Seccomp, vec![change("Seccomp", "0", "2")])]),
            Finding::Recovered { target: proc(3), subsystem: Subsystem::CgroupLimits, drifted_for: Duration::ZERO },
        ];
        assert_eq!(r.group(findings.clone(), 3, &mut ns), findings);
        assert!(r.is_idle());
    }
}
