//! Node-wide kernel state → the records of the `kernel` and `kernel-taint`
//! subsystems.
//!
//! `kernel` records, each keyed so a person can read it:
//!
//! - one per hardening sysctl in [`SYSCTLS`], key its dotted name
//!   (`kernel.kptr_restrict`), value its content (blanks made one space);
//! - `lockdown`: the selected mode of `/sys/kernel/security/lockdown`
//!   (`[none] integrity confidentiality` → `none`);
//! - `lsm`: the active security modules, in stacking order
//!   (`/sys/kernel/security/lsm`);
//! - `module NAME` per loaded module (`/proc/modules`): value
//!   `size=N; state=Live[; taint=OE]`. Reference counts, the users list and the
//!   load address are left out (volatile, or hidden from non-root);
//!   `modules` = `absent` when the kernel has no module support;
//! - `cmdline`: the kernel command line.
//!
//! `kernel-taint` records `tainted`, the decimal bit mask of
//! `/proc/sys/kernel/tainted` (the flags are decoded in explanations).
//!
//! A file that does not exist on this kernel (a sysctl of a feature not
//! built, securityfs not mounted) has the value `absent`: a state of its own,
//! so it is never drift on this kernel and never read as empty. Present
//! content that happens to read `absent`, or starts with `"`, is written
//! quoted, so the form stays injective.
//!
//! Nothing here is volatile: these values change only when someone writes
//! them (or loads a module, or the kernel taints itself), which is the drift
//! this subsystem exists for.

use std::fmt;

use super::Canon;
use super::status::SEPARATOR;

/// Which way a sysctl hardens the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stricter {
    /// A higher number is stricter (`kptr_restrict`, `perf_event_paranoid`).
    Higher,
    /// A lower number is stricter (`suid_dumpable`, `ldisc_autoload`).
    Lower,
    /// Not a number, or no order (`core_pattern`, `modprobe`).
    Neither,
}

/// A hardening sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sysctl {
    /// Dotted name, as `sysctl(8)` prints it: `kernel.kptr_restrict`.
    pub name: &'static str,
    /// Which way is stricter.
    pub stricter: Stricter,
}

const fn s(name: &'static str, stricter: Stricter) -> Sysctl {
    Sysctl { name, stricter }
}

/// The hardening sysctls recorded (their paths under `/proc/sys` are the
/// names with `.` made `/`).
pub const SYSCTLS: &[Sysctl] = &[
    s("kernel.kptr_restrict", Stricter::Higher),
    s("kernel.dmesg_restrict", Stricter::Higher),
    s("kernel.randomize_va_space", Stricter::Higher),
    s("kernel.unprivileged_bpf_disabled", Stricter::Neither),
    s("kernel.perf_event_paranoid", Stricter::Higher),
    s("kernel.yama.ptrace_scope", Stricter::Higher),
    s("kernel.modules_disabled", Stricter::Higher),
    s("kernel.kexec_load_disabled", Stricter::Higher),
    s("kernel.kexec_load_limit_panic", Stricter::Lower),
    s("kernel.kexec_load_limit_reboot", Stricter::Lower),
    s("kernel.io_uring_disabled", Stricter::Higher),
    s("kernel.io_uring_group", Stricter::Neither),
    s("kernel.sysrq", Stricter::Lower),
    s("kernel.core_pattern", Stricter::Neither),
    s("kernel.core_uses_pid", Stricter::Neither),
    s("kernel.modprobe", Stricter::Neither),
    s("kernel.panic_on_oops", Stricter::Higher),
    s("kernel.unprivileged_userns_clone", Stricter::Lower),
    s("kernel.apparmor_restrict_unprivileged_userns", Stricter::Higher),
    s("kernel.apparmor_restrict_unprivileged_unconfined", Stricter::Higher),
    s("kernel.seccomp.actions_logged", Stricter::Neither),
    s("user.max_user_namespaces", Stricter::Lower),
    s("fs.protected_hardlinks", Stricter::Higher),
    s("fs.protected_symlinks", Stricter::Higher),
    s("fs.protected_fifos", Stricter::Higher),
    s("fs.protected_regular", Stricter::Higher),
    s("fs.suid_dumpable", Stricter::Lower),
    s("vm.mmap_min_addr", Stricter::Higher),
    s("vm.mmap_rnd_bits", Stricter::Higher),
    s("vm.mmap_rnd_compat_bits", Stricter::Higher),
    s("vm.unprivileged_userfaultfd", Stricter::Lower),
    s("vm.memfd_noexec", Stricter::Higher),
    s("net.core.bpf_jit_harden", Stricter::Higher),
    s("net.core.bpf_jit_enable", Stricter::Neither),
    s("net.core.bpf_jit_kallsyms", Stricter::Lower),
    s("dev.tty.ldisc_autoload", Stricter::Lower),
    s("dev.tty.legacy_tiocsti", Stricter::Lower),
];

/// The sysctl named `name`, if it is one of [`SYSCTLS`].
pub fn sysctl(name: &str) -> Option<&'static Sysctl> {
    SYSCTLS.iter().find(|s| s.name == name)
}

/// The value of a file that does not exist.
pub const ABSENT: &str = "absent";

/// Writes present content or [`ABSENT`] as a value: blanks made one space,
/// surrounding blanks and NULs trimmed, quoted when it could be mistaken for
/// absence.
fn value(w: &mut super::RecordWriter<'_>, content: Option<&[u8]>) {
    let Some(content) = content else {
        w.str(ABSENT);
        return;
    };
    let blank = |b: &u8| matches!(*b, b' ' | b'\t' | b'\n' | b'\r' | b'\0');
    let quote = {
        let mut words = content.split(blank).filter(|w| !w.is_empty());
        let first = words.next();
        first.is_some_and(|f| f.starts_with(b"\"")) || (first == Some(ABSENT.as_bytes()) && words.next().is_none())
    };
    if quote {
        w.str("\"");
    }
    for (i, word) in content.split(blank).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            w.str(" ");
        }
        w.bytes(word);
    }
    if quote {
        w.str("\"");
    }
}

/// Adds the record of a sysctl; `None` if it does not exist on this kernel.
pub fn add_sysctl(out: &mut Canon, name: &str, content: Option<&[u8]>) {
    let mut w = out.record();
    w.str(name).value();
    value(&mut w, content);
}

/// Adds the `lockdown` record: the mode in brackets, or the whole text if
/// none is bracketed; `None` if the file does not exist.
pub fn add_lockdown(out: &mut Canon, content: Option<&[u8]>) {
    let selected = content.map(|c| {
        let open = c.iter().position(|&b| b == b'[');
        let close = c.iter().position(|&b| b == b']');
        match (open, close) {
            (Some(o), Some(e)) if o < e => c.get(o + 1..e).unwrap_or(c),
            _ => c,
        }
    });
    let mut w = out.record();
    w.str("lockdown").value();
    value(&mut w, selected);
}

/// Adds the `lsm` record (active LSMs, comma separated, in order).
pub fn add_lsm_list(out: &mut Canon, content: Option<&[u8]>) {
    let mut w = out.record();
    w.str("lsm").value();
    value(&mut w, content);
}

/// Adds the `cmdline` record.
pub fn add_cmdline(out: &mut Canon, content: Option<&[u8]>) {
    let mut w = out.record();
    w.str("cmdline").value();
    value(&mut w, content);
}

/// Adds the `tainted` record of `kernel-taint`.
pub fn add_taint(out: &mut Canon, content: Option<&[u8]>) {
    let mut w = out.record();
    w.str("tainted").value();
    value(&mut w, content);
}

/// A `/proc/modules` text that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Adds one `module NAME` record per line of `/proc/modules`
/// (`NAME SIZE REFS USERS STATE ADDRESS [(TAINT)]`); `None` (no module
/// support) adds `modules` = `absent`. No line is no module loaded.
pub fn add_modules(out: &mut Canon, content: Option<&[u8]>) -> Result<(), ParseError> {
    let Some(content) = content else {
        out.push("modules", ABSENT);
        return Ok(());
    };
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = |message| ParseError { line: i + 1, message };
        let mut f = line.split(|&b| b == b' ').filter(|f| !f.is_empty());
        let name = f.next().ok_or(err("no module name"))?;
        let size = f.next().ok_or(err("no size"))?;
        if !size.iter().all(u8::is_ascii_digit) {
            return Err(err("size is not a number"));
        }
        let _refs = f.next().ok_or(err("no reference count"))?;
        let _users = f.next().ok_or(err("no users list"))?;
        let state = f.next().ok_or(err("no state"))?;
        if !matches!(state, b"Live" | b"Loading" | b"Unloading") {
            return Err(err("state is not Live, Loading or Unloading"));
        }
        let _address = f.next().ok_or(err("no address"))?;
        let taint = f.next().map(|t| t.strip_prefix(b"(").and_then(|t| t.strip_suffix(b")")).unwrap_or(t));
        let mut w = out.record();
        w.str("module ").bytes(name).value();
        w.str("size=").bytes(size).str(SEPARATOR).str("state=").bytes(state);
        if let Some(t) = taint {
            w.str(SEPARATOR).str("taint=").bytes(t);
        }
    }
    Ok(())
}

/// The kernel's taint flags, by bit (Documentation/admin-guide/tainted-kernels.rst).
pub const TAINT_FLAGS: &[(char, &str)] = &[
    ('P', "proprietary module loaded"),
    ('F', "module force loaded"),
    ('S', "kernel running on an out of specification system"),
    ('R', "module force unloaded"),
    ('M', "processor reported a machine check exception"),
    ('B', "bad page referenced or unexpected page flags"),
    ('U', "taint requested by userspace"),
    ('D', "kernel died recently (oops or BUG)"),
    ('A', "ACPI table overridden by user"),
    ('W', "kernel issued a warning"),
    ('C', "staging driver loaded"),
    ('I', "workaround for a platform firmware bug applied"),
    ('O', "out-of-tree module loaded"),
    ('E', "unsigned module loaded"),
    ('L', "soft lockup occurred"),
    ('K', "kernel live patched"),
    ('X', "auxiliary taint (distribution defined)"),
    ('T', "kernel built with the struct randomization plugin"),
    ('N', "an in-kernel test has been run"),
    ('J', "userspace used a mutating debug operation in fwctl"),
];

/// The flags set in a taint mask, as `O: out-of-tree module loaded`; a bit
/// without a known name reads `bit N`.
pub fn taint_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask >> bit & 1 == 1)
        .map(|bit| {
            usize::try_from(bit)
                .ok()
                .and_then(|b| TAINT_FLAGS.get(b))
                .map_or_else(|| format!("bit {bit}"), |(c, name)| format!("{c}: {name}"))
        })
        .collect()
}

/// The sysctl's path below `/proc/sys`: `kernel.kptr_restrict` →
/// `kernel/kptr_restrict`.
pub fn sysctl_path(name: &str) -> String {
    name.replace('.', "/")
}

/// Splits a command line into its parameters, keeping double-quoted values
/// (`a="b c"`) whole.
pub fn parameters(cmdline: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    for (i, c) in cmdline.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            ' ' if !quoted => {
                if let Some(s) = start.take() {
                    out.extend(cmdline.get(s..i));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.extend(cmdline.get(s..));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// Captured on the test VM (Linux 6.18): sysctl values, `None` where the
    /// file does not exist on this kernel.
    pub(crate) const CAPTURED: &[(&str, Option<&str>)] = &[
        ("kernel.kptr_restrict", Some("0\n")),
        ("kernel.dmesg_restrict", Some("1\n")),
        ("kernel.randomize_va_space", Some("2\n")),
        ("kernel.unprivileged_bpf_disabled", Some("2\n")),
        ("kernel.perf_event_paranoid", Some("2\n")),
        ("kernel.yama.ptrace_scope", None),
        ("kernel.modules_disabled", None),
        ("kernel.io_uring_disabled", Some("0\n")),
        ("kernel.core_pattern", Some("core\n")),
        ("fs.protected_hardlinks", Some("1\n")),
        ("fs.protected_symlinks", Some("0\n")),
        ("vm.mmap_min_addr", Some("4096\n")),
        ("net.core.bpf_jit_harden", Some("0\n")),
        ("kernel.printk", Some("4\t4\t1\t7\n")),
    ];
    const CMDLINE: &str = "mitigations=auto,no_guest_host,no_guest_guest console=ttyS0 quiet reboot=k panic=1 nomodule random.trust_cpu=1\n";
    const MODULES: &str =
        "nf_tables 364544 0 - Live 0xffffffffc0a00000\nfdir_test 16384 1 nf_tables, Live 0x0000000000000000 (OE)\n";

    type Node<'a> =
        (Vec<(&'a str, Option<&'a str>)>, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

    fn base() -> Node<'static> {
        (CAPTURED.to_vec(), None, None, Some(MODULES), Some(CMDLINE))
    }

    fn digest(n: &Node<'_>) -> crate::Digest {
        let mut c = Canon::new();
        for (k, v) in &n.0 {
            add_sysctl(&mut c, k, v.map(str::as_bytes));
        }
        add_lockdown(&mut c, n.1.map(str::as_bytes));
        add_lsm_list(&mut c, n.2.map(str::as_bytes));
        add_modules(&mut c, n.3.map(str::as_bytes)).unwrap();
        add_cmdline(&mut c, n.4.map(str::as_bytes));
        c.digest(Subsystem::Kernel)
    }

    fn set(name: &str, v: Option<&'static str>) -> Node<'static> {
        let mut n = base();
        for e in &mut n.0 {
            if e.0 == name {
                e.1 = v;
            }
        }
        n
    }

    #[test]
    fn records_read_like_sysctl() {
        let mut c = Canon::new();
        for (k, v) in CAPTURED {
            add_sysctl(&mut c, k, v.map(str::as_bytes));
        }
        add_lockdown(&mut c, Some(b"none [integrity] confidentiality\n"));
        add_modules(&mut c, Some(MODULES.as_bytes())).unwrap();
        let r = c.records();
        let get = |k: &str| r.iter().find(|r| r.key == k).map(|r| r.value.as_str());
        assert_eq!(get("kernel.kptr_restrict"), Some("0"));
        assert_eq!(get("kernel.yama.ptrace_scope"), Some("absent"));
        assert_eq!(get("kernel.printk"), Some("4 4 1 7"));
        assert_eq!(get("lockdown"), Some("integrity"));
        assert_eq!(get("module nf_tables"), Some("size=364544; state=Live"));
        assert_eq!(get("module fdir_test"), Some("size=16384; state=Live; taint=OE"));
    }

    #[test]
    fn absent_empty_and_present_are_three_states() {
        let absent = digest(&set("kernel.core_pattern", None));
        let empty = digest(&set("kernel.core_pattern", Some("\n")));
        let word = digest(&set("kernel.core_pattern", Some("absent\n")));
        let quoted = digest(&set("kernel.core_pattern", Some("\"absent\"\n")));
        assert_ne!(absent, empty);
        assert_ne!(absent, word);
        assert_ne!(word, quoted);
        assert_ne!(empty, word);
    }

    #[test]
    fn volatile_parts_are_ignored() {
        let b = digest(&base());
        let mut n = base();
        n.3 = Some(
            "nf_tables 364544 3 fdir_test,other, Live 0x0000000000000000\nfdir_test 16384 0 - Live 0xffffffffc0b00000 (OE)\n",
        );
        assert_eq!(digest(&n), b, "reference counts, users, addresses and module order");
        let mut n = base();
        n.0.reverse();
        assert_eq!(digest(&n), b, "order of reading");
        assert_eq!(digest(&set("kernel.printk", Some("4 4  1\t7"))), b, "blanks");
    }

    #[test]
    fn every_hardening_change_is_caught() {
        let b = digest(&base());
        for (name, v) in [
            ("kernel.kptr_restrict", Some("1\n")),
            ("kernel.dmesg_restrict", Some("0\n")),
            ("kernel.randomize_va_space", Some("0\n")),
            ("kernel.unprivileged_bpf_disabled", Some("0\n")),
            ("kernel.perf_event_paranoid", Some("-1\n")),
            ("kernel.yama.ptrace_scope", Some("0\n")),
            ("kernel.io_uring_disabled", Some("2\n")),
            ("kernel.core_pattern", Some("|/tmp/x %p\n")),
            ("fs.protected_symlinks", Some("1\n")),
            ("vm.mmap_min_addr", Some("0\n")),
            ("net.core.bpf_jit_harden", Some("2\n")),
            ("kernel.kptr_restrict", None),
        ] {
            assert_ne!(digest(&set(name, v)), b, "{name} {v:?}");
        }
        let mut changes: Vec<Node<'static>> = Vec::new();
        for f in [
            |n: &mut Node<'static>| n.1 = Some("none [integrity] confidentiality\n"),
            |n: &mut Node<'static>| n.2 = Some("capability,landlock,lockdown,yama,bpf\n"),
            |n: &mut Node<'static>| n.3 = Some("nf_tables 364544 0 - Live 0xffffffffc0a00000\n"),
            |n: &mut Node<'static>| n.3 = Some("nf_tables 364545 0 - Live 0x0\nfdir_test 16384 1 - Live 0x0 (OE)\n"),
            |n: &mut Node<'static>| n.3 = Some("nf_tables 364544 0 - Live 0x0\nfdir_test 16384 1 - Live 0x0 (POE)\n"),
            |n: &mut Node<'static>| n.3 = None,
            |n: &mut Node<'static>| n.4 = Some("console=ttyS0 quiet\n"),
            |n: &mut Node<'static>| n.4 = None,
        ] {
            let mut n = base();
            f(&mut n);
            changes.push(n);
        }
        for n in &changes {
            assert_ne!(digest(n), b, "{n:?}");
        }
        // Lockdown modes differ from one another.
        let mut a = base();
        a.1 = Some("[none] integrity confidentiality");
        let mut c = base();
        c.1 = Some("none integrity [confidentiality]");
        assert_ne!(digest(&a), digest(&c));
    }

    #[test]
    fn taint_is_its_own_record() {
        let t = |v: Option<&str>| {
            let mut c = Canon::new();
            add_taint(&mut c, v.map(str::as_bytes));
            c.digest(Subsystem::KernelTaint)
        };
        assert_eq!(t(Some("0\n")), t(Some("0")));
        assert_ne!(t(Some("0\n")), t(Some("4096\n")));
        assert_ne!(t(Some("0\n")), t(None));
        assert_eq!(taint_names(4096), ["O: out-of-tree module loaded"]);
        assert_eq!(taint_names(1 | 1 << 63), ["P: proprietary module loaded", "bit 63"]);
        assert!(taint_names(0).is_empty());
    }

    #[test]
    fn bad_module_lines_are_errors() {
        for bad in ["x\n", "x 12\n", "x y 0 - Live 0x0\n", "x 12 0 - Dead 0x0\n", "x 12 0 - Live\n"] {
            let mut c = Canon::new();
            assert!(add_modules(&mut c, Some(bad.as_bytes())).is_err(), "{bad:?}");
        }
        let mut c = Canon::new();
        add_modules(&mut c, None).unwrap();
        assert_eq!(c.records()[0].key, "modules");
    }

    #[test]
    fn command_line_parameters() {
        assert_eq!(parameters("a b=\"c d\" e"), ["a", "b=\"c d\"", "e"]);
        assert_eq!(parameters("  a  "), ["a"]);
        assert!(parameters("").is_empty());
        assert_eq!(sysctl_path("kernel.yama.ptrace_scope"), "kernel/yama/ptrace_scope");
        assert!(sysctl("kernel.kptr_restrict").is_some());
    }
}
