//! The eBPF trigger source: the system calls and kernel functions that
//! change isolation, seen as they return.
//!
//! Built without a compiler, kernel headers or any BPF toolchain: the
//! programs are assembled by hand in Rust (`programs.rs`, with the tiny
//! assembler of `asm.rs`) and loaded with raw bpf(2) (`sys.rs`). They need
//! no tracefs and no kprobes: one program on the raw tracepoint `sys_exit`
//! (every system call, filtered in the kernel to the ones that change
//! isolation, and those by their arguments) and one fexit program per
//! kernel function (`programs::FUNCTIONS`: cgroup control file writes,
//! `/proc/sys` writes, `/proc/PID/mem` writes), attached through the
//! kernel's BTF. A function this kernel lacks, or no BTF, skips that hook
//! (`Ebpf::skipped`), never the source.
//!
//! Records come through a ring buffer, readable through `Ebpf::as_fd`; a
//! record the kernel could not deliver (ring full) is counted in the kernel
//! (`Ebpf::lost`), and the caller answers a loss with a full check.
//!
//! The `PROT_EXEC` family is rate-limited in the kernel: at most one record
//! per process and call every `RATE_LIMIT_NS`. A record says "this process
//! changed its executable mappings at or before now, and may again within
//! the window"; **the caller must start the check it triggers no sooner
//! than `RATE_LIMIT_NS` after draining the record** so that the calls the
//! limit folded into it are seen too. Every other call is recorded each
//! time.
//!
//! docs/ebpf.md describes each program, its filters and why each hook.

use crate::bpf::{asm, btf, sys};
pub mod programs;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{Kind, Recheck, Unavailable};
use programs::{CGROUP_ATTACH, FUNCTION_BASE, FUNCTIONS, nr};

/// The ring's size when the caller has no reason to choose: 256 KiB, about
/// 10,000 records between two drains.
pub const DEFAULT_RING_BYTES: usize = 256 * 1024;

/// The in-kernel rate limit of the `PROT_EXEC` family: at most one record
/// per (process, call) in this many nanoseconds.
pub const RATE_LIMIT_NS: u64 = 1_000_000;

/// How many records the rate limit's memory holds (processes × calls); the
/// least recently recorded is forgotten first (which costs a record, never
/// loses one).
const RATE_ENTRIES: u32 = 4096;

/// One record as the programs write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The caller's thread group id (initial pid namespace).
    pub tgid: u32,
    /// The pid the call names (`prlimit64`, `ptrace`, `process_vm_writev`),
    /// as the caller named it (its pid namespace), or 0.
    pub target: u32,
    /// The system call's number (x86_64), or `programs::FUNCTION_BASE` + the
    /// index of the kernel function in `programs::FUNCTIONS`.
    pub hook: u32,
    /// The argument that let the record through: the `prctl` option, the
    /// `ptrace` request, the `prot` of the `PROT_EXEC` family, the resource
    /// of `prlimit64`; else 0.
    pub arg: u32,
}

impl Record {
    fn from_bytes(b: [u8; 16]) -> Record {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3] = b;
        Record {
            tgid: u32::from_le_bytes([a0, a1, a2, a3]),
            target: u32::from_le_bytes([b0, b1, b2, b3]),
            hook: u32::from_le_bytes([c0, c1, c2, c3]),
            arg: u32::from_le_bytes([d0, d1, d2, d3]),
        }
    }

    /// The hook's name: the system call or the kernel function.
    pub fn hook_name(&self) -> &'static str {
        hook_name(self.hook)
    }

    /// What to re-check for this record:
    ///
    /// - the mount family: `Mounts` and the caller;
    /// - a call that names a target (`prlimit64` with a pid, `ptrace`
    ///   writes, `process_vm_writev`): the target and the caller;
    /// - a task moved to another cgroup: that process (`All` when the
    ///   offset of `tgid` was not found in BTF and the record names none);
    /// - module loads and `/proc/sys` writes: `Node`;
    /// - writes to cgroup control files and to `/proc/PID/mem`: `All`. The
    ///   writer's pid names neither the cgroup nor the process written to
    ///   (a supervisor writes for others), and only a full check is sure;
    ///   these writes are rare (a container or unit starting, a debugger);
    /// - any other: the caller.
    pub fn rechecks(&self, out: &mut Vec<Recheck>) {
        let caller = Recheck::Process(self.tgid);
        match self.hook {
            CGROUP_ATTACH if self.target != 0 => out.push(Recheck::Process(self.target)),
            CGROUP_ATTACH => out.push(Recheck::All),
            h if h == FUNCTION_BASE => out.push(Recheck::All),
            h if h == FUNCTION_BASE + 1 => out.push(Recheck::Node),
            h if h == FUNCTION_BASE + 2 => out.push(Recheck::All),
            nr::MOUNT
            | nr::UMOUNT2
            | nr::PIVOT_ROOT
            | nr::OPEN_TREE
            | nr::OPEN_TREE_ATTR
            | nr::MOVE_MOUNT
            | nr::FSCONFIG
            | nr::FSMOUNT
            | nr::MOUNT_SETATTR => out.extend([Recheck::Mounts, caller]),
            nr::INIT_MODULE | nr::FINIT_MODULE | nr::DELETE_MODULE => out.push(Recheck::Node),
            nr::PRLIMIT64 | nr::PTRACE | nr::PROCESS_VM_WRITEV => {
                if self.target != 0 && self.target != self.tgid && i32::try_from(self.target).is_ok() {
                    out.push(Recheck::Process(self.target));
                }
                out.push(caller);
            }
            _ => out.push(caller),
        }
    }
}

/// The name of a hook number.
pub fn hook_name(hook: u32) -> &'static str {
    if hook == CGROUP_ATTACH {
        return "cgroup_attach_task";
    }
    if let Some(f) = hook.checked_sub(FUNCTION_BASE).and_then(|i| FUNCTIONS.get(usize::try_from(i).ok()?)) {
        return f;
    }
    match hook {
        nr::MMAP => "mmap",
        nr::MPROTECT => "mprotect",
        nr::PKEY_MPROTECT => "pkey_mprotect",
        nr::PTRACE => "ptrace",
        nr::SETUID => "setuid",
        nr::SETGID => "setgid",
        nr::SETREUID => "setreuid",
        nr::SETREGID => "setregid",
        nr::SETGROUPS => "setgroups",
        nr::SETRESUID => "setresuid",
        nr::SETRESGID => "setresgid",
        nr::SETFSUID => "setfsuid",
        nr::SETFSGID => "setfsgid",
        nr::CAPSET => "capset",
        nr::PIVOT_ROOT => "pivot_root",
        nr::PRCTL => "prctl",
        nr::SETRLIMIT => "setrlimit",
        nr::CHROOT => "chroot",
        nr::MOUNT => "mount",
        nr::UMOUNT2 => "umount2",
        nr::INIT_MODULE => "init_module",
        nr::DELETE_MODULE => "delete_module",
        nr::UNSHARE => "unshare",
        nr::PRLIMIT64 => "prlimit64",
        nr::SETNS => "setns",
        nr::PROCESS_VM_WRITEV => "process_vm_writev",
        nr::FINIT_MODULE => "finit_module",
        nr::SECCOMP => "seccomp",
        nr::OPEN_TREE => "open_tree",
        nr::MOVE_MOUNT => "move_mount",
        nr::FSCONFIG => "fsconfig",
        nr::FSMOUNT => "fsmount",
        nr::MOUNT_SETATTR => "mount_setattr",
        nr::LANDLOCK_RESTRICT_SELF => "landlock_restrict_self",
        nr::OPEN_TREE_ATTR => "open_tree_attr",
        _ => "unknown",
    }
}

/// A hook that could not be attached, and why (the source runs without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The kernel function.
    pub hook: &'static str,
    /// Why, in words a person can act on.
    pub reason: String,
}

/// The loaded and attached programs, and the ring they write to. Dropping
/// it detaches and unloads everything.
pub struct Ebpf {
    ring: sys::Ring,
    state: OwnedFd,
    /// Kept so that the maps and programs live as long as their links.
    _rate: OwnedFd,
    _progs: Vec<OwnedFd>,
    _links: Vec<OwnedFd>,
    hooks: Vec<&'static str>,
    skipped: Vec<Skipped>,
    max_drain: usize,
    /// The counter's last value read, answered if a read fails.
    last_lost: std::cell::Cell<u64>,
    scratch: Vec<Record>,
}

fn unavailable(reason: impl Into<String>) -> Unavailable {
    Unavailable { kind: Kind::Ebpf, reason: reason.into() }
}

/// Words for a bpf(2) failure of `what`.
fn bpf_failure(what: &str, err: &std::io::Error) -> Unavailable {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => unavailable(format!(
            "{what}: {err}; loading eBPF programs needs CAP_BPF and CAP_PERFMON (or root), \
             and kernel.unprivileged_bpf_disabled keeps them from other users"
        )),
        Some(libc::ENOSYS) => unavailable(format!("{what}: this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)")),
        _ => unavailable(format!("{what}: {err}")),
    }
}

/// `Some(reason)` when kernel lockdown forbids what the programs do.
fn lockdown() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    text.contains("[confidentiality]").then(|| {
        "/sys/kernel/security/lockdown is confidentiality: the kernel refuses programs that read its memory".to_owned()
    })
}

impl Ebpf {
    /// Loads and attaches the programs; ring buffer of `ring_bytes` (power of
    /// two, >= 4096). The `PROT_EXEC` family is rate-limited at
    /// `RATE_LIMIT_NS`.
    pub fn open(ring_bytes: usize) -> Result<Ebpf, Unavailable> {
        Ebpf::open_with(ring_bytes, RATE_LIMIT_NS)
    }

    /// As `open`, with the rate limit's window in nanoseconds (0: every
    /// `PROT_EXEC` call is recorded; for tests and measurements).
    pub fn open_with(ring_bytes: usize, rate_ns: u64) -> Result<Ebpf, Unavailable> {
        if !cfg!(target_arch = "x86_64") {
            return Err(unavailable("the programs are written for x86_64 (its system call numbers and registers)"));
        }
        if !ring_bytes.is_power_of_two() || ring_bytes < 4096 {
            return Err(unavailable(format!(
                "a ring of {ring_bytes} bytes: it must be a power of two of 4096 or more"
            )));
        }
        if let Some(reason) = lockdown() {
            return Err(unavailable(reason));
        }
        let size =
            u32::try_from(ring_bytes).map_err(|_| unavailable(format!("a ring of {ring_bytes} bytes is too large")))?;
        let ring_fd = sys::map_create(sys::MAP_RINGBUF, 0, 0, size, "fdir_ring")
            .map_err(|e| bpf_failure("cannot create the ring buffer", &e))?;
        let state = sys::map_create(sys::MAP_ARRAY, 4, 8, programs::STATE_SLOTS, "fdir_state")
            .map_err(|e| bpf_failure("cannot create the state map", &e))?;
        let rate = sys::map_create(sys::MAP_LRU_HASH, 8, 8, RATE_ENTRIES, "fdir_rate")
            .map_err(|e| bpf_failure("cannot create the rate-limit map", &e))?;
        sys::update_u64(state.as_fd(), programs::STATE_RATE_NS, rate_ns)
            .map_err(|e| bpf_failure("cannot set the rate limit", &e))?;
        let ring =
            sys::Ring::map(ring_fd, ring_bytes).map_err(|e| unavailable(format!("cannot map the ring buffer: {e}")))?;
        let fds = [ring.fd().as_raw_fd_i32(), state.as_raw_fd_i32(), rate.as_raw_fd_i32()];

        let mut progs = Vec::new();
        let mut links = Vec::new();
        let mut hooks = Vec::new();

        // The system calls: required (without them the source is not worth
        // running).
        let prog = programs::sys_exit().map_err(|e| unavailable(format!("the sys_exit program: {}", e.0)))?;
        let prog = asm::Insn::with_map_fds(&prog, &fds)
            .ok_or_else(|| unavailable("the sys_exit program names a map it has not"))?;
        let spec = sys::ProgSpec {
            prog_type: sys::PROG_RAW_TRACEPOINT,
            attach_type: 0,
            attach_btf_id: 0,
            name: "fdir_sys_exit",
            flags: 0,
        };
        let fd = sys::prog_load(&prog, &spec).map_err(|e| match e.log {
            Some(log) => unavailable(format!("the kernel refused the sys_exit program: {} ({log})", e.err)),
            None => bpf_failure("cannot load the sys_exit program", &e.err),
        })?;
        let link = sys::raw_tracepoint_open(fd.as_fd(), Some(c"sys_exit"))
            .map_err(|e| bpf_failure("cannot attach to the raw tracepoint sys_exit", &e))?;
        progs.push(fd);
        links.push(link);
        hooks.push("sys_exit");

        let mut skipped = Vec::new();
        // Mapped where the kernel allows it, otherwise read a window at a
        // time, never whole (5 MiB and more).
        let btf = std::fs::File::open("/sys/kernel/btf/vmlinux").map(btf::Vmlinux::new);

        // One pass over the BTF for the functions and `tgid`'s offset.
        let found =
            btf.as_ref().ok().and_then(|b| btf::find_in(b, &FUNCTIONS, &[("task_struct", "tgid")], btf::WINDOW));
        // Cgroup moves: optional; the moved process is named when BTF gives
        // the offset of `tgid`.
        let tgid_offset = found.as_ref().and_then(|(_, offsets)| offsets.first().copied().flatten());
        if let Some(off) = tgid_offset {
            let _ = sys::update_u64(state.as_fd(), programs::STATE_TGID_OFFSET, u64::from(off));
        }
        match attach_raw_tp(programs::cgroup_attach(), c"cgroup_attach_task", "fdir_cg_attach", &fds) {
            Ok((p, l)) => {
                progs.push(p);
                links.push(l);
                hooks.push("cgroup_attach_task");
            }
            Err(reason) => skipped.push(Skipped { hook: "cgroup_attach_task", reason }),
        }

        // The kernel functions: each optional.
        let ids = match &btf {
            Ok(_) => found
                .map(|(ids, _)| ids)
                .ok_or_else(|| "/sys/kernel/btf/vmlinux is not BTF this build reads".to_owned()),
            Err(e) => {
                Err(format!("no BTF: /sys/kernel/btf/vmlinux: {e} (a kernel built with CONFIG_DEBUG_INFO_BTF has it)"))
            }
        };
        drop(btf);
        for (i, name) in FUNCTIONS.iter().enumerate() {
            let attached = ids.as_ref().map_err(Clone::clone).and_then(|ids| {
                let id =
                    ids.get(i).copied().flatten().ok_or_else(|| format!("this kernel's BTF has no function {name}"))?;
                attach_fexit(i, name, id, &fds)
            });
            match attached {
                Ok((p, l)) => {
                    progs.push(p);
                    links.push(l);
                    hooks.push(*name);
                }
                Err(reason) => skipped.push(Skipped { hook: name, reason }),
            }
        }

        let max_drain = ring_bytes / 24 * 4;
        Ok(Ebpf {
            ring,
            state,
            _rate: rate,
            _progs: progs,
            _links: links,
            hooks,
            skipped,
            max_drain,
            last_lost: std::cell::Cell::new(0),
            scratch: Vec::new(),
        })
    }

    /// Readable (poll/epoll) when records are waiting.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.fd()
    }

    /// Reads every waiting record into `out` (as Recheck values); returns how
    /// many records it read.
    pub fn drain(&mut self, out: &mut Vec<Recheck>) -> usize {
        let mut records = std::mem::take(&mut self.scratch);
        records.clear();
        let n = self.drain_records(&mut records);
        for r in &records {
            r.rechecks(out);
        }
        self.scratch = records;
        n
    }

    /// Reads every waiting record into `out` as the programs wrote them;
    /// returns how many.
    pub fn drain_records(&mut self, out: &mut Vec<Record>) -> usize {
        self.ring.drain(self.max_drain, |bytes, len| {
            if len == 16 {
                out.push(Record::from_bytes(bytes));
            }
        })
    }

    /// Records the kernel side could not deliver (ring full), cumulative.
    pub fn lost(&self) -> u64 {
        let n = sys::lookup_u64(self.state.as_fd(), programs::STATE_LOST).unwrap_or(self.last_lost.get());
        self.last_lost.set(n);
        n
    }

    /// The hooks attached: `sys_exit`, then the kernel functions.
    pub fn hooks(&self) -> &[&'static str] {
        &self.hooks
    }

    /// The kernel functions that could not be hooked, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }
}

impl super::Source for Ebpf {
    fn kind(&self) -> Kind {
        Kind::Ebpf
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        Ebpf::as_fd(self)
    }

    /// Drains the ring; when it read records, returns only once
    /// `RATE_LIMIT_NS` has passed: a `PROT_EXEC` record also stands for the
    /// process's calls of the next `RATE_LIMIT_NS`, so the check it triggers
    /// must start after them (the hub wakes the watch when this returns).
    fn drain(&mut self, out: &mut Vec<Recheck>) -> usize {
        let n = Ebpf::drain(self, out);
        if n > 0 {
            std::thread::sleep(std::time::Duration::from_nanos(RATE_LIMIT_NS));
        }
        n
    }

    fn lost(&self) -> u64 {
        Ebpf::lost(self)
    }
}

fn attach_raw_tp(
    prog: Result<Vec<asm::Insn>, asm::AsmError>,
    tracepoint: &std::ffi::CStr,
    name: &str,
    fds: &[i32],
) -> Result<(OwnedFd, OwnedFd), String> {
    let tp = tracepoint.to_string_lossy();
    let prog = prog.map_err(|e| e.0)?;
    let prog = asm::Insn::with_map_fds(&prog, fds).ok_or_else(|| "the program names a map it has not".to_owned())?;
    let spec = sys::ProgSpec { prog_type: sys::PROG_RAW_TRACEPOINT, attach_type: 0, attach_btf_id: 0, name, flags: 0 };
    let fd = sys::prog_load(&prog, &spec).map_err(|e| match e.log {
        Some(log) => format!("the kernel refused the program of {tp}: {} ({log})", e.err),
        None => format!("cannot load the program of {tp}: {}", e.err),
    })?;
    let link = sys::raw_tracepoint_open(fd.as_fd(), Some(tracepoint))
        .map_err(|e| format!("cannot attach to the raw tracepoint {tp}: {e}"))?;
    Ok((fd, link))
}

fn attach_fexit(i: usize, name: &str, btf_id: u32, fds: &[i32]) -> Result<(OwnedFd, OwnedFd), String> {
    let index = u32::try_from(i).map_err(|_| "too many functions".to_owned())?;
    let prog = programs::fexit(index).map_err(|e| e.0)?;
    let prog = asm::Insn::with_map_fds(&prog, fds).ok_or_else(|| "the program names a map it has not".to_owned())?;
    let spec = sys::ProgSpec {
        prog_type: sys::PROG_TRACING,
        attach_type: sys::ATTACH_FEXIT,
        attach_btf_id: btf_id,
        name: "fdir_fexit",
        flags: 0,
    };
    let fd = sys::prog_load(&prog, &spec).map_err(|e| match e.log {
        Some(log) => format!("the kernel refused fexit on {name}: {} ({log})", e.err),
        None if e.err.raw_os_error() == Some(libc::EPERM) => format!(
            "cannot load fexit on {name}: {}, before the verifier ran: this kernel refuses BTF-attached hooks (fexit)",
            e.err
        ),
        None => format!("cannot load fexit on {name}: {}", e.err),
    })?;
    let link = sys::raw_tracepoint_open(fd.as_fd(), None).map_err(|e| format!("cannot attach fexit to {name}: {e}"))?;
    Ok((fd, link))
}

/// The raw descriptor number as the programs' map table holds it.
trait RawI32 {
    fn as_raw_fd_i32(&self) -> i32;
}

impl<T: std::os::fd::AsRawFd> RawI32 for T {
    fn as_raw_fd_i32(&self) -> i32 {
        self.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rechecks(tgid: u32, target: u32, hook: u32) -> Vec<Recheck> {
        let mut out = Vec::new();
        Record { tgid, target, hook, arg: 0 }.rechecks(&mut out);
        out
    }

    #[test]
    fn records_map_to_rechecks() {
        assert_eq!(rechecks(10, 0, nr::MPROTECT), vec![Recheck::Process(10)]);
        assert_eq!(rechecks(10, 0, nr::SETRESUID), vec![Recheck::Process(10)]);
        assert_eq!(rechecks(10, 0, nr::MOUNT), vec![Recheck::Mounts, Recheck::Process(10)]);
        assert_eq!(rechecks(10, 0, nr::PRLIMIT64), vec![Recheck::Process(10)]);
        assert_eq!(rechecks(10, 10, nr::PRLIMIT64), vec![Recheck::Process(10)]);
        assert_eq!(rechecks(10, 20, nr::PRLIMIT64), vec![Recheck::Process(20), Recheck::Process(10)]);
        assert_eq!(rechecks(10, 20, nr::PTRACE), vec![Recheck::Process(20), Recheck::Process(10)]);
        assert_eq!(rechecks(10, u32::MAX, nr::PTRACE), vec![Recheck::Process(10)]);
        assert_eq!(rechecks(10, 0, nr::FINIT_MODULE), vec![Recheck::Node]);
        assert_eq!(rechecks(10, 0, FUNCTION_BASE), vec![Recheck::All]);
        assert_eq!(rechecks(10, 30, CGROUP_ATTACH), vec![Recheck::Process(30)]);
        assert_eq!(rechecks(10, 0, CGROUP_ATTACH), vec![Recheck::All]);
        assert_eq!(rechecks(10, 0, FUNCTION_BASE + 1), vec![Recheck::Node]);
        assert_eq!(rechecks(10, 0, FUNCTION_BASE + 2), vec![Recheck::All]);
    }

    #[test]
    fn every_hook_has_a_name() {
        for n in programs::UNFILTERED.iter().chain(&[
            nr::MMAP,
            nr::MPROTECT,
            nr::PKEY_MPROTECT,
            nr::PRCTL,
            nr::PTRACE,
            nr::PRLIMIT64,
        ]) {
            assert_ne!(hook_name(*n), "unknown", "{n}");
        }
        assert_eq!(hook_name(FUNCTION_BASE + 2), "mem_write");
        assert_eq!(hook_name(FUNCTION_BASE + 3), "unknown");
        assert_eq!(hook_name(CGROUP_ATTACH), "cgroup_attach_task");
    }

    /// Where BTF attachment is refused (this project's VM), the fexit
    /// programs never meet a verifier through `open`: loaded as raw
    /// tracepoint programs (the same helpers; neither reads its context)
    /// they do. Without CAP_BPF there is nothing to load, and nothing to say.
    #[test]
    fn every_program_passes_the_verifier() {
        let Ok(ring) = sys::map_create(sys::MAP_RINGBUF, 0, 0, 4096, "fdir_t_ring") else { return };
        let state = sys::map_create(sys::MAP_ARRAY, 4, 8, programs::STATE_SLOTS, "fdir_t_state").unwrap();
        let rate = sys::map_create(sys::MAP_LRU_HASH, 8, 8, RATE_ENTRIES, "fdir_t_rate").unwrap();
        let fds = [ring.as_raw_fd_i32(), state.as_raw_fd_i32(), rate.as_raw_fd_i32()];
        let mut progs = vec![programs::sys_exit().unwrap(), programs::cgroup_attach().unwrap()];
        for i in 0..FUNCTIONS.len() {
            progs.push(programs::fexit(u32::try_from(i).unwrap()).unwrap());
        }
        for (i, p) in progs.iter().enumerate() {
            let p = asm::Insn::with_map_fds(p, &fds).unwrap();
            let spec = sys::ProgSpec {
                prog_type: sys::PROG_RAW_TRACEPOINT,
                attach_type: 0,
                attach_btf_id: 0,
                name: "fdir_t",
                flags: 0,
            };
            let loaded = sys::prog_load(&p, &spec);
            assert!(loaded.is_ok(), "program {i}: {:?}", loaded.err());
        }
    }

    #[test]
    fn the_source_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<Ebpf>();
    }

    #[test]
    fn a_bad_ring_size_is_unavailable_not_a_failure() {
        for size in [0, 100, 2048, 5000] {
            let e = Ebpf::open(size).err().map(|e| e.kind);
            assert_eq!(e, Some(Kind::Ebpf), "{size}");
        }
    }
}
