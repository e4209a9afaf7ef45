//! The files themselves: bounded, trust-checked reads, atomic writes
//! (temporary file, fsync, rename, fsync of the directory) and the removal
//! of temporary files a crash left.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::Error;
use crate::error::BaselineProblem;

/// A temporary file older than this is stale even if its writer's pid is alive
/// (the pid may have been reused): no save takes an hour.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Removes the temporary files that crashed saves of `path` left in its
/// directory (`.NAME.tmp.PID.N`), and returns their paths.
///
/// A temporary file is stale when the process that made it is gone, or when
/// it is older than an hour (its pid may have been reused); the temporary
/// files of a save in progress are kept. Only regular files with exactly that
/// name pattern are touched. A writer in another pid namespace sharing the
/// directory cannot be seen: its save in progress may then fail, never
/// corrupt the file.
pub fn remove_stale_temp_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Baseline { path: path.to_path_buf(), problem: BaselineProblem::BadPath })?;
    let dir = parent_dir(path);
    let prefix = temp_prefix(name);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { op: "list", path: dir.to_path_buf(), source }),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io { op: "list", path: dir.to_path_buf(), source })?;
        let file_name = entry.file_name();
        let Some(pid) = file_name.as_bytes().strip_prefix(prefix.as_bytes()).and_then(temp_pid) else {
            continue;
        };
        // DirEntry::metadata does not follow symbolic links.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let old = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age > STALE_AFTER);
        if process_alive(pid) && !old {
            continue;
        }
        let stale = entry.path();
        match fs::remove_file(&stale) {
            Ok(()) => removed.push(stale),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { op: "remove", path: stale, source }),
        }
    }
    Ok(removed)
}

pub(super) enum ReadProblem {
    Missing,
    Untrusted(crate::trust::Untrusted),
    NotAFile(&'static str),
    Unreadable(io::Error),
    /// The size when the file reported it, `None` if it grew while read.
    TooLarge(Option<u64>),
}

/// What a file read by [`read_bounded`] is, for its trust checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trust {
    Baseline,
    Key,
}

/// Reads a regular file of at most `limit` bytes, checked on the size the file
/// reports and again while reading (a file can grow, and `/proc` files report
/// no size). Opened non-blocking so that a FIFO is refused, not waited on.
///
/// Trust (`crate::trust`): a baseline ([`Trust::Baseline`]) is opened without
/// following a symbolic link and its directory is checked; the file opened is
/// refused if someone other than root or fdir's user may have written it (a
/// key also if others may read it).
pub(super) fn read_bounded(path: &Path, limit: u64, trust: Trust) -> Result<Vec<u8>, ReadProblem> {
    let (file, len) = open_bounded(path, limit, trust)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(ReadProblem::Unreadable)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(ReadProblem::TooLarge(None));
    }
    Ok(bytes)
}

/// The SHA-256 of what [`read_bounded`] would read, hashed through a buffer
/// on the stack: a watch asks its baseline file's digest every few cycles,
/// and a whole copy of a file of several hundred KiB would raise its peak
/// memory by as much each time (the heap keeps what it grew to).
pub(super) fn digest_bounded(path: &Path, limit: u64, trust: Trust) -> Result<crate::Digest, ReadProblem> {
    let (file, _) = open_bounded(path, limit, trust)?;
    let mut file = file.take(limit.saturating_add(1));
    let mut hasher = crate::digest::Hasher::new();
    let mut buf = [0u8; 16 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadProblem::Unreadable(e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
    if total > limit {
        return Err(ReadProblem::TooLarge(None));
    }
    Ok(hasher.finish())
}

/// Opens a file for [`read_bounded`] or [`digest_bounded`], with every
/// check made before a byte is read; returns it and the size it reports.
pub(super) fn open_bounded(path: &Path, limit: u64, trust: Trust) -> Result<(std::fs::File, u64), ReadProblem> {
    let mut flags = libc::O_NONBLOCK;
    if trust == Trust::Baseline {
        flags |= libc::O_NOFOLLOW;
        crate::trust::check_dir(parent_dir(path)).map_err(ReadProblem::Untrusted)?;
    }
    let file = OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            ReadProblem::Missing
        } else if trust == Trust::Baseline && e.raw_os_error() == Some(libc::ELOOP) {
            ReadProblem::Untrusted(crate::trust::Untrusted::Symlink { path: path.to_path_buf() })
        } else {
            ReadProblem::Unreadable(e)
        }
    })?;
    let meta = file.metadata().map_err(ReadProblem::Unreadable)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadProblem::NotAFile(if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        }));
    }
    let kind = if trust == Trust::Key { crate::trust::Kind::Secret } else { crate::trust::Kind::Public };
    crate::trust::check_file(path, &meta, kind).map_err(ReadProblem::Untrusted)?;
    if meta.len() > limit {
        return Err(ReadProblem::TooLarge(Some(meta.len())));
    }
    Ok((file, meta.len()))
}

/// The directory of `path` (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `.NAME.tmp.`: the start of the temporary files of saves of `NAME`.
pub(super) fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp.");
    prefix
}

/// The pid in the `PID.N` end of a temporary file's name.
pub(super) fn temp_pid(rest: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(rest).ok()?;
    let (pid, n) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

pub(super) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    // EPERM: it exists, but belongs to someone else.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| Error::Io {
        op: "fsync",
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to a new temporary file next to `path`, fsyncs it, calls
/// `before_rename` (a seam for tests to fail a save half-way), renames it over
/// `path` and fsyncs the directory. On an error before the rename, the
/// temporary file is removed.
pub(super) fn write_atomically(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Baseline { path: path.to_path_buf(), problem: BaselineProblem::BadPath })?;
    let dir = parent_dir(path);
    let (tmp, file) = create_temp(dir, name)?;
    let written = fill_and_rename(file, &tmp, path, bytes, before_rename);
    if let Err(e) = written {
        if let Err(rm) = fs::remove_file(&tmp)
            && rm.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the temporary file {}: {rm}", tmp.display());
        }
        return Err(e);
    }
    sync_dir(dir)
}

pub(super) fn fill_and_rename(
    mut file: File,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), Error> {
    let io = |op, source| Error::Io { op, path: tmp.to_path_buf(), source };
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    before_rename(tmp).map_err(|e| io("write", e))?;
    fs::rename(tmp, path).map_err(|source| Error::Io { op: "replace", path: path.to_path_buf(), source })
}

/// Creates `.NAME.tmp.PID.N` in `dir` with O_EXCL and mode 0600.
pub(super) fn create_temp(dir: &Path, name: &OsStr) -> Result<(PathBuf, File), Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = temp_prefix(name);
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..64 {
        let mut tmp_name = prefix.clone();
        tmp_name.push(format!("{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(source) => return Err(Error::Io { op: "create a temporary file in", path: dir.to_path_buf(), source }),
        }
    }
    Err(Error::Io { op: "create a temporary file in", path: dir.to_path_buf(), source: last })
}
