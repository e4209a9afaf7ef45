#!/usr/bin/env python3
"""Two fdir builds' whole-node watches measured in turns (BENCHMARKS.md).

Both run `watch --all --interval 1s --format json`, each with a baseline of
its own; while one is measured (its threads' CPU from schedstat, divided by
the check events it printed meanwhile), the other is stopped (SIGSTOP), so
neither wakes on the other's warm caches. Windows go B, A, A, B, ... ROUNDS
windows for each; each window starts 2.5 s after its watch resumes. Prints
each window's ms a cycle and the ratio of the medians (B / A). Run it on
the node to be measured (scripts/idle-node.sh start), as root.

    scripts/node-watch-turns.py BUILD_A BUILD_B [SECONDS_A_WINDOW [ROUNDS]]
"""
import glob
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

if len(sys.argv) < 3:
    sys.exit(__doc__)
builds = {"a": sys.argv[1], "b": sys.argv[2]}
window = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 8
work = tempfile.mkdtemp(prefix="fdir-turns-")


def start(name):
    out = open(os.path.join(work, f"{name}.log"), "w")
    return subprocess.Popen(
        [builds[name], "watch", "--all", "--interval", "1s", "--format", "json",
         "--baseline", os.path.join(work, f"{name}.json")],
        stdout=out, stderr=subprocess.DEVNULL)


def cpu_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a worker thread that exited meanwhile
    return total


def checks(name):
    with open(os.path.join(work, f"{name}.log")) as f:
        return sum(1 for line in f if '"event":"check"' in line)


watches = {"a": start("a")}
try:
    time.sleep(6)
    watches["a"].send_signal(signal.SIGSTOP)
    watches["b"] = start("b")
    time.sleep(6)
    per_cycle = {"a": [], "b": []}
    for t in range(2 * rounds):
        name = "a" if t % 4 in (1, 2) else "b"
        on, off = watches[name], watches["b" if name == "a" else "a"]
        off.send_signal(signal.SIGSTOP)
        on.send_signal(signal.SIGCONT)
        time.sleep(2.5)
        c0, n0 = cpu_ns(on.pid), checks(name)
        time.sleep(window)
        c1, n1 = cpu_ns(on.pid), checks(name)
        if n1 > n0:
            per_cycle[name].append((c1 - c0) / 1e6 / (n1 - n0))
finally:
    for w in watches.values():
        w.send_signal(signal.SIGCONT)
        w.send_signal(signal.SIGINT)
        w.wait()
    for f in glob.glob(os.path.join(work, "*")):
        os.unlink(f)
    os.rmdir(work)
a, b = statistics.median(per_cycle["a"]), statistics.median(per_cycle["b"])
print("A", " ".join(f"{x:.1f}" for x in per_cycle["a"]),
      "| B", " ".join(f"{x:.1f}" for x in per_cycle["b"]),
      f"| medians {a:.1f} / {b:.1f} ms a cycle, B/A = {b / a:.3f}")
