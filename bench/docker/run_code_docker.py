#!/usr/bin/env python3
"""run_code through the Docker runtime's warm pool against `docker run --rm`.

In one run, alternating call by call on the same machine and image:
  * run_code python `print(1)` through `kiln serve` (stdio) with
    sandbox.runtime: docker, each call in a fresh pooled container; the pool
    is given --gap ms between calls to refill, as calls spaced by an agent's
    thinking would leave it (the pool's own creation is not on the call's path)
  * `docker run --rm --network none IMAGE python3 -c 'print(1)'`: a
    container made, started and removed per call, through the docker CLI
Prints both p50s and their ratio. Needs root, a daemon and the image
(tests/docker/start-dockerd.sh, tests/docker/build-image.sh).

Usage: bench/docker/run_code_docker.py [--kiln build/cli/kiln] [--image kiln-test/python:bookworm] [--runs 30] [--gap 1000]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from run_code_latency import Server, pct, timed  # noqa: E402  (bench/tools/run_code_latency.py)


def docker_run(image):
    subprocess.run(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", "print(1)"],
                   stdout=subprocess.DEVNULL, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--image", default="kiln-test/python:bookworm")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gap", type=int, default=1000, help="ms between calls (the pool refills)")
    a = ap.parse_args()
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", a.image],
                              capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as state:
        server = Server(a.kiln, state, ["--set", "sandbox.runtime=docker", "--set", f"sandbox.docker.image={a.image}",
                                        "--set", f"sandbox.docker.allowed_images={image_id}",
                                        "--set", "sandbox.docker.pool_size=2",
                                        # C001 C010 C012 measure missing under this daemon (docs/sandbox.md)
                                        "--set", "server.allow_missing_controls=true"])
        time.sleep(a.gap / 1000.0 + 2)  # the pool fills
        pool_ms, cold_ms = [], []
        for _ in range(a.runs):
            pool_ms.append(timed(server.run_print))
            time.sleep(a.gap / 1000.0)
            cold_ms.append(timed(lambda: docker_run(a.image)))
        server.close()
    p_pool, p_cold = statistics.median(pool_ms), statistics.median(cold_ms)
    print(f"run_code python print(1), docker runtime warm pool: p50 {p_pool:.1f} ms  p95 {pct(pool_ms, 95):.1f} ms  (n={a.runs})")
    print(f"docker run --rm python3 -c 'print(1)':              p50 {p_cold:.1f} ms  p95 {pct(cold_ms, 95):.1f} ms  (n={a.runs})")
    print(f"ratio at p50: {p_cold / p_pool:.1f}x faster through the pool (target >= 4x)")


if __name__ == "__main__":
    main()
