#!/usr/bin/env bash
# Runs fdir's fuzz targets (fuzz/fuzz_targets/*) one after the other, each for
# a given time, with cargo-fuzz (libFuzzer) on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags cargo-fuzz passes.
#
#   scripts/fuzz.sh                 # every target, 600 s each
#   scripts/fuzz.sh 60              # every target, 60 s each
#   scripts/fuzz.sh 600 maps status # those targets
#
# Corpora: fuzz/corpus/<target> (not committed), seeded from fuzz/seeds/<target>
# (committed: captured /proc files, valid baselines and policies) and from
# fresh captures of this machine's /proc. Crashes land in
# fuzz/artifacts/<target>/; copy each into tests/data/fuzz/<target>/ with a
# name that says what it found, fix it, and tests/it/fuzz_regressions.rs keeps it
# fixed. Logs: fuzz/logs/<target>.log; one line per run is appended to
# fuzz/logs/summary.tsv (target, seconds, executions, exec/s, coverage,
# features, corpus, crashes).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^fdir-fuzz$')
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none -O -a)   # optimized, with debug assertions and overflow checks
echo "== building ${#targets[@]} targets"
cargo fuzz build "${flags[@]}"

mkdir -p fuzz/logs
capture() { # target, file under /proc/PID
  local t=$1 f=$2 pid
  for pid in self 1 $(ls /proc | grep -E '^[0-9]+$' | head -40); do
    cat "/proc/$pid/$f" > "fuzz/corpus/$t/live-$pid-$f" 2>/dev/null || rm -f "fuzz/corpus/$t/live-$pid-$f"
  done
}
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
  case $t in
    maps|status|cgroup|limits|mountinfo|stat) capture "$t" "$t" ;;
  esac
  find "fuzz/corpus/$t" -type f -empty -delete
  echo "== $t: ${secs}s, corpus $(ls "fuzz/corpus/$t" | wc -l) inputs"
  log="fuzz/logs/$t.log"
  set +e
  cargo fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="fuzz/artifacts/$t/" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
  corpus=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
  crashes=$(ls "fuzz/artifacts/$t" | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\texit %s\t%s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corpus:-?}" "$crashes" "$rc" "$(date -u +%FT%TZ)" | tee -a fuzz/logs/summary.tsv
  if [ "$rc" -ne 0 ]; then
    echo "   $t stopped with exit $rc: see $log and fuzz/artifacts/$t/"
    grep -E 'panicked|property violated|ERROR' "$log" | head -5 | sed 's/^/   /'
  fi
done
