//! What a baseline file's payload holds, in each version of the format; the
//! envelope around it (digest, HMAC, atomic writes) is `baseline.rs`'s.
//!
//! - **Version 2** (written): content-addressed. Each distinct record set is
//!   stored once, in `records`, under its subsystem and digest; a target's
//!   observed subsystem is only its digest, a string. Five hundred processes in the
//!   same few cgroups and one mount namespace share a few record sets of
//!   `cgroup-limits` and `mounts`, which version 1 stored once per process.
//!
//!   ```text
//!   {"created_by":..,"created_at":..,"coverage":..,"subsystems":[..],
//!    "records":{"mounts":{"<digest>":[{"key":..,"value":..},..]},..},
//!    "targets":[{"target":..,"taken_at":..,
//!                "subsystems":{"mounts":"<digest>","lsm":{"status":"not-applicable",..},..}},..],
//!    "boot_id":..}
//!   ```
//!
//!   On load, every record set of the table is checked against its digest
//!   once; a target that names a digest the table does not hold, a target
//!   with records of its own, and a record set no target names are refused.
//! - **Version 1** (read): every target holds its records inline, each
//!   snapshot checked on its own ([`Snapshot::verify`]). A version 1 file is
//!   written as version 2 the next time it is saved.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{BaselineFile, BaselineProblem, Coverage};
use crate::canon::{self, Record};
use crate::observation::Observation;
use crate::snapshot::{Executable, Settle};
use crate::{Digest, Error, Snapshot, Subsystem, Target};

/// The version [`encode`] writes.
pub(crate) const VERSION: u64 = 2;

/// Why a payload was refused: a problem of the file, or a bug of fdir's.
pub(crate) enum Refusal {
    /// The file's content is not a valid baseline.
    File(BaselineProblem),
    /// fdir failed (a worker thread panicked).
    Bug(String),
}

impl From<BaselineProblem> for Refusal {
    fn from(p: BaselineProblem) -> Refusal {
        Refusal::File(p)
    }
}

/// The version 2 payload of `file`, as JSON. Every snapshot's records are
/// checked against their digests first: what is stored under a digest is
/// always what that digest covers.
pub(crate) fn encode(file: &BaselineFile) -> Result<Vec<u8>, Refusal> {
    let mut records: BTreeMap<Subsystem, BTreeMap<Digest, &[Record]>> = BTreeMap::new();
    for snap in &file.targets {
        snap.verify().map_err(|e| records_problem(snap, e))?;
        for (&sub, obs) in &snap.subsystems {
            if let Observation::Observed { digest, records: r } = obs {
                records.entry(sub).or_default().entry(*digest).or_insert(r);
            }
        }
    }
    let out = PayloadOut {
        created_by: &file.created_by,
        created_at: file.created_at,
        coverage: &file.coverage,
        subsystems: &file.subsystems,
        records,
        targets: file.targets.iter().map(TargetOut::of).collect(),
        boot_id: file.boot_id.as_deref(),
    };
    serde_json::to_vec(&out).map_err(|e| Refusal::Bug(format!("cannot serialize a baseline: {e}")))
}

/// Decodes and checks the payload of a file of `version` (one of
/// `baseline::SUPPORTED_VERSIONS`).
pub(crate) fn decode(version: u64, payload: &[u8]) -> Result<BaselineFile, Refusal> {
    if version == 1 {
        let raw: RawPayloadV1<'_> = serde_json::from_slice(payload).map_err(invalid)?;
        let targets = decode_targets(&raw.targets, None)?;
        return Ok(BaselineFile {
            created_by: raw.created_by,
            created_at: raw.created_at,
            coverage: raw.coverage,
            subsystems: raw.subsystems,
            targets,
            boot_id: raw.boot_id,
        });
    }
    let raw: RawPayloadV2<'_> = serde_json::from_slice(payload).map_err(invalid)?;
    verify_table(&raw.records)?;
    let targets = decode_targets(&raw.targets, Some(&raw.records))?;
    // Every name a target gave was found; so the table holds nothing else
    // exactly when it holds as many sets as were named.
    // (Sorted, not a set: five hundred targets name some 4,500.)
    let mut named: Vec<(Subsystem, Digest)> =
        targets.iter().flat_map(|t| t.subsystems.iter()).filter_map(|(&sub, obs)| Some((sub, obs.digest()?))).collect();
    named.sort_unstable();
    named.dedup();
    let held: usize = raw.records.values().map(BTreeMap::len).sum();
    if held != named.len() {
        let (sub, digest) = raw
            .records
            .iter()
            .flat_map(|(&sub, sets)| sets.keys().map(move |d| (sub, *d)))
            .find(|k| named.binary_search(k).is_err())
            .unwrap_or((Subsystem::MemoryMaps, Digest::default()));
        return Err(BaselineProblem::Invalid(format!(
            "its record table holds {sub} records {} that no target refers to",
            digest.short()
        ))
        .into());
    }
    Ok(BaselineFile {
        created_by: raw.created_by,
        created_at: raw.created_at,
        coverage: raw.coverage,
        subsystems: raw.subsystems,
        targets,
        boot_id: raw.boot_id,
    })
}

type Table = BTreeMap<Subsystem, BTreeMap<Digest, canon::Records>>;

#[derive(Serialize)]
struct PayloadOut<'a> {
    created_by: &'a str,
    #[serde(with = "crate::time::rfc3339")]
    created_at: SystemTime,
    coverage: &'a Coverage,
    subsystems: &'a [Subsystem],
    records: BTreeMap<Subsystem, BTreeMap<Digest, &'a [Record]>>,
    targets: Vec<TargetOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    boot_id: Option<&'a str>,
}

/// A [`Snapshot`] as version 2 writes it: every one of its fields (a test
/// round-trips a snapshot with each set), observed subsystems by digest
/// alone.
#[derive(Serialize)]
struct TargetOut<'a> {
    target: &'a Target,
    #[serde(with = "crate::time::rfc3339")]
    taken_at: SystemTime,
    subsystems: BTreeMap<Subsystem, ObservationOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settle: Option<Settle>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sources: &'a BTreeMap<Subsystem, Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exe: Option<&'a Executable>,
}

impl<'a> TargetOut<'a> {
    fn of(snap: &'a Snapshot) -> TargetOut<'a> {
        let subsystems = snap
            .subsystems
            .iter()
            .map(|(&sub, obs)| {
                let out = match obs {
                    Observation::Observed { digest, .. } => ObservationOut::Observed(*digest),
                    Observation::Unobservable { reason } => ObservationOut::Other(Unobserved::Unobservable { reason }),
                    Observation::NotApplicable { reason } => {
                        ObservationOut::Other(Unobserved::NotApplicable { reason })
                    }
                };
                (sub, out)
            })
            .collect();
        TargetOut {
            target: &snap.target,
            taken_at: snap.taken_at,
            subsystems,
            settle: snap.settle,
            sources: &snap.sources,
            exe: snap.exe.as_ref(),
        }
    }
}

/// An observed subsystem is its digest alone, a plain string; the others
/// are written as version 1 writes them.
#[derive(Serialize)]
#[serde(untagged)]
enum ObservationOut<'a> {
    Observed(Digest),
    Other(Unobserved<'a>),
}

#[derive(Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
enum Unobserved<'a> {
    Unobservable { reason: &'a str },
    NotApplicable { reason: &'a str },
}

/// The version 1 payload, its targets left as JSON text to be decoded in
/// parallel. Its fields are those of [`BaselineFile`] (a test checks both
/// decode the same).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayloadV1<'a> {
    created_by: String,
    #[serde(with = "crate::time::rfc3339")]
    created_at: SystemTime,
    coverage: Coverage,
    subsystems: Vec<Subsystem>,
    #[serde(borrow)]
    targets: Vec<&'a RawValue>,
    #[serde(default)]
    boot_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayloadV2<'a> {
    created_by: String,
    #[serde(with = "crate::time::rfc3339")]
    created_at: SystemTime,
    coverage: Coverage,
    subsystems: Vec<Subsystem>,
    records: Table,
    #[serde(borrow)]
    targets: Vec<&'a RawValue>,
    #[serde(default)]
    boot_id: Option<String>,
}

fn invalid(e: serde_json::Error) -> Refusal {
    BaselineProblem::Invalid(format!("its payload is not a baseline: {e}")).into()
}

pub(crate) fn records_problem(snap: &Snapshot, e: Error) -> Refusal {
    let reason = match e {
        Error::Corrupt(reason) => reason,
        e => e.to_string(),
    };
    BaselineProblem::Records { target: snap.target.to_string(), reason }.into()
}

/// Checks every record set of the table against the digest it is stored
/// under, on every core when there are many.
fn verify_table(table: &Table) -> Result<(), Refusal> {
    let sets: Vec<(Subsystem, &Digest, &canon::Records)> =
        table.iter().flat_map(|(&sub, sets)| sets.iter().map(move |(d, r)| (sub, d, r))).collect();
    let cores = if sets.len() < 64 { 1 } else { crate::parallel::cores().min(8) };
    let checked = crate::parallel::each(&sets, cores, |&(sub, digest, records)| {
        canon::digest_records(sub, records) == Some(*digest)
    });
    for (ok, (sub, digest, _)) in checked.into_iter().zip(&sets) {
        match ok {
            Some(true) => {}
            Some(false) => return Err(BaselineProblem::RecordSet { subsystem: *sub, digest: digest.short() }.into()),
            None => return Err(Refusal::Bug("checking the record table panicked".into())),
        }
    }
    Ok(())
}

enum TargetError {
    Json(serde_json::Error),
    Records(Box<Snapshot>, Error),
}

/// One target: with a `table` (version 2), its records are taken from it by
/// digest; without (version 1), its own records are checked.
fn decode_target(raw: &RawValue, table: Option<&Table>) -> Result<Snapshot, TargetError> {
    let mut snap: Snapshot = serde_json::from_str(raw.get()).map_err(TargetError::Json)?;
    let Some(table) = table else {
        return match snap.verify() {
            Ok(()) => {
                // An older file's seccomp tuples hold fields no longer read.
                snap.upgrade();
                Ok(snap)
            }
            Err(e) => Err(TargetError::Records(Box::new(snap), e)),
        };
    };
    let mut problem = None;
    for (&sub, obs) in &mut snap.subsystems {
        if let Observation::Observed { digest, records } = obs {
            if !records.is_empty() {
                problem = Some(format!("its {sub} records are stored with it, where version 2 names them by digest"));
                break;
            }
            match table.get(&sub).and_then(|sets| sets.get(digest)) {
                Some(set) => records.clone_from(set),
                None => {
                    problem = Some(format!("its {sub} digest {} names no records in the file", digest.short()));
                    break;
                }
            }
        }
    }
    match problem {
        None => Ok(snap),
        Some(reason) => Err(TargetError::Records(Box::new(snap), Error::Corrupt(reason))),
    }
}

/// Decodes the targets, on every core when there are many; the first error
/// in file order wins.
fn decode_targets(raw: &[&RawValue], table: Option<&Table>) -> Result<Vec<Snapshot>, Refusal> {
    let cores = if raw.len() < 64 { 1 } else { crate::parallel::cores().min(8) };
    crate::parallel::each(raw, cores, |r| decode_target(r, table))
        .into_iter()
        .map(|r| match r {
            Some(Ok(snap)) => Ok(snap),
            Some(Err(TargetError::Json(e))) => Err(invalid(e)),
            Some(Err(TargetError::Records(snap, e))) => Err(records_problem(&snap, e)),
            None => Err(Refusal::Bug("decoding a target panicked".into())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, Procfs};

    /// A snapshot with every optional field set: version 2 must carry each
    /// (a field [`TargetOut`] forgot would be lost without an error).
    #[test]
    fn every_field_of_a_snapshot_round_trips() {
        let fs = Procfs::mock(
            "55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep\n",
            "Name:\tsleep\nSeccomp:\t2\n",
            "0::/\n",
        );
        let mut snap = crate::snapshot_with(&ManualClock::new(), &fs, Subsystem::SEED).unwrap();
        snap.settle = Some(Settle {
            age: std::time::Duration::from_millis(5),
            waited: std::time::Duration::from_millis(7),
            settled: true,
        });
        snap.sources.insert(Subsystem::MemoryMaps, Digest::of(b"maps"));
        snap.exe = Some(Executable { path: "/usr/bin/sleep".into(), dev: 0xfe01, inode: 1311 });
        snap.subsystems.insert(Subsystem::Lsm, Observation::NotApplicable { reason: "none".into() });
        snap.subsystems.insert(Subsystem::Limits, Observation::Unobservable { reason: "denied".into() });
        let file = BaselineFile::new(snap.taken_at, Coverage::All, Subsystem::SEED, vec![snap.clone(), snap]);
        let Ok(bytes) = encode(&file) else { panic!("encode") };
        let Ok(back) = decode(VERSION, &bytes) else { panic!("decode") };
        assert_eq!(back, file);
    }
}
