#!/usr/bin/env bash
# Builds the Debian package (cargo-deb): the release binary, then the files
# the package holds that fdir itself writes (the man page, shell
# completions) and the unit with the package's path of the binary, into
# target/deb-assets/, then `cargo deb`. Prints the path of the .deb.
#
#   cargo install cargo-deb --locked   # once
#   scripts/deb.sh                     # target/debian/fdir_VERSION-1_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || { echo "deb.sh: cargo-deb is not installed: cargo install cargo-deb --locked" >&2; exit 2; }
cargo build --release --locked --bin fdir
out=target/deb-assets
rm -rf "$out"
mkdir -p "$out/completions"
target/release/fdir man > "$out/fdir.1"
gzip -9nf "$out/fdir.1"
target/release/fdir completions bash > "$out/completions/fdir.bash"
target/release/fdir completions zsh > "$out/completions/_fdir"
target/release/fdir completions fish > "$out/completions/fdir.fish"
# The unit of dist/ runs /usr/local/bin/fdir (a hand install); the package's runs /usr/bin/fdir.
sed 's|/usr/local/bin/fdir|/usr/bin/fdir|g' dist/fdir.service > "$out/fdir.service"
grep -q '^ExecStart=/usr/bin/fdir ' "$out/fdir.service" || { echo "deb.sh: no ExecStart=/usr/bin/fdir in the unit" >&2; exit 1; }
cargo deb --no-build --locked "$@" | tail -n 1
