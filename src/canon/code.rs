//! Code in memory → the records of the `code` subsystem.
//!
//! Which memory is code, and why:
//!
//! - **Kept**: every *private file-backed executable* mapping (`r-xp`,
//!   `--xp`, `rwxp` of a file: the executable, ld.so, libraries, and a memfd
//!   or deleted file mapped executable). Its bytes are what the process runs;
//!   a bit flipped in a page (a single-event upset, a patch written through
//!   `/proc/PID/mem` or `ptrace`, a breakpoint) shows even though `maps`
//!   looks the same.
//! - **Left out**: anonymous executable memory (JIT code changes by design;
//!   memory-maps already reports that it exists); *shared* executable file
//!   mappings (`r-xs`: their pages change whenever the file is written through
//!   another mapping, which is how double-mapped JITs work); the kernel's
//!   pseudo-mappings (`[vdso]`, `[vsyscall]`).
//!
//! Each mapping is hashed in chunks of [`CHUNK`] bytes from its start, so a
//! change is localized to 64 KiB of one mapping:
//!
//! - `map PATH @0xOFFSET` → `dev D inode I size 0xSIZE[ deleted]`: the
//!   mapping's identity. Code is compared only within mappings whose device
//!   and inode are the same as at baseline, so a library loaded or replaced
//!   is memory-maps' finding alone, never a second alarm here.
//! - `code PATH @0xOFFSET +0xCHUNK` → `0xLEN bytes sha256 HEX` (or
//!   `unreadable`): the chunk at CHUNK bytes into the mapping at file offset
//!   OFFSET, hashed over the bytes that could be read. In a check's form
//!   (never a baseline's), a drifted chunk's value may say where its bytes
//!   were read: `, in the page cache` (the copy every process that maps the
//!   file shares) or `, own pages N` (N pages of the process's own).
//!
//! Addresses never appear (ASLR); a mapping is known by its path and file
//! offset, like in memory-maps. If one file region is mapped executable twice,
//! only the first mapping (by address) is hashed.
//!
//! What writes code pages legitimately: the dynamic loader's text relocations
//! (`DT_TEXTREL`, rare, refused by hardened toolchains) happen while the
//! program loads, before a settled baseline; uprobes (perf, bpftrace, USDT
//! probes) and debuggers' breakpoints write into the process's private copy
//! of a page, and show as drift — they are changes of the code.

use std::fmt::Write as _;

use super::{Canon, maps};

/// The size of a hashed chunk.
pub const CHUNK: u64 = 64 << 10;

/// The key prefix of a mapping record.
pub const MAP: &str = "map ";
/// The key prefix of a chunk record.
pub const CODE: &str = "code ";

/// A private file-backed executable mapping, from one line of `maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// File offset of the first byte.
    pub offset: u64,
    /// Device, as printed in `maps`.
    pub dev: String,
    /// Inode number.
    pub inode: u64,
    /// The path, escaped as in every record.
    pub path: String,
    /// Whether the kernel marked the file deleted.
    pub deleted: bool,
}

impl CodeMapping {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// The key of its mapping record.
    pub fn map_key(&self) -> String {
        map_key(&self.path, self.offset)
    }

    /// The value of its mapping record.
    pub fn map_value(&self) -> String {
        let mut v = format!("dev {} inode {} size {:#x}", self.dev, self.inode, self.size());
        if self.deleted {
            v.push_str(" deleted");
        }
        v
    }
}

/// The key of a mapping record: `map PATH @0xOFFSET`.
pub fn map_key(path: &str, offset: u64) -> String {
    format!("{MAP}{path} @{offset:#x}")
}

/// The key of a chunk record: `code PATH @0xOFFSET +0xCHUNK`.
pub fn chunk_key(path: &str, offset: u64, chunk: u64) -> String {
    let mut key = String::new();
    write_chunk_key(&mut key, path, offset, chunk);
    key
}

/// Writes the key of a chunk record into `out` (replacing it), reusing its
/// buffer.
pub fn write_chunk_key(out: &mut String, path: &str, offset: u64, chunk: u64) {
    out.clear();
    let _ = write!(out, "{CODE}{path} @{offset:#x} +{chunk:#x}");
}

/// Writes the value of a chunk record into `out` (replacing it): the number
/// of bytes read and their SHA-256, or `unreadable` when none could be read.
pub fn chunk_value(out: &mut String, len: usize, digest: &[u8; 32]) {
    out.clear();
    if len == 0 {
        out.push_str("unreadable");
        return;
    }
    let _ = write!(out, "{len:#x} bytes sha256 ");
    crate::digest::push_hex(out, digest);
}

/// Appended to the value of a drifted chunk read from the page cache's copy
/// of its file, which every process that maps the file shares.
pub const IN_PAGE_CACHE: &str = ", in the page cache";
/// Appended, with a count, to the value of a drifted chunk with pages of the
/// process's own (copied on a write).
pub const IN_OWN_PAGES: &str = ", own pages ";

/// Where a drifted chunk's value says its bytes were read: `Some(None)` the
/// page cache's copy, `Some(Some(n))` a chunk with `n` pages of the
/// process's own, `None` not said.
pub fn origin(value: &str) -> Option<Option<u64>> {
    if value.ends_with(IN_PAGE_CACHE) {
        return Some(None);
    }
    let (_, n) = value.rsplit_once(IN_OWN_PAGES)?;
    Some(Some(n.parse().ok()?))
}

/// A chunk, as its record key names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkId {
    /// The mapping's path (escaped).
    pub path: String,
    /// The mapping's file offset.
    pub offset: u64,
    /// Bytes into the mapping.
    pub chunk: u64,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// Parses a chunk record's key.
pub fn parse_chunk_key(key: &str) -> Option<ChunkId> {
    let rest = key.strip_prefix(CODE)?;
    let (rest, chunk) = rest.rsplit_once(" +")?;
    let (path, offset) = rest.rsplit_once(" @")?;
    Some(ChunkId { path: path.to_owned(), offset: hex(offset)?, chunk: hex(chunk)? })
}

/// Parses a mapping record's key into (path, offset).
pub fn parse_map_key(key: &str) -> Option<(&str, u64)> {
    let (path, offset) = key.strip_prefix(MAP)?.rsplit_once(" @")?;
    Some((path, hex(offset)?))
}

/// The identity of a mapping record's value: (device, inode).
pub fn map_identity(value: &str) -> Option<(&str, u64)> {
    let rest = value.strip_prefix("dev ")?;
    let (dev, rest) = rest.split_once(" inode ")?;
    let inode = rest.split(' ').next()?.parse().ok()?;
    Some((dev, inode))
}

/// The size in a mapping record's value.
pub fn map_size(value: &str) -> Option<u64> {
    hex(value.split(" size ").nth(1)?.split(' ').next()?)
}

fn escaped(bytes: &[u8]) -> String {
    let mut c = Canon::new();
    c.record().bytes(bytes);
    std::mem::take(&mut c.text)
}

fn address_range(line: &[u8]) -> Option<(u64, u64)> {
    let range = line.split(|&b| b == b' ').next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let parse = |s: &[u8]| u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok();
    Some((parse(range.get(..dash)?)?, parse(range.get(dash + 1..)?)?))
}

/// The code mappings of a `maps` text, in address order, into `out`
/// (replacing its contents): private, file-backed and executable, first
/// mapping of each (path, offset).
pub fn code_mappings(input: &[u8], out: &mut Vec<CodeMapping>) -> Result<(), maps::ParseError> {
    out.clear();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let m = maps::parse_line(line).map_err(|message| maps::ParseError { line: i + 1, message })?;
        let pseudo = m.inode == 0 && (m.path.is_empty() || m.path.starts_with(b"["));
        if pseudo || !m.exec() || m.perms.get(3) != Some(&b'p') {
            continue;
        }
        let (start, end) = address_range(line).ok_or(maps::ParseError { line: i + 1, message: "bad address range" })?;
        let path = escaped(m.path);
        if out.iter().any(|o| o.path == path && o.offset == m.offset) {
            continue;
        }
        out.push(CodeMapping {
            start,
            end,
            offset: m.offset,
            dev: escaped(m.dev),
            inode: m.inode,
            path,
            deleted: m.deleted,
        });
    }
    out.sort_by_key(|m| m.start);
    Ok(())
}

/// The chunk offsets of a mapping of `size` bytes, and each one's length.
pub fn chunks(size: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..size.div_ceil(CHUNK)).map(move |i| {
        let at = i * CHUNK;
        (at, CHUNK.min(size - at))
    })
}

/// A digest shortened for people: `0x10000 bytes sha256 HEX` → `sha256 HEX12`,
/// with the length when it is not a whole chunk.
pub fn short(value: &str) -> String {
    match value.split_once(" bytes sha256 ") {
        Some((len, hex)) => {
            let h = hex.get(..12).unwrap_or(hex);
            if len == format!("{CHUNK:#x}") { format!("sha256 {h}") } else { format!("{len} bytes sha256 {h}") }
        }
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1311 /usr/bin/sleep
55d0c0a02000-55d0c0a26000 r-xp 00002000 fe:01 1311 /usr/bin/sleep
55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]
7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 
7f6f0b000000-7f6f0b001000 r-xp 00000000 00:01 4242 /memfd:jit (deleted)
7f6f0c000000-7f6f0c001000 r-xs 00000000 00:01 4243 /memfd:double-mapped (deleted)
7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0e428000-7f6f0e5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffc9e9fa000-7ffc9e9fc000 r-xp 00000000 00:00 0 [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
";

    #[test]
    fn only_private_file_backed_code_is_kept() {
        let mut out = Vec::new();
        code_mappings(MAPS.as_bytes(), &mut out).unwrap();
        let names: Vec<(&str, u64)> = out.iter().map(|m| (m.path.as_str(), m.offset)).collect();
        assert_eq!(
            names,
            [("/usr/bin/sleep", 0x2000), ("/memfd:jit", 0), ("/usr/lib/x86_64-linux-gnu/libc.so.6", 0x28000)]
        );
        assert_eq!(out[0].size(), 0x24000);
        assert!(out[1].deleted);
        assert_eq!(out[2].map_value(), "dev fe:01 inode 1717 size 0x195000");
        assert!(code_mappings(b"garbage\n", &mut out).is_err());
    }

    #[test]
    fn keys_round_trip() {
        let k = chunk_key("/a b/lib @x.so", 0x28000, 0x30000);
        assert_eq!(k, "code /a b/lib @x.so @0x28000 +0x30000");
        let id = parse_chunk_key(&k).unwrap();
        assert_eq!(id, ChunkId { path: "/a b/lib @x.so".into(), offset: 0x28000, chunk: 0x30000 });
        assert_eq!(parse_map_key(&map_key("/x y", 0x1000)), Some(("/x y", 0x1000)));
        assert_eq!(map_identity("dev fe:01 inode 17 size 0x1000 deleted"), Some(("fe:01", 17)));
        assert_eq!(map_size("dev fe:01 inode 17 size 0x1000 deleted"), Some(0x1000));
        assert_eq!(parse_chunk_key("map /x @0x0"), None);
        assert_eq!(parse_chunk_key("code /x @0x0 +zz"), None);
    }

    #[test]
    fn chunks_cover_a_mapping_exactly() {
        let c: Vec<(u64, u64)> = chunks(2 * CHUNK + 0x1000).collect();
        assert_eq!(c, [(0, CHUNK), (CHUNK, CHUNK), (2 * CHUNK, 0x1000)]);
        assert_eq!(chunks(0).count(), 0);
        assert_eq!(chunks(CHUNK).count(), 1);
    }

    #[test]
    fn values_and_short_forms() {
        let mut v = String::new();
        chunk_value(&mut v, 0x10000, &[0xab; 32]);
        assert_eq!(v, format!("0x10000 bytes sha256 {}", "ab".repeat(32)));
        assert_eq!(short(&v), "sha256 abababababab");
        chunk_value(&mut v, 0x800, &[0xcd; 32]);
        assert_eq!(short(&v), "0x800 bytes sha256 cdcdcdcdcdcd");
        chunk_value(&mut v, 0, &[0; 32]);
        assert_eq!(v, "unreadable");
    }
}
