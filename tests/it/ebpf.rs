//! The eBPF trigger source, live: real child processes make each watched
//! call, and the record naming that child (and what to re-check) comes
//! through the ring. Skips (counted) where eBPF cannot load.

use crate::common;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use fdir::trigger::Recheck;
use fdir::trigger::ebpf::programs::{CGROUP_ATTACH, FUNCTION_BASE, FUNCTIONS, nr};
use fdir::trigger::ebpf::{Ebpf, RATE_LIMIT_NS, Record};

const DEADLINE: Duration = Duration::from_secs(60);

fn open(test: &str, ring: usize, rate_ns: u64) -> Option<Ebpf> {
    if !common::is_root() {
        common::skip(test, "not root: loading eBPF programs needs CAP_BPF and CAP_PERFMON");
        return None;
    }
    match Ebpf::open_with(ring, rate_ns) {
        Ok(e) => Some(e),
        Err(u) => {
            common::skip(test, &u.to_string());
            None
        }
    }
}

/// A forked child that runs `f` (system calls only: no allocation, no
/// lock, after a fork of a threaded process) and exits 0 when it returns
/// true. Returns its pid, once it has exited, and whether `f` succeeded.
fn in_child(f: impl FnOnce() -> bool) -> (u32, bool) {
    // SAFETY: fork; the child only makes system calls and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let ok = f();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(r, pid);
    (u32::try_from(pid).unwrap(), libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
}

/// A forked child that blocks until dropped (then killed and reaped).
struct Sleeper {
    pid: libc::pid_t,
}

impl Sleeper {
    fn new() -> Sleeper {
        // SAFETY: fork; the child only pauses (system calls) until killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        Sleeper { pid }
    }
    fn pid(&self) -> u32 {
        u32::try_from(self.pid).unwrap()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Drains until a record satisfies `want` (every record read is kept in
/// `seen`), or the deadline.
fn wait_for(e: &mut Ebpf, seen: &mut Vec<Record>, want: impl Fn(&Record) -> bool) -> Option<Record> {
    let end = Instant::now() + DEADLINE;
    let mut from = 0;
    while Instant::now() < end {
        let mut pfd = libc::pollfd { fd: e.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&raw mut pfd, 1, 200) };
        e.drain_records(seen);
        if let Some(r) = seen[from..].iter().find(|r| want(r)) {
            return Some(*r);
        }
        from = seen.len();
    }
    None
}

fn rechecks(r: &Record) -> Vec<Recheck> {
    let mut v = Vec::new();
    r.rechecks(&mut v);
    v
}

fn expect(e: &mut Ebpf, what: &str, want: impl Fn(&Record) -> bool) -> Record {
    let mut seen = Vec::new();
    wait_for(e, &mut seen, want).unwrap_or_else(|| panic!("no record of {what} within {DEADLINE:?}"))
}

fn function_hook(e: &Ebpf, test: &str, name: &str) -> Option<u32> {
    if let Some(s) = e.skipped().iter().find(|s| s.hook == name) {
        common::skip(test, &format!("{name}: {}", s.reason));
        return None;
    }
    let i = FUNCTIONS.iter().position(|f| *f == name).unwrap();
    Some(FUNCTION_BASE + u32::try_from(i).unwrap())
}

#[test]
fn ebpf_opens_with_every_hook_on_this_kernel() {
    let Some(e) = open("ebpf_opens_with_every_hook_on_this_kernel", 4096, RATE_LIMIT_NS) else { return };
    eprintln!("hooks {:?}, skipped {:?}", e.hooks(), e.skipped());
    assert_eq!(e.hooks().first(), Some(&"sys_exit"));
    assert!(e.hooks().contains(&"cgroup_attach_task"), "{:?}", e.skipped());
    assert_eq!(e.lost(), 0);
}

#[test]
fn ebpf_sees_setresuid_and_prctl_no_new_privs_but_not_prctl_set_name() {
    let Some(mut e) = open("ebpf_sees_setresuid_and_prctl", 1 << 16, RATE_LIMIT_NS) else { return };
    let (pid, ok) = in_child(|| {
        // SAFETY: system calls on the child itself.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c"fdir-ebpf-test".as_ptr(), 0, 0, 0) == 0
                && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::setresuid(65534, 65534, 65534) == 0
        }
    });
    assert!(ok, "the child's calls failed");
    let mut seen = Vec::new();
    let r = wait_for(&mut e, &mut seen, |r| r.tgid == pid && r.hook == nr::SETRESUID).expect("no setresuid record");
    assert_eq!(rechecks(&r), vec![Recheck::Process(pid)]);
    let prctls: Vec<u32> = seen.iter().filter(|r| r.tgid == pid && r.hook == nr::PRCTL).map(|r| r.arg).collect();
    assert_eq!(prctls, vec![libc::PR_SET_NO_NEW_PRIVS as u32], "only the option that changes isolation");
}

#[test]
fn ebpf_sees_mprotect_exec_of_a_child() {
    let Some(mut e) = open("ebpf_sees_mprotect_exec_of_a_child", 1 << 16, RATE_LIMIT_NS) else { return };
    let (pid, ok) = in_child(|| {
        // SAFETY: a new anonymous page of the child, then its protection.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            p != libc::MAP_FAILED && libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) == 0
        }
    });
    assert!(ok);
    let r = expect(&mut e, "mprotect PROT_EXEC", |r| r.tgid == pid && r.hook == nr::MPROTECT);
    assert_eq!(r.arg, (libc::PROT_READ | libc::PROT_EXEC) as u32);
    assert_eq!(rechecks(&r), vec![Recheck::Process(pid)]);
}

#[test]
fn ebpf_sees_unshare_and_a_mount_in_the_new_namespace() {
    let Some(mut e) = open("ebpf_sees_unshare_and_a_mount", 1 << 16, RATE_LIMIT_NS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = CString::new(dir.path().to_str().unwrap()).unwrap();
    let (pid, ok) = in_child(|| {
        // SAFETY: the child's own mount namespace: private first, so that
        // nothing propagates to the host, then a tmpfs that goes with it.
        unsafe {
            libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(c"none".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) == 0
        }
    });
    assert!(ok, "unshare or mount failed in the child");
    // One child's records come in order: the unshare, then the two mounts.
    let mut seen = Vec::new();
    let r = wait_for(&mut e, &mut seen, |r| r.tgid == pid && r.hook == nr::MOUNT).expect("no mount record");
    assert_eq!(rechecks(&r), vec![Recheck::Mounts, Recheck::Process(pid)]);
    let u = seen.iter().find(|r| r.tgid == pid && r.hook == nr::UNSHARE).expect("no unshare record before the mount");
    assert_eq!(rechecks(u), vec![Recheck::Process(pid)]);
}

#[test]
fn ebpf_sees_prlimit_on_another_process_and_names_the_target() {
    let Some(mut e) = open("ebpf_sees_prlimit_on_another_process", 1 << 16, RATE_LIMIT_NS) else { return };
    let target = Sleeper::new();
    let out =
        std::process::Command::new("prlimit").args(["--pid", &target.pid().to_string(), "--nofile=512:512"]).output();
    let Ok(out) = out else {
        common::skip("ebpf_sees_prlimit_on_another_process", "prlimit (util-linux) is not installed");
        return;
    };
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    let r = expect(&mut e, "prlimit64 --pid", |r| r.hook == nr::PRLIMIT64 && r.target == target.pid());
    assert_eq!(r.arg, libc::RLIMIT_NOFILE);
    assert_eq!(rechecks(&r), vec![Recheck::Process(target.pid()), Recheck::Process(r.tgid)]);
}

#[test]
fn ebpf_sees_a_write_to_a_cgroup_control_file() {
    let test = "ebpf_sees_a_write_to_a_cgroup_control_file";
    let Some(mut e) = open(test, 1 << 16, RATE_LIMIT_NS) else { return };
    let Some(hook) = function_hook(&e, test, "cgroup_file_write") else { return };
    let Some(h) = common::hierarchy(Some("pids")) else {
        common::skip(test, "no cgroup hierarchy");
        return;
    };
    let cg = match common::ScratchCgroup::new(&h, "ebpf") {
        Ok(c) => c,
        Err(reason) => {
            common::skip(test, &reason);
            return;
        }
    };
    let file = ["pids.max", "cgroup.freeze", "memory.high"].into_iter().find(|f| cg.path.join(f).exists());
    let Some(file) = file else {
        common::skip(test, "the scratch cgroup has no pids.max, cgroup.freeze or memory.high");
        return;
    };
    let value: &[u8] = if file == "cgroup.freeze" { b"0" } else { b"max" };
    let path = CString::new(cg.path.join(file).to_str().unwrap()).unwrap();
    let (pid, ok) = in_child(|| {
        // SAFETY: open and write a control file of our scratch cgroup.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            fd >= 0 && libc::write(fd, value.as_ptr().cast(), value.len()) == value.len() as isize
        }
    });
    assert!(ok, "the write to {file} failed");
    let r = expect(&mut e, "cgroup_file_write", |r| r.tgid == pid && r.hook == hook);
    assert_eq!(rechecks(&r), vec![Recheck::All]);
}

#[test]
fn ebpf_sees_a_cgroup_move_and_names_the_moved_process() {
    let test = "ebpf_sees_a_cgroup_move_and_names_the_moved_process";
    let Some(mut e) = open(test, 1 << 16, RATE_LIMIT_NS) else { return };
    if let Some(s) = e.skipped().iter().find(|s| s.hook == "cgroup_attach_task") {
        common::skip(test, &s.reason);
        return;
    }
    let Some(h) = common::hierarchy(Some("pids")) else {
        common::skip(test, "no cgroup hierarchy");
        return;
    };
    let mut cg = match common::ScratchCgroup::new(&h, "ebpf-move") {
        Ok(c) => c,
        Err(reason) => {
            common::skip(test, &reason);
            return;
        }
    };
    let moved = Sleeper::new();
    cg.enter(moved.pid()).unwrap();
    let r = expect(&mut e, "cgroup_attach_task", |r| r.hook == CGROUP_ATTACH && r.target == moved.pid());
    assert_eq!(rechecks(&r), vec![Recheck::Process(moved.pid())]);
    cg.leave(moved.pid());
    drop(moved);
}

#[test]
fn ebpf_sees_a_write_to_proc_sys() {
    let test = "ebpf_sees_a_write_to_proc_sys";
    let Some(mut e) = open(test, 1 << 16, RATE_LIMIT_NS) else { return };
    let Some(hook) = function_hook(&e, test, "proc_sys_write") else { return };
    // Written back with the value it has: the node is left as it was.
    let file = "/proc/sys/kernel/printk_ratelimit_burst";
    let before = std::fs::read(file).unwrap();
    let path = CString::new(file).unwrap();
    let (pid, ok) = in_child(|| {
        // SAFETY: open and write the value read just before.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            fd >= 0 && libc::write(fd, before.as_ptr().cast(), before.len()) == before.len() as isize
        }
    });
    if std::fs::read(file).unwrap() != before {
        std::fs::write(file, &before).unwrap();
    }
    assert!(ok, "the write to {file} failed");
    let r = expect(&mut e, "proc_sys_write", |r| r.tgid == pid && r.hook == hook);
    assert_eq!(rechecks(&r), vec![Recheck::Node]);
}

/// A word a child writes into its sibling's memory.
static POKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn ebpf_sees_a_write_to_proc_pid_mem() {
    let test = "ebpf_sees_a_write_to_proc_pid_mem";
    let Some(mut e) = open(test, 1 << 16, RATE_LIMIT_NS) else { return };
    let Some(hook) = function_hook(&e, test, "mem_write") else { return };
    let target = Sleeper::new();
    let path = CString::new(format!("/proc/{}/mem", target.pid())).unwrap();
    // Forked from this process, the sleeper has `POKED` at the same address.
    let addr = POKED.as_ptr() as i64;
    let word = 0x5eed_u64.to_ne_bytes();
    let (pid, ok) = in_child(|| {
        // SAFETY: writes 8 bytes into the sleeper's copy of `POKED`.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDWR);
            fd >= 0 && libc::pwrite(fd, word.as_ptr().cast(), 8, addr) == 8
        }
    });
    assert!(ok, "the write to {} failed", path.to_string_lossy());
    let r = expect(&mut e, "mem_write", |r| r.tgid == pid && r.hook == hook);
    assert_eq!(rechecks(&r), vec![Recheck::All]);
}

/// `n` rounds of mprotect between `a` and `b` in a child; its pid and the
/// CLOCK_MONOTONIC times (ns) of its first and last call.
fn mprotect_storm(n: usize, a: i32, b: i32) -> (u32, u64, u64) {
    let mut fds = [0; 2];
    // SAFETY: a pipe for the child's two timestamps.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (pid, ok) = in_child(|| {
        let now = || {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: writes `ts`.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        // SAFETY: the child's own anonymous page.
        unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 4096, a, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            if p == libc::MAP_FAILED {
                return false;
            }
            let t0 = now();
            for i in 0..n {
                if libc::mprotect(p, 4096, if i % 2 == 0 { b } else { a }) != 0 {
                    return false;
                }
            }
            let t = [t0, now()];
            // A marker the programs record, after every mprotect.
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            libc::write(fds[1], t.as_ptr().cast(), 16) == 16
        }
    });
    assert!(ok, "the storm child failed");
    let mut t = [0u64; 2];
    // SAFETY: reads the 16 bytes the child wrote, then closes the pipe.
    unsafe {
        assert_eq!(libc::read(fds[0], t.as_mut_ptr().cast(), 16), 16);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    (pid, t[0], t[1])
}

fn is_marker(pid: u32) -> impl Fn(&Record) -> bool {
    move |r| r.tgid == pid && r.hook == nr::PRCTL && r.arg == libc::PR_SET_DUMPABLE as u32
}

#[test]
fn ebpf_prot_read_storm_yields_nothing() {
    let Some(mut e) = open("ebpf_prot_read_storm_yields_nothing", 1 << 16, 0) else { return };
    let (pid, _, _) = mprotect_storm(20_000, libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE);
    let mut seen = Vec::new();
    if wait_for(&mut e, &mut seen, is_marker(pid)).is_none() {
        assert!(e.lost() > 0, "no marker record, and none lost");
        return;
    }
    let n = seen.iter().filter(|r| r.tgid == pid && r.hook == nr::MPROTECT).count();
    assert_eq!(n, 0, "mprotect without PROT_EXEC was recorded");
}

#[test]
fn ebpf_exec_storm_on_a_tiny_ring_counts_every_drop() {
    // No rate limit, a 4096-byte ring not drained during the storm: most
    // records cannot be delivered, and each is counted.
    let Some(mut e) = open("ebpf_exec_storm_on_a_tiny_ring_counts_every_drop", 4096, 0) else { return };
    let n = 20_000;
    let lost_before = e.lost();
    let (pid, _, _) = mprotect_storm(n, libc::PROT_READ, libc::PROT_READ | libc::PROT_EXEC);
    let lost = e.lost() - lost_before;
    let mut seen = Vec::new();
    e.drain_records(&mut seen);
    let delivered = seen.iter().filter(|r| r.tgid == pid && r.hook == nr::MPROTECT).count() as u64;
    eprintln!("{n} mprotect calls, half with PROT_EXEC: {delivered} delivered, {lost} lost (all processes)");
    assert!(lost > 0, "a 4096-byte ring took every record of the storm");
    // Every PROT_EXEC call was either delivered or counted lost.
    assert!(delivered + lost >= n as u64 / 2, "{delivered} delivered + {lost} lost < {}", n / 2);
}

#[test]
fn ebpf_exec_storm_is_bounded_by_the_rate_limit() {
    let Some(mut e) = open("ebpf_exec_storm_is_bounded_by_the_rate_limit", 4096, RATE_LIMIT_NS) else { return };
    let n = 20_000;
    let lost_before = e.lost();
    let (pid, t0, t1) = mprotect_storm(n, libc::PROT_READ, libc::PROT_READ | libc::PROT_EXEC);
    let mut seen = Vec::new();
    let marker = wait_for(&mut e, &mut seen, is_marker(pid));
    let delivered = seen.iter().filter(|r| r.tgid == pid && r.hook == nr::MPROTECT).count() as u64;
    let lost = e.lost() - lost_before;
    // At most one record per window of the child's storm (plus one for a
    // window cut by its ends), whether delivered or lost.
    let bound = (t1 - t0) / RATE_LIMIT_NS + 2;
    eprintln!(
        "{n} calls in {} µs: {delivered} delivered, {lost} lost (all processes), bound {bound}",
        (t1 - t0) / 1000
    );
    assert!(marker.is_some() || lost > 0, "the marker was neither delivered nor counted lost");
    assert!(delivered <= bound, "{delivered} records for a storm of {} ns", t1 - t0);
    assert!(delivered >= 1 || lost > 0, "the storm left no trace");
}

#[test]
fn ebpf_as_nobody_is_unavailable_with_a_reason() {
    const CHILD: &str = "FDIR_EBPF_TEST_AS_NOBODY";
    const NAME: &str = "ebpf_as_nobody_is_unavailable_with_a_reason";
    if std::env::var_os(CHILD).is_some() {
        // The run as nobody: say what open gave, the parent judges.
        match Ebpf::open(4096) {
            Ok(_) => println!("RESULT loaded"),
            Err(u) => println!("RESULT unavailable: {u}"),
        }
        return;
    }
    if !common::is_root() {
        // Already unprivileged (perhaps with CAP_BPF): no failure either way.
        if let Err(u) = Ebpf::open(4096) {
            assert_eq!(u.kind, fdir::trigger::Kind::Ebpf);
        }
        return;
    }
    use std::os::unix::process::CommandExt;
    // This test again, in the test binary, by its full name (`ebpf::NAME`:
    // the module path less the crate's name).
    let exact = format!("{}::{NAME}", module_path!().split_once("::").map_or(module_path!(), |(_, m)| m));
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &exact, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the run as nobody failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout
        .lines()
        .find_map(|l| l.find("RESULT ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    eprintln!("{line}");
    assert!(line.starts_with("RESULT unavailable: ebpf triggers unavailable: "), "{line}");
    assert!(line.contains("CAP_BPF and CAP_PERFMON"), "the reason does not say what is needed: {line}");
}

#[test]
fn ebpf_sees_a_ptrace_poke_and_process_vm_writev_and_names_the_target() {
    let Some(mut e) = open("ebpf_sees_a_ptrace_poke_and_process_vm_writev", 1 << 16, RATE_LIMIT_NS) else { return };
    let target = Sleeper::new();
    let t = target.pid;
    // Forked from this process, the sleeper has `POKED` at the same address.
    let addr = POKED.as_ptr();
    let (pid, ok) = in_child(|| {
        // SAFETY: attaches to the sleeper, writes one word of its copy of
        // `POKED` (PTRACE_POKEDATA, then process_vm_writev), detaches.
        unsafe {
            if libc::ptrace(libc::PTRACE_ATTACH, t, 0usize, 0usize) != 0 {
                return false;
            }
            let mut status = 0;
            if libc::waitpid(t, &raw mut status, libc::__WALL) != t {
                return false;
            }
            let poked = libc::ptrace(libc::PTRACE_POKEDATA, t, addr, 0x5eed_usize) == 0;
            let word = 0x5eed_u64;
            let local = libc::iovec { iov_base: std::ptr::from_ref(&word).cast_mut().cast(), iov_len: 8 };
            let remote = libc::iovec { iov_base: addr.cast(), iov_len: 8 };
            let written = libc::process_vm_writev(t, &raw const local, 1, &raw const remote, 1, 0) == 8;
            libc::ptrace(libc::PTRACE_DETACH, t, 0usize, 0usize);
            poked && written
        }
    });
    assert!(ok, "ptrace or process_vm_writev failed in the child");
    let target_pid = target.pid();
    let mut seen = Vec::new();
    let r = wait_for(&mut e, &mut seen, |r| r.tgid == pid && r.hook == nr::PROCESS_VM_WRITEV)
        .expect("no process_vm_writev record");
    assert_eq!(r.target, target_pid);
    assert_eq!(rechecks(&r), vec![Recheck::Process(target_pid), Recheck::Process(pid)]);
    let pokes: Vec<(u32, u32)> =
        seen.iter().filter(|r| r.tgid == pid && r.hook == nr::PTRACE).map(|r| (r.arg, r.target)).collect();
    assert_eq!(pokes, vec![(libc::PTRACE_POKEDATA, target_pid)], "only the request that writes, naming the target");
}
