//! The envelope of a baseline (or response-state) file: the header with its
//! format and version, the payload, the optional HMAC and the SHA-256 tail;
//! sealing bytes into it and opening them out of it.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{BaselineFile, Key, MAX_BASELINE, VERSION};
use crate::digest::{from_hex, to_hex};
use crate::error::{BaselineProblem, SUPPORTED_VERSIONS};
use crate::{Digest, Error};

pub(super) const HEAD: &[u8] = b"{\"format\":\"fdir-baseline\",\"version\":";
pub(super) const PAYLOAD_TAG: &[u8] = b",\"payload\":";
pub(super) const HMAC_TAG: &[u8] = b",\"hmac_sha256\":\"";
pub(super) const HMAC_END: &[u8] = b"\"";
pub(super) const SHA_TAG: &[u8] = b",\"sha256\":\"";
pub(super) const END: &[u8] = b"\"}\n";
pub(super) const HEX_LEN: usize = 64;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// The serialized file, checked by decoding it again.
pub(crate) fn encode(path: &Path, file: &BaselineFile, key: Option<&Key>) -> Result<Vec<u8>, Error> {
    let fail = |problem| Error::Baseline { path: path.to_path_buf(), problem };
    let payload = super::payload::encode(file).map_err(|r| refused(path, r))?;
    let bytes = seal(VERSION, &payload, key)?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_BASELINE {
        return Err(fail(BaselineProblem::TooLarge { size: Some(size), limit: MAX_BASELINE }));
    }
    decode(path, &bytes, key)
        .map_err(|e| Error::Bug(format!("the baseline fdir was about to write does not load back: {e}")))?;
    Ok(bytes)
}

/// The envelope around `payload`: header, optional HMAC, SHA-256, newline.
pub(crate) fn seal(version: u64, payload: &[u8], key: Option<&Key>) -> Result<Vec<u8>, Error> {
    seal_with(HEAD, version, payload, key)
}

/// [`seal`] under another header (another format in the same envelope).
pub(super) fn seal_with(head: &[u8], version: u64, payload: &[u8], key: Option<&Key>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(payload.len() + 256);
    out.extend_from_slice(head);
    out.extend_from_slice(version.to_string().as_bytes());
    out.extend_from_slice(PAYLOAD_TAG);
    out.extend_from_slice(payload);
    if let Some(key) = key {
        out.extend_from_slice(HMAC_TAG);
        let mut mac = key.mac()?;
        mac.update(&out);
        out.extend_from_slice(to_hex(&mac.finalize().into_bytes()).as_bytes());
        out.extend_from_slice(HMAC_END);
    }
    out.extend_from_slice(SHA_TAG);
    let digest = Digest::of(&out);
    out.extend_from_slice(digest.to_string().as_bytes());
    out.extend_from_slice(END);
    Ok(out)
}

/// Decodes the bytes of a baseline file, as [`load`](super::load) does after reading it:
/// checks the envelope byte for byte, then the key, then parses and verifies
/// the payload. `path` only names the file in messages. The fuzz target of
/// the loader calls this (`fuzz/fuzz_targets/baseline.rs`).
///
/// ```
/// use std::path::Path;
/// let err = fdir::baseline::decode(Path::new("b.json"), b"{\"format\":\"fdir-baseline\"", None).unwrap_err();
/// assert_eq!(err.to_string(), "baseline file b.json is truncated or corrupted: it does not end with its SHA-256 digest");
/// ```
pub fn decode(path: &Path, bytes: &[u8], key: Option<&Key>) -> Result<BaselineFile, Error> {
    let fail = |problem| Error::Baseline { path: path.to_path_buf(), problem };
    if bytes.is_empty() {
        return Err(fail(BaselineProblem::Empty));
    }
    // The envelope every version shares: the digest first, so that a corrupted
    // header is reported as corruption rather than as another format.
    let Some((sealed, claimed)) = split_digest(bytes) else {
        // Cut short: what is left is the start of a baseline.
        let truncated = bytes.starts_with(HEAD) || HEAD.starts_with(bytes);
        return Err(fail(if truncated { BaselineProblem::Truncated } else { BaselineProblem::NotBaseline }));
    };
    // A large file's digest is computed on another core while this one
    // opens the envelope and decodes the payload: nothing decoded is used
    // unless the digest matches, and a mismatch is the error whatever the
    // decoding said.
    if sealed.len() < PARALLEL_DIGEST_FROM {
        if Digest::of(sealed) != claimed {
            return Err(fail(BaselineProblem::DigestMismatch));
        }
        return open_sealed(path, sealed, key);
    }
    let (matches, decoded) = std::thread::scope(|scope| {
        let digest = std::thread::Builder::new().spawn_scoped(scope, || Digest::of(sealed) == claimed);
        let decoded = open_sealed(path, sealed, key);
        // No thread to be had: the digest here, after.
        let matches = match digest {
            Ok(h) => h.join().map_err(|_| Error::Bug("computing the digest of the baseline file panicked".into())),
            Err(_) => Ok(Digest::of(sealed) == claimed),
        };
        (matches, decoded)
    });
    match matches? {
        true => decoded,
        false => Err(fail(BaselineProblem::DigestMismatch)),
    }
}

/// From this many bytes on, [`decode`] computes the file's digest on a
/// core of its own (a thread costs more than hashing a small file).
pub(super) const PARALLEL_DIGEST_FROM: usize = 256 * 1024;

/// The rest of [`decode`], once `sealed` (every byte the digest covers) is
/// known to be the file's or while that is being checked: the header, the
/// version, the key, then the payload.
pub(super) fn open_sealed(path: &Path, sealed: &[u8], key: Option<&Key>) -> Result<BaselineFile, Error> {
    let (version, payload) = open_envelope(path, sealed, HEAD, |v| SUPPORTED_VERSIONS.contains(&v), key)?;
    super::payload::decode(version, payload).map_err(|r| refused(path, r))
}

/// Opens the envelope every file of this kind shares, once `sealed` (every
/// byte its digest covers) is known or being checked: the header `head`, a
/// version `supported` takes, the payload, then its HMAC with `key` (a
/// signed file needs its key, an unsigned one is refused with a key).
/// Returns the version and the payload.
pub(super) fn open_envelope<'a>(
    path: &Path,
    sealed: &'a [u8],
    head: &[u8],
    supported: impl Fn(u64) -> bool,
    key: Option<&Key>,
) -> Result<(u64, &'a [u8]), Error> {
    let fail = |problem| Error::Baseline { path: path.to_path_buf(), problem };
    let after_head = sealed.strip_prefix(head).ok_or_else(|| fail(BaselineProblem::NotBaseline))?;
    let (version, after_version) = parse_version(after_head)
        .ok_or_else(|| fail(BaselineProblem::Invalid("its version is not a number".into())))?;
    if !supported(version) {
        return Err(fail(BaselineProblem::UnsupportedVersion { found: version }));
    }
    let body = after_version
        .strip_prefix(PAYLOAD_TAG)
        .and_then(|b| b.strip_suffix(SHA_TAG))
        .ok_or_else(|| fail(BaselineProblem::Invalid("no \"payload\" after the version".into())))?;
    let (payload, hmac) = match split_hmac(body) {
        Some((payload, hex)) => (payload, Some(hex)),
        None => (body, None),
    };
    check_hmac(path, sealed, hmac, key)?;
    Ok((version, payload))
}

/// Checks the HMAC of `sealed` (its hex value `hmac`, if the file has one)
/// with `key`: a signed file needs its key, an unsigned one is refused with a key.
pub(super) fn check_hmac(path: &Path, sealed: &[u8], hmac: Option<&str>, key: Option<&Key>) -> Result<(), Error> {
    let fail = |problem| Error::Baseline { path: path.to_path_buf(), problem };
    match (hmac, key) {
        (Some(hex), Some(key)) => {
            // The HMAC covers every byte before its hex value.
            let covered = sealed
                .len()
                .checked_sub(SHA_TAG.len() + HMAC_END.len() + HEX_LEN)
                .and_then(|len| sealed.get(..len))
                .ok_or_else(|| Error::Bug("HMAC span out of range".into()))?;
            let mut tag = [0u8; 32];
            from_hex(hex, &mut tag).ok_or_else(|| Error::Bug("HMAC hex checked but not decoded".into()))?;
            let mut mac = key.mac()?;
            mac.update(covered);
            mac.verify_slice(&tag).map_err(|_| fail(BaselineProblem::HmacMismatch))
        }
        (Some(_), None) => Err(fail(BaselineProblem::Signed)),
        (None, Some(_)) => Err(fail(BaselineProblem::Unsigned)),
        (None, None) => Ok(()),
    }
}

/// The error of a refused payload, naming the file.
pub(super) fn refused(path: &Path, r: super::payload::Refusal) -> Error {
    match r {
        super::payload::Refusal::File(problem) => Error::Baseline { path: path.to_path_buf(), problem },
        super::payload::Refusal::Bug(m) => Error::Bug(m),
    }
}

/// Splits `…"sha256":"<hex>"}\n` into the sealed prefix (up to and including
/// `"sha256":"`) and the digest, if the tail is exactly that.
pub(super) fn split_digest(bytes: &[u8]) -> Option<(&[u8], Digest)> {
    let rest = bytes.strip_suffix(END)?;
    let (sealed, hex) = rest.split_at_checked(rest.len().checked_sub(HEX_LEN)?)?;
    if !sealed.ends_with(SHA_TAG) || !is_lower_hex(hex) {
        return None;
    }
    let mut digest = [0u8; 32];
    from_hex(std::str::from_utf8(hex).ok()?, &mut digest)?;
    Some((sealed, Digest(digest)))
}

/// Splits `<payload>,"hmac_sha256":"<hex>"` into the payload and the hex; `None`
/// if the body does not end that way (an unsigned file: a payload ends in `}`).
pub(super) fn split_hmac(body: &[u8]) -> Option<(&[u8], &str)> {
    let rest = body.strip_suffix(HMAC_END)?;
    let (before, hex) = rest.split_at_checked(rest.len().checked_sub(HEX_LEN)?)?;
    let payload = before.strip_suffix(HMAC_TAG)?;
    if !is_lower_hex(hex) {
        return None;
    }
    Some((payload, std::str::from_utf8(hex).ok()?))
}

pub(super) fn is_lower_hex(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A version number (a `u64`: no sign, no leading zero) followed by the rest of
/// the file.
pub(super) fn parse_version(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = s.split_at_checked(digits)?;
    if number.is_empty() || number.len() > 20 || (number.len() > 1 && number.first() == Some(&b'0')) {
        return None;
    }
    Some((std::str::from_utf8(number).ok()?.parse().ok()?, rest))
}
