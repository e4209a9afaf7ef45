#!/usr/bin/env bash
# Whole-node watches of fdir builds side by side (BENCHMARKS.md, the task
# table): for each round and each binary in turn, `watch --all --interval 1s
# --format json` of every process, then, after an 8 s start-up, its CPU over
# SECONDS (utime + stime of /proc/PID/stat: every thread, exited workers
# included) divided by the check events it printed meanwhile. Run it on the
# node to be measured (scripts/idle-node.sh start), as root.
#
#   scripts/node-watch-ab.sh 20 3 /tmp/fdir-before target/release/fdir
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,10p "$0" >&2; exit 2; }
seconds=$1; rounds=$2; shift 2
tick=$(getconf CLK_TCK)
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    dir=$(mktemp -d)
    "$bin" watch --all --interval 1s --format json --baseline "$dir/b.json" > "$dir/out" 2>/dev/null &
    pid=$!
    sleep 8
    c0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); n0=$(grep -c '"event":"check"' "$dir/out" || true)
    sleep "$seconds"
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); n1=$(grep -c '"event":"check"' "$dir/out" || true)
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    cycles=$((n1 - n0))
    echo "$bin: $(( (c1 - c0) * 1000 / tick / (cycles > 0 ? cycles : 1) )) ms a cycle over $cycles cycles"
    rm -rf "$dir"
  done
done
