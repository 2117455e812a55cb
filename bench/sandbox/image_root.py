#!/usr/bin/env python3
"""The native jail on an imported image against the same jail on host binds.

  python3 bench/sandbox/image_root.py BUILD_DIR [--rounds 6] [--runs 40]   # root

Packs tests/images/build-rootfs.sh's Debian as a `docker save` archive,
imports it into a throw-away store (`kiln image import`), then alternates,
in each round, RUNS of `kiln run --validation off -- CMD` on the host's
binds with RUNS of the same on `--image` (allowlisted by digest), for
CMD = /bin/true and python3 -c pass. Prints each round's medians in
milliseconds and the ratio image / host; the last line is the median over
rounds. Both sides pay the same kiln process start, so the difference is
the jail's root alone.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))


def timed(cmd, env):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()}")
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=40)
    a = ap.parse_args()
    kiln = os.path.join(a.build, "cli", "kiln")
    rootfs = subprocess.run([os.path.join(SRC, "tests/images/build-rootfs.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-image.") as work:
        env = dict(os.environ, KILN_SERVER_STATE_DIR=os.path.join(work, "state"))
        archive = os.path.join(work, "image.tar")
        digest = subprocess.run([sys.executable, os.path.join(SRC, "tests/images/make_image.py"), "--format", "docker",
                                 "--name", "bench:1", "--out", archive, rootfs],
                                check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run([kiln, "image", "import", "--strip-setuid", archive], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(archive)
        env["KILN_SANDBOX_ALLOWED_IMAGES"] = "bench:1@" + digest
        base = [kiln, "run", "--validation", "off"]
        commands = {"/bin/true": ["/bin/true"], "python3 -c pass": ["python3", "-c", "pass"]}
        ratios = {name: [] for name in commands}
        print(f"{'round':>5}  {'command':<16} {'host ms':>8} {'image ms':>9} {'ratio':>6}")
        for rnd in range(1, a.rounds + 1):
            for name, cmd in commands.items():
                host, image = [], []
                for _ in range(a.runs):  # interleaved, so drift hits both alike
                    host.append(timed(base + ["--"] + cmd, env))
                    image.append(timed(base + ["--image", "bench:1", "--"] + cmd, env))
                h, i = statistics.median(host), statistics.median(image)
                ratios[name].append(i / h)
                print(f"{rnd:>5}  {name:<16} {h:>8.2f} {i:>9.2f} {i / h:>6.3f}")
        for name, r in ratios.items():
            print(f"median ratio image/host over {a.rounds} rounds, {name}: {statistics.median(r):.3f}")


if __name__ == "__main__":
    main()
