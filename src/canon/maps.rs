//! `/proc/PID/maps` → the mapping records of the `memory-maps` subsystem.
//!
//! What is kept, and why (docs/contracts.md §2):
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
//!   named `[anon:...]` regions): only when it is executable, and only which
//!   *kinds* the process has (class and permissions: `anon anonymous rwxp`,
//!   value [`PRESENT`]), never how many regions of a kind. Heap and stack
//!   growth, thread stacks and anonymous churn never show; a JIT growing its
//!   code space (V8 maps each new piece as a fresh rwx region) or flipping
//!   its pages between rw- and r-x (W^X JITs) does not show either; a kind
//!   of executable anonymous memory the process did not have always does.
//!   A kind absent at a check but present in the baseline is not drift
//!   (a W^X JIT's r-x pages are all writable for a moment): a check's form
//!   is made comparable with [`project`], which adds the baseline's kinds.
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

/// A hexadecimal field of `maps` (an address, an offset).
pub(crate) fn hex(s: &[u8]) -> Option<u64> {
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

/// A decimal field of `maps` (an inode).
pub(crate) fn dec(s: &[u8]) -> Option<u64> {
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

/// The value of an anonymous-memory record: the kind is present. Baseline
/// files written before kinds replaced counts hold a count here; [`project`]
/// compares by kind (the key) alone, so they still check quietly.
pub const PRESENT: &str = "present";

type AnonKind<'a> = (&'static str, Mapping<'a>);

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

    // Executable anonymous memory: the kinds (class, permissions, and the
    // offset and device, which the kernel always prints as zero), not counted.
    let mut anon: Vec<AnonKind<'_>> = Vec::new();
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
                    let same = |(c, p): &AnonKind<'_>| {
                        *c == class && p.perms == m.perms && p.offset == m.offset && p.dev == m.dev
                    };
                    if !anon.iter().any(same) {
                        anon.push((class, m));
                    }
                }
            }
        }
    }
    for (class, m) in anon {
        let mut w = out.record();
        w.str("anon ").str(class).str(" ").bytes(&m.perms);
        unusual_origin(&mut w, &m);
        w.value().str(PRESENT);
    }
    out.finish();
    Ok(())
}

/// Whether a record (key) is a kind of executable anonymous memory.
pub fn is_anon_kind(key: &str) -> bool {
    key.starts_with("anon ")
}

/// Makes a check's finished memory-maps `form` comparable with the
/// `baseline`'s records: the executable anonymous kinds are compared by
/// kind, as a set that may shrink but not grow. Every kind of the baseline
/// is put in the form with the baseline's record (absent now or not: a W^X
/// JIT's r-x kind disappears while it writes, and a kind the process had is
/// not drift; an older baseline's count is taken as it is), and a kind the
/// baseline does not have stays as it is, so it shows as added. Everything
/// else is untouched. Idempotent; returns whether the form changed (its
/// digest is then recomputed).
///
/// Without anonymous kinds in the baseline and in the form it does nothing
/// and allocates nothing, the common case of a process without a JIT.
pub fn project(baseline: &[super::Record], form: &mut Canon) -> bool {
    let base = || baseline.iter().filter(|r| is_anon_kind(&r.key));
    let line_of = |r: &super::Record| format!("{}\t{}", r.key, r.value);
    if base().next().is_none() {
        return false;
    }
    let key_of = |line: &str| line.split_once('\t').map_or(line, |(k, _)| k).to_owned();
    // The form's own kinds, and what they become.
    let own: Vec<String> = form.lines().filter(|l| is_anon_kind(l)).map(str::to_owned).collect();
    let mut wanted: Vec<String> = base().map(line_of).collect();
    for line in &own {
        let key = key_of(line);
        if !base().any(|r| r.key == key) {
            wanted.push(line.clone());
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    if wanted == own {
        return false;
    }
    let mut out = Canon::new();
    for line in form.lines().filter(|l| !is_anon_kind(l)).chain(wanted.iter().map(String::as_str)) {
        let (k, v) = line.split_once('\t').unwrap_or((line, ""));
        out.push_clean(k, v);
    }
    out.finish();
    *form = out;
    true
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
        ];
        let base = digest(BASE);
        for (name, text) in cases {
            assert_ne!(digest(&text), base, "{name} must change the digest");
        }
    }

    const RWX: &str = "7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 ";
    const RWX2: &str = "7f6f0b000000-7f6f0b004000 rwxp 00000000 00:00 0 ";
    const RX: &str = "7f6f0c000000-7f6f0c001000 r-xp 00000000 00:00 0 ";
    const RX2: &str = "7f6f0d900000-7f6f0d901000 r-xp 00000000 00:00 0 ";
    const RW: &str = "7f6f0c000000-7f6f0c001000 rw-p 00000000 00:00 0 ";

    fn with(lines: &[&str]) -> String {
        let mut s = BASE.to_owned();
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    fn records(text: &str) -> Vec<crate::canon::Record> {
        let mut c = Canon::new();
        canonicalize(text.as_bytes(), &mut c).unwrap();
        c.records()
    }

    /// The digest of a check's form of `now`, made comparable with the
    /// baseline `base` as a check does.
    fn checked(base: &[crate::canon::Record], now: &str) -> crate::Digest {
        let mut c = Canon::new();
        canonicalize(now.as_bytes(), &mut c).unwrap();
        project(base, &mut c);
        c.digest(Subsystem::MemoryMaps)
    }

    fn baseline_digest(base: &[crate::canon::Record]) -> crate::Digest {
        crate::canon::digest_records(Subsystem::MemoryMaps, base).unwrap()
    }

    /// Executable anonymous memory by kind: (name, baseline, now, drift?).
    #[test]
    fn anonymous_executable_memory_by_kind() {
        let cases: &[(&str, &[&str], &[&str], bool)] = &[
            ("JIT grows its rwx code space (V8)", &[RWX], &[RWX, RWX2], false),
            ("JIT frees some of its code space", &[RWX, RWX2], &[RWX], false),
            ("W^X JIT: r-x pages made writable for a moment", &[RX, RW], &[RW], false),
            ("W^X JIT: more r-x pages", &[RX], &[RX, RX2], false),
            ("W^X JIT: r-x gone, then back", &[RX], &[RX2], false),
            ("JIT with both kinds loses one", &[RWX, RX], &[RWX], false),
            ("JIT with both kinds loses both", &[RWX, RX], &[], false),
            ("none -> rwx anonymous", &[], &[RWX], true),
            ("none -> r-x anonymous", &[], &[RX], true),
            ("r-x only -> rwx appears", &[RX], &[RX, RWX], true),
            ("rwx only -> r-x appears", &[RWX], &[RX], true),
            ("rwx kind absent, a new r-x kind", &[RWX], &[RX2], true),
            ("heap made executable while a JIT runs", &[RWX], &[RWX], false),
            (
                "memfd mapped executable while a JIT runs",
                &[RWX],
                &[RWX, "7f6f0e000000-7f6f0e001000 r-xp 00000000 00:01 4242 /memfd:jit (deleted)"],
                true,
            ),
            (
                "named anonymous region made executable",
                &[RWX],
                &[RWX, "7f6f0e000000-7f6f0e001000 rwxp 00000000 00:00 0 [anon:evil]"],
                false,
            ),
            ("another rwx region elsewhere", &[RWX], &[RWX2], false),
        ];
        for (name, base, now, drift) in cases {
            let base = records(&with(base));
            let got = checked(&base, &with(now)) != baseline_digest(&base);
            assert_eq!(got, *drift, "{name}");
        }
        // The heap is a class of its own: made executable, it is a new kind.
        let base = records(&with(&[RWX]));
        let heap = BASE.replace("rw-p 00000000 00:00 0 [heap]", "rwxp 00000000 00:00 0 [heap]");
        assert_ne!(checked(&base, &heap), baseline_digest(&base), "heap made executable");
    }

    #[test]
    fn projection_is_idempotent_and_leaves_the_rest() {
        let base = records(&with(&[RX]));
        let mut c = Canon::new();
        canonicalize(with(&[RWX]).as_bytes(), &mut c).unwrap();
        assert!(project(&base, &mut c));
        let once: Vec<String> = c.lines().map(str::to_owned).collect();
        assert!(!project(&base, &mut c), "a second projection changes nothing");
        assert_eq!(c.lines().map(str::to_owned).collect::<Vec<_>>(), once);
        assert!(once.iter().any(|l| l == "anon anonymous r-xp\tpresent"), "{once:#?}");
        assert!(once.iter().any(|l| l == "anon anonymous rwxp\tpresent"), "{once:#?}");
        // Without kinds in the baseline, nothing to do.
        let plain = records(BASE);
        let mut c = Canon::new();
        canonicalize(with(&[RWX]).as_bytes(), &mut c).unwrap();
        assert!(!project(&plain, &mut c));
    }

    /// A baseline file written when the records counted regions
    /// (`anon anonymous rwxp\t2`) still checks quietly, and a new kind still shows.
    #[test]
    fn baselines_with_counts_still_check() {
        let old = |lines: &[(&str, &str)]| -> Vec<crate::canon::Record> {
            let mut r: Vec<crate::canon::Record> = records(BASE);
            for (k, v) in lines {
                r.push(crate::canon::Record { key: (*k).to_owned(), value: (*v).to_owned() });
            }
            r.sort_by(|a, b| format!("{}\t{}", a.key, a.value).cmp(&format!("{}\t{}", b.key, b.value)));
            r
        };
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], bool);
        let cases: &[Case<'_>] = &[
            (
                "two rwx regions, now three",
                &[("anon anonymous rwxp", "2")],
                &[RWX, RWX2, RX2.replace("r-xp", "rwxp").leak()],
                false,
            ),
            ("two rwx regions, now one", &[("anon anonymous rwxp", "2")], &[RWX], false),
            ("rwx regions, r-x appears", &[("anon anonymous rwxp", "2")], &[RWX, RX], true),
            ("r-x counted, gone for a moment", &[("anon anonymous r-xp", "1")], &[], false),
        ];
        for (name, base, now, drift) in cases {
            let base = old(base);
            let got = checked(&base, &with(now)) != baseline_digest(&base);
            assert_eq!(got, *drift, "{name}");
        }
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
