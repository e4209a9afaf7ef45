#!/usr/bin/env python3
"""Writes link/cycle.ld: the functions a steady `fdir watch` cycle runs, laid
out together at the start of the release binary's code.

A watch at a 1 s interval wakes on cold caches and TLBs, and every page of
its own code a cycle touches costs a miss or a page walk (BENCHMARKS.md,
"the daemon's CPU share"). Left to the linker, the 200 or so functions of a
cycle are spread over some 90 pages of a 1.8 MB text; listed in a linker
script they fit in about 50.

How: a release build of `fdir watch --interval 1s` of one `sleep` runs under
valgrind's callgrind, instrumented only after its first vote of the baseline
file (the start-up and the one full vote are not the steady state), and
every function of the binary that ran is listed. Valgrind hides SHA-NI from
the program, so the SHA-NI compression function (`x86_sha`) is added by name.

The script names input sections by pattern, without the hash rustc appends
to each symbol (or a crate's disambiguator in v0 names), so that it outlives
toolchain updates; a pattern that would match more than one function (the
instantiations of one generic function) keeps its exact name instead. A
name that no longer exists matches nothing: the layout degrades, the build
never breaks. Run this again after large changes to the cycle:

    apt-get install valgrind     # once
    scripts/cycle-layout.py      # rewrites link/cycle.ld
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from fdir_watch import watch_a_sleep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "link", "cycle.ld")
# Functions at least this large go last: only a few of their pages run.
BIG = 8192


def symbols(binary):
    """Function symbols of the binary: name -> (address, size)."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tT":
            syms[f[3]] = (int(f[0], 16), int(f[1], 16))
    return syms


def profile(binary, tmp, settle, seconds):
    """The functions of `binary` that ran in a steady watch cycle (callgrind)."""
    out = os.path.join(tmp, "callgrind.out")
    target, watch = watch_a_sleep(
        binary, os.path.join(tmp, "baseline.json"), stderr=subprocess.DEVNULL,
        wrap=["valgrind", "--tool=callgrind", "--demangle=no", "--instr-atstart=no", "--compress-strings=no",
              f"--callgrind-out-file={out}"])
    try:
        time.sleep(settle)
        subprocess.run(["callgrind_control", "-i", "on", str(watch.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        # Off before the signal: the watch's end is not a cycle.
        subprocess.run(["callgrind_control", "-i", "off", str(watch.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=60)
    finally:
        watch.kill()
        watch.wait()
        target.kill()
        target.wait()
    # A function is listed if it ran instructions of its own: one that only
    # called (the frames under the loop, entered before the profile began)
    # has nothing but call lines.
    ran, ob, fn, call = set(), None, None, False
    with open(out) as f:
        for line in f:
            if line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("fn="):
                # Valgrind names no object for code outside `.text`: the
                # functions an earlier layout moved. Names not in the binary's
                # symbols are dropped later.
                fn = line[3:].strip() if ob in (binary, "???") else None
            elif line.startswith("calls="):
                call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if fn is not None and not call and any(c != "0" for c in line.split()[1:]):
                    ran.add(fn)
                call = False
    return ran


def pattern(name):
    """The section pattern of a function, without rustc's hashes."""
    name = re.sub(r"17h[0-9a-f]{16}E$", "17h*", name)
    return re.sub(r"Cs[0-9a-zA-Z]+_", "Cs*_", name)


def glob_matches(pat, names):
    rx = re.compile("^" + re.escape(pat).replace(r"\*", ".*") + "$")
    return sum(1 for n in names if rx.match(n))


def main():
    if shutil.which("valgrind") is None:
        sys.exit("cycle-layout: valgrind is needed (apt-get install valgrind)")
    subprocess.run(["cargo", "build", "--release", "--bin", "fdir"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "fdir")
        shutil.copy(os.path.join(ROOT, "target", "release", "fdir"), binary)
        syms = symbols(binary)
        # The first vote of the file comes after 10 cycles (at least 5 s).
        ran = profile(binary, tmp, settle=13, seconds=25)
    ran |= {n for n in syms if "x86_sha" in n}
    ran.discard("main")
    known = [n for n in ran if n in syms]
    if len(known) < 50:
        sys.exit(f"cycle-layout: only {len(known)} functions ran; is the binary built with symbols?")
    known.sort(key=lambda n: (syms[n][1] >= BIG, syms[n][0]))
    lines = []
    for n in known:
        p = pattern(n)
        lines.append(p if glob_matches(p, syms) == 1 else n)
    size = sum(syms[n][1] for n in known)
    with open(OUT, "w") as f:
        f.write("/* The code of a steady `fdir watch` cycle, laid out together at the start\n")
        f.write("   of the text (build.rs passes this script to the linker for release builds\n")
        f.write("   on Linux). Written by scripts/cycle-layout.py from a callgrind profile:\n")
        f.write(f"   {len(known)} functions, {size} bytes. Order and content are a matter of\n")
        f.write("   speed only: a pattern that matches nothing is ignored. */\n")
        f.write("SECTIONS\n{\n  .text.fdir_cycle :\n  {\n")
        for p in lines:
            f.write(f"    *(.text.{p})\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"cycle-layout: {len(known)} functions ({size} bytes) written to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
