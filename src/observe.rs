//! Reading a target's subsystems into canonical forms: which files each
//! subsystem needs, read once per check and fed to the pure canonicalizers.
//!
//! | subsystem       | reads                                                         |
//! |-----------------|---------------------------------------------------------------|
//! | `memory-maps`   | `maps`                                                        |
//! | `seccomp`       | `task/*/status` (shared with `credentials`)                   |
//! | `credentials`   | `task/*/status` (shared with `seccomp`)                       |
//! | `cgroups`       | `task/*/cgroup` (shared with `cgroup-limits`)                 |
//! | `cgroup-limits` | `task/*/cgroup`, then each distinct cgroup and its ancestors: the directory listing and the limit files in it |
//! | `namespaces`    | the `ns` listing and a `stat` of each entry                   |
//! | `mounts`        | `mountinfo`                                                   |
//! | `limits`        | `limits`                                                      |
//! | `lsm`           | `attr/current`, `attr/exec`, `attr/apparmor/*`, `attr/smack/current` |
//! | `kernel`        | the sysctls of `canon::kernel::SYSCTLS`, `lockdown` and `lsm` of securityfs, `modules`, `cmdline` |
//! | `kernel-taint`  | `/proc/sys/kernel/tainted`                                    |
//! | `seccomp-filters` | `task/*/status`, then the filter programs of each thread that has filters, with ptrace ([`filters`]) |
//! | `code`          | `maps` (shared with `memory-maps`), then the code mappings through `mem` ([`code`]) |
//!
//! The threads (`task/*`) are the listing of `task`, except for a process
//! whose main thread's `status` says `Threads: 1`: that process is its main
//! thread, and is not listed ([`Observer::list_threads`]).
//!
//! A subsystem costs only when it is asked for. A file that cannot be read
//! makes its subsystem *unobservable* (permission denied, absent on this
//! kernel) or fails the whole observation (the process is gone); it is never
//! read as empty. A subsystem of the other scope (the node's `kernel` asked
//! of a process, a process's `maps` asked of the node), or an `lsm` where no
//! security module labels processes, is *not applicable*.
//!
//! `seccomp-filters` and `code` have modules of their own: they go beyond
//! reading files (ptrace, `/proc/PID/mem`), and a check of them is compared
//! with its baseline as it is read ([`Observer::observe_against`]).

pub(crate) mod code;
pub(crate) mod filters;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::canon::namespaces::NsState;
use crate::canon::{Canon, cgroup, cgroup_limits, kernel, limits, lsm, maps, mounts, namespaces, status};
use crate::observation::Observation;
use crate::{Digest, Error, Scope, Source, Subsystem};
use code::CodeSweep;
use filters::Stops;

/// The result of observing one subsystem.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// Its canonical form.
    Observed(Canon),
    /// Why it could not be read.
    Unobservable(Arc<str>),
    /// Why the target does not have it.
    NotApplicable(Arc<str>),
}

/// How one subsystem's observation ended, before it becomes a [`Slot`].
#[derive(Debug, Clone)]
enum End {
    Observed,
    Unobservable(Arc<str>),
    NotApplicable(Arc<str>),
}

thread_local! {
    /// This thread's working buffers, lent to each observation made on it
    /// (see [`Observer::observe_inner`]).
    static SCRATCH: std::cell::RefCell<Scratch> = const {
        std::cell::RefCell::new(Scratch {
            buf: Vec::new(),
            arena: Vec::new(),
            lead: Vec::new(),
            canons: Vec::new(),
            names: Vec::new(),
        })
    };
}

/// What an observation works in and leaves nothing in: one set a thread,
/// however many targets it observes (a node of 500 processes held 500 sets).
struct Scratch {
    /// The read buffer.
    buf: Vec<u8>,
    /// The texts of every thread of a per-thread pass.
    arena: Vec<u8>,
    /// The main thread's status.
    lead: Vec<u8>,
    /// The forms being made (moved into the observer's slots at its end).
    canons: Vec<(Subsystem, Canon)>,
    /// The names of a directory listing.
    names: Vec<String>,
}

/// Buffers reused from one observation to the next.
///
/// Its methods for what a steady cycle of the seed subsystems does not run
/// (the other subsystems' reads, a changed `maps`, canonicalizing threads)
/// are `#[inline(never)]`: a watch wakes on cold caches, every page of code
/// a cycle runs costs a miss, and code inlined but not run spreads the code
/// that is run over more pages (BENCHMARKS.md, "fewer pages a cycle").
#[derive(Debug, Default)]
pub(crate) struct Observer {
    buf: Vec<u8>,
    tids: Vec<u32>,
    rel: String,
    names: Vec<String>,
    /// Distinct (hierarchy, cgroup) of the threads and their ancestors.
    cgroups: Vec<(String, String)>,
    /// The last accepted thread's `cgroup` text.
    last_cgroup: Vec<u8>,
    slots: Vec<(Subsystem, Slot)>,
    /// A one-shot fault to inject into the next observation (`fdir selftest`).
    fault: Option<u64>,
    /// The code mappings of the last `maps` read.
    mappings: Vec<crate::canon::code::CodeMapping>,
    /// How long `seccomp-filters` kept threads stopped in the last observation.
    stops: Stops,
    /// The main thread's `status` text, read before the threads are listed
    /// (see [`Observer::list_threads`]), and its tid: the status pass takes
    /// it from here instead of reading it again.
    lead: Vec<u8>,
    lead_tid: Option<u32>,
    /// The main thread's status inputs, where the source has them and the
    /// process has no other thread (see [`Observer::list_threads`]): the
    /// status pass's memo key in place of its text.
    lead_inputs: Option<Digest>,
    /// Status passes keyed by inputs so far (see [`STATUS_TEXT_EVERY`]).
    inputs_passes: u32,
    /// The maps passes keyed by the process's maps inputs so far (see
    /// [`MAPS_TEXT_EVERY`]).
    maps_passes: u32,
    /// The digest of the mount inputs (`source::mnts`) the last `mountinfo`
    /// read agreed with, which the `mountinfo` memo's form was made from;
    /// `None` where it did not (or there were none).
    mounts_key: Option<Digest>,
    /// The mounts passes keyed by mount inputs so far (see
    /// [`MOUNTS_TEXT_EVERY`]).
    mounts_passes: u32,
    /// Passes left before the maps inputs are asked for again, after the
    /// source made none (a process of more mappings than a copy holds:
    /// its walk would be made for nothing each pass).
    maps_inputs_wait: u32,
    /// The texts of every thread of a per-thread pass, and their spans.
    arena: Vec<u8>,
    spans: Vec<(u32, std::ops::Range<usize>)>,
    /// The last observation's inputs and the forms they gave (see [`Memo`]).
    memo_maps: Memo,
    memo_status: Memo,
    memo_cgroup: Memo,
    memo_files: Vec<(&'static str, Memo)>,
    /// The last namespaces resolved, as the bytes of their names and
    /// identities ([`Observer::namespaces`]), and the form they gave.
    memo_ns: Memo,
    /// The identities of the namespaces being resolved, in `ns_names`'
    /// order (kept for the next observation: no allocation).
    ns_states: Vec<NsState>,
    /// The last `cgroup-limits` read, as its log ([`LimitLog`]): its
    /// SHA-256 and the form it gave.
    memo_limits: Memo,
    /// What that read was made of where its texts were made from a record
    /// of cgroup values (alone in a watch): the next pass that finds the
    /// same takes its form ([`LimitsMadeOf`]; boxed: every target of a
    /// node has an observer, and only a watch of one process fills it).
    limits_made_of: Option<Box<LimitsMadeOf>>,
    /// Whether this observation must not use the memos: the read after a
    /// drift (the confirming re-read, and every read while drift lasts).
    fresh: bool,
    /// Whether to keep the digest of each source text (for a baseline:
    /// [`crate::Snapshot::sources`]), and the last observation's.
    keep_sources: bool,
    maps_source: Option<Digest>,
    /// With `keep_sources`, the status inputs of a process of one thread
    /// whose `status` text they agreed with (a baseline's source of its
    /// `seccomp` and `credentials` forms).
    status_source: Option<Digest>,
    /// Whether this observer has observed before: memos are stored only
    /// from the second observation on (a one-shot check never uses them).
    observed_before: bool,
    /// Whether the next observation may skip asking whether a thread unlike
    /// the one before it is exiting (see [`Observer::set_quick`]).
    quick: bool,
    /// How many threads of the last observation looked unlike the one
    /// before them and were not asked whether they were exiting.
    unasked: usize,
    /// The objects the targets of a monitor share, read once a round
    /// (`shared.rs`); `None` for a target checked on its own.
    shared: Option<std::sync::Arc<crate::shared::Shared>>,
    /// The monitor whose code chunks a baseline takes (`code_pages.rs`),
    /// where nothing else of it is shared.
    code_pages: Option<std::sync::Arc<crate::shared::Shared>>,
    /// The names `ns` listed in the last observation, one a line: the same
    /// for every process of a kernel (its kinds of namespace), so listed
    /// again only by a fresh observation (`namespaces`).
    ns_names: String,
    /// The key of a form shared in the round ([`Observer::round_form`]).
    form_key: Vec<u8>,
    /// Which of [`lsm::ATTRS`] (bit i: the i-th) answered that no security
    /// module provides it (a file this kernel does not have, or `EINVAL`):
    /// fixed at boot, so asked again only by a fresh observation; and the
    /// first such answer, the reason given when none provides any.
    lsm_absent: u8,
    lsm_refusal: Option<String>,
    /// The reason given for no label when every attribute is known absent,
    /// made once of `lsm_refusal` (a steady cycle of a node without a
    /// labelling module allocates and compares nothing for it).
    lsm_reason: Option<Arc<str>>,
    /// The mount namespace `namespaces` found in this observation, so that
    /// `mounts` does not ask for it again.
    ns_mnt: Option<crate::FileId>,
    /// The subsystems whose text changed since the observation before this
    /// one (a memo there, missed): their working forms keep their buffers
    /// (see [`Observer::changing`]).
    changing: Vec<Subsystem>,
    /// Working lists of an observation, kept for the next.
    wanted: Vec<Subsystem>,
    canons: Vec<(Subsystem, Canon)>,
    outcome: Vec<(Subsystem, End)>,
}

/// The raw text a group of subsystems was last canonicalized from, kept as
/// its SHA-256 ([`memo_key`]), and the forms it gave. Canonicalization is a
/// pure function of the text, so the same text gives the same forms, and a
/// check of an unchanged process costs its reads and one hash of them.
/// "The same text" is decided by SHA-256 of the raw bytes, the hash that
/// already decides drift: a text that differs but hashes the same would be
/// a SHA-256 collision (a keyed 64-bit hash would not do: a process can
/// write what its own files say, and 2^32 tries find a collision). 32 bytes
/// a memo instead of the text: the texts were most of what a watch of an
/// idle node held (BENCHMARKS.md). A read after a drift never uses the memo,
/// so a fault in the memo itself shows only once, as a transient.
#[derive(Debug, Default)]
struct Memo {
    valid: bool,
    raw: Option<Digest>,
    /// The digest of the texts the forms were made from, where the memo is
    /// keyed by something else (a status pass's inputs): the pass that
    /// reads the texts again and finds these needs no canonicalization.
    text: Option<Digest>,
    forms: Vec<(Subsystem, Canon)>,
    /// Whether the cgroup pass also collected the cgroup set.
    collected: bool,
    /// Whether the maps pass also found the code mappings.
    code: bool,
    /// The digest of the baseline memory-maps form the remembered form was
    /// made comparable with ([`maps::project`]), if any: a hit needs the
    /// same one (a re-taken baseline, after an exec, is another).
    projected: Option<Digest>,
    /// How many threads the remembered pass did not ask about (a quick
    /// form: a hit counts them again, so the checker still knows).
    unasked: usize,
}

/// The longest image a form is shared in a round by ([`Observer::round_form`]):
/// a process's namespace identities and limit values are a few hundred bytes;
/// a whole file is not kept as a key.
const ROUND_FORM_MAX: usize = 512;

/// What [`Observer::round_form`] found.
enum RoundForm {
    /// Another target made the form of the same image, and it is the
    /// baseline's: known by that digest alone.
    Known(Canon),
    /// Not there (or not the baseline's): the form made is kept for the
    /// round ([`Observer::keep_round_form`]).
    ToKeep,
    /// Not shared: not a first observation against a baseline in a round
    /// of many targets, or an image too long.
    NotShared,
}

/// The key of a memo: the SHA-256 of the raw text, computed only by an
/// observer that stores memos (from its second observation on: a one-shot
/// check hashes nothing more).
/// A status pass keyed by the process's status inputs (the task table's
/// record of the kernel state its fields are printed from) reads the text
/// once every this many passes (which one depends on the pid): a check of the record against the text
/// it stands for, and a bound on how long a field printed from state the
/// record does not hold (the speculation controls' system-wide modes) can
/// go unread.
pub(crate) const STATUS_TEXT_EVERY: u32 = 10;

/// A maps pass keyed by the process's maps inputs (the kernel's copy of
/// its mappings, `source::vmas`) reads the text once every this many
/// passes (which one depends on the pid): a check of the copy against the
/// text, and a bound on how long a change the copy does not hold (a
/// rename to a name of the same salted hash, length and address; the path
/// of a file deeper than the path's walk) can go unread.
pub(crate) const MAPS_TEXT_EVERY: u32 = 10;

/// What a `cgroup-limits` read was made of, where most of its texts were
/// made from the record of cgroup values (`source::cgvalues`): that
/// record's digest, the cgroups read, and the files read from their files
/// (those the record does not make) with the digest of their texts. A pass
/// that finds the same record, cgroups and texts would make the same log,
/// so it takes the memo's form without making the texts; every
/// [`LIMITS_LISTED_EVERY`]-th pass reads them all (the listing of each
/// directory's files, which the record does not hold, included).
#[derive(Debug)]
struct LimitsMadeOf {
    record: Digest,
    cgroups: Digest,
    read: Vec<(usize, String)>,
    texts: Digest,
    /// Passes taken so since the last whole read.
    passes: u32,
}

/// See [`LimitsMadeOf`].
pub(crate) const LIMITS_LISTED_EVERY: u32 = 10;

/// A mounts pass keyed by the process's mount inputs (the kernel's copy of
/// its mount namespace, `source::mnts`) reads the text once every this
/// many passes (which one depends on the pid): a check of the copy against
/// the text, and a bound on how long a change the copy does not hold (the
/// bytes of a source's name or of a filesystem's own options, flipped in
/// place) can go unread.
pub(crate) const MOUNTS_TEXT_EVERY: u32 = 10;

/// Counts a pass keyed by inputs in `passes`, and says whether it is the
/// one in `every` that reads the text (which one depends on the process's
/// `leader` pid, so that a node's processes do not all read at once).
fn text_due(passes: &mut u32, leader: Option<u32>, every: u32) -> bool {
    *passes = passes.wrapping_add(1);
    passes.wrapping_add(leader.unwrap_or(0) % every).is_multiple_of(every)
}

thread_local! {
    /// The maps inputs of the observation under way on this thread, and
    /// those of its agreement check: a process's copy is needed only while
    /// its observation runs (its digest keys the memo), so the checking
    /// threads' two buffers serve every target (500 targets would
    /// otherwise hold 2 MB of copies).
    static MAPS_INPUTS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// `f` of this thread's two buffers of maps inputs (`false` if they are in
/// use: not re-entered).
fn with_maps_inputs<R: Default>(f: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>) -> R) -> R {
    MAPS_INPUTS.with(|m| match m.try_borrow_mut() {
        Ok(mut m) => {
            let (now, again) = &mut *m;
            f(now, again)
        }
        Err(_) => R::default(),
    })
}

fn memo_key(observed_before: bool, raw: &[u8]) -> Option<Digest> {
    observed_before.then(|| Digest::of(raw))
}

impl Memo {
    fn hit(&self, fresh: bool, key: Option<Digest>) -> bool {
        !fresh && self.valid && key.is_some() && self.raw == key
    }

    /// Copies the remembered forms of the subsystems `touched` into `canons`;
    /// false if one is missing, or is remembered by its digest alone and
    /// that is not `baseline`'s (see [`Memo::store`]).
    fn restore(
        &self,
        canons: &mut [(Subsystem, Canon)],
        touched: impl Fn(Subsystem) -> bool,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> bool {
        for (sub, canon) in canons.iter_mut().filter(|(s, _)| touched(*s)) {
            match self.forms.iter().find(|(s, _)| s == sub) {
                Some((_, f)) if restorable(f, *sub, baseline) => restore_form(canon, f),
                _ => return false,
            }
        }
        true
    }

    /// Remembers the forms of the subsystems `touched` as made from the text
    /// whose digest is `key`. A form equal to `baseline`'s is remembered by
    /// its digest alone ([`Canon::known`]): the baseline holds its records,
    /// and a process that matches its baseline (every idle one) keeps no
    /// second copy of them. Such a form is restored only while it is that
    /// baseline's: one that differs must explain how, from records.
    /// Returns whether it replaced a valid memo (the text changed since).
    #[inline(never)]
    fn store(
        &mut self,
        key: Digest,
        canons: &mut [(Subsystem, Canon)],
        touched: impl Fn(Subsystem) -> bool,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> bool {
        let replaced = self.valid;
        self.raw = Some(key);
        let mut kept = 0;
        for (sub, canon) in canons.iter_mut().filter(|(s, _)| touched(*s)) {
            // Finished and hashed once: a restored form carries its digest.
            let digest = canon.digest(*sub);
            let known = baseline.and_then(|b| observed_digest(b, *sub)) == Some(digest);
            match self.forms.get_mut(kept) {
                Some((s, f)) => {
                    *s = *sub;
                    remember(f, canon, *sub, digest, known);
                }
                None => {
                    let mut f = Canon::new();
                    remember(&mut f, canon, *sub, digest, known);
                    self.forms.push((*sub, f));
                }
            }
            kept += 1;
        }
        self.forms.truncate(kept);
        self.valid = true;
        replaced
    }
}

/// Makes `memo` stand for `canon` (its digest `digest`): the digest alone
/// when `known` (it is the baseline's), else a copy.
fn remember(memo: &mut Canon, canon: &Canon, sub: Subsystem, digest: Digest, known: bool) {
    if known {
        *memo = Canon::known(sub, digest);
    } else {
        memo.copy_from(canon);
    }
}

/// Makes the working form `canon` the remembered form `memo`. One known by
/// its digest alone takes the working form's place, buffers and all: a
/// process that matches its baseline holds no records outside it (a text
/// that changes every cycle never hits a memo, and keeps its buffers).
fn restore_form(canon: &mut Canon, memo: &Canon) {
    if memo.is_empty() {
        *canon = memo.clone();
    } else {
        canon.copy_from(memo);
    }
}

/// Whether a remembered form may be restored for a check against
/// `baseline`: a form with records always; one by its digest alone (no
/// records) only if that is the baseline's digest.
fn restorable(memo: &Canon, sub: Subsystem, baseline: Option<&BTreeMap<Subsystem, Observation>>) -> bool {
    !memo.is_empty() || memo.known_digest(sub) == baseline.and_then(|b| observed_digest(b, sub))
}

/// What a check compares against: its baseline's subsystems and the digests
/// of the text they were made from (`Snapshot::subsystems`,
/// `Snapshot::sources`), and the code sweep's state.
pub(crate) struct Against<'a> {
    pub(crate) subsystems: &'a BTreeMap<Subsystem, Observation>,
    pub(crate) sources: &'a BTreeMap<Subsystem, Digest>,
    pub(crate) code: &'a mut CodeSweep,
}

/// The digest of `subsystem` in a baseline's subsystems, if it was observed.
fn observed_digest(subsystems: &BTreeMap<Subsystem, Observation>, subsystem: Subsystem) -> Option<Digest> {
    subsystems.get(&subsystem)?.digest()
}

impl Against<'_> {
    /// The baseline's digest of `subsystem`, if it was observed.
    fn digest(&self, subsystem: Subsystem) -> Option<Digest> {
        observed_digest(self.subsystems, subsystem)
    }

    /// The baseline's digest of `subsystem`, if `raw` is the text its form
    /// was made from.
    fn form_of(&self, subsystem: Subsystem, raw: &[u8]) -> Option<Digest> {
        let source = self.sources.get(&subsystem)?;
        let form = self.digest(subsystem)?;
        (crate::canon::source_digest(subsystem, raw) == *source).then_some(form)
    }
}

/// The source a baseline keeps for the `seccomp` or `credentials` form of
/// a process whose status inputs (digest `inputs`) agreed with the text
/// the form was made from.
fn status_source_digest(sub: Subsystem, inputs: Digest) -> Digest {
    inputs_source_digest(sub, b"status inputs v1", inputs)
}

/// The source a baseline keeps for the `memory-maps` form of a process
/// whose maps inputs (digest `inputs`: a copy whose every file's path was
/// walked) agreed with the text the form was made from.
fn maps_source_digest(inputs: Digest) -> Digest {
    inputs_source_digest(Subsystem::MemoryMaps, b"maps inputs v1\0\0", inputs)
}

/// The source digest of inputs (not a text): `tag` and their digest.
fn inputs_source_digest(sub: Subsystem, tag_of: &[u8; 16], inputs: Digest) -> Digest {
    let mut raw = [0u8; 48];
    if let Some((tag, rest)) = raw.split_first_chunk_mut::<16>() {
        *tag = *tag_of;
        if let Some(d) = rest.first_chunk_mut::<32>() {
            *d = *inputs.as_bytes();
        }
    }
    crate::canon::source_digest(sub, &raw)
}

/// The digest of the baseline's memory-maps form a check compares with, if
/// any (the memo of `maps` holds forms made comparable with it).
fn maps_baseline(against: Option<&Against<'_>>) -> Option<Digest> {
    against.and_then(|a| a.digest(Subsystem::MemoryMaps))
}

/// The reason a subsystem is unobservable, if the error is of that kind
/// (rather than one that fails the whole check).
fn unobservable_reason(e: &Error) -> Option<String> {
    match e {
        Error::PermissionDenied { .. }
        | Error::Unavailable { .. }
        | Error::Traced { .. }
        | Error::NotStopped { .. }
        | Error::NeedsPrivilege { .. } => Some(e.to_string()),
        Error::NotFound { path } => Some(format!("{} does not exist on this kernel", path.display())),
        _ => None,
    }
}

/// Whether a read failed because no security module provides the attribute.
fn no_lsm(e: &Error) -> bool {
    match e {
        Error::NotFound { .. } => true,
        Error::Io { source, .. } => {
            matches!(source.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP))
        }
        _ => false,
    }
}

/// Reads `task/TID/NAME` into `buf` (its path left in `rel`). `Ok(false)`:
/// the thread has gone since it was listed — its file answers ESRCH (the
/// process may live on), or is missing, which is kept in `absent` for the
/// caller to report if no thread at all could be read (the file may not
/// exist on this kernel).
pub(crate) fn read_thread_file<S: Source + ?Sized>(
    src: &S,
    tid: u32,
    name: &str,
    rel: &mut String,
    buf: &mut Vec<u8>,
    absent: &mut Option<Error>,
) -> Result<bool, Error> {
    rel.clear();
    // The main thread's files are the process's own (`/proc/PID/status` is
    // `/proc/PID/task/PID/status`), two lookups shorter to open.
    if src.leader() == Some(tid) {
        rel.push_str(name);
    } else {
        let _ = write!(rel, "task/{tid}/{name}");
    }
    match src.read(rel, buf) {
        Ok(()) => Ok(true),
        Err(e @ Error::NotFound { .. }) => {
            *absent = Some(e);
            Ok(false)
        }
        Err(Error::Gone { .. }) if src.alive() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Which per-thread file a pass reads.
#[derive(Clone, Copy)]
enum ThreadFile {
    Status,
    Cgroup,
}

impl ThreadFile {
    /// Its name under `task/TID/`.
    fn name(self) -> &'static str {
        match self {
            ThreadFile::Status => "status",
            ThreadFile::Cgroup => "cgroup",
        }
    }

    /// Whether it is read for `sub`'s canonical form.
    fn feeds(self, sub: Subsystem) -> bool {
        match self {
            ThreadFile::Status => matches!(sub, Subsystem::Seccomp | Subsystem::Credentials),
            ThreadFile::Cgroup => sub == Subsystem::Cgroups,
        }
    }
}

/// Why a subsystem of the other scope is not applicable to a target.
fn scope_reason(sub: Subsystem) -> Arc<str> {
    match sub.scope() {
        Scope::Node => format!("{sub} is node-wide state: observed on the node target, not per process").into(),
        Scope::Process => format!("{sub} is per-process state: the node target has none").into(),
    }
}

impl Observer {
    pub(crate) fn new() -> Observer {
        Observer::default()
    }

    /// Takes the objects other targets of the same monitor read this round
    /// instead of reading them again, and keeps what it reads for them.
    pub(crate) fn share(&mut self, shared: std::sync::Arc<crate::shared::Shared>) {
        self.shared = Some(shared);
    }

    /// Shares only the code chunks of a monitor's round (a baseline taken
    /// in a monitor: the page cache's copy of a file is hashed once).
    pub(crate) fn share_code(&mut self, shared: std::sync::Arc<crate::shared::Shared>) {
        self.code_pages = Some(shared);
    }

    /// The store this observer shares, if any.
    pub(crate) fn shared(&self) -> Option<&std::sync::Arc<crate::shared::Shared>> {
        self.shared.as_ref()
    }

    /// Takes this thread's read buffer and arena (or gives them back: the
    /// same swap, at the start and the end of an observation).
    fn swap_scratch(&mut self) {
        SCRATCH.with(|cell| {
            if let Ok(mut s) = cell.try_borrow_mut() {
                std::mem::swap(&mut self.buf, &mut s.buf);
                std::mem::swap(&mut self.arena, &mut s.arena);
                std::mem::swap(&mut self.lead, &mut s.lead);
                std::mem::swap(&mut self.canons, &mut s.canons);
                std::mem::swap(&mut self.names, &mut s.names);
            }
        });
    }

    /// Flips a bit in one canonical form of the next observation.
    pub(crate) fn inject(&mut self, seed: u64) {
        self.fault = Some(seed);
    }

    /// The fault the next observation will inject, if any.
    pub(crate) fn pending_fault(&self) -> Option<u64> {
        self.fault
    }

    /// Whether the next observation may take a thread's partial state for
    /// its state, without asking whether it is exiting (one `stat` read a
    /// thread, the first of each process included). A quick observation is
    /// never a missed drift, only perhaps a false one: it keeps every tuple
    /// read, a superset of the careful form's. So the checker observes
    /// quickly, and again carefully if a quick form differs from the
    /// baseline while threads went unasked ([`Observer::unasked`]). Reset
    /// to careful after each observation; snapshots are always careful.
    pub(crate) fn set_quick(&mut self, quick: bool) {
        self.quick = quick;
    }

    /// How many threads the last observation did not ask about (0: it was
    /// as careful as a careful one).
    pub(crate) fn unasked(&self) -> usize {
        self.unasked
    }

    /// Whether the next observation must read everything afresh, without the
    /// memos or a task table (set by the checker for the read after a drift).
    pub(crate) fn set_fresh(&mut self, fresh: bool) {
        self.fresh = fresh;
    }

    /// Keep the digest of each source text (an observer that takes a baseline).
    pub(crate) fn keep_sources(&mut self) {
        self.keep_sources = true;
    }

    /// The digests of the texts the last observation's forms were made from,
    /// for the subsystems observed whose form is made from one file alone
    /// (see [`crate::Snapshot::sources`]); empty unless [`Observer::keep_sources`].
    pub(crate) fn sources(&self) -> BTreeMap<Subsystem, Digest> {
        let observed = |sub| self.slots.iter().any(|(s, slot)| *s == sub && matches!(slot, Slot::Observed(_)));
        let maps = self.maps_source.filter(|_| observed(Subsystem::MemoryMaps)).map(|d| (Subsystem::MemoryMaps, d));
        let status = [Subsystem::Seccomp, Subsystem::Credentials].into_iter().filter_map(|sub| {
            self.status_source.filter(|_| observed(sub)).map(|d| (sub, status_source_digest(sub, d)))
        });
        maps.into_iter().chain(status).collect()
    }

    /// The results of the last observation, in subsystem order.
    pub(crate) fn slots(&self) -> &[(Subsystem, Slot)] {
        &self.slots
    }

    /// The results of the last observation, to finish digests in place.
    pub(crate) fn slots_mut(&mut self) -> &mut [(Subsystem, Slot)] {
        &mut self.slots
    }

    /// Takes the canonical form of the previous observation of `sub`, to reuse
    /// its buffers.
    fn take_canon(&mut self, sub: Subsystem) -> Canon {
        let mut c = self
            .slots
            .iter_mut()
            .find(|(s, _)| *s == sub)
            .and_then(|(_, slot)| match slot {
                Slot::Observed(c) => Some(std::mem::take(c)),
                Slot::Unobservable(_) | Slot::NotApplicable(_) => None,
            })
            .unwrap_or_default();
        c.clear();
        c
    }

    /// The results of the last observation (as [`Observer::slots_mut`]), and
    /// the subsystems whose text changed since the observation before it (a
    /// memo of it was there, and missed): a process whose
    /// text changes every cycle (a busy one's `status`). Its working form
    /// then keeps its buffers, so that its next cycle allocates nothing;
    /// others give theirs back once they matched their baseline.
    pub(crate) fn slots_and_changing(&mut self) -> (&mut [(Subsystem, Slot)], &[Subsystem]) {
        (&mut self.slots, &self.changing)
    }

    /// How long `seccomp-filters` kept threads stopped in the last observation.
    pub(crate) fn stops(&self) -> Stops {
        self.stops
    }

    /// Observes `subsystems` of `src`, a target of `scope`, in full,
    /// replacing the previous results: a baseline's read, whose cgroup
    /// control files are read from the files (`tasks::cgroup_files`).
    pub(crate) fn observe<S: Source + ?Sized>(
        &mut self,
        src: &S,
        scope: Scope,
        subsystems: &[Subsystem],
    ) -> Result<(), Error> {
        crate::source::tasks::cgroup_files(|| self.observe_inner(src, scope, subsystems, None))
    }

    /// Observes `subsystems` of `src` for a check against a baseline: `code`
    /// reads a budget's worth and `seccomp-filters` is made comparable with a
    /// degraded baseline (see [`code`] and [`filters`]). A fresh read uses
    /// no task table either: `/proc` is a second source for what it said.
    pub(crate) fn observe_against<S: Source + ?Sized>(
        &mut self,
        src: &S,
        scope: Scope,
        subsystems: &[Subsystem],
        against: Against<'_>,
    ) -> Result<(), Error> {
        crate::source::tasks::bypassed(self.fresh, || self.observe_inner(src, scope, subsystems, Some(against)))
    }

    fn observe_inner<S: Source + ?Sized>(
        &mut self,
        src: &S,
        scope: Scope,
        subsystems: &[Subsystem],
        against: Option<Against<'_>>,
    ) -> Result<(), Error> {
        // The read buffer and the thread arena are the thread's, lent for
        // the observation: one set per thread, however many targets.
        self.swap_scratch();
        self.unasked = 0;
        self.ns_mnt = None;
        self.changing.clear();
        src.begin_observation();
        let result = self.observe_files(src, scope, subsystems, against);
        src.end_observation();
        self.swap_scratch();
        self.observed_before = true;
        self.quick = false;
        result
    }

    fn observe_files<S: Source + ?Sized>(
        &mut self,
        src: &S,
        scope: Scope,
        subsystems: &[Subsystem],
        mut against: Option<Against<'_>>,
    ) -> Result<(), Error> {
        self.stops = Stops::default();
        self.maps_source = None;
        self.status_source = None;
        // The working lists are kept between observations (no allocation in
        // the steady state).
        let mut wanted = std::mem::take(&mut self.wanted);
        wanted.clear();
        wanted.extend_from_slice(subsystems);
        wanted.sort_unstable();
        wanted.dedup();
        let mut canons = std::mem::take(&mut self.canons);
        canons.clear();
        // Exactly as many as asked for (kept for every target of a node).
        canons.reserve_exact(wanted.len());
        self.slots.reserve_exact(wanted.len().saturating_sub(self.slots.len()));
        for &s in &wanted {
            let c = self.take_canon(s);
            canons.push((s, c));
        }
        // The baseline's digests decide which memos keep a form's digest
        // alone (see [`Memo::store`]).
        let baseline = against.as_ref().map(|a| a.subsystems);
        let mut outcome = std::mem::take(&mut self.outcome);
        outcome.clear();
        for &s in wanted.iter().filter(|s| s.scope() != scope) {
            outcome.push((s, End::NotApplicable(scope_reason(s))));
        }
        let has = |s: Subsystem| s.scope() == scope && wanted.contains(&s);

        // `maps` is read once for memory-maps and code.
        let mut code_maps = false;
        // In a watch, the maps inputs first: the same as last time, the
        // same forms, but for every MAPS_TEXT_EVERY-th pass, which reads
        // the text (which pass depends on the pid).
        let asked = (has(Subsystem::MemoryMaps) || has(Subsystem::Code))
            && self.observed_before
            && !self.fresh
            && !self.keep_sources
            && self.maps_inputs_wait == 0;
        self.maps_inputs_wait = self.maps_inputs_wait.saturating_sub(1);
        let inputs_key =
            asked.then(|| with_maps_inputs(|now, _| src.maps_inputs(now).then(|| Digest::of(now)))).flatten();
        if asked && inputs_key.is_none() {
            self.maps_inputs_wait = MAPS_TEXT_EVERY;
        }
        let mut restored = false;
        // A first check of a process whose maps inputs are those its
        // baseline's form was made from (their source), every file's path
        // walked: that form, and no `maps` read. (Not for code, which reads
        // the text for the files it hashes.)
        let maps_known = (has(Subsystem::MemoryMaps)
            && !has(Subsystem::Code)
            && !self.observed_before
            && !self.fresh
            && !self.keep_sources
            && self.fault.is_none())
        .then_some(against.as_ref())
        .flatten()
        .and_then(|a| {
            let (digest, source) = (a.digest(Subsystem::MemoryMaps)?, a.sources.get(&Subsystem::MemoryMaps)?);
            with_maps_inputs(|now, _| {
                (src.maps_inputs(now)
                    && crate::source::vmas::paths_walked(now)
                    && maps_source_digest(Digest::of(now)) == *source)
                    .then_some(digest)
            })
        });
        if let Some(digest) = maps_known {
            put_form(&mut canons, Subsystem::MemoryMaps, Canon::known(Subsystem::MemoryMaps, digest));
            outcome.push((Subsystem::MemoryMaps, End::Observed));
            restored = true;
        }
        // A baseline: the maps inputs before the text, to keep as its
        // source if they agree with it.
        let copied = self.keep_sources
            && has(Subsystem::MemoryMaps)
            && with_maps_inputs(|now, _| src.maps_inputs(now) && crate::source::vmas::paths_walked(now));
        if let Some(key) = inputs_key.filter(|_| !restored)
            && !text_due(&mut self.maps_passes, src.leader(), MAPS_TEXT_EVERY)
            && self.memo_maps.hit(self.fresh, Some(key))
            && self.restore_maps(has(Subsystem::Code), against.as_ref(), &mut canons)
        {
            if has(Subsystem::MemoryMaps) {
                outcome.push((Subsystem::MemoryMaps, End::Observed));
            }
            code_maps = has(Subsystem::Code);
            restored = true;
            // Its descriptor stays open for the pass that reads it.
            src.keep_unread("maps");
        }
        if (has(Subsystem::MemoryMaps) || has(Subsystem::Code)) && !restored {
            match settle(src.read("maps", &mut self.buf))? {
                End::Observed => {
                    if self.keep_sources && has(Subsystem::MemoryMaps) {
                        // The inputs, where the same after the text and
                        // saying what it says; else the text.
                        let inputs = copied.then(|| {
                            with_maps_inputs(|now, again| {
                                (src.maps_inputs(again) && again == now && crate::source::vmas::agrees(now, &self.buf))
                                    .then(|| maps_source_digest(Digest::of(now)))
                            })
                        });
                        self.maps_source = Some(
                            inputs
                                .flatten()
                                .unwrap_or_else(|| crate::canon::source_digest(Subsystem::MemoryMaps, &self.buf)),
                        );
                    }
                    let texts = memo_key(self.observed_before, &self.buf);
                    // The inputs key the forms only if the text is of their
                    // state: the inputs copied again after it are the same,
                    // and the text's lines say what they say. Else the
                    // text's digest.
                    let agree = |now: &mut Vec<u8>, again: &mut Vec<u8>| {
                        src.maps_inputs(again) && again == now && crate::source::vmas::agrees(now, &self.buf)
                    };
                    let key = match inputs_key {
                        Some(k) if with_maps_inputs(agree) => Some(k),
                        _ => texts,
                    };
                    let made_from =
                        if self.memo_maps.text.is_some() { self.memo_maps.text } else { self.memo_maps.raw };
                    let hit = !self.fresh
                        && self.memo_maps.valid
                        && texts.is_some()
                        && made_from == texts
                        && self.restore_maps(has(Subsystem::Code), against.as_ref(), &mut canons);
                    if hit {
                        if has(Subsystem::MemoryMaps) {
                            outcome.push((Subsystem::MemoryMaps, End::Observed));
                        }
                        self.memo_maps.raw = key;
                    } else {
                        self.maps_changed(
                            src,
                            &mut canons,
                            &mut outcome,
                            against.as_ref(),
                            has(Subsystem::MemoryMaps),
                            has(Subsystem::Code),
                            key,
                        )?;
                    }
                    self.memo_maps.text = if key == texts { None } else { texts };
                    code_maps = has(Subsystem::Code);
                }
                end => {
                    self.memo_maps.valid = false;
                    for s in [Subsystem::MemoryMaps, Subsystem::Code] {
                        if has(s) {
                            outcome.push((s, end.clone()));
                        }
                    }
                }
            }
        }
        let per_thread = [
            Subsystem::Seccomp,
            Subsystem::Credentials,
            Subsystem::Cgroups,
            Subsystem::CgroupLimits,
            Subsystem::SeccompFilters,
        ];
        self.lead_tid = None;
        self.lead_inputs = None;
        // A one-shot check of a process of one thread whose status inputs
        // are those the baseline's forms were made from (their source):
        // those forms, and no `status` read.
        let status_known = (has(Subsystem::Seccomp) || has(Subsystem::Credentials))
            && !self.observed_before
            && !self.fresh
            && self.fault.is_none()
            && against.as_ref().is_some_and(|a| {
                src.status_inputs().is_some_and(|(d, threads)| {
                    threads == 1
                        && [Subsystem::Seccomp, Subsystem::Credentials].iter().filter(|&&sub| has(sub)).all(|&sub| {
                            a.digest(sub).is_some() && a.sources.get(&sub) == Some(&status_source_digest(sub, d))
                        })
                })
            });
        if status_known && let (Some(a), Some(leader)) = (against.as_ref(), src.leader()) {
            self.tids.clear();
            self.tids.push(leader);
            for sub in [Subsystem::Seccomp, Subsystem::Credentials] {
                if has(sub)
                    && let Some(digest) = a.digest(sub)
                {
                    put_form(&mut canons, sub, Canon::known(sub, digest));
                    outcome.push((sub, End::Observed));
                }
            }
        } else if per_thread.iter().any(|&s| has(s)) {
            self.list_threads(src, has(Subsystem::Seccomp) || has(Subsystem::Credentials))?;
        }
        if (has(Subsystem::Seccomp) || has(Subsystem::Credentials)) && !status_known {
            let r = self.per_thread(src, ThreadFile::Status, &mut canons, false, baseline);
            let end = settle(r)?;
            for s in [Subsystem::Seccomp, Subsystem::Credentials] {
                if has(s) {
                    outcome.push((s, end.clone()));
                }
            }
        }
        if has(Subsystem::Cgroups) || has(Subsystem::CgroupLimits) {
            let r = self.per_thread(src, ThreadFile::Cgroup, &mut canons, has(Subsystem::CgroupLimits), baseline);
            let end = settle(r)?;
            if has(Subsystem::Cgroups) {
                outcome.push((Subsystem::Cgroups, end.clone()));
            }
            if has(Subsystem::CgroupLimits)
                && let Some(mut c) = take_form(&mut canons, Subsystem::CgroupLimits)
            {
                let end = match end {
                    End::Observed => settle(self.cgroup_limits(src, &mut c, baseline))?,
                    other => other,
                };
                put_form(&mut canons, Subsystem::CgroupLimits, c);
                outcome.push((Subsystem::CgroupLimits, end));
            }
        }
        if code_maps || OTHER_SUBSYSTEMS.iter().any(|&s| has(s)) {
            self.observe_others(src, scope, &wanted, &mut canons, &mut outcome, against.as_mut(), code_maps)?;
        }

        self.slots.clear();
        for (sub, mut canon) in canons.drain(..) {
            let end = outcome.iter().find(|(s, _)| *s == sub).map(|(_, r)| r.clone());
            let slot = match end {
                Some(End::Observed) => {
                    canon.finish();
                    Slot::Observed(canon)
                }
                Some(End::Unobservable(reason)) => Slot::Unobservable(reason),
                Some(End::NotApplicable(reason)) => Slot::NotApplicable(reason),
                None => return Err(Error::Bug(format!("{sub} was asked for but not observed"))),
            };
            self.slots.push((sub, slot));
        }
        self.wanted = wanted;
        self.canons = canons;
        self.outcome = outcome;
        if let Some(seed) = self.fault.take() {
            let observed: Vec<usize> =
                (0..self.slots.len()).filter(|&i| matches!(self.slots.get(i), Some((_, Slot::Observed(_))))).collect();
            let pick = usize::try_from(seed % u64::try_from(observed.len().max(1)).unwrap_or(1)).unwrap_or(0);
            if let Some(&i) = observed.get(pick)
                && let Some((_, Slot::Observed(c))) = self.slots.get_mut(i)
            {
                c.corrupt(seed.rotate_left(17));
            }
        }
        Ok(())
    }

    /// The subsystems read after the seed set's files: namespaces, mounts,
    /// limits, LSM, kernel, taint, seccomp filters and code, into `canons`
    /// and `outcome` as [`Observer::observe_files`] does. Out of line (see
    /// [`Observer`]): a watch of the seed subsystems never runs it.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn observe_others<S: Source + ?Sized>(
        &mut self,
        src: &S,
        scope: Scope,
        wanted: &[Subsystem],
        canons: &mut [(Subsystem, Canon)],
        outcome: &mut Vec<(Subsystem, End)>,
        against: Option<&mut Against<'_>>,
        code_maps: bool,
    ) -> Result<(), Error> {
        let has = |s: Subsystem| s.scope() == scope && wanted.contains(&s);
        let baseline = against.as_ref().map(|a| a.subsystems);
        if has(Subsystem::Namespaces)
            && let Some(mut c) = take_form(canons, Subsystem::Namespaces)
        {
            let r = self.namespaces(src, &mut c, baseline);
            put_form(canons, Subsystem::Namespaces, c);
            outcome.push((Subsystem::Namespaces, settle(r)?));
        }
        type Whole = fn(&[u8], &mut Canon) -> Result<(), crate::canon::ParseError>;
        let whole: [(Subsystem, &'static str, Whole); 2] = [
            (Subsystem::Mounts, "mountinfo", mounts::canonicalize),
            (Subsystem::Limits, "limits", limits::canonicalize),
        ];
        for (sub, file, canonicalize) in whole {
            if has(sub)
                && let Some(mut c) = take_form(canons, sub)
            {
                let r = if sub == Subsystem::Mounts {
                    self.mounts(src, &mut c, baseline)
                } else if sub == Subsystem::Limits
                    && let Some(values) = src.limit_values()
                {
                    self.limit_values(&values, &mut c, baseline)
                } else {
                    self.whole_file(
                        src,
                        sub,
                        file,
                        &mut c,
                        baseline,
                        |src, buf| src.read(file, buf),
                        |b, c| canonicalize(b, c).map_err(|e| e.to_string()),
                    )
                };
                put_form(canons, sub, c);
                outcome.push((sub, settle(r)?));
            }
        }
        if has(Subsystem::Lsm)
            && let Some(mut c) = take_form(canons, Subsystem::Lsm)
        {
            // Whether the observation reads anything else of the process.
            let alone = !wanted.iter().any(|&s| s != Subsystem::Lsm && s.scope() == Scope::Process);
            let end = match self.lsm(src, &mut c, alone) {
                Ok(Some(reason)) => End::NotApplicable(reason),
                r => settle(r.map(drop))?,
            };
            put_form(canons, Subsystem::Lsm, c);
            outcome.push((Subsystem::Lsm, end));
        }
        if has(Subsystem::Kernel)
            && let Some(mut c) = take_form(canons, Subsystem::Kernel)
        {
            let r = self.kernel(src, &mut c);
            put_form(canons, Subsystem::Kernel, c);
            outcome.push((Subsystem::Kernel, settle(r)?));
        }
        if has(Subsystem::KernelTaint)
            && let Some(mut c) = take_form(canons, Subsystem::KernelTaint)
        {
            let r = self.node_file(src, "proc/sys/kernel/tainted").map(|content| {
                kernel::add_taint(&mut c, content.then_some(self.buf.as_slice()));
            });
            put_form(canons, Subsystem::KernelTaint, c);
            outcome.push((Subsystem::KernelTaint, settle(r)?));
        }

        if has(Subsystem::SeccompFilters)
            && let Some(mut c) = take_form(canons, Subsystem::SeccompFilters)
        {
            let r = filters::observe(src, &self.tids, &mut self.buf, &mut self.rel, &mut c, &mut self.stops);
            let mut end = settle(r)?;
            if let (End::Observed, Some(Observation::Observed { records, .. })) =
                (&end, against.as_ref().and_then(|a| a.subsystems.get(&Subsystem::SeccompFilters)))
                && let Some(reason) = filters::reconcile(records, &mut c)
            {
                end = End::Unobservable(reason.into());
            }
            put_form(canons, Subsystem::SeccompFilters, c);
            outcome.push((Subsystem::SeccompFilters, end));
        }
        if code_maps && let Some(mut c) = take_form(canons, Subsystem::Code) {
            let pages = self.shared.as_deref().or(self.code_pages.as_deref()).map(crate::shared::Shared::code);
            let r = match against {
                None => code::hash_all(src, &self.mappings, code::Within { pages, fresh: self.fresh }, &mut c),
                Some(a) => match a.subsystems.get(&Subsystem::Code) {
                    Some(Observation::Observed { digest, records }) => {
                        let within = code::Within { pages, fresh: self.fresh };
                        a.code.check(src, &self.mappings, records, *digest, within, &mut c)
                    }
                    // Nothing to compare with: the code is not read for nothing.
                    _ => Err(Error::Unavailable {
                        what: "the code".into(),
                        reason: "the baseline holds no code to compare it with".into(),
                    }),
                },
            };
            put_form(canons, Subsystem::Code, c);
            outcome.push((Subsystem::Code, settle(r)?));
        }

        Ok(())
    }

    /// Whether the maps memo's forms serve this observation (with the code
    /// mappings where `code` is asked, and made comparable with the same
    /// baseline form), restored into `canons` if so.
    fn restore_maps(&self, code: bool, against: Option<&Against<'_>>, canons: &mut [(Subsystem, Canon)]) -> bool {
        (!code || self.memo_maps.code)
            && self.memo_maps.projected == maps_baseline(against)
            && self.memo_maps.restore(canons, |s| s == Subsystem::MemoryMaps, against.map(|a| a.subsystems))
    }

    /// `maps` (in `self.buf`) is not the text the memo holds: its forms
    /// anew, memoized for the next read. Out of line: a steady cycle finds
    /// the memo, and its code is the cost of a cycle (BENCHMARKS.md).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn maps_changed<S: Source + ?Sized>(
        &mut self,
        src: &S,
        canons: &mut [(Subsystem, Canon)],
        outcome: &mut Vec<(Subsystem, End)>,
        against: Option<&Against<'_>>,
        memory_maps: bool,
        code: bool,
        key: Option<Digest>,
    ) -> Result<(), Error> {
        self.memo_maps.valid = false;
        let mut maps_end = End::Observed;
        // An observer's first read of the very text the baseline's form was
        // made from: that form, without canonicalizing (not when a fault is
        // to be injected into a real form). Later reads have the memo; a
        // text that changed since would be hashed for nothing.
        let known = match against {
            Some(a) if memory_maps && self.fault.is_none() && !self.observed_before => {
                a.form_of(Subsystem::MemoryMaps, &self.buf)
            }
            _ => None,
        };
        if let Some(digest) = known {
            put_form(canons, Subsystem::MemoryMaps, Canon::known(Subsystem::MemoryMaps, digest));
            outcome.push((Subsystem::MemoryMaps, End::Observed));
        } else if let Some(mut c) = take_form(canons, Subsystem::MemoryMaps) {
            let r = self.maps(src, &mut c);
            // Executable anonymous memory is compared by kind, as a set that
            // may shrink (see `maps::project`).
            if r.is_ok()
                && let Some(Some(Observation::Observed { records, .. })) =
                    against.map(|a| a.subsystems.get(&Subsystem::MemoryMaps))
            {
                c.finish();
                maps::project(records, &mut c);
            }
            put_form(canons, Subsystem::MemoryMaps, c);
            maps_end = settle(r)?;
            outcome.push((Subsystem::MemoryMaps, maps_end.clone()));
        }
        if code {
            self.code_mappings(src)?;
        }
        if matches!(maps_end, End::Observed)
            && let Some(key) = key
        {
            if self.memo_maps.store(key, canons, |s| s == Subsystem::MemoryMaps, against.map(|a| a.subsystems)) {
                self.changing.push(Subsystem::MemoryMaps);
            }
            self.memo_maps.code = code;
            self.memo_maps.projected = maps_baseline(against);
        }
        Ok(())
    }

    /// Canonicalizes the `maps` text in `self.buf`.
    #[inline(never)]
    fn maps<S: Source + ?Sized>(&mut self, src: &S, canon: &mut Canon) -> Result<(), Error> {
        maps::canonicalize(&self.buf, canon).map_err(|e| {
            if self.buf.is_empty() && !src.alive() {
                return gone(src);
            }
            Error::Parse { path: src.path_of("maps"), message: e.to_string() }
        })
    }

    /// The code mappings of the `maps` text in `self.buf`.
    #[inline(never)]
    fn code_mappings<S: Source + ?Sized>(&mut self, src: &S) -> Result<(), Error> {
        if self.buf.is_empty() && !src.alive() {
            return Err(gone(src));
        }
        crate::canon::code::code_mappings(&self.buf, &mut self.mappings)
            .map_err(|e| Error::Parse { path: src.path_of("maps"), message: e.to_string() })
    }

    /// The `mounts` form: taken from what another target of the same
    /// monitor read this round for the same mount view (namespace and root,
    /// `shared.rs`), unless this read must be fresh; otherwise `mountinfo`
    /// read and canonicalized, and kept for the others.
    #[inline(never)]
    fn mounts<S: Source + ?Sized>(
        &mut self,
        src: &S,
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> Result<(), Error> {
        let expected = baseline.and_then(|b| observed_digest(b, Subsystem::Mounts));
        // Alone in its monitor, a target reads its own table, which its
        // memo knows (nothing kept for others): its view, where `namespaces`
        // found the mount namespace in this observation, only keeps the
        // file open for the next (`Source::read_mounts`).
        let solo = self.shared.as_ref().is_none_or(|s| s.solo());
        let view = match self.ns_mnt.take() {
            Some(ns) => mount_view(src, Some(ns)),
            None if !solo => mount_view(src, None),
            None => None,
        };
        // Alone, in a watch: the mount inputs first. The same as those the
        // last text agreed with, the same form, but for every
        // MOUNTS_TEXT_EVERY-th pass, which reads the text.
        let inputs = self
            .alone_in_a_watch()
            .then(|| with_maps_inputs(|now, _| src.mount_inputs(now).then(|| Digest::of(now))))
            .flatten();
        if let Some(key) = inputs
            && !text_due(&mut self.mounts_passes, src.leader(), MOUNTS_TEXT_EVERY)
            && self.mounts_key == Some(key)
            && self.restore_file("mountinfo", Subsystem::Mounts, canon, baseline)
        {
            src.keep_mounts_unread(view.as_ref());
            return Ok(());
        }
        self.mounts_key = None;
        if !self.fresh
            && !solo
            && let (Some(shared), Some(view)) = (&self.shared, &view)
            && let Some((lines, digest)) = shared.mounts(view)
            // A table kept by its digest alone (its reader's memo knew it)
            // serves only the targets whose baseline has that digest: any
            // other reads it itself, rather than build an empty form (a
            // false drift until its fresh read).
            && ((Some(digest) == expected && self.fault.is_none()) || !lines.is_empty())
        {
            if Some(digest) == expected && self.fault.is_none() {
                // The table this round read for the view, whose form is the
                // baseline's: known by its digest, not built again.
                *canon = Canon::known(Subsystem::Mounts, digest);
            } else {
                canon.clear();
                for line in lines.split('\n').filter(|l| !l.is_empty()) {
                    canon.push_line(line);
                }
                canon.finish();
                canon.digest(Subsystem::Mounts);
            }
            // What this process last read of the table is not needed while
            // the round's shared read serves it.
            if let Some(i) = self.memo_files.iter().position(|(r, _)| *r == "mountinfo") {
                self.memo_files.swap_remove(i);
            }
            return Ok(());
        }
        self.whole_file(
            src,
            Subsystem::Mounts,
            "mountinfo",
            canon,
            baseline,
            |src, buf| src.read_mounts(view.as_ref(), buf),
            |b, c| mounts::canonicalize(b, c).map_err(|e| e.to_string()),
        )?;
        // The inputs key the form only if the text is of their state: the
        // inputs copied again after it are the same, and the text's lines
        // say what they say.
        self.mounts_key = inputs.filter(|&key| {
            with_maps_inputs(|_, again| {
                src.mount_inputs(again) && Digest::of(again) == key && crate::source::mnts::agrees(again, &self.buf)
            })
        });
        if let (Some(shared), Some(view)) = (self.shared.as_ref().filter(|s| !s.solo()), view) {
            let digest = canon.digest(Subsystem::Mounts);
            shared.keep_mounts(view, canon.lines(), digest);
        }
        Ok(())
    }

    /// Reads one file of the process with `read` (the file `rel`, as
    /// `Source::read` or `Source::read_mounts` reads it) and canonicalizes
    /// it whole.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn whole_file<S: Source + ?Sized>(
        &mut self,
        src: &S,
        sub: Subsystem,
        rel: &'static str,
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
        read: impl FnOnce(&S, &mut Vec<u8>) -> Result<(), Error>,
        f: impl FnOnce(&[u8], &mut Canon) -> Result<(), String>,
    ) -> Result<(), Error> {
        match read(src, &mut self.buf) {
            Ok(()) => {}
            // A zombie has no namespaces: mountinfo answers EINVAL.
            Err(Error::Io { .. }) if !src.alive() => return Err(gone(src)),
            Err(e) => return Err(e),
        }
        let buf = std::mem::take(&mut self.buf);
        let r = self.memoized(sub, rel, &buf, canon, baseline, |c| {
            f(&buf, c).map_err(|message| {
                if buf.is_empty() && !src.alive() {
                    return gone(src);
                }
                Error::Parse { path: src.path_of(rel), message }
            })
        });
        self.buf = buf;
        r
    }

    /// Whether this observation is a watch's of the only target of its
    /// monitor, past its first, neither fresh nor a baseline's nor with a
    /// fault injected: where the mount inputs and what a `cgroup-limits`
    /// read was made of may stand in for a read.
    fn alone_in_a_watch(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| s.solo())
            && self.observed_before
            && !self.fresh
            && !self.keep_sources
            && self.fault.is_none()
    }

    /// Restores the form the memo of file `rel` remembers, if it has a
    /// valid one this check may use (not a fresh read).
    fn restore_file(
        &self,
        rel: &str,
        sub: Subsystem,
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> bool {
        let Some((_, memo)) = self.memo_files.iter().find(|(r, _)| *r == rel) else { return false };
        match memo.forms.first() {
            Some((_, form)) if !self.fresh && memo.valid && restorable(form, sub, baseline) => {
                restore_form(canon, form);
                true
            }
            _ => false,
        }
    }

    /// The `limits` form from the limits as numbers (the task table's,
    /// [`Source::limit_values`]): neither the text the kernel would print
    /// nor its parse, and a memo keyed by the 256 bytes of numbers instead
    /// of the 1.3 KB of text.
    #[inline(never)]
    fn limit_values(
        &mut self,
        values: &[[u64; 2]; 16],
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> Result<(), Error> {
        // Tagged: a text's key is never a key of numbers.
        let mut raw = [0u8; 8 + 16 * 16];
        let (tag, numbers) = raw.split_at_mut(8);
        tag.copy_from_slice(b"numbers\0");
        for (out, v) in numbers.chunks_exact_mut(8).zip(values.iter().flatten()) {
            out.copy_from_slice(&v.to_ne_bytes());
        }
        self.memoized(Subsystem::Limits, "limits", &raw, canon, baseline, |c| {
            limits::add_values(c, crate::source::tasks::named_limits(values));
            Ok(())
        })
    }

    /// For a first observation checked against a baseline, in a round
    /// other targets share, the form of `sub` made of `raw` (an exact image
    /// of all the form is made of, at most [`ROUND_FORM_MAX`] bytes) by
    /// another target this round ([`RoundForm`]). Never for a fresh read or
    /// one with a fault injected.
    fn round_form(
        &mut self,
        sub: Subsystem,
        raw: &[u8],
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> RoundForm {
        if self.observed_before || self.fresh || self.fault.is_some() || raw.len() > ROUND_FORM_MAX {
            return RoundForm::NotShared;
        }
        let Some(shared) = self.shared.as_ref().filter(|s| !s.solo()) else { return RoundForm::NotShared };
        let Some(expected) = baseline.and_then(|b| observed_digest(b, sub)) else { return RoundForm::NotShared };
        self.form_key.clear();
        self.form_key.extend_from_slice(sub.name().as_bytes());
        self.form_key.push(0);
        self.form_key.extend_from_slice(raw);
        match shared.round_form(&self.form_key) {
            Some(d) if d == expected => RoundForm::Known(Canon::known(sub, d)),
            _ => RoundForm::ToKeep,
        }
    }

    /// Keeps the digest of the form just made for the round, under the key
    /// [`Observer::round_form`] made.
    fn keep_round_form(&self, digest: Digest) {
        if let Some(shared) = &self.shared {
            shared.keep_round_form(&self.form_key, digest);
        }
    }

    /// Makes the form of `sub` from `raw` (the text of `rel`, or an exact
    /// image of what the form is made of) with `f`, through the memo of
    /// `rel`: a hit restores the form remembered of the same `raw`.
    fn memoized(
        &mut self,
        sub: Subsystem,
        rel: &'static str,
        raw: &[u8],
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
        f: impl FnOnce(&mut Canon) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let i = match self.memo_files.iter().position(|(r, _)| *r == rel) {
            Some(i) => i,
            None => {
                self.memo_files.push((rel, Memo::default()));
                self.memo_files.len() - 1
            }
        };
        let key = memo_key(self.observed_before, raw);
        if self.memo_files.get(i).is_some_and(|(_, memo)| memo.hit(self.fresh, key))
            && self.restore_file(rel, sub, canon, baseline)
        {
            return Ok(());
        }
        let keep = match self.round_form(sub, raw, baseline) {
            RoundForm::Known(form) => {
                *canon = form;
                return Ok(());
            }
            RoundForm::ToKeep => true,
            RoundForm::NotShared => false,
        };
        f(canon)?;
        let digest = canon.digest(sub);
        if keep {
            self.keep_round_form(digest);
        }
        let Some(key) = key else { return Ok(()) };
        let known = baseline.and_then(|b| observed_digest(b, sub)) == Some(digest);
        if let Some((_, memo)) = self.memo_files.get_mut(i) {
            if memo.valid {
                self.changing.push(sub);
            }
            memo.raw = Some(key);
            match memo.forms.first_mut() {
                Some((_, form)) => remember(form, canon, sub, digest, known),
                None => {
                    let mut form = Canon::new();
                    remember(&mut form, canon, sub, digest, known);
                    memo.forms.push((sub, form));
                }
            }
            memo.valid = true;
        }
        Ok(())
    }

    /// Lists the threads into `self.tids`. With `status_next` (the status pass
    /// comes next) the main thread's `status` is read first, where the
    /// source names the main thread: if it says `Threads: 1` the process
    /// has no other thread and is not listed (an `lseek` and two
    /// `getdents64` a cycle saved, or an `open`, two `getdents64` and a
    /// `close` for a one-shot check). The count and the list are the same kernel state
    /// (a thread joins both, and leaves both, under one lock), so this is
    /// the list as of that read. Anything else (more threads, no count, an
    /// unreadable file) lists them as before, and errors come from there.
    ///
    /// Where the source has the process's status inputs (the task table)
    /// and they count one thread, in an observation that may use its memo,
    /// nothing is read: the status pass keys its memo by the inputs.
    fn list_threads<S: Source + ?Sized>(&mut self, src: &S, status_next: bool) -> Result<(), Error> {
        if status_next && let Some(leader) = src.leader() {
            if self.observed_before
                && !self.fresh
                && let Some((inputs, 1)) = src.status_inputs()
            {
                self.lead_inputs = Some(inputs);
                self.tids.clear();
                self.tids.push(leader);
                return Ok(());
            }
            let mut absent = None;
            if read_thread_file(src, leader, ThreadFile::Status.name(), &mut self.rel, &mut self.lead, &mut absent)
                .unwrap_or(false)
            {
                self.lead_tid = Some(leader);
                if status::field(&self.lead, "Threads") == Some(b"1") {
                    self.tids.clear();
                    self.tids.push(leader);
                    return Ok(());
                }
            }
        }
        src.threads(&mut self.tids)
    }

    /// Reads one file of every thread (listed in `self.tids`) into the
    /// canonical forms that need it, and with `collect` the distinct cgroups
    /// of the threads (and their ancestors) into `self.cgroups`. A thread
    /// that exits meanwhile is skipped. Every thread is read first; if the
    /// texts are the same as at the last observation, so are the forms.
    fn per_thread<S: Source + ?Sized>(
        &mut self,
        src: &S,
        file: ThreadFile,
        canons: &mut [(Subsystem, Canon)],
        collect: bool,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> Result<(), Error> {
        let name = file.name();
        let touched = |sub: Subsystem| file.feeds(sub);
        // 0. The main thread alone, with its status inputs: the same inputs
        // as last time, the same forms, but for every STATUS_TEXT_EVERY-th
        // pass, which reads the text. Which pass of the period that is
        // depends on the process (its pid), so that a node's processes,
        // baselined in one round, do not all read theirs in the same cycle.
        let inputs = self.lead_inputs.filter(|_| matches!(file, ThreadFile::Status));
        if inputs.is_some() {
            self.inputs_passes = self.inputs_passes.wrapping_add(1);
            let phase = src.leader().unwrap_or(0) % STATUS_TEXT_EVERY;
            let due = self.inputs_passes.wrapping_add(phase).is_multiple_of(STATUS_TEXT_EVERY);
            if !due
                && self.memo_status.hit(self.fresh, inputs)
                && self.memo_status.restore(canons, touched, baseline)
                && (!collect || self.memo_status.collected)
            {
                self.unasked += self.memo_status.unasked;
                // Its descriptor stays open for the pass that reads it.
                src.keep_unread(ThreadFile::Status.name());
                return Ok(());
            }
        }
        // 1. Read: the texts go to the arena, each thread's tid before its text.
        self.arena.clear();
        self.spans.clear();
        let mut absent: Option<Error> = None;
        // A process of one thread, in a round shared with other targets:
        // its `cgroup` text is that of every process of the same cgroup
        // set, read by the first of them this round (a text is kept only
        // where the set read again after it is the same). The set is asked
        // of the kernel now, not taken from the record that pinned the
        // process (a process moved since would take its old set's text).
        // Never for a fresh read, nor a baseline's.
        let shared = self
            .shared
            .as_ref()
            .filter(|s| {
                matches!(file, ThreadFile::Cgroup)
                    && self.tids.len() == 1
                    && self.tids.first().copied() == src.leader()
                    && !self.fresh
                    && !self.keep_sources
                    && !s.solo()
            })
            .cloned();
        let set = shared.as_ref().and_then(|_| src.cgroup_set(true));
        let kept = set.and_then(|s| shared.as_ref()?.cgroup_text(s));
        for i in 0..self.tids.len() {
            let Some(&tid) = self.tids.get(i) else { break };
            let text: &[u8] = if matches!(file, ThreadFile::Status) && self.lead_tid == Some(tid) {
                &self.lead
            } else if let Some(text) = &kept {
                text
            } else {
                if !read_thread_file(src, tid, name, &mut self.rel, &mut self.buf, &mut absent)? {
                    continue;
                }
                if let (Some(s), Some(round)) = (set, &shared)
                    && src.cgroup_set(true) == Some(s)
                {
                    round.keep_cgroup_text(s, &self.buf);
                }
                &self.buf
            };
            self.arena.extend_from_slice(&tid.to_le_bytes());
            let at = self.arena.len();
            self.arena.extend_from_slice(text);
            self.spans.push((tid, at..self.arena.len()));
        }
        if self.spans.is_empty() {
            if !src.alive() {
                return Err(gone(src));
            }
            return Err(absent
                .unwrap_or_else(|| Error::Parse { path: src.path_of("task"), message: "no threads listed".into() }));
        }
        // A baseline's: the inputs a single thread's text agrees with.
        if self.keep_sources
            && matches!(file, ThreadFile::Status)
            && self.spans.len() == 1
            && let Some((d, 1)) = src.status_inputs()
        {
            let lead_text = self.spans.first().and_then(|(_, at)| self.arena.get(at.clone())).unwrap_or_default();
            if src.status_inputs_agree(d, lead_text) {
                self.status_source = Some(d);
            }
        }
        // 2. The same texts as last time: the same forms (and cgroup set).
        let memo = match file {
            ThreadFile::Status => &mut self.memo_status,
            ThreadFile::Cgroup => &mut self.memo_cgroup,
        };
        // Keyed by the inputs, the texts are compared with those the forms
        // were made from, and the memo keyed by the inputs again.
        let texts = memo_key(self.observed_before, &self.arena);
        // The inputs key the forms only if the text is of their state: the
        // inputs read again after it are the same, and print what it says
        // (else a state changed and changed back around the read could
        // leave the forms of one keyed by the other). Else the text's digest.
        let lead_text = self.spans.first().and_then(|(_, at)| self.arena.get(at.clone())).unwrap_or_default();
        let key = match inputs {
            Some(i) if src.status_inputs_agree(i, lead_text) => Some(i),
            _ => texts,
        };
        let made_from = if memo.text.is_some() { memo.text } else { memo.raw };
        if !self.fresh
            && memo.valid
            && texts.is_some()
            && made_from == texts
            && memo.restore(canons, touched, baseline)
            && (!collect || memo.collected)
        {
            memo.raw = key;
            self.unasked += memo.unasked;
            return Ok(());
        }
        // 3. Canonicalize each thread's text. Only the pass that collects the
        // cgroup set may reset it (a memo hit of the cgroup pass keeps it).
        if collect {
            self.cgroups.clear();
        }
        self.last_cgroup.clear();
        let mut read = 0usize;
        let unasked_before = self.unasked;
        let spans = std::mem::take(&mut self.spans);
        let result = self.canonicalize_threads(src, file, &spans, canons, collect, &mut read);
        self.spans = spans;
        result?;
        if collect {
            self.cgroups.sort_unstable();
        }
        if read == 0 {
            if !src.alive() {
                return Err(gone(src));
            }
            return Err(Error::Parse { path: src.path_of("task"), message: "no thread could be read".into() });
        }
        let Some(key) = key else { return Ok(()) };
        let memo = match file {
            ThreadFile::Status => &mut self.memo_status,
            ThreadFile::Cgroup => &mut self.memo_cgroup,
        };
        if memo.store(key, canons, touched, baseline) {
            self.changing.extend(canons.iter().map(|(s, _)| *s).filter(|s| touched(*s)));
        }
        let memo = match file {
            ThreadFile::Status => &mut self.memo_status,
            ThreadFile::Cgroup => &mut self.memo_cgroup,
        };
        memo.collected = collect;
        memo.unasked = self.unasked - unasked_before;
        memo.text = if Some(key) == texts { None } else { texts };
        Ok(())
    }

    /// The canonicalization half of [`Observer::per_thread`].
    #[inline(never)]
    fn canonicalize_threads<S: Source + ?Sized>(
        &mut self,
        src: &S,
        file: ThreadFile,
        spans: &[(u32, std::ops::Range<usize>)],
        canons: &mut [(Subsystem, Canon)],
        collect: bool,
        read: &mut usize,
    ) -> Result<(), Error> {
        let name = file.name();
        let touched = |sub: Subsystem| file.feeds(sub);
        for (tid, range) in spans {
            let tid = *tid;
            let text = self.arena.get(range.clone()).unwrap_or(&[]);
            let parse = |e: String| Error::Parse { path: src.path_of(&format!("task/{tid}/{name}")), message: e };
            for (sub, canon) in canons.iter_mut() {
                match (file, *sub) {
                    (ThreadFile::Status, Subsystem::Seccomp) => {
                        status::canonicalize_thread(text, status::SECCOMP_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Status, Subsystem::Credentials) => {
                        status::canonicalize_thread(text, status::CREDENTIAL_FIELDS, canon)
                            .map_err(|e| parse(e.to_string()))?;
                    }
                    (ThreadFile::Cgroup, Subsystem::Cgroups) => {
                        cgroup::canonicalize_thread(text, canon).map_err(|e| parse(e.to_string()))?;
                    }
                    _ => {}
                }
            }
            // A thread in do_exit shows a partial state (no Umask, the root of
            // every v1 cgroup hierarchy): it is leaving, not changing, so its
            // tuple is taken back. Asked only when a thread looks unlike the
            // one before it.
            // (Also for a single thread: a zombie's files show the same
            // partial state, for as long as its parent does not reap it.)
            let unlike = match file {
                ThreadFile::Cgroup => self.last_cgroup.as_slice() != text,
                ThreadFile::Status => canons.iter().any(|(s, c)| touched(*s) && c.last_is_new()),
            };
            if unlike && self.quick {
                self.unasked += 1;
            } else if unlike && src.thread_exiting(tid)? {
                for (_, c) in canons.iter_mut().filter(|(s, _)| touched(*s)) {
                    c.pop();
                }
                continue;
            }
            *read += 1;
            // Threads usually share their cgroups: parse each distinct text once.
            if collect && self.last_cgroup.as_slice() != text {
                for (h, path) in cgroup::parse(text).map_err(|e| parse(e.to_string()))? {
                    let h = String::from_utf8_lossy(h);
                    let path = String::from_utf8_lossy(path);
                    for a in cgroup_limits::ancestors(&path) {
                        if !self.cgroups.iter().any(|(x, y)| x.as_str() == h.as_ref() && y.as_str() == a) {
                            self.cgroups.push((h.clone().into_owned(), a.to_owned()));
                        }
                    }
                }
            }
            if let ThreadFile::Cgroup = file {
                self.last_cgroup.clear();
                self.last_cgroup.extend_from_slice(text);
            }
        }
        Ok(())
    }

    /// Reads the limit files of every cgroup collected by the cgroup pass:
    /// each cgroup's records taken from what another target of the same
    /// monitor read this round, unless this read must be fresh.
    ///
    /// What is read is first written to a log ([`LimitLog`]): every file's
    /// bytes, every failure's reason, every record taken from the round. The
    /// form is a pure function of the log, so a log whose SHA-256 is the
    /// last one's gives the last form ([`Memo`]), without canonicalizing or
    /// hashing the form again. Not where the records are kept for other
    /// targets of the round (they need them whole): only for a target
    /// checked on its own, or alone in its monitor ([`crate::shared::Shared::solo`]).
    #[inline(never)]
    fn cgroup_limits<S: Source + ?Sized>(
        &mut self,
        src: &S,
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> Result<(), Error> {
        let expected = baseline.and_then(|b| observed_digest(b, Subsystem::CgroupLimits));
        // Every cgroup this process leads to read this round: the form they
        // make is made once a round for all the processes that lead to the
        // same ones, and one that is the baseline's is known by its digest.
        if !self.fresh
            && let Some(shared) = &self.shared
            && !shared.solo()
        {
            // The list of cgroups as one key, in the read buffer (free
            // until the reads below): one lookup finds a form the round
            // made already.
            let mut key = std::mem::take(&mut self.buf);
            // One thread: its `cgroup` text (still in the arena, just read)
            // decides the list, and is one copy where the list is two
            // strings a cgroup, cold.
            match self.spans.as_slice() {
                [(_, text)] if let Some(text) = self.arena.get(text.clone()) => {
                    crate::shared::cgroup_text_key(text, &mut key);
                }
                _ => crate::shared::cgroup_list_key(&self.cgroups, &mut key),
            }
            if let Some(digest) = shared.cgroup_form(&key)
                && Some(digest) == expected
                && self.fault.is_none()
            {
                self.buf = key;
                *canon = Canon::known(Subsystem::CgroupLimits, digest);
                return Ok(());
            }
            let epoch = shared.forms_epoch();
            let mut pieces = Vec::with_capacity(self.cgroups.len());
            for (h, cg) in &self.cgroups {
                match shared.cgroup_limits(h, cg) {
                    Some(lines) => pieces.push(lines),
                    None => break,
                }
            }
            if pieces.len() == self.cgroups.len() {
                for lines in &pieces {
                    for line in lines.split('\n').filter(|l| !l.is_empty()) {
                        canon.push_line(line);
                    }
                }
                let digest = canon.digest(Subsystem::CgroupLimits);
                shared.keep_cgroup_form(&key, digest, epoch);
                self.buf = key;
                return Ok(());
            }
            self.buf = key;
        }
        // 0. Alone in a watch: the same record of values, cgroups and texts
        // read from files as the last read's: its form.
        let watching = self.alone_in_a_watch();
        let mut made_of = self.limits_made_of.take();
        let mut record = None;
        if watching && let Some(m) = made_of.as_mut() {
            record = src.cgroup_values_digest();
            if m.passes < LIMITS_LISTED_EVERY
                && record == Some(m.record)
                && LimitLog::cgroups_digest(&self.cgroups) == m.cgroups
                && self.texts_of(src, &m.read) == Some(m.texts)
            {
                let mut pair = [(Subsystem::CgroupLimits, std::mem::take(canon))];
                let restored = self.memo_limits.valid
                    && self.memo_limits.restore(&mut pair, |s| s == Subsystem::CgroupLimits, baseline);
                let [(_, c)] = pair;
                *canon = c;
                if restored {
                    m.passes += 1;
                    self.limits_made_of = made_of;
                    return Ok(());
                }
            }
        }
        // 1. Read, into the log.
        let mut log = std::mem::take(&mut self.arena);
        log.clear();
        let r = self.read_limits(src, &mut log);
        if let Err(e) = r {
            self.arena = log;
            return Err(e);
        }
        // 2. The same log as last time: the same form.
        let publish = self.shared.as_ref().filter(|s| !s.solo()).cloned();
        let key = (publish.is_none() && self.fault.is_none() && self.observed_before)
            .then(|| LimitLog::hashed(&self.cgroups, &log));
        let mut pair = [(Subsystem::CgroupLimits, std::mem::take(canon))];
        let is_limits = |s| s == Subsystem::CgroupLimits;
        if self.memo_limits.hit(self.fresh, key) && self.memo_limits.restore(&mut pair, is_limits, baseline) {
            let [(_, c)] = pair;
            *canon = c;
            self.arena = log;
            if watching {
                self.keep_made_of(src, record, made_of);
            }
            return Ok(());
        }
        // 3. The form, from the log; the records read kept for the round.
        let [(_, mut c)] = pair;
        c.clear();
        LimitLog::replay(&self.cgroups, &log, &mut c, publish.as_deref());
        self.arena = log;
        let mut pair = [(Subsystem::CgroupLimits, c)];
        if let Some(key) = key
            && self.memo_limits.store(key, &mut pair, is_limits, baseline)
        {
            self.changing.push(Subsystem::CgroupLimits);
        }
        let [(_, c)] = pair;
        *canon = c;
        if watching {
            self.keep_made_of(src, record, made_of);
        }
        Ok(())
    }

    /// Keeps what the read whose log is in `self.arena` (its form in the
    /// memo) was made of, for the next pass: `record` (or the source's, if
    /// not asked yet), the cgroups, the files read from their files (the
    /// `old` list's allocation kept where they are the same files).
    fn keep_made_of<S: Source + ?Sized>(&mut self, src: &S, record: Option<Digest>, old: Option<Box<LimitsMadeOf>>) {
        if !self.memo_limits.valid {
            return;
        }
        if let Some(record) = record.or_else(|| src.cgroup_values_digest()) {
            self.limits_made_of = self.made_of(record, old);
        }
    }

    /// What the read whose log is in `self.arena` was made of: `record`,
    /// the cgroups, and the files read from their files and their texts;
    /// `None` where a file could not be read, or a cgroup's records were
    /// another target's (a pass could not tell them the same).
    fn made_of(&self, record: Digest, old: Option<Box<LimitsMadeOf>>) -> Option<Box<LimitsMadeOf>> {
        let read_files = || {
            LimitLog::entries(&self.arena).filter(|e| e.0 == LimitLog::FILE).map(|(_, index, file, _)| (index, file))
        };
        let mut m = old.unwrap_or_else(|| {
            let none = Digest::of(b"");
            Box::new(LimitsMadeOf { record: none, cgroups: none, read: Vec::new(), texts: none, passes: 0 })
        });
        let same = m.read.len() == read_files().count()
            && m.read.iter().zip(read_files()).all(|((i, f), (index, file))| *i == index && f.as_bytes() == file);
        if !same {
            m.read.clear();
            for (index, file) in read_files() {
                m.read.push((index, std::str::from_utf8(file).ok()?.to_owned()));
            }
        }
        let mut h = crate::digest::Hasher::new();
        for (tag, _, _, payload) in LimitLog::entries(&self.arena) {
            match tag {
                LimitLog::MADE | LimitLog::CGROUP => {}
                LimitLog::FILE => {
                    h.update(&[tag]);
                    h.update(&(payload.len() as u64).to_le_bytes());
                    h.update(payload);
                }
                _ => return None,
            }
        }
        (m.record, m.cgroups, m.texts, m.passes) = (record, LimitLog::cgroups_digest(&self.cgroups), h.finish(), 0);
        Some(m)
    }

    /// The digest of the texts of `read` (cgroup index, file), as
    /// [`Observer::made_of`] takes it, read again now; `None` where one
    /// fails, is made from the record, or names no cgroup.
    fn texts_of<S: Source + ?Sized>(&mut self, src: &S, read: &[(usize, String)]) -> Option<Digest> {
        let mut h = crate::digest::Hasher::new();
        for (index, file) in read {
            let (hierarchy, cgroup) = self.cgroups.get(*index)?;
            src.cgroup_read(hierarchy, cgroup, file, &mut self.buf).ok()?;
            if src.cgroup_read_made() {
                return None;
            }
            h.update(&[LimitLog::FILE]);
            h.update(&(self.buf.len() as u64).to_le_bytes());
            h.update(&self.buf);
        }
        Some(h.finish())
    }

    /// The reads of [`Observer::cgroup_limits`], into `log`.
    fn read_limits<S: Source + ?Sized>(&mut self, src: &S, log: &mut Vec<u8>) -> Result<(), Error> {
        for i in 0..self.cgroups.len() {
            let Some((h, cg)) = self.cgroups.get(i) else { break };
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if !self.fresh
                && let Some(lines) = self.shared.as_ref().and_then(|s| s.cgroup_limits(h, cg))
            {
                LimitLog::entry(log, LimitLog::LINES, index, "", lines.as_bytes());
                continue;
            }
            LimitLog::entry(log, LimitLog::CGROUP, index, "", b"");
            let mark = log.len();
            // The limit files as listed in an earlier round (`shared.rs`):
            // read without listing the directory, unless this read must be
            // fresh or one of them cannot be read (then listed, and read
            // again).
            let listed = match &self.shared {
                Some(shared) if !self.fresh => shared.limit_files(h, cg),
                _ => None,
            };
            if let Some(files) = listed
                && !read_listed_limits(src, h, cg, &files, &mut self.buf, index, log)?
            {
                log.truncate(mark);
                if let Some(shared) = &self.shared {
                    shared.forget_limit_files(h, cg);
                }
            }
            if log.len() == mark {
                let listed = read_cgroup_limits(src, h, cg, &mut self.names, &mut self.buf, index, log)?;
                if let (Some(shared), true) = (&self.shared, listed) {
                    let limits = self.names.iter().map(String::as_str).filter(|f| cgroup_limits::is_limit_file(f));
                    shared.keep_limit_files(h, cg, limits);
                }
            }
        }
        Ok(())
    }

    #[inline(never)]
    fn namespaces<S: Source + ?Sized>(
        &mut self,
        src: &S,
        canon: &mut Canon,
        baseline: Option<&BTreeMap<Subsystem, Observation>>,
    ) -> Result<(), Error> {
        // The kinds of namespace are the kernel's, the same for every
        // process and for its whole life: `ns` is listed by the first and by
        // every fresh observation; each link is resolved every time.
        if self.fresh || self.ns_names.is_empty() {
            src.list("ns", &mut self.names)?;
            self.ns_names.clear();
            for name in &self.names {
                self.ns_names.push_str(name);
                self.ns_names.push('\n');
            }
        }
        // 1. Resolve every link; the names and identities, as bytes, are the
        // memo's text (the form is a pure function of them).
        let mut pending = false;
        let names = std::mem::take(&mut self.ns_names);
        self.ns_states.clear();
        self.buf.clear();
        for name in names.split('\n').filter(|n| !n.is_empty()) {
            self.rel.clear();
            let _ = write!(self.rel, "ns/{name}");
            let state = match src.stat(&self.rel) {
                Ok(id) => {
                    if name == "mnt" {
                        self.ns_mnt = Some(id);
                    }
                    NsState::Identity { dev: id.dev, ino: id.ino }
                }
                // Listed but not resolvable: unshared for children, none created yet.
                Err(Error::NotFound { .. }) => {
                    pending = true;
                    NsState::Pending
                }
                Err(e) => {
                    self.ns_names = names;
                    return Err(e);
                }
            };
            self.buf.extend_from_slice(name.as_bytes());
            match state {
                NsState::Identity { dev, ino } => {
                    self.buf.push(b'\n');
                    self.buf.extend_from_slice(&dev.to_le_bytes());
                    self.buf.extend_from_slice(&ino.to_le_bytes());
                }
                NsState::Pending => self.buf.push(0),
            }
            self.ns_states.push(state);
        }
        // A zombie's links resolve no more: it is gone, not unshared.
        if pending && !src.alive() {
            self.ns_names = names;
            return Err(gone(src));
        }
        // 2. The same identities as last time: the same form.
        let key = memo_key(self.observed_before, &self.buf);
        if self.memo_ns.hit(self.fresh, key)
            && let Some((_, form)) = self.memo_ns.forms.first()
            && restorable(form, Subsystem::Namespaces, baseline)
        {
            restore_form(canon, form);
            self.ns_names = names;
            return Ok(());
        }
        // Or the form another process with the same identities made.
        let buf = std::mem::take(&mut self.buf);
        let round = self.round_form(Subsystem::Namespaces, &buf, baseline);
        self.buf = buf;
        let keep = match round {
            RoundForm::Known(form) => {
                *canon = form;
                self.ns_names = names;
                return Ok(());
            }
            RoundForm::ToKeep => true,
            RoundForm::NotShared => false,
        };
        // 3. The records, from the identities.
        for (name, state) in names.split('\n').filter(|n| !n.is_empty()).zip(&self.ns_states) {
            namespaces::add(canon, name.as_bytes(), *state);
        }
        self.ns_names = names;
        if keep {
            let digest = canon.digest(Subsystem::Namespaces);
            self.keep_round_form(digest);
        }
        if let Some(key) = key {
            let mut pair = [(Subsystem::Namespaces, std::mem::take(canon))];
            if self.memo_ns.store(key, &mut pair, |s| s == Subsystem::Namespaces, baseline) {
                self.changing.push(Subsystem::Namespaces);
            }
            let [(_, c)] = pair;
            *canon = c;
        }
        Ok(())
    }

    /// `Ok(Some(reason))` where no security module labels the process.
    /// `alone`: the observation reads nothing else of the process, so where
    /// no attribute is read either (each known refused), it asks whether the
    /// process is alive: a check of a process gone says so, not "not
    /// applicable".
    #[inline(never)]
    fn lsm<S: Source + ?Sized>(&mut self, src: &S, canon: &mut Canon, alone: bool) -> Result<Option<Arc<str>>, Error> {
        let mut any = false;
        // Whether an attribute was read (not known absent without reading).
        let mut asked = false;
        // The first refusal: one read now, or (`known_refused`) the one
        // remembered for an attribute known absent.
        let mut first_refusal: Option<String> = None;
        let mut known_refused = false;
        // The attributes refused in this observation (bits of `lsm_absent`).
        let mut refused = 0u8;
        if self.fresh {
            self.lsm_absent = 0;
        }
        for (i, attr) in lsm::ATTRS.iter().enumerate() {
            let bit = u32::try_from(i).ok().and_then(|i| 1u8.checked_shl(i)).unwrap_or(0);
            // Which modules provide which attribute is fixed at boot: an
            // attribute none provides is asked again only when fresh.
            if self.lsm_absent & bit != 0 {
                known_refused |= first_refusal.is_none();
                continue;
            }
            self.rel.clear();
            let _ = write!(self.rel, "attr/{attr}");
            // Refused to every process of this kernel (known at start-up):
            // remembered as a refusal read here would be, without a read,
            // and so without asking whether this process is alive (a `stat`
            // read: a sixth of the system calls of a one-shot check of every
            // process where no module labels processes).
            if let Some(why) = src.refused_everywhere(&self.rel) {
                if self.lsm_absent == 0 {
                    self.lsm_refusal = Some(why.to_string());
                    self.lsm_reason = None;
                }
                self.lsm_absent |= bit;
                known_refused |= first_refusal.is_none();
                continue;
            }
            asked = true;
            match src.read(&self.rel, &mut self.buf) {
                Ok(()) => {
                    lsm::add(canon, attr, &self.buf);
                    any = true;
                }
                Err(e) if no_lsm(&e) => {
                    if first_refusal.is_none() && !known_refused {
                        first_refusal = Some(e.to_string());
                    }
                    refused |= bit;
                }
                Err(e) => return Err(e),
            }
        }
        // A process that is gone reads as absent too: a refusal is remembered
        // only of a process alive after the reads, and a read that found
        // nothing may have been of a process gone meanwhile. One `stat` after
        // the last read answers for every read before it (a process does not
        // come back); where none was made (no module provides any attribute,
        // as known since boot) there is nothing to tell apart, and no `stat`.
        if refused != 0 || (!any && asked) {
            let alive = src.alive();
            if alive && refused != 0 {
                if self.lsm_absent == 0 {
                    self.lsm_refusal.clone_from(&first_refusal);
                    self.lsm_reason = None;
                }
                self.lsm_absent |= refused;
            }
            if !any && asked && !alive {
                return Err(gone(src));
            }
        } else if alone && !any && !src.alive() {
            return Err(gone(src));
        }
        if any {
            return Ok(None);
        }
        let reason = |refusal: Option<&str>| -> Arc<str> {
            format!("no security module labels processes here ({})", refusal.unwrap_or("no attribute file")).into()
        };
        if !known_refused {
            return Ok(Some(reason(first_refusal.as_deref())));
        }
        Ok(Some(Arc::clone(self.lsm_reason.get_or_insert_with(|| reason(self.lsm_refusal.as_deref())))))
    }

    /// Reads a node file into `self.buf`: `Ok(true)` read, `Ok(false)` it
    /// does not exist on this kernel.
    #[inline(never)]
    fn node_file<S: Source + ?Sized>(&mut self, src: &S, rel: &str) -> Result<bool, Error> {
        match src.read(rel, &mut self.buf) {
            Ok(()) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    #[inline(never)]
    fn kernel<S: Source + ?Sized>(&mut self, src: &S, canon: &mut Canon) -> Result<(), Error> {
        for sysctl in kernel::SYSCTLS {
            self.rel.clear();
            self.rel.push_str("proc/sys/");
            self.rel.extend(sysctl.name.chars().map(|c| if c == '.' { '/' } else { c }));
            let rel = std::mem::take(&mut self.rel);
            let r = self.node_file(src, &rel);
            self.rel = rel;
            match r {
                Ok(present) => kernel::add_sysctl(canon, sysctl.name, present.then_some(self.buf.as_slice())),
                Err(Error::Io { source, .. }) => {
                    canon.push(sysctl.name, &format!("unreadable: {source}"));
                }
                // One sysctl only root may read (`vm.mmap_rnd_bits` is 0600):
                // said in its record; an unprivileged fdir still checks the rest.
                Err(Error::PermissionDenied { .. }) => canon.push(sysctl.name, "unreadable: permission denied"),
                Err(e) => return Err(e),
            }
        }
        let present = self.node_file(src, "sys/kernel/security/lockdown")?;
        kernel::add_lockdown(canon, present.then_some(self.buf.as_slice()));
        let present = self.node_file(src, "sys/kernel/security/lsm")?;
        kernel::add_lsm_list(canon, present.then_some(self.buf.as_slice()));
        let present = self.node_file(src, "proc/cmdline")?;
        kernel::add_cmdline(canon, present.then_some(self.buf.as_slice()));
        let present = self.node_file(src, "proc/modules")?;
        kernel::add_modules(canon, present.then_some(self.buf.as_slice()))
            .map_err(|e| Error::Parse { path: src.path_of("proc/modules"), message: e.to_string() })
    }
}

/// The subsystems [`Observer::observe_others`] reads (with `code`, whose
/// `maps` is read first, with memory-maps).
const OTHER_SUBSYSTEMS: [Subsystem; 7] = [
    Subsystem::Namespaces,
    Subsystem::Mounts,
    Subsystem::Limits,
    Subsystem::Lsm,
    Subsystem::Kernel,
    Subsystem::KernelTaint,
    Subsystem::SeccompFilters,
];

/// Takes the form of `sub` out of an observation's forms, to fill it.
/// What a process's `mountinfo` depends on (`shared.rs`), where the source
/// can tell it; `None` otherwise (each process then reads its own).
/// `ns_mnt`: the mount namespace as `namespaces` found it in the same
/// observation, if it did.
fn mount_view<S: Source + ?Sized>(src: &S, ns_mnt: Option<crate::FileId>) -> Option<crate::shared::MountView> {
    let ns = match ns_mnt {
        Some(ns) => ns,
        None => src.stat("ns/mnt").ok()?,
    };
    let (root, root_mount) = src.mount_of("root")?;
    Some(crate::shared::MountView { namespace: (ns.dev, ns.ino), root: (root.dev, root.ino), root_mount })
}

/// The `cgroup-limits` records of one cgroup from the limit files `files`
/// listed in an earlier round: `Ok(false)` when one of them could not be
/// read (the records added are then to be dropped, and the directory
/// listed: [`read_cgroup_limits`] says what a failed read means).
fn read_listed_limits<S: Source + ?Sized>(
    src: &S,
    h: &str,
    cg: &str,
    files: &[String],
    buf: &mut Vec<u8>,
    index: u32,
    log: &mut Vec<u8>,
) -> Result<bool, Error> {
    for file in files {
        match src.cgroup_read(h, cg, file, buf) {
            Ok(()) => LimitLog::entry(log, LimitLog::file_tag(src), index, file, buf),
            Err(e @ (Error::PermissionDenied { .. } | Error::Gone { .. })) => return Err(e),
            Err(_) => return Ok(false),
        }
    }
    // A cgroup with no limit file: nothing read, nothing to tell it from a
    // failed read by; listed again.
    Ok(!files.is_empty())
}

/// The `cgroup-limits` records of one cgroup: its limit files, or a record
/// saying why they cannot be read (a hierarchy not mounted here, a cgroup
/// removed since the membership was read, a file that fails). `Ok(true)`
/// when the directory was listed (`names` holds its files).
fn read_cgroup_limits<S: Source + ?Sized>(
    src: &S,
    h: &str,
    cg: &str,
    names: &mut Vec<String>,
    buf: &mut Vec<u8>,
    index: u32,
    log: &mut Vec<u8>,
) -> Result<bool, Error> {
    match src.cgroup_list(h, cg, names) {
        Ok(()) => {}
        Err(e @ (Error::Unavailable { .. } | Error::NotFound { .. })) => {
            // One hierarchy fdir cannot see (not mounted here, outside
            // its cgroup namespace), or a cgroup removed since the
            // membership was read: said in a record of its own; the
            // other hierarchies are still compared.
            let reason = match &e {
                Error::Unavailable { reason, .. } => reason.clone(),
                _ => "the cgroup directory does not exist".to_owned(),
            };
            LimitLog::entry(log, LimitLog::UNREADABLE, index, cgroup_limits::DIRECTORY, reason.as_bytes());
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    for file in names.iter() {
        if !cgroup_limits::is_limit_file(file) {
            continue;
        }
        match src.cgroup_read(h, cg, file, buf) {
            Ok(()) => LimitLog::entry(log, LimitLog::file_tag(src), index, file, buf),
            // Removed between the listing and the read.
            Err(Error::NotFound { .. }) => {}
            Err(e @ (Error::PermissionDenied { .. } | Error::Gone { .. })) => return Err(e),
            Err(Error::Io { source, .. }) => {
                LimitLog::entry(log, LimitLog::UNREADABLE, index, file, source.to_string().as_bytes());
            }
            Err(e) => LimitLog::entry(log, LimitLog::UNREADABLE, index, file, e.to_string().as_bytes()),
        }
    }
    Ok(true)
}

/// What a `cgroup-limits` read found, in order: entries of a tag byte, the
/// index of the cgroup (in the observer's cgroup list), a file name and a
/// payload, each length-prefixed, so that two different reads are two
/// different logs. The form is made from the log alone
/// ([`LimitLog::replay`]).
struct LimitLog;

impl LimitLog {
    /// A cgroup read here begins (its records are kept for the round).
    const CGROUP: u8 = b'C';
    /// A control file and its bytes, read from the file.
    const FILE: u8 = b'F';
    /// A control file and its bytes, made from the record of cgroup values
    /// (`source::cgvalues`).
    const MADE: u8 = b'M';
    /// A file (or the directory) that could not be read, and why.
    const UNREADABLE: u8 = b'U';
    /// A cgroup's records as another target read them this round.
    const LINES: u8 = b'L';

    /// The tag of a control file `src` just gave: made or read.
    fn file_tag<S: Source + ?Sized>(src: &S) -> u8 {
        if src.cgroup_read_made() { LimitLog::MADE } else { LimitLog::FILE }
    }

    fn entry(log: &mut Vec<u8>, tag: u8, index: u32, file: &str, payload: &[u8]) {
        log.push(tag);
        log.extend_from_slice(&index.to_le_bytes());
        log.extend_from_slice(&(file.len() as u64).to_le_bytes());
        log.extend_from_slice(file.as_bytes());
        log.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        log.extend_from_slice(payload);
    }

    /// The SHA-256 of the cgroups a log's indexes name.
    fn cgroups_digest(cgroups: &[(String, String)]) -> Digest {
        let mut h = crate::digest::Hasher::new();
        for (hierarchy, cgroup) in cgroups {
            for part in [hierarchy.as_bytes(), cgroup.as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
        }
        h.finish()
    }

    /// The SHA-256 of a read: of the cgroups the indexes name, each
    /// length-prefixed, then of the log.
    fn hashed(cgroups: &[(String, String)], log: &[u8]) -> Digest {
        let mut h = crate::digest::Hasher::new();
        for (hierarchy, cgroup) in cgroups {
            for part in [hierarchy.as_bytes(), cgroup.as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
        }
        h.update(log);
        h.finish()
    }

    /// The entries of `log`: (tag, cgroup index, file, payload); stops at
    /// a truncated entry (none is written).
    fn entries(log: &[u8]) -> impl Iterator<Item = (u8, usize, &[u8], &[u8])> + '_ {
        let mut rest = log;
        std::iter::from_fn(move || {
            let (&tag, r) = rest.split_first()?;
            let (index, r) = r.split_first_chunk::<4>()?;
            let (len, r) = r.split_first_chunk::<8>()?;
            let (file, r) = r.split_at_checked(usize::try_from(u64::from_le_bytes(*len)).ok()?)?;
            let (len, r) = r.split_first_chunk::<8>()?;
            let (payload, r) = r.split_at_checked(usize::try_from(u64::from_le_bytes(*len)).ok()?)?;
            rest = r;
            Some((tag, usize::try_from(u32::from_le_bytes(*index)).unwrap_or(usize::MAX), file, payload))
        })
    }

    /// Makes the form of `log` into `canon`; with `publish`, the records of
    /// each cgroup read here are kept for the other targets of the round.
    fn replay(cgroups: &[(String, String)], log: &[u8], canon: &mut Canon, publish: Option<&crate::shared::Shared>) {
        let mut open: Option<(usize, usize)> = None;
        let keep = |open: Option<(usize, usize)>, canon: &Canon| {
            if let (Some(shared), Some((i, mark))) = (publish, open)
                && let Some((h, cg)) = cgroups.get(i)
            {
                shared.keep_cgroup_limits(h, cg, canon.lines_since(mark));
            }
        };
        for (tag, i, file, payload) in LimitLog::entries(log) {
            let Some((h, cg)) = cgroups.get(i) else { continue };
            let file = std::str::from_utf8(file).unwrap_or("");
            match tag {
                LimitLog::CGROUP => {
                    keep(open.take(), canon);
                    open = Some((i, canon.len()));
                }
                LimitLog::FILE | LimitLog::MADE => cgroup_limits::add_file(canon, h, cg, file, payload),
                LimitLog::UNREADABLE => {
                    cgroup_limits::add_unreadable(canon, h, cg, file, &String::from_utf8_lossy(payload));
                }
                _ => {
                    keep(open.take(), canon);
                    for line in payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                        canon.push_line(std::str::from_utf8(line).unwrap_or(""));
                    }
                }
            }
        }
        keep(open.take(), canon);
    }
}

fn take_form(canons: &mut [(Subsystem, Canon)], sub: Subsystem) -> Option<Canon> {
    canons.iter_mut().find(|(s, _)| *s == sub).map(|(_, c)| std::mem::take(c))
}

/// Puts the form of `sub` back ([`take_form`]).
fn put_form(canons: &mut [(Subsystem, Canon)], sub: Subsystem, c: Canon) {
    if let Some((_, slot)) = canons.iter_mut().find(|(s, _)| *s == sub) {
        *slot = c;
    }
}

/// Splits a subsystem's result: observed, unobservable, or `Err` that fails
/// the whole observation.
fn settle(r: Result<(), Error>) -> Result<End, Error> {
    match r {
        Ok(()) => Ok(End::Observed),
        Err(e) => unobservable_reason(&e).map(|r| End::Unobservable(r.into())).ok_or(e),
    }
}

fn gone<S: Source + ?Sized>(src: &S) -> Error {
    match src.target() {
        Ok(t) => match t.pid() {
            Some(pid) => Error::Gone { pid },
            None => Error::Bug("a mock source reported itself dead".into()),
        },
        Err(e) => e,
    }
}
