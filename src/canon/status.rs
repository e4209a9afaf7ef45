//! `/proc/PID/task/TID/status` → the per-thread tuples of the `seccomp` and
//! `credentials` subsystems.
//!
//! A thread's tuple is the values of a fixed list of stable, security-relevant
//! fields, in that order. Threads come and go, so the form is the *set of
//! distinct tuples*: a new thread that looks like the others changes nothing, a
//! thread whose seccomp mode or capabilities differ shows.
//!
//! Volatile fields are never read: State, Vm*, Rss*, HugetlbPages, Threads,
//! Sig*, ShdPnd, context switches, FDSize, PPid, TracerPid, NSpid (a thread's
//! own id), NSpgid, NSsid, Name, Tgid, Pid, Ngid, CoreDumping.
//!
//! Fields a running service changes for itself, or that an operator changes
//! for it, and that are not isolation ([`NOT_ISOLATION`]: the umask, CPU and
//! memory-node affinity, `THP_enabled`, `untag_mask`) are not read either;
//! SUPPORTED.md gives the reason for each.

use std::fmt;

use super::Canon;

/// The fields of the `seccomp` subsystem: the sandbox state of a thread.
pub const SECCOMP_FIELDS: &[&str] = &[
    "Seccomp",
    "Seccomp_filters",
    "NoNewPrivs",
    "Speculation_Store_Bypass",
    "SpeculationIndirectBranch",
    "NStgid",
    "x86_Thread_features",
    "x86_Thread_features_locked",
];

/// Fields of `status` that a service or its operator legitimately changes at
/// run time and that are not isolation, so never part of a form: the umask
/// (a daemon sets it around the files it creates; file permissions are the
/// files' own), CPU and memory-node affinity (`taskset`, `numactl`, an
/// orchestrator's CPU manager; placement, not privilege — a cpuset cgroup's
/// limits are in `cgroup-limits`), `THP_enabled` (`PR_SET_THP_DISABLE`, set
/// by databases and JVMs: a performance switch) and `untag_mask` (tagged
/// addresses, enabled by the program for itself: an ABI feature). Baselines
/// written when the `seccomp` tuple held them are upgraded on load
/// ([`drop_not_isolation`]).
pub const NOT_ISOLATION: &[&str] =
    &["Umask", "Cpus_allowed", "Cpus_allowed_list", "Mems_allowed", "Mems_allowed_list", "THP_enabled", "untag_mask"];

/// A `seccomp` tuple (a record value, `NAME=value; NAME=value`) without the
/// fields of [`NOT_ISOLATION`], or `None` if it has none of them.
pub fn drop_not_isolation(tuple: &str) -> Option<String> {
    let dropped = |part: &&str| part.split_once('=').is_some_and(|(name, _)| NOT_ISOLATION.contains(&name));
    if !tuple.split(SEPARATOR).any(|p| dropped(&p)) {
        return None;
    }
    Some(tuple.split(SEPARATOR).filter(|p| !dropped(p)).collect::<Vec<_>>().join(SEPARATOR))
}

/// The fields of the `credentials` subsystem: who a thread is and what it may do.
pub const CREDENTIAL_FIELDS: &[&str] = &["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

/// A `status` text that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The kernel separates status values with tabs and spaces only; any other
/// byte (a `\r` from a flipped bit, say) is part of a value.
fn is_separator(b: &u8) -> bool {
    *b == b'\t' || *b == b' '
}

/// The value of field `name` in a `status` text, tabs and spaces trimmed.
pub fn field<'a>(input: &'a [u8], name: &str) -> Option<&'a [u8]> {
    input.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(name.as_bytes())?.strip_prefix(b":")?;
        Some(trim(rest))
    })
}

/// `value` without the separators around it.
fn trim(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !is_separator(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_separator(b)).map_or(start, |e| e + 1);
    value.get(start..end).unwrap_or_default()
}

/// How many fields one pass over a `status` text collects; a longer list's
/// remaining fields are looked up one by one.
const ONE_PASS: usize = 24;

/// Separates the fields of a tuple in its record value.
pub const SEPARATOR: &str = "; ";

/// Adds the tuple of `fields` of one thread's `status` to `out`.
///
/// Fields absent from this kernel are left out of the tuple. Runs of tabs and
/// spaces inside a value (`Uid:\t0\t0\t0\t0`) become one space. The text is
/// read once, whatever the number of fields (the first line of a field
/// counts, as with [`field`]), up to the line where the last is found.
pub fn canonicalize_thread(input: &[u8], fields: &[&str], out: &mut Canon) -> Result<(), ParseError> {
    let mut found: [Option<&[u8]>; ONE_PASS] = [None; ONE_PASS];
    // The first byte of each name looked for (a line of name `""` starts
    // with its colon), as bits: most lines start with none of them and are
    // passed over with one test, without looking for their colon.
    let mut firsts = [0u64; 4];
    let mut mark = |b: u8| {
        if let Some(w) = firsts.get_mut(usize::from(b >> 6)) {
            *w |= 1 << (b & 63);
        }
    };
    for f in fields.iter().take(ONE_PASS).chain(&["Name", "Pid"]) {
        mark(f.as_bytes().first().copied().unwrap_or(b':'));
    }
    let wanted = |b: u8| firsts.get(usize::from(b >> 6)).is_some_and(|w| w >> (b & 63) & 1 == 1);
    let mut left = fields.len().min(ONE_PASS);
    let mut named = false;
    let mut rest = input;
    while !rest.is_empty() && (left > 0 || !named) {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (rest.get(..end).unwrap_or_default(), rest.get(end + 1..).unwrap_or_default()),
            None => (rest, &[][..]),
        };
        rest = next;
        if !line.first().is_some_and(|&b| wanted(b)) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let (name, value) = (line.get(..colon).unwrap_or_default(), line.get(colon + 1..).unwrap_or_default());
        named |= name == b"Name" || name == b"Pid";
        if let Some(slot) =
            fields.iter().zip(found.iter_mut()).find_map(|(f, slot)| (f.as_bytes() == name).then_some(slot))
            && slot.is_none()
        {
            *slot = Some(trim(value));
            left = left.saturating_sub(1);
        }
    }
    if !named {
        return Err(ParseError("not a status file (no Name: or Pid: line)"));
    }
    let values = fields.iter().enumerate().map(|(i, &name)| match found.get(i) {
        Some(v) => (name, *v),
        None => (name, field(input, name)),
    });
    write_tuple(out, values);
    Ok(())
}

/// Writes one thread's tuple: `NAME=value` for each field the thread has,
/// in the order given, the value's words joined by one space.
fn write_tuple<'a>(out: &mut Canon, values: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) {
    let mut w = out.record();
    w.str("thread");
    w.value();
    let mut first = true;
    for (name, value) in values {
        let Some(v) = value else { continue };
        if !first {
            w.str(SEPARATOR);
        }
        first = false;
        w.str(name).str("=");
        for (i, word) in v.split(is_separator).filter(|s| !s.is_empty()).enumerate() {
            if i > 0 {
                w.str(" ");
            }
            w.bytes(word);
        }
    }
}

/// Splits a stored tuple back into `(field, value)` pairs.
pub fn split_tuple(value: &str) -> impl Iterator<Item = (&str, &str)> + '_ {
    value.split(SEPARATOR).filter(|s| !s.is_empty()).map(|kv| kv.split_once('=').unwrap_or((kv, "")))
}

/// The names of Linux capabilities, by bit number (capability(7)).
pub const CAPABILITIES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

fn cap_name(bit: u32) -> String {
    usize::try_from(bit)
        .ok()
        .and_then(|b| CAPABILITIES.get(b))
        .map_or_else(|| format!("cap_{bit}"), |s| (*s).to_owned())
}

/// For a capability-set change, the capabilities gained and lost, in words:
/// `"lost cap_chown, cap_kill"`. `None` if either value is not a hex mask.
pub fn capability_delta(before: &str, after: &str) -> Option<String> {
    let b = u64::from_str_radix(before, 16).ok()?;
    let a = u64::from_str_radix(after, 16).ok()?;
    let names = |mask: u64| -> Vec<String> { (0..64).filter(|i| mask >> i & 1 == 1).map(cap_name).collect() };
    let (gained, lost) = (names(a & !b), names(b & !a));
    let mut parts = Vec::new();
    if !gained.is_empty() {
        parts.push(format!("gained {}", gained.join(", ")));
    }
    if !lost.is_empty() {
        parts.push(format!("lost {}", lost.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A word on what a value of a sandbox field means, where it helps.
pub fn meaning(field: &str, value: &str) -> Option<&'static str> {
    match (field, value) {
        ("Seccomp", "0") => Some("no seccomp"),
        ("Seccomp", "1") => Some("strict mode"),
        ("Seccomp", "2") => Some("filter mode"),
        ("NoNewPrivs", "0") => Some("no_new_privs off"),
        ("NoNewPrivs", "1") => Some("no_new_privs on"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    pub(crate) const STATUS: &str = "Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Ngid:\t0
Pid:\t4242
PPid:\t1
TracerPid:\t0
Uid:\t1000\t1000\t1000\t1000
Gid:\t1000\t1000\t1000\t1000
FDSize:\t64
Groups:\t4 24 27
NStgid:\t4242
NSpid:\t4242
NSpgid:\t4242
NSsid:\t4242
Kthread:\t0
VmPeak:\t    8312 kB
VmSize:\t    8312 kB
VmRSS:\t    1664 kB
RssAnon:\t     100 kB
HugetlbPages:\t       0 kB
CoreDumping:\t0
THP_enabled:\t1
untag_mask:\t0xffffffffffffffff
Threads:\t1
SigQ:\t0/96364
SigPnd:\t0000000000000000
ShdPnd:\t0000000000000000
SigBlk:\t0000000000000000
SigIgn:\t0000000000000000
SigCgt:\t0000000000000000
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t0
Seccomp:\t0
Seccomp_filters:\t0
Speculation_Store_Bypass:\tthread vulnerable
SpeculationIndirectBranch:\tconditional enabled
Cpus_allowed:\t3
Cpus_allowed_list:\t0-1
Mems_allowed:\t00000000,00000001
Mems_allowed_list:\t0
voluntary_ctxt_switches:\t11
nonvoluntary_ctxt_switches:\t2
";

    fn digest(fields: &[&str], threads: &[&str], sub: Subsystem) -> crate::Digest {
        let mut c = Canon::new();
        for t in threads {
            canonicalize_thread(t.as_bytes(), fields, &mut c).unwrap();
        }
        c.digest(sub)
    }

    fn set(field: &str, value: &str) -> String {
        let prefix = format!("{field}:\t");
        STATUS
            .lines()
            .map(|l| if l.starts_with(&prefix) { format!("{prefix}{value}\n") } else { format!("{l}\n") })
            .collect()
    }

    const VOLATILE: &[(&str, &str)] = &[
        ("State", "R (running)"),
        ("VmPeak", "  99999 kB"),
        ("VmSize", "  99999 kB"),
        ("VmRSS", "  5000 kB"),
        ("RssAnon", "  4000 kB"),
        ("HugetlbPages", " 2048 kB"),
        ("Threads", "17"),
        ("SigQ", "3/96364"),
        ("SigPnd", "0000000000000100"),
        ("ShdPnd", "0000000000004000"),
        ("SigBlk", "fffffffe7ffbfeff"),
        ("SigIgn", "0000000000001000"),
        ("SigCgt", "0000000180004002"),
        ("voluntary_ctxt_switches", "98765"),
        ("nonvoluntary_ctxt_switches", "4321"),
        ("FDSize", "256"),
        ("PPid", "777"),
        ("TracerPid", "1234"),
        ("NSpid", "4243"),
        ("Pid", "4243"),
        ("NSpgid", "1"),
        ("NSsid", "1"),
        ("Name", "renamed"),
        ("Ngid", "3"),
        ("CoreDumping", "1"),
    ];

    /// The one-pass tuple is the field-by-field one: every field's first
    /// line, in the list's order, whatever the text (duplicated, missing,
    /// reordered, colon-less or separator-odd lines; lists longer than one
    /// pass collects).
    #[test]
    fn one_pass_tuple_is_the_field_by_field_tuple() {
        fn reference(input: &[u8], fields: &[&str], out: &mut Canon) -> Result<(), ParseError> {
            if field(input, "Name").is_none() && field(input, "Pid").is_none() {
                return Err(ParseError("not a status file (no Name: or Pid: line)"));
            }
            // The lookup under test is the one-pass one; the writing is shared.
            write_tuple(out, fields.iter().map(|&name| (name, field(input, name))));
            Ok(())
        }
        let long: Vec<&str> = SECCOMP_FIELDS
            .iter()
            .chain(CREDENTIAL_FIELDS)
            .chain(NOT_ISOLATION)
            .chain(["Name", "Pid", "State"].iter())
            .copied()
            .collect();
        assert!(long.len() > ONE_PASS);
        let reversed: String = STATUS.lines().rev().map(|l| format!("{l}\n")).collect();
        let texts = [
            STATUS.to_owned(),
            reversed,
            format!("{STATUS}Seccomp:\t0\nUid:\t7\n"),
            STATUS.replace("Seccomp:\t2", "Seccomp 2").replace("CapEff:", "CapEff:  \t \t"),
            STATUS.replace("Name:\tsleep\n", "").replace("Pid:\t4242\n", ""),
            STATUS.replace("Name:\tsleep\n", ""),
            "Pid:1".to_owned(),
            String::new(),
            ":\n::\nName::x\nUid:\t1\t2\r\n".to_owned(),
        ];
        for text in &texts {
            for fields in [SECCOMP_FIELDS, CREDENTIAL_FIELDS, &long[..], &[][..], &["", "Uid"][..]] {
                let (mut a, mut b) = (Canon::new(), Canon::new());
                let (ra, rb) =
                    (canonicalize_thread(text.as_bytes(), fields, &mut a), reference(text.as_bytes(), fields, &mut b));
                assert_eq!(ra, rb, "{text:?}");
                assert_eq!(a.records(), b.records(), "{text:?} {fields:?}");
            }
        }
    }

    #[test]
    fn volatile_fields_never_change_either_digest() {
        for sub in [Subsystem::Seccomp, Subsystem::Credentials] {
            let fields = if sub == Subsystem::Seccomp { SECCOMP_FIELDS } else { CREDENTIAL_FIELDS };
            let base = digest(fields, &[STATUS], sub);
            for (f, v) in VOLATILE {
                assert_eq!(digest(fields, &[&set(f, v)], sub), base, "{sub}: {f} is volatile");
            }
            // A new thread with the same tuple, and threads listed in another order.
            let t2 = set("Pid", "4243");
            assert_eq!(digest(fields, &[STATUS, &t2, STATUS], sub), base, "{sub}: threads");
        }
    }

    #[test]
    fn each_security_field_is_caught_by_its_subsystem() {
        let seccomp: &[(&str, &str)] = &[
            ("Seccomp", "2"),
            ("Seccomp_filters", "1"),
            ("NoNewPrivs", "1"),
            ("Speculation_Store_Bypass", "thread force mitigated"),
            ("SpeculationIndirectBranch", "conditional force disabled"),
            ("NStgid", "4242\t1"),
        ];
        let creds: &[(&str, &str)] = &[
            ("Uid", "1000\t0\t1000\t1000"),
            ("Gid", "1000\t1000\t0\t1000"),
            ("Groups", "4 24"),
            ("CapInh", "0000000000000001"),
            ("CapPrm", "0000000000200000"),
            ("CapEff", "0000000000200000"),
            ("CapBnd", "000001fffffffffe"),
            ("CapAmb", "0000000000000400"),
        ];
        for (sub, fields, changes, others) in [
            (Subsystem::Seccomp, SECCOMP_FIELDS, seccomp, creds),
            (Subsystem::Credentials, CREDENTIAL_FIELDS, creds, seccomp),
        ] {
            let base = digest(fields, &[STATUS], sub);
            for (f, v) in changes {
                assert_ne!(digest(fields, &[&set(f, v)], sub), base, "{sub} must catch {f}");
                // The change in one thread of two shows too.
                assert_ne!(digest(fields, &[STATUS, &set(f, v)], sub), base, "{sub}: {f} in one thread");
            }
            for (f, v) in others {
                assert_eq!(digest(fields, &[&set(f, v)], sub), base, "{f} belongs to the other subsystem, not {sub}");
            }
        }
    }

    /// Fields a service changes for itself and that are not isolation:
    /// quiet in both subsystems.
    #[test]
    fn churn_that_is_not_isolation_is_quiet() {
        let churn: &[(&str, &str)] = &[
            ("Umask", "0077"),
            ("Cpus_allowed", "1"),
            ("Cpus_allowed_list", "0"),
            ("Mems_allowed", "00000000,00000003"),
            ("Mems_allowed_list", "0-1"),
            ("THP_enabled", "0"),
            ("untag_mask", "0xff00ffffffffffff"),
        ];
        assert_eq!(churn.iter().map(|(f, _)| *f).collect::<Vec<_>>(), NOT_ISOLATION);
        for (sub, fields) in [(Subsystem::Seccomp, SECCOMP_FIELDS), (Subsystem::Credentials, CREDENTIAL_FIELDS)] {
            let base = digest(fields, &[STATUS], sub);
            for (f, v) in churn {
                assert_eq!(digest(fields, &[&set(f, v)], sub), base, "{sub}: {f} is not isolation");
            }
        }
    }

    #[test]
    fn an_older_tuple_loses_the_fields_that_are_not_isolation() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "Seccomp=2; NoNewPrivs=1; Cpus_allowed=3; Umask=0022; NStgid=7",
                Some("Seccomp=2; NoNewPrivs=1; NStgid=7"),
            ),
            ("Seccomp=0; THP_enabled=1; untag_mask=0xffffffffffffffff", Some("Seccomp=0")),
            ("Seccomp=2; NoNewPrivs=1", None),
            ("Cpus_allowed_list=0-1", Some("")),
        ];
        for (old, new) in cases {
            assert_eq!(drop_not_isolation(old).as_deref(), *new, "{old}");
        }
    }

    #[test]
    fn not_a_status_file() {
        let mut c = Canon::new();
        for bad in ["", "\n", "garbage", "\u{0}\u{ff}"] {
            assert!(canonicalize_thread(bad.as_bytes(), SECCOMP_FIELDS, &mut c).is_err());
        }
    }

    #[test]
    fn capability_words() {
        assert_eq!(capability_delta("000001ffffffffff", "000001fffffffffe").as_deref(), Some("lost cap_chown"));
        assert_eq!(capability_delta("0000000000000000", "0000000000200000").as_deref(), Some("gained cap_sys_admin"));
        assert_eq!(capability_delta("zz", "0"), None);
        assert_eq!(capability_delta("1", "1"), None);
    }
}
