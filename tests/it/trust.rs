//! Files fdir trusts (SECURITY.md, "Files fdir trusts"): a baseline, key or
//! policy file that another user owns or that others may write, a key others
//! may read, a symbolic link as the baseline, a baseline in a directory
//! others may write without the sticky bit: each is refused with exit 2 and a
//! message saying how to fix it; the same files made right are accepted.
//! Real files in a temporary directory, with real chmod, chown (uid 65534 is
//! "another user") and symlinks; as root (chown needs it).

use crate::common;

use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};

use common::command::{Watch, code, is, run, stderr};
use common::{Testee, is_root, skip};

const OTHER: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What a case hands to fdir.
enum File {
    Baseline(PathBuf),
    Key(PathBuf),
    Policy(PathBuf),
}

struct Case {
    what: &'static str,
    file: File,
    /// `None`: accepted (exit 0); `Some(text)`: exit 2 and the text in stderr.
    refused: Option<String>,
}

#[test]
fn files_others_could_have_written_are_refused_with_the_fix() {
    if !is_root() {
        return skip("files_others_could_have_written_are_refused_with_the_fix", "chown to another user needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    let good = d.join("good.json");
    let o = run(&["snapshot", "--pid", &pid, "--subsystems", "cgroups", "--baseline", good.to_str().unwrap()], d);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let key = d.join("good.key");
    assert_eq!(code(&run(&["keygen", key.to_str().unwrap()], d)), 0);
    let signed = d.join("signed.json");
    let o = run(
        &[
            "snapshot",
            "--pid",
            &pid,
            "--subsystems",
            "cgroups",
            "--baseline",
            signed.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        d,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let n = std::cell::Cell::new(0);
    let fresh = |name: &str| {
        n.set(n.get() + 1);
        let sub = d.join(format!("case-{}", n.get()));
        std::fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o700);
        sub.join(name)
    };
    // A copy of the good baseline, as a new file of root's with mode 0644.
    let baseline = |mode: u32, owner: u32| {
        let p = fresh("baseline.json");
        std::fs::copy(&good, &p).unwrap();
        chmod(&p, mode);
        chown(&p, Some(owner), None).unwrap();
        p
    };
    let mut cases = vec![
        Case { what: "a baseline of root's, 0644", file: File::Baseline(baseline(0o644, 0)), refused: None },
        Case { what: "a baseline of root's, 0600", file: File::Baseline(baseline(0o600, 0)), refused: None },
    ];
    let p = baseline(0o644, OTHER);
    cases.push(Case {
        what: "a baseline another user owns",
        refused: Some(format!(
            "baseline file {0} is owned by uid 65534, neither root nor the user fdir runs as (uid 0): anyone who owns it can change it; `chown root {0}`",
            p.display()
        )),
        file: File::Baseline(p),
    });
    for mode in [0o664, 0o646, 0o666] {
        let p = baseline(mode, 0);
        cases.push(Case {
            what: "a baseline others may write",
            refused: Some(format!(
                "baseline file {0} can be written by its group or by others (mode {mode:04o}): `chmod go-w {0}`",
                p.display()
            )),
            file: File::Baseline(p),
        });
    }
    let link = fresh("link.json");
    symlink(&good, &link).unwrap();
    cases.push(Case {
        what: "a symbolic link to a good baseline",
        refused: Some(format!("baseline file {} is a symbolic link: fdir does not follow one", link.display())),
        file: File::Baseline(link),
    });
    for (mode, owner, refused) in [(0o777, 0, true), (0o770, 0, true), (0o1777, 0, false), (0o755, OTHER, true)] {
        let p = baseline(0o644, 0);
        let sub = p.parent().unwrap().to_path_buf();
        chmod(&sub, mode);
        chown(&sub, Some(owner), None).unwrap();
        let why = if owner == OTHER {
            format!(", owned by uid 65534 (neither root nor uid 0), who may replace it: `chown root {}`", sub.display())
        } else {
            format!(
                " which others can write without the sticky bit (mode {mode:04o}), so they may replace it: `chmod go-w {}`",
                sub.display()
            )
        };
        cases.push(Case {
            what: "a baseline in a directory others may write",
            refused: refused.then(|| format!("baseline file {} is in directory {}{why}", p.display(), sub.display())),
            file: File::Baseline(p),
        });
    }
    let a_key = |mode: u32, owner: u32| {
        let p = fresh("baseline.key");
        std::fs::copy(&key, &p).unwrap();
        chmod(&p, mode);
        chown(&p, Some(owner), None).unwrap();
        p
    };
    cases.push(Case { what: "a key of root's, 0600", file: File::Key(a_key(0o600, 0)), refused: None });
    cases.push(Case { what: "a key of root's, 0400", file: File::Key(a_key(0o400, 0)), refused: None });
    let p = a_key(0o600, OTHER);
    cases.push(Case {
        what: "a key another user owns",
        refused: Some(format!("key file {0} is owned by uid 65534", p.display())),
        file: File::Key(p),
    });
    for (mode, why) in [(0o620, "can be written by its group"), (0o602, "can be written by its group")] {
        let p = a_key(mode, 0);
        cases.push(Case {
            what: "a key others may write",
            refused: Some(format!("key file {} {why} or by others (mode {mode:04o})", p.display())),
            file: File::Key(p),
        });
    }
    for mode in [0o640, 0o604, 0o644] {
        let p = a_key(mode, 0);
        cases.push(Case {
            what: "a key others may read",
            refused: Some(format!(
                "key file {0} can be read by its group or by others (mode {mode:04o}): anyone who can read it can sign a forged baseline; `chmod go-rwx {0}`",
                p.display()
            )),
            file: File::Key(p),
        });
    }
    let policy = |mode: u32, owner: u32| {
        let p = fresh("fdir.toml");
        std::fs::write(&p, "[severity]\nseccomp = \"degrade\"\n[actions]\ndegrade = \"true\"\n").unwrap();
        chmod(&p, mode);
        chown(&p, Some(owner), None).unwrap();
        p
    };
    cases.push(Case { what: "a policy of root's, 0644", file: File::Policy(policy(0o644, 0)), refused: None });
    let p = policy(0o644, OTHER);
    cases.push(Case {
        what: "a policy another user owns",
        refused: Some(format!("policy file {0} is owned by uid 65534", p.display())),
        file: File::Policy(p),
    });
    for mode in [0o664, 0o646] {
        let p = policy(mode, 0);
        cases.push(Case {
            what: "a policy others may write",
            refused: Some(format!(
                "policy file {0} can be written by its group or by others (mode {mode:04o}): `chmod go-w {0}`",
                p.display()
            )),
            file: File::Policy(p),
        });
    }

    for case in &cases {
        let (File::Baseline(file) | File::Key(file) | File::Policy(file)) = &case.file;
        let f = file.to_str().unwrap();
        let is_policy = matches!(case.file, File::Policy(_));
        let args: Vec<&str> = match &case.file {
            File::Baseline(_) => vec!["check", "--baseline", f],
            File::Key(_) => vec!["check", "--baseline", signed.to_str().unwrap(), "--key", f],
            File::Policy(_) => vec!["watch", "--pid", &pid, "--baseline", good.to_str().unwrap(), "--config", f],
        };
        match (&case.refused, is_policy) {
            (None, true) => {
                let mut a = vec!["--pid", pid.as_str(), "--interval", "100ms", "--format", "json", "--config", f];
                let b = fresh("watch.json");
                a.extend(["--baseline", b.to_str().unwrap()]);
                let mut w = Watch::start(&a, d);
                w.wait_for("the first check", is("check"));
                let (c, _) = w.terminate();
                assert_eq!(c, 0, "{}", case.what);
            }
            (None, _) => {
                let o = run(&args, d);
                assert_eq!(code(&o), 0, "{}: {}", case.what, stderr(&o));
            }
            (Some(message), _) => {
                let o = run(&args, d);
                assert_eq!(code(&o), 2, "{}: {}", case.what, stderr(&o));
                assert!(stderr(&o).contains(message.as_str()), "{}: expected {message:?} in {}", case.what, stderr(&o));
            }
        }
    }
    assert_eq!(cases.len(), 23, "the table");

    // A baseline is not written where it would be refused.
    let open = fresh("new.json");
    chmod(open.parent().unwrap(), 0o777);
    let o = run(&["snapshot", "--pid", &pid, "--subsystems", "cgroups", "--baseline", open.to_str().unwrap()], d);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("which others can write without the sticky bit"), "{}", stderr(&o));
    assert!(!open.exists());
    drop(t);
}

#[test]
fn metrics_beyond_loopback_are_warned_about() {
    // The endpoint has no authentication: bound to a non-loopback address,
    // the watch says so on stderr (and serves, as asked).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    for (addr, warned) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let log = d.join("stderr.log");
        let err = std::fs::File::create(&log).unwrap();
        let b = d.join(format!("b-{warned}.json"));
        let args = ["--pid", pid.as_str(), "--interval", "100ms", "--format", "json", "--metrics", addr];
        let mut w = Watch::start_with(&args, d, |c| {
            c.arg("--baseline").arg(&b).stderr(err);
        });
        w.wait_for("the first check", is("check"));
        let (c, _) = w.terminate();
        assert_eq!(c, 0);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.contains(&format!("--metrics {addr} is not a loopback address")), warned, "{addr}: {text}");
    }
}
