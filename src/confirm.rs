//! One target's check, guarded and confirmed: the part of a tick that both
//! front-ends run, `start_daemon` on its one baseline and the runtime
//! (`fdir watch`, through `Monitor`) on each of its targets.
//!
//! [`guarded_check`] votes the target's baseline copies, checks it with
//! confirmation ([`Tracker`]: a drift is declared only when `confirm`
//! consecutive reads show it, once, and its recovery is reported), and
//! votes the copies again before a drift is declared, checking again
//! against a repaired copy. What the votes found, and what else a front-end
//! does after the first check (a watch's re-baseline after an exec), is the
//! front-end's, through [`Guard`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::guard::{Redundant, Vote};
use crate::snapshot::{Checker, Reading, Status};
use crate::{Anomaly, Clock, Digest, Error, Report, Snapshot, Source, Subsystem};

/// The confirmation and recovery state of one target's subsystems.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// Reads that must agree before a drift is declared.
    confirm: u32,
    /// Declared drifts still in force: the digest they drifted to and since when.
    drifted: BTreeMap<Subsystem, (Digest, Duration)>,
    /// The last read, its memory reused by the next.
    reading: Option<Reading>,
}

/// A tracker's drift state, saved by [`Tracker::checkpoint`].
#[derive(Debug, Clone)]
pub struct Checkpoint(BTreeMap<Subsystem, (Digest, Duration)>);

/// What one confirmed cycle concluded.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Drifts declared this cycle (new, or drifted further).
    pub declared: Vec<Anomaly>,
    /// Seen in the first read only.
    pub transient: Vec<Subsystem>,
    /// Back at baseline, with how long they were drifted.
    pub recovered: Vec<(Subsystem, Duration)>,
    /// Reads made, including confirming re-reads.
    pub reads: u32,
}

impl Tracker {
    /// An empty tracker (nothing declared) that declares a drift once
    /// `confirm` consecutive reads show it (at least 1).
    pub fn new(confirm: u32) -> Tracker {
        Tracker { confirm: confirm.max(1), drifted: BTreeMap::new(), reading: None }
    }

    /// Whether `subsystem` is in a declared drift.
    pub fn is_drifted(&self, subsystem: Subsystem) -> bool {
        self.drifted.contains_key(&subsystem)
    }

    /// Runs one check cycle: a read, and up to `confirm - 1` immediate
    /// re-reads while something looks drifted that is not declared already
    /// at the same digest. A subsystem is declared only if every read
    /// showed it drifted; it is declared again only if it drifts further
    /// (to another digest).
    pub fn cycle<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        checker: &mut Checker,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
    ) -> Result<Outcome, Error> {
        let mut reading = self.reading.take().unwrap_or_else(|| Reading::new(baseline.target.clone()));
        let result = self.confirmed(checker, baseline, clock, fs, subsystems, &mut reading);
        self.reading = Some(reading);
        result
    }

    /// The drift state, to go back to with [`Tracker::rewind`] (a cycle
    /// that must be done again: a baseline copy was repaired meanwhile).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.drifted.clone())
    }

    /// Goes back to a [`Tracker::checkpoint`].
    pub fn rewind(&mut self, to: Checkpoint) {
        self.drifted = to.0;
    }

    /// Forgets a declared drift of `subsystem` without reporting a recovery:
    /// its baseline was re-taken (the process executed a new program).
    pub fn forget(&mut self, subsystem: Subsystem) {
        self.drifted.remove(&subsystem);
    }

    /// The report of the last read, if a read succeeded.
    pub fn last_report(&self) -> Option<&Report> {
        self.reading.as_ref().map(|r| &r.report)
    }

    fn confirmed<C: Clock + ?Sized, S: Source + ?Sized>(
        &mut self,
        checker: &mut Checker,
        baseline: &Snapshot,
        clock: &C,
        fs: &S,
        subsystems: &[Subsystem],
        reading: &mut Reading,
    ) -> Result<Outcome, Error> {
        checker.check_into(baseline, clock, fs, subsystems, reading)?;
        let mut reads = 1;
        // A drift declared already, at the same digest, has nothing to
        // confirm: only the others are re-read.
        let first: Vec<Subsystem> = reading
            .anomalies
            .iter()
            .filter(|a| self.drifted.get(&a.subsystem).is_none_or(|(digest, _)| *digest != a.actual))
            .map(|a| a.subsystem)
            .collect();
        let mut suspects = first.clone();
        for _ in 1..self.confirm {
            if suspects.is_empty() {
                break;
            }
            checker.check_into(baseline, clock, fs, subsystems, reading)?;
            reads += 1;
            suspects.retain(|s| reading.anomalies.iter().any(|a| a.subsystem == *s));
        }
        let now = clock.now();
        let mut out = Outcome {
            reads,
            transient: first.into_iter().filter(|s| !suspects.contains(s)).collect(),
            ..Outcome::default()
        };
        if !suspects.is_empty() {
            self.declare(&reading.anomalies, &suspects, now, &mut out);
        }
        if !self.drifted.is_empty() {
            self.recover(&reading.report, now, &mut out);
        }
        Ok(out)
    }

    /// Declares the confirmed `suspects` among `anomalies` that are not
    /// already declared at the same digest. Out of line, with
    /// [`Tracker::recover`]: a steady cycle runs neither, and its code is
    /// kept off the pages it does run (BENCHMARKS.md).
    #[cold]
    #[inline(never)]
    fn declare(&mut self, anomalies: &[Anomaly], suspects: &[Subsystem], now: Duration, out: &mut Outcome) {
        for a in anomalies.iter().filter(|a| suspects.contains(&a.subsystem)) {
            match self.drifted.get(&a.subsystem) {
                Some((digest, _)) if *digest == a.actual => {}
                Some(&(_, since)) => {
                    self.drifted.insert(a.subsystem, (a.actual, since));
                    out.declared.push(a.clone());
                }
                None => {
                    self.drifted.insert(a.subsystem, (a.actual, now));
                    out.declared.push(a.clone());
                }
            }
        }
    }

    /// Ends the drift of every subsystem the report found unchanged again.
    #[inline(never)]
    fn recover(&mut self, report: &Report, now: Duration, out: &mut Outcome) {
        self.drifted.retain(|sub, (_, since)| {
            if matches!(report.subsystems.get(sub), Some(Status::Unchanged)) {
                out.recovered.push((*sub, now.saturating_sub(*since)));
                false
            } else {
                true
            }
        });
    }
}

/// A target [`guarded_check`] runs on: its source, its baseline in voted
/// copies, and the tracker and checker that check it with confirmation.
pub(crate) trait Guarded {
    /// Where its state is read.
    type Source: Source + ?Sized;
    /// Its parts, borrowed for one step.
    fn parts(&mut self) -> Parts<'_, Self::Source>;
}

/// The parts of a [`Guarded`] target.
pub(crate) struct Parts<'a, S: ?Sized> {
    pub fs: &'a S,
    pub baseline: &'a mut Redundant<Snapshot>,
    pub tracker: &'a mut Tracker,
    pub checker: &'a mut Checker,
}

impl<S: Source + ?Sized> Parts<'_, S> {
    /// One confirmed check ([`Tracker::cycle`]) against the voted baseline.
    fn check<C: Clock + ?Sized>(self, clock: &C, subsystems: &[Subsystem]) -> Result<Outcome, Error> {
        self.tracker.cycle(self.checker, self.baseline.get(), clock, self.fs, subsystems)
    }
}

/// After the first confirmed check: go on, or check again (the front-end
/// changed the baseline: a new program's), or stop here.
pub(crate) enum Next {
    /// Go on to the vote before declaring.
    On,
    /// The baseline changed: check again (the tracker is back at its
    /// checkpoint).
    Again,
    /// Not checked further (the target is gone, or its new baseline
    /// cannot be taken): said by the front-end.
    Stop,
}

/// A front-end of [`guarded_check`]: what a vote found goes to it, and it
/// may act on the first check's outcome.
pub(crate) trait Guard<G: ?Sized> {
    /// What a vote of `target`'s copies found (the vote before the check,
    /// or the one before declaring). Returns whether the baseline can be
    /// used (a copy survived).
    fn voted(&mut self, target: &G, vote: Vote) -> bool;
    /// After the first check, with the tracker's state `before` it.
    fn checked<C: Clock + ?Sized>(
        &mut self,
        _target: &mut G,
        _outcome: &Outcome,
        _before: &Checkpoint,
        _clock: &C,
        _subsystems: &[Subsystem],
    ) -> Next {
        Next::On
    }
}

/// One target's check: vote its baseline copies, check it with
/// confirmation, vote again before declaring a drift (a copy corrupted
/// since the first vote must not raise a false alarm; after a repair the
/// check is made again from the tracker's state before it). `None` when it
/// was not checked to the end: no copy of its baseline can be trusted, or
/// `guard` stopped it; what the votes found went to `guard`.
pub(crate) fn guarded_check<G, C, V>(
    target: &mut G,
    clock: &C,
    subsystems: &[Subsystem],
    guard: &mut V,
) -> Option<Result<Outcome, Error>>
where
    G: Guarded + ?Sized,
    C: Clock + ?Sized,
    V: Guard<G> + ?Sized,
{
    let vote = target.parts().baseline.vote();
    if !guard.voted(target, vote) {
        return None;
    }
    let before = target.parts().tracker.checkpoint();
    let mut result = target.parts().check(clock, subsystems);
    if let Ok(outcome) = &result {
        match guard.checked(target, outcome, &before, clock, subsystems) {
            Next::On => {}
            Next::Again => result = target.parts().check(clock, subsystems),
            Next::Stop => return None,
        }
    }
    if result.as_ref().is_ok_and(|o| !o.declared.is_empty()) {
        let again = target.parts().baseline.vote();
        if !guard.voted(target, again) {
            target.parts().tracker.rewind(before);
            return None;
        }
        if again.repairs() > 0 {
            target.parts().tracker.rewind(before);
            result = target.parts().check(clock, subsystems);
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Observation;
    use crate::{ManualClock, Procfs};

    /// A target whose primary baseline copy is corrupted once, right after
    /// the first vote: the copy a check is made against.
    struct Target {
        fs: Procfs,
        baseline: Redundant<Snapshot>,
        tracker: Tracker,
        checker: Checker,
        /// Calls of `parts` until the corruption (none once it is done).
        corrupt_in: Option<u32>,
    }

    impl Guarded for Target {
        type Source = Procfs;

        fn parts(&mut self) -> Parts<'_, Procfs> {
            self.corrupt_in = match self.corrupt_in {
                Some(0) => {
                    // Its digest of the memory maps, and of the text they
                    // were made from (which would spare the comparison).
                    let s = self.baseline.primary_mut();
                    s.sources.clear();
                    if let Some(Observation::Observed { digest, .. }) = s.subsystems.get_mut(&Subsystem::MemoryMaps) {
                        *digest = Digest::of(b"a flipped bit");
                    }
                    None
                }
                n => n.map(|n| n - 1),
            };
            Parts { fs: &self.fs, baseline: &mut self.baseline, tracker: &mut self.tracker, checker: &mut self.checker }
        }
    }

    /// The votes, as a front-end is told of them.
    #[derive(Default)]
    struct Votes(Vec<Vote>);

    impl Guard<Target> for Votes {
        fn voted(&mut self, _: &Target, vote: Vote) -> bool {
            self.0.push(vote);
            !vote.lost
        }
    }

    fn target(corrupt_in: Option<u32>) -> Target {
        let fs = Procfs::mock("00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x\n", "Name:\tx\n", "0::/a\n");
        let snapshot = crate::snapshot(&ManualClock::new(), &fs).unwrap();
        Target {
            fs,
            baseline: Redundant::new(snapshot).unwrap(),
            tracker: Tracker::new(1),
            checker: Checker::new(),
            corrupt_in,
        }
    }

    #[test]
    fn a_copy_corrupted_after_the_vote_is_repaired_before_declaring_never_alarmed() {
        let mut t = target(Some(1));
        let mut votes = Votes::default();
        let outcome = guarded_check(&mut t, &ManualClock::new(), Subsystem::SEED, &mut votes).unwrap().unwrap();
        assert!(outcome.declared.is_empty(), "{outcome:?}");
        assert!(!t.tracker.is_drifted(Subsystem::MemoryMaps));
        let repairs: Vec<usize> = votes.0.iter().map(Vote::repairs).collect();
        assert_eq!(repairs, [0, 1], "the vote before declaring repaired the copy: {:?}", votes.0);
    }

    #[test]
    fn an_intact_baseline_is_voted_once_and_checked() {
        let mut t = target(None);
        let mut votes = Votes::default();
        let outcome = guarded_check(&mut t, &ManualClock::new(), Subsystem::SEED, &mut votes).unwrap().unwrap();
        assert!(outcome.declared.is_empty() && outcome.transient.is_empty(), "{outcome:?}");
        assert_eq!(votes.0, [Vote::default()]);
    }
}
