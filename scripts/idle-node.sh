#!/usr/bin/env bash
# The node of issue 19's figures: N idle `sleep` processes (default 500) in
# C cgroups (default 5) of the v1 `pids` hierarchy, fdirbench1..C.
#
#   sudo scripts/idle-node.sh start [N] [C]
#   sudo scripts/idle-node.sh stop
#
# `stop` kills the processes in those cgroups and removes the cgroups.
set -euo pipefail
root=/sys/fs/cgroup/pids
case "${1:-}" in
  start)
    n=${2:-500}; c=${3:-5}
    [ -d "$root" ] || { echo "no v1 pids hierarchy at $root" >&2; exit 2; }
    for g in $(seq 1 "$c"); do mkdir -p "$root/fdirbench$g"; done
    for i in $(seq 1 "$n"); do
      g=$(( i % c + 1 ))
      setsid sh -c "echo \$\$ > $root/fdirbench$g/cgroup.procs; exec sleep 100000" </dev/null >/dev/null 2>&1 &
    done
    sleep 3
    echo "$(cat "$root"/fdirbench*/cgroup.procs | wc -l) processes in $c cgroups of $root"
    ;;
  stop)
    for d in "$root"/fdirbench*; do
      [ -d "$d" ] || continue
      while read -r p; do kill "$p" 2>/dev/null || true; done < "$d/cgroup.procs"
    done
    sleep 1
    for d in "$root"/fdirbench*; do [ -d "$d" ] && rmdir "$d"; done
    echo "stopped"
    ;;
  *) sed -n 2,8p "$0"; exit 2 ;;
esac
