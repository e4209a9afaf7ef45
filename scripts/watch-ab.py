#!/usr/bin/env python3
"""Two fdir binaries' watches side by side, cycle by cycle (BENCHMARKS.md).

Starts N watches of each binary (`--interval 1s`, the seed subsystems, JSON
to a pipe), each of its own `sleep`, started alternately so that neither
binary always wakes first. After they settle, it polls each watch's on-CPU
time (`/proc/PID/schedstat`) ten times a second for SECONDS and takes every
increase as one cycle's cost. Prints, for each binary, the median cost of a
cycle with its quartiles and its share of a core: on a shared VM the median
of hundreds of cycles is far steadier than a total.

Usage: scripts/watch-ab.py SECONDS N BINARY_A BINARY_B

  scripts/watch-ab.py 90 4 /tmp/fdir-before target/release/fdir
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

from fdir_watch import watch_a_sleep


def cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    seconds, n = float(sys.argv[1]), int(sys.argv[2])
    tmp = tempfile.mkdtemp()
    # Copies: a rebuild while measuring must not replace a running binary.
    exe = {}
    for name, path in (("A", sys.argv[3]), ("B", sys.argv[4])):
        exe[name] = os.path.join(tmp, f"fdir-{name}")
        shutil.copy(path, exe[name])
    running = []
    try:
        for i in range(n):
            for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
                reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
                target, watch = watch_a_sleep(exe[name], os.path.join(tmp, f"{name}{i}.json"), stdout=reader.stdin)
                running.append((name, watch, target, reader))
                time.sleep(0.37)
        # Past the first vote of the baseline file (10 cycles).
        time.sleep(12)
        last = {w.pid: cpu_ns(w.pid) for _, w, _, _ in running}
        cycles = {"A": [], "B": []}
        total = {"A": 0, "B": 0}
        start = time.time()
        while time.time() - start < seconds:
            time.sleep(0.1)
            for name, w, _, _ in running:
                now = cpu_ns(w.pid)
                if now > last[w.pid]:
                    cycles[name].append((now - last[w.pid]) / 1000)
                    total[name] += now - last[w.pid]
                last[w.pid] = now
        elapsed = time.time() - start
    finally:
        for _, w, target, reader in running:
            for p in (w, target):
                p.kill()
                p.wait()
            reader.stdin.close()
            reader.wait()
        shutil.rmtree(tmp)
    for name, path in (("A", sys.argv[3]), ("B", sys.argv[4])):
        c = sorted(cycles[name])
        if not c:
            print(f"{name} {path}: no cycles seen")
            continue
        q = lambda x: c[int(x * (len(c) - 1))]
        share = total[name] / 1e9 / elapsed / n * 100
        print(f"{name} {path}: {len(c)} cycles, median {statistics.median(c):.1f} us "
              f"(quartiles {q(0.25):.1f}, {q(0.75):.1f}), {share:.4f}% of a core")


if __name__ == "__main__":
    main()
