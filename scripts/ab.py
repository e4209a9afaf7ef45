#!/usr/bin/env python3
"""Interleaved timing of whole commands, for figures that must share a host's
noise (BENCHMARKS.md): each round runs every command once, in turn; prints
the median wall time of each and its ratio to the first command's.

Usage: scripts/ab.py ROUNDS NAME=COMMAND...
  A COMMAND is split like a shell line (no shell runs); @FILE inserts the
  words of FILE (a long argument list, such as the /proc files for sha256sum).

  scripts/ab.py 40 "sha=sha256sum @/tmp/files.txt" \
      "fdir=target/release/fdir check --all --baseline all500.json"
"""
import shlex, statistics, subprocess, sys, time


def words(command):
    out = []
    for w in shlex.split(command):
        if w.startswith("@"):
            with open(w[1:]) as f:
                out.extend(f.read().split())
        else:
            out.append(w)
    return out


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    cmds = [(a.split("=", 1)[0], words(a.split("=", 1)[1])) for a in sys.argv[2:]]
    times = {name: [] for name, _ in cmds}
    for _ in range(rounds):
        for name, argv in cmds:
            t = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times[cmds[0][0]])
    for name, _ in cmds:
        m = statistics.median(times[name])
        q = statistics.quantiles(times[name], n=4)
        print(f"{name:12s} median {m * 1e3:7.2f} ms  (quartiles {q[0] * 1e3:.2f}-{q[2] * 1e3:.2f})  ratio {m / base:.3f}")


if __name__ == "__main__":
    main()
