//! Canonical forms: what of each subsystem is hashed and compared.
//!
//! A canonicalizer is a pure function from the bytes the kernel wrote to a set
//! of records. Each record is one line `key\tvalue` of escaped text (no tab or
//! newline inside a key or a value, no control character, no invalid UTF-8),
//! kept sorted and free of duplicates, so the digest depends only on the set of
//! records and never on the order the kernel printed them in or on volatile
//! fields. This module does no I/O.

pub mod cgroup;
pub mod cgroup_limits;
pub mod code;
pub mod filters;
pub mod kernel;
pub mod limits;
pub mod lsm;
pub mod maps;
pub mod mounts;
pub mod namespaces;
pub mod status;

use std::fmt::{self, Write as _};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::Subsystem;
use crate::digest::{Digest, Hasher};

/// Text that is not what the kernel writes: where and what, for the
/// canonicalizers of line-oriented files (`maps`, `cgroup`, `limits`,
/// `mountinfo`, `/proc/modules`). The caller adds the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number (0 for the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One canonical record of a subsystem: a key and a value.
///
/// What the key and the value hold depends on the subsystem: for memory maps
/// the key names a mapping and the value its permissions and file identity;
/// for cgroups the key is the hierarchy and the value the cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Record {
    /// What the record is about.
    pub key: String,
    /// Its state.
    pub value: String,
}

/// The records of one observed subsystem, held once however many snapshots
/// (and copies of a snapshot) hold them: a cheap clone shares them, a change
/// ([`std::ops::DerefMut`]) copies them first. It reads as a `Vec<Record>`
/// and serializes as one.
///
/// Many processes of a node share one record set (a cgroup's limits, a mount
/// table, the memory maps of the same program): a monitor keeps each
/// distinct set once ([`crate::Monitor`]), where every process used to hold
/// its own copies.
#[derive(Clone, Default)]
pub struct Records(std::sync::Arc<Vec<Record>>);

impl Records {
    /// Whether `self` and `other` are the same set in memory (not only equal).
    pub fn shares(&self, other: &Records) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// Which set in memory this is (its address): equal for every holder of
    /// one set, different for a copy.
    pub(crate) fn id(&self) -> u64 {
        std::sync::Arc::as_ptr(&self.0) as usize as u64
    }

    /// How many holders share this set in memory.
    pub(crate) fn holders(&self) -> usize {
        std::sync::Arc::strong_count(&self.0)
    }
}

impl std::ops::Deref for Records {
    type Target = Vec<Record>;
    fn deref(&self) -> &Vec<Record> {
        &self.0
    }
}

impl std::ops::DerefMut for Records {
    /// The records, copied first if they are shared.
    fn deref_mut(&mut self) -> &mut Vec<Record> {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl From<Vec<Record>> for Records {
    fn from(records: Vec<Record>) -> Records {
        Records(std::sync::Arc::new(records))
    }
}

impl FromIterator<Record> for Records {
    fn from_iter<I: IntoIterator<Item = Record>>(iter: I) -> Records {
        Records::from(iter.into_iter().collect::<Vec<Record>>())
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Records) -> bool {
        self.shares(other) || *self.0 == *other.0
    }
}

impl Eq for Records {}

impl PartialEq<Vec<Record>> for Records {
    fn eq(&self, other: &Vec<Record>) -> bool {
        *self.0 == *other
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Records {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Record>::deserialize(deserializer).map(Records::from)
    }
}

/// The canonical form of one subsystem, as it is built: an append buffer of
/// lines, sorted and deduplicated by [`Canon::finish`].
///
/// The buffers are reused from one check to the next, so a steady-state check
/// does not allocate.
#[derive(Debug, Default, Clone)]
pub struct Canon {
    text: String,
    lines: Vec<Range<usize>>,
    finished: bool,
    /// The digest of the finished form, once computed (any change drops it).
    digest: Option<(Subsystem, Digest)>,
}

/// Writes one record into a [`Canon`]; created by [`Canon::record`].
pub struct RecordWriter<'a> {
    canon: &'a mut Canon,
    start: usize,
    in_value: bool,
}

impl Canon {
    /// An empty canonical form.
    pub fn new() -> Canon {
        Canon::default()
    }

    /// A form known by its digest alone: the baseline's, when a check reads
    /// the very text the baseline's form was made from (see
    /// [`crate::Snapshot::sources`]). It equals the baseline, so its records
    /// are never asked for; writing a record into it starts a form anew.
    pub(crate) fn known(subsystem: Subsystem, digest: Digest) -> Canon {
        Canon { finished: true, digest: Some((subsystem, digest)), ..Canon::default() }
    }

    /// The digest of this form for `subsystem` if it is already known (a
    /// finished form hashed before, or one made by [`Canon::known`]).
    pub(crate) fn known_digest(&self, subsystem: Subsystem) -> Option<Digest> {
        match self.digest {
            Some((s, d)) if self.finished && s == subsystem => Some(d),
            _ => None,
        }
    }

    /// Empties the form, keeping its buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
        self.finished = false;
        self.digest = None;
    }

    /// Makes this form a copy of `other`, reusing its buffers (no allocation
    /// once they are large enough).
    pub fn copy_from(&mut self, other: &Canon) {
        self.text.clear();
        self.text.push_str(&other.text);
        self.lines.clear();
        self.lines.extend_from_slice(&other.lines);
        self.finished = other.finished;
        self.digest = other.digest;
    }

    /// Starts a record; write the key, call [`RecordWriter::value`], write the
    /// value. The record is added when the writer is dropped.
    pub fn record(&mut self) -> RecordWriter<'_> {
        self.finished = false;
        self.digest = None;
        let start = self.text.len();
        RecordWriter { canon: self, start, in_value: false }
    }

    /// Adds a record with an already-clean key and value (escaped on the way in).
    pub fn push(&mut self, key: &str, value: &str) {
        let mut w = self.record();
        w.str(key);
        w.value();
        w.str(value);
    }

    /// Whether the last record added differs from the one before it (or is
    /// the first): while the form is built, before [`Canon::finish`].
    pub fn last_is_new(&self) -> bool {
        let n = self.lines.len();
        match (n.checked_sub(1).and_then(|i| self.lines.get(i)), n.checked_sub(2).and_then(|i| self.lines.get(i))) {
            (Some(last), Some(prev)) => self.text.get(last.clone()) != self.text.get(prev.clone()),
            _ => true,
        }
    }

    /// Removes the last record added, before [`Canon::finish`].
    pub fn pop(&mut self) {
        self.digest = None;
        if let Some(last) = self.lines.pop() {
            self.text.truncate(last.start);
        }
    }

    /// Sorts the records and removes duplicates.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        let text = &self.text;
        let line = |r: &Range<usize>| text.get(r.clone()).unwrap_or("");
        self.lines.sort_unstable_by(|a, b| line(a).cmp(line(b)));
        self.lines.dedup_by(|a, b| line(a) == line(b));
        self.finished = true;
        self.digest = None;
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The records added since the form had `mark` records ([`Canon::len`]),
    /// as `key\tvalue` lines in the order they were added; before
    /// [`Canon::finish`].
    pub(crate) fn lines_since(&self, mark: usize) -> impl Iterator<Item = &str> + '_ {
        self.lines.get(mark..).unwrap_or(&[]).iter().map(|r| self.text.get(r.clone()).unwrap_or(""))
    }

    /// Adds a `key\tvalue` line taken from a form of the same subsystem
    /// ([`Canon::lines_since`]): already in canonical form.
    pub(crate) fn push_line(&mut self, line: &str) {
        self.finished = false;
        self.digest = None;
        let start = self.text.len();
        self.text.push_str(line);
        self.lines.push(start..self.text.len());
    }

    /// The records as `key\tvalue` lines, in canonical order once finished.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.lines.iter().map(|r| self.text.get(r.clone()).unwrap_or(""))
    }

    /// The digest of the finished form for `subsystem`.
    pub fn digest(&mut self, subsystem: Subsystem) -> Digest {
        if !self.finished {
            self.finish();
        }
        if let Some((s, d)) = self.digest
            && s == subsystem
        {
            return d;
        }
        let d = digest_lines(subsystem, self.lines());
        self.digest = Some((subsystem, d));
        d
    }

    /// Flips one bit of one ASCII byte of the form, chosen by `seed`: fault
    /// injection for `fdir selftest`. Returns whether a bit was flipped.
    pub(crate) fn corrupt(&mut self, seed: u64) -> bool {
        self.digest = None;
        let len = self.text.len();
        if len == 0 {
            return false;
        }
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        let start = usize::try_from(seed % u64::try_from(len).unwrap_or(1)).unwrap_or(0);
        // The first ASCII byte at or after `start` (wrapping); its low seven
        // bits only, so the text stays UTF-8.
        let at = (0..len).map(|i| (start + i) % len).find(|&i| bytes.get(i).is_some_and(u8::is_ascii));
        let bit = u8::try_from((seed >> 32) % 7).unwrap_or(0);
        let flipped = match at.and_then(|i| bytes.get_mut(i)) {
            Some(b) => {
                *b ^= 1 << bit;
                true
            }
            None => false,
        };
        match String::from_utf8(bytes) {
            Ok(t) => self.text = t,
            Err(e) => {
                // Cannot happen (ASCII stays ASCII); undo rather than lose the form.
                let mut b = e.into_bytes();
                if let Some(i) = at
                    && let Some(x) = b.get_mut(i)
                {
                    *x ^= 1 << bit;
                }
                self.text = String::from_utf8(b).unwrap_or_default();
                return false;
            }
        }
        flipped
    }

    /// The finished form as owned records.
    pub fn records(&mut self) -> Vec<Record> {
        if !self.finished {
            self.finish();
        }
        self.lines().map(split_line).collect()
    }

    /// Adds a record whose key and value are already in canonical form (taken
    /// from a verified [`Record`]): appended as they are, not escaped again.
    pub(crate) fn push_clean(&mut self, key: &str, value: &str) {
        self.finished = false;
        let start = self.text.len();
        self.text.push_str(key);
        self.text.push('\t');
        self.text.push_str(value);
        self.lines.push(start..self.text.len());
    }
}

fn split_line(line: &str) -> Record {
    let (key, value) = line.split_once('\t').unwrap_or((line, ""));
    Record { key: key.to_owned(), value: value.to_owned() }
}

/// Domain separation: a digest of one subsystem can never equal that of another,
/// nor that of a later canonical format.
const DOMAIN: &[u8] = b"fdir canonical form v1\n";

fn digest_lines<'a>(subsystem: Subsystem, lines: impl Iterator<Item = &'a str>) -> Digest {
    let mut h = Hasher::new();
    h.update(DOMAIN);
    h.update(subsystem.name().as_bytes());
    h.update(b"\n");
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.finish()
}

/// Whether `s` holds a control character: below 0x20 or 0x7f in ASCII text
/// (nearly all of it, checked eight bytes at a time), U+0080 to U+009F
/// besides otherwise.
fn has_control(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = s.as_bytes().chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let x = u64::from_le_bytes(w);
        if x & HIGH != 0 {
            return s.chars().any(char::is_control);
        }
        // In ASCII bytes: a byte below 0x20 borrows, so its high bit is
        // set; a byte 0x7f xors to zero, and a zero byte borrows too. A
        // borrow into the next byte can set that one's bit as well, but only
        // once a byte has already answered yes.
        let below = x.wrapping_sub(ONES * 0x20) & HIGH;
        let del = (x ^ (ONES * 0x7f)).wrapping_sub(ONES) & HIGH;
        if below | del != 0 {
            return true;
        }
    }
    let rest = words.remainder();
    if rest.is_ascii() { rest.iter().any(|&b| b < 0x20 || b == 0x7f) } else { s.chars().any(char::is_control) }
}

/// The digest of the raw text a form was made from (see
/// [`crate::Snapshot::sources`]): domain-separated from every form's digest,
/// so the one can never stand for the other.
pub fn source_digest(subsystem: Subsystem, raw: &[u8]) -> Digest {
    let mut h = Hasher::new();
    h.update(b"fdir source text v1\n");
    h.update(subsystem.name().as_bytes());
    h.update(b"\n");
    h.update(raw);
    h.finish()
}

/// The digest standing for "not applicable" in an anomaly: a subsystem that
/// was observed and is now not applicable, or the reverse. It never equals
/// the digest of any record set.
pub fn digest_not_applicable(subsystem: Subsystem) -> Digest {
    let mut h = Hasher::new();
    h.update(b"fdir not applicable v1\n");
    h.update(subsystem.name().as_bytes());
    h.update(b"\n");
    h.finish()
}

/// The digest of stored records, equal to the digest of the [`Canon`] they came
/// from. `None` if the records are not in canonical form (unsorted, duplicated,
/// or holding characters a canonical form never has).
pub fn digest_records(subsystem: Subsystem, records: &[Record]) -> Option<Digest> {
    let clean = |s: &str| !has_control(s);
    let mut prev: Option<&Record> = None;
    for r in records {
        if !clean(&r.key) || !clean(&r.value) {
            return None;
        }
        if let Some(p) = prev
            && p >= r
        {
            return None;
        }
        prev = Some(r);
    }
    let mut h = Hasher::new();
    h.update(DOMAIN);
    h.update(subsystem.name().as_bytes());
    h.update(b"\n");
    // The lines gathered a block at a time (a call into the hasher for each
    // piece of each record costs more than copying them), on the stack: a
    // baseline file of 500 processes is verified without 1,500 allocations.
    let mut block = Block { h, buf: [0; 2048], len: 0 };
    for r in records {
        block.push(r.key.as_bytes());
        block.push(b"\t");
        block.push(r.value.as_bytes());
        block.push(b"\n");
    }
    block.flush();
    Some(block.h.finish())
}

/// Bytes gathered into blocks for a [`Hasher`].
struct Block {
    h: Hasher,
    buf: [u8; 2048],
    len: usize,
}

impl Block {
    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
        }
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            // Larger than a block: hashed as it is.
            None => self.h.update(bytes),
        }
    }

    fn flush(&mut self) {
        self.h.update(self.buf.get(..self.len).unwrap_or_default());
        self.len = 0;
    }
}

impl RecordWriter<'_> {
    /// Ends the key and starts the value.
    pub fn value(&mut self) -> &mut Self {
        if !self.in_value {
            self.canon.text.push('\t');
            self.in_value = true;
        }
        self
    }

    /// Appends bytes, escaping anything that is not printable UTF-8.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return self.str(s);
        }
        for chunk in bytes.utf8_chunks() {
            self.str(chunk.valid());
            for b in chunk.invalid() {
                let _ = write!(self.canon.text, "\\x{b:02x}");
            }
        }
        self
    }

    /// Appends text the kernel has already escaped (mount points, sources and
    /// roots in `mountinfo`, where a space is `\040` and a backslash `\134`):
    /// kept as the kernel wrote it, so `\040` reads `\040`, with only control
    /// characters and invalid UTF-8 escaped further. Injective on such text,
    /// since it never holds a bare backslash.
    pub fn escaped(&mut self, bytes: &[u8]) -> &mut Self {
        for chunk in bytes.utf8_chunks() {
            let valid = chunk.valid();
            if valid.chars().any(char::is_control) {
                for c in valid.chars() {
                    if c.is_control() {
                        let _ = write!(self.canon.text, "\\u{{{:x}}}", u32::from(c));
                    } else {
                        self.canon.text.push(c);
                    }
                }
            } else {
                self.canon.text.push_str(valid);
            }
            for b in chunk.invalid() {
                let _ = write!(self.canon.text, "\\x{b:02x}");
            }
        }
        self
    }

    /// Appends an escape sequence as is (the caller writes only printable ASCII).
    pub(crate) fn raw(&mut self, escape: &'static str) -> &mut Self {
        self.canon.text.push_str(escape);
        self
    }

    /// Appends text, escaping backslashes and control characters.
    pub fn str(&mut self, s: &str) -> &mut Self {
        let text = &mut self.canon.text;
        if !s.contains('\\') && !has_control(s) {
            text.push_str(s);
            return self;
        }
        for c in s.chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '\t' => text.push_str("\\t"),
                '\n' => text.push_str("\\n"),
                c if c.is_control() => {
                    let _ = write!(text, "\\u{{{:x}}}", u32::from(c));
                }
                c => text.push(c),
            }
        }
        self
    }

    /// Appends `n` as `{:#x}` writes it (`0x1f`), with no formatting
    /// machinery: digits need no escaping.
    pub fn hex(&mut self, n: u64) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 16];
        let mut at = buf.len();
        let mut v = n;
        loop {
            at -= 1;
            if let (Some(slot), Some(&d)) = (buf.get_mut(at), DIGITS.get((v & 0xf) as usize)) {
                *slot = d;
            }
            v >>= 4;
            if v == 0 || at == 0 {
                break;
            }
        }
        self.canon.text.push_str("0x");
        self.canon.text.extend(buf.get(at..).unwrap_or_default().iter().map(|&b| char::from(b)));
        self
    }

    /// Appends `n` in decimal, as `{}` writes it.
    pub fn dec(&mut self, n: u64) -> &mut Self {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut v = n;
        loop {
            at -= 1;
            if let Some(slot) = buf.get_mut(at) {
                // `v % 10` is a digit.
                *slot = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || at == 0 {
                break;
            }
        }
        self.canon.text.extend(buf.get(at..).unwrap_or_default().iter().map(|&b| char::from(b)));
        self
    }

    /// Appends formatted text (escaped).
    pub fn fmt(&mut self, args: fmt::Arguments<'_>) -> &mut Self {
        match args.as_str() {
            Some(s) => self.str(s),
            None => {
                // Numbers and fixed words: format into the buffer, then check.
                let start = self.canon.text.len();
                let _ = self.canon.text.write_fmt(args);
                let dirty =
                    self.canon.text.get(start..).is_some_and(|s| s.chars().any(|c| c == '\\' || c.is_control()));
                if dirty {
                    let raw: String = self.canon.text.get(start..).unwrap_or("").to_owned();
                    self.canon.text.truncate(start);
                    self.str(&raw);
                }
                self
            }
        }
    }
}

impl Drop for RecordWriter<'_> {
    fn drop(&mut self) {
        let end = self.canon.text.len();
        self.canon.lines.push(self.start..end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_control_answers_as_char_is_control_at_every_position() {
        let naive = |s: &str| s.chars().any(char::is_control);
        let mut cases = 0;
        for len in 0..20 {
            for at in 0..len {
                for c in (0u32..0x100).chain([0x2028, 0x1f600]) {
                    let Some(c) = char::from_u32(c) else { continue };
                    let mut s: String = "abcdefghijklmnopqrstuvwxyz".chars().cycle().take(len).collect();
                    s.replace_range(
                        s.char_indices().nth(at).map_or(0..0, |(i, ch)| i..i + ch.len_utf8()),
                        &c.to_string(),
                    );
                    assert_eq!(has_control(&s), naive(&s), "{s:?}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 40_000);
        // A control character after a non-ASCII one, and the reverse; a C1
        // control past the first eight bytes.
        assert!(has_control("\u{e9}\u{7}abcdefgh"));
        assert!(has_control("abcdefgh\u{7}\u{e9}"));
        assert!(has_control("abcdefghij\u{85}"));
        assert!(!has_control("abcdefgh\u{e9}ijklmnop"));
    }

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        let mut rng = crate::rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut values = vec![0, 1, 9, 10, 15, 16, 255, 256, 999, 1000, u64::MAX, u64::MAX - 1, 1 << 63];
        for _ in 0..2000 {
            let x = rng.next();
            values.push(x >> (x % 64));
        }
        for v in values {
            let mut c = Canon::new();
            c.record().hex(v).value().dec(v);
            assert_eq!(c.lines().next(), Some(format!("{v:#x}\t{v}").as_str()));
        }
    }

    #[test]
    fn sorted_deduplicated_and_order_independent() {
        let mut a = Canon::new();
        a.push("b", "2");
        a.push("a", "1");
        a.push("b", "2");
        let mut b = Canon::new();
        b.push("a", "1");
        b.push("b", "2");
        assert_eq!(a.digest(Subsystem::Cgroups), b.digest(Subsystem::Cgroups));
        assert_eq!(a.len(), 2);
        assert_ne!(a.digest(Subsystem::Cgroups), a.digest(Subsystem::Seccomp));
    }

    #[test]
    fn records_digest_as_their_canon_across_block_boundaries() {
        // Records of every length up to past a hashing block, one longer
        // than a block: the digest does not depend on where blocks end.
        for longest in [0usize, 7, 2046, 2047, 2048, 2049, 5000] {
            let mut c = Canon::new();
            for (i, n) in (0..40).map(|i| i * 61 % (longest + 1)).chain([longest]).enumerate() {
                c.push(&format!("{i:03}"), &"v".repeat(n));
            }
            assert_eq!(digest_records(Subsystem::Mounts, &c.records()), Some(c.digest(Subsystem::Mounts)), "{longest}");
        }
    }

    #[test]
    fn escaping_is_injective_and_round_trips_through_records() {
        let mut c = Canon::new();
        c.record().bytes(b"tab\there").value().bytes(b"\xff\\x");
        c.record().bytes(b"tab\\there").value().str("ok");
        let records = c.records();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| !r.key.contains('\t')));
        assert_eq!(digest_records(Subsystem::MemoryMaps, &records), Some(c.digest(Subsystem::MemoryMaps)));
    }

    #[test]
    fn the_last_record_can_be_compared_and_taken_back() {
        let mut c = Canon::new();
        c.push("thread", "a");
        assert!(c.last_is_new());
        c.push("thread", "a");
        assert!(!c.last_is_new());
        c.push("thread", "b");
        assert!(c.last_is_new());
        c.pop();
        assert_eq!(c.lines().collect::<Vec<_>>(), ["thread\ta", "thread\ta"]);
        c.push("thread", "c");
        c.finish();
        assert_eq!(c.lines().collect::<Vec<_>>(), ["thread\ta", "thread\tc"]);
    }

    #[test]
    fn stored_records_out_of_canonical_form_are_refused() {
        let r = |k: &str, v: &str| Record { key: k.into(), value: v.into() };
        assert!(digest_records(Subsystem::Seccomp, &[r("b", ""), r("a", "")]).is_none());
        assert!(digest_records(Subsystem::Seccomp, &[r("a", ""), r("a", "")]).is_none());
        assert!(digest_records(Subsystem::Seccomp, &[r("a\tb", "")]).is_none());
        assert!(digest_records(Subsystem::Seccomp, &[r("a", "x\n")]).is_none());
        assert!(digest_records(Subsystem::Seccomp, &[]).is_some());
    }
}
