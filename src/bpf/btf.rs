//! The one thing fdir needs from the kernel's BTF (`/sys/kernel/btf/vmlinux`):
//! the type id of a function (`BTF_KIND_FUNC`) by name, which an fexit
//! program names at load (`attach_btf_id`), and the offset of a member of
//! a kernel struct (what CO-RE relocations do, for one field). A pure parser
//! (include/uapi/linux/btf.h) over bytes read a window at a time ([`Bytes`]:
//! the file, 5 MiB and more, is never held whole), or in place where the
//! kernel lets its pages be mapped ([`Vmlinux`]); malformed input is
//! `None`, never a panic.

/// `BTF_KIND_FUNC`.
const KIND_FUNC: u32 = 12;
/// `BTF_KIND_STRUCT`.
const KIND_STRUCT: u32 = 4;
/// `BTF_KIND_UNION`.
const KIND_UNION: u32 = 5;
/// `BTF_KIND_ENUM` (32-bit values).
const KIND_ENUM: u32 = 6;
const MAGIC: u16 = 0xeb9f;

use std::ops::ControlFlow;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([*s.first()?, *s.get(1)?, *s.get(2)?, *s.get(3)?]))
}

/// Where BTF's bytes come from: a blob in memory or the kernel's pages
/// mapped ([`Vmlinux`]), read in place, or the file itself, read a window at
/// a time (the kernel's BTF is 5 MiB or more; a watch that read it whole
/// peaked that much higher, for the few ids it wants).
pub trait Bytes {
    /// Reads up to `buf.len()` bytes at `at`; how many (0 at the end).
    fn read_at(&self, at: u64, buf: &mut [u8]) -> Option<usize>;

    /// All the bytes at once, where they are in memory already: the parser
    /// then reads them in place, with no window copied.
    fn whole(&self) -> Option<&[u8]> {
        None
    }
}

impl Bytes for [u8] {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> Option<usize> {
        let rest = self.get(usize::try_from(at).ok()?..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf.get_mut(..n)?.copy_from_slice(rest.get(..n)?);
        Some(n)
    }

    fn whole(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// The kernel's BTF file (`/sys/kernel/btf/vmlinux`, opened by the caller):
/// mapped where the kernel allows it (Linux 6.16 and later; the mapping is
/// of the kernel's own pages, so it costs no memory of this process, and
/// the parse reads it in place), read a window at a time otherwise (sysfs
/// hands out 4 KiB a `pread`: 1,300 of them a pass).
#[derive(Debug)]
pub struct Vmlinux {
    file: std::fs::File,
    mapped: Option<super::sys::Mapped>,
}

impl Vmlinux {
    /// `file`, mapped if the kernel maps it (why not is said at debug level).
    pub fn new(file: std::fs::File) -> Vmlinux {
        let len = file.metadata().ok().and_then(|m| usize::try_from(m.len()).ok()).unwrap_or(0);
        let mapped = match super::sys::Mapped::of(&file, len) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::debug!("the kernel's BTF is read a window at a time: it cannot be mapped ({e})");
                None
            }
        };
        Vmlinux { file, mapped }
    }

    /// Whether the bytes are read in place.
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }
}

impl Bytes for Vmlinux {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> Option<usize> {
        match &self.mapped {
            Some(m) => m.bytes().read_at(at, buf),
            None => self.file.read_at(at, buf),
        }
    }

    fn whole(&self) -> Option<&[u8]> {
        self.mapped.as_ref().map(super::sys::Mapped::bytes)
    }
}

impl Bytes for std::fs::File {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> Option<usize> {
        loop {
            match std::os::unix::fs::FileExt::read_at(self, buf, at) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r.ok(),
            }
        }
    }
}

/// Fills `buf` from `at`; `None` if the bytes end first.
fn read_exact_at<B: Bytes + ?Sized>(b: &B, at: u64, buf: &mut [u8]) -> Option<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let n = b.read_at(at.checked_add(u64::try_from(done).ok()?)?, buf.get_mut(done..)?)?;
        if n == 0 {
            return None;
        }
        done = done.checked_add(n)?;
    }
    Some(())
}

/// The bytes read at a time (a record longer than this is read whole).
pub const WINDOW: usize = 64 * 1024;

/// Where the type and string sections are (offsets from the file's start).
struct Sections {
    types: u64,
    types_len: u64,
    strings: u64,
    strings_len: u64,
}

/// The sections of `b`, or `None` when it is not BTF this parser reads.
fn sections<B: Bytes + ?Sized>(b: &B) -> Option<Sections> {
    let mut head = [0u8; 24];
    read_exact_at(b, 0, &mut head)?;
    let magic = u16::from_ne_bytes([*head.first()?, *head.get(1)?]);
    if magic != MAGIC {
        return None;
    }
    let field = |at| u32_at(&head, at).map(u64::from);
    let (hdr_len, type_off, types_len, str_off, strings_len) =
        (field(4)?, field(8)?, field(12)?, field(16)?, field(20)?);
    let types = hdr_len.checked_add(type_off)?;
    let strings = hdr_len.checked_add(str_off)?;
    // Both sections must be there whole (a truncated blob is not BTF).
    let mut last = [0u8; 1];
    for (start, len) in [(types, types_len), (strings, strings_len)] {
        if len > 0 {
            read_exact_at(b, start.checked_add(len)?.checked_sub(1)?, &mut last)?;
        }
    }
    Some(Sections { types, types_len, strings, strings_len })
}

/// The offsets in the string section at which each of `names` is found: a
/// name at an offset is the bytes from it to the next NUL (so an offset may
/// fall inside a longer string, as the format allows). Read a window at a
/// time, each with the bytes before it that a name ending in it may start in.
fn name_offsets<B: Bytes + ?Sized>(b: &B, s: &Sections, names: &[&str], window: usize) -> Option<Vec<Vec<u32>>> {
    let mut found = vec![Vec::new(); names.len()];
    let back = names.iter().map(|n| n.len()).max().unwrap_or(0);
    // The names' last two bytes, as bits of a 64 Kib map: most strings end in
    // no name's two and are passed over with one test (a one-byte name
    // marks its byte after any other).
    let mut ends = vec![0u64; 1024];
    let mut mark = |k: usize| {
        if let Some(w) = ends.get_mut(k / 64) {
            *w |= 1 << (k % 64);
        }
    };
    // The names by their last byte, each with its first byte: the few
    // strings that pass the map are compared with these.
    let mut by_last: Vec<Vec<(usize, u8, &[u8])>> = vec![Vec::new(); 256];
    for (i, n) in names.iter().enumerate() {
        let bytes = n.as_bytes();
        match bytes {
            [.., p, l] => mark(usize::from(*p) << 8 | usize::from(*l)),
            [l] => (0..256).for_each(|p| mark(p << 8 | usize::from(*l))),
            [] => {}
        }
        if let (Some(&first), Some(&end)) = (bytes.first(), bytes.last()) {
            by_last.get_mut(usize::from(end))?.push((i, first, bytes));
        }
    }
    // (BTF read in place never comes here: `NameAt::in_place` reads each
    // name where a type names it.)
    let mut buf = vec![0u8; window.checked_add(back)?];
    let mut pos = 0u64;
    while pos < s.strings_len {
        // This window holds the NULs in [pos, pos + window).
        let from = pos.saturating_sub(u64::try_from(back).ok()?);
        let end = pos.checked_add(u64::try_from(window).ok()?)?.min(s.strings_len);
        let len = usize::try_from(end.checked_sub(from)?).ok()?;
        let chunk = buf.get_mut(..len)?;
        read_exact_at(b, s.strings.checked_add(from)?, chunk)?;
        let chunk: &[u8] = chunk;
        let skip = usize::try_from(pos - from).ok()?;
        for z in memchr::memchr_iter(0, chunk.get(skip..)?).map(|z| z + skip) {
            let Some(&last) = z.checked_sub(1).and_then(|i| chunk.get(i)) else { continue };
            let prev = z.checked_sub(2).and_then(|i| chunk.get(i)).copied().unwrap_or(0);
            let k = usize::from(prev) << 8 | usize::from(last);
            if ends.get(k / 64).is_none_or(|w| w >> (k % 64) & 1 == 0) {
                continue;
            }
            for &(i, first, name) in by_last.get(usize::from(last))? {
                let Some(start) = z.checked_sub(name.len()) else { continue };
                if chunk.get(start) == Some(&first) && chunk.get(start..z) == Some(name) {
                    let off = from.checked_add(u64::try_from(start).ok()?)?;
                    found.get_mut(i)?.push(u32::try_from(off).ok()?);
                }
            }
        }
        pos = end;
    }
    Some(found)
}

/// Which of a sorted list of names a string of the section is: from every
/// offset of each, found by a pass over the strings (BTF read a window at a
/// time), or by reading the string where it is asked about (the section in
/// place: about 1.7 ms of the 2.5 ms a pass over this project's kernel's
/// BTF took went to the pass over its 2.3 MB of strings).
enum NameAt<'a> {
    /// (offset, index of the name there), sorted.
    Offsets(Vec<(u32, usize)>),
    InPlace {
        strings: &'a [u8],
        names: &'a [&'a str],
        /// The first two bytes of each name (a name of one byte: it and
        /// its NUL; `""`: a NUL and any byte), as bits: most strings begin
        /// with no name's two and are passed over with one test.
        starts: Vec<u64>,
        /// (the name's first 8 bytes, its NUL and what follows it as
        /// zeros, index of the name), sorted.
        keys: Vec<(u64, usize)>,
    },
}

impl<'a> NameAt<'a> {
    fn by_offsets(offsets: Vec<Vec<u32>>) -> NameAt<'a> {
        let mut v: Vec<(u32, usize)> =
            offsets.iter().enumerate().flat_map(|(i, o)| o.iter().map(move |&o| (o, i))).collect();
        v.sort_unstable();
        NameAt::Offsets(v)
    }

    /// For `names` (sorted), of the strings of `all` (the whole BTF in place).
    fn in_place(all: &'a [u8], s: &Sections, names: &'a [&'a str]) -> Option<NameAt<'a>> {
        let from = usize::try_from(s.strings).ok()?;
        let strings = all.get(from..from.checked_add(usize::try_from(s.strings_len).ok()?)?)?;
        let mut starts = vec![0u64; 1024];
        let mut mark = |k: usize| {
            if let Some(w) = starts.get_mut(k / 64) {
                *w |= 1 << (k % 64);
            }
        };
        let mut keys = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            match n.as_bytes() {
                [] => (0..256).for_each(|next| mark(next << 8)),
                [only] => mark(usize::from(*only)),
                [a, b, ..] => mark(usize::from(*b) << 8 | usize::from(*a)),
            }
            keys.push((key(n.as_bytes()), i));
        }
        keys.sort_unstable();
        Some(NameAt::InPlace { strings, names, starts, keys })
    }

    /// The index of the name at `name_off`, if it is one of them.
    fn of(&self, name_off: u32) -> Option<usize> {
        match self {
            NameAt::Offsets(v) => {
                let i = v.partition_point(|&(o, _)| o < name_off);
                v.get(i).filter(|&&(o, _)| o == name_off).map(|&(_, n)| n)
            }
            NameAt::InPlace { strings, names, starts, keys } => {
                let rest = strings.get(usize::try_from(name_off).ok()?..)?;
                let two = usize::from(rest.first().copied().unwrap_or(0))
                    | usize::from(rest.get(1).copied().unwrap_or(0)) << 8;
                if starts.get(two / 64).is_none_or(|w| w >> (two % 64) & 1 == 0) {
                    return None;
                }
                let k = key(rest);
                let from = keys.partition_point(|&(x, _)| x < k);
                keys.get(from..)?.iter().take_while(|&&(x, _)| x == k).find_map(|&(_, i)| {
                    let n = names.get(i)?.as_bytes();
                    (rest.get(..n.len()) == Some(n) && rest.get(n.len()) == Some(&0)).then_some(i)
                })
            }
        }
    }
}

/// The first 8 bytes of a string that starts `bytes` (or of a name), from
/// its first NUL on as zeros: equal for a name and a string that is it.
fn key(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (slot, &b) in w.iter_mut().zip(bytes.iter().take_while(|&&b| b != 0)) {
        *slot = b;
    }
    u64::from_le_bytes(w)
}

/// One type of the type section.
struct Type<'a> {
    id: u32,
    kind: u32,
    name_off: u32,
    info: u32,
    /// A struct's size in bytes (`size_or_type`).
    size: u32,
    /// The data after the 12-byte `struct btf_type` (members, params...).
    extra: &'a [u8],
}

/// The bytes `[at, at + len)` of the type section, from `buf` (which holds
/// the section from `buf_at` on) or read into it; `None` past the section.
fn record<'a, B: Bytes + ?Sized>(
    b: &B,
    s: &Sections,
    buf: &'a mut Vec<u8>,
    buf_at: &mut u64,
    at: u64,
    len: usize,
    window: usize,
) -> Option<&'a [u8]> {
    let end = at.checked_add(u64::try_from(len).ok()?)?;
    if end > s.types_len {
        return None;
    }
    let held = buf_at.checked_add(u64::try_from(buf.len()).ok()?)?;
    if at < *buf_at || end > held {
        let want = u64::try_from(len.max(window)).ok()?.min(s.types_len - at);
        buf.resize(usize::try_from(want).ok()?, 0);
        read_exact_at(b, s.types.checked_add(at)?, buf)?;
        *buf_at = at;
    }
    let from = usize::try_from(at - *buf_at).ok()?;
    buf.get(from..from.checked_add(len)?)
}

/// Calls `f` on each type in order, until it breaks; `None` on a malformed
/// section (before `f` broke).
fn each_type<B: Bytes + ?Sized>(
    b: &B,
    s: &Sections,
    window: usize,
    mut f: impl FnMut(&Type<'_>) -> ControlFlow<()>,
) -> Option<()> {
    if let Some(all) = b.whole() {
        // In place: the section as one slice.
        let from = usize::try_from(s.types).ok()?;
        let section = all.get(from..from.checked_add(usize::try_from(s.types_len).ok()?)?)?;
        let (mut at, mut id) = (0usize, 1u32);
        while at < section.len() {
            let head = section.get(at..at.checked_add(12)?)?;
            let (name_off, info) = (u32_at(head, 0)?, u32_at(head, 4)?);
            let len = extra_len(info)?.checked_add(12)?;
            let whole = section.get(at..at.checked_add(len)?)?;
            let size = u32_at(head, 8)?;
            if f(&Type { id, kind: (info >> 24) & 0x1f, name_off, info, size, extra: whole.get(12..)? }).is_break() {
                break;
            }
            at = at.checked_add(len)?;
            id = id.checked_add(1)?;
        }
        return Some(());
    }
    let mut buf = Vec::new();
    let mut buf_at = 0u64;
    let mut at = 0u64;
    let mut id = 1u32;
    while at < s.types_len {
        let head = record(b, s, &mut buf, &mut buf_at, at, 12, window)?;
        let name_off = u32_at(head, 0)?;
        let info = u32_at(head, 4)?;
        let kind = (info >> 24) & 0x1f;
        let extra = extra_len(info)?;
        let whole = record(b, s, &mut buf, &mut buf_at, at, extra.checked_add(12)?, window)?;
        let size = u32_at(whole, 8)?;
        if f(&Type { id, kind, name_off, info, size, extra: whole.get(12..)? }).is_break() {
            break;
        }
        at = at.checked_add(u64::try_from(extra.checked_add(12)?).ok()?)?;
        id = id.checked_add(1)?;
    }
    Some(())
}

/// The bytes of a type's data after its 12-byte `struct btf_type`, by its
/// kind and count (`info`); `None` for a kind this parser does not know.
fn extra_len(info: u32) -> Option<usize> {
    let vlen = usize::try_from(info & 0xffff).ok()?;
    Some(match (info >> 24) & 0x1f {
        1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
        3 => 12,                   // ARRAY
        4 | 5 => vlen * 12,        // STRUCT, UNION: btf_member
        6 | 13 => vlen * 8,        // ENUM: btf_enum; FUNC_PROTO: btf_param
        15 | 19 => vlen * 12,      // DATASEC: btf_var_secinfo; ENUM64
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
        _ => return None,
    })
}

/// The type ids of the functions named in `wanted` (in its order; `None`
/// for one BTF does not have), or `None` when `btf` is not BTF this parser
/// reads.
#[cfg(test)]
pub fn func_ids(btf: &[u8], wanted: &[&str]) -> Option<Vec<Option<u32>>> {
    func_ids_in(btf, wanted, WINDOW)
}

/// [`func_ids`] of BTF read from `b` a window at a time.
#[cfg(test)]
pub fn func_ids_in<B: Bytes + ?Sized>(b: &B, wanted: &[&str], window: usize) -> Option<Vec<Option<u32>>> {
    find_in(b, wanted, &[], window).map(|(ids, _)| ids)
}

/// The byte offset of `member` in the first `struct NAME` (a direct
/// member, not a bitfield), or `None`.
#[cfg(test)]
pub fn member_offset(btf: &[u8], strukt: &str, member: &str) -> Option<u32> {
    member_offset_in(btf, strukt, member, WINDOW)
}

/// [`member_offset`] of BTF read from `b` a window at a time.
#[cfg(test)]
pub fn member_offset_in<B: Bytes + ?Sized>(b: &B, strukt: &str, member: &str, window: usize) -> Option<u32> {
    find_in(b, &[], &[(strukt, member)], window)?.1.first().copied().flatten()
}

/// What [`find_in`] found: the function ids, then the member offsets.
pub type Found = (Vec<Option<u32>>, Vec<Option<u32>>);

/// The type ids of the functions named in `funcs` and the byte offset of
/// each `(struct, member)` of `members` (a member named `""`: the struct's
/// size) (each in its order; `None` for one
/// BTF does not have: the first `struct` of that name decides, and a
/// bitfield has none), with one pass over the types: read in place, each
/// type's name is read where it names it; read a window at a time, a pass
/// over the strings first finds the names' offsets (each pass reads the
/// whole section, megabytes of it); `None` when `b` is not BTF this parser
/// reads.
pub fn find_in<B: Bytes + ?Sized>(b: &B, funcs: &[&str], members: &[(&str, &str)], window: usize) -> Option<Found> {
    find_all(b, funcs, members, &[], window).map(|all| (all.funcs, all.members))
}

/// What [`find_all`] found, each list in the order asked; `None` for what
/// BTF does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct All {
    /// The type id of each function.
    pub funcs: Vec<Option<u32>>,
    /// The byte offset of each member (a struct's size for `""`).
    pub members: Vec<Option<u32>>,
    /// The type id of each member's struct (the first of its name: what
    /// `bpf_rdonly_cast` names).
    pub structs: Vec<Option<u32>>,
    /// The value of each enumerator.
    pub enums: Vec<Option<i64>>,
}

/// [`find_in`], the type id of each member's struct, and the value of each
/// enumerator named in `enums` (a constant of a C `enum`:
/// `memory_cgrp_id`; the first of that name decides), in the same two
/// passes. The pass over the types ends once everything is found.
pub fn find_all<B: Bytes + ?Sized>(
    b: &B,
    funcs: &[&str],
    members: &[(&str, &str)],
    enums: &[&str],
    window: usize,
) -> Option<All> {
    let s = sections(b)?;
    let mut names: Vec<&str> = members
        .iter()
        .flat_map(|(st, m)| [*st, *m])
        .chain(funcs.iter().copied())
        .chain(enums.iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    let at = match b.whole() {
        Some(all) => NameAt::in_place(all, &s, &names)?,
        None => NameAt::by_offsets(name_offsets(b, &s, &names, window)?),
    };
    let index = |name: &str| names.binary_search(&name).ok();
    let member_names: Vec<usize> = members.iter().map(|(_, m)| index(m)).collect::<Option<_>>()?;
    // The indices asked for under each name (of a struct, a function, an
    // enumerator): a type of another name (nearly all 100,000 and more) is
    // passed over with one lookup of its name.
    let by_name = |asked: &mut dyn Iterator<Item = &str>| -> Option<Vec<Vec<usize>>> {
        let mut v = vec![Vec::new(); names.len()];
        for (i, name) in asked.enumerate() {
            v.get_mut(index(name)?)?.push(i);
        }
        Some(v)
    };
    let structs = by_name(&mut members.iter().map(|(st, _)| *st))?;
    let functions = by_name(&mut funcs.iter().copied())?;
    let enumerators = by_name(&mut enums.iter().copied())?;
    let mut values: Vec<Option<i64>> = vec![None; enums.len()];
    fn named<'v>(at: &NameAt<'_>, v: &'v [Vec<usize>], name_off: u32) -> &'v [usize] {
        at.of(name_off).and_then(|n| v.get(n)).map_or(&[], Vec::as_slice)
    }
    let mut ids: Vec<Option<u32>> = vec![None; funcs.len()];
    // Decided by the first struct of each name.
    let mut decided = vec![false; members.len()];
    let mut out: Vec<Option<u32>> = vec![None; members.len()];
    let mut struct_ids: Vec<Option<u32>> = vec![None; members.len()];
    // What is still to find: the pass ends once it is 0 (the types asked
    // for come in the first half of a kernel's BTF or so).
    let mut left = funcs.len() + members.len() + enums.len();
    // (index asked, type id, offset): anonymous members to look inside.
    let mut inside: Vec<(usize, u32, u32)> = Vec::new();
    each_type(b, &s, window, |t| {
        if t.kind == KIND_ENUM && !enums.is_empty() {
            for e in t.extra.chunks_exact(8) {
                let (Some(n), Some(v)) = (u32_at(e, 0), u32_at(e, 4)) else { continue };
                for &i in named(&at, &enumerators, n) {
                    if let Some(slot @ None) = values.get_mut(i) {
                        // Signed where the enum says so (kflag), else unsigned.
                        *slot = Some(if t.info >> 31 == 1 { i64::from(v.cast_signed()) } else { i64::from(v) });
                        left = left.saturating_sub(1);
                    }
                }
            }
            return if left == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) };
        }
        if t.kind == KIND_FUNC {
            for &i in named(&at, &functions, t.name_off) {
                if let Some(slot @ None) = ids.get_mut(i) {
                    *slot = Some(t.id);
                    left = left.saturating_sub(1);
                }
            }
            return if left == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) };
        }
        if t.kind != KIND_STRUCT {
            return ControlFlow::Continue(());
        }
        for &i in named(&at, &structs, t.name_off) {
            let (Some(done), Some(slot), Some(&wanted)) = (decided.get_mut(i), out.get_mut(i), member_names.get(i))
            else {
                continue;
            };
            if *done {
                continue;
            }
            *done = true;
            left = left.saturating_sub(1);
            if let Some(id) = struct_ids.get_mut(i) {
                *id = Some(t.id);
            }
            // No member name: the struct's own size.
            if members.get(i).is_some_and(|(_, m)| m.is_empty()) {
                *slot = Some(t.size);
                continue;
            }
            member_in(&at, t, wanted, 0, slot, &mut inside, i);
        }
        if left == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })?;
    // Members of anonymous structs and unions (`vm_area_struct.vm_start`,
    // `mm_struct.brk`): a pass for each level of nesting, at most
    // `NESTING`.
    for _ in 0..NESTING {
        if inside.is_empty() {
            break;
        }
        let looking = std::mem::take(&mut inside);
        // The pass ends once every type looked inside was seen (types are
        // visited in id order).
        let last = looking.iter().map(|(_, id, _)| *id).max().unwrap_or(0);
        each_type(b, &s, window, |t| {
            if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
                return if t.id >= last { ControlFlow::Break(()) } else { ControlFlow::Continue(()) };
            }
            for &(i, _, base) in looking.iter().filter(|(_, id, _)| *id == t.id) {
                let (Some(slot), Some(&wanted)) = (out.get_mut(i), member_names.get(i)) else { continue };
                if slot.is_none() {
                    member_in(&at, t, wanted, base, slot, &mut inside, i);
                }
            }
            if t.id >= last { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })?;
    }
    Some(All { funcs: ids, members: out, structs: struct_ids, enums: values })
}

/// How deep anonymous structs and unions are looked into.
const NESTING: usize = 3;

/// Looks for the member named `wanted` among those of `t` (a struct or a
/// union at byte `base` of the struct asked about): `true` with its offset
/// in `slot` (none for a bitfield), else `false` with each anonymous member
/// of `t` (its type id and offset) pushed to `inside`, under index `i`.
fn member_in(
    at: &NameAt<'_>,
    t: &Type<'_>,
    wanted: usize,
    base: u32,
    slot: &mut Option<u32>,
    inside: &mut Vec<(usize, u32, u32)>,
    i: usize,
) -> bool {
    let bitfields = t.info >> 31 == 1;
    let mut anonymous = Vec::new();
    for m in t.extra.chunks_exact(12) {
        let (Some(n), Some(ty), Some(off)) = (u32_at(m, 0), u32_at(m, 4), u32_at(m, 8)) else { continue };
        let (bits, size) = if bitfields { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
        if at.of(n) == Some(wanted) {
            if size == 0 && bits % 8 == 0 {
                *slot = base.checked_add(bits / 8);
            }
            return true;
        }
        if n == 0 && size == 0 && bits % 8 == 0 {
            anonymous.push((i, ty, base.saturating_add(bits / 8)));
        }
    }
    inside.extend(anonymous);
    false
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the kernel's BTF
mod tests {
    use super::*;

    /// A BTF blob: header, then the given types and strings.
    fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]); // version, flags
        let len = |s: &[u8]| u32::try_from(s.len()).unwrap_or(u32::MAX);
        for v in [24u32, 0, len(types), len(types), len(strings)] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(types);
        b.extend_from_slice(strings);
        b
    }

    /// Bytes only read a window at a time (as the file is), never in place.
    struct Windowed<'a>(&'a [u8]);

    impl Bytes for Windowed<'_> {
        fn read_at(&self, at: u64, buf: &mut [u8]) -> Option<usize> {
            self.0.read_at(at, buf)
        }
    }

    #[test]
    fn a_name_is_found_where_its_last_two_bytes_or_one_byte_end_a_string() {
        let strings = b"\0a\0xa\0ba\0b\0ab\0";
        let types = ty(1, 12, 0, 0); // func "a"
        let b = blob(&types, strings);
        for window in [1, 2, 3, 64] {
            let s = sections(&Windowed(&b)).unwrap();
            let want = Some(vec![vec![1, 4, 7], vec![9, 12], vec![11]]);
            assert_eq!(name_offsets(&Windowed(&b), &s, &["a", "b", "ab"], window), want, "window {window}");
            assert_eq!(name_offsets(&b[..], &s, &["a", "b", "ab"], window), want, "from a slice");
        }
    }

    fn ty(name_off: u32, kind: u32, vlen: u32, size: u32) -> Vec<u8> {
        let mut t = Vec::new();
        for v in [name_off, kind << 24 | vlen, size] {
            t.extend_from_slice(&v.to_ne_bytes());
        }
        t
    }

    #[test]
    fn finds_functions_past_other_kinds() {
        let strings = b"\0int\0mem_write\0s\0";
        let mut types = ty(1, 1, 0, 4); // 1: int
        types.extend_from_slice(&[0; 4]);
        types.extend(ty(15, 4, 1, 8)); // 2: struct s { one member }
        types.extend_from_slice(&1u32.to_ne_bytes()); // member "int"
        types.extend_from_slice(&1u32.to_ne_bytes());
        types.extend_from_slice(&0u32.to_ne_bytes());
        types.extend(ty(0, 13, 1, 1)); // 3: func_proto (one param)
        types.extend_from_slice(&[0; 8]);
        types.extend(ty(5, 12, 0, 3)); // 4: func mem_write
        let b = blob(&types, strings);
        assert_eq!(func_ids(&b, &["mem_write", "absent"]), Some(vec![Some(4), None]));
        assert_eq!(member_offset(&b, "s", "int"), Some(0));
        assert_eq!(member_offset(&b, "s", "absent"), None);
        assert_eq!(member_offset(&b, "s", ""), Some(8), "no member name: the struct's size");
    }

    #[test]
    fn finds_enumerators_signed_and_unsigned() {
        let strings = b"\0e\0ONE\0MINUS\0s\0BIG\0";
        let mut types = ty(1, 6 | 0x80, 2, 4); // 1: enum e (signed) { ONE = 1, MINUS = -2 }
        for (name, v) in [(3u32, 1i32), (7, -2)] {
            types.extend_from_slice(&name.to_ne_bytes());
            types.extend_from_slice(&v.to_ne_bytes());
        }
        types.extend(ty(13, 6, 1, 4)); // 2: enum s (unsigned) { BIG = 0xffff_fffe }
        types.extend_from_slice(&15u32.to_ne_bytes());
        types.extend_from_slice(&0xffff_fffeu32.to_ne_bytes());
        let b = blob(&types, strings);
        for window in [1, 3, 64] {
            let found = find_all(&Windowed(&b), &[], &[], &["MINUS", "ONE", "BIG", "NONE"], window);
            assert_eq!(
                found.map(|all| all.enums),
                Some(vec![Some(-2), Some(1), Some(0xffff_fffe), None]),
                "window {window}"
            );
        }
    }

    /// The first struct of a name decides its offsets and id, and the pass
    /// ends once everything asked is found: a type past that point is
    /// never read (here, one of a kind no parser knows, which would make
    /// the blob unreadable if it were).
    #[test]
    fn the_pass_ends_once_everything_is_found() {
        let strings = b"\0s\0m\0f\0";
        let member = |off_bits: u32| {
            let mut m = Vec::new();
            for v in [3u32, 0, off_bits] {
                m.extend_from_slice(&v.to_ne_bytes());
            }
            m
        };
        let mut types = ty(1, 4, 1, 8); // 1: struct s { m at byte 4 }
        types.extend(member(32));
        types.extend(ty(5, 12, 0, 0)); // 2: func f
        types.extend(ty(1, 4, 1, 8)); // 3: another struct s { m at byte 0 }
        types.extend(member(0));
        types.extend(ty(0, 31, 0, 0)); // 4: not a kind BTF has
        let b = blob(&types, strings);
        for window in [1, 5, 64] {
            let all = find_all(&Windowed(&b), &["f"], &[("s", "m")], &[], window).unwrap();
            assert_eq!((all.funcs, all.members, all.structs), (vec![Some(2)], vec![Some(4)], vec![Some(1)]));
            assert_eq!(find_all(&Windowed(&b), &["g"], &[("s", "m")], &[], window), None, "read to the end");
        }
    }

    #[test]
    fn refuses_what_is_not_btf() {
        assert_eq!(func_ids(b"", &["x"]), None);
        assert_eq!(func_ids(&[0u8; 64], &["x"]), None);
        let mut b = blob(&ty(0, 31, 0, 0), b"\0");
        assert_eq!(func_ids(&b, &["x"]), None);
        b.truncate(30);
        assert_eq!(func_ids(&b, &["x"]), None);
    }

    #[test]
    fn any_window_gives_the_whole_blobs_answers() {
        let strings = b"\0int\0mem_write\0s\0xs\0";
        let mut types = ty(1, 1, 0, 4); // 1: int
        types.extend_from_slice(&[0; 4]);
        types.extend(ty(15, 4, 2, 8)); // 2: struct s { int; s (a suffix of "xs") }
        for (name, off) in [(1u32, 0u32), (18, 32)] {
            types.extend_from_slice(&name.to_ne_bytes());
            types.extend_from_slice(&1u32.to_ne_bytes());
            types.extend_from_slice(&off.to_ne_bytes());
        }
        types.extend(ty(5, 12, 0, 3)); // 3: func mem_write
        types.extend(ty(18, 12, 0, 3)); // 4: func "s", named inside "xs"
        let b = blob(&types, strings);
        for window in 1..=64 {
            fn answers<B: Bytes + ?Sized>(bytes: &B, window: usize) {
                assert_eq!(func_ids_in(bytes, &["s", "mem_write", "int"], window), Some(vec![Some(4), Some(3), None]));
                assert_eq!(member_offset_in(bytes, "s", "s", window), Some(4), "window {window}");
                assert_eq!(member_offset_in(bytes, "xs", "s", window), None);
            }
            answers(&Windowed(&b), window);
            answers(&b[..], window);
            assert_eq!(func_ids_in(&Windowed(&b[..b.len() - 1]), &["s"], window), None, "truncated");
            assert_eq!(func_ids_in(&b[..b.len() - 1], &["s"], window), None, "truncated");
        }
    }

    /// Names read where a type names them (in place) answer as names found
    /// by a pass over the strings (a window at a time): names that share
    /// their first 8 bytes or are shorter than 8, a name inside a longer
    /// string, one that is a prefix of another, the empty name.
    #[test]
    fn names_read_in_place_answer_as_names_found_by_a_pass_over_the_strings() {
        let strings = b"\0bpf_task_from_pid\0bpf_task_release\0bpf_task\0pid\0pidfd\0xpid\0mount\0";
        let off = |name: &[u8]| {
            let at = strings
                .windows(name.len() + 2)
                .position(|w| w[0] == 0 && &w[1..=name.len()] == name && w[name.len() + 1] == 0);
            u32::try_from(at.unwrap() + 1).unwrap()
        };
        let mut types = Vec::new();
        for f in [&b"bpf_task_release"[..], b"bpf_task_from_pid", b"bpf_task", b"pidfd"] {
            types.extend(ty(off(f), 12, 0, 0));
        }
        types.extend(ty(off(b"xpid") + 1, 12, 0, 0)); // func "pid", inside "xpid"
        types.extend(ty(off(b"mount"), 4, 3, 16)); // struct mount { pid; ""; pidfd }
        for (name, bits) in [(off(b"pid"), 0u32), (0, 32), (off(b"pidfd"), 64)] {
            for v in [name, 1, bits] {
                types.extend_from_slice(&v.to_ne_bytes());
            }
        }
        let b = blob(&types, strings);
        let funcs = ["bpf_task", "bpf_task_from_pid", "bpf_task_release", "pid", "pidf", "bpf_task_from_pi", "pidfd"];
        let members = [("mount", "pidfd"), ("mount", "pid"), ("mount", ""), ("mount", "pi"), ("moun", "pid")];
        let in_place = find_all(&b[..], &funcs, &members, &["mount"], WINDOW);
        assert_eq!(
            in_place.as_ref().map(|a| (&a.funcs, &a.members)),
            Some((
                &vec![Some(3), Some(2), Some(1), Some(5), None, None, Some(4)],
                &vec![Some(8), Some(0), Some(16), None, None]
            )),
        );
        for window in [1, 7, 64] {
            assert_eq!(in_place, find_all(&Windowed(&b), &funcs, &members, &["mount"], window), "window {window}");
        }
    }

    #[test]
    fn reads_this_kernel_through_a_window_as_whole() {
        let (Ok(whole), Ok(file)) =
            (std::fs::read("/sys/kernel/btf/vmlinux"), std::fs::File::open("/sys/kernel/btf/vmlinux"))
        else {
            return;
        };
        let names = ["schedule", "do_exit", "absent_function_x"];
        assert_eq!(func_ids_in(&file, &names, WINDOW), func_ids(&whole, &names));
        assert_eq!(
            member_offset_in(&file, "task_struct", "tgid", WINDOW),
            member_offset(&whole, "task_struct", "tgid")
        );
    }

    #[test]
    fn the_mapped_kernel_btf_answers_as_the_file_read_a_window_at_a_time() {
        let (Ok(a), Ok(file)) =
            (std::fs::File::open("/sys/kernel/btf/vmlinux"), std::fs::File::open("/sys/kernel/btf/vmlinux"))
        else {
            eprintln!(
                "SKIP the_mapped_kernel_btf_answers_as_the_file_read_a_window_at_a_time: no /sys/kernel/btf/vmlinux"
            );
            return;
        };
        let mapped = Vmlinux::new(a);
        if !mapped.is_mapped() {
            eprintln!("NOTE: this kernel does not map its BTF (before Linux 6.16): both reads are windowed");
        }
        let funcs = ["schedule", "bpf_task_from_pid", "bpf_task_release", "bpf_rdonly_cast", "mem_write", "absent_x"];
        let members = [
            ("task_struct", "tgid"),
            ("task_struct", "nsproxy"),
            ("task_struct", "comm"),
            ("mount", "mnt_id"),
            ("mnt_namespace", "ns"),
            ("ns_common", "inum"),
            ("signal_struct", "rlim"),
            ("mem_cgroup", ""),
            ("nsproxy", "absent_x"),
        ];
        let in_place = find_in(&mapped, &funcs, &members, WINDOW);
        assert!(in_place.as_ref().is_some_and(|(ids, offs)| ids[0].is_some() && offs[0].is_some()), "{in_place:?}");
        assert_eq!(in_place, find_in(&file, &funcs, &members, WINDOW));
        assert_eq!(in_place, find_in(&file, &funcs, &members, 4096 + 7), "another window");
        let enums = ["CGROUP_SUBSYS_COUNT", "absent_enumerator_x", "memory_cgrp_id", "pids_cgrp_id"];
        let in_place = find_all(&mapped, &[], &[], &enums, WINDOW);
        assert_eq!(in_place, find_all(&file, &[], &[], &enums, 4096 + 7), "enumerators, another window");
        assert!(in_place.is_some_and(|all| all.enums[1].is_none()));
    }

    #[test]
    fn members_of_anonymous_structs_and_unions_are_found_at_their_depth() {
        // struct s { int a; union { int b; struct { int c; int d; }; }; int e; }
        let strings = b"\0int\0s\0a\0b\0c\0d\0e\0";
        let member = |name: u32, ty: u32, bits: u32| -> Vec<u8> {
            [name, ty, bits].iter().flat_map(|v| v.to_ne_bytes()).collect()
        };
        let mut types = ty(1, 1, 0, 4); // 1: int
        types.extend_from_slice(&[0; 4]);
        types.extend(ty(5, 4, 3, 16)); // 2: struct s
        types.extend(member(7, 1, 0)); // a
        types.extend(member(0, 3, 32)); // the union, at byte 4
        types.extend(member(15, 1, 96)); // e
        types.extend(ty(0, 5, 2, 8)); // 3: union
        types.extend(member(9, 1, 0)); // b
        types.extend(member(0, 4, 0)); // the struct
        types.extend(ty(0, 4, 2, 8)); // 4: struct
        types.extend(member(11, 1, 0)); // c
        types.extend(member(13, 1, 32)); // d
        let b = blob(&types, strings);
        let found = find_in(&b[..], &[], &[("s", "a"), ("s", "b"), ("s", "c"), ("s", "d"), ("s", "e"), ("s", "x")], 64);
        assert_eq!(found.map(|(_, m)| m), Some(vec![Some(0), Some(4), Some(4), Some(8), Some(12), None]));
    }

    #[test]
    fn reads_this_kernel_if_it_has_btf() {
        if let Ok(b) = std::fs::read("/sys/kernel/btf/vmlinux") {
            let ids = func_ids(&b, &["schedule"]);
            assert!(matches!(ids.as_deref(), Some([Some(_)])), "{ids:?}");
            let tgid = member_offset(&b, "task_struct", "tgid");
            let pid = member_offset(&b, "task_struct", "pid");
            assert!(tgid.is_some() && pid.map(|p| p + 4) == tgid, "{pid:?} {tgid:?}");
            // Members inside anonymous structs and unions (Linux 6.x).
            let members = [
                ("vm_area_struct", "vm_start"),
                ("vm_area_struct", "vm_end"),
                ("mm_struct", "start_brk"),
                ("mm_struct", "brk"),
            ];
            let found = find_in(&b[..], &[], &members, WINDOW).map(|(_, m)| m).unwrap_or_default();
            assert!(found.iter().all(Option::is_some), "{found:?}");
            assert_eq!(found[0].map(|o| o + 8), found[1], "vm_end follows vm_start: {found:?}");
            assert_eq!(found[2].map(|o| o + 8), found[3], "brk follows start_brk: {found:?}");
        }
    }
}
