//! The node as one graph: the kernel objects that isolate processes, each
//! named once, with the processes that refer to it.
//!
//! Most of what isolates a process is an object it shares: a cgroup (one
//! per hierarchy), a namespace of each kind (the mount namespace also holds
//! the mount table), a seccomp filter chain inherited across `fork`, the
//! page-cache copy of each code file it maps. [`objects`] reads the
//! references out of snapshots' records (no I/O: a baseline file is enough)
//! and names each object the way an anomaly of it is named (`roots.rs`), so
//! `fdir objects` and an `object` in an event say the same thing:
//!
//! - `cgroup pids:/jail` ([`cgroup`]);
//! - `mount namespace 4026531841`, `net namespace 4026531840` ...
//!   ([`namespace`]);
//! - `seccomp filter chain sha256:0123456789ab` ([`filter_chain`]: twelve hex
//!   digits of the process's `seccomp-filters` form, its chains);
//! - `code file /usr/lib/x86_64-linux-gnu/libc.so.6 dev fe:01 inode 1234`
//!   ([`code_file`]).
//!
//! Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::canon::Record;
use crate::canon::namespaces;
use crate::{Digest, Observation, Snapshot, Subsystem, Target};

/// What kind of kernel object an [`Object`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// A cgroup of one hierarchy: its control files are the limits.
    Cgroup,
    /// A namespace; a mount namespace also holds the mount table.
    Namespace,
    /// A seccomp filter chain (the set of chains of a process's threads).
    FilterChain,
    /// The page-cache copy of a file a process maps executable.
    CodeFile,
}

impl ObjectKind {
    /// The kebab-case name used in JSON (`filter-chain`).
    pub const fn name(self) -> &'static str {
        match self {
            ObjectKind::Cgroup => "cgroup",
            ObjectKind::Namespace => "namespace",
            ObjectKind::FilterChain => "filter-chain",
            ObjectKind::CodeFile => "code-file",
        }
    }
}

/// One kernel object and the processes that refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its identity, as a person reads it and as anomalies name it.
    pub id: String,
    /// What it is.
    pub kind: ObjectKind,
    /// The targets that refer to it, in the order of the snapshots given.
    pub targets: Vec<Target>,
}

/// `cgroup HIERARCHY:PATH` (`cgroup pids:/jail`).
pub fn cgroup(hierarchy: &str, path: &str) -> String {
    format!("cgroup {hierarchy}:{path}")
}

/// The namespace of kind `kind` (`mnt`, `pid_for_children` ...) with inode
/// `inode`: `mount namespace 4026531841`, `pid namespace 4026531836`.
pub fn namespace(kind: &str, inode: &str) -> String {
    let kind = match namespaces::kind(kind) {
        "mnt" => "mount",
        other => other,
    };
    format!("{kind} namespace {inode}")
}

/// The seccomp filter chain a process's `seccomp-filters` form (digest
/// `form`) describes: `seccomp filter chain sha256:` and twelve hex digits.
pub fn filter_chain(form: &Digest) -> String {
    let hex = form.to_string();
    format!("seccomp filter chain sha256:{}", hex.get(..12).unwrap_or(&hex))
}

/// `code file PATH dev D inode I`.
pub fn code_file(path: &str, dev: &str, inode: &str) -> String {
    format!("code file {path} dev {dev} inode {inode}")
}

/// The objects the snapshots refer to, each once, with the targets that
/// refer to it; by kind, then identity. A subsystem a snapshot does not hold
/// (or could not read) adds no reference.
pub fn objects<'a>(snapshots: impl IntoIterator<Item = &'a Snapshot>) -> Vec<Object> {
    let mut by_id: BTreeMap<(ObjectKind, String), Vec<Target>> = BTreeMap::new();
    for s in snapshots {
        let mut refs: Vec<(ObjectKind, String)> = Vec::new();
        if let Some(records) = observed(s, Subsystem::Cgroups) {
            for r in records {
                refs.extend(crate::canon::cgroup::members(&r.value).map(|(h, p)| (ObjectKind::Cgroup, cgroup(h, &p))));
            }
        }
        if let Some(records) = observed(s, Subsystem::Namespaces) {
            for r in records {
                // `dev:inode`; a namespace not yet populated has no identity.
                if let Some((_, inode)) = r.value.split_once(':') {
                    refs.push((ObjectKind::Namespace, namespace(&r.key, inode)));
                }
            }
        }
        if let Some(Observation::Observed { digest, records }) = s.subsystems.get(&Subsystem::SeccompFilters)
            && records.iter().any(|r| r.key == crate::canon::filters::CHAIN && !r.value.starts_with("0 filters"))
        {
            refs.push((ObjectKind::FilterChain, filter_chain(digest)));
        }
        if let Some(records) = observed(s, Subsystem::MemoryMaps) {
            refs.extend(records.iter().filter_map(code_mapping).map(|id| (ObjectKind::CodeFile, id)));
        }
        refs.sort();
        refs.dedup();
        for r in refs {
            by_id.entry(r).or_default().push(s.target.clone());
        }
    }
    by_id.into_iter().map(|((kind, id), targets)| Object { id, kind, targets }).collect()
}

fn observed(s: &Snapshot, subsystem: Subsystem) -> Option<&[Record]> {
    match s.subsystems.get(&subsystem)? {
        Observation::Observed { records, .. } => Some(records),
        Observation::Unobservable { .. } | Observation::NotApplicable { .. } => None,
    }
}

/// The code file an executable file mapping of a `memory-maps` form maps
/// (`file /usr/bin/sleep @0x2000` → `r-xp dev fe:00 inode 247774`).
fn code_mapping(r: &Record) -> Option<String> {
    let (path, _offset) = r.key.strip_prefix("file ")?.rsplit_once(" @")?;
    let (perms, identity) = r.value.split_once(' ')?;
    if perms.as_bytes().get(2) != Some(&b'x') {
        return None;
    }
    let (dev, inode) = crate::canon::code::map_identity(identity)?;
    Some(code_file(path, dev, &inode.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Canon;

    fn records(pairs: &[(&str, &str)]) -> crate::canon::Records {
        let mut c = Canon::new();
        for (k, v) in pairs {
            let mut w = c.record();
            w.str(k).value().str(v);
        }
        crate::canon::Records::from(c.records())
    }

    fn snap(pid: u32, cgroups: &str, mnt: &str, filters: Option<&str>) -> Snapshot {
        let mut s = Snapshot {
            target: Target::Process { pid, start_time: u64::from(pid), name: "sleep".into() },
            taken_at: std::time::SystemTime::UNIX_EPOCH,
            subsystems: BTreeMap::new(),
            settle: None,
            sources: BTreeMap::new(),
            exe: None,
        };
        let mut put = |sub, rs: crate::canon::Records| {
            let digest = crate::canon::digest_records(sub, &rs).unwrap_or_else(|| Digest::of(b"x"));
            s.subsystems.insert(sub, Observation::Observed { digest, records: rs });
        };
        put(Subsystem::Cgroups, records(&[("thread", cgroups)]));
        put(
            Subsystem::Namespaces,
            records(&[("mnt", mnt), ("pid", "4:4026531836"), ("pid_for_children", "4:4026531836")]),
        );
        put(
            Subsystem::MemoryMaps,
            records(&[
                ("file /usr/bin/sleep @0x0", "r--p dev fe:00 inode 247774"),
                ("file /usr/bin/sleep @0x2000", "r-xp dev fe:00 inode 247774"),
                ("file /usr/lib/libc.so.6 @0x26000", "r-xp dev fe:00 inode 12"),
                ("file /usr/lib/libc.so.6 @0x1d0000", "rw-p dev fe:00 inode 12"),
            ]),
        );
        if let Some(chain) = filters {
            put(Subsystem::SeccompFilters, records(&[("chain", chain)]));
        }
        s
    }

    #[test]
    fn each_object_once_with_every_process_that_refers_to_it() {
        let a = snap(1, "name=systemd=/; pids=/jail", "4:4026531832", Some("1 filters, sha256 ab"));
        let b = snap(2, "name=systemd=/; pids=/jail", "4:4026531832", Some("1 filters, sha256 ab"));
        let c = snap(3, "name=systemd=/; pids=/other", "4:4026532001", Some("0 filters"));
        let got: Vec<(String, Vec<u32>)> = objects([&a, &b, &c])
            .into_iter()
            .map(|o| (o.id, o.targets.iter().filter_map(Target::pid).collect()))
            .collect();
        let chain = filter_chain(&a.digest(Subsystem::SeccompFilters).unwrap());
        let want: Vec<(String, Vec<u32>)> = vec![
            ("cgroup name=systemd:/".into(), vec![1, 2, 3]),
            ("cgroup pids:/jail".into(), vec![1, 2]),
            ("cgroup pids:/other".into(), vec![3]),
            ("mount namespace 4026531832".into(), vec![1, 2]),
            ("mount namespace 4026532001".into(), vec![3]),
            ("pid namespace 4026531836".into(), vec![1, 2, 3]),
            (chain, vec![1, 2]),
            ("code file /usr/bin/sleep dev fe:00 inode 247774".into(), vec![1, 2, 3]),
            ("code file /usr/lib/libc.so.6 dev fe:00 inode 12".into(), vec![1, 2, 3]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn identities_match_the_anomalies_of_root_causes() {
        assert_eq!(cgroup("pids", "/jail"), "cgroup pids:/jail");
        assert_eq!(namespace("mnt", "4026531841"), "mount namespace 4026531841");
        assert_eq!(namespace("time_for_children", "7"), "time namespace 7");
        assert!(filter_chain(&Digest::of(b"x")).starts_with("seccomp filter chain sha256:"));
        assert_eq!(filter_chain(&Digest::of(b"x")).len(), "seccomp filter chain sha256:".len() + 12);
    }
}
