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
        let chunks = per_map.get(&(id.path.clone(), id.offset))?;
        let at = chunks.iter().position(|&c| c == id.chunk)?;
        Some(format!("chunk {} of {}", at + 1, chunks.len()))
    };
    // The file a mapping maps, as the object a drift of its shared copy is.
    let file = |key: &str| {
        let id = form::parse_chunk_key(key)?;
        let map = form::map_key(&id.path, id.offset);
        let r = new.iter().chain(old).find(|r| r.key == map)?;
        let (dev, inode) = form::map_identity(&r.value)?;
        Some(format!("code file {} dev {dev} inode {inode}", id.path))
    };
    // Where the new bytes were read: the object that drifted.
    let origin = |key: &str, value: &str| match form::origin(value)? {
        None => Some(format!("in the page cache: the shared copy of {}, for every process that maps it", file(key)?)),
        Some(n) => Some(format!("in {n} page{} of this process's own", if n == 1 { "" } else { "s" })),
    };
    let noted = |key: &str, value: &str| match (note(key), origin(key, value)) {
        (Some(n), Some(o)) => Some(format!("{n}; {o}")),
        (n, o) => n.or(o),
    };
    keyed(
        old,
        new,
        |key, b, a| {
            Change::new(ChangeKind::Changed, item(key), Some(form::short(b)), Some(form::short(a))).note(noted(key, a))
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
        // Where the bytes were read: the shared copy names the file.
        new[1].value = format!("{}{}", sha('b'), form::IN_PAGE_CACHE);
        let got: Vec<String> = explain(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [format!(
                "code of {lib} @0x28000+0x10000 sha256 aaaaaaaaaaaa -> sha256 bbbbbbbbbbbb (chunk 2 of 3; in the page \
                 cache: the shared copy of code file {lib} dev fe:01 inode 7, for every process that maps it)"
            )]
        );
        new[1].value = format!("{}{}2", sha('b'), form::IN_OWN_PAGES);
        let got: Vec<String> = explain(&old, &new).iter().map(ToString::to_string).collect();
        assert!(got[0].ends_with("(chunk 2 of 3; in 2 pages of this process's own)"), "{got:#?}");
    }
}
