//! `/proc/PID/ns/*` → the namespace records of the `namespaces` subsystem.
//!
//! Each entry of `/proc/PID/ns` is a link to the namespace the process is in
//! (`cgroup`, `ipc`, `mnt`, `net`, `pid`, `time`, `user`, `uts`) or will create
//! its children in (`pid_for_children`, `time_for_children`). A namespace is
//! identified by the device and inode of that link's target (namespaces(7):
//! "if two processes are in the same namespace, then the device IDs and inode
//! numbers of their /proc/PID/ns/xxx symbolic links will be the same"). One
//! record per entry: key the entry name, value `DEV:INODE`.
//!
//! After `unshare(CLONE_NEWPID)` (or `CLONE_NEWTIME`) and before the first
//! child is created, the `*_for_children` entry is listed but does not resolve
//! (ENOENT): recorded as `pending`, a state of its own, so the unshare shows.
//! An entry the kernel does not list (no time namespaces before Linux 5.6) is
//! not recorded: absent on this kernel, never drift on it.
//!
//! Nothing here is volatile: a process stays in its namespaces until it calls
//! `setns` or `unshare`, which is exactly what this subsystem reports.

use super::Canon;

/// The entries of `/proc/PID/ns` on Linux 6.x, in the kernel's order.
pub const KNOWN: &[&str] =
    &["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"];

/// The value of an entry that is listed but does not resolve yet.
pub const PENDING: &str = "pending";

/// What one `/proc/PID/ns` entry resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsState {
    /// The namespace's identity: the device and inode of the link's target.
    Identity {
        /// Device number (of the nsfs).
        dev: u64,
        /// Inode number: the number in `net:[4026531833]`.
        ino: u64,
    },
    /// Listed but not resolvable: a `*_for_children` namespace unshared and
    /// not yet populated.
    Pending,
}

/// Whether an entry names the namespace of future children rather than the
/// process's own (`pid_for_children`, `time_for_children`).
pub fn is_for_children(name: &str) -> bool {
    name.ends_with("_for_children")
}

/// Adds the record of one entry to `out`.
pub fn add(out: &mut Canon, name: &[u8], state: NsState) {
    let mut w = out.record();
    w.bytes(name).value();
    match state {
        NsState::Identity { dev, ino } => w.fmt(format_args!("{dev}:{ino}")),
        NsState::Pending => w.str(PENDING),
    };
}

/// The kind of namespace of an entry: `pid` for `pid_for_children`.
pub fn kind(name: &str) -> &str {
    name.strip_suffix("_for_children").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// `ls -lL`-style capture of /proc/self/ns on the test VM (Linux 6.18):
    /// (name, dev, inode).
    const CAPTURED: &[(&str, u64, u64)] = &[
        ("cgroup", 4, 4026531835),
        ("ipc", 4, 4026531839),
        ("mnt", 4, 4026531832),
        ("net", 4, 4026531833),
        ("pid", 4, 4026531836),
        ("pid_for_children", 4, 4026531836),
        ("time", 4, 4026531834),
        ("time_for_children", 4, 4026531834),
        ("user", 4, 4026531837),
        ("uts", 4, 4026531838),
    ];

    fn digest(entries: &[(&str, NsState)]) -> crate::Digest {
        let mut c = Canon::new();
        for (name, state) in entries {
            add(&mut c, name.as_bytes(), *state);
        }
        c.digest(Subsystem::Namespaces)
    }

    fn captured() -> Vec<(&'static str, NsState)> {
        CAPTURED.iter().map(|&(n, dev, ino)| (n, NsState::Identity { dev, ino })).collect()
    }

    fn with(name: &str, state: NsState) -> Vec<(&'static str, NsState)> {
        captured().into_iter().map(|(n, s)| if n == name { (n, state) } else { (n, s) }).collect()
    }

    #[test]
    fn order_is_not_state() {
        let base = digest(&captured());
        let mut rev = captured();
        rev.reverse();
        assert_eq!(digest(&rev), base);
    }

    #[test]
    fn every_move_is_caught() {
        let base = digest(&captured());
        for &(name, dev, ino) in CAPTURED {
            for (what, state) in [
                ("new inode", NsState::Identity { dev, ino: ino + 1000 }),
                ("other device", NsState::Identity { dev: dev + 1, ino }),
                ("pending", NsState::Pending),
            ] {
                assert_ne!(digest(&with(name, state)), base, "{name}: {what}");
            }
            let without: Vec<_> = captured().into_iter().filter(|(n, _)| *n != name).collect();
            assert_ne!(digest(&without), base, "{name} no longer listed");
        }
        // Two entries swapping identities is a change too.
        let net = NsState::Identity { dev: 4, ino: 4026531833 };
        let ipc = NsState::Identity { dev: 4, ino: 4026531839 };
        assert_ne!(digest(&with("net", ipc)), base);
        assert_ne!(digest(&with("ipc", net)), base);
    }

    #[test]
    fn records_read_as_dev_inode() {
        let mut c = Canon::new();
        add(&mut c, b"net", NsState::Identity { dev: 4, ino: 4026531833 });
        add(&mut c, b"pid_for_children", NsState::Pending);
        add(&mut c, b"odd\tname", NsState::Pending);
        let lines: Vec<_> = c.records();
        assert_eq!(lines[0].key, "net");
        assert_eq!(lines[0].value, "4:4026531833");
        assert_eq!(lines[1].key, "odd\\tname");
        assert_eq!(lines[2].value, "pending");
        assert_eq!(kind("pid_for_children"), "pid");
        assert!(is_for_children("time_for_children") && !is_for_children("time"));
    }
}
