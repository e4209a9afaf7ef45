//! Reads of a cgroup directory named by its path, for the responses that
//! decide whether a cgroup may be frozen (`respond.rs`): its processes, the
//! cgroups below it, a control file. Observations read cgroups through
//! [`Source::cgroup_read`](super::Source::cgroup_read) instead, below the
//! mounts of [`CgroupMounts`](super::CgroupMounts).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::procfs::{cgroup_errno, read_at};
use crate::Error;

fn open_dir(dir: &Path) -> Result<std::os::fd::OwnedFd, Error> {
    rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| cgroup_errno(e, "open", dir.to_path_buf()))
}

/// Reads the control file `name` of the cgroup `dir` into `buf`.
pub fn read(dir: &Path, name: &str, buf: &mut Vec<u8>) -> Result<(), Error> {
    let fd = open_dir(dir)?;
    read_at(Some(&fd), name, || dir.join(name), buf)
}

/// Whether the cgroup `dir` has a control file `name`.
pub fn has_file(dir: &Path, name: &str) -> bool {
    open_dir(dir).is_ok_and(|fd| rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok())
}

/// The processes of the cgroup `dir` (`cgroup.procs`), in the order listed.
pub fn procs(dir: &Path) -> Result<Vec<u32>, Error> {
    let mut buf = Vec::with_capacity(256);
    read(dir, "cgroup.procs", &mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The cgroups just below `dir` (its subdirectories), sorted.
pub fn children(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let fd = open_dir(dir)?;
    let mut out = Vec::new();
    let entries = rustix::fs::Dir::read_from(&fd).map_err(|e| cgroup_errno(e, "read", dir.to_path_buf()))?;
    for entry in entries {
        let entry = entry.map_err(|e| cgroup_errno(e, "read", dir.to_path_buf()))?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        // Cgroup directories are real directories; control files are files.
        let is_dir = match entry.file_type() {
            FileType::Directory => true,
            FileType::Unknown => rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            _ => false,
        };
        if is_dir {
            out.push(dir.join(OsStr::from_bytes(name)));
        }
    }
    out.sort_unstable();
    Ok(out)
}
