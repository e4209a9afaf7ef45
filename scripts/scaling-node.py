#!/usr/bin/env python3
"""The cost of the default configuration against the number of processes
and of distinct kernel objects (issue 19's scaling curve).

For each point (N idle `sleep` processes spread over G cgroups of the v1
`pids` hierarchy, or of the v2 hierarchy where there is no v1 one), with
the release build and the default subsystems:

- `fdir snapshot --all`: the baseline file's size, and its distinct record
  sets per subsystem (the objects: version 2 stores each once);
- `fdir check --all` against that file, and `sha256sum` of every process's
  `maps`, `status` and `cgroup`, interleaved, medians;
- `fdir watch --all --interval 1s --format json`: its CPU time a cycle over
  a window after its start-up, and its peak resident memory (VmHWM).

Starts and kills its own processes and removes its cgroups, also on
failure or Ctrl-C. Writes target/bench/scaling-node.{json,md,svg}.

    cargo build --release
    python3 scripts/scaling-node.py                      # 500 1000 2000 5000, 5 and 50 cgroups
    python3 scripts/scaling-node.py --points 500:5,1000:5 --window 10
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FDIR = os.path.join(ROOT, "target", "release", "fdir")
OUT = os.path.join(ROOT, "target", "bench")
V1 = "/sys/fs/cgroup/pids"
PREFIX = "fdirscale"


def cgroup_root():
    if os.path.isdir(V1) and os.path.exists(os.path.join(V1, "cgroup.procs")):
        return V1
    return "/sys/fs/cgroup"


class Node:
    """N sleeps in G cgroups; cleaned up on exit."""

    def __init__(self, n, g):
        self.root = cgroup_root()
        self.dirs = [os.path.join(self.root, f"{PREFIX}{i}") for i in range(g)]
        self.procs = []
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        for i in range(n):
            d = self.dirs[i % g]
            # The child joins its cgroup before it becomes sleep.
            p = subprocess.Popen(
                ["sh", "-c", f"echo $$ > {d}/cgroup.procs && exec sleep 100000"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs.append(p)
        time.sleep(3)  # past fdir's settle time for young processes

    def close(self):
        for p in self.procs:
            try:
                p.kill()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def node_files():
    files = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        maps = f"/proc/{name}/maps"
        try:
            with open(maps, "rb") as f:
                if not f.read(1):
                    continue
        except OSError:
            continue
        files += [maps, f"/proc/{name}/status", f"/proc/{name}/cgroup"]
    return files


def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t, r.returncode


def cpu_ns(pid):
    # Every thread's on-CPU time (schedstat), so helper threads count.
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def vmhwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def watch_cost(baseline, window):
    """CPU a cycle and peak RSS of `watch --all --interval 1s` (default subsystems)."""
    p = subprocess.Popen(
        [FDIR, "watch", "--all", "--interval", "1s", "--format", "json", "--baseline", baseline],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        checks, targets, c0, t0, start = 0, 0, None, None, time.monotonic()
        for line in p.stdout:
            if '"event":"check"' not in line:
                continue
            checks += 1
            targets = json.loads(line).get("targets", targets)
            if checks == 3:  # past the first, whole round and its start-up
                c0, t0, n0 = cpu_ns(p.pid), time.monotonic(), checks
            if c0 is not None and time.monotonic() - t0 >= window:
                c1, n1 = cpu_ns(p.pid), checks
                return {
                    "cycle_cpu_ms": (c1 - c0) / 1e6 / max(n1 - n0, 1),
                    "cycles": n1 - n0,
                    "peak_rss_kib": vmhwm_kib(p.pid),
                    "watched": targets,
                }
            if time.monotonic() - start > window + 300:
                break
        raise RuntimeError("fdir watch --all gave no steady state")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def point(n, g, rounds, window):
    node = Node(n, g)
    base = os.path.join(OUT, f"scaling-node-{n}-{g}.json")
    try:
        if os.path.exists(base):
            os.remove(base)
        t, code = timed([FDIR, "snapshot", "--all", "--baseline", base])
        if code not in (0, 1):
            raise RuntimeError(f"snapshot --all exited {code}")
        with open(base) as f:
            payload = json.loads(f.read())["payload"]
        distinct = {sub: len(sets) for sub, sets in payload["records"].items()}
        processes = len(payload["targets"])
        files = node_files()
        fdir_t, sha_t = [], []
        for _ in range(rounds):
            fdir_t.append(timed([FDIR, "check", "--all", "--baseline", base])[0])
            sha_t.append(timed(["sha256sum"] + files)[0])
        w = watch_cost(base, window)
        sha = statistics.median(sha_t) * 1e3
        r = {
            "extra": n,
            "cgroups": g,
            "processes": processes,
            "distinct_sets": sum(distinct.values()),
            "distinct": distinct,
            "baseline_bytes": os.path.getsize(base),
            "snapshot_ms": t * 1e3,
            "check_all_ms": statistics.median(fdir_t) * 1e3,
            "sha256sum_ms": sha,
            **w,
        }
        r["check_all_ratio"] = r["check_all_ms"] / sha
        r["cycle_ratio"] = r["cycle_cpu_ms"] / sha
        return r
    finally:
        node.close()
        for f in (base, base + ".responses"):
            if os.path.exists(f):
                os.remove(f)


def svg(rows, path):
    """Four small panels against processes: check --all, cycle CPU, peak RSS, baseline size."""
    panels = [
        ("check --all, ms", "check_all_ms", "sha256sum_ms"),
        ("watch cycle CPU, ms", "cycle_cpu_ms", "sha256sum_ms"),
        ("peak RSS, MiB", "peak_rss_mib", None),
        ("baseline file, KB", "baseline_kb", None),
    ]
    for r in rows:
        r["peak_rss_mib"] = r["peak_rss_kib"] / 1024
        r["baseline_kb"] = r["baseline_bytes"] / 1000
    W, H, pw, ph = 900, 620, 380, 220
    colors = {5: "#1f77b4", 50: "#d62728"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">']
    out.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    out.append(
        '<text x="10" y="16" font-size="13">fdir, default subsystems, against processes '
        "(idle sleeps in 5 or 50 pids cgroups); dashed: sha256sum of every process's maps, status, cgroup</text>"
    )
    xmax = max(r["processes"] for r in rows) * 1.05
    for i, (title, key, ref) in enumerate(panels):
        ox, oy = 60 + (i % 2) * (pw + 70), 50 + (i // 2) * (ph + 70)
        ys = [r[key] for r in rows] + ([r[ref] for r in rows] if ref else [])
        ymax = max(ys) * 1.1 or 1
        out.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        out.append(f'<text x="{ox}" y="{oy - 6}" font-size="12">{title}</text>')
        for k in range(5):
            yv = ymax * k / 4
            y = oy + ph - ph * k / 4
            out.append(f'<text x="{ox - 5}" y="{y + 4}" text-anchor="end">{yv:.3g}</text>')
            xv = xmax * k / 4
            x = ox + pw * k / 4
            out.append(f'<text x="{x}" y="{oy + ph + 14}" text-anchor="middle">{xv:.0f}</text>')
        for g in sorted({r["cgroups"] for r in rows}):
            pts = sorted((r["processes"], r[key], r[ref] if ref else None) for r in rows if r["cgroups"] == g)

            def xy(x, y):
                return ox + pw * x / xmax, oy + ph - ph * y / ymax

            line = " ".join("%.1f,%.1f" % xy(x, y) for x, y, _ in pts)
            c = colors.get(g, "#2ca02c")
            out.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"/>')
            for x, y, _ in pts:
                cx, cy = xy(x, y)
                out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{c}"/>')
            if ref:
                line = " ".join("%.1f,%.1f" % xy(x, s) for x, _, s in pts)
                out.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-dasharray="4 3"/>')
        lx = ox + 8
        for j, g in enumerate(sorted(colors)):
            out.append(f'<text x="{lx}" y="{oy + 14 + 13 * j}" fill="{colors[g]}">{g} cgroups</text>')
    out.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">processes checked</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def table(rows):
    lines = [
        "| extra sleeps | cgroups | processes | distinct record sets (of which seccomp) | baseline file | `check --all` | `sha256sum` | ratio | watch cycle CPU | ratio | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['extra']} | {r['cgroups']} | {r['processes']} | {r['distinct_sets']} ({r['distinct'].get('seccomp', 0)}) "
            f"| {r['baseline_bytes'] / 1e6:.2f} MB | {r['check_all_ms']:.0f} ms | {r['sha256sum_ms']:.0f} ms "
            f"| {r['check_all_ratio']:.2f} | {r['cycle_cpu_ms']:.0f} ms | {r['cycle_ratio']:.2f} "
            f"| {r['peak_rss_kib'] / 1024:.1f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", default="500:5,1000:5,2000:5,5000:5,500:50,1000:50,2000:50,5000:50")
    ap.add_argument("--rounds", type=int, default=5, help="check --all and sha256sum runs a point (medians)")
    ap.add_argument("--window", type=float, default=15.0, help="seconds of watch measured a point")
    ap.add_argument("--plot", metavar="JSON", help="only write the table and plot of an earlier run's JSON")
    a = ap.parse_args()
    if a.plot:
        with open(a.plot) as f:
            rows = json.load(f)
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "scaling-node.md"), "w") as f:
            f.write(table(rows))
        svg(rows, os.path.join(OUT, "scaling-node.svg"))
        print(table(rows))
        return
    if not os.access(FDIR, os.X_OK):
        sys.exit(f"no {FDIR}: cargo build --release first")
    os.makedirs(OUT, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rows = []
    for p in a.points.split(","):
        n, g = (int(x) for x in p.split(":"))
        print(f"{n} sleeps in {g} cgroups ...", file=sys.stderr, flush=True)
        rows.append(point(n, g, a.rounds, a.window))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        with open(os.path.join(OUT, "scaling-node.json"), "w") as f:
            json.dump(rows, f, indent=1)
    with open(os.path.join(OUT, "scaling-node.md"), "w") as f:
        f.write(table(rows))
    svg(rows, os.path.join(OUT, "scaling-node.svg"))
    print(table(rows))


if __name__ == "__main__":
    main()
