#!/usr/bin/env python3
"""The import graph between fdir's modules, and its cycles.

An edge A -> B is a path into module B written in module A: a `use crate::...`
(groups `{...}` expanded), a `use super::...`, or a `crate::b::...` path in the
code. A name re-exported at the crate root (`use crate::{Error, Snapshot}`) is
an edge to the module that defines it (from the root's `pub use` lines).
`#[cfg(test)]` modules are left out: a test may import what it tests.

By default a node is a top-level module (`observe/code.rs` is `observe`);
`--files` makes each file a node. The library and the binary (`src/main.rs`,
`src/cli/`) are separate crates and separate graphs.

Prints the edges with --edges, then every strongly connected component of more
than one module, the pairs that import each other, and the count of elementary
cycles (listed with --cycles); exits 1 when there is a cycle (with --check), so
CI can hold the line. The binary's graph is always by file.

    python3 scripts/import-cycles.py [--files] [--edges] [--cycles] [--check]
    python3 scripts/import-cycles.py --arrows ARCHITECTURE.md

`--arrows FILE` checks the arrows a map claims: every line `A -> B, C` of
the fenced ```arrows blocks of FILE must be an import of B (and C) written
in A. A node is a library module (`monitor`) or a file of the binary
(`cli::watch`); the binary's edges into the library are its `fdir::...`
paths. Exits 1, naming them, when an arrow is not an import.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")


def module_of(path, crate_dir):
    rel = os.path.relpath(path, crate_dir)[:-3]  # strip .rs
    parts = rel.split(os.sep)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip(text):
    # test modules: from `#[cfg(test)]` + `mod` to the end of the block
    out = []
    i = 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth = 0
        j = m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    out.append(text[i:])
    text = "".join(out)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]"""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^([^{]*?)\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"\bas\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        items.append(cur)
    res = []
    for it in items:
        for e in expand(it):
            res.append(prefix + e)
    return res


def paths_in(text, module):
    """absolute paths (tuples of segments, after `crate`) named in a file"""
    found = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand(m.group(1)):
            segs = [s for s in p.split("::") if s]
            if not segs:
                continue
            if segs[0] == "crate":
                found.append(tuple(segs[1:]))
            elif segs[0] in ("super", "self"):
                base = list(module)
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super" and base:
                        base.pop()
                    segs = segs[1:]
                found.append(tuple(base + segs))
    for m in re.finditer(r"\bcrate((?:::\w+)+)", text):
        found.append(tuple(s for s in m.group(1).split("::") if s))
    return found


def reexports(root):
    """names re-exported at a crate's root: name -> the module path it is in"""
    out = {}
    with open(root) as f:
        for m in re.finditer(r"\bpub\s+use\s+([^;]+);", strip(f.read())):
            for p in expand(m.group(1)):
                segs = [s for s in p.split("::") if s]
                if segs and segs[0] == "crate":
                    segs = segs[1:]
                if len(segs) >= 2:
                    out[segs[-1]] = tuple(segs[:-1])
    return out


def graph(crate_dir, root_file, exclude, files):
    mods = {}
    for dirpath, _, names in os.walk(crate_dir):
        for n in names:
            if not n.endswith(".rs"):
                continue
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, crate_dir)
            if any(rel == e or rel.startswith(e + os.sep) for e in exclude):
                continue
            mods[module_of(p, crate_dir)] = p
    root = os.path.join(crate_dir, root_file)
    mods.pop(module_of(root, crate_dir), None)
    reexport = reexports(root)

    def resolve(segs):
        if segs and (segs[0],) not in mods and segs[0] in reexport:
            segs = reexport[segs[0]] + tuple(segs[1:])
        for k in range(len(segs), 0, -1):
            if tuple(segs[:k]) in mods:
                return tuple(segs[:k])
        return None

    def node(mod):
        return "::".join(mod) if files else mod[0]

    edges = {}
    for mod, path in mods.items():
        with open(path) as f:
            text = strip(f.read())
        for segs in paths_in(text, mod):
            target = resolve(segs)
            if target is None:
                continue
            a, b = node(mod), node(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    nodes = sorted({node(m) for m in mods})
    return nodes, edges


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def cycles(comp, edges, limit=50):
    """elementary cycles inside one component, each from its smallest node"""
    comp = set(comp)
    found = []

    def dfs(start, v, path, seen):
        for w in sorted(edges.get(v, ())):
            if w not in comp or w < start:
                continue
            if w == start:
                found.append(path + [start])
                if len(found) >= limit:
                    return True
            elif w not in seen:
                seen.add(w)
                if dfs(start, w, path + [w], seen):
                    return True
                seen.discard(w)
        return False

    for s in sorted(comp):
        if dfs(s, s, [s], {s}):
            break
    return found


def binary_to_library():
    """edges from the binary's files (`cli::watch`) to library modules, by
    their `fdir::...` paths"""
    lib_nodes, _ = graph(SRC, "lib.rs", ["main.rs", "cli", "bin"], False)
    mods = set(lib_nodes)
    reexport = {name: path[0] for name, path in reexports(os.path.join(SRC, "lib.rs")).items()}
    edges = {}
    files = [os.path.join(SRC, "main.rs")]
    for dirpath, _, names in os.walk(os.path.join(SRC, "cli")):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".rs")]
    files.append(os.path.join(SRC, "cli.rs"))
    for path in files:
        if not os.path.exists(path):
            continue
        node = "::".join(module_of(path, SRC))
        with open(path) as f:
            text = strip(f.read())
        found = []
        for m in re.finditer(r"\buse\s+(fdir::[^;]+);", text):
            found += [p for p in expand(m.group(1))]
        found += re.findall(r"\bfdir((?:::\w+)+)", text)
        for p in found:
            segs = [s for s in p.split("::") if s and s != "fdir"]
            if not segs:
                continue
            target = segs[0] if segs[0] in mods else reexport.get(segs[0])
            if target:
                edges.setdefault(node, set()).add(target)
    return edges


def check_arrows(path):
    lib_nodes, lib_edges = graph(SRC, "lib.rs", ["main.rs", "cli", "bin"], False)
    exclude = ["lib.rs", "bin"] + [e for e in os.listdir(SRC) if e not in ("main.rs", "cli")]
    _, bin_edges = graph(SRC, "main.rs", exclude, True)
    edges = {}
    for e in (lib_edges, bin_edges, binary_to_library()):
        for a, bs in e.items():
            edges.setdefault(a, set()).update(bs)
    with open(path) as f:
        text = f.read()
    blocks = re.findall(r"^```arrows\n(.*?)^```", text, re.S | re.M)
    if not blocks:
        print(f"{path}: no ```arrows block")
        sys.exit(1)
    claimed, missing = 0, []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            a, _, bs = line.partition("->")
            a = a.strip()
            for b in (x.strip() for x in bs.split(",")):
                claimed += 1
                if b not in edges.get(a, ()):
                    missing.append(f"{a} -> {b}")
    print(f"{path}: {claimed} arrows, {len(missing)} not an import")
    for m in missing:
        print(f"  not an import: {m}")
    if missing:
        sys.exit(1)


def main():
    if "--arrows" in sys.argv:
        i = sys.argv.index("--arrows")
        check_arrows(sys.argv[i + 1] if i + 1 < len(sys.argv) else os.path.join(ROOT, "ARCHITECTURE.md"))
        return
    files = "--files" in sys.argv
    show_edges = "--edges" in sys.argv
    total = 0
    for name, root, exclude in (
        ("library", "lib.rs", ["main.rs", "cli", "bin"]),
        ("binary", "main.rs", ["lib.rs", "bin"] + [e for e in os.listdir(SRC) if e not in ("main.rs", "cli")]),
    ):
        nodes, edges = graph(SRC, root, exclude, files or name == "binary")
        n_edges = sum(len(v) for v in edges.values())
        comps = sccs(nodes, edges)
        cyc = [c for comp in comps for c in cycles(comp, edges, limit=100000)]
        mutual = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
        total += len(cyc)
        print(
            f"{name}: {len(nodes)} modules, {n_edges} edges, {len(comps)} cyclic components, "
            f"{len(cyc)} elementary cycles, {len(mutual)} mutual imports"
        )
        if show_edges:
            for a in sorted(edges):
                print(f"  {a} -> {', '.join(sorted(edges[a]))}")
        for comp in comps:
            print(f"  component: {' '.join(comp)}")
        for a, b in mutual:
            print(f"  mutual: {a} <-> {b}")
        if "--cycles" in sys.argv:
            for c in cyc:
                print(f"    cycle: {' -> '.join(c)}")
    if "--check" in sys.argv and total:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        pass
