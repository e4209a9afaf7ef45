#!/usr/bin/env python3
"""Counts the anomaly events of two root causes under a real `fdir watch`.

    sudo scripts/root-causes.py FDIR [N] [--all] [--interval 200ms]

N `sleep` processes (100 by default) are put in a new cgroup of the v1 pids
hierarchy (/sys/fs/cgroup/pids), beside a second cgroup with the same limits.
`FDIR watch` (the default subsystems; `--pid` for each, or `--all`) runs with
`--format json`. Then:

1. `pids.max` of the first cgroup is raised (1000 -> 2000): how many anomaly
   events name these processes (by `pid`, or in `pids`), and how many pids
   they name;
2. one process moves to the second cgroup (identical limits): how many
   anomaly events name it, and their severities.

Only this script's processes are counted. The cgroups and processes are
removed on every way out. Prints one JSON object.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HIERARCHY = "/sys/fs/cgroup/pids"


def main():
    fdir = os.path.abspath(sys.argv[1]) if os.sep in sys.argv[1] else sys.argv[1]
    rest = sys.argv[2:]
    n = int(rest[0]) if rest and rest[0].isdigit() else 100
    every = "--all" in rest
    interval = rest[rest.index("--interval") + 1] if "--interval" in rest else "200ms"
    tag = os.getpid()
    a, b = f"{HIERARCHY}/fdir-roots-a-{tag}", f"{HIERARCHY}/fdir-roots-b-{tag}"
    kids, watch, made = [], None, []
    try:
        for d in (a, b):
            os.mkdir(d)
            made.append(d)
            with open(f"{d}/pids.max", "w") as f:
                f.write("1000")
        for _ in range(n):
            k = subprocess.Popen(["sleep", "100000"])
            kids.append(k)
            with open(f"{a}/cgroup.procs", "w") as f:
                f.write(str(k.pid))
        ours = {k.pid for k in kids}
        tmp = tempfile.mkdtemp(prefix="fdir-roots-")
        args = [fdir, "watch", "--interval", interval, "--format", "json", "--baseline", f"{tmp}/baseline.json"]
        if every:
            args.append("--all")
        else:
            for k in kids:
                args += ["--pid", str(k.pid)]
        watch = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp)
        events, lock = [], threading.Lock()

        def read():
            for line in watch.stdout:
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                with lock:
                    events.append(v)

        threading.Thread(target=read, daemon=True).start()

        def checks():
            with lock:
                return [e["cycle"] for e in events if e.get("event") == "check"]

        def wait_checks(more, deadline=120):
            start = checks()
            base = max(start) if start else 0
            end = time.time() + deadline
            while time.time() < end:
                c = checks()
                if c and max(c) >= base + more:
                    return
                time.sleep(0.05)
            raise SystemExit("the watch did not check in time")

        wait_checks(1)
        mark = len(events)
        with open(f"{a}/pids.max", "w") as f:
            f.write("2000")
        wait_checks(6)

        def anomalies(since, about):
            with lock:
                got = events[since:]
            return [
                e
                for e in got
                if e.get("event") == "anomaly" and (e.get("pid") in about or about & set(e.get("pids", [])))
            ]

        raised = anomalies(mark, ours)
        named = set()
        for e in raised:
            named |= set(e.get("pids", [])) | {e.get("pid")}
        mark = len(events)
        mover = kids[0].pid
        with open(f"{b}/cgroup.procs", "w") as f:
            f.write(str(mover))
        wait_checks(6)
        moved = anomalies(mark, {mover})
        print(
            json.dumps(
                {
                    "fdir": fdir,
                    "processes": n,
                    "coverage": "--all" if every else "--pid",
                    "raise_events": len(raised),
                    "raise_pids_named": len(named & ours),
                    "raise_objects": sorted({e.get("object", "") for e in raised}),
                    "move_events": len(moved),
                    "move_subsystems": [e["subsystem"] for e in moved],
                    "move_severities": [e["severity"] for e in moved],
                    "move_changes": [c["text"] for e in moved for c in e["changes"]],
                }
            )
        )
    finally:
        if watch is not None:
            watch.terminate()
            try:
                watch.wait(10)
            except subprocess.TimeoutExpired:
                watch.kill()
        for k in kids:
            k.kill()
            k.wait()
        for d in made:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)


if __name__ == "__main__":
    main()
