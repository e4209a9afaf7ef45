//! Cgroup control values read from the kernel's own structs: one run of an
//! eBPF program gives every value the `cgroup-limits` subsystem reads from
//! most of a process's cgroup control files, in place of a `pread` of each
//! (85 files a process on this project's machine: nine v1 hierarchies and
//! the cgroup2 mount, and the memory cgroup's ancestors).
//!
//! The program (`BPF_PROG_TYPE_SYSCALL`, run by `BPF_PROG_TEST_RUN` like the
//! task table's lookup program, `tasks.rs`) finds the task by its pid
//! (`bpf_task_from_pid`), and for each controller the process's css
//! (`task->cgroups->subsys[ssid]`, and `dfl_cgrp` for cgroup2) walks up to
//! [`LEVELS`] levels of `css->parent`, copying at each level the cgroup's
//! identity (its kernfs node id, which is the inode of its directory; its
//! hierarchy's id, as `/proc/PID/cgroup` numbers it) and the fields the
//! kernel formats the control files from: `cgroup->flags`
//! (`notify_on_release`, `cgroup.clone_children`), the root's
//! `release_agent_path`, cgroup2's `subtree_control` and `max_*`, and the
//! controllers' own (`mem_cgroup`, `task_group`, `cpuset`, `pids_cgroup`).
//! The offsets and constants come from the kernel's BTF; the verifier
//! checks each direct load, and the controllers' fields (past the css a
//! pointer is typed as) are read with `bpf_probe_read_kernel`.
//!
//! Rust code then makes each file's text from those numbers as the kernel
//! does ([`Program::format`]). What makes it honest:
//! - before use, the text of every file of fdir's own cgroups is compared
//!   with the file, record by record as `cgroup-limits` keeps them
//!   ([`self_check`]); a formatter that differs is not used (said once),
//!   and where nothing compares, the program is not used at all;
//! - a value is used only for the directory whose inode is the kernfs id
//!   the program read, in the hierarchy of the id it read, for the process
//!   pinned (pid and start time) and neither exiting nor exited; anything
//!   else (a thread in another cgroup, a cgroup deeper than [`LEVELS`], a
//!   file with no formatter: `devices.list`, `blkio.throttle.*`, a named
//!   hierarchy's files) is read from its file as before;
//! - a read after a drift, and a confirming re-read, read the files
//!   (`tasks::bypassed`), so a formatter wrong for a value it never saw at
//!   the self-check costs a read, not a false alarm;
//! - a bit flipped in a field shows in the program's copy as in the file:
//!   both are made from the same memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};

use crate::bpf::asm::{Alu, Asm, Cond, Helper, Insn, Label, Reg, Size};
use crate::bpf::{btf, sys};
use crate::canon::{Canon, cgroup_limits};

/// The levels of a chain read: the process's cgroup and its ancestors, up
/// to this many (a cgroup deeper than this has its upper ancestors read
/// from their files).
const LEVELS: usize = 8;

/// What the levels of a chain hold beyond the cgroup's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A controller with no field read here (its hierarchy's core files).
    Core,
    /// cgroup2's own: `subtree_control`, `max_descendants`, `max_depth`.
    Unified,
    Memory,
    Cpu,
    Cpuset,
    Pids,
}

impl Kind {
    /// The slots of a level beyond the three every level has (kernfs id,
    /// cgroup flags, depth).
    fn extra_slots(self) -> usize {
        match self {
            Kind::Core => 0,
            Kind::Unified => 3,
            Kind::Memory => MEMORY.len(),
            Kind::Cpu => CPU.len(),
            // flags, relax level, then the cpus (8 slots) and mems (16).
            Kind::Cpuset => 2 + 8 + 16,
            Kind::Pids => 1,
        }
    }
}

/// The controllers, by the enumerator of their id (`enum cgroup_subsys_id`;
/// one this kernel does not build is not in its BTF, and not read).
const CONTROLLERS: [(&str, Kind); 15] = [
    ("cpuset_cgrp_id", Kind::Cpuset),
    ("cpu_cgrp_id", Kind::Cpu),
    ("cpuacct_cgrp_id", Kind::Core),
    ("io_cgrp_id", Kind::Core),
    ("memory_cgrp_id", Kind::Memory),
    ("devices_cgrp_id", Kind::Core),
    ("freezer_cgrp_id", Kind::Core),
    ("net_cls_cgrp_id", Kind::Core),
    ("perf_event_cgrp_id", Kind::Core),
    ("net_prio_cgrp_id", Kind::Core),
    ("hugetlb_cgrp_id", Kind::Core),
    ("pids_cgrp_id", Kind::Pids),
    ("rdma_cgrp_id", Kind::Core),
    ("misc_cgrp_id", Kind::Core),
    ("dmem_cgrp_id", Kind::Core),
];

/// The other enumerators: the size of `css_set->subsys`, the bits of
/// `cgroup->flags`, and those of `cpuset->flags` in the order of
/// [`CPUSET_FLAG_FILES`].
const ENUMS: [&str; 10] = [
    "CGROUP_SUBSYS_COUNT",
    "CGRP_NOTIFY_ON_RELEASE",
    "CGRP_CPUSET_CLONE_CHILDREN",
    "CS_CPU_EXCLUSIVE",
    "CS_MEM_EXCLUSIVE",
    "CS_MEM_HARDWALL",
    "CS_MEMORY_MIGRATE",
    "CS_SCHED_LOAD_BALANCE",
    "CS_SPREAD_PAGE",
    "CS_SPREAD_SLAB",
];

/// The cpuset flag files, each with its `CS_*` bit (in [`ENUMS`] from 3).
const CPUSET_FLAG_FILES: [&str; 7] = [
    "cpuset.cpu_exclusive",
    "cpuset.mem_exclusive",
    "cpuset.mem_hardwall",
    "cpuset.memory_migrate",
    "cpuset.sched_load_balance",
    "cpuset.memory_spread_page",
    "cpuset.memory_spread_slab",
];

/// The members read, by (struct, member).
const MEMBERS: [(&str, &str); 51] = [
    ("task_struct", "pid"),
    ("task_struct", "tgid"),
    ("task_struct", "exit_state"),
    ("task_struct", "flags"),
    ("task_struct", "start_boottime"),
    ("task_struct", "cgroups"),
    ("css_set", "subsys"),
    ("css_set", "dfl_cgrp"),
    ("cgroup_subsys_state", "cgroup"),
    ("cgroup_subsys_state", "parent"),
    ("cgroup", "self"),
    ("cgroup", "flags"),
    ("cgroup", "level"),
    ("cgroup", "kn"),
    ("cgroup", "root"),
    ("cgroup", "subtree_control"),
    ("cgroup", "max_descendants"),
    ("cgroup", "max_depth"),
    ("kernfs_node", "id"),
    ("cgroup_root", "hierarchy_id"),
    ("cgroup_root", "release_agent_path"),
    // 21: memory
    ("mem_cgroup", "css"),
    ("mem_cgroup", "memory"),
    ("mem_cgroup", "kmem"),
    ("mem_cgroup", "tcpmem"),
    ("page_counter", "max"),
    ("mem_cgroup", "soft_limit"),
    ("mem_cgroup", "swappiness"),
    ("mem_cgroup", "oom_kill_disable"),
    // 29: cpu
    ("task_group", "css"),
    ("task_group", "shares"),
    ("task_group", "idle"),
    ("task_group", "rt_bandwidth"),
    ("rt_bandwidth", "rt_period"),
    ("rt_bandwidth", "rt_runtime"),
    ("task_group", "cfs_bandwidth"),
    ("cfs_bandwidth", "period"),
    ("cfs_bandwidth", "quota"),
    ("cfs_bandwidth", "burst"),
    // 39: cpuset
    ("cpuset", "css"),
    ("cpuset", "flags"),
    ("cpuset", "relax_domain_level"),
    ("cpuset", "cpus_allowed"),
    ("cpuset", "mems_allowed"),
    ("cpuset", "effective_cpus"),
    // 45: pids
    ("pids_cgroup", "css"),
    ("pids_cgroup", "limit"),
    // 47: fields some kernels still have (their files are then read)
    ("mem_cgroup", "use_hierarchy"),
    ("mem_cgroup", "move_charge_at_immigrate"),
    // 49: `memsw`, in an anonymous union with `swap` right after `memory`
    // (found by the struct's size: a union whose end is the next member's
    // offset)
    ("page_counter", ""),
    ("mem_cgroup", "memory_peaks"),
];

// Indices into MEMBERS.
const T_PID: usize = 0;
const T_TGID: usize = 1;
const T_EXIT_STATE: usize = 2;
const T_FLAGS: usize = 3;
const T_START: usize = 4;
const T_CGROUPS: usize = 5;
const CSET_SUBSYS: usize = 6;
const CSET_DFL: usize = 7;
const CSS_CGROUP: usize = 8;
const CSS_PARENT: usize = 9;
const CG_SELF: usize = 10;
const CG_FLAGS: usize = 11;
const CG_LEVEL: usize = 12;
const CG_KN: usize = 13;
const CG_ROOT: usize = 14;
const CG_SUBTREE: usize = 15;
const CG_MAX_DESC: usize = 16;
const CG_MAX_DEPTH: usize = 17;
const KN_ID: usize = 18;
const ROOT_HID: usize = 19;
const ROOT_AGENT: usize = 20;

/// A field of a controller's struct: its offset from the css (the struct
/// begins with it) and its size in bytes; `None` where this kernel has no
/// such member (its file is then read).
type Field = Option<(i32, u32)>;

/// The memory fields, in slot order: the `max` of the `memory`, `kmem` and
/// `tcpmem` page counters (pages), `soft_limit` (pages), `swappiness`,
/// `oom_kill_disable`, and the `max` of `memsw` (pages).
const MEMORY: [&str; 7] = [
    "memory.limit_in_bytes",
    "memory.kmem.limit_in_bytes",
    "memory.kmem.tcp.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.swappiness",
    "memory.oom_control",
    "memory.memsw.limit_in_bytes",
];

/// The cpu fields, in slot order: `shares`, `idle`, `rt_bandwidth`'s
/// period and runtime, `cfs_bandwidth`'s period, quota and burst (ns).
const CPU: [&str; 7] = [
    "cpu.shares",
    "cpu.idle",
    "cpu.rt_period_us",
    "cpu.rt_runtime_us",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.cfs_burst_us",
];

/// Every file a text is made for, and the kind of chain that has its
/// values ([`Kind::Core`]: any chain of the hierarchy).
const FILES: [(&str, Kind); 33] = [
    ("cgroup.clone_children", Kind::Core),
    ("notify_on_release", Kind::Core),
    ("release_agent", Kind::Core),
    ("cgroup.subtree_control", Kind::Unified),
    ("cgroup.max.descendants", Kind::Unified),
    ("cgroup.max.depth", Kind::Unified),
    ("memory.limit_in_bytes", Kind::Memory),
    ("memory.kmem.limit_in_bytes", Kind::Memory),
    ("memory.kmem.tcp.limit_in_bytes", Kind::Memory),
    ("memory.soft_limit_in_bytes", Kind::Memory),
    ("memory.swappiness", Kind::Memory),
    ("memory.oom_control", Kind::Memory),
    ("memory.memsw.limit_in_bytes", Kind::Memory),
    ("cpu.shares", Kind::Cpu),
    ("cpu.idle", Kind::Cpu),
    ("cpu.rt_period_us", Kind::Cpu),
    ("cpu.rt_runtime_us", Kind::Cpu),
    ("cpu.cfs_period_us", Kind::Cpu),
    ("cpu.cfs_quota_us", Kind::Cpu),
    ("cpu.cfs_burst_us", Kind::Cpu),
    ("cpuset.cpu_exclusive", Kind::Cpuset),
    ("cpuset.mem_exclusive", Kind::Cpuset),
    ("cpuset.mem_hardwall", Kind::Cpuset),
    ("cpuset.memory_migrate", Kind::Cpuset),
    ("cpuset.sched_load_balance", Kind::Cpuset),
    ("cpuset.memory_spread_page", Kind::Cpuset),
    ("cpuset.memory_spread_slab", Kind::Cpuset),
    ("cpuset.sched_relax_domain_level", Kind::Cpuset),
    ("cpuset.cpus", Kind::Cpuset),
    ("cpuset.mems", Kind::Cpuset),
    ("pids.max", Kind::Pids),
    // Constants where this kernel has no field for them (the text the
    // kernel prints since the field went: checked against the file).
    ("memory.use_hierarchy", Kind::Memory),
    ("memory.move_charge_at_immigrate", Kind::Memory),
];

/// `PIDS_MAX` (`PID_MAX_LIMIT + 1` on 64-bit): a limit at or above it
/// reads `max`.
const PIDS_MAX: i64 = 4 * 1024 * 1024 + 1;
/// `RUNTIME_INF`: an infinite quota or runtime, read `-1`.
const RUNTIME_INF: u64 = u64::MAX;
/// `SCHED_FIXEDPOINT_SHIFT`: `task_group->shares` is scaled up by it.
const SHARES_SHIFT: u32 = 10;
/// `PF_EXITING`.
const PF_EXITING: u64 = 0x4;
/// Nanoseconds a clock tick (`USER_HZ` 100).
const NS_PER_TICK: u64 = 10_000_000;
/// The bytes of `release_agent_path` read; a longer agent is read from its
/// file.
const AGENT_BYTES: usize = 64;
/// The slot of the record's header: pid and status, start time, exit state
/// and flags.
const HEADER_SLOTS: usize = 3;
/// A chain's own slots before its levels: hierarchy id, release agent.
const CHAIN_SLOTS: usize = 1 + AGENT_BYTES / 8;
/// Status the program writes on success (slot 0, high half).
const DONE: u32 = 1;

/// One chain of the record: which css it starts from and where it lies.
#[derive(Debug, Clone, Copy)]
struct Chain {
    kind: Kind,
    /// The controller's id; `None` for cgroup2's own chain (`dfl_cgrp`).
    ssid: Option<u32>,
    /// Its first slot.
    at: usize,
}

impl Chain {
    fn level_slots(&self) -> usize {
        3 + self.kind.extra_slots()
    }

    fn level_at(&self, level: usize) -> usize {
        self.at + CHAIN_SLOTS + level * self.level_slots()
    }
}

/// The program's view of this kernel: offsets, constants, chains.
#[derive(Debug, Clone)]
struct Plan {
    off: [Option<u32>; MEMBERS.len()],
    enums: [Option<i64>; ENUMS.len()],
    chains: Vec<Chain>,
    /// The record's length in slots.
    slots: usize,
    memory: [Field; 7],
    cpu: [Field; 7],
    /// flags, relax level, cpus, mems.
    cpuset: [Field; 4],
    pids: Field,
    /// The controllers' names, by id (`subtree_control`'s words).
    names: Vec<(u32, &'static str)>,
}

impl Plan {
    /// `hierarchies`: the node's (`/proc/self/cgroup`): a controller of no
    /// field read here has a chain only where it is the first of a v1
    /// hierarchy none of whose controllers has one (its hierarchy's core
    /// files); bound to cgroup2, its css is the one cgroup2's own chain
    /// reads, and a run would read it twice.
    fn of_kernel(
        b: &btf::Vmlinux,
        funcs: &[&str],
        hierarchies: &[(String, u32)],
    ) -> Result<(Plan, Vec<Option<u32>>), String> {
        let mut enums: Vec<&str> = CONTROLLERS.iter().map(|(e, _)| *e).collect();
        enums.extend_from_slice(&ENUMS);
        let btf::All { funcs: ids, members: found, enums: values, .. } =
            btf::find_all(b, funcs, &MEMBERS, &enums, btf::WINDOW)
                .ok_or_else(|| "/sys/kernel/btf/vmlinux is not BTF this build reads".to_owned())?;
        let mut off = [None; MEMBERS.len()];
        for (slot, f) in off.iter_mut().zip(&found) {
            *slot = *f;
        }
        // Everything up to the controllers' members is needed.
        if let Some(i) = off.iter().take(21).position(Option::is_none) {
            let (s, m) = MEMBERS.get(i).copied().unwrap_or_default();
            return Err(format!("this kernel's BTF has no member {s}.{m}"));
        }
        let mut e = [None; ENUMS.len()];
        for (slot, v) in e.iter_mut().zip(values.get(CONTROLLERS.len()..).unwrap_or_default()) {
            *slot = *v;
        }
        let count = e.first().copied().flatten().ok_or("this kernel's BTF has no CGROUP_SUBSYS_COUNT")?;
        let mut chains = Vec::new();
        let mut names = Vec::new();
        let mut at = HEADER_SLOTS;
        let mut push = |kind: Kind, ssid: Option<u32>, at: &mut usize| {
            let c = Chain { kind, ssid, at: *at };
            *at += CHAIN_SLOTS + LEVELS * c.level_slots();
            chains.push(c);
        };
        push(Kind::Unified, None, &mut at);
        // The v1 hierarchy a controller is in (its legacy name: `io` is
        // `blkio` there), by its index in the list.
        let v1 = |name: &str| -> Option<usize> {
            let legacy = if name == "io" { "blkio" } else { name };
            hierarchies.iter().position(|(h, _)| h.split(',').any(|c| c == legacy))
        };
        let chained = |k: Kind| k != Kind::Core;
        let mut served: Vec<usize> = CONTROLLERS
            .iter()
            .filter(|(_, k)| chained(*k))
            .filter_map(|(e, _)| v1(e.trim_end_matches("_cgrp_id")))
            .collect();
        for ((enumerator, kind), v) in CONTROLLERS.iter().zip(&values) {
            let Some(id) = v.filter(|&id| id >= 0 && id < count).and_then(|id| u32::try_from(id).ok()) else {
                continue;
            };
            let name = enumerator.trim_end_matches("_cgrp_id");
            names.push((id, name));
            if !chained(*kind) {
                match v1(name) {
                    Some(h) if !served.contains(&h) => served.push(h),
                    _ => continue,
                }
            }
            push(*kind, Some(id), &mut at);
        }
        names.sort_unstable();
        let o = |i: usize| off.get(i).copied().flatten().and_then(|v| i32::try_from(v).ok());
        // A field of the struct whose css is member `css`, at member `m`
        // (plus `inner`, a member of that member), `size` bytes.
        let field = |css: usize, m: usize, inner: Option<usize>, size: u32| -> Field {
            let base = o(m)?.checked_sub(o(css)?)?;
            let add = match inner {
                Some(i) => o(i)?,
                None => 0,
            };
            Some((base.checked_add(add)?, size))
        };
        // `memsw`: the page counter after `memory`, where the member after
        // the union begins two page counters after `memory`.
        let memsw = || -> Field {
            let (memory, size, next) = (o(22)?, o(49)?, o(50)?);
            let after = memory.checked_add(size)?;
            (after.checked_add(size)? == next).then_some(())?;
            let max = o(25)?;
            Some((after.checked_sub(o(21)?)?.checked_add(max)?, 8))
        };
        let memory = [
            field(21, 22, Some(25), 8),
            field(21, 23, Some(25), 8),
            field(21, 24, Some(25), 8),
            field(21, 26, None, 8),
            field(21, 27, None, 4),
            field(21, 28, None, 4),
            memsw(),
        ];
        let cpu = [
            field(29, 30, None, 8),
            field(29, 31, None, 4),
            field(29, 32, Some(33), 8),
            field(29, 32, Some(34), 8),
            field(29, 35, Some(36), 8),
            field(29, 35, Some(37), 8),
            field(29, 35, Some(38), 8),
        ];
        // The masks' sizes: the distance to the member after each (an
        // inline `cpumask_var_t`, a `nodemask_t`); one that does not fit
        // its slots (or a mask kept behind a pointer, which the self-check
        // finds) is read from its file.
        let size_to = |m: usize, next: usize, most: u32| -> Option<u32> {
            let size = u32::try_from(o(next)?.checked_sub(o(m)?)?).ok()?;
            (size > 0 && size <= most).then_some(size)
        };
        let cpuset = [
            field(39, 40, None, 8),
            field(39, 41, None, 4),
            size_to(42, 43, 64).and_then(|s| field(39, 42, None, s)),
            size_to(43, 44, 128).and_then(|s| field(39, 43, None, s)),
        ];
        let pids = field(45, 46, None, 8);
        Ok((Plan { off, enums: e, chains, slots: at, memory, cpu, cpuset, pids, names }, ids))
    }

    fn at(&self, i: usize) -> Result<i16, String> {
        let v = self.off.get(i).copied().flatten().ok_or("a member this kernel lacks")?;
        i16::try_from(v).map_err(|_| format!("a member offset too large for a load: {v}"))
    }

    fn enum_value(&self, i: usize) -> Option<i64> {
        self.enums.get(i).copied().flatten()
    }

    /// The byte offset of slot `s` in the record, as a store's offset.
    fn slot(s: usize) -> Result<i16, String> {
        s.checked_mul(8).and_then(|b| i16::try_from(b).ok()).ok_or_else(|| "the record is too large".to_owned())
    }

    /// The controller fields of a chain of `kind`, in slot order, each
    /// with its first slot (after the level's three).
    fn fields(&self, kind: Kind) -> Vec<(Field, usize)> {
        match kind {
            Kind::Memory => self.memory.iter().enumerate().map(|(i, f)| (*f, 3 + i)).collect(),
            Kind::Cpu => self.cpu.iter().enumerate().map(|(i, f)| (*f, 3 + i)).collect(),
            Kind::Cpuset => self.cpuset.iter().zip([3, 4, 5, 13]).map(|(f, s)| (*f, s)).collect(),
            Kind::Pids => vec![(self.pids, 3)],
            Kind::Core | Kind::Unified => Vec::new(),
        }
    }
}

/// The stack area a controller field is read into (`fp - STAGE`, 128
/// bytes), before it is copied into the record.
const STAGE: i16 = 136;

/// The program: the record of the process whose pid is the context's
/// first 4 bytes, made in the context; status [`DONE`] in bytes 4..8 when
/// every read succeeded, pid 0 where no process of that pid leads a thread
/// group.
fn program(p: &Plan, from_pid: u32, release: u32) -> Result<Vec<Insn>, String> {
    let mut a = Asm::new();
    a.mov(Reg::R6, Reg::R1).ldx(Size::W, Reg::R1, Reg::R6, 0).call_kfunc(from_pid).jmp_imm(
        Cond::Eq,
        Reg::R0,
        0,
        "none",
    );
    a.mov(Reg::R7, Reg::R0)
        .ldx(Size::W, Reg::R2, Reg::R7, p.at(T_PID)?)
        .ldx(Size::W, Reg::R3, Reg::R7, p.at(T_TGID)?)
        .jmp(Cond::Ne, Reg::R2, Reg::R3, "thread");
    // The stage, zeroed once: every later read of it is of bytes written.
    for k in (8..=STAGE).step_by(8) {
        a.st_imm(Size::Dw, Reg::Fp, -k, 0);
    }
    a.ldx(Size::Dw, Reg::R2, Reg::R7, p.at(T_START)?)
        .stx(Size::Dw, Reg::R6, Plan::slot(1)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R7, p.at(T_EXIT_STATE)?)
        .stx(Size::W, Reg::R6, Plan::slot(2)?, Reg::R2)
        .ldx(Size::W, Reg::R2, Reg::R7, p.at(T_FLAGS)?)
        .stx(Size::W, Reg::R6, Plan::slot(2)? + 4, Reg::R2)
        .ldx(Size::Dw, Reg::R8, Reg::R7, p.at(T_CGROUPS)?);
    for (ci, c) in p.chains.iter().enumerate() {
        let end = Label("chain", ci + 1);
        match c.ssid {
            None => {
                a.ldx(Size::Dw, Reg::R9, Reg::R8, p.at(CSET_DFL)?);
                let this = i32::from(p.at(CG_SELF)?);
                if this != 0 {
                    a.jmp_imm(Cond::Eq, Reg::R9, 0, end).alu_imm(Alu::Add, Reg::R9, this);
                }
            }
            Some(id) => {
                let at = i32::from(p.at(CSET_SUBSYS)?) + 8 * i32::try_from(id).map_err(|_| "a controller id")?;
                a.ldx(Size::Dw, Reg::R9, Reg::R8, i16::try_from(at).map_err(|_| "subsys offset too large")?);
            }
        }
        a.jmp_imm(Cond::Eq, Reg::R9, 0, end);
        // The chain's hierarchy and its root's release agent.
        a.ldx(Size::Dw, Reg::R2, Reg::R9, p.at(CSS_CGROUP)?)
            .ldx(Size::Dw, Reg::R2, Reg::R2, p.at(CG_ROOT)?)
            .ldx(Size::W, Reg::R3, Reg::R2, p.at(ROOT_HID)?)
            .stx(Size::W, Reg::R6, Plan::slot(c.at)?, Reg::R3);
        let agent = i32::from(p.at(ROOT_AGENT)?);
        stage_read(&mut a, Reg::R2, agent, AGENT_BYTES, Plan::slot(c.at + 1)?)?;
        for level in 0..LEVELS {
            let base = c.level_at(level);
            a.jmp_imm(Cond::Eq, Reg::R9, 0, end);
            a.ldx(Size::Dw, Reg::R2, Reg::R9, p.at(CSS_CGROUP)?)
                .ldx(Size::Dw, Reg::R3, Reg::R2, p.at(CG_KN)?)
                .ldx(Size::Dw, Reg::R3, Reg::R3, p.at(KN_ID)?)
                .stx(Size::Dw, Reg::R6, Plan::slot(base)?, Reg::R3)
                .ldx(Size::Dw, Reg::R3, Reg::R2, p.at(CG_FLAGS)?)
                .stx(Size::Dw, Reg::R6, Plan::slot(base + 1)?, Reg::R3)
                .ldx(Size::W, Reg::R3, Reg::R2, p.at(CG_LEVEL)?)
                .stx(Size::W, Reg::R6, Plan::slot(base + 2)?, Reg::R3);
            if c.kind == Kind::Unified {
                a.ldx(Size::H, Reg::R3, Reg::R2, p.at(CG_SUBTREE)?)
                    .stx(Size::W, Reg::R6, Plan::slot(base + 3)?, Reg::R3)
                    .ldx(Size::W, Reg::R3, Reg::R2, p.at(CG_MAX_DESC)?)
                    .stx(Size::W, Reg::R6, Plan::slot(base + 4)?, Reg::R3)
                    .ldx(Size::W, Reg::R3, Reg::R2, p.at(CG_MAX_DEPTH)?)
                    .stx(Size::W, Reg::R6, Plan::slot(base + 5)?, Reg::R3);
            }
            for (f, slot) in p.fields(c.kind) {
                let Some((off, size)) = f else { continue };
                let size = usize::try_from(size).map_err(|_| "a field size")?;
                stage_read(&mut a, Reg::R9, off, size, Plan::slot(base + slot)?)?;
            }
            a.ldx(Size::Dw, Reg::R9, Reg::R9, p.at(CSS_PARENT)?);
        }
        a.label(end);
    }
    a.st_imm(Size::W, Reg::R6, 4, i32::try_from(DONE).unwrap_or(1))
        .mov(Reg::R1, Reg::R7)
        .call_kfunc(release)
        .mov_imm(Reg::R0, 0)
        .exit();
    // A read failed: no status, the record is not used.
    // (Its status: the record's byte offset the read was for, with the
    // top bit set, for a test to say which.)
    a.label("fail")
        .alu_imm(Alu::Or, Reg::R4, i32::MIN)
        .stx(Size::W, Reg::R6, 4, Reg::R4)
        .mov(Reg::R1, Reg::R7)
        .call_kfunc(release)
        .mov_imm(Reg::R0, 0)
        .exit();
    a.label("thread").mov(Reg::R1, Reg::R7).call_kfunc(release);
    a.label("none").st_imm(Size::W, Reg::R6, 0, 0).mov_imm(Reg::R0, 0).exit();
    a.finish().map_err(|e| e.0)
}

/// Reads `size` bytes (at most 128) at `base + off` into the stage with
/// `bpf_probe_read_kernel`, then copies them (whole 8-byte words) into
/// the record at byte `to`. A failed read jumps to `fail`. Clobbers r1-r5.
fn stage_read(a: &mut Asm, base: Reg, off: i32, size: usize, to: i16) -> Result<(), String> {
    if size == 0 || size > 128 {
        return Err(format!("a field of {size} bytes"));
    }
    // The source first: `base` may be r1 or r2.
    a.mov(Reg::R3, base)
        .alu_imm(Alu::Add, Reg::R3, off)
        .mov(Reg::R1, Reg::Fp)
        .alu_imm(Alu::Add, Reg::R1, -i32::from(STAGE))
        .mov_imm(Reg::R2, i32::try_from(size).unwrap_or(8))
        .call(Helper::ProbeReadKernel)
        .mov_imm(Reg::R4, i32::from(to))
        .jmp_imm(Cond::Ne, Reg::R0, 0, "fail");
    for k in (0..size).step_by(8) {
        let k = i16::try_from(k).map_err(|_| "a field too large")?;
        a.ldx(Size::Dw, Reg::R2, Reg::Fp, -STAGE + k).stx(Size::Dw, Reg::R6, to + k, Reg::R2);
    }
    Ok(())
}

/// The loaded program, what it reads on this kernel, and which of its
/// texts passed the self-check.
#[derive(Debug)]
pub(crate) struct Program {
    fd: OwnedFd,
    plan: Plan,
    /// Per [`FILES`]: whether its text is used.
    enabled: [bool; FILES.len()],
    /// `/proc/self/cgroup`'s hierarchies: (name as `cgroup-limits` keys
    /// it, id).
    hierarchies: Vec<(String, u32)>,
    page: u64,
    /// `nr_cpu_ids`: the bits of a cpu mask the kernel prints.
    cpus: usize,
}

/// A record: the context a run filled.
#[derive(Debug, Default)]
pub(crate) struct Record {
    bytes: Vec<u8>,
}

impl Record {
    fn slot(&self, s: usize) -> Option<u64> {
        sys::word_at(&self.bytes, s)
    }

    /// Whether the record is whole and of a process neither exiting nor
    /// exited, started at `start_ticks`.
    fn usable(&self, pid: u32, start_ticks: u64) -> bool {
        let Some(head) = self.slot(0) else { return false };
        let (p, status) = (head & 0xffff_ffff, head >> 32);
        let Some(flags) = self.slot(2) else { return false };
        p == u64::from(pid)
            && status == u64::from(DONE)
            && self.slot(1).map(|ns| ns / NS_PER_TICK) == Some(start_ticks)
            && flags & 0xffff_ffff == 0
            && (flags >> 32) & PF_EXITING == 0
    }
}

impl Program {
    /// Loads the program where the kernel lets a syscall program call
    /// `bpf_task_from_pid`, and checks its texts against fdir's own cgroup
    /// files; `Err(why)` where it cannot be used at all.
    pub(crate) fn load() -> Result<Program, String> {
        let btf = std::fs::File::open("/sys/kernel/btf/vmlinux")
            .map(btf::Vmlinux::new)
            .map_err(|e| format!("no BTF: /sys/kernel/btf/vmlinux: {e}"))?;
        let hierarchies = own_hierarchies().map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let (plan, ids) = Plan::of_kernel(&btf, &["bpf_task_from_pid", "bpf_task_release"], &hierarchies)?;
        let (Some(Some(from_pid)), Some(Some(release))) = (ids.first(), ids.get(1)) else {
            return Err("this kernel has no bpf_task_from_pid".to_owned());
        };
        let insns = program(&plan, *from_pid, *release)?;
        let spec = sys::ProgSpec {
            prog_type: sys::PROG_SYSCALL,
            attach_type: 0,
            attach_btf_id: 0,
            name: "fdir_cgroups",
            flags: sys::F_SLEEPABLE,
        };
        let fd = sys::prog_load(&insns, &spec).map_err(|e| format!("the kernel refused the program: {e}"))?;
        let mut enabled = [false; FILES.len()];
        for ((name, _), on) in FILES.iter().zip(enabled.iter_mut()) {
            *on = !name.is_empty();
        }
        let page = u64::try_from(rustix::param::page_size()).unwrap_or(4096);
        let mut p = Program { fd, plan, enabled, hierarchies, page, cpus: possible_cpus().unwrap_or(usize::MAX) };
        let (compared, refused) = self_check(&mut p)?;
        if !refused.is_empty() {
            tracing::debug!(
                "cgroup control values: these files are read, not made (their text differed from the file at the self-check): {}",
                refused.join(", ")
            );
        }
        tracing::debug!("cgroup control values: {compared} files of fdir's own cgroups made as the kernel makes them");
        Ok(p)
    }

    /// One run: the record of `pid` into `rec` (reusing its buffer).
    pub(crate) fn run(&self, pid: u32, rec: &mut Record) -> std::io::Result<()> {
        rec.bytes.clear();
        rec.bytes.resize(self.plan.slots * 8, 0);
        if let Some(at) = rec.bytes.get_mut(0..4) {
            at.copy_from_slice(&pid.to_ne_bytes());
        }
        sys::prog_run(self.fd.as_fd(), &mut rec.bytes).map(|_| ())
    }

    /// The hierarchy id of `hierarchy` (as `cgroup-limits` names it).
    fn hierarchy_id(&self, hierarchy: &str) -> Option<u32> {
        self.hierarchies.iter().find(|(h, _)| h == hierarchy).map(|&(_, id)| id)
    }

    /// The text of control file `file` of the cgroup of hierarchy `hid`
    /// whose directory's inode is `ino`, as the kernel makes it, into
    /// `out`; `None` where the record does not have it (or no text is made
    /// for that file).
    fn format(&self, rec: &Record, hid: u32, ino: u64, file: &str, out: &mut Vec<u8>) -> Option<()> {
        let (i, want) = file_of(file)?;
        let at = self.find(rec, hid, ino, want)?;
        self.format_at(rec, at, i, file, out)
    }

    /// [`Program::format`] of file `i` of [`FILES`] (named `file`), of the
    /// level [`Program::find`] found.
    fn format_at(&self, rec: &Record, at: (Chain, usize), i: usize, file: &str, out: &mut Vec<u8>) -> Option<()> {
        if !self.enabled.get(i).copied().unwrap_or(false) {
            return None;
        }
        let (chain, base) = at;
        let s = |k: usize| rec.slot(base + k);
        let flags = s(1)?;
        let depth = s(2)? & 0xffff_ffff;
        let bit = |word: u64, e: usize| -> Option<u64> {
            let b = u32::try_from(self.plan.enum_value(e)?).ok().filter(|&b| b < 64)?;
            Some(word >> b & 1)
        };
        out.clear();
        match file {
            "notify_on_release" => writeln!(out, "{}", bit(flags, 1)?).ok()?,
            "cgroup.clone_children" => writeln!(out, "{}", bit(flags, 2)?).ok()?,
            "release_agent" => {
                if depth != 0 {
                    return None;
                }
                let at = (chain.at + 1) * 8;
                let bytes = rec.bytes.get(at..at + AGENT_BYTES)?;
                // A longer agent than was read: its file.
                let end = bytes.iter().position(|&b| b == 0)?;
                out.extend_from_slice(bytes.get(..end)?);
                out.push(b'\n');
            }
            "cgroup.subtree_control" => {
                let mask = s(3)? & 0xffff;
                let mut first = true;
                for (id, name) in &self.plan.names {
                    if *id < 16 && mask >> id & 1 == 1 {
                        if !first {
                            out.push(b' ');
                        }
                        out.extend_from_slice(name.as_bytes());
                        first = false;
                    }
                }
                // A bit of no controller this build knows: its file.
                let known: u64 = self.plan.names.iter().filter(|(id, _)| *id < 16).map(|(id, _)| 1u64 << id).sum();
                if mask & !known != 0 {
                    return None;
                }
                // An empty mask prints nothing, not even the newline.
                if !first {
                    out.push(b'\n');
                }
            }
            "cgroup.max.descendants" | "cgroup.max.depth" => {
                let v = int(s(if file == "cgroup.max.depth" { 5 } else { 4 })?);
                if v == i64::from(i32::MAX) {
                    out.extend_from_slice(b"max\n");
                } else {
                    writeln!(out, "{v}").ok()?;
                }
            }
            "memory.limit_in_bytes"
            | "memory.kmem.limit_in_bytes"
            | "memory.kmem.tcp.limit_in_bytes"
            | "memory.soft_limit_in_bytes"
            | "memory.memsw.limit_in_bytes" => {
                let k = MEMORY.iter().position(|f| *f == file)?;
                self.plan.memory.get(k).copied().flatten()?;
                let pages = s(3 + k)?;
                writeln!(out, "{}", pages.wrapping_mul(self.page)).ok()?;
            }
            "memory.swappiness" => {
                // The root's is the node's `vm.swappiness`: its file.
                if depth == 0 {
                    return None;
                }
                self.plan.memory.get(4).copied().flatten()?;
                writeln!(out, "{}", int(s(3 + 4)?)).ok()?;
            }
            // Constants of a kernel without the field (`use_hierarchy`
            // is always on, charges are no longer moved).
            "memory.use_hierarchy" if self.plan.off.get(47).copied().flatten().is_none() => {
                out.extend_from_slice(b"1\n")
            }
            "memory.move_charge_at_immigrate" if self.plan.off.get(48).copied().flatten().is_none() => {
                out.extend_from_slice(b"0\n");
            }
            "memory.oom_control" => {
                // Of this file `cgroup-limits` keeps the first line only.
                self.plan.memory.get(5).copied().flatten()?;
                writeln!(out, "oom_kill_disable {}", int(s(3 + 5)?)).ok()?;
            }
            _ if chain.kind == Kind::Cpu => {
                let k = CPU.iter().position(|f| *f == file)?;
                self.plan.cpu.get(k).copied().flatten()?;
                let v = s(3 + k)?;
                match file {
                    "cpu.shares" => {
                        let w = v >> SHARES_SHIFT;
                        writeln!(out, "{}", if v == 0 { 0 } else { w.max(2) }).ok()?;
                    }
                    "cpu.idle" => writeln!(out, "{}", int(v)).ok()?,
                    "cpu.cfs_quota_us" | "cpu.rt_runtime_us" if v == RUNTIME_INF => out.extend_from_slice(b"-1\n"),
                    "cpu.cfs_quota_us" | "cpu.rt_runtime_us" => writeln!(out, "{}", v / 1000).ok()?,
                    _ => writeln!(out, "{}", v / 1000).ok()?,
                }
            }
            "cpuset.sched_relax_domain_level" => {
                self.plan.cpuset.get(1).copied().flatten()?;
                writeln!(out, "{}", int(s(4)?)).ok()?;
            }
            "cpuset.cpus" | "cpuset.mems" => {
                let (k, slot) = if file == "cpuset.cpus" { (2, 5) } else { (3, 13) };
                let (_, size) = self.plan.cpuset.get(k).copied().flatten()?;
                let at = (base + slot) * 8;
                let bytes = rec.bytes.get(at..at + usize::try_from(size).ok()?)?;
                let bits = if file == "cpuset.cpus" { self.cpus.min(bytes.len() * 8) } else { bytes.len() * 8 };
                range_list(bytes, bits, out);
                out.push(b'\n');
            }
            _ if chain.kind == Kind::Cpuset => {
                let k = CPUSET_FLAG_FILES.iter().position(|f| *f == file)?;
                self.plan.cpuset.first().copied().flatten()?;
                writeln!(out, "{}", bit(s(3)?, 3 + k)?).ok()?;
            }
            "pids.max" => {
                self.plan.pids?;
                let v = s(3)?.cast_signed();
                if v >= PIDS_MAX {
                    out.extend_from_slice(b"max\n");
                } else {
                    writeln!(out, "{v}").ok()?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// Whether the record has a chain in hierarchy `hid`.
    fn has_hierarchy(&self, rec: &Record, hid: u32) -> bool {
        self.plan.chains.iter().any(|c| {
            rec.slot(c.level_at(0)).is_some_and(|id| id != 0)
                && rec.slot(c.at).map(|h| h & 0xffff_ffff) == Some(u64::from(hid))
        })
    }

    /// The chain and first slot of the level of hierarchy `hid` whose
    /// kernfs id is `ino`, in a chain of kind `want` (any, for
    /// [`Kind::Core`]).
    fn find(&self, rec: &Record, hid: u32, ino: u64, want: Kind) -> Option<(Chain, usize)> {
        for c in &self.plan.chains {
            if want != Kind::Core && c.kind != want {
                continue;
            }
            if rec.slot(c.at).map(|h| h & 0xffff_ffff) != Some(u64::from(hid)) {
                continue;
            }
            // An absent chain has no level's id (0): none is found in it.
            for level in 0..LEVELS {
                let base = c.level_at(level);
                match rec.slot(base) {
                    Some(0) | None => break,
                    Some(id) if id == ino => return Some((*c, base)),
                    Some(_) => {}
                }
            }
        }
        None
    }
}

/// The index in [`FILES`] of `file`, and the kind of chain that has its
/// values.
fn file_of(file: &str) -> Option<(usize, Kind)> {
    FILES.iter().position(|(name, _)| *name == file).and_then(|i| Some((i, FILES.get(i)?.1)))
}

/// A 32-bit field read into a slot, as the signed `int` it is.
fn int(slot: u64) -> i64 {
    i64::from((slot & 0xffff_ffff) as u32 as i32)
}

/// The set bits of the first `bits` bits of `mask` (a kernel bitmap of
/// `unsigned long`s, little-endian words on this machine's order) as the
/// kernel's `%*pbl` prints them: `0-3,8,10-11`.
fn range_list(mask: &[u8], bits: usize, out: &mut Vec<u8>) {
    let set = |i: usize| -> bool {
        // Bit i of the bitmap: word i / 64, bit i % 64, words native-endian.
        let word = i / 64;
        let Some(w) = mask.get(word * 8..word * 8 + 8) else { return false };
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        u64::from_ne_bytes(b) >> (i % 64) & 1 == 1
    };
    let mut i = 0;
    let mut first = true;
    while i < bits {
        if !set(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < bits && set(i + 1) {
            i += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if start == i {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}-{i}");
        }
        i += 1;
    }
}

/// The hierarchies of `/proc/self/cgroup`: (name as `cgroup-limits` keys it,
/// id). Every mounted hierarchy holds every process, so fdir's own list is
/// the node's.
fn own_hierarchies() -> std::io::Result<Vec<(String, u32)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let names = parts.next()?;
            Some((if names.is_empty() { "unified".to_owned() } else { names.to_owned() }, id))
        })
        .collect())
}

/// `nr_cpu_ids`: one more than the last CPU `/sys/devices/system/cpu/possible` names.
fn possible_cpus() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    let last = text.trim().rsplit([',', '-']).next()?;
    last.parse::<usize>().ok().map(|n| n + 1)
}

/// Process `pid`'s record (made now) and every control file of its
/// cgroups (every hierarchy, each cgroup and its ancestors) that the
/// program makes a text for and that exists: made, read, and compared as
/// `cgroup-limits` keeps them.
fn compare(p: &Program, pid: u32) -> Result<Vec<Compared>, String> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let start = super::stat::parse_stat(&stat).map(|(_, _, s)| s).ok_or("its stat is unreadable")?;
    let mut rec = Record::default();
    p.run(pid, &mut rec).map_err(|e| format!("the program failed: {e}"))?;
    if !rec.usable(pid, start) {
        return Err(format!("the program's record of process {pid} is not whole"));
    }
    let mounts = super::CgroupMounts::discover_shared().map_err(|e| format!("the cgroup mounts: {e}"))?;
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    let mut out = Vec::new();
    let (mut from_file, mut made) = (Canon::new(), Canon::new());
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(names), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let h = if names.is_empty() { "unified" } else { names };
        let Some(hid) = p.hierarchy_id(h) else { continue };
        for cg in cgroup_limits::ancestors(path) {
            let Ok((dir, rel)) = mounts.dir_parts(h, cg) else { continue };
            let dir = if rel.is_empty() { dir.to_path_buf() } else { dir.join(rel) };
            let Ok(st) = rustix::fs::stat(&dir) else { continue };
            for (file, _) in &FILES {
                let Ok(read) = std::fs::read(dir.join(file)) else { continue };
                let mut buf = Vec::new();
                if p.format(&rec, hid, st.st_ino, file, &mut buf).is_none() {
                    continue;
                }
                from_file.clear();
                made.clear();
                cgroup_limits::add_file(&mut from_file, h, cg, file, &read);
                cgroup_limits::add_file(&mut made, h, cg, file, &buf);
                let same = from_file.lines().eq(made.lines());
                out.push(Compared { hierarchy: h.to_owned(), cgroup: cg.to_owned(), file, made: buf, read, same });
            }
        }
    }
    Ok(out)
}

/// fdir's own cgroups, each file a text is made for against the file:
/// (files compared, files whose text differed). A formatter that differs
/// is turned off; `Err` where the program's record is unusable or nothing
/// at all compares.
fn self_check(p: &mut Program) -> Result<(usize, Vec<&'static str>), String> {
    let compared = compare(p, std::process::id())?;
    let mut refused: Vec<&'static str> = Vec::new();
    for c in compared.iter().filter(|c| !c.same) {
        if let Some(on) = FILES.iter().position(|(name, _)| *name == c.file).and_then(|i| p.enabled.get_mut(i)) {
            *on = false;
        }
        if !refused.contains(&c.file) {
            refused.push(c.file);
        }
    }
    // A file that differed in one cgroup counts in none.
    let agreed = compared.iter().filter(|c| !refused.contains(&c.file)).count();
    if agreed == 0 {
        return Err("no text of fdir's own cgroups was made as its file reads".to_owned());
    }
    Ok((agreed, refused))
}

thread_local! {
    /// The last record made on this thread: the reads of one process's
    /// cgroup files ask about it one after the other. Forgotten when a
    /// table is installed or uninstalled (a new part of a round).
    static MADE: RefCell<Record> = RefCell::new(Record::default());
    /// Whether `MADE` is of the current part (and which pid it is of).
    static MADE_FOR: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    /// Cgroup directories' inodes (their kernfs ids), by path.
    static INODES: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// The directories' inodes kept at most (a node with more cgroups stats
/// the rest each time).
const MOST_INODES: usize = 4096;

/// Forgets this thread's record: the next ask runs the program again.
pub(crate) fn forget() {
    MADE_FOR.with(|m| m.set(None));
}

/// Whether a failed run was said (once a process).
static RUN_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The text of control file `file` of cgroup directory `dir` (a path
/// ending in `/`) of hierarchy `hierarchy`, for process `pid` started at
/// `start_ticks`, made from `program`'s record into `out`; `None` where the
/// file must be read.
pub(crate) fn answer(
    program: &Program,
    pid: u32,
    start_ticks: u64,
    hierarchy: &str,
    dir: &str,
    file: &str,
    out: &mut Vec<u8>,
) -> Option<()> {
    let (i, want) = file_of(file)?;
    let hid = program.hierarchy_id(hierarchy)?;
    MADE.with(|made| {
        let mut rec = made.borrow_mut();
        made_for(program, pid, &mut rec);
        if !rec.usable(pid, start_ticks) {
            return None;
        }
        // No chain in that hierarchy (a named one: `name=systemd`): its
        // files are read, and its directory never asked about.
        if !program.has_hierarchy(&rec, hid) {
            return None;
        }
        let ino = inode(dir, false)?;
        let at = match program.find(&rec, hid, ino, want) {
            Some(at) => at,
            // The directory may be another by now (removed and made
            // again): its inode asked again, once.
            None => {
                let again = inode(dir, true).filter(|&again| again != ino)?;
                program.find(&rec, hid, again, want)?
            }
        };
        program.format_at(&rec, at, i, file, out)
    })
}

/// Runs `program` for `pid` into `rec`, unless `rec` is of `pid` already
/// (this part's).
fn made_for(program: &Program, pid: u32, rec: &mut Record) {
    if MADE_FOR.with(std::cell::Cell::get) != Some(pid) {
        if let Err(e) = program.run(pid, rec) {
            if !RUN_FAILED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!("the cgroup values program failed (files read instead): {e}");
            }
            rec.bytes.clear();
        }
        MADE_FOR.with(|m| m.set(Some(pid)));
    }
}

/// The digest of `program`'s record of process `pid` started at
/// `start_ticks` (the one [`answer`] makes texts from), where it is usable.
pub(crate) fn record_digest(program: &Program, pid: u32, start_ticks: u64) -> Option<crate::Digest> {
    MADE.with(|made| {
        let mut rec = made.borrow_mut();
        made_for(program, pid, &mut rec);
        rec.usable(pid, start_ticks).then(|| crate::Digest::of(&rec.bytes))
    })
}

/// The inode of directory `dir`, kept (`fresh`: asked of the kernel again).
fn inode(dir: &str, fresh: bool) -> Option<u64> {
    INODES.with(|m| {
        let mut m = m.borrow_mut();
        if !fresh && let Some(&ino) = m.get(dir) {
            return Some(ino);
        }
        let ino = rustix::fs::stat(dir).ok()?.st_ino;
        if m.len() >= MOST_INODES {
            m.clear();
        }
        m.insert(dir.to_owned(), ino);
        Some(ino)
    })
}

/// One control file of a process's cgroups, as the program's record makes
/// it and as the file reads (for tests: [`compare_with_files`]).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Compared {
    pub hierarchy: String,
    pub cgroup: String,
    pub file: &'static str,
    /// The text made from the record.
    pub made: Vec<u8>,
    /// The file's bytes, read after.
    pub read: Vec<u8>,
    /// Whether the two make the same `cgroup-limits` records.
    pub same: bool,
}

/// Every control file of process `pid`'s cgroups (every hierarchy, each
/// cgroup and its ancestors) that the program makes a text for, made and
/// read; `Err(why)` where the program is not used on this kernel. For
/// tests, which set values in cgroups of their own and compare.
#[doc(hidden)]
pub fn compare_with_files(pid: u32) -> Result<Vec<Compared>, String> {
    compare(&Program::load()?, pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_lists_are_the_kernels() {
        let mut out = Vec::new();
        let mask = |bits: &[usize]| -> Vec<u8> {
            let mut words = [0u64; 2];
            for &b in bits {
                words[b / 64] |= 1 << (b % 64);
            }
            words.iter().flat_map(|w| w.to_ne_bytes()).collect()
        };
        for (bits, want) in [
            (&[][..], ""),
            (&[0][..], "0"),
            (&[0, 1][..], "0-1"),
            (&[0, 1, 2, 5, 7, 8][..], "0-2,5,7-8"),
            (&[63, 64, 65, 127][..], "63-65,127"),
        ] {
            out.clear();
            range_list(&mask(bits), 128, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), want, "{bits:?}");
        }
        out.clear();
        range_list(&mask(&[0, 1, 100]), 2, &mut out);
        assert_eq!(out, b"0-1", "bits past the printed width are not printed");
    }

    #[test]
    fn int_is_the_fields_sign() {
        assert_eq!(int(0xffff_ffff), -1);
        assert_eq!(int(0x1_0000_0005), 5);
        assert_eq!(int(u64::from(i32::MAX.cast_unsigned())), i64::from(i32::MAX));
    }

    /// Loads the program where the kernel allows, or says why not.
    pub(crate) fn loaded(test: &str) -> Option<Program> {
        match Program::load() {
            Ok(p) => Some(p),
            Err(why) => {
                eprintln!("SKIP {test}: {why}");
                None
            }
        }
    }

    /// The live kernel: the program loads, its self-check compares files
    /// of fdir's own cgroups, and a thread's id or no process gives no
    /// usable record.
    #[test]
    fn loads_and_checks_itself() {
        let Some(p) = loaded("loads_and_checks_itself") else { return };
        let me = std::process::id();
        let mut rec = Record::default();
        p.run(me, &mut rec).unwrap();
        assert_eq!(rec.slot(0).map(|h| h >> 32), Some(u64::from(DONE)));
        // A chain of a controller with no field read here only where no
        // other chain reads its hierarchy: each is read once.
        let hid = |c: &Chain| rec.slot(c.at).map(|h| h & 0xffff_ffff);
        for c in p.plan.chains.iter().filter(|c| c.kind == Kind::Core) {
            let others = p.plan.chains.iter().filter(|o| o.at != c.at && hid(o) == hid(c)).count();
            assert_eq!(others, 0, "hierarchy {:?} read by more than one chain", hid(c));
        }
        let mut none = Record::default();
        p.run(u32::MAX >> 1, &mut none).unwrap();
        assert!(!none.usable(u32::MAX >> 1, 0), "no such process");

        let enabled: Vec<&str> =
            FILES.iter().zip(&p.enabled).filter(|(_, on)| **on).map(|((name, _), _)| *name).collect();
        eprintln!("texts made for: {enabled:?}");
    }
}
