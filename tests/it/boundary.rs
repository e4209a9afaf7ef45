//! The I/O boundary: the modules that may touch files are the ones
//! ARCHITECTURE.md names ("Modules that touch files"), no more, no fewer.
//!
//! The build enforces the boundary (clippy.toml's `disallowed-methods`,
//! denied in src/lib.rs and src/main.rs); this test holds the list of the
//! modules that are let through, by an `allow` on their `mod` line or inside
//! them, equal to the list in ARCHITECTURE.md, so the map stays true.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ALLOW: &str = "allow(clippy::disallowed_";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The module declared by a `mod` line (`pub mod baseline;` → `baseline`).
fn declared(line: &str) -> Option<&str> {
    let line = line.trim();
    let rest =
        line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("pub(crate) mod ")).or(line.strip_prefix("mod "))?;
    rest.strip_suffix(';').or_else(|| rest.strip_suffix(" {"))
}

/// The module path of a file below src/ (`src/source/procfs.rs` →
/// `source::procfs`; `src/cli.rs` → `cli`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules the code lets touch files: an `allow` on a `mod` line of a
/// crate root's module list (src/lib.rs, src/cli.rs), or one inside a
/// module other than its unit tests.
fn allowed_in_code() -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    for file in files {
        let module = module_of(&file);
        // fdir-testee is a test tool, outside the product and its boundary.
        if module.starts_with("bin::") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.contains(ALLOW) || line.trim_start().starts_with("//") {
                continue;
            }
            assert!(
                !line.contains("#!["),
                "{}:{}: the boundary is lifted for a whole crate or module from inside it; \
                 allow it on the module's `mod` line instead",
                file.display(),
                i + 1
            );
            let next =
                lines[i + 1..].iter().find(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with("#["));
            match next.and_then(|l| declared(l)) {
                // Unit tests touch files freely, as integration tests do.
                Some("tests") => {}
                Some(child) => {
                    let prefix = match module.as_str() {
                        "lib" | "main" => String::new(),
                        m => format!("{m}::"),
                    };
                    allowed.insert(format!("{prefix}{child}"));
                }
                None => {
                    allowed.insert(module.clone());
                }
            }
        }
    }
    allowed
}

/// The modules ARCHITECTURE.md names in "Modules that touch files": each
/// item of its list begins with the modules in backquotes, then ` — `.
fn allowed_in_map() -> BTreeSet<String> {
    let map = read("ARCHITECTURE.md");
    let section = map
        .split("\n## Modules that touch files\n")
        .nth(1)
        .expect("ARCHITECTURE.md has no section \"Modules that touch files\"");
    let section = section.split("\n## ").next().unwrap();
    let mut names = BTreeSet::new();
    for item in section.lines().filter(|l| l.starts_with("- `")) {
        let head = item.split(" — ").next().unwrap();
        names.extend(head.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    names
}

#[test]
fn the_modules_that_touch_files_are_the_ones_the_map_names() {
    let code = allowed_in_code();
    let map = allowed_in_map();
    assert!(!code.is_empty() && code.contains("source"), "no module is let touch files: {code:?}");
    assert_eq!(code, map, "the modules the code lets touch files (left) differ from ARCHITECTURE.md's list (right)");
}

#[test]
fn the_boundary_is_denied_in_both_crates() {
    let deny = "#![deny(clippy::disallowed_methods, clippy::disallowed_types)]";
    for root_file in ["src/lib.rs", "src/main.rs"] {
        assert!(read(root_file).contains(deny), "{root_file} does not deny file access outside the named modules");
    }
    let clippy = read("clippy.toml");
    for method in
        ["std::fs::read", "std::fs::File::open", "std::fs::read_dir", "rustix::fs::openat", "rustix::fs::stat"]
    {
        assert!(clippy.contains(&format!("path = \"{method}\"")), "clippy.toml does not disallow {method}");
    }
}

#[test]
fn one_module_convention_no_mod_rs() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let old: Vec<_> = files.iter().filter(|p| p.file_name().is_some_and(|n| n == "mod.rs")).collect();
    assert!(old.is_empty(), "a module with submodules is foo.rs beside foo/ (ARCHITECTURE.md), not {old:?}");
}
