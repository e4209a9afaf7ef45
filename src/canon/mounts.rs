//! `/proc/PID/mountinfo` → the mount records of the `mounts` subsystem.
//!
//! proc(5) gives each line as
//! `ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER-OPTIONS`.
//! One record per mount, keyed by its mount point, as the kernel escaped it
//! (`\040` for a space stays `\040`):
//!
//! ```text
//! /proc    type=proc; source=proc; root=/; options=rw,nosuid,nodev,noexec,relatime; propagation=shared:13; super=rw
//! ```
//!
//! What is kept, and why:
//!
//! - **type, source, root, options, super options**: what is mounted where,
//!   from which subtree (`root` is the bind-mount source inside the
//!   filesystem), with which restrictions (`ro`, `nosuid`, `nodev`, `noexec`
//!   per mount; `size=`, `hidepid=` ... per superblock).
//! - **propagation** (`shared:N`, `master:N`, `propagate_from:N`,
//!   `unbindable`, or `private`): whether mounts made elsewhere reach this
//!   namespace. The numbers are peer-group ids: allocated when a mount joins a
//!   peer group and stable for as long as it stays in it, so they are kept —
//!   a mount that moves to another peer group has changed what reaches it.
//! - **Overmounts**: a mount stacked on the same mount point over another
//!   (its parent is the mount below) is keyed `POINT (layer N)`, N counted
//!   from 1 at the bottom, so two mounts on one point never merge into one
//!   record, and a new layer shows as a new mount.
//!
//! What is dropped: the **mount id and parent id** (allocation numbers: a
//! mount namespace copied by `unshare(CLONE_NEWNS)` holds the same mounts under
//! new ids; the tree is expressed by the mount points and layers) and
//! **MAJOR:MINOR** (for virtual filesystems an anonymous number handed out
//! when the superblock is created, meaningless to a person; block devices are
//! named by SOURCE). The price: a mount unmounted and mounted again exactly
//! as it was is not seen — it is no change of isolation.
//!
//! The form is the mount table of a whole mount namespace: a process that
//! shares the host's namespace sees every mount the host makes (container
//! runtimes, automounts, user sessions) as drift. That is true drift of what
//! the process can reach; give such processes their own namespace, or leave
//! `mounts` out of their subsystems.

use std::collections::BTreeMap;

use super::Canon;
use super::status::SEPARATOR;

pub use super::ParseError;

/// One line of `mountinfo`, borrowing from the input; text fields are as the
/// kernel escaped them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountInfo<'a> {
    /// Mount id.
    pub id: u64,
    /// Parent mount id.
    pub parent: u64,
    /// Root of the mount inside its filesystem (bind-mount source).
    pub root: &'a [u8],
    /// Mount point, relative to the process's root.
    pub point: &'a [u8],
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: &'a [u8],
    /// Optional fields, space separated (`shared:1 master:2`); empty if none.
    pub optional: &'a [u8],
    /// Filesystem type (`ext4`, `fuse.sshfs`).
    pub fstype: &'a [u8],
    /// Mount source (`/dev/vda`, `tmpfs`, `none`).
    pub source: &'a [u8],
    /// Superblock options.
    pub super_options: &'a [u8],
}

/// A decimal field of a line (a mount id), `None` if it is not one.
pub(crate) fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Walks the space-separated fields of a line.
struct Fields<'a> {
    line: &'a [u8],
    /// Where the next field starts; past the end once the line is consumed.
    pos: usize,
}

impl<'a> Fields<'a> {
    /// The next field, which must not be empty.
    fn next(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let rest = self.line.get(self.pos..).ok_or(what)?;
        let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.pos += len + 1;
        rest.get(..len).filter(|f| !f.is_empty()).ok_or(what)
    }
}

/// Parses one line of `mountinfo`. Fields are separated by single spaces (the
/// kernel escapes any space inside a field), so an empty field is malformed.
pub fn parse_line(line: &[u8]) -> Result<MountInfo<'_>, &'static str> {
    let mut f = Fields { line, pos: 0 };
    let id = dec(f.next("missing mount id")?).ok_or("mount id is not a number")?;
    let parent = dec(f.next("missing parent id")?).ok_or("parent id is not a number")?;
    if !f.next("missing major:minor")?.contains(&b':') {
        return Err("major:minor without ':'");
    }
    let root = f.next("missing root")?;
    let point = f.next("missing mount point")?;
    let options = f.next("missing mount options")?;
    if root == b"-" || point == b"-" || options == b"-" {
        return Err("' - ' separator before the mount options");
    }
    let optional_start = f.pos;
    let mut optional_end = f.pos;
    while f.next("no ' - ' separator")? != b"-" {
        optional_end = f.pos - 1;
    }
    let optional = line.get(optional_start..optional_end).unwrap_or(&[]);
    let fstype = f.next("missing filesystem type")?;
    let source = f.next("missing mount source")?;
    let super_options = line.get(f.pos..).filter(|s| !s.is_empty()).ok_or("missing super options")?;
    Ok(MountInfo { id, parent, root, point, options, optional, fstype, source, super_options })
}

/// The one record of a mount table with no mount in it (a mount point is
/// an absolute path: no mount's record has this key).
pub const NONE_VISIBLE: &str = "(none)";

/// Parses a whole `mountinfo` text, in the kernel's order.
pub fn parse(input: &[u8]) -> Result<Vec<MountInfo<'_>>, ParseError> {
    let mut out = Vec::with_capacity(64);
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(parse_line(line).map_err(|message| ParseError { line: i + 1, message })?);
    }
    if out.is_empty() {
        return Err(ParseError { line: 0, message: "no mounts" });
    }
    Ok(out)
}

/// The layer of each mount on its mount point: 1 for a mount whose parent
/// is on another mount point, one more than its parent's otherwise.
fn layers(mounts: &[MountInfo<'_>]) -> Vec<usize> {
    let by_id: BTreeMap<u64, usize> = mounts.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    mounts
        .iter()
        .map(|m| {
            let mut layer = 1;
            let mut cur = m;
            // Bounded: a cycle in corrupt input cannot loop forever.
            for _ in 0..mounts.len() {
                match by_id.get(&cur.parent).and_then(|&i| mounts.get(i)) {
                    Some(p) if p.point == m.point && p.id != cur.id => {
                        layer += 1;
                        cur = p;
                    }
                    _ => break,
                }
            }
            layer
        })
        .collect()
}

/// Adds the records of a `mountinfo` text to `out`.
pub fn canonicalize(input: &[u8], out: &mut Canon) -> Result<(), ParseError> {
    if input.iter().all(u8::is_ascii_whitespace) {
        // A process whose root directory has no mount at or below it (a
        // chroot into a plain directory) sees no mount at all: a state to
        // compare, not a failed read (a process gone fails to open the file).
        out.push(NONE_VISIBLE, "no mount is reachable from the root directory");
        return Ok(());
    }
    let mounts = parse(input)?;
    for (m, layer) in mounts.iter().zip(layers(&mounts)) {
        let mut w = out.record();
        w.escaped(m.point);
        if layer > 1 {
            w.fmt(format_args!(" (layer {layer})"));
        }
        w.value();
        w.str("type=").escaped(m.fstype).str(SEPARATOR);
        w.str("source=").escaped(m.source).str(SEPARATOR);
        w.str("root=").escaped(m.root).str(SEPARATOR);
        w.str("options=").escaped(m.options).str(SEPARATOR);
        w.str("propagation=");
        if m.optional.is_empty() {
            w.str("private");
        } else {
            for (i, o) in m.optional.split(|&b| b == b' ').filter(|o| !o.is_empty()).enumerate() {
                if i > 0 {
                    w.str(",");
                }
                w.escaped(o);
            }
        }
        // Last: the only field whose text is the filesystem's own.
        w.str(SEPARATOR).str("super=").escaped(m.super_options);
    }
    Ok(())
}

/// Undoes the kernel's octal escapes (`\040` → space) in a mountinfo field.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while let Some(&b) = field.get(i) {
        if b == b'\\'
            && let Some(oct) = field.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// The per-mount options that restrict what a mount allows, and what losing
/// each means.
pub const RESTRICTIONS: &[(&str, &str)] = &[
    ("ro", "now writable"),
    ("nosuid", "set-user-ID programs now honoured"),
    ("nodev", "device files now usable"),
    ("noexec", "programs can now run from it"),
    ("nosymfollow", "symbolic links now followed"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// Captured on the test VM (Linux 6.18): /proc/self/mountinfo.
    pub(crate) const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd host: shared peer groups, a bind mount, an escaped space.
    const SYSTEMD: &str = "\
24 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
25 24 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
26 24 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8000000k,nr_inodes=2000000,mode=755
80 24 259:2 /srv/data /data\\040dir rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
81 26 0:50 / /dev/mqueue rw,nosuid,nodev,noexec,relatime master:7 - mqueue mqueue rw
";

    fn digest(text: &str) -> Result<crate::Digest, ParseError> {
        let mut c = Canon::new();
        canonicalize(text.as_bytes(), &mut c)?;
        Ok(c.digest(Subsystem::Mounts))
    }

    fn records(text: &str) -> Vec<crate::canon::Record> {
        let mut c = Canon::new();
        canonicalize(text.as_bytes(), &mut c).unwrap();
        c.records()
    }

    /// Renumbers every id and device as a copied mount namespace would.
    fn renumbered(text: &str) -> String {
        text.lines()
            .map(|l| {
                let mut f: Vec<String> = l.split(' ').map(str::to_owned).collect();
                f[0] = (f[0].parse::<u64>().unwrap() + 1000).to_string();
                f[1] = (f[1].parse::<u64>().unwrap() + 1000).to_string();
                f[2] = if f[2].starts_with("0:") { format!("0:{}", 900 + f[2].len()) } else { f[2].clone() };
                format!("{}\n", f.join(" "))
            })
            .collect()
    }

    #[test]
    fn no_mount_is_a_state_of_its_own() {
        let none = records("");
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].key, NONE_VISIBLE);
        assert_eq!(digest("\n").unwrap(), digest("").unwrap());
        assert_ne!(digest("").unwrap(), digest(MOUNTINFO).unwrap());
        assert!(parse(b"").is_err(), "parse still says a table has no mounts");
    }

    #[test]
    fn records_are_keyed_by_mount_point() {
        let r = records(SYSTEMD);
        let proc = r.iter().find(|r| r.key == "/proc").unwrap();
        assert_eq!(
            proc.value,
            "type=proc; source=proc; root=/; options=rw,nosuid,nodev,noexec,relatime; propagation=shared:13; super=rw"
        );
        let data = r.iter().find(|r| r.key == "/data\\040dir").unwrap();
        assert!(data.value.contains("root=/srv/data;"), "{data:?}");
        let mq = r.iter().find(|r| r.key == "/dev/mqueue").unwrap();
        assert!(mq.value.contains("propagation=master:7;"), "{mq:?}");
        let r = records(MOUNTINFO);
        assert!(r.iter().any(|r| r.key == "/proc" && r.value.contains("propagation=private")));
    }

    #[test]
    fn overmounts_do_not_collapse() {
        let r = records(MOUNTINFO);
        // /dev/pts and /dev/shm are each mounted twice, one over the other.
        let keys: Vec<&str> = r.iter().map(|r| r.key.as_str()).collect();
        for k in ["/dev/pts", "/dev/pts (layer 2)", "/dev/shm", "/dev/shm (layer 2)"] {
            assert!(keys.contains(&k), "{k}: {keys:?}");
        }
        assert_eq!(r.len(), MOUNTINFO.lines().count());
        // A third, identical layer is one more record.
        let more = format!("{MOUNTINFO}99 29 0:77 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000\n");
        assert_eq!(records(&more).len(), r.len() + 1);
        assert_ne!(digest(&more).unwrap(), digest(MOUNTINFO).unwrap());
    }

    #[test]
    fn volatile_parts_are_ignored() {
        for text in [MOUNTINFO, SYSTEMD] {
            let base = digest(text).unwrap();
            assert_eq!(digest(&renumbered(text)).unwrap(), base, "ids and anonymous devices");
            let reordered: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
            assert_eq!(digest(&reordered).unwrap(), base, "line order");
        }
    }

    #[test]
    fn every_isolation_change_is_caught() {
        let cases: &[(&str, String)] = &[
            ("new tmpfs", format!("{MOUNTINFO}90 27 0:90 / /tmp rw,relatime - tmpfs fdir-test rw,inode64\n")),
            ("unmounted", MOUNTINFO.replace("23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n", "")),
            ("remounted ro", MOUNTINFO.replace("/proc rw,relatime", "/proc ro,relatime")),
            ("nosuid lost", MOUNTINFO.replace("ro,nosuid,nodev,relatime", "ro,nodev,relatime")),
            ("super options", MOUNTINFO.replace("rw,size=24683656k\n26", "rw,size=1k\n26")),
            ("other source", MOUNTINFO.replace("ext4 /dev/vda", "ext4 /dev/vdb")),
            ("other type", MOUNTINFO.replace("- sysfs sysfs", "- tmpfs sysfs")),
            ("bind of a subtree", MOUNTINFO.replace("0:21 / /proc", "0:21 /1 /proc")),
            ("made shared", MOUNTINFO.replace("/proc rw,relatime -", "/proc rw,relatime shared:5 -")),
            ("made slave", MOUNTINFO.replace("/sys rw,relatime -", "/sys rw,relatime master:1 -")),
            ("moved point", MOUNTINFO.replace(" /sys/fs/cgroup/pids ", " /sys/fs/cgroup/pidz ")),
        ];
        let base = digest(MOUNTINFO).unwrap();
        for (name, text) in cases {
            assert_ne!(digest(text).unwrap(), base, "{name}");
        }
        let base = digest(SYSTEMD).unwrap();
        assert_ne!(digest(&SYSTEMD.replace("shared:13", "shared:14")).unwrap(), base, "peer group");
        assert_ne!(digest(&SYSTEMD.replace("shared:13 ", "")).unwrap(), base, "made private");
        assert_ne!(digest(&SYSTEMD.replace("master:7", "master:7 propagate_from:2")).unwrap(), base);
    }

    #[test]
    fn bad_input_is_an_error() {
        // An empty table is not bad input: `no_mount_is_a_state_of_its_own`.
        for bad in [
            "22 27 0:21 / /proc rw,relatime proc proc rw\n",
            "x 27 0:21 / /proc rw - proc proc rw\n",
            "22 27 021 / /proc rw - proc proc rw\n",
            "22 27 0:21 / /proc rw -\n",
            "22 27 0:21 / /proc rw - proc\n",
            "22 27 0:21 / - proc proc rw\n",
            "22  27 0:21 / /proc rw - proc proc rw\n",
        ] {
            assert!(digest(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_parent_cycle_in_corrupt_input_terminates() {
        let text = "1 2 0:1 / /a rw - tmpfs t rw\n2 1 0:2 / /a rw - tmpfs t rw\n3 3 0:3 / /b rw - tmpfs t rw\n";
        assert!(!records(text).is_empty());
    }

    #[test]
    fn unescape_reverses_octal() {
        assert_eq!(unescape(b"/data\\040dir\\134x"), b"/data dir\\x");
        assert_eq!(unescape(b"\\04"), b"\\04");
        assert_eq!(unescape(b"\\777"), b"\\777");
    }
}
