#!/usr/bin/env python3
"""The flight build: a release `fdir` with a watch cycle's code laid out
together (link/cycle.ld), then a check of whether that layout is stale.

The default build (`cargo build --release`) is plain. This one adds rustc's
v0 symbol names and `FDIR_CYCLE_LAYOUT=1` (build.rs passes link/cycle.ld to
the linker), in a target directory of its own (target/flight), so that the
default build is not rebuilt by it. What it buys, and what it does not, is
in BENCHMARKS.md ("The flight build").

The layout names functions by pattern; a function renamed, inlined away or
removed since scripts/cycle-layout.py wrote the lists matches nothing, and
the linker silently ignores it. So after the build, every function pattern
of the lists is looked up in the binary's symbols, and the script says how
many still match: exit 0 when every function of the steady cycle is found,
1 when the lists have gone stale (run scripts/cycle-layout.py, which needs
valgrind, to write them again), 2 when the build itself failed.

Usage: scripts/flight-build.py [--check-only]
"""

import importlib.util
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location("cycle_layout", os.path.join(HERE, "cycle-layout.py"))
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)

LISTS = os.path.join(layout.ROOT, "link", "cycle.ld")
BINARY = os.path.join(layout.ROOT, layout.FLIGHT_TARGET, "release", "fdir")


def function_patterns():
    """The function patterns of each output section of link/cycle.ld:
    section name -> [pattern], in order."""
    sections, current = {}, None
    for line in open(LISTS):
        m = re.match(r"\s*(\.text\.\w+)\s*:", line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        m = re.match(r"\s*\*\((\S+)", line)
        if m and current and m.group(1).startswith(".text."):
            sections[current].append(m.group(1)[len(".text."):])
    return sections


def main():
    if "--check-only" not in sys.argv:
        build = subprocess.run(["cargo", "build", "--release", "--bin", "fdir"], cwd=layout.ROOT, env=layout.flight_env())
        if build.returncode != 0:
            print("flight-build: the release build failed", file=sys.stderr)
            return 2
    if not os.path.exists(BINARY):
        print(f"flight-build: no flight binary at {BINARY}: run without --check-only", file=sys.stderr)
        return 2
    names = list(layout.symbols(BINARY))
    stale_cycle = 0
    for section, patterns in function_patterns().items():
        missing = [p for p in patterns if layout.glob_matches(p, names) == 0]
        print(f"{section}: {len(patterns) - len(missing)} of {len(patterns)} functions found in {BINARY}")
        for p in missing[:10]:
            print(f"   not found: {p}")
        if len(missing) > 10:
            print(f"   ... and {len(missing) - 10} more")
        if section == ".text.fdir_cycle":
            stale_cycle = len(missing)
    if stale_cycle:
        print(f"flight-build: link/cycle.ld is stale ({stale_cycle} functions of the cycle are not in the binary): "
              "run scripts/cycle-layout.py (needs valgrind) to write it again", file=sys.stderr)
        return 1
    print("flight-build: the layout is current; the flight binary is", BINARY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
