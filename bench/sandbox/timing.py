"""What run.py and compare.py share: wall-clock medians of a command, and
the bubblewrap command line used as the reference. Standard library only."""
import os
import statistics
import subprocess
import sys
import time

# The reference the issue names: bubblewrap with every namespace Kiln's jail
# has (network included) and a comparable tree: /usr read-only, fresh
# /proc, /dev and /tmp. It sets no cgroup, seccomp filter or Landlock rule.
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def median_ms(argv, runs):
    """Median wall time of `runs` runs of argv, fork to wait, in ms."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def jail_floor(build_dir):
    """build_dir's jail-floor (jail_floor.c) when it can run here (root, a
    cgroup v1 pids hierarchy), else None, saying why on stderr."""
    path = os.path.join(build_dir, "bench", "sandbox", "jail-floor")
    if not os.access(path, os.X_OK):
        why = f"{path} not built (meson configure {build_dir} -Dbench=true)"
    elif os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/pids"):
        why = "it needs root and a cgroup v1 pids hierarchy"
    else:
        return path
    print(f"jail-floor left out: {why}", file=sys.stderr)
    return None


def netns_holder():
    """A sleeping process in a network namespace of its own, and the path
    of that namespace: what jail-floor --spec --netns joins, as a session's
    runs join one namespace in the server. Kill the process when done."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
    path = f"/proc/{proc.pid}/ns/net"
    # Until unshare has run, the path is still this process's namespace.
    while proc.poll() is None and os.readlink(path) == os.readlink("/proc/self/ns/net"):
        time.sleep(0.001)
    if proc.poll() is not None:
        raise SystemExit("`unshare --net sleep infinity` failed: a network namespace needs root (or CAP_SYS_ADMIN)")
    return proc, path
