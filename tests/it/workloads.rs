//! Real workloads must not raise false drift, and quiet must not mean blind.
//!
//! Each workload — node with a JIT-heavy script and worker threads, a JVM
//! forcing C1/C2 compilation and GC, python with threads, multiprocessing and
//! mmap churn, `stress-ng` with its mmap, brk and pthread stressors, a
//! firejail sandbox and a bubblewrap sandbox — is started, left to warm up
//! (a service is baselined once it runs), and watched by its own
//! `fdir watch --pid ... --subsystems all --interval 200ms` for
//! [`WATCHED`]: no anomaly for its processes. Then a real change is made to
//! the same process — its bounding set loses `cap_sys_admin`, by
//! `prctl(PR_CAPBSET_DROP, 21)` called in it through gdb, or, where gdb
//! cannot call into a process (probed first on a `sleep` of the test's own;
//! counted as a skip), the same system call injected with ptrace by the test;
//! in a sandbox with no `cap_sys_admin` left to lose, its `RLIMIT_NOFILE` is
//! lowered from outside — and must be caught.
//!
//! The workloads run at the same time, each on a thread of the one test
//! (libtest runs as many tests at once as there are cores: on two, six
//! 30-second workloads would take minutes). Each reports its own result; a
//! missing package or a sandbox that cannot start here is skipped with a
//! counted reason. The measured quietness is printed and written to
//! `target/tmp/workloads.txt`. Nothing here measures or asserts speed: the
//! checks counted are a floor waited for with a generous deadline.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::command::{DEADLINE, Watch, is};
use common::{is_root, prlimit, skip};
use serde_json::Value;

/// How long each workload is watched.
const WATCHED: Duration = Duration::from_secs(30);
/// Checks each watch must have made before it is judged (waited for, with
/// a generous deadline: a loaded machine is slow, not wrong).
const MIN_CHECKS: usize = 10;

/// A started workload: the processes to watch, and what to kill at the end.
struct Workload {
    child: Child,
    pids: Vec<u32>,
    /// The process the real change is made to.
    target: u32,
}

impl Drop for Workload {
    fn drop(&mut self) {
        // The whole process group: workers, forks, sandboxes.
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // SAFETY: kill of the process group this test created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` in a process group of its own; waits for a line `ready` on
/// its stdout when `ready` is set, otherwise for `warm_up`.
fn start(mut cmd: Command, ready: bool, warm_up: Duration) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.trim() == "ready" {
                let _ = tx.send(());
            }
        }
    });
    if ready {
        if rx.recv_timeout(DEADLINE).is_err() {
            let _ = child.kill();
            let out = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            return Err(format!("did not get ready: {}", out.unwrap_or_default().trim()));
        }
    } else {
        std::thread::sleep(warm_up);
    }
    if let Ok(Some(status)) = child.try_wait() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!("exited at once ({status}): {}", err.trim()));
    }
    Ok(child)
}

/// The processes below `pid` (children, grandchildren ...), with their names.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                let name = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
                out.push((c, name.trim().to_owned()));
                todo.push(c);
            }
        }
    }
    out
}

fn has_cap_sys_admin(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << 21) != 0)
}

/// Makes the real change: the bounding set loses cap_sys_admin (through
/// gdb, in the process itself), or, where it has none or gdb cannot call
/// into a process on this machine, RLIMIT_NOFILE is lowered from outside.
/// Returns the subsystem that must drift and what was done.
fn real_change(pid: u32, gdb: &Result<(), String>) -> Result<(&'static str, String), String> {
    let why = if !has_cap_sys_admin(pid) {
        "no cap_sys_admin left to drop in it".to_owned()
    } else if gdb.is_ok() {
        match drop_cap_sys_admin(pid) {
            Ok(done) => return Ok(("credentials", done)),
            Err(e) => e,
        }
    } else if injection_works().is_ok() {
        // gdb cannot call into a process here: the same system call, made
        // in the process's main thread by a ptrace injection of our own.
        match inject_capbset_drop(pid) {
            Ok(()) => {
                return Ok((
                    "credentials",
                    "prctl(PR_CAPBSET_DROP, cap_sys_admin) injected with ptrace (gdb cannot call here)".into(),
                ));
            }
            Err(e) => e,
        }
    } else {
        "no cap_sys_admin left to drop in it".to_owned()
    };
    prlimit(pid, libc::RLIMIT_NOFILE, 256, 256).map_err(|e| format!("prlimit {pid}: {e}"))?;
    Ok(("limits", format!("prlimit RLIMIT_NOFILE 256:256 ({why})")))
}

/// Whether gdb can call a function in a process here: tried on a `sleep`
/// of the test's own. Where it cannot (on some kernels and VMs gdb cannot
/// write the registers' extended state back, "Couldn't write extended state
/// status"), a failed call can leave the process broken, so it is never
/// tried on a workload.
fn gdb_can_call() -> Result<(), String> {
    let mut sleep = Command::new("sleep").arg("1000").spawn().map_err(|e| format!("cannot start sleep: {e}"))?;
    let r = drop_cap_sys_admin(sleep.id()).map(drop);
    let _ = sleep.kill();
    let _ = sleep.wait();
    r
}

fn drop_cap_sys_admin(pid: u32) -> Result<String, String> {
    {
        let out = Command::new("timeout")
            .args(["120", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
            .args(["-ex", "handle SIGSEGV nostop noprint pass", "-ex", "handle SIGUSR2 nostop noprint pass"])
            .args(["-ex", "call (int)prctl(24,21,0,0,0)"])
            .output()
            .map_err(|e| format!("cannot run gdb: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.lines().any(|l| l.trim_start().starts_with('$') && l.trim_end().ends_with("= 0")) {
            // gdb's own words: the last line of its stderr says why.
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no result").trim().to_owned();
            return Err(format!("gdb could not call prctl in it: {last}"));
        }
        Ok("gdb -p PID -batch -ex 'call (int)prctl(24,21,0,0,0)': cap_sys_admin out of the bounding set".into())
    }
}

/// Whether the ptrace injection works here: tried on a `sleep` of the
/// test's own, which must lose cap_sys_admin and live on.
fn injection_works() -> Result<(), String> {
    static WORKS: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    WORKS
        .get_or_init(|| {
            let mut sleep =
                Command::new("sleep").arg("1000").spawn().map_err(|e| format!("cannot start sleep: {e}"))?;
            std::thread::sleep(Duration::from_millis(200));
            let r = inject_capbset_drop(sleep.id()).and_then(|()| {
                std::thread::sleep(Duration::from_millis(100));
                match sleep.try_wait() {
                    Ok(None) if !has_cap_sys_admin(sleep.id()) => Ok(()),
                    Ok(None) => Err("the injected prctl changed nothing".to_owned()),
                    _ => Err("the process died of the injection".to_owned()),
                }
            });
            let _ = sleep.kill();
            let _ = sleep.wait();
            r
        })
        .clone()
}

/// Makes the main thread of `pid` call `prctl(PR_CAPBSET_DROP,
/// CAP_SYS_ADMIN)`, as gdb's `call` would: seize and interrupt it, point it
/// at a `syscall` instruction of its own vdso or libc with the arguments in
/// its registers, step over it, and put every register back (an interrupted
/// system call restarts as it would after a signal). x86-64 only.
#[cfg(target_arch = "x86_64")]
fn inject_capbset_drop(pid: u32) -> Result<(), String> {
    let at = syscall_instruction(pid)?;
    let p = libc::pid_t::try_from(pid).map_err(|e| e.to_string())?;
    let fail = |what: &str| format!("{what} {pid}: {}", std::io::Error::last_os_error());
    let wait = |what: &str| -> Result<(), String> {
        let mut status = 0;
        // SAFETY: waitpid on a thread this test is tracing; status is ours.
        if unsafe { libc::waitpid(p, &raw mut status, libc::__WALL) } != p {
            return Err(fail(what));
        }
        if libc::WIFSTOPPED(status) { Ok(()) } else { Err(format!("{what} {pid}: not stopped ({status:#x})")) }
    };
    // SAFETY: ptrace requests on a process this test started; no memory of
    // ours is handed to the kernel except `regs`, valid for each call.
    unsafe {
        // fdir's seccomp-filters reads seize threads too, for a moment.
        let mut tries = 0;
        while libc::ptrace(libc::PTRACE_SEIZE, p, 0, 0) != 0 {
            tries += 1;
            if tries == 50 {
                return Err(fail("PTRACE_SEIZE"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let detach = || {
            libc::ptrace(libc::PTRACE_DETACH, p, 0, 0);
        };
        if libc::ptrace(libc::PTRACE_INTERRUPT, p, 0, 0) != 0 {
            detach();
            return Err(fail("PTRACE_INTERRUPT"));
        }
        if let Err(e) = wait("stop") {
            detach();
            return Err(e);
        }
        let mut saved: libc::user_regs_struct = std::mem::zeroed();
        if libc::ptrace(libc::PTRACE_GETREGS, p, 0, &raw mut saved) != 0 {
            detach();
            return Err(fail("PTRACE_GETREGS"));
        }
        let mut regs = saved;
        regs.rax = libc::SYS_prctl as u64;
        regs.orig_rax = u64::MAX; // not in a system call: nothing to restart
        regs.rdi = libc::PR_CAPBSET_DROP as u64;
        regs.rsi = 21; // CAP_SYS_ADMIN
        regs.rdx = 0;
        regs.r10 = 0;
        regs.r8 = 0;
        regs.rip = at;
        let mut result = Err("the injected system call did not return".to_owned());
        if libc::ptrace(libc::PTRACE_SETREGS, p, 0, &raw const regs) == 0
            && libc::ptrace(libc::PTRACE_SINGLESTEP, p, 0, 0) == 0
            && wait("step").is_ok()
        {
            let mut after: libc::user_regs_struct = std::mem::zeroed();
            if libc::ptrace(libc::PTRACE_GETREGS, p, 0, &raw mut after) == 0 {
                result = if after.rax == 0 { Ok(()) } else { Err(format!("prctl returned {}", after.rax as i64)) };
            }
        }
        let restored = libc::ptrace(libc::PTRACE_SETREGS, p, 0, &raw const saved) == 0;
        detach();
        if !restored {
            return Err(fail("PTRACE_SETREGS (restore)"));
        }
        result
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn inject_capbset_drop(pid: u32) -> Result<(), String> {
    Err(format!("no ptrace injection on this architecture (pid {pid})"))
}

/// The address of a `syscall` instruction (0f 05) in an executable mapping
/// of `pid`: its vdso, or else its libc.
fn syscall_instruction(pid: u32) -> Result<u64, String> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).map_err(|e| e.to_string())?;
    let code = maps.lines().filter(|l| l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')));
    let (vdso, rest): (Vec<&str>, Vec<&str>) = code.partition(|l| l.ends_with("[vdso]"));
    for line in vdso.into_iter().chain(rest.into_iter().filter(|l| l.contains("libc"))) {
        let range = line.split_whitespace().next().unwrap_or("");
        let Some((lo, hi)) = range.split_once('-') else { continue };
        let (Ok(lo), Ok(hi)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16)) else { continue };
        let mut buf = vec![0u8; usize::try_from((hi - lo).min(4 << 20)).unwrap()];
        if mem.seek(SeekFrom::Start(lo)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        if let Some(i) = buf.windows(2).position(|w| w == [0x0f, 0x05]) {
            return Ok(lo + i as u64);
        }
    }
    Err(format!("no syscall instruction found in pid {pid}"))
}

/// What one workload measured.
struct Measured {
    name: &'static str,
    pids: usize,
    anomalies: usize,
    checks: usize,
    watched: Duration,
    change: String,
    caught: bool,
}

/// Watches `w`, judges it, makes the real change and waits for it.
fn watch_and_judge(name: &'static str, w: &Workload, dir: &Path, gdb: &Result<(), String>) -> Result<Measured, String> {
    let baseline = dir.join(format!("{name}.json"));
    let mut args: Vec<String> = Vec::new();
    for p in &w.pids {
        args.extend(["--pid".into(), p.to_string()]);
    }
    args.extend(
        ["--subsystems", "all", "--interval", "200ms", "--format", "json", "--baseline", baseline.to_str().unwrap()]
            .map(str::to_owned),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut watch = Watch::start(&argv, dir);
    watch.wait_for("the first check", is("check"));
    let started = Instant::now();
    watch.collect_for(WATCHED);
    // At least MIN_CHECKS checks, however slow the machine is.
    while watch.seen.iter().filter(|v| is("check")(v)).count() < MIN_CHECKS {
        watch.wait_for("a check", is("check"));
    }
    let watched = started.elapsed();
    let ours = |v: &Value| v["pid"].as_u64().is_some_and(|p| w.pids.iter().any(|&q| u64::from(q) == p));
    let anomalies: Vec<Value> = watch.seen.iter().filter(|v| is("anomaly")(v) && ours(v)).cloned().collect();
    let checks = watch.seen.iter().filter(|v| is("check")(v)).count();
    if !anomalies.is_empty() {
        return Err(format!("{name}: {} false anomalies in {watched:?}: {anomalies:#?}", anomalies.len()));
    }
    let (subsystem, change) = real_change(w.target, gdb)?;
    let target = w.target;
    let hit =
        watch.wait_for("the real change", |v| is("anomaly")(v) && v["pid"] == target && v["subsystem"] == subsystem);
    let (code, _) = watch.terminate();
    if code != 0 {
        return Err(format!("{name}: fdir watch exited {code}"));
    }
    Ok(Measured {
        name,
        pids: w.pids.len(),
        anomalies: 0,
        checks,
        watched,
        change,
        caught: hit["subsystem"] == subsystem,
    })
}

const NODE_SCRIPT: &str = r#"
const { Worker, isMainThread } = require('worker_threads');
function churn(seed) {
  // New functions, new shapes, hot loops: V8 compiles (Sparkplug, Maglev,
  // TurboFan) and grows its code space the whole time.
  let acc = 0;
  for (let i = 0; i < 300; i++) {
    const f = new Function('x', 'y', `return (x * ${seed + i} + y) % 1000003 + ${i};`);
    for (let j = 0; j < 2000; j++) acc = f(acc, j);
    const o = {}; o['k' + (i % 97)] = acc; acc += Object.keys(o).length;
  }
  return acc;
}
if (isMainThread) {
  for (let w = 0; w < 2; w++) new Worker(__filename);
  let n = 0;
  churn(0);
  console.log('ready');
  setInterval(() => { churn(++n); }, 50);
} else {
  let n = 0;
  setInterval(() => { churn(1000 + ++n); }, 70);
}
"#;

const JAVA_SOURCE: &str = r#"
import java.util.*;
public class Hot {
    static long work(long seed) {
        // Polymorphic hot loops (C1 then C2, deoptimization) and garbage (GC).
        long acc = seed;
        List<Object> garbage = new ArrayList<>();
        for (int i = 0; i < 200_000; i++) {
            acc = acc * 31 + (i % 7 == 0 ? Long.hashCode(acc) : Integer.toString(i).length());
            if (i % 100 == 0) garbage.add(new byte[1024]);
            if (garbage.size() > 500) garbage.clear();
        }
        return acc;
    }
    public static void main(String[] args) throws Exception {
        long acc = 0;
        for (int i = 0; i < 50; i++) acc += work(i);
        Thread t = new Thread(() -> { long a = 0; while (true) { a += work(a); try { Thread.sleep(20); } catch (InterruptedException e) { return; } } });
        t.setDaemon(true);
        t.start();
        System.out.println("ready");
        System.out.flush();
        while (true) { acc += work(acc); System.gc(); Thread.sleep(30); }
    }
}
"#;

const PYTHON_SCRIPT: &str = r#"
import mmap, threading, multiprocessing, time, os, sys

def square(x):
    return x * x

def mmap_churn():
    while True:
        m = mmap.mmap(-1, 1 << 20)
        m.write(b"x" * 4096)
        m.close()
        with open(__file__, "rb") as f:
            with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as r:
                r.read(16)
        time.sleep(0.01)

def spin():
    while True:
        sum(i * i for i in range(20000))
        time.sleep(0.005)

if __name__ == "__main__":
    pool = multiprocessing.Pool(2)
    pool.map(square, range(100))
    for target in (mmap_churn, spin, spin):
        threading.Thread(target=target, daemon=True).start()
    print("ready", flush=True)
    while True:
        pool.map(square, range(1000))
        threading.Thread(target=lambda: time.sleep(0.05)).start()
        time.sleep(0.1)
"#;

fn node(dir: &Path) -> Result<Workload, String> {
    let script = dir.join("jit.js");
    std::fs::write(&script, NODE_SCRIPT).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(&script);
    let child = start(cmd, true, Duration::ZERO)?;
    let pid = child.id();
    Ok(Workload { child, pids: vec![pid], target: pid })
}

fn jvm(dir: &Path) -> Result<Workload, String> {
    let src = dir.join("Hot.java");
    std::fs::write(&src, JAVA_SOURCE).unwrap();
    let mut cmd = Command::new("java");
    cmd.args(["-Xmx128m", "-XX:+UseSerialGC"]).arg(&src);
    let child = start(cmd, true, Duration::ZERO)?;
    let pid = child.id();
    Ok(Workload { child, pids: vec![pid], target: pid })
}

fn python(dir: &Path) -> Result<Workload, String> {
    // The interpreter itself, not a wrapper that would exec it (pyenv's shim).
    let exe = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let exe = String::from_utf8_lossy(&exe.stdout).trim().to_owned();
    let script = dir.join("churn.py");
    std::fs::write(&script, PYTHON_SCRIPT).unwrap();
    let mut cmd = Command::new(&exe);
    cmd.arg(&script);
    let child = start(cmd, true, Duration::ZERO)?;
    let pid = child.id();
    Ok(Workload { child, pids: vec![pid], target: pid })
}

fn stress_ng(_dir: &Path) -> Result<Workload, String> {
    // Niced (nice execs stress-ng: the same pid): its stressors spin, and
    // the watches beside them need the cores too.
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "15", "stress-ng", "--mmap", "1", "--brk", "1", "--pthread", "1", "--timeout", "0", "--quiet"]);
    let child = start(cmd, false, Duration::from_secs(3))?;
    let pid = child.id();
    let mut pids = vec![pid];
    pids.extend(descendants(pid).into_iter().map(|(p, _)| p));
    // The change goes to a stressor (the pthread one churns threads).
    let target = pids.last().copied().unwrap_or(pid);
    Ok(Workload { child, pids, target })
}

/// The shell loop run inside a sandbox: forks, reads, sleeps.
const SANDBOXED: &str = "while :; do ls / >/dev/null; cat /proc/self/status >/dev/null; sleep 0.05; done";

fn sandboxed(name: &str, mut cmd: Command) -> Result<Workload, String> {
    cmd.args(["sh", "-c", SANDBOXED]);
    let child = start(cmd, false, Duration::from_secs(3))?;
    let inner = descendants(child.id()).into_iter().filter(|(_, n)| n == "sh").map(|(p, _)| p).next();
    let Some(pid) = inner else {
        return Err(format!("{name}: no sandboxed shell found below pid {}", child.id()));
    };
    Ok(Workload { child, pids: vec![pid], target: pid })
}

fn firejail(_dir: &Path) -> Result<Workload, String> {
    let mut cmd = Command::new("firejail");
    cmd.args(["--quiet", "--noprofile", "--seccomp", "--caps.drop=all", "--"]);
    sandboxed("firejail", cmd)
}

fn bwrap(_dir: &Path) -> Result<Workload, String> {
    let mut cmd = Command::new("bwrap");
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    cmd.args(["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent", "--"]);
    sandboxed("bwrap", cmd)
}

type Starter = fn(&Path) -> Result<Workload, String>;

/// (name, the program it needs, how to start it).
const WORKLOADS: &[(&str, &str, Starter)] = &[
    ("node", "node", node),
    ("jvm", "java", jvm),
    ("python", "python3", python),
    ("stress-ng", "stress-ng", stress_ng),
    ("firejail", "firejail", firejail),
    ("bwrap", "bwrap", bwrap),
];

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn real_workloads_raise_no_false_drift_and_real_changes_are_caught() {
    let test = "real_workloads_raise_no_false_drift_and_real_changes_are_caught";
    if !is_root() {
        return skip(test, "needs root (gdb into other processes, ptrace of sandboxes, every subsystem)");
    }
    if !installed("gdb") {
        return skip(test, "gdb is not installed (the capability drop goes through it)");
    }
    let gdb = gdb_can_call();
    if let Err(e) = &gdb {
        let instead = match injection_works() {
            Ok(()) => "the same prctl is injected with ptrace instead".to_owned(),
            Err(i) => format!("nor can a ptrace injection ({i}): RLIMIT_NOFILE is lowered instead"),
        };
        skip(&format!("{test}: the capability drop through gdb"), &format!("{e}; {instead}"));
    }
    let gdb = &gdb;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Started one after another (each warms up alone), then watched together.
    let mut started: Vec<(&'static str, Workload)> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for &(name, program, start) in WORKLOADS {
        if !installed(program) {
            skip(&format!("{test}: {name}"), &format!("{program} is not installed (.ci/run installs it)"));
            continue;
        }
        match start(dir.path()) {
            Ok(w) => started.push((name, w)),
            // A sandbox that cannot start in this machine (no user namespaces,
            // a kernel that refuses it) is skipped; the others must start.
            Err(e) if name == "firejail" || name == "bwrap" => skip(&format!("{test}: {name}"), &e),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    let results: Vec<(&str, Result<Measured, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = started
            .iter()
            .map(|(name, w)| {
                let dir = dir.path();
                (*name, s.spawn(move || watch_and_judge(name, w, dir, gdb)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| (name, h.join().unwrap_or_else(|_| Err(format!("{name}: the watch thread panicked")))))
            .collect()
    });
    let mut table = String::from("workload\tpids\tanomalies\tchecks\twatched_s\tchange\tcaught\n");
    for (name, r) in &results {
        match r {
            Ok(m) => {
                table.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{:.1}\t{}\t{}\n",
                    m.name,
                    m.pids,
                    m.anomalies,
                    m.checks,
                    m.watched.as_secs_f64(),
                    m.change,
                    m.caught
                ));
            }
            Err(e) => {
                table.push_str(&format!("{name}\tFAILED\t{}\n", e.lines().next().unwrap_or("")));
                failures.push(e.clone());
            }
        }
    }
    eprintln!("{table}");
    let _ = std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("workloads.txt"), &table);
    drop(started);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
