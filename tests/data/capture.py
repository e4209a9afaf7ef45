#!/usr/bin/env python3
"""Captures the files fdir reads, for tests/it/captured.rs.

    capture.py proc PID DIR   # DIR/{a,b}: two captures of process PID, 0.7 s apart
    capture.py node DIR       # DIR/{a,b}: two captures of the node's kernel state

The layout is the one `Procfs::mock_files` / `Procfs::mock_node_files` read:
files of /proc/PID by their relative path; `ns/NAME` holds `DEV:INO` (or `-`
for a link that does not resolve); `cgroupfs/HIERARCHY/CGROUP/FILE` holds the
control files of every cgroup of the process and its ancestors (every
readable file, counters included, so the tests see them ignored); for the
node, `proc/...` and `sys/...` below /.
"""
import os
import sys
import time

SYSCTLS = [
    "kernel.kptr_restrict", "kernel.dmesg_restrict", "kernel.randomize_va_space",
    "kernel.unprivileged_bpf_disabled", "kernel.perf_event_paranoid", "kernel.yama.ptrace_scope",
    "kernel.modules_disabled", "kernel.kexec_load_disabled", "kernel.kexec_load_limit_panic",
    "kernel.kexec_load_limit_reboot", "kernel.io_uring_disabled", "kernel.io_uring_group", "kernel.sysrq",
    "kernel.core_pattern", "kernel.core_uses_pid", "kernel.modprobe", "kernel.panic_on_oops",
    "kernel.unprivileged_userns_clone", "kernel.apparmor_restrict_unprivileged_userns",
    "kernel.apparmor_restrict_unprivileged_unconfined", "kernel.seccomp.actions_logged",
    "user.max_user_namespaces", "fs.protected_hardlinks", "fs.protected_symlinks", "fs.protected_fifos",
    "fs.protected_regular", "fs.suid_dumpable", "vm.mmap_min_addr", "vm.mmap_rnd_bits",
    "vm.mmap_rnd_compat_bits", "vm.unprivileged_userfaultfd", "vm.memfd_noexec", "net.core.bpf_jit_harden",
    "net.core.bpf_jit_enable", "net.core.bpf_jit_kallsyms", "dev.tty.ldisc_autoload", "dev.tty.legacy_tiocsti",
]


def put(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def copy(root, rel, src):
    try:
        with open(src, "rb") as f:
            put(root, rel, f.read())
    except OSError:
        pass


def cgroup_mounts():
    out = {}
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ")
        point = left.split()[4]
        fstype, _, opts = right.split()
        if fstype == "cgroup2":
            out["unified"] = point
        elif fstype == "cgroup":
            names = [o for o in opts.split(",") if o not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime", "xattr")]
            out[",".join(sorted(names))] = point
    return out


def capture_proc(pid, root):
    base = f"/proc/{pid}"
    for f in ["stat", "maps", "status", "cgroup", "limits", "mountinfo"]:
        copy(root, f, f"{base}/{f}")
    for tid in os.listdir(f"{base}/task"):
        for f in ["status", "cgroup", "stat"]:
            copy(root, f"task/{tid}/{f}", f"{base}/task/{tid}/{f}")
    for ns in os.listdir(f"{base}/ns"):
        try:
            st = os.stat(f"{base}/ns/{ns}")
            put(root, f"ns/{ns}", f"{st.st_dev}:{st.st_ino}".encode())
        except FileNotFoundError:
            put(root, f"ns/{ns}", b"-")
    for attr in ["current", "exec", "apparmor/current", "apparmor/exec", "smack/current"]:
        copy(root, f"attr/{attr}", f"{base}/attr/{attr}")
    mounts = cgroup_mounts()
    for line in open(f"{base}/cgroup"):
        _, ctrl, path = line.rstrip("\n").split(":", 2)
        name = ctrl or "unified"
        mount = mounts.get(",".join(sorted(ctrl.split(","))) if ctrl else "unified")
        if mount is None:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts) + 1):
            cg = "/".join(parts[:depth])
            d = os.path.join(mount, cg)
            for f in os.listdir(d):
                p = os.path.join(d, f)
                if os.path.isfile(p):
                    copy(root, f"cgroupfs/{name}/{cg + '/' if cg else ''}{f}", p)


def capture_node(root):
    for name in SYSCTLS + ["kernel.tainted", "kernel.hostname", "kernel.random.boot_id"]:
        rel = "proc/sys/" + name.replace(".", "/")
        copy(root, rel, "/" + rel)
    for rel in ["proc/cmdline", "proc/modules", "sys/kernel/security/lockdown", "sys/kernel/security/lsm"]:
        copy(root, rel, "/" + rel)


def main():
    if sys.argv[1] == "proc":
        pid, out = sys.argv[2], sys.argv[3]
        capture_proc(pid, os.path.join(out, "a"))
        time.sleep(0.7)
        capture_proc(pid, os.path.join(out, "b"))
    else:
        out = sys.argv[2]
        capture_node(os.path.join(out, "a"))
        time.sleep(0.7)
        capture_node(os.path.join(out, "b"))


if __name__ == "__main__":
    main()
