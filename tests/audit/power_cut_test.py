#!/usr/bin/env python3
"""fsync=always against a power cut, as far as one machine can stage one.

A killed process (crash_test.py) cannot test fsync: its writes are already
in the page cache, which outlives it. Here the log lives on an ext4 file
system on a loop device. The driver appends with fsync=always and is killed
mid-burst; the loop device's backing file is then copied while the file
system is still mounted. That copy is the disk as a power cut would leave
it: what the kernel wrote to the device, and not the dirty pages that only
the page cache of the mounted file system holds (they are written back
after vm.dirty_expire_centisecs, 30 s by default, far longer than a round).
The copy is mounted (ext4 replays its journal, as after a reboot) and every
acknowledged record must be there, with an intact chain.

A control round runs the same with fsync=never and must lose acknowledged
records: if it loses none, the staging cannot tell a synced record from an
unsynced one and the test fails rather than pass on nothing.

Needs root, losetup, mkfs.ext4 and free loop devices; without them it skips
(exit 77), or fails under KILN_MUST_WORK=1. Device-mapper (dm-flakey, which
could also drop writes at a chosen moment) is not in every kernel: this one
has none, so the copy of the backing file stands in for it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from driver_burst import killed_burst

SKIP = 77


def skip(why):
    if os.environ.get("KILN_MUST_WORK") == "1":
        sys.exit(f"power-cut test cannot run (KILN_MUST_WORK=1): {why}")
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw).stdout.strip()


class Loop:
    """An ext4 image attached to a loop device and mounted; detached on exit."""

    def __init__(self, image, mnt, make):
        self.image, self.mnt, self.dev = image, mnt, None
        if make:
            sh("truncate", "-s", "64M", image)
            sh("mkfs.ext4", "-q", "-F", image)
        os.makedirs(mnt, exist_ok=True)

    def __enter__(self):
        self.dev = sh("losetup", "--find", "--show", self.image)
        try:
            # A long journal commit interval: nothing but fsync forces a
            # write to the device within a round.
            sh("mount", "-t", "ext4", "-o", "commit=300", self.dev, self.mnt)
        except subprocess.CalledProcessError:
            sh("losetup", "-d", self.dev)
            raise
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", self.mnt], check=False)
        subprocess.run(["losetup", "-d", self.dev], check=False)


def power_cut_round(driver, tmp, mode):
    """Returns (acknowledged, lost, chain verdict) for one staged power cut."""
    image, snap = os.path.join(tmp, f"{mode}.img"), os.path.join(tmp, f"{mode}-cut.img")
    with Loop(image, os.path.join(tmp, f"{mode}-mnt"), make=True) as disk:
        env = dict(os.environ, KILN_AUDIT_DRIVER_FSYNC=mode)
        _, acks = killed_burst(driver, os.path.join(disk.mnt, "audit.jsonl"), 200, 0.4, env)
        # The cut: the device's content now, with the file system still mounted.
        shutil.copyfile(image, snap)
    with Loop(snap, os.path.join(tmp, f"{mode}-cut-mnt"), make=False) as disk:
        path = os.path.join(disk.mnt, "audit.jsonl")
        records = {}
        if os.path.exists(path):
            # A restart recovers a torn last line, as after a real crash.
            subprocess.run([driver, "append", path, "0", "0"], check=True)
            with open(path, encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    records[rec["seq"]] = rec
            verdict = subprocess.run([driver, "verify", path], capture_output=True, text=True)
            chain_ok = verdict.returncode == 0
        else:
            chain_ok = True  # nothing reached the disk: no chain to break
        lost = [s for s, i in acks.items() if s not in records or records[s].get("i") != i]
    return acks, lost, chain_ok


def main():
    driver = sys.argv[1]
    if os.geteuid() != 0:
        skip("needs root for loop devices and mount")
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            skip(f"{tool} not found")
    with tempfile.TemporaryDirectory(prefix="kiln-audit-powercut-") as tmp:
        try:
            acks, lost, chain_ok = power_cut_round(driver, tmp, "always")
            c_acks, c_lost, _ = power_cut_round(driver, tmp, "never")
        except subprocess.CalledProcessError as e:
            skip(f"{' '.join(e.cmd)} failed: {e.stderr.strip()}")
    if not acks:
        sys.exit("no append was acknowledged: the test exercised nothing")
    if not c_lost:
        sys.exit(f"control: fsync=never lost none of {len(c_acks)} acknowledged records, so this staging "
                 "cannot tell synced from unsynced writes")
    if lost:
        sys.exit(f"fsync=always: {len(lost)} of {len(acks)} acknowledged records missing after the power cut, "
                 f"first seq {min(lost)}")
    if not chain_ok:
        sys.exit("fsync=always: chain broken after the power cut")
    print(f"power cut: fsync=always kept all {len(acks)} acknowledged records, chain intact; "
          f"control fsync=never lost {len(c_lost)} of {len(c_acks)}")


main()
