//! Cgroup control files → the records of the `cgroup-limits` subsystem.
//!
//! For every cgroup a thread of the process is in (from
//! `/proc/PID/task/*/cgroup`), and for each of its ancestors up to the root
//! of the hierarchy — a limit raised on a parent weakens every child — the
//! limit and policy files that exist in that directory are read. One record
//! per line of a file: key `HIERARCHY:CGROUP FILE` (`pids:/app pids.max`,
//! `unified:/ cgroup.max.depth`), value the line, runs of blanks made one
//! space. A file with no content is one record with an empty value; a file
//! that exists but cannot be read is one record `unreadable: REASON`.
//!
//! Which files: [`LIMIT_FILES`] and the `hugetlb.<size>.max`,
//! `hugetlb.<size>.limit_in_bytes` family (and their `.rsvd` variants). A
//! file this kernel or controller does not have is simply not in the
//! directory, so not recorded: absent, never drift on this kernel, never
//! empty.
//!
//! What is never read, as volatile: counters and state the kernel updates on
//! its own — `*.current`, `*.stat`, `*.events`, `*.pressure`, `*.peak`,
//! `*usage*`, `*failcnt`, `cgroup.procs`, `tasks`, `cgroup.threads`,
//! `cgroup.events`, `cpuset.*effective*`, `cgroup.controllers` (derived from
//! the parent's `cgroup.subtree_control`, which is kept), and
//! `net_prio.ifpriomap` (one line per network interface on the node). Of
//! `memory.oom_control` only the `oom_kill_disable` line is kept
//! (`under_oom` and `oom_kill` are state and a counter).

use super::Canon;

/// The limit and policy files recorded, cgroup v2 and v1.
pub const LIMIT_FILES: &[&str] = &[
    // cgroup core, v2
    "cgroup.type",
    "cgroup.subtree_control",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    // cgroup core, v1 (release_agent is a classic escape route: CVE-2022-0492)
    "cgroup.clone_children",
    "notify_on_release",
    "release_agent",
    // memory, v2
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "memory.swap.high",
    "memory.zswap.max",
    "memory.zswap.writeback",
    "memory.oom.group",
    // memory, v1
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.kmem.limit_in_bytes",
    "memory.kmem.tcp.limit_in_bytes",
    "memory.swappiness",
    "memory.use_hierarchy",
    "memory.move_charge_at_immigrate",
    "memory.oom_control",
    // pids
    "pids.max",
    // cpu, v2
    "cpu.max",
    "cpu.max.burst",
    "cpu.weight",
    "cpu.weight.nice",
    "cpu.idle",
    "cpu.uclamp.min",
    "cpu.uclamp.max",
    // cpu, v1
    "cpu.shares",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.cfs_burst_us",
    "cpu.rt_runtime_us",
    "cpu.rt_period_us",
    // cpuset, v2 and v1
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpus.partition",
    "cpuset.cpus.exclusive",
    "cpuset.cpu_exclusive",
    "cpuset.mem_exclusive",
    "cpuset.mem_hardwall",
    "cpuset.memory_migrate",
    "cpuset.sched_load_balance",
    "cpuset.sched_relax_domain_level",
    "cpuset.memory_spread_page",
    "cpuset.memory_spread_slab",
    // io, v2
    "io.max",
    "io.weight",
    "io.bfq.weight",
    "io.latency",
    "io.prio.class",
    "io.cost.qos",
    "io.cost.model",
    // blkio, v1
    "blkio.weight",
    "blkio.weight_device",
    "blkio.leaf_weight",
    "blkio.leaf_weight_device",
    "blkio.bfq.weight",
    "blkio.bfq.weight_device",
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
    // devices, v1 (the freezer state is run state, like SIGSTOP, not a limit:
    // fdir's own Isolate response freezes cgroups, and must not alarm on it)
    "devices.list",
    // others
    "net_cls.classid",
    "rdma.max",
    "misc.max",
];

/// Whether `name` is a limit or policy file this subsystem records.
pub fn is_limit_file(name: &str) -> bool {
    if LIMIT_FILES.contains(&name) {
        return true;
    }
    // hugetlb.2MB.max, hugetlb.1GB.rsvd.max (v2); hugetlb.2MB.limit_in_bytes,
    // hugetlb.2MB.rsvd.limit_in_bytes (v1).
    name.strip_prefix("hugetlb.").is_some_and(|rest| {
        let size = rest.split('.').next().unwrap_or("");
        !size.is_empty()
            && [".max", ".rsvd.max", ".limit_in_bytes", ".rsvd.limit_in_bytes"]
                .iter()
                .any(|suffix| rest.strip_prefix(size).is_some_and(|r| r == *suffix))
    })
}

/// The cgroup and its ancestors, deepest first: `/a/b` → `/a/b`, `/a`, `/`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> + '_ {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.rfind('/') {
            _ if cur == "/" || cur.is_empty() => None,
            Some(0) => Some("/"),
            Some(i) => cur.get(..i),
            None => None,
        };
        Some(cur)
    })
}

/// Adds the records of one control file to `out`.
pub fn add_file(out: &mut Canon, hierarchy: &str, cgroup: &str, file: &str, content: &[u8]) {
    let mut any = false;
    for line in content.split(|&b| b == b'\n') {
        let mut words = line.split(|&b| b == b' ' || b == b'\t' || b == b'\r').filter(|w| !w.is_empty()).peekable();
        if words.peek().is_none() {
            continue;
        }
        if file == "memory.oom_control" && !line.starts_with(b"oom_kill_disable") {
            continue;
        }
        let mut w = out.record();
        w.str(hierarchy).str(":").str(cgroup).str(" ").str(file).value();
        for (i, word) in words.enumerate() {
            if i > 0 {
                w.str(" ");
            }
            w.bytes(word);
        }
        any = true;
    }
    if !any {
        let mut w = out.record();
        w.str(hierarchy).str(":").str(cgroup).str(" ").str(file).value();
    }
}

/// The file name in the record of a cgroup directory fdir cannot see: the
/// hierarchy is not mounted in fdir's view, or the cgroup is gone.
pub const DIRECTORY: &str = "(cgroup)";

/// Adds the record of a control file that exists but cannot be read (or,
/// with [`DIRECTORY`], of a cgroup that cannot be listed).
pub fn add_unreadable(out: &mut Canon, hierarchy: &str, cgroup: &str, file: &str, reason: &str) {
    let mut w = out.record();
    w.str(hierarchy).str(":").str(cgroup).str(" ").str(file).value().str("unreadable: ").str(reason);
}

/// Splits a record key into (`HIERARCHY:CGROUP`, `FILE`); file names never
/// hold a space, cgroup paths may.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.rsplit_once(' ')
}

/// Whether a limit value means "no limit": `max` (v2; `max PERIOD` for
/// `cpu.max`), `-1` (v1 `cpu.cfs_quota_us`), or the page-aligned `LONG_MAX`
/// v1 memory limits read when unset.
pub fn is_unlimited(value: &str) -> bool {
    value == "max" || value.starts_with("max ") || value == "-1" || value == "9223372036854771712"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    /// Captured on the test VM (Linux 6.18, v1 controllers and an empty v2
    /// hierarchy): (hierarchy, cgroup, file, content).
    pub(crate) const CAPTURED: &[(&str, &str, &str, &str)] = &[
        ("unified", "/", "cgroup.max.depth", "max\n"),
        ("unified", "/", "cgroup.max.descendants", "max\n"),
        ("unified", "/", "cgroup.subtree_control", "\n"),
        ("pids", "/", "cgroup.clone_children", "0\n"),
        ("pids", "/", "notify_on_release", "0\n"),
        ("pids", "/", "release_agent", "\n"),
        ("pids", "/app", "pids.max", "max\n"),
        ("memory", "/", "memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory", "/", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"),
        ("memory", "/process_api", "memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory", "/process_api", "memory.soft_limit_in_bytes", "9223372036854771712\n"),
        ("memory", "/process_api", "memory.swappiness", "60\n"),
        ("cpu", "/", "cpu.cfs_quota_us", "-1\n"),
        ("cpu", "/", "cpu.cfs_period_us", "100000\n"),
        ("cpu", "/", "cpu.shares", "1024\n"),
        ("devices", "/", "devices.list", "a *:* rwm\n"),
        ("freezer", "/", "freezer.state", "THAWED\n"),
        ("cpuset", "/", "cpuset.cpus", "0-1\n"),
        ("cpuset", "/", "cpuset.mems", "0\n"),
    ];

    fn digest(files: &[(&str, &str, &str, &str)]) -> crate::Digest {
        let mut c = Canon::new();
        for (h, cg, f, content) in files {
            add_file(&mut c, h, cg, f, content.as_bytes());
        }
        c.digest(Subsystem::CgroupLimits)
    }

    fn with(
        file: &str,
        cgroup: &str,
        content: &'static str,
    ) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
        CAPTURED
            .iter()
            .map(|&(h, cg, f, c)| if f == file && cg == cgroup { (h, cg, f, content) } else { (h, cg, f, c) })
            .collect()
    }

    #[test]
    fn records_name_the_hierarchy_cgroup_and_file() {
        let mut c = Canon::new();
        for (h, cg, f, content) in CAPTURED {
            add_file(&mut c, h, cg, f, content.as_bytes());
        }
        let r = c.records();
        let find = |k: &str| r.iter().filter(|r| r.key == k).map(|r| r.value.as_str()).collect::<Vec<_>>();
        assert_eq!(find("pids:/app pids.max"), ["max"]);
        assert_eq!(find("unified:/ cgroup.subtree_control"), [""], "empty content is a value, not absence");
        assert_eq!(find("memory:/ memory.oom_control"), ["oom_kill_disable 0"]);
        assert_eq!(find("devices:/ devices.list"), ["a *:* rwm"]);
    }

    #[test]
    fn volatile_parts_are_ignored() {
        let base = digest(CAPTURED);
        // Counters inside memory.oom_control move on their own.
        assert_eq!(digest(&with("memory.oom_control", "/", "oom_kill_disable 0\nunder_oom 1\noom_kill 42\n")), base);
        // Blank padding and a missing final newline are layout.
        assert_eq!(digest(&with("cpu.shares", "/", "1024")), base);
        assert_eq!(digest(&with("devices.list", "/", "a  *:*\trwm\n")), base);
        let mut reordered = CAPTURED.to_vec();
        reordered.reverse();
        assert_eq!(digest(&reordered), base);
        // Counters and effective values are never recorded at all.
        for f in [
            "memory.current",
            "memory.stat",
            "memory.events",
            "memory.peak",
            "memory.pressure",
            "memory.usage_in_bytes",
            "memory.max_usage_in_bytes",
            "memory.failcnt",
            "pids.current",
            "pids.events",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.events",
            "cgroup.stat",
            "cgroup.controllers",
            "tasks",
            "cpu.stat",
            "cpuacct.usage",
            "cpuset.cpus.effective",
            "cpuset.effective_cpus",
            "io.stat",
            "net_prio.ifpriomap",
            "hugetlb.2MB.current",
            "hugetlb.2MB.usage_in_bytes",
            "hugetlb.2MB.max_usage_in_bytes",
            "hugetlb.2MB.events",
            "hugetlb..max",
        ] {
            assert!(!is_limit_file(f), "{f} is volatile");
        }
        for f in ["pids.max", "memory.max", "hugetlb.2MB.max", "hugetlb.1GB.rsvd.limit_in_bytes", "release_agent"] {
            assert!(is_limit_file(f), "{f}");
        }
    }

    #[test]
    fn every_limit_change_is_caught() {
        let base = digest(CAPTURED);
        let cases: &[(&str, &str, &str)] = &[
            ("pids.max", "/app", "10\n"),
            ("memory.limit_in_bytes", "/process_api", "104857600\n"),
            ("memory.oom_control", "/", "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n"),
            ("cgroup.max.descendants", "/", "5\n"),
            ("cgroup.subtree_control", "/", "pids memory\n"),
            ("release_agent", "/", "/tmp/x\n"),
            ("cpu.cfs_quota_us", "/", "50000\n"),
            ("devices.list", "/", "c 1:3 rwm\n"),
            ("devices.list", "/", "a *:* rwm\nc 1:3 rwm\n"),
            ("cpuset.cpus", "/", "0\n"),
            ("cpuset.cpus", "/", ""),
        ];
        for (file, cg, content) in cases {
            assert_ne!(digest(&with(file, cg, content)), base, "{file} {content:?}");
        }
        let gone: Vec<_> = CAPTURED.iter().copied().filter(|(_, _, f, _)| *f != "pids.max").collect();
        assert_ne!(digest(&gone), base, "a limit file gone");
        let mut c = Canon::new();
        add_unreadable(&mut c, "pids", "/app", "pids.max", "Invalid argument (os error 22)");
        assert_eq!(c.records()[0].value, "unreadable: Invalid argument (os error 22)");
    }

    #[test]
    fn ancestors_walk_to_the_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(ancestors("/").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/x").collect::<Vec<_>>(), ["/x", "/"]);
        assert_eq!(ancestors("rel").collect::<Vec<_>>(), ["rel"]);
        assert_eq!(split_key("pids:/my app pids.max"), Some(("pids:/my app", "pids.max")));
        for v in ["max", "max 100000", "max 50000", "-1", "9223372036854771712"] {
            assert!(is_unlimited(v), "{v}");
        }
        for v in ["10", "50000 100000", "maximum", "0"] {
            assert!(!is_unlimited(v), "{v}");
        }
    }
}
