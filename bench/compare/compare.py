#!/usr/bin/python3
"""Kiln against what users would pick instead, on one machine in one run.

Runs `print(1)` in Python through each way of running it and writes one
Markdown table: median and p95 latency and calls per second, one call at a
time and 8 at once, each row with its exact command line. Then Kiln's own
parts: validator latency per KB, audit records per second, and the server's
RSS idle and under load. A row whose tool is absent is left out with a
note saying why; nothing is estimated.

    /usr/bin/python3 bench/compare/compare.py [--kiln build/cli/kiln] [--runs 100] [--out FILE]

Standard library only (Debian's python3). Run as root for the jail Kiln
gives by default (cgroups, a network namespace per session). See
bench/compare/README.md.
"""
import argparse
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "sandbox"))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from timing import BWRAP  # noqa: E402  (bench/sandbox/timing.py: the reference bubblewrap line)
from run_code_latency import Server, pct  # noqa: E402  (bench/tools: the stdio MCP client)

PYTHON = "/usr/bin/python3"
PRINT_1 = [PYTHON, "-c", "print(1)"]
# bubblewrap with the isolation set Kiln's jail has that its command line can
# express: every namespace (network included), /usr read-only, fresh /proc,
# /dev and /tmp, a new session, no capabilities, killed with its parent.
# It has no cgroup limits, and a seccomp filter needs a compiled BPF file
# (--seccomp FD), which the command line cannot make.
BWRAP_ISOLATED = BWRAP + ["--new-session", "--cap-drop", "ALL"]
DOCKER_IMAGE = "kiln-bench:bookworm"
# What the MCP row sends per call, after initialize (bench/tools/run_code_latency.py).
RUN_CODE_CALL = '{"method":"tools/call","params":{"name":"run_code","arguments":{"language":"python","code":"print(1)"}}}'


class Row:
    def __init__(self, name, argv, call, note=""):
        self.name, self.argv, self.call, self.note = name, argv, call, note
        self.stats = {}


def run_quiet(argv):
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def measure(fn, runs, concurrency):
    """Latencies (ms) of `runs` calls with `concurrency` in flight, and calls/s."""
    with ThreadPoolExecutor(concurrency) as ex:
        t = time.perf_counter()
        lat = list(ex.map(lambda _: timed(fn), range(runs)))
        wall = time.perf_counter() - t
    return {"p50": statistics.median(lat), "p95": pct(lat, 95), "tps": runs / wall}


def kiln_run_row(kiln):
    argv = [kiln, "run", "--"] + PRINT_1
    return Row("`kiln run`", argv, lambda: run_quiet(argv), "the audit log (`kiln run` writes none)")


def docker_ready(image):
    """Why docker cannot be measured here, or None when it can."""
    if not shutil.which("docker"):
        return "no docker client"
    if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        return "no Docker daemon answers (`docker info` fails)"
    if subprocess.run(["docker", "image", "inspect", image], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        return f"no local image {image} (README.md: how to build it offline)"
    return None


def alternative_rows(image, notes):
    rows = []
    if shutil.which("bwrap"):
        argv = BWRAP_ISOLATED + PRINT_1
        rows.append(Row("bubblewrap", argv, lambda: run_quiet(argv),
                        "cgroup limits, seccomp (its CLI takes only a compiled BPF file), Landlock, validator, audit log"))
    else:
        notes.append("bubblewrap: left out, `bwrap` is not installed (apt-get install bubblewrap)")
    why = docker_ready(image)
    if why is None:
        argv = ["docker", "run", "--rm", "--network", "none", "--read-only", image] + PRINT_1
        rows.append(Row("`docker run`", argv, lambda: run_quiet(argv), "Landlock, validator, audit log; keeps Docker's default capabilities"))
    else:
        notes.append(f"docker run: left out, {why}")
    return rows


def rss_kib(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """The server's largest VmRSS while a load runs, sampled every 5 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def measure_rows(rows, srv, runs, concurrency, warmup):
    """Each row in turn: warm-up calls, then one call at a time, then
    `concurrency` at once; the server's RSS idle (before any call) and its
    peak while run_code runs `concurrency`-way."""
    rss = {"idle": rss_kib(srv.p.pid)}
    for r in rows:
        for _ in range(warmup):
            r.call()
        r.stats[1] = measure(r.call, runs, 1)
        if r.call == srv.run_print:
            with RssSampler(srv.p.pid) as s:
                r.stats[concurrency] = measure(r.call, runs, concurrency)
            rss["load"] = s.peak
        else:
            r.stats[concurrency] = measure(r.call, runs, concurrency)
    rss["hwm"] = rss_kib(srv.p.pid, "VmHWM")
    return rss


def validator_per_kb(bench_dir):
    """us/KB of security::assess() on 10 KB inputs (bench_validator --quick), per language."""
    exe = os.path.join(bench_dir, "bench", "validator", "bench_validator")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not built (meson configure BUILD -Dbench=true)"
    out = subprocess.run([exe, "--quick"], capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and f[1] in ("1KB", "10KB"):
            rows[(f[0], f[1])] = (float(f[3]), float(f[4]), float(f[6]))
    return rows, exe + " --quick"


def audit_rate(bench_dir, records):
    exe = os.path.join(bench_dir, "bench", "audit", "bench_audit")
    if not os.access(exe, os.X_OK):
        return None, f"{exe} not built (meson configure BUILD -Dbench=true)"
    with tempfile.TemporaryDirectory(prefix="kiln-compare-audit-", dir=os.getcwd()) as d:
        argv = [exe, "--dir", d, "--records", str(records), "--always-records", "200"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rates = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2].isdigit():
            rates[cells[0]] = int(cells[2])
    return rates, " ".join(argv[:2] + ["DIR"] + argv[3:])


def shorten(text, replace):
    """Text as a reader would type it: the build and state paths shortened."""
    for long, short in replace:
        text = text.replace(long, short)
    return text


def shown(argv, replace):
    return shorten(shlex.join(argv), replace)


def table(rows, concurrency, replace):
    out = [f"| way | command | p50 ms (1) | p95 ms (1) | calls/s (1) | p50 ms ({concurrency}) | p95 ms ({concurrency}) "
           f"| calls/s ({concurrency}) | what it leaves out |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        a, b = r.stats[1], r.stats[concurrency]
        out.append(f"| {r.name} | `{shown(r.argv, replace)}` | {a['p50']:.2f} | {a['p95']:.2f} | {a['tps']:.1f} "
                   f"| {b['p50']:.2f} | {b['p95']:.2f} | {b['tps']:.1f} | {r.note} |")
    return out


def kiln_parts(validator, audit, rss, concurrency):
    out = ["", "| Kiln's part | figure | command |", "|---|---|---|"]
    v, vcmd = validator
    if isinstance(v, dict):
        for lang in ("python", "shell", "javascript"):
            if (lang, "10KB") in v:
                p50, p95, per_kb = v[(lang, "10KB")]
                out.append(f"| validator, {lang}, 10 KB | {per_kb:.2f} µs/KB (p50 {p50:.1f} µs, p95 {p95:.1f} µs) | `{vcmd}` |")
    a, acmd = audit
    if isinstance(a, dict):
        for mode in ("batch", "always", "never"):
            if mode in a:
                out.append(f"| audit appends, `fsync: {mode}` | {a[mode]:,} records/s | `{acmd}` |")
    out.append(f"| `kiln serve` RSS, idle after initialize | {rss['idle'] / 1024:.1f} MiB | VmRSS |")
    if "load" in rss:
        out.append(f"| `kiln serve` RSS, peak during {concurrency}-way run_code | {rss['load'] / 1024:.1f} MiB "
                   f"(VmHWM {rss['hwm'] / 1024:.1f} MiB) | VmRSS sampled every 5 ms |")
    notes = [x for x in (vcmd if v is None else None, acmd if a is None else None) if x]
    return out, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--bench-build", help="build with -Dbench=true (default: the one --kiln is in)")
    ap.add_argument("--runs", type=int, default=100, help="calls per row and concurrency (default 100)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--audit-records", type=int, default=20000)
    ap.add_argument("--docker-image", default=DOCKER_IMAGE)
    ap.add_argument("--out", help="also write the Markdown here")
    a = ap.parse_args()
    kiln = os.path.abspath(a.kiln)
    bench_dir = a.bench_build or os.path.dirname(os.path.dirname(kiln))
    notes = []
    rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    header = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {rev or '?'}, uid {os.geteuid()}, "
              f"{os.cpu_count()} cores, kernel {platform.release()}, load average {os.getloadavg()[0]:.2f} at start; "
              f"{a.runs} calls per cell after {a.warmup} warm-up calls")
    with tempfile.TemporaryDirectory(prefix="kiln-compare-") as state:
        srv = Server(kiln, state)
        try:
            rows = [Row("bare python3 (the floor)", PRINT_1, lambda: run_quiet(PRINT_1), "every control"),
                    kiln_run_row(kiln),
                    Row("MCP `run_code` over stdio", srv.p.args + ["<<<", RUN_CODE_CALL], srv.run_print,
                        "nothing (validator, jail, session workspace, audit log with `fsync: batch`)")]
            rows += alternative_rows(a.docker_image, notes)
            rss = measure_rows(rows, srv, a.runs, a.concurrency, a.warmup)
        finally:
            srv.close()
    parts, part_notes = kiln_parts(validator_per_kb(bench_dir), audit_rate(bench_dir, a.audit_records), rss,
                                   a.concurrency)
    notes += [f"left out: {n}" for n in part_notes]
    replace = [(state, "$STATE"), (kiln, os.path.relpath(kiln)), (bench_dir + "/", os.path.relpath(bench_dir) + "/")]
    md = [header, ""] + table(rows, a.concurrency, replace) + [shorten(p, replace) for p in parts]
    if notes:
        md += [""] + [f"- {n}" for n in notes]
    text = "\n".join(md) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
