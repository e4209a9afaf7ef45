#!/usr/bin/env python3
"""Scaling measurements for BENCHMARKS.md: cost against processes and against
mappings, and `fdir check --all` next to `sha256sum` over the same files.

Usage: scripts/bench-scaling.py [--out DIR]   (after `cargo build --release`)

Writes DIR/scaling.json, DIR/scaling.md (tables) and DIR/scaling.svg (plot).
Needs root only for processes it may not read; starts and kills its own
`sleep` and `fdir-testee` processes.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FDIR = os.path.join(ROOT, "target/release/fdir")
TESTEE = os.path.join(ROOT, "target/release/fdir-testee")
SEED = "memory-maps,seccomp,cgroups"


def timed(cmd, runs=5, **kw):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(args):
    out = subprocess.run([FDIR, "bench", "--format", "json", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def processes(counts, tmp):
    rows = []
    for n in counts:
        procs = [subprocess.Popen(["sleep", "3600"]) for _ in range(n)]
        time.sleep(2.5)  # past the settle age
        base = os.path.join(tmp, f"all-{n}.json")
        subprocess.run([FDIR, "snapshot", "--all", "--subsystems", SEED, "--baseline", base, "--format", "json"],
                       stdout=subprocess.DEVNULL, check=True)
        payload = json.loads(open(base).read())["payload"]
        pids = [t["target"]["pid"] for t in payload["targets"]]
        files = [f"/proc/{p}/{f}" for p in pids for f in ("maps", "status", "cgroup")]
        check_s = timed([FDIR, "check", "--all", "--baseline", base, "--format", "json"])
        sha_s = timed(["sha256sum", *files])
        node = bench(["--only", "node", "--seconds", "1"])
        rows.append({
            "extra_processes": n,
            "processes": len(pids),
            "check_all_ms": check_s * 1e3,
            "sha256sum_ms": sha_s * 1e3,
            "cycle_ms": node["node_cycle_ms"],
            "cycle_per_process_us": node["node_per_process_us"],
        })
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        print(rows[-1], file=sys.stderr)
    return rows


def mappings(counts):
    rows = []
    for n in counts:
        t = subprocess.Popen([TESTEE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        t.stdout.readline()
        extra = max(0, n - 30)
        if extra:
            t.stdin.write(f"maps {extra}\n")
            t.stdin.flush()
            t.stdout.readline()
        time.sleep(2.2)
        b = bench(["--pid", str(t.pid), "--only", "check", "--seconds", "2"])
        rows.append({
            "mappings": b["maps_lines"],
            "check_us": b["check_seed_ns"] / 1e3,
            "floor_us": b["floor_seed_ns"] / 1e3,
            "ratio": b["ratio"],
        })
        t.kill()
        t.wait()
        print(rows[-1], file=sys.stderr)
    return rows


def svg(procs, maps):
    """Two small line plots side by side, no dependencies."""
    w, h, pad = 360, 240, 45

    def plot(x0, title, xs, series, xlabel, ylabel):
        xmax = max(xs) * 1.05
        ymax = max(v for _, vs, _ in series for v in vs) * 1.1
        px = lambda x: x0 + pad + (w - 2 * pad) * x / xmax
        py = lambda y: h - pad + 10 - (h - 2 * pad) * y / ymax
        s = [f'<text x="{x0 + w/2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
             f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="black"/>',
             f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(ymax)}" stroke="black"/>',
             f'<text x="{x0 + w/2}" y="{h - 5}" text-anchor="middle" font-size="11">{xlabel}</text>',
             f'<text x="{x0 + 12}" y="{h/2}" font-size="11" transform="rotate(-90 {x0 + 12} {h/2})" text-anchor="middle">{ylabel}</text>']
        for x in xs:
            s.append(f'<text x="{px(x)}" y="{py(0) + 14}" text-anchor="middle" font-size="10">{x}</text>')
        for frac in (0.5, 1.0):
            y = ymax / 1.1 * frac
            s.append(f'<text x="{px(0) - 4}" y="{py(y) + 3}" text-anchor="end" font-size="10">{y:.3g}</text>')
        for i, (name, vs, color) in enumerate(series):
            pts = " ".join(f"{px(x)},{py(y)}" for x, y in zip(xs, vs))
            s.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
            for x, y in zip(xs, vs):
                s.append(f'<circle cx="{px(x)}" cy="{py(y)}" r="3" fill="{color}"/>')
            s.append(f'<text x="{px(0) + 8}" y="{py(ymax) + 12 + 13 * i}" font-size="11" fill="{color}">{name}</text>')
        return s

    xs = [r["processes"] for r in procs]
    left = plot(0, "Cost against processes", xs, [
        ("fdir check --all (ms)", [r["check_all_ms"] for r in procs], "#1f77b4"),
        ("sha256sum, same files (ms)", [r["sha256sum_ms"] for r in procs], "#d62728"),
        ("watch cycle (ms)", [r["cycle_ms"] for r in procs], "#2ca02c"),
    ], "processes", "ms")
    mx = [r["mappings"] for r in maps]
    right = plot(w, "One check against mappings", mx, [
        ("check (us)", [r["check_us"] for r in maps], "#1f77b4"),
        ("floor (us)", [r["floor_us"] for r in maps], "#ff7f0e"),
    ], "mappings", "us")
    body = "\n".join(left + right)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{2*w}" height="{h}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target/bench"))
    ap.add_argument("--processes", default="100,500,1000")
    ap.add_argument("--mappings", default="30,1000,5000")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        procs = processes([int(x) for x in a.processes.split(",")], tmp)
    maps = mappings([int(x) for x in a.mappings.split(",")])
    json.dump({"processes": procs, "mappings": maps}, open(os.path.join(a.out, "scaling.json"), "w"), indent=1)
    md = ["| extra processes | processes checked | `fdir check --all` | `sha256sum` of their maps, status, cgroup | one `watch` cycle | per process |",
          "|---:|---:|---:|---:|---:|---:|"]
    for r in procs:
        md.append(f"| {r['extra_processes']} | {r['processes']} | {r['check_all_ms']:.1f} ms | {r['sha256sum_ms']:.1f} ms | {r['cycle_ms']:.2f} ms | {r['cycle_per_process_us']:.1f} us |")
    md += ["", "| mappings | one check (seed) | floor | ratio |", "|---:|---:|---:|---:|"]
    for r in maps:
        md.append(f"| {r['mappings']} | {r['check_us']:.1f} us | {r['floor_us']:.1f} us | {r['ratio']:.2f} |")
    open(os.path.join(a.out, "scaling.md"), "w").write("\n".join(md) + "\n")
    open(os.path.join(a.out, "scaling.svg"), "w").write(svg(procs, maps))
    print("\n".join(md))


if __name__ == "__main__":
    main()
