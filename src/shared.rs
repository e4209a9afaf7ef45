//! Kernel objects that many targets share, read once per round.
//!
//! Five hundred processes in five cgroups lead to the same few cgroup
//! directories in each hierarchy, and most processes of a node share one
//! mount table. Such an object is read for the first target of a round that
//! leads to it; the records it gave are kept here and taken by every other
//! target of that round, so a round reads each distinct object once, not
//! once per process:
//!
//! - a cgroup's limit files (`cgroup-limits`), by hierarchy and cgroup path;
//! - the page cache's copy of a code file (`code`), chunk by chunk
//!   (`code_pages.rs`);
//! - a process's `mountinfo` (`mounts`), by what that text depends on: the
//!   mount namespace (`ns/mnt`) and the process's root, as a file and as the
//!   mount it is on (`statx` of `root`: two roots that are the same
//!   directory through different mounts see different mounts below them).
//!   Where the mount of the root cannot be told (a kernel before 5.8), each
//!   process reads its own.
//!
//! A round is one part of a [`crate::Monitor`] cycle:
//! [`Shared::begin_round`] forgets what the last one read, so nothing older
//! than the round is ever used.
//!
//! A read after a drift (the confirming re-read, and every read while a
//! drift lasts) never takes from here: it reads the files again, so a read
//! glitch seen by one target is not repeated to the others as confirmed,
//! and what it read replaces what is kept for the rest of the round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What this round has read of the objects targets share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The `cgroup-limits` records of a cgroup directory, by hierarchy and
    /// cgroup path: `key\tvalue` lines, one per line.
    cgroup_limits: Mutex<HashMap<String, HashMap<String, Arc<str>>>>,
    /// The `mounts` records of a mount view, as [`MountView`] names it, and
    /// the digest of the form they make.
    mounts: Mutex<HashMap<MountView, (Arc<str>, crate::Digest)>>,
    /// The digest of a process's `cgroup-limits` form made of these records
    /// (those of each cgroup it leads to, in its order), by their addresses:
    /// made once a round for all the processes that lead to the same
    /// cgroups. The records are held with it, so that no address is reused
    /// while it is kept (a cgroup read again after a drift is new records).
    cgroup_forms: Mutex<HashMap<Vec<usize>, Form>>,
    /// The values of shared code chunks (`code`, see `code_pages.rs`).
    code: crate::code_pages::CodePages,
}

/// The records a form was made of, held, and the form's digest.
type Form = (Vec<Arc<str>>, crate::Digest);

/// What the text of a process's `mountinfo` depends on: its mount
/// namespace, and its root (the directory, and the mount it is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MountView {
    /// `ns/mnt`: device and inode of the mount namespace.
    pub(crate) namespace: (u64, u64),
    /// `root`: device and inode of the root directory.
    pub(crate) root: (u64, u64),
    /// The id of the mount the root directory is on.
    pub(crate) root_mount: u64,
}

impl Shared {
    /// An empty store, to be shared by the targets of one monitor.
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared::default())
    }

    /// Starts a round: what the last round read is forgotten.
    pub(crate) fn begin_round(&self) {
        if let Ok(mut m) = self.cgroup_limits.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.mounts.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.cgroup_forms.lock() {
            m.clear();
        }
        self.code.clear();
    }

    /// The code chunks of files this round has read (`code_pages.rs`).
    pub(crate) fn code(&self) -> &crate::code_pages::CodePages {
        &self.code
    }

    /// The `mounts` records of `view` and the digest of their form, if a
    /// target read them this round.
    pub(crate) fn mounts(&self, view: &MountView) -> Option<(Arc<str>, crate::Digest)> {
        self.mounts.lock().ok()?.get(view).cloned()
    }

    /// Keeps the `mounts` records just read for `view`, and the digest of
    /// their form, for the rest of the round.
    pub(crate) fn keep_mounts<'a>(&self, view: MountView, lines: impl Iterator<Item = &'a str>, digest: crate::Digest) {
        let text = joined(lines);
        if let Ok(mut m) = self.mounts.lock() {
            m.insert(view, (Arc::from(text), digest));
        }
    }

    /// The digest of the `cgroup-limits` form made of `pieces` (records
    /// this round keeps, [`Shared::cgroup_limits`]), if a target made it.
    pub(crate) fn cgroup_form(&self, pieces: &[Arc<str>]) -> Option<crate::Digest> {
        let key: Vec<usize> = pieces.iter().map(|p| Arc::as_ptr(p).cast::<u8>() as usize).collect();
        self.cgroup_forms.lock().ok()?.get(&key).map(|(_, d)| *d)
    }

    /// Keeps the digest of the `cgroup-limits` form made of `pieces`.
    pub(crate) fn keep_cgroup_form(&self, pieces: &[Arc<str>], digest: crate::Digest) {
        let key: Vec<usize> = pieces.iter().map(|p| Arc::as_ptr(p).cast::<u8>() as usize).collect();
        if let Ok(mut m) = self.cgroup_forms.lock() {
            m.insert(key, (pieces.to_vec(), digest));
        }
    }

    /// The records of `cgroup` in `hierarchy`, if a target read them this
    /// round.
    pub(crate) fn cgroup_limits(&self, hierarchy: &str, cgroup: &str) -> Option<Arc<str>> {
        self.cgroup_limits.lock().ok()?.get(hierarchy)?.get(cgroup).cloned()
    }

    /// Keeps the records just read of `cgroup` in `hierarchy` for the rest
    /// of the round.
    pub(crate) fn keep_cgroup_limits<'a>(&self, hierarchy: &str, cgroup: &str, lines: impl Iterator<Item = &'a str>) {
        let text = joined(lines);
        if let Ok(mut m) = self.cgroup_limits.lock() {
            m.entry(hierarchy.to_owned()).or_default().insert(cgroup.to_owned(), Arc::from(text));
        }
    }
}

/// Records as kept: `key\tvalue` lines, each ending in a newline.
fn joined<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_round_keeps_is_gone_in_the_next() {
        let s = Shared::new();
        assert!(s.cgroup_limits("pids", "/a").is_none());
        s.keep_cgroup_limits("pids", "/a", ["pids /a pids.max\t100", "pids /a x\ty"].into_iter());
        assert_eq!(s.cgroup_limits("pids", "/a").as_deref(), Some("pids /a pids.max\t100\npids /a x\ty\n"));
        assert!(s.cgroup_limits("pids", "/b").is_none());
        assert!(s.cgroup_limits("memory", "/a").is_none());
        let view = MountView { namespace: (4, 4026531841), root: (254, 2), root_mount: 21 };
        let d = crate::Digest::of(b"a form");
        s.keep_mounts(view, ["mount /\text4 rw"].into_iter(), d);
        assert_eq!(s.mounts(&view).map(|(l, d)| (l.to_string(), d)), Some(("mount /\text4 rw\n".to_owned(), d)));
        let a = s.cgroup_limits("pids", "/a").unwrap();
        assert!(s.cgroup_form(std::slice::from_ref(&a)).is_none());
        s.keep_cgroup_form(std::slice::from_ref(&a), d);
        assert_eq!(s.cgroup_form(std::slice::from_ref(&a)), Some(d));
        // The same records read again (after a drift) are another form's.
        s.keep_cgroup_limits("pids", "/a", ["pids /a pids.max\t100", "pids /a x\ty"].into_iter());
        let again = s.cgroup_limits("pids", "/a").unwrap();
        assert!(s.cgroup_form(std::slice::from_ref(&again)).is_none());
        assert!(s.mounts(&MountView { root_mount: 22, ..view }).is_none(), "another mount of the same root");
        s.begin_round();
        assert!(s.cgroup_limits("pids", "/a").is_none());
        assert!(s.mounts(&view).is_none());
        assert!(s.cgroup_form(std::slice::from_ref(&a)).is_none());
    }
}
