//! `/proc/PID/attr/*` → the label records of the `lsm` subsystem.
//!
//! A Linux security module that labels processes shows the label in
//! `/proc/PID/attr/current` (SELinux `system_u:system_r:sshd_t:s0`, AppArmor
//! `/usr/sbin/cupsd (enforce)`, Smack `_`), and, since Linux 5.8, per module
//! in `/proc/PID/attr/<lsm>/current` for AppArmor and Smack. `exec` is the
//! label the next `execve` will switch to (set by `setexeccon`,
//! `aa_change_onexec`), a pending transition, so it is kept too.
//!
//! One record per file read: key the file ([`ATTRS`]), value the label with
//! the trailing newline or NUL the modules add removed (an unset `exec` is an
//! empty value). AppArmor's mode suffix is part of the label:
//! `(enforce)` → `(complain)` shows.
//!
//! Left out as volatile: `fscreate`, `keycreate`, `sockcreate` (labels a
//! process sets for the objects it is about to create, and resets), and
//! `prev` (the label before the last exec, history rather than state).
//!
//! Where no module provides a file, the kernel answers EINVAL (or the file
//! does not exist): it is not recorded. When no file is, the subsystem is
//! *not applicable* on this node — never drift, never unobservable.

use super::Canon;

/// The attribute files read, relative to `/proc/PID/attr`.
pub const ATTRS: &[&str] = &["current", "exec", "apparmor/current", "apparmor/exec", "smack/current"];

/// Adds the record of one attribute file to `out`.
pub fn add(out: &mut Canon, attr: &str, content: &[u8]) {
    let label = content.strip_suffix(b"\n").unwrap_or(content);
    let label = label.strip_suffix(b"\0").unwrap_or(label);
    let label = label.strip_suffix(b"\n").unwrap_or(label);
    let mut w = out.record();
    w.str(attr).value().bytes(label);
}

/// A word on what a label means, where it helps.
pub fn meaning(label: &str) -> Option<&'static str> {
    if label.ends_with("(complain)") {
        Some("AppArmor profile only logs, no longer enforces")
    } else if label.ends_with("(unconfined)") || label == "unconfined" || label.contains(":unconfined_t:") {
        Some("unconfined")
    } else if label.ends_with("(kill)") || label.ends_with("(enforce)") {
        Some("enforced")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    fn digest(files: &[(&str, &[u8])]) -> crate::Digest {
        let mut c = Canon::new();
        for (a, content) in files {
            add(&mut c, a, content);
        }
        c.digest(Subsystem::Lsm)
    }

    #[test]
    fn labels_are_trimmed_and_every_change_shows() {
        let apparmor: &[(&str, &[u8])] =
            &[("current", b"/usr/sbin/cupsd (enforce)\n"), ("apparmor/current", b"/usr/sbin/cupsd (enforce)\n")];
        let selinux: &[(&str, &[u8])] = &[("current", b"system_u:system_r:sshd_t:s0\0"), ("exec", b"")];
        for (base_files, changed) in [
            (apparmor, vec![("current", &b"/usr/sbin/cupsd (complain)\n"[..])]),
            (apparmor, vec![("current", &b"unconfined\n"[..])]),
            (selinux, vec![("current", &b"system_u:system_r:unconfined_t:s0\0"[..])]),
            (selinux, vec![("exec", &b"system_u:system_r:init_t:s0\0"[..])]),
        ] {
            let base = digest(base_files);
            let now: Vec<(&str, &[u8])> = base_files
                .iter()
                .map(|&(a, c)| changed.iter().find(|(x, _)| *x == a).map_or((a, c), |&(x, v)| (x, v)))
                .collect();
            assert_ne!(digest(&now), base, "{changed:?}");
        }
        // The trailing NUL or newline is not state.
        assert_eq!(digest(&[("current", b"a_t\0")]), digest(&[("current", b"a_t")]));
        assert_eq!(digest(&[("current", b"a (enforce)\n")]), digest(&[("current", b"a (enforce)")]));
        let mut c = Canon::new();
        add(&mut c, "exec", b"");
        assert_eq!(c.records()[0].value, "", "unset exec label");
        assert_eq!(meaning("/usr/bin/x (complain)"), Some("AppArmor profile only logs, no longer enforces"));
    }
}
