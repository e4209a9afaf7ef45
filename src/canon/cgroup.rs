//! `/proc/PID/task/TID/cgroup` → the per-thread membership tuples of the
//! `cgroups` subsystem.
//!
//! Each line is `hierarchy-ID:controller-list:cgroup-path` (cgroups(7)); v2 is
//! the line with ID 0 and an empty controller list, named `unified` here. A
//! thread's tuple is its cgroup in every hierarchy; the form is the set of
//! distinct tuples, so a new thread in the same cgroups changes nothing and a
//! thread moved elsewhere (v1 allows per-thread moves) shows. Limits live in
//! the `cgroup-limits` subsystem; counters are never read.

use super::Canon;
use super::status::SEPARATOR;

pub use super::ParseError;

/// The name of a hierarchy in records and messages: its controllers, or
/// `unified` for cgroup v2.
pub fn hierarchy_name(controllers: &[u8]) -> &[u8] {
    if controllers.is_empty() { b"unified" } else { controllers }
}

/// One membership: hierarchy name and cgroup path.
pub type Membership<'a> = (&'a [u8], &'a [u8]);

/// Parses a `cgroup` text into `(hierarchy name, path)` pairs, sorted by name.
pub fn parse(input: &[u8]) -> Result<Vec<Membership<'_>>, ParseError> {
    let mut out = Vec::with_capacity(12);
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = |message| ParseError { line: i + 1, message };
        let mut parts = line.splitn(3, |&b| b == b':');
        let id = parts.next().ok_or(err("missing hierarchy id"))?;
        let controllers = parts.next().ok_or(err("missing controller list"))?;
        let path = parts.next().ok_or(err("missing cgroup path"))?;
        if id.is_empty() || !id.iter().all(u8::is_ascii_digit) {
            return Err(err("hierarchy id is not a number"));
        }
        if !path.starts_with(b"/") {
            return Err(err("cgroup path does not start with '/'"));
        }
        out.push((hierarchy_name(controllers), path));
    }
    if out.is_empty() {
        return Err(ParseError { line: 0, message: "no cgroup membership lines" });
    }
    out.sort_unstable();
    Ok(out)
}

/// Adds the membership tuple of one thread's `cgroup` file to `out`:
/// `memory=/a; pids=/; unified=/` (a `;` inside a path is written `\x3b`).
pub fn canonicalize_thread(input: &[u8], out: &mut Canon) -> Result<(), ParseError> {
    let lines = parse(input)?;
    let mut w = out.record();
    w.str("thread").value();
    for (i, (name, path)) in lines.iter().enumerate() {
        if i > 0 {
            w.str(SEPARATOR);
        }
        w.bytes(name).str("=");
        for (j, part) in path.split(|&b| b == b';').enumerate() {
            if j > 0 {
                w.raw("\\x3b");
            }
            w.bytes(part);
        }
    }
    Ok(())
}

/// The (hierarchy, path) pairs of a membership tuple as
/// [`canonicalize_thread`] writes it (`memory=/a; name=systemd=/; unified=/`),
/// the path as the kernel gives it (`\x3b` a `;` again, `\\` a backslash).
pub fn members(tuple: &str) -> impl Iterator<Item = (&str, String)> + '_ {
    tuple.split(SEPARATOR).filter_map(|member| {
        // `name=systemd=/a`: the path is what follows the first `=/`.
        let (name, path) = member.split_once("=/")?;
        Some((name, format!("/{}", unescape(path))))
    })
}

/// A path as a tuple holds it: `\\` is a backslash, `\x3b` a `;`.
fn unescape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('\\') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let tail = rest.get(at..).unwrap_or_default();
        if let Some(after) = tail.strip_prefix("\\\\") {
            out.push('\\');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("\\x3b") {
            out.push(';');
            rest = after;
        } else {
            out.push('\\');
            rest = tail.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subsystem;

    const V1: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/process_api/fe77\n1:cpu:/\n0::/\n";

    fn digest(threads: &[&str]) -> crate::Digest {
        let mut c = Canon::new();
        for t in threads {
            canonicalize_thread(t.as_bytes(), &mut c).unwrap();
        }
        c.digest(Subsystem::Cgroups)
    }

    #[test]
    fn membership_changes_and_non_changes() {
        let base = digest(&[V1]);
        assert_eq!(digest(&[V1, V1]), base, "a second thread in the same cgroups");
        let reordered: String = V1.lines().rev().map(|l| format!("{l}\n")).collect();
        assert_eq!(digest(&[&reordered]), base);
        for (name, text) in [
            ("v1 move", V1.replace("4:memory:/process_api/fe77", "4:memory:/b")),
            ("v2 move", V1.replace("0::/", "0::/jail")),
            ("pids move", V1.replace("8:pids:/", "8:pids:/x")),
            ("hierarchy gone", V1.replace("6:freezer:/\n", "")),
        ] {
            assert_ne!(digest(&[&text]), base, "{name}");
            assert_ne!(digest(&[V1, &text]), base, "{name} in one thread of two");
        }
        // Two threads swap cgroups: the same lines overall, other tuples.
        let a = "1:cpu:/a\n2:pids:/x\n";
        let b = "1:cpu:/b\n2:pids:/y\n";
        let swapped_a = "1:cpu:/a\n2:pids:/y\n";
        let swapped_b = "1:cpu:/b\n2:pids:/x\n";
        assert_ne!(digest(&[a, b]), digest(&[swapped_a, swapped_b]));
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in ["", "\n", "x:y", "a:cpu:/", "1:cpu:relative", "1:cpu"] {
            let mut c = Canon::new();
            assert!(canonicalize_thread(bad.as_bytes(), &mut c).is_err(), "{bad:?}");
        }
        let mut c = Canon::new();
        canonicalize_thread(b"0::/a:b;c\n", &mut c).unwrap();
        assert_eq!(c.lines().next(), Some("thread\tunified=/a:b\\x3bc"));
    }
}
