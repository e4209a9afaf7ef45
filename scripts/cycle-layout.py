#!/usr/bin/env python3
"""Writes link/cycle.ld: the functions a steady `fdir watch` cycle runs, and
the read-only data it reads, laid out together at the start of the release
binary's code and read-only data.

A watch at a 1 s interval wakes on cold caches and TLBs, and every page of
its own a cycle touches costs a miss or a page walk (BENCHMARKS.md, "fewer
pages a cycle"). Left to the linker, the 120 or so functions of a cycle are
spread over some 50 pages of a 1.8 MB text, and the 50 or so cache lines of
read-only data it reads (jump tables, constants, JSON keys, the self-test's
vectors) over 16 pages of `.rodata`; listed in a linker script they fit in
about 20 and 3.

How: a release build of `fdir watch --interval 1s` of one `sleep` runs under
valgrind's callgrind, dumped in three parts: its start-up (until past its
first vote of the baseline file: the start-up and the one full vote are not
the steady state), 25 s of steady cycles, and its end. Every function of the
binary that ran instructions of its own in the steady part is listed in
`.text.fdir_cycle`; those that ran only in the start-up or the end, of this
watch (which takes its own baseline) and of a second one that resumes from
a file, follow in `.text.fdir_watch`, so that the code a watch never runs
is kept apart and stays out of its resident memory (a page fault maps the
pages around it too). Valgrind hides SHA-NI from the program,
so the SHA-NI compression function (`x86_sha`) is added by name. The data
comes from a second run under valgrind's lackey (every load and store),
mapped to the linker's input sections through a linker map of the same
build; merged strings (`.rodata.str*`) stay where they are.

The script names input sections by pattern, without the hash rustc appends
to each symbol (or a crate's disambiguator in v0 names), so that it outlives
toolchain updates; a pattern that would match more than one section keeps
its exact name instead. The flight build uses v0 names (`FLIGHT_ENV` below,
shared with scripts/flight-build.py), in which a generic function's instantiations differ by their type arguments;
with legacy names they differed only by a hash, which changed whenever
unrelated code did.
Unnamed constants (`.Lanon.<crate hash>.<n>`) can only be named exactly,
and their numbers move when their crate's code changes: of the layout, they
are what goes stale first. A name that no longer exists matches nothing:
the layout degrades, the build never breaks. Run this again after large
changes to the cycle:

    apt-get install valgrind     # once
    scripts/cycle-layout.py      # rewrites link/cycle.ld (about 3 minutes)
"""

import bisect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from fdir_watch import watch_a_sleep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The watch's trigger sources under valgrind: every default one but eBPF,
# whose system calls valgrind does not emulate (with it, the watch stopped
# after its first check, and the profiles held no steady cycle).
UNDER_VALGRIND = ["--triggers", "connector,mountinfo,inotify"]
# The flight build: its own target directory (its flags differ from the
# default build's, which would otherwise be rebuilt each time), v0 symbol
# names and the layout on.
FLIGHT_TARGET = os.path.join("target", "flight")


def flight_env():
    env = dict(os.environ)
    env["RUSTFLAGS"] = (env.get("RUSTFLAGS", "") + " -C symbol-mangling-version=v0").strip()
    env["FDIR_CYCLE_LAYOUT"] = "1"
    env["CARGO_TARGET_DIR"] = os.path.join(ROOT, FLIGHT_TARGET)
    return env

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


# The first vote of the baseline file comes after 10 cycles (and at least
# 5 s): the steady state is counted from the check of this cycle on.
STEADY_CYCLE = 12


def steady(watch, cycle=STEADY_CYCLE):
    """Waits for the watch's `check` event of `cycle` (its JSON on a pipe),
    then drains the rest of its output on a thread. Cycles, not seconds:
    under valgrind on a loaded host the start-up alone took over a minute,
    and a profile that waited a fixed 15 s held no steady cycle."""
    for line in watch.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "check" and event.get("cycle", 0) >= cycle:
            threading.Thread(target=lambda: [None for _ in watch.stdout], daemon=True).start()
            return
    sys.exit(f"cycle-layout: the watch ended before its check of cycle {cycle}")


def profile(binary, tmp, seconds, fresh):
    """The functions of `binary` that ran in a watch (callgrind), in three
    parts: its start-up (until its check of STEADY_CYCLE, past its first
    vote of the baseline file), its steady cycles (the next `seconds`), and
    its end (SIGINT). With `fresh`, the watch takes its own baseline, as on
    its first start; otherwise it resumes from a file."""
    out = os.path.join(tmp, f"callgrind-{'fresh' if fresh else 'resumed'}.out")
    target, watch = watch_a_sleep(
        binary, os.path.join(tmp, f"baseline-{fresh}.json"), stderr=subprocess.DEVNULL, fresh=fresh,
        stdout=subprocess.PIPE, extra=UNDER_VALGRIND, wrap=["valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
              f"--callgrind-out-file={out}"])
    dump = ["callgrind_control", "-d", str(watch.pid)]
    try:
        steady(watch)
        subprocess.run(dump, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)
        subprocess.run(dump, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=60)
    finally:
        watch.kill()
        watch.wait()
        target.kill()
        target.wait()
    # The dumps in order (callgrind numbers them; the last may have none).
    parts = sorted((p for p in os.listdir(tmp) if p.startswith(os.path.basename(out))),
                   key=lambda p: int(p.rsplit(".", 1)[1]) if p.rsplit(".", 1)[1].isdigit() else 1 << 30)
    if len(parts) != 3:
        sys.exit(f"cycle-layout: expected three callgrind dumps, found {parts}")
    return [ran_in(os.path.join(tmp, p), binary) for p in parts]


def ran_in(path, binary):
    """The functions of `binary` with instructions of their own in a
    callgrind dump: one that only called (the frames under the loop, entered
    before the dump's part began) has nothing but call lines."""
    ran, ob, fn, call = set(), None, None, False
    with open(path) as f:
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


def data_profile(binary, tmp, seconds):
    """Offsets into `binary` of the data a steady watch cycle reads or
    writes (lackey), counted from the start of its image."""
    fifo = os.path.join(tmp, "lackey.fifo")
    os.mkfifo(fifo)
    target, watch = watch_a_sleep(
        binary, os.path.join(tmp, "baseline-lackey.json"), stderr=subprocess.DEVNULL, extra=UNDER_VALGRIND,
        stdout=subprocess.PIPE,
        wrap=["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={fifo}"])
    touched, rest, base, start = set(), b"", None, None
    # The trace is read (and dropped) from the start, or valgrind would
    # block on the full FIFO and the watch never reach its steady state.
    reached = threading.Event()
    threading.Thread(target=lambda: (steady(watch), reached.set()), daemon=True).start()
    try:
        fd = os.open(fifo, os.O_RDONLY)
        while start is None or time.monotonic() - start < seconds:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            if not reached.is_set():
                continue
            if start is None:
                start = time.monotonic()
            if base is None:
                base = image_base(watch.pid, binary)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                # " L addr,size", " S ...", " M ...": data; "I ...": code.
                if line[:1] == b" ":
                    try:
                        touched.add(int(line[3:].split(b",")[0], 16) - base)
                    except ValueError:
                        pass
        os.close(fd)
    finally:
        for p in (watch, target):
            p.kill()
            p.wait()
    return touched


def image_base(pid, binary):
    """Where the client's `binary` is loaded (valgrind's own process)."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 5 and fields[5] == binary and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    sys.exit("cycle-layout: the profiled binary is not mapped in its process")


def input_sections(map_file):
    """The input sections of a linker map: (address, size, output, name)."""
    out, current = [], None
    for line in open(map_file):
        m = re.match(r"\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s(\s*)(\S.*)$", line)
        if not m:
            continue
        addr, size, name = int(m.group(1), 16), int(m.group(2), 16), m.group(4)
        if not m.group(3):
            current = name
        elif ":(" in name:
            out.append((addr, size, current, name[name.index(":(") + 2:-1]))
    return sorted(out)


def hot_rodata(touched, sections):
    """The read-only input sections holding a touched offset, by address."""
    starts = [s[0] for s in sections]
    hot = {}
    for off in touched:
        i = bisect.bisect_right(starts, off) - 1
        if i >= 0:
            addr, size, output, name = sections[i]
            if output.startswith(".rodata") and addr <= off < addr + max(size, 1) and not name.startswith(".rodata.str"):
                hot[name] = addr
    return sorted(hot, key=hot.get)


def pattern(name):
    """The section pattern of a function, without rustc's hashes."""
    name = re.sub(r"17h[0-9a-f]{16}E$", "17h*", name)
    return re.sub(r"Cs[0-9a-zA-Z]+_", "Cs*_", name)


def demangled(names):
    """Each symbol's demangled name (c++filt reads rustc's v0 names), without
    the crates' disambiguators: `fdir::cli::watch::run`. Written beside each
    function of the lists, it is what tests/it/cycle_layout.rs checks against
    the source (a function renamed or moved makes the lists stale)."""
    names = list(names)
    out = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return {n: re.sub(r"\[[0-9a-f]{8,}\]", "", d).replace("*/", "* /") for n, d in zip(names, out)}


def glob_matches(pat, names):
    rx = re.compile("^" + re.escape(pat).replace(r"\*", ".*") + "$")
    return sum(1 for n in names if rx.match(n))


def named(name, names):
    """How the layout names a section: by its pattern, or exactly where the
    pattern would match more than one of `names`."""
    p = pattern(name)
    return p if glob_matches(p, names) == 1 else name


def main():
    if shutil.which("valgrind") is None:
        sys.exit("cycle-layout: valgrind is needed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        # The map names the input sections the data profile falls in; the
        # same build, so the same addresses.
        map_file = os.path.join(tmp, "fdir.map")
        subprocess.run(["cargo", "rustc", "--release", "--bin", "fdir", "--", "-C", f"link-arg=-Wl,-Map={map_file}"],
                       cwd=ROOT, check=True, env=flight_env())
        binary = os.path.join(tmp, "fdir")
        shutil.copy(os.path.join(ROOT, FLIGHT_TARGET, "release", "fdir"), binary)
        syms = symbols(binary)
        # The first vote of the file comes after 10 cycles (at least 5 s).
        fresh_start, ran, fresh_end = profile(binary, tmp, seconds=25, fresh=True)
        resumed_start, _, resumed_end = profile(binary, tmp, seconds=2, fresh=False)
        sections = input_sections(map_file)
        data = hot_rodata(data_profile(binary, tmp, seconds=25), sections)
    ran |= {n for n in syms if "x86_sha" in n}
    ran.discard("main")
    known = [n for n in ran if n in syms]
    # The rest of a watch's code (start-up, the file vote, the end) next:
    # whatever the watch never runs then stays out of its memory, since a
    # page fault maps the pages around it too (64 KiB).
    rest = (fresh_start | fresh_end | resumed_start | resumed_end) - ran
    rest = sorted((n for n in rest if n in syms), key=lambda n: syms[n][0])
    if len(known) < 50:
        sys.exit(f"cycle-layout: only {len(known)} functions ran; is the binary built with symbols?")
    if len(data) < 5:
        sys.exit(f"cycle-layout: a cycle read only {len(data)} read-only sections; did lackey run?")
    known.sort(key=lambda n: (syms[n][1] >= BIG, syms[n][0]))
    plain = demangled(known + rest)
    lines = [(named(n, syms), plain[n]) for n in known]
    rest_lines = [(named(n, syms), plain[n]) for n in rest]
    rodata_names = [name for _, _, output, name in sections if output.startswith(".rodata")]
    data_lines = [named(n, rodata_names) for n in data]
    size = sum(syms[n][1] for n in known)
    rest_size = sum(syms[n][1] for n in rest)
    with open(OUT, "w") as f:
        f.write("/* The code and read-only data of a steady `fdir watch` cycle, laid out\n")
        f.write("   together at the start of the text and of the read-only data (build.rs\n")
        f.write("   passes this script to the linker in the flight build only: a release\n")
        f.write("   build on Linux with FDIR_CYCLE_LAYOUT=1, scripts/flight-build.py). Written\n")
        f.write("   by scripts/cycle-layout.py from a callgrind and a lackey profile:\n")
        f.write(f"   {len(known)} functions, {size} bytes; {len(data)} read-only sections. Then the\n")
        f.write(f"   rest of a watch's code: {len(rest)} functions, {rest_size} bytes. Order and\n")
        f.write("   content are a matter of speed only: a pattern that matches nothing is\n")
        f.write("   ignored. */\n")
        f.write("SECTIONS\n{\n  .text.fdir_cycle :\n  {\n")
        # LLVM puts a function it deems cold in `.text.unlikely.<name>`.
        for p, name in lines:
            f.write(f"    *(.text.{p} .text.unlikely.{p}) /* {name} */\n")
        f.write("  }\n  .text.fdir_watch :\n  {\n")
        for p, name in rest_lines:
            f.write(f"    *(.text.{p} .text.unlikely.{p}) /* {name} */\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
        f.write("SECTIONS\n{\n  .rodata.fdir_cycle :\n  {\n")
        for p in data_lines:
            f.write(f"    *({p})\n")
        f.write("  }\n}\nINSERT BEFORE .rodata;\n")
    print(f"cycle-layout: {len(known)} functions ({size} bytes) and {len(data)} read-only sections, "
          f"then {len(rest)} functions of the rest of a watch ({rest_size} bytes), "
          f"written to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
