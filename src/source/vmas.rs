//! A process's memory mappings as the kernel holds them: the inputs of the
//! `maps` text, copied by an eBPF program, so that a watch reads `maps`
//! only when what it prints may have changed, and a first check none where
//! they are those its baseline kept.
//!
//! The program (`BPF_PROG_TYPE_SYSCALL`, run by `BPF_PROG_TEST_RUN` like
//! the task table's lookup program, `tasks.rs`) finds the task by its pid
//! (`bpf_task_from_pid`) and walks its mappings with the kernel's own
//! iterator (`bpf_iter_task_vma_*`, under the mm's read lock, as `maps` is
//! made). For each mapping it copies, into the value of an array map that
//! fdir maps read-only ([`VMA`] bytes each): its start and end, its flags
//! (the permissions `maps` prints, and more), its page offset, its file (the
//! `struct file`, which fixes the inode, the device and the path's dentry
//! and mount), the file's inode number and device, and of the file's
//! dentry what a rename or an unlink changes: its name's hash and length,
//! its name's address, its parent, and whether it is hashed (an unlinked
//! file prints ` (deleted)`), and a witness of the file's whole path: a
//! mix of what `d_path` prints it from, each dentry's name (hash, length,
//! address) up to its mount's root and each mount crossed (its id) up to
//! the root of its namespace's tree ([`PATH_STEPS`] steps at most, else
//! [`PATH_DEEP`]). The mm's `start_brk`, `brk` and `start_stack` (which
//! name `[heap]` and `[stack]`) and the task's start time come first
//! ([`HEAD`]).
//!
//! What the copy does not hold, and how it is still seen:
//! - the bytes of a name whose hash, length and address a rename kept (a
//!   rename, of the file or a directory above it, to a name of the same
//!   32-bit salted hash and length, stored in place); the path of a file
//!   deeper than the walk; a special mapping's name (`[vdso]`, fixed by
//!   its `vm_ops`): in a watch the text is read every
//!   [`crate::observe::MAPS_TEXT_EVERY`]-th pass regardless, and a
//!   baseline keeps a copy as a form's source only where every path was
//!   walked.
//!
//! A text read is used as the copy's only if the copy is the same after the
//! read as before it, and the text's lines say what the copy says
//! ([`agrees`]: each line's start, end, permissions, offset and inode, and
//! no line more or less); else the text keys its own forms.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use crate::bpf::asm::{Alu, Asm, Cond, Helper, Insn, Label, Map, Reg, Size};
use crate::bpf::{btf, sys};
use crate::canon::maps::{dec, hex};

/// Mappings a copy holds (a power of two); a process with more has its
/// `maps` read.
pub(crate) const MAX_VMAS: usize = 4096;
/// Bytes of one mapping's copy: twelve 8-byte words (see [`Vma`]).
pub(crate) const VMA: usize = 96;
/// Bytes before the mappings: the task's start time (ns since boot), the
/// count of mappings walked, the flags ([`FLAG_FAILED`]),
/// and the mm's `start_brk`, `brk` and `start_stack`.
pub(crate) const HEAD: usize = 48;
/// The bytes of a map value a copy uses.
const VALUE: usize = HEAD + MAX_VMAS * VMA;
/// The bytes of a slot mapped for a copy of at most `(PREFIX - HEAD) /
/// VMA` (170) mappings: a whole slot is mapped only for more.
const PREFIX: usize = 16 * 1024;
/// The iterator could not start (a task without an mm, the mm's lock
/// taken for writing: `mmap_read_trylock` failed).
const FLAG_FAILED: u64 = 1;
/// Nanoseconds a clock tick (as `tasks.rs`).
const NS_PER_TICK: u64 = 10_000_000;

/// `VM_READ`, `VM_WRITE`, `VM_EXEC`, `VM_MAYSHARE`: the flags `maps`
/// prints as `rwxs`/`p`.
const VM_READ: u64 = 0x1;
const VM_WRITE: u64 = 0x2;
const VM_EXEC: u64 = 0x4;
const VM_MAYSHARE: u64 = 0x80;

/// The members read, in [`Offsets`]' order.
const MEMBERS: [(&str, &str); 26] = [
    ("task_struct", "mm"),
    ("task_struct", "start_boottime"),
    ("mm_struct", "start_brk"),
    ("mm_struct", "brk"),
    ("mm_struct", "start_stack"),
    ("vm_area_struct", "vm_start"),
    ("vm_area_struct", "vm_end"),
    ("vm_area_struct", "vm_flags"),
    ("vm_area_struct", "vm_pgoff"),
    ("vm_area_struct", "vm_file"),
    ("file", "f_path"),
    ("file", "f_inode"),
    ("path", "dentry"),
    ("inode", "i_ino"),
    ("inode", "i_sb"),
    ("super_block", "s_dev"),
    ("dentry", "d_name"),
    ("dentry", "d_parent"),
    ("dentry", "d_hash"),
    ("hlist_bl_node", "pprev"),
    // The path's walk: a file's mount, a mount's root, and from a mount
    // (`struct vfsmount` lies inside `struct mount`) its parent, the
    // dentry it is mounted on, and its id.
    ("path", "mnt"),
    ("vfsmount", "mnt_root"),
    ("mount", "mnt"),
    ("mount", "mnt_parent"),
    ("mount", "mnt_mountpoint"),
    ("mount", "mnt_id"),
];

/// The kfuncs the program calls.
const FUNCS: [&str; 6] = [
    "bpf_task_from_pid",
    "bpf_task_release",
    "bpf_iter_task_vma_new",
    "bpf_iter_task_vma_next",
    "bpf_iter_task_vma_destroy",
    "bpf_rdonly_cast",
];

/// The program's one map: the array whose value it writes.
const OUT: Map = Map(0);

/// This kernel's offsets of [`MEMBERS`], and the BTF ids the program names.
struct Offsets {
    m: [i16; 26],
    /// `bpf_task_from_pid`, `bpf_task_release`, the iterator's three, and
    /// `bpf_rdonly_cast`.
    funcs: [u32; 6],
    /// `struct task_struct` and `struct vm_area_struct`, which the casts
    /// name.
    task: u32,
    vma: u32,
    /// `struct mount` and `struct vfsmount`, which the path's walk casts
    /// to.
    mount: u32,
    vfsmount: u32,
}

impl Offsets {
    fn of_kernel(btf: &btf::Vmlinux) -> Result<Offsets, String> {
        let all = btf::find_all(btf, &FUNCS, &MEMBERS, &[], btf::WINDOW)
            .ok_or_else(|| "/sys/kernel/btf/vmlinux is not BTF this build reads".to_owned())?;
        let mut m = [0i16; 26];
        for ((slot, found), (s, name)) in m.iter_mut().zip(&all.members).zip(&MEMBERS) {
            let off = found.ok_or_else(|| format!("this kernel's BTF has no member {s}.{name}"))?;
            *slot = i16::try_from(off).map_err(|_| format!("{s}.{name} lies too far for a load: {off}"))?;
        }
        let mut funcs = [0u32; 6];
        for ((slot, found), name) in funcs.iter_mut().zip(&all.funcs).zip(&FUNCS) {
            *slot = found.ok_or_else(|| format!("this kernel has no kfunc {name}"))?;
        }
        let task = all.structs.first().copied().flatten().ok_or("no struct task_struct")?;
        let vma = all.structs.get(5).copied().flatten().ok_or("no struct vm_area_struct")?;
        let vfsmount = all.structs.get(MNT_ROOT).copied().flatten().ok_or("no struct vfsmount")?;
        let mount = all.structs.get(MOUNT_MNT).copied().flatten().ok_or("no struct mount")?;
        Ok(Offsets { m, funcs, task, vma, mount, vfsmount })
    }

    fn at(&self, i: usize) -> i16 {
        self.m.get(i).copied().unwrap_or(0)
    }
}

const TASK_MM: usize = 0;
const TASK_START: usize = 1;
const MM_START_BRK: usize = 2;
const MM_BRK: usize = 3;
const MM_START_STACK: usize = 4;
const VM_START: usize = 5;
const VM_END: usize = 6;
const VM_FLAGS: usize = 7;
const VM_PGOFF: usize = 8;
const VM_FILE: usize = 9;
const F_PATH: usize = 10;
const F_INODE: usize = 11;
const PATH_DENTRY: usize = 12;
const I_INO: usize = 13;
const I_SB: usize = 14;
const S_DEV: usize = 15;
const D_NAME: usize = 16;
const D_PARENT: usize = 17;
const D_HASH: usize = 18;
const PPREV: usize = 19;
const PATH_MNT: usize = 20;
const MNT_ROOT: usize = 21;
const MOUNT_MNT: usize = 22;
const MOUNT_PARENT: usize = 23;
const MOUNT_MOUNTPOINT: usize = 24;
const MOUNT_ID: usize = 25;

/// The steps of a path's walk: its dentries up to its mount's root, and
/// each mount crossed on the way up to the root of its namespace's tree.
/// A longer path has no witness ([`PATH_DEEP`]).
const PATH_STEPS: usize = 24;
/// The witness of a path the walk did not finish in [`PATH_STEPS`] steps
/// (a finished walk's witness is even).
pub(crate) const PATH_DEEP: u64 = 1;
/// The multiplier of the witness's mix (odd; sign-extended by the ALU).
const MIX: i32 = -1_640_531_535; // 0x9e37_79b1

/// The program. Its context: the pid (4 bytes), the slot of the map to
/// write (4 bytes: the value of that key), then 4 bytes it sets to 1 when
/// it wrote a copy of that process's mappings there.
fn program(o: &Offsets) -> Result<Vec<Insn>, String> {
    let [from_pid, release, iter_new, iter_next, iter_destroy, cast] = o.funcs;
    let id = |v: u32| i32::try_from(v).map_err(|_| format!("a BTF id too large: {v}"));
    let word = |w: usize| i16::try_from(HEAD + 8 * w).map_err(|_| "a copy too large".to_owned());
    let head = |w: usize| i16::try_from(8 * w).map_err(|_| "a head too large".to_owned());
    let held: i16 = -8; // the task's reference
    let key: i16 = -16;
    let iter: i16 = -24; // struct bpf_iter_task_vma
    // The path's walk: the last file walked and its witness, this
    // mapping's copy, and the walk's dentry, mount and mix so far.
    let (prev_file, prev_witness, out, at_d, at_m, at_h): (i16, i16, i16, i16, i16, i16) =
        (-32, -40, -48, -56, -64, -72);
    let mount_mnt = i32::from(o.at(MOUNT_MNT));
    let max = i32::try_from(MAX_VMAS).map_err(|_| "too many mappings".to_owned())?;
    const { assert!(MAX_VMAS.is_power_of_two()) };
    let vma_size = i32::try_from(VMA).map_err(|_| "a copy too large".to_owned())?;
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1) // the context
        .st_imm(Size::W, Reg::R6, 8, 0)
        .ldx(Size::W, Reg::R1, Reg::R6, 0)
        .call_kfunc(from_pid)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "none")
        .stx(Size::Dw, Reg::Fp, held, Reg::R0)
        .mov(Reg::R7, Reg::R0)
        .ldx(Size::W, Reg::R2, Reg::R6, 4) // the slot: a key past the map finds no value
        .stx(Size::W, Reg::Fp, key, Reg::R2)
        .ld_map(Reg::R1, OUT)
        .mov(Reg::R2, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R2, i32::from(key))
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "release")
        .mov(Reg::R8, Reg::R0);
    // The head, read through an untrusted alias of the task (fault-safe
    // loads; a NULL mm reads 0).
    a.mov(Reg::R1, Reg::R7)
        .mov_imm(Reg::R2, id(o.task)?)
        .call_kfunc(cast)
        .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(TASK_START))
        .stx(Size::Dw, Reg::R8, head(0)?, Reg::R2)
        .st_imm(Size::Dw, Reg::R8, head(1)?, 0)
        .st_imm(Size::Dw, Reg::R8, head(2)?, 0)
        .ldx(Size::Dw, Reg::R3, Reg::R0, o.at(TASK_MM))
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(MM_START_BRK))
        .stx(Size::Dw, Reg::R8, head(3)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(MM_BRK))
        .stx(Size::Dw, Reg::R8, head(4)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R3, o.at(MM_START_STACK))
        .stx(Size::Dw, Reg::R8, head(5)?, Reg::R2);
    // The walk: r9 counts the mappings copied.
    a.st_imm(Size::Dw, Reg::Fp, prev_file, 0).st_imm(Size::Dw, Reg::Fp, prev_witness, 0);
    a.mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .mov(Reg::R2, Reg::R7)
        .mov_imm(Reg::R3, 0)
        .call_kfunc(iter_new)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "next")
        .st_imm(Size::Dw, Reg::R8, head(2)?, i32::try_from(FLAG_FAILED).unwrap_or(1))
        .label("next")
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .call_kfunc(iter_next)
        .jmp_imm(Cond::Eq, Reg::R0, 0, "done")
        .mov(Reg::R1, Reg::R0)
        .mov_imm(Reg::R2, id(o.vma)?)
        .call_kfunc(cast)
        // r4: where this mapping's copy goes: the count so far (kept in
        // the head, read back each turn) modulo MAX_VMAS (a power of two).
        // The mask bounds it, and a count read from memory is a value the
        // verifier does not follow: the loop is verified in a few turns,
        // not one per value (a count in a register, tested against a bound,
        // took 11 ms to load for 512 turns and 69 ms for 4096). Past
        // MAX_VMAS the copies wrap, and the count says so
        // (`Program::copy` then makes none).
        .ldx(Size::Dw, Reg::R9, Reg::R8, head(1)?)
        .mov(Reg::R4, Reg::R9)
        .alu_imm(Alu::Add, Reg::R9, 1)
        .stx(Size::Dw, Reg::R8, head(1)?, Reg::R9)
        .alu_imm(Alu::And, Reg::R4, max - 1)
        .alu_imm(Alu::Mul, Reg::R4, vma_size)
        .alu(Alu::Add, Reg::R4, Reg::R8);
    for (w, field) in [(0, VM_START), (1, VM_END), (2, VM_FLAGS), (3, VM_PGOFF), (4, VM_FILE)] {
        a.ldx(Size::Dw, Reg::R2, Reg::R0, o.at(field)).stx(Size::Dw, Reg::R4, word(w)?, Reg::R2);
    }
    // The file (NULL for anonymous memory: the loads through it read 0).
    let dentry = o.at(F_PATH).checked_add(o.at(PATH_DENTRY)).ok_or("offset overflow")?;
    let name_ptr = o.at(D_NAME).checked_add(8).ok_or("offset overflow")?;
    let pprev = o.at(D_HASH).checked_add(o.at(PPREV)).ok_or("offset overflow")?;
    a.ldx(Size::Dw, Reg::R3, Reg::R0, o.at(VM_FILE))
        .ldx(Size::Dw, Reg::R5, Reg::R3, o.at(F_INODE))
        .ldx(Size::Dw, Reg::R2, Reg::R5, o.at(I_INO))
        .stx(Size::Dw, Reg::R4, word(5)?, Reg::R2)
        .ldx(Size::Dw, Reg::R5, Reg::R5, o.at(I_SB))
        .ldx(Size::W, Reg::R2, Reg::R5, o.at(S_DEV))
        .stx(Size::Dw, Reg::R4, word(6)?, Reg::R2)
        .ldx(Size::Dw, Reg::R5, Reg::R3, dentry)
        .ldx(Size::Dw, Reg::R2, Reg::R5, o.at(D_NAME))
        .stx(Size::Dw, Reg::R4, word(7)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R5, name_ptr)
        .stx(Size::Dw, Reg::R4, word(8)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R5, o.at(D_PARENT))
        .stx(Size::Dw, Reg::R4, word(9)?, Reg::R2)
        .ldx(Size::Dw, Reg::R2, Reg::R5, pprev)
        .stx(Size::Dw, Reg::R4, word(10)?, Reg::R2);
    // The path's witness (word 11; 0 for anonymous memory): a mix of what
    // `d_path` prints a path from. Each dentry from the file's up to its
    // mount's root gives its name's hash and length (the hash is salted
    // with the parent's address, so a move shows too) and its name's
    // address; each mount crossed gives its id, and the walk goes on from
    // the dentry it is mounted on, up to the root of its namespace's tree.
    // The mappings of one file lie together: a mapping of the file just
    // walked takes its witness.
    let path_mnt = o.at(F_PATH).checked_add(o.at(PATH_MNT)).ok_or("offset overflow")?;
    let mix = |a: &mut Asm| {
        a.alu(Alu::Xor, Reg::R5, Reg::R2)
            .alu_imm(Alu::Mul, Reg::R5, MIX)
            .mov(Reg::R2, Reg::R5)
            .alu_imm(Alu::Rsh, Reg::R2, 29)
            .alu(Alu::Xor, Reg::R5, Reg::R2);
    };
    a.st_imm(Size::Dw, Reg::R4, word(11)?, 0)
        .jmp_imm(Cond::Eq, Reg::R3, 0, "next")
        .ldx(Size::Dw, Reg::R2, Reg::R4, word(4)?) // the file, as a number
        .ldx(Size::Dw, Reg::R1, Reg::Fp, prev_file)
        .jmp(Cond::Ne, Reg::R2, Reg::R1, "walk")
        .ldx(Size::Dw, Reg::R1, Reg::Fp, prev_witness)
        .stx(Size::Dw, Reg::R4, word(11)?, Reg::R1)
        .ja("next")
        .label("walk")
        .stx(Size::Dw, Reg::Fp, prev_file, Reg::R2)
        .stx(Size::Dw, Reg::Fp, out, Reg::R4)
        .ldx(Size::Dw, Reg::R5, Reg::R3, dentry)
        .stx(Size::Dw, Reg::Fp, at_d, Reg::R5)
        .ldx(Size::Dw, Reg::R5, Reg::R3, path_mnt)
        .stx(Size::Dw, Reg::Fp, at_m, Reg::R5)
        .st_imm(Size::Dw, Reg::Fp, at_h, 0);
    // Unrolled: the two ways of a step end in the same state (a dentry, a
    // `struct vfsmount`, a number), so the verifier checks each step once.
    for step in 0..PATH_STEPS {
        a.label(Label("step", step))
            .ldx(Size::Dw, Reg::R1, Reg::Fp, at_d)
            .ldx(Size::Dw, Reg::R2, Reg::Fp, at_m)
            .ldx(Size::Dw, Reg::R3, Reg::R2, o.at(MNT_ROOT))
            .jmp(Cond::Eq, Reg::R1, Reg::R3, Label("cross", step))
            .ldx(Size::Dw, Reg::R3, Reg::R1, o.at(D_PARENT))
            .jmp(Cond::Eq, Reg::R1, Reg::R3, "walked") // a disconnected root
            .stx(Size::Dw, Reg::Fp, at_d, Reg::R3)
            .ldx(Size::Dw, Reg::R5, Reg::Fp, at_h)
            .ldx(Size::Dw, Reg::R2, Reg::R1, o.at(D_NAME));
        mix(&mut a);
        // The name's address, made a number through the copy's own word
        // (the verifier types a load of it as a pointer, which a mix may
        // not take).
        a.ldx(Size::Dw, Reg::R2, Reg::R1, name_ptr)
            .ldx(Size::Dw, Reg::R4, Reg::Fp, out)
            .stx(Size::Dw, Reg::R4, word(11)?, Reg::R2)
            .ldx(Size::Dw, Reg::R2, Reg::R4, word(11)?);
        mix(&mut a);
        a.stx(Size::Dw, Reg::Fp, at_h, Reg::R5)
            .ja(Label("step", step + 1))
            // The mount's root: its `struct mount` (around the vfsmount),
            // its id, and on from where it is mounted.
            .label(Label("cross", step))
            .alu_imm(Alu::Sub, Reg::R2, mount_mnt)
            .mov(Reg::R1, Reg::R2)
            .mov_imm(Reg::R2, id(o.mount)?)
            .call_kfunc(cast)
            .ldx(Size::W, Reg::R2, Reg::R0, o.at(MOUNT_ID))
            .ldx(Size::Dw, Reg::R5, Reg::Fp, at_h);
        mix(&mut a);
        a.stx(Size::Dw, Reg::Fp, at_h, Reg::R5)
            .ldx(Size::Dw, Reg::R1, Reg::R0, o.at(MOUNT_PARENT))
            .jmp(Cond::Eq, Reg::R1, Reg::R0, "walked") // its tree's root
            .ldx(Size::Dw, Reg::R2, Reg::R0, o.at(MOUNT_MOUNTPOINT))
            .stx(Size::Dw, Reg::Fp, at_d, Reg::R2)
            .alu_imm(Alu::Add, Reg::R1, mount_mnt)
            .mov_imm(Reg::R2, id(o.vfsmount)?)
            .call_kfunc(cast)
            .stx(Size::Dw, Reg::Fp, at_m, Reg::R0);
    }
    let deep = i32::try_from(PATH_DEEP).map_err(|_| "a marker too large".to_owned())?;
    a.label(Label("step", PATH_STEPS))
        .mov_imm(Reg::R5, deep)
        .ja("witness")
        .label("walked")
        .ldx(Size::Dw, Reg::R5, Reg::Fp, at_h)
        .alu_imm(Alu::And, Reg::R5, -2)
        .label("witness")
        .ldx(Size::Dw, Reg::R4, Reg::Fp, out)
        .stx(Size::Dw, Reg::R4, word(11)?, Reg::R5)
        .stx(Size::Dw, Reg::Fp, prev_witness, Reg::R5)
        .ja("next");
    a.label("done")
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, i32::from(iter))
        .call_kfunc(iter_destroy)
        .st_imm(Size::W, Reg::R6, 8, 1)
        .label("release")
        .ldx(Size::Dw, Reg::R1, Reg::Fp, held)
        .call_kfunc(release)
        .label("none")
        .mov_imm(Reg::R0, 0)
        .exit();
    a.finish().map_err(|e| e.0)
}

/// Slots of the map: a copy takes the first slot no other copy holds
/// (else its thread's: [`SLOT`], and waits), so that two cores copy at once
/// and the slots past the cores' are never mapped. (Four: 1.6 MB of kernel
/// memory in all, mapped by fdir only where used.)
const SLOTS: usize = 4;

static NEXT_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// This thread's slot where every slot is taken, given in turn.
    static SLOT: usize = NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SLOTS;
}

/// The loaded program, its map, and the map's values mapped.
pub(crate) struct Program {
    prog: OwnedFd,
    map: OwnedFd,
    /// A value's size: [`VALUE`] rounded up to whole pages, so that each
    /// slot's value is mapped on its own.
    value: usize,
    /// The first [`PREFIX`] bytes of each slot's value, mapped when a
    /// thread of that slot first copies, and the whole value, mapped when
    /// a copy first needs more (the kernel maps all of a mapping's pages at
    /// once: 0.4 MB of resident memory a whole slot, so only the slots in
    /// use are mapped, and a watch of processes of fewer than 170 or so
    /// mappings maps 16 KiB of each).
    values: [std::sync::OnceLock<Option<sys::MappedValue>>; SLOTS],
    wholes: [std::sync::OnceLock<Option<sys::MappedValue>>; SLOTS],
    /// One run and its read at a time in each slot: a run writes its
    /// slot's value (two threads of one slot wait for each other).
    running: [Mutex<()>; SLOTS],
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("vmas::Program").finish_non_exhaustive()
    }
}

impl Program {
    /// Loads the program where this kernel has every member and kfunc it
    /// names and lets a syscall program walk a task's mappings, and checks
    /// a copy of fdir's own mappings against its `maps`; `Err(why)` where
    /// it cannot be used.
    pub(crate) fn load() -> Result<Program, String> {
        let btf = std::fs::File::open("/sys/kernel/btf/vmlinux")
            .map(btf::Vmlinux::new)
            .map_err(|e| format!("no BTF: /sys/kernel/btf/vmlinux: {e}"))?;
        let offsets = Offsets::of_kernel(&btf)?;
        let value = VALUE.next_multiple_of(rustix::param::page_size());
        let size = u32::try_from(value).map_err(|_| "a value too large".to_owned())?;
        let slots = u32::try_from(SLOTS).map_err(|_| "too many slots".to_owned())?;
        let map =
            sys::map_create_mmapable(size, slots, "fdir_vmas").map_err(|e| format!("cannot make the map: {e}"))?;
        let insns = program(&offsets)?;
        let prog = sys::load_syscall_with_map(&insns, map.as_fd(), "fdir_vmas")?;
        let mut p = Program {
            prog,
            map,
            value,
            values: std::array::from_fn(|_| std::sync::OnceLock::new()),
            wholes: std::array::from_fn(|_| std::sync::OnceLock::new()),
            running: std::array::from_fn(|_| Mutex::new(())),
        };
        self_check(&p)?;
        // The loading thread's slot, unmapped: the checking threads map
        // their own.
        for v in p.values.iter_mut().chain(&mut p.wholes) {
            v.take();
        }
        Ok(p)
    }

    /// The value of `slot` mapped up to byte `len` at least (its first
    /// [`PREFIX`] bytes, else all of it), each mapped at its first use;
    /// `None` where it cannot be mapped (that slot then makes no copies).
    fn slot_value(&self, slot: usize, len: usize) -> Option<&sys::MappedValue> {
        let (cell, mapped) = if len <= PREFIX.min(self.value) {
            (self.values.get(slot)?, PREFIX.min(self.value))
        } else {
            (self.wholes.get(slot)?, self.value)
        };
        cell.get_or_init(|| {
            let at = slot.checked_mul(self.value)?;
            sys::MappedValue::of_at(self.map.as_fd(), at, mapped).ok()
        })
        .as_ref()
    }

    /// The copy of the mappings of process `pid` started at `start_ticks`
    /// into `out` (replacing it: [`HEAD`] less the start time, then
    /// [`VMA`] bytes a mapping); `false` where there is none to use (no
    /// such process, a failed walk, too many mappings).
    pub(crate) fn copy(&self, pid: u32, start_ticks: u64, out: &mut Vec<u8>) -> bool {
        let free = self.running.iter().enumerate().find_map(|(i, m)| m.try_lock().ok().map(|g| (i, g)));
        let Some((slot, _one)) = free.or_else(|| {
            let slot = SLOT.with(|s| *s);
            self.running.get(slot).and_then(|m| m.lock().ok()).map(|g| (slot, g))
        }) else {
            return false;
        };
        let (Ok(key), Some(values)) = (u32::try_from(slot), self.slot_value(slot, HEAD)) else { return false };
        let mut ctx = [0u8; 12];
        if let Some(p) = ctx.get_mut(0..4) {
            p.copy_from_slice(&pid.to_ne_bytes());
        }
        if let Some(k) = ctx.get_mut(4..8) {
            k.copy_from_slice(&key.to_ne_bytes());
        }
        if sys::prog_run(self.prog.as_fd(), &mut ctx).is_err() || ctx.get(8..12) != Some(&1u32.to_ne_bytes()[..]) {
            return false;
        }
        let mut head = [0u8; HEAD];
        if !values.read(0, &mut head) {
            return false;
        }
        let word = |i: usize| sys::word_at(&head, i).unwrap_or(u64::MAX);
        let (start, count, flags) = (word(0), word(1), word(2));
        let Ok(count) = usize::try_from(count) else { return false };
        if start / NS_PER_TICK != start_ticks || flags != 0 || count > MAX_VMAS {
            return false;
        }
        let Some(values) = self.slot_value(slot, HEAD + count * VMA) else { return false };
        out.clear();
        out.resize(HEAD - 8 + count * VMA, 0);
        let (h, rest) = out.split_at_mut(HEAD - 8);
        h.copy_from_slice(head.get(8..).unwrap_or_default());
        values.read(HEAD, rest)
    }
}

/// The start time of process `pid` in clock ticks, from its `stat`.
pub(crate) fn start_ticks_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    super::stat::parse_stat(&stat).map(|(_, _, start)| start)
}

/// One mapping of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vma {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) flags: u64,
    pub(crate) pgoff: u64,
    /// The `struct file`'s address; 0: anonymous memory.
    pub(crate) file: u64,
    pub(crate) ino: u64,
    pub(crate) dev: u64,
    pub(crate) name_hash_len: u64,
    pub(crate) name: u64,
    pub(crate) parent: u64,
    /// The dentry's `d_hash.pprev`: 0 when unhashed (unlinked).
    pub(crate) hashed: u64,
    /// The witness of the file's path (0 for anonymous memory,
    /// [`PATH_DEEP`] for a path too long to walk).
    pub(crate) path: u64,
}

/// The mappings of a copy made by [`Program::copy`].
pub(crate) fn vmas(copy: &[u8]) -> impl Iterator<Item = Vma> + '_ {
    copy.get(HEAD - 8..).unwrap_or_default().chunks_exact(VMA).map(|c| {
        let w = |i: usize| sys::word_at(c, i).unwrap_or(0);
        Vma {
            start: w(0),
            end: w(1),
            flags: w(2),
            pgoff: w(3),
            file: w(4),
            ino: w(5),
            dev: w(6),
            name_hash_len: w(7),
            name: w(8),
            parent: w(9),
            hashed: w(10),
            path: w(11),
        }
    })
}

/// Whether every file's path in `copy` was walked (none deeper than the
/// walk): then the copy fixes every path `maps` prints.
pub(crate) fn paths_walked(copy: &[u8]) -> bool {
    vmas(copy).all(|v| v.file == 0 || v.path != PATH_DEEP)
}

/// Whether the text of `maps` says what `copy` says: as many lines as
/// mappings (and the gate area's, `[vsyscall]`, last), and each line's
/// start, end, permissions, offset and inode those of its mapping. Does not
/// allocate.
pub(crate) fn agrees(copy: &[u8], text: &[u8]) -> bool {
    let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    for v in vmas(copy) {
        let Some(line) = lines.next() else { return false };
        if !line_agrees(&v, line) {
            return false;
        }
    }
    // The gate area (`[vsyscall]` on x86_64) is not the process's: `maps`
    // prints it last for every process, as the boot set it.
    lines.next().is_none_or(|last| last.ends_with(b" [vsyscall]") && lines.next().is_none())
}

/// `start-end perms offset dev inode ...` against `v`.
fn line_agrees(v: &Vma, line: &[u8]) -> bool {
    let mut fields = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let (Some(range), Some(perms), Some(offset), Some(_dev), Some(inode)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let Some((start, end)) = range.iter().position(|&b| b == b'-').map(|i| range.split_at(i)) else { return false };
    let bit = |flag: u64, c: u8| if v.flags & flag != 0 { c } else { b'-' };
    let want = [
        bit(VM_READ, b'r'),
        bit(VM_WRITE, b'w'),
        bit(VM_EXEC, b'x'),
        if v.flags & VM_MAYSHARE != 0 { b's' } else { b'p' },
    ];
    // `maps` prints a file's offset in bytes; anonymous memory's as 0.
    let offset_want = if v.file != 0 { v.pgoff.checked_mul(page_size()) } else { Some(0) };
    hex(start) == Some(v.start)
        && hex(end.get(1..).unwrap_or_default()) == Some(v.end)
        && perms == want
        && hex(offset) == offset_want
        && dec(inode) == Some(if v.file != 0 { v.ino } else { 0 })
}

fn page_size() -> u64 {
    u64::try_from(rustix::param::page_size()).unwrap_or(4096)
}

/// A copy of fdir's own mappings says what its `maps` says (read between
/// two copies that agree with each other: fdir's threads may map memory
/// meanwhile, so a few tries).
fn self_check(p: &Program) -> Result<(), String> {
    let me = std::process::id();
    let start = start_ticks_of(me).ok_or("cannot read fdir's own start time")?;
    // Every buffer is made before the first copy: an allocation between
    // the copies would map memory of its own.
    let (mut before, mut after) =
        (Vec::with_capacity(HEAD + MAX_VMAS * VMA), Vec::with_capacity(HEAD + MAX_VMAS * VMA));
    let mut text = Vec::with_capacity(1 << 20);
    let mut file = std::fs::File::open("/proc/self/maps").map_err(|e| format!("/proc/self/maps: {e}"))?;
    for _ in 0..5 {
        if !p.copy(me, start, &mut before) {
            return Err("the program made no copy of fdir's own mappings".to_owned());
        }
        text.clear();
        read_at_start(&mut file, &mut text).map_err(|e| format!("/proc/self/maps: {e}"))?;
        if p.copy(me, start, &mut after) && before == after {
            return if agrees(&before, &text) {
                Ok(())
            } else {
                Err("a copy of fdir's own mappings differs from /proc/self/maps".to_owned())
            };
        }
    }
    Err("fdir's own mappings kept changing during the self-check".to_owned())
}

/// Reads `file` from its start into `buf`'s spare room (no allocation while
/// it has room).
fn read_at_start(file: &mut std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::{Read as _, Seek as _};
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// A copy that agrees with `text` (tests of what keys a memo): each line's
/// start, end, permissions, offset and inode; a file at an address of its
/// own (its inode's), and `salt` in every mapping's name word.
#[cfg(test)]
pub(crate) fn copy_from_text(text: &str, salt: u64) -> Vec<u8> {
    let mut c = vec![0u8; HEAD - 8];
    for line in text.lines().filter(|l| !l.is_empty() && !l.ends_with(" [vsyscall]")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (start, end) = f[0].split_once('-').unwrap();
        let perms = f[1].as_bytes();
        let flags = [(0, VM_READ), (1, VM_WRITE), (2, VM_EXEC)]
            .iter()
            .filter(|(i, _)| perms[*i] != b'-')
            .fold(if perms[3] == b's' { VM_MAYSHARE } else { 0 }, |a, (_, b)| a | b);
        let ino: u64 = f[4].parse().unwrap();
        let file = if ino == 0 { 0 } else { 0xffff_0000_0000 | ino };
        let pgoff = u64::from_str_radix(f[2], 16).unwrap() / page_size();
        let words = [
            hex(start.as_bytes()).unwrap(),
            hex(end.as_bytes()).unwrap(),
            flags,
            pgoff,
            file,
            ino,
            0,
            salt,
            0,
            0,
            1,
            ino << 1,
        ];
        for w in words {
            c.extend_from_slice(&w.to_ne_bytes());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_of(rows: &[Vma]) -> Vec<u8> {
        let mut c = vec![0u8; HEAD - 8];
        for v in rows {
            for w in [
                v.start,
                v.end,
                v.flags,
                v.pgoff,
                v.file,
                v.ino,
                v.dev,
                v.name_hash_len,
                v.name,
                v.parent,
                v.hashed,
                v.path,
            ] {
                c.extend_from_slice(&w.to_ne_bytes());
            }
        }
        c
    }

    fn vma(start: u64, end: u64, flags: u64, pgoff: u64, file: u64, ino: u64) -> Vma {
        let path = if file != 0 { 2 } else { 0 };
        Vma { start, end, flags, pgoff, file, ino, dev: 0, name_hash_len: 0, name: 0, parent: 0, hashed: 1, path }
    }

    #[test]
    fn a_copy_agrees_with_the_text_of_its_mappings_only() {
        let page = page_size();
        let rows = [
            vma(0x5000, 0x7000, VM_READ | VM_EXEC, 2, 0xffff_1000, 1234),
            vma(0x7000, 0x8000, VM_READ | VM_WRITE, 0, 0, 0),
            vma(0x9000, 0xa000, VM_READ | VM_MAYSHARE, 0, 0xffff_2000, 99),
        ];
        let copy = copy_of(&rows);
        let text = format!(
            "00005000-00007000 r-xp {:08x} 08:01 1234       /usr/lib/x\n\
             00007000-00008000 rw-p 00000000 00:00 0 \n\
             00009000-0000a000 r--s 00000000 00:05 99    /dev/zero (deleted)\n",
            2 * page
        );
        assert!(agrees(&copy, text.as_bytes()));
        let gate = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
        assert!(agrees(&copy, format!("{text}{gate}").as_bytes()), "the gate area, last");
        for (what, bad) in [
            ("an end", text.replace("00007000 r-xp", "00007001 r-xp")),
            ("permissions", text.replace("r-xp", "rwxp")),
            ("shared", text.replace("r--s", "r--p")),
            ("an inode", text.replace(" 1234 ", " 1235 ")),
            ("an offset", text.replace(&format!("{:08x}", 2 * page), "00000000")),
            ("a line more", format!("{text}0000b000-0000c000 rw-p 00000000 00:00 0\n")),
            ("a line more before the gate area", format!("{text}0000b000-0000c000 rw-p 00000000 00:00 0\n{gate}")),
            ("a line less", text.lines().take(2).map(|l| format!("{l}\n")).collect()),
        ] {
            assert!(!agrees(&copy, bad.as_bytes()), "{what}");
        }
        assert!(!agrees(&copy, b""), "no text");
        assert!(agrees(&copy_from_text(&text, 7), text.as_bytes()), "copy_from_text agrees");
    }

    /// This kernel's copies of real processes say what their `maps` say.
    #[test]
    fn copies_of_live_processes_agree_with_their_maps() {
        if !super::super::tasks::may_load() {
            eprintln!("SKIP copies_of_live_processes_agree_with_their_maps: not allowed to load eBPF here");
            return;
        }
        let Some(p) = loaded("copies_of_live_processes_agree_with_their_maps") else { return };
        let (mut before, mut after) = (Vec::new(), Vec::new());
        let (mut agreed, mut asked) = (0, 0);
        for pid in crate::source::procfs::live_processes().unwrap_or_default() {
            let Some(start) = start_ticks_of(pid) else { continue };
            let Ok(text) = std::fs::read(format!("/proc/{pid}/maps")) else { continue };
            if text.is_empty() {
                continue; // a kernel thread
            }
            asked += 1;
            if p.copy(pid, start, &mut before) && p.copy(pid, start, &mut after) && before == after {
                let Ok(again) = std::fs::read(format!("/proc/{pid}/maps")) else { continue };
                if again == text {
                    assert!(agrees(&before, &text), "pid {pid}: the copy differs from its maps");
                    agreed += 1;
                }
            }
        }
        eprintln!("{agreed} of {asked} processes' copies compared with their maps");
        assert!(agreed * 2 > asked, "most processes' mappings hold still for a copy: {agreed} of {asked}");
    }

    /// The program, loaded; `None` (and the skip said, with why) where it
    /// does not load here.
    fn loaded(test: &str) -> Option<Program> {
        Program::load().map_err(|why| eprintln!("SKIP {test}: the program of mappings does not load here: {why}")).ok()
    }

    /// A child `python3 -c script args...` once it printed its first line
    /// (`ready`: what it was to set up is done), and that line; `None`
    /// where there is no `python3`.
    fn python(script: &str, args: &[&std::path::Path]) -> Option<(std::process::Child, String)> {
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        Some((child, line))
    }

    /// The witnesses of the files a child `python3` maps, by the file's
    /// inode (a file's mappings share one).
    fn witnesses(p: &Program, pid: u32, start: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        assert!(p.copy(pid, start, &mut out), "a copy of {pid}");
        let mut w: Vec<(u64, u64)> = vmas(&out).filter(|v| v.file != 0).map(|v| (v.ino, v.path)).collect();
        w.dedup();
        w
    }

    /// A directory renamed above a mapped file, and a mount moved above
    /// one, change the witness of its path; renamed back, the witness is
    /// the first again. A path deeper than the walk has none.
    #[test]
    fn a_path_witness_sees_directories_renamed_and_mounts_moved_above_a_file() {
        let test = "a_path_witness_sees_directories_renamed_and_mounts_moved_above_a_file";
        let Some(p) = loaded(test) else { return };
        let Ok(dir) = tempfile::tempdir() else { return };
        let top = dir.path().join("a");
        let deep = (0..PATH_STEPS + 2).fold(dir.path().join("d"), |p, i| p.join(format!("{i}")));
        std::fs::create_dir_all(top.join("b")).unwrap();
        std::fs::create_dir_all(&deep).unwrap();
        for f in [top.join("b/code"), deep.join("code")] {
            std::fs::write(&f, vec![0xc3u8; 8192]).unwrap();
        }
        let script = "import mmap, sys\n\
            fs = [open(f, 'rb') for f in sys.argv[1:]]\n\
            m = [mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ | mmap.PROT_EXEC) for f in fs]\n\
            print('ready', flush=True)\nsys.stdin.read()\n";
        let Some((mut child, line)) = python(script, &[&top.join("b/code"), &deep.join("code")]) else {
            eprintln!("SKIP {test}: no python3 to map the files");
            return;
        };
        let pid = child.id();
        let ino = |f: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(f).unwrap());
        let (code, deep_code) = (ino(&top.join("b/code")), ino(&deep.join("code")));
        let start = start_ticks_of(pid).unwrap_or(0);
        let of = |w: &[(u64, u64)], i: u64| w.iter().find(|(n, _)| *n == i).map(|(_, p)| *p);
        let first = witnesses(&p, pid, start);
        std::fs::rename(&top, dir.path().join("c")).unwrap();
        let renamed = witnesses(&p, pid, start);
        std::fs::rename(dir.path().join("c"), &top).unwrap();
        let back = witnesses(&p, pid, start);
        // A mount moved: a tmpfs holding a copy of the file, mapped, then
        // moved to another directory.
        let moved = (|| {
            let (m1, m2) = (dir.path().join("m1"), dir.path().join("m2"));
            std::fs::create_dir_all(&m1).ok()?;
            std::fs::create_dir_all(&m2).ok()?;
            let mounted = std::process::Command::new("mount").args(["-t", "tmpfs", "fdirtest"]).arg(&m1).status();
            if !mounted.is_ok_and(|s| s.success()) {
                return None;
            }
            let umount = |at: &std::path::Path| {
                let _ = std::process::Command::new("umount").arg(at).stderr(std::process::Stdio::null()).status();
            };
            let r = (|| {
                std::fs::write(m1.join("code"), vec![0xc3u8; 8192]).ok()?;
                let (mut c, _) = python(script, &[&m1.join("code")])?;
                let s = start_ticks_of(c.id()).unwrap_or(0);
                let file = ino(&m1.join("code"));
                let before = of(&witnesses(&p, c.id(), s), file);
                let ok = std::process::Command::new("mount").arg("--move").arg(&m1).arg(&m2).status();
                let after = ok.is_ok_and(|s| s.success()).then(|| of(&witnesses(&p, c.id(), s), file));
                let _ = c.kill();
                let _ = c.wait();
                Some((before, after?))
            })();
            umount(&m1);
            umount(&m2);
            r
        })();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(line.trim(), "ready");
        let w = of(&first, code).expect("the file's witness");
        assert!(w != 0 && w != PATH_DEEP && w % 2 == 0, "a walked path's witness: {w:#x}");
        assert_eq!(of(&first, deep_code), Some(PATH_DEEP), "a path deeper than the walk");
        assert_ne!(of(&renamed, code), Some(w), "a directory above the file renamed");
        assert_eq!(of(&back, code), Some(w), "renamed back");
        match moved {
            Some((b, a)) => {
                assert!(b.is_some_and(|b| b % 2 == 0 && b != 0), "a file on a tmpfs: {b:?}");
                assert_ne!(b, a, "a mount moved above the file");
            }
            None => eprintln!("SKIP {test} (a mount moved): cannot mount a tmpfs here"),
        }
    }

    /// Two threads copy two processes at once, each into its own slot:
    /// every copy is its own process's (two idle `sleep` children).
    #[test]
    fn two_threads_copy_at_once_each_its_own_process() {
        let Some(p) = loaded("two_threads_copy_at_once_each_its_own_process") else { return };
        let children: Vec<std::process::Child> =
            (0..2).filter_map(|_| std::process::Command::new("sleep").arg("30").spawn().ok()).collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let pids: Vec<(u32, Option<u64>)> = children.iter().map(|c| (c.id(), start_ticks_of(c.id()))).collect();
        let runs: Vec<(usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = pids
                .iter()
                .map(|&(pid, start)| {
                    let p = &p;
                    s.spawn(move || {
                        let (mut first, mut again) = (Vec::new(), Vec::new());
                        let Some(start) = start else { return (0, 0) };
                        if !p.copy(pid, start, &mut first) {
                            return (0, 0);
                        }
                        let same = (0..300).filter(|_| p.copy(pid, start, &mut again) && again == first).count();
                        (same, first.len())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or((0, 0))).collect()
        });
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert_eq!(pids.len(), 2, "two sleep children");
        for (same, len) in runs {
            assert!(len > 0, "a copy was made");
            assert_eq!(same, 300, "every copy of an idle process is its first");
        }
    }

    /// A copy of more mappings than the mapped prefix of a slot holds (a
    /// child of 1,000 mappings) maps the whole slot and agrees with its
    /// `maps`, between copies of this process (fewer, from the prefix).
    #[test]
    fn a_copy_past_the_mapped_prefix_agrees_with_its_maps() {
        let test = "a_copy_past_the_mapped_prefix_agrees_with_its_maps";
        let Some(p) = loaded(test) else { return };
        let script = "import mmap, sys\n\
            m = [mmap.mmap(-1, 4096, prot=(mmap.PROT_READ if i % 2 else mmap.PROT_READ | mmap.PROT_WRITE)) for i in range(1000)]\n\
            print('ready', flush=True)\nsys.stdin.read()\n";
        let Some((mut child, line)) = python(script, &[]) else {
            eprintln!("SKIP {test}: no python3 to map the pages");
            return;
        };
        let me = std::process::id();
        let own = |out: &mut Vec<u8>| start_ticks_of(me).is_some_and(|s| p.copy(me, s, out));
        let mut small = Vec::new();
        let small_made = own(&mut small);
        let pid = child.id();
        let mut out = Vec::new();
        let (text, made) = loop {
            let before = std::fs::read(format!("/proc/{pid}/maps")).unwrap_or_default();
            let made = start_ticks_of(pid).is_some_and(|s| p.copy(pid, s, &mut out));
            if std::fs::read(format!("/proc/{pid}/maps")).unwrap_or_default() == before {
                break (before, made);
            }
        };
        let again = own(&mut small);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(line.trim(), "ready");
        assert!(small_made && again, "copies of this process");
        let lines = text.iter().filter(|&&b| b == b'\n').count();
        assert!(lines > (PREFIX - HEAD) / VMA && lines < MAX_VMAS, "{lines} mappings");
        assert!(made, "a copy of {lines} mappings");
        // Every mapping but the gate page (`[vsyscall]`), which no VMA holds.
        assert!(vmas(&out).count() + 1 >= lines, "{} of {lines}", vmas(&out).count());
        assert!(agrees(&out, &text), "the copy agrees with maps");
    }

    /// A process of more mappings than a copy holds (a child that maps
    /// 4,200 pages of alternating permissions) has no copy.
    #[test]
    fn a_process_of_more_mappings_than_a_copy_holds_has_none() {
        let test = "a_process_of_more_mappings_than_a_copy_holds_has_none";
        let Some(p) = loaded(test) else { return };
        let script = "import mmap, sys\n\
            m = [mmap.mmap(-1, 4096, prot=(mmap.PROT_READ if i % 2 else mmap.PROT_READ | mmap.PROT_WRITE)) for i in range(4200)]\n\
            print('ready', flush=True)\nsys.stdin.read()\n";
        let Some((mut child, line)) = python(script, &[]) else {
            eprintln!("SKIP {test}: no python3 to map the pages");
            return;
        };
        let pid = child.id();
        let start = start_ticks_of(pid);
        let lines = std::fs::read_to_string(format!("/proc/{pid}/maps")).map(|t| t.lines().count()).unwrap_or(0);
        let mut out = Vec::new();
        let made = start.is_some_and(|s| p.copy(pid, s, &mut out));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(line.trim(), "ready");
        assert!(lines > MAX_VMAS, "{lines} mappings");
        assert!(!made, "a copy of {lines} mappings");
    }
}
