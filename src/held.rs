//! The record sets of a monitor's baselines, each distinct set held once.
//!
//! Five hundred processes in five cgroups have five distinct `cgroup-limits`
//! record sets, most processes of a node one `mounts` set, and every process
//! running the same program one `memory-maps` set. A monitor used to hold
//! each process's records in each of the three voted copies of its baseline
//! (`guard.rs`): 90 MB for such a node. Here each distinct set, by subsystem
//! and digest, is held once, and every copy of every baseline that has it
//! refers to it ([`Records`]).
//!
//! The trade, and what keeps the redundancy meaningful: what decides drift
//! is a subsystem's digest, and it stays in the three voted copies of each
//! baseline. The records only explain a drift and are saved to the file;
//! one bit flipped in a shared set would change all three copies of every
//! baseline that refers to it alike, so a vote of those copies cannot see
//! it. So each held set has a spare copy of its own, and
//! [`Held::check`] hashes both against the digest they are held under
//! (every `HELD_CHECK_EVERY` rounds of a monitor): a set that no longer matches it is replaced by the spare in
//! every baseline that refers to it (a repair, reported as such), a spare
//! that no longer matches is copied again, and a set whose both copies fail
//! is lost: its baselines are restored from the file.

use std::collections::HashMap;

use crate::canon::{self, Record, Records};
use crate::observation::Observation;
use crate::{Digest, Snapshot, Subsystem};

/// The distinct record sets, by subsystem and digest.
#[derive(Debug, Default)]
pub(crate) struct Held {
    sets: HashMap<(Subsystem, Digest), Set>,
}

#[derive(Debug)]
struct Set {
    /// The copy the baselines refer to.
    shared: Records,
    /// A copy of its own, for repairs.
    spare: Vec<Record>,
}

/// What [`Held::check`] found wrong with one set.
#[derive(Debug)]
pub(crate) enum Fate {
    /// The shared copy failed its digest: every baseline that refers to
    /// it must take this one (from the spare) instead.
    Repaired(Records),
    /// Both copies failed: the baselines that refer to it must be restored
    /// from the baseline file.
    Lost,
}

impl Held {
    /// Makes each record set of `snapshot` the held one, holding it first
    /// if it is new.
    pub(crate) fn intern(&mut self, snapshot: &mut Snapshot) {
        for (&sub, obs) in snapshot.subsystems.iter_mut() {
            let Observation::Observed { digest, records } = obs else { continue };
            let key = (sub, *digest);
            match self.sets.get_mut(&key) {
                Some(set) if set.shared == *records => *records = set.shared.clone(),
                // The same digest, other records: one of the two is not
                // what the digest covers. The one that is is held.
                Some(set) => {
                    if canon::digest_records(sub, records) == Some(*digest) {
                        *set = Set { spare: records.to_vec(), shared: records.clone() };
                    }
                }
                None => {
                    self.sets.insert(key, Set { spare: records.to_vec(), shared: records.clone() });
                }
            }
        }
    }

    /// Checks every held set (both copies) against its digest, forgets the
    /// sets no baseline refers to any more, and says which sets the
    /// baselines must take again (see [`Fate`]).
    pub(crate) fn check(&mut self) -> Vec<(Subsystem, Digest, Fate)> {
        self.sets.retain(|_, set| set.shared.holders() > 1);
        let mut fates = Vec::new();
        for (&(sub, digest), set) in &mut self.sets {
            let good = |records: &[Record]| canon::digest_records(sub, records) == Some(digest);
            match (good(&set.shared), good(&set.spare)) {
                (true, true) => {}
                (true, false) => set.spare = set.shared.to_vec(),
                (false, true) => {
                    set.shared = Records::from(set.spare.clone());
                    fates.push((sub, digest, Fate::Repaired(set.shared.clone())));
                }
                (false, false) => fates.push((sub, digest, Fate::Lost)),
            }
        }
        fates
    }

    /// How many distinct sets are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sets.len()
    }

    /// Makes `records` the shared copy of a held set (and the spare too):
    /// a flip in place, as the baselines that share it would see it.
    #[cfg(test)]
    pub(crate) fn replace_for_test(&mut self, sub: Subsystem, digest: Digest, records: &Records, spare_too: bool) {
        if let Some(set) = self.sets.get_mut(&(sub, digest)) {
            set.shared = records.clone();
            if spare_too {
                set.spare = records.to_vec();
            }
        }
    }

    /// The shared copy of a held set, to corrupt (fault injection, tests).
    #[cfg(test)]
    fn shared_mut(&mut self, sub: Subsystem, digest: Digest) -> Option<&mut Records> {
        self.sets.get_mut(&(sub, digest)).map(|s| &mut s.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, Procfs};

    fn snap() -> Snapshot {
        let fs = Procfs::mock(
            "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n",
            "Name:\tx\nSeccomp:\t0\n",
            "0::/a\n",
        );
        crate::snapshot(&ManualClock::new(), &fs).unwrap()
    }

    fn records(s: &Snapshot, sub: Subsystem) -> &Records {
        match s.subsystems.get(&sub) {
            Some(Observation::Observed { records, .. }) => records,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_sets_are_held_once() {
        let mut held = Held::default();
        let (mut a, mut b) = (snap(), snap());
        assert!(!records(&a, Subsystem::MemoryMaps).shares(records(&b, Subsystem::MemoryMaps)));
        held.intern(&mut a);
        held.intern(&mut b);
        for sub in [Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Cgroups] {
            assert!(records(&a, sub).shares(records(&b, sub)), "{sub}");
        }
        assert_eq!(held.len(), 3);
        assert!(held.check().is_empty());
        drop((a, b));
        assert!(held.check().is_empty());
        assert_eq!(held.len(), 0, "sets no baseline refers to are forgotten");
    }

    #[test]
    fn a_flipped_set_is_repaired_from_its_spare_and_both_flipped_is_lost() {
        let mut held = Held::default();
        let mut a = snap();
        held.intern(&mut a);
        let digest = a.digest(Subsystem::MemoryMaps).unwrap();
        // A bit flipped in the shared copy: every holder sees it.
        // (In place, it would be seen by both: here both take the flipped set.)
        let shared = held.shared_mut(Subsystem::MemoryMaps, digest).unwrap();
        let mut flipped = shared.to_vec();
        flipped[0].value.push('x');
        *shared = Records::from(flipped);
        let flipped = shared.clone();
        if let Some(Observation::Observed { records, .. }) = a.subsystems.get_mut(&Subsystem::MemoryMaps) {
            *records = flipped;
        }
        let fates = held.check();
        assert_eq!(fates.len(), 1);
        let Fate::Repaired(good) = &fates[0].2 else { panic!("{fates:?}") };
        assert_ne!(good, records(&a, Subsystem::MemoryMaps));
        assert_eq!(crate::canon::digest_records(Subsystem::MemoryMaps, good), Some(digest));
        let good = good.clone();
        if let Some(Observation::Observed { records, .. }) = a.subsystems.get_mut(&Subsystem::MemoryMaps) {
            *records = good;
        }
        assert!(held.check().is_empty(), "repaired");
        // Both copies flipped: lost.
        let set = held.sets.get_mut(&(Subsystem::MemoryMaps, digest)).unwrap();
        set.spare[0].value.push('y');
        let mut flipped = set.shared.to_vec();
        flipped[0].value.push('y');
        set.shared = Records::from(flipped);
        let keep = set.shared.clone();
        assert!(matches!(held.check().as_slice(), [(Subsystem::MemoryMaps, _, Fate::Lost)]));
        drop(keep);
    }
}
