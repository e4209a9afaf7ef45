//! The one error type of the library: the cases a caller acts on, and why a
//! baseline or key file was refused (`BaselineProblem`, `KeyProblem`, which
//! `baseline` re-exports). It imports nothing above it.

use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Severity, Subsystem};

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

/// The versions of the baseline file format this fdir reads (re-exported as
/// `baseline::SUPPORTED_VERSIONS`; its messages cite them).
pub const SUPPORTED_VERSIONS: &[u64] = &[1, 2];

/// The largest key file fdir reads: 64 KiB (`baseline::MAX_KEY_FILE`).
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// The fewest bytes a key may have (`baseline::Key::MIN_LEN`).
pub(crate) const KEY_MIN_LEN: usize = 16;

/// Why a baseline file was refused; the message of [`Error::Baseline`], which
/// names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineProblem {
    /// There is no file at the path.
    #[error("does not exist")]
    Missing,
    /// A symbolic link, another user's file, a file others may write, or one
    /// in a directory others may write (`crate::trust`).
    #[error("{0}")]
    Untrusted(crate::trust::Untrusted),
    /// The path is a directory, a FIFO, a device ... (named).
    #[error("is {0}, not a baseline file")]
    NotAFile(&'static str),
    /// The path has no file name (`/`, `..`): nothing can be saved there.
    #[error("is not a path to a file")]
    BadPath,
    /// Opening or reading failed.
    #[error("cannot be read: {0}")]
    Unreadable(io::Error),
    /// The file holds no bytes.
    #[error("is empty")]
    Empty,
    /// The file is larger than the bound.
    #[error("is larger than {} MiB, the most fdir reads or writes{}", .limit >> 20,
        .size.map(|s| format!(" ({s} bytes)")).unwrap_or_else(|| " (it grew while being read)".to_owned()))]
    TooLarge {
        /// Its size, when known before reading (otherwise it grew while read).
        size: Option<u64>,
        /// The bound.
        limit: u64,
    },
    /// It does not begin as a baseline file, nor end as one.
    #[error("is not an fdir baseline: it does not begin with {{\"format\":\"fdir-baseline\"")]
    NotBaseline,
    /// It does not end with its digest: cut short, or its last bytes changed.
    #[error("is truncated or corrupted: it does not end with its SHA-256 digest")]
    Truncated,
    /// The digest does not match the bytes.
    #[error("has been modified or corrupted: its SHA-256 does not match")]
    DigestMismatch,
    /// A version of the format this fdir does not read.
    #[error(
        "is format version {found}, which this fdir does not read (it reads versions {}): use the fdir that wrote it, or take a new baseline",
        supported_list()
    )]
    UnsupportedVersion {
        /// The version the file says it is.
        found: u64,
    },
    /// Its digest matches, but its content is not a valid baseline.
    #[error("is not a valid baseline: {0}")]
    Invalid(String),
    /// A signed file loaded without a key.
    #[error("is signed: pass --key with the key it was signed with")]
    Signed,
    /// An unsigned file loaded with a key.
    #[error(
        "is not signed, but a key was given: refusing it, since anyone can strip a signature (take a new baseline with --key)"
    )]
    Unsigned,
    /// The HMAC does not match with the key given.
    #[error("HMAC does not match: wrong key or modified file")]
    HmacMismatch,
    /// A record set of a version 2 file that does not match the digest it
    /// is stored under.
    #[error(
        "holds {subsystem} records stored under digest {digest} that do not match it (or are not in canonical form)"
    )]
    RecordSet {
        /// The subsystem whose table holds the set.
        subsystem: Subsystem,
        /// The digest it is stored under (short form).
        digest: String,
    },
    /// A snapshot whose records do not match its digests.
    #[error("holds a snapshot of {target} whose records fail their check: {reason}")]
    Records {
        /// The target of the snapshot.
        target: String,
        /// Which subsystem, and how.
        reason: String,
    },
}

fn supported_list() -> String {
    SUPPORTED_VERSIONS.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// Why a key file was refused; the message of [`Error::Key`], which names the
/// file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// There is no file at the path.
    #[error("does not exist")]
    Missing,
    /// The path is a directory, a FIFO, a device ... (named).
    #[error("is {0}, not a key file")]
    NotAFile(&'static str),
    /// Opening or reading failed.
    #[error("cannot be read: {0}")]
    Unreadable(io::Error),
    /// The file holds no key.
    #[error("is empty")]
    Empty,
    /// The key is shorter than [`crate::baseline::Key::MIN_LEN`].
    #[error(
        "is too short: {len} bytes, a key needs at least {} (make one with `head -c 32 /dev/urandom`)",
        KEY_MIN_LEN
    )]
    TooShort {
        /// Its length, after the trailing newline is removed.
        len: usize,
    },
    /// The file is larger than [`MAX_KEY_FILE`].
    #[error("is larger than {} KiB: it is not a key", MAX_KEY_FILE >> 10)]
    TooLarge,
    /// Another user owns it, or others may write or read it.
    #[error("{0}")]
    Untrusted(crate::trust::Untrusted),
}

// The names of subsystems and severities, parsed here rather than in
// `subsystem.rs`: a wrong name is an [`Error::UnknownName`].

impl FromStr for Subsystem {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name("subsystem", Subsystem::ALL, Subsystem::name, s)
    }
}

impl FromStr for Severity {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name("severity", Severity::ALL, Severity::name, s)
    }
}

/// The member of `all` called `s`, or an error listing every name.
fn by_name<T: Copy>(kind: &'static str, all: &[T], name: fn(T) -> &'static str, s: &str) -> Result<T, crate::Error> {
    all.iter().copied().find(|&x| name(x) == s).ok_or_else(|| crate::Error::UnknownName {
        kind,
        name: s.to_owned(),
        expected: all.iter().map(|&x| name(x)).collect::<Vec<_>>().join(", "),
    })
}
