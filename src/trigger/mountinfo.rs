//! `poll` on `mountinfo`: the kernel marks a process's `/proc/PID/mountinfo`
//! readable with `POLLPRI | POLLERR` when the mount table of its mount
//! namespace changes (a mount, an unmount, a remount, a propagation
//! arriving).
//!
//! One file is kept open per mount namespace of the watched processes
//! (fdir's own included), opened through one process of that namespace;
//! they are all in an epoll set of their own, whose descriptor is the one
//! the hub waits on. What it sees: any change of a mount table, whoever
//! made it. What it misses: a change of a process's root (`chroot`,
//! `pivot_root` without a mount change) and the move of a process to
//! another mount namespace (`setns`, `unshare`): those are seen by the
//! timer (and by eBPF where it runs).
//!
//! The epoll set's readiness asks the files themselves, which consumes
//! their notice; so a wake-up of the set is one [`Recheck::Mounts`],
//! whichever namespace it came from.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use rustix::event::epoll;

use super::{Kind, Recheck, Source, Unavailable};

/// The mount namespace of a process: device and inode of `ns/mnt`.
type Namespace = (u64, u64);

/// The epoll set of the `mountinfo` files followed, one per namespace.
#[derive(Debug)]
pub struct Mountinfo {
    epoll: OwnedFd,
    files: BTreeMap<Namespace, File>,
    /// The pids last followed, and their namespaces.
    pids: BTreeMap<u32, Namespace>,
    /// When every followed pid was last asked for its namespace.
    asked: Option<std::time::Instant>,
}

/// The mount namespace of `pid` (`/proc/PID/ns/mnt`).
fn mount_namespace_of(pid: u32) -> std::io::Result<Namespace> {
    let m = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?;
    Ok((m.dev(), m.ino()))
}

/// `/proc/PID/mountinfo`, opened to be polled.
fn open_mountinfo(pid: u32) -> std::io::Result<File> {
    File::open(format!("/proc/{pid}/mountinfo"))
}

impl Mountinfo {
    /// An epoll set following fdir's own mount namespace.
    pub fn open() -> Result<Mountinfo, Unavailable> {
        let fail = |reason: String| Unavailable { kind: Kind::Mountinfo, reason };
        let epoll =
            epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| fail(format!("cannot create an epoll set: {e}")))?;
        let mut m = Mountinfo { epoll, files: BTreeMap::new(), pids: BTreeMap::new(), asked: None };
        let own = std::process::id();
        let ns = mount_namespace_of(own).map_err(|e| fail(format!("cannot read /proc/{own}/ns/mnt: {e}")))?;
        m.add(own, ns).map_err(|e| fail(format!("cannot poll /proc/{own}/mountinfo: {e}")))?;
        m.pids.insert(own, ns);
        Ok(m)
    }

    /// Follows the mount namespace `ns` through `pid`'s `mountinfo`.
    fn add(&mut self, pid: u32, ns: Namespace) -> std::io::Result<()> {
        if self.files.contains_key(&ns) {
            return Ok(());
        }
        let file = open_mountinfo(pid)?;
        epoll::add(&self.epoll, &file, epoll::EventData::new_u64(0), epoll::EventFlags::PRI | epoll::EventFlags::ERR)?;
        self.files.insert(ns, file);
        Ok(())
    }

    /// How many mount namespaces are followed.
    pub fn namespaces(&self) -> usize {
        self.files.len()
    }
}

impl Source for Mountinfo {
    fn kind(&self) -> Kind {
        Kind::Mountinfo
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    fn drain(&mut self, out: &mut Vec<Recheck>) -> usize {
        // Empties the set's ready list (the files' notices are consumed).
        let mut events: Vec<epoll::Event> = Vec::with_capacity(16);
        let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        let _ = epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), Some(&zero));
        out.push(Recheck::Mounts);
        1
    }

    fn lost(&self) -> u64 {
        0
    }

    fn follow(&mut self, pids: &[u32]) {
        let own = std::process::id();
        let wanted: BTreeSet<u32> = pids.iter().copied().chain([own]).collect();
        // Every one asked again every `ASK_AGAIN`: a process may have
        // entered another namespace (setns, unshare); in between, only
        // those not followed yet.
        if super::ask_all(self.asked) {
            self.pids.clear();
            self.asked = Some(std::time::Instant::now());
        } else {
            self.pids.retain(|pid, _| wanted.contains(pid));
        }
        for &pid in &wanted {
            if self.pids.contains_key(&pid) {
                continue;
            }
            // A process gone or unreadable is left to the timer.
            let Ok(ns) = mount_namespace_of(pid) else { continue };
            match self.add(pid, ns) {
                Ok(()) => {
                    self.pids.insert(pid, ns);
                }
                Err(e) => tracing::debug!("mountinfo triggers: cannot follow pid {pid}: {e}"),
            }
        }
        // A namespace no followed process is in any more is let go.
        let live: BTreeSet<Namespace> = self.pids.values().copied().collect();
        self.files.retain(|ns, _| live.contains(ns));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_its_own_namespace_once() {
        let Ok(mut m) = Mountinfo::open() else { return };
        assert_eq!(m.namespaces(), 1);
        m.follow(&[std::process::id()]);
        assert_eq!(m.namespaces(), 1);
        m.follow(&[u32::MAX]);
        assert_eq!(m.namespaces(), 1, "a pid that does not exist is skipped");
    }
}
