//! The eBPF programs, assembled by hand (no compiler, no kernel headers).
//!
//! Two programs, both small enough to read whole:
//!
//! - `sys_exit`, on the raw tracepoint `sys_exit` (every system call's
//!   return, one attachment, no tracefs): reads the caller's registers
//!   (`struct pt_regs`, the x86_64 user ABI: `dx` at 96, `si` at 104, `di` at
//!   112, `orig_ax` — the system call number — at 120) and keeps only the
//!   calls of `WATCHED`, with their argument filters (`mmap`, `mprotect`,
//!   `pkey_mprotect` only with `PROT_EXEC`; `prctl` only for the options of
//!   `PRCTL_OPTIONS`; `ptrace` only for the requests of `PTRACE_WRITES`;
//!   `prlimit64` only when it sets a limit). At the return, not the entry:
//!   a record then means the change is made, so a check it triggers sees it.
//! - `cgroup_attach`, on the raw tracepoint `cgroup_attach_task`
//!   (`TP_PROTO(struct cgroup *dst, const char *path, struct task_struct
//!   *task, bool threadgroup)`): the moved task's tgid, read at the offset
//!   that `state[STATE_TGID_OFFSET]` holds (found in BTF at load; 0 when
//!   unknown, and then the record names no target).
//! - `fexit`, one copy per kernel function of `FUNCTIONS` (fexit through
//!   the function's BTF id): the writer's tgid and the function.
//!
//! Each record is 16 bytes (`Record` in `ebpf.rs`): tgid, target (a pid the
//! call names, or 0), hook (the system call number, or `FUNCTION_BASE + i`),
//! argument (the `prctl` option, the `ptrace` request, the `prot`, the
//! rlimit resource). A record the ring cannot take adds one to `state[0]`
//! (`lost`). The `PROT_EXEC` family is rate-limited per process: a record
//! at most every `state[1]` nanoseconds per (tgid, call) (an LRU hash of
//! the last record's time), so that a JIT's storm costs a map lookup a
//! call, not a record a call.
//!
//! Any change to a program changes `digest()`, which a unit test compares
//! with `PROGRAMS_SHA256`: a change is reviewed, then the constant updated.

use sha2::{Digest as _, Sha256};

use crate::bpf::asm::{Alu, Asm, AsmError, Cond, Helper, Insn, Map, Reg, Size};

/// The ring buffer (`BPF_MAP_TYPE_RINGBUF`).
pub const RING: Map = Map(0);
/// `state`: an array of three u64: `[STATE_LOST]` records the ring could
/// not take, `[STATE_RATE_NS]` the rate limit's window (0: off),
/// `[STATE_TGID_OFFSET]` the offset of `tgid` in `struct task_struct` (from
/// BTF; 0: unknown).
pub const STATE: Map = Map(1);
/// The rate limit's memory: (tgid << 32 | call) -> time of its last record.
pub const RATE: Map = Map(2);
/// Index of the lost-record counter in `STATE`.
pub const STATE_LOST: u32 = 0;
/// Index of the rate window (ns) in `STATE`.
pub const STATE_RATE_NS: u32 = 1;
/// Index of `offsetof(struct task_struct, tgid)` in `STATE`.
pub const STATE_TGID_OFFSET: u32 = 2;
/// How many slots `STATE` has.
pub const STATE_SLOTS: u32 = 3;

/// The hook of the raw tracepoint `cgroup_attach_task` (a task moved to
/// another cgroup, by a write to `cgroup.procs` or `cgroup.threads`, v1
/// and v2).
pub const CGROUP_ATTACH: u32 = FUNCTION_BASE + 0x100;

/// Hook numbers of kernel functions start here (system calls are below).
pub const FUNCTION_BASE: u32 = 0x1_0000;

/// The kernel functions hooked by fexit, in hook order
/// (`FUNCTION_BASE + index`).
pub const FUNCTIONS: [&str; 3] = [
    // A write to any cgroup control file (limits, cgroup.procs moves,
    // freeze, subtree_control), v1 and v2.
    "cgroup_file_write",
    // A write to a file under /proc/sys.
    "proc_sys_write",
    // A write to /proc/PID/mem.
    "mem_write",
];

/// x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub mod nr {
    #![allow(missing_docs)]
    pub const MMAP: u32 = 9;
    pub const MPROTECT: u32 = 10;
    pub const PTRACE: u32 = 101;
    pub const SETUID: u32 = 105;
    pub const SETGID: u32 = 106;
    pub const SETREUID: u32 = 113;
    pub const SETREGID: u32 = 114;
    pub const SETGROUPS: u32 = 116;
    pub const SETRESUID: u32 = 117;
    pub const SETRESGID: u32 = 119;
    pub const SETFSUID: u32 = 122;
    pub const SETFSGID: u32 = 123;
    pub const CAPSET: u32 = 126;
    pub const PIVOT_ROOT: u32 = 155;
    pub const PRCTL: u32 = 157;
    pub const SETRLIMIT: u32 = 160;
    pub const CHROOT: u32 = 161;
    pub const MOUNT: u32 = 165;
    pub const UMOUNT2: u32 = 166;
    pub const INIT_MODULE: u32 = 175;
    pub const DELETE_MODULE: u32 = 176;
    pub const UNSHARE: u32 = 272;
    pub const PRLIMIT64: u32 = 302;
    pub const SETNS: u32 = 308;
    pub const PROCESS_VM_WRITEV: u32 = 311;
    pub const FINIT_MODULE: u32 = 313;
    pub const SECCOMP: u32 = 317;
    pub const PKEY_MPROTECT: u32 = 329;
    pub const OPEN_TREE: u32 = 428;
    pub const MOVE_MOUNT: u32 = 429;
    pub const FSCONFIG: u32 = 431;
    pub const FSMOUNT: u32 = 432;
    pub const MOUNT_SETATTR: u32 = 442;
    pub const LANDLOCK_RESTRICT_SELF: u32 = 446;
    pub const OPEN_TREE_ATTR: u32 = 467;
}

/// Calls recorded whatever their arguments.
pub const UNFILTERED: [u32; 29] = [
    nr::SETUID,
    nr::SETGID,
    nr::SETREUID,
    nr::SETREGID,
    nr::SETGROUPS,
    nr::SETRESUID,
    nr::SETRESGID,
    nr::SETFSUID,
    nr::SETFSGID,
    nr::CAPSET,
    nr::SECCOMP,
    nr::LANDLOCK_RESTRICT_SELF,
    nr::SETNS,
    nr::UNSHARE,
    nr::SETRLIMIT,
    nr::CHROOT,
    nr::PIVOT_ROOT,
    nr::MOUNT,
    nr::UMOUNT2,
    nr::OPEN_TREE,
    nr::OPEN_TREE_ATTR,
    nr::MOVE_MOUNT,
    nr::FSCONFIG,
    nr::FSMOUNT,
    nr::MOUNT_SETATTR,
    nr::INIT_MODULE,
    nr::FINIT_MODULE,
    nr::DELETE_MODULE,
    nr::PROCESS_VM_WRITEV,
];

/// `prctl` options that change isolation (include/uapi/linux/prctl.h):
/// PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_SECCOMP, PR_CAPBSET_DROP,
/// PR_SET_SECUREBITS, PR_SET_MM, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT,
/// PR_SET_SPECULATION_CTRL, PR_SET_SYSCALL_USER_DISPATCH, PR_SET_MDWE,
/// PR_SET_PTRACER (Yama).
pub const PRCTL_OPTIONS: [i32; 12] = [4, 8, 22, 24, 28, 35, 38, 47, 53, 59, 65, 0x5961_6d61];

/// `ptrace` requests that write to the tracee: POKETEXT, POKEDATA,
/// POKEUSER, SETREGS, SETFPREGS, SETFPXREGS, ARCH_PRCTL, SETSIGINFO,
/// SETREGSET, SET_SYSCALL_USER_DISPATCH_CONFIG.
pub const PTRACE_WRITES: [i32; 10] = [4, 5, 6, 13, 15, 19, 30, 0x4203, 0x4205, 0x4210];

/// `PROT_EXEC`.
const PROT_EXEC: i32 = 4;

// The stack frame of both programs (offsets from r10):
/// The record: tgid, target, hook, argument (u32 each).
const REC: i16 = -16;
/// The registers read from `pt_regs`: dx, si, di, orig_ax (u64 each).
const REGS: i16 = -48;
const DX: i16 = REGS;
const SI: i16 = REGS + 8;
const DI: i16 = REGS + 16;
const ORIG_AX: i16 = REGS + 24;
/// The rate limit's key (u64) and the time now (u64).
const KEY: i16 = -56;
const NOW: i16 = -64;
/// An index into `state` (u32).
const IDX: i16 = -68;
/// Offset of `dx` in x86_64 `struct pt_regs`; `si`, `di`, `orig_ax` follow.
const PT_REGS_DX: i32 = 96;

/// The tail both programs share: the record at `REC` (tgid written here,
/// then target r8, hook r7, argument r9) to the ring, or one more lost.
fn emit(a: &mut Asm) {
    a.label("emit")
        .call(Helper::GetCurrentPidTgid)
        .alu_imm(Alu::Rsh, Reg::R0, 32)
        .stx(Size::W, Reg::Fp, REC, Reg::R0)
        .stx(Size::W, Reg::Fp, REC + 4, Reg::R8)
        .stx(Size::W, Reg::Fp, REC + 8, Reg::R7)
        .stx(Size::W, Reg::Fp, REC + 12, Reg::R9)
        .ld_map(Reg::R1, RING)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(REC))
        .mov_imm(Reg::R3, 16)
        .mov_imm(Reg::R4, 0)
        .call(Helper::RingbufOutput)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "out")
        // The ring is full: count the record lost.
        .st_imm(Size::W, Reg::Fp, IDX, STATE_LOST as i32)
        .ld_map(Reg::R1, STATE)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(IDX))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "out")
        .mov_imm(Reg::R1, 1)
        .atomic_add(Reg::R0, 0, Reg::R1)
        .label("out")
        .mov_imm(Reg::R0, 0)
        .exit();
}

/// The `sys_exit` raw tracepoint program. Its context is
/// `u64 args[2]`: `args[0]` the `struct pt_regs *` of the call, `args[1]`
/// its return value.
pub fn sys_exit() -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1)
        // r3 = &regs->dx; read dx, si, di, orig_ax onto the stack.
        .ldx(Size::Dw, Reg::R3, Reg::R6, 0)
        .alu_imm(Alu::Add, Reg::R3, PT_REGS_DX)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(REGS))
        .mov_imm(Reg::R2, 32)
        .call(Helper::ProbeReadKernel)
        .jmp_imm(Cond::Ne, Reg::R0, 0, "out")
        // r7 = the call's number, without the x32 bit (x32 shares these
        // numbers for every call watched here).
        .ldx(Size::Dw, Reg::R7, Reg::Fp, ORIG_AX)
        .alu_imm(Alu::And, Reg::R7, 0x3fff_ffff)
        .mov_imm(Reg::R8, 0)
        .mov_imm(Reg::R9, 0);
    for n in [nr::MMAP, nr::MPROTECT, nr::PKEY_MPROTECT] {
        a.jmp_imm(Cond::Eq, Reg::R7, n as i32, "prot");
    }
    a.jmp_imm(Cond::Eq, Reg::R7, nr::PRCTL as i32, "prctl")
        .jmp_imm(Cond::Eq, Reg::R7, nr::PTRACE as i32, "ptrace")
        .jmp_imm(Cond::Eq, Reg::R7, nr::PRLIMIT64 as i32, "prlimit");
    for n in UNFILTERED {
        a.jmp_imm(Cond::Eq, Reg::R7, n as i32, "named");
    }
    a.ja("out");

    // process_vm_writev(pid, ...) names its target; so does nothing else
    // of the unfiltered list, where di is harmless as an argument.
    a.label("named")
        .jmp_imm(Cond::Ne, Reg::R7, nr::PROCESS_VM_WRITEV as i32, "emit")
        .ldx(Size::Dw, Reg::R8, Reg::Fp, DI)
        .ja("emit");

    // prctl(option, ...): only the options that change isolation.
    a.label("prctl").ldx(Size::Dw, Reg::R9, Reg::Fp, DI);
    for o in PRCTL_OPTIONS {
        a.jmp_imm(Cond::Eq, Reg::R9, o, "emit");
    }
    a.ja("out");

    // ptrace(request, pid, ...): only the requests that write.
    a.label("ptrace").ldx(Size::Dw, Reg::R9, Reg::Fp, DI).ldx(Size::Dw, Reg::R8, Reg::Fp, SI);
    for r in PTRACE_WRITES {
        a.jmp_imm(Cond::Eq, Reg::R9, r, "emit");
    }
    a.ja("out");

    // prlimit64(pid, resource, new, old): only when `new` is set.
    a.label("prlimit")
        .ldx(Size::Dw, Reg::R1, Reg::Fp, DX)
        .jmp_imm(Cond::Eq, Reg::R1, 0, "out")
        .ldx(Size::Dw, Reg::R8, Reg::Fp, DI)
        .ldx(Size::Dw, Reg::R9, Reg::Fp, SI)
        .ja("emit");

    // mmap/mprotect/pkey_mprotect: prot is the third argument (dx).
    a.label("prot")
        .ldx(Size::Dw, Reg::R9, Reg::Fp, DX)
        .mov(Reg::R1, Reg::R9)
        .alu_imm(Alu::And, Reg::R1, PROT_EXEC)
        .jmp_imm(Cond::Eq, Reg::R1, 0, "out")
        // The rate window: state[STATE_RATE_NS]; 0 or absent: no limit.
        .st_imm(Size::W, Reg::Fp, IDX, STATE_RATE_NS as i32)
        .ld_map(Reg::R1, STATE)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(IDX))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "emit")
        .ldx(Size::Dw, Reg::R8, Reg::R0, 0)
        .jmp_imm(Cond::Eq, Reg::R8, 0, "emit")
        // key = tgid << 32 | call; now = ktime.
        .call(Helper::GetCurrentPidTgid)
        .alu_imm(Alu::Rsh, Reg::R0, 32)
        .alu_imm(Alu::Lsh, Reg::R0, 32)
        .alu(Alu::Or, Reg::R0, Reg::R7)
        .stx(Size::Dw, Reg::Fp, KEY, Reg::R0)
        .call(Helper::KtimeGetNs)
        .stx(Size::Dw, Reg::Fp, NOW, Reg::R0)
        .ld_map(Reg::R1, RATE)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(KEY))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "stamp")
        // A record of this process and call less than a window ago: drop.
        .ldx(Size::Dw, Reg::R1, Reg::R0, 0)
        .ldx(Size::Dw, Reg::R2, Reg::Fp, NOW)
        .alu(Alu::Sub, Reg::R2, Reg::R1)
        .jmp(Cond::Lt, Reg::R2, Reg::R8, "out")
        .label("stamp")
        .ld_map(Reg::R1, RATE)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(KEY))
        .mov(Reg::R3, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R3, i32::from(NOW))
        .mov_imm(Reg::R4, 0)
        .call(Helper::MapUpdateElem)
        .mov_imm(Reg::R8, 0)
        .ja("emit");

    emit(&mut a);
    a.finish()
}

/// The `cgroup_attach_task` raw tracepoint program: the writer's tgid, the
/// moved task's tgid as target, `threadgroup` as argument.
pub fn cgroup_attach() -> Result<Vec<Insn>, AsmError> {
    let hook = i32::try_from(CGROUP_ATTACH).map_err(|_| AsmError("hook out of range".into()))?;
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1)
        .mov_imm(Reg::R7, hook)
        .mov_imm(Reg::R8, 0)
        .ldx(Size::Dw, Reg::R9, Reg::R6, 24)
        // r1 = state[STATE_TGID_OFFSET]; unknown: no target.
        .st_imm(Size::W, Reg::Fp, IDX, STATE_TGID_OFFSET as i32)
        .ld_map(Reg::R1, STATE)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(IDX))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "emit")
        .ldx(Size::Dw, Reg::R1, Reg::R0, 0)
        .jmp_imm(Cond::Eq, Reg::R1, 0, "emit")
        // r8 = task->tgid.
        .ldx(Size::Dw, Reg::R3, Reg::R6, 16)
        .alu(Alu::Add, Reg::R3, Reg::R1)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(REGS))
        .mov_imm(Reg::R2, 4)
        .call(Helper::ProbeReadKernel)
        .jmp_imm(Cond::Ne, Reg::R0, 0, "emit")
        .ldx(Size::W, Reg::R8, Reg::Fp, REGS)
        .ja("emit");
    emit(&mut a);
    a.finish()
}

/// The fexit program of the kernel function `FUNCTIONS[index]`: the
/// caller's tgid and the hook `FUNCTION_BASE + index`.
pub fn fexit(index: u32) -> Result<Vec<Insn>, AsmError> {
    let hook = i32::try_from(FUNCTION_BASE + index).map_err(|_| AsmError("hook out of range".into()))?;
    let mut a = Asm::new();
    a.mov_imm(Reg::R7, hook).mov_imm(Reg::R8, 0).mov_imm(Reg::R9, 0).ja("emit");
    emit(&mut a);
    a.finish()
}

/// SHA-256 of every program's bytes (maps as slots), in order: `sys_exit`,
/// `cgroup_attach`, then `fexit` for each of `FUNCTIONS`.
pub fn digest() -> Result<String, AsmError> {
    let mut h = Sha256::new();
    let mut progs = vec![sys_exit()?, cgroup_attach()?];
    for i in 0..FUNCTIONS.len() {
        progs.push(fexit(u32::try_from(i).unwrap_or(u32::MAX))?);
    }
    for p in &progs {
        h.update(u64::try_from(p.len()).unwrap_or(u64::MAX).to_le_bytes());
        for insn in p {
            h.update(insn.bytes());
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The reviewed digest of the programs. A change to any program fails the
/// test `programs_are_the_reviewed_ones` until this is updated with it.
pub const PROGRAMS_SHA256: &str = "1b82cdf219761faa6393ea9803676ebba5223f6164e2fe198dffcf79a7c5353d";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_the_reviewed_ones() {
        assert_eq!(digest().as_deref(), Ok(PROGRAMS_SHA256));
    }

    #[test]
    fn programs_assemble_and_stay_small() {
        let p = sys_exit().unwrap_or_default();
        assert!(!p.is_empty() && p.len() < 200, "{} instructions", p.len());
        let f = fexit(0).unwrap_or_default();
        assert!(!f.is_empty() && f.len() < 40, "{} instructions", f.len());
    }
}
