#!/usr/bin/env bash
# The soak of ROBUSTNESS.md: `fdir watch --all --interval 1s --format json` on
# a release build for 10 minutes (or SECONDS), while `fdir-testee spawn-storm`
# starts and ends processes (30/s: short-lived, baselined-then-exiting, with
# threads) and threads (150/s in 4 long-lived workers). The test behind it is
# tests/soak.rs (60 s, lighter, in CI); this runs it longer and keeps what it saw.
#
#   scripts/soak.sh            # 600 s
#   scripts/soak.sh 1800       # 30 minutes
#   SOAK_PIDNS=1 scripts/soak.sh   # in a private pid namespace: fdir sees only
#                                  # the load (and wraps pids faster)
#
# Output in target/soak/<UTC time>/: events.ndjson (every event fdir wrote),
# samples.csv (seconds, fds, rss_kb, threads, targets of fdir every 5 s),
# fdir.stderr, summary.txt. It fails if fdir died, did not exit 0 on SIGTERM,
# raised any anomaly, reported an error about itself, compared a process with
# another's baseline, or grew: the last quarter's mean of its open files and
# of its RSS must stay within 10% (+16 fds, +4 MiB) of the first quarter's,
# after a warm-up of the first 10% of the samples.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
out="target/soak/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
echo "== building (release)"
cargo test --release --test soak --no-run
echo "== soak: ${secs}s, output in $out"
run=(env FDIR_SOAK_SECS="$secs" FDIR_SOAK_DIR="$PWD/$out" cargo test --release --test soak -- --nocapture)
if [ "${SOAK_PIDNS:-0}" = 1 ]; then
  run=(unshare --pid --fork --mount-proc "${run[@]}")
fi
"${run[@]}" 2>&1 | tee "$out/test.log"
echo "== summary ($out/summary.txt)"
cat "$out/summary.txt"
