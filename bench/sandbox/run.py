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
import subprocess
import sys

from timing import BWRAP, median_ms

build = sys.argv[1] if len(sys.argv) > 1 else "build"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
kiln = os.path.join(build, "cli", "kiln")
bench_runtime = os.path.join(build, "bench", "sandbox", "bench_runtime")
if not os.access(bench_runtime, os.X_OK):
    sys.exit(f"{bench_runtime} not built: meson configure {build} -Dbench=true && ninja -C {build}")


have_bwrap = shutil.which("bwrap") is not None

print(f"runs={runs} uid={os.geteuid()} load={os.getloadavg()[0]:.2f}")
for cmd in (["/bin/true"], ["/usr/bin/python3", "-c", "pass"]):
    bare = median_ms(cmd, runs)
    jailed = median_ms([kiln, "run", "--validation", "off", "--"] + cmd, runs)
    print(f"{' '.join(cmd):28s} bare {bare:7.2f} ms  kiln run {jailed:7.2f} ms  "
          f"overhead {jailed - bare:6.2f} ms  ratio {jailed / bare:5.2f}x")
    if have_bwrap:
        wrapped = median_ms(BWRAP + cmd, runs)
        print(f"{'':28s} bwrap --unshare-all {wrapped:7.2f} ms  overhead {wrapped - bare:6.2f} ms")
subprocess.run([bench_runtime, str(runs), "/bin/true"], check=True)
subprocess.run([bench_runtime, "--concurrent", "16"], check=True)
