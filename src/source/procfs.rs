//! [`Procfs`]: the [`Source`] over `/proc`, cgroupfs and `/sys`.

use std::cell::RefCell;
use std::io;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::cgroups::CgroupMounts;
use super::mock::Mock;
use super::stat::{PF_EXITING, PF_KTHREAD, parse_stat, parse_stat_flags};
use super::{FileId, MAX_FILE, MountView, SEIZE_RETRIES, STOP_TIMEOUT, Source, Target, unsupported};
use crate::Error;
use crate::fdcache::{FdCache, Shape};
use crate::ptrace::{self, Failure};

/// The /proc source: a live process, the node, or canned text for tests.
///
/// ```no_run
/// use fdir::Procfs;
/// let me = Procfs::live();           // this process
/// let init = Procfs::pid(1);          // another process, pinned to its start time
/// let node = Procfs::system();        // the node: /proc/sys, /proc/modules, securityfs ...
/// let canned = Procfs::mock("", "", ""); // canned text (maps, status, cgroup)
/// ```
#[derive(Debug)]
pub struct Procfs {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Process(ProcessDir),
    Node(NodeDir),
    Mock(Mock),
    Failed { pid: Option<u32>, path: PathBuf, kind: FailKind },
}

#[derive(Debug)]
enum FailKind {
    Gone,
    Denied,
    Other(String),
}

/// A process's directory opened and not yet pinned to its identity
/// ([`Procfs::open_once`]): what a one-shot check of every process opens
/// while the task table's program loads, to pin with the table after.
#[derive(Debug)]
pub(crate) struct Opened(ProcessDir);

impl Opened {
    /// The process, pinned to its identity: by `known` (its start time in
    /// clock ticks and its name), where the caller knows it to be the
    /// process this directory names (`tasks::Reader::identity`: read after
    /// the open, of a process started before it), else by its `stat`. The
    /// record is kept for the process's check ([`ProcessDir::record`]).
    pub(crate) fn pin(self, known: Option<super::tasks::Entry>) -> Result<Procfs, Error> {
        let Opened(mut dir) = self;
        let (name, start_time) = match known {
            Some(entry) => {
                let known = (entry.name(), entry.start_ticks);
                // The check's first question to the table is answered from it.
                *dir.record.get_mut() = Some(Box::new(entry));
                known
            }
            None => {
                let mut buf = Vec::with_capacity(1024);
                dir.read("stat", &mut buf)?;
                let (name, _, start_time) = parse_stat(&buf).ok_or_else(|| Error::Parse {
                    path: dir.path_of("stat"),
                    message: "not a stat line (no start time after the command name)".into(),
                })?;
                (name, start_time)
            }
        };
        dir.name = name;
        dir.start_time = start_time;
        Ok(Procfs { inner: Inner::Process(dir) })
    }
}

#[derive(Debug)]
struct ProcessDir {
    root: PathBuf,
    pid: u32,
    start_time: u64,
    name: String,
    dir: OwnedFd,
    /// Found on first use, unless given.
    cgroups: OnceLock<Result<Arc<CgroupMounts>, String>>,
    /// Kept-open files (see [`crate::fdcache`]).
    fds: FdCache,
    /// The `task` directory, kept open and rewound for each listing, and the
    /// buffer its entries are read into (no allocation per listing).
    task: RefCell<Option<(OwnedFd, Vec<std::mem::MaybeUninit<u8>>)>>,
    /// The last cgroup directory a control file was read from, and the
    /// buffer the files' paths are built in (no allocation a file).
    cgroup_path: RefCell<CgroupPath>,
    /// The task table's record that pinned this process, until its first
    /// question to the table ([`ProcessDir::record`]).
    record: RefCell<Option<Box<super::tasks::Entry>>>,
}

/// A cgroup directory found by [`ProcessDir::set_cgroup_dir`] (the mounts are
/// found once, so the same hierarchy and cgroup give the same directory),
/// as a path with a slash at its end, `dir_len` bytes long (0: none yet),
/// followed in `path` by the file last read.
#[derive(Debug, Default)]
struct CgroupPath {
    hierarchy: String,
    cgroup: String,
    dir_len: usize,
    path: String,
}

thread_local! {
    /// Names a listing no longer holds, reused by the next listing on this
    /// thread (listings of directories of different sizes allocate nothing
    /// once warm). The thread's, as the list they come from is
    /// (`observe.rs`'s scratch): one pool a thread, not one a process.
    static SPARE_NAMES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Whether a file of `/proc/PID` may be kept open, and its [`Shape`]: `maps`
/// is a sequence of records whose empty read through a kept descriptor
/// means it is stale (after an exec); the others are `single_open` files,
/// produced whole by one read. Files that bind state when opened are never
/// kept: `mountinfo` and `mounts` (the mount namespace), `mem` (the address
/// space).
fn keep(rel: &str) -> Option<Shape> {
    match rel {
        "maps" => Some(Shape::RecordsOrStale),
        "status" | "stat" | "cgroup" | "limits" => Some(Shape::Whole),
        _ if rel.starts_with("attr/") => Some(Shape::Whole),
        _ if rel.starts_with("task/")
            && (rel.ends_with("/status") || rel.ends_with("/cgroup") || rel.ends_with("/stat")) =>
        {
            Some(Shape::Whole)
        }
        _ => None,
    }
}

/// Whether the `mountinfo` text `text` has a line of the mount `id` (its
/// first field).
fn shows_mount(text: &[u8], id: u64) -> bool {
    text.split(|&c| c == b'\n')
        .any(|line| line.split(|&c| c == b' ').next().and_then(crate::canon::mounts::dec) == Some(id))
}

/// The key a `mountinfo` descriptor is kept under for `view`, written into
/// `out` (five numbers of at most 20 digits and their separators fit).
fn mounts_key<'a>(view: &MountView, out: &'a mut [u8; 128]) -> Option<&'a str> {
    let mut w = &mut out[..];
    let (ns, root) = (view.namespace, view.root);
    write!(w, "mountinfo {}:{} {}:{} {}", ns.0, ns.1, root.0, root.1, view.root_mount).ok()?;
    let len = 128 - w.len();
    out.get(..len).and_then(|k| std::str::from_utf8(k).ok())
}

/// The [`Shape`] of a node file: sysctls (the handler writes the whole
/// value), sysfs and securityfs attributes (one `show`, or a buffer read
/// whole) and `cmdline` (`single_open`) are produced by one read; anything
/// else (`/proc/modules`, one record a module) is read to an empty read.
fn node_shape(rel: &str) -> Shape {
    if rel.starts_with("proc/sys/") || rel.starts_with("sys/") || rel == "proc/cmdline" {
        Shape::Whole
    } else {
        Shape::Records
    }
}

#[derive(Debug)]
struct NodeDir {
    proc_root: PathBuf,
    sys_root: PathBuf,
    proc: OwnedFd,
    /// `None` if the sys root does not exist (every read below it is then
    /// "not found").
    sys: Option<OwnedFd>,
    hostname: String,
    boot_id: String,
    /// Kept-open files (sysctls, securityfs, cmdline: none binds state at open).
    fds: FdCache,
}

pub(super) fn errno_error(e: rustix::io::Errno, op: &'static str, path: PathBuf) -> Error {
    match e {
        rustix::io::Errno::NOENT => Error::NotFound { path },
        _ => Error::io(op, path, io::Error::from(e)),
    }
}

fn errno_to_error(e: rustix::io::Errno, op: &'static str, path: PathBuf, pid: u32) -> Error {
    match e {
        rustix::io::Errno::SRCH => Error::Gone { pid },
        e => errno_error(e, op, path),
    }
}

/// Reads an open file to its end into `buf` with few, large reads.
fn read_fd(fd: &OwnedFd, buf: &mut Vec<u8>) -> Result<(), rustix::io::Errno> {
    buf.clear();
    loop {
        // Start small (most /proc files are a few KiB; one buffer per target
        // adds up on a node of a thousand processes) and double as needed.
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let n = rustix::io::read(fd, rustix::buffer::spare_capacity(buf))?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() > MAX_FILE {
            return Err(rustix::io::Errno::FBIG);
        }
    }
}

fn too_big(path: PathBuf) -> Error {
    Error::Parse { path, message: format!("larger than {} MiB", MAX_FILE >> 20) }
}

/// Reads the file `rel` below the directory `dir` (`None`: the directory
/// does not exist); `path` names it in errors.
pub(super) fn read_at(
    dir: Option<&OwnedFd>,
    rel: &str,
    path: impl Fn() -> PathBuf,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    buf.clear();
    let dir = dir.ok_or_else(|| Error::NotFound { path: path() })?;
    let fd = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty())
        .map_err(|e| errno_error(e, "open", path()))?;
    read_fd(&fd, buf).map_err(|e| match e {
        rustix::io::Errno::FBIG => too_big(path()),
        e => errno_error(e, "read", path()),
    })
}

/// The names in an open directory, without `.` and `..`; with `files_only`,
/// only regular files (and entries of unknown type).
fn list_dir(dir: &OwnedFd, files_only: bool, out: &mut Vec<String>) -> Result<(), rustix::io::Errno> {
    out.clear();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        if files_only && !matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown) {
            continue;
        }
        if let Ok(name) = entry.file_name().to_str()
            && name != "."
            && name != ".."
        {
            out.push(name.to_owned());
        }
    }
    out.sort_unstable();
    Ok(())
}

/// What every process of this kernel has alike, found once from
/// `/proc/self` and never read again per process: the kinds of namespace
/// (`/proc/PID/ns` lists one fixed table of the kernel's, whatever the
/// process) and the LSM attribute files no process can have (an LSM's
/// directory not built in: ENOENT; no module providing the attribute:
/// EINVAL or EOPNOTSUPP — which modules are loaded is fixed at boot, and
/// neither answer depends on the process). Only under the live `/proc`: a
/// copied tree is read as it is.
#[derive(Debug)]
struct NodeFacts {
    /// The entries of `ns`, sorted.
    ns: Vec<String>,
    /// The `attr/...` files of [`crate::canon::lsm::ATTRS`] that fail for
    /// every process, with the error a read gives and its words
    /// ([`Source::refused_everywhere`]).
    absent_attrs: Vec<(String, rustix::io::Errno, Arc<str>)>,
    /// The device of the namespace filesystem (`nsfs`): one for every
    /// namespace of the kernel, so that a namespace's identity is its
    /// link's inode (`readlink`, `net:[4026531840]`), without the `stat`
    /// that makes the kernel build a path to the namespace.
    nsfs_dev: u64,
}

/// [`NodeFacts`] of this kernel, `None` when `/proc/self` cannot tell.
fn node_facts() -> Option<&'static NodeFacts> {
    static FACTS: OnceLock<Option<NodeFacts>> = OnceLock::new();
    FACTS
        .get_or_init(|| {
            let me =
                rustix::fs::open("/proc/self", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .ok()?;
            let ns_dir =
                rustix::fs::openat(&me, "ns", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .ok()?;
            let mut ns = Vec::new();
            list_dir(&ns_dir, false, &mut ns).ok()?;
            // Every link of `ns` must be on the one device.
            let mut devs = ns.iter().filter_map(|n| rustix::fs::statat(&ns_dir, n.as_str(), AtFlags::empty()).ok());
            #[allow(clippy::useless_conversion)]
            let nsfs_dev = u64::from(devs.next()?.st_dev);
            #[allow(clippy::useless_conversion)]
            if devs.any(|st| u64::from(st.st_dev) != nsfs_dev) {
                return None;
            }
            let mut absent_attrs = Vec::new();
            let mut buf = Vec::with_capacity(256);
            for attr in crate::canon::lsm::ATTRS {
                let rel = format!("attr/{attr}");
                let read = rustix::fs::openat(&me, rel.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .and_then(|fd| read_fd(&fd, &mut buf));
                if let Err(e @ (rustix::io::Errno::NOENT | rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP)) =
                    read
                {
                    let why = format!("every process's {rel}: {}", std::io::Error::from(e));
                    absent_attrs.push((rel, e, why.into()));
                }
            }
            Some(NodeFacts { ns, absent_attrs, nsfs_dev })
        })
        .as_ref()
}

/// The pids under `proc_root` (the numeric directories), sorted.
pub fn list_processes(proc_root: &Path) -> Result<Vec<u32>, Error> {
    let mut pids = Vec::with_capacity(512);
    let entries = std::fs::read_dir(proc_root).map_err(|e| Error::io("list", proc_root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", proc_root, e))?;
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// The pids of the processes of this node, as fdir's `/proc` lists them, sorted.
pub fn live_processes() -> Result<Vec<u32>, Error> {
    list_processes(Path::new("/proc"))
}

/// The link count of `/proc`: its fixed entries plus one a process (0 if it
/// cannot be read), to size tables before the processes are listed.
pub fn proc_links() -> usize {
    rustix::fs::stat("/proc").map_or(0, |st| usize::try_from(st.st_nlink).unwrap_or(0))
}

/// The number of tasks (threads) of the node, from `/proc/loadavg`'s
/// fourth field (`running/total`): what a walk of every task visits.
pub fn node_tasks() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// The identity of `rel` under `dir` (a path from the current directory
/// with [`rustix::fs::CWD`]), following links, and the id of the mount it
/// is on (`statx`'s `STATX_MNT_ID`), where the kernel says both.
pub(crate) fn mount_at(dir: impl AsFd, rel: &str) -> Option<(FileId, u64)> {
    let want = rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID;
    let st = rustix::fs::statx(dir, rel, AtFlags::empty(), want).ok()?;
    if (!st.stx_mask & want.bits()) != 0 {
        return None;
    }
    let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
    Some((FileId { dev, ino: st.stx_ino }, st.stx_mnt_id))
}

/// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): process start
/// times are only meaningful within one boot.
pub fn boot_id() -> Result<String, Error> {
    let path = Path::new("/proc/sys/kernel/random/boot_id");
    let id = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Ok(id.trim().to_owned())
}

impl Procfs {
    /// Whether the task table's record that pinned this process is still
    /// held for its check's first question to the table.
    #[cfg(test)]
    pub(crate) fn holds_record(&self) -> bool {
        matches!(&self.inner, Inner::Process(d) if d.record.borrow().is_some())
    }

    /// Keeps no file open from now on (and closes those kept): for a source
    /// read once, as in a one-shot check, where keeping costs more than it
    /// saves, and each file is closed by the core that read it, not all of
    /// them in the exit on one core.
    pub fn keep_nothing(&self) {
        match &self.inner {
            Inner::Process(d) => {
                d.fds.keep_nothing();
                d.task.borrow_mut().take();
            }
            Inner::Node(n) => n.fds.keep_nothing(),
            Inner::Mock(_) | Inner::Failed { .. } => {}
        }
    }

    /// How many files (and directories) it keeps open for the next read.
    pub fn kept_files(&self) -> usize {
        match &self.inner {
            Inner::Process(d) => d.fds.len() + usize::from(d.task.borrow().is_some()),
            Inner::Node(n) => n.fds.len(),
            Inner::Mock(_) | Inner::Failed { .. } => 0,
        }
    }

    /// This process.
    ///
    /// If `/proc/self` cannot be opened, every read reports why.
    pub fn live() -> Procfs {
        Procfs::pid(std::process::id())
    }

    /// Another process, pinned to its identity (pid and start time) at this
    /// call. If it cannot be opened, every read reports why ([`Error::Gone`],
    /// [`Error::PermissionDenied`]); see [`Procfs::try_pid`] to find out at once.
    pub fn pid(pid: u32) -> Procfs {
        Procfs::try_pid(pid).unwrap_or_else(|e| Procfs::failed(Some(pid), PathBuf::from(format!("/proc/{pid}")), &e))
    }

    /// Another process, pinned to its identity; fails if it cannot be opened.
    pub fn try_pid(pid: u32) -> Result<Procfs, Error> {
        Procfs::try_pid_at("/proc", pid)
    }

    /// [`Procfs::try_pid`] for a process read once (a one-shot check): it
    /// keeps no file open (see [`Procfs::keep_nothing`]), from the `stat`
    /// read that pins it on.
    pub fn try_pid_once(pid: u32) -> Result<Procfs, Error> {
        Procfs::open_pid("/proc".into(), pid, true)
    }

    /// A process under another proc root (a captured or bind-mounted tree).
    pub fn try_pid_at(root: impl Into<PathBuf>, pid: u32) -> Result<Procfs, Error> {
        Procfs::open_pid(root.into(), pid, false)
    }

    /// [`Procfs::try_pid_once`] but for its pin: the directory opened,
    /// its `stat` not read yet ([`Opened::pin`]).
    pub(crate) fn open_once(pid: u32) -> Result<Opened, Error> {
        Procfs::open_dir("/proc".into(), pid, true).map(Opened)
    }

    fn open_pid(root: PathBuf, pid: u32, once: bool) -> Result<Procfs, Error> {
        Opened(Procfs::open_dir(root, pid, once)?).pin(None)
    }

    fn open_dir(root: PathBuf, pid: u32, once: bool) -> Result<ProcessDir, Error> {
        let path = root.join(pid.to_string());
        let dir = rustix::fs::open(&path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::SRCH => Error::Gone { pid },
                e => errno_to_error(e, "open", path.clone(), pid),
            })?;
        let dir = ProcessDir {
            root,
            pid,
            start_time: 0,
            name: String::new(),
            dir,
            cgroups: OnceLock::new(),
            fds: FdCache::default(),
            task: RefCell::new(None),
            cgroup_path: RefCell::new(CgroupPath::default()),
            record: RefCell::new(None),
        };
        if once {
            dir.fds.keep_nothing();
        }
        Ok(dir)
    }

    /// Reads the cgroup control files of this process below `mounts` instead
    /// of the hierarchies fdir finds mounted (from `/proc/self/mountinfo`, on
    /// first use). Share one [`CgroupMounts::discover`] between many sources,
    /// or point it at a temporary tree in tests. No effect on other sources.
    #[must_use]
    pub fn with_cgroup_mounts(self, mounts: CgroupMounts) -> Procfs {
        if let Inner::Process(d) = &self.inner {
            let _ = d.cgroups.set(Ok(Arc::new(mounts)));
        }
        self
    }

    /// The node, through `/proc` and `/sys`. If `/proc` cannot be opened,
    /// every read reports why; see [`Procfs::try_system`].
    pub fn system() -> Procfs {
        Procfs::try_system().unwrap_or_else(|e| Procfs::failed(None, PathBuf::from("/proc"), &e))
    }

    /// The node, through `/proc` and `/sys`; fails if `/proc` cannot be opened.
    pub fn try_system() -> Result<Procfs, Error> {
        Procfs::system_at("/proc", "/sys")
    }

    /// The node, through other proc and sys roots: a captured copy, or a
    /// temporary tree a test edits (`PROC/sys/kernel/kptr_restrict`,
    /// `SYS/kernel/security/lockdown` ...). A missing sys root reads as a
    /// node without securityfs. The identity is read from
    /// `PROC/sys/kernel/hostname` and `PROC/sys/kernel/random/boot_id`
    /// (empty where they do not exist).
    pub fn system_at(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Result<Procfs, Error> {
        let (proc_root, sys_root) = (proc_root.into(), sys_root.into());
        let open = |p: &Path| rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        let proc = open(&proc_root).map_err(|e| errno_error(e, "open", proc_root.clone()))?;
        let sys = match open(&sys_root) {
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::NOENT) => None,
            Err(e) => return Err(errno_error(e, "open", sys_root)),
        };
        let mut node = NodeDir {
            proc_root,
            sys_root,
            proc,
            sys,
            hostname: String::new(),
            boot_id: String::new(),
            fds: FdCache::default(),
        };
        let mut buf = Vec::with_capacity(64);
        for (rel, field) in [("sys/kernel/hostname", 0), ("sys/kernel/random/boot_id", 1)] {
            let value = match read_at(Some(&node.proc), rel, || node.proc_root.join(rel), &mut buf) {
                Ok(()) => String::from_utf8_lossy(buf.trim_ascii()).into_owned(),
                Err(Error::NotFound { .. }) => String::new(),
                Err(e) => return Err(e),
            };
            if field == 0 {
                node.hostname = value;
            } else {
                node.boot_id = value;
            }
        }
        Ok(Procfs { inner: Inner::Node(node) })
    }

    fn failed(pid: Option<u32>, path: PathBuf, e: &Error) -> Procfs {
        let kind = match e {
            Error::Gone { .. } => FailKind::Gone,
            Error::PermissionDenied { .. } => FailKind::Denied,
            e => FailKind::Other(e.to_string()),
        };
        Procfs { inner: Inner::Failed { pid, path, kind } }
    }
}

impl Procfs {
    /// The `flags` field of `/proc/PID/stat` (PF_* bits; PF_KTHREAD marks a
    /// kernel thread).
    pub fn stat_flags(&self) -> Result<u64, Error> {
        let mut buf = Vec::with_capacity(512);
        self.read("stat", &mut buf)?;
        parse_stat_flags(&buf)
            .ok_or_else(|| Error::Parse { path: self.path_of("stat"), message: "no flags field".into() })
    }

    /// Whether this is a kernel thread (`PF_KTHREAD`, fixed for the life of
    /// a task): from the task table's record that pinned it, where one did
    /// and its check has not yet taken it, else from `stat`.
    pub fn is_kernel_thread(&self) -> Result<bool, Error> {
        if let Inner::Process(d) = &self.inner
            && let Some(e) = d.record.borrow().as_ref()
        {
            return Ok(e.kernel_thread);
        }
        self.stat_flags().map(|flags| flags & PF_KTHREAD != 0)
    }

    /// The pinned pid, for a process source.
    pub fn pid_number(&self) -> Option<u32> {
        match &self.inner {
            Inner::Process(d) => Some(d.pid),
            Inner::Failed { pid, .. } => *pid,
            Inner::Node(_) | Inner::Mock(_) => None,
        }
    }
}

impl ProcessDir {
    fn path_of(&self, rel: &str) -> PathBuf {
        self.root.join(self.pid.to_string()).join(rel)
    }

    /// The [`NodeFacts`] that hold for this process: those of the kernel,
    /// when it is read through the live `/proc`.
    fn facts(&self) -> Option<&'static NodeFacts> {
        if self.root == Path::new("/proc") { node_facts() } else { None }
    }

    /// The error a read of `rel` gives for every process of this kernel,
    /// known without reading ([`NodeFacts`]).
    fn known_absent(&self, rel: &str) -> Option<rustix::io::Errno> {
        self.absent_attr(rel).map(|(_, e, _)| *e)
    }

    /// The [`NodeFacts`] entry of `rel`, an `attr/...` file every process
    /// of this kernel is refused.
    fn absent_attr(&self, rel: &str) -> Option<&'static (String, rustix::io::Errno, Arc<str>)> {
        if !rel.starts_with("attr/") {
            return None;
        }
        self.facts()?.absent_attrs.iter().find(|(a, ..)| a == rel)
    }

    /// `f` of the installed task table's record of this process
    /// ([`super::tasks::lookup`]): first the record that pinned it, where
    /// one did ([`super::tasks::seed`]).
    fn record<R>(&self, f: impl FnOnce(&super::tasks::Entry) -> R) -> Option<R> {
        let pinned = self.record.borrow_mut().take();
        if let Some(entry) = pinned {
            super::tasks::seed(*entry);
        }
        super::tasks::lookup(self.pid, self.start_time, f)
    }

    /// The identity of the namespace link `rel` (`ns/net`) from its text:
    /// `None` where the [`NodeFacts`] do not hold or the text is not a
    /// namespace's (the caller then asks `stat`).
    fn namespace_link(&self, rel: &str) -> Option<Result<FileId, Error>> {
        let facts = self.facts()?;
        if !rel.starts_with("ns/") || rel.len() > 40 {
            return None;
        }
        // This round's task table, where one is installed and has the process.
        if let Some(i) =
            rel.strip_prefix("ns/").and_then(|name| super::tasks::NAMESPACES.iter().position(|n| *n == name))
            && let Some(ino) = self.record(|e| e.ns.get(i).copied().unwrap_or(0)).filter(|&ino| ino != 0)
        {
            return Some(Ok(FileId { dev: facts.nsfs_dev, ino: u64::from(ino) }));
        }
        let mut text = [0u8; 64];
        // Through `ns` kept open, where descriptors are kept (and the
        // budget has room: opening it for one link would cost more): the
        // directory stands for the process, not for a namespace (each link
        // is resolved at the call), so it never shows stale state.
        let read = match rel.strip_prefix("ns/") {
            Some(name) if self.fds.holds_or_can_keep("ns/") => {
                let open = || {
                    rustix::fs::openat(
                        &self.dir,
                        "ns",
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                };
                self.fds.at("ns/", open, |ns| rustix::fs::readlinkat_raw(ns, name, &mut text[..]))
            }
            _ => rustix::fs::readlinkat_raw(&self.dir, rel, &mut text[..]),
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => return Some(Err(errno_to_error(e, "stat", self.path_of(rel), self.pid))),
        };
        let text = text.get(..n)?;
        let open = text.iter().position(|&b| b == b'[')?;
        let digits = text.get(open + 1..text.len().checked_sub(1)?)?;
        if text.last() != Some(&b']') || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let ino = std::str::from_utf8(digits).ok()?.parse().ok()?;
        Some(Ok(FileId { dev: facts.nsfs_dev, ino }))
    }

    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(e) = self.known_absent(rel) {
            buf.clear();
            return Err(errno_to_error(e, "read", self.path_of(rel), self.pid));
        }
        let open = || rustix::fs::openat(&self.dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty());
        let result = match keep(rel) {
            Some(shape) => self.fds.read(rel, shape, MAX_FILE, open, buf),
            None => open().and_then(|fd| read_fd(&fd, buf)),
        };
        result.map_err(|e| match e {
            rustix::io::Errno::FBIG => too_big(self.path_of(rel)),
            e => errno_to_error(e, "read", self.path_of(rel), self.pid),
        })
    }

    /// `mountinfo`, through a descriptor kept for `view` where there is one
    /// (see [`Source::read_mounts`]). The kernel binds the descriptor to the
    /// namespace and root the process has when it is opened, so it is kept
    /// under the view's identities, and only once its text shows the view's
    /// root mount: it was opened in that view (a mount belongs to one
    /// namespace, and a table read from another root does not show it),
    /// not in one the process passed through between the view's read and
    /// the open. A view that changes finds no descriptor under its key and
    /// opens one; the old one, unused, is closed at the observation's end.
    fn read_mounts(&self, view: Option<&MountView>, buf: &mut Vec<u8>) -> Result<(), Error> {
        let mut key = [0u8; 128];
        let Some((view, key)) = view.filter(|_| self.fds.keeps()).and_then(|v| Some((v, mounts_key(v, &mut key)?)))
        else {
            return self.read("mountinfo", buf);
        };
        let open = || rustix::fs::openat(&self.dir, "mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty());
        self.fds
            .read_keeping_if(key, Shape::Records, MAX_FILE, open, |text| shows_mount(text, view.root_mount), buf)
            .map_err(|e| match e {
                rustix::io::Errno::FBIG => too_big(self.path_of("mountinfo")),
                e => errno_to_error(e, "read", self.path_of("mountinfo"), self.pid),
            })
    }

    /// The thread ids, from the `task` directory kept open and rewound.
    #[inline(never)]
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        let err = |e| errno_to_error(e, "read", self.path_of("task"), self.pid);
        let mut task = self.task.borrow_mut();
        if task.is_none() {
            let fd = rustix::fs::openat(
                &self.dir,
                "task",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| errno_to_error(e, "open", self.path_of("task"), self.pid))?;
            *task = Some((fd, vec![std::mem::MaybeUninit::uninit(); 4096]));
        }
        let Some((fd, buf)) = task.as_mut() else {
            return Err(Error::Bug("the task directory was just opened".into()));
        };
        let listed = rustix::fs::seek(&*fd, rustix::fs::SeekFrom::Start(0)).map(drop).and_then(|()| {
            let mut dir = rustix::fs::RawDir::new(&*fd, buf.as_mut_slice());
            while let Some(entry) = dir.next() {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                    let tid =
                        name.iter().fold(0u32, |acc, d| acc.saturating_mul(10).saturating_add(u32::from(d - b'0')));
                    out.push(tid);
                }
            }
            Ok(())
        });
        if let Err(e) = listed {
            *task = None;
            return Err(err(e));
        }
        if !self.fds.keeps() {
            *task = None;
        }
        out.sort_unstable();
        Ok(())
    }

    fn list(&self, rel: &str, files_only: bool, out: &mut Vec<String>) -> Result<(), Error> {
        out.clear();
        if rel == "ns"
            && let Some(facts) = self.facts()
        {
            out.extend(facts.ns.iter().cloned());
            return Ok(());
        }
        let dir =
            rustix::fs::openat(&self.dir, rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| errno_to_error(e, "open", self.path_of(rel), self.pid))?;
        list_dir(&dir, files_only, out).map_err(|e| errno_to_error(e, "read", self.path_of(rel), self.pid))
    }

    /// Points `cp` at `cgroup`'s directory in `hierarchy` (its path with a
    /// slash at its end, `dir_len` bytes), where it is not already: no
    /// allocation once its buffers are long enough. `Ok(Some(dir))` where the
    /// path is not UTF-8 (the mount point of a hierarchy): the caller uses
    /// that path, and `cp` is left pointing nowhere.
    fn set_cgroup_dir(&self, cp: &mut CgroupPath, hierarchy: &str, cgroup: &str) -> Result<Option<PathBuf>, Error> {
        if cp.dir_len != 0 && cp.hierarchy == hierarchy && cp.cgroup == cgroup {
            return Ok(None);
        }
        cp.dir_len = 0;
        let (dir, rel) = self.cgroup_mounts(hierarchy, cgroup)?.dir_parts(hierarchy, cgroup)?;
        let Some(dir) = dir.to_str() else {
            return Ok(Some(if rel.is_empty() { dir.to_path_buf() } else { dir.join(rel) }));
        };
        cp.path.clear();
        cp.path.push_str(dir);
        if !rel.is_empty() {
            if !cp.path.ends_with('/') {
                cp.path.push('/');
            }
            cp.path.push_str(rel);
        }
        if !cp.path.ends_with('/') {
            cp.path.push('/');
        }
        cp.dir_len = cp.path.len();
        hierarchy.clone_into(&mut cp.hierarchy);
        cgroup.clone_into(&mut cp.cgroup);
        Ok(None)
    }

    /// The cgroup hierarchies fdir sees, found once (the error says which
    /// cgroup was asked for).
    fn cgroup_mounts(&self, hierarchy: &str, cgroup: &str) -> Result<&CgroupMounts, Error> {
        match self.cgroups.get_or_init(|| CgroupMounts::discover_shared().map_err(|e| e.to_string())) {
            Ok(m) => Ok(m),
            Err(reason) => Err(Error::Unavailable {
                what: format!("cgroup {hierarchy}:{cgroup}"),
                reason: format!("cannot find the cgroup mounts: {reason}"),
            }),
        }
    }
}

/// A cgroup directory that is gone reads ENODEV (removed while open) or ENOENT.
pub(super) fn cgroup_errno(e: rustix::io::Errno, op: &'static str, path: PathBuf) -> Error {
    match e {
        rustix::io::Errno::NODEV => Error::NotFound { path },
        e => errno_error(e, op, path),
    }
}

impl NodeDir {
    /// The directory and the rest of a node path: `proc/...` or `sys/...`.
    fn split<'a>(&self, rel: &'a str) -> Option<(Option<&OwnedFd>, &Path, &'a str)> {
        if let Some(rest) = rel.strip_prefix("proc/") {
            Some((Some(&self.proc), &self.proc_root, rest))
        } else {
            rel.strip_prefix("sys/").map(|rest| (self.sys.as_ref(), self.sys_root.as_path(), rest))
        }
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        match self.split(rel) {
            Some((_, root, rest)) => root.join(rest),
            None => Path::new("/").join(rel),
        }
    }
}

impl ProcessDir {
    /// Whether `tid` is (still) a thread of the pinned process.
    fn has_thread(&self, tid: u32) -> bool {
        rustix::fs::statat(&self.dir, format!("task/{tid}"), AtFlags::empty()).is_ok()
    }

    /// The tracer of thread `tid` (`TracerPid`), if it can be read.
    fn tracer_of(&self, tid: u32) -> Option<u32> {
        let mut buf = Vec::with_capacity(2048);
        self.read(&format!("task/{tid}/status"), &mut buf).ok()?;
        let v = crate::canon::status::field(&buf, "TracerPid")?;
        std::str::from_utf8(v).ok()?.parse().ok()
    }

    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        out.clear();
        let thread = format!("task/{tid}");
        if self.pid == std::process::id() {
            return Err(Error::Unavailable {
                what: "the seccomp filter programs of fdir's own threads".into(),
                reason: "fdir cannot stop its own threads".into(),
            });
        }
        // ptrace takes thread ids as this process sees them: only a thread
        // listed by the real /proc of fdir's own pid namespace may be stopped
        // (never one named by a copy or another namespace's proc).
        let host_proc = self.root == Path::new("/proc")
            && rustix::fs::fstatfs(&self.dir).is_ok_and(|f| f.f_type == rustix::fs::PROC_SUPER_MAGIC);
        if !host_proc {
            return Err(Error::Unavailable {
                what: format!("the seccomp filter programs of {}", self.path_of(&thread).display()),
                reason: "fdir stops threads only of processes listed in its own /proc".into(),
            });
        }
        // Checked first, so that a read that must fail never stops the target.
        let admin = rustix::thread::capabilities(None)
            .is_ok_and(|c| c.effective.contains(rustix::thread::CapabilitySet::SYS_ADMIN));
        if !admin {
            return Err(Error::NeedsPrivilege { what: "reading seccomp filter programs", privilege: "CAP_SYS_ADMIN" });
        }
        if !matches!(rustix::thread::secure_computing_mode(), Ok(rustix::thread::SecureComputingMode::Disabled)) {
            return Err(Error::Unavailable {
                what: "seccomp filter programs".into(),
                reason: "fdir runs under seccomp itself, and the kernel exports filters only to an unconfined tracer"
                    .into(),
            });
        }
        let mut result = ptrace::read_filters(tid, STOP_TIMEOUT);
        // A seize refused while another tracer (another fdir) held the thread
        // for a moment, gone by the time its status is read: try again, a few
        // times, before calling it a lack of privilege.
        for retry in 1..=SEIZE_RETRIES {
            match &result {
                Err(Failure::Refused(_)) if self.tracer_of(tid) == Some(0) && self.has_thread(tid) => {
                    std::thread::sleep(Duration::from_millis(u64::try_from(retry).unwrap_or(1)));
                    result = ptrace::read_filters(tid, STOP_TIMEOUT);
                }
                _ => break,
            }
        }
        match result {
            // A tid listed a moment ago may have exited and been reused by
            // another process: what was read counts only if it is still ours.
            Ok(_) if !self.has_thread(tid) => Err(Error::NotFound { path: self.path_of(&thread) }),
            Ok(f) => {
                *out = f.programs;
                Ok(f.stopped)
            }
            Err(Failure::Gone) => Err(Error::NotFound { path: self.path_of(&thread) }),
            Err(Failure::Refused(e)) => match self.tracer_of(tid) {
                Some(tracer) if tracer != 0 => Err(Error::Traced { tid, tracer: Some(tracer) }),
                _ if !self.has_thread(tid) => Err(Error::NotFound { path: self.path_of(&thread) }),
                // Allowed to trace, refused all the same: other tracers kept
                // taking the thread (other fdir readers), each for a moment.
                _ if may_seize() => Err(Error::Traced { tid, tracer: None }),
                _ if e == rustix::io::Errno::PERM || e == rustix::io::Errno::ACCESS => Err(Error::NeedsPrivilege {
                    what: "stopping a thread with ptrace",
                    privilege: "CAP_SYS_PTRACE and a kernel.yama.ptrace_scope below 3",
                }),
                _ => Err(Error::io("seize", self.path_of(&thread), io::Error::from(e))),
            },
            Err(Failure::NeedsAdmin) => {
                Err(Error::NeedsPrivilege { what: "reading seccomp filter programs", privilege: "CAP_SYS_ADMIN" })
            }
            Err(Failure::Unsupported(reason)) => {
                Err(Error::Unavailable { what: format!("the seccomp filter programs of thread {tid}"), reason })
            }
            Err(Failure::NotStopped(waited)) => Err(Error::NotStopped { tid, waited }),
            Err(Failure::Os(op, e)) => Err(Error::io(op, self.path_of(&thread), io::Error::from(e))),
            Err(Failure::Spawn(e)) => Err(Error::Spawn(e)),
            Err(Failure::Panicked) => Err(Error::Bug("the ptrace thread panicked (the target was let go)".into())),
        }
    }

    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let fd = rustix::fs::openat(&self.dir, "mem", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| errno_to_error(e, "open", self.path_of("mem"), self.pid))?;
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = addr.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
            match rustix::io::pread(&fd, rest, at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                // Nothing more can be read here (past the end of a mapped file).
                Err(rustix::io::Errno::IO | rustix::io::Errno::FAULT) => break,
                Err(e) => return Err(errno_to_error(e, "read", self.path_of("mem"), self.pid)),
            }
        }
        Ok(done)
    }

    fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        let fd = rustix::fs::openat(&self.dir, "pagemap", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| errno_to_error(e, "open", self.path_of("pagemap"), self.pid))?;
        let mut bytes = vec![0u8; out.len().saturating_mul(8)];
        let first = addr / PAGE * 8;
        let mut done = 0usize;
        while let Some(rest) = bytes.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = first.saturating_add(u64::try_from(done).unwrap_or(u64::MAX));
            match rustix::io::pread(&fd, rest, at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(errno_to_error(e, "read", self.path_of("pagemap"), self.pid)),
            }
        }
        Ok(pagemap_entries(bytes.get(..done).unwrap_or(&[]), out))
    }
}

/// The size of a page, as `pagemap` counts them.
pub(super) const PAGE: u64 = 4096;

/// Decodes `pagemap` bytes (little-endian 64-bit entries) into `out`:
/// returns how many whole entries there were.
pub(super) fn pagemap_entries(bytes: &[u8], out: &mut [u64]) -> usize {
    let mut n = 0;
    for (slot, e) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(e);
        *slot = u64::from_le_bytes(b);
        n += 1;
    }
    n
}

/// Whether this monitor may ptrace other processes: `CAP_SYS_PTRACE`, and
/// no Yama `ptrace_scope` of 3 (no attaching at all).
fn may_seize() -> bool {
    let cap = rustix::thread::capabilities(None)
        .is_ok_and(|c| c.effective.contains(rustix::thread::CapabilitySet::SYS_PTRACE));
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    cap && scope.trim() != "3"
}

impl Procfs {
    // The canned sources: the mini-language is `mock.rs`'s.

    /// Canned text of one single-threaded process: `maps`, `status` and `cgroup`.
    pub fn mock(maps: &str, status: &str, cgroups: &str) -> Procfs {
        Procfs::mock_files([
            ("maps", maps),
            ("status", status),
            ("cgroup", cgroups),
            ("task/1/status", status),
            ("task/1/cgroup", cgroups),
        ])
    }

    /// Canned files of a process, by path relative to `/proc/PID`
    /// (`"task/7/status"`). Threads are the numbers under `task/`; a
    /// directory lists the names below it. [`Source::stat`] of a file reads
    /// its content as `DEV:INO` (`"ns/net"` → `"4:4026531833"`), and `-` as a
    /// link that does not resolve. Cgroup control files are
    /// `cgroupfs/HIERARCHY/CGROUP/FILE` (`"cgroupfs/pids/app/pids.max"`,
    /// `"cgroupfs/unified/cgroup.max.depth"` for the root). `mem/HEX` holds
    /// the memory at address HEX (for [`Source::read_mem`]), `pagemap` the
    /// page map's entries from address 0 on (for [`Source::read_pagemap`]), and
    /// `task/TID/seccomp/N` the raw bytes of thread TID's filter program N
    /// (for [`Source::seccomp_programs`]; a `task/TID/seccomp/denied` entry
    /// makes that read need a privilege).
    ///
    pub fn mock_files<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>) -> Procfs {
        Procfs { inner: Inner::Mock(Mock::new(files, false)) }
    }

    /// Canned files of a node, by path below `/` (`"proc/sys/kernel/tainted"`,
    /// `"sys/kernel/security/lockdown"`). Its target is the node `mock`.
    pub fn mock_node_files<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>) -> Procfs {
        Procfs { inner: Inner::Mock(Mock::new(files, true)) }
    }
}

impl Source for Procfs {
    fn same_target(&self, target: &Target) -> Result<bool, Error> {
        match (&self.inner, target) {
            (Inner::Process(d), Target::Process { pid, start_time, .. }) => {
                Ok(d.pid == *pid && d.start_time == *start_time)
            }
            _ => Ok(self.target()?.same_as(target)),
        }
    }

    fn begin_observation(&self) {
        match &self.inner {
            Inner::Process(d) => d.fds.begin(),
            Inner::Node(n) => n.fds.begin(),
            Inner::Mock(_) | Inner::Failed { .. } => {}
        }
    }

    fn end_observation(&self) {
        match &self.inner {
            Inner::Process(d) => d.fds.end(),
            Inner::Node(n) => n.fds.end(),
            Inner::Mock(_) | Inner::Failed { .. } => {}
        }
    }

    fn target(&self) -> Result<Target, Error> {
        match &self.inner {
            Inner::Process(d) => Ok(Target::Process { pid: d.pid, start_time: d.start_time, name: d.name.clone() }),
            Inner::Node(n) => Ok(Target::Node { hostname: n.hostname.clone(), boot_id: n.boot_id.clone() }),
            Inner::Mock(m) => Ok(m.target()),
            Inner::Failed { pid, path, kind } => Err(match (kind, pid) {
                (FailKind::Gone, Some(pid)) => Error::Gone { pid: *pid },
                (FailKind::Denied, _) => Error::PermissionDenied { path: path.clone() },
                (FailKind::Gone, None) => Error::NotFound { path: path.clone() },
                (FailKind::Other(m), _) => {
                    Error::Io { op: "open", path: path.clone(), source: io::Error::other(m.clone()) }
                }
            }),
        }
    }

    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        match &self.inner {
            Inner::Process(d) => d.read(rel, buf),
            Inner::Node(n) => match n.split(rel) {
                Some((Some(dir), _, rest)) => {
                    let open = || {
                        rustix::fs::openat(dir, rest, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty())
                    };
                    n.fds.read(rel, node_shape(rel), MAX_FILE, open, buf).map_err(|e| match e {
                        rustix::io::Errno::FBIG => too_big(n.path_of(rel)),
                        e => errno_error(e, "read", n.path_of(rel)),
                    })
                }
                Some((None, _, rest)) => read_at(None, rest, || n.path_of(rel), buf),
                None => Err(Error::NotFound { path: n.path_of(rel) }),
            },
            Inner::Mock(m) => m.read(rel, buf),
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn read_mounts(&self, view: Option<&MountView>, buf: &mut Vec<u8>) -> Result<(), Error> {
        match &self.inner {
            Inner::Process(d) => d.read_mounts(view, buf),
            _ => self.read("mountinfo", buf),
        }
    }

    fn read_link(&self, rel: &str) -> Result<String, Error> {
        match &self.inner {
            Inner::Process(d) => rustix::fs::readlinkat(&d.dir, rel, Vec::new())
                .map(|target| target.to_string_lossy().into_owned())
                .map_err(|e| errno_to_error(e, "read the link", d.path_of(rel), d.pid)),
            _ => Err(unsupported(format!("the link {}", self.path_of(rel).display()))),
        }
    }

    fn stat(&self, rel: &str) -> Result<FileId, Error> {
        match &self.inner {
            Inner::Process(d) => {
                if let Some(id) = d.namespace_link(rel) {
                    return id;
                }
                let st = rustix::fs::statat(&d.dir, rel, AtFlags::empty())
                    .map_err(|e| errno_to_error(e, "stat", d.path_of(rel), d.pid))?;
                // c_ulong on some targets, u64 on others.
                #[allow(clippy::useless_conversion)]
                Ok(FileId { dev: u64::from(st.st_dev), ino: u64::from(st.st_ino) })
            }
            Inner::Mock(m) => m.stat(rel),
            Inner::Node(_) => Err(unsupported(format!("the identity of {}", self.path_of(rel).display()))),
            Inner::Failed { .. } => self.target().map(|_| FileId { dev: 0, ino: 0 }),
        }
    }

    fn mount_of(&self, rel: &str) -> Option<(FileId, u64)> {
        let Inner::Process(d) = &self.inner else { return None };
        // The root from this round's task table, where one is installed and
        // has the process: the same identity `statx` gives.
        if rel == "root"
            && d.facts().is_some()
            && let Some(root) = d.record(|e| e.root).flatten()
        {
            return Some(root);
        }
        mount_at(&d.dir, rel)
    }

    fn list(&self, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
        out.clear();
        match &self.inner {
            Inner::Process(d) => d.list(rel, false, out),
            Inner::Mock(m) => m.list(rel, out),
            Inner::Node(n) => {
                let (dir, _, rest) = n.split(rel).ok_or_else(|| Error::NotFound { path: n.path_of(rel) })?;
                let dir = dir.ok_or_else(|| Error::NotFound { path: n.path_of(rel) })?;
                let sub =
                    rustix::fs::openat(dir, rest, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                        .map_err(|e| errno_error(e, "open", n.path_of(rel)))?;
                list_dir(&sub, false, out).map_err(|e| errno_error(e, "read", n.path_of(rel)))
            }
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn cgroup_list(&self, hierarchy: &str, cgroup: &str, out: &mut Vec<String>) -> Result<(), Error> {
        match &self.inner {
            Inner::Process(d) => {
                let mut cp = d.cgroup_path.borrow_mut();
                let other = d.set_cgroup_dir(&mut cp, hierarchy, cgroup).inspect_err(|_| out.clear())?;
                // The directory's path, with a slash at its end, or (not
                // UTF-8) one of its own.
                let dir: std::borrow::Cow<'_, str> = match &other {
                    None => cp.path.get(..cp.dir_len).unwrap_or_default().into(),
                    Some(path) => path.to_string_lossy(),
                };
                let open = || {
                    rustix::fs::open(dir.as_ref(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                };
                // The names are written into the strings `out` already
                // holds, then into spare ones (a listing allocates nothing
                // once they are long enough), and the rest kept spare.
                let mut spare = SPARE_NAMES.with_borrow_mut(std::mem::take);
                let mut n = 0;
                let each = |name: &[u8], kind: FileType| {
                    if matches!(kind, FileType::RegularFile | FileType::Unknown)
                        && let Ok(name) = std::str::from_utf8(name)
                    {
                        match out.get_mut(n) {
                            Some(s) => {
                                s.clear();
                                s.push_str(name);
                            }
                            None => out.push(match spare.pop() {
                                Some(mut s) => {
                                    s.clear();
                                    s.push_str(name);
                                    s
                                }
                                None => name.to_owned(),
                            }),
                        }
                        n += 1;
                    }
                };
                let listed = d.fds.list(&dir, open, each);
                spare.extend(out.drain(n.min(out.len())..));
                SPARE_NAMES.with_borrow_mut(|kept| *kept = spare);
                listed.map_err(|e| {
                    let path = dir.strip_suffix('/').filter(|d| !d.is_empty()).unwrap_or(&dir);
                    cgroup_errno(e, "read", PathBuf::from(path))
                })?;
                out.sort_unstable();
                Ok(())
            }
            Inner::Mock(m) => {
                out.clear();
                m.cgroup_list(hierarchy, cgroup, out)
            }
            Inner::Node(_) => {
                out.clear();
                Err(unsupported(format!("cgroup {hierarchy}:{cgroup}")))
            }
            Inner::Failed { .. } => {
                out.clear();
                self.target().map(|_| ())
            }
        }
    }

    fn cgroup_read(&self, hierarchy: &str, cgroup: &str, file: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.clear();
        match &self.inner {
            Inner::Process(d) => {
                let shape = if crate::canon::cgroup_limits::LIMIT_FILES.contains(&file) {
                    // Control files without a `seq_start` of their own:
                    // kernfs shows them whole, as `single_open` does.
                    Shape::Whole
                } else {
                    Shape::Records
                };
                let mut cp = d.cgroup_path.borrow_mut();
                if let Some(dir) = d.set_cgroup_dir(&mut cp, hierarchy, cgroup)? {
                    // Not UTF-8 (the mount point of a hierarchy): a path of its own.
                    let path = dir.join(file);
                    let open =
                        || rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty());
                    return d.fds.read(&path.to_string_lossy(), shape, MAX_FILE, open, buf).map_err(|e| match e {
                        rustix::io::Errno::FBIG => too_big(path.clone()),
                        e => cgroup_errno(e, "read", path.clone()),
                    });
                }
                let dir_len = cp.dir_len;
                cp.path.truncate(dir_len);
                // Made from the kernel's structs where the round's program
                // of cgroup values has it (`cgvalues.rs`), else read.
                if super::tasks::cgroup_text(d.pid, d.start_time, hierarchy, &cp.path, file, buf).is_some() {
                    return Ok(());
                }
                buf.clear();
                cp.path.push_str(file);
                let path = cp.path.as_str();
                let open =
                    || rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty());
                d.fds.read(path, shape, MAX_FILE, open, buf).map_err(|e| match e {
                    rustix::io::Errno::FBIG => too_big(PathBuf::from(path)),
                    e => cgroup_errno(e, "read", PathBuf::from(path)),
                })
            }
            Inner::Mock(m) => m.cgroup_read(hierarchy, cgroup, file, buf),
            Inner::Node(_) => Err(unsupported(format!("cgroup {hierarchy}:{cgroup}"))),
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        match &self.inner {
            Inner::Process(d) => d.threads(out),
            Inner::Mock(m) => {
                m.threads(out);
                Ok(())
            }
            // The node has no threads of its own.
            Inner::Node(_) => Ok(()),
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn leader(&self) -> Option<u32> {
        match &self.inner {
            Inner::Process(d) => Some(d.pid),
            Inner::Mock(_) | Inner::Node(_) | Inner::Failed { .. } => None,
        }
    }

    fn thread_exiting(&self, tid: u32) -> Result<bool, Error> {
        let rel = format!("task/{tid}/stat");
        let exiting = |stat: &[u8]| parse_stat_flags(stat).is_some_and(|f| f & PF_EXITING != 0);
        match &self.inner {
            Inner::Process(d) => {
                let mut buf = Vec::with_capacity(512);
                match d.read(&rel, &mut buf) {
                    Ok(()) => Ok(exiting(&buf)),
                    // Reaped since it was listed, or exiting while read.
                    Err(Error::NotFound { .. } | Error::Gone { .. }) => Ok(true),
                    Err(e) => Err(e),
                }
            }
            Inner::Mock(m) => Ok(m.thread_exiting(tid)),
            Inner::Node(_) => Ok(false),
            Inner::Failed { .. } => self.target().map(|_| false),
        }
    }

    fn age(&self) -> Result<Option<Duration>, Error> {
        let Inner::Process(d) = &self.inner else {
            return Ok(None);
        };
        let path = d.root.join("uptime");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let uptime: f64 = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Parse { path: path.clone(), message: "no uptime in seconds".into() })?;
        let ticks = rustix::param::clock_ticks_per_second();
        // Precision to the tick is plenty: this decides whether to wait for a
        // young process to settle.
        #[allow(clippy::cast_precision_loss)]
        let started = d.start_time as f64 / ticks as f64;
        Ok(Some(Duration::from_secs_f64((uptime - started).max(0.0))))
    }

    fn limit_values(&self) -> Option<[[u64; 2]; 16]> {
        let Inner::Process(d) = &self.inner else { return None };
        d.facts()?;
        d.record(|e| e.limits)
    }

    fn keep_unread(&self, rel: &str) {
        if let Inner::Process(d) = &self.inner {
            d.fds.keep_unread(rel);
        }
    }

    fn status_inputs_agree(&self, inputs: crate::Digest, text: &[u8]) -> bool {
        let Inner::Process(d) = &self.inner else { return false };
        super::tasks::lookup_again(d.pid, d.start_time, |e| {
            e.status.as_ref().is_some_and(|s| crate::Digest::of(s) == inputs && super::tasks::status_agrees(s, text))
        })
        .unwrap_or(false)
    }

    fn maps_inputs(&self, out: &mut Vec<u8>) -> bool {
        let Inner::Process(d) = &self.inner else { return false };
        d.facts().is_some() && super::tasks::maps_copy(d.pid, d.start_time, out)
    }

    fn cgroup_set(&self, again: bool) -> Option<u64> {
        let Inner::Process(d) = &self.inner else { return None };
        d.facts()?;
        let set = |e: &super::tasks::Entry| e.status.as_ref().and_then(super::tasks::cgroup_set);
        if again { super::tasks::lookup_again(d.pid, d.start_time, set)? } else { d.record(set)? }
    }

    fn cgroup_values_digest(&self) -> Option<crate::Digest> {
        let Inner::Process(d) = &self.inner else { return None };
        super::tasks::cgroup_values_digest(d.pid, d.start_time)
    }

    fn cgroup_read_made(&self) -> bool {
        super::tasks::cgroup_text_made()
    }

    fn mount_inputs(&self, out: &mut Vec<u8>) -> bool {
        let Inner::Process(d) = &self.inner else { return false };
        d.facts().is_some() && super::tasks::mounts_copy(d.pid, d.start_time, out)
    }

    fn keep_mounts_unread(&self, view: Option<&MountView>) {
        let Inner::Process(d) = &self.inner else { return };
        let mut key = [0u8; 128];
        match view.filter(|_| d.fds.keeps()).and_then(|v| mounts_key(v, &mut key)) {
            Some(key) => d.fds.keep_unread(key),
            None => d.fds.keep_unread("mountinfo"),
        }
    }

    fn status_inputs(&self) -> Option<(crate::Digest, u32)> {
        let Inner::Process(d) = &self.inner else { return None };
        d.facts()?;
        d.record(|e| e.status.as_ref().map(|s| (crate::Digest::of(s), super::tasks::status_threads(s))))?
    }

    fn refused_everywhere(&self, rel: &str) -> Option<Arc<str>> {
        let Inner::Process(d) = &self.inner else { return None };
        d.absent_attr(rel).map(|(.., why)| Arc::clone(why))
    }

    fn alive(&self) -> bool {
        match &self.inner {
            Inner::Process(d) => {
                let mut buf = Vec::with_capacity(512);
                d.read("stat", &mut buf).is_ok()
                    && parse_stat(&buf).is_some_and(|(_, state, _)| state != b'Z' && state != b'X')
            }
            Inner::Node(_) | Inner::Mock(_) => true,
            Inner::Failed { .. } => false,
        }
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        match &self.inner {
            Inner::Process(d) => d.path_of(rel),
            Inner::Node(n) => n.path_of(rel),
            Inner::Mock(_) => Mock::path_of(rel),
            Inner::Failed { path, .. } => path.join(rel),
        }
    }

    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        match &self.inner {
            Inner::Process(d) => d.seccomp_programs(tid, out),
            Inner::Mock(m) => m.seccomp_programs(tid, out),
            Inner::Node(_) => Err(unsupported("seccomp filter programs")),
            Inner::Failed { .. } => self.target().map(|_| Duration::ZERO),
        }
    }

    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match &self.inner {
            Inner::Process(d) => d.read_mem(addr, buf),
            Inner::Mock(m) => m.read_mem(addr, buf),
            Inner::Node(_) => Err(unsupported("process memory")),
            Inner::Failed { .. } => self.target().map(|_| 0),
        }
    }

    fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        match &self.inner {
            Inner::Process(d) => d.read_pagemap(addr, out),
            Inner::Mock(m) => m.read_pagemap(addr, out),
            Inner::Node(_) => Err(unsupported("the page map")),
            Inner::Failed { .. } => self.target().map(|_| 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shows_mount;

    #[test]
    fn a_table_shows_a_mount_by_its_first_field_only() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n221 22 0:5 / /dev rw - devtmpfs udev rw\n";
        assert!(shows_mount(text, 22));
        assert!(shows_mount(text, 221));
        assert!(!shows_mount(text, 27), "a parent's id is not a mount of the table");
        assert!(!shows_mount(text, 2), "a prefix of an id");
        assert!(!shows_mount(b"", 22));
        assert!(!shows_mount(b"x22 27 0:21 / /\n", 22));
        assert!(!shows_mount(b"99999999999999999999999 1 0:1 / /\n", 22), "an id past u64");
    }
}
