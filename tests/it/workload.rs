//! Workloads end to end: processes placed in real cgroups named as systemd
//! and the container runtimes name them, and a real container started with
//! `crun`; the events must name the unit or the container, and `--unit` /
//! `--container` must cover exactly the workload's processes.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::command::{Watch, code, is, json_lines, run, stderr, stdout};
use common::{ScratchCgroup, Testee, hierarchy, is_root, skip};
use serde_json::Value;

/// A 64-hex container id of this run.
fn container_id(salt: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let seed = u64::try_from(nanos % u128::from(u64::MAX)).unwrap() ^ u64::from(std::process::id()) ^ salt;
    let mut rng = common::Rng(seed | 1);
    (0..4).map(|_| format!("{:016x}", rng.next())).collect()
}

fn pids_of(events: &[Value], kind: &str) -> Vec<u64> {
    events.iter().filter(|v| v["event"] == kind).filter_map(|v| v["pid"].as_u64()).collect()
}

fn event_of<'a>(events: &'a [Value], kind: &str, pid: u32) -> &'a Value {
    events
        .iter()
        .find(|v| v["event"] == kind && v["pid"] == pid)
        .unwrap_or_else(|| panic!("no {kind} event of pid {pid} in {events:#?}"))
}

/// A systemd-style unit: processes in `.../fdir-test-N.service`, named by
/// `--unit`; under watch, one that joins later is baselined on first sight
/// and named, a drift and an exit name the unit, and a process outside it
/// is never taken.
#[test]
fn a_unit_is_named_and_targeted() {
    let _g = common::serial();
    let test = "workload::a_unit_is_named_and_targeted";
    if !is_root() {
        return skip(test, "needs root to create cgroups");
    }
    let Some(h) = hierarchy(None) else { return skip(test, "no cgroup hierarchy mounted") };
    let slice = match ScratchCgroup::new(&h, "slice") {
        Ok(c) => c,
        Err(e) => return skip(test, &e),
    };
    let unit_name = format!("fdir-test-{}.service", std::process::id());
    let mut unit = slice.nested(&unit_name).unwrap();
    let first = Testee::spawn();
    let outsider = Testee::spawn();
    if let Err(e) = unit.enter(first.pid) {
        return skip(test, &e);
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["snapshot", "--unit", &unit_name, "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let events = json_lines(&o);
    // Exactly the unit's process, named with its unit.
    assert_eq!(pids_of(&events, "baseline"), [u64::from(first.pid)], "{events:#?}");
    assert_eq!(event_of(&events, "baseline", first.pid)["unit"], unit_name.as_str());
    // The text form carries the tag.
    let o = run(&["check", "--unit", &unit_name], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    let mut watch = Watch::start(&["--interval", "100ms", "--format", "json"], dir.path());
    watch.wait_for("the first check", is("check"));
    // A process that joins the unit is baselined on first sight, named.
    let second = Testee::spawn();
    unit.enter(second.pid).unwrap();
    let seen = watch
        .wait_for("the baseline of the process that joined", |v| v["event"] == "baseline" && v["pid"] == second.pid);
    assert_eq!(seen["first_sight"], true, "{seen}");
    assert_eq!(seen["unit"], unit_name.as_str(), "{seen}");
    // A drift of a process of the unit names it.
    common::prlimit(first.pid, libc::RLIMIT_NOFILE, 64, 64).unwrap();
    let drift = watch.wait_for("the drift", |v| v["event"] == "anomaly" && v["pid"] == first.pid);
    assert_eq!(drift["unit"], unit_name.as_str(), "{drift}");
    // So does its exit.
    let first_pid = first.pid;
    unit.leave(first_pid);
    first.exit();
    let gone = watch.wait_for("the exit", |v| v["event"] == "exited" && v["pid"] == first_pid);
    assert_eq!(gone["unit"], unit_name.as_str(), "{gone}");
    // Let a few more cycles run: the outsider is never taken.
    for _ in 0..3 {
        watch.wait_for("a check", is("check"));
    }
    let mut all = watch.seen.clone();
    let (status, rest) = watch.terminate();
    assert_eq!(status, 0);
    all.extend(rest);
    let outsider_pid = u64::from(outsider.pid);
    assert!(!pids_of(&all, "baseline").contains(&outsider_pid), "a process outside the unit was baselined: {all:#?}");
    unit.leave(second.pid);
    drop(unit);
}

/// Docker's systemd-driver scope `docker-<id>.scope`, in a v1 hierarchy
/// where there is one (the cgroup v2 one otherwise): `--container` takes an
/// id prefix, the events name the runtime and the whole id.
#[test]
fn a_docker_scope_is_named_and_targeted_by_prefix() {
    let _g = common::serial();
    let test = "workload::a_docker_scope_is_named_and_targeted_by_prefix";
    if !is_root() {
        return skip(test, "needs root to create cgroups");
    }
    let Some(h) = hierarchy(Some("pids")) else { return skip(test, "no cgroup hierarchy mounted") };
    let parent = match ScratchCgroup::new(&h, "system-slice") {
        Ok(c) => c,
        Err(e) => return skip(test, &e),
    };
    let id = container_id(1);
    let mut scope = parent.nested(&format!("docker-{id}.scope")).unwrap();
    let t = Testee::spawn();
    if let Err(e) = scope.enter(t.pid) {
        return skip(test, &e);
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["snapshot", "--container", &id[..8], "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let events = json_lines(&o);
    assert_eq!(pids_of(&events, "baseline"), [u64::from(t.pid)], "{events:#?}");
    let b = event_of(&events, "baseline", t.pid);
    assert_eq!(b["container"], id.as_str(), "{b}");
    assert_eq!(b["runtime"], "docker", "{b}");
    assert!(b.get("unit").is_none() && b.get("pod").is_none(), "no empty fields: {b}");
    // The text form: the short id.
    let o = run(&["check", "--container", &id[..8]], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // A check of the whole file names it too, from the baseline's records.
    let o = run(&["check", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Too short a prefix is refused, as is a container that is not there.
    let o = run(&["snapshot", "--container", &id[..3]], dir.path());
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = run(&["snapshot", "--container", "0000fdir", "--baseline", "other.json"], dir.path());
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("container 0000fdir"), "{}", stderr(&o));
    scope.leave(t.pid);
}

/// A container started by `crun`, in the cgroup Podman's cgroupfs manager
/// gives it (`/libpod_parent/libpod-<id>`): named as Podman's, found by
/// `--container`.
#[test]
fn a_crun_container_is_named() {
    let _g = common::serial();
    let test = "workload::a_crun_container_is_named";
    if !is_root() {
        return skip(test, "needs root to start a container");
    }
    if Command::new("crun").arg("--version").output().is_err() {
        return skip(test, "crun is not installed");
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        return skip(test, "unshare is not installed");
    }
    let id = container_id(2);
    let Some(container) = Crun::start(&id) else {
        return skip(test, "crun cannot start a container in this machine");
    };
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["snapshot", "--container", &id[..12], "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let events = json_lines(&o);
    let b = event_of(&events, "baseline", container.pid);
    assert_eq!(b["container"], id.as_str(), "{b}");
    assert_eq!(b["runtime"], "podman", "{b}");
    let o = run(&["check", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    drop(container);
}

/// A `crun` container, killed and deleted on drop (with the parent cgroups
/// it left, where this test made them).
struct Crun {
    name: String,
    bundle: tempfile::TempDir,
    pid: u32,
    made_parents: Vec<PathBuf>,
}

/// crun refuses a hybrid hierarchy whose v2 part has controllers: it runs
/// in a mount namespace of its own without the v2 mount, so the container
/// is placed in the v1 hierarchies only.
/// The container's standard streams are crun's: none is a pipe this test
/// would wait on until the container ends.
fn crun(args: &[&str]) -> bool {
    let script = "mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; exec crun \"$@\"";
    Command::new("unshare")
        .args(["-m", "sh", "-c", script, "crun"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

impl Crun {
    fn start(id: &str) -> Option<Crun> {
        let bundle = tempfile::tempdir().unwrap();
        let rootfs = bundle.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/sleep", rootfs.join("bin/sleep")).ok()?;
        // The dynamic loader and libraries of sleep, at their paths.
        let ldd = Command::new("ldd").arg("/bin/sleep").output().ok()?;
        for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
            let to = rootfs.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent()?).ok()?;
            std::fs::copy(lib, &to).ok()?;
        }
        let spec = Command::new("crun").arg("spec").current_dir(bundle.path()).output().ok()?;
        if !spec.status.success() {
            return None;
        }
        let path = bundle.path().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] = serde_json::json!(["/bin/sleep", "600"]);
        config["linux"]["cgroupsPath"] = Value::String(format!("/libpod_parent/libpod-{id}"));
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let made_parents: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.filter_map(Result::ok).map(|e| e.path().join("libpod_parent")).collect())
            .unwrap_or_default();
        let made_parents = made_parents.into_iter().filter(|p| !p.exists()).collect();
        let name = format!("fdir-test-{}-{}", std::process::id(), &id[..8]);
        let mut c = Crun { name, bundle, pid: 0, made_parents };
        let bundle_dir = c.bundle.path().to_str()?.to_owned();
        if !crun(&["run", "-d", "--bundle", &bundle_dir, &c.name]) {
            return None;
        }
        let state = Command::new("crun").args(["state", &c.name]).output().ok()?;
        let state: Value = serde_json::from_slice(&state.stdout).ok()?;
        c.pid = u32::try_from(state["pid"].as_u64()?).ok()?;
        // Settled: the container's process is sleep itself.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read_to_string(format!("/proc/{}/comm", c.pid)).unwrap_or_default().trim() != "sleep" {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(c)
    }
}

impl Drop for Crun {
    fn drop(&mut self) {
        let _ = crun(&["kill", &self.name, "KILL"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.pid != 0 && Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = crun(&["delete", "-f", &self.name]);
        for p in &self.made_parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}
