#!/usr/bin/env bash
# Which subsystems make a one-process watch's cost (BENCHMARKS.md, "One
# process: which subsystems make the gap"): one `fdir watch` of one idle
# `sleep` at 100 ms for each set of subsystems named, all at the same time
# (one host's noise for all), each's CPU over SECONDS from the schedstat of
# its threads (nanoseconds).
#
#   scripts/one-subsystems.sh 30 ./target/release/fdir memory-maps,seccomp,cgroups SET2 ...
set -euo pipefail
secs=$1; bin=$2; shift 2
dir=$(mktemp -d)
sleep 100000 & sp=$!
pids=()
i=0
for s in "$@"; do
  "$bin" watch --pid "$sp" --interval 100ms --subsystems "$s" --baseline "$dir/b$i.json" >/dev/null 2>&1 &
  pids+=($!); i=$((i+1))
done
trap 'kill "${pids[@]}" "$sp" 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 3
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {print s}'; }
before=()
for p in "${pids[@]}"; do before+=("$(cpu "$p")"); done
sleep "$secs"
for j in "${!pids[@]}"; do
  after=$(cpu "${pids[$j]}")
  echo "$(( (after - before[j]) / 1000000 )) ms  ${*:$((j+1)):1}"
done
