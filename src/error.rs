//! The one error type of the library: the cases a caller acts on.

use std::io;
use std::path::PathBuf;

use crate::Subsystem;
use crate::baseline::{BaselineProblem, KeyProblem};

/// Everything that can go wrong in fdir, as a value.
///
/// Messages are lowercase, without a trailing period, and name the file or the
/// process concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target process has exited.
    #[error("process {pid} is gone")]
    Gone {
        /// The process id.
        pid: u32,
    },
    /// The pid now belongs to another process than the one baselined.
    #[error(
        "process {pid} is not the baselined process: it started at tick {actual}, the baseline's at tick {expected} (the pid was reused)"
    )]
    Reused {
        /// The process id.
        pid: u32,
        /// Start time (clock ticks since boot) recorded in the baseline.
        expected: u64,
        /// Start time of the process that has the pid now.
        actual: u64,
    },
    /// The baseline is of another kind of target than the source it is checked against.
    #[error("the baseline is of {baseline}, the check reads {source_target}")]
    TargetMismatch {
        /// What the baseline describes.
        baseline: String,
        /// What the source reads.
        source_target: String,
    },
    /// A file that does not exist (on this kernel, or any more).
    #[error("{path} does not exist")]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Reading a file was refused.
    #[error("permission denied reading {path}")]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// Something this source cannot read at all: a cgroup outside fdir's
    /// view, a kind of state a custom [`crate::Source`] does not provide.
    /// Makes the subsystem unobservable.
    #[error("cannot read {what}: {reason}")]
    Unavailable {
        /// What could not be read: a file, a cgroup.
        what: String,
        /// Why.
        reason: String,
    },
    /// Any other I/O failure, with the operation and the path.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done: "read", "open", "write" ...
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file's contents are not what the kernel writes.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A thread that another tracer (a debugger, strace, another fdir) traces:
    /// fdir never stops a thread that is already traced.
    #[error("thread {tid} is already traced{}", traced_by(*.tracer))]
    Traced {
        /// The thread id.
        tid: u32,
        /// The pid of its tracer (`TracerPid` in its status), when it was
        /// still attached by the time fdir looked for it.
        tracer: Option<u32>,
    },
    /// A thread did not stop for a ptrace read in time (it is in an
    /// uninterruptible sleep, or the machine is overloaded); it was let go.
    #[error("thread {tid} did not stop within {} ms for a ptrace read; it was let go", waited.as_millis())]
    NotStopped {
        /// The thread id.
        tid: u32,
        /// How long fdir waited.
        waited: std::time::Duration,
    },
    /// An operation that needs a privilege fdir does not have.
    #[error("{what} needs {privilege}")]
    NeedsPrivilege {
        /// What was attempted: "reading seccomp filter programs".
        what: &'static str,
        /// What it needs: "CAP_SYS_ADMIN".
        privilege: &'static str,
    },
    /// A subsystem was asked for that the baseline does not hold.
    #[error("the baseline holds no {subsystem} state: take a new baseline that includes it")]
    NotInBaseline {
        /// The subsystem asked for.
        subsystem: Subsystem,
    },
    /// Stored state that fails its own integrity check.
    #[error("corrupt baseline: {0}")]
    Corrupt(String),
    /// A baseline file that cannot be loaded or saved, and why.
    #[error("baseline file {path} {problem}")]
    Baseline {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: BaselineProblem,
    },
    /// A key file that cannot be used.
    #[error("key file {path} {problem}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A name that is not one of the known ones.
    #[error("unknown {kind} {name:?}: expected one of {expected}")]
    UnknownName {
        /// "subsystem", "severity" ...
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names accepted.
        expected: String,
    },
    /// A configuration value that cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The daemon thread could not be started.
    #[error("cannot start the monitor thread: {0}")]
    Spawn(#[source] io::Error),
    /// The metrics server cannot listen on its address (in use, not an
    /// address of this host, not an address at all).
    #[error("cannot serve metrics on {addr}: {source}")]
    MetricsListen {
        /// The address asked for, as given.
        addr: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The metrics server thread could not be started.
    #[error("cannot start the metrics server thread for {addr}: {source}")]
    MetricsThread {
        /// The address the server was bound to.
        addr: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A broken internal invariant: a bug in fdir, reported instead of a panic.
    #[error("internal error (a bug in fdir, please report it): {0}")]
    Bug(String),
}

fn traced_by(tracer: Option<u32>) -> String {
    match tracer {
        Some(pid) => format!(" by pid {pid}"),
        None => " (by a tracer that let go before it could be named)".into(),
    }
}

impl Error {
    /// Wraps an I/O error with the operation and path, sorting out the cases a
    /// caller acts on (permission denied).
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { path },
            _ => Error::Io { op, path, source },
        }
    }
}
