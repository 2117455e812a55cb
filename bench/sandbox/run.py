#!/usr/bin/env python3
"""Sandbox benchmark: median wall time of `kiln run` against the bare command,
and the in-process figures (bench_runtime), in the same run.

    python3 bench/sandbox/run.py [BUILD_DIR] [RUNS]      (default: build, 100)

Prints medians, the overhead in ms and the ratio (and bubblewrap's, with
all namespaces, when `bwrap` is installed), then the runtime's own
phase medians and the server-side memory per concurrent run. Standard
library only. Run as root for the cgroup-enforcing configuration."""
import os
import shutil
import statistics
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
kiln = os.path.join(build, "cli", "kiln")
bench_runtime = os.path.join(build, "bench", "sandbox", "bench_runtime")


def median_ms(argv):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


# The reference the issue names: bubblewrap with every namespace Kiln's jail
# has (network included) and a comparable tree: /usr read-only, fresh
# /proc, /dev and /tmp. It sets no cgroup, seccomp filter or Landlock rule.
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
have_bwrap = shutil.which("bwrap") is not None

print(f"runs={runs} uid={os.geteuid()} load={os.getloadavg()[0]:.2f}")
for cmd in (["/bin/true"], ["/usr/bin/python3", "-c", "pass"]):
    bare = median_ms(cmd)
    jailed = median_ms([kiln, "run", "--validation", "off", "--"] + cmd)
    print(f"{' '.join(cmd):28s} bare {bare:7.2f} ms  kiln run {jailed:7.2f} ms  "
          f"overhead {jailed - bare:6.2f} ms  ratio {jailed / bare:5.2f}x")
    if have_bwrap:
        wrapped = median_ms(BWRAP + cmd)
        print(f"{'':28s} bwrap --unshare-all {wrapped:7.2f} ms  overhead {wrapped - bare:6.2f} ms")
subprocess.run([bench_runtime, str(runs), "/bin/true"], check=True)
subprocess.run([bench_runtime, "--concurrent", "16"], check=True)
