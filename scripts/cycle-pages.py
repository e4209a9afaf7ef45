#!/usr/bin/env python3
"""The pages a steady `fdir watch` cycle touches, by mapping (BENCHMARKS.md).

Starts `BINARY watch --pid P --interval 1s` (the seed subsystems) of a
`sleep`, lets it settle, then for each of CYCLES seconds clears the
referenced bits of its pages (`/proc/PID/clear_refs`), waits one cycle and
sums `Referenced` per mapping in `/proc/PID/smaps`. Prints each cycle's
KiB of the binary's code, of the heap and of all its mappings, then the
average per mapping. Deterministic where CPU time is not: a first touch
after a sleep is what a cold cycle pays for.

Usage: scripts/cycle-pages.py BINARY [CYCLES]
"""
import os, re, shutil, sys, tempfile, time

from fdir_watch import watch_a_sleep


def referenced(pid):
    out, key = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split()
                key = (os.path.basename(fields[5]) if len(fields) > 5 else "[anonymous]", fields[1])
            elif line.startswith("Referenced:") and key:
                kib = int(line.split()[1])
                if kib:
                    out[key] = out.get(key, 0) + kib
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    cycles = int(sys.argv[2]) if len(sys.argv) == 3 else 12
    tmp = tempfile.mkdtemp()
    exe = os.path.join(tmp, "fdir-measured")
    shutil.copy(sys.argv[1], exe)
    target, watch = watch_a_sleep(exe, os.path.join(tmp, "baseline.json"))
    try:
        time.sleep(4)
        total = {}
        for i in range(cycles):
            with open(f"/proc/{watch.pid}/clear_refs", "w") as f:
                f.write("1")
            time.sleep(1.0)
            r = referenced(watch.pid)
            for k, v in r.items():
                total[k] = total.get(k, 0) + v
            code = sum(v for (name, perms), v in r.items() if name == "fdir-measured" and "x" in perms)
            heap = r.get(("[heap]", "rw-p"), 0)
            print(f"cycle {i}: code {code} KiB, heap {heap} KiB, all {sum(r.values())} KiB")
        print("average per cycle:")
        for (name, perms), v in sorted(total.items(), key=lambda kv: -kv[1]):
            print(f"  {v / cycles:8.1f} KiB  {name} {perms}")
    finally:
        for p in (watch, target):
            p.kill()
            p.wait()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
