//! `fdir-testee`: a process whose isolation can be changed on command.
//!
//! fdir's live tests drive it; you can run it to watch fdir catch real changes
//! on your own hardware. It reads one command per line on stdin and answers
//! `ok` (or `ok VALUE`) or `err MESSAGE` on stdout:
//!
//! ```text
//! seccomp            install an allow-all seccomp filter (one more filter)
//! seccomp-errno NR   install a filter that fails syscall NR with EPERM
//! seccomp-thread     start a thread that installs an allow-all filter in
//!                    itself alone (no TSYNC), then sleeps until exit
//! nnp                set no_new_privs
//! rwx                map an anonymous page writable and executable
//! unrwx              make that page writable only again
//! memfd-exec         map a memfd executable (code with no file on disk)
//! dlopen PATH        load a shared library
//! drop-bounding N    drop capability N from the bounding set
//! drop-effective N   drop capability N from the effective set
//! unshare-net        move into a new network namespace
//! unshare-mount      move into a new, private mount namespace
//! unshare-pid        create children in a new pid namespace (none created)
//! mount-tmpfs DIR    mount a tmpfs on DIR (in the current mount namespace)
//! threads N          start N threads that sleep until exit
//! maps N             add N mappings (one-page anonymous regions, not mergeable)
//! churn SECONDS      for SECONDS, in the background: allocate and free,
//!                    start and join threads, map and unmap anonymous memory
//!                    and data files, install signal handlers, open and close files
//! code-page          print the address of a page of this program's code
//! code-marker        print the address of a function that only `ping` calls
//! poke-code MASK     xor MASK into the first byte of that function, written by
//!                    this process itself (mprotect rwx, store, mprotect r-x):
//!                    the page becomes a private copy; `ping` must not be
//!                    called until it is poked back
//! ping               call that function (answers `ok 24301`)
//! exit               exit
//! ```
//!
//! At start it prints `ready PID`.
//!
//! It is also the load generator of the soak (`tests/soak.rs`,
//! `scripts/soak.sh`), by its first argument:
//!
//! ```text
//! fdir-testee spawn-storm SECONDS PROCS_PER_SEC THREADS_PER_SEC WORKERS
//!     for SECONDS: WORKERS long-lived processes that start and end
//!     THREADS_PER_SEC threads between them (and churn memory), and
//!     PROCS_PER_SEC short-lived processes: 70% live under 0.5 s, 20% 2.5–6 s
//!     (long enough to be baselined), 10% 2.5–6 s with 3 threads. Then waits
//!     for them all and prints one JSON line: processes and threads started,
//!     the lowest and highest pid seen, and how often the pids wrapped.
//! fdir-testee live MILLISECONDS THREADS      (a process of the storm)
//! fdir-testee churn-worker SECONDS THREADS_PER_SEC   (a worker of the storm)
//! ```

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fdir::rng::Rng;

static STOP: AtomicBool = AtomicBool::new(false);

fn errno() -> String {
    std::io::Error::last_os_error().to_string()
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<String, String> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe { libc::prctl(option, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

/// `setgroups(2)` to the comma-separated group ids of `list` (empty: none).
fn setgroups(list: &str) -> Result<String, String> {
    let gids: Vec<libc::gid_t> = list
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| g.parse::<libc::gid_t>().map_err(|e| format!("{g:?}: {e}")))
        .collect::<Result<_, _>>()?;
    // SAFETY: a pointer to `gids.len()` group ids, read by the kernel only.
    let r = unsafe { libc::setgroups(gids.len(), gids.as_ptr()) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn seccomp_allow_all() -> Result<String, String> {
    let ret = u16::try_from(libc::BPF_RET | libc::BPF_K).map_err(|e| e.to_string())?;
    install(&mut [libc::sock_filter { code: ret, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW }])
}

/// `syscall nr == NR ? EPERM : allow`.
fn seccomp_errno(nr: u32) -> Result<String, String> {
    let op = |v: u32| u16::try_from(v).map_err(|e| e.to_string());
    let (ld, jeq, ret) = (
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS)?,
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K)?,
        op(libc::BPF_RET | libc::BPF_K)?,
    );
    install(&mut [
        libc::sock_filter { code: ld, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        libc::sock_filter { code: jeq, jt: 0, jf: 1, k: nr },
        libc::sock_filter { code: ret, jt: 0, jf: 0, k: libc::SECCOMP_RET_ERRNO | 1 },
        libc::sock_filter { code: ret, jt: 0, jf: 0, k: libc::SECCOMP_RET_ALLOW },
    ])
}

fn install(filter: &mut [libc::sock_filter]) -> Result<String, String> {
    let len = u16::try_from(filter.len()).map_err(|e| e.to_string())?;
    let prog = libc::sock_fprog { len, filter: filter.as_mut_ptr() };
    // SAFETY: `prog` points to a valid one-instruction BPF program that lives
    // across the call; the kernel copies it.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const prog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn mmap_anon(prot: libc::c_int) -> Result<*mut libc::c_void, String> {
    // SAFETY: an anonymous private mapping at an address the kernel chooses;
    // it touches no existing memory.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if p == libc::MAP_FAILED { Err(errno()) } else { Ok(p) }
}

fn mprotect(p: *mut libc::c_void, prot: libc::c_int) -> Result<String, String> {
    // SAFETY: `p` is a page this program mapped and never unmaps; nothing
    // else uses it.
    let r = unsafe { libc::mprotect(p, 4096, prot) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn memfd_exec() -> Result<String, String> {
    let name = c"fdir-testee-payload";
    // SAFETY: `name` is a valid NUL-terminated string.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    if fd < 0 {
        return Err(errno());
    }
    let code = [0xc3u8; 4096]; // ret
    // SAFETY: `code` is a valid buffer of 4096 bytes; fd is ours.
    let w = unsafe { libc::write(fd, code.as_ptr().cast(), code.len()) };
    if w != 4096 {
        return Err(errno());
    }
    // SAFETY: a new shared mapping of our own memfd at a kernel-chosen address.
    let p =
        unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_PRIVATE, fd, 0) };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    Ok(format!("{p:p}"))
}

fn dlopen(path: &str) -> Result<String, String> {
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: `c` is a valid NUL-terminated path; the library stays loaded.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW) };
    if h.is_null() {
        // SAFETY: dlerror returns a thread-local message or null.
        let msg = unsafe { libc::dlerror() };
        if msg.is_null() {
            return Err("dlopen failed".into());
        }
        // SAFETY: non-null dlerror results are NUL-terminated strings.
        return Err(unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy().into_owned());
    }
    Ok(String::new())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn drop_effective(cap: u32) -> Result<String, String> {
    let mut header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) requires for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if r < 0 {
        return Err(errno());
    }
    let idx = usize::try_from(cap / 32).map_err(|e| e.to_string())?;
    let d = data.get_mut(idx).ok_or("capability number out of range")?;
    d.effective &= !(1 << (cap % 32));
    // SAFETY: as above; the data array was filled by capget.
    let r = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn unshare(flags: libc::c_int) -> Result<String, String> {
    // SAFETY: unshare takes flags only.
    let r = unsafe { libc::unshare(flags) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn mount_private_root() -> Result<String, String> {
    // SAFETY: string literals and null data; makes the new namespace's mounts private.
    let r = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

fn mount_tmpfs(dir: &str) -> Result<String, String> {
    let d = std::ffi::CString::new(dir).map_err(|e| e.to_string())?;
    // SAFETY: valid NUL-terminated strings; null data.
    let r = unsafe { libc::mount(c"fdir-test".as_ptr(), d.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) };
    if r < 0 { Err(errno()) } else { Ok(String::new()) }
}

/// `chroot DIR`: makes DIR the process's root directory (and its working
/// directory `/`).
fn chroot(dir: &str) -> Result<String, String> {
    let d = std::ffi::CString::new(dir).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::chroot(d.as_ptr()) } < 0 {
        return Err(errno());
    }
    // SAFETY: a valid NUL-terminated string.
    if unsafe { libc::chdir(c"/".as_ptr()) } < 0 { Err(errno()) } else { Ok(String::new()) }
}

extern "C" fn on_signal(_: libc::c_int) {}

fn churn_once(round: u64) {
    // Heap: grow and shrink.
    let v: Vec<Vec<u8>> = (0..64).map(|i| vec![0u8; 1024 * (i + 1)]).collect();
    std::hint::black_box(&v);
    drop(v);
    let big = vec![1u8; 8 << 20];
    std::hint::black_box(&big);
    drop(big);
    // Threads come and go.
    let hs: Vec<_> = (0..4).map(|_| std::thread::spawn(|| std::hint::black_box(vec![0u8; 64 * 1024]).len())).collect();
    for h in hs {
        let _ = h.join();
    }
    // Anonymous memory mapped and unmapped.
    if let Ok(p) = mmap_anon(libc::PROT_READ | libc::PROT_WRITE) {
        // SAFETY: we mapped this page just now.
        unsafe { libc::munmap(p, 4096) };
    }
    // A data file mapped read-only and unmapped; files opened and closed.
    if let Ok(f) = std::fs::File::open("/proc/self/exe") {
        use std::os::fd::AsRawFd;
        // SAFETY: a read-only private mapping of an open file.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0) };
        if p != libc::MAP_FAILED {
            // SAFETY: we mapped this page just now.
            unsafe { libc::munmap(p, 4096) };
        }
    }
    for path in ["/etc/hostname", "/proc/self/status", "/dev/null"] {
        let _ = std::fs::read(path);
    }
    // Signal handlers installed and reset.
    let sig = if round.is_multiple_of(2) { libc::SIGUSR1 } else { libc::SIGUSR2 };
    // SAFETY: installing a handler that does nothing.
    unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    // SAFETY: resetting the disposition to default.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

fn churn(seconds: f64) -> Result<String, String> {
    let d = Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("churn".into())
        .spawn(move || {
            let start = Instant::now();
            let mut round = 0u64;
            while start.elapsed() < d && !STOP.load(Ordering::Relaxed) {
                churn_once(round);
                round += 1;
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(String::new())
}

fn seccomp_thread() -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("filtered".into())
        .spawn(move || {
            let _ = tx.send(seccomp_allow_all());
            while !STOP.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

fn threads(n: usize) -> Result<String, String> {
    for _ in 0..n {
        std::thread::Builder::new()
            .spawn(|| {
                while !STOP.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(String::new())
}

#[inline(never)]
fn code_marker() -> u32 {
    std::hint::black_box(0x5eed)
}

/// Xors `mask` into the first byte of `code_marker`, through a writable
/// mapping of its own page.
fn poke_code(mask: u8) -> Result<String, String> {
    let at = code_marker as *const () as usize;
    let page = (at & !0xfff) as *mut libc::c_void;
    mprotect(page, libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)?;
    let p = at as *mut u8;
    // SAFETY: `p` is the first byte of `code_marker`, in a page just made
    // writable; only `ping` runs that function, and the caller does not ping
    // until it pokes the byte back. Executable throughout, so the code
    // running here (maybe on the same page) keeps running.
    unsafe { p.write_volatile(p.read_volatile() ^ mask) };
    mprotect(page, libc::PROT_READ | libc::PROT_EXEC)?;
    Ok(format!("{at:#x}"))
}

fn run(cmd: &str, arg: &str, rwx_page: &mut Option<usize>) -> Result<String, String> {
    let num = || arg.trim().parse::<u64>().map_err(|e| format!("{arg:?}: {e}"));
    match cmd {
        "seccomp" => seccomp_allow_all(),
        "seccomp-errno" => seccomp_errno(u32::try_from(num()?).map_err(|e| e.to_string())?),
        "seccomp-thread" => seccomp_thread(),
        "nnp" => prctl(libc::PR_SET_NO_NEW_PRIVS, 1),
        "setgroups" => setgroups(arg),
        // Run-time churn that is not isolation (SUPPORTED.md): the live tests
        // check that fdir stays quiet.
        "umask" => {
            let mode = u32::from_str_radix(arg.trim(), 8).map_err(|e| format!("{arg:?}: {e}"))?;
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(mode));
            Ok(String::new())
        }
        "thp-disable" => prctl(libc::PR_SET_THP_DISABLE, 1),
        // Executes another program in this process (same pid, same stdin and
        // stdout): `exec PATH ARGS...`. Returns only on failure.
        "exec" => {
            use std::os::unix::process::CommandExt;
            let mut words = arg.split_whitespace();
            let path = words.next().ok_or("exec: no program")?;
            let _ = std::io::stdout().flush();
            Err(std::process::Command::new(path).args(words).exec().to_string())
        }
        "timerslack" => prctl(libc::PR_SET_TIMERSLACK, num()?),
        "name" => {
            let name = std::ffi::CString::new(arg.trim()).map_err(|e| e.to_string())?;
            rustix::thread::set_name(&name).map(|()| String::new()).map_err(|e| e.to_string())
        }
        "rwx" => {
            let p = mmap_anon(libc::PROT_READ | libc::PROT_WRITE)?;
            mprotect(p, libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)?;
            *rwx_page = Some(p as usize);
            Ok(format!("{p:p}"))
        }
        "unrwx" => {
            let p = rwx_page.ok_or("no rwx page")?;
            mprotect(p as *mut libc::c_void, libc::PROT_READ | libc::PROT_WRITE)
        }
        "memfd-exec" => memfd_exec(),
        "dlopen" => dlopen(arg.trim()),
        "drop-bounding" => prctl(libc::PR_CAPBSET_DROP, num()?),
        "drop-effective" => drop_effective(u32::try_from(num()?).map_err(|e| e.to_string())?),
        "unshare-net" => unshare(libc::CLONE_NEWNET),
        "unshare-mount" => unshare(libc::CLONE_NEWNS).and_then(|_| mount_private_root()),
        "unshare-pid" => unshare(libc::CLONE_NEWPID),
        "mount-tmpfs" => mount_tmpfs(arg.trim()),
        "chroot" => chroot(arg.trim()),
        "threads" => threads(usize::try_from(num()?).map_err(|e| e.to_string())?),
        "churn" => churn(arg.trim().parse::<f64>().map_err(|e| e.to_string())?),
        "maps" => {
            // N more mappings: one-page anonymous regions whose permissions
            // alternate, so the kernel cannot merge them (maps grows by N lines).
            let n = num()?;
            for i in 0..n {
                let prot = if i % 2 == 0 { libc::PROT_READ } else { libc::PROT_READ | libc::PROT_WRITE };
                mmap_anon(prot)?;
            }
            Ok(String::new())
        }
        "code-page" => Ok(format!("{:#x}", code_marker as *const () as usize & !0xfff)),
        "code-marker" => Ok(format!("{:#x}", code_marker as *const () as usize)),
        "poke-code" => poke_code(u8::try_from(num()?).map_err(|e| e.to_string())?),
        "ping" => Ok(format!("{}", code_marker())),
        _ => Err(format!("unknown command {cmd:?}")),
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    args.get(i).and_then(|a| a.parse().ok()).ok_or_else(|| format!("argument {i}: expected {what}"))
}

/// `live MILLISECONDS THREADS`: a short-lived process of the storm.
fn live(args: &[String]) -> Result<(), String> {
    let ms: u64 = arg(args, 2, "milliseconds")?;
    let threads: usize = arg(args, 3, "a thread count")?;
    let end = Instant::now() + Duration::from_millis(ms);
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                while Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    for h in hs {
        let _ = h.join();
    }
    Ok(())
}

/// `churn-worker SECONDS THREADS_PER_SEC`: starts and ends threads at a rate
/// (each allocates, maps and unmaps a page, sleeps a little), then prints
/// `threads N`.
fn churn_worker(args: &[String]) -> Result<(), String> {
    let secs: f64 = arg(args, 2, "seconds")?;
    let rate: f64 = arg(args, 3, "threads per second")?;
    let end = Instant::now() + Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    let period = Duration::try_from_secs_f64(1.0 / rate.max(0.001)).map_err(|e| e.to_string())?;
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    let mut running: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut started = 0u64;
    let mut next = Instant::now();
    while Instant::now() < end {
        running.retain(|h| !h.is_finished());
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(10)));
            continue;
        }
        next += period;
        let nap = Duration::from_millis(1 + rng.next() % 20);
        let h = std::thread::Builder::new().spawn(move || {
            std::hint::black_box(vec![7u8; 64 * 1024]);
            if let Ok(p) = mmap_anon(libc::PROT_READ | libc::PROT_WRITE) {
                // SAFETY: we mapped this page just now.
                unsafe { libc::munmap(p, 4096) };
            }
            std::thread::sleep(nap);
        });
        match h {
            Ok(h) => {
                running.push(h);
                started += 1;
            }
            Err(e) => eprintln!("churn-worker: cannot start a thread: {e}"),
        }
    }
    for h in running {
        let _ = h.join();
    }
    println!("threads {started}");
    Ok(())
}

/// `spawn-storm SECONDS PROCS_PER_SEC THREADS_PER_SEC WORKERS`: see the
/// module documentation.
fn spawn_storm(args: &[String]) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let secs: f64 = arg(args, 2, "seconds")?;
    let procs: f64 = arg(args, 3, "processes per second")?;
    let threads: f64 = arg(args, 4, "threads per second")?;
    let workers: usize = arg(args, 5, "a worker count")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let end = Instant::now() + Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    let pid_max: u64 =
        std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(32768);
    let per_worker = (threads / workers.max(1) as f64).max(0.001);
    let mut ws = Vec::new();
    for _ in 0..workers {
        let w = Command::new(&exe)
            .args(["churn-worker", &secs.to_string(), &per_worker.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        ws.push(w);
    }
    let mut rng = Rng(u64::from(std::process::id()).rotate_left(17) | 1);
    let period = Duration::try_from_secs_f64(1.0 / procs.max(0.001)).map_err(|e| e.to_string())?;
    let mut children: Vec<std::process::Child> = Vec::new();
    let (mut started, mut failed, mut wraps) = (0u64, 0u64, 0u64);
    let (mut min_pid, mut max_pid, mut last_pid) = (u64::MAX, 0u64, 0u64);
    let mut next = Instant::now();
    while Instant::now() < end {
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(5)));
            continue;
        }
        next += period;
        let roll = rng.next() % 100;
        let (ms, n) = match roll {
            0..70 => (rng.next() % 500, 0),
            70..90 => (2500 + rng.next() % 3500, 0),
            _ => (2500 + rng.next() % 3500, 3),
        };
        match Command::new(&exe)
            .args(["live", &ms.to_string(), &n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => {
                let pid = u64::from(c.id());
                if last_pid > pid + pid_max / 2 {
                    wraps += 1;
                }
                last_pid = pid;
                min_pid = min_pid.min(pid);
                max_pid = max_pid.max(pid);
                started += 1;
                children.push(c);
            }
            Err(_) => failed += 1,
        }
    }
    for mut c in children {
        let _ = c.wait();
    }
    let mut worker_threads = 0u64;
    for w in ws {
        if let Ok(out) = w.wait_with_output() {
            let text = String::from_utf8_lossy(&out.stdout);
            worker_threads += text.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).unwrap_or_default();
        }
    }
    println!(
        "{{\"processes\":{started},\"spawn_failures\":{failed},\"threads\":{worker_threads},\"min_pid\":{},\"max_pid\":{max_pid},\"pid_max\":{pid_max},\"wraps\":{wraps}}}",
        if min_pid == u64::MAX { 0 } else { min_pid }
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args.get(1).map(String::as_str) {
        Some("spawn-storm") => Some(spawn_storm as fn(&[String]) -> Result<(), String>),
        Some("live") => Some(live as fn(&[String]) -> Result<(), String>),
        Some("churn-worker") => Some(churn_worker as fn(&[String]) -> Result<(), String>),
        _ => None,
    };
    if let Some(run) = mode {
        if let Err(e) = run(&args) {
            eprintln!("fdir-testee: {e}");
            return std::process::ExitCode::from(2);
        }
        return std::process::ExitCode::SUCCESS;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "ready {}", std::process::id());
    let _ = out.flush();
    let mut rwx_page = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (cmd, arg) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        if cmd == "exit" {
            break;
        }
        let reply = match run(cmd, arg, &mut rwx_page) {
            Ok(v) if v.is_empty() => "ok".to_owned(),
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("err {e}"),
        };
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
    STOP.store(true, Ordering::Relaxed);
    std::process::ExitCode::SUCCESS
}
