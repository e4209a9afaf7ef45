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

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, Scope};

pub(crate) mod cgroupfs;
mod cgroups;
pub(crate) mod cgvalues;
pub(crate) mod mnts;
mod mock;
mod procfs;
mod stat;
pub(crate) mod tasks;
pub(crate) mod vmas;

pub use cgroups::CgroupMounts;
pub(crate) use procfs::{Opened, live_processes, node_tasks, proc_links};
pub use procfs::{Procfs, boot_id, list_processes};
#[cfg(test)]
pub(crate) use stat::PF_KTHREAD;
pub use stat::{parse_stat, parse_stat_flags, parse_stat_ppid};

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

/// What the text of a process's `mountinfo` depends on: its mount
/// namespace, and its root (the directory, and the mount it is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MountView {
    /// `ns/mnt`: device and inode of the mount namespace.
    pub namespace: (u64, u64),
    /// `root`: device and inode of the root directory.
    pub root: (u64, u64),
    /// The id of the mount the root directory is on (`mountinfo`'s first
    /// field).
    pub root_mount: u64,
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

    /// Reads the process's `mountinfo` into `buf`, as [`Source::read`]
    /// does. `view`: the mount namespace and root the process has now, as
    /// [`Source::mount_of`] and `ns/mnt` tell them, where they are known.
    /// The kernel binds a `mountinfo` descriptor to the namespace and root
    /// of the moment it is opened, so a source may keep one open only for
    /// the view it was opened in (and only once its text shows the view's
    /// root mount); the default reads the file afresh.
    fn read_mounts(&self, view: Option<&MountView>, buf: &mut Vec<u8>) -> Result<(), Error> {
        let _ = view;
        self.read("mountinfo", buf)
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

    /// The process's resource limits as numbers, where the source has them
    /// without reading `limits` (the task table): (soft, hard) of each of the
    /// kernel's sixteen limits, in the order `/proc/PID/limits` lists them,
    /// `u64::MAX` for `unlimited`. `None`: read the file. The default has none.
    fn limit_values(&self) -> Option<[[u64; 2]; 16]> {
        None
    }

    /// The process's status inputs, where the source has them without
    /// reading `status` (the task table): a digest of the kernel state the
    /// main thread's `status` fields that fdir reads are printed from
    /// (credentials, seccomp, the task's flags, its pid's numbers, its
    /// thread count; `tasks::STATUS`), and the thread count. The same
    /// digest as at an earlier observation: the same fields. `None`: read
    /// the file. The default has none.
    fn status_inputs(&self) -> Option<(crate::Digest, u32)> {
        None
    }

    /// Whether the process's status inputs, read again now, are still
    /// those of digest `inputs` (from [`Source::status_inputs`]) and print
    /// what `text`, its main thread's `status` read in between, says: the
    /// text is of the state the inputs name, so a memo may key the forms
    /// made from it by them. The default: no.
    fn status_inputs_agree(&self, inputs: crate::Digest, text: &[u8]) -> bool {
        let _ = (inputs, text);
        false
    }

    /// The process's cgroup set, where the source has it without reading
    /// `cgroup` (the task table's status inputs): an identity of the set of
    /// cgroups, one a hierarchy, its `cgroup` is printed from, the same for
    /// every process in the same cgroups (the kernel's `css_set`, alive
    /// while a process is in it). `again`: asked of the kernel anew, not
    /// from the record made at the check's first question. `None`: none
    /// (the default).
    fn cgroup_set(&self, again: bool) -> Option<u64> {
        let _ = again;
        None
    }

    /// The process's maps inputs into `out`: the kernel's copy of its
    /// memory mappings that `maps` is printed from (`vmas.rs`), where the
    /// source makes one; `false` where it does not (the default), or not
    /// now (too many mappings, a walk that could not lock the mm). Two
    /// copies are the same if and only if what they copy is.
    fn maps_inputs(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// Keeps the descriptor of `rel`, where the source keeps one open,
    /// through this observation without reading it (a file read only every
    /// few observations). The default keeps none.
    fn keep_unread(&self, rel: &str) {
        let _ = rel;
    }

    /// The digest of the record of cgroup control values this source makes
    /// the process's control files from (`cgvalues.rs`), where it makes
    /// them; `None` where it does not (the default). The same record makes
    /// the same texts.
    fn cgroup_values_digest(&self) -> Option<crate::Digest> {
        None
    }

    /// Whether the last [`Source::cgroup_read`] on this thread was made from
    /// that record, not read from its file (the default: read).
    fn cgroup_read_made(&self) -> bool {
        false
    }

    /// The process's mount inputs into `out`: the kernel's copy of the
    /// mount namespace its `mountinfo` is printed from (`mnts.rs`), where
    /// the source makes one; `false` where it does not (the default), or
    /// not now. Two copies are the same if what `mountinfo` prints from
    /// them is, but for what `mnts.rs` says they lack.
    fn mount_inputs(&self, out: &mut Vec<u8>) -> bool {
        let _ = out;
        false
    }

    /// [`Source::keep_unread`] for the `mountinfo` descriptor that
    /// [`Source::read_mounts`] reads for `view`.
    fn keep_mounts_unread(&self, view: Option<&MountView>) {
        let _ = view;
    }

    /// Why a read of `rel` fails for every process of this kernel, where
    /// that is known without reading (an `attr/...` file no security module
    /// provides): the error, in words that name no process. A read of such
    /// a file tells nothing about this process, so its refusal needs no
    /// [`Source::alive`] after it. The default knows of none.
    fn refused_everywhere(&self, rel: &str) -> Option<std::sync::Arc<str>> {
        let _ = rel;
        None
    }

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
    fn read_mounts(&self, view: Option<&MountView>, buf: &mut Vec<u8>) -> Result<(), Error> {
        (**self).read_mounts(view, buf)
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
    fn refused_everywhere(&self, rel: &str) -> Option<std::sync::Arc<str>> {
        (**self).refused_everywhere(rel)
    }
    fn limit_values(&self) -> Option<[[u64; 2]; 16]> {
        (**self).limit_values()
    }
    fn status_inputs(&self) -> Option<(crate::Digest, u32)> {
        (**self).status_inputs()
    }
    fn keep_unread(&self, rel: &str) {
        (**self).keep_unread(rel);
    }
    fn maps_inputs(&self, out: &mut Vec<u8>) -> bool {
        (**self).maps_inputs(out)
    }
    fn mount_inputs(&self, out: &mut Vec<u8>) -> bool {
        (**self).mount_inputs(out)
    }
    fn cgroup_values_digest(&self) -> Option<crate::Digest> {
        (**self).cgroup_values_digest()
    }
    fn cgroup_read_made(&self) -> bool {
        (**self).cgroup_read_made()
    }
    fn keep_mounts_unread(&self, view: Option<&MountView>) {
        (**self).keep_mounts_unread(view);
    }
    fn status_inputs_agree(&self, inputs: crate::Digest, text: &[u8]) -> bool {
        (**self).status_inputs_agree(inputs, text)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

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

    /// What every process has alike is answered from `/proc/self` once
    /// (`NodeFacts`): a child's `ns` listing and its LSM attribute files
    /// must read exactly as they do through a proc root that is not the
    /// live one (`/proc/../proc`: the same files, every one read).
    #[test]
    fn node_facts_answer_as_the_files_do() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let cached = Procfs::pid(pid);
        let direct = Procfs::try_pid_at("/proc/../proc", pid).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        cached.list("ns", &mut a).unwrap();
        direct.list("ns", &mut b).unwrap();
        assert_eq!(a, b);
        // A namespace's identity from its link's text is the one `stat` gives.
        for kind in &a {
            let rel = format!("ns/{kind}");
            match (cached.stat(&rel), direct.stat(&rel)) {
                (Ok(x), Ok(y)) => assert_eq!(x, y, "{rel}"),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string().replace("/proc/../proc", "/proc")),
                other => panic!("{rel}: {other:?}"),
            }
        }
        for attr in crate::canon::lsm::ATTRS {
            let rel = format!("attr/{attr}");
            let (mut x, mut y) = (Vec::new(), Vec::new());
            let (ra, rb) = (cached.read(&rel, &mut x), direct.read(&rel, &mut y));
            assert_eq!(ra.is_ok(), rb.is_ok(), "{rel}: {ra:?} {rb:?}");
            assert_eq!(x, y, "{rel}");
            if let (Err(ea), Err(eb)) = (&ra, &rb) {
                assert_eq!(std::mem::discriminant(ea), std::mem::discriminant(eb), "{rel}: {ea} {eb}");
                // Same message, the path of the process named in both.
                assert_eq!(ea.to_string(), eb.to_string().replace("/proc/../proc", "/proc"), "{rel}");
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
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
