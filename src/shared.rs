//! Kernel objects that many targets share, read once per round.
//!
//! Five hundred processes in five cgroups lead to the same few cgroup
//! directories in each hierarchy. The limit files of such a directory are
//! read for the first target of a round that leads there; the records they
//! gave are kept here and taken by every other target of that round, so a
//! round reads each distinct cgroup once, not once per process. A round is
//! one part of a [`crate::Monitor`] cycle: [`Shared::begin_round`] forgets
//! what the last one read, so nothing older than the round is ever used.
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
    }

    /// The records of `cgroup` in `hierarchy`, if a target read them this
    /// round.
    pub(crate) fn cgroup_limits(&self, hierarchy: &str, cgroup: &str) -> Option<Arc<str>> {
        self.cgroup_limits.lock().ok()?.get(hierarchy)?.get(cgroup).cloned()
    }

    /// Keeps the records just read of `cgroup` in `hierarchy` for the rest
    /// of the round.
    pub(crate) fn keep_cgroup_limits<'a>(&self, hierarchy: &str, cgroup: &str, lines: impl Iterator<Item = &'a str>) {
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        if let Ok(mut m) = self.cgroup_limits.lock() {
            m.entry(hierarchy.to_owned()).or_default().insert(cgroup.to_owned(), Arc::from(text));
        }
    }
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
        s.begin_round();
        assert!(s.cgroup_limits("pids", "/a").is_none());
    }
}
