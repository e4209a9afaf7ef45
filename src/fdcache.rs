//! Kept-open file descriptors for the source layer. A `pread` at offset 0
//! makes the kernel generate a /proc file afresh, so a file opened once is
//! read again with one system call instead of three (open, read, close).
//!
//! Which files may be kept is the caller's choice: a file that binds state at
//! open time must not be (`mountinfo` binds the mount namespace, so a kept
//! one would not show an `unshare`; `mem` binds the address space). `maps`
//! binds the address space too, but is read again from a fresh open when a
//! kept descriptor reads empty (the process has exec'd).
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

/// How many descriptors all caches of this process keep open now.
pub fn kept() -> usize {
    KEPT.load(Ordering::Relaxed)
}

#[derive(Debug)]
struct Entry {
    fd: OwnedFd,
    /// The observation that last used it.
    used: u32,
}

/// The kept descriptors of one source.
#[derive(Debug, Default)]
pub(crate) struct FdCache {
    entries: RefCell<BTreeMap<String, Entry>>,
    generation: Cell<u32>,
}

/// Reads a whole file from offset 0 with as few `pread`s as its size needs.
pub(crate) fn pread_all(fd: &OwnedFd, buf: &mut Vec<u8>, max: usize) -> Result<(), Errno> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(64 * 1024));
        }
        let offset = u64::try_from(buf.len()).map_err(|_| Errno::FBIG)?;
        let n = match rustix::io::pread(fd, rustix::buffer::spare_capacity(buf), offset) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        if buf.len() > max {
            return Err(Errno::FBIG);
        }
    }
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

    /// Reads `key` through its kept descriptor, or opens it with `open`,
    /// reads it, and keeps it if the budget allows. With `reopen_if_empty`,
    /// an empty read of a kept descriptor is retried on a fresh one.
    /// `ESRCH` from a kept descriptor (the thread or process is gone) is
    /// returned as is, without a reopen.
    pub(crate) fn read(
        &self,
        key: &str,
        reopen_if_empty: bool,
        max: usize,
        open: impl FnOnce() -> Result<OwnedFd, Errno>,
        buf: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        let now = self.generation.get();
        {
            let mut map = self.entries.borrow_mut();
            if let Some(e) = map.get_mut(key) {
                match pread_all(&e.fd, buf, max) {
                    Ok(()) if !(reopen_if_empty && buf.is_empty()) => {
                        e.used = now;
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
        pread_all(&fd, buf, max)?;
        if KEPT.load(Ordering::Relaxed) < budget() {
            KEPT.fetch_add(1, Ordering::Relaxed);
            self.entries.borrow_mut().insert(key.to_owned(), Entry { fd, used: now });
        }
        Ok(())
    }

    /// How many descriptors this cache keeps.
    #[cfg(test)]
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
    fn a_kept_descriptor_reads_fresh_content_and_unused_ones_are_closed() {
        let cache = FdCache::default();
        let mut buf = Vec::new();
        cache.begin();
        cache.read("status", false, 1 << 20, open("/proc/self/status"), &mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf).into_owned();
        assert!(first.contains("Name:"));
        cache.end();
        assert_eq!(cache.len(), 1);
        // Fresh content through the kept descriptor: a thread started since shows.
        let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
        cache.begin();
        cache.read("status", false, 1 << 20, || Err(Errno::NOENT), &mut buf).unwrap();
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
    fn a_gone_process_reads_esrch_through_its_kept_descriptor() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let path = format!("/proc/{}/status", child.id());
        let cache = FdCache::default();
        let mut buf = Vec::new();
        cache.begin();
        cache.read("status", false, 1 << 20, open(&path), &mut buf).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(cache.read("status", false, 1 << 20, open(&path), &mut buf), Err(Errno::SRCH));
        cache.end();
        assert_eq!(cache.len(), 0);
    }
}
