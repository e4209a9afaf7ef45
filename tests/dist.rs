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
