//! Kept-open file descriptors for the source layer. A `pread` at offset 0
//! makes the kernel generate a /proc file afresh, so a file opened once is
//! read again with one system call instead of three (open, read, close).
//!
//! Which files may be kept is the caller's choice: a file that binds state at
//! open time must not be, or only under a key that names that state
//! (`mountinfo` binds the mount namespace and root, so a kept one would not
//! show an `unshare`: it is kept under its view, `procfs.rs`; `mem` binds
//! the address space). `maps` binds the address space too, but is read
//! again from a fresh open when a kept descriptor reads empty (the process
//! has exec'd).
//!
//! A descriptor not used during an observation is closed at its end (a
//! thread that exited, a cgroup left), and the number kept across all
//! sources is bounded by half the open-file limit; past it, files are
//! opened and closed as before.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::io::Errno;

/// Descriptors kept by every cache of this process.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// At most half the open-file soft limit (read once, after the command line
/// has raised it), between 16 and 65536.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let soft = limit.current.unwrap_or(1 << 20);
        usize::try_from(soft / 2).unwrap_or(usize::MAX).clamp(16, 1 << 16)
    })
}

/// Descriptors a target keeps open, about (its directory, `stat`, `maps`,
/// `task`, a status and a cgroup file per thread, more with more
/// subsystems): what [`reserve`] grows the table by per target.
pub(crate) const PER_TARGET: usize = 8;

/// Grows this process's descriptor table now to hold `n` more kept
/// descriptors (within the budget). The kernel doubles the table as
/// descriptors are opened; once threads share it, every doubling waits for
/// an RCU grace period — milliseconds each on a VM, 20 to 30 ms in all for
/// the first check of 500 processes on two threads. Called before such
/// threads start, it grows the table once (with one thread, without
/// waiting). Best effort: a failure only means the table grows later.
pub(crate) fn reserve(n: usize) {
    // The table never shrinks: once grown this far, nothing to do (no system
    // call in a steady-state cycle).
    static RESERVED: AtomicUsize = AtomicUsize::new(0);
    let want = kept().saturating_add(n).min(budget()).saturating_add(64);
    if want <= RESERVED.load(Ordering::Relaxed) {
        return;
    }
    RESERVED.fetch_max(want, Ordering::Relaxed);
    let Ok(min) = i32::try_from(want) else { return };
    if let Ok(fd) =
        rustix::fs::open("/", rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
    {
        // The lowest free descriptor at or above `min`: the table is grown to
        // cover it; both are closed at once.
        drop(rustix::io::fcntl_dupfd_cloexec(&fd, min));
    }
}

/// How many descriptors all caches of this process keep open now.
pub fn kept() -> usize {
    KEPT.load(Ordering::Relaxed)
}

#[derive(Debug)]
enum Kept {
    File(OwnedFd),
    /// A directory, read through a buffer on the stack of each listing: a
    /// `rustix::fs::Dir` keeps a buffer of its own that grows to twice a
    /// listing and more (18 KiB for a v1 cgroup directory; 2.2 MB for the
    /// ~120 cgroup directories of a node, in a watch that peaked at 25 MB).
    Dir(OwnedFd),
}

#[derive(Debug)]
struct Entry {
    kept: Kept,
    /// The observation that last used it.
    used: u32,
}

/// The kept descriptors of one source.
#[derive(Debug, Default)]
pub(crate) struct FdCache {
    entries: RefCell<BTreeMap<String, Entry>>,
    generation: Cell<u32>,
    /// Keep nothing: each file is closed once read (a source read once).
    transient: Cell<bool>,
}

/// How a file's content ends, which decides how many reads it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Produced whole by one `show` call (the kernel's `single_open` files:
    /// `status`, `stat`, `cgroup`, `limits`): a read shorter than the buffer
    /// holds all of it, so no second read is needed to see the end.
    Whole,
    /// A sequence of records, handed out a kernel buffer at a time: read
    /// until a read returns nothing.
    Records,
    /// Records, and an empty read of a kept descriptor means it is stale
    /// (`maps` after an exec): it is opened afresh.
    RecordsOrStale,
}

/// Reads a whole file from offset 0 with as few `pread`s as its size and
/// shape need.
pub(crate) fn pread_all(fd: &OwnedFd, buf: &mut Vec<u8>, max: usize, shape: Shape) -> Result<(), Errno> {
    buf.clear();
    loop {
        // Start small (most /proc files are a few KiB; one buffer per target
        // adds up on a node of a thousand processes) and double as needed.
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let offset = u64::try_from(buf.len()).map_err(|_| Errno::FBIG)?;
        let asked = buf.capacity() - buf.len();
        let n = match rustix::io::pread(fd, rustix::buffer::spare_capacity(buf), offset) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if n == 0 || (shape == Shape::Whole && n < asked) || (shape == Shape::RecordsOrStale && ends_at_gate(buf)) {
            return Ok(());
        }
        if buf.len() > max {
            return Err(Errno::FBIG);
        }
    }
}

/// The line `maps` shows for x86-64's vsyscall page (the gate area),
/// `[vsyscall]` at a kernel address no user mapping can have.
const GATE_LINE_START: &[u8] = b"ffffffffff600000-ffffffffff601000 ";

/// Whether `maps` text ends with the gate area's line: the kernel shows it
/// after every mapping and nothing after it (`m_next` of
/// `fs/proc/task_mmu.c`), so the read that would return nothing is spared.
/// Where there is no gate (vsyscall off, a 32-bit process, another
/// architecture), `maps` is read to its empty read as before.
fn ends_at_gate(text: &[u8]) -> bool {
    let Some(body) = text.strip_suffix(b" [vsyscall]\n") else { return false };
    let line = body.rsplit(|&c| c == b'\n').next().unwrap_or(body);
    line.starts_with(GATE_LINE_START)
}

impl FdCache {
    /// Starts an observation: descriptors not used until [`FdCache::end`]
    /// are closed then.
    pub(crate) fn begin(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
    }

    /// Ends an observation: closes the descriptors it did not use.
    pub(crate) fn end(&self) {
        let now = self.generation.get();
        let mut map = self.entries.borrow_mut();
        let before = map.len();
        map.retain(|_, e| e.used == now);
        KEPT.fetch_sub(before - map.len(), Ordering::Relaxed);
    }

    /// Closes every kept descriptor.
    pub(crate) fn clear(&self) {
        let mut map = self.entries.borrow_mut();
        KEPT.fetch_sub(map.len(), Ordering::Relaxed);
        map.clear();
    }

    /// Closes every kept descriptor and keeps none from now on: each file is
    /// closed once read (a one-shot check closes each on the core that read
    /// it, not all of them in the exit on one core).
    pub(crate) fn keep_nothing(&self) {
        self.clear();
        self.transient.set(true);
    }

    /// Whether it keeps what it opens (not after [`FdCache::keep_nothing`]).
    pub(crate) fn keeps(&self) -> bool {
        !self.transient.get()
    }

    /// Reads `key` through its kept descriptor, or opens it with `open`,
    /// reads it, and keeps it if the budget allows. With
    /// [`Shape::RecordsOrStale`], an empty read of a kept descriptor is
    /// retried on a fresh one.
    /// `ESRCH` from a kept descriptor (the thread or process is gone) is
    /// returned as is, without a reopen.
    pub(crate) fn read(
        &self,
        key: &str,
        shape: Shape,
        max: usize,
        open: impl FnOnce() -> Result<OwnedFd, Errno>,
        buf: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        self.read_keeping_if(key, shape, max, open, |_| true, buf)
    }

    /// [`FdCache::read`], where a descriptor just opened is kept only if
    /// `keep` says so of what it read (each later read of a kept one is
    /// taken as is).
    pub(crate) fn read_keeping_if(
        &self,
        key: &str,
        shape: Shape,
        max: usize,
        open: impl FnOnce() -> Result<OwnedFd, Errno>,
        keep: impl FnOnce(&[u8]) -> bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        let now = self.generation.get();
        {
            let mut map = self.entries.borrow_mut();
            if let Some(Entry { kept: Kept::File(fd), used }) = map.get_mut(key) {
                match pread_all(fd, buf, max, shape) {
                    Ok(()) if !(shape == Shape::RecordsOrStale && buf.is_empty()) => {
                        *used = now;
                        return Ok(());
                    }
                    Err(Errno::FBIG) => return Err(Errno::FBIG),
                    Err(Errno::SRCH) => {
                        map.remove(key);
                        KEPT.fetch_sub(1, Ordering::Relaxed);
                        return Err(Errno::SRCH);
                    }
                    // Stale (the process exec'd, the cgroup was removed ...):
                    // the file is opened afresh below.
                    Ok(()) | Err(_) => {
                        map.remove(key);
                        KEPT.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let fd = open()?;
        pread_all(&fd, buf, max, shape)?;
        if keep(buf) {
            self.keep(key, Kept::File(fd), now);
        }
        Ok(())
    }

    fn keep(&self, key: &str, kept: Kept, now: u32) {
        if self.transient.get() {
            return;
        }
        if KEPT.load(Ordering::Relaxed) < budget() {
            KEPT.fetch_add(1, Ordering::Relaxed);
            if let Some(old) = self.entries.borrow_mut().insert(key.to_owned(), Entry { kept, used: now }) {
                drop(old);
                KEPT.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Lists the directory `key` through its kept, rewound handle, or opens it
    /// with `open` (and keeps it if the budget allows). Calls `each` with
    /// every entry's name and type, `.` and `..` left out.
    pub(crate) fn list(
        &self,
        key: &str,
        open: impl FnOnce() -> Result<OwnedFd, Errno>,
        mut each: impl FnMut(&[u8], rustix::fs::FileType),
    ) -> Result<(), Errno> {
        let now = self.generation.get();
        // Any entry fits (a name is at most 255 bytes); a large directory
        // takes more `getdents64` calls.
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut read_all = |dir: &OwnedFd, rewind: bool| -> Result<(), Errno> {
            if rewind {
                rustix::fs::seek(dir, rustix::fs::SeekFrom::Start(0))?;
            }
            let mut entries = rustix::fs::RawDir::new(dir, &mut buf);
            while let Some(entry) = entries.next() {
                let entry = entry?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    each(name, entry.file_type());
                }
            }
            Ok(())
        };
        {
            let mut map = self.entries.borrow_mut();
            if let Some(Entry { kept: Kept::Dir(dir), used }) = map.get_mut(key) {
                match read_all(dir, true) {
                    Ok(()) => {
                        *used = now;
                        return Ok(());
                    }
                    Err(e) => {
                        map.remove(key);
                        KEPT.fetch_sub(1, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }
        let dir = open()?;
        read_all(&dir, false)?;
        self.keep(key, Kept::Dir(dir), now);
        Ok(())
    }

    /// Keeps `key`'s descriptor, where one is kept, through this
    /// observation without reading it: a file read only every few
    /// observations (a status text keyed by the process's status inputs)
    /// stays open between its reads.
    pub(crate) fn keep_unread(&self, key: &str) {
        let now = self.generation.get();
        if let Some(e) = self.entries.borrow_mut().get_mut(key) {
            e.used = now;
        }
    }

    /// Whether `key` is kept, or would be kept if opened now (the cache
    /// keeps descriptors and the budget has room): a caller with a cheaper
    /// way than opening `key` for one use takes it otherwise.
    pub(crate) fn holds_or_can_keep(&self, key: &str) -> bool {
        !self.transient.get() && (self.entries.borrow().contains_key(key) || KEPT.load(Ordering::Relaxed) < budget())
    }

    /// Runs `f` on the directory `key`, kept open (opened with `open`, and
    /// kept if the budget allows): for lookups relative to it, such as
    /// `readlinkat`, one path component shorter than from the process's
    /// own directory. A kept directory that fails with anything but
    /// `ENOENT` (a name it does not hold) is dropped, and opened afresh by
    /// the next call.
    pub(crate) fn at<T>(
        &self,
        key: &str,
        open: impl FnOnce() -> Result<OwnedFd, Errno>,
        f: impl FnOnce(&OwnedFd) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let now = self.generation.get();
        {
            let mut map = self.entries.borrow_mut();
            if let Some(Entry { kept: Kept::Dir(dir), used }) = map.get_mut(key) {
                let result = f(dir);
                match result {
                    Err(e) if e != Errno::NOENT => {
                        map.remove(key);
                        KEPT.fetch_sub(1, Ordering::Relaxed);
                    }
                    _ => *used = now,
                }
                return result;
            }
        }
        let dir = open()?;
        let result = f(&dir);
        self.keep(key, Kept::Dir(dir), now);
        result
    }

    /// How many descriptors this cache keeps.
    pub(crate) fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

impl Drop for FdCache {
    fn drop(&mut self) {
        KEPT.fetch_sub(self.entries.get_mut().len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    fn open(path: &str) -> impl FnOnce() -> Result<OwnedFd, Errno> + '_ {
        move || rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
    }

    #[test]
    fn maps_ends_at_the_gate_line_only() {
        let gate = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
        let user = "7ffc7dcad000-7ffc7dcce000 rw-p 00000000 00:00 0                          [stack]\n";
        assert!(ends_at_gate(format!("{user}{gate}").as_bytes()));
        assert!(ends_at_gate(gate.as_bytes()), "the gate alone, as the last read of a long maps");
        assert!(!ends_at_gate(user.as_bytes()));
        assert!(!ends_at_gate(b""));
        // A file named "[vsyscall]" mapped by a process is not the gate.
        let named = "7f0000000000-7f0000001000 r--p 00000000 08:01 42    /tmp/x [vsyscall]\n";
        assert!(!ends_at_gate(format!("{gate}{named}").as_bytes()));
        // Cut inside the gate's line: not the end.
        assert!(!ends_at_gate(&gate.as_bytes()[..40]));
    }

    #[test]
    fn maps_read_to_its_gate_is_the_whole_file() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let path = format!("/proc/{}/maps", child.id());
        // Once `sleep` has settled (its loader done), its maps stay put.
        let mut whole = Vec::new();
        for _ in 0..100 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let now = std::fs::read(&path).unwrap();
            if now == whole && std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap() == "sleep\n" {
                break;
            }
            whole = now;
        }
        let mut buf = Vec::new();
        let fd = open(&path)().unwrap();
        pread_all(&fd, &mut buf, 1 << 24, Shape::RecordsOrStale).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), String::from_utf8_lossy(&whole));
    }

    #[test]
    fn reserve_grows_the_descriptor_table_at_once_and_leaves_nothing_open() {
        let fd_size = || -> usize {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status.lines().find_map(|l| l.strip_prefix("FDSize:")).unwrap().trim().parse().unwrap()
        };
        let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let want = kept().saturating_add(3000).min(budget()) + 64;
        let fds = open_fds();
        reserve(3000);
        assert!(fd_size() >= want, "FDSize {} < {want}", fd_size());
        // Other tests open and close files meanwhile: allow for them.
        assert!(open_fds() <= fds + 8, "{} fds open after, {fds} before", open_fds());
    }

    #[test]
    fn a_directory_is_kept_for_lookups_and_answers_for_each_one_afresh() {
        let cache = FdCache::default();
        assert!(cache.holds_or_can_keep("ns/"));
        let ns =
            || rustix::fs::open("/proc/self/ns", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        let link = |dir: &OwnedFd| rustix::fs::readlinkat(dir, "mnt", Vec::new());
        cache.begin();
        let first = cache.at("ns/", ns, link).unwrap();
        assert!(first.to_string_lossy().starts_with("mnt:["), "{first:?}");
        cache.end();
        assert_eq!(cache.len(), 1, "kept");
        cache.begin();
        let again = cache.at("ns/", || Err(Errno::NOENT), link).unwrap();
        assert_eq!(first, again, "through the kept directory");
        // A name it does not hold is an answer, not a failed descriptor.
        let missing = cache.at("ns/", || Err(Errno::NOENT), |d| rustix::fs::readlinkat(d, "nothing", Vec::new()));
        assert_eq!(missing.err(), Some(Errno::NOENT));
        cache.end();
        assert_eq!(cache.len(), 1, "still kept");
        cache.keep_nothing();
        assert!(!cache.holds_or_can_keep("ns/"), "a cache that keeps nothing");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_kept_descriptor_reads_fresh_content_and_unused_ones_are_closed() {
        let cache = FdCache::default();
        let mut buf = Vec::new();
        cache.begin();
        cache.read("status", Shape::Whole, 1 << 20, open("/proc/self/status"), &mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf).into_owned();
        assert!(first.contains("Name:"));
        cache.end();
        assert_eq!(cache.len(), 1);
        // Fresh content through the kept descriptor: a thread started since shows.
        let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
        cache.begin();
        cache.read("status", Shape::Whole, 1 << 20, || Err(Errno::NOENT), &mut buf).unwrap();
        let threads = |s: &str| s.lines().find(|l| l.starts_with("Threads:")).map(str::to_owned);
        assert_ne!(threads(&first), threads(&String::from_utf8_lossy(&buf)), "pread at 0 regenerates the file");
        cache.end();
        // Not used in an observation: closed at its end.
        cache.begin();
        cache.end();
        assert_eq!(cache.len(), 0);
        t.join().unwrap();
    }

    #[test]
    fn clear_closes_every_kept_descriptor_and_a_later_read_opens_afresh() {
        let cache = FdCache::default();
        let mut buf = Vec::new();
        cache.begin();
        cache.read("status", Shape::Whole, 1 << 20, open("/proc/self/status"), &mut buf).unwrap();
        cache.read("stat", Shape::Whole, 1 << 20, open("/proc/self/stat"), &mut buf).unwrap();
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert_eq!(cache.len(), 0);
        // Nothing kept to read through: the file is opened again.
        let mut opened = false;
        let reopen = || {
            opened = true;
            open("/proc/self/status")()
        };
        cache.read("status", Shape::Whole, 1 << 20, reopen, &mut buf).unwrap();
        assert!(opened && String::from_utf8_lossy(&buf).contains("Name:"));
        cache.end();
    }

    #[test]
    fn a_gone_process_reads_esrch_through_its_kept_descriptor() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let path = format!("/proc/{}/status", child.id());
        let cache = FdCache::default();
        let mut buf = Vec::new();
        cache.begin();
        cache.read("status", Shape::Whole, 1 << 20, open(&path), &mut buf).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(cache.read("status", Shape::Whole, 1 << 20, open(&path), &mut buf), Err(Errno::SRCH));
        cache.end();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_kept_directory_lists_every_entry_of_now_however_many() {
        let dir = std::env::temp_dir().join(format!("fdir-fdcache-dir-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // Names of 200 bytes: a listing of 300 takes many buffers.
        let name = |i: usize| format!("{i:0>200}");
        for i in 0..300 {
            std::fs::write(dir.join(name(i)), b"").unwrap();
        }
        let path = dir.to_string_lossy().into_owned();
        let opendir = || rustix::fs::open(&dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        let cache = FdCache::default();
        let list = |open: &dyn Fn() -> Result<OwnedFd, Errno>| {
            let mut names = Vec::new();
            cache.list(&path, open, |n, _| names.push(String::from_utf8_lossy(n).into_owned())).unwrap();
            names.sort();
            names
        };
        cache.begin();
        let all: Vec<String> = (0..300).map(name).collect();
        assert_eq!(list(&opendir), all);
        assert_eq!(cache.len(), 1);
        // Through the kept descriptor, rewound: what the directory holds now.
        std::fs::remove_file(dir.join(name(7))).unwrap();
        std::fs::write(dir.join("new"), b"").unwrap();
        let mut now: Vec<String> = all.iter().filter(|n| **n != name(7)).cloned().collect();
        now.push("new".into());
        now.sort();
        for _ in 0..2 {
            assert_eq!(list(&|| Err(Errno::NOENT)), now);
        }
        cache.end();
        drop(cache);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_shape_reads_the_whole_file_past_the_first_buffer() {
        let path = std::env::temp_dir().join(format!("fdir-fdcache-{}", std::process::id()));
        let content: Vec<u8> = (0..100_003u32).map(|i| b'a' + u8::try_from(i % 26).unwrap()).collect();
        std::fs::write(&path, &content).unwrap();
        let fd = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        std::fs::remove_file(&path).unwrap();
        for shape in [Shape::Whole, Shape::Records, Shape::RecordsOrStale] {
            for start in [0, 1, 4096, 200_000] {
                let mut buf = Vec::with_capacity(start);
                pread_all(&fd, &mut buf, 1 << 20, shape).unwrap();
                assert!(buf == content, "{shape:?} from a buffer of {start}");
            }
        }
        // A single_open file of /proc is whole after one short read.
        let mut buf = Vec::new();
        let status = rustix::fs::open("/proc/self/status", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        pread_all(&status, &mut buf, 1 << 20, Shape::Whole).unwrap();
        assert!(
            buf.ends_with(b"\n")
                && buf.windows(5).any(|w| w == b"Name:")
                && buf.windows(13).any(|w| w == b"voluntary_ctx")
        );
    }
}
