//! The isolation structures fdir watches, and the severity grades of drift.
//! Their names parse (`FromStr`) in `error.rs`, beside the error a wrong name
//! gives: this module sits below the error type and imports nothing of fdir's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One isolation structure of a process or of the node.
///
/// Displays and parses in kebab case (`memory-maps`, `seccomp`, ...); the same
/// names are used on the command line and in JSON.
///
/// ```
/// use fdir::Subsystem;
/// let s: Subsystem = "memory-maps".parse()?;
/// assert_eq!(s, Subsystem::MemoryMaps);
/// assert_eq!(s.to_string(), "memory-maps");
/// # Ok::<(), fdir::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Subsystem {
    /// The address space layout: which files and code are mapped, with what
    /// permissions (`/proc/PID/maps`).
    MemoryMaps,
    /// The sandbox state of every thread: seccomp mode and filter count,
    /// no_new_privs, speculation controls, the pid-namespace ids and the x86
    /// thread features (shadow stack) (`/proc/PID/task/*/status`).
    Seccomp,
    /// Control-group membership of every thread (`/proc/PID/task/*/cgroup`).
    Cgroups,
    /// User and group ids, supplementary groups and the five capability sets of
    /// every thread (`/proc/PID/task/*/status`).
    Credentials,
    /// The identity (device, inode) of every namespace the process is in, and
    /// of those its children will be created in (`/proc/PID/ns/*`).
    Namespaces,
    /// The limit and policy files of every cgroup the process's threads are
    /// in, and of their ancestors up to the root, cgroup v1 and v2
    /// (`memory.max`, `pids.max`, `cpu.max`, `devices.list` ...); counters
    /// are never read.
    CgroupLimits,
    /// The mount table of the process's mount namespace, by mount point:
    /// type, source, options, propagation (`/proc/PID/mountinfo`).
    Mounts,
    /// The resource limits, soft and hard (`/proc/PID/limits`).
    Limits,
    /// The label a Linux security module (SELinux, AppArmor, Smack) gives the
    /// process (`/proc/PID/attr/current` ...); not applicable where no LSM
    /// provides one.
    Lsm,
    /// The seccomp BPF programs of every thread, in the order they were
    /// installed, read with `PTRACE_SECCOMP_GET_FILTER` (each thread that has
    /// filters is stopped for a moment). Without `CAP_SYS_ADMIN` it degrades to
    /// the filter count, and says so. Not in the default set.
    SeccompFilters,
    /// The bytes of every private file-backed executable mapping, read through
    /// `/proc/PID/mem` and hashed in 64 KiB chunks; checks verify a bounded
    /// number of bytes per cycle and resume where the last one stopped. Not in
    /// the default set.
    Code,
    /// Node-wide hardening: security sysctls, the lockdown mode and active
    /// LSMs, loaded kernel modules, the kernel command line.
    Kernel,
    /// The kernel taint flags (`/proc/sys/kernel/tainted`), node-wide; kept
    /// apart from [`Subsystem::Kernel`] so a taint raises its own anomaly.
    KernelTaint,
}

/// Whether a subsystem belongs to one process or to the whole node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read from `/proc/PID`.
    Process,
    /// Node-wide state, the same for every process.
    Node,
}

impl Subsystem {
    /// Every subsystem, in order.
    pub const ALL: &'static [Subsystem] = &[
        Subsystem::MemoryMaps,
        Subsystem::Seccomp,
        Subsystem::Cgroups,
        Subsystem::Credentials,
        Subsystem::Namespaces,
        Subsystem::CgroupLimits,
        Subsystem::Mounts,
        Subsystem::Limits,
        Subsystem::Lsm,
        Subsystem::SeccompFilters,
        Subsystem::Code,
        Subsystem::Kernel,
        Subsystem::KernelTaint,
    ];

    /// The per-process subsystems that are cheap and non-intrusive: they read
    /// `/proc` and cgroupfs text only, never stop or trace the process. The
    /// default set for process targets: `seccomp-filters` (which stops
    /// threads with ptrace) and `code` (which reads all of the code) run only
    /// when named.
    pub const DEFAULT_PROCESS: &'static [Subsystem] = &[
        Subsystem::MemoryMaps,
        Subsystem::Seccomp,
        Subsystem::Cgroups,
        Subsystem::Credentials,
        Subsystem::Namespaces,
        Subsystem::CgroupLimits,
        Subsystem::Mounts,
        Subsystem::Limits,
        Subsystem::Lsm,
    ];

    /// The node-wide subsystems, the default set for the node target
    /// ([`crate::Procfs::system`]).
    pub const DEFAULT_NODE: &'static [Subsystem] = &[Subsystem::Kernel, Subsystem::KernelTaint];

    /// The seed's three subsystems, covered by [`crate::snapshot`], [`crate::check`]
    /// and [`crate::Config::default`].
    pub const SEED: &'static [Subsystem] = &[Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Cgroups];

    /// The kebab-case name used on the command line and in JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Subsystem::MemoryMaps => "memory-maps",
            Subsystem::Seccomp => "seccomp",
            Subsystem::Cgroups => "cgroups",
            Subsystem::Credentials => "credentials",
            Subsystem::Namespaces => "namespaces",
            Subsystem::CgroupLimits => "cgroup-limits",
            Subsystem::Mounts => "mounts",
            Subsystem::Limits => "limits",
            Subsystem::Lsm => "lsm",
            Subsystem::SeccompFilters => "seccomp-filters",
            Subsystem::Code => "code",
            Subsystem::Kernel => "kernel",
            Subsystem::KernelTaint => "kernel-taint",
        }
    }

    /// Whether the subsystem is checked when none are named (the command
    /// line's default set). The intrusive or costly ones are not:
    /// `seccomp-filters` stops the target's threads with ptrace, `code` reads
    /// all of its code through `/proc/PID/mem`. They run only when named, or
    /// with `--subsystems all`.
    ///
    /// ```
    /// use fdir::Subsystem;
    /// assert!(Subsystem::MemoryMaps.is_default());
    /// assert!(!Subsystem::Code.is_default());
    /// ```
    pub const fn is_default(self) -> bool {
        !matches!(self, Subsystem::SeccompFilters | Subsystem::Code)
    }

    /// Whether the subsystem is per process or node-wide.
    pub const fn scope(self) -> Scope {
        match self {
            Subsystem::MemoryMaps
            | Subsystem::Seccomp
            | Subsystem::Cgroups
            | Subsystem::Credentials
            | Subsystem::Namespaces
            | Subsystem::CgroupLimits
            | Subsystem::Mounts
            | Subsystem::Limits
            | Subsystem::Lsm
            | Subsystem::SeccompFilters
            | Subsystem::Code => Scope::Process,
            Subsystem::Kernel | Subsystem::KernelTaint => Scope::Node,
        }
    }

    /// The subsystems of `scope`, in order.
    ///
    /// ```
    /// use fdir::{Scope, Subsystem};
    /// assert!(Subsystem::of_scope(Scope::Node).all(|s| s.scope() == Scope::Node));
    /// ```
    pub fn of_scope(scope: Scope) -> impl Iterator<Item = Subsystem> {
        Subsystem::ALL.iter().copied().filter(move |s| s.scope() == scope)
    }
}

impl fmt::Display for Subsystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// How serious a drift is, and so which response it calls for.
///
/// Ordered `Log < Isolate < Restart < Degrade < SafeMode`.
///
/// ```
/// use fdir::Severity;
/// assert!(Severity::Log < Severity::SafeMode);
/// assert_eq!(Severity::SafeMode.to_string(), "safe-mode");
/// assert_eq!("degrade".parse::<Severity>()?, Severity::Degrade);
/// # Ok::<(), fdir::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Record the event; no action.
    Log,
    /// Cut the target off: freeze its cgroup, or stop it.
    Isolate,
    /// Restart the target.
    Restart,
    /// Shed functions: run the configured degrade command.
    Degrade,
    /// Enter safe mode: run the configured safe-mode command.
    SafeMode,
}

impl Severity {
    /// Every severity, in order.
    pub const ALL: &'static [Severity] =
        &[Severity::Log, Severity::Isolate, Severity::Restart, Severity::Degrade, Severity::SafeMode];

    /// The kebab-case name used on the command line and in JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Log => "log",
            Severity::Isolate => "isolate",
            Severity::Restart => "restart",
            Severity::Degrade => "degrade",
            Severity::SafeMode => "safe-mode",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sets_leave_out_exactly_the_intrusive_subsystems() {
        for &s in Subsystem::ALL {
            let listed = Subsystem::DEFAULT_PROCESS.contains(&s) || Subsystem::DEFAULT_NODE.contains(&s);
            assert_eq!(s.is_default(), listed, "{s}");
        }
        assert!(!Subsystem::SeccompFilters.is_default() && !Subsystem::Code.is_default());
        assert_eq!(Subsystem::SEED, [Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Cgroups]);
    }

    #[test]
    fn names_round_trip() {
        for &s in Subsystem::ALL {
            assert_eq!(s.to_string().parse::<Subsystem>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for &s in Severity::ALL {
            assert_eq!(s.to_string().parse::<Severity>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        let err = "memory_maps".parse::<Subsystem>().unwrap_err().to_string();
        assert!(err.contains("memory-maps"), "{err}");
    }

    #[test]
    fn sets_are_consistent() {
        let mut sorted = Subsystem::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, Subsystem::ALL, "ALL is complete, sorted and free of duplicates");
        for set in [Subsystem::SEED, Subsystem::DEFAULT_PROCESS, Subsystem::DEFAULT_NODE] {
            assert!(set.iter().all(|s| Subsystem::ALL.contains(s)));
        }
        assert!(Subsystem::DEFAULT_PROCESS.iter().all(|s| s.scope() == Scope::Process));
        assert!(Subsystem::DEFAULT_NODE.iter().all(|s| s.scope() == Scope::Node));
        assert_eq!(Subsystem::of_scope(Scope::Node).collect::<Vec<_>>(), Subsystem::DEFAULT_NODE);
        assert_eq!(Subsystem::KernelTaint.to_string(), "kernel-taint");
        assert_eq!("cgroup-limits".parse::<Subsystem>().unwrap(), Subsystem::CgroupLimits);
    }

    #[test]
    fn severity_order() {
        let mut sorted = Severity::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, Severity::ALL);
    }
}
