#!/usr/bin/env python3
"""Several processes append to one audit chain at once (two editors each
starting `kiln serve` on the same state directory). Three appender
processes with fsync=always run concurrently, in three scenarios:

  plain     no rotation
  rotate    a small audit.rotate_bytes, so rotations happen while the others
            are writing or waiting for the lock
  kill      as rotate, and one writer is killed with SIGKILL mid-burst: the
            others must cut its torn line (if any) and go on

Afterwards the chain (rotated files included) must verify, every
acknowledged append must be in it with its content, and the seqs must be
unique and contiguous from 1."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

DRIVER = sys.argv[1]
WRITERS = 3
COUNT = int(os.environ.get("KILN_AUDIT_WRITERS_COUNT", "300"))


def parse_acks(proc, out):
    acks = {}
    for line in out.decode().splitlines():
        seq, i = line.split()
        if int(seq) in acks:
            sys.exit(f"seq {seq} acknowledged twice")
        acks[int(seq)] = (proc.pid, int(i))
    return acks


def run(path, rotate_bytes, kill_one):
    procs = []
    for n in range(WRITERS):
        # Different record sizes so the writers' lines differ in length.
        args = [DRIVER, "append", path, str(COUNT), str(50 + 700 * n)]
        if rotate_bytes:
            args.append(str(rotate_bytes))
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    if kill_one:
        time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)
    acked = {}
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=240)
        killed = kill_one and n == 0
        if proc.returncode != 0 and not (killed and proc.returncode == -signal.SIGKILL):
            sys.exit(f"writer {n} exited {proc.returncode}: {err.decode()}")
        acks = parse_acks(proc, out)
        if not killed and len(acks) != COUNT:
            sys.exit(f"writer {n} acknowledged {len(acks)} of {COUNT} appends")
        clash = acked.keys() & acks.keys()
        if clash:
            sys.exit(f"seq {min(clash)} acknowledged to two writers")
        acked.update(acks)
    return acked


def read_chain(path):
    directory, base = os.path.split(path)
    rotated = sorted((int(f[len(base) + 1:]), f) for f in os.listdir(directory)
                     if f.startswith(base + ".") and f[len(base) + 1:].isdigit())
    files = [os.path.join(directory, f) for _, f in rotated] + [path]
    records = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            records += [json.loads(line) for line in fh]
    return records, len(rotated)


def check(name, rotate_bytes, kill_one):
    with tempfile.TemporaryDirectory(prefix="kiln-audit-writers-") as tmp:
        path = os.path.join(tmp, "audit.jsonl")
        start = time.monotonic()
        acked = run(path, rotate_bytes, kill_one)
        elapsed = time.monotonic() - start
        verdict = subprocess.run([DRIVER, "verify", path], capture_output=True, text=True)
        if verdict.returncode != 0:
            sys.exit(f"{name}: chain broken: {verdict.stdout}{verdict.stderr}")
        records, rotated = read_chain(path)
        seqs = [r["seq"] for r in records]
        if seqs != list(range(1, len(records) + 1)):
            sys.exit(f"{name}: seqs are not unique and contiguous from 1")
        by_seq = {r["seq"]: r for r in records}
        missing = [s for s, (pid, i) in acked.items()
                   if by_seq.get(s, {}).get("pid") != pid or by_seq[s].get("i") != i]
        if missing:
            sys.exit(f"{name}: {len(missing)} acknowledged appends missing or different, first seq {missing[0]}")
        writers = {r["pid"] for r in records if "pid" in r}
        if len(writers) != WRITERS:
            sys.exit(f"{name}: records from {len(writers)} writers, expected {WRITERS}")
        # Unacknowledged records can only come from the killed writer (its
        # last append) and from recovery events.
        extra = [r for r in records if r["seq"] not in acked and r["event"] != "recovery"]
        if len(extra) > (1 if kill_one else 0):
            sys.exit(f"{name}: {len(extra)} records nobody acknowledged")
        if rotate_bytes and rotated == 0:
            sys.exit(f"{name}: no rotation happened: the test exercised nothing")
        recoveries = sum(r["event"] == "recovery" for r in records)
        print(f"{name}: {WRITERS} writers, {len(acked)} acknowledged appends all present, "
              f"{len(records)} records in {rotated + 1} files, {recoveries} recoveries, "
              f"chain intact, {elapsed:.1f} s")


check("plain", 0, False)
check("rotate", 64 * 1024, False)
check("kill", 64 * 1024, True)
