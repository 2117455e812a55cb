#!/usr/bin/env python3
"""MCP calls over HTTP keep-alive beside the same calls over stdio, one run.

For each of ping, tools/list and run_code (python `print(1)`), at 1, 8 and
64 connections (stdio: that many calls in flight on the one pipe), for
--seconds each: p50 and p99 latency (request sent -> answer read) and
requests/s. Both servers get the same settings (16 run slots, one session
may use all of them), and run the same client code (this script's
threads), so the difference is the transport. Rounds alternate HTTP and
stdio (--rounds); the medians of the rounds are printed.

Then the HTTP server's memory: VmRSS idle, and after opening --sessions
sessions (initialize only), per session.

Usage: bench/http/http_bench.py [--kiln build/cli/kiln] [--seconds 3] [--rounds 3]
The machine's other load shows in the numbers: run it on a quiet machine,
or read the medians. Only the standard library is used.
"""
import argparse, http.client, itertools, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from run_code_latency import Server as StdioServer  # noqa: E402  (the same settings as below)

REQUEST_IDS = itertools.count(2)  # next() is atomic under the GIL
SETTINGS = ["--set", "server.log_level=error", "--set", "workspace.max_runs_per_session=16",
            "--set", "workspace.max_runs_total=16", "--set", "audit.fsync=batch",
            "--set", "server.http.max_sessions=1100",
            # 64 connections' calls wait for the 16 run slots instead of
            # being refused: in flight and queued, on both transports.
            "--set", "server.max_inflight_calls=128", "--set", "workspace.queue_length=128"]
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
CALLS = {
    "ping": ("ping", {}),
    "tools/list": ("tools/list", {}),
    "run_code": ("tools/call", {"name": "run_code", "arguments": {"language": "python", "code": "print(1)\n"}}),
}


def rss_kib(pid):
    return int(re.search(r"^VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read(), re.M).group(1))


def check(name, msg):
    if "result" not in msg:
        raise SystemExit(f"{name} failed: {msg}")
    if name == "run_code" and msg["result"].get("structuredContent", {}).get("stdout") != "1\n":
        raise SystemExit(f"run_code failed: {msg}")


class Stdio(StdioServer):
    """`kiln serve` on stdio (bench/tools/run_code_latency.py): calls share the one pipe."""

    def client(self):
        return self


class Http:
    def __init__(self, kiln, state):
        self.p = subprocess.Popen([kiln, "--set", f"server.state_dir={state}", *SETTINGS, "--set",
                                   "server.log_level=info", "serve", "--http", "127.0.0.1:0"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for line in self.p.stderr:
            m = re.search(rb"serving MCP over HTTP at http://127.0.0.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise SystemExit("kiln serve --http did not start")
        threading.Thread(target=lambda: [None for _ in self.p.stderr], daemon=True).start()
        self.session = self.open_session()

    def open_session(self, conn=None):
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port)
        conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT}),
                     {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        r = conn.getresponse()
        r.read()
        sid = r.getheader("MCP-Session-Id")
        if r.status != 200 or not sid:
            raise SystemExit(f"initialize over HTTP: {r.status}")
        return sid

    def client(self):
        return HttpClient(self.port, self.session)

    def close(self):
        self.p.terminate()
        self.p.wait()


class HttpClient:
    """One keep-alive connection."""

    def __init__(self, port, session):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                        "MCP-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}

    def call(self, method, params):
        # Every connection shares the one session, so request ids must be
        # unique across them: a reused id still running is refused (400).
        self.conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": next(REQUEST_IDS), "method": method,
                                                      "params": params}), self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"{method} over HTTP: {r.status} {body[:200]}")
        return json.loads(body)


def measure(server, name, conns, seconds):
    method, params = CALLS[name]
    lat, stop = [], time.perf_counter() + seconds
    lock = threading.Lock()

    failures = []

    def loop():
        c = server.client()
        mine = []
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                check(name, c.call(method, params))
                mine.append((time.perf_counter() - t) * 1000.0)
        except BaseException as e:  # SystemExit too: a thread would swallow it
            failures.append(repr(e))
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"{name} at {conns} connections: {len(failures)} clients failed, first: {failures[0]}")
    lat.sort()
    return {"p50": lat[len(lat) // 2], "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "rps": len(lat) / wall}


def memory(kiln, sessions):
    state = tempfile.mkdtemp(prefix="kiln-bench-http-")
    try:
        s = Http(kiln, state)
        time.sleep(1)
        idle = rss_kib(s.p.pid)
        conn = http.client.HTTPConnection("127.0.0.1", s.port)
        for _ in range(sessions):
            s.open_session(conn)
        time.sleep(1)
        full = rss_kib(s.p.pid)
        s.close()
        return idle, full
    finally:
        shutil.rmtree(state, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", default="1,8,64")
    ap.add_argument("--calls", default="ping,tools/list,run_code")
    ap.add_argument("--sessions", type=int, default=1000)
    a = ap.parse_args()
    results = {}
    for rnd in range(a.rounds):
        for transport in (Http, Stdio):
            state = tempfile.mkdtemp(prefix="kiln-bench-http-")
            try:
                server = transport(a.kiln, state)
                for name in a.calls.split(","):
                    for n in map(int, a.conns.split(",")):
                        r = measure(server, name, n, a.seconds)
                        results.setdefault((name, n, transport.__name__), []).append(r)
                        print(f"round {rnd + 1} {transport.__name__:5} {name:10} x{n:<3} p50 {r['p50']:7.2f} ms "
                              f"p99 {r['p99']:7.2f} ms {r['rps']:8.0f}/s", file=sys.stderr)
                server.close()
            finally:
                shutil.rmtree(state, ignore_errors=True)
    print(f"medians of {a.rounds} rounds, {a.seconds:g} s each")
    print("| call | conns | HTTP p50 ms | HTTP p99 ms | HTTP req/s | stdio p50 ms | stdio p99 ms | stdio req/s | HTTP/stdio req/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in a.calls.split(","):
        for n in map(int, a.conns.split(",")):
            h = {k: statistics.median(r[k] for r in results[(name, n, "Http")]) for k in ("p50", "p99", "rps")}
            s = {k: statistics.median(r[k] for r in results[(name, n, "Stdio")]) for k in ("p50", "p99", "rps")}
            print(f"| {name} | {n} | {h['p50']:.2f} | {h['p99']:.2f} | {h['rps']:.0f} | {s['p50']:.2f} | "
                  f"{s['p99']:.2f} | {s['rps']:.0f} | {h['rps'] / s['rps']:.2f} |")
    idle, full = memory(a.kiln, a.sessions)
    print(f"HTTP server RSS: idle {idle / 1024:.1f} MiB; with {a.sessions} idle sessions {full / 1024:.1f} MiB, "
          f"{(full - idle) / a.sessions:.1f} KiB per session")


if __name__ == "__main__":
    main()
