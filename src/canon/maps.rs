//! `/proc/PID/maps` → the mapping records of the `memory-maps` subsystem.
//!
//! What is kept, and why (DESIGN.md §2):
//!
//! - **Code files** — every file that has at least one executable mapping in
//!   the process (the executable, ld.so, libraries, a memfd or deleted file
//!   mapped executable): each of their mappings, by path, offset, permissions,
//!   device, inode and deleted flag. A new library, a permission change
//!   (RELRO made writable, text made writable), a replaced or deleted file all
//!   show.
//! - **Fixed pseudo-mappings** (`[vdso]`, `[vvar]`, `[vsyscall]` ...): by name
//!   and permissions.
//! - **Anonymous memory** (including `[heap]`, `[stack]`, thread stacks and
//!   named `[anon:...]` regions): only when it is executable, as a count per
//!   class and permissions. Heap and stack growth, thread stacks and anonymous
//!   churn never show; a new executable or writable+executable region always
//!   does.
//! - **Data files** (files mapped without execute permission anywhere in the
//!   process: locale archives, caches, databases): left out like anonymous
//!   data, since mapping a file to read it is file access, not isolation. If
//!   one is made executable it becomes a code file and shows.
//!
//! Addresses and sizes are never part of the form (ASLR, growth).

use super::Canon;

pub use super::ParseError;

/// One parsed line of `maps`, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping<'a> {
    /// `rwxp` / `r-xs` ...
    pub perms: [u8; 4],
    /// File offset.
    pub offset: u64,
    /// Device `major:minor`, as printed (hex).
    pub dev: &'a [u8],
    /// Inode number.
    pub inode: u64,
    /// Path or pseudo name, without a ` (deleted)` suffix; empty for anonymous memory.
    pub path: &'a [u8],
    /// Whether the kernel marked the file ` (deleted)`.
    pub deleted: bool,
}

impl Mapping<'_> {
    /// Whether the mapping is executable.
    pub fn exec(&self) -> bool {
        self.perms.get(2) == Some(&b'x')
    }
    /// Whether the mapping is writable.
    pub fn write(&self) -> bool {
        self.perms.get(1) == Some(&b'w')
    }
    fn class(&self) -> Class {
        if self.inode == 0 && (self.path.is_empty() || self.path.starts_with(b"[")) {
            match self.path {
                b"[vdso]" | b"[vvar]" | b"[vvar_vclock]" | b"[vsyscall]" | b"[uprobes]" => Class::Pseudo,
                b"[heap]" => Class::Anon("[heap]"),
                p if p.starts_with(b"[stack") => Class::Anon("[stack]"),
                _ => Class::Anon("anonymous"),
            }
        } else {
            Class::File
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    File,
    Pseudo,
    Anon(&'static str),
}

/// The next column: the kernel separates the first five columns of a maps
/// line with exactly one space (only the path is padded), so an empty column
/// (two spaces) is malformed, not skipped.
fn field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let (f, r) = rest.split_at(end);
    *rest = r.get(1..).unwrap_or(&[]);
    (!f.is_empty()).then_some(f)
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Parses one line of `maps`.
pub fn parse_line(line: &[u8]) -> Result<Mapping<'_>, &'static str> {
    let mut rest = line;
    let range = field(&mut rest).ok_or("missing address range")?;
    let (lo, hi) = range
        .iter()
        .position(|&b| b == b'-')
        .map(|i| (range.get(..i).unwrap_or(&[]), range.get(i + 1..).unwrap_or(&[])))
        .ok_or("address range without '-'")?;
    let (lo, hi) = (hex(lo).ok_or("bad start address")?, hex(hi).ok_or("bad end address")?);
    if lo > hi {
        return Err("address range ends before it starts");
    }
    let perms_f = field(&mut rest).ok_or("missing permissions")?;
    let perms: [u8; 4] = perms_f.try_into().map_err(|_| "permissions are not 4 characters")?;
    let ok = |i: usize, set: &[u8]| perms.get(i).is_some_and(|c| set.contains(c));
    if !(ok(0, b"r-") && ok(1, b"w-") && ok(2, b"x-") && ok(3, b"ps")) {
        return Err("permissions are not of the form [r-][w-][x-][ps]");
    }
    let offset_f = field(&mut rest).ok_or("missing offset")?;
    if offset_f.len() < 8 {
        return Err("offset has fewer than 8 hex digits");
    }
    let offset = hex(offset_f).ok_or("bad offset")?;
    let dev = field(&mut rest).ok_or("missing device")?;
    let colon = dev.iter().position(|&b| b == b':').ok_or("device without ':'")?;
    let (major, minor) = (dev.get(..colon).unwrap_or(&[]), dev.get(colon + 1..).unwrap_or(&[]));
    if major.len() < 2 || minor.len() < 2 || hex(major).is_none() || hex(minor).is_none() {
        return Err("bad device");
    }
    let inode = dec(field(&mut rest).ok_or("missing inode")?).ok_or("bad inode")?;
    let mut path = rest.trim_ascii_start();
    let mut deleted = false;
    if let Some(p) = path.strip_suffix(b" (deleted)") {
        path = p;
        deleted = true;
    }
    Ok(Mapping { perms, offset, dev, inode, path, deleted })
}

type AnonCount<'a> = (&'static str, Mapping<'a>, u32);

/// Pseudo and anonymous mappings always have offset 0 and device 00:00; any
/// other value is recorded, so that no field of a recorded line is ignored.
fn unusual_origin(w: &mut super::RecordWriter<'_>, m: &Mapping<'_>) {
    if m.offset != 0 || m.dev != b"00:00" {
        w.str(" @").hex(m.offset).str(" dev ").bytes(m.dev);
    }
}

/// Canonicalizes the text of `/proc/PID/maps` into `out` (which is cleared).
///
/// An empty input is an error: a live process always has mappings (an empty
/// `maps` is what a zombie shows).
pub fn canonicalize(input: &[u8], out: &mut Canon) -> Result<(), ParseError> {
    out.clear();
    // Each line is parsed once; the code files are known only at the end.
    let mut mappings: Vec<(Mapping<'_>, Class)> = Vec::with_capacity(input.len() / 64 + 1);
    let mut code_files: Vec<(u64, &[u8], &[u8])> = Vec::new();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let m = parse_line(line).map_err(|message| ParseError { line: i + 1, message })?;
        let class = m.class();
        if class == Class::File && m.exec() {
            let id = (m.inode, m.dev, m.path);
            if !code_files.contains(&id) {
                code_files.push(id);
            }
        }
        mappings.push((m, class));
    }
    if mappings.is_empty() {
        return Err(ParseError { line: 0, message: "no mappings (empty maps: the process is exiting or a zombie)" });
    }

    // Executable anonymous regions, counted per class, permissions (and the
    // offset and device, which the kernel always prints as zero).
    let mut anon: Vec<AnonCount<'_>> = Vec::new();
    for &(m, class) in &mappings {
        match class {
            Class::File => {
                if code_files.contains(&(m.inode, m.dev, m.path)) {
                    let mut w = out.record();
                    w.str("file ").bytes(m.path);
                    w.str(" @").hex(m.offset);
                    w.value().bytes(&m.perms);
                    w.str(" dev ").bytes(m.dev);
                    w.str(" inode ").dec(m.inode);
                    if m.deleted {
                        w.str(" deleted");
                    }
                }
            }
            Class::Pseudo => {
                let mut w = out.record();
                w.str("pseudo ").bytes(m.path).value().bytes(&m.perms);
                unusual_origin(&mut w, &m);
            }
            Class::Anon(class) => {
                if m.exec() {
                    let same = |(c, p, _): &&mut AnonCount<'_>| {
                        *c == class && p.perms == m.perms && p.offset == m.offset && p.dev == m.dev
                    };
                    match anon.iter_mut().find(same) {
                        Some(e) => e.2 = e.2.saturating_add(1),
                        None => anon.push((class, m, 1)),
                    }
                }
            }
        }
    }
    for (class, m, count) in anon {
        let mut w = out.record();
        w.str("anon ").str(class).str(" ").bytes(&m.perms);
        unusual_origin(&mut w, &m);
        w.value().dec(u64::from(count));
    }
    out.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    pub(crate) const BASE: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1311 /usr/bin/sleep
55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep
55d0c0a06000-55d0c0a08000 r--p 00006000 fe:01 1311 /usr/bin/sleep
55d0c0a09000-55d0c0a0a000 rw-p 00008000 fe:01 1311 /usr/bin/sleep
55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]
7f6f0d000000-7f6f0d2e8000 r--p 00000000 fe:01 2040 /usr/lib/locale/locale-archive
7f6f0d400000-7f6f0d428000 r--p 00000000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d5bd000-7f6f0d615000 r--p 001bd000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d615000-7f6f0d619000 r--p 00214000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d619000-7f6f0d61b000 rw-p 00218000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d61b000-7f6f0d628000 rw-p 00000000 00:00 0 
7f6f0d7a0000-7f6f0d7a3000 rw-p 00000000 00:00 0 
7f6f0d7b4000-7f6f0d7b6000 rw-p 00000000 00:00 0 
7f6f0d7b6000-7f6f0d7b8000 r--p 00000000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f6f0d7b8000-7f6f0d7e2000 r-xp 00002000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f6f0d7e2000-7f6f0d7ed000 r--p 0002c000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f6f0d7ee000-7f6f0d7f0000 r--p 00037000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f6f0d7f0000-7f6f0d7f2000 rw-p 00039000 fe:01 1702 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7ffc9e9d1000-7ffc9e9f2000 rw-p 00000000 00:00 0 [stack]
7ffc9e9f6000-7ffc9e9fa000 r--p 00000000 00:00 0 [vvar]
7ffc9e9fa000-7ffc9e9fc000 r-xp 00000000 00:00 0 [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
";

    fn digest(text: &str) -> crate::Digest {
        let mut c = Canon::new();
        canonicalize(text.as_bytes(), &mut c).unwrap();
        c.digest(Subsystem::MemoryMaps)
    }

    /// Replaces the first occurrence of `from` in BASE.
    fn edit(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    }

    fn append(line: &str) -> String {
        format!("{BASE}{line}\n")
    }

    #[test]
    fn churn_is_invisible() {
        let cases: Vec<(&str, String)> = vec![
            ("heap grows", edit("55d0c1b6f000 rw-p", "55d0c1f00000 rw-p")),
            ("stack grows", edit("7ffc9e9d1000-", "7ffc9e900000-")),
            ("heap appears late", BASE.replace("55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]\n", "")),
            (
                "thread stack and guard",
                append(
                    "7f6f0c000000-7f6f0c001000 ---p 00000000 00:00 0 \n7f6f0c001000-7f6f0c801000 rw-p 00000000 00:00 0 ",
                ),
            ),
            ("anonymous mmap", append("7f6f0a000000-7f6f0b000000 rw-p 00000000 00:00 0 ")),
            (
                "anonymous region split by mprotect to read-only",
                append("7f6f0a000000-7f6f0a001000 r--p 00000000 00:00 0 "),
            ),
            (
                "named anonymous region",
                append("7f6f0a000000-7f6f0a100000 rw-p 00000000 00:00 0 [anon:glibc: malloc arena]"),
            ),
            ("data file mapped", append("7f6f09000000-7f6f09100000 r--s 00000000 fe:01 9999 /var/lib/db/data.mdb")),
            (
                "data file remapped writable",
                append("7f6f09000000-7f6f09100000 rw-s 00000000 fe:01 9999 /var/lib/db/data.mdb"),
            ),
            ("ASLR: every address moves", BASE.replace("7f6f0d", "7f11aa").replace("55d0c0", "5611ff")),
            ("lines in another order", BASE.lines().rev().map(|l| format!("{l}\n")).collect()),
            (
                "duplicate code mapping line",
                append("7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6"),
            ),
            ("no trailing newline", BASE.trim_end().to_owned()),
        ];
        let base = digest(BASE);
        for (name, text) in cases {
            assert_eq!(digest(&text), base, "{name} must not change the digest");
        }
    }

    #[test]
    fn isolation_changes_are_caught() {
        let cases: Vec<(&str, String)> = vec![
            ("libc text made writable", edit("r-xp 00028000 fe:01 1717", "rwxp 00028000 fe:01 1717")),
            ("RELRO made writable", edit("r--p 00214000", "rw-p 00214000")),
            ("executable data made executable", edit("rw-p 00008000 fe:01 1311", "rwxp 00008000 fe:01 1311")),
            ("new W+X anonymous mapping", append("7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 ")),
            ("new executable anonymous mapping", append("7f6f0a000000-7f6f0a001000 r-xp 00000000 00:00 0 ")),
            ("heap made executable", edit("rw-p 00000000 00:00 0 [heap]", "rwxp 00000000 00:00 0 [heap]")),
            ("stack made executable", edit("rw-p 00000000 00:00 0 [stack]", "rwxp 00000000 00:00 0 [stack]")),
            (
                "memfd mapped executable",
                append("7f6f0a000000-7f6f0a001000 r-xp 00000000 00:01 4242 /memfd:payload (deleted)"),
            ),
            (
                "deleted executable mapped",
                append("7f6f0a000000-7f6f0a001000 r-xp 00000000 fe:01 4243 /tmp/x (deleted)"),
            ),
            (
                "library deleted on disk",
                BASE.replace(
                    "1717 /usr/lib/x86_64-linux-gnu/libc.so.6",
                    "1717 /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)",
                ),
            ),
            ("new library", append("7f6f0a000000-7f6f0a001000 r-xp 00001000 fe:01 5555 /usr/lib/libevil.so")),
            ("library replaced (new inode)", BASE.replace("fe:01 1717", "fe:01 1718")),
            ("library on another device", BASE.replace("fe:01 1717", "fe:02 1717")),
            ("library unloaded", BASE.lines().filter(|l| !l.contains("libc.so.6")).map(|l| format!("{l}\n")).collect()),
            ("vdso permissions", edit("r-xp 00000000 00:00 0 [vdso]", "rwxp 00000000 00:00 0 [vdso]")),
            (
                "data file made executable",
                append("7f6f09000000-7f6f09100000 r-xs 00000000 fe:01 9999 /var/lib/db/data.mdb"),
            ),
            ("private mapping of libc made shared", edit("r-xp 00028000 fe:01 1717", "r-xs 00028000 fe:01 1717")),
            (
                "second W+X region of the same kind",
                append(
                    "7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 \n7f6f0b000000-7f6f0b001000 rwxp 00000000 00:00 0 ",
                ),
            ),
        ];
        let base = digest(BASE);
        for (name, text) in cases {
            assert_ne!(digest(&text), base, "{name} must change the digest");
        }
        let one = digest(&append("7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 "));
        let two = digest(&append(
            "7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 \n7f6f0b000000-7f6f0b001000 rwxp 00000000 00:00 0 ",
        ));
        assert_ne!(one, two, "a second W+X region must show");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "\n\n",
            "0-1000 r--p  0000000 fe:01 7 /x",
            "0-1000 r--p 0000000 fe:01 7 /x",
            "0-1000 r--p 00000000 f:01 7 /x",
            "0-1000 r--p 00000000 fe:01  /x",
            " 0-1000 r--p 00000000 fe:01 7 /x",
            "garbage",
            "0-1 rwxq 00000000 00:00 0",
            "1-0 r--p 00000000 00:00 0",
            "0-1 r--p 00000000 0000 0",
            "0-1 r--p zzzzzzzz 00:00 0",
            "0-1 r--p 00000000 00:00 -1",
            "0-1 r--p 00000000 00:00",
            "0-11111111111111111 r--p 00000000 00:00 0",
            "\u{0}\u{1}",
        ] {
            let mut c = Canon::new();
            assert!(canonicalize(bad.as_bytes(), &mut c).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_with_spaces_and_odd_bytes() {
        let m = parse_line(b"0-1000 r-xp 00000000 fe:01 7 /opt/my app/lib x.so (deleted)").unwrap();
        assert_eq!(m.path, b"/opt/my app/lib x.so");
        assert!(m.deleted && m.exec() && !m.write());
        let mut c = Canon::new();
        canonicalize(b"0-1000 r-xp 00000000 fe:01 7 /opt/\xff\tx\n", &mut c).unwrap();
        assert!(c.lines().all(|l| l.matches('\t').count() == 1), "{:?}", c.lines().collect::<Vec<_>>());
    }
}
