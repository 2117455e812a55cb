"""Shared by the kill -9 and power-cut tests: one audit_driver append burst,
killed mid-way, and the appends it acknowledged."""
import signal
import subprocess
import sys
import time


def killed_burst(driver, path, pad, seconds, env=None):
    """Appends PAD-byte records to PATH until SIGKILL after SECONDS; returns
    (pid, {seq: i}) of the acknowledged appends."""
    proc = subprocess.Popen([driver, "append", path, "1000000", str(pad)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    if proc.returncode != -signal.SIGKILL:
        sys.exit(f"driver exited {proc.returncode} before the kill: {err.decode()}")
    acks = {}
    for line in out.decode().splitlines():
        seq, i = line.split()
        acks[int(seq)] = int(i)
    return proc.pid, acks
