//! The files in dist/ are valid for the tools that read them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

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
