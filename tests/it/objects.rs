//! `fdir objects` (docs/cli.md): the kernel objects a baseline's processes
//! refer to, each once, with every process that refers to it. Real
//! processes in a cgroup the test makes, one of them in a mount namespace of
//! its own; judges only its own processes and cgroup, removed on every way
//! out.

use crate::common;

use std::os::unix::fs::MetadataExt;

use common::command::{code, json_lines, run, stdout};
use common::{ScratchCgroup, Testee};
use serde_json::Value;

fn pids(v: &Value) -> Vec<u32> {
    let mut p: Vec<u32> =
        v["pids"].as_array().unwrap().iter().map(|p| u32::try_from(p.as_u64().unwrap()).unwrap()).collect();
    p.sort_unstable();
    p
}

#[test]
fn each_object_once_with_the_processes_that_share_it() {
    const TEST: &str = "each_object_once_with_the_processes_that_share_it";
    if !common::is_root() {
        return common::skip(TEST, "making a cgroup and a mount namespace needs root");
    }
    let Some(h) = common::hierarchy(Some("pids")).filter(|h| !h.v2) else {
        return common::skip(TEST, "no cgroup v1 pids hierarchy to make a cgroup in");
    };
    // Declared before the processes: dropped after them.
    let mut jail = match ScratchCgroup::new(&h, "objects") {
        Ok(c) => c,
        Err(e) => return common::skip(TEST, &e),
    };
    let mut kids: Vec<Testee> = (0..3).map(|_| Testee::spawn()).collect();
    for k in &kids {
        jail.enter(k.pid).unwrap();
    }
    kids[2].must("unshare-mount");
    let mut ours: Vec<u32> = kids.iter().map(|k| k.pid).collect();
    ours.sort_unstable();
    let mnt = |pid: u32| std::fs::metadata(format!("/proc/{pid}/ns/mnt")).unwrap().ino();

    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["snapshot".to_owned(), "--baseline".to_owned(), "b.json".to_owned()];
    for p in &ours {
        args.extend(["--pid".to_owned(), p.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args, dir.path());
    assert_eq!(code(&o), 0, "{}", common::command::stderr(&o));

    let o = run(&["objects", "--baseline", "b.json", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}", common::command::stderr(&o));
    let objects = json_lines(&o);
    let find =
        |id: &str| objects.iter().find(|v| v["object"] == id).unwrap_or_else(|| panic!("no {id} in {objects:#?}"));

    let cgroup = find(&format!("cgroup pids:{}", jail.cgroup_path()));
    assert_eq!(cgroup["kind"], "cgroup");
    assert_eq!(pids(cgroup), ours, "the cgroup, once, with the three processes");
    assert_eq!(cgroup["names"].as_array().unwrap().len(), 3);

    let own = find(&format!("mount namespace {}", mnt(kids[2].pid)));
    assert_eq!(pids(own), [kids[2].pid], "the private mount namespace holds one process");
    let shared = find(&format!("mount namespace {}", mnt(kids[0].pid)));
    let mut two = vec![kids[0].pid, kids[1].pid];
    two.sort_unstable();
    assert_eq!(pids(shared), two);
    assert_eq!(shared["kind"], "namespace");
    // Every object is named once.
    let mut ids: Vec<&str> = objects.iter().map(|v| v["object"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "an object listed twice");
    assert!(objects.iter().any(|v| v["kind"] == "code-file"), "the processes' code files");

    // Text: a header, and the shared objects only with --shared.
    let o = run(&["objects", "--baseline", "b.json", "--shared"], dir.path());
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.starts_with("OBJECTS "), "{text}");
    let line = text.lines().find(|l| l.starts_with(&format!("cgroup pids:{} ", jail.cgroup_path()))).unwrap();
    assert!(line.ends_with("3 processes: fdir-testee (3)"), "{line}");
    assert!(
        !text.contains(&format!("mount namespace {} ", mnt(kids[2].pid))),
        "--shared lists one process's namespace: {text}"
    );
}

#[test]
fn a_missing_or_corrupt_baseline_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["objects", "--baseline", "none.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(common::command::stderr(&o).contains("none.json does not exist"), "{}", common::command::stderr(&o));
    std::fs::write(dir.path().join("bad.json"), b"{\"not\": \"a baseline\"}").unwrap();
    let o = run(&["objects", "--baseline", "bad.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stdout(&o).is_empty(), "nothing listed from a corrupt file: {}", stdout(&o));
}
