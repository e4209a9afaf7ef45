//! Shared harness of the live tests: a real child process whose isolation is
//! changed on command, cgroups created and always removed, and counted skips.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod command;

/// The tests' random cases, repeatable from the seed (xorshift64*).
#[allow(unused_imports)]
pub use fdir::rng::Rng;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Prints why a case is skipped and counts it in `target/tmp/skipped.txt`
/// (`.ci/run` prints the count).
pub fn skip(test: &str, reason: &str) {
    eprintln!("SKIP {test}: {reason}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{test}: {reason}");
    }
}

/// The `--all` tests (watches, snapshots and checks of every process of the
/// machine) run one at a time, across every module of the test binary, so
/// that one such test's children do not change under another's watch.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The changes of an anomaly, as text.
pub fn texts(a: &fdir::Anomaly) -> Vec<String> {
    a.changes.iter().map(ToString::to_string).collect()
}

/// Asserts exactly `subsystems` drifted and one change of `sub` contains `needle`.
pub fn assert_drift(anomalies: &[fdir::Anomaly], subsystems: &[fdir::Subsystem], sub: fdir::Subsystem, needle: &str) {
    let got: Vec<fdir::Subsystem> = anomalies.iter().map(|a| a.subsystem).collect();
    assert_eq!(got, subsystems, "drifted subsystems: {anomalies:#?}");
    let a = anomalies.iter().find(|a| a.subsystem == sub).unwrap();
    assert_ne!(a.expected, a.actual);
    assert!(texts(a).iter().any(|t| t.contains(needle)), "{sub}: no change mentions {needle:?}: {:#?}", texts(a));
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The `fdir-testee` process, killed and reaped on drop.
pub struct Testee {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub pid: u32,
}

impl Testee {
    pub fn spawn() -> Testee {
        Testee::spawn_with(|_| {})
    }

    pub fn spawn_with(f: impl FnOnce(&mut Command)) -> Testee {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fdir-testee"));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        f(&mut cmd);
        let mut child = cmd.spawn().expect("spawn fdir-testee");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready "), "testee said {line:?}");
        let pid = child.id();
        Testee { child, stdin, stdout, pid }
    }

    /// Sends a command; `Ok(value)` on `ok [value]`, `Err(message)` on `err`.
    pub fn cmd(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("ok") {
            Ok(rest.trim_start().to_owned())
        } else if let Some(rest) = line.strip_prefix("err ") {
            Err(rest.to_owned())
        } else {
            panic!("testee answered {line:?} to {command:?}")
        }
    }

    /// Makes the testee execute `program` (another copy of the testee, to be
    /// driven on): waits for the new program's `ready` line.
    pub fn exec(&mut self, program: &str) {
        writeln!(self.stdin, "exec {program}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready "), "after exec {program}, the testee said {line:?}");
    }

    /// Like `cmd`, failing the test on an error.
    pub fn must(&mut self, command: &str) -> String {
        self.cmd(command).unwrap_or_else(|e| panic!("testee {command}: {e}"))
    }

    /// Asks the testee to exit and waits for it.
    pub fn exit(mut self) {
        let _ = writeln!(self.stdin, "exit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Testee {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A writable cgroup v2 (or, failing that, v1) hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub v2: bool,
    /// The controller (v1), e.g. "pids".
    pub controller: String,
}

fn mountinfo_cgroups() -> Vec<Hierarchy> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let opts = r.nth(1).unwrap_or("");
        if fstype == "cgroup2" {
            out.push(Hierarchy { mount: mount.into(), v2: true, controller: String::new() });
        } else if fstype == "cgroup" {
            for c in ["pids", "freezer", "cpu", "memory"] {
                if opts.split(',').any(|o| o == c) {
                    out.push(Hierarchy { mount: mount.into(), v2: false, controller: c.into() });
                }
            }
        }
    }
    out.sort_by_key(|h| !h.v2);
    out
}

/// A cgroup v2 hierarchy if there is one, else a v1 one.
pub fn hierarchy(prefer_v1_controller: Option<&str>) -> Option<Hierarchy> {
    let all = mountinfo_cgroups();
    if let Some(c) = prefer_v1_controller
        && let Some(h) = all.iter().find(|h| !h.v2 && h.controller == c)
    {
        return Some(h.clone());
    }
    all.into_iter().next()
}

static CGROUP_SEQ: AtomicU32 = AtomicU32::new(0);

/// A scratch cgroup, removed on drop after its processes are moved back.
pub struct ScratchCgroup {
    pub path: PathBuf,
    pub hierarchy: Hierarchy,
    /// Where each moved pid came from.
    moved: Vec<(u32, PathBuf)>,
}

impl ScratchCgroup {
    /// Creates a cgroup in `h`; `Err(reason)` when it cannot (not root, read-only).
    pub fn new(h: &Hierarchy, label: &str) -> Result<ScratchCgroup, String> {
        let n = CGROUP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = h.mount.join(format!("fdir-test-{label}-{}-{n}", std::process::id()));
        fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(ScratchCgroup { path, hierarchy: h.clone(), moved: Vec::new() })
    }

    fn current(&self, pid: u32) -> PathBuf {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        for line in text.lines() {
            let mut p = line.splitn(3, ':');
            let (_, ctrl, path) = (p.next(), p.next().unwrap_or(""), p.next().unwrap_or("/"));
            let hit = if self.hierarchy.v2 {
                ctrl.is_empty()
            } else {
                ctrl.split(',').any(|c| c == self.hierarchy.controller)
            };
            if hit {
                return self.hierarchy.mount.join(path.trim_start_matches('/'));
            }
        }
        self.hierarchy.mount.clone()
    }

    /// Moves `pid` (the whole process) into this cgroup.
    pub fn enter(&mut self, pid: u32) -> Result<(), String> {
        let from = self.current(pid);
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .map_err(|e| format!("cannot move {pid} into {}: {e}", self.path.display()))?;
        self.moved.push((pid, from));
        Ok(())
    }

    /// Moves `pid` back where it came from.
    pub fn leave(&mut self, pid: u32) {
        if let Some(i) = self.moved.iter().position(|(p, _)| *p == pid) {
            let (_, from) = self.moved.remove(i);
            let _ = fs::write(from.join("cgroup.procs"), pid.to_string());
        }
    }

    /// A cgroup inside this one, removed on drop (drop it before its parent).
    pub fn nested(&self, label: &str) -> Result<ScratchCgroup, String> {
        let path = self.path.join(label);
        fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(ScratchCgroup { path, hierarchy: self.hierarchy.clone(), moved: Vec::new() })
    }

    /// The cgroup path as `/proc/PID/cgroup` shows it.
    pub fn cgroup_path(&self) -> String {
        format!("/{}", self.path.strip_prefix(&self.hierarchy.mount).unwrap().display())
    }

    /// Reads a control file of this cgroup.
    pub fn read(&self, file: &str) -> std::io::Result<String> {
        fs::read_to_string(self.path.join(file))
    }

    /// Writes a control file of this cgroup.
    pub fn write(&self, file: &str, value: &str) -> std::io::Result<()> {
        fs::write(self.path.join(file), value)
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        for (pid, from) in std::mem::take(&mut self.moved) {
            let _ = fs::write(from.join("cgroup.procs"), pid.to_string());
        }
        // Whatever else is left (a process that forked): back to the root.
        if let Ok(procs) = fs::read_to_string(self.path.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = fs::write(self.hierarchy.mount.join("cgroup.procs"), pid);
            }
        }
        let _ = self.write("cgroup.freeze", "0");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(&self.path).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A shared library the testee has not loaded, for `dlopen` tests.
pub fn unloaded_library(pid: u32) -> Option<PathBuf> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let dirs =
        ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/aarch64-linux-gnu", "/usr/lib"];
    let names = ["libresolv.so.2", "libutil.so.1", "libanl.so.1", "libz.so.1", "libm.so.6", "libnss_files.so.2"];
    for d in dirs {
        for n in names {
            let p = Path::new(d).join(n);
            if p.exists() && !maps.contains(n) {
                return Some(p);
            }
        }
    }
    None
}

/// Sets a resource limit of process `pid` (prlimit(2)).
pub fn prlimit(pid: u32, resource: u32, soft: u64, hard: u64) -> std::io::Result<()> {
    let new = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `new` is a valid rlimit for the duration of the call; no old
    // value is asked for.
    let r = unsafe {
        libc::prlimit(libc::pid_t::try_from(pid).unwrap(), resource as _, &raw const new, std::ptr::null_mut())
    };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The (soft, hard) limit `resource` of process `pid`.
pub fn getrlimit(pid: u32, resource: u32) -> (u64, u64) {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: only `old` is written, a valid rlimit.
    let r =
        unsafe { libc::prlimit(libc::pid_t::try_from(pid).unwrap(), resource as _, std::ptr::null(), &raw mut old) };
    assert_eq!(r, 0, "prlimit {pid}: {}", std::io::Error::last_os_error());
    (old.rlim_cur, old.rlim_max)
}

/// A copy of the node files fdir reads (the hardening sysctls, the taint,
/// the command line, modules and securityfs where they exist) in a temporary
/// directory, so a test can change a "sysctl" without touching the
/// machine's own settings.
pub struct NodeCopy {
    pub dir: tempfile::TempDir,
}

impl NodeCopy {
    pub fn new() -> NodeCopy {
        let dir = tempfile::tempdir().unwrap();
        let mut rels: Vec<String> = fdir::canon::kernel::SYSCTLS
            .iter()
            .map(|s| format!("proc/sys/{}", fdir::canon::kernel::sysctl_path(s.name)))
            .collect();
        for r in [
            "proc/sys/kernel/tainted",
            "proc/sys/kernel/hostname",
            "proc/sys/kernel/random/boot_id",
            "proc/cmdline",
            "proc/modules",
            "sys/kernel/security/lockdown",
            "sys/kernel/security/lsm",
        ] {
            rels.push(r.to_owned());
        }
        for rel in rels {
            if let Ok(data) = fs::read(Path::new("/").join(&rel)) {
                let to = dir.path().join(&rel);
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::write(to, data).unwrap();
            }
        }
        fs::create_dir_all(dir.path().join("sys")).unwrap();
        NodeCopy { dir }
    }

    /// The node source over the copy.
    pub fn source(&self) -> fdir::Procfs {
        fdir::Procfs::system_at(self.dir.path().join("proc"), self.dir.path().join("sys")).unwrap()
    }

    /// The path of a file of the copy (`proc/sys/kernel/tainted`).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file of the copy, never the machine's.
    pub fn write(&self, rel: &str, value: &str) {
        let p = self.path(rel);
        assert!(p.starts_with(self.dir.path()));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, value).unwrap();
    }
}

/// Cycles `m` until a cycle finds something, or 30 s pass (then the last
/// cycle's findings, none): what a test that changed a target waits for.
pub fn cycle_until_found(m: &mut fdir::Monitor) -> Vec<fdir::Finding> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (f, _) = m.cycle(&fdir::SystemClock);
        if !f.is_empty() || Instant::now() > deadline {
            return f;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
