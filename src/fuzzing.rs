//! The fuzz harnesses: one function per parser, run by the fuzz targets in
//! `fuzz/` (cargo-fuzz) and, on every saved finding and seed, by
//! `tests/it/fuzz_regressions.rs` in the normal test suite.
//!
//! Each takes arbitrary bytes and returns `Err` only when a property is
//! violated (a rejected input is fine: that is the parser doing its job).
//! The properties, beyond "never panics, never hangs":
//!
//! - a canonical form digests the same as its records
//!   ([`digest_records`]): records are sorted, unique, and escaped so that
//!   no control character reaches them;
//! - explaining a form against itself finds no change, and against nothing
//!   never fails;
//! - a cgroup path with a `..` component never resolves to a directory;
//! - a baseline that decodes encodes and decodes to the same value.
//!
//! Not a stable API.

use std::path::Path;

use crate::baseline::{self, Key};
use crate::canon::filters::{self, Program};
use crate::canon::namespaces::NsState;
use crate::canon::{
    Canon, cgroup, cgroup_limits, code, digest_records, kernel, limits, lsm, maps, mounts, namespaces, status,
};
use crate::explain::explain;
use crate::policy::Policy;
use crate::source::{parse_stat, parse_stat_flags};
use crate::{CgroupMounts, Subsystem};

/// The names of the harnesses, as the fuzz targets and `tests/data/fuzz/`
/// name them.
pub const TARGETS: &[&str] = &[
    "maps",
    "status",
    "cgroup",
    "limits",
    "mountinfo",
    "cgroup_limits",
    "kernel",
    "lsm_namespaces",
    "stat",
    "policy",
    "baseline",
    "seccomp_filters",
    "code",
];

/// Runs the harness named `target` on `data`.
pub fn run(target: &str, data: &[u8]) -> Result<(), String> {
    match target {
        "maps" => maps(data),
        "status" => status(data),
        "cgroup" => cgroup(data),
        "limits" => limits(data),
        "mountinfo" => mountinfo(data),
        "cgroup_limits" => cgroup_limits(data),
        "kernel" => kernel(data),
        "lsm_namespaces" => lsm_namespaces(data),
        "stat" => stat(data),
        "policy" => policy(data),
        "baseline" => baseline(data),
        "seccomp_filters" => seccomp_filters(data),
        "code" => code(data),
        other => Err(format!("no fuzz harness named {other:?}")),
    }
}

/// The properties every finished canonical form keeps.
fn check_form(sub: Subsystem, canon: &mut Canon) -> Result<(), String> {
    let digest = canon.digest(sub);
    let records = canon.records();
    match digest_records(sub, &records) {
        Some(d) if d == digest => {}
        Some(_) => return Err(format!("{sub}: the records do not digest to the form's digest")),
        None => return Err(format!("{sub}: the records are not in canonical form: {records:?}")),
    }
    let changes = explain(sub, &records, &records);
    if !changes.is_empty() {
        return Err(format!("{sub}: a form explained against itself changed: {changes:?}"));
    }
    let _ = explain(sub, &records, &[]);
    let _ = explain(sub, &[], &records);
    Ok(())
}

/// `/proc/PID/maps` → `memory-maps`.
pub fn maps(data: &[u8]) -> Result<(), String> {
    for line in data.split(|&b| b == b'\n') {
        let _ = maps::parse_line(line);
    }
    let mut c = Canon::new();
    if maps::canonicalize(data, &mut c).is_ok() {
        check_form(Subsystem::MemoryMaps, &mut c)?;
    }
    Ok(())
}

/// `/proc/PID/task/TID/status` → the `seccomp` and `credentials` tuples.
pub fn status(data: &[u8]) -> Result<(), String> {
    for (sub, fields) in
        [(Subsystem::Seccomp, status::SECCOMP_FIELDS), (Subsystem::Credentials, status::CREDENTIAL_FIELDS)]
    {
        let mut c = Canon::new();
        if status::canonicalize_thread(data, fields, &mut c).is_ok() {
            // A second thread with the same status adds nothing.
            let _ = status::canonicalize_thread(data, fields, &mut c);
            c.finish();
            if c.len() != 1 {
                return Err(format!("{sub}: two identical threads made {} tuples", c.len()));
            }
            check_form(sub, &mut c)?;
        }
    }
    Ok(())
}

/// `/proc/PID/task/TID/cgroup` → `cgroups`.
pub fn cgroup(data: &[u8]) -> Result<(), String> {
    let _ = cgroup::parse(data);
    let mut c = Canon::new();
    if cgroup::canonicalize_thread(data, &mut c).is_ok() {
        check_form(Subsystem::Cgroups, &mut c)?;
    }
    Ok(())
}

/// `/proc/PID/limits` → `limits`.
pub fn limits(data: &[u8]) -> Result<(), String> {
    for line in data.split(|&b| b == b'\n') {
        let _ = limits::parse_line(line);
    }
    let mut c = Canon::new();
    if limits::canonicalize(data, &mut c).is_ok() {
        check_form(Subsystem::Limits, &mut c)?;
    }
    Ok(())
}

/// `/proc/PID/mountinfo` → `mounts`, and the cgroup mounts fdir finds in it.
pub fn mountinfo(data: &[u8]) -> Result<(), String> {
    let _ = mounts::parse(data);
    for line in data.split(|&b| b == b'\n') {
        let _ = mounts::unescape(line);
    }
    let mut c = Canon::new();
    if mounts::canonicalize(data, &mut c).is_ok() {
        check_form(Subsystem::Mounts, &mut c)?;
    }
    // The cgroup mounts: a path that climbs out of a hierarchy never resolves.
    let found = CgroupMounts::from_mountinfo(data);
    let last = data.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    let asked = String::from_utf8_lossy(last);
    let names: Vec<String> = found.hierarchies().map(str::to_owned).collect();
    for h in &names {
        for cg in [asked.as_ref(), "/", "/..", "/a/../..", "/a//b", "/./a"] {
            let dir = found.dir(h, cg);
            if dir.is_ok() && cg.split('/').any(|part| part == ".." || part == ".") {
                return Err(format!("cgroup {h}:{cg:?} resolved to {dir:?}"));
            }
        }
    }
    Ok(())
}

/// Splits `data` into `n` newline-separated parts and the rest.
fn parts(data: &[u8], n: usize) -> (Vec<String>, &[u8]) {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 0..n {
        let (part, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..).unwrap_or_default()),
            None => (rest, &b""[..]),
        };
        out.push(String::from_utf8_lossy(part).into_owned());
        rest = tail;
    }
    (out, rest)
}

/// A cgroup control file → `cgroup-limits` (hierarchy, cgroup and file name
/// on the first three lines, the content after).
pub fn cgroup_limits(data: &[u8]) -> Result<(), String> {
    let (p, content) = parts(data, 3);
    let (h, cg, file) = (
        p.first().map_or("", String::as_str),
        p.get(1).map_or("", String::as_str),
        p.get(2).map_or("", String::as_str),
    );
    let _ = cgroup_limits::is_limit_file(file);
    let mut steps = 0usize;
    for a in cgroup_limits::ancestors(cg) {
        steps += 1;
        if steps > cg.len() + 2 {
            return Err(format!("ancestors of {cg:?} do not end"));
        }
        if !cg.starts_with(a) {
            return Err(format!("{a:?} is not an ancestor of {cg:?}"));
        }
    }
    let mut c = Canon::new();
    cgroup_limits::add_file(&mut c, h, cg, file, content);
    cgroup_limits::add_unreadable(&mut c, h, cg, cgroup_limits::DIRECTORY, &String::from_utf8_lossy(content));
    c.finish();
    for r in c.records() {
        let _ = cgroup_limits::split_key(&r.key);
        let _ = cgroup_limits::is_unlimited(&r.value);
    }
    check_form(Subsystem::CgroupLimits, &mut c)
}

/// Node files → `kernel` and `kernel-taint`: every sysctl, `lockdown`, the
/// LSM list, the command line, `/proc/modules`, the taint mask.
pub fn kernel(data: &[u8]) -> Result<(), String> {
    let mut c = Canon::new();
    for s in kernel::SYSCTLS {
        kernel::add_sysctl(&mut c, s.name, Some(data));
    }
    kernel::add_lockdown(&mut c, Some(data));
    kernel::add_lsm_list(&mut c, Some(data));
    kernel::add_cmdline(&mut c, Some(data));
    let _ = kernel::parameters(&String::from_utf8_lossy(data));
    if kernel::add_modules(&mut c, Some(data)).is_ok() {
        check_form(Subsystem::Kernel, &mut c)?;
    }
    let mut t = Canon::new();
    kernel::add_taint(&mut t, Some(data));
    check_form(Subsystem::KernelTaint, &mut t)?;
    let mut mask = [0u8; 8];
    for (m, b) in mask.iter_mut().zip(data) {
        *m = *b;
    }
    let _ = kernel::taint_names(u64::from_le_bytes(mask));
    Ok(())
}

/// `/proc/PID/attr/*` → `lsm`, and `/proc/PID/ns` entry names → `namespaces`.
pub fn lsm_namespaces(data: &[u8]) -> Result<(), String> {
    let mut c = Canon::new();
    for attr in lsm::ATTRS {
        lsm::add(&mut c, attr, data);
    }
    let _ = lsm::meaning(&String::from_utf8_lossy(data));
    check_form(Subsystem::Lsm, &mut c)?;
    let mut n = Canon::new();
    for (i, name) in data.split(|&b| b == b'\n').enumerate() {
        let state = if i % 2 == 0 {
            NsState::Identity { dev: u64::try_from(i).unwrap_or(0), ino: u64::try_from(name.len()).unwrap_or(0) }
        } else {
            NsState::Pending
        };
        namespaces::add(&mut n, name, state);
        let text = String::from_utf8_lossy(name);
        let _ = (namespaces::kind(&text), namespaces::is_for_children(&text));
    }
    n.finish();
    // Records may repeat (the same name twice): only unique ones are kept.
    check_form(Subsystem::Namespaces, &mut n)
}

/// `/proc/PID/stat`: the command name, state, start time and flags.
pub fn stat(data: &[u8]) -> Result<(), String> {
    if let Some((name, _, _)) = parse_stat(data)
        && name.len() > data.len() * 3
    {
        return Err("a command name longer than its line".into());
    }
    let _ = parse_stat_flags(data);
    Ok(())
}

/// The response policy (TOML).
pub fn policy(data: &[u8]) -> Result<(), String> {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = Policy::parse(text)
        && p.actions.timeout.is_zero()
    {
        return Err("a policy with a zero timeout was accepted".into());
    }
    Ok(())
}

/// Seccomp programs → `seccomp-filters`. The input is read as chains of
/// programs: a byte `0xff` starts a new chain, any other byte N is followed
/// by a program of N instructions (8 bytes each, fewer at the end).
pub fn seccomp_filters(data: &[u8]) -> Result<(), String> {
    let mut chains: Vec<Vec<Program>> = vec![Vec::new()];
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        if n == 0xff {
            chains.push(Vec::new());
            rest = tail;
            continue;
        }
        let len = (usize::from(n) * filters::INSN_BYTES).min(tail.len());
        let (program, after) = tail.split_at(len);
        let p = Program::of(program);
        if p.instructions != program.len() / filters::INSN_BYTES {
            return Err(format!("{} bytes read as {} instructions", program.len(), p.instructions));
        }
        let _ = filters::short(&p.describe());
        if let Some(chain) = chains.last_mut() {
            chain.push(p);
        }
        rest = after;
    }
    let mut full = Canon::new();
    filters::canonicalize_programs(&chains, &mut full);
    check_form(Subsystem::SeccompFilters, &mut full)?;
    let counts: Vec<usize> = chains.iter().map(Vec::len).collect();
    let mut degraded = Canon::new();
    filters::canonicalize_counts(&counts, &String::from_utf8_lossy(data), &mut degraded);
    check_form(Subsystem::SeccompFilters, &mut degraded)?;
    let (full, degraded) = (full.records(), degraded.records());
    if filters::is_degraded(&full) || !filters::is_degraded(&degraded) || filters::degraded_reason(&degraded).is_none()
    {
        return Err("a full form reads as degraded, or a degraded one as full".into());
    }
    if filters::project(&full) != filters::project(&degraded) {
        return Err(format!(
            "the projections differ: {:?} / {:?}",
            filters::project(&full),
            filters::project(&degraded)
        ));
    }
    for r in full.iter().filter(|r| r.key.starts_with(filters::FILTER)) {
        if filters::filter_index(&r.key).is_none() {
            return Err(format!("a filter record's index does not parse: {}", r.key));
        }
    }
    Ok(())
}

/// `/proc/PID/maps` → the code mappings of `code`, and the keys and values
/// of their records, which must parse back to what made them.
pub fn code(data: &[u8]) -> Result<(), String> {
    let mut found = Vec::new();
    if code::code_mappings(data, &mut found).is_err() {
        return Ok(());
    }
    for m in &found {
        let (key, value) = (m.map_key(), m.map_value());
        if code::parse_map_key(&key) != Some((m.path.as_str(), m.offset)) {
            return Err(format!("{key:?} does not parse back"));
        }
        if code::map_identity(&value) != Some((m.dev.as_str(), m.inode)) || code::map_size(&value) != Some(m.size()) {
            return Err(format!("{value:?} does not parse back"));
        }
        let last = m.size().saturating_sub(1) / code::CHUNK * code::CHUNK;
        for chunk in [0, last] {
            let id = code::parse_chunk_key(&code::chunk_key(&m.path, m.offset, chunk));
            let expected = code::ChunkId { path: m.path.clone(), offset: m.offset, chunk };
            if id.as_ref() != Some(&expected) {
                return Err(format!("the key of {expected:?} parses as {id:?}"));
            }
        }
        if m.size() <= 1 << 24 {
            let total: u64 = code::chunks(m.size()).map(|(_, len)| len).sum();
            if total != m.size() {
                return Err(format!("chunks of {} bytes add up to {total}", m.size()));
            }
        }
    }
    let mut value = String::new();
    code::chunk_value(&mut value, data.len(), &[0; 32]);
    let _ = code::short(&value);
    Ok(())
}

/// The key of the signed modes of [`baseline`].
const FUZZ_KEY: &[u8] = b"fdir fuzzing key, 32 bytes long!";

/// The baseline loader. The first byte picks how the rest is used: as the
/// whole file; as a whole file whose SHA-256 is recomputed (so that edits
/// reach the parser behind the digest); as the payload of a file sealed
/// around it, unsigned or signed.
pub fn baseline(data: &[u8]) -> Result<(), String> {
    let Some((&mode, rest)) = data.split_first() else { return Ok(()) };
    let path = Path::new("fuzz.json");
    let key = Key::from_bytes(FUZZ_KEY).map_err(|n| format!("the fuzzing key is {n} bytes"))?;
    let (bytes, key) = match mode % 4 {
        0 => (rest.to_vec(), None),
        1 => (reseal(rest), None),
        2 => (baseline::seal(baseline::VERSION, rest, None).map_err(|e| e.to_string())?, None),
        _ => (baseline::seal(baseline::VERSION, rest, Some(&key)).map_err(|e| e.to_string())?, Some(&key)),
    };
    let Ok(file) = baseline::decode(path, &bytes, key) else { return Ok(()) };
    let again = baseline::encode(path, &file, key).map_err(|e| format!("a decoded baseline does not encode: {e}"))?;
    match baseline::decode(path, &again, key) {
        Ok(back) if back == file => Ok(()),
        Ok(_) => Err("a decoded baseline encodes to another baseline".into()),
        Err(e) => Err(format!("a decoded baseline, encoded again, does not decode: {e}")),
    }
}

/// `bytes` with the SHA-256 after its last `"sha256":"` recomputed.
fn reseal(bytes: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"\"sha256\":\"";
    let mut out = bytes.to_vec();
    let Some(at) = bytes.windows(MARK.len()).rposition(|w| w == MARK).map(|i| i + MARK.len()) else {
        return out;
    };
    let hex = crate::Digest::of(bytes.get(..at).unwrap_or_default()).to_string();
    let end = (at + hex.len()).min(out.len());
    out.splice(at..end, hex.into_bytes());
    out
}
