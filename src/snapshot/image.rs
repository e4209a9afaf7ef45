//! A baseline as bytes: how the second and third of its voted copies are
//! kept ([`Image`], `guard.rs`).
//!
//! Everything a [`Snapshot`] holds is written, in a fixed order, except its
//! record sets: those are held once for every baseline that has them
//! (`held.rs`, each with a spare and checked against its digest), so an
//! image names each set by its subsystem, digest and address in memory,
//! and one read back takes the set lent when the copies were made
//! (references to the held sets) if it is the one named. A first copy that
//! refers to another set (a copy made by a change, a flipped reference)
//! writes another image, and the vote sees it. What decides drift (each
//! subsystem's digest) is in every image.
//!
//! | part | bytes |
//! |---|---|
//! | target | tag (0 process, 1 node, 2 mock), then pid `u32`, start time `u64`, name; or host name, boot id |
//! | taken at | 0 and the time since the epoch, or 1 and the time before it |
//! | subsystems | count `u32`; each: index in [`Subsystem::ALL`] `u8`, tag (0 observed, 1 unobservable, 2 not applicable), then digest `[u8; 32]` and the set's address `u64`, or reason |
//! | settle | 0, or 1, age, waited, settled `u8` |
//! | sources | count `u32`; each: index `u8`, digest |
//! | executable | 0, or 1, path, device `u64`, inode `u64` |
//!
//! Integers little-endian, a text its length (`u32`) and bytes, a duration
//! seconds `u64` and nanoseconds `u32`. A read back must use every byte.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::{Executable, Observation, Settle, Snapshot};
use crate::canon::Records;
use crate::guard::Image;
use crate::{Digest, Subsystem, Target};

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(s.as_bytes());
}

fn put_duration(out: &mut Vec<u8>, d: Duration) {
    put_u64(out, d.as_secs());
    put_u32(out, d.subsec_nanos());
}

fn put_subsystem(out: &mut Vec<u8>, sub: Subsystem) {
    let index = Subsystem::ALL.iter().position(|&s| s == sub).and_then(|i| u8::try_from(i).ok());
    out.push(index.unwrap_or(u8::MAX));
}

/// Bytes read in order; every read fails past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = usize::try_from(self.u32()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn duration(&mut self) -> Option<Duration> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        (nanos < 1_000_000_000).then(|| Duration::new(secs, nanos))
    }
    fn digest(&mut self) -> Option<Digest> {
        Some(Digest(self.take(32)?.try_into().ok()?))
    }
    fn subsystem(&mut self) -> Option<Subsystem> {
        Subsystem::ALL.get(usize::from(self.u8()?)).copied()
    }
    fn flag(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Image for Snapshot {
    /// The record sets, by subsystem.
    type Lent = Vec<(Subsystem, Records)>;

    fn lent(&self) -> Vec<(Subsystem, Records)> {
        let observed = self.subsystems.iter().filter_map(|(&sub, obs)| match obs {
            Observation::Observed { records, .. } => Some((sub, records.clone())),
            _ => None,
        });
        observed.collect()
    }

    fn image(&self, out: &mut Vec<u8>) {
        match &self.target {
            Target::Process { pid, start_time, name } => {
                out.push(0);
                put_u32(out, *pid);
                put_u64(out, *start_time);
                put_str(out, name);
            }
            Target::Node { hostname, boot_id } => {
                out.push(1);
                put_str(out, hostname);
                put_str(out, boot_id);
            }
            Target::Mock => out.push(2),
        }
        match self.taken_at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => {
                out.push(0);
                put_duration(out, d);
            }
            Err(e) => {
                out.push(1);
                put_duration(out, e.duration());
            }
        }
        put_u32(out, u32::try_from(self.subsystems.len()).unwrap_or(u32::MAX));
        for (&sub, obs) in &self.subsystems {
            put_subsystem(out, sub);
            match obs {
                Observation::Observed { digest, records } => {
                    out.push(0);
                    out.extend_from_slice(&digest.0);
                    put_u64(out, records.id());
                }
                Observation::Unobservable { reason } => {
                    out.push(1);
                    put_str(out, reason);
                }
                Observation::NotApplicable { reason } => {
                    out.push(2);
                    put_str(out, reason);
                }
            }
        }
        match &self.settle {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_duration(out, s.age);
                put_duration(out, s.waited);
                out.push(u8::from(s.settled));
            }
        }
        put_u32(out, u32::try_from(self.sources.len()).unwrap_or(u32::MAX));
        for (&sub, digest) in &self.sources {
            put_subsystem(out, sub);
            out.extend_from_slice(&digest.0);
        }
        match &self.exe {
            None => out.push(0),
            Some(e) => {
                out.push(1);
                put_str(out, &e.path);
                put_u64(out, e.dev);
                put_u64(out, e.inode);
            }
        }
    }

    fn from_image(bytes: &[u8], lent: &Vec<(Subsystem, Records)>) -> Option<Snapshot> {
        let mut r = Reader(bytes);
        let target = match r.u8()? {
            0 => Target::Process { pid: r.u32()?, start_time: r.u64()?, name: r.str()? },
            1 => Target::Node { hostname: r.str()?, boot_id: r.str()? },
            2 => Target::Mock,
            _ => return None,
        };
        let taken_at = match r.u8()? {
            0 => SystemTime::UNIX_EPOCH.checked_add(r.duration()?)?,
            1 => SystemTime::UNIX_EPOCH.checked_sub(r.duration()?)?,
            _ => return None,
        };
        let mut subsystems = BTreeMap::new();
        for _ in 0..r.u32()? {
            let sub = r.subsystem()?;
            let obs = match r.u8()? {
                0 => {
                    let digest = r.digest()?;
                    let id = r.u64()?;
                    let records = lent.iter().find(|(s, set)| *s == sub && set.id() == id)?.1.clone();
                    Observation::Observed { digest, records }
                }
                1 => Observation::Unobservable { reason: r.str()? },
                2 => Observation::NotApplicable { reason: r.str()? },
                _ => return None,
            };
            if subsystems.insert(sub, obs).is_some() {
                return None;
            }
        }
        let settle = match r.u8()? {
            0 => None,
            1 => Some(Settle { age: r.duration()?, waited: r.duration()?, settled: r.flag()? }),
            _ => return None,
        };
        let mut sources = BTreeMap::new();
        for _ in 0..r.u32()? {
            let sub = r.subsystem()?;
            if sources.insert(sub, r.digest()?).is_some() {
                return None;
            }
        }
        let exe = match r.u8()? {
            0 => None,
            1 => Some(Executable { path: r.str()?, dev: r.u64()?, inode: r.u64()? }),
            _ => return None,
        };
        r.0.is_empty().then_some(Snapshot { target, taken_at, subsystems, settle, sources, exe })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Record;

    fn snapshot() -> Snapshot {
        let records = crate::canon::Records::from(vec![Record { key: "k".into(), value: "v".into() }]);
        let mut subsystems = BTreeMap::new();
        subsystems.insert(Subsystem::MemoryMaps, Observation::Observed { digest: Digest::of(b"maps"), records });
        subsystems.insert(Subsystem::Lsm, Observation::NotApplicable { reason: "no module".into() });
        subsystems.insert(Subsystem::Mounts, Observation::Unobservable { reason: "denied".into() });
        Snapshot {
            target: Target::Process { pid: 42, start_time: 7, name: "sleep".into() },
            taken_at: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            subsystems,
            settle: Some(Settle { age: Duration::from_millis(5), waited: Duration::from_millis(300), settled: true }),
            sources: [(Subsystem::MemoryMaps, Digest::of(b"text"))].into_iter().collect(),
            exe: Some(Executable { path: "/usr/bin/sleep".into(), dev: 8, inode: 1234 }),
        }
    }

    fn image(s: &Snapshot) -> Vec<u8> {
        let mut out = Vec::new();
        s.image(&mut out);
        out
    }

    #[test]
    fn an_image_reads_back_as_its_snapshot_sharing_its_records() {
        let mut node = snapshot();
        node.target = Target::Node { hostname: "h".into(), boot_id: "b".into() };
        node.settle = None;
        node.exe = None;
        node.taken_at = SystemTime::UNIX_EPOCH - Duration::from_secs(3);
        for s in [snapshot(), node] {
            let back = Snapshot::from_image(&image(&s), &s.lent()).unwrap();
            assert_eq!(back, s);
            assert_eq!(image(&back), image(&s));
            let (Some(Observation::Observed { records: a, .. }), Some(Observation::Observed { records: b, .. })) =
                (s.subsystems.get(&Subsystem::MemoryMaps), back.subsystems.get(&Subsystem::MemoryMaps))
            else {
                panic!("maps observed");
            };
            assert!(a.shares(b), "the set is the one lent, not a copy of it");
        }
    }

    #[test]
    fn every_part_is_in_the_image() {
        let base = image(&snapshot());
        let changes: [fn(&mut Snapshot); 8] = [
            |s| s.target = Target::Process { pid: 42, start_time: 8, name: "sleep".into() },
            |s| s.taken_at += Duration::from_nanos(1),
            |s| {
                if let Some(Observation::Observed { digest, .. }) = s.subsystems.get_mut(&Subsystem::MemoryMaps) {
                    digest.0[31] ^= 1;
                }
            },
            |s| {
                s.subsystems.insert(Subsystem::Lsm, Observation::NotApplicable { reason: "no modulf".into() });
            },
            |s| s.settle = None,
            |s| {
                s.sources.clear();
            },
            |s| s.exe = None,
            |s| {
                if let Some(e) = s.exe.as_mut() {
                    e.inode += 1;
                }
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut s = snapshot();
            change(&mut s);
            assert_ne!(image(&s), base, "change {i}");
        }
    }

    #[test]
    fn a_fault_in_the_first_copy_s_own_records_is_repaired_from_the_images() {
        let mut r = crate::guard::Redundant::new(snapshot()).unwrap();
        if let Some(Observation::Observed { records, .. }) = r.primary_mut().subsystems.get_mut(&Subsystem::MemoryMaps)
        {
            // Copied on the change (as `Snapshot::flip_bit` does): the lent
            // set keeps the good records.
            records[0].value.push('!');
        }
        let v = r.vote();
        assert!(!v.lost && v.repaired == [true, false, false], "{v:?}");
        assert_eq!(r.get(), &snapshot());
        assert_eq!(r.vote(), crate::guard::Vote::default());
    }

    #[test]
    fn a_damaged_image_reads_as_nothing_or_as_another_snapshot() {
        let s = snapshot();
        let good = image(&s);
        assert!(Snapshot::from_image(&good[..good.len() - 1], &s.lent()).is_none(), "cut short");
        let mut longer = good.clone();
        longer.push(0);
        assert!(Snapshot::from_image(&longer, &s.lent()).is_none(), "a byte too many");
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                if let Some(back) = Snapshot::from_image(&bad, &s.lent()) {
                    assert_ne!(back, s, "byte {at} bit {bit} read back as the same snapshot");
                }
            }
        }
    }
}
