"""What the measuring scripts share: a 1 s `fdir watch` of a `sleep` of its
own (the seed subsystems), from a fresh baseline."""
import subprocess

SUBSYSTEMS = "memory-maps,seccomp,cgroups"


def watch_a_sleep(exe, baseline, stdout=subprocess.DEVNULL, wrap=(), stderr=None, fresh=False, extra=()):
    """Starts a `sleep`, takes its baseline into `baseline`, and starts
    `exe watch` of it at a 1 s interval, JSON to `stdout` (under the command
    `wrap`, such as valgrind, if given); with `fresh`, the watch takes the
    baseline itself, as on its first start; `extra` adds options to the
    watch's command line. Returns (sleep, watch); the
    sleep is killed if the baseline cannot be taken."""
    target = subprocess.Popen(["sleep", "3600"])
    try:
        if not fresh:
            subprocess.run([exe, "snapshot", "--pid", str(target.pid), "--baseline", baseline,
                            "--subsystems", SUBSYSTEMS], stdout=subprocess.DEVNULL, check=True)
    except BaseException:
        target.kill()
        target.wait()
        raise
    watch = subprocess.Popen([*wrap, exe, "watch", "--pid", str(target.pid), "--baseline", baseline,
                              "--subsystems", SUBSYSTEMS, "--interval", "1s", "--format", "json", *extra],
                             stdout=stdout, stderr=stderr)
    return target, watch
