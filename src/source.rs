//! The only code that reads the filesystem: a [`Source`] trait and [`Procfs`],
//! its implementation over `/proc`, cgroupfs and `/sys` (and, for tests,
//! canned text).
//!
//! A process is pinned by a directory file descriptor on `/proc/PID`, opened
//! once and checked against the process's start time: every later read goes
//! through `openat` on that descriptor, so a pid that is reused by another
//! process can never be read by mistake: the kernel answers ESRCH for the old
//! process instead.
//!
//! The node ([`Procfs::system`]) is read through directory descriptors on the
//! proc and sys roots, opened once; tests point them at a temporary copy
//! ([`Procfs::system_at`]). Cgroup control files are read below the mount
//! points of the hierarchies as fdir sees them ([`CgroupMounts`]), or below a
//! tree the caller names.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::fdcache::{FdCache, Shape};
use serde::{Deserialize, Serialize};

use crate::canon::mounts;
use crate::ptrace::{self, Failure};
use crate::{Error, Scope};

/// How long a seccomp-filters read waits for a thread to stop before it lets
/// the thread go and reports it unobservable.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Seizes retried when refused by a tracer that is gone by the time it is
/// looked for.
const SEIZE_RETRIES: usize = 4;

/// What a snapshot or a source describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Target {
    /// One process, identified by its pid and its start time.
    Process {
        /// The process id.
        pid: u32,
        /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
        start_time: u64,
        /// The command name, for people; not part of the identity.
        #[serde(default)]
        name: String,
    },
    /// The node: kernel state shared by every process on it.
    Node {
        /// The host name (`/proc/sys/kernel/hostname`): the node's identity.
        hostname: String,
        /// This boot's id (`/proc/sys/kernel/random/boot_id`), for people. Not
        /// part of the identity: a node baseline is meant to be checked after
        /// a reboot too, since the hardening must come back the same.
        #[serde(default)]
        boot_id: String,
    },
    /// Canned text, for tests.
    Mock,
}

impl Target {
    /// Whether two targets are the same process (or both mocks). The name is not
    /// part of the identity: a process may rename itself.
    pub fn same_as(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Process { pid, start_time, .. }, Target::Process { pid: p2, start_time: s2, .. }) => {
                pid == p2 && start_time == s2
            }
            (Target::Node { hostname, .. }, Target::Node { hostname: h2, .. }) => hostname == h2,
            (Target::Mock, Target::Mock) => true,
            _ => false,
        }
    }

    /// The start time of a process (0 when it could not be read).
    pub fn pid_start(&self) -> u64 {
        match self {
            Target::Process { start_time, .. } => *start_time,
            Target::Node { .. } | Target::Mock => 0,
        }
    }

    /// The process id, for a process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Target::Process { pid, .. } => Some(*pid),
            Target::Node { .. } | Target::Mock => None,
        }
    }

    /// Which subsystems the target has: those of a process, or the node's.
    pub fn scope(&self) -> Scope {
        match self {
            Target::Node { .. } => Scope::Node,
            Target::Process { .. } | Target::Mock => Scope::Process,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Process { pid, name, .. } if name.is_empty() => write!(f, "process {pid}"),
            Target::Process { pid, name, .. } => write!(f, "process {pid} ({name})"),
            Target::Node { hostname, .. } if hostname.is_empty() => f.write_str("node"),
            Target::Node { hostname, .. } => write!(f, "node {hostname}"),
            Target::Mock => f.write_str("mock process"),
        }
    }
}

/// The identity of a file: its device and inode numbers (of a namespace,
/// for a `/proc/PID/ns` link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unavailable { what: what.into(), reason: "this source does not provide it".into() }
}

/// Where fdir reads a process's or the node's state from.
///
/// Implementations must never turn a failed read into empty content: a file
/// that cannot be read is an error ([`Error::PermissionDenied`],
/// [`Error::Gone`], [`Error::NotFound`], [`Error::Io`]).
///
/// Paths are relative: to `/proc/PID` for a process (`"maps"`,
/// `"task/42/status"`); for the node, to the root of the filesystem, below
/// `proc/` or `sys/` (`"proc/sys/kernel/tainted"`,
/// `"sys/kernel/security/lockdown"`).
pub trait Source {
    /// What this source reads, or why it cannot read anything.
    fn target(&self) -> Result<Target, Error>;

    /// Reads the file `rel` of the process (`"maps"`, `"task/42/status"`), or
    /// of the node (`"proc/cmdline"`), into `buf`, replacing its contents.
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error>;

    /// The identity of `rel`, following a symbolic link: for
    /// `"ns/net"` the network namespace. [`Error::NotFound`] for a link that
    /// does not resolve.
    fn stat(&self, rel: &str) -> Result<FileId, Error> {
        Err(unsupported(format!("the identity of {}", self.path_of(rel).display())))
    }

    /// The identity of `rel` and the id of the mount it is on (`statx`'s
    /// `STATX_MNT_ID`, Linux 5.8), where the source knows them: for `"root"`,
    /// with the mount namespace, what a process's `mountinfo` depends on.
    /// `None` (the default) where it cannot tell.
    fn mount_of(&self, rel: &str) -> Option<(FileId, u64)> {
        let _ = rel;
        None
    }

    /// The target of the symbolic link `rel` (`"exe"`), as the kernel
    /// prints it (with ` (deleted)` for a file deleted since).
    fn read_link(&self, rel: &str) -> Result<String, Error> {
        Err(unsupported(format!("the link {}", self.path_of(rel).display())))
    }

    /// Lists the names in the directory `rel` into `out`, sorted, replacing
    /// its contents.
    fn list(&self, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
        out.clear();
        Err(unsupported(format!("the directory {}", self.path_of(rel).display())))
    }

    /// Lists the control files (not the child cgroups) of `cgroup` in
    /// `hierarchy` into `out`, sorted, replacing its contents. The hierarchy
    /// is named as in `/proc/PID/cgroup`: `unified` for v2, the controllers
    /// (`memory`, `cpu,cpuacct`, `name=systemd`) for v1.
    fn cgroup_list(&self, hierarchy: &str, cgroup: &str, out: &mut Vec<String>) -> Result<(), Error> {
        out.clear();
        Err(unsupported(format!("cgroup {hierarchy}:{cgroup}")))
    }

    /// Reads the control file `file` of `cgroup` in `hierarchy` into `buf`.
    fn cgroup_read(&self, hierarchy: &str, cgroup: &str, file: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.clear();
        Err(unsupported(format!("{file} of cgroup {hierarchy}:{cgroup}")))
    }

    /// Lists the thread ids of the process into `out`, replacing its contents.
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error>;

    /// The id of the process's main thread, where the source knows it
    /// without a system call (a live process's pid). Its `status` tells how
    /// many threads the process has (`Threads:`), and a process with one
    /// thread is then not listed: `[leader]` is its list. `None` (the
    /// default): the threads are always listed.
    fn leader(&self) -> Option<u32> {
        None
    }

    /// Whether thread `tid` is exiting (in `do_exit`, `PF_EXITING`) or gone:
    /// its files then show a partial state (no `Umask`, the root of every v1
    /// cgroup hierarchy) that is not the process's, so it is left out.
    fn thread_exiting(&self, tid: u32) -> Result<bool, Error> {
        let _ = tid;
        Ok(false)
    }

    /// How long ago the process started, where that is known.
    fn age(&self) -> Result<Option<Duration>, Error> {
        Ok(None)
    }

    /// Whether the process is still alive and not a zombie.
    fn alive(&self) -> bool;

    /// The path `rel` stands for, in messages.
    fn path_of(&self, rel: &str) -> PathBuf;

    /// Reads the seccomp filter programs of thread `tid` of the process into
    /// `out` (replacing its contents): oldest first, each as its raw
    /// `sock_filter` bytes. Returns how long the thread was kept stopped.
    ///
    /// [`Error::NeedsPrivilege`] and [`Error::Unavailable`] mean this monitor
    /// or kernel cannot read programs (the subsystem degrades to the filter
    /// count); [`Error::Traced`] and [`Error::NotStopped`] that it cannot now;
    /// [`Error::NotFound`] that the thread has exited. The default cannot.
    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        let _ = (tid, out);
        Err(unsupported("seccomp filter programs"))
    }

    /// Reads the process's memory at `addr` into `buf`, as far as it can be
    /// read: returns the number of bytes read, fewer than `buf.len()` (or 0)
    /// when the rest cannot be read (a mapping past the end of its file).
    /// The default cannot.
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let _ = (addr, buf);
        Err(unsupported("process memory"))
    }

    /// Reads the `pagemap` entries of the pages from address `addr` on into
    /// `out` (one 64-bit entry per page, as many as `out` holds): returns
    /// how many were read. The default cannot.
    fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        let _ = (addr, out);
        Err(unsupported("the page map"))
    }

    /// An observation starts: a source that keeps files open closes, at its
    /// end, those the observation did not read.
    fn begin_observation(&self) {}

    /// An observation ends (see [`Source::begin_observation`]).
    fn end_observation(&self) {}

    /// Whether this source reads `target` (by identity: pid and start time
    /// for a process). The default builds [`Source::target`]; a source can
    /// answer without allocating.
    fn same_target(&self, target: &Target) -> Result<bool, Error> {
        Ok(self.target()?.same_as(target))
    }
}

impl<S: Source + ?Sized> Source for &S {
    fn target(&self) -> Result<Target, Error> {
        (**self).target()
    }
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        (**self).read(rel, buf)
    }
    fn stat(&self, rel: &str) -> Result<FileId, Error> {
        (**self).stat(rel)
    }
    fn mount_of(&self, rel: &str) -> Option<(FileId, u64)> {
        (**self).mount_of(rel)
    }
    fn read_link(&self, rel: &str) -> Result<String, Error> {
        (**self).read_link(rel)
    }
    fn list(&self, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
        (**self).list(rel, out)
    }
    fn cgroup_list(&self, hierarchy: &str, cgroup: &str, out: &mut Vec<String>) -> Result<(), Error> {
        (**self).cgroup_list(hierarchy, cgroup, out)
    }
    fn cgroup_read(&self, hierarchy: &str, cgroup: &str, file: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        (**self).cgroup_read(hierarchy, cgroup, file, buf)
    }
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        (**self).threads(out)
    }
    fn leader(&self) -> Option<u32> {
        (**self).leader()
    }
    fn thread_exiting(&self, tid: u32) -> Result<bool, Error> {
        (**self).thread_exiting(tid)
    }
    fn age(&self) -> Result<Option<Duration>, Error> {
        (**self).age()
    }
    fn alive(&self) -> bool {
        (**self).alive()
    }
    fn path_of(&self, rel: &str) -> PathBuf {
        (**self).path_of(rel)
    }
    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        (**self).seccomp_programs(tid, out)
    }
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        (**self).read_mem(addr, buf)
    }
    fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        (**self).read_pagemap(addr, out)
    }
    fn begin_observation(&self) {
        (**self).begin_observation();
    }
    fn end_observation(&self) {
        (**self).end_observation();
    }
    fn same_target(&self, target: &Target) -> Result<bool, Error> {
        (**self).same_target(target)
    }
}

/// Files larger than this are refused: `maps` at the kernel's default
/// `max_map_count` (65530 mappings) is under 10 MiB.
pub const MAX_FILE: usize = 64 << 20;

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
        let what = || format!("cgroup {hierarchy}:{cgroup}");
        let fail = |reason: String| Error::Unavailable { what: what(), reason };
        let (dir, root) = self
            .by_name
            .get(&normalize_hierarchy(hierarchy))
            .ok_or_else(|| fail("the hierarchy is not mounted where fdir can see it".into()))?;
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
        Ok(if rel.is_empty() { dir.clone() } else { dir.join(rel) })
    }
}

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
    Mock { files: BTreeMap<String, Vec<u8>>, node: bool },
    Failed { pid: Option<u32>, path: PathBuf, kind: FailKind },
}

#[derive(Debug)]
enum FailKind {
    Gone,
    Denied,
    Other(String),
}

#[derive(Debug)]
struct ProcessDir {
    root: PathBuf,
    pid: u32,
    start_time: u64,
    name: String,
    dir: OwnedFd,
    /// Found on first use, unless given.
    cgroups: OnceLock<Result<CgroupMounts, String>>,
    /// Kept-open files (see [`crate::fdcache`]).
    fds: FdCache,
    /// The `task` directory, kept open and rewound for each listing, and the
    /// buffer its entries are read into (no allocation per listing).
    task: RefCell<Option<(OwnedFd, Vec<std::mem::MaybeUninit<u8>>)>>,
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

fn errno_error(e: rustix::io::Errno, op: &'static str, path: PathBuf) -> Error {
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
fn read_at(dir: Option<&OwnedFd>, rel: &str, path: impl Fn() -> PathBuf, buf: &mut Vec<u8>) -> Result<(), Error> {
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

/// Parses `/proc/PID/stat`: (command name, state, start time in ticks).
pub fn parse_stat(stat: &[u8]) -> Option<(String, u8, u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = String::from_utf8_lossy(stat.get(open + 1..close)?).into_owned();
    let rest = stat.get(close + 1..)?;
    let mut fields = rest.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let state = *fields.next()?.first()?;
    // Field 3 is the state; start time is field 22, 19 fields later.
    let start = fields.nth(18)?;
    let start = std::str::from_utf8(start).ok()?.trim().parse().ok()?;
    Some((name, state, start))
}

/// The `flags` field (9) of `/proc/PID/stat` (the kernel's `PF_*` bits).
pub fn parse_stat_flags(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    // Field 3 is the state; flags is field 9, 6 fields later.
    let flags = rest.split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(6)?;
    std::str::from_utf8(flags).ok()?.parse().ok()
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

/// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): process start
/// times are only meaningful within one boot.
pub fn boot_id() -> Result<String, Error> {
    let path = Path::new("/proc/sys/kernel/random/boot_id");
    let id = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Ok(id.trim().to_owned())
}

/// `PF_EXITING`: the task is in `do_exit`.
pub(crate) const PF_EXITING: u64 = 0x4;

/// The prefix of mock cgroup files: `cgroupfs/HIERARCHY/CGROUP`, without a
/// trailing `/`.
fn mock_cgroup_dir(hierarchy: &str, cgroup: &str) -> String {
    format!("cgroupfs/{hierarchy}{}", cgroup.trim_end_matches('/'))
}

impl Procfs {
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
            Inner::Mock { .. } | Inner::Failed { .. } => {}
        }
    }

    /// How many files (and directories) it keeps open for the next read.
    pub fn kept_files(&self) -> usize {
        match &self.inner {
            Inner::Process(d) => d.fds.len() + usize::from(d.task.borrow().is_some()),
            Inner::Node(n) => n.fds.len(),
            Inner::Mock { .. } | Inner::Failed { .. } => 0,
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

    fn open_pid(root: PathBuf, pid: u32, once: bool) -> Result<Procfs, Error> {
        let path = root.join(pid.to_string());
        let dir = rustix::fs::open(&path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::SRCH => Error::Gone { pid },
                e => errno_to_error(e, "open", path.clone(), pid),
            })?;
        let mut dir = ProcessDir {
            root,
            pid,
            start_time: 0,
            name: String::new(),
            dir,
            cgroups: OnceLock::new(),
            fds: FdCache::default(),
            task: RefCell::new(None),
        };
        if once {
            dir.fds.keep_nothing();
        }
        let mut buf = Vec::with_capacity(1024);
        dir.read("stat", &mut buf)?;
        let (name, _, start_time) = parse_stat(&buf).ok_or_else(|| Error::Parse {
            path: dir.path_of("stat"),
            message: "not a stat line (no start time after the command name)".into(),
        })?;
        dir.name = name;
        dir.start_time = start_time;
        Ok(Procfs { inner: Inner::Process(dir) })
    }

    /// Reads the cgroup control files of this process below `mounts` instead
    /// of the hierarchies fdir finds mounted (from `/proc/self/mountinfo`, on
    /// first use). Share one [`CgroupMounts::discover`] between many sources,
    /// or point it at a temporary tree in tests. No effect on other sources.
    #[must_use]
    pub fn with_cgroup_mounts(self, mounts: CgroupMounts) -> Procfs {
        if let Inner::Process(d) = &self.inner {
            let _ = d.cgroups.set(Ok(mounts));
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
    pub fn mock_files<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>) -> Procfs {
        Procfs {
            inner: Inner::Mock {
                files: files.into_iter().map(|(k, v)| (k.into(), v.as_ref().to_vec())).collect(),
                node: false,
            },
        }
    }

    /// Canned files of a node, by path below `/` (`"proc/sys/kernel/tainted"`,
    /// `"sys/kernel/security/lockdown"`). Its target is the node `mock`.
    pub fn mock_node_files<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>) -> Procfs {
        Procfs {
            inner: Inner::Mock {
                files: files.into_iter().map(|(k, v)| (k.into(), v.as_ref().to_vec())).collect(),
                node: true,
            },
        }
    }

    /// The `flags` field of `/proc/PID/stat` (PF_* bits; PF_KTHREAD marks a
    /// kernel thread).
    pub fn stat_flags(&self) -> Result<u64, Error> {
        let mut buf = Vec::with_capacity(512);
        self.read("stat", &mut buf)?;
        parse_stat_flags(&buf)
            .ok_or_else(|| Error::Parse { path: self.path_of("stat"), message: "no flags field".into() })
    }

    /// The pinned pid, for a process source.
    pub fn pid_number(&self) -> Option<u32> {
        match &self.inner {
            Inner::Process(d) => Some(d.pid),
            Inner::Failed { pid, .. } => *pid,
            Inner::Node(_) | Inner::Mock { .. } => None,
        }
    }
}

impl ProcessDir {
    fn path_of(&self, rel: &str) -> PathBuf {
        self.root.join(self.pid.to_string()).join(rel)
    }

    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
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
        let dir =
            rustix::fs::openat(&self.dir, rel, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| errno_to_error(e, "open", self.path_of(rel), self.pid))?;
        list_dir(&dir, files_only, out).map_err(|e| errno_to_error(e, "read", self.path_of(rel), self.pid))
    }

    fn cgroup_dir(&self, hierarchy: &str, cgroup: &str) -> Result<PathBuf, Error> {
        match self.cgroups.get_or_init(|| CgroupMounts::discover().map_err(|e| e.to_string())) {
            Ok(m) => m.dir(hierarchy, cgroup),
            Err(reason) => Err(Error::Unavailable {
                what: format!("cgroup {hierarchy}:{cgroup}"),
                reason: format!("cannot find the cgroup mounts: {reason}"),
            }),
        }
    }
}

/// A cgroup directory that is gone reads ENODEV (removed while open) or ENOENT.
fn cgroup_errno(e: rustix::io::Errno, op: &'static str, path: PathBuf) -> Error {
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

/// Whether this monitor may ptrace other processes: `CAP_SYS_PTRACE`, and
/// no Yama `ptrace_scope` of 3 (no attaching at all).
fn may_seize() -> bool {
    let cap = rustix::thread::capabilities(None)
        .is_ok_and(|c| c.effective.contains(rustix::thread::CapabilitySet::SYS_PTRACE));
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    cap && scope.trim() != "3"
}

/// Canned filter programs: files `task/TID/seccomp/N` hold program N's raw
/// bytes; a file `task/TID/seccomp/denied` makes the read need a privilege.
fn mock_programs(files: &BTreeMap<String, Vec<u8>>, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
    out.clear();
    let dir = format!("task/{tid}/seccomp/");
    if files.contains_key(&format!("{dir}denied")) {
        return Err(Error::NeedsPrivilege { what: "reading seccomp filter programs", privilege: "CAP_SYS_ADMIN" });
    }
    if !files.keys().any(|k| k.starts_with(&dir)) {
        return Err(unsupported(format!("the seccomp filter programs of thread {tid}")));
    }
    while let Some(p) = files.get(&format!("{dir}{}", out.len())) {
        out.push(p.clone());
    }
    Ok(Duration::ZERO)
}

/// The size of a page, as `pagemap` counts them.
const PAGE: u64 = 4096;

/// Decodes `pagemap` bytes (little-endian 64-bit entries) into `out`:
/// returns how many whole entries there were.
fn pagemap_entries(bytes: &[u8], out: &mut [u64]) -> usize {
    let mut n = 0;
    for (slot, e) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(e);
        *slot = u64::from_le_bytes(b);
        n += 1;
    }
    n
}

/// A canned page map: a file `pagemap` holds the entries of the pages from
/// address 0 on (pages past its end are not present).
fn mock_pagemap(files: &BTreeMap<String, Vec<u8>>, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
    let Some(map) = files.get("pagemap") else { return Err(unsupported("the page map")) };
    let from = usize::try_from(addr / PAGE * 8).unwrap_or(usize::MAX);
    out.fill(0);
    pagemap_entries(map.get(from..).unwrap_or(&[]), out);
    Ok(out.len())
}

/// Canned memory: a file `mem/HEX` holds the bytes at address HEX.
fn mock_mem(files: &BTreeMap<String, Vec<u8>>, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
    let mut any = false;
    for (k, bytes) in files {
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
            Inner::Mock { .. } | Inner::Failed { .. } => {}
        }
    }

    fn end_observation(&self) {
        match &self.inner {
            Inner::Process(d) => d.fds.end(),
            Inner::Node(n) => n.fds.end(),
            Inner::Mock { .. } | Inner::Failed { .. } => {}
        }
    }

    fn target(&self) -> Result<Target, Error> {
        match &self.inner {
            Inner::Process(d) => Ok(Target::Process { pid: d.pid, start_time: d.start_time, name: d.name.clone() }),
            Inner::Node(n) => Ok(Target::Node { hostname: n.hostname.clone(), boot_id: n.boot_id.clone() }),
            Inner::Mock { node: false, .. } => Ok(Target::Mock),
            Inner::Mock { node: true, .. } => Ok(Target::Node { hostname: "mock".into(), boot_id: String::new() }),
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
            Inner::Mock { files, .. } => {
                let data = files.get(rel).ok_or_else(|| Error::NotFound { path: self.path_of(rel) })?;
                buf.clear();
                buf.extend_from_slice(data);
                Ok(())
            }
            Inner::Failed { .. } => self.target().map(|_| ()),
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
                let st = rustix::fs::statat(&d.dir, rel, AtFlags::empty())
                    .map_err(|e| errno_to_error(e, "stat", d.path_of(rel), d.pid))?;
                // c_ulong on some targets, u64 on others.
                #[allow(clippy::useless_conversion)]
                Ok(FileId { dev: u64::from(st.st_dev), ino: u64::from(st.st_ino) })
            }
            Inner::Mock { files, .. } => {
                let path = || self.path_of(rel);
                let data = files.get(rel).ok_or_else(|| Error::NotFound { path: path() })?;
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
            Inner::Node(_) => Err(unsupported(format!("the identity of {}", self.path_of(rel).display()))),
            Inner::Failed { .. } => self.target().map(|_| FileId { dev: 0, ino: 0 }),
        }
    }

    fn mount_of(&self, rel: &str) -> Option<(FileId, u64)> {
        let Inner::Process(d) = &self.inner else { return None };
        let want = rustix::fs::StatxFlags::INO | rustix::fs::StatxFlags::MNT_ID;
        let st = rustix::fs::statx(&d.dir, rel, AtFlags::empty(), want).ok()?;
        if (!st.stx_mask & want.bits()) != 0 {
            return None;
        }
        let dev = rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor);
        Some((FileId { dev, ino: st.stx_ino }, st.stx_mnt_id))
    }

    fn list(&self, rel: &str, out: &mut Vec<String>) -> Result<(), Error> {
        out.clear();
        match &self.inner {
            Inner::Process(d) => d.list(rel, false, out),
            Inner::Mock { files, .. } => {
                let prefix = format!("{}/", rel.trim_end_matches('/'));
                for k in files.keys() {
                    if let Some(name) = k.strip_prefix(&prefix).and_then(|r| r.split('/').next())
                        && !name.is_empty()
                    {
                        out.push(name.to_owned());
                    }
                }
                out.sort_unstable();
                out.dedup();
                if out.is_empty() {
                    return Err(Error::NotFound { path: self.path_of(rel) });
                }
                Ok(())
            }
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
        out.clear();
        match &self.inner {
            Inner::Process(d) => {
                let path = d.cgroup_dir(hierarchy, cgroup)?;
                let open =
                    || rustix::fs::open(&path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
                let each = |name: &[u8], kind: FileType| {
                    if matches!(kind, FileType::RegularFile | FileType::Unknown)
                        && let Ok(name) = std::str::from_utf8(name)
                    {
                        out.push(name.to_owned());
                    }
                };
                d.fds.list(&path.to_string_lossy(), open, each).map_err(|e| cgroup_errno(e, "read", path.clone()))?;
                out.sort_unstable();
                Ok(())
            }
            Inner::Mock { files, node: false } => {
                let prefix = format!("{}/", mock_cgroup_dir(hierarchy, cgroup));
                out.extend(
                    files
                        .keys()
                        .filter_map(|k| k.strip_prefix(&prefix))
                        .filter(|n| !n.contains('/'))
                        .map(str::to_owned),
                );
                if out.is_empty() {
                    return Err(Error::NotFound { path: PathBuf::from(prefix) });
                }
                Ok(())
            }
            Inner::Node(_) | Inner::Mock { node: true, .. } => Err(unsupported(format!("cgroup {hierarchy}:{cgroup}"))),
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn cgroup_read(&self, hierarchy: &str, cgroup: &str, file: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.clear();
        match &self.inner {
            Inner::Process(d) => {
                let path = d.cgroup_dir(hierarchy, cgroup)?.join(file);
                let open =
                    || rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty());
                let shape = if crate::canon::cgroup_limits::LIMIT_FILES.contains(&file) {
                    // Control files without a `seq_start` of their own:
                    // kernfs shows them whole, as `single_open` does.
                    Shape::Whole
                } else {
                    Shape::Records
                };
                d.fds.read(&path.to_string_lossy(), shape, MAX_FILE, open, buf).map_err(|e| match e {
                    rustix::io::Errno::FBIG => too_big(path.clone()),
                    e => cgroup_errno(e, "read", path.clone()),
                })
            }
            Inner::Mock { files, node: false } => {
                let key = format!("{}/{file}", mock_cgroup_dir(hierarchy, cgroup));
                let data = files.get(&key).ok_or_else(|| Error::NotFound { path: PathBuf::from(&key) })?;
                buf.extend_from_slice(data);
                Ok(())
            }
            Inner::Node(_) | Inner::Mock { node: true, .. } => Err(unsupported(format!("cgroup {hierarchy}:{cgroup}"))),
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        match &self.inner {
            Inner::Process(d) => d.threads(out),
            Inner::Mock { files, .. } => {
                for k in files.keys() {
                    let tid = k.strip_prefix("task/").and_then(|r| r.split('/').next()).and_then(|t| t.parse().ok());
                    if let Some(tid) = tid
                        && !out.contains(&tid)
                    {
                        out.push(tid);
                    }
                }
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
            Inner::Mock { .. } | Inner::Node(_) | Inner::Failed { .. } => None,
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
            Inner::Mock { files, .. } => Ok(files.get(&rel).is_some_and(|s| exiting(s))),
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

    fn alive(&self) -> bool {
        match &self.inner {
            Inner::Process(d) => {
                let mut buf = Vec::with_capacity(512);
                d.read("stat", &mut buf).is_ok()
                    && parse_stat(&buf).is_some_and(|(_, state, _)| state != b'Z' && state != b'X')
            }
            Inner::Node(_) | Inner::Mock { .. } => true,
            Inner::Failed { .. } => false,
        }
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        match &self.inner {
            Inner::Process(d) => d.path_of(rel),
            Inner::Node(n) => n.path_of(rel),
            Inner::Mock { .. } => PathBuf::from("mock").join(rel),
            Inner::Failed { path, .. } => path.join(rel),
        }
    }

    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        match &self.inner {
            Inner::Process(d) => d.seccomp_programs(tid, out),
            Inner::Mock { files, node: false } => mock_programs(files, tid, out),
            Inner::Node(_) | Inner::Mock { node: true, .. } => Err(unsupported("seccomp filter programs")),
            Inner::Failed { .. } => self.target().map(|_| Duration::ZERO),
        }
    }

    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match &self.inner {
            Inner::Process(d) => d.read_mem(addr, buf),
            Inner::Mock { files, node: false } => mock_mem(files, addr, buf),
            Inner::Node(_) | Inner::Mock { node: true, .. } => Err(unsupported("process memory")),
            Inner::Failed { .. } => self.target().map(|_| 0),
        }
    }

    fn read_pagemap(&self, addr: u64, out: &mut [u64]) -> Result<usize, Error> {
        match &self.inner {
            Inner::Process(d) => d.read_pagemap(addr, out),
            Inner::Mock { files, node: false } => mock_pagemap(files, addr, out),
            Inner::Node(_) | Inner::Mock { node: true, .. } => Err(unsupported("the page map")),
            Inner::Failed { .. } => self.target().map(|_| 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_flags_and_process_listing() {
        let line = b"42 (a) b) S 1 42 42 0 -1 2097216 100 0 0 0\n";
        assert_eq!(parse_stat_flags(line), Some(2_097_216));
        assert_eq!(parse_stat_flags(b"1 (x) S"), None);
        let pids = list_processes(Path::new("/proc")).unwrap();
        assert!(pids.binary_search(&std::process::id()).is_ok());
        assert!(!boot_id().unwrap().is_empty());
        // kthreadd is a kernel thread wherever it is visible.
        if let Ok(p) = Procfs::try_pid(2)
            && p.target().is_ok_and(|t| matches!(t, Target::Process { ref name, .. } if name == "kthreadd"))
        {
            assert_ne!(p.stat_flags().unwrap() & 0x0020_0000, 0);
        }
    }

    #[test]
    fn stat_with_awkward_command_names() {
        let line =
            b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 8192 100 18446744073709551615\n";
        assert_eq!(parse_stat(line), Some(("a) b (c)".to_owned(), b'S', 12345)));
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
        assert_eq!(parse_stat(b")("), None);
        assert_eq!(parse_stat_flags(line), Some(4194560));
        assert_eq!(parse_stat_flags(b"1 (x) S 1 2"), None);
    }

    #[test]
    fn live_reads_itself() {
        let me = Procfs::live();
        let mut buf = Vec::new();
        me.read("maps", &mut buf).unwrap();
        assert!(!buf.is_empty());
        let mut tids = Vec::new();
        me.threads(&mut tids).unwrap();
        assert!(tids.contains(&std::process::id()));
        assert!(me.alive());
        assert!(matches!(me.target().unwrap(), Target::Process { pid, .. } if pid == std::process::id()));
        assert!(matches!(me.read("no-such-file", &mut buf), Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_gone_pid_reports_gone() {
        // pid_max is at most 2^22; this pid cannot exist.
        let gone = Procfs::pid(u32::MAX - 1);
        assert!(matches!(gone.target(), Err(Error::Gone { .. })));
        let mut buf = Vec::new();
        assert!(matches!(gone.read("maps", &mut buf), Err(Error::Gone { .. })));
        assert!(!gone.alive());
    }

    #[test]
    fn live_stat_and_list_of_namespaces() {
        let me = Procfs::live();
        let mut names = Vec::new();
        me.list("ns", &mut names).unwrap();
        assert!(names.iter().any(|n| n == "net"), "{names:?}");
        let net = me.stat("ns/net").unwrap();
        let st = std::fs::metadata("/proc/self/ns/net").unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(net, FileId { dev: st.dev(), ino: st.ino() });
        assert!(matches!(me.stat("ns/no-such"), Err(Error::NotFound { .. })));
    }

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,nosuid,cpuacct,cpu
35 31 0:32 /sub /mnt/mem rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/uni\\040fied rw,relatime - cgroup2 cgroup2 rw,nsdelegate
garbage
";

    #[test]
    fn cgroup_mounts_from_mountinfo() {
        let m = CgroupMounts::from_mountinfo(MOUNTINFO.as_bytes());
        assert_eq!(m.hierarchies().collect::<Vec<_>>(), ["cpu", "cpu,cpuacct", "memory", "name=systemd", "unified"]);
        assert_eq!(m.dir("unified", "/").unwrap(), Path::new("/sys/fs/cgroup/uni fied"));
        assert_eq!(m.dir("cpu,cpuacct", "/a/b").unwrap(), Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b"));
        assert_eq!(m.dir("cpuacct,cpu", "/").unwrap(), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        // The mount of the hierarchy's root is preferred to a bind of a subtree.
        assert_eq!(m.dir("memory", "/x").unwrap(), Path::new("/sys/fs/cgroup/memory/x"));
        assert_eq!(m.dir("name=systemd", "/user.slice").unwrap(), Path::new("/sys/fs/cgroup/systemd/user.slice"));
        for (h, p) in
            [("pids", "/"), ("unified", "/.."), ("unified", "/a/../b"), ("unified", "a"), ("unified", "/a//b")]
        {
            assert!(matches!(m.dir(h, p), Err(Error::Unavailable { .. })), "{h}:{p}");
        }
        // Only a subtree mounted: paths below it resolve, others are refused.
        let sub = CgroupMounts::from_mountinfo(b"35 31 0:32 /sub /mnt/mem rw - cgroup cgroup rw,memory\n");
        assert_eq!(sub.dir("memory", "/sub/x").unwrap(), Path::new("/mnt/mem/x"));
        assert_eq!(sub.dir("memory", "/sub").unwrap(), Path::new("/mnt/mem"));
        assert!(sub.dir("memory", "/subway").is_err());
        assert!(sub.dir("memory", "/").is_err());
    }

    #[test]
    fn the_node_reads_below_its_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let proc = tmp.path().join("proc");
        std::fs::create_dir_all(proc.join("sys/kernel/random")).unwrap();
        std::fs::write(proc.join("sys/kernel/hostname"), "probe\n").unwrap();
        std::fs::write(proc.join("sys/kernel/tainted"), "0\n").unwrap();
        let node = Procfs::system_at(&proc, tmp.path().join("no-sys")).unwrap();
        assert_eq!(node.target().unwrap(), Target::Node { hostname: "probe".into(), boot_id: String::new() });
        assert_eq!(node.target().unwrap().scope(), Scope::Node);
        let mut buf = Vec::new();
        node.read("proc/sys/kernel/tainted", &mut buf).unwrap();
        assert_eq!(buf, b"0\n");
        assert!(matches!(node.read("proc/sys/kernel/absent", &mut buf), Err(Error::NotFound { .. })));
        assert!(matches!(node.read("sys/kernel/security/lockdown", &mut buf), Err(Error::NotFound { .. })));
        assert_eq!(node.path_of("sys/kernel/security/lsm"), tmp.path().join("no-sys/kernel/security/lsm"));
        let mut tids = vec![1];
        node.threads(&mut tids).unwrap();
        assert!(tids.is_empty());
        assert!(Procfs::system_at(tmp.path().join("none"), "/sys").is_err());
        let live = Procfs::try_system().unwrap();
        assert!(matches!(live.target().unwrap(), Target::Node { hostname, .. } if !hostname.is_empty()));
    }

    #[test]
    fn mock_stat_list_and_cgroup_files() {
        let m = Procfs::mock_files([
            ("ns/net", "4:4026531833"),
            ("ns/pid_for_children", "-"),
            ("cgroupfs/pids/pids.max", "max\n"),
            ("cgroupfs/pids/app/pids.max", "10\n"),
            ("cgroupfs/pids/app/child/pids.max", "5\n"),
        ]);
        assert_eq!(m.stat("ns/net").unwrap(), FileId { dev: 4, ino: 4026531833 });
        assert!(matches!(m.stat("ns/pid_for_children"), Err(Error::NotFound { .. })));
        let mut names = Vec::new();
        m.list("ns", &mut names).unwrap();
        assert_eq!(names, ["net", "pid_for_children"]);
        m.cgroup_list("pids", "/app", &mut names).unwrap();
        assert_eq!(names, ["pids.max"]);
        m.cgroup_list("pids", "/", &mut names).unwrap();
        assert_eq!(names, ["pids.max"]);
        let mut buf = Vec::new();
        m.cgroup_read("pids", "/app", "pids.max", &mut buf).unwrap();
        assert_eq!(buf, b"10\n");
        assert!(matches!(m.cgroup_list("memory", "/", &mut names), Err(Error::NotFound { .. })));
        let node = Procfs::mock_node_files([("proc/sys/kernel/tainted", "0")]);
        assert_eq!(node.target().unwrap().scope(), Scope::Node);
    }

    #[test]
    fn mock_lists_threads_and_refuses_missing_files() {
        let m = Procfs::mock("m", "s", "c");
        let mut tids = Vec::new();
        m.threads(&mut tids).unwrap();
        assert_eq!(tids, [1]);
        let mut buf = Vec::new();
        m.read("task/1/status", &mut buf).unwrap();
        assert_eq!(buf, b"s");
        assert!(matches!(m.read("limits", &mut buf), Err(Error::NotFound { .. })));
    }
}
