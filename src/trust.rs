//! Whether a file fdir acts on can be trusted: the policy (commands fdir runs
//! as root), the key (signs baselines) and the baseline file (what fdir
//! believes is normal).
//!
//! Such a file is refused when someone other than root and fdir's own user
//! could have written it: owned by another user, or writable by its group or
//! by others. A key is refused too when its group or others may read it (they
//! could sign a forged baseline). A baseline is opened without following a
//! symbolic link, and refused in a directory that another user owns or that
//! others may write without the sticky bit: whoever may write the directory
//! may replace the file. Each refusal says how to fix it (SECURITY.md,
//! "Files fdir trusts").

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a file is to fdir, which sets what is asked of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A policy file or a baseline file: no one else may write it.
    Public,
    /// A key file: no one else may write it or read it.
    Secret,
}

/// Why a file (or its directory) is not trusted, with the fix; the message
/// names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Untrusted {
    /// Owned by a user who is neither root nor the user fdir runs as.
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// The user fdir runs as (effective uid).
        euid: u32,
    },
    /// Writable by its group or by others.
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret readable by its group or by others.
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A symbolic link where a baseline file is expected.
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The file's directory is owned by another user, or others may write it
    /// without the sticky bit: they may replace the file.
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Untrusted::Owner { path, uid, euid } => write!(
                f,
                "is owned by uid {uid}, neither root nor the user fdir runs as (uid {euid}): anyone who owns it can change it; `chown root {}` (or to uid {euid})",
                path.display()
            ),
            Untrusted::Writable { path, mode } => {
                write!(f, "can be written by its group or by others (mode {mode:04o}): `chmod go-w {}`", path.display())
            }
            Untrusted::Readable { path, mode } => write!(
                f,
                "can be read by its group or by others (mode {mode:04o}): anyone who can read it can sign a forged baseline; `chmod go-rwx {}`",
                path.display()
            ),
            Untrusted::Symlink { path } => write!(
                f,
                "is a symbolic link: fdir does not follow one to a baseline (it may have been planted); give the real path, or `rm {}` and take a new baseline",
                path.display()
            ),
            Untrusted::Directory { dir, uid, mode } => {
                let euid = euid();
                if *uid != 0 && *uid != euid {
                    write!(
                        f,
                        "is in directory {}, owned by uid {uid} (neither root nor uid {euid}), who may replace it: `chown root {}`, or keep the baseline in a directory of fdir's own (e.g. /var/lib/fdir, mode 0700)",
                        dir.display(),
                        dir.display()
                    )
                } else {
                    write!(
                        f,
                        "is in directory {} which others can write without the sticky bit (mode {mode:04o}), so they may replace it: `chmod go-w {}` (or `chmod +t`), or keep the baseline in a directory of fdir's own (e.g. /var/lib/fdir, mode 0700)",
                        dir.display(),
                        dir.display()
                    )
                }
            }
        }
    }
}

impl std::error::Error for Untrusted {}

/// The effective user id fdir runs as.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `uid` may own a file fdir trusts: root or fdir's own user.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// Checks the metadata of an opened file (`fstat`, so the file checked is the
/// file read).
pub fn check_file(path: &Path, meta: &Metadata, kind: Kind) -> Result<(), Untrusted> {
    let path = path.to_path_buf();
    if !trusted_owner(meta.uid()) {
        return Err(Untrusted::Owner { path, uid: meta.uid(), euid: euid() });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Untrusted::Writable { path, mode });
    }
    if kind == Kind::Secret && mode & 0o077 != 0 {
        return Err(Untrusted::Readable { path, mode });
    }
    Ok(())
}

/// Checks the directory a baseline file is in: owned by root or fdir's user,
/// and writable by no one else unless sticky (then no one else may replace a
/// file fdir owns there). A directory that cannot be looked at is left to the
/// open of the file to report.
pub fn check_dir(dir: &Path) -> Result<(), Untrusted> {
    let Ok(meta) = std::fs::metadata(dir) else { return Ok(()) };
    let mode = meta.permissions().mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if !trusted_owner(meta.uid()) || (mode & 0o022 != 0 && !sticky) {
        return Err(Untrusted::Directory { dir: dir.to_path_buf(), uid: meta.uid(), mode });
    }
    Ok(())
}
