#!/usr/bin/env bash
# What a drift that stays costs (BENCHMARKS.md, *A drift that stays*): for
# each round and each binary in turn, `watch --all --interval 1s --format
# json` of every process; after an 8 s start-up, its CPU a cycle over
# SECONDS while clean; then `pids.max` of the first cgroup of
# scripts/idle-node.sh (100 of its processes) is set to 1000, and, 4 s
# later, its CPU a cycle over SECONDS while that drift stays; then the limit
# is put back. CPU is every thread's (the first field of each
# /proc/PID/task/*/schedstat, in ns), divided by the check events printed
# meanwhile. Run it on the node to be measured, as root:
#
#   scripts/idle-node.sh start
#   scripts/drift-stays.sh 10 2 /tmp/fdir-before target/release/fdir
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,13p "$0" >&2; exit 2; }
seconds=$1; rounds=$2; shift 2
cg=/sys/fs/cgroup/pids/fdirbench1
[ -w "$cg/pids.max" ] || { echo "no $cg (scripts/idle-node.sh start, as root)" >&2; exit 2; }
cpu() { local s=0 t a rest; for t in /proc/"$1"/task/*/schedstat; do read -r a rest < "$t" || continue; s=$((s + a)); done; echo "$s"; }
checks() { grep -c '"event":"check"' "$1" || true; }
dir=$(mktemp -d)
pid=
trap 'echo max > "$cg/pids.max"; [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    rm -f "$dir/b.json"
    "$bin" watch --all --interval 1s --format json --baseline "$dir/b.json" > "$dir/out" 2>/dev/null &
    pid=$!
    sleep 8
    c0=$(cpu "$pid"); n0=$(checks "$dir/out"); sleep "$seconds"; c1=$(cpu "$pid"); n1=$(checks "$dir/out")
    echo 1000 > "$cg/pids.max"
    sleep 4
    c2=$(cpu "$pid"); n2=$(checks "$dir/out"); sleep "$seconds"; c3=$(cpu "$pid"); n3=$(checks "$dir/out")
    echo max > "$cg/pids.max"
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    pid=
    anomalies=$(grep -c '"event":"anomaly"' "$dir/out" || true)
    clean=$(( (c1 - c0) / 1000000 / ((n1 - n0) > 0 ? (n1 - n0) : 1) ))
    drifted=$(( (c3 - c2) / 1000000 / ((n3 - n2) > 0 ? (n3 - n2) : 1) ))
    echo "$bin: clean $clean ms a cycle, drift staying $drifted ms a cycle ($anomalies anomaly events)"
  done
done
