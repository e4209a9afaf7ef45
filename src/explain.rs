//! What exactly differs between two canonical forms, in words a person can act
//! on: "mapping /usr/lib/libc.so.6 @0x28000 r-xp -> rwxp", "Seccomp 0 -> 2",
//! "cgroup memory:/a -> memory:/b", "namespace net 4:4026531833 -> 4:4026532290",
//! "cgroup pids:/app pids.max 10 -> max (limit removed)", "new mount /tmp tmpfs
//! tmpfs rw,relatime", "Max open files soft 1024 -> 4096 (raised)",
//! "sysctl kernel.kptr_restrict 1 -> 0 (weaker)", "tainted 0 -> 4096 (O:
//! out-of-tree module loaded)". Pure functions of records.

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
        Subsystem::Namespaces => namespaces(old, new),
        Subsystem::CgroupLimits => cgroup_limits(old, new),
        Subsystem::Mounts => mounts(old, new),
        Subsystem::Limits => limits(old, new),
        Subsystem::Lsm => lsm(old, new),
        Subsystem::SeccompFilters => filters::explain(old, new),
        Subsystem::Code => code::explain(old, new),
        Subsystem::Kernel => kernel(old, new),
        Subsystem::KernelTaint => taint(old, new),
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

/// The value of an anonymous-memory record: a kind ([`crate::canon::maps::PRESENT`])
/// says nothing more than its key; a count (a baseline file written before
/// kinds replaced counts) is said as regions.
fn regions(value: &str) -> Option<String> {
    (value != crate::canon::maps::PRESENT).then(|| format!("{value} region{}", if value == "1" { "" } else { "s" }))
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
                let said = |v: &str| regions(v).unwrap_or_else(|| v.to_owned());
                return Change::new(ChangeKind::Changed, item(key), Some(said(before)), Some(said(after)))
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
                Change::new(ChangeKind::Added, item(key), None, regions(v)).note(anon_note(key))
            } else {
                let note = file_mapping(key, v).and_then(|m| file_notes(&m, &[m.perms]));
                Change::new(ChangeKind::Added, item(key), None, Some(v.to_owned())).note(note)
            }
        },
        |key, v| {
            let before = if key.starts_with("anon ") { regions(v) } else { Some(v.to_owned()) };
            Change::new(ChangeKind::Removed, item(key), before, None)
        },
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

/// The changes when a subsystem observed at baseline is now not applicable:
/// the structure is gone (an LSM no longer labels the process).
#[inline(never)]
pub fn no_longer_applicable(subsystem: Subsystem, old: &[Record], reason: &str) -> Vec<Change> {
    let mut out = vec![
        Change::new(ChangeKind::Changed, subsystem.name(), Some("observed".into()), Some("not applicable".into()))
            .note(Some(reason.to_owned())),
    ];
    out.extend(explain(subsystem, old, &[]));
    out
}

/// The changes when a subsystem not applicable at baseline is now observed:
/// the structure appeared (an LSM label where there was none).
#[inline(never)]
pub fn now_applicable(subsystem: Subsystem, was: &str, new: &[Record]) -> Vec<Change> {
    let mut out = vec![
        Change::new(ChangeKind::Changed, subsystem.name(), Some("not applicable".into()), Some("observed".into()))
            .note(Some(format!("at baseline: {was}"))),
    ];
    out.extend(explain(subsystem, &[], new));
    out
}

/// An empty value, for people.
fn shown(value: &str, empty: &str) -> String {
    if value.is_empty() { empty.to_owned() } else { value.to_owned() }
}

/// Namespace moves: "namespace net 4:4026531833 -> 4:4026532290".
fn namespaces(old: &[Record], new: &[Record]) -> Vec<Change> {
    use crate::canon::namespaces::{PENDING, is_for_children, kind};
    let note = |key: &str, after: &str| {
        if after == PENDING {
            Some(format!("unshared: children will be created in a new {} namespace, none yet", kind(key)))
        } else if is_for_children(key) {
            Some(format!("the {} namespace of new children", kind(key)))
        } else {
            None
        }
    };
    keyed(
        old,
        new,
        |key, before, after| {
            Change::new(ChangeKind::Changed, format!("namespace {key}"), Some(before.into()), Some(after.into()))
                .note(note(key, after))
        },
        |key, v| Change::new(ChangeKind::Added, format!("namespace {key}"), None, Some(v.into())).note(note(key, v)),
        |key, v| Change::new(ChangeKind::Removed, format!("namespace {key}"), Some(v.into()), None),
    )
}

/// Field-by-field changes of a record whose value is a `field=value; ...`
/// tuple: `item_of(key, field)` names each, `note_of(field, before, after)`
/// says why it matters.
fn tuple_fields(
    key: &str,
    before: &str,
    after: &str,
    item_of: impl Fn(&str, &str) -> String,
    note_of: impl Fn(&str, &str, &str) -> Option<String>,
) -> Vec<Change> {
    let b: Vec<(&str, &str)> = status::split_tuple(before).collect();
    let a: Vec<(&str, &str)> = status::split_tuple(after).collect();
    let mut out = Vec::new();
    let mut fields: Vec<&str> = b.iter().chain(a.iter()).map(|(f, _)| *f).collect();
    fields.dedup();
    let mut seen: Vec<&str> = Vec::new();
    for f in fields {
        if seen.contains(&f) {
            continue;
        }
        seen.push(f);
        let bv = b.iter().find(|(x, _)| *x == f).map(|(_, v)| *v);
        let av = a.iter().find(|(x, _)| *x == f).map(|(_, v)| *v);
        if bv == av {
            continue;
        }
        let c = match (bv, av) {
            (Some(bv), Some(av)) => {
                Change::new(ChangeKind::Changed, item_of(key, f), Some(shown(bv, "(none)")), Some(shown(av, "(none)")))
                    .note(note_of(f, bv, av))
            }
            (None, Some(av)) => Change::new(ChangeKind::Added, item_of(key, f), None, Some(shown(av, "(none)"))),
            (Some(bv), None) => Change::new(ChangeKind::Removed, item_of(key, f), Some(shown(bv, "(none)")), None),
            (None, None) => continue,
        };
        out.push(c);
    }
    if out.is_empty() {
        // The same fields, written otherwise: show the whole values.
        out.push(Change::new(ChangeKind::Changed, item_of(key, ""), Some(before.into()), Some(after.into())));
    }
    out
}

/// Resource limits: "Max open files soft 1024 -> 4096 (raised)".
fn limits(old: &[Record], new: &[Record]) -> Vec<Change> {
    let item = |key: &str, field: &str| if field.is_empty() { key.to_owned() } else { format!("{key} {field}") };
    let note = |_: &str, b: &str, a: &str| {
        crate::canon::limits::raised(b, a).map(|up| if up { "raised".to_owned() } else { "lowered".to_owned() })
    };
    let mut out = Vec::new();
    for (key, (o, n)) in diff_by_key(old, new) {
        match (o.as_slice(), n.as_slice()) {
            ([b], [a]) => out.extend(tuple_fields(key, b, a, item, note)),
            _ => {
                for v in o.iter().filter(|v| !n.contains(v)) {
                    out.push(Change::new(ChangeKind::Removed, key, Some(v.replace("; ", " ").replace('=', " ")), None));
                }
                for v in n.iter().filter(|v| !o.contains(v)) {
                    out.push(Change::new(ChangeKind::Added, key, None, Some(v.replace("; ", " ").replace('=', " "))));
                }
            }
        }
    }
    out
}

/// A mount record's value for people: "tmpfs fdir-test rw,relatime".
fn mount_summary(value: &str) -> String {
    let get = |f: &str| status::split_tuple(value).find(|(k, _)| *k == f).map(|(_, v)| v);
    let mut s =
        format!("{} {} {}", get("type").unwrap_or("?"), get("source").unwrap_or("?"), get("options").unwrap_or("?"));
    if let Some(root) = get("root").filter(|r| *r != "/") {
        s.push_str(&format!(" root {root}"));
    }
    if let Some(p) = get("propagation").filter(|p| *p != "private") {
        s.push_str(&format!(" {p}"));
    }
    s
}

/// What a change of mount options gives up: "lost nosuid: set-user-ID programs now honoured".
fn mount_options_note(field: &str, before: &str, after: &str) -> Option<String> {
    if field != "options" && field != "super" {
        return None;
    }
    let has = |opts: &str, o: &str| opts.split(',').any(|x| x == o);
    let lost: Vec<String> = crate::canon::mounts::RESTRICTIONS
        .iter()
        .filter(|(o, _)| has(before, o) && !has(after, o))
        .map(|(o, what)| format!("lost {o}: {what}"))
        .collect();
    (!lost.is_empty()).then(|| lost.join(", "))
}

/// Mounts: "new mount /tmp tmpfs fdir-test rw,relatime", "mount /proc options rw,nosuid -> rw".
fn mounts(old: &[Record], new: &[Record]) -> Vec<Change> {
    let item =
        |key: &str, field: &str| if field.is_empty() { format!("mount {key}") } else { format!("mount {key} {field}") };
    let mut out = Vec::new();
    for (key, (o, n)) in diff_by_key(old, new) {
        if let ([b], [a]) = (o.as_slice(), n.as_slice()) {
            out.extend(tuple_fields(key, b, a, item, mount_options_note));
            continue;
        }
        for v in o.iter().filter(|v| !n.contains(v)) {
            out.push(Change::new(ChangeKind::Removed, format!("mount {key}"), Some(mount_summary(v)), None));
        }
        for v in n.iter().filter(|v| !o.contains(v)) {
            out.push(Change::new(ChangeKind::Added, format!("mount {key}"), None, Some(mount_summary(v))));
        }
    }
    out
}

/// The note on a changed cgroup limit: "limit removed", "raised", "lowered".
fn limit_note(before: &str, after: &str) -> Option<String> {
    use crate::canon::cgroup_limits::is_unlimited;
    if is_unlimited(after) && !is_unlimited(before) {
        return Some("limit removed".into());
    }
    if is_unlimited(before) && !is_unlimited(after) {
        return Some("limit set".into());
    }
    match (before.parse::<i128>(), after.parse::<i128>()) {
        (Ok(b), Ok(a)) if a > b => Some("raised".into()),
        (Ok(b), Ok(a)) if a < b => Some("lowered".into()),
        _ => None,
    }
}

/// Cgroup limits: "cgroup pids:/app pids.max 10 -> max (limit removed)"; a
/// cgroup that appears or goes whole is one change listing its files.
fn cgroup_limits(old: &[Record], new: &[Record]) -> Vec<Change> {
    use crate::canon::cgroup_limits::split_key;
    let dir_of = |r: &Record| split_key(&r.key).map(|(d, _)| d.to_owned()).unwrap_or_else(|| r.key.clone());
    let dirs = |rs: &[Record]| rs.iter().map(dir_of).collect::<std::collections::BTreeSet<_>>();
    let (old_dirs, new_dirs) = (dirs(old), dirs(new));
    let summary = |rs: &[Record], dir: &str| {
        rs.iter()
            .filter(|r| dir_of(r) == dir)
            .map(|r| {
                let file = split_key(&r.key).map_or(r.key.as_str(), |(_, f)| f);
                format!("{file} {}", shown(&r.value, "(empty)"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let added: Vec<&String> = new_dirs.difference(&old_dirs).collect();
    let removed: Vec<&String> = old_dirs.difference(&new_dirs).collect();
    let moves = moved_cgroups(&removed, &added);
    let paired = |d: &String| moves.iter().any(|(o, n)| *o == d || *n == d);
    for (o, n) in &moves {
        out.extend(compare_cgroups(old, o, new, n, &dir_of));
    }
    for d in added.iter().filter(|d| !paired(d)) {
        out.push(Change::new(ChangeKind::Added, format!("cgroup {d}"), None, Some(summary(new, d))));
    }
    for d in removed.iter().filter(|d| !paired(d)) {
        out.push(Change::new(ChangeKind::Removed, format!("cgroup {d}"), Some(summary(old, d)), None));
    }
    let in_both = |r: &Record| old_dirs.contains(&dir_of(r)) && new_dirs.contains(&dir_of(r));
    let old_both: Vec<Record> = old.iter().filter(|r| in_both(r)).cloned().collect();
    let new_both: Vec<Record> = new.iter().filter(|r| in_both(r)).cloned().collect();
    out.extend(keyed(
        &old_both,
        &new_both,
        |key, b, a| {
            Change::new(
                ChangeKind::Changed,
                format!("cgroup {key}"),
                Some(shown(b, "(empty)")),
                Some(shown(a, "(empty)")),
            )
            .note(limit_note(b, a))
        },
        |key, v| Change::new(ChangeKind::Added, format!("cgroup {key}"), None, Some(shown(v, "(empty)"))),
        |key, v| Change::new(ChangeKind::Removed, format!("cgroup {key}"), Some(shown(v, "(empty)")), None),
    ));
    out
}

/// The cgroups a process left and the ones it entered, paired as moves:
/// in each hierarchy, the deepest left with the deepest entered, then their
/// parents, level by level (`pids:/a/x -> pids:/b/y`, `pids:/a -> pids:/b`).
fn moved_cgroups<'a>(removed: &[&'a String], added: &[&'a String]) -> Vec<(&'a String, &'a String)> {
    let hierarchy = |d: &str| d.split_once(':').map_or("", |(h, _)| h).to_owned();
    let depth = |d: &str| d.matches('/').count() - usize::from(d.ends_with(":/"));
    let mut out = Vec::new();
    let hierarchies: std::collections::BTreeSet<String> = removed.iter().map(|d| hierarchy(d)).collect();
    for h in hierarchies {
        let mut gone: Vec<&String> = removed.iter().copied().filter(|d| hierarchy(d) == h).collect();
        let mut came: Vec<&String> = added.iter().copied().filter(|d| hierarchy(d) == h).collect();
        gone.sort_by_key(|d| std::cmp::Reverse(depth(d)));
        came.sort_by_key(|d| std::cmp::Reverse(depth(d)));
        out.extend(gone.into_iter().zip(came));
    }
    out
}

/// A process's old cgroup next to its new one, file by file: "cgroup
/// pids:/a -> pids:/b pids.max 100 -> max (looser: limit removed)"; one
/// change "cgroup limits pids:/a -> pids:/b (same limits)" when every file
/// reads the same.
fn compare_cgroups(
    old: &[Record],
    from: &str,
    new: &[Record],
    to: &str,
    dir_of: &dyn Fn(&Record) -> String,
) -> Vec<Change> {
    use crate::canon::cgroup_limits::split_key;
    let files = |rs: &[Record], dir: &str| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rs.iter().filter(|r| dir_of(r) == dir) {
            let file = split_key(&r.key).map_or(r.key.as_str(), |(_, f)| f);
            m.entry(file.to_owned()).or_default().push(r.value.clone());
        }
        m
    };
    let (before, after) = (files(old, from), files(new, to));
    let mut out = Vec::new();
    let all: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let item = |file: &str| format!("cgroup {from} -> {to} {file}");
    for file in all {
        let (b, a) = (before.get(file), after.get(file));
        if b == a {
            continue;
        }
        let join =
            |v: Option<&Vec<String>>| v.map(|v| v.iter().map(|x| shown(x, "(empty)")).collect::<Vec<_>>().join(", "));
        out.push(match (b, a) {
            (Some(b), Some(a)) => {
                let (bs, as_) = (join(Some(b)).unwrap_or_default(), join(Some(a)).unwrap_or_default());
                let note = match (b.as_slice(), a.as_slice()) {
                    ([b1], [a1]) => move_note(file, b1, a1),
                    _ => None,
                };
                Change::new(ChangeKind::Changed, item(file), Some(bs), Some(as_)).note(note)
            }
            (None, a) => Change::new(ChangeKind::Added, item(file), None, join(a)),
            (b, None) => Change::new(ChangeKind::Removed, item(file), join(b), None),
        });
    }
    if out.is_empty() {
        out.push(
            Change::new(ChangeKind::Changed, "cgroup limits", Some(from.to_owned()), Some(to.to_owned()))
                .note(Some("same limits".into())),
        );
    }
    out
}

/// The note on a limit compared across a move: for files where more is
/// looser ("max" files, v1 limits, quotas), "looser" or "tighter"; the plain
/// [`limit_note`] for the others.
fn move_note(file: &str, before: &str, after: &str) -> Option<String> {
    let note = limit_note(before, after)?;
    let ceiling = file.ends_with(".max")
        || file.ends_with(".high")
        || file.contains("limit_in_bytes")
        || file.ends_with("quota_us")
        || file.ends_with(".max.descendants")
        || file.ends_with(".max.depth");
    if !ceiling {
        return Some(note);
    }
    Some(
        match note.as_str() {
            "limit removed" => "looser: limit removed",
            "limit set" => "tighter: limit set",
            "raised" => "looser",
            "lowered" => "tighter",
            other => other,
        }
        .to_owned(),
    )
}

/// LSM labels: "LSM current label a (enforce) -> a (complain)".
fn lsm(old: &[Record], new: &[Record]) -> Vec<Change> {
    let item = |key: &str| format!("LSM {key} label");
    keyed(
        old,
        new,
        |key, b, a| {
            Change::new(ChangeKind::Changed, item(key), Some(shown(b, "(unset)")), Some(shown(a, "(unset)")))
                .note(crate::canon::lsm::meaning(a).map(str::to_owned))
        },
        |key, v| Change::new(ChangeKind::Added, item(key), None, Some(shown(v, "(unset)"))),
        |key, v| Change::new(ChangeKind::Removed, item(key), Some(shown(v, "(unset)")), None),
    )
}

/// Whether a sysctl change weakens or strengthens the node.
fn sysctl_note(name: &str, before: &str, after: &str) -> Option<String> {
    use crate::canon::kernel::{ABSENT, Stricter, sysctl};
    if after == ABSENT {
        return Some("no longer exists".into());
    }
    if before == ABSENT {
        return Some("newly present".into());
    }
    if name == "kernel.unprivileged_bpf_disabled" && after == "0" {
        return Some("weaker: unprivileged BPF allowed".into());
    }
    let (b, a) = (before.parse::<i64>().ok()?, after.parse::<i64>().ok()?);
    let higher = match sysctl(name)?.stricter {
        Stricter::Higher => a > b,
        Stricter::Lower => a < b,
        Stricter::Neither => return None,
    };
    Some(if higher { "stricter".into() } else { "weaker".into() })
}

/// The position of a lockdown mode, loosest first.
fn lockdown_rank(mode: &str) -> Option<usize> {
    ["none", "integrity", "confidentiality"].iter().position(|m| *m == mode)
}

/// Node-wide kernel state: sysctls, lockdown, LSMs, modules, command line.
fn kernel(old: &[Record], new: &[Record]) -> Vec<Change> {
    use crate::canon::kernel::{parameters, taint_names};
    let mut out = Vec::new();
    for (key, (o, n)) in diff_by_key(old, new) {
        let (b, a) = (o.first().copied(), n.first().copied());
        if key == "cmdline"
            && let (Some(b), Some(a)) = (b, a)
        {
            let (bp, ap) = (parameters(b), parameters(a));
            let before_n = out.len();
            for p in bp.iter().filter(|p| !ap.contains(p)) {
                out.push(Change::new(ChangeKind::Removed, format!("kernel parameter {p}"), None, None));
            }
            for p in ap.iter().filter(|p| !bp.contains(p)) {
                out.push(Change::new(ChangeKind::Added, format!("kernel parameter {p}"), None, None));
            }
            if out.len() == before_n {
                out.push(Change::new(ChangeKind::Changed, "kernel command line", Some(b.into()), Some(a.into())));
            }
            continue;
        }
        if let Some(name) = key.strip_prefix("module ") {
            let module_note = |v: &str| {
                status::split_tuple(v).find(|(f, _)| *f == "taint").map(|(_, t)| {
                    let names: Vec<String> = t
                        .chars()
                        .filter_map(|c| {
                            crate::canon::kernel::TAINT_FLAGS.iter().position(|(f, _)| *f == c).and_then(|bit| {
                                taint_names(1u64.checked_shl(u32::try_from(bit).ok()?)?).into_iter().next()
                            })
                        })
                        .collect();
                    format!("taints the kernel: {}", names.join(", "))
                })
            };
            match (b, a) {
                (Some(b), Some(a)) => out.extend(tuple_fields(
                    key,
                    b,
                    a,
                    |k, f| if f.is_empty() { k.to_owned() } else { format!("{k} {f}") },
                    |_, _, _| None,
                )),
                (None, Some(a)) => out.push(
                    Change::new(
                        ChangeKind::Added,
                        format!("module {name}"),
                        None,
                        Some(a.replace("; ", ", ").replace('=', " ")),
                    )
                    .note(module_note(a)),
                ),
                (Some(b), None) => out.push(Change::new(
                    ChangeKind::Removed,
                    format!("module {name}"),
                    Some(b.replace("; ", ", ").replace('=', " ")),
                    None,
                )),
                (None, None) => {}
            }
            continue;
        }
        let item = match key {
            "lockdown" => "lockdown".to_owned(),
            "lsm" => "active LSMs".to_owned(),
            "modules" => "module support".to_owned(),
            k => format!("sysctl {k}"),
        };
        let note = |b: &str, a: &str| match key {
            "lockdown" => match (lockdown_rank(b), lockdown_rank(a)) {
                (Some(x), Some(y)) if y < x => Some("weaker".to_owned()),
                (Some(x), Some(y)) if y > x => Some("stricter".to_owned()),
                _ => None,
            },
            "lsm" | "modules" => None,
            k => sysctl_note(k, b, a),
        };
        out.push(match (b, a) {
            (Some(b), Some(a)) => {
                Change::new(ChangeKind::Changed, item, Some(shown(b, "(empty)")), Some(shown(a, "(empty)")))
                    .note(note(b, a))
            }
            (None, Some(a)) => Change::new(ChangeKind::Added, item, None, Some(shown(a, "(empty)"))),
            (Some(b), None) => Change::new(ChangeKind::Removed, item, Some(shown(b, "(empty)")), None),
            (None, None) => continue,
        });
    }
    out
}

/// Kernel taint: "tainted 0 -> 4096 (O: out-of-tree module loaded)".
fn taint(old: &[Record], new: &[Record]) -> Vec<Change> {
    use crate::canon::kernel::taint_names;
    keyed(
        old,
        new,
        |key, b, a| {
            let note = match (b.parse::<u64>(), a.parse::<u64>()) {
                (Ok(b), Ok(a)) => {
                    let set = taint_names(a & !b);
                    let cleared = taint_names(b & !a);
                    let mut parts = Vec::new();
                    if !set.is_empty() {
                        parts.push(set.join("; "));
                    }
                    if !cleared.is_empty() {
                        parts.push(format!("cleared {}", cleared.join("; ")));
                    }
                    (!parts.is_empty()).then(|| parts.join("; "))
                }
                _ => None,
            };
            Change::new(ChangeKind::Changed, key, Some(b.into()), Some(a.into())).note(note)
        },
        |key, v| Change::new(ChangeKind::Added, key, None, Some(v.into())),
        |key, v| Change::new(ChangeKind::Removed, key, Some(v.into()), None),
    )
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
                "new anonymous memory rwxp (writable and executable)",
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
                "new [heap] rwxp (writable and executable)",
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
    fn namespace_moves_name_the_kind() {
        use crate::canon::namespaces::{NsState, add};
        let r = |net: u64, pending: bool| {
            recs(|c| {
                add(c, b"net", NsState::Identity { dev: 4, ino: net });
                add(
                    c,
                    b"pid_for_children",
                    if pending { NsState::Pending } else { NsState::Identity { dev: 4, ino: 7 } },
                );
            })
        };
        let got = texts(&explain(Subsystem::Namespaces, &r(4026531833, false), &r(4026532290, false)));
        assert_eq!(got, ["namespace net 4:4026531833 -> 4:4026532290"]);
        let got = texts(&explain(Subsystem::Namespaces, &r(1, false), &r(1, true)));
        assert_eq!(
            got,
            [
                "namespace pid_for_children 4:7 -> pending (unshared: children will be created in a new pid namespace, none yet)"
            ]
        );
    }

    #[test]
    fn limits_read_as_soft_and_hard() {
        use crate::canon::limits::canonicalize;
        let t = |soft: &str, hard: &str| {
            recs(|c| {
                canonicalize(
                    format!("Limit Soft Limit Hard Limit Units\nMax open files {soft} {hard} files\nMax core file size 0 unlimited bytes\n")
                        .as_bytes(),
                    c,
                )
                .unwrap()
            })
        };
        let got = texts(&explain(Subsystem::Limits, &t("1024", "4096"), &t("4096", "4096")));
        assert_eq!(got, ["Max open files soft 1024 -> 4096 (raised)"]);
        let got = texts(&explain(Subsystem::Limits, &t("1024", "4096"), &t("1024", "unlimited")));
        assert_eq!(got, ["Max open files hard 4096 -> unlimited (raised)"]);
        let got = texts(&explain(Subsystem::Limits, &t("1024", "4096"), &t("512", "1024")));
        assert_eq!(got, ["Max open files soft 1024 -> 512 (lowered)", "Max open files hard 4096 -> 1024 (lowered)"]);
    }

    #[test]
    fn mount_changes_name_the_mount_point() {
        use crate::canon::mounts::canonicalize;
        let base = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        let r = |t: &str| recs(|c| canonicalize(t.as_bytes(), c).unwrap());
        let added = format!("{base}90 27 0:90 / /tmp/x rw,relatime - tmpfs fdir-test rw,inode64\n");
        assert_eq!(
            texts(&explain(Subsystem::Mounts, &r(base), &r(&added))),
            ["new mount /tmp/x tmpfs fdir-test rw,relatime"]
        );
        assert_eq!(
            texts(&explain(Subsystem::Mounts, &r(&added), &r(base))),
            ["mount /tmp/x tmpfs fdir-test rw,relatime is gone"]
        );
        let loosened = base.replace("rw,nosuid,nodev,noexec,relatime", "rw,relatime");
        assert_eq!(
            texts(&explain(Subsystem::Mounts, &r(base), &r(&loosened))),
            [
                "mount /proc options rw,nosuid,nodev,noexec,relatime -> rw,relatime (lost nosuid: set-user-ID programs now honoured, lost nodev: device files now usable, lost noexec: programs can now run from it)"
            ]
        );
        let shared = base.replace("/ / rw,relatime -", "/ / rw,relatime shared:1 -");
        assert_eq!(
            texts(&explain(Subsystem::Mounts, &r(base), &r(&shared))),
            ["mount / propagation private -> shared:1"]
        );
        let over = format!("{base}91 22 0:91 / /proc rw - proc proc rw\n");
        assert_eq!(texts(&explain(Subsystem::Mounts, &r(base), &r(&over))), ["new mount /proc (layer 2) proc proc rw"]);
    }

    #[test]
    fn cgroup_limit_changes_name_the_file() {
        use crate::canon::cgroup_limits::add_file;
        let r = |files: &[(&str, &str, &str, &str)]| {
            recs(|c| {
                for (h, cg, f, v) in files {
                    add_file(c, h, cg, f, v.as_bytes());
                }
            })
        };
        let base = [("pids", "/app", "pids.max", "10\n"), ("pids", "/", "notify_on_release", "0\n")];
        let raised = [("pids", "/app", "pids.max", "max\n"), ("pids", "/", "notify_on_release", "0\n")];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&base), &r(&raised))),
            ["cgroup pids:/app pids.max 10 -> max (limit removed)"]
        );
        let mem = |v: &'static str| [("memory", "/x", "memory.limit_in_bytes", v)];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&mem("104857600\n")), &r(&mem("52428800\n")))),
            ["cgroup memory:/x memory.limit_in_bytes 104857600 -> 52428800 (lowered)"]
        );
        let dev = |v: &'static str| [("devices", "/x", "devices.list", v)];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&dev("c 1:3 rwm\n")), &r(&dev("c 1:3 rwm\na *:* rwm\n")))),
            ["new cgroup devices:/x devices.list a *:* rwm"]
        );
        // A move: the cgroup left next to the cgroup entered, file by file.
        let moved = [("pids", "/scratch", "pids.max", "max\n"), ("pids", "/", "notify_on_release", "0\n")];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&base), &r(&moved))),
            ["cgroup pids:/app -> pids:/scratch pids.max 10 -> max (looser: limit removed)"]
        );
        let same = [("pids", "/twin", "pids.max", "10\n"), ("pids", "/", "notify_on_release", "0\n")];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&base), &r(&same))),
            ["cgroup limits pids:/app -> pids:/twin (same limits)"]
        );
        // Nested: each level paired with the same level; a cgroup of another
        // hierarchy that appears alone is still one change listing its files.
        let deep = [("pids", "/a/b", "pids.max", "5\n"), ("pids", "/a", "pids.max", "9\n")];
        let deeper = [
            ("pids", "/c/d", "pids.max", "4\n"),
            ("pids", "/c", "pids.max", "9\n"),
            ("cpu", "/z", "cpu.shares", "2\n"),
        ];
        assert_eq!(
            texts(&explain(Subsystem::CgroupLimits, &r(&deep), &r(&deeper))),
            [
                "cgroup pids:/a/b -> pids:/c/d pids.max 5 -> 4 (tighter)",
                "cgroup limits pids:/a -> pids:/c (same limits)",
                "new cgroup cpu:/z cpu.shares 2"
            ]
        );
    }

    #[test]
    fn lsm_label_changes() {
        let r = |label: &str| recs(|c| crate::canon::lsm::add(c, "current", label.as_bytes()));
        assert_eq!(
            texts(&explain(Subsystem::Lsm, &r("cupsd (enforce)\n"), &r("cupsd (complain)\n"))),
            ["LSM current label cupsd (enforce) -> cupsd (complain) (AppArmor profile only logs, no longer enforces)"]
        );
        let gone = no_longer_applicable(Subsystem::Lsm, &r("x_t\0"), "no security module labels processes here");
        assert_eq!(
            texts(&gone),
            [
                "lsm observed -> not applicable (no security module labels processes here)",
                "LSM current label x_t is gone"
            ]
        );
        let came = now_applicable(Subsystem::Lsm, "none", &r("x_t"));
        assert_eq!(texts(&came), ["lsm not applicable -> observed (at baseline: none)", "new LSM current label x_t"]);
    }

    #[test]
    fn kernel_changes_say_which_way() {
        use crate::canon::kernel::{add_cmdline, add_lockdown, add_modules, add_sysctl, add_taint};
        let node = |kptr: Option<&str>, lockdown: &str, cmdline: &str, modules: &str| {
            recs(|c| {
                add_sysctl(c, "kernel.kptr_restrict", kptr.map(str::as_bytes));
                add_sysctl(c, "fs.suid_dumpable", Some(b"0\n"));
                add_lockdown(c, Some(lockdown.as_bytes()));
                add_cmdline(c, Some(cmdline.as_bytes()));
                add_modules(c, Some(modules.as_bytes())).unwrap();
            })
        };
        let ld = "[integrity] confidentiality";
        let base = node(Some("1\n"), ld, "quiet nomodule", "");
        let cases: &[(Vec<Record>, &[&str])] = &[
            (node(Some("0\n"), ld, "quiet nomodule", ""), &["sysctl kernel.kptr_restrict 1 -> 0 (weaker)"]),
            (node(Some("2\n"), ld, "quiet nomodule", ""), &["sysctl kernel.kptr_restrict 1 -> 2 (stricter)"]),
            (node(None, ld, "quiet nomodule", ""), &["sysctl kernel.kptr_restrict 1 -> absent (no longer exists)"]),
            (node(Some("1\n"), "[none] integrity", "quiet nomodule", ""), &["lockdown integrity -> none (weaker)"]),
            (
                node(Some("1\n"), ld, "quiet mitigations=off", ""),
                &["kernel parameter nomodule is gone", "new kernel parameter mitigations=off"],
            ),
            (
                node(Some("1\n"), ld, "quiet nomodule", "evil 16384 0 - Live 0x0 (OE)\n"),
                &[
                    "new module evil size 16384, state Live, taint OE (taints the kernel: O: out-of-tree module loaded, E: unsigned module loaded)",
                ],
            ),
        ];
        for (now, want) in cases {
            assert_eq!(texts(&explain(Subsystem::Kernel, &base, now)), *want);
        }
        let t = |v: &str| recs(|c| add_taint(c, Some(v.as_bytes())));
        assert_eq!(
            texts(&explain(Subsystem::KernelTaint, &t("0\n"), &t("4096\n"))),
            ["tainted 0 -> 4096 (O: out-of-tree module loaded)"]
        );
        assert_eq!(
            texts(&explain(Subsystem::KernelTaint, &t("4097\n"), &t("4096\n"))),
            ["tainted 4097 -> 4096 (cleared P: proprietary module loaded)"]
        );
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
