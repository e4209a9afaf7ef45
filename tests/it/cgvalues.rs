//! Cgroup control values made from the kernel's structs (`source/cgvalues.rs`):
//! a child is moved into cgroups of the test's own, in every hierarchy this
//! machine has a controller of the program's for, with values that are not
//! the defaults, and every control file the program makes a text for must
//! read as that text (record by record as `cgroup-limits` keeps them, and
//! byte for byte but for `memory.oom_control`, of which one line is kept).
//! Then a monitor over the child is quiet, and sees limits changed from
//! outside.

use crate::common;

use std::path::PathBuf;

use common::{Hierarchy, ScratchCgroup, Testee, is_root, skip};
use fdir::{Coverage, Finding, Monitor, Subsystem, SystemClock};

/// The mount of the v1 hierarchy of `controller`, or of cgroup2 (`None`).
fn mount_of(controller: Option<&str>) -> Option<Hierarchy> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount = left.split(' ').nth(4)?;
        let mut r = right.split(' ');
        let (fstype, opts) = (r.next()?, r.nth(1)?);
        let hit = match controller {
            None => fstype == "cgroup2",
            Some(c) => fstype == "cgroup" && opts.split(',').any(|o| o == c),
        };
        hit.then(|| Hierarchy {
            mount: PathBuf::from(mount),
            v2: controller.is_none(),
            controller: controller.unwrap_or("").to_owned(),
        })
    })
}

/// Writes `value` to `file` of `cg`, saying (not failing) where the kernel
/// refuses it: a value this kernel or its configuration does not take.
fn set(cg: &ScratchCgroup, file: &str, value: &str, refused: &mut Vec<String>) {
    if let Err(e) = cg.write(file, value) {
        refused.push(format!("{file} = {value}: {e}"));
    }
}

/// Cgroups removed in the reverse of the order they were made (children
/// before their parents), on a panic too.
struct Made(Vec<ScratchCgroup>);

impl Drop for Made {
    fn drop(&mut self) {
        while let Some(last) = self.0.pop() {
            drop(last);
        }
    }
}

/// The child's cgroups, made and entered: every hierarchy a controller of
/// the program's is mounted for, a nested cgroup in memory (a chain of
/// three levels), values not the defaults. Kept until dropped.
fn cgroups_for(child: u32, refused: &mut Vec<String>) -> Result<Made, String> {
    let mut made = Made(Vec::new());
    if let Some(h) = mount_of(Some("memory")) {
        let outer = ScratchCgroup::new(&h, "cgv-mem")?;
        set(&outer, "memory.limit_in_bytes", "209715200", refused);
        let mut inner = outer.nested("inner")?;
        set(&inner, "memory.limit_in_bytes", "104857600", refused);
        set(&inner, "memory.soft_limit_in_bytes", "52428800", refused);
        // At least the memory limit (where swap is accounted).
        set(&inner, "memory.memsw.limit_in_bytes", "157286400", refused);
        set(&inner, "memory.kmem.tcp.limit_in_bytes", "67108864", refused);
        set(&inner, "memory.swappiness", "17", refused);
        set(&inner, "memory.oom_control", "1", refused);
        set(&inner, "notify_on_release", "1", refused);
        set(&inner, "cgroup.clone_children", "1", refused);
        inner.enter(child)?;
        made.0.push(outer);
        made.0.push(inner);
    }
    if let Some(h) = mount_of(Some("cpu")) {
        let cg = ScratchCgroup::new(&h, "cgv-cpu")?;
        set(&cg, "cpu.shares", "512", refused);
        set(&cg, "cpu.cfs_period_us", "200000", refused);
        set(&cg, "cpu.cfs_quota_us", "50000", refused);
        set(&cg, "cpu.cfs_burst_us", "1000", refused);
        set(&cg, "cpu.rt_runtime_us", "20000", refused);
        // An idle group reads the lowest shares (3): below the one that
        // has 512.
        let mut idle = cg.nested("idle")?;
        set(&idle, "cpu.rt_runtime_us", "10000", refused);
        set(&idle, "cpu.idle", "1", refused);
        idle.enter(child)?;
        made.0.push(cg);
        made.0.push(idle);
    }
    if let Some(h) = mount_of(Some("cpuset")) {
        let mut cg = ScratchCgroup::new(&h, "cgv-cpuset")?;
        // A cpuset needs its cpus and mems before a task may enter.
        set(&cg, "cpuset.cpus", "0", refused);
        set(&cg, "cpuset.mems", "0", refused);
        set(&cg, "cpuset.mem_hardwall", "1", refused);
        set(&cg, "cpuset.memory_migrate", "1", refused);
        set(&cg, "cpuset.memory_spread_page", "1", refused);
        set(&cg, "cpuset.sched_load_balance", "0", refused);
        set(&cg, "cpuset.sched_relax_domain_level", "1", refused);
        cg.enter(child)?;
        made.0.push(cg);
    }
    if let Some(h) = mount_of(Some("pids")) {
        let mut cg = ScratchCgroup::new(&h, "cgv-pids")?;
        set(&cg, "pids.max", "100", refused);
        cg.enter(child)?;
        made.0.push(cg);
    }
    if let Some(h) = mount_of(None) {
        let mut cg = ScratchCgroup::new(&h, "cgv-v2")?;
        set(&cg, "cgroup.max.descendants", "5", refused);
        set(&cg, "cgroup.max.depth", "3", refused);
        cg.enter(child)?;
        made.0.push(cg);
    }
    Ok(made)
}

#[test]
fn cgroup_values_are_what_the_files_say() {
    let test = "cgroup_values_are_what_the_files_say";
    if !is_root() {
        skip(test, "needs root: to make cgroups, and to load the eBPF program");
        return;
    }
    let child = Testee::spawn();
    let mut refused = Vec::new();
    let made = match cgroups_for(child.pid, &mut refused) {
        Ok(made) => made,
        Err(why) => {
            skip(test, &format!("cannot make the test's cgroups: {why}"));
            return;
        }
    };
    if !refused.is_empty() {
        eprintln!("NOTE {test}: values this kernel refused (their defaults compared instead): {refused:?}");
    }
    let compared = match fdir::cgroup_values_against_files(child.pid) {
        Ok(c) => c,
        Err(why) => {
            skip(test, &format!("the program of cgroup values is not used here: {why}"));
            return;
        }
    };
    for c in &compared {
        assert!(c.same, "{}:{} {}: made {:?}, the file reads {:?}", c.hierarchy, c.cgroup, c.file, c.made, c.read);
        if c.file != "memory.oom_control" {
            assert_eq!(c.made, c.read, "{}:{} {} byte for byte", c.hierarchy, c.cgroup, c.file);
        }
    }
    // The values this test set were among those compared (where this
    // machine has the hierarchy).
    let seen = |file: &str, value: &str| {
        compared.iter().any(|c| c.file == file && c.cgroup.contains("fdir-test-cgv") && c.read == value.as_bytes())
    };
    let wanted: &[(Option<&str>, &str, &str)] = &[
        (Some("memory"), "memory.limit_in_bytes", "104857600\n"),
        (Some("memory"), "memory.limit_in_bytes", "209715200\n"),
        (Some("memory"), "memory.soft_limit_in_bytes", "52428800\n"),
        (Some("memory"), "memory.memsw.limit_in_bytes", "157286400\n"),
        (Some("memory"), "memory.swappiness", "17\n"),
        (Some("memory"), "notify_on_release", "1\n"),
        (Some("memory"), "cgroup.clone_children", "1\n"),
        (Some("cpu"), "cpu.shares", "512\n"),
        (Some("cpu"), "cpu.cfs_quota_us", "50000\n"),
        (Some("cpu"), "cpu.cfs_period_us", "200000\n"),
        (Some("cpu"), "cpu.idle", "1\n"),
        (Some("cpu"), "cpu.shares", "3\n"),
        (Some("cpu"), "cpu.rt_runtime_us", "10000\n"),
        (Some("cpuset"), "cpuset.memory_migrate", "1\n"),
        (Some("cpuset"), "cpuset.memory_spread_page", "1\n"),
        (Some("cpuset"), "cpuset.sched_relax_domain_level", "1\n"),
        (Some("memory"), "memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n"),
        (Some("cpuset"), "cpuset.cpus", "0\n"),
        (Some("cpuset"), "cpuset.mem_hardwall", "1\n"),
        (Some("cpuset"), "cpuset.sched_load_balance", "0\n"),
        (Some("pids"), "pids.max", "100\n"),
        (None, "cgroup.max.descendants", "5\n"),
        (None, "cgroup.max.depth", "3\n"),
    ];
    for (controller, file, value) in wanted {
        if mount_of(*controller).is_some() && !refused.iter().any(|r| r.starts_with(file)) {
            assert!(seen(file, value), "{file} = {value:?} not compared: {compared:#?}");
        }
    }
    eprintln!("{test}: {} control files compared, every one as its file reads", compared.len());

    // A monitor of the child: quiet while nothing changes, and a limit
    // raised from outside is seen, with its old and new values.
    let subsystems = &[Subsystem::CgroupLimits];
    let (mut m, _) = Monitor::baseline(Coverage::Pids { pids: vec![child.pid] }, subsystems, 1, &SystemClock).unwrap();
    m.set_task_table(Some(true));
    for round in 0..5 {
        let (f, _) = m.cycle(&SystemClock);
        assert!(f.is_empty(), "round {round}: {f:#?}");
    }
    match m.cgroup_values() {
        Some(Ok(())) => {}
        Some(Err(why)) => panic!("the monitor does not make cgroup values, though the test's program loaded: {why}"),
        None => panic!("a monitor asked to read the task table did not load it"),
    }
    let Some(pids) = made.0.iter().find(|c| c.hierarchy.controller == "pids") else {
        skip(test, "no pids hierarchy to raise a limit in");
        return;
    };
    pids.write("pids.max", "200").unwrap();
    let findings = common::cycle_until_found(&mut m);
    let text = format!("{findings:?}");
    assert!(findings.iter().any(|f| matches!(f, Finding::Drift { .. } | Finding::ObjectDrift { .. })), "{findings:#?}");
    assert!(text.contains("pids.max") && text.contains("100") && text.contains("200"), "{text}");
    drop(made);
    child.exit();
}
