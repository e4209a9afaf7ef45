//! Where the cgroup hierarchies are mounted, as fdir sees them.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::Error;
use crate::canon::mounts;

/// The v1 controllers, as they appear in `/proc/PID/cgroup` and in the super
/// options of a `cgroup` mount.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "io",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// Where each cgroup hierarchy is mounted, as fdir sees it: hierarchy name
/// (as in `/proc/PID/cgroup`: `unified`, `memory`, `cpu,cpuacct`,
/// `name=systemd`) → directory, and the subtree of the hierarchy that
/// directory shows.
///
/// Found from `/proc/self/mountinfo` ([`CgroupMounts::discover`]), or named
/// by the caller, so tests point it at a temporary tree:
///
/// ```
/// use fdir::CgroupMounts;
/// let m = CgroupMounts::new().with("pids", "/tmp/cgroup/pids").with("unified", "/tmp/cgroup/unified");
/// assert_eq!(m.dir("pids", "/app")?, std::path::Path::new("/tmp/cgroup/pids/app"));
/// # Ok::<(), fdir::Error>(())
/// ```
///
/// Cgroup paths in `/proc/PID/cgroup` are relative to the cgroup namespace of
/// the *reader*: run fdir in the initial cgroup namespace (the host's) to see
/// every process's cgroups. A path that leaves fdir's view (`/..`) is refused,
/// never resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// Normalized hierarchy name → (directory, root of the mount in the hierarchy).
    by_name: BTreeMap<String, (PathBuf, String)>,
}

/// `cpu,cpuacct` and `cpuacct,cpu` name one hierarchy.
fn normalize_hierarchy(name: &str) -> String {
    let mut parts: Vec<&str> = name.split(',').filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    parts.join(",")
}

impl CgroupMounts {
    /// No hierarchy known.
    pub fn new() -> CgroupMounts {
        CgroupMounts::default()
    }

    /// The hierarchies mounted in fdir's own mount namespace
    /// (`/proc/self/mountinfo`).
    pub fn discover() -> Result<CgroupMounts, Error> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        Ok(CgroupMounts::from_mountinfo(&text))
    }

    /// [`CgroupMounts::discover`], one copy for every source that finds the
    /// same `mountinfo` text (a watch of a node: a few hundred bytes a
    /// process otherwise). The text is read each time; only an equal one
    /// (by SHA-256) takes the copy found before.
    pub(crate) fn discover_shared() -> Result<Arc<CgroupMounts>, Error> {
        static LAST: Mutex<Option<(crate::Digest, Arc<CgroupMounts>)>> = Mutex::new(None);
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        let digest = crate::Digest::of(&text);
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((d, mounts)) = last.as_ref()
            && *d == digest
        {
            return Ok(Arc::clone(mounts));
        }
        let mounts = Arc::new(CgroupMounts::from_mountinfo(&text));
        *last = Some((digest, Arc::clone(&mounts)));
        Ok(mounts)
    }

    /// The hierarchies in a `mountinfo` text: `cgroup2` mounts are `unified`,
    /// `cgroup` mounts are named by the controllers (and `name=`) in their
    /// super options. Where a hierarchy is mounted more than once, a mount of
    /// its root is preferred, then the first. Lines that do not parse are
    /// skipped.
    pub fn from_mountinfo(text: &[u8]) -> CgroupMounts {
        let mut out = CgroupMounts::new();
        for line in text.split(|&b| b == b'\n') {
            let Ok(m) = mounts::parse_line(line) else { continue };
            let name = match m.fstype {
                b"cgroup2" => "unified".to_owned(),
                b"cgroup" => {
                    let opts = String::from_utf8_lossy(m.super_options);
                    let parts: Vec<&str> =
                        opts.split(',').filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name=")).collect();
                    if parts.is_empty() {
                        continue;
                    }
                    parts.join(",")
                }
                _ => continue,
            };
            let dir = PathBuf::from(OsStr::from_bytes(&mounts::unescape(m.point)));
            let root = String::from_utf8_lossy(&mounts::unescape(m.root)).into_owned();
            let key = normalize_hierarchy(&name);
            let better = out.by_name.get(&key).is_none_or(|(_, r)| r != "/" && root == "/");
            if better {
                out.by_name.insert(key, (dir, root));
            }
        }
        out
    }

    /// Names the directory where `hierarchy`'s root cgroup is.
    pub fn insert(&mut self, hierarchy: &str, dir: impl Into<PathBuf>) -> &mut CgroupMounts {
        self.by_name.insert(normalize_hierarchy(hierarchy), (dir.into(), "/".to_owned()));
        self
    }

    /// Builder form of [`CgroupMounts::insert`].
    #[must_use]
    pub fn with(mut self, hierarchy: &str, dir: impl Into<PathBuf>) -> CgroupMounts {
        self.insert(hierarchy, dir);
        self
    }

    /// The hierarchies known, normalized (controllers sorted).
    pub fn hierarchies(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_name.keys().map(String::as_str)
    }

    /// The directory of `cgroup` (a path from `/proc/PID/cgroup`) in
    /// `hierarchy`.
    pub fn dir(&self, hierarchy: &str, cgroup: &str) -> Result<PathBuf, Error> {
        let (dir, rel) = self.dir_parts(hierarchy, cgroup)?;
        Ok(if rel.is_empty() { dir.to_path_buf() } else { dir.join(rel) })
    }

    /// [`CgroupMounts::dir`] in two parts, allocating nothing: the
    /// directory the hierarchy is mounted on, and the cgroup's path below it
    /// (empty for that directory itself; no slash at either end).
    pub(crate) fn dir_parts<'a>(&'a self, hierarchy: &str, cgroup: &'a str) -> Result<(&'a Path, &'a str), Error> {
        let what = || format!("cgroup {hierarchy}:{cgroup}");
        let fail = |reason: String| Error::Unavailable { what: what(), reason };
        // The keys are normalized, and normalizing is idempotent: a name
        // found as it is needs no normalizing (the kernel lists the
        // controllers of a hierarchy in one order everywhere).
        let (dir, root) = match self.by_name.get(hierarchy) {
            Some(found) => found,
            None => self
                .by_name
                .get(&normalize_hierarchy(hierarchy))
                .ok_or_else(|| fail("the hierarchy is not mounted where fdir can see it".into()))?,
        };
        let rel = cgroup.strip_prefix('/').ok_or_else(|| fail("not an absolute cgroup path".into()))?;
        if !rel.is_empty() && rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(fail("the path leaves fdir's cgroup namespace (or is not canonical)".into()));
        }
        let rel = if root == "/" {
            rel
        } else {
            let r = root.trim_start_matches('/');
            match rel.strip_prefix(r) {
                Some("") => "",
                Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
                _ => return Err(fail(format!("fdir's mount of the hierarchy shows only {root}"))),
            }
        };
        Ok((dir.as_path(), rel))
    }
}
