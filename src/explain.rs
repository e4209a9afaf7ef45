//! What exactly differs between two canonical forms, in words a person can act
//! on: "mapping /usr/lib/libc.so.6 @0x28000 r-xp -> rwxp", "Seccomp 0 -> 2",
//! "cgroup memory:/a -> memory:/b". Pure functions of records.

mod code;
mod filters;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Subsystem;
use crate::canon::{Record, status};

/// Whether something appeared, disappeared or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Present now, absent at baseline.
    Added,
    /// Present at baseline, absent now.
    Removed,
    /// Present in both, with another state.
    Changed,
}

/// One difference between the baseline and now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// What it is about: "mapping /usr/lib/libc.so.6 @0x28000", "Seccomp", "cgroup".
    pub item: String,
    /// The baseline state, if it existed then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The state now, if it exists now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Why it matters, where that is not obvious: "writable and executable",
    /// "lost cap_sys_admin".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = "";
        match self.kind {
            ChangeKind::Changed => write!(
                f,
                "{} {} -> {}",
                self.item,
                self.before.as_deref().unwrap_or(none),
                self.after.as_deref().unwrap_or(none)
            )?,
            ChangeKind::Added => {
                write!(f, "new {}", self.item)?;
                if let Some(a) = &self.after {
                    write!(f, " {a}")?;
                }
            }
            ChangeKind::Removed => {
                write!(f, "{}", self.item)?;
                if let Some(b) = &self.before {
                    write!(f, " {b}")?;
                }
                f.write_str(" is gone")?;
            }
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

impl Change {
    fn new(kind: ChangeKind, item: impl Into<String>, before: Option<String>, after: Option<String>) -> Change {
        Change { kind, item: item.into(), before, after, note: None }
    }
    fn note(mut self, note: Option<String>) -> Change {
        self.note = note;
        self
    }
}

/// The values of each key, old and new, for the keys whose values differ.
fn diff_by_key<'a>(old: &'a [Record], new: &'a [Record]) -> BTreeMap<&'a str, (Vec<&'a str>, Vec<&'a str>)> {
    let mut by_key: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for r in old {
        by_key.entry(&r.key).or_default().0.push(&r.value);
    }
    for r in new {
        by_key.entry(&r.key).or_default().1.push(&r.value);
    }
    by_key.retain(|_, (o, n)| {
        o.sort_unstable();
        n.sort_unstable();
        o != n
    });
    by_key
}

/// Key-wise explanation: one value each side is a change, otherwise
/// the values added and removed.
fn keyed(
    old: &[Record],
    new: &[Record],
    changed: impl Fn(&str, &str, &str) -> Change,
    added: impl Fn(&str, &str) -> Change,
    removed: impl Fn(&str, &str) -> Change,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, (o, n)) in diff_by_key(old, new) {
        if let ([before], [after]) = (o.as_slice(), n.as_slice()) {
            out.push(changed(key, before, after));
            continue;
        }
        for v in o.iter().filter(|v| !n.contains(v)) {
            out.push(removed(key, v));
        }
        for v in n.iter().filter(|v| !o.contains(v)) {
            out.push(added(key, v));
        }
    }
    out
}

/// Explains the difference between the baseline records and the current ones
/// of `subsystem`. Empty if they are the same.
pub fn explain(subsystem: Subsystem, old: &[Record], new: &[Record]) -> Vec<Change> {
    match subsystem {
        Subsystem::MemoryMaps => maps(old, new),
        Subsystem::Seccomp | Subsystem::Credentials => tuples(old, new),
        Subsystem::Cgroups => cgroups(old, new),
        Subsystem::SeccompFilters => filters::explain(old, new),
        Subsystem::Code => code::explain(old, new),
    }
}

fn perms_note(perms: &str) -> Option<String> {
    let b = perms.as_bytes();
    let (w, x) = (b.get(1) == Some(&b'w'), b.get(2) == Some(&b'x'));
    match (w, x) {
        (true, true) => Some("writable and executable".into()),
        (false, true) => Some("executable".into()),
        (true, false) => Some("writable".into()),
        _ => None,
    }
}

fn join_notes(notes: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let v: Vec<String> = notes.into_iter().flatten().collect();
    (!v.is_empty()).then(|| v.join(", "))
}

/// A file mapping record split back into its parts: key `file PATH @OFFSET`,
/// value `PERMS dev DEV inode INODE[ deleted]`.
struct FileMapping<'a> {
    path: &'a str,
    offset: &'a str,
    perms: &'a str,
    identity: &'a str,
    deleted: bool,
}

fn file_mapping<'a>(key: &'a str, value: &'a str) -> Option<FileMapping<'a>> {
    let (path, offset) = key.strip_prefix("file ")?.rsplit_once(" @")?;
    let (perms, rest) = value.split_once(' ')?;
    let (identity, deleted) = match rest.strip_suffix(" deleted") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    Some(FileMapping { path, offset, perms, identity, deleted })
}

fn file_notes(m: &FileMapping<'_>, perms_seen: &[&str]) -> Option<String> {
    let memfd = m.path.starts_with("/memfd:");
    let strongest = if perms_seen.iter().any(|p| p.get(1..3) == Some("wx")) {
        perms_note("-wx")
    } else if perms_seen.iter().any(|p| p.get(2..3) == Some("x")) {
        perms_note("--x")
    } else {
        perms_seen.iter().find_map(|p| perms_note(p))
    };
    join_notes([
        strongest,
        memfd.then(|| "memfd: code with no file on disk".to_owned()),
        (m.deleted && !memfd).then(|| "file deleted on disk".to_owned()),
    ])
}

fn anon_item(key: &str) -> String {
    let rest = key.strip_prefix("anon ").unwrap_or(key);
    match rest.strip_prefix("anonymous ") {
        Some(perms) => format!("anonymous memory {perms}"),
        None => rest.to_owned(),
    }
}

fn regions(count: &str) -> String {
    format!("{count} region{}", if count == "1" { "" } else { "s" })
}

/// Code files that appear or disappear whole: one change per file, listing its
/// mappings ("new code file /usr/lib/libfoo.so dev fe:01 inode 42: r--p@0x0
/// r-xp@0x1000 (executable)").
fn whole_files(kind: ChangeKind, records: &[Record], other: &[Record], out: &mut Vec<Change>) -> Vec<String> {
    let paths_in = |rs: &[Record]| -> Vec<String> {
        rs.iter().filter_map(|r| file_mapping(&r.key, &r.value)).map(|m| m.path.to_owned()).collect()
    };
    let present_elsewhere = paths_in(other);
    let mut grouped: BTreeMap<String, Vec<FileMapping<'_>>> = BTreeMap::new();
    for r in records {
        if let Some(m) = file_mapping(&r.key, &r.value)
            && !present_elsewhere.iter().any(|p| p == m.path)
        {
            grouped.entry(m.path.to_owned()).or_default().push(m);
        }
    }
    for (path, maps) in &grouped {
        let Some(first) = maps.first() else { continue };
        let layout: Vec<String> = maps.iter().map(|m| format!("{}@{}", m.perms, m.offset)).collect();
        let perms: Vec<&str> = maps.iter().map(|m| m.perms).collect();
        let deleted = if first.deleted { " (deleted)" } else { "" };
        let desc = format!("{}: {}", first.identity, layout.join(" "));
        let item = format!("code file {path}{deleted}");
        let change = match kind {
            ChangeKind::Added => Change::new(kind, item, None, Some(desc)).note(file_notes(first, &perms)),
            _ => Change::new(kind, item, Some(desc), None),
        };
        out.push(change);
    }
    grouped.into_keys().collect()
}

fn maps(old: &[Record], new: &[Record]) -> Vec<Change> {
    // Keys: "file PATH @OFF", "pseudo NAME", "anon CLASS PERMS".
    let mut out = Vec::new();
    let added_files = whole_files(ChangeKind::Added, new, old, &mut out);
    let removed_files = whole_files(ChangeKind::Removed, old, new, &mut out);
    let grouped = |key: &str, files: &[String]| {
        key.strip_prefix("file ").and_then(|k| k.rsplit_once(" @")).is_some_and(|(p, _)| files.iter().any(|f| f == p))
    };
    let item = |key: &str| -> String {
        if let Some(rest) = key.strip_prefix("file ").or_else(|| key.strip_prefix("pseudo ")) {
            format!("mapping {rest}")
        } else if key.starts_with("anon ") {
            anon_item(key)
        } else {
            format!("mapping {key}")
        }
    };
    let anon_note = |key: &str| key.rsplit(' ').next().and_then(perms_note);
    let rest = keyed(
        old,
        new,
        |key, before, after| {
            if key.starts_with("anon ") {
                return Change::new(ChangeKind::Changed, item(key), Some(regions(before)), Some(regions(after)))
                    .note(anon_note(key));
            }
            // Same mapping, other permissions or file: show only what changed.
            let (bp, brest) = before.split_once(' ').unwrap_or((before, ""));
            let (ap, arest) = after.split_once(' ').unwrap_or((after, ""));
            let (b, a) = if brest == arest { (bp, ap) } else { (before, after) };
            let deleted_now = after.ends_with(" deleted") && !before.ends_with(" deleted");
            Change::new(ChangeKind::Changed, item(key), Some(b.to_owned()), Some(a.to_owned())).note(join_notes([
                (bp != ap).then(|| perms_note(ap)).flatten(),
                deleted_now.then(|| "file deleted or replaced on disk".to_owned()),
            ]))
        },
        |key, v| {
            if key.starts_with("anon ") {
                Change::new(ChangeKind::Added, item(key), None, Some(regions(v))).note(anon_note(key))
            } else {
                let note = file_mapping(key, v).and_then(|m| file_notes(&m, &[m.perms]));
                Change::new(ChangeKind::Added, item(key), None, Some(v.to_owned())).note(note)
            }
        },
        |key, v| Change::new(ChangeKind::Removed, item(key), Some(v.to_owned()), None),
    );
    out.extend(rest.into_iter().filter(|c| {
        let key_of = |item: &str| item.strip_prefix("mapping ").map(|k| format!("file {k}"));
        !key_of(&c.item).is_some_and(|k| grouped(&k, &added_files) || grouped(&k, &removed_files))
    }));
    out
}

/// Cgroup tuples read as moves: "cgroup memory:/a -> memory:/b".
fn cgroups(old: &[Record], new: &[Record]) -> Vec<Change> {
    let prefix = |h: &str, v: &str| v.split(", ").map(|p| format!("{h}:{p}")).collect::<Vec<_>>().join(", ");
    tuples(old, new)
        .into_iter()
        .map(|c| Change {
            before: c.before.as_deref().map(|b| prefix(&c.item, b)),
            after: c.after.as_deref().map(|a| prefix(&c.item, a)),
            item: match c.kind {
                ChangeKind::Changed if c.item != "thread states" => "cgroup".to_owned(),
                ChangeKind::Changed => "cgroup thread states".to_owned(),
                _ => "cgroup hierarchy".to_owned(),
            },
            ..c
        })
        .collect()
}

fn field_note(field: &str, before: &str, after: &str) -> Option<String> {
    if field.starts_with("Cap") {
        return status::capability_delta(before, after);
    }
    status::meaning(field, after).map(str::to_owned)
}

/// Per-thread tuples: field by field when every thread agrees (the usual case),
/// otherwise the set of values each field takes across threads.
fn tuples(old: &[Record], new: &[Record]) -> Vec<Change> {
    let parse = |rs: &[Record]| -> Vec<Vec<(String, String)>> {
        rs.iter().map(|r| status::split_tuple(&r.value).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()).collect()
    };
    let (o, n) = (parse(old), parse(new));
    // field -> (values at baseline, values now), in first-seen field order.
    let mut fields: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut add = |tuples: &[Vec<(String, String)>], side: usize| {
        for t in tuples {
            for (k, v) in t {
                let idx = match fields.iter().position(|(f, _, _)| f == k) {
                    Some(i) => i,
                    None => {
                        fields.push((k.clone(), Vec::new(), Vec::new()));
                        fields.len() - 1
                    }
                };
                if let Some(entry) = fields.get_mut(idx) {
                    let vals = if side == 0 { &mut entry.1 } else { &mut entry.2 };
                    if !vals.contains(v) {
                        vals.push(v.clone());
                    }
                }
            }
        }
    };
    add(&o, 0);
    add(&n, 1);
    let threads_differ = o.len() > 1 || n.len() > 1;
    let mut out = Vec::new();
    for (field, mut before, mut after) in fields {
        before.sort();
        after.sort();
        if before == after {
            continue;
        }
        let change = match (before.as_slice(), after.as_slice()) {
            ([], _) => Change::new(ChangeKind::Added, field.clone(), None, Some(after.join(", "))),
            (_, []) => Change::new(ChangeKind::Removed, field.clone(), Some(before.join(", ")), None),
            ([b], [a]) => Change::new(ChangeKind::Changed, field.clone(), Some(b.clone()), Some(a.clone()))
                .note(field_note(&field, b, a)),
            _ => Change::new(ChangeKind::Changed, field.clone(), Some(before.join(", ")), Some(after.join(", "))),
        };
        let change =
            if threads_differ && change.note.is_none() { change.note(Some("threads differ".into())) } else { change };
        out.push(change);
    }
    if out.is_empty() && old != new {
        // Every field takes the same values, but in other combinations.
        out.push(
            Change::new(
                ChangeKind::Changed,
                "thread states",
                Some(format!("{} distinct", old.len())),
                Some(format!("{} distinct", new.len())),
            )
            .note(Some("the same values in other combinations across threads".into())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::{Canon, cgroup, maps};

    fn recs(f: impl FnOnce(&mut Canon)) -> Vec<Record> {
        let mut c = Canon::new();
        f(&mut c);
        c.records()
    }

    fn status_recs(fields: &[&str], threads: &[String]) -> Vec<Record> {
        recs(|c| {
            for t in threads {
                status::canonicalize_thread(t.as_bytes(), fields, c).unwrap();
            }
        })
    }

    fn texts(changes: &[Change]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    const MAPS: &str = "1000-2000 r--p 00000000 fe:01 7 /usr/lib/libc.so.6\n2000-3000 r-xp 00028000 fe:01 7 /usr/lib/libc.so.6\n4000-5000 rw-p 00000000 00:00 0 [heap]\n";

    fn maps_recs(text: &str) -> Vec<Record> {
        recs(|c| maps::canonicalize(text.as_bytes(), c).unwrap())
    }

    #[test]
    fn maps_changes_read_like_a_person_wrote_them() {
        let base = maps_recs(MAPS);
        let cases: &[(&str, String, &str)] = &[
            (
                "permission change",
                MAPS.replace("r-xp 00028000", "rwxp 00028000"),
                "mapping /usr/lib/libc.so.6 @0x28000 r-xp -> rwxp (writable and executable)",
            ),
            (
                "new W+X anonymous",
                format!("{MAPS}6000-7000 rwxp 00000000 00:00 0 \n"),
                "new anonymous memory rwxp 1 region (writable and executable)",
            ),
            (
                "memfd",
                format!("{MAPS}6000-7000 r-xp 00000000 00:01 9 /memfd:x (deleted)\n"),
                "new code file /memfd:x (deleted) dev 00:01 inode 9: r-xp@0x0 (executable, memfd: code with no file on disk)",
            ),
            (
                "deleted on disk",
                MAPS.replace("libc.so.6\n", "libc.so.6 (deleted)\n"),
                "mapping /usr/lib/libc.so.6 @0x0 r--p dev fe:01 inode 7 -> r--p dev fe:01 inode 7 deleted (file deleted or replaced on disk)",
            ),
            (
                "heap made executable",
                MAPS.replace("rw-p 00000000 00:00 0 [heap]", "rwxp 00000000 00:00 0 [heap]"),
                "new [heap] rwxp 1 region (writable and executable)",
            ),
        ];
        for (name, text, want) in cases {
            let got = texts(&explain(Subsystem::MemoryMaps, &base, &maps_recs(text)));
            assert!(got.iter().any(|g| g == want), "{name}: {got:#?}");
        }
        let gone: String = MAPS.lines().skip(1).map(|l| format!("{l}\n")).collect();
        let got = texts(&explain(Subsystem::MemoryMaps, &base, &maps_recs(&gone)));
        assert_eq!(got, ["mapping /usr/lib/libc.so.6 @0x0 r--p dev fe:01 inode 7 is gone"]);
        let unloaded = "4000-5000 rw-p 00000000 00:00 0 [heap]\n";
        let got = texts(&explain(Subsystem::MemoryMaps, &base, &maps_recs(unloaded)));
        assert_eq!(got, ["code file /usr/lib/libc.so.6 dev fe:01 inode 7: r--p@0x0 r-xp@0x28000 is gone"]);
        let loaded = format!(
            "{MAPS}8000-9000 r--p 00000000 fe:01 8 /usr/lib/libnew.so\n9000-a000 r-xp 00001000 fe:01 8 /usr/lib/libnew.so\n"
        );
        let got = texts(&explain(Subsystem::MemoryMaps, &base, &maps_recs(&loaded)));
        assert_eq!(got, ["new code file /usr/lib/libnew.so dev fe:01 inode 8: r--p@0x0 r-xp@0x1000 (executable)"]);
        assert!(explain(Subsystem::MemoryMaps, &base, &base).is_empty());
    }

    #[test]
    fn status_changes_name_the_field() {
        let t = |seccomp: &str, caps: &str| format!("Name:\tx\nSeccomp:\t{seccomp}\nNoNewPrivs:\t0\nCapEff:\t{caps}\n");
        let base = status_recs(status::SECCOMP_FIELDS, &[t("0", "1")]);
        let now = status_recs(status::SECCOMP_FIELDS, &[t("2", "1")]);
        assert_eq!(texts(&explain(Subsystem::Seccomp, &base, &now)), ["Seccomp 0 -> 2 (filter mode)"]);

        let base = status_recs(status::CREDENTIAL_FIELDS, &[t("0", "000001ffffffffff")]);
        let now = status_recs(status::CREDENTIAL_FIELDS, &[t("0", "000001ffffffdfff")]);
        assert_eq!(
            texts(&explain(Subsystem::Credentials, &base, &now)),
            ["CapEff 000001ffffffffff -> 000001ffffffdfff (lost cap_net_raw)"]
        );

        // One thread of two changes.
        let now = status_recs(status::SECCOMP_FIELDS, &[t("0", "1"), t("2", "1")]);
        let base = status_recs(status::SECCOMP_FIELDS, &[t("0", "1")]);
        assert_eq!(texts(&explain(Subsystem::Seccomp, &base, &now)), ["Seccomp 0 -> 0, 2 (threads differ)"]);
    }

    #[test]
    fn cgroup_move_reads_as_a_move() {
        let r = |t: &str| recs(|c| cgroup::canonicalize_thread(t.as_bytes(), c).unwrap());
        let got = explain(Subsystem::Cgroups, &r("4:memory:/a\n0::/\n"), &r("4:memory:/b\n0::/\n"));
        assert_eq!(texts(&got), ["cgroup memory:/a -> memory:/b"]);
    }

    #[test]
    fn change_json_shape() {
        let c = Change::new(ChangeKind::Changed, "Seccomp", Some("0".into()), Some("2".into()));
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"kind":"changed","item":"Seccomp","before":"0","after":"2"}"#
        );
    }
}
