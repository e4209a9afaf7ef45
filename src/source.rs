//! The only code that reads the filesystem: a [`Source`] trait and [`Procfs`],
//! its implementation over `/proc` (and, for tests, canned text).
//!
//! A process is pinned by a directory file descriptor on `/proc/PID`, opened
//! once and checked against the process's start time: every later read goes
//! through `openat` on that descriptor, so a pid that is reused by another
//! process can never be read by mistake: the kernel answers ESRCH for the old
//! process instead.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::ptrace::{self, Failure};

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
            (Target::Mock, Target::Mock) => true,
            _ => false,
        }
    }

    /// The start time of a process (0 when it could not be read).
    pub fn pid_start(&self) -> u64 {
        match self {
            Target::Process { start_time, .. } => *start_time,
            Target::Mock => 0,
        }
    }

    /// The process id, for a process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Target::Process { pid, .. } => Some(*pid),
            Target::Mock => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Process { pid, name, .. } if name.is_empty() => write!(f, "process {pid}"),
            Target::Process { pid, name, .. } => write!(f, "process {pid} ({name})"),
            Target::Mock => f.write_str("mock process"),
        }
    }
}

/// Where fdir reads a process's state from.
///
/// Implementations must never turn a failed read into empty content: a file
/// that cannot be read is an error ([`Error::PermissionDenied`],
/// [`Error::Gone`], [`Error::NotFound`], [`Error::Io`]).
pub trait Source {
    /// What this source reads, or why it cannot read anything.
    fn target(&self) -> Result<Target, Error>;

    /// Reads the file `rel` of the process (`"maps"`, `"task/42/status"`) into
    /// `buf`, replacing its contents.
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error>;

    /// Lists the thread ids of the process into `out`, replacing its contents.
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error>;

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
    /// [`Error::NeedsPrivilege`] and [`Error::Unsupported`] mean this monitor
    /// or kernel cannot read programs (the subsystem degrades to the filter
    /// count); [`Error::Traced`] and [`Error::NotStopped`] that it cannot now;
    /// [`Error::NotFound`] that the thread has exited. The default cannot.
    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        let _ = (tid, out);
        Err(Error::Unsupported("this source cannot read seccomp filter programs".into()))
    }

    /// Reads the process's memory at `addr` into `buf`, as far as it can be
    /// read: returns the number of bytes read, fewer than `buf.len()` (or 0)
    /// when the rest cannot be read (a mapping past the end of its file).
    /// The default cannot.
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let _ = (addr, buf);
        Err(Error::Unsupported("this source cannot read process memory".into()))
    }
}

impl<S: Source + ?Sized> Source for &S {
    fn target(&self) -> Result<Target, Error> {
        (**self).target()
    }
    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        (**self).read(rel, buf)
    }
    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        (**self).threads(out)
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
}

/// Files larger than this are refused: `maps` at the kernel's default
/// `max_map_count` (65530 mappings) is under 10 MiB.
pub const MAX_FILE: usize = 64 << 20;

/// The /proc source: a live process, or canned text for tests.
///
/// ```no_run
/// use fdir::Procfs;
/// let me = Procfs::live();           // this process
/// let init = Procfs::pid(1);          // another process, pinned to its start time
/// let canned = Procfs::mock("", "", ""); // canned text (maps, status, cgroup)
/// ```
#[derive(Debug)]
pub struct Procfs {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Process(ProcessDir),
    Mock(BTreeMap<String, Vec<u8>>),
    Failed { pid: u32, path: PathBuf, kind: FailKind },
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
}

fn errno_to_error(e: rustix::io::Errno, op: &'static str, path: PathBuf, pid: u32) -> Error {
    match e {
        rustix::io::Errno::SRCH => Error::Gone { pid },
        rustix::io::Errno::NOENT => Error::NotFound { path },
        _ => Error::io(op, path, io::Error::from(e)),
    }
}

/// Reads an open file to its end into `buf` with few, large reads.
fn read_fd(fd: &OwnedFd, buf: &mut Vec<u8>) -> Result<(), rustix::io::Errno> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(64 * 1024));
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

/// Parses `/proc/PID/stat`: (command name, state, start time in ticks).
pub(crate) fn parse_stat(stat: &[u8]) -> Option<(String, u8, u64)> {
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

/// The `flags` field (9) of a stat line.
pub(crate) fn parse_stat_flags(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = stat.get(close + 1..)?;
    // Fields after the name: state (3), ppid, pgrp, session, tty_nr, tpgid, flags (9).
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

impl Procfs {
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
        Procfs::try_pid(pid).unwrap_or_else(|e| Procfs::failed(pid, PathBuf::from(format!("/proc/{pid}")), &e))
    }

    /// Another process, pinned to its identity; fails if it cannot be opened.
    pub fn try_pid(pid: u32) -> Result<Procfs, Error> {
        Procfs::try_pid_at("/proc", pid)
    }

    /// A process under another proc root (a captured or bind-mounted tree).
    pub fn try_pid_at(root: impl Into<PathBuf>, pid: u32) -> Result<Procfs, Error> {
        let root = root.into();
        let path = root.join(pid.to_string());
        let dir = rustix::fs::open(&path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| match e {
                rustix::io::Errno::NOENT | rustix::io::Errno::SRCH => Error::Gone { pid },
                e => errno_to_error(e, "open", path.clone(), pid),
            })?;
        let mut dir = ProcessDir { root, pid, start_time: 0, name: String::new(), dir };
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

    fn failed(pid: u32, path: PathBuf, e: &Error) -> Procfs {
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

    /// Canned files, by path relative to `/proc/PID` (`"task/7/status"`).
    /// Threads are the numbers under `task/`. Two kinds of names are not
    /// files: `mem/HEX` holds the memory at address HEX (for
    /// [`Source::read_mem`]), and `task/TID/seccomp/N` the raw bytes of
    /// thread TID's filter program N (for [`Source::seccomp_programs`]; a
    /// `task/TID/seccomp/denied` entry makes that read need a privilege).
    pub fn mock_files<K: Into<String>, V: AsRef<[u8]>>(files: impl IntoIterator<Item = (K, V)>) -> Procfs {
        Procfs { inner: Inner::Mock(files.into_iter().map(|(k, v)| (k.into(), v.as_ref().to_vec())).collect()) }
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
            Inner::Failed { pid, .. } => Some(*pid),
            Inner::Mock(_) => None,
        }
    }
}

impl ProcessDir {
    fn path_of(&self, rel: &str) -> PathBuf {
        self.root.join(self.pid.to_string()).join(rel)
    }

    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        let fd = rustix::fs::openat(&self.dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| errno_to_error(e, "open", self.path_of(rel), self.pid))?;
        read_fd(&fd, buf).map_err(|e| match e {
            rustix::io::Errno::FBIG => {
                Error::Parse { path: self.path_of(rel), message: format!("larger than {} MiB", MAX_FILE >> 20) }
            }
            e => errno_to_error(e, "read", self.path_of(rel), self.pid),
        })
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
            return Err(Error::Unsupported("fdir cannot stop its own threads to read their seccomp filters".into()));
        }
        // Checked first, so that a read that must fail never stops the target.
        let admin = rustix::thread::capabilities(None)
            .is_ok_and(|c| c.effective.contains(rustix::thread::CapabilitySet::SYS_ADMIN));
        if !admin {
            return Err(Error::NeedsPrivilege { what: "reading seccomp filter programs", privilege: "CAP_SYS_ADMIN" });
        }
        if !matches!(rustix::thread::secure_computing_mode(), Ok(rustix::thread::SecureComputingMode::Disabled)) {
            return Err(Error::Unsupported(
                "fdir runs under seccomp itself, and the kernel exports filters only to an unconfined tracer".into(),
            ));
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
            Err(Failure::Unsupported(m)) => Err(Error::Unsupported(m)),
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
        return Err(Error::Unsupported(format!("this mock has no seccomp programs for thread {tid}")));
    }
    while let Some(p) = files.get(&format!("{dir}{}", out.len())) {
        out.push(p.clone());
    }
    Ok(Duration::ZERO)
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
    if any { Ok(0) } else { Err(Error::Unsupported("this mock has no memory".into())) }
}

impl Source for Procfs {
    fn target(&self) -> Result<Target, Error> {
        match &self.inner {
            Inner::Process(d) => Ok(Target::Process { pid: d.pid, start_time: d.start_time, name: d.name.clone() }),
            Inner::Mock(_) => Ok(Target::Mock),
            Inner::Failed { pid, path, kind } => Err(match kind {
                FailKind::Gone => Error::Gone { pid: *pid },
                FailKind::Denied => Error::PermissionDenied { path: path.clone() },
                FailKind::Other(m) => Error::Io { op: "open", path: path.clone(), source: io::Error::other(m.clone()) },
            }),
        }
    }

    fn read(&self, rel: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
        match &self.inner {
            Inner::Process(d) => d.read(rel, buf),
            Inner::Mock(files) => {
                let data = files.get(rel).ok_or_else(|| Error::NotFound { path: self.path_of(rel) })?;
                buf.clear();
                buf.extend_from_slice(data);
                Ok(())
            }
            Inner::Failed { .. } => self.target().map(|_| ()),
        }
    }

    fn threads(&self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        match &self.inner {
            Inner::Process(d) => {
                let task = rustix::fs::openat(
                    &d.dir,
                    "task",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno_to_error(e, "open", d.path_of("task"), d.pid))?;
                let dir = rustix::fs::Dir::read_from(&task)
                    .map_err(|e| errno_to_error(e, "read", d.path_of("task"), d.pid))?;
                for entry in dir {
                    let entry = entry.map_err(|e| errno_to_error(e, "read", d.path_of("task"), d.pid))?;
                    if let Some(tid) = entry.file_name().to_str().ok().and_then(|s| s.parse().ok()) {
                        out.push(tid);
                    }
                }
                out.sort_unstable();
                Ok(())
            }
            Inner::Mock(files) => {
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
            Inner::Failed { .. } => self.target().map(|_| ()),
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
            Inner::Mock(_) => true,
            Inner::Failed { .. } => false,
        }
    }

    fn path_of(&self, rel: &str) -> PathBuf {
        match &self.inner {
            Inner::Process(d) => d.path_of(rel),
            Inner::Mock(_) => PathBuf::from("mock").join(rel),
            Inner::Failed { path, .. } => path.join(rel),
        }
    }

    fn seccomp_programs(&self, tid: u32, out: &mut Vec<Vec<u8>>) -> Result<Duration, Error> {
        match &self.inner {
            Inner::Process(d) => d.seccomp_programs(tid, out),
            Inner::Mock(files) => mock_programs(files, tid, out),
            Inner::Failed { .. } => self.target().map(|_| Duration::ZERO),
        }
    }

    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match &self.inner {
            Inner::Process(d) => d.read_mem(addr, buf),
            Inner::Mock(files) => mock_mem(files, addr, buf),
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
