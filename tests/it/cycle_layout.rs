//! The flight build's lists are current: every function of fdir that
//! `link/cycle.ld` lays out still exists in the source, where its name says.
//!
//! The lists (written by `scripts/cycle-layout.py`, which needs valgrind)
//! name functions by their mangled symbols, with each one's demangled name
//! beside it in a comment (`/* <fdir::monitor::Monitor>::cycle_part::<...> */`).
//! The linker ignores a pattern that matches nothing, so a function renamed,
//! moved to another module or removed silently costs the flight build its
//! layout. This test reads the comments, and for every path of fdir in them
//! (`fdir::cli::watch::run`, the type of `<fdir::X as Trait>::f`) finds the
//! module's file under src/ and the item in it, and for every method of an
//! fdir type or trait (`<fdir::source::Procfs as fdir::source::Source>::read`)
//! a `fn` of that name in src/. It fails naming the stale entries. It needs
//! neither valgrind nor a release build; `scripts/flight-build.py` checks
//! the same lists against the flight binary's own symbols (BENCHMARKS.md,
//! "The flight build").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `text` holds `word` with no identifier character on either side.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = text[i + word.len()..].chars().next().is_none_or(|c| !is_ident(c));
        before && after
    })
}

/// Whether `text` declares an item named `name`.
fn declares(text: &str, name: &str) -> bool {
    ["fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod", "macro_rules!"]
        .iter()
        .any(|kw| has_word(text, &format!("{kw} {name}")))
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(path, text);
        }
    }
}

/// Resolves `fdir::a::b::Item::...` to the file of module `a::b` (below
/// src/, from the library's or the binary's root) and checks that it
/// declares `Item` (and holds the rest of the path as words: a nested
/// item). `_` (the anonymous `const _` of a derive) is passed through.
fn resolve(path: &[&str], files: &BTreeMap<PathBuf, String>) -> Result<(), String> {
    let src = root().join("src");
    // Of the two roots' failures, the one told is that of the root whose
    // modules went deeper (the library's, on a tie).
    let mut failure: Option<(usize, String)> = None;
    let mut fail = |depth: usize, why: String| {
        if failure.as_ref().is_none_or(|(d, _)| depth > *d) {
            failure = Some((depth, why));
        }
    };
    for crate_root in ["lib.rs", "main.rs"] {
        let (mut dir, mut file) = (src.clone(), src.join(crate_root));
        let mut rest = path.get(1..).unwrap_or_default();
        while let Some((seg, tail)) = rest.split_first() {
            let (flat, nested) = (dir.join(format!("{seg}.rs")), dir.join(seg).join("mod.rs"));
            // The parent file declares the module (`mod x;`, `pub mod x;`,
            // or inline: `mod tests { ... }`, which stays in that file).
            let declared = files.get(&file).is_some_and(|t| has_word(t, &format!("mod {seg}")));
            if *seg == "_" {
                // The anonymous `const _` of a derive: same file.
            } else if declared && flat.is_file() {
                (dir, file) = (dir.join(seg), flat);
            } else if declared && nested.is_file() {
                (dir, file) = (dir.join(seg), nested);
            } else if !declared {
                break;
            }
            rest = tail;
        }
        let Some(text) = files.get(&file) else {
            fail(0, format!("no file {}", file.display()));
            continue;
        };
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        let depth = path.len() - rest.len();
        match rest.split_first() {
            None => return Ok(()),
            Some((item, _)) if !declares(text, item) => {
                fail(depth, format!("{shown} declares no `{item}`"));
            }
            Some((_, nested)) => match nested.iter().find(|n| **n != "_" && !has_word(text, n)) {
                Some(n) => {
                    fail(depth, format!("{shown} has no `{n}`"));
                }
                None => return Ok(()),
            },
        }
    }
    Err(failure.map(|(_, why)| why).unwrap_or_default())
}

/// The paths of fdir in a demangled name: `fdir::a::B` segments, up to the
/// first that is not an identifier (`{closure#0}`, `<impl ...>`).
fn fdir_paths(name: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    for (i, _) in name.match_indices("fdir::") {
        if name[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let mut path = Vec::new();
        for s in name[i..].split("::") {
            let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
            if end > 0 {
                path.push(&s[..end]);
            }
            // A segment cut short (`Procfs as fdir`, `Y>`) ends the path.
            if end == 0 || end < s.len() {
                break;
            }
        }
        out.push(path);
    }
    out
}

/// The methods of fdir's types and traits in a demangled name: `m` of
/// `<fdir::X>::m` and of `<Y as fdir::T>::m` (not of `<fdir::X as
/// core::clone::Clone>::clone`, which a derive may write).
fn fdir_methods(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (end, _) in name.match_indices(">::") {
        let method = &name[end + 3..];
        let method = &method[..method.find(|c: char| !is_ident(c)).unwrap_or(method.len())];
        // The `<` that opens this `>`.
        let mut depth = 0;
        let Some(open) = name[..end].char_indices().rev().find_map(|(i, c)| {
            match c {
                '>' => depth += 1,
                '<' if depth == 0 => return Some(i),
                '<' => depth -= 1,
                _ => {}
            }
            None
        }) else {
            continue;
        };
        let inner = &name[open + 1..end];
        // ` as ` at the top level of `inner` splits the type from the trait.
        let mut depth = 0;
        let mut trait_at = None;
        for (i, c) in inner.char_indices() {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ if depth == 0 && inner[i..].starts_with(" as ") => trait_at = Some(i + 4),
                _ => {}
            }
        }
        let owner = match trait_at {
            Some(t) => &inner[t..],
            None => inner,
        };
        if owner.starts_with("fdir::") && !method.is_empty() && !method.starts_with('{') {
            out.push(method);
        }
    }
    out
}

#[test]
fn every_function_of_fdir_in_the_flight_layout_is_still_in_the_source() {
    let ld = std::fs::read_to_string(root().join("link/cycle.ld")).unwrap();
    let mut files = BTreeMap::new();
    sources(&root().join("src"), &mut files);
    let (mut stale, mut checked) = (Vec::new(), 0);
    for line in ld.lines().map(str::trim) {
        if !line.starts_with("*(.text.") {
            continue;
        }
        let Some(name) = line.split_once("/* ").and_then(|(_, c)| c.strip_suffix(" */")) else {
            if line.contains("4fdir") {
                stale.push(format!("{line}: no demangled name (run scripts/cycle-layout.py)"));
            }
            continue;
        };
        for path in fdir_paths(name) {
            checked += 1;
            if let Err(why) = resolve(&path, &files) {
                stale.push(format!("{}: {why} (in {name})", path.join("::")));
            }
        }
        for method in fdir_methods(name) {
            checked += 1;
            if !files.values().any(|t| declares(t, method)) {
                stale.push(format!("fn {method}: not in src/ (in {name})"));
            }
        }
    }
    stale.sort();
    stale.dedup();
    assert!(
        stale.is_empty(),
        "link/cycle.ld is stale: {} of {checked} names of fdir are no longer in src/ (run scripts/cycle-layout.py, \
         which needs valgrind; BENCHMARKS.md, \"The flight build\"):\n{}",
        stale.len(),
        stale.join("\n")
    );
    assert!(checked >= 50, "only {checked} paths of fdir in link/cycle.ld: was it written by scripts/cycle-layout.py?");
}

#[test]
fn the_layout_check_reads_demangled_names() {
    let paths = fdir_paths("<fdir::source::Procfs as fdir::source::Source>::read::<fdir::x::Y>::{closure#0}");
    assert_eq!(paths, [vec!["fdir", "source", "Procfs"], vec!["fdir", "source", "Source"], vec!["fdir", "x", "Y"]]);
    assert_eq!(fdir_paths("core::ptr::drop_in_place::<fdir::daemon::Outcome>"), [vec!["fdir", "daemon", "Outcome"]]);
    assert_eq!(fdir_methods("<fdir::cli::watch::Watcher>::disk_vote"), ["disk_vote"]);
    assert_eq!(fdir_methods("<fdir::source::Procfs as fdir::source::Source>::read"), ["read"]);
    assert!(fdir_methods("<fdir::event::Kind as core::clone::Clone>::clone").is_empty());
    assert!(fdir_methods("<alloc::vec::Vec<fdir::observe::End>>::push").is_empty());
    let mut files = BTreeMap::new();
    sources(&root().join("src"), &mut files);
    assert_eq!(resolve(&["fdir", "source", "procfs", "Procfs"], &files), Ok(()));
    assert_eq!(resolve(&["fdir", "source", "Source"], &files), Ok(()));
    assert_eq!(resolve(&["fdir", "cli", "watch", "watch"], &files), Ok(()));
    assert!(resolve(&["fdir", "cli", "watch", "no_such_fn"], &files).is_err());
    assert!(resolve(&["fdir", "no_such_module", "run"], &files).is_err());
}
