//! Explaining `code`: "code of /usr/lib/x86_64-linux-gnu/libc.so.6
//! @0x28000+0x10000 sha256 5a9c0e3f12ab -> sha256 e3b0c44298fc (chunk 2 of 24)".

use std::collections::BTreeMap;

use super::{Change, ChangeKind, keyed};
use crate::canon::Record;
use crate::canon::code::{self as form, ChunkId};

/// Explains the difference between two forms of `code`.
pub(super) fn explain(old: &[Record], new: &[Record]) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    // The chunks of each mapping, in order, to say which one of how many.
    let mut per_map: BTreeMap<(String, u64), Vec<u64>> = BTreeMap::new();
    for r in old.iter().chain(new) {
        if let Some(ChunkId { path, offset, chunk }) = form::parse_chunk_key(&r.key) {
            let v = per_map.entry((path, offset)).or_default();
            if !v.contains(&chunk) {
                v.push(chunk);
            }
        }
    }
    for v in per_map.values_mut() {
        v.sort_unstable();
    }
    let item = |key: &str| match form::parse_chunk_key(key) {
        Some(id) => format!("code of {} @{:#x}+{:#x}", id.path, id.offset, id.chunk),
        None => format!("code {}", key),
    };
    let note = |key: &str| {
        let id = form::parse_chunk_key(key)?;
        let chunks = per_map.get(&(id.path, id.offset))?;
        let at = chunks.iter().position(|&c| c == id.chunk)?;
        Some(format!("chunk {} of {}", at + 1, chunks.len()))
    };
    keyed(
        old,
        new,
        |key, b, a| {
            Change::new(ChangeKind::Changed, item(key), Some(form::short(b)), Some(form::short(a))).note(note(key))
        },
        |key, v| Change::new(ChangeKind::Added, item(key), None, Some(form::short(v))).note(note(key)),
        |key, v| Change::new(ChangeKind::Removed, item(key), Some(form::short(v)), None).note(note(key)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(k: &str, v: &str) -> Record {
        Record { key: k.into(), value: v.into() }
    }

    fn sha(c: char) -> String {
        format!("0x10000 bytes sha256 {}", c.to_string().repeat(64))
    }

    #[test]
    fn a_changed_chunk_is_named_by_mapping_offset_and_rank() {
        let lib = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        let old: Vec<Record> = (0..3)
            .map(|i| r(&format!("code {lib} @0x28000 +{:#x}", i * 0x10000), &sha('a')))
            .chain([r(&format!("map {lib} @0x28000"), "dev fe:01 inode 7 size 0x30000")])
            .collect();
        let mut new = old.clone();
        new[1].value = sha('b');
        let got: Vec<String> = explain(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [format!("code of {lib} @0x28000+0x10000 sha256 aaaaaaaaaaaa -> sha256 bbbbbbbbbbbb (chunk 2 of 3)")]
        );
        new[1].value = "unreadable".into();
        let got: Vec<String> = explain(&old, &new).iter().map(ToString::to_string).collect();
        assert!(got[0].ends_with("-> unreadable (chunk 2 of 3)"), "{got:#?}");
        assert!(explain(&old, &old).is_empty());
    }
}
