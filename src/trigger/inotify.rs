//! inotify on cgroup control files: a `write(2)` to a file of cgroupfs
//! raises `IN_MODIFY` on the file and on its directory (fsnotify), so a
//! watch of each cgroup directory the watched processes are in (and of its
//! ancestors: a limit raised on a parent weakens every child) sees every
//! write to their limit files.
//!
//! What it sees: a write through the filesystem to a limit or policy file
//! (those the `cgroup-limits` subsystem records, `pids.max`, `memory.max`,
//! `cgroup.subtree_control` ...); notices of other files (the kernel's own
//! `*.events`, counters) are ignored. What it misses: a process moved to
//! another cgroup (a write to the *other* cgroup's `cgroup.procs`: seen by
//! the timer, and by eBPF where it runs), a cgroup of a hierarchy fdir
//! cannot see, and limits changed without a write to cgroupfs (systemd's
//! D-Bus calls end in such a write and are seen).
//!
//! A full inotify queue (`IN_Q_OVERFLOW`) counts as one loss and asks for
//! [`Recheck::All`].

use std::collections::{BTreeMap, BTreeSet};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::inotify;

use super::{Kind, Recheck, Source, Unavailable};
use crate::CgroupMounts;
use crate::canon::{cgroup, cgroup_limits};

/// The inotify instance and the cgroup directories it watches.
#[derive(Debug)]
pub struct Inotify {
    fd: OwnedFd,
    mounts: CgroupMounts,
    /// Watch descriptor → directory.
    dirs: BTreeMap<i32, PathBuf>,
    /// Directory → watch descriptor.
    wds: BTreeMap<PathBuf, i32>,
    /// The `cgroup` file of each followed pid as last read (equal texts
    /// held once), and when every one was last read.
    pids: BTreeMap<u32, Arc<[u8]>>,
    asked: Option<std::time::Instant>,
    lost: u64,
    buf: Vec<MaybeUninit<u8>>,
}

/// `/proc/PID/cgroup`, into `buf` (its room reused: one `read` fills it,
/// where `std::fs::read` of a /proc file probes with small reads first).
fn read_cgroup_file(pid: u32, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    buf.reserve(4096);
    std::io::Read::read_to_end(&mut std::fs::File::open(format!("/proc/{pid}/cgroup"))?, buf).map(drop)
}

impl Inotify {
    /// An inotify instance, and the cgroup hierarchies fdir can see.
    pub fn open() -> Result<Inotify, Unavailable> {
        let fail = |reason: String| Unavailable { kind: Kind::Inotify, reason };
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .map_err(|e| fail(format!("cannot create an inotify instance: {e}")))?;
        let mounts = CgroupMounts::discover().map_err(|e| fail(e.to_string()))?;
        if mounts.hierarchies().next().is_none() {
            return Err(fail("no cgroup hierarchy is mounted where fdir can see it".into()));
        }
        Ok(Inotify {
            fd,
            mounts,
            dirs: BTreeMap::new(),
            wds: BTreeMap::new(),
            pids: BTreeMap::new(),
            asked: None,
            lost: 0,
            buf: vec![MaybeUninit::uninit(); 16 * 1024],
        })
    }

    /// The cgroup directories a process whose `/proc/PID/cgroup` says
    /// `text` is in, and their ancestors, in every hierarchy fdir can see,
    /// into `out`.
    fn dirs_in(&self, text: &[u8], out: &mut BTreeSet<PathBuf>) {
        let Ok(memberships) = cgroup::parse(text) else { return };
        for (hierarchy, path) in memberships {
            let (hierarchy, path) = (String::from_utf8_lossy(hierarchy), String::from_utf8_lossy(path));
            for c in cgroup_limits::ancestors(&path) {
                if let Ok(dir) = self.mounts.dir(&hierarchy, c) {
                    out.insert(dir);
                }
            }
        }
    }

    /// Watches `dir` (once).
    fn watch(&mut self, dir: &Path) {
        if self.wds.contains_key(dir) {
            return;
        }
        match inotify::add_watch(&self.fd, dir, inotify::WatchFlags::MODIFY | inotify::WatchFlags::ONLYDIR) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
                self.wds.insert(dir.to_path_buf(), wd);
            }
            Err(e) => tracing::debug!("inotify triggers: cannot watch {}: {e}", dir.display()),
        }
    }

    /// How many cgroup directories are watched.
    pub fn watched(&self) -> usize {
        self.wds.len()
    }
}

impl Source for Inotify {
    fn kind(&self) -> Kind {
        Kind::Inotify
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn drain(&mut self, out: &mut Vec<Recheck>) -> usize {
        let mut n = 0;
        let mut gone = Vec::new();
        let mut reader = inotify::Reader::new(&self.fd, &mut self.buf);
        loop {
            let ev = match reader.next() {
                Ok(ev) => ev,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            };
            n += 1;
            let flags = ev.events();
            if flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
                self.lost = self.lost.saturating_add(1);
                out.push(Recheck::All);
                continue;
            }
            if flags.contains(inotify::ReadFlags::IGNORED) {
                gone.push(ev.wd());
                continue;
            }
            let limit = ev.file_name().and_then(|n| n.to_str().ok()).is_some_and(cgroup_limits::is_limit_file);
            if limit && let Some(dir) = self.dirs.get(&ev.wd()) {
                out.push(Recheck::Cgroup(dir.clone()));
            }
        }
        // A removed cgroup's watch is gone with it.
        for wd in gone {
            if let Some(dir) = self.dirs.remove(&wd) {
                self.wds.remove(&dir);
            }
        }
        n
    }

    fn lost(&self) -> u64 {
        self.lost
    }

    fn follow(&mut self, pids: &[u32]) {
        let wanted: BTreeSet<u32> = pids.iter().copied().chain([std::process::id()]).collect();
        // Every one read again every `ASK_AGAIN`: a process may have moved
        // to another cgroup; in between, only those not followed yet.
        if super::ask_all(self.asked) {
            self.pids.clear();
            self.asked = Some(std::time::Instant::now());
        } else {
            self.pids.retain(|pid, _| wanted.contains(pid));
        }
        // Processes in the same cgroups say the same in their `cgroup`
        // file: each distinct text is held once, and turned into
        // directories once.
        let mut texts: BTreeSet<Arc<[u8]>> = self.pids.values().cloned().collect();
        let mut buf = Vec::new();
        for &pid in &wanted {
            // A process gone or unreadable is left to the timer.
            if self.pids.contains_key(&pid) || read_cgroup_file(pid, &mut buf).is_err() {
                continue;
            }
            let text = match texts.get(buf.as_slice()) {
                Some(t) => Arc::clone(t),
                None => {
                    let t: Arc<[u8]> = Arc::from(buf.as_slice());
                    texts.insert(Arc::clone(&t));
                    t
                }
            };
            self.pids.insert(pid, text);
        }
        let mut live: BTreeSet<PathBuf> = BTreeSet::new();
        for text in &texts {
            self.dirs_in(text, &mut live);
        }
        for dir in &live {
            self.watch(dir);
        }
        let stale: Vec<(PathBuf, i32)> =
            self.wds.iter().filter(|(d, _)| !live.contains(*d)).map(|(d, w)| (d.clone(), *w)).collect();
        for (dir, wd) in stale {
            let _ = inotify::remove_watch(&self.fd, wd);
            self.wds.remove(&dir);
            self.dirs.remove(&wd);
        }
    }
}
