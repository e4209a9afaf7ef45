#!/usr/bin/env bash
# One process, two builds side by side (BENCHMARKS.md): four watches of one
# idle `sleep` at 100 ms, as a user runs them (triggers on): each build
# with the seed's three subsystems and with the nine defaults, all at the
# same time (one host's noise for all), each's CPU over SECONDS from the
# schedstat of its threads.
#
#   scripts/one-builds.sh 30 OLD_BINARY NEW_BINARY
set -euo pipefail
secs=$1; old=$2; new=$3
dir=$(mktemp -d)
sleep 100000 & sp=$!
pids=(); names=()
i=0
for bin in "$old" "$new"; do
  for s in memory-maps,seccomp,cgroups default; do
    args=(watch --pid "$sp" --interval 100ms --baseline "$dir/b$i.json")
    [ "$s" = default ] || args+=(--subsystems "$s")
    "$bin" "${args[@]}" >/dev/null 2>&1 &
    pids+=($!); names+=("$(basename "$bin") $s"); i=$((i+1))
  done
done
trap 'kill "${pids[@]}" "$sp" 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 3
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {print s}'; }
before=()
for p in "${pids[@]}"; do before+=("$(cpu "$p")"); done
sleep "$secs"
for j in "${!pids[@]}"; do
  after=$(cpu "${pids[$j]}")
  echo "$(( (after - before[j]) / 1000000 )) ms  ${names[$j]}"
done
