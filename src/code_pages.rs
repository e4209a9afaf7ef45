//! Code pages a node shares: a code file's pages are one set of physical
//! pages in the page cache for every process that maps it, so they are
//! hashed once per node per round, and each process is read only where it
//! has pages of its own.
//!
//! - **Which pages are a process's own**: a write into a private file
//!   mapping (through `ptrace`, `/proc/PID/mem`, or `mprotect` and a store)
//!   copies the page (copy-on-write): the mapping then holds an anonymous
//!   page in place of the page cache's. `/proc/PID/pagemap` tells it per
//!   page: present (bit 63) and not "file-page or shared-anon" (bit 61), or
//!   swapped (bit 62, only anonymous pages are). [`private_pages`] reads the
//!   entries of the code mappings only (8 bytes a page: 3 KiB for libc's
//!   code), never `smaps` (which walks every mapping of the process).
//! - **The shared copy**: a chunk of a mapping with no page of its own is
//!   the page cache's bytes. [`CodePages`] keeps, for one round, the value of
//!   each such chunk by what it depends on: the file (device, inode, and the
//!   path `maps` gives, since its device is a file system's, not a btrfs
//!   subvolume's) and the chunk's place and length in it. The first
//!   target of the round that needs a chunk reads it through its own `mem`
//!   (the same reader as a baseline, so the value is comparable with every
//!   baseline's byte for byte); every other target of the round takes it.
//!   Targets checked in parallel wait for the one reading a chunk instead of
//!   reading it again.
//! - **Not shared**: a chunk with a page of the process's own is read
//!   through that process's `mem`, every check (before the sweep, within
//!   the budget); so is every chunk of a process whose page map cannot be
//!   read (the kernel's or the source's), and every chunk of a read that
//!   must be fresh (the confirming re-read after a drift), whose value then
//!   replaces the round's.
//!
//! Chunks are kept for one part of a round ([`crate::shared::Shared::begin_part`],
//! and `begin_round` at a round's first): nothing older is used, so a bit
//! flipped in the page cache is seen by the next part that reaches its
//! chunk, by every process that maps it.
//!
//! A race: a process that writes its code between the read of its page map
//! and the read of its memory lends its private bytes to the round; they
//! differ from every baseline, and the confirming re-read (fresh, its own
//! `mem`) clears the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::canon::code::CodeMapping;
use crate::{Error, Source};

/// The size of a page.
pub(crate) const PAGE: u64 = 4096;

/// `pagemap`: the page is present in memory.
const PRESENT: u64 = 1 << 63;
/// `pagemap`: the page is swapped (an anonymous page).
const SWAPPED: u64 = 1 << 62;
/// `pagemap`: the page is a file page or shared anonymous memory.
const FILE: u64 = 1 << 61;

/// Whether a `pagemap` entry is a page of the process's own in a private
/// file mapping.
pub(crate) fn is_private(entry: u64) -> bool {
    (entry & PRESENT != 0 && entry & FILE == 0) || entry & SWAPPED != 0
}

/// Entries read per system call.
const BATCH: usize = 512;

/// The addresses of the pages of `mappings` (in address order) that are the
/// process's own, ascending; `Err` when the page map cannot be read (the
/// caller reads every chunk itself).
pub(crate) fn private_pages<S: Source + ?Sized>(src: &S, mappings: &[CodeMapping]) -> Result<Vec<u64>, Error> {
    let mut entries = [0u64; BATCH];
    let mut own = Vec::new();
    for m in mappings {
        let pages = m.size().div_ceil(PAGE);
        let mut page = 0u64;
        while page < pages {
            let want = usize::try_from(pages - page).unwrap_or(BATCH).min(BATCH);
            let slots = entries.get_mut(..want).unwrap_or(&mut []);
            let got = src.read_pagemap(m.start.saturating_add(page * PAGE), slots)?;
            if got == 0 {
                break;
            }
            for (i, &e) in slots.iter().take(got).enumerate() {
                if is_private(e) {
                    own.push(m.start.saturating_add((page + i as u64) * PAGE));
                }
            }
            page += got as u64;
        }
    }
    own.sort_unstable();
    Ok(own)
}

/// A device as `maps` prints it (`fe:01`, hexadecimal major and minor) as a
/// number; `None` if it is not one.
pub(crate) fn device(dev: &str) -> Option<u64> {
    let (major, minor) = dev.split_once(':')?;
    let major = u64::from_str_radix(major, 16).ok().filter(|&m| m <= u64::from(u32::MAX))?;
    let minor = u64::from_str_radix(minor, 16).ok().filter(|&m| m <= u64::from(u32::MAX))?;
    Some(major << 32 | minor)
}

/// A path as `maps` prints it, hashed: part of a chunk's key, because
/// `maps` gives a file system's device, not a btrfs subvolume's, and two
/// subvolumes hold files of the same inode number.
pub(crate) fn path_id(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// What the value of a chunk of shared code depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ChunkKey {
    /// The file's device ([`device`]).
    pub(crate) dev: u64,
    /// The file's path ([`path_id`]).
    pub(crate) path: u64,
    /// The file's inode.
    pub(crate) inode: u64,
    /// The chunk's offset in the file.
    pub(crate) at: u64,
    /// The chunk's length.
    pub(crate) len: u64,
}

/// The value of one chunk: empty until the first target that needs it has
/// read it (the others wait on its lock meanwhile).
type Slot = Arc<Mutex<Option<Arc<str>>>>;

/// One round's values of shared code chunks, and what reading them cost.
#[derive(Debug, Default)]
pub(crate) struct CodePages {
    chunks: Mutex<HashMap<ChunkKey, Slot>>,
    /// Bytes of shared code hashed since the store was made.
    hashed: AtomicU64,
}

impl CodePages {
    /// Forgets every value: a new round.
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.chunks.lock() {
            m.clear();
        }
    }

    /// The value of the shared chunk `key` this round: taken if a target
    /// read it, otherwise read by `read` (which returns the value and the
    /// bytes it read) and kept. Returns the value and whether it was read
    /// here. A failed read keeps nothing.
    pub(crate) fn value(
        &self,
        key: ChunkKey,
        read: impl FnOnce() -> Result<(String, u64), Error>,
    ) -> Result<(Arc<str>, bool), Error> {
        let slot = match self.chunks.lock() {
            Ok(mut m) => Arc::clone(m.entry(key).or_default()),
            Err(_) => return read().map(|(v, _)| (Arc::from(v), true)),
        };
        let Ok(mut slot) = slot.lock() else { return read().map(|(v, _)| (Arc::from(v), true)) };
        if let Some(v) = slot.as_ref() {
            return Ok((Arc::clone(v), false));
        }
        let (v, bytes) = read()?;
        self.hashed.fetch_add(bytes, Ordering::Relaxed);
        let v: Arc<str> = Arc::from(v);
        *slot = Some(Arc::clone(&v));
        Ok((v, true))
    }

    /// Replaces the value of `key` for the rest of the round (a fresh read).
    pub(crate) fn replace(&self, key: ChunkKey, value: &str) {
        if let Ok(mut m) = self.chunks.lock()
            && let Ok(mut slot) = m.entry(key).or_default().lock()
        {
            *slot = Some(Arc::from(value));
        }
    }

    /// Bytes of shared code hashed since this store was made.
    #[cfg(test)]
    pub(crate) fn hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_means_an_anonymous_page_in_the_file_mapping() {
        assert!(!is_private(0), "not present: the page cache's when touched");
        assert!(!is_private(PRESENT | FILE | 1234), "the page cache's page");
        assert!(is_private(PRESENT | 1234), "a copy-on-write copy");
        assert!(is_private(SWAPPED), "a copy, swapped out");
    }

    #[test]
    fn a_round_reads_each_chunk_once_and_a_failed_read_keeps_nothing() {
        let pages = CodePages::default();
        let key =
            ChunkKey { dev: device("fe:01").unwrap(), path: path_id("/lib/x.so"), inode: 7, at: 0x38000, len: 0x10000 };
        let got = |k: ChunkKey, v: &str| {
            pages.value(k, || Ok((v.to_owned(), 0x10000))).map(|(v, here)| (v.to_string(), here))
        };
        let err = pages.value(key, || Err(Error::Bug("gone".into())));
        assert!(err.is_err());
        assert_eq!(got(key, "a").unwrap(), ("a".into(), true));
        assert_eq!(got(key, "b").unwrap(), ("a".into(), false));
        let other = ChunkKey { len: 0x8000, ..key };
        assert_eq!(got(other, "c").unwrap(), ("c".into(), true));
        assert_eq!(pages.hashed(), 0x20000);
        // The same device and inode under another path: another file (a
        // btrfs subvolume's), not shared.
        let elsewhere = ChunkKey { path: path_id("/other/x.so"), ..key };
        assert_eq!(got(elsewhere, "g").unwrap(), ("g".into(), true));
        assert_eq!(pages.hashed(), 0x30000);
        pages.replace(key, "d");
        assert_eq!(got(key, "e").unwrap(), ("d".into(), false));
        pages.clear();
        assert_eq!(got(key, "f").unwrap(), ("f".into(), true));
        assert_eq!(device("fe:01"), Some(0xfe << 32 | 1));
        assert_eq!(device("103:02"), Some(0x103 << 32 | 2));
        assert_eq!(device("x"), None);
    }
}
