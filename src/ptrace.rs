//! A small safe wrapper around ptrace(2) for one job: reading the seccomp
//! filter programs of one thread with `PTRACE_SECCOMP_GET_FILTER`, then letting
//! the thread go. Part of the source layer: only the source (`source/procfs.rs`) calls it.
//!
//! The sequence: `PTRACE_SEIZE` (no options: seizing does not stop the
//! thread, and nothing is traced but this read), `PTRACE_INTERRUPT`, wait for
//! the stop (`waitpid(tid, __WALL)`), `PTRACE_SECCOMP_GET_FILTER` for index
//! 0, 1, ... until `ENOENT` (index 0 is the oldest filter), `PTRACE_DETACH`.
//! Each filter is read with one call into a buffer of the largest program the
//! kernel accepts (`BPF_MAXINSNS` instructions), so no program can overrun it
//! and no count can change between two calls.
//!
//! What keeps the target safe:
//!
//! - A guard detaches on every way out of the read: success, error, panic.
//! - The read runs on a short-lived thread of its own, joined before
//!   [`read_filters`] returns. The kernel detaches every tracee of a tracer
//!   thread when that thread exits, so a thread that did not stop in time
//!   (an uninterruptible sleep), which `PTRACE_DETACH` cannot release because
//!   it is not stopped, is let go all the same, and the stop that the
//!   interrupt queued is cancelled with it. fdir never waits for a target
//!   longer than the timeout, and never leaves one traced or stopped.
//! - A signal that arrived while the thread was attached (a
//!   signal-delivery-stop) is handed back on detach; a group stop (`SIGSTOP`)
//!   in force stays in force after the detach.
//! - The time from `PTRACE_INTERRUPT` to the end of `PTRACE_DETACH`, an upper
//!   bound of how long the thread was kept from running, is measured and
//!   returned.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};

const PTRACE_DETACH: libc::c_long = 17;
const PTRACE_SEIZE: libc::c_long = 0x4206;
const PTRACE_INTERRUPT: libc::c_long = 0x4207;
const PTRACE_SECCOMP_GET_FILTER: libc::c_long = 0x420c;
/// `__WALL`: wait for any kind of child, threads included.
const WALL: u32 = 0x4000_0000;
/// `sizeof(struct sock_filter)`.
pub(crate) const INSN_BYTES: usize = 8;
/// `BPF_MAXINSNS`: the kernel refuses longer seccomp programs.
const MAX_INSNS: usize = 4096;
/// More filters than a thread can have: the kernel caps the instructions of a
/// whole chain at 32768, and counts each filter as at least 5.
const MAX_FILTERS: usize = 8192;
/// Polls of a stop with `sched_yield` before falling back to short sleeps:
/// a thread normally stops within microseconds, and the yield lets it run.
const SPIN_POLLS: u32 = 200;

/// The filter programs of one thread.
#[derive(Debug)]
pub(crate) struct Filters {
    /// The raw `sock_filter` bytes of each program, oldest first.
    pub(crate) programs: Vec<Vec<u8>>,
    /// How long the thread was kept stopped, at most.
    pub(crate) stopped: Duration,
}

/// Why the programs of a thread could not be read.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The thread has exited.
    Gone,
    /// `PTRACE_SEIZE` was refused: the thread is already traced, or fdir may
    /// not trace it.
    Refused(Errno),
    /// `PTRACE_SECCOMP_GET_FILTER` was refused: it needs `CAP_SYS_ADMIN`, and
    /// a monitor that is not itself under seccomp.
    NeedsAdmin,
    /// The kernel cannot export this filter.
    Unsupported(String),
    /// The thread did not stop within the timeout.
    NotStopped(Duration),
    /// Any other failure of a system call.
    Os(&'static str, Errno),
    /// The worker thread could not be started.
    Spawn(std::io::Error),
    /// The worker thread panicked (a bug); the thread exit released the target.
    Panicked,
}

/// Reads the seccomp filter programs of thread `tid`, waiting at most
/// `timeout` for it to stop. See the module documentation for the sequence
/// and what keeps the target safe.
pub(crate) fn read_filters(tid: u32, timeout: Duration) -> Result<Filters, Failure> {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("fdir-ptrace".into())
            .spawn_scoped(s, move || read_here(tid, timeout))
            .map_err(Failure::Spawn)?;
        // A panicking worker has exited, and its exit detached the target.
        worker.join().map_err(|_| Failure::Panicked)?
    })
}

/// ptrace(2) through the raw system call: the C libraries' wrappers disagree
/// on the request type and special-case the PEEK requests.
///
/// # Safety
///
/// `data` must be valid for what `request` does with it: the requests used
/// here take integers in `addr` and `data` (SEIZE, INTERRUPT, DETACH), except
/// `PTRACE_SECCOMP_GET_FILTER`, which writes a whole program to `data`.
unsafe fn ptrace(request: libc::c_long, tid: Pid, addr: usize, data: *mut c_void) -> Result<libc::c_long, Errno> {
    // SAFETY: the kernel validates the request and the pid; the memory `data`
    // points to is the caller's contract (see above).
    let r =
        unsafe { libc::syscall(libc::SYS_ptrace, request, libc::c_long::from(tid.as_raw_nonzero().get()), addr, data) };
    if r < 0 {
        let raw = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        return Err(Errno::from_raw_os_error(raw));
    }
    Ok(r)
}

/// A seized thread; detaches when dropped.
struct Attached {
    tid: Pid,
    /// The signal to hand back on detach (from a signal-delivery-stop).
    signal: i32,
    /// Still attached (not exited, not yet detached).
    attached: bool,
}

impl Attached {
    /// Waits (polling, so that it can give up) until the thread is in a
    /// ptrace stop.
    fn wait_for_stop(&mut self, timeout: Duration) -> Result<(), Failure> {
        let started = Instant::now();
        let options = WaitOptions::NOHANG | WaitOptions::from_bits_retain(WALL);
        let mut polls = 0u32;
        loop {
            match rustix::process::waitpid(Some(self.tid), options) {
                Ok(Some((_, status))) if status.stopped() => {
                    let raw = status.as_raw();
                    let (signal, event) = ((raw >> 8) & 0xff, (raw >> 16) & 0xff);
                    // event 0: a signal-delivery-stop, whose signal must be
                    // delivered after all. PTRACE_EVENT_STOP: the interrupt,
                    // or a group stop that stays in force after the detach.
                    if event == 0 {
                        self.signal = signal;
                    }
                    return Ok(());
                }
                Ok(Some((_, status))) if status.exited() || status.signaled() => {
                    self.attached = false;
                    return Err(Failure::Gone);
                }
                Ok(_) | Err(Errno::INTR) => {}
                Err(Errno::CHILD) => {
                    self.attached = false;
                    return Err(Failure::Gone);
                }
                Err(e) => return Err(Failure::Os("wait for", e)),
            }
            if started.elapsed() >= timeout {
                return Err(Failure::NotStopped(timeout));
            }
            polls = polls.saturating_add(1);
            if polls < SPIN_POLLS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn detach(&mut self) -> Result<(), Errno> {
        if !self.attached {
            return Ok(());
        }
        self.attached = false;
        let signal = usize::try_from(self.signal).unwrap_or(0);
        // SAFETY: PTRACE_DETACH reads `data` as a signal number, never as a
        // pointer.
        unsafe { ptrace(PTRACE_DETACH, self.tid, 0, std::ptr::without_provenance_mut(signal)) }.map(drop)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // A thread that is not stopped cannot be detached; the exit of this
        // worker thread releases it (see the module documentation).
        let _ = self.detach();
    }
}

fn read_here(tid: u32, timeout: Duration) -> Result<Filters, Failure> {
    let tid = i32::try_from(tid).ok().and_then(Pid::from_raw).ok_or(Failure::Gone)?;
    // SAFETY: PTRACE_SEIZE with no options: `data` is the integer 0.
    unsafe { ptrace(PTRACE_SEIZE, tid, 0, std::ptr::null_mut()) }.map_err(|e| match e {
        Errno::SRCH => Failure::Gone,
        Errno::PERM | Errno::ACCESS => Failure::Refused(e),
        e => Failure::Os("seize", e),
    })?;
    let mut guard = Attached { tid, signal: 0, attached: true };
    let started = Instant::now();
    // SAFETY: PTRACE_INTERRUPT takes no pointer.
    unsafe { ptrace(PTRACE_INTERRUPT, tid, 0, std::ptr::null_mut()) }.map_err(|e| match e {
        Errno::SRCH => Failure::Gone,
        e => Failure::Os("interrupt", e),
    })?;
    guard.wait_for_stop(timeout)?;
    let programs = get_filters(tid);
    guard.detach().map_err(|e| Failure::Os("detach from", e))?;
    let stopped = started.elapsed();
    Ok(Filters { programs: programs?, stopped })
}

/// Reads every filter of a stopped tracee, oldest first.
fn get_filters(tid: Pid) -> Result<Vec<Vec<u8>>, Failure> {
    let mut buf = vec![0u8; MAX_INSNS * INSN_BYTES];
    let mut programs = Vec::new();
    for index in 0..MAX_FILTERS {
        // SAFETY: `buf` holds BPF_MAXINSNS instructions, the longest program
        // the kernel installs, so the copy of any one program fits in it.
        let r = unsafe { ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, buf.as_mut_ptr().cast()) };
        match r {
            Ok(n) => {
                let bytes = usize::try_from(n).ok().and_then(|n| n.checked_mul(INSN_BYTES));
                let program = bytes.and_then(|b| buf.get(..b)).ok_or_else(|| {
                    Failure::Unsupported(format!("the kernel reported {n} instructions for filter #{index}"))
                })?;
                programs.push(program.to_vec());
            }
            Err(Errno::NOENT) => return Ok(programs),
            // Not in filter mode (no filters at all, or strict mode).
            Err(Errno::INVAL) if index == 0 => return Ok(programs),
            Err(Errno::ACCESS | Errno::PERM) => return Err(Failure::NeedsAdmin),
            Err(Errno::IO) => {
                return Err(Failure::Unsupported(
                    "this kernel cannot export them (PTRACE_SECCOMP_GET_FILTER needs CONFIG_CHECKPOINT_RESTORE)".into(),
                ));
            }
            Err(Errno::MEDIUMTYPE) => {
                return Err(Failure::Unsupported(format!("filter #{index} is not a classic BPF program")));
            }
            Err(Errno::SRCH) => return Err(Failure::Gone),
            Err(e) => return Err(Failure::Os("read the seccomp filters of", e)),
        }
    }
    Err(Failure::Unsupported(format!("more than {MAX_FILTERS} filters")))
}
