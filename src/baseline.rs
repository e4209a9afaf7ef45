//! The baseline file: fdir's known-good state on disk, saved atomically and
//! refused on load unless it is, byte for byte, what fdir wrote.
//!
//! # Format
//!
//! One line of compact JSON, ending in a newline:
//!
//! ```text
//! {"format":"fdir-baseline","version":2,"payload":{...},"sha256":"<64 hex>"}
//! {"format":"fdir-baseline","version":2,"payload":{...},"hmac_sha256":"<64 hex>","sha256":"<64 hex>"}
//! ```
//!
//! - `payload` holds a [`BaselineFile`]: per target, the digest of each
//!   subsystem, and the canonical records behind every digest. Version 2
//!   (written) stores each distinct record set once, under its digest;
//!   version 1 (still read) stored the records with each target. The payload
//!   of each version is `payload.rs`'s.
//! - `sha256` is the SHA-256 of every byte of the file before its own hex
//!   value, up to and including `"sha256":"`. Only `"}` and the final newline
//!   follow it, and the loader checks those bytes exactly, so a change to any
//!   byte of the file is refused. This envelope (the header up to `"version":`
//!   and the `sha256` tail) is the same in every version of the format, so a
//!   file of another version is told apart from a corrupted one.
//! - `hmac_sha256`, written when a [`Key`] is given, is the HMAC-SHA256 with
//!   that key of every byte before its own hex value. Without a key, the
//!   SHA-256 catches accidents (bit flips, truncation, a half-copied file) but
//!   not a deliberate edit: anyone can recompute it. With a key, an edit is
//!   caught too, and a signed file is never loaded without its key nor an
//!   unsigned file with a key (a signature can be stripped).
//!
//! After the envelope, the payload is parsed (unknown fields are refused) and
//! every digest is recomputed from its records: each record set of a version
//! 2 file once, each snapshot of a version 1 file ([`Snapshot::verify`]).
//!
//! The file is read with a bound ([`MAX_BASELINE`]), checked both on the size
//! the file reports and while reading it. It is written to a temporary file in
//! the same directory (mode 0600), fsynced, renamed over the old one, and the
//! directory is fsynced, so a crash leaves the old file or the new one, never
//! a torn one; a temporary file left by a crash is removed by
//! [`remove_stale_temp_files`] (which [`save`] also runs after it succeeds).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use crate::error::{BaselineProblem, KeyProblem, MAX_KEY_FILE, SUPPORTED_VERSIONS};

// The envelope (header, HMAC, SHA-256 tail), the files (bounded reads,
// atomic writes, stale temporary files) and the key, each in a file of its own.
mod envelope;
mod files;
mod key;
// The payload touches no file: the envelope reads and writes it.
#[deny(clippy::disallowed_methods, clippy::disallowed_types)]
mod payload;

use crate::{Digest, Error, Snapshot, Subsystem};
pub use envelope::decode;
pub(crate) use envelope::{encode, seal};
use envelope::{open_envelope, seal_with, split_digest};
pub use files::remove_stale_temp_files;
use files::{ReadProblem, Trust, parent_dir, read_bounded, write_atomically};
pub use key::Key;

/// The `format` tag of every fdir baseline file.
pub const FORMAT: &str = "fdir-baseline";

/// The version of the format this fdir writes.
pub const VERSION: u64 = payload::VERSION;

/// The largest baseline file fdir loads or writes: 256 MiB.
pub const MAX_BASELINE: u64 = 256 << 20;

/// What [`BaselineFile::new`] records as the writer: `fdir` and its version.
pub const CREATED_BY: &str = concat!("fdir ", env!("CARGO_PKG_VERSION"));

/// What a baseline file holds: one snapshot per target, and what was asked for.
///
/// Filled by the caller (the command line); [`save`] and [`load`] write and
/// read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    /// The program that wrote the file, e.g. `fdir 0.1.0` ([`CREATED_BY`]).
    pub created_by: String,
    /// When the baseline was taken.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: SystemTime,
    /// Which targets the baseline was asked to cover.
    pub coverage: Coverage,
    /// The subsystems asked for.
    pub subsystems: Vec<Subsystem>,
    /// One snapshot per target.
    pub targets: Vec<Snapshot>,
    /// The kernel boot id when the baseline was taken: process start times
    /// only identify a process within one boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl BaselineFile {
    /// A baseline file written by this fdir ([`CREATED_BY`]).
    pub fn new(
        created_at: SystemTime,
        coverage: Coverage,
        subsystems: &[Subsystem],
        targets: Vec<Snapshot>,
    ) -> BaselineFile {
        BaselineFile {
            created_by: CREATED_BY.to_owned(),
            created_at,
            coverage,
            subsystems: subsystems.to_vec(),
            targets,
            boot_id: None,
        }
    }
}

/// Which targets a baseline covers, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Coverage {
    /// The processes named with `--pid`.
    Pids {
        /// Their process ids.
        pids: Vec<u32>,
    },
    /// Every process fdir may read (`--all`).
    All,
    /// Node-wide state (`--system`).
    System,
    /// The processes of one workload (`--unit`, `--container`), found by
    /// their cgroup paths; those that start later are baselined on first
    /// sight, as with `--all`.
    Workload {
        /// Which workload.
        selector: crate::workload::Selector,
    },
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Coverage::Pids { pids } => {
                f.write_str(if pids.len() == 1 { "process" } else { "processes" })?;
                for (i, pid) in pids.iter().enumerate() {
                    write!(f, "{}{pid}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Coverage::All => f.write_str("every process"),
            Coverage::System => f.write_str("the node"),
            Coverage::Workload { selector } => write!(f, "the processes of {selector}"),
        }
    }
}

/// Saves `file` at `path`, signed with `key` if one is given, atomically: the
/// bytes go to a new temporary file in the same directory (mode 0600), which
/// is fsynced and renamed over `path`, then the directory is fsynced. A crash
/// at any point leaves the old file or the new one; on an error the temporary
/// file is removed and the old file is untouched. After a successful save,
/// temporary files left by crashed earlier saves are removed
/// ([`remove_stale_temp_files`]; a failure there is only logged).
///
/// The snapshots are checked ([`Snapshot::verify`]) first, and the bytes are
/// decoded again before they are written, so a file that would not load is
/// never written. If the rename succeeded but the directory fsync failed, the
/// error is returned, and the new file is in place but may not survive a
/// power loss. A symbolic link at `path` is replaced, not followed.
///
/// ```
/// use fdir::baseline::{self, BaselineFile, Coverage, Key};
/// use fdir::{snapshot_with, ManualClock, Procfs, Subsystem};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("fdir-baseline.json");
/// let maps = "55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep\n";
/// let fs = Procfs::mock(maps, "Name:\tsleep\nSeccomp:\t2\n", "0::/\n");
/// let clock = ManualClock::new();
/// let snap = snapshot_with(&clock, &fs, Subsystem::SEED)?;
/// let file = BaselineFile::new(snap.taken_at, Coverage::Pids { pids: vec![1] }, Subsystem::SEED, vec![snap]);
///
/// let key = Key::from_bytes(*b"0123456789abcdef").unwrap();
/// baseline::save(&path, &file, Some(&key))?;
/// assert_eq!(baseline::load(&path, Some(&key))?, file);
/// // A signed file needs its key.
/// assert!(baseline::load(&path, None).unwrap_err().to_string().contains("is signed"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save(path: &Path, file: &BaselineFile, key: Option<&Key>) -> Result<(), Error> {
    save_noting(path, file, key).map(|_| ())
}

/// [`save`], returning the SHA-256 of the bytes written (what
/// [`digest_of`] gives for the file while nobody else writes it).
pub fn save_noting(path: &Path, file: &BaselineFile, key: Option<&Key>) -> Result<crate::Digest, Error> {
    // A file in a directory others may write would be refused when loaded.
    crate::trust::check_dir(parent_dir(path))
        .map_err(|u| Error::Baseline { path: path.to_path_buf(), problem: BaselineProblem::Untrusted(u) })?;
    let bytes = encode(path, file, key)?;
    write_atomically(path, &bytes, |_| Ok(()))?;
    if let Err(e) = remove_stale_temp_files(path) {
        tracing::warn!("{e}");
    }
    Ok(crate::Digest::of(&bytes))
}

/// Loads the baseline file at `path`, which must be signed with `key` if one
/// is given and unsigned otherwise.
///
/// Any change to any byte of the file is refused with an
/// [`Error::Baseline`] that says so ([`BaselineProblem`] lists the cases);
/// the file is read only up to [`MAX_BASELINE`] bytes.
///
/// ```
/// use fdir::baseline::{self, BaselineFile, BaselineProblem, Coverage};
/// use fdir::{snapshot_with, Error, ManualClock, Procfs, Subsystem};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("fdir-baseline.json");
/// let maps = "55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep\n";
/// let fs = Procfs::mock(maps, "Name:\tsleep\nSeccomp:\t2\n", "0::/\n");
/// let snap = snapshot_with(&ManualClock::new(), &fs, Subsystem::SEED)?;
/// let file = BaselineFile::new(snap.taken_at, Coverage::All, Subsystem::SEED, vec![snap]);
/// baseline::save(&path, &file, None)?;
/// assert_eq!(baseline::load(&path, None)?.targets.len(), 1);
///
/// // One changed byte, and the file is refused.
/// let mut bytes = std::fs::read(&path)?;
/// bytes[60] ^= 0x01;
/// std::fs::write(&path, &bytes)?;
/// let err = baseline::load(&path, None).unwrap_err();
/// assert!(matches!(err, Error::Baseline { problem: BaselineProblem::DigestMismatch, .. }));
/// assert!(err.to_string().ends_with("has been modified or corrupted: its SHA-256 does not match"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load(path: &Path, key: Option<&Key>) -> Result<BaselineFile, Error> {
    load_bounded(path, key, MAX_BASELINE)
}

/// The subsystems a baseline file names, read from the start of its bytes
/// (the payload's header comes first, as [`save`] writes it) without
/// reading, verifying or decoding the rest: a hint for a choice made before
/// the file is loaded (whether a one-shot check loads the task table
/// ahead, [`crate::Pinned::table_ahead_pays`]), never in place of [`load`].
/// The file is opened as [`load`] opens it (never a FIFO, a device or a
/// link, never one that would block). `None` for a file that [`load`]
/// would refuse to open or whose first 4 KiB do not name them.
pub fn subsystems_hint(path: &Path) -> Option<Vec<Subsystem>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let (file, _) = files::open_bounded(path, MAX_BASELINE, Trust::Baseline).ok()?;
    file.take(4096).read_to_end(&mut head).ok()?;
    let key = b"\"subsystems\":";
    let at = memchr::memmem::find(&head, key)?.checked_add(key.len())?;
    let rest = head.get(at..)?;
    let end = memchr::memchr(b']', rest)?;
    serde_json::from_slice(rest.get(..=end)?).ok()
}

/// The bytes of a baseline file, read as [`load`] reads them (a regular file
/// of at most [`MAX_BASELINE`] bytes) but not decoded: [`decode`] them. For a
/// caller that wants to know whether the bytes changed before paying for
/// their verification (the watch's vote of its file).
pub fn read(path: &Path) -> Result<Vec<u8>, Error> {
    read_file(path, MAX_BASELINE)
}

fn load_bounded(path: &Path, key: Option<&Key>, limit: u64) -> Result<BaselineFile, Error> {
    let bytes = read_file(path, limit)?;
    decode(path, &bytes, key)
}

fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    read_bounded(path, limit, Trust::Baseline).map_err(|e| read_problem(path, limit, e))
}

/// The SHA-256 of the baseline file's bytes, as [`read`] would read them
/// (the same checks), without holding them: `Digest::of(&read(path)?)`.
pub fn digest_of(path: &Path) -> Result<crate::Digest, Error> {
    files::digest_bounded(path, MAX_BASELINE, Trust::Baseline).map_err(|e| read_problem(path, MAX_BASELINE, e))
}

fn read_problem(path: &Path, limit: u64, e: ReadProblem) -> Error {
    Error::Baseline {
        path: path.to_path_buf(),
        problem: match e {
            ReadProblem::Missing => BaselineProblem::Missing,
            ReadProblem::Untrusted(u) => BaselineProblem::Untrusted(u),
            ReadProblem::NotAFile(kind) => BaselineProblem::NotAFile(kind),
            ReadProblem::Unreadable(e) => BaselineProblem::Unreadable(e),
            ReadProblem::TooLarge(size) => BaselineProblem::TooLarge { size, limit },
        },
    }
}

/// The header of a response-state file: the baseline file's envelope
/// (SHA-256, optional HMAC) around another payload.
const STATE_HEAD: &[u8] = b"{\"format\":\"fdir-response-state\",\"version\":";

/// The version of the response-state format (its own, not the baseline's).
const STATE_VERSION: u64 = 1;

/// The largest response-state file fdir reads: 16 MiB.
pub const MAX_STATE: u64 = 16 << 20;

/// Where the response state of the baseline file at `path` is kept:
/// `PATH.responses`, beside it.
pub fn state_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".responses");
    PathBuf::from(name)
}

/// Saves `payload` (JSON) as a response-state file at `path`, in the
/// baseline file's envelope (its SHA-256, and an HMAC with `key`), atomically
/// as [`save`] does; refused in a directory others may write.
pub fn save_state(path: &Path, payload: &[u8], key: Option<&Key>) -> Result<(), Error> {
    crate::trust::check_dir(parent_dir(path))
        .map_err(|u| Error::Baseline { path: path.to_path_buf(), problem: BaselineProblem::Untrusted(u) })?;
    let bytes = seal_with(STATE_HEAD, STATE_VERSION, payload, key)?;
    write_atomically(path, &bytes, |_| Ok(()))
}

/// Loads the payload of a response-state file written by [`save_state`],
/// checked as a baseline file is (owner, mode, no symbolic link, its
/// directory; every byte by its SHA-256; its HMAC with `key`). `Ok(None)` if
/// there is none.
pub fn load_state(path: &Path, key: Option<&Key>) -> Result<Option<Vec<u8>>, Error> {
    let bytes = match read_file(path, MAX_STATE) {
        Err(Error::Baseline { problem: BaselineProblem::Missing, .. }) => return Ok(None),
        other => other?,
    };
    let fail = |problem| Error::Baseline { path: path.to_path_buf(), problem };
    if bytes.is_empty() {
        return Err(fail(BaselineProblem::Empty));
    }
    let Some((sealed, claimed)) = split_digest(&bytes) else { return Err(fail(BaselineProblem::Truncated)) };
    if Digest::of(sealed) != claimed {
        return Err(fail(BaselineProblem::DigestMismatch));
    }
    let (_, payload) = open_envelope(path, sealed, STATE_HEAD, |v| v == STATE_VERSION, key)?;
    Ok(Some(payload.to_vec()))
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    use hmac::{KeyInit, Mac};

    use super::envelope::*;
    use super::files::*;
    use super::*;
    use crate::digest::to_hex;
    use crate::rng::Rng;
    use crate::{Clock, ManualClock, Procfs, Target, snapshot_with};

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1311 /usr/bin/sleep
55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep
55d0c0a06000-55d0c0a08000 r--p 00006000 fe:01 1311 /usr/bin/sleep
55d0c0a09000-55d0c0a0a000 rw-p 00008000 fe:01 1311 /usr/bin/sleep
55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]
7f6f0d400000-7f6f0d428000 r--p 00000000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d5bd000-7f6f0d615000 r--p 001bd000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d619000-7f6f0d61b000 rw-p 00218000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d61b000-7f6f0d628000 rw-p 00000000 00:00 0 
7f6f0d7b8000-7f6f0d7e2000 r-xp 00002000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffc9e9d1000-7ffc9e9f2000 rw-p 00000000 00:00 0 [stack]
7ffc9e9fa000-7ffc9e9fc000 r-xp 00000000 00:00 0 [vdso]
";

    const STATUS: &str = "Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t1
Uid:\t1000\t1000\t1000\t1000
Gid:\t1000\t1000\t1000\t1000
Groups:\t4 24 27
NStgid:\t4242
VmRSS:\t    1664 kB
THP_enabled:\t1
Threads:\t1
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
Speculation_Store_Bypass:\tthread vulnerable
Cpus_allowed_list:\t0-1
Mems_allowed_list:\t0
";

    const CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/fe77\n0::/system.slice/sleep.service\n";

    fn snap(pid: u32) -> Snapshot {
        let fs = Procfs::mock(MAPS, STATUS, CGROUP);
        let mut snap = snapshot_with(&ManualClock::new(), &fs, Subsystem::ALL).unwrap();
        snap.target = Target::Process { pid, start_time: 1_234_567 + u64::from(pid), name: "sleep".into() };
        snap
    }

    /// A realistic baseline of `n` processes, all four subsystems.
    fn sample(n: u32) -> BaselineFile {
        let targets: Vec<Snapshot> = (0..n).map(|i| snap(4242 + i)).collect();
        let pids = targets.iter().filter_map(|t| t.target.pid()).collect();
        BaselineFile::new(ManualClock::new().wall(), Coverage::Pids { pids }, Subsystem::ALL, targets)
    }

    fn key() -> Key {
        Key::from_bytes(*b"a 32-byte secret for the tests!!").unwrap()
    }

    fn other_key() -> Key {
        Key::from_bytes(*b"another secret, of 31 bytes....").unwrap()
    }

    fn encoded(file: &BaselineFile, key: Option<&Key>) -> Vec<u8> {
        encode(Path::new("fdir-baseline.json"), file, key).unwrap()
    }

    fn decoded(bytes: &[u8], key: Option<&Key>) -> Result<BaselineFile, Error> {
        decode(Path::new("fdir-baseline.json"), bytes, key)
    }

    /// The kind of refusal, for assertions; panics on anything but a baseline error.
    fn kind(result: Result<BaselineFile, Error>) -> &'static str {
        match result {
            Ok(_) => "accepted",
            Err(Error::Baseline { problem, .. }) => match problem {
                BaselineProblem::Untrusted(_) => "untrusted",
                BaselineProblem::Missing => "missing",
                BaselineProblem::NotAFile(_) => "not-a-file",
                BaselineProblem::BadPath => "bad-path",
                BaselineProblem::Unreadable(_) => "unreadable",
                BaselineProblem::Empty => "empty",
                BaselineProblem::TooLarge { .. } => "too-large",
                BaselineProblem::NotBaseline => "not-baseline",
                BaselineProblem::Truncated => "truncated",
                BaselineProblem::DigestMismatch => "digest",
                BaselineProblem::UnsupportedVersion { .. } => "version",
                BaselineProblem::Invalid(_) => "invalid",
                BaselineProblem::Signed => "signed",
                BaselineProblem::Unsigned => "unsigned",
                BaselineProblem::HmacMismatch => "hmac",
                BaselineProblem::Records { .. } | BaselineProblem::RecordSet { .. } => "records",
            },
            Err(e) => panic!("not a baseline refusal: {e:?}"),
        }
    }

    /// Recomputes the SHA-256 of an edited file (whose tail is intact), as a
    /// forger without the key would.
    fn reseal(bytes: &[u8]) -> Vec<u8> {
        let sealed = &bytes[..bytes.len() - HEX_LEN - END.len()];
        assert!(sealed.ends_with(SHA_TAG));
        let mut out = sealed.to_vec();
        out.extend_from_slice(Digest::of(sealed).to_string().as_bytes());
        out.extend_from_slice(END);
        out
    }

    /// `file` as version 1 wrote it: each target's records inline.
    fn version_1(file: &BaselineFile) -> Vec<u8> {
        seal(1, &serde_json::to_vec(file).unwrap(), None).unwrap()
    }

    fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1).into_bytes()
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect()
    }

    // Round trips.

    #[test]
    fn round_trip_without_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let file = sample(3);
        save(&path, &file, None).unwrap();
        assert_eq!(load(&path, None).unwrap(), file);
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"{\"format\":\"fdir-baseline\",\"version\":2,\"payload\":{"));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert!(!bytes.windows(13).any(|w| w == b"\"hmac_sha256\""));
        // The whole line is plain JSON, readable with jq.
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["format"], "fdir-baseline");
        assert_eq!(json["version"], 2);
        assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(json["payload"]["targets"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_large_file_decodes_in_parallel_to_the_same_baseline() {
        // Over 64 targets: decoded on every core; the same as the one-pass
        // decode of the whole payload, field for field.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let mut file = sample(70);
        file.boot_id = Some("b1".into());
        save(&path, &file, None).unwrap();
        let loaded = load(&path, None).unwrap();
        assert_eq!(loaded, file);
        // Version 1, decoded in parallel too: the same as the one-pass
        // decode of the whole payload, field for field.
        let v1 = version_1(&file);
        let json: serde_json::Value = serde_json::from_slice(&v1).unwrap();
        let whole: BaselineFile = serde_json::from_value(json["payload"].clone()).unwrap();
        assert_eq!(whole, loaded);
        assert_eq!(decoded(&v1, None).unwrap(), loaded);
        // A forged record in the last target is still found (the targets are
        // decoded in parallel chunks; the error is the file's first).
        let bytes = encoded(&file, None);
        let text = String::from_utf8(bytes).unwrap();
        let last = text.rfind("r-xp dev fe:01 inode 1717").unwrap();
        let mut forged = text.clone().into_bytes();
        forged.splice(last..last + 4, b"rwxp".iter().copied());
        assert_eq!(kind(decoded(&reseal(&forged), None)), "records");
    }

    #[test]
    fn a_file_hashed_on_its_own_core_is_refused_as_any_other() {
        // From PARALLEL_DIGEST_FROM bytes on, the digest is computed while the
        // payload is decoded; the verdicts must be those of the serial path.
        let mut n = 70;
        let mut file = sample(n);
        while encoded(&file, None).len() < PARALLEL_DIGEST_FROM {
            n *= 2;
            file = sample(n);
        }
        for key in [None, Some(key())] {
            let bytes = encoded(&file, key.as_ref());
            assert_eq!(decoded(&bytes, key.as_ref()).unwrap(), file);
            let mut rng = Rng(0xd1_6e57);
            for _ in 0..200 {
                let mut copy = bytes.clone();
                let i = rng.below(copy.len());
                copy[i] ^= 1 << rng.below(8);
                let k = kind(decoded(&copy, key.as_ref()));
                assert!(matches!(k, "digest" | "truncated"), "byte {i}: {k}");
            }
            // A forged record, resealed: refused by its records without a
            // key, by the HMAC with one.
            let text = String::from_utf8(bytes).unwrap();
            let last = text.rfind("r-xp dev fe:01 inode 1717").unwrap();
            let mut forged = text.into_bytes();
            forged.splice(last..last + 4, b"rwxp".iter().copied());
            let expected = if key.is_some() { "hmac" } else { "records" };
            assert_eq!(kind(decoded(&reseal(&forged), key.as_ref())), expected);
            // Garbage with a valid digest: the payload's error.
            let mut junk = forged.clone();
            let at = junk.len() / 2;
            junk.splice(at..at + 8, b"\"\"\"\"\"\"\"\"".iter().copied());
            let k = kind(decoded(&reseal(&junk), key.as_ref()));
            assert_eq!(k, if key.is_some() { "hmac" } else { "invalid" });
        }
    }

    #[test]
    fn round_trip_with_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let file = sample(2);
        save(&path, &file, Some(&key())).unwrap();
        assert_eq!(load(&path, Some(&key())).unwrap(), file);
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["hmac_sha256"].as_str().unwrap().len(), 64);

        // The same key from a key file, with or without one trailing newline.
        for text in [&b"a 32-byte secret for the tests!!"[..], b"a 32-byte secret for the tests!!\n"] {
            let key_path = dir.path().join("key");
            fs::write(&key_path, text).unwrap();
            fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            let from_file = Key::from_file(&key_path).unwrap();
            assert_eq!(load(&path, Some(&from_file)).unwrap(), file);
        }
    }

    #[test]
    fn the_hmac_covers_what_a_reference_implementation_computes() {
        // Independent check of the layout: HMAC over every byte before its hex,
        // SHA-256 over every byte before its hex.
        let bytes = encoded(&sample(1), Some(&key()));
        let text = std::str::from_utf8(&bytes).unwrap();
        let hmac_at = text.find("\"hmac_sha256\":\"").unwrap() + "\"hmac_sha256\":\"".len();
        let sha_at = text.find("\"sha256\":\"").unwrap() + "\"sha256\":\"".len();
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"a 32-byte secret for the tests!!").unwrap();
        mac.update(&bytes[..hmac_at]);
        assert_eq!(&text[hmac_at..hmac_at + 64], to_hex(&mac.finalize().into_bytes()));
        assert_eq!(&text[sha_at..sha_at + 64], Digest::of(&bytes[..sha_at]).to_string());
        assert_eq!(&text[sha_at + 64..], "\"}\n");
    }

    // The corruption catalogue.

    /// Flips every bit of `bytes`, one at a time: every load is refused as
    /// corrupted or truncated.
    fn flip_every_bit(bytes: &[u8], key: Option<&Key>) -> usize {
        let mut copy = bytes.to_vec();
        let mut refused = 0;
        for i in 0..copy.len() {
            for bit in 0..8 {
                copy[i] ^= 1 << bit;
                let k = kind(decoded(&copy, key));
                assert!(matches!(k, "digest" | "truncated"), "byte {i} bit {bit}: {k}");
                refused += 1;
                copy[i] ^= 1 << bit;
            }
        }
        assert_eq!(copy, bytes);
        refused
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let bytes = encoded(&sample(1), None);
        assert!(bytes.len() > 2000, "a realistic file: {} bytes", bytes.len());
        assert_eq!(flip_every_bit(&bytes, None), bytes.len() * 8);
    }

    #[test]
    fn every_bit_flip_of_a_signed_file_is_refused() {
        let bytes = encoded(&sample(1), Some(&key()));
        assert_eq!(flip_every_bit(&bytes, Some(&key())), bytes.len() * 8);
    }

    #[test]
    fn sampled_bit_flips_of_a_bigger_file_are_refused() {
        let bytes = encoded(&sample(8), Some(&key()));
        let mut rng = Rng(0x5eed_f11e);
        for _ in 0..5000 {
            let mut copy = bytes.clone();
            let i = rng.below(copy.len());
            copy[i] ^= 1 << rng.below(8);
            let k = kind(decoded(&copy, Some(&key())));
            assert!(matches!(k, "digest" | "truncated"), "byte {i}: {k}");
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        for key in [None, Some(key())] {
            let bytes = encoded(&sample(1), key.as_ref());
            assert_eq!(kind(decoded(&bytes[..0], key.as_ref())), "empty");
            for len in 1..bytes.len() {
                let k = kind(decoded(&bytes[..len], key.as_ref()));
                assert_eq!(k, "truncated", "cut at {len} of {}", bytes.len());
            }
        }
    }

    #[test]
    fn appended_and_prepended_bytes_are_refused() {
        let bytes = encoded(&sample(1), None);
        for extra in [&b"\n"[..], b" ", b"\r\n", b"\0", b"x", b"{}\n"] {
            let mut longer = bytes.clone();
            longer.extend_from_slice(extra);
            assert_eq!(kind(decoded(&longer, None)), "truncated", "appended {extra:?}");
            let mut longer = extra.to_vec();
            longer.extend_from_slice(&bytes);
            assert_eq!(kind(decoded(&longer, None)), "digest", "prepended {extra:?}");
        }
        // The same line twice: it ends as a baseline, but the digest covers the first copy too.
        assert_eq!(kind(decoded(&[&bytes[..], &bytes].concat(), None)), "digest");
        // The newline lost, or turned into CR LF.
        assert_eq!(kind(decoded(&bytes[..bytes.len() - 1], None)), "truncated");
        let crlf = [&bytes[..bytes.len() - 1], b"\r\n"].concat();
        assert_eq!(kind(decoded(&crlf, None)), "truncated");
    }

    #[test]
    fn random_byte_runs_are_refused() {
        for key in [None, Some(key())] {
            let bytes = encoded(&sample(2), key.as_ref());
            let mut rng = Rng(0x0b5e_55ed + key.is_some() as u64);
            let mut tried = 0;
            while tried < 3000 {
                let mut copy = bytes.clone();
                let at = rng.below(copy.len());
                let run = 1 + rng.below(64);
                let junk: Vec<u8> = (0..run).map(|_| rng.next().to_le_bytes()[0]).collect();
                match rng.below(3) {
                    0 => {
                        let end = (at + run).min(copy.len());
                        copy.splice(at..end, junk[..end - at].iter().copied());
                    }
                    1 => {
                        copy.splice(at..at, junk);
                    }
                    _ => {
                        let end = (at + run).min(copy.len());
                        copy.drain(at..end);
                    }
                }
                if copy == bytes {
                    continue;
                }
                tried += 1;
                let k = kind(decoded(&copy, key.as_ref()));
                assert!(matches!(k, "digest" | "truncated" | "not-baseline" | "empty"), "{k}");
            }
        }
    }

    #[test]
    fn an_edit_with_a_recomputed_digest_is_refused_with_a_key() {
        let bytes = encoded(&sample(1), Some(&key()));
        // Make libc writable, as an attacker would, and fix the SHA-256.
        let forged = reseal(&replace_once(&bytes, "r-xp dev fe:01 inode 1717", "rwxp dev fe:01 inode 1717"));
        assert_eq!(kind(decoded(&forged, Some(&key()))), "hmac");
        assert_eq!(kind(decoded(&forged, None)), "signed");
        // Even an edit that keeps the records consistent (a new coverage).
        let forged = reseal(&replace_once(&bytes, "\"coverage\":{\"kind\":\"pids\"", "\"coverage\":{\"kind\":\"all\""));
        assert_eq!(kind(decoded(&forged, Some(&key()))), "hmac");
        // A forged HMAC.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let at = text.find("\"hmac_sha256\":\"").unwrap() + 15;
        let mut forged = bytes.clone();
        forged[at..at + 64].copy_from_slice(&[b'0'; 64]);
        assert_eq!(kind(decoded(&reseal(&forged), Some(&key()))), "hmac");
    }

    #[test]
    fn a_stripped_signature_is_refused_with_a_key() {
        let bytes = encoded(&sample(1), Some(&key()));
        let text = String::from_utf8(bytes).unwrap();
        let start = text.find(",\"hmac_sha256\":\"").unwrap();
        let stripped = format!("{}{}", &text[..start], &text[start + 16 + 64 + 1..]);
        let stripped = reseal(stripped.as_bytes());
        assert_eq!(kind(decoded(&stripped, Some(&key()))), "unsigned");
        // Without the key it is a valid unsigned file: the key is what protects it.
        assert!(decoded(&stripped, None).is_ok());
    }

    #[test]
    fn records_that_do_not_match_their_digest_are_refused() {
        let bytes = encoded(&sample(2), None);
        let forged = reseal(&replace_once(&bytes, "r-xp dev fe:01 inode 1717", "rwxp dev fe:01 inode 1717"));
        let err = decoded(&forged, None).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Baseline { problem: BaselineProblem::RecordSet { .. }, .. }), "{message}");
        assert!(message.contains("holds memory-maps records stored under digest"), "{message}");
        // In a version 1 file, each target's own records, named by target.
        let v1 = version_1(&sample(2));
        let forged = reseal(&replace_once(&v1, "r-xp dev fe:01 inode 1717", "rwxp dev fe:01 inode 1717"));
        let err = decoded(&forged, None).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Baseline { problem: BaselineProblem::Records { .. }, .. }), "{message}");
        assert!(message.contains("process 4242 (sleep)"), "{message}");
        assert!(message.contains("memory-maps records do not match their digest"), "{message}");
        // Records out of canonical order.
        let forged = reseal(&replace_once(&bytes, "\"key\":\"file /usr/bin/sleep", "\"key\":\"file /zzz"));
        assert_eq!(kind(decoded(&forged, None)), "records");
        // And save refuses to write such a baseline in the first place.
        let mut file = sample(1);
        if let Some(crate::observation::Observation::Observed { records, .. }) =
            file.targets[0].subsystems.get_mut(&Subsystem::Seccomp)
        {
            records[0].value.push('!');
        }
        let dir = tempfile::tempdir().unwrap();
        let err = save(&dir.path().join("b.json"), &file, None).unwrap_err();
        assert!(err.to_string().contains("seccomp records do not match"), "{err}");
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
    }

    #[test]
    fn other_versions_are_refused_by_name() {
        let bytes = encoded(&sample(1), None);
        for version in ["3", "0", "18446744073709551615"] {
            let forged = reseal(&replace_once(&bytes, "\"version\":2,", &format!("\"version\":{version},")));
            let err = decoded(&forged, None).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, Error::Baseline { problem: BaselineProblem::UnsupportedVersion { .. }, .. }));
            assert!(
                message.contains(&format!("is format version {version}, which this fdir does not read")),
                "{message}"
            );
            assert!(message.contains("it reads versions 1, 2"), "{message}");
        }
        for version in ["02", "2.0", "\"2\"", "-2", "", "184467440737095516150", " 2"] {
            let forged = reseal(&replace_once(&bytes, "\"version\":2,", &format!("\"version\":{version},")));
            assert_eq!(kind(decoded(&forged, None)), "invalid", "{version}");
        }
    }

    #[test]
    fn other_files_are_not_baselines() {
        let bytes = encoded(&sample(1), None);
        let other_format = reseal(&replace_once(&bytes, "fdir-baseline", "fdir-baselinf"));
        let pretty = serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()).unwrap();
        for junk in [
            &b"hello\n"[..],
            b"\0\0\0\0",
            b"{}\n",
            b"[1,2,3]\n",
            &pretty,
            &other_format,
            &bytes[..1],
            &serde_json::to_vec(&sample(1)).unwrap(),
        ] {
            let k = kind(decoded(junk, None));
            assert!(matches!(k, "not-baseline" | "truncated"), "{k}");
        }
        assert_eq!(kind(decoded(&other_format, None)), "not-baseline");
        assert_eq!(kind(decoded(b"{\"format\":\"fdir-baseline\",\"version\":1,\"pay", None)), "truncated");
        // Parsed JSON that is not a baseline, with a valid digest.
        for (from, to) in [
            ("\"created_by\"", "\"created_by_\""),
            ("\"coverage\":{", "\"extra\":1,\"coverage\":{"),
            ("\"payload\":{", "\"payload\":[{"),
            ("\"targets\":[", "\"targets\":[1,"),
        ] {
            let forged = reseal(&replace_once(&bytes, from, to));
            assert_eq!(kind(decoded(&forged, None)), "invalid", "{to}");
        }
        let forged = reseal(&replace_once(&bytes, ",\"payload\":", ",\"paylaod\":"));
        assert_eq!(kind(decoded(&forged, None)), "invalid");
    }

    #[test]
    fn keys_must_match() {
        let signed = encoded(&sample(1), Some(&key()));
        let unsigned = encoded(&sample(1), None);
        assert_eq!(kind(decoded(&signed, Some(&other_key()))), "hmac");
        assert_eq!(kind(decoded(&signed, None)), "signed");
        assert_eq!(kind(decoded(&unsigned, Some(&key()))), "unsigned");
        // A key that differs in one bit, or only by a trailing newline.
        let mut near = b"a 32-byte secret for the tests!!".to_vec();
        near[0] ^= 1;
        assert_eq!(kind(decoded(&signed, Some(&Key::from_bytes(near).unwrap()))), "hmac");
        let longer = Key::from_bytes(*b"a 32-byte secret for the tests!!\n").unwrap();
        assert_eq!(kind(decoded(&signed, Some(&longer))), "hmac");
    }

    // Files that cannot be read, or are not files.

    #[test]
    fn a_huge_file_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.json");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_BASELINE + 1).unwrap(); // sparse: no disk used
        let started = Instant::now();
        let err = load(&path, None).unwrap_err();
        let size = match &err {
            Error::Baseline { problem: BaselineProblem::TooLarge { size, .. }, .. } => *size,
            e => panic!("{e:?}"),
        };
        assert_eq!(size, Some(MAX_BASELINE + 1), "refused on its reported size, unread");
        assert!(err.to_string().contains("is larger than 256 MiB"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // At the bound exactly it is read (and refused for its content).
        file.set_len(16).unwrap();
        assert_eq!(kind(load(&path, None)), "not-baseline");
    }

    #[test]
    fn a_file_larger_than_it_says_is_refused_while_reading() {
        // /proc files report a size of 0: only the bound while reading stops them.
        let path = Path::new("/proc/self/status");
        assert_eq!(fs::metadata(path).unwrap().len(), 0);
        let err = load_bounded(path, None, 64).unwrap_err();
        assert!(
            matches!(err, Error::Baseline { problem: BaselineProblem::TooLarge { size: None, .. }, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("grew while being read"), "{err}");
    }

    #[test]
    fn missing_empty_and_odd_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert_eq!(kind(load(&missing, None)), "missing");
        let empty = dir.path().join("empty.json");
        File::create(&empty).unwrap();
        assert_eq!(kind(load(&empty, None)), "empty");
        let err = load(dir.path(), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("baseline file {} is a directory, not a baseline file", dir.path().display())
        );
        // A FIFO is refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        assert_eq!(kind(load(&fifo, None)), "not-a-file");
        assert_eq!(kind(load(Path::new("/dev/null"), None)), "not-a-file");
        // A symbolic link to a baseline is not followed (it may have been
        // planted): refused, naming the link.
        let real = dir.path().join("real.json");
        save(&real, &sample(1), None).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(kind(load(&link, None)), "untrusted");
        assert!(load(&real, None).is_ok());
    }

    #[test]
    fn messages_name_the_file_and_say_what_is_wrong() {
        let bytes = encoded(&sample(1), None);
        let signed = encoded(&sample(1), Some(&key()));
        let mut flipped = bytes.clone();
        flipped[100] ^= 4;
        let v3 = reseal(&replace_once(&bytes, "\"version\":2,", "\"version\":3,"));
        let cases: &[(&[u8], Option<&Key>, &str)] = &[
            (b"", None, "is empty"),
            (b"garbage\n", None, "is not an fdir baseline: it does not begin with {\"format\":\"fdir-baseline\""),
            (&bytes[..bytes.len() / 2], None, "is truncated or corrupted: it does not end with its SHA-256 digest"),
            (&flipped, None, "has been modified or corrupted: its SHA-256 does not match"),
            (
                &v3,
                None,
                "is format version 3, which this fdir does not read (it reads versions 1, 2): use the fdir that wrote it, or take a new baseline",
            ),
            (&signed, None, "is signed: pass --key with the key it was signed with"),
            (
                &bytes,
                Some(&key()),
                "is not signed, but a key was given: refusing it, since anyone can strip a signature (take a new baseline with --key)",
            ),
            (&signed, Some(&other_key()), "HMAC does not match: wrong key or modified file"),
        ];
        for (bytes, key, expected) in cases {
            let err = decode(Path::new("/var/lib/fdir/b.json"), bytes, *key).unwrap_err();
            assert_eq!(err.to_string(), format!("baseline file /var/lib/fdir/b.json {expected}"));
        }
    }

    // Key files.

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let message = |path: &Path| Key::from_file(path).unwrap_err().to_string();
        assert_eq!(message(&path), format!("key file {} does not exist", path.display()));
        // Keys are refused when others may read them (tests/it/trust.rs).
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        for (text, expected) in [
            (&b""[..], "is empty".to_owned()),
            (b"\n", "is empty".to_owned()),
            (
                b"short\n",
                "is too short: 5 bytes, a key needs at least 16 (make one with `head -c 32 /dev/urandom`)".into(),
            ),
            (
                b"fifteen bytes..\n",
                "is too short: 15 bytes, a key needs at least 16 (make one with `head -c 32 /dev/urandom`)".into(),
            ),
        ] {
            fs::write(&path, text).unwrap();
            assert_eq!(message(&path), format!("key file {} {expected}", path.display()));
        }
        // Exactly one trailing newline is stripped: a second one is part of the key.
        fs::write(&path, b"sixteen bytes...\n\n").unwrap();
        assert_eq!(Key::from_file(&path).unwrap().0, b"sixteen bytes...\n");
        fs::write(&path, b"sixteen bytes...\r\n").unwrap();
        assert_eq!(Key::from_file(&path).unwrap().0, b"sixteen bytes...\r");
        fs::write(&path, vec![7u8; usize::try_from(MAX_KEY_FILE).unwrap() + 1]).unwrap();
        assert!(message(&path).ends_with("is larger than 64 KiB: it is not a key"));
        assert!(message(dir.path()).ends_with("is a directory, not a key file"));
        assert!(format!("{:?}", key()).starts_with("Key(32 bytes)"), "the bytes are never shown");
        assert_eq!(Key::from_bytes(*b"0123456789abcde").unwrap_err(), 15);
    }

    #[test]
    fn generated_keys_are_random_and_written_once() {
        let (a, b) = (Key::generate().unwrap(), Key::generate().unwrap());
        assert_eq!(a.0.len(), Key::GENERATED_LEN);
        assert_ne!(a.0, b.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir.key");
        a.write_new(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(Key::from_file(&path).unwrap().0, a.0);
        assert!(b.write_new(&path).is_err(), "an existing key is never replaced");
        assert_eq!(Key::from_file(&path).unwrap().0, a.0);
        // One key in 256 would end in a newline, and read back one byte short.
        for _ in 0..4000 {
            let k = Key::generate().unwrap();
            assert!(k.0.len() == Key::GENERATED_LEN && k.0.last() != Some(&b'\n'));
        }
    }

    // Atomic saves.

    #[test]
    fn a_save_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        save(&path, &sample(1), None).unwrap();
        let new = sample(2);
        save(&path, &new, Some(&key())).unwrap();
        assert_eq!(load(&path, Some(&key())).unwrap(), new);
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A bare file name saves in the working directory's terms.
        assert_eq!(parent_dir(Path::new("fdir-baseline.json")), Path::new("."));
    }

    #[test]
    fn a_failed_save_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let old = sample(1);
        save(&path, &old, None).unwrap();
        let old_bytes = fs::read(&path).unwrap();
        let new_bytes = encoded(&sample(2), None);
        // Fail after the temporary file is written and fsynced, before the rename
        // (as a full disk or a crash would).
        let err = write_atomically(&path, &new_bytes, |tmp| {
            assert_eq!(fs::read(tmp).unwrap(), new_bytes, "the whole file is written first");
            assert_eq!(fs::metadata(tmp).unwrap().mode() & 0o777, 0o600);
            let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with(".fdir-baseline.json.tmp."), "{name}");
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
        assert!(err.to_string().contains("No space left on device"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), old_bytes);
        assert_eq!(load(&path, None).unwrap(), old);
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_save_that_cannot_rename_cleans_up() {
        // The target is a non-empty directory: the rename fails after the write.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        let err = save(&path, &sample(1), None).unwrap_err();
        assert!(err.to_string().starts_with(&format!("cannot replace {}", path.display())), "{err}");
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"x");
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn a_save_into_a_missing_directory_fails_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/fdir-baseline.json");
        let err = save(&path, &sample(1), None).unwrap_err();
        assert!(err.to_string().contains("cannot create a temporary file in"), "{err}");
        assert!(err.to_string().contains("no/such/dir"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        for bad in ["/", ".."] {
            let err = save(Path::new(bad), &sample(1), None).unwrap_err();
            assert!(err.to_string().ends_with("is not a path to a file"), "{err}");
        }
    }

    #[test]
    fn a_save_into_a_read_only_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let old = sample(1);
        save(&path, &old, None).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        let result = save(&path, &sample(2), None);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        if rustix::process::geteuid().is_root() {
            // Root writes anyway (CAP_DAC_OVERRIDE): then the save is whole.
            result.unwrap();
            assert_eq!(load(&path, None).unwrap(), sample(2));
        } else {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("Permission denied"), "{err}");
            assert_eq!(load(&path, None).unwrap(), old);
        }
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn stale_temporary_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let at = |name: &str| dir.path().join(name);
        let dead_pid = i32::MAX - 1; // above any pid_max
        let ours = std::process::id();
        fs::write(at(&format!(".fdir-baseline.json.tmp.{dead_pid}.0")), b"{\"format\":\"fdir-ba").unwrap();
        fs::write(at(&format!(".fdir-baseline.json.tmp.{dead_pid}.17")), b"").unwrap();
        fs::write(at(&format!(".fdir-baseline.json.tmp.{ours}.900")), b"a save in progress").unwrap();
        let old_ours = at(&format!(".fdir-baseline.json.tmp.{ours}.901"));
        fs::write(&old_ours, b"left long ago by a process whose pid is ours now").unwrap();
        File::options()
            .write(true)
            .open(&old_ours)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
            .unwrap();
        // Not ours: other names, other files' temporaries, directories, links.
        for keep in [
            ".fdir-baseline.json.tmp.junk",
            ".fdir-baseline.json.tmp.1.2.3",
            ".fdir-baseline.json.tmp.",
            ".other.json.tmp.2147483646.0",
            "fdir-baseline.json.tmp.2147483646.0",
        ] {
            fs::write(at(keep), b"keep").unwrap();
        }
        fs::create_dir(at(&format!(".fdir-baseline.json.tmp.{dead_pid}.1"))).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", at(&format!(".fdir-baseline.json.tmp.{dead_pid}.2"))).unwrap();

        let mut removed: Vec<String> = remove_stale_temp_files(&path)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        let mut expected = [
            format!(".fdir-baseline.json.tmp.{dead_pid}.0"),
            format!(".fdir-baseline.json.tmp.{dead_pid}.17"),
            format!(".fdir-baseline.json.tmp.{ours}.901"),
        ];
        expected.sort();
        assert_eq!(removed, expected);
        let mut left = temp_files(dir.path());
        left.sort();
        assert_eq!(left.len(), 8, "{left:?}");
        assert!(at(&format!(".fdir-baseline.json.tmp.{ours}.900")).exists());
        assert!(fs::read_link(at(&format!(".fdir-baseline.json.tmp.{dead_pid}.2"))).is_ok());
        // Nothing left to remove; a missing directory is nothing to remove.
        assert!(remove_stale_temp_files(&path).unwrap().is_empty());
        assert!(remove_stale_temp_files(&dir.path().join("gone/x.json")).unwrap().is_empty());
    }

    #[test]
    fn a_save_removes_what_a_crashed_save_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdir-baseline.json");
        let old = sample(1);
        save(&path, &old, None).unwrap();
        // A save killed half-way: the old file is whole, the torn copy is aside.
        let torn = encoded(&sample(2), None);
        let leftover = dir.path().join(format!(".fdir-baseline.json.tmp.{}.0", i32::MAX - 1));
        fs::write(&leftover, &torn[..torn.len() / 2]).unwrap();
        assert_eq!(load(&path, None).unwrap(), old);
        save(&path, &sample(2), None).unwrap();
        assert!(!leftover.exists());
        assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    }
}
