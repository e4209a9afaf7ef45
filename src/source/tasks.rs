//! The task table: every process's namespaces, resource limits and root
//! directory, read from the kernel's own task structures by an eBPF
//! program, in place of ten `readlink`s of `/proc/PID/ns/*`, a read of
//! `/proc/PID/limits` and a `statx` of `/proc/PID/root` a process.
//!
//! The record of a process is fixed-size: the pid, the task's exit state
//! and flags, its start time (what pins a process: `/proc/PID/stat`'s start
//! time is it in clock ticks), the inode of each of its ten namespaces (the
//! number a `/proc/PID/ns/*` link names: `net:[4026531840]`), its sixteen
//! resource limits, its root directory (inode, device, mount id), and its
//! name (`comm`: with the start time, what pins a process a one-shot check
//! opened ahead, in place of its `stat`). These
//! are the very fields the kernel reads to make those files
//! (`proc_ns_get_link`, `proc_pid_limits`, `statx` of the `root` link),
//! read where they live: a bit flipped in them shows here as it would
//! there. The offsets come from the kernel's BTF; the verifier checks every
//! load against it.
//!
//! Two programs make records, whichever the kernel loads (`Reader::load`
//! tries them in this order):
//! - the lookup program (`lookup_program`, `BPF_PROG_TYPE_SYSCALL`): one
//!   run (`BPF_PROG_TEST_RUN`, about 0.5-1 µs) makes the record of one pid,
//!   found with the kfunc `bpf_task_from_pid`; a table of it makes each
//!   record when the check of that process first asks (`lookup`), so the
//!   record is as fresh as the `/proc` reads it replaces;
//! - the task iterator (`program`, `bpf_iter_task`): one `read` walks every
//!   task of the node and writes the records of the part of a round being
//!   checked, at the start of that part.
//!
//! A table is one part's: a monitor makes it for a part of a round and
//! installs it on the threads that check the part's targets (`install`);
//! `lookup` answers only for the process it pinned (pid and start time),
//! and only while installed. Anything the table cannot answer (no table, a
//! process started since, an exiting one, a namespace the kernel has no
//! more) is read from `/proc` as before.
//!
//! Before it is used, a reader checks itself against `/proc/self`: its
//! record of this process must name the namespaces the links name, make
//! the bytes `/proc/self/limits` holds, and give the root `statx` gives. A
//! kernel whose layout this program misreads is found there, and the table
//! is not used (said once, why).

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use super::procfs::mount_at;
use crate::FileId;
use crate::bpf::asm::{Alu, Asm, Cond, Helper, Insn, Map, Reg, Size};
use crate::bpf::{btf, sys};

/// The namespace links of `/proc/PID/ns`, in the order of a record.
pub(crate) const NAMESPACES: [&str; 10] =
    ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"];

/// `RLIM_NLIMITS`.
const LIMITS: usize = 16;

/// A record's bytes: pid, exit state, flags, a pad (4 bytes each), the start
/// time (8), ten namespace inodes (4 each), sixteen limits (soft and hard,
/// 8 each), the root directory's inode (8), device and mount id (4 each),
/// the command name (`comm`, 16).
const RECORD: usize = 16 + 8 + 4 * NAMESPACES.len() + 16 * LIMITS + 16 + COMM;
const AT_START: usize = 16;
const AT_NS: usize = 24;
const AT_LIMITS: usize = AT_NS + 4 * NAMESPACES.len();
const AT_ROOT: usize = AT_LIMITS + 16 * LIMITS;
const AT_COMM: usize = AT_ROOT + 16;
/// `TASK_COMM_LEN`: the name `/proc/PID/stat` gives a process (a thread
/// group's leader) is these bytes up to the first NUL.
const COMM: usize = 16;

/// A process's status inputs, after its record in the lookup program's
/// context: the kernel state the fields of `status` that fdir reads are
/// printed from (`proc_pid_status`): a word of flags (0: complete; else the
/// text must be read), the thread count, seccomp's mode and filter count,
/// the task's atomic flags (`NoNewPrivs` and the speculation controls), the
/// shadow stack features and their lock, the eight ids and five capability
/// sets of its credentials, its group count, its pid's level, its groups
/// (up to [`MAX_GROUPS`]) and its pid's numbers (up to [`MAX_LEVELS`]
/// levels). The bytes the kernel does not fill stay 0.
pub(crate) const STATUS: usize = 384;
const S_FLAGS: usize = 0;
const S_THREADS: usize = 4;
const S_SECCOMP: usize = 8;
const S_ATOMIC: usize = 16;
const S_FEATURES: usize = 24;
const S_IDS: usize = 40;
const S_CAPS: usize = 72;
const S_NGROUPS: usize = 112;
const S_LEVEL: usize = 116;
const S_GIDS: usize = 120;
const S_UPIDS: usize = 248;
/// The task's `css_set` (`task->cgroups`): the set of cgroups, one a
/// hierarchy, its `/proc/PID/cgroup` is printed from. The kernel keeps one
/// `css_set` for each distinct set, so two processes with the same one are
/// in the same cgroups ([`cgroup_set`]).
const S_CSS: usize = 376;
/// Groups a record holds; a process in more has its `status` read.
const MAX_GROUPS: usize = 32;
/// Pid namespace levels a record holds (`struct upid`: 16 bytes each); a
/// process deeper has its `status` read.
const MAX_LEVELS: usize = 8;
const UPID: usize = 16;

/// `PF_EXITING`: the task is exiting (its files may already read empty).
const PF_EXITING: u32 = 0x4;

/// Nanoseconds a clock tick (`USER_HZ` is 100 on every architecture Linux
/// exposes to `/proc`; the start time in `stat` is in these ticks).
const NS_PER_TICK: u64 = 10_000_000;

/// The members the program reads: (struct, member), in the order of
/// [`Layout`]'s fields.
const MEMBERS: [(&str, &str); 28] = [
    ("task_struct", "pid"),
    ("task_struct", "tgid"),
    ("task_struct", "exit_state"),
    ("task_struct", "flags"),
    ("task_struct", "start_boottime"),
    ("task_struct", "nsproxy"),
    ("task_struct", "cred"),
    ("task_struct", "thread_pid"),
    ("task_struct", "signal"),
    ("nsproxy", "cgroup_ns"),
    ("nsproxy", "ipc_ns"),
    ("nsproxy", "mnt_ns"),
    ("nsproxy", "net_ns"),
    ("nsproxy", "pid_ns_for_children"),
    ("nsproxy", "time_ns"),
    ("nsproxy", "time_ns_for_children"),
    ("nsproxy", "uts_ns"),
    ("cgroup_namespace", "ns"),
    ("ipc_namespace", "ns"),
    ("mnt_namespace", "ns"),
    ("net", "ns"),
    ("pid_namespace", "ns"),
    ("time_namespace", "ns"),
    ("uts_namespace", "ns"),
    ("user_namespace", "ns"),
    ("ns_common", "inum"),
    ("cred", "user_ns"),
    ("task_struct", "comm"),
];

/// The members read through `probe_read_kernel` (a variable index, a
/// `container_of`), and those of the root directory.
const MORE_MEMBERS: [(&str, &str); 12] = [
    ("pid", "level"),
    ("pid", "numbers"),
    ("upid", "ns"),
    ("signal_struct", "rlim"),
    ("task_struct", "fs"),
    ("fs_struct", "root"),
    ("path", "mnt"),
    ("path", "dentry"),
    ("dentry", "d_inode"),
    ("dentry", "d_sb"),
    ("inode", "i_ino"),
    ("super_block", "s_dev"),
];
/// The functions the programs name: the task iterator's attach point, and
/// the kfuncs the lookup program calls.
const FUNCS: [&str; 4] = ["bpf_iter_task", "bpf_task_from_pid", "bpf_task_release", "bpf_rdonly_cast"];

/// `struct mount`'s `mnt` (the `vfsmount` a path names) and `mnt_id`.
const MOUNT_MEMBERS: [(&str, &str); 2] = [("mount", "mnt"), ("mount", "mnt_id")];

/// The members the lookup program reads for a process's status inputs
/// ([`Status`]), in the order of [`StatusLayout`]'s fields: the eight ids
/// and five capability sets of `cred`, its groups, the seccomp state, the
/// task's atomic flags and its thread group's thread count. A kernel
/// without one of them has no status inputs (its `status` is read).
const STATUS_MEMBERS: [(&str, &str); 22] = [
    ("cred", "uid"),
    ("cred", "gid"),
    ("cred", "suid"),
    ("cred", "sgid"),
    ("cred", "euid"),
    ("cred", "egid"),
    ("cred", "fsuid"),
    ("cred", "fsgid"),
    ("cred", "cap_inheritable"),
    ("cred", "cap_permitted"),
    ("cred", "cap_effective"),
    ("cred", "cap_bset"),
    ("cred", "cap_ambient"),
    ("cred", "group_info"),
    ("group_info", "ngroups"),
    ("group_info", "gid"),
    ("task_struct", "seccomp"),
    ("seccomp", "mode"),
    ("seccomp", "filter_count"),
    ("task_struct", "atomic_flags"),
    ("signal_struct", "nr_threads"),
    ("task_struct", "cgroups"),
];

/// x86's user shadow stack state (`x86_Thread_features` and its `_locked`
/// line of `status`), where the kernel has it: a kernel without these
/// members prints neither line.
const FEATURE_MEMBERS: [(&str, &str); 3] =
    [("task_struct", "thread"), ("thread_struct", "features"), ("thread_struct", "features_locked")];

/// The byte offsets of [`MEMBERS`] and [`MORE_MEMBERS`] in this kernel.
#[derive(Debug, Clone, Copy)]
struct Layout {
    m: [i16; 28],
    more: [i32; 12],
    mount: [i32; 2],
    /// Where the lookup program reads a process's status inputs, where the
    /// kernel has every member they need.
    status: Option<StatusLayout>,
    /// The BTF ids of `bpf_rdonly_cast` and `struct task_struct`, where
    /// the kernel has both: the lookup program reads the task through an
    /// untrusted alias. Loads from a trusted pointer are checked by the
    /// verifier against lists of trusted fields, found by name with a
    /// linear search of the kernel's BTF, two searches for each pointer
    /// loaded (2 ms of a 2.2 ms load on Linux 6.18); an untrusted pointer's
    /// loads are fault-safe loads of the same fields, with no such search.
    cast: Option<(u32, u32)>,
}

impl Layout {
    /// The layout of this kernel, and the BTF ids of [`FUNCS`] (one pass
    /// over the BTF for both).
    fn of_kernel(btf: &btf::Vmlinux) -> Result<(Layout, Vec<Option<u32>>), String> {
        let mut wanted: Vec<(&str, &str)> = MEMBERS.to_vec();
        wanted.extend_from_slice(&MORE_MEMBERS);
        wanted.extend_from_slice(&MOUNT_MEMBERS);
        let required = wanted.len();
        wanted.extend_from_slice(&STATUS_MEMBERS);
        wanted.extend_from_slice(&FEATURE_MEMBERS);
        let btf::All { funcs: ids, members: found, structs, .. } =
            btf::find_all(btf, &FUNCS, &wanted, &[], btf::WINDOW)
                .ok_or_else(|| "/sys/kernel/btf/vmlinux is not BTF this build reads".to_owned())?;
        // `MEMBERS` begins with task_struct's.
        let task_struct = structs.first().copied().flatten();
        let cast = ids.get(3).copied().flatten().zip(task_struct);
        let mut missing =
            wanted.iter().zip(&found).take(required).filter(|(_, f)| f.is_none()).map(|((s, m), _)| format!("{s}.{m}"));
        if let Some(first) = missing.next() {
            return Err(format!("this kernel's BTF has no member {first}"));
        }
        let status = StatusLayout::of(found.get(required..).unwrap_or_default());
        let offsets: Vec<u32> = found.iter().take(required).copied().flatten().collect();
        let mut m = [0i16; 28];
        for (slot, &o) in m.iter_mut().zip(&offsets) {
            *slot = i16::try_from(o).map_err(|_| format!("a member offset too large for a load: {o}"))?;
        }
        let mut rest = offsets.get(MEMBERS.len()..).unwrap_or(&[]).iter();
        let mut more = [0i32; 12];
        let mut mount = [0i32; 2];
        for (slot, &o) in more.iter_mut().chain(mount.iter_mut()).zip(&mut rest) {
            *slot = i32::try_from(o).map_err(|_| format!("a member offset too large: {o}"))?;
        }
        Ok((Layout { m, more, mount, status, cast }, ids))
    }

    fn at(&self, i: usize) -> i16 {
        self.m.get(i).copied().unwrap_or(0)
    }
}

/// The offsets of [`STATUS_MEMBERS`] (and [`FEATURE_MEMBERS`], where the
/// kernel has them), each within its struct, as loads take them.
#[derive(Debug, Clone, Copy)]
struct StatusLayout {
    ids: [i16; 8],
    caps: [i16; 5],
    group_info: i16,
    ngroups: i16,
    gid: i32,
    /// `task_struct.seccomp` plus `seccomp.mode`, and plus `filter_count`.
    seccomp_mode: i16,
    filter_count: i16,
    atomic_flags: i16,
    nr_threads: i16,
    css_set: i16,
    /// `task_struct.thread` plus `thread_struct.features`, and plus
    /// `features_locked`.
    features: Option<(i16, i16)>,
}

impl StatusLayout {
    /// From the offsets found for [`STATUS_MEMBERS`] then
    /// [`FEATURE_MEMBERS`]; `None` if one of the first is missing (or too
    /// large for a load).
    fn of(found: &[Option<u32>]) -> Option<StatusLayout> {
        let small = |i: usize| -> Option<i16> { i16::try_from(found.get(i).copied().flatten()?).ok() };
        let sum = |a: usize, b: usize| -> Option<i16> { small(a)?.checked_add(small(b)?) };
        let mut ids = [0i16; 8];
        for (i, slot) in ids.iter_mut().enumerate() {
            *slot = small(i)?;
        }
        let mut caps = [0i16; 5];
        for (i, slot) in caps.iter_mut().enumerate() {
            *slot = small(8 + i)?;
        }
        let n = STATUS_MEMBERS.len();
        let features = sum(n, n + 1).zip(sum(n, n + 2));
        Some(StatusLayout {
            ids,
            caps,
            group_info: small(13)?,
            ngroups: small(14)?,
            gid: i32::try_from(found.get(15).copied().flatten()?).ok()?,
            seccomp_mode: sum(16, 17)?,
            filter_count: sum(16, 18)?,
            atomic_flags: small(19)?,
            css_set: small(21)?,
            nr_threads: small(20)?,
            features,
        })
    }
}

// Indices into `Layout::m`.
const PID: usize = 0;
const TGID: usize = 1;
const EXIT_STATE: usize = 2;
const FLAGS: usize = 3;
const START: usize = 4;
const NSPROXY: usize = 5;
const CRED: usize = 6;
const THREAD_PID: usize = 7;
const SIGNAL: usize = 8;
/// `nsproxy`'s members, then each namespace struct's `ns`, both in the order
/// cgroup, ipc, mnt, net, pid (for children), time, time for children, uts.
const NSPROXY_MEMBERS: usize = 9;
const NS_OF: [usize; 8] = [17, 18, 19, 20, 21, 22, 22, 23];
const USER_NS_NS: usize = 24;
const INUM: usize = 25;
const CRED_USER_NS: usize = 26;
const TASK_COMM: usize = 27;
/// Where each `nsproxy` member goes in a record (the namespace's index in
/// [`NAMESPACES`]).
const NSPROXY_SLOTS: [usize; 8] = [0, 1, 2, 3, 5, 6, 7, 9];

/// The program's one map: an array of one `u64`, the part of a round to
/// read (`parts` in its low half, `part` in its high half).
const PART: Map = Map(0);

/// The program: one record for each thread-group leader, nothing for the
/// other tasks. The record is made on the stack (at `fp - RECORD`) and
/// handed to `bpf_seq_write`.
fn program(l: &Layout) -> Result<Vec<Insn>, String> {
    let rec = -i16::try_from(RECORD).map_err(|_| "record too large".to_owned())?;
    let field = |at: usize| -> i16 { rec + i16::try_from(at).unwrap_or(0) };
    let scratch = rec - 16;
    let key = scratch - 8;
    let mut a = Asm::new();
    // r1: struct bpf_iter__task { meta; task; }.
    a.ldx(Size::Dw, Reg::R6, Reg::R1, 0) // meta
        .ldx(Size::Dw, Reg::R7, Reg::R1, 8) // task, NULL once the walk is over
        .jmp_imm(Cond::Eq, Reg::R7, 0, "out")
        .ldx(Size::Dw, Reg::R6, Reg::R6, 0) // meta->seq
        .ldx(Size::W, Reg::R2, Reg::R7, l.at(PID))
        .ldx(Size::W, Reg::R3, Reg::R7, l.at(TGID))
        .jmp(Cond::Ne, Reg::R2, Reg::R3, "out")
        .stx(Size::W, Reg::Fp, field(0), Reg::R3);
    // Only the processes of the part being checked (`PART`: parts, part;
    // parts 0: every process): the others cost the walk, not the reads.
    a.st_imm(Size::W, Reg::Fp, key, 0)
        .ld_map(Reg::R1, PART)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(key))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "mine")
        .ldx(Size::W, Reg::R2, Reg::R0, 0)
        .ldx(Size::W, Reg::R4, Reg::R0, 4)
        .jmp_imm(Cond::Eq, Reg::R2, 0, "mine")
        .ldx(Size::W, Reg::R3, Reg::Fp, field(0))
        .alu(Alu::Mod, Reg::R3, Reg::R2)
        .jmp(Cond::Ne, Reg::R3, Reg::R4, "out")
        .label("mine");
    record(&mut a, l)?;
    a.mov(Reg::R1, Reg::R6)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(rec))
        .mov_imm(Reg::R3, i32::try_from(RECORD).unwrap_or(0))
        .call(Helper::SeqWrite)
        .label("out")
        .mov_imm(Reg::R0, 0)
        .exit();
    a.finish().map_err(|e| e.0)
}

/// The rest of a record of the task in r7, made on the stack at
/// `fp - RECORD` (its pid already there): exit state, flags, start time,
/// namespaces, limits, root. Clobbers r1-r5, r8; keeps r6 and r7, and
/// leaves r9 the task's `struct pid` (`thread_pid`, 0 where it could not be
/// read) and its level at `fp - RECORD - 8`, for [`status`].
fn record(a: &mut Asm, l: &Layout) -> Result<(), String> {
    let rec = -i16::try_from(RECORD).map_err(|_| "record too large".to_owned())?;
    let field = |at: usize| -> i16 { rec + i16::try_from(at).unwrap_or(0) };
    let scratch = rec - 16;
    a.ldx(Size::W, Reg::R2, Reg::R7, l.at(EXIT_STATE))
        .stx(Size::W, Reg::Fp, field(4), Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R7, l.at(FLAGS))
        .stx(Size::W, Reg::Fp, field(8), Reg::R2)
        .st_imm(Size::W, Reg::Fp, field(12), 0)
        .ldx(Size::Dw, Reg::R2, Reg::R7, l.at(START))
        .stx(Size::Dw, Reg::Fp, field(AT_START), Reg::R2);
    // The name, as two 8-byte words.
    let comm = l.at(TASK_COMM);
    a.ldx(Size::Dw, Reg::R2, Reg::R7, comm)
        .stx(Size::Dw, Reg::Fp, field(AT_COMM), Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R7, comm.checked_add(8).ok_or("offset overflow")?)
        .stx(Size::Dw, Reg::Fp, field(AT_COMM + 8), Reg::R2);
    // The namespaces of nsproxy. A NULL pointer (an exiting task's nsproxy)
    // reads as 0 through these loads: the record says 0, "ask /proc".
    a.ldx(Size::Dw, Reg::R8, Reg::R7, l.at(NSPROXY));
    for (i, (&of, &slot)) in NS_OF.iter().zip(&NSPROXY_SLOTS).enumerate() {
        let inum = l.at(of).checked_add(l.at(INUM)).ok_or_else(|| "offset overflow".to_owned())?;
        a.ldx(Size::Dw, Reg::R2, Reg::R8, l.at(NSPROXY_MEMBERS + i)).ldx(Size::W, Reg::R2, Reg::R2, inum).stx(
            Size::W,
            Reg::Fp,
            field(AT_NS + 4 * slot),
            Reg::R2,
        );
    }
    // user: the task's credentials' namespace.
    let user_inum = l.at(USER_NS_NS).checked_add(l.at(INUM)).ok_or_else(|| "offset overflow".to_owned())?;
    a.ldx(Size::Dw, Reg::R2, Reg::R7, l.at(CRED))
        .ldx(Size::Dw, Reg::R2, Reg::R2, l.at(CRED_USER_NS))
        .ldx(Size::W, Reg::R2, Reg::R2, user_inum)
        .stx(Size::W, Reg::Fp, field(AT_NS + 4 * 8), Reg::R2);
    // pid: thread_pid->numbers[thread_pid->level].ns, an index the verifier
    // does not follow through typed pointers: read as plain memory.
    let [level, numbers, upid_ns, rlim, fs, fs_root, path_mnt, path_dentry, d_inode, d_sb, i_ino, s_dev] = l.more;
    let [mount_mnt, mount_id] = l.mount;
    let small = |v: i32| i16::try_from(v).map_err(|_| format!("a member offset too large for a load: {v}"));
    let pid_ns_ns = i32::from(l.at(21)) + i32::from(l.at(INUM));
    a.mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(scratch))
        .mov_imm(Reg::R2, 8)
        .mov(Reg::R3, Reg::R7)
        .alu_imm(Alu::Add, Reg::R3, i32::from(l.at(THREAD_PID)))
        .call(Helper::ProbeReadKernel)
        .ldx(Size::Dw, Reg::R9, Reg::Fp, scratch) // struct pid *
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(scratch + 8))
        .mov_imm(Reg::R2, 4)
        .mov(Reg::R3, Reg::R9)
        .alu_imm(Alu::Add, Reg::R3, level)
        .call(Helper::ProbeReadKernel)
        .ldx(Size::W, Reg::R3, Reg::Fp, scratch + 8) // level
        .alu_imm(Alu::And, Reg::R3, 31)
        .alu_imm(Alu::Lsh, Reg::R3, 4) // sizeof(struct upid)
        .alu(Alu::Add, Reg::R3, Reg::R9)
        .alu_imm(Alu::Add, Reg::R3, numbers + upid_ns)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(scratch))
        .mov_imm(Reg::R2, 8)
        .call(Helper::ProbeReadKernel)
        .ldx(Size::Dw, Reg::R3, Reg::Fp, scratch) // struct pid_namespace *
        .alu_imm(Alu::Add, Reg::R3, pid_ns_ns)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(field(AT_NS + 4 * 4)))
        .mov_imm(Reg::R2, 4)
        .call(Helper::ProbeReadKernel);
    // The limits: signal->rlim, 16 (soft, hard) pairs.
    a.ldx(Size::Dw, Reg::R3, Reg::R7, l.at(SIGNAL))
        .alu_imm(Alu::Add, Reg::R3, rlim)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(field(AT_LIMITS)))
        .mov_imm(Reg::R2, i32::try_from(16 * LIMITS).unwrap_or(0))
        .call(Helper::ProbeReadKernel);
    // The root directory (`fs->root`, what `/proc/PID/root` resolves to):
    // its inode, its file system's device, and the id of its mount, read
    // from the `struct mount` around the path's `vfsmount`. A task without
    // `fs` (exiting) reads 0: "ask /proc".
    let root = small(fs_root)?;
    a.ldx(Size::Dw, Reg::R8, Reg::R7, small(fs)?)
        .ldx(Size::Dw, Reg::R2, Reg::R8, root.checked_add(small(path_dentry)?).ok_or("offset overflow")?)
        .ldx(Size::Dw, Reg::R3, Reg::R2, small(d_inode)?)
        .ldx(Size::Dw, Reg::R3, Reg::R3, small(i_ino)?)
        .stx(Size::Dw, Reg::Fp, field(AT_ROOT), Reg::R3)
        .ldx(Size::Dw, Reg::R3, Reg::R2, small(d_sb)?)
        .ldx(Size::W, Reg::R3, Reg::R3, small(s_dev)?)
        .stx(Size::W, Reg::Fp, field(AT_ROOT + 8), Reg::R3)
        .st_imm(Size::W, Reg::Fp, field(AT_ROOT + 12), 0)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(scratch))
        .mov_imm(Reg::R2, 8)
        .mov(Reg::R3, Reg::R8)
        .alu_imm(Alu::Add, Reg::R3, fs_root + path_mnt)
        .call(Helper::ProbeReadKernel)
        .ldx(Size::Dw, Reg::R3, Reg::Fp, scratch) // struct vfsmount *
        .jmp_imm(Cond::Eq, Reg::R3, 0, "no_mount")
        .alu_imm(Alu::Add, Reg::R3, mount_id - mount_mnt)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(field(AT_ROOT + 12)))
        .mov_imm(Reg::R2, 4)
        .call(Helper::ProbeReadKernel)
        .label("no_mount");
    Ok(())
}

/// The lookup program (`BPF_PROG_TYPE_SYSCALL`, run by [`sys::prog_run`]):
/// its context is one record whose first 4 bytes name a pid; it makes that
/// process's record there, or writes pid 0 where no process of that pid
/// leads a thread group. `task_from_pid` and `task_release` are the BTF
/// ids of the kfuncs `bpf_task_from_pid` and `bpf_task_release`.
fn lookup_program(l: &Layout, task_from_pid: u32, task_release: u32) -> Result<Vec<Insn>, String> {
    let rec = -i16::try_from(RECORD).map_err(|_| "record too large".to_owned())?;
    // The reference to the task, kept for its release (below the scratch
    // `record` uses).
    let held = rec - 32;
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1) // the context: the record, in and out
        .ldx(Size::W, Reg::R1, Reg::R6, 0)
        .call_kfunc(task_from_pid) // a reference to the task, or NULL
        .jmp_imm(Cond::Eq, Reg::R0, 0, "none")
        .stx(Size::Dw, Reg::Fp, held, Reg::R0);
    // r7: the task, read through an untrusted alias where the kernel
    // casts (see `Layout::cast`).
    if let Some((rdonly_cast, task_struct)) = l.cast {
        let id = i32::try_from(task_struct).map_err(|_| format!("a BTF id too large: {task_struct}"))?;
        a.mov(Reg::R1, Reg::R0).mov_imm(Reg::R2, id).call_kfunc(rdonly_cast);
    }
    a.mov(Reg::R7, Reg::R0)
        .ldx(Size::W, Reg::R2, Reg::R7, l.at(PID))
        .ldx(Size::W, Reg::R3, Reg::R7, l.at(TGID))
        .jmp(Cond::Ne, Reg::R2, Reg::R3, "thread")
        .stx(Size::W, Reg::Fp, rec, Reg::R3);
    record(&mut a, l)?;
    for at in (0..RECORD).step_by(8) {
        let at = i16::try_from(at).map_err(|_| "record too large".to_owned())?;
        a.ldx(Size::Dw, Reg::R2, Reg::Fp, rec + at).stx(Size::Dw, Reg::R6, at, Reg::R2);
    }
    if let Some(s) = &l.status {
        status(&mut a, l, s, rec - 16, held - i16::try_from(COPIED).map_err(|_| "buffer too large".to_owned())?)?;
    }
    a.ldx(Size::Dw, Reg::R1, Reg::Fp, held).call_kfunc(task_release).mov_imm(Reg::R0, 1).exit();
    // A thread's id: not a process.
    a.label("thread").ldx(Size::Dw, Reg::R1, Reg::Fp, held).call_kfunc(task_release);
    a.label("none").st_imm(Size::W, Reg::R6, 0, 0).mov_imm(Reg::R0, 0).exit();
    a.finish().map_err(|e| e.0)
}

/// The status inputs of the task in r7 (see [`STATUS`]), written into the
/// context in r6 after the record; `scratch`: 8 bytes of stack. Loads
/// through the task and its credentials are fault-safe (a pointer the
/// verifier cannot trust reads as 0 where it faults), and the groups and
/// pid numbers, a count the verifier does not follow, are copied with
/// `probe_read_kernel` through `buf` (128 bytes of stack: the helper
/// writes no context): a count beyond a record's room, or a failed copy,
/// marks the inputs incomplete. Runs after [`record`], whose r9 and level
/// (at `scratch + 8`) it takes. Clobbers r1-r5, r8; keeps r6 and r7.
fn status(a: &mut Asm, l: &Layout, s: &StatusLayout, scratch: i16, buf: i16) -> Result<(), String> {
    let at = |x: usize| i16::try_from(RECORD + x).map_err(|_| "record too large".to_owned());
    let [_, numbers, ..] = l.more;
    a.st_imm(Size::W, Reg::R6, at(S_FLAGS)?, 0)
        .ldx(Size::Dw, Reg::R2, Reg::R7, l.at(SIGNAL))
        .ldx(Size::W, Reg::R2, Reg::R2, s.nr_threads)
        .stx(Size::W, Reg::R6, at(S_THREADS)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R7, s.seccomp_mode)
        .stx(Size::W, Reg::R6, at(S_SECCOMP)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R7, s.filter_count)
        .stx(Size::W, Reg::R6, at(S_SECCOMP + 4)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R7, s.atomic_flags)
        .stx(Size::Dw, Reg::R6, at(S_ATOMIC)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R7, s.css_set)
        .stx(Size::Dw, Reg::R6, at(S_CSS)?, Reg::R2);
    if let Some((features, locked)) = s.features {
        a.ldx(Size::Dw, Reg::R2, Reg::R7, features)
            .stx(Size::Dw, Reg::R6, at(S_FEATURES)?, Reg::R2)
            .ldx(Size::Dw, Reg::R2, Reg::R7, locked)
            .stx(Size::Dw, Reg::R6, at(S_FEATURES + 8)?, Reg::R2);
    }
    a.ldx(Size::Dw, Reg::R8, Reg::R7, l.at(CRED));
    for (i, &off) in s.ids.iter().enumerate() {
        a.ldx(Size::W, Reg::R2, Reg::R8, off).stx(Size::W, Reg::R6, at(S_IDS + 4 * i)?, Reg::R2);
    }
    for (i, &off) in s.caps.iter().enumerate() {
        a.ldx(Size::Dw, Reg::R2, Reg::R8, off).stx(Size::Dw, Reg::R6, at(S_CAPS + 8 * i)?, Reg::R2);
    }
    let groups = i32::try_from(MAX_GROUPS).map_err(|_| "too many groups".to_owned())?;
    let levels = i32::try_from(MAX_LEVELS).map_err(|_| "too many levels".to_owned())?;
    a.ldx(Size::Dw, Reg::R3, Reg::R8, s.group_info)
        .ldx(Size::W, Reg::R2, Reg::R3, s.ngroups)
        .stx(Size::W, Reg::R6, at(S_NGROUPS)?, Reg::R2)
        .jmp_imm(Cond::Lt, Reg::R2, groups + 1, "groups_fit")
        .ja("status_incomplete")
        .label("groups_fit")
        .alu_imm(Alu::Lsh, Reg::R2, 2)
        .alu_imm(Alu::Add, Reg::R3, s.gid);
    copy_in(a, buf, S_GIDS)?;
    // The pid's numbers, one for each level (`NStgid`), from the pid and
    // level `record` read (a level misread reads too few numbers, and the
    // inputs then disagree with the text they would key).
    a.jmp_imm(Cond::Eq, Reg::R9, 0, "status_incomplete")
        .ldx(Size::W, Reg::R2, Reg::Fp, scratch + 8)
        .stx(Size::W, Reg::R6, at(S_LEVEL)?, Reg::R2)
        .jmp_imm(Cond::Lt, Reg::R2, levels, "levels_fit")
        .ja("status_incomplete")
        .label("levels_fit")
        .alu_imm(Alu::Add, Reg::R2, 1)
        .alu_imm(Alu::Lsh, Reg::R2, 4)
        .mov(Reg::R3, Reg::R9)
        .alu_imm(Alu::Add, Reg::R3, numbers);
    copy_in(a, buf, S_UPIDS)?;
    a.ja("status_done").label("status_incomplete").st_imm(Size::W, Reg::R6, at(S_FLAGS)?, 1).label("status_done");
    Ok(())
}

/// Copies r2 bytes (at most [`COPIED`]) from kernel address r3 into the
/// status inputs at `at`, through `buf` on the stack, zeroed first: the
/// bytes past r2 are 0. A failed copy jumps to `status_incomplete`.
/// Clobbers r0-r5.
fn copy_in(a: &mut Asm, buf: i16, at: usize) -> Result<(), String> {
    let words = (0..COPIED).step_by(8).map(|i| i16::try_from(i).map_err(|_| "buffer too large".to_owned()));
    let words: Vec<i16> = words.collect::<Result<_, _>>()?;
    for &w in &words {
        a.st_imm(Size::Dw, Reg::Fp, buf + w, 0);
    }
    a.mov(Reg::R1, Reg::Fp).alu_imm(Alu::Add, Reg::R1, i32::from(buf)).call(Helper::ProbeReadKernel).jmp_imm(
        Cond::Ne,
        Reg::R0,
        0,
        "status_incomplete",
    );
    let to = i16::try_from(RECORD + at).map_err(|_| "record too large".to_owned())?;
    for &w in &words {
        a.ldx(Size::Dw, Reg::R4, Reg::Fp, buf + w).stx(Size::Dw, Reg::R6, to + w, Reg::R4);
    }
    Ok(())
}

/// The most bytes [`copy_in`] copies: [`MAX_GROUPS`] groups, or
/// [`MAX_LEVELS`] pid numbers.
const COPIED: usize = 128;

/// One process's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) pid: u32,
    /// The start time in clock ticks (as `/proc/PID/stat` says it).
    pub(crate) start_ticks: u64,
    /// Each namespace's inode, in the order of [`NAMESPACES`]; 0: unknown.
    pub(crate) ns: [u32; 10],
    /// (soft, hard) of each limit, `RLIM_INFINITY` as `u64::MAX`.
    pub(crate) limits: [[u64; 2]; LIMITS],
    /// The root directory: its identity (device as `statx` gives it,
    /// inode) and its mount's id, as `Source::mount_of("root")` answers;
    /// `None` where the record has none.
    pub(crate) root: Option<(FileId, u64)>,
    /// Neither exiting nor exited: its `/proc` files say what the record
    /// says.
    pub(crate) settled: bool,
    /// Its name (`comm`): `/proc/PID/stat`'s second field, up to the first
    /// NUL.
    pub(crate) comm: [u8; COMM],
    /// `PF_KTHREAD`: a kernel thread (for the life of the task).
    pub(crate) kernel_thread: bool,
    /// Its status inputs ([`STATUS`]), complete, where the lookup program
    /// made the record and its inputs passed the self-check.
    pub(crate) status: Option<[u8; STATUS]>,
}

/// One part's records, by pid: read by a walk, or made when asked by the
/// lookup program (`lookup`).
#[derive(Debug, Default)]
pub(crate) struct Table {
    entries: Vec<Entry>,
    lookup: Option<Lookup>,
    /// The program of cgroup control values (`cgvalues.rs`), where this
    /// kernel loads it: asked, like the lookup program, when a check of a
    /// process first reads a cgroup control file.
    cgroups: Option<Arc<super::cgvalues::Program>>,
    /// The program of memory mappings (`vmas.rs`), where this kernel loads
    /// it: asked by a watch's check of a process for its maps inputs.
    vmas: Option<Arc<super::vmas::Program>>,
    /// The program of mount namespaces (`mnts.rs`), where this kernel
    /// loads it: asked by a watch's check of a process's mounts.
    mnts: Option<Arc<super::mnts::Program>>,
}

/// The lookup program, and what its records hold.
#[derive(Debug)]
struct Lookup {
    prog: OwnedFd,
    /// It writes status inputs after each record ([`STATUS`]): its context
    /// has room for them.
    writes_status: bool,
    /// And they passed the self-check (`status_self_check`): records keep
    /// them.
    keeps_status: bool,
}

impl Entry {
    /// Its name as `/proc/PID/stat` gives it (a thread group's leader that
    /// is not a kernel worker, which `stat` names by its work).
    pub(crate) fn name(&self) -> String {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM);
        String::from_utf8_lossy(self.comm.get(..end).unwrap_or_default()).into_owned()
    }
}

impl Table {
    /// Reads records from `bytes` (whole records; a short tail is ignored).
    fn parse(bytes: &[u8]) -> Table {
        let mut entries: Vec<Entry> = bytes.chunks_exact(RECORD).filter_map(parse_record).collect();
        entries.sort_unstable_by_key(|e| e.pid);
        entries.dedup_by_key(|e| e.pid);
        Table { entries, lookup: None, cgroups: None, vmas: None, mnts: None }
    }

    /// The record of `pid`, if it was started at `start_ticks`.
    pub(crate) fn get(&self, pid: u32, start_ticks: u64) -> Option<&Entry> {
        let i = self.entries.binary_search_by_key(&pid, |e| e.pid).ok()?;
        self.entries.get(i).filter(|e| e.start_ticks == start_ticks && e.settled)
    }

    /// How many processes it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn parse_record(r: &[u8]) -> Option<Entry> {
    let pid = u32_at(r, 0)?;
    let (exit_state, flags) = (u32_at(r, 4)?, u32_at(r, 8)?);
    let start_ticks = u64_at(r, AT_START)? / NS_PER_TICK;
    let mut ns = [0u32; 10];
    for (i, slot) in ns.iter_mut().enumerate() {
        *slot = u32_at(r, AT_NS + 4 * i)?;
    }
    let mut limits = [[0u64; 2]; LIMITS];
    for (i, pair) in limits.iter_mut().enumerate() {
        *pair = [u64_at(r, AT_LIMITS + 16 * i)?, u64_at(r, AT_LIMITS + 16 * i + 8)?];
    }
    let (ino, dev, mount) = (u64_at(r, AT_ROOT)?, u32_at(r, AT_ROOT + 8)?, u32_at(r, AT_ROOT + 12)?);
    // The kernel's dev_t: 12 bits of major above 20 of minor.
    let dev = rustix::fs::makedev(dev >> 20, dev & 0xf_ffff);
    let root = (ino != 0 && mount != 0).then_some((FileId { dev, ino }, u64::from(mount)));
    let comm = r.get(AT_COMM..AT_COMM + COMM)?.try_into().ok()?;
    let settled = exit_state == 0 && flags & PF_EXITING == 0;
    let kernel_thread = u64::from(flags) & super::stat::PF_KTHREAD != 0;
    Some(Entry { pid, start_ticks, ns, limits, root, settled, comm, kernel_thread, status: None })
}

/// The limits' names and units, as `proc_pid_limits` prints them.
const LIMIT_NAMES: [(&str, &str); LIMITS] = [
    ("Max cpu time", "seconds"),
    ("Max file size", "bytes"),
    ("Max data size", "bytes"),
    ("Max stack size", "bytes"),
    ("Max core file size", "bytes"),
    ("Max resident set", "bytes"),
    ("Max processes", "processes"),
    ("Max open files", "files"),
    ("Max locked memory", "bytes"),
    ("Max address space", "bytes"),
    ("Max file locks", "locks"),
    ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""),
    ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
];

/// Each limit's name, as `/proc/PID/limits` prints it, with its values.
pub(crate) fn named_limits(limits: &[[u64; 2]; LIMITS]) -> impl Iterator<Item = (&'static str, [u64; 2])> + '_ {
    LIMIT_NAMES.iter().map(|&(name, _)| name).zip(limits.iter().copied())
}

/// The text of `/proc/PID/limits` for these limits, byte for byte as the
/// kernel makes it (`proc_pid_limits`: `%-25s %-20lu %-20lu %-10s`).
pub(crate) fn limits_text(limits: &[[u64; 2]; LIMITS], out: &mut Vec<u8>) {
    /// `bytes` left-aligned in `width` columns (the kernel's `%-Ns`).
    fn padded(out: &mut Vec<u8>, bytes: &[u8], width: usize) {
        out.extend_from_slice(bytes);
        out.resize(out.len() + width.saturating_sub(bytes.len()), b' ');
    }
    out.clear();
    out.extend_from_slice(b"Limit                     Soft Limit           Hard Limit           Units     \n");
    let mut digits = [0u8; 20];
    for ((name, unit), pair) in LIMIT_NAMES.iter().zip(limits) {
        padded(out, name.as_bytes(), 25);
        out.push(b' ');
        for &v in pair {
            if v == u64::MAX {
                padded(out, b"unlimited", 20);
            } else {
                // The decimal digits of v, from the right.
                let mut at = digits.len();
                let mut rest = v;
                loop {
                    at -= 1;
                    if let Some(d) = digits.get_mut(at) {
                        *d = b'0' + u8::try_from(rest % 10).unwrap_or(0);
                    }
                    rest /= 10;
                    if rest == 0 || at == 0 {
                        break;
                    }
                }
                padded(out, digits.get(at..).unwrap_or(&[]), 20);
            }
            out.push(b' ');
        }
        if !unit.is_empty() {
            padded(out, unit.as_bytes(), 10);
        }
        out.push(b'\n');
    }
}

/// A loaded program that makes tables: the lookup program where the
/// kernel lets a `BPF_PROG_TYPE_SYSCALL` program call `bpf_task_from_pid`
/// (one run a process, when the process is checked), else the task
/// iterator (one walk of every task a part of a round).
#[derive(Debug)]
pub(crate) struct Reader {
    how: How,
    buf: Vec<u8>,
    /// The program of cgroup control values, or why it is not used.
    cgroups: Result<Arc<super::cgvalues::Program>, String>,
    /// Whether records hold status inputs, or why not.
    status: Result<(), String>,
    /// The program of memory mappings, or why it is not used.
    vmas: Result<Arc<super::vmas::Program>, String>,
    /// The program of mount namespaces, or why it is not used.
    mnts: Result<Arc<super::mnts::Program>, String>,
}

#[derive(Debug)]
enum How {
    /// The lookup program (`lookup_program`), shared by the checking
    /// threads: the one table of every part (it holds no record).
    Lookup(Arc<Table>),
    /// The task iterator (`program`), its link and its map.
    Walk {
        link: OwnedFd,
        /// The program; kept with its link.
        _prog: OwnedFd,
        /// Which part of a round it reads.
        part: OwnedFd,
    },
}

/// The time since boot in clock ticks (`CLOCK_BOOTTIME`, rounded down,
/// as start times are): a process whose start time is below it started
/// before this call.
pub(crate) fn boot_ticks() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let ns = u64::try_from(t.tv_nsec).unwrap_or(0);
    u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000 / NS_PER_TICK).saturating_add(ns / NS_PER_TICK)
}

/// The link `/proc/self/ns/user` of a process in the initial user
/// namespace (`PROC_USER_INIT_INO`, fixed by the kernel).
const INITIAL_USER_NS: &str = "user:[4026531837]";

/// Whether this process may load the programs at all: `CAP_BPF` and
/// `CAP_PERFMON`, or `CAP_SYS_ADMIN`, in its effective set, in the initial
/// user namespace (where the kernel counts them for eBPF; a rootless
/// container's are refused). Without them the kernel refuses every load:
/// a caller that would load ahead of work it could do instead asks first.
pub(crate) fn may_load() -> bool {
    use rustix::thread::CapabilitySet as Cap;
    let initial = std::fs::read_link("/proc/self/ns/user").is_ok_and(|l| l.as_os_str() == INITIAL_USER_NS);
    initial
        && rustix::thread::capabilities(None)
            .is_ok_and(|c| c.effective.contains(Cap::SYS_ADMIN) || c.effective.contains(Cap::BPF | Cap::PERFMON))
}

impl Reader {
    /// Loads the program and checks a table of it against `/proc/self`;
    /// `Err(why)` where the kernel refuses both programs or a table is not
    /// what `/proc` says.
    /// `walk`: the task iterator even where the kernel loads the lookup
    /// program (tests and side-by-side measurements). `cgroups`: the
    /// program of cgroup values too (a watch's: loading it, with its BTF
    /// pass and its self-check, costs more than a one-shot check gains).
    /// `vmas`: the program of memory mappings too (`vmas.rs`: a watch's,
    /// and a baseline's or a one-shot check's of `memory-maps`). `mnts`:
    /// the program of mount namespaces too (`mnts.rs`: a watch's of
    /// `mounts`).
    pub(crate) fn load(walk: bool, cgroups: bool, vmas: bool, mnts: bool) -> Result<Reader, String> {
        // The programs of mappings and of mounts load on a thread of their
        // own meanwhile (their BTF passes, verification and self-checks:
        // 2-3 ms each that would otherwise delay the table a one-shot
        // check's pins wait for).
        let load_vmas = move || if vmas { Some(super::vmas::Program::load()) } else { None };
        let load_mnts = move || if mnts { Some(super::mnts::Program::load()) } else { None };
        let side_loading = if vmas || mnts {
            Some(
                std::thread::Builder::new()
                    .name("fdir-vmas".into())
                    .spawn(move || (load_vmas(), load_mnts()))
                    .map_err(|_| ()),
            )
        } else {
            None
        };
        let btf = std::fs::File::open("/sys/kernel/btf/vmlinux")
            .map(btf::Vmlinux::new)
            .map_err(|e| format!("no BTF: /sys/kernel/btf/vmlinux: {e}"))?;
        let (layout, ids) = Layout::of_kernel(&btf)?;
        let id = |i: usize| ids.get(i).copied().flatten();
        let lookup = match (id(1), id(2)) {
            _ if walk => Err("the walk was asked for".to_owned()),
            (Some(from_pid), Some(release)) => {
                Reader::load_lookup(&layout, from_pid, release).or_else(|why| match layout.cast {
                    // A kernel that refuses the cast in this program still
                    // loads it reading the trusted pointer, only slower.
                    Some(_) => {
                        tracing::debug!("the lookup program reads the task's trusted pointer: no cast ({why})");
                        Reader::load_lookup(&Layout { cast: None, ..layout }, from_pid, release)
                    }
                    None => Err(why),
                })
            }
            _ => Err("this kernel has no bpf_task_from_pid".to_owned()),
        };
        let mut reader = match lookup {
            Ok(reader) => reader,
            Err(why) => {
                tracing::debug!("the task table walks the task list: no lookup program ({why})");
                let iter =
                    id(0).ok_or_else(|| "this kernel's BTF has no bpf_iter_task (no task iterator)".to_owned())?;
                Reader::load_walk(&layout, iter)?
            }
        };
        let table = reader.read_all().map_err(|e| format!("cannot read the task table: {e}"))?;
        self_check(&table)?;
        if let How::Lookup(table) = &mut reader.how
            && let Some(table) = Arc::get_mut(table)
            && let Some(lookup) = table.lookup.as_mut()
            && lookup.writes_status
        {
            reader.status = status_self_check(lookup);
            match &reader.status {
                Ok(()) => lookup.keeps_status = true,
                Err(why) => tracing::debug!("the task table makes no status inputs: {why}"),
            }
        } else {
            reader.status = Err(match &reader.how {
                How::Walk { .. } => "the task iterator's records hold none (only the lookup program's do)".to_owned(),
                How::Lookup(_) => "this kernel's BTF lacks a member they are read from".to_owned(),
            });
        }
        reader.cgroups = if cgroups {
            super::cgvalues::Program::load().map(Arc::new)
        } else {
            Err("not loaded for a one-shot check".to_owned())
        };
        if let (How::Lookup(table), Ok(cgroups)) = (&mut reader.how, &reader.cgroups)
            && let Some(table) = Arc::get_mut(table)
        {
            table.cgroups = Some(Arc::clone(cgroups));
        }
        let (loaded, loaded_mnts) = match side_loading {
            None => (None, None),
            Some(Ok(thread)) => thread.join().unwrap_or_else(|_| {
                let panicked = "its loading thread panicked";
                (vmas.then(|| Err(panicked.to_owned())), mnts.then(|| Err(panicked.to_owned())))
            }),
            Some(Err(())) => (load_vmas(), load_mnts()),
        };
        let not_asked = "not loaded: not asked";
        let loaded = loaded.unwrap_or_else(|| Err(not_asked.to_owned())).map(Arc::new);
        let loaded_mnts = loaded_mnts.unwrap_or_else(|| Err(not_asked.to_owned())).map(Arc::new);
        reader.vmas = if matches!(reader.how, How::Walk { .. }) && loaded.is_ok() {
            Err("no lookup program to pin the processes it copies".to_owned())
        } else {
            loaded
        };
        if let Err(why) = &reader.vmas {
            tracing::debug!("the task table makes no maps inputs: {why}");
        }
        if let (How::Lookup(table), Ok(vmas)) = (&mut reader.how, &reader.vmas)
            && let Some(table) = Arc::get_mut(table)
        {
            table.vmas = Some(Arc::clone(vmas));
        }
        reader.mnts = if matches!(reader.how, How::Walk { .. }) && loaded_mnts.is_ok() {
            Err("no lookup program to pin the processes it copies".to_owned())
        } else {
            loaded_mnts
        };
        if let Err(why) = &reader.mnts {
            tracing::debug!("the task table makes no mount inputs: {why}");
        }
        if let (How::Lookup(table), Ok(mnts)) = (&mut reader.how, &reader.mnts)
            && let Some(table) = Arc::get_mut(table)
        {
            table.mnts = Some(Arc::clone(mnts));
        }
        Ok(reader)
    }

    /// The record of process `pid` now (its start time in clock ticks, its
    /// name and the rest), where
    /// the lookup program finds it neither exiting nor exited, and it
    /// started before `opened` ([`boot_ticks`] taken before its directory
    /// was opened); else `None` (and for a walk's reader). Such a process
    /// held the pid from before the open until now, so it is the process
    /// the directory names: this pins it ([`super::procfs::Opened::pin`])
    /// without its `stat`. (One that started since, after the process the
    /// directory named exited, is not.)
    ///
    /// The record is returned whole: the check of that process answers
    /// from it ([`seed`]) instead of running the program again.
    pub(crate) fn identity(&self, pid: u32, opened: u64) -> Option<Entry> {
        let How::Lookup(table) = &self.how else { return None };
        let entry = run_lookup(table.lookup.as_ref()?, pid).ok()??;
        (entry.settled && entry.start_ticks < opened).then_some(entry)
    }

    /// Whether records hold status inputs (the kernel state `status`'s
    /// fields are printed from), or why not.
    pub(crate) fn status_inputs(&self) -> Result<(), &str> {
        self.status.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Whether a watch's checks have maps inputs (`vmas.rs`), or why not.
    pub(crate) fn maps_inputs(&self) -> Result<(), &str> {
        self.vmas.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Whether a watch's checks have mount inputs (`mnts.rs`), or why not.
    pub(crate) fn mount_inputs(&self) -> Result<(), &str> {
        self.mnts.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Whether cgroup control values are made from the kernel's structs
    /// (`cgvalues.rs`), or why not.
    pub(crate) fn cgroup_values(&self) -> Result<(), &str> {
        self.cgroups.as_ref().map(|_| ()).map_err(String::as_str)
    }

    fn load_lookup(layout: &Layout, from_pid: u32, release: u32) -> Result<Reader, String> {
        let insns = lookup_program(layout, from_pid, release)?;
        let spec = sys::ProgSpec {
            prog_type: sys::PROG_SYSCALL,
            attach_type: 0,
            attach_btf_id: 0,
            name: "fdir_task",
            flags: sys::F_SLEEPABLE,
        };
        let prog = sys::prog_load(&insns, &spec).map_err(|e| format!("the kernel refused the lookup program: {e}"))?;
        let lookup = Lookup { prog, writes_status: layout.status.is_some(), keeps_status: false };
        let table = Table { entries: Vec::new(), lookup: Some(lookup), cgroups: None, vmas: None, mnts: None };
        Ok(Reader {
            how: How::Lookup(Arc::new(table)),
            buf: Vec::new(),
            cgroups: Err(NOT_YET.to_owned()),
            status: Err(NOT_YET.to_owned()),
            vmas: Err(NOT_YET.to_owned()),
            mnts: Err(NOT_YET.to_owned()),
        })
    }

    fn load_walk(layout: &Layout, iter: u32) -> Result<Reader, String> {
        let part = sys::map_create(sys::MAP_ARRAY, 4, 8, 1, "fdir_tasks_part")
            .map_err(|e| format!("cannot make the task iterator's map: {e}"))?;
        let insns = program(layout)?;
        let insns = Insn::with_map_fds(&insns, &[part.as_raw_fd()]).ok_or("the task iterator names no map")?;
        let spec = sys::ProgSpec {
            prog_type: sys::PROG_TRACING,
            attach_type: sys::ATTACH_ITER,
            attach_btf_id: iter,
            name: "fdir_tasks",
            flags: 0,
        };
        let prog = sys::prog_load(&insns, &spec).map_err(|e| format!("the kernel refused the task iterator: {e}"))?;
        let link =
            sys::iter_link_create(prog.as_fd(), None).map_err(|e| format!("cannot link the task iterator: {e}"))?;
        Ok(Reader {
            how: How::Walk { link, _prog: prog, part },
            buf: Vec::new(),
            cgroups: Err(NOT_YET.to_owned()),
            status: Err(NOT_YET.to_owned()),
            vmas: Err(NOT_YET.to_owned()),
            mnts: Err(NOT_YET.to_owned()),
        })
    }

    /// Whether a table costs a walk of every task of the node (the task
    /// iterator), not a run a process it is asked about.
    pub(crate) fn walks(&self) -> bool {
        matches!(self.how, How::Walk { .. })
    }

    /// The table of part `part` of `parts` of a round (the processes whose
    /// pid is `part` modulo `parts`). A walk reads every record now; a
    /// lookup table makes each record when it is first asked for.
    pub(crate) fn read(&mut self, part: u32, parts: u32) -> std::io::Result<Arc<Table>> {
        match &self.how {
            // The same table for every part: a steady cycle allocates nothing.
            How::Lookup(table) => Ok(Arc::clone(table)),
            How::Walk { .. } => self.walk(part, parts).map(Arc::new),
        }
    }

    /// The walk's records of part `part` of `parts` (none for the lookup
    /// program, which walks nothing).
    fn walk(&mut self, part: u32, parts: u32) -> std::io::Result<Table> {
        let How::Walk { link, part: map, .. } = &self.how else { return Ok(Table::default()) };
        sys::update_u64(map.as_fd(), 0, u64::from(part) << 32 | u64::from(parts.max(1)))?;
        let iter = sys::iter_create(link.as_fd())?;
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(self.buf.capacity().max(64 * 1024));
            }
            match rustix::io::read(&iter, rustix::buffer::spare_capacity(&mut self.buf)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut table = Table::parse(&self.buf);
        table.cgroups = self.cgroups.as_ref().ok().cloned();
        // The buffer is kept for the next round, at the size a round needs.
        self.buf.clear();
        Ok(table)
    }

    /// A table of every process now (the lookup program: of this process
    /// alone, the one the self-check asks about).
    fn read_all(&mut self) -> std::io::Result<Table> {
        match &self.how {
            How::Lookup(table) => {
                let entry = match &table.lookup {
                    Some(prog) => run_lookup(prog, std::process::id())?,
                    None => None,
                };
                Ok(Table { entries: entry.into_iter().collect(), lookup: None, cgroups: None, vmas: None, mnts: None })
            }
            How::Walk { .. } => self.walk(0, 1),
        }
    }
}

/// One run of the lookup program: the record of process `pid`, `None`
/// where no process of that pid leads a thread group; with its status
/// inputs where the program's records keep them and they are complete.
fn run_lookup(lookup: &Lookup, pid: u32) -> std::io::Result<Option<Entry>> {
    run_lookup_keeping(lookup, pid, lookup.keeps_status)
}

/// [`run_lookup`], keeping the status inputs where `keep` (and the program
/// writes them, complete).
fn run_lookup_keeping(lookup: &Lookup, pid: u32, keep: bool) -> std::io::Result<Option<Entry>> {
    let mut ctx = [0u8; RECORD + STATUS];
    if let Some(at) = ctx.get_mut(0..4) {
        at.copy_from_slice(&pid.to_ne_bytes());
    }
    let used = if lookup.writes_status { RECORD + STATUS } else { RECORD };
    sys::prog_run(lookup.prog.as_fd(), ctx.get_mut(..used).unwrap_or_default())?;
    let Some(mut entry) = parse_record(&ctx).filter(|e| e.pid == pid) else { return Ok(None) };
    if keep
        && lookup.writes_status
        && let Some(inputs) = ctx.get(RECORD..).and_then(|s| <[u8; STATUS]>::try_from(s).ok())
        && u32_at(&inputs, S_FLAGS) == Some(0)
    {
        entry.status = Some(inputs);
    }
    Ok(Some(entry))
}

/// Why a reader has no program of cgroup values before its load tried one.
const NOT_YET: &str = "not loaded yet";

/// The text of the link `ns/NAME` to the namespace `inum`: the kind is the
/// namespace's (`pid_for_children` links to `pid:[...]`).
fn link_text(name: &str, inum: u32) -> String {
    format!("{}:[{inum}]", name.strip_suffix("_for_children").unwrap_or(name))
}

/// This process's record against its `/proc/self` files.
fn self_check(table: &Table) -> Result<(), String> {
    let me = std::process::id();
    let stat = std::fs::read("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    let start = super::stat::parse_stat(&stat).map(|(_, _, s)| s).ok_or("/proc/self/stat unreadable")?;
    let entry = table.get(me, start).ok_or_else(|| {
        format!("the task iterator's table has no process {me} started at tick {start} (fdir in a pid namespace of its own?)")
    })?;
    for (name, &inum) in NAMESPACES.iter().zip(&entry.ns) {
        let Ok(link) = std::fs::read_link(format!("/proc/self/ns/{name}")) else { continue };
        let want = link_text(name, inum);
        if link.as_os_str() != want.as_str() {
            return Err(format!(
                "the task iterator reads namespace {want}, /proc/self/ns/{name} says {}",
                link.display()
            ));
        }
    }
    if let Some(want) = mount_at(rustix::fs::CWD, "/proc/self/root")
        && entry.root != Some(want)
    {
        return Err(format!("the task iterator reads root {:?}, statx of /proc/self/root says {want:?}", entry.root));
    }
    let mut text = Vec::new();
    limits_text(&entry.limits, &mut text);
    let limits = std::fs::read("/proc/self/limits").map_err(|e| format!("/proc/self/limits: {e}"))?;
    if text != limits {
        return Err("the task iterator's limits of this process are not /proc/self/limits".into());
    }
    Ok(())
}

/// The fields of `status` that status inputs print (in the initial pid
/// namespace: `NStgid` from the first level).
const STATUS_FIELDS: [&str; 13] = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
    "Seccomp_filters",
    "Threads",
    "NStgid",
];

/// Writes the value status inputs print for field `name` of
/// [`STATUS_FIELDS`], its words separated by one space.
fn write_status_field(inputs: &[u8; STATUS], name: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let word = |at: usize| u32_at(inputs, at).unwrap_or(0);
    let words = |out: &mut dyn std::fmt::Write, at: &mut dyn Iterator<Item = usize>| -> std::fmt::Result {
        for (i, at) in at.enumerate() {
            if i > 0 {
                out.write_char(' ')?;
            }
            write!(out, "{}", word(at))?;
        }
        Ok(())
    };
    let cap = |i: usize| u64_at(inputs, S_CAPS + 8 * i).unwrap_or(0);
    let ids = |first: usize| [first, first + 4, first + 2, first + 6].into_iter().map(|i| S_IDS + 4 * i);
    let caps = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];
    match name {
        "Uid" => words(out, &mut ids(0)),
        "Gid" => words(out, &mut ids(1)),
        "Groups" => {
            let n = usize::try_from(word(S_NGROUPS)).unwrap_or(MAX_GROUPS).min(MAX_GROUPS);
            words(out, &mut (0..n).map(|i| S_GIDS + 4 * i))
        }
        "NoNewPrivs" => write!(out, "{}", u64_at(inputs, S_ATOMIC).unwrap_or(0) & 1),
        "Seccomp" => write!(out, "{}", word(S_SECCOMP)),
        "Seccomp_filters" => write!(out, "{}", word(S_SECCOMP + 4)),
        "Threads" => write!(out, "{}", word(S_THREADS)),
        "NStgid" => {
            let levels = usize::try_from(word(S_LEVEL)).unwrap_or(0).min(MAX_LEVELS - 1) + 1;
            words(out, &mut (0..levels).map(|i| S_UPIDS + UPID * i))
        }
        _ => match caps.iter().position(|c| *c == name) {
            Some(i) => write!(out, "{:016x}", cap(i)),
            None => Ok(()),
        },
    }
}

/// The fields of `status` that status inputs print, as (name, value), the
/// value's runs of tabs and spaces made one space.
pub(crate) fn status_fields(inputs: &[u8; STATUS]) -> Vec<(&'static str, String)> {
    STATUS_FIELDS
        .iter()
        .map(|&name| {
            let mut value = String::new();
            let _ = write_status_field(inputs, name, &mut value);
            (name, value)
        })
        .collect()
}

/// A value written on the stack: what [`status_agrees`] compares a text's
/// field with, without allocating.
struct Stack {
    bytes: [u8; 640],
    len: usize,
}

impl std::fmt::Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(std::fmt::Error)?;
        self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Whether `text` (a `status`) says, for every field status inputs print
/// and the text has, what `inputs` print: the text and the inputs are of
/// the same state. Words are compared, whatever tabs and spaces separate
/// them. Allocates nothing.
pub(crate) fn status_agrees(inputs: &[u8; STATUS], text: &[u8]) -> bool {
    STATUS_FIELDS.iter().all(|&name| {
        let Some(value) = crate::canon::status::field(text, name) else { return true };
        let mut made = Stack { bytes: [0; 640], len: 0 };
        if write_status_field(inputs, name, &mut made).is_err() {
            return false;
        }
        let separator = |b: &u8| *b == b' ' || *b == b'\t';
        let ours = made.bytes.get(..made.len).unwrap_or_default().split(separator).filter(|w| !w.is_empty());
        let theirs = value.split(separator).filter(|w| !w.is_empty());
        ours.eq(theirs)
    })
}

/// The `css_set` of status inputs (see [`S_CSS`]): the same one as another
/// process's, the same cgroups; `None` for none read.
pub(crate) fn cgroup_set(inputs: &[u8; STATUS]) -> Option<u64> {
    u64_at(inputs, S_CSS).filter(|&p| p != 0)
}

/// The thread count of status inputs (`status`'s `Threads`).
pub(crate) fn status_threads(inputs: &[u8; STATUS]) -> u32 {
    u32_at(inputs, S_THREADS).unwrap_or(0)
}

/// The value of field `name` of a `status` text, its runs of tabs and
/// spaces made one space (as [`status_fields`] gives it).
pub(crate) fn status_value(text: &[u8], name: &str) -> Option<String> {
    let value = crate::canon::status::field(text, name)?;
    Some(String::from_utf8_lossy(value).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// This process's status inputs against `/proc/self/status`, read before
/// and after: every field they print must be the text's where the two
/// texts agree (a thread started meanwhile changes `Threads`).
fn status_self_check(lookup: &Lookup) -> Result<(), String> {
    let read = || std::fs::read("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"));
    let before = read()?;
    let entry = run_lookup_keeping(lookup, std::process::id(), true).map_err(|e| format!("a run failed: {e}"))?;
    let after = read()?;
    let inputs = entry.and_then(|e| e.status).ok_or("the inputs of this process are incomplete")?;
    for (name, made) in status_fields(&inputs) {
        let (a, b) = (status_value(&before, name), status_value(&after, name));
        if a.is_some() && a == b && a.as_deref() != Some(made.as_str()) {
            return Err(format!("{name} made {made:?}, /proc/self/status says {:?}", a.unwrap_or_default()));
        }
    }
    Ok(())
}

thread_local! {
    static INSTALLED: RefCell<Option<Arc<Table>>> = const { RefCell::new(None) };
    /// The lookup program's last record on this thread (pid, record): the
    /// reads of one process's files ask about it one after the other.
    static MADE: RefCell<Option<(u32, Option<Entry>)>> = const { RefCell::new(None) };
}

thread_local! {
    /// Set while a read must not use the table ([`bypassed`]).
    static BYPASSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the installed table out of use on this thread when
/// `bypass`: a read after a drift, and a confirming re-read, read `/proc`,
/// a source independent of the table, as they read around the memos.
pub(crate) fn bypassed<R>(bypass: bool, f: impl FnOnce() -> R) -> R {
    if !bypass {
        return f();
    }
    flagged(&BYPASSED, f)
}

/// Runs `f` with `flag` set on this thread, and its value before restored
/// after (on a panic too).
fn flagged<R>(flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>, f: impl FnOnce() -> R) -> R {
    struct Restore(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|b| b.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|b| b.replace(true)));
    f()
}

thread_local! {
    /// Set while a baseline is read: its cgroup control files from the
    /// files ([`cgroup_files`]).
    static CGROUP_FILES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with cgroup control files read from their files on this
/// thread, not made from the program's record: a baseline is the files'
/// text, so a formatter wrong for a value it never met at its self-check
/// makes a check differ from it, and that check's fresh read (the files)
/// agrees: a read more, never a false drift.
pub(crate) fn cgroup_files<R>(f: impl FnOnce() -> R) -> R {
    flagged(&CGROUP_FILES, f)
}

/// Whether a failed run of the lookup program was said (once a process).
static RUN_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The table installed on this thread, if any (for the threads a part's
/// work is spread over: each installs it too).
pub(crate) fn installed() -> Option<Arc<Table>> {
    INSTALLED.with(|t| t.borrow().clone())
}

/// Installs `table` on this thread while `f` runs: `lookup` answers from it.
pub(crate) fn install<R>(table: Option<&Arc<Table>>, f: impl FnOnce() -> R) -> R {
    let Some(table) = table else { return f() };
    struct Restore(Option<Arc<Table>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            INSTALLED.with(|t| *t.borrow_mut() = before);
            MADE.with(|m| *m.borrow_mut() = None);
            super::cgvalues::forget();
        }
    }
    MADE.with(|m| *m.borrow_mut() = None);
    super::cgvalues::forget();
    let before = INSTALLED.with(|t| t.borrow_mut().replace(Arc::clone(table)));
    let _restore = Restore(before);
    f()
}

/// Makes `entry` ([`Reader::identity`]'s record, which pinned its process
/// for a one-shot check) the record this thread's next [`lookup`] of that
/// process answers with, where a lookup table is installed and the read may
/// use it: the record is as the kernel had it when the process was pinned,
/// a few milliseconds before its check reads its files, and saves the
/// program's second run.
pub(crate) fn seed(entry: Entry) {
    if BYPASSED.with(std::cell::Cell::get) {
        return;
    }
    INSTALLED.with(|t| {
        if t.borrow().as_ref().is_some_and(|t| t.lookup.is_some()) {
            MADE.with(|m| *m.borrow_mut() = Some((entry.pid, Some(entry))));
        }
    });
}

/// `f` of the installed table's record of `pid` started at `start_ticks`,
/// if a table is installed on this thread and has it (a lookup table makes
/// it now, the first time it is asked for).
pub(crate) fn lookup<R>(pid: u32, start_ticks: u64, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    if BYPASSED.with(std::cell::Cell::get) {
        return None;
    }
    INSTALLED.with(|t| {
        let installed = t.borrow();
        let table = installed.as_ref()?;
        let Some(prog) = &table.lookup else { return table.get(pid, start_ticks).map(f) };
        MADE.with(|m| {
            let mut made = m.borrow_mut();
            if made.as_ref().is_none_or(|(p, _)| *p != pid) {
                let entry = run_lookup(prog, pid).unwrap_or_else(|e| {
                    if !RUN_FAILED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!("the task table's lookup program failed (read from /proc instead): {e}");
                    }
                    None
                });
                *made = Some((pid, entry));
            }
            made.as_ref().and_then(|(_, e)| e.as_ref()).filter(|e| e.start_ticks == start_ticks && e.settled).map(f)
        })
    })
}

/// [`lookup`], with the lookup program run again for `pid` (its record made
/// now, not the one made at the first question of its check); a table of
/// a walk answers as [`lookup`] does.
pub(crate) fn lookup_again<R>(pid: u32, start_ticks: u64, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    MADE.with(|m| {
        let mut made = m.borrow_mut();
        if made.as_ref().is_some_and(|(p, _)| *p == pid) {
            *made = None;
        }
    });
    lookup(pid, start_ticks, f)
}

/// The maps inputs of process `pid` started at `start_ticks` (`vmas.rs`)
/// into `out`, made by the installed table's program of mappings; `false`
/// where there are none to use (no table or program, a fresh read, no such
/// process, a copy that could not be made).
pub(crate) fn maps_copy(pid: u32, start_ticks: u64, out: &mut Vec<u8>) -> bool {
    if BYPASSED.with(std::cell::Cell::get) {
        return false;
    }
    INSTALLED.with(|t| {
        let installed = t.borrow();
        installed.as_ref().and_then(|t| t.vmas.as_ref()).is_some_and(|p| p.copy(pid, start_ticks, out))
    })
}

/// The mount inputs of process `pid` started at `start_ticks` (`mnts.rs`)
/// into `out`, made by the installed table's program of mounts; `false`
/// where there are none to use (as [`maps_copy`]).
pub(crate) fn mounts_copy(pid: u32, start_ticks: u64, out: &mut Vec<u8>) -> bool {
    if BYPASSED.with(std::cell::Cell::get) {
        return false;
    }
    INSTALLED.with(|t| {
        let installed = t.borrow();
        installed.as_ref().and_then(|t| t.mnts.as_ref()).is_some_and(|p| p.copy(pid, start_ticks, out))
    })
}

/// The text of control file `file` of the cgroup directory `dir` (a path
/// ending in `/`) of `hierarchy`, for process `pid` started at
/// `start_ticks`, made from the installed table's program of cgroup values
/// into `out`; `None` where the file must be read (no table, a fresh read,
/// no program, a value the program does not have).
pub(crate) fn cgroup_text(
    pid: u32,
    start_ticks: u64,
    hierarchy: &str,
    dir: &str,
    file: &str,
    out: &mut Vec<u8>,
) -> Option<()> {
    TEXT_MADE.with(|m| m.set(false));
    if BYPASSED.with(std::cell::Cell::get) || CGROUP_FILES.with(std::cell::Cell::get) {
        return None;
    }
    let made = INSTALLED.with(|t| {
        let installed = t.borrow();
        let program = installed.as_ref()?.cgroups.as_ref()?;
        super::cgvalues::answer(program, pid, start_ticks, hierarchy, dir, file, out)
    });
    TEXT_MADE.with(|m| m.set(made.is_some()));
    made
}

thread_local! {
    /// Whether the last [`cgroup_text`] on this thread made its text.
    static TEXT_MADE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the last [`cgroup_text`] on this thread made its text (the last
/// control file read was not read from its file).
pub(crate) fn cgroup_text_made() -> bool {
    TEXT_MADE.with(std::cell::Cell::get)
}

/// The digest of the record of cgroup values the installed table's program
/// makes for process `pid` started at `start_ticks` (run once a part, as
/// [`cgroup_text`] runs it); `None` where texts are not made from one.
pub(crate) fn cgroup_values_digest(pid: u32, start_ticks: u64) -> Option<crate::Digest> {
    if BYPASSED.with(std::cell::Cell::get) || CGROUP_FILES.with(std::cell::Cell::get) {
        return None;
    }
    INSTALLED.with(|t| {
        let installed = t.borrow();
        let program = installed.as_ref()?.cgroups.as_ref()?;
        super::cgvalues::record_digest(program, pid, start_ticks)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back() {
        let mut r = vec![0u8; RECORD];
        r[0..4].copy_from_slice(&42u32.to_ne_bytes());
        r[AT_START..AT_START + 8].copy_from_slice(&(123 * NS_PER_TICK + 5).to_ne_bytes());
        r[AT_NS + 12..AT_NS + 16].copy_from_slice(&4_026_531_840u32.to_ne_bytes());
        r[AT_LIMITS + 16 * 7..AT_LIMITS + 16 * 7 + 8].copy_from_slice(&1024u64.to_ne_bytes());
        r[AT_LIMITS + 16 * 7 + 8..AT_LIMITS + 16 * 8].copy_from_slice(&u64::MAX.to_ne_bytes());
        let mut exiting = r.clone();
        exiting[0..4].copy_from_slice(&43u32.to_ne_bytes());
        exiting[8..12].copy_from_slice(&PF_EXITING.to_ne_bytes());
        let mut bytes = r.clone();
        bytes.extend_from_slice(&exiting);
        bytes.extend_from_slice(&[1, 2, 3]); // a short tail: ignored
        let t = Table::parse(&bytes);
        assert_eq!(t.len(), 2);
        let e = t.get(42, 123).unwrap();
        assert_eq!(e.ns[3], 4_026_531_840);
        assert_eq!(e.limits[7], [1024, u64::MAX]);
        assert!(t.get(42, 124).is_none(), "another start time is another process");
        assert!(t.get(43, 0).is_none(), "an exiting process is read from /proc");
        assert!(lookup(42, 123, |_| ()).is_none(), "nothing installed");
        let t = Arc::new(t);
        assert_eq!(install(Some(&t), || lookup(42, 123, |e| e.ns[3])), Some(4_026_531_840));
        assert_eq!(install(Some(&t), || bypassed(true, || lookup(42, 123, |_| ()))), None, "a fresh read: /proc");
        assert!(install(Some(&t), || bypassed(false, || lookup(42, 123, |_| ()))).is_some());
        assert!(lookup(42, 123, |_| ()).is_none(), "uninstalled after");
    }

    /// Cgroup values are made for a check, and never for a baseline's read
    /// nor a fresh one: those read the files.
    #[test]
    fn cgroup_values_answer_a_check_only() {
        let Ok(program) = super::super::cgvalues::Program::load() else {
            eprintln!("SKIP cgroup_values_answer_a_check_only: the program of cgroup values does not load here");
            return;
        };
        let me = std::process::id();
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let start = super::super::stat::parse_stat(&stat).map(|(_, _, s)| s).unwrap();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
            eprintln!("SKIP cgroup_values_answer_a_check_only: no cgroup2 hierarchy");
            return;
        };
        let mounts = super::super::CgroupMounts::discover_shared().unwrap();
        let Ok((dir, rel)) = mounts.dir_parts("unified", path) else {
            eprintln!("SKIP cgroup_values_answer_a_check_only: cgroup2 is not mounted where fdir sees it");
            return;
        };
        let dir = format!("{}/", if rel.is_empty() { dir.to_path_buf() } else { dir.join(rel) }.display());
        let table = Arc::new(Table {
            entries: Vec::new(),
            lookup: None,
            cgroups: Some(Arc::new(program)),
            vmas: None,
            mnts: None,
        });
        let ask = || {
            let mut out = Vec::new();
            cgroup_text(me, start, "unified", &dir, "cgroup.max.depth", &mut out).map(|()| out)
        };
        assert!(ask().is_none(), "nothing installed");
        let made = install(Some(&table), ask);
        assert!(made.as_deref().is_some_and(|t| t.ends_with(b"\n")), "{made:?}");
        assert_eq!(install(Some(&table), || cgroup_files(ask)), None, "a baseline reads the files");
        assert_eq!(install(Some(&table), || bypassed(true, ask)), None, "a fresh read reads the files");
        assert!(install(Some(&table), ask).is_some(), "made again once the baseline's read is over");
    }

    /// Status inputs agree with the text they print, word for word
    /// whatever separates the words, and with no text of another state.
    #[test]
    fn status_inputs_agree_with_the_text_of_their_state_only() {
        let mut inputs = [0u8; STATUS];
        let mut put = |at: usize, bytes: &[u8]| inputs[at..at + bytes.len()].copy_from_slice(bytes);
        for (i, id) in [1000u32, 1001, 1002, 1003, 1004, 1005, 1006, 1007].iter().enumerate() {
            put(S_IDS + 4 * i, &id.to_ne_bytes());
        }
        for (i, cap) in [0x1ffu64, 0x3f, 0x3f, 0x1ff_ffff_ffff, 0].iter().enumerate() {
            put(S_CAPS + 8 * i, &cap.to_ne_bytes());
        }
        put(S_NGROUPS, &2u32.to_ne_bytes());
        put(S_GIDS, &4u32.to_ne_bytes());
        put(S_GIDS + 4, &27u32.to_ne_bytes());
        put(S_ATOMIC, &1u64.to_ne_bytes());
        put(S_SECCOMP, &2u32.to_ne_bytes());
        put(S_SECCOMP + 4, &1u32.to_ne_bytes());
        put(S_THREADS, &1u32.to_ne_bytes());
        put(S_LEVEL, &1u32.to_ne_bytes());
        put(S_UPIDS, &4242u32.to_ne_bytes());
        put(S_UPIDS + UPID, &7u32.to_ne_bytes());
        let text = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nUid:\t1000\t1004\t1002\t1006\n\
                    Gid:\t1001\t1005\t1003\t1007\nFDSize:\t64\nGroups:\t4 27 \nNStgid:\t4242\t7\nThreads:\t1\n\
                    CapInh:\t00000000000001ff\nCapPrm:\t000000000000003f\nCapEff:\t000000000000003f\n\
                    CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n\
                    Seccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread vulnerable\n";
        assert!(status_agrees(&inputs, text.as_bytes()));
        let fields = status_fields(&inputs);
        assert!(fields.contains(&("Uid", "1000 1004 1002 1006".to_owned())), "{fields:?}");
        assert!(fields.contains(&("Groups", "4 27".to_owned())), "{fields:?}");
        for (from, to) in [
            ("CapEff:\t000000000000003f", "CapEff:\t000000000000003e"),
            ("Groups:\t4 27 ", "Groups:\t4 "),
            ("Seccomp:\t2", "Seccomp:\t0"),
            ("Uid:\t1000\t1004", "Uid:\t1004\t1000"),
            ("NoNewPrivs:\t1", "NoNewPrivs:\t0"),
            ("NStgid:\t4242\t7", "NStgid:\t4242"),
            ("Threads:\t1", "Threads:\t2"),
        ] {
            let other = text.replace(from, to);
            assert_ne!(other, text);
            assert!(!status_agrees(&inputs, other.as_bytes()), "{to}");
        }
        // A field the text does not print (a kernel without it) is not asked.
        assert!(status_agrees(&inputs, text.replace("Seccomp_filters:\t1\n", "").as_bytes()));
    }

    #[test]
    fn limits_text_is_the_kernels() {
        let mut limits = [[u64::MAX; 2]; LIMITS];
        limits[7] = [1024, 524_288];
        limits[13] = [0, 0];
        let mut text = Vec::new();
        limits_text(&limits, &mut text);
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 17);
        assert_eq!(lines[8], "Max open files            1024                 524288               files     ");
        assert_eq!(lines[14], "Max nice priority         0                    0                    ");
        assert_eq!(lines[1], "Max cpu time              unlimited            unlimited            seconds   ");
    }

    /// The `limits` form made from the numbers is the form made from the
    /// text the kernel prints of them: the same records, the same digest,
    /// for the kernel's own limits and for odd ones.
    mod limit_values {
        use super::*;
        use crate::Subsystem;
        use crate::canon::{Canon, limits};
        use proptest::prelude::*;

        fn both(values: &[[u64; 2]; LIMITS]) -> (Canon, Canon) {
            let mut text = Vec::new();
            limits_text(values, &mut text);
            let mut parsed = Canon::new();
            limits::canonicalize(&text, &mut parsed).unwrap();
            let mut made = Canon::new();
            limits::add_values(&mut made, named_limits(values));
            (parsed, made)
        }

        fn same(values: &[[u64; 2]; LIMITS]) {
            let (mut parsed, mut made) = both(values);
            assert_eq!(made.lines().collect::<Vec<_>>(), parsed.lines().collect::<Vec<_>>());
            assert_eq!(made.digest(Subsystem::Limits), parsed.digest(Subsystem::Limits));
        }

        #[test]
        fn of_this_process_and_of_edges() {
            let mine = rustix::process::getrlimit(rustix::process::Resource::Nofile);
            let mut values = [[u64::MAX; 2]; LIMITS];
            values[7] = [mine.current.unwrap_or(u64::MAX), mine.maximum.unwrap_or(u64::MAX)];
            same(&values);
            same(&[[0; 2]; LIMITS]);
            same(&[[u64::MAX - 1, u64::MAX]; LIMITS]);
            let (parsed, _) = both(&[[8_388_608, u64::MAX]; LIMITS]);
            assert_eq!(parsed.lines().nth(3), Some("Max stack size\tsoft=8388608; hard=unlimited"));
            assert_eq!(parsed.len(), LIMITS);
        }

        proptest! {
            #[test]
            fn of_any_numbers(values in proptest::array::uniform16(proptest::array::uniform2(
                prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>(), 0u64..100_000]
            ))) {
                same(&values);
            }
        }
    }

    /// Both readers this kernel loads: the lookup program (where it
    /// exists) and the walk, each with a table of every process.
    fn live_tables(test: &str) -> Vec<(&'static str, Table)> {
        let btf = btf::Vmlinux::new(std::fs::File::open("/sys/kernel/btf/vmlinux").unwrap());
        let Ok((layout, ids)) = Layout::of_kernel(&btf) else {
            eprintln!("SKIP {test}: this kernel's BTF lacks a member the programs read");
            return Vec::new();
        };
        let mut out = Vec::new();
        // Through the trusted pointer (a kernel without the cast), and
        // through the untrusted alias.
        let mut layouts = vec![("lookup, trusted", Layout { cast: None, ..layout })];
        match layout.cast {
            Some(_) => layouts.push(("lookup", layout)),
            None => eprintln!("SKIP {test} (lookup through a cast): no bpf_rdonly_cast"),
        }
        for (how, layout) in &layouts {
            match (ids[1], ids[2]) {
                (Some(f), Some(r)) => match Reader::load_lookup(layout, f, r) {
                    Ok(reader) => {
                        let How::Lookup(table) = &reader.how else { unreachable!() };
                        let prog = table.lookup.as_ref().unwrap();
                        let mut entries: Vec<Entry> = std::fs::read_dir("/proc")
                            .unwrap()
                            .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u32>().ok())
                            .filter_map(|pid| run_lookup_keeping(prog, pid, true).unwrap())
                            .collect();
                        entries.sort_unstable_by_key(|e| e.pid);
                        assert!(run_lookup(prog, u32::MAX >> 1).unwrap().is_none(), "no such pid");
                        out.push((*how, Table { entries, lookup: None, cgroups: None, vmas: None, mnts: None }));
                    }
                    Err(why) => eprintln!("SKIP {test} ({how}): {why}"),
                },
                _ => eprintln!("SKIP {test} ({how}): no bpf_task_from_pid"),
            }
        }
        match ids[0].map(|iter| Reader::load_walk(&layout, iter)) {
            Some(Ok(mut reader)) => {
                let table = reader.walk(0, 1).unwrap();
                let halves = [reader.walk(0, 2).unwrap(), reader.walk(1, 2).unwrap()];
                for (part, half) in halves.iter().enumerate() {
                    assert!(half.entries.iter().all(|e| e.pid % 2 == u32::try_from(part).unwrap()), "part {part} of 2");
                }
                assert!(halves.iter().map(Table::len).sum::<usize>() + 10 > table.len(), "the halves make the whole");
                out.push(("walk", table));
            }
            Some(Err(why)) => eprintln!("SKIP {test} (walk): {why}"),
            None => eprintln!("SKIP {test} (walk): no task iterator"),
        }
        out
    }

    /// The live kernel's tables against `/proc`, for every process both
    /// can see: namespaces and limits byte for byte, and the root. Skipped
    /// (said) where the kernel refuses the programs.
    #[test]
    fn the_table_is_what_proc_says() {
        for (how, table) in live_tables("the_table_is_what_proc_says") {
            assert!(table.len() > 1, "{how}");
            compare_with_proc(how, &table);
        }
    }

    /// A reader with the lookup program, or `None` (said, for `test`).
    fn lookup_reader(test: &str) -> Option<Reader> {
        let Ok(reader) = Reader::load(false, false, false, false) else {
            eprintln!("SKIP {test}: the table does not load here");
            return None;
        };
        if !matches!(reader.how, How::Lookup(_)) {
            eprintln!("SKIP {test}: this kernel walks the task list (no lookup program)");
            return None;
        }
        Some(reader)
    }

    /// The cgroup set of status inputs (`task->cgroups`) is an identity of
    /// the cgroups a process's `cgroup` is printed from: every live process
    /// of one set prints the same text (two children of this test, in its
    /// cgroups, among them).
    #[test]
    fn processes_of_one_cgroup_set_print_one_cgroup_text() {
        let test = "processes_of_one_cgroup_set_print_one_cgroup_text";
        let Some(reader) = lookup_reader(test) else { return };
        let How::Lookup(table) = &reader.how else { return };
        if !table.lookup.as_ref().is_some_and(|l| l.writes_status) {
            eprintln!("SKIP {test}: no status inputs on this kernel");
            return;
        }
        let prog = table.lookup.as_ref().unwrap();
        let kids: Vec<std::process::Child> =
            (0..2).map(|_| std::process::Command::new("sleep").arg("100").spawn().unwrap()).collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut sets: std::collections::BTreeMap<u64, Vec<(u32, String)>> = std::collections::BTreeMap::new();
        for pid in super::super::procfs::list_processes(std::path::Path::new("/proc")).unwrap() {
            let text = || std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
            let before = text();
            // Of a process neither exiting nor exited, as a lookup answers
            // (an exiting one's `cgroup` says `/` for every v1 hierarchy).
            let set = run_lookup(prog, pid)
                .ok()
                .flatten()
                .filter(|e| e.settled)
                .and_then(|e| e.status.as_ref().and_then(cgroup_set));
            if let (Some(set), Some(t)) = (set, before.filter(|b| text().as_ref() == Some(b))) {
                sets.entry(set).or_default().push((pid, t));
            }
        }
        let kid_sets: Vec<Option<u64>> = kids
            .iter()
            .map(|k| sets.iter().find(|(_, ps)| ps.iter().any(|(p, _)| *p == k.id())).map(|(s, _)| *s))
            .collect();
        for mut k in kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        for (set, ps) in &sets {
            assert!(ps.iter().all(|(_, t)| *t == ps[0].1), "set {set:x}: {ps:?}");
        }
        assert!(kid_sets[0].is_some() && kid_sets[0] == kid_sets[1], "{kid_sets:?}");
        assert!(sets.len() > 1, "more than one set on a live node");
    }

    /// A seeded record (the one that pinned its process) answers the next
    /// lookup of that process on this thread, in place of a run of the
    /// program; a lookup of another process runs the program again, and a
    /// read that bypasses the table seeds nothing.
    #[test]
    fn a_seeded_record_answers_the_next_lookup_of_its_process() {
        let test = "a_seeded_record_answers_the_next_lookup_of_its_process";
        let Some(reader) = lookup_reader(test) else { return };
        let How::Lookup(table) = &reader.how else { return };
        let me = std::process::id();
        let prog = table.lookup.as_ref().unwrap();
        let real = run_lookup(prog, me).unwrap().unwrap();
        let start = real.start_ticks;
        // A record no run makes: only the seed can answer with it.
        let mut marked = real.clone();
        marked.limits[0] = [1, 2];
        let limit = |pid| lookup(pid, start, |e| e.limits[0]);
        install(Some(table), || {
            seed(marked.clone());
            assert_eq!(limit(me), Some([1, 2]), "answered by the seed");
            assert_eq!(limit(me), Some([1, 2]), "kept while the same process is asked about");
            let _ = lookup(1, 0, |_| ());
            assert_eq!(limit(me), Some(real.limits[0]), "another process's lookup ran the program");
            bypassed(true, || seed(marked.clone()));
            let _ = lookup(1, 0, |_| ());
            assert_eq!(limit(me), Some(real.limits[0]), "a bypassed read seeded nothing");
        });
        // No table installed: a seed is dropped.
        seed(marked);
        assert_eq!(limit(me), None);
    }

    /// A record pins a process only if it started before the directory
    /// was opened: this process's record pins it against the time now, and
    /// not against its own start time (as if it had started after).
    #[test]
    fn identity_is_of_a_process_started_before_the_open() {
        let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
        // Seconds with two decimals: hundredths, the ticks.
        let ticks: u64 = uptime.split_whitespace().next().unwrap().replace('.', "").parse().unwrap();
        let now = boot_ticks();
        assert!(now.abs_diff(ticks) < 100, "{now} ticks against {uptime}");
        let Ok(reader) = Reader::load(false, false, false, false) else {
            eprintln!("SKIP identity_is_of_a_process_started_before_the_open: the table does not load here");
            return;
        };
        let me = std::process::id();
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let (name, _, start) = super::super::stat::parse_stat(&stat).unwrap();
        // A process in the tick it started in has not started before now.
        while boot_ticks() <= start {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let known = reader.identity(me, boot_ticks()).map(|e| (e.start_ticks, e.name()));
        assert_eq!(known, Some((start, name)));
        assert_eq!(reader.identity(me, start), None, "started at the open, not before");
        assert_eq!(reader.identity(u32::MAX >> 2, boot_ticks()), None, "no such process");
    }

    /// `may_load` says no where the kernel refuses the load for want of
    /// privilege: without it, the load fails.
    #[test]
    fn may_load_where_the_load_works() {
        let loads = Reader::load(false, false, false, false);
        if may_load() {
            if let Err(why) = &loads {
                assert!(!why.contains("not permitted"), "may_load said yes: {why}");
            }
        } else {
            eprintln!(
                "SKIP may_load_where_the_load_works: no CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) in the initial user namespace"
            );
            assert!(loads.is_err(), "a load without the privilege");
        }
    }

    /// A thread's id is not a process: the lookup program says none.
    #[test]
    fn a_thread_is_not_looked_up() {
        let Ok(reader) = Reader::load(false, false, false, false) else { return };
        let How::Lookup(table) = &reader.how else { return };
        let prog = table.lookup.as_ref().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(rustix::thread::gettid().as_raw_nonzero().get().unsigned_abs()).unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert!(run_lookup(prog, tid).unwrap().is_none(), "thread {tid}");
        assert!(run_lookup(prog, std::process::id()).unwrap().is_some());
        stop_tx.send(()).unwrap();
        t.join().unwrap();
    }

    fn compare_with_proc(how: &str, table: &Table) {
        let mut compared = 0;
        let mut with_status = 0;
        for e in &table.entries {
            let dir = format!("/proc/{}", e.pid);
            let (Ok(before), Ok(limits)) =
                (std::fs::read(format!("{dir}/stat")), std::fs::read(format!("{dir}/limits")))
            else {
                continue;
            };
            let after = std::fs::read(format!("{dir}/stat")).unwrap_or_default();
            let start = |b: &[u8]| super::super::stat::parse_stat(b).map(|(_, _, s)| s);
            if start(&before) != Some(e.start_ticks) || start(&after) != Some(e.start_ticks) || !e.settled {
                continue;
            }
            // A child of this test binary (other tests' children run beside
            // it) may change between the table and `/proc`: exec (a new
            // name, the same start time), set its limits or unshare before
            // it execs. Those are left out.
            if super::super::stat::parse_stat_ppid(&before) == Some(std::process::id()) {
                continue;
            }
            let flags = super::super::stat::parse_stat_flags(&before).unwrap_or(0);
            let name = super::super::stat::parse_stat(&before).map(|(n, _, _)| n).unwrap_or_default();
            let kernel_thread = flags & super::super::stat::PF_KTHREAD != 0;
            assert_eq!(e.kernel_thread, kernel_thread, "whether process {} is a kernel thread", e.pid);
            // A kernel worker's `stat` names its work, not its `comm`.
            if !kernel_thread {
                assert_eq!(e.name(), name, "the name of process {}", e.pid);
            }
            let links: Vec<String> = NAMESPACES
                .iter()
                .map(|n| {
                    std::fs::read_link(format!("{dir}/ns/{n}")).map(|l| l.display().to_string()).unwrap_or_default()
                })
                .collect();
            if links.iter().any(String::is_empty) {
                continue; // exiting meanwhile
            }
            for ((name, link), inum) in NAMESPACES.iter().zip(&links).zip(&e.ns) {
                assert_eq!(*link, link_text(name, *inum), "process {}", e.pid);
            }
            let mut text = Vec::new();
            limits_text(&e.limits, &mut text);
            assert_eq!(String::from_utf8_lossy(&text), String::from_utf8_lossy(&limits), "process {}", e.pid);
            if let Some(root) = mount_at(rustix::fs::CWD, &format!("{dir}/root")) {
                assert_eq!(e.root, Some(root), "the root of process {}", e.pid);
            }
            if let Some(inputs) = &e.status
                && let (Ok(a), Ok(b)) = (std::fs::read(format!("{dir}/status")), std::fs::read(format!("{dir}/status")))
            {
                for (name, made) in status_fields(inputs) {
                    let text = status_value(&a, name);
                    if text.is_some() && text == status_value(&b, name) && name != "Threads" {
                        assert_eq!(text.as_deref(), Some(made.as_str()), "{name} of process {}", e.pid);
                    }
                }
                with_status += 1;
            }
            compared += 1;
        }
        eprintln!(
            "{how}: compared {compared} processes: names, namespaces, limits, root; status inputs of {with_status}"
        );
        assert!(compared > 1, "{how}: compared {compared} processes");
        if how.starts_with("lookup") {
            assert!(with_status * 2 > compared, "{how}: status inputs of {with_status} of {compared}");
        }
    }
}
