//! Kernel objects that many targets share, read once per round.
//!
//! Five hundred processes in five cgroups lead to the same few cgroup
//! directories in each hierarchy, and most processes of a node share one
//! mount table. Such an object is read for the first target of a round that
//! leads to it; the records it gave are kept here and taken by every other
//! target of that round, so a round reads each distinct object once, not
//! once per process:
//!
//! - a cgroup's limit files (`cgroup-limits`), by hierarchy and cgroup path;
//! - the page cache's copy of a code file (`code`), chunk by chunk
//!   (`code_pages.rs`);
//! - a process's `mountinfo` (`mounts`), by what that text depends on: the
//!   mount namespace (`ns/mnt`) and the process's root, as a file and as the
//!   mount it is on (`statx` of `root`: two roots that are the same
//!   directory through different mounts see different mounts below them).
//!   Where the mount of the root cannot be told (a kernel before 5.8), each
//!   process reads its own;
//! - the digest of a form made of nothing but a small image of what it
//!   says (a process's namespace identities, its limit values), by
//!   subsystem and image: a one-shot check of five hundred processes in
//!   the same namespaces, with the same limits, makes each form once.
//!
//! A round is one [`crate::Monitor`] cycle, all its parts:
//! [`Shared::begin_round`] forgets what the last one read, so nothing older
//! than the cycle is ever used, and each distinct cgroup and mount view is
//! read once a cycle, however many parts the cycle is spread over (the
//! processes of every part lead to the same few: reading them again for each
//! part was a fifth of a cycle of an idle node, BENCHMARKS.md). A part
//! ([`Shared::begin_part`]) forgets only the code chunks: their
//! sharing's lifetime stays a part (docs/code-pages.md), and they are what
//! would make a cycle's store large. An object's change is seen by the
//! next cycle, at most one interval after it, as a change of a process's own
//! files is; a trigger's re-check reads afresh at once.
//!
//! A read after a drift (the confirming re-read, and every read while a
//! drift lasts, until it settles: ARCHITECTURE.md, invariant 17) never
//! takes from here: it reads the files again, so a read
//! glitch seen by one target is not repeated to the others as confirmed,
//! and what it read replaces what is kept for the rest of the round.
//!
//! One thing is kept across rounds: which limit files a cgroup directory
//! has ([`Shared::limit_files`]), so that a round reads them without
//! listing the directory first (the listing was a third of the system
//! calls of a cycle of one process). Never their content. The set of
//! control files of a cgroup follows from what is recorded anyway: in
//! cgroup v1 from the hierarchy's controllers (named in every thread's
//! `cgroup` line), in v2 from the parent's `cgroup.subtree_control` and the
//! cgroup's `cgroup.type` (limit files of an ancestor or of the cgroup, read
//! every round); a removed file or cgroup fails its read, and any read of a
//! listed file that fails sends the reader back to a listing. The
//! directory is still listed every [`LIST_EVERY`] parts (of rounds; a
//! round of one part is one) once [`LIST_AFTER`] has passed too (a watch
//! every 100 ms listed every directory each second), and on every read
//! after a drift.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) use crate::source::MountView;

/// What this round has read of the objects targets share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The `cgroup-limits` records of a cgroup directory, by hierarchy and
    /// cgroup path: `key\tvalue` lines, one per line.
    cgroup_limits: Mutex<HashMap<String, HashMap<String, Arc<str>>>>,
    /// The `mounts` records of a mount view, as [`MountView`] names it, and
    /// the digest of the form they make.
    mounts: Mutex<HashMap<MountView, (Arc<str>, crate::Digest)>>,
    /// The digest of a process's `cgroup-limits` form made of these records
    /// (those of each cgroup it leads to, in its order), by the list of
    /// those cgroups ([`cgroup_list_key`]): made once a round for all the
    /// processes that lead to the same cgroups, and found with one lookup.
    /// Forgotten whenever a cgroup's records are read again in the round
    /// (after a drift): a form is only ever of the records kept now.
    cgroup_forms: Mutex<HashMap<Vec<u8>, crate::Digest>>,
    /// The digest of a form made of nothing but a small image of what it
    /// says (a process's namespace identities, its limit values), by that
    /// image after its subsystem's name ([`Shared::round_form`]): a pure
    /// function of it, made once a round for the processes whose first
    /// observation finds the same image.
    round_forms: Mutex<HashMap<Vec<u8>, crate::Digest>>,
    /// The values of shared code chunks (`code`, see `code_pages.rs`).
    code: crate::code_pages::CodePages,
    /// The limit files of a cgroup directory as last listed, by hierarchy
    /// and cgroup path, with the round of that listing; kept across rounds
    /// (never their content).
    limit_files: Mutex<HashMap<String, HashMap<String, Listing>>>,
    /// This round's `cgroup` text of a process of one thread, by its
    /// cgroup set (`Source::cgroup_set`): every process in the same
    /// cgroups has the same, read by the first.
    cgroup_texts: Mutex<HashMap<u64, Arc<[u8]>>>,
    /// Times a cgroup's records were read again within a round (each
    /// forgets the forms): a form made of records gathered before one is
    /// not kept.
    forms_epoch: std::sync::atomic::AtomicU64,
    /// Parts of rounds begun (a round's first part too).
    round: std::sync::atomic::AtomicU64,
    /// Whether the monitor has one target: what a round keeps would be
    /// taken by no one ([`Shared::solo`]).
    solo: std::sync::atomic::AtomicBool,
    /// [`LIST_AFTER`] (zero in tests of the rounds alone).
    list_after: std::time::Duration,
}

/// The limit files of one cgroup directory, and the round and time they
/// were listed at.
type Listing = (Arc<[String]>, u64, std::time::Instant);

/// A cgroup directory whose limit files were listed this many parts ago
/// (of rounds: [`Shared::begin_part`]) is listed again.
pub(crate) const LIST_EVERY: u64 = 10;

/// ... and at least this long ago.
pub(crate) const LIST_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The key of a list of cgroups (hierarchy and path of each, in order) in
/// [`Shared::cgroup_form`]: each name preceded by its length, so that no
/// two lists have the same key whatever their names hold.
pub(crate) fn cgroup_list_key(cgroups: &[(String, String)], key: &mut Vec<u8>) {
    key.clear();
    for (h, cg) in cgroups {
        for name in [h, cg] {
            key.extend_from_slice(&u64::try_from(name.len()).unwrap_or(u64::MAX).to_le_bytes());
            key.extend_from_slice(name.as_bytes());
        }
    }
}

/// The key of the list of cgroups one `cgroup` text makes (a process of
/// one thread: the list is its lines' cgroups and their ancestors), in the
/// same store as [`cgroup_list_key`]'s: it begins with a length no name
/// has, so that no list's key is a text's.
pub(crate) fn cgroup_text_key(text: &[u8], key: &mut Vec<u8>) {
    key.clear();
    key.extend_from_slice(&u64::MAX.to_le_bytes());
    key.extend_from_slice(text);
}

impl Shared {
    /// An empty store, to be shared by the targets of one monitor.
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared { list_after: LIST_AFTER, ..Shared::default() })
    }

    /// Whether a listing of `round` made at `at` is still used in round
    /// `now` (`periods` of [`LIST_EVERY`] rounds and of `list_after`).
    fn fresh_listing(&self, now: u64, round: u64, at: std::time::Instant, periods: u32) -> bool {
        now.saturating_sub(round) < LIST_EVERY * u64::from(periods) || at.elapsed() < self.list_after * periods
    }

    /// Starts a round (a cycle): what the last round read is forgotten.
    pub(crate) fn begin_round(&self) {
        if let Ok(mut m) = self.cgroup_limits.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.mounts.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.cgroup_forms.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.round_forms.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.cgroup_texts.lock() {
            m.clear();
        }
        self.begin_part();
    }

    /// The `cgroup` text a process of cgroup set `set` read this round.
    pub(crate) fn cgroup_text(&self, set: u64) -> Option<Arc<[u8]>> {
        self.cgroup_texts.lock().ok()?.get(&set).cloned()
    }

    /// Keeps `text`, read this round by a process whose cgroup set was
    /// `set` before and after it, for the others of that set.
    pub(crate) fn keep_cgroup_text(&self, set: u64, text: &[u8]) {
        if let Ok(mut m) = self.cgroup_texts.lock() {
            m.entry(set).or_insert_with(|| Arc::from(text));
        }
    }

    /// Starts a part of a round after its first: the code chunks the last
    /// part read are forgotten, the round's cgroups and mount views kept.
    pub(crate) fn begin_part(&self) {
        self.code.clear();
        let round = self.round.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        // Listings too old to be used are forgotten (a cgroup no target
        // leads to any more is not kept), every LIST_EVERY rounds: a
        // listing is used only while fresh (`limit_files`), so this is
        // housekeeping, and a pass over every hierarchy's map, cold after
        // the interval's sleep, was 3-4% of a watch of one process.
        if round.is_multiple_of(LIST_EVERY)
            && let Ok(mut m) = self.limit_files.lock()
        {
            for cgroups in m.values_mut() {
                // Kept one period longer than used: a listing that finds
                // the same files renews the one kept.
                cgroups.retain(|_, (_, listed, at)| self.fresh_listing(round, *listed, *at, 2));
            }
            m.retain(|_, cgroups| !cgroups.is_empty());
        }
    }

    /// Says whether the monitor has one target (or none), set before a round.
    pub(crate) fn set_solo(&self, solo: bool) {
        self.solo.store(solo, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the monitor has one target: its round's objects are read by
    /// that target alone, and nothing it reads is kept for others (the
    /// cgroups' records and the mount tables; the listings of limit files
    /// still are, across rounds). Such a target keeps its own memos of what
    /// it read instead (`observe.rs`).
    pub(crate) fn solo(&self) -> bool {
        self.solo.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The limit files of `cgroup` in `hierarchy` as listed fewer than
    /// [`LIST_EVERY`] rounds ago, if they were.
    pub(crate) fn limit_files(&self, hierarchy: &str, cgroup: &str) -> Option<Arc<[String]>> {
        let round = self.round.load(std::sync::atomic::Ordering::Relaxed);
        let m = self.limit_files.lock().ok()?;
        let (files, listed, at) = m.get(hierarchy)?.get(cgroup)?;
        self.fresh_listing(round, *listed, *at, 1).then(|| Arc::clone(files))
    }

    /// Keeps the limit files just listed of `cgroup` in `hierarchy`.
    /// A listing the same as the one kept renews it in place (a steady
    /// listing allocates nothing).
    pub(crate) fn keep_limit_files<'a>(
        &self,
        hierarchy: &str,
        cgroup: &str,
        files: impl Iterator<Item = &'a str> + Clone,
    ) {
        let round = self.round.load(std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut m) = self.limit_files.lock() {
            let now = std::time::Instant::now();
            if let Some((kept, listed, at)) = m.get_mut(hierarchy).and_then(|c| c.get_mut(cgroup))
                && kept.iter().map(String::as_str).eq(files.clone())
            {
                *listed = round;
                *at = now;
                return;
            }
            m.entry(hierarchy.to_owned())
                .or_default()
                .insert(cgroup.to_owned(), (files.map(str::to_owned).collect(), round, now));
        }
    }

    /// Forgets the listing of `cgroup` in `hierarchy`: one of its files
    /// could not be read.
    pub(crate) fn forget_limit_files(&self, hierarchy: &str, cgroup: &str) {
        if let Ok(mut m) = self.limit_files.lock()
            && let Some(cgroups) = m.get_mut(hierarchy)
        {
            cgroups.remove(cgroup);
        }
    }

    /// The code chunks of files this round has read (`code_pages.rs`).
    pub(crate) fn code(&self) -> &crate::code_pages::CodePages {
        &self.code
    }

    /// The `mounts` records of `view` and the digest of their form, if a
    /// target read them this round.
    pub(crate) fn mounts(&self, view: &MountView) -> Option<(Arc<str>, crate::Digest)> {
        self.mounts.lock().ok()?.get(view).cloned()
    }

    /// Keeps the `mounts` records just read for `view`, and the digest of
    /// their form, for the rest of the round.
    pub(crate) fn keep_mounts<'a>(&self, view: MountView, lines: impl Iterator<Item = &'a str>, digest: crate::Digest) {
        let text = joined(lines);
        if let Ok(mut m) = self.mounts.lock() {
            m.insert(view, (Arc::from(text), digest));
        }
    }

    /// The digest of the `cgroup-limits` form made of the records this
    /// round keeps of the cgroups whose [`cgroup_list_key`] is `key`, if a
    /// target made it.
    pub(crate) fn cgroup_form(&self, key: &[u8]) -> Option<crate::Digest> {
        self.cgroup_forms.lock().ok()?.get(key).copied()
    }

    /// The digest of the form another target made this round of `key` (a
    /// subsystem's name, a NUL, the image the form is made of).
    pub(crate) fn round_form(&self, key: &[u8]) -> Option<crate::Digest> {
        self.round_forms.lock().ok()?.get(key).copied()
    }

    /// How many forms the round keeps by their image.
    #[cfg(test)]
    pub(crate) fn round_forms(&self) -> usize {
        self.round_forms.lock().map_or(0, |m| m.len())
    }

    /// Keeps the digest of the form made of `key` for the rest of the round.
    pub(crate) fn keep_round_form(&self, key: &[u8], digest: crate::Digest) {
        if let Ok(mut m) = self.round_forms.lock()
            && !m.contains_key(key)
        {
            m.insert(key.to_vec(), digest);
        }
    }

    /// The count of re-reads that forgot the forms, to pass to
    /// [`Shared::keep_cgroup_form`]: taken before the records are.
    pub(crate) fn forms_epoch(&self) -> u64 {
        self.forms_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps the digest of the `cgroup-limits` form made of the records
    /// this round keeps of the cgroups whose key is `key`, taken when the
    /// [`Shared::forms_epoch`] was `epoch`: not if a cgroup's records have
    /// been read again since (the form may be of what they replaced).
    pub(crate) fn keep_cgroup_form(&self, key: &[u8], digest: crate::Digest, epoch: u64) {
        if let Ok(mut m) = self.cgroup_forms.lock()
            && self.forms_epoch.load(std::sync::atomic::Ordering::Acquire) == epoch
        {
            m.insert(key.to_vec(), digest);
        }
    }

    /// The records of `cgroup` in `hierarchy`, if a target read them this
    /// round.
    pub(crate) fn cgroup_limits(&self, hierarchy: &str, cgroup: &str) -> Option<Arc<str>> {
        self.cgroup_limits.lock().ok()?.get(hierarchy)?.get(cgroup).cloned()
    }

    /// Keeps the records just read of `cgroup` in `hierarchy` for the rest
    /// of the round.
    pub(crate) fn keep_cgroup_limits<'a>(&self, hierarchy: &str, cgroup: &str, lines: impl Iterator<Item = &'a str>) {
        let text = joined(lines);
        let replaced = match self.cgroup_limits.lock() {
            Ok(mut m) => {
                m.entry(hierarchy.to_owned()).or_default().insert(cgroup.to_owned(), Arc::from(text)).is_some()
            }
            Err(_) => false,
        };
        // Read again (after a drift): no form made of what it replaces stays,
        // nor is one kept that was being made of it.
        if replaced && let Ok(mut m) = self.cgroup_forms.lock() {
            self.forms_epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            m.clear();
        }
    }
}

/// Records as kept: `key\tvalue` lines, each ending in a newline.
fn joined<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_round_keeps_is_gone_in_the_next() {
        let s = Shared::new();
        assert!(s.cgroup_limits("pids", "/a").is_none());
        s.keep_cgroup_limits("pids", "/a", ["pids /a pids.max\t100", "pids /a x\ty"].into_iter());
        assert_eq!(s.cgroup_limits("pids", "/a").as_deref(), Some("pids /a pids.max\t100\npids /a x\ty\n"));
        assert!(s.cgroup_limits("pids", "/b").is_none());
        assert!(s.cgroup_limits("memory", "/a").is_none());
        let view = MountView { namespace: (4, 4026531841), root: (254, 2), root_mount: 21 };
        let d = crate::Digest::of(b"a form");
        s.keep_mounts(view, ["mount /\text4 rw"].into_iter(), d);
        assert_eq!(s.mounts(&view).map(|(l, d)| (l.to_string(), d)), Some(("mount /\text4 rw\n".to_owned(), d)));
        let mut key = Vec::new();
        cgroup_list_key(&[("pids".to_owned(), "/a".to_owned())], &mut key);
        assert!(s.cgroup_form(&key).is_none());
        s.keep_cgroup_form(&key, d, s.forms_epoch());
        assert_eq!(s.cgroup_form(&key), Some(d));
        // Records of another cgroup kept: the form stays.
        s.keep_cgroup_limits("pids", "/b", ["pids /b pids.max\t5"].into_iter());
        assert_eq!(s.cgroup_form(&key), Some(d));
        // The same records read again (after a drift) are another form's,
        // and a form being made of the records before is not kept.
        let epoch = s.forms_epoch();
        s.keep_cgroup_limits("pids", "/a", ["pids /a pids.max\t100", "pids /a x\ty"].into_iter());
        assert!(s.cgroup_form(&key).is_none());
        s.keep_cgroup_form(&key, d, epoch);
        assert!(s.cgroup_form(&key).is_none());
        s.keep_cgroup_form(&key, d, s.forms_epoch());
        assert!(s.mounts(&MountView { root_mount: 22, ..view }).is_none(), "another mount of the same root");
        assert!(s.round_form(b"limits\0numbers").is_none());
        s.keep_round_form(b"limits\0numbers", d);
        assert_eq!(s.round_form(b"limits\0numbers"), Some(d));
        assert!(s.round_form(b"namespaces\0numbers").is_none(), "another subsystem's");
        s.begin_round();
        assert!(s.cgroup_limits("pids", "/a").is_none());
        assert!(s.mounts(&view).is_none());
        assert!(s.cgroup_form(&key).is_none());
        assert!(s.round_form(b"limits\0numbers").is_none());
    }

    #[test]
    fn a_part_keeps_the_rounds_cgroups_and_mount_views_and_forgets_its_code() {
        let s = Shared::new();
        s.begin_round();
        s.keep_cgroup_limits("pids", "/a", ["pids /a pids.max\t100"].into_iter());
        let view = MountView { namespace: (4, 4026531841), root: (254, 2), root_mount: 21 };
        let d = crate::Digest::of(b"a form");
        s.keep_mounts(view, ["mount /\text4 rw"].into_iter(), d);
        let mut key = Vec::new();
        cgroup_list_key(&[("pids".to_owned(), "/a".to_owned())], &mut key);
        s.keep_cgroup_form(&key, d, s.forms_epoch());
        let chunk = crate::code_pages::ChunkKey { dev: 1, path: 2, inode: 3, at: 0, len: 4096 };
        let read = || Ok(("chunk".to_owned(), 4096));
        assert!(s.code().value(chunk, read).is_ok_and(|(_, fresh)| fresh));
        assert!(s.code().value(chunk, read).is_ok_and(|(_, fresh)| !fresh), "taken within the part");
        for _ in 1..4 {
            s.begin_part();
            assert!(s.cgroup_limits("pids", "/a").is_some(), "read once a round, whatever its parts");
            assert!(s.mounts(&view).is_some());
            assert_eq!(s.cgroup_form(&key), Some(d));
            assert!(s.code().value(chunk, read).is_ok_and(|(_, fresh)| fresh), "code chunks last a part");
        }
        s.begin_round();
        assert!(s.cgroup_limits("pids", "/a").is_none(), "a new round reads afresh");
        assert!(s.mounts(&view).is_none());
        assert!(s.cgroup_form(&key).is_none());
    }

    #[test]
    fn lists_of_cgroups_have_keys_of_their_own() {
        let key = |l: &[(&str, &str)]| {
            let l: Vec<(String, String)> = l.iter().map(|(h, c)| ((*h).to_owned(), (*c).to_owned())).collect();
            let mut k = Vec::new();
            cgroup_list_key(&l, &mut k);
            k
        };
        assert_ne!(key(&[("pids", "/a"), ("memory", "/")]), key(&[("pids", "/a\nmemory"), ("", "/")]));
        assert_ne!(key(&[("pids", "/a")]), key(&[("pids", "/a"), ("", "")]));
        assert_eq!(key(&[("pids", "/a")]), key(&[("pids", "/a")]));
        // A text's key is no list's, whatever the text.
        let mut t = Vec::new();
        cgroup_text_key(b"8:pids:/a\n", &mut t);
        assert_ne!(t, key(&[("pids", "/a")]));
        assert!(t.starts_with(&u64::MAX.to_le_bytes()));
        let mut u = Vec::new();
        cgroup_text_key(b"8:pids:/b\n", &mut u);
        assert_ne!(t, u);
    }

    #[test]
    fn a_listing_of_limit_files_is_used_while_young_in_rounds_or_in_time() {
        let s = Shared::new();
        s.begin_round();
        s.keep_limit_files("pids", "/a", ["pids.max"].into_iter());
        for _ in 0..3 * LIST_EVERY {
            s.begin_round();
        }
        assert!(s.limit_files("pids", "/a").is_some(), "{LIST_EVERY} rounds within {LIST_AFTER:?}: not listed again");
    }

    #[test]
    fn a_listing_of_limit_files_is_used_for_fewer_than_list_every_rounds() {
        // Rounds alone: as if every round were longer than LIST_AFTER.
        let s = Shared::default();
        s.begin_round();
        assert!(s.limit_files("pids", "/a").is_none());
        s.keep_limit_files("pids", "/a", ["cgroup.clone_children", "pids.max"].into_iter());
        for _ in 1..LIST_EVERY {
            s.begin_round();
            assert_eq!(s.limit_files("pids", "/a").as_deref().map(<[String]>::len), Some(2));
            assert!(s.limit_files("pids", "/b").is_none());
            assert!(s.limit_files("memory", "/a").is_none());
        }
        s.begin_round();
        assert!(s.limit_files("pids", "/a").is_none(), "listed again every {LIST_EVERY} rounds");
        // The same files listed again: the listing kept is renewed, not
        // made again.
        s.keep_limit_files("pids", "/a", ["cgroup.clone_children", "pids.max"].into_iter());
        let renewed = s.limit_files("pids", "/a").expect("renewed");
        assert_eq!(renewed.len(), 2);
        s.begin_round();
        assert!(Arc::ptr_eq(&renewed, &s.limit_files("pids", "/a").expect("kept")), "a renewed listing is the same");
        // Other files: the new listing replaces it.
        s.keep_limit_files("pids", "/a", ["pids.max"].into_iter());
        assert_eq!(s.limit_files("pids", "/a").as_deref().map(<[String]>::len), Some(1));
        // A listing no target renews is forgotten, within three periods
        // (the housekeeping runs every LIST_EVERY rounds).
        for _ in 0..3 * LIST_EVERY {
            s.begin_round();
        }
        let kept = s.limit_files.lock().map(|m| m.get("pids").is_some_and(|c| c.contains_key("/a")));
        assert_eq!(kept.ok(), Some(false), "a listing no target renews is forgotten");
        s.keep_limit_files("pids", "/a", ["pids.max"].into_iter());
        assert!(s.limit_files("pids", "/a").is_some());
        s.forget_limit_files("pids", "/a");
        assert!(s.limit_files("pids", "/a").is_none(), "forgotten after a failed read");
    }
}
