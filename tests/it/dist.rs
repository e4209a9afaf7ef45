//! The files in dist/ are valid for the tools that read them.

use crate::common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        common::skip("the_systemd_unit_verifies", "systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/fdir.service")).unwrap();
    for needed in ["Type=notify", "WatchdogSec=", "ProcSubset=all", "ExecReload=", "CAP_SYS_PTRACE"] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // Verify a copy that runs the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("fdir.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/fdir", env!("CARGO_BIN_EXE_fdir"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("fdir.service:"), "systemd-analyze verify: {err}");
}

/// The unit's `ExecStart=` command line is one the `fdir` binary accepts:
/// clap checks every option and value before it acts on the trailing `--help`
/// (an unknown option or a bad duration fails with exit 2), so nothing runs.
#[test]
fn the_systemd_unit_runs_a_valid_command_line() {
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/fdir.service")).unwrap();
    let joined = unit.replace("\\\n", " ");
    let exec = joined.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("no ExecStart=");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/fdir", "{exec}");
    assert_eq!(words[1], "watch", "{exec}");
    for flag in ["--format", "--metrics"] {
        assert!(words.contains(&flag), "ExecStart lacks {flag}: {exec}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_fdir")).args(&words[1..]).arg("--help").output().unwrap();
    assert!(
        out.status.success(),
        "fdir refuses the unit's command line {exec:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The least-privilege drop-in (SECURITY.md) verifies on top of the unit, and
/// grants no ambient capability its bounding set does not hold.
#[test]
fn the_least_privilege_drop_in_verifies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let drop_in = std::fs::read_to_string(root.join("fdir-least-privilege.conf")).unwrap();
    let list = |key: &str| -> Vec<String> {
        drop_in
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("the drop-in lacks {key}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let (ambient, bounding) = (list("AmbientCapabilities="), list("CapabilityBoundingSet="));
    assert_eq!(ambient, ["CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"]);
    assert!(ambient.iter().all(|c| bounding.contains(c)), "{ambient:?} not within {bounding:?}");
    assert!(drop_in.contains("\nUser=fdir\n"));
    let security = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SECURITY.md")).unwrap();
    assert!(
        security.contains("AmbientCapabilities=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"),
        "SECURITY.md shows the drop-in"
    );
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        common::skip("the_least_privilege_drop_in_verifies", "systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root.join("fdir.service")).unwrap();
    std::fs::write(dir.path().join("fdir.service"), unit.replace("/usr/local/bin/fdir", env!("CARGO_BIN_EXE_fdir")))
        .unwrap();
    std::fs::create_dir(dir.path().join("fdir.service.d")).unwrap();
    std::fs::write(dir.path().join("fdir.service.d/least-privilege.conf"), &drop_in).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(dir.path().join("fdir.service")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("fdir.service"), "systemd-analyze verify: {err}");
}

/// The settings systemd implements with a seccomp filter on the service:
/// any one of them puts fdir under seccomp, and the kernel then refuses it
/// `PTRACE_SECCOMP_GET_FILTER` (systemd.exec(5)).
const SECCOMP_SETTINGS: &[(&str, &str)] = &[
    ("SystemCallFilter=", ""),
    ("SystemCallArchitectures=", ""),
    ("MemoryDenyWriteExecute=", "no"),
    ("RestrictNamespaces=", "no"),
    ("RestrictRealtime=", "no"),
    ("RestrictSUIDSGID=", "no"),
    ("LockPersonality=", "no"),
    ("RestrictAddressFamilies=", ""),
    ("ProtectKernelModules=", "no"),
    ("ProtectKernelLogs=", "no"),
    ("ProtectClock=", "no"),
    ("ProtectHostname=", "no"),
    ("PrivateDevices=", "no"),
];

/// The last value of `key` in `text`, continuation lines joined.
fn setting<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().filter_map(|l| l.strip_prefix(key)).next_back()
}

/// The shipped unit puts fdir under seccomp, so it neither asks for
/// seccomp-filters nor grants the CAP_SYS_ADMIN only that needs; the
/// seccomp-filters drop-in lifts every seccomp setting the unit makes, grants
/// CAP_SYS_ADMIN, and asks for the subsystem with a command line fdir takes.
#[test]
fn the_unit_and_seccomp_filters_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    let unit = std::fs::read_to_string(root.join("fdir.service")).unwrap().replace("\\\n", " ");
    let drop_in = std::fs::read_to_string(root.join("fdir-seccomp-filters.conf")).unwrap().replace("\\\n", " ");
    let sandboxed: Vec<&str> = SECCOMP_SETTINGS
        .iter()
        .filter(|(key, off)| setting(&unit, key).is_some_and(|v| !v.trim().is_empty() && v.trim() != *off))
        .map(|(key, _)| *key)
        .collect();
    assert!(!sandboxed.is_empty(), "the unit is expected to use seccomp hardening");
    let exec = setting(&unit, "ExecStart=").unwrap();
    assert!(!exec.contains("seccomp-filters"), "the unit asks for seccomp-filters under seccomp: {exec}");
    let bounding = setting(&unit, "CapabilityBoundingSet=").unwrap();
    assert!(!bounding.contains("CAP_SYS_ADMIN"), "CAP_SYS_ADMIN is for nothing under seccomp: {bounding}");

    for key in &sandboxed {
        let (_, off) = SECCOMP_SETTINGS.iter().find(|(k, _)| k == key).unwrap();
        assert_eq!(setting(&drop_in, key).map(str::trim), Some(*off), "the drop-in does not lift {key}");
    }
    assert!(setting(&drop_in, "CapabilityBoundingSet=").unwrap().contains("CAP_SYS_ADMIN"));
    // ExecStart= is reset, then set to a command line fdir takes.
    let execs: Vec<&str> = drop_in.lines().filter_map(|l| l.strip_prefix("ExecStart=")).collect();
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert!(execs[0].is_empty());
    let words: Vec<&str> = execs[1].split_whitespace().collect();
    assert_eq!(&words[..2], ["/usr/local/bin/fdir", "watch"]);
    assert!(words.iter().any(|w| w.split(',').any(|s| s == "seccomp-filters")), "{words:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_fdir")).args(&words[1..]).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        common::skip("the_unit_and_seccomp_filters_agree", "systemd-analyze is not installed");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read_to_string(root.join("fdir.service")).unwrap();
    std::fs::write(dir.path().join("fdir.service"), raw.replace("/usr/local/bin/fdir", env!("CARGO_BIN_EXE_fdir")))
        .unwrap();
    std::fs::create_dir(dir.path().join("fdir.service.d")).unwrap();
    let raw_drop_in = std::fs::read_to_string(root.join("fdir-seccomp-filters.conf")).unwrap();
    std::fs::write(
        dir.path().join("fdir.service.d/seccomp-filters.conf"),
        raw_drop_in.replace("/usr/local/bin/fdir", env!("CARGO_BIN_EXE_fdir")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(dir.path().join("fdir.service")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("fdir.service"), "systemd-analyze verify: {err}");
}

/// What the unit's seccomp sandbox does to seccomp-filters, shown without
/// systemd: fdir run under a seccomp filter (allow-all, installed by a
/// wrapper before exec, as systemd installs the unit's) reads only the count
/// and says why; the same fdir outside seccomp (the drop-in) reads the
/// programs.
#[test]
fn seccomp_programs_are_read_only_by_an_fdir_outside_seccomp() {
    let name = "seccomp_programs_are_read_only_by_an_fdir_outside_seccomp";
    if !common::is_root() {
        return common::skip(name, "reading seccomp programs needs CAP_SYS_ADMIN");
    }
    let Ok(py) = Command::new("python3").arg("--version").output() else {
        return common::skip(name, "python3 (the seccomp wrapper) is not installed");
    };
    assert!(py.status.success());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut t = common::Testee::spawn();
    t.must("nnp");
    t.must("seccomp");
    let pid = t.pid.to_string();
    // prctl(PR_SET_NO_NEW_PRIVS), then prctl(PR_SET_SECCOMP,
    // SECCOMP_MODE_FILTER) with one instruction: return SECCOMP_RET_ALLOW.
    let wrapper = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
allow = (Insn * 1)(Insn(0x06, 0, 0, 0x7fff0000))
prog = Prog(1, allow)
assert libc.prctl(38, 1, 0, 0, 0) == 0, ctypes.get_errno()
assert libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0, ctypes.get_errno()
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let programs = |sandboxed: bool, file: &str| {
        let args = ["snapshot", "--pid", &pid, "--subsystems", "seccomp-filters", "--baseline", file];
        let mut cmd = if sandboxed {
            let mut c = Command::new("python3");
            c.args(["-c", wrapper, env!("CARGO_BIN_EXE_fdir")]);
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_fdir"))
        };
        let o = cmd.args(args).current_dir(d).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let b = fdir::baseline::load(&d.join(file), None).unwrap();
        let fdir::Observation::Observed { records, .. } = &b.targets[0].subsystems[&fdir::Subsystem::SeccompFilters]
        else {
            panic!("seccomp-filters not observed: {:?}", b.targets[0].subsystems)
        };
        records.iter().map(|r| format!("{}={}", r.key, r.value)).collect::<Vec<_>>()
    };
    // Outside: the program itself ("filter #0"), no degraded "programs" record.
    let outside = programs(false, "outside.json");
    assert!(outside.iter().any(|r| r.starts_with("filter #0=")), "outside seccomp the program is read: {outside:?}");
    assert!(!outside.iter().any(|r| r.starts_with("programs=")), "{outside:?}");
    // Inside: only the count, and why.
    let inside = programs(true, "inside.json");
    assert!(inside.contains(&"chain=1 filter".to_owned()), "{inside:?}");
    assert!(
        inside.iter().any(|r| r.starts_with("programs=") && r.contains("fdir runs under seccomp itself")),
        "under seccomp: {inside:?}"
    );
    assert!(!inside.iter().any(|r| r.starts_with("filter #")), "{inside:?}");
    drop(t);
}
