//! The Debian package's sources: the files `[package.metadata.deb]` takes
//! from the tree exist, the generated ones are made by `scripts/deb.sh`,
//! and the example policy it installs is a valid policy. (`.ci/run` builds,
//! installs, runs and removes the package itself.)

use std::path::Path;

fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    text.parse().unwrap()
}

#[test]
fn the_example_policy_is_valid() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/policy.example.toml")).unwrap();
    let policy = fdir::policy::Policy::parse(&text).unwrap_or_else(|e| panic!("dist/policy.example.toml: {e}"));
    assert!(policy.actions.passive, "the example acts only once its user says so");
}

#[test]
fn every_asset_is_in_the_tree_or_made_by_the_script() {
    let m = manifest();
    let deb = m["package"]["metadata"]["deb"].as_table().unwrap();
    let script = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deb.sh")).unwrap();
    let mut dests = Vec::new();
    for asset in deb["assets"].as_array().unwrap() {
        let (src, dest) = (asset[0].as_str().unwrap(), asset[1].as_str().unwrap());
        dests.push(dest.to_owned());
        if src == "target/release/fdir" {
            continue;
        }
        match src.strip_prefix("target/deb-assets/") {
            // Made by the script: named in it (the man page is gzipped there).
            Some(made) => {
                let name = made.trim_end_matches(".gz").rsplit('/').next().unwrap();
                assert!(script.contains(name), "scripts/deb.sh does not make {src}");
            }
            None => assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(src).exists(), "{src} is missing"),
        }
    }
    for want in [
        "usr/bin/",
        "lib/systemd/system/fdir.service",
        "usr/share/man/man1/fdir.1.gz",
        "usr/share/bash-completion/completions/fdir",
        "usr/share/zsh/vendor-completions/_fdir",
        "usr/share/fish/vendor_completions.d/fdir.fish",
        "usr/share/doc/fdir/examples/least-privilege.conf",
        "usr/share/doc/fdir/examples/policy.toml",
    ] {
        assert!(dests.iter().any(|d| d == want), "the package lacks {want}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("debian").join(script).exists(), "debian/{script}");
    }
}
