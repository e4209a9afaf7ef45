//! Observing `code`: hashing the bytes of the code mappings, read through the
//! source (`/proc/PID/mem`): every byte for a baseline, a bounded number per
//! check for a [`CodeSweep`], which resumes where the last check of its target
//! stopped, like the NASA cFS Checksum application's bytes per cycle.
//!
//! The budget and the sweep:
//!
//! - A check first re-reads the chunks that differed from the baseline when
//!   last read (*suspects*, rotating if there are more than the budget
//!   allows), then goes on with the sweep from the chunk after the last one
//!   it verified, wrapping around at the end. It reads whole chunks while it
//!   has read fewer bytes than the budget, and at least one chunk of the
//!   sweep, so a check reads at most the budget rounded up to a chunk, plus
//!   one chunk when suspects used it all.
//! - A drift stays visible from one check to the next (a confirming re-read
//!   re-reads the suspect chunk), and recovers when the chunk is back.
//! - Only chunks of mappings present both in the baseline and now, with the
//!   same device and inode, are compared: a library loaded, unloaded or
//!   replaced is memory-maps' finding, never a second alarm here. A chunk is
//!   read where its file bytes are mapped now (a mapping split by an
//!   `mprotect` of some of its pages still holds them), if they are all
//!   mapped as code.
//! - In a monitor, a chunk without pages of the process's own is the page
//!   cache's copy, read once a round for every process that maps the file
//!   (`code_pages.rs`); chunks with pages of its own are re-read first, like
//!   suspects. The form a
//!   check produces is the baseline's records with the values of the
//!   suspects substituted, so its digest equals the baseline's exactly when
//!   nothing compared differs.
//!
//! Reading code through `/proc/PID/mem` faults in pages of the target's code
//! that it never touched (reading them from the page cache, or from disk):
//! its resident set grows, its behaviour does not change.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::canon::code::{self as form, CHUNK, ChunkId, CodeMapping};
use crate::canon::{Canon, Record};
use crate::code_pages::{self, ChunkKey, CodePages};
use crate::{Digest, Error, Source};

/// The default budget: bytes of code one check reads per target.
pub const DEFAULT_CODE_BUDGET: u64 = 4 << 20;
/// Memory is read in windows of up to this many bytes (several chunks per
/// read system call).
const WINDOW: usize = 256 << 10;

thread_local! {
    /// One read window per thread, shared by every target checked on it, so
    /// that watching many processes does not hold a window for each.
    static WINDOW_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How many bytes of code one check may read per target.
///
/// Parses `unlimited`, `0` (also unlimited), or a number of bytes with an
/// optional binary suffix: `4MiB`, `512K`, `1G`, `65536`.
///
/// ```
/// use fdir::CodeBudget;
/// assert_eq!("4MiB".parse::<CodeBudget>()?, CodeBudget::bytes(4 << 20));
/// assert_eq!("unlimited".parse::<CodeBudget>()?, CodeBudget::UNLIMITED);
/// assert_eq!(CodeBudget::bytes(0), CodeBudget::UNLIMITED);
/// assert_eq!(CodeBudget::DEFAULT.to_string(), "4MiB");
/// # Ok::<(), fdir::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeBudget(Option<NonZeroU64>);

impl CodeBudget {
    /// Every byte, every check.
    pub const UNLIMITED: CodeBudget = CodeBudget(None);
    /// [`DEFAULT_CODE_BUDGET`] bytes per check.
    pub const DEFAULT: CodeBudget = CodeBudget(NonZeroU64::new(DEFAULT_CODE_BUDGET));

    /// `n` bytes per check; 0 means unlimited.
    pub const fn bytes(n: u64) -> CodeBudget {
        CodeBudget(NonZeroU64::new(n))
    }

    /// The limit in bytes, `None` when unlimited.
    pub const fn limit(self) -> Option<u64> {
        match self.0 {
            Some(n) => Some(n.get()),
            None => None,
        }
    }

    /// How many checks a full sweep of `chunks` whole chunks takes.
    pub fn checks_per_sweep(self, chunks: u64) -> u64 {
        match self.limit() {
            _ if chunks == 0 => 0,
            None => 1,
            Some(b) => chunks.div_ceil(b.div_ceil(CHUNK).max(1)),
        }
    }
}

impl Default for CodeBudget {
    fn default() -> CodeBudget {
        CodeBudget::DEFAULT
    }
}

const UNITS: &[(&str, u64)] = &[("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

impl fmt::Display for CodeBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(n) = self.limit() else { return f.write_str("unlimited") };
        match UNITS.iter().find(|(_, u)| n % u == 0) {
            Some((name, u)) => write!(f, "{}{name}", n / u),
            None => write!(f, "{n}"),
        }
    }
}

impl FromStr for CodeBudget {
    type Err = Error;

    fn from_str(s: &str) -> Result<CodeBudget, Error> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(CodeBudget::UNLIMITED);
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let bad = || Error::Config(format!("{s:?} is not a code budget (try 4MiB, 512KiB, 65536 or unlimited)"));
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let unit = unit.trim().to_ascii_lowercase();
        let scale = match unit.as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(scale).map(CodeBudget::bytes).ok_or_else(bad)
    }
}

/// How far the code sweep of one target has come, reported by each check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sweep {
    /// Bytes of code read and compared with the baseline in this check.
    pub verified_bytes: u64,
    /// Bytes of code that can be compared with the baseline (the code of the
    /// mappings present both then and now).
    pub total_bytes: u64,
    /// Bytes covered so far by the sweep in progress.
    pub swept_bytes: u64,
    /// Checks a full sweep takes at this budget.
    pub checks_per_sweep: u64,
    /// Full sweeps completed since the checker started.
    pub sweeps: u64,
    /// Chunks that differ from the baseline now.
    pub drifted_chunks: u64,
    /// Of the bytes verified, those read through the target's own memory:
    /// the chunks with pages of its own, and the shared chunks it was the
    /// first of its round to read (`code_pages.rs`). A target whose code
    /// has no page of its own and whose shared chunks another target read
    /// this round reads none.
    #[serde(default)]
    pub read_bytes: u64,
    /// Of the bytes verified, those taken from the round's shared copy,
    /// read by another target.
    #[serde(default)]
    pub shared_bytes: u64,
    /// Pages of the code mappings that are the target's own (copied on a
    /// write) now, where its page map could be read.
    #[serde(default)]
    pub private_pages: u64,
}

impl Sweep {
    /// Adds another target's sweep: bytes and chunks add up, a full sweep
    /// takes as many checks as the slowest target's, and the sweeps completed
    /// are the fewest of any target.
    pub fn merge(&mut self, other: &Sweep) {
        self.verified_bytes = self.verified_bytes.saturating_add(other.verified_bytes);
        self.total_bytes = self.total_bytes.saturating_add(other.total_bytes);
        self.swept_bytes = self.swept_bytes.saturating_add(other.swept_bytes);
        self.checks_per_sweep = self.checks_per_sweep.max(other.checks_per_sweep);
        self.sweeps = self.sweeps.min(other.sweeps);
        self.drifted_chunks = self.drifted_chunks.saturating_add(other.drifted_chunks);
        self.read_bytes = self.read_bytes.saturating_add(other.read_bytes);
        self.shared_bytes = self.shared_bytes.saturating_add(other.shared_bytes);
        self.private_pages = self.private_pages.saturating_add(other.private_pages);
    }
}

/// Reads memory in windows of several chunks; the bytes of a chunk are those
/// readable from its first byte on (up to the first unreadable byte), the
/// same however the windows fall.
struct Reader<'a, S: ?Sized> {
    src: &'a S,
    win: &'a mut Vec<u8>,
    start: u64,
    asked: usize,
    got: usize,
}

impl<'a, S: Source + ?Sized> Reader<'a, S> {
    fn new(src: &'a S, win: &'a mut Vec<u8>) -> Self {
        if win.len() < WINDOW {
            win.resize(WINDOW, 0);
        }
        Reader { src, win, start: 0, asked: 0, got: 0 }
    }

    /// The readable bytes of the chunk `addr..addr + len`, in a mapping that
    /// ends at `end`.
    fn chunk(&mut self, addr: u64, len: u64, end: u64) -> Result<&[u8], Error> {
        let got_end = self.start.saturating_add(self.got as u64);
        let inside = addr >= self.start && addr < got_end;
        let covered = inside && (addr.saturating_add(len) <= got_end || self.got < self.asked);
        if !covered {
            let want = usize::try_from(end.saturating_sub(addr)).unwrap_or(WINDOW).clamp(1, WINDOW);
            let window = self.win.get_mut(..want).ok_or_else(|| Error::Bug("read window too small".into()))?;
            self.got = self.src.read_mem(addr, window)?;
            self.start = addr;
            self.asked = want;
        }
        let from = usize::try_from(addr - self.start).unwrap_or(usize::MAX);
        let to = usize::try_from(addr.saturating_add(len) - self.start).unwrap_or(usize::MAX).min(self.got);
        Ok(self.win.get(from..to).unwrap_or(&[]))
    }
}

fn hash_value(bytes: &[u8], value: &mut String) {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    form::chunk_value(value, bytes.len(), &digest);
}

/// Hashes every chunk of every mapping into `out` (a baseline). With a
/// monitor's shared chunks (`within.pages`) and a readable page map, a chunk
/// without pages of the process's own is taken from the round (or read once
/// for it), as a check does.
pub(crate) fn hash_all<S: Source + ?Sized>(
    src: &S,
    mappings: &[CodeMapping],
    within: Within<'_>,
    out: &mut Canon,
) -> Result<(), Error> {
    let own = match within.pages {
        Some(_) => code_pages::private_pages(src, mappings).ok(),
        None => None,
    };
    WINDOW_BUF.with_borrow_mut(|win| {
        let mut reader = Reader::new(src, win);
        // Reused for every chunk: hashing allocates nothing per chunk.
        let (mut key_text, mut value) = (String::with_capacity(128), String::with_capacity(96));
        for m in mappings {
            out.push_clean(&m.map_key(), &m.map_value());
            let path = code_pages::path_id(&m.path);
            for (at, len) in form::chunks(m.size()) {
                let addr = m.start + at;
                let shared = own.as_ref().filter(|o| {
                    let end = addr.saturating_add(len);
                    o.partition_point(|&p| p < end) == o.partition_point(|&p| p < addr)
                });
                match (within.pages, shared, code_pages::device(&m.dev)) {
                    (Some(pages), Some(_), Some(dev)) if !within.fresh => {
                        let key = ChunkKey { dev, path, inode: m.inode, at: m.offset.saturating_add(at), len };
                        let (v, _) = pages.value(key, || {
                            let mut v = String::with_capacity(96);
                            hash_value(reader.chunk(addr, len, m.end)?, &mut v);
                            Ok((v, len))
                        })?;
                        form::write_chunk_key(&mut key_text, &m.path, m.offset, at);
                        out.push_clean(&key_text, &v);
                    }
                    _ => {
                        hash_value(reader.chunk(addr, len, m.end)?, &mut value);
                        form::write_chunk_key(&mut key_text, &m.path, m.offset, at);
                        out.push_clean(&key_text, &value);
                    }
                }
            }
        }
        out.finish();
        Ok(())
    })
}

/// One baseline chunk: its id, the index of its record, its mapping's identity.
#[derive(Debug, Clone)]
struct BaseChunk {
    id: ChunkId,
    record: usize,
    dev: String,
    /// `dev` as a number, where it is one (`code_pages::device`).
    dev_id: Option<u64>,
    /// The path, hashed (`code_pages::path_id`).
    path_id: u64,
    inode: u64,
    /// Its length at baseline.
    len: u64,
}

/// A chunk that can be compared now.
#[derive(Debug, Clone, Copy)]
struct Comparable<'a> {
    base: &'a BaseChunk,
    addr: u64,
    len: u64,
    end: u64,
    /// Pages of the target's own in the chunk; `None` when unknown.
    own: Option<u64>,
}

/// Where a check runs: the round's shared code chunks of a monitor
/// (`code_pages.rs`), and whether this read must be fresh (after a drift:
/// its own memory, whose values replace the round's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Within<'a> {
    pub(crate) pages: Option<&'a CodePages>,
    pub(crate) fresh: bool,
}

/// Marks a drifted chunk's value with where its bytes were read: the page
/// cache's copy shared by every process that maps the file, or the
/// process's own pages.
fn mark_origin(value: &mut String, own: Option<u64>, shared: bool) {
    match own {
        Some(0) if shared => value.push_str(form::IN_PAGE_CACHE),
        Some(n) => {
            let _ = std::fmt::Write::write_fmt(value, format_args!("{}{n}", form::IN_OWN_PAGES));
        }
        _ => {}
    }
}

/// Where the sweep of one target is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Progress {
    /// The last chunk the sweep verified.
    cursor: Option<ChunkId>,
    /// Bytes covered by the sweep in progress.
    swept: u64,
    /// Full sweeps completed.
    sweeps: u64,
    /// The last suspect re-read.
    suspect_cursor: Option<ChunkId>,
}

impl Progress {
    fn wrap(&mut self) {
        self.sweeps = self.sweeps.saturating_add(1);
        self.swept = 0;
        self.cursor = None;
    }
}

/// Which of `targets` (comparable chunks in sweep order, with their lengths)
/// one check reads: the `suspects` first (chunks seen drifted, and chunks
/// with pages of the target's own), rotating, then the sweep from the
/// cursor on, while fewer than `budget` bytes have been read, and at least
/// one chunk of the sweep. Moves the cursors; returns indexes, ascending.
fn plan(
    progress: &mut Progress,
    suspects: &impl Fn(&ChunkId) -> bool,
    budget: CodeBudget,
    targets: &[(&ChunkId, u64)],
) -> Vec<usize> {
    let limit = budget.limit();
    let fits = |used: u64| limit.is_none_or(|b| used < b);
    let mut reads = Vec::new();
    let mut used = 0u64;

    let suspect_at: Vec<usize> =
        (0..targets.len()).filter(|&i| targets.get(i).is_some_and(|t| suspects(t.0))).collect();
    let start = match &progress.suspect_cursor {
        Some(c) => suspect_at.iter().position(|&i| targets.get(i).is_some_and(|t| t.0 > c)).unwrap_or(0),
        None => 0,
    };
    for k in 0..suspect_at.len() {
        if !fits(used) {
            break;
        }
        let Some(&i) = suspect_at.get((start + k) % suspect_at.len()) else { break };
        let Some(&(id, len)) = targets.get(i) else { break };
        reads.push(i);
        used = used.saturating_add(len);
        progress.suspect_cursor = Some(id.clone());
    }

    let n = targets.len();
    if n == 0 {
        return reads;
    }
    let mut i = match &progress.cursor {
        Some(c) => targets.iter().position(|t| t.0 > c).unwrap_or(n),
        None => 0,
    };
    if i == n {
        // The chunks after the cursor are gone: that sweep is over.
        progress.wrap();
        i = 0;
    }
    let mut swept_now = 0;
    while swept_now < n && (swept_now == 0 || fits(used)) {
        let Some(&(id, len)) = targets.get(i) else { break };
        if !reads.contains(&i) {
            reads.push(i);
            used = used.saturating_add(len);
        }
        progress.swept = progress.swept.saturating_add(len);
        progress.cursor = Some(id.clone());
        swept_now += 1;
        i += 1;
        if i == n {
            progress.wrap();
            i = 0;
        }
    }
    reads.sort_unstable();
    reads
}

/// The state of one target's code sweep, kept by a [`crate::Checker`]
/// between checks.
#[derive(Debug, Default)]
pub(crate) struct CodeSweep {
    budget: CodeBudget,
    /// The digest of the baseline the state below belongs to.
    baseline: Option<Digest>,
    /// The baseline's chunks, in sweep order.
    chunks: Vec<BaseChunk>,
    progress: Progress,
    /// Chunks that differed from the baseline when last read: their value then.
    suspects: BTreeMap<ChunkId, String>,
    last: Option<Sweep>,
}

impl CodeSweep {
    pub(crate) fn new(budget: CodeBudget) -> CodeSweep {
        CodeSweep { budget, ..CodeSweep::default() }
    }

    pub(crate) fn budget(&self) -> CodeBudget {
        self.budget
    }

    pub(crate) fn set_budget(&mut self, budget: CodeBudget) {
        self.budget = budget;
    }

    /// The progress reported by the last check.
    pub(crate) fn last(&self) -> Option<Sweep> {
        self.last
    }

    fn reset(&mut self, baseline: &[Record], digest: Digest) {
        let mut maps: BTreeMap<(&str, u64), (&str, u64, u64)> = BTreeMap::new();
        for r in baseline {
            if let (Some(key), Some((dev, inode)), Some(size)) =
                (form::parse_map_key(&r.key), form::map_identity(&r.value), form::map_size(&r.value))
            {
                maps.entry(key).or_insert((dev, inode, size));
            }
        }
        self.chunks = baseline
            .iter()
            .enumerate()
            .filter_map(|(record, r)| {
                let id = form::parse_chunk_key(&r.key)?;
                let &(dev, inode, size) = maps.get(&(id.path.as_str(), id.offset))?;
                let len = CHUNK.min(size.checked_sub(id.chunk).filter(|&l| l > 0)?);
                let (dev_id, path_id) = (code_pages::device(dev), code_pages::path_id(&id.path));
                Some(BaseChunk { id, record, dev: dev.to_owned(), dev_id, path_id, inode, len })
            })
            .collect();
        self.chunks.sort_by(|a, b| a.id.cmp(&b.id));
        self.baseline = Some(digest);
        self.progress = Progress::default();
        self.suspects.clear();
        self.last = None;
    }

    /// Checks a budget's worth of the code in `mappings` (the target's code
    /// now) against the `baseline` records (with digest `digest`), and writes
    /// into `out` the baseline's records with the values of the chunks that
    /// differ now. With a monitor's shared chunks (`within.pages`), a chunk
    /// without pages of the target's own is taken from (or read once for)
    /// the round; chunks with pages of its own are read first.
    pub(crate) fn check<S: Source + ?Sized>(
        &mut self,
        src: &S,
        mappings: &[CodeMapping],
        baseline: &[Record],
        digest: Digest,
        within: Within<'_>,
        out: &mut Canon,
    ) -> Result<(), Error> {
        if self.baseline != Some(digest) {
            self.reset(baseline, digest);
        }
        // Pages of the target's own (only where chunks can be shared: a
        // target checked alone reads all it verifies).
        let own = match within.pages {
            Some(_) => code_pages::private_pages(src, mappings).ok(),
            None => None,
        };
        let private_pages = own.as_ref().map_or(0, |o| o.len() as u64);
        // The code now, by file, in file order: a chunk is where its file
        // bytes are mapped now, even if its mapping was split since (an
        // mprotect of some of its pages), as long as they are mapped whole.
        let mut by_file: BTreeMap<(&str, u64), Vec<&CodeMapping>> = BTreeMap::new();
        for m in mappings {
            by_file.entry((m.dev.as_str(), m.inode)).or_default().push(m);
        }
        for v in by_file.values_mut() {
            v.sort_by_key(|m| m.offset);
        }
        let comparable: Vec<Comparable<'_>> = self
            .chunks
            .iter()
            .filter_map(|base| {
                let maps = by_file.get(&(base.dev.as_str(), base.inode))?;
                let at = base.id.offset.checked_add(base.id.chunk)?;
                let (addr, end) = locate(maps, at, base.len)?;
                let own = own.as_ref().map(|o| {
                    let range = addr..addr.saturating_add(base.len);
                    (o.partition_point(|&p| p < range.end) - o.partition_point(|&p| p < range.start)) as u64
                });
                Some(Comparable { base, addr, len: base.len, end, own })
            })
            .collect();
        // Suspects whose mapping is gone or replaced are memory-maps' concern.
        self.suspects.retain(|id, _| comparable.binary_search_by(|c| c.base.id.cmp(id)).is_ok());

        let targets: Vec<(&ChunkId, u64)> = comparable.iter().map(|c| (&c.base.id, c.len)).collect();
        let first = |id: &ChunkId| {
            self.suspects.contains_key(id)
                || comparable
                    .binary_search_by(|c| c.base.id.cmp(id))
                    .ok()
                    .and_then(|i| comparable.get(i))
                    .is_some_and(|c| c.own.is_some_and(|n| n > 0))
        };
        let reads = plan(&mut self.progress, &first, self.budget, &targets);

        let (mut verified, mut read, mut shared) = (0u64, 0u64, 0u64);
        let mut found: Vec<(usize, Option<String>)> = Vec::with_capacity(reads.len());
        WINDOW_BUF.with_borrow_mut(|win| -> Result<(), Error> {
            let mut reader = Reader::new(src, win);
            let mut value = String::with_capacity(96);
            for &i in &reads {
                let Some(c) = comparable.get(i) else { continue };
                let key = chunk_key(c);
                let pages = within.pages.filter(|_| c.own == Some(0) && key.is_some());
                let mut cached = None;
                let from_round = match (pages, key) {
                    (Some(p), Some(key)) if !within.fresh => {
                        let (v, here) = p.value(key, || {
                            let mut v = String::with_capacity(96);
                            hash_value(reader.chunk(c.addr, c.len, c.end)?, &mut v);
                            Ok((v, c.len))
                        })?;
                        cached = Some(v);
                        here
                    }
                    _ => {
                        hash_value(reader.chunk(c.addr, c.len, c.end)?, &mut value);
                        if let (Some(p), Some(key)) = (pages, key) {
                            p.replace(key, &value);
                        }
                        true
                    }
                };
                let value = cached.as_deref().unwrap_or(&value);
                if from_round {
                    read = read.saturating_add(c.len);
                } else {
                    shared = shared.saturating_add(c.len);
                }
                verified = verified.saturating_add(c.len);
                let same = baseline.get(c.base.record).is_some_and(|r| r.value == value);
                if same {
                    found.push((i, None));
                } else {
                    let mut marked = value.to_owned();
                    mark_origin(&mut marked, c.own, pages.is_some());
                    found.push((i, Some(marked)));
                }
            }
            Ok(())
        })?;
        for (i, v) in found {
            let Some(c) = comparable.get(i) else { continue };
            match v {
                None => self.suspects.remove(&c.base.id),
                Some(v) => self.suspects.insert(c.base.id.clone(), v),
            };
        }

        if self.suspects.is_empty() {
            // Nothing differs: the baseline's form, known by its digest.
            *out = Canon::known(crate::Subsystem::Code, digest);
        } else {
            let substituted: BTreeMap<usize, &str> = comparable
                .iter()
                .filter_map(|c| Some((c.base.record, self.suspects.get(&c.base.id)?.as_str())))
                .collect();
            out.clear();
            for (i, r) in baseline.iter().enumerate() {
                out.push_clean(&r.key, substituted.get(&i).copied().unwrap_or(&r.value));
            }
            out.finish();
        }

        let chunks = u64::try_from(comparable.len()).unwrap_or(u64::MAX);
        self.last = Some(Sweep {
            verified_bytes: verified,
            total_bytes: comparable.iter().map(|c| c.len).sum(),
            swept_bytes: self.progress.swept,
            checks_per_sweep: self.budget.checks_per_sweep(chunks),
            sweeps: self.progress.sweeps,
            drifted_chunks: u64::try_from(self.suspects.len()).unwrap_or(u64::MAX),
            read_bytes: read,
            shared_bytes: shared,
            private_pages,
        });
        Ok(())
    }
}

/// What the value of a shared chunk depends on; `None` (not shared) when
/// its device is not a number.
fn chunk_key(c: &Comparable<'_>) -> Option<ChunkKey> {
    Some(ChunkKey {
        dev: c.base.dev_id?,
        path: c.base.path_id,
        inode: c.base.inode,
        at: c.base.id.offset.saturating_add(c.base.id.chunk),
        len: c.len,
    })
}

/// Where the bytes `at..at + len` of a file are mapped now, among its
/// mappings `maps` (in file order): the address of the first, and the end of
/// the run of mappings that holds them all (adjacent both in memory and in
/// the file); `None` when they are not all mapped so.
fn locate(maps: &[&CodeMapping], at: u64, len: u64) -> Option<(u64, u64)> {
    let i = maps.iter().position(|m| m.offset <= at && at - m.offset < m.size())?;
    let first = maps.get(i)?;
    let addr = first.start.checked_add(at - first.offset)?;
    let want = addr.checked_add(len)?;
    let (mut end, mut next_offset) = (first.end, first.offset.saturating_add(first.size()));
    for m in maps.iter().skip(i + 1) {
        if end >= want {
            break;
        }
        if m.start != end || m.offset != next_offset {
            break;
        }
        end = m.end;
        next_offset = m.offset.saturating_add(m.size());
    }
    (end >= want).then_some((addr, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Checker, ManualClock, Observation, Procfs, Snapshot, Subsystem, Verdict, snapshot_with};

    const APP: u64 = 0x1000;
    const LIB: u64 = 0x40000;
    const MAPS: &str = "\
1000-31000 r-xp 00000000 fe:01 11 /bin/app
31000-32000 rw-p 00030000 fe:01 11 /bin/app
40000-48000 r-xp 00004000 fe:01 12 /lib/libx.so
50000-51000 rwxp 00000000 00:00 0 
";

    fn bytes(seed: u8, len: u64) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// A process with two code mappings: /bin/app (3 chunks) and /lib/libx.so
    /// (half a chunk); `edit` changes its memory first.
    fn process(maps: &str, edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> Procfs {
        let (mut app, mut lib) = (bytes(1, 0x30000), bytes(2, 0x8000));
        edit(&mut app, &mut lib);
        Procfs::mock_files([
            ("maps".to_owned(), maps.as_bytes().to_vec()),
            (format!("mem/{APP:x}"), app),
            (format!("mem/{LIB:x}"), lib),
        ])
    }

    fn baseline(fs: &Procfs) -> Snapshot {
        snapshot_with(&ManualClock::new(), fs, &[Subsystem::Code]).unwrap()
    }

    fn check(c: &mut Checker, base: &Snapshot, fs: &Procfs) -> Verdict {
        c.check(base, &ManualClock::new(), fs, &[Subsystem::Code]).unwrap()
    }

    fn texts(v: &Verdict) -> Vec<String> {
        v.anomalies().iter().flat_map(|a| a.changes.iter().map(ToString::to_string)).collect()
    }

    #[test]
    fn a_baseline_hashes_every_chunk_of_private_file_code() {
        let base = baseline(&process(MAPS, |_, _| {}));
        let Some(Observation::Observed { records, .. }) = base.subsystems.get(&Subsystem::Code) else { panic!() };
        let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "code /bin/app @0x0 +0x0",
                "code /bin/app @0x0 +0x10000",
                "code /bin/app @0x0 +0x20000",
                "code /lib/libx.so @0x4000 +0x0",
                "map /bin/app @0x0",
                "map /lib/libx.so @0x4000",
            ]
        );
        let digest: [u8; 32] = Sha256::digest(bytes(2, 0x8000)).into();
        let mut want = String::new();
        form::chunk_value(&mut want, 0x8000, &digest);
        assert_eq!(records[3].value, want);
        assert_eq!(records[5].value, "dev fe:01 inode 12 size 0x8000");
        base.verify().unwrap();
    }

    #[test]
    fn a_budget_spreads_the_sweep_over_checks_and_wraps_around() {
        let fs = process(MAPS, |_, _| {});
        let base = baseline(&fs);
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK));
        let mut seen = Vec::new();
        for _ in 0..9 {
            let v = check(&mut c, &base, &fs);
            assert!(v.is_ok(), "{:#?}", v.anomalies());
            let s = v.report().code.unwrap();
            assert_eq!((s.total_bytes, s.checks_per_sweep, s.drifted_chunks), (0x38000, 4, 0));
            seen.push((s.verified_bytes, s.swept_bytes, s.sweeps));
        }
        // (verified, swept, sweeps): the half chunk of libx leaves room for
        // the first chunk of the next sweep.
        assert_eq!(
            seen,
            [
                (0x10000, 0x10000, 0),
                (0x10000, 0x20000, 0),
                (0x10000, 0x30000, 0),
                (0x18000, 0x10000, 1),
                (0x10000, 0x20000, 1),
                (0x10000, 0x30000, 1),
                (0x18000, 0x10000, 2),
                (0x10000, 0x20000, 2),
                (0x10000, 0x30000, 2),
            ]
        );
        // A budget that is not a whole number of chunks is rounded up to one.
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK + 1));
        let s = check(&mut c, &base, &fs).report().code.unwrap();
        assert_eq!((s.verified_bytes, s.checks_per_sweep), (0x20000, 2));
        // Unlimited: everything, every check.
        let mut c = Checker::with_code_budget(CodeBudget::UNLIMITED);
        for n in 1..3 {
            let s = check(&mut c, &base, &fs).report().code.unwrap();
            assert_eq!((s.verified_bytes, s.checks_per_sweep, s.sweeps), (0x38000, 1, n));
        }
    }

    #[test]
    fn a_flipped_bit_is_found_when_the_sweep_reaches_it_and_stays_found_until_it_is_back() {
        let good = process(MAPS, |_, _| {});
        let flipped = process(MAPS, |app, _| app[0x20000 + 0x123] ^= 0x10);
        let base = baseline(&good);
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK));
        assert!(check(&mut c, &base, &flipped).is_ok(), "chunk 1 is intact");
        assert!(check(&mut c, &base, &flipped).is_ok(), "chunk 2 is intact");
        let v = check(&mut c, &base, &flipped);
        let t = texts(&v);
        assert_eq!(t.len(), 1, "{t:#?}");
        assert!(
            t[0].starts_with("code of /bin/app @0x0+0x20000 sha256 ") && t[0].ends_with(" (chunk 3 of 3)"),
            "{t:#?}"
        );
        let a = &v.anomalies()[0];
        assert_eq!(a.expected, base.digest(Subsystem::Code).unwrap());
        // The sweep moves on to libx, and the suspect is re-read: still drifted,
        // with the same digest (a confirming re-read sees what the first saw).
        let again = check(&mut c, &base, &flipped);
        assert_eq!(again.anomalies().first().map(|x| x.actual), Some(a.actual));
        let s = again.report().code.unwrap();
        assert_eq!((s.drifted_chunks, s.verified_bytes), (1, 0x18000));
        // Flipped back: the re-read suspect recovers.
        let v = check(&mut c, &base, &good);
        assert!(v.is_ok(), "{:#?}", v.anomalies());
        assert_eq!(v.report().code.unwrap().drifted_chunks, 0);
    }

    #[test]
    fn only_mappings_present_then_and_now_are_compared() {
        let base = baseline(&process(MAPS, |_, _| {}));
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK));
        // A library loaded since the baseline: not read, not an alarm.
        let loaded = format!("{MAPS}60000-70000 r-xp 00000000 fe:01 13 /lib/new.so\n");
        let v = check(&mut c, &base, &process(&loaded, |_, _| {}));
        assert!(v.is_ok());
        assert_eq!(v.report().code.unwrap().total_bytes, 0x38000);
        // libx replaced by another file (another inode) with other bytes:
        // memory-maps reports it; code compares only /bin/app.
        let replaced = MAPS.replace("fe:01 12 /lib/libx.so", "fe:01 99 /lib/libx.so");
        let fs = process(&replaced, |_, lib| lib[0] ^= 1);
        for _ in 0..5 {
            let v = check(&mut c, &base, &fs);
            assert!(v.is_ok(), "{:#?}", v.anomalies());
            assert_eq!(v.report().code.unwrap().total_bytes, 0x30000);
        }
        // /bin/app gone while the cursor is in it: the sweep goes on with libx.
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK));
        let fs = process(MAPS, |_, _| {});
        check(&mut c, &base, &fs);
        let unmapped: String = MAPS.lines().filter(|l| !l.contains("/bin/app")).map(|l| format!("{l}\n")).collect();
        let v = check(&mut c, &base, &process(&unmapped, |_, _| {}));
        let s = v.report().code.unwrap();
        assert!(v.is_ok());
        assert_eq!((s.total_bytes, s.verified_bytes, s.sweeps), (0x8000, 0x8000, 1));
        // A suspect whose mapping goes away is forgotten.
        let base2 = baseline(&fs);
        let mut c = Checker::with_code_budget(CodeBudget::UNLIMITED);
        assert!(!check(&mut c, &base2, &process(MAPS, |app, _| app[7] ^= 1)).is_ok());
        let v = check(&mut c, &base2, &process(&unmapped, |_, _| {}));
        assert!(v.is_ok() && v.report().code.unwrap().drifted_chunks == 0);
    }

    #[test]
    fn unreadable_code_reads_the_same_however_the_windows_fall() {
        // The mapping is longer than the memory that can be read.
        let short = Procfs::mock_files([
            ("maps".to_owned(), MAPS.as_bytes().to_vec()),
            (format!("mem/{APP:x}"), bytes(1, 0x18000)),
            (format!("mem/{LIB:x}"), bytes(2, 0x8000)),
        ]);
        let base = baseline(&short);
        let Some(Observation::Observed { records, .. }) = base.subsystems.get(&Subsystem::Code) else { panic!() };
        assert!(records[1].value.starts_with("0x8000 bytes sha256 "), "{records:#?}");
        assert_eq!(records[2].value, "unreadable");
        let mut c = Checker::with_code_budget(CodeBudget::bytes(CHUNK));
        for _ in 0..8 {
            let v = check(&mut c, &base, &short);
            assert!(v.is_ok(), "{:#?}", v.anomalies());
        }
    }

    #[test]
    fn suspects_are_reread_first_and_rotate_within_the_budget() {
        let ids: Vec<ChunkId> = (0..6).map(|i| ChunkId { path: "/x".into(), offset: 0, chunk: i * CHUNK }).collect();
        let targets: Vec<(&ChunkId, u64)> = ids.iter().map(|id| (id, CHUNK)).collect();
        let suspects = |id: &ChunkId| [1, 3, 5].iter().any(|&i| &ids[i] == id);
        let none = |_: &ChunkId| false;
        let mut p = Progress::default();
        // Budget of two chunks: two suspects, then one chunk of the sweep.
        let budget = CodeBudget::bytes(2 * CHUNK);
        assert_eq!(plan(&mut p, &suspects, budget, &targets), [0, 1, 3]);
        assert_eq!(plan(&mut p, &suspects, budget, &targets), [1, 5]);
        assert_eq!(plan(&mut p, &suspects, budget, &targets), [2, 3, 5]);
        assert_eq!(p.cursor.as_ref(), Some(&ids[2]));
        // Nothing comparable: nothing read, the cursor stays.
        assert!(plan(&mut p, &none, budget, &[]).is_empty());
        // Past the end: the sweep wraps and counts.
        let mut p = Progress { cursor: Some(ids[5].clone()), ..Progress::default() };
        assert_eq!(plan(&mut p, &none, CodeBudget::bytes(1), &targets[..3]), [0]);
        assert_eq!(p.sweeps, 1);
    }

    #[test]
    fn a_mapping_split_since_the_baseline_is_read_where_its_file_bytes_are() {
        let base = baseline(&process(MAPS, |_, _| {}));
        // An mprotect of one page of /bin/app's code split its mapping in three.
        let split = MAPS.replace(
            "1000-31000 r-xp 00000000 fe:01 11 /bin/app\n",
            "1000-21000 r-xp 00000000 fe:01 11 /bin/app\n\
             21000-22000 r-xp 00020000 fe:01 11 /bin/app\n\
             22000-31000 r-xp 00021000 fe:01 11 /bin/app\n",
        );
        let mut c = Checker::with_code_budget(CodeBudget::UNLIMITED);
        let v = check(&mut c, &base, &process(&split, |_, _| {}));
        assert!(v.is_ok(), "{:#?}", v.anomalies());
        assert_eq!(v.report().code.unwrap().total_bytes, 0x38000);
        let v = check(&mut c, &base, &process(&split, |app, _| app[0x20123] ^= 4));
        let t = texts(&v);
        assert!(t.len() == 1 && t[0].starts_with("code of /bin/app @0x0+0x20000 "), "{t:#?}");
        // One page made writable (not code): the chunk holding it is not
        // mapped whole as code, and not compared (memory-maps' finding).
        let hole = split.replace("21000-22000 r-xp", "21000-22000 rw-p");
        let v = check(&mut c, &base, &process(&hole, |app, _| app[0x20123] ^= 4));
        assert!(v.is_ok(), "{:#?}", v.anomalies());
        assert_eq!(v.report().code.unwrap().total_bytes, 0x28000);
    }

    /// [`process`], with a page map: every page of the code is the page
    /// cache's, but those at the addresses in `own`.
    fn paged(own: &[u64], edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> Procfs {
        let (mut app, mut lib) = (bytes(1, 0x30000), bytes(2, 0x8000));
        edit(&mut app, &mut lib);
        let (present, file) = (1u64 << 63, 1u64 << 61);
        let map: Vec<u8> = (0..0x48u64)
            .flat_map(|p| (if own.contains(&(p * 0x1000)) { present | 7 } else { present | file | 7 }).to_le_bytes())
            .collect();
        Procfs::mock_files([
            ("maps".to_owned(), MAPS.as_bytes().to_vec()),
            (format!("mem/{APP:x}"), app),
            (format!("mem/{LIB:x}"), lib),
            ("pagemap".to_owned(), map),
        ])
    }

    #[test]
    fn shared_code_is_read_once_a_round_and_a_process_s_own_pages_by_itself() {
        let shared = crate::shared::Shared::new();
        let base = baseline(&paged(&[], |_, _| {}));
        let sharing = || Checker::with_code_budget(CodeBudget::UNLIMITED).sharing(&shared);
        let (mut a, mut b, mut c) = (sharing(), sharing(), sharing());
        let figures = |v: &Verdict| {
            let s = v.report().code.unwrap();
            (s.verified_bytes, s.read_bytes, s.shared_bytes, s.private_pages)
        };
        for _ in 0..2 {
            shared.begin_round();
            let v = check(&mut a, &base, &paged(&[], |_, _| {}));
            assert!(v.is_ok(), "{:#?}", v.anomalies());
            assert_eq!(figures(&v), (0x38000, 0x38000, 0, 0), "the first of the round reads");
            let v = check(&mut b, &base, &paged(&[], |_, _| {}));
            assert!(v.is_ok(), "{:#?}", v.anomalies());
            assert_eq!(figures(&v), (0x38000, 0, 0x38000, 0), "the second reads nothing");
        }
        assert_eq!(shared.code().hashed(), 2 * 0x38000);

        // A page of c's own, written: c reads that chunk, and only that one.
        let own = APP + 0x21000;
        let v = check(&mut c, &base, &paged(&[own], |app, _| app[0x21123] ^= 0x10));
        assert_eq!(figures(&v), (0x38000, 0x10000, 0x28000, 1));
        let t = texts(&v);
        assert!(t.len() == 1 && t[0].ends_with("(chunk 3 of 3; in 1 page of this process's own)"), "{t:#?}");
        // The others are not concerned.
        let v = check(&mut b, &base, &paged(&[], |_, _| {}));
        assert!(v.is_ok(), "{:#?}", v.anomalies());

        // A bit flipped in the page cache: every process sees it, one reads it.
        shared.begin_round();
        let (mut a, mut b) = (sharing(), sharing());
        let flipped = || paged(&[], |_, lib| lib[0x4321] ^= 0x01);
        let va = check(&mut a, &base, &flipped());
        let vb = check(&mut b, &base, &flipped());
        assert_eq!((figures(&va).1, figures(&vb).1), (0x38000, 0));
        for v in [va, vb] {
            let t = texts(&v);
            assert_eq!(t.len(), 1, "{t:#?}");
            assert!(
                t[0].ends_with(
                    "(chunk 1 of 1; in the page cache: the shared copy of code file /lib/libx.so dev fe:01 inode 12, \
                     for every process that maps it)"
                ),
                "{t:#?}"
            );
        }
        // The confirming re-read is fresh: its own memory, whatever the round kept.
        let v = check(&mut b, &base, &flipped());
        assert_eq!(figures(&v).1, 0x38000);
        assert!(!v.is_ok());
        // A page map that cannot be read: everything is read as before.
        let mut d = sharing();
        let v = check(&mut d, &base, &process(MAPS, |_, _| {}));
        assert_eq!(figures(&v), (0x38000, 0x38000, 0, 0));
    }

    #[test]
    fn budgets_parse_and_print() {
        for (text, want) in [
            ("4MiB", Some(4 << 20)),
            ("4 MiB", Some(4 << 20)),
            ("512K", Some(512 << 10)),
            ("1g", Some(1 << 30)),
            ("100", Some(100)),
            ("0", None),
            ("unlimited", None),
        ] {
            assert_eq!(text.parse::<CodeBudget>().unwrap().limit(), want, "{text}");
        }
        for bad in ["", "x", "4 parsecs", "1.5MiB", "-4"] {
            assert!(bad.parse::<CodeBudget>().is_err(), "{bad}");
        }
        for b in [CodeBudget::DEFAULT, CodeBudget::UNLIMITED, CodeBudget::bytes(100), CodeBudget::bytes(3 << 30)] {
            assert_eq!(b.to_string().parse::<CodeBudget>().unwrap(), b);
        }
        assert_eq!(CodeBudget::bytes(CHUNK).checks_per_sweep(10), 10);
        assert_eq!(CodeBudget::bytes(1).checks_per_sweep(10), 10);
        assert_eq!(CodeBudget::bytes(3 * CHUNK).checks_per_sweep(10), 4);
        assert_eq!(CodeBudget::UNLIMITED.checks_per_sweep(10), 1);
        assert_eq!(CodeBudget::UNLIMITED.checks_per_sweep(0), 0);
    }
}
