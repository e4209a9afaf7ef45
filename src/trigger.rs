//! Triggers: the kernel's own notices of a change, used to re-check at once.
//!
//! A trigger never replaces the timer (a bit flipped by radiation makes no
//! system call and raises no notice); it only names what to re-check now.
//! Each source is optional, found at start, and says why when it cannot run.
//! This file holds the vocabulary every source speaks; each source is a
//! module of its own.

use std::fmt;
use std::os::fd::BorrowedFd;

pub mod connector;
pub mod hub;
pub mod inotify;
pub mod mountinfo;

pub mod ebpf;

/// A source of triggers, as named in the `started` event and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The proc connector (netlink): fork, exec, id changes, ptrace, exit.
    Connector,
    /// eBPF programs on the system calls and kernel functions that change
    /// isolation.
    Ebpf,
    /// `poll` on `/proc/self/mountinfo`: the kernel signals a changed mount
    /// table.
    Mountinfo,
    /// inotify on cgroup control files.
    Inotify,
}

impl Kind {
    /// Every kind, in the order they are named.
    pub const ALL: [Kind; 4] = [Kind::Connector, Kind::Ebpf, Kind::Mountinfo, Kind::Inotify];

    /// The name used in events, metrics and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Connector => "connector",
            Kind::Ebpf => "ebpf",
            Kind::Mountinfo => "mountinfo",
            Kind::Inotify => "inotify",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a trigger asks to re-check now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recheck {
    /// A process (thread group id) whose isolation a call may have changed.
    Process(u32),
    /// A new process (fork or clone of a thread group): under `--all`, to
    /// baseline.
    New(u32),
    /// A process that ran `execve`.
    Exec(u32),
    /// A process that exited.
    Exit(u32),
    /// The node's own state (kernel hardening, `/proc/sys`).
    Node,
    /// The mount tables.
    Mounts,
    /// The processes of a cgroup, named by its directory in cgroupfs.
    Cgroup(std::path::PathBuf),
    /// Everything: a source lost events, and only a full check is sure.
    All,
}

/// Why a source cannot run here, said once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The source.
    pub kind: Kind,
    /// Why, in words a person can act on (lowercase, no trailing period).
    pub reason: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} triggers unavailable: {}", self.kind, self.reason)
    }
}

/// A running source of triggers, as the hub sees it: readable (poll, epoll)
/// when notices wait, drained into [`Recheck`]s, and counting what it lost.
///
/// A source owns its descriptors and reads only its own files (the
/// `/proc` and cgroupfs files it watches are opened by its own named
/// functions). The eBPF source plugs in with `as_fd`, `drain` and `lost`.
pub trait Source: Send {
    /// Which source this is.
    fn kind(&self) -> Kind;
    /// Readable when notices are waiting.
    fn as_fd(&self) -> BorrowedFd<'_>;
    /// Reads every waiting notice into `out`; returns how many it read
    /// (notices that name nothing to re-check count too).
    fn drain(&mut self, out: &mut Vec<Recheck>) -> usize;
    /// Notices the kernel could not deliver, cumulative.
    fn lost(&self) -> u64;
    /// The processes watched now (fdir's own included): a source that
    /// follows objects of theirs (mount tables, cgroups) aims at them. The
    /// default follows nothing.
    fn follow(&mut self, _pids: &[u32]) {}
}

/// A source that follows objects of the watched processes asks every one
/// of them again (a process may have entered another namespace or cgroup)
/// at most this often; in between, only the processes it does not follow
/// yet. The watched processes change at every cycle on a node whose
/// processes come and go, and asking each of 500 again then cost a `statx`
/// and a read of `/proc/PID/cgroup` for every one at every cycle
/// (BENCHMARKS.md). The runtime aims the sources again at least every 10 s,
/// so an idle node's are all asked again then.
pub const ASK_AGAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a source that last asked every followed process at `asked`
/// must ask them all again now ([`ASK_AGAIN`]).
pub(crate) fn ask_all(asked: Option<std::time::Instant>) -> bool {
    asked.is_none_or(|t| t.elapsed() >= ASK_AGAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_followed_process_is_asked_again_after_ask_again_only() {
        let now = std::time::Instant::now();
        assert!(ask_all(None), "the first follow asks every one");
        assert!(!ask_all(Some(now)), "a follow soon after asks only the new");
        if let Some(then) = now.checked_sub(ASK_AGAIN) {
            assert!(ask_all(Some(then)));
        }
    }
}
