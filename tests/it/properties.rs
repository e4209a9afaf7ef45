//! Properties of the canonicalizers: they never panic on any input, and a
//! single-bit change in any security-relevant field changes the digest (or
//! makes the input unparseable, which is an error — never a silent pass).

use fdir::canon::namespaces::NsState;
use fdir::canon::{Canon, Record, cgroup, cgroup_limits, kernel, limits, lsm, maps, mounts, namespaces, status};
use fdir::{Digest, Subsystem, explain::explain};
use proptest::prelude::*;

const MAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1311 /usr/bin/sleep
55d0c0a02000-55d0c0a06000 r-xp 00002000 fe:01 1311 /usr/bin/sleep
55d0c1b4e000-55d0c1b6f000 rw-p 00000000 00:00 0 [heap]
7f6f0d428000-7f6f0d5bd000 r-xp 00028000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0d619000-7f6f0d61b000 rw-p 00218000 fe:01 1717 /usr/lib/x86_64-linux-gnu/libc.so.6
7f6f0a000000-7f6f0a001000 rwxp 00000000 00:00 0 
7f6f0b000000-7f6f0b001000 r-xp 00000000 00:01 4242 /memfd:jit (deleted)
7ffc9e9fa000-7ffc9e9fc000 r-xp 00000000 00:00 0 [vdso]
";

const STATUS: &str = "Name:\tapp\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t42\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27\nNStgid:\t42\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\nSpeculation_Store_Bypass:\tthread force mitigated\nSpeculationIndirectBranch:\tconditional enabled\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\n";

const CGROUP: &str = "9:name=systemd:/app\n8:pids:/app\n4:memory:/app/worker\n0::/app.slice/app.service\n";

const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax stack size            8388608              unlimited            bytes     \nMax core file size        0                    unlimited            bytes     \nMax processes             96364                96364                processes \nMax open files            20000                20000                files     \nMax nice priority         0                    0                    \n";

const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime master:2 - tmpfs tmpfs rw,size=24683656k
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
80 27 254:0 /srv/data /data\\040dir ro,relatime shared:1 - ext4 /dev/vda rw
";

const MODULES: &str =
    "nf_tables 364544 0 - Live 0xffffffffc0a00000\nfdir_test 16384 1 nf_tables, Live 0x0000000000000000 (OE)\n";

fn limits_digest(b: &[u8]) -> Result<Digest, ()> {
    let mut c = Canon::new();
    limits::canonicalize(b, &mut c).map_err(drop)?;
    Ok(c.digest(Subsystem::Limits))
}

fn mounts_digest(b: &[u8]) -> Result<Digest, ()> {
    let mut c = Canon::new();
    mounts::canonicalize(b, &mut c).map_err(drop)?;
    Ok(c.digest(Subsystem::Mounts))
}

/// Every other canonicalizer, fed the same bytes: none may panic.
fn the_rest(b: &[u8]) {
    let mut c = Canon::new();
    let text = String::from_utf8_lossy(b);
    let _ = kernel::add_modules(&mut c, Some(b));
    kernel::add_sysctl(&mut c, &text, Some(b));
    kernel::add_lockdown(&mut c, Some(b));
    kernel::add_lsm_list(&mut c, Some(b));
    kernel::add_cmdline(&mut c, Some(b));
    kernel::add_taint(&mut c, Some(b));
    let _ = kernel::parameters(&text);
    cgroup_limits::add_file(&mut c, "memory", &text, "memory.oom_control", b);
    cgroup_limits::add_file(&mut c, &text, "/", &text, b);
    let _ = cgroup_limits::ancestors(&text).count();
    let _ = cgroup_limits::is_limit_file(&text);
    lsm::add(&mut c, &text, b);
    namespaces::add(&mut c, b, NsState::Pending);
    namespaces::add(&mut c, b, NsState::Identity { dev: b.len() as u64, ino: u64::MAX });
    let _ = fdir::CgroupMounts::from_mountinfo(b);
    let _ = mounts::unescape(b);
    let records = c.records();
    let _ = fdir::canon::digest_records(Subsystem::Kernel, &records);
    for &sub in Subsystem::ALL {
        let _ = explain(sub, &records, &[]);
    }
}

fn maps_digest(b: &[u8]) -> Result<Digest, ()> {
    let mut c = Canon::new();
    maps::canonicalize(b, &mut c).map_err(drop)?;
    Ok(c.digest(Subsystem::MemoryMaps))
}

fn status_digest(b: &[u8], fields: &[&str], sub: Subsystem) -> Result<Digest, ()> {
    let mut c = Canon::new();
    status::canonicalize_thread(b, fields, &mut c).map_err(drop)?;
    Ok(c.digest(sub))
}

fn cgroup_digest(b: &[u8]) -> Result<Digest, ()> {
    let mut c = Canon::new();
    cgroup::canonicalize_thread(b, &mut c).map_err(drop)?;
    Ok(c.digest(Subsystem::Cgroups))
}

/// Byte ranges of the security-relevant parts of each maps line: everything
/// after the address range.
fn maps_security_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let start = pos + body.find(' ').unwrap() + 1;
        // Anonymous non-executable lines are excluded by design; everything else counts.
        let anon_data = body.ends_with(" 0 ") && !body.contains("x");
        let heap = body.ends_with("[heap]");
        if !anon_data && !heap {
            spans.push((start, pos + body.trim_end().len()));
        }
        pos += line.len();
    }
    spans
}

/// Byte ranges of the values of `fields` in a status text.
fn status_value_spans(text: &str, fields: &[&str]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if let Some((name, _)) = line.split_once(":\t")
            && fields.contains(&name)
        {
            spans.push((pos + name.len() + 2, pos + line.trim_end_matches('\n').len()));
        }
        pos += line.len();
    }
    spans
}

fn flip(text: &str, at: usize, bit: u8) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    b[at] ^= 1 << bit;
    b
}

fn pick(spans: &[(usize, usize)], index: usize) -> usize {
    let total: usize = spans.iter().map(|(a, b)| b - a).sum();
    let mut i = index % total;
    for (a, b) in spans {
        if i < b - a {
            return a + i;
        }
        i -= b - a;
    }
    unreachable!()
}

proptest! {
    // 2000 cases by default; PROPTEST_CASES raises it for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn canonicalizers_never_panic_on_bytes(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = maps_digest(&input);
        let _ = status_digest(&input, status::SECCOMP_FIELDS, Subsystem::Seccomp);
        let _ = cgroup_digest(&input);
        let _ = limits_digest(&input);
        let _ = mounts_digest(&input);
        the_rest(&input);
    }

    #[test]
    fn canonicalizers_never_panic_on_mangled_proc_text(
        which in 0usize..6,
        cuts in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        truncate in any::<usize>(),
    ) {
        let mut b = [MAPS, STATUS, CGROUP, LIMITS, MOUNTINFO, MODULES][which].as_bytes().to_vec();
        for (at, byte) in cuts {
            let i = at % b.len();
            b[i] = byte;
        }
        b.truncate(truncate % (b.len() + 1));
        let _ = maps_digest(&b);
        let _ = status_digest(&b, status::CREDENTIAL_FIELDS, Subsystem::Credentials);
        let _ = cgroup_digest(&b);
        let _ = limits_digest(&b);
        let _ = mounts_digest(&b);
        the_rest(&b);
    }

    #[test]
    fn one_bit_in_a_mount_changes_the_digest(index in any::<usize>(), bit in 0u8..8) {
        // Everything after MAJOR:MINOR: the ids and the device are not state.
        let mut spans = Vec::new();
        let mut pos = 0;
        for line in MOUNTINFO.split_inclusive('\n') {
            let after_dev = line.match_indices(' ').nth(2).unwrap().0 + 1;
            spans.push((pos + after_dev, pos + line.trim_end().len()));
            pos += line.len();
        }
        let at = pick(&spans, index);
        let base = mounts_digest(MOUNTINFO.as_bytes()).unwrap();
        let flipped = flip(MOUNTINFO, at, bit);
        prop_assert_ne!(mounts_digest(&flipped), Ok(base), "byte {} bit {}: {:?}", at, bit, String::from_utf8_lossy(&flipped));
    }

    #[test]
    fn one_bit_in_a_limit_changes_the_digest(index in any::<usize>(), bit in 0u8..8) {
        // The soft and hard values of every line but the header (the units
        // column is fixed per limit and not recorded).
        let mut spans = Vec::new();
        let mut pos = 0;
        for (i, line) in LIMITS.split_inclusive('\n').enumerate() {
            if i > 0 {
                for col in [26, 47] {
                    let len = line[col..].find(' ').unwrap();
                    spans.push((pos + col, pos + col + len));
                }
            }
            pos += line.len();
        }
        let at = pick(&spans, index);
        let base = limits_digest(LIMITS.as_bytes()).unwrap();
        let flipped = flip(LIMITS, at, bit);
        prop_assert_ne!(limits_digest(&flipped), Ok(base), "byte {} bit {}: {:?}", at, bit, String::from_utf8_lossy(&flipped));
    }

    #[test]
    fn one_bit_in_a_mapping_changes_the_digest(index in any::<usize>(), bit in 0u8..8) {
        let spans = maps_security_spans(MAPS);
        let at = pick(&spans, index);
        let base = maps_digest(MAPS.as_bytes()).unwrap();
        let flipped = flip(MAPS, at, bit);
        prop_assert_ne!(maps_digest(&flipped), Ok(base), "byte {} bit {}: {:?}", at, bit, String::from_utf8_lossy(&flipped));
    }

    #[test]
    fn one_bit_in_a_sandbox_or_credential_field_changes_the_digest(index in any::<usize>(), bit in 0u8..8, creds in any::<bool>()) {
        let (fields, sub) = if creds {
            (status::CREDENTIAL_FIELDS, Subsystem::Credentials)
        } else {
            (status::SECCOMP_FIELDS, Subsystem::Seccomp)
        };
        let spans = status_value_spans(STATUS, fields);
        let at = pick(&spans, index);
        let base = status_digest(STATUS.as_bytes(), fields, sub).unwrap();
        let flipped = flip(STATUS, at, bit);
        prop_assert_ne!(status_digest(&flipped, fields, sub), Ok(base), "byte {} bit {}", at, bit);
    }

    #[test]
    fn one_bit_in_a_cgroup_membership_changes_the_digest(index in any::<usize>(), bit in 0u8..8) {
        // Everything after the hierarchy id (the kernel's numbering is not state).
        let mut spans = Vec::new();
        let mut pos = 0;
        for line in CGROUP.split_inclusive('\n') {
            let colon = line.find(':').unwrap();
            spans.push((pos + colon, pos + line.trim_end().len()));
            pos += line.len();
        }
        let at = pick(&spans, index);
        let base = cgroup_digest(CGROUP.as_bytes()).unwrap();
        prop_assert_ne!(cgroup_digest(&flip(CGROUP, at, bit)), Ok(base));
    }

    #[test]
    fn explain_never_panics_and_is_empty_only_for_equal_records(
        old in proptest::collection::vec(("[ -~]{0,12}", "[ -~;=]{0,16}"), 0..6),
        new in proptest::collection::vec(("[ -~]{0,12}", "[ -~;=]{0,16}"), 0..6),
    ) {
        let recs = |v: Vec<(String, String)>| {
            let mut r: Vec<Record> = v.into_iter().map(|(key, value)| Record { key, value }).collect();
            r.sort();
            r.dedup();
            r
        };
        let (old, new) = (recs(old), recs(new));
        for &sub in Subsystem::ALL {
            let changes = explain(sub, &old, &new);
            if old == new {
                prop_assert!(changes.is_empty());
            }
        }
    }
}

/// A process's canned files, one of a few variants of each chosen by `pick`.
fn variant(pick: &[u8; 3]) -> fdir::Procfs {
    let maps = [
        MAPS.to_owned(),
        MAPS.replace("r-xp 00028000", "rwxp 00028000"),
        format!("{MAPS}7f0000000000-7f0000001000 r-xp 00000000 fe:01 99 /usr/lib/libnew.so\n"),
    ];
    let status = [
        STATUS.to_owned(),
        STATUS.replace("Seccomp:\t2", "Seccomp:\t0"),
        STATUS.replace("CapEff:\t0000000000003000", "CapEff:\t0000000000001000"),
    ];
    let cgroups = [CGROUP.to_owned(), CGROUP.replace("/app/worker", "/elsewhere"), CGROUP.to_owned()];
    let m = &maps[usize::from(pick[0] % 3)];
    let s = &status[usize::from(pick[1] % 3)];
    let c = &cgroups[usize::from(pick[2] % 3)];
    fdir::Procfs::mock_files([
        ("maps", m.as_str()),
        ("status", s.as_str()),
        ("cgroup", c.as_str()),
        ("task/1/status", s.as_str()),
        ("task/1/cgroup", c.as_str()),
        ("task/2/status", STATUS),
        ("task/2/cgroup", c.as_str()),
        ("limits", "Limit Soft Limit Hard Limit Units\nMax open files 1024 4096 files\n"),
        ("mountinfo", "22 27 0:21 / /proc rw,relatime - proc proc rw\n"),
        ("cgroupfs/pids/pids.max", "max\n"),
        ("cgroupfs/pids/app/pids.max", "10\n"),
        ("cgroupfs/memory/memory.limit_in_bytes", "9223372036854771712\n"),
        ("cgroupfs/memory/app/memory.limit_in_bytes", "104857600\n"),
        ("cgroupfs/memory/app/worker/memory.limit_in_bytes", "52428800\n"),
        ("cgroupfs/memory/elsewhere/memory.limit_in_bytes", "1048576\n"),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The observer remembers the last texts and the forms they gave; a check
    /// by a long-lived checker (memos in use) must say exactly what a fresh
    /// checker says, check after check, whatever the sequence of contents.
    #[test]
    fn a_long_lived_checker_reports_what_a_fresh_one_does(
        steps in proptest::collection::vec(any::<[u8; 3]>(), 1..12),
    ) {
        use fdir::{Checker, ManualClock, snapshot_with};
        let subs = [
            Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Credentials, Subsystem::Cgroups,
            Subsystem::CgroupLimits, Subsystem::Limits, Subsystem::Mounts,
        ];
        let clock = ManualClock::new();
        let baseline = snapshot_with(&clock, &variant(&[0, 0, 0]), &subs).unwrap();
        let mut long_lived = Checker::new();
        for step in &steps {
            let fs = variant(step);
            let memo = long_lived.check(&baseline, &clock, &fs, &subs).unwrap();
            let fresh = Checker::new().check(&baseline, &clock, &fs, &subs).unwrap();
            let digests = |v: &fdir::Verdict| v.anomalies().iter().map(|a| (a.subsystem, a.actual)).collect::<Vec<_>>();
            prop_assert_eq!(digests(&memo), digests(&fresh), "step {:?}", step);
        }
    }
}

/// The memos keep the SHA-256 of the texts they were made from, not the
/// texts: a text changed in one byte, its length the same, is another text
/// to them. Checked with the memos in place (unchanged checks first), for
/// each file a memo covers, back to the baseline, and changed again once
/// the memos were stored anew from the unchanged text.
#[test]
fn a_change_of_the_same_length_is_seen_through_the_memos() {
    use fdir::{Checker, ManualClock, Procfs, snapshot_with};
    let subs =
        [Subsystem::MemoryMaps, Subsystem::Seccomp, Subsystem::Credentials, Subsystem::Cgroups, Subsystem::Limits];
    let files = |maps: &str, status: &str, cgroup: &str, limits: &str| {
        Procfs::mock_files([
            ("maps", maps.to_owned()),
            ("status", status.to_owned()),
            ("cgroup", cgroup.to_owned()),
            ("task/1/status", status.to_owned()),
            ("task/1/cgroup", cgroup.to_owned()),
            ("limits", limits.to_owned()),
        ])
    };
    let same_length = |text: &str, from: &str, to: &str| {
        assert_eq!(from.len(), to.len());
        assert_eq!(text.matches(from).count(), 1, "{from}");
        text.replace(from, to)
    };
    let clock = ManualClock::new();
    let unchanged = files(MAPS, STATUS, CGROUP, LIMITS);
    let baseline = snapshot_with(&clock, &unchanged, &subs).unwrap();
    let changes = [
        (Subsystem::MemoryMaps, files(&same_length(MAPS, "r-xp 00002000", "rwxp 00002000"), STATUS, CGROUP, LIMITS)),
        (Subsystem::Seccomp, files(MAPS, &same_length(STATUS, "Seccomp:\t2", "Seccomp:\t0"), CGROUP, LIMITS)),
        (
            Subsystem::Credentials,
            files(MAPS, &same_length(STATUS, "CapEff:\t0000000000003000", "CapEff:\t0000000000001000"), CGROUP, LIMITS),
        ),
        (Subsystem::Cgroups, files(MAPS, STATUS, &same_length(CGROUP, "/app/worker", "/app/wurker"), LIMITS)),
        (
            Subsystem::Limits,
            files(
                MAPS,
                STATUS,
                CGROUP,
                &same_length(LIMITS, "20000                20000", "20001                20000"),
            ),
        ),
    ];
    for (sub, changed) in &changes {
        let mut checker = Checker::new();
        let mut reads = |fs: &Procfs, times: usize, want: &[Subsystem], what: &str| {
            expect_reads(&mut checker, &baseline, &clock, fs, &subs, times, want, &format!("{sub}: {what}"));
        };
        reads(&unchanged, 3, &[], "unchanged");
        reads(changed, 1, &[*sub], "changed, memos in place");
        reads(changed, 1, &[*sub], "still changed");
        reads(&unchanged, 3, &[], "back");
        reads(changed, 1, &[*sub], "changed again");
        // A memo of a form equal to its baseline keeps the digest alone:
        // against another baseline (re-taken from the changed text), the
        // unchanged text drifts, explained from records as a fresh checker
        // explains it.
        reads(&unchanged, 3, &[], "back again");
        let drifted = |v: &fdir::Verdict| v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>();
        let other = snapshot_with(&clock, changed, &subs).unwrap();
        let v = checker.check(&other, &clock, &unchanged, &subs).unwrap();
        let fresh = Checker::new().check(&other, &clock, &unchanged, &subs).unwrap();
        assert_eq!(drifted(&v), [*sub], "{sub}: against another baseline");
        assert!(v.anomalies().iter().all(|a| !a.changes.is_empty()), "{sub}: {:?}", v.anomalies());
        assert_eq!(format!("{:?}", v.anomalies()), format!("{:?}", fresh.anomalies()), "{sub}");
    }
}

/// Checks `fs` `times` times with `checker` against `baseline`: each read
/// must find exactly the subsystems `want` drifted.
#[allow(clippy::too_many_arguments)]
fn expect_reads(
    checker: &mut fdir::Checker,
    baseline: &fdir::Snapshot,
    clock: &fdir::ManualClock,
    fs: &fdir::Procfs,
    subs: &[Subsystem],
    times: usize,
    want: &[Subsystem],
    what: &str,
) {
    for _ in 0..times {
        let v = checker.check(baseline, clock, fs, subs).unwrap();
        let drifted: Vec<Subsystem> = v.anomalies().iter().map(|a| a.subsystem).collect();
        assert_eq!(drifted, want, "{what}");
    }
}

/// The `cgroup-limits` memo keeps the SHA-256 of what a read found (every
/// control file's bytes, every failure), `mounts` the SHA-256 of
/// `mountinfo`, and `namespaces` that of the identities its links resolved
/// to: a limit or a mount option changed in one byte, its length the same,
/// a namespace's inode one up, or a link that no longer resolves, drifts
/// with the memos in place, and again after the memos were stored anew
/// from the unchanged files.
#[test]
fn a_one_byte_change_of_a_limit_file_or_mountinfo_is_seen_through_the_memos() {
    use fdir::{Checker, ManualClock, Procfs, snapshot_with};
    const MOUNTINFO: &str =
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw\n";
    let subs = [Subsystem::CgroupLimits, Subsystem::Mounts, Subsystem::Namespaces];
    let with_ns = |pids_max: &str, memory: &str, mountinfo: &str, net: &str| {
        Procfs::mock_files([
            ("ns/mnt", "4:4026531832"),
            ("ns/net", net),
            ("ns/pid_for_children", "4:4026531836"),
            ("maps", MAPS),
            ("status", STATUS),
            ("cgroup", CGROUP),
            ("task/1/status", STATUS),
            ("task/1/cgroup", CGROUP),
            ("mountinfo", mountinfo),
            ("cgroupfs/pids/pids.max", "max\n"),
            ("cgroupfs/pids/app/pids.max", pids_max),
            ("cgroupfs/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("cgroupfs/memory/app/memory.limit_in_bytes", "104857600\n"),
            ("cgroupfs/memory/app/worker/memory.limit_in_bytes", memory),
        ])
    };
    let files = |pids_max: &str, memory: &str, mountinfo: &str| with_ns(pids_max, memory, mountinfo, "4:4026531833");
    let clock = ManualClock::new();
    let unchanged = files("10\n", "52428800\n", MOUNTINFO);
    let baseline = snapshot_with(&clock, &unchanged, &subs).unwrap();
    let changes = [
        (Subsystem::CgroupLimits, files("11\n", "52428800\n", MOUNTINFO)),
        (Subsystem::CgroupLimits, files("10\n", "52428801\n", MOUNTINFO)),
        (Subsystem::Mounts, files("10\n", "52428800\n", &MOUNTINFO.replace("/ / rw,", "/ / ro,"))),
        (Subsystem::Namespaces, with_ns("10\n", "52428800\n", MOUNTINFO, "4:4026531834")),
        (Subsystem::Namespaces, with_ns("10\n", "52428800\n", MOUNTINFO, "-")),
    ];
    for (sub, changed) in &changes {
        let mut checker = Checker::new();
        let mut reads = |fs: &Procfs, times: usize, want: &[Subsystem], what: &str| {
            expect_reads(&mut checker, &baseline, &clock, fs, &subs, times, want, &format!("{sub}: {what}"));
        };
        reads(&unchanged, 3, &[], "unchanged");
        reads(changed, 1, &[*sub], "changed, memos in place");
        reads(&unchanged, 3, &[], "back");
        let v = checker.check(&baseline, &clock, changed, &subs).unwrap();
        let drifted = |v: &fdir::Verdict| v.anomalies().iter().map(|a| a.subsystem).collect::<Vec<_>>();
        assert_eq!(drifted(&v), [*sub], "{sub}: changed again");
        let fresh = Checker::new().check(&baseline, &clock, changed, &subs).unwrap();
        assert_eq!(format!("{:?}", v.anomalies()), format!("{:?}", fresh.anomalies()), "{sub}");
    }
}
