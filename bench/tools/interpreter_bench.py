#!/usr/bin/env python3
"""The persistent interpreter (run_code persist:true) against one-shot runs.

In one run, through `kiln serve` on stdio, on the same machine:
  * p50/p95 of bare `python3 -c 'print(1)'`, of a one-shot run_code
    `print(1)`, and of `print(1)` in a warm persistent interpreter
    (request written -> response read);
  * `import pandas` and a 10,000-row frame made once, then 20 calls of
    `df.describe()`, against 20 one-shot calls that each import pandas,
    make the frame and describe it: totals and their ratio;
  * what an idle interpreter costs: the server's RSS before and after it
    started, and its jail's memory cgroup (kernel memory included).

Usage: bench/tools/interpreter_bench.py [--kiln build/cli/kiln] [--runs 200]
Only the standard library is used.
"""
import argparse, glob, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_code_latency import Server, pct, timed, bare  # noqa: E402

FRAME = ("import pandas as pd, numpy as np\n"
         "df = pd.DataFrame(np.random.default_rng(0).normal(size=(10_000, 4)), columns=list('abcd'))\n")


def run_code(server, code, persist):
    args = {"language": "python", "code": code}
    if persist:
        args["persist"] = True
    r = server.call("tools/call", {"name": "run_code", "arguments": args})
    result = r.get("result", {})
    if result.get("isError"):
        raise SystemExit(f"run_code failed: {result.get('content')}")
    return result


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def live_jail_memory(server_pid):
    """Bytes charged to the interpreter's cgroup (v1 memory controller)."""
    paths = glob.glob(f"/sys/fs/cgroup/memory/**/kiln/{server_pid}/*/run-live-*/memory.usage_in_bytes", recursive=True)
    return sum(int(open(p).read()) for p in paths) if paths else None


def latencies(fn, runs):
    values = [timed(fn) for _ in range(runs)]
    return pct(values, 50), pct(values, 95)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="kiln-bench-interp-")
    server = Server(a.kiln, state)
    try:
        run_code(server, "print(1)\n", False)  # warm the one-shot path
        rss_before = rss_kib(server.p.pid)
        t_start = timed(lambda: run_code(server, "print(1)\n", True))
        time.sleep(0.5)
        rss_after = rss_kib(server.p.pid)
        jail_bytes = live_jail_memory(server.p.pid)
        for _ in range(20):
            run_code(server, "print(1)\n", True)
        print(f"interpreter start (first persist call): {t_start:.1f} ms")
        print(f"idle interpreter: server RSS +{rss_after - rss_before} KiB; jail cgroup "
              f"{'n/a' if jail_bytes is None else f'{jail_bytes / 2**20:.1f} MiB'}")
        b50, b95 = latencies(bare, min(a.runs, 100))
        o50, o95 = latencies(lambda: run_code(server, "print(1)\n", False), min(a.runs, 100))
        w50, w95 = latencies(lambda: run_code(server, "print(1)\n", True), a.runs)
        print(f"print(1) p50/p95 ms: bare python3 {b50:.2f}/{b95:.2f}, one-shot run_code {o50:.2f}/{o95:.2f}, "
              f"warm interpreter {w50:.2f}/{w95:.2f}")
        one_shot = [timed(lambda: run_code(server, FRAME + "print(df.describe())\n", False)) for _ in range(20)]
        setup = timed(lambda: run_code(server, FRAME, True))
        describes = [timed(lambda: run_code(server, "df.describe()\n", True)) for _ in range(20)]
        total_persist = setup + sum(describes)
        print(f"pandas: 20 one-shot calls {sum(one_shot):.0f} ms (median {statistics.median(one_shot):.1f}); "
              f"persistent: import+frame {setup:.1f} ms, then 20 describe() {sum(describes):.1f} ms "
              f"(median {statistics.median(describes):.2f}); ratio {sum(one_shot) / total_persist:.1f}x with the "
              f"import, {sum(one_shot) / sum(describes):.1f}x of the describe calls alone")
    finally:
        server.close()
        subprocess.run(["rm", "-rf", state])


if __name__ == "__main__":
    main()
