//! The corrupt-baseline catalogue, through the binary: a small real baseline
//! (`fdir snapshot --pid <testee> --subsystems cgroups`, unsigned and signed),
//! then `fdir check` on every single-bit flip of each, every truncation, seeded
//! random byte runs, payload edits with the file's SHA-256 recomputed, wrong
//! versions, wrong, missing and unexpected keys, and files that are not
//! baselines at all (huge, a directory, a FIFO, a device, a socket ...).
//!
//! Every one must exit 2 with a message on stderr that names the file and
//! says what is wrong; never exit 0 or 1, never a panic, never a signal.
//! The runs go through a few worker threads at once; the counts and the time
//! are printed (`cargo test --test it corrupt_baselines:: -- --nocapture`).

use crate::common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::command::{code, fdir, run, stderr, stdout};
use common::{Rng, Testee};
use sha2::{Digest as _, Sha256};

/// Processes run at once (the machine has two cores; each run is a few ms of
/// mostly process start-up).
const WORKERS: usize = 3;

/// Seed of the random byte runs.
const SEED: u64 = 0x00fd_1c0d_e5ee_d001;

/// Phrases of the messages fdir gives for a refused baseline or key file.
const REFUSALS: &[&str] = &[
    "is empty",
    "is not an fdir baseline",
    "is truncated or corrupted",
    "has been modified or corrupted",
    "is format version",
    "is not a valid baseline",
    "is signed: pass --key",
    "is not signed, but a key was given",
    "HMAC does not match",
    "holds a snapshot of",
    "records stored under digest",
    "that no target refers to",
    "is larger than",
    "is a directory",
    "is a FIFO",
    "is a device",
    "is a socket",
    "does not exist",
    "cannot be read",
    "was taken in another boot",
    "is too short",
];

/// One corrupted input: the bytes of the baseline file (or `None` to use the
/// path as prepared), the key to check with, and what the message must say.
struct Case {
    what: String,
    bytes: Option<Vec<u8>>,
    key: Option<PathBuf>,
    /// A phrase the message must hold; any refusal phrase when `None`.
    expect: Option<&'static str>,
}

impl Case {
    fn new(what: impl Into<String>, bytes: Vec<u8>, key: Option<&Path>, expect: Option<&'static str>) -> Case {
        Case { what: what.into(), bytes: Some(bytes), key: key.map(Path::to_path_buf), expect }
    }
}

/// What one `fdir check` did wrong, if anything.
fn verdict(o: &Output, path: &Path, expect: Option<&str>) -> Result<(), String> {
    let err = stderr(o);
    if let Some(sig) = o.status.signal() {
        return Err(format!("killed by signal {sig}: {err}"));
    }
    if err.contains("panicked") {
        return Err(format!("panicked: {err}"));
    }
    if code(o) != 2 {
        return Err(format!("exit {} (not 2): stdout {:?} stderr {err:?}", code(o), stdout(o)));
    }
    if !err.contains(&path.display().to_string()) {
        return Err(format!("the message does not name {}: {err:?}", path.display()));
    }
    let says = match expect {
        Some(phrase) => err.contains(phrase),
        None => REFUSALS.iter().any(|p| err.contains(p)),
    };
    if !says {
        return Err(format!("the message does not say {}: {err:?}", expect.unwrap_or("why the file is refused")));
    }
    if err.lines().count() != 1 {
        return Err(format!("more than one line on stderr: {err:?}"));
    }
    Ok(())
}

/// Runs `fdir <command> --baseline FILE [--key KEY]` for every case on a few
/// threads, each with its own file; returns the failures.
fn run_cases(dir: &Path, command: &str, cases: &[Case]) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for worker in 0..WORKERS {
            let (next, failures) = (&next, &failures);
            s.spawn(move || {
                let path = dir.join(format!("case-{worker}.json"));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let file = match &case.bytes {
                        Some(bytes) => {
                            std::fs::write(&path, bytes).unwrap();
                            path.clone()
                        }
                        None => PathBuf::from(&case.what),
                    };
                    let mut cmd = fdir();
                    cmd.arg(command).arg("--baseline").arg(&file).current_dir(dir);
                    if command == "watch" {
                        cmd.args(["--interval", "1s"]);
                    }
                    if let Some(key) = &case.key {
                        cmd.arg("--key").arg(key);
                    }
                    let o = cmd.output().unwrap();
                    if let Err(e) = verdict(&o, &file, case.expect) {
                        failures.lock().unwrap().push(format!("{command}: {}: {e}", case.what));
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Recomputes the file's SHA-256 (over every byte before its hex value), as
/// someone editing the file by hand would.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let marker = b"\"sha256\":\"";
    let at = bytes.windows(marker.len()).rposition(|w| w == marker).unwrap() + marker.len();
    let hex = sha256_hex(&bytes[..at]);
    bytes.splice(at..at + 64, hex.into_bytes());
    bytes
}

fn replace_once(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in the baseline");
    text.replacen(from, to, 1).into_bytes()
}

fn every_bit_flip(label: &str, good: &[u8], key: Option<&Path>) -> Vec<Case> {
    let mut cases = Vec::with_capacity(good.len() * 8);
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.to_vec();
            b[i] ^= 1 << bit;
            cases.push(Case::new(format!("{label}: bit {bit} of byte {i}"), b, key, Some("corrupted")));
        }
    }
    cases
}

fn every_truncation(label: &str, good: &[u8], key: Option<&Path>) -> Vec<Case> {
    (0..good.len())
        .map(|len| {
            let expect = if len == 0 { "is empty" } else { "is truncated or corrupted" };
            Case::new(format!("{label}: truncated to {len} bytes"), good[..len].to_vec(), key, Some(expect))
        })
        .collect()
}

/// Overwritten runs, inserted runs, deleted runs and swapped halves, at
/// seeded places, of seeded lengths and bytes (printable or not).
fn random_runs(label: &str, good: &[u8], key: Option<&Path>, n: usize, rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::with_capacity(n);
    while cases.len() < n {
        let mut b = good.to_vec();
        let at = rng.below(good.len());
        let long = rng.below(4) == 0;
        let len = 1 + rng.below(if long { 512 } else { 16 });
        let printable = rng.below(2) == 0;
        let byte = |rng: &mut Rng| {
            let x = u8::try_from(rng.next() >> 56).unwrap();
            if printable { b' ' + x % 95 } else { x }
        };
        let kind = rng.below(4);
        let what = match kind {
            0 => {
                for j in at..(at + len).min(b.len()) {
                    b[j] = byte(rng);
                }
                "overwritten"
            }
            1 => {
                let run: Vec<u8> = (0..len).map(|_| byte(rng)).collect();
                b.splice(at..at, run);
                "inserted"
            }
            2 => {
                b.drain(at..(at + len).min(good.len()));
                "deleted"
            }
            _ => {
                let other = rng.below(good.len());
                let n = len.min(good.len() - at).min(good.len() - other);
                let run = good[other..other + n].to_vec();
                b.splice(at..at + n, run);
                "copied from elsewhere in the file over"
            }
        };
        if b == good {
            continue;
        }
        cases.push(Case::new(format!("{label}: {len} bytes {what} at {at} (run {})", cases.len()), b, key, None));
    }
    cases
}

/// Edits of the payload (or the header) with the file's SHA-256 recomputed:
/// what a careless or hostile hand edit looks like. Each is refused on its
/// content: the records fail their digests, the JSON is not a baseline, the
/// version is not one this fdir reads, the signature does not match.
fn resealed_edits(good: &[u8], signed: &[u8], key: &Path, other_key: &Path) -> Vec<Case> {
    let text = String::from_utf8(good.to_vec()).unwrap();
    let record_value = {
        let start = text.find("\"value\":\"").unwrap() + "\"value\":\"".len();
        let end = start + text[start..].find('"').unwrap();
        text[start..end].to_owned()
    };
    // The first record set's digest: the key it is stored under in the
    // table, and what its target names.
    let subsystem_digest = {
        let table = text.find("\"records\":{\"").unwrap() + "\"records\":{\"".len();
        let start = table + text[table..].find(":{\"").unwrap() + ":{\"".len();
        text[start..start + 64].to_owned()
    };
    let mut flipped_digest = subsystem_digest.clone().into_bytes();
    flipped_digest[10] = if flipped_digest[10] == b'0' { b'1' } else { b'0' };
    let flipped_digest = String::from_utf8(flipped_digest).unwrap();
    let payload_start = text.find(",\"payload\":").unwrap() + ",\"payload\":".len();
    let payload_end = text.rfind(",\"sha256\":\"").unwrap();
    let with_payload = |payload: &str| {
        let mut t = text[..payload_start].to_owned();
        t.push_str(payload);
        t.push_str(&text[payload_end..]);
        reseal(t.into_bytes())
    };
    let payload = &text[payload_start..payload_end];
    // A well-formed record set (the empty one) that no target names.
    let unnamed = fdir::canon::digest_records(fdir::Subsystem::Kernel, &[]).unwrap();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut invalid_utf8 = replace_once(good, "\"created_by\":\"fdir", "\"created_by\":\"\u{1}dir");
    let at = invalid_utf8.windows(4).position(|w| w == b"\x01dir").unwrap();
    invalid_utf8[at] = 0xff;

    let r = |what: &str, bytes: Vec<u8>, expect: &'static str| Case::new(what, reseal(bytes), None, Some(expect));
    let mut cases = vec![
        r(
            "a record edited",
            replace_once(good, &format!("\"value\":\"{record_value}\""), &format!("\"value\":\"{record_value}x\"")),
            "records stored under digest",
        ),
        r(
            "a subsystem digest edited",
            replace_once(good, &format!(":\"{subsystem_digest}\""), &format!(":\"{flipped_digest}\"")),
            "holds a snapshot of",
        ),
        r(
            "a record set stored under another digest",
            replace_once(good, &format!("\"{subsystem_digest}\":["), &format!("\"{flipped_digest}\":[")),
            "records stored under digest",
        ),
        r(
            "a record removed",
            replace_once(good, &format!("{{\"key\":\"thread\",\"value\":\"{record_value}\"}}"), ""),
            "records stored under digest",
        ),
        r(
            "a record duplicated",
            replace_once(
                good,
                &format!("{{\"key\":\"thread\",\"value\":\"{record_value}\"}}"),
                &format!(
                    "{{\"key\":\"thread\",\"value\":\"{record_value}\"}},{{\"key\":\"thread\",\"value\":\"{record_value}\"}}"
                ),
            ),
            "records stored under digest",
        ),
        r(
            "a control character in a record",
            replace_once(good, &format!("\"value\":\"{record_value}\""), &format!("\"value\":\"{record_value}\\n\"")),
            "records stored under digest",
        ),
        r(
            "a record set no target names",
            replace_once(good, "\"records\":{", &format!("\"records\":{{\"kernel\":{{\"{unnamed}\":[]}},")),
            "that no target refers to",
        ),
        r(
            "an unknown field in the payload",
            replace_once(good, "\"created_by\":", "\"extra\":1,\"created_by\":"),
            "is not a valid baseline",
        ),
        r("a field missing", replace_once(good, "\"created_by\":\"fdir 0.1.0\",", ""), "is not a valid baseline"),
        r(
            "a field of the wrong type",
            replace_once(good, "\"subsystems\":[\"cgroups\"]", "\"subsystems\":\"cgroups\""),
            "is not a valid baseline",
        ),
        r(
            "an unknown subsystem",
            replace_once(good, "\"subsystems\":[\"cgroups\"]", "\"subsystems\":[\"cgroupz\"]"),
            "is not a valid baseline",
        ),
        r("a pid out of range", replace_once(good, "\"pid\":", "\"pid\":1e400,\"x\":"), "is not a valid baseline"),
        r("a negative pid", replace_once(good, "\"pid\":", "\"pid\":-1,\"x\":"), "is not a valid baseline"),
        r(
            "a duplicated field",
            replace_once(good, "\"created_by\":", "\"subsystems\":[],\"created_by\":"),
            "is not a valid baseline",
        ),
        r(
            "a bad time",
            replace_once(good, "\"created_at\":\"", "\"created_at\":\"yesterday"),
            "is not a valid baseline",
        ),
        r("invalid UTF-8 in a string", invalid_utf8, "is not a valid baseline"),
        r(
            "a boot id of another boot",
            replace_once(good, "\"boot_id\":\"", "\"boot_id\":\"0"),
            "was taken in another boot",
        ),
        r("the format renamed", replace_once(good, "fdir-baseline", "fdir-baselinf"), "is not an fdir baseline"),
        r("pretty-printed", replace_once(good, "{\"format\":", "{ \"format\":"), "is not an fdir baseline"),
        Case::new("payload null", with_payload("null"), None, Some("is not a valid baseline")),
        Case::new("payload an empty object", with_payload("{}"), None, Some("is not a valid baseline")),
        Case::new("payload an array", with_payload("[]"), None, Some("is not a valid baseline")),
        Case::new("payload 100000 nested arrays", with_payload(&nested), None, Some("is not a valid baseline")),
        Case::new(
            "payload cut in half",
            with_payload(&payload[..payload.len() / 2]),
            None,
            Some("is not a valid baseline"),
        ),
        Case::new(
            "payload twice",
            with_payload(&format!("{payload},{payload}")),
            None,
            Some("is not a valid baseline"),
        ),
        Case::new(
            "payload missing",
            reseal(replace_once(good, &format!(",\"payload\":{payload}"), "")),
            None,
            Some("is not a valid baseline"),
        ),
    ];
    // Versions.
    for (v, expect) in [
        ("3", "is format version 3, which this fdir does not read (it reads versions 1, 2)"),
        ("0", "is format version 0"),
        ("18446744073709551615", "is format version 18446744073709551615"),
        ("18446744073709551616", "its version is not a number"),
        ("02", "its version is not a number"),
        ("-2", "its version is not a number"),
        ("\"2\"", "its version is not a number"),
        ("null", "its version is not a number"),
        ("2.0", "no \"payload\" after the version"),
        ("2 ", "no \"payload\" after the version"),
    ] {
        cases.push(r(
            &format!("version {v}"),
            replace_once(good, "\"version\":2,", &format!("\"version\":{v},")),
            expect,
        ));
    }
    // Keys: the signed file's signature edited, stripped, or checked with the
    // wrong key; the unsigned file checked with a key.
    let signed_text = String::from_utf8(signed.to_vec()).unwrap();
    let hmac_at = signed_text.find(",\"hmac_sha256\":\"").unwrap();
    let hmac_hex = &signed_text[hmac_at + ",\"hmac_sha256\":\"".len()..][..64];
    let mut forged_hmac = hmac_hex.as_bytes().to_vec();
    forged_hmac[0] = if forged_hmac[0] == b'a' { b'b' } else { b'a' };
    let forged_hmac = String::from_utf8(forged_hmac).unwrap();
    let stripped = reseal(replace_once(signed, &format!(",\"hmac_sha256\":\"{hmac_hex}\""), ""));
    let k = Some(key);
    cases.extend([
        Case::new("signed, checked without its key", signed.to_vec(), None, Some("is signed: pass --key")),
        Case::new("signed, checked with another key", signed.to_vec(), Some(other_key), Some("HMAC does not match")),
        Case::new("unsigned, checked with a key", good.to_vec(), k, Some("is not signed, but a key was given")),
        Case::new(
            "signature edited",
            reseal(replace_once(signed, hmac_hex, &forged_hmac)),
            k,
            Some("HMAC does not match"),
        ),
        Case::new("signature stripped", stripped, k, Some("is not signed, but a key was given")),
        Case::new(
            "signed, a record edited",
            reseal(replace_once(
                signed,
                &format!("\"value\":\"{record_value}\""),
                &format!("\"value\":\"{record_value}x\""),
            )),
            k,
            Some("HMAC does not match"),
        ),
        Case::new(
            "signed, version 3",
            reseal(replace_once(signed, "\"version\":2,", "\"version\":3,")),
            k,
            Some("is format version 3"),
        ),
    ]);
    // Whole-file damage.
    let mut crlf = good.to_vec();
    crlf.insert(crlf.len() - 1, b'\r');
    let mut utf16 = vec![0xff, 0xfe];
    for &b in good {
        utf16.extend_from_slice(&[b, 0]);
    }
    cases.extend([
        Case::new("one byte appended", [good, b"x"].concat(), None, Some("is truncated or corrupted")),
        Case::new("a second newline", [good, b"\n"].concat(), None, Some("is truncated or corrupted")),
        Case::new("the file twice", [good, good].concat(), None, Some("has been modified or corrupted")),
        Case::new(
            "a byte-order mark",
            [&b"\xef\xbb\xbf"[..], good].concat(),
            None,
            Some("has been modified or corrupted"),
        ),
        Case::new("CRLF", crlf, None, Some("is truncated or corrupted")),
        Case::new("UTF-16", utf16, None, Some("is not an fdir baseline")),
        Case::new("all zeros", vec![0; good.len()], None, Some("is not an fdir baseline")),
        Case::new("a newline only", b"\n".to_vec(), None, Some("is not an fdir baseline")),
        Case::new(
            "the digest line alone",
            text.as_bytes()[payload_end..].to_vec(),
            None,
            Some("has been modified or corrupted"),
        ),
        Case::new(
            "another JSON document",
            b"{\"format\":\"something-else\"}\n".to_vec(),
            None,
            Some("is not an fdir baseline"),
        ),
    ]);
    cases
}

/// Paths that are not baseline files: huge, a directory, a FIFO, a device,
/// a socket, missing, a dangling link. The case's `what` is the path.
fn odd_files(dir: &Path) -> (Vec<Case>, std::os::unix::net::UnixListener) {
    let at = |name: &str| dir.join(name);
    let huge = at("huge.json");
    std::fs::File::create(&huge).unwrap().set_len(fdir::baseline::MAX_BASELINE + 1).unwrap(); // sparse
    std::fs::create_dir(at("a-directory.json")).unwrap();
    let fifo = at("fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let socket = std::os::unix::net::UnixListener::bind(at("socket.json")).unwrap();
    std::os::unix::fs::symlink(at("nowhere.json"), at("dangling.json")).unwrap();
    let case = |path: PathBuf, expect: &'static str| Case {
        what: path.to_str().unwrap().to_owned(),
        bytes: None,
        key: None,
        expect: Some(expect),
    };
    let cases = vec![
        case(huge, "is larger than 256 MiB, the most fdir reads or writes (268435457 bytes)"),
        case(at("a-directory.json"), "is a directory, not a baseline file"),
        case(fifo, "is a FIFO, not a baseline file"),
        case(at("socket.json"), "cannot be read"),
        case(PathBuf::from("/dev/null"), "is a device, not a baseline file"),
        case(PathBuf::from("/dev/zero"), "is a device, not a baseline file"),
        case(at("missing.json"), "does not exist"),
        case(at("dangling.json"), "is a symbolic link: fdir does not follow one to a baseline"),
    ];
    (cases, socket)
}

/// Key files that cannot be used: the message names the key file.
fn bad_keys(dir: &Path) -> Vec<(String, PathBuf, &'static str)> {
    let at = |name: &str| dir.join(name);
    std::fs::write(at("empty.key"), b"").unwrap();
    std::fs::write(at("short.key"), b"fifteen bytes..\n").unwrap();
    std::fs::write(at("huge.key"), vec![7u8; 64 * 1024 + 1]).unwrap();
    for name in ["empty.key", "short.key", "huge.key"] {
        // A key others may read is refused before it is read (a case of tests/it/trust.rs).
        std::fs::set_permissions(at(name), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    std::fs::create_dir(at("dir.key")).unwrap();
    vec![
        ("a missing key file".into(), at("missing.key"), "does not exist"),
        ("an empty key file".into(), at("empty.key"), "is empty"),
        ("a key of 15 bytes".into(), at("short.key"), "is too short: 15 bytes"),
        ("a key file of 64 KiB + 1".into(), at("huge.key"), "is larger than 64 KiB"),
        ("a directory as key".into(), at("dir.key"), "is a directory, not a key file"),
    ]
}

#[test]
fn every_corrupt_baseline_is_refused_with_exit_2_and_a_message() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    let (key, other_key) = (d.join("key"), d.join("other-key"));
    for k in [&key, &other_key] {
        assert_eq!(code(&run(&["keygen", k.to_str().unwrap()], d)), 0);
    }
    let snap = |file: &str, extra: &[&str]| {
        let mut args = vec!["snapshot", "--pid", &pid, "--subsystems", "cgroups", "--baseline", file];
        args.extend_from_slice(extra);
        let o = run(&args, d);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        std::fs::read(d.join(file)).unwrap()
    };
    let good = snap("good.json", &[]);
    let signed = snap("signed.json", &["--key", key.to_str().unwrap()]);
    // The originals are accepted: the catalogue refuses corruption, not baselines.
    for (file, k) in [("good.json", None), ("signed.json", Some(&key))] {
        let mut args = vec!["check", "--baseline", file];
        if let Some(k) = k {
            args.extend(["--key", k.to_str().unwrap()]);
        }
        let o = run(&args, d);
        assert_eq!(code(&o), 0, "{file}: {}{}", stdout(&o), stderr(&o));
    }
    println!("baseline of pid {pid}: {} bytes unsigned, {} bytes signed", good.len(), signed.len());

    let mut rng = Rng(SEED);
    let mut catalogue: Vec<(&str, Vec<Case>)> = vec![
        ("single-bit flips (unsigned)", every_bit_flip("unsigned", &good, None)),
        ("single-bit flips (signed)", every_bit_flip("signed", &signed, Some(&key))),
        ("truncations (unsigned)", every_truncation("unsigned", &good, None)),
        ("truncations (signed)", every_truncation("signed", &signed, Some(&key))),
        ("random byte runs (unsigned)", random_runs("unsigned", &good, None, 300, &mut rng)),
        ("random byte runs (signed)", random_runs("signed", &signed, Some(&key), 300, &mut rng)),
        ("edits with the SHA-256 recomputed, versions, keys", resealed_edits(&good, &signed, &key, &other_key)),
    ];
    let (odd, _socket) = odd_files(d);
    catalogue.push(("files that are not baselines", odd));

    let mut failures = Vec::new();
    let mut total = 0;
    for (label, cases) in &catalogue {
        let t0 = Instant::now();
        let f = run_cases(d, "check", cases);
        println!(
            "{label}: {} cases, {} refused as they should be, in {:.1?}",
            cases.len(),
            cases.len() - f.len(),
            t0.elapsed()
        );
        total += cases.len();
        failures.extend(f);
    }

    // `watch` refuses them the same way before it starts (a sample: the
    // whole-file and edit cases, and every 97th flip). A missing file is not
    // among them: `watch` then takes a new baseline, by design.
    let flips = &catalogue[0].1;
    let sample: Vec<Case> = catalogue[6]
        .1
        .iter()
        .chain(catalogue[7].1.iter())
        .chain(flips.iter().step_by(97))
        .filter(|c| c.expect != Some("does not exist"))
        .map(|c| Case { what: c.what.clone(), bytes: c.bytes.clone(), key: c.key.clone(), expect: c.expect })
        .collect();
    let t0 = Instant::now();
    let f = run_cases(d, "watch", &sample);
    println!("watch, a sample: {} cases, {} refused, in {:.1?}", sample.len(), sample.len() - f.len(), t0.elapsed());
    total += sample.len();
    failures.extend(f);

    // Key files that cannot be used: refused, naming the key file.
    for (what, k, expect) in bad_keys(d) {
        let o = run(&["check", "--baseline", "signed.json", "--key", k.to_str().unwrap()], d);
        if let Err(e) = verdict(&o, &k, Some(expect)) {
            failures.push(format!("check: {what}: {e}"));
        }
        total += 1;
    }

    println!(
        "{total} corrupt inputs, {} failures, in {:.1?} with {WORKERS} workers",
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed; the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    // The originals are untouched and still accepted.
    assert_eq!(code(&run(&["check", "--baseline", "good.json"], d)), 0);
    drop(t);
}

#[test]
fn a_forged_baseline_is_refused_only_when_signed() {
    // The limit of an unsigned file, stated in the docs: its SHA-256 catches
    // accidents, not an editor who also recomputes the record digests. Such a
    // forgery loads, and is then checked as drift against the live process;
    // signed, the same forgery is refused.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    let pid = t.pid.to_string();
    let key = d.join("key");
    assert_eq!(code(&run(&["keygen", key.to_str().unwrap()], d)), 0);
    let forge = |file: &str, k: Option<&Path>| {
        let mut args = vec!["snapshot", "--pid", &pid, "--subsystems", "cgroups", "--baseline", file];
        if let Some(k) = k {
            args.extend(["--key", k.to_str().unwrap()]);
        }
        assert_eq!(code(&run(&args, d)), 0);
        let path = d.join(file);
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        // Edit the one cgroups record set and store it under the digest fdir
        // computes for it, named by the target: what a forger without the
        // key can do to a version 2 file.
        let start = text.find(",\"payload\":").unwrap() + ",\"payload\":".len();
        let end = text.find(",\"hmac_sha256\":\"").or_else(|| text.rfind(",\"sha256\":\"")).unwrap();
        let mut payload: serde_json::Value = serde_json::from_str(&text[start..end]).unwrap();
        let sets = payload["records"]["cgroups"].as_object_mut().unwrap();
        let (old, set) = sets.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        let mut records: Vec<fdir::canon::Record> = serde_json::from_value(set).unwrap();
        records[0].value.push_str("; forged=yes");
        let digest = fdir::canon::digest_records(fdir::Subsystem::Cgroups, &records).unwrap().to_string();
        sets.remove(&old);
        sets.insert(digest.clone(), serde_json::to_value(&records).unwrap());
        payload["targets"][0]["subsystems"]["cgroups"] = digest.into();
        let edited = format!("{}{}{}", &text[..start], payload, &text[end..]);
        std::fs::write(&path, reseal(edited.into_bytes())).unwrap();
    };
    forge("unsigned.json", None);
    let o = run(&["check", "--baseline", "unsigned.json"], d);
    assert_eq!(code(&o), 1, "an unsigned forgery loads and is checked: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("forged"), "{}", stdout(&o));
    forge("signed.json", Some(&key));
    let o = run(&["check", "--baseline", "signed.json", "--key", key.to_str().unwrap()], d);
    assert!(verdict(&o, Path::new("signed.json"), Some("HMAC does not match")).is_ok(), "{}", stderr(&o));
    drop(t);
}

#[test]
fn a_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Testee::spawn();
    let key = d.join("key");
    assert_eq!(code(&run(&["keygen", key.to_str().unwrap()], d)), 0);
    let k = key.to_str().unwrap();
    let pid = t.pid.to_string();
    let o = run(&["snapshot", "--pid", &pid, "--subsystems", "cgroups", "--key", k], d);
    assert_eq!(code(&o), 0, "keygen writes 0600: {}", stderr(&o));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["check", "--key", k], d);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "key file {k} can be read by its group or by others (mode 0644): anyone who can read it can sign a forged baseline; `chmod go-rwx {k}`"
        )),
        "{}",
        stderr(&o)
    );
    drop(t);
}

/// The subsystems hint (what `fdir check` reads of a baseline file before
/// loading it, to decide whether to load the task table ahead) names the
/// subsystems of a file as `save` writes it, signed or not, however many
/// targets it holds; and it is only a hint: a file it cannot read gives
/// none, and a file whose hint lies is still refused by the load.
#[test]
fn the_subsystems_hint_names_a_saved_files_subsystems_and_nothing_else() {
    use fdir::baseline::{self, BaselineFile, Coverage, Key};
    use fdir::{Procfs, Subsystem, SystemClock, snapshot_with};
    let dir = tempfile::tempdir().unwrap();
    let kids: Vec<Testee> = (0..3).map(|_| Testee::spawn()).collect();
    let subs = [Subsystem::MemoryMaps, Subsystem::Limits, Subsystem::Lsm];
    let snaps: Vec<_> =
        kids.iter().map(|t| snapshot_with(&SystemClock, &Procfs::try_pid(t.pid).unwrap(), &subs).unwrap()).collect();
    // Many targets: the hint reads the first 4 KiB only.
    let many: Vec<_> = (0..40).flat_map(|_| snaps.iter().cloned()).collect();
    let pids = kids.iter().map(|t| t.pid).collect();
    let file = BaselineFile::new(std::time::SystemTime::now(), Coverage::Pids { pids }, &subs, many);
    let key_path = dir.path().join("key");
    std::fs::write(&key_path, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let key = Key::from_file(&key_path).unwrap();
    for (name, key) in [("plain.json", None), ("signed.json", Some(&key))] {
        let path = dir.path().join(name);
        baseline::save(&path, &file, key).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 4096, "{name}: more than the hint reads");
        assert_eq!(baseline::subsystems_hint(&path), Some(subs.to_vec()), "{name}");
    }
    let odd = dir.path().join("odd.json");
    for bytes in [&b""[..], b"not json", b"{\"subsystems\":[\"memory-maps\"", b"{\"subsystems\":[\"no-such\"]}"] {
        std::fs::write(&odd, bytes).unwrap();
        assert_eq!(baseline::subsystems_hint(&odd), None, "{:?}", String::from_utf8_lossy(bytes));
    }
    assert_eq!(baseline::subsystems_hint(&dir.path().join("absent.json")), None);
    // Opened as the load opens it: a FIFO gives no hint at once (an open of
    // it for reading would wait for a writer), nor does a link.
    let fifo = dir.path().join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) of a path in the test's own directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "{}", std::io::Error::last_os_error());
    assert_eq!(baseline::subsystems_hint(&fifo), None);
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(dir.path().join("plain.json"), &link).unwrap();
    assert_eq!(baseline::subsystems_hint(&link), None);
    // A file whose first bytes name other subsystems than its sealed
    // payload: the hint says what it reads, the load refuses the file.
    let path = dir.path().join("plain.json");
    let bytes = std::fs::read(&path).unwrap();
    let lied = replace_once(&bytes, "\"limits\",\"lsm\"", "\"limits\",\"kernel\"");
    std::fs::write(&odd, &lied).unwrap();
    assert_eq!(
        baseline::subsystems_hint(&odd),
        Some(vec![Subsystem::MemoryMaps, Subsystem::Limits, Subsystem::Kernel])
    );
    assert!(baseline::load(&odd, None).is_err(), "a changed byte is refused by the load");
}
