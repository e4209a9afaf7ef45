//! A mount namespace's table as the kernel holds it: the inputs of the
//! `mountinfo` text, copied by an eBPF program, so that a watch reads
//! `mountinfo` only when what it prints may have changed.
//!
//! The text costs the kernel a formatting of every mount each time it is
//! read (each mount's two paths, its options, its filesystem's own
//! options: 3 µs a mount here), the largest single read of a watch of one
//! process with the default subsystems. The copy costs a walk.
//!
//! The program (`BPF_PROG_TYPE_SYSCALL`, run by `BPF_PROG_TEST_RUN` like
//! `vmas.rs`'s) finds the task by its pid (`bpf_task_from_pid`), takes its
//! mount namespace (`task->nsproxy->mnt_ns`) and walks the namespace's
//! mounts in the order `mountinfo` prints them (the namespace's red-black
//! tree, in order: from `mnt_first_node`, each next node found as
//! `rb_next` finds it). It copies first the task's start time, the
//! namespace's address, its `event` (which the kernel bumps on every
//! mount, unmount, remount and move in it: what wakes a `poll` of
//! `mountinfo`) and count of mounts, and the task's root (its `fs`'s
//! `root`, which the paths are printed from); then, for each mount
//! ([`MOUNT`] bytes), what the text is printed from:
//! - its id and its parent's id, its `vfsmount` flags (`ro`, `nosuid`,
//!   `nodev`, `noexec`, the atime flags, `nosymfollow`), its propagation
//!   flags, its peer group's id and its master's (`shared:N`,
//!   `master:N`), its `mnt_devname` (the source), its idmap;
//! - its superblock (which fixes the device, the filesystem's type and its
//!   options), the superblock's flags, device, type and subtype;
//! - a witness of its root within the filesystem, and of its mount point
//!   within its parent mount: a mix of each dentry's name (hash, length,
//!   address) from the mount's root up to the filesystem's root, and from
//!   its mount point up to the parent mount's root ([`PATH_STEPS`] steps at
//!   most; a longer path marks the copy, which is then not used).
//!   The parent's own path is its own record's, so a directory renamed
//!   above a mount point changes the copy.
//!
//! What the copy does not hold, and how it is still seen: the bytes of the
//! source's name and of the filesystem's own options (`ext4`'s, `tmpfs`'s:
//! the superblock's private data, which each filesystem formats its own
//! way), a rename to a name of the same salted hash, length and address.
//! A remount bumps the namespace's `event`, so every change made through
//! the kernel's interfaces changes the copy; a bit flipped in those fields
//! is read at the next text read: a watch reads the text every
//! [`crate::observe::MOUNTS_TEXT_EVERY`]-th pass regardless.
//!
//! The walk takes no lock (the kernel's walk takes the namespace's
//! semaphore): every load is fault-safe, and a walk torn by a mount made
//! meanwhile gives a copy that differs from the last, so the text is read.
//! A text read is used as the copy's only if the copy is the same after
//! the read as before it and the text's lines say what the copy says
//! ([`agrees`]).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::bpf::asm::{Alu, Asm, Cond, Helper, Insn, Map, Reg, Size};
use crate::bpf::{btf, sys};
use crate::canon::maps::dec;

/// Mounts a copy holds (a power of two); a namespace of more has its
/// `mountinfo` read.
pub(crate) const MAX_MOUNTS: usize = 1024;
/// Bytes of one mount's copy: fourteen 8-byte words (see [`Mount`]).
pub(crate) const MOUNT: usize = 112;
/// Bytes before the mounts: the task's start time (ns since boot), the
/// count of mounts walked, the flags ([`FLAG_FAILED`], [`FLAG_DEEP`]), the
/// namespace's address, its event and its count of mounts, and the task's
/// root (its mount and dentry).
pub(crate) const HEAD: usize = 64;
/// The bytes of a map value a copy uses.
const VALUE: usize = HEAD + MAX_MOUNTS * MOUNT;
/// The bytes of the value mapped for a copy of at most `(PREFIX - HEAD) /
/// MOUNT` (145) mounts: the whole value is mapped only for more.
const PREFIX: usize = 16 * 1024;
/// The walk could not be made: no namespace (an exiting task), a tree
/// deeper than [`TREE_DEPTH`], more mounts than [`MAX_MOUNTS`].
const FLAG_FAILED: u64 = 1;
/// A path longer than [`PATH_STEPS`]: the copy does not fix the text.
const FLAG_DEEP: u64 = 2;
/// Nanoseconds a clock tick (as `tasks.rs`).
const NS_PER_TICK: u64 = 10_000_000;
/// The steps of a path's walk.
const PATH_STEPS: usize = 16;
/// The steps of a move down or up the tree to the next mount (a
/// red-black tree of a million mounts is at most 40 deep).
const TREE_DEPTH: usize = 40;
/// The multiplier of the witness's mix (odd; sign-extended by the ALU).
const MIX: i32 = -1_640_531_535; // 0x9e37_79b1

/// `MNT_NOSUID`, `MNT_NODEV`, `MNT_NOEXEC`, `MNT_READONLY` (the
/// `vfsmount` flags of `include/linux/mount.h`, fixed since 2.6): what
/// [`agrees`] checks of each line's options.
const MNT_NOSUID: u32 = 0x01;
const MNT_NODEV: u32 = 0x02;
const MNT_NOEXEC: u32 = 0x04;
const MNT_READONLY: u32 = 0x40;

/// The members read, in [`Offsets`]' order.
const MEMBERS: [(&str, &str); 32] = [
    ("task_struct", "start_boottime"),
    ("task_struct", "nsproxy"),
    ("task_struct", "fs"),
    ("nsproxy", "mnt_ns"),
    ("fs_struct", "root"),
    ("path", "mnt"),
    ("path", "dentry"),
    ("mnt_namespace", "event"),
    ("mnt_namespace", "nr_mounts"),
    ("mnt_namespace", "mnt_first_node"),
    ("rb_node", "__rb_parent_color"),
    ("rb_node", "rb_right"),
    ("rb_node", "rb_left"),
    ("mount", "mnt_node"),
    ("mount", "mnt_parent"),
    ("mount", "mnt_mountpoint"),
    ("mount", "mnt"),
    ("mount", "mnt_devname"),
    ("mount", "mnt_master"),
    ("mount", "mnt_id"),
    ("mount", "mnt_group_id"),
    ("vfsmount", "mnt_root"),
    ("vfsmount", "mnt_sb"),
    ("vfsmount", "mnt_flags"),
    ("vfsmount", "mnt_idmap"),
    ("super_block", "s_flags"),
    ("super_block", "s_dev"),
    ("super_block", "s_type"),
    ("super_block", "s_subtype"),
    ("dentry", "d_name"),
    ("dentry", "d_parent"),
    // Where the kernel keeps propagation flags apart from `mnt_flags`
    // (6.16 and later); older kernels keep them in `mnt_flags`.
    ("mount", "mnt_t_flags"),
];

const TASK_START: usize = 0;
const TASK_NSPROXY: usize = 1;
const TASK_FS: usize = 2;
const NSPROXY_MNT_NS: usize = 3;
const FS_ROOT: usize = 4;
const PATH_MNT: usize = 5;
const PATH_DENTRY: usize = 6;
const NS_EVENT: usize = 7;
const NS_NR_MOUNTS: usize = 8;
const NS_FIRST: usize = 9;
const RB_PARENT_COLOR: usize = 10;
const RB_RIGHT: usize = 11;
const RB_LEFT: usize = 12;
const MOUNT_NODE: usize = 13;
const MOUNT_PARENT: usize = 14;
const MOUNT_MOUNTPOINT: usize = 15;
const MOUNT_MNT: usize = 16;
const MOUNT_DEVNAME: usize = 17;
const MOUNT_MASTER: usize = 18;
const MOUNT_ID: usize = 19;
const MOUNT_GROUP: usize = 20;
const MNT_ROOT: usize = 21;
const MNT_SB: usize = 22;
const MNT_FLAGS: usize = 23;
const MNT_IDMAP: usize = 24;
const SB_FLAGS: usize = 25;
const SB_DEV: usize = 26;
const SB_TYPE: usize = 27;
const SB_SUBTYPE: usize = 28;
const D_NAME: usize = 29;
const D_PARENT: usize = 30;
const MOUNT_T_FLAGS: usize = 31;

/// The kfuncs the program calls.
const FUNCS: [&str; 6] = [
    "bpf_task_from_pid",
    "bpf_task_release",
    "bpf_rdonly_cast",
    "bpf_iter_num_new",
    "bpf_iter_num_next",
    "bpf_iter_num_destroy",
];

/// The program's one map: the array whose value it writes.
const OUT: Map = Map(0);

/// This kernel's offsets of [`MEMBERS`], and the BTF ids the program names.
struct Offsets {
    m: [i16; 31],
    /// `mount.mnt_t_flags`, where this kernel has it.
    t_flags: Option<i16>,
    funcs: [u32; 6],
    /// `struct task_struct`, `struct mount` and `struct rb_node`, which the
    /// casts name.
    task: u32,
    mount: u32,
    rb_node: u32,
}

impl Offsets {
    fn of_kernel(btf: &btf::Vmlinux) -> Result<Offsets, String> {
        let all = btf::find_all(btf, &FUNCS, &MEMBERS, &[], btf::WINDOW)
            .ok_or_else(|| "/sys/kernel/btf/vmlinux is not BTF this build reads".to_owned())?;
        let mut m = [0i16; 31];
        for ((slot, found), (s, name)) in m.iter_mut().zip(&all.members).zip(&MEMBERS) {
            let off = found.ok_or_else(|| format!("this kernel's BTF has no member {s}.{name}"))?;
            *slot = i16::try_from(off).map_err(|_| format!("{s}.{name} lies too far for a load: {off}"))?;
        }
        let t_flags = all.members.get(MOUNT_T_FLAGS).copied().flatten().and_then(|o| i16::try_from(o).ok());
        let mut funcs = [0u32; 6];
        for ((slot, found), name) in funcs.iter_mut().zip(&all.funcs).zip(&FUNCS) {
            *slot = found.ok_or_else(|| format!("this kernel has no kfunc {name}"))?;
        }
        let id = |i: usize| {
            all.structs
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| format!("this kernel's BTF has no struct {}", MEMBERS.get(i).map_or("?", |m| m.0)))
        };
        Ok(Offsets { m, t_flags, funcs, task: id(TASK_START)?, mount: id(MOUNT_ID)?, rb_node: id(RB_RIGHT)? })
    }

    fn at(&self, i: usize) -> i16 {
        self.m.get(i).copied().unwrap_or(0)
    }

    /// `a` + `b`, the offset of a member of a member.
    fn sum(&self, a: usize, b: usize) -> Result<i16, String> {
        self.at(a).checked_add(self.at(b)).ok_or_else(|| "offset overflow".to_owned())
    }
}

/// The words of a mount's copy (see [`Mount`]).
const W_IDS: usize = 0;
const W_FLAGS: usize = 1;
const W_SB: usize = 2;
const W_SB_FLAGS: usize = 3;
const W_DEV_GROUP: usize = 4;
const W_MASTER_GROUP: usize = 5;
const W_MASTER: usize = 6;
const W_DEVNAME: usize = 7;
const W_IDMAP: usize = 8;
const W_TYPE: usize = 9;
const W_SUBTYPE: usize = 10;
const W_ROOT: usize = 11;
const W_MOUNTPOINT: usize = 12;
/// Where a name's address is stored and loaded back (a number, which the
/// mix may take: the verifier types a load of it as a pointer).
const W_SCRATCH: usize = 13;

/// The program. Its context: the pid (4 bytes), then 4 bytes it sets to 1
/// when it wrote a copy of that process's mount namespace.
fn program(o: &Offsets) -> Result<Vec<Insn>, String> {
    let [from_pid, release, cast, num_new, num_next, num_destroy] = o.funcs;
    let id = |v: u32| i32::try_from(v).map_err(|_| format!("a BTF id too large: {v}"));
    let word = |w: usize| i16::try_from(HEAD + 8 * w).map_err(|_| "a copy too large".to_owned());
    let head = |w: usize| i16::try_from(8 * w).map_err(|_| "a head too large".to_owned());
    let held: i16 = -8; // the task's reference
    let key: i16 = -16;
    let iter: i16 = -24; // struct bpf_iter_num
    // The walk: the tree's node, its mount, the mount's copy, and a path's
    // dentry, end and mix so far; a node saved across a cast.
    let (at_n, at_m, out, at_d, at_e, at_h, at_c): (i16, i16, i16, i16, i16, i16, i16) =
        (-32, -40, -48, -56, -64, -72, -80);
    let max = i32::try_from(MAX_MOUNTS).map_err(|_| "too many mounts".to_owned())?;
    const { assert!(MAX_MOUNTS.is_power_of_two()) };
    let size = i32::try_from(MOUNT).map_err(|_| "a copy too large".to_owned())?;
    let flag = |f: u64| i32::try_from(f).unwrap_or(1);
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1) // the context
        .st_imm(Size::W, Reg::R6, 4, 0)
        .ldx(Size::W, Reg::R1, Reg::R6, 0)
        .call_kfunc(from_pid)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "none")
        .stx(Size::Dw, Reg::Fp, held, Reg::R0)
        .mov(Reg::R7, Reg::R0)
        .st_imm(Size::W, Reg::Fp, key, 0)
        .ld_map(Reg::R1, OUT)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(key))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "release")
        .mov(Reg::R8, Reg::R0);
    // The head, through an untrusted alias of the task (fault-safe loads).
    let root_mnt = o.sum(FS_ROOT, PATH_MNT)?;
    let root_dentry = o.sum(FS_ROOT, PATH_DENTRY)?;
    a.mov(Reg::R1, Reg::R7)
        .mov_imm(Reg::R2, id(o.task)?)
        .call_kfunc(cast)
        .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(TASK_START))
        .stx(Size::Dw, Reg::R8, head(0)?, Reg::R2)
        .st_imm(Size::Dw, Reg::R8, head(1)?, 0)
        .st_imm(Size::Dw, Reg::R8, head(2)?, 0)
        .ldx(Size::Dw, Reg::R3, Reg::R0, o.at(TASK_FS))
        .ldx(Size::Dw, Reg::R2, Reg::R3, root_mnt)
        .stx(Size::Dw, Reg::R8, head(6)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, root_dentry)
        .stx(Size::Dw, Reg::R8, head(7)?, Reg::R2)
        .ldx(Size::Dw, Reg::R3, Reg::R0, o.at(TASK_NSPROXY))
        .ldx(Size::Dw, Reg::R3, Reg::R3, o.at(NSPROXY_MNT_NS))
        .stx(Size::Dw, Reg::R8, head(3)?, Reg::R3)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(NS_EVENT))
        .stx(Size::Dw, Reg::R8, head(4)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R3, o.at(NS_NR_MOUNTS))
        .stx(Size::Dw, Reg::R8, head(5)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(NS_FIRST))
        .stx(Size::Dw, Reg::Fp, at_n, Reg::R2)
        .jmp_imm(Cond::Ne, Reg::R3, 0, "walk")
        .st_imm(Size::Dw, Reg::R8, head(2)?, flag(FLAG_FAILED))
        .ja("copied")
        .label("walk")
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .mov_imm(Reg::R2, 0)
        .mov_imm(Reg::R3, max)
        .call_kfunc(num_new);
    // Each turn: a mount, then the tree's next node. More turns than
    // MAX_MOUNTS: the copy is marked failed.
    a.label("next")
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .call_kfunc(num_next)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "failed")
        .ldx(Size::Dw, Reg::R1, Reg::Fp, at_n)
        .jmp_imm(Cond::Eq, Reg::R1, 0, "done")
        .alu_imm(Alu::Sub, Reg::R1, i32::from(o.at(MOUNT_NODE)))
        .mov_imm(Reg::R2, id(o.mount)?)
        .call_kfunc(cast)
        .stx(Size::Dw, Reg::Fp, at_m, Reg::R0)
        // r4: this mount's copy: the count so far (kept in the head, read
        // back each turn, as `vmas.rs` does) modulo MAX_MOUNTS.
        .ldx(Size::Dw, Reg::R9, Reg::R8, head(1)?)
        .mov(Reg::R4, Reg::R9)
        .alu_imm(Alu::Add, Reg::R9, 1)
        .stx(Size::Dw, Reg::R8, head(1)?, Reg::R9)
        .alu_imm(Alu::And, Reg::R4, max - 1)
        .alu_imm(Alu::Mul, Reg::R4, size)
        .alu(Alu::Add, Reg::R4, Reg::R8)
        .stx(Size::Dw, Reg::Fp, out, Reg::R4);
    let mnt = |f: usize| o.sum(MOUNT_MNT, f);
    let half = |w: usize| word(w).and_then(|o| o.checked_add(4).ok_or_else(|| "offset overflow".to_owned()));
    a.ldx(Size::W, Reg::R2, Reg::R0, o.at(MOUNT_ID))
        .stx(Size::W, Reg::R4, word(W_IDS)?, Reg::R2)
        .ldx(Size::Dw, Reg::R3, Reg::R0, o.at(MOUNT_PARENT))
        .ldx(Size::W, Reg::R2, Reg::R3, o.at(MOUNT_ID))
        .stx(Size::W, Reg::R4, half(W_IDS)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R0, mnt(MNT_FLAGS)?)
        .stx(Size::W, Reg::R4, word(W_FLAGS)?, Reg::R2);
    match o.t_flags {
        Some(t) => a.ldx(Size::W, Reg::R2, Reg::R0, t).stx(Size::W, Reg::R4, half(W_FLAGS)?, Reg::R2),
        None => a.st_imm(Size::W, Reg::R4, half(W_FLAGS)?, 0),
    };
    a.ldx(Size::Dw, Reg::R3, Reg::R0, mnt(MNT_SB)?)
        .stx(Size::Dw, Reg::R4, word(W_SB)?, Reg::R3)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(SB_FLAGS))
        .stx(Size::Dw, Reg::R4, word(W_SB_FLAGS)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R3, o.at(SB_DEV))
        .stx(Size::W, Reg::R4, word(W_DEV_GROUP)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R0, o.at(MOUNT_GROUP))
        .stx(Size::W, Reg::R4, half(W_DEV_GROUP)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(SB_TYPE))
        .stx(Size::Dw, Reg::R4, word(W_TYPE)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(SB_SUBTYPE))
        .stx(Size::Dw, Reg::R4, word(W_SUBTYPE)?, Reg::R2)
        .ldx(Size::Dw, Reg::R5, Reg::R0, o.at(MOUNT_MASTER))
        .stx(Size::Dw, Reg::R4, word(W_MASTER)?, Reg::R5)
        .st_imm(Size::Dw, Reg::R4, word(W_MASTER_GROUP)?, 0)
        .ldx(Size::W, Reg::R2, Reg::R5, o.at(MOUNT_GROUP))
        .stx(Size::W, Reg::R4, word(W_MASTER_GROUP)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(MOUNT_DEVNAME))
        .stx(Size::Dw, Reg::R4, word(W_DEVNAME)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R0, mnt(MNT_IDMAP)?)
        .stx(Size::Dw, Reg::R4, word(W_IDMAP)?, Reg::R2);
    // The two paths' witnesses: the mount's root up to its filesystem's
    // root (a dentry that is its own parent), and its mount point up to its
    // parent mount's root.
    let mix = |a: &mut Asm| {
        a.alu(Alu::Xor, Reg::R5, Reg::R2)
            .alu_imm(Alu::Mul, Reg::R5, MIX)
            .mov(Reg::R2, Reg::R5)
            .alu_imm(Alu::Rsh, Reg::R2, 29)
            .alu(Alu::Xor, Reg::R5, Reg::R2);
    };
    let name_ptr = o.at(D_NAME).checked_add(8).ok_or("offset overflow")?;
    let deep = flag(FLAG_DEEP);
    let walk = |a: &mut Asm, walked: &'static str, until_end: bool, into: usize| -> Result<(), String> {
        a.st_imm(Size::Dw, Reg::Fp, at_h, 0);
        for _ in 0..PATH_STEPS {
            a.ldx(Size::Dw, Reg::R1, Reg::Fp, at_d);
            if until_end {
                a.ldx(Size::Dw, Reg::R3, Reg::Fp, at_e).jmp(Cond::Eq, Reg::R1, Reg::R3, walked);
            }
            a.ldx(Size::Dw, Reg::R3, Reg::R1, o.at(D_PARENT))
                .jmp(Cond::Eq, Reg::R1, Reg::R3, walked)
                .stx(Size::Dw, Reg::Fp, at_d, Reg::R3)
                .ldx(Size::Dw, Reg::R5, Reg::Fp, at_h)
                .ldx(Size::Dw, Reg::R2, Reg::R1, o.at(D_NAME));
            mix(a);
            a.ldx(Size::Dw, Reg::R2, Reg::R1, name_ptr)
                .ldx(Size::Dw, Reg::R4, Reg::Fp, out)
                .stx(Size::Dw, Reg::R4, word(W_SCRATCH)?, Reg::R2)
                .ldx(Size::Dw, Reg::R2, Reg::R4, word(W_SCRATCH)?);
            mix(a);
            a.stx(Size::Dw, Reg::Fp, at_h, Reg::R5);
        }
        // Deeper than the walk: the copy is marked.
        a.ldx(Size::Dw, Reg::R2, Reg::R8, head(2)?)
            .alu_imm(Alu::Or, Reg::R2, deep)
            .stx(Size::Dw, Reg::R8, head(2)?, Reg::R2)
            .label(walked)
            .ldx(Size::Dw, Reg::R5, Reg::Fp, at_h)
            .ldx(Size::Dw, Reg::R4, Reg::Fp, out)
            .stx(Size::Dw, Reg::R4, word(into)?, Reg::R5)
            .st_imm(Size::Dw, Reg::R4, word(W_SCRATCH)?, 0);
        Ok(())
    };
    a.ldx(Size::Dw, Reg::R2, Reg::R0, mnt(MNT_ROOT)?).stx(Size::Dw, Reg::Fp, at_d, Reg::R2);
    walk(&mut a, "root_walked", false, W_ROOT)?;
    a.ldx(Size::Dw, Reg::R0, Reg::Fp, at_m)
        .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(MOUNT_MOUNTPOINT))
        .stx(Size::Dw, Reg::Fp, at_d, Reg::R2)
        .ldx(Size::Dw, Reg::R3, Reg::R0, o.at(MOUNT_PARENT))
        .ldx(Size::Dw, Reg::R2, Reg::R3, mnt(MNT_ROOT)?)
        .stx(Size::Dw, Reg::Fp, at_e, Reg::R2);
    walk(&mut a, "mountpoint_walked", true, W_MOUNTPOINT)?;
    // The next node, as `rb_next`: the leftmost of the right subtree, else
    // the first ancestor reached from a left child.
    a.ldx(Size::Dw, Reg::R1, Reg::Fp, at_n).ldx(Size::Dw, Reg::R2, Reg::R1, o.at(RB_RIGHT)).jmp_imm(
        Cond::Eq,
        Reg::R2,
        0,
        "up",
    );
    for _ in 0..TREE_DEPTH {
        a.ldx(Size::Dw, Reg::R3, Reg::R2, o.at(RB_LEFT))
            .jmp_imm(Cond::Eq, Reg::R3, 0, "down_found")
            .mov(Reg::R2, Reg::R3);
    }
    a.ja("failed").label("down_found").stx(Size::Dw, Reg::Fp, at_n, Reg::R2).ja("next").label("up");
    for _ in 0..TREE_DEPTH {
        a.ldx(Size::Dw, Reg::R3, Reg::R1, o.at(RB_PARENT_COLOR))
            .alu_imm(Alu::And, Reg::R3, -4)
            .jmp_imm(Cond::Eq, Reg::R3, 0, "done")
            .stx(Size::Dw, Reg::Fp, at_c, Reg::R1)
            .mov(Reg::R1, Reg::R3)
            .mov_imm(Reg::R2, id(o.rb_node)?)
            .call_kfunc(cast)
            .ldx(Size::Dw, Reg::R1, Reg::Fp, at_c)
            .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(RB_RIGHT))
            .jmp(Cond::Ne, Reg::R1, Reg::R2, "up_found")
            .mov(Reg::R1, Reg::R0);
    }
    a.ja("failed")
        .label("up_found")
        .stx(Size::Dw, Reg::Fp, at_n, Reg::R0)
        .ja("next")
        .label("failed")
        .ldx(Size::Dw, Reg::R2, Reg::R8, head(2)?)
        .alu_imm(Alu::Or, Reg::R2, flag(FLAG_FAILED))
        .stx(Size::Dw, Reg::R8, head(2)?, Reg::R2)
        .label("done")
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .call_kfunc(num_destroy)
        .label("copied")
        .st_imm(Size::W, Reg::R6, 4, 1)
        .label("release")
        .ldx(Size::Dw, Reg::R1, Reg::Fp, held)
        .call_kfunc(release)
        .label("none")
        .mov_imm(Reg::R0, 0)
        .exit();
    a.finish().map_err(|e| e.0)
}

/// The loaded program, its map, and the map's value mapped.
pub(crate) struct Program {
    prog: OwnedFd,
    /// The first [`PREFIX`] bytes of the map's value, mapped read-only,
    /// and all of it, mapped when a copy first needs more (the kernel maps
    /// every page of a mapping at once: 116 KiB resident where 16 hold
    /// the 145 mounts a copy of a process outside a container rarely
    /// exceeds).
    value: sys::MappedValue,
    whole: std::sync::OnceLock<Option<sys::MappedValue>>,
    len: usize,
    /// Kept open with its mappings.
    /// One run and its read at a time: a run writes the one value.
    running: Mutex<()>,
    map: OwnedFd,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mnts::Program").finish_non_exhaustive()
    }
}

impl Program {
    /// Loads the program where this kernel has every member and kfunc it
    /// names, and checks a copy of fdir's own mount namespace against its
    /// `mountinfo`; `Err(why)` where it cannot be used.
    pub(crate) fn load() -> Result<Program, String> {
        let btf = std::fs::File::open("/sys/kernel/btf/vmlinux")
            .map(btf::Vmlinux::new)
            .map_err(|e| format!("no BTF: /sys/kernel/btf/vmlinux: {e}"))?;
        let offsets = Offsets::of_kernel(&btf)?;
        let len = VALUE.next_multiple_of(rustix::param::page_size());
        let size = u32::try_from(len).map_err(|_| "a value too large".to_owned())?;
        let map = sys::map_create_mmapable(size, 1, "fdir_mnts").map_err(|e| format!("cannot make the map: {e}"))?;
        let insns = program(&offsets)?;
        let prog = sys::load_syscall_with_map(&insns, map.as_fd(), "fdir_mnts")?;
        let value = sys::MappedValue::of_at(map.as_fd(), 0, PREFIX.min(len))
            .map_err(|e| format!("cannot map its value: {e}"))?;
        let p = Program { prog, value, whole: std::sync::OnceLock::new(), len, running: Mutex::new(()), map };
        self_check(&p)?;
        Ok(p)
    }

    /// The copy of the mount namespace of process `pid` started at
    /// `start_ticks` into `out` (replacing it: [`HEAD`] less the start
    /// time, then [`MOUNT`] bytes a mount); `false` where there is none to
    /// use (no such process, a failed walk, a path too deep, too many
    /// mounts).
    pub(crate) fn copy(&self, pid: u32, start_ticks: u64, out: &mut Vec<u8>) -> bool {
        let Ok(_one) = self.running.lock() else { return false };
        let mut ctx = [0u8; 8];
        if let Some(p) = ctx.get_mut(0..4) {
            p.copy_from_slice(&pid.to_ne_bytes());
        }
        if sys::prog_run(self.prog.as_fd(), &mut ctx).is_err() || ctx.get(4..8) != Some(&1u32.to_ne_bytes()[..]) {
            return false;
        }
        let mut head = [0u8; HEAD];
        if !self.value.read(0, &mut head) {
            return false;
        }
        let word = |i: usize| sys::word_at(&head, i).unwrap_or(u64::MAX);
        let (start, count, flags) = (word(0), word(1), word(2));
        let Ok(count) = usize::try_from(count) else { return false };
        if start / NS_PER_TICK != start_ticks || flags != 0 || count > MAX_MOUNTS || count == 0 {
            return false;
        }
        let value = if HEAD + count * MOUNT <= PREFIX.min(self.len) {
            &self.value
        } else {
            let whole = self.whole.get_or_init(|| sys::MappedValue::of_at(self.map.as_fd(), 0, self.len).ok());
            let Some(whole) = whole.as_ref() else { return false };
            whole
        };
        out.clear();
        out.resize(HEAD - 8 + count * MOUNT, 0);
        let (h, rest) = out.split_at_mut(HEAD - 8);
        h.copy_from_slice(head.get(8..).unwrap_or_default());
        value.read(HEAD, rest)
    }
}

/// One mount of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) id: u32,
    pub(crate) parent: u32,
    /// The `vfsmount` flags (`MNT_*`).
    pub(crate) flags: u32,
    /// The propagation flags, where the kernel keeps them apart.
    pub(crate) t_flags: u32,
    pub(crate) sb: u64,
    pub(crate) sb_flags: u64,
    /// The superblock's device, as the kernel encodes it (major in the
    /// upper 12 bits, minor in the lower 20).
    pub(crate) dev: u32,
    pub(crate) group: u32,
    pub(crate) master_group: u64,
    pub(crate) master: u64,
    pub(crate) devname: u64,
    pub(crate) idmap: u64,
    pub(crate) fs_type: u64,
    pub(crate) subtype: u64,
    /// The witnesses of its root and of its mount point.
    pub(crate) root: u64,
    pub(crate) mountpoint: u64,
}

/// The mounts of a copy made by [`Program::copy`].
pub(crate) fn mounts(copy: &[u8]) -> impl Iterator<Item = Mount> + '_ {
    copy.get(HEAD - 8..).unwrap_or_default().chunks_exact(MOUNT).map(|c| {
        let w = |i: usize| sys::word_at(c, i).unwrap_or(0);
        let lo = |i: usize| u32::try_from(w(i) & 0xffff_ffff).unwrap_or(0);
        let hi = |i: usize| u32::try_from(w(i) >> 32).unwrap_or(0);
        Mount {
            id: lo(W_IDS),
            parent: hi(W_IDS),
            flags: lo(W_FLAGS),
            t_flags: hi(W_FLAGS),
            sb: w(W_SB),
            sb_flags: w(W_SB_FLAGS),
            dev: lo(W_DEV_GROUP),
            group: hi(W_DEV_GROUP),
            master_group: w(W_MASTER_GROUP),
            master: w(W_MASTER),
            devname: w(W_DEVNAME),
            idmap: w(W_IDMAP),
            fs_type: w(W_TYPE),
            subtype: w(W_SUBTYPE),
            root: w(W_ROOT),
            mountpoint: w(W_MOUNTPOINT),
        }
    })
}

/// Whether the text of `mountinfo` says what `copy` says: each line's
/// mount is a mount of the copy, in the copy's order (the copy may hold
/// more: a mount outside the reader's root is not printed), with the
/// line's parent, device, and `ro`, `nosuid`, `nodev` and `noexec` among
/// its mount options as the copy's flags say. Does not allocate.
pub(crate) fn agrees(copy: &[u8], text: &[u8]) -> bool {
    let mut all = mounts(copy);
    let mut lines = 0usize;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut fields = line.split(|&b| b == b' ');
        let (Some(id), Some(parent), Some(dev), Some(_root), Some(_point), Some(options)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let (Some(id), Some(parent)) = (dec(id), dec(parent)) else { return false };
        let Some(m) = all.find(|m| u64::from(m.id) == id) else { return false };
        let Some((major, minor)) = dev.iter().position(|&b| b == b':').map(|i| dev.split_at(i)) else {
            return false;
        };
        let (Some(major), Some(minor)) = (dec(major), dec(minor.get(1..).unwrap_or_default())) else { return false };
        let has = |opt: &[u8]| options.split(|&b| b == b',').any(|o| o == opt);
        let flag = |f: u32| m.flags & f != 0;
        if u64::from(m.parent) != parent
            || u64::from(m.dev >> 20) != major
            || u64::from(m.dev & 0xf_ffff) != minor
            || has(b"ro") != flag(MNT_READONLY)
            || has(b"nosuid") != flag(MNT_NOSUID)
            || has(b"nodev") != flag(MNT_NODEV)
            || has(b"noexec") != flag(MNT_NOEXEC)
        {
            return false;
        }
        lines += 1;
    }
    lines > 0
}

/// A copy of fdir's own mount namespace says what its `mountinfo` says
/// (read between two copies that agree with each other).
fn self_check(p: &Program) -> Result<(), String> {
    let me = std::process::id();
    let start = super::vmas::start_ticks_of(me).ok_or("cannot read fdir's own start time")?;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        if !p.copy(me, start, &mut before) {
            return Err("the program made no copy of fdir's own mount namespace".to_owned());
        }
        let text = std::fs::read("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        if p.copy(me, start, &mut after) && before == after {
            return if agrees(&before, &text) {
                Ok(())
            } else {
                Err("a copy of fdir's own mount namespace differs from /proc/self/mountinfo".to_owned())
            };
        }
    }
    Err("fdir's own mount namespace kept changing during the self-check".to_owned())
}

/// A copy that agrees with `text` (tests of what keys a memo): each line's
/// mount with its id, parent, device and flags; its superblock at an
/// address of its device's, and `salt` as both its paths' witnesses.
#[cfg(test)]
pub(crate) fn copy_from_text(text: &str, salt: u64) -> Vec<u8> {
    let mut c = vec![0u8; HEAD - 8];
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        let (id, parent): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let (major, minor) = f[2].split_once(':').unwrap();
        let dev = (major.parse::<u64>().unwrap() << 20) | minor.parse::<u64>().unwrap();
        let options: Vec<&str> = f[5].split(',').collect();
        let flags = [("ro", MNT_READONLY), ("nosuid", MNT_NOSUID), ("nodev", MNT_NODEV), ("noexec", MNT_NOEXEC)]
            .iter()
            .filter(|(o, _)| options.contains(o))
            .fold(0u64, |a, (_, f)| a | u64::from(*f));
        let words = [id | parent << 32, flags, 0xffff_0000_0000 | dev, 0, dev, 0, 0, 0, 0, 0, 0, salt, salt, 0];
        for w in words {
            c.extend_from_slice(&w.to_ne_bytes());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(test: &str) -> Option<Program> {
        match Program::load() {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("SKIP {test}: the program of mounts does not load here: {why}");
                None
            }
        }
    }

    const TABLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
46 27 254:0 /run/firejail/dbus /run/firejail/dbus rw,nosuid,nodev,noexec,relatime - ext4 /dev/vda rw,discard
";

    #[test]
    fn a_copy_agrees_with_the_text_of_its_mounts_only() {
        let copy = copy_from_text(TABLE, 1);
        assert!(agrees(&copy, TABLE.as_bytes()));
        // A mount the text does not print (outside the reader's root): it
        // still agrees.
        let fewer: String = TABLE.lines().skip(1).map(|l| format!("{l}\n")).collect();
        assert!(agrees(&copy, fewer.as_bytes()));
        // Anything else the text says otherwise: another parent, device,
        // order, mount flag, or a mount the copy lacks; no lines at all.
        for other in [
            TABLE.replace("27 1 254:0", "27 2 254:0"),
            TABLE.replace("27 1 254:0", "27 1 254:1"),
            TABLE.replace("/proc rw,relatime", "/proc ro,relatime"),
            TABLE.replace("rw,nosuid,nodev,noexec", "rw,nosuid,nodev"),
            format!("{TABLE}50 27 0:30 / /tmp rw - tmpfs tmpfs rw\n"),
            TABLE.lines().rev().map(|l| format!("{l}\n")).collect(),
            String::new(),
        ] {
            assert!(!agrees(&copy, other.as_bytes()), "{other}");
        }
    }

    /// A child in a mount namespace of its own (`unshare -m`), a tmpfs
    /// mounted in it at `dir/a/b`; killed, and its directory removed, when
    /// dropped. `None` (the skip said) where it cannot be made.
    struct Unshared {
        child: std::process::Child,
        dir: std::path::PathBuf,
    }

    impl Drop for Unshared {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    impl Unshared {
        fn start(test: &str) -> Option<Unshared> {
            let dir = std::env::temp_dir().join(format!("fdir-mnts-{}-{test}", std::process::id()));
            std::fs::create_dir_all(dir.join("a/b")).ok()?;
            let child =
                std::process::Command::new("unshare").args(["-m", "--propagation", "private", "sleep", "1000"]).spawn();
            let Ok(child) = child else {
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!("SKIP {test}: no unshare(1) to make a mount namespace");
                return None;
            };
            let u = Unshared { child, dir };
            // Until unshare has made the namespace and exec'd sleep.
            let pid = u.child.id();
            let own = std::fs::read_link("/proc/self/ns/mnt").ok();
            for _ in 0..200 {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" && std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() != own {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if !u.run(&["mount", "-t", "tmpfs", "fdir-test", &u.path("a/b")]) {
                eprintln!("SKIP {test}: cannot mount a tmpfs in the child's namespace");
                return None;
            }
            Some(u)
        }

        fn path(&self, rel: &str) -> String {
            self.dir.join(rel).display().to_string()
        }

        /// Runs `args` in the child's mount namespace.
        fn run(&self, args: &[&str]) -> bool {
            let pid = self.child.id().to_string();
            std::process::Command::new("nsenter")
                .args(["-t", &pid, "-m", "--"])
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        }

        /// The copy's record of the mount at `rel`, by the id its
        /// `mountinfo` gives it, and the copy's head.
        fn mount_at(&self, p: &Program, rel: &str) -> (Mount, Vec<u8>) {
            let pid = self.child.id();
            let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
            let point = self.path(rel);
            let id: u32 = text
                .lines()
                .find(|l| l.split(' ').nth(4) == Some(point.as_str()))
                .and_then(|l| l.split(' ').next()?.parse().ok())
                .unwrap_or_else(|| panic!("no mount at {point}:\n{text}"));
            let start = super::super::vmas::start_ticks_of(pid).unwrap();
            let mut copy = Vec::new();
            assert!(p.copy(pid, start, &mut copy), "a copy of {pid}'s namespace");
            assert!(agrees(&copy, text.as_bytes()), "the copy agrees with its mountinfo");
            let m = mounts(&copy).find(|m| m.id == id).unwrap();
            (m, copy.get(..HEAD - 8).unwrap().to_vec())
        }
    }

    /// A copy of more mounts than the mapped prefix of the value holds (200
    /// more tmpfs stacked on the child's) maps the whole value and agrees
    /// with its `mountinfo`, between copies of fdir's own namespace (fewer,
    /// from the prefix).
    #[test]
    fn a_copy_past_the_mapped_prefix_agrees_with_its_mountinfo() {
        let test = "a_copy_past_the_mapped_prefix_agrees_with_its_mountinfo";
        let Some(p) = loaded(test) else { return };
        let Some(u) = Unshared::start(test) else { return };
        let stack = format!("for i in $(seq 200); do mount -t tmpfs fdir-test {}; done", u.path("a/b"));
        assert!(u.run(&["sh", "-c", &stack]));
        let me = std::process::id();
        let own = |out: &mut Vec<u8>| super::super::vmas::start_ticks_of(me).is_some_and(|s| p.copy(me, s, out));
        let mut small = Vec::new();
        assert!(own(&mut small), "a copy of fdir's own namespace");
        let pid = u.child.id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let start = super::super::vmas::start_ticks_of(pid).unwrap();
        let mut copy = Vec::new();
        assert!(p.copy(pid, start, &mut copy), "a copy of {} mounts", text.lines().count());
        assert!(text.lines().count() > (PREFIX - HEAD) / MOUNT, "{} mounts", text.lines().count());
        // The text leaves out what is outside the reader's root.
        assert!(mounts(&copy).count() >= text.lines().count());
        assert!(agrees(&copy, text.as_bytes()), "the copy agrees with its mountinfo");
        assert!(own(&mut small), "again");
    }

    /// The copy sees what the kernel's interfaces change, as `mountinfo`
    /// does: a remount read-only (the mount's flags, the namespace's
    /// event), a directory renamed above the mount point (its witness, with
    /// no event), the same witness once renamed back, and a mount made
    /// shared (its peer group).
    #[test]
    fn a_copy_sees_remounts_renames_above_a_mount_point_and_propagation() {
        let test = "a_copy_sees_remounts_renames_above_a_mount_point_and_propagation";
        let Some(p) = loaded(test) else { return };
        let Some(u) = Unshared::start(test) else { return };
        let (first, head) = u.mount_at(&p, "a/b");
        assert_eq!(first.flags & MNT_READONLY, 0);
        assert!(u.run(&["mount", "-o", "remount,ro", &u.path("a/b")]));
        let (ro, ro_head) = u.mount_at(&p, "a/b");
        assert_ne!(ro.flags & MNT_READONLY, 0, "read-only");
        assert_ne!(ro_head, head, "the namespace's event");
        std::fs::rename(u.dir.join("a"), u.dir.join("c")).unwrap();
        let (moved, moved_head) = u.mount_at(&p, "c/b");
        assert_ne!(moved.mountpoint, ro.mountpoint, "the mount point's witness");
        assert_eq!(moved_head, ro_head, "no mount changed");
        std::fs::rename(u.dir.join("c"), u.dir.join("a")).unwrap();
        let (back, _) = u.mount_at(&p, "a/b");
        assert_eq!(back, ro, "renamed back: the same copy");
        assert!(u.run(&["mount", "--make-shared", &u.path("a/b")]));
        let (shared, _) = u.mount_at(&p, "a/b");
        assert_ne!(shared.group, 0, "a peer group");
        assert_eq!(shared.root, back.root);
    }

    #[test]
    fn copies_of_live_processes_agree_with_their_mountinfo() {
        let test = "copies_of_live_processes_agree_with_their_mountinfo";
        let Some(p) = loaded(test) else { return };
        let (mut copied, mut agreed) = (0, 0);
        let mut copy = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Some(start) = super::super::vmas::start_ticks_of(pid) else { continue };
            if !p.copy(pid, start, &mut copy) {
                continue;
            }
            let Ok(text) = std::fs::read(format!("/proc/{pid}/mountinfo")) else { continue };
            let mut again = Vec::new();
            if !p.copy(pid, start, &mut again) || again != copy {
                continue;
            }
            copied += 1;
            if agrees(&copy, &text) {
                agreed += 1;
            } else {
                eprintln!("{pid}: {:?}\n{}", mounts(&copy).collect::<Vec<_>>(), String::from_utf8_lossy(&text));
            }
        }
        eprintln!("{agreed} of {copied} processes' copies agree with their mountinfo");
        assert!(copied > 0);
        assert_eq!(agreed, copied);
    }
}
