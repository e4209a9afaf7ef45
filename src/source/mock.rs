//! Canned files for tests and examples: the mini-language of
//! [`Procfs::mock_files`](super::Procfs::mock_files) and
//! [`Procfs::mock_node_files`](super::Procfs::mock_node_files), answered by
//! [`Mock`] without touching the filesystem.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::stat::{PF_EXITING, parse_stat_flags};
use super::{FileId, Target, unsupported};
use crate::Error;

/// Canned files of a process or of the node, by path.
#[derive(Debug)]
pub(super) struct Mock {
    files: BTreeMap<String, Vec<u8>>,
    node: bool,
}

impl Mock {
    pub(super) fn new<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>, node: bool) -> Mock {
        Mock { files: files.into_iter().map(|(k, v)| (k.into(), v.as_ref().to_vec())).collect(), node }
    }

    pub(super) fn target(&self) -> Target {
        if self.node { Target::Node { hostname: "mock".into(), boot_id: String::new() } } else { Target::Mock }
    }

    pub(super) fn path_of(rel: &str) -> PathBuf {
        PathBuf::from("mock").join(rel)
    }

    pub(super) fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        let data = self.files.get(rel).ok_or_else(|| Error::NotFound { path: Mock::path_of(rel) })?;
        buf.clear();
        buf.extend_from_slice(data);
        Ok(())
    }

    /// A file's content read as `DEV:INO`; `-` is a link that does not resolve.
    pub(super) fn stat(&self, rel: &str) -> Result<FileId, Error> {
        let path = || Mock::path_of(rel);
        let data = self.files.get(rel).ok_or_else(|| Error::NotFound { path: path() })?;
        if data.as_slice() == b"-" {
            return Err(Error::NotFound { path: path() });
        }
        let text = String::from_utf8_lossy(data);
        let (dev, ino) = text.trim().split_once(':').unwrap_or(("", ""));
        match (dev.parse(), ino.parse()) {
            (Ok(dev), Ok(ino)) => Ok(FileId { dev, ino }),
            _ => Err(Error::Parse { path: path(), message: "a mock stat is DEV:INO or -".into() }),
        }
    }

    /// The names below a directory: the next component of every path under it.
    pub(super) fn list(&self, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
        let prefix = format!("{}/", rel.trim_end_matches('/'));
        for k in self.files.keys() {
            if let Some(name) = k.strip_prefix(&prefix).and_then(|r| r.split('/').next())
                && !name.is_empty()
            {
                out.push(name.to_owned());
            }
        }
        out.sort_unstable();
        out.dedup();
        if out.is_empty() {
            return Err(Error::NotFound { path: Mock::path_of(rel) });
        }
        Ok(())
    }

    pub(super) fn cgroup_list(&self, hierarchy: &str, cgroup: &str, out: &mut Vec<String>) -> Result<(), Error> {
        if self.node {
            return Err(unsupported(format!("cgroup {hierarchy}:{cgroup}")));
        }
        let prefix = format!("{}/", cgroup_dir(hierarchy, cgroup));
        out.extend(
            self.files.keys().filter_map(|k| k.strip_prefix(&prefix)).filter(|n| !n.contains('/')).map(str::to_owned),
        );
        if out.is_empty() {
            return Err(Error::NotFound { path: PathBuf::from(prefix) });
        }
        Ok(())
    }

    pub(super) fn cgroup_read(
        &self,
        hierarchy: &str,
        cgroup: &str,
        file: &str,
        buf: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.node {
            return Err(unsupported(format!("cgroup {hierarchy}:{cgroup}")));
        }
        let key = format!("{}/{file}", cgroup_dir(hierarchy, cgroup));
        let data = self.files.get(&key).ok_or_else(|| Error::NotFound { path: PathBuf::from(&key) })?;
        buf.extend_from_slice(data);
        Ok(())
    }

    /// The numbers under `task/`.
    pub(super) fn threads(&self, out: &mut Vec<u32>) {
        for k in self.files.keys() {
            let tid = k.strip_prefix("task/").and_then(|r| r.split('/').next()).and_then(|t| t.parse().ok());
            if let Some(tid) = tid
                && !out.contains(&tid)
            {
                out.push(tid);
            }
        }
    }

    /// Whether `task/TID/stat` says `PF_EXITING` (no such file: not exiting).
    pub(super) fn thread_exiting(&self, tid: u32) -> bool {
        self.files
            .get(&format!("task/{tid}/stat"))
            .is_some_and(|s| parse_stat_flags(s).is_some_and(|f| f & PF_EXITING != 0))
    }

    /// Canned filter programs: files `task/TID/seccomp/N` hold program N's
    /// raw bytes; a file `task/TID/seccomp/denied` makes the read need a
    /// privilege.
    pub(super) fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        out.clear();
        if self.node {
            return Err(unsupported("seccomp filter programs"));
        }
        let dir = format!("task/{tid}/seccomp/");
        if self.files.contains_key(&format!("{dir}denied")) {
            return Err(Error::NeedsPrivilege { what: "reading seccomp filter programs", privilege: "CAP_SYS_ADMIN" });
        }
        if !self.files.keys().any(|k| k.starts_with(&dir)) {
            return Err(unsupported(format!("the seccomp filter programs of thread {tid}")));
        }
        while let Some(p) = self.files.get(&format!("{dir}{}", out.len())) {
            out.push(p.clone());
        }
        Ok(Duration::ZERO)
    }

    /// A canned page map: a file `pagemap` holds the entries of the pages
    /// from address 0 on (pages past its end are not present).
    pub(super) fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        if self.node {
            return Err(unsupported("the page map"));
        }
        let Some(map) = self.files.get("pagemap") else { return Err(unsupported("the page map")) };
        let from = usize::try_from(addr / super::procfs::PAGE * 8).unwrap_or(usize::MAX);
        out.fill(0);
        super::procfs::pagemap_entries(map.get(from..).unwrap_or(&[]), out);
        Ok(out.len())
    }

    /// Canned memory: a file `mem/HEX` holds the bytes at address HEX.
    pub(super) fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        if self.node {
            return Err(unsupported("process memory"));
        }
        let mut any = false;
        for (k, bytes) in &self.files {
            let Some(start) = k.strip_prefix("mem/").and_then(|h| u64::from_str_radix(h, 16).ok()) else { continue };
            any = true;
            let Some(from) = addr.checked_sub(start).and_then(|d| usize::try_from(d).ok()) else { continue };
            if let Some(have) = bytes.get(from..).filter(|h| !h.is_empty()) {
                let n = have.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), have.get(..n)) {
                    dst.copy_from_slice(src);
                }
                return Ok(n);
            }
        }
        if any { Ok(0) } else { Err(unsupported("process memory")) }
    }
}

/// The prefix of mock cgroup files: `cgroupfs/HIERARCHY/CGROUP`, without a
/// trailing `/`.
fn cgroup_dir(hierarchy: &str, cgroup: &str) -> String {
    format!("cgroupfs/{hierarchy}{}", cgroup.trim_end_matches('/'))
}
