#!/usr/bin/env python3
"""End-to-end run_code latency and throughput through `kiln serve` on stdio.

Measures, in one run on the same machine:
  * p50/p95 latency of run_code python `print(1)` (request written -> response read)
  * p50/p95 of bare `python3 -c 'print(1)'` (fork+exec+wait from this script)
  * throughput with 8 concurrent run_code calls vs the bare command 8-way,
    in alternating rounds (--rounds), median ratio
  * the same for bubblewrap running the bare command (when bwrap is
    installed): the issue's reference jail, with no cgroup, seccomp filter,
    Landlock ruleset, protocol or audit log, in the same rounds; and for
    jail-floor (bench/sandbox/jail_floor.c, built next to kiln; root on a
    cgroup v1 host): the least kernel work of any jail, and with --spec all
    the kernel work of the jail the issue asks for, joining one network
    namespace for every run as a session's runs do
  * CPU per call, sequential, of run_code (the server and its jails), of
    the bare command and of jail-floor --spec: on saturated cores the
    8-way ratio is bare CPU over jailed CPU, measured here with less noise
  * where the sequential calls' time went: the sandbox's own phases (setup,
    run, teardown, from each call's `execution` audit record) and the rest
    (protocol, validator, audit, workspace, thread wake-ups)

Usage: bench/tools/run_code_latency.py [--kiln build/cli/kiln] [--runs 200] [--rounds 3]
Only the standard library is used.
"""
import argparse, json, os, resource, shutil, statistics, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox"))
from timing import BWRAP, jail_floor, netns_holder  # noqa: E402  (bench/sandbox/timing.py)

PRINT_1 = ["/usr/bin/python3", "-c", "print(1)"]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Server:
    def __init__(self, kiln, state_dir, extra=()):
        """extra: more `kiln` arguments before `serve` (bench/docker: --set sandbox.runtime=docker...)."""
        self.p = subprocess.Popen(
            [kiln, "--set", f"server.state_dir={state_dir}", "--set", "server.log_level=error",
             "--set", "workspace.max_runs_per_session=16", "--set", "workspace.max_runs_total=16",
             "--set", "audit.fsync=batch", *extra, "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.lock = threading.Lock()
        self.waiters = {}
        self.next_id = 1
        threading.Thread(target=self._reader, daemon=True).start()
        self.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                 "clientInfo": {"name": "bench", "version": "1"}})
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _send(self, msg):
        data = (json.dumps(msg) + "\n").encode()
        with self.lock:
            self.p.stdin.write(data)

    def _reader(self):
        for line in self.p.stdout:
            msg = json.loads(line)
            if "id" in msg and ("result" in msg or "error" in msg):
                ev, slot = self.waiters.pop(msg["id"])
                slot.append(msg)
                ev.set()

    def call(self, method, params):
        with self.lock:
            rid = self.next_id
            self.next_id += 1
        ev, slot = threading.Event(), []
        self.waiters[rid] = (ev, slot)
        self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        ev.wait()
        return slot[0]

    def run_print(self):
        r = self.call("tools/call", {"name": "run_code", "arguments": {"language": "python", "code": "print(1)\n"}})
        sc = r["result"].get("structuredContent", {})
        if sc.get("stdout") != "1\n":
            raise SystemExit(f"run_code failed: {r}")

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def throughput(fn, n, concurrency):
    """Calls per second with `concurrency` calls in flight until n are done."""
    with ThreadPoolExecutor(concurrency) as ex:
        t = time.perf_counter()
        list(ex.map(lambda _: fn(), range(n)))
        return n / (time.perf_counter() - t)


def timed(fn):
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def bare():
    subprocess.run(PRINT_1, stdout=subprocess.DEVNULL, check=True)


def bwrap():
    subprocess.run(BWRAP + PRINT_1, stdout=subprocess.DEVNULL, check=True)




def process_cpu_ms(pid):
    """CPU time of a running process and of the children it has reaped
    (utime, stime, cutime, cstime of /proc/PID/stat), in ms. The fields are
    in clock ticks (10 ms), so a difference over 200 calls is good to about
    0.1-0.2 ms per call."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) * 1000.0 / os.sysconf("SC_CLK_TCK")


def children_cpu_ms():
    """CPU time of this script's reaped children, in ms."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (u.ru_utime + u.ru_stime) * 1000.0


def child_cpu_of(fn):
    """CPU time, in ms, of the children fn starts and reaps."""
    before = children_cpu_ms()
    fn()
    return children_cpu_ms() - before


def sandbox_phases(state_dir, count):
    """The timings of the last `count` execution records in the audit log."""
    records = []
    with open(os.path.join(state_dir, "audit.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("event") == "execution" and "timings" in r:
                records.append(r["timings"])
    return records[-count:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="alternating kiln/bare throughput rounds (default 3)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as state:
        srv = Server(os.path.abspath(a.kiln), state)
        for _ in range(10):  # warm up caches on both sides
            srv.run_print(); bare()
        floor = jail_floor(os.path.dirname(os.path.dirname(os.path.abspath(a.kiln))))  # build/cli/kiln -> build
        run_floor = lambda: subprocess.run([floor] + PRINT_1, stdout=subprocess.DEVNULL, check=True)
        # The session's network namespace, held by a sleeping process.
        holder, netns = netns_holder() if floor else (None, None)
        run_spec = lambda: subprocess.run([floor, "--spec", "--netns", netns] + PRINT_1,
                                          stdout=subprocess.DEVNULL, check=True)
        kiln_ms, bare_ms = [], []
        # CPU per call, which on saturated cores is what the 8-way ratio
        # measures, with less noise: the server's own and its jails' (the
        # server is not reaped until the end), and the bare command's and
        # the floor's, each from the children's usage around its own calls.
        kiln_cpu0, bare_cpu, spec_cpu = process_cpu_ms(srv.p.pid), 0.0, 0.0
        for _ in range(a.runs):  # interleaved so machine noise hits all alike
            kiln_ms.append(timed(srv.run_print))
            bare_cpu += child_cpu_of(lambda: bare_ms.append(timed(bare)))
            if floor:
                spec_cpu += child_cpu_of(run_spec)
        n = a.runs
        kiln_cpu, bare_cpu = (process_cpu_ms(srv.p.pid) - kiln_cpu0) / n, bare_cpu / n
        spec_cpu = spec_cpu / n if floor else None
        phases = sandbox_phases(state, a.runs)
        # Throughput in alternating blocks: on a shared VM the machine's speed
        # drifts by 10-20% within a minute, and alternating puts kiln and bare
        # side by side in each round; each round gives one ratio.
        kiln_tps, bare_tps, ratios, bwrap_ratios, floor_ratios, spec_ratios = [], [], [], [], [], []
        have_bwrap = shutil.which("bwrap") is not None
        for _ in range(a.rounds):
            kiln_tps.append(throughput(srv.run_print, n, a.concurrency))
            bare_tps.append(throughput(bare, n, a.concurrency))
            ratios.append(kiln_tps[-1] / bare_tps[-1])
            if have_bwrap:
                bwrap_ratios.append(throughput(bwrap, n, a.concurrency) / bare_tps[-1])
            if floor:
                floor_ratios.append(throughput(run_floor, n, a.concurrency) / bare_tps[-1])
                spec_ratios.append(throughput(run_spec, n, a.concurrency) / bare_tps[-1])
        if holder:
            holder.kill()
            holder.wait()
        srv.close()
    print(f"run_code python print(1) via stdio: p50 {statistics.median(kiln_ms):.2f} ms  p95 {pct(kiln_ms, 95):.2f} ms  (n={n})")
    print(f"bare python3 -c 'print(1)':         p50 {statistics.median(bare_ms):.2f} ms  p95 {pct(bare_ms, 95):.2f} ms")
    print(f"overhead at p50: {statistics.median(kiln_ms) - statistics.median(bare_ms):.2f} ms  ratio {statistics.median(kiln_ms) / statistics.median(bare_ms):.2f}x")
    print(f"throughput {a.concurrency}-way, median of {a.rounds} alternating rounds: kiln {statistics.median(kiln_tps):.1f}/s  "
          f"bare {statistics.median(bare_tps):.1f}/s  ratio {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    for name, values in (("bubblewrap", bwrap_ratios), ("jail-floor", floor_ratios), ("jail-floor --spec", spec_ratios)):
        if values:
            print(f"reference, {name} running the bare command {a.concurrency}-way / bare: ratio "
                  f"{statistics.median(values):.2f} (rounds: {', '.join(f'{r:.2f}' for r in values)})")
    line = f"CPU per call, sequential: bare {bare_cpu:.2f} ms, run_code {kiln_cpu:.2f} ms (+{kiln_cpu - bare_cpu:.2f})"
    if spec_cpu is not None:
        line += f", jail-floor --spec {spec_cpu:.2f} ms (+{spec_cpu - bare_cpu:.2f})"
    print(line + f"; a ratio of 0.8 allows +{bare_cpu / 0.8 - bare_cpu:.2f}")
    if len(phases) == len(kiln_ms):
        total = [p["setup_us"] / 1000 + p["run_us"] / 1000 + p["teardown_us"] / 1000 for p in phases]
        med = lambda k: statistics.median(p[k] / 1000 for p in phases)
        print(f"sequential calls, p50 of each part: sandbox setup {med('setup_us'):.2f} ms, run {med('run_us'):.2f} ms, "
              f"teardown {med('teardown_us'):.2f} ms; outside the sandbox "
              f"{statistics.median(k - t for k, t in zip(kiln_ms, total)):.2f} ms")


if __name__ == "__main__":
    main()
