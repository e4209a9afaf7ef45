//! The `fdir` binary end to end, against real child processes: exit codes,
//! refused baselines, the JSON events, and `watch` catching a live change.

use crate::common;

use std::path::Path;

use common::Testee;
use common::command::{Watch, assert_event_schema, code, is, json_lines, run, stderr, stdout};
use sha2::{Digest as _, Sha256};

fn baseline_of(pid: u32, dir: &Path, extra: &[&str]) {
    let p = pid.to_string();
    let mut args = vec!["snapshot", "--pid", &p];
    args.extend_from_slice(extra);
    let o = run(&args, dir);
    assert_eq!(code(&o), 0, "snapshot: {}{}", stdout(&o), stderr(&o));
}

#[test]
fn snapshot_and_check_exit_0_without_drift_and_1_with_it() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Testee::spawn();
    baseline_of(t.pid, dir.path(), &[]);
    let o = run(&["check"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("CHECK"), "{}", stdout(&o));

    t.must("nnp");
    let o = run(&["check"], dir.path());
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(&format!("DRIFT    pid {} (fdir-testee) seccomp [log]: NoNewPrivs 0 -> 1", t.pid)), "{text}");

    let o = run(&["check", "--format", "json"], dir.path());
    assert_eq!(code(&o), 1);
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let a = events.iter().find(|v| v["event"] == "anomaly").unwrap();
    assert_eq!(a["pid"], t.pid);
    assert_eq!(a["subsystem"], "seccomp");
    assert_eq!(events.last().unwrap()["event"], "check");
    assert_eq!(events.last().unwrap()["anomalies"], 1);
}

#[test]
fn check_exits_2_when_it_cannot_check() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // No baseline file.
    let o = run(&["check"], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("fdir-baseline.json does not exist"), "{}", stderr(&o));

    // The target is gone.
    let t = Testee::spawn();
    let pid = t.pid;
    baseline_of(pid, d, &[]);
    t.exit();
    let o = run(&["check"], d);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 exited"), "{}", stdout(&o));
    assert!(stderr(&o).contains(&format!("pid {pid} (fdir-testee) has exited")), "{}", stderr(&o));

    // A pid that is not in the baseline.
    let t = Testee::spawn();
    baseline_of(t.pid, d, &[]);
    let o = run(&["check", "--pid", "999999"], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("holds no baseline of process 999999"), "{}", stderr(&o));
    // Another coverage than the file's.
    let o = run(&["check", "--all"], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("covers process"), "{}", stderr(&o));

    // The pid now belongs to another process (a baseline whose start time
    // differs, written through the library so its digest is right).
    let path = d.join("fdir-baseline.json");
    let mut f = fdir::baseline::load(&path, None).unwrap();
    if let fdir::Target::Process { start_time, .. } = &mut f.targets[0].target {
        *start_time -= 1;
    }
    fdir::baseline::save(&path, &f, None).unwrap();
    let o = run(&["check", "--format", "json"], d);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(json_lines(&o).iter().any(|v| v["event"] == "reused" && v["pid"] == t.pid), "{}", stdout(&o));

    // Usage errors.
    for args in [
        &["check", "--pid", "1", "--all"][..],
        &["snapshot", "--subsystems", "bogus"],
        &["watch", "--interval", "soon"],
        &["frobnicate"],
        &["check", "--format", "xml"],
    ] {
        let o = run(args, d);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    let o = run(&["snapshot", "--subsystems", "bogus"], d);
    assert!(stderr(&o).contains("memory-maps"), "the message lists the valid names: {}", stderr(&o));
    drop(t);
}

fn recompute_digest(bytes: &mut Vec<u8>) {
    // The file's SHA-256 covers every byte before its own hex value.
    let marker = b"\"sha256\":\"";
    let at = bytes.windows(marker.len()).rposition(|w| w == marker).unwrap() + marker.len();
    let hex: String = Sha256::digest(&bytes[..at]).iter().map(|b| format!("{b:02x}")).collect();
    bytes.splice(at..at + 64, hex.into_bytes());
}

#[test]
fn corrupt_baselines_are_refused_with_exit_2_and_a_message() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    baseline_of(t.pid, d, &[]);
    let path = d.join("fdir-baseline.json");
    let good = std::fs::read(&path).unwrap();
    let key = d.join("key");
    assert_eq!(code(&run(&["keygen", key.to_str().unwrap()], d)), 0);
    let other_key = d.join("other-key");
    assert_eq!(code(&run(&["keygen", other_key.to_str().unwrap()], d)), 0);

    let mut version3 =
        String::from_utf8(good.clone()).unwrap().replacen("\"version\":2", "\"version\":3", 1).into_bytes();
    recompute_digest(&mut version3);
    let mut edited = String::from_utf8(good.clone()).unwrap().replacen("\"Seccomp=0", "\"Seccomp=2", 1).into_bytes();
    recompute_digest(&mut edited);

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x04;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a flipped bit", flipped, "has been modified or corrupted"),
        ("truncated", good[..good.len() / 3].to_vec(), "truncated"),
        ("appended bytes", [good.clone(), b"x".to_vec()].concat(), "corrupted"),
        ("garbage", b"hello world, not a baseline\n".to_vec(), "is not an fdir baseline"),
        ("empty", Vec::new(), "is empty"),
        ("another version", version3, "version 3"),
    ];
    for (what, bytes, message) in cases {
        std::fs::write(&path, &bytes).unwrap();
        for cmd in ["check", "watch"] {
            let o = run(&[cmd], d);
            assert_eq!(code(&o), 2, "{what} ({cmd}): {}", stdout(&o));
            let err = stderr(&o);
            assert!(
                err.contains(&path.display().to_string()) || err.contains("fdir-baseline.json"),
                "{what}: the message names the file: {err}"
            );
            assert!(err.contains(message), "{what}: {err}");
        }
    }

    // An edit with a recomputed digest passes the unkeyed check (documented),
    // but never a keyed one.
    let k = key.to_str().unwrap();
    let o = run(&["snapshot", "--pid", &t.pid.to_string(), "--key", k], d);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut signed_edit = String::from_utf8(std::fs::read(&path).unwrap())
        .unwrap()
        .replacen("\"Seccomp=0", "\"Seccomp=2", 1)
        .into_bytes();
    recompute_digest(&mut signed_edit);
    let signed = std::fs::read(&path).unwrap();
    std::fs::write(&path, &signed_edit).unwrap();
    let o = run(&["check", "--key", k], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("HMAC does not match"), "{}", stderr(&o));
    std::fs::write(&path, &signed).unwrap();
    assert_eq!(code(&run(&["check", "--key", k], d)), 0);
    let o = run(&["check", "--key", other_key.to_str().unwrap()], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("HMAC does not match: wrong key"), "{}", stderr(&o));
    let o = run(&["check"], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is signed: pass --key"), "{}", stderr(&o));
    std::fs::write(&path, &good).unwrap();
    let o = run(&["check", "--key", k], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not signed, but a key was given"), "{}", stderr(&o));
    let o = run(&["check", "--key", "/nonexistent/key"], d);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("key file /nonexistent/key does not exist"), "{}", stderr(&o));
    drop(edited);
}

#[test]
fn watch_detects_a_live_change_and_exits_0_on_sigterm() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut t = Testee::spawn();
    let pid = t.pid.to_string();
    let mut w = Watch::start(&["--pid", &pid, "--interval", "100ms", "--format", "json"], dir.path());
    let started = w.wait_for("started", is("started"));
    assert_eq!(started["confirm"], 2);
    w.wait_for("a baseline of the testee", |v| v["event"] == "baseline" && v["pid"] == t.pid);
    w.wait_for("a check", is("check"));
    assert!(dir.path().join("fdir-baseline.json").exists(), "watch writes the baseline it takes");

    t.must("seccomp");
    let a = w.wait_for("the anomaly", is("anomaly"));
    assert_eq!(a["pid"], t.pid);
    assert_eq!(a["subsystem"], "seccomp");
    let texts: Vec<&str> = a["changes"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"Seccomp 0 -> 2 (filter mode)"), "{texts:?}");
    // Declared once: the next checks do not repeat it.
    let check = w.wait_for("a later check", |v| v["event"] == "check" && v["anomalies"] == 0);
    assert_eq!(check["drifted"], 1);

    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert_eq!(rest.last().unwrap()["event"], "stopped");
    assert_eq!(rest.last().unwrap()["reason"], "SIGTERM");
}

#[test]
fn watch_wakes_at_once_for_a_signal_and_answers_each() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    // A long interval: each answer below comes from the signal, not the clock.
    let mut w = Watch::start(&["--pid", &pid, "--interval", "1h", "--format", "json"], dir.path());
    w.wait_for("a check", is("check"));
    // SIGHUP and SIGINT together: whichever is answered first (a stop, if
    // both have arrived by the wake-up), the stop ends it, exit 0.
    w.signal(libc::SIGHUP);
    w.signal(libc::SIGINT);
    assert_eq!(w.child_wait(), 0);
    let stopped = w.seen.iter().chain(w.rest.iter()).find(|v| v["event"] == "stopped").cloned().unwrap();
    assert_eq!(stopped["reason"], "SIGINT");
    assert_eq!(stopped["cycles"], 1);

    // SIGHUP alone: a new baseline, and the watch goes on.
    let mut w = Watch::start(&["--pid", &pid, "--interval", "1h", "--format", "json"], dir.path());
    w.wait_for("a check", is("check"));
    w.signal(libc::SIGHUP);
    let r = w.wait_for("the new baseline", is("rebaseline"));
    assert_eq!(r["reason"], "SIGHUP");
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    assert_eq!(rest.last().unwrap()["reason"], "SIGTERM");
    drop(t);
}

#[test]
fn watch_sets_a_timer_slack_of_a_hundredth_of_its_interval() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    for (interval, slack_ns) in [("1s", 10_000_000u64), ("200ms", 2_000_000), ("1h", 10_000_000)] {
        let mut w = Watch::start(&["--pid", &pid, "--interval", interval, "--format", "json"], dir.path());
        w.wait_for("a check", is("check"));
        let path = format!("/proc/{}/timerslack_ns", w.pid());
        match std::fs::read_to_string(&path) {
            Ok(s) => assert_eq!(s.trim().parse::<u64>().unwrap(), slack_ns, "{interval}"),
            Err(e) => common::skip(
                "watch_sets_a_timer_slack_of_a_hundredth_of_its_interval",
                &format!("cannot read {path}: {e}"),
            ),
        }
        w.stop_ok();
    }
    drop(t);
}

#[test]
fn watch_resumes_from_the_file_and_reports_a_vanished_target() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let a = Testee::spawn();
    let b = Testee::spawn();
    let (pa, pb) = (a.pid.to_string(), b.pid.to_string());
    let o = run(&["snapshot", "--pid", &pa, "--pid", &pb], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut w = Watch::start(&["--interval", "100ms", "--format", "json"], dir.path());
    w.wait_for("a check", is("check"));
    let bpid = b.pid;
    b.exit();
    let exited = w.wait_for("the exit", is("exited"));
    assert_eq!(exited["pid"], bpid);
    // It carries on with the other target.
    let check = w.wait_for("a check of the remaining target", |v| v["event"] == "check" && v["targets"] == 1);
    assert_eq!(check["failed"], 0);
    w.stop_ok();
    drop(a);
}

#[test]
fn watch_all_baselines_new_processes_and_notes_exits() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watch::start(&["--all", "--interval", "200ms", "--format", "json"], dir.path());
    w.wait_for("a check", is("check"));
    // A process started after the baseline: baselined on first sight, once settled.
    let t = Testee::spawn();
    let new = w.wait_for("the new process", |v| v["event"] == "baseline" && v["pid"] == t.pid);
    assert_eq!(new["first_sight"], true);
    let pid = t.pid;
    t.exit();
    w.wait_for("its exit", |v| v["event"] == "exited" && v["pid"] == pid);
    // A process that lives shorter than the settle time is never baselined.
    let quick = Testee::spawn();
    let qpid = quick.pid;
    quick.exit();
    w.wait_for("two more checks", |v| v["event"] == "check" && v["cycle"].as_u64() > Some(20));
    assert!(!w.seen.iter().any(|v| v["pid"] == qpid), "a short-lived process is not baselined");
    let seen = w.seen.clone();
    let (code, rest) = w.terminate();
    assert_eq!(code, 0);
    // Our processes did not drift (the test judges its own processes only:
    // others on the machine may change for real meanwhile).
    let ours = |v: &&serde_json::Value| v["event"] == "anomaly" && (v["pid"] == pid || v["pid"] == qpid);
    assert!(!seen.iter().chain(&rest).any(|v| ours(&v)), "{seen:#?}");
}

/// `snapshot --all` then `check --all`: our own unchanged processes are
/// baselined, checked and do not drift. The exit status says whether any
/// process of the machine drifted, which is not this test's to judge (a
/// JIT, a shell that exec'd, a service changing for real): 0 or 1, never 2.
#[test]
fn snapshot_and_check_all_our_unchanged_processes_do_not_drift() {
    let _s = common::serial();
    let ours = [Testee::spawn(), Testee::spawn()];
    let pids: Vec<u32> = ours.iter().map(|t| t.pid).collect();
    // Past the settle time, so the snapshot does not wait for them.
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let mine = |v: &serde_json::Value| v["pid"].as_u64().is_some_and(|p| pids.iter().any(|&q| u64::from(q) == p));
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["snapshot", "--all", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    assert_eq!(events.iter().filter(|v| v["event"] == "baseline" && mine(v)).count(), 2, "{events:#?}");
    let o = run(&["check", "--all", "--format", "json"], dir.path());
    assert!([0, 1].contains(&code(&o)), "{}{}", stdout(&o), stderr(&o));
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let drifted: Vec<&serde_json::Value> = events.iter().filter(|v| v["event"] == "anomaly" && mine(v)).collect();
    assert!(drifted.is_empty(), "our unchanged processes drifted: {drifted:#?}");
    drop(ours);
}

#[test]
fn help_man_and_completions() {
    let d = tempfile::tempdir().unwrap();
    for sub in ["snapshot", "check", "watch"] {
        let o = run(&[sub, "--help"], d.path());
        assert_eq!(code(&o), 0);
        let text = stdout(&o);
        assert!(text.contains("Examples:") && text.contains("--baseline"), "{sub}: {text}");
    }
    let o = run(&["man"], d.path());
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains(".TH fdir"));
    let o = run(&["completions", "bash"], d.path());
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("_fdir"));
    let o = run(&["--version"], d.path());
    assert!(stdout(&o).starts_with("fdir "));
}

#[test]
fn the_node_is_baselined_and_checked_with_system() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["snapshot", "--system", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let events = json_lines(&o);
    events.iter().for_each(assert_event_schema);
    let b = events.iter().find(|v| v["event"] == "baseline").unwrap();
    assert!(b.get("pid").is_none(), "a node event has no pid: {b}");
    assert!(b["subsystems"]["kernel"].is_string() && b["subsystems"]["kernel-taint"].is_string(), "{b}");
    let o = run(&["check"], dir.path());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // A process subsystem does not apply to the node.
    let o = run(&["snapshot", "--system", "--subsystems", "seccomp"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("does not apply to the node"), "{}", stderr(&o));
}

#[test]
fn a_large_node_is_checked_in_parts_spread_over_the_interval() {
    let _s = common::serial();
    // More extra processes than a part holds, so a round is split in parts.
    let per_part = fdir::runtime::TARGETS_PER_PART;
    let extra: Vec<std::process::Child> =
        (0..per_part + 6).map(|_| std::process::Command::new("sleep").arg("60").spawn().unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watch::start(&["--all", "--interval", "400ms", "--format", "json"], dir.path());
    let first = w.wait_for("a round", is("check"));
    let targets = first["targets"].as_u64().unwrap();
    assert!(targets > per_part as u64, "{first}");
    // The first round is whole, at once: not spread over the interval.
    assert_eq!(first["parts"], 1, "{first}");
    // Every target is checked once per round, whichever part it is in.
    let before = w.seen.len();
    let next = w.wait_for("the next round", |v| v["event"] == "check" && v["cycle"] == 2);
    // (Processes of the machine start and exit meanwhile — a build beside the
    // tests — : every target at the round's end was checked or is new, and
    // none was checked twice: at most the targets and those that exited,
    // whether a part of the round found them gone or a trigger's re-check
    // between two parts did: that one is said in its own `exited` event,
    // not in the round's count.)
    let n = |k: &str| next[k].as_u64().unwrap();
    let gone_between = w.seen[before..].iter().filter(|v| v["event"] == "exited").count() as u64;
    assert!(n("checked") + n("new") >= n("targets"), "a target was not checked: {next}");
    assert!(
        n("checked") <= n("targets") + n("exited").max(gone_between),
        "a target was checked twice: {next} ({gone_between} exited events in the round)"
    );
    // About `TARGETS_PER_PART` targets a part, parts at least 50 ms apart
    // (8 in 400 ms), for the targets the round began with: between those at
    // its end less the new, and those plus the exited.
    let parts = |targets: u64| targets.div_ceil(per_part as u64).clamp(1, 8);
    let (fewest, most) = (parts(n("targets") - n("new")), parts(n("targets") + n("exited")));
    assert!((fewest..=most).contains(&n("parts")), "{next}");
    // Our processes did not drift (others on the machine are not ours to judge).
    let ours: Vec<u32> = extra.iter().map(std::process::Child::id).collect();
    let mine = |v: &serde_json::Value| v["pid"].as_u64().is_some_and(|p| ours.iter().any(|&q| u64::from(q) == p));
    assert!(!w.seen.iter().any(|v| v["event"] == "anomaly" && mine(v)));
    w.stop_ok();
    for mut c in extra {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Where no thread can be started (a cgroup's `pids.max` reached), the
/// commands that use both cores run on one: `snapshot --all` and `check
/// --all` answer as usual, and nothing panics.
#[test]
fn all_processes_are_checked_on_one_thread_when_no_other_can_be_started() {
    const TEST: &str = "all_processes_are_checked_on_one_thread_when_no_other_can_be_started";
    let _s = common::serial();
    let Some(h) = common::hierarchy(Some("pids")) else {
        common::skip(TEST, "no cgroup hierarchy to limit the number of tasks in");
        return;
    };
    let cg = match common::ScratchCgroup::new(&h, "one-task") {
        Ok(cg) => cg,
        Err(e) => {
            common::skip(TEST, &e);
            return;
        }
    };
    if let Err(e) = cg.write("pids.max", "1") {
        common::skip(TEST, &format!("cannot set pids.max: {e}"));
        return;
    }
    // Enough processes for every parallel path (reopening and checking from
    // 16 targets, decoding the baseline from 64), whatever else runs here.
    struct Sleepers(Vec<std::process::Child>);
    impl Drop for Sleepers {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let _sleepers =
        Sleepers((0..70).map(|_| std::process::Command::new("sleep").arg("600").spawn().unwrap()).collect());
    let dir = tempfile::tempdir().unwrap();
    // The shell moves itself into the cgroup, then becomes fdir: one task,
    // and every thread fdir tries to start is refused (EAGAIN).
    let confined = |args: &str| {
        let line =
            format!("echo $$ > {}/cgroup.procs && exec {} {args}", cg.path.display(), env!("CARGO_BIN_EXE_fdir"));
        std::process::Command::new("/bin/sh").arg("-c").arg(line).current_dir(dir.path()).output().unwrap()
    };
    let o = confined("snapshot --all --subsystems memory-maps,seccomp,cgroups --format json");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = confined("check --all --format json");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(matches!(code(&o), 0 | 1), "exit {}: {}", code(&o), stderr(&o));
    let events = json_lines(&o);
    let check = events.last().unwrap();
    assert_eq!(check["event"], "check");
    assert!(check["targets"].as_u64().unwrap() > 10, "{check}");
    assert_eq!(check["failed"], 0, "{check}");
}

/// `fdir bench --only watch` measures real watches at 100 ms and 1 s once
/// they are past their first vote of the baseline file, and reports each
/// next to its floor, with the pages a cycle touched and the price of a
/// page after an idle interval. Functional only: no figure is asserted
/// beyond being measured at all.
#[test]
fn bench_measures_the_watch_in_its_steady_state() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["bench", "--only", "watch", "--seconds", "1", "--format", "json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let watch = lines[0]["watch"].as_array().unwrap();
    let intervals: Vec<u64> = watch.iter().map(|w| w["interval_ms"].as_u64().unwrap()).collect();
    assert_eq!(intervals, [100, 1000]);
    for w in watch {
        assert!(w["cpu_percent"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["floor_percent"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["peak_rss_kib"].as_u64().unwrap() > 0, "{w}");
        assert!(w["seconds"].as_f64().unwrap() >= 1.0, "{w}");
        // The pages a cycle touched, from the kernel's referenced bits:
        // clearing them needs the right to trace the watch (root here).
        if w["pages"].is_null() {
            common::skip(
                "bench_measures_the_watch_in_its_steady_state",
                "/proc/PID/clear_refs of the watch could not be written",
            );
        } else {
            let p = &w["pages"];
            assert!(p["binary"].as_u64().unwrap() > 0, "{w}");
            assert!(p["heap"].as_u64().unwrap() > 0, "{w}");
            assert!(p["stack"].as_u64().unwrap() > 0, "{w}");
        }
        // In the same window, the price of a page's first touch after each
        // idle interval, in small pages and inside a huge page where the
        // kernel gives one.
        let tax = &w["page_tax"];
        assert_eq!(tax["pages"], 64, "{w}");
        assert!(tax["rounds"].as_u64().unwrap() >= 1, "{w}");
        assert!(tax["small_us"].as_f64().unwrap() >= 0.0, "{w}");
        if tax["huge_us"].is_null() {
            common::skip("bench_measures_the_watch_in_its_steady_state", "the kernel gave no transparent huge page");
        } else {
            assert!(tax["huge_us"].as_f64().unwrap() >= 0.0, "{w}");
        }
        assert!(tax["file_us"].as_f64().unwrap() >= 0.0, "{w}");
    }
}

/// Where the temporary directory is mounted `noexec` (as on many hardened
/// hosts), `fdir bench` cannot run the watch from a copy of fdir there: it
/// runs fdir itself instead, and still measures the watch. The tmpfs is
/// mounted in a mount namespace of the bench's own.
#[test]
fn bench_measures_the_watch_with_a_noexec_temporary_directory() {
    if !common::is_root() {
        common::skip("bench_measures_the_watch_with_a_noexec_temporary_directory", "not root: cannot mount a tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("noexec");
    std::fs::create_dir(&tmp).unwrap();
    // In a mount namespace of its own: the machine's mount table never
    // changes (a `watch --all` running beside would see it as drift), and
    // the mount goes with the namespace's last process, even on failure.
    let script = r#"mount -t tmpfs -o noexec,size=256m tmpfs "$1" || exit 99
TMPDIR="$1" exec "$2" bench --only watch --seconds 1 --format json"#;
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&tmp)
        .arg(env!("CARGO_BIN_EXE_fdir"))
        .current_dir(dir.path())
        .output();
    let Ok(o) = o else {
        common::skip("bench_measures_the_watch_with_a_noexec_temporary_directory", "no unshare(1) to run");
        return;
    };
    if code(&o) == 99 || (code(&o) != 0 && stderr(&o).contains("unshare")) {
        common::skip(
            "bench_measures_the_watch_with_a_noexec_temporary_directory",
            &format!("cannot mount a tmpfs in a mount namespace of its own: {}", stderr(&o).trim()),
        );
        return;
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = json_lines(&o);
    for w in lines[0]["watch"].as_array().unwrap() {
        assert!(w["cpu_percent"].as_f64().unwrap() > 0.0, "{w}");
        if !w["pages"].is_null() {
            assert!(w["pages"]["binary"].as_u64().unwrap() > 0, "{w}");
        }
    }
}

/// Whether an anomaly event names `pid`: as its process, or as one of the
/// processes of a shared object's drift (`pids`).
fn names_pid(v: &serde_json::Value, pid: u32) -> bool {
    v["pid"] == pid || v["pids"].as_array().is_some_and(|p| p.iter().any(|p| *p == pid))
}

/// Processes that share a cgroup share its limit files: a watch reads them
/// once a round (shared.rs) and must still see a change for every process
/// that leads there (one anomaly naming the cgroup and both processes), see
/// nothing for a process in a sibling cgroup, and see a process that moves
/// away on its own.
#[test]
fn a_limit_raised_on_a_shared_cgroup_is_seen_for_each_of_its_processes() {
    const TEST: &str = "a_limit_raised_on_a_shared_cgroup_is_seen_for_each_of_its_processes";
    if !common::is_root() {
        return common::skip(TEST, "moving processes between cgroups needs root");
    }
    let Some(h) = common::hierarchy(Some("pids")).filter(|h| !h.v2) else {
        return common::skip(TEST, "no cgroup v1 pids hierarchy to make cgroups in");
    };
    let (mut shared, mut sibling) =
        match (common::ScratchCgroup::new(&h, "shared"), common::ScratchCgroup::new(&h, "sibling")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return common::skip(TEST, &e),
        };
    let (a, b, c) = (Testee::spawn(), Testee::spawn(), Testee::spawn());
    shared.enter(a.pid).unwrap();
    shared.enter(b.pid).unwrap();
    sibling.enter(c.pid).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pids: Vec<String> = [a.pid, b.pid, c.pid].iter().map(u32::to_string).collect();
    let mut args = vec!["--subsystems", "cgroup-limits", "--interval", "200ms", "--format", "json"];
    for p in &pids {
        args.extend(["--pid", p]);
    }
    let mut w = Watch::start(&args, dir.path());
    w.wait_for("a first check", |v| v["event"] == "check");
    shared.write("pids.max", "77").unwrap();
    let drifted = |pid: u32, to: &'static str| {
        move |v: &serde_json::Value| {
            v["event"] == "anomaly"
                && names_pid(v, pid)
                && v["changes"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["text"].as_str().unwrap_or("").contains(to)))
        }
    };
    let e = w.wait_for("the cgroup's anomaly", drifted(a.pid, "-> 77"));
    assert!(names_pid(&e, b.pid), "one anomaly for both processes of the cgroup: {e}");
    assert_eq!(e["object"], format!("cgroup pids:{}", shared.cgroup_path()), "{e}");
    // A few more rounds: the sibling, which shares nothing, stays quiet.
    let cycle = w.wait_for("a check", |v| v["event"] == "check")["cycle"].as_u64().unwrap();
    w.wait_for("three more checks", |v| v["event"] == "check" && v["cycle"].as_u64() >= Some(cycle + 3));
    assert!(
        !w.seen.iter().any(|v| v["event"] == "anomaly" && names_pid(v, c.pid)),
        "the process of the sibling cgroup drifted: {:#?}",
        w.seen
    );
    // A change of the sibling's own limit: the drift of its process alone.
    sibling.write("pids.max", "55").unwrap();
    w.wait_for("the sibling's process's anomaly", drifted(c.pid, "-> 55"));
    let (status, _) = w.terminate();
    assert_eq!(status, 0);
    drop((a, b, c));
}

/// A mount table read once a round for the processes that share it
/// (shared.rs): a mount made in a private mount namespace is seen for each
/// of its two processes (one anomaly naming the namespace and both), and
/// not for a process of another namespace, which sees its own.
#[test]
fn a_mount_in_a_shared_namespace_is_seen_for_each_of_its_processes() {
    mount_in_a_shared_namespace("a_mount_in_a_shared_namespace_is_seen_for_each_of_its_processes", "mounts");
}

/// The same with `namespaces` checked too: the mount namespace that keys
/// the shared table is then the one the namespaces pass found (one `stat`
/// of `ns/mnt` a process, not two); each process still reads what tells
/// its namespace, and the other namespace's process is not taken along.
#[test]
fn a_mount_in_a_shared_namespace_is_seen_with_the_namespaces_pass() {
    mount_in_a_shared_namespace("a_mount_in_a_shared_namespace_is_seen_with_the_namespaces_pass", "namespaces,mounts");
}

fn mount_in_a_shared_namespace(test: &'static str, subsystems: &str) {
    let skip = |reason: &str| common::skip(test, reason);
    if !common::is_root() {
        return skip("mount namespaces and mounts need root");
    }
    // Two processes in one private mount namespace, one in another; each
    // namespace a process group of its own, killed whole (the background
    // sleep too).
    let spawn_ns = || {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", "sleep 1000 & exec sleep 1000"])
            .process_group(0)
            .spawn()
    };
    let (Ok(mut first), Ok(mut other)) = (spawn_ns(), spawn_ns()) else {
        return skip("unshare (util-linux) cannot make a mount namespace here");
    };
    let kill = |c: &mut std::process::Child| {
        if let Ok(group) = i32::try_from(c.id()) {
            // SAFETY: kill(2) of the process group this test made.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = c.kill();
        let _ = c.wait();
    };
    let a = first.id();
    let mut b = None;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let children = std::fs::read_to_string(format!("/proc/{a}/task/{a}/children")).unwrap_or_default();
        b = children.split_whitespace().next().and_then(|p| p.parse::<u32>().ok());
        let own_ns =
            std::fs::read_link(format!("/proc/{a}/ns/mnt")).ok() != std::fs::read_link("/proc/self/ns/mnt").ok();
        if b.is_some() && own_ns {
            break;
        }
    }
    let Some(b) = b else {
        kill(&mut first);
        kill(&mut other);
        return skip("the namespace's second process did not start");
    };
    let c = other.id();
    let dir = tempfile::tempdir().unwrap();
    let pids: Vec<String> = [a, b, c].iter().map(u32::to_string).collect();
    let mut args = vec!["--subsystems", subsystems, "--interval", "200ms", "--format", "json"];
    for p in &pids {
        args.extend(["--pid", p]);
    }
    let mut w = Watch::start(&args, dir.path());
    w.wait_for("a first check", |v| v["event"] == "check");
    let mount_in = |pid: u32| {
        std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "mount", "-t", "tmpfs", "fdir-test", "/mnt"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !mount_in(a) {
        drop(w);
        kill(&mut first);
        kill(&mut other);
        return skip("cannot mount a tmpfs in the test's namespace (nsenter, mount)");
    }
    let drifted = |pid: u32| {
        move |v: &serde_json::Value| v["event"] == "anomaly" && names_pid(v, pid) && v["subsystem"] == "mounts"
    };
    let e = w.wait_for("the namespace's anomaly", drifted(a));
    assert!(names_pid(&e, b), "one anomaly for both processes of the namespace: {e}");
    let ns = std::fs::read_link(format!("/proc/{a}/ns/mnt")).unwrap().display().to_string();
    assert!(
        e["object"].as_str().is_some_and(|o| o.starts_with("mount namespace ") && ns.contains(&o[16..])),
        "{e} ({ns})"
    );
    let cycle = w.wait_for("a check", |v| v["event"] == "check")["cycle"].as_u64().unwrap();
    w.wait_for("three more checks", |v| v["event"] == "check" && v["cycle"].as_u64() >= Some(cycle + 3));
    let quiet = !w.seen.iter().any(|v| v["event"] == "anomaly" && names_pid(v, c));
    let other_mounted = mount_in(c);
    if quiet && other_mounted {
        w.wait_for("the other namespace's anomaly", drifted(c));
    }
    let (status, _) = w.terminate();
    kill(&mut first);
    kill(&mut other);
    assert!(quiet, "the process of the other namespace drifted with the first's mount");
    assert!(other_mounted, "cannot mount in the other namespace");
    assert_eq!(status, 0);
}
