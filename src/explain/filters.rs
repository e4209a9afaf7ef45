//! Explaining `seccomp-filters`: "new seccomp filter #1 1 instruction,
//! returns allow, sha256 5a9c0e3f12ab", "seccomp filter #0 ... -> ...", or,
//! when either side could not read the programs, "seccomp filter count 1 -> 2".

use super::{Change, ChangeKind, keyed};
use crate::canon::Record;
use crate::canon::filters::{self as form, CHAIN};

fn count_of(value: &str) -> String {
    value.split(' ').next().unwrap_or(value).to_owned()
}

/// Explains the difference between two forms of `seccomp-filters`.
pub(super) fn explain(old: &[Record], new: &[Record]) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    let (old_degraded, new_degraded) = (form::is_degraded(old), form::is_degraded(new));
    if old_degraded || new_degraded {
        return counts(old, new, old_degraded, new_degraded);
    }
    let chains = |rs: &[Record]| rs.iter().filter(|r| r.key == CHAIN).count();
    let threads_differ = chains(old) > 1 || chains(new) > 1;
    let filters = |rs: &[Record]| -> Vec<Record> { rs.iter().filter(|r| r.key != CHAIN).cloned().collect() };
    let item = |key: &str| format!("seccomp {key}");
    let mut out = keyed(
        &filters(old),
        &filters(new),
        |key, b, a| Change::new(ChangeKind::Changed, item(key), Some(form::short(b)), Some(form::short(a))),
        |key, v| Change::new(ChangeKind::Added, item(key), None, Some(form::short(v))),
        |key, v| Change::new(ChangeKind::Removed, item(key), Some(form::short(v)), None),
    );
    out.sort_by_key(|c| c.item.strip_prefix("seccomp ").and_then(form::filter_index));
    if out.is_empty() {
        // The same programs at the same places, in other combinations.
        out.push(
            Change::new(
                ChangeKind::Changed,
                "seccomp filter chains",
                Some(format!("{} distinct", chains(old))),
                Some(format!("{} distinct", chains(new))),
            )
            .note(Some("the same filters in other combinations across threads".into())),
        );
    }
    if threads_differ {
        out =
            out.into_iter().map(|c| if c.note.is_none() { c.note(Some("threads differ".into())) } else { c }).collect();
    }
    out
}

/// Either side holds counts only: compare the counts, and say why.
fn counts(old: &[Record], new: &[Record], old_degraded: bool, new_degraded: bool) -> Vec<Change> {
    let why = |rs: &[Record]| form::degraded_reason(rs).map(|r| format!("programs unreadable: {r}"));
    let note = if new_degraded { why(new) } else { why(old) };
    let (o, n) = (form::project(old), form::project(new));
    let item = "seccomp filter count";
    let mut out = keyed(
        &o,
        &n,
        |_, b, a| Change::new(ChangeKind::Changed, item, Some(count_of(b)), Some(count_of(a))),
        |_, v| Change::new(ChangeKind::Added, item, None, Some(count_of(v))),
        |_, v| Change::new(ChangeKind::Removed, item, Some(count_of(v)), None),
    );
    if out.is_empty() {
        let side = |degraded: bool, rs: &[Record]| {
            if degraded { format!("unreadable: {}", form::degraded_reason(rs).unwrap_or("?")) } else { "read".into() }
        };
        out.push(Change::new(
            ChangeKind::Changed,
            "seccomp filter programs",
            Some(side(old_degraded, old)),
            Some(side(new_degraded, new)),
        ));
        return out;
    }
    let threads_differ = o.len() > 1 || n.len() > 1;
    out.into_iter()
        .map(|c| {
            let note = match (&note, threads_differ) {
                (Some(n), true) => Some(format!("{n}; threads differ")),
                (Some(n), false) => Some(n.clone()),
                (None, true) => Some("threads differ".into()),
                (None, false) => None,
            };
            c.note(note)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon::Canon;
    use crate::canon::filters::{Program, canonicalize_counts, canonicalize_programs};

    const ALLOW: [u8; 8] = [0x06, 0, 0, 0, 0, 0, 0xff, 0x7f];
    const KILL: [u8; 8] = [0x06, 0, 0, 0, 0, 0, 0, 0x80];

    fn full(chains: &[&[&[u8]]]) -> Vec<Record> {
        let chains: Vec<Vec<Program>> = chains.iter().map(|c| c.iter().map(|p| Program::of(p)).collect()).collect();
        let mut c = Canon::new();
        canonicalize_programs(&chains, &mut c);
        c.records()
    }

    fn counts(k: &[usize], why: &str) -> Vec<Record> {
        let mut c = Canon::new();
        canonicalize_counts(k, why, &mut c);
        c.records()
    }

    fn texts(old: &[Record], new: &[Record]) -> Vec<String> {
        explain(old, new).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn filters_are_named_by_index_in_order() {
        let base = full(&[&[&ALLOW]]);
        let t = texts(&base, &full(&[&[&ALLOW, &KILL, &ALLOW]]));
        assert_eq!(t.len(), 2, "{t:#?}");
        assert!(t[0].starts_with("new seccomp filter #1 1 instruction, returns kill-process, sha256 "), "{t:#?}");
        assert!(t[1].starts_with("new seccomp filter #2 1 instruction, returns allow, sha256 "), "{t:#?}");
        let t = texts(&base, &full(&[&[&KILL]]));
        assert!(t[0].starts_with("seccomp filter #0 1 instruction, returns allow, sha256 "), "{t:#?}");
        assert!(texts(&base, &base).is_empty());
    }

    #[test]
    fn the_same_filters_in_other_combinations_across_threads() {
        let a = full(&[&[&ALLOW, &ALLOW], &[&KILL, &KILL]]);
        let b = full(&[&[&ALLOW, &KILL], &[&KILL, &ALLOW]]);
        assert_eq!(
            texts(&a, &b),
            ["seccomp filter chains 2 distinct -> 2 distinct (the same filters in other combinations across threads)"]
        );
    }

    #[test]
    fn counts_when_either_side_could_not_read_programs() {
        let why = "reading seccomp filter programs needs CAP_SYS_ADMIN";
        let t = texts(&counts(&[1], why), &counts(&[1, 2], why));
        assert_eq!(t, [format!("new seccomp filter count 2 (programs unreadable: {why}; threads differ)")]);
        // Only the readability differs.
        let t = texts(&full(&[&[&ALLOW]]), &counts(&[1], why));
        assert_eq!(t, [format!("seccomp filter programs read -> unreadable: {why}")]);
    }
}
