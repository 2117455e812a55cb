#!/usr/bin/env python3
"""kiln audit verify|show|stats|unseal on a sample log: exit codes, the
broken record's line, filters, JSON output and unsealing."""
import json
import os
import subprocess
import sys
import tempfile

KILN, DRIVER = sys.argv[1], sys.argv[2]
failures = []


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def check(cond, what):
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory(prefix="kiln-audit-cli-") as tmp:
    log = os.path.join(tmp, "audit.jsonl")
    hkey, skey = os.path.join(tmp, "hmac.key"), os.path.join(tmp, "seal.key")
    for k in (hkey, skey):
        with open(os.open(k, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    ids = subprocess.run([DRIVER, "sample", log, hkey, skey], check=True, capture_output=True, text=True).stdout.split()

    r = kiln("audit", "verify", "--hmac-key-file", hkey, log)
    check(r.returncode == 0 and "HMAC verified" in r.stdout, f"verify intact: {r.returncode} {r.stdout}{r.stderr}")
    r = kiln("--set", f"audit.path={log}", "audit", "verify")
    check(r.returncode == 0 and "6 records" in r.stdout, f"verify default files from audit.path: {r.stdout}{r.stderr}")

    r = kiln("audit", "show", "--json", "--threat", "T003", log)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    check(len(rows) == 1 and rows[0]["decision"] == "deny", f"show --threat T003: {r.stdout}")
    r = kiln("audit", "show", "--json", "--id", ids[0], log)
    check([x["event"] for x in map(json.loads, r.stdout.splitlines())] == ["tool_call", "decision", "execution"],
          f"show --id follows call_id: {r.stdout}")
    r = kiln("audit", "show", "--min-risk", "high", log)
    check(r.returncode == 0 and "net.metadata_endpoint (T003)" in r.stdout and "allow" not in r.stdout,
          f"show --min-risk high table: {r.stdout}")
    r = kiln("audit", "show", "--since", "1h", "--session", "s-alpha", "--json", log)
    check(len(r.stdout.splitlines()) == 4, f"show --since 1h --session: {r.stdout}")
    r = kiln("audit", "show", "--until", "2000-01-01", "--json", log)
    check(r.stdout == "", f"show --until in the past: {r.stdout}")
    r = kiln("audit", "show", "--since", "yesterday-ish", log)
    check(r.returncode == 64 and "--since" in r.stderr, f"bad --since: {r.returncode} {r.stderr}")

    r = kiln("audit", "stats", "--json", log)
    stats = json.loads(r.stdout)
    check(stats["decisions"] == {"allow": 1, "deny": 1} and stats["threats"] == {"T003": 1}
          and stats["tools"] == {"run_code": 1, "run_command": 1} and stats["outcomes"] == {"ok": 1}
          and stats["duration_ms"]["p50"] == 42, f"stats: {r.stdout}")

    r = kiln("audit", "unseal", "--seal-key-file", skey, "--id", ids[1], log)
    check(r.returncode == 0 and "169.254.169.254" in r.stdout, f"unseal: {r.stdout}{r.stderr}")
    with open(log) as f:
        check("169.254.169.254" not in f.read(), "sealed code must not appear in the log")

    # Tamper: change the decision of line 6; verify names the line and exits 1.
    with open(log) as f:
        lines = f.read().splitlines()
    lines[5] = lines[5].replace('"deny"', '"allow"')
    with open(log, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = kiln("audit", "verify", log)
    check(r.returncode == 1 and f"BROKEN at {log}:6 (seq 6)" in r.stdout and "hash mismatch" in r.stdout,
          f"verify tampered: {r.returncode} {r.stdout}")
    r = kiln("audit", "verify", os.path.join(tmp, "missing.jsonl"))
    check(r.returncode == 1 and "missing.jsonl" in r.stderr, f"verify missing file: {r.returncode} {r.stderr}")

# Replicas keep one chain each (audit-<replica>.jsonl): verify checks every
# chain it is given on its own, merge verifies them all, then interleaves
# their records in time order.
with tempfile.TemporaryDirectory(prefix="kiln-audit-replicas-") as tmp:
    chains = {}
    for replica, count, rotate in (("r1", 40, "2048"), ("r2", 25, "0"), ("r3", 10, "0")):
        path = os.path.join(tmp, f"audit-{replica}.jsonl")
        env = dict(os.environ, KILN_AUDIT_DRIVER_REPLICA=replica)
        subprocess.run([DRIVER, "append", path, str(count), "10", rotate], check=True, capture_output=True, env=env)
        chains[replica] = sorted(p for p in os.listdir(tmp) if p.startswith(f"audit-{replica}"))
    files = sorted(os.path.join(tmp, p) for p in os.listdir(tmp))
    check(len(chains["r1"]) > 1, f"r1's chain should have rotated: {chains['r1']}")
    r = kiln("audit", "verify", *files)
    check(r.returncode == 0 and "OK: 3 chains" in r.stdout and r.stdout.count("hash chain intact") == 3,
          f"verify three chains: {r.returncode} {r.stdout}{r.stderr}")
    r = kiln("audit", "merge", *files)
    merged = [json.loads(line) for line in r.stdout.splitlines()]
    check(r.returncode == 0 and len(merged) == 75, f"merge: {r.returncode} {len(merged)} {r.stderr}")
    check([m["ts"] for m in merged] == sorted(m["ts"] for m in merged), "merge: records in time order")
    for replica, count in (("r1", 40), ("r2", 25), ("r3", 10)):
        seqs = [m["seq"] for m in merged if m.get("replica") == replica]
        check(seqs == list(range(1, count + 1)), f"merge keeps {replica}'s records, in its order: {seqs[:5]}...")
    # One chain altered: verify names it, merge refuses to merge.
    victim = os.path.join(tmp, "audit-r2.jsonl")
    with open(victim) as f:
        lines = f.read().splitlines()
    lines[3] = lines[3].replace('"i":3', '"i":4')
    with open(victim, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = kiln("audit", "verify", *files)
    check(r.returncode == 1 and f"{victim}: BROKEN at {victim}:4" in r.stdout and "BROKEN: 3 chains" in r.stdout,
          f"verify with one broken chain: {r.returncode} {r.stdout}")
    r = kiln("audit", "merge", *files)
    check(r.returncode == 1 and r.stdout == "" and "not merged" in r.stderr, f"merge a broken chain: {r.returncode} {r.stderr}")

if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("kiln audit CLI: all checks passed")
