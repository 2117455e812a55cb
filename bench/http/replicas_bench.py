#!/usr/bin/env python3
"""run_code through haproxy with 1, 2 and 3 Kiln replicas, and the shared
workspace store's cost per call against the local one.

Replicas: `kiln serve --http` on loopback, each with its own state dir,
all with workspace.store=shared on one shared dir, behind haproxy with
tests/e2e/lib/haproxy.cfg (round robin for new sessions, a session kept on
its replica). Each client thread opens its own session through the proxy,
so sessions spread over the replicas, then calls run_code (python
`print(1)`) on a keep-alive connection for --seconds: p50, p99 and
requests/s (the client code is http_bench.py's `measure`).

Store cost: one replica, no proxy, one client; run_code in the session's
own workspace, in a workspace_create workspace of the local store, and in
one of the shared store (lock, copy in, run, copy out and publish) holding
--files small files.

Usage: bench/http/replicas_bench.py [--kiln build/cli/kiln] [--seconds 3] [--rounds 3] [--conns 8]
Needs haproxy (setup.sh installs it). Only the standard library is used.
"""
import argparse, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_bench  # noqa: E402  (measure, INIT, the run slot settings)

HERE = os.path.dirname(os.path.abspath(__file__))
HAPROXY_CFG = os.path.join(HERE, "..", "..", "tests", "e2e", "lib", "haproxy.cfg")
RUN_CODE = {"name": "run_code", "arguments": {"language": "python", "code": "print(1)\n"}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path="/healthz", seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing answers {path} on port {port}")


class Cluster:
    def __init__(self, kiln, replicas, store, root):
        self.procs, self.ports = [], []
        shared = os.path.join(root, "shared")
        for i in range(replicas):
            port = free_port()
            state = os.path.join(root, f"state-r{i + 1}")
            self.procs.append(subprocess.Popen(
                [kiln, "--set", f"server.state_dir={state}", *http_bench.SETTINGS, "--set", f"server.replica_id=r{i + 1}",
                 "--set", f"workspace.store={store}", "--set", f"workspace.shared_dir={shared}",
                 "--set", "workspace.max_sessions=256", "serve", "--http", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port in self.ports:
            wait_http(port)
        self.port = self.ports[0]

    def add_proxy(self, root):
        self.port = free_port()
        servers = "\n".join(f"  server r{i + 1} 127.0.0.1:{p} check inter 300ms fall 1 rise 1"
                            for i, p in enumerate(self.ports))
        cfg = os.path.join(root, "haproxy.cfg")
        with open(HAPROXY_CFG) as f:
            text = f.read().replace("@PORT@", str(self.port)).replace("@SERVERS@", servers)
        with open(cfg, "w") as f:
            f.write(text)
        self.procs.append(subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        wait_http(self.port)

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait()


class Client:
    """A session of its own (through the proxy: on the next replica), on one keep-alive connection."""

    def __init__(self, port, workspace_store=None, files=0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        self.post("initialize", http_bench.INIT)
        self.workspace = None
        if workspace_store:
            made = self.post("tools/call", {"name": "workspace_create", "arguments": {}})["result"]["structuredContent"]
            if made["store"] != workspace_store:
                raise SystemExit(f"workspace_create made a {made['store']} workspace, not {workspace_store}")
            self.workspace = made["workspace"]
            for i in range(files):
                self.post("tools/call", {"name": "write_file",
                                         "arguments": {"path": f"f{i}.txt", "content": "x" * 1024, "workspace": self.workspace}})

    def post(self, method, params):
        self.conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": next(http_bench.REQUEST_IDS),
                                                      "method": method, "params": params}), self.headers)
        r = self.conn.getresponse()
        body = r.read()
        if r.status not in (200, 202):
            raise SystemExit(f"{method}: {r.status} {body[:200]}")
        if method == "initialize":
            self.headers["MCP-Session-Id"] = r.getheader("MCP-Session-Id")
            self.headers["MCP-Protocol-Version"] = "2025-11-25"
        return json.loads(body) if body else {}

    def call(self, method, params):
        if self.workspace:
            params = {**params, "arguments": {**params["arguments"], "workspace": self.workspace}}
        return self.post(method, params)


class Target:
    def __init__(self, port, workspace_store=None, files=0):
        self.port, self.store, self.files = port, workspace_store, files

    def client(self):
        return Client(self.port, self.store, self.files)


def run(kiln, replicas, store, proxy, conns, seconds, workspace_store=None, files=0):
    root = tempfile.mkdtemp(prefix="kiln-bench-replicas-")
    cluster = None
    try:
        cluster = Cluster(kiln, replicas, store, root)
        if proxy:
            cluster.add_proxy(root)
        http_bench.CALLS["run_code"] = ("tools/call", RUN_CODE)
        return http_bench.measure(Target(cluster.port, workspace_store, files), "run_code", conns, seconds)
    finally:
        if cluster:
            cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def median(rounds):
    return {k: statistics.median(r[k] for r in rounds) for k in ("p50", "p99", "rps")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/cli/kiln")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--files", type=int, default=20)
    a = ap.parse_args()
    scaling, cost = {}, {}
    for rnd in range(a.rounds):
        for n in (1, 2, 3):
            r = run(a.kiln, n, "shared", True, a.conns, a.seconds)
            scaling.setdefault(n, []).append(r)
            print(f"round {rnd + 1}: {n} replica(s) x{a.conns}: p50 {r['p50']:.2f} p99 {r['p99']:.2f} ms "
                  f"{r['rps']:.0f}/s", file=sys.stderr)
        for label, store, ws in (("session workspace", "local", None), ("local store", "local", "local"),
                                 ("shared store", "shared", "shared")):
            r = run(a.kiln, 1, store, False, 1, a.seconds, ws, a.files)
            cost.setdefault(label, []).append(r)
            print(f"round {rnd + 1}: {label}: p50 {r['p50']:.2f} ms", file=sys.stderr)
    print(f"medians of {a.rounds} rounds, {a.seconds:g} s each; run_code through haproxy, {a.conns} sessions")
    print("| replicas | p50 ms | p99 ms | req/s |")
    print("|---|---|---|---|")
    for n in (1, 2, 3):
        m = median(scaling[n])
        print(f"| {n} | {m['p50']:.2f} | {m['p99']:.2f} | {m['rps']:.0f} |")
    print(f"\none replica, one client, no proxy; workspaces hold {a.files} files of 1 KiB")
    print("| workspace | p50 ms | p99 ms | req/s |")
    print("|---|---|---|---|")
    for label, rounds in cost.items():
        m = median(rounds)
        print(f"| {label} | {m['p50']:.2f} | {m['p99']:.2f} | {m['rps']:.0f} |")


if __name__ == "__main__":
    main()
