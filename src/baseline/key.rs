//! [`Key`]: the secret of a signed baseline file, read from a key file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::KeyInit;

use super::envelope::HmacSha256;
use super::files::{ReadProblem, Trust, parent_dir, read_bounded, sync_dir};
use crate::Error;
use crate::error::{KeyProblem, MAX_KEY_FILE};

/// A secret key for the HMAC-SHA256 of a baseline file.
///
/// Its bytes are never shown (`Debug` prints only the length).
#[derive(Clone)]
pub struct Key(pub(super) Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = crate::error::KEY_MIN_LEN;

    /// The length of a key made by [`Key::generate`], in bytes.
    pub const GENERATED_LEN: usize = 32;

    /// Reads a key file: the key is the file's raw bytes, less one trailing
    /// newline if there is one (so `echo`, `base64` and editors can make it);
    /// nothing else is stripped. At least [`Key::MIN_LEN`] bytes must remain,
    /// and the file may hold at most [`MAX_KEY_FILE`] bytes.
    pub fn from_file(path: &Path) -> Result<Key, Error> {
        let fail = |problem| Error::Key { path: path.to_path_buf(), problem };
        let mut bytes = read_bounded(path, MAX_KEY_FILE, Trust::Key).map_err(|e| {
            fail(match e {
                ReadProblem::Missing => KeyProblem::Missing,
                ReadProblem::Untrusted(u) => KeyProblem::Untrusted(u),
                ReadProblem::NotAFile(kind) => KeyProblem::NotAFile(kind),
                ReadProblem::Unreadable(e) => KeyProblem::Unreadable(e),
                ReadProblem::TooLarge(_) => KeyProblem::TooLarge,
            })
        })?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(fail(KeyProblem::Empty));
        }
        // Like ssh with a private key, a key others can read or write (or own)
        // was refused when it was opened: it could sign a forged baseline.
        Key::from_bytes(bytes).map_err(|len| fail(KeyProblem::TooShort { len }))
    }

    /// A key from raw bytes; `Err` with the length if it is shorter than
    /// [`Key::MIN_LEN`].
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Key, usize> {
        let bytes = bytes.into();
        if bytes.len() < Key::MIN_LEN { Err(bytes.len()) } else { Ok(Key(bytes)) }
    }

    /// A new random key of [`Key::GENERATED_LEN`] bytes, from `/dev/urandom`.
    /// Its last byte is never a newline, which [`Key::from_file`] would take
    /// off: the key read back from its file is the key made.
    pub fn generate() -> Result<Key, Error> {
        let path = Path::new("/dev/urandom");
        let mut bytes = vec![0u8; Key::GENERATED_LEN];
        let read = |bytes: &mut [u8]| {
            File::open(path).and_then(|mut f| f.read_exact(bytes)).map_err(|e| Error::io("read", path, e))
        };
        read(&mut bytes)?;
        while let Some(last) = bytes.last_mut().filter(|b| **b == b'\n') {
            read(std::slice::from_mut(last))?;
        }
        Ok(Key(bytes))
    }

    /// Writes the key to a new file (mode 0600, refusing to replace an existing
    /// file), fsynced with its directory: what `fdir keygen` does. A file that
    /// could not be written whole is removed.
    pub fn write_new(&self, path: &Path) -> Result<(), Error> {
        let io = |op, source| Error::Io { op, path: path.to_path_buf(), source };
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| io("create", e))?;
        let written = file.write_all(&self.0).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            // A partial key must not be taken for a key later.
            let _ = fs::remove_file(path);
            return Err(io("write", e));
        }
        sync_dir(parent_dir(path))
    }

    pub(super) fn mac(&self) -> Result<HmacSha256, Error> {
        <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .map_err(|e| Error::Bug(format!("HMAC-SHA256 refused a key of {} bytes: {e}", self.0.len())))
    }
}
